//! Bearer tokens: verification (the `Actor` extractor) and minting (`poam token`).
//!
//! The algorithm is pinned by configuration: HS256 with a shared secret, or RS256 / ES256 /
//! EdDSA with a public key for tokens an organisation's identity provider issues. `exp` is
//! required; `nbf` is checked when present; `iss` and `aud` when configured. `sub` is required:
//! 1 to 255 characters, not blank, no control characters. A token may live at most the
//! configured maximum (`POAM_TOKEN_MAX_TTL`, 90 days unless set): `exp - iat`, or `exp - now`
//! without `iat`.

use crate::problem::ApiError;
use crate::state::AppState;
use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::HttpMessage as _;
use actix_web::{web, FromRequest, HttpRequest};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use poam_domain::{Permission, Role, SystemId, SystemScope};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::future::{ready, Ready};
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
    key: DecodingKey,
    validation: Validation,
    /// The longest lifetime a token may claim, in seconds.
    max_lifetime: i64,
    /// Tokens verified before, with what they grant: a token is checked once, not on every
    /// request (an RS256 or ES256 signature costs tens of microseconds).
    verified: VerifiedTokens,
}

/// Tokens that passed [`Authenticator::verify`], each until its `exp`. Bounded: when full it is
/// emptied and fills again from the tokens in use. Nothing is cached for a token that failed.
#[derive(Default)]
struct VerifiedTokens {
    map: std::sync::RwLock<std::collections::HashMap<String, (Actor, i64)>>,
}

/// How many verified tokens are remembered at most.
const VERIFIED_TOKENS: usize = 4096;

impl VerifiedTokens {
    fn get(&self, token: &str, now: i64) -> Option<Actor> {
        let map = self.map.read().ok()?;
        let (actor, exp) = map.get(token)?;
        (now < *exp).then(|| actor.clone())
    }

    fn put(&self, token: &str, actor: &Actor, exp: i64) {
        if let Ok(mut map) = self.map.write() {
            if map.len() >= VERIFIED_TOKENS {
                map.clear();
            }
            map.insert(token.to_owned(), (actor.clone(), exp));
        }
    }
}

impl Authenticator {
    pub fn new(
        algorithm: Algorithm,
        key: DecodingKey,
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
            key,
            validation,
            max_lifetime: DEFAULT_MAX_LIFETIME_SECS,
            verified: VerifiedTokens::default(),
        }
    }

    /// Refuses tokens that live longer than `secs` (`exp - iat`, or `exp - now` without `iat`).
    pub fn with_max_lifetime(mut self, secs: i64) -> Self {
        self.max_lifetime = secs;
        self
    }

    /// The longest lifetime a token may claim, in seconds.
    pub fn max_lifetime(&self) -> i64 {
        self.max_lifetime
    }

    pub fn verify(&self, token: &str) -> Result<Actor, ApiError> {
        let now = chrono::Utc::now().timestamp();
        if let Some(actor) = self.verified.get(token, now) {
            return Ok(actor);
        }
        let (actor, exp) = self.verify_signed(token, now)?;
        self.verified.put(token, &actor, exp);
        Ok(actor)
    }

    /// The full check: signature, claims, lifetime. The actor and the token's `exp`.
    fn verify_signed(&self, token: &str, now: i64) -> Result<(Actor, i64), ApiError> {
        let data =
            jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation).map_err(|e| {
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
                    ErrorKind::InvalidIssuer => {
                        ("invalid_token", "the token's issuer is not accepted")
                    }
                    ErrorKind::InvalidAudience => {
                        ("invalid_token", "the token's audience is not this service")
                    }
                    ErrorKind::MissingRequiredClaim(_) => (
                        "invalid_token",
                        "the token lacks a required claim (exp, sub, and iss/aud when configured)",
                    ),
                    _ => ("invalid_token", "the token is malformed"),
                };
                ApiError::Unauthorized {
                    code,
                    detail: detail.into(),
                }
            })?;
        let invalid = |detail: String| ApiError::Unauthorized {
            code: "invalid_token",
            detail,
        };
        check_subject(&data.claims.sub).map_err(invalid)?;
        // Lifetime: from `iat` (or now, without one) to `exp`. An `iat` in the future counts
        // from now (within the clock leeway): a future `iat` must not stretch a token's life.
        let leeway = i64::try_from(self.validation.leeway).unwrap_or(0);
        let start = data
            .claims
            .iat
            .map_or(now, |iat| iat.min(now.saturating_add(leeway)));
        let lifetime = data.claims.exp.saturating_sub(start);
        if lifetime > self.max_lifetime {
            return Err(invalid(format!(
                "the token's lifetime ({lifetime} seconds from {} to exp) exceeds the maximum \
                 this service accepts ({} seconds)",
                if data.claims.iat.is_some() {
                    "iat"
                } else {
                    "now"
                },
                self.max_lifetime
            )));
        }
        let exp = data.claims.exp;
        Ok((Actor::from_claims(data.claims), exp))
    }
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
    let text = value.to_str().map_err(|_| missing())?;
    let (scheme, token) = text.split_once(' ').ok_or_else(missing)?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(missing());
    }
    Ok(token.trim())
}

/// The authenticated subject of a request, left in its extensions for the access log.
#[derive(Clone)]
pub struct Subject(pub String);

impl FromRequest for Actor {
    type Error = ApiError;
    type Future = Ready<Result<Actor, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let result = (|| {
            let state = req
                .app_data::<web::Data<AppState>>()
                .ok_or(ApiError::Internal)?;
            let protection = &state.protection;
            // An address that spent its failed-authentication budget is refused before its
            // token is even looked at; each failure spends from that budget.
            let ip = req.peer_addr().map(|a| a.ip());
            protection.check_auth_allowed(ip)?;
            let actor = bearer(req)
                .and_then(|token| state.auth.verify(token))
                .map_err(|failure| protection.auth_failed(ip, failure))?;
            // For the access log: who asked (never the token).
            req.extensions_mut().insert(Subject(actor.sub.clone()));
            let standing = protection.check_token(&actor.sub)?;
            if let Some(s) = standing {
                req.extensions_mut()
                    .insert(crate::protection::TokenStanding(s));
            }
            Ok(actor)
        })();
        let result = result.map(|mut actor| {
            actor.granted = req.extensions().get::<Granted>().cloned();
            actor
        });
        ready(result)
    }
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
