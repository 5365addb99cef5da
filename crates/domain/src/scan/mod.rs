//! What scanners and checklists write, read into findings: Nessus v2 XML, STIG Viewer CKL (XML)
//! and CKLB (JSON), SARIF 2.1.0, and CSV through a column mapping. Each reader streams its
//! input into a [`Sink`] (a 200 MB `.nessus` is never held), names the place of anything it
//! cannot read, and accounts for every element: a finding, a skipped element with its reason,
//! or an unmapped one with its reason. The threat catalogs (CISA KEV, FIRST EPSS, DISA's CCI
//! list) are read here too. Readers take any `BufRead`: no I/O of their own.

pub mod catalogs;
pub mod ckl;
pub mod cklb;
pub mod csv;
pub mod nessus;
pub mod sarif;
pub mod severity;

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// A scan file's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Nessus,
    Ckl,
    Cklb,
    Sarif,
    Csv,
}

impl Format {
    pub const ALL: [Format; 5] = [
        Format::Nessus,
        Format::Ckl,
        Format::Cklb,
        Format::Sarif,
        Format::Csv,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Format::Nessus => "nessus",
            Format::Ckl => "ckl",
            Format::Cklb => "cklb",
            Format::Sarif => "sarif",
            Format::Csv => "csv",
        }
    }

    pub fn parse(s: &str) -> Option<Format> {
        Format::ALL.into_iter().find(|f| f.as_str() == s)
    }

    /// The kind of weakness a format reports: configuration (STIG checklists) or vulnerability.
    pub fn is_configuration(self) -> bool {
        matches!(self, Format::Ckl | Format::Cklb)
    }
}

/// A finding's severity as its format states it, before a regime's table maps it to a risk
/// rating ([`severity::Table`]).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Nessus 0 / `None`, SARIF `none`: informational, skipped unless asked for.
    Info,
    /// Nessus 1 (Low).
    NessusLow,
    /// Nessus 2 (Medium).
    NessusMedium,
    /// Nessus 3 (High).
    NessusHigh,
    /// Nessus 4 (Critical).
    NessusCritical,
    /// DISA CAT III (STIG `low`).
    Cat3,
    /// DISA CAT II (STIG `medium`).
    Cat2,
    /// DISA CAT I (STIG `high`).
    Cat1,
    /// SARIF `note`.
    SarifNote,
    /// SARIF `warning`.
    SarifWarning,
    /// SARIF `error`.
    SarifError,
    /// A CSV file's own word, mapped by the request's mapping: `critical`.
    Critical,
    /// `high`.
    High,
    /// `moderate` / `medium`.
    Moderate,
    /// `low`.
    Low,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::NessusLow => "nessus_low",
            Severity::NessusMedium => "nessus_medium",
            Severity::NessusHigh => "nessus_high",
            Severity::NessusCritical => "nessus_critical",
            Severity::Cat3 => "cat3",
            Severity::Cat2 => "cat2",
            Severity::Cat1 => "cat1",
            Severity::SarifNote => "sarif_note",
            Severity::SarifWarning => "sarif_warning",
            Severity::SarifError => "sarif_error",
            Severity::Critical => "critical",
            Severity::High => "high",
            Severity::Moderate => "moderate",
            Severity::Low => "low",
        }
    }

    /// How a person reads it: `Nessus 4 (Critical)`, `CAT I`, `SARIF error`.
    pub fn label(self) -> &'static str {
        match self {
            Severity::Info => "Informational",
            Severity::NessusLow => "Nessus 1 (Low)",
            Severity::NessusMedium => "Nessus 2 (Medium)",
            Severity::NessusHigh => "Nessus 3 (High)",
            Severity::NessusCritical => "Nessus 4 (Critical)",
            Severity::Cat3 => "CAT III",
            Severity::Cat2 => "CAT II",
            Severity::Cat1 => "CAT I",
            Severity::SarifNote => "SARIF note",
            Severity::SarifWarning => "SARIF warning",
            Severity::SarifError => "SARIF error",
            Severity::Critical => "Critical",
            Severity::High => "High",
            Severity::Moderate => "Moderate",
            Severity::Low => "Low",
        }
    }
}

/// One finding read from a file.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Finding {
    /// The detector of the de-duplication key: `nessus`, `stig:<STIG id>`, `sarif:<tool>`, or
    /// the CSV mapping's scanner name. Compared case-insensitively.
    pub detector: String,
    /// The format's stable id of the weakness: the plugin id, the STIG rule's Vuln id, the
    /// SARIF fingerprint (or rule id with location when none), the CSV key column.
    pub identifier: String,
    /// The asset: the host (FQDN, else IP, else NetBIOS name) with `:port/protocol` when a
    /// Nessus port is not 0, the checklist's target host, the SARIF artifact URI.
    pub asset: String,
    /// The host the finding was on, as the scan's scope names it (for "not seen since").
    pub host: String,
    pub title: String,
    pub description: String,
    pub severity: Option<Severity>,
    pub cves: Vec<String>,
    /// NIST SP 800-53 controls the file names (CSV mapping); CKL/CKLB give CCIs instead.
    pub controls: Vec<String>,
    /// `CCI-000366`, as the checklist gives them.
    pub ccis: Vec<String>,
    pub cvss3_base: Option<f64>,
    pub cvss4_base: Option<f64>,
    /// The remediation the file suggests (Nessus `solution`, STIG fix text).
    pub solution: Option<String>,
    /// When the file says the finding was seen (host scan end, `patch_publication_date` is kept
    /// in `details`).
    pub seen_on: Option<chrono::NaiveDate>,
    /// Everything else the format carries that a person needs, in a stable order:
    /// `plugin_name`, `synopsis`, `iavm`, `stig_severity`, `rule_id`, `stig_id`, `vuln_id`,
    /// `finding_details`, `comments`, `fqdn`, `ip`, `netbios`, `port`, `protocol`,
    /// `patch_publication_date`, `level`, `location`, `rule_id`…
    pub details: BTreeMap<String, String>,
    /// Where in the file: `line 120, column 5` (XML, CSV) or a JSON pointer.
    pub place: String,
}

/// An element read but not made a finding, and why (`informational`, `not_a_finding`,
/// `not_applicable`, `not_reviewed`, `suppressed`…).
#[derive(Debug, Clone, PartialEq)]
pub struct Skipped {
    pub place: String,
    /// The finding key's parts, when the element has them.
    pub detector: Option<String>,
    pub identifier: Option<String>,
    pub asset: Option<String>,
    pub reason: String,
    /// A checklist rule that is `NotAFinding`: a fix seen (it was open, it is no longer).
    pub fixed: bool,
}

/// An element that could not be mapped, and why: every member of the input is accounted for.
#[derive(Debug, Clone, PartialEq)]
pub struct Unmapped {
    pub place: String,
    pub element: String,
    pub reason: String,
}

/// The file cannot be read: malformed or truncated. Nothing from it is stored.
#[derive(Debug, Clone, PartialEq)]
pub struct ParseError {
    /// Where: `line 12, column 4`, `byte 4096`, or a JSON pointer.
    pub place: String,
    pub message: String,
}

impl ParseError {
    pub fn new(place: impl Into<String>, message: impl Into<String>) -> Self {
        ParseError {
            place: place.into(),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.place, self.message)
    }
}

/// Where a reader puts what it reads, in file order.
pub trait Sink {
    /// A host the scan covered (its scope): every ReportHost, every checklist's target.
    fn host(&mut self, name: &str);
    fn finding(&mut self, finding: Finding);
    fn skipped(&mut self, skipped: Skipped);
    fn unmapped(&mut self, unmapped: Unmapped);
    /// The file's own name of the tool and its version, once known (`Nessus`, `STIG Viewer 3`,
    /// a SARIF driver's name and version).
    fn scanner(&mut self, name: &str) {
        let _ = name;
    }
}

/// A sink that keeps everything: tests and small files.
#[derive(Debug, Default, Clone)]
pub struct Collected {
    pub hosts: Vec<String>,
    pub findings: Vec<Finding>,
    pub skipped: Vec<Skipped>,
    pub unmapped: Vec<Unmapped>,
    pub scanner: Option<String>,
}

impl Sink for Collected {
    fn host(&mut self, name: &str) {
        if !self.hosts.iter().any(|h| h == name) {
            self.hosts.push(name.to_owned());
        }
    }
    fn finding(&mut self, finding: Finding) {
        self.findings.push(finding);
    }
    fn skipped(&mut self, skipped: Skipped) {
        self.skipped.push(skipped);
    }
    fn unmapped(&mut self, unmapped: Unmapped) {
        self.unmapped.push(unmapped);
    }
    fn scanner(&mut self, name: &str) {
        self.scanner = Some(name.to_owned());
    }
}

/// What a reader is asked to do.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Keep informational findings (Nessus severity 0, SARIF `none`) as findings.
    pub include_informational: bool,
    /// CKL and CKLB: the target host of a checklist that names none (its own FQDN, host name
    /// or address always wins).
    pub host: Option<String>,
}

/// Consumes a UTF-8 byte-order mark at the start of `input`, if there is one. JSON must not
/// begin with one (RFC 8259 §8.1), but tools on Windows write it (PowerShell's
/// `Out-File -Encoding UTF8`, and so checklists made by Evaluate-STIG), and a parser may ignore
/// it: a checklist is not refused for it.
pub(crate) fn skip_bom<R: std::io::BufRead>(input: &mut R) -> Result<(), ParseError> {
    let start = input
        .fill_buf()
        .map_err(|e| ParseError::new("", format!("cannot read the file: {e}")))?;
    if start.starts_with(b"\xEF\xBB\xBF") {
        input.consume(3);
    }
    Ok(())
}

/// Reads `input` in `format` into `sink`. CSV needs its mapping: use [`csv::read`].
pub fn read<R: std::io::BufRead>(
    format: Format,
    input: R,
    options: &Options,
    sink: &mut dyn Sink,
) -> Result<(), ParseError> {
    match format {
        Format::Nessus => nessus::read(input, options, sink),
        Format::Ckl => ckl::read(input, options, sink),
        Format::Cklb => cklb::read(input, options, sink),
        Format::Sarif => sarif::read(input, options, sink),
        Format::Csv => Err(ParseError::new(
            "",
            "a CSV file is read with its column mapping",
        )),
    }
}

/// A system's scan import settings (`scans` on the system).
#[derive(
    Debug, Clone, PartialEq, Default, Serialize, Deserialize, validator::Validate, ToSchema,
)]
#[serde(deny_unknown_fields)]
pub struct ScanSettings {
    /// The control of a vulnerability finding (Nessus, SARIF, CSV) that names none: eMASS
    /// practice is `SI-2` (the default).
    #[serde(default)]
    #[schema(example = "SI-2")]
    pub vulnerability_control: Option<String>,
    /// The control of a STIG finding whose CCIs map to none (no CCI catalog loaded, or CCIs
    /// it does not list): `CM-6` by default.
    #[serde(default)]
    #[schema(example = "CM-6")]
    pub configuration_control: Option<String>,
    /// Keep informational findings (Nessus severity 0, SARIF `none`) as items. Default false.
    #[serde(default)]
    pub include_informational: Option<bool>,
    /// Take CISA's KEV due date as the deadline when it is earlier than the policy's (never a
    /// date a person set). Default: true for FedRAMP systems (VDR-TFR-KEV), false otherwise.
    #[serde(default)]
    pub kev_deadlines: Option<bool>,
    /// The saved column mapping of `imports/csv` (a request may send its own).
    #[serde(default)]
    pub csv_mapping: Option<csv::Mapping>,
    /// FedRAMP VER-EVA-GRV: findings of the same detector and identifier on several hosts
    /// attach to one item as its instances (its assets) instead of making one item per asset.
    /// Each instance is still tracked on its own: the item is a closure candidate once a scan
    /// no longer shows any of them. Default false.
    #[serde(default)]
    pub group_instances: Option<bool>,
    /// The point of contact of an item a scan creates: a scan names none, and eMASS requires
    /// one on every POA&M item (an eMASS system refuses the item without it). The system's
    /// ISSO, say. Items already tracked keep theirs.
    #[serde(default)]
    pub default_owner: Option<crate::item::Person>,
    /// The resources of an item a scan creates (eMASS requires them too), until a person plans
    /// the remediation.
    #[serde(default)]
    pub default_resources: Option<crate::item::Resources>,
}

/// The vulnerability control when a system names none.
pub const DEFAULT_VULNERABILITY_CONTROL: &str = "SI-2";
/// The configuration control when a system names none.
pub const DEFAULT_CONFIGURATION_CONTROL: &str = "CM-6";

impl ScanSettings {
    /// Checks the controls are controls.
    pub fn check(&self) -> Result<(), crate::Violation> {
        use validator::Validate as _;
        let invalid = |name: &str, e: validator::ValidationErrors| {
            let errors = e.field_errors();
            let mut fields: Vec<&str> = errors.keys().map(|k| k.as_ref()).collect();
            fields.sort_unstable();
            crate::Violation::new(
                "invalid_value",
                format!("/scans/{name}"),
                format!(
                    "`{name}` has an invalid `{}` (the limits of an item's own `{}`)",
                    fields.join("`, `"),
                    name.trim_start_matches("default_")
                ),
            )
        };
        if let Some(p) = &self.default_owner {
            p.validate().map_err(|e| invalid("default_owner", e))?;
        }
        if let Some(r) = &self.default_resources {
            r.validate().map_err(|e| invalid("default_resources", e))?;
        }
        for (name, v) in [
            ("vulnerability_control", &self.vulnerability_control),
            ("configuration_control", &self.configuration_control),
        ] {
            if let Some(c) = v {
                if crate::controls::normalize_control(c).is_none() {
                    return Err(crate::Violation::new(
                        "invalid_control",
                        format!("/scans/{name}"),
                        format!("`{c}` is not a control reference (SI-2, CM-6)"),
                    ));
                }
            }
        }
        Ok(())
    }

    pub fn vulnerability_control(&self) -> String {
        self.vulnerability_control
            .as_deref()
            .and_then(crate::controls::normalize_control)
            .unwrap_or_else(|| DEFAULT_VULNERABILITY_CONTROL.to_owned())
    }

    pub fn configuration_control(&self) -> String {
        self.configuration_control
            .as_deref()
            .and_then(crate::controls::normalize_control)
            .unwrap_or_else(|| DEFAULT_CONFIGURATION_CONTROL.to_owned())
    }

    /// Whether KEV due dates bind the system's deadlines.
    pub fn kev_deadlines(&self, regime: crate::vocab::Regime) -> bool {
        self.kev_deadlines
            .unwrap_or(regime == crate::vocab::Regime::Fedramp)
    }
}

/// One (detector, host) pair a scan covered.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
pub struct Covered {
    pub detector: String,
    pub host: String,
}

/// A stored scan.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ScanRecord {
    pub id: uuid::Uuid,
    pub system_id: uuid::Uuid,
    /// `nessus`, `ckl`, `cklb`, `sarif`, `csv`.
    pub format: String,
    #[schema(required = true)]
    pub filename: Option<String>,
    pub media_type: String,
    /// Bytes.
    pub size: i64,
    /// SHA-256 of the file, hex.
    pub sha256: String,
    /// The tool the file names (`Nessus`, `STIG Viewer (CKL)`, a SARIF driver).
    #[schema(required = true)]
    pub scanner: Option<String>,
    /// The (detector, host) pairs it covered: what "not seen" is judged against.
    pub scope: Vec<Covered>,
    /// The import's counts.
    #[schema(value_type = std::collections::HashMap<String, serde_json::Value>)]
    pub counts: serde_json::Value,
    pub uploaded_by: String,
    pub uploaded_at: chrono::DateTime<chrono::Utc>,
}

/// An item a scan no longer showed.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct NotSeen {
    pub id: uuid::Uuid,
    pub display_id: String,
    /// The finding keys of it the scan covered but did not report (or a checklist called
    /// NotAFinding).
    pub findings: usize,
}
