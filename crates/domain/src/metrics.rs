//! The shape of POA&M metrics (computed by the store with database aggregates).

use serde::Serialize;
use std::collections::BTreeMap;
use utoipa::ToSchema;

#[derive(Debug, Clone, Default, Serialize, PartialEq, ToSchema)]
pub struct Overdue {
    pub total: i64,
    pub by_rating: BTreeMap<String, i64>,
}

/// Unresolved items by how many days they are past their scheduled completion.
#[derive(Debug, Clone, Default, Serialize, PartialEq, ToSchema)]
pub struct Aging {
    #[serde(rename = "1_30")]
    pub d1_30: i64,
    #[serde(rename = "31_90")]
    pub d31_90: i64,
    #[serde(rename = "91_120")]
    pub d91_120: i64,
    pub over_120: i64,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq, ToSchema)]
pub struct Metrics {
    /// Items counted (unarchived ones, unless `include_archived=true`).
    pub total: i64,
    /// Archived items still unresolved (open, in progress, deferred) that these figures leave
    /// out; 0 with `include_archived=true`, which counts them in.
    pub archived_unresolved_excluded: i64,
    pub by_status: BTreeMap<String, i64>,
    pub by_rating: BTreeMap<String, i64>,
    pub overdue: Overdue,
    /// Unresolved items overdue for longer than the escalation grace
    /// (`POAM_ESCALATION_GRACE_DAYS`, default 14 days), by rating.
    pub escalated: Overdue,
    pub aging: Aging,
    /// Median days from detection to closure of closed items, by rating.
    pub median_days_to_close: BTreeMap<String, f64>,
    /// Mean days completed after the scheduled completion date (negative: early), over completed
    /// and closed items that had one.
    pub mean_slip_days: Option<f64>,
    /// Milestones whose due date was moved at least once, of all milestones.
    pub milestones_moved: i64,
    pub milestones_total: i64,
    /// Closed items by rating: the risk their closure removed.
    pub risk_reduced: BTreeMap<String, i64>,
    /// Median days from detection to closure of closed items, by control family (`AC`, `SC`,
    /// 800-171 `3.1`, …).
    pub median_days_to_close_by_family: BTreeMap<String, f64>,
    /// Estimated cost of the remediations planned, and what was spent.
    pub resources: Money,
    /// Deviations by kind, then by status.
    pub deviations: BTreeMap<String, BTreeMap<String, i64>>,
    /// Unresolved items whose vendor dependency was not checked in within the last 31 days
    /// (FedRAMP: at least monthly).
    pub vendor_check_ins_overdue: i64,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq, ToSchema)]
pub struct Money {
    pub planned: f64,
    pub spent: f64,
}
