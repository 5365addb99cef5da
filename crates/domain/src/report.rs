//! The executive and technical report: its wire shape and its pure math (risk weights, age
//! buckets, percentiles, the burn-down series, slips, resources). The store reads the columns,
//! this module turns them into figures; the HTTP layer draws them.

use crate::deadlines::{self, Policy};
use crate::reminders::Attention;
use crate::vocab::{ItemStatus, Regime, RiskRating};
use crate::{ItemId, MilestoneId, SystemId};
use chrono::{Days, NaiveDate};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// The risk weight of a rating: critical 4, high 3, moderate 2, low 1. "Weighted risk" is the
/// sum of the weights of the items counted.
pub fn weight(rating: RiskRating) -> i64 {
    match rating {
        RiskRating::Critical => 4,
        RiskRating::High => 3,
        RiskRating::Moderate => 2,
        RiskRating::Low => 1,
    }
}

/// How much detail the report carries.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema, PartialOrd, Ord,
)]
#[serde(rename_all = "snake_case")]
pub enum ReportLevel {
    /// One page: the headline, the charts and the ten most pressing items.
    #[default]
    Executive,
    /// Every open item with its plan, milestones and evidence count.
    Technical,
}

/// A count per risk rating.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct ByRating {
    pub critical: i64,
    pub high: i64,
    pub moderate: i64,
    pub low: i64,
}

impl ByRating {
    pub fn add(&mut self, rating: RiskRating, n: i64) {
        *self.slot(rating) += n;
    }

    fn slot(&mut self, rating: RiskRating) -> &mut i64 {
        match rating {
            RiskRating::Critical => &mut self.critical,
            RiskRating::High => &mut self.high,
            RiskRating::Moderate => &mut self.moderate,
            RiskRating::Low => &mut self.low,
        }
    }

    pub fn get(&self, rating: RiskRating) -> i64 {
        match rating {
            RiskRating::Critical => self.critical,
            RiskRating::High => self.high,
            RiskRating::Moderate => self.moderate,
            RiskRating::Low => self.low,
        }
    }

    pub fn total(&self) -> i64 {
        self.critical + self.high + self.moderate + self.low
    }

    /// The sum of the counts times their rating's weight.
    pub fn weighted(&self) -> i64 {
        RiskRating::ALL
            .iter()
            .map(|r| self.get(*r) * weight(*r))
            .sum()
    }
}

/// The weights the report uses, stated in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
pub struct Weights {
    #[schema(example = 4)]
    pub critical: i64,
    #[schema(example = 3)]
    pub high: i64,
    #[schema(example = 2)]
    pub moderate: i64,
    #[schema(example = 1)]
    pub low: i64,
}

pub const WEIGHTS: Weights = Weights {
    critical: 4,
    high: 3,
    moderate: 2,
    low: 1,
};

/// The dates a report covers, both included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
pub struct Period {
    pub from: NaiveDate,
    pub to: NaiveDate,
}

/// An item's life in dates, as the burn-down reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub rating: RiskRating,
    pub detected_on: NaiveDate,
    /// When it stopped being open (completed, closed, risk accepted); `None` while open.
    pub resolved_on: Option<NaiveDate>,
    pub scheduled_completion: Option<NaiveDate>,
}

impl Span {
    /// Open at the end of `day`: detected by then and not yet resolved.
    pub fn open_on(&self, day: NaiveDate) -> bool {
        self.detected_on <= day && self.resolved_on.is_none_or(|r| r > day)
    }

    /// Would be open at the end of `day` had it been resolved on its scheduled completion (an
    /// item without one stays open).
    pub fn scheduled_open_on(&self, day: NaiveDate) -> bool {
        self.detected_on <= day && self.scheduled_completion.is_none_or(|s| s > day)
    }
}

/// One point of the burn-down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
pub struct BurnPoint {
    pub date: NaiveDate,
    /// Items open at the end of the day.
    pub open: i64,
    /// Their weighted risk (see `weights`).
    pub open_weighted: i64,
    /// The plan: the items that would be open had each been resolved on its scheduled
    /// completion date (items without one count as open).
    pub scheduled_open: i64,
}

/// The days sampled across a period: every day up to 62 days, else every 7th day (more for very
/// long periods, at most about 120 points), the last day always included.
pub fn sample_dates(period: Period) -> Vec<NaiveDate> {
    let span = (period.to - period.from).num_days();
    if span < 0 {
        return Vec::new();
    }
    let step = if span <= 62 {
        1
    } else {
        (span / 120).max(7) as u64
    };
    let mut out = Vec::new();
    let mut d = period.from;
    while d < period.to {
        out.push(d);
        match d.checked_add_days(Days::new(step)) {
            Some(n) => d = n,
            None => break,
        }
    }
    out.push(period.to);
    out
}

/// The burn-down over `period`, from the items' dates (see the store's doc for why dates and
/// not the history). Only items open at some point of the period count.
pub fn burn_down(spans: &[Span], period: Period) -> Vec<BurnPoint> {
    let relevant: Vec<&Span> = spans
        .iter()
        .filter(|s| s.detected_on <= period.to && s.resolved_on.is_none_or(|r| r > period.from))
        .collect();
    sample_dates(period)
        .into_iter()
        .map(|date| {
            let mut open = ByRating::default();
            let mut scheduled_open = 0;
            for s in &relevant {
                if s.open_on(date) {
                    open.add(s.rating, 1);
                }
                if s.scheduled_open_on(date) {
                    scheduled_open += 1;
                }
            }
            BurnPoint {
                date,
                open: open.total(),
                open_weighted: open.weighted(),
                scheduled_open,
            }
        })
        .collect()
}

/// The age buckets, in days since detection.
pub const AGE_BUCKETS: [&str; 4] = ["0-30", "31-90", "91-180", "over 180"];

/// The bucket index of an age in days (negative ages, a detection date in the future, count as
/// new).
pub fn age_bucket(days: i64) -> usize {
    match days {
        ..=30 => 0,
        31..=90 => 1,
        91..=180 => 2,
        _ => 3,
    }
}

/// Open items of one age bucket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct AgeBucket {
    /// `0-30`, `31-90`, `91-180`, `over 180` (days since detection).
    #[schema(example = "31-90")]
    pub bucket: String,
    pub by_rating: ByRating,
    pub total: i64,
}

/// Open items bucketed by age (`today` minus detection), by rating.
pub fn aging(open: &[(RiskRating, NaiveDate)], today: NaiveDate) -> Vec<AgeBucket> {
    let mut counts = [ByRating::default(); 4];
    for (rating, detected) in open {
        if let Some(c) = counts.get_mut(age_bucket((today - *detected).num_days())) {
            c.add(*rating, 1);
        }
    }
    AGE_BUCKETS
        .iter()
        .zip(counts)
        .map(|(b, c)| AgeBucket {
            bucket: (*b).to_owned(),
            by_rating: c,
            total: c.total(),
        })
        .collect()
}

/// The median of `values` (the mean of the middle two for an even count).
pub fn median(values: &[i64]) -> Option<f64> {
    let mut v = values.to_vec();
    v.sort_unstable();
    let n = v.len();
    if n == 0 {
        return None;
    }
    if n % 2 == 1 {
        v.get(n / 2).map(|x| *x as f64)
    } else {
        match (v.get(n / 2 - 1), v.get(n / 2)) {
            (Some(a), Some(b)) => Some((*a + *b) as f64 / 2.0),
            _ => None,
        }
    }
}

/// The `p`th percentile (0 < p ≤ 100) by the nearest-rank method: the smallest value with at
/// least p% of the values at or below it.
pub fn percentile(values: &[i64], p: f64) -> Option<f64> {
    let mut v = values.to_vec();
    v.sort_unstable();
    if v.is_empty() || !(p > 0.0 && p <= 100.0) {
        return None;
    }
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    v.get(rank.saturating_sub(1)).map(|x| *x as f64)
}

/// How long items of one rating took to close.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct CloseTime {
    pub rating: RiskRating,
    /// Items closed in the period.
    pub closed: i64,
    /// Median days from detection to closure.
    #[schema(required = true)]
    pub median_days: Option<f64>,
    /// 90th percentile (nearest rank) of the days from detection to closure.
    #[schema(required = true)]
    pub p90_days: Option<f64>,
    /// The regime's deadline for the rating, in days from detection (FedRAMP 30/30/90/180, or
    /// the system's own policy); `null` when none applies per rating (CMMC, eMASS, custom, or
    /// systems with different policies).
    #[schema(required = true)]
    pub deadline_days: Option<u32>,
}

/// The policy that sets per-rating deadlines: the system's own, else its regime's (FedRAMP);
/// `None` when the regime sets none per rating.
pub fn rating_policy(regime: Regime, custom: Option<&Policy>) -> Option<Policy> {
    match (custom, regime) {
        (Some(p), _) => Some(p.clone()),
        (None, Regime::Fedramp) => Some(deadlines::FEDRAMP),
        (None, _) => None,
    }
}

fn policy_days(policy: &Policy, rating: RiskRating) -> Option<u32> {
    match rating {
        RiskRating::Critical => policy.critical,
        RiskRating::High => policy.high,
        RiskRating::Moderate => policy.moderate,
        RiskRating::Low => policy.low,
    }
}

/// Median and 90th percentile days to close by rating, against the policy's deadline.
pub fn close_times(samples: &[(RiskRating, i64)], policy: Option<&Policy>) -> Vec<CloseTime> {
    RiskRating::ALL
        .iter()
        .map(|r| {
            let days: Vec<i64> = samples
                .iter()
                .filter(|(x, _)| x == r)
                .map(|(_, d)| *d)
                .collect();
            CloseTime {
                rating: *r,
                closed: days.len() as i64,
                median_days: median(&days),
                p90_days: percentile(&days, 90.0),
                deadline_days: policy.and_then(|p| policy_days(p, *r)),
            }
        })
        .collect()
}

/// The family of a control reference: `AC` of `AC-2(1)` and `AC.L2-3.1.1`, `3.1` of `3.1.1`.
pub fn family(control: &str) -> String {
    if control.starts_with(|c: char| c.is_ascii_digit()) {
        control
            .rsplit_once('.')
            .map_or(control, |(f, _)| f)
            .to_owned()
    } else {
        control
            .split(['-', '.', '('])
            .next()
            .unwrap_or(control)
            .to_owned()
    }
}

/// A milestone whose due date moved, with what groups it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MovedMilestone {
    /// The control families of its item (none: counted under `none`).
    pub families: Vec<String>,
    /// Its item's owner (none: counted under `unassigned`).
    pub owner: Option<String>,
    /// Each move counted: from and to.
    pub moves: Vec<(NaiveDate, NaiveDate)>,
}

/// Slips of one family or owner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct SlipGroup {
    #[schema(example = "AC")]
    pub key: String,
    pub milestones: i64,
    pub moves: i64,
    /// Days the due dates moved, later minus earlier (a move earlier counts negative).
    pub days_moved: i64,
}

/// Milestones moved in the period (their `changes`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct Slip {
    pub milestones_moved: i64,
    pub moves: i64,
    pub days_moved: i64,
    /// By control family of the item (an item in two families counts in both).
    pub by_family: Vec<SlipGroup>,
    /// By the item's owner.
    pub by_owner: Vec<SlipGroup>,
}

/// Totals and groups of the moved milestones, the groups largest slip first.
pub fn slip(moved: &[MovedMilestone]) -> Slip {
    let mut out = Slip::default();
    let mut families: BTreeMap<String, SlipGroup> = BTreeMap::new();
    let mut owners: BTreeMap<String, SlipGroup> = BTreeMap::new();
    let group = |map: &mut BTreeMap<String, SlipGroup>, key: &str, moves: i64, days: i64| {
        let g = map.entry(key.to_owned()).or_insert_with(|| SlipGroup {
            key: key.to_owned(),
            milestones: 0,
            moves: 0,
            days_moved: 0,
        });
        g.milestones += 1;
        g.moves += moves;
        g.days_moved += days;
    };
    for m in moved.iter().filter(|m| !m.moves.is_empty()) {
        let moves = m.moves.len() as i64;
        let days: i64 = m.moves.iter().map(|(f, t)| (*t - *f).num_days()).sum();
        out.milestones_moved += 1;
        out.moves += moves;
        out.days_moved += days;
        let mut fams: Vec<&str> = m.families.iter().map(String::as_str).collect();
        fams.sort_unstable();
        fams.dedup();
        if fams.is_empty() {
            fams.push("none");
        }
        for f in fams {
            group(&mut families, f, moves, days);
        }
        group(
            &mut owners,
            m.owner.as_deref().unwrap_or("unassigned"),
            moves,
            days,
        );
    }
    let sorted = |map: BTreeMap<String, SlipGroup>| {
        let mut v: Vec<SlipGroup> = map.into_values().collect();
        v.sort_by(|a, b| b.days_moved.cmp(&a.days_moved).then(a.key.cmp(&b.key)));
        v
    };
    out.by_family = sorted(families);
    out.by_owner = sorted(owners);
    out
}

/// Items and money of one funding state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, ToSchema)]
pub struct Funding {
    pub items: i64,
    /// Their estimated cost.
    pub estimated_cost: f64,
}

/// Planned against actual resources, and funding, over the items counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, ToSchema)]
pub struct ResourceTotals {
    /// Sum of `resources.estimated_cost`.
    pub planned_cost: f64,
    /// Sum of `resources.hours`.
    pub planned_hours: f64,
    /// Sum of `actual_cost`.
    pub actual_cost: f64,
    /// Items with `resources.funded` true.
    pub funded: Funding,
    /// Items with `resources.funded` false.
    pub unfunded: Funding,
    /// Items that do not say.
    pub funding_unknown: Funding,
}

/// One item's resources, as the totals read them.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ItemResources {
    pub estimated_cost: Option<f64>,
    pub hours: Option<f64>,
    pub actual_cost: Option<f64>,
    pub funded: Option<bool>,
}

pub fn resources(items: &[ItemResources]) -> ResourceTotals {
    let mut t = ResourceTotals::default();
    let finite = |x: Option<f64>| x.filter(|v| v.is_finite()).unwrap_or(0.0);
    for i in items {
        t.planned_cost += finite(i.estimated_cost);
        t.planned_hours += finite(i.hours);
        t.actual_cost += finite(i.actual_cost);
        let f = match i.funded {
            Some(true) => &mut t.funded,
            Some(false) => &mut t.unfunded,
            None => &mut t.funding_unknown,
        };
        f.items += 1;
        f.estimated_cost += finite(i.estimated_cost);
    }
    t
}

/// A system the report covers.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct SystemRef {
    pub id: SystemId,
    pub name: String,
    pub regime: Regime,
}

/// A CMMC system's SPRS score and Conditional status check.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct CmmcStanding {
    pub system_id: SystemId,
    /// 110 minus every requirement not met; `null` without an SSP.
    #[schema(required = true)]
    pub score: Option<i32>,
    #[schema(example = 110)]
    pub max: i32,
    pub conditional_eligible: bool,
    #[schema(required = true)]
    pub closeout_deadline: Option<NaiveDate>,
    #[schema(required = true)]
    pub days_left: Option<i64>,
}

/// An item as the report lists it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ItemSummary {
    pub id: ItemId,
    pub system_id: SystemId,
    #[schema(example = "POAM-0001")]
    pub display_id: String,
    pub title: String,
    /// The effective rating (adjusted, else original).
    pub risk_rating: RiskRating,
    pub status: ItemStatus,
    /// The owner's name.
    #[schema(required = true)]
    pub owner: Option<String>,
    pub detected_on: NaiveDate,
    #[schema(required = true)]
    pub scheduled_completion: Option<NaiveDate>,
    /// Days since detection.
    pub age_days: i64,
    /// Past its scheduled completion unresolved.
    pub overdue: bool,
}

/// A milestone as the report lists it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct PlanMilestone {
    pub id: MilestoneId,
    pub title: String,
    pub due_on: NaiveDate,
    /// `planned`, `in_progress`, `completed`, `cancelled`.
    #[schema(example = "planned")]
    pub status: String,
    /// Times its due date moved.
    pub moves: i64,
    /// Open and past its due date.
    pub overdue: bool,
}

/// An open item with its plan.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ItemPlan {
    pub item: ItemSummary,
    #[schema(required = true)]
    pub remediation_plan: Option<String>,
    pub milestones: Vec<PlanMilestone>,
    /// Evidence files on record (withdrawn ones left out).
    pub evidence: i64,
}

/// The headline figures.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Headline {
    /// Open items (open, in progress, deferred) by rating.
    pub open: ByRating,
    pub open_total: i64,
    /// Their weighted risk.
    pub open_weighted: i64,
    /// Open items past their scheduled completion, by rating.
    pub overdue: ByRating,
    pub overdue_total: i64,
    /// The oldest open critical and high items, oldest first (at most five).
    pub oldest_critical_high: Vec<ItemSummary>,
    /// Items closed in the period, by rating.
    pub closed_in_period: ByRating,
    /// The weighted risk the period's closures removed.
    pub risk_reduced: i64,
    /// CMMC systems only: the SPRS score and Conditional status.
    pub cmmc: Vec<CmmcStanding>,
}

/// One bar of the roadmap: an open milestone due within the next 90 days, or overdue.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct RoadmapRow {
    pub item_id: ItemId,
    #[schema(example = "POAM-0001")]
    pub display_id: String,
    pub item_title: String,
    #[schema(required = true)]
    pub owner: Option<String>,
    pub risk_rating: RiskRating,
    pub milestone_id: MilestoneId,
    pub milestone: String,
    /// Where the bar starts: the previous open milestone's due date of the item, or today.
    pub start: NaiveDate,
    pub due_on: NaiveDate,
    pub overdue: bool,
}

/// The remediation roadmap.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Roadmap {
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// By owner, then item, then due date.
    pub rows: Vec<RoadmapRow>,
    /// Rows left out past the limit.
    pub truncated: i64,
}

/// The executive or technical report of one system or of every system the token may see.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Report {
    pub level: ReportLevel,
    pub period: Period,
    pub generated_on: NaiveDate,
    pub systems: Vec<SystemRef>,
    /// The risk weights used for weighted risk.
    pub weights: Weights,
    pub headline: Headline,
    /// Daily points (weekly past 62 days) across the period, reconstructed from the items'
    /// dates.
    pub burn_down: Vec<BurnPoint>,
    /// Open items by age.
    pub aging: Vec<AgeBucket>,
    pub slip: Slip,
    /// Items closed in the period, by rating.
    pub time_to_close: Vec<CloseTime>,
    pub resources: ResourceTotals,
    pub roadmap: Roadmap,
    /// What needs someone now (as `GET /v1/systems/{id}/attention`); ten entries in the
    /// executive report.
    pub attention: Vec<Attention>,
    /// Executive: the ten most pressing open items (highest risk, then earliest due);
    /// technical: every open item.
    pub items: Vec<ItemPlan>,
    /// Open items not listed in `items`.
    pub items_not_listed: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap_or(NaiveDate::MIN)
    }

    #[test]
    fn weights_are_four_three_two_one() {
        let mut b = ByRating::default();
        b.add(RiskRating::Critical, 1);
        b.add(RiskRating::High, 2);
        b.add(RiskRating::Moderate, 3);
        b.add(RiskRating::Low, 4);
        assert_eq!(b.total(), 10);
        assert_eq!(b.weighted(), 4 + 6 + 6 + 4);
        assert_eq!(WEIGHTS.critical, weight(RiskRating::Critical));
    }

    #[test]
    fn age_buckets_have_inclusive_upper_bounds() {
        assert_eq!(age_bucket(-3), 0);
        assert_eq!(age_bucket(30), 0);
        assert_eq!(age_bucket(31), 1);
        assert_eq!(age_bucket(90), 1);
        assert_eq!(age_bucket(91), 2);
        assert_eq!(age_bucket(180), 2);
        assert_eq!(age_bucket(181), 3);
        let today = d("2026-06-30");
        let a = aging(
            &[
                (RiskRating::High, d("2026-06-30")),
                (RiskRating::High, d("2025-12-01")),
                (RiskRating::Low, d("2026-03-01")),
            ],
            today,
        );
        assert_eq!(a.len(), 4);
        assert_eq!(a[0].by_rating.high, 1);
        assert_eq!(a[2].by_rating.low, 1);
        assert_eq!(a[3].by_rating.high, 1);
        assert_eq!(a[3].total, 1);
    }

    #[test]
    fn median_and_nearest_rank_percentile() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[5]), Some(5.0));
        assert_eq!(median(&[9, 1, 4, 2]), Some(3.0));
        assert_eq!(percentile(&[], 90.0), None);
        let ten: Vec<i64> = (1..=10).collect();
        assert_eq!(percentile(&ten, 90.0), Some(9.0));
        assert_eq!(percentile(&ten, 100.0), Some(10.0));
        assert_eq!(percentile(&[7, 3], 90.0), Some(7.0));
        assert_eq!(percentile(&[1], 0.0), None);
    }

    #[test]
    fn close_times_carry_the_fedramp_deadlines() {
        let policy = rating_policy(Regime::Fedramp, None);
        let t = close_times(
            &[(RiskRating::High, 10), (RiskRating::High, 40)],
            policy.as_ref(),
        );
        assert_eq!(t.len(), 4);
        let high = &t[1];
        assert_eq!(high.rating, RiskRating::High);
        assert_eq!(high.closed, 2);
        assert_eq!(high.median_days, Some(25.0));
        assert_eq!(high.p90_days, Some(40.0));
        assert_eq!(high.deadline_days, Some(30));
        assert_eq!(t[3].deadline_days, Some(180));
        assert_eq!(t[0].median_days, None);
        assert_eq!(rating_policy(Regime::Emass, None), None);
    }

    #[test]
    fn burn_down_counts_items_open_at_each_day_end() {
        let period = Period {
            from: d("2026-06-01"),
            to: d("2026-06-05"),
        };
        let spans = [
            // Open throughout, due on the 3rd.
            Span {
                rating: RiskRating::Critical,
                detected_on: d("2026-05-01"),
                resolved_on: None,
                scheduled_completion: Some(d("2026-06-03")),
            },
            // Resolved on the 2nd.
            Span {
                rating: RiskRating::Low,
                detected_on: d("2026-05-20"),
                resolved_on: Some(d("2026-06-02")),
                scheduled_completion: None,
            },
            // Detected on the 4th.
            Span {
                rating: RiskRating::High,
                detected_on: d("2026-06-04"),
                resolved_on: None,
                scheduled_completion: Some(d("2026-07-04")),
            },
            // Resolved before the period: left out.
            Span {
                rating: RiskRating::High,
                detected_on: d("2026-01-01"),
                resolved_on: Some(d("2026-02-01")),
                scheduled_completion: Some(d("2026-12-01")),
            },
        ];
        let b = burn_down(&spans, period);
        let open: Vec<i64> = b.iter().map(|p| p.open).collect();
        let weighted: Vec<i64> = b.iter().map(|p| p.open_weighted).collect();
        let plan: Vec<i64> = b.iter().map(|p| p.scheduled_open).collect();
        assert_eq!(open, [2, 1, 1, 2, 2]);
        assert_eq!(weighted, [5, 4, 4, 7, 7]);
        assert_eq!(plan, [2, 2, 1, 2, 2]);
    }

    #[test]
    fn long_periods_are_sampled_weekly_and_reversed_ones_are_empty() {
        let p = Period {
            from: d("2026-01-01"),
            to: d("2026-12-31"),
        };
        let s = sample_dates(p);
        assert_eq!(s.first(), Some(&d("2026-01-01")));
        assert_eq!(s.last(), Some(&d("2026-12-31")));
        assert_eq!(s.get(1), Some(&d("2026-01-08")));
        assert!(sample_dates(Period {
            from: p.to,
            to: p.from
        })
        .is_empty());
        assert_eq!(
            sample_dates(Period {
                from: p.from,
                to: p.from
            }),
            [p.from]
        );
    }

    #[test]
    fn slips_group_by_family_and_owner() {
        let s = slip(&[
            MovedMilestone {
                families: vec!["AC".into(), "AC".into(), "SC".into()],
                owner: Some("Dana".into()),
                moves: vec![
                    (d("2026-06-01"), d("2026-06-11")),
                    (d("2026-06-11"), d("2026-06-16")),
                ],
            },
            MovedMilestone {
                families: vec![],
                owner: None,
                moves: vec![(d("2026-06-10"), d("2026-06-08"))],
            },
            MovedMilestone {
                families: vec!["AC".into()],
                owner: None,
                moves: vec![],
            },
        ]);
        assert_eq!(s.milestones_moved, 2);
        assert_eq!(s.moves, 3);
        assert_eq!(s.days_moved, 13);
        let keys: Vec<(&str, i64)> = s
            .by_family
            .iter()
            .map(|g| (g.key.as_str(), g.days_moved))
            .collect();
        assert_eq!(keys, [("AC", 15), ("SC", 15), ("none", -2)]);
        assert_eq!(s.by_owner.len(), 2);
        assert_eq!(s.by_owner[1].key, "unassigned");
    }

    #[test]
    fn families_of_the_catalogs() {
        assert_eq!(family("AC-2"), "AC");
        assert_eq!(family("AC-2(1)"), "AC");
        assert_eq!(family("AC.L2-3.1.1"), "AC");
        assert_eq!(family("3.1.1"), "3.1");
    }

    #[test]
    fn resources_split_by_funding_and_ignore_non_finite_values() {
        let t = resources(&[
            ItemResources {
                estimated_cost: Some(100.0),
                hours: Some(8.0),
                actual_cost: Some(50.0),
                funded: Some(true),
            },
            ItemResources {
                estimated_cost: Some(300.0),
                hours: None,
                actual_cost: None,
                funded: Some(false),
            },
            ItemResources {
                estimated_cost: Some(f64::NAN),
                ..Default::default()
            },
        ]);
        assert_eq!(t.planned_cost, 400.0);
        assert_eq!(t.planned_hours, 8.0);
        assert_eq!(t.actual_cost, 50.0);
        assert_eq!(t.funded.items, 1);
        assert_eq!(t.unfunded.estimated_cost, 300.0);
        assert_eq!(t.funding_unknown.items, 1);
    }
}
