//! Spreadsheet imports: the FedRAMP POA&M template and the eMASS POA&M template, as the raw
//! request body (xlsx, or CSV), so `curl --data-binary @poam.xlsx` works.
//!
//! The workbook is checked before it is read: its ZIP container's entries and their sizes
//! (declared, then verified while inflating, never past the bound) so a zip bomb is refused
//! before calamine sees it; then calamine reads values only, and a formula anywhere refuses
//! the workbook, every formula cell named. The domain's `sheet_import` maps the sheets; every
//! row goes through the same decisions as every other write path (`change::create`,
//! `change::update`, `change::import_milestone`) in one transaction.

use super::docs::WriteProblems;
use crate::auth::Actor;
use crate::input::{parse_fields, query};
use crate::problem::{ApiError, FieldError, Problem};
use crate::protection::Heavy;
use crate::state::AppState;
use actix_web::http::header;
use actix_web::{post, web, HttpRequest, HttpResponse};
use poam_domain::change::{self, Channel, Origin};
use poam_domain::exchange::sheet_import::{
    self as sheets, CellIssue, Format, Grid, RowDraft, UnmappedColumn, Value,
};
use poam_domain::{Item, ItemFields, Permission, SystemId, Violation};
use poam_persistence::exchange::{self as store, ExchangeRecord, Outcome, SheetItem};
use poam_persistence::StoreError;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::{Cursor, Read};
use utoipa::{IntoParams, ToSchema};

/// The most a workbook may hold once decompressed (all its parts together): 256 MiB.
pub const MAX_DECOMPRESSED: u64 = 256 << 20;
/// The most parts a workbook may have.
pub const MAX_ENTRIES: usize = 10_000;
/// Formula cells named in a refusal, at most.
const MAX_NAMED: usize = 50;

const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

/// The sheet a CSV holds (a workbook names its sheets itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CsvSheet {
    Open,
    Closed,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SheetImportParams {
    /// Admins only: take the sheet's statuses, completion dates, deviation decisions and
    /// milestone statuses as they stand (a migration from another tool). Without it a new item
    /// starts open, an update never moves a status, and each answer row says what was set
    /// aside.
    migrate: Option<bool>,
    /// The file's name for the history, when the request has no `Content-Disposition` with a
    /// `filename`.
    filename: Option<String>,
    /// For a CSV of the FedRAMP template: the sheet it holds, `open` (default) or `closed`.
    #[param(inline)]
    sheet: Option<CsvSheet>,
}

/// What became of one row (or one eMASS item's rows).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SheetRowStatus {
    Created,
    Updated,
    Unchanged,
    Failed,
}

/// One row's result, in sheet order.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SheetRowResult {
    pub sheet: String,
    /// The item's (first) row, 1-based.
    pub row: usize,
    /// The cell of the row's key (`Open POA&M Items!A12`).
    pub cell: String,
    /// The sheet's own id of the item (FedRAMP POAM ID; eMASS POA&M Item ID, else Security
    /// Checks), kept as the item's `external_id`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    pub status: SheetRowStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<uuid::Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_id: Option<String>,
    /// Milestones the row carries.
    pub milestones: usize,
    /// Why it was not imported: each error names its cell (and the item field).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<Problem>,
    /// What the rules set aside (a status kept, a decision taken in as pending) and what
    /// reading kept as text (milestone lines that follow no form), each with its cell.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<FieldError>,
}

/// Counts per status.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct SheetImportSummary {
    pub created: usize,
    pub updated: usize,
    pub unchanged: usize,
    pub failed: usize,
}

/// The file imported, as the history records it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ImportedFile {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// SHA-256 of the body, lower-case hex.
    pub sha256: String,
    pub bytes: usize,
}

/// The answer to a spreadsheet import.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SheetImportReport {
    /// `fedramp` or `emass`.
    pub format: String,
    /// The layout recognised on each sheet read (`Open POA&M Items: fedramp rev5`).
    pub layouts: Vec<String>,
    pub file: ImportedFile,
    pub migrated: bool,
    pub results: Vec<SheetRowResult>,
    pub summary: SheetImportSummary,
    /// Every column of a recognised sheet the import does not map, and why.
    pub unmapped_columns: Vec<UnmappedColumn>,
}

fn issue_error(i: &CellIssue) -> FieldError {
    FieldError::at_cell(i.cell.clone(), None, i.code, i.message.clone())
}

/// A workbook refused whole (422), its code the first issue's.
fn refused(issues: &[CellIssue], what: &str) -> ApiError {
    let code = issues.first().map_or("not_a_workbook", |i| i.code);
    let named: Vec<FieldError> = issues.iter().take(MAX_NAMED).map(issue_error).collect();
    let more = issues.len().saturating_sub(MAX_NAMED);
    ApiError::Unprocessable {
        code,
        detail: if more > 0 {
            format!(
                "{what}: {} cells, the first {MAX_NAMED} named",
                issues.len()
            )
        } else {
            what.to_owned()
        },
        errors: named,
    }
}

fn not_a_workbook(why: impl std::fmt::Display) -> ApiError {
    ApiError::Unprocessable {
        code: "not_a_workbook",
        detail: format!("the body is not an xlsx workbook: {why}"),
        errors: Vec::new(),
    }
}

fn too_large_inflated(detail: String) -> ApiError {
    ApiError::Unprocessable {
        code: "decompressed_too_large",
        detail,
        errors: Vec::new(),
    }
}

/// Checks the ZIP container before any reader inflates it: a bounded number of parts whose
/// declared sizes stay under [`MAX_DECOMPRESSED`], and each part's real size (inflated into
/// nothing, never past its declared size plus one byte) matching what it declares.
pub fn check_container(bytes: &[u8]) -> Result<(), ApiError> {
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes)).map_err(not_a_workbook)?;
    if zip.len() > MAX_ENTRIES {
        return Err(too_large_inflated(format!(
            "the workbook has {} parts; at most {MAX_ENTRIES} are read",
            zip.len()
        )));
    }
    let mut declared: u64 = 0;
    for i in 0..zip.len() {
        let part = zip.by_index_raw(i).map_err(not_a_workbook)?;
        declared = declared.saturating_add(part.size());
    }
    if declared > MAX_DECOMPRESSED {
        return Err(too_large_inflated(format!(
            "the workbook declares {declared} bytes once decompressed; at most {MAX_DECOMPRESSED} are read"
        )));
    }
    let mut total: u64 = 0;
    for i in 0..zip.len() {
        let part = zip.by_index(i).map_err(not_a_workbook)?;
        let size = part.size();
        let name = part.name().to_owned();
        let n = std::io::copy(&mut part.take(size + 1), &mut std::io::sink())
            .map_err(not_a_workbook)?;
        if n > size {
            return Err(too_large_inflated(format!(
                "the part `{name}` inflates past the {size} bytes it declares"
            )));
        }
        total += n;
        if total > MAX_DECOMPRESSED {
            return Err(too_large_inflated(format!(
                "the workbook inflates past {MAX_DECOMPRESSED} bytes"
            )));
        }
    }
    Ok(())
}

fn value_of(d: calamine::DataRef<'_>) -> Value {
    use calamine::DataRef as D;
    match d {
        D::Empty => Value::Empty,
        D::Int(i) => Value::Number(i as f64),
        D::Float(f) => Value::Number(f),
        D::String(s) => Value::Text(s),
        D::SharedString(s) => Value::Text(s.to_owned()),
        D::Bool(b) => Value::Bool(b),
        D::DateTime(dt) if dt.is_datetime() => {
            let (y, m, day, ..) = dt.to_ymd_hms_milli();
            chrono::NaiveDate::from_ymd_opt(i32::from(y), u32::from(m), u32::from(day))
                .map_or(Value::Number(dt.as_f64()), Value::Date)
        }
        D::DateTime(dt) => Value::Number(dt.as_f64()),
        D::DateTimeIso(s) => sheets::parse_date_text(&s).map_or(Value::Text(s), Value::Date),
        D::DurationIso(s) => Value::Text(s),
        D::Error(e) => Value::Error(e.to_string()),
    }
}

/// Columns read per row: the templates end before column AP; cells further right are ignored
/// (a lone far cell must not make every row 16,384 cells wide).
pub const MAX_READ_COLUMNS: u32 = 256;
/// Excel's rows: 1,048,576.
pub const MAX_ROWS: u32 = 1 << 20;
/// Cells held in memory for one workbook, at most.
pub const MAX_CELLS: usize = 4_000_000;

/// Reads every sheet's values cell by cell (never a dense range: a sheet with one cell at A1
/// and one at XFD1048576 would ask for 17 billion); refuses the workbook when a cell holds a
/// formula.
pub fn read_xlsx(bytes: Vec<u8>) -> Result<Vec<Grid>, ApiError> {
    use calamine::Reader;
    check_container(&bytes)?;
    let mut book: calamine::Xlsx<_> =
        calamine::Xlsx::new(Cursor::new(bytes)).map_err(not_a_workbook)?;
    let mut grids = Vec::new();
    let mut formulas = Vec::new();
    let mut held = 0usize;
    for name in book.sheet_names() {
        let mut rows: Vec<Vec<Value>> = Vec::new();
        {
            let mut cells = book.worksheet_cells_reader(&name).map_err(not_a_workbook)?;
            while let Some(cell) = cells.next_cell().map_err(not_a_workbook)? {
                let (r, c) = cell.get_position();
                // Excel's last row bounds the rows held, whatever a part claims.
                if c >= MAX_READ_COLUMNS || r >= MAX_ROWS {
                    continue;
                }
                let value = value_of(cell.get_value().clone());
                if value == Value::Empty {
                    continue;
                }
                let (r, c) = (r as usize, c as usize);
                if rows.len() <= r {
                    rows.resize(r + 1, Vec::new());
                }
                let row = &mut rows[r];
                if row.len() <= c {
                    held += c + 1 - row.len();
                    if held > MAX_CELLS {
                        return Err(too_large_inflated(format!(
                            "the workbook holds more than {MAX_CELLS} cells"
                        )));
                    }
                    row.resize(c + 1, Value::Empty);
                }
                row[c] = value;
            }
        }
        {
            let mut cells = book.worksheet_cells_reader(&name).map_err(not_a_workbook)?;
            while let Some(f) = cells.next_formula().map_err(not_a_workbook)? {
                if !f.get_value().is_empty() {
                    let (r, c) = f.get_position();
                    formulas.push(CellIssue::new(
                        sheets::cell_ref(&name, r as usize + 1, c as usize),
                        "formula_cell",
                        format!(
                            "the cell holds the formula `={}`: only values are read; paste the values and import again",
                            f.get_value()
                        ),
                    ));
                }
            }
        }
        grids.push(Grid { name, rows });
    }
    if !formulas.is_empty() {
        return Err(refused(
            &formulas,
            "the workbook holds formulas: only values are imported",
        ));
    }
    Ok(grids)
}

/// The file's name: `Content-Disposition`'s `filename` (or `filename*`), else the query's.
fn file_name(req: &HttpRequest, param: Option<String>) -> Option<String> {
    let from_header = req
        .headers()
        .get(header::CONTENT_DISPOSITION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.split(';').map(str::trim).find_map(|p| {
                if let Some(rest) = p.strip_prefix("filename*=") {
                    let rest = rest.split_once("''").map_or(rest, |(_, n)| n);
                    return Some(
                        percent_decode(rest)
                            .unwrap_or_else(|| rest.to_owned())
                            .trim_matches('"')
                            .to_owned(),
                    );
                }
                p.strip_prefix("filename=")
                    .map(|n| n.trim_matches('"').to_owned())
            })
        });
    from_header
        .or(param)
        .map(|n| {
            n.chars()
                .filter(|c| !c.is_control())
                .take(200)
                .collect::<String>()
        })
        .filter(|n| !n.trim().is_empty())
}

fn percent_decode(s: &str) -> Option<String> {
    let mut out = Vec::with_capacity(s.len());
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The media type of the body: xlsx or CSV.
fn media(req: &HttpRequest) -> Result<bool, ApiError> {
    let (ct, essence) = crate::input::media_type(req);
    match essence.as_str() {
        XLSX => Ok(false),
        "text/csv" => Ok(true),
        _ => Err(ApiError::UnsupportedMediaType(format!(
            "`{ct}` is not accepted: send the workbook as {XLSX} (or the sheet as text/csv)"
        ))),
    }
}

/// A row ready for the store, with what the decision needs.
struct Ready {
    /// Index in the results.
    at: usize,
    /// The draft as a document, and the item fields its layout covers (an update leaves the
    /// others as the item has them).
    doc: serde_json::Value,
    covered: Vec<&'static str>,
    detected_defaulted: bool,
}

fn field_errors(row: &RowDraft, v: &[Violation]) -> Vec<FieldError> {
    v.iter()
        .map(|v| {
            FieldError::at_cell(
                row.cell_of(&v.pointer),
                Some(v.pointer.clone()),
                v.code,
                v.message.clone(),
            )
        })
        .collect()
}

/// The fields of an update: the item's own, with those the sheet's layout covers replaced by
/// the sheet's. An open status in the sheet means unresolved: an item in progress or deferred
/// stays so.
fn merged(current: &Item, ready: &Ready) -> Result<ItemFields, Vec<Violation>> {
    let mut base = match serde_json::to_value(current.fields()) {
        Ok(serde_json::Value::Object(m)) => m,
        _ => serde_json::Map::new(),
    };
    let sheet = ready.doc.as_object().cloned().unwrap_or_default();
    for field in &ready.covered {
        match sheet.get(*field) {
            Some(v) => {
                base.insert((*field).to_owned(), v.clone());
            }
            None => {
                base.remove(*field);
            }
        }
    }
    if ready.detected_defaulted {
        base.insert(
            "detected_on".into(),
            serde_json::Value::String(current.detected_on.to_string()),
        );
    }
    let sheet_status = sheet.get("status").and_then(|s| s.as_str());
    if matches!(sheet_status, None | Some("open")) && current.status.is_active() {
        base.insert(
            "status".into(),
            serde_json::Value::String(current.status.to_string()),
        );
        for (d, value) in [
            ("completed_on", current.completed_on),
            ("closed_on", current.closed_on),
        ] {
            match value {
                Some(x) => base.insert(d.into(), serde_json::Value::String(x.to_string())),
                None => base.remove(d),
            };
        }
    }
    parse_fields::<ItemFields>(serde_json::Value::Object(base))
}

async fn import(
    state: web::Data<AppState>,
    actor: Actor,
    req: HttpRequest,
    system_id: SystemId,
    payload: web::Payload,
    format: Format,
) -> Result<HttpResponse, ApiError> {
    actor.require(Permission::WriteItems)?;
    let params = query::<SheetImportParams>(&req)?;
    let caller = actor.caller();
    let migrate = params.migrate.unwrap_or(false);
    let origin = Origin {
        channel: Channel::Import,
        migrate,
    };
    change::check_migrate(&caller, origin).map_err(StoreError::from)?;
    // Another system's import is a 404 whatever the file says.
    let scope = actor.scope.clone();
    let system = state
        .db(move |conn| poam_persistence::systems::get(conn, system_id, &scope))
        .await?;
    let csv = media(&req)?;
    if params.sheet.is_some() && (!csv || format != Format::Fedramp) {
        return Err(ApiError::invalid_param(
            "sheet",
            "not_applicable",
            "`sheet` says which FedRAMP sheet a CSV holds; a workbook names its sheets",
        ));
    }
    // A slot and a share of the memory budget, taken before the body is read.
    // The size limit is the import limit (`POAM_IMPORT_MAX_BYTES`), as for bulk and OSCAL.
    let limit = state.import_limit;
    let _pass = state.protection.enter(
        Heavy::Write,
        &actor.sub,
        crate::protection::json_reservation(&req, limit).min(MAX_DECOMPRESSED as usize),
    )?;
    let bytes =
        Vec::from(crate::input::read_body_within(&req, &mut payload.into_inner(), limit).await?);
    let sha256 = crate::idempotency::hex(&Sha256::digest(&bytes));
    let name = file_name(&req, params.filename.clone());
    let size = bytes.len();
    let sheet_name = match (format, params.sheet) {
        (Format::Emass, _) => "POA&M",
        (Format::Fedramp, Some(CsvSheet::Closed)) => "Closed POA&M Items",
        (Format::Fedramp, _) => "Open POA&M Items",
    };
    let today = chrono::Utc::now().date_naive();
    let mut plan = web::block(move || -> Result<sheets::Plan, ApiError> {
        let grids = if csv {
            let text = String::from_utf8(bytes).map_err(|_| ApiError::Unprocessable {
                code: "not_a_workbook",
                detail: "the CSV is not UTF-8 text".into(),
                errors: Vec::new(),
            })?;
            vec![sheets::read_csv(sheet_name, &text)
                .map_err(|f| refused(&f, "the CSV holds formulas: only values are imported"))?]
        } else {
            read_xlsx(bytes)?
        };
        sheets::read(format, &grids, today).map_err(|issues| {
            let what = match issues.first().map(|i| i.code) {
                Some("no_header_row") => "no sheet has a header row this import recognises",
                _ => "cells hold dates in a form that cannot be read",
            };
            refused(&issues, what)
        })
    })
    .await
    .map_err(|_| ApiError::Internal)??;

    // eMASS's Office/Org starts with the organisation (this service's export writes the
    // system's): the owner is the person after it.
    let orgs: Vec<String> = [
        system.organization.clone(),
        system.emass.as_ref().and_then(|e| e.ccsafa.clone()),
    ]
    .into_iter()
    .flatten()
    .collect();
    if format == Format::Emass {
        for row in plan.rows.iter_mut() {
            if let Some(owner) = row.fields.owner.as_mut() {
                for org in &orgs {
                    if let Some(rest) = owner.name.strip_prefix(&format!("{org}, ")) {
                        owner.name = rest.to_owned();
                        break;
                    }
                }
            }
        }
    }
    let mut results: Vec<SheetRowResult> = Vec::with_capacity(plan.rows.len());
    let mut ready: Vec<Ready> = Vec::new();
    let mut items: Vec<SheetItem> = Vec::new();
    for row in &plan.rows {
        let mut result = SheetRowResult {
            sheet: row.sheet.clone(),
            row: row.row,
            cell: row.key_cell.clone(),
            key: row.key.clone(),
            status: SheetRowStatus::Failed,
            id: None,
            display_id: None,
            milestones: row.milestones.len(),
            problem: None,
            notes: row.notes.iter().map(issue_error).collect(),
        };
        let at = results.len();
        let doc = row.fields.to_document();
        let parsed = if row.errors.is_empty() {
            parse_fields::<ItemFields>(doc.clone()).map_err(|v| field_errors(row, &v))
        } else {
            Err(row.errors.iter().map(issue_error).collect())
        };
        match (parsed, row.key.clone()) {
            (Ok(fields), Some(key)) => {
                let mut covered: Vec<&'static str> = row.cells.iter().map(|(f, _)| *f).collect();
                if row.fields.status.is_none() {
                    covered.retain(|f| !["status", "completed_on", "closed_on"].contains(f));
                }
                covered.retain(|f| *f != "milestones");
                ready.push(Ready {
                    at,
                    doc,
                    covered,
                    detected_defaulted: row.detected_defaulted,
                });
                items.push(SheetItem {
                    key,
                    fields,
                    milestones: row.milestones.iter().map(|m| m.draft.clone()).collect(),
                    history: row.milestones.iter().map(|m| m.changes.clone()).collect(),
                });
            }
            (Err(errors), _) => result.problem = Some(ApiError::Invalid(errors).problem()),
            (Ok(_), None) => {
                result.problem = Some(
                    ApiError::Invalid(vec![FieldError::at_cell(
                        row.key_cell.clone(),
                        None,
                        "missing_key",
                        "the row has no key",
                    )])
                    .problem(),
                )
            }
        }
        results.push(result);
    }

    let mut record = ExchangeRecord {
        id: uuid::Uuid::new_v4().to_string(),
        format: format!("{} {}", format.as_str(), if csv { "csv" } else { "xlsx" }),
        detail: Some(format!(
            "file={}; sha256={sha256}",
            name.as_deref().unwrap_or("(unnamed)")
        )),
        by: actor.sub.clone(),
        counts: Some(serde_json::json!({
            "file": name,
            "sha256": sha256,
            "bytes": size,
            "layouts": plan.layouts,
        })),
    };
    let reason = format!(
        "moved by the import of {} (sha256 {sha256})",
        name.as_deref().unwrap_or("a spreadsheet")
    );
    let rows = plan.rows.clone();
    let ready_at: Vec<usize> = ready.iter().map(|r| r.at).collect();
    let (outcomes, notes) = state
        .db(move |conn| {
            let mut notes: Vec<Vec<Violation>> = vec![Vec::new(); ready.len()];
            let (outcomes, milestone_notes) = store::import_sheet(
                conn,
                system_id,
                &actor.scope,
                &actor.sub,
                migrate,
                &mut record,
                &reason,
                &items,
                |i, current| {
                    let admitted = match current {
                        None => change::create(items[i].fields.clone(), &caller, origin, today)?,
                        Some(current) => {
                            let next = merged(current, &ready[i]).map_err(StoreError::Invalid)?;
                            change::update(current, next, &caller, origin, today)?
                        }
                    };
                    notes[i].extend(admitted.notes);
                    Ok(admitted.fields)
                },
            )?;
            for (n, m) in notes.iter_mut().zip(milestone_notes) {
                n.extend(m);
            }
            Ok((outcomes, notes))
        })
        .await?;
    let mut summary = SheetImportSummary::default();
    for ((at, outcome), notes) in ready_at.into_iter().zip(outcomes).zip(notes) {
        let row = &rows[at];
        let r = &mut results[at];
        r.notes.extend(field_errors(row, &notes));
        let (status, item) = match outcome {
            Outcome::Created(i) => (SheetRowStatus::Created, Some(i)),
            Outcome::Updated(i) | Outcome::Reopened(i) => (SheetRowStatus::Updated, Some(i)),
            Outcome::Unchanged(i) => (SheetRowStatus::Unchanged, Some(i)),
            Outcome::Failed(e) => {
                let mut problem = ApiError::from(e).problem();
                for f in problem.errors.iter_mut() {
                    f.cell = Some(row.cell_of(f.pointer.as_deref().unwrap_or("")));
                }
                r.problem = Some(problem);
                (SheetRowStatus::Failed, None)
            }
        };
        r.status = status;
        if let Some(i) = item {
            r.id = Some(i.id.as_uuid());
            r.display_id = Some(i.display_id);
        }
    }
    for r in &results {
        match r.status {
            SheetRowStatus::Created => summary.created += 1,
            SheetRowStatus::Updated => summary.updated += 1,
            SheetRowStatus::Unchanged => summary.unchanged += 1,
            SheetRowStatus::Failed => summary.failed += 1,
        }
    }
    Ok(HttpResponse::Ok().json(SheetImportReport {
        format: format.as_str().to_owned(),
        layouts: plan.layouts,
        file: ImportedFile {
            name,
            sha256,
            bytes: size,
        },
        migrated: migrate,
        results,
        summary,
        unmapped_columns: plan.unmapped,
    }))
}

/// Import the FedRAMP POA&M template (editor; `migrate=true` is an admin's).
///
/// The body is the workbook (`application/vnd.openxmlformats-officedocument.spreadsheetml.sheet`)
/// or one sheet as `text/csv` (`sheet=open|closed`), so `curl --data-binary @poam.xlsx` works;
/// the file's name comes from `Content-Disposition` (`filename`) or `?filename=`. Rev4, Rev5
/// (columns A–AE) and v3.0 (column A holding row labels) layouts are read, their header row
/// found by its labels; open, closed and configuration-findings sheets. Each row becomes an
/// item keyed by its POAM ID (the item's `external_id`): importing the same workbook again
/// changes nothing, an updated one updates what changed, and the history records the import
/// with the file's name and SHA-256. Planned Milestones and Milestone Changes are read into
/// milestones with their dates, completions and moves; lines that follow no form are kept in
/// the item's comments and listed. Without `migrate=true` items start open (a closed sheet's
/// items too) and decisions come in pending, each row saying what was set aside. One result
/// per row, each error naming its cell; the columns not mapped are listed with the reason. A
/// body that is no workbook, has no recognisable header, holds formulas or unreadable dates,
/// exceeds the import size limit (`POAM_IMPORT_MAX_BYTES`, 32 MiB by default, as for bulk and
/// OSCAL imports) or inflates past 256 MiB is refused whole and stores nothing.
#[utoipa::path(
    operation_id = "import_fedramp",
    tag = "exchange",
    params(("system_id" = uuid::Uuid, Path, description = "The system's id."), SheetImportParams),
    request_body(description = "The FedRAMP POA&M template workbook, or one sheet as CSV.", content(
        (super::docs::Workbook = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
        (super::docs::Binary = "text/csv"),
    )),
    responses(
        (status = 200, description = "One result per row, and the columns not mapped.", body = SheetImportReport),
        WriteProblems,
    ),
    security(("bearer" = []))
)]
#[post("/systems/{system_id}/imports/fedramp")]
pub async fn import_fedramp(
    state: web::Data<AppState>,
    actor: Actor,
    req: HttpRequest,
    path: web::Path<SystemId>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    import(
        state,
        actor,
        req,
        path.into_inner(),
        payload,
        Format::Fedramp,
    )
    .await
}

/// Import the eMASS POA&M template (editor; `migrate=true` is an admin's).
///
/// The body is the workbook (or its `POA&M` sheet as `text/csv`). The 2026 Navy, Army and
/// Marine Corps layouts, the gen-2 layout and the older DISA ones are read, the header row
/// found by its labels (row 7 under the header block, or row 1); both milestone layouts: an
/// item's first row carrying its columns and first milestone with the following rows only
/// milestone columns, or every column repeated on every row. Each item is keyed by its POA&M
/// Item ID, else its Security Checks (the item's `external_id`): importing the same workbook
/// again changes nothing; the history records the import with the file's name and SHA-256.
/// Gen-2 "Milestone with Completion Dates" cells ("Implement X 10/25/2018") are read into
/// milestones; what follows no form is kept in the item's comments and listed. Statuses
/// (Ongoing, Completed, Risk Accepted, …) are taken only with `migrate=true`. Answers and
/// refusals as for the FedRAMP import.
#[utoipa::path(
    operation_id = "import_emass",
    tag = "exchange",
    params(("system_id" = uuid::Uuid, Path, description = "The system's id."), SheetImportParams),
    request_body(description = "The eMASS POA&M template workbook, or its POA&M sheet as CSV.", content(
        (super::docs::Workbook = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
        (super::docs::Binary = "text/csv"),
    )),
    responses(
        (status = 200, description = "One result per item, and the columns not mapped.", body = SheetImportReport),
        WriteProblems,
    ),
    security(("bearer" = []))
)]
#[post("/systems/{system_id}/imports/emass")]
pub async fn import_emass(
    state: web::Data<AppState>,
    actor: Actor,
    req: HttpRequest,
    path: web::Path<SystemId>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    import(state, actor, req, path.into_inner(), payload, Format::Emass).await
}
