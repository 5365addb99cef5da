//! Spreadsheet imports: the FedRAMP template (Rev4 hand-made, and this service's own Rev5
//! export round-tripped) and the eMASS template (gen-2 hand-made), written with openpyxl from
//! the references' column lists; idempotent re-imports, updates recorded with the file's name
//! and SHA-256, statuses only through an admin's migration, and every bad input refused with
//! nothing stored.

use crate::both;
use crate::harness::{days, minimal_item, python_tools, TestApp};
use poam_domain::Role;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

/// Writes a workbook from a JSON spec: `{"sheets": [{"name", "rows": [[cell, …], …]}]}`, a
/// cell being text, a number, null, `{"date": "YYYY-MM-DD"}` or `{"formula": "=…"}`.
const WRITE: &str = r#"
import sys, json, datetime, openpyxl
spec = json.load(open(sys.argv[1]))
wb = openpyxl.Workbook()
wb.remove(wb.active)
for sh in spec["sheets"]:
    ws = wb.create_sheet(sh["name"])
    for r, row in enumerate(sh["rows"], start=1):
        for c, v in enumerate(row, start=1):
            if v is None or v == "":
                continue
            if isinstance(v, dict) and "date" in v:
                cell = ws.cell(r, c, datetime.datetime.strptime(v["date"], "%Y-%m-%d"))
                cell.number_format = "mm/dd/yyyy"
            elif isinstance(v, dict) and "formula" in v:
                ws.cell(r, c, v["formula"])
            else:
                ws.cell(r, c).value = v
                if isinstance(v, str):
                    ws.cell(r, c).data_type = "s"
wb.save(sys.argv[2])
"#;

/// Every sheet's cell values as JSON (dates as `YYYY-MM-DD`).
const DUMP: &str = r#"
import sys, json, datetime, openpyxl
wb = openpyxl.load_workbook(sys.argv[1])
out = {}
for ws in wb.worksheets:
    rows = []
    for row in ws.iter_rows(values_only=True):
        rows.append([v.strftime("%Y-%m-%d") if isinstance(v, (datetime.datetime, datetime.date)) else v for v in row])
    while rows and all(v is None for v in rows[-1]):
        rows.pop()
    out[ws.title] = rows
print(json.dumps(out))
"#;

/// A zip whose one part declares 1,000 bytes and inflates to 20 MiB (its headers lie).
const LYING_ZIP: &str = r#"
import sys, struct, zipfile
with zipfile.ZipFile(sys.argv[2], "w", zipfile.ZIP_DEFLATED) as z:
    z.writestr("xl/worksheets/sheet1.xml", b"\0" * (20 << 20))
data = bytearray(open(sys.argv[2], "rb").read())
local = data.find(b"PK\x03\x04")
struct.pack_into("<I", data, local + 22, 1000)
central = data.find(b"PK\x01\x02")
struct.pack_into("<I", data, central + 24, 1000)
open(sys.argv[2], "wb").write(bytes(data))
"#;

/// A workbook with one cell at A1 and one at XFD1048576.
const SPARSE: &str = r#"
import sys, openpyxl
wb = openpyxl.Workbook()
ws = wb.active
ws["A1"] = "corner"
ws["XFD1048576"] = "far corner"
wb.save(sys.argv[2])
"#;

/// Makes an arbitrary zip (for the not-a-workbook and zip-bomb cases): `{"name": size}` entries
/// of zeros, deflated.
const ZIP: &str = r#"
import sys, json, zipfile
spec = json.load(open(sys.argv[1]))
with zipfile.ZipFile(sys.argv[2], "w", zipfile.ZIP_DEFLATED) as z:
    for name, size in spec.items():
        with z.open(name, "w", force_zip64=True) as f:
            chunk = b"\0" * (1 << 20)
            left = size
            while left > 0:
                f.write(chunk[: min(left, len(chunk))])
                left -= len(chunk)
"#;

fn temp(ext: &str) -> PathBuf {
    std::env::temp_dir().join(format!("poam-sheets-{}.{ext}", uuid::Uuid::new_v4()))
}

fn run(python: &Path, script: &str, args: &[&Path]) -> String {
    let out = std::process::Command::new(python)
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", python.display()));
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn build(python: &Path, script: &str, spec: &Value) -> Vec<u8> {
    let (input, output) = (temp("json"), temp("bin"));
    std::fs::write(&input, spec.to_string()).unwrap_or_else(|e| panic!("{e}"));
    run(python, script, &[&input, &output]);
    let bytes = std::fs::read(&output).unwrap_or_else(|e| panic!("{e}"));
    let _ = std::fs::remove_file(&input);
    let _ = std::fs::remove_file(&output);
    bytes
}

fn workbook(python: &Path, sheets: Value) -> Vec<u8> {
    build(python, WRITE, &json!({ "sheets": sheets }))
}

fn dump(python: &Path, bytes: &[u8]) -> Value {
    let path = temp("xlsx");
    std::fs::write(&path, bytes).unwrap_or_else(|e| panic!("{e}"));
    let out = run(python, DUMP, &[&path]);
    let _ = std::fs::remove_file(&path);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

fn sha(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn import(
    app: &TestApp,
    sid: &str,
    format: &str,
    query: &str,
    token: &str,
    name: &str,
    bytes: &[u8],
) -> crate::harness::Resp {
    let disposition = format!("attachment; filename=\"{name}\"");
    app.request(
        "POST",
        &format!("/v1/systems/{sid}/imports/{format}{query}"),
        Some(token),
        &[
            ("Content-Type", XLSX),
            ("Content-Disposition", &disposition),
        ],
        Some(bytes),
    )
}

fn statuses(r: &Value) -> Vec<String> {
    r["results"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|x| x["status"].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn items(app: &TestApp, sid: &str) -> Vec<Value> {
    app.get(&format!("/v1/systems/{sid}/items?limit=200"), &app.admin())
        .expect(200)
        .body["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn by_external<'a>(items: &'a [Value], ext: &str) -> &'a Value {
    items
        .iter()
        .find(|i| i["external_id"] == ext)
        .unwrap_or_else(|| panic!("no item {ext} in {items:?}"))
}

fn milestones(app: &TestApp, iid: &str) -> Vec<Value> {
    app.get(&format!("/v1/items/{iid}/milestones"), &app.admin())
        .expect(200)
        .body["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn import_events(app: &TestApp, sid: &str) -> Vec<Value> {
    app.get(
        &format!("/v1/systems/{sid}/events?resource=import"),
        &app.admin(),
    )
    .expect(200)
    .body["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// The FedRAMP Rev4 columns (A–AA), as DOMAIN.md and FedRAMP's Rev4 template list them.
const REV4: [&str; 27] = [
    "POAM ID",
    "Controls",
    "Weakness Name",
    "Weakness Description",
    "Weakness Detector Source",
    "Weakness Source Identifier",
    "Asset Identifier",
    "Point of Contact",
    "Resources Required",
    "Overall Remediation Plan",
    "Original Detection Date",
    "Scheduled Completion Date",
    "Planned Milestones",
    "Milestone Changes",
    "Status Date",
    "Vendor Dependency",
    "Last Vendor Check-in Date",
    "Vendor Dependent Product Name",
    "Original Risk Rating",
    "Adjusted Risk Rating",
    "Risk Adjustment",
    "False Positive",
    "Operational Requirement",
    "Deviation Rationale",
    "Supporting Documents",
    "Comments",
    "Auto-Approve",
];

fn us(date: &str) -> String {
    let d: chrono::NaiveDate = date.parse().unwrap_or_default();
    d.format("%m/%d/%Y").to_string()
}

/// A Rev4 row: column letter → value.
fn rev4_row(cells: &[(usize, Value)]) -> Value {
    let mut row = vec![Value::Null; REV4.len()];
    for (c, v) in cells {
        row[*c] = v.clone();
    }
    Value::Array(row)
}

/// A Rev4 workbook: the header block, a blank row, the header at row 4, two items from row 5.
fn rev4(python: &Path, first_title: &str, second_due: &str) -> Vec<u8> {
    let detected = days(-40);
    let header_block = json!(["CSP", "System Name", "Impact Level", "POAM Date"]);
    let block_values = json!(["Acme Cloud", "Acme Portal", "Moderate", us(&days(0))]);
    let one = rev4_row(&[
        (0, json!("V-1")),
        (1, json!("AC-2, SC-8(1)")),
        (2, json!(first_title)),
        (3, json!("Unprovisioned port left open on the firewall.")),
        (4, json!("Nessus")),
        (5, json!("12345")),
        (6, json!("fw-1.example.org, fw-2.example.org")),
        (7, json!("John Doe <john.doe@example.org>")),
        (9, json!("Close the port.")),
        (10, json!({"date": detected})),
        (11, json!(us(&days(60)))),
        (
            12,
            json!(format!(
                "(1) {}: Close the port\n(2) {}: Rescan\nCoordinate with the network team",
                us(&days(10)),
                us(&days(20))
            )),
        ),
        (
            13,
            json!(format!(
                "(2) Update {}: Rescan window moved by the vendor",
                us(second_due)
            )),
        ),
        (18, json!("High")),
        (20, json!("No")),
        (21, json!("No")),
        (22, json!("No")),
        (24, json!("scan.pdf")),
        (26, json!("No")),
    ]);
    let two = rev4_row(&[
        (0, json!("V-2")),
        (1, json!("CM-6")),
        (2, json!("Weak SSH ciphers")),
        (3, json!("SSH offers CBC ciphers.")),
        (4, json!("Assessment")),
        (10, json!(us(&detected))),
        (
            12,
            json!(format!("Implement hardened sshd_config {}", us(&days(15)))),
        ),
        (18, json!("Moderate")),
        (26, json!("No")),
    ]);
    workbook(
        python,
        json!([{
            "name": "Open POA&M Items",
            "rows": [header_block, block_values, [], REV4, one, two],
        }]),
    )
}

fn a_fedramp_rev4_workbook_imports_with_its_milestones_once(app: &TestApp) {
    let Some(python) = python_tools() else { return };
    let sid = app.system_in("Rev4", "fedramp");
    let editor = app.token_as("editor@example.org", &[Role::Editor]);
    let book = rev4(&python, "Open port on the firewall", &days(25));
    let r = import(app, &sid, "fedramp", "", &editor, "poam-rev4.xlsx", &book).expect(200);
    let body = &r.body;
    assert_eq!(statuses(body), ["created", "created"], "{body}");
    assert_eq!(body["layouts"], json!(["Open POA&M Items: fedramp rev4"]));
    assert_eq!(body["file"]["name"], "poam-rev4.xlsx");
    assert_eq!(body["file"]["sha256"], sha(&book));
    let first = &body["results"][0];
    assert_eq!(first["cell"], "Open POA&M Items!A5");
    assert_eq!(first["milestones"], 2);
    let kept = first["notes"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|n| n["code"] == "milestone_text_kept")
        .unwrap_or_else(|| panic!("the unparsed line is listed: {first}"));
    assert_eq!(kept["cell"], "Open POA&M Items!M5");
    assert!(kept["detail"]
        .as_str()
        .unwrap_or("")
        .contains("Coordinate with the network team"));
    let unmapped: Vec<&str> = body["unmapped_columns"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|u| u["header"].as_str())
        .collect();
    assert!(unmapped.contains(&"Supporting Documents"), "{unmapped:?}");
    assert!(unmapped.contains(&"Auto-Approve"), "{unmapped:?}");

    let all = items(app, &sid);
    let one = by_external(&all, "V-1");
    assert_eq!(one["title"], "Open port on the firewall");
    assert_eq!(one["controls"], json!(["AC-2", "SC-8(1)"]));
    assert_eq!(
        one["assets"],
        json!(["fw-1.example.org", "fw-2.example.org"])
    );
    assert_eq!(one["owner"]["email"], "john.doe@example.org");
    assert_eq!(one["source"]["detector"], "Nessus");
    assert_eq!(one["source"]["kind"], "scan");
    assert_eq!(one["detected_on"], days(-40));
    assert_eq!(one["scheduled_completion"], days(60));
    assert_eq!(one["status"], "open");
    assert!(one["comments"]
        .as_str()
        .unwrap_or("")
        .contains("Coordinate with the network team"));
    let ms = milestones(app, one["id"].as_str().unwrap_or(""));
    let got: Vec<(String, String)> = ms
        .iter()
        .map(|m| {
            (
                m["title"].as_str().unwrap_or("").to_owned(),
                m["due_on"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("Close the port".to_owned(), days(10)),
            ("Rescan".to_owned(), days(25))
        ]
    );
    assert_eq!(ms[1]["changes"][0]["from"], days(20));
    assert_eq!(ms[1]["changes"][0]["to"], days(25));
    let two = by_external(&all, "V-2");
    assert_eq!(two["risk_rating"], "moderate");
    let ms = milestones(app, two["id"].as_str().unwrap_or(""));
    assert_eq!(ms.len(), 1);
    assert_eq!(ms[0]["title"], "Implement hardened sshd_config");
    assert_eq!(ms[0]["due_on"], days(15));

    // The same workbook again: nothing changes.
    let again = import(app, &sid, "fedramp", "", &editor, "poam-rev4.xlsx", &book).expect(200);
    assert_eq!(
        statuses(&again.body),
        ["unchanged", "unchanged"],
        "{}",
        again.body
    );
    assert_eq!(items(app, &sid).len(), 2);

    // An updated workbook: the changed row is updated, and the history names the file.
    let v2 = rev4(&python, "Open port on the edge firewall", &days(30));
    let r = import(app, &sid, "fedramp", "", &editor, "poam-v2.xlsx", &v2).expect(200);
    assert_eq!(statuses(&r.body), ["updated", "unchanged"], "{}", r.body);
    let all = items(app, &sid);
    let one = by_external(&all, "V-1");
    assert_eq!(one["title"], "Open port on the edge firewall");
    let ms = milestones(app, one["id"].as_str().unwrap_or(""));
    assert_eq!(ms[1]["due_on"], days(30));
    let events = import_events(app, &sid);
    assert_eq!(events.len(), 3, "one import event per import");
    let last = &events[2];
    assert_eq!(last["action"], "imported");
    let snapshot = last["snapshot"].to_string();
    assert!(snapshot.contains("poam-v2.xlsx"), "{snapshot}");
    assert!(snapshot.contains(&sha(&v2)), "{snapshot}");
    assert_eq!(
        last["snapshot"]["counts"]["updated_items"],
        json!([one["display_id"]])
    );
    let history = app
        .get(
            &format!("/v1/items/{}/history", one["id"].as_str().unwrap_or("")),
            &app.admin(),
        )
        .expect(200);
    let text = history.body.to_string();
    assert!(
        text.contains("moved by the import of poam-v2.xlsx"),
        "the milestone move names the file: {text}"
    );

    // A retry with the same Idempotency-Key replays the answer and stores nothing more.
    let key = [
        ("Content-Type", XLSX),
        ("Idempotency-Key", "sheet-import-1"),
    ];
    let path = format!("/v1/systems/{sid}/imports/fedramp?filename=again.xlsx");
    let first = app.request("POST", &path, Some(&editor), &key, Some(&v2));
    assert_eq!(first.status, 200);
    let replay = app.request("POST", &path, Some(&editor), &key, Some(&v2));
    assert_eq!(replay.status, 200);
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    assert_eq!(replay.body, first.body);
    assert_eq!(import_events(app, &sid).len(), 4);
}
both!(a_fedramp_rev4_workbook_imports_with_its_milestones_once);

/// The eMASS gen-2 columns (B–AA), as the reference lists them (column A hidden and empty).
const GEN2: [&str; 27] = [
    "",
    "POA&M Item ID",
    "Control Vulnerability Description",
    "Controls / APs",
    "Office/Org",
    "Security Checks",
    "Resources Required",
    "Scheduled Completion Date",
    "Milestone ID",
    "Milestone with Completion Dates",
    "Milestone Changes",
    "Source Identifying Vulnerability ",
    "Status",
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

fn gen2_row(cells: &[(usize, Value)]) -> Value {
    let mut row = vec![Value::Null; GEN2.len()];
    for (c, v) in cells {
        row[*c] = v.clone();
    }
    Value::Array(row)
}

fn an_emass_gen2_workbook_imports_with_its_milestones(app: &TestApp) {
    let Some(python) = python_tools() else { return };
    let sid = app.system_in("Gen2", "emass");
    let editor = app.token_as("editor@example.org", &[Role::Editor]);
    let block = |label: &str, value: &str| json!([label, null, null, value]);
    let first = gen2_row(&[
        (1, json!("4711")),
        (2, json!("The web server accepts TLS 1.0.")),
        (3, json!("SC-8")),
        (4, json!("DoD, Jane Roe, 7035551212, jane.roe@example.mil")),
        (5, json!("SV-12345r1_rule")),
        (6, json!("Two engineer-days")),
        (7, json!({"date": days(60)})),
        (9, json!(format!("Implement Procedure A {}", us(&days(14))))),
        (11, json!("ACAS scan")),
        (12, json!("Ongoing")),
        (14, json!("High")),
        (15, json!("web-1 web-2")),
        (16, json!("WAF blocks legacy ciphers.")),
        (21, json!("Moderate")),
        (22, json!("High")),
        (25, json!("Disable TLS 1.0.")),
    ]);
    let second_milestone = gen2_row(&[(
        9,
        json!(format!("Rescan the web servers {}", us(&days(30)))),
    )]);
    let other = gen2_row(&[
        (2, json!("Audit logs are not reviewed weekly.")),
        (3, json!("AU-6")),
        (4, json!("DoD")),
        (5, json!("V-99999")),
        (6, json!("ISSO time")),
        (7, json!(us(&days(45)))),
        (9, json!(format!("Set up a weekly review {}", us(&days(7))))),
        (12, json!("Completed")),
        (14, json!("Low")),
    ]);
    let book = workbook(
        &python,
        json!([{
            "name": "POA&M",
            "rows": [
                ["***** CONTROLLED UNCLASSIFIED INFORMATION *****"],
                block("Date Exported:", &us(&days(0))),
                [],
                [],
                [],
                [],
                GEN2,
                first,
                second_milestone,
                other,
            ],
        }]),
    );
    let r = import(app, &sid, "emass", "", &editor, "emass.xlsx", &book).expect(200);
    let body = &r.body;
    assert_eq!(statuses(body), ["created", "created"], "{body}");
    assert_eq!(body["layouts"], json!(["POA&M: emass gen-2"]));
    assert_eq!(body["results"][0]["cell"], "POA&M!B8");
    assert_eq!(body["results"][0]["milestones"], 2);
    // The second item has no POA&M Item ID: its Security Checks are its key.
    assert_eq!(body["results"][1]["key"], "V-99999");
    assert_eq!(body["results"][1]["cell"], "POA&M!F10");
    // Without migrate, its Completed status is set aside, and the answer says so.
    let set_aside = body["results"][1]["notes"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|n| n["code"] == "status_not_imported")
        .unwrap_or_else(|| panic!("{body}"));
    assert_eq!(set_aside["cell"], "POA&M!M10");
    let all = items(app, &sid);
    let one = by_external(&all, "4711");
    assert_eq!(one["description"], "The web server accepts TLS 1.0.");
    assert_eq!(one["risk_rating"], "high");
    assert_eq!(one["likelihood"], "moderate");
    assert_eq!(one["assets"], json!(["web-1", "web-2"]));
    assert_eq!(one["owner"]["email"], "jane.roe@example.mil");
    assert_eq!(one["interim_mitigation"], "WAF blocks legacy ciphers.");
    let ms = milestones(app, one["id"].as_str().unwrap_or(""));
    let got: Vec<(Value, Value)> = ms
        .iter()
        .map(|m| (m["title"].clone(), m["due_on"].clone()))
        .collect();
    assert_eq!(
        got,
        [
            (json!("Implement Procedure A"), json!(days(14))),
            (json!("Rescan the web servers"), json!(days(30)))
        ]
    );
    let two = by_external(&all, "V-99999");
    assert_eq!(two["status"], "open");
    assert_eq!(milestones(app, two["id"].as_str().unwrap_or("")).len(), 1);
    let again = import(app, &sid, "emass", "", &editor, "emass.xlsx", &book).expect(200);
    assert_eq!(
        statuses(&again.body),
        ["unchanged", "unchanged"],
        "{}",
        again.body
    );
}
both!(an_emass_gen2_workbook_imports_with_its_milestones);

fn statuses_come_in_only_through_an_admins_migration(app: &TestApp) {
    let Some(python) = python_tools() else { return };
    let detected = days(-30);
    let row = |id: &str, status_date: &str, adjustment: &str| {
        rev4_row(&[
            (0, json!(id)),
            (2, json!(format!("Weakness {id}"))),
            (3, json!("Described.")),
            (10, json!(us(&detected))),
            (14, json!(us(status_date))),
            (18, json!("High")),
            (19, json!(if adjustment == "No" { "" } else { "Moderate" })),
            (20, json!(adjustment)),
            (23, json!("Compensating control in place.")),
        ])
    };
    let book = workbook(
        &python,
        json!([
            {"name": "Open POA&M Items", "rows": [REV4, row("O-1", &days(-1), "Yes")]},
            {"name": "Closed POA&M Items", "rows": [REV4, row("C-1", &days(-2), "No")]},
        ]),
    );
    let editor = app.token_as("editor@example.org", &[Role::Editor]);
    let sid = app.system_in("Statuses", "fedramp");
    // An editor may not migrate: refused whole, nothing stored.
    import(
        app,
        &sid,
        "fedramp",
        "?migrate=true",
        &editor,
        "s.xlsx",
        &book,
    )
    .problem(403, "migrate_needs_admin");
    assert!(items(app, &sid).is_empty());
    // Without migrate: the closed item starts open, the approved deviation comes in pending.
    let r = import(app, &sid, "fedramp", "", &editor, "s.xlsx", &book).expect(200);
    assert_eq!(statuses(&r.body), ["created", "created"], "{}", r.body);
    let notes = |i: usize| -> Vec<(String, String)> {
        r.body["results"][i]["notes"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|n| {
                (
                    n["code"].as_str().unwrap_or("").to_owned(),
                    n["cell"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect()
    };
    assert!(notes(0).contains(&(
        "deviation_pending".to_owned(),
        "Open POA&M Items!X2".to_owned()
    )));
    assert!(notes(1).contains(&(
        "status_not_imported".to_owned(),
        "Closed POA&M Items!O2".to_owned()
    )));
    let all = items(app, &sid);
    assert_eq!(by_external(&all, "C-1")["status"], "open");
    assert_eq!(by_external(&all, "O-1")["deviation"]["status"], "pending");
    // An admin's migration takes them as they stand.
    let fresh = app.system_in("Migrated", "fedramp");
    let r = import(
        app,
        &fresh,
        "fedramp",
        "?migrate=true",
        &app.admin(),
        "s.xlsx",
        &book,
    )
    .expect(200);
    assert_eq!(r.body["migrated"], true);
    let all = items(app, &fresh);
    let closed = by_external(&all, "C-1");
    assert_eq!(closed["status"], "closed");
    assert_eq!(closed["closed_on"], days(-2));
    assert_eq!(by_external(&all, "O-1")["deviation"]["status"], "approved");
    let events = import_events(app, &fresh);
    assert_eq!(events[0]["action"], "migrated");
}
both!(statuses_come_in_only_through_an_admins_migration);

fn the_services_fedramp_export_round_trips_through_an_import(app: &TestApp) {
    let Some(python) = python_tools() else { return };
    let admin = app.admin();
    let source = app.system_in("Round trip source", "fedramp");
    let rich = app
        .item(
            &source,
            json!({
                "title": "TLS 1.0 on the load balancer",
                "controls": ["SC-8(1)", "AC-2"],
                "cves": ["CVE-2011-3389"],
                "assets": ["lb-1.example.org", "lb-2.example.org"],
                "source": {"kind": "scan", "detector": "Nessus", "identifier": "104743"},
                "risk_rating": "high",
                "adjusted_risk_rating": "moderate",
                "risk_justification": "Compensating WAF rule.",
                "owner": {"name": "Dana Whitfield", "email": "dana@example.org"},
                "remediation_plan": "Disable TLS below 1.2.\nRescan.",
                "resources": {"description": "Two engineer-days", "estimated_cost": 1200.5, "hours": 16.0, "funded": true},
                "deviation": {"kind": "risk_adjustment", "rationale": "Compensating WAF rule."},
                "vendor_dependency": {"product": "Acme LB 9.2", "last_check_in": days(-3)},
                "comments": "Tracked weekly, \"quoted\", with commas.",
                "scheduled_completion": days(40),
            }),
        )
        .expect(201);
    let rich_id = rich.body["id"].as_str().unwrap_or("").to_owned();
    app.milestone(&rich_id, &days(10));
    let second = app.milestone(&rich_id, &days(20));
    app.patch(
        &format!("/v1/milestones/{second}"),
        &admin,
        &json!({"due_on": days(25), "change_reason": "Vendor patch slipped"}),
        None,
    );
    app.item(
        &source,
        json!({"title": "Pen test finding", "source": {"kind": "pen_test"}, "risk_rating": "low"}),
    )
    .expect(201);
    // A closed item, migrated in (no evidence: the template's Supporting Documents stay empty).
    let mut closed = minimal_item();
    closed["title"] = json!("Fixed weakness");
    closed["status"] = json!("closed");
    closed["completed_on"] = json!(days(-2));
    closed["closed_on"] = json!(days(-1));
    let bulk = app
        .post(
            &format!("/v1/systems/{source}/items/bulk?migrate=true"),
            &admin,
            &json!({ "items": [closed] }),
        )
        .expect(200);
    assert_eq!(bulk.body["summary"]["created"], 1, "{}", bulk.body);
    let (status, _, exported) =
        app.get_bytes(&format!("/v1/systems/{source}/export?format=xlsx"), &admin);
    assert_eq!(status, 200);
    let target = app.system_in("Round trip target", "fedramp");
    let r = import(
        app,
        &target,
        "fedramp",
        "?migrate=true",
        &admin,
        "export.xlsx",
        &exported,
    )
    .expect(200);
    assert_eq!(
        statuses(&r.body),
        ["created", "created", "created"],
        "{}",
        r.body
    );
    let (status, _, again) =
        app.get_bytes(&format!("/v1/systems/{target}/export?format=xlsx"), &admin);
    assert_eq!(status, 200);
    let (before, after) = (dump(&python, &exported), dump(&python, &again));
    assert!(
        before["Open POA&M Items"].as_array().map(Vec::len) == Some(3),
        "{before}"
    );
    assert_eq!(before, after, "the same rows after the round trip");
    // And once more into the same system: nothing changes.
    let r = import(
        app,
        &target,
        "fedramp",
        "?migrate=true",
        &admin,
        "export.xlsx",
        &again,
    )
    .expect(200);
    assert_eq!(
        statuses(&r.body),
        ["unchanged", "unchanged", "unchanged"],
        "{}",
        r.body
    );
    // FedRAMP's template v3.0 (column A's row labels, the header in row 3) reads too, into the
    // same items and milestones.
    let (status, _, v3) = app.get_bytes(
        &format!("/v1/systems/{source}/export?format=xlsx&template=v3"),
        &admin,
    );
    assert_eq!(status, 200);
    let v3_target = app.system_in("Round trip v3", "fedramp");
    let r = import(
        app,
        &v3_target,
        "fedramp",
        "?migrate=true",
        &admin,
        "v3.xlsx",
        &v3,
    )
    .expect(200);
    assert_eq!(
        statuses(&r.body),
        ["created", "created", "created"],
        "{}",
        r.body
    );
    let layouts = r.body["layouts"].to_string();
    assert!(
        layouts.contains("Open POA&M Items: fedramp v3.0"),
        "{layouts}"
    );
    let all = items(app, &v3_target);
    let first = by_external(&all, "POAM-0001");
    assert_eq!(first["title"], "TLS 1.0 on the load balancer");
    assert_eq!(
        first["assets"],
        json!(["lb-1.example.org", "lb-2.example.org"])
    );
    assert_eq!(by_external(&all, "POAM-0003")["status"], "closed");
    // v3 has no milestone columns: its Remediation Plan carries the milestones and their
    // changes, and they read back into milestones, so a v3 export of the imported system gives
    // the same rows.
    let v3_first = first["id"].as_str().unwrap_or("").to_owned();
    assert_eq!(milestones(app, &v3_first).len(), 2, "{first}");
    assert_eq!(first["remediation_plan"], "Disable TLS below 1.2.\nRescan.");
    let (status, _, v3_again) = app.get_bytes(
        &format!("/v1/systems/{v3_target}/export?format=xlsx&template=v3"),
        &admin,
    );
    assert_eq!(status, 200);
    // Below the header block (whose system name differs).
    let rows = |bytes: &[u8]| {
        dump(&python, bytes)["Open POA&M Items"]
            .as_array()
            .and_then(|rows| rows.get(2..))
            .map(<[Value]>::to_vec)
            .unwrap_or_default()
    };
    let before = rows(&v3);
    assert!(before.len() == 6, "{before:?}");
    assert_eq!(
        before,
        rows(&v3_again),
        "the same v3 rows after the round trip"
    );
    // The CSV of the open sheet reads too.
    let (_, _, csv) = app.get_bytes(&format!("/v1/systems/{source}/export?format=csv"), &admin);
    let csv_target = app.system_in("Round trip csv", "fedramp");
    let r = app
        .request(
            "POST",
            &format!("/v1/systems/{csv_target}/imports/fedramp?filename=open.csv"),
            Some(&admin),
            &[("Content-Type", "text/csv")],
            Some(&csv),
        )
        .expect(200);
    assert_eq!(statuses(&r.body), ["created", "created"], "{}", r.body);
}
both!(the_services_fedramp_export_round_trips_through_an_import);

fn bad_input_is_refused_whole_and_stores_nothing(app: &TestApp) {
    let Some(python) = python_tools() else { return };
    let sid = app.system_in("Bad input", "fedramp");
    let editor = app.token_as("editor@example.org", &[Role::Editor]);
    let good_row = rev4_row(&[
        (0, json!("V-1")),
        (2, json!("A weakness")),
        (3, json!("Described.")),
        (10, json!(us(&days(-5)))),
        (18, json!("Low")),
    ]);
    let send = |bytes: &[u8]| import(app, &sid, "fedramp", "", &editor, "bad.xlsx", bytes);
    // Not a workbook at all; a zip that is not a workbook.
    send(b"hello, not a workbook").problem(422, "not_a_workbook");
    let zip = build(&python, ZIP, &json!({"readme.txt": 10}));
    send(&zip).problem(422, "not_a_workbook");
    // A workbook without a recognisable header.
    let none = workbook(
        &python,
        json!([{"name": "Data", "rows": [["a", "b"], ["1", "2"]]}]),
    );
    send(&none).problem(422, "no_header_row");
    // A sheet whose cells span A1 to XFD1048576 is read cell by cell, never as a dense range.
    let sparse = build(&python, SPARSE, &json!({}));
    send(&sparse).problem(422, "no_header_row");
    // A formula: refused, the cell named.
    let mut formula = good_row.clone();
    formula[3] = json!({"formula": "=CONCATENATE(\"a\",\"b\")"});
    let book = workbook(
        &python,
        json!([{"name": "Open POA&M Items", "rows": [REV4, good_row, formula]}]),
    );
    let r = send(&book).problem(422, "formula_cell");
    assert_eq!(r.body["errors"][0]["cell"], "Open POA&M Items!D3");
    // A date that cannot be read: refused, the cell named.
    let mut date = good_row.clone();
    date[11] = json!("next spring");
    let book = workbook(
        &python,
        json!([{"name": "Open POA&M Items", "rows": [REV4, date]}]),
    );
    let r = send(&book).problem(422, "unparseable_date");
    assert_eq!(r.body["errors"][0]["cell"], "Open POA&M Items!L2");
    // A zip bomb: 300 MiB of zeros in a few hundred KiB.
    let bomb = build(
        &python,
        ZIP,
        &json!({"[Content_Types].xml": 100, "xl/worksheets/sheet1.xml": 300u64 << 20}),
    );
    assert!(bomb.len() < 2 << 20, "{} bytes", bomb.len());
    send(&bomb).problem(422, "decompressed_too_large");
    let liar = build(&python, LYING_ZIP, &json!({}));
    let r = send(&liar).problem(422, "decompressed_too_large");
    assert!(
        r.body["detail"].as_str().unwrap_or("").contains("declares"),
        "{}",
        r.body
    );
    // Another media type.
    app.request(
        "POST",
        &format!("/v1/systems/{sid}/imports/fedramp"),
        Some(&editor),
        &[("Content-Type", "application/json")],
        Some(b"{}"),
    )
    .problem(415, "unsupported_media_type");
    // Over 50 MiB.
    let huge = vec![0u8; (50 << 20) + 1];
    send(&huge).problem(413, "payload_too_large");
    assert!(items(app, &sid).is_empty(), "nothing stored");
    assert!(import_events(app, &sid).is_empty(), "no import recorded");
}
both!(bad_input_is_refused_whole_and_stores_nothing);

/// The size limit is the import limit of every import (`POAM_IMPORT_MAX_BYTES`), not a
/// constant of its own: set to 1 MiB, a body one byte over is refused, one at it is read.
#[test]
fn the_size_limit_follows_the_import_setting() {
    let Some(app) = TestApp::spawn_with(
        crate::harness::Backend::Sqlite,
        &[("POAM_IMPORT_MAX_BYTES", "1048576")],
    ) else {
        return;
    };
    let sid = app.system_in("Import limit", "fedramp");
    let admin = app.admin();
    let over = vec![0u8; (1 << 20) + 1];
    import(&app, &sid, "fedramp", "", &admin, "big.xlsx", &over).problem(413, "payload_too_large");
    let at = vec![0u8; 1 << 20];
    import(&app, &sid, "emass", "", &admin, "at.xlsx", &at).problem(422, "not_a_workbook");
    assert!(items(&app, &sid).is_empty(), "nothing stored");
}

/// From the column-header row on (the header block names the system, which differs).
fn from_header(sheet: &Value) -> Vec<Value> {
    let rows = sheet.as_array().cloned().unwrap_or_default();
    let at = rows
        .iter()
        .position(|r| {
            r.as_array()
                .is_some_and(|c| c.iter().any(|v| v == "POA&M Item ID"))
        })
        .unwrap_or_else(|| panic!("no header row in {sheet}"));
    rows[at..].to_vec()
}

fn the_services_emass_export_round_trips_in_each_variant(app: &TestApp) {
    let Some(python) = python_tools() else { return };
    let admin = app.admin();
    let source = app.system_in("eMASS round trip source", "emass");
    let rich = app
        .item(
            &source,
            json!({
                "external_id": "4711",
                "title": "TLS 1.0 on the web tier",
                "description": "The web tier accepts TLS 1.0 handshakes.",
                "controls": ["SC-8", "AC-17"],
                "cves": ["CVE-2011-3389"],
                "assets": ["web-1.example.mil", "web-2.example.mil"],
                "source": {"kind": "scan", "detector": "ACAS", "identifier": "SV-1r1_rule"},
                "likelihood": "moderate",
                "impact": "high",
                "risk_rating": "high",
                "adjusted_risk_rating": "moderate",
                "risk_justification": "WAF blocks legacy ciphers.",
                "interim_mitigation": "WAF blocks legacy ciphers.",
                "owner": {"name": "Jane Roe", "email": "jane.roe@example.mil"},
                "resources": {"description": "Two engineer-days", "estimated_cost": 1200.5, "hours": 16.0, "funded": true},
                "remediation_plan": "Disable TLS 1.0 and rescan.",
                "comments": "Tracked weekly.",
                "scheduled_completion": days(40),
            }),
        )
        .expect(201);
    let rich_id = rich.body["id"].as_str().unwrap_or("").to_owned();
    app.milestone(&rich_id, &days(10));
    app.milestone(&rich_id, &days(20));
    app.item(
        &source,
        json!({
            "title": "Audit logs not reviewed",
            "description": "Audit logs are not reviewed weekly.",
            "source": {"kind": "audit", "identifier": "AU-6-REVIEW"},
            "risk_rating": "low",
            "owner": {"name": "Sam Poe"},
            "resources": {"description": "ISSO time"},
        }),
    )
    .expect(201);
    let mut closed = minimal_item();
    closed["description"] = json!("Default credentials on the switch.");
    closed["source"] = json!({"kind": "assessment", "identifier": "SV-9r2_rule"});
    closed["resources"] = json!({"description": "One hour"});
    closed["comments"] = json!("Changed and verified.");
    closed["owner"] = json!({"name": "Ann Lee", "email": "ann.lee@example.mil"});
    closed["scheduled_completion"] = json!(days(-3));
    closed["status"] = json!("closed");
    closed["completed_on"] = json!(days(-2));
    closed["closed_on"] = json!(days(-2));
    let bulk = app
        .post(
            &format!("/v1/systems/{source}/items/bulk?migrate=true"),
            &admin,
            &json!({ "items": [closed] }),
        )
        .expect(200);
    assert_eq!(bulk.body["summary"]["created"], 1, "{}", bulk.body);
    for variant in ["navy", "army", "marine"] {
        let (status, _, exported) = app.get_bytes(
            &format!("/v1/systems/{source}/export?format=emass&variant={variant}"),
            &admin,
        );
        assert_eq!(status, 200, "{variant}");
        let target = app.system_in(&format!("eMASS round trip {variant}"), "emass");
        let r = import(
            app,
            &target,
            "emass",
            "?migrate=true",
            &admin,
            "emass.xlsx",
            &exported,
        )
        .expect(200);
        assert_eq!(
            statuses(&r.body),
            ["created", "created", "created"],
            "{variant}: {}",
            r.body
        );
        assert_eq!(r.body["results"][0]["milestones"], 2, "{variant}");
        let (status, _, again) = app.get_bytes(
            &format!("/v1/systems/{target}/export?format=emass&variant={variant}"),
            &admin,
        );
        assert_eq!(status, 200);
        let (before, after) = (dump(&python, &exported), dump(&python, &again));
        let (before, after) = (from_header(&before["POA&M"]), from_header(&after["POA&M"]));
        assert_eq!(
            before.len(),
            5,
            "{variant}: header, 2 + 1 + 1 rows: {before:?}"
        );
        assert_eq!(
            before, after,
            "{variant}: the same rows after the round trip"
        );
        let r = import(
            app,
            &target,
            "emass",
            "?migrate=true",
            &admin,
            "emass.xlsx",
            &again,
        )
        .expect(200);
        assert_eq!(
            statuses(&r.body),
            ["unchanged", "unchanged", "unchanged"],
            "{variant}: {}",
            r.body
        );
    }
    // The CSV of the same columns reads too (its header in row 1).
    let (status, _, csv) = app.get_bytes(
        &format!("/v1/systems/{source}/export?format=emass&as=csv"),
        &admin,
    );
    assert_eq!(status, 200);
    let target = app.system_in("eMASS round trip csv", "emass");
    let r = app
        .request(
            "POST",
            &format!("/v1/systems/{target}/imports/emass?migrate=true&filename=emass.csv"),
            Some(&admin),
            &[("Content-Type", "text/csv")],
            Some(&csv),
        )
        .expect(200);
    assert_eq!(
        statuses(&r.body),
        ["created", "created", "created"],
        "{}",
        r.body
    );
    let all = items(app, &target);
    assert_eq!(
        by_external(&all, "4711")["resources"]["description"],
        "Two engineer-days"
    );
    assert_eq!(by_external(&all, "SV-9r2_rule")["status"], "closed");
    assert_eq!(
        milestones(app, by_external(&all, "4711")["id"].as_str().unwrap_or("")).len(),
        2
    );
}
both!(the_services_emass_export_round_trips_in_each_variant);
