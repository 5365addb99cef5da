//! Verification keys from an identity provider: a JWKS fetched from a URL (given, or found by
//! OpenID Connect discovery) or read from a file, kept current by a background thread.
//!
//! - Keys are chosen by the token's `kid`; every usable key of the set is valid at once.
//! - The set is fetched again on a schedule (`POAM_JWKS_REFRESH`) and when a token names an
//!   unknown `kid`, at most once per [`DEMAND_REFRESH_INTERVAL`] (a constant, 30 s), so a flood
//!   of bogus `kid`s costs the identity provider one request per 30 s at most.
//! - A failed fetch keeps the last good set: tokens keep verifying while the identity provider
//!   is unreachable.
//! - Fetching happens on the background thread only, never on an HTTP worker; a request with
//!   an unknown `kid` waits at most [`UNKNOWN_KID_WAIT`] for the refresh it asked for.
//! - The algorithm stays pinned by configuration: a JWK whose `kty`/`crv` does not fit it, or
//!   whose `alg` names another, or whose `use` is not `sig`, is not used.

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use std::collections::BTreeSet;
use std::io::Read as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

/// The scheduled refresh unless configured: 10 minutes.
pub const DEFAULT_REFRESH: Duration = Duration::from_secs(600);

/// The least time between two refreshes asked for by unknown `kid`s.
pub const DEMAND_REFRESH_INTERVAL: Duration = Duration::from_secs(30);

/// How long a request with an unknown `kid` waits for the refresh it asked for.
pub const UNKNOWN_KID_WAIT: Duration = Duration::from_secs(2);

/// The longest one fetch may take, connection included; and the connection alone.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// The largest discovery document or JWKS read: 1 MiB.
const MAX_DOCUMENT_BYTES: u64 = 1 << 20;

/// Where the key set comes from.
#[derive(Debug, Clone)]
pub enum JwksSource {
    Url(String),
    File(PathBuf),
}

impl std::fmt::Display for JwksSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JwksSource::Url(u) => f.write_str(u),
            JwksSource::File(p) => write!(f, "{}", p.display()),
        }
    }
}

fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout_connect(CONNECT_TIMEOUT)
        .timeout(FETCH_TIMEOUT)
        .redirects(3)
        .user_agent(concat!("poam/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// Refuses a URL that is not https, except http on a loopback host (a local test IdP).
pub fn check_url(url: &str, what: &str) -> Result<(), String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("{what} `{url}`: {e}"))?;
    let loopback = match parsed.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(a)) => a.is_loopback(),
        Some(url::Host::Ipv6(a)) => a.is_loopback(),
        None => false,
    };
    match parsed.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        _ => Err(format!(
            "{what} `{url}` must be an https URL (http only on a loopback host)"
        )),
    }
}

fn get_json(agent: &ureq::Agent, url: &str) -> Result<serde_json::Value, String> {
    let response = agent
        .get(url)
        .set("Accept", "application/json")
        .call()
        .map_err(|e| match e {
            ureq::Error::Status(code, _) => format!("{url} answered {code}"),
            ureq::Error::Transport(t) => format!("{url}: {t}"),
        })?;
    let mut body = Vec::new();
    response
        .into_reader()
        .take(MAX_DOCUMENT_BYTES + 1)
        .read_to_end(&mut body)
        .map_err(|e| format!("{url}: {e}"))?;
    if body.len() as u64 > MAX_DOCUMENT_BYTES {
        return Err(format!(
            "{url}: the document exceeds {MAX_DOCUMENT_BYTES} bytes"
        ));
    }
    serde_json::from_slice(&body).map_err(|e| format!("{url}: not JSON: {e}"))
}

/// OpenID Connect discovery: the `jwks_uri` of `issuer`'s
/// `/.well-known/openid-configuration`, whose `issuer` must be exactly `issuer`.
pub fn discover(issuer: &str) -> Result<String, String> {
    check_url(issuer, "POAM_OIDC_ISSUER")?;
    let url = format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    );
    let doc = get_json(&agent(), &url).map_err(|e| format!("OpenID Connect discovery: {e}"))?;
    let stated = doc["issuer"].as_str().unwrap_or_default();
    if stated != issuer {
        return Err(format!(
            "OpenID Connect discovery: the document at {url} names the issuer `{stated}`, not \
             POAM_OIDC_ISSUER `{issuer}`; refusing its keys (check POAM_OIDC_ISSUER, exactly as \
             the identity provider spells it, trailing slash included)"
        ));
    }
    let jwks_uri = doc["jwks_uri"]
        .as_str()
        .ok_or_else(|| format!("OpenID Connect discovery: the document at {url} has no jwks_uri"))?
        .to_owned();
    check_url(&jwks_uri, "the discovered jwks_uri")?;
    Ok(jwks_uri)
}

/// The usable keys of one fetched set.
pub struct KeySet {
    /// Increases whenever the usable keys change.
    pub generation: u64,
    keys: Vec<(Option<String>, DecodingKey)>,
    /// The usable JWKs as JSON, to tell whether a fetch changed anything.
    fingerprint: BTreeSet<String>,
}

/// Why no key verifies a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyMiss {
    /// The token names a `kid` the set does not hold.
    Unknown(String),
    /// The token names no `kid` and the set holds several keys.
    NoKid,
}

impl KeySet {
    /// The key for a token's `kid`; without one, the only key of the set.
    pub fn find(&self, kid: Option<&str>) -> Result<&DecodingKey, KeyMiss> {
        match kid {
            Some(kid) => self
                .keys
                .iter()
                .find(|(k, _)| k.as_deref() == Some(kid))
                .map(|(_, key)| key)
                .ok_or_else(|| KeyMiss::Unknown(kid.to_owned())),
            None => match self.keys.as_slice() {
                [(_, key)] => Ok(key),
                _ => Err(KeyMiss::NoKid),
            },
        }
    }

    /// The `kid`s of the set (`-` for a key without one).
    pub fn kids(&self) -> Vec<String> {
        self.keys
            .iter()
            .map(|(k, _)| k.clone().unwrap_or_else(|| "-".into()))
            .collect()
    }
}

/// Whether a JWK may verify tokens of the pinned `algorithm`.
fn fits(jwk: &Jwk, algorithm: Algorithm) -> bool {
    if !matches!(
        jwk.common.public_key_use,
        None | Some(PublicKeyUse::Signature)
    ) {
        return false;
    }
    let named = match algorithm {
        Algorithm::RS256 => KeyAlgorithm::RS256,
        Algorithm::ES256 => KeyAlgorithm::ES256,
        Algorithm::EdDSA => KeyAlgorithm::EdDSA,
        _ => return false,
    };
    if jwk.common.key_algorithm.is_some_and(|a| a != named) {
        return false;
    }
    match (&jwk.algorithm, algorithm) {
        (AlgorithmParameters::RSA(_), Algorithm::RS256) => true,
        (AlgorithmParameters::EllipticCurve(p), Algorithm::ES256) => p.curve == EllipticCurve::P256,
        (AlgorithmParameters::OctetKeyPair(p), Algorithm::EdDSA) => {
            p.curve == EllipticCurve::Ed25519
        }
        _ => false,
    }
}

/// The usable keys of a JWKS document. Entries that are not JWKs, do not fit the algorithm
/// or hold a malformed key are skipped; a set with no usable key is an error.
pub fn parse_set(doc: &serde_json::Value, algorithm: Algorithm) -> Result<KeySet, String> {
    let entries = doc["keys"]
        .as_array()
        .ok_or("not a JWKS: no `keys` array")?;
    let mut keys = Vec::new();
    let mut fingerprint = BTreeSet::new();
    for entry in entries {
        let Ok(jwk) = serde_json::from_value::<Jwk>(entry.clone()) else {
            continue;
        };
        if !fits(&jwk, algorithm) {
            continue;
        }
        let Ok(key) = DecodingKey::from_jwk(&jwk) else {
            continue;
        };
        fingerprint.insert(serde_json::to_string(&jwk).unwrap_or_default());
        keys.push((jwk.common.key_id.clone(), key));
    }
    if keys.is_empty() {
        return Err(format!(
            "the key set holds no usable {algorithm:?} signing key ({} entries; a key's kty and \
             crv must fit the pinned POAM_JWT_ALGORITHM, its alg must be absent or name it, \
             its use must be absent or sig)",
            entries.len()
        ));
    }
    Ok(KeySet {
        generation: 0,
        keys,
        fingerprint,
    })
}

fn fetch(source: &JwksSource, agent: &ureq::Agent, algorithm: Algorithm) -> Result<KeySet, String> {
    let doc = match source {
        JwksSource::Url(url) => get_json(agent, url)?,
        JwksSource::File(path) => {
            let text =
                std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            serde_json::from_slice(&text)
                .map_err(|e| format!("{}: not JSON: {e}", path.display()))?
        }
    };
    parse_set(&doc, algorithm).map_err(|e| format!("{source}: {e}"))
}

struct Control {
    /// A refresh was asked for by an unknown `kid` and not started yet.
    demanded: bool,
    /// The background thread is fetching a demanded refresh.
    in_flight: bool,
    /// When the last demanded refresh was granted.
    last_demand: Option<Instant>,
    stop: bool,
}

struct Shared {
    source: JwksSource,
    algorithm: Algorithm,
    agent: ureq::Agent,
    current: RwLock<Arc<KeySet>>,
    generation: AtomicU64,
    control: Mutex<Control>,
    wake: Condvar,
    /// Counts finished fetches (successful or not), for requests waiting on one.
    done: tokio::sync::watch::Sender<u64>,
}

impl Shared {
    fn control(&self) -> MutexGuard<'_, Control> {
        self.control
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn snapshot(&self) -> Arc<KeySet> {
        self.current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// One fetch: a changed set replaces the current one; a failure keeps it.
    fn refresh(&self) {
        match fetch(&self.source, &self.agent, self.algorithm) {
            Ok(mut set) => {
                let current = self.snapshot();
                if set.fingerprint != current.fingerprint {
                    set.generation = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
                    tracing::info!(
                        source = %self.source,
                        kids = ?set.kids(),
                        "the identity provider's keys changed"
                    );
                    *self
                        .current
                        .write()
                        .unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(set);
                }
            }
            Err(e) => tracing::warn!(
                error = %e,
                "cannot refresh the identity provider's keys; the last good set stays in use"
            ),
        }
        self.done.send_modify(|n| *n = n.wrapping_add(1));
    }
}

/// The identity provider's keys, refreshed by a background thread (stopped when dropped).
pub struct Jwks {
    shared: Arc<Shared>,
    background: bool,
}

impl Jwks {
    /// Fetches the set once (an error when that fails or holds no usable key); then, with
    /// `refresh`, a background thread fetches it again every `refresh` and on demand.
    pub fn load(
        source: JwksSource,
        algorithm: Algorithm,
        refresh: Option<Duration>,
    ) -> Result<Jwks, String> {
        let agent = agent();
        let mut set = fetch(&source, &agent, algorithm)?;
        set.generation = 1;
        tracing::info!(source = %source, kids = ?set.kids(), "identity provider keys loaded");
        let (done, _) = tokio::sync::watch::channel(0u64);
        let shared = Arc::new(Shared {
            source,
            algorithm,
            agent,
            current: RwLock::new(Arc::new(set)),
            generation: AtomicU64::new(1),
            control: Mutex::new(Control {
                demanded: false,
                in_flight: false,
                last_demand: None,
                stop: false,
            }),
            wake: Condvar::new(),
            done,
        });
        if let Some(every) = refresh {
            let thread_shared = shared.clone();
            std::thread::Builder::new()
                .name("poam-jwks".into())
                .spawn(move || run(&thread_shared, every))
                .map_err(|e| format!("cannot start the key refresh thread: {e}"))?;
        }
        Ok(Jwks {
            shared,
            background: refresh.is_some(),
        })
    }

    /// The current set.
    pub fn snapshot(&self) -> Arc<KeySet> {
        self.shared.snapshot()
    }

    /// Asks the background thread for a refresh because a token named an unknown `kid`: a
    /// receiver that changes when a fetch finishes, or `None` when the last such refresh was
    /// less than [`DEMAND_REFRESH_INTERVAL`] ago (or nothing refreshes in this process).
    pub fn demand_refresh(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        if !self.background {
            return None;
        }
        let mut c = self.shared.control();
        if c.stop {
            return None;
        }
        let rx = self.shared.done.subscribe();
        if c.demanded || c.in_flight {
            return Some(rx);
        }
        let now = Instant::now();
        if c.last_demand
            .is_some_and(|t| now.duration_since(t) < DEMAND_REFRESH_INTERVAL)
        {
            return None;
        }
        c.last_demand = Some(now);
        c.demanded = true;
        drop(c);
        self.shared.wake.notify_all();
        Some(rx)
    }
}

impl Drop for Jwks {
    fn drop(&mut self) {
        self.shared.control().stop = true;
        self.shared.wake.notify_all();
    }
}

/// The background thread: a fetch every `every`, and one whenever demanded.
fn run(shared: &Shared, every: Duration) {
    let mut next = Instant::now() + every;
    loop {
        let demanded = {
            let mut c = shared.control();
            loop {
                if c.stop {
                    return;
                }
                if c.demanded {
                    c.demanded = false;
                    c.in_flight = true;
                    break true;
                }
                let now = Instant::now();
                if now >= next {
                    break false;
                }
                c = shared
                    .wake
                    .wait_timeout(c, next - now)
                    .map(|(guard, _)| guard)
                    .unwrap_or_else(|poisoned| poisoned.into_inner().0);
            }
        };
        shared.refresh();
        if demanded {
            shared.control().in_flight = false;
        } else {
            next = Instant::now() + every;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn urls_must_be_https_except_on_loopback() {
        assert!(check_url("https://idp.example.org", "x").is_ok());
        assert!(check_url("http://127.0.0.1:9000/jwks.json", "x").is_ok());
        assert!(check_url("http://localhost/jwks.json", "x").is_ok());
        assert!(check_url("http://idp.example.org/jwks.json", "x").is_err());
        assert!(check_url("ftp://idp.example.org", "x").is_err());
    }

    #[test]
    fn keys_that_do_not_fit_the_pinned_algorithm_are_skipped() {
        // An Ed25519 public key (RFC 8037's example).
        let x = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";
        let doc = json!({"keys": [
            {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": "ok"},
            {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": "wrong-alg", "alg": "RS256"},
            {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": "enc", "use": "enc"},
            {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"},
            {"kty": "weird", "kid": "unknown"},
        ]});
        let set = parse_set(&doc, Algorithm::EdDSA).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(set.kids(), vec!["ok".to_owned()]);
        assert!(set.find(Some("ok")).is_ok());
        assert!(
            set.find(None).is_ok(),
            "the only key serves a token without kid"
        );
        assert_eq!(
            set.find(Some("hmac")).err(),
            Some(KeyMiss::Unknown("hmac".into()))
        );
        let err = parse_set(&doc, Algorithm::RS256).err().unwrap_or_default();
        assert!(err.contains("no usable RS256"), "{err}");
    }
}
