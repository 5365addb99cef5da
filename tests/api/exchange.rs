//! Exchange: exports an auditor can trust and tools can read (OSCAL checked by
//! compliance-trestle, the bundle by its JSON Schema, the workbook by openpyxl), imports that
//! round-trip and are idempotent, bulk upserts that answer per element.

use crate::both;
use crate::harness::{minimal_item, python_check, python_tools, TestApp};
use poam_domain::Role;
use serde_json::{json, Value};
use std::collections::BTreeSet;

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap_or_default().to_owned()
}

fn today() -> String {
    chrono::Utc::now().date_naive().to_string()
}

/// Takes an item from open to closed the way the rules demand.
pub(crate) fn close(app: &TestApp, iid: &str) {
    let doer = app.token_as("doer@example.org", &[Role::Editor]);
    let checker = app.token_as("checker@example.org", &[Role::Approver]);
    app.evidence(iid).expect(201);
    app.transition(iid, &doer, json!({"to": "in_progress"}))
        .expect(200);
    app.transition(
        iid,
        &doer,
        json!({"to": "completed", "comment": "Patched and rescanned.", "completed_on": today()}),
    )
    .expect(200);
    app.post(
        &format!("/v1/items/{iid}/reviews"),
        &checker,
        &json!({"kind": "closure_verification", "decision": "approved", "requested_by": "doer@example.org"}),
    )
    .expect(201);
    app.transition(iid, &checker, json!({"to": "closed"}))
        .expect(200);
}

/// A system with an open item, an item in progress with a full record, and a closed item.
fn populated(app: &TestApp, name: &str) -> String {
    let sid = app.system_in(name, "fedramp");
    let admin = app.admin();
    app.item(
        &sid,
        json!({"title": "Open weakness", "risk_rating": "low"}),
    )
    .expect(201);
    let rich = app
        .item(
            &sid,
            json!({
                "title": "TLS 1.0 on the load balancer",
                "external_id": "grc-1",
                "controls": ["SC-8(1)", "AC-2"],
                "cves": ["CVE-2011-3389"],
                "assets": ["lb-1.example.org", "lb-2.example.org"],
                "source": {"kind": "scan", "detector": "Nessus", "identifier": "104743"},
                "likelihood": "high",
                "impact": "moderate",
                "risk_rating": "high",
                "adjusted_risk_rating": "moderate",
                "risk_justification": "Only internal clients reach it.",
                "owner": {"name": "Dana Whitfield", "email": "dana@example.org"},
                "remediation_plan": "Disable TLS below 1.2.\nRescan.",
                "resources": {"description": "Two engineer-days", "estimated_cost": 1200.5, "funded": true},
                "interim_mitigation": "WAF blocks legacy ciphers.",
                "deviation": {"kind": "risk_adjustment", "rationale": "Compensating WAF rule."},
                "comments": "Tracked weekly, \"quoted\", with commas.",
            }),
        )
        .expect(201);
    let rich_id = id(&rich.body);
    app.milestone(&rich_id, "2026-10-20");
    let second = app.milestone(&rich_id, "2026-10-25");
    app.patch(
        &format!("/v1/milestones/{second}"),
        &admin,
        &json!({"due_on": "2026-10-28", "change_reason": "Vendor patch slipped"}),
        None,
    );
    app.transition(&rich_id, &admin, json!({"to": "in_progress"}))
        .expect(200);
    let done = app
        .item(&sid, json!({"title": "Fixed weakness"}))
        .expect(201);
    let done_id = id(&done.body);
    app.milestone(&done_id, "2026-10-15");
    close(app, &done_id);
    sid
}

/// What must survive a round trip, per item, sorted by title.
fn essentials(app: &TestApp, sid: &str) -> Vec<Value> {
    let admin = app.admin();
    let items = app
        .get(&format!("/v1/systems/{sid}/items?limit=200"), &admin)
        .expect(200)
        .body["items"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut out: Vec<Value> = items
        .iter()
        .map(|it| {
            let iid = id(it);
            let milestones: Vec<Value> = app
                .get(&format!("/v1/items/{iid}/milestones"), &admin)
                .expect(200)
                .body["items"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .map(|m| json!([m["title"], m["due_on"], m["status"], m["completed_on"]]))
                .collect();
            json!({
                "title": it["title"], "description": it["description"], "status": it["status"],
                "external_id": it["external_id"], "controls": it["controls"], "cves": it["cves"],
                "assets": it["assets"], "source": it["source"], "likelihood": it["likelihood"],
                "impact": it["impact"], "risk_rating": it["risk_rating"],
                "adjusted_risk_rating": it["adjusted_risk_rating"],
                "risk_justification": it["risk_justification"], "owner": it["owner"],
                "remediation_plan": it["remediation_plan"], "resources": it["resources"],
                "interim_mitigation": it["interim_mitigation"], "deviation": it["deviation"],
                "comments": it["comments"], "detected_on": it["detected_on"],
                "scheduled_completion": it["scheduled_completion"],
                "completed_on": it["completed_on"], "closed_on": it["closed_on"],
                "milestones": milestones,
            })
        })
        .collect();
    out.sort_by_key(|v| v["title"].to_string());
    out
}

const TRESTLE: &str = r#"
import sys
from trestle.oscal.poam import PlanOfActionAndMilestones
doc = PlanOfActionAndMilestones.oscal_read(__import__('pathlib').Path(sys.argv[1]))
print(len(doc.poam_items), doc.metadata.oscal_version.__root__ if hasattr(doc.metadata.oscal_version, '__root__') else doc.metadata.oscal_version)
"#;

const BUNDLE_SCHEMA: &str = r#"
import json, sys, jsonschema
schema = json.load(open('openapi/export-bundle.schema.json'))
doc = json.load(open(sys.argv[1]))
jsonschema.validate(doc, schema, cls=jsonschema.Draft202012Validator)
print(len(doc['items']), len(doc['events']))
"#;

fn save(app: &TestApp, name: &str, body: &[u8]) -> std::path::PathBuf {
    let path = app.dir.join(name);
    std::fs::write(&path, body).unwrap_or_else(|e| panic!("{e}"));
    path
}

fn oscal_round_trips_into_an_empty_system(app: &TestApp) {
    let admin = app.admin();
    let sid = populated(app, "Source");
    let (status, headers, first) =
        app.get_bytes(&format!("/v1/systems/{sid}/export?format=oscal"), &admin);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&first));
    assert_eq!(
        headers.get("content-type").map(String::as_str),
        Some("application/oscal+json")
    );
    let doc: Value = serde_json::from_slice(&first).unwrap_or_default();
    let poam = &doc["plan-of-action-and-milestones"];
    assert_eq!(poam["metadata"]["oscal-version"], "1.1.2");
    let items = poam["poam-items"].as_array().cloned().unwrap_or_default();
    assert_eq!(items.len(), 3);
    let ids: BTreeSet<&str> = items
        .iter()
        .flat_map(|p| p["props"].as_array().into_iter().flatten())
        .filter(|p| p["name"] == "POAM-ID")
        .filter_map(|p| p["value"].as_str())
        .collect();
    assert_eq!(ids, BTreeSet::from(["POAM-0001", "POAM-0002", "POAM-0003"]));
    let statuses: BTreeSet<&str> = poam["risks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["status"].as_str())
        .collect();
    assert_eq!(statuses, BTreeSet::from(["open", "remediating", "closed"]));
    assert!(
        poam["back-matter"]["resources"][0]["rlinks"][0]["hashes"][0]["value"]
            .as_str()
            .is_some_and(|h| h.len() == 64),
        "evidence travels with its SHA-256"
    );
    // Stable: exporting again gives the same uuids.
    let (_, _, again) = app.get_bytes(&format!("/v1/systems/{sid}/export?format=oscal"), &admin);
    let again: Value = serde_json::from_slice(&again).unwrap_or_default();
    assert_eq!(
        again["plan-of-action-and-milestones"]["risks"],
        poam["risks"]
    );
    if let Some(py) = python_tools() {
        let out = python_check(&py, TRESTLE, &save(app, "poam.oscal.json", &first));
        assert!(out.starts_with("3 "), "trestle read: {out}");
    }

    // Into an empty system, as an admin's migration (statuses taken as they stand): the same
    // items, milestones and statuses.
    let target = app.system_in("Target", "fedramp");
    let report = app
        .post(
            &format!("/v1/systems/{target}/imports/oscal?migrate=true"),
            &admin,
            &doc,
        )
        .expect(200);
    assert_eq!(
        (
            report.body["created"].as_array().map(Vec::len),
            report.body["failed"].as_array().map(Vec::len)
        ),
        (Some(3), Some(0)),
        "{}",
        report.body
    );
    let source = essentials(app, &sid);
    assert!(
        source
            .iter()
            .any(|e| e["milestones"].as_array().is_some_and(|m| !m.is_empty())),
        "the comparison covers milestones: {source:?}"
    );
    assert_eq!(essentials(app, &target), source);
    // Importing twice changes nothing.
    let twice = app
        .post(
            &format!("/v1/systems/{target}/imports/oscal?migrate=true"),
            &admin,
            &doc,
        )
        .expect(200);
    assert_eq!(
        (
            twice.body["created"].as_array().map(Vec::len),
            twice.body["updated"].as_array().map(Vec::len),
            twice.body["skipped"].as_array().map(Vec::len)
        ),
        (Some(0), Some(0), Some(3)),
        "{}",
        twice.body
    );
    assert_eq!(essentials(app, &target), essentials(app, &sid));
    // Export again: the same poam-items, risks' statuses and milestones.
    let (_, _, second) =
        app.get_bytes(&format!("/v1/systems/{target}/export?format=oscal"), &admin);
    let second: Value = serde_json::from_slice(&second).unwrap_or_default();
    let shape = |d: &Value| -> Vec<Value> {
        let mut v: Vec<Value> = d["plan-of-action-and-milestones"]["risks"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| {
                json!([
                    r["title"],
                    r["status"],
                    r["deadline"],
                    r["characterizations"]
                        .as_array()
                        .map(|c| c.iter().map(|x| x["facets"].clone()).collect::<Vec<_>>()),
                    r["remediations"][0]["tasks"].as_array().map(|t| t
                        .iter()
                        .map(|x| json!([x["title"], x["timing"]]))
                        .collect::<Vec<_>>())
                ])
            })
            .collect();
        v.sort_by_key(|x| x.to_string());
        v
    };
    assert_eq!(shape(&second), shape(&doc));
    // Every import and export is in the history.
    let events = app
        .get(
            &format!("/v1/systems/{target}/events?resource=import"),
            &admin,
        )
        .expect(200);
    assert_eq!(events.body["items"].as_array().map(Vec::len), Some(2));
}
both!(oscal_round_trips_into_an_empty_system);

fn oscal_imports_refuse_dangling_references_and_name_what_they_skip(app: &TestApp) {
    let admin = app.admin();
    let sid = app.system("Imports");
    let doc = |risk_ref: &str| {
        json!({"plan-of-action-and-milestones": {
            "uuid": "0b1d8a6f-7a7e-4c53-9a55-5f0f6d4d4a01",
            "metadata": {"title": "Vendor POA&M", "last-modified": "2026-11-01T00:00:00Z", "version": "1", "oscal-version": "1.0.4"},
            "observations": [{
                "uuid": "7e0c2b1a-3d4f-4a5b-8c6d-9e0f1a2b3c4d", "description": "Weekly scan.",
                "methods": ["TEST"], "collected": "2026-10-15T08:30:00Z",
                "subjects": [{"subject-uuid": "7e0c2b1a-3d4f-4a5b-8c6d-9e0f1a2b3c4e", "type": "inventory-item", "title": "vpn-1"}]
            }],
            "risks": [{
                "uuid": "5d2c8a4e-1a0b-4d8e-9c1f-1c6a7c9e0b11",
                "title": "Weak ciphers", "description": "RC4 accepted.", "statement": "RC4 accepted.",
                "status": "open", "threat-ids": [{"system": "https://example.org", "id": "T1"}],
                "characterizations": [{"origin": {"actors": [{"type": "tool", "actor-uuid": "5d2c8a4e-1a0b-4d8e-9c1f-1c6a7c9e0b12"}]},
                    "facets": [{"name": "likelihood", "system": "https://fedramp.gov", "value": "high"},
                               {"name": "impact", "system": "https://fedramp.gov", "value": "moderate"},
                               {"name": "cvss", "system": "https://nvd.nist.gov", "value": "7.5"}]}],
                "deadline": "2026-12-31T00:00:00Z"
            }],
            "poam-items": [{
                "uuid": "9a1f3c2e-5b6d-4e7f-8a9b-0c1d2e3f4a5b",
                "title": "Weak ciphers", "description": "RC4 accepted on the VPN.",
                "related-risks": [{"risk-uuid": risk_ref}],
                "related-observations": [{"observation-uuid": "7e0c2b1a-3d4f-4a5b-8c6d-9e0f1a2b3c4d"}],
                "props": [{"name": "POAM-ID", "ns": "https://fedramp.gov/ns/oscal", "value": "V-7"}]
            }]
        }})
    };
    let r = app
        .post(
            &format!("/v1/systems/{sid}/imports/oscal"),
            &admin,
            &doc("00000000-0000-4000-8000-000000000000"),
        )
        .problem(422, "validation_failed");
    assert_eq!(
        r.pointers(),
        ["/plan-of-action-and-milestones/poam-items/0/related-risks/0/risk-uuid"]
    );
    let count = app
        .get(&format!("/v1/systems/{sid}/items"), &admin)
        .expect(200)
        .body["items"]
        .as_array()
        .map(Vec::len);
    assert_eq!(count, Some(0), "a refused document leaves nothing behind");

    let r = app
        .post(
            &format!("/v1/systems/{sid}/imports/oscal"),
            &admin,
            &doc("5d2c8a4e-1a0b-4d8e-9c1f-1c6a7c9e0b11"),
        )
        .expect(200);
    assert_eq!(r.body["created"][0]["poam_id"], "V-7", "{}", r.body);
    // What the service has no field for; the rest of the unmapped members say why they were
    // not kept (metadata, the risk's own description and statement, …).
    let unmapped: Vec<&str> = r.body["unmapped"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|u| u["reason"] == "unknown")
        .filter_map(|u| u["pointer"].as_str())
        .collect();
    assert_eq!(
        unmapped,
        [
            "/plan-of-action-and-milestones/risks/0/characterizations/0/facets/2",
            "/plan-of-action-and-milestones/risks/0/threat-ids",
        ]
    );
    let item = &app
        .get(&format!("/v1/systems/{sid}/items"), &admin)
        .expect(200)
        .body["items"][0];
    assert_eq!(
        (
            item["risk_rating"].as_str(),
            item["scheduled_completion"].as_str(),
            item["description"].as_str(),
            item["detected_on"].as_str(),
            item["assets"][0].as_str(),
            item["source"]["kind"].as_str(),
        ),
        (
            Some("moderate"),
            Some("2026-12-31"),
            Some("RC4 accepted on the VPN."),
            Some("2026-10-15"),
            Some("vpn-1"),
            Some("scan")
        ),
        "the rating follows NIST SP 800-30 Table I-2: likelihood high, impact moderate is moderate"
    );
}
both!(oscal_imports_refuse_dangling_references_and_name_what_they_skip);

const XLSX_CHECK: &str = r#"
import sys, openpyxl
wb = openpyxl.load_workbook(sys.argv[1])
for ws in wb.worksheets:
    rows = list(ws.iter_rows(values_only=True))
    print(ws.title + '|' + str(len(rows)) + '|' + '|'.join(str(c) for c in rows[0]))
"#;

fn the_fedramp_template_comes_as_csv_and_xlsx(app: &TestApp) {
    let sid = populated(app, "Template");
    let auditor = app.token(&[Role::Auditor], &[]);
    let (status, headers, csv) =
        app.get_bytes(&format!("/v1/systems/{sid}/export?format=csv"), &auditor);
    assert_eq!(status, 200);
    assert_eq!(
        headers.get("content-type").map(String::as_str),
        Some("text/csv; charset=utf-8")
    );
    let text = String::from_utf8(csv).unwrap_or_default();
    let header = poam_domain::exchange::fedramp::COLUMNS.join(",");
    assert!(text.starts_with(&format!("\u{feff}{header}\r\n")), "{text}");
    assert!(text.contains("\"Tracked weekly, \"\"quoted\"\", with commas.\""));
    assert!(text.contains("10/01/2026"), "dates as MM/DD/YYYY");
    assert!(
        text.contains("(2) Fix it moved from 10/25/2026 to 10/28/2026: Vendor patch slipped"),
        "milestone changes are listed: {text}"
    );
    assert!(!text.contains("Fixed weakness"));
    let (_, _, closed) = app.get_bytes(
        &format!("/v1/systems/{sid}/export?format=csv&sheet=closed"),
        &auditor,
    );
    let closed = String::from_utf8(closed).unwrap_or_default();
    assert_eq!(closed.matches("\r\n").count(), 2, "{closed}");
    assert!(closed.contains("Fixed weakness"));
    app.get(
        &format!("/v1/systems/{sid}/export?format=xlsx&sheet=open"),
        &auditor,
    )
    .problem(400, "invalid_query");

    let (status, _, xlsx) =
        app.get_bytes(&format!("/v1/systems/{sid}/export?format=xlsx"), &auditor);
    assert_eq!(status, 200);
    assert!(xlsx.starts_with(b"PK\x03\x04"));
    if let Some(py) = python_tools() {
        let out = python_check(&py, XLSX_CHECK, &save(app, "poam.xlsx", &xlsx));
        let lines: Vec<&str> = out.lines().collect();
        let columns = poam_domain::exchange::fedramp::COLUMNS.join("|");
        assert_eq!(
            lines,
            [
                format!("Open POA&M Items|3|{columns}"),
                format!("Closed POA&M Items|2|{columns}")
            ]
        );
    }
    // The auditor's exports are in the history, with who asked.
    let events = app
        .get(
            &format!("/v1/systems/{sid}/events?resource=export"),
            &app.admin(),
        )
        .expect(200);
    assert_eq!(events.body["items"].as_array().map(Vec::len), Some(3));
}
both!(the_fedramp_template_comes_as_csv_and_xlsx);

fn the_bundle_holds_everything_from_one_snapshot(app: &TestApp) {
    let sid = populated(app, "Bundle");
    let auditor = app.token(&[Role::Auditor], &[]);
    let (status, _, body) = app.get_bytes(&format!("/v1/systems/{sid}/export"), &auditor);
    assert_eq!(status, 200);
    let bundle: Value = serde_json::from_slice(&body).unwrap_or_default();
    assert_eq!(bundle["format"], "poam-export-bundle");
    let events = bundle["events"].as_array().cloned().unwrap_or_default();
    assert_eq!(
        Some(events.len() as i64),
        bundle["chain"]["length"].as_i64(),
        "the chain as of the snapshot, its own export included"
    );
    assert_eq!(
        events.last().map(|e| e["hash"].clone()),
        Some(bundle["chain"]["head"].clone())
    );
    assert_eq!(
        events.last().map(|e| e["action"].clone()),
        Some(json!("exported"))
    );
    let rich = bundle["items"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|i| i["item"]["external_id"] == "grc-1")
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        rich["milestones"][1]["changes"][0]["reason"],
        "Vendor patch slipped"
    );
    assert_eq!(rich["transitions"][0]["to"], "in_progress");
    let closed = bundle["items"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|i| i["item"]["status"] == "closed")
        .cloned()
        .unwrap_or_default();
    assert_eq!(closed["reviews"][0]["kind"], "closure_verification");
    assert_eq!(
        closed["evidence"][0]["sha256"].as_str().map(str::len),
        Some(64)
    );
    // Each event's hash recomputes from its content: the bundle verifies offline.
    for e in &events {
        let chained = poam_domain::history::ChainedEvent {
            id: e["id"].as_str().unwrap_or_default().into(),
            system_id: e["system_id"].as_str().unwrap_or_default().into(),
            seq: e["seq"].as_i64().unwrap_or_default(),
            at: e["at"].as_str().unwrap_or_default().into(),
            actor: e["actor"].as_str().unwrap_or_default().into(),
            action: e["action"].as_str().unwrap_or_default().into(),
            resource_kind: e["resource_kind"].as_str().unwrap_or_default().into(),
            resource_id: e["resource_id"].as_str().unwrap_or_default().into(),
            version: e["version"].as_i64().unwrap_or_default(),
            changes: e["changes"].clone(),
            snapshot: e["snapshot"].clone(),
            prev_hash: e["prev_hash"].as_str().unwrap_or_default().into(),
            hash: String::new(),
        };
        assert_eq!(
            chained.compute_hash(&chained.prev_hash),
            e["hash"].as_str().unwrap_or_default(),
            "event {}",
            chained.seq
        );
    }
    if let Some(py) = python_tools() {
        let out = python_check(&py, BUNDLE_SCHEMA, &save(app, "bundle.json", &body));
        assert_eq!(out.trim(), format!("3 {}", events.len()));
    }
    // The schema is served, and OSCAL refuses an empty system.
    let schema = app.request("GET", "/v1/schemas/export-bundle.json", None, &[], None);
    assert_eq!(schema.status, 200);
    assert_eq!(schema.body["$ref"], "#/$defs/ExportBundle");
    let empty = app.system("Empty");
    app.get(
        &format!("/v1/systems/{empty}/export?format=oscal"),
        &auditor,
    )
    .problem(409, "nothing_to_export");
    let stranger = app.token(&[Role::Auditor], &[poam_domain::SystemId::new()]);
    app.get(&format!("/v1/systems/{sid}/export"), &stranger)
        .problem(404, "not_found");
}
both!(the_bundle_holds_everything_from_one_snapshot);

fn finding(n: usize) -> Value {
    json!({
        "external_id": format!("scan-{n}"),
        "title": format!("Finding {n}"),
        "description": "Found by the weekly scan.",
        "source": {"kind": "scan", "detector": "Nessus", "identifier": format!("plugin {n}")},
        "assets": [format!("host-{n}.example.org")],
        "risk_rating": "moderate",
        "detected_on": "2026-11-01",
    })
}

fn a_bulk_upsert_answers_per_element(app: &TestApp) {
    let admin = app.admin();
    let sid = app.system("Bulk");
    let bad = [7usize, 99, 250, 512, 998];
    let mut elements: Vec<Value> = (0..1000).map(finding).collect();
    elements[7]["title"] = json!("");
    elements[99]["risk_rating"] = json!("catastrophic");
    elements[250]["detected_on"] = json!("2999-01-01");
    elements[512] = json!(["not", "an", "object"]);
    elements[998]["status"] = json!("closed");
    let path = format!("/v1/systems/{sid}/items/bulk");
    let r = app
        .post(&path, &admin, &json!({"items": elements}))
        .expect(200);
    let results = r.body["results"].as_array().cloned().unwrap_or_default();
    assert_eq!(results.len(), 1000);
    for (i, res) in results.iter().enumerate() {
        let want = if bad.contains(&i) {
            "failed"
        } else {
            "created"
        };
        assert_eq!(res["status"], want, "element {i}: {res}");
        assert_eq!(res["index"], i);
    }
    assert_eq!(results[7]["problem"]["errors"][0]["pointer"], "/title");
    assert_eq!(
        results[99]["problem"]["errors"][0]["pointer"],
        "/risk_rating"
    );
    assert_eq!(
        results[998]["problem"]["errors"][0]["code"],
        "status_via_transition"
    );
    assert_eq!(
        r.body["summary"],
        json!({"created": 995, "updated": 0, "unchanged": 0, "reopened": 0, "failed": 5})
    );
    let stored = |app: &TestApp| -> usize {
        let mut n = 0;
        let mut cursor = String::new();
        loop {
            let page = app
                .get(
                    &format!("/v1/systems/{sid}/items?limit=200{cursor}"),
                    &admin,
                )
                .expect(200);
            n += page.body["items"].as_array().map_or(0, Vec::len);
            match page.body["next_cursor"].as_str() {
                Some(c) => cursor = format!("&cursor={c}"),
                None => return n,
            }
        }
    };
    assert_eq!(stored(app), 995, "exactly the good elements are stored");
    let titles = app
        .get(
            &format!("/v1/systems/{sid}/items?q=Finding 7&limit=200"),
            &admin,
        )
        .expect(200);
    assert!(titles.body["items"]
        .as_array()
        .into_iter()
        .flatten()
        .all(|i| i["external_id"] != "scan-7"));

    // The same batch again: nothing changes; one edit updates one item.
    let mut again: Vec<Value> = (0..1000)
        .filter(|i| !bad.contains(i))
        .map(finding)
        .collect();
    again[0]["title"] = json!("Finding 0, renamed");
    let r = app
        .post(&path, &admin, &json!({"items": again}))
        .expect(200);
    assert_eq!(
        r.body["summary"],
        json!({"created": 0, "updated": 1, "unchanged": 994, "reopened": 0, "failed": 0})
    );
    assert_eq!(stored(app), 995);

    // Over the limit: 413, nothing applied.
    let too_many: Vec<Value> = (2000..3001).map(finding).collect();
    app.post(&path, &admin, &json!({"items": too_many}))
        .problem(413, "batch_too_large");
    assert_eq!(stored(app), 995);
    let viewer = app.token(&[Role::Viewer], &[]);
    app.post(&path, &viewer, &json!({"items": []}))
        .problem(403, "forbidden");
}
both!(a_bulk_upsert_answers_per_element);

fn scanner_findings_deduplicate_and_reopen_when_they_recur(app: &TestApp) {
    let admin = app.admin();
    let sid = app.system("Scans");
    let path = format!("/v1/systems/{sid}/items/bulk");
    let scan = |asset: &str| {
        json!({
            "title": "OpenSSH regreSSHion",
            "description": "CVE-2024-6387 on an exposed sshd.",
            "source": {"kind": "scan", "detector": "Nessus", "identifier": "plugin 201194"},
            "cves": ["CVE-2024-6387"],
            "assets": [asset],
            "risk_rating": "high",
            "detected_on": "2026-10-01",
            "scheduled_completion": "2026-10-31",
        })
    };
    let r = app
        .post(
            &path,
            &admin,
            &json!({"items": [scan("web-1"), scan("web-2")]}),
        )
        .expect(200);
    assert_eq!(r.body["summary"]["created"], 2, "one item per asset");
    let web1 = r.body["results"][0]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let r = app
        .post(
            &path,
            &admin,
            &json!({"items": [scan("web-1"), scan("web-2")]}),
        )
        .expect(200);
    assert_eq!(
        r.body["summary"]["unchanged"], 2,
        "the same findings again: {}",
        r.body
    );
    assert_eq!(r.body["results"][0]["id"], web1.as_str());

    app.milestone(&web1, "2026-10-20");
    close(app, &web1);
    let r = app
        .post(&path, &admin, &json!({"items": [scan("web-1")]}))
        .expect(200);
    assert_eq!(r.body["results"][0]["status"], "reopened", "{}", r.body);
    let item = app.get(&format!("/v1/items/{web1}"), &admin).expect(200);
    assert_eq!(
        (
            item.body["status"].as_str(),
            item.body["closed_on"].as_str()
        ),
        (Some("open"), None)
    );
    let history = app
        .get(&format!("/v1/items/{web1}/history"), &admin)
        .expect(200);
    let last = history.body["items"]
        .as_array()
        .and_then(|e| e.last())
        .cloned()
        .unwrap_or_default();
    assert_eq!(last["action"], "transitioned");
    assert_eq!(last["changes"]["status"]["after"], "open", "{last}");
}
both!(scanner_findings_deduplicate_and_reopen_when_they_recur);

/// New items of a bulk request are created together; an element that names the key of an
/// earlier new element of the same request still finds the item made for it (updated or
/// unchanged, never a second item or a conflict).
fn repeated_keys_in_one_bulk_request_name_one_item(app: &TestApp) {
    let admin = app.admin();
    let sid = app.system("Repeats");
    let path = format!("/v1/systems/{sid}/items/bulk");
    let scan = |asset: &str, rating: &str| {
        json!({
            "title": "OpenSSH regreSSHion",
            "description": "CVE-2024-6387 on an exposed sshd.",
            "source": {"kind": "scan", "detector": "Nessus", "identifier": "plugin 201194"},
            "assets": [asset],
            "risk_rating": rating,
            "detected_on": "2026-10-01",
        })
    };
    let synced = |ext: &str, title: &str| {
        let mut v = minimal_item();
        v["external_id"] = json!(ext);
        v["title"] = json!(title);
        v
    };
    let r = app
        .post(
            &path,
            &admin,
            &json!({"items": [
                scan("web-1", "high"),
                synced("grc-1", "First"),
                scan("web-2", "high"),
                scan("web-1", "critical"),
                synced("grc-1", "First"),
                synced("grc-2", "Second"),
                synced("grc-1", "Renamed"),
            ]}),
        )
        .expect(200);
    let statuses: Vec<&str> = r.body["results"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["status"].as_str())
        .collect();
    assert_eq!(
        statuses,
        [
            "created",
            "created",
            "created",
            "updated",
            "unchanged",
            "created",
            "updated"
        ],
        "{}",
        r.body
    );
    let id = |n: usize| r.body["results"][n]["id"].as_str().unwrap_or_default();
    assert_eq!(
        id(3),
        id(0),
        "the repeated finding is the item made for the first"
    );
    assert_eq!(id(4), id(1));
    assert_eq!(id(6), id(1));
    let web1 = app.get(&format!("/v1/items/{}", id(0)), &admin).expect(200);
    assert_eq!(web1.body["risk_rating"], "critical");
    let grc1 = app.get(&format!("/v1/items/{}", id(1)), &admin).expect(200);
    assert_eq!(grc1.body["title"], "Renamed");
    let listed = app
        .get(&format!("/v1/systems/{sid}/items?limit=50"), &admin)
        .expect(200);
    let displays: Vec<&str> = listed.body["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| i["display_id"].as_str())
        .collect();
    assert_eq!(
        displays,
        ["POAM-0001", "POAM-0002", "POAM-0003", "POAM-0004"]
    );
    app.assert_chain_verifies(&sid);
}
both!(repeated_keys_in_one_bulk_request_name_one_item);

/// The entries of a ZIP container (an `.xlsx`) as its central directory lists them: name, CRC-32
/// and uncompressed size, without `docProps/core.xml` (it holds the second the workbook was
/// written). Two workbooks with the same entries hold the same sheets, byte for byte.
fn zip_entries(zip: &[u8]) -> Vec<(String, u32, u32)> {
    let u16_at = |at: usize| {
        zip.get(at..at + 2)
            .map_or(0, |b| u16::from_le_bytes([b[0], b[1]]) as usize)
    };
    let u32_at = |at: usize| {
        zip.get(at..at + 4)
            .map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let end = (0..zip.len().saturating_sub(21))
        .rev()
        .find(|&at| u32_at(at) == 0x0605_4b50);
    let Some(end) = end else {
        return Vec::new();
    };
    let (count, mut at) = (u16_at(end + 10), u32_at(end + 16) as usize);
    let mut out = Vec::new();
    for _ in 0..count {
        if u32_at(at) != 0x0201_4b50 {
            break;
        }
        let name_len = u16_at(at + 28);
        let name =
            String::from_utf8_lossy(zip.get(at + 46..at + 46 + name_len).unwrap_or_default());
        if name != "docProps/core.xml" {
            out.push((name.into_owned(), u32_at(at + 16), u32_at(at + 24)));
        }
        at += 46 + name_len + u16_at(at + 30) + u16_at(at + 32);
    }
    out
}

/// What must be equal between two exports of the same state: CSV byte for byte, a workbook's
/// entries, JSON without what names the export itself (the bundle's time and chain, which its
/// own export event extends; the OSCAL version, `event-{seq}`).
fn stable(content_type: &str, body: &[u8]) -> Value {
    if content_type.starts_with("text/csv") {
        return json!(String::from_utf8_lossy(body));
    }
    if content_type.starts_with("application/vnd.openxmlformats") {
        return json!(zip_entries(body));
    }
    let mut v: Value = serde_json::from_slice(body).unwrap_or_default();
    if let Some(o) = v.as_object_mut() {
        for volatile in ["exported_at", "chain", "events"] {
            o.remove(volatile);
        }
    }
    if let Some(m) = v
        .pointer_mut("/plan-of-action-and-milestones/metadata")
        .and_then(Value::as_object_mut)
    {
        m.remove("version");
    }
    v
}

fn each_format_has_an_operation_of_its_own(app: &TestApp) {
    let sid = populated(app, "Per format");
    let admin = app.admin();
    // An archived item, so that `include_archived` changes what the exports hold.
    let archived = app
        .item(&sid, json!({"title": "Archived weakness"}))
        .expect(201);
    app.delete(
        &format!("/v1/items/{}?reason=Duplicate", id(&archived.body)),
        &admin,
        None,
    )
    .expect(200);
    let auditor = app.token(&[Role::Auditor], &[]);
    let spec = serde_json::to_value(poam_http::openapi()).unwrap_or_default();
    // (the query form's options, the operation, its options)
    let cases = [
        ("format=json", "json", ""),
        ("format=oscal", "oscal", ""),
        (
            "format=oscal&oscal_version=1.2.1&include_archived=true",
            "oscal",
            "oscal_version=1.2.1&include_archived=true",
        ),
        ("format=csv", "fedramp-csv", ""),
        (
            "format=csv&sheet=closed&template=v3&include_archived=true",
            "fedramp-csv",
            "sheet=closed&template=v3&include_archived=true",
        ),
        ("format=xlsx", "fedramp-xlsx", ""),
        ("format=xlsx&template=v3", "fedramp-xlsx", "template=v3"),
        ("format=emass", "emass-xlsx", ""),
        (
            "format=emass&variant=army&include_archived=true",
            "emass-xlsx",
            "variant=army&include_archived=true",
        ),
        (
            "format=emass&as=csv&variant=marine",
            "emass-csv",
            "variant=marine",
        ),
        ("format=emass&dry_run=true", "emass-dry-run", ""),
        (
            "format=emass&dry_run=true&variant=army",
            "emass-dry-run",
            "variant=army",
        ),
        ("format=emass&strict=true", "emass-xlsx", "strict=true"),
        (
            "format=emass&as=csv&strict=true",
            "emass-csv",
            "strict=true",
        ),
        ("format=nisp", "nisp-xlsx", ""),
        (
            "format=nisp&as=csv&include_archived=true",
            "nisp-csv",
            "include_archived=true",
        ),
    ];
    for (query, operation, options) in cases {
        let (q_status, q_headers, q_body) =
            app.get_bytes(&format!("/v1/systems/{sid}/export?{query}"), &auditor);
        let (status, headers, body) = app.get_bytes(
            &format!("/v1/systems/{sid}/exports/{operation}?{options}"),
            &auditor,
        );
        let what = format!("exports/{operation}?{options} against export?{query}");
        assert_eq!(status, q_status, "{what}");
        let content_type = headers.get("content-type").cloned().unwrap_or_default();
        if status != 200 {
            // The same refusal (eMASS's strict check).
            assert_eq!(content_type, "application/problem+json", "{what}");
            let problem = |b: &[u8]| {
                let v: Value = serde_json::from_slice(b).unwrap_or_default();
                json!([v["code"], v["errors"]])
            };
            assert_eq!(problem(&body), problem(&q_body), "{what}");
            continue;
        }
        // Exactly the media type the operation declares, and the query form's headers.
        let declared: Vec<String> = spec
            .pointer(&format!(
                "/paths/~1v1~1systems~1{{system_id}}~1exports~1{operation}/get/responses/200/content"
            ))
            .and_then(Value::as_object)
            .map(|c| c.keys().cloned().collect())
            .unwrap_or_default();
        let media = content_type.split(';').next().unwrap_or_default();
        assert_eq!(declared, [media], "{what}");
        for name in [
            "content-type",
            "content-disposition",
            "poam-archived-unresolved-excluded",
            "poam-emass-refusals",
        ] {
            assert_eq!(headers.get(name), q_headers.get(name), "{what}: {name}");
        }
        let (ours, theirs) = (stable(&content_type, &body), stable(&content_type, &q_body));
        assert!(ours != json!([]) && ours != Value::Null, "{what}: {ours}");
        assert_eq!(ours, theirs, "{what}");
    }
    // Only the operation's own options; the format is its path.
    for (operation, options) in [
        ("json", "format=oscal"),
        ("json", "include_archived=true"),
        ("oscal", "sheet=closed"),
        ("fedramp-xlsx", "sheet=open"),
        ("fedramp-csv", "variant=army"),
        ("emass-xlsx", "as=csv"),
        ("emass-dry-run", "strict=true"),
        ("nisp-csv", "template=v3"),
    ] {
        app.get(
            &format!("/v1/systems/{sid}/exports/{operation}?{options}"),
            &auditor,
        )
        .problem(400, "invalid_query");
    }
    // The same refusals as the query form: an empty system has no OSCAL, another system is
    // not found.
    let empty = app.system("Empty per format");
    app.get(&format!("/v1/systems/{empty}/exports/oscal"), &auditor)
        .problem(409, "nothing_to_export");
    let stranger = app.token(&[Role::Auditor], &[poam_domain::SystemId::new()]);
    app.get(&format!("/v1/systems/{sid}/exports/nisp-csv"), &stranger)
        .problem(404, "not_found");
}
both!(each_format_has_an_operation_of_its_own);
