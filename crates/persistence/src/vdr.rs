//! FedRAMP 2026 (VDR/VER) reports: a system and its unarchived items, read for the report
//! builders of `poam_domain::vdr_reports`.

use crate::db::DbConnection;
use crate::error::StoreError;
use crate::items::ItemRow;
use crate::schema::{items, systems};
use diesel::prelude::*;
use poam_domain::vdr;
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

/// The system's FedRAMP 2026 regime when it follows the rules on `today`: a `fedramp` system
/// with its `fedramp_class` set and its `vdr_since` reached.
pub(crate) fn regime_on(
    regime: &str,
    settings: Option<&str>,
    today: chrono::NaiveDate,
) -> Result<Option<vdr::Regime>, StoreError> {
    if regime != poam_domain::Regime::Fedramp.as_str() {
        return Ok(None);
    }
    let s = crate::systems::VdrSettings::parse(settings)?;
    Ok(s.fedramp_class
        .zip(s.vdr_since)
        .map(|(class, since)| vdr::Regime {
            class,
            since,
            clock: s.vdr_clock.unwrap_or(vdr::DEFAULT_CLOCK),
        })
        .filter(|r| r.applies(today)))
}

/// [`regime_on`] for the system `system_id` (its row read for the two columns).
pub(crate) fn system_regime(
    conn: &mut DbConnection,
    system_id: &str,
    today: chrono::NaiveDate,
) -> Result<Option<vdr::Regime>, StoreError> {
    let (regime, settings): (String, Option<String>) = systems::table
        .find(system_id)
        .select((systems::regime, systems::vdr))
        .first(conn)?;
    regime_on(&regime, settings.as_deref(), today)
}

/// The systems under the 2026 rules on `today` among `ids` (all systems: `None`), with their
/// regimes; only the two columns the rules need are read.
pub(crate) fn systems_under(
    conn: &mut DbConnection,
    ids: Option<&[String]>,
    today: chrono::NaiveDate,
) -> Result<Vec<(String, vdr::Regime)>, StoreError> {
    let mut q = systems::table
        .filter(systems::regime.eq(poam_domain::Regime::Fedramp.as_str()))
        .filter(systems::vdr.is_not_null())
        .select((systems::id, systems::regime, systems::vdr))
        .into_boxed::<crate::db::Backend>();
    if let Some(ids) = ids {
        q = q.filter(systems::id.eq_any(ids.to_vec()));
    }
    let rows: Vec<(String, String, Option<String>)> = q.load(conn)?;
    let mut out = Vec::new();
    for (id, regime, settings) in rows {
        if let Some(r) = regime_on(&regime, settings.as_deref(), today)? {
            out.push((id, r));
        }
    }
    Ok(out)
}
