//! `Idempotency-Key` on every POST: a retry with the same key and the same content gets the
//! first response again and creates nothing; the same key with other content is a 422 problem;
//! a retry while the first request still runs is a 409 problem. Keys are the caller's own (the
//! token subject's) and kept 24 hours.
//!
//! A replay answers only a token that may still make the request: the first response is
//! recorded with what it was authorized for ([`Grants`]: the permissions its handler asked for,
//! the system it touched, the caller's scope), and a retry whose token lacks one of those
//! permissions gets the handler's 403, one whose scope no longer reaches the system its 404.

use crate::auth::{Actor, Granted};
use crate::problem::{ApiError, FieldError};
use crate::state::AppState;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage, HttpResponse, ResponseError};
use futures_util::StreamExt;
use poam_domain::{Permission, SystemId, SystemScope};
use poam_persistence::idempotency::{self, Claim, Owner};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::cell::RefCell;
use std::collections::BTreeSet;
use std::rc::Rc;

pub const HEADER: &str = "idempotency-key";
const REPLAYED: &str = "idempotent-replayed";
/// Response headers a replay repeats.
const KEPT: &[&str] = &["content-type", "location", "etag"];

/// Lower-case hex of a digest.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Every permission, by the name a record keeps.
const PERMISSIONS: &[(Permission, &str)] = &[
    (Permission::Read, "read"),
    (Permission::WriteItems, "write_items"),
    (Permission::Decide, "decide"),
    (Permission::Audit, "audit"),
    (Permission::ManageSystems, "manage_systems"),
];

fn permission_name(p: Permission) -> &'static str {
    PERMISSIONS
        .iter()
        .find(|(q, _)| *q == p)
        .map_or("unknown", |(_, name)| name)
}

/// What the first request of a key was authorized for, kept with its response.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Grants {
    /// The permissions the handler asked for (and the caller had).
    permissions: Vec<String>,
    /// The system the request touched, when its path names one (directly or through an
    /// item, milestone, evidence or review).
    system: Option<String>,
    /// The caller's systems, `*` for all: what a replay's token must reach when `system` is
    /// not known.
    scope: Vec<String>,
}

impl Grants {
    /// For a record that kept nothing (made before grants were): every permission, every system.
    fn unknown() -> Grants {
        Grants {
            permissions: PERMISSIONS.iter().map(|(_, n)| (*n).to_owned()).collect(),
            system: None,
            scope: vec!["*".into()],
        }
    }

    /// Whether `current` may have the recorded response: what its handler would answer if
    /// not (403 for a missing permission, 404 for a system out of reach).
    fn recheck(&self, current: &Actor) -> Result<(), ApiError> {
        for name in &self.permissions {
            match PERMISSIONS.iter().find(|(_, n)| n == name) {
                Some((p, _)) => current.require(*p)?,
                None => {
                    return Err(ApiError::Forbidden(format!(
                        "this response was recorded under a permission (`{name}`) this service does not know"
                    )))
                }
            }
        }
        let reaches = match (&self.system, &current.scope) {
            (_, SystemScope::All) => true,
            (Some(system), scope) => system.parse::<SystemId>().is_ok_and(|id| scope.allows(id)),
            // The system is not known: the token must reach every system the first one did.
            (None, SystemScope::Only(current)) => {
                let recorded: Option<BTreeSet<SystemId>> = self
                    .scope
                    .iter()
                    .map(|s| s.parse::<SystemId>().ok())
                    .collect();
                recorded.is_some_and(|recorded| recorded.is_subset(current))
            }
        };
        if reaches {
            Ok(())
        } else {
            Err(ApiError::NotFound)
        }
    }
}

fn scope_names(scope: &SystemScope) -> Vec<String> {
    match scope {
        SystemScope::All => vec!["*".into()],
        SystemScope::Only(ids) => ids.iter().map(ToString::to_string).collect(),
    }
}

/// The record a request path names, whose system the request touched:
/// `/v1/{systems|items|milestones|evidence|reviews}/{uuid}/...`.
fn owner(path: &str) -> Option<Owner> {
    let mut segments = path.trim_start_matches('/').split('/');
    if segments.next()? != "v1" {
        return None;
    }
    let kind = segments.next()?;
    let id = segments.next()?.parse::<uuid::Uuid>().ok()?.to_string();
    match kind {
        "systems" => Some(Owner::System(id)),
        "items" => Some(Owner::Item(id)),
        "milestones" => Some(Owner::Milestone(id)),
        "evidence" => Some(Owner::Evidence(id)),
        "reviews" => Some(Owner::Review(id)),
        _ => None,
    }
}

fn problem(req: ServiceRequest, e: ApiError) -> ServiceResponse<BoxBody> {
    let (http, _) = req.into_parts();
    ServiceResponse::new(http, e.error_response())
}

pub async fn middleware(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let key = match req.headers().get(HEADER) {
        Some(v) if req.method() == Method::POST => v.to_str().unwrap_or("").to_owned(),
        _ => {
            return next
                .call(req)
                .await
                .map(ServiceResponse::map_into_boxed_body)
        }
    };
    if key.is_empty() || key.len() > 255 || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Ok(problem(
            req,
            ApiError::BadRequest {
                code: "invalid_idempotency_key",
                detail: "Idempotency-Key must be 1 to 255 visible ASCII characters (a UUID is a good one)".into(),
                errors: vec![FieldError::param("Idempotency-Key", "invalid_value", "1 to 255 visible ASCII characters")],
            },
        ));
    }
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_boxed_body);
    };
    // The key belongs to the caller; a request without a valid token goes on to its 401.
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim().to_owned());
    let Some(current) = token.and_then(|t| state.auth.verify(&t).ok()) else {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_boxed_body);
    };
    let actor = current.sub.clone();
    let path = req.path().to_owned();
    let claim = {
        let (actor, key, path) = (actor.clone(), key.clone(), path.clone());
        state
            .write(move |conn| idempotency::claim(conn, &actor, &key, &path))
            .await
    };
    let hasher = Rc::new(RefCell::new(Sha256::new()));
    match claim {
        Err(e) => Ok(problem(req, e)),
        Ok(Claim::InFlight) => Ok(problem(
            req,
            ApiError::Conflict(poam_domain::Violation::new(
                "idempotency_key_in_use",
                "",
                "a request with this Idempotency-Key is still running; retry in a moment",
            )),
        )),
        Ok(Claim::Done(recorded)) => {
            // The token must still allow the request before it may see its answer.
            let grants = recorded
                .grants
                .as_deref()
                .and_then(|g| serde_json::from_str::<Grants>(g).ok())
                .unwrap_or_else(Grants::unknown);
            if let Err(e) = grants.recheck(&current) {
                return Ok(problem(req, e));
            }
            let (http, mut payload) = req.into_parts();
            while let Some(chunk) = payload.next().await {
                match chunk {
                    Ok(bytes) => hasher.borrow_mut().update(&bytes),
                    Err(e) => {
                        return Ok(ServiceResponse::new(
                            http,
                            ApiError::bad_request("unreadable_body", e.to_string())
                                .error_response(),
                        ))
                    }
                }
            }
            let hash = hex(&hasher.borrow_mut().clone().finalize());
            if recorded.path != path || recorded.body_hash.as_deref() != Some(hash.as_str()) {
                let e = ApiError::Invalid(vec![FieldError::param(
                    "Idempotency-Key",
                    "idempotency_key_reused",
                    "this key was used for another request; use a new key for a new request",
                )]);
                return Ok(ServiceResponse::new(http, e.error_response()));
            }
            let mut res = HttpResponse::build(
                StatusCode::from_u16(recorded.status).unwrap_or(StatusCode::OK),
            );
            let headers: serde_json::Map<String, serde_json::Value> =
                serde_json::from_str(&recorded.headers).unwrap_or_default();
            for (name, value) in headers {
                if let (Ok(n), Some(v)) = (HeaderName::try_from(name.as_str()), value.as_str()) {
                    if let Ok(v) = HeaderValue::from_str(v) {
                        res.insert_header((n, v));
                    }
                }
            }
            res.insert_header((
                HeaderName::from_static(REPLAYED),
                HeaderValue::from_static("true"),
            ));
            Ok(ServiceResponse::new(http, res.body(recorded.body)))
        }
        Ok(Claim::Fresh) => {
            let taken = req.take_payload();
            let h = hasher.clone();
            let stream = taken.inspect(move |chunk| {
                if let Ok(bytes) = chunk {
                    h.borrow_mut().update(bytes);
                }
            });
            req.set_payload(Payload::Stream {
                payload: Box::pin(stream),
            });
            // The handler's `Actor` notes here the permissions it asks for.
            let granted = Granted::default();
            req.extensions_mut().insert(granted.clone());
            let res = next.call(req).await?;
            let status = res.status();
            if !status.is_success() {
                let (actor, key) = (actor.clone(), key.clone());
                if let Err(e) = state
                    .write(move |conn| idempotency::release(conn, &actor, &key))
                    .await
                {
                    tracing::warn!(error = %e, "cannot release an idempotency key");
                }
                return Ok(res.map_into_boxed_body());
            }
            let (http, response) = res.into_parts();
            let (head, body) = response.into_parts();
            let bytes = match actix_web::body::to_bytes(body).await {
                Ok(b) => b,
                Err(_) => {
                    return Ok(ServiceResponse::new(
                        http,
                        ApiError::Internal.error_response(),
                    ))
                }
            };
            let mut kept = serde_json::Map::new();
            for name in KEPT {
                if let Some(v) = head.headers().get(*name).and_then(|v| v.to_str().ok()) {
                    kept.insert((*name).to_owned(), serde_json::Value::String(v.to_owned()));
                }
            }
            let hash = hex(&hasher.borrow_mut().clone().finalize());
            let grants = Grants {
                permissions: granted
                    .permissions()
                    .into_iter()
                    .map(|p| permission_name(p).to_owned())
                    .collect(),
                system: None,
                scope: scope_names(&current.scope),
            };
            let owner = owner(&path);
            let stored = {
                let (actor, key, body) = (actor.clone(), key.clone(), bytes.to_vec());
                let headers = serde_json::Value::Object(kept).to_string();
                state
                    .write(move |conn| {
                        let system = match &owner {
                            Some(owner) => idempotency::system_of(conn, owner)?,
                            None => None,
                        };
                        let grants = serde_json::to_string(&Grants { system, ..grants })
                            .map_err(|e| poam_persistence::StoreError::Internal(e.to_string()))?;
                        idempotency::finish(
                            conn,
                            &actor,
                            &key,
                            idempotency::Response {
                                body_hash: &hash,
                                status: status.as_u16(),
                                headers: &headers,
                                body: &body,
                                grants: &grants,
                            },
                        )
                    })
                    .await
            };
            if let Err(e) = stored {
                tracing::warn!(error = %e, "cannot record an idempotent response");
            }
            Ok(ServiceResponse::new(
                http,
                head.set_body(BoxBody::new(bytes)),
            ))
        }
    }
}
