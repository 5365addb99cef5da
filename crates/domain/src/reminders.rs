//! Time-driven events: what becomes due as the calendar moves, decided from a system's facts
//! and an injected `today` (no clock is read here). Each event carries a stable key: the
//! scheduler records it once per system, so an event is emitted once however often it asks.
//!
//! Keys include the date that makes the event due, so moving that date re-arms it: an item
//! whose scheduled completion is moved after its overdue event is reminded again when the new
//! date passes.

use crate::vocab::{DeviationKind, ItemStatus, RiskRating};
use crate::workflow::MilestoneStatus;
use chrono::{DateTime, Datelike, NaiveDate, NaiveTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use validator::Validate;

crate::vocab::vocabulary_pub!(
    /// How often a system's POA&M is reviewed: `monthly` (the default; seed practice 8 says
    /// at least monthly) or `quarterly` (what NISP systems may set).
    ReviewCadence, "review cadence" {
        Monthly => "monthly",
        Quarterly => "quarterly",
    }
);

/// A system's reminder settings (`reminders` on the system); every field optional, each
/// defaulting as documented.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReminderPolicy {
    /// Days before its due date a milestone of a critical item is reminded (default 7).
    #[serde(default)]
    #[validate(range(min = 1, max = 365))]
    #[schema(minimum = 1, maximum = 365, example = 7)]
    pub critical_days: Option<u32>,
    /// Days before its due date a milestone of a high item is reminded (default 14).
    #[serde(default)]
    #[validate(range(min = 1, max = 365))]
    #[schema(minimum = 1, maximum = 365, example = 14)]
    pub high_days: Option<u32>,
    /// Days before its due date a milestone of any other item is reminded (default 30).
    #[serde(default)]
    #[validate(range(min = 1, max = 365))]
    #[schema(minimum = 1, maximum = 365, example = 30)]
    pub other_days: Option<u32>,
    /// How often the POA&M review falls due (default `monthly`; NISP systems set `quarterly`).
    #[serde(default)]
    pub review: Option<ReviewCadence>,
    /// Days before a deviation's (or the risk acceptance resting on it) `expires_on` that are
    /// reminded, each once (default 30 and 7).
    #[serde(default)]
    #[validate(custom(function = "day_windows"))]
    #[schema(min_items = 1, max_items = 10, example = json!([30, 7]))]
    pub expiry_days: Option<Vec<u32>>,
    /// Hours before a FedRAMP 2026 evaluation (VER-TFR-EVU) or N-rating reduction
    /// (VDR-TFR-PVR) deadline that are reminded, each once (default 72 and 12: the 12 hours
    /// matter for class D's 12-hour cell).
    #[serde(default)]
    #[validate(custom(function = "hour_windows"))]
    #[schema(min_items = 1, max_items = 10, example = json!([72, 12]))]
    pub deadline_hours: Option<Vec<u32>>,
}

fn windows(v: &[u32], max: u32) -> Result<(), validator::ValidationError> {
    if v.is_empty() || v.len() > 10 || v.iter().any(|d| *d == 0 || *d > max) {
        let mut e = validator::ValidationError::new("invalid_windows");
        e.message = Some(format!("1 to 10 windows, each from 1 to {max}").into());
        return Err(e);
    }
    Ok(())
}

#[allow(clippy::ptr_arg)] // the validator derive passes the field as it is
fn day_windows(v: &Vec<u32>) -> Result<(), validator::ValidationError> {
    windows(v, 365)
}

#[allow(clippy::ptr_arg)]
fn hour_windows(v: &Vec<u32>) -> Result<(), validator::ValidationError> {
    windows(v, 24 * 60)
}

/// Windows largest first, without repeats.
fn sorted_windows(v: Option<&Vec<u32>>, default: &[u32]) -> Vec<i64> {
    let mut w: Vec<i64> = v
        .map_or(default, Vec::as_slice)
        .iter()
        .map(|d| i64::from(*d))
        .collect();
    w.sort_unstable_by(|a, b| b.cmp(a));
    w.dedup();
    w
}

/// Days a vendor dependency may go without a check-in (FedRAMP: at least monthly).
pub const VENDOR_CHECK_IN_DAYS: i64 = 30;
/// Days before the CMMC Conditional closeout deadline that are reminded.
pub const CLOSEOUT_REMINDERS: [i64; 2] = [30, 7];
/// Days before an expiry that are reminded unless the policy says otherwise.
pub const EXPIRY_DAYS: [u32; 2] = [30, 7];
/// Hours before a FedRAMP 2026 deadline that are reminded unless the policy says otherwise.
pub const DEADLINE_HOURS: [u32; 2] = [72, 12];

impl ReminderPolicy {
    /// The due-soon window of a milestone of an item rated `risk`.
    pub fn window(&self, risk: RiskRating) -> u32 {
        match risk {
            RiskRating::Critical => self.critical_days.unwrap_or(7),
            RiskRating::High => self.high_days.unwrap_or(14),
            RiskRating::Moderate | RiskRating::Low => self.other_days.unwrap_or(30),
        }
    }

    pub fn cadence(&self) -> ReviewCadence {
        self.review.unwrap_or(ReviewCadence::Monthly)
    }

    /// The expiry windows in days, largest first.
    pub fn expiry_windows(&self) -> Vec<i64> {
        sorted_windows(self.expiry_days.as_ref(), &EXPIRY_DAYS)
    }

    /// The FedRAMP 2026 deadline windows in hours, largest first.
    pub fn deadline_windows(&self) -> Vec<i64> {
        sorted_windows(self.deadline_hours.as_ref(), &DEADLINE_HOURS)
    }
}

/// The kinds of time-driven event, each the action of a history event (`<resource>.<kind>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TimedKind {
    /// An item passed its scheduled completion date unresolved (`item.overdue`), or a milestone
    /// its due date unfinished (`milestone.overdue`).
    Overdue,
    /// A milestone is due within its risk's window (`milestone.due_soon`).
    DueSoon,
    /// A vendor dependency has gone 30 days without a check-in (`item.check_in_late`).
    CheckInLate,
    /// A CMMC Conditional status is 30 or 7 days from its closeout
    /// (`cmmc_assessment.closeout_near`).
    CloseoutNear,
    /// The periodic POA&M review falls due (`system.review_due`).
    ReviewDue,
    /// An approved deviation, or the risk acceptance resting on it, is within a window of its
    /// `expires_on` (`item.expiring`).
    Expiring,
    /// An approved deviation or risk acceptance passed its `expires_on` (`item.expired`).
    Expired,
    /// FedRAMP 2026: an evaluation or N-rating reduction deadline is within a window
    /// (`item.deadline_near`).
    DeadlineNear,
    /// FedRAMP 2026: an evaluation or N-rating reduction deadline passed
    /// (`item.deadline_passed`).
    DeadlinePassed,
}

/// One event that is due.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TimedEvent {
    /// Unique within the system; the scheduler emits an event whose key it has not recorded.
    pub key: String,
    pub kind: TimedKind,
    /// `item`, `milestone`, `cmmc_assessment` or `system`.
    pub resource_kind: &'static str,
    pub resource_id: String,
    /// The date the event is about (due date, closeout, check-in deadline, period start,
    /// expiry date, the date of a FedRAMP deadline).
    pub due_on: NaiveDate,
    /// The instant, for FedRAMP 2026 deadlines (timestamps: a class-D cell is 12 hours).
    pub due_at: Option<DateTime<Utc>>,
    pub reason: String,
}

/// An approved deviation (or a risk acceptance) with an expiry date.
#[derive(Debug, Clone, PartialEq)]
pub struct ExpiryFact {
    /// The item is `risk_accepted`: the acceptance rests on the deviation and lapses with it.
    pub risk_acceptance: bool,
    pub deviation_kind: DeviationKind,
    /// The last day it holds.
    pub expires_on: NaiveDate,
}

/// Which FedRAMP 2026 deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeadlineKind {
    /// VER-TFR-EVU.
    Evaluation,
    /// VDR-TFR-PVR.
    Reduction,
}

impl DeadlineKind {
    fn label(self) -> &'static str {
        match self {
            DeadlineKind::Evaluation => "evaluation",
            DeadlineKind::Reduction => "N-rating reduction",
        }
    }
}

/// A pending FedRAMP 2026 deadline of an item (of a system whose `vdr_since` is reached).
#[derive(Debug, Clone, PartialEq)]
pub struct DeadlineFact {
    pub kind: DeadlineKind,
    /// The rule and cell, e.g. `fedramp-vdr:VDR-TFR-PVR:D:N5:irv_lev:12h`.
    pub rule: String,
    pub due_at: DateTime<Utc>,
}

/// An item as the scheduler sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemFact {
    pub id: String,
    pub display_id: String,
    pub status: ItemStatus,
    pub risk: RiskRating,
    pub scheduled_completion: Option<NaiveDate>,
    /// Set when the item has a vendor dependency: its last check-in, else the detection date.
    pub vendor_check_in: Option<NaiveDate>,
    /// Set when an approved deviation (or the risk acceptance resting on it) has an expiry.
    pub expiry: Option<ExpiryFact>,
    /// The pending FedRAMP 2026 evaluation and reduction deadlines (none outside the rules).
    pub deadlines: Vec<DeadlineFact>,
}

/// A milestone as the scheduler sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct MilestoneFact {
    pub id: String,
    pub item_display_id: String,
    pub title: String,
    pub status: MilestoneStatus,
    /// The risk of its item.
    pub risk: RiskRating,
    pub due_on: NaiveDate,
}

/// What the decision reads of one system.
#[derive(Debug, Clone, PartialEq)]
pub struct Facts {
    pub system_id: String,
    /// The day the system was created: no review falls due in the period it was created in.
    pub created_on: NaiveDate,
    /// The day of the system's last recorded `periodic` review: none falls due again in the
    /// period it was recorded in.
    pub last_review_on: Option<NaiveDate>,
    pub policy: ReminderPolicy,
    pub items: Vec<ItemFact>,
    pub milestones: Vec<MilestoneFact>,
    /// The CMMC Conditional status date, when recorded.
    pub conditional_status_date: Option<NaiveDate>,
}

fn unfinished(s: MilestoneStatus) -> bool {
    matches!(s, MilestoneStatus::Planned | MilestoneStatus::InProgress)
}

/// The first day of the review period `today` falls in.
pub fn period_start(cadence: ReviewCadence, today: NaiveDate) -> NaiveDate {
    let month = match cadence {
        ReviewCadence::Monthly => today.month(),
        ReviewCadence::Quarterly => (today.month0() / 3) * 3 + 1,
    };
    NaiveDate::from_ymd_opt(today.year(), month, 1).unwrap_or(today)
}

/// The first day of the period after the one `day` falls in: when the review falls due again
/// after a review (or the creation) on `day`.
pub fn next_review_due(cadence: ReviewCadence, day: NaiveDate) -> NaiveDate {
    let start = period_start(cadence, day);
    let months = match cadence {
        ReviewCadence::Monthly => 1,
        ReviewCadence::Quarterly => 3,
    };
    start
        .checked_add_months(chrono::Months::new(months))
        .unwrap_or(NaiveDate::MAX)
}

fn period_label(cadence: ReviewCadence, start: NaiveDate) -> String {
    match cadence {
        ReviewCadence::Monthly => format!("{}-{:02}", start.year(), start.month()),
        ReviewCadence::Quarterly => format!("{}-Q{}", start.year(), start.month0() / 3 + 1),
    }
}

/// The events due on `today` (at its first instant) for one system: [`due_events_at`].
pub fn due_events(today: NaiveDate, facts: &Facts) -> Vec<TimedEvent> {
    due_events_at(today.and_time(NaiveTime::MIN).and_utc(), facts)
}

/// The smallest window (of `windows`, largest first) that `left` has reached.
fn tightest(windows: &[i64], left: i64) -> Option<i64> {
    windows
        .iter()
        .rev()
        .copied()
        .find(|w| (0..=*w).contains(&left))
}

fn stamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The events due at `now` for one system, in a stable order. The caller drops those whose
/// key it has already recorded. Dates are compared with `now`'s UTC date; FedRAMP 2026
/// deadlines (timestamps) with `now` itself.
pub fn due_events_at(now: DateTime<Utc>, facts: &Facts) -> Vec<TimedEvent> {
    let mut out = due_item_events_at(now, &facts.policy, &facts.items);
    out.extend(due_system_events_at(now, facts));
    out
}

/// The events of `items` alone, as [`due_events_at`] finds them: each depends on its item
/// only, so a scheduler may read a system's items a page at a time.
pub fn due_item_events_at(
    now: DateTime<Utc>,
    policy: &ReminderPolicy,
    items: &[ItemFact],
) -> Vec<TimedEvent> {
    let today = now.date_naive();
    let mut out = Vec::new();
    for i in items {
        if let Some(due) = i.scheduled_completion {
            if crate::item::is_overdue(i.status, Some(due), today) {
                out.push(TimedEvent {
                    key: format!("item.overdue:{}:{due}", i.id),
                    kind: TimedKind::Overdue,
                    resource_kind: "item",
                    resource_id: i.id.clone(),
                    due_on: due,
                    due_at: None,
                    reason: format!(
                        "{} passed its scheduled completion date {due} unresolved",
                        i.display_id
                    ),
                });
            }
        }
        if let Some(last) = i.vendor_check_in.filter(|_| i.status.is_active()) {
            let deadline = last + chrono::Days::new(VENDOR_CHECK_IN_DAYS as u64);
            if today >= deadline {
                out.push(TimedEvent {
                    key: format!("item.check_in_late:{}:{last}", i.id),
                    kind: TimedKind::CheckInLate,
                    resource_kind: "item",
                    resource_id: i.id.clone(),
                    due_on: deadline,
                    due_at: None,
                    reason: format!(
                        "{}: no vendor check-in since {last} ({VENDOR_CHECK_IN_DAYS} days allowed)",
                        i.display_id
                    ),
                });
            }
        }
    }
    for i in items {
        if let Some(x) = &i.expiry {
            let what = if x.risk_acceptance {
                format!(
                    "the risk acceptance of {} (its {} deviation)",
                    i.display_id, x.deviation_kind
                )
            } else {
                format!(
                    "the approved {} deviation of {}",
                    x.deviation_kind, i.display_id
                )
            };
            let on = x.expires_on;
            let left = (on - today).num_days();
            if left < 0 {
                out.push(TimedEvent {
                    key: format!("item.expired:{}:{on}", i.id),
                    kind: TimedKind::Expired,
                    resource_kind: "item",
                    resource_id: i.id.clone(),
                    due_on: on,
                    due_at: None,
                    reason: format!("{what} expired: it held through {on}"),
                });
            } else if let Some(w) = tightest(&policy.expiry_windows(), left) {
                out.push(TimedEvent {
                    key: format!("item.expiring:{}:{on}:{w}", i.id),
                    kind: TimedKind::Expiring,
                    resource_kind: "item",
                    resource_id: i.id.clone(),
                    due_on: on,
                    due_at: None,
                    reason: format!(
                        "{what} expires after {on}: {left} days left (window {w} days)"
                    ),
                });
            }
        }
        for d in &i.deadlines {
            let what = d.kind.label();
            let at = stamp(d.due_at);
            let left = d.due_at - now;
            if left <= chrono::Duration::zero() {
                out.push(TimedEvent {
                    key: format!("item.deadline_passed:{}:{}:{at}", i.id, d.rule),
                    kind: TimedKind::DeadlinePassed,
                    resource_kind: "item",
                    resource_id: i.id.clone(),
                    due_on: d.due_at.date_naive(),
                    due_at: Some(d.due_at),
                    reason: format!("the {what} of {} was due {at} ({})", i.display_id, d.rule),
                });
                continue;
            }
            // Whole hours left, rounded up: 11h59m left is within a 12-hour window.
            let hours = (left.num_seconds() + 3599) / 3600;
            if let Some(w) = tightest(&policy.deadline_windows(), hours) {
                out.push(TimedEvent {
                    key: format!("item.deadline_near:{}:{}:{at}:{w}h", i.id, d.rule),
                    kind: TimedKind::DeadlineNear,
                    resource_kind: "item",
                    resource_id: i.id.clone(),
                    due_on: d.due_at.date_naive(),
                    due_at: Some(d.due_at),
                    reason: format!(
                        "the {what} of {} is due {at} ({}): about {hours} hours left (window {w} hours)",
                        i.display_id, d.rule
                    ),
                });
            }
        }
    }
    out
}

/// The first instant after `now` at which [`due_item_events_at`] may answer for `item` an
/// event it does not answer at `now`: a date passing (overdue, check-in, expiry) or a window
/// opening (an expiry's days, a deadline's hours). `None` when time alone changes nothing. Until
/// then, and unless the item itself changes, a scheduler need not look at the item again.
pub fn next_item_check(
    now: DateTime<Utc>,
    policy: &ReminderPolicy,
    item: &ItemFact,
) -> Option<DateTime<Utc>> {
    let midnight = |d: NaiveDate| d.and_time(NaiveTime::MIN).and_utc();
    let day_after = |d: NaiveDate| d.succ_opt().map(midnight);
    let mut at: Vec<Option<DateTime<Utc>>> = Vec::new();
    if item.status.is_active() {
        // Overdue from the day after the scheduled completion.
        at.push(item.scheduled_completion.and_then(day_after));
        // Late on the day the check-in allowance runs out.
        at.push(
            item.vendor_check_in
                .and_then(|last| {
                    last.checked_add_days(chrono::Days::new(VENDOR_CHECK_IN_DAYS as u64))
                })
                .map(midnight),
        );
    }
    if let Some(x) = &item.expiry {
        at.push(day_after(x.expires_on));
        for w in policy.expiry_windows() {
            at.push(
                x.expires_on
                    .checked_sub_days(chrono::Days::new(w.unsigned_abs()))
                    .map(midnight),
            );
        }
    }
    for d in &item.deadlines {
        at.push(Some(d.due_at));
        for w in policy.deadline_windows() {
            at.push(d.due_at.checked_sub_signed(chrono::Duration::hours(w)));
        }
    }
    at.into_iter().flatten().filter(|t| *t > now).min()
}

/// The events of everything in `facts` but its items: milestones, the CMMC closeout, the
/// periodic review.
pub fn due_system_events_at(now: DateTime<Utc>, facts: &Facts) -> Vec<TimedEvent> {
    let today = now.date_naive();
    let mut out = Vec::new();
    for m in facts.milestones.iter().filter(|m| unfinished(m.status)) {
        let due = m.due_on;
        if due < today {
            out.push(TimedEvent {
                key: format!("milestone.overdue:{}:{due}", m.id),
                kind: TimedKind::Overdue,
                resource_kind: "milestone",
                resource_id: m.id.clone(),
                due_on: due,
                due_at: None,
                reason: format!(
                    "milestone `{}` of {} passed its due date {due}",
                    m.title, m.item_display_id
                ),
            });
        } else {
            let window = facts.policy.window(m.risk);
            let left = (due - today).num_days();
            if left <= i64::from(window) {
                out.push(TimedEvent {
                    key: format!("milestone.due_soon:{}:{due}", m.id),
                    kind: TimedKind::DueSoon,
                    resource_kind: "milestone",
                    resource_id: m.id.clone(),
                    due_on: due,
                    due_at: None,
                    reason: format!(
                        "milestone `{}` of {} ({} risk) is due {due}, in {left} days (window {window})",
                        m.title, m.item_display_id, m.risk
                    ),
                });
            }
        }
    }
    if let Some(start) = facts.conditional_status_date {
        let closeout = start + chrono::Days::new(crate::cmmc::CLOSEOUT_DAYS);
        let left = (closeout - today).num_days();
        // The tightest threshold reached, so a late first look does not send both.
        if let Some(t) = CLOSEOUT_REMINDERS
            .iter()
            .rev()
            .find(|t| (0..=**t).contains(&left))
        {
            out.push(TimedEvent {
                key: format!("cmmc_assessment.closeout_near:{closeout}:{t}"),
                kind: TimedKind::CloseoutNear,
                resource_kind: "cmmc_assessment",
                resource_id: facts.system_id.clone(),
                due_on: closeout,
                due_at: None,
                reason: format!(
                    "the CMMC Conditional status closes out on {closeout}: {left} days left \
                     (32 CFR 170.21(a)(2)(vi))"
                ),
            });
        }
    }
    let cadence = facts.policy.cadence();
    let start = period_start(cadence, today);
    // A review recorded in this period (or a system created in it) means none is due yet.
    let basis = facts
        .last_review_on
        .map_or(facts.created_on, |r| r.max(facts.created_on));
    if basis < start {
        let label = period_label(cadence, start);
        let last = facts
            .last_review_on
            .map_or_else(|| "none recorded".to_owned(), |d| format!("last on {d}"));
        out.push(TimedEvent {
            key: format!("system.review_due:{label}"),
            kind: TimedKind::ReviewDue,
            resource_kind: "system",
            resource_id: facts.system_id.clone(),
            due_on: start,
            due_at: None,
            reason: format!("the {cadence} POA&M review for {label} is due ({last})"),
        });
    }
    out
}

impl TimedKind {
    /// The action word of the history event.
    pub fn as_str(self) -> &'static str {
        match self {
            TimedKind::Overdue => "overdue",
            TimedKind::DueSoon => "due_soon",
            TimedKind::CheckInLate => "check_in_late",
            TimedKind::CloseoutNear => "closeout_near",
            TimedKind::ReviewDue => "review_due",
            TimedKind::Expiring => "expiring",
            TimedKind::Expired => "expired",
            TimedKind::DeadlineNear => "deadline_near",
            TimedKind::DeadlinePassed => "deadline_passed",
        }
    }
}

crate::vocab::vocabulary_pub!(
    /// Why something needs someone now, most urgent first.
    AttentionReason, "attention reason" {
        /// Overdue past the escalation grace: goes to the escalation contact (else the owner).
        Escalated => "escalated",
        /// Past its scheduled completion date, unresolved.
        Overdue => "overdue",
        /// A milestone past its due date, unfinished.
        MilestoneOverdue => "milestone_overdue",
        /// A vendor dependency without a check-in for 30 days.
        CheckInLate => "check_in_late",
        /// A milestone due within its risk's window.
        DueSoon => "due_soon",
        /// A rescan no longer reports the item's finding (`not_seen_since`): the owner (or, once
        /// `completed`, an approver) verifies and closes it.
        ClosureCandidate => "closure_candidate",
        /// A deviation request awaiting an approver's decision.
        DeviationPending => "deviation_pending",
        /// Remediated (`completed`), awaiting verification and closure by an approver.
        AwaitingVerification => "awaiting_verification",
    }
);

crate::vocab::vocabulary_pub!(
    /// The role whose move it is.
    WaitingRole, "waiting role" {
        Owner => "owner",
        Implementer => "implementer",
        EscalationContact => "escalation_contact",
        /// An approver of the system (a token with the approver or admin role).
        Approver => "approver",
    }
);

/// Whom an entry waits on: a role, and the person when the item names one.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct WaitingOn {
    pub role: WaitingRole,
    #[schema(required = true)]
    pub person: Option<crate::Person>,
}

/// One thing that needs someone now.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Attention {
    pub reason: AttentionReason,
    /// A sentence saying why.
    #[schema(example = "POAM-0001 passed its scheduled completion date 2026-11-30 unresolved")]
    pub detail: String,
    pub system_id: crate::SystemId,
    pub item_id: crate::ItemId,
    #[schema(example = "POAM-0001")]
    pub display_id: String,
    pub title: String,
    /// Set when the entry is about one of the item's milestones.
    #[schema(required = true)]
    pub milestone_id: Option<crate::MilestoneId>,
    /// The item's effective rating (adjusted, else original).
    pub risk_rating: RiskRating,
    /// The date that makes it urgent (scheduled completion, milestone due date, check-in
    /// deadline), when there is one.
    #[schema(required = true)]
    pub due_on: Option<NaiveDate>,
    pub waiting_on: WaitingOn,
}

/// An unfinished milestone, with what attention needs of it.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenMilestone {
    pub id: crate::MilestoneId,
    pub item_id: crate::ItemId,
    pub title: String,
    pub due_on: NaiveDate,
}

/// What needs someone now among `items` (with their unfinished `milestones`), ordered by
/// urgency: the reason (escalated, overdue, milestone overdue, check-in late, due soon,
/// closure candidate, deviation pending, awaiting verification), then the higher risk, then the earlier date,
/// then the display id. `policy_of` gives the reminder policy of an item's system.
pub fn attention<'a>(
    today: NaiveDate,
    items: &[crate::Item],
    milestones: &[OpenMilestone],
    policy_of: impl Fn(crate::SystemId) -> &'a ReminderPolicy,
) -> Vec<Attention> {
    let mut out = Vec::new();
    for item in items {
        let risk = item.adjusted_risk_rating.unwrap_or(item.risk_rating);
        let entry = |reason, detail: String, milestone_id, due_on, waiting_on| Attention {
            reason,
            detail,
            system_id: item.system_id,
            item_id: item.id,
            display_id: item.display_id.clone(),
            title: item.title.clone(),
            milestone_id,
            risk_rating: risk,
            due_on,
            waiting_on,
        };
        let owner = || WaitingOn {
            role: WaitingRole::Owner,
            person: item.owner.clone(),
        };
        let doer = || match &item.implementer {
            Some(p) => WaitingOn {
                role: WaitingRole::Implementer,
                person: Some(p.clone()),
            },
            None => owner(),
        };
        let approver = || WaitingOn {
            role: WaitingRole::Approver,
            person: None,
        };
        let due = item.scheduled_completion;
        let id = &item.display_id;
        if item.escalated {
            let waiting = match &item.escalation_contact {
                Some(p) => WaitingOn {
                    role: WaitingRole::EscalationContact,
                    person: Some(p.clone()),
                },
                None => owner(),
            };
            let detail = format!(
                "{id} is overdue since {} beyond the escalation grace",
                due.map_or_else(String::new, |d| d.to_string())
            );
            out.push(entry(
                AttentionReason::Escalated,
                detail,
                None,
                due,
                waiting,
            ));
        } else if item.overdue {
            let detail = format!(
                "{id} passed its scheduled completion date {} unresolved",
                due.map_or_else(String::new, |d| d.to_string())
            );
            out.push(entry(AttentionReason::Overdue, detail, None, due, owner()));
        }
        if item.status.is_active() {
            let policy = policy_of(item.system_id);
            for m in milestones.iter().filter(|m| m.item_id == item.id) {
                let left = (m.due_on - today).num_days();
                if left < 0 {
                    let detail = format!(
                        "milestone `{}` of {id} passed its due date {}",
                        m.title, m.due_on
                    );
                    out.push(entry(
                        AttentionReason::MilestoneOverdue,
                        detail,
                        Some(m.id),
                        Some(m.due_on),
                        doer(),
                    ));
                } else if left <= i64::from(policy.window(risk)) {
                    let detail = format!(
                        "milestone `{}` of {id} is due {}, in {left} days",
                        m.title, m.due_on
                    );
                    out.push(entry(
                        AttentionReason::DueSoon,
                        detail,
                        Some(m.id),
                        Some(m.due_on),
                        doer(),
                    ));
                }
            }
            if let Some(v) = &item.vendor_dependency {
                let last = v.last_check_in.unwrap_or(item.detected_on);
                let deadline = last + chrono::Days::new(VENDOR_CHECK_IN_DAYS as u64);
                if today >= deadline {
                    let detail = format!(
                        "{id}: no check-in with the vendor of {} since {last}",
                        v.product
                    );
                    out.push(entry(
                        AttentionReason::CheckInLate,
                        detail,
                        None,
                        Some(deadline),
                        owner(),
                    ));
                }
            }
        }
        if let Some(since) = item
            .not_seen_since
            .filter(|_| item.status.is_active() || item.status == ItemStatus::Completed)
        {
            let scan = item
                .not_seen_scan
                .map_or_else(|| "a scan".to_owned(), |s| format!("scan {s}"));
            let detail = format!(
                "{id}: {scan} no longer reports its finding (not seen since {}): verify and close it",
                since.to_rfc3339_opts(SecondsFormat::Secs, true)
            );
            let waiting = if item.status == ItemStatus::Completed {
                approver()
            } else {
                owner()
            };
            out.push(entry(
                AttentionReason::ClosureCandidate,
                detail,
                None,
                Some(since.date_naive()),
                waiting,
            ));
        }
        if let Some(d) = item
            .deviation
            .as_ref()
            .filter(|d| d.status == crate::DeviationStatus::Pending)
        {
            let detail = format!("{id}: the {} deviation request awaits a decision", d.kind);
            out.push(entry(
                AttentionReason::DeviationPending,
                detail,
                None,
                None,
                approver(),
            ));
        }
        if item.status == ItemStatus::Completed {
            let detail = format!("{id} is remediated and awaits verification and closure");
            out.push(entry(
                AttentionReason::AwaitingVerification,
                detail,
                None,
                item.completed_on,
                approver(),
            ));
        }
    }
    out.sort_by(attention_order);
    out
}

/// The attention list's order: by reason, then risk (highest first), then date (none last),
/// then system and display id. Each item's entries depend on that item alone, so lists made a
/// page of items at a time and merged in this order are the whole list's.
pub fn attention_order(a: &Attention, b: &Attention) -> std::cmp::Ordering {
    a.reason
        .cmp(&b.reason)
        .then(b.risk_rating.rank().cmp(&a.risk_rating.rank()))
        .then(
            a.due_on
                .unwrap_or(NaiveDate::MAX)
                .cmp(&b.due_on.unwrap_or(NaiveDate::MAX)),
        )
        .then(a.system_id.cmp(&b.system_id))
        .then(a.display_id.cmp(&b.display_id))
}

/// One e-mail digest: a recipient and the attention entries that wait on them, most urgent
/// first.
#[derive(Debug, Clone, PartialEq)]
pub struct Digest {
    /// The address, lower-cased (one digest per address).
    pub email: String,
    pub name: Option<String>,
    pub entries: Vec<Attention>,
}

/// The addresses an entry goes to: the person it waits on, by their e-mail; an approver's
/// entry to the system's ISSM and alternate ISSM (else its system owner); an entry whose
/// person has no e-mail to the system owner (else the ISSM).
fn addressees(a: &Attention, contacts: Option<&crate::system::Contacts>) -> Vec<(String, String)> {
    let contact = |c: &Option<crate::system::Contact>| {
        c.as_ref()
            .and_then(|c| c.email.as_ref().map(|e| (e.clone(), c.name.clone())))
    };
    if let Some((email, name)) = a
        .waiting_on
        .person
        .as_ref()
        .and_then(|p| p.email.as_ref().map(|e| (e.clone(), p.name.clone())))
    {
        return vec![(email, name)];
    }
    let Some(c) = contacts else {
        return Vec::new();
    };
    let approvers: Vec<(String, String)> = [contact(&c.issm), contact(&c.alternate_issm)]
        .into_iter()
        .flatten()
        .collect();
    let owner = contact(&c.system_owner);
    match a.waiting_on.role {
        WaitingRole::Approver if !approvers.is_empty() => approvers,
        _ => owner
            .or_else(|| approvers.into_iter().next())
            .into_iter()
            .collect(),
    }
}

/// The digests of an attention list (in its order): one per address that something waits on.
/// `contacts_of` gives a system's contacts. Ordered by address.
pub fn digests<'a>(
    entries: &[Attention],
    contacts_of: impl Fn(crate::SystemId) -> Option<&'a crate::system::Contacts>,
) -> Vec<Digest> {
    let mut by: std::collections::BTreeMap<String, Digest> = std::collections::BTreeMap::new();
    for a in entries {
        for (email, name) in addressees(a, contacts_of(a.system_id)) {
            let key = email.trim().to_lowercase();
            if key.is_empty() {
                continue;
            }
            let d = by.entry(key.clone()).or_insert_with(|| Digest {
                email: key,
                name: Some(name),
                entries: Vec::new(),
            });
            if !d.entries.contains(a) {
                d.entries.push(a.clone());
            }
        }
    }
    by.into_values().collect()
}

/// A digest's subject and plain-text body.
pub fn digest_text(d: &Digest, today: NaiveDate) -> (String, String) {
    let n = d.entries.len();
    let subject = format!(
        "POA&M digest {today}: {n} {} waiting on you",
        if n == 1 { "entry" } else { "entries" }
    );
    let mut body = String::new();
    if let Some(name) = &d.name {
        body.push_str(&format!("Hello {name},\n\n"));
    }
    body.push_str(&format!(
        "These POA&M entries wait on you as of {today}, most urgent first:\n\n"
    ));
    for a in &d.entries {
        body.push_str(&format!(
            "- [{}] {} ({} risk): {}\n    {}\n    waiting on: {}{}; system {}, item {}\n",
            a.reason,
            a.display_id,
            a.risk_rating,
            a.title,
            a.detail,
            a.waiting_on.role,
            a.due_on.map_or_else(String::new, |d| format!("; date {d}")),
            a.system_id,
            a.item_id,
        ));
    }
    body.push_str(
        "\nThe same list is at GET /v1/attention. You receive this digest once a day while \
         something waits on you.\n",
    );
    (subject, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap_or(NaiveDate::MIN)
    }

    fn facts() -> Facts {
        Facts {
            system_id: "s1".into(),
            created_on: d(2026, 12, 1),
            last_review_on: None,
            policy: ReminderPolicy::default(),
            items: vec![],
            milestones: vec![],
            conditional_status_date: None,
        }
    }

    fn item(due: NaiveDate, status: ItemStatus) -> ItemFact {
        ItemFact {
            id: "i1".into(),
            display_id: "POAM-0001".into(),
            status,
            risk: RiskRating::High,
            scheduled_completion: Some(due),
            vendor_check_in: None,
            expiry: None,
            deadlines: vec![],
        }
    }

    fn milestone(due: NaiveDate, risk: RiskRating) -> MilestoneFact {
        MilestoneFact {
            id: "m1".into(),
            item_display_id: "POAM-0001".into(),
            title: "Patch".into(),
            status: MilestoneStatus::Planned,
            risk,
            due_on: due,
        }
    }

    /// Until `next_item_check`'s instant, an item's events are those it has now: a scheduler
    /// that looks again only then misses nothing. Checked for items with every kind of timed
    /// event, from every 37 minutes over 70 days (deadlines off the hour), just before the
    /// instant and at points between.
    #[test]
    fn an_item_answers_nothing_new_before_its_next_check() {
        let at = |y, m, day, h, min| {
            d(y, m, day)
                .and_hms_opt(h, min, 0)
                .map(|t| t.and_utc())
                .unwrap_or_default()
        };
        let mut policy = ReminderPolicy::default();
        let mut items = vec![
            item(d(2026, 12, 20), ItemStatus::Open),
            item(d(2026, 12, 20), ItemStatus::Completed),
        ];
        let mut vendor = item(d(2027, 3, 1), ItemStatus::InProgress);
        vendor.vendor_check_in = Some(d(2026, 11, 25));
        items.push(vendor);
        for risk_acceptance in [false, true] {
            let mut x = item(d(2027, 6, 1), ItemStatus::Deferred);
            x.expiry = Some(ExpiryFact {
                risk_acceptance,
                deviation_kind: DeviationKind::OperationalRequirement,
                expires_on: d(2027, 1, 15),
            });
            items.push(x);
        }
        let mut vdr = item(d(2027, 6, 1), ItemStatus::Open);
        vdr.deadlines = vec![
            DeadlineFact {
                kind: DeadlineKind::Evaluation,
                rule: "r1".into(),
                due_at: at(2026, 12, 9, 13, 17),
            },
            DeadlineFact {
                kind: DeadlineKind::Reduction,
                rule: "r2".into(),
                due_at: at(2027, 1, 3, 2, 41),
            },
        ];
        items.push(vdr);
        let item_keys = |t: DateTime<Utc>, i: &ItemFact, p: &ReminderPolicy| {
            due_item_events_at(t, p, std::slice::from_ref(i))
                .into_iter()
                .map(|e| e.key)
                .collect::<std::collections::BTreeSet<_>>()
        };
        let start = at(2026, 12, 1, 0, 0);
        let mut checked = 0;
        for custom in [false, true] {
            if custom {
                policy.expiry_days = Some(vec![45, 10, 1]);
                policy.deadline_hours = Some(vec![200, 24, 1]);
            }
            for i in &items {
                for step in 0..(70 * 24 * 60 / 37) {
                    let now = start + chrono::Duration::minutes(37 * step);
                    let keys_now = item_keys(now, i, &policy);
                    let next = next_item_check(now, &policy, i);
                    let until = next.unwrap_or(now + chrono::Duration::days(90));
                    assert!(until > now);
                    let span = until - now;
                    for t in [
                        until - chrono::Duration::seconds(1),
                        now + span / 2,
                        now + span / 3,
                        now + chrono::Duration::seconds(1),
                    ] {
                        if t > now && t < until {
                            let later = item_keys(t, i, &policy);
                            assert!(
                                later.is_subset(&keys_now),
                                "{} at {now}, next {next:?}: {later:?} at {t} beyond {keys_now:?}",
                                i.id
                            );
                            checked += 1;
                        }
                    }
                }
            }
        }
        assert!(checked > 100_000, "{checked}");
        // And it does come: an open item overdue from the day after its date.
        let open = item(d(2026, 12, 20), ItemStatus::Open);
        assert_eq!(
            next_item_check(start, &ReminderPolicy::default(), &open),
            Some(at(2026, 12, 21, 0, 0))
        );
        // A resolved item without an expiry never needs another look.
        let done = item(d(2026, 12, 20), ItemStatus::Completed);
        assert_eq!(
            next_item_check(start, &ReminderPolicy::default(), &done),
            None
        );
    }

    fn keys(today: NaiveDate, f: &Facts) -> Vec<String> {
        due_events(today, f).into_iter().map(|e| e.key).collect()
    }

    #[test]
    fn an_item_is_overdue_the_day_after_its_date_and_only_while_unresolved() {
        let mut f = facts();
        f.items = vec![item(d(2026, 12, 10), ItemStatus::InProgress)];
        assert!(keys(d(2026, 12, 10), &f).is_empty());
        assert_eq!(
            keys(d(2026, 12, 11), &f),
            vec!["item.overdue:i1:2026-12-10"]
        );
        f.items = vec![item(d(2026, 12, 10), ItemStatus::Completed)];
        assert!(keys(d(2026, 12, 11), &f).is_empty());
    }

    #[test]
    fn milestone_windows_follow_the_risk_and_the_system_policy() {
        let mut f = facts();
        f.milestones = vec![milestone(d(2026, 12, 20), RiskRating::Critical)];
        // Critical: 7 days.
        assert!(keys(d(2026, 12, 12), &f).is_empty());
        assert_eq!(
            keys(d(2026, 12, 13), &f),
            vec!["milestone.due_soon:m1:2026-12-20"]
        );
        // High: 14; others: 30.
        f.milestones = vec![milestone(d(2026, 12, 20), RiskRating::High)];
        assert_eq!(keys(d(2026, 12, 6), &f).len(), 1);
        assert!(keys(d(2026, 12, 5), &f).is_empty());
        f.milestones = vec![milestone(d(2026, 12, 31), RiskRating::Low)];
        assert_eq!(keys(d(2026, 12, 1), &f).len(), 1);
        // A system's own window.
        f.policy.other_days = Some(3);
        assert!(keys(d(2026, 12, 27), &f).is_empty());
        assert_eq!(keys(d(2026, 12, 28), &f).len(), 1);
        // Overdue the day after; finished milestones are quiet.
        assert_eq!(
            keys(d(2027, 1, 1), &f)
                .into_iter()
                .filter(|k| k.starts_with("milestone"))
                .collect::<Vec<_>>(),
            vec!["milestone.overdue:m1:2026-12-31"]
        );
        f.milestones[0].status = MilestoneStatus::Completed;
        assert!(!keys(d(2027, 1, 1), &f)
            .iter()
            .any(|k| k.starts_with("milestone")));
    }

    #[test]
    fn a_vendor_dependency_is_late_after_thirty_days_without_check_in() {
        let mut f = facts();
        let mut i = item(d(2027, 6, 1), ItemStatus::Open);
        i.vendor_check_in = Some(d(2026, 11, 1));
        f.items = vec![i];
        assert!(keys(d(2026, 11, 30), &f).is_empty());
        assert_eq!(
            keys(d(2026, 12, 1), &f),
            vec!["item.check_in_late:i1:2026-11-01"]
        );
    }

    #[test]
    fn cmmc_closeout_reminds_at_thirty_and_seven_days() {
        let mut f = facts();
        // Closeout: 2026-06-01 + 180 days = 2026-11-28.
        f.conditional_status_date = Some(d(2026, 6, 1));
        f.created_on = d(2026, 11, 1);
        let closeout = |today| {
            keys(today, &f)
                .into_iter()
                .filter(|k| k.starts_with("cmmc"))
                .collect::<Vec<_>>()
        };
        assert!(closeout(d(2026, 10, 28)).is_empty());
        assert_eq!(
            closeout(d(2026, 10, 29)),
            vec!["cmmc_assessment.closeout_near:2026-11-28:30"]
        );
        assert_eq!(
            closeout(d(2026, 11, 21)),
            vec!["cmmc_assessment.closeout_near:2026-11-28:7"]
        );
        assert!(closeout(d(2026, 11, 29)).is_empty());
    }

    #[test]
    fn reviews_fall_due_monthly_or_quarterly_after_the_first_period() {
        let mut f = facts();
        f.created_on = d(2026, 11, 15);
        assert!(keys(d(2026, 11, 30), &f).is_empty());
        assert_eq!(keys(d(2026, 12, 1), &f), vec!["system.review_due:2026-12"]);
        f.policy.review = Some(ReviewCadence::Quarterly);
        assert!(keys(d(2026, 12, 1), &f).is_empty());
        assert_eq!(keys(d(2027, 2, 3), &f), vec!["system.review_due:2027-Q1"]);
    }

    #[test]
    fn a_recorded_review_moves_the_next_due_date() {
        let mut f = facts();
        f.created_on = d(2026, 9, 20);
        assert_eq!(keys(d(2026, 12, 2), &f), vec!["system.review_due:2026-12"]);
        // A review in December: none due until January.
        f.last_review_on = Some(d(2026, 12, 1));
        assert!(keys(d(2026, 12, 2), &f).is_empty());
        assert_eq!(
            next_review_due(ReviewCadence::Monthly, d(2026, 12, 1)),
            d(2027, 1, 1)
        );
        assert_eq!(keys(d(2027, 1, 1), &f), vec!["system.review_due:2027-01"]);
        // Quarterly: a review in November covers the fourth quarter.
        f.policy.review = Some(ReviewCadence::Quarterly);
        f.last_review_on = Some(d(2026, 11, 3));
        assert!(keys(d(2026, 12, 30), &f).is_empty());
        assert_eq!(
            next_review_due(ReviewCadence::Quarterly, d(2026, 11, 3)),
            d(2027, 1, 1)
        );
        assert_eq!(keys(d(2027, 1, 5), &f), vec!["system.review_due:2027-Q1"]);
    }

    #[test]
    fn expiries_are_reminded_in_their_windows_then_expire() {
        let mut f = facts();
        let mut i = item(d(2027, 6, 1), ItemStatus::RiskAccepted);
        i.expiry = Some(ExpiryFact {
            risk_acceptance: true,
            deviation_kind: DeviationKind::OperationalRequirement,
            expires_on: d(2027, 3, 31),
        });
        f.items = vec![i];
        f.created_on = d(2027, 3, 1);
        assert!(keys(d(2027, 2, 28), &f).is_empty());
        assert_eq!(
            keys(d(2027, 3, 1), &f),
            vec!["item.expiring:i1:2027-03-31:30"]
        );
        assert_eq!(
            keys(d(2027, 3, 24), &f),
            vec!["item.expiring:i1:2027-03-31:7"]
        );
        assert_eq!(
            keys(d(2027, 3, 31), &f),
            vec!["item.expiring:i1:2027-03-31:7"]
        );
        assert_eq!(
            keys(d(2027, 4, 1), &f),
            vec!["item.expired:i1:2027-03-31", "system.review_due:2027-04"]
        );
        let e = &due_events(d(2027, 3, 24), &f)[0];
        assert!(
            e.reason.contains("risk acceptance of POAM-0001"),
            "{}",
            e.reason
        );
        // The policy's windows are data.
        f.policy.expiry_days = Some(vec![3, 60]);
        assert_eq!(
            keys(d(2027, 2, 1), &f),
            vec!["item.expiring:i1:2027-03-31:60"]
        );
        assert_eq!(
            keys(d(2027, 3, 29), &f),
            vec!["item.expiring:i1:2027-03-31:3"]
        );
        assert!(ReminderPolicy {
            expiry_days: Some(vec![0]),
            ..Default::default()
        }
        .validate()
        .is_err());
        assert!(f.policy.validate().is_ok());
    }

    #[test]
    fn fedramp_deadlines_are_reminded_by_the_hour() {
        let at = |s: &str| {
            DateTime::parse_from_rfc3339(s)
                .map(|t| t.with_timezone(&Utc))
                .unwrap_or_else(|e| panic!("{e}"))
        };
        let mut f = facts();
        let mut i = item(d(2027, 6, 1), ItemStatus::Open);
        i.deadlines = vec![
            DeadlineFact {
                kind: DeadlineKind::Evaluation,
                rule: "fedramp-vdr:VER-TFR-EVU:D:2d".into(),
                due_at: at("2026-12-05T09:00:00Z"),
            },
            DeadlineFact {
                kind: DeadlineKind::Reduction,
                rule: "fedramp-vdr:VDR-TFR-PVR:D:N5:irv_lev:12h".into(),
                due_at: at("2026-12-02T20:00:00Z"),
            },
        ];
        f.items = vec![i];
        let near = |now: &str| {
            due_events_at(at(now), &f)
                .into_iter()
                .map(|e| e.key)
                .collect::<Vec<_>>()
        };
        // 07:59: the 12-hour cell is within 72 hours, not yet 12; the evaluation 73 hours out.
        assert_eq!(
            near("2026-12-02T07:59:00Z"),
            vec!["item.deadline_near:i1:fedramp-vdr:VDR-TFR-PVR:D:N5:irv_lev:12h:2026-12-02T20:00:00Z:72h"]
        );
        // 08:00: the 12-hour cell is due in exactly 12 hours.
        assert_eq!(
            near("2026-12-02T08:00:00Z"),
            vec!["item.deadline_near:i1:fedramp-vdr:VDR-TFR-PVR:D:N5:irv_lev:12h:2026-12-02T20:00:00Z:12h"]
        );
        assert_eq!(
            near("2026-12-02T09:00:00Z"),
            vec![
                "item.deadline_near:i1:fedramp-vdr:VER-TFR-EVU:D:2d:2026-12-05T09:00:00Z:72h",
                "item.deadline_near:i1:fedramp-vdr:VDR-TFR-PVR:D:N5:irv_lev:12h:2026-12-02T20:00:00Z:12h"
            ]
        );
        assert_eq!(
            near("2026-12-02T20:00:00Z")[1],
            "item.deadline_passed:i1:fedramp-vdr:VDR-TFR-PVR:D:N5:irv_lev:12h:2026-12-02T20:00:00Z"
        );
        let e = &due_events_at(at("2026-12-02T20:00:00Z"), &f)[1];
        assert_eq!(e.kind, TimedKind::DeadlinePassed);
        assert_eq!(e.due_at, Some(at("2026-12-02T20:00:00Z")));
    }

    fn stored(display: &str, extra: serde_json::Value, today: NaiveDate) -> crate::Item {
        let mut base = serde_json::json!({
            "title": "t", "description": "d", "risk_rating": "high",
            "detected_on": "2026-10-01", "source": {"kind": "scan"}
        });
        if let (Some(b), serde_json::Value::Object(e)) = (base.as_object_mut(), extra) {
            b.extend(e);
        }
        let f: crate::ItemFields =
            serde_json::from_value(base).unwrap_or_else(|e| panic!("fixture: {e}"));
        let now = chrono::Utc::now();
        crate::Item::assemble(
            crate::ItemMeta {
                id: crate::ItemId::new(),
                display_id: display.into(),
                system_id: crate::SystemId::from_uuid(uuid::Uuid::nil()),
                deadline_rule: None,
                version: 1,
                created_at: now,
                updated_at: now,
                archived_at: None,
                archive_reason: None,
            },
            f,
            today,
        )
    }

    #[test]
    fn attention_is_ordered_by_reason_then_risk_then_date() {
        let today = d(2026, 12, 1);
        let items = vec![
            stored(
                "POAM-0001",
                serde_json::json!({"status": "completed", "completed_on": "2026-11-30"}),
                today,
            ),
            stored(
                "POAM-0002",
                serde_json::json!({"scheduled_completion": "2026-11-29", "risk_rating": "low"}),
                today,
            ),
            stored(
                "POAM-0003",
                serde_json::json!({"scheduled_completion": "2026-11-29", "risk_rating": "critical"}),
                today,
            ),
            stored(
                "POAM-0004",
                serde_json::json!({"scheduled_completion": "2026-10-01", "escalation_contact": {"name": "Boss"}}),
                today,
            ),
            stored(
                "POAM-0005",
                serde_json::json!({"scheduled_completion": "2027-03-01"}),
                today,
            ),
        ];
        let m = OpenMilestone {
            id: crate::MilestoneId::new(),
            item_id: items[4].id,
            title: "Patch".into(),
            due_on: d(2026, 12, 10),
        };
        let policy = ReminderPolicy::default();
        let got: Vec<(AttentionReason, String)> = attention(today, &items, &[m], |_| &policy)
            .into_iter()
            .map(|a| (a.reason, a.display_id))
            .collect();
        assert_eq!(
            got,
            vec![
                (AttentionReason::Escalated, "POAM-0004".to_owned()),
                (AttentionReason::Overdue, "POAM-0003".to_owned()),
                (AttentionReason::Overdue, "POAM-0002".to_owned()),
                (AttentionReason::DueSoon, "POAM-0005".to_owned()),
                (
                    AttentionReason::AwaitingVerification,
                    "POAM-0001".to_owned()
                ),
            ]
        );
        // A narrower window drops the milestone.
        let narrow = ReminderPolicy {
            high_days: Some(5),
            ..Default::default()
        };
        let m2 = OpenMilestone {
            id: crate::MilestoneId::new(),
            item_id: items[4].id,
            title: "Patch".into(),
            due_on: d(2026, 12, 10),
        };
        assert!(!attention(today, &items, &[m2], |_| &narrow)
            .iter()
            .any(|a| a.reason == AttentionReason::DueSoon));
    }

    #[test]
    fn closure_candidates_wait_on_the_owner_or_an_approver_and_digests_group_by_address() {
        let today = d(2026, 12, 1);
        let owner = serde_json::json!({"name": "Dana", "email": "Dana@Example.org"});
        let mut seen = stored(
            "POAM-0001",
            serde_json::json!({"scheduled_completion": "2027-03-01", "owner": owner}),
            today,
        );
        let since = chrono::Utc::now();
        let scan = uuid::Uuid::nil();
        seen.not_seen_since = Some(since);
        seen.not_seen_scan = Some(scan);
        let mut done = stored(
            "POAM-0002",
            serde_json::json!({"status": "completed", "completed_on": "2026-11-30", "owner": owner}),
            today,
        );
        done.not_seen_since = Some(since);
        let late = stored(
            "POAM-0003",
            serde_json::json!({"scheduled_completion": "2026-11-29", "owner": owner}),
            today,
        );
        let policy = ReminderPolicy::default();
        let items = vec![seen, done, late];
        let got = attention(today, &items, &[], |_| &policy);
        let reasons: Vec<(AttentionReason, &str, WaitingRole)> = got
            .iter()
            .map(|a| (a.reason, a.display_id.as_str(), a.waiting_on.role))
            .collect();
        assert_eq!(
            reasons,
            vec![
                (AttentionReason::Overdue, "POAM-0003", WaitingRole::Owner),
                (
                    AttentionReason::ClosureCandidate,
                    "POAM-0001",
                    WaitingRole::Owner
                ),
                (
                    AttentionReason::ClosureCandidate,
                    "POAM-0002",
                    WaitingRole::Approver
                ),
                (
                    AttentionReason::AwaitingVerification,
                    "POAM-0002",
                    WaitingRole::Approver
                ),
            ]
        );
        assert!(
            got[1].detail.contains(&format!("scan {scan}")),
            "{}",
            got[1].detail
        );
        assert!(
            got[1].detail.contains("not seen since"),
            "{}",
            got[1].detail
        );

        let contacts: crate::system::Contacts = serde_json::from_value(serde_json::json!({
            "issm": {"name": "Morgan", "email": "issm@example.org"},
            "system_owner": {"name": "Sam", "email": "sam@example.org"}
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        let ds = digests(&got, |_| Some(&contacts));
        let to: Vec<(&str, Vec<&str>)> = ds
            .iter()
            .map(|d| {
                (
                    d.email.as_str(),
                    d.entries.iter().map(|a| a.display_id.as_str()).collect(),
                )
            })
            .collect();
        assert_eq!(
            to,
            vec![
                ("dana@example.org", vec!["POAM-0003", "POAM-0001"]),
                ("issm@example.org", vec!["POAM-0002", "POAM-0002"]),
            ]
        );
        let (subject, body) = digest_text(&ds[0], today);
        assert!(subject.contains("2 entries"), "{subject}");
        assert!(body.contains("[overdue] POAM-0003"), "{body}");
        assert!(body.contains("[closure_candidate] POAM-0001"), "{body}");
    }
}
