//! Deadline policies: defaults from the system's policy, the rule that set each date, and
//! recomputation that never touches a date a person set.

use crate::both;
use crate::harness::TestApp;
use serde_json::{json, Value};

fn due(v: &Value) -> (Option<String>, Option<String>) {
    (
        v["scheduled_completion"].as_str().map(str::to_owned),
        v["deadline_rule"].as_str().map(str::to_owned),
    )
}

fn s(a: &str, b: &str) -> (Option<String>, Option<String>) {
    (Some(a.to_owned()), Some(b.to_owned()))
}

fn policies_set_defaults_and_people_override_them(app: &TestApp) {
    let admin = app.admin();
    let sid = app.system_in("FedRAMP", "fedramp");
    let high = app
        .item(
            &sid,
            json!({"risk_rating": "high", "detected_on": "2026-10-01"}),
        )
        .expect(201);
    assert_eq!(due(&high.body), s("2026-10-31", "fedramp:high:30d"));
    assert_eq!(
        high.body["overdue"],
        chrono::Utc::now().date_naive() > "2026-10-31".parse().unwrap_or_default()
    );
    let moderate = app
        .item(
            &sid,
            json!({"risk_rating": "moderate", "detected_on": "2026-10-01"}),
        )
        .expect(201);
    assert_eq!(due(&moderate.body), s("2026-12-30", "fedramp:moderate:90d"));
    let manual = app.item(&sid, json!({"risk_rating": "high", "detected_on": "2026-10-01", "scheduled_completion": "2027-01-15"})).expect(201);
    assert_eq!(due(&manual.body), s("2027-01-15", "manual"));
    let (hid, mid) = (
        high.body["id"].as_str().unwrap_or_default().to_owned(),
        manual.body["id"].as_str().unwrap_or_default().to_owned(),
    );

    // A new rating recomputes a policy date, never a person's.
    let r = app
        .patch(
            &format!("/v1/items/{hid}"),
            &admin,
            &json!({"risk_rating": "low"}),
            None,
        )
        .expect(200);
    assert_eq!(due(&r.body), s("2027-03-30", "fedramp:low:180d"));
    let r = app
        .patch(
            &format!("/v1/items/{mid}"),
            &admin,
            &json!({"risk_rating": "low"}),
            None,
        )
        .expect(200);
    assert_eq!(due(&r.body), s("2027-01-15", "manual"));
    // The rule is the server's to say.
    app.patch(
        &format!("/v1/items/{mid}"),
        &admin,
        &json!({"deadline_rule": "custom"}),
        None,
    )
    .problem(422, "validation_failed");

    // The system adopts its own policy: the policy dates follow, the person's stays.
    app.patch(
        &format!("/v1/systems/{sid}"),
        &admin,
        &json!({"deadline_policy": {"low": 60, "moderate": 45}}),
        None,
    )
    .expect(200);
    assert_eq!(
        due(&app.get(&format!("/v1/items/{hid}"), &admin).body),
        s("2026-11-30", "custom:low:60d")
    );
    let mod_id = moderate.body["id"].as_str().unwrap_or_default();
    assert_eq!(
        due(&app.get(&format!("/v1/items/{mod_id}"), &admin).body),
        s("2026-11-15", "custom:moderate:45d")
    );
    assert_eq!(
        due(&app.get(&format!("/v1/items/{mid}"), &admin).body),
        s("2027-01-15", "manual")
    );
    // Each recomputation is in the item's history, by whoever changed the policy.
    let history = app
        .get(&format!("/v1/items/{hid}/history"), &admin)
        .expect(200);
    let last = history.body["items"]
        .as_array()
        .and_then(|a| a.last())
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        last["changes"]["deadline_rule"],
        json!({"before": "fedramp:low:180d", "after": "custom:low:60d"})
    );
    // Clearing a person's date hands it back to the policy.
    let r = app
        .patch(
            &format!("/v1/items/{mid}"),
            &admin,
            &json!({"scheduled_completion": null}),
            None,
        )
        .expect(200);
    assert_eq!(due(&r.body), s("2026-11-30", "custom:low:60d"));
    let r = app
        .patch(
            &format!("/v1/systems/{sid}"),
            &admin,
            &json!({"deadline_policy": {"low": 0}}),
            None,
        )
        .problem(422, "validation_failed");
    assert_eq!(r.pointers(), vec!["/deadline_policy/low"]);
}
both!(policies_set_defaults_and_people_override_them);

fn cmmc_deadlines_run_from_the_conditional_status_date(app: &TestApp) {
    let admin = app.admin();
    let sid = app.system_in("CUI", "cmmc_l2");
    let item = app.item(&sid, json!({"controls": ["3.1.3"]})).expect(201);
    assert_eq!(
        due(&item.body),
        (None, None),
        "no Conditional status date yet"
    );
    let body = serde_json::to_vec(
        &json!({"requirements": {"3.12.4": "met"}, "conditional_status_date": "2026-10-01"}),
    )
    .unwrap_or_default();
    app.request(
        "PUT",
        &format!("/v1/systems/{sid}/cmmc/assessment"),
        Some(&admin),
        &[("Content-Type", "application/json")],
        Some(&body),
    )
    .expect(200);
    let iid = item.body["id"].as_str().unwrap_or_default();
    assert_eq!(
        due(&app.get(&format!("/v1/items/{iid}"), &admin).body),
        s("2027-03-30", "cmmc:conditional_status_date+180d")
    );
}
both!(cmmc_deadlines_run_from_the_conditional_status_date);
