//! Scanner results in: Nessus v2, STIG Viewer CKL/CKLB, SARIF and CSV files written here from
//! the formats' specifications; first import creates, the same file again changes nothing, a
//! rescan without a finding marks it not seen (the scan attached as evidence), a rescan showing
//! a closed finding reopens it; malformed and truncated files store nothing; the KEV, EPSS and
//! CCI catalogs load and mark items, their deadlines and the FedRAMP template.

use crate::both;
use crate::harness::{days, TestApp};
use poam_domain::Role;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// A Nessus v2 file: `hosts` of (name, fqdn or None, ip, items) with items (plugin id, port,
/// severity, name, CVEs).
/// One host: name, FQDN, IP, and its items (plugin id, port, severity, name, CVEs).
type Host<'a> = (
    &'a str,
    Option<&'a str>,
    &'a str,
    Vec<(u32, u16, u8, &'a str, Vec<&'a str>)>,
);

fn nessus(hosts: &[Host<'_>]) -> String {
    let mut s = String::from(
        "<?xml version=\"1.0\" ?>\n<NessusClientData_v2>\n<Policy><policyName>Advanced Scan</policyName>\
         <Preferences><ServerPreferences><preference><name>TARGET</name><value>10.0.0.0/24</value></preference>\
         </ServerPreferences></Preferences></Policy>\n<Report name=\"Weekly ACAS\" xmlns:cm=\"http://www.nessus.org/cm\">\n",
    );
    for (name, fqdn, ip, items) in hosts {
        s.push_str(&format!("<ReportHost name=\"{name}\"><HostProperties>\n"));
        s.push_str("<tag name=\"HOST_END\">Tue Nov  3 10:12:01 2026</tag>\n");
        if let Some(f) = fqdn {
            s.push_str(&format!("<tag name=\"host-fqdn\">{f}</tag>\n"));
        }
        s.push_str(&format!(
            "<tag name=\"host-ip\">{ip}</tag>\n</HostProperties>\n"
        ));
        for (plugin, port, sev, title, cves) in items {
            s.push_str(&format!(
                "<ReportItem port=\"{port}\" svc_name=\"www\" protocol=\"tcp\" severity=\"{sev}\" pluginID=\"{plugin}\" pluginName=\"{title}\" pluginFamily=\"General\">\n\
                 <synopsis>The remote host is affected &amp; exposed.</synopsis>\n\
                 <description>{title}: the remote service is vulnerable.</description>\n\
                 <solution>Upgrade to the latest version.</solution>\n\
                 <risk_factor>High</risk_factor>\n<cvss3_base_score>8.1</cvss3_base_score>\n\
                 <stig_severity>I</stig_severity>\n<patch_publication_date>2026/07/01</patch_publication_date>\n"
            ));
            for c in cves {
                s.push_str(&format!("<cve>{c}</cve>\n"));
            }
            s.push_str("<plugin_output>Version 1.2 detected.</plugin_output>\n</ReportItem>\n");
        }
        s.push_str("</ReportHost>\n");
    }
    s.push_str("</Report>\n</NessusClientData_v2>\n");
    s
}

fn import(
    app: &TestApp,
    sid: &str,
    format: &str,
    query: &str,
    token: &str,
    body: &[u8],
) -> crate::harness::Resp {
    let path = format!("/v1/systems/{sid}/imports/{format}?filename=scan.{format}{query}");
    app.request(
        "POST",
        &path,
        Some(token),
        &[("Content-Type", "application/octet-stream")],
        Some(body),
    )
}

fn item(app: &TestApp, id: &Value) -> Value {
    app.get(
        &format!("/v1/items/{}", id.as_str().unwrap_or_default()),
        &app.admin(),
    )
    .expect(200)
    .body
}

fn result_for<'a>(report: &'a Value, identifier: &str, asset: &str) -> &'a Value {
    report["results"]
        .as_array()
        .and_then(|rs| {
            rs.iter()
                .find(|r| r["identifier"] == identifier && r["asset"] == asset)
        })
        .unwrap_or_else(|| panic!("no result for {identifier} on {asset}: {report}"))
}

fn weekly() -> String {
    nessus(&[
        (
            "web1",
            Some("web1.example.org"),
            "10.0.0.5",
            vec![
                (
                    104743,
                    443,
                    2,
                    "TLS Version 1.0 Protocol Detection",
                    vec!["CVE-2011-3389"],
                ),
                (201194, 22, 4, "OpenSSH regreSSHion", vec!["CVE-2024-6387"]),
                (19506, 0, 0, "Nessus Scan Information", vec![]),
            ],
        ),
        (
            "10.0.0.6",
            None,
            "10.0.0.6",
            vec![(201194, 22, 3, "OpenSSH regreSSHion", vec!["CVE-2024-6387"])],
        ),
    ])
}

fn a_nessus_scan_creates_then_changes_nothing_then_marks_what_is_gone(app: &TestApp) {
    let admin = app.admin();
    let editor = app.token(&[Role::Editor], &[]);
    let sid = app.system_in("ACAS", "fedramp");
    let file = weekly();
    let r = import(app, &sid, "nessus", "", &editor, file.as_bytes()).expect(200);
    let b = &r.body;
    assert_eq!(b["summary"]["findings"], 3, "{b}");
    assert_eq!(b["summary"]["created"], 3, "{b}");
    assert_eq!(b["summary"]["skipped_informational"], 1, "{b}");
    assert_eq!(b["severity_table"]["name"], "fedramp");
    assert_eq!(
        b["scan"]["sha256"],
        hex(&Sha256::digest(file.as_bytes())),
        "the stored scan is the file"
    );
    assert_eq!(b["skipped"][0]["reason"], "informational");
    let ssh = result_for(b, "201194", "web1.example.org:22/tcp");
    assert_eq!(
        ssh["risk_rating"], "critical",
        "FedRAMP keeps Nessus critical"
    );
    let tls = result_for(b, "104743", "web1.example.org:443/tcp").clone();
    let it = item(app, &tls["id"]);
    assert_eq!(it["source"]["kind"], "scan");
    assert_eq!(it["source"]["detector"], "nessus");
    assert_eq!(it["source"]["identifier"], "104743");
    assert_eq!(
        it["source"]["details"]["plugin_name"],
        "TLS Version 1.0 Protocol Detection"
    );
    assert_eq!(it["source"]["details"]["severity"], "Nessus 2 (Medium)");
    assert_eq!(it["risk_rating"], "moderate");
    assert_eq!(
        it["controls"],
        json!(["SI-2"]),
        "the default vulnerability control"
    );
    assert_eq!(it["cves"], json!(["CVE-2011-3389"]));
    assert!(
        it["description"]
            .as_str()
            .unwrap_or_default()
            .contains("affected & exposed"),
        "entities unescaped: {it}"
    );
    assert_eq!(it["last_seen"]["scan_id"], b["scan"]["id"]);
    assert!(it["not_seen_since"].is_null());
    // The scan is the item's evidence, and downloadable as imported.
    let ev = app
        .get(
            &format!(
                "/v1/items/{}/evidence",
                tls["id"].as_str().unwrap_or_default()
            ),
            &admin,
        )
        .expect(200);
    assert_eq!(
        ev.body["items"][0]["scan_id"], b["scan"]["id"],
        "{}",
        ev.body
    );
    assert_eq!(ev.body["items"][0]["kind"], "scan_report");
    let scan_id = b["scan"]["id"].as_str().unwrap_or_default().to_owned();
    let (status, headers, bytes) = app.get_bytes(&format!("/v1/scans/{scan_id}/content"), &admin);
    assert_eq!(status, 200);
    assert_eq!(bytes, file.as_bytes());
    assert_eq!(
        headers.get("content-security-policy").map(String::as_str),
        Some("sandbox")
    );
    let evidence_id = ev.body["items"][0]["id"].as_str().unwrap_or_default();
    let (status, _, via_item) =
        app.get_bytes(&format!("/v1/evidence/{evidence_id}/content"), &admin);
    assert_eq!((status, via_item.as_slice()), (200, file.as_bytes()));

    // The same file again: nothing changes, and the answer says so.
    let version = it["version"].clone();
    let again = import(app, &sid, "nessus", "", &editor, file.as_bytes()).expect(200);
    assert_eq!(again.body["repeat_of"], scan_id.as_str(), "{}", again.body);
    assert_eq!(again.body["summary"]["unchanged"], 3);
    assert_eq!(again.body["summary"]["created"], 0);
    assert_eq!(
        result_for(&again.body, "104743", "web1.example.org:443/tcp")["id"],
        tls["id"]
    );
    assert_eq!(item(app, &tls["id"])["version"], version);
    let scans = app
        .get(&format!("/v1/systems/{sid}/scans"), &admin)
        .expect(200);
    assert_eq!(scans.body.as_array().map(Vec::len), Some(1));

    // A rescan of web1 without the TLS finding: not seen since, never closed, scan attached.
    let rescan = nessus(&[(
        "web1",
        Some("web1.example.org"),
        "10.0.0.5",
        vec![(201194, 22, 4, "OpenSSH regreSSHion", vec!["CVE-2024-6387"])],
    )]);
    let r = import(app, &sid, "nessus", "", &editor, rescan.as_bytes()).expect(200);
    assert_eq!(r.body["summary"]["not_seen"], 1, "{}", r.body);
    assert_eq!(r.body["not_seen"][0]["id"], tls["id"]);
    let it = item(app, &tls["id"]);
    assert_eq!(it["status"], "open", "a scan never closes an item");
    assert_eq!(it["not_seen_scan"], r.body["scan"]["id"]);
    assert!(it["not_seen_since"].is_string());
    let ev = app
        .get(
            &format!(
                "/v1/items/{}/evidence",
                tls["id"].as_str().unwrap_or_default()
            ),
            &admin,
        )
        .expect(200);
    assert!(
        ev.body["items"]
            .as_array()
            .is_some_and(|e| e.iter().any(|e| e["scan_id"] == r.body["scan"]["id"])),
        "the scan that no longer shows it is attached: {}",
        ev.body
    );
    // The other host was not in this scan's scope: its finding is not judged.
    let other = result_for(b, "201194", "10.0.0.6:22/tcp");
    assert!(item(app, &other["id"])["not_seen_since"].is_null());
    let list = app
        .get(&format!("/v1/systems/{sid}/items?not_seen=true"), &admin)
        .expect(200);
    let ids: Vec<&Value> = list.body["items"]
        .as_array()
        .map(|d| d.iter().map(|i| &i["id"]).collect())
        .unwrap_or_default();
    assert_eq!(ids, vec![&tls["id"]], "{}", list.body);

    // Seen again: the mark goes. Then closed, and seen again: reopened through the lifecycle.
    let r = import(
        app,
        &sid,
        "nessus",
        "",
        &editor,
        weekly().replace("Weekly ACAS", "Weekly ACAS 2").as_bytes(),
    )
    .expect(200);
    assert!(
        item(app, &tls["id"])["not_seen_since"].is_null(),
        "{}",
        r.body
    );
    let tls_id = tls["id"].as_str().unwrap_or_default().to_owned();
    // Due on the item's own schedule (detection + 90 days): a date relative to today would
    // pass the schedule once today is within 10 days of it, and be refused.
    let due = item(app, &tls["id"])["scheduled_completion"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    app.milestone(&tls_id, &due);
    crate::exchange::close(app, &tls_id);
    let r = import(
        app,
        &sid,
        "nessus",
        "",
        &editor,
        weekly().replace("Weekly ACAS", "Weekly ACAS 3").as_bytes(),
    )
    .expect(200);
    assert_eq!(
        result_for(&r.body, "104743", "web1.example.org:443/tcp")["status"],
        "reopened",
        "{}",
        r.body
    );
    assert_eq!(item(app, &tls["id"])["status"], "open");

    // Roles and scope: a viewer may not import, another system's editor sees no system.
    let viewer = app.token(&[Role::Viewer], &[]);
    import(app, &sid, "nessus", "", &viewer, file.as_bytes()).problem(403, "forbidden");
    let other_sid = app.system("Elsewhere");
    let other_editor = app.token(
        &[Role::Editor],
        &[other_sid.parse().unwrap_or_else(|e| panic!("{e:?}"))],
    );
    import(app, &sid, "nessus", "", &other_editor, file.as_bytes()).expect(404);
    app.assert_chain_verifies(&sid);
}
both!(a_nessus_scan_creates_then_changes_nothing_then_marks_what_is_gone);

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn ckl(statuses: &[(&str, &str, &str, &str)]) -> String {
    let mut s = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!--DISA STIG Viewer :: 2.17-->\n<CHECKLIST><ASSET><ROLE>Member Server</ROLE><ASSET_TYPE>Computing</ASSET_TYPE>\
         <HOST_NAME>db1</HOST_NAME><HOST_IP>10.0.1.7</HOST_IP><HOST_MAC></HOST_MAC><HOST_FQDN>db1.example.org</HOST_FQDN>\
         <TARGET_COMMENT></TARGET_COMMENT><TECH_AREA></TECH_AREA><TARGET_KEY>2777</TARGET_KEY><WEB_OR_DATABASE>false</WEB_OR_DATABASE></ASSET>\
         <STIGS><iSTIG><STIG_INFO><SI_DATA><SID_NAME>version</SID_NAME><SID_DATA>1</SID_DATA></SI_DATA>\
         <SI_DATA><SID_NAME>stigid</SID_NAME><SID_DATA>RHEL_8_STIG</SID_DATA></SI_DATA>\
         <SI_DATA><SID_NAME>releaseinfo</SID_NAME><SID_DATA>Release: 12 Benchmark Date: 25 Oct 2023</SID_DATA></SI_DATA>\
         <SI_DATA><SID_NAME>title</SID_NAME><SID_DATA>Red Hat Enterprise Linux 8 Security Technical Implementation Guide</SID_DATA></SI_DATA></STIG_INFO>\n",
    );
    for (vuln, sev, status, cci) in statuses {
        s.push_str(&format!(
            "<VULN><STIG_DATA><VULN_ATTRIBUTE>Vuln_Num</VULN_ATTRIBUTE><ATTRIBUTE_DATA>{vuln}</ATTRIBUTE_DATA></STIG_DATA>\
             <STIG_DATA><VULN_ATTRIBUTE>Severity</VULN_ATTRIBUTE><ATTRIBUTE_DATA>{sev}</ATTRIBUTE_DATA></STIG_DATA>\
             <STIG_DATA><VULN_ATTRIBUTE>Rule_ID</VULN_ATTRIBUTE><ATTRIBUTE_DATA>SV-{vuln}r1_rule</ATTRIBUTE_DATA></STIG_DATA>\
             <STIG_DATA><VULN_ATTRIBUTE>Rule_Ver</VULN_ATTRIBUTE><ATTRIBUTE_DATA>RHEL-08-{vuln}</ATTRIBUTE_DATA></STIG_DATA>\
             <STIG_DATA><VULN_ATTRIBUTE>Rule_Title</VULN_ATTRIBUTE><ATTRIBUTE_DATA>Rule {vuln} must hold.</ATTRIBUTE_DATA></STIG_DATA>\
             <STIG_DATA><VULN_ATTRIBUTE>Vuln_Discuss</VULN_ATTRIBUTE><ATTRIBUTE_DATA>Why {vuln} matters.</ATTRIBUTE_DATA></STIG_DATA>\
             <STIG_DATA><VULN_ATTRIBUTE>Fix_Text</VULN_ATTRIBUTE><ATTRIBUTE_DATA>Configure it.</ATTRIBUTE_DATA></STIG_DATA>\
             <STIG_DATA><VULN_ATTRIBUTE>CCI_REF</VULN_ATTRIBUTE><ATTRIBUTE_DATA>{cci}</ATTRIBUTE_DATA></STIG_DATA>\
             <STATUS>{status}</STATUS><FINDING_DETAILS>Found on db1.</FINDING_DETAILS><COMMENTS></COMMENTS>\
             <SEVERITY_OVERRIDE></SEVERITY_OVERRIDE><SEVERITY_JUSTIFICATION></SEVERITY_JUSTIFICATION></VULN>\n"
        ));
    }
    s.push_str("</iSTIG></STIGS></CHECKLIST>\n");
    s
}

fn a_checklist_takes_open_rules_and_sees_fixes(app: &TestApp) {
    let admin = app.admin();
    let sid = app.system_in("Checklists", "cmmc_l2");
    let first = ckl(&[
        ("V-230221", "high", "Open", "CCI-000213"),
        ("V-230222", "medium", "NotAFinding", "CCI-000366"),
        ("V-230223", "low", "Not_Applicable", "CCI-000366"),
        ("V-230224", "medium", "Not_Reviewed", "CCI-000366"),
    ]);
    let r = import(app, &sid, "ckl", "", &admin, first.as_bytes()).expect(200);
    let b = &r.body;
    assert_eq!(b["summary"]["created"], 1, "{b}");
    assert_eq!(b["summary"]["skipped_other"], 3, "{b}");
    let reasons: Vec<&str> = b["skipped"]
        .as_array()
        .map(|s| s.iter().filter_map(|x| x["reason"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(
        reasons,
        vec!["not_a_finding", "not_applicable", "not_reviewed"]
    );
    let open = result_for(b, "V-230221", "db1.example.org");
    assert_eq!(open["risk_rating"], "high", "CAT I is high");
    let it = item(app, &open["id"]);
    assert_eq!(it["source"]["detector"], "stig:RHEL_8_STIG");
    assert_eq!(it["ccis"], json!(["CCI-000213"]));
    assert_eq!(
        it["controls"],
        json!(["CM-6"]),
        "no CCI catalog: the configuration default"
    );
    assert_eq!(it["source"]["details"]["rule_id"], "SV-V-230221r1_rule");
    assert!(b["cci_catalog"].is_null());

    // With DISA's CCI list loaded, the CCI maps to its control.
    let Some(cci) = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/reference/cci/U_CCI_List-2016-06-27.xml"
    ))
    .ok() else {
        panic!("the CCI reference file is missing")
    };
    let editor = app.token(&[Role::Editor], &[]);
    app.request("PUT", "/v1/catalogs/cci", Some(&editor), &[], Some(&cci))
        .problem(403, "forbidden");
    let loaded = app
        .request("PUT", "/v1/catalogs/cci", Some(&admin), &[], Some(&cci))
        .expect(200);
    assert_eq!(
        loaded.body["catalog"]["version"], "2016-06-27",
        "{}",
        loaded.body
    );
    // The rule is fixed (NotAFinding) in the next checklist: a fix seen, the item not seen since.
    let second = ckl(&[
        ("V-230221", "high", "NotAFinding", "CCI-000213"),
        ("V-230225", "medium", "Open", "CCI-000213"),
    ]);
    let r = import(app, &sid, "ckl", "", &admin, second.as_bytes()).expect(200);
    assert_eq!(r.body["cci_catalog"], "2016-06-27");
    assert_eq!(r.body["not_seen"][0]["id"], open["id"], "{}", r.body);
    let new = result_for(&r.body, "V-230225", "db1.example.org");
    assert_eq!(
        item(app, &new["id"])["controls"],
        json!(["AC-3"]),
        "CCI-000213 is AC-3"
    );
    assert!(item(app, &open["id"])["not_seen_since"].is_string());
}
both!(a_checklist_takes_open_rules_and_sees_fixes);

/// eMASS requires a point of contact and resources on every POA&M item, and a scan names
/// neither: in an eMASS system each new finding is refused with eMASS's rule (and the rest of
/// the file still answered), until the system names its defaults for scanned items.
fn an_emass_system_gives_scanned_items_its_point_of_contact(app: &TestApp) {
    let admin = app.admin();
    let sid = app.system_in("eMASS checklists", "emass");
    let file = ckl(&[
        ("V-230221", "high", "Open", "CCI-000213"),
        ("V-230222", "medium", "NotAFinding", "CCI-000366"),
    ]);
    let r = import(app, &sid, "ckl", "", &admin, file.as_bytes()).expect(200);
    assert_eq!(r.body["summary"]["failed"], 1, "{}", r.body);
    assert_eq!(r.body["summary"]["created"], 0, "{}", r.body);
    let failed = result_for(&r.body, "V-230221", "db1.example.org");
    let codes: Vec<&str> = failed["problem"]["errors"]
        .as_array()
        .map(|e| e.iter().filter_map(|x| x["code"].as_str()).collect())
        .unwrap_or_default();
    assert!(codes.contains(&"emass.poc_required"), "{failed}");
    assert!(codes.contains(&"emass.resources_required"), "{failed}");

    // Defaults that break the rules are refused, by name.
    let sys = app.get(&format!("/v1/systems/{sid}"), &admin).expect(200);
    let version = format!("\"{}\"", sys.body["version"]);
    let bad = app.patch(
        &format!("/v1/systems/{sid}"),
        &admin,
        &json!({"scans": {"default_owner": {"name": ""}}}),
        Some(&version),
    );
    assert_eq!(bad.status, 422, "{}", bad.body);
    assert!(
        bad.body.to_string().contains("default_owner"),
        "{}",
        bad.body
    );

    let owner = json!({"name": "Lee Park", "email": "lee.park@example.org"});
    let resources = json!({"description": "ISSO review and a maintenance window"});
    app.patch(
        &format!("/v1/systems/{sid}"),
        &admin,
        &json!({"scans": {"default_owner": owner, "default_resources": resources}}),
        Some(&version),
    )
    .expect(200);
    // The same file again: its refused finding is taken this time, not called unchanged.
    let r = import(app, &sid, "ckl", "", &admin, file.as_bytes()).expect(200);
    assert!(r.body["repeat_of"].is_null(), "{}", r.body);
    assert_eq!(r.body["summary"]["created"], 1, "{}", r.body);
    let created = result_for(&r.body, "V-230221", "db1.example.org");
    let it = item(app, &created["id"]);
    assert_eq!(it["owner"], owner);
    assert_eq!(it["resources"]["description"], resources["description"]);
    // Once nothing in it failed, the same file is a repeat that changes nothing.
    let again = import(app, &sid, "ckl", "", &admin, file.as_bytes()).expect(200);
    assert_eq!(
        again.body["repeat_of"], r.body["scan"]["id"],
        "{}",
        again.body
    );
    assert_eq!(again.body["summary"]["created"], 0, "{}", again.body);
    assert_eq!(
        result_for(&again.body, "V-230221", "db1.example.org")["id"],
        created["id"]
    );
}
both!(an_emass_system_gives_scanned_items_its_point_of_contact);

/// A Nessus v2 file of one host with audit compliance checks `(check id, name, result,
/// reference)` under plugin 21157, as Tenable writes them (`cm` declared on `Report`).
fn compliance(checks: &[(&str, &str, &str, &str)]) -> String {
    let items: String = checks
        .iter()
        .map(|(id, name, result, reference)| {
            format!(
                "<ReportItem port=\"0\" svc_name=\"general\" protocol=\"tcp\" severity=\"3\" \
                 pluginID=\"21157\" pluginName=\"Unix Compliance Checks\" pluginFamily=\"Policy Compliance\">\n\
                 <description>\"{name}\" : [{result}]</description>\n\
                 <cm:compliance-audit-file>DISA_STIG_RHEL_8_v1r13.audit</cm:compliance-audit-file>\n\
                 <cm:compliance-check-id>{id}</cm:compliance-check-id>\n\
                 <cm:compliance-check-name>{name}</cm:compliance-check-name>\n\
                 <cm:compliance-info>Why it matters.</cm:compliance-info>\n\
                 <cm:compliance-solution>Set it.</cm:compliance-solution>\n\
                 <cm:compliance-reference>{reference}</cm:compliance-reference>\n\
                 <cm:compliance-result>{result}</cm:compliance-result>\n\
                 </ReportItem>\n"
            )
        })
        .collect();
    format!(
        "<?xml version=\"1.0\" ?>\n<NessusClientData_v2>\n\
         <Report name=\"STIG audit\" xmlns:cm=\"http://www.nessus.org/cm\">\n\
         <ReportHost name=\"10.0.1.7\"><HostProperties>\
         <tag name=\"host-fqdn\">db1.example.org</tag>\
         <tag name=\"HOST_END\">Tue Dec  1 10:12:01 2026</tag></HostProperties>\n\
         {items}</ReportHost>\n</Report>\n</NessusClientData_v2>\n"
    )
}

/// An audit's compliance checks: one item per failed check (not one per plugin and host), with
/// the CCI its references name; a check that passes in the next scan is a fix seen. A
/// checklist that names no target host takes the importer's `host`; a `host` for a format that
/// names its own hosts is refused.
fn compliance_checks_and_unnamed_checklists(app: &TestApp) {
    let admin = app.admin();
    let sid = app.system_in("Audits", "cmmc_l2");
    let stig = "CAT|II, CCI|CCI-000213, Rule-ID|SV-230221r1_rule, STIG-ID|RHEL-08-010000, Vuln-ID|V-230221";
    let first = compliance(&[
        (
            "c1",
            "RHEL-08-010000 - RHEL 8 must be a vendor-supported release",
            "FAILED",
            stig,
        ),
        (
            "c2",
            "RHEL-08-010010 - RHEL 8 must have security patches installed",
            "FAILED",
            "800-53|SI-2",
        ),
        (
            "c3",
            "RHEL-08-010020 - RHEL 8 must use FIPS mode",
            "PASSED",
            "800-53|SC-13",
        ),
        (
            "c4",
            "RHEL-08-010030 - Review the banner by hand",
            "WARNING",
            "800-53|AC-8",
        ),
    ]);
    let r = import(app, &sid, "nessus", "", &admin, first.as_bytes()).expect(200);
    let b = &r.body;
    assert_eq!(b["summary"]["findings"], 2, "{b}");
    assert_eq!(b["summary"]["created"], 2, "{b}");
    assert_eq!(b["summary"]["skipped_other"], 2, "{b}");
    let reasons: Vec<&str> = b["skipped"]
        .as_array()
        .map(|s| s.iter().filter_map(|x| x["reason"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(reasons, ["passed", "needs_review"]);
    let c1 = result_for(b, "21157:c1", "db1.example.org");
    let c2 = result_for(b, "21157:c2", "db1.example.org");
    assert_ne!(c1["id"], c2["id"]);
    let it = item(app, &c1["id"]);
    assert_eq!(
        it["title"],
        "RHEL-08-010000 - RHEL 8 must be a vendor-supported release"
    );
    assert_eq!(it["source"]["identifier"], "21157:c1");
    assert_eq!(it["ccis"], json!(["CCI-000213"]));
    assert_eq!(it["source"]["details"]["vuln_id"], "V-230221");
    assert_eq!(it["source"]["details"]["compliance_result"], "FAILED");
    assert_eq!(item(app, &c2["id"])["controls"], json!(["SI-2"]));

    // The next scan: c1 passes (a fix seen), c2 still fails.
    let second = compliance(&[
        (
            "c1",
            "RHEL-08-010000 - RHEL 8 must be a vendor-supported release",
            "PASSED",
            stig,
        ),
        (
            "c2",
            "RHEL-08-010010 - RHEL 8 must have security patches installed",
            "FAILED",
            "800-53|SI-2",
        ),
    ]);
    let r = import(app, &sid, "nessus", "", &admin, second.as_bytes()).expect(200);
    assert_eq!(r.body["summary"]["unchanged"], 1, "{}", r.body);
    assert_eq!(r.body["not_seen"][0]["id"], c1["id"], "{}", r.body);
    assert!(item(app, &c1["id"])["not_seen_since"].is_string());
    assert!(item(app, &c2["id"])["not_seen_since"].is_null());

    // A checklist without a target host: unmapped, or on the host the importer names.
    let mut unnamed = cklb();
    unnamed["target_data"]["host_name"] = json!("");
    unnamed["target_data"]["ip_address"] = json!("");
    unnamed["target_data"]["fqdn"] = json!("");
    let body = serde_json::to_vec(&unnamed).unwrap_or_default();
    let r = import(app, &sid, "cklb", "", &admin, &body).expect(200);
    assert_eq!(r.body["summary"]["unmapped"], 2, "{}", r.body);
    assert_eq!(r.body["summary"]["created"], 0, "{}", r.body);
    let r = import(app, &sid, "cklb", "&host=kiosk-7", &admin, &body).expect(200);
    assert_eq!(r.body["summary"]["created"], 1, "{}", r.body);
    result_for(&r.body, "V-214048", "kiosk-7");
    import(app, &sid, "cklb", "&host=%20", &admin, &body).problem(400, "invalid_query");
    import(app, &sid, "nessus", "&host=x", &admin, second.as_bytes()).problem(400, "invalid_query");
    // With a byte-order mark, as PowerShell tools write checklists: the same checklist.
    let mut marked = b"\xEF\xBB\xBF".to_vec();
    marked.extend_from_slice(&serde_json::to_vec(&cklb()).unwrap_or_default());
    let r = import(app, &sid, "cklb", "", &admin, &marked).expect(200);
    result_for(&r.body, "V-214048", "db1.example.org");
}
both!(compliance_checks_and_unnamed_checklists);

/// One `ReportItem` of plugin 142591 on web1's port 443: severity, CVEs, output.
fn php(severity: u8, cves: &[&str], output: &str) -> String {
    let cves: String = cves.iter().map(|c| format!("<cve>{c}</cve>")).collect();
    format!(
        "<ReportItem port=\"443\" svc_name=\"www\" protocol=\"tcp\" severity=\"{severity}\" pluginID=\"142591\" \
         pluginName=\"PHP &lt; 7.3.24 Multiple Vulnerabilities\" pluginFamily=\"CGI abuses\">\
         <synopsis>The version of PHP running on the remote web server is affected by multiple vulnerabilities.</synopsis>\
         <description>PHP before 7.3.24 is affected.</description><solution>Upgrade to PHP version 7.3.24 or later.</solution>\
         {cves}<plugin_output>{output}</plugin_output></ReportItem>\n"
    )
}

fn php_scan(items: &[String]) -> String {
    format!(
        "<?xml version=\"1.0\" ?>\n<NessusClientData_v2><Report name=\"PHP\" xmlns:cm=\"http://www.nessus.org/cm\">\n\
         <ReportHost name=\"10.0.0.5\"><HostProperties><tag name=\"HOST_END\">Tue Nov  3 10:12:01 2026</tag>\
         <tag name=\"host-fqdn\">web1.example.org</tag><tag name=\"host-ip\">10.0.0.5</tag></HostProperties>\n\
         {}</ReportHost></Report></NessusClientData_v2>\n",
        items.concat()
    )
}

/// The same plugin on the same port of one host twice (a host with two PHP installations,
/// as in a real Nessus file): one item, and nothing of either element is lost.
fn a_finding_met_twice_in_one_file_keeps_both(app: &TestApp) {
    let admin = app.admin();
    let sid = app.system("Twice");
    let old =
        "URL: https://web1.example.org/\n  Installed version : 5.6.40\n  Fixed version : 7.3.24";
    let new =
        "URL: https://web1.example.org/app/\n  Installed version : 7.2.1\n  Fixed version : 7.3.24";
    let file = php_scan(&[
        php(3, &["CVE-2020-7070"], old),
        php(2, &["CVE-2020-7069", "CVE-2020-7070"], new),
    ]);
    let r = import(app, &sid, "nessus", "", &admin, file.as_bytes()).expect(200);
    let b = &r.body;
    assert_eq!(b["summary"]["findings"], 2, "every element answered: {b}");
    let results = b["results"].as_array().cloned().unwrap_or_default();
    assert_eq!(results.len(), 2, "{b}");
    assert_eq!(results[0]["id"], results[1]["id"], "one item: {b}");
    assert_eq!(results[0]["status"], "created", "{b}");
    let again: Vec<&str> = results[1]["notes"]
        .as_array()
        .map(|n| n.iter().filter_map(|x| x["code"].as_str()).collect())
        .unwrap_or_default();
    assert!(again.contains(&"found_again"), "{b}");
    let it = item(app, &results[0]["id"]);
    let output = it["source"]["details"]["plugin_output"]
        .as_str()
        .unwrap_or_default();
    assert!(
        output.contains("5.6.40") && output.contains("7.2.1"),
        "both outputs kept: {it}"
    );
    assert!(
        output.find("5.6.40") < output.find("7.2.1"),
        "in file order: {output}"
    );
    assert_eq!(it["cves"], json!(["CVE-2020-7069", "CVE-2020-7070"]));
    assert_eq!(it["risk_rating"], "high", "the higher of the two: {it}");
    assert_eq!(it["title"], "PHP < 7.3.24 Multiple Vulnerabilities");

    // The same file again changes nothing; the outputs are not added a second time.
    let r = import(app, &sid, "nessus", "", &admin, file.as_bytes()).expect(200);
    assert_eq!(r.body["summary"]["unchanged"], 2, "{}", r.body);
    let kept = item(app, &results[0]["id"]);
    assert_eq!(kept["source"]["details"], it["source"]["details"]);

    // The next scan finds one installation: the item says what this scan saw.
    let next = php_scan(&[php(2, &["CVE-2020-7069", "CVE-2020-7070"], new)]);
    let r = import(app, &sid, "nessus", "", &admin, next.as_bytes()).expect(200);
    assert_eq!(r.body["summary"]["updated"], 1, "{}", r.body);
    let it = item(app, &results[0]["id"]);
    let output = it["source"]["details"]["plugin_output"]
        .as_str()
        .unwrap_or_default();
    assert!(
        !output.contains("5.6.40") && output.contains("7.2.1"),
        "{it}"
    );
}
both!(a_finding_met_twice_in_one_file_keeps_both);

fn cklb() -> Value {
    json!({
        "title": "db1", "id": "2f1c", "active": false, "mode": 1, "has_path": true,
        "target_data": {"target_type": "Computing", "host_name": "db1", "ip_address": "10.0.1.7",
                        "mac_address": "", "fqdn": "db1.example.org", "comments": "", "role": "None",
                        "is_web_database": false, "technology_area": "", "web_db_site": "", "web_db_instance": ""},
        "stigs": [{
            "stig_name": "PostgreSQL 9.x STIG", "display_name": "PostgreSQL 9.x", "stig_id": "PGS_SQL_9-x_STIG",
            "release_info": "Release: 3", "version": "2", "uuid": "a1", "reference_identifier": "0000", "size": 2,
            "rules": [
                {"uuid": "r1", "stig_uuid": "a1", "group_id": "V-214048", "rule_id": "SV-214048r508027_rule",
                 "rule_id_src": "SV-214048r508027_rule", "weight": "10.0", "classification": "Unclassified",
                 "severity": "medium", "rule_version": "PGS9-00-000100", "group_title": "SRG-APP-000023-DB-000001",
                 "rule_title": "PostgreSQL must be audited.", "fix_text": "Enable pgaudit.", "discussion": "Auditing matters.",
                 "check_content": "Check pgaudit.", "ccis": ["CCI-000015"], "status": "open",
                 "overrides": {}, "comments": "", "finding_details": "pgaudit is off."},
                {"uuid": "r2", "stig_uuid": "a1", "group_id": "V-214049", "rule_id": "SV-214049r508027_rule",
                 "severity": "high", "rule_title": "Passwords hashed.", "ccis": ["CCI-000196"],
                 "status": "not_a_finding", "overrides": {}, "comments": "", "finding_details": ""}
            ]
        }]
    })
}

fn sarif() -> Value {
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "CodeQL", "semanticVersion": "2.19.0", "rules": [
                {"id": "js/sql-injection", "shortDescription": {"text": "Database query built from user-controlled sources"},
                 "fullDescription": {"text": "Building a database query from user-controlled sources is vulnerable to insertion."},
                 "defaultConfiguration": {"level": "error"}, "properties": {"security-severity": "8.8", "tags": ["security"]}}
            ]}},
            "versionControlProvenance": [{"repositoryUri": "https://git.example.org/payroll"}],
            "results": [
                {"ruleId": "js/sql-injection", "ruleIndex": 0, "message": {"text": "This query depends on a user-provided value."},
                 "locations": [{"physicalLocation": {"artifactLocation": {"uri": "src/db.js"}, "region": {"startLine": 42}}}],
                 "partialFingerprints": {"primaryLocationLineHash": "39fa2ee980eb94b0:1"}},
                {"ruleId": "js/sql-injection", "ruleIndex": 0, "level": "warning", "message": {"text": "Another query."},
                 "locations": [{"physicalLocation": {"artifactLocation": {"uri": "src/report.js"}, "region": {"startLine": 7}}}],
                 "partialFingerprints": {"primaryLocationLineHash": "77aa0000eb94b0:1"}},
                {"ruleId": "js/sql-injection", "message": {"text": "Suppressed."}, "suppressions": [{"kind": "inSource"}],
                 "locations": [{"physicalLocation": {"artifactLocation": {"uri": "src/old.js"}, "region": {"startLine": 1}}}],
                 "partialFingerprints": {"primaryLocationLineHash": "1111:1"}}
            ]
        }]
    })
}

fn json_formats_and_csv_take_their_findings(app: &TestApp) {
    let admin = app.admin();
    let sid = app.system_in("Code", "custom");
    let b = serde_json::to_vec(&cklb()).unwrap_or_default();
    let r = import(app, &sid, "cklb", "", &admin, &b).expect(200);
    assert_eq!(r.body["summary"]["created"], 1, "{}", r.body);
    assert_eq!(r.body["skipped"][0]["fixed"], true);
    let it = item(
        app,
        &result_for(&r.body, "V-214048", "db1.example.org")["id"],
    );
    assert_eq!(it["source"]["detector"], "stig:PGS_SQL_9-x_STIG");
    assert_eq!(it["risk_rating"], "moderate", "CAT II");

    let s = serde_json::to_vec(&sarif()).unwrap_or_default();
    let r = import(app, &sid, "sarif", "", &admin, &s).expect(200);
    assert_eq!(r.body["summary"]["created"], 2, "{}", r.body);
    assert_eq!(r.body["skipped"][0]["reason"], "suppressed");
    let first = result_for(&r.body, "39fa2ee980eb94b0:1", "src/db.js");
    assert_eq!(first["risk_rating"], "high", "SARIF error");
    // A changed file with the same fingerprints: the same items, by fingerprint.
    let mut moved = sarif();
    moved["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["region"]["startLine"] =
        json!(44);
    let r2 = import(
        app,
        &sid,
        "sarif",
        "",
        &admin,
        &serde_json::to_vec(&moved).unwrap_or_default(),
    )
    .expect(200);
    assert_eq!(r2.body["summary"]["created"], 0, "{}", r2.body);
    assert_eq!(
        result_for(&r2.body, "39fa2ee980eb94b0:1", "src/db.js")["id"],
        first["id"]
    );

    let csv = "Plugin,Plugin Name,Severity,IP Address,DNS Name,CVE,Solution,Description,Last Observed\n\
               104743,TLS Version 1.0 Protocol Detection,Medium,10.0.2.1,app1.example.org,CVE-2011-3389,Disable TLS 1.0,The service accepts TLS 1.0.,\"Nov 3, 2026 10:12:01 UTC\"\n\
               19506,Nessus Scan Information,Info,10.0.2.1,app1.example.org,,,,\n\
               201194,OpenSSH regreSSHion,Critical,10.0.2.2,app2.example.org,CVE-2024-6387,Upgrade OpenSSH,sshd race.,\"Nov 3, 2026 10:12:01 UTC\"\n";
    let r = import(app, &sid, "csv", "", &admin, csv.as_bytes()).problem(400, "invalid_query");
    assert_eq!(r.body["errors"][0]["code"], "mapping_required");
    let r = import(
        app,
        &sid,
        "csv",
        "&preset=tenable_sc",
        &admin,
        csv.as_bytes(),
    )
    .expect(200);
    assert_eq!(r.body["summary"]["created"], 2, "{}", r.body);
    assert_eq!(r.body["summary"]["skipped_informational"], 1);
    let mapping = json!({"scanner": "Qualys", "identifier": "QID", "asset": "IP", "title": "Title",
                         "severity": "Severity", "severity_values": {"5": "critical", "4": "high", "3": "moderate", "2": "low", "1": "info"}});
    let q =
        "QID,Title,Severity,IP\n38173,SSL Certificate - Signature Verification Failed,2,10.0.3.9\n";
    let enc: String = url_encode(&mapping.to_string());
    let r = import(
        app,
        &sid,
        "csv",
        &format!("&mapping={enc}"),
        &admin,
        q.as_bytes(),
    )
    .expect(200);
    assert_eq!(r.body["summary"]["created"], 1, "{}", r.body);
    assert_eq!(r.body["results"][0]["risk_rating"], "low");

    // A mapping saved on the system, its default controls, and informational findings kept.
    let sys = app.get(&format!("/v1/systems/{sid}"), &admin).expect(200);
    let bad = app.patch(
        &format!("/v1/systems/{sid}"),
        &admin,
        &json!({"scans": {"vulnerability_control": "not a control"}}),
        Some(&format!("\"{}\"", sys.body["version"])),
    );
    assert_eq!(bad.status, 422, "{}", bad.body);
    app.patch(
        &format!("/v1/systems/{sid}"),
        &admin,
        &json!({"scans": {"csv_mapping": mapping, "vulnerability_control": "RA-5", "include_informational": true}}),
        Some(&format!("\"{}\"", sys.body["version"])),
    )
    .expect(200);
    let q2 = "QID,Title,Severity,IP\n38174,Traceroute,1,10.0.3.9\n38175,Weak cipher,3,10.0.3.9\n";
    let r = import(app, &sid, "csv", "", &admin, q2.as_bytes()).expect(200);
    assert_eq!(
        r.body["summary"]["created"], 2,
        "the saved mapping, informational kept: {}",
        r.body
    );
    assert_eq!(
        item(app, &r.body["results"][1]["id"])["controls"],
        json!(["RA-5"])
    );
}
both!(json_formats_and_csv_take_their_findings);

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn malformed_and_truncated_files_store_nothing(app: &TestApp) {
    let admin = app.admin();
    let sid = app.system("Broken");
    let full = weekly();
    let cut = &full[..full.len() / 2];
    let checklist = ckl(&[("V-1", "high", "Open", "CCI-000366")]);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("nessus", cut.as_bytes().to_vec(), "line"),
        (
            "nessus",
            b"<NessusClientData_v2><Report><ReportHost name=\"a\"></Report>".to_vec(),
            "line",
        ),
        ("nessus", checklist.as_bytes().to_vec(), ""),
        (
            "ckl",
            checklist.as_bytes()[..checklist.len() - 40].to_vec(),
            "line",
        ),
        ("cklb", b"{\"stigs\": [".to_vec(), "line"),
        (
            "sarif",
            b"{\"version\": \"2.1.0\", \"runs\": [{\"results\": [}".to_vec(),
            "line",
        ),
        (
            "sarif",
            br#"{"version": "1.0.0", "runs": []}"#.to_vec(),
            "/version",
        ),
        (
            "csv",
            b"Plugin,Plugin Name,Severity,IP Address\n1,a,High\n".to_vec(),
            "line",
        ),
    ];
    for (format, body, place) in cases {
        let query = if format == "csv" {
            "&preset=tenable_sc"
        } else {
            ""
        };
        let r = import(app, &sid, format, query, &admin, &body).problem(422, "unreadable_scan");
        let got = r.body["errors"][0]["place"].as_str().unwrap_or_default();
        assert!(
            got.contains(place),
            "{format}: the place is named ({got}): {}",
            r.body
        );
    }
    let scans = app
        .get(&format!("/v1/systems/{sid}/scans"), &admin)
        .expect(200);
    assert_eq!(scans.body, json!([]), "nothing stored");
    let items = app
        .get(&format!("/v1/systems/{sid}/items"), &admin)
        .expect(200);
    assert_eq!(items.body["items"], json!([]));
    import(app, &sid, "nessus", "", &admin, b"").problem(400, "empty_body");
}
both!(malformed_and_truncated_files_store_nothing);

fn kev(cve: &str, due: &str) -> Value {
    json!({
        "title": "CISA Catalog of Known Exploited Vulnerabilities",
        "catalogVersion": "2026.11.30",
        "dateReleased": "2026-11-30T17:04:19.9796Z",
        "count": 1,
        "vulnerabilities": [{
            "cveID": cve, "vendorProject": "OpenBSD ", "product": "OpenSSH",
            "vulnerabilityName": "OpenSSH Signal Handler Race Condition",
            "dateAdded": "2026-11-06", "shortDescription": "A race condition in sshd.",
            "requiredAction": "Apply mitigations per vendor instructions.", "dueDate": due,
            "knownRansomwareCampaignUse": "Known", "notes": "https://nvd.nist.gov", "cwes": ["CWE-364"]
        }]
    })
}

fn catalogs_mark_items_deadlines_and_the_template(app: &TestApp) {
    let admin = app.admin();
    let sid = app.system_in("Threats", "fedramp");
    let r = import(app, &sid, "nessus", "", &admin, weekly().as_bytes()).expect(200);
    let ssh = result_for(&r.body, "201194", "web1.example.org:22/tcp")["id"].clone();
    let tls = result_for(&r.body, "104743", "web1.example.org:443/tcp")["id"].clone();
    let before = item(app, &ssh);
    assert!(before["kev"].is_null());

    // A bad catalog is refused whole, naming the place.
    let mut bad = kev("CVE-2024-6387", &days(-1));
    bad["vulnerabilities"][0]["cveID"] = json!("CVE-24-1");
    let r = app.request(
        "PUT",
        "/v1/catalogs/kev",
        Some(&admin),
        &[],
        Some(&serde_json::to_vec(&bad).unwrap_or_default()),
    );
    let r = r.problem(422, "invalid_catalog");
    assert_eq!(
        r.body["errors"][0]["place"], "/vulnerabilities/0/cveID",
        "{}",
        r.body
    );

    // Before the policy's date (detection on Nov 3 + 30 days): the KEV date governs.
    // A fixed date: the detection date is fixed too, so one relative to today
    // stops being the earlier of the two once today passes Dec 4.
    let due = "2026-11-20".to_owned();
    let r = app
        .request(
            "PUT",
            "/v1/catalogs/kev",
            Some(&admin),
            &[],
            Some(&serde_json::to_vec(&kev("CVE-2024-6387", &due)).unwrap_or_default()),
        )
        .expect(200);
    assert_eq!(r.body["catalog"]["version"], "2026.11.30");
    assert!(
        r.body["items_refreshed"].as_u64().unwrap_or(0) >= 2,
        "{}",
        r.body
    );
    let after = item(app, &ssh);
    assert_eq!(after["kev"]["due_date"], due.as_str(), "{after}");
    assert_eq!(after["kev"]["ransomware"], true);
    assert_eq!(
        after["scheduled_completion"],
        due.as_str(),
        "the earlier KEV date governs"
    );
    assert_eq!(after["deadline_rule"], "kev:CVE-2024-6387");
    let history = app
        .get(
            &format!("/v1/items/{}/history", ssh.as_str().unwrap_or_default()),
            &admin,
        )
        .expect(200);
    assert!(
        history.body.to_string().contains("kev:CVE-2024-6387"),
        "recorded: {}",
        history.body
    );
    let list = app
        .get(&format!("/v1/systems/{sid}/items?kev=true"), &admin)
        .expect(200);
    assert_eq!(
        list.body["items"].as_array().map(Vec::len),
        Some(2),
        "both hosts' sshd: {}",
        list.body
    );

    // A date a person set is never replaced.
    let tls_id = tls.as_str().unwrap_or_default();
    let t = item(app, &tls);
    app.patch(
        &format!("/v1/items/{tls_id}"),
        &admin,
        &json!({"cves": ["CVE-2011-3389", "CVE-2024-6387"], "scheduled_completion": days(20)}),
        Some(&format!("\"{}\"", t["version"])),
    )
    .expect(200);
    let t = item(app, &tls);
    assert_eq!(
        (t["deadline_rule"].as_str(), t["kev"]["cve"].as_str()),
        (Some("manual"), Some("CVE-2024-6387"))
    );

    // EPSS, gzip as downloaded: scores on items, and the list sorts by them.
    let csv = "#model_version:v2025.03.14,score_date:2026-11-30T12:55:00Z\ncve,epss,percentile\nCVE-2024-6387,0.94301,0.99912\nCVE-2011-3389,0.00421,0.61234\n";
    let mut gz = flate2_gzip(csv.as_bytes());
    let r = app
        .request("PUT", "/v1/catalogs/epss", Some(&admin), &[], Some(&gz))
        .expect(200);
    assert_eq!(r.body["catalog"]["entries"], 2, "{}", r.body);
    assert_eq!(item(app, &ssh)["epss"]["score"], 0.94301);
    let list = app
        .get(
            &format!("/v1/systems/{sid}/items?sort=-epss&limit=1"),
            &admin,
        )
        .expect(200);
    assert_eq!(
        list.body["items"][0]["epss"]["score"], 0.94301,
        "{}",
        list.body
    );
    let cursor = list.body["next_cursor"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let next = app
        .get(
            &format!("/v1/systems/{sid}/items?sort=-epss&limit=5&cursor={cursor}"),
            &admin,
        )
        .expect(200);
    assert_eq!(
        next.body["items"].as_array().map(Vec::len),
        Some(2),
        "{}",
        next.body
    );
    gz.truncate(gz.len() / 2);
    app.request("PUT", "/v1/catalogs/epss", Some(&admin), &[], Some(&gz))
        .problem(422, "invalid_catalog");
    let cats = app
        .get("/v1/catalogs", &app.token(&[Role::Viewer], &[]))
        .expect(200);
    assert_eq!(cats.body.as_array().map(Vec::len), Some(2));

    // The FedRAMP template fills the BOD 22-01 columns.
    let (status, _, bytes) = app.get_bytes(&format!("/v1/systems/{sid}/export?format=csv"), &admin);
    assert_eq!(status, 200);
    let text = String::from_utf8_lossy(&bytes);
    let ssh_row = text
        .lines()
        .find(|l| l.contains("web1.example.org:22/tcp"))
        .unwrap_or_else(|| panic!("no row: {text}"));
    let due_us = chrono::NaiveDate::parse_from_str(&due, "%Y-%m-%d")
        .map(|d| d.format("%m/%d/%Y").to_string())
        .unwrap_or_default();
    assert!(
        ssh_row.contains(&format!("Yes,{due_us},CVE-2024-6387")),
        "{ssh_row}"
    );
}
both!(catalogs_mark_items_deadlines_and_the_template);

fn flate2_gzip(data: &[u8]) -> Vec<u8> {
    let mut child = std::process::Command::new("gzip")
        .arg("-c")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("gzip: {e}"));
    if let Some(mut stdin) = child.stdin.take() {
        use std::io::Write;
        stdin.write_all(data).unwrap_or_else(|e| panic!("{e}"));
    }
    child
        .wait_with_output()
        .map(|o| o.stdout)
        .unwrap_or_else(|e| panic!("{e}"))
}

fn grouped_findings_are_instances_of_one_item(app: &TestApp) {
    let admin = app.admin();
    let sid = app.system_in("Grouped", "fedramp");
    let sys = app.get(&format!("/v1/systems/{sid}"), &admin).expect(200);
    app.patch(
        &format!("/v1/systems/{sid}"),
        &admin,
        &json!({"scans": {"group_instances": true}}),
        Some(&format!("\"{}\"", sys.body["version"])),
    )
    .expect(200);
    let r = import(app, &sid, "nessus", "", &admin, weekly().as_bytes()).expect(200);
    assert_eq!(r.body["summary"]["created"], 2, "{}", r.body);
    let a = result_for(&r.body, "201194", "web1.example.org:22/tcp");
    let b = result_for(&r.body, "201194", "10.0.0.6:22/tcp");
    assert_eq!(a["id"], b["id"], "one item for both hosts");
    let it = item(app, &a["id"]);
    assert_eq!(
        it["assets"],
        json!(["web1.example.org:22/tcp", "10.0.0.6:22/tcp"])
    );
    // The same file again: nothing changes.
    let again = import(app, &sid, "nessus", "", &admin, weekly().as_bytes()).expect(200);
    assert_eq!(
        result_for(&again.body, "201194", "10.0.0.6:22/tcp")["id"],
        a["id"]
    );
    // One instance gone, the other still there: not a closure candidate.
    let one_left = nessus(&[
        (
            "web1",
            Some("web1.example.org"),
            "10.0.0.5",
            vec![(201194, 22, 4, "OpenSSH regreSSHion", vec!["CVE-2024-6387"])],
        ),
        ("10.0.0.6", None, "10.0.0.6", vec![]),
    ]);
    let r = import(app, &sid, "nessus", "", &admin, one_left.as_bytes()).expect(200);
    assert!(
        !r.body["not_seen"]
            .as_array()
            .is_some_and(|n| n.iter().any(|x| x["id"] == a["id"])),
        "{}",
        r.body
    );
    // Both gone: it is.
    let none_left = nessus(&[
        ("web1", Some("web1.example.org"), "10.0.0.5", vec![]),
        ("10.0.0.6", None, "10.0.0.6", vec![]),
    ]);
    let r = import(app, &sid, "nessus", "", &admin, none_left.as_bytes()).expect(200);
    assert!(
        r.body["not_seen"]
            .as_array()
            .is_some_and(|n| n.iter().any(|x| x["id"] == a["id"])),
        "{}",
        r.body
    );
}
both!(grouped_findings_are_instances_of_one_item);
