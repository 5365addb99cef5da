//! `/v1/systems`: the systems whose POA&Ms this service keeps.

use super::docs::{ListProblems, ReadProblems, SystemPatch, WriteProblems};
use super::{created, versioned};
use crate::auth::Actor;
use crate::input::{apply_patch, if_match, json_body, merge_patch_body, query};
use crate::problem::ApiError;
use crate::state::AppState;
use actix_web::http::StatusCode;
use actix_web::{delete, get, patch, post, web, HttpRequest, HttpResponse};
use poam_domain::rules::check_system;
use poam_domain::{Permission, Regime, System, SystemFields, SystemId};
use poam_persistence::page::Cursor;
use poam_persistence::systems::{self, SystemQuery};
use poam_persistence::StoreError;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// A page of systems.
#[derive(Serialize, ToSchema)]
pub struct SystemPage {
    pub items: Vec<System>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

/// Filters and paging of the system list (oldest first).
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SystemListParams {
    /// Only systems under this regime.
    regime: Option<Regime>,
    /// Substring of the name (case-insensitive).
    #[param(max_length = 250)]
    name: Option<String>,
    /// Include archived systems.
    include_archived: Option<bool>,
    /// Page size, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
}

pub(crate) fn page_limit(limit: Option<i64>) -> Result<i64, ApiError> {
    match limit {
        None => Ok(50),
        Some(n @ 1..=200) => Ok(n),
        Some(_) => Err(ApiError::invalid_param(
            "limit",
            "out_of_range",
            "must be between 1 and 200",
        )),
    }
}

pub(crate) fn cursor(text: Option<&str>) -> Result<Option<Cursor>, ApiError> {
    text.filter(|t| !t.is_empty())
        .map(|t| {
            Cursor::decode(t).ok_or_else(|| {
                ApiError::invalid_param(
                    "cursor",
                    "invalid_cursor",
                    "not a cursor this service issued",
                )
            })
        })
        .transpose()
}

fn checked(fields: SystemFields) -> Result<SystemFields, StoreError> {
    check_system(fields).map_err(StoreError::Invalid)
}

/// Create a system (admin).
#[utoipa::path(
    operation_id = "create_system",
    tag = "systems",
    request_body(
        content = SystemFields,
        description = "The system and its POA&M header. Required: `name`.",
        example = json!({
            "name": "Acme Cloud Payroll",
            "organization": "Acme Corporation",
            "cage_codes": ["1ABC2"],
            "impact_level": "moderate",
            "regime": "fedramp",
            "contacts": {
                "system_owner": {"name": "Ada Byron", "email": "ada@example.org"},
                "issm": {"name": "Morgan Reyes", "email": "morgan.reyes@example.org", "phone": "+1 555 0100"}
            }
        })
    ),
    responses(
        (status = 201, description = "Created.", body = System,
         headers(("ETag" = String, description = "The version, for If-Match."), ("Location" = String))),
        WriteProblems,
    ),
    security(("bearer" = []))
)]
#[post("/systems")]
pub async fn create_system(
    state: web::Data<AppState>,
    actor: Actor,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    actor.require(Permission::ManageSystems)?;
    let fields = checked(json_body::<SystemFields>(&req, payload).await?)?;
    let system = state
        .write(move |conn| systems::create(conn, &fields, &actor.sub))
        .await?;
    Ok(created(
        &format!("/v1/systems/{}", system.id),
        system.version,
        &system,
    ))
}

/// List the systems the token may see.
#[utoipa::path(
    operation_id = "list_systems",
    tag = "systems",
    params(SystemListParams),
    responses((status = 200, body = SystemPage), ListProblems),
    security(("bearer" = []))
)]
#[get("/systems")]
pub async fn list_systems(
    state: web::Data<AppState>,
    actor: Actor,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    actor.require(Permission::Read)?;
    let p: SystemListParams = query(&req)?;
    let q = SystemQuery {
        regime: p.regime,
        name: super::items::bounded("name", p.name, 250)?,
        include_archived: p.include_archived.unwrap_or(false),
        limit: page_limit(p.limit)?,
        after: cursor(p.cursor.as_deref())?,
    };
    let page = state
        .db(move |conn| systems::list(conn, &q, &actor.scope))
        .await?;
    Ok(HttpResponse::Ok().json(SystemPage {
        items: page.rows,
        next_cursor: page.next_cursor,
    }))
}

/// Get a system.
#[utoipa::path(
    operation_id = "get_system",
    tag = "systems",
    params(("system_id" = uuid::Uuid, Path, description = "The system's id.")),
    responses(
        (status = 200, body = System, headers(("ETag" = String, description = "The version, for If-Match."))),
        ReadProblems,
    ),
    security(("bearer" = []))
)]
#[get("/systems/{system_id}")]
pub async fn get_system(
    state: web::Data<AppState>,
    actor: Actor,
    path: web::Path<SystemId>,
) -> Result<HttpResponse, ApiError> {
    actor.require(Permission::Read)?;
    let id = path.into_inner();
    let system = state
        .read(move |conn| systems::get(conn, id, &actor.scope))
        .await?;
    Ok(versioned(StatusCode::OK, system.version, &system))
}

/// Update a system with a JSON merge patch (admin).
#[utoipa::path(
    operation_id = "update_system",
    tag = "systems",
    params(
        ("system_id" = uuid::Uuid, Path, description = "The system's id."),
        ("If-Match" = Option<String>, Header, nullable = false, description = "The ETag you read; the update is refused with 412 if the system changed since."),
    ),
    request_body(
        content = SystemPatch,
        content_type = "application/merge-patch+json",
        example = json!({"contacts": {"alternate_issm": {"name": "Lee Park"}}, "organization": null})
    ),
    responses(
        (status = 200, body = System, headers(("ETag" = String, description = "The new version."))),
        WriteProblems,
    ),
    security(("bearer" = []))
)]
#[patch("/systems/{system_id}")]
pub async fn update_system(
    state: web::Data<AppState>,
    actor: Actor,
    req: HttpRequest,
    path: web::Path<SystemId>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    actor.require(Permission::ManageSystems)?;
    let id = path.into_inner();
    let expected = if_match(&req)?;
    let patch = merge_patch_body(&req, payload).await?;
    let system = state
        .write(move |conn| {
            systems::update(conn, id, &actor.scope, &expected, &actor.sub, |current| {
                let next = apply_patch(
                    &current.fields(),
                    &patch,
                    poam_domain::system::READ_ONLY_FIELDS,
                )
                .map_err(StoreError::Invalid)?;
                checked(next)
            })
        })
        .await?;
    Ok(versioned(StatusCode::OK, system.version, &system))
}

/// Archive a system (admin): kept with its items and history, hidden from default lists, frozen.
#[utoipa::path(
    operation_id = "archive_system",
    tag = "systems",
    params(
        ("system_id" = uuid::Uuid, Path, description = "The system's id."),
        ("If-Match" = Option<String>, Header, nullable = false, description = "The ETag you read; refused with 412 if the system changed since."),
    ),
    responses(
        (status = 200, description = "Archived (or already archived).", body = System, headers(("ETag" = String))),
        WriteProblems,
    ),
    security(("bearer" = []))
)]
#[delete("/systems/{system_id}")]
pub async fn archive_system(
    state: web::Data<AppState>,
    actor: Actor,
    req: HttpRequest,
    path: web::Path<SystemId>,
) -> Result<HttpResponse, ApiError> {
    actor.require(Permission::ManageSystems)?;
    let id = path.into_inner();
    let expected = if_match(&req)?;
    let system = state
        .write(move |conn| systems::archive(conn, id, &actor.scope, &expected, &actor.sub))
        .await?;
    Ok(versioned(StatusCode::OK, system.version, &system))
}
