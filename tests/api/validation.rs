//! Regime profiles: writes refused by blocking rules, and dry runs that list findings without
//! saving anything.

use crate::both;
use crate::harness::{minimal_item, TestApp};
use serde_json::{json, Value};

fn rules(v: &Value) -> Vec<String> {
    v["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f["rule"].as_str().map(str::to_owned))
        .collect()
}

fn profiles_refuse_writes_and_dry_runs_explain(app: &TestApp) {
    let admin = app.admin();
    // eMASS: resources, a point of contact and the source identifier are required.
    let emass = app.system_in("eMASS system", "emass");
    let r = app
        .item(&emass, json!({}))
        .problem(422, "validation_failed");
    let codes: Vec<&str> = r.body["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["code"].as_str())
        .collect();
    assert_eq!(
        codes,
        [
            "emass.resources_required",
            "emass.poc_required",
            "emass.source_identifier_required"
        ]
    );
    let dry = app
        .post(
            "/v1/items/validate",
            &admin,
            &json!({"system_id": emass, "item": minimal_item()}),
        )
        .expect(200);
    assert_eq!(
        rules(&dry.body),
        [
            "emass.resources_required",
            "emass.poc_required",
            "emass.source_identifier_required"
        ]
    );
    assert_eq!(
        dry.body["findings"][0]["pointer"],
        "/item/resources/description"
    );
    assert!(dry.body["findings"][0]["citation"]
        .as_str()
        .unwrap_or("")
        .contains("eMASS"));
    assert_eq!(dry.body["findings"][0]["severity"], "error");
    let complete = json!({"resources": {"description": "2 engineer-days"}, "owner": {"name": "Dana"}, "source": {"kind": "scan", "identifier": "plugin 1"}});
    let mut ok = minimal_item();
    if let (Some(o), Some(extra)) = (ok.as_object_mut(), complete.as_object()) {
        o.extend(extra.clone());
    }
    assert_eq!(
        app.post(
            "/v1/items/validate",
            &admin,
            &json!({"system_id": emass, "item": ok})
        )
        .expect(200)
        .body["findings"],
        json!([])
    );
    app.item(&emass, complete).expect(201);
    // Dry runs report shape and item rules as findings, and save nothing.
    let dry = app
        .post(
            "/v1/items/validate",
            &admin,
            &json!({"system_id": emass, "item": {"title": "x", "colour": "red"}}),
        )
        .expect(200);
    assert_eq!(rules(&dry.body), ["item.unknown_field"]);
    assert_eq!(dry.body["findings"][0]["pointer"], "/item/colour");
    let mut future = complete_emass_item();
    future["detected_on"] = json!("2999-01-01");
    let dry = app
        .post(
            "/v1/items/validate",
            &admin,
            &json!({"system_id": emass, "item": future}),
        )
        .expect(200);
    assert!(
        rules(&dry.body).contains(&"item.date_in_future".to_string()),
        "{}",
        dry.body
    );
    assert_eq!(
        app.get(&format!("/v1/systems/{emass}/items"), &admin).body["items"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    app.post(
        "/v1/items/validate",
        &admin,
        &json!({"system_id": uuid::Uuid::new_v4(), "item": minimal_item()}),
    )
    .problem(404, "not_found");

    // FedRAMP: an operational requirement on a High is refused; a stale vendor check-in is reported.
    let fed = app.system_in("FedRAMP", "fedramp");
    let r = app
        .item(
            &fed,
            json!({"deviation": {"kind": "operational_requirement", "rationale": "Legacy client"}}),
        )
        .problem(422, "validation_failed");
    assert_eq!(
        r.body["errors"][0]["code"],
        "fedramp.operational_requirement_on_high"
    );
    let vendor = app
        .item(
            &fed,
            json!({"vendor_dependency": {"product": "Acme LB", "last_check_in": "2026-09-01"}}),
        )
        .expect(201);
    let report = app
        .post(&format!("/v1/systems/{fed}/validate"), &admin, &json!({}))
        .expect(200);
    assert_eq!(
        rules(&report.body),
        [
            "fedramp.vendor_check_in_overdue",
            "fedramp.vendor_dependency_not_mitigated"
        ]
    );
    assert_eq!(report.body["findings"][0]["item_id"], vendor.body["id"]);
    assert_eq!(report.body["findings"][0]["severity"], "warning");

    // CMMC: an item on a requirement that can never be on a Level 2 POA&M is flagged.
    let cmmc = app.system_in("CUI", "cmmc_l2");
    app.item(&cmmc, json!({"controls": ["3.1.3", "AC.L2-3.1.1"]}))
        .expect(201);
    let report = app
        .post(&format!("/v1/systems/{cmmc}/validate"), &admin, &json!({}))
        .expect(200);
    assert_eq!(rules(&report.body), ["cmmc.requirement_not_poam_eligible"]);
    assert_eq!(report.body["findings"][0]["pointer"], "/controls/1");
    assert_eq!(
        report.body["findings"][0]["citation"],
        "32 CFR 170.21(a)(2)(ii)"
    );
}
both!(profiles_refuse_writes_and_dry_runs_explain);

/// A minimal item with what eMASS requires.
fn complete_emass_item() -> Value {
    let mut v = minimal_item();
    v["resources"] = json!({"description": "r"});
    v["owner"] = json!({"name": "o"});
    v["source"] = json!({"kind": "scan", "identifier": "i"});
    v
}
