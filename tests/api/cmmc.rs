//! CMMC Level 2 over HTTP: the assessment, the SPRS score, the Conditional check and its what-if.

use crate::both;
use crate::harness::TestApp;
use poam_domain::cmmc::requirements;
use serde_json::{json, Map, Value};

fn all_met_except(except: &[(&str, &str)]) -> Value {
    let mut m = Map::new();
    for r in requirements() {
        m.insert(r.number.clone(), json!("met"));
    }
    for (k, v) in except {
        // A CMMC id stands in for its 800-171 number: name each requirement once.
        if let Some(r) = poam_domain::cmmc::requirement(k) {
            m.remove(&r.number);
        }
        m.insert((*k).to_owned(), json!(v));
    }
    Value::Object(m)
}

fn put(app: &TestApp, sid: &str, body: &Value) -> crate::harness::Resp {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    app.request(
        "PUT",
        &format!("/v1/systems/{sid}/cmmc/assessment"),
        Some(&app.admin()),
        &[("Content-Type", "application/json")],
        Some(&bytes),
    )
}

fn rules(score: &Value) -> Vec<(String, String)> {
    score["reasons"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            (
                r["rule"].as_str().unwrap_or("").to_owned(),
                r["requirement"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

fn the_conditional_check_and_its_what_if(app: &TestApp) {
    let admin = app.admin();
    let sid = app
        .post(
            "/v1/systems",
            &admin,
            &json!({"name": "CUI enclave", "regime": "cmmc_l2"}),
        )
        .expect(201)
        .body["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    // Nothing recorded: every requirement counts as not met, the SSP included: no score.
    let s = app
        .get(&format!("/v1/systems/{sid}/cmmc/score"), &admin)
        .expect(200)
        .body;
    assert_eq!(
        (s["score"].clone(), s["conditional_eligible"].clone()),
        (Value::Null, json!(false))
    );
    assert_eq!(rules(&s)[0].0, "no_system_security_plan");

    let a = put(
        app,
        &sid,
        &json!({
            "requirements": all_met_except(&[("AC.L2-3.1.3", "not_met"), ("3.13.11", "partial")]),
            "conditional_status_date": "2026-10-01"
        }),
    )
    .expect(200);
    assert_eq!(
        a.body["requirements"]["3.1.3"], "not_met",
        "CMMC ids are stored as 800-171 numbers"
    );
    assert_eq!(a.header("etag"), Some("\"1\""));
    // Not yet on the POA&M: eligible requirements, but nothing tracks them.
    let s = app
        .get(&format!("/v1/systems/{sid}/cmmc/score"), &admin)
        .expect(200)
        .body;
    assert_eq!(s["score"], 106);
    assert_eq!(
        rules(&s),
        [
            ("requirement_not_on_poam".to_string(), "3.1.3".to_string()),
            ("requirement_not_on_poam".into(), "3.13.11".into())
        ]
    );
    let first = app
        .item(
            &sid,
            json!({"controls": ["AC.L2-3.1.3"], "risk_rating": "low"}),
        )
        .expect(201);
    app.item(
        &sid,
        json!({"controls": ["3.13.11"], "risk_rating": "moderate"}),
    )
    .expect(201);
    let s = app
        .get(&format!("/v1/systems/{sid}/cmmc/score"), &admin)
        .expect(200)
        .body;
    assert_eq!(
        (s["score"].clone(), s["conditional_eligible"].clone()),
        (json!(106), json!(true)),
        "{s}"
    );
    assert_eq!(s["closeout_deadline"], "2027-03-30");
    let today = chrono::Utc::now().date_naive();
    let deadline: chrono::NaiveDate = "2027-03-30".parse().unwrap_or_default();
    assert_eq!(s["days_left"], (deadline - today).num_days());

    // A 5-point requirement not met: never on a POA&M; an excluded one by name.
    put(app, &sid, &json!({"requirements": all_met_except(&[("3.1.3", "not_met"), ("3.13.11", "partial"), ("3.1.1", "not_met"), ("3.10.3", "not_met")]), "conditional_status_date": "2026-10-01"}))
        .expect(200);
    let s = app
        .get(&format!("/v1/systems/{sid}/cmmc/score"), &admin)
        .expect(200)
        .body;
    assert_eq!(s["score"], 100);
    assert_eq!(s["conditional_eligible"], false);
    assert_eq!(
        rules(&s),
        [
            (
                "requirement_not_poam_eligible".to_string(),
                "3.1.1".to_string()
            ),
            ("requirement_excluded".into(), "3.10.3".into())
        ]
    );
    assert_eq!(s["reasons"][0]["citation"], "32 CFR 170.21(a)(2)(ii)");
    assert_eq!(s["reasons"][1]["citation"], "32 CFR 170.21(a)(2)(iii)");

    // What if the 3.1.3 item were closed: its requirement counts as met. Nothing is changed.
    let iid = first.body["id"].as_str().unwrap_or_default();
    let w = app
        .post(
            &format!("/v1/systems/{sid}/cmmc/what-if"),
            &admin,
            &json!({"close_items": [iid]}),
        )
        .expect(200)
        .body;
    assert_eq!(w["score"], 101);
    assert_eq!(
        app.get(&format!("/v1/systems/{sid}/cmmc/score"), &admin)
            .body["score"],
        100
    );
    let r = app
        .post(
            &format!("/v1/systems/{sid}/cmmc/what-if"),
            &admin,
            &json!({"close_items": [uuid::Uuid::new_v4()]}),
        )
        .problem(422, "validation_failed");
    assert_eq!(r.pointers(), vec!["/close_items/0"]);

    // Bad assessments are refused by name.
    let r = put(
        app,
        &sid,
        &json!({"requirements": {"3.1.1": "partial", "3.99.9": "met"}}),
    )
    .problem(422, "validation_failed");
    assert_eq!(
        r.pointers(),
        vec!["/requirements/3.1.1", "/requirements/3.99.9"]
    );
    put(app, &sid, &json!({"requirements": {"3.1.1": "sort_of"}}))
        .problem(422, "validation_failed");
    // A FedRAMP system has no CMMC assessment.
    let fed = app.system("FedRAMP");
    put(app, &fed, &json!({"requirements": {}})).problem(409, "regime_mismatch");
    // The assessment is in the system's history.
    let feed = app
        .get(
            &format!("/v1/systems/{sid}/events?resource=cmmc_assessment"),
            &admin,
        )
        .expect(200);
    assert_eq!(feed.body["items"].as_array().map(Vec::len), Some(2));
}
both!(the_conditional_check_and_its_what_if);
