//! Spreadsheets out: the FedRAMP template v3.0 layout (`template=v3`), the DCSA/NISP template
//! (`format=nisp`), the NISP fields they read (system `dss_uid` and `cws_labels`, item
//! `cws_code`) and the `dss_determination` review. Workbooks are opened with openpyxl.

use crate::both;
use crate::harness::{id, python_check, python_tools, TestApp};
use poam_domain::exchange::{fedramp_v3, nisp};
use poam_domain::Role;
use serde_json::{json, Value};

fn save(app: &TestApp, name: &str, body: &[u8]) -> std::path::PathBuf {
    let path = app.dir.join(name);
    std::fs::write(&path, body).unwrap_or_else(|e| panic!("{e}"));
    path
}

/// Prints every non-empty cell of every sheet as JSON: {sheet: {"B3": value, ...}}, dates as
/// `date:YYYY-MM-DD`.
const CELLS: &str = r#"
import sys, json, datetime, openpyxl
wb = openpyxl.load_workbook(sys.argv[1])
out = {"_sheets": wb.sheetnames}
for ws in wb.worksheets:
    cells = {}
    for row in ws.iter_rows():
        for c in row:
            v = c.value
            if v is None:
                continue
            if isinstance(v, datetime.datetime):
                v = "date:" + v.date().isoformat()
            cells[c.coordinate] = v
    out[ws.title] = cells
print(json.dumps(out))
"#;

/// The workbook's cells, or None without the Python checkers.
fn workbook_cells(app: &TestApp, name: &str, body: &[u8]) -> Option<Value> {
    let py = python_tools()?;
    let out = python_check(&py, CELLS, &save(app, name, body));
    Some(serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}")))
}

fn col(n: usize) -> String {
    let mut s = Vec::new();
    let mut n = n + 1;
    while n > 0 {
        s.push(b'A' + ((n - 1) % 26) as u8);
        n = (n - 1) / 26;
    }
    s.reverse();
    String::from_utf8_lossy(&s).into_owned()
}

fn today() -> String {
    chrono::Utc::now().date_naive().to_string()
}

fn us_date(iso: &str) -> String {
    let d: chrono::NaiveDate = iso.parse().unwrap_or_default();
    d.format("%m/%d/%Y").to_string()
}

fn v3_workbook_has_the_v3_layout(app: &TestApp) {
    let admin = app.admin();
    let sid = app.system_in("Payroll", "fedramp");
    app.patch(
        &format!("/v1/systems/{sid}"),
        &admin,
        &json!({"organization": "Acme Federal", "impact_level": "moderate"}),
        None,
    )
    .expect(200);
    let item = app
        .item(
            &sid,
            json!({
                "title": "TLS 1.0 on the load balancer",
                "controls": ["SC-8(1)"],
                "cves": ["CVE-2011-3389"],
                "source": {"kind": "scan", "detector": "Nessus", "identifier": "104743"},
                "remediation_plan": "Disable TLS below 1.2.",
                "comments": "=HYPERLINK(\"http://x\")",
            }),
        )
        .expect(201);
    let iid = id(&item.body);
    let display = item.body["display_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let due = item.body["scheduled_completion"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    app.milestone(&iid, "2026-10-20");

    let auditor = app.token(&[Role::Auditor], &[]);
    let (status, headers, body) = app.get_bytes(
        &format!("/v1/systems/{sid}/export?format=xlsx&template=v3"),
        &auditor,
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert!(headers
        .get("content-disposition")
        .is_some_and(|d| d.contains("-v3.xlsx")));
    if let Some(wb) = workbook_cells(app, "v3.xlsx", &body) {
        assert_eq!(
            wb["_sheets"],
            json!([
                "Open POA&M Items",
                "Closed POA&M Items",
                "Configuration Findings",
                "PL-2 Findings"
            ])
        );
        let open = &wb["Open POA&M Items"];
        // The header block in B1:E1, its values under it.
        for (i, label) in fedramp_v3::HEADER_LABELS.iter().enumerate() {
            assert_eq!(open[format!("{}1", col(1 + i))], *label, "{open}");
        }
        assert_eq!(open["B2"], "Acme Federal");
        assert_eq!(open["C2"], "Payroll");
        assert_eq!(open["D2"], "Moderate");
        assert_eq!(open["E2"], format!("date:{}", today()));
        // The column headers in row 3, B to AB; column A labels rows 4 to 6.
        for (i, label) in fedramp_v3::OPEN_COLUMNS.iter().enumerate() {
            assert_eq!(open[format!("{}3", col(1 + i))], *label);
        }
        assert_eq!(open["AB3"], "CVE");
        assert_eq!(open["K3"], "Remediation Plan");
        assert_eq!(open["A4"], "Guidance");
        assert_eq!(open["A5"], "Examples");
        assert_eq!(open["A6"], "Mandatory or Situational");
        assert!(open.get("A3").is_none() && open.get("AC3").is_none());
        // The item in row 7, each value in its column; dates are real dates.
        assert_eq!(open["B7"], display.as_str());
        assert_eq!(open["C7"], "SC-8(1)");
        assert_eq!(open["D7"], "TLS 1.0 on the load balancer");
        assert_eq!(open["F7"], "Nessus");
        assert_eq!(open["G7"], "104743");
        let plan = open["K7"].as_str().unwrap_or_default();
        assert!(
            plan.starts_with("Disable TLS below 1.2.\n\nMilestones:\n(1) 10/20/2026: Fix it"),
            "the milestones move into the remediation plan: {plan}"
        );
        assert_eq!(open["L7"], "date:2026-10-01");
        assert_eq!(open["M7"], format!("date:{due}"));
        assert_eq!(open["R7"], "High");
        assert_eq!(
            open["Y7"], "=HYPERLINK(\"http://x\")",
            "text that looks like a formula stays text"
        );
        assert_eq!(open["AB7"], "CVE-2011-3389");
        assert!(open.get("B8").is_none());
        // Closed and Configuration Findings: the header in row 2, from column B.
        for sheet in ["Closed POA&M Items", "Configuration Findings"] {
            let s = &wb[sheet];
            for (i, label) in fedramp_v3::CLOSED_COLUMNS.iter().enumerate() {
                assert_eq!(s[format!("{}2", col(1 + i))], *label, "{sheet}");
            }
            assert_eq!(s["K2"], "Overall Remediation Plan");
            assert!(s.get("B1").is_none() && s.get("B3").is_none());
        }
        assert_eq!(wb["PL-2 Findings"]["B2"], "Deficiency ID");
    }

    // The CSV of v3: its columns, the same values.
    let (status, _, csv) = app.get_bytes(
        &format!("/v1/systems/{sid}/export?format=csv&template=v3"),
        &auditor,
    );
    assert_eq!(status, 200);
    let text = String::from_utf8(csv).unwrap_or_default();
    let header = fedramp_v3::OPEN_COLUMNS.join(",");
    assert!(text.starts_with(&format!("\u{feff}{header}\r\n")), "{text}");
    assert!(text.contains(&display));
    assert!(text.contains("'=HYPERLINK"), "CSV keeps its formula guard");
    // Rev5 stays the default; `template` means nothing to other formats.
    let (_, _, rev5) = app.get_bytes(&format!("/v1/systems/{sid}/export?format=csv"), &auditor);
    let rev5 = String::from_utf8(rev5).unwrap_or_default();
    assert!(rev5.starts_with(&format!(
        "\u{feff}{}\r\n",
        poam_domain::exchange::fedramp::COLUMNS.join(",")
    )));
    app.get(
        &format!("/v1/systems/{sid}/export?format=json&template=v3"),
        &auditor,
    )
    .problem(400, "invalid_query");
    app.get(
        &format!("/v1/systems/{sid}/export?format=xlsx&template=v4"),
        &auditor,
    )
    .problem(400, "invalid_query");
}
both!(v3_workbook_has_the_v3_layout);

/// A NISP system: header fields, one item with a C/W/S code, its approval and DSS's
/// determination, a quarterly review of the POA&M. Returns (system, item, display id, due).
fn nisp_system(app: &TestApp) -> (String, String, String, String) {
    let admin = app.admin();
    let sid = app.system("Classified LAN");
    app.patch(
        &format!("/v1/systems/{sid}"),
        &admin,
        &json!({
            "organization": "Acme Defense Inc.",
            "cage_codes": ["1ABC2"],
            "dss_uid": "UID-000123",
            "cws_labels": {"W": "Workstation", "S": "Server"},
            "deadline_policy": {"critical": 30, "high": 30, "moderate": 90, "low": 180},
            "contacts": {
                "issm": {"name": "Morgan Reyes", "phone": "+1 555 0100"},
                "alternate_issm": {"name": "Lee Park", "phone": "+1 555 0101"}
            }
        }),
        None,
    )
    .expect(200);
    let item = app
        .item(
            &sid,
            json!({
                "title": "Shutdown without authentication",
                "description": "The workstation can be shut down without logging in.",
                "cws_code": "W",
                "remediation_plan": "Require authentication before shutdown.",
            }),
        )
        .expect(201);
    let iid = id(&item.body);
    let display = item.body["display_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let due = item.body["scheduled_completion"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    app.milestone(&iid, "2026-10-20");
    let approver = app.token_as("checker@example.org", &[Role::Approver]);
    app.post(
        &format!("/v1/items/{iid}/reviews"),
        &approver,
        &json!({"kind": "approval", "decision": "approved", "notes": "Plan accepted"}),
    )
    .expect(201);
    app.post(
        &format!("/v1/items/{iid}/reviews"),
        &approver,
        &json!({"kind": "dss_determination", "decision": "approved",
                "determination": "closed", "determined_on": "2026-11-20"}),
    )
    .expect(201);
    let editor = app.token_as("doer@example.org", &[Role::Editor]);
    app.post(
        &format!("/v1/systems/{sid}/reviews"),
        &editor,
        &json!({"kind": "periodic", "decision": "noted", "notes": "Quarterly review: no changes"}),
    )
    .expect(201);
    (sid, iid, display, due)
}

fn nisp_export_has_the_seed_header_and_columns(app: &TestApp) {
    let (sid, _, display, due) = nisp_system(app);
    let auditor = app.token(&[Role::Auditor], &[]);
    let (status, headers, body) =
        app.get_bytes(&format!("/v1/systems/{sid}/export?format=nisp"), &auditor);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(
        headers.get("content-type").map(String::as_str),
        Some("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    );
    if let Some(wb) = workbook_cells(app, "nisp.xlsx", &body) {
        assert_eq!(wb["_sheets"], json!(["POA&M"]));
        let s = &wb["POA&M"];
        // The seed's header block, column A, values in B.
        let expected = [
            ("Company Name", json!("Acme Defense Inc.")),
            ("CAGE Code", json!("1ABC2")),
            ("DSS UID", json!("UID-000123")),
            ("ISSM / A-ISSM Names", json!("Morgan Reyes / Lee Park")),
            ("ISSM Phone Numbers", json!("+1 555 0100 / +1 555 0101")),
            ("Last Quarterly Review", json!(format!("date:{}", today()))),
        ];
        for (row, (label, value)) in expected.iter().enumerate() {
            assert_eq!(s[format!("A{}", row + 1)], *label, "{s}");
            assert_eq!(s[format!("B{}", row + 1)], *value, "{label}");
        }
        // The seed's columns in its order (row 8), then the NISP details.
        for (i, label) in nisp::COLUMNS.iter().enumerate() {
            assert_eq!(s[format!("{}8", col(i))], *label);
        }
        assert_eq!(s["A8"], "Item Number");
        assert_eq!(s["I8"], "Risk Level (Low/Medium/High)");
        // The item's values in row 9.
        assert_eq!(s["A9"], display.as_str());
        assert_eq!(
            s["B9"],
            "Shutdown without authentication\nThe workstation can be shut down without logging in."
        );
        assert_eq!(s["C9"], "W");
        let mitigation = s["D9"].as_str().unwrap_or_default();
        assert!(
            mitigation.starts_with(
                "Require authentication before shutdown.\n\nMilestones:\n(1) 10/20/2026: Fix it ["
            ),
            "{mitigation}"
        );
        assert_eq!(s["E9"], format!("date:{due}"));
        let approval = s["F9"].as_str().unwrap_or_default();
        assert_eq!(
            approval,
            format!("Approved by checker@example.org on {}", us_date(&today()))
        );
        assert_eq!(s["G9"], "Open");
        assert_eq!(s["H9"], "11/20/2026 Closed");
        assert_eq!(s["I9"], "High");
        assert_eq!(
            s["J9"], "Delayed",
            "the milestone of 2026-10-20 is past due"
        );
        assert_eq!(s["K9"], 0);
        assert_eq!(s["L9"], "custom:high:30d");
        assert_eq!(s["M9"], "Workstation");
        assert!(s.get("A10").is_none());
    }
    // The CSV: the header block, a blank line, the columns, the item.
    let (status, headers, csv) = app.get_bytes(
        &format!("/v1/systems/{sid}/export?format=nisp&as=csv"),
        &auditor,
    );
    assert_eq!(status, 200);
    assert_eq!(
        headers.get("content-type").map(String::as_str),
        Some("text/csv; charset=utf-8")
    );
    let text = String::from_utf8(csv).unwrap_or_default();
    assert!(
        text.starts_with(
            "\u{feff}Company Name,Acme Defense Inc.\r\nCAGE Code,1ABC2\r\nDSS UID,UID-000123\r\n"
        ),
        "{text}"
    );
    assert!(text.contains(&format!("\r\n\r\n{}\r\n", nisp::COLUMNS.join(","))));
    assert!(text.contains(&format!("{display},")));
    assert!(text.contains(",11/20/2026 Closed,High,Delayed,0,custom:high:30d,Workstation\r\n"));
    // `as` belongs to nisp; `sheet` does not.
    app.get(
        &format!("/v1/systems/{sid}/export?format=xlsx&as=csv"),
        &auditor,
    )
    .problem(400, "invalid_query");
    app.get(
        &format!("/v1/systems/{sid}/export?format=nisp&sheet=closed"),
        &auditor,
    )
    .problem(400, "invalid_query");
}
both!(nisp_export_has_the_seed_header_and_columns);

fn nisp_fields_round_trip(app: &TestApp) {
    let admin = app.admin();
    let sid = app.system("NISP");
    let r = app
        .patch(
            &format!("/v1/systems/{sid}"),
            &admin,
            &json!({"dss_uid": "UID-42", "cws_labels": {"C": "Client"}}),
            None,
        )
        .expect(200);
    assert_eq!(r.body["dss_uid"], "UID-42");
    let got = app.get(&format!("/v1/systems/{sid}"), &admin).expect(200);
    assert_eq!(got.body["dss_uid"], "UID-42");
    assert_eq!(got.body["cws_labels"], json!({"C": "Client"}));
    app.patch(
        &format!("/v1/systems/{sid}"),
        &admin,
        &json!({"cws_labels": {"TOO-LONG-A-CODE-FOR-CWS": "x"}}),
        None,
    )
    .problem(422, "validation_failed");

    let item = app.item(&sid, json!({"cws_code": "S"})).expect(201);
    let iid = id(&item.body);
    assert_eq!(item.body["cws_code"], "S");
    let r = app
        .patch(
            &format!("/v1/items/{iid}"),
            &admin,
            &json!({"cws_code": "C"}),
            None,
        )
        .expect(200);
    assert_eq!(r.body["cws_code"], "C");
    assert_eq!(
        app.get(&format!("/v1/items/{iid}"), &admin).body["cws_code"],
        "C"
    );
    app.patch(
        &format!("/v1/items/{iid}"),
        &admin,
        &json!({"cws_code": ""}),
        None,
    )
    .problem(422, "validation_failed");
}
both!(nisp_fields_round_trip);

fn dss_determination_is_an_approvers_review(app: &TestApp) {
    let sid = app.system("NISP reviews");
    let iid = id(&app.item(&sid, json!({})).expect(201).body);
    let body = json!({"kind": "dss_determination", "decision": "approved",
                      "determination": "open", "determined_on": "2026-11-02"});
    let editor = app.token_as("doer@example.org", &[Role::Editor]);
    app.post(&format!("/v1/items/{iid}/reviews"), &editor, &body)
        .problem(403, "forbidden");
    let approver = app.token_as("checker@example.org", &[Role::Approver]);
    let r = app
        .post(
            &format!("/v1/items/{iid}/reviews"),
            &approver,
            &json!({"kind": "dss_determination", "decision": "approved"}),
        )
        .expect(422);
    let mut codes: Vec<String> = crate::harness::codes(&r.body);
    codes.sort();
    assert_eq!(codes, ["determination_required", "determined_on_required"]);
    let r = app
        .post(&format!("/v1/items/{iid}/reviews"), &approver, &body)
        .expect(201);
    assert_eq!(r.body["kind"], "dss_determination");
    assert_eq!(r.body["determination"], "open");
    assert_eq!(r.body["determined_on"], "2026-11-02");
    assert_eq!(r.body["reviewer"], "checker@example.org");
    // A correction supersedes it; both stay in the item's reviews.
    let first = id(&r.body);
    let corrected = json!({"kind": "dss_determination", "decision": "approved",
                           "determination": "closed", "determined_on": "2026-11-03",
                           "supersedes": first});
    app.post(&format!("/v1/items/{iid}/reviews"), &approver, &corrected)
        .expect(201);
    let list = app
        .get(&format!("/v1/items/{iid}/reviews"), &approver)
        .expect(200);
    let kinds: Vec<(&str, &str)> = list.body["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            (
                r["determination"].as_str().unwrap_or_default(),
                r["determined_on"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(kinds, [("closed", "2026-11-03"), ("open", "2026-11-02")]);
    // Other kinds carry no determination; a determination on the POA&M as a whole is refused.
    app.post(
        &format!("/v1/items/{iid}/reviews"),
        &approver,
        &json!({"kind": "approval", "decision": "approved", "determination": "open"}),
    )
    .problem(422, "validation_failed");
    app.post(&format!("/v1/systems/{sid}/reviews"), &approver, &body)
        .problem(422, "validation_failed");
}
both!(dss_determination_is_an_approvers_review);
