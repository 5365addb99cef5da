//! POA&M metrics for one system, or across every system the token may see.

use super::docs::ReadProblems;
use crate::auth::Actor;
use crate::problem::ApiError;
use crate::state::AppState;
use actix_web::{get, web, HttpResponse};
use poam_domain::metrics::Metrics;
use poam_domain::{Permission, SystemId, SystemScope};
use poam_persistence::metrics::{self as store, Scope};

/// Counts by status and rating, overdue items, aging past due, median days to close, mean slip,
/// moved milestones and the risk closed items removed.
#[utoipa::path(
    tag = "metrics",
    params(("system_id" = uuid::Uuid, Path, description = "The system's id.")),
    responses((status = 200, body = Metrics), ReadProblems),
    security(("bearer" = []))
)]
#[get("/systems/{system_id}/metrics")]
pub async fn system_metrics(
    state: web::Data<AppState>,
    actor: Actor,
    path: web::Path<uuid::Uuid>,
) -> Result<HttpResponse, ApiError> {
    actor.require(Permission::Read)?;
    let id = SystemId::from_uuid(path.into_inner());
    let m = state
        .db(move |conn| {
            poam_persistence::systems::get(conn, id, &actor.scope)?;
            store::compute(conn, &Scope::One(id))
        })
        .await?;
    Ok(HttpResponse::Ok().json(m))
}

/// The same metrics across every system the token may see.
#[utoipa::path(
    tag = "metrics",
    responses((status = 200, body = Metrics), ReadProblems),
    security(("bearer" = []))
)]
#[get("/metrics")]
pub async fn all_metrics(
    state: web::Data<AppState>,
    actor: Actor,
) -> Result<HttpResponse, ApiError> {
    actor.require(Permission::Read)?;
    let scope = match &actor.scope {
        SystemScope::All => Scope::Many(None),
        SystemScope::Only(ids) => Scope::Many(Some(ids.iter().copied().collect())),
    };
    let m = state.db(move |conn| store::compute(conn, &scope)).await?;
    Ok(HttpResponse::Ok().json(m))
}
