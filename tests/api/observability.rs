//! What operators see: one structured log line per request (request id, method, route
//! template, status, latency, subject; never a token), and Prometheus metrics.

use crate::harness::{Backend, TestApp, SECRET};
use poam_domain::Role;
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn metrics_count_requests_by_route_and_are_protected(app: &TestApp) {
    let admin = app.admin();
    let sid = app.system("Observed");
    for _ in 0..3 {
        app.get(&format!("/v1/systems/{sid}"), &admin).expect(200);
    }
    app.get(&format!("/v1/systems/{}", uuid::Uuid::new_v4()), &admin)
        .expect(404);
    let r = app.request("GET", "/metrics", None, &[], None);
    assert_eq!(r.status, 401, "no token, no metrics");
    let viewer = app.token(&[Role::Viewer], &[]);
    assert_eq!(app.get("/metrics", &viewer).status, 403);
    let auditor = app.token(&[Role::Auditor], &[]);
    let r = app.get("/metrics", &auditor).expect(200);
    assert!(r
        .header("content-type")
        .is_some_and(|c| c.starts_with("application/openmetrics-text; version=1.0.0")));
    let text = r.body.as_str().unwrap_or_default().to_owned();
    assert!(
        text.contains(
            "poam_http_requests_total{method=\"GET\",route=\"/v1/systems/{system_id}\",status=\"200\"} 3"
        ),
        "{text}"
    );
    assert!(text.contains(
        "poam_http_requests_total{method=\"GET\",route=\"/v1/systems/{system_id}\",status=\"404\"} 1"
    ));
    assert!(text.contains(
        "poam_http_request_duration_seconds_count{method=\"GET\",route=\"/v1/systems/{system_id}\",status=\"200\"} 3"
    ));
    for name in [
        "poam_db_pool_connections ",
        "poam_db_pool_max_connections 8",
        "poam_db_unavailable_total ",
        "poam_evidence_stored_bytes_total ",
    ] {
        assert!(text.contains(name), "{name} in {text}");
    }
    assert!(!text.contains(&admin), "no token in the metrics");
}
crate::both!(metrics_count_requests_by_route_and_are_protected);

/// `GET /v1/items/{item_id}` with a hyphenated id is answered before actix's router
/// (`hot_routes`); any other spelling of the id goes through the router. Both answer alike, to
/// the same callers, under the same route in the metrics.
fn an_item_reads_alike_whichever_way_it_is_routed(app: &TestApp) {
    let admin = app.admin();
    let sid = app.system("Hot");
    let iid = crate::harness::id(&app.item(&sid, serde_json::json!({})).expect(201).body);
    let simple = iid.replace('-', "");
    let hot = app.get(&format!("/v1/items/{iid}"), &admin).expect(200);
    let routed = app.get(&format!("/v1/items/{simple}"), &admin).expect(200);
    assert_eq!(hot.body, routed.body);
    assert_eq!(hot.header("etag"), routed.header("etag"));
    for name in [
        "cache-control",
        "x-content-type-options",
        "ratelimit",
        "content-type",
    ] {
        assert_eq!(hot.header(name), routed.header(name), "{name}");
    }
    // The same refusals: no token, a token for another system, an unknown item.
    let other: poam_domain::SystemId = app.system("Other").parse().unwrap_or_default();
    let stranger = app.token(&[Role::Viewer], &[other]);
    for path in [format!("/v1/items/{iid}"), format!("/v1/items/{simple}")] {
        app.request("GET", &path, None, &[], None)
            .problem(401, "missing_token");
        app.get(&path, &stranger).problem(404, "not_found");
    }
    let unknown = uuid::Uuid::new_v4();
    app.get(&format!("/v1/items/{unknown}"), &admin)
        .problem(404, "not_found");
    let auditor = app.token(&[Role::Auditor], &[]);
    let text = app.get("/metrics", &auditor).expect(200).body;
    let text = text.as_str().unwrap_or_default();
    let line = |status: u16| {
        format!("poam_http_requests_total{{method=\"GET\",route=\"/v1/items/{{item_id}}\",status=\"{status}\"}}")
    };
    assert!(text.contains(&format!("{} 2\n", line(200))), "{text}");
    assert!(text.contains(&format!("{} 2\n", line(401))), "{text}");
    assert!(text.contains(&format!("{} 3\n", line(404))), "{text}");
}
crate::both!(an_item_reads_alike_whichever_way_it_is_routed);

#[test]
fn metrics_can_be_turned_off() {
    let Some(app) = TestApp::spawn_with(Backend::Sqlite, &[("POAM_METRICS", "off")]) else {
        return;
    };
    app.get("/metrics", &app.admin())
        .problem(404, "route_not_found");
}

#[test]
fn one_json_line_per_request_without_the_token() {
    let dir = std::env::temp_dir().join(format!("poam-log-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap_or_default();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("{e}"));
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_poam"));
    for (k, _) in std::env::vars() {
        if k.starts_with("POAM_") {
            cmd.env_remove(k);
        }
    }
    let mut child = cmd
        .arg("serve")
        .env("POAM_DATA_DIR", &dir)
        .env("POAM_BIND", format!("127.0.0.1:{port}"))
        .env("POAM_JWT_SECRET", SECRET)
        .env("POAM_LOG_FORMAT", "json")
        .env("POAM_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while ureq::get(&format!("{base}/readyz")).call().is_err() {
        assert!(Instant::now() < deadline, "the server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let token = Command::new(env!("CARGO_BIN_EXE_poam"))
        .args(["token", "--sub", "dana@example.org", "--role", "admin"])
        .env("POAM_DATA_DIR", &dir)
        .env("POAM_JWT_SECRET", SECRET)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let id = uuid::Uuid::new_v4();
    let r = ureq::get(&format!("{base}/v1/systems/{id}"))
        .set("Authorization", &format!("Bearer {token}"))
        .set("x-request-id", "trace-me-42")
        .call();
    assert!(matches!(r, Err(ureq::Error::Status(404, _))));
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    let mut log = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut log);
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(!log.contains(&token), "the token never reaches the log");
    let line: serde_json::Value = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v.to_string().contains("trace-me-42") && v.to_string().contains("\"status\":404"))
        .unwrap_or_else(|| panic!("no access line in:\n{log}"));
    let text = line.to_string();
    for want in [
        "\"route\":\"/v1/systems/{system_id}\"",
        "\"subject\":\"dana@example.org\"",
        "\"method\":\"GET\"",
        "\"request_id\":\"trace-me-42\"",
        "\"ms\":",
    ] {
        assert!(text.contains(want), "{want} in {text}");
    }
}
