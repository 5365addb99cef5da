//! The history: one append-only row per change, with who, when, and the resource as it stood
//! after the change. Every write goes through [`append`].

use crate::db::DbConnection;
use crate::error::StoreError;
use crate::schema::events;
use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Created,
    Updated,
    Archived,
}

impl Action {
    fn as_str(self) -> &'static str {
        match self {
            Action::Created => "created",
            Action::Updated => "updated",
            Action::Archived => "archived",
        }
    }
}

#[derive(Insertable)]
#[diesel(table_name = events)]
struct NewEvent<'a> {
    id: String,
    system_id: &'a str,
    resource_kind: &'a str,
    resource_id: &'a str,
    action: &'a str,
    actor: &'a str,
    at: NaiveDateTime,
    version: i64,
    snapshot: String,
}

/// What changed, for [`append`].
pub struct Change<'a, T: Serialize> {
    pub system_id: &'a str,
    pub resource_kind: &'static str,
    pub resource_id: &'a str,
    pub action: Action,
    pub actor: &'a str,
    pub at: NaiveDateTime,
    pub version: i64,
    pub snapshot: &'a T,
}

/// Appends one history event; call it inside the write's transaction.
pub fn append<T: Serialize>(
    conn: &mut DbConnection,
    change: Change<'_, T>,
) -> Result<(), StoreError> {
    let snapshot = serde_json::to_string(change.snapshot)
        .map_err(|e| StoreError::Internal(format!("snapshot does not serialise: {e}")))?;
    diesel::insert_into(events::table)
        .values(NewEvent {
            id: uuid::Uuid::new_v4().to_string(),
            system_id: change.system_id,
            resource_kind: change.resource_kind,
            resource_id: change.resource_id,
            action: change.action.as_str(),
            actor: change.actor,
            at: change.at,
            version: change.version,
            snapshot,
        })
        .execute(conn)?;
    Ok(())
}

/// A recorded event.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = events)]
pub struct EventRow {
    pub id: String,
    pub system_id: String,
    pub resource_kind: String,
    pub resource_id: String,
    pub action: String,
    pub actor: String,
    pub at: NaiveDateTime,
    pub version: i64,
    pub snapshot: String,
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
        .order((events::at.asc(), events::version.asc()))
        .select(EventRow::as_select())
        .load(conn)?)
}
