//! POA&M metrics, computed with aggregates in the database (counts grouped by indexed columns,
//! date ranges on the indexed due key). Only the two dates of resolved items are read back, for
//! the medians and slips no portable SQL aggregate gives.

use crate::db::{self, Backend, DbConnection};
use crate::error::StoreError;
use crate::schema::{item_controls, items, milestones};
use chrono::{Days, NaiveDate};
use diesel::dsl::count_star;
use diesel::prelude::*;
use poam_domain::metrics::{Metrics, Money, VdrMetrics};
use poam_domain::{ItemStatus, RiskRating, SystemId};
use std::collections::BTreeMap;

/// Which systems the metrics cover.
#[derive(Debug, Clone)]
pub enum Scope {
    One(SystemId),
    /// The systems a token may see (`None`: all of them).
    Many(Option<Vec<SystemId>>),
}

fn filtered<'a>(scope: &Scope, with_archived: bool) -> items::BoxedQuery<'a, Backend> {
    let mut q = items::table.into_boxed();
    if !with_archived {
        q = q.filter(items::archived_at.is_null());
    }
    match scope {
        Scope::One(id) => q = q.filter(items::system_id.eq(id.to_string())),
        Scope::Many(Some(ids)) => {
            q = q.filter(
                items::system_id.eq_any(ids.iter().map(|i| i.to_string()).collect::<Vec<_>>()),
            )
        }
        Scope::Many(None) => {}
    }
    q
}

/// A grouped count query, boxed, limited to the scope's unarchived items.
macro_rules! scoped {
    ($query:expr, $scope:expr, $with_archived:expr) => {{
        let mut q = $query.into_boxed::<Backend>();
        if !$with_archived {
            q = q.filter(items::archived_at.is_null());
        }
        match $scope {
            Scope::One(id) => q = q.filter(items::system_id.eq(id.to_string())),
            Scope::Many(Some(ids)) => {
                q = q.filter(
                    items::system_id.eq_any(ids.iter().map(|i| i.to_string()).collect::<Vec<_>>()),
                )
            }
            Scope::Many(None) => {}
        }
        q
    }};
}

fn median(mut v: Vec<i64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_unstable();
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2] as f64
    } else {
        (v[n / 2 - 1] + v[n / 2]) as f64 / 2.0
    })
}

/// The family of a control reference: `AC` of `AC-2(1)` and `AC.L2-3.1.1`, `3.1` of `3.1.1`.
fn family(control: &str) -> String {
    if control.starts_with(|c: char| c.is_ascii_digit()) {
        control
            .rsplit_once('.')
            .map_or(control, |(f, _)| f)
            .to_owned()
    } else {
        control
            .split(['-', '.'])
            .next()
            .unwrap_or(control)
            .to_owned()
    }
}

/// Status, rating, detected, scheduled, completed and closed dates of a resolved item.
type ResolvedDates = (
    String,
    String,
    NaiveDate,
    Option<NaiveDate>,
    Option<NaiveDate>,
    Option<NaiveDate>,
);

/// The metrics of the scope's items; archived ones only `with_archived`. Either way the answer
/// says how many archived unresolved items (open, in progress, deferred) it leaves out.
pub fn compute(
    conn: &mut DbConnection,
    scope: &Scope,
    with_archived: bool,
) -> Result<Metrics, StoreError> {
    let today = db::now().date();
    let active: Vec<String> = ItemStatus::active().map(|s| s.to_string()).collect();
    let mut m = Metrics::default();
    // Status and rating in one pass over the covering index.
    let counts: Vec<(String, String, i64)> = scoped!(
        items::table
            .group_by((items::status, items::risk_rating))
            .select((items::status, items::risk_rating, count_star())),
        scope,
        with_archived
    )
    .load(conn)?;
    for (status, rating, n) in counts {
        *m.by_status.entry(status).or_default() += n;
        *m.by_rating.entry(rating).or_default() += n;
    }
    m.total = m.by_status.values().sum();
    // Overdue, escalated and aging from one range: the overdue unresolved items counted by
    // rating and due date (a few hundred groups at most), bucketed here.
    let cutoff = poam_domain::item::escalation_cutoff(today, crate::items::escalation_grace_days());
    let overdue: Vec<(String, NaiveDate, i64)> = scoped!(
        items::table
            .filter(items::status.eq_any(active.clone()))
            .filter(items::due_key.lt(today))
            .group_by((items::risk_rating, items::due_key))
            .select((items::risk_rating, items::due_key, count_star())),
        scope,
        with_archived
    )
    .load(conn)?;
    for (rating, due, n) in overdue {
        *m.overdue.by_rating.entry(rating.clone()).or_default() += n;
        if due < cutoff {
            *m.escalated.by_rating.entry(rating).or_default() += n;
        }
        match (today - due).num_days() {
            ..=30 => m.aging.d1_30 += n,
            31..=90 => m.aging.d31_90 += n,
            91..=120 => m.aging.d91_120 += n,
            _ => m.aging.over_120 += n,
        }
    }
    m.overdue.total = m.overdue.by_rating.values().sum();
    m.escalated.total = m.escalated.by_rating.values().sum();
    let day = |n: u64| {
        today
            .checked_sub_days(Days::new(n))
            .unwrap_or(NaiveDate::MIN)
    };
    // Resolved items: only their dates are read.
    let resolved: Vec<ResolvedDates> = filtered(scope, with_archived)
        .filter(items::status.eq_any(vec![
            ItemStatus::Completed.to_string(),
            ItemStatus::Closed.to_string(),
        ]))
        .select((
            items::status,
            items::risk_rating,
            items::detected_on,
            items::scheduled_completion,
            items::completed_on,
            items::closed_on,
        ))
        .load(conn)?;
    let mut to_close: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    let mut slips = Vec::new();
    for (status, rating, detected, scheduled, completed, closed) in &resolved {
        if status == ItemStatus::Closed.as_str() {
            if let Some(c) = closed {
                to_close
                    .entry(rating.clone())
                    .or_default()
                    .push((*c - *detected).num_days());
            }
            *m.risk_reduced.entry(rating.clone()).or_default() += 1;
        }
        if let (Some(s), Some(c)) = (scheduled, completed) {
            slips.push((*c - *s).num_days());
        }
    }
    m.median_days_to_close = to_close
        .into_iter()
        .filter_map(|(r, v)| median(v).map(|x| (r, x)))
        .collect();
    m.mean_slip_days =
        (!slips.is_empty()).then(|| slips.iter().sum::<i64>() as f64 / slips.len() as f64);
    // One system: start from its milestones (indexed by system), not from its items.
    let only = match scope {
        Scope::One(id) => Some(id.to_string()),
        Scope::Many(_) => None,
    };
    let mut total = scoped!(
        milestones::table
            .inner_join(items::table)
            .select(count_star()),
        scope,
        with_archived
    );
    let mut moved = scoped!(
        milestones::table
            .inner_join(items::table)
            .filter(milestones::changes.ne("[]"))
            .select(count_star()),
        scope,
        with_archived
    );
    if let Some(sid) = only {
        total = total.filter(milestones::system_id.eq(sid.clone()));
        moved = moved.filter(milestones::system_id.eq(sid));
    }
    m.milestones_total = total.first(conn)?;
    m.milestones_moved = moved.first(conn)?;
    let (planned, spent): (Option<f64>, Option<f64>) = filtered(scope, with_archived)
        .select((
            diesel::dsl::sum(items::estimated_cost),
            diesel::dsl::sum(items::actual_cost),
        ))
        .first(conn)?;
    m.resources = Money {
        planned: planned.unwrap_or(0.0),
        spent: spent.unwrap_or(0.0),
    };
    let deviations: Vec<(Option<String>, i64)> = scoped!(
        items::table
            .filter(items::deviation_state.is_not_null())
            .group_by(items::deviation_state)
            .select((items::deviation_state, count_star())),
        scope,
        with_archived
    )
    .load(conn)?;
    for (state, n) in deviations {
        if let Some((kind, status)) = state.as_deref().and_then(|s| s.split_once('/')) {
            *m.deviations
                .entry(kind.to_owned())
                .or_default()
                .entry(status.to_owned())
                .or_default() += n;
        }
    }
    m.archived_unresolved_excluded = if with_archived {
        0
    } else {
        filtered(scope, true)
            .filter(items::archived_at.is_not_null())
            .filter(items::status.eq_any(&active))
            .count()
            .get_result(conn)?
    };
    m.vendor_check_ins_overdue = filtered(scope, with_archived)
        .filter(items::status.eq_any(active.clone()))
        .filter(items::vendor_check_in.lt(day(31)))
        .select(count_star())
        .first(conn)?;
    // Days to close by control family, from the closed items' controls.
    // The closed items' ids first, from an index that holds them (`items_status_id_idx`), then
    // their controls a chunk at a time: joined in one statement, the planner (told by the
    // statistics that one status may match every row) read every item row of a million-item
    // system (4 s).
    let closed: Vec<String> = filtered(scope, with_archived)
        .filter(items::status.eq(ItemStatus::Closed.as_str()))
        .select(items::id)
        .load(conn)?;
    let mut closed_controls: Vec<(String, NaiveDate, Option<NaiveDate>)> = Vec::new();
    for chunk in closed.chunks(500) {
        closed_controls.extend(
            item_controls::table
                .inner_join(items::table)
                .filter(item_controls::item_id.eq_any(chunk))
                .select((item_controls::control, items::detected_on, items::closed_on))
                .load::<(String, NaiveDate, Option<NaiveDate>)>(conn)?,
        );
    }
    let mut by_family: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for (control, detected, closed) in closed_controls {
        if let Some(c) = closed {
            by_family
                .entry(family(&control))
                .or_default()
                .push((c - detected).num_days());
        }
    }
    m.median_days_to_close_by_family = by_family
        .into_iter()
        .filter_map(|(f, v)| median(v).map(|x| (f, x)))
        .collect();
    m.vdr = vdr_metrics(conn, scope, with_archived)?;
    // Every rating and status appears, zero or not, so clients need no defaults.
    for r in RiskRating::ALL {
        m.by_rating.entry(r.to_string()).or_insert(0);
        m.overdue.by_rating.entry(r.to_string()).or_insert(0);
        m.escalated.by_rating.entry(r.to_string()).or_insert(0);
        m.risk_reduced.entry(r.to_string()).or_insert(0);
    }
    for s in ItemStatus::ALL {
        m.by_status.entry(s.to_string()).or_insert(0);
    }
    Ok(m)
}

/// What the FedRAMP 2026 figures read of an item's `details` document: its evaluation alone
/// (the other keys are skipped unparsed).
#[derive(serde::Deserialize)]
struct EvaluationOnly {
    #[serde(default)]
    evaluation: Option<poam_domain::vdr::Evaluation>,
}

/// How an item without an evaluation is stored in `details` (`serde_json`'s compact form; in a
/// JSON string every quote is escaped, so only the key itself matches).
const NO_EVALUATION: &str = "%\"evaluation\":null%";

/// The FedRAMP 2026 figures of the scope's systems under the rules (`None` when none is): their
/// unresolved items' standing by [`VdrMetrics::add`]. Items without an evaluation are counted
/// by detection date in the database (their standing depends on nothing else); only the
/// evaluated ones' `details` are read, with their system and detection date.
fn vdr_metrics(
    conn: &mut DbConnection,
    scope: &Scope,
    with_archived: bool,
) -> Result<Option<VdrMetrics>, StoreError> {
    let now = db::now();
    let ids: Option<Vec<String>> = match scope {
        Scope::One(id) => Some(vec![id.to_string()]),
        Scope::Many(Some(ids)) => Some(ids.iter().map(|i| i.to_string()).collect()),
        Scope::Many(None) => None,
    };
    let regimes: BTreeMap<String, poam_domain::vdr::Regime> =
        crate::vdr::systems_under(conn, ids.as_deref(), now.date())?
            .into_iter()
            .collect();
    if regimes.is_empty() {
        return Ok(None);
    }
    let under: Vec<String> = regimes.keys().cloned().collect();
    let active: Vec<String> = ItemStatus::active().map(|s| s.to_string()).collect();
    let at = crate::systems::utc(now);
    let mut v = VdrMetrics::new(regimes.len() as i64);
    let unevaluated: Vec<(String, NaiveDate, i64)> = scoped!(
        items::table
            .filter(items::system_id.eq_any(under.clone()))
            .filter(items::status.eq_any(active.clone()))
            .filter(items::details.like(NO_EVALUATION))
            .group_by((items::system_id, items::detected_on))
            .select((items::system_id, items::detected_on, count_star())),
        scope,
        with_archived
    )
    .load(conn)?;
    for (sid, detected_on, n) in unevaluated {
        if let Some(r) = regimes.get(&sid) {
            v.add(r, None, detected_on, at, n);
        }
    }
    let evaluated: Vec<(String, NaiveDate, String)> = filtered(scope, with_archived)
        .filter(items::system_id.eq_any(under))
        .filter(items::status.eq_any(active))
        .filter(items::details.not_like(NO_EVALUATION))
        .select((items::system_id, items::detected_on, items::details))
        .load(conn)?;
    for (sid, detected_on, details) in evaluated {
        let Some(r) = regimes.get(&sid) else { continue };
        let d: EvaluationOnly =
            serde_json::from_str(&details).map_err(|e| crate::error::corrupt("item details", e))?;
        v.add(r, d.evaluation.as_ref(), detected_on, at, 1);
    }
    Ok(Some(v))
}
