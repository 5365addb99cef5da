//! The FedRAMP POA&M template v3.0 (its record of changes: 2025-11-17, "Added Instructions Tab,
//! consolidated reporting fields, and simplified input requirements").
//!
//! What changed from the Rev5 layout ([`super::fedramp`], columns A–AE, still the default):
//! - the Open sheet holds the header block (Cloud Service Provider, Cloud Service Offering,
//!   Impact Level, POA&M Date) in B1:E1 with its values in row 2, the column headers in row 3
//!   from column B to AB, and column A labels the three rows under them (Guidance, Examples,
//!   Mandatory or Situational); items follow from row 7;
//! - "Overall Remediation Plan" is "Remediation Plan" on the Open sheet (the Closed and
//!   Configuration sheets keep the old label);
//! - Planned Milestones, Milestone Changes, Auto-Approve and Service Name are gone: the
//!   milestones are written into the remediation plan ("consolidated reporting fields");
//! - the BOD 22-01 columns carry their full name;
//! - the Closed and Configuration Findings sheets have their header in row 2 (same columns);
//! - a PL-2 Findings sheet (documentation deficiencies named by the 3PAO) was added.
//!
//! Positions here are 0-based (row 0 is Excel's row 1, column 0 is A). The label lists are
//! public so an importer can recognise the layout by its header labels.

use super::fedramp;
use super::sheet::Cell;
use super::ItemRecord;

/// The Open sheet's name.
pub const OPEN_SHEET: &str = "Open POA&M Items";
/// The Closed sheet's name.
pub const CLOSED_SHEET: &str = "Closed POA&M Items";
/// Configuration findings (same columns as the Closed sheet).
pub const CONFIGURATION_SHEET: &str = "Configuration Findings";
/// PL-2 findings: SSP and documentation deficiencies.
pub const PL2_SHEET: &str = "PL-2 Findings";

/// The header block's labels on the Open sheet, B1:E1 (values in B2:E2).
pub const HEADER_LABELS: [&str; 4] = [
    "Cloud Service Provider",
    "Cloud Service Offering",
    "Impact Level",
    "POA&M Date",
];

/// Column A's labels of the three rows under the Open sheet's column headers.
pub const ROW_LABELS: [&str; 3] = ["Guidance", "Examples", "Mandatory or Situational"];

/// The first item column (B): column A holds row labels.
pub const FIRST_COLUMN: u16 = 1;
/// The Open sheet's header block row (Excel row 1); its values are in the next row.
pub const OPEN_BLOCK_ROW: u32 = 0;
/// The Open sheet's column-header row (Excel row 3).
pub const OPEN_HEADER_ROW: u32 = 2;
/// The Open sheet's first item row (Excel row 7), after Guidance, Examples and Mandatory.
pub const OPEN_FIRST_ROW: u32 = 6;
/// The Closed and Configuration sheets' header row (Excel row 2).
pub const CLOSED_HEADER_ROW: u32 = 1;

/// The Open sheet's column headers, B to AB.
pub const OPEN_COLUMNS: [&str; 27] = [
    "POAM ID",
    "Controls",
    "Weakness Name",
    "Weakness Description",
    "Weakness Detector Source",
    "Weakness Source Identifier",
    "Asset Identifier",
    "Point of Contact",
    "Resources Required",
    "Remediation Plan",
    "Original Detection Date",
    "Scheduled Completion Date",
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
    "Binding Operational Directive 22-01 tracking",
    "Binding Operational Directive 22-01 Due Date",
    "CVE",
];

/// The Closed and Configuration Findings sheets' column headers (row 2, from column B): the
/// Open sheet's, with the remediation plan under its older label.
pub const CLOSED_COLUMNS: [&str; 27] = {
    let mut c = OPEN_COLUMNS;
    c[9] = "Overall Remediation Plan";
    c
};

/// The PL-2 Findings sheet's column headers.
pub const PL2_COLUMNS: [&str; 5] = [
    "Deficiency ID",
    "Deficiency Name",
    "Deficiency Description",
    "Remediation Plan/Description",
    "Remediation Date",
];

/// Which Rev5 columns (A–AE, 0-based) the v3.0 columns hold, in order.
const FROM_REV5: [usize; 27] = [
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 27, 28,
    29,
];

/// The index of the remediation plan among [`OPEN_COLUMNS`].
const PLAN: usize = 9;

/// The remediation plan with the milestones the template no longer has columns for.
pub fn remediation_plan(rec: &ItemRecord) -> String {
    let mut parts = Vec::new();
    if let Some(p) = &rec.item.remediation_plan {
        parts.push(p.clone());
    }
    let planned = fedramp::planned_milestones(rec);
    if !planned.is_empty() {
        parts.push(format!("{PLANNED_HEADING}{planned}"));
    }
    let changes = fedramp::milestone_changes(rec);
    if !changes.is_empty() {
        parts.push(format!("{CHANGES_HEADING}{changes}"));
    }
    parts.join("\n\n")
}

/// The heading of the planned milestones in [`remediation_plan`] (Rev5's Planned Milestones).
const PLANNED_HEADING: &str = "Milestones:\n";
/// The heading of the milestone changes in [`remediation_plan`] (Rev5's Milestone Changes).
const CHANGES_HEADING: &str = "Milestone changes:\n";

/// A remediation plan split as [`remediation_plan`] writes it: the plan itself (`None` when
/// empty), the planned milestones and the milestone changes (empty when the text has no such
/// section), for an importer to read as Rev5's two milestone columns.
pub fn split_remediation_plan(text: &str) -> (Option<String>, &str, &str) {
    let (head, changes) = split_section(text, CHANGES_HEADING);
    let (plan, planned) = split_section(head, PLANNED_HEADING);
    let plan = plan.trim();
    (
        (!plan.is_empty()).then(|| plan.to_owned()),
        planned,
        changes,
    )
}

/// The text before the last section under `heading` (at the start, or after a blank line),
/// and that section.
fn split_section<'a>(text: &'a str, heading: &str) -> (&'a str, &'a str) {
    if let Some(rest) = text.strip_prefix(heading) {
        return ("", rest);
    }
    let sep = format!("\n\n{heading}");
    match text.rfind(&sep) {
        Some(i) => (&text[..i], &text[i + sep.len()..]),
        None => (text, ""),
    }
}

/// One item row, columns B to AB (27 cells; write them from [`FIRST_COLUMN`]).
pub fn cells(rec: &ItemRecord) -> Vec<Cell> {
    let rev5 = fedramp::cells(rec);
    let mut out: Vec<Cell> = FROM_REV5.iter().map(|&i| rev5[i].clone()).collect();
    out[PLAN] = Cell::text(remediation_plan(rec));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_remediation_plan_splits_back_into_its_sections() {
        let text = "Patch it.\n\nMilestones:\n(1) Test 10/01/2026\n\nMilestone changes:\n(1) moved";
        assert_eq!(
            split_remediation_plan(text),
            (
                Some("Patch it.".to_owned()),
                "(1) Test 10/01/2026",
                "(1) moved"
            )
        );
        assert_eq!(
            split_remediation_plan("Milestones:\n(1) Test 10/01/2026"),
            (None, "(1) Test 10/01/2026", "")
        );
        assert_eq!(
            split_remediation_plan("Just a plan."),
            (Some("Just a plan.".to_owned()), "", "")
        );
    }

    #[test]
    fn v3_drops_the_milestone_auto_approve_and_service_columns() {
        for (i, &from) in FROM_REV5.iter().enumerate() {
            let (old, new) = (fedramp::COLUMNS[from], OPEN_COLUMNS[i]);
            let renamed = matches!(
                (old, new),
                ("Overall Remediation Plan", "Remediation Plan")
                    | (
                        "BOD 22-01 tracking",
                        "Binding Operational Directive 22-01 tracking"
                    )
                    | (
                        "BOD 22-01 Due Date",
                        "Binding Operational Directive 22-01 Due Date"
                    )
            );
            assert!(old == new || renamed, "{old} -> {new}");
        }
        for gone in [
            "Planned Milestones",
            "Milestone Changes",
            "Auto-Approve",
            "Service Name",
        ] {
            assert!(!OPEN_COLUMNS.contains(&gone));
        }
        assert_eq!(CLOSED_COLUMNS[9], "Overall Remediation Plan");
        assert_eq!(OPEN_COLUMNS[26], "CVE");
    }
}
