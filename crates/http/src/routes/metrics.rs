//! POA&M metrics for one system, or across every system the token may see.

use super::docs::ReadProblems;
use crate::auth::Actor;
use crate::input::query;
use crate::problem::ApiError;
use crate::state::AppState;
use actix_web::{get, web, HttpRequest, HttpResponse};
use poam_domain::metrics::Metrics;
use poam_domain::{Permission, SystemId, SystemScope};
use poam_persistence::metrics::{self as store, Scope};
use serde::Deserialize;
use utoipa::IntoParams;

/// Whether archived items count.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ReportParams {
    /// Count archived items too. Without it the answer leaves them out and says how many
    /// unresolved ones it left out (`archived_unresolved_excluded`).
    include_archived: Option<bool>,
}

/// Counts by status and rating, overdue items, aging past due, median days to close, mean slip,
/// moved milestones and the risk closed items removed.
#[utoipa::path(
    operation_id = "get_system_metrics",
    tag = "metrics",
    params(("system_id" = uuid::Uuid, Path, description = "The system's id."), ReportParams),
    responses((status = 200, body = Metrics), ReadProblems),
    security(("bearer" = []))
)]
#[get("/systems/{system_id}/metrics")]
pub async fn system_metrics(
    state: web::Data<AppState>,
    actor: Actor,
    req: HttpRequest,
    path: web::Path<SystemId>,
) -> Result<HttpResponse, ApiError> {
    actor.require(Permission::Read)?;
    let id = path.into_inner();
    let all = query::<ReportParams>(&req)?
        .include_archived
        .unwrap_or(false);
    let m = state
        .db(move |conn| {
            poam_persistence::systems::get(conn, id, &actor.scope)?;
            store::compute(conn, &Scope::One(id), all)
        })
        .await?;
    Ok(HttpResponse::Ok().json(m))
}

/// The same metrics across every system the token may see.
#[utoipa::path(
    operation_id = "get_portfolio_metrics",
    tag = "metrics",
    params(ReportParams),
    responses((status = 200, body = Metrics), ReadProblems),
    security(("bearer" = []))
)]
#[get("/metrics")]
pub async fn all_metrics(
    state: web::Data<AppState>,
    actor: Actor,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    actor.require(Permission::Read)?;
    let all = query::<ReportParams>(&req)?
        .include_archived
        .unwrap_or(false);
    let scope = match &actor.scope {
        SystemScope::All => Scope::Many(None),
        SystemScope::Only(ids) => Scope::Many(Some(ids.iter().copied().collect())),
    };
    let m = state
        .db(move |conn| store::compute(conn, &scope, all))
        .await?;
    Ok(HttpResponse::Ok().json(m))
}
