//! The shape of POA&M metrics (computed by the store with database aggregates).

use crate::vdr::{self, Evaluation, NRating, Regime};
use chrono::{DateTime, NaiveDate, Utc};
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
    #[schema(required = true)]
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
    /// FedRAMP's 2026 rules (VDR/VER): the standing of the unresolved items of the systems
    /// that follow them (a `fedramp` system whose `fedramp_class` is set and `vdr_since`
    /// reached). `null` when no system counted follows them.
    #[schema(required = true)]
    pub vdr: Option<VdrMetrics>,
}

/// The unresolved (open, in progress, deferred) items of the systems under FedRAMP's 2026
/// rules, by their standing now, as each item's `vdr` shows it (computed with the system's
/// class and clock, as the reports are).
#[derive(Debug, Clone, Default, Serialize, PartialEq, ToSchema)]
pub struct VdrMetrics {
    /// Systems under the 2026 rules counted here.
    pub systems: i64,
    /// Their unresolved items.
    pub items: i64,
    /// Items that are a FedRAMP reportable incident under VER-TFR-IRI: internet-reachable,
    /// likely exploitable, N-rating above N3, not fully mitigated or remediated.
    pub reportable_incident_iri: i64,
    /// Items that are a FedRAMP reportable incident under VER-TFR-NRI: likely exploitable, not
    /// internet-reachable, N5, not fully mitigated or remediated.
    pub reportable_incident_nri: i64,
    /// Overdue items (FRD-ODV): past a VER-TFR-EVU, VDR-TFR-PVR or VDR-TFR-KEV timeframe the
    /// provider still intends to meet.
    pub overdue: i64,
    /// Accepted vulnerabilities (FRD-ACV): not meant to be fixed (an approver's decision), or
    /// not fully mitigated or remediated within 192 days of evaluation (VER-TFR-MAV).
    pub accepted: i64,
    /// Items by their current Potential Agency Impact N-rating (VER-EVA-EPA), `N1` to `N5`,
    /// every rating present.
    #[schema(example = json!({"N1": 0, "N2": 3, "N3": 1, "N4": 2, "N5": 0}))]
    pub by_n_rating: BTreeMap<String, i64>,
    /// Items without an N-rating yet (not evaluated).
    pub unrated: i64,
}

impl VdrMetrics {
    /// No items yet, every N-rating present at 0.
    pub fn new(systems: i64) -> VdrMetrics {
        VdrMetrics {
            systems,
            by_n_rating: NRating::ALL.iter().map(|r| (r.to_string(), 0)).collect(),
            ..VdrMetrics::default()
        }
    }

    /// Counts `n` unresolved items detected on `detected_on` with `evaluation`, of a system
    /// under `regime`, at `now`: their standing is [`vdr::status`]'s over the schedule
    /// [`vdr::schedule`] gives them.
    pub fn add(
        &mut self,
        regime: &Regime,
        evaluation: Option<&Evaluation>,
        detected_on: NaiveDate,
        now: DateTime<Utc>,
        n: i64,
    ) {
        let schedule = vdr::schedule(&vdr::FEDRAMP_2026, regime, evaluation, detected_on);
        let status = vdr::status(regime.class, &schedule, evaluation, now);
        self.items += n;
        match status.reportable_incident.as_deref() {
            Some("VER-TFR-IRI") => self.reportable_incident_iri += n,
            Some("VER-TFR-NRI") => self.reportable_incident_nri += n,
            _ => {}
        }
        if status.overdue {
            self.overdue += n;
        }
        if status.accepted {
            self.accepted += n;
        }
        match evaluation.and_then(|e| e.agency_impact) {
            Some(r) => *self.by_n_rating.entry(r.to_string()).or_default() += n,
            None => self.unrated += n,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, PartialEq, ToSchema)]
pub struct Money {
    pub planned: f64,
    pub spent: f64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vdr::{Clock, FedrampClass, Mitigation, Rationale};

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap_or_default()
    }

    fn evaluation(irv: bool, lev: bool, rating: NRating) -> Evaluation {
        serde_json::from_value(serde_json::json!({
            "detected_at": "2026-10-01T08:00:00Z", "detection_source": "scanner",
            "evaluated_at": "2026-10-02T08:00:00Z", "internet_reachable": irv,
            "likely_exploitable": lev, "agency_impact": rating
        }))
        .unwrap_or_else(|e| panic!("fixture: {e}"))
    }

    #[test]
    fn vdr_metrics_count_incidents_overdue_accepted_and_ratings() {
        let regime = Regime {
            class: FedrampClass::C,
            since: NaiveDate::from_ymd_opt(2026, 7, 4).unwrap_or_default(),
            clock: Clock::FromReduction,
        };
        let day = NaiveDate::from_ymd_opt(2026, 10, 1).unwrap_or_default();
        // Three days after the evaluation: class C N4 IRV+LEV (4 days) is not yet due.
        let now = t("2026-10-05T00:00:00Z");
        let mut m = VdrMetrics::new(1);
        assert_eq!(m.by_n_rating.len(), 5);
        // IRI, twice (counted with n).
        m.add(
            &regime,
            Some(&evaluation(true, true, NRating::N4)),
            day,
            now,
            2,
        );
        // NRI.
        m.add(
            &regime,
            Some(&evaluation(false, true, NRating::N5)),
            day,
            now,
            1,
        );
        // N5 IRV+LEV, class C: 2 days from evaluation: overdue, and IRI.
        m.add(
            &regime,
            Some(&evaluation(true, true, NRating::N5)),
            day,
            now,
            1,
        );
        // Accepted by an approver's decision.
        let mut accepted = evaluation(false, false, NRating::N2);
        accepted.accepted = Some(Rationale {
            rationale: "end of life".into(),
            ..Rationale::default()
        });
        m.add(&regime, Some(&accepted), day, now, 1);
        // Fully mitigated N5: no incident, still rated.
        let mut fixed = evaluation(true, true, NRating::N5);
        fixed.mitigation = Mitigation::Full;
        fixed.mitigated_at = Some(t("2026-10-03T00:00:00Z"));
        m.add(&regime, Some(&fixed), day, now, 1);
        // Never evaluated, detected 10 days before: overdue (VER-TFR-EVU, 5 days), unrated.
        m.add(
            &regime,
            None,
            NaiveDate::from_ymd_opt(2026, 9, 25).unwrap_or_default(),
            now,
            3,
        );
        assert_eq!(
            m,
            VdrMetrics {
                systems: 1,
                items: 9,
                reportable_incident_iri: 3,
                reportable_incident_nri: 1,
                overdue: 4,
                accepted: 1,
                by_n_rating: [("N1", 0), ("N2", 1), ("N3", 0), ("N4", 2), ("N5", 3)]
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), v))
                    .collect(),
                unrated: 3,
            }
        );
    }
}
