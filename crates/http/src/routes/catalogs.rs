//! Catalogs an operator loads, offline (air-gapped sites load the files they downloaded
//! elsewhere): CISA's Known Exploited Vulnerabilities (JSON, checked against CISA's schema),
//! FIRST's EPSS scores (CSV, plain or gzip) and DISA's CCI list (`U_CCI_List.xml`). A new KEV
//! or EPSS catalog recomputes every item naming a CVE, and the deadlines KEV due dates set.

use super::docs::{ReadProblems, WriteProblems};
use crate::auth::Actor;
use crate::problem::{ApiError, FieldError};
use crate::protection::Heavy;
use crate::state::AppState;
use actix_web::{get, put, web, HttpRequest, HttpResponse};
use poam_domain::scan::catalogs;
use poam_domain::{Permission, SystemScope};
use poam_persistence::threats::{self as store, Kind};
use serde::Serialize;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

/// A loaded catalog.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Catalog {
    /// `kev`, `epss` or `cci`.
    pub kind: String,
    /// KEV `catalogVersion`; EPSS model version and score date; CCI list version.
    pub version: String,
    /// KEV `dateReleased`, EPSS `score_date`, CCI `publishdate`.
    #[schema(required = true)]
    pub released: Option<String>,
    pub entries: i64,
    /// SHA-256 of the file loaded, hex.
    pub sha256: String,
    pub loaded_by: String,
    pub loaded_at: chrono::DateTime<chrono::Utc>,
}

/// The answer to a load.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CatalogLoad {
    pub catalog: Catalog,
    /// Items whose KEV or EPSS marks changed (each got a new version).
    pub items_refreshed: usize,
    /// Of them, items whose deadline a KEV due date moved (recorded in their history).
    pub deadlines_moved: usize,
}

fn catalog_of(row: store::CatalogRow) -> Catalog {
    Catalog {
        kind: row.kind,
        version: row.version,
        released: row.released,
        entries: row.entries,
        sha256: row.sha256,
        loaded_by: row.loaded_by,
        loaded_at: chrono::DateTime::from_naive_utc_and_offset(row.loaded_at, chrono::Utc),
    }
}

/// Catalogs are the whole service's: an admin of every system loads them.
fn require_operator(actor: &Actor) -> Result<(), ApiError> {
    actor.require(Permission::ManageSystems)?;
    if actor.scope != SystemScope::All {
        return Err(ApiError::Forbidden(
            "catalogs serve every system: loading one takes an admin of all systems".into(),
        ));
    }
    Ok(())
}

fn refused(kind: &str, errors: Vec<catalogs_error::Error>) -> ApiError {
    let detail = match errors.first() {
        Some(e) => format!(
            "the {kind} file is not valid at {}: {} ({} problem{}; nothing was loaded)",
            e.place,
            e.message,
            errors.len(),
            if errors.len() == 1 { "" } else { "s" }
        ),
        None => format!("the {kind} file is not valid (nothing was loaded)"),
    };
    ApiError::Unprocessable {
        code: "invalid_catalog",
        detail,
        errors: errors
            .into_iter()
            .map(|e| FieldError::at_place(e.place, "invalid", e.message))
            .collect(),
    }
}

mod catalogs_error {
    pub type Error = poam_domain::scan::ParseError;
}

async fn load(
    state: web::Data<AppState>,
    actor: Actor,
    req: HttpRequest,
    payload: web::Payload,
    kind: Kind,
) -> Result<HttpResponse, ApiError> {
    require_operator(&actor)?;
    let limit = state.scan_limit.min(512 << 20);
    let _pass = state.protection.enter(
        Heavy::Write,
        &actor.sub,
        crate::protection::json_reservation(&req, limit).min(1 << 30),
    )?;
    let bytes =
        Vec::from(crate::input::read_body_within(&req, &mut payload.into_inner(), limit).await?);
    let sha256 = crate::idempotency::hex(&Sha256::digest(&bytes));
    let actor_sub = actor.sub.clone();
    let (row, refreshed) = match kind {
        Kind::Kev => {
            let cat = web::block(move || catalogs::read_kev(&bytes))
                .await
                .map_err(|_| ApiError::Internal)?
                .map_err(|e| refused("KEV", e))?;
            state
                .db(move |conn| {
                    let r = store::load_kev(conn, &cat, &sha256, &actor_sub)?;
                    Ok((row_of(conn, Kind::Kev)?, r))
                })
                .await?
        }
        Kind::Epss => {
            let cat = web::block(move || catalogs::read_epss(&bytes))
                .await
                .map_err(|_| ApiError::Internal)?
                .map_err(|e| refused("EPSS", vec![e]))?;
            state
                .db(move |conn| {
                    let r = store::load_epss(conn, &cat, &sha256, &actor_sub)?;
                    Ok((row_of(conn, Kind::Epss)?, r))
                })
                .await?
        }
        Kind::Cci => {
            let cat = web::block(move || catalogs::read_cci(std::io::Cursor::new(bytes)))
                .await
                .map_err(|_| ApiError::Internal)?
                .map_err(|e| refused("CCI", vec![e]))?;
            state
                .db(move |conn| {
                    store::load_cci(conn, &cat, &sha256, &actor_sub)?;
                    Ok((row_of(conn, Kind::Cci)?, store::Refreshed::default()))
                })
                .await?
        }
    };
    Ok(HttpResponse::Ok().json(CatalogLoad {
        catalog: catalog_of(row),
        items_refreshed: refreshed.items,
        deadlines_moved: refreshed.deadlines,
    }))
}

fn row_of(
    conn: &mut poam_persistence::DbConnection,
    kind: Kind,
) -> Result<store::CatalogRow, poam_persistence::StoreError> {
    store::list(conn)?
        .into_iter()
        .find(|r| r.kind == kind.as_str())
        .ok_or(poam_persistence::StoreError::NotFound)
}

/// Load CISA's Known Exploited Vulnerabilities catalog (admin of all systems).
///
/// The body is CISA's `known_exploited_vulnerabilities.json`, checked against CISA's published
/// JSON Schema's requirements (every violation named by its JSON pointer; nothing loaded if
/// any). It replaces the loaded catalog; every item naming one of its CVEs shows `kev` (date
/// added, due date, ransomware use), lists filter by `kev=true`, the FedRAMP template fills
/// its BOD 22-01 columns, and where the system's `scans.kev_deadlines` holds (FedRAMP's
/// default) an earlier KEV due date becomes the item's deadline (`deadline_rule`
/// `kev:CVE-…`), never replacing a date a person set; each moved deadline is recorded.
#[utoipa::path(
    operation_id = "put_kev",
    tag = "catalogs",
    request_body(description = "CISA's KEV JSON.", content((super::docs::JsonObject = "application/json"))),
    responses(
        (status = 200, description = "Loaded; what it changed.", body = CatalogLoad),
        WriteProblems,
    ),
    security(("bearer" = []))
)]
#[put("/catalogs/kev")]
pub async fn put_kev(
    state: web::Data<AppState>,
    actor: Actor,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    load(state, actor, req, payload, Kind::Kev).await
}

/// Load FIRST's EPSS scores (admin of all systems).
///
/// The body is FIRST's daily `epss_scores-current.csv`, plain or gzip-compressed (as
/// downloaded): the `#model_version:…,score_date:…` line, then `cve,epss,percentile`. It
/// replaces the loaded scores; items show `epss` (score and percentile of their highest-scored
/// CVE) and lists sort by `epss`.
#[utoipa::path(
    operation_id = "put_epss",
    tag = "catalogs",
    request_body(description = "FIRST's EPSS CSV, plain or gzip-compressed as downloaded (recognised by its magic bytes, whatever the Content-Type).", content((super::docs::Binary = "text/csv"))),
    responses(
        (status = 200, description = "Loaded; what it changed.", body = CatalogLoad),
        WriteProblems,
    ),
    security(("bearer" = []))
)]
#[put("/catalogs/epss")]
pub async fn put_epss(
    state: web::Data<AppState>,
    actor: Actor,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    load(state, actor, req, payload, Kind::Epss).await
}

/// Load DISA's CCI list (admin of all systems).
///
/// The body is DISA's `U_CCI_List.xml`. Each CCI maps to the NIST SP 800-53 controls of the
/// newest revision it references; STIG checklist findings (CKL, CKLB) then take the controls
/// of their CCIs. The project does not ship DISA's file: the operator loads the version they
/// use, and it is shown here and in every checklist import's answer.
#[utoipa::path(
    operation_id = "put_cci",
    tag = "catalogs",
    request_body(description = "DISA's U_CCI_List.xml.", content((super::docs::Binary = "application/xml"))),
    responses(
        (status = 200, description = "Loaded.", body = CatalogLoad),
        WriteProblems,
    ),
    security(("bearer" = []))
)]
#[put("/catalogs/cci")]
pub async fn put_cci(
    state: web::Data<AppState>,
    actor: Actor,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    load(state, actor, req, payload, Kind::Cci).await
}

/// The loaded catalogs, with their versions (viewer).
#[utoipa::path(
    operation_id = "list_catalogs",
    tag = "catalogs",
    responses(
        (status = 200, description = "The loaded catalogs.", body = Vec<Catalog>),
        ReadProblems,
    ),
    security(("bearer" = []))
)]
#[get("/catalogs")]
pub async fn list_catalogs(
    state: web::Data<AppState>,
    actor: Actor,
) -> Result<HttpResponse, ApiError> {
    actor.require(Permission::Read)?;
    let rows = state.db(store::list).await?;
    Ok(HttpResponse::Ok().json(rows.into_iter().map(catalog_of).collect::<Vec<_>>()))
}
