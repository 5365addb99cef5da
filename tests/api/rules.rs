//! Every write path obeys the same rules (issue 13): each rule of a change — what a creation may
//! set, which changes are decisions, which states are frozen, who may archive — asked through
//! `POST`/`PATCH`, bulk and the OSCAL import, with the same code; and each leak that was
//! reproduced against the old main, as a test.

use crate::both;
use crate::harness::{codes, days, id, minimal_item, today, Resp, TestApp};
use poam_domain::Role;
use serde_json::{json, Value};

fn note_codes(v: &Value) -> Vec<String> {
    v["notes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["code"].as_str().map(str::to_owned))
        .collect()
}

fn item_body(extra: Value) -> Value {
    let mut body = minimal_item();
    if let (Some(b), Value::Object(e)) = (body.as_object_mut(), extra) {
        b.extend(e);
    }
    body
}

fn bulk(app: &TestApp, sid: &str, token: &str, query: &str, items: Vec<Value>) -> Resp {
    app.post(
        &format!("/v1/systems/{sid}/items/bulk{query}"),
        token,
        &json!({ "items": items }),
    )
}

fn import(app: &TestApp, sid: &str, token: &str, query: &str, doc: &Value) -> Resp {
    app.post(
        &format!("/v1/systems/{sid}/imports/oscal{query}"),
        token,
        doc,
    )
}

fn export_oscal(app: &TestApp, sid: &str) -> Value {
    let (status, _, bytes) = app.get_bytes(
        &format!("/v1/systems/{sid}/export?format=oscal"),
        &app.admin(),
    );
    assert_eq!(status, 200);
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("oscal export: {e}"))
}

/// A source system whose items an admin migrated in with the given content: its OSCAL export is
/// a document written by another tool, with statuses and decisions.
fn document_with(app: &TestApp, items: Vec<Value>) -> Value {
    let source = app.system(&format!("Source {}", uuid::Uuid::new_v4()));
    let r = bulk(app, &source, &app.admin(), "?migrate=true", items).expect(200);
    assert_eq!(
        r.body["summary"]["created"],
        r.body["results"].as_array().map_or(0, Vec::len) as i64,
        "{}",
        r.body
    );
    export_oscal(app, &source)
}

/// The only element of a bulk answer.
fn only(r: &Resp) -> &Value {
    &r.body["results"][0]
}

/// An item walked to `closed` through the real workflow (milestone, evidence, completion, an
/// independent verification). Returns its id.
fn closed_item(app: &TestApp, sid: &str) -> String {
    let item = app
        .item(sid, json!({"scheduled_completion": days(30), "external_id": format!("closed-{}", uuid::Uuid::new_v4())}))
        .expect(201);
    let iid = id(&item.body);
    app.milestone(&iid, &days(10));
    close(app, &iid);
    iid
}

/// Lee (an editor) walks an item with a schedule and a milestone to `completed`.
fn complete(app: &TestApp, iid: &str) {
    let lee = app.token_as("lee@example.org", &[Role::Editor]);
    app.transition(iid, &lee, json!({"to": "in_progress"}))
        .expect(200);
    app.evidence(iid).expect(201);
    app.transition(
        iid,
        &lee,
        json!({"to": "completed", "comment": "Patched and rescanned.", "completed_on": today().to_string()}),
    )
    .expect(200);
}

/// Walks an item with a schedule and a milestone to `closed`: completed by Lee, verified and
/// closed by the ISSM.
fn close(app: &TestApp, iid: &str) {
    let issm = app.token_as("issm@example.org", &[Role::Approver]);
    let iid = iid.to_owned();
    complete(app, &iid);
    app.post(
        &format!("/v1/items/{iid}/reviews"),
        &issm,
        &json!({"kind": "closure_verification", "decision": "approved", "notes": "Rescan clean."}),
    )
    .expect(201);
    app.transition(&iid, &issm, json!({"to": "closed"}))
        .expect(200);
}

/// One rule, asked through every write path: what each path answers.
struct Case {
    rule: &'static str,
    /// The element a creation sends (POST body, bulk element, OSCAL item).
    create: Value,
    /// POST, bulk: the problem code; `None`: accepted.
    refused_as: Option<&'static str>,
    /// The HTTP status of that refusal.
    status: u16,
    /// The OSCAL import (an editor's, no migration): created, with these notes.
    import_notes: &'static [&'static str],
}

fn every_creation_path_asks_the_same_rule(app: &TestApp) {
    let editor = app.token_as("ed@example.org", &[Role::Editor]);
    let cases = [
        Case {
            rule: "an item starts open",
            create: json!({"status": "completed", "completed_on": "2026-10-20"}),
            refused_as: Some("validation_failed"),
            status: 422,
            import_notes: &["status_not_imported"],
        },
        Case {
            rule: "a decided deviation is an approver's",
            create: json!({"deviation": {"kind": "false_positive", "status": "approved", "rationale": "Scanner misfire."}}),
            refused_as: Some("decision_needs_approver"),
            status: 403,
            import_notes: &["deviation_pending"],
        },
        Case {
            rule: "a pending deviation is anyone's",
            create: json!({"deviation": {"kind": "false_positive", "status": "pending", "rationale": "Scanner misfire."}}),
            refused_as: None,
            status: 201,
            import_notes: &[],
        },
    ];
    for (n, case) in cases.iter().enumerate() {
        let sid = app.system(&format!("Rules {n}"));
        // POST
        let r = app.post(
            &format!("/v1/systems/{sid}/items"),
            &editor,
            &item_body(case.create.clone()),
        );
        match case.refused_as {
            Some(code) => {
                r.problem(case.status, code);
            }
            None => {
                r.expect(201);
            }
        }
        // bulk: the same answer, per element
        let r = bulk(app, &sid, &editor, "", vec![item_body(case.create.clone())]).expect(200);
        let element = only(&r);
        match case.refused_as {
            Some(code) => {
                assert_eq!(element["status"], "failed", "{}: {element}", case.rule);
                assert_eq!(element["problem"]["code"], code, "{}: {element}", case.rule);
                assert_eq!(element["problem"]["status"], case.status, "{}", case.rule);
            }
            None => assert_eq!(element["status"], "created", "{}: {element}", case.rule),
        }
        // OSCAL import: the same decision; a document's status or decision is set aside, said so
        let doc = document_with(app, vec![item_body(case.create.clone())]);
        let target = app.system(&format!("Rules {n} target"));
        let r = import(app, &target, &editor, "", &doc).expect(200);
        let created = &r.body["created"][0];
        let notes = note_codes(created);
        for expected in case.import_notes {
            assert!(
                notes.contains(&(*expected).to_owned()),
                "{}: {}",
                case.rule,
                r.body
            );
        }
        if case.import_notes.is_empty() {
            assert!(notes.is_empty(), "{}: {}", case.rule, r.body);
        }
        let item = app
            .get(&format!("/v1/items/{}", id(created)), &editor)
            .expect(200);
        assert_eq!(item.body["status"], "open", "{}", case.rule);
        assert!(item.body["completed_on"].is_null(), "{}", case.rule);
        if let Some(d) = item.body["deviation"].as_object() {
            assert_eq!(d["status"], "pending", "{}", case.rule);
        }
    }
}
both!(every_creation_path_asks_the_same_rule);

/// Leak: an editor's OSCAL import created an item directly in `completed`; re-importing moved a
/// milestone's due date with no reason and moved a completed item back without a transition.
fn imports_carry_statuses_only_in_an_admins_migration(app: &TestApp) {
    let editor = app.token_as("ed@example.org", &[Role::Editor]);
    let doc = document_with(
        app,
        vec![item_body(json!({
            "external_id": "done-1",
            "status": "completed",
            "completed_on": "2026-10-20",
            "scheduled_completion": days(40),
        }))],
    );
    // The source's milestone, exported as a task of the item's remediation.
    let sid = app.system("Import target");
    let r = import(app, &sid, &editor, "", &doc).expect(200);
    let iid = id(&r.body["created"][0]);
    let item = app.get(&format!("/v1/items/{iid}"), &editor).expect(200);
    assert_eq!(item.body["status"], "open");
    assert!(item.body["completed_on"].is_null());

    // Only an admin migrates, and the history says so.
    import(app, &sid, &editor, "?migrate=true", &doc).problem(403, "migrate_needs_admin");
    bulk(
        app,
        &sid,
        &editor,
        "?migrate=true",
        vec![item_body(json!({}))],
    )
    .problem(403, "migrate_needs_admin");
    let other = app.system("Migration target");
    let r = import(app, &other, &app.admin(), "?migrate=true", &doc).expect(200);
    let migrated = id(&r.body["created"][0]);
    let item = app
        .get(&format!("/v1/items/{migrated}"), &editor)
        .expect(200);
    assert_eq!(item.body["status"], "completed");
    assert_eq!(item.body["completed_on"], "2026-10-20");
    let history = app
        .get(&format!("/v1/items/{migrated}/history"), &app.admin())
        .expect(200);
    let actions: Vec<&str> = history.body["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert!(actions.contains(&"migrated"), "{actions:?}");
    assert!(!actions.contains(&"imported"), "{actions:?}");

    // Re-import into the migrated item's system a document where it is in progress again: the
    // status stays (a transition is the only way back), and the answer says so.
    let mut moved = doc.clone();
    let poam = &mut moved["plan-of-action-and-milestones"];
    if let Some(risks) = poam["risks"].as_array_mut() {
        for risk in risks {
            risk["status"] = json!("open");
            if let Some(props) = risk["props"].as_array_mut() {
                for p in props {
                    if p["name"] == "status" {
                        p["value"] = json!("in_progress");
                    }
                }
            }
        }
    }
    let r = import(app, &other, &editor, "", &moved).expect(200);
    let updated = r.body["updated"]
        .as_array()
        .into_iter()
        .flatten()
        .chain(r.body["skipped"].as_array().into_iter().flatten())
        .next()
        .cloned()
        .unwrap_or_default();
    assert_eq!(id(&updated), migrated, "{}", r.body);
    assert!(
        note_codes(&updated).contains(&"status_not_imported".to_owned()),
        "{}",
        r.body
    );
    let item = app
        .get(&format!("/v1/items/{migrated}"), &editor)
        .expect(200);
    assert_eq!(item.body["status"], "completed");
}
both!(imports_carry_statuses_only_in_an_admins_migration);

/// Leak: re-importing moved a milestone's due date with no reason.
fn imported_milestone_moves_are_recorded_with_the_import_as_reason(app: &TestApp) {
    let editor = app.token_as("ed@example.org", &[Role::Editor]);
    let source = app.system("Milestone source");
    let item = app
        .item(&source, json!({"scheduled_completion": days(60)}))
        .expect(201);
    let src_item = id(&item.body);
    app.post(
        &format!("/v1/items/{src_item}/milestones"),
        &app.admin(),
        &json!({"title": "Rescan", "due_on": days(10), "kind": "test", "percent_complete": 40}),
    )
    .expect(201);
    let doc = export_oscal(app, &source);
    let target = app.system("Milestone target");
    let r = import(app, &target, &editor, "", &doc).expect(200);
    let iid = id(&r.body["created"][0]);
    let milestones = app
        .get(&format!("/v1/items/{iid}/milestones"), &editor)
        .expect(200);
    let m = &milestones.body["items"][0];
    assert_eq!(m["due_on"], days(10));
    assert_eq!(m["changes"], json!([]));
    assert_eq!(
        (m["kind"].as_str(), m["percent_complete"].as_i64()),
        (Some("test"), Some(40))
    );

    // The document moves the task five days later.
    let text = doc.to_string().replace(
        &format!("{}T00:00:00Z", days(10)),
        &format!("{}T00:00:00Z", days(15)),
    );
    let moved: Value = serde_json::from_str(&text).unwrap_or_default();
    let r = import(app, &target, &editor, "", &moved).expect(200);
    let updated = &r.body["updated"][0];
    assert_eq!(id(updated), iid, "{}", r.body);
    assert!(
        note_codes(updated).contains(&"milestone_moved".to_owned()),
        "{}",
        r.body
    );
    let milestones = app
        .get(&format!("/v1/items/{iid}/milestones"), &editor)
        .expect(200);
    let m = &milestones.body["items"][0];
    assert_eq!(m["due_on"], days(15));
    let change = &m["changes"][0];
    assert_eq!(change["from"], days(10));
    assert_eq!(change["to"], days(15));
    assert_eq!(change["by"], "ed@example.org");
    assert!(
        change["reason"]
            .as_str()
            .is_some_and(|r| r.contains("import of OSCAL document")),
        "{change}"
    );
}
both!(imported_milestone_moves_are_recorded_with_the_import_as_reason);

/// Leak: an editor PATCHed an approved deviation's rationale and kind (200, still approved);
/// bulk did the same.
fn decisions_stay_decided_on_patch_and_bulk(app: &TestApp) {
    let editor = app.token_as("ed@example.org", &[Role::Editor]);
    let sid = app.system("Deviations");
    let approved =
        json!({"kind": "false_positive", "status": "approved", "rationale": "Scanner misfire."});
    for (path, ext) in [("patch", "dev-patch"), ("bulk", "dev-bulk")] {
        let item = app
            .item(&sid, json!({"external_id": ext, "deviation": approved}))
            .expect(201);
        let iid = id(&item.body);
        let change = json!({"deviation": {"kind": "operational_requirement", "rationale": "Business needs it."}});
        let after = if path == "patch" {
            app.patch(&format!("/v1/items/{iid}"), &editor, &change, None)
                .expect(200)
                .body
        } else {
            let mut element = change.clone();
            element["external_id"] = json!(ext);
            let r = bulk(app, &sid, &editor, "", vec![element]).expect(200);
            let e = only(&r);
            assert_eq!(e["status"], "updated", "{e}");
            assert_eq!(note_codes(e), ["deviation_returned_to_pending"]);
            app.get(&format!("/v1/items/{iid}"), &editor)
                .expect(200)
                .body
        };
        assert_eq!(after["deviation"]["status"], "pending", "{path}: {after}");
        assert_eq!(
            after["deviation"]["kind"], "operational_requirement",
            "{path}"
        );

        // Deciding it again, or removing a decided one, is an approver's.
        let decide = json!({"deviation": {"status": "approved"}});
        if path == "patch" {
            app.patch(&format!("/v1/items/{iid}"), &editor, &decide, None)
                .problem(403, "decision_needs_approver");
        } else {
            let mut element = decide.clone();
            element["external_id"] = json!(ext);
            let r = bulk(app, &sid, &editor, "", vec![element]).expect(200);
            assert_eq!(only(&r)["problem"]["code"], "decision_needs_approver");
        }
        app.patch(&format!("/v1/items/{iid}"), &app.admin(), &decide, None)
            .expect(200);
        app.patch(
            &format!("/v1/items/{iid}"),
            &editor,
            &json!({"deviation": null}),
            None,
        )
        .problem(403, "decision_needs_approver");
    }
}
both!(decisions_stay_decided_on_patch_and_bulk);

/// Leak: on a closed item an editor PATCHed title, description and risk rating (200, still
/// closed). Closed and risk-accepted items are frozen but for comments, on every path.
fn closed_items_are_frozen_on_every_path(app: &TestApp) {
    let editor = app.token_as("ed@example.org", &[Role::Editor]);
    let sid = app.system("Frozen");
    let iid = closed_item(app, &sid);
    let item = app.get(&format!("/v1/items/{iid}"), &editor).expect(200);
    assert_eq!(item.body["status"], "closed");
    let ext = item.body["external_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    for change in [
        json!({"title": "Renamed"}),
        json!({"description": "Rewritten."}),
        json!({"risk_rating": "low"}),
    ] {
        let r = app
            .patch(&format!("/v1/items/{iid}"), &editor, &change, None)
            .problem(409, "item_frozen");
        assert!(r.body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("reopen")));
        let mut element = change.clone();
        element["external_id"] = json!(ext);
        let r = bulk(app, &sid, &editor, "", vec![element]).expect(200);
        assert_eq!(only(&r)["problem"]["code"], "item_frozen", "{}", r.body);
        // An admin is held too: reopening is the way.
        app.patch(&format!("/v1/items/{iid}"), &app.admin(), &change, None)
            .problem(409, "item_frozen");
    }
    let after = app
        .patch(
            &format!("/v1/items/{iid}"),
            &editor,
            &json!({"comments": "Verified again in the quarterly review."}),
            None,
        )
        .expect(200);
    assert_eq!(after.body["status"], "closed");
    assert_eq!(after.body["title"], minimal_item()["title"]);

    // The OSCAL import: a re-import that would rewrite a closed item is refused by the same rule.
    let source = app.system("Frozen source");
    let src = app
        .item(&source, json!({"scheduled_completion": days(30)}))
        .expect(201);
    app.milestone(&id(&src.body), &days(10));
    let doc = export_oscal(app, &source);
    let target = app.system("Frozen target");
    let r = import(app, &target, &editor, "", &doc).expect(200);
    let imported = id(&r.body["created"][0]);
    close(app, &imported);
    let renamed: Value = serde_json::from_str(&doc.to_string().replace(
        "TLS 1.0 enabled on the load balancer",
        "Renamed by a later document",
    ))
    .unwrap_or_default();
    let r = import(app, &target, &editor, "", &renamed).expect(200);
    assert_eq!(
        r.body["failed"][0]["problem"]["code"], "item_frozen",
        "{}",
        r.body
    );
    let item = app
        .get(&format!("/v1/items/{imported}"), &editor)
        .expect(200);
    assert_eq!(item.body["title"], minimal_item()["title"]);
}
both!(closed_items_are_frozen_on_every_path);

/// Leak: self-approval was checked only against `requested_by`, a field the approver fills in.
/// The server derives the requester from the item's history.
fn requesters_never_decide_their_own_requests(app: &TestApp) {
    let dana_editor = app.token_as("dana@example.org", &[Role::Editor]);
    let dana_approver = app.token_as("dana@example.org", &[Role::Approver]);
    let issm = app.token_as("issm@example.org", &[Role::Approver]);
    let sid = app.system("Separation");
    let item = app.item(&sid, json!({})).expect(201);
    let iid = id(&item.body);
    // Dana asks for a deviation.
    app.patch(
        &format!("/v1/items/{iid}"),
        &dana_editor,
        &json!({"deviation": {"kind": "false_positive", "rationale": "Scanner misfire."}}),
        None,
    )
    .expect(200);
    let review = |token: &str, requested_by: Option<&str>| {
        let mut body = json!({"kind": "deviation", "deviation_kind": "false_positive", "decision": "approved"});
        if let Some(r) = requested_by {
            body["requested_by"] = json!(r);
        }
        app.post(&format!("/v1/items/{iid}/reviews"), token, &body)
    };
    // Leaving requested_by out, or naming someone else, or padding her own name: refused.
    for requested_by in [
        None,
        Some("someone.else@example.org"),
        Some(" dana@example.org"),
    ] {
        let r = review(&dana_approver, requested_by).problem(422, "validation_failed");
        assert_eq!(codes(&r.body), ["self_approval"], "{requested_by:?}");
    }
    // Her token subject with other letter case and spaces is still her.
    let dana_shouting = app.token_as(" DANA@Example.org ", &[Role::Approver]);
    let r = review(&dana_shouting, None).problem(422, "validation_failed");
    assert_eq!(codes(&r.body), ["self_approval"]);
    review(&issm, None).expect(201);

    // Closure: whoever marked the item completed may not verify it.
    let lee_approver = app.token_as("lee@example.org", &[Role::Approver]);
    let item = app
        .item(&sid, json!({"scheduled_completion": days(30)}))
        .expect(201);
    let iid = id(&item.body);
    app.milestone(&iid, &days(10));
    complete(app, &iid);
    let r = app
        .post(
            &format!("/v1/items/{iid}/reviews"),
            &lee_approver,
            &json!({"kind": "closure_verification", "decision": "approved"}),
        )
        .problem(422, "validation_failed");
    assert_eq!(codes(&r.body), ["self_approval"]);
}
both!(requesters_never_decide_their_own_requests);

/// Leak: an editor archived an open, overdue critical item (no reason, no approval) and it
/// vanished from metrics, the FedRAMP CSV and the OSCAL export.
fn archiving_an_unresolved_item_is_a_reasoned_decision_reports_count(app: &TestApp) {
    let editor = app.token_as("ed@example.org", &[Role::Editor]);
    let approver = app.token_as("issm@example.org", &[Role::Approver]);
    let sid = app.system("Archive");
    let item = app
        .item(
            &sid,
            json!({"risk_rating": "critical", "detected_on": "2026-09-01", "scheduled_completion": "2026-09-30"}),
        )
        .expect(201);
    let iid = id(&item.body);
    app.item(&sid, json!({"title": "Kept"})).expect(201);
    assert_eq!(item.body["overdue"], true);
    app.delete(&format!("/v1/items/{iid}"), &editor, None)
        .problem(403, "archive_needs_approver");
    app.delete(&format!("/v1/items/{iid}?reason=dup"), &editor, None)
        .problem(403, "archive_needs_approver");
    let r = app
        .delete(&format!("/v1/items/{iid}"), &approver, None)
        .problem(422, "validation_failed");
    assert_eq!(codes(&r.body), ["reason_required"]);
    app.delete(&format!("/v1/items/{iid}?reason=%20%20"), &approver, None)
        .problem(422, "validation_failed");
    let archived = app
        .delete(
            &format!("/v1/items/{iid}?reason=Duplicate%20of%20POAM-0002"),
            &approver,
            None,
        )
        .expect(200);
    assert_eq!(archived.body["archive_reason"], "Duplicate of POAM-0002");
    let history = app
        .get(&format!("/v1/items/{iid}/history"), &approver)
        .expect(200);
    let last = history.body["items"]
        .as_array()
        .and_then(|a| a.last())
        .cloned()
        .unwrap_or_default();
    assert_eq!(last["action"], "archived");
    assert_eq!(
        last["changes"]["archive_reason"]["after"],
        "Duplicate of POAM-0002"
    );

    // The reason as a JSON body works too.
    let other = app.item(&sid, json!({"title": "Other"})).expect(201);
    let r = app.request(
        "DELETE",
        &format!("/v1/items/{}", id(&other.body)),
        Some(&approver),
        &[("Content-Type", "application/json")],
        Some(br#"{"reason": "Out of the boundary"}"#),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["archive_reason"], "Out of the boundary");

    // Reports say what they leave out, and take it back on request.
    let m = app
        .get(&format!("/v1/systems/{sid}/metrics"), &editor)
        .expect(200);
    assert_eq!(m.body["total"], 1);
    assert_eq!(m.body["archived_unresolved_excluded"], 2);
    let m = app
        .get(
            &format!("/v1/systems/{sid}/metrics?include_archived=true"),
            &editor,
        )
        .expect(200);
    assert_eq!(m.body["total"], 3);
    assert_eq!(m.body["archived_unresolved_excluded"], 0);
    let (status, headers, csv) =
        app.get_bytes(&format!("/v1/systems/{sid}/export?format=csv"), &editor);
    assert_eq!(status, 200);
    assert_eq!(
        headers
            .get("poam-archived-unresolved-excluded")
            .map(String::as_str),
        Some("2")
    );
    let rows = String::from_utf8_lossy(&csv).lines().count();
    let (_, headers, csv) = app.get_bytes(
        &format!("/v1/systems/{sid}/export?format=csv&include_archived=true"),
        &editor,
    );
    assert_eq!(
        headers
            .get("poam-archived-unresolved-excluded")
            .map(String::as_str),
        Some("0")
    );
    assert_eq!(String::from_utf8_lossy(&csv).lines().count(), rows + 2);
    let doc = export_oscal(app, &sid);
    let props = doc["plan-of-action-and-milestones"]["metadata"]["props"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        props
            .iter()
            .any(|p| p["name"] == "archived-unresolved-excluded" && p["value"] == "2"),
        "{props:?}"
    );
    let (_, _, all) = app.get_bytes(
        &format!("/v1/systems/{sid}/export?format=oscal&include_archived=true"),
        &editor,
    );
    let all: Value = serde_json::from_slice(&all).unwrap_or_default();
    assert_eq!(
        all["plan-of-action-and-milestones"]["poam-items"]
            .as_array()
            .map(Vec::len),
        Some(3)
    );

    // A resolved item is the editor's to archive, reason or not.
    let closed = closed_item(app, &sid);
    app.delete(&format!("/v1/items/{closed}"), &editor, None)
        .expect(200);
}
both!(archiving_an_unresolved_item_is_a_reasoned_decision_reports_count);

/// Leak: `If-Match: "stale-0"` (well-formed, not minted here) answered 400. RFC 9110: any
/// entity-tag that does not match is a 412; only a malformed header is a 400.
fn if_match_follows_rfc_9110(app: &TestApp) {
    let sid = app.system("Preconditions");
    let item = app.item(&sid, json!({})).expect(201);
    let iid = id(&item.body);
    let path = format!("/v1/items/{iid}");
    let patch = |tag: &str, title: &str| {
        app.patch(&path, &app.admin(), &json!({ "title": title }), Some(tag))
    };
    patch("\"stale-0\"", "a").problem(412, "precondition_failed");
    patch("W/\"1\"", "a").problem(412, "precondition_failed");
    patch("\"7\", \"8\"", "a").problem(412, "precondition_failed");
    patch("stale", "a").problem(400, "invalid_if_match");
    patch("\"1", "a").problem(400, "invalid_if_match");
    let r = patch("\"9\", \"1\"", "b").expect(200);
    assert_eq!(r.header("etag"), Some("\"2\""));
    patch("*", "c").expect(200);
    // Transitions and systems read the header the same way.
    app.post(
        &format!("/v1/items/{iid}/transitions"),
        &app.admin(),
        &json!({"to": "deferred", "comment": "Budget", "target_date": days(90)}),
    );
    let r = app.request(
        "POST",
        &format!("/v1/items/{iid}/transitions"),
        Some(&app.admin()),
        &[
            ("Content-Type", "application/json"),
            ("If-Match", "\"x-1\""),
        ],
        Some(json!({"to": "open"}).to_string().as_bytes()),
    );
    assert_eq!(r.status, 412, "{}", r.body);
    let r = app.request(
        "PATCH",
        &format!("/v1/systems/{sid}"),
        Some(&app.admin()),
        &[
            ("Content-Type", "application/merge-patch+json"),
            ("If-Match", "\"stale-0\""),
        ],
        Some(br#"{"description": "x"}"#),
    );
    assert_eq!(r.status, 412, "{}", r.body);
}
both!(if_match_follows_rfc_9110);

/// The status of an existing item, asked to move by PATCH, bulk and an import: the same rule.
fn statuses_move_only_through_transitions_on_every_path(app: &TestApp) {
    let editor = app.token_as("ed@example.org", &[Role::Editor]);
    let approver_admin = app.admin();
    let sid = app.system("Status paths");
    let item = app.item(&sid, json!({"external_id": "s-1"})).expect(201);
    let iid = id(&item.body);
    for (token, to) in [(&editor, "in_progress"), (&approver_admin, "closed")] {
        let r = app
            .patch(
                &format!("/v1/items/{iid}"),
                token,
                &json!({ "status": to }),
                None,
            )
            .problem(422, "validation_failed");
        assert_eq!(codes(&r.body), ["status_via_transition"]);
        let r = bulk(
            app,
            &sid,
            token,
            "",
            vec![json!({"external_id": "s-1", "status": to})],
        )
        .expect(200);
        assert_eq!(only(&r)["problem"]["code"], "validation_failed");
        assert_eq!(codes(&only(&r)["problem"]), ["status_via_transition"]);
    }
    let r = app
        .patch(
            &format!("/v1/items/{iid}"),
            &editor,
            &json!({"completed_on": "2026-10-20"}),
            None,
        )
        .problem(422, "validation_failed");
    assert_eq!(codes(&r.body), ["set_by_transition"]);
    let item = app.get(&format!("/v1/items/{iid}"), &editor).expect(200);
    assert_eq!(item.body["status"], "open");
    assert_eq!(item.body["version"], 1);
}
both!(statuses_move_only_through_transitions_on_every_path);
