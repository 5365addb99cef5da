//! One harness starts the real server on a fresh SQLite file or a fresh PostgreSQL schema, on a
//! free port, and talks to it over HTTP. Every integration test runs on both backends.

use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection};
use poam::config::Settings;
use poam::{keys, Application};
use poam_domain::{Role, SystemId};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::net::TcpListener;
use std::path::PathBuf;
use std::time::Duration;

pub const SECRET: &str = "integration-test-secret-0123456789abcdef";

/// Limits far above what any test needs, so no test is throttled by another's requests (the
/// protection tests set their own).
pub const GENEROUS_LIMITS: &[(&str, &str)] = &[
    ("POAM_RATE_LIMIT_PER_SECOND", "100000"),
    ("POAM_RATE_LIMIT_BURST", "100000"),
    ("POAM_RATE_LIMIT_ADDRESS_PER_SECOND", "100000"),
    ("POAM_RATE_LIMIT_ADDRESS_BURST", "100000"),
    ("POAM_AUTH_FAILURES_PER_MINUTE", "100000"),
    ("POAM_AUTH_FAILURE_BURST", "100000"),
    ("POAM_EXPORT_CONCURRENCY", "64"),
    ("POAM_HEAVY_CONCURRENCY", "64"),
    ("POAM_MEMORY_BUDGET_BYTES", "4294967296"),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The PostgreSQL server the tests use; `POAM_TEST_DATABASE_URL` overrides it.
/// Every test's PostgreSQL connection is made with this URL: OpenSSL is initialised here
/// first, as the binary does (`db::init_tls_library`), so its exit-time cleanup never runs
/// under the pool threads still closing TLS connections when the test process exits.
pub fn postgres_url() -> String {
    poam_persistence::db::init_tls_library();
    std::env::var("POAM_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A PostgreSQL schema of this test's own, dropped when the test ends. Leftovers of crashed
/// runs older than two hours are swept when a new one is made.
pub struct PgSchema {
    pub name: String,
    pub url: String,
}

impl PgSchema {
    pub fn create() -> Option<PgSchema> {
        let admin = postgres_url();
        let mut conn = match PgConnection::establish(&admin) {
            Ok(c) => c,
            Err(e) => {
                let ci = std::env::var("CI").as_deref() == Ok("true");
                if !ci && std::env::var("POAM_TEST_SKIP_POSTGRES").as_deref() == Ok("1") {
                    eprintln!("PostgreSQL unreachable and POAM_TEST_SKIP_POSTGRES=1: skipping");
                    return None;
                }
                panic!("PostgreSQL is required for this test ({admin}): {e}. Start it, or set POAM_TEST_SKIP_POSTGRES=1 to skip knowingly.");
            }
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        sweep(&mut conn, now);
        let name = format!(
            "poam_t_{now}_{}",
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        );
        conn.batch_execute(&format!("CREATE SCHEMA {name}"))
            .unwrap_or_else(|e| panic!("create schema: {e}"));
        let sep = if admin.contains('?') { '&' } else { '?' };
        let url = format!("{admin}{sep}options=-c%20search_path%3D{name}");
        Some(PgSchema { name, url })
    }
}

fn sweep(conn: &mut PgConnection, now: u64) {
    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Text)]
        nspname: String,
    }
    use diesel::RunQueryDsl;
    let rows: Vec<Row> = diesel::sql_query(
        "SELECT nspname::text AS nspname FROM pg_namespace WHERE nspname LIKE 'poam\\_t\\_%'",
    )
    .load(conn)
    .unwrap_or_default();
    for r in rows {
        let stamp: u64 = r
            .nspname
            .split('_')
            .nth(2)
            .and_then(|s| s.parse().ok())
            .unwrap_or(now);
        if now.saturating_sub(stamp) > 7200 {
            let _ = conn.batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", r.nspname));
        }
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        if let Ok(mut conn) = PgConnection::establish(&postgres_url()) {
            let _ = conn.batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name));
        }
    }
}

pub struct TestApp {
    pub base: String,
    pub settings: Settings,
    pub dir: PathBuf,
    handle: actix_web::dev::ServerHandle,
    agent: ureq::Agent,
    // Dropped after the server stops (field order).
    pg: Option<PgSchema>,
}

pub struct Resp {
    pub status: u16,
    pub headers: BTreeMap<String, String>,
    pub body: Value,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    /// The `code` of a problem document.
    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("")
    }

    /// The pointers of a problem's field errors.
    pub fn pointers(&self) -> Vec<String> {
        self.body["errors"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|e| e["pointer"].as_str().unwrap_or("").to_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    #[track_caller]
    pub fn expect(self, status: u16) -> Resp {
        assert_eq!(self.status, status, "body: {}", self.body);
        self
    }

    #[track_caller]
    pub fn problem(self, status: u16, code: &str) -> Resp {
        assert_eq!(self.status, status, "body: {}", self.body);
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json"),
            "{}",
            self.body
        );
        assert_eq!(self.code(), code, "body: {}", self.body);
        assert_eq!(self.body["status"], status, "status member");
        assert!(self.header("x-request-id").is_some(), "request id header");
        self
    }
}

impl TestApp {
    pub fn spawn(backend: Backend) -> Option<TestApp> {
        Self::spawn_with(backend, &[])
    }

    /// Starts the server with the test defaults overlaid by `env` pairs.
    pub fn spawn_with(backend: Backend, env: &[(&str, &str)]) -> Option<TestApp> {
        let dir = std::env::temp_dir().join(format!("poam-test-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("temp dir: {e}"));
        let pg = match backend {
            Backend::Postgres => Some(PgSchema::create()?),
            Backend::Sqlite => None,
        };
        let url = match &pg {
            Some(s) => s.url.clone(),
            None => format!("sqlite://{}", dir.join("poam.db").display()),
        };
        let mut vars: BTreeMap<String, String> = [
            ("POAM_DATA_DIR", dir.display().to_string()),
            ("POAM_DATABASE_URL", url),
            ("POAM_JWT_SECRET", SECRET.to_owned()),
            ("POAM_POOL_SIZE", "8".into()),
            ("POAM_WORKERS", "2".into()),
            ("POAM_AUTO_MIGRATE", "true".into()),
            // Time-driven events only where a test asks for them (tests/api/reminders.rs):
            // elsewhere they would add events that tests count.
            ("POAM_SCHEDULER_PERIOD", "off".into()),
        ]
        .into_iter()
        .chain(GENEROUS_LIMITS.iter().map(|(k, v)| (*k, (*v).to_owned())))
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        for (k, v) in env {
            if v.is_empty() {
                vars.remove(*k);
            } else {
                vars.insert((*k).to_owned(), (*v).to_owned());
            }
        }
        let settings = Settings::from_lookup(|k| vars.get(k).cloned())
            .unwrap_or_else(|e| panic!("settings: {e}"));
        let pool = poam::open_pool(&settings).unwrap_or_else(|e| panic!("pool: {e}"));
        poam::prepare_schema(&settings, &pool).unwrap_or_else(|e| panic!("schema: {e}"));
        let keys = keys::load(&settings).unwrap_or_else(|e| panic!("keys: {e}"));
        let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("bind: {e}"));
        let (tx, rx) = std::sync::mpsc::channel();
        let thread_settings = settings.clone();
        std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let app =
                    Application::build(&thread_settings, pool, keys.authenticator, Some(listener))
                        .unwrap_or_else(|e| panic!("build: {e}"));
                let _ = tx.send((app.local_addr(), app.handle()));
                let _ = app.run().await;
            })
        });
        let (addr, handle) = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|e| panic!("server did not start: {e}"));
        let agent = ureq::AgentBuilder::new()
            .timeout(Duration::from_secs(60))
            .build();
        Some(TestApp {
            base: format!("http://{addr}"),
            settings,
            dir,
            handle,
            agent,
            pg,
        })
    }

    /// Another instance of the service on the same database, as several stateless instances
    /// share one PostgreSQL (or one SQLite file): the `poam` binary in a process of its own.
    pub fn sibling(&self) -> Sibling {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap_or_else(|e| panic!("port: {e}"));
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_poam"));
        for (k, _) in std::env::vars() {
            if k.starts_with("POAM_") {
                cmd.env_remove(k);
            }
        }
        let child = cmd
            .arg("serve")
            .env("POAM_DATABASE_URL", self.settings.database_url.redacted())
            .env("POAM_DATA_DIR", &self.dir)
            .envs(GENEROUS_LIMITS.iter().copied())
            .env("POAM_JWT_SECRET", SECRET)
            .env("POAM_BIND", format!("127.0.0.1:{port}"))
            .env("POAM_LOG", "warn")
            .env("POAM_SCHEDULER_PERIOD", "off")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn: {e}"));
        let base = format!("http://127.0.0.1:{port}");
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while ureq::get(&format!("{base}/readyz")).call().is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "the second instance did not come up"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Sibling { base, child }
    }

    /// A token for `roles` over `systems` (none: every system), signed like `poam token`.
    pub fn token(&self, roles: &[Role], systems: &[SystemId]) -> String {
        let issuer = keys::load(&self.settings)
            .ok()
            .and_then(|k| k.issuer)
            .unwrap_or_else(|| panic!("no issuer"));
        issuer
            .mint("tester@example.org", Some("Tester"), roles, systems, 600)
            .unwrap_or_default()
    }

    /// A token for a named person with `roles` over every system.
    pub fn token_as(&self, sub: &str, roles: &[Role]) -> String {
        let issuer = keys::load(&self.settings)
            .ok()
            .and_then(|k| k.issuer)
            .unwrap_or_else(|| panic!("no issuer"));
        issuer.mint(sub, None, roles, &[], 600).unwrap_or_default()
    }

    pub fn admin(&self) -> String {
        self.token(&[Role::Admin], &[])
    }

    pub fn request(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Resp {
        let url = format!("{}{}", self.base, path);
        let mut req = self.agent.request(method, &url);
        if let Some(t) = token {
            req = req.set("Authorization", &format!("Bearer {t}"));
        }
        for (k, v) in headers {
            req = req.set(k, v);
        }
        let result = match body {
            Some(b) => req.send_bytes(b),
            None => req.call(),
        };
        let response = match result {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("{method} {path}: {e}"),
        };
        let status = response.status();
        let headers = response
            .headers_names()
            .into_iter()
            .filter_map(|n| {
                response
                    .header(&n)
                    .map(|v| (n.to_ascii_lowercase(), v.to_owned()))
            })
            .collect();
        let text = response.into_string().unwrap_or_default();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Resp {
            status,
            headers,
            body,
        }
    }

    /// A GET whose body is kept as bytes (spreadsheets, CSV): status, headers, body.
    pub fn get_bytes(&self, path: &str, token: &str) -> (u16, BTreeMap<String, String>, Vec<u8>) {
        let url = format!("{}{}", self.base, path);
        let result = self
            .agent
            .get(&url)
            .set("Authorization", &format!("Bearer {token}"))
            .call();
        let response = match result {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("GET {path}: {e}"),
        };
        let status = response.status();
        let headers = response
            .headers_names()
            .into_iter()
            .filter_map(|n| {
                response
                    .header(&n)
                    .map(|v| (n.to_ascii_lowercase(), v.to_owned()))
            })
            .collect();
        let mut body = Vec::new();
        let _ = std::io::Read::read_to_end(&mut response.into_reader(), &mut body);
        (status, headers, body)
    }

    pub fn get(&self, path: &str, token: &str) -> Resp {
        self.request("GET", path, Some(token), &[], None)
    }

    pub fn post(&self, path: &str, token: &str, body: &Value) -> Resp {
        let bytes = serde_json::to_vec(body).unwrap_or_default();
        self.request(
            "POST",
            path,
            Some(token),
            &[("Content-Type", "application/json")],
            Some(&bytes),
        )
    }

    pub fn patch(&self, path: &str, token: &str, body: &Value, if_match: Option<&str>) -> Resp {
        let bytes = serde_json::to_vec(body).unwrap_or_default();
        let mut headers = vec![("Content-Type", "application/merge-patch+json")];
        if let Some(tag) = if_match {
            headers.push(("If-Match", tag));
        }
        self.request("PATCH", path, Some(token), &headers, Some(&bytes))
    }

    pub fn delete(&self, path: &str, token: &str, if_match: Option<&str>) -> Resp {
        let headers: Vec<(&str, &str)> =
            if_match.map(|t| vec![("If-Match", t)]).unwrap_or_default();
        self.request("DELETE", path, Some(token), &headers, None)
    }

    /// Creates a system under the `custom` regime (no deadline policy) and returns its id.
    pub fn system(&self, name: &str) -> String {
        self.system_in(name, "custom")
    }

    /// Creates a system under a regime and returns its id.
    pub fn system_in(&self, name: &str, regime: &str) -> String {
        let r = self
            .post(
                "/v1/systems",
                &self.admin(),
                &serde_json::json!({"name": name, "regime": regime}),
            )
            .expect(201);
        r.body["id"].as_str().unwrap_or_default().to_owned()
    }

    /// Creates an item from `minimal_item()` overlaid with `extra`, returns the response.
    pub fn item(&self, system: &str, extra: Value) -> Resp {
        let mut body = minimal_item();
        if let (Some(b), Value::Object(e)) = (body.as_object_mut(), extra) {
            b.extend(e);
        }
        self.post(&format!("/v1/systems/{system}/items"), &self.admin(), &body)
    }

    /// Adds a milestone to an item; returns its id.
    pub fn milestone(&self, item: &str, due_on: &str) -> String {
        let r = self
            .post(
                &format!("/v1/items/{item}/milestones"),
                &self.admin(),
                &serde_json::json!({"title": "Fix it", "due_on": due_on}),
            )
            .expect(201);
        r.body["id"].as_str().unwrap_or_default().to_owned()
    }

    /// Uploads `content` as evidence of an item with the given form fields and extra headers.
    pub fn upload(
        &self,
        item: &str,
        token: &str,
        fields: &[(&str, &str)],
        content: &[u8],
        headers: &[(&str, &str)],
    ) -> Resp {
        let boundary = format!("poam-{}", uuid::Uuid::new_v4().simple());
        let mut body = Vec::new();
        for (k, v) in fields {
            body.extend_from_slice(
                format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n"
                )
                .as_bytes(),
            );
        }
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"rescan report.pdf\"\r\nContent-Type: application/pdf\r\n\r\n").as_bytes(),
        );
        body.extend_from_slice(content);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let ct = format!("multipart/form-data; boundary={boundary}");
        let mut all: Vec<(&str, &str)> = vec![("Content-Type", ct.as_str())];
        all.extend_from_slice(headers);
        self.request(
            "POST",
            &format!("/v1/items/{item}/evidence"),
            Some(token),
            &all,
            Some(&body),
        )
    }

    /// Evidence with default fields.
    pub fn evidence(&self, item: &str) -> Resp {
        self.upload(
            item,
            &self.admin(),
            &[("title", "Rescan"), ("kind", "scan_report")],
            b"%PDF-1.7 scan clean",
            &[],
        )
    }

    /// Requests a status change.
    pub fn transition(&self, item: &str, token: &str, body: serde_json::Value) -> Resp {
        self.post(&format!("/v1/items/{item}/transitions"), token, &body)
    }

    /// How many item events the system's history holds (up to 200).
    pub fn item_events(&self, sid: &str) -> usize {
        let history = self
            .get(
                &format!("/v1/systems/{sid}/events?resource=item&limit=200"),
                &self.admin(),
            )
            .expect(200);
        history.body["items"].as_array().map_or(0, Vec::len)
    }

    /// Asserts that the system's history chain verifies.
    pub fn assert_chain_verifies(&self, sid: &str) {
        let v = self
            .get(
                &format!("/v1/systems/{sid}/events/verification"),
                &self.admin(),
            )
            .expect(200);
        assert_eq!(v.body["verified"], true, "{}", v.body);
    }

    /// A direct connection to this test's database.
    pub fn db(&self) -> poam_persistence::db::DbPool {
        poam::open_pool(&self.settings).unwrap_or_else(|e| panic!("{e}"))
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        let handle = self.handle.clone();
        let stopped =
            std::thread::spawn(move || actix_web::rt::System::new().block_on(handle.stop(false)));
        let _ = stopped.join();
        let _ = std::fs::remove_dir_all(&self.dir);
        let _ = self.pg.take();
    }
}

/// A second server process on the same database; killed when dropped.
pub struct Sibling {
    pub base: String,
    child: std::process::Child,
}

impl Sibling {
    /// Sends SIGTERM and waits (at most 60 s) for the process to exit; its exit code.
    pub fn terminate(&mut self) -> Option<i32> {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            if std::time::Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Sibling {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The required fields of an item and nothing else.
/// The display ids POAM-0001 to POAM-`n`.
pub fn display_ids(n: usize) -> BTreeSet<String> {
    (1..=n).map(|n| format!("POAM-{n:04}")).collect()
}

pub fn minimal_item() -> Value {
    serde_json::json!({
        "title": "TLS 1.0 enabled on the load balancer",
        "description": "The public load balancer accepts TLS 1.0 handshakes.",
        "risk_rating": "high",
        "detected_on": "2026-10-01",
        "source": {"kind": "scan"}
    })
}

/// Runs a test body on SQLite and on PostgreSQL, as two tests.
#[macro_export]
macro_rules! both {
    ($name:ident) => {
        mod $name {
            #[test]
            fn sqlite() {
                if let Some(app) = $crate::harness::TestApp::spawn($crate::harness::Backend::Sqlite)
                {
                    super::$name(&app);
                }
            }
            #[test]
            fn postgres() {
                if let Some(app) =
                    $crate::harness::TestApp::spawn($crate::harness::Backend::Postgres)
                {
                    super::$name(&app);
                }
            }
        }
    };
}

/// The Python with the exchange checkers (compliance-trestle, openpyxl, jsonschema): `make
/// tools` makes `.venv-tools`. Required under CI; elsewhere its checks are skipped, loudly.
pub fn python_tools() -> Option<PathBuf> {
    let path = std::env::var_os("POAM_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv-tools/bin/python")
        });
    if path.exists() {
        return Some(path);
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!(
            "CI=true but {} is missing: run `make tools`",
            path.display()
        );
    }
    eprintln!(
        "SKIPPED: the Python checks ({} is missing; `make tools` makes it)",
        path.display()
    );
    None
}

/// Runs `script` with the tools' Python, the file as its argument; panics with its output
/// unless it exits 0. Returns its stdout.
pub fn python_check(python: &std::path::Path, script: &str, file: &std::path::Path) -> String {
    let out = std::process::Command::new(python)
        .arg("-c")
        .arg(script)
        .arg(file)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", python.display()));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "the check failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The server's date (UTC).
pub fn today() -> chrono::NaiveDate {
    chrono::Utc::now().date_naive()
}

/// The date `n` days from today (negative: ago), as the API writes dates.
pub fn days(n: i64) -> String {
    (today() + chrono::Duration::days(n)).to_string()
}

/// The codes of a problem's field errors, in order.
pub fn codes(body: &Value) -> Vec<String> {
    body["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["code"].as_str().map(str::to_owned))
        .collect()
}

/// The `id` member of a resource.
pub fn id(v: &Value) -> String {
    v["id"].as_str().unwrap_or_default().to_owned()
}
