//! The history: a system's hash-chained event feed (also the change feed integrations poll), an
//! item's history, and the chain's verification.

use super::docs::{ListProblems, ReadProblems};
use crate::auth::Actor;
use crate::input::query;
use crate::problem::ApiError;
use crate::state::AppState;
use actix_web::{get, web, HttpRequest, HttpResponse};
use poam_domain::history::Event;
use poam_domain::{ItemId, Permission, SystemId};
use poam_persistence::events::{self, EventQuery, EventRow};
use poam_persistence::{items, systems, StoreError};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// A page of events, each shown as the auditor bundle shows it.
#[derive(Serialize, ToSchema)]
pub struct EventPage<'a> {
    pub items: Vec<Event<'a>>,
    /// Pass as `cursor` for the next page; `null` when there is nothing more now.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
    /// The `seq` of the last event served (or the position asked for): a poller passes it as
    /// `after_seq` next time.
    pub last_seq: i64,
}

/// The rows of a page, and whether more follow.
struct Rows {
    rows: Vec<EventRow>,
    more: bool,
    after_seq: i64,
}

impl Rows {
    fn respond(&self) -> Result<HttpResponse, ApiError> {
        let last_seq = self.rows.last().map_or(self.after_seq, |r| r.seq);
        let page = EventPage {
            items: self
                .rows
                .iter()
                .map(EventRow::view)
                .collect::<Result<Vec<_>, StoreError>>()?,
            next_cursor: self.more.then(|| last_seq.to_string()),
            last_seq,
        };
        Ok(HttpResponse::Ok().json(page))
    }
}

/// The position and size of a page: `cursor` (or `after_seq`) and `limit`.
fn paging(
    cursor: Option<&str>,
    after_seq: Option<i64>,
    limit: Option<i64>,
) -> Result<(i64, i64), ApiError> {
    let cursor_seq = match cursor.filter(|c| !c.is_empty()) {
        None => None,
        Some(c) => Some(c.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
            ApiError::invalid_param(
                "cursor",
                "invalid_cursor",
                "not a cursor this service issued",
            )
        })?),
    };
    let after_seq = match (cursor_seq, after_seq) {
        (Some(c), _) => c,
        (None, Some(n)) if n >= 0 => n,
        (None, Some(_)) => {
            return Err(ApiError::invalid_param(
                "after_seq",
                "out_of_range",
                "must be 0 or more",
            ))
        }
        (None, None) => 0,
    };
    let limit = match limit {
        None => 100,
        Some(n @ 1..=500) => n,
        Some(_) => {
            return Err(ApiError::invalid_param(
                "limit",
                "out_of_range",
                "must be between 1 and 500",
            ))
        }
    };
    Ok((after_seq, limit))
}

/// Filters and paging of the event feed, in `seq` order.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EventParams {
    /// Only events after this position (a poller's `last_seq`).
    #[param(minimum = 0)]
    after_seq: Option<i64>,
    /// `system`, `item`, `milestone`, `review`, `evidence`, `cmmc_assessment`, `export`,
    /// `import` or `scan`.
    #[param(
        pattern = "^(system|item|milestone|review|evidence|cmmc_assessment|export|import|scan)$"
    )]
    resource: Option<String>,
    /// Only the events of this resource.
    resource_id: Option<uuid::Uuid>,
    /// `created`, `updated`, `archived`, `transitioned`, `completed`, `cancelled`, `recorded`,
    /// `withdrawn`, `exported`, `imported`, `migrated` or `downloaded` (someone read a file's
    /// content: evidence or a scan file); or a time-driven event of the scheduler: `overdue`,
    /// `due_soon`, `check_in_late`, `closeout_near`, `review_due`, `expiring`, `expired`,
    /// `deadline_near` or `deadline_passed`.
    #[param(
        pattern = "^(created|updated|archived|transitioned|completed|cancelled|recorded|withdrawn|exported|imported|migrated|downloaded|overdue|due_soon|check_in_late|closeout_near|review_due|expiring|expired|deadline_near|deadline_passed)$"
    )]
    action: Option<String>,
    /// Page size, 1 to 500 (default 100).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
}

fn one_of(name: &str, value: Option<String>, allowed: &[&str]) -> Result<Option<String>, ApiError> {
    match value {
        Some(v) if !allowed.contains(&v.as_str()) => Err(ApiError::invalid_param(
            name,
            "invalid_value",
            format!("`{v}` is not one of {}", allowed.join(", ")),
        )),
        other => Ok(other),
    }
}

/// The system's events: every change to the system and its items, in order, hash-chained.
#[utoipa::path(
    operation_id = "list_events",
    tag = "history",
    params(("system_id" = uuid::Uuid, Path, description = "The system's id."), EventParams),
    responses((status = 200, body = EventPage), ListProblems),
    security(("bearer" = []))
)]
#[get("/systems/{system_id}/events")]
pub async fn list_events(
    state: web::Data<AppState>,
    actor: Actor,
    req: HttpRequest,
    path: web::Path<SystemId>,
) -> Result<HttpResponse, ApiError> {
    actor.require(Permission::Read)?;
    let id = path.into_inner();
    let p: EventParams = query(&req)?;
    let (after_seq, limit) = paging(p.cursor.as_deref(), p.after_seq, p.limit)?;
    let q = EventQuery {
        after_seq,
        resource_kind: one_of("resource", p.resource, events::RESOURCES)?,
        resource_id: p.resource_id.map(|u| u.to_string()),
        action: one_of("action", p.action, events::Action::WORDS)?,
        limit,
    };
    state
        .db(move |conn| {
            systems::get(conn, id, &actor.scope)?;
            let (rows, more) = events::feed(conn, &id.to_string(), &q)?;
            Ok(Rows {
                rows,
                more,
                after_seq: q.after_seq,
            })
        })
        .await?
        .respond()
}

/// Paging of an item's history, in chain order.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct HistoryParams {
    /// Only events after this position in the system's chain.
    #[param(minimum = 0)]
    after_seq: Option<i64>,
    /// Page size, 1 to 500 (default 100).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// Every change to an item and to its milestones, evidence and reviews, in chain order, with who
/// made it and what changed; each event as the change feed shows it.
#[utoipa::path(
    operation_id = "list_item_history",
    tag = "history",
    params(("item_id" = uuid::Uuid, Path, description = "The item's id."), HistoryParams),
    responses((status = 200, body = EventPage), ReadProblems),
    security(("bearer" = []))
)]
#[get("/items/{item_id}/history")]
pub async fn item_history(
    state: web::Data<AppState>,
    actor: Actor,
    req: HttpRequest,
    path: web::Path<ItemId>,
) -> Result<HttpResponse, ApiError> {
    actor.require(Permission::Read)?;
    let id = path.into_inner();
    let p: HistoryParams = query(&req)?;
    let (after_seq, limit) = paging(p.cursor.as_deref(), p.after_seq, p.limit)?;
    state
        .db(move |conn| {
            items::get(conn, id, &actor.scope)?;
            let (rows, more) = events::of_item(conn, &id.to_string(), after_seq, limit)?;
            Ok(Rows {
                rows,
                more,
                after_seq,
            })
        })
        .await?
        .respond()
}

/// The first broken link of a chain.
#[derive(Serialize, ToSchema)]
pub struct BrokenLink {
    /// The position where the chain breaks.
    pub seq: i64,
    /// The event found there (absent when events are missing from the tail).
    #[schema(required = true)]
    #[schema(format = Uuid)]
    pub event_id: Option<String>,
    pub reason: String,
}

/// The result of recomputing a system's chain.
#[derive(Serialize, ToSchema)]
pub struct Verification {
    #[schema(format = Uuid)]
    pub system_id: String,
    /// True when every event links to its predecessor and matches its own hash, and the chain
    /// ends where the system says it does.
    pub verified: bool,
    /// Events found.
    pub events: i64,
    /// The number of events the system recorded, and the last one's hash.
    pub head_seq: i64,
    pub head_hash: String,
    #[schema(required = true)]
    pub broken: Option<BrokenLink>,
}

impl From<events::Verification> for Verification {
    fn from(v: events::Verification) -> Self {
        Verification {
            system_id: v.system_id,
            verified: v.broken.is_none(),
            events: v.events,
            head_seq: v.head_seq,
            head_hash: v.head_hash,
            broken: v.broken.map(|b| BrokenLink {
                seq: b.seq,
                event_id: b.event_id,
                reason: b.reason,
            }),
        }
    }
}

/// Recompute the system's hash chain and report the first broken link (auditor, admin).
#[utoipa::path(
    operation_id = "verify_event_chain",
    tag = "history",
    params(("system_id" = uuid::Uuid, Path, description = "The system's id.")),
    responses(
        (status = 200, description = "The verification, intact or not.", body = Verification),
        (status = 403, description = "Only auditors and admins verify history (`forbidden`).", body = crate::problem::Problem, content_type = "application/problem+json"),
        ReadProblems,
    ),
    security(("bearer" = []))
)]
#[get("/systems/{system_id}/events/verification")]
pub async fn verify_events(
    state: web::Data<AppState>,
    actor: Actor,
    path: web::Path<SystemId>,
) -> Result<HttpResponse, ApiError> {
    actor.require(Permission::Audit)?;
    let id = path.into_inner();
    let v = state
        .db(move |conn| {
            systems::get(conn, id, &actor.scope)?;
            events::verify(conn, &id.to_string())
        })
        .await?;
    Ok(HttpResponse::Ok().json(Verification::from(v)))
}
