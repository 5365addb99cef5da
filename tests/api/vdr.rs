//! FedRAMP's 2026 rules (VDR/VER): an item from detection through evaluation, partial
//! mitigation and reduction to full mitigation and remediation; another to accepted; each
//! deadline with its rule and cell, the overdue flag, the move from the legacy regime, and the
//! reports, validated against FedRAMP's schemas read from `../shared/reference/fedramp-schemas/`.

use crate::both;
use crate::harness::{python_check, python_tools, Resp, TestApp};
use poam_domain::Role;
use serde_json::{json, Value};

/// Validates `{"schema": <file name>, "doc": <report>}` against FedRAMP's schema, with every
/// schema file registered under its `$id`. Their cross-file `$ref`s omit the `#`
/// (`…schema-2026-06-24.json/$defs/x`): rewritten on load, the files stay byte-exact.
const FEDRAMP_SCHEMA_CHECK: &str = r#"
import json, pathlib, sys
from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource
case = json.load(open(sys.argv[1]))
root = pathlib.Path(case["dir"])
def fix(node):
    if isinstance(node, dict):
        return {k: (v.replace(".json/$defs/", ".json#/$defs/") if k == "$ref" and isinstance(v, str) else fix(v)) for k, v in node.items()}
    if isinstance(node, list):
        return [fix(v) for v in node]
    return node
schemas = {p.name: fix(json.loads(p.read_text())) for p in root.glob("fedramp-*-2026-06-24.json")}
registry = Registry().with_resources((s["$id"], Resource.from_contents(s)) for s in schemas.values())
validator = Draft202012Validator(schemas[case["schema"]], registry=registry, format_checker=FormatChecker())
errors = sorted(validator.iter_errors(case["doc"]), key=lambda e: list(e.path))
for e in errors:
    print(list(e.path), e.message)
sys.exit(1 if errors else 0)
print("valid")
"#;

const VDT: &str = "fedramp-vulnerability-detail-report-schema-2026-06-24.json";
const AVI: &str = "fedramp-accepted-vulnerability-info-schema-2026-06-24.json";
const HISTORY: &str = "fedramp-historical-ver-activity-schema-2026-06-24.json";

fn schemas_dir() -> Option<std::path::PathBuf> {
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/reference/fedramp-schemas");
    if dir.is_dir() {
        return Some(dir);
    }
    assert!(
        std::env::var("CI").map_or(true, |v| v != "true"),
        "CI=true but {} is missing",
        dir.display()
    );
    eprintln!("SKIPPED: FedRAMP's schemas ({} is missing)", dir.display());
    None
}

/// The report is valid against FedRAMP's schema `schema`.
fn valid(app: &TestApp, schema: &str, doc: &Value) {
    let (Some(py), Some(dir)) = (python_tools(), schemas_dir()) else {
        return;
    };
    let path = app.dir.join(format!("{schema}.case.json"));
    let case = json!({"schema": schema, "doc": doc, "dir": dir});
    std::fs::write(&path, case.to_string()).unwrap_or_else(|e| panic!("{e}"));
    python_check(&py, FEDRAMP_SCHEMA_CHECK, &path);
}

trait Invalid {
    fn invalid(self, code: &str);
}

impl Invalid for Resp {
    /// A 422 whose first field error has `code`.
    fn invalid(self, code: &str) {
        let r = self.problem(422, "validation_failed");
        assert_eq!(r.body["errors"][0]["code"], code, "{}", r.body);
    }
}

fn ago(hours: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now() - chrono::Duration::hours(hours)
}

fn ts(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn at(s: &str) -> chrono::DateTime<chrono::Utc> {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

pub(crate) fn vdr_system(app: &TestApp, class: &str) -> String {
    let r = app
        .post(
            "/v1/systems",
            &app.admin(),
            &json!({"name": "Payroll", "regime": "fedramp", "fedramp_class": class,
                    "vdr_since": "2026-07-04",
                    "certification_package_uri": "https://packages.example.org/payroll"}),
        )
        .expect(201);
    assert_eq!(r.body["fedramp_class"], class);
    assert_eq!(r.body["vdr_since"], "2026-07-04");
    r.body["id"].as_str().unwrap_or_default().to_owned()
}

pub(crate) fn detected(app: &TestApp, sid: &str, hours_ago: i64) -> Value {
    let t = ago(hours_ago);
    app.item(
        sid,
        json!({"detected_on": t.date_naive().to_string(),
               "description": "internal: nginx 1.18 on lb-prod-1, exploit path /x",
               "evaluation": {"detected_at": ts(t), "detection_source": "Tenable Nessus"}}),
    )
    .expect(201)
    .body
}

fn patch(app: &TestApp, id: &str, body: Value) -> Value {
    app.patch(&format!("/v1/items/{id}"), &app.admin(), &body, None)
        .expect(200)
        .body
}

fn due_at(item: &Value, which: &str) -> chrono::DateTime<chrono::Utc> {
    at(item["vdr"]["schedule"][which]["due_at"]
        .as_str()
        .unwrap_or_else(|| panic!("no {which} deadline: {item}")))
}

fn report(app: &TestApp, sid: &str, name: &str) -> Value {
    app.get(&format!("/v1/systems/{sid}/reports/{name}"), &app.admin())
        .expect(200)
        .body
}

fn tracking_ids(list: &Value, inner: Option<&str>) -> Vec<String> {
    list.as_array()
        .into_iter()
        .flatten()
        .map(|v| {
            inner.map_or(v, |k| &v[k])["providerTrackingId"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect()
}

fn detection_to_remediation(app: &TestApp) {
    let sid = vdr_system(app, "C");
    // Detected 26 hours ago, not yet evaluated: class C evaluates within 5 days.
    let item = detected(app, &sid, 26);
    let id = item["id"].as_str().unwrap_or_default().to_owned();
    let detected_at = at(item["evaluation"]["detected_at"]
        .as_str()
        .unwrap_or_default());
    assert_eq!(item["deadline_rule"], "fedramp-vdr:VER-TFR-EVU:C:5d");
    assert_eq!(
        due_at(&item, "evaluation"),
        detected_at + chrono::Duration::days(5)
    );
    assert_eq!(item["vdr"]["state"], "detected");
    assert_eq!(item["vdr"]["overdue"], false);
    assert_eq!(item["overdue"], false);

    // Evaluated 20 hours ago: internet-reachable, likely exploitable, N4 → 4 days, and a
    // reportable incident (VER-TFR-IRI: N-rating above 3, internet-reachable).
    let evaluated_at = ts(ago(20));
    let item = patch(
        app,
        &id,
        json!({"evaluation": {"evaluated_at": evaluated_at, "internet_reachable": true,
               "likely_exploitable": true, "agency_impact": "N4",
               "supplementary_information": "Exploitation needs an authenticated session."}}),
    );
    assert_eq!(
        item["deadline_rule"],
        "fedramp-vdr:VDR-TFR-PVR:C:N4:irv_lev:4d"
    );
    assert_eq!(
        due_at(&item, "reduction"),
        at(&evaluated_at) + chrono::Duration::days(4)
    );
    assert_eq!(
        due_at(&item, "acceptance"),
        at(&evaluated_at) + chrono::Duration::days(192)
    );
    assert_eq!(item["vdr"]["reportable_incident"], "VER-TFR-IRI");
    assert_eq!(item["vdr"]["state"], "evaluated");

    // A lower rating is a reduction: it needs its step.
    app.patch(
        &format!("/v1/items/{id}"),
        &app.admin(),
        &json!({"evaluation": {"agency_impact": "N3", "mitigation": "partial"}}),
        None,
    )
    .invalid("reduction_needs_step");

    // Partially mitigated: N4 → N3, recorded; the clock restarts at the reduction (default).
    let reduced_at = ts(ago(2));
    let item = patch(
        app,
        &id,
        json!({"evaluation": {"agency_impact": "N3", "mitigation": "partial",
               "reductions": [{"at": reduced_at, "from": "N4", "to": "N3", "action": "WAF rule blocks the payload"}],
               "next_reduction": {"at": ts(ago(-72)), "target": "N1"}}}),
    );
    assert_eq!(
        item["deadline_rule"],
        "fedramp-vdr:VDR-TFR-PVR:C:N3:irv_lev:16d"
    );
    assert_eq!(
        due_at(&item, "reduction"),
        at(&reduced_at) + chrono::Duration::days(16)
    );
    assert_eq!(item["vdr"]["state"], "partially_mitigated");
    assert_eq!(item["vdr"]["reportable_incident"], Value::Null);
    assert_eq!(item["vdr"]["rating_history"], json!(["N4", "N3"]));
    // The recorded step cannot be rewritten.
    app.patch(
        &format!("/v1/items/{id}"),
        &app.admin(),
        &json!({"evaluation": {"reductions": [{"at": reduced_at, "from": "N4", "to": "N3", "action": "something else"}]}}),
        None,
    )
    .invalid("reduction_history_rewritten");

    // The detail report carries it, with its reductions and projection, and nothing internal.
    let vdt = report(app, &sid, "fedramp-vdt");
    valid(app, VDT, &vdt);
    assert_eq!(
        tracking_ids(&vdt["vulnerabilities"], None),
        vec!["POAM-0001"]
    );
    let v = &vdt["vulnerabilities"][0];
    assert_eq!(v["currentRating"], 3);
    assert_eq!(v["isInternetReachable"], true);
    assert_eq!(v["historicalRatings"], json!([4, 3]));
    assert_eq!(v["projectedNextReduction"]["targetRating"], 1);
    assert_eq!(v["overdueStatus"]["isOverdue"], false);
    assert_eq!(
        v["supplementaryRiskInformation"],
        "Exploitation needs an authenticated session."
    );
    assert!(!vdt.to_string().contains("nginx"), "VER-RPT-NID: {vdt}");

    // Fully mitigated: no reduction is due; then remediated.
    let item = patch(
        app,
        &id,
        json!({"evaluation": {"mitigation": "full", "mitigated_at": ts(ago(1)), "next_reduction": null}}),
    );
    assert_eq!(item["vdr"]["state"], "fully_mitigated");
    assert_eq!(item["vdr"]["schedule"]["reduction"], Value::Null);
    assert_eq!(item["vdr"]["overdue"], false);
    let item = patch(
        app,
        &id,
        json!({"evaluation": {"mitigation": "remediated"}}),
    );
    assert_eq!(item["vdr"]["state"], "remediated");
    let vdt = report(app, &sid, "fedramp-vdt");
    valid(app, VDT, &vdt);
    assert_eq!(
        vdt["vulnerabilities"][0]["finalDisposition"],
        "Fully Mitigated"
    );

    // Another, detected 6 days ago and never evaluated: overdue (VER-TFR-EVU), explained.
    let late = detected(app, &sid, 6 * 24);
    assert_eq!(late["vdr"]["overdue"], true);
    assert_eq!(late["overdue"], true);
    assert!(late["vdr"]["overdue_explanation"]
        .as_str()
        .is_some_and(|x| x.contains("VER-TFR-EVU:C:5d")));
    let vdt = report(app, &sid, "fedramp-vdt");
    valid(app, VDT, &vdt);
    let v = &vdt["vulnerabilities"][1];
    assert_eq!(v["providerTrackingId"], "POAM-0002");
    assert_eq!(v["overdueStatus"]["isOverdue"], true);
    assert!(v["overdueStatus"]["explanation"].is_string());

    let history = report(app, &sid, "fedramp-history");
    valid(app, HISTORY, &history);
    assert_eq!(
        tracking_ids(&history["activeVulnerabilities"], None),
        vec!["POAM-0001", "POAM-0002"]
    );
    let since = ts(ago(-1));
    let none = app
        .get(
            &format!(
                "/v1/systems/{sid}/reports/fedramp-history?since={}",
                since.replace('+', "%2B")
            ),
            &app.admin(),
        )
        .expect(200)
        .body;
    valid(app, HISTORY, &none);
    assert_eq!(none["activeVulnerabilities"], json!([]));

    let (status, headers, html) = app.get_bytes(
        &format!("/v1/systems/{sid}/reports/fedramp-monthly"),
        &app.admin(),
    );
    assert_eq!(status, 200);
    assert!(headers
        .get("content-type")
        .is_some_and(|c| c.starts_with("text/html")));
    let html = String::from_utf8_lossy(&html);
    assert!(html.contains("POAM-0002") && html.contains("Overdue (FRD-ODV)"));
    assert!(html.contains("N4 → N3"));
    assert!(!html.contains("nginx"));
}
both!(detection_to_remediation);

fn accepted_vulnerabilities(app: &TestApp) {
    let sid = vdr_system(app, "B");
    // Evaluated 193 days ago, N2, not likely exploitable, partially mitigated: past the
    // 192-day line (VER-TFR-MAV), accepted.
    let old = detected(app, &sid, 194 * 24);
    let id = old["id"].as_str().unwrap_or_default().to_owned();
    let item = patch(
        app,
        &id,
        json!({"evaluation": {"evaluated_at": ts(ago(193 * 24)), "internet_reachable": false,
               "likely_exploitable": false, "agency_impact": "N2", "mitigation": "partial",
               "report_description": "Outdated TLS library on an internal service"}}),
    );
    assert_eq!(item["vdr"]["accepted"], true);
    assert_eq!(item["vdr"]["state"], "accepted");
    assert_eq!(item["vdr"]["overdue"], false);
    assert!(item["vdr"]["accepted_explanation"]
        .as_str()
        .is_some_and(|x| x.contains("VER-TFR-MAV")));

    // Another the provider does not intend to fix: an approver's decision.
    let fresh = detected(app, &sid, 30);
    let fid = fresh["id"].as_str().unwrap_or_default().to_owned();
    let editor = app.token_as("ed@example.org", &[Role::Editor]);
    let body = json!({"evaluation": {"evaluated_at": ts(ago(20)), "internet_reachable": false,
        "likely_exploitable": true, "agency_impact": "N2",
        "accepted": {"rationale": "Vendor appliance at end of life; replaced in 2027."}}});
    app.patch(&format!("/v1/items/{fid}"), &editor, &body, None)
        .problem(403, "decision_needs_approver");
    let item = patch(app, &fid, body);
    assert_eq!(item["vdr"]["accepted"], true);

    // Never in the detail report; both in the accepted vulnerability info.
    let vdt = report(app, &sid, "fedramp-vdt");
    valid(app, VDT, &vdt);
    assert_eq!(vdt["vulnerabilities"], json!([]));
    let avi = report(app, &sid, "fedramp-avi");
    valid(app, AVI, &avi);
    assert_eq!(
        tracking_ids(&avi["acceptedVulnerabilities"], Some("vulnerabilityDetail")),
        vec!["POAM-0001", "POAM-0002"]
    );
    assert_eq!(
        avi["acceptedVulnerabilities"][0]["vulnerabilityDetail"]["vulnerabilityDescription"],
        "Outdated TLS library on an internal service"
    );
    assert!(avi["acceptedVulnerabilities"][1]["acceptanceRationale"]
        .as_str()
        .is_some_and(|x| x.contains("end of life")));
    let history = report(app, &sid, "fedramp-history");
    valid(app, HISTORY, &history);
    assert_eq!(
        history["acceptedVulnerabilities"].as_array().map(Vec::len),
        Some(2)
    );
}
both!(accepted_vulnerabilities);

fn a_system_moves_from_the_legacy_regime(app: &TestApp) {
    let admin = app.admin();
    let sid = app.system_in("Legacy", "fedramp");
    let t = ago(72);
    let item = app
        .item(
            &sid,
            json!({"detected_on": t.date_naive().to_string(),
                   "evaluation": {"detected_at": ts(t), "detection_source": "scanner"}}),
        )
        .expect(201)
        .body;
    let id = item["id"].as_str().unwrap_or_default().to_owned();
    assert_eq!(item["deadline_rule"], "fedramp:high:30d");
    assert_eq!(item["vdr"], Value::Null);
    // Not yet adopted: no FedRAMP 2026 reports.
    app.get(&format!("/v1/systems/{sid}/reports/fedramp-vdt"), &admin)
        .problem(409, "vdr_not_adopted");
    // vdr_since needs a class.
    app.patch(
        &format!("/v1/systems/{sid}"),
        &admin,
        &json!({"vdr_since": "2026-07-04"}),
        None,
    )
    .invalid("vdr_needs_fedramp_class");
    // The move: class D from 2026-07-04, clock from the evaluation.
    let system = app
        .patch(
            &format!("/v1/systems/{sid}"),
            &admin,
            &json!({"fedramp_class": "D", "vdr_since": "2026-07-04", "vdr_clock": "from_evaluation"}),
            None,
        )
        .expect(200)
        .body;
    assert_eq!(system["vdr_clock"], "from_evaluation");
    let moved = app.get(&format!("/v1/items/{id}"), &admin).expect(200).body;
    assert_eq!(moved["deadline_rule"], "fedramp-vdr:VER-TFR-EVU:D:2d");
    assert_eq!(
        moved["scheduled_completion"],
        (t + chrono::Duration::days(2)).date_naive().to_string()
    );
    assert_eq!(moved["vdr"]["overdue"], true);
    // The history keeps the legacy date and records the move.
    let history = app
        .get(&format!("/v1/items/{id}/history"), &admin)
        .expect(200)
        .body
        .to_string();
    assert!(history.contains("fedramp:high:30d"), "{history}");
    assert!(
        history.contains("fedramp-vdr:VER-TFR-EVU:D:2d"),
        "{history}"
    );

    // Class D, N5, internet-reachable and likely exploitable: 12 hours, to the minute.
    let evaluated_at = ts(ago(13));
    let item = patch(
        app,
        &id,
        json!({"evaluation": {"evaluated_at": evaluated_at, "internet_reachable": true,
               "likely_exploitable": true, "agency_impact": "N5"}}),
    );
    assert_eq!(
        item["deadline_rule"],
        "fedramp-vdr:VDR-TFR-PVR:D:N5:irv_lev:12h"
    );
    assert_eq!(
        due_at(&item, "reduction"),
        at(&evaluated_at) + chrono::Duration::hours(12)
    );
    assert_eq!(item["vdr"]["overdue"], true);
    assert!(item["vdr"]["overdue_explanation"]
        .as_str()
        .is_some_and(|x| x.contains("VDR-TFR-PVR:D:N5:irv_lev:12h")));
    let vdt = report(app, &sid, "fedramp-vdt");
    valid(app, VDT, &vdt);
    // A KEV is due by the catalog date, even fully mitigated.
    let item = patch(
        app,
        &id,
        json!({"evaluation": {"mitigation": "full", "mitigated_at": ts(ago(1)),
               "kev_due_on": (chrono::Utc::now() - chrono::Duration::days(1)).date_naive().to_string()}}),
    );
    assert_eq!(item["vdr"]["state"], "fully_mitigated");
    assert_eq!(item["vdr"]["overdue"], true);
    assert!(item["deadline_rule"]
        .as_str()
        .is_some_and(|r| r.starts_with("fedramp-vdr:VDR-TFR-KEV:")));
}
both!(a_system_moves_from_the_legacy_regime);

fn review(app: &TestApp, iid: &str, token: &str, body: Value) -> Resp {
    app.post(&format!("/v1/items/{iid}/reviews"), token, &body)
}

/// An evaluated item (N-rating `rating`, internet-reachable `irv`, likely exploitable `lev`),
/// detected 30 hours ago and evaluated 20 hours ago; returns its id.
fn evaluated_item(app: &TestApp, sid: &str, irv: bool, lev: bool, rating: &str) -> String {
    let item = detected(app, sid, 30);
    let id = item["id"].as_str().unwrap_or_default().to_owned();
    patch(
        app,
        &id,
        json!({"evaluation": {"evaluated_at": ts(ago(20)), "internet_reachable": irv,
               "likely_exploitable": lev, "agency_impact": rating}}),
    );
    id
}

fn a_vulnerability_acceptance_review_accepts_the_item(app: &TestApp) {
    let sid = vdr_system(app, "B");
    let iid = evaluated_item(app, &sid, false, true, "N2");
    let item = app
        .get(&format!("/v1/items/{iid}"), &app.admin())
        .expect(200)
        .body;
    assert_eq!(item["vdr"]["accepted"], false);
    let why = "Vendor appliance at end of life; replaced in 2027.";
    let accept = json!({"kind": "vulnerability_acceptance", "decision": "approved", "notes": why});

    // An editor may not record it; an approver needs the explanation.
    let editor = app.token_as("ed@example.org", &[Role::Editor]);
    review(app, &iid, &editor, accept.clone()).problem(403, "forbidden");
    let issm = app.token_as("issm@example.org", &[Role::Approver]);
    review(
        app,
        &iid,
        &issm,
        json!({"kind": "vulnerability_acceptance", "decision": "approved"}),
    )
    .invalid("notes_required");
    review(
        app,
        &iid,
        &issm,
        json!({"kind": "vulnerability_acceptance", "decision": "approved", "notes": "   "}),
    )
    .invalid("notes_required");
    let unchanged = app
        .get(&format!("/v1/items/{iid}"), &app.admin())
        .expect(200)
        .body;
    assert_eq!(
        unchanged["version"], item["version"],
        "refused: nothing written"
    );

    // The approver's decision: who, when, why, and the review, set in the same write.
    let first = review(app, &iid, &issm, accept).expect(201).body;
    assert_eq!(first["kind"], "vulnerability_acceptance");
    assert_eq!(first["reviewer"], "issm@example.org");
    let item = app
        .get(&format!("/v1/items/{iid}"), &app.admin())
        .expect(200)
        .body;
    let accepted = &item["evaluation"]["accepted"];
    assert_eq!(accepted["rationale"], why);
    assert_eq!(accepted["decided_by"], "issm@example.org");
    assert_eq!(accepted["review_id"], first["id"]);
    assert_eq!(accepted["decided_at"], first["reviewed_at"]);
    assert_eq!(item["vdr"]["accepted"], true);
    assert_eq!(item["vdr"]["state"], "accepted");
    assert!(item["vdr"]["accepted_explanation"]
        .as_str()
        .is_some_and(|x| x.contains("end of life") && x.contains("issm@example.org")));
    // Recorded in the item's history as the approver's change.
    let history = app
        .get(&format!("/v1/items/{iid}/history"), &app.admin())
        .expect(200)
        .body;
    let last = history["items"]
        .as_array()
        .and_then(|h| {
            h.iter()
                .filter(|e| e["action"] == "updated")
                .max_by_key(|e| e["seq"].as_i64())
        })
        .cloned()
        .unwrap_or_else(|| panic!("no update in {history}"));
    assert_eq!(last["actor"], "issm@example.org", "{last}");
    assert!(
        last["changes"].to_string().contains("end of life"),
        "{last}"
    );

    // In the accepted vulnerability info, not in the detail report.
    let avi = report(app, &sid, "fedramp-avi");
    valid(app, AVI, &avi);
    assert_eq!(
        tracking_ids(&avi["acceptedVulnerabilities"], Some("vulnerabilityDetail")),
        vec!["POAM-0001"]
    );
    assert!(avi["acceptedVulnerabilities"][0]["acceptanceRationale"]
        .as_str()
        .is_some_and(|x| x.contains("end of life")));
    let vdt = report(app, &sid, "fedramp-vdt");
    valid(app, VDT, &vdt);
    assert_eq!(vdt["vulnerabilities"], json!([]));

    // A later acceptance supersedes the earlier one.
    let other = app.token_as("ao@example.org", &[Role::Approver]);
    let second = review(
        app,
        &iid,
        &other,
        json!({"kind": "vulnerability_acceptance", "decision": "approved",
               "notes": "Compensating network isolation; replacement funded for 2027.",
               "supersedes": first["id"]}),
    )
    .expect(201)
    .body;
    let item = app
        .get(&format!("/v1/items/{iid}"), &app.admin())
        .expect(200)
        .body;
    assert_eq!(item["evaluation"]["accepted"]["review_id"], second["id"]);
    assert_eq!(
        item["evaluation"]["accepted"]["decided_by"],
        "ao@example.org"
    );
    assert!(item["evaluation"]["accepted"]["rationale"]
        .as_str()
        .is_some_and(|x| x.starts_with("Compensating")));

    // A rejection withdraws the acceptance a review set: back in the detail report.
    review(
        app,
        &iid,
        &issm,
        json!({"kind": "vulnerability_acceptance", "decision": "rejected",
               "notes": "Isolation does not cover the management port."}),
    )
    .expect(201);
    let item = app
        .get(&format!("/v1/items/{iid}"), &app.admin())
        .expect(200)
        .body;
    assert_eq!(item["evaluation"]["accepted"], Value::Null);
    assert_eq!(item["vdr"]["accepted"], false);
    let vdt = report(app, &sid, "fedramp-vdt");
    valid(app, VDT, &vdt);
    assert_eq!(
        tracking_ids(&vdt["vulnerabilities"], None),
        vec!["POAM-0001"]
    );

    // PATCH by an approver works as before, recording its approver, without a review; a
    // rejecting review does not withdraw that one silently.
    let item = patch(
        app,
        &iid,
        json!({"evaluation": {"accepted": {"rationale": "Decided by the CAB.",
               "decided_by": "someone@else.org"}}}),
    );
    assert_eq!(item["vdr"]["accepted"], true);
    assert_eq!(
        item["evaluation"]["accepted"]["decided_by"],
        "tester@example.org"
    );
    assert_eq!(item["evaluation"]["accepted"]["review_id"], Value::Null);
    review(
        app,
        &iid,
        &issm,
        json!({"kind": "vulnerability_acceptance", "decision": "rejected"}),
    )
    .problem(409, "acceptance_not_from_review");
    let after = app
        .get(&format!("/v1/items/{iid}"), &app.admin())
        .expect(200)
        .body;
    assert_eq!(after["version"], item["version"]);

    // An item without an evaluation has nothing to accept.
    let bare = app.item(&sid, json!({})).expect(201).body;
    let bid = bare["id"].as_str().unwrap_or_default().to_owned();
    review(
        app,
        &bid,
        &issm,
        json!({"kind": "vulnerability_acceptance", "decision": "approved", "notes": why}),
    )
    .problem(409, "evaluation_required");

    // A system not under the 2026 rules: 422 not_under_vdr.
    for (name, body) in [
        ("Legacy", json!({"name": "Legacy", "regime": "fedramp"})),
        (
            "Later",
            json!({"name": "Later", "regime": "fedramp", "fedramp_class": "C",
                   "vdr_since": (chrono::Utc::now() + chrono::Duration::days(30)).date_naive().to_string()}),
        ),
    ] {
        let lsid = app
            .post("/v1/systems", &app.admin(), &body)
            .expect(201)
            .body["id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let t = ago(30);
        let litem = app
            .item(
                &lsid,
                json!({"detected_on": t.date_naive().to_string(),
                       "evaluation": {"detected_at": ts(t), "detection_source": "scanner"}}),
            )
            .expect(201)
            .body;
        let lid = litem["id"].as_str().unwrap_or_default().to_owned();
        review(
            app,
            &lid,
            &issm,
            json!({"kind": "vulnerability_acceptance", "decision": "approved", "notes": why}),
        )
        .invalid("not_under_vdr");
        let unchanged = app
            .get(&format!("/v1/items/{lid}"), &app.admin())
            .expect(200)
            .body;
        assert_eq!(unchanged["evaluation"]["accepted"], Value::Null, "{name}");
    }
}
both!(a_vulnerability_acceptance_review_accepts_the_item);

fn metrics_count_reportable_incidents_and_vdr_states(app: &TestApp) {
    let admin = app.admin();
    let sid = vdr_system(app, "C");
    // VER-TFR-IRI: internet-reachable, likely exploitable, N4 (class C: 4 days, not yet due).
    evaluated_item(app, &sid, true, true, "N4");
    // VER-TFR-NRI: likely exploitable, not internet-reachable, N5 (4 days).
    evaluated_item(app, &sid, false, true, "N5");
    // Overdue (FRD-ODV): detected 6 days ago, never evaluated (VER-TFR-EVU, 5 days).
    detected(app, &sid, 6 * 24);
    // Accepted (FRD-ACV) by an approver's review.
    let accepted = evaluated_item(app, &sid, false, false, "N2");
    review(
        app,
        &accepted,
        &app.token_as("issm@example.org", &[Role::Approver]),
        json!({"kind": "vulnerability_acceptance", "decision": "approved",
               "notes": "Internal test harness only; retired next quarter."}),
    )
    .expect(201);
    // Archived: left out unless include_archived.
    let archived = evaluated_item(app, &sid, true, true, "N5");
    app.delete(
        &format!("/v1/items/{archived}?reason=duplicate"),
        &admin,
        None,
    )
    .expect(200);

    let m = app
        .get(&format!("/v1/systems/{sid}/metrics"), &admin)
        .expect(200)
        .body;
    let expected = json!({
        "systems": 1, "items": 4,
        "reportable_incident_iri": 1, "reportable_incident_nri": 1,
        "overdue": 1, "accepted": 1,
        "by_n_rating": {"N1": 0, "N2": 1, "N3": 0, "N4": 1, "N5": 1},
        "unrated": 1
    });
    assert_eq!(m["vdr"], expected, "{m}");
    let with_archived = app
        .get(
            &format!("/v1/systems/{sid}/metrics?include_archived=true"),
            &admin,
        )
        .expect(200)
        .body;
    assert_eq!(with_archived["vdr"]["items"], 5);
    assert_eq!(with_archived["vdr"]["reportable_incident_iri"], 2);
    assert_eq!(with_archived["vdr"]["by_n_rating"]["N5"], 2);

    // A system not under the rules has no vdr figures; all systems count only those that are.
    let legacy = app.system_in("Legacy", "fedramp");
    app.item(&legacy, json!({})).expect(201);
    let m = app
        .get(&format!("/v1/systems/{legacy}/metrics"), &admin)
        .expect(200)
        .body;
    assert_eq!(m["vdr"], Value::Null, "{m}");
    let all = app.get("/v1/metrics", &admin).expect(200).body;
    assert_eq!(all["vdr"], expected, "{all}");
    assert_eq!(all["total"], 5);
    // A token for the legacy system alone sees no vdr figures.
    let legacy_id = legacy.parse().unwrap_or_else(|e| panic!("{e}"));
    let only_legacy = app.token(&[Role::Viewer], &[legacy_id]);
    let m = app.get("/v1/metrics", &only_legacy).expect(200).body;
    assert_eq!(m["vdr"], Value::Null, "{m}");
}
both!(metrics_count_reportable_incidents_and_vdr_states);

/// VDR-TFR-KEV with the catalog: an evaluated item whose CVE CISA lists is due by CISA's date
/// (even fully mitigated) without anyone typing it; a date a person gave stays theirs.
fn the_kev_catalog_sets_the_vdr_kev_deadline(app: &TestApp) {
    let admin = app.admin();
    let sid = vdr_system(app, "B");
    let id = evaluated_item(app, &sid, true, true, "N4");
    let due = (chrono::Utc::now() - chrono::Duration::days(2))
        .date_naive()
        .to_string();
    let kev = json!({
        "catalogVersion": "2026.11.30", "dateReleased": "2026-11-30T17:04:19.9796Z", "count": 1,
        "vulnerabilities": [{"cveID": "CVE-2024-6387", "vendorProject": "OpenBSD", "product": "OpenSSH",
            "vulnerabilityName": "regreSSHion", "dateAdded": "2026-11-01",
            "shortDescription": "A race condition.", "requiredAction": "Patch.", "dueDate": due,
            "knownRansomwareCampaignUse": "Unknown"}]
    });
    app.request(
        "PUT",
        "/v1/catalogs/kev",
        Some(&admin),
        &[],
        Some(&serde_json::to_vec(&kev).unwrap_or_default()),
    )
    .expect(200);
    let item = patch(
        app,
        &id,
        json!({"cves": ["CVE-2024-6387"], "evaluation": {"mitigation": "full", "mitigated_at": ts(ago(1))}}),
    );
    assert_eq!(item["kev"]["due_date"], due.as_str(), "{item}");
    assert!(
        item["deadline_rule"]
            .as_str()
            .is_some_and(|r| r.starts_with("fedramp-vdr:VDR-TFR-KEV:") || r.starts_with("kev:")),
        "{item}"
    );
    assert_eq!(
        item["vdr"]["overdue"], true,
        "due by CISA's date even fully mitigated: {item}"
    );
}
both!(the_kev_catalog_sets_the_vdr_kev_deadline);
