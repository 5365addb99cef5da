//! Backup and restore on both backends: the copy serves the same POA&M and its history
//! verifies (`poam audit verify`).

use crate::harness::{postgres_url, Backend, TestApp};
use serde_json::json;
use std::process::Command;

fn poam(url: &str, dir: &std::path::Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_poam"));
    for (k, _) in std::env::vars() {
        if k.starts_with("POAM_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("POAM_DATABASE_URL", url).env("POAM_DATA_DIR", dir);
    cmd
}

/// Some history worth keeping: items, an update, a milestone, evidence.
fn fill(app: &TestApp) -> String {
    let sid = app.system("Backed up");
    for n in 0..5 {
        let item = app
            .item(&sid, json!({"title": format!("Kept {n}")}))
            .expect(201);
        let id = item.body["id"].as_str().unwrap_or_default().to_owned();
        app.milestone(&id, "2026-12-01");
        app.evidence(&id).expect(201);
    }
    sid
}

fn verified(url: &str, dir: &std::path::Path, sid: &str) {
    let out = poam(url, dir)
        .args(["audit", "verify"])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "audit verify exited with {:?}: stdout {text} stderr {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains(&format!("ok      {sid}")),
        "want `ok      {sid}` in: {text}"
    );
}

#[test]
fn sqlite_backs_up_online_and_the_copy_verifies() {
    let Some(app) = TestApp::spawn(Backend::Sqlite) else {
        return;
    };
    let sid = fill(&app);
    let url = app.settings.database_url.redacted();
    let copy = app.dir.join("backup.db");
    // While the service runs (and writes).
    let writer = {
        let (base, token, sid) = (app.base.clone(), app.admin(), sid.clone());
        std::thread::spawn(move || {
            for n in 0..20 {
                let _ = ureq::post(&format!("{base}/v1/systems/{sid}/items"))
                    .set("Authorization", &format!("Bearer {token}"))
                    .send_json(json!({"title": format!("During {n}"), "description": "d",
                        "risk_rating": "low", "detected_on": "2026-10-01", "source": {"kind": "scan"}}));
            }
        })
    };
    let out = poam(&url, &app.dir)
        .args(["backup", "--to"])
        .arg(&copy)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let _ = writer.join();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Never over an existing file.
    let again = poam(&url, &app.dir)
        .args(["backup", "--to"])
        .arg(&copy)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("never overwrites"));
    // Restore: serve the copy.
    let restored_url = format!("sqlite://{}", copy.display());
    verified(&restored_url, &app.dir, &sid);
    let Some(restored) = TestApp::spawn_with(
        Backend::Sqlite,
        &[("POAM_DATABASE_URL", restored_url.as_str())],
    ) else {
        return;
    };
    let items = restored
        .get(
            &format!("/v1/systems/{sid}/items?limit=200"),
            &restored.admin(),
        )
        .expect(200);
    let titles: Vec<&str> = items.body["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| i["title"].as_str())
        .filter(|t| t.starts_with("Kept"))
        .collect();
    assert_eq!(titles.len(), 5);
}

#[test]
fn postgres_pg_dump_and_restore_verify() {
    let Some(app) = TestApp::spawn(Backend::Postgres) else {
        return;
    };
    let sid = fill(&app);
    let schema = app
        .settings
        .database_url
        .redacted()
        .split("search_path%3D")
        .nth(1)
        .unwrap_or_default()
        .to_owned();
    assert!(!schema.is_empty());
    let admin = postgres_url();
    let dump = app.dir.join("poam.dump");
    // Other tests create and drop their schemas in the same database meanwhile, and pg_dump
    // reads the whole catalog: this test failed once in a full run (not reproduced in six
    // more), most likely on an object dropped under pg_dump. A failed dump is taken again, up
    // to three times, its error printed; the restore and the chain check below are unchanged.
    let dump_once = || {
        Command::new("pg_dump")
            .args([
                "--format=custom",
                "--no-owner",
                "--schema",
                &schema,
                "--file",
            ])
            .arg(&dump)
            .arg(&admin)
            .output()
            .unwrap_or_else(|e| panic!("pg_dump: {e}"))
    };
    let mut out = dump_once();
    for _ in 0..2 {
        if out.status.success() {
            break;
        }
        eprintln!("pg_dump, again: {}", String::from_utf8_lossy(&out.stderr));
        out = dump_once();
    }
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let db = format!(
        "poam_restore_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    let psql = |sql: &str| {
        let out = Command::new("psql")
            .args([admin.as_str(), "-qc", sql])
            .output()
            .unwrap_or_else(|e| panic!("psql: {e}"));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    psql(&format!("CREATE DATABASE {db}"));
    let target = format!("{}/{db}", admin.rsplit_once('/').map_or("", |(b, _)| b));
    let out = Command::new("pg_restore")
        .args(["--no-owner", "--dbname", &target])
        .arg(&dump)
        .output()
        .unwrap_or_else(|e| panic!("pg_restore: {e}"));
    let restored_url = format!("{target}?options=-c%20search_path%3D{schema}");
    let ok = out.status.success();
    if ok {
        verified(&restored_url, &app.dir, &sid);
    }
    psql(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"));
    assert!(ok, "{}", String::from_utf8_lossy(&out.stderr));
}
