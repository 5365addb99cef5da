//! The history cannot be rewritten quietly: every change is chained, and tampering done directly
//! in the database is found and named, on both backends.

use crate::both;
use crate::harness::{days, id, TestApp};
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
    app.delete(&format!("/v1/items/{iid}?reason=Duplicate"), &admin, None)
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
                e["resource_kind"].as_str().unwrap_or(""),
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

/// Every page of an item's history, following `next_cursor`.
fn history(app: &TestApp, iid: &str, limit: u32) -> Vec<Value> {
    let viewer = app.token(&[Role::Viewer], &[]);
    let mut all = Vec::new();
    let mut query = format!("?limit={limit}");
    for _ in 0..100 {
        let page = app
            .get(&format!("/v1/items/{iid}/history{query}"), &viewer)
            .expect(200)
            .body;
        all.extend(page["items"].as_array().cloned().unwrap_or_default());
        match page["next_cursor"].as_str() {
            Some(c) => query = format!("?limit={limit}&cursor={c}"),
            None => return all,
        }
    }
    panic!("the history's cursor never ends");
}

/// The query plan of an item's history page (sequential scans discouraged on PostgreSQL, whose
/// tiny test tables would otherwise be scanned whole whatever the indexes).
fn item_history_plan(conn: &mut poam_persistence::DbConnection, iid: &str) -> String {
    use diesel::prelude::*;
    use diesel::sql_types::Text;
    #[derive(QueryableByName)]
    struct PgPlan {
        #[diesel(sql_type = Text, column_name = "QUERY PLAN")]
        line: String,
    }
    #[derive(QueryableByName)]
    struct SqlitePlan {
        #[diesel(sql_type = Text)]
        detail: String,
    }
    let sql =
        format!("SELECT id FROM events WHERE item_id = '{iid}' AND seq > 0 ORDER BY seq LIMIT 101");
    match conn {
        poam_persistence::DbConnection::Pg(c) => {
            c.batch_execute("SET enable_seqscan = off")
                .unwrap_or_else(|e| panic!("{e}"));
            let rows: Vec<PgPlan> = diesel::sql_query(format!("EXPLAIN {sql}"))
                .load(c)
                .unwrap_or_else(|e| panic!("{e}"));
            c.batch_execute("RESET enable_seqscan")
                .unwrap_or_else(|e| panic!("{e}"));
            rows.into_iter()
                .map(|r| r.line)
                .collect::<Vec<_>>()
                .join("\n")
        }
        poam_persistence::DbConnection::Sqlite(c) => {
            let rows: Vec<SqlitePlan> = diesel::sql_query(format!("EXPLAIN QUERY PLAN {sql}"))
                .load(c)
                .unwrap_or_else(|e| panic!("{e}"));
            rows.into_iter()
                .map(|r| r.detail)
                .collect::<Vec<_>>()
                .join("\n")
        }
    }
}

fn an_items_history_tells_the_story_of_its_milestones_evidence_and_reviews(app: &TestApp) {
    let admin = app.admin();
    let sid = app.system("Story");
    let schedule = json!({"scheduled_completion": days(60)});
    let iid = id(&app.item(&sid, schedule.clone()).expect(201).body);
    let other = id(&app.item(&sid, schedule).expect(201).body);

    let mid = app.milestone(&iid, &days(20));
    let other_mid = app.milestone(&other, &days(20));
    app.request(
        "PATCH",
        &format!("/v1/milestones/{mid}"),
        Some(&admin),
        &[("Content-Type", "application/json"), ("If-Match", "\"1\"")],
        Some(
            json!({"due_on": days(25), "change_reason": "Vendor patch slipped"})
                .to_string()
                .as_bytes(),
        ),
    )
    .expect(200);
    let eid = id(&app.evidence(&iid).expect(201).body);
    let other_eid = id(&app.evidence(&other).expect(201).body);
    app.post(
        &format!("/v1/evidence/{eid}/withdraw"),
        &admin,
        &json!({"reason": "Wrong file"}),
    )
    .expect(200);
    let rid = id(&app
        .post(
            &format!("/v1/items/{iid}/reviews"),
            &admin,
            &json!({"kind": "periodic", "decision": "noted", "notes": "Discussed in the monthly review"}),
        )
        .expect(201)
        .body);
    let other_rid = id(&app
        .post(
            &format!("/v1/items/{other}/reviews"),
            &admin,
            &json!({"kind": "periodic", "decision": "noted", "notes": "Not this item"}),
        )
        .expect(201)
        .body);
    let system_rid = id(&app
        .post(
            &format!("/v1/systems/{sid}/reviews"),
            &admin,
            &json!({"kind": "periodic", "decision": "noted", "notes": "The whole POA&M"}),
        )
        .expect(201)
        .body);
    app.patch(
        &format!("/v1/items/{iid}"),
        &admin,
        &json!({"title": "TLS 1.0 and 1.1 enabled"}),
        None,
    )
    .expect(200);

    // The whole story, in chain order, on pages of 3 (three pages).
    let story = history(app, &iid, 3);
    let summary: Vec<(&str, &str, &str)> = story
        .iter()
        .map(|e| {
            (
                e["resource_kind"].as_str().unwrap_or(""),
                e["resource_id"].as_str().unwrap_or(""),
                e["action"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("item", iid.as_str(), "created"),
            ("milestone", mid.as_str(), "created"),
            ("milestone", mid.as_str(), "updated"),
            ("evidence", eid.as_str(), "created"),
            ("evidence", eid.as_str(), "withdrawn"),
            ("review", rid.as_str(), "recorded"),
            ("item", iid.as_str(), "updated"),
        ]
    );
    let seqs: Vec<i64> = story.iter().filter_map(|e| e["seq"].as_i64()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    assert_eq!(
        story[2]["changes"]["due_on"],
        json!({"before": days(20), "after": days(25)})
    );
    assert_eq!(
        history(app, &iid, 100),
        story,
        "one page or three: the same"
    );
    let text = serde_json::to_string(&story).unwrap_or_default();
    for foreign in [&other, &other_mid, &other_eid, &other_rid, &system_rid] {
        assert!(!text.contains(foreign.as_str()), "{foreign} is another's");
    }
    let others: Vec<String> = history(app, &other, 100)
        .iter()
        .filter_map(|e| e["resource_kind"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(others, ["item", "milestone", "evidence", "review"]);

    // One event model: the feed, the history and the auditor bundle show an event alike.
    let (status, _, body) = app.get_bytes(
        &format!("/v1/systems/{sid}/export"),
        &app.token(&[Role::Auditor], &[]),
    );
    assert_eq!(status, 200);
    let bundle: Value = serde_json::from_slice(&body).unwrap_or_default();
    let bundled = bundle["events"].as_array().cloned().unwrap_or_default();
    // Read after the export, which the feed shows too.
    let feed = events(app, &sid, "?limit=500");
    let feed = feed["items"].as_array().cloned().unwrap_or_default();
    assert!(bundled.len() >= story.len() && bundled.len() <= feed.len());
    for (b, f) in bundled.iter().zip(&feed) {
        assert_eq!(b, f, "the bundle and the feed show an event alike");
    }
    for e in &story {
        let seq = e["seq"].as_i64().unwrap_or(0);
        let in_feed = feed.iter().find(|f| f["seq"].as_i64() == Some(seq));
        assert_eq!(
            in_feed,
            Some(e),
            "the history and the feed show event {seq} alike"
        );
        let in_bundle = bundled.iter().find(|b| b["seq"].as_i64() == Some(seq));
        assert_eq!(
            in_bundle,
            Some(e),
            "the history and the bundle show event {seq} alike"
        );
    }
    // The time is the hashed text, six fractional digits, whatever the backend.
    let at = story[0]["at"].as_str().unwrap_or("");
    assert!(
        at.len() == 27 && at.ends_with('Z') && at.as_bytes().get(19) == Some(&b'.'),
        "{at}"
    );
    // The history is one range of the item index, on both backends.
    let pool = app.db();
    let mut conn = pool.get().unwrap_or_else(|e| panic!("{e}"));
    let plan = item_history_plan(&mut conn, &iid);
    assert!(plan.contains("events_item_idx"), "{plan}");

    // The migration's backfill gives the stored history the same story: undo it, redo it.
    let conn: &mut poam_persistence::DbConnection = &mut conn;
    let (down, up) = match conn {
        poam_persistence::DbConnection::Pg(_) => (
            include_str!("../../migrations/postgres/2026-12-01-200620_event_item_id/down.sql"),
            include_str!("../../migrations/postgres/2026-12-01-200620_event_item_id/up.sql"),
        ),
        poam_persistence::DbConnection::Sqlite(_) => (
            include_str!("../../migrations/sqlite/2026-12-01-200620_event_item_id/down.sql"),
            include_str!("../../migrations/sqlite/2026-12-01-200620_event_item_id/up.sql"),
        ),
    };
    conn.batch_execute(down).unwrap_or_else(|e| panic!("{e}"));
    conn.batch_execute(up).unwrap_or_else(|e| panic!("{e}"));
    let refilled = history(app, &iid, 100);
    assert_eq!(
        refilled, story,
        "the backfill finds every event of the item"
    );
    app.get(&format!("/v1/items/{iid}/history?limit=0"), &admin)
        .problem(400, "invalid_query");
    app.get(&format!("/v1/items/{iid}/history?cursor=x"), &admin)
        .problem(400, "invalid_query");
}
both!(an_items_history_tells_the_story_of_its_milestones_evidence_and_reviews);

fn verification_pages_through_the_chain_and_still_names_the_broken_link(app: &TestApp) {
    let admin = app.admin();
    let sid = app.system("Long");
    for i in 0..4 {
        let iid = id(&app
            .item(&sid, json!({"title": format!("Item {i}")}))
            .expect(201)
            .body);
        app.patch(
            &format!("/v1/items/{iid}"),
            &admin,
            &json!({"title": format!("Item {i}, renamed")}),
            None,
        )
        .expect(200);
    }
    // 1 system event and 8 item events: pages of 2 cross five pages.
    let pool = app.db();
    let mut conn = pool.get().unwrap_or_else(|e| panic!("{e}"));
    let verify = |conn: &mut poam_persistence::DbConnection, page: i64| {
        poam_persistence::events::verify_paged(conn, &sid, page).unwrap_or_else(|e| panic!("{e}"))
    };
    for page in [1, 2, 3, 9, 1000] {
        let v = verify(&mut conn, page);
        assert_eq!((v.events, v.head_seq), (9, 9));
        assert!(v.broken.is_none(), "page {page}: {:?}", v.broken);
    }
    let exec = |conn: &mut poam_persistence::DbConnection, sql: String| {
        conn.batch_execute(&sql)
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    };

    // An altered row on the third page.
    exec(
        &mut conn,
        format!("UPDATE events SET actor = 'mallory' WHERE system_id = '{sid}' AND seq = 6"),
    );
    let broken = verify(&mut conn, 2).broken;
    assert_eq!(broken.as_ref().map(|b| b.seq), Some(6), "{broken:?}");
    assert!(broken.is_some_and(|b| b.reason.contains("altered") && b.event_id.is_some()));
    let v = verification(app, &sid);
    assert_eq!(
        (v["verified"].clone(), v["broken"]["seq"].clone()),
        (json!(false), json!(6))
    );
    exec(
        &mut conn,
        format!(
            "UPDATE events SET actor = 'tester@example.org' WHERE system_id = '{sid}' AND seq = 6"
        ),
    );
    assert!(verify(&mut conn, 2).broken.is_none(), "restored");

    // A removed row at a page boundary (the last of the third page of 2).
    exec(
        &mut conn,
        format!("DELETE FROM events WHERE system_id = '{sid}' AND seq = 7"),
    );
    for page in [2, 3] {
        let v = verify(&mut conn, page);
        let broken = v.broken.clone();
        assert_eq!(
            broken.as_ref().map(|b| b.seq),
            Some(7),
            "page {page}: {broken:?}"
        );
        assert!(broken.is_some_and(|b| b.reason.contains("missing")));
        assert_eq!(v.events, 8, "every remaining event is counted");
    }
    let v = verification(app, &sid);
    assert_eq!(
        (v["verified"].clone(), v["broken"]["seq"].clone()),
        (json!(false), json!(7))
    );
}
both!(verification_pages_through_the_chain_and_still_names_the_broken_link);
