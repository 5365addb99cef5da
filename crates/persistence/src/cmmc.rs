//! A system's CMMC Level 2 self-assessment, and which requirements its open POA&M items track.

use crate::db::{self, DbConnection};
use crate::error::{corrupt, StoreError};
use crate::events::{self, Action, Change};
use crate::schema::{cmmc_assessments, item_controls, items};
use crate::systems::{archived_conflict, check_version, utc};
use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use poam_domain::cmmc::{self, Assessment, Statuses};
use poam_domain::IfMatch;
use poam_domain::{ItemId, ItemStatus, Regime, SystemId, SystemScope, Violation};
use std::collections::{BTreeMap, BTreeSet};

type Row = (
    String,
    String,
    Option<NaiveDate>,
    i64,
    NaiveDateTime,
    String,
);

fn into_assessment(r: Row) -> Result<Assessment, StoreError> {
    Ok(Assessment {
        system_id: crate::systems::parse_id(&r.0)?,
        requirements: serde_json::from_str(&r.1).map_err(|e| corrupt("assessment", e))?,
        conditional_status_date: r.2,
        version: r.3,
        updated_at: utc(r.4),
        updated_by: r.5,
    })
}

fn cmmc_system(
    conn: &mut DbConnection,
    id: SystemId,
    scope: &SystemScope,
) -> Result<(), StoreError> {
    let system = crate::systems::get(conn, id, scope)?;
    if !matches!(system.regime, Regime::CmmcL2 | Regime::CmmcL3) {
        return Err(StoreError::Conflict(Violation::new(
            "regime_mismatch",
            "",
            format!(
                "the system's regime is {}; CMMC assessments belong to cmmc_l2 and cmmc_l3 systems",
                system.regime
            ),
        )));
    }
    if system.archived_at.is_some() {
        return Err(archived_conflict("system"));
    }
    Ok(())
}

fn load(conn: &mut DbConnection, id: SystemId) -> Result<Option<Assessment>, StoreError> {
    cmmc_assessments::table
        .find(id.to_string())
        .select((
            cmmc_assessments::system_id,
            cmmc_assessments::requirements,
            cmmc_assessments::conditional_status_date,
            cmmc_assessments::version,
            cmmc_assessments::updated_at,
            cmmc_assessments::updated_by,
        ))
        .first::<Row>(conn)
        .optional()?
        .map(into_assessment)
        .transpose()
}

/// The statuses of a system's assessment, if one was recorded (any regime; no checks).
pub fn statuses(conn: &mut DbConnection, system_id: &str) -> Result<Option<Statuses>, StoreError> {
    let json: Option<String> = cmmc_assessments::table
        .find(system_id)
        .select(cmmc_assessments::requirements)
        .first(conn)
        .optional()?;
    json.map(|j| serde_json::from_str(&j).map_err(|e| corrupt("assessment", e)))
        .transpose()
}

/// The system's assessment, if one was recorded.
pub fn get(
    conn: &mut DbConnection,
    id: SystemId,
    scope: &SystemScope,
) -> Result<Option<Assessment>, StoreError> {
    cmmc_system(conn, id, scope)?;
    load(conn, id)
}

/// Records (replaces) the system's assessment, with its history event.
pub fn put(
    conn: &mut DbConnection,
    id: SystemId,
    scope: &SystemScope,
    if_match: &IfMatch,
    statuses: &Statuses,
    conditional_status_date: Option<NaiveDate>,
    actor: &str,
) -> Result<Assessment, StoreError> {
    db::write(conn, |conn| {
        cmmc_system(conn, id, scope)?;
        let current = load(conn, id)?;
        if let Some(c) = &current {
            check_version(if_match, c.version)?;
        }
        let now = db::now();
        let json =
            serde_json::to_string(statuses).map_err(|e| StoreError::Internal(e.to_string()))?;
        let key = id.to_string();
        let version = current.as_ref().map_or(1, |c| c.version + 1);
        if current.is_some() {
            diesel::update(cmmc_assessments::table.find(&key))
                .set((
                    cmmc_assessments::requirements.eq(&json),
                    cmmc_assessments::conditional_status_date.eq(conditional_status_date),
                    cmmc_assessments::version.eq(version),
                    cmmc_assessments::updated_at.eq(now),
                    cmmc_assessments::updated_by.eq(actor),
                ))
                .execute(conn)?;
        } else {
            diesel::insert_into(cmmc_assessments::table)
                .values((
                    cmmc_assessments::system_id.eq(&key),
                    cmmc_assessments::requirements.eq(&json),
                    cmmc_assessments::conditional_status_date.eq(conditional_status_date),
                    cmmc_assessments::version.eq(version),
                    cmmc_assessments::updated_at.eq(now),
                    cmmc_assessments::updated_by.eq(actor),
                ))
                .execute(conn)?;
        }
        let saved = load(conn, id)?.ok_or(StoreError::NotFound)?;
        events::append(
            conn,
            Change {
                system_id: &key,
                resource_kind: "cmmc_assessment",
                resource_id: &key,
                action: if current.is_some() {
                    Action::Updated
                } else {
                    Action::Created
                },
                actor,
                at: now,
                version,
                before: current.as_ref(),
                after: &saved,
            },
        )?;
        if current.as_ref().map(|c| c.conditional_status_date)
            != Some(saved.conditional_status_date)
        {
            crate::items::apply_policy(conn, id, actor)?;
        }
        Ok(saved)
    })
}

/// The requirements each open (not closed, not archived) item of the system tracks, by item.
pub fn tracked_by_item(
    conn: &mut DbConnection,
    id: SystemId,
) -> Result<BTreeMap<String, BTreeSet<String>>, StoreError> {
    let rows: Vec<(String, String)> = item_controls::table
        .inner_join(items::table)
        .filter(item_controls::system_id.eq(id.to_string()))
        .filter(items::status.ne(ItemStatus::Closed.as_str()))
        .filter(items::archived_at.is_null())
        .select((item_controls::item_id, item_controls::control))
        .load(conn)?;
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (item, control) in rows {
        if let Some(r) = cmmc::requirement(&control) {
            out.entry(item).or_default().insert(r.number.clone());
        }
    }
    Ok(out)
}

/// The score and Conditional check now, or as if `closing` were closed: a requirement that only
/// the closed items tracked counts as met.
pub fn evaluate(
    conn: &mut DbConnection,
    id: SystemId,
    scope: &SystemScope,
    closing: &[ItemId],
) -> Result<cmmc::Conditional, StoreError> {
    cmmc_system(conn, id, scope)?;
    let assessment = load(conn, id)?;
    let mut statuses = assessment
        .as_ref()
        .map(|a| a.requirements.clone())
        .unwrap_or_default();
    let by_item = tracked_by_item(conn, id)?;
    let closing: BTreeSet<String> = closing.iter().map(|i| i.to_string()).collect();
    let mut unknown = Vec::new();
    for (i, item) in closing.iter().enumerate() {
        let belongs: Option<String> = items::table
            .find(item)
            .select(items::system_id)
            .first(conn)
            .optional()?;
        if belongs.as_deref() != Some(id.to_string().as_str()) {
            unknown.push(Violation::new(
                "unknown_item",
                format!("/close_items/{i}"),
                "not an item of this system",
            ));
        }
    }
    if !unknown.is_empty() {
        return Err(StoreError::Invalid(unknown));
    }
    let remaining: BTreeSet<String> = by_item
        .iter()
        .filter(|(item, _)| !closing.contains(*item))
        .flat_map(|(_, reqs)| reqs.iter().cloned())
        .collect();
    for (item, reqs) in &by_item {
        if closing.contains(item) {
            for r in reqs.iter().filter(|r| !remaining.contains(*r)) {
                statuses.insert(r.clone(), cmmc::Status::Met);
            }
        }
    }
    Ok(cmmc::conditional(
        &statuses,
        &remaining,
        assessment.and_then(|a| a.conditional_status_date),
        db::now().date(),
    ))
}
