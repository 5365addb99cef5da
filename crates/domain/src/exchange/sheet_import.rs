//! Reading POA&M spreadsheets: the FedRAMP template (Rev4, Rev5 and v3.0 layouts, open, closed
//! and configuration-findings sheets) and the eMASS template (2026 Navy, Army and Marine Corps
//! layouts, the gen-2 and older DISA layouts, STIG Manager's headerless export; both milestone
//! layouts: the canonical one where an item's first row carries its columns and its first
//! milestone and the following rows only milestone columns, and the one that repeats every
//! column on every row).
//!
//! Pure: the HTTP room reads the workbook (or CSV) into [`Grid`]s of cell values; this module
//! finds each sheet's header row by its labels, maps the columns it knows, lists those it does
//! not (with the reason), turns each row into an item draft keyed by the sheet's own id, parses
//! free-text milestone cells ("Implement X 10/25/2018", FedRAMP's Planned Milestones and
//! Milestone Changes) into milestones with dates and changes, and keeps what it cannot parse
//! as text on the item. Every field it fills remembers the cell it came from, so a refusal
//! names the cell (`Open POA&M Items!K12`).

use super::oscal::{FieldsDraft, MilestoneDraft, UnmappedReason};
use crate::item::{Deviation, Person, Resources, Source, VendorDependency};
use crate::workflow::{MilestoneChange, MilestoneStatus};
use crate::{DeviationKind, DeviationStatus, ItemStatus, Level, RiskRating, SourceKind};
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

/// One cell's value as the workbook holds it (values only: formulas are refused before).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Empty,
    Text(String),
    Number(f64),
    /// A real date (an Excel date cell).
    Date(NaiveDate),
    Bool(bool),
    /// An error value (`#REF!`, `#N/A`).
    Error(String),
}

impl Value {
    fn text(&self) -> Option<String> {
        let s = match self {
            Value::Empty => return None,
            Value::Text(s) => s.trim().to_owned(),
            Value::Number(n) => {
                if n.fract() == 0.0 && n.abs() < 1e15 {
                    format!("{n:.0}")
                } else {
                    n.to_string()
                }
            }
            Value::Date(d) => super::fedramp::date(*d),
            Value::Bool(b) => if *b { "Yes" } else { "No" }.to_owned(),
            Value::Error(_) => return None,
        };
        (!s.is_empty()).then_some(s)
    }
}

/// One sheet: `rows[r][c]` is the cell at row `r + 1`, column `c` (0 is `A`).
#[derive(Debug, Clone, PartialEq)]
pub struct Grid {
    pub name: String,
    pub rows: Vec<Vec<Value>>,
}

/// The template family an import reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Fedramp,
    Emass,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Fedramp => "fedramp",
            Format::Emass => "emass",
        }
    }
}

/// A column letter: 0 is `A`, 26 is `AA`.
pub fn column_letter(mut c: usize) -> String {
    let mut out = Vec::new();
    loop {
        out.push(b'A' + (c % 26) as u8);
        if c < 26 {
            break;
        }
        c = c / 26 - 1;
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

/// A cell reference as the answer names it: `Open POA&M Items!K12` (row 1-based).
pub fn cell_ref(sheet: &str, row: usize, col: usize) -> String {
    format!("{sheet}!{}{row}", column_letter(col))
}

/// Something about one cell: a refusal of the whole workbook (a formula, an unparseable date),
/// or a note on a row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct CellIssue {
    /// `Sheet!A1`, or the sheet name alone for a sheet-level issue.
    pub cell: String,
    pub code: &'static str,
    pub message: String,
}

impl CellIssue {
    pub fn new(cell: impl Into<String>, code: &'static str, message: impl Into<String>) -> Self {
        CellIssue {
            cell: cell.into(),
            code,
            message: message.into(),
        }
    }
}

/// A column of a recognised sheet the import does not map, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct UnmappedColumn {
    pub sheet: String,
    /// Column letter.
    pub column: String,
    /// The header's text.
    pub header: String,
    pub reason: UnmappedReason,
    pub detail: String,
}

/// A milestone read from a row: the draft the rules decide, and the due-date changes the sheet
/// records for it (FedRAMP's Milestone Changes), oldest first.
#[derive(Debug, Clone, PartialEq)]
pub struct SheetMilestone {
    pub draft: MilestoneDraft,
    pub changes: Vec<MilestoneChange>,
}

impl SheetMilestone {
    /// Records a move of the due date the sheet tells of (from the current date unless it says;
    /// reason and author defaulted when it does not give them).
    fn move_to(
        &mut self,
        to: NaiveDate,
        from: Option<NaiveDate>,
        reason: String,
        by: Option<String>,
        at: NaiveDate,
    ) {
        self.changes.push(MilestoneChange {
            from: from.unwrap_or(self.draft.due_on),
            to,
            reason: if reason.is_empty() {
                "recorded in the imported sheet".into()
            } else {
                reason
            },
            by: by.unwrap_or_else(|| "imported sheet".into()),
            at: midnight(at),
        });
        self.draft.due_on = to;
    }
}

/// One item read from the sheet (one row, or an eMASS item's rows).
#[derive(Debug, Clone, PartialEq)]
pub struct RowDraft {
    pub sheet: String,
    /// The item's first row (1-based).
    pub row: usize,
    /// The sheet's own id of the item (FedRAMP POAM ID; eMASS POA&M Item ID, else Security
    /// Checks): the item's external id.
    pub key: Option<String>,
    /// The cell of the key (or of the row's first column when it has none).
    pub key_cell: String,
    pub fields: FieldsDraft,
    pub milestones: Vec<SheetMilestone>,
    /// The sheet gave no detection date: today was taken for a new item (an update keeps the
    /// item's own).
    pub detected_defaulted: bool,
    /// What reading set aside or decided (milestone text kept as text, a default taken).
    pub notes: Vec<CellIssue>,
    /// Why the row cannot be imported before the rules even look (no key, a duplicate key, a
    /// value the field does not take).
    pub errors: Vec<CellIssue>,
    /// The cell each top-level field came from, by field name (`title`, `risk_rating`).
    pub cells: Vec<(&'static str, String)>,
}

impl RowDraft {
    /// The cell a field pointer (`/risk_rating`, `/owner/email`) came from; the key's cell
    /// when the row does not say.
    pub fn cell_of(&self, pointer: &str) -> String {
        let field = pointer
            .trim_start_matches('/')
            .split('/')
            .next()
            .unwrap_or("");
        self.cells
            .iter()
            .find(|(f, _)| *f == field)
            .map_or_else(|| self.key_cell.clone(), |(_, c)| c.clone())
    }
}

/// What a workbook turned into.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The layouts recognised, one per sheet read (`Open POA&M Items: fedramp rev5`).
    pub layouts: Vec<String>,
    pub rows: Vec<RowDraft>,
    pub unmapped: Vec<UnmappedColumn>,
}

// ---------------------------------------------------------------------------------------------
// Columns

/// What a column holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Col {
    Key,
    SecurityChecks,
    Controls,
    Title,
    Description,
    Detector,
    SourceIdentifier,
    Assets,
    Contact,
    OfficeOrg,
    Resources,
    RemediationPlan,
    Detected,
    Scheduled,
    PlannedMilestones,
    MilestoneChanges,
    StatusDate,
    VendorDependency,
    VendorCheckIn,
    VendorProduct,
    RiskRating,
    AdjustedRating,
    RiskAdjustment,
    FalsePositive,
    OperationalRequirement,
    DeviationRationale,
    Comments,
    Cves,
    Status,
    CompletionDate,
    MilestoneDescription,
    MilestoneStatus,
    MilestoneStatusComments,
    MilestoneDue,
    MilestoneCompleted,
    /// eMASS gen-2: "Implement Procedure A 10/25/2018", one a row.
    MilestoneWithDate,
    RawSeverity,
    Severity,
    Likelihood,
    Impact,
    Mitigations,
    Recommendations,
    /// eMASS's Identification Source Details: the detector, the check and CVEs, `;`-separated.
    SourceDetails,
    /// Army: personnel and non-personnel resources, funded or not.
    FundedHours,
    UnfundedHours,
    FundedAmount,
    UnfundedAmount,
    /// A known column deliberately not kept (the detail says why).
    Skip(&'static str),
}

/// Header text normalised for matching: lower case, letters, digits and `&`, single spaces.
pub fn normalize_label(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut space = false;
    for ch in s.chars() {
        if ch.is_alphanumeric() || ch == '&' {
            if space && !out.is_empty() {
                out.push(' ');
            }
            space = false;
            out.extend(ch.to_lowercase());
        } else {
            space = true;
        }
    }
    out
}

const NOT_KEPT_EMASS_RISK: &str =
    "eMASS's risk analysis value: the service keeps likelihood, impact and its own risk rating";

/// The column a header names, for a format.
fn column_of(format: Format, label: &str) -> Option<Col> {
    let l = label;
    let col = match format {
        Format::Fedramp => match l {
            "poam id" | "poa&m id" => Col::Key,
            "controls" => Col::Controls,
            "weakness name" => Col::Title,
            "weakness description" => Col::Description,
            "weakness detector source" => Col::Detector,
            "weakness source identifier" => Col::SourceIdentifier,
            "asset identifier" => Col::Assets,
            "point of contact" => Col::Contact,
            "resources required" => Col::Resources,
            "overall remediation plan" | "remediation plan" => Col::RemediationPlan,
            "original detection date" => Col::Detected,
            "scheduled completion date" => Col::Scheduled,
            "planned milestones" => Col::PlannedMilestones,
            "milestone changes" => Col::MilestoneChanges,
            "status date" => Col::StatusDate,
            "vendor dependency" | "vendor dependence" => Col::VendorDependency,
            "last vendor check in date" => Col::VendorCheckIn,
            "vendor dependent product name" => Col::VendorProduct,
            "original risk rating" => Col::RiskRating,
            "adjusted risk rating" => Col::AdjustedRating,
            "risk adjustment" => Col::RiskAdjustment,
            "false positive" => Col::FalsePositive,
            "operational requirement" => Col::OperationalRequirement,
            "deviation rationale" => Col::DeviationRationale,
            "comments" => Col::Comments,
            "cve" | "cves" => Col::Cves,
            "supporting documents" => Col::Skip(
                "evidence files are uploaded to an item (POST /v1/items/{id}/evidence), not imported from their names",
            ),
            "auto approve" => Col::Skip("FedRAMP's own approval flag: the service has no field for it"),
            "bod 22 01 tracking"
            | "bod 22 01 due date"
            | "binding operational directive 22 01 tracking"
            | "binding operational directive 22 01 due date" => Col::Skip(
                "KEV tracking is derived from the CVEs and the KEV catalog, not imported",
            ),
            "service name" => Col::Skip("the service has no field for the service name"),
            _ => return None,
        },
        Format::Emass => {
            if l.starts_with("mitigations") {
                return Some(Col::Mitigations);
            }
            match l {
                "poa&m item id" => Col::Key,
                "control vulnerability description" => Col::Description,
                "controls aps" | "security control number nc na controls only" => Col::Controls,
                "security checks" => Col::SecurityChecks,
                "poa&m status" | "status" => Col::Status,
                "poa&m scheduled completion date" | "scheduled completion date" => Col::Scheduled,
                "poa&m completion date" => Col::CompletionDate,
                "milestone description" => Col::MilestoneDescription,
                "milestone status" => Col::MilestoneStatus,
                "milestone status comments" => Col::MilestoneStatusComments,
                "milestone scheduled completion date" => Col::MilestoneDue,
                "milestone completion date" => Col::MilestoneCompleted,
                "milestone with completion dates" => Col::MilestoneWithDate,
                "milestone changes" => Col::MilestoneChanges,
                "identification source" | "source identifying vulnerability" => Col::Detector,
                "office org" => Col::OfficeOrg,
                "resources required" => Col::Resources,
                "comments" => Col::Comments,
                "raw severity" => Col::RawSeverity,
                "severity" => Col::Severity,
                "likelihood" => Col::Likelihood,
                "impact" => Col::Impact,
                "devices affected" => Col::Assets,
                "recommendations" => Col::Recommendations,
                "milestone id" => Col::Skip(
                    "generated by eMASS; milestones are matched by their order within the item",
                ),
                "poa&m requested risk accepted expiration date" => Col::Skip(
                    "a risk acceptance's expiry is recorded with the approver's risk-acceptance review",
                ),
                "identification source details" => Col::SourceDetails,
                "resulting residual risk after proposed mitigations" => Col::AdjustedRating,
                "personnel resources funded base hours" => Col::FundedHours,
                "personnel resources unfunded base hours" => Col::UnfundedHours,
                "non personnel resources funded amount" => Col::FundedAmount,
                "non personnel resources unfunded amount" => Col::UnfundedAmount,
                "predisposing conditions" | "threat description" | "impact description" => {
                    Col::Skip("the service has no field for it")
                }
                "relevance of threat" | "residual risk level" => Col::Skip(NOT_KEPT_EMASS_RISK),
                _ if l.starts_with("personnel resources")
                    || l.starts_with("non personnel resources")
                    || l == "identified in cfo audit or other review" =>
                {
                    Col::Skip("an eMASS (VA/Army) cost or audit field the service has no field for")
                }
                _ => return None,
            }
        }
    };
    Some(col)
}

/// The labels a header row must have to be recognised.
fn required(format: Format) -> &'static [&'static [&'static str]] {
    match format {
        Format::Fedramp => &[
            &["poam id", "poa&m id"],
            &["weakness name", "weakness description"],
        ],
        Format::Emass => &[
            &["control vulnerability description"],
            &["poa&m status", "status"],
        ],
    }
}

/// Sheets that carry instructions or examples, never items.
fn skipped_sheet(name: &str) -> bool {
    let n = normalize_label(name);
    [
        "instructions",
        "example",
        "examples",
        "glossary",
        "sheet1",
        "8500 ia controls",
    ]
    .contains(&n.as_str())
        || n.starts_with("record of changes")
        || n.starts_with("instruction")
}

/// Where a sheet's header is and what each column holds.
struct Layout {
    header_row: usize,
    columns: Vec<(usize, Col)>,
    name: String,
    /// Column A holds row labels (FedRAMP v3.0: Guidance, Examples, Mandatory or Situational).
    row_labels: bool,
}

impl Layout {
    fn col(&self, c: Col) -> Option<usize> {
        self.columns.iter().find(|(_, k)| *k == c).map(|(i, _)| *i)
    }
}

/// How many header rows down a sheet the header may be.
const HEADER_SCAN: usize = 30;

fn find_layout(format: Format, grid: &Grid) -> Option<(Layout, Vec<(usize, String)>)> {
    for (r, row) in grid.rows.iter().take(HEADER_SCAN).enumerate() {
        let labels: Vec<(usize, String)> = row
            .iter()
            .enumerate()
            .filter_map(|(c, v)| match v {
                Value::Text(s) => Some((c, normalize_label(s))),
                _ => None,
            })
            .filter(|(_, l)| !l.is_empty())
            .collect();
        let has = |any: &[&str]| labels.iter().any(|(_, l)| any.contains(&l.as_str()));
        if !required(format).iter().all(|any| has(any)) {
            continue;
        }
        let mut columns: Vec<(usize, Col)> = Vec::new();
        let mut unknown = Vec::new();
        for (c, l) in &labels {
            match column_of(format, l) {
                // A label twice (the DISA template's hidden column A): the later one counts
                // when the first is column A.
                Some(k @ Col::Skip(_)) => columns.push((*c, k)),
                Some(k) => match columns.iter().position(|(_, q)| *q == k) {
                    Some(at) if columns[at].0 == 0 => columns[at] = (*c, k),
                    Some(_) => unknown.push((*c, l.clone())),
                    None => columns.push((*c, k)),
                },
                None => unknown.push((*c, l.clone())),
            }
        }
        let name = layout_name(format, &labels);
        let row_labels = format == Format::Fedramp && !columns.iter().any(|(c, _)| *c == 0);
        return Some((
            Layout {
                header_row: r,
                columns,
                name,
                row_labels,
            },
            unknown,
        ));
    }
    None
}

fn layout_name(format: Format, labels: &[(usize, String)]) -> String {
    let has = |l: &str| labels.iter().any(|(_, x)| x == l);
    match format {
        Format::Fedramp => {
            // v3.0 renamed the plan and dropped the milestone columns; the BOD 22-01 columns'
            // full names are Rev5's too (FedRAMP's own Rev5 workbook carries them).
            if (has("remediation plan") && !has("overall remediation plan"))
                || (has("cve") && !has("planned milestones"))
            {
                "fedramp v3.0".into()
            } else if has("bod 22 01 tracking")
                || has("binding operational directive 22 01 tracking")
                || has("cve")
                || has("service name")
            {
                "fedramp rev5".into()
            } else {
                "fedramp rev4".into()
            }
        }
        Format::Emass => {
            if has("poa&m status") {
                if has("resulting residual risk after proposed mitigations") {
                    "emass 2026 navy".into()
                } else if has("identified in cfo audit or other review") {
                    "emass 2026 army".into()
                } else {
                    "emass 2026 marine corps".into()
                }
            } else if has("milestone with completion dates") && has("controls aps") {
                "emass gen-2".into()
            } else {
                "emass legacy (DISA RMF)".into()
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Values

/// Days from Excel's day 0 (1899-12-30, the 1900 date system with its leap-year bug) to a date.
pub fn excel_serial_date(serial: f64) -> Option<NaiveDate> {
    if !(1.0..2_958_466.0).contains(&serial) {
        return None;
    }
    NaiveDate::from_ymd_opt(1899, 12, 30)?.checked_add_days(chrono::Days::new(serial as u64))
}

const DATE_FORMATS: &[&str] = &[
    "%m/%d/%Y",
    "%Y-%m-%d",
    "%Y/%m/%d",
    "%m-%d-%Y",
    "%d-%b-%Y",
    "%d-%b-%y",
    "%d %b %Y",
    "%B %d, %Y",
    "%b %d, %Y",
    "%B %d %Y",
    "%b %d %Y",
    "%m/%d/%y",
];

/// A date as spreadsheets write it: `MM/DD/YYYY` (and `M/D/YY`), ISO 8601 (a time part is
/// ignored), `DD-MMM-YY`, `Month D, YYYY`.
pub fn parse_date_text(s: &str) -> Option<NaiveDate> {
    let s = s.trim();
    let s = s
        .split_once('T')
        .filter(|(d, _)| d.len() == 10 && d.as_bytes().get(4) == Some(&b'-'))
        .map_or(s, |(d, _)| d);
    let s = match s.split_once(' ') {
        Some((d, t)) if t.contains(':') && !d.is_empty() => d,
        _ => s,
    };
    for f in DATE_FORMATS {
        if let Ok(d) = NaiveDate::parse_from_str(s, f) {
            // `%m/%d/%Y` accepts two-digit years as years 0..99: leave those to `%y`.
            if f.contains("%Y") && d.year_ce().1 < 100 {
                continue;
            }
            return Some(d);
        }
    }
    None
}

trait YearCe {
    fn year_ce(&self) -> (bool, u32);
}

impl YearCe for NaiveDate {
    fn year_ce(&self) -> (bool, u32) {
        use chrono::Datelike;
        Datelike::year_ce(self)
    }
}

fn date_of(v: &Value) -> Result<Option<NaiveDate>, String> {
    match v {
        Value::Empty => Ok(None),
        Value::Date(d) => Ok(Some(*d)),
        Value::Number(n) => excel_serial_date(*n)
            .map(Some)
            .ok_or_else(|| format!("the number {n} is not a date")),
        Value::Text(s) if s.trim().is_empty() => Ok(None),
        Value::Text(s) => parse_date_text(s).map(Some).ok_or_else(|| {
            format!(
                "`{}` is not a date (write MM/DD/YYYY, YYYY-MM-DD or a date cell)",
                s.trim()
            )
        }),
        Value::Bool(_) => Err("a boolean is not a date".into()),
        Value::Error(e) => Err(format!("the error value {e} is not a date")),
    }
}

fn rating(s: &str) -> Option<RiskRating> {
    match normalize_label(s).as_str() {
        "critical" | "very high" | "cat i critical" => Some(RiskRating::Critical),
        "high" | "i" | "cat i" | "cat i high" => Some(RiskRating::High),
        "moderate" | "medium" | "ii" | "cat ii" | "cat ii medium" => Some(RiskRating::Moderate),
        "low" | "very low" | "iii" | "cat iii" | "cat iii low" | "cat iii informational" => {
            Some(RiskRating::Low)
        }
        _ => None,
    }
}

fn level(s: &str) -> Option<Level> {
    match normalize_label(s).as_str() {
        "very low" => Some(Level::VeryLow),
        "low" => Some(Level::Low),
        "moderate" | "medium" => Some(Level::Moderate),
        "high" => Some(Level::High),
        "very high" => Some(Level::VeryHigh),
        _ => None,
    }
}

/// FedRAMP's deviation columns: `Yes` (approved), `Pending`, `No` or empty (none).
fn deviation_word(s: &str) -> Option<Option<DeviationStatus>> {
    match normalize_label(s).as_str() {
        "" | "no" | "n" | "false" => Some(None),
        "yes" | "y" | "true" | "approved" => Some(Some(DeviationStatus::Approved)),
        "pending" => Some(Some(DeviationStatus::Pending)),
        "rejected" | "denied" => Some(Some(DeviationStatus::Rejected)),
        _ => None,
    }
}

/// The kind of source a detector's text names (`scan`, `pen test`), if it is one.
fn source_kind(s: &str) -> Option<SourceKind> {
    let n = normalize_label(s).replace(' ', "_");
    n.parse::<SourceKind>().ok()
}

/// A detector's kind guessed from its name: scanners are scans, assessors assessments.
fn guess_kind(s: &str) -> SourceKind {
    let n = normalize_label(s);
    let any = |words: &[&str]| words.iter().any(|w| n.contains(w));
    if any(&[
        "scan",
        "nessus",
        "acas",
        "qualys",
        "tenable",
        "stig",
        "scap",
        "nmap",
        "burp",
        "vulnerability management",
        "patch",
    ]) {
        SourceKind::Scan
    } else if any(&["pen test", "penetration", "pentest"]) {
        SourceKind::PenTest
    } else if any(&["audit"]) {
        SourceKind::Audit
    } else if any(&["incident"]) {
        SourceKind::Incident
    } else if any(&["self assessment", "self"]) {
        SourceKind::SelfAssessment
    } else if any(&["continuous monitoring", "conmon", "monitoring"]) {
        SourceKind::ContinuousMonitoring
    } else {
        SourceKind::Assessment
    }
}

/// A list cell: split on commas, semicolons and line breaks (and spaces, with `spaces`).
fn list(s: &str, spaces: bool) -> Vec<String> {
    s.split(|c: char| {
        c == ',' || c == ';' || c == '\n' || c == '\r' || (spaces && c.is_whitespace())
    })
    .map(str::trim)
    .filter(|t| !t.is_empty())
    .map(str::to_owned)
    .collect()
}

/// `Name <e-mail>`, `Name, e-mail`, or a name.
fn person(s: &str) -> Person {
    let s = s.trim();
    if let (Some(open), true) = (s.rfind('<'), s.ends_with('>')) {
        let email = s[open + 1..s.len() - 1].trim();
        let name = s[..open].trim();
        if email.contains('@') && !name.is_empty() {
            return Person {
                name: name.to_owned(),
                email: Some(email.to_owned()),
            };
        }
    }
    Person {
        name: s.to_owned(),
        email: None,
    }
}

/// eMASS's Office/Org: "Organization, First Last, Phone, e-mail" — the e-mail is the person's,
/// the rest (organisation, name, phone) their name as written.
fn office_org(s: &str) -> Person {
    let parts: Vec<&str> = s
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    let email = parts
        .iter()
        .find(|p| p.contains('@'))
        .map(|e| (*e).to_owned());
    let name = parts
        .iter()
        .filter(|p| !p.contains('@'))
        .copied()
        .collect::<Vec<_>>()
        .join(", ");
    if name.is_empty() {
        return Person {
            name: s.trim().to_owned(),
            email: None,
        };
    }
    Person { name, email }
}

/// FedRAMP's Resources Required as this service writes it ("description; estimated cost $N
/// (one-time); N hours; funded"), or free text (the description).
fn resources(s: &str) -> Resources {
    let mut r = Resources {
        description: None,
        estimated_cost: None,
        hours: None,
        funded: None,
        recurring: None,
    };
    let mut rest = Vec::new();
    for part in s.split("; ") {
        let p = part.trim();
        if let Some(cost) = p.strip_prefix("estimated cost $") {
            let (amount, kind) = cost.split_once(' ').unwrap_or((cost, ""));
            if let Ok(x) = amount.replace(',', "").parse::<f64>() {
                r.estimated_cost = Some(x);
                r.recurring = match kind {
                    "(recurring)" => Some(true),
                    "(one-time)" => Some(false),
                    _ => None,
                };
                continue;
            }
        }
        if let Some(h) = p.strip_suffix(" hours") {
            if let Ok(x) = h.parse::<f64>() {
                r.hours = Some(x);
                continue;
            }
        }
        match p {
            "funded" => r.funded = Some(true),
            "not funded" => r.funded = Some(false),
            _ => rest.push(part),
        }
    }
    let d = rest.join("; ");
    if !d.trim().is_empty() {
        r.description = Some(d.trim().to_owned());
    }
    r
}

/// eMASS statuses, and FedRAMP's by sheet: the service's status, and what it makes of the
/// dates.
fn emass_status(s: &str) -> Option<ItemStatus> {
    match normalize_label(s).as_str() {
        "ongoing" | "open" => Some(ItemStatus::Open),
        "completed" | "closed" | "not applicable" | "n a" | "archived" => Some(ItemStatus::Closed),
        "risk accepted" | "ao approved risk accepted" => Some(ItemStatus::RiskAccepted),
        _ => None,
    }
}

fn milestone_status(s: &str) -> Option<MilestoneStatus> {
    match normalize_label(s).as_str() {
        "open" | "planned" | "not started" | "delayed" => Some(MilestoneStatus::Planned),
        "in progress" | "ongoing" => Some(MilestoneStatus::InProgress),
        "completed" | "complete" | "closed" => Some(MilestoneStatus::Completed),
        "archived" | "cancelled" | "canceled" => Some(MilestoneStatus::Cancelled),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// Milestone text

/// A date inside free text: the first token (or `Month D, YYYY` run) that reads as a date, with
/// the byte range it spans.
pub fn find_date(s: &str) -> Option<(NaiveDate, usize, usize)> {
    let tokens: Vec<(usize, &str)> = s
        .split_whitespace()
        .map(|t| (t.as_ptr() as usize - s.as_ptr() as usize, t))
        .collect();
    let trim = |t: &str| -> (usize, usize) {
        let start = t.len() - t.trim_start_matches(['(', '[']).len();
        let body = t.trim_start_matches(['(', '[']);
        let body = body.trim_end_matches([':', ',', '.', ';', ')', ']']);
        (start, start + body.len())
    };
    for (i, (at, t)) in tokens.iter().enumerate() {
        let (a, b) = trim(t);
        if b > a {
            if let Some(d) = parse_date_text(&t[a..b]) {
                return Some((d, at + a, at + b));
            }
        }
        // Month D, YYYY
        if let (Some((_, day)), Some((yat, year))) = (tokens.get(i + 1), tokens.get(i + 2)) {
            let (_, yb) = trim(year);
            let candidate = format!("{t} {day} {}", &year[..yb]);
            if let Some(d) = parse_date_text(&candidate.replace(",", ", ").replace(",  ", ", ")) {
                return Some((d, *at, yat + yb));
            }
        }
    }
    None
}

/// A line's leading enumerator — `(1)`, `1.`, `1)`, `#1`, `-`, `•` — and the rest.
fn enumerator(line: &str) -> (Option<usize>, &str) {
    let t = line.trim();
    if let Some(rest) = t.strip_prefix('(') {
        if let Some((n, after)) = rest.split_once(')') {
            if let Ok(n) = n.trim().parse::<usize>() {
                return (Some(n), after.trim());
            }
        }
    }
    let digits: String = t
        .trim_start_matches('#')
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    if !digits.is_empty() {
        let after = &t.trim_start_matches('#')[digits.len()..];
        if let Some(rest) = after.strip_prefix(['.', ')', ':']) {
            if let Ok(n) = digits.parse::<usize>() {
                return (Some(n), rest.trim());
            }
        }
    }
    if let Some(rest) = t.strip_prefix(['-', '•', '*']) {
        return (None, rest.trim());
    }
    (None, t)
}

/// Text around a removed date, tidied: separators at its ends and a dangling `by`/`due`/`on`.
fn tidy(before: &str, after: &str) -> String {
    let seps: &[char] = &[':', '-', '–', ',', ';', ' ', '.'];
    let b = before.trim().trim_end_matches(seps).trim();
    let b = ["by", "due", "on", "due by", "due on"]
        .iter()
        .find_map(|w| {
            b.to_ascii_lowercase()
                .strip_suffix(w)
                .filter(|rest| rest.is_empty() || rest.ends_with(' '))
                .map(|rest| b[..rest.len()].trim().to_owned())
        })
        .unwrap_or_else(|| b.to_owned());
    let a = after.trim().trim_start_matches(seps).trim();
    match (b.is_empty(), a.is_empty()) {
        (true, _) => a.to_owned(),
        (false, true) => b.trim_end_matches(seps).to_owned(),
        (false, false) => format!("{} {a}", b.trim_end_matches(seps)),
    }
}

/// One planned milestone read from text: its number (if the text gives one), title and date.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedText {
    pub number: Option<usize>,
    pub title: String,
    pub due_on: NaiveDate,
}

/// A milestone line ("(1) 10/25/2026: Deploy the fix", "Implement Procedure A 10/25/2018",
/// "1. Deploy by 10/25/2026"); `None` when it holds no date or no text besides it.
pub fn parse_planned(line: &str) -> Option<PlannedText> {
    let (number, rest) = enumerator(line);
    let (d, a, b) = find_date(rest)?;
    let title = tidy(&rest[..a], &rest[b..]);
    if title.is_empty() {
        return None;
    }
    Some(PlannedText {
        number,
        title,
        due_on: d,
    })
}

/// One line of a Milestone Changes cell, as understood.
#[derive(Debug, Clone, PartialEq)]
pub enum ChangeText {
    /// "(n) title moved from A to B: reason (by, date)" (this service's export), or FedRAMP's
    /// "(n) Update DATE: reason" (a move to DATE).
    Moved {
        number: Option<usize>,
        to: NaiveDate,
        from: Option<NaiveDate>,
        reason: String,
        by: Option<String>,
        at: Option<NaiveDate>,
    },
    /// "(n) title completed DATE".
    Completed {
        number: Option<usize>,
        on: Option<NaiveDate>,
    },
    /// "(n) title cancelled".
    Cancelled { number: Option<usize> },
    /// FedRAMP's "(n) New DATE: description": a milestone added after the plan.
    New {
        number: Option<usize>,
        title: String,
        due_on: NaiveDate,
    },
}

/// A Milestone Changes line; `None` when it follows none of the forms.
pub fn parse_change(line: &str) -> Option<ChangeText> {
    let (number, rest) = enumerator(line);
    let lower = rest.to_ascii_lowercase();
    if let Some(at) = lower.find(" moved from ") {
        let tail = &rest[at + " moved from ".len()..];
        let (from_s, tail) = tail.split_once(" to ")?;
        let from = parse_date_text(from_s)?;
        let (to_s, tail) = tail.split_once(':').unwrap_or((tail, ""));
        let to = parse_date_text(to_s)?;
        let tail = tail.trim();
        // "reason (by, date)"
        let (reason, by, at) = match (tail.rfind('('), tail.ends_with(')')) {
            (Some(open), true) => {
                let inner = &tail[open + 1..tail.len() - 1];
                match inner.rsplit_once(", ") {
                    Some((by, d)) => match parse_date_text(d) {
                        Some(d) => (tail[..open].trim(), Some(by.trim().to_owned()), Some(d)),
                        None => (tail, None, None),
                    },
                    None => (tail, None, None),
                }
            }
            _ => (tail, None, None),
        };
        return Some(ChangeText::Moved {
            number,
            to,
            from: Some(from),
            reason: reason.to_owned(),
            by,
            at,
        });
    }
    if lower.trim_end().ends_with(" cancelled") || lower.trim_end().ends_with(" canceled") {
        return Some(ChangeText::Cancelled { number });
    }
    if let Some(at) = lower.rfind(" completed") {
        let tail = rest[at + " completed".len()..].trim();
        if tail.is_empty() {
            return Some(ChangeText::Completed { number, on: None });
        }
        if let Some(d) = parse_date_text(tail) {
            return Some(ChangeText::Completed {
                number,
                on: Some(d),
            });
        }
    }
    for (word, new) in [("update", false), ("new", true)] {
        if lower.starts_with(word) {
            let body = &rest[word.len()..];
            let (d, a, b) = find_date(body)?;
            let text = tidy(&body[..a], &body[b..]);
            return Some(if new {
                ChangeText::New {
                    number,
                    title: if text.is_empty() {
                        "Milestone".into()
                    } else {
                        text
                    },
                    due_on: d,
                }
            } else {
                ChangeText::Moved {
                    number,
                    to: d,
                    from: None,
                    reason: text,
                    by: None,
                    at: None,
                }
            });
        }
    }
    None
}

fn midnight(d: NaiveDate) -> DateTime<Utc> {
    d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc()
}

/// Milestones from FedRAMP's Planned Milestones and Milestone Changes cells, and the lines of
/// either that follow no form (kept as text).
pub fn fedramp_milestones(
    planned: &str,
    changes: &str,
    key: &str,
    today: NaiveDate,
) -> (Vec<SheetMilestone>, Vec<String>, Vec<String>) {
    let mut out: Vec<SheetMilestone> = Vec::new();
    let mut numbers: Vec<Option<usize>> = Vec::new();
    let (mut planned_left, mut changes_left) = (Vec::new(), Vec::new());
    let new = |title: String, due: NaiveDate, n: usize| SheetMilestone {
        draft: MilestoneDraft {
            uuid: format!("sheet:{key}#{n}"),
            title,
            description: None,
            due_on: due,
            status: MilestoneStatus::Planned,
            completed_on: None,
            kind: None,
            percent_complete: None,
        },
        changes: Vec::new(),
    };
    for line in planned.lines().filter(|l| !l.trim().is_empty()) {
        match parse_planned(line) {
            Some(p) => {
                let n = out.len() + 1;
                out.push(new(p.title, p.due_on, n));
                numbers.push(p.number);
            }
            None => planned_left.push(line.trim().to_owned()),
        }
    }
    let index = |numbers: &[Option<usize>], n: Option<usize>| -> Option<usize> {
        let n = n?;
        numbers
            .iter()
            .position(|m| *m == Some(n))
            .or_else(|| (n >= 1 && n <= numbers.len()).then(|| n - 1))
    };
    for line in changes.lines().filter(|l| !l.trim().is_empty()) {
        let parsed = parse_change(line);
        let applied = match parsed {
            Some(ChangeText::New {
                number,
                title,
                due_on,
            }) => {
                let n = out.len() + 1;
                out.push(new(title, due_on, n));
                numbers.push(number);
                true
            }
            Some(ChangeText::Moved {
                number,
                to,
                from,
                reason,
                by,
                at,
            }) => match index(&numbers, number) {
                Some(i) => {
                    out[i].move_to(to, from, reason, by, at.unwrap_or(today));
                    true
                }
                None => false,
            },
            Some(ChangeText::Completed { number, on }) => match index(&numbers, number) {
                Some(i) => {
                    out[i].draft.status = MilestoneStatus::Completed;
                    out[i].draft.completed_on = on;
                    true
                }
                None => false,
            },
            Some(ChangeText::Cancelled { number }) => match index(&numbers, number) {
                Some(i) => {
                    out[i].draft.status = MilestoneStatus::Cancelled;
                    true
                }
                None => false,
            },
            None => false,
        };
        if !applied {
            changes_left.push(line.trim().to_owned());
        }
    }
    (out, planned_left, changes_left)
}

// ---------------------------------------------------------------------------------------------
// Rows

/// Reads a row's cells by column.
struct RowReader<'a> {
    grid: &'a Grid,
    layout: &'a Layout,
    row: usize,
}

impl RowReader<'_> {
    fn value(&self, c: Col) -> Option<(&Value, usize)> {
        let col = self.layout.col(c)?;
        Some((
            self.grid
                .rows
                .get(self.row)?
                .get(col)
                .unwrap_or(&Value::Empty),
            col,
        ))
    }

    fn text(&self, c: Col) -> Option<String> {
        self.value(c).and_then(|(v, _)| v.text())
    }

    fn cell(&self, c: Col) -> String {
        let col = self.layout.col(c).unwrap_or(0);
        cell_ref(&self.grid.name, self.row + 1, col)
    }

    /// Whether any mapped column of the row holds something.
    fn any(&self, cols: &[Col]) -> bool {
        cols.iter().any(|c| self.text(*c).is_some())
    }
}

/// Collects the workbook-level refusals (unparseable dates) while rows are read.
#[derive(Default)]
struct Refusals(Vec<CellIssue>);

impl Refusals {
    fn date(&mut self, r: &RowReader, c: Col) -> Option<NaiveDate> {
        let (v, _) = r.value(c)?;
        match date_of(v) {
            Ok(d) => d,
            Err(m) => {
                self.0
                    .push(CellIssue::new(r.cell(c), "unparseable_date", m));
                None
            }
        }
    }
}

struct Build {
    draft: RowDraft,
}

impl Build {
    fn new(sheet: &str, row: usize, key: Option<String>, key_cell: String) -> Build {
        Build {
            draft: RowDraft {
                sheet: sheet.to_owned(),
                row: row + 1,
                key,
                key_cell,
                fields: FieldsDraft::default(),
                milestones: Vec::new(),
                detected_defaulted: false,
                notes: Vec::new(),
                errors: Vec::new(),
                cells: Vec::new(),
            },
        }
    }

    fn from(&mut self, field: &'static str, cell: String) {
        if !self.draft.cells.iter().any(|(f, _)| *f == field) {
            self.draft.cells.push((field, cell));
        }
    }

    fn error(&mut self, cell: String, code: &'static str, message: impl Into<String>) {
        self.draft.errors.push(CellIssue::new(cell, code, message));
    }

    fn note(&mut self, cell: String, code: &'static str, message: impl Into<String>) {
        self.draft.notes.push(CellIssue::new(cell, code, message));
    }

    /// Text kept on the item because it could not be read as milestones.
    fn keep_text(&mut self, label: &str, lines: &[String], cell: String) {
        if lines.is_empty() {
            return;
        }
        let text = format!(
            "{label} (as imported, not read as milestones):\n{}",
            lines.join("\n")
        );
        self.draft.fields.comments = Some(match self.draft.fields.comments.take() {
            Some(c) => format!("{c}\n\n{text}"),
            None => text,
        });
        self.from("comments", cell.clone());
        self.note(
            cell,
            "milestone_text_kept",
            format!(
                "{} line(s) follow no milestone form (text and a date): kept in the item's comments: {}",
                lines.len(),
                lines.join(" | ")
            ),
        );
    }
}

fn fedramp_row(
    grid: &Grid,
    layout: &Layout,
    row: usize,
    closed: bool,
    today: NaiveDate,
    refusals: &mut Refusals,
) -> Build {
    let r = RowReader { grid, layout, row };
    let key = r.text(Col::Key);
    let mut b = Build::new(&grid.name, row, key.clone(), r.cell(Col::Key));
    if key.is_none() {
        b.error(
            r.cell(Col::Key),
            "missing_key",
            "the row has no POAM ID: it is the item's key for later imports",
        );
    }
    let f = &mut b.draft.fields;
    f.external_id = key.clone();
    f.title = r.text(Col::Title).or_else(|| {
        r.text(Col::Description)
            .map(|d| d.lines().next().unwrap_or("").chars().take(250).collect())
    });
    f.description = r.text(Col::Description).or_else(|| f.title.clone());
    f.controls = r
        .text(Col::Controls)
        .map(|s| list(&s, false))
        .unwrap_or_default();
    let detector = r.text(Col::Detector);
    let identifier = r.text(Col::SourceIdentifier);
    f.source = Some(match detector.as_deref() {
        Some(d) => match source_kind(d) {
            Some(kind) => Source {
                details: Default::default(),
                kind,
                detector: None,
                identifier: identifier.clone(),
            },
            None => Source {
                details: Default::default(),
                kind: guess_kind(d),
                detector: Some(d.to_owned()),
                identifier: identifier.clone(),
            },
        },
        None => Source {
            details: Default::default(),
            kind: SourceKind::Assessment,
            detector: None,
            identifier: identifier.clone(),
        },
    });
    f.assets = r
        .text(Col::Assets)
        .map(|s| list(&s, false))
        .unwrap_or_default();
    f.cves = r
        .text(Col::Cves)
        .map(|s| list(&s, true))
        .unwrap_or_default();
    f.owner = r.text(Col::Contact).map(|s| person(&s));
    f.resources = r.text(Col::Resources).map(|s| resources(&s));
    f.remediation_plan = r.text(Col::RemediationPlan);
    f.comments = r.text(Col::Comments);
    let detected = refusals.date(&r, Col::Detected);
    f.scheduled_completion = refusals.date(&r, Col::Scheduled);
    let status_date = refusals.date(&r, Col::StatusDate);
    let check_in = refusals.date(&r, Col::VendorCheckIn);
    if let Some(s) = r.text(Col::RiskRating) {
        match rating(&s) {
            Some(x) => f.risk_rating = Some(x),
            None => b.error(
                r.cell(Col::RiskRating),
                "invalid_value",
                format!("`{s}` is not a risk rating (Low, Moderate, High, Critical)"),
            ),
        }
    }
    let f = &mut b.draft.fields;
    let adjusted = r.text(Col::AdjustedRating);
    let rationale = r.text(Col::DeviationRationale);
    let mut deviation = None;
    let mut bad = Vec::new();
    for (col, kind) in [
        (Col::RiskAdjustment, DeviationKind::RiskAdjustment),
        (Col::FalsePositive, DeviationKind::FalsePositive),
        (
            Col::OperationalRequirement,
            DeviationKind::OperationalRequirement,
        ),
    ] {
        if let Some(s) = r.text(col) {
            match deviation_word(&s) {
                Some(Some(status)) if deviation.is_none() => deviation = Some((kind, status, col)),
                Some(Some(_)) => bad.push((
                    col,
                    "one deviation per item: only the first is taken".to_owned(),
                )),
                Some(None) => {}
                None => bad.push((col, format!("`{s}` is not Yes, Pending or No"))),
            }
        }
    }
    if let Some((kind, status, _)) = deviation {
        f.deviation = Some(Deviation {
            kind,
            status,
            rationale: rationale
                .clone()
                .unwrap_or_else(|| "(no rationale in the sheet)".into()),
            expires_on: None,
        });
    }
    if let Some(a) = adjusted {
        match rating(&a) {
            Some(x) => {
                f.adjusted_risk_rating = Some(x);
                f.risk_justification = rationale.clone();
            }
            None => bad.push((Col::AdjustedRating, format!("`{a}` is not a risk rating"))),
        }
    }
    let vendor = r.text(Col::VendorDependency);
    let product = r.text(Col::VendorProduct);
    if vendor.as_deref().map(normalize_label).as_deref() == Some("yes") || product.is_some() {
        f.vendor_dependency = Some(VendorDependency {
            product: product.unwrap_or_else(|| "(not named in the sheet)".into()),
            vendor: None,
            last_check_in: check_in,
        });
    }
    match detected {
        Some(d) => f.detected_on = Some(d),
        None => {
            f.detected_on = Some(today);
            b.draft.detected_defaulted = true;
        }
    }
    let f = &mut b.draft.fields;
    if closed {
        f.status = Some(ItemStatus::Closed);
        f.completed_on = status_date;
        f.closed_on = status_date;
    } else if matches!(&f.deviation, Some(d) if d.kind == DeviationKind::OperationalRequirement && d.status == DeviationStatus::Approved)
    {
        f.status = Some(ItemStatus::RiskAccepted);
    }
    for (col, m) in bad {
        b.error(r.cell(col), "invalid_value", m);
    }
    if b.draft.detected_defaulted && layout.col(Col::Detected).is_some() {
        let cell = r.cell(Col::Detected);
        b.note(
            cell,
            "detected_on_defaulted",
            "no Original Detection Date: a new item takes today's date, an update keeps the item's",
        );
    }
    // FedRAMP v3.0 has no milestone columns: its Remediation Plan carries them, in the
    // sections this service's v3 export writes.
    let in_plan = layout.col(Col::PlannedMilestones).is_none();
    let (planned, changes, planned_cell, changes_cell) = if in_plan {
        let text = r.text(Col::RemediationPlan).unwrap_or_default();
        let (plan, planned, changes) = super::fedramp_v3::split_remediation_plan(&text);
        let (planned, changes) = (planned.to_owned(), changes.to_owned());
        b.draft.fields.remediation_plan = plan;
        let cell = r.cell(Col::RemediationPlan);
        (planned, changes, cell.clone(), cell)
    } else {
        (
            r.text(Col::PlannedMilestones).unwrap_or_default(),
            r.text(Col::MilestoneChanges).unwrap_or_default(),
            r.cell(Col::PlannedMilestones),
            r.cell(Col::MilestoneChanges),
        )
    };
    let (milestones, planned_left, changes_left) =
        fedramp_milestones(&planned, &changes, key.as_deref().unwrap_or(""), today);
    b.draft.milestones = milestones;
    b.keep_text("Planned Milestones", &planned_left, planned_cell);
    b.keep_text("Milestone Changes", &changes_left, changes_cell);
    if in_plan && layout.col(Col::RemediationPlan).is_some() {
        b.from("milestones", r.cell(Col::RemediationPlan));
    }
    for (field, col) in [
        ("external_id", Col::Key),
        ("title", Col::Title),
        ("description", Col::Description),
        ("controls", Col::Controls),
        ("source", Col::Detector),
        ("assets", Col::Assets),
        ("cves", Col::Cves),
        ("owner", Col::Contact),
        ("resources", Col::Resources),
        ("remediation_plan", Col::RemediationPlan),
        ("comments", Col::Comments),
        ("detected_on", Col::Detected),
        ("scheduled_completion", Col::Scheduled),
        ("status", Col::StatusDate),
        ("completed_on", Col::StatusDate),
        ("closed_on", Col::StatusDate),
        ("vendor_dependency", Col::VendorProduct),
        ("risk_rating", Col::RiskRating),
        ("adjusted_risk_rating", Col::AdjustedRating),
        ("risk_justification", Col::DeviationRationale),
        ("deviation", Col::DeviationRationale),
        ("milestones", Col::PlannedMilestones),
    ] {
        if layout.col(col).is_some() {
            b.from(field, r.cell(col));
        }
    }
    b
}

/// The item columns of an eMASS row (a row with none of them continues the item above).
const EMASS_ITEM_COLS: &[Col] = &[
    Col::Key,
    Col::Description,
    Col::SecurityChecks,
    Col::Controls,
    Col::Status,
    Col::Scheduled,
    Col::OfficeOrg,
    Col::RawSeverity,
];

fn emass_item(
    grid: &Grid,
    layout: &Layout,
    row: usize,
    today: NaiveDate,
    refusals: &mut Refusals,
) -> Build {
    let r = RowReader { grid, layout, row };
    let id = r.text(Col::Key);
    let checks = r.text(Col::SecurityChecks);
    let (key, key_cell) = match (&id, &checks) {
        (Some(k), _) => (Some(k.clone()), r.cell(Col::Key)),
        (None, Some(c)) => (Some(c.clone()), r.cell(Col::SecurityChecks)),
        (None, None) => (None, r.cell(Col::Description)),
    };
    let mut b = Build::new(&grid.name, row, key.clone(), key_cell.clone());
    if key.is_none() {
        b.error(
            key_cell,
            "missing_key",
            "the row has neither a POA&M Item ID nor Security Checks: one of them is the item's key for later imports",
        );
    }
    let description = r.text(Col::Description);
    let f = &mut b.draft.fields;
    f.external_id = key;
    f.title = description.as_ref().map(|d| {
        let first = d.lines().next().unwrap_or("").trim();
        let t: String = first.chars().take(250).collect();
        t
    });
    f.description = description;
    f.controls = r
        .text(Col::Controls)
        .map(|s| list(&s, false))
        .unwrap_or_default();
    // The 2026 templates' Identification Source is a glossary word (the kind); its Details
    // carry the detector, the check and the CVEs. Older templates hold free text.
    let named = r.text(Col::Detector);
    let glossary = named.as_deref().and_then(super::emass::source_kind);
    let mut detector = match glossary {
        Some(_) => None,
        None => named.clone(),
    };
    if let Some(details) = r.text(Col::SourceDetails) {
        for part in details.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            if crate::controls::normalize_cve(part).is_some() {
                f.cves.push(part.to_owned());
            } else if Some(part) != checks.as_deref() && detector.is_none() {
                detector = Some(part.to_owned());
            }
        }
    }
    f.source = Some(Source {
        details: Default::default(),
        kind: glossary.unwrap_or_else(|| {
            detector
                .as_deref()
                .map_or(SourceKind::Assessment, guess_kind)
        }),
        detector,
        identifier: checks,
    });
    f.assets = r
        .text(Col::Assets)
        .map(|s| list(&s, true))
        .unwrap_or_default();
    f.owner = r.text(Col::OfficeOrg).map(|s| office_org(&s));
    f.resources = r.text(Col::Resources).map(|s| Resources {
        description: Some(s),
        estimated_cost: None,
        hours: None,
        funded: None,
        recurring: None,
    });
    f.comments = r.text(Col::Comments);
    f.interim_mitigation = r.text(Col::Mitigations);
    f.remediation_plan = r.text(Col::Recommendations);
    let number = |c: Col| -> Option<f64> {
        match r.value(c) {
            Some((Value::Number(n), _)) => Some(*n),
            Some((v, _)) => v
                .text()
                .and_then(|t| t.replace(',', "").parse::<f64>().ok()),
            None => None,
        }
    };
    for (col, funded, hours) in [
        (Col::FundedHours, true, true),
        (Col::UnfundedHours, false, true),
        (Col::FundedAmount, true, false),
        (Col::UnfundedAmount, false, false),
    ] {
        if let Some(x) = number(col) {
            let res = f.resources.get_or_insert(Resources {
                description: None,
                estimated_cost: None,
                hours: None,
                funded: None,
                recurring: None,
            });
            res.funded = Some(funded);
            if hours {
                res.hours = Some(x);
            } else {
                res.estimated_cost = Some(x);
            }
        }
    }
    f.scheduled_completion = refusals.date(&r, Col::Scheduled);
    let completion = refusals.date(&r, Col::CompletionDate);
    let mut bad = Vec::new();
    for (col, slot) in [(Col::Likelihood, 0), (Col::Impact, 1)] {
        if let Some(s) = r.text(col) {
            match level(&s) {
                Some(l) if slot == 0 => f.likelihood = Some(l),
                Some(l) => f.impact = Some(l),
                None => bad.push((
                    col,
                    format!("`{s}` is not Very Low, Low, Moderate, High or Very High"),
                )),
            }
        }
    }
    if let Some(a) = r.text(Col::AdjustedRating) {
        match rating(&a) {
            Some(x) => {
                f.adjusted_risk_rating = Some(x);
                f.risk_justification = Some(f.interim_mitigation.clone().unwrap_or_else(|| {
                    "The residual risk after the proposed mitigations, as the eMASS sheet states it."
                        .into()
                }));
            }
            None => bad.push((
                Col::AdjustedRating,
                format!("`{a}` is not Very Low, Low, Moderate, High or Very High"),
            )),
        }
    }
    let raw = r.text(Col::RawSeverity).map(|s| (s, Col::RawSeverity));
    let severity = r.text(Col::Severity).map(|s| (s, Col::Severity));
    if let Some((s, col)) = raw.or(severity) {
        match rating(&s) {
            Some(x) => {
                f.risk_rating = Some(x);
                b.from("risk_rating", r.cell(col));
            }
            None => bad.push((
                col,
                format!("`{s}` is not a severity (Very Low … Very High, or CAT I/II/III)"),
            )),
        }
    }
    let f = &mut b.draft.fields;
    if let Some(s) = r.text(Col::Status) {
        match emass_status(&s) {
            Some(st) => {
                f.status = Some(st);
                if st == ItemStatus::Closed {
                    f.completed_on = completion;
                    f.closed_on = completion;
                }
            }
            None => bad.push((Col::Status, format!("`{s}` is not an eMASS status (Ongoing, Completed, Risk Accepted, Not Applicable, Archived)"))),
        }
    }
    // eMASS has no detection date: a new item takes the earliest of today and its own dates
    // (an update keeps the item's).
    f.detected_on = [f.scheduled_completion, f.completed_on, f.closed_on]
        .into_iter()
        .flatten()
        .chain([today])
        .min();
    b.draft.detected_defaulted = true;
    for (col, m) in bad {
        b.error(r.cell(col), "invalid_value", m);
    }
    for (field, col) in [
        ("external_id", Col::Key),
        ("title", Col::Description),
        ("description", Col::Description),
        ("controls", Col::Controls),
        ("source", Col::Detector),
        ("assets", Col::Assets),
        ("owner", Col::OfficeOrg),
        ("resources", Col::Resources),
        ("comments", Col::Comments),
        ("interim_mitigation", Col::Mitigations),
        ("remediation_plan", Col::Recommendations),
        ("cves", Col::SourceDetails),
        ("adjusted_risk_rating", Col::AdjustedRating),
        ("risk_justification", Col::AdjustedRating),
        ("resources", Col::FundedHours),
        ("resources", Col::FundedAmount),
        ("scheduled_completion", Col::Scheduled),
        ("status", Col::Status),
        ("completed_on", Col::CompletionDate),
        ("closed_on", Col::CompletionDate),
        ("likelihood", Col::Likelihood),
        ("impact", Col::Impact),
        ("risk_rating", Col::RawSeverity),
        ("risk_rating", Col::Severity),
    ] {
        if layout.col(col).is_some() {
            b.from(field, r.cell(col));
        }
    }
    b
}

/// The milestone an eMASS row carries (its milestone columns), if any; text that follows no
/// form goes to `left`.
fn emass_milestone(
    r: &RowReader,
    key: &str,
    n: usize,
    today: NaiveDate,
    refusals: &mut Refusals,
    left: &mut Vec<(String, String)>,
) -> Option<SheetMilestone> {
    let uuid = format!("sheet:{key}#{n}");
    if let Some(text) = r.text(Col::MilestoneDescription) {
        let due = refusals.date(r, Col::MilestoneDue);
        let completed = refusals.date(r, Col::MilestoneCompleted);
        let status = r
            .text(Col::MilestoneStatus)
            .and_then(|s| milestone_status(&s))
            .unwrap_or(MilestoneStatus::Planned);
        let Some(due) = due.or(completed) else {
            left.push((r.cell(Col::MilestoneDescription), text));
            return None;
        };
        let title: String = text
            .lines()
            .next()
            .unwrap_or("")
            .chars()
            .take(250)
            .collect();
        let description = r
            .text(Col::MilestoneStatusComments)
            .or_else(|| (title != text).then(|| text.clone()));
        return Some(SheetMilestone {
            draft: MilestoneDraft {
                uuid,
                title,
                description,
                due_on: due,
                status,
                completed_on: if status == MilestoneStatus::Completed {
                    completed
                } else {
                    None
                },
                kind: None,
                percent_complete: None,
            },
            changes: Vec::new(),
        });
    }
    let text = r.text(Col::MilestoneWithDate)?;
    let Some(p) = parse_planned(&text) else {
        left.push((r.cell(Col::MilestoneWithDate), text));
        return None;
    };
    let mut m = SheetMilestone {
        draft: MilestoneDraft {
            uuid,
            title: p.title,
            description: None,
            due_on: p.due_on,
            status: MilestoneStatus::Planned,
            completed_on: None,
            kind: None,
            percent_complete: None,
        },
        changes: Vec::new(),
    };
    if let Some(change) = r.text(Col::MilestoneChanges) {
        match parse_change(&change) {
            Some(ChangeText::Moved {
                to,
                from,
                reason,
                by,
                at,
                ..
            }) => m.move_to(to, from, reason, by, at.unwrap_or(today)),
            Some(ChangeText::Completed { on, .. }) => {
                m.draft.status = MilestoneStatus::Completed;
                m.draft.completed_on = on;
            }
            Some(ChangeText::Cancelled { .. }) => m.draft.status = MilestoneStatus::Cancelled,
            // A bare date after text: the milestone moved to it.
            _ => match find_date(&change) {
                Some((d, a, b)) if d != m.draft.due_on => {
                    m.move_to(d, None, tidy(&change[..a], &change[b..]), None, today);
                }
                Some(_) => {}
                None => left.push((r.cell(Col::MilestoneChanges), change)),
            },
        }
    }
    Some(m)
}

/// An eMASS item being read: its draft, its milestones so far, and milestone text that
/// follows no form (cell, text).
type OpenItem = (Build, usize, Vec<(String, String)>);

/// Reads the sheets of a workbook (or the one sheet of a CSV). `closed_sheet`: for a CSV, the
/// FedRAMP sheet it holds (the sheet name says so in a workbook). Refused whole, each cell
/// named: no sheet with a recognisable header, an unparseable date.
pub fn read(format: Format, sheets: &[Grid], today: NaiveDate) -> Result<Plan, Vec<CellIssue>> {
    let mut plan = Plan {
        layouts: Vec::new(),
        rows: Vec::new(),
        unmapped: Vec::new(),
    };
    let mut refusals = Refusals::default();
    let mut recognised = false;
    for grid in sheets {
        if skipped_sheet(&grid.name) {
            continue;
        }
        let Some((layout, unknown)) = find_layout(format, grid) else {
            continue;
        };
        recognised = true;
        plan.layouts.push(format!("{}: {}", grid.name, layout.name));
        let header = &grid.rows[layout.header_row];
        for (c, k) in &layout.columns {
            if let Col::Skip(why) = k {
                plan.unmapped.push(UnmappedColumn {
                    sheet: grid.name.clone(),
                    column: column_letter(*c),
                    header: header.get(*c).and_then(Value::text).unwrap_or_default(),
                    reason: UnmappedReason::NotKept,
                    detail: (*why).to_owned(),
                });
            }
        }
        for (c, _) in unknown {
            if layout.row_labels && c == 0 {
                continue;
            }
            plan.unmapped.push(UnmappedColumn {
                sheet: grid.name.clone(),
                column: column_letter(c),
                header: header.get(c).and_then(Value::text).unwrap_or_default(),
                reason: UnmappedReason::Unknown,
                detail: format!(
                    "not a column of the {} template this import knows",
                    format.as_str()
                ),
            });
        }
        let closed = normalize_label(&grid.name).contains("closed");
        let mapped: Vec<Col> = layout
            .columns
            .iter()
            .map(|(_, k)| *k)
            .filter(|k| !matches!(k, Col::Skip(_)))
            .collect();
        let mut current: Option<OpenItem> = None;
        let finish = |cur: Option<OpenItem>, plan: &mut Plan| {
            if let Some((mut b, _, left)) = cur {
                if !left.is_empty() {
                    let cell = left[0].0.clone();
                    let lines: Vec<String> = left.into_iter().map(|(_, t)| t).collect();
                    b.keep_text("Milestones", &lines, cell);
                }
                plan.rows.push(b.draft);
            }
        };
        for row in layout.header_row + 1..grid.rows.len() {
            let r = RowReader {
                grid,
                layout: &layout,
                row,
            };
            if !r.any(&mapped) {
                continue;
            }
            // FedRAMP v3.0: rows labelled in column A (Guidance, Examples, …) are not items.
            if layout.row_labels && grid.rows[row].first().and_then(Value::text).is_some() {
                continue;
            }
            match format {
                Format::Fedramp => {
                    let b = fedramp_row(grid, &layout, row, closed, today, &mut refusals);
                    plan.rows.push(b.draft);
                }
                Format::Emass => {
                    let key_here = r.text(Col::Key).or_else(|| r.text(Col::SecurityChecks));
                    let continues = match &current {
                        Some((b, _, _)) => {
                            !r.any(EMASS_ITEM_COLS)
                                || (key_here.is_some() && key_here == b.draft.key)
                        }
                        None => false,
                    };
                    if !continues {
                        finish(current.take(), &mut plan);
                        let b = emass_item(grid, &layout, row, today, &mut refusals);
                        current = Some((b, 0, Vec::new()));
                    }
                    if let Some((b, n, left)) = current.as_mut() {
                        let key = b.draft.key.clone().unwrap_or_default();
                        if let Some(m) =
                            emass_milestone(&r, &key, *n + 1, today, &mut refusals, left)
                        {
                            *n += 1;
                            if b.draft.milestones.is_empty() {
                                let col = layout
                                    .col(Col::MilestoneDescription)
                                    .or(layout.col(Col::MilestoneWithDate))
                                    .unwrap_or(0);
                                b.from("milestones", cell_ref(&grid.name, row + 1, col));
                            }
                            b.draft.milestones.push(m);
                        }
                    }
                }
            }
        }
        finish(current.take(), &mut plan);
    }
    if !refusals.0.is_empty() {
        return Err(refusals.0);
    }
    if !recognised {
        return Err(vec![CellIssue::new(
            sheets.first().map(|g| g.name.clone()).unwrap_or_default(),
            "no_header_row",
            match format {
                Format::Fedramp => "no sheet has the FedRAMP template's header row (POAM ID, Weakness Name, …) in its first 30 rows",
                Format::Emass => "no sheet has the eMASS template's header row (POA&M Item ID, Control Vulnerability Description, POA&M Status, …) in its first 30 rows",
            },
        )]);
    }
    // A key twice: the later rows fail (the first is the item).
    let mut seen: Vec<String> = Vec::new();
    for d in plan.rows.iter_mut() {
        if let Some(k) = &d.key {
            if seen.contains(k) {
                d.errors.push(CellIssue::new(
                    d.key_cell.clone(),
                    "duplicate_key",
                    format!("`{k}` is the key of an item read above: each item once"),
                ));
            } else {
                seen.push(k.clone());
            }
        }
    }
    Ok(plan)
}

/// Parses CSV text (RFC 4180; a byte-order mark is skipped) into one grid. A field this
/// service's export guarded against formulas (a leading `'` before `=`, `+`, `-`, `@`) is read
/// back without the guard; a field that starts with `=` is a formula.
pub fn read_csv(name: &str, text: &str) -> Result<Grid, Vec<CellIssue>> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut rows: Vec<Vec<Value>> = Vec::new();
    let mut row: Vec<Value> = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut was_quoted = false;
    let mut chars = text.chars().peekable();
    let mut formulas = Vec::new();
    let push = |field: &mut String,
                row: &mut Vec<Value>,
                was_quoted: &mut bool,
                rows_len: usize,
                formulas: &mut Vec<CellIssue>| {
        let f = std::mem::take(field);
        let f = match f.strip_prefix('\'') {
            Some(rest) if rest.starts_with(['=', '+', '-', '@', '\t', '\r']) => rest.to_owned(),
            _ => {
                if f.starts_with('=') && !*was_quoted {
                    formulas.push(CellIssue::new(
                        cell_ref(name, rows_len + 1, row.len()),
                        "formula_cell",
                        "the field starts with `=`: a formula, and only values are read",
                    ));
                }
                f
            }
        };
        *was_quoted = false;
        row.push(if f.is_empty() {
            Value::Empty
        } else {
            Value::Text(f)
        });
    };
    while let Some(c) = chars.next() {
        if quoted {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    field.push('"');
                    chars.next();
                } else {
                    quoted = false;
                }
            } else {
                field.push(c);
            }
            continue;
        }
        match c {
            '"' if field.is_empty() => {
                quoted = true;
                was_quoted = true;
            }
            ',' => push(
                &mut field,
                &mut row,
                &mut was_quoted,
                rows.len(),
                &mut formulas,
            ),
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' | '\r' => {
                push(
                    &mut field,
                    &mut row,
                    &mut was_quoted,
                    rows.len(),
                    &mut formulas,
                );
                rows.push(std::mem::take(&mut row));
            }
            _ => field.push(c),
        }
    }
    if !field.is_empty() || !row.is_empty() {
        push(
            &mut field,
            &mut row,
            &mut was_quoted,
            rows.len(),
            &mut formulas,
        );
        rows.push(row);
    }
    if !formulas.is_empty() {
        return Err(formulas);
    }
    Ok(Grid {
        name: name.to_owned(),
        rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap_or_default()
    }

    fn t(s: &str) -> Value {
        if s.is_empty() {
            Value::Empty
        } else {
            Value::Text(s.to_owned())
        }
    }

    fn grid(name: &str, rows: &[&[&str]]) -> Grid {
        Grid {
            name: name.into(),
            rows: rows
                .iter()
                .map(|r| r.iter().map(|c| t(c)).collect())
                .collect(),
        }
    }

    const REV4: [&str; 27] = [
        "POAM ID",
        "Controls",
        "Weakness Name",
        "Weakness Description",
        "Weakness Detector Source",
        "Weakness Source Identifier",
        "Asset Identifier",
        "Point of Contact",
        "Resources Required",
        "Overall Remediation Plan",
        "Original Detection Date",
        "Scheduled Completion Date",
        "Planned Milestones",
        "Milestone Changes",
        "Status Date",
        "Vendor Dependency",
        "Last Vendor Check-in Date",
        "Vendor Dependent Product Name",
        "Original Risk Rating",
        "Adjusted Risk Rating",
        "Risk Adjustment",
        "False Positive",
        "Operational Requirement",
        "Deviation Rationale",
        "Supporting Documents",
        "Comments",
        "Auto-Approve",
    ];

    #[test]
    fn column_letters_run_past_z() {
        assert_eq!(column_letter(0), "A");
        assert_eq!(column_letter(25), "Z");
        assert_eq!(column_letter(26), "AA");
        assert_eq!(column_letter(30), "AE");
        assert_eq!(column_letter(701), "ZZ");
        assert_eq!(column_letter(702), "AAA");
        assert_eq!(cell_ref("Open POA&M Items", 12, 10), "Open POA&M Items!K12");
    }

    #[test]
    fn dates_read_in_the_forms_sheets_use() {
        assert_eq!(parse_date_text("10/25/2018"), Some(d("2018-10-25")));
        assert_eq!(parse_date_text("1/5/26"), Some(d("2026-01-05")));
        assert_eq!(parse_date_text("2014-06-12"), Some(d("2014-06-12")));
        assert_eq!(parse_date_text("2014/05/23"), Some(d("2014-05-23")));
        assert_eq!(parse_date_text("25-Oct-18"), Some(d("2018-10-25")));
        assert_eq!(parse_date_text("October 25, 2018"), Some(d("2018-10-25")));
        assert_eq!(
            parse_date_text("2026-10-01 00:00:00"),
            Some(d("2026-10-01"))
        );
        assert_eq!(parse_date_text("soon"), None);
        assert_eq!(excel_serial_date(45984.0), Some(d("2025-11-23")));
    }

    #[test]
    fn milestone_text_follows_the_templates_guidance() {
        let p = parse_planned("Implement Procedure A 10/25/2018");
        assert_eq!(
            p,
            Some(PlannedText {
                number: None,
                title: "Implement Procedure A".into(),
                due_on: d("2018-10-25")
            })
        );
        let p = parse_planned("(2) 2014-06-12: Milestone  Description");
        assert_eq!(
            p.map(|p| (p.number, p.title, p.due_on)),
            Some((Some(2), "Milestone  Description".into(), d("2014-06-12")))
        );
        let p = parse_planned("1. Deploy the patch by 11/30/2026");
        assert_eq!(
            p.map(|p| (p.number, p.title)),
            Some((Some(1), "Deploy the patch".into()))
        );
        assert_eq!(parse_planned("Talk to the vendor"), None);
        // Text that lower-cases to other lengths never splits a character.
        let p = parse_planned("İİ Überprüfung BY 10/01/2026");
        assert_eq!(p.map(|p| p.title), Some("İİ Überprüfung".to_owned()));
        assert_eq!(parse_change("(1) İİ moved from x"), None);
        assert_eq!(
            parse_change("(1) Deploy moved from 10/01/2026 to 11/01/2026: vendor late (dana@example.org, 09/15/2026)"),
            Some(ChangeText::Moved {
                number: Some(1),
                to: d("2026-11-01"),
                from: Some(d("2026-10-01")),
                reason: "vendor late".into(),
                by: Some("dana@example.org".into()),
                at: Some(d("2026-09-15")),
            })
        );
        assert_eq!(
            parse_change("(2) Update 2014-06-18 : That milestone was delayed"),
            Some(ChangeText::Moved {
                number: Some(2),
                to: d("2014-06-18"),
                from: None,
                reason: "That milestone was delayed".into(),
                by: None,
                at: None
            })
        );
        assert_eq!(
            parse_change("(3) New 2014-06-13 : details of a new milestone"),
            Some(ChangeText::New {
                number: Some(3),
                title: "details of a new milestone".into(),
                due_on: d("2014-06-13")
            })
        );
        assert_eq!(
            parse_change("(1) Deploy completed 10/02/2026"),
            Some(ChangeText::Completed {
                number: Some(1),
                on: Some(d("2026-10-02"))
            })
        );
        assert_eq!(
            parse_change("(1) Deploy cancelled"),
            Some(ChangeText::Cancelled { number: Some(1) })
        );
        assert_eq!(parse_change("we talked"), None);
    }

    #[test]
    fn fedramp_cells_become_milestones_with_their_changes() {
        let (ms, pl, cl) = fedramp_milestones(
            "(1) 10/01/2026: Deploy\n(2) 12/01/2026: Rescan\nAsk the vendor",
            "(1) Deploy moved from 10/01/2026 to 11/01/2026: vendor late (dana, 09/15/2026)\n(2) Rescan completed 11/20/2026\nnothing here",
            "V-1",
            d("2026-11-30"),
        );
        assert_eq!(ms.len(), 2);
        assert_eq!(ms[0].draft.due_on, d("2026-11-01"));
        assert_eq!(ms[0].changes.len(), 1);
        assert_eq!(ms[0].changes[0].from, d("2026-10-01"));
        assert_eq!(ms[0].draft.uuid, "sheet:V-1#1");
        assert_eq!(ms[1].draft.status, MilestoneStatus::Completed);
        assert_eq!(ms[1].draft.completed_on, Some(d("2026-11-20")));
        assert_eq!(pl, vec!["Ask the vendor".to_owned()]);
        assert_eq!(cl, vec!["nothing here".to_owned()]);
    }

    #[test]
    fn a_rev4_sheet_is_found_by_its_labels_below_a_header_block() {
        let mut rows: Vec<Vec<&str>> = vec![
            vec!["CSP", "System Name", "Impact Level", "POAM Date"],
            vec!["Acme", "Cloud", "Moderate", "10/01/2026"],
            vec![],
            REV4.to_vec(),
        ];
        let mut row = vec![""; 27];
        row[0] = "V-1";
        row[1] = "AC-2, SC-8(1)";
        row[2] = "Open port";
        row[3] = "A port is open.";
        row[4] = "Nessus";
        row[5] = "12345";
        row[6] = "host-1, host-2";
        row[7] = "John Doe <john@example.org>";
        row[10] = "09/01/2026";
        row[11] = "12/01/2026";
        row[12] = "(1) 10/01/2026: Close the port\nTalk to vendor";
        row[18] = "High";
        row[19] = "Moderate";
        row[20] = "Pending";
        row[23] = "Compensating firewall rule.";
        row[26] = "No";
        rows.push(row);
        let refs: Vec<&[&str]> = rows.iter().map(Vec::as_slice).collect();
        let g = grid("Open POA&M Items", &refs);
        let plan = read(Format::Fedramp, &[g], d("2026-11-30")).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(
            plan.layouts,
            vec!["Open POA&M Items: fedramp rev4".to_owned()]
        );
        assert_eq!(plan.rows.len(), 1);
        let r = &plan.rows[0];
        assert_eq!(r.row, 5);
        assert_eq!(r.key.as_deref(), Some("V-1"));
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        assert_eq!(
            r.fields.controls,
            vec!["AC-2".to_owned(), "SC-8(1)".to_owned()]
        );
        assert_eq!(r.fields.risk_rating, Some(RiskRating::High));
        assert_eq!(r.fields.adjusted_risk_rating, Some(RiskRating::Moderate));
        assert_eq!(
            r.fields.deviation.as_ref().map(|d| d.status),
            Some(DeviationStatus::Pending)
        );
        assert_eq!(
            r.fields
                .owner
                .as_ref()
                .and_then(|p| p.email.clone())
                .as_deref(),
            Some("john@example.org")
        );
        assert_eq!(r.milestones.len(), 1);
        assert!(r
            .fields
            .comments
            .as_deref()
            .unwrap_or("")
            .contains("Talk to vendor"));
        assert!(r
            .notes
            .iter()
            .any(|n| n.code == "milestone_text_kept" && n.cell == "Open POA&M Items!M5"));
        assert_eq!(r.cell_of("/risk_rating"), "Open POA&M Items!S5");
        assert!(plan
            .unmapped
            .iter()
            .any(|u| u.header == "Supporting Documents" && u.column == "Y"));
        assert!(plan.unmapped.iter().any(|u| u.header == "Auto-Approve"));
    }

    #[test]
    fn unparseable_dates_and_missing_headers_refuse_the_workbook() {
        let mut row = vec![""; 27];
        row[0] = "V-1";
        row[2] = "x";
        row[10] = "sometime";
        let g = grid("Open POA&M Items", &[&REV4, &row]);
        let e = read(Format::Fedramp, &[g], d("2026-11-30"))
            .err()
            .unwrap_or_default();
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].code, "unparseable_date");
        assert_eq!(e[0].cell, "Open POA&M Items!K2");
        let g = grid("Sheet", &[&["a", "b"], &["1", "2"]]);
        let e = read(Format::Emass, &[g], d("2026-11-30"))
            .err()
            .unwrap_or_default();
        assert_eq!(e[0].code, "no_header_row");
    }

    #[test]
    fn emass_canonical_and_repeated_layouts_give_the_same_items() {
        let header: Vec<&str> = vec![
            "",
            "POA&M Item ID",
            "Control Vulnerability Description",
            "Controls / APs",
            "Security Checks",
            "POA&M Status",
            "POA&M Scheduled Completion Date",
            "POA&M Requested Risk Accepted Expiration Date",
            "POA&M Completion Date",
            "Milestone ID",
            "Milestone Description",
            "Milestone Status",
            "Milestone Status Comments",
            "Milestone Scheduled Completion Date",
            "Milestone Completion Date",
            "Identification Source",
            "Identification Source Details",
            "Office/Org",
            "Resources Required",
            "Comments",
            "Raw Severity",
        ];
        let item = |id: &str, m: &str, due: &str| -> Vec<String> {
            let mut r = vec![String::new(); header.len()];
            r[1] = id.into();
            r[2] = "Weak TLS".into();
            r[3] = "SC-8".into();
            r[4] = "SV-1r1_rule".into();
            r[5] = "Ongoing".into();
            r[6] = "12/31/2026".into();
            r[10] = m.into();
            r[11] = "Open".into();
            r[13] = due.into();
            r[15] = "Vulnerability Management".into();
            r[17] = "DoD, John Smith, 7035551212, john@example.org".into();
            r[18] = "Staff".into();
            r[20] = "High".into();
            r
        };
        let only = |m: &str, due: &str| -> Vec<String> {
            let mut r = vec![String::new(); header.len()];
            r[10] = m.into();
            r[11] = "Open".into();
            r[13] = due.into();
            r
        };
        let mk = |rows: Vec<Vec<String>>| {
            let mut all: Vec<Vec<Value>> = vec![vec![t("***** CUI *****")]];
            for _ in 0..5 {
                all.push(vec![]);
            }
            all.push(header.iter().map(|h| t(h)).collect());
            all.extend(rows.into_iter().map(|r| r.iter().map(|c| t(c)).collect()));
            Grid {
                name: "POA&M".into(),
                rows: all,
            }
        };
        let canonical = mk(vec![
            item("101", "Patch", "11/30/2026"),
            only("Rescan", "12/15/2026"),
            item("102", "Fix", "12/01/2026"),
        ]);
        let repeated = mk(vec![
            item("101", "Patch", "11/30/2026"),
            item("101", "Rescan", "12/15/2026"),
            item("102", "Fix", "12/01/2026"),
        ]);
        let today = d("2026-11-30");
        let a = read(Format::Emass, &[canonical], today).unwrap_or_else(|e| panic!("{e:?}"));
        let b = read(Format::Emass, &[repeated], today).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(a.layouts, vec!["POA&M: emass 2026 marine corps".to_owned()]);
        for p in [&a, &b] {
            assert_eq!(p.rows.len(), 2);
            assert_eq!(p.rows[0].key.as_deref(), Some("101"));
            assert_eq!(p.rows[0].row, 8);
            assert_eq!(p.rows[0].milestones.len(), 2);
            assert_eq!(p.rows[0].milestones[1].draft.due_on, d("2026-12-15"));
            assert_eq!(
                p.rows[0]
                    .fields
                    .owner
                    .as_ref()
                    .map(|o| o.name.clone())
                    .as_deref(),
                Some("DoD, John Smith, 7035551212")
            );
            assert_eq!(p.rows[1].milestones.len(), 1);
        }
        assert_eq!(a.rows[0].fields, b.rows[0].fields);
    }

    /// FedRAMP's own Rev5 workbook spells the BOD 22-01 columns out in full (as v3.0 does) and
    /// still has Planned Milestones, Auto-Approve and Service Name: it is Rev5.
    #[test]
    fn a_rev5_header_with_the_bod_columns_spelled_out_is_rev5() {
        let header = [
            "POAM ID",
            "Controls",
            "Weakness Name",
            "Weakness Description",
            "Overall Remediation Plan",
            "Original Detection Date",
            "Planned Milestones",
            "Original Risk Rating",
            "Auto-Approve",
            "Binding Operational Directive 22-01 tracking",
            "Binding Operational Directive 22-01 Due Date",
            "CVE",
            "Service Name",
        ];
        let item = [
            "V-1",
            "AC-2",
            "Stale accounts",
            "Not disabled.",
            "",
            "10/01/2026",
        ];
        let g = grid("Open POA&M Items", &[&header, &item]);
        let plan = read(Format::Fedramp, &[g], d("2026-11-30")).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(
            plan.layouts,
            vec!["Open POA&M Items: fedramp rev5".to_owned()]
        );
        assert_eq!(plan.rows.len(), 1);
    }

    #[test]
    fn v3_row_labels_are_skipped_and_layouts_named() {
        let mut header = vec![""];
        header.extend(super::super::fedramp_v3::OPEN_COLUMNS);
        let mut guidance = vec![""; header.len()];
        guidance[0] = "Guidance";
        guidance[1] = "Unique id";
        guidance[3] = "Name";
        let mut item = vec![""; header.len()];
        item[1] = "V-9";
        item[3] = "A weakness";
        item[4] = "Described.";
        item[11] = "10/01/2026";
        item[17] = "Low";
        let g = grid(
            "Open POA&M Items",
            &[
                &["", "Cloud Service Provider"],
                &[],
                &header,
                &guidance,
                &item,
            ],
        );
        let plan = read(Format::Fedramp, &[g], d("2026-11-30")).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(
            plan.layouts,
            vec!["Open POA&M Items: fedramp v3.0".to_owned()]
        );
        assert_eq!(plan.rows.len(), 1);
        assert_eq!(plan.rows[0].key.as_deref(), Some("V-9"));
        assert_eq!(plan.rows[0].key_cell, "Open POA&M Items!B5");
        assert!(plan.unmapped.iter().all(|u| u.column != "A"));
        let navy: Vec<&str> = [
            "",
            "POA&M Item ID",
            "Control Vulnerability Description",
            "POA&M Status",
            "Resulting Residual Risk after Proposed Mitigations",
        ]
        .to_vec();
        let plan = read(Format::Emass, &[grid("POA&M", &[&navy])], d("2026-11-30"))
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(plan.layouts, vec!["POA&M: emass 2026 navy".to_owned()]);
        let army: Vec<&str> = [
            "",
            "POA&M Item ID",
            "Control Vulnerability Description",
            "POA&M Status",
            "Identified in CFO Audit or other review",
        ]
        .to_vec();
        let plan = read(Format::Emass, &[grid("POA&M", &[&army])], d("2026-11-30"))
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(plan.layouts, vec!["POA&M: emass 2026 army".to_owned()]);
        // The template's Example and Instructions sheets are never items.
        let plan = read(
            Format::Emass,
            &[
                grid("Example", &[&navy, &["", "1", "x", "Ongoing"]]),
                grid("POA&M", &[&navy]),
            ],
            d("2026-11-30"),
        )
        .unwrap_or_else(|e| panic!("{e:?}"));
        assert!(plan.rows.is_empty());
    }

    #[test]
    fn csv_reads_back_what_the_export_guards() {
        let g = read_csv(
            "csv",
            "\u{feff}POAM ID,Weakness Name\r\nV-1,\"a, b\"\r\nV-2,'=1+1\r\n",
        )
        .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(g.rows.len(), 3);
        assert_eq!(g.rows[1][1], t("a, b"));
        assert_eq!(g.rows[2][1], t("=1+1"));
        let e = read_csv("csv", "A,B\r\n=SUM(1),x\r\n")
            .err()
            .unwrap_or_default();
        assert_eq!(e[0].cell, "csv!A2");
    }
}
