//! Metrics against a hand-computed fixture.

use crate::both;
use crate::harness::TestApp;
use poam_domain::{Role, SystemId};
use serde_json::json;

fn days_ago(n: u64) -> String {
    (chrono::Utc::now().date_naive() - chrono::Days::new(n)).to_string()
}

fn metrics_match_a_hand_computed_fixture(app: &TestApp) {
    let admin = app.admin();
    let sid = app.system("Metrics");
    let other = app.system("Other");
    let detected = days_ago(200);
    // Open items past due by 10, 60, 100 and 150 days, and one not yet due.
    for (rating, due) in [
        ("critical", days_ago(10)),
        ("high", days_ago(60)),
        ("high", days_ago(100)),
    ] {
        app.item(
            &sid,
            json!({"risk_rating": rating, "detected_on": detected, "scheduled_completion": due}),
        )
        .expect(201);
    }
    app.item(
        &sid,
        json!({"risk_rating": "low", "detected_on": detected, "scheduled_completion": days_ago(150),
        "vendor_dependency": {"product": "Acme LB", "last_check_in": days_ago(60)}}),
    )
    .expect(201);
    app.item(&sid, json!({"risk_rating": "moderate", "detected_on": detected, "scheduled_completion": days_ago(0),
        "resources": {"estimated_cost": 1000.5}, "actual_cost": 250,
        "deviation": {"kind": "false_positive", "rationale": "scanner misread the banner"}})).expect(201);
    // Two closed items: detected 200 days ago, completed 5 and 15 days after their schedule,
    // closed today: 200 days to close each.
    for (rating, scheduled, completed) in [
        ("high", days_ago(20), days_ago(15)),
        ("high", days_ago(10), days_ago(0)),
    ] {
        let item = app.item(&sid, json!({"risk_rating": rating, "detected_on": detected, "scheduled_completion": scheduled, "controls": ["AC-2", "3.1.1"], "implementer": {"name": "Lee", "email": "lee@example.org"}})).expect(201);
        let iid = item.body["id"].as_str().unwrap_or_default().to_owned();
        let m = app.milestone(&iid, &scheduled);
        app.request(
            "PATCH",
            &format!("/v1/milestones/{m}"),
            Some(&admin),
            &[("Content-Type", "application/json")],
            Some(
                json!({"due_on": days_ago(25), "change_reason": "earlier"})
                    .to_string()
                    .as_bytes(),
            ),
        )
        .expect(200);
        app.evidence(&iid).expect(201);
        app.transition(
            &iid,
            &admin,
            json!({"to": "completed", "comment": "fixed", "completed_on": completed}),
        )
        .expect(200);
        let issm = app.token_as("issm@example.org", &[Role::Approver]);
        app.post(
            &format!("/v1/items/{iid}/reviews"),
            &issm,
            &json!({"kind": "closure_verification", "decision": "approved"}),
        )
        .expect(201);
        app.transition(&iid, &issm, json!({"to": "closed"}))
            .expect(200);
    }
    // An archived item and another system's item count nowhere here.
    let gone = app.item(&sid, json!({"risk_rating": "critical", "scheduled_completion": days_ago(5), "detected_on": detected})).expect(201);
    app.delete(
        &format!(
            "/v1/items/{}?reason=Duplicate",
            gone.body["id"].as_str().unwrap_or_default()
        ),
        &admin,
        None,
    )
    .expect(200);
    app.item(&other, json!({"risk_rating": "low"})).expect(201);

    let m = app
        .get(&format!("/v1/systems/{sid}/metrics"), &admin)
        .expect(200)
        .body;
    assert_eq!(m["total"], 7);
    assert_eq!(
        m["by_status"],
        json!({"open": 5, "in_progress": 0, "completed": 0, "closed": 2, "deferred": 0, "risk_accepted": 0})
    );
    assert_eq!(
        m["by_rating"],
        json!({"critical": 1, "high": 4, "moderate": 1, "low": 1})
    );
    assert_eq!(
        m["overdue"],
        json!({"total": 4, "by_rating": {"critical": 1, "high": 2, "moderate": 0, "low": 1}})
    );
    assert_eq!(
        m["aging"],
        json!({"1_30": 1, "31_90": 1, "91_120": 1, "over_120": 1})
    );
    assert_eq!(m["median_days_to_close"], json!({"high": 200.0}));
    assert_eq!(m["mean_slip_days"], 7.5);
    assert_eq!(
        (m["milestones_total"].clone(), m["milestones_moved"].clone()),
        (json!(2), json!(2))
    );
    assert_eq!(
        m["risk_reduced"],
        json!({"critical": 0, "high": 2, "moderate": 0, "low": 0})
    );
    assert_eq!(
        m["median_days_to_close_by_family"],
        json!({"3.1": 200.0, "AC": 200.0})
    );
    assert_eq!(m["resources"], json!({"planned": 1000.5, "spent": 250.0}));
    assert_eq!(m["deviations"], json!({"false_positive": {"pending": 1}}));
    assert_eq!(m["vendor_check_ins_overdue"], 1);

    // Across systems: everything the token sees, and nothing it does not.
    let all = app.get("/v1/metrics", &admin).expect(200).body;
    assert_eq!(all["total"], 8);
    let only_other = app.token(
        &[Role::Viewer],
        &[other.parse::<SystemId>().unwrap_or_default()],
    );
    assert_eq!(
        app.get("/v1/metrics", &only_other).expect(200).body["total"],
        1
    );
    app.get(&format!("/v1/systems/{sid}/metrics"), &only_other)
        .problem(404, "not_found");
}
both!(metrics_match_a_hand_computed_fixture);
