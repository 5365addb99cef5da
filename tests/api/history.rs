//! The history cannot be rewritten quietly: every change is chained, and tampering done directly
//! in the database is found and named, on both backends.

use crate::both;
use crate::harness::TestApp;
use diesel::connection::SimpleConnection;
use poam_domain::Role;
use serde_json::{json, Value};

fn events(app: &TestApp, sid: &str, query: &str) -> Value {
    app.get(&format!("/v1/systems/{sid}/events{query}"), &app.admin())
        .expect(200)
        .body
}

fn verification(app: &TestApp, sid: &str) -> Value {
    app.get(
        &format!("/v1/systems/{sid}/events/verification"),
        &app.token(&[Role::Auditor], &[]),
    )
    .expect(200)
    .body
}

fn every_change_is_a_chained_event(app: &TestApp) {
    let admin = app.admin();
    let sid = app.system("History");
    let item = app.item(&sid, json!({"title": "First title"})).expect(201);
    let iid = item.body["id"].as_str().unwrap_or_default().to_owned();
    app.patch(
        &format!("/v1/items/{iid}"),
        &admin,
        &json!({"title": "Second title", "owner": {"name": "Dana"}}),
        None,
    )
    .expect(200);
    app.delete(&format!("/v1/items/{iid}"), &admin, None)
        .expect(200);
    app.patch(
        &format!("/v1/systems/{sid}"),
        &admin,
        &json!({"organization": "Acme"}),
        None,
    )
    .expect(200);

    let feed = events(app, &sid, "");
    let list = feed["items"].as_array().cloned().unwrap_or_default();
    let summary: Vec<(i64, &str, &str)> = list
        .iter()
        .map(|e| {
            (
                e["seq"].as_i64().unwrap_or(0),
                e["resource"].as_str().unwrap_or(""),
                e["action"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (1, "system", "created"),
            (2, "item", "created"),
            (3, "item", "updated"),
            (4, "item", "archived"),
            (5, "system", "updated")
        ]
    );
    assert_eq!(list[0]["prev_hash"], "0".repeat(64));
    for w in list.windows(2) {
        assert_eq!(
            w[1]["prev_hash"], w[0]["hash"],
            "each event links to its predecessor"
        );
    }
    assert_eq!(
        list[2]["changes"],
        json!({
            "title": {"before": "First title", "after": "Second title"},
            "owner": {"before": null, "after": {"name": "Dana", "email": null}}
        })
    );
    assert_eq!(list[2]["actor"], "tester@example.org");
    assert_eq!(list[2]["version"], 2);
    assert_eq!(feed["last_seq"], 5);

    // Polling: after the last position there is nothing new; paging follows the cursor.
    assert_eq!(events(app, &sid, "?after_seq=5")["items"], json!([]));
    assert_eq!(events(app, &sid, "?after_seq=5")["last_seq"], 5);
    let first = events(app, &sid, "?limit=2");
    assert_eq!(first["next_cursor"], "2");
    let second = events(app, &sid, "?limit=2&cursor=2");
    assert_eq!(second["items"][0]["seq"], 3);
    assert_eq!(
        events(app, &sid, "?resource=item&action=updated")["items"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    app.get(&format!("/v1/systems/{sid}/events?resource=widget"), &admin)
        .problem(400, "invalid_query");

    let history = app
        .get(
            &format!("/v1/items/{iid}/history"),
            &app.token(&[Role::Viewer], &[]),
        )
        .expect(200);
    let actions: Vec<&str> = history.body["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert_eq!(actions, ["created", "updated", "archived"]);

    let v = verification(app, &sid);
    assert_eq!(v["verified"], true, "{v}");
    assert_eq!(v["events"], 5);
    assert_eq!(v["head_hash"], list[4]["hash"]);
    // Verification is the auditor's (and admin's), not the editor's.
    app.get(
        &format!("/v1/systems/{sid}/events/verification"),
        &app.token(&[Role::Editor], &[]),
    )
    .problem(403, "forbidden");
}
both!(every_change_is_a_chained_event);

fn tampering_in_the_database_is_found_and_named(app: &TestApp) {
    let sid = app.system("Tamper");
    let other = app.system("Untouched");
    for i in 0..3 {
        app.item(&sid, json!({"title": format!("Item {i}")}))
            .expect(201);
    }
    app.item(&other, json!({})).expect(201);
    assert_eq!(verification(app, &sid)["verified"], true);
    let pool = app.db();
    let mut conn = pool.get().unwrap_or_else(|e| panic!("{e}"));
    let exec = |conn: &mut poam_persistence::DbConnection, sql: String| {
        conn.batch_execute(&sql)
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    };

    // 1. Someone rewrites who made a change.
    exec(
        &mut conn,
        format!("UPDATE events SET actor = 'mallory' WHERE system_id = '{sid}' AND seq = 3"),
    );
    let v = verification(app, &sid);
    assert_eq!(v["verified"], false);
    assert_eq!(v["broken"]["seq"], 3, "{v}");
    assert!(v["broken"]["event_id"].is_string());
    assert!(
        v["broken"]["reason"]
            .as_str()
            .unwrap_or("")
            .contains("altered"),
        "{v}"
    );
    exec(
        &mut conn,
        format!(
            "UPDATE events SET actor = 'tester@example.org' WHERE system_id = '{sid}' AND seq = 3"
        ),
    );
    assert_eq!(
        verification(app, &sid)["verified"],
        true,
        "restoring the row restores the chain"
    );

    // 2. Someone edits the recorded content.
    exec(&mut conn, format!("UPDATE events SET changes = REPLACE(changes, 'Item 1', 'Item X') WHERE system_id = '{sid}' AND seq = 3"));
    assert_eq!(verification(app, &sid)["broken"]["seq"], 3);
    exec(&mut conn, format!("UPDATE events SET changes = REPLACE(changes, 'Item X', 'Item 1') WHERE system_id = '{sid}' AND seq = 3"));

    // 3. Someone deletes an event in the middle.
    exec(
        &mut conn,
        format!("DELETE FROM events WHERE system_id = '{sid}' AND seq = 2"),
    );
    let v = verification(app, &sid);
    assert_eq!(
        (v["verified"].clone(), v["broken"]["seq"].clone()),
        (json!(false), json!(2)),
        "{v}"
    );
    assert!(
        v["broken"]["reason"]
            .as_str()
            .unwrap_or("")
            .contains("missing"),
        "{v}"
    );

    // The other system's chain is untouched, and the command line agrees with the API.
    assert_eq!(verification(app, &other)["verified"], true);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_poam"))
        .args(["audit", "verify"])
        .env("POAM_DATABASE_URL", app.settings.database_url.redacted())
        .env("POAM_DATA_DIR", &app.dir)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        !out.status.success(),
        "exit status 1 on a broken chain: {text}"
    );
    assert!(text.contains(&format!("BROKEN  {sid}  at seq 2")), "{text}");
    assert!(text.contains(&format!("ok      {other}")), "{text}");

    // 4. Someone removes the tail (the latest events): the system's recorded head disagrees.
    let app2_sid = app.system("Tail");
    app.item(&app2_sid, json!({})).expect(201);
    exec(
        &mut conn,
        format!("DELETE FROM events WHERE system_id = '{app2_sid}' AND seq = 2"),
    );
    let v = verification(app, &app2_sid);
    assert_eq!(v["broken"]["seq"], 2, "{v}");
    assert!(
        v["broken"]["reason"]
            .as_str()
            .unwrap_or("")
            .contains("tail"),
        "{v}"
    );
}
both!(tampering_in_the_database_is_found_and_named);
