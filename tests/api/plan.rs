//! The remediation plan as the seeds describe it: change management and escalation on the item,
//! milestone kinds, progress and delays, training evidence, and the test or scan evidence a
//! severe item needs to close under FedRAMP and CMMC. Every refusal names its rule.

use crate::both;
use crate::harness::{codes, days, id, today, Backend, TestApp};
use poam_domain::Role;
use serde_json::{json, Value};

const TRESTLE: &str = r#"
import sys
from trestle.oscal.poam import PlanOfActionAndMilestones
doc = PlanOfActionAndMilestones.oscal_read(__import__('pathlib').Path(sys.argv[1]))
print(len(doc.poam_items), doc.metadata.oscal_version.__root__ if hasattr(doc.metadata.oscal_version, '__root__') else doc.metadata.oscal_version)
"#;

fn change() -> Value {
    json!({
        "ticket": "CHG0012345",
        "ticket_url": "https://example.service-now.com/change_request.do?sys_id=CHG0012345",
        "testing": "Handshake scan of staging with testssl.sh",
        "approval_authority": "Change Advisory Board",
        "rollback": "Restore the previous listener policy",
        "communication": "Notice to partners 48 hours ahead",
        "window_start": "2026-12-05T02:00:00Z",
        "window_end": "2026-12-05T04:00:00Z",
        "impact": "moderate",
        "expedited": true
    })
}

fn change_management_and_escalation_contact_round_trip(app: &TestApp) {
    let admin = app.admin();
    let sid = app.system("Change");
    let contact = json!({"name": "Morgan Reyes", "email": "morgan@example.org"});
    let created = app
        .item(
            &sid,
            json!({"change_management": change(), "escalation_contact": contact}),
        )
        .expect(201);
    let iid = id(&created.body);
    assert_eq!(created.body["change_management"], change());
    assert_eq!(created.body["escalation_contact"], contact);
    assert_eq!(created.body["escalated"], false);
    let got = app.get(&format!("/v1/items/{iid}"), &admin).expect(200);
    assert_eq!(got.body["change_management"], change());
    assert_eq!(got.body["escalation_contact"], contact);

    // A merge patch changes one member of the object.
    let patched = app
        .patch(
            &format!("/v1/items/{iid}"),
            &admin,
            &json!({"change_management": {"impact": "high", "communication": null}}),
            None,
        )
        .expect(200);
    assert_eq!(patched.body["change_management"]["impact"], "high");
    assert!(patched.body["change_management"]
        .get("communication")
        .is_none_or(Value::is_null));
    assert_eq!(patched.body["change_management"]["ticket"], "CHG0012345");

    // Refusals, each with its code.
    let mut reversed = change();
    reversed["window_end"] = json!("2026-12-05T01:00:00Z");
    let r = app
        .item(&sid, json!({"change_management": reversed}))
        .problem(422, "validation_failed");
    assert_eq!(codes(&r.body), ["change_window_reversed"]);
    assert_eq!(r.pointers(), ["/change_management/window_end"]);
    let r = app
        .item(
            &sid,
            json!({"change_management": {"impact": "catastrophic"}}),
        )
        .expect(422);
    assert_eq!(r.pointers(), ["/change_management/impact"]);
    let r = app
        .item(
            &sid,
            json!({"change_management": {"ticket_url": "not a url"}}),
        )
        .expect(422);
    assert_eq!(r.pointers(), ["/change_management/ticket_url"]);
    let r = app
        .item(
            &sid,
            json!({"change_management": {"ticket": "x".repeat(101)}}),
        )
        .expect(422);
    assert_eq!(r.pointers(), ["/change_management/ticket"]);
    let r = app
        .item(
            &sid,
            json!({"change_management": {"window_start": "next tuesday"}}),
        )
        .expect(422);
    assert_eq!(r.pointers(), ["/change_management/window_start"]);
    let r = app
        .patch(
            &format!("/v1/items/{iid}"),
            &admin,
            &json!({"escalated": true}),
            None,
        )
        .expect(422);
    assert_eq!(codes(&r.body), ["read_only_field"]);

    // Bulk carries them too.
    let mut element = crate::harness::minimal_item();
    element["external_id"] = json!("bulk-1");
    element["change_management"] = change();
    element["escalation_contact"] = contact.clone();
    let r = app
        .post(
            &format!("/v1/systems/{sid}/items/bulk"),
            &admin,
            &json!({"items": [element]}),
        )
        .expect(200);
    assert_eq!(r.body["results"][0]["status"], "created", "{}", r.body);
    let listed = app
        .get(
            &format!("/v1/systems/{sid}/items?external_id=bulk-1"),
            &admin,
        )
        .expect(200);
    assert_eq!(listed.body["items"][0]["change_management"], change());
    assert_eq!(listed.body["items"][0]["escalation_contact"], contact);

    // The JSON export keeps them; the OSCAL export carries them as props of the risk.
    let (status, _, bytes) =
        app.get_bytes(&format!("/v1/systems/{sid}/export?format=json"), &admin);
    assert_eq!(status, 200);
    let bundle: Value = serde_json::from_slice(&bytes).unwrap_or_default();
    let first = bundle["items"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|i| i["item"]["id"] == iid.as_str())
        .cloned()
        .unwrap_or_default();
    assert_eq!(first["item"]["change_management"]["ticket"], "CHG0012345");
    assert_eq!(first["item"]["escalation_contact"], contact);
    let (status, _, bytes) =
        app.get_bytes(&format!("/v1/systems/{sid}/export?format=oscal"), &admin);
    assert_eq!(status, 200);
    let doc: Value = serde_json::from_slice(&bytes).unwrap_or_default();
    let props: Vec<(String, String)> = doc["plan-of-action-and-milestones"]["risks"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|r| r["props"].as_array().cloned().unwrap_or_default())
        .map(|p| {
            (
                p["name"].as_str().unwrap_or("").to_owned(),
                p["value"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    if let Some(py) = crate::harness::python_tools() {
        let path = app.dir.join("plan.oscal.json");
        std::fs::write(&path, &bytes).unwrap_or_else(|e| panic!("{e}"));
        let out = crate::harness::python_check(&py, TRESTLE, &path);
        assert!(out.contains("1.1.2"), "{out}");
    }
    // Imported elsewhere, the props come back as the fields.
    let target = app.system("Change copy");
    let r = app
        .post(&format!("/v1/systems/{target}/imports/oscal"), &admin, &doc)
        .expect(200);
    let unmapped: Vec<String> = r.body["unmapped"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|u| {
            u["pointer"]
                .as_str()
                .or(u.as_str())
                .unwrap_or("")
                .to_owned()
        })
        .collect();
    assert!(
        !unmapped
            .iter()
            .any(|p| p.contains("/risks/") && p.contains("/props")),
        "every prop of a risk is mapped: {unmapped:?}"
    );
    let copied = app
        .get(&format!("/v1/systems/{target}/items"), &admin)
        .expect(200);
    let copied = copied.body["items"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|i| {
            i["change_management"]["ticket"] == "CHG0012345" && i["title"] == created.body["title"]
        })
        .cloned()
        .unwrap_or_default();
    assert_eq!(copied["change_management"]["impact"], "high");
    assert_eq!(
        copied["change_management"]["window_end"],
        "2026-12-05T04:00:00Z"
    );
    assert_eq!(copied["change_management"]["expedited"], true);
    assert_eq!(copied["escalation_contact"], contact);
    for (name, value) in [
        ("change-ticket", "CHG0012345"),
        ("change-impact", "high"),
        ("change-expedited", "true"),
        ("escalation-contact-name", "Morgan Reyes"),
    ] {
        assert!(
            props.iter().any(|(n, v)| n == name && v == value),
            "{name}={value} in {props:?}"
        );
    }
}
both!(change_management_and_escalation_contact_round_trip);

fn overdue_items_past_the_grace_are_escalated(app: &TestApp) {
    let admin = app.admin();
    let sid = app.system("Escalation");
    let item = |due: String, title: &str| {
        id(&app
            .item(
                &sid,
                json!({"title": title, "detected_on": days(-60), "scheduled_completion": due}),
            )
            .expect(201)
            .body)
    };
    let late = item(days(-20), "Twenty days late");
    let overdue = item(days(-5), "Five days late");
    let future = item(days(30), "Not yet due");
    let got = app.get(&format!("/v1/items/{late}"), &admin).expect(200);
    assert_eq!(
        (
            got.body["overdue"].as_bool(),
            got.body["escalated"].as_bool()
        ),
        (Some(true), Some(true))
    );
    let got = app.get(&format!("/v1/items/{overdue}"), &admin).expect(200);
    assert_eq!(
        (
            got.body["overdue"].as_bool(),
            got.body["escalated"].as_bool()
        ),
        (Some(true), Some(false))
    );
    let got = app.get(&format!("/v1/items/{future}"), &admin).expect(200);
    assert_eq!(got.body["escalated"], false);
    let list = |q: &str| -> Vec<String> {
        app.get(&format!("/v1/systems/{sid}/items?{q}"), &admin)
            .expect(200)
            .body["items"]
            .as_array()
            .into_iter()
            .flatten()
            .map(id)
            .collect()
    };
    assert_eq!(list("escalated=true"), std::slice::from_ref(&late));
    assert_eq!(list("escalated=false"), [overdue.clone(), future.clone()]);
    assert_eq!(list("overdue=true"), [late.clone(), overdue.clone()]);
    let all = app
        .get(&format!("/v1/systems/{sid}/items"), &admin)
        .expect(200);
    assert_eq!(
        all.body["items"][0]["escalated"], true,
        "lists show the flag"
    );
    app.get(
        &format!("/v1/systems/{sid}/items?escalated=perhaps"),
        &admin,
    )
    .expect(400);
    let m = app
        .get(&format!("/v1/systems/{sid}/metrics"), &admin)
        .expect(200);
    assert_eq!(m.body["escalated"]["total"], 1, "{}", m.body);
    assert_eq!(m.body["escalated"]["by_rating"]["high"], 1);
    assert_eq!(m.body["overdue"]["total"], 2);
}
both!(overdue_items_past_the_grace_are_escalated);

/// The grace is configurable: with none, every overdue item is escalated.
#[test]
fn the_escalation_grace_is_configurable() {
    let Some(app) = TestApp::spawn_with(Backend::Sqlite, &[("POAM_ESCALATION_GRACE_DAYS", "0")])
    else {
        return;
    };
    let sid = app.system("No grace");
    let r = app
        .item(
            &sid,
            json!({"scheduled_completion": days(-1), "detected_on": days(-10)}),
        )
        .expect(201);
    assert_eq!(
        (r.body["overdue"].as_bool(), r.body["escalated"].as_bool()),
        (Some(true), Some(true))
    );
    // Put the process-wide grace back for whatever runs next in this process.
    poam_persistence::items::set_escalation_grace_days(
        poam_domain::item::DEFAULT_ESCALATION_GRACE_DAYS,
    );
}

fn milestones_have_a_kind_progress_and_read_delayed(app: &TestApp) {
    let admin = app.admin();
    let lee = app.token_as("lee@example.org", &[Role::Editor]);
    let sid = app.system("Milestones");
    let iid = id(&app
        .item(
            &sid,
            json!({"detected_on": days(-30), "scheduled_completion": days(30)}),
        )
        .expect(201)
        .body);
    let path = format!("/v1/items/{iid}/milestones");
    let plain = app
        .post(&path, &lee, &json!({"title": "Patch", "due_on": days(10)}))
        .expect(201);
    assert_eq!(
        (
            plain.body["kind"].as_str(),
            plain.body["percent_complete"].as_i64(),
            plain.body["delayed"].as_bool()
        ),
        (Some("other"), Some(0), Some(false))
    );
    let r = app
        .post(
            &path,
            &lee,
            &json!({"title": "Patch", "due_on": days(10), "percent_complete": 101}),
        )
        .expect(422);
    assert_eq!(r.pointers(), ["/percent_complete"]);
    let r = app
        .post(
            &path,
            &lee,
            &json!({"title": "Patch", "due_on": days(10), "kind": "party"}),
        )
        .expect(422);
    assert_eq!(r.pointers(), ["/kind"]);

    // Past due and still open: delayed (derived), its stored status kept.
    let late = app
        .post(&path, &lee, &json!({"title": "Test the fix", "due_on": days(-3), "kind": "test", "percent_complete": 30}))
        .expect(201);
    assert_eq!(
        (
            late.body["status"].as_str(),
            late.body["delayed"].as_bool(),
            late.body["kind"].as_str(),
            late.body["percent_complete"].as_i64()
        ),
        (Some("planned"), Some(true), Some("test"), Some(30))
    );
    let lid = id(&late.body);
    let moved = app
        .request(
            "PATCH",
            &format!("/v1/milestones/{lid}"),
            Some(&lee),
            &[("Content-Type", "application/json")],
            Some(
                json!({"percent_complete": 60, "kind": "verification"})
                    .to_string()
                    .as_bytes(),
            ),
        )
        .expect(200);
    assert_eq!(moved.body["percent_complete"], 60);
    assert_eq!(moved.body["kind"], "verification");
    let r = app
        .request(
            "PATCH",
            &format!("/v1/milestones/{lid}"),
            Some(&lee),
            &[("Content-Type", "application/json")],
            Some(json!({"percent_complete": -1}).to_string().as_bytes()),
        )
        .expect(422);
    assert_eq!(r.pointers(), ["/percent_complete"]);
    let done = app
        .post(&format!("/v1/milestones/{lid}/complete"), &lee, &json!({}))
        .expect(200);
    assert_eq!(
        (
            done.body["percent_complete"].as_i64(),
            done.body["delayed"].as_bool()
        ),
        (Some(100), Some(false))
    );

    // A training milestone completes only with a training record attached to it.
    let training = app
        .post(&path, &lee, &json!({"title": "Security awareness training (KnowBe4)", "due_on": days(20), "kind": "training"}))
        .expect(201);
    let tid = id(&training.body);
    // Evidence of another kind, or of the item but not this milestone, does not count.
    app.upload(
        &iid,
        &lee,
        &[
            ("title", "Procedure"),
            ("kind", "procedure"),
            ("milestone_id", &tid),
        ],
        b"steps",
        &[],
    )
    .expect(201);
    app.upload(
        &iid,
        &lee,
        &[("title", "Roster"), ("kind", "training_record")],
        b"roster",
        &[],
    )
    .expect(201);
    let r = app
        .post(&format!("/v1/milestones/{tid}/complete"), &lee, &json!({}))
        .problem(422, "validation_failed");
    assert_eq!(codes(&r.body), ["training_evidence_required"]);
    let record = app
        .upload(
            &iid,
            &lee,
            &[
                ("title", "KnowBe4 completion report"),
                ("kind", "training_record"),
                ("milestone_id", &tid),
            ],
            b"completions",
            &[],
        )
        .expect(201);
    assert_eq!(record.body["kind"], "training_record");
    app.post(
        &format!("/v1/evidence/{}/withdraw", id(&record.body)),
        &lee,
        &json!({"reason": "wrong cohort"}),
    )
    .expect(200);
    let r = app
        .post(&format!("/v1/milestones/{tid}/complete"), &lee, &json!({}))
        .problem(422, "validation_failed");
    assert_eq!(
        codes(&r.body),
        ["training_evidence_required"],
        "withdrawn evidence does not count"
    );
    app.upload(
        &iid,
        &lee,
        &[
            ("title", "KnowBe4 completion report"),
            ("kind", "training_record"),
            ("milestone_id", &tid),
        ],
        b"completions v2",
        &[],
    )
    .expect(201);
    let done = app
        .post(&format!("/v1/milestones/{tid}/complete"), &lee, &json!({}))
        .expect(200);
    assert_eq!(
        (
            done.body["status"].as_str(),
            done.body["percent_complete"].as_i64()
        ),
        (Some("completed"), Some(100))
    );

    // The OSCAL export says so on the tasks.
    let (status, _, bytes) =
        app.get_bytes(&format!("/v1/systems/{sid}/export?format=oscal"), &admin);
    assert_eq!(status, 200);
    let text = String::from_utf8_lossy(&bytes);
    assert!(text.contains(r#""name":"milestone-kind","ns":"#) || text.contains("milestone-kind"));
    assert!(text.contains("percent-complete"));
}
both!(milestones_have_a_kind_progress_and_read_delayed);

/// Walks a high item of `regime` to completed with only a procedure as evidence.
fn completed_high_item(app: &TestApp, regime: &str) -> (String, String) {
    let lee = app.token_as("lee@example.org", &[Role::Editor]);
    let issm = app.token_as("issm@example.org", &[Role::Approver]);
    let sid = app.system_in(&format!("Closing {regime}"), regime);
    let iid = id(&app
        .item(
            &sid,
            json!({"detected_on": days(-2), "scheduled_completion": days(20),
            "implementer": {"name": "Lee Park", "email": "lee@example.org"}}),
        )
        .expect(201)
        .body);
    let mid = id(&app
        .post(
            &format!("/v1/items/{iid}/milestones"),
            &lee,
            &json!({"title": "Patch", "due_on": days(10), "kind": "change"}),
        )
        .expect(201)
        .body);
    app.transition(&iid, &lee, json!({"to": "in_progress"}))
        .expect(200);
    app.upload(
        &iid,
        &lee,
        &[
            ("title", "Procedure"),
            ("kind", "procedure"),
            ("milestone_id", &mid),
        ],
        b"steps",
        &[],
    )
    .expect(201);
    app.post(&format!("/v1/milestones/{mid}/complete"), &lee, &json!({}))
        .expect(200);
    app.transition(&iid, &lee, json!({"to": "completed", "comment": "Listener policy changed", "completed_on": today().to_string()}))
        .expect(200);
    app.post(&format!("/v1/items/{iid}/reviews"), &issm,
        &json!({"kind": "closure_verification", "decision": "approved", "requested_by": "lee@example.org", "notes": "Reviewed"}))
        .expect(201);
    (sid, iid)
}

fn severe_items_close_only_with_test_or_scan_evidence(app: &TestApp) {
    let lee = app.token_as("lee@example.org", &[Role::Editor]);
    let issm = app.token_as("issm@example.org", &[Role::Approver]);
    for regime in ["fedramp", "cmmc_l2"] {
        let (_, iid) = completed_high_item(app, regime);
        let r = app
            .transition(&iid, &issm, json!({"to": "closed"}))
            .problem(422, "validation_failed");
        assert_eq!(
            codes(&r.body),
            ["verification_evidence_required"],
            "{regime}"
        );
        app.upload(
            &iid,
            &lee,
            &[("title", "Rescan"), ("kind", "test_result")],
            b"clean",
            &[],
        )
        .expect(201);
        let closed = app
            .transition(&iid, &issm, json!({"to": "closed"}))
            .expect(200);
        assert_eq!(closed.body["status"], "closed", "{regime}");
    }
    // Under a regime without the rule, the review suffices.
    let (_, iid) = completed_high_item(app, "custom");
    app.transition(&iid, &issm, json!({"to": "closed"}))
        .expect(200);
}
both!(severe_items_close_only_with_test_or_scan_evidence);

fn profiles_warn_about_severe_work_without_change_management(app: &TestApp) {
    let admin = app.admin();
    let fed = app.system_in("Profile", "fedramp");
    let iid = id(&app
        .item(
            &fed,
            json!({"detected_on": days(-2), "scheduled_completion": days(20)}),
        )
        .expect(201)
        .body);
    app.milestone(&iid, &days(10));
    // A warning, not a refusal: the transition goes through.
    app.transition(&iid, &admin, json!({"to": "in_progress"}))
        .expect(200);
    let findings = |app: &TestApp| -> Vec<Value> {
        app.post(&format!("/v1/systems/{fed}/validate"), &admin, &json!({}))
            .expect(200)
            .body["findings"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|f| f["rule"] == "change_management_missing")
            .collect()
    };
    let found = findings(app);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["severity"], "warning");
    assert_eq!(found[0]["pointer"], "/change_management");
    assert_eq!(found[0]["item_id"], iid.as_str());
    app.patch(
        &format!("/v1/items/{iid}"),
        &admin,
        &json!({"change_management": change()}),
        None,
    )
    .expect(200);
    assert!(findings(app).is_empty());
}
both!(profiles_warn_about_severe_work_without_change_management);
