//! The remediation workflow end to end: an item walks from open to closed through milestones,
//! evidence and an independent verification; every refusal names its rule.

use crate::both;
use crate::harness::{codes, days, id, today, Backend, TestApp};
use poam_domain::Role;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

fn an_item_walks_from_open_to_closed(app: &TestApp) {
    let lee = app.token_as("lee@example.org", &[Role::Editor]);
    let lee_approver = app.token_as("lee@example.org", &[Role::Approver]);
    let issm = app.token_as("issm@example.org", &[Role::Approver]);
    let sid = app.system("Walk");
    let item = app
        .item(&sid, json!({"scheduled_completion": days(30), "implementer": {"name": "Lee Park", "email": "lee@example.org"}}))
        .expect(201);
    let iid = id(&item.body);

    // Work needs a plan.
    let r = app
        .transition(&iid, &lee, json!({"to": "in_progress"}))
        .problem(422, "validation_failed");
    assert_eq!(codes(&r.body), ["milestone_required"]);
    let r = app
        .post(
            &format!("/v1/items/{iid}/milestones"),
            &lee,
            &json!({"title": "Patch", "due_on": days(45)}),
        )
        .problem(422, "validation_failed");
    assert_eq!(codes(&r.body), ["milestone_after_scheduled_completion"]);
    let m = app
        .post(
            &format!("/v1/items/{iid}/milestones"),
            &lee,
            &json!({"title": "Patch", "due_on": days(20)}),
        )
        .expect(201);
    let mid = id(&m.body);
    assert_eq!(
        (m.body["status"].as_str(), m.body["position"].as_i64()),
        (Some("planned"), Some(1))
    );
    app.transition(&iid, &lee, json!({"to": "in_progress"}))
        .expect(200);

    // A due date moves only with a reason, and the move is kept.
    let r = app
        .request(
            "PATCH",
            &format!("/v1/milestones/{mid}"),
            Some(&lee),
            &[("Content-Type", "application/json")],
            Some(json!({"due_on": days(25)}).to_string().as_bytes()),
        )
        .problem(422, "validation_failed");
    assert_eq!(codes(&r.body), ["change_reason_required"]);
    let moved = app
        .request(
            "PATCH",
            &format!("/v1/milestones/{mid}"),
            Some(&lee),
            &[("Content-Type", "application/json"), ("If-Match", "\"1\"")],
            Some(
                json!({"due_on": days(25), "change_reason": "Vendor patch slipped"})
                    .to_string()
                    .as_bytes(),
            ),
        )
        .expect(200);
    assert_eq!(moved.body["changes"][0]["from"], days(20));
    assert_eq!(moved.body["changes"][0]["to"], days(25));
    assert_eq!(moved.body["changes"][0]["reason"], "Vendor patch slipped");
    assert_eq!(moved.body["changes"][0]["by"], "lee@example.org");
    // Beyond the schedule only with an approved extension (requested by someone else).
    let r = app
        .request(
            "PATCH",
            &format!("/v1/milestones/{mid}"),
            Some(&lee),
            &[("Content-Type", "application/json")],
            Some(
                json!({"due_on": days(40), "change_reason": "Longer"})
                    .to_string()
                    .as_bytes(),
            ),
        )
        .problem(422, "validation_failed");
    assert_eq!(codes(&r.body), ["milestone_after_scheduled_completion"]);
    app.post(&format!("/v1/items/{iid}/reviews"), &issm, &json!({"kind": "extension", "decision": "approved", "requested_by": "lee@example.org", "notes": "Vendor delay"})).expect(201);
    app.request(
        "PATCH",
        &format!("/v1/milestones/{mid}"),
        Some(&lee),
        &[("Content-Type", "application/json")],
        Some(
            json!({"due_on": days(40), "change_reason": "Extension approved"})
                .to_string()
                .as_bytes(),
        ),
    )
    .expect(200);

    // Completion needs a past date, a comment and evidence.
    let r = app
        .transition(
            &iid,
            &lee,
            json!({"to": "completed", "completed_on": days(1)}),
        )
        .problem(422, "validation_failed");
    assert_eq!(
        codes(&r.body),
        ["date_in_future", "comment_required", "evidence_required"]
    );
    let content = b"Nessus rescan 2026-11: TLS 1.0/1.1 disabled on lb-prod-1".to_vec();
    let e = app
        .upload(
            &iid,
            &lee,
            &[
                ("title", "Rescan after the fix"),
                ("kind", "scan_report"),
                ("milestone_id", &mid),
                ("collected_on", &today().to_string()),
            ],
            &content,
            &[],
        )
        .expect(201);
    let want = Sha256::digest(&content)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>();
    assert_eq!(e.body["sha256"], want.as_str());
    assert_eq!(e.body["size"], content.len());
    assert_eq!(
        (e.body["filename"].as_str(), e.body["media_type"].as_str()),
        (Some("rescan report.pdf"), Some("application/pdf"))
    );
    let eid = id(&e.body);
    // Every field is optional: no body (and no Content-Type) completes it today.
    let done = app
        .request(
            "POST",
            &format!("/v1/milestones/{mid}/complete"),
            Some(&lee),
            &[],
            None,
        )
        .expect(200);
    assert_eq!(done.body["status"], "completed", "{}", done.body);
    assert_eq!(done.body["completed_on"], today().to_string());
    let done = app
        .transition(&iid, &lee, json!({"to": "completed", "comment": "Legacy protocols disabled; rescan clean.", "completed_on": today().to_string()}))
        .expect(200);
    assert_eq!(
        (
            done.body["status"].as_str(),
            done.body["completed_on"].as_str()
        ),
        (Some("completed"), Some(today().to_string().as_str()))
    );

    // The record a decision rests on is locked.
    app.post(
        &format!("/v1/evidence/{eid}/withdraw"),
        &lee,
        &json!({"reason": "oops"}),
    )
    .problem(409, "evidence_locked");

    // Closing: an approver's decision, resting on an independent verification.
    app.transition(&iid, &lee, json!({"to": "closed"}))
        .problem(403, "forbidden");
    let r = app
        .transition(&iid, &issm, json!({"to": "closed"}))
        .problem(422, "validation_failed");
    assert_eq!(codes(&r.body), ["closure_verification_required"]);
    app.post(
        &format!("/v1/items/{iid}/reviews"),
        &lee,
        &json!({"kind": "closure_verification", "decision": "approved"}),
    )
    .problem(403, "forbidden");
    // Lee marked the item completed: the server knows him as the requester of its verification,
    // whatever role his token carries and whether or not the body names him.
    let r = app
        .post(
            &format!("/v1/items/{iid}/reviews"),
            &lee_approver,
            &json!({"kind": "closure_verification", "decision": "approved"}),
        )
        .problem(422, "validation_failed");
    assert_eq!(
        codes(&r.body),
        ["self_approval"],
        "the implementer verified his own fix"
    );
    let r = app.post(&format!("/v1/items/{iid}/reviews"), &issm,
        &json!({"kind": "closure_verification", "decision": "approved", "requested_by": "issm@example.org"})).problem(422, "validation_failed");
    assert_eq!(codes(&r.body), ["self_approval"]);
    let verified = app.post(&format!("/v1/items/{iid}/reviews"), &issm,
        &json!({"kind": "closure_verification", "decision": "approved", "requested_by": "lee@example.org", "notes": "Rescan reviewed"})).expect(201);
    assert_eq!(verified.body["reviewer"], "issm@example.org");
    let r = app
        .transition(&iid, &lee_approver, json!({"to": "closed"}))
        .problem(422, "validation_failed");
    assert!(
        codes(&r.body).contains(&"verifier_not_independent".to_string()),
        "the implementer cannot close: {}",
        r.body
    );
    let closed = app
        .transition(&iid, &issm, json!({"to": "closed"}))
        .expect(200);
    assert_eq!(
        (
            closed.body["status"].as_str(),
            closed.body["closed_on"].as_str()
        ),
        (Some("closed"), Some(today().to_string().as_str()))
    );

    // The weakness recurs: reopening needs a reason and keeps the closure in history.
    let r = app
        .transition(&iid, &lee, json!({"to": "open"}))
        .problem(422, "validation_failed");
    assert_eq!(codes(&r.body), ["comment_required"]);
    let reopened = app
        .transition(
            &iid,
            &lee,
            json!({"to": "open", "comment": "Finding reappeared in the December scan"}),
        )
        .expect(200);
    assert_eq!(
        (
            reopened.body["closed_on"].clone(),
            reopened.body["completed_on"].clone()
        ),
        (Value::Null, Value::Null)
    );
    let history = app
        .get(&format!("/v1/items/{iid}/history"), &lee)
        .expect(200);
    let statuses: Vec<String> = history.body["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["resource_kind"] == "item")
        .filter_map(|e| e["changes"]["status"]["after"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(
        statuses,
        ["open", "in_progress", "completed", "closed", "open"]
    );

    // Evidence downloads as the exact bytes.
    let r = app.request(
        "GET",
        &format!("/v1/evidence/{eid}/content"),
        Some(&lee),
        &[],
        None,
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.header("etag"), Some(format!("\"{want}\"").as_str()));
    assert_eq!(r.header("content-type"), Some("application/pdf"));
    assert!(r
        .header("content-disposition")
        .unwrap_or("")
        .contains("filename=\"rescan report.pdf\""));
    assert_eq!(
        r.body.as_str().map(|s| s.as_bytes().to_vec()),
        Some(content.clone())
    );

    // Every step is in the chain, and the chain holds.
    let v = app
        .get(
            &format!("/v1/systems/{sid}/events/verification"),
            &app.admin(),
        )
        .expect(200);
    assert_eq!(v.body["verified"], true, "{}", v.body);
    // Reviews are append-only: no route edits or deletes them.
    let reviews = app
        .get(&format!("/v1/items/{iid}/reviews"), &lee)
        .expect(200);
    assert_eq!(reviews.body["items"].as_array().map(Vec::len), Some(2));
}
both!(an_item_walks_from_open_to_closed);

fn the_file_digest_may_come_as_a_form_field(app: &TestApp) {
    let sid = app.system("Evidence digests");
    let iid = id(&app.item(&sid, json!({})).expect(201).body);
    let admin = app.admin();
    let content = b"config after: ssl_protocols TLSv1.2 TLSv1.3;";
    let digest = Sha256::digest(content);
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    let other: String = Sha256::digest(b"something else")
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let fields = |extra: (&'static str, String)| {
        vec![
            ("title".to_owned(), "Config".to_owned()),
            ("kind".to_owned(), "config_after".to_owned()),
            (extra.0.to_owned(), extra.1),
        ]
    };
    let send = |f: Vec<(String, String)>| {
        let f: Vec<(&str, &str)> = f.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        app.upload(&iid, &admin, &f, content, &[])
    };
    // Before the file part (the harness sends the fields first): hex and RFC 9530 forms.
    let e = send(fields(("sha256", hex.to_uppercase()))).expect(201);
    assert_eq!(e.body["sha256"], hex.as_str());
    send(fields((
        "content_digest",
        format!("sha-256=:{}:", base64_of(&digest)),
    )))
    .expect(201);
    // A mismatch: 400 and nothing stored.
    send(fields(("sha256", other.clone()))).problem(400, "digest_mismatch");
    send(fields((
        "content_digest",
        format!("sha-256=:{}:", base64_of(&Sha256::digest(b"x"))),
    )))
    .problem(400, "digest_mismatch");
    send(fields(("sha256", "not hex".to_owned()))).problem(400, "invalid_content_digest");
    send(fields(("content_digest", "sha-512=:AAAA:".to_owned())))
        .problem(400, "invalid_content_digest");
    // After the file part.
    let upload_after = |value: &str| {
        let boundary = "poam-digest-after";
        let mut body = Vec::new();
        body.extend_from_slice(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"c.txt\"\r\nContent-Type: text/plain\r\n\r\n").as_bytes());
        body.extend_from_slice(content);
        for (k, v) in [
            ("title", "Config"),
            ("kind", "config_after"),
            ("sha256", value),
        ] {
            body.extend_from_slice(
                format!(
                    "\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}"
                )
                .as_bytes(),
            );
        }
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let ct = format!("multipart/form-data; boundary={boundary}");
        app.request(
            "POST",
            &format!("/v1/items/{iid}/evidence"),
            Some(&admin),
            &[("Content-Type", ct.as_str())],
            Some(&body),
        )
    };
    upload_after(&other).problem(400, "digest_mismatch");
    upload_after(&hex).expect(201);
    let list = app
        .get(&format!("/v1/items/{iid}/evidence"), &admin)
        .expect(200);
    let stored = list.body["items"]
        .as_array()
        .or(list.body.as_array())
        .map(Vec::len);
    assert_eq!(
        stored,
        Some(3),
        "only the matching uploads are stored: {}",
        list.body
    );
}
both!(the_file_digest_may_come_as_a_form_field);

fn evidence_is_checked_on_the_way_in(app: &TestApp) {
    let sid = app.system("Evidence");
    let iid = id(&app.item(&sid, json!({})).expect(201).body);
    let admin = app.admin();
    let content = b"config after: ssl_protocols TLSv1.2 TLSv1.3;";
    // A Content-Digest that does not match: 400, nothing stored.
    let wrong = format!(
        "sha-256=:{}:",
        base64_of(&Sha256::digest(b"something else"))
    );
    app.upload(
        &iid,
        &admin,
        &[("title", "Config"), ("kind", "config_after")],
        content,
        &[("Content-Digest", &wrong)],
    )
    .problem(400, "digest_mismatch");
    app.upload(
        &iid,
        &admin,
        &[("title", "Config"), ("kind", "config_after")],
        content,
        &[("Content-Digest", "sha-256=nonsense")],
    )
    .problem(400, "invalid_content_digest");
    assert_eq!(
        app.get(&format!("/v1/items/{iid}/evidence"), &admin).body["items"],
        json!([])
    );
    // Fields are checked and named.
    let r = app
        .upload(
            &iid,
            &admin,
            &[("kind", "photo"), ("collected_on", &days(3))],
            content,
            &[],
        )
        .problem(422, "validation_failed");
    assert_eq!(r.pointers(), vec!["/title", "/kind"]);
    let r = app
        .upload(
            &iid,
            &admin,
            &[("title", "x"), ("kind", "other"), ("colour", "red")],
            content,
            &[],
        )
        .problem(422, "validation_failed");
    assert_eq!(r.pointers(), vec!["/colour"]);
    let r = app
        .upload(
            &iid,
            &admin,
            &[
                ("title", "x"),
                ("kind", "other"),
                ("collected_on", &days(3)),
            ],
            content,
            &[],
        )
        .problem(422, "validation_failed");
    assert_eq!(r.pointers(), vec!["/collected_on"]);
    let r = app
        .upload(
            &iid,
            &admin,
            &[
                ("title", "x"),
                ("kind", "other"),
                ("milestone_id", &uuid::Uuid::new_v4().to_string()),
            ],
            content,
            &[],
        )
        .problem(422, "validation_failed");
    assert_eq!(r.pointers(), vec!["/milestone_id"]);
    app.request(
        "POST",
        &format!("/v1/items/{iid}/evidence"),
        Some(&admin),
        &[("Content-Type", "application/json")],
        Some(b"{}"),
    )
    .problem(415, "unsupported_media_type");
    // A matching digest is fine; withdrawal is recorded, not a deletion.
    let right = format!("sha-256=:{}:", base64_of(&Sha256::digest(b"")));
    let _ = right;
    let e = app
        .upload(
            &iid,
            &admin,
            &[("title", "Config"), ("kind", "config_after")],
            content,
            &[],
        )
        .expect(201);
    let eid = id(&e.body);
    let w = app
        .post(
            &format!("/v1/evidence/{eid}/withdraw"),
            &admin,
            &json!({"reason": "Wrong host"}),
        )
        .expect(200);
    assert_eq!(
        (
            w.body["withdrawal_reason"].as_str(),
            w.body["withdrawn_by"].as_str()
        ),
        (Some("Wrong host"), Some("tester@example.org"))
    );
    app.post(
        &format!("/v1/evidence/{eid}/withdraw"),
        &admin,
        &json!({"reason": "again"}),
    )
    .problem(409, "already_withdrawn");
    assert_eq!(
        app.get(&format!("/v1/items/{iid}/evidence"), &admin).body["items"]
            .as_array()
            .map(Vec::len),
        Some(1),
        "kept"
    );
    app.request(
        "GET",
        &format!("/v1/evidence/{eid}/content"),
        Some(&admin),
        &[],
        None,
    )
    .expect(200);
}
both!(evidence_is_checked_on_the_way_in);

fn base64_of(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[test]
fn evidence_over_the_limit_is_413_and_large_files_round_trip() {
    let Some(app) = TestApp::spawn_with(Backend::Sqlite, &[("POAM_EVIDENCE_MAX_BYTES", "3000000")])
    else {
        return;
    };
    let sid = app.system("Big");
    let iid = id(&app.item(&sid, json!({})).expect(201).body);
    let admin = app.admin();
    // 2.5 MB: three chunks in the database, streamed back byte for byte.
    let big: Vec<u8> = (0..2_500_000u32).map(|i| (i % 251) as u8).collect();
    let e = app
        .upload(
            &iid,
            &admin,
            &[("title", "Full scan"), ("kind", "scan_report")],
            &big,
            &[],
        )
        .expect(201);
    let eid = id(&e.body);
    let url = format!("{}/v1/evidence/{eid}/content", app.base);
    let res = ureq::get(&url)
        .set("Authorization", &format!("Bearer {admin}"))
        .call()
        .unwrap_or_else(|e| panic!("{e}"));
    let mut got = Vec::new();
    std::io::Read::read_to_end(&mut res.into_reader(), &mut got).unwrap_or_default();
    assert_eq!(got.len(), big.len());
    assert!(got == big, "the exact bytes");
    let too_big = vec![7u8; 3_000_001];
    app.upload(
        &iid,
        &admin,
        &[("title", "Too big"), ("kind", "other")],
        &too_big,
        &[],
    )
    .problem(413, "payload_too_large");
    assert_eq!(
        app.get(&format!("/v1/items/{iid}/evidence"), &admin).body["items"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
}

fn refusals_name_their_rules(app: &TestApp) {
    let admin = app.admin();
    let approver = app.token_as("ao@example.org", &[Role::Approver]);
    // CMMC allows no risk acceptance.
    let cmmc = id(&app
        .post(
            "/v1/systems",
            &admin,
            &json!({"name": "CUI enclave", "regime": "cmmc_l2"}),
        )
        .expect(201)
        .body);
    let item = id(&app
        .item(&cmmc, json!({"residual_risk": "low"}))
        .expect(201)
        .body);
    let r = app
        .transition(&item, &approver, json!({"to": "risk_accepted"}))
        .problem(422, "validation_failed");
    assert_eq!(
        codes(&r.body),
        [
            "risk_acceptance_forbidden",
            "risk_acceptance_review_required"
        ]
    );
    // FedRAMP: no operational requirement on a High.
    let fed = app.system_in("FedRAMP", "fedramp");
    let high = id(&app
        .item(&fed, json!({"risk_rating": "high"}))
        .expect(201)
        .body);
    let r = app.post(&format!("/v1/items/{high}/reviews"), &approver,
        &json!({"kind": "deviation", "deviation_kind": "operational_requirement", "decision": "approved", "requested_by": "dana@example.org"}))
        .problem(422, "validation_failed");
    assert_eq!(codes(&r.body), ["operational_requirement_on_high"]);
    // Risk acceptance with its review, justification and no open milestones.
    let r = app
        .transition(&high, &approver, json!({"to": "risk_accepted"}))
        .problem(422, "validation_failed");
    assert_eq!(
        codes(&r.body),
        ["risk_acceptance_review_required", "residual_risk_required"]
    );
    app.post(&format!("/v1/items/{high}/reviews"), &approver, &json!({"kind": "risk_acceptance", "decision": "approved", "requested_by": "dana@example.org"})).expect(201);
    app.patch(
        &format!("/v1/items/{high}"),
        &admin,
        &json!({"residual_risk": "Compensated by the WAF"}),
        None,
    )
    .expect(200);
    app.transition(&high, &approver, json!({"to": "risk_accepted"}))
        .expect(200);
    // Deferral needs a reason and a future target date, which becomes the schedule.
    let later = id(&app.item(&fed, json!({})).expect(201).body);
    let r = app
        .transition(&later, &admin, json!({"to": "deferred"}))
        .problem(422, "validation_failed");
    assert_eq!(codes(&r.body), ["comment_required", "target_date_required"]);
    let d = app
        .transition(
            &later,
            &admin,
            json!({"to": "deferred", "comment": "Funding in Q2", "target_date": days(120)}),
        )
        .expect(200);
    assert_eq!(d.body["scheduled_completion"], days(120));
    // Status is never a plain field write; illegal moves are named.
    let r = app
        .patch(
            &format!("/v1/items/{later}"),
            &admin,
            &json!({"status": "open"}),
            None,
        )
        .problem(422, "validation_failed");
    assert_eq!(codes(&r.body), ["status_via_transition"]);
    let r = app
        .item(&fed, json!({"status": "completed"}))
        .problem(422, "validation_failed");
    assert_eq!(codes(&r.body), ["status_via_transition"]);
    let r = app
        .item(&fed, json!({"completed_on": "2026-11-01"}))
        .problem(422, "validation_failed");
    assert_eq!(codes(&r.body), ["set_by_transition"]);
    let r = app
        .patch(
            &format!("/v1/items/{later}"),
            &admin,
            &json!({"closed_on": "2026-11-01"}),
            None,
        )
        .problem(422, "validation_failed");
    assert_eq!(codes(&r.body), ["set_by_transition"]);
    let r = app
        .transition(&later, &admin, json!({"to": "closed"}))
        .problem(422, "validation_failed");
    assert_eq!(codes(&r.body), ["transition_not_allowed"]);
    // Corrections supersede; they never edit.
    let first = app.post(&format!("/v1/systems/{fed}/reviews"), &admin, &json!({"kind": "periodic", "decision": "noted", "notes": "Monthly review", "attendees": ["ISSM"]})).expect(201);
    let fix = app.post(&format!("/v1/systems/{fed}/reviews"), &admin, &json!({"kind": "periodic", "decision": "noted", "notes": "Monthly review (attendees corrected)", "attendees": ["ISSM", "ISSO"], "supersedes": id(&first.body)})).expect(201);
    assert_eq!(fix.body["supersedes"], id(&first.body).as_str());
    let r = app
        .post(
            &format!("/v1/systems/{fed}/reviews"),
            &admin,
            &json!({"kind": "closure_verification", "decision": "approved"}),
        )
        .problem(422, "validation_failed");
    assert_eq!(codes(&r.body), ["item_required"]);
    app.post(
        &format!("/v1/systems/{fed}/reviews"),
        &admin,
        &json!({"kind": "periodic", "decision": "noted", "supersedes": uuid::Uuid::new_v4()}),
    )
    .problem(422, "validation_failed");
    // The system's list holds its own reviews and its items': the risk acceptance and the two periodic ones.
    assert_eq!(
        app.get(&format!("/v1/systems/{fed}/reviews"), &admin).body["items"]
            .as_array()
            .map(Vec::len),
        Some(3)
    );
}
both!(refusals_name_their_rules);

/// Completing a milestone takes no body, with or without a JSON `Content-Type` (what generated
/// clients send for an all-optional body), and still refuses a malformed one.
fn a_milestone_completes_with_an_empty_json_body(app: &TestApp) {
    let admin = app.admin();
    let sid = app.system("Empty bodies");
    let iid = id(&app.item(&sid, json!({})).expect(201).body);
    let mid = app.milestone(&iid, "2026-12-31");
    let path = format!("/v1/milestones/{mid}/complete");
    app.request(
        "POST",
        &path,
        Some(&admin),
        &[("Content-Type", "application/json")],
        Some(b"{"),
    )
    .problem(400, "malformed_json");
    let done = app
        .request(
            "POST",
            &path,
            Some(&admin),
            &[("Content-Type", "application/json")],
            Some(b""),
        )
        .expect(200);
    assert_eq!(done.body["status"], "completed", "{}", done.body);
}
both!(a_milestone_completes_with_an_empty_json_body);
