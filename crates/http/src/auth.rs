//! Bearer tokens: verification (the `Actor` extractor) and minting (`poam token`).
//!
//! The algorithm is pinned by configuration: HS256 with a shared secret, or RS256 / ES256 /
//! EdDSA with a public key for tokens an organisation's identity provider issues. `exp` is
//! required; `nbf` is checked when present; `iss` and `aud` when configured. `sub` is required:
//! 1 to 255 characters, not blank, no control characters. A token may live at most the
//! configured maximum (`POAM_TOKEN_MAX_TTL`, 90 days unless set): `exp - iat`, or `exp - now`
//! without `iat`.
//!
//! The verification key is one configured key, or an identity provider's key set chosen by
//! `kid` (see [`crate::jwks`]). Roles and systems come from the token's `roles` and `systems`
//! claims, or from a claims map (see [`crate::claims_map`]); a token a claims map gives no role
//! is refused with 403 `no_role_mapped`.
//!
//! With mutual TLS (`POAM_TLS_CLIENT_CA`) a request without an `Authorization` header may be
//! authenticated by the connection's verified client certificate instead ([`ClientCertificate`]):
//! its subject fields are claims (`cert.cn`, `cert.ou`…) that the claims map's `cert.*` rules map
//! to roles. A request with a bearer token is judged by the token alone.

use crate::claims_map::{ClaimsMap, MapError};
use crate::jwks::{Jwks, KeyMiss};
use crate::problem::ApiError;
use crate::state::AppState;
use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::HttpMessage as _;
use actix_web::{web, FromRequest, HttpRequest};
use futures_util::future::Either;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use poam_domain::{Permission, Role, SystemId, SystemScope};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::future::{ready, Future, Ready};
use std::pin::Pin;
use std::sync::{Arc, Mutex};

/// The longest `sub` accepted, in characters.
pub const MAX_SUB_CHARS: usize = 255;

/// The default longest lifetime of a token, in seconds: 90 days.
pub const DEFAULT_MAX_LIFETIME_SECS: i64 = 90 * 86_400;

/// Why a subject cannot be one: `sub` is 1 to [`MAX_SUB_CHARS`] characters, not blank, with
/// no control characters (it is recorded as the actor of every change and logged).
pub fn check_subject(sub: &str) -> Result<(), String> {
    if sub.trim().is_empty() {
        return Err("the token's `sub` (subject) is empty".into());
    }
    let chars = sub.chars().count();
    if chars > MAX_SUB_CHARS {
        return Err(format!(
            "the token's `sub` (subject) has {chars} characters; at most {MAX_SUB_CHARS} are accepted"
        ));
    }
    if sub.chars().any(char::is_control) {
        return Err("the token's `sub` (subject) contains control characters".into());
    }
    Ok(())
}

/// The claims this service reads and writes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default)]
    pub roles: Vec<String>,
    /// System ids, or `*` for every system.
    #[serde(default)]
    pub systems: Vec<String>,
    pub exp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// A string or an array of strings (RFC 7519); checked by the validation, not read here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<serde_json::Value>,
}

/// The algorithms a deployment may pin.
pub const ALGORITHMS: &[&str] = &["HS256", "RS256", "ES256", "EdDSA"];

pub fn parse_algorithm(name: &str) -> Result<Algorithm, String> {
    match name {
        "HS256" => Ok(Algorithm::HS256),
        "RS256" => Ok(Algorithm::RS256),
        "ES256" => Ok(Algorithm::ES256),
        "EdDSA" => Ok(Algorithm::EdDSA),
        other => Err(format!(
            "unsupported JWT algorithm `{other}`; use one of {}",
            ALGORITHMS.join(", ")
        )),
    }
}

/// Verifies bearer tokens.
pub struct Authenticator {
    keys: Keys,
    validation: Validation,
    /// The longest lifetime a token may claim, in seconds.
    max_lifetime: i64,
    /// Tokens verified before, with what they grant: a token is checked once, not on every
    /// request (an RS256 or ES256 signature costs tens of microseconds).
    verified: VerifiedTokens,
    /// How claims become roles and scopes (`POAM_CLAIMS_MAP`); without one, the token's own
    /// `roles` and `systems` claims.
    claims_map: Option<ClaimsMap>,
}

/// Where the verification key comes from.
enum Keys {
    /// One configured key (an HS256 secret or a PEM public key).
    Static(DecodingKey),
    /// An identity provider's key set, chosen by `kid`.
    Jwks(Jwks),
}

/// Tokens that passed [`Authenticator::verify`], each until its `exp`, under the key set that
/// verified it: when the key set changes (a rotation), every entry is forgotten, so a token of
/// a removed key does not keep verifying from here. Bounded: when full it is emptied and fills
/// again from the tokens in use. Nothing is cached for a token that failed.
///
/// Kept per thread ([`crate::telemetry::shard`]), each part behind its own lock on its own
/// cache lines: a request takes only its worker's lock, which no other core touches, where one
/// shared lock passed its line between the cores on every request. A token a worker has not
/// seen is verified once more by that worker (an HS256 signature is a few microseconds, an
/// identity provider's a few tens).
#[derive(Default)]
struct VerifiedTokens {
    parts: [VerifiedPart; crate::telemetry::SHARDS],
}

/// One thread's verified tokens: the key set generation of its entries, and the entries.
#[repr(align(128))]
#[derive(Default)]
struct VerifiedPart(std::sync::RwLock<(u64, Entries)>);

/// Verified tokens, each with its actor and `exp`. Hashed by foldhash (randomly seeded) rather
/// than SipHash: a token is a few hundred bytes hashed on every request, and only tokens whose
/// signature verified are ever keys.
type Entries = std::collections::HashMap<String, (Actor, i64), foldhash::fast::RandomState>;

/// How many verified tokens each thread remembers at most.
const VERIFIED_TOKENS: usize = 1024;

impl VerifiedTokens {
    fn part(&self) -> &std::sync::RwLock<(u64, Entries)> {
        &self.parts[crate::telemetry::shard()].0
    }

    fn get(&self, token: &str, now: i64, generation: u64) -> Option<Actor> {
        let map = self.part().read().ok()?;
        if map.0 != generation {
            return None;
        }
        let (actor, exp) = map.1.get(token)?;
        (now < *exp).then(|| actor.clone())
    }

    fn put(&self, token: &str, actor: &Actor, exp: i64, generation: u64) {
        if let Ok(mut map) = self.part().write() {
            if generation < map.0 {
                // Verified under a key set replaced since.
                return;
            }
            if generation > map.0 || map.1.len() >= VERIFIED_TOKENS {
                map.1.clear();
                map.0 = generation;
            }
            map.1.insert(token.to_owned(), (actor.clone(), exp));
        }
    }
}

/// What [`Authenticator::check`] found: a verdict, or an unknown `kid` whose key set refresh
/// is worth waiting for (the receiver changes when a fetch finishes).
pub enum Check {
    Done(Result<Actor, ApiError>),
    Wait(tokio::sync::watch::Receiver<u64>),
}

/// What a token maps to, for `poam auth explain`.
pub struct Explanation {
    /// The `kid` of the key that verified it (identity provider keys).
    pub kid: Option<String>,
    /// The claims the mapping rules read, with their values in the token.
    pub claims_read: Vec<(String, Option<serde_json::Value>)>,
    /// The matched rules, described; empty without a claims map.
    pub matched: Vec<String>,
    /// Whether a claims map decided (or the token's own `roles`/`systems` claims).
    pub mapped: bool,
    /// The caller, or why the token is refused after its signature verified.
    pub outcome: Result<Actor, ApiError>,
}

fn unauthorized(code: &'static str, detail: &str) -> ApiError {
    ApiError::Unauthorized {
        code,
        detail: detail.into(),
    }
}

impl Authenticator {
    pub fn new(
        algorithm: Algorithm,
        key: DecodingKey,
        issuer: Option<&str>,
        audience: Option<&str>,
    ) -> Self {
        Self::with_keys(algorithm, Keys::Static(key), issuer, audience)
    }

    /// Verifies with an identity provider's key set, chosen by `kid`; the algorithm stays
    /// `algorithm` whatever the token or the JWKs say.
    pub fn with_jwks(
        algorithm: Algorithm,
        jwks: Jwks,
        issuer: Option<&str>,
        audience: Option<&str>,
    ) -> Self {
        Self::with_keys(algorithm, Keys::Jwks(jwks), issuer, audience)
    }

    fn with_keys(
        algorithm: Algorithm,
        keys: Keys,
        issuer: Option<&str>,
        audience: Option<&str>,
    ) -> Self {
        let mut validation = Validation::new(algorithm);
        validation.leeway = 30;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "sub"]);
        match issuer {
            Some(iss) => {
                validation.set_issuer(&[iss]);
                validation.required_spec_claims.insert("iss".into());
            }
            None => validation.iss = None,
        }
        match audience {
            Some(aud) => {
                validation.set_audience(&[aud]);
                validation.required_spec_claims.insert("aud".into());
            }
            None => validation.validate_aud = false,
        }
        Authenticator {
            keys,
            validation,
            max_lifetime: DEFAULT_MAX_LIFETIME_SECS,
            verified: VerifiedTokens::default(),
            claims_map: None,
        }
    }

    /// Refuses tokens that live longer than `secs` (`exp - iat`, or `exp - now` without `iat`).
    pub fn with_max_lifetime(mut self, secs: i64) -> Self {
        self.max_lifetime = secs;
        self
    }

    /// Maps claims to roles and scopes by `map` instead of the `roles` and `systems` claims.
    pub fn with_claims_map(mut self, map: ClaimsMap) -> Self {
        if map.subject != "sub" {
            // The map's subject claim is required instead (checked when mapping).
            self.validation.required_spec_claims.remove("sub");
        }
        self.claims_map = Some(map);
        self
    }

    /// The longest lifetime a token may claim, in seconds.
    pub fn max_lifetime(&self) -> i64 {
        self.max_lifetime
    }

    /// Verifies `token` now: an unknown `kid` asks for a key set refresh (rate-limited) but
    /// is refused without waiting for it.
    pub fn verify(&self, token: &str) -> Result<Actor, ApiError> {
        match self.check(token, false) {
            Check::Done(result) => result,
            Check::Wait(_) => Err(unknown_kid()),
        }
    }

    /// Verifies `token`; with `may_wait`, a token naming an unknown `kid` for which a key set
    /// refresh was started (at most one per 30 s) answers [`Check::Wait`]: call
    /// [`Authenticator::verify`] again once the refresh finished (or a bounded wait passed).
    pub fn check(&self, token: &str, may_wait: bool) -> Check {
        let now = chrono::Utc::now().timestamp();
        let generation = match &self.keys {
            Keys::Static(_) => 0,
            Keys::Jwks(jwks) => jwks.snapshot().generation,
        };
        if let Some(actor) = self.verified.get(token, now, generation) {
            return Check::Done(Ok(actor));
        }
        let verified = self
            .verify_signed(token, now)
            .and_then(|(claims, exp, generation, _)| {
                self.map_claims(&claims)
                    .map(|(actor, _)| (actor, exp, generation))
            });
        match verified {
            Ok((actor, exp, generation)) => {
                self.verified.put(token, &actor, exp, generation);
                Check::Done(Ok(actor))
            }
            Err(Refusal::UnknownKid) => {
                if let (true, Keys::Jwks(jwks)) = (may_wait, &self.keys) {
                    if let Some(rx) = jwks.demand_refresh() {
                        return Check::Wait(rx);
                    }
                } else if let Keys::Jwks(jwks) = &self.keys {
                    // Not waiting: the next request with this kid may find it.
                    let _ = jwks.demand_refresh();
                }
                Check::Done(Err(unknown_kid()))
            }
            Err(Refusal::Api(e)) => Check::Done(Err(e)),
        }
    }

    /// What `token` maps to, or why it is refused (for operators; nothing is cached).
    pub fn explain(&self, token: &str) -> Result<Explanation, ApiError> {
        let now = chrono::Utc::now().timestamp();
        let (claims, _, _, kid) = self.verify_signed(token, now).map_err(|e| match e {
            Refusal::UnknownKid => unknown_kid(),
            Refusal::Api(e) => e,
        })?;
        let claims_read = self
            .claims_map
            .as_ref()
            .map(|m| m.claims_read(&claims))
            .unwrap_or_default();
        let (outcome, matched) = match self.map_claims(&claims) {
            Ok((actor, matched)) => (Ok(actor), matched),
            Err(Refusal::Api(e)) => (Err(e), Vec::new()),
            Err(Refusal::UnknownKid) => (Err(unknown_kid()), Vec::new()),
        };
        let matched = match &self.claims_map {
            Some(map) => matched
                .iter()
                .filter_map(|i| map.rules.get(*i).map(|r| r.describe()))
                .collect(),
            None => Vec::new(),
        };
        Ok(Explanation {
            kid,
            claims_read,
            matched,
            mapped: self.claims_map.is_some(),
            outcome,
        })
    }

    /// The full check of signature and claims, and the lifetime: the claims, the token's
    /// `exp`, the key set generation that verified it, and the key's `kid`.
    fn verify_signed(
        &self,
        token: &str,
        now: i64,
    ) -> Result<(serde_json::Value, i64, u64, Option<String>), Refusal> {
        let malformed = || unauthorized("invalid_token", "the token is malformed");
        let (data, generation, kid) = match &self.keys {
            Keys::Static(key) => (
                jsonwebtoken::decode::<serde_json::Value>(token, key, &self.validation),
                0,
                None,
            ),
            Keys::Jwks(jwks) => {
                let header = jsonwebtoken::decode_header(token).map_err(|_| malformed())?;
                // The algorithm is the configured one, whatever the token's header says; a
                // token of another algorithm never asks for a key set refresh.
                if !self.validation.algorithms.contains(&header.alg) {
                    return Err(Refusal::Api(unauthorized(
                        "invalid_token",
                        "the token's algorithm is not the one this service accepts",
                    )));
                }
                let set = jwks.snapshot();
                let key = set.find(header.kid.as_deref()).map_err(|miss| match miss {
                    KeyMiss::Unknown(_) => Refusal::UnknownKid,
                    KeyMiss::NoKid => Refusal::Api(unauthorized(
                        "invalid_token",
                        "the token names no key (`kid`) and the identity provider has several",
                    )),
                })?;
                (
                    jsonwebtoken::decode::<serde_json::Value>(token, key, &self.validation),
                    set.generation,
                    header.kid,
                )
            }
        };
        let data = data.map_err(|e| {
            let (code, detail) = match e.kind() {
                ErrorKind::ExpiredSignature => ("token_expired", "the token has expired"),
                ErrorKind::ImmatureSignature => {
                    ("token_not_yet_valid", "the token is not valid yet (nbf)")
                }
                ErrorKind::InvalidSignature => {
                    ("invalid_token", "the token's signature does not verify")
                }
                ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm => (
                    "invalid_token",
                    "the token's algorithm is not the one this service accepts",
                ),
                ErrorKind::InvalidIssuer => ("invalid_token", "the token's issuer is not accepted"),
                ErrorKind::InvalidAudience => {
                    ("invalid_token", "the token's audience is not this service")
                }
                ErrorKind::MissingRequiredClaim(_) => (
                    "invalid_token",
                    "the token lacks a required claim (exp, sub, and iss/aud when configured)",
                ),
                _ => ("invalid_token", "the token is malformed"),
            };
            Refusal::Api(unauthorized(code, detail))
        })?;
        let claims = data.claims;
        if !claims.is_object() {
            return Err(Refusal::Api(malformed()));
        }
        let number = |name: &str| {
            let v = &claims[name];
            v.as_i64().or_else(|| v.as_f64().map(|f| f as i64))
        };
        let exp = number("exp").ok_or_else(|| Refusal::Api(malformed()))?;
        let iat = if claims.get("iat").is_some() {
            Some(number("iat").ok_or_else(|| Refusal::Api(malformed()))?)
        } else {
            None
        };
        // Lifetime: from `iat` (or now, without one) to `exp`. An `iat` in the future counts
        // from now (within the clock leeway): a future `iat` must not stretch a token's life.
        let leeway = i64::try_from(self.validation.leeway).unwrap_or(0);
        let start = iat.map_or(now, |iat| iat.min(now.saturating_add(leeway)));
        let lifetime = exp.saturating_sub(start);
        if lifetime > self.max_lifetime {
            return Err(Refusal::Api(ApiError::Unauthorized {
                code: "invalid_token",
                detail: format!(
                    "the token's lifetime ({lifetime} seconds from {} to exp) exceeds the maximum \
                     this service accepts ({} seconds)",
                    if iat.is_some() { "iat" } else { "now" },
                    self.max_lifetime
                ),
            }));
        }
        Ok((claims, exp, generation, kid))
    }

    /// The caller a verified client certificate names, by the claims map's `cert.*` rules:
    /// without a claims map, or when no rule matches, no role (403 `no_role_mapped`).
    pub fn certificate(&self, cert: &ClientCertificate) -> Result<Actor, ApiError> {
        let no_role = |detail: &'static str| {
            ApiError::Refused(poam_domain::rules::Violation::new(
                "no_role_mapped",
                "",
                detail,
            ))
        };
        let Some(map) = &self.claims_map else {
            return Err(no_role(
                "the client certificate maps to no role: certificates map to roles only through \
                 the claims map (POAM_CLAIMS_MAP, rules on cert.* claims), and none is \
                 configured; send a bearer token",
            ));
        };
        match map.apply_certificate(&cert.claims) {
            Ok(m) => {
                check_subject(&m.sub).map_err(|e| ApiError::Unauthorized {
                    code: "invalid_certificate",
                    detail: e.replace(
                        "the token's `sub` (subject)",
                        &format!("the client certificate's `{}`", map.certificate_subject),
                    ),
                })?;
                Ok(Actor {
                    sub: m.sub,
                    name: m.name,
                    roles: m.roles,
                    scope: m.scope,
                    granted: None,
                })
            }
            Err(MapError::NoSubject(claim)) => Err(ApiError::Unauthorized {
                code: "invalid_certificate",
                detail: format!(
                    "the client certificate lacks `{claim}`, which the claims map names as a \
                     certificate's subject"
                ),
            }),
            Err(MapError::NoRole) => Err(no_role(
                "the client certificate maps to no role: no cert.* rule of this service's \
                 claims map (POAM_CLAIMS_MAP) matches its subject; ask an administrator which \
                 organisational unit grants access",
            )),
        }
    }

    /// The caller `claims` name: by the claims map, or by the `roles` and `systems` claims.
    /// With the matched rules' indexes.
    fn map_claims(&self, claims: &serde_json::Value) -> Result<(Actor, Vec<usize>), Refusal> {
        let invalid = |detail: String| {
            Refusal::Api(ApiError::Unauthorized {
                code: "invalid_token",
                detail,
            })
        };
        let Some(map) = &self.claims_map else {
            let c: Claims = serde_json::from_value(claims.clone())
                .map_err(|_| invalid("the token is malformed".into()))?;
            check_subject(&c.sub).map_err(invalid)?;
            return Ok((Actor::from_claims(c), Vec::new()));
        };
        match map.apply(claims) {
            Ok(m) => {
                check_subject(&m.sub).map_err(|e| {
                    invalid(e.replace("`sub` (subject)", &format!("`{}` (subject)", map.subject)))
                })?;
                Ok((
                    Actor {
                        sub: m.sub,
                        name: m.name,
                        roles: m.roles,
                        scope: m.scope,
                        granted: None,
                    },
                    m.matched,
                ))
            }
            Err(MapError::NoSubject(claim)) => Err(invalid(format!(
                "the token lacks the subject claim `{claim}` (a string) that the claims map names"
            ))),
            Err(MapError::NoRole) => Err(Refusal::Api(ApiError::Refused(
                poam_domain::rules::Violation::new(
                    "no_role_mapped",
                    "",
                    "the token's claims map to no role: no rule of this service's claims map \
                     (POAM_CLAIMS_MAP) matches them; ask an administrator which group grants \
                     access",
                ),
            ))),
        }
    }
}

/// Why a token did not verify: a problem to answer, or an unknown `kid`.
enum Refusal {
    UnknownKid,
    Api(ApiError),
}

impl From<ApiError> for Refusal {
    fn from(e: ApiError) -> Self {
        Refusal::Api(e)
    }
}

fn unknown_kid() -> ApiError {
    unauthorized(
        "invalid_token",
        "the token's key (kid) is not among the identity provider's keys",
    )
}

/// Mints tokens with the configured signing key.
pub struct TokenIssuer {
    algorithm: Algorithm,
    key: EncodingKey,
    issuer: Option<String>,
    audience: Option<String>,
}

impl TokenIssuer {
    pub fn new(
        algorithm: Algorithm,
        key: EncodingKey,
        issuer: Option<String>,
        audience: Option<String>,
    ) -> Self {
        TokenIssuer {
            algorithm,
            key,
            issuer,
            audience,
        }
    }

    /// A token for `sub` with `roles` over `systems` (empty: every system), valid `ttl_secs`.
    pub fn mint(
        &self,
        sub: &str,
        name: Option<&str>,
        roles: &[Role],
        systems: &[SystemId],
        ttl_secs: i64,
    ) -> Result<String, String> {
        check_subject(sub).map_err(|e| e.replace("the token's `sub` (subject)", "the subject"))?;
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            sub: sub.to_owned(),
            name: name.map(str::to_owned),
            roles: roles.iter().map(|r| r.as_str().to_owned()).collect(),
            systems: if systems.is_empty() {
                vec!["*".into()]
            } else {
                systems.iter().map(|s| s.to_string()).collect()
            },
            exp: now + ttl_secs,
            iat: Some(now),
            nbf: None,
            iss: self.issuer.clone(),
            aud: self.audience.clone().map(serde_json::Value::String),
        };
        jsonwebtoken::encode(&Header::new(self.algorithm), &claims, &self.key)
            .map_err(|e| e.to_string())
    }
}

/// The permissions a request's handler asked for and was granted, noted by [`Actor::can`]
/// and [`Actor::require`] when the idempotency middleware put one in the request's extensions:
/// what a replay of its response must find in the replaying token again.
#[derive(Debug, Clone, Default)]
pub struct Granted(Arc<Mutex<Vec<Permission>>>);

impl Granted {
    fn note(&self, p: Permission) {
        let mut noted = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if !noted.contains(&p) {
            noted.push(p);
        }
    }

    /// The permissions noted so far, in the order first asked.
    pub fn permissions(&self) -> Vec<Permission> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }
}

/// The authenticated caller.
#[derive(Debug, Clone)]
pub struct Actor {
    pub sub: String,
    pub name: Option<String>,
    pub roles: BTreeSet<Role>,
    pub scope: SystemScope,
    /// Where granted permissions are noted (see [`Granted`]), when the request has one.
    granted: Option<Granted>,
}

impl Actor {
    fn from_claims(c: Claims) -> Actor {
        // Unknown roles and malformed system ids grant nothing.
        let roles = c.roles.iter().filter_map(|r| r.parse().ok()).collect();
        let scope = if c.systems.iter().any(|s| s == "*") {
            SystemScope::All
        } else {
            SystemScope::Only(c.systems.iter().filter_map(|s| s.parse().ok()).collect())
        };
        Actor {
            sub: c.sub,
            name: c.name,
            roles,
            scope,
            granted: None,
        }
    }

    /// Whether a role grants `p`; a granted permission is noted for idempotent replays.
    pub fn can(&self, p: Permission) -> bool {
        let can = self.roles.iter().any(|r| r.grants(p));
        if can {
            if let Some(granted) = &self.granted {
                granted.note(p);
            }
        }
        can
    }

    /// Refuses with 403 unless a role grants `p`.
    pub fn require(&self, p: Permission) -> Result<(), ApiError> {
        if self.can(p) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!(
                "your roles ({}) do not allow this",
                if self.roles.is_empty() {
                    "none".to_owned()
                } else {
                    self.roles
                        .iter()
                        .map(|r| r.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            )))
        }
    }
}

fn bearer(req: &HttpRequest) -> Result<&str, ApiError> {
    let missing = || ApiError::Unauthorized {
        code: "missing_token",
        detail: "send Authorization: Bearer <token>".into(),
    };
    let value = req
        .headers()
        .get(header::AUTHORIZATION)
        .ok_or_else(missing)?;
    // What `HeaderValue::to_str` accepts (visible ASCII and tab), checked without its early
    // exit so the compiler checks 16 bytes at a time: this runs on every request, over a token
    // of several hundred bytes.
    let bytes = value.as_bytes();
    let visible = bytes.iter().fold(true, |ok, &b| {
        ok & ((0x20..0x7f).contains(&b) | (b == b'\t'))
    });
    let text = visible
        .then(|| std::str::from_utf8(bytes).ok())
        .flatten()
        .ok_or_else(missing)?;
    let (scheme, token) = text.split_once(' ').ok_or_else(missing)?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(missing());
    }
    Ok(token.trim())
}

/// The client certificate a TLS connection presented and the configured CA verified (mutual
/// TLS), as the claims the claims map reads: `{"cert": {"cn": …, "ou": …, …}}`. The server puts
/// it in the connection's data (`HttpRequest::conn_data`) when the handshake completes.
#[derive(Debug, Clone)]
pub struct ClientCertificate {
    pub claims: serde_json::Value,
}

/// The authenticated subject of a request, left in its extensions for the access log.
#[derive(Clone)]
pub struct Subject(pub String);

impl FromRequest for Actor {
    type Error = ApiError;
    type Future = Either<
        Ready<Result<Actor, ApiError>>,
        Pin<Box<dyn Future<Output = Result<Actor, ApiError>>>>,
    >;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        // Borrowed, not cloned: an `Arc`'s count is a line every worker writes.
        let Some(state) = req.app_data::<web::Data<AppState>>() else {
            return Either::Left(ready(Err(ApiError::Internal)));
        };
        // An address that spent its failed-authentication budget is refused before its
        // token is even looked at; each failure spends from that budget.
        let ip = req.peer_addr().map(|a| a.ip());
        if let Err(e) = state.protection.check_auth_allowed(ip) {
            return Either::Left(ready(Err(e)));
        }
        let token = match bearer(req) {
            Ok(t) => t,
            Err(e) => {
                // No Authorization header at all: the connection's verified client certificate
                // (mutual TLS), if it has one, speaks for the caller.
                if !req.headers().contains_key(header::AUTHORIZATION) {
                    if let Some(cert) = req.conn_data::<ClientCertificate>() {
                        let result = state.auth.certificate(cert);
                        return Either::Left(ready(finish(req, state, ip, result)));
                    }
                }
                return Either::Left(ready(finish(req, state, ip, Err(e))));
            }
        };
        match state.auth.check(token, true) {
            Check::Done(result) => Either::Left(ready(finish(req, state, ip, result))),
            // An unknown `kid`: the key set is being fetched again on its own thread; this
            // request waits for it, briefly, without holding the worker.
            Check::Wait(mut fetched) => {
                let state = state.clone();
                let req = req.clone();
                let token = token.to_owned();
                Either::Right(Box::pin(async move {
                    let _ = tokio::time::timeout(crate::jwks::UNKNOWN_KID_WAIT, fetched.changed())
                        .await;
                    let result = state.auth.verify(&token);
                    finish(&req, &state, ip, result)
                }))
            }
        }
    }
}

/// The rest of the extraction once the token is judged: a 401 spends from the address's
/// failed-authentication budget; an actor is noted for the access log and its standing
/// checked.
fn finish(
    req: &HttpRequest,
    state: &AppState,
    ip: Option<std::net::IpAddr>,
    result: Result<Actor, ApiError>,
) -> Result<Actor, ApiError> {
    let protection = &state.protection;
    let mut actor = result.map_err(|failure| match failure {
        ApiError::Unauthorized { .. } => protection.auth_failed(ip, failure),
        // An authentic token whose claims map to no role: not a guess at a credential.
        other => other,
    })?;
    // For the access log: who asked (never the token).
    req.extensions_mut().insert(Subject(actor.sub.clone()));
    let standing = protection.check_token(&actor.sub)?;
    if let Some(s) = standing {
        req.extensions_mut()
            .insert(crate::protection::TokenStanding(s));
    }
    actor.granted = req.extensions().get::<Granted>().cloned();
    Ok(actor)
}

impl Actor {
    /// Refuses with 403 unless a role grants one of `any`.
    pub fn require_any(&self, any: &[Permission]) -> Result<(), ApiError> {
        match any.iter().find(|p| self.can(**p)) {
            Some(_) => Ok(()),
            None => self.require(any.first().copied().unwrap_or(Permission::ManageSystems)),
        }
    }

    /// The caller as the domain's change rules see it: the token subject and what its roles
    /// allow (never what a request body claims). Both permissions it reads are noted for an
    /// idempotent replay, on the safe side: the rules may have used either.
    pub fn caller(&self) -> poam_domain::change::Caller {
        poam_domain::change::Caller {
            sub: self.sub.clone(),
            can_decide: self.can(Permission::Decide),
            can_write: self.can(Permission::WriteItems),
            is_admin: self.roles.contains(&Role::Admin),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_authorization(value: &[u8]) -> Result<String, &'static str> {
        let sent = header::HeaderValue::from_bytes(value).map_err(|_| "not a header value")?;
        let req = actix_web::test::TestRequest::default()
            .insert_header((header::AUTHORIZATION, sent))
            .to_http_request();
        bearer(&req).map(str::to_owned).map_err(|e| match e {
            ApiError::Unauthorized { code, .. } => code,
            _ => "another error",
        })
    }

    /// The header is read as `HeaderValue::to_str` reads it: visible ASCII (and tab) only,
    /// whatever the position of the byte that is not.
    #[test]
    fn a_bearer_token_is_visible_ascii() {
        assert_eq!(with_authorization(b"Bearer abc.def"), Ok("abc.def".into()));
        assert_eq!(with_authorization(b"bearer   abc "), Ok("abc".into()));
        assert_eq!(with_authorization(b"Bearer a\tb"), Ok("a\tb".into()));
        let long = [b"Bearer ".as_slice(), &[b'x'; 700]].concat();
        assert_eq!(with_authorization(&long), Ok("x".repeat(700)));
        for at in [7, 8, 100, 706] {
            for bad in [0x80u8, 0xe9, 0xff] {
                let mut v = long.clone();
                v[at] = bad;
                assert_eq!(
                    with_authorization(&v),
                    Err("missing_token"),
                    "{bad:#x} at {at}"
                );
            }
        }
        assert_eq!(with_authorization(b"Basic YTpi"), Err("missing_token"));
        assert_eq!(with_authorization(b"Bearer"), Err("missing_token"));
        assert_eq!(with_authorization(b"Bearer    "), Err("missing_token"));
    }
}
