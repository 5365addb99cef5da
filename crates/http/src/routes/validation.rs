//! Dry runs: a whole POA&M, or a proposed item, checked against the system's regime profile
//! (eMASS, FedRAMP, CMMC) and the item rules, without saving anything.

use super::docs::WriteProblems;
use crate::auth::Actor;
use crate::input::{json_body, parse_fields, ObjectMembers};
use crate::problem::ApiError;
use crate::state::AppState;
use actix_web::{post, web, HttpRequest, HttpResponse};
use poam_domain::profiles::{self, Finding};
use poam_domain::rules::check_item;
use poam_domain::{ItemFields, Permission, SystemId};
use poam_persistence::items as store;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use validator::Validate;

/// The findings of a dry run; empty when everything passes.
#[derive(Serialize, ToSchema)]
#[schema(as = ValidationFindings)]
pub struct Findings {
    pub findings: Vec<Finding>,
}

/// A proposed item and the system it would join.
#[derive(Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProposedItem {
    pub system_id: uuid::Uuid,
    /// The item as it would be created. Any JSON object is checked: shape problems (a missing
    /// or mistyped field) are findings too.
    #[schema(value_type = poam_domain::ItemFields)]
    pub item: serde_json::Value,
}

impl ObjectMembers for ProposedItem {
    const OBJECTS: &'static [&'static str] = &["/item"];
}

fn today() -> chrono::NaiveDate {
    chrono::Utc::now().date_naive()
}

/// Check a whole POA&M against its system's profile; each finding names its item.
#[utoipa::path(
    operation_id = "validate_system",
    tag = "validation",
    params(("system_id" = uuid::Uuid, Path, description = "The system's id.")),
    responses((status = 200, body = Findings), WriteProblems),
    security(("bearer" = []))
)]
#[post("/systems/{system_id}/validate")]
pub async fn validate_system(
    state: web::Data<AppState>,
    actor: Actor,
    path: web::Path<SystemId>,
) -> Result<HttpResponse, ApiError> {
    actor.require(Permission::Read)?;
    let id = path.into_inner();
    let findings = state
        .db(move |conn| store::validate_system(conn, id, &actor.scope))
        .await?;
    Ok(HttpResponse::Ok().json(Findings { findings }))
}

/// Check a proposed item without saving it: its shape, the item rules and the system's profile.
#[utoipa::path(
    operation_id = "validate_item",
    tag = "validation",
    request_body(content = ProposedItem, example = json!({"system_id": "6f1c1a8e-9b2e-4c1e-8d35-2b8f0d5f7b10", "item": {"title": "TLS 1.0", "description": "d", "risk_rating": "high", "detected_on": "2026-10-01", "source": {"kind": "scan"}}})),
    responses((status = 200, body = Findings), WriteProblems),
    security(("bearer" = []))
)]
#[post("/items/validate")]
pub async fn validate_item(
    state: web::Data<AppState>,
    actor: Actor,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    actor.require(Permission::Read)?;
    let body: ProposedItem = json_body(&req, payload).await?;
    let system_id = SystemId::from_uuid(body.system_id);
    let fields = match parse_fields::<ItemFields>(body.item) {
        Ok(f) => f,
        Err(violations) => {
            // Seen even before the system is: a scope check still applies.
            let scope = actor.scope.clone();
            state
                .db(move |conn| poam_persistence::systems::get(conn, system_id, &scope))
                .await?;
            let findings = violations
                .into_iter()
                .map(|v| profiles::from_violation(prefixed(v), None))
                .collect();
            return Ok(HttpResponse::Ok().json(Findings { findings }));
        }
    };
    let mut findings: Vec<Finding> = match check_item(fields.clone(), today()) {
        Ok(_) => Vec::new(),
        Err(v) => v
            .into_iter()
            .map(|v| profiles::from_violation(prefixed(v), None))
            .collect(),
    };
    let profile = state
        .db(move |conn| store::validate_proposed(conn, system_id, &actor.scope, &fields))
        .await?;
    findings.extend(profile.into_iter().map(|mut f| {
        f.pointer = format!("/item{}", f.pointer);
        f
    }));
    Ok(HttpResponse::Ok().json(Findings { findings }))
}

/// Points a violation of the item into the request body (`/item/...`).
fn prefixed(mut v: poam_domain::Violation) -> poam_domain::Violation {
    v.pointer = format!("/item{}", v.pointer);
    v
}
