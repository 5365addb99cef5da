//! Webhooks with a real receiver: an HTTP server this test runs on 127.0.0.1 (allowed through
//! `POAM_WEBHOOK_ALLOW`) that checks every delivery's signature with the Standard Webhooks
//! algorithm, written here from the specification (HMAC-SHA256 over `id.timestamp.body`, keyed
//! with the base64-decoded secret after `whsec_`), not with the service's own code.

use crate::both;
use crate::harness::{minimal_item, Backend, TestApp, GENEROUS_LIMITS, SECRET};
use base64::Engine;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Settings that make the tests quick: short retries, a fast poll, the local receiver allowed.
const FAST: &[(&str, &str)] = &[
    ("POAM_WEBHOOK_ALLOW", "127.0.0.1"),
    ("POAM_WEBHOOK_POLL", "50ms"),
    (
        "POAM_WEBHOOK_RETRY_SCHEDULE",
        "100ms,200ms,300ms,300ms,300ms,300ms,300ms,300ms",
    ),
    ("POAM_WEBHOOK_TIMEOUT", "1s"),
    ("POAM_WEBHOOK_CONNECT_TIMEOUT", "1s"),
];

fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let inner: Vec<u8> = k.iter().map(|b| b ^ 0x36).collect();
    let outer: Vec<u8> = k.iter().map(|b| b ^ 0x5c).collect();
    let mut h = Sha256::new();
    h.update(&inner);
    h.update(message);
    let first = h.finalize();
    let mut h = Sha256::new();
    h.update(&outer);
    h.update(first);
    h.finalize().into()
}

/// Standard Webhooks verification: some `v1,` signature of the header matches.
fn verifies(secret: &str, id: &str, timestamp: &str, body: &[u8], header: &str) -> bool {
    let b64 = base64::engine::general_purpose::STANDARD;
    let Ok(key) = b64.decode(secret.trim_start_matches("whsec_")) else {
        return false;
    };
    let mut message = format!("{id}.{timestamp}.").into_bytes();
    message.extend_from_slice(body);
    let expected = b64.encode(hmac_sha256(&key, &message));
    header
        .split(' ')
        .filter_map(|s| s.split_once(','))
        .any(|(v, sig)| v == "v1" && sig == expected)
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Accept,
    Fail,
    Redirect,
    Slow,
}

#[derive(Debug, Clone)]
struct Received {
    id: String,
    body: Value,
    signatures: usize,
}

#[derive(Default)]
struct Log {
    accepted: Vec<Received>,
    /// Requests answered with anything but 2xx.
    refused: usize,
    /// Requests to the redirect's target (never expected).
    followed: usize,
    /// Deliveries whose signature did not verify with any secret the test knows.
    bad_signatures: usize,
    secrets: Vec<String>,
}

struct Receiver {
    url: String,
    mode: Arc<Mutex<Mode>>,
    log: Arc<Mutex<Log>>,
}

impl Receiver {
    fn start(mode: Mode) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("bind: {e}"));
        let port = listener.local_addr().map(|a| a.port()).unwrap_or_default();
        let mode = Arc::new(Mutex::new(mode));
        let log = Arc::new(Mutex::new(Log::default()));
        let (m, l) = (mode.clone(), log.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (m, l) = (m.clone(), l.clone());
                std::thread::spawn(move || serve(stream, &m, &l));
            }
        });
        Receiver {
            url: format!("http://127.0.0.1:{port}/hook"),
            mode,
            log,
        }
    }

    fn set(&self, mode: Mode) {
        *self.mode.lock().unwrap_or_else(|p| p.into_inner()) = mode;
    }

    fn trust(&self, secret: &str) {
        self.log().secrets.push(secret.to_owned());
    }

    fn log(&self) -> std::sync::MutexGuard<'_, Log> {
        self.log.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn accepted(&self) -> Vec<Received> {
        self.log().accepted.clone()
    }
}

fn serve(stream: TcpStream, mode: &Mutex<Mode>, log: &Mutex<Log>) {
    let mut reader = BufReader::new(match stream.try_clone() {
        Ok(s) => s,
        Err(_) => return,
    });
    let mut stream = stream;
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let mut headers = std::collections::BTreeMap::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
        }
    }
    let length: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let mode = *mode.lock().unwrap_or_else(|p| p.into_inner());
    let answer = |stream: &mut TcpStream, status: &str, extra: &str| {
        let _ = write!(
            stream,
            "HTTP/1.1 {status}\r\n{extra}content-length: 2\r\nconnection: close\r\n\r\nok"
        );
    };
    if request_line.contains("/elsewhere") {
        log.lock().unwrap_or_else(|p| p.into_inner()).followed += 1;
        return answer(&mut stream, "200 OK", "");
    }
    match mode {
        Mode::Fail => {
            log.lock().unwrap_or_else(|p| p.into_inner()).refused += 1;
            answer(&mut stream, "503 Service Unavailable", "");
        }
        Mode::Redirect => {
            log.lock().unwrap_or_else(|p| p.into_inner()).refused += 1;
            answer(&mut stream, "302 Found", "location: /elsewhere\r\n");
        }
        Mode::Slow => {
            std::thread::sleep(Duration::from_secs(3));
            answer(&mut stream, "200 OK", "");
        }
        Mode::Accept => {
            let id = headers.get("webhook-id").cloned().unwrap_or_default();
            let ts = headers
                .get("webhook-timestamp")
                .cloned()
                .unwrap_or_default();
            let sig = headers
                .get("webhook-signature")
                .cloned()
                .unwrap_or_default();
            let mut l = log.lock().unwrap_or_else(|p| p.into_inner());
            if !l.secrets.iter().any(|s| verifies(s, &id, &ts, &body, &sig)) {
                l.bad_signatures += 1;
                drop(l);
                return answer(&mut stream, "401 Unauthorized", "");
            }
            l.accepted.push(Received {
                id,
                body: serde_json::from_slice(&body).unwrap_or(Value::Null),
                signatures: sig.split(' ').count(),
            });
            drop(l);
            answer(&mut stream, "200 OK", "");
        }
    }
}

/// Waits (at most 30 s) until `done` holds.
#[track_caller]
fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn subscribe(app: &TestApp, url: &str, extra: Value) -> (String, String) {
    let mut body = json!({"url": url, "events": ["*"], "payload": "full"});
    if let (Some(b), Value::Object(e)) = (body.as_object_mut(), extra) {
        b.extend(e);
    }
    let r = app.post("/v1/webhooks", &app.admin(), &body).expect(201);
    let id = r.body["id"].as_str().unwrap_or_default().to_owned();
    let secret = r.body["secret"].as_str().unwrap_or_default().to_owned();
    assert!(secret.starts_with("whsec_"), "{}", r.body);
    (id, secret)
}

/// The (system, seq) of every accepted delivery, in arrival order.
fn positions(received: &[Received]) -> Vec<(String, i64)> {
    received
        .iter()
        .map(|r| {
            (
                r.body["data"]["system_id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                r.body["data"]["seq"].as_i64().unwrap_or_default(),
            )
        })
        .collect()
}

/// Asserts that one system's deliveries arrived exactly once each, in chain order, with no gap.
#[track_caller]
fn in_order_once(received: &[Received], system: &str, expected: usize) {
    let seqs: Vec<i64> = positions(received)
        .into_iter()
        .filter(|(s, _)| s == system)
        .map(|(_, q)| q)
        .collect();
    let want: Vec<i64> = (1..=i64::try_from(expected).unwrap_or(0)).collect();
    assert_eq!(seqs, want, "every event once, in chain order");
    let mut ids: Vec<&str> = received.iter().map(|r| r.id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), received.len(), "no webhook-id twice");
}

/// Another instance on the same database with the webhook settings: the `poam` binary in a
/// process of its own, killed when dropped.
struct Instance(std::process::Child);

impl Instance {
    fn start(app: &TestApp, env: &[(&str, &str)]) -> Instance {
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
            // No time-driven events of its own (a month's review due, at midnight on the 1st,
            // would add deliveries the tests count); a caller may still turn it on.
            .env("POAM_SCHEDULER_PERIOD", "off")
            .envs(env.iter().copied())
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

fn spawn(backend: Backend, extra: &[(&str, &str)]) -> Option<TestApp> {
    let env: Vec<(&str, &str)> = FAST.iter().chain(extra).copied().collect();
    TestApp::spawn_with(backend, &env)
}

fn deliveries(app: &TestApp, hook: &str) -> Vec<Value> {
    app.get(
        &format!("/v1/webhooks/{hook}/deliveries?limit=200"),
        &app.admin(),
    )
    .expect(200)
    .body["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

macro_rules! both_fast {
    ($name:ident) => {
        mod $name {
            #[test]
            fn sqlite() {
                if let Some(app) = super::spawn(crate::harness::Backend::Sqlite, &[]) {
                    super::$name(&app);
                }
            }
            #[test]
            fn postgres() {
                if let Some(app) = super::spawn(crate::harness::Backend::Postgres, &[]) {
                    super::$name(&app);
                }
            }
        }
    };
}

fn events_arrive_in_order_and_verify(app: &TestApp) {
    let receiver = Receiver::start(Mode::Accept);
    let (hook, secret) = subscribe(app, &receiver.url, json!({}));
    receiver.trust(&secret);
    let admin = app.admin();
    // The secret is shown once: never on a read.
    let read = app.get(&format!("/v1/webhooks/{hook}"), &admin).expect(200);
    assert!(read.body.get("secret").is_none(), "{}", read.body);
    assert_eq!(read.body["state"], "active");
    let listed = app.get("/v1/webhooks", &admin).expect(200);
    assert_eq!(listed.body["items"].as_array().map(Vec::len), Some(1));

    let sid = app.system("Webhooks");
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(app.item(&sid, json!({})).expect(201).body["id"].clone());
    }
    let item = ids[0].as_str().unwrap_or_default().to_owned();
    app.patch(
        &format!("/v1/items/{item}"),
        &admin,
        &json!({"title": "Renamed"}),
        None,
    )
    .expect(200);
    // system.created, five item.created, one item.updated.
    wait_for("seven deliveries", || receiver.accepted().len() >= 7);
    let got = receiver.accepted();
    in_order_once(&got, &sid, 7);
    assert_eq!(got[0].body["type"], "system.created");
    assert_eq!(got[1].body["type"], "item.created");
    assert_eq!(got[6].body["type"], "item.updated");
    assert_eq!(
        got[6].body["data"]["resource"]["title"], "Renamed",
        "a full payload"
    );
    assert_eq!(receiver.log().bad_signatures, 0);

    // The log: one successful attempt each (recorded once the receiver has answered).
    wait_for("seven deliveries recorded", || {
        deliveries(app, &hook)
            .iter()
            .filter(|d| d["state"] != "pending")
            .count()
            >= 7
    });
    let log = deliveries(app, &hook);
    assert_eq!(log.len(), 7);
    for d in &log {
        assert_eq!(d["state"], "delivered", "{d}");
        assert_eq!(d["attempts"][0]["status"], 200, "{d}");
        assert_eq!(d["attempts"][0]["n"], 1, "{d}");
    }

    // Rotation: the new secret is shown once, and both sign during the overlap.
    let rotated = app
        .patch(
            &format!("/v1/webhooks/{hook}"),
            &admin,
            &json!({"rotate_secret": true, "payload": "thin"}),
            None,
        )
        .expect(200);
    let new_secret = rotated.body["secret"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(new_secret.starts_with("whsec_") && new_secret != secret);
    app.patch(
        &format!("/v1/items/{item}"),
        &admin,
        &json!({"title": "Again"}),
        None,
    )
    .expect(200);
    wait_for("the eighth delivery", || receiver.accepted().len() >= 8);
    let last = receiver.accepted().pop().map(|r| (r.signatures, r.body));
    let (signatures, body) = last.unwrap_or_default();
    assert_eq!(signatures, 2, "old and new secret sign during the overlap");
    assert!(
        body["data"].get("resource").is_none(),
        "a thin payload: {body}"
    );
    // Only the new secret: the receiver forgets the old one, and verification still passes.
    receiver.log().secrets = vec![new_secret];
    app.patch(
        &format!("/v1/items/{item}"),
        &admin,
        &json!({"title": "Third"}),
        None,
    )
    .expect(200);
    wait_for("the ninth delivery", || receiver.accepted().len() >= 9);
    assert_eq!(receiver.log().bad_signatures, 0);

    // Paused: nothing is queued; resumed: deliveries go on.
    app.patch(
        &format!("/v1/webhooks/{hook}"),
        &admin,
        &json!({"active": false}),
        None,
    )
    .expect(200);
    app.item(&sid, json!({})).expect(201);
    app.patch(
        &format!("/v1/webhooks/{hook}"),
        &admin,
        &json!({"active": true}),
        None,
    )
    .expect(200);
    app.item(&sid, json!({})).expect(201);
    wait_for("the tenth delivery", || receiver.accepted().len() >= 10);
    assert_eq!(deliveries(app, &hook).len(), 10);

    // Only admins manage subscriptions; unknown event types are refused by pointer.
    let editor = app.token(&[poam_domain::Role::Editor], &[]);
    app.get("/v1/webhooks", &editor).problem(403, "forbidden");
    let bad = app
        .post(
            "/v1/webhooks",
            &admin,
            &json!({"url": receiver.url, "events": ["item.exploded"]}),
        )
        .problem(422, "validation_failed");
    assert_eq!(bad.pointers(), vec!["/events/0"]);
    app.delete(&format!("/v1/webhooks/{hook}"), &admin, None)
        .expect(204);
    app.get(&format!("/v1/webhooks/{hook}"), &admin)
        .problem(404, "not_found");
    app.assert_chain_verifies(&sid);
}
both_fast!(events_arrive_in_order_and_verify);

fn a_receiver_down_then_up_gets_every_event_in_order(app: &TestApp) {
    let receiver = Receiver::start(Mode::Fail);
    let (hook, secret) = subscribe(app, &receiver.url, json!({}));
    receiver.trust(&secret);
    let sid = app.system("Down then up");
    for _ in 0..6 {
        app.item(&sid, json!({})).expect(201);
    }
    // The head fails and is retried; the others wait behind it.
    wait_for("retries", || {
        deliveries(app, &hook)
            .iter()
            .any(|d| d["attempts"].as_array().is_some_and(|a| a.len() >= 2))
    });
    assert!(receiver.accepted().is_empty());
    let log = deliveries(app, &hook);
    let tried: usize = log
        .iter()
        .filter(|d| d["attempts"].as_array().is_some_and(|a| !a.is_empty()))
        .count();
    assert_eq!(
        tried, 1,
        "only the head of the queue is tried while it fails"
    );
    receiver.set(Mode::Accept);
    wait_for("every event", || receiver.accepted().len() >= 7);
    std::thread::sleep(Duration::from_millis(300));
    in_order_once(&receiver.accepted(), &sid, 7);
    let head = deliveries(app, &hook)
        .into_iter()
        .find(|d| d["event_seq"] == 1)
        .unwrap_or_default();
    let attempts = head["attempts"].as_array().cloned().unwrap_or_default();
    assert!(attempts.len() >= 2, "{head}");
    assert_eq!(attempts[0]["status"], 503);
    assert_eq!(attempts[0]["response_excerpt"], "ok");
    assert!(attempts[0]["latency_ms"].as_i64().is_some());
    assert_eq!(
        attempts.last().map(|a| a["status"].clone()),
        Some(json!(200))
    );
    // Failures started the subscription's failure clock; the success stopped it.
    let sub = app
        .get(&format!("/v1/webhooks/{hook}"), &app.admin())
        .expect(200);
    assert_eq!(sub.body["failing_since"], Value::Null);
}
both_fast!(a_receiver_down_then_up_gets_every_event_in_order);

fn a_restart_mid_retry_still_delivers(backend: Backend) {
    // This instance writes; the deliveries are made by other processes, one killed mid-retry.
    let Some(app) = spawn(backend, &[("POAM_WEBHOOK_DELIVERY", "off")]) else {
        return;
    };
    let receiver = Receiver::start(Mode::Fail);
    let (hook, secret) = subscribe(&app, &receiver.url, json!({}));
    receiver.trust(&secret);
    let sid = app.system("Restarted");
    for _ in 0..3 {
        app.item(&sid, json!({})).expect(201);
    }
    let first = Instance::start(&app, FAST);
    wait_for("a failed attempt", || {
        deliveries(&app, &hook)
            .iter()
            .any(|d| d["attempts"].as_array().is_some_and(|a| !a.is_empty()))
    });
    drop(first); // SIGKILL: no graceful stop.
    receiver.set(Mode::Accept);
    app.item(&sid, json!({})).expect(201);
    std::thread::sleep(Duration::from_millis(500));
    assert!(receiver.accepted().is_empty(), "no worker runs meanwhile");
    let _second = Instance::start(&app, FAST);
    wait_for("every event after the restart", || {
        receiver.accepted().len() >= 5
    });
    in_order_once(&receiver.accepted(), &sid, 5);
}

#[test]
fn a_restart_mid_retry_still_delivers_sqlite() {
    a_restart_mid_retry_still_delivers(Backend::Sqlite);
}

#[test]
fn a_restart_mid_retry_still_delivers_postgres() {
    a_restart_mid_retry_still_delivers(Backend::Postgres);
}

#[test]
fn two_instances_on_one_postgres_deliver_each_event_once() {
    let Some(app) = spawn(Backend::Postgres, &[]) else {
        return;
    };
    let _other = Instance::start(&app, FAST);
    let receiver = Receiver::start(Mode::Accept);
    let (_, secret) = subscribe(&app, &receiver.url, json!({}));
    receiver.trust(&secret);
    let systems: Vec<String> = (0..3).map(|n| app.system(&format!("S{n}"))).collect();
    let body = serde_json::to_vec(&minimal_item()).unwrap_or_default();
    std::thread::scope(|s| {
        for sid in &systems {
            let (app, body) = (&app, &body);
            s.spawn(move || {
                for _ in 0..10 {
                    let r = app.request(
                        "POST",
                        &format!("/v1/systems/{sid}/items"),
                        Some(&app.admin()),
                        &[("Content-Type", "application/json")],
                        Some(body),
                    );
                    assert_eq!(r.status, 201, "{}", r.body);
                }
            });
        }
    });
    wait_for("33 deliveries", || receiver.accepted().len() >= 33);
    std::thread::sleep(Duration::from_millis(500));
    let got = receiver.accepted();
    assert_eq!(got.len(), 33, "each event once");
    for sid in &systems {
        in_order_once(&got, sid, 11);
    }
}

fn private_addresses_redirects_and_timeouts(app: &TestApp) {
    let admin = app.admin();
    // Refused at subscription: private, metadata, CGNAT, loopback names not allowed; http to
    // a host not allowed.
    for url in [
        "https://10.1.2.3/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://100.64.0.1/hook",
        "https://[::1]/hook",
        "https://192.168.0.10:8443/hook",
        "http://hooks.example.org/hook",
        "ftp://127.0.0.1/hook",
        "https://user:pw@127.0.0.1/hook",
    ] {
        let r = app
            .post(
                "/v1/webhooks",
                &admin,
                &json!({"url": url, "events": ["*"]}),
            )
            .problem(422, "validation_failed");
        assert_eq!(r.pointers(), vec!["/url"], "{url}: {}", r.body);
    }
    assert!(app.get("/v1/webhooks", &admin).expect(200).body["items"]
        .as_array()
        .is_some_and(Vec::is_empty));

    // A redirect is a failure, never followed; after the schedule the delivery is dead.
    let receiver = Receiver::start(Mode::Redirect);
    let sid = app.system("Redirected");
    let (hook, secret) = subscribe(app, &receiver.url, json!({"systems": [sid]}));
    receiver.trust(&secret);
    app.item(&sid, json!({})).expect(201);
    wait_for("a dead delivery", || {
        deliveries(app, &hook)
            .iter()
            .filter(|d| d["state"] == "dead")
            .count()
            == 1
    });
    let log = deliveries(app, &hook);
    let dead = log
        .iter()
        .find(|d| d["state"] == "dead")
        .cloned()
        .unwrap_or_default();
    let attempts = dead["attempts"].as_array().cloned().unwrap_or_default();
    assert_eq!(attempts.len(), 9, "every attempt of the schedule: {dead}");
    assert!(attempts.iter().all(|a| a["status"] == 302), "{dead}");
    assert!(attempts[0]["error"]
        .as_str()
        .unwrap_or_default()
        .contains("redirect"));
    assert_eq!(receiver.log().followed, 0, "never followed");
    // Manual redelivery once the receiver accepts.
    receiver.set(Mode::Accept);
    let did = dead["id"].as_str().unwrap_or_default();
    app.post(
        &format!("/v1/webhooks/{hook}/deliveries/{did}/redeliver"),
        &admin,
        &json!({}),
    )
    .expect(202);
    wait_for("the redelivered one", || {
        receiver.accepted().iter().any(|r| r.id == did)
    });

    // A receiver slower than the timeout: the attempt is cut at the timeout.
    let slow = Receiver::start(Mode::Slow);
    let sid2 = app.system("Slow");
    let (hook2, _) = subscribe(app, &slow.url, json!({"systems": [sid2]}));
    app.item(&sid2, json!({})).expect(201);
    wait_for("a timed-out attempt", || {
        deliveries(app, &hook2)
            .iter()
            .any(|d| d["attempts"].as_array().is_some_and(|a| !a.is_empty()))
    });
    let attempt = deliveries(app, &hook2)[0]["attempts"][0].clone();
    assert_eq!(attempt["status"], Value::Null, "{attempt}");
    let error = attempt["error"]
        .as_str()
        .unwrap_or_default()
        .to_ascii_lowercase();
    assert!(
        error.contains("timed out") || error.contains("timeout"),
        "{attempt}"
    );
    assert!(
        attempt["latency_ms"].as_i64().unwrap_or(i64::MAX) < 2500,
        "{attempt}"
    );
}
both_fast!(private_addresses_redirects_and_timeouts);

/// The plain `both!` harness works too: without an allow list, the local receiver is refused.
fn without_an_allow_list_loopback_is_refused(app: &TestApp) {
    let receiver = Receiver::start(Mode::Accept);
    app.post(
        "/v1/webhooks",
        &app.admin(),
        &json!({"url": receiver.url, "events": ["*"]}),
    )
    .problem(422, "validation_failed");
}
both!(without_an_allow_list_loopback_is_refused);
