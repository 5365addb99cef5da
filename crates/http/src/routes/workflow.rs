//! The remediation workflow: milestones, status transitions and reviews.

use super::docs::{ReadProblems, WriteProblems};
use super::{created, versioned, versioned_item};
use crate::auth::Actor;
use crate::input::{if_match, json_body, query};
use crate::problem::ApiError;
use crate::state::AppState;
use actix_web::http::StatusCode;
use actix_web::{get, patch, post, web, HttpRequest, HttpResponse};
use chrono::NaiveDate;
use poam_domain::change;
use poam_domain::lifecycle::Request;
use poam_domain::limits::NARRATIVE;
use poam_domain::workflow::{
    CancelMilestone, CompleteMilestone, Milestone, MilestonePatch, NewMilestone, NewReview, Review,
    ReviewTarget,
};
use poam_domain::{Item, ItemId, ItemStatus, MilestoneId, Permission, SystemId};
use poam_persistence::workflow::{self as store, MilestoneEdit};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use validator::Validate;

/// An item's milestones in plan order.
#[derive(Serialize, ToSchema)]
pub struct MilestoneList {
    pub items: Vec<Milestone>,
}

/// Add a milestone to an item's plan (editor).
///
/// A milestone due after the item's scheduled completion date is refused unless an approved
/// extension review exists for the item.
#[utoipa::path(
    operation_id = "create_milestone",
    tag = "milestones",
    params(("item_id" = uuid::Uuid, Path, description = "The item's id.")),
    request_body(content = NewMilestone, example = json!({"title": "Disable TLS 1.0 in the listener policy", "due_on": "2026-12-15", "kind": "change", "percent_complete": 0})),
    responses(
        (status = 201, body = Milestone, headers(("ETag" = String), ("Location" = String))),
        WriteProblems,
    ),
    security(("bearer" = []))
)]
#[post("/items/{item_id}/milestones")]
pub async fn create_milestone(
    state: web::Data<AppState>,
    actor: Actor,
    req: HttpRequest,
    path: web::Path<ItemId>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    actor.require(Permission::WriteItems)?;
    let item_id = path.into_inner();
    let body: NewMilestone = json_body(&req, payload).await?;
    let m = state
        .write(move |conn| store::create_milestone(conn, item_id, &actor.scope, &body, &actor.sub))
        .await?;
    Ok(created(&format!("/v1/milestones/{}", m.id), m.version, &m))
}

/// List an item's milestones in plan order.
#[utoipa::path(
    operation_id = "list_milestones",
    tag = "milestones",
    params(("item_id" = uuid::Uuid, Path, description = "The item's id.")),
    responses((status = 200, body = MilestoneList), ReadProblems),
    security(("bearer" = []))
)]
#[get("/items/{item_id}/milestones")]
pub async fn list_milestones(
    state: web::Data<AppState>,
    actor: Actor,
    path: web::Path<ItemId>,
) -> Result<HttpResponse, ApiError> {
    actor.require(Permission::Read)?;
    let item_id = path.into_inner();
    let items = state
        .db(move |conn| store::list_milestones(conn, item_id, &actor.scope))
        .await?;
    Ok(HttpResponse::Ok().json(MilestoneList { items }))
}

/// Get a milestone, with every change of its due date.
#[utoipa::path(
    operation_id = "get_milestone",
    tag = "milestones",
    params(("milestone_id" = uuid::Uuid, Path, description = "The milestone's id.")),
    responses((status = 200, body = Milestone, headers(("ETag" = String))), ReadProblems),
    security(("bearer" = []))
)]
#[get("/milestones/{milestone_id}")]
pub async fn get_milestone(
    state: web::Data<AppState>,
    actor: Actor,
    path: web::Path<MilestoneId>,
) -> Result<HttpResponse, ApiError> {
    actor.require(Permission::Read)?;
    let id = path.into_inner();
    let (m, _) = state
        .db(move |conn| store::get_milestone(conn, id, &actor.scope))
        .await?;
    Ok(versioned(StatusCode::OK, m.version, &m))
}

async fn edit(
    state: web::Data<AppState>,
    actor: Actor,
    req: &HttpRequest,
    id: MilestoneId,
    edit: MilestoneEdit,
) -> Result<HttpResponse, ApiError> {
    let expected = if_match(req)?;
    let m = state
        .write(move |conn| {
            store::edit_milestone(conn, id, &actor.scope, &expected, &actor.sub, edit)
        })
        .await?;
    Ok(versioned(StatusCode::OK, m.version, &m))
}

/// Change a milestone (editor): title, description, position, planned/in progress, or its due
/// date with a `change_reason` (kept in `changes`).
#[utoipa::path(
    operation_id = "update_milestone",
    tag = "milestones",
    params(
        ("milestone_id" = uuid::Uuid, Path, description = "The milestone's id."),
        ("If-Match" = Option<String>, Header, nullable = false, description = "The ETag you read; 412 if the milestone changed since."),
    ),
    request_body(content = MilestonePatch, example = json!({"due_on": "2027-01-15", "change_reason": "Vendor patch slipped to January"})),
    responses((status = 200, body = Milestone, headers(("ETag" = String))), WriteProblems),
    security(("bearer" = []))
)]
#[patch("/milestones/{milestone_id}")]
pub async fn update_milestone(
    state: web::Data<AppState>,
    actor: Actor,
    req: HttpRequest,
    path: web::Path<MilestoneId>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    actor.require(Permission::WriteItems)?;
    let body: MilestonePatch = json_body(&req, payload).await?;
    edit(
        state,
        actor,
        &req,
        path.into_inner(),
        MilestoneEdit::Patch(body),
    )
    .await
}

/// Mark a milestone completed (editor); `completed_on` defaults to today.
///
/// The body is optional: a request without one completes the milestone today.
/// Its `percent_complete` becomes 100. A `training` milestone completes only with a
/// non-withdrawn `training_record` evidence attached to it (`training_evidence_required`).
#[utoipa::path(
    operation_id = "complete_milestone",
    tag = "milestones",
    params(
        ("milestone_id" = uuid::Uuid, Path, description = "The milestone's id."),
        ("If-Match" = Option<String>, Header, nullable = false, description = "The ETag you read."),
    ),
    request_body(content = Option<CompleteMilestone>, description = "Optional: without a body (and without `Content-Type`) the milestone completes today.", example = json!({"completed_on": "2026-11-20"})),
    responses((status = 200, body = Milestone, headers(("ETag" = String))), WriteProblems),
    security(("bearer" = []))
)]
#[post("/milestones/{milestone_id}/complete")]
pub async fn complete_milestone(
    state: web::Data<AppState>,
    actor: Actor,
    req: HttpRequest,
    path: web::Path<MilestoneId>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    actor.require(Permission::WriteItems)?;
    let body: CompleteMilestone = crate::input::optional_json_body(&req, payload).await?;
    edit(
        state,
        actor,
        &req,
        path.into_inner(),
        MilestoneEdit::Complete(body.completed_on),
    )
    .await
}

/// Cancel a milestone (editor), with the reason.
#[utoipa::path(
    operation_id = "cancel_milestone",
    tag = "milestones",
    params(
        ("milestone_id" = uuid::Uuid, Path, description = "The milestone's id."),
        ("If-Match" = Option<String>, Header, nullable = false, description = "The ETag you read."),
    ),
    request_body = CancelMilestone,
    responses((status = 200, body = Milestone, headers(("ETag" = String))), WriteProblems),
    security(("bearer" = []))
)]
#[post("/milestones/{milestone_id}/cancel")]
pub async fn cancel_milestone(
    state: web::Data<AppState>,
    actor: Actor,
    req: HttpRequest,
    path: web::Path<MilestoneId>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    actor.require(Permission::WriteItems)?;
    let body: CancelMilestone = json_body(&req, payload).await?;
    edit(
        state,
        actor,
        &req,
        path.into_inner(),
        MilestoneEdit::Cancel(body.reason),
    )
    .await
}

/// A status change of an item.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransitionBody {
    /// The new status.
    pub to: ItemStatus,
    /// What was done, or why (required for completed, deferred and reopening).
    #[serde(default)]
    #[validate(length(min = 1, max = "NARRATIVE"))]
    #[schema(min_length = 1, max_length = 2000)]
    pub comment: Option<String>,
    /// For `completed`: the completion date (not in the future).
    #[serde(default)]
    pub completed_on: Option<NaiveDate>,
    /// For `deferred`: the new target date (becomes the scheduled completion).
    #[serde(default)]
    pub target_date: Option<NaiveDate>,
}

impl crate::input::ObjectMembers for TransitionBody {}
impl crate::input::ObjectMembers for NewMilestone {}
impl crate::input::ObjectMembers for MilestonePatch {}
impl crate::input::ObjectMembers for CompleteMilestone {}
impl crate::input::ObjectMembers for CancelMilestone {}
impl crate::input::ObjectMembers for NewReview {}

/// Move an item to another status; each refusal names the rule it enforces.
///
/// - `in_progress`, `completed`: a scheduled completion date and at least one milestone;
/// - `completed`: a completion date not in the future, a comment, at least one piece of evidence;
/// - `closed` (approver): an approved closure-verification review, recorded after completion by
///   an approver who neither implemented the fix nor marked the item completed;
/// - `risk_accepted` (approver): an approved risk-acceptance review, a residual-risk
///   justification, no open milestones; refused under CMMC;
/// - `deferred`: a reason and a new target date; `closed` → `open`: a reason.
#[utoipa::path(
    operation_id = "transition_item",
    tag = "items",
    params(
        ("item_id" = uuid::Uuid, Path, description = "The item's id."),
        ("If-Match" = Option<String>, Header, nullable = false, description = "The item's ETag you read."),
    ),
    request_body(content = TransitionBody, example = json!({"to": "completed", "comment": "TLS 1.0 and 1.1 disabled; rescan clean.", "completed_on": "2026-11-20"})),
    responses((status = 200, body = Item, headers(("ETag" = String))), WriteProblems),
    security(("bearer" = []))
)]
#[post("/items/{item_id}/transitions")]
pub async fn transition(
    state: web::Data<AppState>,
    actor: Actor,
    req: HttpRequest,
    path: web::Path<ItemId>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    // Either role may ask; which one the transition needs is the domain's to say.
    actor.require_any(change::EDIT_OR_DECIDE)?;
    let id = path.into_inner();
    let expected = if_match(&req)?;
    let body: TransitionBody = json_body(&req, payload).await?;
    actor.require_any(change::transition_permissions(body.to))?;
    let request = Request {
        to: Some(body.to),
        comment: body.comment,
        completed_on: body.completed_on,
        target_date: body.target_date,
    };
    let item = state
        .write(move |conn| {
            store::transition(conn, id, &actor.scope, &expected, &actor.sub, &request)
        })
        .await?;
    Ok(versioned_item(StatusCode::OK, &item))
}

/// Reviews, newest first.
#[derive(Serialize, ToSchema)]
pub struct ReviewList {
    pub items: Vec<Review>,
    /// Pass as `cursor` to get the next (older) page; `null` on the last page.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

/// Paging of a review list.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ReviewListParams {
    /// Page size, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    #[param(max_length = 36)]
    cursor: Option<String>,
}

async fn review_page(
    state: &AppState,
    actor: Actor,
    req: &HttpRequest,
    target: ReviewTarget,
) -> Result<HttpResponse, ApiError> {
    let p = query::<ReviewListParams>(req)?;
    let limit = super::systems::page_limit(p.limit)?;
    let before = match p.cursor {
        Some(c) => Some(
            c.parse::<uuid::Uuid>()
                .map_err(|_| {
                    ApiError::invalid_param(
                        "cursor",
                        "invalid_cursor",
                        "this cursor was not issued for this list; start again without it",
                    )
                })?
                .to_string(),
        ),
        None => None,
    };
    let (items, more) = state
        .db(move |conn| store::list_reviews(conn, target, &actor.scope, before.as_deref(), limit))
        .await?;
    let next_cursor = if more {
        items.last().map(|r| r.id.to_string())
    } else {
        None
    };
    Ok(HttpResponse::Ok().json(ReviewList { items, next_cursor }))
}

fn review_permission(actor: &Actor, r: &NewReview) -> Result<(), ApiError> {
    actor.require_any(change::review_permissions(r.kind))
}

/// Record a review of the system's POA&M (periodic: editor; approvals: approver). Append-only.
#[utoipa::path(
    operation_id = "create_system_review",
    tag = "reviews",
    params(("system_id" = uuid::Uuid, Path, description = "The system's id.")),
    request_body(content = NewReview, example = json!({"kind": "periodic", "decision": "noted", "notes": "Monthly review: 3 items overdue.", "attendees": ["Morgan Reyes (ISSM)"], "action_items": ["Dana: rescan lb-prod-1"]})),
    responses((status = 201, body = Review, headers(("ETag" = String, description = "The review's version (reviews are append-only: always `\"1\"`)."), ("Location" = String))), WriteProblems),
    security(("bearer" = []))
)]
#[post("/systems/{system_id}/reviews")]
pub async fn create_system_review(
    state: web::Data<AppState>,
    actor: Actor,
    req: HttpRequest,
    path: web::Path<SystemId>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    actor.require(Permission::Read)?;
    let sid = path.into_inner();
    let body: NewReview = json_body(&req, payload).await?;
    review_permission(&actor, &body)?;
    let r = state
        .write(move |conn| {
            store::create_review(
                conn,
                ReviewTarget::System(sid),
                &actor.scope,
                &body,
                &actor.caller(),
                actor.name.as_deref(),
            )
        })
        .await?;
    Ok(created(&format!("/v1/systems/{sid}/reviews"), 1, &r))
}

/// Record a decision on one item: approval, closure verification, risk acceptance, deviation,
/// extension, DSS determination, vulnerability acceptance (approver), or a periodic note
/// (editor). Append-only: correct with `supersedes`.
///
/// `vulnerability_acceptance` (FedRAMP 2026, FRD-ACV; only on an item of a system under the
/// 2026 rules, else 422 `not_under_vdr`): `approved` sets the item's `evaluation.accepted` to
/// the explanation in `notes` (required, 422 `notes_required`), with the approver
/// (`decided_by`), the moment (`decided_at`) and this review (`review_id`), in the same
/// transaction and in the item's history as the approver's change, under the rules a `PATCH`
/// of `evaluation.accepted` follows (a frozen item: 409 `item_frozen`; no evaluation yet: 409
/// `evaluation_required`). A later acceptance replaces the earlier one. `rejected` withdraws
/// an acceptance an earlier acceptance review set; one set by a `PATCH` is refused with 409
/// `acceptance_not_from_review` (withdraw it with a `PATCH`).
#[utoipa::path(
    operation_id = "create_item_review",
    tag = "reviews",
    params(("item_id" = uuid::Uuid, Path, description = "The item's id.")),
    request_body(content = NewReview, example = json!({"kind": "closure_verification", "decision": "approved", "notes": "Rescan of lb-prod-1 shows TLS 1.2+ only.", "requested_by": "lee.park@example.org"})),
    responses((status = 201, body = Review, headers(("ETag" = String, description = "The review's version (reviews are append-only: always `\"1\"`)."), ("Location" = String))), WriteProblems),
    security(("bearer" = []))
)]
#[post("/items/{item_id}/reviews")]
pub async fn create_item_review(
    state: web::Data<AppState>,
    actor: Actor,
    req: HttpRequest,
    path: web::Path<ItemId>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    actor.require(Permission::Read)?;
    let iid = path.into_inner();
    let body: NewReview = json_body(&req, payload).await?;
    review_permission(&actor, &body)?;
    let r = state
        .write(move |conn| {
            store::create_review(
                conn,
                ReviewTarget::Item(iid),
                &actor.scope,
                &body,
                &actor.caller(),
                actor.name.as_deref(),
            )
        })
        .await?;
    Ok(created(&format!("/v1/items/{iid}/reviews"), 1, &r))
}

/// The reviews of a system's POA&M and of all its items, newest first.
#[utoipa::path(
    operation_id = "list_system_reviews",
    tag = "reviews",
    params(("system_id" = uuid::Uuid, Path, description = "The system's id."), ReviewListParams),
    responses((status = 200, body = ReviewList), ReadProblems),
    security(("bearer" = []))
)]
#[get("/systems/{system_id}/reviews")]
pub async fn list_system_reviews(
    state: web::Data<AppState>,
    actor: Actor,
    req: HttpRequest,
    path: web::Path<SystemId>,
) -> Result<HttpResponse, ApiError> {
    actor.require(Permission::Read)?;
    let sid = path.into_inner();
    review_page(&state, actor, &req, ReviewTarget::System(sid)).await
}

/// The reviews of one item, newest first.
#[utoipa::path(
    operation_id = "list_item_reviews",
    tag = "reviews",
    params(("item_id" = uuid::Uuid, Path, description = "The item's id."), ReviewListParams),
    responses((status = 200, body = ReviewList), ReadProblems),
    security(("bearer" = []))
)]
#[get("/items/{item_id}/reviews")]
pub async fn list_item_reviews(
    state: web::Data<AppState>,
    actor: Actor,
    req: HttpRequest,
    path: web::Path<ItemId>,
) -> Result<HttpResponse, ApiError> {
    actor.require(Permission::Read)?;
    let iid = path.into_inner();
    review_page(&state, actor, &req, ReviewTarget::Item(iid)).await
}
