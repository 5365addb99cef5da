//! Systems: the header of a POA&M.

use crate::db::{self, Backend, DbConnection};
use crate::error::{corrupt, StoreError};
use crate::events::{self, Action, Change};
use crate::page::{paginate, Cursor, Page};
use crate::schema::systems;
use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use poam_domain::system::SystemMeta;
use poam_domain::IfMatch;
use poam_domain::{ImpactLevel, Regime, System, SystemFields, SystemId, SystemScope, Violation};

const KIND: &str = "system";

#[derive(Queryable, Selectable)]
#[diesel(table_name = systems)]
struct SystemRow {
    id: String,
    name: String,
    description: Option<String>,
    organization: Option<String>,
    cage_codes: String,
    impact_level: Option<String>,
    regime: String,
    contacts: String,
    version: i64,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
    archived_at: Option<NaiveDateTime>,
    deadline_policy: Option<String>,
    vdr: Option<String>,
}

/// The content columns, written on create and on every update.
#[derive(Insertable, AsChangeset)]
#[diesel(table_name = systems, treat_none_as_null = true)]
struct SystemContent {
    name: String,
    description: Option<String>,
    organization: Option<String>,
    cage_codes: String,
    impact_level: Option<String>,
    regime: String,
    contacts: String,
    deadline_policy: Option<String>,
    vdr: Option<String>,
}

/// A system's FedRAMP 2026 settings, stored as one JSON document (`systems.vdr`).
#[derive(serde::Serialize, serde::Deserialize, Default, PartialEq)]
#[serde(default)]
pub(crate) struct VdrSettings {
    pub(crate) fedramp_class: Option<poam_domain::vdr::FedrampClass>,
    pub(crate) vdr_since: Option<chrono::NaiveDate>,
    pub(crate) vdr_clock: Option<poam_domain::vdr::Clock>,
    pub(crate) certification_package_uri: Option<String>,
    pub(crate) fedramp_id: Option<String>,
    /// Reminder settings (not FedRAMP's, but kept in the same settings document).
    pub(crate) reminders: Option<poam_domain::reminders::ReminderPolicy>,
    /// The eMASS POA&M header fields.
    pub(crate) emass: Option<poam_domain::system::EmassHeader>,
    /// NISP: the DSS UID and the C/W/S label map.
    pub(crate) dss_uid: Option<String>,
    pub(crate) cws_labels: Option<std::collections::BTreeMap<String, String>>,
    /// Scan import settings.
    pub(crate) scans: Option<poam_domain::scan::ScanSettings>,
}

impl VdrSettings {
    fn of(f: &SystemFields) -> Option<VdrSettings> {
        let s = VdrSettings {
            fedramp_class: f.fedramp_class,
            vdr_since: f.vdr_since,
            vdr_clock: f.vdr_clock,
            certification_package_uri: f.certification_package_uri.clone(),
            fedramp_id: f.fedramp_id.clone(),
            reminders: f.reminders.clone(),
            emass: f.emass.clone(),
            dss_uid: f.dss_uid.clone(),
            cws_labels: f.cws_labels.clone(),
            scans: f.scans.clone(),
        };
        (s != VdrSettings::default()).then_some(s)
    }

    pub(crate) fn parse(raw: Option<&str>) -> Result<VdrSettings, StoreError> {
        raw.map(|s| serde_json::from_str(s).map_err(|e| corrupt("vdr settings", e)))
            .transpose()
            .map(Option::unwrap_or_default)
    }
}

impl SystemContent {
    fn from_fields(f: &SystemFields) -> Result<Self, StoreError> {
        Ok(SystemContent {
            name: f.name.clone(),
            description: f.description.clone(),
            organization: f.organization.clone(),
            cage_codes: to_json(&f.cage_codes)?,
            impact_level: f.impact_level.map(|l| l.as_str().to_owned()),
            regime: f.regime.as_str().to_owned(),
            contacts: to_json(&f.contacts)?,
            deadline_policy: f.deadline_policy.as_ref().map(to_json).transpose()?,
            vdr: VdrSettings::of(f).as_ref().map(to_json).transpose()?,
        })
    }
}

pub(crate) fn to_json<T: serde::Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Internal(format!("does not serialise: {e}")))
}

pub fn utc(t: NaiveDateTime) -> DateTime<Utc> {
    DateTime::from_naive_utc_and_offset(t, Utc)
}

pub(crate) fn parse_word<T: std::str::FromStr>(what: &str, s: &str) -> Result<T, StoreError>
where
    T::Err: std::fmt::Display,
{
    s.parse().map_err(|e| corrupt(what, e))
}

pub(crate) fn parse_id<T: std::str::FromStr>(s: &str) -> Result<T, StoreError>
where
    T::Err: std::fmt::Display,
{
    parse_word("id", s)
}

impl SystemRow {
    fn into_domain(self) -> Result<System, StoreError> {
        let vdr = VdrSettings::parse(self.vdr.as_deref())?;
        let fields = SystemFields {
            name: self.name,
            description: self.description,
            organization: self.organization,
            cage_codes: serde_json::from_str(&self.cage_codes)
                .map_err(|e| corrupt("cage_codes", e))?,
            impact_level: self
                .impact_level
                .as_deref()
                .map(|s| parse_word::<ImpactLevel>("impact_level", s))
                .transpose()?,
            regime: parse_word::<Regime>("regime", &self.regime)?,
            contacts: serde_json::from_str(&self.contacts).map_err(|e| corrupt("contacts", e))?,
            deadline_policy: self
                .deadline_policy
                .as_deref()
                .map(|p| serde_json::from_str(p).map_err(|e| corrupt("deadline policy", e)))
                .transpose()?,
            fedramp_class: vdr.fedramp_class,
            vdr_since: vdr.vdr_since,
            vdr_clock: vdr.vdr_clock,
            certification_package_uri: vdr.certification_package_uri,
            fedramp_id: vdr.fedramp_id,
            reminders: vdr.reminders,
            emass: vdr.emass,
            dss_uid: vdr.dss_uid,
            cws_labels: vdr.cws_labels,
            scans: vdr.scans,
        };
        let meta = SystemMeta {
            id: parse_id(&self.id)?,
            version: self.version,
            created_at: utc(self.created_at),
            updated_at: utc(self.updated_at),
            archived_at: self.archived_at.map(utc),
        };
        Ok(System::assemble(meta, fields))
    }
}

fn record(
    conn: &mut DbConnection,
    before: Option<&System>,
    system: &System,
    action: Action,
    actor: &str,
) -> Result<(), StoreError> {
    let id = system.id.to_string();
    events::append(
        conn,
        Change {
            system_id: &id,
            resource_kind: KIND,
            resource_id: &id,
            action,
            actor,
            at: system.updated_at.naive_utc(),
            version: system.version,
            before,
            after: system,
        },
    )
}

/// Creates a system.
pub fn create(
    conn: &mut DbConnection,
    fields: &SystemFields,
    actor: &str,
) -> Result<System, StoreError> {
    let content = SystemContent::from_fields(fields)?;
    let id = SystemId::new();
    let now = db::now();
    db::write(conn, |conn| {
        diesel::insert_into(systems::table)
            .values((
                systems::id.eq(id.to_string()),
                content,
                systems::next_item_seq.eq(0),
                systems::version.eq(1),
                systems::created_at.eq(now),
                systems::updated_at.eq(now),
            ))
            .execute(conn)?;
        let system = load(conn, id)?;
        record(conn, None, &system, Action::Created, actor)?;
        Ok(system)
    })
}

fn load(conn: &mut DbConnection, id: SystemId) -> Result<System, StoreError> {
    systems::table
        .find(id.to_string())
        .select(SystemRow::as_select())
        .first(conn)?
        .into_domain()
}

/// A system in the caller's scope; archived systems included.
pub fn get(
    conn: &mut DbConnection,
    id: SystemId,
    scope: &SystemScope,
) -> Result<System, StoreError> {
    if !scope.allows(id) {
        return Err(StoreError::NotFound);
    }
    load(conn, id)
}

/// Filters of the system list.
#[derive(Debug, Clone, Default)]
pub struct SystemQuery {
    pub regime: Option<Regime>,
    /// Case-insensitive substring of the name.
    pub name: Option<String>,
    pub include_archived: bool,
    pub limit: i64,
    pub after: Option<Cursor>,
}

const SORT: &str = "created_at";

diesel::define_sql_function! {
    /// SQL `lower()`, the same function on both backends.
    fn lower(x: diesel::sql_types::Text) -> diesel::sql_types::Text;
}
const TIME_KEY: &str = "%Y-%m-%dT%H:%M:%S%.6f";

/// Systems in the caller's scope, oldest first.
pub fn list(
    conn: &mut DbConnection,
    q: &SystemQuery,
    scope: &SystemScope,
) -> Result<Page<System>, StoreError> {
    let mut query: systems::BoxedQuery<'_, Backend> = systems::table.into_boxed();
    if let SystemScope::Only(ids) = scope {
        query =
            query.filter(systems::id.eq_any(ids.iter().map(|i| i.to_string()).collect::<Vec<_>>()));
    }
    if let Some(r) = q.regime {
        query = query.filter(systems::regime.eq(r.as_str()));
    }
    if let Some(n) = &q.name {
        let pattern = format!("%{}%", escape_like(&n.to_lowercase()));
        query = query.filter(lower(systems::name).like(pattern).escape('\\'));
    }
    if !q.include_archived {
        query = query.filter(systems::archived_at.is_null());
    }
    if let Some(c) = &q.after {
        if c.sort != SORT {
            return Err(invalid_cursor());
        }
        let key = NaiveDateTime::parse_from_str(&c.key, TIME_KEY).map_err(|_| invalid_cursor())?;
        query = query.filter(
            systems::created_at.gt(key).or(systems::created_at
                .eq(key)
                .and(systems::id.gt(c.id.clone()))),
        );
    }
    let rows: Vec<SystemRow> = query
        .order((systems::created_at.asc(), systems::id.asc()))
        .limit(q.limit + 1)
        .select(SystemRow::as_select())
        .load(conn)?;
    paginate(
        rows,
        q.limit,
        |r| Cursor {
            sort: SORT.into(),
            key: r.created_at.format(TIME_KEY).to_string(),
            id: r.id.clone(),
        },
        SystemRow::into_domain,
    )
}

pub(crate) fn invalid_cursor() -> StoreError {
    StoreError::BadCursor
}

/// Escapes `%`, `_` and `\` for a LIKE pattern with `\` as the escape character.
pub(crate) fn escape_like(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

pub(crate) fn check_version(expected: &IfMatch, current: i64) -> Result<(), StoreError> {
    if expected.admits(current) {
        Ok(())
    } else {
        Err(StoreError::Stale { current })
    }
}

pub(crate) fn archived_conflict(what: &str) -> StoreError {
    StoreError::Conflict(Violation::new(
        "archived",
        "",
        format!("the {what} is archived and can no longer change"),
    ))
}

/// Takes the system row's write lock before reading it (`SELECT … FOR NO KEY UPDATE`, which writes
/// no row version): on PostgreSQL, concurrent writers of one system queue here instead of
/// failing a version check on a stale read; SQLite's write transaction already holds the
/// database lock.
fn lock(conn: &mut DbConnection, id: SystemId) -> Result<(), StoreError> {
    crate::events::lock_system(conn, &id.to_string()).map(|_| ())
}

/// Applies `apply` to the current system inside one transaction: the version check, the new
/// content, the version bump and the history event are all or nothing.
pub fn update(
    conn: &mut DbConnection,
    id: SystemId,
    scope: &SystemScope,
    if_match: &IfMatch,
    actor: &str,
    apply: impl FnOnce(&System) -> Result<SystemFields, StoreError>,
) -> Result<System, StoreError> {
    db::write(conn, |conn| {
        lock(conn, id)?;
        let current = get(conn, id, scope)?;
        check_version(if_match, current.version)?;
        if current.archived_at.is_some() {
            return Err(archived_conflict("system"));
        }
        let fields = apply(&current)?;
        if fields == current.fields() {
            return Ok(current);
        }
        let n = diesel::update(systems::table.find(id.to_string()))
            .filter(systems::version.eq(current.version))
            .set((
                SystemContent::from_fields(&fields)?,
                systems::version.eq(current.version + 1),
                systems::updated_at.eq(db::now()),
            ))
            .execute(conn)?;
        if n != 1 {
            return Err(StoreError::Stale {
                current: current.version,
            });
        }
        let system = load(conn, id)?;
        record(conn, Some(&current), &system, Action::Updated, actor)?;
        // A new regime or policy, or a move to (or within) FedRAMP's 2026 rules, recomputes
        // the policy dates; each item's change is recorded in its history.
        if system.regime != current.regime
            || system.deadline_policy != current.deadline_policy
            || system.fields().vdr_regime() != current.fields().vdr_regime()
        {
            crate::items::apply_policy(conn, id, actor)?;
        }
        // What the reminders of its items depend on besides the items themselves: the
        // scheduler looks at every one of them again.
        if system.reminders != current.reminders
            || system.vdr_since != current.vdr_since
            || system.fedramp_class != current.fedramp_class
        {
            crate::reminders::look_again(conn, &id.to_string())?;
        }
        Ok(system)
    })
}

/// Archives a system: kept with its items and history, hidden from default lists, frozen.
/// Archiving an archived system changes nothing.
pub fn archive(
    conn: &mut DbConnection,
    id: SystemId,
    scope: &SystemScope,
    if_match: &IfMatch,
    actor: &str,
) -> Result<System, StoreError> {
    db::write(conn, |conn| {
        lock(conn, id)?;
        let current = get(conn, id, scope)?;
        check_version(if_match, current.version)?;
        if current.archived_at.is_some() {
            return Ok(current);
        }
        let now = db::now();
        diesel::update(systems::table.find(id.to_string()))
            .filter(systems::version.eq(current.version))
            .set((
                systems::archived_at.eq(now),
                systems::version.eq(current.version + 1),
                systems::updated_at.eq(now),
            ))
            .execute(conn)?;
        let system = load(conn, id)?;
        record(conn, Some(&current), &system, Action::Archived, actor)?;
        Ok(system)
    })
}
