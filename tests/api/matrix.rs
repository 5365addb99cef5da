//! The authorization matrix: every endpoint × every role × the caller's own system and another
//! one, the expected answer of each cell generated from one table.
//!
//! A role without the permission gets 403 wherever the resource is; a role with it gets 404 for
//! another system's resources (exactly as for ids that do not exist) and, on its own system, an
//! answer past authorization (2xx, or a domain rule's 4xx — never 401, 403 or 404).

use crate::both;
use crate::harness::TestApp;
use poam_domain::{Role, SystemId};
use serde_json::{json, Value};

const ALL: &[Role] = &[
    Role::Admin,
    Role::Editor,
    Role::Approver,
    Role::Auditor,
    Role::Viewer,
];
const READ: &[Role] = ALL;
const WRITE: &[Role] = &[Role::Admin, Role::Editor];
const WRITE_OR_DECIDE: &[Role] = &[Role::Admin, Role::Editor, Role::Approver];
const DECIDE: &[Role] = &[Role::Admin, Role::Approver];
const AUDIT: &[Role] = &[Role::Admin, Role::Auditor];
const MANAGE: &[Role] = &[Role::Admin];

/// One system's resources, for filling in paths.
struct Fixture {
    system: String,
    item: String,
    milestone: String,
    evidence: String,
    /// A webhook subscription to the system's events, and one of its deliveries.
    webhook: String,
    delivery: String,
    /// A stored scan of the system.
    scan: String,
}

fn fixture(app: &TestApp, name: &str) -> Fixture {
    let system = app.system_in(name, "cmmc_l2");
    app.request(
        "PUT",
        &format!("/v1/systems/{system}/cmmc/assessment"),
        Some(&app.admin()),
        &[("Content-Type", "application/json")],
        Some(br#"{"requirements": {"3.1.1": "met"}}"#),
    )
    .expect(200);
    let item = app
        .item(&system, json!({"scheduled_completion": "2026-12-31"}))
        .expect(201)
        .body["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    // A public address literal: accepted without a name to resolve; its deliveries fail in
    // the background, which no cell depends on.
    let webhook = app
        .post(
            "/v1/webhooks",
            &app.admin(),
            &json!({"url": "https://8.8.8.8/matrix", "events": ["*"], "systems": [system]}),
        )
        .expect(201)
        .body["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let milestone = app.milestone(&item, "2026-12-01");
    let evidence = app.evidence(&item).expect(201).body["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let delivery = app
        .get(&format!("/v1/webhooks/{webhook}/deliveries"), &app.admin())
        .expect(200)
        .body["items"][0]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        !delivery.is_empty(),
        "the fixture's writes queued deliveries"
    );
    let scan = app
        .request(
            "POST",
            &format!("/v1/systems/{system}/imports/nessus"),
            Some(&app.admin()),
            &[],
            Some(NESSUS.as_bytes()),
        )
        .expect(200)
        .body["scan"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    Fixture {
        scan,
        system,
        item,
        milestone,
        evidence,
        webhook,
        delivery,
    }
}

/// The table: method, path (with `{s}`, `{i}`, `{m}`, `{e}`), body, the roles allowed, and
/// whether the resource belongs to a system (system-less endpoints have no "other" column).
/// One row: method, path, body, the roles allowed, scoped to a system.
type Row = (
    &'static str,
    &'static str,
    Option<Value>,
    &'static [Role],
    bool,
);

fn table() -> Vec<Row> {
    let item = crate::harness::minimal_item();
    vec![
        ("GET", "/v1/systems", None, READ, false),
        (
            "POST",
            "/v1/systems",
            Some(json!({"name": "Matrix new"})),
            MANAGE,
            false,
        ),
        ("GET", "/v1/systems/{s}", None, READ, true),
        (
            "PATCH",
            "/v1/systems/{s}",
            Some(json!({"description": "Touched"})),
            MANAGE,
            true,
        ),
        ("GET", "/v1/systems/{s}/items", None, READ, true),
        (
            "POST",
            "/v1/systems/{s}/items",
            Some(item.clone()),
            WRITE,
            true,
        ),
        (
            "POST",
            "/v1/systems/{s}/items/bulk",
            Some(json!({"items": [item.clone()]})),
            WRITE,
            true,
        ),
        (
            "POST",
            "/v1/systems/{s}/validate",
            Some(json!({})),
            READ,
            true,
        ),
        (
            "POST",
            "/v1/items/validate",
            Some(json!({"system_id": "{s}", "item": item})),
            READ,
            true,
        ),
        ("GET", "/v1/systems/{s}/metrics", None, READ, true),
        ("GET", "/v1/metrics", None, READ, false),
        ("GET", "/v1/systems/{s}/attention", None, READ, true),
        ("GET", "/v1/attention", None, READ, false),
        ("GET", "/v1/systems/{s}/events", None, READ, true),
        (
            "GET",
            "/v1/systems/{s}/events/verification",
            None,
            AUDIT,
            true,
        ),
        ("GET", "/v1/systems/{s}/export", None, READ, true),
        ("GET", "/v1/systems/{s}/export?format=csv", None, READ, true),
        ("GET", "/v1/systems/{s}/exports/json", None, READ, true),
        ("GET", "/v1/systems/{s}/exports/oscal", None, READ, true),
        (
            "GET",
            "/v1/systems/{s}/exports/fedramp-csv",
            None,
            READ,
            true,
        ),
        (
            "GET",
            "/v1/systems/{s}/exports/fedramp-xlsx",
            None,
            READ,
            true,
        ),
        (
            "GET",
            "/v1/systems/{s}/exports/emass-xlsx",
            None,
            READ,
            true,
        ),
        ("GET", "/v1/systems/{s}/exports/emass-csv", None, READ, true),
        (
            "GET",
            "/v1/systems/{s}/exports/emass-dry-run",
            None,
            READ,
            true,
        ),
        ("GET", "/v1/systems/{s}/exports/nisp-xlsx", None, READ, true),
        ("GET", "/v1/systems/{s}/exports/nisp-csv", None, READ, true),
        (
            "POST",
            "/v1/systems/{s}/imports/oscal",
            Some(json!({"plan-of-action-and-milestones": {}})),
            WRITE,
            true,
        ),
        (
            "POST",
            "/v1/systems/{s}/imports/fedramp",
            Some(json!({})),
            WRITE,
            true,
        ),
        (
            "POST",
            "/v1/systems/{s}/imports/emass",
            Some(json!({})),
            WRITE,
            true,
        ),
        (
            "POST",
            "/v1/systems/{s}/imports/nessus",
            Some(json!({})),
            WRITE,
            true,
        ),
        (
            "POST",
            "/v1/systems/{s}/imports/ckl",
            Some(json!({})),
            WRITE,
            true,
        ),
        (
            "POST",
            "/v1/systems/{s}/imports/cklb",
            Some(json!({})),
            WRITE,
            true,
        ),
        (
            "POST",
            "/v1/systems/{s}/imports/sarif",
            Some(json!({})),
            WRITE,
            true,
        ),
        (
            "POST",
            "/v1/systems/{s}/imports/csv",
            Some(json!({})),
            WRITE,
            true,
        ),
        ("GET", "/v1/systems/{s}/scans", None, READ, true),
        ("GET", "/v1/scans/{c}", None, READ, true),
        ("GET", "/v1/scans/{c}/content", None, READ, true),
        ("GET", "/v1/catalogs", None, READ, false),
        ("GET", "/v1/systems/{s}/report", None, READ, true),
        ("GET", "/v1/report", None, READ, false),
        // Catalogs serve every system: a token scoped to some systems never loads one, admin
        // included (an admin of all systems does: tests/api/scans.rs).
        ("PUT", "/v1/catalogs/kev", Some(json!({})), &[], false),
        ("PUT", "/v1/catalogs/epss", Some(json!({})), &[], false),
        ("PUT", "/v1/catalogs/cci", Some(json!({})), &[], false),
        ("GET", "/v1/systems/{s}/cmmc/assessment", None, READ, true),
        (
            "PUT",
            "/v1/systems/{s}/cmmc/assessment",
            Some(json!({"requirements": {}})),
            WRITE,
            true,
        ),
        ("GET", "/v1/systems/{s}/cmmc/score", None, READ, true),
        (
            "POST",
            "/v1/systems/{s}/cmmc/what-if",
            Some(json!({"close_items": []})),
            READ,
            true,
        ),
        ("GET", "/v1/systems/{s}/reviews", None, READ, true),
        (
            "POST",
            "/v1/systems/{s}/reviews",
            Some(json!({"kind": "periodic", "decision": "noted"})),
            WRITE_OR_DECIDE,
            true,
        ),
        ("GET", "/v1/items/{i}", None, READ, true),
        (
            "PATCH",
            "/v1/items/{i}",
            Some(json!({"comments": "Touched"})),
            WRITE,
            true,
        ),
        ("GET", "/v1/items/{i}/history", None, READ, true),
        (
            "POST",
            "/v1/items/{i}/transitions",
            Some(json!({"to": "in_progress"})),
            WRITE,
            true,
        ),
        (
            "POST",
            "/v1/items/{i}/transitions",
            Some(json!({"to": "closed"})),
            DECIDE,
            true,
        ),
        ("GET", "/v1/items/{i}/milestones", None, READ, true),
        (
            "POST",
            "/v1/items/{i}/milestones",
            Some(json!({"title": "Step", "due_on": "2026-12-15"})),
            WRITE,
            true,
        ),
        ("GET", "/v1/milestones/{m}", None, READ, true),
        (
            "PATCH",
            "/v1/milestones/{m}",
            Some(json!({"title": "Renamed step"})),
            WRITE,
            true,
        ),
        (
            "POST",
            "/v1/milestones/{m}/complete",
            Some(json!({})),
            WRITE,
            true,
        ),
        (
            "POST",
            "/v1/milestones/{m}/cancel",
            Some(json!({"reason": "Superseded"})),
            WRITE,
            true,
        ),
        ("GET", "/v1/items/{i}/reviews", None, READ, true),
        (
            "POST",
            "/v1/items/{i}/reviews",
            Some(json!({"kind": "periodic", "decision": "noted"})),
            WRITE_OR_DECIDE,
            true,
        ),
        (
            "POST",
            "/v1/items/{i}/reviews",
            Some(json!({"kind": "closure_verification", "decision": "approved"})),
            DECIDE,
            true,
        ),
        (
            "POST",
            "/v1/items/{i}/evidence",
            Some(json!(MULTIPART)),
            WRITE,
            true,
        ),
        ("GET", "/v1/items/{i}/evidence", None, READ, true),
        ("GET", "/v1/evidence/{e}", None, READ, true),
        ("GET", "/v1/evidence/{e}/content", None, READ, true),
        (
            "POST",
            "/v1/evidence/{e}/withdraw",
            Some(json!({"reason": "Wrong file"})),
            WRITE,
            true,
        ),
        // Either role may ask; the fixture item is unresolved, so the domain's archive rule then
        // holds an editor back with its own code (403 `archive_needs_approver`).
        (
            "DELETE",
            "/v1/items/{i}?reason=Matrix",
            None,
            WRITE_OR_DECIDE,
            true,
        ),
        (
            "GET",
            "/v1/systems/{s}/reports/fedramp-vdt",
            None,
            READ,
            true,
        ),
        (
            "GET",
            "/v1/systems/{s}/reports/fedramp-avi",
            None,
            READ,
            true,
        ),
        (
            "GET",
            "/v1/systems/{s}/reports/fedramp-history",
            None,
            READ,
            true,
        ),
        (
            "GET",
            "/v1/systems/{s}/reports/fedramp-monthly",
            None,
            READ,
            true,
        ),
        ("GET", "/v1/webhooks", None, MANAGE, false),
        (
            "POST",
            "/v1/webhooks",
            Some(json!({"url": "https://8.8.4.4/matrix", "events": ["item.*"]})),
            MANAGE,
            false,
        ),
        ("GET", "/v1/webhooks/{w}", None, MANAGE, false),
        (
            "PATCH",
            "/v1/webhooks/{w}",
            Some(json!({"description": "Touched"})),
            MANAGE,
            false,
        ),
        ("GET", "/v1/webhooks/{w}/deliveries", None, MANAGE, false),
        (
            "POST",
            "/v1/webhooks/{w}/deliveries/{d}/redeliver",
            None,
            MANAGE,
            false,
        ),
        ("DELETE", "/v1/webhooks/{w}", None, MANAGE, false),
        ("DELETE", "/v1/systems/{s}", None, MANAGE, true),
    ]
}

/// Marks the multipart upload, whose body is [`multipart`].
const MULTIPART: &str = "multipart";
const BOUNDARY: &str = "matrix-boundary-7f3a";

fn multipart() -> Vec<u8> {
    format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nRescan\r\n\
         --{BOUNDARY}\r\nContent-Disposition: form-data; name=\"kind\"\r\n\r\nscan_report\r\n\
         --{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"scan.txt\"\r\n\
         Content-Type: text/plain\r\n\r\nclean\r\n--{BOUNDARY}--\r\n"
    )
    .into_bytes()
}

/// The smallest Nessus v2 file: one host, one finding.
const NESSUS: &str = "<NessusClientData_v2><Report name=\"m\"><ReportHost name=\"10.9.9.9\"><HostProperties><tag name=\"host-ip\">10.9.9.9</tag></HostProperties><ReportItem port=\"0\" svc_name=\"general\" protocol=\"tcp\" severity=\"2\" pluginID=\"1\" pluginName=\"A finding\" pluginFamily=\"General\"><description>d</description></ReportItem></ReportHost></Report></NessusClientData_v2>";

fn fill(template: &str, f: &Fixture) -> String {
    template
        .replace("{c}", &f.scan)
        .replace("{s}", &f.system)
        .replace("{i}", &f.item)
        .replace("{m}", &f.milestone)
        .replace("{e}", &f.evidence)
        .replace("{w}", &f.webhook)
        .replace("{d}", &f.delivery)
}

fn every_endpoint_every_role_own_and_other_system(app: &TestApp) {
    let mut failures = Vec::new();
    let mut cells = 0;
    for role in ALL {
        // Fresh systems per role: the writes of one role's row never decide another's.
        let name = format!("{role:?}");
        let own = fixture(app, &format!("Own {name}"));
        let other = fixture(app, &format!("Other {name}"));
        let own_id: SystemId = own.system.parse().unwrap_or_default();
        let token = app.token(&[*role], &[own_id]);
        for (method, path, body, allowed, scoped) in table() {
            let permitted = allowed.contains(role);
            let columns: &[(&Fixture, bool)] = if scoped {
                &[(&other, false), (&own, true)]
            } else {
                &[(&own, true)]
            };
            for (fx, is_own) in columns {
                cells += 1;
                let url = fill(path, fx);
                let is_multipart = body.as_ref().and_then(Value::as_str) == Some(MULTIPART);
                let bytes = match &body {
                    _ if is_multipart => Some(multipart()),
                    Some(b) => Some(fill(&b.to_string(), fx).into_bytes()),
                    None => None,
                };
                let form = format!("multipart/form-data; boundary={BOUNDARY}");
                let content_type = match method {
                    _ if is_multipart => form.as_str(),
                    "PATCH" => "application/merge-patch+json",
                    _ => "application/json",
                };
                let headers: &[(&str, &str)] = if bytes.is_some() {
                    &[("Content-Type", content_type)]
                } else {
                    &[]
                };
                let r = app.request(method, &url, Some(&token), headers, bytes.as_deref());
                let ok = match (permitted, is_own) {
                    (false, _) => r.status == 403,
                    (true, false) => r.status == 404,
                    // Past authorization: a 403 that names a domain rule (not `forbidden`) is
                    // the change's own decision, made after the role and scope checks.
                    (true, true) => {
                        r.status < 500
                            && ![401, 404].contains(&r.status)
                            && !(r.status == 403 && r.body["code"] == "forbidden")
                    }
                };
                if !ok {
                    let want = match (permitted, is_own) {
                        (false, _) => "403",
                        (true, false) => "404",
                        (true, true) => "past authorization",
                    };
                    failures.push(format!(
                        "{role:?} {method} {path} ({}): {} (want {want}) {}",
                        if *is_own { "own" } else { "other" },
                        r.status,
                        r.body
                    ));
                }
            }
        }
    }
    assert!(cells > 400, "{cells} cells");
    assert!(
        failures.is_empty(),
        "{} cells wrong:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
both!(every_endpoint_every_role_own_and_other_system);

#[test]
fn the_matrix_covers_every_operation_of_the_spec() {
    let spec = serde_json::to_value(poam_http::openapi()).unwrap_or_default();
    let covered: std::collections::BTreeSet<(String, String)> = table()
        .into_iter()
        .map(|(m, p, _, _, _)| (m.to_owned(), p.split('?').next().unwrap_or(p).to_owned()))
        .collect();
    let mut missing = Vec::new();
    for (path, item) in spec["paths"].as_object().into_iter().flatten() {
        if !path.starts_with("/v1/") || path.starts_with("/v1/schemas/") {
            continue;
        }
        let short = path
            .replace("{system_id}", "{s}")
            .replace("{item_id}", "{i}")
            .replace("{milestone_id}", "{m}")
            .replace("{evidence_id}", "{e}")
            .replace("{webhook_id}", "{w}")
            .replace("{delivery_id}", "{d}")
            .replace("{scan_id}", "{c}");
        for method in item.as_object().into_iter().flatten().map(|(m, _)| m) {
            let key = (method.to_uppercase(), short.clone());
            if !covered.contains(&key) {
                missing.push(format!("{} {path}", key.0));
            }
        }
    }
    assert!(missing.is_empty(), "not in the matrix: {missing:?}");
}
