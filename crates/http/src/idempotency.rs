//! `Idempotency-Key` on every POST: a retry with the same key and the same content gets the
//! first response again and creates nothing; the same key with other content is a 422 problem;
//! a retry while the first request still runs is a 409 problem. Keys are the caller's own (the
//! token subject's) and kept 24 hours.

use crate::problem::{ApiError, FieldError};
use crate::state::AppState;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage, HttpResponse, ResponseError};
use futures_util::StreamExt;
use poam_persistence::idempotency::{self, Claim};
use sha2::{Digest, Sha256};
use std::cell::RefCell;
use std::rc::Rc;

pub const HEADER: &str = "idempotency-key";
const REPLAYED: &str = "idempotent-replayed";
/// Response headers a replay repeats.
const KEPT: &[&str] = &["content-type", "location", "etag"];

/// Lower-case hex of a digest.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
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
    let Some(actor) = token
        .and_then(|t| state.auth.verify(&t).ok())
        .map(|a| a.sub)
    else {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_boxed_body);
    };
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
            let stored = {
                let (actor, key, body) = (actor.clone(), key.clone(), bytes.to_vec());
                let headers = serde_json::Value::Object(kept).to_string();
                state
                    .write(move |conn| {
                        idempotency::finish(
                            conn,
                            &actor,
                            &key,
                            &hash,
                            status.as_u16(),
                            &headers,
                            &body,
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
