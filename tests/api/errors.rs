use crate::both;
use crate::harness::TestApp;
use serde_json::json;

fn every_error_is_a_problem_document(app: &TestApp) {
    let admin = app.admin();
    let sid = app.system("Errors");
    let items = format!("/v1/systems/{sid}/items");
    let json_ct = [("Content-Type", "application/json")];
    // Malformed JSON: 400.
    app.request(
        "POST",
        &items,
        Some(&admin),
        &json_ct,
        Some(b"{\"title\": "),
    )
    .problem(400, "malformed_json");
    app.request("POST", &items, Some(&admin), &json_ct, Some(b"{} trailing"))
        .problem(400, "malformed_json");
    app.request("POST", &items, Some(&admin), &json_ct, Some(b""))
        .problem(400, "malformed_json");
    // Not JSON at all: 415.
    app.request(
        "POST",
        &items,
        Some(&admin),
        &[("Content-Type", "text/plain")],
        Some(b"hi"),
    )
    .problem(415, "unsupported_media_type");
    app.request("POST", &items, Some(&admin), &[], Some(b"{}"))
        .problem(415, "unsupported_media_type");
    // Too large: 413, nothing stored.
    let huge = format!("{{\"title\": \"{}\"}}", "x".repeat(2 << 20));
    app.request(
        "POST",
        &items,
        Some(&admin),
        &json_ct,
        Some(huge.as_bytes()),
    )
    .problem(413, "payload_too_large");
    // A body that is JSON but not an object.
    app.request("POST", &items, Some(&admin), &json_ct, Some(b"[]"))
        .problem(422, "validation_failed");
    // Unknown route, wrong method, bad id.
    app.get("/v1/nothing-here", &admin)
        .problem(404, "route_not_found");
    app.request("GET", "/nothing", None, &[], None)
        .problem(404, "route_not_found");
    let r = app
        .request(
            "PUT",
            &format!("/v1/systems/{sid}"),
            Some(&admin),
            &json_ct,
            Some(b"{}"),
        )
        .problem(405, "method_not_allowed");
    assert_eq!(r.header("allow"), Some("GET, PATCH, DELETE"));
    let r = app
        .request("DELETE", "/v1/systems", Some(&admin), &[], None)
        .problem(405, "method_not_allowed");
    assert_eq!(r.header("allow"), Some("GET, POST"));
    app.get("/v1/items/not-a-uuid", &admin)
        .problem(404, "not_found");
    // The item list is still empty: none of the refused writes stored anything.
    assert_eq!(app.get(&items, &admin).body["items"], json!([]));
    // Request ids: ours when sane, a fresh one otherwise.
    let r = app.request(
        "GET",
        "/healthz",
        None,
        &[("x-request-id", "trace-42")],
        None,
    );
    assert_eq!(r.header("x-request-id"), Some("trace-42"));
    let r = app.request(
        "GET",
        "/healthz",
        None,
        &[("x-request-id", &"x".repeat(100))],
        None,
    );
    assert_eq!(r.header("x-request-id").map(str::len), Some(36));
}
both!(every_error_is_a_problem_document);
