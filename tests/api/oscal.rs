//! OSCAL against documents nobody here wrote: exports valid by NIST's JSON schemas (1.1.2 and
//! 1.2.1) and both compliance-trestle lines, FedRAMP's conventions, imports of documents in the
//! shape of FedRAMP's template and NIST's example, and round trips that change nothing.

use crate::both;
use crate::harness::{python_check, python_tools, TestApp};
use poam_domain::Role;
use serde_json::{json, Value};
use std::path::PathBuf;

const FEDRAMP_NS: &str = "https://fedramp.gov/ns/oscal";

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap_or_default().to_owned()
}

/// Validates a document by the NIST schema of the version it claims (Unicode-class regexes),
/// then parses it with compliance-trestle.
const OSCAL_CHECK: &str = r#"
import json, sys, pathlib, regex
from jsonschema import validators, Draft7Validator
from jsonschema.exceptions import ValidationError

def pattern(validator, patrn, instance, schema):
    if validator.is_type(instance, "string") and not regex.search(patrn, instance):
        yield ValidationError(f"{instance!r} does not match {patrn!r}")

def pattern_properties(validator, patterns, instance, schema):
    if validator.is_type(instance, "object"):
        for p, sub in patterns.items():
            for k, v in instance.items():
                if regex.search(p, k):
                    yield from validator.descend(v, sub, path=k, schema_path=p)

Unicode = validators.extend(Draft7Validator, {"pattern": pattern, "patternProperties": pattern_properties})
path = pathlib.Path(sys.argv[1])
doc = json.loads(path.read_text())
version = doc["plan-of-action-and-milestones"]["metadata"]["oscal-version"]
schema = json.loads((pathlib.Path("SCHEMAS") / f"oscal_poam_schema_{version}.json").read_text())
errors = sorted(Unicode(schema).iter_errors(doc), key=lambda e: list(e.absolute_path))
for e in errors[:20]:
    print("SCHEMA", "/".join(map(str, e.absolute_path)), e.message[:300])
if errors:
    sys.exit(1)
import importlib.metadata as md
from trestle.oscal.poam import PlanOfActionAndMilestones
poam = PlanOfActionAndMilestones.oscal_read(path)
print(version, len(poam.poam_items), "trestle", md.version("compliance-trestle"))
"#;

/// NIST's schemas, read from `../shared/reference` (never copied into the repository).
fn schemas() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/reference/oscal-schemas");
    if dir.join("oscal_poam_schema_1.1.2.json").exists() {
        return Some(dir);
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("CI=true but {} is missing", dir.display());
    }
    eprintln!(
        "SKIPPED: the NIST OSCAL schemas ({} is missing)",
        dir.display()
    );
    None
}

/// The current compliance-trestle (5.x), in `.venv-tools5` (`make tools`).
fn python5() -> Option<PathBuf> {
    let path = std::env::var_os("POAM_TEST_PYTHON5")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv-tools5/bin/python")
        });
    if path.exists() {
        return Some(path);
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!(
            "CI=true but {} is missing: run `make tools`",
            path.display()
        );
    }
    eprintln!(
        "SKIPPED: compliance-trestle 5.x ({} is missing)",
        path.display()
    );
    None
}

fn save(app: &TestApp, name: &str, body: &[u8]) -> PathBuf {
    let path = app.dir.join(name);
    std::fs::write(&path, body).unwrap_or_else(|e| panic!("{e}"));
    path
}

fn export(app: &TestApp, sid: &str, query: &str) -> (Vec<u8>, Value) {
    let (status, _, body) = app.get_bytes(
        &format!("/v1/systems/{sid}/export?format=oscal{query}"),
        &app.admin(),
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let doc = serde_json::from_slice(&body).unwrap_or_default();
    (body, doc)
}

fn import(app: &TestApp, sid: &str, query: &str, doc: &Value) -> Value {
    app.post(
        &format!("/v1/systems/{sid}/imports/oscal{query}"),
        &app.admin(),
        doc,
    )
    .expect(200)
    .body
}

fn count(report: &Value, list: &str) -> usize {
    report[list].as_array().map_or(0, Vec::len)
}

/// A FedRAMP system with an item carrying every field OSCAL has a place for (residual risk,
/// vendor dependency, change management, a deviation, milestones, evidence) and a plain one.
fn rich_system(app: &TestApp, name: &str) -> String {
    let sid = app.system_in(name, "fedramp");
    let admin = app.admin();
    app.item(
        &sid,
        json!({"title": "Plain weakness", "risk_rating": "low"}),
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
                "assets": ["lb-1.example.org"],
                "source": {"kind": "scan", "detector": "Nessus", "identifier": "104743"},
                "likelihood": "high", "impact": "moderate", "risk_rating": "high",
                "adjusted_risk_rating": "moderate",
                "risk_justification": "Only internal clients reach it.",
                "owner": {"name": "Dana Whitfield", "email": "dana@example.org"},
                "remediation_plan": "Disable TLS below 1.2.\nRescan.",
                "resources": {"description": "Two engineer-days", "estimated_cost": 1200.5, "funded": true},
                "interim_mitigation": "WAF blocks legacy ciphers.",
                "residual_risk": "Low once the WAF rule is in place.\nReviewed monthly.",
                "deviation": {"kind": "risk_adjustment", "rationale": "Compensating WAF rule."},
                "vendor_dependency": {"product": "Acme LB 9.2", "vendor": "Acme"},
                "change_management": {"ticket": "CHG0012345", "testing": "Handshake scan.", "rollback": "Restore the policy.", "expedited": false},
                "comments": "Tracked weekly.",
            }),
        )
        .expect(201);
    let rid = id(&rich.body);
    app.milestone(&rid, "2026-10-20");
    app.milestone(&rid, "2026-10-25");
    app.evidence(&rid).expect(201);
    app.transition(&rid, &admin, json!({"to": "in_progress"}))
        .expect(200);
    sid
}

fn oscal_exports_validate_against_the_nist_schemas_and_both_trestles(app: &TestApp) {
    let sid = rich_system(app, "Validated");
    for (query, version) in [("", "1.1.2"), ("&oscal_version=1.2.1", "1.2.1")] {
        let (body, doc) = export(app, &sid, query);
        let poam = &doc["plan-of-action-and-milestones"];
        assert_eq!(poam["metadata"]["oscal-version"], version);
        assert!(
            poam["risks"]
                .as_array()
                .into_iter()
                .flatten()
                .all(|r| r.get("remarks").is_none()),
            "the OSCAL risk has no remarks"
        );
        let Some(dir) = schemas() else { continue };
        let script = OSCAL_CHECK.replace("SCHEMAS", &dir.display().to_string());
        let file = save(app, &format!("poam-{version}.oscal.json"), &body);
        for python in [python_tools(), python5()].into_iter().flatten() {
            let out = python_check(&python, &script, &file);
            assert!(out.starts_with(&format!("{version} 2 ")), "{out}");
        }
    }
    app.get(
        &format!("/v1/systems/{sid}/export?format=oscal&oscal_version=1.2.0"),
        &app.admin(),
    )
    .problem(400, "invalid_query");
}
both!(oscal_exports_validate_against_the_nist_schemas_and_both_trestles);

fn props_named<'a>(v: &'a Value, name: &str) -> Vec<&'a Value> {
    v["props"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["name"] == name)
        .collect()
}

fn oscal_exports_follow_fedramp_conventions(app: &TestApp) {
    let sid = rich_system(app, "Conventions");
    let (_, doc) = export(app, &sid, "");
    let poam = &doc["plan-of-action-and-milestones"];
    let meta = &poam["metadata"];
    assert!(meta["published"].is_string());
    assert_eq!(props_named(meta, "marking")[0]["value"], "cui");
    let ssp = poam["import-ssp"]["href"].as_str().unwrap_or_default();
    let resources = poam["back-matter"]["resources"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        resources
            .iter()
            .any(|r| format!("#{}", r["uuid"].as_str().unwrap_or("")) == ssp),
        "import-ssp points at a back-matter resource"
    );
    let evidence: Vec<&Value> = resources
        .iter()
        .filter(|r| {
            props_named(r, "type")
                .iter()
                .any(|p| p["value"] == "evidence" && p["ns"] == FEDRAMP_NS)
        })
        .collect();
    assert_eq!(evidence.len(), 1);
    let href = evidence[0]["rlinks"][0]["href"].as_str().unwrap_or("");
    assert!(
        !href.starts_with('/') && !href.contains("/v1/"),
        "{href} is relative"
    );
    let risk = poam["risks"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["title"] == "TLS 1.0 on the load balancer")
        .cloned()
        .unwrap_or_default();
    let controls: Vec<&Value> = props_named(&risk, "impacted-control-id")
        .into_iter()
        .map(|p| &p["value"])
        .collect();
    assert_eq!(controls, [&json!("sc-8.1"), &json!("ac-2")]);
    assert!(props_named(&risk, "control-id").is_empty());
    assert_eq!(props_named(&risk, "risk-adjustment")[0]["value"], "pending");
    assert!(props_named(&risk, "false-positive").is_empty(), "no `no`");
    assert_eq!(
        props_named(&risk, "vendor-dependency")[0]["value"],
        "tracking"
    );
    let lifecycles: Vec<&Value> = risk["remediations"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| &m["lifecycle"])
        .collect();
    assert_eq!(lifecycles, [&json!("recommendation"), &json!("planned")]);
    assert_eq!(
        risk["remediations"][0]["origins"][0]["actors"][0]["type"],
        "tool"
    );
    assert_eq!(
        risk["remediations"][1]["tasks"].as_array().map(Vec::len),
        Some(2)
    );
    for c in risk["characterizations"].as_array().into_iter().flatten() {
        for f in c["facets"].as_array().into_iter().flatten() {
            let state = props_named(f, "state");
            assert!(
                state.len() == 1
                    && ["initial", "adjusted"].contains(&state[0]["value"].as_str().unwrap_or("")),
                "{f}"
            );
        }
    }
    let obs_uuid = &risk["related-observations"][0]["observation-uuid"];
    let obs = poam["observations"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|o| &o["uuid"] == obs_uuid)
        .cloned()
        .unwrap_or_default();
    let actor = &obs["origins"][0]["actors"][0];
    assert_eq!(actor["type"], "tool");
    let tool = poam["local-definitions"]["components"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["uuid"] == actor["actor-uuid"])
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        (tool["title"].as_str(), tool["type"].as_str()),
        (Some("Nessus"), Some("software"))
    );
}
both!(oscal_exports_follow_fedramp_conventions);

/// `system-id` carries the FedRAMP package id when the system has one (FedRAMP's
/// `identifier-type`), the service's own uuid otherwise; the id is checked on the way in.
fn the_system_id_is_fedramps_when_there_is_one(app: &TestApp) {
    let sid = rich_system(app, "Identified");
    let (_, doc) = export(app, &sid, "");
    assert_eq!(
        doc["plan-of-action-and-milestones"]["system-id"],
        json!({"identifier-type": "https://ietf.org/rfc/rfc4122", "id": sid})
    );
    let r = app.patch(
        &format!("/v1/systems/{sid}"),
        &app.admin(),
        &json!({"fedramp_id": "F123"}),
        None,
    );
    assert_eq!(r.status, 422, "{}", r.body);
    app.patch(
        &format!("/v1/systems/{sid}"),
        &app.admin(),
        &json!({"fedramp_id": "F1234567890"}),
        None,
    )
    .expect(200);
    let (_, doc) = export(app, &sid, "");
    assert_eq!(
        doc["plan-of-action-and-milestones"]["system-id"],
        json!({"identifier-type": "https://fedramp.gov", "id": "F1234567890"})
    );
}
both!(the_system_id_is_fedramps_when_there_is_one);

/// A document in the shape of FedRAMP's Rev5 template (written here, from its public guide):
/// a tool component, a tool's recommendation before the provider's planned remediation with
/// milestone tasks, initial and adjusted facets with `state`, FedRAMP's deviation values.
fn fedramp_shaped(deadline: bool) -> Value {
    let mut risk = json!({
        "uuid": "1689ec06-100a-4fed-9df9-e69f07d3f3c9",
        "title": "OpenSSL outdated", "description": "The host runs OpenSSL 1.0.2.",
        "statement": "Remote attackers may decrypt traffic.",
        "props": [
            {"name": "impacted-control-id", "ns": FEDRAMP_NS, "value": "si-2"},
            {"name": "impacted-control-id", "ns": FEDRAMP_NS, "value": "sc-8.1"},
            {"name": "false-positive", "ns": FEDRAMP_NS, "value": "pending"},
            {"name": "vendor-dependency", "ns": FEDRAMP_NS, "value": "tracking"},
            {"name": "vendor-dependent-product", "ns": FEDRAMP_NS, "value": "Acme OS 7"},
            {"name": "operational-requirement", "ns": FEDRAMP_NS, "value": "withdrawn"},
            {"name": "kev-catalog", "ns": FEDRAMP_NS, "value": "no"}
        ],
        "status": "open",
        "characterizations": [
            {"origin": {"actors": [{"type": "tool", "actor-uuid": "9d194268-a9d1-4c38-839f-9c4aa57bf71e",
                "props": [{"name": "vulnerability-id", "ns": FEDRAMP_NS, "value": "VulID-001"},
                          {"name": "plugin-id", "ns": FEDRAMP_NS, "value": "134878"}]}]},
             "facets": [{"name": "vulnerability-id", "system": "http://cve.mitre.org", "value": "CVE-2016-2107"},
                        {"name": "cvss3-base-score", "system": "http://www.first.org/cvss/v3.1", "value": "5.9"}]},
            {"origin": {"actors": [{"type": "party", "actor-uuid": "49f73135-efab-4275-9a79-003656ad890a"}]},
             "facets": [
                {"name": "likelihood", "system": "https://fedramp.gov", "value": "low", "props": [{"name": "state", "value": "initial"}]},
                {"name": "impact", "system": "https://fedramp.gov", "value": "high", "props": [{"name": "state", "value": "initial"}]},
                {"name": "risk", "system": "https://fedramp.gov", "value": "high", "props": [{"name": "state", "value": "initial"}]},
                {"name": "risk", "system": "https://fedramp.gov", "value": "moderate", "props": [{"name": "state", "value": "adjusted"}],
                 "remarks": "Only reachable from the admin VPN."}
             ]}
        ],
        "remediations": [
            {"uuid": "a3106e23-8b79-4b1b-abf4-74f16c51ad0c", "lifecycle": "recommendation",
             "title": "Tool's Recommendation", "description": "Upgrade to OpenSSL 1.1.1 or later.",
             "origins": [{"actors": [{"type": "tool", "actor-uuid": "9d194268-a9d1-4c38-839f-9c4aa57bf71e"}]}]},
            {"uuid": "e9ee6fe2-856f-42c7-8c2e-ff6466d31010", "lifecycle": "planned",
             "title": "CSP's Remediation Plan", "description": "Rebuild the image on the patched base.",
             "props": [{"name": "estimated-cost", "ns": "https://example.org/ns", "value": "about 2k"}],
             "origins": [{"actors": [{"type": "party", "actor-uuid": "49f73135-efab-4275-9a79-003656ad890a"}]}],
             "required-assets": [{"uuid": "7bd1a61e-4fda-4c52-a447-14072ef6e042", "description": "One engineer-day."}],
             "tasks": [
                {"uuid": "a12dea1d-e4d1-4f09-aacf-1eaf203a3092", "type": "milestone", "title": "Patch staging",
                 "description": "Roll the image to staging.",
                 "timing": {"within-date-range": {"start": "2026-10-01T00:00:00Z", "end": "2026-10-20T00:00:00Z"}}},
                {"uuid": "08c50f90-3b08-49fd-862d-32ec96e6bee5", "type": "milestone", "title": "Patch production",
                 "description": "Roll the image to production.", "timing": {"on-date": {"date": "2026-10-30T00:00:00Z"}}}
             ]}
        ],
        "related-observations": [{"observation-uuid": "0aa54106-8a63-4953-ac0d-30ff91f8d4ab"}]
    });
    if deadline {
        risk["deadline"] = json!("2026-11-30T00:00:00Z");
    }
    json!({"plan-of-action-and-milestones": {
        "uuid": "5f9e3a2b-1c4d-4e8f-9a0b-1c2d3e4f5a6b",
        "metadata": {"title": "Acme Cloud FedRAMP POA&M", "published": "2026-10-15T00:00:00Z",
            "last-modified": "2026-10-15T00:00:00Z", "version": "1.0", "oscal-version": "1.1.2",
            "props": [{"name": "marking", "value": "cui"}]},
        "import-ssp": {"href": "#b3c4d5e6-f7a8-4b9c-8d0e-1f2a3b4c5d6e"},
        "local-definitions": {
            "components": [{"uuid": "9d194268-a9d1-4c38-839f-9c4aa57bf71e", "type": "software",
                "title": "Tenable Nessus", "description": "Scanner.", "status": {"state": "operational"}}],
            "inventory-items": [{"uuid": "deb26a75-6d97-4811-ae0e-ae1c710366c1", "description": "Web node.",
                "props": [{"name": "fqdn", "value": "web-1.acme.example"}]}]
        },
        "observations": [{
            "uuid": "0aa54106-8a63-4953-ac0d-30ff91f8d4ab", "title": "Scan finding",
            "description": "Monthly authenticated scan.", "methods": ["TEST"], "types": ["finding"],
            "origins": [{"actors": [{"type": "tool", "actor-uuid": "9d194268-a9d1-4c38-839f-9c4aa57bf71e"}]}],
            "subjects": [{"subject-uuid": "deb26a75-6d97-4811-ae0e-ae1c710366c1", "type": "inventory-item"}],
            "collected": "2026-09-28T00:00:00Z"
        }],
        "risks": [risk],
        "poam-items": [{
            "uuid": "0be71cd3-f850-47db-836f-14511edbd90e", "title": "OpenSSL outdated on web-1",
            "description": "OpenSSL 1.0.2 found by the monthly scan.",
            "props": [{"name": "POAM-ID", "ns": FEDRAMP_NS, "value": "TENABLE-134878"}],
            "related-observations": [{"observation-uuid": "0aa54106-8a63-4953-ac0d-30ff91f8d4ab"}],
            "related-risks": [{"risk-uuid": "1689ec06-100a-4fed-9df9-e69f07d3f3c9"}]
        }]
    }})
}

fn a_fedramp_shaped_document_keeps_its_plan_milestones_facets_and_ids(app: &TestApp) {
    let sid = app.system_in("Acme Cloud", "fedramp");
    let report = import(app, &sid, "", &fedramp_shaped(true));
    assert_eq!(count(&report, "created"), 1, "{report}");
    let admin = app.admin();
    let item = app
        .get(&format!("/v1/systems/{sid}/items"), &admin)
        .expect(200)
        .body["items"][0]
        .clone();
    assert_eq!(
        item["external_id"], "TENABLE-134878",
        "the provider's id is kept"
    );
    assert_eq!(
        item["remediation_plan"],
        "Rebuild the image on the patched base."
    );
    assert_eq!(item["risk_rating"], "high");
    assert_eq!(item["adjusted_risk_rating"], "moderate");
    assert_eq!(
        item["risk_justification"],
        "Only reachable from the admin VPN."
    );
    assert_eq!(item["controls"], json!(["SI-2", "SC-8(1)"]));
    assert_eq!(item["cves"], json!(["CVE-2016-2107"]));
    assert_eq!(item["assets"], json!(["web-1.acme.example"]));
    assert_eq!(
        item["source"],
        json!({"kind": "scan", "detector": "Tenable Nessus", "identifier": "134878"})
    );
    assert_eq!(item["deviation"]["kind"], "false_positive");
    assert_eq!(item["vendor_dependency"]["product"], "Acme OS 7");
    assert_eq!(item["resources"]["description"], "One engineer-day.");
    let milestones = app
        .get(&format!("/v1/items/{}/milestones", id(&item)), &admin)
        .expect(200)
        .body["items"]
        .clone();
    let dues: Vec<&Value> = milestones
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| &m["due_on"])
        .collect();
    assert_eq!(
        dues,
        [&json!("2026-10-20"), &json!("2026-10-30")],
        "{milestones}"
    );
    // Every member is accounted for, with a reason.
    let unmapped = report["unmapped"].as_array().cloned().unwrap_or_default();
    let reason = |suffix: &str| -> Option<(String, String)> {
        unmapped
            .iter()
            .find(|u| u["pointer"].as_str().is_some_and(|p| p.ends_with(suffix)))
            .map(|u| {
                (
                    u["reason"].as_str().unwrap_or("").to_owned(),
                    u["detail"].as_str().unwrap_or("").to_owned(),
                )
            })
    };
    let rec = reason("/risks/0/remediations/0").unwrap_or_default();
    assert_eq!(rec.0, "not_kept");
    assert!(rec.1.contains("Upgrade to OpenSSL"), "{rec:?}");
    let cost = reason("/risks/0/remediations/1/props/0").unwrap_or_default();
    assert_eq!(cost.0, "unparseable");
    assert!(cost.1.contains("`about 2k`"), "{cost:?}");
    for p in [
        "/risks/0/statement",
        "/risks/0/props/6",
        "/risks/0/characterizations/0/facets/1",
        "/risks/0/remediations/1/title",
        "/tasks/0/timing/within-date-range/start",
        "/observations/0/title",
        "/observations/0/description",
        "/metadata/title",
        "/import-ssp",
    ] {
        assert!(reason(p).is_some(), "{p} is accounted for: {report}");
    }
    // Exported back: the provider's id travels as the external id.
    let (_, doc) = export(app, &sid, "");
    let risk = &doc["plan-of-action-and-milestones"]["risks"][0];
    assert_eq!(
        props_named(risk, "external-id")[0]["value"],
        "TENABLE-134878"
    );
    assert_eq!(risk["remediations"][1]["lifecycle"], "planned");
    assert_eq!(
        risk["remediations"][1]["description"],
        "Rebuild the image on the patched base."
    );
}
both!(a_fedramp_shaped_document_keeps_its_plan_milestones_facets_and_ids);

fn a_missing_rating_is_derived_by_table_i2_and_noted(app: &TestApp) {
    let sid = app.system_in("Derived", "fedramp");
    let mut doc = fedramp_shaped(true);
    let facets =
        &mut doc["plan-of-action-and-milestones"]["risks"][0]["characterizations"][1]["facets"];
    // Likelihood low, impact high, no risk facet: NIST SP 800-30 Table I-2 says low.
    if let Some(f) = facets.as_array_mut() {
        f.truncate(2);
    }
    let report = import(app, &sid, "", &doc);
    assert_eq!(count(&report, "created"), 1, "{report}");
    let notes = &report["created"][0]["notes"];
    assert!(
        notes
            .as_array()
            .into_iter()
            .flatten()
            .any(|n| n["code"] == "risk_rating_derived"),
        "{report}"
    );
    let item = app
        .get(&format!("/v1/systems/{sid}/items"), &app.admin())
        .expect(200)
        .body["items"][0]
        .clone();
    assert_eq!(item["risk_rating"], "low");
    // Only a likelihood: imported, the rating flagged for review.
    let sid = app.system_in("Flagged", "fedramp");
    let mut doc = fedramp_shaped(true);
    let facets =
        &mut doc["plan-of-action-and-milestones"]["risks"][0]["characterizations"][1]["facets"];
    if let Some(f) = facets.as_array_mut() {
        f.truncate(1);
    }
    let report = import(app, &sid, "", &doc);
    assert_eq!(count(&report, "created"), 1, "{report}");
    assert!(
        report["created"][0]["notes"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|n| n["code"] == "risk_rating_derived"
                && n["detail"].as_str().is_some_and(|m| m.contains("review"))),
        "{report}"
    );
}
both!(a_missing_rating_is_derived_by_table_i2_and_noted);

fn a_dangling_reference_refuses_by_default_and_skips_on_request(app: &TestApp) {
    let sid = app.system("Dangling");
    // As in NIST's example: a poam-item's related risk is a mitigating factor's uuid.
    let mut doc = fedramp_shaped(true);
    let root = &mut doc["plan-of-action-and-milestones"];
    root["risks"][0]["mitigating-factors"] =
        json!([{"uuid": "260d3c0a-fc2e-4627-9fb9-a003acdc4b14", "description": "WAF in front."}]);
    if let Some(items) = root["poam-items"].as_array_mut() {
        items.push(json!({
            "uuid": "6f5fff73-cac6-4da0-a0d9-0f931a5efafa", "title": "Mitigated", "description": "d",
            "related-risks": [{"risk-uuid": "260d3c0a-fc2e-4627-9fb9-a003acdc4b14"}]
        }));
    }
    let r = app
        .post(
            &format!("/v1/systems/{sid}/imports/oscal"),
            &app.admin(),
            &doc,
        )
        .problem(422, "validation_failed");
    assert_eq!(
        r.pointers(),
        ["/plan-of-action-and-milestones/poam-items/1/related-risks/0/risk-uuid"]
    );
    let report = import(app, &sid, "?on_dangling=skip", &doc);
    assert_eq!(
        (count(&report, "created"), count(&report, "failed")),
        (1, 1),
        "{report}"
    );
    let failed = &report["failed"][0];
    assert_eq!(
        failed["pointer"],
        "/plan-of-action-and-milestones/poam-items/1"
    );
    assert_eq!(
        failed["problem"]["errors"][0]["pointer"],
        "/plan-of-action-and-milestones/poam-items/1/related-risks/0/risk-uuid"
    );
}
both!(a_dangling_reference_refuses_by_default_and_skips_on_request);

fn item_versions(app: &TestApp, sid: &str) -> Vec<(String, i64)> {
    let mut v: Vec<(String, i64)> = app
        .get(&format!("/v1/systems/{sid}/items?limit=200"), &app.admin())
        .expect(200)
        .body["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|i| (id(i), i["version"].as_i64().unwrap_or(0)))
        .collect();
    v.sort();
    v
}

fn reimporting_without_a_deadline_is_a_no_op(app: &TestApp) {
    let sid = app.system_in("No deadline", "fedramp");
    let doc = fedramp_shaped(false);
    let first = import(app, &sid, "", &doc);
    assert_eq!(count(&first, "created"), 1, "{first}");
    let before = (item_versions(app, &sid), app.item_events(&sid));
    let again = import(app, &sid, "", &doc);
    assert_eq!(
        (count(&again, "updated"), count(&again, "skipped")),
        (0, 1),
        "{again}"
    );
    assert_eq!((item_versions(app, &sid), app.item_events(&sid)), before);
}
both!(reimporting_without_a_deadline_is_a_no_op);

fn a_systems_own_export_imported_back_changes_nothing(app: &TestApp) {
    let sid = rich_system(app, "Own");
    let (_, doc) = export(app, &sid, "");
    let before = (item_versions(app, &sid), app.item_events(&sid));
    let editor = app.token_as("editor@example.org", &[Role::Editor]);
    for (query, token) in [
        ("", editor.as_str()),
        ("?migrate=true", app.admin().as_str()),
    ] {
        let report = app
            .post(
                &format!("/v1/systems/{sid}/imports/oscal{query}"),
                token,
                &doc,
            )
            .expect(200)
            .body;
        assert_eq!(
            (
                count(&report, "created"),
                count(&report, "updated"),
                count(&report, "skipped"),
                count(&report, "failed")
            ),
            (0, 0, 2, 0),
            "{report}"
        );
        assert_eq!((item_versions(app, &sid), app.item_events(&sid)), before);
    }
}
both!(a_systems_own_export_imported_back_changes_nothing);

/// The document with what another system necessarily writes differently set aside: uuids
/// (derived from each system's ids), the metadata's times and version, the history (risk log,
/// milestone moves) and evidence files, which an import does not carry.
fn comparable(doc: &Value) -> Value {
    fn walk(v: &mut Value) {
        match v {
            Value::String(s) if uuid::Uuid::parse_str(s).is_ok() => *s = "<uuid>".into(),
            Value::String(s) if s.starts_with('#') && uuid::Uuid::parse_str(&s[1..]).is_ok() => {
                *s = "#<uuid>".into()
            }
            Value::Array(a) => a.iter_mut().for_each(walk),
            Value::Object(o) => {
                for k in ["risk-log", "links", "uuid"] {
                    o.remove(k);
                }
                if o.get("type") == Some(&json!("milestone")) {
                    o.remove("remarks");
                }
                o.values_mut().for_each(walk);
            }
            _ => {}
        }
    }
    let mut d = doc["plan-of-action-and-milestones"].clone();
    if let Some(m) = d["metadata"].as_object_mut() {
        for k in ["title", "published", "last-modified", "version", "parties"] {
            m.remove(k);
        }
    }
    if let Some(r) = d["back-matter"]["resources"].as_array_mut() {
        // The security plan (named after its system); evidence files stay with their system.
        r.retain(|x| x["props"][0]["value"] == "system-security-plan");
        if let Some(o) = r.first_mut().and_then(Value::as_object_mut) {
            o.remove("title");
        }
    }
    walk(&mut d);
    d
}

fn export_import_export_is_identical_uuids_aside(app: &TestApp) {
    let sid = rich_system(app, "First");
    let (_, first) = export(app, &sid, "");
    let target = app.system_in("Second", "fedramp");
    let report = import(app, &target, "?migrate=true", &first);
    assert_eq!(count(&report, "created"), 2, "{report}");
    let (_, second) = export(app, &target, "");
    assert_eq!(comparable(&second), comparable(&first));
}
both!(export_import_export_is_identical_uuids_aside);
