//! Every limit answers with its own problem: body size, nesting depth, page size, bulk batch,
//! evidence size, header size; and a SQLite write lock held elsewhere is a bounded 503.

use crate::harness::{minimal_item, Backend, TestApp};
use diesel::connection::SimpleConnection;
use diesel::{Connection, RunQueryDsl, SqliteConnection};
use serde_json::json;
use std::time::{Duration, Instant};

#[test]
fn every_limit_has_its_own_answer() {
    let Some(app) = TestApp::spawn_with(
        Backend::Sqlite,
        &[
            ("POAM_BULK_MAX_ITEMS", "3"),
            ("POAM_EVIDENCE_MAX_BYTES", "1024"),
        ],
    ) else {
        return;
    };
    let admin = app.admin();
    let sid = app.system("Limits");
    let json_header: &[(&str, &str)] = &[("Content-Type", "application/json")];
    // Body: 1 MiB.
    let big = format!("{{\"name\": \"{}\"}}", "x".repeat(1_100_000));
    let r = app.request(
        "POST",
        "/v1/systems",
        Some(&admin),
        json_header,
        Some(big.as_bytes()),
    );
    assert_eq!(
        (r.status, r.code()),
        (413, "payload_too_large"),
        "{}",
        r.body
    );
    // Nesting: 64 levels.
    let deep = format!("{}{}", "[".repeat(100), "]".repeat(100));
    let r = app.request(
        "POST",
        &format!("/v1/systems/{sid}/items"),
        Some(&admin),
        json_header,
        Some(deep.as_bytes()),
    );
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(r.body["errors"][0]["code"], "too_deeply_nested");
    // Nesting inside strings does not count.
    let mut item = minimal_item();
    item["description"] = json!("[".repeat(500));
    app.post(&format!("/v1/systems/{sid}/items"), &admin, &item)
        .expect(201);
    // Page size: 200.
    let r = app.get(&format!("/v1/systems/{sid}/items?limit=201"), &admin);
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.body["errors"][0]["parameter"], "limit");
    // Bulk batch: configured 3.
    let four: Vec<_> = (0..4).map(|_| minimal_item()).collect();
    app.post(
        &format!("/v1/systems/{sid}/items/bulk"),
        &admin,
        &json!({"items": four}),
    )
    .problem(413, "batch_too_large");
    // Evidence: configured 1 KiB.
    let iid = app.item(&sid, json!({})).expect(201).body["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let r = app.upload(
        &iid,
        &admin,
        &[("title", "Too big"), ("kind", "scan_report")],
        &[b'a'; 2048],
        &[],
    );
    assert_eq!((r.status, r.code()), (413, "payload_too_large"));
    // An oversized token is refused like any bad token (and one over the header limit is 431).
    let forged = format!("eyJhbGciOiJIUzI1NiJ9.{}.sig", "A".repeat(12_000));
    let r = app.get("/v1/systems", &forged);
    assert_eq!(r.status, 401, "{}", r.body);
    // Headers: over the 16 KiB bound.
    let huge = "h".repeat(20_000);
    let url = format!("{}/v1/systems", app.base);
    match ureq::get(&url).set("X-Padding", &huge).call() {
        Err(ureq::Error::Status(status, resp)) => {
            assert_eq!(status, 431);
            assert!(resp
                .header("content-type")
                .is_some_and(|c| c.starts_with("application/problem+json")));
        }
        other => panic!("a 20 KB header: {other:?}"),
    }
}

#[derive(diesel::QueryableByName)]
struct Check {
    #[diesel(sql_type = diesel::sql_types::Text)]
    integrity_check: String,
}

#[test]
fn a_sqlite_lock_held_elsewhere_is_a_bounded_503_and_the_file_stays_sound() {
    let Some(app) = TestApp::spawn_with(Backend::Sqlite, &[("POAM_SQLITE_BUSY_TIMEOUT_MS", "300")])
    else {
        return;
    };
    let admin = app.admin();
    let sid = app.system("Busy");
    let path = app.dir.join("poam.db");
    let mut other =
        SqliteConnection::establish(&path.display().to_string()).unwrap_or_else(|e| panic!("{e}"));
    other
        .batch_execute("PRAGMA busy_timeout = 0; BEGIN IMMEDIATE")
        .unwrap_or_else(|e| panic!("{e}"));
    let started = Instant::now();
    let r = app.post(&format!("/v1/systems/{sid}/items"), &admin, &minimal_item());
    assert_eq!(
        (r.status, r.code()),
        (503, "service_unavailable"),
        "{}",
        r.body
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    // Reads go on meanwhile.
    app.get(&format!("/v1/systems/{sid}"), &admin).expect(200);
    other
        .batch_execute("ROLLBACK")
        .unwrap_or_else(|e| panic!("{e}"));
    app.post(&format!("/v1/systems/{sid}/items"), &admin, &minimal_item())
        .expect(201);
    let checks: Vec<Check> = diesel::sql_query("PRAGMA integrity_check")
        .load(&mut other)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        checks.first().map(|c| c.integrity_check.as_str()),
        Some("ok")
    );
}
