//! Evidence encrypted at rest (issue 20), on both backends: uploads and scan files are stored
//! sealed (AES-256-GCM, a data key per file wrapped by the master key of
//! `POAM_EVIDENCE_KEY_FILE`), downloads give back the exact bytes with the same digests and are
//! recorded in the history as `downloaded`; `poam evidence-keys rotate` re-wraps, `poam
//! evidence-keys encrypt-existing` converts what was stored before the key; a missing or wrong
//! key stops the server at start, also on a restored backup.

use crate::harness::{postgres_url, Backend, TestApp, SECRET};
use base64::Engine;
use diesel::prelude::*;
use poam_domain::Role;
use poam_persistence::schema::{content_keys, evidence_chunks, scan_chunks};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const NESSUS: &str = r#"<NessusClientData_v2><Report name="r"><ReportHost name="10.9.9.9"><HostProperties><tag name="host-ip">10.9.9.9</tag></HostProperties><ReportItem port="0" svc_name="general" protocol="tcp" severity="2" pluginID="1" pluginName="A" pluginFamily="General"><description>d</description></ReportItem></ReportHost></Report></NessusClientData_v2>"#;

/// Runs a test body on SQLite and on PostgreSQL, as two tests (the body starts its servers).
macro_rules! on_both {
    ($name:ident) => {
        mod $name {
            #[test]
            fn sqlite() {
                super::$name($crate::harness::Backend::Sqlite);
            }
            #[test]
            fn postgres() {
                super::$name($crate::harness::Backend::Postgres);
            }
        }
    };
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A directory of key files that outlives the servers of a test.
struct Keys {
    dir: PathBuf,
}

impl Keys {
    fn new() -> Keys {
        let dir = std::env::temp_dir().join(format!("poam-keys-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        Keys { dir }
    }

    /// A new random master key (64 hex characters), mode 0600.
    fn make(&self, name: &str) -> PathBuf {
        let path = self.dir.join(name);
        let key = format!(
            "{}{}\n",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        std::fs::write(&path, key).unwrap_or_else(|e| panic!("{e}"));
        private(&path);
        path
    }
}

impl Drop for Keys {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[cfg(unix)]
fn private(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .unwrap_or_else(|e| panic!("{e}"));
}

#[cfg(not(unix))]
fn private(_: &Path) {}

fn spawn(backend: Backend, env: &[(&str, &str)]) -> Option<TestApp> {
    TestApp::spawn_with(backend, env)
}

fn key_env(key: &Path) -> String {
    key.display().to_string()
}

/// The `poam` binary on `url`, with no other settings of the environment.
fn poam(url: &str, dir: &Path, key: Option<&Path>) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_poam"));
    for (k, _) in std::env::vars() {
        if k.starts_with("POAM_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("POAM_DATABASE_URL", url)
        .env("POAM_DATA_DIR", dir)
        .env("POAM_JWT_SECRET", SECRET)
        .env("POAM_SCHEDULER_PERIOD", "off")
        .env("POAM_LOG", "warn");
    if let Some(k) = key {
        cmd.env("POAM_EVIDENCE_KEY_FILE", k);
    }
    cmd
}

/// Runs a `poam` command that must succeed; its stdout.
fn run_ok(mut cmd: Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{e}"));
    assert!(
        out.status.success(),
        "exit {:?}: stdout {} stderr {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `poam serve` must refuse to start: its error output.
fn serve_refuses(url: &str, dir: &Path, key: Option<&Path>, extra: &[(&str, &str)]) -> String {
    let mut cmd = poam(url, dir, key);
    cmd.arg("serve")
        .env("POAM_BIND", "127.0.0.1:0")
        .envs(extra.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn: {e}"));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the server started (or hung) when it should have refused to");
            }
        }
    }
    let out = child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("wait: {e}"));
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "{err}");
    err
}

fn url(app: &TestApp) -> String {
    app.settings.database_url.redacted()
}

/// A new item of a new system: (system id, item id).
fn item(app: &TestApp) -> (String, String) {
    let sid = app.system("Protected");
    let item = app.item(&sid, serde_json::json!({})).expect(201);
    (sid, item.body["id"].as_str().unwrap_or_default().to_owned())
}

/// Bytes that span three chunks (1 MiB each) and are easy to recognise.
fn content() -> Vec<u8> {
    let text = b"CUI evidence: where the system is weak. ";
    (0..(2 << 20) + 12_345)
        .map(|i: usize| text[i % text.len()])
        .collect()
}

fn upload(app: &TestApp, item: &str, bytes: &[u8]) -> Value {
    app.upload(
        item,
        &app.admin(),
        &[("title", "Architecture notes"), ("kind", "other")],
        bytes,
        &[],
    )
    .expect(201)
    .body
}

fn import_scan(app: &TestApp, sid: &str) -> String {
    let r = app
        .request(
            "POST",
            &format!("/v1/systems/{sid}/imports/nessus?filename=r.nessus"),
            Some(&app.admin()),
            &[("Content-Type", "application/octet-stream")],
            Some(NESSUS.as_bytes()),
        )
        .expect(200);
    r.body["scan"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{}", r.body))
        .to_owned()
}

fn raw_evidence(app: &TestApp, id: &str) -> Vec<Vec<u8>> {
    let mut conn = app.db().get().unwrap_or_else(|e| panic!("{e}"));
    evidence_chunks::table
        .filter(evidence_chunks::evidence_id.eq(id))
        .order(evidence_chunks::n)
        .select(evidence_chunks::data)
        .load(&mut **conn)
        .unwrap_or_else(|e| panic!("{e}"))
}

fn raw_scan(app: &TestApp, id: &str) -> Vec<Vec<u8>> {
    let mut conn = app.db().get().unwrap_or_else(|e| panic!("{e}"));
    scan_chunks::table
        .filter(scan_chunks::scan_id.eq(id))
        .order(scan_chunks::n)
        .select(scan_chunks::data)
        .load(&mut **conn)
        .unwrap_or_else(|e| panic!("{e}"))
}

fn key_ids(app: &TestApp) -> Vec<(String, String)> {
    let mut conn = app.db().get().unwrap_or_else(|e| panic!("{e}"));
    content_keys::table
        .order(content_keys::owner_id)
        .select((content_keys::owner_id, content_keys::key_id))
        .load(&mut **conn)
        .unwrap_or_else(|e| panic!("{e}"))
}

/// The stored chunks are sealed: none is the plaintext, each is one GCM tag longer.
fn assert_sealed(raw: &[Vec<u8>], plain: &[u8]) {
    assert!(!raw.is_empty());
    let chunks: Vec<&[u8]> = plain.chunks(1 << 20).collect();
    assert_eq!(raw.len(), chunks.len());
    for (stored, plain) in raw.iter().zip(chunks) {
        assert_eq!(
            stored.len(),
            plain.len() + 16,
            "ciphertext and a 16-byte tag"
        );
        assert_ne!(&stored[..plain.len()], plain, "stored in plaintext");
        let probe = &plain[..plain.len().min(41)];
        assert!(
            !stored.windows(probe.len()).any(|w| w == probe),
            "plaintext shows in the stored chunk"
        );
    }
}

/// Downloads a file's content: the exact bytes, the plaintext's SHA-256 as ETag and
/// Content-Digest.
fn assert_downloads(app: &TestApp, path: &str, token: &str, plain: &[u8]) {
    let (status, headers, bytes) = app.get_bytes(path, token);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&bytes));
    assert!(
        bytes == plain,
        "the exact bytes ({} vs {})",
        bytes.len(),
        plain.len()
    );
    let digest = Sha256::digest(plain);
    assert_eq!(
        headers.get("etag").map(String::as_str),
        Some(format!("\"{}\"", hex(&digest)).as_str())
    );
    if path.starts_with("/v1/evidence/") {
        assert_eq!(
            headers.get("content-digest").map(String::as_str),
            Some(
                format!(
                    "sha-256=:{}:",
                    base64::engine::general_purpose::STANDARD.encode(digest)
                )
                .as_str()
            )
        );
    }
}

fn downloads(app: &TestApp, sid: &str, resource: &str) -> Vec<Value> {
    app.get(
        &format!("/v1/systems/{sid}/events?action=downloaded&resource={resource}"),
        &app.admin(),
    )
    .expect(200)
    .body["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn uploads_are_stored_encrypted_and_downloads_are_recorded(backend: Backend) {
    let keys = Keys::new();
    let key = keys.make("master.key");
    let Some(app) = spawn(backend, &[("POAM_EVIDENCE_KEY_FILE", &key_env(&key))]) else {
        return;
    };
    let (sid, item) = item(&app);
    let plain = content();
    let e = upload(&app, &item, &plain);
    let id = e["id"].as_str().unwrap_or_default().to_owned();
    assert_eq!(e["sha256"], hex(&Sha256::digest(&plain)), "{e}");
    assert_sealed(&raw_evidence(&app, &id), &plain);
    let auditor = app.token_as("auditor@example.org", &[Role::Auditor]);
    assert_downloads(
        &app,
        &format!("/v1/evidence/{id}/content"),
        &auditor,
        &plain,
    );
    let events = downloads(&app, &sid, "evidence");
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["actor"], "auditor@example.org");
    assert_eq!(events[0]["action"], "downloaded");
    assert_eq!(events[0]["resource_kind"], "evidence");
    assert_eq!(events[0]["resource_id"], id.as_str());
    assert!(events[0]["at"].is_string());
    // An empty file too.
    let empty = upload(&app, &item, b"");
    let empty_id = empty["id"].as_str().unwrap_or_default();
    assert!(raw_evidence(&app, empty_id).is_empty());
    assert_downloads(
        &app,
        &format!("/v1/evidence/{empty_id}/content"),
        &auditor,
        b"",
    );

    // A scan file: sealed too, its download recorded as a `scan` one.
    let scan = import_scan(&app, &sid);
    assert_sealed(&raw_scan(&app, &scan), NESSUS.as_bytes());
    assert_downloads(
        &app,
        &format!("/v1/scans/{scan}/content"),
        &auditor,
        NESSUS.as_bytes(),
    );
    let scans = downloads(&app, &sid, "scan");
    assert_eq!(scans.len(), 1, "{scans:?}");
    assert_eq!(scans[0]["actor"], "auditor@example.org");
    assert_eq!(scans[0]["resource_id"], scan.as_str());
    // The item evidence that is the scan reads the scan's (sealed) chunks.
    let items = app
        .get(&format!("/v1/systems/{sid}/items?limit=50"), &app.admin())
        .expect(200);
    let scanned = items.body["items"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|i| i["id"] != item.as_str())
        .map(|i| i["id"].as_str().unwrap_or_default().to_owned())
        .unwrap_or_else(|| panic!("the scan's item: {}", items.body));
    let ev = app
        .get(&format!("/v1/items/{scanned}/evidence"), &app.admin())
        .expect(200);
    let linked = ev.body["items"][0]["id"].as_str().unwrap_or_default();
    assert_downloads(
        &app,
        &format!("/v1/evidence/{linked}/content"),
        &auditor,
        NESSUS.as_bytes(),
    );
    assert_eq!(downloads(&app, &sid, "evidence").len(), 3);
    app.assert_chain_verifies(&sid);
}
on_both!(uploads_are_stored_encrypted_and_downloads_are_recorded);

fn rotation_rewraps_and_only_the_new_key_starts(backend: Backend) {
    let keys = Keys::new();
    let old = keys.make("old.key");
    let new = keys.make("new.key");
    let Some(app) = spawn(backend, &[("POAM_EVIDENCE_KEY_FILE", &key_env(&old))]) else {
        return;
    };
    let (sid, item) = item(&app);
    let plain = content();
    let id = upload(&app, &item, &plain)["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let scan = import_scan(&app, &sid);
    let before = key_ids(&app);
    assert_eq!(before.len(), 2);
    let raw_before = raw_evidence(&app, &id);
    let out = run_ok({
        let mut cmd = poam(&url(&app), &app.dir, Some(&old));
        cmd.args(["evidence-keys", "rotate", "--new-key-file"])
            .arg(&new);
        cmd
    });
    assert!(out.contains("2 data keys re-wrapped"), "{out}");
    let after = key_ids(&app);
    assert!(
        after
            .iter()
            .zip(&before)
            .all(|(a, b)| a.0 == b.0 && a.1 != b.1),
        "{before:?} {after:?}"
    );
    assert_eq!(
        raw_evidence(&app, &id),
        raw_before,
        "content not re-encrypted"
    );
    // Again: nothing left to do.
    let again = run_ok({
        let mut cmd = poam(&url(&app), &app.dir, Some(&old));
        cmd.args(["keys", "rotate", "--new-key-file"]).arg(&new);
        cmd
    });
    assert!(again.contains("0 data keys re-wrapped"), "{again}");

    // The old key, a wrong key, no key: the server does not start.
    let err = serve_refuses(&url(&app), &app.dir, Some(&old), &[]);
    assert!(
        err.contains("POAM_EVIDENCE_KEY_FILE") && err.contains("encrypted under master key"),
        "{err}"
    );
    let wrong = keys.make("wrong.key");
    let err = serve_refuses(&url(&app), &app.dir, Some(&wrong), &[]);
    assert!(err.contains("POAM_EVIDENCE_KEY_FILE"), "{err}");
    let err = serve_refuses(&url(&app), &app.dir, None, &[]);
    assert!(
        err.contains("encrypted evidence") && err.contains("POAM_EVIDENCE_KEY_FILE is not set"),
        "{err}"
    );
    // A key file others may read is refused.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let open = keys.dir.join("open.key");
        std::fs::copy(&new, &open).unwrap_or_else(|e| panic!("{e}"));
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o644))
            .unwrap_or_else(|e| panic!("{e}"));
        let err = serve_refuses(&url(&app), &app.dir, Some(&open), &[]);
        assert!(err.contains("chmod 600"), "{err}");
    }

    // The new key: everything still decrypts.
    let Some(next) = spawn(
        backend,
        &[
            ("POAM_DATABASE_URL", url(&app).as_str()),
            ("POAM_EVIDENCE_KEY_FILE", &key_env(&new)),
        ],
    ) else {
        return;
    };
    let admin = next.admin();
    assert_downloads(&next, &format!("/v1/evidence/{id}/content"), &admin, &plain);
    assert_downloads(
        &next,
        &format!("/v1/scans/{scan}/content"),
        &admin,
        NESSUS.as_bytes(),
    );
}
on_both!(rotation_rewraps_and_only_the_new_key_starts);

fn encrypt_existing_converts_plaintext_and_keeps_the_digests(backend: Backend) {
    let keys = Keys::new();
    let key = keys.make("master.key");
    let Some(app) = spawn(backend, &[]) else {
        return;
    };
    let (sid, item) = item(&app);
    let plain = content();
    let e = upload(&app, &item, &plain);
    let id = e["id"].as_str().unwrap_or_default().to_owned();
    let scan = import_scan(&app, &sid);
    // Without a key: stored as before, in plaintext.
    assert_eq!(raw_evidence(&app, &id).concat(), plain);
    assert_eq!(raw_scan(&app, &scan).concat(), NESSUS.as_bytes());
    assert!(key_ids(&app).is_empty());
    // Required encryption without a key refuses to start.
    let err = serve_refuses(
        &url(&app),
        &app.dir,
        None,
        &[("POAM_EVIDENCE_ENCRYPTION", "required")],
    );
    assert!(err.contains("POAM_EVIDENCE_KEY_FILE is not set"), "{err}");

    let out = run_ok({
        let mut cmd = poam(&url(&app), &app.dir, Some(&key));
        cmd.args(["evidence-keys", "encrypt-existing", "--batch", "1"]);
        cmd
    });
    assert!(out.contains("2 files"), "{out}");
    assert!(!out.contains("warning"), "{out}");
    assert_sealed(&raw_evidence(&app, &id), &plain);
    assert_sealed(&raw_scan(&app, &scan), NESSUS.as_bytes());
    assert_eq!(key_ids(&app).len(), 2);
    // Resumable and idempotent: nothing left.
    let again = run_ok({
        let mut cmd = poam(&url(&app), &app.dir, Some(&key));
        cmd.args(["evidence-keys", "encrypt-existing"]);
        cmd
    });
    assert!(again.contains("0 files"), "{again}");
    // Now the key is needed to start.
    let err = serve_refuses(&url(&app), &app.dir, None, &[]);
    assert!(err.contains("POAM_EVIDENCE_KEY_FILE is not set"), "{err}");

    let Some(keyed) = spawn(
        backend,
        &[
            ("POAM_DATABASE_URL", url(&app).as_str()),
            ("POAM_EVIDENCE_KEY_FILE", &key_env(&key)),
        ],
    ) else {
        return;
    };
    let admin = keyed.admin();
    let meta = keyed.get(&format!("/v1/evidence/{id}"), &admin).expect(200);
    assert_eq!(meta.body["sha256"], e["sha256"], "the digest users verify");
    assert_downloads(
        &keyed,
        &format!("/v1/evidence/{id}/content"),
        &admin,
        &plain,
    );
    assert_downloads(
        &keyed,
        &format!("/v1/scans/{scan}/content"),
        &admin,
        NESSUS.as_bytes(),
    );
}
on_both!(encrypt_existing_converts_plaintext_and_keeps_the_digests);

/// A restorable copy of the app's database: its URL and what drops it.
fn backup_and_restore(app: &TestApp, backend: Backend) -> (String, Option<String>) {
    match backend {
        Backend::Sqlite => {
            let copy = app.dir.join("backup.db");
            run_ok({
                let mut cmd = poam(&url(app), &app.dir, None);
                cmd.args(["backup", "--to"]).arg(&copy);
                cmd
            });
            (format!("sqlite://{}", copy.display()), None)
        }
        Backend::Postgres => {
            let schema = url(app)
                .split("search_path%3D")
                .nth(1)
                .unwrap_or_default()
                .to_owned();
            let admin = postgres_url();
            let dump = app.dir.join("poam.dump");
            let mut out = None;
            for _ in 0..3 {
                let o = Command::new("pg_dump")
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
                    .unwrap_or_else(|e| panic!("pg_dump: {e}"));
                let ok = o.status.success();
                out = Some(o);
                if ok {
                    break;
                }
            }
            let out = out.unwrap_or_else(|| panic!("pg_dump"));
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let db = format!(
                "poam_restore_{}",
                &uuid::Uuid::new_v4().simple().to_string()[..12]
            );
            psql(&admin, &format!("CREATE DATABASE {db}"));
            let target = format!("{}/{db}", admin.rsplit_once('/').map_or("", |(b, _)| b));
            let out = Command::new("pg_restore")
                .args(["--no-owner", "--dbname", &target])
                .arg(&dump)
                .output()
                .unwrap_or_else(|e| panic!("pg_restore: {e}"));
            if !out.status.success() {
                psql(
                    &admin,
                    &format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"),
                );
                panic!("{}", String::from_utf8_lossy(&out.stderr));
            }
            (
                format!("{target}?options=-c%20search_path%3D{schema}"),
                Some(db),
            )
        }
    }
}

fn psql(admin: &str, sql: &str) {
    let out = Command::new("psql")
        .args([admin, "-qc", sql])
        .output()
        .unwrap_or_else(|e| panic!("psql: {e}"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Drops a restored PostgreSQL database when the test ends.
struct Restored(Option<String>);

impl Drop for Restored {
    fn drop(&mut self) {
        if let Some(db) = self.0.take() {
            let _ = Command::new("psql")
                .args([
                    postgres_url().as_str(),
                    "-qc",
                    &format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"),
                ])
                .output();
        }
    }
}

fn a_restored_backup_decrypts_with_the_key_and_fails_clearly_without(backend: Backend) {
    let keys = Keys::new();
    let key = keys.make("master.key");
    let Some(app) = spawn(backend, &[("POAM_EVIDENCE_KEY_FILE", &key_env(&key))]) else {
        return;
    };
    let (sid, item) = item(&app);
    let plain = content();
    let id = upload(&app, &item, &plain)["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let scan = import_scan(&app, &sid);
    app.get_bytes(&format!("/v1/evidence/{id}/content"), &app.admin());
    let (restored_url, db) = backup_and_restore(&app, backend);
    let _drop = Restored(db);
    // The history verifies (the download's event included).
    let out = run_ok({
        let mut cmd = poam(&restored_url, &app.dir, None);
        cmd.args(["audit", "verify"]);
        cmd
    });
    assert!(out.contains(&format!("ok      {sid}")), "{out}");
    // Without the key: a clear refusal.
    let err = serve_refuses(&restored_url, &app.dir, None, &[]);
    assert!(
        err.contains("encrypted evidence") && err.contains("POAM_EVIDENCE_KEY_FILE is not set"),
        "{err}"
    );
    let other = keys.make("other.key");
    let err = serve_refuses(&restored_url, &app.dir, Some(&other), &[]);
    assert!(err.contains("POAM_EVIDENCE_KEY_FILE"), "{err}");
    // With it: the exact bytes.
    let Some(restored) = spawn(
        backend,
        &[
            ("POAM_DATABASE_URL", restored_url.as_str()),
            ("POAM_EVIDENCE_KEY_FILE", &key_env(&key)),
        ],
    ) else {
        return;
    };
    let admin = restored.admin();
    assert_downloads(
        &restored,
        &format!("/v1/evidence/{id}/content"),
        &admin,
        &plain,
    );
    assert_downloads(
        &restored,
        &format!("/v1/scans/{scan}/content"),
        &admin,
        NESSUS.as_bytes(),
    );
    restored.assert_chain_verifies(&sid);
}
on_both!(a_restored_backup_decrypts_with_the_key_and_fails_clearly_without);
