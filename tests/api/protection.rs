//! Protection under hostile load: stalled export readers, rate limits, concurrency limits and
//! the memory budget, trickling bodies, the evidence quota, protective headers, and the small
//! leaks (CSV formulas, file modes, weak secrets, the bootstrap token, duplicate JSON keys).

use crate::both;
use crate::harness::{minimal_item, Backend, TestApp, SECRET};
use poam_domain::Role;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Runs a test body on SQLite and on PostgreSQL, each server started with `env`.
macro_rules! both_with {
    ($name:ident, $env:expr) => {
        mod $name {
            use crate::harness::{Backend, TestApp};
            #[test]
            fn sqlite() {
                if let Some(app) = TestApp::spawn_with(Backend::Sqlite, $env) {
                    super::$name(&app);
                }
            }
            #[test]
            fn postgres() {
                if let Some(app) = TestApp::spawn_with(Backend::Postgres, $env) {
                    super::$name(&app);
                }
            }
        }
    };
}

/// The resident set of this process (the server runs in it), in MiB.
fn rss_mib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap_or(0)
        / 1024
}

/// A raw connection with a request head sent (and `body` after it), nothing read.
fn raw(app: &TestApp, head: &str, body: &[u8]) -> TcpStream {
    let addr = app.base.trim_start_matches("http://");
    let mut s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect: {e}"));
    s.write_all(head.as_bytes())
        .and_then(|_| s.write_all(body))
        .unwrap_or_else(|e| panic!("write: {e}"));
    s
}

/// Reads a whole response from a raw connection (until the server closes it or `limit`).
fn read_response(s: &mut TcpStream, limit: Duration) -> String {
    s.set_read_timeout(Some(limit)).unwrap_or_default();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                out.extend_from_slice(&buf[..n]);
                if let Some(end) = find(&out, b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&out[..end]).to_ascii_lowercase();
                    let len = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse::<usize>().ok());
                    if len.is_some_and(|len| out.len() >= end + 4 + len) {
                        break;
                    }
                }
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A connection whose receive buffer is small (4 KiB): a reader that takes nothing stops the
/// server's sending after a few MB at most, as a slow client across a network does.
fn slow_reader(app: &TestApp, head: &str) -> TcpStream {
    use socket2::{Domain, Socket, Type};
    let addr: std::net::SocketAddr = app
        .base
        .trim_start_matches("http://")
        .parse()
        .unwrap_or_else(|e| panic!("addr: {e}"));
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap_or_else(|e| panic!("{e}"));
    socket
        .set_recv_buffer_size(4096)
        .unwrap_or_else(|e| panic!("{e}"));
    socket
        .connect(&addr.into())
        .unwrap_or_else(|e| panic!("connect: {e}"));
    let mut s: TcpStream = socket.into();
    s.write_all(head.as_bytes())
        .unwrap_or_else(|e| panic!("write: {e}"));
    s
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn bulk_head(app: &TestApp, sid: &str, token: &str, len: usize) -> String {
    let host = app.base.trim_start_matches("http://");
    format!(
        "POST /v1/systems/{sid}/items/bulk HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {len}\r\n\r\n"
    )
}

// ---------------------------------------------------------------------------------------------
// Stalled export readers

fn stalled_export_readers_leave_the_service_answering(app: &TestApp) {
    let admin = app.admin();
    let sid = app.system("Large");
    let seeding = Instant::now();
    // About 5 MB of bundle: far more than the socket buffers of a reader that takes nothing.
    let long = "A weakness described at length. ".repeat(62);
    let items: Vec<Value> = (0..1000)
        .map(|i| {
            let mut it = minimal_item();
            it["title"] = json!(format!("Finding {i}"));
            it["description"] = json!(long.clone());
            it
        })
        .collect();
    app.post(
        &format!("/v1/systems/{sid}/items/bulk"),
        &admin,
        &json!({ "items": items }),
    )
    .expect(200);
    eprintln!("seeded in {:?}", seeding.elapsed());
    let viewer = app.token_as("slow-reader@example.org", &[Role::Viewer]);
    let rss_before = rss_mib();
    let host = app.base.trim_start_matches("http://").to_owned();
    let mut readers = Vec::new();
    let started = Instant::now();
    for _ in 0..8 {
        let mut s = slow_reader(
            app,
            &format!(
                "GET /v1/systems/{sid}/export?format=json HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {viewer}\r\n\r\n"
            ),
        );
        // Read the status line and a little, then stop reading.
        let mut first = [0u8; 512];
        s.set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap_or_default();
        let n = s.read(&mut first).unwrap_or(0);
        let head = String::from_utf8_lossy(&first[..n]).into_owned();
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        readers.push((s, head));
    }
    eprintln!("8 exports started in {:?}", started.elapsed());
    // Eight exports stalled (as many as the pool has connections): every other request is
    // answered at its normal pace.
    let mut slowest = Duration::ZERO;
    for _ in 0..20 {
        let started = Instant::now();
        app.get(&format!("/v1/systems/{sid}"), &admin).expect(200);
        app.get(&format!("/v1/systems/{sid}/items?limit=5"), &admin)
            .expect(200);
        slowest = slowest.max(started.elapsed() / 2);
    }
    let started = Instant::now();
    let ready = app.request("GET", "/readyz", None, &[], None);
    let readyz = started.elapsed();
    assert_eq!(
        ready.status, 200,
        "ready while readers stall: {}",
        ready.body
    );
    eprintln!(
        "8 stalled export readers: slowest ordinary request {slowest:?}, /readyz {readyz:?}, RSS {} -> {} MiB",
        rss_before,
        rss_mib()
    );
    assert!(
        slowest < Duration::from_millis(750),
        "ordinary requests slowed to {slowest:?}"
    );
    // After the send idle timeout the stalled exports are abandoned and their slots given
    // back: another export (the ninth, over a limit of eight) runs to its end.
    std::thread::sleep(Duration::from_secs(4));
    let exporting = Instant::now();
    let (status, headers, body) =
        app.get_bytes(&format!("/v1/systems/{sid}/export?format=json"), &admin);
    eprintln!("a whole export in {:?}", exporting.elapsed());
    assert_eq!(status, 200);
    assert_eq!(
        headers.get("content-length").map(String::as_str),
        Some(body.len().to_string().as_str())
    );
    let bundle: Value = serde_json::from_slice(&body).unwrap_or_default();
    assert_eq!(bundle["items"].as_array().map(Vec::len), Some(1000));
    eprintln!("export size {} bytes", body.len());
    drop(readers);
}

both_with!(
    stalled_export_readers_leave_the_service_answering,
    &[
        ("POAM_EXPORT_CONCURRENCY", "8"),
        ("POAM_SEND_IDLE_TIMEOUT", "2s"),
        ("POAM_POOL_TIMEOUT_MS", "1000"),
    ]
);

// ---------------------------------------------------------------------------------------------
// Rate limits

fn a_burst_over_the_rate_limit_is_refused_and_recovers(app: &TestApp) {
    let token = app.token_as("burst@example.org", &[Role::Viewer]);
    let other = app.token_as("calm@example.org", &[Role::Viewer]);
    let mut refused = None;
    for i in 0..30 {
        let r = app.get("/v1/systems", &token);
        match r.status {
            200 => {
                assert!(r
                    .header("ratelimit")
                    .is_some_and(|v| v.starts_with("\"token\";r=")));
                assert_eq!(r.header("ratelimit-policy"), Some("\"token\";q=10;w=2"));
            }
            429 => {
                refused = Some((i, r));
                break;
            }
            s => panic!("unexpected {s}: {}", r.body),
        }
    }
    let (i, r) = refused.unwrap_or_else(|| panic!("30 requests at once were never limited"));
    assert!(i >= 10, "the burst of 10 is let through ({i})");
    let r = r.problem(429, "rate_limited");
    let retry: u64 = r
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("Retry-After"));
    assert!((1..=2).contains(&retry), "Retry-After {retry}");
    assert!(r.header("ratelimit").is_some_and(|v| v.contains("r=0")));
    assert!(r.header("ratelimit-policy").is_some());
    // Another subject has its own budget.
    app.get("/v1/systems", &other).expect(200);
    std::thread::sleep(Duration::from_secs(retry));
    app.get("/v1/systems", &token).expect(200);
}

both_with!(
    a_burst_over_the_rate_limit_is_refused_and_recovers,
    &[
        ("POAM_RATE_LIMIT_PER_SECOND", "5"),
        ("POAM_RATE_LIMIT_BURST", "10"),
    ]
);

#[test]
fn client_addresses_and_failed_authentications_have_budgets_of_their_own() {
    let Some(app) = TestApp::spawn_with(
        Backend::Sqlite,
        &[
            ("POAM_RATE_LIMIT_ADDRESS_PER_SECOND", "2"),
            ("POAM_RATE_LIMIT_ADDRESS_BURST", "15"),
            ("POAM_AUTH_FAILURES_PER_MINUTE", "60"),
            ("POAM_AUTH_FAILURE_BURST", "3"),
        ],
    ) else {
        return;
    };
    let good = app.admin();
    // Three bad tokens are 401; the fourth spends the failure budget: 429, and until it
    // recovers even a good token from that address is refused before it is looked at.
    for _ in 0..3 {
        app.get("/v1/systems", "not-a-token")
            .problem(401, "invalid_token");
    }
    let r = app
        .get("/v1/systems", "not-a-token")
        .problem(429, "too_many_failed_authentications");
    assert!(r.header("retry-after").is_some());
    app.get("/v1/systems", &good)
        .problem(429, "too_many_failed_authentications");
    std::thread::sleep(Duration::from_millis(1100));
    app.get("/v1/systems", &good).expect(200);
    // The address budget: health probes are exempt, everything else spends it.
    for _ in 0..30 {
        app.request("GET", "/healthz", None, &[], None).expect(200);
    }
    let mut limited = false;
    for _ in 0..30 {
        let r = app.get("/v1/systems", &good);
        if r.status == 429 {
            let r = r.problem(429, "rate_limited");
            assert!(r
                .header("ratelimit-policy")
                .is_some_and(|p| p.starts_with("\"address\"")));
            assert!(r.header("retry-after").is_some());
            limited = true;
            break;
        }
    }
    assert!(limited, "the address limit held");
}

#[test]
fn rate_limits_at_zero_are_off() {
    let Some(app) = TestApp::spawn_with(
        Backend::Sqlite,
        &[
            ("POAM_RATE_LIMIT_PER_SECOND", "0"),
            ("POAM_RATE_LIMIT_BURST", "1"),
        ],
    ) else {
        return;
    };
    let token = app.admin();
    for _ in 0..50 {
        let r = app.get("/v1/systems", &token).expect(200);
        assert!(r
            .header("ratelimit")
            .is_none_or(|v| !v.starts_with("\"token\"")));
    }
}

// ---------------------------------------------------------------------------------------------
// Concurrency limits and the memory budget

fn heavy_operations_beyond_their_budget_are_refused(app: &TestApp) {
    let sid = app.system("Heavy");
    let editor = app.token_as("importer@example.org", &[Role::Editor]);
    let other = app.token_as("second@example.org", &[Role::Editor]);
    let body = serde_json::to_vec(&json!({"items": [minimal_item()]})).unwrap_or_default();
    // A bulk upsert whose body is still arriving holds its slot and its share of memory
    // (2 MB declared: 12 MB reserved, more than the whole 8 MB budget).
    let held = raw(
        app,
        &bulk_head(app, &sid, &editor, 2 << 20),
        b"{\"items\": [",
    );
    std::thread::sleep(Duration::from_millis(300));
    let headers = [("Content-Type", "application/json")];
    let bulk = format!("/v1/systems/{sid}/items/bulk");
    let r = app
        .request("POST", &bulk, Some(&editor), &headers, Some(&body))
        .problem(429, "too_many_concurrent");
    assert!(r.header("retry-after").is_some());
    let r = app
        .request("POST", &bulk, Some(&other), &headers, Some(&body))
        .problem(503, "memory_budget_exhausted");
    assert!(r.header("retry-after").is_some());
    // Imports draw on the same budget.
    app.request(
        "POST",
        &format!("/v1/systems/{sid}/imports/oscal"),
        Some(&other),
        &headers,
        Some(b"{}"),
    )
    .problem(503, "memory_budget_exhausted");
    // The held request goes: the budget is whole again.
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let r = app.request("POST", &bulk, Some(&editor), &headers, Some(&body));
        if r.status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "never recovered: {}", r.body);
        std::thread::sleep(Duration::from_millis(100));
    }
}

both_with!(
    heavy_operations_beyond_their_budget_are_refused,
    &[
        ("POAM_HEAVY_CONCURRENCY", "1"),
        ("POAM_HEAVY_CONCURRENCY_TOTAL", "4"),
        ("POAM_MEMORY_BUDGET_BYTES", "8388608"),
        ("POAM_BODY_IDLE_TIMEOUT", "30s"),
    ]
);

#[test]
fn exports_beyond_the_concurrency_limit_are_refused() {
    let Some(app) = TestApp::spawn_with(
        Backend::Sqlite,
        &[
            ("POAM_EXPORT_CONCURRENCY", "1"),
            ("POAM_SEND_IDLE_TIMEOUT", "30s"),
        ],
    ) else {
        return;
    };
    let sid = app.system("Exported");
    let long = "x".repeat(2000);
    let items: Vec<Value> = (0..600)
        .map(|_| {
            let mut it = minimal_item();
            it["description"] = json!(long.clone());
            it
        })
        .collect();
    let admin = app.admin();
    app.post(
        &format!("/v1/systems/{sid}/items/bulk"),
        &admin,
        &json!({ "items": items }),
    )
    .expect(200);
    let host = app.base.trim_start_matches("http://").to_owned();
    let mut stalled = raw(
        &app,
        &format!("GET /v1/systems/{sid}/export HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {admin}\r\n\r\n"),
        b"",
    );
    let mut first = [0u8; 64];
    let _ = stalled.read(&mut first);
    let r = app
        .get(&format!("/v1/systems/{sid}/export"), &admin)
        .problem(429, "too_many_concurrent");
    assert!(r.header("retry-after").is_some());
    let other = app.token_as("auditor@example.org", &[Role::Auditor]);
    app.get(&format!("/v1/systems/{sid}/export"), &other)
        .problem(503, "server_busy");
}

// ---------------------------------------------------------------------------------------------
// Trickling bodies

/// A refusal answered before the body was read reaches a client that sends its whole body
/// before reading (as Python's `urllib` does): the server reads and throws away the rest for
/// `POAM_LINGER_TIMEOUT` rather than closing at once, which would have the kernel reset the
/// connection, and the answer with it, at the client's next write. Here 8 MiB take about 3 s
/// to send, past actix's own linger of 1 s (with `POAM_LINGER_TIMEOUT=1s` the connection is
/// closed after 11 of the 32 chunks).
#[test]
fn a_refusal_reaches_a_client_that_sends_its_whole_body_first() {
    let Some(app) = TestApp::spawn(Backend::Sqlite) else {
        return;
    };
    let sid = app.system("Linger");
    let len = 8 << 20;
    let head = format!(
        "POST /v1/systems/{sid}/imports/oscal HTTP/1.1\r\nHost: x\r\n\
         Content-Type: application/json\r\nContent-Length: {len}\r\n\r\n"
    );
    let mut s = raw(&app, &head, b"");
    let chunk = vec![b' '; 256 << 10];
    for n in 0..32 {
        s.write_all(&chunk).unwrap_or_else(|e| {
            panic!("the connection was closed after {n} of 32 chunks, the answer lost: {e}")
        });
        std::thread::sleep(Duration::from_millis(100));
    }
    let answer = read_response(&mut s, Duration::from_secs(10));
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    assert!(answer.contains("application/problem+json"), "{answer}");
}

#[test]
fn a_trickling_or_stalled_body_is_cut_off() {
    let Some(app) = TestApp::spawn_with(
        Backend::Sqlite,
        &[
            ("POAM_BODY_IDLE_TIMEOUT", "1s"),
            ("POAM_BODY_MIN_RATE", "1024"),
        ],
    ) else {
        return;
    };
    let sid = app.system("Trickle");
    let token = app.admin();
    // Stalled: a few bytes, then nothing.
    let started = Instant::now();
    let mut s = raw(
        &app,
        &bulk_head(&app, &sid, &token, 100_000),
        b"{\"items\": [",
    );
    let got = read_response(&mut s, Duration::from_secs(10));
    assert!(got.starts_with("HTTP/1.1 408"), "{got}");
    assert!(got.contains("\"code\":\"body_timeout\""), "{got}");
    assert!(
        got.to_ascii_lowercase().contains("connection: close"),
        "{got}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    // Trickling at 200 bytes a second: never idle for a second, but far below the minimum.
    let started = Instant::now();
    let mut s = raw(&app, &bulk_head(&app, &sid, &token, 100_000), b"");
    let mut answer = String::new();
    for _ in 0..100 {
        if s.write_all(&[b' '; 20]).is_err() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        s.set_nonblocking(true).unwrap_or_default();
        let mut buf = [0u8; 4096];
        if let Ok(n) = s.read(&mut buf) {
            if n > 0 {
                answer = String::from_utf8_lossy(&buf[..n]).into_owned();
                break;
            }
        }
        s.set_nonblocking(false).unwrap_or_default();
    }
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    let took = started.elapsed();
    eprintln!("a 200 B/s body was cut off after {took:?}");
    assert!(took < Duration::from_secs(4), "{took:?}");
    // An ordinary body is untouched.
    app.post(
        &format!("/v1/systems/{sid}/items/bulk"),
        &token,
        &json!({"items": [minimal_item()]}),
    )
    .expect(200);
}

// ---------------------------------------------------------------------------------------------
// The evidence quota

fn a_full_evidence_quota_refuses_the_next_upload(app: &TestApp) {
    let sid = app.system("Quota");
    let item = app.item(&sid, json!({})).expect(201);
    let iid = item.body["id"].as_str().unwrap_or_default().to_owned();
    let admin = app.admin();
    let fields = [("title", "Rescan"), ("kind", "scan_report")];
    app.upload(&iid, &admin, &fields, &[b'a'; 600], &[])
        .expect(201);
    let events = app.get(&format!("/v1/items/{iid}/history"), &admin);
    let r = app
        .upload(&iid, &admin, &fields, &[b'b'; 600], &[])
        .problem(413, "evidence_quota_exceeded");
    assert!(
        r.body["detail"].as_str().unwrap_or("").contains("1000"),
        "{}",
        r.body
    );
    let list = app
        .get(&format!("/v1/items/{iid}/evidence"), &admin)
        .expect(200);
    assert_eq!(
        list.body["items"].as_array().map(Vec::len),
        Some(1),
        "nothing stored"
    );
    assert_eq!(
        app.get(&format!("/v1/items/{iid}/history"), &admin).body,
        events.body,
        "nothing recorded"
    );
    // What still fits is taken.
    app.upload(&iid, &admin, &fields, &[b'c'; 400], &[])
        .expect(201);
    app.upload(&iid, &admin, &fields, &[b'd'; 1], &[])
        .problem(413, "evidence_quota_exceeded");
    // Another system has its own quota.
    let other = app.system("Other");
    let oitem = app.item(&other, json!({})).expect(201);
    let oid = oitem.body["id"].as_str().unwrap_or_default().to_owned();
    app.upload(&oid, &admin, &fields, &[b'e'; 900], &[])
        .expect(201);
    // The quota and each system's use are in the metrics.
    let (status, _, metrics) = app.get_bytes("/metrics", &admin);
    assert_eq!(status, 200);
    let metrics = String::from_utf8_lossy(&metrics);
    assert!(
        metrics.contains("poam_evidence_quota_bytes 1000"),
        "{metrics}"
    );
    assert!(
        metrics.contains(&format!(
            "poam_system_evidence_bytes{{system_id=\"{sid}\"}} 1000"
        )),
        "{metrics}"
    );
    assert!(metrics.contains("poam_limit_refusals_total"), "{metrics}");
    assert!(metrics.trim_end().ends_with("# EOF"), "{metrics}");
}

both_with!(
    a_full_evidence_quota_refuses_the_next_upload,
    &[("POAM_EVIDENCE_QUOTA_BYTES", "1000")]
);

// ---------------------------------------------------------------------------------------------
// Headers

#[test]
fn protective_headers_are_present() {
    let Some(app) = TestApp::spawn(Backend::Sqlite) else {
        return;
    };
    let admin = app.admin();
    let r = app.get("/v1/systems", &admin).expect(200);
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let r = app.get("/v1/systems/nope", &admin);
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let r = app.request("GET", "/healthz", None, &[], None).expect(200);
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    let r = app
        .request("GET", "/v1/openapi.json", None, &[], None)
        .expect(200);
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    // The documentation page: a strict policy that allows exactly what the page loads.
    let docs = app.request("GET", "/docs/", None, &[], None).expect(200);
    let csp = docs
        .header("content-security-policy")
        .unwrap_or_default()
        .to_owned();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(!csp.contains("unsafe-eval"), "{csp}");
    assert_eq!(docs.header("x-frame-options"), Some("DENY"));
    let html = docs.body.as_str().unwrap_or_default().to_owned();
    assert!(!html.contains("<script>"), "no inline script: {html}");
    let mut loaded = 0;
    for attr in ["src=\"", "href=\""] {
        for part in html.split(attr).skip(1) {
            let url = part.split('"').next().unwrap_or_default();
            assert!(
                !url.contains("://") && !url.starts_with("//"),
                "the page loads only from its own origin: {url}"
            );
            let path = format!("/docs/{}", url.trim_start_matches("./"));
            let r = app.request("GET", &path, None, &[], None);
            assert_eq!(r.status, 200, "{path}");
            assert!(r.header("content-security-policy").is_some());
            loaded += 1;
        }
    }
    assert!(
        loaded >= 4,
        "the page's scripts and styles were checked ({loaded})"
    );
    let init = app.request("GET", "/docs/swagger-initializer.js", None, &[], None);
    let init = init.body.as_str().unwrap_or_default().to_owned();
    assert!(
        init.contains("/v1/openapi.json"),
        "the spec is fetched from this origin"
    );
    // Evidence downloads run sandboxed whatever their media type.
    let sid = app.system("Headers");
    let item = app.item(&sid, json!({})).expect(201);
    let iid = item.body["id"].as_str().unwrap_or_default().to_owned();
    let e = app.evidence(&iid).expect(201);
    let eid = e.body["id"].as_str().unwrap_or_default();
    let (status, headers, _) = app.get_bytes(&format!("/v1/evidence/{eid}/content"), &admin);
    assert_eq!(status, 200);
    assert_eq!(
        headers.get("content-security-policy").map(String::as_str),
        Some("sandbox")
    );
    assert_eq!(
        headers.get("x-content-type-options").map(String::as_str),
        Some("nosniff")
    );
    assert_eq!(
        headers.get("cache-control").map(String::as_str),
        Some("no-store")
    );
}

/// The documentation page works under its policy in a real browser: headless Chromium loads
/// `/docs/`, runs the vendored Swagger UI (no inline script, no eval), fetches the spec and
/// renders its operations. A policy that blocked any of it leaves no operation on the page.
#[test]
fn swagger_ui_renders_under_its_content_security_policy() {
    let Some(browser) = ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|b| {
            std::process::Command::new(b)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
    else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI needs chromium for the documentation check (apt-get install chromium)"
        );
        eprintln!("skipped: no chromium (apt-get install chromium)");
        return;
    };
    let Some(app) = TestApp::spawn(Backend::Sqlite) else {
        return;
    };
    let profile = temp_dir("chromium");
    let out = std::process::Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--virtual-time-budget=15000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--dump-dom")
        .arg(format!("{}/docs/", app.base))
        .output();
    let _ = std::fs::remove_dir_all(&profile);
    let Ok(out) = out else {
        panic!("{browser} did not start")
    };
    let dom = String::from_utf8_lossy(&out.stdout);
    // Swagger UI's operation blocks, one per operation, tagged with their paths.
    assert!(
        dom.contains("opblock-summary-path"),
        "Swagger UI rendered no operation under the policy:\n{}\n{}",
        &dom.chars().take(2000).collect::<String>(),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        dom.contains("/v1/items/{item_id}"),
        "the operations of this service's spec are on the page"
    );
}

// ---------------------------------------------------------------------------------------------
// Small leaks

#[test]
fn csv_cells_starting_with_a_tab_or_carriage_return_are_defused() {
    let Some(app) = TestApp::spawn(Backend::Sqlite) else {
        return;
    };
    let sid = app.system("Formulas");
    app.item(
        &sid,
        json!({"title": "Tab formula", "description": "\t=HYPERLINK(\"http://evil\")"}),
    )
    .expect(201);
    let (status, _, body) = app.get_bytes(
        &format!("/v1/systems/{sid}/export?format=csv"),
        &app.admin(),
    );
    assert_eq!(status, 200);
    let text = String::from_utf8_lossy(&body);
    assert!(
        text.contains("\"'\t=HYPERLINK(") || text.contains("'\t=HYPERLINK("),
        "{text}"
    );
    assert!(
        !text.contains(",\t=HYPERLINK(") && !text.contains(",\"\t=HYPERLINK("),
        "{text}"
    );
}

#[cfg(unix)]
#[test]
fn the_sqlite_file_is_private_even_in_an_existing_data_directory() {
    use std::os::unix::fs::PermissionsExt;
    // The harness creates the data directory before the server starts.
    let Some(app) = TestApp::spawn(Backend::Sqlite) else {
        return;
    };
    let mode = std::fs::metadata(app.dir.join("poam.db"))
        .map(|m| m.permissions().mode() & 0o777)
        .unwrap_or(0);
    assert_eq!(mode, 0o600, "poam.db mode {mode:o}");
}

fn poam(env: &[(&str, &str)]) -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_poam"));
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
fn weak_secrets_are_refused_with_a_clear_message() {
    let dir = temp_dir("weak");
    let data = dir.join("data").display().to_string();
    for weak in [
        "a".repeat(32),
        "ab".repeat(16),
        "0000000011111111".repeat(2),
    ] {
        let out = poam(&[("POAM_DATA_DIR", &data), ("POAM_JWT_SECRET", &weak)])
            .args(["token", "--sub", "x", "--role", "admin"])
            .output()
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(!out.status.success(), "{weak} accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("POAM_JWT_SECRET is too weak"), "{err}");
        assert!(err.contains("openssl rand"), "{err}");
    }
    let out = poam(&[("POAM_DATA_DIR", &data), ("POAM_JWT_SECRET", SECRET)])
        .args(["token", "--sub", "x", "--role", "admin"])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[cfg(unix)]
#[test]
fn secret_and_configuration_files_open_to_others_are_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = temp_dir("modes");
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap_or_default();
    // A configuration file others may read.
    let config = dir.join("poam.env");
    std::fs::write(&config, format!("POAM_JWT_SECRET={SECRET}\n")).unwrap_or_default();
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).unwrap_or_default();
    let data_env = data.display().to_string();
    let token = |extra: &[&str]| {
        poam(&[("POAM_DATA_DIR", &data_env)])
            .args(extra)
            .args(["token", "--sub", "x", "--role", "admin"])
            .output()
            .unwrap_or_else(|e| panic!("{e}"))
    };
    let config_arg = config.display().to_string();
    let out = token(&["--config", &config_arg]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("configuration file") && err.contains("chmod 600"),
        "{err}"
    );
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o600)).unwrap_or_default();
    let out = token(&["--config", &config_arg]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A signing key file others may read.
    let secret = data.join("jwt-secret");
    std::fs::write(
        &secret,
        "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    )
    .unwrap_or_default();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o640)).unwrap_or_default();
    let out = token(&[]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("jwt-secret") && err.contains("chmod 600"),
        "{err}"
    );
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap_or_default();
    assert!(token(&[]).status.success());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_bootstrap_token_is_printed_only_when_asked() {
    let dir = temp_dir("print");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("{e}"));
    let mut child = poam(&[
        ("POAM_BIND", &format!("127.0.0.1:{port}")),
        ("POAM_LOG", "warn"),
    ])
    .arg("--print-token")
    .current_dir(&dir)
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::null())
    .spawn()
    .unwrap_or_else(|e| panic!("{e}"));
    let stdout = child.stdout.take().unwrap_or_else(|| panic!("stdout"));
    let mut token = String::new();
    for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)).take(20) {
        let line = line.unwrap_or_default();
        if line.starts_with("eyJ") {
            token = line;
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(!token.is_empty(), "--print-token prints the token");
    assert!(
        !dir.join("data/bootstrap-admin-token").exists(),
        "and writes no file"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn duplicate_json_keys_are_refused_by_name(app: &TestApp) {
    let admin = app.admin();
    let headers = [("Content-Type", "application/json")];
    let r = app
        .request(
            "POST",
            "/v1/systems",
            Some(&admin),
            &headers,
            Some(br#"{"name": "First", "name": "Second"}"#),
        )
        .problem(400, "duplicate_key");
    assert_eq!(r.pointers(), vec!["/name"]);
    assert!(
        r.body["detail"].as_str().unwrap_or("").contains("`name`"),
        "{}",
        r.body
    );
    let sid = app.system("Dup");
    let r = app
        .request(
            "POST",
            &format!("/v1/systems/{sid}/items/bulk"),
            Some(&admin),
            &headers,
            Some(br#"{"items": [{"title": "a", "source": {"kind": "scan", "kind": "manual"}}]}"#),
        )
        .problem(400, "duplicate_key");
    assert_eq!(r.pointers(), vec!["/items/0/source/kind"]);
    let list = app
        .get(&format!("/v1/systems/{sid}/items"), &admin)
        .expect(200);
    assert_eq!(list.body["items"].as_array().map(Vec::len), Some(0));
    // The same members once each are fine.
    app.request(
        "POST",
        "/v1/systems",
        Some(&admin),
        &headers,
        Some(br#"{"name": "Once"}"#),
    )
    .expect(201);
}

both!(duplicate_json_keys_are_refused_by_name);
