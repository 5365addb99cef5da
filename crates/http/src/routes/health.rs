//! Liveness and readiness: unauthenticated, cheap.

use crate::problem::ApiError;
use crate::state::AppState;
use actix_web::{get, web, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Serialize, ToSchema)]
pub struct Health {
    #[schema(example = "ok")]
    pub status: &'static str,
}

/// Liveness: the process is up.
#[utoipa::path(operation_id = "get_liveness", tag = "health", responses((status = 200, body = Health)))]
#[get("/healthz")]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Health { status: "ok" })
}

/// Readiness: the database answers.
#[utoipa::path(
    operation_id = "get_readiness",
    tag = "health",
    responses(
        (status = 200, body = Health),
        (status = 503, description = "The database does not answer (`service_unavailable`).", body = crate::problem::Problem, content_type = "application/problem+json"),
    )
)]
#[get("/readyz")]
pub async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    state
        .db(poam_persistence::db::ping)
        .await
        .map_err(|_| ApiError::Unavailable)?;
    Ok(HttpResponse::Ok().json(Health { status: "ready" }))
}
