//! Faults provoked on real databases: PostgreSQL stopped under load and started again.

use crate::harness::{minimal_item, Backend, TestApp};
use serde_json::json;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// A PostgreSQL cluster of this test's own: initdb and pg_ctl on a spare port, in a temporary
/// directory; stopped and removed when dropped.
struct PrivatePg {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
    as_postgres: bool,
}

impl PrivatePg {
    fn start() -> Option<PrivatePg> {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()
            .and_then(|dirs| {
                dirs.filter_map(|d| d.ok().map(|d| d.path().join("bin")))
                    .filter(|b| b.join("initdb").exists())
                    .max()
            });
        let Some(bin) = bin else {
            assert!(
                !under_ci(),
                "CI=true but no PostgreSQL binaries under /usr/lib/postgresql"
            );
            eprintln!("SKIPPED: no initdb under /usr/lib/postgresql");
            return None;
        };
        let root = Command::new("id")
            .arg("-u")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
            .unwrap_or(false);
        let dir = std::env::temp_dir().join(format!("poam-pg-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        if root {
            // PostgreSQL refuses to run as root: the cluster belongs to the postgres user.
            let ok = Command::new("chown")
                .args(["postgres:postgres", &dir.display().to_string()])
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "cannot hand {} to the postgres user", dir.display());
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap_or_else(|e| panic!("{e}"));
        let pg = PrivatePg {
            dir,
            bin,
            port,
            as_postgres: root,
        };
        let data = pg.data();
        pg.run(
            "initdb",
            &["-D", &data, "-A", "trust", "-U", "postgres", "--no-sync"],
        );
        pg.resume();
        Some(pg)
    }

    fn data(&self) -> String {
        self.dir.join("data").display().to_string()
    }

    fn run(&self, tool: &str, args: &[&str]) {
        let exe = self.bin.join(tool);
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&exe);
            c
        } else {
            Command::new(&exe)
        };
        let out = cmd
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("{tool}: {e}"));
        assert!(
            out.status.success(),
            "{tool} {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn resume(&self) {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {} -c fsync=off",
            self.port,
            self.dir.display()
        );
        let log = self.dir.join("log").display().to_string();
        self.run(
            "pg_ctl",
            &[
                "-D",
                &self.data(),
                "-o",
                &options,
                "-l",
                &log,
                "-w",
                "start",
            ],
        );
    }

    fn stop(&self) {
        self.run("pg_ctl", &["-D", &self.data(), "-m", "fast", "-w", "stop"]);
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for PrivatePg {
    fn drop(&mut self) {
        let exe = self.bin.join("pg_ctl");
        let data = self.data();
        let args = ["-D", data.as_str(), "-m", "immediate", "stop"];
        let _ = if self.as_postgres {
            Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(&exe)
                .args(args)
                .output()
        } else {
            Command::new(&exe).args(args).output()
        };
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One answer seen by the load: status, the created id, how long it took.
type Answer = (u16, Option<String>, Duration);

/// Creates items from `threads` threads until `stop`, recording each answer's status and id.
fn load(
    app: &Arc<TestApp>,
    sid: &str,
    threads: usize,
    stop: &Arc<AtomicBool>,
) -> Vec<std::thread::JoinHandle<Vec<Answer>>> {
    (0..threads)
        .map(|t| {
            let (app, stop, sid) = (Arc::clone(app), Arc::clone(stop), sid.to_owned());
            std::thread::spawn(move || {
                let token = app.admin();
                let mut seen = Vec::new();
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let mut body = minimal_item();
                    body["title"] = json!(format!("Load {t}-{n}"));
                    let started = Instant::now();
                    let r = app.post(&format!("/v1/systems/{sid}/items"), &token, &body);
                    let id = r.body["id"].as_str().map(str::to_owned);
                    seen.push((r.status, id, started.elapsed()));
                    if r.status == 503 {
                        std::thread::sleep(Duration::from_millis(50));
                    }
                }
                seen
            })
        })
        .collect()
}

#[test]
fn postgres_going_away_is_503_and_the_service_recovers_by_itself() {
    let Some(pg) = PrivatePg::start() else {
        return;
    };
    let url = pg.url();
    let Some(app) = TestApp::spawn_with(
        Backend::Sqlite,
        &[
            ("POAM_DATABASE_URL", url.as_str()),
            ("POAM_POOL_TIMEOUT_MS", "1000"),
            ("POAM_POOL_SIZE", "4"),
        ],
    ) else {
        return;
    };
    let app = Arc::new(app);
    let admin = app.admin();
    let sid = app.system("Faults");
    let stop = Arc::new(AtomicBool::new(false));
    let workers = load(&app, &sid, 3, &stop);
    std::thread::sleep(Duration::from_millis(800));

    pg.stop();
    // Down: readiness says so, and requests get a 503 problem quickly, never a hang or a 500.
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    let ready = app.request("GET", "/readyz", None, &[], None);
    assert_eq!(ready.status, 503, "{}", ready.body);
    let r = app.get(&format!("/v1/systems/{sid}"), &admin);
    assert_eq!(
        (r.status, r.code()),
        (503, "service_unavailable"),
        "{}",
        r.body
    );
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "two requests took {:?} while the database was down",
        started.elapsed()
    );
    std::thread::sleep(Duration::from_millis(700));

    pg.resume();
    // Back: no restart of the service, it becomes ready again by itself.
    let deadline = Instant::now() + Duration::from_secs(20);
    while app.request("GET", "/readyz", None, &[], None).status != 200 {
        assert!(Instant::now() < deadline, "the service did not recover");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(800));
    stop.store(true, Ordering::Relaxed);
    let seen: Vec<_> = workers
        .into_iter()
        .flat_map(|w| w.join().unwrap_or_default())
        .collect();
    let statuses: std::collections::BTreeSet<u16> = seen.iter().map(|(s, _, _)| *s).collect();
    assert!(
        statuses.iter().all(|s| [201, 503].contains(s)),
        "only created or unavailable: {statuses:?}"
    );
    assert!(statuses.contains(&503), "the outage was seen: {statuses:?}");
    let slowest = seen.iter().map(|(_, _, d)| *d).max().unwrap_or_default();
    assert!(
        slowest < Duration::from_secs(5),
        "a request hung for {slowest:?}"
    );
    // Every acknowledged write is there.
    let acknowledged: Vec<&String> = seen.iter().filter_map(|(_, id, _)| id.as_ref()).collect();
    assert!(acknowledged.len() > 10, "{} writes", acknowledged.len());
    for id in &acknowledged {
        app.get(&format!("/v1/items/{id}"), &admin).expect(200);
    }
    app.assert_chain_verifies(&sid);
    eprintln!(
        "postgres outage: {} created, {} answered 503, slowest request {:?}",
        acknowledged.len(),
        seen.iter().filter(|(s, _, _)| *s == 503).count(),
        slowest
    );
}

/// Terminates every server process of connections named `application`; how many it ended.
fn terminate_connections(application: &str) -> usize {
    use diesel::{Connection, RunQueryDsl};
    #[derive(diesel::QueryableByName)]
    struct Ended {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        ended: bool,
    }
    let mut conn = diesel::PgConnection::establish(&crate::harness::postgres_url())
        .unwrap_or_else(|e| panic!("{e}"));
    let rows: Vec<Ended> = diesel::sql_query(
        "SELECT pg_terminate_backend(pid) AS ended FROM pg_stat_activity WHERE application_name = $1",
    )
    .bind::<diesel::sql_types::Text, _>(application)
    .load(&mut conn)
    .unwrap_or_else(|e| panic!("{e}"));
    rows.iter().filter(|r| r.ended).count()
}

/// The pool does not ping a connection on every checkout (a round trip per request): it pings
/// one that sat idle, and discards one that failed as a dead one. Connections the server ends
/// while the service is quiet (a restart, `idle_session_timeout`, an administrator) never fail
/// a request; ended while busy, each fails at most one request, answered 503.
#[test]
fn postgres_connections_ended_by_the_server_are_replaced() {
    let Some(schema) = crate::harness::PgSchema::create() else {
        return;
    };
    let application = format!("poam_ended_{}", &schema.name[schema.name.len() - 12..]);
    let url = format!("{}&application_name={application}", schema.url);
    let Some(app) = TestApp::spawn_with(Backend::Sqlite, &[("POAM_DATABASE_URL", &url)]) else {
        return;
    };
    let app = Arc::new(app);
    let admin = app.admin();
    let sid = app.system("Ended");
    let id = app.item(&sid, json!({})).expect(201).body["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let path = format!("/v1/items/{id}");
    // Several connections in the pool: concurrent reads.
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let (app, admin, path) = (Arc::clone(&app), admin.clone(), path.clone());
            std::thread::spawn(move || {
                for _ in 0..25 {
                    app.get(&path, &admin).expect(200);
                }
            })
        })
        .collect();
    for r in readers {
        r.join().unwrap_or_else(|_| panic!("a reader failed"));
    }

    // Ended while the service is quiet: not one request fails.
    let ended = terminate_connections(&application);
    assert!(ended >= 1, "no connection of the service was found");
    std::thread::sleep(Duration::from_millis(1500));
    for n in 0..30 {
        let r = app.get(&path, &admin);
        assert_eq!(
            r.status, 200,
            "read {n} after {ended} connections ended: {}",
            r.body
        );
    }
    let mut body = minimal_item();
    body["title"] = json!("After the connections ended");
    app.post(&format!("/v1/systems/{sid}/items"), &admin, &body)
        .expect(201);

    // Ended while busy: each dead connection fails at most one request, then the pool has
    // live ones again.
    let ended = terminate_connections(&application);
    let statuses: Vec<u16> = (0..40).map(|_| app.get(&path, &admin).status).collect();
    assert!(
        statuses.iter().all(|s| [200, 503].contains(s)),
        "{statuses:?}"
    );
    let failed = statuses.iter().filter(|s| **s == 503).count();
    assert!(
        failed <= ended,
        "{failed} failed reads for {ended} ended connections: {statuses:?}"
    );
    assert!(
        statuses[ended..].iter().all(|s| *s == 200),
        "the service did not recover: {statuses:?}"
    );
    app.assert_chain_verifies(&sid);
}

/// A request to another base URL: `(status, body)`, or `None` when the connection was refused
/// or dropped (a server that stopped accepting).
fn call(
    agent: &ureq::Agent,
    method: &str,
    url: &str,
    token: &str,
    headers: &[(&str, &str)],
    body: Option<&serde_json::Value>,
) -> Option<(u16, serde_json::Value, Option<String>)> {
    let mut req = agent
        .request(method, url)
        .set("Authorization", &format!("Bearer {token}"));
    for (k, v) in headers {
        req = req.set(k, v);
    }
    let result = match body {
        Some(b) => req.send_json(b.clone()),
        None => req.call(),
    };
    let response = match result {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(_) => return None,
    };
    let status = response.status();
    let etag = response.header("etag").map(str::to_owned);
    let body = response.into_json().unwrap_or_default();
    Some((status, body, etag))
}

fn sigterm_under_load_finishes_in_flight_and_loses_nothing(app: &TestApp) {
    let admin = app.admin();
    let sid = app.system("Shutdown");
    let mut sibling = app.sibling();
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let bad = Arc::new(Mutex::new(Vec::<String>::new()));
    let workers: Vec<_> = (0..4)
        .map(|t| {
            let (stop, acked, bad) = (Arc::clone(&stop), Arc::clone(&acked), Arc::clone(&bad));
            let (url, token) = (
                format!("{}/v1/systems/{sid}/items", sibling.base),
                admin.clone(),
            );
            std::thread::spawn(move || {
                let agent = ureq::AgentBuilder::new()
                    .timeout(Duration::from_secs(60))
                    .build();
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let mut body = minimal_item();
                    body["title"] = json!(format!("Before shutdown {t}-{n}"));
                    match call(&agent, "POST", &url, &token, &[], Some(&body)) {
                        Some((201, b, _)) => {
                            if let Some(id) = b["id"].as_str() {
                                if let Ok(mut a) = acked.lock() {
                                    a.push(id.to_owned());
                                }
                            }
                        }
                        Some((503, _, _)) => {}
                        Some((status, b, _)) => {
                            if let Ok(mut x) = bad.lock() {
                                x.push(format!("{status}: {b}"));
                            }
                        }
                        // Refused: the server stopped accepting; that is the point.
                        None => std::thread::sleep(Duration::from_millis(20)),
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    let code = sibling.terminate();
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        let _ = w.join();
    }
    assert_eq!(code, Some(0), "a graceful stop exits 0");
    let bad = bad.lock().map(|b| b.clone()).unwrap_or_default();
    assert!(bad.is_empty(), "answers other than 201/503: {bad:?}");
    let acked = acked.lock().map(|a| a.clone()).unwrap_or_default();
    assert!(acked.len() > 10, "{} writes acknowledged", acked.len());
    for id in &acked {
        app.get(&format!("/v1/items/{id}"), &admin).expect(200);
    }
    let v = app
        .get(&format!("/v1/systems/{sid}/events/verification"), &admin)
        .expect(200);
    assert_eq!(v.body["verified"], true);
}
crate::both!(sigterm_under_load_finishes_in_flight_and_loses_nothing);

fn two_instances_writing_the_same_items_lose_nothing(app: &TestApp) {
    let admin = app.admin();
    let sid = app.system("Two instances");
    let items: Vec<String> = (0..5)
        .map(|_| {
            app.item(&sid, json!({})).expect(201).body["id"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    // Two `poam serve` processes of their own on the test's database.
    let (first, second) = (app.sibling(), app.sibling());
    let bases = [first.base.clone(), second.base.clone()];
    // Each worker: read an item, append its mark to the comments under If-Match, retry on 412.
    // A lost update would drop a mark.
    let workers: Vec<_> = (0..4)
        .map(|w| {
            let (base, token, items, sid) = (
                bases[w % 2].clone(),
                admin.clone(),
                items.clone(),
                sid.clone(),
            );
            std::thread::spawn(move || {
                let agent = ureq::AgentBuilder::new()
                    .timeout(Duration::from_secs(60))
                    .build();
                let (mut applied, mut conflicts, mut created) = (0, 0, Vec::new());
                for round in 0..15 {
                    let id = &items[round % items.len()];
                    let url = format!("{base}/v1/items/{id}");
                    loop {
                        let Some((200, current, Some(etag))) =
                            call(&agent, "GET", &url, &token, &[], None)
                        else {
                            panic!("GET {url} failed");
                        };
                        let before = current["comments"].as_str().unwrap_or("").to_owned();
                        let patch = json!({"comments": format!("{before}[w{w}r{round}]")});
                        match call(
                            &agent,
                            "PATCH",
                            &url,
                            &token,
                            &[
                                ("If-Match", &etag),
                                ("Content-Type", "application/merge-patch+json"),
                            ],
                            Some(&patch),
                        ) {
                            Some((200, _, _)) => {
                                applied += 1;
                                break;
                            }
                            Some((412, _, _)) => conflicts += 1,
                            other => panic!("PATCH {url}: {other:?}"),
                        }
                    }
                    // And a create on each round: display ids stay unique across instances.
                    let r = call(
                        &agent,
                        "POST",
                        &format!("{base}/v1/systems/{sid}/items"),
                        &token,
                        &[],
                        Some(&minimal_item()),
                    );
                    if let Some((201, b, _)) = r {
                        created.push(b["display_id"].as_str().unwrap_or_default().to_owned());
                    }
                }
                (applied, conflicts, created)
            })
        })
        .collect();
    let results: Vec<_> = workers
        .into_iter()
        .map(|w| w.join().unwrap_or_else(|_| panic!("a worker panicked")))
        .collect();
    let applied: usize = results.iter().map(|r| r.0).sum();
    assert_eq!(applied, 60);
    // Every mark is in its item, and each item's version counts every applied write.
    let mut marks = 0;
    for id in &items {
        let item = app.get(&format!("/v1/items/{id}"), &admin).expect(200);
        let comments = item.body["comments"].as_str().unwrap_or("");
        let n = comments.matches('[').count();
        marks += n;
        assert_eq!(
            item.body["version"].as_i64(),
            Some(1 + n as i64),
            "{comments}"
        );
    }
    assert_eq!(marks, 60, "no update was lost");
    let mut display: Vec<String> = results.iter().flat_map(|r| r.2.clone()).collect();
    let total = display.len();
    display.sort();
    display.dedup();
    assert_eq!((display.len(), total), (60, 60), "display ids unique");
    // The chain is intact: the command line agrees.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_poam"))
        .args(["audit", "verify"])
        .env("POAM_DATABASE_URL", app.settings.database_url.redacted())
        .env("POAM_DATA_DIR", &app.dir)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    eprintln!(
        "two instances: 60 writes applied after {} If-Match conflicts",
        results.iter().map(|r| r.1).sum::<usize>()
    );
}
crate::both!(two_instances_writing_the_same_items_lose_nothing);

/// `chattr` on the given files; false when the filesystem or the user cannot.
fn chattr(flag: &str, files: &[PathBuf]) -> bool {
    files.iter().all(|f| {
        Command::new("chattr")
            .arg(flag)
            .arg(f)
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

#[test]
fn a_sqlite_file_that_turns_read_only_is_503_and_writes_resume_after() {
    let Some(app) = TestApp::spawn(Backend::Sqlite) else {
        return;
    };
    let admin = app.admin();
    let sid = app.system("Read-only");
    app.post(&format!("/v1/systems/{sid}/items"), &admin, &minimal_item())
        .expect(201);
    let files: Vec<PathBuf> = ["poam.db", "poam.db-wal"]
        .iter()
        .map(|f| app.dir.join(f))
        .filter(|f| f.exists())
        .collect();
    // Immutable files refuse writes even to root (file modes would not).
    if !chattr("+i", &files) {
        chattr("-i", &files);
        eprintln!("SKIPPED: chattr +i is not available on this filesystem");
        return;
    }
    let r = app.post(&format!("/v1/systems/{sid}/items"), &admin, &minimal_item());
    let read = app.get(&format!("/v1/systems/{sid}"), &admin);
    chattr("-i", &files);
    assert_eq!(
        (r.status, r.code()),
        (503, "service_unavailable"),
        "{}",
        r.body
    );
    assert_eq!(read.status, 200, "reads go on: {}", read.body);
    // The service did not die: writes resume once the file is writable again.
    app.post(&format!("/v1/systems/{sid}/items"), &admin, &minimal_item())
        .expect(201);
}

#[test]
fn a_sqlite_file_removed_under_the_service_is_503_not_silent_loss() {
    let Some(app) = TestApp::spawn(Backend::Sqlite) else {
        return;
    };
    let admin = app.admin();
    let sid = app.system("Vanishing");
    let db = app.dir.join("poam.db");
    let moved = app.dir.join("poam.db.moved");
    std::fs::rename(&db, &moved).unwrap_or_else(|e| panic!("{e}"));
    // Writes would land in an unlinked inode and vanish at the next start: refused instead.
    let r = app.post(&format!("/v1/systems/{sid}/items"), &admin, &minimal_item());
    assert_eq!(
        (r.status, r.code()),
        (503, "service_unavailable"),
        "{}",
        r.body
    );
    let ready = app.request("GET", "/readyz", None, &[], None);
    assert_eq!(ready.status, 503, "not ready without its file");
    // Put back, the service carries on (no restart).
    std::fs::rename(&moved, &db).unwrap_or_else(|e| panic!("{e}"));
    app.post(&format!("/v1/systems/{sid}/items"), &admin, &minimal_item())
        .expect(201);
    app.request("GET", "/readyz", None, &[], None).expect(200);
}
