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

/// The service with its scheduler off: these tests tick it themselves with an injected clock
/// (`poam::scheduler::run_once`, `poam::digest::Mailer::run`).
const STILL: &[(&str, &str)] = &[("POAM_SCHEDULER_PERIOD", "off")];

/// `both!` with the scheduler off.
macro_rules! still {
    ($name:ident) => {
        mod $name {
            use crate::harness::{Backend, TestApp};
            #[test]
            fn sqlite() {
                if let Some(app) = TestApp::spawn_with(Backend::Sqlite, super::STILL) {
                    super::$name(&app);
                }
            }
            #[test]
            fn postgres() {
                if let Some(app) = TestApp::spawn_with(Backend::Postgres, super::STILL) {
                    super::$name(&app);
                }
            }
        }
    };
}

fn at(day: &str, time: &str) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(&format!("{day}T{time}Z"))
        .map(|t| t.with_timezone(&chrono::Utc))
        .unwrap_or_else(|e| panic!("{day}T{time}: {e}"))
}

fn keys_of(app: &TestApp, sid: &str, prefix: &str) -> Vec<String> {
    let mut keys: Vec<String> = timed(app, sid)
        .into_iter()
        .map(|(_, k)| k)
        .filter(|k| k.starts_with(prefix))
        .collect();
    keys.sort();
    keys
}

fn sql(app: &TestApp, statement: &str) {
    use diesel::connection::SimpleConnection;
    let pool = app.db();
    let mut conn = pool.get().unwrap_or_else(|e| panic!("{e}"));
    conn.batch_execute(statement)
        .unwrap_or_else(|e| panic!("{statement}: {e}"));
}

/// An approved deviation's expiry is reminded 30 and 7 days before (each once), then expires;
/// the events are in the feed and queued for a webhook subscriber.
fn expiries_are_reminded_then_expire(app: &TestApp) {
    let admin = app.admin();
    let dana = app.token_as("dana@example.org", &[Role::Editor]);
    let issm = app.token_as("issm@example.org", &[Role::Approver]);
    let sid = app.system("Expiring");
    let hook = id(&app
        .post(
            "/v1/webhooks",
            &admin,
            &json!({"url": "https://8.8.4.4/expiry", "events": ["item.expiring", "item.expired"]}),
        )
        .expect(201)
        .body);
    let iid = id(&app
        .item(&sid, json!({"scheduled_completion": days(200)}))
        .expect(201)
        .body);
    // An expiry before the decision (today for a pending request) is refused.
    let r = app
        .patch(
            &format!("/v1/items/{iid}"),
            &dana,
            &json!({"deviation": {"kind": "false_positive", "rationale": "Scanner misfire.", "expires_on": days(0)}}),
            None,
        )
        .problem(422, "validation_failed");
    assert_eq!(
        crate::harness::codes(&r.body),
        ["expiry_not_after_decision"]
    );
    let expires = days(60);
    app.patch(
        &format!("/v1/items/{iid}"),
        &dana,
        &json!({"deviation": {"kind": "false_positive", "rationale": "Scanner misfire.", "expires_on": expires}}),
        None,
    )
    .expect(200);
    let pool = app.db();
    // Pending: nothing to expire.
    poam::scheduler::run_once(&pool, at(&days(31), "09:00:00"));
    assert!(keys_of(app, &sid, "item.expir").is_empty());
    app.post(
        &format!("/v1/items/{iid}/reviews"),
        &issm,
        &json!({"kind": "deviation", "deviation_kind": "false_positive", "decision": "approved"}),
    )
    .expect(201);
    // The approver records the decision on the item.
    let decider = app.token_as("issm@example.org", &[Role::Editor, Role::Approver]);
    app.patch(
        &format!("/v1/items/{iid}"),
        &decider,
        &json!({"deviation": {"kind": "false_positive", "status": "approved", "rationale": "Scanner misfire.", "expires_on": expires}}),
        None,
    )
    .expect(200);
    let item = app.get(&format!("/v1/items/{iid}"), &admin).expect(200);
    assert_eq!(item.body["deviation"]["expires_on"], expires.as_str());
    assert_eq!(item.body["deviation"]["status"], "approved");
    for day in [29, 31, 40, 53, 55, 60, 61, 62] {
        poam::scheduler::run_once(&pool, at(&days(day), "09:00:00"));
    }
    assert_eq!(
        keys_of(app, &sid, "item.expir"),
        vec![
            format!("item.expired:{iid}:{expires}"),
            format!("item.expiring:{iid}:{expires}:30"),
            format!("item.expiring:{iid}:{expires}:7"),
        ]
    );
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
    assert_eq!(queued, ["item.expired", "item.expiring", "item.expiring"]);
    let expired = app
        .get(&format!("/v1/systems/{sid}/events?action=expired"), &admin)
        .expect(200);
    assert_eq!(expired.body["items"].as_array().map_or(0, Vec::len), 1);
    app.assert_chain_verifies(&sid);
}

still!(expiries_are_reminded_then_expire);

/// `total` items of `risk` in `sid`, each a day past its scheduled completion, created by bulk
/// requests of 1,000.
fn seed_overdue(app: &TestApp, sid: &str, token: &str, total: usize, risk: &str) {
    for start in (0..total).step_by(1_000) {
        let batch: Vec<Value> = (start..(start + 1_000).min(total))
            .map(|n| {
                json!({"title": format!("Finding {n}"), "description": "Past its date.",
                       "risk_rating": risk, "detected_on": days(-30),
                       "scheduled_completion": days(-1), "source": {"kind": "scan"}})
            })
            .collect();
        let r = app
            .post(
                &format!("/v1/systems/{sid}/items/bulk"),
                token,
                &json!({ "items": batch }),
            )
            .expect(200);
        assert_eq!(r.body["summary"]["failed"], 0, "{}", r.body);
    }
}

/// A system larger than the scheduler's page (2,000 items) is reminded whole: the items past
/// their dates on every page, each once, however often the scheduler looks.
fn a_system_larger_than_a_page_is_reminded_whole(app: &TestApp) {
    let editor = app.token_as("bulk@example.org", &[Role::Editor]);
    let sid = app.system("Large");
    let total = 2_100;
    seed_overdue(app, &sid, &editor, total, "moderate");
    // Counted where the scheduler records them (the feed pages at 500).
    let pool = app.db();
    let overdue = || {
        use diesel::prelude::*;
        use poam_persistence::schema::reminder_keys as k;
        let mut conn = pool.get().unwrap_or_else(|e| panic!("{e}"));
        k::table
            .filter(k::system_id.eq(&sid))
            .filter(k::key.like("item.overdue:%"))
            .count()
            .get_result::<i64>(&mut **conn)
            .unwrap_or_else(|e| panic!("{e}"))
    };
    assert_eq!(overdue(), 0);
    for _ in 0..2 {
        poam::scheduler::run_once(&pool, chrono::Utc::now());
        assert_eq!(overdue(), total as i64);
    }
}

still!(a_system_larger_than_a_page_is_reminded_whole);

/// The scheduler reads only the items a date or a window has reached, or that changed: after
/// a tick each item records the next instant it needs a look (`remind_after`), any new version
/// of the item (whatever path wrote it) moves that to the past, and so does a change to the
/// system's reminder policy. Nothing is missed meanwhile: the overdue event comes on the day.
fn the_scheduler_looks_again_only_when_time_or_a_change_says_so(app: &TestApp) {
    use diesel::prelude::*;
    use poam_persistence::schema::item_reminders as r;
    let admin = app.admin();
    let sid = app.system("Watched");
    let later = id(&app
        .item(&sid, json!({"scheduled_completion": days(10)}))
        .expect(201)
        .body);
    let late = id(&app
        .item(&sid, json!({"scheduled_completion": days(-3)}))
        .expect(201)
        .body);
    let pool = app.db();
    let after = |item: &str| -> String {
        let mut conn = pool.get().unwrap_or_else(|e| panic!("{e}"));
        r::table
            .find(item)
            .select(r::remind_after)
            .first::<chrono::NaiveDateTime>(&mut **conn)
            .unwrap_or_else(|e| panic!("{e}"))
            .to_string()
    };
    let past = "1970-01-01 00:00:00";
    let never = "9999-12-31 00:00:00";
    assert_eq!(
        after(&later),
        past,
        "a new item is looked at on the next tick"
    );
    poam::scheduler::run_once(&pool, at(&days(0), "09:00:00"));
    // Overdue from the day after its date; the late one is reminded and then waits for a change.
    assert_eq!(after(&later), format!("{} 00:00:00", days(11)));
    assert_eq!(after(&late), never);
    assert_eq!(
        keys_of(app, &sid, "item.overdue"),
        [format!("item.overdue:{late}:{}", days(-3))]
    );
    // Ticks before that day read neither item and emit nothing.
    for day in [1, 5, 10] {
        poam::scheduler::run_once(&pool, at(&days(day), "09:00:00"));
    }
    assert_eq!(keys_of(app, &sid, "item.overdue").len(), 1);
    assert_eq!(after(&later), format!("{} 00:00:00", days(11)));
    // The day comes: reminded, once.
    poam::scheduler::run_once(&pool, at(&days(11), "00:00:01"));
    poam::scheduler::run_once(&pool, at(&days(12), "09:00:00"));
    assert_eq!(keys_of(app, &sid, "item.overdue"), {
        let mut k = vec![
            format!("item.overdue:{late}:{}", days(-3)),
            format!("item.overdue:{later}:{}", days(10)),
        ];
        k.sort();
        k
    });
    // A write to the item (a comment, here) makes it due for a look again, on both backends.
    app.patch(
        &format!("/v1/items/{late}"),
        &admin,
        &json!({"comments": "Vendor patch expected."}),
        None,
    )
    .expect(200);
    assert_eq!(after(&late), past);
    assert_eq!(after(&later), never);
    // So does a new reminder policy for the system.
    app.patch(
        &format!("/v1/systems/{sid}"),
        &admin,
        &json!({"reminders": {"expiry_days": [45, 7]}}),
        None,
    )
    .expect(200);
    assert_eq!(after(&later), past);
}

still!(the_scheduler_looks_again_only_when_time_or_a_change_says_so);

/// The attention list of a system larger than a page (2,000 items) is read a page at a time
/// and merged: the most urgent entries come first whichever page their items are on, and the
/// list is whole (`truncated` only when the limit cuts it).
fn attention_of_a_system_larger_than_a_page_is_whole(app: &TestApp) {
    let admin = app.admin();
    let sid = app.system("Large attention");
    let total = 2_050;
    seed_overdue(app, &sid, &admin, total, "low");
    // Created last, so on the second page of ids: overdue and critical, the most urgent.
    let mut critical: Vec<String> = (0..3)
        .map(|_| {
            id(&app
                .item(
                    &sid,
                    json!({"scheduled_completion": days(-1), "risk_rating": "critical"}),
                )
                .expect(201)
                .body)
        })
        .collect();
    critical.sort();
    let r = app
        .get(&format!("/v1/systems/{sid}/attention?limit=3"), &admin)
        .expect(200);
    let mut first: Vec<String> = r.body["data"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["item_id"].as_str().map(str::to_owned))
        .collect();
    first.sort();
    assert_eq!(first, critical, "{}", r.body);
    assert_eq!(r.body["truncated"], true);
    for e in r.body["data"].as_array().into_iter().flatten() {
        assert_eq!(e["reason"], "overdue");
        assert_eq!(e["risk_rating"], "critical");
    }
    let all = app
        .get(&format!("/v1/systems/{sid}/attention?limit=1000"), &admin)
        .expect(200);
    assert_eq!(all.body["data"].as_array().map_or(0, Vec::len), 1000);
    assert_eq!(all.body["truncated"], true);
}

still!(attention_of_a_system_larger_than_a_page_is_whole);

/// A periodic review recorded this period means no review is due until the next one.
fn a_recorded_review_moves_the_next_due_date(app: &TestApp) {
    let issm = app.token_as("issm@example.org", &[Role::Approver]);
    let reviewed = app.system("Reviewed");
    let unreviewed = app.system("Unreviewed");
    // Both created long ago.
    let long_ago = (crate::harness::today() - chrono::Duration::days(120)).to_string();
    sql(
        app,
        &format!(
            "UPDATE systems SET created_at = '{long_ago} 08:00:00' WHERE id IN ('{reviewed}', '{unreviewed}')"
        ),
    );
    app.post(
        &format!("/v1/systems/{reviewed}/reviews"),
        &issm,
        &json!({"kind": "periodic", "decision": "noted", "notes": "Monthly review"}),
    )
    .expect(201);
    let now = chrono::Utc::now();
    poam::scheduler::run_once(&app.db(), now);
    let this = now.format("%Y-%m").to_string();
    assert_eq!(
        keys_of(app, &unreviewed, "system.review_due"),
        vec![format!("system.review_due:{this}")]
    );
    assert!(keys_of(app, &reviewed, "system.review_due").is_empty());
    // Next month it is due again.
    let next = poam_domain::reminders::next_review_due(
        poam_domain::reminders::ReviewCadence::Monthly,
        now.date_naive(),
    );
    poam::scheduler::run_once(&app.db(), at(&next.to_string(), "00:30:00"));
    assert_eq!(
        keys_of(app, &reviewed, "system.review_due"),
        vec![format!("system.review_due:{}", next.format("%Y-%m"))]
    );
}

still!(a_recorded_review_moves_the_next_due_date);

/// Under FedRAMP's 2026 rules, class D: the evaluation deadline (2 days) is reminded 72 and 12
/// hours before, then passes; each once.
fn fedramp_deadlines_are_reminded_and_pass(app: &TestApp) {
    let admin = app.admin();
    let sid = id(&app
        .post(
            "/v1/systems",
            &admin,
            &json!({"name": "Class D", "regime": "fedramp", "fedramp_class": "D",
                    "vdr_since": days(-200)}),
        )
        .expect(201)
        .body);
    let iid = id(&app
        .item(&sid, json!({"detected_on": days(-1)}))
        .expect(201)
        .body);
    let item = app.get(&format!("/v1/items/{iid}"), &admin).expect(200);
    let due = item.body["vdr"]["schedule"]["evaluation"]["due_at"]
        .as_str()
        .unwrap_or_else(|| panic!("{}", item.body))
        .to_owned();
    let due_at = chrono::DateTime::parse_from_rfc3339(&due)
        .map(|t| t.with_timezone(&chrono::Utc))
        .unwrap_or_else(|e| panic!("{e}"));
    let rule = item.body["vdr"]["schedule"]["evaluation"]["rule"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let pool = app.db();
    for h in [-60, -30, -11, -5, 1, 2] {
        poam::scheduler::run_once(&pool, due_at + chrono::Duration::hours(h));
    }
    let stamp = due_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    assert_eq!(
        keys_of(app, &sid, "item.deadline"),
        vec![
            format!("item.deadline_near:{iid}:{rule}:{stamp}:12h"),
            format!("item.deadline_near:{iid}:{rule}:{stamp}:72h"),
            format!("item.deadline_passed:{iid}:{rule}:{stamp}"),
        ]
    );
    let feed = app
        .get(
            &format!("/v1/systems/{sid}/events?action=deadline_passed"),
            &admin,
        )
        .expect(200);
    assert_eq!(
        feed.body["items"][0]["snapshot"]["due_at"]
            .as_str()
            .map(|s| s.starts_with(&due[..16])),
        Some(true),
        "{}",
        feed.body
    );
}

still!(fedramp_deadlines_are_reminded_and_pass);

/// One host, one finding, in a Nessus v2 file (after `tests/api/scans.rs`).
fn nessus(findings: &[(u32, &str)]) -> String {
    let mut s = String::from(
        "<?xml version=\"1.0\" ?>\n<NessusClientData_v2>\n<Policy><policyName>Advanced Scan</policyName>\
         <Preferences><ServerPreferences><preference><name>TARGET</name><value>10.0.0.0/24</value></preference>\
         </ServerPreferences></Preferences></Policy>\n<Report name=\"Weekly ACAS\" xmlns:cm=\"http://www.nessus.org/cm\">\n\
         <ReportHost name=\"web1\"><HostProperties>\n<tag name=\"HOST_END\">Tue Nov  3 10:12:01 2026</tag>\n\
         <tag name=\"host-fqdn\">web1.example.org</tag>\n<tag name=\"host-ip\">10.0.0.5</tag>\n</HostProperties>\n",
    );
    for (plugin, title) in findings {
        s.push_str(&format!(
            "<ReportItem port=\"443\" svc_name=\"www\" protocol=\"tcp\" severity=\"3\" pluginID=\"{plugin}\" pluginName=\"{title}\" pluginFamily=\"General\">\n\
             <synopsis>Exposed.</synopsis>\n<description>{title}: vulnerable.</description>\n\
             <solution>Upgrade.</solution>\n<risk_factor>High</risk_factor>\n\
             <plugin_output>Version 1.2 detected.</plugin_output>\n</ReportItem>\n"
        ));
    }
    s.push_str("</ReportHost>\n</Report>\n</NessusClientData_v2>\n");
    s
}

fn import_nessus(app: &TestApp, sid: &str, file: &str) -> Value {
    app.request(
        "POST",
        &format!("/v1/systems/{sid}/imports/nessus?filename=scan.nessus"),
        Some(&app.admin()),
        &[("Content-Type", "application/octet-stream")],
        Some(file.as_bytes()),
    )
    .expect(200)
    .body
}

/// A finding a rescan no longer shows makes its item a closure candidate, waiting on its
/// owner, with the scan and the time named.
fn rescans_list_closure_candidates(app: &TestApp) {
    let admin = app.admin();
    let sid = app.system("Rescanned");
    let first = import_nessus(
        app,
        &sid,
        &nessus(&[(104743, "TLS 1.0"), (201194, "OpenSSH")]),
    );
    let _ = first;
    let rescan = import_nessus(app, &sid, &nessus(&[(201194, "OpenSSH")]));
    assert_eq!(rescan.body_not_seen(), 1, "{rescan}");
    let gone = rescan["not_seen"][0]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let scan = rescan["scan"]["id"].as_str().unwrap_or_default().to_owned();
    let page = app
        .get(&format!("/v1/systems/{sid}/attention"), &admin)
        .expect(200);
    let candidates: Vec<&Value> = page.body["data"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["reason"] == "closure_candidate")
        .collect();
    assert_eq!(candidates.len(), 1, "{}", page.body);
    let c = candidates[0];
    assert_eq!(c["item_id"], gone.as_str());
    assert_eq!(c["waiting_on"]["role"], "owner");
    let detail = c["detail"].as_str().unwrap_or_default();
    assert!(detail.contains(&scan), "{detail}");
    assert!(detail.contains("not seen since"), "{detail}");
    assert_eq!(c["due_on"], days(0));
}

still!(rescans_list_closure_candidates);

trait NotSeen {
    fn body_not_seen(&self) -> u64;
}

impl NotSeen for Value {
    fn body_not_seen(&self) -> u64 {
        self["summary"]["not_seen"].as_u64().unwrap_or(0)
    }
}

/// A tiny SMTP server: answers enough of RFC 5321 and records each message's envelope
/// recipients and data.
/// Each message received: its envelope recipients and its data.
type Received = std::sync::Arc<std::sync::Mutex<Vec<(Vec<String>, String)>>>;

struct SmtpSink {
    port: u16,
    messages: Received,
    connections: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl SmtpSink {
    fn start() -> SmtpSink {
        use std::io::{BufRead, BufReader, Write};
        let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
        let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
        let messages: Received = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let connections = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (m, c) = (messages.clone(), connections.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut out) = stream else { continue };
                c.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let Ok(input) = out.try_clone() else { continue };
                let mut reader = BufReader::new(input);
                let _ = out.write_all(b"220 sink ESMTP\r\n");
                let mut rcpt = Vec::new();
                let mut line = String::new();
                loop {
                    line.clear();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        break;
                    }
                    let upper = line.to_ascii_uppercase();
                    let reply: &[u8] = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
                        b"250 sink\r\n"
                    } else if upper.starts_with("RCPT TO:") {
                        rcpt.push(line[8..].trim().trim_matches(['<', '>']).to_owned());
                        b"250 OK\r\n"
                    } else if upper.starts_with("DATA") {
                        let _ = out.write_all(b"354 go ahead\r\n");
                        let mut data = String::new();
                        loop {
                            line.clear();
                            if reader.read_line(&mut line).unwrap_or(0) == 0 || line == ".\r\n" {
                                break;
                            }
                            data.push_str(&line);
                        }
                        if let Ok(mut all) = m.lock() {
                            all.push((std::mem::take(&mut rcpt), data));
                        }
                        b"250 queued\r\n"
                    } else if upper.starts_with("QUIT") {
                        let _ = out.write_all(b"221 bye\r\n");
                        break;
                    } else {
                        b"250 OK\r\n"
                    };
                    let _ = out.write_all(reply);
                }
            }
        });
        SmtpSink {
            port,
            messages,
            connections,
        }
    }

    fn messages(&self) -> Vec<(Vec<String>, String)> {
        self.messages.lock().map(|m| m.clone()).unwrap_or_default()
    }
}

/// The quoted-printable soft line breaks undone, so a body can be searched.
fn unfold(data: &str) -> String {
    data.replace("=\r\n", "").replace("=3D", "=")
}

/// Each address something waits on gets one digest a day listing it, however many ticks and
/// instances; an approver's entries go to the system's ISSM.
fn digests_go_once_a_day_to_whom_things_wait_on(app: &TestApp) {
    let admin = app.admin();
    let sink = SmtpSink::start();
    let sid = id(&app
        .post(
            "/v1/systems",
            &admin,
            &json!({"name": "Digested", "contacts": {
                "issm": {"name": "Morgan Reyes", "email": "issm@example.org"}}}),
        )
        .expect(201)
        .body);
    let dana = json!({"name": "Dana Whitfield", "email": "dana@example.org"});
    app.item(
        &sid,
        json!({"title": "Weak TLS", "scheduled_completion": days(-2), "owner": dana}),
    )
    .expect(201);
    app.item(
        &sid,
        json!({"title": "Old SSH", "scheduled_completion": days(-40), "owner": dana,
               "escalation_contact": {"name": "Ari Boss", "email": "ari@example.org"}}),
    )
    .expect(201);
    app.item(
        &sid,
        json!({"title": "Banner", "scheduled_completion": days(40),
               "deviation": {"kind": "false_positive", "rationale": "Scanner misreads the banner"}}),
    )
    .expect(201);
    app.item(
        &sid,
        json!({"title": "Quiet", "scheduled_completion": days(90), "owner": dana}),
    )
    .expect(201);
    let url = format!("smtp://127.0.0.1:{}", sink.port);
    let env = |k: &str| match k {
        "POAM_SMTP_URL" => Some(url.clone()),
        "POAM_SMTP_FROM" => Some("POA&M <poam@example.org>".to_owned()),
        "POAM_DIGEST_HOUR" => Some("7".to_owned()),
        _ => None,
    };
    let settings = poam::digest::DigestSettings::from_lookup(&env)
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|| panic!("digests on"));
    let mailer = poam::digest::Mailer::new(&settings).unwrap_or_else(|e| panic!("{e}"));
    let pool = app.db();
    let today = crate::harness::today().to_string();
    // Before the hour: nothing.
    assert_eq!(mailer.run(&pool, at(&today, "06:59:00")), 0);
    assert_eq!(mailer.run(&pool, at(&today, "07:00:00")), 3);
    // Again, and from another instance: nothing more today.
    assert_eq!(mailer.run(&pool, at(&today, "08:00:00")), 0);
    let other = poam::digest::Mailer::new(&settings).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(other.run(&pool, at(&today, "09:00:00")), 0);
    let mut got: Vec<(Vec<String>, String)> = sink.messages();
    got.sort();
    let to: Vec<Vec<String>> = got.iter().map(|(r, _)| r.clone()).collect();
    assert_eq!(
        to,
        vec![
            vec!["ari@example.org".to_owned()],
            vec!["dana@example.org".to_owned()],
            vec!["issm@example.org".to_owned()],
        ]
    );
    let body = |i: usize| unfold(&got[i].1);
    assert!(body(0).contains("[escalated] POAM-0002"), "{}", body(0));
    assert!(body(1).contains("[overdue] POAM-0001"), "{}", body(1));
    assert!(
        !body(1).contains("POAM-0002"),
        "escalated: to the contact {}",
        body(1)
    );
    assert!(
        !body(1).contains("POAM-0004"),
        "nothing waits on Quiet {}",
        body(1)
    );
    assert!(body(1).contains("Subject: POA&M digest"), "{}", body(1));
    assert!(
        body(2).contains("[deviation_pending] POAM-0003"),
        "{}",
        body(2)
    );
    // The next day: again.
    let tomorrow = days(1);
    let fresh = poam::digest::Mailer::new(&settings).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(fresh.run(&pool, at(&tomorrow, "07:30:00")), 3);
}

still!(digests_go_once_a_day_to_whom_things_wait_on);

/// Without `POAM_SMTP_URL` there are no digests: nothing reaches the sink while the scheduler
/// ticks over items waiting on people with e-mails.
fn no_smtp_url_no_digests(backend: Backend) {
    let sink = SmtpSink::start();
    let none = |_: &str| None::<String>;
    assert!(poam::digest::DigestSettings::from_lookup(&none)
        .unwrap_or_else(|e| panic!("{e}"))
        .is_none());
    let hour = |k: &str| (k == "POAM_DIGEST_HOUR").then(|| "0".to_owned());
    assert!(poam::digest::DigestSettings::from_lookup(&hour)
        .unwrap_or_else(|e| panic!("{e}"))
        .is_none());
    let Some(app) = TestApp::spawn_with(
        backend,
        &[
            ("POAM_SCHEDULER_PERIOD", "100ms"),
            ("POAM_DIGEST_HOUR", "0"),
        ],
    ) else {
        return;
    };
    let sid = app.system("Unmailed");
    app.item(
        &sid,
        json!({"scheduled_completion": days(-2), "owner": {"name": "Dana", "email": "dana@example.org"}}),
    )
    .expect(201);
    wait_for("the overdue event", || {
        timed(&app, &sid).iter().any(|(t, _)| t == "item.overdue")
    });
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        sink.connections.load(std::sync::atomic::Ordering::SeqCst),
        0
    );
    assert!(sink.messages().is_empty());
}

#[test]
fn no_smtp_url_no_digests_sqlite() {
    no_smtp_url_no_digests(Backend::Sqlite);
}
