//! What needs someone now: overdue and escalated items, overdue and due-soon milestones, late
//! vendor check-ins, deviations and completed items awaiting a decision, most urgent first,
//! each with its reason and whom it waits on. What a dashboard or a chat bot calls.

use super::docs::ReadProblems;
use crate::auth::Actor;
use crate::input::query;
use crate::problem::ApiError;
use crate::state::AppState;
use actix_web::{get, web, HttpRequest, HttpResponse};
use poam_domain::reminders::Attention;
use poam_domain::{Permission, SystemId};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// How many entries to answer.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AttentionParams {
    /// The most entries answered, the most urgent kept (1 to 1000; default 200).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
}

/// The attention list.
#[derive(Debug, Serialize, ToSchema)]
pub struct AttentionList {
    /// Ordered by urgency: `reason` (escalated, overdue, milestone_overdue, check_in_late,
    /// due_soon, closure_candidate, deviation_pending, awaiting_verification), then the higher
    /// risk, then the
    /// earlier date.
    pub data: Vec<Attention>,
    /// Whether `limit` cut the list.
    pub truncated: bool,
}

fn limit(req: &HttpRequest) -> Result<usize, ApiError> {
    match query::<AttentionParams>(req)?.limit {
        None => Ok(200),
        Some(n @ 1..=1000) => Ok(n),
        Some(_) => Err(ApiError::invalid_param(
            "limit",
            "out_of_range",
            "must be between 1 and 1000",
        )),
    }
}

fn render(mut data: Vec<Attention>, limit: usize) -> HttpResponse {
    let truncated = data.len() > limit;
    data.truncate(limit);
    HttpResponse::Ok().json(AttentionList { data, truncated })
}

/// What needs someone now across every system the token may see (archived systems and items
/// left out).
#[utoipa::path(
    operation_id = "list_attention",
    tag = "attention",
    params(AttentionParams),
    responses((status = 200, body = AttentionList), ReadProblems),
    security(("bearer" = []))
)]
#[get("/attention")]
pub async fn attention(
    state: web::Data<AppState>,
    actor: Actor,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    actor.require(Permission::Read)?;
    let limit = limit(&req)?;
    let scope = actor.scope.clone();
    let data = state
        .db(move |conn| poam_persistence::reminders::attention(conn, &scope, None, limit + 1))
        .await?;
    Ok(render(data, limit))
}

/// What needs someone now in one system.
#[utoipa::path(
    operation_id = "list_system_attention",
    tag = "attention",
    params(("system_id" = uuid::Uuid, Path, description = "The system's id."), AttentionParams),
    responses((status = 200, body = AttentionList), ReadProblems),
    security(("bearer" = []))
)]
#[get("/systems/{system_id}/attention")]
pub async fn system_attention(
    state: web::Data<AppState>,
    actor: Actor,
    req: HttpRequest,
    path: web::Path<SystemId>,
) -> Result<HttpResponse, ApiError> {
    actor.require(Permission::Read)?;
    let limit = limit(&req)?;
    let id = path.into_inner();
    let data = state
        .db(move |conn| {
            poam_persistence::systems::get(conn, id, &actor.scope)?;
            poam_persistence::reminders::attention(conn, &actor.scope, Some(id), limit + 1)
        })
        .await?;
    Ok(render(data, limit))
}
