//! Safe retries: `Idempotency-Key` on POST.

use crate::both;
use crate::harness::{minimal_item, TestApp};
use poam_domain::Role;
use serde_json::json;

fn post_with_key(
    app: &TestApp,
    path: &str,
    token: &str,
    key: &str,
    body: &serde_json::Value,
) -> crate::harness::Resp {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    app.request(
        "POST",
        path,
        Some(token),
        &[
            ("Content-Type", "application/json"),
            ("Idempotency-Key", key),
        ],
        Some(&bytes),
    )
}

fn retries_replay_the_first_response_and_create_nothing(app: &TestApp) {
    let sid = app.system("Retries");
    let admin = app.admin();
    let path = format!("/v1/systems/{sid}/items");
    let first = post_with_key(app, &path, &admin, "scan-7781", &minimal_item()).expect(201);
    assert_eq!(first.header("idempotent-replayed"), None);
    let again = post_with_key(app, &path, &admin, "scan-7781", &minimal_item()).expect(201);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.body, first.body, "the first response, byte for byte");
    assert_eq!(again.header("location"), first.header("location"));
    assert_eq!(again.header("etag"), first.header("etag"));
    assert_eq!(
        app.get(&path, &admin).body["items"]
            .as_array()
            .map(Vec::len),
        Some(1),
        "created once"
    );

    // The same key for another request is refused; another caller's key space is their own.
    let mut other = minimal_item();
    other["title"] = json!("Another finding");
    let r =
        post_with_key(app, &path, &admin, "scan-7781", &other).problem(422, "validation_failed");
    assert_eq!(r.body["errors"][0]["code"], "idempotency_key_reused");
    let editor = app.token_as("scanner@ci", &[Role::Editor]);
    post_with_key(app, &path, &editor, "scan-7781", &other).expect(201);

    // A refused request creates nothing and does not use up its key.
    let mut bad = minimal_item();
    bad["risk_rating"] = json!("urgent");
    post_with_key(app, &path, &admin, "scan-7782", &bad).problem(422, "validation_failed");
    let fixed = post_with_key(app, &path, &admin, "scan-7782", &minimal_item()).expect(201);
    assert_eq!(fixed.header("idempotent-replayed"), None);

    // Every POST takes a key: transitions and reviews too.
    let iid = first.body["id"].as_str().unwrap_or_default().to_owned();
    let review = json!({"kind": "periodic", "decision": "noted", "notes": "weekly"});
    let r1 = post_with_key(
        app,
        &format!("/v1/items/{iid}/reviews"),
        &admin,
        "rev-1",
        &review,
    )
    .expect(201);
    let r2 = post_with_key(
        app,
        &format!("/v1/items/{iid}/reviews"),
        &admin,
        "rev-1",
        &review,
    )
    .expect(201);
    assert_eq!(r1.body["id"], r2.body["id"]);
    assert_eq!(
        app.get(&format!("/v1/items/{iid}/reviews"), &admin).body["items"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );

    // Evidence uploads replay too (the multipart content is what is compared).
    let e1 = app
        .upload(
            &iid,
            &admin,
            &[("title", "Scan"), ("kind", "scan_report")],
            b"same bytes",
            &[("Idempotency-Key", "ev-1")],
        )
        .expect(201);
    assert_eq!(e1.header("idempotent-replayed"), None);
    assert_eq!(
        app.get(&format!("/v1/items/{iid}/evidence"), &admin).body["items"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );

    // Keys are visible ASCII, 1 to 255 characters.
    let r = post_with_key(app, &path, &admin, &"k".repeat(256), &minimal_item())
        .problem(400, "invalid_idempotency_key");
    assert_eq!(r.body["errors"][0]["parameter"], "Idempotency-Key");
}
both!(retries_replay_the_first_response_and_create_nothing);

fn concurrent_retries_create_one_item(app: &TestApp) {
    let sid = app.system("Concurrent retries");
    let admin = app.admin();
    let path = format!("/v1/systems/{sid}/items");
    let statuses: Vec<u16> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..12)
            .map(|_| {
                s.spawn(|| post_with_key(app, &path, &admin, "burst-1", &minimal_item()).status)
            })
            .collect();
        handles.into_iter().filter_map(|h| h.join().ok()).collect()
    });
    assert!(
        statuses.iter().all(|s| *s == 201 || *s == 409),
        "{statuses:?}"
    );
    assert!(statuses.contains(&201));
    assert_eq!(
        app.get(&path, &admin).body["items"]
            .as_array()
            .map(Vec::len),
        Some(1),
        "{statuses:?}"
    );
}
both!(concurrent_retries_create_one_item);

/// A token for `sub` with `roles` over `systems`, signed with the test secret.
fn token_for(sub: &str, roles: &[&str], systems: &[&str]) -> String {
    let now = chrono::Utc::now().timestamp();
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &json!({"sub": sub, "roles": roles, "systems": systems, "iat": now, "exp": now + 600}),
        &jsonwebtoken::EncodingKey::from_secret(crate::harness::SECRET.as_bytes()),
    )
    .unwrap_or_default()
}

fn a_replay_answers_only_a_token_that_may_still_make_the_request(app: &TestApp) {
    let s = app.system("Replays in scope");
    let other = app.system("Another system");
    let sub = "replayer@example.org";
    let editor = token_for(sub, &["editor"], &[&s]);
    let path = format!("/v1/systems/{s}/items");
    let first = post_with_key(app, &path, &editor, "scoped-1", &minimal_item()).expect(201);

    // (a) The same subject, now a viewer: the 403 the handler gives a viewer.
    let viewer = token_for(sub, &["viewer"], &[&s]);
    let r =
        post_with_key(app, &path, &viewer, "scoped-1", &minimal_item()).problem(403, "forbidden");
    assert_eq!(r.header("idempotent-replayed"), None);
    assert!(
        r.body.get("id").is_none(),
        "nothing of the item: {}",
        r.body
    );
    // (b) The same subject and role, over another system only: the handler's 404.
    let elsewhere = token_for(sub, &["editor"], &[&other]);
    let r = post_with_key(app, &path, &elsewhere, "scoped-1", &minimal_item())
        .problem(404, "not_found");
    assert_eq!(r.header("idempotent-replayed"), None);
    // (c) The same subject and rights: the replay.
    let again = post_with_key(app, &path, &editor, "scoped-1", &minimal_item()).expect(201);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.body, first.body);
    // A refused replay used nothing up and created nothing.
    let admin = app.admin();
    assert_eq!(
        app.get(&path, &admin).body["items"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );

    // A path that names an item: its system is the item's.
    let iid = first.body["id"].as_str().unwrap_or_default().to_owned();
    let reviews = format!("/v1/items/{iid}/reviews");
    let review = json!({"kind": "periodic", "decision": "noted", "notes": "weekly"});
    let r1 = post_with_key(app, &reviews, &editor, "scoped-2", &review).expect(201);
    post_with_key(app, &reviews, &elsewhere, "scoped-2", &review).problem(404, "not_found");
    post_with_key(app, &reviews, &viewer, "scoped-2", &review).problem(403, "forbidden");
    let r2 = post_with_key(app, &reviews, &editor, "scoped-2", &review).expect(201);
    assert_eq!(r2.header("idempotent-replayed"), Some("true"));
    assert_eq!(r1.body["id"], r2.body["id"]);

    // A path that names no system (the system is in the body): the replaying token must
    // reach every system the first one did.
    let proposed = json!({"system_id": s, "item": minimal_item()});
    let v1 = post_with_key(app, "/v1/items/validate", &viewer, "scoped-3", &proposed).expect(200);
    post_with_key(app, "/v1/items/validate", &elsewhere, "scoped-3", &proposed)
        .problem(404, "not_found");
    let wider = token_for(sub, &["viewer"], &[&s, &other]);
    let v2 = post_with_key(app, "/v1/items/validate", &wider, "scoped-3", &proposed).expect(200);
    assert_eq!(v2.header("idempotent-replayed"), Some("true"));
    assert_eq!(v1.body, v2.body);
}
both!(a_replay_answers_only_a_token_that_may_still_make_the_request);
