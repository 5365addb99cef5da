//! One home for the rules of changing an item: what a creation may set, what an update may
//! change, which changes are decisions (an approver's), which states are frozen, who may
//! archive what, and who counts as the requester of a decision. Every write path — `POST`,
//! `PATCH`, bulk, every import — asks these functions and gets the same answer with the same
//! rule code; none of them re-spells a rule.

use crate::access::Permission;
use crate::exchange::oscal::MilestoneDraft;
use crate::ids::ReviewId;
use crate::item::{Deviation, Item, ItemFields};
use crate::rules::{check_item, Violation};
use crate::vdr::{Evaluation, Rationale};
use crate::vocab::{DeviationStatus, ItemStatus};
use crate::workflow::{
    Decision, Milestone, MilestoneChange, MilestoneKind, MilestoneStatus, ReviewKind,
};
use chrono::{DateTime, NaiveDate, Utc};

/// Who asks for a change, as the server knows them (never as the request says).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The token subject.
    pub sub: String,
    /// A role grants `Permission::Decide` (approver, admin).
    pub can_decide: bool,
    /// A role grants `Permission::WriteItems` (editor, admin).
    pub can_write: bool,
    /// The admin role: the only one that may migrate statuses in.
    pub is_admin: bool,
}

/// Which path carries the change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// `POST /v1/systems/{id}/items`, `PATCH /v1/items/{id}`.
    Api,
    /// `POST /v1/systems/{id}/items/bulk`.
    Bulk,
    /// A document import (OSCAL, spreadsheets, scanners).
    Import,
}

/// Where a change comes from: its path, and whether an admin asked to migrate the document's
/// statuses and decisions as they stand (`migrate=true`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Origin {
    pub channel: Channel,
    pub migrate: bool,
}

impl Origin {
    pub const API: Origin = Origin {
        channel: Channel::Api,
        migrate: false,
    };
    pub const BULK: Origin = Origin {
        channel: Channel::Bulk,
        migrate: false,
    };
    pub const IMPORT: Origin = Origin {
        channel: Channel::Import,
        migrate: false,
    };
}

/// Why a change is refused, with the HTTP room's status implied by the variant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// 403: the caller's roles do not allow this change.
    Forbidden(Violation),
    /// 422: the content breaks rules.
    Invalid(Vec<Violation>),
    /// 409: the item's state does not allow the change now.
    Conflict(Violation),
}

impl From<Vec<Violation>> for Refusal {
    fn from(v: Vec<Violation>) -> Self {
        Refusal::Invalid(v)
    }
}

/// An admitted change: the fields to store, and what was set aside or adjusted on the way
/// (an import's status when not migrating, a deviation returned to pending). Notes are never
/// silent: each path reports them with the element.
#[derive(Debug, Clone, PartialEq)]
pub struct Admitted {
    pub fields: ItemFields,
    pub notes: Vec<Violation>,
    /// The change carries statuses or decisions in as they stand (an admin's migration): the
    /// history records it as `migrated`.
    pub migrated: bool,
}

/// Normalises a token subject for comparisons: trimmed, lower-cased.
pub fn subject_key(s: &str) -> String {
    s.trim().to_lowercase()
}

/// A deviation whose status is an approver's decision (approved or rejected).
pub fn deviation_decided(d: &Deviation) -> bool {
    d.status != DeviationStatus::Pending
}

/// Whether these fields carry a decision: a decided status (closed, risk accepted) or a decided
/// deviation.
pub fn carries_decision(f: &ItemFields) -> bool {
    f.status.is_decision() || f.deviation.as_ref().is_some_and(deviation_decided)
}

/// Items in these statuses are frozen: only `comments` may change; anything else needs the
/// item reopened through a transition first.
pub fn is_frozen(status: ItemStatus) -> bool {
    matches!(status, ItemStatus::Closed | ItemStatus::RiskAccepted)
}

fn forbidden_decision(pointer: &str) -> Refusal {
    Refusal::Forbidden(Violation::new(
        "decision_needs_approver",
        pointer,
        "closing, accepting a risk, or approving or rejecting a deviation is an approver's decision",
    ))
}

fn note(code: &'static str, pointer: &str, message: impl Into<String>) -> Violation {
    Violation::new(code, pointer, message)
}

/// Only an admin migrates, and only through bulk and imports.
pub fn check_migrate(caller: &Caller, origin: Origin) -> Result<(), Refusal> {
    if origin.migrate && (!caller.is_admin || origin.channel == Channel::Api) {
        return Err(Refusal::Forbidden(Violation::new(
            "migrate_needs_admin",
            "",
            "migrate=true (statuses and decisions taken as they stand) is an admin's, on bulk and imports only",
        )));
    }
    Ok(())
}

/// The dates only the completed and closed transitions set.
fn transition_dates(f: &ItemFields) -> [(&'static str, Option<NaiveDate>); 2] {
    [
        ("/completed_on", f.completed_on),
        ("/closed_on", f.closed_on),
    ]
}

/// Refuses, by name, each transition date a request set: only the completed and closed
/// transitions set them.
fn refuse_set_dates(set: impl IntoIterator<Item = (&'static str, bool)>) -> Result<(), Refusal> {
    let dates: Vec<Violation> = set
        .into_iter()
        .filter(|(_, set)| *set)
        .map(|(p, _)| {
            Violation::new(
                "set_by_transition",
                p,
                "set by the completed and closed transitions",
            )
        })
        .collect();
    if dates.is_empty() {
        Ok(())
    } else {
        Err(Refusal::Invalid(dates))
    }
}

/// Decides a new item. Outside a migration it starts `open`, without completion or closure
/// dates (those come from transitions): the API and bulk refuse them by name, an import sets
/// them aside and says so. A decided deviation is an approver's (an import outside a migration
/// takes it in as `pending`).
pub fn create(
    mut f: ItemFields,
    caller: &Caller,
    origin: Origin,
    today: NaiveDate,
) -> Result<Admitted, Refusal> {
    check_migrate(caller, origin)?;
    let mut notes = Vec::new();
    if !origin.migrate {
        if origin.channel == Channel::Import {
            if f.status != ItemStatus::Open {
                notes.push(note(
                    "status_not_imported",
                    "/status",
                    format!(
                        "the document's status `{}` was not taken: imported items start open (an admin may import statuses with migrate=true)",
                        f.status
                    ),
                ));
                f.status = ItemStatus::Open;
            }
            for (pointer, date) in transition_dates(&f) {
                if date.is_some() {
                    notes.push(note(
                        "date_not_imported",
                        pointer,
                        "set by the completed and closed transitions, not by an import (an admin may import it with migrate=true)",
                    ));
                }
            }
            f.completed_on = None;
            f.closed_on = None;
            if let Some(d) = f.deviation.as_mut().filter(|d| deviation_decided(d)) {
                notes.push(note(
                    "deviation_pending",
                    "/deviation/status",
                    format!(
                        "the document's deviation status `{}` was taken in as pending: an approver decides it",
                        d.status
                    ),
                ));
                d.status = DeviationStatus::Pending;
            }
        } else {
            if f.status != ItemStatus::Open {
                return Err(Refusal::Invalid(vec![Violation::new(
                    "status_via_transition",
                    "/status",
                    "an item starts open; its status changes through POST /v1/items/{id}/transitions",
                )]));
            }
            refuse_set_dates(transition_dates(&f).map(|(p, d)| (p, d.is_some())))?;
            if f.deviation.as_ref().is_some_and(deviation_decided) && !caller.can_decide {
                return Err(forbidden_decision("/deviation/status"));
            }
        }
        settle_evaluation(None, &mut f.evaluation, caller, origin, None, &mut notes)?;
    }
    check_evaluation(&f, today)?;
    let fields = check_item(f, today)?;
    Ok(Admitted {
        fields,
        notes,
        migrated: origin.migrate,
    })
}

/// The names of the top-level fields that differ between two versions of an item's content.
pub fn changed_fields(a: &ItemFields, b: &ItemFields) -> Vec<String> {
    let (Ok(serde_json::Value::Object(a)), Ok(serde_json::Value::Object(b))) =
        (serde_json::to_value(a), serde_json::to_value(b))
    else {
        return Vec::new();
    };
    let mut names: Vec<String> = a
        .iter()
        .filter(|(k, v)| b.get(*k) != Some(*v))
        .map(|(k, _)| k.clone())
        .collect();
    names.extend(b.keys().filter(|k| !a.contains_key(*k)).cloned());
    names
}

/// Decides an update of `current` to `next` (the patched or imported content).
///
/// - Status and its transition dates change only through transitions (outside a migration the
///   API and bulk refuse it by name; an import keeps the item's own and says so).
/// - A `closed` or `risk_accepted` item is frozen except for `comments`.
/// - Decisions stay decided: setting a deviation to approved or rejected, or removing a decided
///   one, is an approver's; an editor's change to a decided deviation's content returns it to
///   `pending` (the approval covered the content that was approved), and says so.
pub fn update(
    current: &Item,
    next: ItemFields,
    caller: &Caller,
    origin: Origin,
    today: NaiveDate,
) -> Result<Admitted, Refusal> {
    update_decided(current, next, caller, origin, today, None)
}

/// When, and through which review, a write records the decisions it carries (an acceptance's
/// `decided_at` and `review_id`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decided {
    pub at: DateTime<Utc>,
    /// The `vulnerability_acceptance` review that makes the change (none for a `PATCH`).
    pub review: Option<ReviewId>,
}

/// [`update`], with the moment (and the review) the decisions it carries are recorded at:
/// `PATCH` and a `vulnerability_acceptance` review go through this one rule.
pub fn update_decided(
    current: &Item,
    mut next: ItemFields,
    caller: &Caller,
    origin: Origin,
    today: NaiveDate,
    decided: Option<&Decided>,
) -> Result<Admitted, Refusal> {
    check_migrate(caller, origin)?;
    let mut notes = Vec::new();
    let before = current.fields();
    if !origin.migrate {
        let moved: Vec<(&'static str, bool)> = vec![
            ("/status", next.status != current.status),
            ("/completed_on", next.completed_on != current.completed_on),
            ("/closed_on", next.closed_on != current.closed_on),
        ];
        if origin.channel == Channel::Import {
            for (pointer, differs) in &moved {
                if *differs {
                    notes.push(note(
                        if *pointer == "/status" {
                            "status_not_imported"
                        } else {
                            "date_not_imported"
                        },
                        pointer,
                        "kept as the item has it: statuses and their dates change through transitions (an admin may import them with migrate=true)",
                    ));
                }
            }
            next.status = current.status;
            next.completed_on = current.completed_on;
            next.closed_on = current.closed_on;
        } else if moved[0].1 {
            return Err(Refusal::Invalid(vec![Violation::new(
                "status_via_transition",
                "/status",
                "the status changes through POST /v1/items/{id}/transitions, where its rules are checked",
            )]));
        } else {
            refuse_set_dates(moved[1..].iter().copied())?;
        }
        if is_frozen(current.status) {
            let changed: Vec<String> = changed_fields(&before, &next)
                .into_iter()
                .filter(|f| f != "comments")
                .collect();
            if !changed.is_empty() {
                return Err(Refusal::Conflict(Violation::new(
                    "item_frozen",
                    format!("/{}", changed[0]),
                    format!(
                        "the item is {}: only comments may change ({} would); reopen it through POST /v1/items/{{id}}/transitions first",
                        current.status,
                        changed.join(", ")
                    ),
                )));
            }
        }
        settle_deviation(
            before.deviation.as_ref(),
            &mut next.deviation,
            caller,
            origin,
            &mut notes,
        )?;
        settle_evaluation(
            before.evaluation.as_ref(),
            &mut next.evaluation,
            caller,
            origin,
            decided,
            &mut notes,
        )?;
    }
    check_evaluation(&next, today)?;
    let fields = check_item(next, today)?;
    Ok(Admitted {
        fields,
        notes,
        migrated: origin.migrate,
    })
}

fn settle_deviation(
    before: Option<&Deviation>,
    next: &mut Option<Deviation>,
    caller: &Caller,
    origin: Origin,
    notes: &mut Vec<Violation>,
) -> Result<(), Refusal> {
    if caller.can_decide || before == next.as_ref() {
        return Ok(());
    }
    let was_decided = before.is_some_and(deviation_decided);
    match next.as_mut() {
        None if was_decided => Err(forbidden_decision("/deviation")),
        None => Ok(()),
        Some(d) if !deviation_decided(d) => Ok(()),
        Some(d) => {
            let same_decision = before.is_some_and(|b| b.status == d.status);
            if same_decision || origin.channel == Channel::Import {
                // The content moved under a decision (or an import carries one): the decision
                // no longer covers it.
                notes.push(note(
                    "deviation_returned_to_pending",
                    "/deviation/status",
                    format!(
                        "the deviation was {} for other content: changed, it is pending again until an approver decides",
                        d.status
                    ),
                ));
                d.status = DeviationStatus::Pending;
                Ok(())
            } else {
                Err(forbidden_decision("/deviation/status"))
            }
        }
    }
}

/// The evaluation's own consistency (FedRAMP 2026, [`crate::vdr::check`]), on every path.
fn check_evaluation(f: &ItemFields, today: NaiveDate) -> Result<(), Refusal> {
    let bad = f
        .evaluation
        .as_ref()
        .map(|e| crate::vdr::check(e, today))
        .unwrap_or_default();
    if bad.is_empty() {
        Ok(())
    } else {
        Err(Refusal::Invalid(bad))
    }
}

/// The write rules of an item's FedRAMP 2026 evaluation (outside a migration):
///
/// - Accepting a vulnerability the provider does not intend to fix (FRD-ACV), changing or
///   withdrawing that acceptance is an approver's decision; an import keeps the item's own.
///   A new or changed acceptance records its approver (`decided_by`), its moment
///   (`decided_at`, when the path knows it: `decided`) and the review it came from
///   (`review_id`, only through a `vulnerability_acceptance` review), whatever the request
///   says for these.
/// - The recorded reductions are append-only: a step once recorded is neither changed nor
///   removed (an import keeps the item's), and a new step starts from the current rating.
/// - A lower N-rating is a reduction: it comes with its recorded step (time, new rating, what
///   was done). A higher one is a re-evaluation and needs none.
pub fn settle_evaluation(
    before: Option<&Evaluation>,
    next: &mut Option<Evaluation>,
    caller: &Caller,
    origin: Origin,
    decided: Option<&Decided>,
    notes: &mut Vec<Violation>,
) -> Result<(), Refusal> {
    let import = origin.channel == Channel::Import;
    let before_accepted = before.and_then(|e| e.accepted.as_ref());
    let changed = before_accepted != next.as_ref().and_then(|e| e.accepted.as_ref());
    if caller.can_decide && changed {
        if let Some(a) = next.as_mut().and_then(|e| e.accepted.as_mut()) {
            a.decided_by = Some(caller.sub.clone());
            a.decided_at = decided.map(|d| d.at);
            a.review_id = decided.and_then(|d| d.review);
        }
    }
    if !caller.can_decide && changed {
        if !import {
            return Err(forbidden_decision("/evaluation/accepted"));
        }
        notes.push(note(
            "acceptance_not_imported",
            "/evaluation/accepted",
            "accepting a vulnerability (FRD-ACV) is an approver's decision: the item's own was kept",
        ));
        if let Some(e) = next.as_mut() {
            e.accepted = before_accepted.cloned();
        }
    }
    let (Some(before), Some(e)) = (before, next.as_mut()) else {
        return Ok(());
    };
    let kept = before.reductions.len();
    if e.reductions.get(..kept) != Some(&before.reductions[..]) {
        if !import {
            return Err(Refusal::Invalid(vec![Violation::new(
                "reduction_history_rewritten",
                "/evaluation/reductions",
                "recorded reductions are kept as they are: send them unchanged and append the new step",
            )]));
        }
        notes.push(note(
            "reduction_history_kept",
            "/evaluation/reductions",
            "the item's recorded reductions were kept: they are append-only",
        ));
        e.reductions = before.reductions.clone();
        e.agency_impact = before.agency_impact;
        return Ok(());
    }
    if let (Some(step), Some(current)) = (e.reductions.get(kept), before.agency_impact) {
        if step.from != current {
            return Err(Refusal::Invalid(vec![Violation::new(
                "reduction_from_mismatch",
                format!("/evaluation/reductions/{kept}/from"),
                format!("a new reduction starts from the current N-rating ({current})"),
            )]));
        }
    }
    if let (Some(was), Some(now)) = (before.agency_impact, e.agency_impact) {
        if now < was && e.reductions.len() == kept {
            return Err(Refusal::Invalid(vec![Violation::new(
                "reduction_needs_step",
                "/evaluation/reductions",
                format!(
                    "lowering the N-rating from {was} to {now} is a reduction: append its step (at, from, to, action) to reductions"
                ),
            )]));
        }
    }
    Ok(())
}

/// What an approver's `vulnerability_acceptance` review (`review`, recorded `at`) does to the
/// item (FRD-ACV), through the same rule as a `PATCH` of `evaluation.accepted`
/// ([`update_decided`]): `None` when it changes nothing.
///
/// - `approved`: the item's `evaluation.accepted` becomes the review's explanation (`notes`,
///   required), with its approver, moment and review; a later acceptance replaces an earlier
///   one. The item needs its evaluation (detection) first.
/// - `rejected`: withdraws an acceptance an earlier acceptance review set. An acceptance set
///   by a `PATCH` is not the review's to withdraw: refused (409), never passed over in
///   silence; withdraw it with a `PATCH` of `evaluation.accepted` to null.
/// - other decisions record the review only.
#[allow(clippy::too_many_arguments)]
pub fn vulnerability_acceptance(
    current: &Item,
    decision: Decision,
    notes: Option<&str>,
    caller: &Caller,
    review: ReviewId,
    at: DateTime<Utc>,
    today: NaiveDate,
) -> Result<Option<Admitted>, Refusal> {
    let mut next = current.fields();
    let accepted = match decision {
        Decision::Approved => {
            let Some(why) = notes.map(str::trim).filter(|n| !n.is_empty()) else {
                return Err(Refusal::Invalid(vec![Violation::new(
                    "notes_required",
                    "/notes",
                    "an approved vulnerability_acceptance carries the explanation of why the vulnerability is accepted (VER-RPT-AVI item 7) in notes",
                )]));
            };
            Some(Rationale {
                rationale: why.to_owned(),
                decided_by: Some(caller.sub.clone()),
                decided_at: Some(at),
                review_id: Some(review),
            })
        }
        Decision::Rejected => {
            match current
                .evaluation
                .as_ref()
                .and_then(|e| e.accepted.as_ref())
            {
                None => return Ok(None),
                Some(a) if a.review_id.is_none() => {
                    return Err(Refusal::Conflict(Violation::new(
                        "acceptance_not_from_review",
                        "/decision",
                        "the item's acceptance was set directly (PATCH of evaluation.accepted), not by a vulnerability_acceptance review: withdraw it with a PATCH of evaluation.accepted to null",
                    )));
                }
                Some(_) => None,
            }
        }
        Decision::ChangesRequested | Decision::Noted => return Ok(None),
    };
    let Some(e) = next.evaluation.as_mut() else {
        return Err(Refusal::Conflict(Violation::new(
            "evaluation_required",
            "/kind",
            "the item has no FedRAMP 2026 evaluation: record its detection (evaluation.detected_at, detection_source) first",
        )));
    };
    e.accepted = accepted;
    let decided = Decided {
        at,
        review: Some(review),
    };
    update_decided(current, next, caller, Origin::API, today, Some(&decided)).map(Some)
}

/// Decides an archive: a resolved item (completed, closed, risk accepted) may be archived by an
/// editor or an approver; an unresolved one (open, in progress, deferred) only by an approver,
/// with a reason — archiving it takes an open weakness out of every report.
pub fn archive(current: &Item, caller: &Caller, reason: Option<&str>) -> Result<(), Refusal> {
    let reason = reason.map(str::trim).filter(|r| !r.is_empty());
    if current.status.is_active() {
        if !caller.can_decide {
            return Err(Refusal::Forbidden(Violation::new(
                "archive_needs_approver",
                "",
                format!(
                    "the item is {}: archiving an unresolved item takes it out of every report, so it is an approver's decision",
                    current.status
                ),
            )));
        }
        if reason.is_none() {
            return Err(Refusal::Invalid(vec![Violation::new(
                "reason_required",
                "/reason",
                "archiving an unresolved item needs the reason (DELETE …?reason=… or a JSON body {\"reason\": …})",
            )]));
        }
    } else if !caller.can_write && !caller.can_decide {
        return Err(Refusal::Forbidden(Violation::new(
            "forbidden",
            "",
            "archiving an item needs the editor or approver role",
        )));
    }
    if reason.is_some_and(|r| r.chars().count() > crate::limits::NARRATIVE as usize) {
        return Err(Refusal::Invalid(vec![Violation::new(
            "invalid_length",
            "/reason",
            "must have at most 2000 characters",
        )]));
    }
    Ok(())
}

/// The permissions, any one of which allows a transition to `to`: a decision (closed, risk
/// accepted) is an approver's, work is an editor's.
pub fn transition_permissions(to: ItemStatus) -> &'static [Permission] {
    if crate::lifecycle::is_decision(to) {
        &[Permission::Decide]
    } else {
        &[Permission::WriteItems]
    }
}

/// The permissions, any one of which allows recording a review of `kind`: approvals are an
/// approver's; a periodic review may be recorded by an editor or an approver.
pub fn review_permissions(kind: ReviewKind) -> &'static [Permission] {
    if kind.is_approval() {
        &[Permission::Decide]
    } else {
        &[Permission::WriteItems, Permission::Decide]
    }
}

/// The permissions, any one of which lets a caller ask for an archive or a transition (which one
/// the change itself needs is [`archive`]'s and [`transition_permissions`]' to say).
pub const EDIT_OR_DECIDE: &[Permission] = &[Permission::WriteItems, Permission::Decide];

/// What an import stores for one milestone of a document.
#[derive(Debug, Clone, PartialEq)]
pub struct MilestoneImport {
    pub title: String,
    pub description: Option<String>,
    pub due_on: NaiveDate,
    pub status: MilestoneStatus,
    pub completed_on: Option<NaiveDate>,
    pub kind: MilestoneKind,
    /// 0–100.
    pub percent_complete: i32,
    /// The milestone's due-date moves, the import's own appended.
    pub changes: Vec<MilestoneChange>,
}

/// Decides an imported milestone against the one it matches (if any). Outside a migration a
/// new milestone starts `planned` and an existing one keeps its status (milestones complete and
/// cancel through their own operations, where their rules are checked); a due-date move is
/// recorded as a milestone change with the import as its reason. `None`: nothing changes.
#[allow(clippy::too_many_arguments)]
pub fn import_milestone(
    existing: Option<&Milestone>,
    draft: &MilestoneDraft,
    migrate: bool,
    reason: &str,
    by: &str,
    at: DateTime<Utc>,
    pointer: &str,
    notes: &mut Vec<Violation>,
) -> Option<MilestoneImport> {
    let (status, completed_on) = match existing {
        _ if migrate => (draft.status, draft.completed_on),
        Some(m) => (m.status, m.completed_on),
        None => (MilestoneStatus::Planned, None),
    };
    if !migrate && (status != draft.status || completed_on != draft.completed_on) {
        notes.push(Violation::new(
            "milestone_status_not_imported",
            format!("{pointer}/status"),
            format!(
                "the document's milestone status `{}` was not taken (kept `{status}`): milestones complete and cancel through their own operations (an admin may import statuses with migrate=true)",
                draft.status
            ),
        ));
    }
    let mut changes = existing.map(|m| m.changes.clone()).unwrap_or_default();
    if let Some(m) = existing.filter(|m| m.due_on != draft.due_on) {
        changes.push(MilestoneChange {
            from: m.due_on,
            to: draft.due_on,
            reason: reason.to_owned(),
            by: by.to_owned(),
            at,
        });
        notes.push(Violation::new(
            "milestone_moved",
            format!("{pointer}/due_on"),
            format!(
                "the milestone moved from {} to {}: recorded as a milestone change ({reason})",
                m.due_on, draft.due_on
            ),
        ));
    }
    let kind = draft
        .kind
        .or(existing.map(|m| m.kind))
        .unwrap_or(MilestoneKind::Other);
    let percent_complete = draft
        .percent_complete
        .or(existing.map(|m| m.percent_complete))
        .unwrap_or(0)
        .clamp(0, 100);
    let next = MilestoneImport {
        title: draft.title.clone(),
        description: draft.description.clone(),
        due_on: draft.due_on,
        status,
        completed_on,
        kind,
        percent_complete,
        changes,
    };
    match existing {
        Some(m)
            if m.title == next.title
                && m.description == next.description
                && m.due_on == next.due_on
                && m.status == next.status
                && m.completed_on == next.completed_on
                && m.kind == next.kind
                && (m.percent_complete == next.percent_complete
                    || m.status == MilestoneStatus::Completed) =>
        {
            None
        }
        _ => Some(next),
    }
}

/// The due-date changes a spreadsheet records for an imported milestone (FedRAMP's Milestone
/// Changes): a new milestone starts with the sheet's record of its moves; for an existing one,
/// the sheet's own record of the move this import makes stands for the import's generic entry
/// (same dates), and what the milestone already recorded stays as it is.
pub fn sheet_milestone_history(
    existing: Option<&Milestone>,
    next: &mut MilestoneImport,
    recorded: &[MilestoneChange],
) {
    match existing {
        None => {
            let own = std::mem::take(&mut next.changes);
            next.changes = recorded.to_vec();
            next.changes.extend(own);
        }
        Some(m) => {
            if next.changes.len() > m.changes.len() {
                if let Some(last) = next.changes.last_mut() {
                    if let Some(rec) = recorded
                        .iter()
                        .rev()
                        .find(|c| c.from == last.from && c.to == last.to && !m.changes.contains(c))
                    {
                        *last = rec.clone();
                    }
                }
            }
        }
    }
}

/// One event of an item's story, as separation of duties reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoryEvent {
    /// `item` or `milestone`.
    pub resource_kind: String,
    /// `created`, `updated`, `transitioned`, `imported`, …
    pub action: String,
    pub actor: String,
    /// Names of the top-level fields it changed.
    pub fields: Vec<String>,
    /// For a transition: the status it led to.
    pub to_status: Option<ItemStatus>,
}

/// Who asked for the decision a review of `kind` makes, derived from the item's story (newest
/// event first), never from the request:
///
/// - `deviation`: whoever last set or changed the item's deviation;
/// - `risk_acceptance`: whoever last set the residual-risk justification, or the deviation;
/// - `closure_verification`: whoever last marked the item completed;
/// - `extension`: whoever last moved the item's schedule (its scheduled completion, a deferral)
///   or last created or changed one of its milestones;
/// - `approval`: whoever last changed the item's content;
/// - `periodic`: nobody (it is not a decision); `dss_determination` and
///   `vulnerability_acceptance`: nobody (recorded, not requested through the item).
///
/// Subjects come back normalised ([`subject_key`]).
pub fn requesters(kind: ReviewKind, story: &[StoryEvent]) -> Vec<String> {
    let item_change = |e: &&StoryEvent, names: &[&str]| {
        e.resource_kind == "item" && e.fields.iter().any(|f| names.contains(&f.as_str()))
    };
    let found = match kind {
        // DSS's determination is recorded, not requested of the approver; nothing in an
        // item asks for a vulnerability's acceptance (`requested_by` still refuses more).
        ReviewKind::Periodic
        | ReviewKind::DssDetermination
        | ReviewKind::VulnerabilityAcceptance => None,
        ReviewKind::Deviation => story.iter().find(|e| item_change(e, &["deviation"])),
        ReviewKind::RiskAcceptance => story
            .iter()
            .find(|e| item_change(e, &["residual_risk", "deviation"])),
        ReviewKind::ClosureVerification => story
            .iter()
            .find(|e| e.resource_kind == "item" && e.to_status == Some(ItemStatus::Completed)),
        ReviewKind::Extension => story.iter().find(|e| {
            e.resource_kind == "milestone"
                || item_change(e, &["scheduled_completion"])
                || (e.resource_kind == "item" && e.to_status == Some(ItemStatus::Deferred))
        }),
        ReviewKind::Approval => story
            .iter()
            .find(|e| e.resource_kind == "item" && !e.fields.is_empty()),
    };
    found
        .map(|e| vec![subject_key(&e.actor)])
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{ItemId, SystemId};
    use crate::item::ItemMeta;
    use crate::vocab::{DeviationKind, RiskRating};

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap_or_default()
    }

    fn fields() -> ItemFields {
        serde_json::from_value(serde_json::json!({
            "title": "TLS 1.0", "description": "Old TLS.", "risk_rating": "high",
            "detected_on": "2026-10-01", "source": {"kind": "scan"}
        }))
        .unwrap_or_else(|e| panic!("fixture: {e}"))
    }

    fn item(status: ItemStatus, f: ItemFields) -> Item {
        let now = chrono::Utc::now();
        let mut f = f;
        f.status = status;
        Item::assemble(
            ItemMeta {
                id: ItemId::from_uuid(uuid::Uuid::nil()),
                display_id: "POAM-0001".into(),
                system_id: SystemId::from_uuid(uuid::Uuid::nil()),
                deadline_rule: None,
                version: 1,
                created_at: now,
                updated_at: now,
                archived_at: None,
                archive_reason: None,
            },
            f,
            d("2026-11-22"),
        )
    }

    fn editor() -> Caller {
        Caller {
            sub: "ed@example.org".into(),
            can_decide: false,
            can_write: true,
            is_admin: false,
        }
    }

    fn approver() -> Caller {
        Caller {
            sub: "ap@example.org".into(),
            can_decide: true,
            can_write: false,
            is_admin: false,
        }
    }

    fn admin() -> Caller {
        Caller {
            sub: "root".into(),
            can_decide: true,
            can_write: true,
            is_admin: true,
        }
    }

    fn deviation(status: DeviationStatus, rationale: &str) -> Option<Deviation> {
        Some(Deviation {
            kind: DeviationKind::FalsePositive,
            status,
            rationale: rationale.into(),
            expires_on: None,
        })
    }

    fn code(r: Result<Admitted, Refusal>) -> &'static str {
        match r {
            Ok(_) => "ok",
            Err(Refusal::Forbidden(v) | Refusal::Conflict(v)) => v.code,
            Err(Refusal::Invalid(v)) => v.first().map(|v| v.code).unwrap_or("none"),
        }
    }

    const TODAY: &str = "2026-11-22";

    #[test]
    fn a_creation_starts_open_everywhere_but_a_migration() {
        let mut f = fields();
        f.status = ItemStatus::Completed;
        f.completed_on = Some(d("2026-11-01"));
        for origin in [Origin::API, Origin::BULK] {
            assert_eq!(
                code(create(f.clone(), &admin(), origin, d(TODAY))),
                "status_via_transition"
            );
        }
        let imported = create(f.clone(), &editor(), Origin::IMPORT, d(TODAY));
        let Ok(a) = imported else {
            panic!("import refused: {imported:?}")
        };
        assert_eq!(a.fields.status, ItemStatus::Open);
        assert_eq!(a.fields.completed_on, None);
        assert_eq!(
            a.notes.iter().map(|n| n.code).collect::<Vec<_>>(),
            vec!["status_not_imported", "date_not_imported"]
        );
        let migrate = Origin {
            channel: Channel::Import,
            migrate: true,
        };
        assert_eq!(
            code(create(f.clone(), &editor(), migrate, d(TODAY))),
            "migrate_needs_admin"
        );
        let m = create(f, &admin(), migrate, d(TODAY));
        assert!(m
            .as_ref()
            .is_ok_and(|a| a.migrated && a.fields.status == ItemStatus::Completed));
    }

    #[test]
    fn decided_deviations_are_an_approvers_on_every_path() {
        let mut f = fields();
        f.deviation = deviation(DeviationStatus::Approved, "scanner misfire");
        assert_eq!(
            code(create(f.clone(), &editor(), Origin::API, d(TODAY))),
            "decision_needs_approver"
        );
        assert_eq!(
            code(create(f.clone(), &editor(), Origin::BULK, d(TODAY))),
            "decision_needs_approver"
        );
        assert!(create(f.clone(), &admin(), Origin::API, d(TODAY)).is_ok());
        let imported = create(f, &editor(), Origin::IMPORT, d(TODAY));
        assert!(imported.is_ok_and(|a| a
            .fields
            .deviation
            .is_some_and(|d| d.status == DeviationStatus::Pending)));
    }

    #[test]
    fn decisions_stay_decided() {
        let mut f = fields();
        f.deviation = deviation(DeviationStatus::Approved, "scanner misfire");
        let current = item(ItemStatus::Open, f.clone());
        // An editor rewrites the approved rationale: back to pending, and said so.
        let mut next = f.clone();
        next.deviation = deviation(DeviationStatus::Approved, "something else entirely");
        for origin in [Origin::API, Origin::BULK, Origin::IMPORT] {
            let r = update(&current, next.clone(), &editor(), origin, d(TODAY));
            let Ok(a) = r else { panic!("{r:?}") };
            assert_eq!(
                a.fields.deviation.map(|d| d.status),
                Some(DeviationStatus::Pending)
            );
            assert_eq!(a.notes[0].code, "deviation_returned_to_pending");
        }
        // An approver (admin) keeps the decision.
        let kept = update(&current, next.clone(), &admin(), Origin::API, d(TODAY));
        assert!(kept.is_ok_and(|a| a
            .fields
            .deviation
            .is_some_and(|d| d.status == DeviationStatus::Approved)));
        // An editor may not remove it, nor decide a pending one.
        let mut removed = f.clone();
        removed.deviation = None;
        assert_eq!(
            code(update(&current, removed, &editor(), Origin::API, d(TODAY))),
            "decision_needs_approver"
        );
        let mut pending = f.clone();
        pending.deviation = deviation(DeviationStatus::Pending, "scanner misfire");
        let current = item(ItemStatus::Open, pending.clone());
        let mut approve = pending;
        approve.deviation = deviation(DeviationStatus::Approved, "scanner misfire");
        assert_eq!(
            code(update(&current, approve, &editor(), Origin::BULK, d(TODAY))),
            "decision_needs_approver"
        );
    }

    #[test]
    fn closed_and_accepted_items_are_frozen_but_for_comments() {
        for status in [ItemStatus::Closed, ItemStatus::RiskAccepted] {
            let mut f = fields();
            f.residual_risk = Some("low".into());
            let current = item(status, f.clone());
            let mut next = current.fields();
            next.title = "renamed".into();
            next.risk_rating = RiskRating::Low;
            let r = update(&current, next, &admin(), Origin::API, d(TODAY));
            assert_eq!(code(r), "item_frozen", "{status}");
            let mut next = current.fields();
            next.comments = Some("note".into());
            assert!(update(&current, next, &editor(), Origin::API, d(TODAY)).is_ok());
        }
    }

    #[test]
    fn status_moves_only_through_transitions() {
        let current = item(ItemStatus::Completed, fields());
        let mut next = current.fields();
        next.status = ItemStatus::InProgress;
        assert_eq!(
            code(update(
                &current,
                next.clone(),
                &admin(),
                Origin::BULK,
                d(TODAY)
            )),
            "status_via_transition"
        );
        let r = update(&current, next, &editor(), Origin::IMPORT, d(TODAY));
        assert!(r.is_ok_and(|a| a.fields.status == ItemStatus::Completed
            && a.notes[0].code == "status_not_imported"));
    }

    #[test]
    fn archiving_an_unresolved_item_is_an_approvers_with_a_reason() {
        let open = item(ItemStatus::Open, fields());
        let refused = |r: Result<(), Refusal>| match r {
            Ok(()) => "ok",
            Err(Refusal::Forbidden(v) | Refusal::Conflict(v)) => v.code,
            Err(Refusal::Invalid(v)) => v[0].code,
        };
        assert_eq!(
            refused(archive(&open, &editor(), Some("dup"))),
            "archive_needs_approver"
        );
        assert_eq!(
            refused(archive(&open, &approver(), Some("  "))),
            "reason_required"
        );
        assert_eq!(
            refused(archive(&open, &approver(), Some("duplicate of POAM-0002"))),
            "ok"
        );
        let done = item(ItemStatus::Closed, fields());
        assert_eq!(refused(archive(&done, &editor(), None)), "ok");
    }

    fn evaluated(f: &mut ItemFields, extra: serde_json::Value) {
        let mut e = serde_json::json!({
            "detected_at": "2026-10-01T08:00:00Z", "detection_source": "scanner",
            "evaluated_at": "2026-10-02T08:00:00Z", "internet_reachable": true,
            "likely_exploitable": true, "agency_impact": "N4"
        });
        if let (Some(e), serde_json::Value::Object(x)) = (e.as_object_mut(), extra) {
            e.extend(x);
        }
        f.evaluation = Some(serde_json::from_value(e).unwrap_or_else(|e| panic!("{e}")));
    }

    #[test]
    fn evaluations_obey_the_same_rules_on_every_path() {
        let mut f = fields();
        evaluated(&mut f, serde_json::json!({}));
        let current = item(ItemStatus::Open, f.clone());
        let step = serde_json::json!([{"at": "2026-10-05T08:00:00Z", "from": "N4", "to": "N3", "action": "WAF rule"}]);
        // A lower rating without its step: refused on the API and bulk.
        let mut lower = f.clone();
        evaluated(&mut lower, serde_json::json!({"agency_impact": "N3"}));
        for origin in [Origin::API, Origin::BULK] {
            assert_eq!(
                code(update(&current, lower.clone(), &editor(), origin, d(TODAY))),
                "reduction_needs_step"
            );
        }
        // With it: admitted.
        let mut reduced = f.clone();
        evaluated(
            &mut reduced,
            serde_json::json!({"agency_impact": "N3", "mitigation": "partial", "reductions": step}),
        );
        assert_eq!(
            code(update(
                &current,
                reduced.clone(),
                &editor(),
                Origin::API,
                d(TODAY)
            )),
            "ok"
        );
        // Recorded steps are append-only; an import keeps the item's and says so.
        let current = item(ItemStatus::Open, reduced.clone());
        let mut rewritten = reduced.clone();
        evaluated(&mut rewritten, serde_json::json!({"agency_impact": "N4"}));
        assert_eq!(
            code(update(
                &current,
                rewritten.clone(),
                &editor(),
                Origin::BULK,
                d(TODAY)
            )),
            "reduction_history_rewritten"
        );
        let r = update(&current, rewritten, &editor(), Origin::IMPORT, d(TODAY));
        let Ok(a) = r else { panic!("{r:?}") };
        assert_eq!(a.notes[0].code, "reduction_history_kept");
        let kept = |e: Option<Evaluation>| e.map(|e| (e.reductions, e.agency_impact));
        assert_eq!(kept(a.fields.evaluation), kept(reduced.evaluation.clone()));
        // Acceptance is an approver's decision; an import keeps the item's own.
        let mut accept = reduced.clone();
        evaluated(
            &mut accept,
            serde_json::json!({"agency_impact": "N3", "mitigation": "partial", "reductions": step,
                "accepted": {"rationale": "end-of-life appliance"}}),
        );
        assert_eq!(
            code(update(
                &current,
                accept.clone(),
                &editor(),
                Origin::API,
                d(TODAY)
            )),
            "decision_needs_approver"
        );
        assert_eq!(
            code(create(accept.clone(), &editor(), Origin::BULK, d(TODAY))),
            "decision_needs_approver"
        );
        let r = create(accept.clone(), &editor(), Origin::IMPORT, d(TODAY));
        assert!(r.is_ok_and(
            |a| a.fields.evaluation.is_some_and(|e| e.accepted.is_none())
                && a.notes[0].code == "acceptance_not_imported"
        ));
        assert_eq!(
            code(update(&current, accept, &approver(), Origin::API, d(TODAY))),
            "ok"
        );
        // The evaluation's own consistency holds on every path, a migration too.
        let mut bad = fields();
        evaluated(&mut bad, serde_json::json!({"mitigation": "full"}));
        let migrate = Origin {
            channel: Channel::Import,
            migrate: true,
        };
        for (caller, origin) in [(editor(), Origin::API), (admin(), migrate)] {
            assert_eq!(
                code(create(bad.clone(), &caller, origin, d(TODAY))),
                "mitigated_at_required"
            );
        }
    }

    #[test]
    fn a_vulnerability_acceptance_review_goes_through_the_patch_rule() {
        let mut f = fields();
        evaluated(&mut f, serde_json::json!({}));
        let current = item(ItemStatus::Open, f.clone());
        let review = ReviewId::new();
        let at: DateTime<Utc> = "2026-11-20T10:00:00Z".parse().unwrap_or_default();
        let accept = |current: &Item, caller: &Caller, notes: Option<&str>, d: Decision| {
            vulnerability_acceptance(current, d, notes, caller, review, at, self::d(TODAY))
        };
        let why = Some("  end-of-life appliance, replaced in 2027 ");
        // An editor may not: the PATCH rule's refusal.
        let r = accept(&current, &editor(), why, Decision::Approved);
        assert!(
            matches!(&r, Err(Refusal::Forbidden(v)) if v.code == "decision_needs_approver"),
            "{r:?}"
        );
        // The explanation is required.
        let r = accept(&current, &approver(), Some(" "), Decision::Approved);
        assert!(matches!(&r, Err(Refusal::Invalid(v)) if v[0].code == "notes_required"));
        // The approver's: who, when, why, and the review.
        let r = accept(&current, &approver(), why, Decision::Approved);
        let Ok(Some(a)) = r else { panic!("{r:?}") };
        let accepted = a
            .fields
            .evaluation
            .as_ref()
            .and_then(|e| e.accepted.clone());
        assert_eq!(
            accepted,
            Some(Rationale {
                rationale: "end-of-life appliance, replaced in 2027".into(),
                decided_by: Some("ap@example.org".into()),
                decided_at: Some(at),
                review_id: Some(review),
            })
        );
        // A rejection withdraws an acceptance a review set.
        let reviewed = item(ItemStatus::Open, a.fields.clone());
        let r = accept(&reviewed, &approver(), None, Decision::Rejected);
        let Ok(Some(w)) = r else { panic!("{r:?}") };
        assert!(w.fields.evaluation.is_some_and(|e| e.accepted.is_none()));
        // Not one set by a PATCH (which records its approver, without a review), nor nothing.
        let mut patched = a.fields.clone();
        if let Some(e) = patched.evaluation.as_mut() {
            e.accepted = Some(Rationale {
                rationale: "decided in the CAB".into(),
                decided_by: Some("forged@example.org".into()),
                review_id: Some(ReviewId::new()),
                ..Rationale::default()
            });
        }
        let decided = Decided { at, review: None };
        let r = update_decided(
            &reviewed,
            patched,
            &approver(),
            Origin::API,
            d(TODAY),
            Some(&decided),
        );
        let Ok(p) = r else { panic!("{r:?}") };
        let stamped = p
            .fields
            .evaluation
            .as_ref()
            .and_then(|e| e.accepted.clone());
        assert_eq!(
            stamped.map(|a| (a.decided_by, a.decided_at, a.review_id)),
            Some((Some("ap@example.org".into()), Some(at), None))
        );
        let by_patch = item(ItemStatus::Open, p.fields);
        let r = accept(&by_patch, &approver(), None, Decision::Rejected);
        assert!(matches!(&r, Err(Refusal::Conflict(v)) if v.code == "acceptance_not_from_review"));
        assert!(matches!(
            accept(&current, &approver(), None, Decision::Rejected),
            Ok(None)
        ));
        // An item without an evaluation has nothing to accept.
        let bare = item(ItemStatus::Open, fields());
        let r = accept(&bare, &approver(), why, Decision::Approved);
        assert!(matches!(&r, Err(Refusal::Conflict(v)) if v.code == "evaluation_required"));
        // A frozen item stays frozen.
        let closed = item(ItemStatus::Closed, f);
        let r = accept(&closed, &approver(), why, Decision::Approved);
        assert!(matches!(&r, Err(Refusal::Conflict(v)) if v.code == "item_frozen"));
    }

    #[test]
    fn requesters_come_from_the_story() {
        let ev = |kind: &str, actor: &str, fields: &[&str], to: Option<ItemStatus>| StoryEvent {
            resource_kind: kind.into(),
            action: "updated".into(),
            actor: actor.into(),
            fields: fields.iter().map(|s| s.to_string()).collect(),
            to_status: to,
        };
        let story = vec![
            ev(
                "item",
                "  Lee@Example.org",
                &["status", "completed_on"],
                Some(ItemStatus::Completed),
            ),
            ev("milestone", "mo@example.org", &["due_on"], None),
            ev("item", "dana@example.org", &["deviation"], None),
            ev("item", "rita@example.org", &["residual_risk"], None),
        ];
        assert_eq!(
            requesters(ReviewKind::ClosureVerification, &story),
            vec!["lee@example.org"]
        );
        assert_eq!(
            requesters(ReviewKind::Extension, &story),
            vec!["mo@example.org"]
        );
        assert_eq!(
            requesters(ReviewKind::Deviation, &story),
            vec!["dana@example.org"]
        );
        assert_eq!(
            requesters(ReviewKind::RiskAcceptance, &story),
            vec!["dana@example.org"]
        );
        assert!(requesters(ReviewKind::Periodic, &story).is_empty());
    }
}
