//! POA&M items: creation with a per-system display id, merge-patch updates under optimistic
//! concurrency, archiving, and the filtered, keyset-paginated list.

use crate::db::{self, Backend, DbConnection};
use crate::error::{corrupt, StoreError};
use crate::events::{self, Action, Change};
use crate::page::{paginate, Cursor, Page};
use crate::schema::{cmmc_assessments, item_controls, item_signals, items, systems};
use crate::systems::{
    archived_conflict, check_version, escape_like, invalid_cursor, parse_id, parse_word, to_json,
    utc,
};
use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use poam_domain::deadlines;
use poam_domain::ids::display_id;
use poam_domain::profiles::{self, Finding};
use poam_domain::vdr;
use poam_domain::IfMatch;
use poam_domain::{
    ChangeManagement, Deviation, Item, ItemFields, ItemId, ItemMeta, ItemStatus, Level, Person,
    Regime, Resources, RiskRating, Source, SourceKind, SystemId, SystemScope, VendorDependency,
    Violation,
};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

const KIND: &str = "item";
/// The due key of an item without a scheduled completion date: it sorts last.
const NO_DUE_DATE: NaiveDate = match NaiveDate::from_ymd_opt(9999, 12, 31) {
    Some(d) => d,
    None => NaiveDate::MIN,
};
/// The stored sort key of a scheduled completion date: undated items last.
fn due_key(scheduled_completion: Option<NaiveDate>) -> NaiveDate {
    scheduled_completion.unwrap_or(NO_DUE_DATE)
}
/// The vendor check-in of a dependency never checked in: older than any real one.
pub(crate) const NEVER_CHECKED_IN: NaiveDate = match NaiveDate::from_ymd_opt(1900, 1, 1) {
    Some(d) => d,
    None => NaiveDate::MIN,
};
const TIME_KEY: &str = "%Y-%m-%dT%H:%M:%S%.6f";
const DATE_KEY: &str = "%Y-%m-%d";

/// An item's row as reads need it: the sort keys derived from its content (`risk_rank`,
/// `due_key`) are the list's business and are not read.
#[derive(Queryable, Selectable)]
#[diesel(table_name = items)]
pub(crate) struct ItemRow {
    pub(crate) id: String,
    system_id: String,
    pub(crate) seq: i64,
    display_id: String,
    external_id: Option<String>,
    title: String,
    description: String,
    controls: String,
    source_kind: String,
    risk_rating: String,
    adjusted_risk_rating: Option<String>,
    status: String,
    owner: Option<String>,
    #[diesel(deserialize_as = crate::dates::Day)]
    detected_on: NaiveDate,
    #[diesel(deserialize_as = crate::dates::MaybeDay)]
    scheduled_completion: Option<NaiveDate>,
    #[diesel(deserialize_as = crate::dates::MaybeDay)]
    completed_on: Option<NaiveDate>,
    #[diesel(deserialize_as = crate::dates::MaybeDay)]
    closed_on: Option<NaiveDate>,
    details: String,
    version: i64,
    #[diesel(deserialize_as = crate::dates::Instant)]
    created_at: NaiveDateTime,
    #[diesel(deserialize_as = crate::dates::Instant)]
    updated_at: NaiveDateTime,
    #[diesel(deserialize_as = crate::dates::MaybeInstant)]
    archived_at: Option<NaiveDateTime>,
    deadline_rule: Option<String>,
}

/// The item fields no query filters or sorts on, stored as one JSON document. Missing keys
/// read as empty, so a field added later needs no data migration; empty ones are not written
/// (an item read parses only what it holds), except `evaluation`, whose `null` the FedRAMP
/// metrics find with `LIKE` (`metrics::NO_EVALUATION`).
#[derive(Serialize, Deserialize, Default)]
#[serde(default)]
struct Details {
    #[serde(skip_serializing_if = "Option::is_none")]
    source_detector: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    source_identifier: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    cves: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    assets: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    likelihood: Option<Level>,
    #[serde(skip_serializing_if = "Option::is_none")]
    impact: Option<Level>,
    #[serde(skip_serializing_if = "Option::is_none")]
    risk_justification: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    implementer: Option<Person>,
    #[serde(skip_serializing_if = "Option::is_none")]
    remediation_plan: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    resources: Option<Resources>,
    #[serde(skip_serializing_if = "Option::is_none")]
    actual_cost: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    interim_mitigation: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    residual_risk: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    deviation: Option<Deviation>,
    #[serde(skip_serializing_if = "Option::is_none")]
    vendor_dependency: Option<VendorDependency>,
    #[serde(skip_serializing_if = "Option::is_none")]
    comments: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    change_management: Option<ChangeManagement>,
    #[serde(skip_serializing_if = "Option::is_none")]
    escalation_contact: Option<Person>,
    /// Why the item was archived: written once, by the archive (an archived item is frozen).
    #[serde(skip_serializing_if = "Option::is_none")]
    archive_reason: Option<String>,
    /// FedRAMP 2026: the item's evaluation.
    evaluation: Option<poam_domain::vdr::Evaluation>,
    /// FedRAMP 2026: the deadlines the system's class set on the last write (or move).
    #[serde(skip_serializing_if = "Option::is_none")]
    vdr_schedule: Option<StoredSchedule>,
    /// NISP: the C/W/S code, raw.
    #[serde(skip_serializing_if = "Option::is_none")]
    cws_code: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    ccis: Vec<String>,
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    source_details: std::collections::BTreeMap<String, String>,
    // Derived by the service (catalogs, scans), carried across writes: the fields of
    // [`Marks`], at the document's top level. Spelled out rather than `#[serde(flatten)]`,
    // which made serde buffer the whole document before reading it (a third of an item read).
    #[serde(skip_serializing_if = "Option::is_none")]
    kev: Option<poam_domain::threat::Kev>,
    #[serde(skip_serializing_if = "Option::is_none")]
    epss: Option<poam_domain::threat::Epss>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_seen: Option<poam_domain::threat::Seen>,
    #[serde(skip_serializing_if = "Option::is_none")]
    not_seen_since: Option<chrono::DateTime<chrono::Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    not_seen_scan: Option<uuid::Uuid>,
}

impl Details {
    fn marks(&self) -> Marks {
        Marks {
            kev: self.kev.clone(),
            epss: self.epss.clone(),
            last_seen: self.last_seen.clone(),
            not_seen_since: self.not_seen_since,
            not_seen_scan: self.not_seen_scan,
        }
    }

    fn set_marks(&mut self, m: Marks) {
        self.kev = m.kev;
        self.epss = m.epss;
        self.last_seen = m.last_seen;
        self.not_seen_since = m.not_seen_since;
        self.not_seen_scan = m.not_seen_scan;
    }
}

/// What the service derives for an item beside its fields: its KEV and EPSS matches (from the
/// loaded catalogs, recomputed on every write and catalog load) and its scan sightings.
#[derive(Serialize, Deserialize, Default, Clone, PartialEq, Debug)]
#[serde(default)]
pub(crate) struct Marks {
    pub(crate) kev: Option<poam_domain::threat::Kev>,
    pub(crate) epss: Option<poam_domain::threat::Epss>,
    pub(crate) last_seen: Option<poam_domain::threat::Seen>,
    pub(crate) not_seen_since: Option<chrono::DateTime<chrono::Utc>>,
    pub(crate) not_seen_scan: Option<uuid::Uuid>,
}

impl Marks {
    pub(crate) fn of(item: &Item) -> Marks {
        Marks {
            kev: item.kev.clone(),
            epss: item.epss.clone(),
            last_seen: item.last_seen.clone(),
            not_seen_since: item.not_seen_since,
            not_seen_scan: item.not_seen_scan,
        }
    }
}

/// The VDR/VER deadlines an item was given, with the class that gave them.
#[derive(Serialize, Deserialize, Clone, PartialEq)]
struct StoredSchedule {
    class: poam_domain::vdr::FedrampClass,
    schedule: poam_domain::vdr::Schedule,
}

/// The content columns (and what is derived from them), written on create and every update.
#[derive(Insertable, AsChangeset)]
#[diesel(table_name = items, treat_none_as_null = true)]
struct ItemContent {
    external_id: Option<String>,
    title: String,
    description: String,
    controls: String,
    source_kind: String,
    risk_rating: String,
    risk_rank: i32,
    adjusted_risk_rating: Option<String>,
    status: String,
    owner: Option<String>,
    owner_name_key: Option<String>,
    owner_email_key: Option<String>,
    detected_on: NaiveDate,
    scheduled_completion: Option<NaiveDate>,
    due_key: NaiveDate,
    completed_on: Option<NaiveDate>,
    closed_on: Option<NaiveDate>,
    details: String,
    search_text: String,
    deadline_rule: Option<String>,
    estimated_cost: Option<f64>,
    actual_cost: Option<f64>,
    deviation_state: Option<String>,
    vendor_check_in: Option<NaiveDate>,
}

fn word<T: fmt::Display>(v: Option<T>) -> Option<String> {
    v.map(|w| w.to_string())
}

impl ItemContent {
    /// The row as stored, with the columns a new item gets besides its content: what reading
    /// it back right after the insert would return.
    fn new_row(
        &self,
        id: &str,
        system_id: &str,
        seq: i64,
        display_id: &str,
        now: NaiveDateTime,
    ) -> ItemRow {
        ItemRow {
            id: id.to_owned(),
            system_id: system_id.to_owned(),
            seq,
            display_id: display_id.to_owned(),
            external_id: self.external_id.clone(),
            title: self.title.clone(),
            description: self.description.clone(),
            controls: self.controls.clone(),
            source_kind: self.source_kind.clone(),
            risk_rating: self.risk_rating.clone(),
            adjusted_risk_rating: self.adjusted_risk_rating.clone(),
            status: self.status.clone(),
            owner: self.owner.clone(),
            detected_on: self.detected_on,
            scheduled_completion: self.scheduled_completion,
            completed_on: self.completed_on,
            closed_on: self.closed_on,
            details: self.details.clone(),
            version: 1,
            created_at: now,
            updated_at: now,
            archived_at: None,
            deadline_rule: self.deadline_rule.clone(),
        }
    }

    fn from_fields(
        f: &ItemFields,
        display_id: &str,
        deadline: Resolved,
        marks: &Marks,
    ) -> Result<Self, StoreError> {
        let deadline_rule = deadline.rule;
        let mut search = vec![display_id, f.title.as_str(), f.description.as_str()];
        search.extend(f.external_id.as_deref());
        search.extend(f.source.identifier.as_deref());
        search.extend(f.controls.iter().map(String::as_str));
        search.extend(f.cves.iter().map(String::as_str));
        search.extend(f.assets.iter().map(String::as_str));
        let details = Details {
            source_detector: f.source.detector.clone(),
            source_identifier: f.source.identifier.clone(),
            cves: f.cves.clone(),
            assets: f.assets.clone(),
            likelihood: f.likelihood,
            impact: f.impact,
            risk_justification: f.risk_justification.clone(),
            implementer: f.implementer.clone(),
            remediation_plan: f.remediation_plan.clone(),
            resources: f.resources.clone(),
            actual_cost: f.actual_cost,
            interim_mitigation: f.interim_mitigation.clone(),
            residual_risk: f.residual_risk.clone(),
            deviation: f.deviation.clone(),
            vendor_dependency: f.vendor_dependency.clone(),
            comments: f.comments.clone(),
            change_management: f.change_management.clone(),
            escalation_contact: f.escalation_contact.clone(),
            archive_reason: None,
            evaluation: f.evaluation.clone(),
            vdr_schedule: deadline
                .class
                .zip(deadline.vdr)
                .map(|(class, schedule)| StoredSchedule { class, schedule }),
            cws_code: f.cws_code.clone(),
            ccis: f.ccis.clone(),
            source_details: f.source.details.clone(),
            kev: marks.kev.clone(),
            epss: marks.epss.clone(),
            last_seen: marks.last_seen.clone(),
            not_seen_since: marks.not_seen_since,
            not_seen_scan: marks.not_seen_scan,
        };
        Ok(ItemContent {
            external_id: f.external_id.clone(),
            title: f.title.clone(),
            description: f.description.clone(),
            controls: to_json(&f.controls)?,
            source_kind: f.source.kind.to_string(),
            risk_rating: f.risk_rating.to_string(),
            risk_rank: f.risk_rating.rank(),
            adjusted_risk_rating: word(f.adjusted_risk_rating),
            status: f.status.to_string(),
            owner: f.owner.as_ref().map(to_json).transpose()?,
            owner_name_key: f.owner.as_ref().map(|p| p.name.to_lowercase()),
            owner_email_key: f
                .owner
                .as_ref()
                .and_then(|p| p.email.as_ref())
                .map(|e| e.to_lowercase()),
            detected_on: f.detected_on,
            scheduled_completion: f.scheduled_completion,
            due_key: due_key(f.scheduled_completion),
            completed_on: f.completed_on,
            closed_on: f.closed_on,
            details: to_json(&details)?,
            search_text: search.join("\n").to_lowercase(),
            deadline_rule,
            estimated_cost: f.resources.as_ref().and_then(|r| r.estimated_cost),
            actual_cost: f.actual_cost,
            deviation_state: f
                .deviation
                .as_ref()
                .map(|d| format!("{}/{}", d.kind, d.status)),
            vendor_check_in: f
                .vendor_dependency
                .as_ref()
                .map(|v| v.last_check_in.unwrap_or(NEVER_CHECKED_IN)),
        })
    }
}

/// A stored JSON column, read by sonic-rs (SIMD string scanning: an item's details are most of
/// its text).
fn json<T: serde::de::DeserializeOwned>(what: &str, s: &str) -> Result<T, StoreError> {
    sonic_rs::from_str(s).map_err(|e| corrupt(what, e))
}

/// What an item's row holds besides its fields and metadata: the derived marks and the stored
/// VDR/VER schedule, applied once the item is assembled ([`Derived::apply`]).
struct Derived {
    marks: Marks,
    vdr_schedule: Option<StoredSchedule>,
}

impl Derived {
    fn apply(self, item: &mut Item) {
        let m = self.marks;
        item.kev = m.kev;
        item.epss = m.epss;
        item.last_seen = m.last_seen;
        item.not_seen_since = m.not_seen_since;
        item.not_seen_scan = m.not_seen_scan;
        if let Some(stored) = self.vdr_schedule {
            let status = vdr::status(
                stored.class,
                &stored.schedule,
                item.evaluation.as_ref(),
                utc(db::now()),
            );
            // Under the 2026 rules, overdue is FRD-ODV's, to the hour.
            item.overdue = item.status.is_active() && status.overdue;
            item.vdr = Some(status);
        }
    }
}

impl ItemRow {
    pub(crate) fn into_domain(self, today: NaiveDate) -> Result<Item, StoreError> {
        let (meta, fields, derived) = self.into_parts()?;
        let mut item = Item::assemble_with_grace(meta, fields, today, escalation_grace_days());
        derived.apply(&mut item);
        Ok(item)
    }

    /// [`ItemRow::into_domain`] with the item on the heap from its assembly: a read of one
    /// item then hands a pointer up through the store, the pool's guard and the handler's
    /// future instead of copying its 1,824 bytes at each step.
    pub(crate) fn into_boxed(self, today: NaiveDate) -> Result<Box<Item>, StoreError> {
        self.assemble_boxed(today, escalation_grace_days())
    }

    fn assemble_boxed(self, today: NaiveDate, grace_days: u32) -> Result<Box<Item>, StoreError> {
        let (meta, fields, derived) = self.into_parts()?;
        let mut item = Box::new(Item::assemble_with_grace(meta, fields, today, grace_days));
        derived.apply(&mut item);
        Ok(item)
    }

    fn into_parts(self) -> Result<(ItemMeta, ItemFields, Derived), StoreError> {
        let mut d: Details = json("details", &self.details)?;
        let archive_reason = d.archive_reason.take();
        let fields = ItemFields {
            external_id: self.external_id,
            title: self.title,
            description: self.description,
            controls: json("controls", &self.controls)?,
            source: Source {
                kind: parse_word::<SourceKind>("source_kind", &self.source_kind)?,
                detector: d.source_detector,
                identifier: d.source_identifier,
                details: d.source_details,
            },
            cves: d.cves,
            ccis: d.ccis,
            assets: d.assets,
            likelihood: d.likelihood,
            impact: d.impact,
            risk_rating: parse_word::<RiskRating>("risk_rating", &self.risk_rating)?,
            adjusted_risk_rating: self
                .adjusted_risk_rating
                .as_deref()
                .map(|s| parse_word::<RiskRating>("adjusted_risk_rating", s))
                .transpose()?,
            risk_justification: d.risk_justification,
            status: parse_word::<ItemStatus>("status", &self.status)?,
            owner: self
                .owner
                .as_deref()
                .map(|s| json("owner", s))
                .transpose()?,
            implementer: d.implementer,
            remediation_plan: d.remediation_plan,
            resources: d.resources,
            actual_cost: d.actual_cost,
            interim_mitigation: d.interim_mitigation,
            residual_risk: d.residual_risk,
            detected_on: self.detected_on,
            scheduled_completion: self.scheduled_completion,
            completed_on: self.completed_on,
            closed_on: self.closed_on,
            deviation: d.deviation,
            vendor_dependency: d.vendor_dependency,
            comments: d.comments,
            change_management: d.change_management,
            escalation_contact: d.escalation_contact,
            evaluation: d.evaluation,
            cws_code: d.cws_code,
        };
        let meta = ItemMeta {
            id: parse_id(&self.id)?,
            display_id: self.display_id,
            system_id: parse_id(&self.system_id)?,
            deadline_rule: self.deadline_rule,
            version: self.version,
            created_at: utc(self.created_at),
            updated_at: utc(self.updated_at),
            archived_at: self.archived_at.map(utc),
            archive_reason,
        };
        let derived = Derived {
            marks: Marks {
                kev: d.kev,
                epss: d.epss,
                last_seen: d.last_seen,
                not_seen_since: d.not_seen_since,
                not_seen_scan: d.not_seen_scan,
            },
            vdr_schedule: d.vdr_schedule,
        };
        Ok((meta, fields, derived))
    }
}

/// An item's deadlines as a write stores them: [`deadlines::resolve_item`]'s, with the class
/// of the VDR/VER schedule.
struct Resolved {
    scheduled_completion: Option<NaiveDate>,
    rule: Option<String>,
    class: Option<vdr::FedrampClass>,
    vdr: Option<vdr::Schedule>,
}

fn resolved(
    ctx: &deadlines::Context,
    f: &ItemFields,
    before: Option<&Item>,
    today: NaiveDate,
    kev: Option<&poam_domain::threat::Kev>,
) -> Resolved {
    // VDR-TFR-KEV: with the KEV catalog loaded, an evaluated item's KEV due date is the
    // catalog's unless a person gave one.
    let with_catalog;
    let f = match (kev, f.evaluation.as_ref()) {
        (Some(k), Some(e)) if e.kev_due_on.is_none() => {
            let mut g = f.clone();
            if let Some(e) = g.evaluation.as_mut() {
                e.kev_due_on = Some(k.due_date);
            }
            with_catalog = g;
            &with_catalog
        }
        _ => f,
    };
    let r = deadlines::resolve_item(
        ctx,
        f,
        before.map(|c| (c.scheduled_completion, c.deadline_rule.as_deref())),
        today,
    );
    let (mut scheduled_completion, mut rule) = (r.scheduled_completion, r.rule);
    if ctx.kev_deadlines && f.status.is_active() {
        if let Some((date, kev_rule)) =
            poam_domain::threat::kev_deadline((scheduled_completion, rule.as_deref()), kev)
        {
            scheduled_completion = Some(date);
            rule = Some(kev_rule);
        }
    }
    Resolved {
        scheduled_completion,
        rule,
        class: ctx.vdr.map(|v| v.class),
        vdr: r.vdr,
    }
}

fn today() -> NaiveDate {
    db::now().date()
}

/// Days an item may be overdue before it reads as escalated; process-wide, set once at start
/// from `POAM_ESCALATION_GRACE_DAYS`.
static ESCALATION_GRACE_DAYS: std::sync::atomic::AtomicU32 =
    std::sync::atomic::AtomicU32::new(poam_domain::item::DEFAULT_ESCALATION_GRACE_DAYS);

/// Sets the escalation grace (days) every item read from now on is judged by.
pub fn set_escalation_grace_days(days: u32) {
    ESCALATION_GRACE_DAYS.store(days, std::sync::atomic::Ordering::Relaxed);
}

/// The escalation grace in days.
pub fn escalation_grace_days() -> u32 {
    ESCALATION_GRACE_DAYS.load(std::sync::atomic::Ordering::Relaxed)
}

pub(crate) fn record(
    conn: &mut DbConnection,
    before: Option<&Item>,
    item: &Item,
    action: Action,
    actor: &str,
) -> Result<(), StoreError> {
    record_in_chain(conn, before, item, action, actor)
}

/// [`record`], at `place` (the event's `seq` and its predecessor's hash) when the caller has
/// already taken it from the system's row.
fn record_in_chain(
    conn: &mut DbConnection,
    before: Option<&Item>,
    item: &Item,
    action: Action,
    actor: &str,
) -> Result<(), StoreError> {
    let (system_id, id) = (item.system_id.to_string(), item.id.to_string());
    events::append(
        conn,
        change_of(before, item, action, actor, &system_id, &id),
    )
}

/// The history's record of a change to an item (`system_id` and `id` are its own, as text).
fn change_of<'a>(
    before: Option<&'a Item>,
    item: &'a Item,
    action: Action,
    actor: &'a str,
    system_id: &'a str,
    id: &'a str,
) -> Change<'a, Item> {
    Change {
        system_id,
        resource_kind: KIND,
        resource_id: id,
        action,
        actor,
        at: item.updated_at.naive_utc(),
        version: item.version,
        before,
        after: item,
    }
}

fn external_id_taken(existing_display_id: &str) -> StoreError {
    StoreError::Conflict(Violation::new(
        "external_id_taken",
        "/external_id",
        format!("this external_id already belongs to {existing_display_id} in this system"),
    ))
}

/// Refuses an external id another item of the system already has.
fn check_external_id(
    conn: &mut DbConnection,
    system_id: &str,
    external_id: Option<&str>,
    except: Option<&str>,
) -> Result<(), StoreError> {
    let Some(ext) = external_id else {
        return Ok(());
    };
    let mut q = items::table
        .filter(items::system_id.eq(system_id))
        .filter(items::external_id.eq(ext))
        .select(items::display_id)
        .into_boxed::<Backend>();
    if let Some(id) = except {
        q = q.filter(items::id.ne(id));
    }
    match q.first::<String>(conn).optional()? {
        Some(display) => Err(external_id_taken(&display)),
        None => Ok(()),
    }
}

/// A unique violation that slipped past the pre-check (a concurrent writer) is still a conflict.
fn unique_to_conflict(e: DieselError) -> StoreError {
    match e {
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, ref info)
            if info.message().contains("external_id")
                || info
                    .constraint_name()
                    .is_some_and(|c| c.contains("external_id")) =>
        {
            external_id_taken("another item")
        }
        other => other.into(),
    }
}

fn index_controls(
    conn: &mut DbConnection,
    item_id: &str,
    system_id: &str,
    controls: &[String],
) -> Result<(), StoreError> {
    diesel::delete(item_controls::table.filter(item_controls::item_id.eq(item_id)))
        .execute(conn)?;
    insert_controls(conn, item_id, system_id, controls)
}

/// The control index rows of a new item.
fn insert_controls(
    conn: &mut DbConnection,
    item_id: &str,
    system_id: &str,
    controls: &[String],
) -> Result<(), StoreError> {
    // One statement per control: multi-row VALUES does not go through the MultiConnection.
    for c in controls {
        diesel::insert_into(item_controls::table)
            .values((
                item_controls::item_id.eq(item_id),
                item_controls::system_id.eq(system_id),
                item_controls::control.eq(c.as_str()),
            ))
            .execute(conn)?;
    }
    Ok(())
}

pub(crate) fn load(conn: &mut DbConnection, id: &str) -> Result<Box<Item>, StoreError> {
    load_row(conn, id)?.into_boxed(today())
}

fn load_row(conn: &mut DbConnection, id: &str) -> Result<ItemRow, StoreError> {
    // On each backend's own connection, with the columns as a plain tuple: a query of static
    // shape, whose prepared statement diesel finds by its type instead of writing its SQL (32
    // quoted identifiers) again on every read, as it does through the multi-backend connection.
    Ok(match conn {
        DbConnection::Sqlite(c) => rowid::load(c, id)?,
        DbConnection::Pg(c) => items::table
            .find(id)
            .select(<ItemRow as Selectable<diesel::pg::Pg>>::construct_selection())
            .first::<ItemRow>(c)?,
    })
}

/// The columns of an item's [`Stamp`], and its system for the scope.
#[derive(Queryable)]
struct StampRow {
    system_id: String,
    version: i64,
    #[diesel(deserialize_as = crate::dates::Instant)]
    updated_at: NaiveDateTime,
}

/// On SQLite an item's row is found through its id's index (`items.id` is text) and then the
/// table by the row id the index gives: two B-tree descents, the first a fifth of the read's
/// time in SQLite (5.4% of the server's CPU under `make bench`'s GET by id, 10,000 items).
/// Each thread remembers the row ids of the items it read (at most [`rowid::REMEMBERED`],
/// forgotten all at once when full) and reads a remembered item by row id alone, `AND id = ?`
/// checked by the same statement: a row id that no longer holds that item (`VACUUM` renumbers
/// row ids; another database in the same process) finds no row, and the item is read through
/// the index as before. A hint only: never an answer from memory.
mod rowid {
    use super::{items, ItemRow, StampRow, StoreError};
    use diesel::prelude::*;
    use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
    use diesel::sqlite::{Sqlite, SqliteConnection};
    use std::cell::RefCell;
    use std::collections::HashMap;

    /// Row ids a thread remembers: 48 bytes each (the id's 36 and the row id), 1.5 MiB at most.
    pub(super) const REMEMBERED: usize = 1 << 15;

    /// An id as the table stores it (hyphenated, 36 bytes), the key of the remembered row ids.
    type Key = [u8; 36];

    thread_local! {
        static ROWIDS: RefCell<HashMap<Key, i64>> = RefCell::new(HashMap::new());
    }

    /// SQLite's `rowid` of an `items` row, as an expression diesel can select and compare
    /// with a statement of static shape (prepared once per connection).
    #[derive(Debug, Clone, Copy, QueryId, diesel::expression::ValidGrouping)]
    struct Rowid;

    impl Expression for Rowid {
        type SqlType = diesel::sql_types::BigInt;
    }

    impl QueryFragment<Sqlite> for Rowid {
        fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Sqlite>) -> QueryResult<()> {
            out.push_sql("`items`.rowid");
            Ok(())
        }
    }

    impl AppearsOnTable<items::table> for Rowid {}
    impl SelectableExpression<items::table> for Rowid {}

    /// The row id this thread remembers for `key`.
    fn hint(key: Option<Key>) -> Option<i64> {
        key.and_then(|k| ROWIDS.with(|r| r.borrow().get(&k).copied()))
    }

    fn remember(key: Option<Key>, rowid: i64) {
        if let Some(key) = key {
            ROWIDS.with(|r| {
                let mut r = r.borrow_mut();
                if r.len() >= REMEMBERED {
                    r.clear();
                }
                r.insert(key, rowid);
            });
        }
    }

    /// The row of `id`: by the remembered row id, else through the id's index (its row id
    /// remembered). One static statement of each shape per connection.
    pub(super) fn load(c: &mut SqliteConnection, id: &str) -> Result<ItemRow, StoreError> {
        let selection = <ItemRow as Selectable<Sqlite>>::construct_selection;
        let key = Key::try_from(id.as_bytes()).ok();
        let found = match hint(key) {
            Some(rowid) => items::table
                .filter(Rowid.eq(rowid))
                .filter(items::id.eq(id))
                .select(selection())
                .first::<ItemRow>(c)
                .optional()?,
            None => None,
        };
        if let Some(row) = found {
            return Ok(row);
        }
        let (rowid, row) = items::table
            .find(id)
            .select((Rowid, selection()))
            .first::<(i64, ItemRow)>(c)?;
        remember(key, rowid);
        Ok(row)
    }

    /// `id`'s stamp and system, from the `items_stamp_key` index alone (named: the planner
    /// would take the id's own unique index and then the row).
    #[derive(Debug, Clone, Copy)]
    struct StampById<'a>(&'a str);

    impl QueryId for StampById<'_> {
        type QueryId = StampById<'static>;
        const HAS_STATIC_QUERY_ID: bool = true;
    }

    impl Query for StampById<'_> {
        type SqlType = (
            diesel::sql_types::Text,
            diesel::sql_types::BigInt,
            diesel::sql_types::Timestamp,
        );
    }

    impl QueryFragment<Sqlite> for StampById<'_> {
        fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Sqlite>) -> QueryResult<()> {
            out.push_sql(
                "SELECT `system_id`, `version`, `updated_at` FROM `items` \
                 INDEXED BY `items_stamp_key` WHERE `id` = ",
            );
            out.push_bind_param::<diesel::sql_types::Text, _>(self.0)
        }
    }

    impl<Conn> RunQueryDsl<Conn> for StampById<'_> {}

    pub(super) fn stamp(c: &mut SqliteConnection, id: &str) -> Result<StampRow, StoreError> {
        Ok(StampById(id).get_result::<StampRow>(c)?)
    }
}

/// Creates an item in a system. The display id comes from the system's counter, incremented in
/// the same transaction: on PostgreSQL the row lock, on SQLite the write lock, serialise
/// concurrent creators (across service instances too), so display ids never repeat.
pub fn create(
    conn: &mut DbConnection,
    system_id: SystemId,
    scope: &SystemScope,
    fields: &ItemFields,
    actor: &str,
) -> Result<Item, StoreError> {
    if !scope.allows(system_id) {
        return Err(StoreError::NotFound);
    }
    let sid = system_id.to_string();
    db::write(conn, |conn| {
        create_in(conn, &sid, fields, actor, Action::Created)
    })
}

/// [`create`] inside the caller's transaction, the scope already checked: [`create_many`] with
/// one item.
pub(crate) fn create_in(
    conn: &mut DbConnection,
    sid: &str,
    fields: &ItemFields,
    actor: &str,
    action: Action,
) -> Result<Item, StoreError> {
    let new = NewItem {
        fields: fields.clone(),
        actor: actor.to_owned(),
        seen: None,
    };
    create_many(conn, sid, &[&new], action)?
        .pop()
        .unwrap_or_else(|| Err(StoreError::Internal("a creation went unanswered".into())))
}

/// An item to create, as one request asked for it (its system named beside it).
pub struct NewItem {
    pub fields: ItemFields,
    pub actor: String,
    /// The scan that reported it, when a scan import creates it: its `last_seen` from the start.
    pub seen: Option<poam_domain::threat::Seen>,
}

/// Creates several items of one system at once, inside the caller's transaction, the scope
/// already checked: the creations of one group-commit batch. Each gets the answer it would have
/// had alone, in order (a taken external id, a refusal by the regime's rules, an archived
/// system); the others are written with one statement per table, not one per item.
///
/// `Err` when a statement failed: nothing of the group is kept (the caller rolls back to its
/// savepoint) and may create the items one by one to tell which of them fails.
pub fn create_many(
    conn: &mut DbConnection,
    sid: &str,
    batch: &[&NewItem],
    action: Action,
) -> Result<Vec<Result<Item, StoreError>>, StoreError> {
    // The system's row is locked first, as by a single creation.
    let system = events::lock_system(conn, sid)?;
    if system.archived_at.is_some() {
        return Ok(batch
            .iter()
            .map(|_| Err(archived_conflict("system")))
            .collect());
    }
    let ctx = context_of(conn, sid, &system.regime, system.deadline_policy.as_deref())?;
    let (mut seq, mut event_seq, mut head) =
        (system.next_item_seq, system.event_seq, system.event_head);
    let wanted: Vec<&str> = batch
        .iter()
        .filter_map(|n| n.fields.external_id.as_deref())
        .collect();
    let mut taken: std::collections::HashMap<String, String> = if wanted.is_empty() {
        Default::default()
    } else {
        items::table
            .filter(items::system_id.eq(sid))
            .filter(items::external_id.eq_any(&wanted))
            .select((items::external_id, items::display_id))
            .load::<(Option<String>, String)>(conn)?
            .into_iter()
            .filter_map(|(ext, display)| ext.map(|e| (e, display)))
            .collect()
    };
    let now = db::now();
    let today = now.date();
    let threats = crate::threats::Lookup::of(
        conn,
        batch
            .iter()
            .flat_map(|n| n.fields.cves.iter().map(String::as_str)),
    )?;
    let mut answers = Vec::with_capacity(batch.len());
    let mut rows = Vec::new();
    let mut controls = Vec::new();
    let mut signals = Vec::new();
    let mut events = Vec::new();
    for new in batch {
        if let Some(display) = new.fields.external_id.as_deref().and_then(|e| taken.get(e)) {
            answers.push(Err(external_id_taken(display)));
            continue;
        }
        let refused = profiles::blocking(ctx.regime, &new.fields, today);
        if !refused.is_empty() {
            answers.push(Err(StoreError::Invalid(refused)));
            continue;
        }
        let mut fields = new.fields.clone();
        let marks = threats.marks(
            &fields.cves,
            Marks {
                last_seen: new.seen.clone(),
                ..Marks::default()
            },
        );
        let deadline = resolved(&ctx, &fields, None, today, marks.kev.as_ref());
        fields.scheduled_completion = deadline.scheduled_completion;
        seq += 1;
        event_seq += 1;
        let id = ItemId::new().to_string();
        let display = display_id(seq);
        let content = ItemContent::from_fields(&fields, &display, deadline, &marks)?;
        signals.extend(crate::threats::signal_row(&id, sid, &marks));
        let item = content
            .new_row(&id, sid, seq, &display, now)
            .into_domain(today)?;
        let event = events::chained(
            change_of(None, &item, action, &new.actor, sid, &id),
            event_seq,
            head,
        )?;
        head = event.hash.clone();
        if let Some(ext) = &fields.external_id {
            taken.insert(ext.clone(), display.clone());
        }
        controls.extend(fields.controls.iter().map(|c| {
            (
                item_controls::item_id.eq(id.clone()),
                item_controls::system_id.eq(sid.to_owned()),
                item_controls::control.eq(c.clone()),
            )
        }));
        rows.push((
            items::id.eq(id),
            items::system_id.eq(sid.to_owned()),
            items::seq.eq(seq),
            items::display_id.eq(display),
            content,
            items::version.eq(1),
            items::created_at.eq(now),
            items::updated_at.eq(now),
        ));
        events.push(event);
        answers.push(Ok(item));
    }
    if rows.is_empty() {
        return Ok(answers);
    }
    db::on_inner!(conn, |c| diesel::insert_into(items::table)
        .values(&rows)
        .execute(c))
    .map_err(unique_to_conflict)?;
    if !controls.is_empty() {
        db::on_inner!(conn, |c| diesel::insert_into(item_controls::table)
            .values(&controls)
            .execute(c))?;
    }
    crate::threats::insert_signals(conn, &signals)?;
    events::insert_chained(conn, &events)?;
    diesel::update(systems::table.find(sid))
        .set((
            systems::next_item_seq.eq(seq),
            systems::event_seq.eq(event_seq),
            systems::event_head.eq(&head),
        ))
        .execute(conn)?;
    Ok(answers)
}

/// An item whose system is in the caller's scope; archived items included.
pub fn get(
    conn: &mut DbConnection,
    id: ItemId,
    scope: &SystemScope,
) -> Result<Box<Item>, StoreError> {
    // The id's text written into a buffer on the stack, not through `Display`'s formatter.
    let mut buf = uuid::Uuid::encode_buffer();
    let item = load(conn, id.as_uuid().hyphenated().encode_lower(&mut buf))?;
    in_scope(item, scope)
}

fn in_scope(item: Box<Item>, scope: &SystemScope) -> Result<Box<Item>, StoreError> {
    if scope.allows(item.system_id) {
        Ok(item)
    } else {
        Err(StoreError::NotFound)
    }
}

/// What tells one state of an item's row from every other: its version (every write of the row
/// raises it), when that version was written, and what its derived fields are read for: the day
/// (`overdue`, `escalated`) and the escalation grace (`POAM_ESCALATION_GRACE_DAYS`, set per
/// process, but settable again). Two reads with equal stamps read the same item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    pub version: i64,
    pub updated_at: NaiveDateTime,
    pub today: NaiveDate,
    pub grace_days: u32,
}

/// An answer the caller kept for an item (a rendering), and what it is known to be of.
pub struct Kept<T> {
    /// The row's stamp the answer was made from.
    pub stamp: Stamp,
    /// The item's system at that stamp, for the caller's scope.
    pub system: SystemId,
    /// [`db::changes_seen`]'s count, read before the stamp was last read from the row.
    pub seen: u64,
    pub answer: T,
}

/// What [`get_or_cached`] found.
pub enum Read<T> {
    /// The caller's own answer, of the row as it stands. `renewed`: the count the row's stamp
    /// was read again under (the caller keeps it with the answer); `None` when nothing was
    /// committed since the kept count, so the row was not read at all.
    Cached {
        answer: T,
        stamp: Stamp,
        system: SystemId,
        renewed: Option<u64>,
    },
    /// The item, read whole, with its stamp and the count read before it where answers may be
    /// kept for it (SQLite).
    Item(Box<Item>, Option<(Stamp, u64)>),
}

/// [`get`] for a caller that keeps answers of its own (a rendering of the item). On SQLite,
/// [`db::changes_seen`] is asked first (one statement, no page of the items' table or its
/// indexes read): when it is the count the `kept` answer was checked under, nothing was
/// committed since, so the answer is of the row as it stands, and only the caller's scope is
/// checked against the kept system (with the day and the escalation grace, which are not the
/// row's). Otherwise, with a kept answer, the row's [`Stamp`] and system are read (three short
/// columns, from the `items_stamp_key` index alone), the scope checked, and the answer given
/// when its stamp is exactly the row's. Otherwise the item is read whole (one statement). On
/// PostgreSQL the item is always read whole (a second round trip would cost more than the
/// reading it saves). Every answer is of the row as it stands at this read.
pub fn get_or_cached<T>(
    conn: &mut DbConnection,
    id: ItemId,
    scope: &SystemScope,
    kept: Option<Kept<T>>,
) -> Result<Read<T>, StoreError> {
    let mut buf = uuid::Uuid::encode_buffer();
    let text = id.as_uuid().hyphenated().encode_lower(&mut buf);
    let (today, grace_days) = (today(), escalation_grace_days());
    let (row, seen) = match conn {
        DbConnection::Sqlite(c) => {
            // Before any read of the row: what it reads is at least as new as this count.
            let seen = db::changes_seen(c)?;
            if let Some(kept) = kept {
                let Kept {
                    stamp: kept_stamp,
                    system,
                    seen: kept_seen,
                    answer,
                } = kept;
                let same_day = kept_stamp.today == today && kept_stamp.grace_days == grace_days;
                if kept_seen == seen && same_day {
                    if !scope.allows(system) {
                        return Err(StoreError::NotFound);
                    }
                    return Ok(Read::Cached {
                        answer,
                        stamp: kept_stamp,
                        system,
                        renewed: None,
                    });
                }
                let row = rowid::stamp(c, text)?;
                let system = parse_id(&row.system_id)?;
                if !scope.allows(system) {
                    return Err(StoreError::NotFound);
                }
                let stamp = Stamp {
                    version: row.version,
                    updated_at: row.updated_at,
                    today,
                    grace_days,
                };
                if stamp == kept_stamp {
                    return Ok(Read::Cached {
                        answer,
                        stamp,
                        system,
                        renewed: Some(seen),
                    });
                }
            }
            (rowid::load(c, text)?, Some(seen))
        }
        DbConnection::Pg(_) => (load_row(conn, text)?, None),
    };
    let updated_at = row.updated_at;
    let item = in_scope(row.assemble_boxed(today, grace_days)?, scope)?;
    let stamp = seen.map(|seen| {
        let stamp = Stamp {
            version: item.version,
            updated_at,
            today,
            grace_days,
        };
        (stamp, seen)
    });
    Ok(Read::Item(item, stamp))
}

/// The item, read under its row's write lock (a no-op update first, as `systems::update`),
/// refused when its system is archived: an archived system is frozen with its items.
pub(crate) fn locked(
    conn: &mut DbConnection,
    id: ItemId,
    scope: &SystemScope,
) -> Result<Item, StoreError> {
    diesel::update(items::table.find(id.to_string()))
        .set(items::version.eq(items::version))
        .execute(conn)?;
    let item = get(conn, id, scope)?;
    let system_archived: Option<NaiveDateTime> = systems::table
        .find(item.system_id.to_string())
        .select(systems::archived_at)
        .first(conn)?;
    if system_archived.is_some() {
        return Err(archived_conflict("system"));
    }
    Ok(*item)
}

/// Applies `apply` to the current item inside one transaction (see `systems::update`).
pub fn update(
    conn: &mut DbConnection,
    id: ItemId,
    scope: &SystemScope,
    if_match: &IfMatch,
    actor: &str,
    apply: impl FnOnce(&Item) -> Result<ItemFields, StoreError>,
) -> Result<Item, StoreError> {
    db::write(conn, |conn| {
        let current = locked(conn, id, scope)?;
        check_version(if_match, current.version)?;
        if current.archived_at.is_some() {
            return Err(archived_conflict("item"));
        }
        let fields = apply(&current)?;
        if fields == current.fields() {
            return Ok(current);
        }
        let item = write_fields(conn, &current, &fields, db::now())?;
        record(conn, Some(&current), &item, Action::Updated, actor)?;
        Ok(item)
    })
}

/// Writes an item's new content under its version (inside the caller's transaction): the
/// external id re-checked, the version bumped, the control index kept in step.
pub(crate) fn write_fields(
    conn: &mut DbConnection,
    current: &Item,
    fields: &ItemFields,
    now: NaiveDateTime,
) -> Result<Item, StoreError> {
    let (iid, sid) = (current.id.to_string(), current.system_id.to_string());
    if fields.external_id != current.external_id {
        check_external_id(conn, &sid, fields.external_id.as_deref(), Some(&iid))?;
    }
    let ctx = deadline_context(conn, &sid)?;
    let refused = profiles::blocking(ctx.regime, fields, today());
    if !refused.is_empty() {
        return Err(StoreError::Invalid(refused));
    }
    let mut fields = fields.clone();
    let threats = crate::threats::Lookup::of(conn, fields.cves.iter().map(String::as_str))?;
    let marks = threats.marks(&fields.cves, Marks::of(current));
    let deadline = resolved(&ctx, &fields, Some(current), today(), marks.kev.as_ref());
    fields.scheduled_completion = deadline.scheduled_completion;
    let fields = &fields;
    if marks != Marks::of(current) {
        crate::threats::write_signals(conn, &iid, &sid, &marks)?;
    }
    let n = diesel::update(items::table.find(&iid))
        .filter(items::version.eq(current.version))
        .set((
            ItemContent::from_fields(fields, &current.display_id, deadline, &marks)?,
            items::version.eq(current.version + 1),
            items::updated_at.eq(now),
        ))
        .execute(conn)
        .map_err(unique_to_conflict)?;
    if n != 1 {
        return Err(StoreError::Stale {
            current: current.version,
        });
    }
    if fields.controls != current.controls {
        index_controls(conn, &iid, &sid, &fields.controls)?;
    }
    load(conn, &iid).map(|item| *item)
}

/// The fields as [`write_fields`] would store them: the scheduled completion resolved by the
/// system's deadline rules (a document without one keeps the item's derived deadline).
pub(crate) fn with_deadline(
    conn: &mut DbConnection,
    current: &Item,
    mut fields: ItemFields,
) -> Result<ItemFields, StoreError> {
    let ctx = deadline_context(conn, &current.system_id.to_string())?;
    let threats = crate::threats::Lookup::of(conn, fields.cves.iter().map(String::as_str))?;
    let marks = threats.marks(&fields.cves, Marks::of(current));
    fields.scheduled_completion =
        resolved(&ctx, &fields, Some(current), today(), marks.kev.as_ref()).scheduled_completion;
    Ok(fields)
}

/// Dry run of a whole POA&M: every unarchived item against the system's profile.
pub fn validate_system(
    conn: &mut DbConnection,
    system_id: SystemId,
    scope: &SystemScope,
) -> Result<Vec<Finding>, StoreError> {
    crate::systems::get(conn, system_id, scope)?;
    let sid = system_id.to_string();
    let ctx = deadline_context(conn, &sid)?;
    let statuses = crate::cmmc::statuses(conn, &sid)?;
    let mut facts: std::collections::BTreeMap<String, profiles::Facts> = Default::default();
    let milestones: Vec<(String, String)> = crate::schema::milestones::table
        .filter(crate::schema::milestones::system_id.eq(&sid))
        .select((
            crate::schema::milestones::item_id,
            crate::schema::milestones::status,
        ))
        .load(conn)?;
    for (item, status) in milestones {
        let f = facts.entry(item).or_default();
        f.milestones += 1;
        if status
            .parse::<poam_domain::workflow::MilestoneStatus>()
            .is_ok_and(|s| s.is_open())
        {
            f.open_milestones += 1;
        }
    }
    let rows: Vec<ItemRow> = items::table
        .filter(items::system_id.eq(&sid))
        .filter(items::archived_at.is_null())
        .order(items::seq.asc())
        .select(ItemRow::as_select())
        .load(conn)?;
    let today = today();
    let mut findings = Vec::new();
    for row in rows {
        let item = row.into_domain(today)?;
        let id = item.id.to_string();
        for mut f in profiles::check(
            ctx.regime,
            &item.fields(),
            facts.get(&id),
            statuses.as_ref(),
            today,
        ) {
            f.item_id = Some(id.clone());
            findings.push(f);
        }
    }
    Ok(findings)
}

/// Dry run of a proposed item in a system: its profile findings (the item is not saved).
pub fn validate_proposed(
    conn: &mut DbConnection,
    system_id: SystemId,
    scope: &SystemScope,
    fields: &ItemFields,
) -> Result<Vec<Finding>, StoreError> {
    crate::systems::get(conn, system_id, scope)?;
    let sid = system_id.to_string();
    let ctx = deadline_context(conn, &sid)?;
    let statuses = crate::cmmc::statuses(conn, &sid)?;
    Ok(profiles::check(
        ctx.regime,
        fields,
        None,
        statuses.as_ref(),
        today(),
    ))
}

/// What decides the default deadlines of a system's items.
pub(crate) fn deadline_context(
    conn: &mut DbConnection,
    system_id: &str,
) -> Result<deadlines::Context, StoreError> {
    let (regime, policy): (String, Option<String>) = systems::table
        .find(system_id)
        .select((systems::regime, systems::deadline_policy))
        .first(conn)?;
    context_of(conn, system_id, &regime, policy.as_deref())
}

/// The system's scan settings.
pub(crate) fn scan_settings(
    conn: &mut DbConnection,
    system_id: &str,
) -> Result<poam_domain::scan::ScanSettings, StoreError> {
    let raw: Option<String> = systems::table
        .find(system_id)
        .select(systems::vdr)
        .first(conn)?;
    Ok(crate::systems::VdrSettings::parse(raw.as_deref())?
        .scans
        .unwrap_or_default())
}

/// The system's FedRAMP 2026 regime, when it has one.
fn vdr_regime_of(
    conn: &mut DbConnection,
    system_id: &str,
    regime: Regime,
) -> Result<Option<vdr::Regime>, StoreError> {
    if regime != Regime::Fedramp {
        return Ok(None);
    }
    let raw: Option<String> = systems::table
        .find(system_id)
        .select(systems::vdr)
        .first(conn)?;
    let s = crate::systems::VdrSettings::parse(raw.as_deref())?;
    Ok(s.fedramp_class
        .zip(s.vdr_since)
        .map(|(class, since)| vdr::Regime {
            class,
            since,
            clock: s.vdr_clock.unwrap_or(vdr::DEFAULT_CLOCK),
        }))
}

/// [`deadline_context`] from the system's regime and policy, already read.
fn context_of(
    conn: &mut DbConnection,
    system_id: &str,
    regime: &str,
    policy: Option<&str>,
) -> Result<deadlines::Context, StoreError> {
    let regime: Regime = parse_word("regime", regime)?;
    // Only a CMMC system has an assessment whose Conditional status bounds its deadlines.
    let conditional: Option<Option<NaiveDate>> =
        if matches!(regime, Regime::CmmcL2 | Regime::CmmcL3) {
            cmmc_assessments::table
                .find(system_id)
                .select(cmmc_assessments::conditional_status_date)
                .first(conn)
                .optional()?
        } else {
            None
        };
    Ok(deadlines::Context {
        regime,
        custom: policy
            .map(|p| serde_json::from_str(p).map_err(|e| corrupt("deadline policy", e)))
            .transpose()?,
        conditional_status_date: conditional.flatten(),
        vdr: vdr_regime_of(conn, system_id, regime)?,
        kev_deadlines: scan_settings(conn, system_id)?.kev_deadlines(regime),
    })
}

/// Recomputes an item's KEV and EPSS marks from the loaded catalogs, and the deadline a KEV due
/// date sets (never a person's). Returns whether the marks changed and whether the deadline
/// moved (recorded in the history as `action` by `actor`).
pub(crate) fn refresh_marks(
    conn: &mut DbConnection,
    iid: &str,
    actor: &str,
    action: Action,
) -> Result<(bool, bool), StoreError> {
    let current = load(conn, iid)?;
    let sid = current.system_id.to_string();
    let threats = crate::threats::Lookup::of(conn, current.cves.iter().map(String::as_str))?;
    let marks = threats.marks(&current.cves, Marks::of(&current));
    let ctx = deadline_context(conn, &sid)?;
    let today = today();
    let fields = current.fields();
    let deadline = resolved(&ctx, &fields, Some(&current), today, marks.kev.as_ref());
    let moved = deadline.scheduled_completion != current.scheduled_completion
        || deadline.rule != current.deadline_rule;
    let marked = marks != Marks::of(&current);
    if !moved && !marked {
        return Ok((false, false));
    }
    let mut next = fields;
    next.scheduled_completion = deadline.scheduled_completion;
    crate::threats::write_signals(conn, iid, &sid, &marks)?;
    diesel::update(items::table.find(iid))
        .filter(items::version.eq(current.version))
        .set((
            ItemContent::from_fields(&next, &current.display_id, deadline, &marks)?,
            items::version.eq(current.version + 1),
            items::updated_at.eq(db::now()),
        ))
        .execute(conn)?;
    if moved {
        let item = load(conn, iid)?;
        record(conn, Some(&current), &item, action, actor)?;
    }
    Ok((marked, moved))
}

/// Changes an item's scan sightings (`last_seen`, `not_seen_since`): a new version, no change
/// of its fields (the scan itself is in the history and attached as evidence).
pub(crate) fn set_sightings(
    conn: &mut DbConnection,
    iid: &str,
    change: impl FnOnce(&mut Marks),
) -> Result<bool, StoreError> {
    let row: (String, String, i64) = items::table
        .find(iid)
        .select((items::details, items::system_id, items::version))
        .first(conn)?;
    let (raw, sid, version) = row;
    let mut details: Details = json("details", &raw)?;
    let before = details.marks();
    let mut marks = before.clone();
    change(&mut marks);
    if marks == before {
        return Ok(false);
    }
    if marks.not_seen_since != before.not_seen_since {
        crate::threats::write_signals(conn, iid, &sid, &marks)?;
    }
    details.set_marks(marks);
    diesel::update(items::table.find(iid))
        .set((
            items::details.eq(to_json(&details)?),
            items::version.eq(version + 1),
            items::updated_at.eq(db::now()),
        ))
        .execute(conn)?;
    Ok(true)
}

/// Recomputes the deadlines the policy set (never a date a person set) of a system's unresolved
/// items, after its policy, regime, FedRAMP 2026 settings or Conditional status date changed;
/// each change is recorded. (The VDR/VER schedule of an item with a person's date is
/// recomputed too; the date stays theirs.)
pub fn apply_policy(
    conn: &mut DbConnection,
    system_id: SystemId,
    actor: &str,
) -> Result<usize, StoreError> {
    let sid = system_id.to_string();
    let ctx = deadline_context(conn, &sid)?;
    let active: Vec<String> = ItemStatus::active().map(|s| s.to_string()).collect();
    let rows: Vec<ItemRow> = items::table
        .filter(items::system_id.eq(&sid))
        .filter(items::archived_at.is_null())
        .filter(items::status.eq_any(active))
        .select(ItemRow::as_select())
        .load(conn)?;
    let today = today();
    let now = db::now();
    let mut changed = 0;
    for row in rows {
        let mut details: Details = json("details", &row.details)?;
        let current = row.into_domain(today)?;
        let deadline = resolved(
            &ctx,
            &current.fields(),
            Some(&current),
            today,
            current.kev.as_ref(),
        );
        let (scheduled, rule) = (deadline.scheduled_completion, deadline.rule.clone());
        let schedule = deadline
            .class
            .zip(deadline.vdr)
            .map(|(class, schedule)| StoredSchedule { class, schedule });
        if scheduled == current.scheduled_completion
            && rule == current.deadline_rule
            && schedule == details.vdr_schedule
        {
            continue;
        }
        details.vdr_schedule = schedule;
        let iid = current.id.to_string();
        diesel::update(items::table.find(&iid))
            .filter(items::version.eq(current.version))
            .set((
                items::scheduled_completion.eq(scheduled),
                items::due_key.eq(due_key(scheduled)),
                items::deadline_rule.eq(&rule),
                items::details.eq(to_json(&details)?),
                items::version.eq(current.version + 1),
                items::updated_at.eq(now),
            ))
            .execute(conn)?;
        let item = load(conn, &iid)?;
        record(conn, Some(&current), &item, Action::Updated, actor)?;
        changed += 1;
    }
    Ok(changed)
}

/// Archives an item: kept, with its history, hidden from default lists and frozen. `decide`
/// is the domain's decision on the current item (who may archive it, whether it needs a
/// reason); the reason is stored with the item and in the archive's history event.
pub fn archive(
    conn: &mut DbConnection,
    id: ItemId,
    scope: &SystemScope,
    if_match: &IfMatch,
    actor: &str,
    reason: Option<&str>,
    decide: impl FnOnce(&Item) -> Result<(), StoreError>,
) -> Result<Item, StoreError> {
    db::write(conn, |conn| {
        let current = locked(conn, id, scope)?;
        check_version(if_match, current.version)?;
        if current.archived_at.is_some() {
            return Ok(current);
        }
        decide(&current)?;
        let iid = id.to_string();
        let now = db::now();
        let reason = reason.map(str::trim).filter(|r| !r.is_empty());
        let raw: String = items::table.find(&iid).select(items::details).first(conn)?;
        let mut details: Details = json("details", &raw)?;
        details.archive_reason = reason.map(str::to_owned);
        diesel::update(items::table.find(&iid))
            .filter(items::version.eq(current.version))
            .set((
                items::archived_at.eq(now),
                items::details.eq(to_json(&details)?),
                items::version.eq(current.version + 1),
                items::updated_at.eq(now),
            ))
            .execute(conn)?;
        let item = load(conn, &iid)?;
        record(conn, Some(&current), &item, Action::Archived, actor)?;
        Ok(*item)
    })
}

/// What the item list can be sorted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    DisplayId,
    CreatedAt,
    UpdatedAt,
    DetectedOn,
    ScheduledCompletion,
    RiskRating,
    /// The EPSS score (items without one sort as -1).
    Epss,
}

/// A sort: a key, ascending or (with a leading `-`) descending. `risk_rating` ascends from
/// low to critical; `-risk_rating` puts the most severe first. Items without a scheduled
/// completion date sort after every dated one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ItemSort {
    pub key: SortKey,
    pub descending: bool,
}

impl ItemSort {
    pub const WORDS: &'static [&'static str] = &[
        "display_id",
        "created_at",
        "updated_at",
        "detected_on",
        "scheduled_completion",
        "risk_rating",
        "epss",
    ];
}

impl Default for ItemSort {
    fn default() -> Self {
        ItemSort {
            key: SortKey::DisplayId,
            descending: false,
        }
    }
}

impl FromStr for ItemSort {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        let (descending, name) = match s.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, s),
        };
        let key = match name {
            "display_id" => SortKey::DisplayId,
            "created_at" => SortKey::CreatedAt,
            "updated_at" => SortKey::UpdatedAt,
            "detected_on" => SortKey::DetectedOn,
            "scheduled_completion" => SortKey::ScheduledCompletion,
            "risk_rating" => SortKey::RiskRating,
            "epss" => SortKey::Epss,
            _ => return Err(()),
        };
        Ok(ItemSort { key, descending })
    }
}

impl fmt::Display for ItemSort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = self.key as usize;
        write!(
            f,
            "{}{}",
            if self.descending { "-" } else { "" },
            Self::WORDS[i]
        )
    }
}

/// Filters of the item list; every one is backed by an index.
#[derive(Debug, Clone, Default)]
pub struct ItemQuery {
    pub statuses: Vec<ItemStatus>,
    pub risk_ratings: Vec<RiskRating>,
    pub sources: Vec<SourceKind>,
    /// A normalised control reference.
    pub control: Option<String>,
    /// The owner's name or e-mail, case-insensitive.
    pub owner: Option<String>,
    pub external_id: Option<String>,
    pub overdue: Option<bool>,
    /// Overdue for longer than the escalation grace.
    pub escalated: Option<bool>,
    /// Scheduled completion on or before.
    pub due_before: Option<NaiveDate>,
    /// Scheduled completion on or after.
    pub due_after: Option<NaiveDate>,
    /// Case-insensitive substring of the display id, title, description, external id, source
    /// identifier, controls, CVEs and assets.
    pub q: Option<String>,
    pub include_archived: bool,
    /// One of its CVEs is in the loaded KEV catalog.
    pub kev: Option<bool>,
    /// A scan that covered its host no longer reports it.
    pub not_seen: Option<bool>,
    pub sort: ItemSort,
    pub limit: i64,
    pub after: Option<Cursor>,
}

macro_rules! keyset {
    ($query:ident, $col:expr, $key:expr, $id:expr, $desc:expr) => {{
        let (k, id) = ($key, $id);
        if $desc {
            $query.filter($col.lt(k).or($col.eq(k).and(items::id.lt(id))))
        } else {
            $query.filter($col.gt(k).or($col.eq(k).and(items::id.gt(id))))
        }
    }};
}

macro_rules! order {
    ($query:ident, $col:expr, $desc:expr) => {
        if $desc {
            $query.order(($col.desc(), items::id.desc()))
        } else {
            $query.order(($col.asc(), items::id.asc()))
        }
    };
}

fn sort_key_of(row: &ItemRow, key: SortKey) -> String {
    match key {
        SortKey::DisplayId => row.seq.to_string(),
        SortKey::CreatedAt => row.created_at.format(TIME_KEY).to_string(),
        SortKey::UpdatedAt => row.updated_at.format(TIME_KEY).to_string(),
        SortKey::DetectedOn => row.detected_on.format(DATE_KEY).to_string(),
        // The stored `due_key` and `risk_rank`, as every write derives them (`from_fields`).
        SortKey::ScheduledCompletion => due_key(row.scheduled_completion)
            .format(DATE_KEY)
            .to_string(),
        SortKey::RiskRating => parse_word::<RiskRating>("risk_rating", &row.risk_rating)
            .map_or(0, RiskRating::rank)
            .to_string(),
        SortKey::Epss => epss_key(row).to_string(),
    }
}

/// The EPSS sort key of a row: the score its marks hold, -1 without one (as [`EPSS_SQL`]).
fn epss_key(row: &ItemRow) -> f64 {
    serde_json::from_str::<Details>(&row.details)
        .ok()
        .and_then(|d| d.epss)
        .map(|e| e.score)
        .unwrap_or(-1.0)
}

/// An item's EPSS score in SQL, -1 without one: the sort of `sort=epss`.
const EPSS_SQL: &str =
    "COALESCE((SELECT s.epss_score FROM item_signals s WHERE s.item_id = items.id), -1)";

/// One page of a system's items.
pub fn list(
    conn: &mut DbConnection,
    system_id: SystemId,
    scope: &SystemScope,
    q: &ItemQuery,
) -> Result<Page<Item>, StoreError> {
    // The system itself must be visible: an unknown system is a 404, not an empty list.
    crate::systems::get(conn, system_id, scope)?;
    let sid = system_id.to_string();
    let today = today();
    let mut query: items::BoxedQuery<'_, Backend> = items::table
        .filter(items::system_id.eq(sid.clone()))
        .into_boxed();
    if !q.statuses.is_empty() {
        query = query.filter(
            items::status.eq_any(q.statuses.iter().map(|s| s.to_string()).collect::<Vec<_>>()),
        );
    }
    if !q.risk_ratings.is_empty() {
        query = query.filter(
            items::risk_rating.eq_any(
                q.risk_ratings
                    .iter()
                    .map(|s| s.to_string())
                    .collect::<Vec<_>>(),
            ),
        );
    }
    if !q.sources.is_empty() {
        query = query.filter(
            items::source_kind.eq_any(q.sources.iter().map(|s| s.to_string()).collect::<Vec<_>>()),
        );
    }
    if let Some(c) = &q.control {
        query = query.filter(
            items::id.eq_any(
                item_controls::table
                    .filter(item_controls::system_id.eq(sid.clone()))
                    .filter(item_controls::control.eq(c.clone()))
                    .select(item_controls::item_id),
            ),
        );
    }
    if let Some(o) = &q.owner {
        let o = o.to_lowercase();
        query = query.filter(
            items::owner_email_key
                .eq(o.clone())
                .or(items::owner_name_key.eq(o)),
        );
    }
    if let Some(e) = &q.external_id {
        query = query.filter(items::external_id.eq(e.clone()));
    }
    let active: Vec<String> = ItemStatus::active().map(|s| s.to_string()).collect();
    match q.overdue {
        Some(true) => {
            query = query
                .filter(items::status.eq_any(active))
                .filter(items::due_key.lt(today));
        }
        Some(false) => {
            query = query.filter(items::status.ne_all(active).or(items::due_key.ge(today)));
        }
        None => {}
    }
    let cutoff = poam_domain::item::escalation_cutoff(today, escalation_grace_days());
    let active: Vec<String> = ItemStatus::active().map(|s| s.to_string()).collect();
    match q.escalated {
        Some(true) => {
            query = query
                .filter(items::status.eq_any(active))
                .filter(items::due_key.lt(cutoff));
        }
        Some(false) => {
            query = query.filter(items::status.ne_all(active).or(items::due_key.ge(cutoff)));
        }
        None => {}
    }
    // On the indexed due_key; undated items carry the 9999-12-31 sentinel and match neither.
    if let Some(d) = q.due_before {
        query = query.filter(items::due_key.le(d).and(items::due_key.lt(NO_DUE_DATE)));
    }
    if let Some(d) = q.due_after {
        query = query.filter(items::due_key.ge(d).and(items::due_key.lt(NO_DUE_DATE)));
    }
    if let Some(text) = &q.q {
        let pattern = format!("%{}%", escape_like(&text.to_lowercase()));
        query = query.filter(items::search_text.like(pattern).escape('\\'));
    }
    if !q.include_archived {
        query = query.filter(items::archived_at.is_null());
    }
    if let Some(kev) = q.kev {
        let marked = item_signals::table
            .filter(item_signals::system_id.eq(sid.clone()))
            .filter(item_signals::kev.eq(true))
            .select(item_signals::item_id);
        query = if kev {
            query.filter(items::id.eq_any(marked))
        } else {
            query.filter(diesel::dsl::not(items::id.eq_any(marked)))
        };
    }
    if let Some(not_seen) = q.not_seen {
        let marked = item_signals::table
            .filter(item_signals::system_id.eq(sid.clone()))
            .filter(item_signals::not_seen_since.is_not_null())
            .select(item_signals::item_id);
        query = if not_seen {
            query.filter(items::id.eq_any(marked))
        } else {
            query.filter(diesel::dsl::not(items::id.eq_any(marked)))
        };
    }
    let desc = q.sort.descending;
    if let Some(c) = &q.after {
        if c.sort != q.sort.to_string() {
            return Err(invalid_cursor());
        }
        let id = c.id.clone();
        query = match q.sort.key {
            SortKey::DisplayId => {
                let k: i64 = c.key.parse().map_err(|_| invalid_cursor())?;
                keyset!(query, items::seq, k, id, desc)
            }
            SortKey::CreatedAt | SortKey::UpdatedAt => {
                let k = NaiveDateTime::parse_from_str(&c.key, TIME_KEY)
                    .map_err(|_| invalid_cursor())?;
                if q.sort.key == SortKey::CreatedAt {
                    keyset!(query, items::created_at, k, id, desc)
                } else {
                    keyset!(query, items::updated_at, k, id, desc)
                }
            }
            SortKey::DetectedOn | SortKey::ScheduledCompletion => {
                let k =
                    NaiveDate::parse_from_str(&c.key, DATE_KEY).map_err(|_| invalid_cursor())?;
                if q.sort.key == SortKey::DetectedOn {
                    keyset!(query, items::detected_on, k, id, desc)
                } else {
                    keyset!(query, items::due_key, k, id, desc)
                }
            }
            SortKey::RiskRating => {
                let k: i32 = c.key.parse().map_err(|_| invalid_cursor())?;
                keyset!(query, items::risk_rank, k, id, desc)
            }
            SortKey::Epss => {
                use diesel::sql_types::{Bool, Double, Text};
                let k: f64 = c.key.parse().map_err(|_| invalid_cursor())?;
                let (lt, id_lt) = if desc { ("<", "<") } else { (">", ">") };
                query.filter(
                    diesel::dsl::sql::<Bool>(&format!("({EPSS_SQL} {lt} "))
                        .bind::<Double, _>(k)
                        .sql(&format!(" OR ({EPSS_SQL} = "))
                        .bind::<Double, _>(k)
                        .sql(&format!(" AND items.id {id_lt} "))
                        .bind::<Text, _>(id)
                        .sql("))"),
                )
            }
        };
    }
    query = match q.sort.key {
        SortKey::DisplayId => order!(query, items::seq, desc),
        SortKey::CreatedAt => order!(query, items::created_at, desc),
        SortKey::UpdatedAt => order!(query, items::updated_at, desc),
        SortKey::DetectedOn => order!(query, items::detected_on, desc),
        SortKey::ScheduledCompletion => order!(query, items::due_key, desc),
        SortKey::RiskRating => order!(query, items::risk_rank, desc),
        SortKey::Epss => {
            let epss = diesel::dsl::sql::<diesel::sql_types::Double>(EPSS_SQL);
            if desc {
                query.order((epss.desc(), items::id.desc()))
            } else {
                query.order((epss.asc(), items::id.asc()))
            }
        }
    };
    let rows: Vec<ItemRow> = query
        .limit(q.limit + 1)
        .select(ItemRow::as_select())
        .load(conn)?;
    let sort = q.sort;
    paginate(
        rows,
        q.limit,
        |r| Cursor {
            sort: sort.to_string(),
            key: sort_key_of(r, sort.key),
            id: r.id.clone(),
        },
        |r| r.into_domain(today),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_parse_and_print_back() {
        for w in ItemSort::WORDS {
            for s in [w.to_string(), format!("-{w}")] {
                let parsed: ItemSort = s.parse().unwrap_or_default();
                assert_eq!(parsed.to_string(), s);
            }
        }
        assert!("priority".parse::<ItemSort>().is_err());
        assert!("--display_id".parse::<ItemSort>().is_err());
    }
}
