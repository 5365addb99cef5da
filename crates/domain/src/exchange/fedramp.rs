//! The FedRAMP POA&M template (Rev. 5): columns A–AE in the template's order, open and closed
//! items on separate sheets, dates as the template writes them (MM/DD/YYYY).

use super::sheet::Cell;
use super::ItemRecord;
use crate::workflow::MilestoneStatus;
use crate::{DeviationKind, DeviationStatus, ItemStatus, RiskRating};
use chrono::NaiveDate;

/// The template's header row, columns A to AE.
pub const COLUMNS: [&str; 31] = [
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
    "BOD 22-01 tracking",
    "BOD 22-01 Due Date",
    "CVE",
    "Service Name",
];

/// The template's two item sheets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sheet {
    /// Every unarchived item not closed (risk-accepted items stay here, as FedRAMP keeps them).
    Open,
    /// Closed items.
    Closed,
}

impl Sheet {
    pub fn holds(self, status: ItemStatus) -> bool {
        (status == ItemStatus::Closed) == (self == Sheet::Closed)
    }

    /// The sheet's name in the template.
    pub fn title(self) -> &'static str {
        match self {
            Sheet::Open => "Open POA&M Items",
            Sheet::Closed => "Closed POA&M Items",
        }
    }
}

/// A date as the template writes it.
pub fn date(d: NaiveDate) -> String {
    d.format("%m/%d/%Y").to_string()
}

fn opt_date(d: Option<NaiveDate>) -> String {
    d.map(date).unwrap_or_default()
}

/// A risk rating as the template writes it.
pub fn rating(r: RiskRating) -> &'static str {
    match r {
        RiskRating::Critical => "Critical",
        RiskRating::High => "High",
        RiskRating::Moderate => "Moderate",
        RiskRating::Low => "Low",
    }
}

fn money(x: f64) -> String {
    if x.fract() == 0.0 {
        format!("${x:.0}")
    } else {
        format!("${x:.2}")
    }
}

/// The item's point of contact as the template writes it: `Name <e-mail>`.
pub fn contact(rec: &ItemRecord) -> String {
    rec.item
        .owner
        .as_ref()
        .map(|p| match &p.email {
            Some(e) => format!("{} <{e}>", p.name),
            None => p.name.clone(),
        })
        .unwrap_or_default()
}

/// Resources required, in one line.
pub fn resources(rec: &ItemRecord) -> String {
    rec.item
        .resources
        .as_ref()
        .map(|r| {
            let mut parts = Vec::new();
            if let Some(d) = &r.description {
                parts.push(d.clone());
            }
            if let Some(c) = r.estimated_cost {
                let kind = if r.recurring == Some(true) {
                    "recurring"
                } else {
                    "one-time"
                };
                parts.push(format!("estimated cost {} ({kind})", money(c)));
            }
            if let Some(h) = r.hours {
                parts.push(format!("{h} hours"));
            }
            match r.funded {
                Some(true) => parts.push("funded".into()),
                Some(false) => parts.push("not funded".into()),
                None => {}
            }
            parts.join("; ")
        })
        .unwrap_or_default()
}

/// Planned milestones, one a line: `(n) MM/DD/YYYY: title`, each with its first due date.
pub fn planned_milestones(rec: &ItemRecord) -> String {
    rec.milestones
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let original = m.changes.first().map_or(m.due_on, |c| c.from);
            format!("({}) {}: {}", i + 1, date(original), m.title)
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Milestone changes, one a line: every move (with its reason, who and when), every
/// completion and cancellation.
pub fn milestone_changes(rec: &ItemRecord) -> String {
    let mut changes = Vec::new();
    for (i, m) in rec.milestones.iter().enumerate() {
        for c in &m.changes {
            changes.push(format!(
                "({}) {} moved from {} to {}: {} ({}, {})",
                i + 1,
                m.title,
                date(c.from),
                date(c.to),
                c.reason,
                c.by,
                date(c.at.date_naive())
            ));
        }
        match m.status {
            MilestoneStatus::Completed => changes.push(format!(
                "({}) {} completed {}",
                i + 1,
                m.title,
                opt_date(m.completed_on)
            )),
            MilestoneStatus::Cancelled => {
                changes.push(format!("({}) {} cancelled", i + 1, m.title))
            }
            _ => {}
        }
    }
    changes.join("\n")
}

/// The date of the item's last status change (its creation when it never changed).
pub fn status_date(rec: &ItemRecord) -> NaiveDate {
    rec.transitions
        .last()
        .map_or(rec.item.created_at, |t| t.at)
        .date_naive()
}

/// One row of the template, columns A to AE, typed: dates are [`Cell::Date`].
pub fn cells(rec: &ItemRecord) -> [Cell; 31] {
    let it = &rec.item;
    let deviation = |kind: DeviationKind| match &it.deviation {
        Some(d) if d.kind == kind => match d.status {
            DeviationStatus::Approved => "Yes",
            DeviationStatus::Pending => "Pending",
            DeviationStatus::Rejected => "No",
        },
        _ => "No",
    };
    let documents = rec
        .evidence
        .iter()
        .filter(|e| e.withdrawn_at.is_none())
        .map(|e| format!("{} ({}, sha256 {})", e.title, e.filename, e.sha256))
        .collect::<Vec<_>>()
        .join("\n");
    let vendor = it.vendor_dependency.as_ref();
    [
        Cell::text(it.display_id.clone()),
        Cell::text(it.controls.join(", ")),
        Cell::text(it.title.clone()),
        Cell::text(it.description.clone()),
        Cell::text(
            it.source
                .detector
                .clone()
                .unwrap_or_else(|| it.source.kind.as_str().replace('_', " ")),
        ),
        Cell::text(it.source.identifier.clone().unwrap_or_default()),
        Cell::text(it.assets.join(", ")),
        Cell::text(contact(rec)),
        Cell::text(resources(rec)),
        Cell::text(it.remediation_plan.clone().unwrap_or_default()),
        Cell::Date(it.detected_on),
        Cell::date(it.scheduled_completion),
        Cell::text(planned_milestones(rec)),
        Cell::text(milestone_changes(rec)),
        Cell::Date(status_date(rec)),
        Cell::text(if vendor.is_some() { "Yes" } else { "No" }),
        Cell::date(vendor.and_then(|v| v.last_check_in)),
        Cell::text(vendor.map(|v| v.product.clone()).unwrap_or_default()),
        Cell::text(rating(it.risk_rating)),
        Cell::text(it.adjusted_risk_rating.map(rating).unwrap_or_default()),
        Cell::text(deviation(DeviationKind::RiskAdjustment)),
        Cell::text(deviation(DeviationKind::FalsePositive)),
        Cell::text(deviation(DeviationKind::OperationalRequirement)),
        Cell::text(
            it.deviation
                .as_ref()
                .map(|d| d.rationale.clone())
                .unwrap_or_default(),
        ),
        Cell::text(documents),
        Cell::text(it.comments.clone().unwrap_or_default()),
        Cell::text("No"),
        // BOD 22-01 (now 26-04): tracked when a CVE of the item is in the loaded KEV catalog,
        // due on CISA's date.
        match &it.kev {
            Some(_) => Cell::text("Yes"),
            None if it.cves.is_empty() => Cell::Empty,
            None => Cell::text("No"),
        },
        match &it.kev {
            Some(k) => Cell::Date(k.due_date),
            None => Cell::Empty,
        },
        Cell::text(it.cves.join(", ")),
        Cell::Empty,
    ]
}

/// One row of the template, columns A to AE, as text (dates MM/DD/YYYY).
pub fn row(rec: &ItemRecord) -> [String; 31] {
    cells(rec).map(|c| c.to_field())
}

/// One CSV record (RFC 4180): fields quoted when they hold a comma, quote or line break; CRLF.
pub fn csv_record(fields: &[String]) -> String {
    let mut out = String::new();
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        // A leading =, +, - or @ would be a formula to a spreadsheet, and so would a tab or a
        // carriage return before one (OWASP's list): neutralised with a quote.
        let guarded = if super::sheet::looks_like_formula(f) {
            format!("'{f}")
        } else {
            f.clone()
        };
        if guarded.contains([',', '"', '\n', '\r']) {
            out.push('"');
            out.push_str(&guarded.replace('"', "\"\""));
            out.push('"');
        } else {
            out.push_str(&guarded);
        }
    }
    out.push_str("\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_runs_from_a_to_ae() {
        assert_eq!(COLUMNS.len(), 31);
        assert_eq!(COLUMNS[0], "POAM ID");
        assert_eq!(COLUMNS[30], "Service Name");
    }

    #[test]
    fn csv_quotes_what_needs_it_and_defuses_formulas() {
        let rec = csv_record(&["a".into(), "b,c".into(), "say \"hi\"".into(), "=1+1".into()]);
        assert_eq!(rec, "a,\"b,c\",\"say \"\"hi\"\"\",'=1+1\r\n");
        let rec = csv_record(&["\t=1+1".into(), "\r=2".into()]);
        assert_eq!(rec, "'\t=1+1,\"'\r=2\"\r\n");
    }

    #[test]
    fn sheets_split_closed_from_the_rest() {
        assert!(Sheet::Closed.holds(ItemStatus::Closed));
        assert!(Sheet::Open.holds(ItemStatus::RiskAccepted));
        assert!(!Sheet::Open.holds(ItemStatus::Closed));
    }
}
