//! The report's reads: the columns of the scope's items (no full rows), their milestones'
//! dates and moves, evidence counts, the CMMC standing and the attention list; the figures are
//! computed by `poam_domain::report`.
//!
//! The burn-down is reconstructed from the items' dates (detection, completion or closure), not
//! from the history: the events carry full snapshots, and replaying them for a 10,000-item
//! system would read every version of every item, where the dates are three columns of the
//! rows read anyway. The price: an item counts at its current rating on every day, a reopened
//! item as if it had never been resolved, and a risk-accepted item (no resolution date) as
//! resolved on its last update.

use crate::db::{self, DbConnection};
use crate::error::StoreError;
use crate::schema::{evidence, item_controls, items, milestones, systems};
use chrono::{DateTime, Days, NaiveDate, NaiveDateTime, Utc};
use diesel::dsl::count_star;
use diesel::prelude::*;
use poam_domain::deadlines::Policy;
use poam_domain::report::{
    self as r, ByRating, CmmcStanding, Headline, ItemPlan, ItemResources, ItemSummary,
    MovedMilestone, Period, PlanMilestone, Report, ReportLevel, Roadmap, RoadmapRow, Span,
    SystemRef,
};
use poam_domain::workflow::MilestoneStatus;
use poam_domain::{
    ItemId, ItemStatus, MilestoneId, Person, Regime, RiskRating, System, SystemId, SystemScope,
};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// What the report covers.
#[derive(Debug, Clone)]
pub enum Target {
    /// One system (404 outside the caller's scope).
    One(SystemId),
    /// Every unarchived system the caller may see.
    Visible,
}

/// How far ahead the roadmap looks.
pub const ROADMAP_DAYS: u64 = 90;

/// The item columns the report reads.
type ItemColumns = (
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    String,
    Option<String>,
    NaiveDate,
    Option<NaiveDate>,
    Option<NaiveDate>,
    Option<NaiveDate>,
    Option<f64>,
    Option<f64>,
    String,
    NaiveDateTime,
);

/// The part of `details` the report needs; the rest is skipped unparsed.
#[derive(Debug, Default, Deserialize)]
struct PlanDetails {
    #[serde(default)]
    remediation_plan: Option<String>,
    #[serde(default)]
    resources: Option<ResourceDetails>,
}

#[derive(Debug, Default, Deserialize)]
struct ResourceDetails {
    #[serde(default)]
    hours: Option<f64>,
    #[serde(default)]
    funded: Option<bool>,
}

#[derive(Debug, Deserialize)]
struct Move {
    from: NaiveDate,
    to: NaiveDate,
    #[serde(default)]
    at: Option<DateTime<Utc>>,
}

/// An item as read, its words parsed.
struct Row {
    id: ItemId,
    key: String,
    system_id: SystemId,
    display_id: String,
    title: String,
    rating: RiskRating,
    status: ItemStatus,
    owner: Option<String>,
    detected_on: NaiveDate,
    scheduled: Option<NaiveDate>,
    resolved_on: Option<NaiveDate>,
    closed_on: Option<NaiveDate>,
    plan: Option<String>,
    resources: ItemResources,
}

impl Row {
    fn parse(c: ItemColumns) -> Option<Row> {
        let (
            id,
            system_id,
            display_id,
            title,
            rating,
            adjusted,
            status,
            owner,
            detected_on,
            scheduled,
            completed_on,
            closed_on,
            estimated_cost,
            actual_cost,
            details,
            updated_at,
        ) = c;
        let status: ItemStatus = status.parse().ok()?;
        let rating: RiskRating = adjusted
            .as_deref()
            .and_then(|a| a.parse().ok())
            .or_else(|| rating.parse().ok())?;
        let details: PlanDetails = serde_json::from_str(&details).unwrap_or_default();
        let resources = details.resources.unwrap_or_default();
        let resolved_on = if status.is_active() {
            None
        } else {
            Some(
                completed_on
                    .or(closed_on)
                    .unwrap_or_else(|| updated_at.date()),
            )
        };
        Some(Row {
            id: id.parse().ok()?,
            key: id,
            system_id: system_id.parse().ok()?,
            display_id,
            title,
            rating,
            status,
            owner: owner
                .and_then(|o| serde_json::from_str::<Person>(&o).ok())
                .map(|p| p.name),
            detected_on,
            scheduled,
            resolved_on,
            closed_on,
            plan: details.remediation_plan,
            resources: ItemResources {
                estimated_cost,
                hours: resources.hours,
                actual_cost,
                funded: resources.funded,
            },
        })
    }

    fn overdue(&self, today: NaiveDate) -> bool {
        self.status.is_active() && self.scheduled.is_some_and(|s| s < today)
    }

    fn summary(&self, today: NaiveDate) -> ItemSummary {
        ItemSummary {
            id: self.id,
            system_id: self.system_id,
            display_id: self.display_id.clone(),
            title: self.title.clone(),
            risk_rating: self.rating,
            status: self.status,
            owner: self.owner.clone(),
            detected_on: self.detected_on,
            scheduled_completion: self.scheduled,
            age_days: (today - self.detected_on).num_days(),
            overdue: self.overdue(today),
        }
    }
}

/// A milestone as read.
struct MilestoneRow {
    id: MilestoneId,
    title: String,
    due_on: NaiveDate,
    status: MilestoneStatus,
    position: i32,
    moves: Vec<Move>,
}

fn systems_of(
    conn: &mut DbConnection,
    target: &Target,
    scope: &SystemScope,
) -> Result<Vec<System>, StoreError> {
    match target {
        Target::One(id) => Ok(vec![crate::systems::get(conn, *id, scope)?]),
        Target::Visible => {
            let mut q = systems::table
                .filter(systems::archived_at.is_null())
                .select(systems::id)
                .order(systems::name.asc())
                .into_boxed();
            if let SystemScope::Only(ids) = scope {
                q = q.filter(
                    systems::id.eq_any(ids.iter().map(|i| i.to_string()).collect::<Vec<_>>()),
                );
            }
            let ids: Vec<String> = q.load(conn)?;
            ids.iter()
                .filter_map(|i| i.parse::<SystemId>().ok())
                .map(|id| crate::systems::get(conn, id, &SystemScope::All))
                .collect()
        }
    }
}

/// The report of `target` over `period`, as `scope` may see it.
pub fn build(
    conn: &mut DbConnection,
    target: &Target,
    scope: &SystemScope,
    period: Period,
    level: ReportLevel,
) -> Result<Report, StoreError> {
    let today = db::now().date();
    let systems = systems_of(conn, target, scope)?;
    let ids: Vec<String> = systems.iter().map(|s| s.id.to_string()).collect();
    let columns: Vec<ItemColumns> = items::table
        .filter(items::system_id.eq_any(&ids))
        .filter(items::archived_at.is_null())
        .select((
            items::id,
            items::system_id,
            items::display_id,
            items::title,
            items::risk_rating,
            items::adjusted_risk_rating,
            items::status,
            items::owner,
            items::detected_on,
            items::scheduled_completion,
            items::completed_on,
            items::closed_on,
            items::estimated_cost,
            items::actual_cost,
            items::details,
            items::updated_at,
        ))
        .load(conn)?;
    let rows: Vec<Row> = columns.into_iter().filter_map(Row::parse).collect();
    let index: HashMap<&str, usize> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| (r.key.as_str(), i))
        .collect();

    // Milestones of the loaded items, by item, in plan order.
    let ms: Vec<(String, String, String, NaiveDate, String, i32, String)> = milestones::table
        .filter(milestones::system_id.eq_any(&ids))
        .select((
            milestones::id,
            milestones::item_id,
            milestones::title,
            milestones::due_on,
            milestones::status,
            milestones::position,
            milestones::changes,
        ))
        .load(conn)?;
    let mut plans: HashMap<usize, Vec<MilestoneRow>> = HashMap::new();
    for (id, item, title, due_on, status, position, changes) in ms {
        let (Some(i), Ok(id), Ok(status)) = (
            index.get(item.as_str()),
            id.parse::<MilestoneId>(),
            status.parse::<MilestoneStatus>(),
        ) else {
            continue;
        };
        let moves = if changes == "[]" {
            Vec::new()
        } else {
            serde_json::from_str(&changes).unwrap_or_default()
        };
        plans.entry(*i).or_default().push(MilestoneRow {
            id,
            title,
            due_on,
            status,
            position,
            moves,
        });
    }
    for v in plans.values_mut() {
        v.sort_by(|a, b| a.position.cmp(&b.position).then(a.due_on.cmp(&b.due_on)));
    }

    let in_period = |d: NaiveDate| d >= period.from && d <= period.to;
    let active: Vec<&Row> = rows.iter().filter(|r| r.status.is_active()).collect();

    // Headline.
    let mut open = ByRating::default();
    let mut overdue = ByRating::default();
    for row in &active {
        open.add(row.rating, 1);
        if row.overdue(today) {
            overdue.add(row.rating, 1);
        }
    }
    let mut oldest: Vec<&Row> = active
        .iter()
        .copied()
        .filter(|r| matches!(r.rating, RiskRating::Critical | RiskRating::High))
        .collect();
    oldest.sort_by(|a, b| {
        a.detected_on
            .cmp(&b.detected_on)
            .then(a.display_id.cmp(&b.display_id))
    });
    let closed: Vec<&Row> = rows
        .iter()
        .filter(|r| r.status == ItemStatus::Closed && r.closed_on.is_some_and(in_period))
        .collect();
    let mut closed_in_period = ByRating::default();
    let mut to_close = Vec::new();
    for row in &closed {
        closed_in_period.add(row.rating, 1);
        if let Some(c) = row.closed_on {
            to_close.push((row.rating, (c - row.detected_on).num_days()));
        }
    }
    let mut cmmc = Vec::new();
    for s in systems
        .iter()
        .filter(|s| matches!(s.regime, Regime::CmmcL2 | Regime::CmmcL3))
    {
        let c = crate::cmmc::evaluate(conn, s.id, &SystemScope::All, &[])?;
        cmmc.push(CmmcStanding {
            system_id: s.id,
            score: c.score,
            max: poam_domain::cmmc::MAX_SCORE,
            conditional_eligible: c.eligible,
            closeout_deadline: c.closeout_deadline,
            days_left: c.days_left,
        });
    }
    let headline = Headline {
        open,
        open_total: open.total(),
        open_weighted: open.weighted(),
        overdue,
        overdue_total: overdue.total(),
        oldest_critical_high: oldest.iter().take(5).map(|r| r.summary(today)).collect(),
        closed_in_period,
        risk_reduced: closed_in_period.weighted(),
        cmmc,
    };

    // Burn-down and aging.
    let spans: Vec<Span> = rows
        .iter()
        .map(|r| Span {
            rating: r.rating,
            detected_on: r.detected_on,
            resolved_on: r.resolved_on,
            scheduled_completion: r.scheduled,
        })
        .collect();
    let burn_down = r::burn_down(&spans, period);
    let aging = r::aging(
        &active
            .iter()
            .map(|r| (r.rating, r.detected_on))
            .collect::<Vec<_>>(),
        today,
    );

    // Slip: the moves made in the period, grouped by the item's families and owner.
    let moved_items: BTreeSet<usize> = plans
        .iter()
        .filter(|(_, ms)| {
            ms.iter().any(|m| {
                m.moves
                    .iter()
                    .any(|mv| mv.at.is_none_or(|a| in_period(a.date_naive())))
            })
        })
        .map(|(i, _)| *i)
        .collect();
    let mut families: HashMap<usize, Vec<String>> = HashMap::new();
    let keys: Vec<&str> = moved_items
        .iter()
        .filter_map(|i| rows.get(*i))
        .map(|r| r.key.as_str())
        .collect();
    for chunk in keys.chunks(500) {
        let controls: Vec<(String, String)> = item_controls::table
            .filter(item_controls::item_id.eq_any(chunk))
            .select((item_controls::item_id, item_controls::control))
            .load(conn)?;
        for (item, control) in controls {
            if let Some(i) = index.get(item.as_str()) {
                families.entry(*i).or_default().push(r::family(&control));
            }
        }
    }
    let mut moved = Vec::new();
    for i in &moved_items {
        for m in plans.get(i).into_iter().flatten() {
            let moves: Vec<(NaiveDate, NaiveDate)> = m
                .moves
                .iter()
                .filter(|mv| mv.at.is_none_or(|a| in_period(a.date_naive())))
                .map(|mv| (mv.from, mv.to))
                .collect();
            if !moves.is_empty() {
                moved.push(MovedMilestone {
                    families: families.get(i).cloned().unwrap_or_default(),
                    owner: rows.get(*i).and_then(|r| r.owner.clone()),
                    moves,
                });
            }
        }
    }
    let slip = r::slip(&moved);

    // Time to close against the deadline policy (one only when every system shares it).
    let policies: Vec<Option<Policy>> = systems
        .iter()
        .map(|s| r::rating_policy(s.regime, s.deadline_policy.as_ref()))
        .collect();
    let policy = match policies.first() {
        Some(first) if policies.iter().all(|p| p == first) => first.clone(),
        _ => None,
    };
    let time_to_close = r::close_times(&to_close, policy.as_ref());
    let resources = r::resources(&rows.iter().map(|r| r.resources).collect::<Vec<_>>());

    // The roadmap: open milestones of open items due within the next 90 days, or overdue.
    let horizon = today
        .checked_add_days(Days::new(ROADMAP_DAYS))
        .unwrap_or(today);
    let mut roadmap_rows = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        if !row.status.is_active() {
            continue;
        }
        let mut open_ms: Vec<&MilestoneRow> = plans
            .get(&i)
            .into_iter()
            .flatten()
            .filter(|m| m.status.is_open())
            .collect();
        open_ms.sort_by_key(|m| m.due_on);
        let mut previous = today;
        for m in open_ms {
            let overdue = m.due_on < today;
            if m.due_on <= horizon {
                roadmap_rows.push(RoadmapRow {
                    item_id: row.id,
                    display_id: row.display_id.clone(),
                    item_title: row.title.clone(),
                    owner: row.owner.clone(),
                    risk_rating: row.rating,
                    milestone_id: m.id,
                    milestone: m.title.clone(),
                    start: if overdue { m.due_on } else { previous },
                    due_on: m.due_on,
                    overdue,
                });
            }
            previous = previous.max(m.due_on);
        }
    }
    roadmap_rows.sort_by(|a, b| {
        (a.owner.is_none(), &a.owner, &a.display_id, a.due_on).cmp(&(
            b.owner.is_none(),
            &b.owner,
            &b.display_id,
            b.due_on,
        ))
    });
    let limit = match level {
        ReportLevel::Executive => 20,
        ReportLevel::Technical => 500,
    };
    let truncated = roadmap_rows.len().saturating_sub(limit) as i64;
    roadmap_rows.truncate(limit);
    let roadmap = Roadmap {
        from: today,
        to: horizon,
        rows: roadmap_rows,
        truncated,
    };

    // Attention: the list `GET …/attention` answers.
    let attention_limit = match level {
        ReportLevel::Executive => 10,
        ReportLevel::Technical => 200,
    };
    let only = match target {
        Target::One(id) => Some(*id),
        Target::Visible => None,
    };
    let mut attention = crate::reminders::attention(conn, scope, only, attention_limit)?;
    attention.truncate(attention_limit);

    // Items: the most pressing first (highest risk, earliest due, display id).
    let mut listed: Vec<usize> = (0..rows.len())
        .filter(|i| rows.get(*i).is_some_and(|r| r.status.is_active()))
        .collect();
    listed.sort_by(|a, b| match (rows.get(*a), rows.get(*b)) {
        (Some(x), Some(y)) => y
            .rating
            .rank()
            .cmp(&x.rating.rank())
            .then((x.scheduled.is_none(), x.scheduled).cmp(&(y.scheduled.is_none(), y.scheduled)))
            .then(x.system_id.to_string().cmp(&y.system_id.to_string()))
            .then(x.display_id.cmp(&y.display_id)),
        _ => std::cmp::Ordering::Equal,
    });
    let open_count = listed.len();
    if level == ReportLevel::Executive {
        listed.truncate(10);
    }
    let evidence_counts = evidence_by_item(conn, &ids)?;
    let items: Vec<ItemPlan> = listed
        .iter()
        .filter_map(|i| rows.get(*i).map(|row| (i, row)))
        .map(|(i, row)| ItemPlan {
            item: row.summary(today),
            remediation_plan: row.plan.clone(),
            milestones: plans
                .get(i)
                .into_iter()
                .flatten()
                .map(|m| PlanMilestone {
                    id: m.id,
                    title: m.title.clone(),
                    due_on: m.due_on,
                    status: m.status.to_string(),
                    moves: m.moves.len() as i64,
                    overdue: m.status.is_open() && m.due_on < today,
                })
                .collect(),
            evidence: evidence_counts.get(&row.key).copied().unwrap_or(0),
        })
        .collect();

    Ok(Report {
        level,
        period,
        generated_on: today,
        systems: systems
            .iter()
            .map(|s| SystemRef {
                id: s.id,
                name: s.name.clone(),
                regime: s.regime,
            })
            .collect(),
        weights: r::WEIGHTS,
        headline,
        burn_down,
        aging,
        slip,
        time_to_close,
        resources,
        roadmap,
        attention,
        items_not_listed: open_count.saturating_sub(items.len()) as i64,
        items,
    })
}

/// Evidence on record (not withdrawn) per item of the systems.
fn evidence_by_item(
    conn: &mut DbConnection,
    systems: &[String],
) -> Result<BTreeMap<String, i64>, StoreError> {
    let counts: Vec<(String, i64)> = evidence::table
        .filter(evidence::system_id.eq_any(systems))
        .filter(evidence::withdrawn_at.is_null())
        .group_by(evidence::item_id)
        .select((evidence::item_id, count_star()))
        .load(conn)?;
    Ok(counts.into_iter().collect())
}
