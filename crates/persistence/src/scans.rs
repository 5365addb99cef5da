//! Scan files as the system's evidence (stored once, in chunks), the findings each scan tracks
//! (last seen, not seen since), and the link from every item a scan created or touched to the
//! scan: the proof chain from scanner output to POA&M item.

use crate::db::{self, DbConnection};
use crate::error::StoreError;
use crate::events::Action;
use crate::schema::{evidence, items, scan_chunks, scan_findings, scans};
use crate::systems::{archived_conflict, parse_id, to_json, utc};
use chrono::NaiveDateTime;
use diesel::prelude::*;
use poam_domain::scan::{Covered, NotSeen, ScanRecord};
use poam_domain::threat::Seen;
use poam_domain::workflow::EvidenceKind;
use poam_domain::{SystemId, SystemScope};
use std::collections::{HashMap, HashSet};

#[derive(Queryable, Selectable)]
#[diesel(table_name = scans)]
struct ScanRow {
    id: String,
    system_id: String,
    format: String,
    filename: Option<String>,
    media_type: String,
    size: i64,
    sha256: String,
    scanner: Option<String>,
    scope: String,
    counts: String,
    uploaded_by: String,
    uploaded_at: NaiveDateTime,
}

impl ScanRow {
    fn into_record(self) -> Result<ScanRecord, StoreError> {
        Ok(ScanRecord {
            id: parse_id::<uuid::Uuid>(&self.id)?,
            system_id: parse_id::<uuid::Uuid>(&self.system_id)?,
            format: self.format,
            filename: self.filename,
            media_type: self.media_type,
            size: self.size,
            sha256: self.sha256,
            scanner: self.scanner,
            scope: serde_json::from_str(&self.scope)
                .map_err(|e| crate::error::corrupt("scan scope", e))?,
            counts: serde_json::from_str(&self.counts)
                .map_err(|e| crate::error::corrupt("scan counts", e))?,
            uploaded_by: self.uploaded_by,
            uploaded_at: utc(self.uploaded_at),
        })
    }
}

/// A scan file to store.
#[derive(Debug, Clone)]
pub struct NewScan {
    pub format: String,
    pub filename: Option<String>,
    pub media_type: String,
    pub size: i64,
    pub sha256: String,
    pub scanner: Option<String>,
    pub scope: Vec<Covered>,
}

/// The scan of this system with the same SHA-256, read the same way (`reading`: the options
/// that decide what the file's findings are, kept in the scan's counts), whose import left no
/// finding failed, if the file was imported so before: the same file read the same way again
/// has nothing to change. A file some of whose findings were refused (an eMASS system without a
/// point of contact for them, say) is taken again: what was refused goes through the decisions
/// once more; so is a file read otherwise (informational findings kept this time, a
/// checklist's host named) and one imported before the reading was kept.
pub fn repeat_of(
    conn: &mut DbConnection,
    system_id: SystemId,
    sha256: &str,
    reading: &serde_json::Value,
) -> Result<Option<ScanRecord>, StoreError> {
    let rows: Vec<ScanRow> = scans::table
        .filter(scans::system_id.eq(system_id.to_string()))
        .filter(scans::sha256.eq(sha256))
        .order(scans::uploaded_at.asc())
        .select(ScanRow::as_select())
        .load(conn)?;
    let complete = |row: &ScanRow| {
        serde_json::from_str::<serde_json::Value>(&row.counts)
            .ok()
            .is_some_and(|c| c["failed"].as_u64() == Some(0) && c["reading"] == *reading)
    };
    rows.into_iter()
        .find(complete)
        .map(ScanRow::into_record)
        .transpose()
}

/// Stores a scan file (already on disk, hashed) as the system's evidence, with its scope. With
/// a `quota`, the system's stored evidence may not grow beyond it.
pub fn store(
    conn: &mut DbConnection,
    system_id: SystemId,
    scope: &SystemScope,
    meta: &NewScan,
    content: &std::path::Path,
    actor: &str,
    quota: Option<i64>,
) -> Result<ScanRecord, StoreError> {
    let sid = system_id.to_string();
    db::write(conn, |conn| {
        let system = crate::systems::get(conn, system_id, scope)?;
        if system.archived_at.is_some() {
            return Err(archived_conflict("system"));
        }
        if let Some(quota) = quota {
            let used = crate::evidence::stored_bytes(conn, &sid)?;
            if used.saturating_add(meta.size) > quota {
                return Err(StoreError::Conflict(poam_domain::Violation::new(
                    crate::evidence::QUOTA_EXCEEDED,
                    "",
                    format!(
                        "this system stores {used} bytes of evidence and its quota is {quota} bytes: this {}-byte scan does not fit (nothing was stored)",
                        meta.size
                    ),
                )));
            }
        }
        let id = uuid::Uuid::now_v7().to_string();
        diesel::insert_into(scans::table)
            .values((
                scans::id.eq(&id),
                scans::system_id.eq(&sid),
                scans::format.eq(&meta.format),
                scans::filename.eq(&meta.filename),
                scans::media_type.eq(&meta.media_type),
                scans::size.eq(meta.size),
                scans::sha256.eq(&meta.sha256),
                scans::scanner.eq(&meta.scanner),
                scans::scope.eq(to_json(&meta.scope)?),
                scans::counts.eq("{}"),
                scans::uploaded_by.eq(actor),
                scans::uploaded_at.eq(db::now()),
            ))
            .execute(conn)?;
        crate::evidence::write_chunks(
            conn,
            content,
            crate::crypto::SCAN,
            &id,
            meta.size,
            |conn, n, data| {
                diesel::insert_into(scan_chunks::table)
                    .values((
                        scan_chunks::scan_id.eq(&id),
                        scan_chunks::n.eq(n),
                        scan_chunks::data.eq(data),
                    ))
                    .execute(conn)
                    .map(drop)
            },
        )?;
        load(conn, &id)
    })
}

fn load(conn: &mut DbConnection, id: &str) -> Result<ScanRecord, StoreError> {
    scans::table
        .find(id)
        .select(ScanRow::as_select())
        .first(conn)?
        .into_record()
}

/// A scan whose system the caller may see.
pub fn get(
    conn: &mut DbConnection,
    id: uuid::Uuid,
    scope: &SystemScope,
) -> Result<ScanRecord, StoreError> {
    let scan = load(conn, &id.to_string())?;
    if scope.allows(SystemId::from_uuid(scan.system_id)) {
        Ok(scan)
    } else {
        Err(StoreError::NotFound)
    }
}

/// A system's scans, newest first.
pub fn list(
    conn: &mut DbConnection,
    system_id: SystemId,
    scope: &SystemScope,
) -> Result<Vec<ScanRecord>, StoreError> {
    crate::systems::get(conn, system_id, scope)?;
    scans::table
        .filter(scans::system_id.eq(system_id.to_string()))
        .order((scans::uploaded_at.desc(), scans::id.desc()))
        .select(ScanRow::as_select())
        .load(conn)?
        .into_iter()
        .map(ScanRow::into_record)
        .collect()
}

/// Chunk `n` of a scan's file (decrypted when it is stored encrypted).
pub fn chunk(conn: &mut DbConnection, id: &str, n: i32) -> Result<Option<Vec<u8>>, StoreError> {
    let stored = scan_chunks::table
        .find((id, n))
        .select(scan_chunks::data)
        .first(conn)
        .optional()?;
    crate::crypto::open_chunk(conn, id, n, stored)
}

/// One finding of the file that an item now tracks.
#[derive(Debug, Clone)]
pub struct Sighting {
    pub item_id: String,
    /// [`crate::exchange::finding_key`].
    pub ref_key: String,
    pub detector: String,
    pub host: String,
}

/// Rows per statement.
const CHUNK: usize = 400;

/// Records what a scan saw: each finding's last sighting (clearing "not seen"), each item's
/// `last_seen`, and the scan attached to each item as evidence (once). Inside the caller's
/// transaction.
pub fn record_sightings(
    conn: &mut DbConnection,
    scan: &ScanRecord,
    sightings: &[Sighting],
) -> Result<(), StoreError> {
    let sid = scan.system_id.to_string();
    let scan_id = scan.id.to_string();
    let at = scan.uploaded_at.naive_utc();
    for group in sightings.chunks(CHUNK) {
        let keys: Vec<&str> = group.iter().map(|s| s.ref_key.as_str()).collect();
        let known: HashSet<String> = scan_findings::table
            .filter(scan_findings::system_id.eq(&sid))
            .filter(scan_findings::ref_key.eq_any(&keys))
            .select(scan_findings::ref_key)
            .load::<String>(conn)?
            .into_iter()
            .collect();
        let mut fresh = Vec::new();
        let mut added = HashSet::new();
        for s in group {
            if known.contains(&s.ref_key) {
                diesel::update(scan_findings::table.find((&sid, &s.ref_key)))
                    .set((
                        scan_findings::item_id.eq(&s.item_id),
                        scan_findings::last_seen_scan.eq(&scan_id),
                        scan_findings::last_seen_at.eq(at),
                        scan_findings::not_seen_since.eq(None::<NaiveDateTime>),
                        scan_findings::not_seen_scan.eq(None::<String>),
                    ))
                    .execute(conn)?;
            } else if added.insert(s.ref_key.clone()) {
                fresh.push((
                    scan_findings::system_id.eq(sid.clone()),
                    scan_findings::ref_key.eq(s.ref_key.clone()),
                    scan_findings::item_id.eq(s.item_id.clone()),
                    scan_findings::detector.eq(s.detector.to_lowercase()),
                    scan_findings::host.eq(s.host.clone()),
                    scan_findings::last_seen_scan.eq(scan_id.clone()),
                    scan_findings::last_seen_at.eq(at),
                ));
            }
        }
        if !fresh.is_empty() {
            db::on_inner!(conn, |c| diesel::insert_into(scan_findings::table)
                .values(&fresh)
                .execute(c))?;
        }
        let mut item_ids: Vec<&str> = group.iter().map(|s| s.item_id.as_str()).collect();
        item_ids.sort_unstable();
        item_ids.dedup();
        let seen = Seen {
            scan_id: scan.id,
            at: scan.uploaded_at,
        };
        for iid in &item_ids {
            crate::items::set_sightings(conn, iid, |m| {
                m.last_seen = Some(seen.clone());
                m.not_seen_since = None;
                m.not_seen_scan = None;
            })?;
        }
        attach(conn, scan, &item_ids)?;
    }
    Ok(())
}

/// Attaches the scan to items as evidence (kind `scan_report`), once per item.
fn attach(conn: &mut DbConnection, scan: &ScanRecord, item_ids: &[&str]) -> Result<(), StoreError> {
    let scan_id = scan.id.to_string();
    let have: HashSet<String> = evidence::table
        .filter(evidence::scan_id.eq(&scan_id))
        .filter(evidence::item_id.eq_any(item_ids))
        .select(evidence::item_id)
        .load::<String>(conn)?
        .into_iter()
        .collect();
    let now = db::now();
    let title = format!(
        "{} scan {}",
        scan.scanner.as_deref().unwrap_or(&scan.format),
        scan.filename.as_deref().unwrap_or("(unnamed file)")
    );
    let title: String = title.chars().take(250).collect();
    let filename = scan
        .filename
        .clone()
        .unwrap_or_else(|| format!("scan-{}.{}", scan.id, scan.format));
    let sid = scan.system_id.to_string();
    let rows: Vec<_> = item_ids
        .iter()
        .filter(|i| !have.contains(**i))
        .map(|iid| {
            (
                evidence::id.eq(uuid::Uuid::now_v7().to_string()),
                evidence::item_id.eq(iid.to_string()),
                evidence::system_id.eq(sid.clone()),
                evidence::title.eq(title.clone()),
                evidence::kind.eq(EvidenceKind::ScanReport.as_str()),
                evidence::filename.eq(filename.clone()),
                evidence::media_type.eq(scan.media_type.clone()),
                evidence::size.eq(scan.size),
                evidence::sha256.eq(scan.sha256.clone()),
                evidence::uploaded_by.eq(scan.uploaded_by.clone()),
                evidence::uploaded_at.eq(now),
                evidence::scan_id.eq(Some(scan_id.clone())),
            )
        })
        .collect();
    if !rows.is_empty() {
        db::on_inner!(conn, |c| diesel::insert_into(evidence::table)
            .values(&rows)
            .execute(c))?;
    }
    Ok(())
}

/// Marks the tracked findings of the scan's scope that it did not report — and those `fixed`
/// names (a checklist's NotAFinding) — as not seen since this scan. An item all of whose
/// tracked findings are not seen becomes a closure candidate (`not_seen_since`); the scan is
/// attached to it as evidence. Never closes anything. Inside one transaction.
pub fn mark_not_seen(
    conn: &mut DbConnection,
    scan: &ScanRecord,
    fixed: &[String],
) -> Result<Vec<NotSeen>, StoreError> {
    let sid = scan.system_id.to_string();
    let scan_id = scan.id.to_string();
    let at = scan.uploaded_at.naive_utc();
    db::write(conn, |conn| {
        let mut gone: Vec<(String, String)> = Vec::new();
        let mut by_detector: HashMap<&str, Vec<&str>> = HashMap::new();
        for c in &scan.scope {
            by_detector
                .entry(c.detector.as_str())
                .or_default()
                .push(c.host.as_str());
        }
        for (detector, hosts) in by_detector {
            let detector = detector.to_lowercase();
            for hosts in hosts.chunks(CHUNK) {
                let rows: Vec<(String, String)> = scan_findings::table
                    .filter(scan_findings::system_id.eq(&sid))
                    .filter(scan_findings::detector.eq(&detector))
                    .filter(scan_findings::host.eq_any(hosts))
                    .filter(scan_findings::last_seen_scan.ne(&scan_id))
                    .filter(scan_findings::not_seen_since.is_null())
                    .select((scan_findings::ref_key, scan_findings::item_id))
                    .load(conn)?;
                gone.extend(rows);
            }
        }
        for keys in fixed.chunks(CHUNK) {
            let rows: Vec<(String, String)> = scan_findings::table
                .filter(scan_findings::system_id.eq(&sid))
                .filter(scan_findings::ref_key.eq_any(keys))
                .filter(scan_findings::not_seen_since.is_null())
                .select((scan_findings::ref_key, scan_findings::item_id))
                .load(conn)?;
            gone.extend(rows);
        }
        gone.sort();
        gone.dedup();
        let mut per_item: HashMap<String, usize> = HashMap::new();
        for (key, iid) in &gone {
            diesel::update(scan_findings::table.find((&sid, key)))
                .set((
                    scan_findings::not_seen_since.eq(Some(at)),
                    scan_findings::not_seen_scan.eq(Some(&scan_id)),
                ))
                .execute(conn)?;
            *per_item.entry(iid.clone()).or_default() += 1;
        }
        let mut out = Vec::new();
        let mut ids: Vec<String> = per_item.keys().cloned().collect();
        ids.sort();
        for iid in ids {
            // Still seen under another key (an item tracking several assets): not a candidate.
            let still: i64 = scan_findings::table
                .filter(scan_findings::item_id.eq(&iid))
                .filter(scan_findings::not_seen_since.is_null())
                .count()
                .get_result(conn)?;
            if still > 0 {
                continue;
            }
            let (display, archived): (String, Option<NaiveDateTime>) = items::table
                .find(&iid)
                .select((items::display_id, items::archived_at))
                .first(conn)?;
            if archived.is_some() {
                continue;
            }
            let changed = crate::items::set_sightings(conn, &iid, |m| {
                m.not_seen_since = Some(scan.uploaded_at);
                m.not_seen_scan = Some(scan.id);
            })?;
            attach(conn, scan, &[iid.as_str()])?;
            if changed {
                out.push(NotSeen {
                    id: parse_id::<uuid::Uuid>(&iid)?,
                    display_id: display,
                    findings: per_item.get(&iid).copied().unwrap_or(0),
                });
            }
        }
        Ok(out)
    })
}

/// Saves the import's counts on the scan and records the import in the system's history.
pub fn finish(
    conn: &mut DbConnection,
    scan: &ScanRecord,
    counts: &serde_json::Value,
    actor: &str,
    repeat: bool,
) -> Result<(), StoreError> {
    let sid = scan.system_id.to_string();
    db::write(conn, |conn| {
        if !repeat {
            diesel::update(scans::table.find(scan.id.to_string()))
                .set(scans::counts.eq(to_json(counts)?))
                .execute(conn)?;
        }
        let mut record = crate::exchange::ExchangeRecord {
            id: uuid::Uuid::new_v4().to_string(),
            format: format!("scan {}", scan.format),
            detail: Some(format!(
                "scan={}; file={}; sha256={}",
                scan.id,
                scan.filename.as_deref().unwrap_or("(unnamed)"),
                scan.sha256
            )),
            by: actor.to_owned(),
            counts: Some(counts.clone()),
        };
        record.counts = Some(counts.clone());
        crate::exchange::append_record(conn, &sid, "import", Action::Imported, &record, actor)
    })
}
