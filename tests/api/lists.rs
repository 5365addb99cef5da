use crate::both;
use crate::harness::TestApp;
use serde_json::{json, Value};
use std::collections::BTreeSet;

fn display_ids(v: &Value) -> Vec<String> {
    v["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|i| i["display_id"].as_str().unwrap_or("").to_owned())
        .collect()
}

/// A due date that stays in the future whenever the tests run.
fn far_future() -> String {
    (chrono::Utc::now().date_naive() + chrono::Days::new(400)).to_string()
}

fn filters_select_what_they_say(app: &TestApp) {
    let sid = app.system("Filters");
    let admin = app.admin();
    // POAM-0001: critical scan, overdue (in progress, due in the past), AC-2, owner Dana.
    let first = app.item(&sid, json!({"risk_rating": "critical", "scheduled_completion": "2026-10-15",
        "controls": ["AC-2"], "owner": {"name": "Dana Whitfield", "email": "Dana@Example.org"}, "cves": ["CVE-2021-44228"]})).expect(201);
    let first = first.body["id"].as_str().unwrap_or_default().to_owned();
    app.milestone(&first, "2026-10-10");
    app.transition(&first, &admin, json!({"to": "in_progress"}))
        .expect(200);
    // POAM-0002: low pen test, due far ahead, 3.1.1.
    app.item(&sid, json!({"risk_rating": "low", "source": {"kind": "pen_test", "identifier": "PT-7"}, "scheduled_completion": far_future(),
        "controls": ["3.1.1"], "title": "Weak password policy"})).expect(201);
    // POAM-0003: moderate audit, past due but completed: not overdue.
    let third = app.item(&sid, json!({"risk_rating": "moderate", "source": {"kind": "audit"},
        "scheduled_completion": "2026-10-20", "controls": ["ac-2", "AU-6"], "owner": {"name": "Lee Park"}})).expect(201);
    let third = third.body["id"].as_str().unwrap_or_default().to_owned();
    app.milestone(&third, "2026-10-18");
    app.evidence(&third).expect(201);
    app.transition(&third, &admin, json!({"to": "completed", "comment": "Audit log review enabled", "completed_on": "2026-11-01"})).expect(200);
    // POAM-0004: high, no due date.
    app.item(
        &sid,
        json!({"external_id": "ext-4", "assets": ["db-7.internal"]}),
    )
    .expect(201);
    let list = |q: &str| {
        display_ids(
            &app.get(&format!("/v1/systems/{sid}/items?{q}"), &admin)
                .expect(200)
                .body,
        )
    };

    assert_eq!(
        list(""),
        ["POAM-0001", "POAM-0002", "POAM-0003", "POAM-0004"]
    );
    assert_eq!(list("status=open"), ["POAM-0002", "POAM-0004"]);
    assert_eq!(
        list("status=in_progress,completed"),
        ["POAM-0001", "POAM-0003"]
    );
    assert_eq!(
        list("risk_rating=critical,high"),
        ["POAM-0001", "POAM-0004"]
    );
    assert_eq!(list("source=pen_test,audit"), ["POAM-0002", "POAM-0003"]);
    // The repeated form (OpenAPI's `explode: true`, what generated clients send) selects the
    // same, and mixes with the comma-separated one.
    assert_eq!(
        list("status=in_progress&status=completed"),
        ["POAM-0001", "POAM-0003"]
    );
    assert_eq!(
        list("risk_rating=critical&risk_rating=high&source=pen_test&source=scan,audit"),
        ["POAM-0001", "POAM-0004"]
    );
    assert_eq!(
        list("status=open&status=in_progress,completed"),
        ["POAM-0001", "POAM-0002", "POAM-0003", "POAM-0004"]
    );
    // A parameter that is not a list is still refused when repeated.
    let r = app
        .get(&format!("/v1/systems/{sid}/items?limit=1&limit=2"), &admin)
        .problem(400, "invalid_query");
    assert_eq!(r.body["errors"][0]["parameter"], "limit", "{}", r.body);
    let r = app
        .get(
            &format!("/v1/systems/{sid}/items?status=open&status=opened"),
            &admin,
        )
        .problem(400, "invalid_query");
    assert_eq!(r.body["errors"][0]["parameter"], "status", "{}", r.body);
    assert_eq!(list("control=ac-2"), ["POAM-0001", "POAM-0003"]);
    assert_eq!(list("control=AC.L2-3.1.1"), Vec::<String>::new());
    assert_eq!(list("owner=dana%40example.org"), ["POAM-0001"]);
    assert_eq!(list("owner=LEE+PARK"), ["POAM-0003"]);
    assert_eq!(list("overdue=true"), ["POAM-0001"]);
    assert_eq!(
        list("overdue=false"),
        ["POAM-0002", "POAM-0003", "POAM-0004"]
    );
    assert_eq!(list("due_before=2026-10-20"), ["POAM-0001", "POAM-0003"]);
    assert_eq!(list("due_after=2026-10-16"), ["POAM-0002", "POAM-0003"]);
    assert_eq!(
        list("due_after=2026-10-16&due_before=2026-12-31"),
        ["POAM-0003"]
    );
    assert_eq!(list("q=password"), ["POAM-0002"]);
    assert_eq!(list("q=LOG4"), Vec::<String>::new());
    assert_eq!(list("q=cve-2021-44228"), ["POAM-0001"]);
    assert_eq!(list("q=poam-0004"), ["POAM-0004"]);
    assert_eq!(list("q=db-7"), ["POAM-0004"]);
    assert_eq!(list("q=pt-7"), ["POAM-0002"]);
    assert_eq!(
        list("q=100%25"),
        Vec::<String>::new(),
        "% is matched literally"
    );
    assert_eq!(list("q=_"), Vec::<String>::new(), "_ is matched literally");
    assert_eq!(list("external_id=ext-4"), ["POAM-0004"]);
    // Sorts.
    assert_eq!(
        list("sort=-risk_rating"),
        ["POAM-0001", "POAM-0004", "POAM-0003", "POAM-0002"]
    );
    assert_eq!(
        list("sort=risk_rating"),
        ["POAM-0002", "POAM-0003", "POAM-0004", "POAM-0001"]
    );
    assert_eq!(
        list("sort=scheduled_completion"),
        ["POAM-0001", "POAM-0003", "POAM-0002", "POAM-0004"],
        "undated last"
    );
    assert_eq!(
        list("sort=-display_id"),
        ["POAM-0004", "POAM-0003", "POAM-0002", "POAM-0001"]
    );
    assert_eq!(list("sort=-created_at&limit=2"), ["POAM-0004", "POAM-0003"]);
    // Bad parameters are named.
    for (q, param) in [
        ("status=opened", "status"),
        ("sort=priority", "sort"),
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("limit=ten", "limit"),
        ("overdue=perhaps", "overdue"),
        ("due_before=tomorrow", "due_before"),
        ("control=XX", "control"),
        ("cursor=garbage", "cursor"),
        ("colour=red", "colour"),
    ] {
        let r = app
            .get(&format!("/v1/systems/{sid}/items?{q}"), &admin)
            .problem(400, "invalid_query");
        assert_eq!(r.body["errors"][0]["parameter"], param, "{q}: {}", r.body);
    }
    // An unknown system is a 404, not an empty list.
    app.get(
        &format!("/v1/systems/{}/items", uuid::Uuid::new_v4()),
        &admin,
    )
    .problem(404, "not_found");
}
both!(filters_select_what_they_say);

/// Pages through `first` then keeps following cursors while `between` adds items.
fn walk(app: &TestApp, sid: &str, query: &str, mut between: impl FnMut(usize)) -> Vec<String> {
    let admin = app.admin();
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut page = 0;
    loop {
        let url = match &cursor {
            Some(c) => format!("/v1/systems/{sid}/items?{query}&cursor={c}"),
            None => format!("/v1/systems/{sid}/items?{query}"),
        };
        let r = app.get(&url, &admin).expect(200);
        seen.extend(display_ids(&r.body));
        between(page);
        page += 1;
        match r.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
        assert!(page < 100, "runaway paging");
    }
    seen
}

fn pages_are_stable_while_items_are_inserted(app: &TestApp) {
    let sid = app.system("Paging");
    let ratings = ["low", "moderate", "high", "critical"];
    for i in 0..10 {
        app.item(&sid, json!({"risk_rating": ratings[i % 4]}))
            .expect(201);
    }
    let before: BTreeSet<String> = (1..=10).map(|n| format!("POAM-{n:04}")).collect();
    for sort in [
        "display_id",
        "-risk_rating",
        "created_at",
        "-updated_at",
        "scheduled_completion",
        "-detected_on",
    ] {
        let mut added = 0;
        let seen = walk(app, &sid, &format!("limit=3&sort={sort}"), |page| {
            if page < 2 {
                for _ in 0..2 {
                    app.item(&sid, json!({"risk_rating": "critical"}))
                        .expect(201);
                    added += 1;
                }
            }
        });
        let unique: BTreeSet<String> = seen.iter().cloned().collect();
        assert_eq!(
            unique.len(),
            seen.len(),
            "no item served twice ({sort}): {seen:?}"
        );
        assert!(
            before.is_subset(&unique),
            "every item that existed before is served ({sort}): {seen:?}"
        );
        assert!(added == 4);
    }
    // A cursor belongs to its sort.
    let r = app
        .get(&format!("/v1/systems/{sid}/items?limit=2"), &app.admin())
        .expect(200);
    let c = r.body["next_cursor"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let r = app.get(
        &format!("/v1/systems/{sid}/items?limit=2&sort=-risk_rating&cursor={c}"),
        &app.admin(),
    );
    assert_eq!(
        r.problem(400, "invalid_query").body["errors"][0]["code"],
        "invalid_cursor"
    );
    // The last page says so.
    let all = app
        .get(&format!("/v1/systems/{sid}/items?limit=200"), &app.admin())
        .expect(200);
    assert_eq!(all.body["items"].as_array().map(Vec::len), Some(34));
    assert_eq!(all.body["next_cursor"], json!(null));
}
both!(pages_are_stable_while_items_are_inserted);

fn system_lists_page_too(app: &TestApp) {
    for i in 0..5 {
        app.system(&format!("S{i}"));
    }
    let admin = app.admin();
    let first = app.get("/v1/systems?limit=2", &admin).expect(200);
    assert_eq!(first.body["items"].as_array().map(Vec::len), Some(2));
    let c = first.body["next_cursor"].as_str().unwrap_or_default();
    let second = app
        .get(&format!("/v1/systems?limit=10&cursor={c}"), &admin)
        .expect(200);
    let names: Vec<&str> = second.body["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert_eq!(names, ["S2", "S3", "S4"]);
    let named = |q: &str| -> Vec<String> {
        app.get(&format!("/v1/systems?{q}"), &admin).body["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s["name"].as_str().map(str::to_owned))
            .collect()
    };
    assert_eq!(named("name=S3"), ["S3"]);
    assert_eq!(
        named("name=s3"),
        ["S3"],
        "case-insensitive on both backends"
    );
    assert_eq!(named("name=s"), ["S0", "S1", "S2", "S3", "S4"]);
    assert_eq!(named("name=%25"), Vec::<String>::new(), "% is literal");
    // A cursor of another list is refused by name.
    let items_cursor = poam_persistence::page::Cursor {
        sort: "display_id".into(),
        key: "1".into(),
        id: uuid::Uuid::new_v4().to_string(),
    }
    .encode();
    let r = app
        .get(&format!("/v1/systems?cursor={items_cursor}"), &admin)
        .problem(400, "invalid_query");
    assert_eq!(r.body["errors"][0]["parameter"], "cursor");
    assert_eq!(
        app.get("/v1/systems?regime=cmmc_l2", &admin).body["items"],
        json!([])
    );
    app.get("/v1/systems?regime=fisma", &admin)
        .problem(400, "invalid_query");
}
both!(system_lists_page_too);
