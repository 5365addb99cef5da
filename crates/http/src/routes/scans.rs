//! Scanner results in: Nessus v2, STIG Viewer CKL and CKLB, SARIF 2.1.0 and CSV through a
//! column mapping, as the raw request body (`curl --data-binary @scan.nessus`).
//!
//! The body streams to a spool file (hashed on the way), is read once to check it whole —
//! a malformed or truncated file is refused naming the place, and nothing is stored — then
//! stored as the system's evidence and read again, in batches, through the same decisions as
//! bulk (`change::create`, `change::update`; a closed item whose finding reappears reopens
//! through the lifecycle). Findings the scan's scope covered but no longer shows become
//! closure candidates (`not_seen_since`), never closed. The same file twice changes nothing.

use super::docs::WriteProblems;
use super::evidence::Spool;
use crate::auth::Actor;
use crate::input::query;
use crate::problem::{ApiError, FieldError, Problem};
use crate::protection::Heavy;
use crate::state::AppState;
use actix_web::http::header;
use actix_web::{get, post, web, HttpRequest, HttpResponse};
use futures_util::StreamExt;
use poam_domain::change::{self, Channel, Origin};
use poam_domain::scan::{
    self, severity, Covered, Finding, Format, NotSeen, Options, ParseError, ScanRecord,
    ScanSettings, Sink, Skipped, Unmapped,
};
use poam_domain::{Permission, SystemId, Violation};
use poam_persistence::exchange::{self as store, BulkKey, Outcome};
use poam_persistence::scans::{self as scans_store, NewScan, Sighting};
use poam_persistence::{DbConnection, StoreError};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{hash_map, BTreeMap, BTreeSet, HashMap};
use std::io::{BufReader, Write};
use utoipa::{IntoParams, ToSchema};

/// Findings per batch of the second reading: one bulk upsert (itself committed in chunks).
const BATCH: usize = 500;
/// Skipped elements listed one by one in the answer, at most (the counts cover them all).
const LISTED_SKIPPED: usize = 10_000;

/// Query parameters of a scan import.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ScanImportParams {
    /// The file's name, kept with the stored scan (else `Content-Disposition`'s `filename`).
    #[param(max_length = 200)]
    filename: Option<String>,
    /// Keep informational findings (Nessus severity 0, SARIF `none`) as items; default: the
    /// system's `scans.include_informational`, else false.
    include_informational: Option<bool>,
    /// CSV only: a preset column mapping, `tenable_sc` or `qualys`.
    #[param(max_length = 50)]
    preset: Option<String>,
    /// CSV only: the column mapping as JSON (`{"scanner": "…", "identifier": "Plugin", "asset":
    /// "IP Address", …}`); else the preset, else the system's saved `scans.csv_mapping`.
    #[param(max_length = 2000)]
    mapping: Option<String>,
    /// CKL and CKLB only: the target host of a checklist that names none (a checklist's own
    /// FQDN, host name or address always wins); without it such a checklist's rules are listed
    /// as unmapped.
    #[param(max_length = 255)]
    host: Option<String>,
}

/// What became of one finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ScanStatus {
    Created,
    Updated,
    Unchanged,
    /// A closed item whose finding reappeared: reopened through the lifecycle (and updated).
    Reopened,
    Failed,
}

/// One finding's result, in file order.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ScanResult {
    /// Where it is in the file: `line 120, column 5` or a JSON pointer.
    pub place: String,
    pub detector: String,
    pub identifier: String,
    pub asset: String,
    pub status: ScanStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<uuid::Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_id: Option<String>,
    /// The rating the regime's table gave its severity.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub risk_rating: Option<poam_domain::RiskRating>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Problem>)]
    pub problem: Option<Box<Problem>>,
    /// What was clipped or set aside while taking it in: never silent.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<FieldError>,
}

/// An element of the file not made a finding, and why.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ScanSkipped {
    pub place: String,
    /// `informational`, `not_a_finding`, `not_applicable`, `not_reviewed`, `suppressed`, …
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detector: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identifier: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub asset: Option<String>,
    /// A checklist's NotAFinding: a fix seen (its item, if tracked, is not seen since).
    pub fixed: bool,
}

/// An element of the file that could not be mapped, and why.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ScanUnmapped {
    pub place: String,
    pub element: String,
    pub reason: String,
}

/// Counts.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct ScanSummary {
    pub findings: usize,
    pub created: usize,
    pub updated: usize,
    pub unchanged: usize,
    pub reopened: usize,
    pub failed: usize,
    /// Items the scan's scope covered whose findings it no longer reported.
    pub not_seen: usize,
    pub skipped_informational: usize,
    /// Skipped for another reason (NotAFinding, Not_Applicable, suppressed, …).
    pub skipped_other: usize,
    pub unmapped: usize,
}

/// The answer to a scan import.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ScanImportReport {
    pub format: Format,
    /// The stored scan (the system's evidence; each item it created or touched links to it).
    pub scan: ScanRecord,
    /// Set when this very file (same SHA-256) was imported before: nothing was written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repeat_of: Option<uuid::Uuid>,
    /// The severity table that rated the findings (the system's regime's).
    pub severity_table: severity::Table,
    /// The CCI list that mapped checklist CCIs to controls, if one is loaded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cci_catalog: Option<String>,
    pub summary: ScanSummary,
    pub results: Vec<ScanResult>,
    pub not_seen: Vec<NotSeen>,
    pub skipped: Vec<ScanSkipped>,
    /// When more elements were skipped than are listed.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub skipped_truncated: bool,
    pub unmapped: Vec<ScanUnmapped>,
}

/// The first reading: checks the whole file and learns its scope, counting what it holds.
#[derive(Default)]
struct Survey {
    hosts: BTreeSet<String>,
    detectors: BTreeSet<String>,
    findings: usize,
    informational: usize,
    skipped_other: usize,
    unmapped: usize,
    scanner: Option<String>,
}

impl Sink for Survey {
    fn host(&mut self, name: &str) {
        if !self.hosts.contains(name) {
            self.hosts.insert(name.to_owned());
        }
    }
    fn finding(&mut self, f: Finding) {
        self.findings += 1;
        if !self.detectors.contains(&f.detector) {
            self.detectors.insert(f.detector);
        }
    }
    fn skipped(&mut self, s: Skipped) {
        if s.reason == "informational" {
            self.informational += 1;
        } else {
            self.skipped_other += 1;
        }
        if let Some(d) = s.detector {
            self.detectors.insert(d);
        }
    }
    fn unmapped(&mut self, _: Unmapped) {
        self.unmapped += 1;
    }
    fn scanner(&mut self, name: &str) {
        self.scanner = Some(name.to_owned());
    }
}

impl Survey {
    fn scope(&self) -> Vec<Covered> {
        let mut out = Vec::new();
        for d in &self.detectors {
            for h in &self.hosts {
                out.push(Covered {
                    detector: d.to_lowercase(),
                    host: h.clone(),
                });
            }
        }
        out
    }
}

/// How findings become item documents.
struct Mapper {
    table: severity::Table,
    format: Format,
    settings: ScanSettings,
    today: chrono::NaiveDate,
}

fn clip(text: &str, max: usize, pointer: &str, notes: &mut Vec<Violation>) -> Option<String> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    if text.chars().count() <= max {
        return Some(text.to_owned());
    }
    notes.push(Violation::new(
        "clipped",
        pointer,
        format!("the scanner's text was clipped to {max} characters; the whole of it is in the stored scan file"),
    ));
    let mut s: String = text.chars().take(max.saturating_sub(1)).collect();
    s.push('…');
    Some(s)
}

/// The note of a scanner detail an item has no room for.
fn detail_left_out(key: &str) -> Violation {
    Violation::new(
        "detail_left_out",
        "/source/details",
        format!(
            "`{key}` was left out: an item keeps {} scanner details; the stored scan file has it",
            poam_domain::item::SOURCE_DETAILS_MAX
        ),
    )
}

impl Mapper {
    /// The item document of a new finding and the patch of a tracked one.
    fn documents(
        &self,
        f: &Finding,
        cci_controls: &BTreeMap<String, Vec<String>>,
        notes: &mut Vec<Violation>,
    ) -> (serde_json::Value, serde_json::Value) {
        let rating = f
            .severity
            .map(|s| self.table.rating(s))
            .unwrap_or(poam_domain::RiskRating::Moderate);
        let mut controls: Vec<String> = f
            .controls
            .iter()
            .filter_map(|c| poam_domain::controls::normalize_control(c))
            .collect();
        for cci in &f.ccis {
            if let Some(mapped) = cci_controls.get(cci) {
                controls.extend(mapped.iter().cloned());
            }
        }
        controls.sort();
        controls.dedup();
        let mapped_controls = !controls.is_empty();
        if controls.is_empty() {
            controls.push(if self.format.is_configuration() {
                self.settings.configuration_control()
            } else {
                self.settings.vulnerability_control()
            });
        }
        let mut details = f.details.clone();
        if let Some(s) = f.severity {
            details.insert("severity".into(), s.label().into());
        }
        if let Some(v) = f.cvss3_base {
            details.insert("cvss3_base_score".into(), v.to_string());
        }
        if let Some(v) = f.cvss4_base {
            details.insert("cvss4_base_score".into(), v.to_string());
        }
        if let Some(s) = &f.solution {
            details.insert("solution".into(), s.clone());
        }
        details.insert("scan_format".into(), self.format.as_str().into());
        let limit = poam_domain::item::SOURCE_DETAIL_CHARS;
        let mut kept = BTreeMap::new();
        for (k, v) in details {
            if kept.len() >= poam_domain::item::SOURCE_DETAILS_MAX {
                notes.push(detail_left_out(&k));
                continue;
            }
            let key: String = k.chars().take(64).collect();
            if let Some(v) = clip(&v, limit, &format!("/source/details/{key}"), notes) {
                kept.insert(key, v);
            }
        }
        let title = clip(&f.title, 250, "/title", notes)
            .unwrap_or_else(|| format!("{} {}", f.detector, f.identifier));
        let description =
            clip(&f.description, 2000, "/description", notes).unwrap_or_else(|| title.clone());
        let source = serde_json::json!({
            "kind": "scan",
            "detector": f.detector,
            "identifier": f.identifier,
            "details": kept,
        });
        let mut cves: Vec<&String> = f.cves.iter().collect();
        cves.sort();
        cves.dedup();
        let mut ccis: Vec<&String> = f.ccis.iter().collect();
        ccis.sort();
        ccis.dedup();
        let mut create = serde_json::json!({
            "title": title,
            "description": description,
            "controls": controls,
            "source": source,
            "cves": cves,
            "ccis": ccis,
            "assets": [f.asset],
            "risk_rating": rating,
            "detected_on": f.seen_on.filter(|d| *d <= self.today).unwrap_or(self.today),
        });
        if let Some(plan) = f
            .solution
            .as_deref()
            .and_then(|s| clip(s, 2000, "/remediation_plan", notes))
        {
            create["remediation_plan"] = serde_json::Value::String(plan);
        }
        // The system's defaults for what a scan never says (eMASS requires both).
        let owner = self.settings.default_owner.as_ref();
        if let Some(v) = owner.and_then(|o| serde_json::to_value(o).ok()) {
            create["owner"] = v;
        }
        let resources = self.settings.default_resources.as_ref();
        if let Some(v) = resources.and_then(|r| serde_json::to_value(r).ok()) {
            create["resources"] = v;
        }
        let mut patch = serde_json::json!({
            "title": create["title"],
            "description": create["description"],
            "source": create["source"],
            "cves": create["cves"],
            "ccis": create["ccis"],
            "risk_rating": rating,
        });
        if mapped_controls {
            patch["controls"] = create["controls"].clone();
        }
        (create, patch)
    }
}

/// The second reading: batches of findings through the decisions, written.
struct Ingest<'a> {
    conn: &'a mut DbConnection,
    system_id: SystemId,
    scope: poam_domain::SystemScope,
    actor: String,
    caller: change::Caller,
    mapper: &'a Mapper,
    scan: &'a ScanRecord,
    /// A repeat: nothing is written, the results name the items that track the findings.
    repeat: bool,
    batch: Vec<Finding>,
    results: Vec<ScanResult>,
    skipped: Vec<ScanSkipped>,
    skipped_truncated: bool,
    fixed_keys: Vec<String>,
    unmapped: Vec<ScanUnmapped>,
    /// Where each finding key was first met in this file: a finding met again (a real Nessus
    /// file lists the same plugin on the same port twice, one per installed version) adds
    /// its details to the item's instead of replacing the first one's.
    first_at: HashMap<String, String>,
    error: Option<StoreError>,
    /// Findings written so far, and when the planner's statistics are next refreshed.
    written: usize,
    refresh_at: usize,
}

/// The tables a scan import grows.
const GROWN: &[&str] = &[
    "items",
    "item_controls",
    "external_refs",
    "scan_findings",
    "evidence",
    "item_signals",
    "events",
];

impl Ingest<'_> {
    fn flush(&mut self) {
        if self.error.is_some() || self.batch.is_empty() {
            self.batch.clear();
            return;
        }
        let batch = std::mem::take(&mut self.batch);
        if let Err(e) = self.write(&batch) {
            self.error = Some(e);
            return;
        }
        // Tables grown from few rows keep their old statistics, and the planner's lookups turn
        // into scans: refreshed after 500, 1,000, 2,000, … findings (a logarithmic number of
        // times).
        self.written += batch.len();
        if !self.repeat && self.written >= self.refresh_at {
            self.refresh_at = self.written.saturating_mul(2);
            if let Err(e) = poam_persistence::db::refresh_after_import(self.conn, GROWN) {
                self.error = Some(e);
            }
        }
    }

    fn write(&mut self, batch: &[Finding]) -> Result<(), StoreError> {
        let keys: Vec<String> = batch
            .iter()
            .map(|f| store::finding_key(&f.detector, &f.identifier, &f.asset))
            .collect();
        let result_of = |f: &Finding| ScanResult {
            place: f.place.clone(),
            detector: f.detector.clone(),
            identifier: f.identifier.clone(),
            asset: f.asset.clone(),
            status: ScanStatus::Failed,
            id: None,
            display_id: None,
            risk_rating: f.severity.map(|s| self.mapper.table.rating(s)),
            problem: None,
            notes: Vec::new(),
        };
        // Grouped (VER-EVA-GRV): one item per detector and identifier, its instances the assets.
        let grouped = self.mapper.settings.group_instances.unwrap_or(false);
        let item_keys: Vec<String> = if grouped {
            batch
                .iter()
                .map(|f| store::finding_key(&f.detector, &f.identifier, ""))
                .collect()
        } else {
            keys.clone()
        };
        if self.repeat {
            let tracked = store::tracked(self.conn, self.system_id, &item_keys)?;
            for (f, t) in batch.iter().zip(tracked) {
                let mut r = result_of(f);
                r.status = ScanStatus::Unchanged;
                if let Some((id, display)) = t {
                    r.id = uuid::Uuid::parse_str(&id).ok();
                    r.display_id = Some(display);
                }
                self.results.push(r);
            }
            return Ok(());
        }
        let again: Vec<Option<String>> = batch
            .iter()
            .zip(&keys)
            .map(|(f, k)| match self.first_at.entry(k.clone()) {
                hash_map::Entry::Occupied(first) => Some(first.get().clone()),
                hash_map::Entry::Vacant(v) => {
                    v.insert(f.place.clone());
                    None
                }
            })
            .collect();
        let mut ccis: Vec<String> = batch.iter().flat_map(|f| f.ccis.iter().cloned()).collect();
        ccis.sort();
        ccis.dedup();
        let cci_controls = if ccis.is_empty() {
            BTreeMap::new()
        } else {
            poam_persistence::threats::cci_map(self.conn, &ccis)?
        };
        let mut notes: Vec<Vec<Violation>> = vec![Vec::new(); batch.len()];
        let docs: Vec<(serde_json::Value, serde_json::Value)> = batch
            .iter()
            .zip(notes.iter_mut())
            .map(|(f, n)| self.mapper.documents(f, &cci_controls, n))
            .collect();
        let bulk_keys: Vec<BulkKey> = item_keys
            .iter()
            .map(|k| BulkKey::Finding(vec![k.clone()]))
            .collect();
        let origin = Origin {
            channel: Channel::Import,
            migrate: false,
        };
        let caller = self.caller.clone();
        let mut admitted: Vec<Vec<Violation>> = vec![Vec::new(); batch.len()];
        let outcomes = store::bulk_upsert(
            self.conn,
            self.system_id,
            &self.scope,
            &self.actor,
            false,
            &bulk_keys,
            |i, current| {
                let Some(item) = current else {
                    return super::exchange::admit(
                        &docs[i].0,
                        None,
                        &caller,
                        origin,
                        &mut admitted[i],
                    );
                };
                let mut patch = match &again[i] {
                    Some(first) => {
                        merge_again(&docs[i].1, item, &batch[i].place, first, &mut admitted[i])
                    }
                    None => docs[i].1.clone(),
                };
                if grouped {
                    let mut assets = item.assets.clone();
                    if !assets.contains(&batch[i].asset) {
                        assets.push(batch[i].asset.clone());
                    }
                    patch["assets"] = serde_json::json!(assets);
                }
                super::exchange::admit(&patch, current, &caller, origin, &mut admitted[i])
            },
            Some(&poam_domain::threat::Seen {
                scan_id: self.scan.id,
                at: self.scan.uploaded_at,
            }),
        )?;
        let mut sightings = Vec::new();
        for (((f, outcome), mut n), a) in batch.iter().zip(outcomes).zip(notes).zip(admitted) {
            let mut r = result_of(f);
            n.extend(a);
            let item = match outcome {
                Outcome::Created(i) => {
                    r.status = ScanStatus::Created;
                    Some(i)
                }
                Outcome::Updated(i) => {
                    r.status = ScanStatus::Updated;
                    Some(i)
                }
                Outcome::Unchanged(i) => {
                    r.status = ScanStatus::Unchanged;
                    Some(i)
                }
                Outcome::Reopened(i) => {
                    r.status = ScanStatus::Reopened;
                    Some(i)
                }
                Outcome::Failed(e) => {
                    r.problem = Some(Box::new(ApiError::from(e).problem()));
                    None
                }
            };
            if let Some(item) = item {
                r.id = Some(item.id.as_uuid());
                r.display_id = Some(item.display_id.clone());
                sightings.push(Sighting {
                    item_id: item.id.to_string(),
                    ref_key: store::finding_key(&f.detector, &f.identifier, &f.asset),
                    detector: f.detector.clone(),
                    host: f.host.clone(),
                });
            }
            r.notes = n.into_iter().map(FieldError::from).collect();
            self.results.push(r);
        }
        let scan = self.scan;
        poam_persistence::db::write(self.conn, |conn| {
            scans_store::record_sightings(conn, scan, &sightings)
        })
    }
}

/// The patch of a finding met again in the same file (at `place`; first at `first`), over the
/// item its first meeting wrote: nothing of the first is lost. Details that differ are kept
/// both, the later under its place (`— line 180, column 5 —`); CVEs, CCIs and named controls
/// are the union; the rating is the higher; title and description stay the first's.
fn merge_again(
    patch: &serde_json::Value,
    item: &poam_domain::Item,
    place: &str,
    first: &str,
    notes: &mut Vec<Violation>,
) -> serde_json::Value {
    use serde_json::{json, Value};
    let mut merged = patch.clone();
    let mut details = item.source.details.clone();
    let later = patch["source"]["details"].as_object().into_iter().flatten();
    for (key, value) in later {
        let Some(value) = value.as_str() else {
            continue;
        };
        let room = details.len() < poam_domain::item::SOURCE_DETAILS_MAX;
        match details.get_mut(key) {
            // Already there (this element's value, or all of it within the joined ones).
            Some(kept) if kept.contains(value) => {}
            Some(kept) => {
                let both = format!("{kept}\n\n— {place} —\n{value}");
                let pointer = format!("/source/details/{key}");
                if let Some(both) = clip(
                    &both,
                    poam_domain::item::SOURCE_DETAIL_CHARS,
                    &pointer,
                    notes,
                ) {
                    *kept = both;
                }
            }
            None if room => {
                details.insert(key.clone(), value.to_owned());
            }
            None => notes.push(detail_left_out(key)),
        }
    }
    merged["source"]["details"] = json!(details);
    let union = |kept: &[String], later: &Value| {
        let mut all: Vec<String> = kept.to_vec();
        for v in later
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            if !all.iter().any(|k| k == v) {
                all.push(v.to_owned());
            }
        }
        all.sort();
        json!(all)
    };
    merged["cves"] = union(&item.cves, &patch["cves"]);
    merged["ccis"] = union(&item.ccis, &patch["ccis"]);
    if !patch["controls"].is_null() {
        merged["controls"] = union(&item.controls, &patch["controls"]);
    }
    let later_rating =
        serde_json::from_value::<poam_domain::RiskRating>(patch["risk_rating"].clone());
    if later_rating.is_ok_and(|r| r.rank() < item.risk_rating.rank()) {
        merged["risk_rating"] = json!(item.risk_rating);
    }
    merged["title"] = json!(item.title);
    merged["description"] = json!(item.description);
    notes.push(Violation::new(
        "found_again",
        "/source/details",
        format!("the same finding again in this file (first at {first}): its details were added to the item's"),
    ));
    merged
}

impl Sink for Ingest<'_> {
    fn host(&mut self, _: &str) {}
    fn finding(&mut self, f: Finding) {
        self.batch.push(f);
        if self.batch.len() >= BATCH {
            self.flush();
        }
    }
    fn skipped(&mut self, s: Skipped) {
        if s.fixed {
            if let (Some(d), Some(i), Some(a)) = (&s.detector, &s.identifier, &s.asset) {
                self.fixed_keys.push(store::finding_key(d, i, a));
            }
        }
        if self.skipped.len() >= LISTED_SKIPPED {
            self.skipped_truncated = true;
            return;
        }
        self.skipped.push(ScanSkipped {
            place: s.place,
            reason: s.reason,
            detector: s.detector,
            identifier: s.identifier,
            asset: s.asset,
            fixed: s.fixed,
        });
    }
    fn unmapped(&mut self, u: Unmapped) {
        self.unmapped.push(ScanUnmapped {
            place: u.place,
            element: u.element,
            reason: u.reason,
        });
    }
}

fn unreadable(format: Format, e: &ParseError) -> ApiError {
    ApiError::Unprocessable {
        code: "unreadable_scan",
        detail: format!(
            "the {} file cannot be read at {}: {} (nothing was stored)",
            format.as_str(),
            e.place,
            e.message
        ),
        errors: vec![FieldError::at_place(
            e.place.clone(),
            "malformed",
            e.message.clone(),
        )],
    }
}

/// Reads a spooled file in `format` into `sink`.
fn read_file(
    path: &std::path::Path,
    format: Format,
    mapping: Option<&scan::csv::Mapping>,
    options: &Options,
    sink: &mut dyn Sink,
) -> Result<(), ApiError> {
    let file = std::fs::File::open(path).map_err(|e| {
        tracing::error!(cause = %e, "cannot open the scan spool file");
        ApiError::Internal
    })?;
    let input = BufReader::with_capacity(1 << 16, file);
    let read = match (format, mapping) {
        (Format::Csv, Some(m)) => scan::csv::read(input, m, options, sink),
        _ => scan::read(format, input, options, sink),
    };
    read.map_err(|e| unreadable(format, &e))
}

/// Streams the body to a spool file within `limit`: its path, size and SHA-256.
async fn spool(
    state: &AppState,
    req: &HttpRequest,
    payload: web::Payload,
    limit: usize,
) -> Result<(Spool, usize, String), ApiError> {
    if let Some(len) = crate::input::content_length(req) {
        if len > limit {
            return Err(ApiError::PayloadTooLarge { limit });
        }
    }
    let spool = Spool {
        path: state
            .spool_dir
            .join(format!("scan-{}", uuid::Uuid::new_v4())),
    };
    let mut out = std::fs::File::create(&spool.path).map_err(|e| {
        tracing::error!(cause = %e, "cannot create the scan spool file");
        ApiError::Internal
    })?;
    let mut hasher = Sha256::new();
    let mut size = 0usize;
    let mut pending: Vec<u8> = Vec::with_capacity(1 << 20);
    let mut payload = payload.into_inner();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|_| {
            ApiError::bad_request("unreadable_body", "the request body could not be read")
        })?;
        size += chunk.len();
        if size > limit {
            return Err(ApiError::PayloadTooLarge { limit });
        }
        hasher.update(&chunk);
        pending.extend_from_slice(&chunk);
        if pending.len() >= 1 << 20 {
            let buf = std::mem::replace(&mut pending, Vec::with_capacity(1 << 20));
            out = web::block(move || out.write_all(&buf).map(|_| out))
                .await
                .map_err(|_| ApiError::Internal)?
                .map_err(|e| {
                    tracing::error!(cause = %e, "cannot write the scan spool file");
                    ApiError::Internal
                })?;
        }
    }
    web::block(move || out.write_all(&pending).and_then(|_| out.flush()))
        .await
        .map_err(|_| ApiError::Internal)?
        .map_err(|e| {
            tracing::error!(cause = %e, "cannot write the scan spool file");
            ApiError::Internal
        })?;
    if size == 0 {
        return Err(ApiError::bad_request(
            "empty_body",
            "the request body is empty: send the scan file",
        ));
    }
    Ok((spool, size, crate::idempotency::hex(&hasher.finalize())))
}

fn media_type(format: Format) -> &'static str {
    match format {
        Format::Nessus | Format::Ckl => "application/xml",
        Format::Cklb => "application/json",
        Format::Sarif => "application/sarif+json",
        Format::Csv => "text/csv",
    }
}

fn file_name(req: &HttpRequest, param: Option<String>) -> Option<String> {
    param
        .or_else(|| {
            req.headers()
                .get(header::CONTENT_DISPOSITION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| {
                    v.split(';')
                        .map(str::trim)
                        .find_map(|p| p.strip_prefix("filename="))
                        .map(|f| f.trim_matches('"').to_owned())
                })
        })
        .map(|n| {
            n.chars()
                .filter(|c| !c.is_control() && *c != '/' && *c != '\\')
                .take(200)
                .collect::<String>()
        })
        .filter(|n| !n.is_empty())
}

fn csv_mapping(
    params: &ScanImportParams,
    settings: &ScanSettings,
) -> Result<scan::csv::Mapping, ApiError> {
    if let Some(raw) = &params.mapping {
        if raw.chars().count() > 2000 {
            return Err(ApiError::invalid_param(
                "mapping",
                "invalid_length",
                "the column mapping has at most 2,000 characters (a request line stays within the server's 32 KiB header limit)",
            ));
        }
        let mut de = serde_json::Deserializer::from_str(raw);
        return serde_path_to_error::deserialize::<_, scan::csv::Mapping>(&mut de).map_err(|e| {
            ApiError::invalid_param(
                "mapping",
                "invalid_mapping",
                format!(
                    "the column mapping is not valid at `{}`: {}",
                    e.path(),
                    e.inner()
                ),
            )
        });
    }
    if let Some(p) = &params.preset {
        return scan::csv::preset(p).ok_or_else(|| {
            ApiError::invalid_param(
                "preset",
                "invalid_value",
                format!(
                    "`{p}` is not a preset; use one of {}",
                    scan::csv::PRESETS.join(", ")
                ),
            )
        });
    }
    settings.csv_mapping.clone().ok_or_else(|| {
        ApiError::invalid_param(
            "mapping",
            "mapping_required",
            "a CSV import needs its column mapping: `mapping` (JSON), `preset` (tenable_sc, qualys) or the system's saved `scans.csv_mapping`",
        )
    })
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
    let params = query::<ScanImportParams>(&req)?;
    if format != Format::Csv && (params.mapping.is_some() || params.preset.is_some()) {
        return Err(ApiError::invalid_param(
            "mapping",
            "not_applicable",
            "a column mapping is for CSV files; this format names its own fields",
        ));
    }
    let host = match params.host.as_deref().map(str::trim) {
        None => None,
        Some(_) if !matches!(format, Format::Ckl | Format::Cklb) => {
            return Err(ApiError::invalid_param(
                "host",
                "not_applicable",
                "a target host is for CKL and CKLB checklists; this format names its own hosts",
            ))
        }
        Some(h) if h.is_empty() || h.chars().count() > 255 || h.chars().any(char::is_control) => {
            return Err(ApiError::invalid_param(
                "host",
                "invalid",
                "a host name of 1 to 255 characters, without control characters",
            ))
        }
        Some(h) => Some(h.to_owned()),
    };
    // Another system's import is a 404 whatever the file says.
    let scope = actor.scope.clone();
    let system = state
        .db(move |conn| poam_persistence::systems::get(conn, system_id, &scope))
        .await?;
    if system.archived_at.is_some() {
        return Err(StoreError::Conflict(Violation::new(
            "archived",
            "",
            "the system is archived: it takes no new findings",
        ))
        .into());
    }
    let settings = system.scans.clone().unwrap_or_default();
    let mapping = match format {
        Format::Csv => Some(csv_mapping(&params, &settings)?),
        _ => None,
    };
    // JSON formats are held while read: the import limit; the others stream: the scan limit.
    let held = matches!(format, Format::Cklb | Format::Sarif);
    let limit = if held {
        state.import_limit
    } else {
        state.scan_limit
    };
    let reservation = if held {
        crate::protection::json_reservation(&req, limit)
    } else {
        16 << 20
    };
    let _pass = state
        .protection
        .enter(Heavy::Write, &actor.sub, reservation)?;
    let (spooled, size, sha256) = spool(&state, &req, payload, limit).await?;
    let options = Options {
        include_informational: params
            .include_informational
            .or(settings.include_informational)
            .unwrap_or(false),
        host,
    };

    // First reading: the whole file checked; nothing is stored if it cannot be read.
    let path = spooled.path.clone();
    let (survey_options, survey_mapping) = (options.clone(), mapping.clone());
    let survey = web::block(move || -> Result<Survey, ApiError> {
        let mut survey = Survey::default();
        read_file(
            &path,
            format,
            survey_mapping.as_ref(),
            &survey_options,
            &mut survey,
        )?;
        Ok(survey)
    })
    .await
    .map_err(|_| ApiError::Internal)??;

    // A clean scan still covers its hosts: the format's own detector is in its scope even when
    // the file reports nothing (a Nessus file's is `nessus`, a CSV's the mapping's scanner).
    let mut survey = survey;
    match (format, &mapping) {
        (Format::Nessus, _) => {
            survey.detectors.insert("nessus".to_owned());
        }
        (Format::Csv, Some(m)) => {
            survey.detectors.insert(m.scanner.clone());
        }
        _ => {}
    }
    let name = file_name(&req, params.filename.clone());
    let meta = NewScan {
        format: format.as_str().to_owned(),
        filename: name,
        media_type: media_type(format).to_owned(),
        size: i64::try_from(size).unwrap_or(i64::MAX),
        sha256: sha256.clone(),
        scanner: survey.scanner.clone(),
        scope: survey.scope(),
    };
    let quota = state.protection.limits.evidence_quota;
    let quota = (quota > 0).then(|| i64::try_from(quota).unwrap_or(i64::MAX));
    let caller = actor.caller();
    let mapper = Mapper {
        table: severity::table(system.regime),
        format,
        settings,
        today: chrono::Utc::now().date_naive(),
    };
    let path = spooled.path.clone();
    // What decides the findings besides the file: a repeat is the same file read the same way.
    let reading = serde_json::json!({
        "include_informational": options.include_informational,
        "host": options.host,
        "mapping": mapping,
    });
    let report = state
        .db(move |conn| {
            let repeat = scans_store::repeat_of(conn, system_id, &sha256, &reading)?;
            let scan = match &repeat {
                Some(s) => s.clone(),
                None => scans_store::store(
                    conn,
                    system_id,
                    &actor.scope,
                    &meta,
                    &path,
                    &actor.sub,
                    quota,
                )?,
            };
            let mut ingest = Ingest {
                conn,
                system_id,
                scope: actor.scope.clone(),
                actor: actor.sub.clone(),
                caller,
                mapper: &mapper,
                scan: &scan,
                repeat: repeat.is_some(),
                batch: Vec::new(),
                // One result per finding, sized once (the survey counted them).
                results: Vec::with_capacity(survey.findings),
                skipped: Vec::new(),
                skipped_truncated: false,
                fixed_keys: Vec::new(),
                unmapped: Vec::new(),
                first_at: HashMap::new(),
                error: None,
                written: 0,
                refresh_at: BATCH,
            };
            // The file was read whole once: a second reading fails only if the disk does.
            read_file(&path, format, mapping.as_ref(), &options, &mut ingest).map_err(|_| {
                StoreError::Internal("the spooled scan could not be read again".into())
            })?;
            ingest.flush();
            if let Some(e) = ingest.error.take() {
                return Err(e);
            }
            let Ingest {
                conn,
                results,
                skipped,
                skipped_truncated,
                fixed_keys,
                unmapped,
                ..
            } = ingest;
            let not_seen = if repeat.is_some() {
                Vec::new()
            } else {
                scans_store::mark_not_seen(conn, &scan, &fixed_keys)?
            };
            let mut summary = ScanSummary {
                findings: results.len(),
                not_seen: not_seen.len(),
                skipped_informational: survey.informational,
                skipped_other: survey.skipped_other,
                unmapped: unmapped.len(),
                ..Default::default()
            };
            for r in &results {
                match r.status {
                    ScanStatus::Created => summary.created += 1,
                    ScanStatus::Updated => summary.updated += 1,
                    ScanStatus::Unchanged => summary.unchanged += 1,
                    ScanStatus::Reopened => summary.reopened += 1,
                    ScanStatus::Failed => summary.failed += 1,
                }
            }
            let counts = serde_json::to_value(&summary)
                .map_err(|e| StoreError::Internal(format!("scan counts: {e}")))?;
            let mut counts = counts;
            if let Some(map) = counts.as_object_mut() {
                map.insert("repeat".into(), serde_json::Value::Bool(repeat.is_some()));
                map.insert("reading".into(), reading.clone());
                map.insert(
                    "not_seen_items".into(),
                    serde_json::json!(not_seen.iter().map(|n| &n.display_id).collect::<Vec<_>>()),
                );
            }
            scans_store::finish(conn, &scan, &counts, &actor.sub, repeat.is_some())?;
            let scan = if repeat.is_some() {
                scan.clone()
            } else {
                scans_store::get(conn, scan.id, &actor.scope)?
            };
            let cci_catalog = poam_persistence::threats::cci_version(conn)?;
            Ok(ScanImportReport {
                format,
                repeat_of: repeat.map(|s| s.id),
                scan,
                severity_table: mapper.table.clone(),
                cci_catalog,
                summary,
                results,
                not_seen,
                skipped,
                skipped_truncated,
                unmapped,
            })
        })
        .await?;
    drop(spooled);
    Ok(HttpResponse::Ok().json(report))
}

macro_rules! scan_route {
    ($name:ident, $path:literal, $format:expr, $doc_format:literal, $media:literal) => {
        #[doc = concat!("Import ", $doc_format, " (editor): the file as the raw request body.")]
        ///
        /// One finding per element the format defines; a finding already tracked (same
        /// detector, identifier and asset) updates its item, a closed one reopens through the
        /// lifecycle; a finding met twice in one file (two installed versions) is one item that
        /// keeps both elements' details (note `found_again`); tracked findings on hosts the
        /// file covered that it no longer reports become closure candidates
        /// (`not_seen_since`), never closed, and the scan is attached
        /// to them as evidence. The file is stored as the system's evidence and every item it
        /// created or touched links to it. Severities become risk ratings by the regime's table
        /// (in the answer). A malformed or truncated file is refused naming the place (422
        /// `unreadable_scan`) and nothing is stored; the same file again changes nothing
        /// (`repeat_of`). Streamed formats (.nessus, CKL, CSV) take up to `POAM_SCAN_MAX_BYTES`
        /// (1 GiB); CKLB and SARIF up to `POAM_IMPORT_MAX_BYTES`.
        #[utoipa::path(
            operation_id = stringify!($name),
            tag = "scans",
            params(("system_id" = uuid::Uuid, Path, description = "The system's id."), ScanImportParams),
            request_body(description = $doc_format, content((super::docs::Binary = $media))),
            responses(
                (status = 200, description = "One result per finding; what was skipped, unmapped and not seen.", body = ScanImportReport),
                WriteProblems,
            ),
            security(("bearer" = []))
        )]
        #[post($path)]
        pub async fn $name(
            state: web::Data<AppState>,
            actor: Actor,
            req: HttpRequest,
            path: web::Path<SystemId>,
            payload: web::Payload,
        ) -> Result<HttpResponse, ApiError> {
            import(state, actor, req, path.into_inner(), payload, $format).await
        }
    };
}

scan_route!(
    import_nessus,
    "/systems/{system_id}/imports/nessus",
    Format::Nessus,
    "a Nessus v2 file (.nessus: ACAS, Tenable.sc, Nessus)",
    "application/xml"
);
scan_route!(
    import_ckl,
    "/systems/{system_id}/imports/ckl",
    Format::Ckl,
    "a STIG Viewer 2 checklist (.ckl)",
    "application/xml"
);
scan_route!(
    import_cklb,
    "/systems/{system_id}/imports/cklb",
    Format::Cklb,
    "a STIG Viewer 3 checklist (.cklb)",
    "application/json"
);
scan_route!(
    import_sarif,
    "/systems/{system_id}/imports/sarif",
    Format::Sarif,
    "a SARIF 2.1.0 log (code and dependency scanners)",
    "application/sarif+json"
);
scan_route!(
    import_csv,
    "/systems/{system_id}/imports/csv",
    Format::Csv,
    "a scanner's CSV export read through a column mapping (`mapping`, `preset`, or the system's saved one)",
    "text/csv"
);

/// A system's stored scans, newest first (viewer).
#[utoipa::path(
    operation_id = "list_scans",
    tag = "scans",
    params(("system_id" = uuid::Uuid, Path, description = "The system's id.")),
    responses(
        (status = 200, description = "The scans.", body = Vec<ScanRecord>),
        super::docs::ReadProblems,
    ),
    security(("bearer" = []))
)]
#[get("/systems/{system_id}/scans")]
pub async fn list_scans(
    state: web::Data<AppState>,
    actor: Actor,
    path: web::Path<SystemId>,
) -> Result<HttpResponse, ApiError> {
    actor.require(Permission::Read)?;
    let system_id = path.into_inner();
    let scans = state
        .db(move |conn| scans_store::list(conn, system_id, &actor.scope))
        .await?;
    Ok(HttpResponse::Ok().json(scans))
}

/// One stored scan (viewer).
#[utoipa::path(
    operation_id = "get_scan",
    tag = "scans",
    params(("scan_id" = uuid::Uuid, Path, description = "The scan's id.")),
    responses(
        (status = 200, description = "The scan.", body = ScanRecord),
        super::docs::ReadProblems,
    ),
    security(("bearer" = []))
)]
#[get("/scans/{scan_id}")]
pub async fn get_scan(
    state: web::Data<AppState>,
    actor: Actor,
    path: web::Path<uuid::Uuid>,
) -> Result<HttpResponse, ApiError> {
    actor.require(Permission::Read)?;
    let id = path.into_inner();
    let scan = state
        .db(move |conn| scans_store::get(conn, id, &actor.scope))
        .await?;
    Ok(HttpResponse::Ok().json(scan))
}

/// The scan file as it was imported (viewer): an attachment, its SHA-256 the `ETag`.
#[utoipa::path(
    operation_id = "download_scan",
    tag = "scans",
    params(("scan_id" = uuid::Uuid, Path, description = "The scan's id.")),
    responses(
        (status = 200, description = "The file as imported, with its media type (`application/xml`, `application/json`, `application/sarif+json`, `text/csv`).",
         content((super::docs::Binary = "application/octet-stream"), (super::docs::Binary = "*/*")),
         headers(("ETag" = String, description = "The SHA-256, hex, quoted."), ("Content-Disposition" = String))),
        super::docs::ReadProblems,
    ),
    security(("bearer" = []))
)]
#[get("/scans/{scan_id}/content")]
pub async fn scan_content(
    state: web::Data<AppState>,
    actor: Actor,
    path: web::Path<uuid::Uuid>,
) -> Result<HttpResponse, ApiError> {
    actor.require(Permission::Read)?;
    let id = path.into_inner();
    // Recorded in the system's history (`downloaded`, resource `scan`) before it is sent.
    let scan = state
        .write(move |conn| {
            poam_persistence::evidence::record_scan_download(conn, id, &actor.scope, &actor.sub)
        })
        .await?;
    let key = scan.id.to_string();
    let chunks = futures_util::stream::unfold(Some(0i32), move |next| {
        let state = state.clone();
        let key = key.clone();
        async move {
            let n = next?;
            match state
                .db(move |conn| scans_store::chunk(conn, &key, n))
                .await
            {
                Ok(Some(bytes)) => Some((
                    Ok::<_, actix_web::Error>(web::Bytes::from(bytes)),
                    Some(n + 1),
                )),
                Ok(None) => None,
                Err(err) => Some((Err(actix_web::Error::from(err)), None)),
            }
        }
    });
    let filename = scan
        .filename
        .clone()
        .unwrap_or_else(|| format!("scan-{}.{}", scan.id, scan.format));
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, scan.media_type.clone()))
        .insert_header((header::ETAG, format!("\"{}\"", scan.sha256)))
        .insert_header((
            header::CONTENT_DISPOSITION,
            super::evidence::disposition(&filename),
        ))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .insert_header((header::CONTENT_SECURITY_POLICY, "sandbox"))
        .no_chunking(u64::try_from(scan.size).unwrap_or(0))
        .streaming(chunks))
}
