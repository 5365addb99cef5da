//! CMMC Level 2: the self-assessment, the SPRS score with the Conditional status check, and a
//! what-if over items to close.

use super::docs::{ReadProblems, WriteProblems};
use super::versioned;
use crate::auth::Actor;
use crate::input::{if_match, json_body, ObjectMembers};
use crate::problem::ApiError;
use crate::state::AppState;
use actix_web::http::StatusCode;
use actix_web::{get, post, put, web, HttpRequest, HttpResponse};
use chrono::NaiveDate;
use poam_domain::cmmc::{self, Assessment, Reason, Status};
use poam_domain::{ItemId, Permission, SystemId};
use poam_persistence::cmmc as store;
use poam_persistence::StoreError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;
use validator::Validate;

/// The body of recording an assessment.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssessmentBody {
    /// Requirement (800-171 number or CMMC id) to `met`, `not_met`, `not_applicable`, or
    /// `partial` (3.5.3 and 3.13.11 only). A requirement left out counts as not met.
    #[schema(example = json!({"3.1.1": "met", "3.5.3": "partial", "AC.L2-3.1.3": "not_met"}))]
    pub requirements: BTreeMap<String, Status>,
    /// The date the Conditional Level 2 status was granted: the 180-day closeout runs from it.
    #[serde(default)]
    pub conditional_status_date: Option<NaiveDate>,
}

impl ObjectMembers for AssessmentBody {
    const OBJECTS: &'static [&'static str] = &["/requirements"];
}

/// Items to imagine closed.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WhatIf {
    #[validate(length(max = 10000))]
    pub close_items: Vec<uuid::Uuid>,
}

impl ObjectMembers for WhatIf {}

/// The SPRS score and the Conditional Level 2 check.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = SprsScore)]
pub struct Score {
    /// 110 minus the value of every requirement not met (minimum −203); `null` without an SSP
    /// (3.12.4 not met).
    #[schema(required = true)]
    pub score: Option<i32>,
    #[schema(example = 110)]
    pub max: i32,
    /// Score ≥ 88, every requirement not met eligible and on the POA&M (32 CFR 170.21(a)(2)).
    pub conditional_eligible: bool,
    /// Each rule the Conditional status fails, with the requirement and the citation.
    pub reasons: Vec<Reason>,
    /// The Conditional status date plus 180 days.
    #[schema(required = true)]
    pub closeout_deadline: Option<NaiveDate>,
    #[schema(required = true)]
    pub days_left: Option<i64>,
}

impl From<cmmc::Conditional> for Score {
    fn from(c: cmmc::Conditional) -> Self {
        Score {
            score: c.score,
            max: cmmc::MAX_SCORE,
            conditional_eligible: c.eligible,
            reasons: c.reasons,
            closeout_deadline: c.closeout_deadline,
            days_left: c.days_left,
        }
    }
}

/// Record the system's CMMC Level 2 self-assessment (editor); replaces the previous one, kept in
/// the history.
#[utoipa::path(
    operation_id = "put_cmmc_assessment",
    tag = "cmmc",
    params(
        ("system_id" = uuid::Uuid, Path, description = "A cmmc_l2 or cmmc_l3 system."),
        ("If-Match" = Option<String>, Header, nullable = false, description = "The assessment's ETag you read."),
    ),
    request_body = AssessmentBody,
    responses((status = 200, body = Assessment, headers(("ETag" = String))), WriteProblems),
    security(("bearer" = []))
)]
#[put("/systems/{system_id}/cmmc/assessment")]
pub async fn put_assessment(
    state: web::Data<AppState>,
    actor: Actor,
    req: HttpRequest,
    path: web::Path<SystemId>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    actor.require(Permission::WriteItems)?;
    let id = path.into_inner();
    let expected = if_match(&req)?;
    let body: AssessmentBody = json_body(&req, payload).await?;
    let statuses = cmmc::check_assessment(&body.requirements)
        .map_err(|v| ApiError::from(StoreError::Invalid(v)))?;
    if body
        .conditional_status_date
        .is_some_and(|d| !poam_domain::rules::date_in_range(d))
    {
        return Err(StoreError::Invalid(vec![poam_domain::Violation::new(
            "date_out_of_range",
            "/conditional_status_date",
            "the year must lie in 1900..=9999",
        )])
        .into());
    }
    let a = state
        .write(move |conn| {
            store::put(
                conn,
                id,
                &actor.scope,
                &expected,
                &statuses,
                body.conditional_status_date,
                &actor.sub,
            )
        })
        .await?;
    Ok(versioned(StatusCode::OK, a.version, &a))
}

/// The system's recorded assessment.
#[utoipa::path(
    operation_id = "get_cmmc_assessment",
    tag = "cmmc",
    params(("system_id" = uuid::Uuid, Path, description = "A cmmc_l2 or cmmc_l3 system.")),
    responses((status = 200, body = Assessment, headers(("ETag" = String))), ReadProblems),
    security(("bearer" = []))
)]
#[get("/systems/{system_id}/cmmc/assessment")]
pub async fn get_assessment(
    state: web::Data<AppState>,
    actor: Actor,
    path: web::Path<SystemId>,
) -> Result<HttpResponse, ApiError> {
    actor.require(Permission::Read)?;
    let id = path.into_inner();
    let a = state
        .db(move |conn| store::get(conn, id, &actor.scope))
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(versioned(StatusCode::OK, a.version, &a))
}

/// The SPRS score and whether a Conditional Level 2 status is available, with every reason.
#[utoipa::path(
    operation_id = "cmmc_score",
    tag = "cmmc",
    params(("system_id" = uuid::Uuid, Path, description = "A cmmc_l2 or cmmc_l3 system.")),
    responses((status = 200, body = Score), ReadProblems),
    security(("bearer" = []))
)]
#[get("/systems/{system_id}/cmmc/score")]
pub async fn score(
    state: web::Data<AppState>,
    actor: Actor,
    path: web::Path<SystemId>,
) -> Result<HttpResponse, ApiError> {
    actor.require(Permission::Read)?;
    let id = path.into_inner();
    let c = state
        .db(move |conn| store::evaluate(conn, id, &actor.scope, &[]))
        .await?;
    Ok(HttpResponse::Ok().json(Score::from(c)))
}

/// The score and eligibility if the given items were closed (their requirements then met,
/// unless another open item still tracks them). Changes nothing.
#[utoipa::path(
    operation_id = "cmmc_what_if",
    tag = "cmmc",
    params(("system_id" = uuid::Uuid, Path, description = "A cmmc_l2 or cmmc_l3 system.")),
    request_body = WhatIf,
    responses((status = 200, body = Score), WriteProblems),
    security(("bearer" = []))
)]
#[post("/systems/{system_id}/cmmc/what-if")]
pub async fn what_if(
    state: web::Data<AppState>,
    actor: Actor,
    req: HttpRequest,
    path: web::Path<SystemId>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    actor.require(Permission::Read)?;
    let id = path.into_inner();
    let body: WhatIf = json_body(&req, payload).await?;
    let closing: Vec<ItemId> = body
        .close_items
        .into_iter()
        .map(ItemId::from_uuid)
        .collect();
    let c = state
        .db(move |conn| store::evaluate(conn, id, &actor.scope, &closing))
        .await?;
    Ok(HttpResponse::Ok().json(Score::from(c)))
}
