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
            assert!(!under_ci(), "CI=true but no PostgreSQL binaries under /usr/lib/postgresql");
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
            &["-D", &self.data(), "-o", &options, "-l", &log, "-w", "start"],
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

/// Creates items from `threads` threads until `stop`, recording each answer's status and id.
fn load(
    app: &Arc<TestApp>,
    sid: &str,
    threads: usize,
    stop: &Arc<AtomicBool>,
) -> Vec<std::thread::JoinHandle<Vec<(u16, Option<String>, Duration)>>> {
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
    assert_eq!((r.status, r.code()), (503, "service_unavailable"), "{}", r.body);
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
    assert!(slowest < Duration::from_secs(5), "a request hung for {slowest:?}");
    // Every acknowledged write is there.
    let acknowledged: Vec<&String> = seen.iter().filter_map(|(_, id, _)| id.as_ref()).collect();
    assert!(acknowledged.len() > 10, "{} writes", acknowledged.len());
    for id in &acknowledged {
        app.get(&format!("/v1/items/{id}"), &admin).expect(200);
    }
    let v = app
        .get(&format!("/v1/systems/{sid}/events/verification"), &admin)
        .expect(200);
    assert_eq!(v.body["verified"], true, "{}", v.body);
    eprintln!(
        "postgres outage: {} created, {} answered 503, slowest request {:?}",
        acknowledged.len(),
        seen.iter().filter(|(s, _, _)| *s == 503).count(),
        slowest
    );
}
