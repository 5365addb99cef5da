//! FedRAMP 2026 (VDR/VER) reports of a system: the vulnerability detail report (VER-RPT-VDT),
//! the accepted vulnerability info (VER-RPT-AVI), the historical activity (VER-TFR-MRH) and the
//! printable monthly report (VER-TFR-MHR). Each item's standing is computed at the request's
//! moment from FedRAMP's tables.

use super::docs::ReadProblems;
use crate::auth::Actor;
use crate::input::query;
use crate::problem::ApiError;
use crate::state::AppState;
use actix_web::{get, web, HttpRequest, HttpResponse};
use chrono::{DateTime, Duration, Utc};
use poam_domain::vdr_reports::{self, Entry, Period};
use poam_domain::{Item, Permission, System, SystemId, Violation};
use poam_persistence::StoreError;
use serde::Deserialize;
use utoipa::IntoParams;

/// The report's period (RFC 3339 timestamps).
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PeriodParams {
    /// Start of the period; by default 30 days before its end.
    #[param(example = "2026-11-01T00:00:00Z")]
    from: Option<DateTime<Utc>>,
    /// End of the period; by default now.
    #[param(example = "2026-11-30T23:59:59Z")]
    to: Option<DateTime<Utc>>,
}

/// What the historical activity answers.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SinceParams {
    /// Only vulnerabilities with activity since then (RFC 3339); all without it.
    #[param(example = "2026-11-01T00:00:00Z")]
    since: Option<DateTime<Utc>>,
}

fn period(req: &HttpRequest, now: DateTime<Utc>) -> Result<Period, ApiError> {
    let p = query::<PeriodParams>(req)?;
    let to = p.to.unwrap_or(now);
    let from = p.from.unwrap_or(to - Duration::days(30));
    if from > to {
        return Err(ApiError::invalid_param(
            "from",
            "period_reversed",
            "the period starts after it ends",
        ));
    }
    Ok(Period { from, to })
}

/// The system, its 2026 regime and items, or 409 when it does not follow the 2026 rules.
async fn load(
    state: &web::Data<AppState>,
    actor: Actor,
    id: SystemId,
) -> Result<(System, poam_domain::vdr::Regime, Vec<Item>), ApiError> {
    actor.require(Permission::Read)?;
    let (system, items) = state
        .db(move |conn| poam_persistence::vdr::system_items(conn, id, &actor.scope))
        .await?;
    let today = Utc::now().date_naive();
    match system.fields().vdr_regime() {
        Some(r) if r.applies(today) => Ok((system, r, items)),
        _ => Err(StoreError::Conflict(Violation::new(
            "vdr_not_adopted",
            "",
            "the system does not follow FedRAMP's 2026 rules yet: it needs the `fedramp` regime, a `fedramp_class` and a `vdr_since` date reached",
        ))
        .into()),
    }
}

fn package_uri(system: &System) -> String {
    system
        .certification_package_uri
        .clone()
        .unwrap_or_else(|| format!("urn:uuid:{}", system.id))
}

fn entries<'a>(
    regime: &poam_domain::vdr::Regime,
    items: &'a [Item],
    now: DateTime<Utc>,
) -> Vec<Entry<'a>> {
    vdr_reports::entries(regime, items, now)
}

/// The vulnerability detail report (VER-RPT-VDT): non-accepted vulnerabilities with activity
/// in the period, valid against FedRAMP's
/// `fedramp-vulnerability-detail-report-schema-2026-06-24.json`.
#[utoipa::path(
    operation_id = "get_fedramp_vdt_report",
    tag = "reports",
    params(("system_id" = uuid::Uuid, Path, description = "The system's id."), PeriodParams),
    responses(
        (status = 200, description = "The report (FedRAMP's schema).", body = super::docs::JsonObject),
        (status = 409, description = "The system does not follow the 2026 rules (`vdr_not_adopted`)."),
        ReadProblems
    ),
    security(("bearer" = []))
)]
#[get("/systems/{system_id}/reports/fedramp-vdt")]
pub async fn fedramp_vdt(
    state: web::Data<AppState>,
    actor: Actor,
    req: HttpRequest,
    path: web::Path<SystemId>,
) -> Result<HttpResponse, ApiError> {
    period_report(&state, actor, &req, path.into_inner(), vdr_reports::vdt).await
}

/// A JSON report of a period: the period read, the system and its items loaded, `build` run.
async fn period_report(
    state: &web::Data<AppState>,
    actor: Actor,
    req: &HttpRequest,
    id: SystemId,
    build: fn(&str, &Period, &[Entry]) -> serde_json::Value,
) -> Result<HttpResponse, ApiError> {
    let now = Utc::now();
    let period = period(req, now)?;
    let (system, regime, items) = load(state, actor, id).await?;
    let e = entries(&regime, &items, now);
    Ok(HttpResponse::Ok().json(build(&package_uri(&system), &period, &e)))
}

/// The accepted vulnerability info (VER-RPT-AVI): accepted vulnerabilities (FRD-ACV) with
/// activity in the period, valid against FedRAMP's
/// `fedramp-accepted-vulnerability-info-schema-2026-06-24.json`.
#[utoipa::path(
    operation_id = "get_fedramp_avi_report",
    tag = "reports",
    params(("system_id" = uuid::Uuid, Path, description = "The system's id."), PeriodParams),
    responses(
        (status = 200, description = "The report (FedRAMP's schema).", body = super::docs::JsonObject),
        (status = 409, description = "The system does not follow the 2026 rules (`vdr_not_adopted`)."),
        ReadProblems
    ),
    security(("bearer" = []))
)]
#[get("/systems/{system_id}/reports/fedramp-avi")]
pub async fn fedramp_avi(
    state: web::Data<AppState>,
    actor: Actor,
    req: HttpRequest,
    path: web::Path<SystemId>,
) -> Result<HttpResponse, ApiError> {
    period_report(&state, actor, &req, path.into_inner(), vdr_reports::avi).await
}

/// The historical VER activity for automated retrieval (VER-TFR-MRH): active and accepted
/// vulnerabilities changed since `since`, valid against FedRAMP's
/// `fedramp-historical-ver-activity-schema-2026-06-24.json`.
#[utoipa::path(
    operation_id = "get_fedramp_history",
    tag = "reports",
    params(("system_id" = uuid::Uuid, Path, description = "The system's id."), SinceParams),
    responses(
        (status = 200, description = "The activity (FedRAMP's schema).", body = super::docs::JsonObject),
        (status = 409, description = "The system does not follow the 2026 rules (`vdr_not_adopted`)."),
        ReadProblems
    ),
    security(("bearer" = []))
)]
#[get("/systems/{system_id}/reports/fedramp-history")]
pub async fn fedramp_history(
    state: web::Data<AppState>,
    actor: Actor,
    req: HttpRequest,
    path: web::Path<SystemId>,
) -> Result<HttpResponse, ApiError> {
    let now = Utc::now();
    let since = query::<SinceParams>(&req)?.since;
    let (system, regime, items) = load(&state, actor, path.into_inner()).await?;
    let e = entries(&regime, &items, now);
    Ok(HttpResponse::Ok().json(vdr_reports::history(&package_uri(&system), now, since, &e)))
}

/// The human-readable monthly report (VER-TFR-MHR): counts by N-rating and state, and what
/// was detected, evaluated, reduced, overdue and accepted in the period. A printable HTML page.
#[utoipa::path(
    operation_id = "get_fedramp_monthly_report",
    tag = "reports",
    params(("system_id" = uuid::Uuid, Path, description = "The system's id."), PeriodParams),
    responses(
        (status = 200, description = "The report.", content_type = "text/html", body = String),
        (status = 409, description = "The system does not follow the 2026 rules (`vdr_not_adopted`)."),
        ReadProblems
    ),
    security(("bearer" = []))
)]
#[get("/systems/{system_id}/reports/fedramp-monthly")]
pub async fn fedramp_monthly(
    state: web::Data<AppState>,
    actor: Actor,
    req: HttpRequest,
    path: web::Path<SystemId>,
) -> Result<HttpResponse, ApiError> {
    let now = Utc::now();
    let period = period(&req, now)?;
    let (system, regime, items) = load(&state, actor, path.into_inner()).await?;
    let e = entries(&regime, &items, now);
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(vdr_reports::monthly_html(
            &system.name,
            regime.class,
            &period,
            &e,
        )))
}
