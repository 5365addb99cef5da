//! Exchange: exports (the auditor bundle, OSCAL POA&M, the FedRAMP template as CSV or XLSX),
//! streamed from one snapshot; bulk upserts with one result per element; OSCAL imports.

use super::docs::{ListProblems, WriteProblems};
use crate::auth::Actor;
use crate::input::{apply_patch, json_document, parse_fields, query};
use crate::problem::{ApiError, FieldError, Problem};
use crate::protection::Heavy;
use crate::state::AppState;
use crate::xlsx::{Book, Cell};
use actix_web::http::header;
use actix_web::{get, post, web, HttpRequest, HttpResponse};
use poam_domain::change::{self, Caller, Channel, Origin};
use poam_domain::exchange::emass;
use poam_domain::exchange::fedramp::{self, Sheet};
use poam_domain::exchange::oscal::{self, ToolSet};
use poam_domain::exchange::{fedramp_v3, nisp, sheet};
use poam_domain::exchange::{ItemRecord, StatusChange};
use poam_domain::history::Event;
use poam_domain::workflow::{Evidence, Milestone, Review};
use poam_domain::{Item, ItemFields, ItemStatus, Permission, System, SystemId, Violation};
use poam_persistence::db::{self, DbConnection};
use poam_persistence::events::EventRow;
use poam_persistence::exchange::{
    self as store, BulkKey, ExchangeRecord, ExportHead, ImportItem, Load, Outcome,
};
use poam_persistence::StoreError;
use serde::{Deserialize, Serialize};
use std::io::{self, Write};
use utoipa::{IntoParams, ToSchema};

/// Items read per page while an export streams.
const PAGE: i64 = 500;
/// Bytes gathered before a chunk goes to the client.
const CHUNK: usize = 64 << 10;
/// Asset names an OSCAL export holds in memory before it spills them to sorted runs (about
/// 100 bytes each).
const ASSETS_HELD: usize = 50_000;

pub const OSCAL_JSON: &str = "application/oscal+json";
pub const CSV: &str = "text/csv; charset=utf-8";
pub const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

/// The export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ExportFormat {
    /// The auditor bundle (`application/json`, schema at `/v1/schemas/export-bundle.json`).
    Json,
    /// OSCAL Plan of Action and Milestones (`application/oscal+json`), 1.1.2 or 1.2.1.
    Oscal,
    /// One sheet of the FedRAMP POA&M template (`text/csv`), chosen with `sheet`.
    Csv,
    /// The FedRAMP POA&M template's open and closed sheets (`.xlsx`).
    Xlsx,
    /// The DCSA/NISP POA&M template: header block (company, CAGE, DSS UID, ISSM / A-ISSM,
    /// last quarterly review) and items in one sheet (`.xlsx`, or `as=csv`).
    Nisp,
    /// The eMASS POA&M template (`.xlsx`, or `as=csv`), in the layout `variant` picks.
    Emass,
}

/// The FedRAMP template generation of `csv` and `xlsx`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TemplateParam {
    /// Rev5, columns A–AE, header in row 1 (the layout on FedRAMP's repository today).
    #[default]
    Rev5,
    /// v3.0 (2025-11-17): header block, columns B–AB under row labels, PL-2 Findings sheet.
    V3,
}

/// The file a template format (`nisp`) comes as.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FileParam {
    #[default]
    Xlsx,
    Csv,
}

/// The template sheet a CSV export holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SheetParam {
    Open,
    Closed,
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ExportParams {
    /// `json` (default), `oscal`, `csv`, `xlsx`, `nisp` or `emass`.
    #[param(inline)]
    format: Option<ExportFormat>,
    /// For `emass`: the template's layout, `navy` (default, A–AG), `army` (A–AO) or `marine`
    /// (A–AF).
    #[param(inline)]
    variant: Option<emass::Variant>,
    /// For `emass`: answer, as JSON, what the export would hold and which items eMASS would
    /// refuse and why (rule codes), instead of the workbook. Nothing is recorded.
    dry_run: Option<bool>,
    /// For `emass`: refuse the export (422 `emass_refused`, each item and rule in `errors`)
    /// when eMASS would refuse any item, instead of writing them all.
    strict: Option<bool>,
    /// For `csv`: the template's `open` (default) or `closed` sheet.
    #[param(inline)]
    sheet: Option<SheetParam>,
    /// For `csv` and `xlsx`: the FedRAMP template generation, `rev5` (default) or `v3`.
    #[param(inline)]
    template: Option<TemplateParam>,
    /// For `nisp` and `emass`: `xlsx` (default) or `csv` (NISP: the header block, a blank
    /// line, the items; eMASS: row 7's column headers, then the rows).
    #[serde(rename = "as")]
    #[param(inline, rename = "as")]
    file: Option<FileParam>,
    /// For `oscal`, `csv` and `xlsx`: include archived items. Without it they are left out, and
    /// the response says how many archived unresolved items it leaves out (the header
    /// `POAM-Archived-Unresolved-Excluded`, and in OSCAL a metadata prop of that name). The
    /// `json` bundle always holds every item.
    include_archived: Option<bool>,
    /// For `oscal`: the OSCAL version the document claims and follows, `1.1.2` (default, the
    /// version FedRAMP targets) or `1.2.1`.
    #[param(inline)]
    oscal_version: Option<oscal::OscalVersion>,
}

/// The response header that states how many archived unresolved items an export leaves out.
pub const ARCHIVED_EXCLUDED: &str = "poam-archived-unresolved-excluded";

/// A status change in the bundle.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BundleTransition {
    #[schema(format = Uuid)]
    pub id: String,
    pub from: ItemStatus,
    pub to: ItemStatus,
    #[schema(required = true)]
    pub comment: Option<String>,
    pub actor: String,
    pub at: chrono::DateTime<chrono::Utc>,
}

impl From<StatusChange> for BundleTransition {
    fn from(t: StatusChange) -> Self {
        BundleTransition {
            id: t.id,
            from: t.from,
            to: t.to,
            comment: t.comment,
            actor: t.actor,
            at: t.at,
        }
    }
}

/// An item with everything recorded about it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BundleItem {
    pub item: Item,
    /// In plan order, each with its due-date changes.
    pub milestones: Vec<Milestone>,
    /// Status changes, oldest first.
    pub transitions: Vec<BundleTransition>,
    /// Reviews of this item, oldest first.
    pub reviews: Vec<Review>,
    /// Evidence metadata (the files themselves download from `/v1/evidence/{id}/content`).
    pub evidence: Vec<Evidence>,
}

/// The chain's length and last hash when the snapshot was taken.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ChainHead {
    pub length: i64,
    pub head: String,
}

/// The auditor bundle: a system's whole POA&M and its history, from one snapshot.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ExportBundle {
    /// Always `poam-export-bundle`.
    #[schema(example = "poam-export-bundle")]
    pub format: String,
    /// Always 1.
    pub format_version: i32,
    pub exported_at: chrono::DateTime<chrono::Utc>,
    /// The token subject that asked for it.
    pub exported_by: String,
    pub system: System,
    pub chain: ChainHead,
    /// Every item, archived ones included, in display-id order.
    pub items: Vec<BundleItem>,
    /// Reviews of the POA&M as a whole (periodic reviews).
    pub system_reviews: Vec<Review>,
    /// The whole event chain, oldest first, each event as the change feed shows it.
    pub events: Vec<Event<'static>>,
}

/// Creates a spool file readable by this user only.
fn create_private(path: &std::path::Path) -> Result<std::fs::File, StoreError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path).map_err(io_err)
}

fn io_err(e: io::Error) -> StoreError {
    StoreError::Internal(format!("export stream: {e}"))
}

fn json_err(e: serde_json::Error) -> StoreError {
    StoreError::Internal(format!("export stream: {e}"))
}

/// Writes `value` as JSON, preceded by a comma unless it is the first of its array.
fn member<T: Serialize>(w: &mut impl Write, first: &mut bool, value: &T) -> Result<(), StoreError> {
    separate(w, first)?;
    serde_json::to_writer(&mut *w, value).map_err(json_err)
}

/// [`member`] for a value already written as JSON.
fn raw_member(w: &mut impl Write, first: &mut bool, json: &[u8]) -> Result<(), StoreError> {
    separate(w, first)?;
    w.write_all(json).map_err(io_err)
}

/// The comma before every array member but the first.
fn separate(w: &mut impl Write, first: &mut bool) -> Result<(), StoreError> {
    if !std::mem::take(first) {
        w.write_all(b",").map_err(io_err)?;
    }
    Ok(())
}

/// Calls `each` on every item record of the system, page by page, in display order. The pages
/// are read on a second thread while `each` renders the previous one (one page read ahead), so
/// reading and rendering overlap on two cores.
fn for_each_record(
    conn: &mut DbConnection,
    system_id: SystemId,
    load: Load,
    mut each: impl FnMut(ItemRecord) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    type Page = Result<Vec<(i64, ItemRecord)>, StoreError>;
    let (pages, rx) = std::sync::mpsc::sync_channel::<Page>(1);
    std::thread::scope(|s| {
        s.spawn(move || {
            let mut after = 0;
            loop {
                let page = store::records(conn, system_id, after, PAGE, load);
                let next = match &page {
                    Ok(p) if p.len() as i64 == PAGE => p.last().map(|(last, _)| *last),
                    _ => None,
                };
                // The renderer stopped (its output went away, or it failed): stop reading.
                if pages.send(page).is_err() {
                    return;
                }
                match next {
                    Some(last) => after = last,
                    None => return,
                }
            }
        });
        for page in rx {
            for (_, rec) in page? {
                each(rec)?;
            }
        }
        Ok(())
    })
}

fn write_event(w: &mut impl Write, first: &mut bool, e: &EventRow) -> Result<(), StoreError> {
    member(w, first, &e.view()?)
}

fn write_bundle(
    conn: &mut DbConnection,
    head: &ExportHead,
    actor: &str,
    w: &mut impl Write,
) -> Result<(), StoreError> {
    let system_id = head.system.id;
    #[derive(Serialize)]
    struct Opening<'a> {
        format: &'a str,
        format_version: i32,
        exported_at: chrono::DateTime<chrono::Utc>,
        exported_by: &'a str,
        system: &'a System,
        chain: ChainHead,
    }
    let opening = serde_json::to_vec(&Opening {
        format: "poam-export-bundle",
        format_version: 1,
        exported_at: chrono::Utc::now(),
        exported_by: actor,
        system: &head.system,
        chain: ChainHead {
            length: head.event_seq,
            head: head.event_head.clone(),
        },
    })
    .map_err(json_err)?;
    // The opening object, left open for the streamed arrays.
    w.write_all(&opening[..opening.len() - 1]).map_err(io_err)?;
    w.write_all(b",\"items\":[").map_err(io_err)?;
    let mut first = true;
    for_each_record(conn, system_id, Load::ALL, |rec| {
        member(
            w,
            &mut first,
            &BundleItem {
                item: rec.item,
                milestones: rec.milestones,
                transitions: rec.transitions.into_iter().map(Into::into).collect(),
                reviews: rec.reviews,
                evidence: rec.evidence,
            },
        )
    })?;
    w.write_all(b"],\"system_reviews\":").map_err(io_err)?;
    let reviews = store::system_reviews(conn, system_id)?;
    serde_json::to_writer(&mut *w, &reviews).map_err(json_err)?;
    w.write_all(b",\"events\":[").map_err(io_err)?;
    let mut first = true;
    let mut after = 0;
    loop {
        let rows = store::events_after(conn, system_id, after, 1000)?;
        for e in &rows {
            write_event(w, &mut first, e)?;
        }
        match rows.last() {
            Some(last) if rows.len() == 1000 => after = last.seq,
            _ => break,
        }
    }
    w.write_all(b"]}").map_err(io_err)
}

/// A spool file the OSCAL export writes one of its arrays to while it streams another.
struct Part {
    spool: super::evidence::Spool,
    out: io::BufWriter<std::fs::File>,
    first: bool,
}

impl Part {
    fn new(dir: &std::path::Path, what: &str) -> Result<Part, StoreError> {
        let spool = super::evidence::Spool {
            path: dir.join(format!("export-{what}-{}", uuid::Uuid::new_v4())),
        };
        let file = std::fs::File::create(&spool.path).map_err(io_err)?;
        Ok(Part {
            spool,
            out: io::BufWriter::with_capacity(CHUNK, file),
            first: true,
        })
    }

    /// Adds a member already written as JSON.
    fn add_raw(&mut self, json: &[u8]) -> Result<(), StoreError> {
        raw_member(&mut self.out, &mut self.first, json)
    }

    /// Copies what was spooled into `w`.
    fn drain(mut self, w: &mut impl Write) -> Result<(), StoreError> {
        self.out.flush().map_err(io_err)?;
        let mut file = std::fs::File::open(&self.spool.path).map_err(io_err)?;
        io::copy(&mut file, w).map_err(io_err)?;
        Ok(())
    }
}

/// One pass over the items: risks stream out, while observations, poam-items and evidence
/// resources are spooled to files and copied after them (member order is free in JSON).
fn write_oscal(
    conn: &mut DbConnection,
    head: &ExportHead,
    archived: bool,
    version: oscal::OscalVersion,
    spool_dir: &std::path::Path,
    w: &mut impl Write,
) -> Result<(), StoreError> {
    let system = &head.system;
    let mut root = oscal::header(
        system,
        poam_persistence::systems::utc(head.last_modified),
        head.event_seq,
        version,
    );
    if !archived {
        if let Some(serde_json::Value::Object(metadata)) = root.get_mut("metadata") {
            let prop = serde_json::json!({
                "name": "archived-unresolved-excluded",
                "ns": oscal::POAM_NS,
                "value": head.archived_unresolved.to_string(),
                "remarks": "Archived items still open, in progress or deferred that this export leaves out (export with include_archived=true to include them)."
            });
            match metadata.get_mut("props") {
                Some(serde_json::Value::Array(props)) => props.push(prop),
                _ => {
                    metadata.insert("props".into(), serde_json::Value::Array(vec![prop]));
                }
            }
        }
    }
    let opening = serde_json::to_vec(&serde_json::Value::Object(root)).map_err(json_err)?;
    w.write_all(b"{\"plan-of-action-and-milestones\":")
        .map_err(io_err)?;
    w.write_all(&opening[..opening.len() - 1]).map_err(io_err)?;
    let mut observations = Part::new(spool_dir, "observations")?;
    let mut poam_items = Part::new(spool_dir, "poam-items")?;
    let mut resources = Part::new(spool_dir, "resources")?;
    let mut tools = ToolSet::default();
    let mut assets = super::distinct::Distinct::new(spool_dir, ASSETS_HELD);
    let load = Load {
        milestones: true,
        transitions: true,
        evidence: true,
        archived,
        ..Load::default()
    };
    w.write_all(b",\"risks\":[").map_err(io_err)?;
    let mut first = true;
    let org = oscal::organization_uuid(system);
    // One buffer, reused for every object written.
    let mut buf = Vec::with_capacity(8 << 10);
    for_each_record(conn, system.id, load, |rec| {
        tools.add_record(&rec);
        for a in &rec.item.assets {
            assets.insert(a)?;
        }
        let u = oscal::ItemUuids::of(system, &rec);
        buf.clear();
        oscal::write_risk(&mut buf, &org, &rec, &u);
        raw_member(w, &mut first, &buf)?;
        buf.clear();
        oscal::write_observation(&mut buf, system, &rec, &u);
        observations.add_raw(&buf)?;
        buf.clear();
        oscal::write_poam_item(&mut buf, &rec, &u);
        poam_items.add_raw(&buf)?;
        for e in &rec.evidence {
            buf.clear();
            oscal::write_resource(&mut buf, e);
            resources.add_raw(&buf)?;
        }
        Ok(())
    })?;
    w.write_all(b"],\"observations\":[").map_err(io_err)?;
    observations.drain(w)?;
    w.write_all(b"],\"poam-items\":[").map_err(io_err)?;
    poam_items.drain(w)?;
    w.write_all(b"]").map_err(io_err)?;
    let mut tools = tools.tools().peekable();
    if tools.peek().is_some() || !assets.is_empty() {
        // The detectors as tool components (FedRAMP), the assets as inventory items.
        w.write_all(b",\"local-definitions\":{").map_err(io_err)?;
        let mut open = "";
        if tools.peek().is_some() {
            w.write_all(b"\"components\":[").map_err(io_err)?;
            let mut first = true;
            for t in tools {
                buf.clear();
                oscal::write_tool_component(&mut buf, system, t);
                raw_member(w, &mut first, &buf)?;
            }
            w.write_all(b"]").map_err(io_err)?;
            open = ",";
        }
        if !assets.is_empty() {
            w.write_all(open.as_bytes()).map_err(io_err)?;
            w.write_all(b"\"inventory-items\":[").map_err(io_err)?;
            let mut first = true;
            for a in assets.sorted()? {
                buf.clear();
                oscal::write_inventory_item(&mut buf, system, &a?);
                raw_member(w, &mut first, &buf)?;
            }
            w.write_all(b"]").map_err(io_err)?;
        }
        w.write_all(b"}").map_err(io_err)?;
    }
    // The evidence, then the security plan `import-ssp` points at.
    w.write_all(b",\"back-matter\":{\"resources\":[")
        .map_err(io_err)?;
    if !resources.first {
        resources.drain(w)?;
        w.write_all(b",").map_err(io_err)?;
    }
    buf.clear();
    oscal::write_ssp_resource(&mut buf, system);
    w.write_all(&buf).map_err(io_err)?;
    w.write_all(b"]}").map_err(io_err)?;
    w.write_all(b"}}").map_err(io_err)
}

fn template_load(archived: bool) -> Load {
    Load {
        milestones: true,
        transitions: true,
        evidence: true,
        reviews: false,
        archived,
    }
}

fn write_csv(
    conn: &mut DbConnection,
    head: &ExportHead,
    archived: bool,
    sheet: Sheet,
    template: TemplateParam,
    w: &mut impl Write,
) -> Result<(), StoreError> {
    // A byte-order mark, so spreadsheet programs read the file as UTF-8.
    w.write_all("\u{feff}".as_bytes()).map_err(io_err)?;
    let header: &[&str] = match (template, sheet) {
        (TemplateParam::Rev5, _) => &fedramp::COLUMNS,
        (TemplateParam::V3, Sheet::Open) => &fedramp_v3::OPEN_COLUMNS,
        (TemplateParam::V3, Sheet::Closed) => &fedramp_v3::CLOSED_COLUMNS,
    };
    w.write_all(sheet::csv_row(&sheet::labels(header)).as_bytes())
        .map_err(io_err)?;
    for_each_record(conn, head.system.id, template_load(archived), |rec| {
        if sheet.holds(rec.item.status) {
            let cells = match template {
                TemplateParam::Rev5 => fedramp::cells(&rec).to_vec(),
                TemplateParam::V3 => fedramp_v3::cells(&rec),
            };
            w.write_all(sheet::csv_row(&cells).as_bytes())
                .map_err(io_err)?;
        }
        Ok(())
    })
}

/// FedRAMP's drop-downs on the item rows: Vendor Dependency (yes/no), the three deviation
/// columns (yes/no/pending) and the risk ratings. `first`: the column of POAM ID; the others
/// are offsets from it.
fn fedramp_lists(
    book: &mut Book,
    first: u16,
    rows: (u32, u32),
    vendor: u16,
    deviations: &[u16],
    ratings: &[u16],
) -> Result<(), StoreError> {
    let (from, to) = (rows.0, rows.1.max(rows.0));
    book.list(first + vendor, from, to, &["Yes", "No"])?;
    for c in deviations {
        book.list(first + c, from, to, &["Yes", "No", "Pending"])?;
    }
    for c in ratings {
        book.list(
            first + c,
            from,
            to,
            &["Critical", "High", "Moderate", "Low"],
        )?;
    }
    Ok(())
}

fn write_xlsx(
    conn: &mut DbConnection,
    head: &ExportHead,
    archived: bool,
    template: TemplateParam,
    spool_dir: &std::path::Path,
    w: &mut (impl Write + Send),
) -> Result<(), StoreError> {
    let mut book = Book::new(spool_dir)?;
    match template {
        TemplateParam::Rev5 => {
            for sheet in [Sheet::Open, Sheet::Closed] {
                book.sheet(sheet.title())?;
                book.header(0, &fedramp::COLUMNS)?;
                for_each_record(conn, head.system.id, template_load(archived), |rec| {
                    if sheet.holds(rec.item.status) {
                        book.row(0, &fedramp::cells(&rec))?;
                    }
                    Ok(())
                })?;
                let last = book.next_row();
                fedramp_lists(&mut book, 0, (1, last), 15, &[20, 21, 22], &[18, 19])?;
            }
        }
        TemplateParam::V3 => write_v3(conn, head, archived, &mut book)?,
    }
    book.finish(w)
}

/// The FedRAMP template v3.0: the Open sheet with its header block and row labels, then the
/// Closed, Configuration Findings and PL-2 Findings sheets (header in row 2).
fn write_v3(
    conn: &mut DbConnection,
    head: &ExportHead,
    archived: bool,
    book: &mut Book,
) -> Result<(), StoreError> {
    use fedramp_v3 as v3;
    let system = &head.system;
    book.sheet(v3::OPEN_SHEET)?;
    book.skip_to(v3::OPEN_BLOCK_ROW);
    book.header(v3::FIRST_COLUMN, &v3::HEADER_LABELS)?;
    let impact = system.impact_level.map(|l| match l {
        poam_domain::ImpactLevel::Low => "Low",
        poam_domain::ImpactLevel::Moderate => "Moderate",
        poam_domain::ImpactLevel::High => "High",
    });
    book.row(
        v3::FIRST_COLUMN,
        &[
            Cell::text(system.organization.clone().unwrap_or_default()),
            Cell::text(system.name.clone()),
            Cell::text(impact.unwrap_or_default()),
            Cell::Date(chrono::Utc::now().date_naive()),
        ],
    )?;
    book.skip_to(v3::OPEN_HEADER_ROW);
    book.header(v3::FIRST_COLUMN, &v3::OPEN_COLUMNS)?;
    for label in v3::ROW_LABELS {
        book.labelled(0, label, &[])?;
    }
    book.skip_to(v3::OPEN_FIRST_ROW);
    for_each_record(conn, system.id, template_load(archived), |rec| {
        if Sheet::Open.holds(rec.item.status) {
            book.row(v3::FIRST_COLUMN, &v3::cells(&rec))?;
        }
        Ok(())
    })?;
    let last = book.next_row();
    fedramp_lists(
        book,
        v3::FIRST_COLUMN,
        (v3::OPEN_FIRST_ROW, last),
        13,
        &[18, 19, 20],
        &[16, 17],
    )?;
    book.widths(0, &[24.0])?;
    book.sheet(v3::CLOSED_SHEET)?;
    book.skip_to(v3::CLOSED_HEADER_ROW);
    book.header(v3::FIRST_COLUMN, &v3::CLOSED_COLUMNS)?;
    for_each_record(conn, system.id, template_load(archived), |rec| {
        if Sheet::Closed.holds(rec.item.status) {
            book.row(v3::FIRST_COLUMN, &v3::cells(&rec))?;
        }
        Ok(())
    })?;
    // No item is marked a configuration finding or a PL-2 (documentation) deficiency: the
    // sheets are there, with their headers, for the CSP to fill.
    book.sheet(v3::CONFIGURATION_SHEET)?;
    book.skip_to(v3::CLOSED_HEADER_ROW);
    book.header(v3::FIRST_COLUMN, &v3::CLOSED_COLUMNS)?;
    book.sheet(v3::PL2_SHEET)?;
    book.skip_to(v3::CLOSED_HEADER_ROW);
    book.header(v3::FIRST_COLUMN, &v3::PL2_COLUMNS)?;
    Ok(())
}

/// The NISP template: the header block, then every item in one table (open and closed).
fn write_nisp(
    conn: &mut DbConnection,
    head: &ExportHead,
    archived: bool,
    file: FileParam,
    spool_dir: &std::path::Path,
    w: &mut (impl Write + Send),
) -> Result<(), StoreError> {
    let system = &head.system;
    let last_review = nisp::last_periodic_review(&store::system_reviews(conn, system.id)?);
    let block = nisp::header(system, last_review);
    let load = Load {
        reviews: true,
        ..template_load(archived)
    };
    let labels = system.cws_labels.as_ref();
    match file {
        FileParam::Csv => {
            w.write_all("\u{feff}".as_bytes()).map_err(io_err)?;
            for (label, value) in block {
                w.write_all(sheet::csv_row(&[Cell::text(label), value]).as_bytes())
                    .map_err(io_err)?;
            }
            w.write_all(b"\r\n").map_err(io_err)?;
            w.write_all(sheet::csv_row(&sheet::labels(&nisp::COLUMNS)).as_bytes())
                .map_err(io_err)?;
            for_each_record(conn, system.id, load, |rec| {
                w.write_all(sheet::csv_row(&nisp::cells(&rec, labels)).as_bytes())
                    .map_err(io_err)
            })
        }
        FileParam::Xlsx => {
            let mut book = Book::new(spool_dir)?;
            book.sheet(nisp::SHEET)?;
            for (label, value) in block {
                book.labelled(0, label, &[value])?;
            }
            book.skip_to(nisp::HEADER_ROW);
            book.header(0, &nisp::COLUMNS)?;
            for_each_record(conn, system.id, load, |rec| {
                book.row(0, &nisp::cells(&rec, labels))
            })?;
            let rows = (nisp::FIRST_ROW, book.next_row().max(nisp::FIRST_ROW + 1000));
            book.list(nisp::STATUS_COLUMN, rows.0, rows.1, &nisp::STATUSES)?;
            book.list(nisp::RISK_COLUMN, rows.0, rows.1, &nisp::RISK_LEVELS)?;
            book.list(nisp::TASK_COLUMN, rows.0, rows.1, &nisp::TASK_STATUSES)?;
            book.widths(0, &[22.0, 50.0, 8.0, 60.0, 14.0, 30.0, 10.0, 22.0, 12.0])?;
            book.finish(w)
        }
    }
}

/// The `application/json` answers of the export: the bundle (`format=json`) or an eMASS dry
/// run (`format=emass&dry_run=true`).
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
#[allow(clippy::large_enum_variant)]
pub enum ExportJson {
    Bundle(ExportBundle),
    EmassDryRun(crate::emass_xlsx::EmassDryRun),
}

/// What an eMASS export writes besides the items.
struct EmassOut<'a> {
    variant: emass::Variant,
    banner: &'a str,
    exported_by: &'a str,
    file: FileParam,
    spool_dir: &'a std::path::Path,
}

/// The eMASS template (or its CSV): every item's rows, checked by eMASS's rules on the way.
/// Returns how many items eMASS would refuse.
fn write_emass(
    conn: &mut DbConnection,
    head: &ExportHead,
    archived: bool,
    out: &EmassOut<'_>,
    w: &mut (impl Write + Send),
) -> Result<usize, StoreError> {
    let system = &head.system;
    let today = today();
    let mut tally = crate::emass_xlsx::Tally::new(false);
    match out.file {
        FileParam::Csv => {
            crate::emass_xlsx::csv_header(out.variant, w)?;
            for_each_record(conn, system.id, template_load(archived), |rec| {
                let e = emass::export(&rec, system, out.variant, today);
                tally.add(&rec, &e);
                crate::emass_xlsx::csv_rows(&e, w)
            })?;
        }
        FileParam::Xlsx => {
            let mut book = crate::emass_xlsx::start(
                out.variant,
                out.banner,
                system,
                out.exported_by,
                today,
                out.spool_dir,
            )?;
            for_each_record(conn, system.id, template_load(archived), |rec| {
                let e = emass::export(&rec, system, out.variant, today);
                tally.add(&rec, &e);
                crate::emass_xlsx::add(&mut book, &e)
            })?;
            crate::emass_xlsx::finish(book, out.variant, w)?;
        }
    }
    Ok(tally.refused)
}

/// The eMASS rules over every item, without writing (the dry run and `strict=true`).
fn emass_tally(
    conn: &mut DbConnection,
    head: &ExportHead,
    archived: bool,
    variant: emass::Variant,
    keep: bool,
) -> Result<crate::emass_xlsx::Tally, StoreError> {
    let system = &head.system;
    let today = today();
    let mut tally = crate::emass_xlsx::Tally::new(keep);
    for_each_record(conn, system.id, template_load(archived), |rec| {
        let e = emass::export(&rec, system, variant, today);
        tally.add(&rec, &e);
        Ok(())
    })?;
    Ok(tally)
}

/// Export a system's POA&M (any role that reads the system, auditors included).
///
/// `json`: the auditor bundle — system, items with milestones (and their due-date changes),
/// status changes, reviews and evidence metadata, and the whole hash chain with its head —
/// from one snapshot. `oscal`: an OSCAL 1.1.2 (or `oscal_version=1.2.1`) POA&M in FedRAMP's
/// conventions, valid by NIST's schema of that version (uuids are v5,
/// derived from internal ids: re-exports are stable). `csv` and `xlsx`: the FedRAMP POA&M
/// template, Rev5 (columns A–AE, the default) or `template=v3` (v3.0: header block, columns
/// B–AB under row labels, Closed and Configuration sheets with their header in row 2, PL-2
/// Findings). `nisp`: the DCSA/NISP template (company, CAGE code, DSS UID, ISSM / A-ISSM names
/// and phones, last quarterly review; items with C/W/S, ISSM/FSO approval, DSS determination,
/// task status and percent complete), as `xlsx` or `as=csv`. `emass`: the eMASS POA&M
/// template in the `variant` layout (`navy` by default, `army`, `marine`): the sheet `POA&M`
/// with the classification banner (`POAM_CLASSIFICATION_BANNER`) in row 1, the header block
/// (date exported, exported by: the token's subject, the system's `emass` header fields, name
/// and POC) in rows 2–6, the template's column headers in row 7 and one row per milestone from
/// row 8 (the item's columns on its first row only), with list validations on the status and
/// Very Low … Very High columns; `as=csv` gives the same columns (row 7 and the rows, without
/// the banner and header block). The export checks eMASS's rules (Ongoing and Completed need
/// milestones, Risk Accepted has neither milestones nor a scheduled date, a Completed item's
/// milestones are all completed, field limits, …) and says in `POAM-Emass-Refusals` how many
/// items eMASS would refuse; `dry_run=true` answers which and why (JSON), `strict=true`
/// refuses the export instead (422). Workbook dates are real dates (`mm/dd/yyyy`). Archived
/// items are only in the bundle. Every export is recorded in
/// the history (`export` events). The body streams: memory stays flat however large the POA&M.
#[utoipa::path(
    operation_id = "export_system",
    tag = "exchange",
    params(("system_id" = uuid::Uuid, Path, description = "The system's id."), ExportParams),
    responses(
        (status = 200, description = "The export, as the format says.",
         content(
            (ExportJson = "application/json"),
            (super::docs::OscalPoamDocument = "application/oscal+json"),
            (String = "text/csv"),
            (super::docs::Workbook = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
         ),
         headers(("Content-Disposition" = String, description = "attachment; filename=…"))),
        ListProblems,
        (status = 422, description = "`format=emass&strict=true` and eMASS would refuse items (`emass_refused`): each item and broken rule in `errors` (`pointer` `/items/{display_id}/…`, `code` the rule).", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "OSCAL needs at least one item.", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
#[get("/systems/{system_id}/export")]
pub async fn export(
    state: web::Data<AppState>,
    actor: Actor,
    req: HttpRequest,
    path: web::Path<SystemId>,
) -> Result<HttpResponse, ApiError> {
    export_as(state, actor, &req, path, ExportParams::resolve).await
}

/// The export operations that send `POAM-Archived-Unresolved-Excluded`, and whether they also
/// send `POAM-Emass-Refusals` ([`export_as`] sets both): declared once here, not per operation.
const EXPORT_COUNT_HEADERS: &[(&str, bool)] = &[
    ("export_system", true),
    ("export_oscal", false),
    ("export_fedramp_csv", false),
    ("export_fedramp_xlsx", false),
    ("export_emass_xlsx", true),
    ("export_emass_csv", true),
    ("export_nisp_xlsx", false),
    ("export_nisp_csv", false),
];

/// Adds the count headers of [`EXPORT_COUNT_HEADERS`] to those operations' 200 answers.
pub(crate) fn document_export_headers(openapi: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::header::HeaderBuilder;
    use utoipa::openapi::schema::{KnownFormat, SchemaFormat, Type};
    use utoipa::openapi::{ObjectBuilder, RefOr};
    let header = |description: &str| {
        let int64 = SchemaFormat::KnownFormat(KnownFormat::Int64);
        HeaderBuilder::new()
            .schema(
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .format(Some(int64)),
            )
            .description(Some(description))
            .build()
    };
    let excluded = header(
        "How many archived items still open, in progress or deferred the export leaves out \
         (0 with include_archived=true, and in the JSON bundle, which keeps them).",
    );
    let refusals = header(
        "For the eMASS formats: how many of the exported items eMASS would refuse on import \
         (`exports/emass-dry-run` says which and why).",
    );
    for op in crate::app::operations(openapi) {
        let Some(&(_, emass)) = EXPORT_COUNT_HEADERS
            .iter()
            .find(|(id, _)| op.operation_id.as_deref() == Some(id))
        else {
            continue;
        };
        if let Some(RefOr::T(ok)) = op.responses.responses.get_mut("200") {
            ok.headers
                .insert("POAM-Archived-Unresolved-Excluded".into(), excluded.clone());
            if emass {
                ok.headers
                    .insert("POAM-Emass-Refusals".into(), refusals.clone());
            }
        }
    }
}

/// An export's options, resolved: from the query form's parameters, or fixed by a per-format
/// operation (`/exports/…`) and read from its own parameters.
#[derive(Debug, Clone, Copy)]
struct ExportOptions {
    format: ExportFormat,
    /// As asked: the bundle holds every item whatever it says.
    include_archived: bool,
    oscal_version: oscal::OscalVersion,
    sheet: Sheet,
    template: TemplateParam,
    file: FileParam,
    variant: emass::Variant,
    dry_run: bool,
    strict: bool,
}

impl ExportOptions {
    /// `format` with every option at its default.
    fn of(format: ExportFormat) -> ExportOptions {
        ExportOptions {
            format,
            include_archived: false,
            oscal_version: oscal::OscalVersion::default(),
            sheet: Sheet::Open,
            template: TemplateParam::Rev5,
            file: FileParam::Xlsx,
            variant: emass::Variant::default(),
            dry_run: false,
            strict: false,
        }
    }

    fn archived(self, include: Option<bool>) -> ExportOptions {
        ExportOptions {
            include_archived: include.unwrap_or(false),
            ..self
        }
    }
}

impl ExportParams {
    /// The query form's options, each refused (400) unless it belongs to the format.
    fn resolve(self) -> Result<ExportOptions, ApiError> {
        let p = self;
        let format = p.format.unwrap_or(ExportFormat::Json);
        let sheet = match (format, p.sheet) {
            (ExportFormat::Csv, Some(SheetParam::Closed)) => Sheet::Closed,
            (ExportFormat::Csv, _) => Sheet::Open,
            (_, None) => Sheet::Open,
            (_, Some(_)) => {
                return Err(ApiError::invalid_param(
                    "sheet",
                    "not_applicable",
                    "`sheet` selects the sheet of a csv export; xlsx holds both",
                ))
            }
        };
        let template =
            match (format, p.template) {
                (ExportFormat::Csv | ExportFormat::Xlsx, t) => t.unwrap_or_default(),
                (_, None) => TemplateParam::Rev5,
                (_, Some(_)) => return Err(ApiError::invalid_param(
                    "template",
                    "not_applicable",
                    "`template` selects the FedRAMP template generation of a csv or xlsx export",
                )),
            };
        let file = match (format, p.file) {
            (ExportFormat::Nisp | ExportFormat::Emass, f) => f.unwrap_or_default(),
            (_, None) => FileParam::Xlsx,
            (_, Some(_)) => {
                return Err(ApiError::invalid_param(
                    "as",
                    "not_applicable",
                    "`as` chooses xlsx or csv for a template format (nisp, emass)",
                ))
            }
        };
        // The eMASS parameters belong to the eMASS format.
        for (name, given) in [
            ("variant", p.variant.is_some()),
            ("dry_run", p.dry_run.is_some()),
            ("strict", p.strict.is_some()),
        ] {
            if given && format != ExportFormat::Emass {
                return Err(ApiError::invalid_param(
                    name,
                    "not_applicable",
                    format!("`{name}` belongs to the eMASS export (format=emass)"),
                ));
            }
        }
        Ok(ExportOptions {
            oscal_version: p.oscal_version.unwrap_or_default(),
            sheet,
            template,
            file,
            variant: p.variant.unwrap_or_default(),
            dry_run: p.dry_run.unwrap_or(false),
            strict: p.strict.unwrap_or(false),
            ..ExportOptions::of(format)
        }
        .archived(p.include_archived))
    }
}

/// An export (the query form or a per-format operation): the parameters `P`, read from the
/// query and resolved to options by `resolve`, then the one export code.
async fn export_as<P: serde::de::DeserializeOwned>(
    state: web::Data<AppState>,
    actor: Actor,
    req: &HttpRequest,
    path: web::Path<SystemId>,
    resolve: impl FnOnce(P) -> Result<ExportOptions, ApiError>,
) -> Result<HttpResponse, ApiError> {
    actor.require(Permission::Read)?;
    let options = resolve(query::<P>(req)?)?;
    run_export(state, actor, path.into_inner(), options).await
}

/// Writes the export `o` asks for (recorded in the history), and answers it.
async fn run_export(
    state: web::Data<AppState>,
    actor: Actor,
    system_id: SystemId,
    o: ExportOptions,
) -> Result<HttpResponse, ApiError> {
    let ExportOptions {
        format,
        include_archived,
        oscal_version,
        sheet,
        template,
        file: as_file,
        variant,
        dry_run,
        strict,
    } = o;
    let archived = include_archived || format == ExportFormat::Json;
    let is_emass = format == ExportFormat::Emass;
    let word = match format {
        ExportFormat::Json => "json",
        ExportFormat::Oscal => "oscal",
        ExportFormat::Csv => "csv",
        ExportFormat::Xlsx => "xlsx",
        ExportFormat::Nisp => "nisp",
        ExportFormat::Emass => "emass",
    };
    let mut details = Vec::new();
    if format == ExportFormat::Csv {
        details.push(format!(
            "sheet={}",
            if sheet == Sheet::Closed {
                "closed"
            } else {
                "open"
            }
        ));
    }
    if template == TemplateParam::V3 {
        details.push("template=v3".to_owned());
    }
    if is_emass {
        details.push(format!("variant={}", variant.as_str()));
    }
    if matches!(format, ExportFormat::Nisp | ExportFormat::Emass) && as_file == FileParam::Csv {
        details.push("as=csv".to_owned());
    }
    let record = ExchangeRecord {
        id: uuid::Uuid::new_v4().to_string(),
        format: word.to_owned(),
        detail: (!details.is_empty()).then(|| details.join("&")),
        by: actor.sub.clone(),
        counts: None,
    };
    // One slot per export, per token subject and overall, held until the client has the
    // whole export or stops taking it: refused at once (429 / 503) before any work.
    let pass = state
        .protection
        .enter(Heavy::Export, &actor.sub, CHUNK * 4)?;
    // eMASS: the dry run answers, and strict refuses, from one snapshot before anything is
    // recorded or written.
    if is_emass && (dry_run || strict) {
        let scope = actor.scope.clone();
        let tally = state
            .db(move |conn| {
                db::snapshot(conn, |conn| {
                    let head = store::head(conn, system_id, &scope)?;
                    emass_tally(conn, &head, archived, variant, true)
                })
            })
            .await?;
        if dry_run {
            return Ok(HttpResponse::Ok().json(tally.dry_run(variant)));
        }
        if tally.refused > 0 {
            return Err(tally.refusal());
        }
    }
    let scope = actor.scope.clone();
    let sub = actor.sub.clone();
    // The export is recorded, then the snapshot is written: both before the 200, so an unknown
    // system, an empty OSCAL export or a saturated pool still get a problem.
    let excluded = state
        .db(move |conn| {
            let head = store::head(conn, system_id, &scope)?;
            let items = head.live_items
                + if archived {
                    head.archived_unresolved
                } else {
                    0
                };
            if format == ExportFormat::Oscal && items == 0 {
                return Err(StoreError::Conflict(Violation::new(
                    "nothing_to_export",
                    "",
                    "an OSCAL POA&M needs at least one poam-item: this system has no items",
                )));
            }
            store::record_export(conn, system_id, &scope, &record, &sub)?;
            Ok(if archived {
                0
            } else {
                head.archived_unresolved
            })
        })
        .await?;
    // The snapshot goes to a spool file at database speed and the connection back to the pool
    // before the first byte is sent: a slow or stalled client holds a file, never a connection.
    let sub = actor.sub.clone();
    let span = tracing::Span::current();
    let spool_dir = state.spool_dir.clone();
    let pool = state.pool.clone();
    let banner = state.classification_banner.clone();
    let refusals = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let refused = refusals.clone();
    let (file, len) = web::block(move || -> Result<(std::fs::File, u64), StoreError> {
        let _entered = span.enter();
        let spool = super::evidence::Spool {
            path: spool_dir.join(format!("export-{}", uuid::Uuid::new_v4())),
        };
        let mut w = io::BufWriter::with_capacity(CHUNK, create_private(&spool.path)?);
        let mut conn = db::checkout(&pool)?;
        let scope = poam_domain::SystemScope::All;
        let result = db::snapshot(&mut conn, |conn| {
            let head = store::head(conn, system_id, &scope)?;
            match format {
                ExportFormat::Json => write_bundle(conn, &head, &sub, &mut w),
                ExportFormat::Oscal => {
                    write_oscal(conn, &head, archived, oscal_version, &spool_dir, &mut w)
                }
                ExportFormat::Csv => write_csv(conn, &head, archived, sheet, template, &mut w),
                ExportFormat::Xlsx => {
                    write_xlsx(conn, &head, archived, template, &spool_dir, &mut w)
                }
                ExportFormat::Nisp => {
                    write_nisp(conn, &head, archived, as_file, &spool_dir, &mut w)
                }
                ExportFormat::Emass => {
                    let out = EmassOut {
                        variant,
                        banner: &banner,
                        exported_by: &sub,
                        file: as_file,
                        spool_dir: &spool_dir,
                    };
                    let n = write_emass(conn, &head, archived, &out, &mut w)?;
                    refused.store(n, std::sync::atomic::Ordering::Relaxed);
                    if strict && n > 0 {
                        // An item changed between the check and this snapshot.
                        return Err(StoreError::Invalid(vec![Violation::new(
                            "emass_refused",
                            "",
                            "an item changed while the export was checked and eMASS would now refuse it: retry",
                        )]));
                    }
                    Ok(())
                }
            }?;
            w.flush().map_err(io_err)
        });
        conn.settle(result)?;
        drop(conn);
        let written = w.into_inner().map_err(|e| io_err(e.into_error()))?;
        let len = written.metadata().map_err(io_err)?.len();
        // Opened again for reading; the name goes when `spool` drops, the open file stays.
        let file = std::fs::File::open(&spool.path).map_err(io_err)?;
        Ok((file, len))
    })
    .await
    .map_err(|_| ApiError::Internal)??;
    let body =
        crate::protection::stream_spool(file, len, state.protection.limits.send_idle, Some(pass));
    let (content_type, extension) = match format {
        ExportFormat::Json => ("application/json", "json"),
        ExportFormat::Oscal => (OSCAL_JSON, "oscal.json"),
        ExportFormat::Csv => (CSV, "csv"),
        ExportFormat::Xlsx => (XLSX, "xlsx"),
        ExportFormat::Nisp => match as_file {
            FileParam::Xlsx => (XLSX, "nisp.xlsx"),
            FileParam::Csv => (CSV, "nisp.csv"),
        },
        ExportFormat::Emass => match as_file {
            FileParam::Xlsx => (XLSX, "xlsx"),
            FileParam::Csv => (CSV, "csv"),
        },
    };
    let generation = if template == TemplateParam::V3 {
        "-v3"
    } else {
        ""
    };
    let name = match (format, sheet) {
        (ExportFormat::Csv, Sheet::Closed) => {
            format!("poam-{system_id}{generation}-closed.{extension}")
        }
        (ExportFormat::Csv, Sheet::Open) => {
            format!("poam-{system_id}{generation}-open.{extension}")
        }
        (ExportFormat::Emass, _) => {
            format!("poam-{system_id}-emass-{}.{extension}", variant.as_str())
        }
        _ => format!("poam-{system_id}{generation}.{extension}"),
    };
    let mut response = HttpResponse::Ok();
    if is_emass {
        let n = refusals.load(std::sync::atomic::Ordering::Relaxed);
        response.insert_header((crate::emass_xlsx::REFUSALS_HEADER, n.to_string()));
    }
    Ok(response
        .insert_header((header::CONTENT_TYPE, content_type))
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{name}\""),
        ))
        .insert_header((ARCHIVED_EXCLUDED, excluded.to_string()))
        .body(body))
}

// ---------------------------------------------------------------------------------------------
// One operation per export format: the query form's export with the format fixed, each with
// one success media type (what generated clients need to type the answer) and only its own
// options. Same authorization, limits, history records and headers as `export_system`.

/// The options of `exports/oscal`.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct OscalExportParams {
    /// Include archived items. Without it they are left out and a metadata prop (and the
    /// `POAM-Archived-Unresolved-Excluded` header) says how many unresolved ones.
    include_archived: Option<bool>,
    /// `1.1.2` (default, the version FedRAMP targets) or `1.2.1`.
    #[param(inline)]
    oscal_version: Option<oscal::OscalVersion>,
}

/// The options of `exports/fedramp-csv`.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct FedrampCsvParams {
    /// The template's `open` (default) or `closed` sheet.
    #[param(inline)]
    sheet: Option<SheetParam>,
    /// The template generation, `rev5` (default) or `v3`.
    #[param(inline)]
    template: Option<TemplateParam>,
    /// Include archived items (left out by default: see `POAM-Archived-Unresolved-Excluded`).
    include_archived: Option<bool>,
}

/// The options of `exports/fedramp-xlsx`.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct FedrampXlsxParams {
    /// The template generation of the workbook, `rev5` (default) or `v3`.
    #[param(inline)]
    template: Option<TemplateParam>,
    /// Include archived items in both sheets (left out by default).
    include_archived: Option<bool>,
}

/// The options of `exports/emass-xlsx` and `exports/emass-csv`.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EmassExportParams {
    /// The layout: `navy` (default, A–AG), `army` (A–AO) or `marine` (A–AF).
    #[param(inline)]
    variant: Option<emass::Variant>,
    /// Refuse the export (422 `emass_refused`) when eMASS would refuse any item.
    strict: Option<bool>,
    /// Include archived items (left out by default).
    include_archived: Option<bool>,
}

/// The options of `exports/emass-dry-run`.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EmassDryRunParams {
    /// The layout checked: `navy` (default), `army` or `marine`.
    #[param(inline)]
    variant: Option<emass::Variant>,
    /// Check archived items too (left out by default, as from the export).
    include_archived: Option<bool>,
}

/// The options of `exports/nisp-xlsx` and `exports/nisp-csv`.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct NispExportParams {
    /// Include archived items among the rows (left out by default).
    include_archived: Option<bool>,
}

/// `exports/json` takes no option: the bundle holds every item.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BundleExportParams {}

impl OscalExportParams {
    fn options(self) -> Result<ExportOptions, ApiError> {
        Ok(ExportOptions {
            oscal_version: self.oscal_version.unwrap_or_default(),
            ..ExportOptions::of(ExportFormat::Oscal)
        }
        .archived(self.include_archived))
    }
}

impl FedrampCsvParams {
    fn options(self) -> Result<ExportOptions, ApiError> {
        let sheet = match self.sheet {
            Some(SheetParam::Closed) => Sheet::Closed,
            _ => Sheet::Open,
        };
        Ok(ExportOptions {
            sheet,
            template: self.template.unwrap_or_default(),
            ..ExportOptions::of(ExportFormat::Csv)
        }
        .archived(self.include_archived))
    }
}

impl FedrampXlsxParams {
    fn options(self) -> Result<ExportOptions, ApiError> {
        Ok(ExportOptions {
            template: self.template.unwrap_or_default(),
            ..ExportOptions::of(ExportFormat::Xlsx)
        }
        .archived(self.include_archived))
    }
}

impl EmassExportParams {
    fn options(self, file: FileParam) -> Result<ExportOptions, ApiError> {
        Ok(ExportOptions {
            variant: self.variant.unwrap_or_default(),
            strict: self.strict.unwrap_or(false),
            file,
            ..ExportOptions::of(ExportFormat::Emass)
        }
        .archived(self.include_archived))
    }
}

impl EmassDryRunParams {
    fn options(self) -> Result<ExportOptions, ApiError> {
        Ok(ExportOptions {
            variant: self.variant.unwrap_or_default(),
            dry_run: true,
            ..ExportOptions::of(ExportFormat::Emass)
        }
        .archived(self.include_archived))
    }
}

impl NispExportParams {
    fn options(self, file: FileParam) -> Result<ExportOptions, ApiError> {
        Ok(ExportOptions {
            file,
            ..ExportOptions::of(ExportFormat::Nisp)
        }
        .archived(self.include_archived))
    }
}

/// Export the auditor bundle (`export_system` with `format=json`).
///
/// The system, items with milestones, status changes, reviews and evidence metadata, and the
/// whole hash chain with its head, from one snapshot (schema at `/v1/schemas/export-bundle.json`).
#[utoipa::path(
    operation_id = "export_json",
    tag = "exchange",
    params(("system_id" = uuid::Uuid, Path, description = "The system's id.")),
    responses(
        (status = 200, description = "The auditor bundle.", body = ExportBundle,
         headers(("Content-Disposition" = String, description = "attachment; filename=poam-{system_id}.json"))),
        ListProblems,
    ),
    security(("bearer" = []))
)]
#[get("/systems/{system_id}/exports/json")]
pub async fn export_json(
    state: web::Data<AppState>,
    actor: Actor,
    req: HttpRequest,
    path: web::Path<SystemId>,
) -> Result<HttpResponse, ApiError> {
    export_as(state, actor, &req, path, |_: BundleExportParams| {
        Ok(ExportOptions::of(ExportFormat::Json))
    })
    .await
}

/// Export an OSCAL POA&M (`export_system` with `format=oscal`).
///
/// OSCAL 1.1.2 (or `oscal_version=1.2.1`) in FedRAMP's conventions, valid by NIST's schema of
/// that version; uuids are derived from internal ids, so re-exports are stable.
#[utoipa::path(
    operation_id = "export_oscal",
    tag = "exchange",
    params(("system_id" = uuid::Uuid, Path, description = "The system's id."), OscalExportParams),
    responses(
        (status = 200, description = "The OSCAL plan-of-action-and-milestones document.",
         body = super::docs::OscalPoamDocument, content_type = "application/oscal+json",
         headers(("Content-Disposition" = String, description = "attachment; filename=poam-{system_id}.oscal.json"))),
        ListProblems,
        (status = 409, description = "OSCAL needs at least one item (`nothing_to_export`).", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
#[get("/systems/{system_id}/exports/oscal")]
pub async fn export_oscal(
    state: web::Data<AppState>,
    actor: Actor,
    req: HttpRequest,
    path: web::Path<SystemId>,
) -> Result<HttpResponse, ApiError> {
    export_as(state, actor, &req, path, OscalExportParams::options).await
}

/// Export one sheet of the FedRAMP POA&M template as CSV (`export_system` with `format=csv`).
///
/// Rev5 (columns A–AE, the default) or `template=v3`; the open (default) or `closed` sheet;
/// UTF-8 with a byte-order mark.
#[utoipa::path(
    operation_id = "export_fedramp_csv",
    tag = "exchange",
    params(("system_id" = uuid::Uuid, Path, description = "The system's id."), FedrampCsvParams),
    responses(
        (status = 200, description = "The sheet as CSV.", body = String, content_type = "text/csv",
         headers(("Content-Disposition" = String, description = "attachment; filename=poam-{system_id}[-v3]-{open|closed}.csv"))),
        ListProblems,
    ),
    security(("bearer" = []))
)]
#[get("/systems/{system_id}/exports/fedramp-csv")]
pub async fn export_fedramp_csv(
    state: web::Data<AppState>,
    actor: Actor,
    req: HttpRequest,
    path: web::Path<SystemId>,
) -> Result<HttpResponse, ApiError> {
    export_as(state, actor, &req, path, FedrampCsvParams::options).await
}

/// Export the FedRAMP POA&M template workbook (`export_system` with `format=xlsx`).
///
/// Rev5 (open and closed sheets, the default) or `template=v3` (header block, row labels,
/// Closed, Configuration Findings and PL-2 Findings sheets).
#[utoipa::path(
    operation_id = "export_fedramp_xlsx",
    tag = "exchange",
    params(("system_id" = uuid::Uuid, Path, description = "The system's id."), FedrampXlsxParams),
    responses(
        (status = 200, description = "The workbook.", body = super::docs::Workbook,
         content_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
         headers(("Content-Disposition" = String, description = "attachment; filename=poam-{system_id}[-v3].xlsx"))),
        ListProblems,
    ),
    security(("bearer" = []))
)]
#[get("/systems/{system_id}/exports/fedramp-xlsx")]
pub async fn export_fedramp_xlsx(
    state: web::Data<AppState>,
    actor: Actor,
    req: HttpRequest,
    path: web::Path<SystemId>,
) -> Result<HttpResponse, ApiError> {
    export_as(state, actor, &req, path, FedrampXlsxParams::options).await
}

/// Export the eMASS POA&M template workbook (`export_system` with `format=emass`).
///
/// The `variant` layout with the banner and header block, one row per milestone, checked by
/// eMASS's rules: `POAM-Emass-Refusals` says how many items eMASS would refuse
/// (`exports/emass-dry-run` says which and why; `strict=true` refuses the export instead).
#[utoipa::path(
    operation_id = "export_emass_xlsx",
    tag = "exchange",
    params(("system_id" = uuid::Uuid, Path, description = "The system's id."), EmassExportParams),
    responses(
        (status = 200, description = "The workbook.", body = super::docs::Workbook,
         content_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
         headers(("Content-Disposition" = String, description = "attachment; filename=poam-{system_id}-emass-{variant}.xlsx"))),
        ListProblems,
        (status = 422, description = "`strict=true` and eMASS would refuse items (`emass_refused`): each item and broken rule in `errors`.", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
#[get("/systems/{system_id}/exports/emass-xlsx")]
pub async fn export_emass_xlsx(
    state: web::Data<AppState>,
    actor: Actor,
    req: HttpRequest,
    path: web::Path<SystemId>,
) -> Result<HttpResponse, ApiError> {
    export_as(state, actor, &req, path, |p: EmassExportParams| {
        p.options(FileParam::Xlsx)
    })
    .await
}

/// Export the eMASS POA&M template as CSV (`export_system` with `format=emass&as=csv`).
///
/// Row 7's column headers, then the rows (no banner or header block); `POAM-Emass-Refusals`
/// and `strict` as for the workbook.
#[utoipa::path(
    operation_id = "export_emass_csv",
    tag = "exchange",
    params(("system_id" = uuid::Uuid, Path, description = "The system's id."), EmassExportParams),
    responses(
        (status = 200, description = "The template's columns as CSV.", body = String, content_type = "text/csv",
         headers(("Content-Disposition" = String, description = "attachment; filename=poam-{system_id}-emass-{variant}.csv"))),
        ListProblems,
        (status = 422, description = "`strict=true` and eMASS would refuse items (`emass_refused`): each item and broken rule in `errors`.", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
#[get("/systems/{system_id}/exports/emass-csv")]
pub async fn export_emass_csv(
    state: web::Data<AppState>,
    actor: Actor,
    req: HttpRequest,
    path: web::Path<SystemId>,
) -> Result<HttpResponse, ApiError> {
    export_as(state, actor, &req, path, |p: EmassExportParams| {
        p.options(FileParam::Csv)
    })
    .await
}

/// What an eMASS export would hold, and which items eMASS would refuse and why
/// (`export_system` with `format=emass&dry_run=true`). Nothing is recorded.
#[utoipa::path(
    operation_id = "export_emass_dry_run",
    tag = "exchange",
    params(("system_id" = uuid::Uuid, Path, description = "The system's id."), EmassDryRunParams),
    responses(
        (status = 200, description = "The items and eMASS's refusals (rule codes).", body = crate::emass_xlsx::EmassDryRun),
        ListProblems,
    ),
    security(("bearer" = []))
)]
#[get("/systems/{system_id}/exports/emass-dry-run")]
pub async fn export_emass_dry_run(
    state: web::Data<AppState>,
    actor: Actor,
    req: HttpRequest,
    path: web::Path<SystemId>,
) -> Result<HttpResponse, ApiError> {
    export_as(state, actor, &req, path, EmassDryRunParams::options).await
}

/// Export the DCSA/NISP POA&M template workbook (`export_system` with `format=nisp`).
///
/// The header block (company, CAGE code, DSS UID, ISSM / A-ISSM, last quarterly review) and
/// every item in one sheet.
#[utoipa::path(
    operation_id = "export_nisp_xlsx",
    tag = "exchange",
    params(("system_id" = uuid::Uuid, Path, description = "The system's id."), NispExportParams),
    responses(
        (status = 200, description = "The workbook.", body = super::docs::Workbook,
         content_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
         headers(("Content-Disposition" = String, description = "attachment; filename=poam-{system_id}.nisp.xlsx"))),
        ListProblems,
    ),
    security(("bearer" = []))
)]
#[get("/systems/{system_id}/exports/nisp-xlsx")]
pub async fn export_nisp_xlsx(
    state: web::Data<AppState>,
    actor: Actor,
    req: HttpRequest,
    path: web::Path<SystemId>,
) -> Result<HttpResponse, ApiError> {
    export_as(state, actor, &req, path, |p: NispExportParams| {
        p.options(FileParam::Xlsx)
    })
    .await
}

/// Export the DCSA/NISP POA&M template as CSV (`export_system` with `format=nisp&as=csv`).
///
/// The header block, a blank line, then the items.
#[utoipa::path(
    operation_id = "export_nisp_csv",
    tag = "exchange",
    params(("system_id" = uuid::Uuid, Path, description = "The system's id."), NispExportParams),
    responses(
        (status = 200, description = "The template as CSV.", body = String, content_type = "text/csv",
         headers(("Content-Disposition" = String, description = "attachment; filename=poam-{system_id}.nisp.csv"))),
        ListProblems,
    ),
    security(("bearer" = []))
)]
#[get("/systems/{system_id}/exports/nisp-csv")]
pub async fn export_nisp_csv(
    state: web::Data<AppState>,
    actor: Actor,
    req: HttpRequest,
    path: web::Path<SystemId>,
) -> Result<HttpResponse, ApiError> {
    export_as(state, actor, &req, path, |p: NispExportParams| {
        p.options(FileParam::Csv)
    })
    .await
}

/// The JSON Schema (2020-12) of the export bundle.
#[utoipa::path(
    operation_id = "get_export_bundle_schema",
    tag = "exchange",
    responses((status = 200, description = "The JSON Schema (2020-12) of `format=json` exports.", body = super::docs::JsonObject, content_type = "application/schema+json")),
)]
#[get("/schemas/export-bundle.json")]
pub async fn bundle_schema() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/schema+json")
        .json(crate::app::bundle_schema())
}

// ---------------------------------------------------------------------------------------------
// Bulk

/// A batch of item creates and updates.
#[derive(Debug, Deserialize, ToSchema)]
pub struct BulkRequest {
    /// Up to the configured maximum (default 1,000). Each element is an item document
    /// (`ItemWrite`). An element with an `external_id` updates the item with that id (a merge
    /// patch: the members it carries replace the item's) or creates it. Without one, a scanner
    /// finding (`source.identifier` and `assets`) matches the item of the same source, source
    /// identifier and asset; a closed item whose finding reappears is reopened. Anything else
    /// creates an item.
    #[schema(value_type = Vec<super::docs::ItemPatch>)]
    pub items: Vec<serde_json::Value>,
}

/// What became of one element.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BulkStatus {
    Created,
    Updated,
    Unchanged,
    /// A closed item whose finding reappeared, reopened (and updated).
    Reopened,
    Failed,
}

/// One element's result, in the order of the request.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BulkResult {
    pub index: usize,
    pub status: BulkStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<uuid::Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<i64>,
    /// Why the element was refused; its field pointers are relative to the element.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<Problem>,
    /// What the rules set aside or adjusted while taking the element in (a deviation returned
    /// to pending, an import's status kept): never silent.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<FieldError>,
}

/// Counts per status.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct BulkSummary {
    pub created: usize,
    pub updated: usize,
    pub unchanged: usize,
    pub reopened: usize,
    pub failed: usize,
}

/// The answer to a bulk upsert.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BulkResponse {
    pub results: Vec<BulkResult>,
    pub summary: BulkSummary,
}

fn key_of(element: &serde_json::Value) -> BulkKey {
    if let Some(ext) = element.get("external_id").and_then(|v| v.as_str()) {
        return BulkKey::External(ext.to_owned());
    }
    let source = element.get("source");
    let identifier = source
        .and_then(|s| s.get("identifier"))
        .and_then(|v| v.as_str());
    let detector = source
        .and_then(|s| s.get("detector").or_else(|| s.get("kind")))
        .and_then(|v| v.as_str());
    let assets: Vec<&str> = element
        .get("assets")
        .and_then(|a| a.as_array())
        .map(|a| a.iter().filter_map(|v| v.as_str()).collect())
        .unwrap_or_default();
    match (detector, identifier) {
        (Some(d), Some(i)) if !assets.is_empty() => {
            BulkKey::Finding(assets.iter().map(|a| store::finding_key(d, i, a)).collect())
        }
        _ => BulkKey::New,
    }
}

fn invalid(v: Vec<Violation>) -> StoreError {
    StoreError::Invalid(v)
}

/// `?migrate=true` on bulk and imports: an admin takes statuses and decisions in as the
/// document has them (recorded as `migrated` in the history).
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct MigrateParams {
    /// Admins only: take the elements' statuses, transition dates and decisions as they stand
    /// (a migration from another tool). Without it a new item starts open and an update never
    /// moves a status: bulk refuses such elements, imports keep the item's own and say so.
    migrate: Option<bool>,
}

/// One element through the domain's decision: a creation, or an update of the item it matched.
pub(crate) fn admit(
    element: &serde_json::Value,
    current: Option<&Item>,
    caller: &Caller,
    origin: Origin,
    notes: &mut Vec<Violation>,
) -> Result<ItemFields, StoreError> {
    let admitted = match current {
        None => {
            let fields: ItemFields = parse_fields(element.clone()).map_err(invalid)?;
            change::create(fields, caller, origin, today())?
        }
        Some(current) => {
            let Some(patch) = element.as_object() else {
                return Err(invalid(vec![Violation::new(
                    "invalid_type",
                    "",
                    "an element is a JSON object",
                )]));
            };
            let next = apply_patch(
                &current.fields(),
                patch,
                poam_domain::item::READ_ONLY_FIELDS,
            )
            .map_err(invalid)?;
            change::update(current, next, caller, origin, today())?
        }
    };
    notes.extend(admitted.notes);
    Ok(admitted.fields)
}

fn today() -> chrono::NaiveDate {
    chrono::Utc::now().date_naive()
}

fn result_of(index: usize, outcome: Outcome, notes: Vec<Violation>) -> BulkResult {
    let (status, item, problem) = match outcome {
        Outcome::Created(i) => (BulkStatus::Created, Some(i), None),
        Outcome::Updated(i) => (BulkStatus::Updated, Some(i), None),
        Outcome::Unchanged(i) => (BulkStatus::Unchanged, Some(i), None),
        Outcome::Reopened(i) => (BulkStatus::Reopened, Some(i), None),
        Outcome::Failed(e) => (BulkStatus::Failed, None, Some(ApiError::from(e).problem())),
    };
    BulkResult {
        index,
        status,
        id: item.as_ref().map(|i| i.id.as_uuid()),
        display_id: item.as_ref().map(|i| i.display_id.clone()),
        version: item.as_ref().map(|i| i.version),
        problem,
        notes: notes.into_iter().map(FieldError::from).collect(),
    }
}

/// Create or update many items at once (editor): one result per element.
///
/// Each element applies whole or not at all, in its own savepoint of one transaction; a bad
/// element is reported (with field errors) and never blocks the others. Scanner findings are
/// de-duplicated by (source, source identifier, asset). Every element goes through the same
/// decisions as `POST` and `PATCH`: a status moves only through transitions (unless an admin
/// migrates), a decided deviation is an approver's, a closed or risk-accepted item is frozen.
#[utoipa::path(
    operation_id = "bulk_upsert_items",
    tag = "exchange",
    params(("system_id" = uuid::Uuid, Path, description = "The system's id."), MigrateParams),
    request_body(content = BulkRequest, example = json!({"items": [
        {"external_id": "nessus-104743-lb1", "title": "TLS 1.0 enabled", "description": "The load balancer accepts TLS 1.0.",
         "source": {"kind": "scan", "detector": "Tenable Nessus", "identifier": "104743"},
         "assets": ["lb-prod-1.example.org"], "risk_rating": "moderate", "detected_on": "2026-11-01"}
    ]})),
    responses(
        (status = 200, description = "One result per element, in order.", body = BulkResponse),
        WriteProblems,
    ),
    security(("bearer" = []))
)]
#[post("/systems/{system_id}/items/bulk")]
pub async fn bulk(
    state: web::Data<AppState>,
    actor: Actor,
    req: HttpRequest,
    path: web::Path<SystemId>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    actor.require(Permission::WriteItems)?;
    let system_id = path.into_inner();
    let migrate = query::<MigrateParams>(&req)?;
    // A slot and a share of the memory budget, taken before the body is read.
    let _pass = state.protection.enter(
        Heavy::Write,
        &actor.sub,
        crate::protection::json_reservation(&req, state.import_limit),
    )?;
    let doc = json_document(&req, payload, state.import_limit).await?;
    let elements = match doc {
        serde_json::Value::Object(mut m) if m.len() == 1 && m.contains_key("items") => {
            match m.remove("items") {
                Some(serde_json::Value::Array(a)) => a,
                _ => {
                    return Err(ApiError::Invalid(vec![FieldError::body(
                        "/items",
                        "invalid_type",
                        "must be an array of item documents",
                    )]))
                }
            }
        }
        _ => {
            return Err(ApiError::Invalid(vec![FieldError::body(
                "",
                "invalid_type",
                "the body is {\"items\": [...]}",
            )]))
        }
    };
    if elements.len() > state.bulk_max {
        return Err(ApiError::BatchTooLarge {
            limit: state.bulk_max,
        });
    }
    let keys: Vec<BulkKey> = elements.iter().map(key_of).collect();
    let caller = actor.caller();
    let origin = Origin {
        channel: Channel::Bulk,
        migrate: migrate.migrate.unwrap_or(false),
    };
    // A migration the caller may not make is refused whole, before any element.
    change::check_migrate(&caller, origin).map_err(StoreError::from)?;
    let (outcomes, notes) = state
        .db(move |conn| {
            let mut notes: Vec<Vec<Violation>> = vec![Vec::new(); elements.len()];
            let outcomes = store::bulk_upsert(
                conn,
                system_id,
                &actor.scope,
                &actor.sub,
                origin.migrate,
                &keys,
                |i, current| {
                    let element = &elements[i];
                    if !element.is_object() {
                        return Err(invalid(vec![Violation::new(
                            "invalid_type",
                            "",
                            "an element is a JSON object",
                        )]));
                    }
                    admit(element, current, &caller, origin, &mut notes[i])
                },
                None,
            )?;
            Ok((outcomes, notes))
        })
        .await?;
    let mut summary = BulkSummary::default();
    let results: Vec<BulkResult> = outcomes
        .into_iter()
        .zip(notes)
        .enumerate()
        .map(|(i, (o, notes))| {
            match &o {
                Outcome::Created(_) => summary.created += 1,
                Outcome::Updated(_) => summary.updated += 1,
                Outcome::Unchanged(_) => summary.unchanged += 1,
                Outcome::Reopened(_) => summary.reopened += 1,
                Outcome::Failed(_) => summary.failed += 1,
            }
            result_of(i, o, notes)
        })
        .collect();
    Ok(HttpResponse::Ok().json(BulkResponse { results, summary }))
}

// ---------------------------------------------------------------------------------------------
// OSCAL import

/// What became of one poam-item.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ImportResult {
    /// The poam-item's uuid.
    pub uuid: String,
    /// Where it is in the document.
    pub pointer: String,
    /// The document's `POAM-ID`, if it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub poam_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<uuid::Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_id: Option<String>,
    /// Why it was not imported; field pointers name the item field (`/risk_rating`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<Problem>,
    /// What the rules set aside while importing it (a status kept, a deviation taken in as
    /// pending, a milestone move recorded): every member is accounted for.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<FieldError>,
}

/// The answer to an import.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ImportReport {
    pub document_uuid: String,
    pub oscal_version: String,
    pub created: Vec<ImportResult>,
    pub updated: Vec<ImportResult>,
    /// Already imported and unchanged.
    pub skipped: Vec<ImportResult>,
    /// Refused by the rules, or (with `on_dangling=skip`) kept out by a dangling reference,
    /// each reference named in the problem's errors.
    pub failed: Vec<ImportResult>,
    /// Every member of the document with no place in the service, and why: unknown,
    /// unparseable (the value quoted), not kept, or a dangling reference.
    pub unmapped: Vec<oscal::Unmapped>,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct OscalImportParams {
    /// Admins only: take the items' statuses, transition dates and decisions as they stand
    /// (a migration from another tool). Without it a new item starts open and an update never
    /// moves a status: the import keeps the item's own and says so.
    migrate: Option<bool>,
    /// `refuse` (default): a document with a reference to nothing in it is refused whole,
    /// each reference named. `skip`: what is consistent is imported, and each poam-item a
    /// dangling reference touches is listed in `failed` with its references.
    #[param(inline)]
    on_dangling: Option<oscal::OnDangling>,
}

/// Import an OSCAL POA&M (JSON, OSCAL 1.0.x to 1.2.x) into a system (editor; approver too for
/// closed or risk-accepted items).
///
/// Each poam-item becomes an item (with its risk's status, deadline, facets, deviations and
/// milestone tasks, and its observation's source and assets), recorded as `imported` in the
/// history. Importing the same document again changes nothing: items and milestones are keyed
/// by the document's uuids, and a system's own export is recognised by the uuids it derives
/// from its ids. A document whose references dangle is refused whole, each reference named
/// (`on_dangling=skip` imports the rest). Remediations are read by lifecycle (the planned one
/// is the plan, with the milestones), facets by FedRAMP's `state`; a missing risk rating is
/// derived from likelihood and impact (NIST SP 800-30 Table I-2) and noted on the item.
#[utoipa::path(
    operation_id = "import_oscal",
    tag = "exchange",
    params(("system_id" = uuid::Uuid, Path, description = "The system's id."), OscalImportParams),
    request_body(content = super::docs::OscalPoamDocument, description = "An OSCAL `plan-of-action-and-milestones` document (1.1.2 or 1.2.1).", content_type = "application/json"),
    responses(
        (status = 200, description = "What was created, updated, skipped or refused, and what could not be mapped.", body = ImportReport),
        WriteProblems,
    ),
    security(("bearer" = []))
)]
#[post("/systems/{system_id}/imports/oscal")]
pub async fn import_oscal(
    state: web::Data<AppState>,
    actor: Actor,
    req: HttpRequest,
    path: web::Path<SystemId>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    actor.require(Permission::WriteItems)?;
    let system_id = path.into_inner();
    let migrate = query::<OscalImportParams>(&req)?;
    let caller = actor.caller();
    let origin = Origin {
        channel: Channel::Import,
        migrate: migrate.migrate.unwrap_or(false),
    };
    change::check_migrate(&caller, origin).map_err(StoreError::from)?;
    // Another system's import is a 404 whatever the document says.
    let scope = actor.scope.clone();
    state
        .db(move |conn| poam_persistence::systems::get(conn, system_id, &scope))
        .await?;
    // A slot and a share of the memory budget, taken before the body is read.
    let _pass = state.protection.enter(
        Heavy::Write,
        &actor.sub,
        crate::protection::json_reservation(&req, state.import_limit),
    )?;
    let doc = json_document(&req, payload, state.import_limit).await?;
    let options = oscal::ReadOptions {
        on_dangling: migrate.on_dangling.unwrap_or_default(),
    };
    let plan = oscal::read(&doc, options)
        .map_err(|v| ApiError::Invalid(v.into_iter().map(FieldError::from).collect()));
    // The plan owns what it took: the document's tree is not held through the writes.
    drop(doc);
    let plan = plan?;
    let mut failed = Vec::new();
    for k in plan.kept_out {
        failed.push(ImportResult {
            uuid: k.uuid,
            pointer: k.pointer,
            poam_id: k.poam_id,
            id: None,
            display_id: None,
            problem: Some(
                ApiError::Invalid(k.dangling.into_iter().map(FieldError::from).collect()).problem(),
            ),
            notes: Vec::new(),
        });
    }
    let mut ready = Vec::new();
    // What the report says of each item written: its uuid, pointer and POA&M id, and notes.
    let mut drafts = Vec::new();
    for mut d in plan.items {
        match parse_fields::<ItemFields>(d.fields.to_document()) {
            Ok(fields) => {
                ready.push(ImportItem {
                    uuid: d.uuid.clone(),
                    poam_id: d.poam_id.clone(),
                    fields,
                    milestones: std::mem::take(&mut d.milestones),
                });
                drafts.push((d.uuid, d.pointer, d.poam_id, d.notes));
            }
            Err(v) => failed.push(ImportResult {
                uuid: d.uuid,
                pointer: d.pointer,
                poam_id: d.poam_id,
                id: None,
                display_id: None,
                problem: Some(ApiError::from(invalid(v)).problem()),
                notes: d.notes.into_iter().map(FieldError::from).collect(),
            }),
        }
    }
    let mut record = ExchangeRecord {
        id: uuid::Uuid::new_v4().to_string(),
        format: format!("oscal {}", plan.oscal_version),
        detail: Some(plan.uuid.clone()),
        by: actor.sub.clone(),
        counts: None,
    };
    let (outcomes, notes) = state
        .db(move |conn| {
            let mut notes: Vec<Vec<Violation>> = vec![Vec::new(); ready.len()];
            let (outcomes, milestone_notes) = store::import_oscal(
                conn,
                system_id,
                &actor.scope,
                &actor.sub,
                origin.migrate,
                &mut record,
                &ready,
                |i, current| {
                    let admitted = match current {
                        None => change::create(ready[i].fields.clone(), &caller, origin, today())?,
                        Some(current) => change::update(
                            current,
                            ready[i].fields.clone(),
                            &caller,
                            origin,
                            today(),
                        )?,
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
    let mut report = ImportReport {
        document_uuid: plan.uuid,
        oscal_version: plan.oscal_version,
        created: vec![],
        updated: vec![],
        skipped: vec![],
        failed,
        unmapped: plan.unmapped,
    };
    for (((uuid, pointer, poam_id, read_notes), o), notes) in
        drafts.into_iter().zip(outcomes).zip(notes)
    {
        let mut r = ImportResult {
            uuid,
            pointer,
            poam_id,
            id: None,
            display_id: None,
            problem: None,
            notes: read_notes
                .into_iter()
                .chain(notes)
                .map(FieldError::from)
                .collect(),
        };
        let list = match o {
            Outcome::Created(i) => {
                (r.id, r.display_id) = (Some(i.id.as_uuid()), Some(i.display_id));
                &mut report.created
            }
            Outcome::Updated(i) | Outcome::Reopened(i) => {
                (r.id, r.display_id) = (Some(i.id.as_uuid()), Some(i.display_id));
                &mut report.updated
            }
            Outcome::Unchanged(i) => {
                (r.id, r.display_id) = (Some(i.id.as_uuid()), Some(i.display_id));
                &mut report.skipped
            }
            Outcome::Failed(e) => {
                r.problem = Some(ApiError::from(e).problem());
                &mut report.failed
            }
        };
        list.push(r);
    }
    Ok(HttpResponse::Ok().json(report))
}
