//! FedRAMP's Consolidated Rules 2026: Vulnerability Detection and Response (VDR) and
//! Vulnerability Evaluation and Reporting (VER). Sources, tables and the interpretations made
//! here: `../shared/reference/fedramp-vdr.md` (FedRAMP/rules `fedramp-consolidated-rules.json`,
//! version 2026.07.14.01).
//!
//! - A system under FedRAMP records its certification class (A–D) and since when it follows
//!   these rules ([`Regime`]); until then its items keep the legacy 30/30/90/180 deadlines.
//! - An item carries its [`Evaluation`]: detection, evaluation (IRV, LEV, N-rating), mitigation
//!   state, the recorded N-rating reductions and the projected next one.
//! - The timeframes are data ([`FEDRAMP_2026`]); [`schedule`] turns an evaluation into
//!   deadlines (timestamps, since a class-D cell is 12 hours), each naming its rule and cell;
//!   [`status`] computes, at a moment, overdue (FRD-ODV) and accepted (FRD-ACV) with their
//!   explanations and the VER-TFR-IRI/NRI reportable-incident flags. Nothing here is typed in.

use crate::limits::{CONTACT, NARRATIVE};
use crate::rules::Violation;
use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use utoipa::ToSchema;
use validator::Validate;

/// The prefix of every deadline rule these rules set (`deadline_rule`).
pub const RULE_PREFIX: &str = "fedramp-vdr";

/// FedRAMP certification class (FRD-CCL): A (minimal assurance) to D (significant).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
pub enum FedrampClass {
    A,
    B,
    C,
    D,
}

impl FedrampClass {
    pub const ALL: [FedrampClass; 4] = [Self::A, Self::B, Self::C, Self::D];

    fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for FedrampClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self:?}")
    }
}

/// Potential Agency Impact N-rating (PAIN, VER-EVA-EPA): N1 minimal … N5 debilitating effect
/// on more than one agency.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
pub enum NRating {
    N1,
    N2,
    N3,
    N4,
    N5,
}

impl NRating {
    pub const ALL: [NRating; 5] = [Self::N1, Self::N2, Self::N3, Self::N4, Self::N5];

    /// 1–5, as FedRAMP's schemas carry it (`$defs/nRating`).
    pub fn value(self) -> u8 {
        self as u8 + 1
    }
}

impl fmt::Display for NRating {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self:?}")
    }
}

crate::vocab::vocabulary_pub!(
    /// Mitigation state (FRD-PMV, FRD-FMV, FRD-RMV): `full` still exists with negligible risk
    /// until `remediated` (no longer detected).
    #[derive(Default)]
    Mitigation, "mitigation state" {
        #[default]
        NotMitigated => "none",
        Partial => "partial",
        Full => "full",
        Remediated => "remediated",
    }
);

crate::vocab::vocabulary_pub!(
    /// Where the VDR-TFR-PVR clock of the current N-rating starts. FedRAMP does not say
    /// (fedramp-vdr.md §2.5 step 4, [unconfirmed]): `from_reduction` (the default) restarts it
    /// at the last recorded reduction, reading "factoring for the **current** N-rating" as the
    /// timeframe of the rating now held, counted from when it was established;
    /// `from_evaluation` keeps counting from the evaluation (the stricter reading).
    Clock, "clock" {
        FromReduction => "from_reduction",
        FromEvaluation => "from_evaluation",
    }
);

/// The clock a system without a setting uses.
pub const DEFAULT_CLOCK: Clock = Clock::FromReduction;

crate::vocab::vocabulary_pub!(
    /// VDR-TFR-PVR's column: internet-reachable and likely exploitable, likely exploitable but
    /// not internet-reachable, or not likely exploitable (reachability then irrelevant).
    Bucket, "exploitability bucket" {
        IrvLev => "irv_lev",
        NirvLev => "nirv_lev",
        Nlev => "nlev",
    }
);

impl Bucket {
    pub fn of(internet_reachable: bool, likely_exploitable: bool) -> Bucket {
        match (internet_reachable, likely_exploitable) {
            (true, true) => Bucket::IrvLev,
            (false, true) => Bucket::NirvLev,
            (_, false) => Bucket::Nlev,
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// A timeframe of FedRAMP's tables (`timeframe_type` days or hours).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timeframe {
    Days(u32),
    Hours(u32),
}

impl Timeframe {
    pub fn duration(self) -> Duration {
        match self {
            Timeframe::Days(d) => Duration::days(i64::from(d)),
            Timeframe::Hours(h) => Duration::hours(i64::from(h)),
        }
    }
}

impl fmt::Display for Timeframe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Timeframe::Days(d) => write!(f, "{d}d"),
            Timeframe::Hours(h) => write!(f, "{h}h"),
        }
    }
}

const fn d(n: u32) -> Option<Timeframe> {
    Some(Timeframe::Days(n))
}

/// FedRAMP's VDR/VER timeframe tables: data, as the legacy deadline policies are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tables {
    /// VER-TFR-EVU: evaluate within, from detection, by class A–D.
    pub evaluation: [Timeframe; 4],
    /// VDR-TFR-PVR: reduce the N-rating within, from evaluation, by class A–D × N1–N5 ×
    /// [`Bucket`] (irv_lev, nirv_lev, nlev). N1 has none (VDR-TFR-RMN: routine operations).
    pub reduction: [[[Option<Timeframe>; 3]; 5]; 4],
    /// VER-TFR-MAV: not fully mitigated or remediated within this many days of evaluation,
    /// the vulnerability is accepted.
    pub acceptance_days: u32,
}

const NONE3: [Option<Timeframe>; 3] = [None, None, None];
const AB: [[Option<Timeframe>; 3]; 5] = [
    NONE3,
    [d(96), d(160), d(192)],
    [d(32), d(64), d(192)],
    [d(8), d(32), d(64)],
    [d(4), d(8), d(32)],
];

/// The tables of FedRAMP/rules 2026.07.14.01 (`FRR.VDR.data.all.TFR["VDR-TFR-PVR"]`,
/// `FRR.VER.data.all.TFR["VER-TFR-EVU"]`, `["VER-TFR-MAV"]`). Class A's cells are
/// recommended (FRC-CLA-RFR); the class-D N5 IRV+LEV cell is 12 hours.
pub const FEDRAMP_2026: Tables = Tables {
    evaluation: [
        Timeframe::Days(14),
        Timeframe::Days(7),
        Timeframe::Days(5),
        Timeframe::Days(2),
    ],
    reduction: [
        AB,
        AB,
        [
            NONE3,
            [d(48), d(128), d(192)],
            [d(16), d(32), d(128)],
            [d(4), d(8), d(64)],
            [d(2), d(4), d(16)],
        ],
        [
            NONE3,
            [d(24), d(96), d(192)],
            [d(8), d(16), d(64)],
            [d(2), d(8), d(32)],
            [Some(Timeframe::Hours(12)), d(1), d(8)],
        ],
    ],
    acceptance_days: 192,
};

impl Tables {
    pub fn evaluation(&self, class: FedrampClass) -> Timeframe {
        self.evaluation[class.index()]
    }

    pub fn reduction(
        &self,
        class: FedrampClass,
        rating: NRating,
        bucket: Bucket,
    ) -> Option<Timeframe> {
        self.reduction[class.index()][rating as usize][bucket.index()]
    }
}

/// A system's VDR/VER regime: its class, the date it follows the 2026 rules from, its clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Regime {
    pub class: FedrampClass,
    pub since: NaiveDate,
    pub clock: Clock,
}

impl Regime {
    /// The 2026 rules govern the system's deadlines on `today` (before `since`, the legacy
    /// regime does).
    pub fn applies(&self, today: NaiveDate) -> bool {
        self.since <= today
    }
}

/// A completed and evaluated reduction of the N-rating (VER-RPT-VDT item 7).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Reduction {
    /// When the reduction was completed and evaluated (RFC 3339).
    #[schema(example = "2026-11-03T15:00:00Z")]
    pub at: DateTime<Utc>,
    /// The rating before: the previous step's `to`, or the evaluated rating.
    pub from: NRating,
    /// The rating after, lower than `from`.
    pub to: NRating,
    /// What was done.
    #[validate(length(min = 1, max = "NARRATIVE"))]
    #[schema(
        min_length = 1,
        max_length = 2000,
        example = "WAF rule blocks the exploit payload"
    )]
    pub action: String,
}

/// The next planned reduction (VER-RPT-VDT item 8), planned like a milestone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProjectedReduction {
    #[schema(example = "2026-11-20T00:00:00Z")]
    pub at: DateTime<Utc>,
    pub target: NRating,
}

/// A free-text explanation (a false-positive evaluation, an acceptance). For an acceptance
/// (FRD-ACV) the server records who decided it and when, and the `vulnerability_acceptance`
/// review it came from (whatever a request sends for these three, see
/// [`crate::change::settle_evaluation`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rationale {
    /// Why.
    #[validate(length(min = 1, max = "NARRATIVE"))]
    #[schema(min_length = 1, max_length = 2000)]
    pub rationale: String,
    /// An acceptance: the approver who decided it (token subject); set by the server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[validate(length(min = 1, max = "CONTACT"))]
    #[schema(max_length = 100, example = "issm@example.org")]
    pub decided_by: Option<String>,
    /// An acceptance: when it was decided (a `PATCH`'s or a review's time); set by the server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_at: Option<DateTime<Utc>>,
    /// An acceptance recorded through a `vulnerability_acceptance` review: that review (a
    /// rejecting review withdraws only such an acceptance); set by the server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review_id: Option<crate::ids::ReviewId>,
}

impl Rationale {
    /// Who decided and when, as a report says it (empty when neither is known).
    pub fn decision(&self) -> String {
        match (&self.decided_by, self.decided_at) {
            (Some(by), Some(at)) => format!(" (decided by {by} at {})", at.to_rfc3339()),
            (Some(by), None) => format!(" (decided by {by})"),
            (None, Some(at)) => format!(" (decided at {})", at.to_rfc3339()),
            (None, None) => String::new(),
        }
    }
}

/// An item's VDR/VER evaluation (VER-EVA): detection, evaluation, mitigation, reductions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Evaluation {
    /// When it was detected (a timestamp: a class-D cell is 12 hours).
    #[schema(example = "2026-11-01T09:30:00Z")]
    pub detected_at: DateTime<Utc>,
    /// The tool or activity that detected it (scanner, penetration test, bug bounty, …).
    #[validate(length(min = 1, max = "CONTACT"))]
    #[schema(min_length = 1, max_length = 100, example = "Tenable Nessus")]
    pub detection_source: String,
    /// When the evaluation was completed; the VDR-TFR-PVR and VER-TFR-MAV clocks run from it.
    #[serde(default)]
    pub evaluated_at: Option<DateTime<Utc>>,
    /// IRV (VER-EVA-EIR).
    #[serde(default)]
    pub internet_reachable: Option<bool>,
    /// LEV (VER-EVA-ELX; assume automatable, VER-EVA-AIA).
    #[serde(default)]
    pub likely_exploitable: Option<bool>,
    /// The current Potential Agency Impact N-rating (VER-EVA-EPA).
    #[serde(default)]
    pub agency_impact: Option<NRating>,
    #[serde(default)]
    pub mitigation: Mitigation,
    /// When it became fully mitigated or remediated (required with `full`, `remediated`).
    #[serde(default)]
    pub mitigated_at: Option<DateTime<Utc>>,
    /// A false positive (VER-EVA-EFP), with its evaluation. Not with `full` or `remediated`
    /// (FRD-FPV).
    #[serde(default)]
    #[validate(nested)]
    pub false_positive: Option<Rationale>,
    /// Each completed reduction of the N-rating, oldest first; append-only.
    #[serde(default)]
    #[validate(nested, length(max = 100))]
    #[schema(max_items = 100)]
    pub reductions: Vec<Reduction>,
    /// The projected next reduction: a target below the current rating.
    #[serde(default)]
    #[validate(nested)]
    pub next_reduction: Option<ProjectedReduction>,
    /// The CISA KEV catalog's due date when the vulnerability is a KEV (VDR-TFR-KEV):
    /// remediation is due by then even when fully mitigated.
    #[serde(default)]
    pub kev_due_on: Option<NaiveDate>,
    /// The provider does not intend to fully mitigate or remediate it (FRD-ACV): an
    /// approver's decision, with the explanation the accepted-vulnerability report carries.
    #[serde(default)]
    #[validate(nested)]
    pub accepted: Option<Rationale>,
    /// The description the reports carry (VER-RPT-NID: written for the purpose); without it
    /// the reports withhold the description unless `disclose_description`.
    #[serde(default)]
    #[validate(length(min = 1, max = "NARRATIVE"))]
    #[schema(min_length = 1, max_length = 2000)]
    pub report_description: Option<String>,
    /// Supplementary information for agencies (VER-RPT-VDT item 10), written for the reports.
    #[serde(default)]
    #[validate(length(min = 1, max = "NARRATIVE"))]
    #[schema(min_length = 1, max_length = 2000)]
    pub supplementary_information: Option<String>,
    /// Copy the item's internal description into the reports when no `report_description`.
    #[serde(default)]
    pub disclose_description: bool,
}

impl Evaluation {
    /// Evaluated: a completion time and the three answers.
    pub fn is_evaluated(&self) -> bool {
        self.evaluated_at.is_some()
    }

    /// Fully mitigated or remediated, or found a false positive: no reduction is due.
    pub fn is_resolved(&self) -> bool {
        self.false_positive.is_some()
            || matches!(self.mitigation, Mitigation::Full | Mitigation::Remediated)
    }

    /// The ratings it has held: the evaluated one, then each reduction's (VER-RPT-VDT item 6).
    pub fn rating_history(&self) -> Vec<NRating> {
        let mut out: Vec<NRating> = self
            .reductions
            .first()
            .map(|r| r.from)
            .into_iter()
            .collect();
        out.extend(self.reductions.iter().map(|r| r.to));
        if out.is_empty() {
            out.extend(self.agency_impact);
        }
        out
    }

    /// The start of the current rating's reduction clock under `clock`.
    pub fn clock_start(&self, clock: Clock) -> Option<DateTime<Utc>> {
        let evaluated = self.evaluated_at?;
        Some(match clock {
            Clock::FromEvaluation => evaluated,
            Clock::FromReduction => self
                .reductions
                .last()
                .map_or(evaluated, |r| r.at.max(evaluated)),
        })
    }
}

/// A deadline and the rule (and cell) that set it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Deadline {
    /// `fedramp-vdr:<rule id>:<cell>`, e.g. `fedramp-vdr:VDR-TFR-PVR:D:N5:irv_lev:12h`.
    #[schema(example = "fedramp-vdr:VDR-TFR-PVR:C:N4:nirv_lev:8d")]
    pub rule: String,
    /// Due by this instant.
    pub due_at: DateTime<Utc>,
}

impl Deadline {
    /// The calendar date (UTC) of the last moment still in time: an item's
    /// `scheduled_completion`.
    pub fn date(&self) -> NaiveDate {
        (self.due_at - Duration::microseconds(1)).date_naive()
    }
}

/// An item's deadlines under the 2026 rules (computed on every write; recomputed when its
/// system moves).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
pub struct Schedule {
    /// VER-TFR-EVU: evaluation due, from detection.
    pub evaluation: Option<Deadline>,
    /// VDR-TFR-PVR: the current rating's reduction due (none at N1, before the evaluation, or
    /// once fully mitigated, remediated or a false positive).
    pub reduction: Option<Deadline>,
    /// VDR-TFR-KEV: remediation due by the KEV catalog's date.
    pub kev: Option<Deadline>,
    /// VER-TFR-MAV: not fully mitigated or remediated by then, it is accepted.
    pub acceptance: Option<Deadline>,
}

/// Midnight UTC at the start of `day`.
fn start_of(day: NaiveDate) -> DateTime<Utc> {
    day.and_time(NaiveTime::MIN).and_utc()
}

/// The deadlines of an item detected on `detected_on` (its evaluation's `detected_at` when it
/// has one) under `regime` and `tables`.
pub fn schedule(
    tables: &Tables,
    regime: &Regime,
    evaluation: Option<&Evaluation>,
    detected_on: NaiveDate,
) -> Schedule {
    let class = regime.class;
    let detected_at = evaluation.map_or_else(|| start_of(detected_on), |e| e.detected_at);
    let evu = tables.evaluation(class);
    let mut s = Schedule {
        evaluation: Some(Deadline {
            rule: format!("{RULE_PREFIX}:VER-TFR-EVU:{class}:{evu}"),
            due_at: detected_at + evu.duration(),
        }),
        ..Schedule::default()
    };
    let Some(e) = evaluation else { return s };
    if let Some(kev) = e.kev_due_on {
        s.kev = Some(Deadline {
            rule: format!("{RULE_PREFIX}:VDR-TFR-KEV:{kev}"),
            due_at: start_of(kev) + Duration::days(1),
        });
    }
    let Some(evaluated) = e.evaluated_at else {
        return s;
    };
    s.acceptance = Some(Deadline {
        rule: format!("{RULE_PREFIX}:VER-TFR-MAV:{}d", tables.acceptance_days),
        due_at: evaluated + Duration::days(i64::from(tables.acceptance_days)),
    });
    if e.is_resolved() {
        return s;
    }
    if let (Some(rating), Some(lev)) = (e.agency_impact, e.likely_exploitable) {
        let bucket = Bucket::of(e.internet_reachable.unwrap_or(true), lev);
        if let (Some(tf), Some(start)) = (
            tables.reduction(class, rating, bucket),
            e.clock_start(regime.clock),
        ) {
            s.reduction = Some(Deadline {
                rule: format!("{RULE_PREFIX}:VDR-TFR-PVR:{class}:{rating}:{bucket}:{tf}"),
                due_at: start + tf.duration(),
            });
        }
    }
    s
}

impl Schedule {
    /// The deadline an item's `scheduled_completion` and `deadline_rule` show: the earliest
    /// one still pending for `evaluation` (none once everything is done).
    pub fn governing(&self, evaluation: Option<&Evaluation>) -> Option<&Deadline> {
        let evaluated = evaluation.is_some_and(Evaluation::is_evaluated);
        let resolved = evaluation.is_some_and(Evaluation::is_resolved);
        let remediated = evaluation
            .is_some_and(|e| e.mitigation == Mitigation::Remediated || e.false_positive.is_some());
        let accepted = evaluation.is_some_and(|e| e.accepted.is_some());
        [
            self.evaluation.as_ref().filter(|_| !evaluated),
            self.reduction.as_ref().filter(|_| !accepted),
            self.kev.as_ref().filter(|_| !remediated),
            self.acceptance.as_ref().filter(|_| !resolved && !accepted),
        ]
        .into_iter()
        .flatten()
        .min_by_key(|d| d.due_at)
    }
}

/// Where an item stands under the 2026 rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Detected,
    Evaluated,
    PartiallyMitigated,
    FullyMitigated,
    Remediated,
    FalsePositive,
    Accepted,
}

/// An item's standing under the 2026 rules at a moment: computed, never typed in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(as = VdrStatus)]
pub struct Status {
    pub class: FedrampClass,
    pub state: State,
    pub schedule: Schedule,
    /// FRD-ODV: past a timeframe the provider intends to meet.
    pub overdue: bool,
    /// Why it is overdue, or is likely to become so (VER-RPT-VDT item 9).
    pub overdue_explanation: Option<String>,
    /// FRD-ACV: not intended to be fixed, or not fully mitigated or remediated within 192 days
    /// of evaluation (VER-TFR-MAV).
    pub accepted: bool,
    pub accepted_explanation: Option<String>,
    /// `VER-TFR-IRI` or `VER-TFR-NRI` while the item is a FedRAMP reportable incident.
    pub reportable_incident: Option<String>,
    /// The evaluated rating, then each reduction's (VER-RPT-VDT item 6).
    pub rating_history: Vec<NRating>,
}

/// The deadline, when `now` has reached it.
fn past(d: &Option<Deadline>, now: DateTime<Utc>) -> Option<&Deadline> {
    d.as_ref().filter(|d| now >= d.due_at)
}

fn late(what: &str, d: &Deadline, now: DateTime<Utc>) -> String {
    let hours = (now - d.due_at).num_hours();
    let by = if hours >= 48 {
        format!("{} days", hours / 24)
    } else {
        format!("{hours} hours")
    };
    format!(
        "{what} was due {} ({}), {by} ago",
        d.due_at.to_rfc3339(),
        d.rule
    )
}

/// The standing of an item with `evaluation` (and `schedule`, as [`schedule`] made it) at `now`.
pub fn status(
    class: FedrampClass,
    schedule: &Schedule,
    evaluation: Option<&Evaluation>,
    now: DateTime<Utc>,
) -> Status {
    let e = evaluation;
    let evaluated = e.is_some_and(Evaluation::is_evaluated);
    let resolved = e.is_some_and(Evaluation::is_resolved);
    let false_positive = e.is_some_and(|e| e.false_positive.is_some());
    let mitigation = e.map(|e| e.mitigation).unwrap_or_default();

    // FRD-ACV: accepted by intent, or by the VER-TFR-MAV line.
    let accepted_explanation = if false_positive {
        None
    } else if let Some(r) = e.and_then(|e| e.accepted.as_ref()) {
        Some(format!(
            "the provider does not intend to fully mitigate or remediate it (FRD-ACV): {}{}",
            r.rationale,
            r.decision()
        ))
    } else {
        past(&schedule.acceptance, now)
            .filter(|_| !resolved)
            .map(|d| {
                format!(
                    "not fully mitigated or remediated within 192 days of evaluation (VER-TFR-MAV; the line was {})",
                    d.due_at.to_rfc3339()
                )
            })
    };
    let accepted = accepted_explanation.is_some();

    // FRD-ODV: past a timeframe it is still meant to meet.
    let mut reasons = Vec::new();
    if !accepted && !false_positive {
        if !evaluated {
            if let Some(d) = past(&schedule.evaluation, now) {
                reasons.push(late("the evaluation", d, now));
            }
        }
        if !resolved {
            if let Some(d) = past(&schedule.reduction, now) {
                reasons.push(late("the reduction of the N-rating", d, now));
            }
        }
        if mitigation != Mitigation::Remediated {
            if let Some(d) = past(&schedule.kev, now) {
                reasons.push(late(
                    "remediation of this known exploited vulnerability (required even when fully mitigated)",
                    d,
                    now,
                ));
            }
        }
    }
    let overdue = !reasons.is_empty();
    if !overdue && !accepted && !resolved {
        // VER-RPT-VDT item 9: likely to become overdue.
        if let (Some(next), Some(due)) = (
            e.and_then(|e| e.next_reduction.as_ref()),
            schedule.reduction.as_ref(),
        ) {
            if next.at > due.due_at {
                reasons.push(format!(
                    "likely to become overdue: the next reduction is projected for {}, after its deadline {} ({})",
                    next.at.to_rfc3339(),
                    due.due_at.to_rfc3339(),
                    due.rule
                ));
            }
        }
    }

    let reportable_incident = e
        .filter(|_| !resolved)
        .and_then(
            |e| match (e.internet_reachable, e.likely_exploitable, e.agency_impact) {
                (Some(true), Some(true), Some(r)) if r > NRating::N3 => Some("VER-TFR-IRI"),
                (Some(false), Some(true), Some(NRating::N5)) => Some("VER-TFR-NRI"),
                _ => None,
            },
        )
        .map(str::to_owned);

    let state = if false_positive {
        State::FalsePositive
    } else if mitigation == Mitigation::Remediated {
        State::Remediated
    } else if mitigation == Mitigation::Full {
        State::FullyMitigated
    } else if accepted {
        State::Accepted
    } else if mitigation == Mitigation::Partial {
        State::PartiallyMitigated
    } else if evaluated {
        State::Evaluated
    } else {
        State::Detected
    };
    Status {
        class,
        state,
        schedule: schedule.clone(),
        overdue,
        overdue_explanation: (!reasons.is_empty()).then(|| reasons.join("; ")),
        accepted,
        accepted_explanation,
        reportable_incident,
        rating_history: e.map(Evaluation::rating_history).unwrap_or_default(),
    }
}

/// FedRAMP's `finalDisposition` (three values; remediated reads as fully mitigated, the
/// schema has no fourth): omitted while still active.
pub fn final_disposition(e: &Evaluation) -> Option<&'static str> {
    if e.false_positive.is_some() {
        Some("False Positive")
    } else if matches!(e.mitigation, Mitigation::Full | Mitigation::Remediated) {
        Some("Fully Mitigated")
    } else {
        None
    }
}

fn v(code: &'static str, pointer: &str, message: impl Into<String>) -> Violation {
    Violation::new(code, format!("/evaluation{pointer}"), message)
}

/// The evaluation's own consistency, whatever the path: times in order and not ahead of
/// `today`, a completed evaluation with its three answers, mitigation after evaluation, a
/// false positive neither fully mitigated nor remediated (FRD-FPV), reductions that lower the
/// rating step by step to the current one, and a projected reduction below it.
pub fn check(e: &Evaluation, today: NaiveDate) -> Vec<Violation> {
    let mut out = Vec::new();
    let future = |t: DateTime<Utc>| t.date_naive() > today;
    if future(e.detected_at) {
        out.push(v(
            "date_in_future",
            "/detected_at",
            "must not lie ahead of today",
        ));
    }
    match e.evaluated_at {
        Some(at) => {
            if at < e.detected_at {
                out.push(v(
                    "evaluation_before_detection",
                    "/evaluated_at",
                    "the evaluation cannot precede the detection",
                ));
            }
            if future(at) {
                out.push(v(
                    "date_in_future",
                    "/evaluated_at",
                    "must not lie ahead of today",
                ));
            }
            if e.false_positive.is_none() {
                for (name, missing) in [
                    ("internet_reachable", e.internet_reachable.is_none()),
                    ("likely_exploitable", e.likely_exploitable.is_none()),
                    ("agency_impact", e.agency_impact.is_none()),
                ] {
                    if missing {
                        out.push(v(
                            "evaluation_incomplete",
                            &format!("/{name}"),
                            "a completed evaluation answers internet reachability, likely exploitability and the N-rating (VER-EVA-EIR, ELX, EPA)",
                        ));
                    }
                }
            }
        }
        None => {
            if e.mitigation != Mitigation::NotMitigated {
                out.push(v(
                    "not_evaluated",
                    "/mitigation",
                    "a mitigation state needs a completed evaluation (evaluated_at)",
                ));
            }
            if !e.reductions.is_empty() {
                out.push(v(
                    "not_evaluated",
                    "/reductions",
                    "reductions follow a completed evaluation (evaluated_at)",
                ));
            }
        }
    }
    let resolved_state = matches!(e.mitigation, Mitigation::Full | Mitigation::Remediated);
    if resolved_state && e.mitigated_at.is_none() {
        out.push(v(
            "mitigated_at_required",
            "/mitigated_at",
            "a fully mitigated or remediated vulnerability says when it became so (the VER-TFR-MAV line is judged by it)",
        ));
    }
    if let (Some(m), Some(ev)) = (e.mitigated_at, e.evaluated_at) {
        if m < ev {
            out.push(v(
                "mitigated_before_evaluation",
                "/mitigated_at",
                "mitigation is judged from the evaluation on",
            ));
        }
    }
    if e.mitigated_at.is_some_and(future) {
        out.push(v(
            "date_in_future",
            "/mitigated_at",
            "must not lie ahead of today",
        ));
    }
    if e.false_positive.is_some() && resolved_state {
        out.push(v(
            "false_positive_mitigated",
            "/false_positive",
            "a remediated or fully mitigated vulnerability cannot also be a false positive (FRD-FPV)",
        ));
    }
    let mut previous_at = e.evaluated_at;
    for (i, r) in e.reductions.iter().enumerate() {
        let at = format!("/reductions/{i}");
        if r.to >= r.from {
            out.push(v(
                "reduction_not_lower",
                &format!("{at}/to"),
                format!("a reduction lowers the N-rating ({} to {})", r.from, r.to),
            ));
        }
        if let Some(prev) = i.checked_sub(1).and_then(|p| e.reductions.get(p)) {
            if prev.to != r.from {
                out.push(v(
                    "reduction_chain_broken",
                    &format!("{at}/from"),
                    format!(
                        "starts from {}, but the previous step ended at {}",
                        r.from, prev.to
                    ),
                ));
            }
        }
        if previous_at.is_some_and(|p| r.at < p) {
            out.push(v(
                "reduction_out_of_order",
                &format!("{at}/at"),
                "reductions follow the evaluation and each other in time",
            ));
        }
        if future(r.at) {
            out.push(v(
                "date_in_future",
                &format!("{at}/at"),
                "must not lie ahead of today",
            ));
        }
        previous_at = Some(r.at);
    }
    if let Some(last) = e.reductions.last() {
        if e.agency_impact != Some(last.to) {
            out.push(v(
                "agency_impact_not_last_reduction",
                "/agency_impact",
                format!("the current N-rating is the last reduction's ({})", last.to),
            ));
        }
    }
    if let (Some(next), Some(current)) = (&e.next_reduction, e.agency_impact) {
        if next.target >= current {
            out.push(v(
                "projected_not_lower",
                "/next_reduction/target",
                format!("the next reduction targets a rating below the current {current}"),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use Bucket::{IrvLev, NirvLev, Nlev};
    use FedrampClass::{A, B, C, D};
    use NRating::{N1, N2, N3, N4, N5};

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap_or_default()
    }

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap_or_default()
    }

    fn regime(class: FedrampClass, clock: Clock) -> Regime {
        Regime {
            class,
            since: day("2026-07-04"),
            clock,
        }
    }

    fn evaluated(rating: NRating, irv: bool, lev: bool) -> Evaluation {
        Evaluation {
            detected_at: t("2026-10-01T08:00:00Z"),
            detection_source: "scanner".into(),
            evaluated_at: Some(t("2026-10-02T10:00:00Z")),
            internet_reachable: Some(irv),
            likely_exploitable: Some(lev),
            agency_impact: Some(rating),
            mitigation: Mitigation::NotMitigated,
            mitigated_at: None,
            false_positive: None,
            reductions: vec![],
            next_reduction: None,
            kev_due_on: None,
            accepted: None,
            report_description: None,
            supplementary_information: None,
            disclose_description: false,
        }
    }

    /// Every cell of VDR-TFR-PVR, as fedramp-vdr.md §2.5 lists it (class, rating, irv_lev,
    /// nirv_lev, nlev; hours marked).
    #[test]
    fn every_reduction_cell_matches_fedramp_and_names_its_rule() {
        use Timeframe::{Days as Dy, Hours as H};
        let expected: Vec<(FedrampClass, NRating, [Option<Timeframe>; 3])> = vec![
            (A, N1, [None, None, None]),
            (A, N2, [Some(Dy(96)), Some(Dy(160)), Some(Dy(192))]),
            (A, N3, [Some(Dy(32)), Some(Dy(64)), Some(Dy(192))]),
            (A, N4, [Some(Dy(8)), Some(Dy(32)), Some(Dy(64))]),
            (A, N5, [Some(Dy(4)), Some(Dy(8)), Some(Dy(32))]),
            (B, N1, [None, None, None]),
            (B, N2, [Some(Dy(96)), Some(Dy(160)), Some(Dy(192))]),
            (B, N3, [Some(Dy(32)), Some(Dy(64)), Some(Dy(192))]),
            (B, N4, [Some(Dy(8)), Some(Dy(32)), Some(Dy(64))]),
            (B, N5, [Some(Dy(4)), Some(Dy(8)), Some(Dy(32))]),
            (C, N1, [None, None, None]),
            (C, N2, [Some(Dy(48)), Some(Dy(128)), Some(Dy(192))]),
            (C, N3, [Some(Dy(16)), Some(Dy(32)), Some(Dy(128))]),
            (C, N4, [Some(Dy(4)), Some(Dy(8)), Some(Dy(64))]),
            (C, N5, [Some(Dy(2)), Some(Dy(4)), Some(Dy(16))]),
            (D, N1, [None, None, None]),
            (D, N2, [Some(Dy(24)), Some(Dy(96)), Some(Dy(192))]),
            (D, N3, [Some(Dy(8)), Some(Dy(16)), Some(Dy(64))]),
            (D, N4, [Some(Dy(2)), Some(Dy(8)), Some(Dy(32))]),
            (D, N5, [Some(H(12)), Some(Dy(1)), Some(Dy(8))]),
        ];
        assert_eq!(expected.len(), 20);
        let evaluated_at = t("2026-10-02T10:00:00Z");
        for (class, rating, cells) in expected {
            for (bucket, cell) in [IrvLev, NirvLev, Nlev].into_iter().zip(cells) {
                assert_eq!(
                    FEDRAMP_2026.reduction(class, rating, bucket),
                    cell,
                    "{class} {rating} {bucket}"
                );
                let (irv, lev) = match bucket {
                    IrvLev => (true, true),
                    NirvLev => (false, true),
                    Nlev => (true, false),
                };
                let s = schedule(
                    &FEDRAMP_2026,
                    &regime(class, Clock::FromReduction),
                    Some(&evaluated(rating, irv, lev)),
                    day("2026-10-01"),
                );
                match cell {
                    None => assert_eq!(s.reduction, None, "{class} {rating} {bucket}"),
                    Some(tf) => assert_eq!(
                        s.reduction,
                        Some(Deadline {
                            rule: format!("fedramp-vdr:VDR-TFR-PVR:{class}:{rating}:{bucket}:{tf}"),
                            due_at: evaluated_at + tf.duration(),
                        })
                    ),
                }
            }
        }
        // NLEV ignores reachability.
        assert_eq!(Bucket::of(false, false), Bucket::of(true, false),);
    }

    #[test]
    fn the_class_d_n5_cell_is_twelve_hours_to_the_minute() {
        let s = schedule(
            &FEDRAMP_2026,
            &regime(D, Clock::FromReduction),
            Some(&evaluated(N5, true, true)),
            day("2026-10-01"),
        );
        let r = s
            .reduction
            .clone()
            .unwrap_or_else(|| panic!("no reduction deadline"));
        assert_eq!(r.due_at, t("2026-10-02T22:00:00Z"));
        assert_eq!(r.rule, "fedramp-vdr:VDR-TFR-PVR:D:N5:irv_lev:12h");
        assert_eq!(r.date(), day("2026-10-02"));
        let before = status(
            D,
            &s,
            Some(&evaluated(N5, true, true)),
            t("2026-10-02T21:59:00Z"),
        );
        let after = status(
            D,
            &s,
            Some(&evaluated(N5, true, true)),
            t("2026-10-02T22:00:00Z"),
        );
        assert!(!before.overdue);
        assert!(after.overdue);
        assert!(after
            .overdue_explanation
            .is_some_and(|x| x.contains("VDR-TFR-PVR:D:N5:irv_lev:12h")));
    }

    #[test]
    fn every_evaluation_cell_counts_from_detection() {
        for (class, days) in [(A, 14), (B, 7), (C, 5), (D, 2)] {
            assert_eq!(FEDRAMP_2026.evaluation(class), Timeframe::Days(days));
            let mut e = evaluated(N3, false, false);
            e.evaluated_at = None;
            let s = schedule(
                &FEDRAMP_2026,
                &regime(class, Clock::FromReduction),
                Some(&e),
                day("2026-10-01"),
            );
            let due = t("2026-10-01T08:00:00Z") + Duration::days(i64::from(days));
            assert_eq!(
                s.evaluation,
                Some(Deadline {
                    rule: format!("fedramp-vdr:VER-TFR-EVU:{class}:{days}d"),
                    due_at: due
                })
            );
            assert_eq!(s.governing(Some(&e)).map(|d| d.due_at), Some(due));
            let late = status(class, &s, Some(&e), due + Duration::hours(1));
            assert!(late.overdue && late.state == State::Detected);
            assert!(late
                .overdue_explanation
                .is_some_and(|x| x.starts_with("the evaluation was due")));
            assert!(!status(class, &s, Some(&e), due - Duration::hours(1)).overdue);
        }
        // Without an evaluation, from the detection date's midnight.
        let s = schedule(
            &FEDRAMP_2026,
            &regime(C, Clock::FromReduction),
            None,
            day("2026-10-01"),
        );
        assert_eq!(
            s.evaluation.map(|d| d.due_at),
            Some(t("2026-10-06T00:00:00Z"))
        );
    }

    #[test]
    fn the_clock_option_restarts_or_keeps_counting() {
        let mut e = evaluated(N5, true, true);
        e.mitigation = Mitigation::Partial;
        e.reductions.push(Reduction {
            at: t("2026-10-05T10:00:00Z"),
            from: N5,
            to: N4,
            action: "WAF rule".into(),
        });
        e.agency_impact = Some(N4);
        assert!(check(&e, day("2026-11-01")).is_empty());
        // Class B, N4 IRV+LEV: 8 days.
        let restart = schedule(
            &FEDRAMP_2026,
            &regime(B, Clock::FromReduction),
            Some(&e),
            day("2026-10-01"),
        );
        assert_eq!(
            restart.reduction.map(|d| d.due_at),
            Some(t("2026-10-13T10:00:00Z"))
        );
        let keep = schedule(
            &FEDRAMP_2026,
            &regime(B, Clock::FromEvaluation),
            Some(&e),
            day("2026-10-01"),
        );
        assert_eq!(
            keep.reduction.map(|d| d.due_at),
            Some(t("2026-10-10T10:00:00Z"))
        );
        assert_eq!(DEFAULT_CLOCK, Clock::FromReduction);
        assert_eq!(e.rating_history(), vec![N5, N4]);
    }

    #[test]
    fn the_192_day_line_makes_an_item_accepted_unless_fully_mitigated() {
        let e = evaluated(N2, false, false);
        let s = schedule(
            &FEDRAMP_2026,
            &regime(B, Clock::FromReduction),
            Some(&e),
            day("2026-10-01"),
        );
        let line = t("2026-10-02T10:00:00Z") + Duration::days(192);
        assert_eq!(
            s.acceptance,
            Some(Deadline {
                rule: "fedramp-vdr:VER-TFR-MAV:192d".into(),
                due_at: line
            })
        );
        // Class B N2 NLEV is also 192 days: overdue never shows before acceptance.
        let before = status(B, &s, Some(&e), line - Duration::seconds(1));
        assert!(!before.accepted && !before.overdue && before.state == State::Evaluated);
        let after = status(B, &s, Some(&e), line);
        assert!(after.accepted && !after.overdue && after.state == State::Accepted);
        assert!(after
            .accepted_explanation
            .is_some_and(|x| x.contains("VER-TFR-MAV")));
        // Fully mitigated in time: never accepted; partially: still accepted.
        let mut full = e.clone();
        full.mitigation = Mitigation::Full;
        full.mitigated_at = Some(t("2026-12-01T00:00:00Z"));
        let sf = schedule(
            &FEDRAMP_2026,
            &regime(B, Clock::FromReduction),
            Some(&full),
            day("2026-10-01"),
        );
        let st = status(B, &sf, Some(&full), line + Duration::days(10));
        assert!(!st.accepted && st.state == State::FullyMitigated);
        assert_eq!(final_disposition(&full), Some("Fully Mitigated"));
        let mut partial = e.clone();
        partial.mitigation = Mitigation::Partial;
        assert!(status(B, &s, Some(&partial), line).accepted);
        // Intent not to fix: accepted at once, with the reason.
        let mut intent = e;
        intent.accepted = Some(Rationale {
            rationale: "legacy appliance, retired in 2027".into(),
            decided_by: Some("issm@example.org".into()),
            decided_at: Some(t("2026-10-02T12:00:00Z")),
            ..Rationale::default()
        });
        let st = status(B, &s, Some(&intent), t("2026-10-03T00:00:00Z"));
        assert!(
            st.accepted
                && st.accepted_explanation.as_deref().is_some_and(|x| x
                    .contains("retired in 2027 (decided by issm@example.org at 2026-10-02T12:00:00+00:00)"))
        );
        assert_eq!(s.governing(Some(&intent)), None);
    }

    #[test]
    fn a_kev_is_due_by_the_catalog_date_even_when_fully_mitigated() {
        let mut e = evaluated(N3, false, false);
        e.kev_due_on = Some(day("2026-10-20"));
        e.mitigation = Mitigation::Full;
        e.mitigated_at = Some(t("2026-10-03T00:00:00Z"));
        let s = schedule(
            &FEDRAMP_2026,
            &regime(C, Clock::FromReduction),
            Some(&e),
            day("2026-10-01"),
        );
        let kev = s.kev.clone().unwrap_or_else(|| panic!("no KEV deadline"));
        assert_eq!(kev.rule, "fedramp-vdr:VDR-TFR-KEV:2026-10-20");
        assert_eq!(kev.date(), day("2026-10-20"));
        assert_eq!(s.reduction, None, "fully mitigated: no reduction due");
        assert_eq!(
            s.governing(Some(&e)).map(|d| d.rule.as_str()),
            Some(kev.rule.as_str())
        );
        assert!(!status(C, &s, Some(&e), t("2026-10-20T23:00:00Z")).overdue);
        let late = status(C, &s, Some(&e), t("2026-10-21T00:00:00Z"));
        assert!(late.overdue);
        assert!(late
            .overdue_explanation
            .is_some_and(|x| x.contains("VDR-TFR-KEV")));
        e.mitigation = Mitigation::Remediated;
        assert!(!status(C, &s, Some(&e), t("2026-10-21T00:00:00Z")).overdue);
        assert_eq!(s.governing(Some(&e)), None);
    }

    #[test]
    fn reportable_incidents_follow_iri_and_nri() {
        let s = Schedule::default();
        let at = t("2026-10-03T00:00:00Z");
        let flag = |e: &Evaluation| status(C, &s, Some(e), at).reportable_incident;
        assert_eq!(
            flag(&evaluated(N4, true, true)).as_deref(),
            Some("VER-TFR-IRI")
        );
        assert_eq!(flag(&evaluated(N3, true, true)), None);
        assert_eq!(
            flag(&evaluated(N5, false, true)).as_deref(),
            Some("VER-TFR-NRI")
        );
        assert_eq!(flag(&evaluated(N4, false, true)), None);
        assert_eq!(flag(&evaluated(N5, true, false)), None);
        let mut fixed = evaluated(N5, true, true);
        fixed.mitigation = Mitigation::Full;
        assert_eq!(flag(&fixed), None);
    }

    #[test]
    fn evaluations_are_checked() {
        let today = day("2026-11-01");
        let codes = |e: &Evaluation| {
            check(e, today)
                .into_iter()
                .map(|v| v.code)
                .collect::<Vec<_>>()
        };
        let mut e = evaluated(N4, true, true);
        e.agency_impact = None;
        assert_eq!(codes(&e), vec!["evaluation_incomplete"]);
        let mut e = evaluated(N4, true, true);
        e.evaluated_at = Some(t("2026-09-01T00:00:00Z"));
        assert_eq!(codes(&e), vec!["evaluation_before_detection"]);
        let mut e = evaluated(N4, true, true);
        e.mitigation = Mitigation::Remediated;
        e.false_positive = Some(Rationale {
            rationale: "x".into(),
            ..Rationale::default()
        });
        assert_eq!(
            codes(&e),
            vec!["mitigated_at_required", "false_positive_mitigated"]
        );
        let mut e = evaluated(N4, true, true);
        e.reductions.push(Reduction {
            at: t("2026-10-05T00:00:00Z"),
            from: N4,
            to: N4,
            action: "x".into(),
        });
        assert_eq!(codes(&e), vec!["reduction_not_lower"]);
        let mut e = evaluated(N4, true, true);
        e.reductions.push(Reduction {
            at: t("2026-10-05T00:00:00Z"),
            from: N4,
            to: N2,
            action: "x".into(),
        });
        assert_eq!(codes(&e), vec!["agency_impact_not_last_reduction"]);
        let mut e = evaluated(N4, true, true);
        e.next_reduction = Some(ProjectedReduction {
            at: t("2026-10-09T00:00:00Z"),
            target: N4,
        });
        assert_eq!(codes(&e), vec!["projected_not_lower"]);
        let mut e = evaluated(N4, true, true);
        e.evaluated_at = None;
        e.mitigation = Mitigation::Partial;
        assert_eq!(codes(&e), vec!["not_evaluated"]);
        let mut e = evaluated(N4, true, true);
        e.detected_at = t("2026-12-01T00:00:00Z");
        e.evaluated_at = None;
        assert_eq!(codes(&e), vec!["date_in_future"]);
        // A projected reduction after its deadline: likely to become overdue.
        let mut e = evaluated(N4, true, true);
        e.next_reduction = Some(ProjectedReduction {
            at: t("2026-10-30T00:00:00Z"),
            target: N3,
        });
        let s = schedule(
            &FEDRAMP_2026,
            &regime(C, Clock::FromReduction),
            Some(&e),
            day("2026-10-01"),
        );
        let st = status(C, &s, Some(&e), t("2026-10-03T00:00:00Z"));
        assert!(
            !st.overdue
                && st
                    .overdue_explanation
                    .is_some_and(|x| x.starts_with("likely"))
        );
    }
}
