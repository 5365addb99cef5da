use crate::both;
use crate::harness::TestApp;
use serde_json::json;

fn systems_are_created_read_patched_and_archived(app: &TestApp) {
    let admin = app.admin();
    let created = app
        .post(
            "/v1/systems",
            &admin,
            &json!({
                "name": "Acme Cloud Payroll",
                "organization": "Acme Corporation",
                "cage_codes": ["1abc2"],
                "impact_level": "moderate",
                "regime": "cmmc_l2",
                "contacts": {"issm": {"name": "Morgan Reyes", "email": "morgan@example.org", "phone": "+1 555 0100"}}
            }),
        )
        .expect(201);
    let id = created.body["id"].as_str().unwrap_or_default().to_owned();
    assert_eq!(
        created.header("location"),
        Some(format!("/v1/systems/{id}").as_str())
    );
    assert_eq!(created.header("etag"), Some("\"1\""));
    assert_eq!(
        created.body["cage_codes"],
        json!(["1ABC2"]),
        "CAGE codes are normalised"
    );
    assert_eq!(created.body["contacts"]["issm"]["name"], "Morgan Reyes");

    let got = app.get(&format!("/v1/systems/{id}"), &admin).expect(200);
    assert_eq!(got.body, created.body);
    assert_eq!(got.header("etag"), Some("\"1\""));

    // Merge patch: nested objects merge, null clears, untouched fields stay.
    let patched = app
        .patch(
            &format!("/v1/systems/{id}"),
            &admin,
            &json!({"contacts": {"issm": {"phone": null}, "system_owner": {"name": "Ada Byron"}}, "organization": null}),
            Some("\"1\""),
        )
        .expect(200);
    assert_eq!(patched.header("etag"), Some("\"2\""));
    assert_eq!(
        patched.body["contacts"]["issm"],
        json!({"name": "Morgan Reyes", "email": "morgan@example.org", "phone": null})
    );
    assert_eq!(
        patched.body["contacts"]["system_owner"]["name"],
        "Ada Byron"
    );
    assert_eq!(patched.body["organization"], json!(null));
    assert_eq!(patched.body["name"], "Acme Cloud Payroll");
    assert_eq!(patched.body["regime"], "cmmc_l2");

    // Stale If-Match: 412, and nothing changes.
    app.patch(
        &format!("/v1/systems/{id}"),
        &admin,
        &json!({"name": "Lost"}),
        Some("\"1\""),
    )
    .problem(412, "precondition_failed");
    assert_eq!(
        app.get(&format!("/v1/systems/{id}"), &admin).body["name"],
        "Acme Cloud Payroll"
    );

    let listed = app.get("/v1/systems", &admin).expect(200);
    assert_eq!(listed.body["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(listed.body["next_cursor"], json!(null));

    let item = app.item(&id, json!({})).expect(201);
    let item_id = item.body["id"].as_str().unwrap_or_default().to_owned();
    app.delete(&format!("/v1/systems/{id}"), &admin, Some("\"1\""))
        .problem(412, "precondition_failed");
    let archived = app
        .delete(&format!("/v1/systems/{id}"), &admin, Some("\"2\""))
        .expect(200);
    assert!(archived.body["archived_at"].is_string());
    assert_eq!(archived.header("etag"), Some("\"3\""));
    // Kept, readable, hidden from the default list, frozen.
    app.get(&format!("/v1/systems/{id}"), &admin).expect(200);
    assert_eq!(app.get("/v1/systems", &admin).body["items"], json!([]));
    assert_eq!(
        app.get("/v1/systems?include_archived=true", &admin).body["items"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    app.patch(
        &format!("/v1/systems/{id}"),
        &admin,
        &json!({"name": "x"}),
        None,
    )
    .problem(409, "archived");
    app.post(
        &format!("/v1/systems/{id}/items"),
        &admin,
        &crate::harness::minimal_item(),
    )
    .problem(409, "archived");
    // Its items are frozen with it.
    app.patch(
        &format!("/v1/items/{item_id}"),
        &admin,
        &json!({"title": "x"}),
        None,
    )
    .problem(409, "archived");
    app.delete(&format!("/v1/items/{item_id}"), &admin, None)
        .problem(409, "archived");
    // Archiving again changes nothing.
    assert_eq!(
        app.delete(&format!("/v1/systems/{id}"), &admin, None)
            .expect(200)
            .header("etag"),
        Some("\"3\"")
    );
}
both!(systems_are_created_read_patched_and_archived);

fn system_rules_and_limits_answer_422_with_pointers(app: &TestApp) {
    let admin = app.admin();
    let r = app
        .post(
            "/v1/systems",
            &admin,
            &json!({"name": "", "cage_codes": ["toolong"], "regime": "fisma", "contacts": {}}),
        )
        .problem(422, "validation_failed");
    assert_eq!(
        r.pointers(),
        vec!["/regime"],
        "the first shape error is reported: {}",
        r.body
    );
    let r = app
        .post("/v1/systems", &admin, &json!({"name": "", "organization": "o".repeat(101), "contacts": {"issm": {"name": "x", "email": "not-mail"}}}))
        .problem(422, "validation_failed");
    assert_eq!(
        r.pointers(),
        vec!["/contacts/issm/email", "/name", "/organization"]
    );
    let r = app
        .post(
            "/v1/systems",
            &admin,
            &json!({"name": "ok", "cage_codes": ["1ABC2", "bad"]}),
        )
        .problem(422, "validation_failed");
    assert_eq!(r.pointers(), vec!["/cage_codes/1"]);
    // Exactly at the limits is fine.
    app.post("/v1/systems", &admin, &json!({"name": "n".repeat(250), "organization": "o".repeat(100), "description": "d".repeat(2000)}))
        .expect(201);
    app.post("/v1/systems", &admin, &json!({"name": "n".repeat(251)}))
        .problem(422, "validation_failed");
}
both!(system_rules_and_limits_answer_422_with_pointers);

fn history_keeps_every_change(app: &TestApp) {
    let admin = app.admin();
    let sid = app.system("History");
    let item = app.item(&sid, json!({})).expect(201);
    let iid = item.body["id"].as_str().unwrap_or_default().to_owned();
    app.patch(
        &format!("/v1/items/{iid}"),
        &admin,
        &json!({"title": "Renamed"}),
        None,
    )
    .expect(200);
    // A patch that changes nothing writes nothing.
    app.patch(
        &format!("/v1/items/{iid}"),
        &admin,
        &json!({"title": "Renamed"}),
        None,
    )
    .expect(200);
    app.delete(&format!("/v1/items/{iid}?reason=Duplicate"), &admin, None)
        .expect(200);
    let pool = app.db();
    let mut conn = pool.get().unwrap_or_else(|e| panic!("{e}"));
    let events = poam_persistence::events::of_resource(&mut conn, "item", &iid)
        .unwrap_or_else(|e| panic!("{e}"));
    let actions: Vec<(&str, i64)> = events
        .iter()
        .map(|e| (e.action.as_str(), e.version))
        .collect();
    assert_eq!(
        actions,
        vec![("created", 1), ("updated", 2), ("archived", 3)]
    );
    assert!(events
        .iter()
        .all(|e| e.actor == "tester@example.org" && e.system_id == sid));
    let snapshot: serde_json::Value = serde_json::from_str(&events[1].snapshot).unwrap_or_default();
    assert_eq!(snapshot["title"], "Renamed");
    let system_events = poam_persistence::events::of_resource(&mut conn, "system", &sid)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(system_events.len(), 1);
}
both!(history_keeps_every_change);
