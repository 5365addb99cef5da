//! Protection against hostile or runaway load: rate limits (per token subject, per client
//! address, and a stricter budget for failed authentication) with the IETF draft `RateLimit`
//! and `RateLimit-Policy` headers; concurrency limits and a memory budget for the heavy
//! operations (exports, bulk upserts, imports, evidence uploads); idle timeouts on request
//! bodies and on streamed responses; the protective headers every response carries.
//!
//! The limiters are `governor`'s GCRA (one state per key, in a sharded map pruned as it
//! grows); the concurrency limits are semaphores sized from configuration, tried and never
//! waited on: a request that would exceed one is answered at once, 429 when the caller is over
//! its own share, 503 when the service as a whole is busy, both with `Retry-After`.

use crate::problem::ApiError;
use crate::state::AppState;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::web::{self, Bytes};
use actix_web::{HttpMessage, ResponseError};
use futures_util::Stream;
use governor::clock::{Clock, DefaultClock};
use governor::middleware::{StateInformationMiddleware, StateSnapshot};
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{NotUntil, Quota, RateLimiter};
use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The limits, as configured (`POAM_RATE_LIMIT_*`, `POAM_*_CONCURRENCY`, ...). A rate of `0`
/// turns that limiter off; a concurrency of `0` turns that limit off.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Requests per second one token subject may make, sustained.
    pub rate_per_second: u32,
    /// How many requests a token subject may make at once above the sustained rate.
    pub rate_burst: u32,
    /// Requests per second from one client address (authenticated or not).
    pub address_per_second: u32,
    pub address_burst: u32,
    /// Failed authentications per minute one client address may make.
    pub auth_failures_per_minute: u32,
    pub auth_failure_burst: u32,
    /// Exports one token subject may run at once.
    pub export_per_token: usize,
    /// Exports the service runs at once.
    pub export_total: usize,
    /// Bulk upserts, imports and evidence uploads one token subject may run at once.
    pub heavy_per_token: usize,
    /// Bulk upserts, imports and evidence uploads the service runs at once.
    pub heavy_total: usize,
    /// Bytes the heavy operations may hold in memory together (0: no budget).
    pub memory_budget: usize,
    /// Evidence bytes one system may store (0: no quota).
    pub evidence_quota: u64,
    /// Longest pause in a request body before it is cut off with 408.
    pub body_idle: Duration,
    /// Slowest average rate of a request body (bytes per second) once `body_idle` has passed
    /// since it began: a trickle is cut off with 408 (0: no minimum).
    pub body_min_rate: u64,
    /// Longest a streamed response waits for the client to take more before it is abandoned.
    pub send_idle: Duration,
    /// After an answer given before the request's body was read (a refusal), how long the rest
    /// of the body is still read and thrown away before the connection closes: a client that
    /// sends its whole body before it reads (Python's `urllib`, many scripts) then sees the
    /// answer, not a reset connection (the kernel resets a connection closed with unread data,
    /// and the answer is lost with it).
    pub linger: Duration,
}

pub const DEFAULT_RATE_PER_SECOND: u32 = 100;
pub const DEFAULT_RATE_BURST: u32 = 200;
pub const DEFAULT_ADDRESS_PER_SECOND: u32 = 500;
pub const DEFAULT_ADDRESS_BURST: u32 = 1000;
pub const DEFAULT_AUTH_FAILURES_PER_MINUTE: u32 = 30;
pub const DEFAULT_AUTH_FAILURE_BURST: u32 = 10;
pub const DEFAULT_EXPORT_CONCURRENCY: usize = 4;
pub const DEFAULT_HEAVY_CONCURRENCY: usize = 4;
pub const DEFAULT_MEMORY_BUDGET: usize = 512 << 20;
pub const DEFAULT_BODY_IDLE_SECS: u64 = 10;
pub const DEFAULT_BODY_MIN_RATE: u64 = 1024;
pub const DEFAULT_SEND_IDLE_SECS: u64 = 30;
pub const DEFAULT_LINGER_SECS: u64 = 10;

/// How many times its text size a JSON document takes in memory while it is taken in: what a
/// bulk or import reserves from the memory budget. Measured as the peak RSS over the RSS before:
/// a 32.7 MB OSCAL import 3.2 times, a 4.3 MB bulk upsert of 1,000 items 3.8 times (12 before
/// the body was freed as it was parsed; `docs/benchmarks.md`).
pub const JSON_EXPANSION: usize = 6;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            rate_per_second: DEFAULT_RATE_PER_SECOND,
            rate_burst: DEFAULT_RATE_BURST,
            address_per_second: DEFAULT_ADDRESS_PER_SECOND,
            address_burst: DEFAULT_ADDRESS_BURST,
            auth_failures_per_minute: DEFAULT_AUTH_FAILURES_PER_MINUTE,
            auth_failure_burst: DEFAULT_AUTH_FAILURE_BURST,
            export_per_token: DEFAULT_EXPORT_CONCURRENCY,
            export_total: DEFAULT_EXPORT_CONCURRENCY,
            heavy_per_token: DEFAULT_HEAVY_CONCURRENCY,
            heavy_total: DEFAULT_HEAVY_CONCURRENCY,
            memory_budget: DEFAULT_MEMORY_BUDGET,
            evidence_quota: 0,
            body_idle: Duration::from_secs(DEFAULT_BODY_IDLE_SECS),
            body_min_rate: DEFAULT_BODY_MIN_RATE,
            send_idle: Duration::from_secs(DEFAULT_SEND_IDLE_SECS),
            linger: Duration::from_secs(DEFAULT_LINGER_SECS),
        }
    }
}

/// Whole seconds, rounded up.
fn seconds(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// Keys hashed by foldhash (seeded per process) rather than SipHash: a key is hashed on every
/// request.
type Keyed<K> = RateLimiter<
    K,
    DefaultKeyedStateStore<K, foldhash::quality::RandomState>,
    DefaultClock,
    StateInformationMiddleware,
>;

/// Where a caller stands against one budget: what the `RateLimit` headers say.
#[derive(Debug, Clone)]
pub struct Standing {
    policy: &'static str,
    /// `RateLimit-Policy`, the same for every answer of its budget: written once (shared, so
    /// that a refusal carrying it stays small).
    policy_header: Arc<HeaderValue>,
    remaining: u32,
    reset: u64,
    /// Seconds until the next request would be let through, when this one was refused.
    pub retry_after: Option<u64>,
}

impl Standing {
    /// `RateLimit-Policy` and `RateLimit` (draft-ietf-httpapi-ratelimit-headers): the quota
    /// `q` over a window of `w` seconds, the requests `r` remaining and the seconds `t` until
    /// the quota is whole again.
    pub(crate) fn insert_into(&self, headers: &mut actix_web::http::header::HeaderMap) {
        headers.insert(
            HeaderName::from_static("ratelimit-policy"),
            HeaderValue::clone(&self.policy_header),
        );
        if let Ok(v) = HeaderValue::from_str(&item(
            self.policy,
            "\";r=",
            u64::from(self.remaining),
            ";t=",
            self.reset,
        )) {
            headers.insert(HeaderName::from_static("ratelimit"), v);
        }
        if let Some(secs) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
    }
}

/// `"policy"` followed by `a`, `x`, `b`, `y`: a `RateLimit` header's list item, written with
/// itoa rather than `format!` (on every answer).
fn item(policy: &str, a: &str, x: u64, b: &str, y: u64) -> String {
    let mut s = String::with_capacity(48);
    s.push('"');
    s.push_str(policy);
    s.push_str(a);
    s.push_str(itoa::Buffer::new().format(x));
    s.push_str(b);
    s.push_str(itoa::Buffer::new().format(y));
    s
}

/// One keyed budget.
struct Budget<K: Hash + Eq + Clone> {
    limiter: Keyed<K>,
    policy: &'static str,
    policy_header: Arc<HeaderValue>,
    burst: u32,
    interval: Duration,
    checks: AtomicU64,
}

impl<K: Hash + Eq + Clone> Budget<K> {
    /// `rate` requests per `period`, `burst` at once; `None` when `rate` is 0.
    fn new(policy: &'static str, rate: u32, burst: u32, period: Duration) -> Option<Self> {
        let rate = NonZeroU32::new(rate)?;
        let burst = NonZeroU32::new(burst.max(1)).unwrap_or(rate);
        let interval = period / rate.get();
        let quota = Quota::with_period(interval.max(Duration::from_nanos(1)))?.allow_burst(burst);
        let window = seconds(interval * burst.get()).max(1);
        let policy_header = Arc::new(
            HeaderValue::from_str(&item(policy, "\";q=", burst.get().into(), ";w=", window))
                .ok()?,
        );
        Some(Budget {
            limiter: RateLimiter::dashmap_with_hasher(
                quota,
                foldhash::quality::RandomState::default(),
            )
            .with_middleware::<StateInformationMiddleware>(),
            policy,
            policy_header,
            burst: burst.get(),
            interval,
            checks: AtomicU64::new(0),
        })
    }

    fn standing(&self, remaining: u32, retry_after: Option<u64>) -> Standing {
        let missing = self.burst.saturating_sub(remaining);
        Standing {
            policy: self.policy,
            policy_header: Arc::clone(&self.policy_header),
            remaining,
            reset: seconds(self.interval * missing),
            retry_after,
        }
    }

    fn check(&self, key: &K) -> Result<Standing, Standing> {
        // Keys not seen for a while are dropped now and then, so the map stays small.
        if self.checks.fetch_add(1, Ordering::Relaxed) % 4096 == 4095 {
            self.limiter.retain_recent();
            self.limiter.shrink_to_fit();
        }
        match self.limiter.check_key(key) {
            Ok(snapshot) => Ok(self.snapshot(&snapshot)),
            Err(not_until) => Err(self.refusal(&not_until)),
        }
    }

    fn snapshot(&self, s: &StateSnapshot) -> Standing {
        self.standing(s.remaining_burst_capacity(), None)
    }

    fn refusal(&self, n: &NotUntil<<DefaultClock as Clock>::Instant>) -> Standing {
        let wait = n.wait_time_from(self.limiter.clock().now());
        self.standing(0, Some(seconds(wait).max(1)))
    }
}

/// A concurrency limit, per token subject and overall.
struct Slots {
    what: &'static str,
    total: Option<Arc<Semaphore>>,
    per_token: usize,
    held: Mutex<HashMap<String, usize>>,
}

impl Slots {
    fn new(what: &'static str, per_token: usize, total: usize) -> Arc<Self> {
        Arc::new(Slots {
            what,
            total: (total > 0).then(|| Arc::new(Semaphore::new(total))),
            per_token,
            held: Mutex::new(HashMap::new()),
        })
    }

    fn held(&self) -> std::sync::MutexGuard<'_, HashMap<String, usize>> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A heavy operation's right to run: its slots and its share of the memory budget, given back
/// when dropped.
pub struct Pass {
    _total: Option<OwnedSemaphorePermit>,
    _memory: Option<OwnedSemaphorePermit>,
    token: Option<(Arc<Slots>, String)>,
}

impl Drop for Pass {
    fn drop(&mut self) {
        if let Some((slots, sub)) = self.token.take() {
            let mut held = slots.held();
            if let Some(n) = held.get_mut(&sub) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    held.remove(&sub);
                }
            }
        }
    }
}

/// Which concurrency limit an operation draws on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Heavy {
    /// Exports (`POAM_EXPORT_CONCURRENCY`).
    Export,
    /// Bulk upserts, imports, evidence uploads (`POAM_HEAVY_CONCURRENCY`).
    Write,
}

/// The protection state every worker shares.
pub struct Protection {
    pub limits: Limits,
    tokens: Option<Budget<String>>,
    addresses: Option<Budget<IpAddr>>,
    failures: Option<Budget<IpAddr>>,
    /// Addresses whose failure budget is spent, with when they may try again.
    blocked: Mutex<HashMap<IpAddr, Instant>>,
    any_blocked: std::sync::atomic::AtomicBool,
    exports: Arc<Slots>,
    writes: Arc<Slots>,
    memory: Option<(Arc<Semaphore>, u32)>,
    refused: AtomicU64,
}

impl Default for Protection {
    fn default() -> Self {
        Protection::new(Limits::default())
    }
}

impl Protection {
    pub fn new(limits: Limits) -> Self {
        let second = Duration::from_secs(1);
        let memory_kib = u32::try_from(limits.memory_budget / 1024).unwrap_or(u32::MAX);
        Protection {
            tokens: Budget::new("token", limits.rate_per_second, limits.rate_burst, second),
            addresses: Budget::new(
                "address",
                limits.address_per_second,
                limits.address_burst,
                second,
            ),
            failures: Budget::new(
                "auth-failure",
                limits.auth_failures_per_minute,
                limits.auth_failure_burst,
                Duration::from_secs(60),
            ),
            blocked: Mutex::new(HashMap::new()),
            any_blocked: std::sync::atomic::AtomicBool::new(false),
            exports: Slots::new("exports", limits.export_per_token, limits.export_total),
            writes: Slots::new(
                "bulk upserts, imports and uploads",
                limits.heavy_per_token,
                limits.heavy_total,
            ),
            memory: (memory_kib > 0)
                .then(|| (Arc::new(Semaphore::new(memory_kib as usize)), memory_kib)),
            refused: AtomicU64::new(0),
            limits,
        }
    }

    /// How many requests the limits refused since the start.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    fn refuse(&self) {
        self.refused.fetch_add(1, Ordering::Relaxed);
    }

    /// Spends one request of a token subject's budget. (The subject as the budget's key type,
    /// not a `&str` copied into one on every request.)
    #[allow(clippy::ptr_arg)]
    pub fn check_token(&self, sub: &String) -> Result<Option<Standing>, ApiError> {
        let Some(budget) = &self.tokens else {
            return Ok(None);
        };
        match budget.check(sub) {
            Ok(s) => Ok(Some(s)),
            Err(s) => {
                self.refuse();
                Err(ApiError::TooManyRequests {
                    code: "rate_limited",
                    detail: format!(
                        "this token's subject made more than {} requests at once or more than {} a second: wait {} s",
                        self.limits.rate_burst,
                        self.limits.rate_per_second,
                        s.retry_after.unwrap_or(1)
                    ),
                    standing: Some(s),
                })
            }
        }
    }

    fn check_address(&self, ip: IpAddr) -> Result<Option<Standing>, ApiError> {
        let Some(budget) = &self.addresses else {
            return Ok(None);
        };
        match budget.check(&ip) {
            Ok(s) => Ok(Some(s)),
            Err(s) => {
                self.refuse();
                Err(ApiError::TooManyRequests {
                    code: "rate_limited",
                    detail: format!(
                        "this client address made more than {} requests a second: wait {} s",
                        self.limits.address_per_second,
                        s.retry_after.unwrap_or(1)
                    ),
                    standing: Some(s),
                })
            }
        }
    }

    /// Refuses an address whose failed-authentication budget is spent, before its token is
    /// even looked at.
    pub fn check_auth_allowed(&self, ip: Option<IpAddr>) -> Result<(), ApiError> {
        let Some(ip) = ip else { return Ok(()) };
        if !self.any_blocked.load(Ordering::Relaxed) {
            return Ok(());
        }
        let mut blocked = self.blocked.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        blocked.retain(|_, until| *until > now);
        self.any_blocked
            .store(!blocked.is_empty(), Ordering::Relaxed);
        match blocked.get(&ip) {
            Some(until) => {
                let wait = until.saturating_duration_since(now);
                let secs = (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1);
                drop(blocked);
                self.refuse();
                Err(self.auth_refusal(secs))
            }
            None => Ok(()),
        }
    }

    fn auth_refusal(&self, secs: u64) -> ApiError {
        ApiError::TooManyRequests {
            code: "too_many_failed_authentications",
            detail: format!(
                "this client address sent more than {} failed authentications in a minute: wait {secs} s",
                self.limits.auth_failure_burst
            ),
            standing: self.failures.as_ref().map(|b| b.standing(0, Some(secs))),
        }
    }

    /// Counts a failed authentication of `ip`; the one that spends the budget is answered 429.
    pub fn auth_failed(&self, ip: Option<IpAddr>, failure: ApiError) -> ApiError {
        let (Some(ip), Some(budget)) = (ip, &self.failures) else {
            return failure;
        };
        match budget.check(&ip) {
            Ok(_) => failure,
            Err(s) => {
                let secs = s.retry_after.unwrap_or(1);
                let mut blocked = self.blocked.lock().unwrap_or_else(|p| p.into_inner());
                blocked.insert(ip, Instant::now() + Duration::from_secs(secs));
                self.any_blocked.store(true, Ordering::Relaxed);
                drop(blocked);
                self.refuse();
                self.auth_refusal(secs)
            }
        }
    }

    /// Takes a slot for a heavy operation of `sub` and `memory` bytes of the budget (capped at
    /// the whole budget, so one request alone always fits), or refuses at once: 429 when `sub`
    /// already runs its share, 503 when the service runs all it may.
    pub fn enter(&self, kind: Heavy, sub: &str, memory: usize) -> Result<Pass, ApiError> {
        let slots = match kind {
            Heavy::Export => &self.exports,
            Heavy::Write => &self.writes,
        };
        let token = if slots.per_token > 0 {
            let mut held = slots.held();
            let n = held.entry(sub.to_owned()).or_insert(0);
            if *n >= slots.per_token {
                drop(held);
                self.refuse();
                return Err(ApiError::TooManyRequests {
                    code: "too_many_concurrent",
                    detail: format!(
                        "this token's subject already runs {} {} at once, the most allowed: wait for one to finish",
                        slots.per_token, slots.what
                    ),
                    standing: None,
                });
            }
            *n += 1;
            Some((slots.clone(), sub.to_owned()))
        } else {
            None
        };
        // From here, dropping `pass` gives back what was taken.
        let mut pass = Pass {
            _total: None,
            _memory: None,
            token,
        };
        if let Some(total) = &slots.total {
            pass._total = Some(total.clone().try_acquire_owned().map_err(|_| {
                self.refuse();
                ApiError::Busy {
                    code: "server_busy",
                    detail: format!(
                        "the service runs as many {} as it may at once: retry shortly",
                        slots.what
                    ),
                }
            })?);
        }
        if let Some((budget, whole)) = &self.memory {
            let kib = u32::try_from(memory / 1024)
                .unwrap_or(u32::MAX)
                .clamp(1, *whole);
            pass._memory = Some(budget.clone().try_acquire_many_owned(kib).map_err(|_| {
                self.refuse();
                ApiError::Busy {
                    code: "memory_budget_exhausted",
                    detail: "the requests in progress hold the memory this service may use for them: retry shortly".into(),
                }
            })?);
        }
        Ok(pass)
    }
}

/// What a bulk upsert or an import reserves from the memory budget: its declared length (or,
/// without one, the largest body it may send) times [`JSON_EXPANSION`].
pub fn json_reservation(req: &actix_web::HttpRequest, limit: usize) -> usize {
    let declared = crate::input::content_length(req)
        .unwrap_or(limit)
        .min(limit);
    declared.saturating_mul(JSON_EXPANSION)
}

/// The token subject's standing, for the `RateLimit` headers of its response.
#[derive(Clone)]
pub(crate) struct TokenStanding(pub Standing);

/// A request body that is cut off when it pauses longer than `idle`, or, once `idle` has
/// passed since it began, arrives slower than `min_rate` bytes a second on average.
struct BodyClock<S> {
    inner: S,
    idle: Duration,
    min_rate: u64,
    started: Option<Instant>,
    bytes: u64,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
    done: bool,
}

/// The error a cut-off body yields: `io::ErrorKind::TimedOut`.
fn timed_out(why: &str) -> PayloadError {
    PayloadError::Io(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        why.to_owned(),
    ))
}

impl<S> Stream for BodyClock<S>
where
    S: Stream<Item = Result<Bytes, PayloadError>> + Unpin,
{
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        let started = *this.started.get_or_insert_with(Instant::now);
        match Pin::new(&mut this.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                this.sleep = None;
                this.bytes += chunk.len() as u64;
                let elapsed = started.elapsed();
                if this.min_rate > 0
                    && elapsed > this.idle
                    && (this.bytes as f64) < this.min_rate as f64 * elapsed.as_secs_f64()
                {
                    this.done = true;
                    return Poll::Ready(Some(Err(timed_out(
                        "the request body arrives too slowly",
                    ))));
                }
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(None) => {
                this.done = true;
                Poll::Ready(None)
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e))),
            Poll::Pending => {
                let idle = this.idle;
                let sleep = this
                    .sleep
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(idle)));
                match sleep.as_mut().poll(cx) {
                    Poll::Ready(()) => {
                        this.done = true;
                        Poll::Ready(Some(Err(timed_out("the request body stopped arriving"))))
                    }
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }
}

use std::future::Future;

/// The problem for a body error: 408 when the body was cut off for idling, else 400.
pub fn body_error(e: &PayloadError) -> ApiError {
    match e {
        PayloadError::Io(io) if io.kind() == std::io::ErrorKind::TimedOut => ApiError::BodyTimeout(
            format!("{io}: a request body may pause at most the configured idle time (POAM_BODY_IDLE_TIMEOUT) and must keep a minimum rate (POAM_BODY_MIN_RATE)"),
        ),
        other => ApiError::bad_request("unreadable_body", other.to_string()),
    }
}

/// The Content-Security-Policy of the API documentation page: only its own scripts, styles
/// (Swagger UI sets inline styles) and images (and `data:` images from its stylesheet), calls
/// only to this origin, never framed.
pub const DOCS_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// Every other response's: nothing, and never framed.
pub const API_CSP: &str = "default-src 'none'; frame-ancestors 'none'";

/// Client address limits, body clocks and protective headers, around every route.
pub async fn guard(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    // Borrowed through a second handle on the request (its count is this worker's own), not
    // cloned: an `Arc`'s count is a line every worker writes.
    let shared = req.request().clone();
    let protection = shared
        .app_data::<web::Data<AppState>>()
        .map(|s| &s.protection);
    let path = req.path();
    let probe = path == "/healthz" || path == "/readyz";
    let docs = path == "/docs" || path.starts_with("/docs/");
    // A bearer token, or a connection whose verified client certificate speaks for the caller
    // (mutual TLS): either way the response is someone's and is not to be cached.
    let authenticated = req.headers().contains_key(header::AUTHORIZATION)
        || req.conn_data::<crate::auth::ClientCertificate>().is_some();
    let mut address_standing = None;
    if let (Some(p), false) = (&protection, probe) {
        if let Some(ip) = req.peer_addr().map(|a| a.ip()) {
            match p.check_address(ip) {
                Ok(s) => address_standing = s,
                Err(e) => {
                    let (req, _) = req.into_parts();
                    let mut res = ServiceResponse::new(req, e.error_response());
                    protective_headers(&mut res, docs, authenticated);
                    return Ok(res);
                }
            }
        }
        let limits = &p.limits;
        // A request without a body (no length, or zero, and not chunked) has nothing to clock.
        let headers = req.headers();
        let has_body = headers.contains_key(header::TRANSFER_ENCODING)
            || headers
                .get(header::CONTENT_LENGTH)
                .is_some_and(|v| v.as_bytes() != b"0");
        if has_body && !limits.body_idle.is_zero() {
            let inner = req.take_payload();
            req.set_payload(Payload::Stream {
                payload: Box::pin(BodyClock {
                    inner,
                    idle: limits.body_idle,
                    min_rate: limits.body_min_rate,
                    started: None,
                    bytes: 0,
                    sleep: None,
                    done: false,
                }),
            });
        }
    }
    // Routing needs the request's only handle (actix takes it mutably).
    drop(shared);
    let mut res = next.call(req).await?.map_into_boxed_body();
    let token = res.request().extensions().get::<TokenStanding>().cloned();
    if let Some(s) = token.map(|t| t.0).or(address_standing) {
        if !res.headers().contains_key("ratelimit") {
            s.insert_into(res.headers_mut());
        }
    }
    protective_headers(&mut res, docs, authenticated);
    Ok(res)
}

fn protective_headers(res: &mut ServiceResponse<BoxBody>, docs: bool, authenticated: bool) {
    let headers = res.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if authenticated {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if docs {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(DOCS_CSP),
        );
        headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    } else if !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(API_CSP),
        );
    }
}

/// Streams a spooled file to the client with `Content-Length`. A reader that takes nothing
/// for `idle` is abandoned: the file is closed and `pass` given back, and the response ends
/// short (the client sees the connection close before `Content-Length` bytes).
pub fn stream_spool(
    file: std::fs::File,
    len: u64,
    idle: Duration,
    pass: Option<Pass>,
) -> actix_web::body::SizedStream<impl Stream<Item = Result<Bytes, actix_web::Error>>> {
    const SEND_CHUNK: usize = 32 << 10;
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(2);
    actix_web::rt::spawn(async move {
        let _pass = pass;
        let mut file = Some(file);
        while let Some(mut f) = file.take() {
            let read = web::block(move || {
                use std::io::Read;
                let mut buf = vec![0u8; SEND_CHUNK];
                let n = f.read(&mut buf)?;
                buf.truncate(n);
                Ok::<_, std::io::Error>((f, buf))
            })
            .await;
            let (f, buf) = match read {
                Ok(Ok(read)) => read,
                Ok(Err(e)) => {
                    tracing::error!(cause = %e, "cannot read the export spool");
                    return;
                }
                Err(_) => return,
            };
            if buf.is_empty() {
                return;
            }
            match tx.send_timeout(Bytes::from(buf), idle).await {
                Ok(()) => file = Some(f),
                Err(tokio::sync::mpsc::error::SendTimeoutError::Timeout(_)) => {
                    tracing::warn!(
                        idle_secs = idle.as_secs(),
                        "the client took nothing for the send idle timeout: response abandoned"
                    );
                    return;
                }
                Err(tokio::sync::mpsc::error::SendTimeoutError::Closed(_)) => return,
            }
        }
    });
    let body =
        futures_util::stream::unfold((rx, 0u64, false), move |(mut rx, sent, over)| async move {
            if over {
                return None;
            }
            match rx.recv().await {
                Some(chunk) => {
                    let sent = sent + chunk.len() as u64;
                    Some((Ok(chunk), (rx, sent, false)))
                }
                None if sent >= len => None,
                None => Some((
                    Err(actix_web::error::ErrorInternalServerError(
                        "the response was abandoned before its end",
                    )),
                    (rx, sent, true),
                )),
            }
        });
    actix_web::body::SizedStream::new(len, body)
}

/// The protection series for `/metrics` (OpenMetrics text): the evidence quota, each system's
/// stored evidence bytes, and the requests the limits refused.
pub fn metrics_text(protection: &Protection, stored: &[(String, i64)]) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# HELP poam_evidence_quota_bytes Evidence bytes one system may store (0: no quota).\n\
         # TYPE poam_evidence_quota_bytes gauge\n\
         poam_evidence_quota_bytes {}",
        protection.limits.evidence_quota
    );
    let _ = writeln!(
        out,
        "# HELP poam_system_evidence_bytes Evidence bytes each system stores.\n\
         # TYPE poam_system_evidence_bytes gauge"
    );
    for (system, bytes) in stored {
        let _ = writeln!(
            out,
            "poam_system_evidence_bytes{{system_id=\"{system}\"}} {bytes}"
        );
    }
    let _ = writeln!(
        out,
        "# HELP poam_limit_refusals Requests refused by a rate limit, concurrency limit or the memory budget.\n\
         # TYPE poam_limit_refusals counter\n\
         poam_limit_refusals_total {}",
        protection.refused()
    );
    out
}
