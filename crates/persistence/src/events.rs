//! The history: one append-only, hash-chained event per change. Every write goes through
//! [`append`], inside the write's own transaction, so a change and its record commit together.

use crate::db::{Backend, DbConnection};
use crate::error::{corrupt, StoreError};
use crate::schema::{events, evidence, milestones, reviews, systems};
use chrono::NaiveDateTime;
use diesel::prelude::*;
use poam_domain::history::{self, BrokenLink, ChainedEvent, Event, Verifier};
use serde::Serialize;
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Created,
    Updated,
    Archived,
    Transitioned,
    Completed,
    Cancelled,
    Recorded,
    Withdrawn,
    Exported,
    Imported,
    /// Imported by an admin's migration (`migrate=true`): statuses and decisions taken in as
    /// the document has them.
    Migrated,
    /// Time-driven (the scheduler): an item or milestone passed its date unresolved.
    Overdue,
    /// Time-driven: a milestone is due within its risk's window.
    DueSoon,
    /// Time-driven: a vendor dependency went 30 days without a check-in.
    CheckInLate,
    /// Time-driven: a CMMC Conditional status is 30 or 7 days from its closeout.
    CloseoutNear,
    /// Time-driven: the periodic POA&M review is due.
    ReviewDue,
    /// Time-driven: an approved deviation or risk acceptance nears its expiry.
    Expiring,
    /// Time-driven: an approved deviation or risk acceptance passed its expiry.
    Expired,
    /// Time-driven: a FedRAMP 2026 evaluation or reduction deadline is near.
    DeadlineNear,
    /// Time-driven: a FedRAMP 2026 evaluation or reduction deadline passed.
    DeadlinePassed,
    /// Someone downloaded a file's content (evidence or a scan file): who read the CUI.
    Downloaded,
}

impl Action {
    pub const WORDS: &'static [&'static str] = &[
        "created",
        "updated",
        "archived",
        "transitioned",
        "completed",
        "cancelled",
        "recorded",
        "withdrawn",
        "exported",
        "imported",
        "migrated",
        "overdue",
        "due_soon",
        "check_in_late",
        "closeout_near",
        "review_due",
        "expiring",
        "expired",
        "deadline_near",
        "deadline_passed",
        "downloaded",
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Created => "created",
            Action::Updated => "updated",
            Action::Archived => "archived",
            Action::Transitioned => "transitioned",
            Action::Completed => "completed",
            Action::Cancelled => "cancelled",
            Action::Recorded => "recorded",
            Action::Withdrawn => "withdrawn",
            Action::Exported => "exported",
            Action::Imported => "imported",
            Action::Migrated => "migrated",
            Action::Overdue => "overdue",
            Action::DueSoon => "due_soon",
            Action::CheckInLate => "check_in_late",
            Action::CloseoutNear => "closeout_near",
            Action::ReviewDue => "review_due",
            Action::Expiring => "expiring",
            Action::Expired => "expired",
            Action::DeadlineNear => "deadline_near",
            Action::DeadlinePassed => "deadline_passed",
            Action::Downloaded => "downloaded",
        }
    }
}

/// The kinds of resource events name.
pub const RESOURCES: &[&str] = &[
    "system",
    "item",
    "milestone",
    "review",
    "evidence",
    "cmmc_assessment",
    "export",
    "import",
    "scan",
];

/// What changed, for [`append`].
pub struct Change<'a, T: Serialize> {
    pub system_id: &'a str,
    pub resource_kind: &'static str,
    pub resource_id: &'a str,
    pub action: Action,
    pub actor: &'a str,
    pub at: NaiveDateTime,
    pub version: i64,
    /// The resource before the change (`None` on creation).
    pub before: Option<&'a T>,
    pub after: &'a T,
}

fn to_value<T: Serialize>(v: &T) -> Result<Value, StoreError> {
    serde_json::to_value(v).map_err(|e| StoreError::Internal(format!("does not serialise: {e}")))
}

/// A system's row as writers need it: its counters, chain head and what a creation checks.
pub(crate) struct SystemHead {
    pub next_item_seq: i64,
    pub event_seq: i64,
    pub event_head: String,
    pub archived_at: Option<NaiveDateTime>,
    pub regime: String,
    pub deadline_policy: Option<String>,
}

/// Locks a system's row for the rest of the transaction and reads its head. On PostgreSQL this
/// is `SELECT … FOR NO KEY UPDATE`: the lock an `UPDATE` of the row takes (which, unlike
/// `FOR UPDATE`, does not wait for the key-share locks that inserting rows referencing the
/// system takes), without writing a new version of the row. (A no-op `UPDATE`
/// took the same lock but wrote a version; on this hottest of rows, under concurrent writers
/// whose snapshots keep the old versions alive, those piled up and every later lock walked
/// them: creates fell from 2,225/s to 531/s after a burst of updates, until a `VACUUM`.) On
/// SQLite the transaction already holds the write lock (`BEGIN IMMEDIATE`).
pub(crate) fn lock_system(conn: &mut DbConnection, sid: &str) -> Result<SystemHead, StoreError> {
    type Row = (
        i64,
        i64,
        String,
        Option<NaiveDateTime>,
        String,
        Option<String>,
    );
    let head = systems::table.find(sid).select((
        systems::next_item_seq,
        systems::event_seq,
        systems::event_head,
        systems::archived_at,
        systems::regime,
        systems::deadline_policy,
    ));
    let (next_item_seq, event_seq, event_head, archived_at, regime, deadline_policy): Row =
        match conn {
            DbConnection::Pg(c) => head.for_no_key_update().first(c)?,
            DbConnection::Sqlite(c) => head.first(c)?,
        };
    Ok(SystemHead {
        next_item_seq,
        event_seq,
        event_head,
        archived_at,
        regime,
        deadline_policy,
    })
}

/// Appends one event to its system's chain; call it inside the write's transaction. The system
/// row is locked first, so appends to one system are serialised and the chain stays linear,
/// across service instances too.
pub fn append<T: Serialize>(
    conn: &mut DbConnection,
    change: Change<'_, T>,
) -> Result<(), StoreError> {
    let head = lock_system(conn, change.system_id)?;
    let mut event = chained(change, head.event_seq + 1, head.event_head)?;
    if event.item_id.is_none() {
        event.item_id = owning_item(conn, event.resource_kind, &event.resource_id)?;
    }
    insert_chained(conn, std::slice::from_ref(&event))?;
    diesel::update(systems::table.find(&event.system_id))
        .set((
            systems::event_seq.eq(event.seq),
            systems::event_head.eq(&event.hash),
        ))
        .execute(conn)?;
    Ok(())
}

/// The item whose history an event of a milestone, evidence or review belongs to (the row was
/// written earlier in the same transaction); `None` for other kinds and system reviews.
fn owning_item(
    conn: &mut DbConnection,
    resource_kind: &str,
    resource_id: &str,
) -> Result<Option<String>, StoreError> {
    Ok(match resource_kind {
        "milestone" => milestones::table
            .find(resource_id)
            .select(milestones::item_id)
            .first::<String>(conn)
            .optional()?,
        "evidence" => evidence::table
            .find(resource_id)
            .select(evidence::item_id)
            .first::<String>(conn)
            .optional()?,
        "review" => reviews::table
            .find(resource_id)
            .select(reviews::item_id)
            .first::<Option<String>>(conn)
            .optional()?
            .flatten(),
        _ => None,
    })
}

/// An event ready to be stored: its place in the chain taken, its hash computed.
pub(crate) struct NewEvent {
    id: String,
    system_id: String,
    seq: i64,
    resource_kind: &'static str,
    resource_id: String,
    action: &'static str,
    actor: String,
    at: NaiveDateTime,
    version: i64,
    changes: String,
    snapshot: String,
    prev_hash: String,
    pub(crate) hash: String,
    /// The item whose history shows the event (not hashed: an index, not content).
    item_id: Option<String>,
}

/// The event of `change` at `seq`, after the event whose hash is `prev_hash`.
pub(crate) fn chained<T: Serialize>(
    change: Change<'_, T>,
    seq: i64,
    prev_hash: String,
) -> Result<NewEvent, StoreError> {
    let snapshot = to_value(change.after)?;
    let before = change.before.map(to_value).transpose()?;
    let mut event = ChainedEvent {
        id: uuid::Uuid::now_v7().to_string(),
        system_id: change.system_id.to_owned(),
        seq,
        at: history::event_time(change.at),
        actor: change.actor.to_owned(),
        action: change.action.as_str().to_owned(),
        resource_kind: change.resource_kind.to_owned(),
        resource_id: change.resource_id.to_owned(),
        version: change.version,
        changes: history::changes(before.as_ref(), &snapshot),
        snapshot,
        prev_hash,
        hash: String::new(),
    };
    let changes = history::canonical_json(&event.changes);
    let snapshot = history::canonical_json(&event.snapshot);
    event.hash = event.hash_of_parts(&event.prev_hash, &changes, &snapshot);
    let item_id = (change.resource_kind == "item").then(|| event.resource_id.clone());
    Ok(NewEvent {
        id: event.id,
        system_id: event.system_id,
        seq,
        resource_kind: change.resource_kind,
        resource_id: event.resource_id,
        action: change.action.as_str(),
        actor: event.actor,
        at: change.at,
        version: event.version,
        changes,
        snapshot,
        prev_hash: event.prev_hash,
        hash: event.hash,
        item_id,
    })
}

/// Stores chained events in one statement (the caller moves the chain's head).
pub(crate) fn insert_chained(
    conn: &mut DbConnection,
    events: &[NewEvent],
) -> Result<(), StoreError> {
    let rows: Vec<_> = events
        .iter()
        .map(|e| {
            (
                events::id.eq(&e.id),
                events::system_id.eq(&e.system_id),
                events::seq.eq(e.seq),
                events::resource_kind.eq(e.resource_kind),
                events::resource_id.eq(&e.resource_id),
                events::action.eq(e.action),
                events::actor.eq(&e.actor),
                events::at.eq(e.at),
                events::version.eq(e.version),
                events::changes.eq(&e.changes),
                events::snapshot.eq(&e.snapshot),
                events::prev_hash.eq(&e.prev_hash),
                events::hash.eq(&e.hash),
                events::item_id.eq(&e.item_id),
            )
        })
        .collect();
    crate::db::on_inner!(conn, |c| diesel::insert_into(events::table)
        .values(&rows)
        .execute(c))?;
    // The webhook outbox: deliveries of these events, in the same transaction.
    let emitted: Vec<crate::webhooks::Emitted<'_>> = events
        .iter()
        .map(|e| crate::webhooks::Emitted {
            event_id: &e.id,
            system_id: &e.system_id,
            seq: e.seq,
            resource_kind: e.resource_kind,
            action: e.action,
        })
        .collect();
    crate::webhooks::enqueue(conn, &emitted)?;
    Ok(())
}

/// A recorded event.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = events)]
pub struct EventRow {
    pub id: String,
    pub system_id: String,
    pub seq: i64,
    pub resource_kind: String,
    pub resource_id: String,
    pub action: String,
    pub actor: String,
    pub at: NaiveDateTime,
    pub version: i64,
    pub changes: String,
    pub snapshot: String,
    pub prev_hash: String,
    pub hash: String,
}

impl EventRow {
    pub fn chained(&self) -> Result<ChainedEvent, StoreError> {
        Ok(ChainedEvent {
            id: self.id.clone(),
            system_id: self.system_id.clone(),
            seq: self.seq,
            at: history::event_time(self.at),
            actor: self.actor.clone(),
            action: self.action.clone(),
            resource_kind: self.resource_kind.clone(),
            resource_id: self.resource_id.clone(),
            version: self.version,
            changes: serde_json::from_str(&self.changes)
                .map_err(|e| corrupt("event changes", e))?,
            snapshot: serde_json::from_str(&self.snapshot)
                .map_err(|e| corrupt("event snapshot", e))?,
            prev_hash: self.prev_hash.clone(),
            hash: self.hash.clone(),
        })
    }
}

impl EventRow {
    /// The event as every reader sees it (feed, item history, auditor bundle): the stored JSON
    /// texts are shown as stored, not re-parsed.
    pub fn view(&self) -> Result<Event<'_>, StoreError> {
        Ok(Event {
            id: &self.id,
            system_id: &self.system_id,
            seq: self.seq,
            at: self.at,
            actor: &self.actor,
            action: &self.action,
            resource_kind: &self.resource_kind,
            resource_id: &self.resource_id,
            version: self.version,
            changes: serde_json::from_str(&self.changes)
                .map_err(|e| corrupt("event changes", e))?,
            snapshot: serde_json::from_str(&self.snapshot)
                .map_err(|e| corrupt("event snapshot", e))?,
            prev_hash: &self.prev_hash,
            hash: &self.hash,
        })
    }
}

/// A page of an item's history in chain order: the item's own events and those of its
/// milestones, evidence and reviews, after `after_seq`, and whether more follow. One range of
/// the `(item_id, seq)` index.
pub fn of_item(
    conn: &mut DbConnection,
    item_id: &str,
    after_seq: i64,
    limit: i64,
) -> Result<(Vec<EventRow>, bool), StoreError> {
    let mut rows: Vec<EventRow> = events::table
        .filter(events::item_id.eq(item_id))
        .filter(events::seq.gt(after_seq))
        .order(events::seq.asc())
        .limit(limit.saturating_add(1))
        .select(EventRow::as_select())
        .load(conn)?;
    let more = rows.len() as i64 > limit;
    rows.truncate(usize::try_from(limit).unwrap_or(0));
    Ok((rows, more))
}

/// The events of one resource, oldest first.
pub fn of_resource(
    conn: &mut DbConnection,
    resource_kind: &str,
    resource_id: &str,
) -> Result<Vec<EventRow>, StoreError> {
    Ok(events::table
        .filter(events::resource_kind.eq(resource_kind))
        .filter(events::resource_id.eq(resource_id))
        .order(events::seq.asc())
        .select(EventRow::as_select())
        .load(conn)?)
}

/// Filters of a system's event feed.
#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    /// Only events with a greater `seq` (the position a poller last saw).
    pub after_seq: i64,
    pub resource_kind: Option<String>,
    pub resource_id: Option<String>,
    pub action: Option<String>,
    pub limit: i64,
}

/// A page of a system's events in `seq` order, and whether more follow.
pub fn feed(
    conn: &mut DbConnection,
    system_id: &str,
    q: &EventQuery,
) -> Result<(Vec<EventRow>, bool), StoreError> {
    let mut query: events::BoxedQuery<'_, Backend> = events::table
        .filter(events::system_id.eq(system_id.to_owned()))
        .filter(events::seq.gt(q.after_seq))
        .into_boxed();
    if let Some(k) = &q.resource_kind {
        query = query.filter(events::resource_kind.eq(k.clone()));
    }
    if let Some(r) = &q.resource_id {
        query = query.filter(events::resource_id.eq(r.clone()));
    }
    if let Some(a) = &q.action {
        query = query.filter(events::action.eq(a.clone()));
    }
    let mut rows: Vec<EventRow> = query
        .order(events::seq.asc())
        .limit(q.limit + 1)
        .select(EventRow::as_select())
        .load(conn)?;
    let more = rows.len() as i64 > q.limit;
    rows.truncate(usize::try_from(q.limit).unwrap_or(0));
    Ok((rows, more))
}

/// The outcome of checking one system's chain.
#[derive(Debug, Clone)]
pub struct Verification {
    pub system_id: String,
    pub events: i64,
    pub head_seq: i64,
    pub head_hash: String,
    pub broken: Option<BrokenLink>,
}

/// Events read per query when verifying a chain.
pub const VERIFY_PAGE: i64 = 1000;

/// Recomputes every link of a system's chain and compares the end with the head the system
/// recorded: [`verify_paged`] with pages of [`VERIFY_PAGE`] events.
pub fn verify(conn: &mut DbConnection, system_id: &str) -> Result<Verification, StoreError> {
    verify_paged(conn, system_id, VERIFY_PAGE)
}

/// [`verify`] reading `page` events per query (keyset on `seq`, from one snapshot): memory
/// holds one page and the last hash, however long the chain.
pub fn verify_paged(
    conn: &mut DbConnection,
    system_id: &str,
    page: i64,
) -> Result<Verification, StoreError> {
    let page = page.max(1);
    crate::db::snapshot(conn, |conn| {
        let (head_seq, head_hash) = systems::table
            .find(system_id)
            .select((systems::event_seq, systems::event_head))
            .first::<(i64, String)>(conn)?;
        let mut verifier = Verifier::new();
        let mut count = 0;
        let mut after = 0;
        let mut broken = None;
        'pages: loop {
            let rows: Vec<EventRow> = events::table
                .filter(events::system_id.eq(system_id))
                .filter(events::seq.gt(after))
                .order(events::seq.asc())
                .limit(page)
                .select(EventRow::as_select())
                .load(conn)?;
            count += rows.len() as i64;
            for row in &rows {
                let checked = match row.chained() {
                    Ok(e) => verifier.check(&e),
                    Err(_) => Err(BrokenLink {
                        seq: verifier.expected_seq(),
                        event_id: Some(row.id.clone()),
                        reason: "its stored JSON does not parse: the event was altered".into(),
                    }),
                };
                if let Err(b) = checked {
                    broken = Some(b);
                    break 'pages;
                }
            }
            match rows.last() {
                Some(last) if rows.len() as i64 == page => after = last.seq,
                _ => break,
            }
        }
        if broken.is_none() {
            broken = verifier.finish(head_seq, &head_hash).err();
        } else {
            // The count is of every event found, as before: the rest are counted, not read.
            count = events::table
                .filter(events::system_id.eq(system_id))
                .count()
                .get_result(conn)?;
        }
        Ok(Verification {
            system_id: system_id.to_owned(),
            events: count,
            head_seq,
            head_hash,
            broken,
        })
    })
}

/// Every system's id, for `poam audit verify`.
pub fn system_ids(conn: &mut DbConnection) -> Result<Vec<String>, StoreError> {
    Ok(systems::table
        .select(systems::id)
        .order(systems::created_at.asc())
        .load(conn)?)
}
