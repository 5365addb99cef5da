//! Milestones, reviews and status transitions. Each write is one transaction that loads what
//! the rule needs, lets the domain decide, writes, and appends the history event.

use crate::db::{self, DbConnection};
use crate::error::{corrupt, StoreError};
use crate::events::{self, Action, Change};
use crate::schema::{milestones, reviews, systems, transitions};
use crate::systems::{archived_conflict, check_version, parse_id, parse_word, to_json, utc};
use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use poam_domain::change;
use poam_domain::lifecycle::{self, Facts, Request, Transition};
use poam_domain::workflow::{
    check_milestone_completion, check_milestone_due, check_review, is_delayed, Decision,
    EvidenceKind, Milestone, MilestoneChange, MilestonePatch, MilestoneStatus, NewMilestone,
    NewReview, Review, ReviewContext, ReviewKind, ReviewTarget,
};
use poam_domain::{
    DeviationKind, Item, ItemId, ItemStatus, Regime, SystemId, SystemScope, Violation,
};
use poam_domain::{IfMatch, MilestoneId};

#[derive(Queryable, Selectable)]
#[diesel(table_name = milestones)]
pub(crate) struct MilestoneRow {
    id: String,
    item_id: String,
    system_id: String,
    title: String,
    description: Option<String>,
    due_on: NaiveDate,
    status: String,
    completed_on: Option<NaiveDate>,
    position: i32,
    changes: String,
    version: i64,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
    kind: String,
    percent_complete: i32,
}

impl MilestoneRow {
    /// The milestone; `delayed` is judged on today's date.
    pub(crate) fn into_domain(self) -> Result<Milestone, StoreError> {
        let status: MilestoneStatus = parse_word("milestone status", &self.status)?;
        let delayed = is_delayed(status, self.due_on, db::now().date());
        Ok(Milestone {
            id: parse_id(&self.id)?,
            item_id: parse_id(&self.item_id)?,
            title: self.title,
            description: self.description,
            due_on: self.due_on,
            status,
            completed_on: self.completed_on,
            position: self.position,
            kind: parse_word("milestone kind", &self.kind)?,
            percent_complete: if status == MilestoneStatus::Completed {
                100
            } else {
                self.percent_complete
            },
            delayed,
            changes: serde_json::from_str(&self.changes)
                .map_err(|e| corrupt("milestone changes", e))?,
            version: self.version,
            created_at: utc(self.created_at),
            updated_at: utc(self.updated_at),
        })
    }
}

fn regime_of(conn: &mut DbConnection, system_id: &str) -> Result<Regime, StoreError> {
    let r: String = systems::table
        .find(system_id)
        .select(systems::regime)
        .first(conn)?;
    parse_word("regime", &r)
}

/// An approved review of `kind` for the item that no later review supersedes.
fn approved_reviews(
    conn: &mut DbConnection,
    item_id: &str,
    kind: ReviewKind,
) -> Result<Vec<(String, NaiveDateTime)>, StoreError> {
    let rows: Vec<(String, String, NaiveDateTime)> = reviews::table
        .filter(reviews::item_id.eq(item_id))
        .filter(reviews::kind.eq(kind.as_str()))
        .filter(reviews::decision.eq(Decision::Approved.as_str()))
        .select((reviews::id, reviews::reviewer, reviews::reviewed_at))
        .load(conn)?;
    let superseded: Vec<String> = reviews::table
        .filter(reviews::item_id.eq(item_id))
        .filter(reviews::supersedes.is_not_null())
        .select(reviews::supersedes.assume_not_null())
        .load(conn)?;
    Ok(rows
        .into_iter()
        .filter(|(id, _, _)| !superseded.contains(id))
        .map(|(_, reviewer, at)| (reviewer, at))
        .collect())
}

/// An item's story as separation of duties reads it: the item's and its milestones' events,
/// newest first, with the fields each changed.
fn story(conn: &mut DbConnection, item_id: &str) -> Result<Vec<change::StoryEvent>, StoreError> {
    let rows: Vec<(String, String, String, String)> = crate::schema::events::table
        .filter(crate::schema::events::item_id.eq(item_id))
        .filter(crate::schema::events::resource_kind.eq_any(["item", "milestone"]))
        .order(crate::schema::events::seq.desc())
        .select((
            crate::schema::events::resource_kind,
            crate::schema::events::action,
            crate::schema::events::actor,
            crate::schema::events::changes,
        ))
        .load(conn)?;
    rows.into_iter()
        .map(|(resource_kind, action, actor, changes)| {
            let changes: serde_json::Value =
                serde_json::from_str(&changes).map_err(|e| corrupt("event changes", e))?;
            let fields = changes
                .as_object()
                .map(|m| m.keys().cloned().collect())
                .unwrap_or_default();
            let to_status = changes
                .pointer("/status/after")
                .and_then(|s| s.as_str())
                .and_then(|s| s.parse::<ItemStatus>().ok());
            Ok(change::StoryEvent {
                resource_kind,
                action,
                actor,
                fields,
                to_status,
            })
        })
        .collect()
}

/// The item, visible and not archived, for a write under it.
pub(crate) fn live_item(
    conn: &mut DbConnection,
    item_id: ItemId,
    scope: &SystemScope,
) -> Result<Item, StoreError> {
    let item = crate::items::locked(conn, item_id, scope)?;
    if item.archived_at.is_some() {
        return Err(archived_conflict("item"));
    }
    Ok(item)
}

pub(crate) fn load_milestone(conn: &mut DbConnection, id: &str) -> Result<Milestone, StoreError> {
    milestones::table
        .find(id)
        .select(MilestoneRow::as_select())
        .first(conn)?
        .into_domain()
}

/// Adds a milestone to an item's plan.
pub fn create_milestone(
    conn: &mut DbConnection,
    item_id: ItemId,
    scope: &SystemScope,
    m: &NewMilestone,
    actor: &str,
) -> Result<Milestone, StoreError> {
    db::write(conn, |conn| {
        let item = live_item(conn, item_id, scope)?;
        let iid = item_id.to_string();
        let extended = !approved_reviews(conn, &iid, ReviewKind::Extension)?.is_empty();
        check_milestone_due(m.due_on, item.scheduled_completion, extended)
            .map_err(|v| StoreError::Invalid(vec![v]))?;
        let position = match m.position {
            Some(p) => p,
            None => {
                let max: Option<i32> = milestones::table
                    .filter(milestones::item_id.eq(&iid))
                    .select(diesel::dsl::max(milestones::position))
                    .first(conn)?;
                max.map_or(1, |p| p + 1)
            }
        };
        let id = uuid::Uuid::now_v7().to_string();
        let now = db::now();
        let sid = item.system_id.to_string();
        diesel::insert_into(milestones::table)
            .values((
                milestones::id.eq(&id),
                milestones::item_id.eq(&iid),
                milestones::system_id.eq(&sid),
                milestones::title.eq(&m.title),
                milestones::description.eq(&m.description),
                milestones::due_on.eq(m.due_on),
                milestones::status.eq(MilestoneStatus::Planned.as_str()),
                milestones::position.eq(position),
                milestones::changes.eq("[]"),
                milestones::kind.eq(m.kind.as_str()),
                milestones::percent_complete.eq(m.percent_complete.unwrap_or(0)),
                milestones::version.eq(1),
                milestones::created_at.eq(now),
                milestones::updated_at.eq(now),
            ))
            .execute(conn)?;
        let milestone = load_milestone(conn, &id)?;
        events::append(
            conn,
            Change {
                system_id: &sid,
                resource_kind: "milestone",
                resource_id: &id,
                action: Action::Created,
                actor,
                at: now,
                version: 1,
                before: None,
                after: &milestone,
            },
        )?;
        Ok(milestone)
    })
}

/// An item's milestones in plan order.
pub fn list_milestones(
    conn: &mut DbConnection,
    item_id: ItemId,
    scope: &SystemScope,
) -> Result<Vec<Milestone>, StoreError> {
    crate::items::get(conn, item_id, scope)?;
    milestones::table
        .filter(milestones::item_id.eq(item_id.to_string()))
        .order((
            milestones::position.asc(),
            milestones::due_on.asc(),
            milestones::id.asc(),
        ))
        .select(MilestoneRow::as_select())
        .load(conn)?
        .into_iter()
        .map(MilestoneRow::into_domain)
        .collect()
}

/// A milestone whose system the caller may see.
pub fn get_milestone(
    conn: &mut DbConnection,
    id: MilestoneId,
    scope: &SystemScope,
) -> Result<(Milestone, String), StoreError> {
    let row: MilestoneRow = milestones::table
        .find(id.to_string())
        .select(MilestoneRow::as_select())
        .first(conn)?;
    let sid: SystemId = parse_id(&row.system_id)?;
    if !scope.allows(sid) {
        return Err(StoreError::NotFound);
    }
    let system_id = row.system_id.clone();
    Ok((row.into_domain()?, system_id))
}

/// What a milestone write does.
pub enum MilestoneEdit {
    Patch(MilestonePatch),
    Complete(Option<NaiveDate>),
    Cancel(String),
}

/// Changes a milestone: fields (a due-date move needs a reason and is kept), completion or
/// cancellation. One transaction, with its history event.
pub fn edit_milestone(
    conn: &mut DbConnection,
    id: MilestoneId,
    scope: &SystemScope,
    if_match: &IfMatch,
    actor: &str,
    edit: MilestoneEdit,
) -> Result<Milestone, StoreError> {
    db::write(conn, |conn| {
        let (current, sid) = get_milestone(conn, id, scope)?;
        check_version(if_match, current.version)?;
        let item = live_item(conn, current.item_id, scope)?;
        let now = db::now();
        let today = now.date();
        let mut next = current.clone();
        let mut errors = Vec::new();
        let action = match edit {
            MilestoneEdit::Patch(p) => {
                if !current.status.is_open() {
                    return Err(StoreError::Conflict(Violation::new(
                        "milestone_closed",
                        "",
                        format!("the milestone is {} and no longer changes", current.status),
                    )));
                }
                if let Some(t) = p.title {
                    next.title = t;
                }
                if let Some(d) = p.description {
                    next.description = Some(d);
                }
                if let Some(pos) = p.position {
                    next.position = pos;
                }
                if let Some(k) = p.kind {
                    next.kind = k;
                }
                if let Some(pc) = p.percent_complete {
                    next.percent_complete = pc;
                }
                match p.status {
                    Some(s @ (MilestoneStatus::Planned | MilestoneStatus::InProgress)) => {
                        next.status = s
                    }
                    Some(s) => errors.push(Violation::new(
                        "use_operation",
                        "/status",
                        format!(
                            "{s}: use POST /v1/milestones/{{id}}/{}",
                            if s == MilestoneStatus::Completed {
                                "complete"
                            } else {
                                "cancel"
                            }
                        ),
                    )),
                    None => {}
                }
                if let Some(due) = p.due_on.filter(|d| *d != current.due_on) {
                    match p.change_reason.filter(|r| !r.trim().is_empty()) {
                        None => errors.push(Violation::new("change_reason_required", "/change_reason", "moving a due date needs the reason, kept in the milestone's changes (FedRAMP: Milestone Changes)")),
                        Some(reason) => {
                            let extended = !approved_reviews(conn, &current.item_id.to_string(), ReviewKind::Extension)?.is_empty();
                            if let Err(v) = check_milestone_due(due, item.scheduled_completion, extended) {
                                errors.push(v);
                            }
                            next.changes.push(MilestoneChange { from: current.due_on, to: due, reason, by: actor.to_owned(), at: utc(now) });
                            next.due_on = due;
                        }
                    }
                } else if p.change_reason.is_some() && p.due_on.is_none() {
                    errors.push(Violation::new(
                        "change_reason_without_change",
                        "/change_reason",
                        "a change_reason goes with a new due_on",
                    ));
                }
                Action::Updated
            }
            MilestoneEdit::Complete(on) => {
                if !current.status.is_open() {
                    return Err(StoreError::Conflict(Violation::new(
                        "milestone_closed",
                        "",
                        format!("the milestone is already {}", current.status),
                    )));
                }
                let on = on.unwrap_or(today);
                if !poam_domain::rules::date_in_range(on) {
                    errors.push(Violation::new(
                        "date_out_of_range",
                        "/completed_on",
                        format!("{on} is outside the years 1900..=9999"),
                    ));
                } else if on > today {
                    errors.push(Violation::new(
                        "date_in_future",
                        "/completed_on",
                        format!("the completion date {on} is after today ({today})"),
                    ));
                }
                let records = crate::evidence::active_count_of(
                    conn,
                    &current.item_id.to_string(),
                    Some(&current.id.to_string()),
                    &[EvidenceKind::TrainingRecord],
                )?;
                if let Err(v) = check_milestone_completion(current.kind, records) {
                    errors.push(v);
                }
                next.status = MilestoneStatus::Completed;
                next.completed_on = Some(on);
                next.percent_complete = 100;
                next.delayed = false;
                Action::Completed
            }
            MilestoneEdit::Cancel(_) => {
                if !current.status.is_open() {
                    return Err(StoreError::Conflict(Violation::new(
                        "milestone_closed",
                        "",
                        format!("the milestone is already {}", current.status),
                    )));
                }
                next.status = MilestoneStatus::Cancelled;
                next.delayed = false;
                Action::Cancelled
            }
        };
        if !errors.is_empty() {
            return Err(StoreError::Invalid(errors));
        }
        if next == current {
            return Ok(current);
        }
        let n = diesel::update(milestones::table.find(current.id.to_string()))
            .filter(milestones::version.eq(current.version))
            .set((
                milestones::title.eq(&next.title),
                milestones::description.eq(&next.description),
                milestones::due_on.eq(next.due_on),
                milestones::status.eq(next.status.as_str()),
                milestones::completed_on.eq(next.completed_on),
                milestones::position.eq(next.position),
                milestones::kind.eq(next.kind.as_str()),
                milestones::percent_complete.eq(next.percent_complete),
                milestones::changes.eq(to_json(&next.changes)?),
                milestones::version.eq(current.version + 1),
                milestones::updated_at.eq(now),
            ))
            .execute(conn)?;
        if n != 1 {
            return Err(StoreError::Stale {
                current: current.version,
            });
        }
        let saved = load_milestone(conn, &current.id.to_string())?;
        events::append(
            conn,
            Change {
                system_id: &sid,
                resource_kind: "milestone",
                resource_id: &current.id.to_string(),
                action,
                actor,
                at: now,
                version: saved.version,
                before: Some(&current),
                after: &saved,
            },
        )?;
        Ok(saved)
    })
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = reviews)]
pub(crate) struct ReviewRow {
    id: String,
    system_id: String,
    item_id: Option<String>,
    kind: String,
    deviation_kind: Option<String>,
    decision: String,
    notes: Option<String>,
    attendees: String,
    action_items: String,
    requested_by: Option<String>,
    reviewer: String,
    reviewer_name: Option<String>,
    reviewed_at: NaiveDateTime,
    supersedes: Option<String>,
    determination: Option<String>,
    determined_on: Option<NaiveDate>,
}

impl ReviewRow {
    pub(crate) fn into_domain(self) -> Result<Review, StoreError> {
        Ok(Review {
            id: parse_id(&self.id)?,
            system_id: parse_id(&self.system_id)?,
            item_id: self.item_id.as_deref().map(parse_id).transpose()?,
            kind: parse_word("review kind", &self.kind)?,
            deviation_kind: self
                .deviation_kind
                .as_deref()
                .map(|d| parse_word::<DeviationKind>("deviation kind", d))
                .transpose()?,
            decision: parse_word("decision", &self.decision)?,
            notes: self.notes,
            attendees: serde_json::from_str(&self.attendees)
                .map_err(|e| corrupt("attendees", e))?,
            action_items: serde_json::from_str(&self.action_items)
                .map_err(|e| corrupt("action items", e))?,
            requested_by: self.requested_by,
            reviewer: self.reviewer,
            reviewer_name: self.reviewer_name,
            reviewed_at: utc(self.reviewed_at),
            supersedes: self.supersedes.as_deref().map(parse_id).transpose()?,
            determination: self
                .determination
                .as_deref()
                .map(|d| parse_word("determination", d))
                .transpose()?,
            determined_on: self.determined_on,
        })
    }
}

/// Records a review of a system's POA&M or of one item. Append-only: corrections supersede.
///
/// A `vulnerability_acceptance` review (FRD-ACV) also sets or withdraws the item's
/// `evaluation.accepted` in the same transaction, through the rule a `PATCH` follows
/// ([`change::vulnerability_acceptance`], [`change::update_decided`]), recorded in the item's
/// history as the reviewer's change.
pub fn create_review(
    conn: &mut DbConnection,
    target: ReviewTarget,
    scope: &SystemScope,
    r: &NewReview,
    caller: &change::Caller,
    reviewer_name: Option<&str>,
) -> Result<Review, StoreError> {
    let reviewer = caller.sub.as_str();
    db::write(conn, |conn| {
        let (sid, item) = match target {
            ReviewTarget::Item(iid) => {
                let item = live_item(conn, iid, scope)?;
                (item.system_id, Some(item))
            }
            ReviewTarget::System(sid) => {
                let system = crate::systems::get(conn, sid, scope)?;
                if system.archived_at.is_some() {
                    return Err(archived_conflict("system"));
                }
                (sid, None)
            }
        };
        let sid_text = sid.to_string();
        let now = db::now();
        let ctx = ReviewContext {
            regime: regime_of(conn, &sid_text)?,
            item_risk: item.as_ref().map(|i| i.risk_rating),
            has_item: item.is_some(),
            under_vdr: crate::vdr::system_regime(conn, &sid_text, now.date())?.is_some(),
        };
        let requesters = match &item {
            Some(i) => change::requesters(r.kind, &story(conn, &i.id.to_string())?),
            None => Vec::new(),
        };
        let mut errors = check_review(r, reviewer, &requesters, ctx);
        let iid_text = item.as_ref().map(|i| i.id.to_string());
        if let Some(old) = r.supersedes {
            let target: Option<(String, Option<String>)> = reviews::table
                .find(old.to_string())
                .select((reviews::system_id, reviews::item_id))
                .first(conn)
                .optional()?;
            if target != Some((sid_text.clone(), iid_text.clone())) {
                errors.push(Violation::new(
                    "unknown_review",
                    "/supersedes",
                    "supersedes must name an earlier review of the same system and item",
                ));
            }
        }
        if !errors.is_empty() {
            return Err(StoreError::Invalid(errors));
        }
        let review_id = poam_domain::ReviewId::new();
        let id = review_id.to_string();
        // FRD-ACV: what the decision does to the item, decided before anything is written.
        let acceptance = match &item {
            Some(current) if r.kind == ReviewKind::VulnerabilityAcceptance => {
                change::vulnerability_acceptance(
                    current,
                    r.decision,
                    r.notes.as_deref(),
                    caller,
                    review_id,
                    utc(now),
                    now.date(),
                )?
                .map(|admitted| (current, admitted))
            }
            _ => None,
        };
        diesel::insert_into(reviews::table)
            .values((
                reviews::id.eq(&id),
                reviews::system_id.eq(&sid_text),
                reviews::item_id.eq(&iid_text),
                reviews::kind.eq(r.kind.as_str()),
                reviews::deviation_kind.eq(r.deviation_kind.map(|d| d.as_str())),
                reviews::decision.eq(r.decision.as_str()),
                reviews::notes.eq(&r.notes),
                reviews::attendees.eq(to_json(&r.attendees)?),
                reviews::action_items.eq(to_json(&r.action_items)?),
                reviews::requested_by.eq(&r.requested_by),
                reviews::reviewer.eq(reviewer),
                reviews::reviewer_name.eq(reviewer_name),
                reviews::reviewed_at.eq(now),
                reviews::supersedes.eq(r.supersedes.map(|u| u.to_string())),
                reviews::determination.eq(r.determination.map(|d| d.as_str())),
                reviews::determined_on.eq(r.determined_on),
            ))
            .execute(conn)?;
        let review = reviews::table
            .find(&id)
            .select(ReviewRow::as_select())
            .first(conn)?
            .into_domain()?;
        events::append(
            conn,
            Change {
                system_id: &sid_text,
                resource_kind: "review",
                resource_id: &id,
                action: Action::Recorded,
                actor: reviewer,
                at: now,
                version: 1,
                before: None,
                after: &review,
            },
        )?;
        if let Some((current, admitted)) = acceptance {
            let changed = crate::items::write_fields(conn, current, &admitted.fields, now)?;
            crate::items::record(conn, Some(current), &changed, Action::Updated, reviewer)?;
        }
        Ok(review)
    })
}

/// A page of reviews of a system (all, including its items') or of one item, newest first:
/// up to `limit` reviews older than the review `before` (a previous page's last), and whether
/// more follow. Review ids are time-ordered (UUID v7), so the id is the keyset.
pub fn list_reviews(
    conn: &mut DbConnection,
    target: ReviewTarget,
    scope: &SystemScope,
    before: Option<&str>,
    limit: i64,
) -> Result<(Vec<Review>, bool), StoreError> {
    let mut q = reviews::table.into_boxed::<crate::db::Backend>();
    match target {
        ReviewTarget::Item(iid) => {
            crate::items::get(conn, iid, scope)?;
            q = q.filter(reviews::item_id.eq(iid.to_string()));
        }
        ReviewTarget::System(sid) => {
            crate::systems::get(conn, sid, scope)?;
            q = q.filter(reviews::system_id.eq(sid.to_string()));
        }
    }
    if let Some(b) = before {
        q = q.filter(reviews::id.lt(b.to_owned()));
    }
    let mut rows: Vec<Review> = q
        .order(reviews::id.desc())
        .limit(limit.saturating_add(1))
        .select(ReviewRow::as_select())
        .load(conn)?
        .into_iter()
        .map(ReviewRow::into_domain)
        .collect::<Result<_, _>>()?;
    let more = rows.len() as i64 > limit;
    rows.truncate(usize::try_from(limit).unwrap_or(0));
    Ok((rows, more))
}

/// Moves an item to another status, if the rules allow: the facts are gathered, the domain
/// decides, the item and its transition record are written with the history event.
pub fn transition(
    conn: &mut DbConnection,
    item_id: ItemId,
    scope: &SystemScope,
    if_match: &IfMatch,
    actor: &str,
    req: &Request,
) -> Result<Item, StoreError> {
    db::write(conn, |conn| {
        transition_in(conn, item_id, scope, if_match, actor, req)
    })
}

/// [`transition`] inside the caller's transaction.
pub(crate) fn transition_in(
    conn: &mut DbConnection,
    item_id: ItemId,
    scope: &SystemScope,
    if_match: &IfMatch,
    actor: &str,
    req: &Request,
) -> Result<Item, StoreError> {
    {
        let current = live_item(conn, item_id, scope)?;
        check_version(if_match, current.version)?;
        let iid = item_id.to_string();
        let sid = current.system_id.to_string();
        let statuses: Vec<String> = milestones::table
            .filter(milestones::item_id.eq(&iid))
            .select(milestones::status)
            .load(conn)?;
        let open_milestones = statuses
            .iter()
            .filter(|s| s.parse::<MilestoneStatus>().is_ok_and(|s| s.is_open()))
            .count();
        let completed: Option<(String, NaiveDateTime)> = transitions::table
            .filter(transitions::item_id.eq(&iid))
            .filter(transitions::to_status.eq(ItemStatus::Completed.as_str()))
            .order(transitions::at.desc())
            .select((transitions::actor, transitions::at))
            .first(conn)
            .optional()?;
        let verifiers = approved_reviews(conn, &iid, ReviewKind::ClosureVerification)?
            .into_iter()
            .filter(|(_, at)| completed.as_ref().is_some_and(|(_, done)| at >= done))
            .map(|(who, _)| who)
            .collect();
        let facts = Facts {
            status: current.status,
            regime: regime_of(conn, &sid)?,
            scheduled_completion: current.scheduled_completion,
            detected_on: current.detected_on,
            milestones: statuses.len(),
            open_milestones,
            evidence: crate::evidence::active_count(conn, &iid)?,
            risk_rating: current.risk_rating,
            verification_evidence: crate::evidence::active_count_of(
                conn,
                &iid,
                None,
                &[EvidenceKind::TestResult, EvidenceKind::ScanReport],
            )?,
            residual_risk: current.residual_risk.clone(),
            implementer: current
                .implementer
                .iter()
                .flat_map(|p| {
                    [
                        Some(p.name.to_lowercase()),
                        p.email.as_ref().map(|e| e.to_lowercase()),
                    ]
                })
                .flatten()
                .collect(),
            completed_by: completed.map(|(who, _)| who),
            closure_verifiers: verifiers,
            risk_acceptance_approved: !approved_reviews(conn, &iid, ReviewKind::RiskAcceptance)?
                .is_empty(),
            today: db::now().date(),
        };
        let t: Transition = lifecycle::decide(req, &facts, actor).map_err(StoreError::Invalid)?;
        let fields = t.apply(current.fields());
        let now = db::now();
        let item = crate::items::write_fields(conn, &current, &fields, now)?;
        diesel::insert_into(transitions::table)
            .values((
                transitions::id.eq(uuid::Uuid::now_v7().to_string()),
                transitions::item_id.eq(&iid),
                transitions::from_status.eq(t.from.as_str()),
                transitions::to_status.eq(t.to.as_str()),
                transitions::comment.eq(&req.comment),
                transitions::actor.eq(actor),
                transitions::at.eq(now),
            ))
            .execute(conn)?;
        events::append(
            conn,
            Change {
                system_id: &sid,
                resource_kind: "item",
                resource_id: &iid,
                action: Action::Transitioned,
                actor,
                at: now,
                version: item.version,
                before: Some(&current),
                after: &item,
            },
        )?;
        Ok(item)
    }
}
