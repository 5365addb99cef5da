//! `/v1/systems/{system_id}/items` and `/v1/items/{item_id}`: the weaknesses and their plans.

use super::docs::{ItemPatch, ListProblems, ReadProblems, WriteProblems};
use super::systems::{cursor, page_limit};
use super::{located, versioned_item};
use crate::auth::Actor;
use crate::input::{apply_patch, if_match, json_body, merge_patch_body, query};
use crate::problem::ApiError;
use crate::state::AppState;
use actix_web::http::StatusCode;
use actix_web::{delete, get, patch, post, web, HttpRequest, HttpResponse};
use chrono::NaiveDate;
use poam_domain::change::{self, Origin};
use poam_domain::controls::normalize_control;
use poam_domain::{
    Item, ItemFields, ItemId, ItemStatus, Permission, RiskRating, SourceKind, SystemId,
};
use poam_persistence::items::{self, ItemQuery, ItemSort};
use poam_persistence::StoreError;
use serde::{Deserialize, Serialize};
use std::str::FromStr;
use utoipa::{IntoParams, ToSchema};

/// A page of items.
#[derive(Serialize, ToSchema)]
pub struct ItemPage {
    pub items: Vec<Item>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

/// Filters, sort and paging of the item list. Archived items are left out unless asked for.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ItemListParams {
    /// Statuses to include: repeat the parameter (`status=open&status=in_progress`) or separate them
    /// with commas (`open,in_progress`); both forms may be mixed.
    #[param(value_type = Option<Vec<ItemStatus>>, style = Form, explode = true)]
    status: Option<String>,
    /// Original risk ratings to include: repeat the parameter (`risk_rating=critical&risk_rating=high`) or separate them
    /// with commas (`critical,high`); both forms may be mixed.
    #[param(value_type = Option<Vec<RiskRating>>, style = Form, explode = true)]
    risk_rating: Option<String>,
    /// Source kinds to include: repeat the parameter (`source=scan&source=pen_test`) or separate them
    /// with commas (`scan,pen_test`); both forms may be mixed.
    #[param(value_type = Option<Vec<SourceKind>>, style = Form, explode = true)]
    source: Option<String>,
    /// Items mapped to this control (`AC-2`, `3.1.1`, `AC.L2-3.1.1`; case-insensitive).
    #[param(
        max_length = 50,
        pattern = r"^\s*([A-Za-z]{2}-[0-9]{1,2}(\([0-9]{1,2}\))?|3\.[0-9]{1,2}\.[0-9]{1,2}|[A-Za-z]{2}\.[Ll][1-3]-3\.[0-9]{1,2}\.[0-9]{1,2})\s*$"
    )]
    control: Option<String>,
    /// Items whose owner has this name or e-mail (case-insensitive, exact).
    #[param(max_length = 100)]
    owner: Option<String>,
    /// The item with this external id (the sync key).
    #[param(max_length = 100)]
    external_id: Option<String>,
    /// `true`: only unresolved items past their scheduled completion date; `false`: none of them.
    overdue: Option<bool>,
    /// `true`: only unresolved items overdue for longer than the escalation grace
    /// (`POAM_ESCALATION_GRACE_DAYS`, default 14 days); `false`: none of them.
    escalated: Option<bool>,
    /// Scheduled completion on or before this date.
    due_before: Option<NaiveDate>,
    /// Scheduled completion on or after this date.
    due_after: Option<NaiveDate>,
    /// Case-insensitive text in the display id, title, description, external id, source
    /// identifier, controls, CVEs or assets.
    #[param(max_length = 200)]
    q: Option<String>,
    /// Include archived items.
    include_archived: Option<bool>,
    /// `true`: only items one of whose CVEs is in the loaded KEV catalog; `false`: none of them.
    kev: Option<bool>,
    /// `true`: only items a scan covering their host no longer reports (closure candidates);
    /// `false`: none of them.
    not_seen: Option<bool>,
    /// Sort key, `-` for descending: `display_id` (default), `created_at`, `updated_at`,
    /// `detected_on`, `scheduled_completion` (undated last), `risk_rating` (`-risk_rating`:
    /// most severe first), `epss` (`-epss`: most likely exploited first; items without a score
    /// last).
    #[param(
        pattern = "^-?(display_id|created_at|updated_at|detected_on|scheduled_completion|risk_rating|epss)$"
    )]
    sort: Option<String>,
    /// Page size, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
    /// The `next_cursor` of the previous page (same filters and sort).
    cursor: Option<String>,
}

/// Parses a comma-separated list of vocabulary words.
fn words<T: FromStr>(name: &str, raw: Option<&str>) -> Result<Vec<T>, ApiError>
where
    T::Err: std::fmt::Display,
{
    raw.unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|w| !w.is_empty())
        .map(|w| {
            w.parse()
                .map_err(|e: T::Err| ApiError::invalid_param(name, "invalid_value", e.to_string()))
        })
        .collect()
}

pub(crate) fn bounded(
    name: &str,
    value: Option<String>,
    max: usize,
) -> Result<Option<String>, ApiError> {
    match value {
        Some(v) if v.chars().count() > max => Err(ApiError::invalid_param(
            name,
            "invalid_length",
            format!("must have at most {max} characters"),
        )),
        Some(v) if v.is_empty() => Ok(None),
        other => Ok(other),
    }
}

impl ItemListParams {
    /// The list parameters: repeated or comma-separated.
    const LISTS: &'static [&'static str] = &["status", "risk_rating", "source"];

    fn into_query(self) -> Result<ItemQuery, ApiError> {
        let control = self
            .control
            .map(|c| {
                if c.chars().count() > 50 {
                    return Err(ApiError::invalid_param(
                        "control",
                        "invalid_length",
                        "must have at most 50 characters",
                    ));
                }
                normalize_control(&c).ok_or_else(|| {
                    ApiError::invalid_param(
                        "control",
                        "invalid_control",
                        format!("`{c}` is not a control reference"),
                    )
                })
            })
            .transpose()?;
        let sort = match self.sort.as_deref() {
            None => ItemSort::default(),
            Some(s) => s.parse().map_err(|_| {
                ApiError::invalid_param(
                    "sort",
                    "invalid_value",
                    format!(
                        "`{s}` is not a sort; use one of {} (prefix `-` to descend)",
                        ItemSort::WORDS.join(", ")
                    ),
                )
            })?,
        };
        let after = cursor(self.cursor.as_deref())?;
        if after.as_ref().is_some_and(|c| c.sort != sort.to_string()) {
            return Err(ApiError::invalid_param(
                "cursor",
                "invalid_cursor",
                "this cursor belongs to another sort; start again without it",
            ));
        }
        for (name, d) in [
            ("due_before", self.due_before),
            ("due_after", self.due_after),
        ] {
            if d.is_some_and(|d| !poam_domain::rules::date_in_range(d)) {
                return Err(ApiError::invalid_param(
                    name,
                    "date_out_of_range",
                    "the year must lie in 1900..=9999",
                ));
            }
        }
        Ok(ItemQuery {
            statuses: words("status", self.status.as_deref())?,
            risk_ratings: words("risk_rating", self.risk_rating.as_deref())?,
            sources: words("source", self.source.as_deref())?,
            control,
            owner: bounded("owner", self.owner, 100)?,
            external_id: bounded("external_id", self.external_id, 100)?,
            overdue: self.overdue,
            escalated: self.escalated,
            due_before: self.due_before,
            due_after: self.due_after,
            q: bounded("q", self.q, 200)?,
            include_archived: self.include_archived.unwrap_or(false),
            kev: self.kev,
            not_seen: self.not_seen,
            sort,
            limit: page_limit(self.limit)?,
            after,
        })
    }
}

fn today() -> NaiveDate {
    chrono::Utc::now().date_naive()
}

/// Record a weakness in a system (editor).
///
/// The server assigns the display id (`POAM-0001`, … unique within the system, never reused),
/// normalises control and CVE ids, and checks the dates (nothing that happened is dated in the
/// future; nothing is scheduled, completed or closed before its detection).
#[utoipa::path(
    operation_id = "create_item",
    tag = "items",
    params(("system_id" = uuid::Uuid, Path, description = "The system's id.")),
    request_body(
        content = ItemFields,
        description = "The weakness. Required: `title`, `description`, `risk_rating`, `detected_on`, `source.kind`.",
        example = json!({
            "external_id": "grc-48213",
            "title": "TLS 1.0 enabled on the public load balancer",
            "description": "The load balancer accepts TLS 1.0 and 1.1 handshakes.",
            "controls": ["SC-8(1)", "3.13.8"],
            "source": {"kind": "scan", "detector": "Tenable Nessus", "identifier": "plugin 104743"},
            "cves": ["CVE-2011-3389"],
            "assets": ["lb-prod-1.example.org"],
            "risk_rating": "high",
            "owner": {"name": "Dana Whitfield", "email": "dana.whitfield@example.org"},
            "remediation_plan": "Disable TLS below 1.2 in the listener policy and rescan.",
            "detected_on": "2026-10-01",
            "scheduled_completion": "2026-10-31"
        })
    ),
    responses(
        (status = 201, description = "Created.", body = Item,
         headers(("ETag" = String, description = "The version, for If-Match."), ("Location" = String))),
        WriteProblems,
    ),
    security(("bearer" = []))
)]
#[post("/systems/{system_id}/items")]
pub async fn create_item(
    state: web::Data<AppState>,
    actor: Actor,
    req: HttpRequest,
    path: web::Path<SystemId>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    actor.require(Permission::WriteItems)?;
    let system_id = path.into_inner();
    let fields: ItemFields = json_body(&req, payload).await?;
    let fields = change::create(fields, &actor.caller(), Origin::API, today())
        .map_err(StoreError::from)?
        .fields;
    if !actor.scope.allows(system_id) {
        return Err(ApiError::from(StoreError::NotFound));
    }
    let item = state
        .create_item(
            system_id,
            items::NewItem {
                fields,
                actor: actor.sub,
                seen: None,
            },
        )
        .await?;
    Ok(located(
        versioned_item(StatusCode::CREATED, &item),
        &format!("/v1/items/{}", item.id),
    ))
}

/// List a system's items: filters, sort and keyset pagination.
///
/// Pages are stable while items are added: a page starts strictly after the last item of the
/// previous one.
#[utoipa::path(
    operation_id = "list_items",
    tag = "items",
    params(("system_id" = uuid::Uuid, Path, description = "The system's id."), ItemListParams),
    responses((status = 200, body = ItemPage), ListProblems),
    security(("bearer" = []))
)]
#[get("/systems/{system_id}/items")]
pub async fn list_items(
    state: web::Data<AppState>,
    actor: Actor,
    req: HttpRequest,
    path: web::Path<SystemId>,
) -> Result<HttpResponse, ApiError> {
    actor.require(Permission::Read)?;
    let system_id = path.into_inner();
    let q = crate::input::query_with_lists::<ItemListParams>(&req, ItemListParams::LISTS)?
        .into_query()?;
    let page = state
        .db(move |conn| items::list(conn, system_id, &actor.scope, &q))
        .await?;
    // As `ItemPage` renders, written by hand (see `crate::render`).
    let mut json = Vec::with_capacity(1024 + 2048 * page.rows.len());
    crate::render::item_page(&mut json, &page.rows, page.next_cursor.as_deref())
        .map_err(|_| ApiError::Internal)?;
    Ok(HttpResponse::Ok()
        .insert_header(actix_web::http::header::ContentType::json())
        .body(json))
}

/// Get an item.
#[utoipa::path(
    operation_id = "get_item",
    tag = "items",
    params(("item_id" = uuid::Uuid, Path, description = "The item's id.")),
    responses(
        (status = 200, body = Item, headers(("ETag" = String, description = "The version, for If-Match."))),
        ReadProblems,
    ),
    security(("bearer" = []))
)]
#[get("/items/{item_id}")]
pub async fn get_item(
    state: web::Data<AppState>,
    actor: Actor,
    path: web::Path<ItemId>,
) -> Result<HttpResponse, ApiError> {
    read_item(&state, actor, path.into_inner()).await
}

/// What `GET /v1/items/{item_id}` answers, routed or not (see `crate::app::hot_routes`).
pub(crate) async fn read_item(
    state: &AppState,
    actor: Actor,
    id: ItemId,
) -> Result<HttpResponse, ApiError> {
    actor.require(Permission::Read)?;
    let cache = &state.item_cache;
    if !cache.enabled() {
        // Boxed by the store (`items::get`): the item travels up as a pointer.
        let item = state
            .read(move |conn| items::get(conn, id, &actor.scope))
            .await?;
        return Ok(versioned_item(StatusCode::OK, &item));
    }
    // A kept rendering answers only for the row as it stands now, asked on this request (see
    // `crate::item_cache`).
    let candidate = cache.candidate(id);
    let read = state
        .read(move |conn| items::get_or_cached(conn, id, &actor.scope, candidate))
        .await?;
    let (item, stamp) = match read {
        items::Read::Cached {
            answer,
            stamp,
            system,
            renewed,
        } => {
            cache.count(true);
            if let Some(seen) = renewed {
                cache.count_recheck();
                // Kept under the new count (a `Bytes` clone shares the rendering).
                cache.put(id, system, stamp, seen, answer.clone());
            }
            return Ok(super::versioned_body(StatusCode::OK, stamp.version, answer));
        }
        items::Read::Item(item, stamp) => (item, stamp),
    };
    let mut json = Vec::with_capacity(4096);
    crate::render::item(&mut json, &item).map_err(|_| ApiError::Internal)?;
    // Only a read that could have been kept (SQLite) counts as a miss.
    if stamp.is_some() {
        cache.count(false);
    }
    // A FedRAMP 2026 status is read to the hour: not kept.
    let Some((stamp, seen)) = stamp.filter(|_| item.vdr.is_none()) else {
        return Ok(super::versioned_body(
            StatusCode::OK,
            item.version,
            json.into(),
        ));
    };
    // Kept at its length: the cache counts the bytes it holds.
    json.shrink_to_fit();
    let body = actix_web::web::Bytes::from(json);
    cache.put(id, item.system_id, stamp, seen, body.clone());
    Ok(super::versioned_body(StatusCode::OK, item.version, body))
}

/// Update an item with a JSON merge patch (editor).
///
/// The patched item is validated as a whole, exactly as on create. Read-only fields (`id`,
/// `display_id`, `version`, …) are refused by name.
#[utoipa::path(
    operation_id = "update_item",
    tag = "items",
    params(
        ("item_id" = uuid::Uuid, Path, description = "The item's id."),
        ("If-Match" = Option<String>, Header, nullable = false, description = "The ETag you read; the update is refused with 412 if the item changed since."),
    ),
    request_body(
        content = ItemPatch,
        content_type = "application/merge-patch+json",
        example = json!({"owner": {"email": "dana.w@example.org"}, "interim_mitigation": "WAF rule blocks legacy ciphers.", "comments": null})
    ),
    responses(
        (status = 200, body = Item, headers(("ETag" = String, description = "The new version."))),
        WriteProblems,
    ),
    security(("bearer" = []))
)]
#[patch("/items/{item_id}")]
pub async fn update_item(
    state: web::Data<AppState>,
    actor: Actor,
    req: HttpRequest,
    path: web::Path<ItemId>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    actor.require(Permission::WriteItems)?;
    let id = path.into_inner();
    let expected = if_match(&req)?;
    let patch = merge_patch_body(&req, payload).await?;
    let caller = actor.caller();
    let item = state
        .write(move |conn| {
            items::update(conn, id, &actor.scope, &expected, &actor.sub, |current| {
                let next = apply_patch(
                    &current.fields(),
                    &patch,
                    poam_domain::item::READ_ONLY_FIELDS,
                )
                .map_err(StoreError::Invalid)?;
                // An acceptance (FRD-ACV) records its approver and this moment.
                let decided = change::Decided {
                    at: chrono::Utc::now(),
                    review: None,
                };
                Ok(change::update_decided(
                    current,
                    next,
                    &caller,
                    Origin::API,
                    today(),
                    Some(&decided),
                )?
                .fields)
            })
        })
        .await?;
    Ok(versioned_item(StatusCode::OK, &item))
}

/// Why an item is archived: the JSON body of `DELETE /v1/items/{id}` (or `?reason=`).
#[derive(Debug, Deserialize, validator::Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ArchiveBody {
    #[validate(length(min = 1, max = 2000))]
    #[schema(min_length = 1, max_length = 2000, example = "Duplicate of POAM-0042")]
    pub reason: String,
}

impl crate::input::ObjectMembers for ArchiveBody {}

/// The query of `DELETE /v1/items/{id}`.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ArchiveParams {
    /// Why the item is archived (or send it as `{"reason": …}`).
    #[param(max_length = 2000)]
    reason: Option<String>,
}

/// Archive an item: kept with its history, hidden from default lists and reports, frozen.
///
/// A resolved item (completed, closed, risk accepted) may be archived by an editor or an
/// approver. An unresolved one (open, in progress, deferred) leaves every report, so archiving
/// it is an approver's decision (`archive_needs_approver`) and needs a reason
/// (`reason_required`), given as `?reason=…` or a JSON body `{"reason": …}`. The reason is kept
/// on the item (`archive_reason`) and in the history event.
#[utoipa::path(
    operation_id = "archive_item",
    tag = "items",
    params(
        ("item_id" = uuid::Uuid, Path, description = "The item's id."),
        ("If-Match" = Option<String>, Header, nullable = false, description = "The ETag you read; refused with 412 if the item changed since."),
        ArchiveParams,
    ),
    request_body(content = Option<ArchiveBody>, description = "Optional: the reason, instead of `?reason=`."),
    responses(
        (status = 200, description = "Archived (or already archived).", body = Item, headers(("ETag" = String))),
        WriteProblems,
    ),
    security(("bearer" = []))
)]
#[delete("/items/{item_id}")]
pub async fn archive_item(
    state: web::Data<AppState>,
    actor: Actor,
    req: HttpRequest,
    path: web::Path<ItemId>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    actor.require_any(change::EDIT_OR_DECIDE)?;
    let id = path.into_inner();
    let expected = if_match(&req)?;
    let from_query = bounded("reason", query::<ArchiveParams>(&req)?.reason, 2000)?;
    let has_body = req
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim() != "0")
        || req
            .headers()
            .contains_key(actix_web::http::header::TRANSFER_ENCODING);
    let from_body = if has_body {
        Some(json_body::<ArchiveBody>(&req, payload).await?.reason)
    } else {
        None
    };
    let reason = match (from_query, from_body) {
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request(
                "reason_twice",
                "give the reason once: as ?reason= or as the JSON body, not both",
            ))
        }
        (q, b) => q.or(b),
    };
    let caller = actor.caller();
    let item = state
        .write(move |conn| {
            items::archive(
                conn,
                id,
                &actor.scope,
                &expected,
                &actor.sub,
                reason.as_deref(),
                |current| Ok(change::archive(current, &caller, reason.as_deref())?),
            )
        })
        .await?;
    Ok(versioned_item(StatusCode::OK, &item))
}
