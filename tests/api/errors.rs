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

/// Input that one backend would store and the other refuse is refused by both, at the edge.
fn input_both_backends_cannot_store_is_refused(app: &TestApp) {
    let admin = app.admin();
    let sid = app.system("Edges");
    let r = app
        .item(&sid, json!({"title": "nul\u{0}byte"}))
        .problem(422, "validation_failed");
    assert_eq!(r.pointers(), vec!["/title"]);
    assert_eq!(r.body["errors"][0]["code"], "invalid_character");
    let r = app
        .item(&sid, json!({"assets": ["ok", "a\u{0}"]}))
        .problem(422, "validation_failed");
    assert_eq!(r.pointers(), vec!["/assets/1"]);
    let r = app
        .get(&format!("/v1/systems/{sid}/items?q=a%00b"), &admin)
        .problem(400, "invalid_query");
    assert_eq!(r.body["errors"][0]["code"], "invalid_character");
    for date in ["-5000-01-01", "+10000-01-01", "1899-12-31"] {
        let r = app
            .item(&sid, json!({"scheduled_completion": date}))
            .problem(422, "validation_failed");
        assert_eq!(r.pointers(), vec!["/scheduled_completion"], "{date}");
        assert_eq!(r.body["errors"][0]["code"], "date_out_of_range", "{date}");
    }
    let r = app
        .get(
            &format!("/v1/systems/{sid}/items?due_before=%2B10000-01-01"),
            &admin,
        )
        .problem(400, "invalid_query");
    assert_eq!(r.body["errors"][0]["parameter"], "due_before");
    assert_eq!(
        app.get(&format!("/v1/systems/{sid}/items"), &admin).body["items"],
        json!([]),
        "nothing was stored"
    );
}
both!(input_both_backends_cannot_store_is_refused);

/// A path that matches a literal route is judged by that route's methods, not by a parameter
/// sibling's: `PATCH /v1/items/validate` is a 405 (Allow: POST), not `/v1/items/{item_id}`'s 404.
fn literal_routes_win_over_parameters(app: &TestApp) {
    let admin = app.admin();
    let sid = app.system("Routes");
    let json_ct = [("Content-Type", "application/json")];
    for method in ["GET", "PATCH", "DELETE", "PUT"] {
        let r = app
            .request(
                method,
                "/v1/items/validate",
                Some(&admin),
                &json_ct,
                Some(b"{}"),
            )
            .problem(405, "method_not_allowed");
        assert_eq!(r.header("allow"), Some("POST"), "{method}");
    }
    // Without a token too: the route decides before anyone is asked who they are.
    app.request("PATCH", "/v1/items/validate", None, &json_ct, Some(b"{}"))
        .problem(405, "method_not_allowed");
    // The literal route itself still answers, and a parameter route still refuses a bad id.
    let proposed = json!({"system_id": sid, "item": crate::harness::minimal_item()});
    app.post("/v1/items/validate", &admin, &proposed)
        .expect(200);
    app.get("/v1/items/not-a-uuid", &admin)
        .problem(404, "not_found");
    app.patch("/v1/items/not-a-uuid", &admin, &json!({}), None)
        .problem(404, "not_found");
    // Other literal routes under parameters.
    for (method, path, allow) in [
        ("GET", format!("/v1/systems/{sid}/items/bulk"), "POST"),
        ("PATCH", format!("/v1/systems/{sid}/items/bulk"), "POST"),
        (
            "POST",
            format!("/v1/systems/{sid}/events/verification"),
            "GET",
        ),
        ("DELETE", format!("/v1/systems/{sid}/cmmc/score"), "GET"),
        ("GET", format!("/v1/systems/{sid}/imports/oscal"), "POST"),
    ] {
        let r = app
            .request(method, &path, Some(&admin), &json_ct, Some(b"{}"))
            .problem(405, "method_not_allowed");
        assert_eq!(r.header("allow"), Some(allow), "{method} {path}");
    }
}
both!(literal_routes_win_over_parameters);
