//! The DCSA/NISP POA&M template (the "Sample POAM Template" of seed 002): a header block
//! (Company Name, CAGE Code, DSS UID, ISSM / A-ISSM names and phone numbers) and the item table
//! in the seed's column order, then the NISP details DCSA's CA-5 guidance asks for (task status
//! completed/ongoing/delayed/planned, percentage completed), the rule behind each milestone
//! date and what the C/W/S code means on this system. The header also carries the date of the
//! last periodic POA&M review: a review without changes still counts (CCI-000266: "adding
//! review date to the POA&M header information").
//!
//! The template's exact cell positions were never published; this layout is the seed's order:
//! header fields in column A with their values in B (rows 1–6), a blank row, the column headers
//! in row 8 and the items from row 9. Positions are 0-based here.

use super::fedramp;
use super::sheet::Cell;
use super::ItemRecord;
use crate::workflow::{Determination, MilestoneStatus, Review, ReviewKind};
use crate::{ItemStatus, RiskRating, System};
use chrono::NaiveDate;
use std::collections::BTreeMap;

/// The sheet's name.
pub const SHEET: &str = "POA&M";

/// The header block's labels, column A of rows 1 to 6.
pub const HEADER_FIELDS: [&str; 6] = [
    "Company Name",
    "CAGE Code",
    "DSS UID",
    "ISSM / A-ISSM Names",
    "ISSM Phone Numbers",
    "Last Quarterly Review",
];

/// The item table's columns: the seed's nine in its order, then the NISP details.
pub const COLUMNS: [&str; 13] = [
    "Item Number",
    "Non-Compliance Description",
    "C/W/S",
    "Mitigation Plans & Adjustments",
    "Milestone Date (Based Upon Risk Level)",
    "ISSM/FSO Approval",
    "Status (Open/Closed)",
    "DSS Approval Date and Determination (Open/Closed)",
    "Risk Level (Low/Medium/High)",
    "Task Status (Completed/Ongoing/Delayed/Planned)",
    "Percent Complete",
    "Milestone Date Rule",
    "C/W/S Meaning",
];

/// How many of [`COLUMNS`] are the seed's own.
pub const SEED_COLUMNS: usize = 9;

/// The column-header row (Excel row 8).
pub const HEADER_ROW: u32 = 7;
/// The first item row (Excel row 9).
pub const FIRST_ROW: u32 = 8;

/// The allowed values of the Status column (a list validation in the workbook).
pub const STATUSES: [&str; 2] = ["Open", "Closed"];
/// The allowed values of the Risk Level column.
pub const RISK_LEVELS: [&str; 3] = ["Low", "Medium", "High"];
/// The task status vocabulary of DCSA's CA-5 guidance.
pub const TASK_STATUSES: [&str; 4] = ["Completed", "Ongoing", "Delayed", "Planned"];

/// The status column's index, the risk level's and the task status's.
pub const STATUS_COLUMN: u16 = 6;
pub const RISK_COLUMN: u16 = 8;
pub const TASK_COLUMN: u16 = 9;

/// The latest review of `kind` that no later review supersedes.
pub fn latest(reviews: &[Review], kind: ReviewKind) -> Option<&Review> {
    let superseded: Vec<_> = reviews.iter().filter_map(|r| r.supersedes).collect();
    reviews
        .iter()
        .filter(|r| r.kind == kind && !superseded.contains(&r.id))
        .max_by_key(|r| r.reviewed_at)
}

/// The date of the last periodic review of the POA&M (system reviews).
pub fn last_periodic_review(system_reviews: &[Review]) -> Option<NaiveDate> {
    latest(system_reviews, ReviewKind::Periodic).map(|r| r.reviewed_at.date_naive())
}

/// The header block: each label with its value.
pub fn header(system: &System, last_review: Option<NaiveDate>) -> Vec<(&'static str, Cell)> {
    let c = &system.contacts;
    let both = |a: Option<String>, b: Option<String>| match (a, b) {
        (Some(a), Some(b)) => format!("{a} / {b}"),
        (Some(a), None) => a,
        (None, Some(b)) => format!("/ {b}"),
        (None, None) => String::new(),
    };
    let names = both(
        c.issm.as_ref().map(|p| p.name.clone()),
        c.alternate_issm.as_ref().map(|p| p.name.clone()),
    );
    let phones = both(
        c.issm.as_ref().and_then(|p| p.phone.clone()),
        c.alternate_issm.as_ref().and_then(|p| p.phone.clone()),
    );
    let values = [
        Cell::text(system.organization.clone().unwrap_or_default()),
        Cell::text(system.cage_codes.join(", ")),
        Cell::text(system.dss_uid.clone().unwrap_or_default()),
        Cell::text(names),
        Cell::text(phones),
        Cell::date(last_review),
    ];
    HEADER_FIELDS.into_iter().zip(values).collect()
}

/// NISP's Low / Medium / High for a rating (the adjusted one when there is one).
pub fn risk_level(r: RiskRating) -> &'static str {
    match r {
        RiskRating::Critical | RiskRating::High => "High",
        RiskRating::Moderate => "Medium",
        RiskRating::Low => "Low",
    }
}

/// A milestone's task status in DCSA's vocabulary (`None`: cancelled).
fn milestone_task(m: &crate::workflow::Milestone) -> Option<&'static str> {
    match m.status {
        MilestoneStatus::Completed => Some("Completed"),
        MilestoneStatus::Cancelled => None,
        _ if m.delayed => Some("Delayed"),
        MilestoneStatus::InProgress => Some("Ongoing"),
        MilestoneStatus::Planned => Some("Planned"),
    }
}

/// The item's task status: completed once resolved; delayed when a milestone is delayed or
/// the item is overdue; ongoing when work has started; planned otherwise.
pub fn task_status(rec: &ItemRecord) -> &'static str {
    let it = &rec.item;
    if matches!(
        it.status,
        ItemStatus::Completed | ItemStatus::Closed | ItemStatus::RiskAccepted
    ) {
        return "Completed";
    }
    let tasks: Vec<&str> = rec.milestones.iter().filter_map(milestone_task).collect();
    if it.overdue || tasks.contains(&"Delayed") {
        "Delayed"
    } else if it.status == ItemStatus::InProgress
        || tasks.contains(&"Ongoing")
        || tasks.contains(&"Completed")
    {
        "Ongoing"
    } else {
        "Planned"
    }
}

/// Percentage completed: the mean of the milestones' (cancelled ones left out); 100 once the
/// item is resolved, 0 without milestones.
pub fn percent_complete(rec: &ItemRecord) -> f64 {
    if matches!(rec.item.status, ItemStatus::Completed | ItemStatus::Closed) {
        return 100.0;
    }
    let live: Vec<i32> = rec
        .milestones
        .iter()
        .filter(|m| m.status != MilestoneStatus::Cancelled)
        .map(|m| m.percent_complete)
        .collect();
    if live.is_empty() {
        return 0.0;
    }
    (f64::from(live.iter().sum::<i32>()) / live.len() as f64).round()
}

/// The plan and every milestone with its due date, task status and percentage, then the
/// adjustments (moves, completions, cancellations).
pub fn mitigation(rec: &ItemRecord) -> String {
    let mut parts = Vec::new();
    if let Some(p) = &rec.item.remediation_plan {
        parts.push(p.clone());
    }
    let milestones: Vec<String> = rec
        .milestones
        .iter()
        .enumerate()
        .map(|(i, m)| {
            format!(
                "({}) {}: {} [{}, {}%]",
                i + 1,
                fedramp::date(m.due_on),
                m.title,
                milestone_task(m).unwrap_or("Cancelled"),
                m.percent_complete
            )
        })
        .collect();
    if !milestones.is_empty() {
        parts.push(format!("Milestones:\n{}", milestones.join("\n")));
    }
    let changes = fedramp::milestone_changes(rec);
    if !changes.is_empty() {
        parts.push(format!("Adjustments:\n{changes}"));
    }
    parts.join("\n\n")
}

fn who(r: &Review) -> String {
    r.reviewer_name
        .clone()
        .unwrap_or_else(|| r.reviewer.clone())
}

/// "ISSM/FSO Approval": the item's approval review, who and when.
pub fn approval(rec: &ItemRecord) -> String {
    latest(&rec.reviews, ReviewKind::Approval)
        .map(|r| {
            let word = match r.decision {
                crate::workflow::Decision::Approved => "Approved",
                crate::workflow::Decision::Rejected => "Rejected",
                crate::workflow::Decision::ChangesRequested => "Changes requested",
                crate::workflow::Decision::Noted => "Noted",
            };
            format!(
                "{word} by {} on {}",
                who(r),
                fedramp::date(r.reviewed_at.date_naive())
            )
        })
        .unwrap_or_default()
}

/// "DSS Approval Date and Determination": the latest `dss_determination` review.
pub fn dss_determination(rec: &ItemRecord) -> String {
    latest(&rec.reviews, ReviewKind::DssDetermination)
        .map(|r| {
            let on = r.determined_on.unwrap_or(r.reviewed_at.date_naive());
            let what = match r.determination {
                Some(Determination::Closed) => "Closed",
                Some(Determination::Open) | None => "Open",
            };
            format!("{} {what}", fedramp::date(on))
        })
        .unwrap_or_default()
}

/// One item row, in [`COLUMNS`] order. `labels`: the system's C/W/S label map.
pub fn cells(rec: &ItemRecord, labels: Option<&BTreeMap<String, String>>) -> Vec<Cell> {
    let it = &rec.item;
    let code = it.cws_code.clone().unwrap_or_default();
    let meaning = labels
        .and_then(|m| m.get(&code).or_else(|| m.get(&code.trim().to_uppercase())))
        .cloned()
        .unwrap_or_default();
    vec![
        Cell::text(it.display_id.clone()),
        Cell::text(format!("{}\n{}", it.title, it.description)),
        Cell::text(code),
        Cell::text(mitigation(rec)),
        Cell::date(it.scheduled_completion),
        Cell::text(approval(rec)),
        Cell::text(if it.status == ItemStatus::Closed {
            "Closed"
        } else {
            "Open"
        }),
        Cell::text(dss_determination(rec)),
        Cell::text(risk_level(
            it.adjusted_risk_rating.unwrap_or(it.risk_rating),
        )),
        Cell::text(task_status(rec)),
        Cell::Number(percent_complete(rec)),
        Cell::text(it.deadline_rule.clone().unwrap_or_default()),
        Cell::text(meaning),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seed_columns_come_first_in_the_seed_order() {
        assert_eq!(
            &COLUMNS[..SEED_COLUMNS],
            [
                "Item Number",
                "Non-Compliance Description",
                "C/W/S",
                "Mitigation Plans & Adjustments",
                "Milestone Date (Based Upon Risk Level)",
                "ISSM/FSO Approval",
                "Status (Open/Closed)",
                "DSS Approval Date and Determination (Open/Closed)",
                "Risk Level (Low/Medium/High)",
            ]
        );
        assert_eq!(COLUMNS[STATUS_COLUMN as usize], "Status (Open/Closed)");
        assert_eq!(
            COLUMNS[RISK_COLUMN as usize],
            "Risk Level (Low/Medium/High)"
        );
        assert!(COLUMNS[TASK_COLUMN as usize].starts_with("Task Status"));
    }

    #[test]
    fn nisp_risk_levels_are_low_medium_high() {
        assert_eq!(risk_level(RiskRating::Critical), "High");
        assert_eq!(risk_level(RiskRating::Moderate), "Medium");
        assert_eq!(risk_level(RiskRating::Low), "Low");
    }
}
