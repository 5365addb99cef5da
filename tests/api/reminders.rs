//! Time-driven events and the attention list. The scheduler runs in its real thread with a short
//! period (`POAM_SCHEDULER_PERIOD`) over items whose dates are already past or near; the clock
//! logic itself is unit-tested with fixed dates in `poam_domain::reminders`.

use crate::harness::{days, id, Backend, TestApp, GENEROUS_LIMITS, SECRET};
use poam_domain::{Role, SystemId};
use serde_json::{json, Value};
use std::net::TcpListener;
use std::time::{Duration, Instant};

const TICKING: &[(&str, &str)] = &[("POAM_SCHEDULER_PERIOD", "100ms")];

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The time-driven events of a system's feed, as `<resource>.<action>` with their key.
fn timed(app: &TestApp, sid: &str) -> Vec<(String, String)> {
    let feed = app
        .get(&format!("/v1/systems/{sid}/events?limit=500"), &app.admin())
        .expect(200);
    feed.body["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["actor"] == "poam-scheduler")
        .map(|e| {
            (
                format!(
                    "{}.{}",
                    e["resource_kind"].as_str().unwrap_or_default(),
                    e["action"].as_str().unwrap_or_default()
                ),
                e["snapshot"]["key"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// Another instance of the service on the same database, its scheduler ticking; killed when
/// dropped (a restart is dropping one and starting another).
struct Instance(std::process::Child);

impl Instance {
    fn start(app: &TestApp) -> Instance {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap_or_else(|e| panic!("port: {e}"));
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_poam"));
        for (k, _) in std::env::vars() {
            if k.starts_with("POAM_") {
                cmd.env_remove(k);
            }
        }
        let child = cmd
            .arg("serve")
            .env("POAM_DATABASE_URL", app.settings.database_url.redacted())
            .env("POAM_DATA_DIR", &app.dir)
            .envs(GENEROUS_LIMITS.iter().copied())
            .envs(TICKING.iter().copied())
            .env("POAM_JWT_SECRET", SECRET)
            .env("POAM_BIND", format!("127.0.0.1:{port}"))
            .env("POAM_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn: {e}"));
        let base = format!("http://127.0.0.1:{port}");
        wait_for("the second instance", || {
            ureq::get(&format!("{base}/readyz")).call().is_ok()
        });
        Instance(child)
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A system with an overdue item, a milestone due in 3 days (high: window 14), an overdue
/// milestone and a vendor dependency 40 days without a check-in; the keys expected.
fn seed(app: &TestApp) -> (String, Vec<String>) {
    let sid = app.system("Reminded");
    let overdue = id(&app
        .item(&sid, json!({"scheduled_completion": days(-3)}))
        .expect(201)
        .body);
    let planned = id(&app
        .item(
            &sid,
            json!({
                "scheduled_completion": days(60),
                "vendor_dependency": {"product": "Acme VPN 9.2", "last_check_in": days(-40)}
            }),
        )
        .expect(201)
        .body);
    let soon = app.milestone(&planned, &days(3));
    let late = app.milestone(&overdue, &days(-4));
    let expected = vec![
        format!("item.overdue:{overdue}:{}", days(-3)),
        format!("item.check_in_late:{planned}:{}", days(-40)),
        format!("milestone.due_soon:{soon}:{}", days(3)),
        format!("milestone.overdue:{late}:{}", days(-4)),
    ];
    (sid, expected)
}

fn sorted_keys(events: &[(String, String)]) -> Vec<String> {
    let mut keys: Vec<String> = events.iter().map(|(_, k)| k.clone()).collect();
    keys.sort();
    keys
}

/// Two instances tick at once; then one is restarted: every event once, in the feed, the
/// chain intact.
fn events_are_emitted_once_across_instances_and_restarts(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, TICKING) else {
        return;
    };
    let other = Instance::start(&app);
    let (sid, mut expected) = seed(&app);
    expected.sort();
    wait_for("the time-driven events", || {
        timed(&app, &sid).len() >= expected.len()
    });
    // Several more ticks of both instances, then a restart of one.
    std::thread::sleep(Duration::from_millis(600));
    drop(other);
    let _restarted = Instance::start(&app);
    std::thread::sleep(Duration::from_millis(600));
    let events = timed(&app, &sid);
    assert_eq!(
        sorted_keys(&events),
        expected,
        "each event once: {events:?}"
    );
    let mut types: Vec<String> = events.iter().map(|(t, _)| t.clone()).collect();
    types.sort();
    assert_eq!(
        types,
        [
            "item.check_in_late",
            "item.overdue",
            "milestone.due_soon",
            "milestone.overdue"
        ]
    );
    // Filterable by action, like any history event.
    let overdue = app
        .get(
            &format!("/v1/systems/{sid}/events?action=overdue"),
            &app.admin(),
        )
        .expect(200);
    assert_eq!(overdue.body["items"].as_array().map_or(0, Vec::len), 2);
    app.assert_chain_verifies(&sid);
}

#[test]
fn events_are_emitted_once_across_instances_and_restarts_sqlite() {
    events_are_emitted_once_across_instances_and_restarts(Backend::Sqlite);
}

#[test]
fn events_are_emitted_once_across_instances_and_restarts_postgres() {
    events_are_emitted_once_across_instances_and_restarts(Backend::Postgres);
}

/// A moved date re-arms its event; a resolved item is quiet; a system's own window applies.
fn moved_dates_rearm_and_windows_are_per_system(app: &TestApp) {
    let sid = app.system("Windows");
    let admin = app.admin();
    // A subscriber to every overdue event: the outbox takes time-driven events like any other.
    let hook = id(&app
        .post(
            "/v1/webhooks",
            &admin,
            &json!({"url": "https://8.8.4.4/reminders", "events": ["*.overdue"]}),
        )
        .expect(201)
        .body);
    // A window of 3 days for the others: a low item's milestone 5 days out is not due soon.
    let sys = app.get(&format!("/v1/systems/{sid}"), &admin).expect(200);
    let etag = sys.header("etag").unwrap_or_default().to_owned();
    app.patch(
        &format!("/v1/systems/{sid}"),
        &admin,
        &json!({"reminders": {"other_days": 3, "review": "quarterly"}}),
        Some(&etag),
    )
    .expect(200);
    let sys = app.get(&format!("/v1/systems/{sid}"), &admin).expect(200);
    assert_eq!(sys.body["reminders"]["other_days"], 3, "{}", sys.body);
    let low = id(&app
        .item(
            &sid,
            json!({"risk_rating": "low", "scheduled_completion": days(-2)}),
        )
        .expect(201)
        .body);
    let far = app.milestone(&low, &days(-3));
    let _ = far;
    let low2 = id(&app
        .item(
            &sid,
            json!({"risk_rating": "low", "scheduled_completion": days(30)}),
        )
        .expect(201)
        .body);
    let _five = app.milestone(&low2, &days(5));
    wait_for("the overdue item", || {
        timed(app, &sid)
            .iter()
            .any(|(_, k)| k.starts_with("item.overdue"))
    });
    std::thread::sleep(Duration::from_millis(400));
    assert!(
        !timed(app, &sid)
            .iter()
            .any(|(t, _)| t == "milestone.due_soon"),
        "5 days out is outside a 3-day window"
    );
    // Moving the date re-arms: a second overdue event, for the new date.
    let item = app.get(&format!("/v1/items/{low}"), &admin).expect(200);
    let etag = item.header("etag").unwrap_or_default().to_owned();
    app.patch(
        &format!("/v1/items/{low}"),
        &admin,
        &json!({"scheduled_completion": days(-1)}),
        Some(&etag),
    )
    .expect(200);
    wait_for("the re-armed overdue event", || {
        timed(app, &sid)
            .iter()
            .filter(|(t, _)| t == "item.overdue")
            .count()
            == 2
    });
    let overdue: Vec<String> = timed(app, &sid)
        .into_iter()
        .map(|(t, _)| t)
        .filter(|t| t.ends_with(".overdue"))
        .collect();
    let mut queued: Vec<String> = app
        .get(&format!("/v1/webhooks/{hook}/deliveries?limit=200"), &admin)
        .expect(200)
        .body["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|d| d["event_type"].as_str().map(str::to_owned))
        .collect();
    queued.sort();
    assert_eq!(
        queued,
        ["item.overdue", "item.overdue", "milestone.overdue"],
        "every overdue event queued for the subscriber, nothing else: {overdue:?}"
    );
}

#[test]
fn moved_dates_rearm_and_windows_are_per_system_sqlite() {
    if let Some(app) = TestApp::spawn_with(Backend::Sqlite, TICKING) {
        moved_dates_rearm_and_windows_are_per_system(&app);
    }
}

#[test]
fn moved_dates_rearm_and_windows_are_per_system_postgres() {
    if let Some(app) = TestApp::spawn_with(Backend::Postgres, TICKING) {
        moved_dates_rearm_and_windows_are_per_system(&app);
    }
}

fn reasons(body: &Value) -> Vec<(String, String)> {
    body["data"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            (
                e["reason"].as_str().unwrap_or_default().to_owned(),
                e["display_id"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// Ordered by urgency, each with whom it waits on, scoped to the token's systems.
fn attention_is_ordered_and_scoped(app: &TestApp) {
    let admin = app.admin();
    let sid = app.system("Attention");
    let other = app.system("Elsewhere");
    let owner = json!({"name": "Dana Whitfield", "email": "dana@example.org"});
    // POAM-0001: escalated (30 days overdue, grace 14), to its escalation contact.
    app.item(
        &sid,
        json!({
            "scheduled_completion": days(-30),
            "owner": owner,
            "escalation_contact": {"name": "Ari Boss"}
        }),
    )
    .expect(201);
    // POAM-0002: overdue, critical; POAM-0003: overdue, low (critical first).
    app.item(
        &sid,
        json!({"scheduled_completion": days(-2), "risk_rating": "low", "owner": owner}),
    )
    .expect(201);
    app.item(
        &sid,
        json!({"scheduled_completion": days(-2), "risk_rating": "critical", "owner": owner}),
    )
    .expect(201);
    // POAM-0004: a milestone due in 5 days (high, window 14), waiting on its implementer.
    let planned = id(&app
        .item(
            &sid,
            json!({
                "scheduled_completion": days(40),
                "implementer": {"name": "Kim Patch"}
            }),
        )
        .expect(201)
        .body);
    app.milestone(&planned, &days(5));
    // POAM-0005: a deviation awaiting an approver.
    app.item(
        &sid,
        json!({
            "scheduled_completion": days(40),
            "deviation": {"kind": "false_positive", "rationale": "Scanner misreads the banner"}
        }),
    )
    .expect(201);
    // Nothing to do: far from due.
    app.item(&sid, json!({"scheduled_completion": days(90)}))
        .expect(201);
    // Another system's overdue item.
    app.item(&other, json!({"scheduled_completion": days(-5)}))
        .expect(201);

    let page = app
        .get(&format!("/v1/systems/{sid}/attention"), &admin)
        .expect(200);
    let got = reasons(&page.body);
    let want: Vec<(String, String)> = [
        ("escalated", "POAM-0001"),
        ("overdue", "POAM-0003"),
        ("overdue", "POAM-0002"),
        ("due_soon", "POAM-0004"),
        ("deviation_pending", "POAM-0005"),
    ]
    .iter()
    .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
    .collect();
    assert_eq!(got, want, "{}", page.body);
    let data = &page.body["data"];
    assert_eq!(data[0]["waiting_on"]["role"], "escalation_contact");
    assert_eq!(data[0]["waiting_on"]["person"]["name"], "Ari Boss");
    assert_eq!(data[1]["waiting_on"]["role"], "owner");
    assert_eq!(data[1]["waiting_on"]["person"]["name"], "Dana Whitfield");
    assert_eq!(data[3]["waiting_on"]["role"], "implementer");
    assert_eq!(data[3]["due_on"], days(5));
    assert_eq!(data[4]["waiting_on"]["role"], "approver");
    assert!(data[1]["detail"]
        .as_str()
        .unwrap_or_default()
        .contains("POAM-0003"));
    assert_eq!(page.body["truncated"], false);

    // Across systems: the admin sees both; a token of one system sees that one only.
    let all = app.get("/v1/attention", &admin).expect(200);
    assert_eq!(reasons(&all.body).len(), 6, "{}", all.body);
    let sys: SystemId = sid.parse().unwrap_or_else(|e| panic!("{e}"));
    let scoped = app.token(&[Role::Viewer], &[sys]);
    let mine = app.get("/v1/attention", &scoped).expect(200);
    assert_eq!(reasons(&mine.body), want);
    app.get(&format!("/v1/systems/{other}/attention"), &scoped)
        .problem(404, "not_found");
    // The limit keeps the most urgent.
    let top = app.get("/v1/attention?limit=2", &admin).expect(200);
    assert_eq!(reasons(&top.body).len(), 2);
    assert_eq!(top.body["truncated"], true);
    assert_eq!(reasons(&top.body)[0].0, "escalated");
    app.get("/v1/attention?limit=0", &admin)
        .problem(400, "invalid_query");
}

crate::both!(attention_is_ordered_and_scoped);
