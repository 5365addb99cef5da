//! The eMASS POA&M template out (`format=emass`): the workbook eMASS imports in each variant,
//! opened with openpyxl (banner, header block, row 7, one row per milestone, real dates, mapped
//! words, list validations), the CSV of the same columns, the dry run and `strict=true`.

use crate::both;
use crate::harness::{days, id, python_check, python_tools, today, TestApp};
use poam_domain::Role;
use serde_json::{json, Value};

/// Navy row 7, B to AG, as the reference (`emass-template-layouts.json`) gives it.
const NAVY: [&str; 32] = [
    "POA&M Item ID",
    "Control Vulnerability Description",
    "Controls / APs",
    "Security Checks",
    "POA&M Status",
    "POA&M Scheduled Completion Date",
    "POA&M Requested Risk Accepted Expiration Date",
    "POA&M Completion Date",
    "Milestone ID",
    "Milestone Description",
    "Milestone Status",
    "Milestone Status Comments",
    "Milestone Scheduled Completion Date",
    "Milestone Completion Date",
    "Identification Source",
    "Identification Source Details",
    "Office/Org",
    "Resources Required",
    "Comments",
    "Raw Severity",
    "Devices Affected",
    "Mitigations (in-house and in conjunction with the Navy CSSP)",
    "Predisposing Conditions",
    "Severity",
    "Relevance of Threat",
    "Threat Description",
    "Likelihood",
    "Impact",
    "Impact Description",
    "Residual Risk Level",
    "Recommendations",
    "Resulting Residual Risk after Proposed Mitigations",
];

/// Army row 7 from X on (B–W are Navy's, with `Identification Source ` and `Mitigations`).
const ARMY_TAIL: [&str; 18] = [
    "Severity",
    "Relevance of Threat",
    "Likelihood",
    "Impact",
    "Impact Description",
    "Residual Risk Level",
    "Recommendations",
    "Identified in CFO Audit or other review",
    "Personnel Resources: \nCost Code",
    "Personnel Resources: Funded Base Hours",
    "Personnel Resources: Unfunded Base Hours",
    "Personnel Resources: \nNon-Funding Obstacle",
    "Personnel Resources: Non-Funded Obstacle Other Reason",
    "Non-Personnel Resources: Cost Code",
    "Non-Personnel Resources: Funded Amount",
    "Non-Personnel Resources: Unfunded Amount",
    "Non-Personnel Resources: Non-Funding Obstacle",
    "Non-Personnel Resources: Non-Funding Obstacle Other reason",
];

/// The reference's row 7 of a variant.
fn reference_columns(variant: &str) -> Vec<String> {
    let mut navy: Vec<String> = NAVY.iter().map(|s| (*s).to_owned()).collect();
    match variant {
        "navy" => navy,
        "marine" => {
            navy[21] = "Mitigations".into();
            navy.pop();
            navy
        }
        _ => {
            navy[14] = "Identification Source ".into();
            navy[21] = "Mitigations".into();
            navy.truncate(22);
            navy.extend(ARMY_TAIL.iter().map(|s| (*s).to_owned()));
            navy
        }
    }
}

/// The workbook as JSON: sheets, banner, header block cells, row 7, the data rows (dates as
/// `{date, format}`), whether column A is hidden, the list validations.
const READ: &str = r#"
import sys, json, datetime, openpyxl
wb = openpyxl.load_workbook(sys.argv[1])
ws = wb.worksheets[0]
def v(c):
    x = c.value
    if isinstance(x, datetime.datetime):
        return {"date": x.date().isoformat(), "format": c.number_format}
    return x
last = ws.max_column
out = {
    "sheets": wb.sheetnames,
    "banner": ws["A1"].value,
    "merged": sorted(str(r) for r in ws.merged_cells.ranges),
    "cells": {f"{col}{row}": v(ws[f"{col}{row}"]) for row in range(2, 7) for col in "ADLMOPQ"},
    "row7": [c.value for c in ws[7]][1:last],
    "rows": [[v(c) for c in r][1:last] for r in ws.iter_rows(min_row=8, max_col=last)],
    "hidden_a": bool(ws.column_dimensions["A"].hidden),
    "lists": sorted(str(d.sqref).split(":")[0] + "=" + str(d.formula1) for d in ws.data_validations.dataValidation),
}
print(json.dumps(out))
"#;

const SUB: &str = "exporter@example.org";

/// A system with eMASS header fields and one item in each status: open (no milestones: eMASS
/// refuses it), ongoing with two milestones, completed with a completed milestone, risk
/// accepted without milestones. Returns the system id and the display ids in that order.
fn emass_system(app: &TestApp) -> (String, Vec<String>) {
    let admin = app.admin();
    let sid = id(&app
        .post(
            "/v1/systems",
            &admin,
            &json!({
                "name": "Shipboard Payroll",
                "organization": "NAVWAR",
                "contacts": {
                    "issm": {"name": "Pat Issm", "email": "pat.issm@example.mil", "phone": "619-555-0100"},
                    "system_owner": {"name": "Owner Person"}
                },
                "emass": {
                    "ccsafa": "NAVY",
                    "it_registration": "DITPR-1234",
                    "system_type": "IS Major Application",
                    "omb_project_id": "007-000001234",
                    "security_costs": 10000.0
                }
            }),
        )
        .expect(201)
        .body);
    let full = |title: &str, status: &str, extra: Value| {
        let mut item = json!({
            "external_id": format!("ext-{title}"),
            "title": title,
            "description": format!("{title}: TLS 1.0 accepted"),
            "risk_rating": "high",
            "likelihood": "high",
            "impact": "moderate",
            "detected_on": days(-30),
            "status": status,
            "controls": ["SC-8(1)", "AC-2"],
            "source": {"kind": "scan", "detector": "Nessus", "identifier": format!("plugin-{title}")},
            "cves": ["CVE-2011-3389"],
            "assets": ["lb-1.example.org"],
            "owner": {"name": "Dana Whitfield", "email": "dana@example.org"},
            "resources": {"description": "Two engineer-days"},
            "scheduled_completion": days(60),
            "comments": "Tracked weekly."
        });
        if let (Some(o), Value::Object(e)) = (item.as_object_mut(), extra) {
            o.extend(e);
        }
        item
    };
    let bulk = app
        .post(
            &format!("/v1/systems/{sid}/items/bulk?migrate=true"),
            &admin,
            &json!({"items": [
                full("open", "open", json!({})),
                full("ongoing", "in_progress", json!({})),
                full("completed", "in_progress", json!({})),
                full("accepted", "risk_accepted", json!({"scheduled_completion": null})),
            ]}),
        )
        .expect(200);
    assert_eq!(bulk.body["summary"]["created"], 4, "{}", bulk.body);
    let ids: Vec<String> = (0..4)
        .map(|i| {
            bulk.body["results"][i]["id"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    let display: Vec<String> = (0..4)
        .map(|i| {
            bulk.body["results"][i]["display_id"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    let milestone = |item: &str, title: &str, due: String| {
        id(&app
            .post(
                &format!("/v1/items/{item}/milestones"),
                &admin,
                &json!({"title": title, "due_on": due, "description": format!("{title} notes")}),
            )
            .expect(201)
            .body)
    };
    // Ongoing: one milestone done, one planned.
    let first = milestone(&ids[1], "Disable TLS 1.0", days(10));
    app.post(
        &format!("/v1/milestones/{first}/complete"),
        &admin,
        &json!({"completed_on": days(-2)}),
    )
    .expect(200);
    milestone(&ids[1], "Rescan", days(30));
    // Completed: its one milestone done, then the item completed.
    let only = milestone(&ids[2], "Patch", days(5));
    app.post(
        &format!("/v1/milestones/{only}/complete"),
        &admin,
        &json!({"completed_on": days(-1)}),
    )
    .expect(200);
    app.evidence(&ids[2]).expect(201);
    app.transition(
        &ids[2],
        &admin,
        json!({"to": "completed", "comment": "Patched and rescanned.", "completed_on": days(-1)}),
    )
    .expect(200);
    (sid, display)
}

fn save(app: &TestApp, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let path = app.dir.join(name);
    std::fs::write(&path, bytes).unwrap_or_else(|e| panic!("{e}"));
    path
}

fn us(date: &str) -> String {
    let d: chrono::NaiveDate = date.parse().unwrap_or_default();
    d.format("%m/%d/%Y").to_string()
}

fn real_date(date: String) -> Value {
    json!({"date": date, "format": "mm/dd/yyyy"})
}

fn the_emass_template_comes_in_each_variant(app: &TestApp) {
    let (sid, _) = emass_system(app);
    let viewer = app.token_as(SUB, &[Role::Viewer]);
    for variant in ["navy", "army", "marine"] {
        let (status, headers, body) = app.get_bytes(
            &format!("/v1/systems/{sid}/export?format=emass&variant={variant}"),
            &viewer,
        );
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        assert_eq!(
            headers.get("content-type").map(String::as_str),
            Some("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
        );
        assert_eq!(
            headers.get("poam-emass-refusals").map(String::as_str),
            Some("1"),
            "the open item has no milestone"
        );
        assert!(body.starts_with(b"PK\x03\x04"));
        let Some(py) = python_tools() else { continue };
        let out = python_check(&py, READ, &save(app, &format!("{variant}.xlsx"), &body));
        let wb: Value = serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out}"));
        assert_eq!(wb["sheets"][0], "POA&M", "{variant}");
        assert_eq!(
            wb["banner"],
            "***** CONTROLLED UNCLASSIFIED INFORMATION *****"
        );
        let last = if variant == "navy" {
            "AG"
        } else if variant == "army" {
            "AO"
        } else {
            "AF"
        };
        let merged: Vec<&str> = wb["merged"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        assert!(
            merged.contains(&format!("A1:{last}1").as_str()),
            "{merged:?}"
        );
        assert!(merged.contains(&"D2:K2"), "{merged:?}");
        assert_eq!(wb["hidden_a"], true);
        // The header block: labels and values where the variant has them.
        let c = &wb["cells"];
        assert_eq!(c["A2"], "Date Exported:");
        assert_eq!(c["D2"], real_date(today().to_string()));
        assert_eq!(c["A3"], "Exported By:");
        assert_eq!(c["D3"], SUB);
        assert_eq!((&c["A4"], &c["D4"]), (&json!("CC/S/A/FA:"), &json!("NAVY")));
        assert_eq!(
            (&c["A5"], &c["D5"]),
            (
                &json!("System / Project Name:"),
                &json!("Shipboard Payroll")
            )
        );
        assert_eq!(
            (&c["A6"], &c["D6"]),
            (&json!("DoW IT Registration No:"), &json!("DITPR-1234"))
        );
        assert_eq!(
            (&c["L2"], &c["M2"]),
            (&json!("System Type:"), &json!("IS Major Application"))
        );
        assert_eq!(
            (&c["L4"], &c["M4"]),
            (&json!("POC Name:"), &json!("Pat Issm"))
        );
        assert_eq!(
            (&c["L5"], &c["M5"]),
            (&json!("POC Phone:"), &json!("619-555-0100"))
        );
        assert_eq!(
            (&c["L6"], &c["M6"]),
            (&json!("POC E-Mail:"), &json!("pat.issm@example.mil"))
        );
        let (omb, costs) = if variant == "marine" {
            (("O2", "P2"), ("O5", "P5"))
        } else {
            (("P2", "Q2"), ("P5", "Q5"))
        };
        assert_eq!(
            (&c[omb.0], &c[omb.1]),
            (&json!("OMB Project ID:"), &json!("007-000001234"))
        );
        assert_eq!(c[costs.0], "Security Costs:");
        assert_eq!(c[costs.1].as_f64(), Some(10000.0));
        // Row 7: exactly the reference's headers for the variant.
        let row7: Vec<String> = wb["row7"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|v| v.as_str().unwrap_or_default().to_owned())
            .collect();
        assert_eq!(row7, reference_columns(variant), "{variant}");
        // The data: open (1 row), ongoing (2), completed (1), risk accepted (1).
        let rows = wb["rows"].as_array().cloned().unwrap_or_default();
        assert_eq!(rows.len(), 5, "{variant}: {rows:?}");
        let col = |name: &str| {
            row7.iter()
                .position(|h| h.trim() == name)
                .unwrap_or_else(|| panic!("{name} in {variant}"))
        };
        let at = |r: usize, name: &str| rows[r][col(name)].clone();
        let statuses: Vec<Value> = (0..5).map(|r| at(r, "POA&M Status")).collect();
        assert_eq!(
            statuses,
            [
                json!("Ongoing"),
                json!("Ongoing"),
                Value::Null,
                json!("Completed"),
                json!("Risk Accepted")
            ],
            "{variant}: the item columns only on an item's first row"
        );
        let descriptions: Vec<Value> = (0..5)
            .map(|r| at(r, "Control Vulnerability Description"))
            .collect();
        assert_eq!(
            descriptions,
            [
                json!("open: TLS 1.0 accepted"),
                json!("ongoing: TLS 1.0 accepted"),
                Value::Null,
                json!("completed: TLS 1.0 accepted"),
                json!("accepted: TLS 1.0 accepted")
            ]
        );
        let milestones: Vec<(Value, Value)> = (0..5)
            .map(|r| (at(r, "Milestone Description"), at(r, "Milestone Status")))
            .collect();
        assert_eq!(
            milestones,
            [
                (Value::Null, Value::Null),
                (json!("Disable TLS 1.0"), json!("Completed")),
                (json!("Rescan"), json!("Open")),
                (json!("Patch"), json!("Completed")),
                (Value::Null, Value::Null),
            ]
        );
        assert_eq!(at(1, "Milestone Status Comments"), "Disable TLS 1.0 notes");
        // Dates: real dates, formatted mm/dd/yyyy.
        assert_eq!(
            at(0, "POA&M Scheduled Completion Date"),
            real_date(days(60))
        );
        assert_eq!(
            at(1, "Milestone Scheduled Completion Date"),
            real_date(days(10))
        );
        assert_eq!(at(1, "Milestone Completion Date"), real_date(days(-2)));
        assert_eq!(at(2, "Milestone Completion Date"), Value::Null);
        assert_eq!(at(3, "POA&M Completion Date"), real_date(days(-1)));
        assert_eq!(
            at(4, "POA&M Scheduled Completion Date"),
            Value::Null,
            "risk accepted: no scheduled date"
        );
        // Mapped words and the other item columns.
        assert_eq!(at(0, "Raw Severity"), "High");
        assert_eq!(at(0, "Likelihood"), "High");
        assert_eq!(at(0, "Impact"), "Moderate");
        assert_eq!(at(0, "Residual Risk Level"), "Moderate");
        assert_eq!(at(0, "Identification Source"), "Vulnerability Management");
        assert_eq!(at(0, "Controls / APs"), "SC-8(1); AC-2");
        assert_eq!(at(0, "Security Checks"), "plugin-open");
        assert_eq!(
            at(0, "Office/Org"),
            "NAVWAR, Dana Whitfield, dana@example.org"
        );
        assert_eq!(at(0, "Resources Required"), "Two engineer-days");
        assert_eq!(at(0, "POA&M Item ID"), Value::Null, "eMASS assigns it");
        // List validations on the enumerated columns.
        let lists: Vec<String> = wb["lists"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect();
        assert!(
            lists.contains(
                &"F8=\"Completed,Ongoing,Not Applicable,Archived,Risk Accepted\"".to_owned()
            ),
            "{lists:?}"
        );
        assert!(
            lists.contains(&"L8=\"Open,In Progress,Delayed,Completed,Archived\"".to_owned()),
            "{lists:?}"
        );
        assert!(
            lists.contains(&"U8=\"Very Low,Low,Moderate,High,Very High\"".to_owned()),
            "{lists:?}"
        );
        let level_lists = lists
            .iter()
            .filter(|l| l.ends_with("\"Very Low,Low,Moderate,High,Very High\""))
            .count();
        assert_eq!(
            level_lists,
            match variant {
                "navy" => 7,
                _ => 6,
            },
            "{variant}: {lists:?}"
        );
    }
}
both!(the_emass_template_comes_in_each_variant);

fn the_emass_csv_has_the_same_columns(app: &TestApp) {
    let (sid, _) = emass_system(app);
    let viewer = app.token_as(SUB, &[Role::Viewer]);
    let (status, headers, body) = app.get_bytes(
        &format!("/v1/systems/{sid}/export?format=emass&as=csv&variant=marine"),
        &viewer,
    );
    assert_eq!(status, 200);
    assert_eq!(
        headers.get("content-type").map(String::as_str),
        Some("text/csv; charset=utf-8")
    );
    assert_eq!(
        headers.get("poam-emass-refusals").map(String::as_str),
        Some("1")
    );
    let text = String::from_utf8(body).unwrap_or_default();
    let header = poam_domain::exchange::emass::MARINE_COLUMNS.join(",");
    assert!(text.starts_with(&format!("\u{feff}{header}\r\n")), "{text}");
    let lines: Vec<&str> = text.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.len(), 6, "the header and five rows: {text}");
    assert!(
        lines[2].starts_with(&format!(
            ",ongoing: TLS 1.0 accepted,SC-8(1); AC-2,plugin-ongoing,Ongoing,{},,,,Disable TLS 1.0,Completed,Disable TLS 1.0 notes,{},{}",
            us(&days(60)),
            us(&days(10)),
            us(&days(-2))
        )),
        "{}",
        lines[2]
    );
    assert!(
        lines[3].starts_with(",,,,,,,,,Rescan,Open,Rescan notes,"),
        "the second milestone row only has milestone columns: {}",
        lines[3]
    );
    // The header fields are the system's: a merge patch changes one and keeps the others.
    let admin = app.admin();
    let patched = app
        .patch(
            &format!("/v1/systems/{sid}"),
            &admin,
            &json!({"emass": {"system_type": "IS Enclave", "poc": {"name": "Lee Poc", "phone": "555-0199"}}}),
            None,
        )
        .expect(200);
    assert_eq!(
        patched.body["emass"],
        json!({"ccsafa": "NAVY", "it_registration": "DITPR-1234", "system_type": "IS Enclave",
               "omb_project_id": "007-000001234", "security_costs": 10000.0,
               "poc": {"name": "Lee Poc", "email": null, "phone": "555-0199"}})
    );
    app.patch(
        &format!("/v1/systems/{sid}"),
        &admin,
        &json!({"emass": {"security_costs": -1, "omb": "x"}}),
        None,
    )
    .problem(422, "validation_failed");
    // A description that looks like a formula is defused.
    let items = app
        .get(&format!("/v1/systems/{sid}/items?limit=10"), &admin)
        .expect(200);
    let first = items.body["items"][0].clone();
    app.patch(
        &format!("/v1/items/{}", id(&first)),
        &admin,
        &json!({"description": "=HYPERLINK(\"http://x\")"}),
        None,
    )
    .expect(200);
    let (_, _, body) = app.get_bytes(
        &format!("/v1/systems/{sid}/export?format=emass&as=csv"),
        &viewer,
    );
    let text = String::from_utf8(body).unwrap_or_default();
    assert!(text.contains("\"'=HYPERLINK(\"\"http://x\"\")\""), "{text}");
}
both!(the_emass_csv_has_the_same_columns);

fn the_dry_run_and_strict_name_what_emass_would_refuse(app: &TestApp) {
    let (sid, display) = emass_system(app);
    let viewer = app.token_as(SUB, &[Role::Viewer]);
    let admin = app.admin();
    let exports = |app: &TestApp| {
        app.get(&format!("/v1/systems/{sid}/events?resource=export"), &admin)
            .expect(200)
            .body["items"]
            .as_array()
            .map_or(0, Vec::len)
    };
    let before = exports(app);
    let dry = app
        .get(
            &format!("/v1/systems/{sid}/export?format=emass&dry_run=true&variant=army"),
            &viewer,
        )
        .expect(200);
    assert_eq!(dry.body["variant"], "army");
    assert_eq!(dry.body["items"], 4);
    assert_eq!(dry.body["rows"], 5);
    assert_eq!(dry.body["refused"], 1, "{}", dry.body);
    assert_eq!(dry.body["refusals"][0]["display_id"], display[0].as_str());
    assert_eq!(dry.body["refusals"][0]["emass_status"], "Ongoing");
    let rules: Vec<&str> = dry.body["refusals"][0]["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f["rule"].as_str())
        .collect();
    assert_eq!(rules, ["emass.milestone_required"], "{}", dry.body);
    assert_eq!(dry.body["by_rule"], json!({"emass.milestone_required": 1}));
    assert_eq!(dry.body["truncated"], false);
    // A risk-accepted item with a scheduled date and a completed item with an open milestone.
    let items = app
        .get(&format!("/v1/systems/{sid}/items?limit=10"), &admin)
        .expect(200);
    let completed = items.body["items"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|i| i["status"] == "completed")
        .map(id)
        .unwrap_or_default();
    app.post(
        &format!("/v1/items/{completed}/milestones"),
        &admin,
        &json!({"title": "Late step", "due_on": days(20)}),
    )
    .expect(201);
    let dry = app
        .get(
            &format!("/v1/systems/{sid}/export?format=emass&dry_run=true"),
            &viewer,
        )
        .expect(200);
    assert_eq!(dry.body["refused"], 2, "{}", dry.body);
    assert_eq!(dry.body["refusals"][1]["display_id"], display[2].as_str());
    assert_eq!(
        dry.body["refusals"][1]["findings"][0]["rule"],
        "emass.completed_milestones_open"
    );
    // Strict: refused with the items and their rules; nothing written, no export recorded.
    let refused = app
        .get(
            &format!("/v1/systems/{sid}/export?format=emass&strict=true"),
            &viewer,
        )
        .problem(422, "emass_refused");
    let codes = crate::harness::codes(&refused.body);
    assert_eq!(
        codes,
        [
            "emass.milestone_required",
            "emass.completed_milestones_open"
        ],
        "{}",
        refused.body
    );
    let pointers = refused.pointers();
    assert!(
        pointers[0].starts_with(&format!("/items/{}", display[0])),
        "{pointers:?}"
    );
    assert_eq!(
        exports(app),
        before,
        "neither the dry run nor strict record an export"
    );
    // Without strict the workbook is written, and the count is in the header.
    let (status, headers, _) =
        app.get_bytes(&format!("/v1/systems/{sid}/export?format=emass"), &viewer);
    assert_eq!(status, 200);
    assert_eq!(
        headers.get("poam-emass-refusals").map(String::as_str),
        Some("2")
    );
    assert_eq!(exports(app), before + 1);
    // The eMASS parameters belong to the eMASS format; an unknown variant is refused.
    app.get(
        &format!("/v1/systems/{sid}/export?format=xlsx&variant=army"),
        &viewer,
    )
    .problem(400, "invalid_query");
    app.get(
        &format!("/v1/systems/{sid}/export?format=json&strict=true"),
        &viewer,
    )
    .problem(400, "invalid_query");
    app.get(
        &format!("/v1/systems/{sid}/export?format=emass&variant=airforce"),
        &viewer,
    )
    .problem(400, "invalid_query");
    // Unauthenticated: no.
    app.request(
        "GET",
        &format!("/v1/systems/{sid}/export?format=emass"),
        None,
        &[],
        None,
    )
    .problem(401, "missing_token");
}
both!(the_dry_run_and_strict_name_what_emass_would_refuse);

#[test]
fn the_banner_comes_from_configuration() {
    let banner = "***** UNCLASSIFIED//FOR OFFICIAL USE ONLY *****";
    let Some(app) = TestApp::spawn_with(
        crate::harness::Backend::Sqlite,
        &[("POAM_CLASSIFICATION_BANNER", banner)],
    ) else {
        return;
    };
    let sid = app.system("Banner");
    let (status, headers, body) = app.get_bytes(
        &format!("/v1/systems/{sid}/export?format=emass&variant=army"),
        &app.admin(),
    );
    assert_eq!(status, 200);
    assert_eq!(
        headers.get("poam-emass-refusals").map(String::as_str),
        Some("0"),
        "no items, nothing refused"
    );
    let Some(py) = python_tools() else { return };
    let out = python_check(&py, READ, &save(&app, "banner.xlsx", &body));
    let wb: Value = serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(wb["banner"], banner);
    assert_eq!(wb["rows"], json!([]), "no data rows");
    assert_eq!(wb["row7"].as_array().map(Vec::len), Some(40));
}
