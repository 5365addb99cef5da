//! FedRAMP 2026 (VDR/VER) reports: a system and its unarchived items, read for the report
//! builders of `poam_domain::vdr_reports`.

use crate::db::DbConnection;
use crate::error::StoreError;
use crate::items::ItemRow;
use crate::schema::items;
use diesel::prelude::*;
use poam_domain::{Item, System, SystemId, SystemScope};

/// The system (in the caller's scope) and its unarchived items in display order.
pub fn system_items(
    conn: &mut DbConnection,
    system_id: SystemId,
    scope: &SystemScope,
) -> Result<(System, Vec<Item>), StoreError> {
    let system = crate::systems::get(conn, system_id, scope)?;
    let today = crate::db::now().date();
    let items = items::table
        .filter(items::system_id.eq(system_id.to_string()))
        .filter(items::archived_at.is_null())
        .order(items::seq.asc())
        .select(ItemRow::as_select())
        .load::<ItemRow>(conn)?
        .into_iter()
        .map(|r| r.into_domain(today))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((system, items))
}
