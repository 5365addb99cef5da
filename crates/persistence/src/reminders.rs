//! Time-driven events and the attention list. [`tick`] asks the domain what is due
//! ([`poam_domain::reminders::due_events`]) for every live system and emits each event not yet
//! recorded: its key goes into `reminder_keys` and its history event is appended through
//! [`events::append`] in one transaction, so it is in the feed, the webhook outbox takes it, and
//! a second emission (a restart, another instance) finds the key and does nothing.

use crate::db::{self, DbConnection};
use crate::error::StoreError;
use crate::events::{self, Action, Change};
use crate::schema::{cmmc_assessments, items, milestones, reminder_keys, systems};
use crate::systems::{parse_id, parse_word, VdrSettings};
use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use poam_domain::reminders::{
    self, Attention, Facts, ItemFact, MilestoneFact, OpenMilestone, ReminderPolicy, TimedEvent,
    TimedKind,
};
use poam_domain::{Item, ItemStatus, RiskRating, SystemId, SystemScope};
use std::collections::{BTreeMap, HashMap, HashSet};

/// The actor of time-driven events.
pub const ACTOR: &str = "poam-scheduler";

/// Statuses whose items can need someone: the unresolved ones and `completed` (to verify).
const WATCHED: &[&str] = &["open", "in_progress", "deferred", "completed"];

/// The history action of a time-driven event.
fn action(kind: TimedKind) -> Action {
    match kind {
        TimedKind::Overdue => Action::Overdue,
        TimedKind::DueSoon => Action::DueSoon,
        TimedKind::CheckInLate => Action::CheckInLate,
        TimedKind::CloseoutNear => Action::CloseoutNear,
        TimedKind::ReviewDue => Action::ReviewDue,
    }
}

struct LiveSystem {
    id: String,
    created_at: NaiveDateTime,
    version: i64,
    policy: ReminderPolicy,
}

fn live_systems(
    conn: &mut DbConnection,
    only: Option<&[String]>,
) -> Result<Vec<LiveSystem>, StoreError> {
    let mut q = systems::table
        .filter(systems::archived_at.is_null())
        .select((
            systems::id,
            systems::created_at,
            systems::version,
            systems::vdr,
        ))
        .into_boxed();
    if let Some(ids) = only {
        q = q.filter(systems::id.eq_any(ids.to_vec()));
    }
    let rows: Vec<(String, NaiveDateTime, i64, Option<String>)> =
        q.order(systems::id.asc()).load(conn)?;
    rows.into_iter()
        .map(|(id, created_at, version, vdr)| {
            let policy = VdrSettings::parse(vdr.as_deref())?
                .reminders
                .unwrap_or_default();
            Ok(LiveSystem {
                id,
                created_at,
                version,
                policy,
            })
        })
        .collect()
}

/// A system's facts, and the version of every resource an event may name.
fn facts_of(
    conn: &mut DbConnection,
    s: &LiveSystem,
) -> Result<(Facts, HashMap<String, i64>), StoreError> {
    type ItemCols = (
        String,
        String,
        String,
        String,
        Option<String>,
        Option<NaiveDate>,
        Option<NaiveDate>,
        NaiveDate,
        i64,
    );
    let rows: Vec<ItemCols> = items::table
        .filter(items::system_id.eq(&s.id))
        .filter(items::archived_at.is_null())
        .filter(items::status.eq_any(["open", "in_progress", "deferred"]))
        .select((
            items::id,
            items::display_id,
            items::status,
            items::risk_rating,
            items::adjusted_risk_rating,
            items::scheduled_completion,
            items::vendor_check_in,
            items::detected_on,
            items::version,
        ))
        .load(conn)?;
    let mut versions = HashMap::new();
    let mut facts_items = Vec::new();
    let mut risk_of = HashMap::new();
    for (id, display_id, status, risk, adjusted, due, check_in, detected, version) in rows {
        let risk: RiskRating = match adjusted {
            Some(a) => parse_word("adjusted_risk_rating", &a)?,
            None => parse_word("risk_rating", &risk)?,
        };
        // A dependency never checked in counts from the detection date.
        let vendor_check_in = check_in.map(|d| {
            if d == crate::items::NEVER_CHECKED_IN {
                detected
            } else {
                d
            }
        });
        versions.insert(id.clone(), version);
        risk_of.insert(id.clone(), (risk, display_id.clone()));
        facts_items.push(ItemFact {
            id,
            display_id,
            status: parse_word::<ItemStatus>("status", &status)?,
            risk,
            scheduled_completion: due,
            vendor_check_in,
        });
    }
    let ms: Vec<(String, String, String, NaiveDate, String, i64)> = milestones::table
        .filter(milestones::system_id.eq(&s.id))
        .filter(milestones::status.eq_any(["planned", "in_progress"]))
        .select((
            milestones::id,
            milestones::item_id,
            milestones::title,
            milestones::due_on,
            milestones::status,
            milestones::version,
        ))
        .load(conn)?;
    let mut facts_ms = Vec::new();
    for (id, item_id, title, due_on, status, version) in ms {
        // Milestones of resolved or archived items are not reminded.
        let Some((risk, display)) = risk_of.get(&item_id) else {
            continue;
        };
        versions.insert(id.clone(), version);
        facts_ms.push(MilestoneFact {
            id,
            item_display_id: display.clone(),
            title,
            status: parse_word("milestone status", &status)?,
            risk: *risk,
            due_on,
        });
    }
    let cmmc: Option<(Option<NaiveDate>, i64)> = cmmc_assessments::table
        .find(&s.id)
        .select((
            cmmc_assessments::conditional_status_date,
            cmmc_assessments::version,
        ))
        .first(conn)
        .optional()?;
    let facts = Facts {
        system_id: s.id.clone(),
        created_on: s.created_at.date(),
        policy: s.policy.clone(),
        items: facts_items,
        milestones: facts_ms,
        conditional_status_date: cmmc.and_then(|c| c.0),
    };
    if let Some((_, v)) = cmmc {
        versions.insert(format!("cmmc:{}", s.id), v);
    }
    Ok((facts, versions))
}

/// What a time-driven history event records (its snapshot).
#[derive(serde::Serialize)]
struct Reminder<'a> {
    key: &'a str,
    event: &'a str,
    due_on: NaiveDate,
    reason: &'a str,
}

/// Records `e`'s key and appends its history event, in one transaction; `false` when the key
/// was already recorded (by an earlier tick, or another instance just now).
fn emit(
    conn: &mut DbConnection,
    system_id: &str,
    e: &TimedEvent,
    version: i64,
) -> Result<bool, StoreError> {
    db::write(conn, |conn| {
        let now = db::now();
        let row = (
            reminder_keys::system_id.eq(system_id),
            reminder_keys::key.eq(&e.key),
            reminder_keys::emitted_at.eq(now),
        );
        // On PostgreSQL a concurrent insert of the same key waits for the first to commit,
        // then does nothing.
        let inserted = db::on_inner!(conn, |c| diesel::insert_into(reminder_keys::table)
            .values(row)
            .on_conflict_do_nothing()
            .execute(c))?;
        if inserted == 0 {
            return Ok(false);
        }
        let event = poam_domain::webhooks::event_type(e.resource_kind, e.kind.as_str());
        events::append(
            conn,
            Change {
                system_id,
                resource_kind: e.resource_kind,
                resource_id: &e.resource_id,
                action: action(e.kind),
                actor: ACTOR,
                at: now,
                version,
                before: None::<&Reminder<'_>>,
                after: &Reminder {
                    key: &e.key,
                    event: &event,
                    due_on: e.due_on,
                    reason: &e.reason,
                },
            },
        )?;
        Ok(true)
    })
}

/// One pass of the scheduler for `today`: emits every due event not yet recorded, and answers
/// how many it emitted.
pub fn tick(conn: &mut DbConnection, today: NaiveDate) -> Result<usize, StoreError> {
    let mut emitted = 0;
    for s in live_systems(conn, None)? {
        let (facts, versions) = facts_of(conn, &s)?;
        let due = reminders::due_events(today, &facts);
        if due.is_empty() {
            continue;
        }
        let known: HashSet<String> = reminder_keys::table
            .filter(reminder_keys::system_id.eq(&s.id))
            .select(reminder_keys::key)
            .load::<String>(conn)?
            .into_iter()
            .collect();
        for e in due.iter().filter(|e| !known.contains(&e.key)) {
            let version = match e.resource_kind {
                "system" => s.version,
                "cmmc_assessment" => versions
                    .get(&format!("cmmc:{}", s.id))
                    .copied()
                    .unwrap_or(0),
                _ => versions.get(&e.resource_id).copied().unwrap_or(0),
            };
            if emit(conn, &s.id, e, version)? {
                emitted += 1;
            }
        }
    }
    Ok(emitted)
}

/// What needs someone now in the caller's scope (or in `system` only), most urgent first, at
/// most `limit` entries.
pub fn attention(
    conn: &mut DbConnection,
    scope: &SystemScope,
    system: Option<SystemId>,
    limit: usize,
) -> Result<Vec<Attention>, StoreError> {
    let today = db::now().date();
    let only: Option<Vec<String>> = match (system, scope) {
        (Some(id), _) => Some(vec![id.to_string()]),
        (None, SystemScope::All) => None,
        (None, SystemScope::Only(ids)) => Some(ids.iter().map(|i| i.to_string()).collect()),
    };
    let systems = live_systems(conn, only.as_deref())?;
    let ids: Vec<String> = systems.iter().map(|s| s.id.clone()).collect();
    let rows: Vec<crate::items::ItemRow> = items::table
        .filter(items::system_id.eq_any(&ids))
        .filter(items::archived_at.is_null())
        .filter(
            items::status
                .eq_any(WATCHED)
                .or(items::deviation_state.like("%/pending")),
        )
        .select(crate::items::ItemRow::as_select())
        .load(conn)?;
    let items: Vec<Item> = rows
        .into_iter()
        .map(|r| r.into_domain(today))
        .collect::<Result<_, _>>()?;
    let item_ids: Vec<String> = items.iter().map(|i| i.id.to_string()).collect();
    let ms: Vec<(String, String, String, NaiveDate)> = milestones::table
        .filter(milestones::item_id.eq_any(&item_ids))
        .filter(milestones::status.eq_any(["planned", "in_progress"]))
        .select((
            milestones::id,
            milestones::item_id,
            milestones::title,
            milestones::due_on,
        ))
        .load(conn)?;
    let open: Vec<OpenMilestone> = ms
        .into_iter()
        .map(|(id, item_id, title, due_on)| {
            Ok(OpenMilestone {
                id: parse_id(&id)?,
                item_id: parse_id(&item_id)?,
                title,
                due_on,
            })
        })
        .collect::<Result<_, StoreError>>()?;
    let policies: BTreeMap<SystemId, ReminderPolicy> = systems
        .into_iter()
        .map(|s| Ok((parse_id(&s.id)?, s.policy)))
        .collect::<Result<_, StoreError>>()?;
    let fallback = ReminderPolicy::default();
    let mut out = reminders::attention(today, &items, &open, |id| {
        policies.get(&id).unwrap_or(&fallback)
    });
    out.truncate(limit);
    Ok(out)
}
