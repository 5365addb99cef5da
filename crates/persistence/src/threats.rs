//! Threat and control catalogs (CISA KEV, FIRST EPSS, DISA CCI) as an operator loads them, and
//! what they say about items: each write looks its CVEs up, a new catalog recomputes every
//! item it touches (and the deadlines KEV due dates set, recorded in the history).

use crate::db::{self, DbConnection};
use crate::error::StoreError;
use crate::events::Action;
use crate::items::Marks;
use crate::schema::{catalogs, cci_controls, epss_scores, item_signals, items, kev_entries};
use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use poam_domain::scan::catalogs::{CciCatalog, EpssCatalog, KevCatalog};
use poam_domain::threat::{governing_epss, governing_kev, Epss, Kev};
use std::collections::{BTreeMap, HashMap};

/// A catalog's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Kev,
    Epss,
    Cci,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Kev => "kev",
            Kind::Epss => "epss",
            Kind::Cci => "cci",
        }
    }
}

/// A loaded catalog's record.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable)]
#[diesel(table_name = catalogs)]
pub struct CatalogRow {
    pub kind: String,
    pub version: String,
    pub released: Option<String>,
    pub entries: i64,
    pub sha256: String,
    pub loaded_by: String,
    pub loaded_at: NaiveDateTime,
}

/// The loaded catalogs.
pub fn list(conn: &mut DbConnection) -> Result<Vec<CatalogRow>, StoreError> {
    Ok(catalogs::table
        .order(catalogs::kind)
        .select(CatalogRow::as_select())
        .load(conn)?)
}

fn version_of(conn: &mut DbConnection, kind: Kind) -> Result<Option<String>, StoreError> {
    Ok(catalogs::table
        .find(kind.as_str())
        .select(catalogs::version)
        .first(conn)
        .optional()?)
}

/// The catalog entries of a set of CVEs: looked up once per write (nothing when the item has
/// no CVE or no catalog is loaded).
#[derive(Default)]
pub(crate) struct Lookup {
    kev: HashMap<String, Kev>,
    epss: HashMap<String, Epss>,
}

type KevRow = (String, NaiveDate, NaiveDate, bool, Option<bool>);

const LOOKUP_CHUNK: usize = 500;

impl Lookup {
    pub(crate) fn of<'a>(
        conn: &mut DbConnection,
        cves: impl Iterator<Item = &'a str>,
    ) -> Result<Lookup, StoreError> {
        let mut wanted: Vec<&str> = cves.collect();
        if wanted.is_empty() {
            return Ok(Lookup::default());
        }
        wanted.sort_unstable();
        wanted.dedup();
        let mut out = Lookup::default();
        let kev_version = version_of(conn, Kind::Kev)?;
        let epss_version = version_of(conn, Kind::Epss)?;
        for chunk in wanted.chunks(LOOKUP_CHUNK) {
            if let Some(v) = &kev_version {
                let rows: Vec<KevRow> = kev_entries::table
                    .filter(kev_entries::cve.eq_any(chunk))
                    .select((
                        kev_entries::cve,
                        kev_entries::date_added,
                        kev_entries::due_date,
                        kev_entries::ransomware,
                        kev_entries::forensic_triage,
                    ))
                    .load(conn)?;
                for (cve, date_added, due_date, ransomware, forensic_triage) in rows {
                    out.kev.insert(
                        cve.clone(),
                        Kev {
                            cve,
                            date_added,
                            due_date,
                            ransomware,
                            forensic_triage,
                            catalog_version: v.clone(),
                        },
                    );
                }
            }
            if let Some(v) = &epss_version {
                let rows: Vec<(String, f64, f64)> = epss_scores::table
                    .filter(epss_scores::cve.eq_any(chunk))
                    .select((
                        epss_scores::cve,
                        epss_scores::score,
                        epss_scores::percentile,
                    ))
                    .load(conn)?;
                for (cve, score, percentile) in rows {
                    out.epss.insert(
                        cve.clone(),
                        Epss {
                            cve,
                            score,
                            percentile,
                            catalog_version: v.clone(),
                        },
                    );
                }
            }
        }
        Ok(out)
    }

    /// The marks of an item with `cves`: its KEV and EPSS from the catalogs, its sightings
    /// kept from `previous`.
    pub(crate) fn marks(&self, cves: &[String], previous: Marks) -> Marks {
        Marks {
            kev: governing_kev(cves.iter().filter_map(|c| self.kev.get(c).cloned())),
            epss: governing_epss(cves.iter().filter_map(|c| self.epss.get(c).cloned())),
            ..previous
        }
    }
}

type SignalRow = (
    diesel::dsl::Eq<item_signals::item_id, String>,
    diesel::dsl::Eq<item_signals::system_id, String>,
    diesel::dsl::Eq<item_signals::kev, bool>,
    diesel::dsl::Eq<item_signals::epss_score, Option<f64>>,
    diesel::dsl::Eq<item_signals::not_seen_since, Option<NaiveDateTime>>,
);

/// The signal row of an item, when it has anything to filter on.
pub(crate) fn signal_row(item_id: &str, system_id: &str, m: &Marks) -> Option<SignalRow> {
    if m.kev.is_none() && m.epss.is_none() && m.not_seen_since.is_none() {
        return None;
    }
    Some((
        item_signals::item_id.eq(item_id.to_owned()),
        item_signals::system_id.eq(system_id.to_owned()),
        item_signals::kev.eq(m.kev.is_some()),
        item_signals::epss_score.eq(m.epss.as_ref().map(|e| e.score)),
        item_signals::not_seen_since.eq(m.not_seen_since.map(|t| t.naive_utc())),
    ))
}

pub(crate) fn insert_signals(
    conn: &mut DbConnection,
    rows: &[SignalRow],
) -> Result<(), StoreError> {
    for chunk in rows.chunks(LOOKUP_CHUNK) {
        db::on_inner!(conn, |c| diesel::insert_into(item_signals::table)
            .values(chunk)
            .execute(c))?;
    }
    Ok(())
}

/// Replaces an item's signal row with its marks' (none when nothing is marked).
pub(crate) fn write_signals(
    conn: &mut DbConnection,
    item_id: &str,
    system_id: &str,
    m: &Marks,
) -> Result<(), StoreError> {
    diesel::delete(item_signals::table.find(item_id)).execute(conn)?;
    if let Some(row) = signal_row(item_id, system_id, m) {
        insert_signals(conn, &[row])?;
    }
    Ok(())
}

fn record_catalog(
    conn: &mut DbConnection,
    kind: Kind,
    version: &str,
    released: Option<&str>,
    entries: usize,
    sha256: &str,
    actor: &str,
) -> Result<(), StoreError> {
    diesel::delete(catalogs::table.find(kind.as_str())).execute(conn)?;
    diesel::insert_into(catalogs::table)
        .values((
            catalogs::kind.eq(kind.as_str()),
            catalogs::version.eq(version),
            catalogs::released.eq(released),
            catalogs::entries.eq(i64::try_from(entries).unwrap_or(i64::MAX)),
            catalogs::sha256.eq(sha256),
            catalogs::loaded_by.eq(actor),
            catalogs::loaded_at.eq(db::now()),
        ))
        .execute(conn)?;
    Ok(())
}

/// Rows per insert statement of a catalog load (PostgreSQL's bind limit is 65,535).
const LOAD_CHUNK: usize = 1000;

/// What a catalog load changed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Refreshed {
    /// Items whose KEV or EPSS marks changed.
    pub items: usize,
    /// Of them, items whose deadline a KEV due date moved (recorded in the history).
    pub deadlines: usize,
}

/// Replaces the KEV catalog and recomputes the items it touches, in one transaction.
pub fn load_kev(
    conn: &mut DbConnection,
    cat: &KevCatalog,
    sha256: &str,
    actor: &str,
) -> Result<Refreshed, StoreError> {
    db::write(conn, |conn| {
        diesel::delete(kev_entries::table).execute(conn)?;
        let mut seen = std::collections::HashSet::new();
        let rows: Vec<_> = cat
            .entries
            .iter()
            .filter(|e| seen.insert(e.cve.clone()))
            .map(|e| {
                (
                    kev_entries::cve.eq(e.cve.clone()),
                    kev_entries::date_added.eq(e.date_added),
                    kev_entries::due_date.eq(e.due_date),
                    kev_entries::ransomware.eq(e.ransomware),
                    kev_entries::forensic_triage.eq(e.forensic_triage),
                    kev_entries::vendor_project.eq(e.vendor_project.clone()),
                    kev_entries::product.eq(e.product.clone()),
                    kev_entries::name.eq(e.name.clone()),
                    kev_entries::required_action.eq(e.required_action.clone()),
                )
            })
            .collect();
        for chunk in rows.chunks(LOAD_CHUNK) {
            db::on_inner!(conn, |c| diesel::insert_into(kev_entries::table)
                .values(chunk)
                .execute(c))?;
        }
        record_catalog(
            conn,
            Kind::Kev,
            &cat.version,
            Some(&cat.released),
            cat.entries.len(),
            sha256,
            actor,
        )?;
        refresh_items(conn, actor)
    })
}

/// Replaces the EPSS scores and recomputes the items they touch, in one transaction.
pub fn load_epss(
    conn: &mut DbConnection,
    cat: &EpssCatalog,
    sha256: &str,
    actor: &str,
) -> Result<Refreshed, StoreError> {
    db::write(conn, |conn| {
        diesel::delete(epss_scores::table).execute(conn)?;
        let mut seen = std::collections::HashSet::new();
        let rows: Vec<_> = cat
            .entries
            .iter()
            .filter(|e| seen.insert(e.cve.clone()))
            .map(|e| {
                (
                    epss_scores::cve.eq(e.cve.clone()),
                    epss_scores::score.eq(e.score),
                    epss_scores::percentile.eq(e.percentile),
                )
            })
            .collect();
        for chunk in rows.chunks(LOAD_CHUNK * 5) {
            db::on_inner!(conn, |c| diesel::insert_into(epss_scores::table)
                .values(chunk)
                .execute(c))?;
        }
        let version = match (&cat.model_version, &cat.score_date) {
            (Some(m), Some(d)) => format!("{m} {d}"),
            (Some(m), None) => m.clone(),
            (None, Some(d)) => d.clone(),
            (None, None) => format!("{} scores", cat.entries.len()),
        };
        record_catalog(
            conn,
            Kind::Epss,
            &version,
            cat.score_date.as_deref(),
            cat.entries.len(),
            sha256,
            actor,
        )?;
        refresh_items(conn, actor)
    })
}

/// Replaces the CCI list.
pub fn load_cci(
    conn: &mut DbConnection,
    cat: &CciCatalog,
    sha256: &str,
    actor: &str,
) -> Result<(), StoreError> {
    db::write(conn, |conn| {
        diesel::delete(cci_controls::table).execute(conn)?;
        let rows: Vec<_> = cat
            .entries
            .iter()
            .filter(|e| !e.controls.is_empty())
            .map(|e| {
                Ok((
                    cci_controls::cci.eq(e.id.clone()),
                    cci_controls::controls.eq(crate::systems::to_json(&e.controls)?),
                ))
            })
            .collect::<Result<_, StoreError>>()?;
        for chunk in rows.chunks(LOAD_CHUNK) {
            db::on_inner!(conn, |c| diesel::insert_into(cci_controls::table)
                .values(chunk)
                .execute(c))?;
        }
        record_catalog(
            conn,
            Kind::Cci,
            &cat.version,
            cat.publish_date.as_deref(),
            cat.entries.len(),
            sha256,
            actor,
        )
    })
}

/// The controls the loaded CCI list maps each of `ccis` to (absent: not listed, or no list).
pub fn cci_map(
    conn: &mut DbConnection,
    ccis: &[String],
) -> Result<BTreeMap<String, Vec<String>>, StoreError> {
    let mut out = BTreeMap::new();
    for chunk in ccis.chunks(LOOKUP_CHUNK) {
        let rows: Vec<(String, String)> = cci_controls::table
            .filter(cci_controls::cci.eq_any(chunk))
            .load(conn)?;
        for (cci, controls) in rows {
            let controls: Vec<String> = serde_json::from_str(&controls)
                .map_err(|e| crate::error::corrupt("cci controls", e))?;
            out.insert(cci, controls);
        }
    }
    Ok(out)
}

/// The CCI list's version, when one is loaded.
pub fn cci_version(conn: &mut DbConnection) -> Result<Option<String>, StoreError> {
    version_of(conn, Kind::Cci)
}

/// Recomputes the KEV and EPSS marks of every unarchived item that names a CVE, and the
/// deadlines KEV due dates set (never a person's): items whose marks changed get a new
/// version (their representation changed); a moved deadline is recorded in the history.
fn refresh_items(conn: &mut DbConnection, actor: &str) -> Result<Refreshed, StoreError> {
    // Items naming a CVE: their search text holds it, lower-cased.
    let ids: Vec<String> = items::table
        .filter(items::archived_at.is_null())
        .filter(items::search_text.like("%cve-%"))
        .select(items::id)
        .load(conn)?;
    let mut out = Refreshed::default();
    for id in ids {
        let (marked, moved) = crate::items::refresh_marks(conn, &id, actor, Action::Updated)?;
        out.items += usize::from(marked);
        out.deadlines += usize::from(moved);
    }
    Ok(out)
}
