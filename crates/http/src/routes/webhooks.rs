//! `/v1/webhooks`: subscriptions to the history's events (admin), their delivery log and manual
//! redelivery. Deliveries are signed per Standard Webhooks; see `crate::delivery`.

use super::docs::{ListProblems, ReadProblems, WriteProblems};
use super::{created, versioned};
use crate::auth::Actor;
use crate::delivery::{check_url, new_secret};
use crate::input::{if_match, json_body, merge_patch_body, query};
use crate::problem::{ApiError, FieldError};
use crate::state::AppState;
use actix_web::http::StatusCode;
use actix_web::{delete, get, patch, post, web, HttpRequest, HttpResponse};
use chrono::NaiveDateTime;
use poam_domain::webhooks::check_pattern;
use poam_domain::{Permission, SystemId, SystemScope};
use poam_persistence::events::{Action, RESOURCES};
use poam_persistence::webhooks::{
    self as store, AttemptRow, DeliveryRow, NewSubscription, SubscriptionChange, SubscriptionRow,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use validator::Validate;

/// What a delivery carries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PayloadStyle {
    /// The event and the ids it names.
    #[default]
    Thin,
    /// Also the resource after the change and what changed, as the history records them.
    Full,
}

impl PayloadStyle {
    fn as_str(self) -> &'static str {
        match self {
            PayloadStyle::Thin => "thin",
            PayloadStyle::Full => "full",
        }
    }
}

/// A new subscription.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWebhook {
    /// Where deliveries are POSTed: https (http only for a host in `POAM_WEBHOOK_ALLOW`), never
    /// to a loopback, private, link-local, shared (CGNAT) or metadata address unless allowed.
    #[validate(length(min = 1, max = 2000))]
    #[schema(
        min_length = 1,
        max_length = 2000,
        example = "https://hooks.example.org/poam"
    )]
    pub url: String,
    /// Event types, `<resource kind>.<action>`: `*` (all), `item.*`, `*.created` or
    /// `item.transitioned`.
    #[validate(length(min = 1, max = 50))]
    #[schema(min_items = 1, max_items = 50, example = json!(["item.*", "milestone.completed"]))]
    pub events: Vec<String>,
    /// The systems whose events are delivered; omitted or `null`: every system the token may
    /// see, now and later.
    #[validate(length(min = 1, max = 1000))]
    #[schema(min_items = 1, max_items = 1000)]
    pub systems: Option<Vec<SystemId>>,
    /// `thin` (default) or `full`.
    #[serde(default)]
    pub payload: PayloadStyle,
    #[validate(length(max = 250))]
    #[schema(max_length = 250)]
    pub description: Option<String>,
}

impl crate::input::ObjectMembers for NewWebhook {}

/// A subscription.
#[derive(Debug, Serialize, ToSchema)]
pub struct Webhook {
    #[schema(format = Uuid)]
    pub id: String,
    pub url: String,
    pub events: Vec<String>,
    /// `null`: every system the subscribing token could see.
    #[schema(required = true)]
    pub systems: Option<Vec<String>>,
    pub payload: PayloadStyle,
    /// `active` or `paused` (by an administrator, or automatically after failing for
    /// `POAM_WEBHOOK_PAUSE_AFTER`, or on a `410 Gone`).
    #[schema(example = "active")]
    pub state: String,
    #[schema(required = true)]
    pub paused_reason: Option<String>,
    #[schema(required = true)]
    pub paused_at: Option<NaiveDateTime>,
    /// Since when deliveries have failed without one succeeding.
    #[schema(required = true)]
    pub failing_since: Option<NaiveDateTime>,
    /// Until when the previous secret still signs beside the current one (after a rotation).
    #[schema(required = true)]
    pub previous_secret_until: Option<NaiveDateTime>,
    #[schema(required = true)]
    pub description: Option<String>,
    pub created_by: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub version: i64,
    /// The signing secret (`whsec_` and base64): only in the answer to the creation and to a
    /// rotation. Keep it: it is never shown again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

fn render(row: SubscriptionRow, show_secret: bool) -> Result<Webhook, ApiError> {
    Ok(Webhook {
        events: row.event_patterns()?,
        systems: row.system_ids()?,
        payload: if row.payload == "full" {
            PayloadStyle::Full
        } else {
            PayloadStyle::Thin
        },
        secret: show_secret.then(|| row.secret.clone()),
        id: row.id,
        url: row.url,
        state: row.state,
        paused_reason: row.paused_reason,
        paused_at: row.paused_at,
        failing_since: row.failing_since,
        previous_secret_until: row.previous_secret_until,
        description: row.description,
        created_by: row.created_by,
        created_at: row.created_at,
        updated_at: row.updated_at,
        version: row.version,
    })
}

/// Every subscription the token may see.
#[derive(Serialize, ToSchema)]
pub struct WebhookList {
    pub items: Vec<Webhook>,
}

fn refused(pointer: &str, code: &str, detail: impl Into<String>) -> ApiError {
    ApiError::Invalid(vec![FieldError::body(pointer, code, detail)])
}

fn check_events(events: &[String]) -> Result<(), ApiError> {
    let errors: Vec<FieldError> = events
        .iter()
        .enumerate()
        .filter_map(|(i, p)| {
            check_pattern(p, RESOURCES, Action::WORDS)
                .err()
                .map(|e| FieldError::body(format!("/events/{i}"), "unknown_event_type", e))
        })
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::Invalid(errors))
    }
}

fn check_systems(systems: &[SystemId], scope: &SystemScope) -> Result<Vec<String>, ApiError> {
    let errors: Vec<FieldError> = systems
        .iter()
        .enumerate()
        .filter(|(_, s)| !scope.allows(**s))
        .map(|(i, _)| {
            FieldError::body(
                format!("/systems/{i}"),
                "not_in_scope",
                "the token may not see this system",
            )
        })
        .collect();
    if !errors.is_empty() {
        return Err(ApiError::Invalid(errors));
    }
    let mut ids: Vec<String> = systems.iter().map(ToString::to_string).collect();
    ids.sort();
    ids.dedup();
    Ok(ids)
}

/// Resolves and checks the URL off the actix workers.
async fn checked_url(state: &AppState, url: String) -> Result<String, ApiError> {
    let allow = state.webhooks.allow.clone();
    web::block(move || check_url(&url, &allow).map(|u| u.to_string()))
        .await
        .map_err(|_| ApiError::Internal)?
        .map_err(|e| refused("/url", "url_refused", e))
}

/// Subscribe to events (admin).
#[utoipa::path(
    operation_id = "create_webhook",
    tag = "webhooks",
    request_body(
        content = NewWebhook,
        example = json!({"url": "https://hooks.example.org/poam", "events": ["item.*"], "payload": "thin"})
    ),
    responses(
        (status = 201, description = "Created; `secret` is shown this once.", body = Webhook,
         headers(("ETag" = String, description = "The version."), ("Location" = String))),
        WriteProblems,
    ),
    security(("bearer" = []))
)]
#[post("/webhooks")]
pub async fn create_webhook(
    state: web::Data<AppState>,
    actor: Actor,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    actor.require(Permission::ManageSystems)?;
    let body: NewWebhook = json_body(&req, payload).await?;
    check_events(&body.events)?;
    let systems = body
        .systems
        .as_deref()
        .map(|s| check_systems(s, &actor.scope))
        .transpose()?;
    let url = checked_url(&state, body.url).await?;
    let secret = new_secret().map_err(|e| {
        tracing::error!(cause = %e, "no secret");
        ApiError::Internal
    })?;
    let scope = match &actor.scope {
        SystemScope::All => None,
        SystemScope::Only(ids) => Some(ids.iter().map(ToString::to_string).collect()),
    };
    let new = NewSubscription {
        url,
        events: body.events,
        systems,
        scope,
        payload: body.payload.as_str().to_owned(),
        description: body.description,
        secret,
        actor: actor.sub.clone(),
    };
    let row = state.db(move |conn| store::create(conn, new)).await?;
    let version = row.version;
    let hook = render(row, true)?;
    Ok(created(
        &format!("/v1/webhooks/{}", hook.id),
        version,
        &hook,
    ))
}

/// List subscriptions (admin).
#[utoipa::path(
    operation_id = "list_webhooks",
    tag = "webhooks",
    responses((status = 200, body = WebhookList), ListProblems),
    security(("bearer" = []))
)]
#[get("/webhooks")]
pub async fn list_webhooks(
    state: web::Data<AppState>,
    actor: Actor,
) -> Result<HttpResponse, ApiError> {
    actor.require(Permission::ManageSystems)?;
    let scope = actor.scope.clone();
    let rows = state.db(move |conn| store::list(conn, &scope)).await?;
    let items = rows
        .into_iter()
        .map(|r| render(r, false))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(HttpResponse::Ok().json(WebhookList { items }))
}

/// Get a subscription (admin).
#[utoipa::path(
    operation_id = "get_webhook",
    tag = "webhooks",
    params(("webhook_id" = uuid::Uuid, Path, description = "The subscription's id.")),
    responses((status = 200, body = Webhook), ReadProblems),
    security(("bearer" = []))
)]
#[get("/webhooks/{webhook_id}")]
pub async fn get_webhook(
    state: web::Data<AppState>,
    actor: Actor,
    path: web::Path<uuid::Uuid>,
) -> Result<HttpResponse, ApiError> {
    actor.require(Permission::ManageSystems)?;
    let id = path.into_inner().to_string();
    let scope = actor.scope.clone();
    let row = state.db(move |conn| store::get(conn, &id, &scope)).await?;
    let version = row.version;
    Ok(versioned(StatusCode::OK, version, &render(row, false)?))
}

/// A change of a subscription (JSON merge patch).
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct WebhookPatch {
    url: Option<String>,
    events: Option<Vec<String>>,
    /// `null`: every system the token may see.
    systems: Option<Vec<SystemId>>,
    payload: Option<PayloadStyle>,
    description: Option<String>,
    /// `false` pauses deliveries (events meanwhile are not queued); `true` resumes and forgets
    /// past failures.
    active: Option<bool>,
    /// `true`: a new secret, answered this once; the previous one keeps signing beside it for
    /// `secret_overlap_seconds` (default `POAM_WEBHOOK_SECRET_OVERLAP`).
    rotate_secret: Option<bool>,
    #[schema(minimum = 0, maximum = 2592000)]
    secret_overlap_seconds: Option<i64>,
}

fn string_list(v: &serde_json::Value, pointer: &str) -> Result<Vec<String>, ApiError> {
    v.as_array()
        .and_then(|a| {
            a.iter()
                .map(|x| x.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
        })
        .ok_or_else(|| refused(pointer, "invalid_type", "must be an array of strings"))
}

/// Change a subscription: pause or resume, events, systems, payload, URL, or rotate the secret
/// (admin).
#[utoipa::path(
    operation_id = "update_webhook",
    tag = "webhooks",
    params(
        ("webhook_id" = uuid::Uuid, Path, description = "The subscription's id."),
        ("If-Match" = Option<String>, Header, nullable = false, description = "The ETag you read."),
    ),
    request_body(
        content = WebhookPatch,
        content_type = "application/merge-patch+json",
        example = json!({"rotate_secret": true, "secret_overlap_seconds": 86400})
    ),
    responses((status = 200, body = Webhook), WriteProblems),
    security(("bearer" = []))
)]
#[patch("/webhooks/{webhook_id}")]
pub async fn update_webhook(
    state: web::Data<AppState>,
    actor: Actor,
    req: HttpRequest,
    path: web::Path<uuid::Uuid>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    actor.require(Permission::ManageSystems)?;
    let id = path.into_inner().to_string();
    let condition = if_match(&req)?;
    let patch = merge_patch_body(&req, payload).await?;
    let mut change = SubscriptionChange::default();
    let mut overlap = None;
    let mut rotate = false;
    for (k, v) in &patch {
        let pointer = format!("/{k}");
        match k.as_str() {
            "url" => {
                let url = v
                    .as_str()
                    .filter(|u| !u.is_empty() && u.chars().count() <= 2000)
                    .ok_or_else(|| {
                        refused(&pointer, "invalid_type", "a URL of 1 to 2000 characters")
                    })?;
                change.url = Some(checked_url(&state, url.to_owned()).await?);
            }
            "events" => {
                let events = string_list(v, &pointer)?;
                if events.is_empty() || events.len() > 50 {
                    return Err(refused(&pointer, "invalid_length", "1 to 50 event types"));
                }
                check_events(&events)?;
                change.events = Some(events);
            }
            "systems" if v.is_null() => change.systems = Some(None),
            "systems" => {
                let ids = string_list(v, &pointer)?
                    .iter()
                    .map(|s| s.parse::<SystemId>())
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|_| refused(&pointer, "invalid_id", "system ids are UUIDs"))?;
                if ids.is_empty() || ids.len() > 1000 {
                    return Err(refused(
                        &pointer,
                        "invalid_length",
                        "1 to 1000 systems, or null",
                    ));
                }
                change.systems = Some(Some(check_systems(&ids, &actor.scope)?));
            }
            "payload" => {
                let style: PayloadStyle = serde_json::from_value(v.clone())
                    .map_err(|_| refused(&pointer, "invalid_value", "`thin` or `full`"))?;
                change.payload = Some(style.as_str().to_owned());
            }
            "description" if v.is_null() => change.description = Some(None),
            "description" => {
                let d = v
                    .as_str()
                    .filter(|d| d.chars().count() <= 250)
                    .ok_or_else(|| {
                        refused(&pointer, "invalid_type", "text of at most 250 characters")
                    })?;
                change.description = Some(Some(d.to_owned()));
            }
            "active" => {
                change.active = Some(
                    v.as_bool()
                        .ok_or_else(|| refused(&pointer, "invalid_type", "true or false"))?,
                );
            }
            "rotate_secret" => {
                rotate = v
                    .as_bool()
                    .ok_or_else(|| refused(&pointer, "invalid_type", "true or false"))?;
            }
            "secret_overlap_seconds" => {
                overlap = Some(
                    v.as_i64()
                        .filter(|s| (0..=2_592_000).contains(s))
                        .ok_or_else(|| refused(&pointer, "out_of_range", "0 to 2592000 seconds"))?,
                );
            }
            _ => {
                return Err(refused(
                    &pointer,
                    "unknown_field",
                    format!("`{k}` is not a field of a webhook patch"),
                ))
            }
        }
    }
    if rotate {
        let secret = new_secret().map_err(|e| {
            tracing::error!(cause = %e, "no secret");
            ApiError::Internal
        })?;
        let seconds = overlap.unwrap_or_else(|| {
            i64::try_from(state.webhooks.secret_overlap.as_secs()).unwrap_or(86_400)
        });
        let until = poam_persistence::db::now() + chrono::Duration::seconds(seconds);
        change.rotate = Some((secret, until));
    } else if overlap.is_some() {
        return Err(refused(
            "/secret_overlap_seconds",
            "needs_rotation",
            "only with `rotate_secret: true`",
        ));
    }
    let scope = actor.scope.clone();
    let row = state
        .db(move |conn| store::update(conn, &id, &scope, Some(&condition), change))
        .await?;
    let version = row.version;
    Ok(versioned(StatusCode::OK, version, &render(row, rotate)?))
}

/// Delete a subscription with its delivery log (admin).
#[utoipa::path(
    operation_id = "delete_webhook",
    tag = "webhooks",
    params(("webhook_id" = uuid::Uuid, Path, description = "The subscription's id.")),
    responses((status = 204, description = "Deleted."), WriteProblems),
    security(("bearer" = []))
)]
#[delete("/webhooks/{webhook_id}")]
pub async fn delete_webhook(
    state: web::Data<AppState>,
    actor: Actor,
    path: web::Path<uuid::Uuid>,
) -> Result<HttpResponse, ApiError> {
    actor.require(Permission::ManageSystems)?;
    let id = path.into_inner().to_string();
    let scope = actor.scope.clone();
    state
        .db(move |conn| store::delete(conn, &id, &scope))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// One attempt of a delivery.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryAttempt {
    /// 1 for the first attempt.
    pub n: i32,
    pub at: NaiveDateTime,
    /// The receiver's status; `null` when no response came.
    #[schema(required = true)]
    pub status: Option<i32>,
    pub latency_ms: i64,
    /// Why the attempt failed (timeout, refused address, redirect, status).
    #[schema(required = true)]
    pub error: Option<String>,
    /// The first 512 bytes of the response body.
    #[schema(required = true)]
    pub response_excerpt: Option<String>,
}

/// One event to deliver to one subscription.
#[derive(Debug, Serialize, ToSchema)]
pub struct Delivery {
    /// Also the `webhook-id` header: the same on every attempt (an idempotency key for the
    /// receiver).
    #[schema(format = Uuid)]
    pub id: String,
    #[schema(format = Uuid)]
    pub event_id: String,
    #[schema(example = "item.updated")]
    pub event_type: String,
    #[schema(format = Uuid)]
    pub system_id: String,
    /// The event's place in its system's chain.
    pub event_seq: i64,
    /// `pending`, `delivered` or `dead` (the schedule spent; `redeliver` sends it again).
    #[schema(example = "delivered")]
    pub state: String,
    pub attempts: Vec<DeliveryAttempt>,
    /// When the next attempt is due (`pending`).
    pub next_attempt_at: NaiveDateTime,
    pub created_at: NaiveDateTime,
    #[schema(required = true)]
    pub delivered_at: Option<NaiveDateTime>,
}

fn delivery(d: DeliveryRow, attempts: Vec<AttemptRow>) -> Delivery {
    Delivery {
        id: d.id,
        event_id: d.event_id,
        event_type: d.event_type,
        system_id: d.system_id,
        event_seq: d.event_seq,
        state: d.state,
        attempts: attempts
            .into_iter()
            .map(|a| DeliveryAttempt {
                n: a.n,
                at: a.at,
                status: a.status,
                latency_ms: a.latency_ms,
                error: a.error,
                response_excerpt: a.response_excerpt,
            })
            .collect(),
        next_attempt_at: d.next_attempt_at,
        created_at: d.created_at,
        delivered_at: d.delivered_at,
    }
}

/// A page of deliveries, newest first.
#[derive(Serialize, ToSchema)]
pub struct DeliveryPage {
    pub items: Vec<Delivery>,
    /// Pass as `cursor` for the next (older) page; `null` on the last.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

/// Filters and paging of a delivery log.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeliveryParams {
    /// `pending`, `delivered` or `dead`.
    state: Option<String>,
    /// Page size, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// The delivery log of a subscription: every delivery with its attempts (admin).
#[utoipa::path(
    operation_id = "list_webhook_deliveries",
    tag = "webhooks",
    params(("webhook_id" = uuid::Uuid, Path, description = "The subscription's id."), DeliveryParams),
    responses((status = 200, body = DeliveryPage), ListProblems),
    security(("bearer" = []))
)]
#[get("/webhooks/{webhook_id}/deliveries")]
pub async fn list_deliveries(
    state: web::Data<AppState>,
    actor: Actor,
    req: HttpRequest,
    path: web::Path<uuid::Uuid>,
) -> Result<HttpResponse, ApiError> {
    actor.require(Permission::ManageSystems)?;
    let id = path.into_inner().to_string();
    let p: DeliveryParams = query(&req)?;
    let limit = super::systems::page_limit(p.limit)?;
    if let Some(s) = &p.state {
        if ![store::PENDING, store::DELIVERED, store::DEAD].contains(&s.as_str()) {
            return Err(ApiError::invalid_param(
                "state",
                "invalid_value",
                "pending, delivered or dead",
            ));
        }
    }
    let before = p
        .cursor
        .filter(|c| !c.is_empty())
        .map(|c| {
            c.parse::<uuid::Uuid>().map(|u| u.to_string()).map_err(|_| {
                ApiError::invalid_param(
                    "cursor",
                    "invalid_cursor",
                    "not a cursor this service issued",
                )
            })
        })
        .transpose()?;
    let scope = actor.scope.clone();
    let (rows, more) = state
        .db(move |conn| {
            store::deliveries(
                conn,
                &id,
                &scope,
                p.state.as_deref(),
                before.as_deref(),
                limit,
            )
        })
        .await?;
    let next_cursor = more
        .then(|| rows.last().map(|(d, _)| d.id.clone()))
        .flatten();
    Ok(HttpResponse::Ok().json(DeliveryPage {
        items: rows.into_iter().map(|(d, a)| delivery(d, a)).collect(),
        next_cursor,
    }))
}

/// Send a delivery again, from the first step of the retry schedule (admin).
#[utoipa::path(
    operation_id = "redeliver_webhook_delivery",
    tag = "webhooks",
    params(
        ("webhook_id" = uuid::Uuid, Path, description = "The subscription's id."),
        ("delivery_id" = uuid::Uuid, Path, description = "The delivery's id."),
    ),
    responses((status = 202, description = "Queued.", body = Delivery), WriteProblems),
    security(("bearer" = []))
)]
#[post("/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver")]
pub async fn redeliver(
    state: web::Data<AppState>,
    actor: Actor,
    path: web::Path<(uuid::Uuid, uuid::Uuid)>,
) -> Result<HttpResponse, ApiError> {
    actor.require(Permission::ManageSystems)?;
    let (sub, did) = path.into_inner();
    let (sub, did) = (sub.to_string(), did.to_string());
    let scope = actor.scope.clone();
    let row = state
        .db(move |conn| store::redeliver(conn, &sub, &did, &scope))
        .await?;
    Ok(HttpResponse::Accepted().json(delivery(row, Vec::new())))
}
