//! Evidence: immutable files, stored in the database in chunks, written with their metadata and
//! history event in one transaction. Withdrawal is recorded, never a deletion.

use crate::db::{self, DbConnection};
use crate::error::StoreError;
use crate::events::{self, Action, Change};
use crate::schema::{evidence, evidence_chunks, milestones, scans};
use crate::systems::{parse_id, parse_word, utc};
use crate::workflow::live_item;
use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use poam_domain::workflow::{check_withdrawal, Evidence, EvidenceKind};
use poam_domain::{EvidenceId, ItemId, MilestoneId, SystemId, SystemScope, Violation};
use std::io::Read;

/// Bytes per stored chunk: a download streams one at a time.
pub const CHUNK: usize = 1 << 20;

/// Writes the spooled file `content` as chunks of [`CHUNK`] bytes through `insert` (chunk number,
/// bytes), sealed chunk by chunk under a data key of the file's own when a master key is
/// configured (`kind` and `owner` name the file for its key). The evidence and scan tables
/// share it; a file that yields fewer or more chunks than `size` promises is refused.
pub(crate) fn write_chunks(
    conn: &mut DbConnection,
    content: &std::path::Path,
    kind: &'static str,
    owner: &str,
    size: i64,
    mut insert: impl FnMut(&mut DbConnection, i32, &[u8]) -> Result<(), diesel::result::Error>,
) -> Result<(), StoreError> {
    let spool = |e: std::io::Error| StoreError::Internal(format!("{kind} spool: {e}"));
    let mut file = std::fs::File::open(content).map_err(spool)?;
    let sealer = crate::crypto::begin(conn, kind, owner, size)?;
    let mut buf = vec![0u8; CHUNK];
    let mut n: i32 = 0;
    loop {
        let mut filled = 0;
        while filled < CHUNK {
            let read = file.read(&mut buf[filled..]).map_err(spool)?;
            if read == 0 {
                break;
            }
            filled += read;
        }
        if filled == 0 {
            break;
        }
        match &sealer {
            Some(key) => insert(conn, n, &key.seal(n, &buf[..filled])?)?,
            None => insert(conn, n, &buf[..filled])?,
        }
        n += 1;
        if filled < CHUNK {
            break;
        }
    }
    if sealer.is_some() && i64::from(n) != crate::crypto::chunk_count(size) {
        return Err(StoreError::Internal(format!(
            "{kind} spool: {size} bytes expected, {n} chunks read"
        )));
    }
    Ok(())
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = evidence)]
pub(crate) struct EvidenceRow {
    id: String,
    item_id: String,
    system_id: String,
    milestone_id: Option<String>,
    title: String,
    kind: String,
    filename: String,
    media_type: String,
    size: i64,
    sha256: String,
    collected_on: Option<NaiveDate>,
    uploaded_by: String,
    uploaded_at: NaiveDateTime,
    withdrawn_at: Option<NaiveDateTime>,
    withdrawn_by: Option<String>,
    withdrawal_reason: Option<String>,
    scan_id: Option<String>,
}

impl EvidenceRow {
    pub(crate) fn into_domain(self) -> Result<Evidence, StoreError> {
        Ok(Evidence {
            id: parse_id(&self.id)?,
            item_id: parse_id(&self.item_id)?,
            milestone_id: self.milestone_id.as_deref().map(parse_id).transpose()?,
            title: self.title,
            kind: parse_word::<EvidenceKind>("evidence kind", &self.kind)?,
            filename: self.filename,
            media_type: self.media_type,
            size: self.size,
            sha256: self.sha256,
            collected_on: self.collected_on,
            uploaded_by: self.uploaded_by,
            uploaded_at: utc(self.uploaded_at),
            withdrawn_at: self.withdrawn_at.map(utc),
            withdrawn_by: self.withdrawn_by,
            withdrawal_reason: self.withdrawal_reason,
            scan_id: self.scan_id.as_deref().map(parse_id).transpose()?,
        })
    }
}

/// The metadata of an upload, checked by the HTTP room, hashed and measured while it streamed.
#[derive(Debug, Clone)]
pub struct NewEvidence {
    pub title: String,
    pub kind: EvidenceKind,
    pub milestone_id: Option<MilestoneId>,
    pub collected_on: Option<NaiveDate>,
    pub filename: String,
    pub media_type: String,
    pub size: i64,
    pub sha256: String,
}

fn load(conn: &mut DbConnection, id: &str) -> Result<(Evidence, String), StoreError> {
    let row: EvidenceRow = evidence::table
        .find(id)
        .select(EvidenceRow::as_select())
        .first(conn)?;
    let sid = row.system_id.clone();
    Ok((row.into_domain()?, sid))
}

/// The bytes of evidence a system stores (withdrawn evidence included: it is kept); a scan
/// file counts once, however many items it is attached to.
pub fn stored_bytes(conn: &mut DbConnection, system_id: &str) -> Result<i64, StoreError> {
    let files: i64 = evidence::table
        .filter(evidence::system_id.eq(system_id))
        .filter(evidence::scan_id.is_null())
        .select(diesel::dsl::sql::<diesel::sql_types::BigInt>(
            "CAST(COALESCE(SUM(size), 0) AS BIGINT)",
        ))
        .first(conn)?;
    let scans: i64 = scans::table
        .filter(scans::system_id.eq(system_id))
        .select(diesel::dsl::sql::<diesel::sql_types::BigInt>(
            "CAST(COALESCE(SUM(size), 0) AS BIGINT)",
        ))
        .first(conn)?;
    Ok(files.saturating_add(scans))
}

/// The bytes of evidence each system stores, for the metrics.
pub fn stored_bytes_by_system(conn: &mut DbConnection) -> Result<Vec<(String, i64)>, StoreError> {
    Ok(evidence::table
        .filter(evidence::scan_id.is_null())
        .group_by(evidence::system_id)
        .select((
            evidence::system_id,
            diesel::dsl::sql::<diesel::sql_types::BigInt>("CAST(COALESCE(SUM(size), 0) AS BIGINT)"),
        ))
        .order(evidence::system_id)
        .load(conn)?)
}

/// The code of the conflict [`create`] answers when a system's evidence quota is spent.
pub const QUOTA_EXCEEDED: &str = "evidence_quota_exceeded";

fn over_quota(used: i64, size: i64, quota: i64) -> StoreError {
    StoreError::Conflict(Violation::new(
        QUOTA_EXCEEDED,
        "/file",
        format!(
            "this system stores {used} bytes of evidence and its quota is {quota} bytes: this {size}-byte file does not fit (nothing was stored)"
        ),
    ))
}

/// Stores an uploaded file (already on disk, hashed) with its metadata and history event.
/// With a `quota`, the system's evidence may not grow beyond it: checked before the file is
/// written and again once its history event holds the system's chain lock (so two concurrent
/// uploads cannot both squeeze in); a refusal stores nothing.
pub fn create(
    conn: &mut DbConnection,
    item_id: ItemId,
    scope: &SystemScope,
    meta: &NewEvidence,
    content: &std::path::Path,
    actor: &str,
    quota: Option<i64>,
) -> Result<Evidence, StoreError> {
    db::write(conn, |conn| {
        let item = live_item(conn, item_id, scope)?;
        if let Some(quota) = quota {
            let used = stored_bytes(conn, &item.system_id.to_string())?;
            if used.saturating_add(meta.size) > quota {
                return Err(over_quota(used, meta.size, quota));
            }
        }
        let iid = item_id.to_string();
        let mut errors = Vec::new();
        if let Some(m) = meta.milestone_id {
            let owner: Option<String> = milestones::table
                .find(m.to_string())
                .select(milestones::item_id)
                .first(conn)
                .optional()?;
            if owner.as_deref() != Some(iid.as_str()) {
                errors.push(Violation::new(
                    "unknown_milestone",
                    "/milestone_id",
                    "milestone_id must name a milestone of this item",
                ));
            }
        }
        let now = db::now();
        if let Some(d) = meta.collected_on.filter(|d| *d > now.date()) {
            errors.push(Violation::new(
                "date_in_future",
                "/collected_on",
                format!("the collection date {d} is after today"),
            ));
        }
        if !errors.is_empty() {
            return Err(StoreError::Invalid(errors));
        }
        let id = uuid::Uuid::now_v7().to_string();
        diesel::insert_into(evidence::table)
            .values((
                evidence::id.eq(&id),
                evidence::item_id.eq(&iid),
                evidence::system_id.eq(item.system_id.to_string()),
                evidence::milestone_id.eq(meta.milestone_id.map(|m| m.to_string())),
                evidence::title.eq(&meta.title),
                evidence::kind.eq(meta.kind.as_str()),
                evidence::filename.eq(&meta.filename),
                evidence::media_type.eq(&meta.media_type),
                evidence::size.eq(meta.size),
                evidence::sha256.eq(&meta.sha256),
                evidence::collected_on.eq(meta.collected_on),
                evidence::uploaded_by.eq(actor),
                evidence::uploaded_at.eq(now),
            ))
            .execute(conn)?;
        write_chunks(
            conn,
            content,
            crate::crypto::EVIDENCE,
            &id,
            meta.size,
            |conn, n, data| {
                diesel::insert_into(evidence_chunks::table)
                    .values((
                        evidence_chunks::evidence_id.eq(&id),
                        evidence_chunks::n.eq(n),
                        evidence_chunks::data.eq(data),
                    ))
                    .execute(conn)
                    .map(drop)
            },
        )?;
        let (saved, sid) = load(conn, &id)?;
        events::append(
            conn,
            Change {
                system_id: &sid,
                resource_kind: "evidence",
                resource_id: &id,
                action: Action::Created,
                actor,
                at: now,
                version: 1,
                before: None,
                after: &saved,
            },
        )?;
        if let Some(quota) = quota {
            let used = stored_bytes(conn, &sid)?;
            if used > quota {
                return Err(over_quota(used - meta.size, meta.size, quota));
            }
        }
        Ok(saved)
    })
}

/// Evidence of an item that is not withdrawn.
pub fn active_count(conn: &mut DbConnection, item_id: &str) -> Result<usize, StoreError> {
    let n: i64 = evidence::table
        .filter(evidence::item_id.eq(item_id))
        .filter(evidence::withdrawn_at.is_null())
        .count()
        .get_result(conn)?;
    Ok(usize::try_from(n).unwrap_or(0))
}

/// Evidence not withdrawn of an item of one of `kinds`, optionally only that attached to one
/// milestone.
pub fn active_count_of(
    conn: &mut DbConnection,
    item_id: &str,
    milestone_id: Option<&str>,
    kinds: &[EvidenceKind],
) -> Result<usize, StoreError> {
    let kinds: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
    let mut q = evidence::table
        .filter(evidence::item_id.eq(item_id))
        .filter(evidence::withdrawn_at.is_null())
        .filter(evidence::kind.eq_any(kinds))
        .into_boxed::<crate::db::Backend>();
    if let Some(m) = milestone_id {
        q = q.filter(evidence::milestone_id.eq(m));
    }
    let n: i64 = q.count().get_result(conn)?;
    Ok(usize::try_from(n).unwrap_or(0))
}

/// Evidence whose system the caller may see.
pub fn get(
    conn: &mut DbConnection,
    id: EvidenceId,
    scope: &SystemScope,
) -> Result<Evidence, StoreError> {
    let (e, sid) = load(conn, &id.to_string())?;
    if scope.allows(parse_id::<SystemId>(&sid)?) {
        Ok(e)
    } else {
        Err(StoreError::NotFound)
    }
}

/// An item's evidence, oldest first, withdrawn included.
pub fn list(
    conn: &mut DbConnection,
    item_id: ItemId,
    scope: &SystemScope,
) -> Result<Vec<Evidence>, StoreError> {
    crate::items::get(conn, item_id, scope)?;
    evidence::table
        .filter(evidence::item_id.eq(item_id.to_string()))
        .order((evidence::uploaded_at.asc(), evidence::id.asc()))
        .select(EvidenceRow::as_select())
        .load(conn)?
        .into_iter()
        .map(EvidenceRow::into_domain)
        .collect()
}

/// Chunk `n` of the content, if there is one (a scan's evidence reads the scan's chunks),
/// decrypted when the file is stored encrypted.
pub fn chunk(conn: &mut DbConnection, id: &str, n: i32) -> Result<Option<Vec<u8>>, StoreError> {
    let own: Option<Vec<u8>> = evidence_chunks::table
        .find((id, n))
        .select(evidence_chunks::data)
        .first(conn)
        .optional()?;
    if own.is_some() {
        return crate::crypto::open_chunk(conn, id, n, own);
    }

    let scan: Option<Option<String>> = evidence::table
        .find(id)
        .select(evidence::scan_id)
        .first(conn)
        .optional()?;
    match scan.flatten() {
        Some(scan) => crate::scans::chunk(conn, &scan, n),
        // Past the end (an error when an encrypted file lacks one of its chunks).
        None => crate::crypto::open_chunk(conn, id, n, None),
    }
}

/// Records that `actor` downloaded the evidence (its content): an event `downloaded` in the
/// system's history, so an auditor can ask who read it. Returns the evidence.
pub fn record_download(
    conn: &mut DbConnection,
    id: EvidenceId,
    scope: &SystemScope,
    actor: &str,
) -> Result<Evidence, StoreError> {
    db::write(conn, |conn| {
        let (e, sid) = load(conn, &id.to_string())?;
        if !scope.allows(parse_id::<SystemId>(&sid)?) {
            return Err(StoreError::NotFound);
        }
        let key = id.to_string();
        events::append(
            conn,
            Change {
                system_id: &sid,
                resource_kind: "evidence",
                resource_id: &key,
                action: Action::Downloaded,
                actor,
                at: db::now(),
                version: if e.withdrawn_at.is_some() { 2 } else { 1 },
                before: Some(&e),
                after: &e,
            },
        )?;
        Ok(e)
    })
}

/// Records that `actor` downloaded a scan file: an event `downloaded` of the resource `scan`
/// in its system's history. Returns the scan.
pub fn record_scan_download(
    conn: &mut DbConnection,
    id: uuid::Uuid,
    scope: &SystemScope,
    actor: &str,
) -> Result<poam_domain::scan::ScanRecord, StoreError> {
    db::write(conn, |conn| {
        let scan = crate::scans::get(conn, id, scope)?;
        events::append(
            conn,
            Change {
                system_id: &scan.system_id.to_string(),
                resource_kind: "scan",
                resource_id: &id.to_string(),
                action: Action::Downloaded,
                actor,
                at: db::now(),
                version: 1,
                before: Some(&scan),
                after: &scan,
            },
        )?;
        Ok(scan)
    })
}

/// Withdraws evidence: recorded with who and why; refused once the item is completed or closed.
pub fn withdraw(
    conn: &mut DbConnection,
    id: EvidenceId,
    scope: &SystemScope,
    actor: &str,
    reason: &str,
) -> Result<Evidence, StoreError> {
    db::write(conn, |conn| {
        let current = get(conn, id, scope)?;
        let item = live_item(conn, current.item_id, scope)?;
        check_withdrawal(item.status).map_err(StoreError::Conflict)?;
        if current.withdrawn_at.is_some() {
            return Err(StoreError::Conflict(Violation::new(
                "already_withdrawn",
                "",
                "this evidence was already withdrawn",
            )));
        }
        let now = db::now();
        let key = id.to_string();
        diesel::update(evidence::table.find(&key))
            .set((
                evidence::withdrawn_at.eq(now),
                evidence::withdrawn_by.eq(actor),
                evidence::withdrawal_reason.eq(reason),
            ))
            .execute(conn)?;
        let (saved, sid) = load(conn, &key)?;
        events::append(
            conn,
            Change {
                system_id: &sid,
                resource_kind: "evidence",
                resource_id: &key,
                action: Action::Withdrawn,
                actor,
                at: now,
                version: 2,
                before: Some(&current),
                after: &saved,
            },
        )?;
        Ok(saved)
    })
}
