use crate::both;
use crate::harness::{display_ids, minimal_item, TestApp};
use poam_domain::Role;
use serde_json::{json, Value};
use std::collections::BTreeSet;

fn full_item() -> Value {
    json!({
        "external_id": "grc-48213",
        "title": "TLS 1.0 enabled on the public load balancer",
        "description": "The load balancer accepts TLS 1.0 and 1.1 handshakes.",
        "controls": ["sc-8(1)", "3.13.8", "SC.L2-3.13.8", "SC-8(1)"],
        "source": {"kind": "scan", "detector": "Tenable Nessus", "identifier": "plugin 104743"},
        "cves": ["cve-2011-3389"],
        "assets": ["lb-prod-1.example.org", "10.0.0.7"],
        "likelihood": "moderate",
        "impact": "high",
        "risk_rating": "high",
        "adjusted_risk_rating": "moderate",
        "risk_justification": "TLS 1.0 only reachable from the partner VPN.",
        "owner": {"name": "Dana Whitfield", "email": "dana@example.org"},
        "implementer": {"name": "Lee Park", "email": null},
        "remediation_plan": "Disable TLS < 1.2 in the listener policy.",
        "resources": {"description": "Two engineer-days", "estimated_cost": 1200.5, "hours": 16, "funded": true, "recurring": false},
        "actual_cost": 300,
        "interim_mitigation": "WAF rule blocks legacy ciphers.",
        "residual_risk": "Low once the WAF rule is in place.",
        "detected_on": "2026-10-01",
        "scheduled_completion": "2026-10-31",
        "completed_on": null,
        "closed_on": null,
        "deviation": {"kind": "risk_adjustment", "rationale": "Partner VPN only."},
        "vendor_dependency": {"product": "Acme LB 9.2", "vendor": "Acme", "last_check_in": "2026-11-01"},
        "comments": "Raised in the October scan."
    })
}

fn items_round_trip_every_field(app: &TestApp) {
    let sid = app.system("Payroll");
    let created = app.item(&sid, full_item()).expect(201);
    let b = &created.body;
    let id = b["id"].as_str().unwrap_or_default();
    assert_eq!(
        created.header("location"),
        Some(format!("/v1/items/{id}").as_str())
    );
    assert_eq!(created.header("etag"), Some("\"1\""));
    assert_eq!(b["display_id"], "POAM-0001");
    assert_eq!(b["system_id"], sid.as_str());
    assert_eq!(
        b["controls"],
        json!(["SC-8(1)", "3.13.8", "SC.L2-3.13.8"]),
        "normalised, deduplicated"
    );
    assert_eq!(b["cves"], json!(["CVE-2011-3389"]));
    assert_eq!(
        b["deviation"],
        json!({"kind": "risk_adjustment", "status": "pending", "rationale": "Partner VPN only."})
    );
    assert_eq!(b["overdue"], true, "in progress and past 2026-10-31");
    assert_eq!(b["version"], 1);
    // Every field sent comes back as sent (after normalisation).
    let sent = full_item();
    for (k, v) in sent.as_object().into_iter().flatten() {
        if ["controls", "cves", "deviation", "resources", "actual_cost"].contains(&k.as_str()) {
            continue;
        }
        assert_eq!(&b[k], v, "field {k}");
    }
    assert_eq!(b["resources"]["estimated_cost"], 1200.5);
    assert_eq!(b["actual_cost"].as_f64(), Some(300.0));
    assert_eq!(b["resources"]["hours"].as_f64(), Some(16.0));
    let got = app
        .get(&format!("/v1/items/{id}"), &app.admin())
        .expect(200);
    assert_eq!(got.body, created.body, "GET returns what create returned");
    // Minimal item: defaults.
    let minimal = app.item(&sid, json!({})).expect(201);
    assert_eq!(minimal.body["display_id"], "POAM-0002");
    assert_eq!(minimal.body["status"], "open");
    assert_eq!(minimal.body["controls"], json!([]));
    assert_eq!(minimal.body["overdue"], false);
}
both!(items_round_trip_every_field);

fn patch_merges_and_revalidates_the_whole_item(app: &TestApp) {
    let sid = app.system("Payroll");
    let editor = app.token(&[Role::Editor], &[]);
    let created = app.item(&sid, full_item()).expect(201);
    let path = format!(
        "/v1/items/{}",
        created.body["id"].as_str().unwrap_or_default()
    );

    let r = app
        .patch(&path, &editor, &json!({"owner": {"email": "dana.w@example.org"}, "comments": null, "cves": ["CVE-2024-3094"]}), Some("\"1\""))
        .expect(200);
    assert_eq!(r.header("etag"), Some("\"2\""));
    assert_eq!(
        r.body["owner"],
        json!({"name": "Dana Whitfield", "email": "dana.w@example.org"})
    );
    assert_eq!(r.body["comments"], json!(null));
    assert_eq!(r.body["cves"], json!(["CVE-2024-3094"]));
    assert_eq!(
        r.body["title"],
        full_item()["title"],
        "untouched fields stay"
    );
    assert_eq!(r.body["display_id"], "POAM-0001");

    // The whole item is re-checked: a required field cannot be cleared, dates keep order.
    app.patch(&path, &editor, &json!({"title": null}), None)
        .problem(422, "validation_failed");
    let r = app
        .patch(
            &path,
            &editor,
            &json!({"scheduled_completion": "2026-09-01"}),
            None,
        )
        .problem(422, "validation_failed");
    assert_eq!(r.pointers(), vec!["/scheduled_completion"]);
    assert_eq!(r.body["errors"][0]["code"], "date_before_detection");
    let r = app
        .patch(&path, &editor, &json!({"risk_justification": null}), None)
        .problem(422, "validation_failed");
    assert_eq!(
        r.body["errors"][0]["code"],
        "adjustment_needs_justification"
    );
    // Unknown and read-only fields are refused by name.
    let r = app
        .patch(&path, &editor, &json!({"titel": "typo"}), None)
        .problem(422, "validation_failed");
    assert_eq!(r.pointers(), vec!["/titel"]);
    assert_eq!(r.body["errors"][0]["code"], "unknown_field");
    let r = app
        .patch(
            &path,
            &editor,
            &json!({"display_id": "POAM-9999", "version": 7}),
            None,
        )
        .problem(422, "validation_failed");
    assert_eq!(r.pointers(), vec!["/display_id", "/version"]);
    app.patch(&path, &editor, &json!([1, 2]), None)
        .problem(422, "validation_failed");
    // None of the refused patches changed anything.
    let now = app.get(&path, &editor).expect(200);
    assert_eq!(now.body["version"], 2);

    // A stale If-Match loses nothing: 412, and the other writer's change stays.
    app.patch(&path, &editor, &json!({"title": "Writer A"}), Some("\"2\""))
        .expect(200);
    app.patch(&path, &editor, &json!({"title": "Writer B"}), Some("\"2\""))
        .problem(412, "precondition_failed");
    app.patch(
        &path,
        &editor,
        &json!({"title": "Writer B"}),
        Some("W/\"3\""),
    )
    .problem(412, "precondition_failed");
    app.patch(&path, &editor, &json!({"title": "Writer B"}), Some("3"))
        .problem(400, "invalid_if_match");
    // An empty list of entity-tags (RFC 9110 `#entity-tag`) names no version: 412.
    app.patch(&path, &editor, &json!({"title": "Writer B"}), Some(""))
        .problem(412, "precondition_failed");
    assert_eq!(app.get(&path, &editor).body["title"], "Writer A");
    app.patch(&path, &editor, &json!({"title": "Writer B"}), Some("*"))
        .expect(200);
}
both!(patch_merges_and_revalidates_the_whole_item);

fn item_rules_answer_422_with_pointers(app: &TestApp) {
    let sid = app.system("Rules");
    let path = format!("/v1/systems/{sid}/items");
    let admin = app.admin();
    // Missing required field: pointed at.
    let mut body = minimal_item();
    body.as_object_mut().map(|o| o.remove("risk_rating"));
    let r = app
        .post(&path, &admin, &body)
        .problem(422, "validation_failed");
    assert_eq!(r.pointers(), vec!["/risk_rating"]);
    assert_eq!(r.body["errors"][0]["code"], "missing_field");
    let mut body = minimal_item();
    body["source"] = json!({});
    assert_eq!(
        app.post(&path, &admin, &body)
            .problem(422, "validation_failed")
            .pointers(),
        vec!["/source/kind"]
    );
    // Unknown field, nested too.
    let mut body = minimal_item();
    body["source"]["kind_"] = json!("scan");
    let r = app
        .post(&path, &admin, &body)
        .problem(422, "validation_failed");
    assert_eq!(r.pointers(), vec!["/source/kind_"]);
    assert_eq!(r.body["errors"][0]["code"], "unknown_field");
    // A struct sent as an array (which serde would read by position) is refused.
    let r = app
        .item(&sid, json!({"source": ["scan"], "owner": ["Dana"]}))
        .problem(422, "validation_failed");
    assert_eq!(r.pointers(), vec!["/source", "/owner"]);
    // Wrong types and words.
    let r = app
        .item(&sid, json!({"risk_rating": "urgent"}))
        .problem(422, "validation_failed");
    assert_eq!(r.pointers(), vec!["/risk_rating"]);
    let r = app
        .item(&sid, json!({"detected_on": "01/10/2026"}))
        .problem(422, "validation_failed");
    assert_eq!(r.pointers(), vec!["/detected_on"]);
    let r = app
        .item(&sid, json!({"controls": ["AC-2", 7]}))
        .problem(422, "validation_failed");
    assert_eq!(r.pointers(), vec!["/controls/1"]);
    // eMASS limits: 100 for contacts, 250 for resources, 2000 for narratives — all reported.
    let r = app
        .item(
            &sid,
            json!({
                "title": "t".repeat(251),
                "description": "d".repeat(2001),
                "owner": {"name": "n".repeat(101), "email": "x@example.org"},
                "resources": {"description": "r".repeat(251), "estimated_cost": -1},
                "comments": ""
            }),
        )
        .problem(422, "validation_failed");
    assert_eq!(
        r.pointers(),
        vec![
            "/comments",
            "/description",
            "/owner/name",
            "/resources/description",
            "/resources/estimated_cost",
            "/title"
        ]
    );
    app.item(
        &sid,
        json!({"title": "t".repeat(250), "description": "d".repeat(2000), "owner": {"name": "n".repeat(100)}, "resources": {"description": "r".repeat(250)}}),
    )
    .expect(201);
    // Domain rules.
    let r = app
        .item(&sid, json!({"controls": ["AC-2", "nonsense"], "cves": ["CVE-1"], "detected_on": "2999-01-01"}))
        .problem(422, "validation_failed");
    assert_eq!(r.pointers(), vec!["/controls/1", "/cves/0", "/detected_on"]);
    let codes: BTreeSet<&str> = r.body["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["code"].as_str())
        .collect();
    assert_eq!(
        codes,
        ["date_in_future", "invalid_control", "invalid_cve"]
            .into_iter()
            .collect()
    );
    // Nothing half-written: the refused creates used no display id.
    let next = app.item(&sid, json!({})).expect(201);
    assert_eq!(next.body["display_id"], "POAM-0002");
}
both!(item_rules_answer_422_with_pointers);

fn external_ids_are_unique_per_system(app: &TestApp) {
    let a = app.system("A");
    let b = app.system("B");
    app.item(&a, json!({"external_id": "grc-1"})).expect(201);
    let r = app
        .item(&a, json!({"external_id": "grc-1"}))
        .problem(409, "external_id_taken");
    assert_eq!(r.pointers(), vec!["/external_id"]);
    assert!(r.body["detail"]
        .as_str()
        .unwrap_or("")
        .contains("POAM-0001"));
    app.item(&b, json!({"external_id": "grc-1"})).expect(201);
    let second = app.item(&a, json!({"external_id": "grc-2"})).expect(201);
    let path = format!(
        "/v1/items/{}",
        second.body["id"].as_str().unwrap_or_default()
    );
    app.patch(&path, &app.admin(), &json!({"external_id": "grc-1"}), None)
        .problem(409, "external_id_taken");
    // Sync clients find an item by their own key.
    let found = app
        .get(
            &format!("/v1/systems/{a}/items?external_id=grc-2"),
            &app.admin(),
        )
        .expect(200);
    assert_eq!(
        found.body["items"][0]["display_id"], "POAM-0002",
        "the refused create used no display id"
    );
}
both!(external_ids_are_unique_per_system);

fn archived_items_are_kept_hidden_and_frozen(app: &TestApp) {
    let sid = app.system("Archive");
    let admin = app.admin();
    let item = app.item(&sid, json!({})).expect(201);
    let path = format!("/v1/items/{}", item.body["id"].as_str().unwrap_or_default());
    let archive = format!("{path}?reason=Duplicate");
    app.delete(&archive, &admin, Some("\"9\""))
        .problem(412, "precondition_failed");
    let archived = app.delete(&archive, &admin, Some("\"1\"")).expect(200);
    assert!(archived.body["archived_at"].is_string());
    assert_eq!(archived.body["version"], 2);
    app.get(&path, &admin).expect(200);
    let list = format!("/v1/systems/{sid}/items");
    assert_eq!(app.get(&list, &admin).body["items"], json!([]));
    assert_eq!(
        app.get(&format!("{list}?include_archived=true"), &admin)
            .body["items"][0]["display_id"],
        "POAM-0001"
    );
    app.patch(&path, &admin, &json!({"title": "x"}), None)
        .problem(409, "archived");
    // Display ids are never reused.
    assert_eq!(
        app.item(&sid, json!({})).expect(201).body["display_id"],
        "POAM-0002"
    );
}
both!(archived_items_are_kept_hidden_and_frozen);

fn fifty_concurrent_creates_get_fifty_distinct_display_ids(app: &TestApp) {
    let sid = app.system("Concurrent");
    let results: Vec<(u16, String)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..50)
            .map(|i| {
                let sid = sid.clone();
                s.spawn(move || {
                    let r = app.item(&sid, json!({"external_id": format!("scan-{i}")}));
                    (
                        r.status,
                        r.body["display_id"].as_str().unwrap_or("").to_owned(),
                    )
                })
            })
            .collect();
        handles.into_iter().filter_map(|h| h.join().ok()).collect()
    });
    assert_eq!(results.len(), 50);
    assert!(results.iter().all(|(s, _)| *s == 201), "{results:?}");
    let ids: BTreeSet<String> = results.into_iter().map(|(_, d)| d).collect();
    let want = display_ids(50);
    assert_eq!(ids, want);
}
both!(fifty_concurrent_creates_get_fifty_distinct_display_ids);

/// Writes that fail among concurrent ones (on SQLite they share a group-commit batch) leave
/// nothing behind, not even a display number, and do not take the others down with them.
fn failed_writes_among_concurrent_ones_leave_no_trace(app: &TestApp) {
    let sid = app.system("Concurrent with conflicts");
    // 60 creates over 20 external ids: each id is created once, the other two attempts are 409.
    let results: Vec<(u16, String, String)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..60)
            .map(|i| {
                let sid = sid.clone();
                s.spawn(move || {
                    let ext = format!("scan-{}", i % 20);
                    let r = app.item(&sid, json!({"external_id": ext}));
                    let display = r.body["display_id"].as_str().unwrap_or("").to_owned();
                    (r.status, ext, display)
                })
            })
            .collect();
        handles.into_iter().filter_map(|h| h.join().ok()).collect()
    });
    assert_eq!(results.len(), 60);
    let created: Vec<&(u16, String, String)> = results.iter().filter(|r| r.0 == 201).collect();
    assert_eq!(created.len(), 20, "{results:?}");
    assert_eq!(
        results.iter().filter(|r| r.0 == 409).count(),
        40,
        "{results:?}"
    );
    let exts: BTreeSet<&str> = created.iter().map(|r| r.1.as_str()).collect();
    assert_eq!(exts.len(), 20, "one create per external id");
    let ids: BTreeSet<&str> = created.iter().map(|r| r.2.as_str()).collect();
    let want = display_ids(20);
    assert_eq!(
        ids,
        want.iter().map(String::as_str).collect(),
        "a refused create gives its number back: no gaps"
    );
    assert_eq!(
        app.item_events(&sid),
        20,
        "one history event per item, none for refusals"
    );
    app.assert_chain_verifies(&sid);
}
both!(failed_writes_among_concurrent_ones_leave_no_trace);

/// The writer runs the creations of one system that share a batch together (one statement per
/// table): each still gets the answer it would have had alone. Driven directly, so the batch is
/// known: a taken external id, a repeat inside the batch, a refusal by the regime's rules, and
/// three that succeed, numbered without gaps, indexed, and chained.
fn creations_written_together_answer_each_as_alone(app: &TestApp) {
    use poam_persistence::events::Action;
    use poam_persistence::items::{create_many, NewItem};
    let admin = app.admin();
    let sid = app.system_in("Together", "emass");
    let complete = |ext: Option<&str>, controls: Value| {
        let mut v = minimal_item();
        v["resources"] = json!({"description": "r"});
        v["owner"] = json!({"name": "o"});
        v["source"] = json!({"kind": "scan", "identifier": "i"});
        v["controls"] = controls;
        if let Some(ext) = ext {
            v["external_id"] = json!(ext);
        }
        v
    };
    let first = app
        .item(&sid, complete(Some("taken-1"), json!([])))
        .expect(201);
    assert_eq!(first.body["display_id"], "POAM-0001");
    let batch: Vec<NewItem> = [
        complete(Some("new-1"), json!(["AC-2", "SI-2"])),
        complete(Some("taken-1"), json!([])),
        complete(Some("new-1"), json!([])),
        minimal_item(),
        complete(None, json!(["AC-2"])),
        complete(Some("new-2"), json!([])),
    ]
    .into_iter()
    .map(|v| NewItem {
        fields: serde_json::from_value(v).unwrap_or_else(|e| panic!("{e}")),
        actor: "batch-test".into(),
        seen: None,
    })
    .collect();
    let refs: Vec<&NewItem> = batch.iter().collect();
    let pool = app.db();
    let mut conn = pool.get().unwrap_or_else(|e| panic!("{e}"));
    let answers =
        poam_persistence::db::write(&mut conn, |c| create_many(c, &sid, &refs, Action::Created))
            .unwrap_or_else(|e| panic!("{e}"));
    let shown: Vec<String> = answers
        .iter()
        .map(|a| match a {
            Ok(item) => item.display_id.clone(),
            Err(poam_persistence::StoreError::Conflict(v)) => format!("{}: {}", v.code, v.message),
            Err(poam_persistence::StoreError::Invalid(v)) => {
                format!("invalid {}", v.first().map_or("", |v| v.code))
            }
            Err(e) => format!("{e}"),
        })
        .collect();
    assert_eq!(
        shown,
        [
            "POAM-0002",
            "external_id_taken: this external_id already belongs to POAM-0001 in this system",
            "external_id_taken: this external_id already belongs to POAM-0002 in this system",
            "invalid emass.resources_required",
            "POAM-0003",
            "POAM-0004",
        ]
    );
    // What was answered is what is stored, and what is stored reads back.
    for item in answers.iter().flatten() {
        let r = app
            .get(&format!("/v1/items/{}", item.id), &admin)
            .expect(200);
        assert_eq!(r.body, serde_json::to_value(item).unwrap_or_default());
    }
    let with_ac2 = app
        .get(&format!("/v1/systems/{sid}/items?control=AC-2"), &admin)
        .expect(200);
    let mut found: Vec<&str> = with_ac2.body["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| i["display_id"].as_str())
        .collect();
    found.sort_unstable();
    assert_eq!(found, ["POAM-0002", "POAM-0003"]);
    // The counters moved by the three written: the next item is POAM-0005.
    let next = app.item(&sid, complete(None, json!([]))).expect(201);
    assert_eq!(next.body["display_id"], "POAM-0005");
    assert_eq!(app.item_events(&sid), 5);
    app.assert_chain_verifies(&sid);
    // An archived system refuses every creation of the batch, and nothing moves.
    app.delete(&format!("/v1/systems/{sid}"), &admin, None)
        .expect(200);
    let refused = poam_persistence::db::write(&mut conn, |c| {
        create_many(c, &sid, &refs[4..], Action::Created)
    })
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        refused.iter().all(
            |a| matches!(a, Err(poam_persistence::StoreError::Conflict(v)) if v.code == "archived")
        ),
        "{refused:?}"
    );
}
both!(creations_written_together_answer_each_as_alone);

/// A creation the database itself refuses (here a trigger; in life a constraint the pre-checks
/// did not foresee) fails alone, though it may share its batch's statements with others: the
/// batch is written again one creation at a time, and only the faulty one is answered 500.
fn a_creation_the_database_refuses_fails_alone(app: &TestApp) {
    use diesel::connection::SimpleConnection;
    let sid = app.system("Poisoned");
    let pool = app.db();
    let mut conn = pool.get().unwrap_or_else(|e| panic!("{e}"));
    let ddl = match &**conn {
        poam_persistence::db::DbConnection::Pg(_) => {
            "CREATE FUNCTION refuse_poison() RETURNS trigger AS $$ BEGIN
                 IF NEW.title = 'poison' THEN RAISE EXCEPTION 'poisoned'; END IF; RETURN NEW;
             END $$ LANGUAGE plpgsql;
             CREATE TRIGGER refuse_poison BEFORE INSERT ON items
                 FOR EACH ROW EXECUTE FUNCTION refuse_poison();"
        }
        poam_persistence::db::DbConnection::Sqlite(_) => {
            "CREATE TRIGGER refuse_poison BEFORE INSERT ON items WHEN NEW.title = 'poison'
                 BEGIN SELECT RAISE(ABORT, 'poisoned'); END;"
        }
    };
    conn.batch_execute(ddl).unwrap_or_else(|e| panic!("{e}"));
    drop(conn);
    let results: Vec<(u16, String)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..30)
            .map(|i| {
                let sid = sid.clone();
                s.spawn(move || {
                    let title = if i % 10 == 0 {
                        "poison".to_owned()
                    } else {
                        format!("Finding {i}")
                    };
                    let r = app.item(&sid, json!({"title": title}));
                    (
                        r.status,
                        r.body["display_id"].as_str().unwrap_or("").to_owned(),
                    )
                })
            })
            .collect();
        handles.into_iter().filter_map(|h| h.join().ok()).collect()
    });
    assert_eq!(
        results.iter().filter(|r| r.0 == 500).count(),
        3,
        "{results:?}"
    );
    let ids: BTreeSet<&str> = results
        .iter()
        .filter(|r| r.0 == 201)
        .map(|r| r.1.as_str())
        .collect();
    let want = display_ids(27);
    assert_eq!(
        ids,
        want.iter().map(String::as_str).collect(),
        "{results:?}"
    );
    assert_eq!(app.item_events(&sid), 27);
    app.assert_chain_verifies(&sid);
}
both!(a_creation_the_database_refuses_fails_alone);

fn two_instances_share_one_counter(app: &TestApp) {
    let sid = app.system("Two instances");
    let other = app.sibling();
    let token = app.admin();
    let body = serde_json::to_string(&minimal_item()).unwrap_or_default();
    let results: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..40)
            .map(|i| {
                let base = if i % 2 == 0 {
                    app.base.clone()
                } else {
                    other.base.clone()
                };
                let (sid, token, body) = (&sid, &token, &body);
                s.spawn(move || {
                    let r = ureq::post(&format!("{base}/v1/systems/{sid}/items"))
                        .set("Authorization", &format!("Bearer {token}"))
                        .set("Content-Type", "application/json")
                        .send_string(body);
                    let v: Value = r.ok().and_then(|r| r.into_json().ok()).unwrap_or_default();
                    v["display_id"].as_str().unwrap_or("").to_owned()
                })
            })
            .collect();
        handles.into_iter().filter_map(|h| h.join().ok()).collect()
    });
    let ids: BTreeSet<String> = results.into_iter().collect();
    let want = display_ids(40);
    assert_eq!(
        ids, want,
        "40 creates through two processes: 40 distinct display ids, no gaps"
    );
}
both!(two_instances_share_one_counter);

/// SQLite: a worker reads an item it read before by the row id it remembers, and checks the id
/// in the same statement. Row ids can move (`VACUUM` renumbers them); here they are moved by
/// hand, so that the row id remembered for A holds B: A must still be A, and B still B.
#[test]
fn an_item_read_again_is_that_item_after_its_row_id_moved() {
    use diesel::{Connection, RunQueryDsl, SqliteConnection};
    let Some(app) = TestApp::spawn_with(crate::harness::Backend::Sqlite, &[("POAM_WORKERS", "1")])
    else {
        return;
    };
    let admin = app.admin();
    let sid = app.system("Row ids");
    let a = crate::harness::id(&app.item(&sid, json!({"title": "Item A"})).expect(201).body);
    let b = crate::harness::id(&app.item(&sid, json!({"title": "Item B"})).expect(201).body);
    let title =
        |id: &str| app.get(&format!("/v1/items/{id}"), &admin).expect(200).body["title"].clone();
    // Read twice each: the one worker remembers both row ids.
    for _ in 0..2 {
        assert_eq!((title(&a), title(&b)), (json!("Item A"), json!("Item B")));
    }
    let path = app.dir.join("poam.db");
    let mut conn =
        SqliteConnection::establish(&path.display().to_string()).unwrap_or_else(|e| panic!("{e}"));
    diesel::sql_query(format!(
        "UPDATE items SET rowid = rowid + 1000000 WHERE id = '{a}'"
    ))
    .execute(&mut conn)
    .unwrap_or_else(|e| panic!("{e}"));
    diesel::sql_query(format!(
        "UPDATE items SET rowid = (SELECT rowid - 1000000 FROM items WHERE id = '{a}') WHERE id = '{b}'"
    ))
    .execute(&mut conn)
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((title(&a), title(&b)), (json!("Item A"), json!("Item B")));
    // And again, by the row ids remembered now.
    assert_eq!((title(&a), title(&b)), (json!("Item A"), json!("Item B")));
}

/// The item-cache counters of `/metrics`: (hits, misses, entries).
fn item_cache_counters(app: &TestApp, admin: &str) -> (u64, u64, u64) {
    let (status, _, text) = app.get_bytes("/metrics", admin);
    assert_eq!(status, 200);
    let text = String::from_utf8_lossy(&text);
    let value = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("{name} not in {text}"))
    };
    (
        value("poam_item_cache_hits_total"),
        value("poam_item_cache_misses_total"),
        value("poam_item_cache_entries"),
    )
}

/// SQLite: a read answers the rendering it kept only for the item's current version, after the
/// scope is checked against the row: a change (PATCH, a transition, the archive) is read at once,
/// a token without the item's system is refused though the rendering is kept, and an item with a
/// FedRAMP 2026 schedule (its `vdr` status read to the hour) is never kept.
#[test]
fn a_kept_rendering_answers_only_for_the_current_version() {
    let Some(app) = TestApp::spawn_with(crate::harness::Backend::Sqlite, &[]) else {
        return;
    };
    let admin = app.admin();
    let sid = app.system("Renderings");
    let id = crate::harness::id(&app.item(&sid, json!({"title": "First"})).expect(201).body);
    let path = format!("/v1/items/{id}");
    let first = app.get(&path, &admin).expect(200);
    assert_eq!(item_cache_counters(&app, &admin), (0, 1, 1));
    let again = app.get(&path, &admin).expect(200);
    assert_eq!(item_cache_counters(&app, &admin), (1, 1, 1));
    assert_eq!(again.body, first.body);
    assert_eq!(again.headers.get("etag"), first.headers.get("etag"));
    assert_eq!(again.headers.get("etag").map(String::as_str), Some("\"1\""));

    // A change is read at once, with its version.
    let etag = first.headers.get("etag").cloned().unwrap_or_default();
    app.patch(&path, &admin, &json!({"title": "Second"}), Some(&etag))
        .expect(200);
    let changed = app.get(&path, &admin).expect(200);
    assert_eq!(changed.body["title"], "Second");
    assert_eq!(changed.body["version"], 2);
    assert_eq!(
        changed.headers.get("etag").map(String::as_str),
        Some("\"2\"")
    );
    assert_eq!(item_cache_counters(&app, &admin), (1, 2, 1));
    assert_eq!(app.get(&path, &admin).expect(200).body, changed.body);
    assert_eq!(item_cache_counters(&app, &admin), (2, 2, 1));

    // The scope is the row's, checked before any kept rendering is looked at.
    let other = app.system("Elsewhere");
    let other: poam_domain::SystemId = other.parse().unwrap_or_else(|e| panic!("{e:?}"));
    let elsewhere = app.token(&[Role::Viewer], &[other]);
    app.get(&path, &elsewhere).problem(404, "not_found");
    assert_eq!(item_cache_counters(&app, &admin), (2, 2, 1));

    // The archive is a new version too.
    let archived = app
        .delete(&format!("{path}?reason=Duplicate"), &admin, Some("\"2\""))
        .expect(200);
    assert!(archived.body["archived_at"].is_string());
    let read = app.get(&path, &admin).expect(200);
    assert_eq!(read.body["archived_at"], archived.body["archived_at"]);
    assert_eq!(read.body["archive_reason"], "Duplicate");

    // Under the 2026 rules the item's `vdr` status moves with the clock: read whole every time.
    let vsid = crate::vdr::vdr_system(&app, "B");
    let vitem = crate::vdr::detected(&app, &vsid, 0);
    let vpath = format!("/v1/items/{}", crate::harness::id(&vitem));
    let (hits, misses, entries) = item_cache_counters(&app, &admin);
    for _ in 0..2 {
        assert!(app.get(&vpath, &admin).expect(200).body["vdr"].is_object());
    }
    assert_eq!(
        item_cache_counters(&app, &admin),
        (hits, misses + 2, entries)
    );
}

/// The rechecks of `/metrics`: kept renderings checked against the row's stamp.
fn item_cache_rechecks(app: &TestApp, admin: &str) -> u64 {
    let (status, _, text) = app.get_bytes("/metrics", admin);
    assert_eq!(status, 200);
    let text = String::from_utf8_lossy(&text);
    text.lines()
        .find_map(|l| {
            l.strip_prefix("poam_item_cache_rechecks_total ")?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no rechecks in {text}"))
}

/// SQLite: while nothing is committed, a kept rendering answers without the item's row being
/// read; a commit by anyone makes the next read check the row's stamp first: this instance's
/// (another item), a second instance's on the same file (the item itself, read at once), a
/// plain connection of another program's (a version raised by hand), and a commit the kept
/// rendering's own connection made.
#[test]
fn a_kept_rendering_is_rechecked_after_a_commit_from_anywhere() {
    use diesel::{Connection, RunQueryDsl, SqliteConnection};
    let Some(app) =
        TestApp::spawn_with(crate::harness::Backend::Sqlite, &[("POAM_POOL_SIZE", "1")])
    else {
        return;
    };
    let admin = app.admin();
    let sid = app.system("Commits");
    let id = crate::harness::id(&app.item(&sid, json!({"title": "First"})).expect(201).body);
    let path = format!("/v1/items/{id}");
    let counts = || {
        let (hits, misses, _) = item_cache_counters(&app, &admin);
        (hits, misses, item_cache_rechecks(&app, &admin))
    };
    let read = || app.get(&path, &admin).expect(200);
    assert_eq!(read().body["title"], "First");
    assert_eq!(counts(), (0, 1, 0));
    // Nothing committed: answered on the count alone, again and again.
    for n in 1..=3 {
        assert_eq!(read().body["title"], "First");
        assert_eq!(counts(), (n, 1, 0));
    }

    // This instance commits something else (on the pool's one connection, the one that kept
    // the rendering: its own change count moved): the stamp is read once, then not again.
    app.item(&sid, json!({"title": "Unrelated"})).expect(201);
    assert_eq!(read().body["version"], 1);
    assert_eq!(counts(), (4, 1, 1));
    assert_eq!(read().body["version"], 1);
    assert_eq!(counts(), (5, 1, 1));

    // A second instance on the same file changes the item: read whole at once.
    let other = app.sibling();
    let patched = ureq::request("PATCH", &format!("{}{path}", other.base))
        .set("Authorization", &format!("Bearer {admin}"))
        .set("Content-Type", "application/merge-patch+json")
        .set("If-Match", "\"1\"")
        .send_string(r#"{"title": "Second"}"#)
        .map(|r| r.status())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(patched, 200);
    let changed = read();
    assert_eq!(changed.body["title"], "Second");
    assert_eq!(changed.header("etag"), Some("\"2\""));
    assert_eq!(counts(), (5, 2, 1));
    assert_eq!(read().body["title"], "Second");
    assert_eq!(counts(), (6, 2, 1));

    // Another program's plain connection raises the version by hand: read at once too.
    let file = app.dir.join("poam.db");
    let mut conn =
        SqliteConnection::establish(&file.display().to_string()).unwrap_or_else(|e| panic!("{e}"));
    diesel::sql_query(format!(
        "UPDATE items SET version = 3, updated_at = '2026-12-03 10:00:00.000000' WHERE id = '{id}'"
    ))
    .execute(&mut conn)
    .unwrap_or_else(|e| panic!("{e}"));
    let by_hand = read();
    assert_eq!(by_hand.header("etag"), Some("\"3\""));
    assert_eq!(by_hand.body["version"], 3);
    assert_eq!(counts(), (6, 3, 1));
    assert_eq!(read().body["version"], 3);
    assert_eq!(counts(), (7, 3, 1));
}

/// `POAM_ITEM_CACHE_MIB=0`: nothing is kept, every read reads the item whole.
#[test]
fn no_rendering_is_kept_without_a_budget() {
    let Some(app) = TestApp::spawn_with(
        crate::harness::Backend::Sqlite,
        &[("POAM_ITEM_CACHE_MIB", "0")],
    ) else {
        return;
    };
    let admin = app.admin();
    let sid = app.system("No renderings");
    let id = crate::harness::id(&app.item(&sid, json!({"title": "Only"})).expect(201).body);
    for _ in 0..3 {
        assert_eq!(
            app.get(&format!("/v1/items/{id}"), &admin).expect(200).body["title"],
            "Only"
        );
    }
    assert_eq!(item_cache_counters(&app, &admin), (0, 0, 0));
}
