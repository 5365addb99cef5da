//! Exchange: the reads behind exports (one snapshot, read page by page), the record of every
//! export, bulk upserts keyed by external id or scanner finding, and OSCAL imports kept
//! idempotent by the document's uuids.

use crate::db::{self, DbConnection};
use crate::error::StoreError;
use crate::events::{self, Action, Change, EventQuery, EventRow};
use crate::evidence::EvidenceRow;
use crate::items::{self, ItemRow};
use crate::schema::{
    evidence, external_refs, items as items_t, milestones, reviews, systems, transitions,
};
use crate::systems::{archived_conflict, parse_word, utc};
use crate::workflow::{MilestoneRow, ReviewRow};
use chrono::NaiveDateTime;
use diesel::prelude::*;
use poam_domain::change;
use poam_domain::exchange::oscal::{self, MilestoneDraft};
use poam_domain::exchange::{ItemRecord, StatusChange};
use poam_domain::lifecycle::Request;
use poam_domain::workflow::{Milestone, MilestoneChange, Review};
use poam_domain::{Item, ItemFields, ItemId, ItemStatus, System, SystemId, SystemScope, Violation};
use serde::Serialize;
use std::collections::HashMap;

/// The state an export starts from, read inside its snapshot.
#[derive(Debug, Clone)]
pub struct ExportHead {
    pub system: System,
    /// Events in the chain, and the hash of the last one.
    pub event_seq: i64,
    pub event_head: String,
    /// Items not archived.
    pub live_items: i64,
    /// Archived items still unresolved (open, in progress, deferred): what a report without
    /// archived items leaves out, and says so.
    pub archived_unresolved: i64,
    /// The latest change to the system or an item.
    pub last_modified: NaiveDateTime,
}

/// What an export reads beside each item.
#[derive(Debug, Clone, Copy, Default)]
pub struct Load {
    pub milestones: bool,
    pub transitions: bool,
    pub evidence: bool,
    pub reviews: bool,
    pub archived: bool,
}

impl Load {
    pub const ALL: Load = Load {
        milestones: true,
        transitions: true,
        evidence: true,
        reviews: true,
        archived: true,
    };
}

/// The head of a system's export; `NotFound` outside the caller's scope.
pub fn head(
    conn: &mut DbConnection,
    system_id: SystemId,
    scope: &SystemScope,
) -> Result<ExportHead, StoreError> {
    let system = crate::systems::get(conn, system_id, scope)?;
    let sid = system_id.to_string();
    let (event_seq, event_head, updated): (i64, String, NaiveDateTime) = systems::table
        .find(&sid)
        .select((systems::event_seq, systems::event_head, systems::updated_at))
        .first(conn)?;
    let live_items: i64 = items_t::table
        .filter(items_t::system_id.eq(&sid))
        .filter(items_t::archived_at.is_null())
        .count()
        .get_result(conn)?;
    let active: Vec<String> = ItemStatus::active().map(|s| s.to_string()).collect();
    let archived_unresolved: i64 = items_t::table
        .filter(items_t::system_id.eq(&sid))
        .filter(items_t::archived_at.is_not_null())
        .filter(items_t::status.eq_any(&active))
        .count()
        .get_result(conn)?;
    let latest_item: Option<NaiveDateTime> = items_t::table
        .filter(items_t::system_id.eq(&sid))
        .select(diesel::dsl::max(items_t::updated_at))
        .first(conn)?;
    Ok(ExportHead {
        system,
        event_seq,
        event_head,
        live_items,
        archived_unresolved,
        last_modified: latest_item.map_or(updated, |t| t.max(updated)),
    })
}

type TransitionRow = (
    String,
    String,
    String,
    String,
    Option<String>,
    String,
    NaiveDateTime,
);

fn group<T>(rows: Vec<(String, T)>) -> HashMap<String, Vec<T>> {
    let mut map: HashMap<String, Vec<T>> = HashMap::new();
    for (k, v) in rows {
        map.entry(k).or_default().push(v);
    }
    map
}

/// Up to `limit` items after display sequence `after_seq`, in display order, each with what
/// `load` asks for (a handful of queries per page, whatever its size).
pub fn records(
    conn: &mut DbConnection,
    system_id: SystemId,
    after_seq: i64,
    limit: i64,
    load: Load,
) -> Result<Vec<(i64, ItemRecord)>, StoreError> {
    let sid = system_id.to_string();
    let mut q = items_t::table
        .filter(items_t::system_id.eq(&sid))
        .filter(items_t::seq.gt(after_seq))
        .into_boxed::<db::Backend>();
    if !load.archived {
        q = q.filter(items_t::archived_at.is_null());
    }
    let rows: Vec<ItemRow> = q
        .order(items_t::seq.asc())
        .limit(limit)
        .select(ItemRow::as_select())
        .load(conn)?;
    let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
    let seqs: Vec<i64> = rows.iter().map(|r| r.seq).collect();
    let mut milestones_of = if load.milestones && !ids.is_empty() {
        let rows: Vec<MilestoneRow> = milestones::table
            .filter(milestones::item_id.eq_any(&ids))
            .order((
                milestones::item_id,
                milestones::position,
                milestones::created_at,
            ))
            .select(MilestoneRow::as_select())
            .load(conn)?;
        group(
            rows.into_iter()
                .map(|r| {
                    let m = r.into_domain()?;
                    Ok((m.item_id.to_string(), m))
                })
                .collect::<Result<Vec<(String, Milestone)>, StoreError>>()?,
        )
    } else {
        HashMap::new()
    };
    let mut transitions_of = if load.transitions && !ids.is_empty() {
        let rows: Vec<TransitionRow> = transitions::table
            .filter(transitions::item_id.eq_any(&ids))
            .order((transitions::item_id, transitions::at, transitions::id))
            .select((
                transitions::item_id,
                transitions::id,
                transitions::from_status,
                transitions::to_status,
                transitions::comment,
                transitions::actor,
                transitions::at,
            ))
            .load(conn)?;
        group(
            rows.into_iter()
                .map(|(item, id, from, to, comment, actor, at): TransitionRow| {
                    Ok((
                        item,
                        StatusChange {
                            id,
                            from: parse_word::<ItemStatus>("item status", &from)?,
                            to: parse_word::<ItemStatus>("item status", &to)?,
                            comment,
                            actor,
                            at: utc(at),
                        },
                    ))
                })
                .collect::<Result<Vec<_>, StoreError>>()?,
        )
    } else {
        HashMap::new()
    };
    let mut evidence_of = if load.evidence && !ids.is_empty() {
        let rows: Vec<EvidenceRow> = evidence::table
            .filter(evidence::item_id.eq_any(&ids))
            .order((evidence::item_id, evidence::uploaded_at, evidence::id))
            .select(EvidenceRow::as_select())
            .load(conn)?;
        group(
            rows.into_iter()
                .map(|r| {
                    let e = r.into_domain()?;
                    Ok((e.item_id.to_string(), e))
                })
                .collect::<Result<Vec<_>, StoreError>>()?,
        )
    } else {
        HashMap::new()
    };
    let mut reviews_of = if load.reviews && !ids.is_empty() {
        let rows: Vec<ReviewRow> = reviews::table
            .filter(reviews::item_id.eq_any(&ids))
            .order((reviews::reviewed_at, reviews::id))
            .select(ReviewRow::as_select())
            .load(conn)?;
        group(
            rows.into_iter()
                .map(|r| {
                    let v = r.into_domain()?;
                    Ok((v.item_id.map(|i| i.to_string()).unwrap_or_default(), v))
                })
                .collect::<Result<Vec<(String, Review)>, StoreError>>()?,
        )
    } else {
        HashMap::new()
    };
    let today = db::now().date();
    rows.into_iter()
        .zip(seqs)
        .map(|(row, seq)| {
            let id = row.id.clone();
            Ok((
                seq,
                ItemRecord {
                    item: row.into_domain(today)?,
                    milestones: milestones_of.remove(&id).unwrap_or_default(),
                    transitions: transitions_of.remove(&id).unwrap_or_default(),
                    evidence: evidence_of.remove(&id).unwrap_or_default(),
                    reviews: reviews_of.remove(&id).unwrap_or_default(),
                },
            ))
        })
        .collect()
}

/// The reviews of the POA&M as a whole (periodic reviews), oldest first.
pub fn system_reviews(
    conn: &mut DbConnection,
    system_id: SystemId,
) -> Result<Vec<Review>, StoreError> {
    reviews::table
        .filter(reviews::system_id.eq(system_id.to_string()))
        .filter(reviews::item_id.is_null())
        .order((reviews::reviewed_at, reviews::id))
        .select(ReviewRow::as_select())
        .load(conn)?
        .into_iter()
        .map(ReviewRow::into_domain)
        .collect()
}

/// Up to `limit` events of the chain after `after_seq`, as stored.
pub fn events_after(
    conn: &mut DbConnection,
    system_id: SystemId,
    after_seq: i64,
    limit: i64,
) -> Result<Vec<EventRow>, StoreError> {
    let q = EventQuery {
        after_seq,
        resource_kind: None,
        resource_id: None,
        action: None,
        limit,
    };
    Ok(events::feed(conn, &system_id.to_string(), &q)?.0)
}

/// What an export or import leaves in the history.
#[derive(Debug, Clone, Serialize)]
pub struct ExchangeRecord {
    pub id: String,
    pub format: String,
    /// Parameters that shaped it (`sheet=open`), or the imported document's uuid.
    pub detail: Option<String>,
    pub by: String,
    pub counts: Option<serde_json::Value>,
}

pub(crate) fn append_record(
    conn: &mut DbConnection,
    sid: &str,
    kind: &'static str,
    action: Action,
    record: &ExchangeRecord,
    actor: &str,
) -> Result<(), StoreError> {
    events::append(
        conn,
        Change {
            system_id: sid,
            resource_kind: kind,
            resource_id: &record.id,
            action,
            actor,
            at: db::now(),
            version: 1,
            before: None,
            after: record,
        },
    )
}

/// Records an export in the system's history before it is read.
pub fn record_export(
    conn: &mut DbConnection,
    system_id: SystemId,
    scope: &SystemScope,
    record: &ExchangeRecord,
    actor: &str,
) -> Result<(), StoreError> {
    db::write(conn, |conn| {
        crate::systems::get(conn, system_id, scope)?;
        append_record(
            conn,
            &system_id.to_string(),
            "export",
            Action::Exported,
            record,
            actor,
        )
    })
}

fn live_system(
    conn: &mut DbConnection,
    system_id: SystemId,
    scope: &SystemScope,
) -> Result<String, StoreError> {
    let system = crate::systems::get(conn, system_id, scope)?;
    if system.archived_at.is_some() {
        return Err(archived_conflict("system"));
    }
    Ok(system_id.to_string())
}

fn ref_target(
    conn: &mut DbConnection,
    sid: &str,
    scheme: &str,
    key: &str,
) -> Result<Option<String>, StoreError> {
    Ok(external_refs::table
        .filter(external_refs::system_id.eq(sid))
        .filter(external_refs::scheme.eq(scheme))
        .filter(external_refs::ref_key.eq(key))
        .select(external_refs::resource_id)
        .first(conn)
        .optional()?)
}

fn add_ref(
    conn: &mut DbConnection,
    sid: &str,
    scheme: &str,
    key: &str,
    kind: &str,
    id: &str,
) -> Result<(), StoreError> {
    diesel::insert_into(external_refs::table)
        .values((
            external_refs::system_id.eq(sid),
            external_refs::scheme.eq(scheme),
            external_refs::ref_key.eq(key),
            external_refs::resource_kind.eq(kind),
            external_refs::resource_id.eq(id),
            external_refs::created_at.eq(db::now()),
        ))
        .execute(conn)?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Bulk upsert

/// How a bulk element finds the item it is about.
#[derive(Debug, Clone, PartialEq)]
pub enum BulkKey {
    /// The client's sync key.
    External(String),
    /// A scanner finding: one key per (source, source identifier, asset).
    Finding(Vec<String>),
    /// Neither: always a new item.
    New,
}

/// The finding key of one asset: the detector (case-insensitive), the detector's id of the
/// finding, the asset.
pub fn finding_key(detector: &str, identifier: &str, asset: &str) -> String {
    format!(
        "{}\u{1f}{}\u{1f}{}",
        detector.trim().to_lowercase(),
        identifier.trim(),
        asset.trim()
    )
}

/// What happened to one element.
#[derive(Debug)]
pub enum Outcome {
    Created(Written),
    Updated(Written),
    Unchanged(Written),
    /// A closed item whose finding reappeared: reopened (and updated).
    Reopened(Written),
    Failed(StoreError),
}

/// What an answer says of an item a batch wrote, and no more: a batch of thousands does not
/// hold every item it wrote until it answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub id: ItemId,
    pub display_id: String,
    pub version: i64,
}

impl From<Item> for Written {
    fn from(item: Item) -> Written {
        Written {
            id: item.id,
            display_id: item.display_id,
            version: item.version,
        }
    }
}

const FINDING: &str = "finding";

fn find_existing(
    conn: &mut DbConnection,
    sid: &str,
    key: &BulkKey,
) -> Result<Option<String>, StoreError> {
    match key {
        BulkKey::External(ext) => Ok(items_t::table
            .filter(items_t::system_id.eq(sid))
            .filter(items_t::external_id.eq(ext))
            .select(items_t::id)
            .first(conn)
            .optional()?),
        BulkKey::Finding(keys) => {
            for k in keys {
                if let Some(id) = ref_target(conn, sid, FINDING, k)? {
                    return Ok(Some(id));
                }
            }
            Ok(None)
        }
        BulkKey::New => Ok(None),
    }
}

/// The element matched the existing item `id`: updated (and reopened, if its finding
/// reappeared after the item was closed), or unchanged.
#[allow(clippy::too_many_arguments)]
fn update_element(
    conn: &mut DbConnection,
    sid: &str,
    scope: &SystemScope,
    actor: &str,
    action: Action,
    key: &BulkKey,
    id: &str,
    decide: &mut dyn FnMut(Option<&Item>) -> Result<ItemFields, StoreError>,
) -> Result<Outcome, StoreError> {
    let item_id: ItemId = crate::systems::parse_id(id)?;
    let mut current = items::locked(conn, item_id, scope)?;
    if current.archived_at.is_some() {
        return Err(archived_conflict("item"));
    }
    let mut reopened = false;
    if matches!(key, BulkKey::Finding(_)) && current.status == ItemStatus::Closed {
        let req = Request {
            to: Some(ItemStatus::Open),
            comment: Some(format!(
                "The finding reappeared in a bulk sync by {actor} after the item was closed."
            )),
            completed_on: None,
            target_date: None,
        };
        current = crate::workflow::transition_in(
            conn,
            item_id,
            scope,
            &poam_domain::IfMatch::Any,
            actor,
            &req,
        )?;
        reopened = true;
    }
    let fields = decide(Some(&current))?;
    let outcome = if fields == current.fields() {
        if reopened {
            Outcome::Reopened(current.into())
        } else {
            Outcome::Unchanged(current.into())
        }
    } else {
        let item = items::write_fields(conn, &current, &fields, db::now())?;
        items::record(conn, Some(&current), &item, action, actor)?;
        if reopened {
            Outcome::Reopened(item.into())
        } else {
            Outcome::Updated(item.into())
        }
    };
    if let (BulkKey::Finding(keys), Some(item)) = (key, outcome_item(&outcome)) {
        let id = item.id.to_string();
        for k in keys {
            if ref_target(conn, sid, FINDING, k)?.is_none() {
                add_ref(conn, sid, FINDING, k, "item", &id)?;
            }
        }
    }
    Ok(outcome)
}

/// Elements of a chunk that matched no item: created together when the chunk ends (or before
/// an element that names the same key, which must find the item created for it).
#[derive(Default)]
struct NewElements {
    /// Position in the chunk, the new item, and its finding keys.
    waiting: Vec<(usize, items::NewItem, Vec<String>)>,
}

impl NewElements {
    /// Whether an element with `key` must wait for these to be created.
    fn claims(&self, key: &BulkKey) -> bool {
        self.waiting.iter().any(|(_, new, keys)| match key {
            BulkKey::External(ext) => new.fields.external_id.as_deref() == Some(ext.as_str()),
            BulkKey::Finding(wanted) => wanted.iter().any(|k| keys.contains(k)),
            BulkKey::New => false,
        })
    }

    /// Creates the waiting items ([`items::create_many`]) with their finding references, and
    /// puts each one's outcome in its slot. Should a shared statement fail, each is created
    /// alone in its own savepoint.
    fn flush(
        &mut self,
        conn: &mut DbConnection,
        sid: &str,
        actor: &str,
        action: Action,
        slots: &mut [Option<Outcome>],
    ) -> Result<(), StoreError> {
        let waiting = std::mem::take(&mut self.waiting);
        if waiting.is_empty() {
            return Ok(());
        }
        let together = conn.transaction(|conn| {
            let news: Vec<&items::NewItem> = waiting.iter().map(|(_, new, _)| new).collect();
            let answers = items::create_many(conn, sid, &news, action)?;
            let now = db::now();
            let mut refs = Vec::new();
            for ((_, _, keys), answer) in waiting.iter().zip(&answers) {
                if let Ok(item) = answer {
                    let id = item.id.to_string();
                    refs.extend(keys.iter().map(|k| {
                        (
                            external_refs::system_id.eq(sid.to_owned()),
                            external_refs::scheme.eq(FINDING),
                            external_refs::ref_key.eq(k.clone()),
                            external_refs::resource_kind.eq("item"),
                            external_refs::resource_id.eq(id.clone()),
                            external_refs::created_at.eq(now),
                        )
                    }));
                }
            }
            if !refs.is_empty() {
                db::on_inner!(conn, |c| diesel::insert_into(external_refs::table)
                    .values(&refs)
                    .execute(c))?;
            }
            Ok::<_, StoreError>(answers)
        });
        match together {
            Ok(answers) => {
                for ((at, _, _), answer) in waiting.into_iter().zip(answers) {
                    slots[at] = Some(settled(answer.map(|i| Outcome::Created(i.into())))?);
                }
            }
            Err(e @ StoreError::Unavailable(_)) => return Err(e),
            Err(_) => {
                for (at, new, keys) in waiting {
                    let alone = conn.transaction(|conn| {
                        let item = items::create_in(conn, sid, &new.fields, actor, action)?;
                        let id = item.id.to_string();
                        for k in &keys {
                            add_ref(conn, sid, FINDING, k, "item", &id)?;
                        }
                        Ok(Outcome::Created(item.into()))
                    });
                    slots[at] = Some(settled(alone)?);
                }
            }
        }
        Ok(())
    }
}

/// An element's outcome: its own failure (a refusal, a conflict) is reported with it; the
/// database's failure, or an internal one, stops the batch.
fn settled(result: Result<Outcome, StoreError>) -> Result<Outcome, StoreError> {
    match result {
        Ok(o) => Ok(o),
        Err(e @ (StoreError::Unavailable(_) | StoreError::Internal(_))) => Err(e),
        Err(e) => Ok(Outcome::Failed(e)),
    }
}

fn outcome_item(o: &Outcome) -> Option<&Written> {
    match o {
        Outcome::Created(i)
        | Outcome::Updated(i)
        | Outcome::Unchanged(i)
        | Outcome::Reopened(i) => Some(i),
        Outcome::Failed(_) => None,
    }
}

/// Elements per transaction of a bulk upsert. An element that updates an item moves its
/// system's row (the history head); in one long PostgreSQL transaction those updates pile up row
/// versions that every later read of the row walks (1,000 elements: ~10 s), so batches commit in
/// chunks. Small chunks also let other writers in between.
const BULK_CHUNK: usize = 100;

/// Upserts a batch: chunks of [`BULK_CHUNK`] elements per transaction. An element that matches
/// an item updates it in its own savepoint; the elements that match none are created together at
/// the end of the chunk ([`items::create_many`]: one statement per table), or earlier when a
/// later element names one of their keys. A bad element is reported alone while the others
/// apply. `decide` turns an element (with the item it matched, if any) into the item's new
/// fields, or refuses it. If the database fails mid-batch, the chunks before stay committed and
/// the error is returned: a retry of the same batch finds them `unchanged`. `migrated`: an
/// admin's migration, recorded as such in the history. `seen`: the scan whose findings these
/// are (new items carry it as their `last_seen` from the start).
#[allow(clippy::too_many_arguments)]
pub fn bulk_upsert(
    conn: &mut DbConnection,
    system_id: SystemId,
    scope: &SystemScope,
    actor: &str,
    migrated: bool,
    keys: &[BulkKey],
    mut decide: impl FnMut(usize, Option<&Item>) -> Result<ItemFields, StoreError>,
    seen: Option<&poam_domain::threat::Seen>,
) -> Result<Vec<Outcome>, StoreError> {
    let (create, update) = if migrated {
        (Action::Migrated, Action::Migrated)
    } else {
        (Action::Created, Action::Updated)
    };
    let mut out = Vec::with_capacity(keys.len());
    let mut start = 0;
    loop {
        let end = (start + BULK_CHUNK).min(keys.len());
        db::write(conn, |conn| {
            let sid = live_system(conn, system_id, scope)?;
            let mut slots: Vec<Option<Outcome>> = (start..end).map(|_| None).collect();
            let mut new = NewElements::default();
            for (i, key) in keys.iter().enumerate().take(end).skip(start) {
                if new.claims(key) {
                    new.flush(conn, &sid, actor, create, &mut slots)?;
                }
                let outcome = match find_existing(conn, &sid, key)? {
                    None => match decide(i, None) {
                        Ok(fields) => {
                            let finding_keys = match key {
                                BulkKey::Finding(keys) => keys.clone(),
                                _ => Vec::new(),
                            };
                            let item = items::NewItem {
                                fields,
                                actor: actor.to_owned(),
                                seen: seen.cloned(),
                            };
                            new.waiting.push((i - start, item, finding_keys));
                            continue;
                        }
                        Err(e) => Err(e),
                    },
                    Some(id) => {
                        let mut element = |existing: Option<&Item>| decide(i, existing);
                        conn.transaction(|conn| {
                            update_element(conn, &sid, scope, actor, update, key, &id, &mut element)
                        })
                    }
                };
                slots[i - start] = Some(settled(outcome)?);
            }
            new.flush(conn, &sid, actor, create, &mut slots)?;
            for slot in slots {
                out.push(slot.ok_or_else(|| {
                    StoreError::Internal("a bulk element was left without an outcome".into())
                })?);
            }
            Ok::<_, StoreError>(())
        })?;
        if end >= keys.len() {
            return Ok(out);
        }
        start = end;
    }
}

// ---------------------------------------------------------------------------------------------
// OSCAL import

/// A poam-item to import: its uuid, its fields as the document has them (the domain decides
/// what is taken), its milestones.
#[derive(Debug, Clone)]
pub struct ImportItem {
    pub uuid: String,
    /// The document's `POAM-ID`: with a poam-item uuid this service derived from the same
    /// item's id, it names an item of this system (a system's own export imported back).
    pub poam_id: Option<String>,
    pub fields: ItemFields,
    pub milestones: Vec<MilestoneDraft>,
}

/// The item of this system a poam-item of its own export stands for: the `POAM-ID` names it
/// and the poam-item's uuid is the one an export derives from its id.
fn own_item(
    conn: &mut DbConnection,
    sid: &str,
    it: &ImportItem,
) -> Result<Option<String>, StoreError> {
    let Some(display) = it.poam_id.as_deref() else {
        return Ok(None);
    };
    let id: Option<String> = items_t::table
        .filter(items_t::system_id.eq(sid))
        .filter(items_t::display_id.eq(display))
        .select(items_t::id)
        .first(conn)
        .optional()?;
    Ok(id.filter(|id| oscal::uuid_for("poam-item", id) == it.uuid))
}

const OSCAL_ITEM: &str = "oscal:poam-item";
const OSCAL_TASK: &str = "oscal:task";

/// How one import writes: who, under which action, and the reason its milestone moves carry.
struct ImportRun<'a> {
    sid: &'a str,
    scope: &'a SystemScope,
    actor: &'a str,
    migrate: bool,
    action: Action,
    reason: String,
}

/// Imports the milestones of one item; `notes` gets what the rules set aside.
fn import_milestones(
    conn: &mut DbConnection,
    run: &ImportRun,
    item: &Item,
    drafts: &[MilestoneDraft],
    history: Option<&[Vec<MilestoneChange>]>,
    notes: &mut Vec<Violation>,
) -> Result<bool, StoreError> {
    let sid = run.sid;
    let iid = item.id.to_string();
    let mut changed = false;
    for (n, d) in drafts.iter().enumerate() {
        let position = i32::try_from(n + 1).unwrap_or(i32::MAX);
        let now = db::now();
        // A task of this system's own export names its milestone by a uuid derived from it.
        let target = match ref_target(conn, sid, OSCAL_TASK, &d.uuid)? {
            Some(id) => Some(id),
            None => milestones::table
                .filter(milestones::item_id.eq(&iid))
                .select(milestones::id)
                .load::<String>(conn)?
                .into_iter()
                .find(|id| oscal::uuid_for("milestone", id) == d.uuid),
        };
        let existing = match target {
            Some(id) => milestones::table
                .find(&id)
                .filter(milestones::item_id.eq(&iid))
                .select(MilestoneRow::as_select())
                .first(conn)
                .optional()?
                .map(MilestoneRow::into_domain)
                .transpose()?,
            None => None,
        };
        let Some(next) = change::import_milestone(
            existing.as_ref(),
            d,
            run.migrate,
            &run.reason,
            run.actor,
            utc(now),
            &format!("/milestones/{n}"),
            notes,
        ) else {
            continue;
        };
        let mut next = next;
        if let Some(recorded) = history.and_then(|h| h.get(n)) {
            change::sheet_milestone_history(existing.as_ref(), &mut next, recorded);
        }
        let changes = crate::systems::to_json(&next.changes)?;
        // What the document decides of the milestone, for an update and an insert alike.
        let content = (
            milestones::title.eq(&next.title),
            milestones::description.eq(&next.description),
            milestones::due_on.eq(next.due_on),
            milestones::status.eq(next.status.as_str()),
            milestones::completed_on.eq(next.completed_on),
            milestones::kind.eq(next.kind.as_str()),
            milestones::percent_complete.eq(next.percent_complete),
            milestones::changes.eq(&changes),
        );
        match existing {
            Some(m) => {
                diesel::update(milestones::table.find(m.id.to_string()))
                    .set((
                        content,
                        milestones::version.eq(m.version + 1),
                        milestones::updated_at.eq(now),
                    ))
                    .execute(conn)?;
                let after = crate::workflow::load_milestone(conn, &m.id.to_string())?;
                milestone_event(conn, run, &after, Some(&m))?;
            }
            None => {
                let id = uuid::Uuid::now_v7().to_string();
                diesel::insert_into(milestones::table)
                    .values((
                        milestones::id.eq(&id),
                        milestones::item_id.eq(&iid),
                        milestones::system_id.eq(sid),
                        content,
                        milestones::position.eq(position),
                        milestones::version.eq(1),
                        milestones::created_at.eq(now),
                        milestones::updated_at.eq(now),
                    ))
                    .execute(conn)?;
                if ref_target(conn, sid, OSCAL_TASK, &d.uuid)?.is_some() {
                    diesel::delete(
                        external_refs::table
                            .filter(external_refs::system_id.eq(sid))
                            .filter(external_refs::scheme.eq(OSCAL_TASK))
                            .filter(external_refs::ref_key.eq(&d.uuid)),
                    )
                    .execute(conn)?;
                }
                add_ref(conn, sid, OSCAL_TASK, &d.uuid, "milestone", &id)?;
                let after = crate::workflow::load_milestone(conn, &id)?;
                milestone_event(conn, run, &after, None)?;
            }
        }
        changed = true;
    }
    Ok(changed)
}

fn milestone_event(
    conn: &mut DbConnection,
    run: &ImportRun,
    after: &Milestone,
    before: Option<&Milestone>,
) -> Result<(), StoreError> {
    events::append(
        conn,
        Change {
            system_id: run.sid,
            resource_kind: "milestone",
            resource_id: &after.id.to_string(),
            action: run.action,
            actor: run.actor,
            at: db::now(),
            version: after.version,
            before,
            after,
        },
    )
}

fn one_import(
    conn: &mut DbConnection,
    run: &ImportRun,
    it: &ImportItem,
    decide: &mut dyn FnMut(Option<&Item>) -> Result<ItemFields, StoreError>,
    notes: &mut Vec<Violation>,
) -> Result<Outcome, StoreError> {
    let sid = run.sid;
    let target = match ref_target(conn, sid, OSCAL_ITEM, &it.uuid)? {
        Some(id) => Some(id),
        None => own_item(conn, sid, it)?,
    };
    match target {
        None => {
            let fields = decide(None)?;
            let item = items::create_in(conn, sid, &fields, run.actor, run.action)?;
            add_ref(
                conn,
                sid,
                OSCAL_ITEM,
                &it.uuid,
                "item",
                &item.id.to_string(),
            )?;
            import_milestones(conn, run, &item, &it.milestones, None, notes)?;
            Ok(Outcome::Created(item.into()))
        }
        Some(id) => update_imported(conn, run, &id, &it.milestones, None, decide, notes),
    }
}

/// One element of an import in its own savepoint: its outcome, its notes kept only when it
/// applied; a refused element is reported as failed, a failure of the database ends the import.
fn in_savepoint(
    conn: &mut DbConnection,
    notes: &mut Vec<Violation>,
    element: impl FnOnce(&mut DbConnection, &mut Vec<Violation>) -> Result<Outcome, StoreError>,
) -> Result<Outcome, StoreError> {
    let mut found = Vec::new();
    match conn.transaction(|conn| element(conn, &mut found)) {
        Ok(o) => {
            *notes = found;
            Ok(o)
        }
        Err(e @ (StoreError::Unavailable(_) | StoreError::Internal(_))) => Err(e),
        Err(e) => Ok(Outcome::Failed(e)),
    }
}

/// Updates the item an import matched (`id`): the domain's decision on it, written only when
/// it changes anything, then its milestones (and their recorded moves). Unchanged when
/// neither the item nor a milestone changed.
fn update_imported(
    conn: &mut DbConnection,
    run: &ImportRun,
    id: &str,
    milestones: &[MilestoneDraft],
    history: Option<&[Vec<MilestoneChange>]>,
    decide: &mut dyn FnMut(Option<&Item>) -> Result<ItemFields, StoreError>,
    notes: &mut Vec<Violation>,
) -> Result<Outcome, StoreError> {
    let item_id: ItemId = crate::systems::parse_id(id)?;
    let current = items::locked(conn, item_id, run.scope)?;
    if current.archived_at.is_some() {
        return Err(archived_conflict("item"));
    }
    let fields = decide(Some(&current))?;
    // A document without a deadline leaves the item's derived one as it is: compared as the
    // write would store it, an unchanged item is not written again.
    let fields = items::with_deadline(conn, &current, fields)?;
    let item = if current.fields() == fields {
        current.clone()
    } else {
        let item = items::write_fields(conn, &current, &fields, db::now())?;
        items::record(conn, Some(&current), &item, run.action, run.actor)?;
        item
    };
    let milestones_changed = import_milestones(conn, run, &item, milestones, history, notes)?;
    if item.version == current.version && !milestones_changed {
        Ok(Outcome::Unchanged(item.into()))
    } else {
        Ok(Outcome::Updated(item.into()))
    }
}

/// Imports the items of one OSCAL document, in chunks of [`BULK_CHUNK`] per transaction (a
/// savepoint each), recording the import with its counts in the history with the last chunk.
/// `decide` is the domain's decision on each item (its index, and the item it matched), as for
/// every write path. Returns each item's outcome and what its milestones' rules set aside. A
/// retry after a failure mid-way is safe: what was imported is found by its uuids.
#[allow(clippy::too_many_arguments)]
pub fn import_oscal(
    conn: &mut DbConnection,
    system_id: SystemId,
    scope: &SystemScope,
    actor: &str,
    migrate: bool,
    record: &mut ExchangeRecord,
    items: &[ImportItem],
    mut decide: impl FnMut(usize, Option<&Item>) -> Result<ItemFields, StoreError>,
) -> Result<(Vec<Outcome>, Vec<Vec<Violation>>), StoreError> {
    let mut out = Vec::with_capacity(items.len());
    let mut notes: Vec<Vec<Violation>> = vec![Vec::new(); items.len()];
    let action = if migrate {
        Action::Migrated
    } else {
        Action::Imported
    };
    let reason = format!(
        "moved by the import of OSCAL document {}",
        record.detail.as_deref().unwrap_or("(no uuid)")
    );
    let mut start = 0;
    loop {
        let end = (start + BULK_CHUNK).min(items.len());
        let last = end >= items.len();
        db::write(conn, |conn| {
            let sid = live_system(conn, system_id, scope)?;
            let run = ImportRun {
                sid: &sid,
                scope,
                actor,
                migrate,
                action,
                reason: reason.clone(),
            };
            for (i, it) in items.iter().enumerate().take(end).skip(start) {
                let mut element = |current: Option<&Item>| decide(i, current);
                out.push(in_savepoint(conn, &mut notes[i], |conn, found| {
                    one_import(conn, &run, it, &mut element, found)
                })?);
            }
            if last {
                let count = |f: fn(&Outcome) -> bool| out.iter().filter(|o| f(o)).count();
                record.counts = Some(serde_json::json!({
                    "created": count(|o| matches!(o, Outcome::Created(_))),
                    "updated": count(|o| matches!(o, Outcome::Updated(_))),
                    "skipped": count(|o| matches!(o, Outcome::Unchanged(_))),
                    "failed": count(|o| matches!(o, Outcome::Failed(_))),
                    "migrated": migrate,
                }));
                append_record(conn, &sid, "import", action, record, actor)?;
            }
            Ok::<(), StoreError>(())
        })?;
        if last {
            return Ok((out, notes));
        }
        start = end;
    }
}

// ---------------------------------------------------------------------------------------------
// Spreadsheet imports (FedRAMP and eMASS templates)

/// One item read from a spreadsheet: its key (the sheet's own id, stored as the item's
/// external id), its fields as the sheet gives them, its milestones (in the item's order) and
/// the due-date changes the sheet records for each.
#[derive(Debug, Clone)]
pub struct SheetItem {
    pub key: String,
    pub fields: ItemFields,
    pub milestones: Vec<MilestoneDraft>,
    /// One list per milestone, oldest first.
    pub history: Vec<Vec<MilestoneChange>>,
}

fn one_sheet_item(
    conn: &mut DbConnection,
    run: &ImportRun,
    it: &SheetItem,
    decide: &mut dyn FnMut(Option<&Item>) -> Result<ItemFields, StoreError>,
    notes: &mut Vec<Violation>,
) -> Result<Outcome, StoreError> {
    let target = find_existing(conn, run.sid, &BulkKey::External(it.key.clone()))?;
    match target {
        None => {
            let fields = decide(None)?;
            let item = items::create_in(conn, run.sid, &fields, run.actor, run.action)?;
            import_milestones(conn, run, &item, &it.milestones, Some(&it.history), notes)?;
            Ok(Outcome::Created(item.into()))
        }
        Some(id) => update_imported(
            conn,
            run,
            &id,
            &it.milestones,
            Some(&it.history),
            decide,
            notes,
        ),
    }
}

/// Imports the items of one spreadsheet in one transaction (a savepoint per item: a refused
/// item is reported and the others apply), keyed by the sheet's own ids (the items' external
/// ids), and records the import — the file's name and SHA-256 in `record.detail`, the counts
/// and the display ids it created and updated — in the history. `reason` is what the
/// milestone moves it records say. `decide` is the domain's decision on each item, as for
/// every write path.
#[allow(clippy::too_many_arguments)]
pub fn import_sheet(
    conn: &mut DbConnection,
    system_id: SystemId,
    scope: &SystemScope,
    actor: &str,
    migrate: bool,
    record: &mut ExchangeRecord,
    reason: &str,
    items: &[SheetItem],
    mut decide: impl FnMut(usize, Option<&Item>) -> Result<ItemFields, StoreError>,
) -> Result<(Vec<Outcome>, Vec<Vec<Violation>>), StoreError> {
    let action = if migrate {
        Action::Migrated
    } else {
        Action::Imported
    };
    db::write(conn, |conn| {
        let sid = live_system(conn, system_id, scope)?;
        let run = ImportRun {
            sid: &sid,
            scope,
            actor,
            migrate,
            action,
            reason: reason.to_owned(),
        };
        let mut out = Vec::with_capacity(items.len());
        let mut notes: Vec<Vec<Violation>> = vec![Vec::new(); items.len()];
        for (i, it) in items.iter().enumerate() {
            let mut element = |current: Option<&Item>| decide(i, current);
            out.push(in_savepoint(conn, &mut notes[i], |conn, found| {
                one_sheet_item(conn, &run, it, &mut element, found)
            })?);
        }
        let count = |f: fn(&Outcome) -> bool| out.iter().filter(|o| f(o)).count();
        let touched = |f: fn(&Outcome) -> bool| -> Vec<String> {
            out.iter()
                .filter(|o| f(o))
                .filter_map(outcome_item)
                .map(|i| i.display_id.clone())
                .collect()
        };
        let mut counts = serde_json::json!({
            "created": count(|o| matches!(o, Outcome::Created(_))),
            "updated": count(|o| matches!(o, Outcome::Updated(_))),
            "unchanged": count(|o| matches!(o, Outcome::Unchanged(_))),
            "failed": count(|o| matches!(o, Outcome::Failed(_))),
            "migrated": migrate,
            "created_items": touched(|o| matches!(o, Outcome::Created(_))),
            "updated_items": touched(|o| matches!(o, Outcome::Updated(_))),
        });
        if let (Some(serde_json::Value::Object(extra)), Some(map)) =
            (record.counts.take(), counts.as_object_mut())
        {
            map.extend(extra);
        }
        record.counts = Some(counts);
        append_record(conn, &sid, "import", action, record, actor)?;
        Ok((out, notes))
    })
}

/// The items that track these finding keys in a system (`None` where none does): what a repeated
/// scan import reports without writing anything.
pub fn tracked(
    conn: &mut DbConnection,
    system_id: SystemId,
    keys: &[String],
) -> Result<Vec<Option<(String, String)>>, StoreError> {
    let sid = system_id.to_string();
    let mut found: std::collections::HashMap<String, String> = std::collections::HashMap::new();
    for chunk in keys.chunks(400) {
        let rows: Vec<(String, String)> = external_refs::table
            .filter(external_refs::system_id.eq(&sid))
            .filter(external_refs::scheme.eq(FINDING))
            .filter(external_refs::ref_key.eq_any(chunk))
            .select((external_refs::ref_key, external_refs::resource_id))
            .load(conn)?;
        found.extend(rows);
    }
    let ids: Vec<&String> = found.values().collect();
    let mut displays: std::collections::HashMap<String, String> = std::collections::HashMap::new();
    for chunk in ids.chunks(400) {
        let rows: Vec<(String, String)> = items_t::table
            .filter(items_t::id.eq_any(chunk))
            .select((items_t::id, items_t::display_id))
            .load(conn)?;
        displays.extend(rows);
    }
    Ok(keys
        .iter()
        .map(|k| {
            found
                .get(k)
                .and_then(|id| displays.get(id).map(|d| (id.clone(), d.clone())))
        })
        .collect())
}
