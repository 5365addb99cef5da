//! The `poam` binary itself: first start, tokens, migrations, help, signals.

use crate::harness::{Backend, PgSchema, TestApp, SECRET};
use serde_json::json;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn poam(env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_poam"));
    for (k, _) in std::env::vars() {
        if k.starts_with("POAM_") {
            cmd.env_remove(k);
        }
    }
    cmd.envs(env.iter().copied());
    cmd
}

fn temp_dir(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("poam-{tag}-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap_or_default();
    dir
}

#[test]
fn help_documents_every_setting_and_command() {
    let out = poam(&[])
        .arg("--help")
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for setting in poam::config::SETTINGS {
        assert!(text.contains(setting.name), "--help lacks {}", setting.name);
    }
    for cmd in ["serve", "migrate", "token", "openapi", "health"] {
        assert!(text.contains(cmd), "--help lacks {cmd}");
    }
}

/// The README's configuration table is `poam config --markdown`: every setting, its default and
/// its help, from the one definition of each (`poam::config::SETTINGS`).
#[test]
fn the_readme_configuration_table_is_the_definitions() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .unwrap_or_else(|e| panic!("{e}"));
    let section = readme
        .split("\n## Configuration\n")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .unwrap_or_default();
    let table: String = section
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .map(|l| format!("{l}\n"))
        .collect();
    let expected = poam::config::markdown_table();
    assert!(
        table == expected,
        "README.md's configuration table differs from the settings' definitions; replace it \
         with the output of `poam config --markdown`:\n{expected}"
    );
    let out = poam(&[])
        .args(["config", "--markdown"])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), expected);
}

#[test]
fn openapi_command_prints_the_generated_document() {
    let out = poam(&[])
        .arg("openapi")
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(out.status.success());
    let printed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    assert_eq!(
        printed,
        serde_json::to_value(poam_http::openapi()).unwrap_or_default()
    );
}

#[test]
fn an_unknown_database_scheme_is_an_error_and_creates_nothing() {
    let dir = temp_dir("scheme");
    let data = dir.join("data");
    let out = poam(&[
        ("POAM_DATA_DIR", &data.display().to_string()),
        ("POAM_DATABASE_URL", "mysql://root@localhost/poam"),
    ])
    .arg("migrate")
    .output()
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unsupported database URL scheme `mysql`"),
        "{err}"
    );
    assert!(!data.exists(), "nothing was created");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn tokens_from_the_command_are_accepted_by_a_server_with_the_same_configuration() {
    // The server generates its secret into the data directory; `poam token` reads it there.
    let Some(app) = TestApp::spawn_with(Backend::Sqlite, &[("POAM_JWT_SECRET", "")]) else {
        return;
    };
    let data = app.dir.display().to_string();
    let sid = {
        let admin = poam(&[("POAM_DATA_DIR", &data)])
            .args(["token", "--sub", "ops@example.org", "--role", "admin"])
            .output()
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(
            admin.status.success(),
            "{}",
            String::from_utf8_lossy(&admin.stderr)
        );
        let token = String::from_utf8_lossy(&admin.stdout).trim().to_owned();
        assert_eq!(token.split('.').count(), 3, "stdout is only the token");
        app.post("/v1/systems", &token, &json!({"name": "Minted"}))
            .expect(201)
            .body["id"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    let scoped = poam(&[("POAM_DATA_DIR", &data)])
        .args([
            "token",
            "--sub",
            "scanner@ci",
            "--role",
            "editor,viewer",
            "--system",
            &sid,
            "--ttl",
            "5m",
        ])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let token = String::from_utf8_lossy(&scoped.stdout).trim().to_owned();
    let created = app
        .post(
            &format!("/v1/systems/{sid}/items"),
            &token,
            &crate::harness::minimal_item(),
        )
        .expect(201);
    assert_eq!(created.body["display_id"], "POAM-0001");
    let other = app.system("Other");
    app.get(&format!("/v1/systems/{other}"), &token)
        .problem(404, "not_found");
    // A token signed with another secret is refused.
    let foreign = poam(&[("POAM_JWT_SECRET", SECRET)])
        .args(["token", "--sub", "x", "--role", "admin"])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    app.get(
        "/v1/systems",
        String::from_utf8_lossy(&foreign.stdout).trim(),
    )
    .problem(401, "invalid_token");
    // Bad arguments are named.
    let bad = poam(&[("POAM_DATA_DIR", &data)])
        .args(["token", "--sub", "x", "--role", "root"])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("`root` is not a role"));
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(18080)
}

fn wait_ready(base: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if ureq::get(&format!("{base}/healthz")).call().is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("the server did not come up");
}

fn call(
    method: &str,
    url: &str,
    token: &str,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    let req = ureq::request(method, url).set("Authorization", &format!("Bearer {token}"));
    let res = match body {
        Some(b) => req
            .set("Content-Type", "application/json")
            .send_string(&b.to_string()),
        None => req.call(),
    };
    let r = match res {
        Ok(r) | Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{method} {url}: {e}"),
    };
    (r.status(), r.into_json().unwrap_or_default())
}

/// The product's promise: on a fresh machine, `poam serve` with no configuration answers an
/// authenticated create/list/get/patch of a system and an item, and stops cleanly on SIGTERM.
#[test]
fn first_start_with_no_configuration_serves_and_stops_on_sigterm() {
    let dir = temp_dir("first");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut child = poam(&[("POAM_BIND", &format!("127.0.0.1:{port}"))])
        .current_dir(&dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    let stdout = child.stdout.take().unwrap_or_else(|| panic!("stdout"));
    let mut lines = BufReader::new(stdout).lines();
    let token_file = dir.join("data/bootstrap-admin-token");
    let mut announced = false;
    for line in lines.by_ref().take(20) {
        let line = line.unwrap_or_default();
        assert!(!line.contains("eyJ"), "the token is not printed: {line}");
        if line.contains(&token_file.display().to_string())
            || line.contains("bootstrap-admin-token")
        {
            announced = true;
            break;
        }
    }
    assert!(announced, "the token file's path is printed on first start");
    let token = std::fs::read_to_string(&token_file)
        .unwrap_or_default()
        .trim()
        .to_owned();
    assert!(
        token.starts_with("eyJ"),
        "a bootstrap token is written on first start"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&token_file)
            .map(|m| m.permissions().mode() & 0o777)
            .unwrap_or(0);
        assert_eq!(mode, 0o600, "the token file is private");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join("data/jwt-secret"))
            .map(|m| m.permissions().mode() & 0o777)
            .unwrap_or(0);
        assert_eq!(mode, 0o600, "the signing key is private");
    }
    assert!(
        dir.join("data/poam.db").exists(),
        "the SQLite file is in ./data"
    );
    wait_ready(&base);

    let (s, system) = call(
        "POST",
        &format!("{base}/v1/systems"),
        &token,
        Some(json!({"name": "First"})),
    );
    assert_eq!(s, 201, "{system}");
    let sid = system["id"].as_str().unwrap_or_default();
    let (s, item) = call(
        "POST",
        &format!("{base}/v1/systems/{sid}/items"),
        &token,
        Some(crate::harness::minimal_item()),
    );
    assert_eq!(s, 201, "{item}");
    let iid = item["id"].as_str().unwrap_or_default();
    let (s, list) = call(
        "GET",
        &format!("{base}/v1/systems/{sid}/items"),
        &token,
        None,
    );
    assert_eq!(
        (s, list["items"][0]["display_id"].as_str()),
        (200, Some("POAM-0001"))
    );
    let (s, _) = call("GET", &format!("{base}/v1/items/{iid}"), &token, None);
    assert_eq!(s, 200);
    let (s, patched) = call(
        "PATCH",
        &format!("{base}/v1/items/{iid}"),
        &token,
        Some(json!({"owner": {"name": "Dana"}})),
    );
    assert_eq!((s, patched["owner"]["name"].as_str()), (200, Some("Dana")));
    let (s, _) = call(
        "PATCH",
        &format!("{base}/v1/systems/{sid}"),
        &token,
        Some(json!({"organization": "Acme"})),
    );
    assert_eq!(s, 200);
    let (s, systems) = call("GET", &format!("{base}/v1/systems"), &token, None);
    assert_eq!(
        (s, systems["items"][0]["organization"].as_str()),
        (200, Some("Acme"))
    );

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    assert!(killed.map(|s| s.success()).unwrap_or(false));
    let deadline = Instant::now() + Duration::from_secs(35);
    let status = loop {
        if let Ok(Some(status)) = child.try_wait() {
            break status;
        }
        assert!(Instant::now() < deadline, "no exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "graceful exit: {status:?}");

    // Second start: the key exists, so no token is printed; the data is still there.
    let again = poam(&[("POAM_BIND", &format!("127.0.0.1:{port}"))])
        .current_dir(&dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    wait_ready(&base);
    let (s, list) = call(
        "GET",
        &format!("{base}/v1/systems/{sid}/items"),
        &token,
        None,
    );
    assert_eq!(
        (s, list["items"].as_array().map(Vec::len)),
        (200, Some(1)),
        "the data survived the restart"
    );
    let _ = Command::new("kill")
        .args(["-TERM", &again.id().to_string()])
        .status();
    let out = again.wait_with_output().unwrap_or_else(|e| panic!("{e}"));
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(
        !printed.contains("eyJ"),
        "no token on the second start: {printed}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn postgres_is_migrated_explicitly_and_serve_refuses_a_stale_schema() {
    let Some(schema) = PgSchema::create() else {
        return;
    };
    let env = [
        ("POAM_DATABASE_URL", schema.url.as_str()),
        ("POAM_JWT_SECRET", SECRET),
        ("POAM_BIND", "127.0.0.1:0"),
    ];
    let out = poam(&env)
        .arg("serve")
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("pending migrations") && err.contains("poam migrate"),
        "{err}"
    );
    let out = poam(&env)
        .args(["migrate", "--status"])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(String::from_utf8_lossy(&out.stdout).contains("pending 2026-11-22-000000_foundation"));
    let out = poam(&env)
        .arg("migrate")
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("applied"));
    let out = poam(&env)
        .args(["migrate", "--status"])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "up to date");
    // A wrong password or a stopped server is reported as such, not as a bad URL.
    let out = poam(&[("POAM_DATABASE_URL", "postgres://nobody@127.0.0.1:1/none")])
        .arg("migrate")
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("cannot connect to postgres://nobody@127.0.0.1:1/none"));
}

#[test]
fn token_lifetimes_have_a_maximum() {
    let dir = temp_dir("ttl");
    let data = dir.display().to_string();
    let mint = |ttl: &str, max: Option<&str>| {
        let mut env = vec![
            ("POAM_DATA_DIR", data.as_str()),
            ("POAM_JWT_SECRET", SECRET),
        ];
        if let Some(max) = max {
            env.push(("POAM_TOKEN_MAX_TTL", max));
        }
        poam(&env)
            .args([
                "token",
                "--sub",
                "ops@example.org",
                "--role",
                "viewer",
                "--ttl",
                ttl,
            ])
            .output()
            .unwrap_or_else(|e| panic!("{e}"))
    };
    // 90 days by default: at the limit, fine; beyond, a usage error (exit status 2).
    let ok = mint("90d", None);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let refused = mint("91d", None);
    assert_eq!(refused.status.code(), Some(2));
    assert!(refused.stdout.is_empty(), "no token printed");
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.contains("--ttl: 91d exceeds")
            && err.contains("90d")
            && err.contains("POAM_TOKEN_MAX_TTL"),
        "{err}"
    );
    // The maximum is a setting.
    assert!(mint("365d", Some("400d")).status.success());
    assert_eq!(mint("2h", Some("1h")).status.code(), Some(2));
    // A subject longer than 255 characters is refused as well.
    let long = poam(&[("POAM_DATA_DIR", &data), ("POAM_JWT_SECRET", SECRET)])
        .args(["token", "--sub", &"s".repeat(256), "--role", "viewer"])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(long.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&long.stderr).contains("255"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// `poam health` (the container's HEALTHCHECK) asks the running service, and fails when none
/// answers.
#[test]
fn health_asks_the_running_service() {
    let Some(app) = TestApp::spawn(Backend::Sqlite) else {
        return;
    };
    let bind = app.base.trim_start_matches("http://").to_owned();
    let out = poam(&[("POAM_BIND", bind.as_str())])
        .arg("health")
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok");
    // Nothing listens on a port just taken and released.
    let free = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.to_string())
        .unwrap_or_else(|e| panic!("{e}"));
    let out = poam(&[("POAM_BIND", free.as_str())])
        .arg("health")
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!out.status.success());
}
