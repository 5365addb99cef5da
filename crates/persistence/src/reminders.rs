//! Time-driven events and the attention list. [`tick`] asks the domain what is due
//! ([`poam_domain::reminders::due_events`]) for every live system and emits each event not yet
//! recorded: its key goes into `reminder_keys` and its history event is appended through
//! [`events::append`] in one transaction, so it is in the feed, the webhook outbox takes it, and
//! a second emission (a restart, another instance) finds the key and does nothing.

use crate::db::{self, DbConnection};
use crate::error::StoreError;
use crate::events::{self, Action, Change};
use crate::schema::{
    cmmc_assessments, item_reminders, items, milestones, reminder_keys, reviews, systems,
};
use crate::systems::{parse_id, parse_word, VdrSettings};
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use diesel::prelude::*;
use poam_domain::reminders::{
    self, Attention, DeadlineFact, DeadlineKind, Digest, ExpiryFact, Facts, ItemFact,
    MilestoneFact, OpenMilestone, ReminderPolicy, TimedEvent, TimedKind,
};
use poam_domain::system::Contacts;
use poam_domain::{DeviationStatus, Item, ItemStatus, RiskRating, SystemId, SystemScope};
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
        TimedKind::Expiring => Action::Expiring,
        TimedKind::Expired => Action::Expired,
        TimedKind::DeadlineNear => Action::DeadlineNear,
        TimedKind::DeadlinePassed => Action::DeadlinePassed,
    }
}

struct LiveSystem {
    id: String,
    created_at: NaiveDateTime,
    version: i64,
    policy: ReminderPolicy,
    /// FedRAMP's 2026 rules apply from this day (a class is set too).
    vdr_since: Option<NaiveDate>,
    contacts: Contacts,
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
            systems::contacts,
        ))
        .into_boxed();
    if let Some(ids) = only {
        q = q.filter(systems::id.eq_any(ids.to_vec()));
    }
    let rows: Vec<(String, NaiveDateTime, i64, Option<String>, String)> =
        q.order(systems::id.asc()).load(conn)?;
    rows.into_iter()
        .map(|(id, created_at, version, vdr, contacts)| {
            let settings = VdrSettings::parse(vdr.as_deref())?;
            let contacts = serde_json::from_str(&contacts)
                .map_err(|e| crate::error::corrupt("contacts", e))?;
            Ok(LiveSystem {
                id,
                created_at,
                version,
                policy: settings.reminders.unwrap_or_default(),
                vdr_since: settings
                    .vdr_since
                    .filter(|_| settings.fedramp_class.is_some()),
                contacts,
            })
        })
        .collect()
}

/// Statuses whose items the scheduler reads: the unresolved ones and `risk_accepted` (its
/// expiry).
const SCHEDULED: &[&str] = &["open", "in_progress", "deferred", "risk_accepted"];

/// The expiry an item's deviation sets: an approved deviation's, or (on a `risk_accepted`
/// item) the one the acceptance rests on.
fn expiry_of(item: &Item) -> Option<ExpiryFact> {
    let d = item.deviation.as_ref()?;
    let risk_acceptance = item.status == ItemStatus::RiskAccepted;
    let expires_on = d.expires_on?;
    (risk_acceptance || (d.status == DeviationStatus::Approved && item.status.is_active()))
        .then_some(ExpiryFact {
            risk_acceptance,
            deviation_kind: d.kind,
            expires_on,
        })
}

/// The FedRAMP 2026 evaluation and reduction deadlines still pending on an unresolved item.
fn deadlines_of(item: &Item) -> Vec<DeadlineFact> {
    let Some(st) = item.vdr.as_ref().filter(|_| item.status.is_active()) else {
        return Vec::new();
    };
    let e = item.evaluation.as_ref();
    let evaluated = e.is_some_and(|e| e.is_evaluated());
    let resolved = e.is_some_and(|e| e.is_resolved());
    let mut out = Vec::new();
    if let Some(d) = st.schedule.evaluation.as_ref().filter(|_| !evaluated) {
        out.push(DeadlineFact {
            kind: DeadlineKind::Evaluation,
            rule: d.rule.clone(),
            due_at: d.due_at,
        });
    }
    if let Some(d) = st
        .schedule
        .reduction
        .as_ref()
        .filter(|_| !resolved && !st.accepted)
    {
        out.push(DeadlineFact {
            kind: DeadlineKind::Reduction,
            rule: d.rule.clone(),
            due_at: d.due_at,
        });
    }
    out
}

/// Rows of items per page when the scheduler gathers a system's facts.
const FACTS_PAGE: i64 = 2_000;

/// Reduces a page of item rows to the facts the reminders need, noting each item's version.
fn item_facts(
    rows: Vec<crate::items::ItemRow>,
    today: NaiveDate,
    under_vdr: bool,
    versions: &mut HashMap<String, i64>,
) -> Result<Vec<ItemFact>, StoreError> {
    let mut facts = Vec::with_capacity(rows.len());
    for row in rows {
        let item = row.into_domain(today)?;
        let id = item.id.to_string();
        versions.insert(id.clone(), item.version);
        facts.push(ItemFact {
            id,
            display_id: item.display_id.clone(),
            status: item.status,
            risk: item.adjusted_risk_rating.unwrap_or(item.risk_rating),
            scheduled_completion: item.scheduled_completion,
            // A dependency never checked in counts from the detection date.
            vendor_check_in: item
                .vendor_dependency
                .as_ref()
                .map(|v| v.last_check_in.unwrap_or(item.detected_on)),
            expiry: expiry_of(&item),
            deadlines: if under_vdr {
                deadlines_of(&item)
            } else {
                Vec::new()
            },
        });
    }
    Ok(facts)
}

/// `remind_after` of an item nothing will remind until it changes (a trigger moves it to the
/// past on every new version).
fn never() -> NaiveDateTime {
    NaiveDate::from_ymd_opt(9999, 12, 31)
        .unwrap_or(NaiveDate::MAX)
        .and_time(chrono::NaiveTime::MIN)
}

/// The system's items the scheduler looks at on its next tick, all of them: after a change to
/// what their reminders depend on besides themselves (the system's reminder policy, FedRAMP's
/// 2026 rules).
pub(crate) fn look_again(conn: &mut DbConnection, system_id: &str) -> Result<(), StoreError> {
    let past = DateTime::<Utc>::UNIX_EPOCH.naive_utc();
    diesel::update(item_reminders::table.filter(item_reminders::system_id.eq(system_id)))
        .filter(item_reminders::remind_after.gt(past))
        .set(item_reminders::remind_after.eq(past))
        .execute(conn)?;
    Ok(())
}

/// A system's items whose `remind_after` has come, a page at a time: each page read as whole
/// rows, reduced to its facts, its events emitted (`each`), then each item's next instant to
/// look at recorded ([`reminders::next_item_check`]; guarded by the version read, so an item
/// changed meanwhile is looked at again). A tick reads only the items a date or a window has
/// reached since they were last looked at, and those changed since (it read every scheduled
/// item each minute: 20 s of CPU at 1,000,000 items); its memory is a page's.
fn for_each_item_page(
    conn: &mut DbConnection,
    s: &LiveSystem,
    now: DateTime<Utc>,
    mut each: impl FnMut(&mut DbConnection, &[ItemFact], HashMap<String, i64>) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let today = now.date_naive();
    let under_vdr = s.vdr_since.is_some_and(|since| since <= today);
    // FedRAMP's 2026 deadlines count from `vdr_since`: every item is looked at again that day.
    let vdr_starts = s
        .vdr_since
        .filter(|since| *since > today)
        .map(|since| since.and_time(chrono::NaiveTime::MIN).and_utc());
    loop {
        let due: Vec<(String, i64)> = item_reminders::table
            .filter(item_reminders::system_id.eq(&s.id))
            .filter(item_reminders::remind_after.le(now.naive_utc()))
            .select((item_reminders::id, item_reminders::version))
            .limit(FACTS_PAGE)
            .load(conn)?;
        if due.is_empty() {
            return Ok(());
        }
        let full = due.len() as i64 == FACTS_PAGE;
        let mut rows: Vec<crate::items::ItemRow> = Vec::with_capacity(due.len());
        for ids in due.chunks(KEYS_PER_QUERY) {
            rows.extend(
                items::table
                    .filter(items::id.eq_any(ids.iter().map(|(id, _)| id.as_str())))
                    .filter(items::archived_at.is_null())
                    .filter(items::status.eq_any(SCHEDULED))
                    .select(crate::items::ItemRow::as_select())
                    .load::<crate::items::ItemRow>(conn)?,
            );
        }
        let mut versions = HashMap::with_capacity(rows.len());
        let facts = item_facts(rows, today, under_vdr, &mut versions)?;
        each(conn, &facts, versions)?;
        // Archived, resolved or closed items wait for a change (reopened, say).
        let mut next: HashMap<&str, NaiveDateTime> = HashMap::with_capacity(facts.len());
        for f in &facts {
            let at = [reminders::next_item_check(now, &s.policy, f), vdr_starts]
                .into_iter()
                .flatten()
                .min();
            next.insert(f.id.as_str(), at.map_or_else(never, |t| t.naive_utc()));
        }
        db::write(conn, |conn| {
            for (id, version) in &due {
                let at = next.get(id.as_str()).copied().unwrap_or_else(never);
                diesel::update(item_reminders::table.find(id))
                    .filter(item_reminders::version.eq(version))
                    .set(item_reminders::remind_after.eq(at))
                    .execute(conn)?;
            }
            Ok::<_, StoreError>(())
        })?;
        if !full {
            return Ok(());
        }
    }
}

/// A system's facts but its items (its unfinished milestones of active items, a page at a
/// time; its CMMC assessment; its last periodic review), and the version of every resource an
/// event may name.
fn system_facts(
    conn: &mut DbConnection,
    s: &LiveSystem,
) -> Result<(Facts, HashMap<String, i64>), StoreError> {
    let mut versions = HashMap::new();
    let mut facts_ms = Vec::new();
    let active: Vec<&str> = SCHEDULED
        .iter()
        .copied()
        .filter(|w| parse_word::<ItemStatus>("item status", w).is_ok_and(ItemStatus::is_active))
        .collect();
    let mut after = String::new();
    loop {
        // Milestones of resolved or archived items are not reminded.
        type Row = (
            String,
            String,
            NaiveDate,
            String,
            i64,
            String,
            String,
            Option<String>,
        );
        let ms: Vec<Row> = milestones::table
            .inner_join(items::table)
            .filter(milestones::system_id.eq(&s.id))
            .filter(milestones::status.eq_any(["planned", "in_progress"]))
            .filter(milestones::id.gt(&after))
            .filter(items::archived_at.is_null())
            .filter(items::status.eq_any(&active))
            .order(milestones::id.asc())
            .limit(FACTS_PAGE)
            .select((
                milestones::id,
                milestones::title,
                milestones::due_on,
                milestones::status,
                milestones::version,
                items::display_id,
                items::risk_rating,
                items::adjusted_risk_rating,
            ))
            .load(conn)?;
        let full = ms.len() as i64 == FACTS_PAGE;
        for (id, title, due_on, status, version, display, risk, adjusted) in ms {
            let risk: RiskRating = match adjusted {
                Some(a) => parse_word("risk rating", &a)?,
                None => parse_word("risk rating", &risk)?,
            };
            after.clone_from(&id);
            versions.insert(id.clone(), version);
            facts_ms.push(MilestoneFact {
                id,
                item_display_id: display,
                title,
                status: parse_word("milestone status", &status)?,
                risk,
                due_on,
            });
        }
        if !full {
            break;
        }
    }
    let cmmc: Option<(Option<NaiveDate>, i64)> = cmmc_assessments::table
        .find(&s.id)
        .select((
            cmmc_assessments::conditional_status_date,
            cmmc_assessments::version,
        ))
        .first(conn)
        .optional()?;
    // The last periodic review of the system: no review falls due in the period it was in.
    let last_review: Option<NaiveDateTime> = reviews::table
        .filter(reviews::system_id.eq(&s.id))
        .filter(reviews::kind.eq("periodic"))
        .select(diesel::dsl::max(reviews::reviewed_at))
        .first(conn)?;
    let facts = Facts {
        system_id: s.id.clone(),
        created_on: s.created_at.date(),
        last_review_on: last_review.map(|t| t.date()),
        policy: s.policy.clone(),
        items: Vec::new(),
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
    /// FedRAMP 2026 deadlines: the instant.
    #[serde(skip_serializing_if = "Option::is_none")]
    due_at: Option<DateTime<Utc>>,
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
                    due_at: e.due_at,
                    reason: &e.reason,
                },
            },
        )?;
        Ok(true)
    })
}

/// One pass of the scheduler at `now` (the scheduler's clock): emits every due event not yet
/// recorded, and answers how many it emitted. Only items whose next instant has come, or that
/// changed, are read, a page at a time; only the keys of a page's due events are looked up
/// among those recorded.
pub fn tick(conn: &mut DbConnection, now: DateTime<Utc>) -> Result<usize, StoreError> {
    let mut emitted = 0;
    for s in live_systems(conn, None)? {
        for_each_item_page(conn, &s, now, |conn, facts, versions| {
            let due = reminders::due_item_events_at(now, &s.policy, facts);
            emitted += emit_new(conn, &s.id, &due, |e| {
                versions.get(&e.resource_id).copied().unwrap_or(0)
            })?;
            Ok(())
        })?;
        let (facts, versions) = system_facts(conn, &s)?;
        let due = reminders::due_system_events_at(now, &facts);
        emitted += emit_new(conn, &s.id, &due, |e| match e.resource_kind {
            "system" => s.version,
            "cmmc_assessment" => versions
                .get(&format!("cmmc:{}", s.id))
                .copied()
                .unwrap_or(0),
            _ => versions.get(&e.resource_id).copied().unwrap_or(0),
        })?;
    }
    Ok(emitted)
}

/// Emits the events of `due` whose keys are not recorded yet; answers how many it emitted.
fn emit_new(
    conn: &mut DbConnection,
    system_id: &str,
    due: &[TimedEvent],
    version_of: impl Fn(&TimedEvent) -> i64,
) -> Result<usize, StoreError> {
    let mut known: HashSet<String> = HashSet::new();
    for keys in due.chunks(KEYS_PER_QUERY) {
        known.extend(
            reminder_keys::table
                .filter(reminder_keys::system_id.eq(system_id))
                .filter(reminder_keys::key.eq_any(keys.iter().map(|e| e.key.as_str())))
                .select(reminder_keys::key)
                .load::<String>(conn)?,
        );
    }
    let mut emitted = 0;
    for e in due.iter().filter(|e| !known.contains(&e.key)) {
        if emit(conn, system_id, e, version_of(e))? {
            emitted += 1;
        }
    }
    Ok(emitted)
}

/// Reminder keys looked up per query (SQLite binds at most 32,766 parameters).
const KEYS_PER_QUERY: usize = 500;

/// What needs someone now in the caller's scope (or in `system` only), most urgent first, at
/// most `limit` entries.
pub fn attention(
    conn: &mut DbConnection,
    scope: &SystemScope,
    system: Option<SystemId>,
    limit: usize,
) -> Result<Vec<Attention>, StoreError> {
    let today = db::now().date();
    Ok(attention_on(conn, scope, system, today, Some(limit))?.0)
}

/// The attention list on `today` (every entry, or the `keep` most urgent), with the contacts of
/// the systems it read. Items are read a page at a time with their open milestones, and each
/// page's entries merged into the list in its order: the list's memory is its entries' (at most
/// `keep` of them), not every watched item's (a million-item system held them all: gigabytes).
fn attention_on(
    conn: &mut DbConnection,
    scope: &SystemScope,
    system: Option<SystemId>,
    today: NaiveDate,
    keep: Option<usize>,
) -> Result<(Vec<Attention>, BTreeMap<SystemId, Contacts>), StoreError> {
    let only: Option<Vec<String>> = match (system, scope) {
        (Some(id), _) => Some(vec![id.to_string()]),
        (None, SystemScope::All) => None,
        (None, SystemScope::Only(ids)) => Some(ids.iter().map(|i| i.to_string()).collect()),
    };
    let systems = live_systems(conn, only.as_deref())?;
    let mut policies: BTreeMap<SystemId, ReminderPolicy> = BTreeMap::new();
    let mut contacts: BTreeMap<SystemId, Contacts> = BTreeMap::new();
    let fallback = ReminderPolicy::default();
    let mut out: Vec<Attention> = Vec::new();
    for s in systems {
        let sid: SystemId = parse_id(&s.id)?;
        policies.insert(sid, s.policy);
        contacts.insert(sid, s.contacts);
        // One status at a time, each page a range of `items_status_id_idx` in id order (with
        // the statuses together the planner sorted the system's items for every page), then
        // the pending deviations of items in other statuses.
        for pass in WATCHED.iter().copied().map(Some).chain([None]) {
            let mut after = String::new();
            loop {
                let mut q = items::table
                    .filter(items::system_id.eq(&s.id))
                    .filter(items::archived_at.is_null())
                    .filter(items::id.gt(&after))
                    .into_boxed();
                q = match pass {
                    Some(status) => q.filter(items::status.eq(status)),
                    None => q
                        .filter(items::status.ne_all(WATCHED))
                        .filter(items::deviation_state.like("%/pending")),
                };
                let rows: Vec<crate::items::ItemRow> = q
                    .order(items::id.asc())
                    .limit(FACTS_PAGE)
                    .select(crate::items::ItemRow::as_select())
                    .load(conn)?;
                let full = rows.len() as i64 == FACTS_PAGE;
                let items: Vec<Item> = rows
                    .into_iter()
                    .map(|r| r.into_domain(today))
                    .collect::<Result<_, _>>()?;
                let ids: Vec<String> = items.iter().map(|i| i.id.to_string()).collect();
                let Some(last) = ids.last().cloned() else {
                    break;
                };
                let ms: Vec<(String, String, String, NaiveDate)> = milestones::table
                    .filter(milestones::item_id.eq_any(&ids))
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
                out.extend(reminders::attention(today, &items, &open, |id| {
                    policies.get(&id).unwrap_or(&fallback)
                }));
                if let Some(n) = keep {
                    out.sort_by(reminders::attention_order);
                    out.truncate(n);
                }
                if !full {
                    break;
                }
                after = last;
            }
        }
    }
    out.sort_by(reminders::attention_order);
    Ok((out, contacts))
}

/// The e-mail digests of `today`: every live system's attention list, one digest per address
/// something waits on ([`reminders::digests`]).
pub fn digests(conn: &mut DbConnection, today: NaiveDate) -> Result<Vec<Digest>, StoreError> {
    let (entries, contacts) = attention_on(conn, &SystemScope::All, None, today, None)?;
    Ok(reminders::digests(&entries, |id| contacts.get(&id)))
}

/// The reminder key of `email`'s digest of `today`.
pub fn digest_key(today: NaiveDate, email: &str) -> String {
    format!("digest:{today}:{email}")
}

/// Claims `key` in each of `systems` (the systems a digest covers): answers those this caller
/// claimed. A system another instance (or an earlier tick) claimed is left to it, so a digest
/// is sent once per day per address whatever the restarts and instances.
pub fn claim_digest(
    conn: &mut DbConnection,
    systems: &[SystemId],
    key: &str,
) -> Result<Vec<SystemId>, StoreError> {
    let mut claimed = Vec::new();
    for s in systems {
        let sid = s.to_string();
        let inserted = db::write(conn, |conn| {
            let row = (
                reminder_keys::system_id.eq(&sid),
                reminder_keys::key.eq(key),
                reminder_keys::emitted_at.eq(db::now()),
            );
            let n = db::on_inner!(conn, |c| diesel::insert_into(reminder_keys::table)
                .values(row)
                .on_conflict_do_nothing()
                .execute(c))?;
            Ok::<usize, StoreError>(n)
        })?;
        if inserted > 0 {
            claimed.push(*s);
        }
    }
    Ok(claimed)
}

/// Gives back claims whose digest could not be sent, so the next tick tries again.
pub fn release_digest(
    conn: &mut DbConnection,
    systems: &[SystemId],
    key: &str,
) -> Result<(), StoreError> {
    let ids: Vec<String> = systems.iter().map(ToString::to_string).collect();
    db::write(conn, |conn| {
        diesel::delete(
            reminder_keys::table
                .filter(reminder_keys::system_id.eq_any(&ids))
                .filter(reminder_keys::key.eq(key)),
        )
        .execute(conn)?;
        Ok(())
    })
}
