//! The eMASS POA&M template (the 2026 generation, Navy, Army and Marine Corps variants), as
//! `../shared/reference/emass-poam-template.md` describes it: the data sheet `POA&M`, the
//! classification banner in row 1, the header block in rows 2–6, the column headers in row 7
//! and the data from row 8, one row per milestone in eMASS's canonical layout (the first row of
//! an item carries the item columns and its first milestone, the following rows only the
//! milestone columns J–O).
//!
//! Pure: the columns of each variant, the value mappings (statuses, milestone statuses, the
//! Very Low … Very High scale, the identification-source glossary), the rows of an item and the
//! eMASS rules an item breaks, with the rule codes of the eMASS validation profile
//! ([`crate::profiles`]) and new ones for what only the template checks. The HTTP room writes
//! the workbook.
//!
//! Mapping (column letters of the Navy layout):
//! - B `POA&M Item ID`: the item's `external_id` when it is an eMASS id (digits only), else
//!   blank (eMASS assigns it on import). J `Milestone ID`: blank (eMASS assigns it).
//! - C: the description; D: the controls, `; `-separated; E `Security Checks`: the source
//!   identifier (plugin or rule id).
//! - F: open, in progress and deferred are `Ongoing`; completed and closed `Completed`;
//!   risk accepted `Risk Accepted`; an approved false-positive deviation `Not Applicable`; an
//!   archived item `Archived`.
//! - G/I: scheduled completion, completion date (`completed_on`, else `closed_on`); H blank.
//! - K–O: the milestone's title, status (planned `Open`, in progress `In Progress`, past due
//!   and open `Delayed`, completed `Completed`, cancelled `Archived`), description, due date
//!   and completion date.
//! - P: the source kind as the template's glossary word; Q: detector, identifier and CVEs.
//! - R `Office/Org`: the system's organisation (else its CC/S/A/FA), the owner's name and
//!   e-mail, comma-separated; S: resources; T: comments; V: the assets; W: the interim
//!   mitigation; AF: the remediation plan.
//! - U and Y: the original risk rating (critical `Very High`); AB, AC: likelihood and impact;
//!   AE: the residual risk level from likelihood × impact by the template's matrix; AG (Navy):
//!   the adjusted risk rating. Army AG/AH and AL/AM: the resources' hours and estimated cost,
//!   funded or unfunded as the resources say.

use super::sheet::Cell;
/// Excel's limit of characters in one cell, and a text cut to it (the finding
/// `emass.field_too_long` says so).
pub use super::sheet::{clip, EXCEL_CELL_LIMIT};
use super::ItemRecord;
use crate::profiles::{Finding, Severity};
use crate::system::System;
use crate::workflow::{Milestone, MilestoneStatus};
use crate::{DeviationKind, DeviationStatus, ItemStatus, Level, RiskRating, SourceKind};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The template's layouts: the branch variants of the 2026 eMASS template.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Variant {
    /// Navy (A–AG), the baseline.
    #[default]
    Navy,
    /// Army (A–AO): no predisposing conditions, threat description or resulting residual
    /// risk; the CFO-audit and resource-cost columns appended.
    Army,
    /// Marine Corps (A–AF): Navy without column AG.
    Marine,
}

/// The data sheet's name (eMASS reads the first sheet).
pub const SHEET: &str = "POA&M";
/// The row of the column headers (1-based, as Excel numbers rows).
pub const HEADER_ROW: u32 = 7;
/// The first data row (1-based).
pub const FIRST_DATA_ROW: u32 = 8;
/// The default classification banner of row 1.
pub const DEFAULT_BANNER: &str = "***** CONTROLLED UNCLASSIFIED INFORMATION *****";

/// Navy row 7, columns B to AG (column A is hidden and has no header).
pub const NAVY_COLUMNS: [&str; 32] = [
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
    "Devices Affected",
    "Mitigations (in-house and in conjunction with the Navy CSSP)",
    "Predisposing Conditions",
    "Severity",
    "Relevance of Threat",
    "Threat Description",
    "Likelihood",
    "Impact",
    "Impact Description",
    "Residual Risk Level",
    "Recommendations",
    "Resulting Residual Risk after Proposed Mitigations",
];

/// Marine Corps row 7, columns B to AF.
pub const MARINE_COLUMNS: [&str; 31] = [
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
    "Devices Affected",
    "Mitigations",
    "Predisposing Conditions",
    "Severity",
    "Relevance of Threat",
    "Threat Description",
    "Likelihood",
    "Impact",
    "Impact Description",
    "Residual Risk Level",
    "Recommendations",
];

/// Army row 7, columns B to AO (`Identification Source ` has a trailing space, two cost
/// headers a line break, as the template has them).
pub const ARMY_COLUMNS: [&str; 40] = [
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
    "Identification Source ",
    "Identification Source Details",
    "Office/Org",
    "Resources Required",
    "Comments",
    "Raw Severity",
    "Devices Affected",
    "Mitigations",
    "Severity",
    "Relevance of Threat",
    "Likelihood",
    "Impact",
    "Impact Description",
    "Residual Risk Level",
    "Recommendations",
    "Identified in CFO Audit or other review",
    "Personnel Resources: \nCost Code",
    "Personnel Resources: Funded Base Hours",
    "Personnel Resources: Unfunded Base Hours",
    "Personnel Resources: \nNon-Funding Obstacle",
    "Personnel Resources: Non-Funded Obstacle Other Reason",
    "Non-Personnel Resources: Cost Code",
    "Non-Personnel Resources: Funded Amount",
    "Non-Personnel Resources: Unfunded Amount",
    "Non-Personnel Resources: Non-Funding Obstacle",
    "Non-Personnel Resources: Non-Funding Obstacle Other reason",
];

/// The previous (gen-2, before 2026-06-01) Navy template's row 7, columns B to AA: for
/// importers (milestones as text with their dates in J, `Status` in M).
pub const GEN2_COLUMNS: [&str; 26] = [
    "POA&M Item ID",
    "Control Vulnerability Description",
    "Controls / APs",
    "Office/Org",
    "Security Checks",
    "Resources Required",
    "Scheduled Completion Date",
    "Milestone ID",
    "Milestone with Completion Dates",
    "Milestone Changes",
    "Source Identifying Vulnerability ",
    "Status",
    "Comments",
    "Raw Severity",
    "Devices Affected",
    "Mitigations (in-house and in conjunction with the Navy CSSP)",
    "Predisposing Conditions",
    "Severity",
    "Relevance of Threat",
    "Threat Description",
    "Likelihood",
    "Impact",
    "Impact Description",
    "Residual Risk Level",
    "Recommendations",
    "Resulting Residual Risk after Proposed Mitigations",
];

/// What a column holds, whatever its letter in a variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    ItemId,
    VulnerabilityDescription,
    Controls,
    SecurityChecks,
    Status,
    ScheduledCompletion,
    RiskAcceptedExpiration,
    CompletionDate,
    MilestoneId,
    MilestoneDescription,
    MilestoneStatus,
    MilestoneStatusComments,
    MilestoneScheduledCompletion,
    MilestoneCompletionDate,
    IdentificationSource,
    IdentificationSourceDetails,
    OfficeOrg,
    ResourcesRequired,
    Comments,
    RawSeverity,
    DevicesAffected,
    Mitigations,
    PredisposingConditions,
    Severity,
    RelevanceOfThreat,
    ThreatDescription,
    Likelihood,
    Impact,
    ImpactDescription,
    ResidualRiskLevel,
    Recommendations,
    ResultingResidualRisk,
    CfoAudit,
    PersonnelCostCode,
    PersonnelFundedHours,
    PersonnelUnfundedHours,
    PersonnelObstacle,
    PersonnelObstacleOther,
    NonPersonnelCostCode,
    NonPersonnelFundedAmount,
    NonPersonnelUnfundedAmount,
    NonPersonnelObstacle,
    NonPersonnelObstacleOther,
}

use Field as F;

const NAVY_FIELDS: [Field; 32] = [
    F::ItemId,
    F::VulnerabilityDescription,
    F::Controls,
    F::SecurityChecks,
    F::Status,
    F::ScheduledCompletion,
    F::RiskAcceptedExpiration,
    F::CompletionDate,
    F::MilestoneId,
    F::MilestoneDescription,
    F::MilestoneStatus,
    F::MilestoneStatusComments,
    F::MilestoneScheduledCompletion,
    F::MilestoneCompletionDate,
    F::IdentificationSource,
    F::IdentificationSourceDetails,
    F::OfficeOrg,
    F::ResourcesRequired,
    F::Comments,
    F::RawSeverity,
    F::DevicesAffected,
    F::Mitigations,
    F::PredisposingConditions,
    F::Severity,
    F::RelevanceOfThreat,
    F::ThreatDescription,
    F::Likelihood,
    F::Impact,
    F::ImpactDescription,
    F::ResidualRiskLevel,
    F::Recommendations,
    F::ResultingResidualRisk,
];

/// The Navy fields without the last (`Resulting Residual Risk after Proposed Mitigations`).
const MARINE_FIELDS: &[Field] = NAVY_FIELDS.split_at(31).0;

const ARMY_FIELDS: [Field; 40] = [
    F::ItemId,
    F::VulnerabilityDescription,
    F::Controls,
    F::SecurityChecks,
    F::Status,
    F::ScheduledCompletion,
    F::RiskAcceptedExpiration,
    F::CompletionDate,
    F::MilestoneId,
    F::MilestoneDescription,
    F::MilestoneStatus,
    F::MilestoneStatusComments,
    F::MilestoneScheduledCompletion,
    F::MilestoneCompletionDate,
    F::IdentificationSource,
    F::IdentificationSourceDetails,
    F::OfficeOrg,
    F::ResourcesRequired,
    F::Comments,
    F::RawSeverity,
    F::DevicesAffected,
    F::Mitigations,
    F::Severity,
    F::RelevanceOfThreat,
    F::Likelihood,
    F::Impact,
    F::ImpactDescription,
    F::ResidualRiskLevel,
    F::Recommendations,
    F::CfoAudit,
    F::PersonnelCostCode,
    F::PersonnelFundedHours,
    F::PersonnelUnfundedHours,
    F::PersonnelObstacle,
    F::PersonnelObstacleOther,
    F::NonPersonnelCostCode,
    F::NonPersonnelFundedAmount,
    F::NonPersonnelUnfundedAmount,
    F::NonPersonnelObstacle,
    F::NonPersonnelObstacleOther,
];

/// `POA&M Status` words (the template's list).
pub const STATUSES: [&str; 5] = [
    "Completed",
    "Ongoing",
    "Not Applicable",
    "Archived",
    "Risk Accepted",
];
/// `Milestone Status` words (the template's list).
pub const MILESTONE_STATUSES: [&str; 5] =
    ["Open", "In Progress", "Delayed", "Completed", "Archived"];
/// The Very Low … Very High scale of the risk columns.
pub const LEVELS: [&str; 5] = ["Very Low", "Low", "Moderate", "High", "Very High"];
/// The `Identification Source` glossary (NAVY-2026-v1 `Glossary!A2:A20`).
pub const IDENTIFICATION_SOURCES: [&str; 19] = [
    "Access Control",
    "Audit Findings",
    "Compliance Gaps",
    "Configuration Management",
    "Data Protection and Privacy",
    "Decision Condition",
    "Disaster Recovery / Continuity Planning",
    "Incident Response",
    "Management",
    "Operational",
    "Other (Non-Technical)",
    "Other (Technical)",
    "Patch Management",
    "Risk Assessment Findings",
    "Security Control Deficiencies",
    "System and Network Monitoring",
    "Third-Party or Supplier Risk",
    "Training and Awareness",
    "Vulnerability Management",
];

impl Field {
    /// A milestone column (J–O): on every row of an item; the others only on its first row.
    pub fn is_milestone(self) -> bool {
        matches!(
            self,
            F::MilestoneId
                | F::MilestoneDescription
                | F::MilestoneStatus
                | F::MilestoneStatusComments
                | F::MilestoneScheduledCompletion
                | F::MilestoneCompletionDate
        )
    }

    /// A date column (written as a real date, `mm/dd/yyyy`).
    pub fn is_date(self) -> bool {
        matches!(
            self,
            F::ScheduledCompletion
                | F::RiskAcceptedExpiration
                | F::CompletionDate
                | F::MilestoneScheduledCompletion
                | F::MilestoneCompletionDate
        )
    }

    /// The words a column accepts, for its list data validation.
    pub fn list(self) -> Option<&'static [&'static str]> {
        match self {
            F::Status => Some(&STATUSES),
            F::MilestoneStatus => Some(&MILESTONE_STATUSES),
            F::RawSeverity
            | F::Severity
            | F::RelevanceOfThreat
            | F::Likelihood
            | F::Impact
            | F::ResidualRiskLevel
            | F::ResultingResidualRisk => Some(&LEVELS),
            _ => None,
        }
    }

    /// eMASS's length limit of the column (REST API v3.22), when it has one.
    pub fn limit(self) -> Option<usize> {
        match self {
            F::VulnerabilityDescription
            | F::IdentificationSource
            | F::Comments
            | F::Mitigations
            | F::Recommendations
            | F::MilestoneDescription
            | F::PersonnelObstacleOther
            | F::NonPersonnelObstacleOther => Some(2000),
            F::ResourcesRequired => Some(250),
            _ => None,
        }
    }

    /// A JSON pointer to the item field the column comes from (for findings).
    fn pointer(self) -> &'static str {
        match self {
            F::VulnerabilityDescription => "/description",
            F::Controls => "/controls",
            F::SecurityChecks => "/source/identifier",
            F::IdentificationSource | F::IdentificationSourceDetails => "/source",
            F::OfficeOrg => "/owner",
            F::ResourcesRequired => "/resources/description",
            F::Comments => "/comments",
            F::DevicesAffected => "/assets",
            F::Mitigations => "/interim_mitigation",
            F::Recommendations => "/remediation_plan",
            F::MilestoneDescription | F::MilestoneStatusComments => "/milestones",
            _ => "",
        }
    }
}

/// A header-block entry of rows 2–6.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderKey {
    DateExported,
    ExportedBy,
    Ccsafa,
    SystemName,
    ItRegistration,
    SystemType,
    PocName,
    PocPhone,
    PocEmail,
    OmbProjectId,
    SecurityCosts,
}

/// A label of the header block and where its value goes (A1 ranges; a single cell is
/// `L4:L4`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderCell {
    pub key: HeaderKey,
    pub label: &'static str,
    pub label_range: &'static str,
    pub value_range: &'static str,
}

const fn hc(
    key: HeaderKey,
    label: &'static str,
    label_range: &'static str,
    value_range: &'static str,
) -> HeaderCell {
    HeaderCell {
        key,
        label,
        label_range,
        value_range,
    }
}

use HeaderKey as H;

/// Navy's and Army's header block.
const NAVY_HEADER: [HeaderCell; 11] = [
    hc(H::DateExported, "Date Exported:", "A2:C2", "D2:K2"),
    hc(H::ExportedBy, "Exported By:", "A3:C3", "D3:K3"),
    hc(H::Ccsafa, "CC/S/A/FA:", "A4:C4", "D4:K4"),
    hc(H::SystemName, "System / Project Name:", "A5:C5", "D5:K5"),
    hc(
        H::ItRegistration,
        "DoW IT Registration No:",
        "A6:C6",
        "D6:K6",
    ),
    hc(H::SystemType, "System Type:", "L2:L3", "M2:O3"),
    hc(H::PocName, "POC Name:", "L4:L4", "M4:O4"),
    hc(H::PocPhone, "POC Phone:", "L5:L5", "M5:O5"),
    hc(H::PocEmail, "POC E-Mail:", "L6:L6", "M6:O6"),
    hc(H::OmbProjectId, "OMB Project ID:", "P2:P3", "Q2:S3"),
    hc(H::SecurityCosts, "Security Costs:", "P5:P5", "Q5:S5"),
];

/// The Marine Corps header block (OMB project id and security costs one column left).
const MARINE_HEADER: [HeaderCell; 11] = [
    hc(H::DateExported, "Date Exported:", "A2:C2", "D2:K2"),
    hc(H::ExportedBy, "Exported By:", "A3:C3", "D3:K3"),
    hc(H::Ccsafa, "CC/S/A/FA:", "A4:C4", "D4:K4"),
    hc(H::SystemName, "System / Project Name:", "A5:C5", "D5:K5"),
    hc(
        H::ItRegistration,
        "DoW IT Registration No:",
        "A6:C6",
        "D6:K6",
    ),
    hc(H::SystemType, "System Type:", "L2:L3", "M2:N3"),
    hc(H::PocName, "POC Name:", "L4:L4", "M4:N4"),
    hc(H::PocPhone, "POC Phone:", "L5:L5", "M5:N5"),
    hc(H::PocEmail, "POC E-Mail:", "L6:L6", "M6:N6"),
    hc(H::OmbProjectId, "OMB Project ID:", "O2:O3", "P2:R3"),
    hc(H::SecurityCosts, "Security Costs:", "O5:O5", "P5:R5"),
];

impl Variant {
    pub fn as_str(self) -> &'static str {
        match self {
            Variant::Navy => "navy",
            Variant::Army => "army",
            Variant::Marine => "marine",
        }
    }

    /// Row 7's labels from column B on.
    pub fn columns(self) -> &'static [&'static str] {
        match self {
            Variant::Navy => &NAVY_COLUMNS,
            Variant::Army => &ARMY_COLUMNS,
            Variant::Marine => &MARINE_COLUMNS,
        }
    }

    /// What each column from B on holds.
    pub fn fields(self) -> &'static [Field] {
        match self {
            Variant::Navy => &NAVY_FIELDS,
            Variant::Army => &ARMY_FIELDS,
            Variant::Marine => MARINE_FIELDS,
        }
    }

    /// The header block of rows 2–6.
    pub fn header(self) -> &'static [HeaderCell] {
        match self {
            Variant::Navy | Variant::Army => &NAVY_HEADER,
            Variant::Marine => &MARINE_HEADER,
        }
    }

    /// The zero-based index of the last column (the banner is merged from A to it).
    pub fn last_column(self) -> u16 {
        self.columns().len() as u16
    }

    /// The column letter of a field in this variant, when the variant has it.
    pub fn letter(self, field: Field) -> Option<String> {
        self.fields()
            .iter()
            .position(|f| *f == field)
            .map(|i| column_letter(i as u16 + 1))
    }
}

/// The letters of a zero-based column index (0 is `A`, 26 is `AA`).
pub fn column_letter(mut index: u16) -> String {
    let mut out = Vec::new();
    loop {
        out.push(b'A' + (index % 26) as u8);
        if index < 26 {
            break;
        }
        index = index / 26 - 1;
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

/// A cell reference (`AB12`) as zero-based (row, column).
pub fn cell_ref(a1: &str) -> Option<(u32, u16)> {
    let split = a1.find(|c: char| c.is_ascii_digit())?;
    let (letters, digits) = a1.split_at(split);
    if letters.is_empty() || !letters.bytes().all(|b| b.is_ascii_uppercase()) {
        return None;
    }
    let mut col: u32 = 0;
    for b in letters.bytes() {
        col = col * 26 + u32::from(b - b'A' + 1);
    }
    let row: u32 = digits.parse().ok()?;
    Some((
        row.checked_sub(1)?,
        u16::try_from(col.checked_sub(1)?).ok()?,
    ))
}

/// A range (`M2:O3`) as zero-based (first row, first column, last row, last column).
pub fn range_ref(a1: &str) -> Option<(u32, u16, u32, u16)> {
    let (a, b) = a1.split_once(':')?;
    let (r1, c1) = cell_ref(a)?;
    let (r2, c2) = cell_ref(b)?;
    Some((r1, c1, r2, c2))
}

/// The template's `POA&M Status` of an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[schema(as = EmassStatus)]
pub enum Status {
    Ongoing,
    #[serde(rename = "Risk Accepted")]
    RiskAccepted,
    Completed,
    #[serde(rename = "Not Applicable")]
    NotApplicable,
    Archived,
}

impl Status {
    pub fn word(self) -> &'static str {
        match self {
            Status::Ongoing => "Ongoing",
            Status::RiskAccepted => "Risk Accepted",
            Status::Completed => "Completed",
            Status::NotApplicable => "Not Applicable",
            Status::Archived => "Archived",
        }
    }

    /// An item's status in the template.
    pub fn of(rec: &ItemRecord) -> Status {
        let it = &rec.item;
        if it.archived_at.is_some() {
            return Status::Archived;
        }
        let false_positive = it.deviation.as_ref().is_some_and(|d| {
            d.kind == DeviationKind::FalsePositive && d.status == DeviationStatus::Approved
        });
        match it.status {
            ItemStatus::RiskAccepted => Status::RiskAccepted,
            ItemStatus::Completed | ItemStatus::Closed => Status::Completed,
            _ if false_positive => Status::NotApplicable,
            ItemStatus::Open | ItemStatus::InProgress | ItemStatus::Deferred => Status::Ongoing,
        }
    }
}

/// A milestone's `Milestone Status`.
pub fn milestone_status(m: &Milestone) -> &'static str {
    match m.status {
        MilestoneStatus::Completed => "Completed",
        MilestoneStatus::Cancelled => "Archived",
        _ if m.delayed => "Delayed",
        MilestoneStatus::Planned => "Open",
        MilestoneStatus::InProgress => "In Progress",
    }
}

/// A level on the template's scale.
pub fn level(l: Level) -> &'static str {
    match l {
        Level::VeryLow => "Very Low",
        Level::Low => "Low",
        Level::Moderate => "Moderate",
        Level::High => "High",
        Level::VeryHigh => "Very High",
    }
}

/// A level read back from the template's scale (case and spacing forgiven).
pub fn parse_level(word: &str) -> Option<Level> {
    let w: String = word
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_ascii_lowercase();
    match w.as_str() {
        "very low" => Some(Level::VeryLow),
        "low" => Some(Level::Low),
        "moderate" | "medium" => Some(Level::Moderate),
        "high" => Some(Level::High),
        "very high" => Some(Level::VeryHigh),
        _ => None,
    }
}

/// A risk rating on the template's scale (C-PAT: CAT I critical is Very High).
pub fn rating(r: RiskRating) -> &'static str {
    match r {
        RiskRating::Critical => "Very High",
        RiskRating::High => "High",
        RiskRating::Moderate => "Moderate",
        RiskRating::Low => "Low",
    }
}

/// Likelihood from relevance of threat and severity, and residual risk from likelihood and
/// impact: the one matrix the template's Instructions sheet prints for both (rows the first
/// argument, columns the second).
pub fn matrix(row: Level, column: Level) -> Level {
    use Level::*;
    let table: [[Level; 5]; 5] = [
        // Very Low
        [VeryLow, VeryLow, Low, Low, Low],
        // Low
        [VeryLow, Low, Low, Low, Moderate],
        // Moderate
        [VeryLow, Low, Moderate, Moderate, High],
        // High
        [VeryLow, Low, Moderate, High, VeryHigh],
        // Very High
        [VeryLow, Low, Moderate, High, VeryHigh],
    ];
    let index = |l: Level| match l {
        VeryLow => 0,
        Low => 1,
        Moderate => 2,
        High => 3,
        VeryHigh => 4,
    };
    table[index(row)][index(column)]
}

/// The glossary word for how a weakness was found (each kind has its own, so it reads back).
pub fn identification_source(kind: SourceKind) -> &'static str {
    match kind {
        SourceKind::Assessment => "Security Control Deficiencies",
        SourceKind::Scan => "Vulnerability Management",
        SourceKind::PenTest => "Risk Assessment Findings",
        SourceKind::Audit => "Audit Findings",
        SourceKind::Incident => "Incident Response",
        SourceKind::SelfAssessment => "Compliance Gaps",
        SourceKind::ContinuousMonitoring => "System and Network Monitoring",
    }
}

/// The source kind of a glossary word (the first of `;`-separated words that maps).
pub fn source_kind(words: &str) -> Option<SourceKind> {
    words.split(';').map(str::trim).find_map(|w| {
        SourceKind::ALL
            .iter()
            .copied()
            .find(|k| identification_source(*k).eq_ignore_ascii_case(w))
    })
}

/// The value of a header-block entry.
pub fn header_value(
    key: HeaderKey,
    system: &System,
    exported_on: NaiveDate,
    exported_by: &str,
) -> Cell {
    let emass = system.emass.clone().unwrap_or_default();
    let poc = emass
        .poc
        .clone()
        .or_else(|| system.contacts.issm.clone())
        .or_else(|| system.contacts.system_owner.clone());
    let text = |s: Option<String>| Cell::text(s.unwrap_or_default());
    match key {
        H::DateExported => Cell::Date(exported_on),
        H::ExportedBy => Cell::text(exported_by),
        H::Ccsafa => text(emass.ccsafa),
        H::SystemName => Cell::text(system.name.clone()),
        H::ItRegistration => text(emass.it_registration),
        H::SystemType => text(emass.system_type),
        H::PocName => text(poc.as_ref().map(|p| p.name.clone())),
        H::PocPhone => text(poc.as_ref().and_then(|p| p.phone.clone())),
        H::PocEmail => text(poc.as_ref().and_then(|p| p.email.clone())),
        H::OmbProjectId => text(emass.omb_project_id),
        H::SecurityCosts => emass.security_costs.map_or(Cell::Empty, Cell::Number),
    }
}

/// An item's rows and the rules eMASS would refuse it by.
#[derive(Debug, Clone, PartialEq)]
pub struct Exported {
    pub status: Status,
    /// One per milestone (at least one), each as long as the variant's columns from B.
    pub rows: Vec<Vec<Cell>>,
    /// The broken rules; empty: eMASS takes the item.
    pub findings: Vec<Finding>,
}

fn join(items: &[String], sep: &str) -> String {
    items.join(sep)
}

fn item_cell(field: Field, rec: &ItemRecord, system: &System, status: Status) -> Cell {
    let it = &rec.item;
    let resources = it.resources.as_ref();
    let funded = resources.and_then(|r| r.funded);
    match field {
        F::ItemId => Cell::text(
            it.external_id
                .clone()
                .filter(|e| !e.is_empty() && e.bytes().all(|b| b.is_ascii_digit()))
                .unwrap_or_default(),
        ),
        F::VulnerabilityDescription => Cell::text(it.description.clone()),
        F::Controls => Cell::text(join(&it.controls, "; ")),
        F::SecurityChecks => Cell::text(it.source.identifier.clone().unwrap_or_default()),
        F::Status => Cell::text(status.word()),
        F::ScheduledCompletion => Cell::date(it.scheduled_completion),
        F::CompletionDate => match status {
            Status::Completed => Cell::date(it.completed_on.or(it.closed_on)),
            _ => Cell::Empty,
        },
        F::IdentificationSource => Cell::text(identification_source(it.source.kind)),
        F::IdentificationSourceDetails => {
            let mut parts = Vec::new();
            if let Some(d) = &it.source.detector {
                parts.push(d.clone());
            }
            if let Some(i) = &it.source.identifier {
                parts.push(i.clone());
            }
            parts.extend(it.cves.iter().cloned());
            Cell::text(parts.join("; "))
        }
        F::OfficeOrg => {
            let mut parts = Vec::new();
            let org = system
                .organization
                .clone()
                .or_else(|| system.emass.as_ref().and_then(|e| e.ccsafa.clone()));
            if let Some(o) = org {
                parts.push(o);
            }
            if let Some(p) = &it.owner {
                parts.push(p.name.clone());
                if let Some(e) = &p.email {
                    parts.push(e.clone());
                }
            }
            Cell::text(parts.join(", "))
        }
        F::ResourcesRequired => Cell::text(
            resources
                .and_then(|r| r.description.clone())
                .unwrap_or_default(),
        ),
        F::Comments => Cell::text(it.comments.clone().unwrap_or_default()),
        F::RawSeverity | F::Severity => Cell::text(rating(it.risk_rating)),
        F::DevicesAffected => Cell::text(join(&it.assets, "; ")),
        F::Mitigations => Cell::text(it.interim_mitigation.clone().unwrap_or_default()),
        F::Likelihood => Cell::text(it.likelihood.map(level).unwrap_or_default()),
        F::Impact => Cell::text(it.impact.map(level).unwrap_or_default()),
        F::ResidualRiskLevel => match (it.likelihood, it.impact) {
            (Some(l), Some(i)) => Cell::text(level(matrix(l, i))),
            _ => Cell::Empty,
        },
        F::Recommendations => Cell::text(it.remediation_plan.clone().unwrap_or_default()),
        F::ResultingResidualRisk => {
            Cell::text(it.adjusted_risk_rating.map(rating).unwrap_or_default())
        }
        F::PersonnelFundedHours => match (funded, resources.and_then(|r| r.hours)) {
            (Some(true), Some(h)) => Cell::Number(h),
            _ => Cell::Empty,
        },
        F::PersonnelUnfundedHours => match (funded, resources.and_then(|r| r.hours)) {
            (Some(false), Some(h)) => Cell::Number(h),
            _ => Cell::Empty,
        },
        F::NonPersonnelFundedAmount => match (funded, resources.and_then(|r| r.estimated_cost)) {
            (Some(true), Some(c)) => Cell::Number(c),
            _ => Cell::Empty,
        },
        F::NonPersonnelUnfundedAmount => match (funded, resources.and_then(|r| r.estimated_cost)) {
            (Some(false), Some(c)) => Cell::Number(c),
            _ => Cell::Empty,
        },
        // No source in the service: left blank (optional in the template).
        F::RiskAcceptedExpiration
        | F::PredisposingConditions
        | F::RelevanceOfThreat
        | F::ThreatDescription
        | F::ImpactDescription
        | F::CfoAudit
        | F::PersonnelCostCode
        | F::PersonnelObstacle
        | F::PersonnelObstacleOther
        | F::NonPersonnelCostCode
        | F::NonPersonnelObstacle
        | F::NonPersonnelObstacleOther => Cell::Empty,
        // Milestone columns are filled per milestone.
        F::MilestoneId
        | F::MilestoneDescription
        | F::MilestoneStatus
        | F::MilestoneStatusComments
        | F::MilestoneScheduledCompletion
        | F::MilestoneCompletionDate => Cell::Empty,
    }
}

fn milestone_cell(field: Field, m: &Milestone) -> Cell {
    match field {
        F::MilestoneDescription => Cell::text(m.title.clone()),
        F::MilestoneStatus => Cell::text(milestone_status(m)),
        F::MilestoneStatusComments => Cell::text(m.description.clone().unwrap_or_default()),
        F::MilestoneScheduledCompletion => Cell::Date(m.due_on),
        F::MilestoneCompletionDate => match m.status {
            MilestoneStatus::Completed => Cell::date(m.completed_on),
            _ => Cell::Empty,
        },
        _ => Cell::Empty,
    }
}

const TEMPLATE: &str = "eMASS POA&M template, Instructions (Situational Awareness)";
const API: &str = "eMASS REST API v3.22, POA&M business rules";

fn finding(rule: &str, pointer: &str, message: String, citation: &str) -> Finding {
    Finding {
        rule: rule.into(),
        severity: Severity::Error,
        pointer: pointer.into(),
        message,
        citation: citation.into(),
        item_id: None,
        blocking: false,
    }
}

fn is_blank(c: &Cell) -> bool {
    match c {
        Cell::Empty => true,
        Cell::Text(s) => s.trim().is_empty(),
        _ => false,
    }
}

/// The rows of an item in a variant and the eMASS rules it breaks (checked on what is
/// written). `today` decides whether a completion date lies in the future.
pub fn export(rec: &ItemRecord, system: &System, variant: Variant, today: NaiveDate) -> Exported {
    let status = Status::of(rec);
    let fields = variant.fields();
    let first: Vec<Cell> = fields
        .iter()
        .map(|f| item_cell(*f, rec, system, status))
        .collect();
    let mut rows = Vec::with_capacity(rec.milestones.len().max(1));
    if rec.milestones.is_empty() {
        rows.push(first.clone());
    }
    for (i, m) in rec.milestones.iter().enumerate() {
        let row: Vec<Cell> = fields
            .iter()
            .enumerate()
            .map(|(c, f)| {
                if f.is_milestone() {
                    milestone_cell(*f, m)
                } else if i == 0 {
                    first[c].clone()
                } else {
                    Cell::Empty
                }
            })
            .collect();
        rows.push(row);
    }
    let findings = check(rec, &first, fields, &rows, status, today);
    Exported {
        status,
        rows,
        findings,
    }
}

fn check(
    rec: &ItemRecord,
    first: &[Cell],
    fields: &[Field],
    rows: &[Vec<Cell>],
    status: Status,
    today: NaiveDate,
) -> Vec<Finding> {
    let it = &rec.item;
    let mut out = Vec::new();
    let cell = |f: Field| {
        fields
            .iter()
            .position(|x| *x == f)
            .map_or(&Cell::Empty, |i| &first[i])
    };
    let milestones = rec.milestones.len();
    let requires_common = matches!(
        status,
        Status::Ongoing | Status::Completed | Status::RiskAccepted
    );
    if requires_common && is_blank(cell(F::ResourcesRequired)) {
        out.push(finding(
            "emass.resources_required",
            "/resources/description",
            format!(
                "{} items need \"Resources Required\" (SA 10–12)",
                status.word()
            ),
            TEMPLATE,
        ));
    }
    if requires_common && is_blank(cell(F::OfficeOrg)) {
        out.push(finding(
            "emass.poc_required",
            "/owner",
            "\"Office/Org\" is required: the system has no organisation and the item no owner"
                .into(),
            TEMPLATE,
        ));
    }
    if matches!(status, Status::Ongoing | Status::Completed) {
        if it.scheduled_completion.is_none() {
            out.push(finding(
                "emass.scheduled_completion_required",
                "/scheduled_completion",
                format!("{} items need a scheduled completion date", status.word()),
                TEMPLATE,
            ));
        }
        if milestones == 0 {
            out.push(finding(
                "emass.milestone_required",
                "/milestones",
                format!("{} items cannot be saved without milestones", status.word()),
                API,
            ));
        }
    }
    if status == Status::Completed {
        match it.completed_on.or(it.closed_on) {
            None => out.push(finding(
                "emass.completion_date_required",
                "/completed_on",
                "Completed items need a completion date".into(),
                API,
            )),
            Some(d) if d > today => out.push(finding(
                "emass.completion_in_future",
                "/completed_on",
                format!("the completion date {d} lies in the future"),
                API,
            )),
            Some(_) => {}
        }
        let open: Vec<usize> = rec
            .milestones
            .iter()
            .enumerate()
            .filter(|(_, m)| m.status.is_open())
            .map(|(i, _)| i + 1)
            .collect();
        if !open.is_empty() {
            out.push(finding(
                "emass.completed_milestones_open",
                "/milestones",
                format!(
                    "all milestones of a Completed item must be Completed or Archived; milestone(s) {} are not",
                    open.iter().map(usize::to_string).collect::<Vec<_>>().join(", ")
                ),
                TEMPLATE,
            ));
        }
    }
    if matches!(status, Status::Completed | Status::RiskAccepted) && is_blank(cell(F::Comments)) {
        out.push(finding(
            "emass.comments_required",
            "/comments",
            format!("{} items need comments", status.word()),
            TEMPLATE,
        ));
    }
    if status == Status::RiskAccepted {
        if milestones > 0 {
            out.push(finding(
                "emass.risk_accepted_has_milestones",
                "/milestones",
                format!("Risk Accepted items may have no milestones; this one has {milestones}"),
                API,
            ));
        }
        if it.scheduled_completion.is_some() {
            out.push(finding(
                "emass.risk_accepted_has_scheduled_completion",
                "/scheduled_completion",
                "Risk Accepted items cannot be saved with a scheduled completion date".into(),
                API,
            ));
        }
    }
    // SA 16: an item new to eMASS is unapproved there, so no milestone may end after it.
    if let Some(due) = it.scheduled_completion {
        if status != Status::RiskAccepted {
            let late: Vec<usize> = rec
                .milestones
                .iter()
                .enumerate()
                .filter(|(_, m)| m.due_on > due)
                .map(|(i, _)| i + 1)
                .collect();
            if !late.is_empty() {
                out.push(finding(
                    "emass.milestone_after_scheduled_completion",
                    "/milestones",
                    format!(
                        "milestone(s) {} end after the item's scheduled completion date {due}, which eMASS refuses for an unapproved item",
                        late.iter().map(usize::to_string).collect::<Vec<_>>().join(", ")
                    ),
                    TEMPLATE,
                ));
            }
        }
    }
    // Field limits: eMASS's where it has one, Excel's cell limit everywhere.
    let mut too_long: Vec<String> = Vec::new();
    let mut pointer = "";
    for row in rows {
        for (f, c) in fields.iter().zip(row) {
            if let Cell::Text(s) = c {
                let limit = f.limit().unwrap_or(EXCEL_CELL_LIMIT);
                let n = s.chars().count();
                if n > limit {
                    let letter = fields
                        .iter()
                        .position(|x| x == f)
                        .map(|i| column_letter(i as u16 + 1))
                        .unwrap_or_default();
                    let note = format!("column {letter} has {n} characters (limit {limit})");
                    if !too_long.contains(&note) {
                        if pointer.is_empty() {
                            pointer = f.pointer();
                        }
                        too_long.push(note);
                    }
                }
            }
        }
    }
    if !too_long.is_empty() {
        out.push(finding(
            "emass.field_too_long",
            pointer,
            format!("too long for eMASS: {}", too_long.join("; ")),
            API,
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{ItemId, MilestoneId, SystemId};
    use crate::item::{Item, ItemFields, ItemMeta};
    use crate::system::{SystemFields, SystemMeta};
    use chrono::{DateTime, Utc};
    use serde_json::json;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap_or_default()
    }

    fn at() -> DateTime<Utc> {
        "2026-09-01T00:00:00Z".parse().unwrap_or_default()
    }

    fn system() -> System {
        let f: SystemFields = serde_json::from_value(json!({
            "name": "Payroll", "organization": "NAVWAR",
            "contacts": {"issm": {"name": "Pat Issm", "email": "pat@example.mil", "phone": "555-0100"}},
            "emass": {"ccsafa": "NAVY", "it_registration": "1234", "system_type": "IS Enclave", "omb_project_id": "007-1", "security_costs": 1000.0}
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        System::assemble(
            SystemMeta {
                id: SystemId::new(),
                version: 1,
                created_at: at(),
                updated_at: at(),
                archived_at: None,
            },
            f,
        )
    }

    fn record(
        extra: serde_json::Value,
        milestones: &[(&str, MilestoneStatus, bool)],
    ) -> ItemRecord {
        let mut doc = json!({
            "title": "t", "description": "TLS 1.0 accepted", "risk_rating": "critical",
            "detected_on": "2026-10-01", "source": {"kind": "scan", "detector": "Nessus", "identifier": "104743"},
            "controls": ["SC-8(1)", "AC-2"], "cves": ["CVE-2011-3389"], "assets": ["lb-1", "lb-2"],
            "likelihood": "high", "impact": "moderate",
            "owner": {"name": "Dana Whitfield", "email": "dana@example.org"},
            "resources": {"description": "Two engineer-days", "hours": 16.0, "estimated_cost": 1200.0, "funded": false},
            "scheduled_completion": "2026-12-31", "comments": "tracked"
        });
        if let (Some(o), serde_json::Value::Object(e)) = (doc.as_object_mut(), extra) {
            o.extend(e);
        }
        let fields: ItemFields = serde_json::from_value(doc).unwrap_or_else(|e| panic!("{e}"));
        let sys = system();
        let item = Item::assemble(
            ItemMeta {
                id: ItemId::new(),
                display_id: "POAM-0001".into(),
                system_id: sys.id,
                deadline_rule: None,
                version: 1,
                created_at: at(),
                updated_at: at(),
                archived_at: None,
                archive_reason: None,
            },
            fields,
            d("2026-11-20"),
        );
        let milestones = milestones
            .iter()
            .enumerate()
            .map(|(i, (due, status, delayed))| Milestone {
                id: MilestoneId::new(),
                item_id: item.id,
                title: format!("Step {}", i + 1),
                description: None,
                due_on: d(due),
                status: *status,
                completed_on: (*status == MilestoneStatus::Completed).then(|| d("2026-11-01")),
                position: i as i32,
                kind: crate::workflow::MilestoneKind::Other,
                percent_complete: 0,
                delayed: *delayed,
                changes: vec![],
                version: 1,
                created_at: at(),
                updated_at: at(),
            })
            .collect();
        ItemRecord {
            item,
            milestones,
            transitions: vec![],
            evidence: vec![],
            reviews: vec![],
        }
    }

    fn rules(e: &Exported) -> Vec<&str> {
        e.findings.iter().map(|f| f.rule.as_str()).collect()
    }

    fn at_col(e: &Exported, row: usize, v: Variant, f: Field) -> &Cell {
        let i = v
            .fields()
            .iter()
            .position(|x| *x == f)
            .unwrap_or(usize::MAX);
        e.rows
            .get(row)
            .and_then(|r| r.get(i))
            .unwrap_or(&Cell::Empty)
    }

    #[test]
    fn variants_have_as_many_fields_as_columns() {
        for v in [Variant::Navy, Variant::Army, Variant::Marine] {
            assert_eq!(v.fields().len(), v.columns().len(), "{v:?}");
        }
        assert_eq!(column_letter(Variant::Navy.last_column()), "AG");
        assert_eq!(column_letter(Variant::Army.last_column()), "AO");
        assert_eq!(column_letter(Variant::Marine.last_column()), "AF");
        assert_eq!(Variant::Navy.letter(F::Status).as_deref(), Some("F"));
        assert_eq!(Variant::Army.letter(F::Severity).as_deref(), Some("X"));
        assert_eq!(Variant::Marine.letter(F::ResultingResidualRisk), None);
        assert_eq!(cell_ref("AB12"), Some((11, 27)));
        assert_eq!(range_ref("M2:O3"), Some((1, 12, 2, 14)));
        assert_eq!(cell_ref("12"), None);
        for v in [Variant::Navy, Variant::Marine] {
            assert!(v
                .header()
                .iter()
                .all(|h| range_ref(h.label_range).is_some() && range_ref(h.value_range).is_some()));
        }
    }

    #[test]
    fn one_row_per_milestone_with_the_item_columns_on_the_first() {
        let rec = record(
            json!({}),
            &[
                ("2026-11-01", MilestoneStatus::Completed, false),
                ("2026-11-10", MilestoneStatus::Planned, true),
                ("2026-12-01", MilestoneStatus::InProgress, false),
            ],
        );
        let v = Variant::Navy;
        let e = export(&rec, &system(), v, d("2026-11-20"));
        assert_eq!(e.rows.len(), 3);
        assert_eq!(e.status, Status::Ongoing);
        assert_eq!(at_col(&e, 0, v, F::Status), &Cell::text("Ongoing"));
        assert_eq!(at_col(&e, 1, v, F::Status), &Cell::Empty);
        assert_eq!(at_col(&e, 2, v, F::VulnerabilityDescription), &Cell::Empty);
        let statuses: Vec<&Cell> = (0..3)
            .map(|r| at_col(&e, r, v, F::MilestoneStatus))
            .collect();
        assert_eq!(
            statuses,
            [
                &Cell::text("Completed"),
                &Cell::text("Delayed"),
                &Cell::text("In Progress")
            ]
        );
        assert_eq!(
            at_col(&e, 0, v, F::MilestoneCompletionDate),
            &Cell::Date(d("2026-11-01"))
        );
        assert_eq!(at_col(&e, 1, v, F::MilestoneCompletionDate), &Cell::Empty);
        assert_eq!(at_col(&e, 0, v, F::RawSeverity), &Cell::text("Very High"));
        assert_eq!(
            at_col(&e, 0, v, F::ResidualRiskLevel),
            &Cell::text("Moderate")
        );
        assert_eq!(
            at_col(&e, 0, v, F::OfficeOrg),
            &Cell::text("NAVWAR, Dana Whitfield, dana@example.org")
        );
        assert_eq!(at_col(&e, 0, v, F::Controls), &Cell::text("SC-8(1); AC-2"));
        assert_eq!(
            at_col(&e, 0, v, F::IdentificationSource),
            &Cell::text("Vulnerability Management")
        );
        assert!(e.findings.is_empty(), "{:?}", e.findings);
        let army = export(&rec, &system(), Variant::Army, d("2026-11-20"));
        assert_eq!(
            at_col(&army, 0, Variant::Army, F::PersonnelUnfundedHours),
            &Cell::Number(16.0)
        );
        assert_eq!(army.rows[0].len(), ARMY_COLUMNS.len());
    }

    #[test]
    fn the_rules_name_what_emass_would_refuse() {
        let today = d("2026-11-20");
        let sys = system();
        // Ongoing without milestones or resources.
        let e = export(
            &record(json!({"resources": null}), &[]),
            &sys,
            Variant::Navy,
            today,
        );
        assert_eq!(e.rows.len(), 1);
        assert_eq!(
            rules(&e),
            ["emass.resources_required", "emass.milestone_required"]
        );
        // Completed with an open milestone and a future completion date.
        let e = export(
            &record(
                json!({"status": "completed", "completed_on": "2026-12-01"}),
                &[("2026-11-01", MilestoneStatus::Planned, false)],
            ),
            &sys,
            Variant::Navy,
            today,
        );
        assert_eq!(
            rules(&e),
            [
                "emass.completion_in_future",
                "emass.completed_milestones_open"
            ]
        );
        // Risk accepted with a milestone and a scheduled date, no comments.
        let e = export(
            &record(
                json!({"status": "risk_accepted", "comments": null}),
                &[("2026-11-01", MilestoneStatus::Completed, false)],
            ),
            &sys,
            Variant::Marine,
            today,
        );
        assert_eq!(
            rules(&e),
            [
                "emass.comments_required",
                "emass.risk_accepted_has_milestones",
                "emass.risk_accepted_has_scheduled_completion"
            ]
        );
        // A milestone after the item's date; a description over 2000 characters.
        let e = export(
            &record(
                json!({"description": "x".repeat(2001)}),
                &[("2027-01-15", MilestoneStatus::Planned, false)],
            ),
            &sys,
            Variant::Army,
            today,
        );
        assert_eq!(
            rules(&e),
            [
                "emass.milestone_after_scheduled_completion",
                "emass.field_too_long"
            ]
        );
        assert!(e.findings[1].message.contains("column C has 2001"));
    }

    #[test]
    fn scales_and_sources_read_back() {
        for l in Level::ALL {
            assert_eq!(parse_level(level(*l)), Some(*l));
        }
        assert_eq!(parse_level(" very  HIGH "), Some(Level::VeryHigh));
        for k in SourceKind::ALL {
            assert_eq!(source_kind(identification_source(*k)), Some(*k));
            assert!(IDENTIFICATION_SOURCES.contains(&identification_source(*k)));
        }
        assert_eq!(
            source_kind("Operational; Audit Findings"),
            Some(SourceKind::Audit)
        );
        assert_eq!(matrix(Level::Low, Level::VeryHigh), Level::Moderate);
        assert_eq!(matrix(Level::VeryLow, Level::Moderate), Level::Low);
        assert_eq!(clip(&"é".repeat(40_000)).chars().count(), EXCEL_CELL_LIMIT);
    }

    #[test]
    fn the_header_block_takes_the_system_fields() {
        let sys = system();
        let v = |k| header_value(k, &sys, d("2026-11-20"), "tester@example.org");
        assert_eq!(v(H::DateExported), Cell::Date(d("2026-11-20")));
        assert_eq!(v(H::Ccsafa), Cell::text("NAVY"));
        assert_eq!(
            v(H::PocName),
            Cell::text("Pat Issm"),
            "the ISSM without a POC"
        );
        assert_eq!(v(H::PocPhone), Cell::text("555-0100"));
        assert_eq!(v(H::SecurityCosts), Cell::Number(1000.0));
        assert_eq!(Variant::Marine.header()[9].label_range, "O2:O3");
    }
}
