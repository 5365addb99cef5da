//! The webhook delivery worker: claims due deliveries from the outbox (with a lease, so several
//! instances never send one delivery at the same time), signs them per Standard Webhooks, sends
//! them with a bounded, redirect-refusing, SSRF-guarded client, and records every attempt. What
//! follows an attempt (retry when, dead, pause) is the domain's decision
//! (`poam_domain::webhooks`).

use crate::background::{pause, Background};
use poam_domain::webhooks::{self, AllowList, RetrySchedule};
use poam_persistence::db::{self, DbPool};
use poam_persistence::webhooks::{self as store, Attempt, Claim};
use serde::Serialize;
use serde_json::value::RawValue;
use std::io::Read;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The bytes of a receiver's response kept in the attempt log.
pub const EXCERPT_BYTES: u64 = 512;

/// The delivery settings (`POAM_WEBHOOK_*`).
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// Hosts and networks allowed despite the private-range rule, and over http.
    pub allow: AllowList,
    /// The delays between attempts.
    pub retry: RetrySchedule,
    /// The longest one attempt may take, connection included.
    pub timeout: Duration,
    /// The longest the connection of one attempt may take.
    pub connect_timeout: Duration,
    /// How often an idle worker looks for due deliveries.
    pub poll: Duration,
    /// How long a subscription may fail before it is paused.
    pub pause_after: Duration,
    /// Attempts one instance makes at once.
    pub concurrency: usize,
    /// How long the previous secret keeps signing after a rotation, unless the request says.
    pub secret_overlap: Duration,
    /// Whether this instance runs the worker.
    pub deliver: bool,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        WebhookSettings {
            allow: AllowList::default(),
            retry: RetrySchedule::default(),
            timeout: Duration::from_secs(15),
            connect_timeout: Duration::from_secs(5),
            poll: Duration::from_secs(1),
            pause_after: Duration::from_secs(3 * 86_400),
            concurrency: 8,
            secret_overlap: Duration::from_secs(86_400),
            deliver: true,
        }
    }
}

/// Checks a subscription's URL: http(s), a host, https unless the host is allowed, and every
/// address the name resolves to outside the refused ranges unless allowed. Resolves the name
/// (blocking: call it off the actix workers).
pub fn check_url(text: &str, allow: &AllowList) -> Result<url::Url, String> {
    let url = url::Url::parse(text).map_err(|e| format!("not a URL: {e}"))?;
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or("the URL has no host")?
        .to_owned();
    if !url.username().is_empty() || url.password().is_some() {
        return Err("credentials in the URL are refused: the signature authenticates".into());
    }
    if url.fragment().is_some() {
        return Err("a URL with a fragment is refused".into());
    }
    let host_allowed = allow.allows_host(&host);
    if !webhooks::scheme_allowed(url.scheme(), host_allowed) {
        return Err(format!(
            "the URL must be https (http only for a host in POAM_WEBHOOK_ALLOW); got {}",
            url.scheme()
        ));
    }
    let port = url.port_or_known_default().ok_or("the URL has no port")?;
    guarded_addresses(&format!("{}:{port}", bracketed(&host)), allow)?;
    Ok(url)
}

fn bracketed(host: &str) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_owned()
    }
}

/// Resolves `host:port` and refuses the lot if any address lies in a refused range (unless the
/// host or the address is allowed): a name that resolves to a public and a private address is
/// refused, not trimmed.
fn guarded_addresses(netloc: &str, allow: &AllowList) -> Result<Vec<SocketAddr>, String> {
    let host = netloc.rsplit_once(':').map_or(netloc, |(h, _)| h);
    let addrs: Vec<SocketAddr> = netloc
        .to_socket_addrs()
        .map_err(|e| format!("{host} does not resolve: {e}"))?
        .collect();
    if addrs.is_empty() {
        return Err(format!("{host} resolves to no address"));
    }
    let host_allowed = allow.allows_host(host);
    for a in &addrs {
        if let Some(why) = webhooks::refused_address(a.ip()) {
            if !host_allowed && !allow.allows_ip(a.ip()) {
                return Err(format!(
                    "{host} resolves to {}, a {why} address: refused (POAM_WEBHOOK_ALLOW can allow it)",
                    a.ip()
                ));
            }
        }
    }
    Ok(addrs)
}

/// The client's resolver: the addresses it connects to are the ones checked, so a name that
/// changes its answer between the check and the connection (DNS rebinding) gains nothing.
struct GuardedResolver(AllowList);

impl ureq::Resolver for GuardedResolver {
    fn resolve(&self, netloc: &str) -> std::io::Result<Vec<SocketAddr>> {
        guarded_addresses(netloc, &self.0)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::PermissionDenied, e))
    }
}

/// The body of a webhook: Standard Webhooks' `type`, `timestamp` and `data`.
#[derive(Serialize)]
struct Payload<'a> {
    r#type: &'a str,
    /// When the event happened (not the attempt: that is `webhook-timestamp`).
    timestamp: String,
    data: PayloadData<'a>,
}

#[derive(Serialize)]
struct PayloadData<'a> {
    subscription_id: &'a str,
    event_id: &'a str,
    system_id: &'a str,
    seq: i64,
    resource_kind: &'a str,
    resource_id: &'a str,
    action: &'a str,
    actor: &'a str,
    version: i64,
    /// `full` payloads: the resource after the change, as the event records it.
    #[serde(skip_serializing_if = "Option::is_none")]
    resource: Option<&'a RawValue>,
    /// `full` payloads: what changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    changes: Option<&'a RawValue>,
}

/// The bytes sent for a claimed delivery: the same on every attempt.
pub fn body_of(claim: &Claim) -> Result<Vec<u8>, String> {
    let e = &claim.event;
    let full = claim.subscription.payload == "full";
    let (resource, changes) = if full {
        (
            Some(RawValue::from_string(e.snapshot.clone()).map_err(|x| x.to_string())?),
            Some(RawValue::from_string(e.changes.clone()).map_err(|x| x.to_string())?),
        )
    } else {
        (None, None)
    };
    let payload = Payload {
        r#type: &claim.delivery.event_type,
        timestamp: e
            .at
            .and_utc()
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        data: PayloadData {
            subscription_id: &claim.subscription.id,
            event_id: &e.id,
            system_id: &e.system_id,
            seq: e.seq,
            resource_kind: &e.resource_kind,
            resource_id: &e.resource_id,
            action: &e.action,
            actor: &e.actor,
            version: e.version,
            resource: resource.as_deref(),
            changes: changes.as_deref(),
        },
    };
    serde_json::to_vec(&payload).map_err(|e| e.to_string())
}

/// The client every attempt uses: no redirects, no proxy, bounded in time, guarded resolver.
pub fn client(settings: &WebhookSettings) -> ureq::Agent {
    ureq::AgentBuilder::new()
        .redirects(0)
        .timeout_connect(settings.connect_timeout)
        .timeout(settings.timeout)
        .resolver(GuardedResolver(settings.allow.clone()))
        .user_agent(concat!("poam-webhooks/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// One attempt of a claimed delivery.
pub fn send(agent: &ureq::Agent, claim: &Claim, settings: &WebhookSettings) -> Attempt {
    let at = db::now();
    let started = Instant::now();
    let failed = |error: String, status: Option<u16>, excerpt: Option<String>| Attempt {
        at,
        status,
        latency_ms: i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX),
        error: Some(error),
        excerpt,
    };
    // Checked again at every attempt: the allow list or the name's addresses may have changed.
    if let Err(e) = check_url(&claim.subscription.url, &settings.allow) {
        return failed(e, None, None);
    }
    let body = match body_of(claim) {
        Ok(b) => b,
        Err(e) => return failed(format!("the event does not render: {e}"), None, None),
    };
    let timestamp = at.and_utc().timestamp();
    let signature = match webhooks::signature_header(
        &claim.subscription.signing_secrets(at),
        &claim.delivery.id,
        timestamp,
        &body,
    ) {
        Ok(s) => s,
        Err(e) => return failed(format!("cannot sign: {e}"), None, None),
    };
    let result = agent
        .post(&claim.subscription.url)
        .set("content-type", "application/json")
        .set("webhook-id", &claim.delivery.id)
        .set("webhook-timestamp", &timestamp.to_string())
        .set("webhook-signature", &signature)
        .send_bytes(&body);
    let response = match result {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(ureq::Error::Transport(t)) => {
            // The kind and message only: the URL (which may carry a token) stays out.
            let message = t.message().map(str::to_owned).unwrap_or_else(|| {
                std::error::Error::source(&t).map_or_else(String::new, ToString::to_string)
            });
            return failed(format!("{}: {message}", t.kind()), None, None);
        }
    };
    let status = response.status();
    let mut excerpt = Vec::new();
    let _ = response
        .into_reader()
        .take(EXCERPT_BYTES)
        .read_to_end(&mut excerpt);
    let excerpt = (!excerpt.is_empty()).then(|| String::from_utf8_lossy(&excerpt).into_owned());
    if webhooks::delivered(status) {
        Attempt {
            at,
            status: Some(status),
            latency_ms: i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX),
            error: None,
            excerpt,
        }
    } else if (300..400).contains(&status) {
        failed(
            format!("the receiver answered {status}: redirects are not followed"),
            Some(status),
            excerpt,
        )
    } else {
        failed(
            format!("the receiver answered {status}"),
            Some(status),
            excerpt,
        )
    }
}

/// A number in `[0, 1)` for the retry jitter.
fn random_unit() -> f64 {
    let mut b = [0u8; 8];
    if getrandom::fill(&mut b).is_err() {
        return 0.5;
    }
    (u64::from_le_bytes(b) >> 11) as f64 / (1u64 << 53) as f64
}

/// 32 random bytes for a new secret.
pub fn new_secret() -> Result<String, String> {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).map_err(|e| format!("no randomness: {e}"))?;
    Ok(webhooks::secret_from(&b))
}

/// The running worker of this instance ([`Background`]): stopping it waits for the attempts in
/// flight (each bounded by the timeout).
pub struct DeliveryWorker(Background);

impl DeliveryWorker {
    /// Starts the worker thread of this instance.
    pub fn start(pool: DbPool, settings: Arc<WebhookSettings>) -> std::io::Result<Self> {
        Background::spawn("webhook-delivery", move |stop| run(&pool, &settings, stop))
            .map(DeliveryWorker)
    }

    /// Stops taking deliveries and waits for the attempts in flight.
    pub fn stop(self) {
        self.0.stop();
    }
}

fn run(pool: &DbPool, settings: &WebhookSettings, stop: &AtomicBool) {
    let instance = uuid::Uuid::new_v4().to_string();
    // Built at the first delivery: its TLS roots and code stay out of an instance that never
    // delivers one.
    let mut agent: Option<ureq::Agent> = None;
    // A lease outlives any attempt: a crashed instance's deliveries are taken over after it.
    let lease = settings.timeout + settings.connect_timeout + Duration::from_secs(5);
    tracing::info!(%instance, "webhook delivery started");
    while !stop.load(Ordering::SeqCst) {
        let claimed = db::checkout(pool).and_then(|mut conn| {
            let r = store::claim(
                &mut conn,
                &instance,
                db::now(),
                lease,
                settings.concurrency.max(1),
            );
            conn.settle(r)
        });
        let claims = match claimed {
            Ok(c) if c.is_empty() => {
                pause(stop, settings.poll);
                continue;
            }
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(cause = %e, "webhook deliveries could not be claimed");
                pause(stop, settings.poll.max(Duration::from_secs(1)));
                continue;
            }
        };
        let agent = &*agent.get_or_insert_with(|| client(settings));
        let results: Vec<(Claim, Attempt)> = std::thread::scope(|s| {
            let handles: Vec<_> = claims
                .into_iter()
                .map(|c| {
                    s.spawn(move || {
                        let a = send(agent, &c, settings);
                        (c, a)
                    })
                })
                .collect();
            handles.into_iter().filter_map(|h| h.join().ok()).collect()
        });
        for (claim, attempt) in results {
            let success = attempt.error.is_none();
            let failed_before = usize::try_from(claim.delivery.attempts).unwrap_or(0);
            let next = webhooks::after_attempt(
                &settings.retry,
                failed_before,
                success,
                attempt.at,
                random_unit(),
            );
            if !success {
                tracing::info!(
                    delivery = %claim.delivery.id,
                    subscription = %claim.subscription.id,
                    status = attempt.status,
                    error = attempt.error.as_deref().unwrap_or_default(),
                    ?next,
                    "webhook attempt failed"
                );
            }
            let recorded = db::checkout(pool).and_then(|mut conn| {
                let r = store::record(
                    &mut conn,
                    &claim,
                    &instance,
                    &attempt,
                    next,
                    settings.pause_after,
                );
                conn.settle(r)
            });
            match recorded {
                Ok(true) => {}
                Ok(false) => {
                    tracing::warn!(delivery = %claim.delivery.id, "webhook lease lost before the attempt was recorded")
                }
                Err(e) => {
                    tracing::error!(delivery = %claim.delivery.id, cause = %e, "webhook attempt not recorded: it will be retried when its lease ends")
                }
            }
        }
    }
    tracing::info!(%instance, "webhook delivery stopped");
}
