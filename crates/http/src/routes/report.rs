//! The reports people look at: the executive (one page) and technical report of a system, or
//! of every system the token may see (the portfolio), as a self-contained printable HTML page
//! (inline CSS, server-drawn SVG, no script, no external URL: air-gapped sites print it to PDF)
//! or as JSON with the same figures.

mod svg;

use super::docs::ReadProblems;
use crate::auth::Actor;
use crate::input::query;
use crate::problem::ApiError;
use crate::state::AppState;
use actix_web::http::header;
use actix_web::{get, web, HttpRequest, HttpResponse};
use askama::Template;
use chrono::{Days, NaiveDate};
use poam_domain::report::{ByRating, Period, Report, ReportLevel, AGE_BUCKETS};
use poam_domain::{Permission, RiskRating, SystemId};
use poam_persistence::report::{self as store, Target};
use serde::Deserialize;
use svg::{Bar, Fill, Series, Task};
use utoipa::{IntoParams, ToSchema};

/// The representation asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReportFormat {
    Html,
    Json,
}

/// What the report covers and how it is answered.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ReportParams {
    /// `html` or `json`. Without it, a request that accepts `text/html` gets HTML, any other
    /// JSON.
    #[param(inline)]
    format: Option<ReportFormat>,
    /// `executive` (default: one page, the ten most pressing items) or `technical` (every open
    /// item with its plan, milestones and evidence count).
    #[param(inline)]
    level: Option<ReportLevel>,
    /// First day of the period; by default 30 days before its end.
    #[param(example = "2026-11-01")]
    from: Option<NaiveDate>,
    /// Last day of the period (included); by default today.
    #[param(example = "2026-11-30")]
    to: Option<NaiveDate>,
}

/// The longest period a report covers.
const MAX_PERIOD_DAYS: i64 = 3660;

/// The policy of the HTML page: its inline styles and nothing else.
const REPORT_CSP: &str =
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

struct Asked {
    html: bool,
    level: ReportLevel,
    period: Period,
}

fn asked(req: &HttpRequest) -> Result<Asked, ApiError> {
    let p = query::<ReportParams>(req)?;
    let today = chrono::Utc::now().date_naive();
    let to = p.to.unwrap_or(today);
    let from = match p.from {
        Some(f) => f,
        None => to.checked_sub_days(Days::new(30)).unwrap_or(to),
    };
    if from > to {
        return Err(ApiError::invalid_param(
            "from",
            "period_reversed",
            "the period starts after it ends",
        ));
    }
    if (to - from).num_days() > MAX_PERIOD_DAYS {
        return Err(ApiError::invalid_param(
            "from",
            "period_too_long",
            "a report covers at most 3660 days",
        ));
    }
    let html = match p.format {
        Some(f) => f == ReportFormat::Html,
        None => req
            .headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.to_ascii_lowercase().contains("text/html")),
    };
    Ok(Asked {
        html,
        level: p.level.unwrap_or_default(),
        period: Period { from, to },
    })
}

async fn answer(
    state: web::Data<AppState>,
    actor: Actor,
    req: &HttpRequest,
    target: Target,
) -> Result<HttpResponse, ApiError> {
    actor.require(Permission::Read)?;
    let a = asked(req)?;
    let scope = actor.scope.clone();
    let (period, level) = (a.period, a.level);
    let report = state
        .db(move |conn| store::build(conn, &target, &scope, period, level))
        .await?;
    if !a.html {
        return Ok(HttpResponse::Ok().json(report));
    }
    let body = page(&report).render().map_err(|e| {
        tracing::error!(error = %e, "report template");
        ApiError::Internal
    })?;
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CONTENT_SECURITY_POLICY, REPORT_CSP))
        .body(body))
}

/// The report of one system: headline, burn-down, aging, slips, time to close, resources, the
/// 90-day remediation roadmap and what needs attention; the ten most pressing items
/// (`executive`) or every open item with its plan (`technical`). Weighted risk counts critical
/// 4, high 3, moderate 2, low 1.
#[utoipa::path(
    operation_id = "get_system_report",
    tag = "report",
    params(("system_id" = uuid::Uuid, Path, description = "The system's id."), ReportParams),
    responses(
        (status = 200, description = "The report: JSON, or a self-contained printable HTML page (inline CSS and SVG, no script).",
            content((Report = "application/json"), (String = "text/html"))),
        ReadProblems
    ),
    security(("bearer" = []))
)]
#[get("/systems/{system_id}/report")]
pub async fn system_report(
    state: web::Data<AppState>,
    actor: Actor,
    req: HttpRequest,
    path: web::Path<SystemId>,
) -> Result<HttpResponse, ApiError> {
    answer(state, actor, &req, Target::One(path.into_inner())).await
}

/// The portfolio report: the same sections across every unarchived system the token may see.
#[utoipa::path(
    operation_id = "get_portfolio_report",
    tag = "report",
    params(ReportParams),
    responses(
        (status = 200, description = "The report: JSON, or a self-contained printable HTML page (inline CSS and SVG, no script).",
            content((Report = "application/json"), (String = "text/html"))),
        ReadProblems
    ),
    security(("bearer" = []))
)]
#[get("/report")]
pub async fn portfolio_report(
    state: web::Data<AppState>,
    actor: Actor,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    answer(state, actor, &req, Target::Visible).await
}

// ---------------------------------------------------------------------------------------------
// The HTML page

struct Cell {
    text: String,
    numeric: bool,
}

fn t(s: impl Into<String>) -> Cell {
    Cell {
        text: s.into(),
        numeric: false,
    }
}

fn n(x: impl ToString) -> Cell {
    Cell {
        text: x.to_string(),
        numeric: true,
    }
}

struct Table {
    caption: String,
    head: Vec<&'static str>,
    rows: Vec<Vec<Cell>>,
}

struct Section {
    id: &'static str,
    title: String,
    intro: String,
    /// SVG markup built by `svg` (every text in it escaped there).
    chart: String,
    tables: Vec<Table>,
    page_break: bool,
    open_tables: bool,
}

struct Card {
    value: String,
    label: String,
}

struct ItemView {
    heading: String,
    meta: String,
    plan: String,
    milestones: Table,
}

#[derive(Template)]
#[template(path = "report.html")]
struct Page {
    title: String,
    subtitle: String,
    weights_note: String,
    cards: Vec<Card>,
    headline_notes: Vec<String>,
    sections: Vec<Section>,
    items_title: String,
    items_note: String,
    items: Vec<ItemView>,
    footer: String,
}

fn days(x: Option<f64>) -> String {
    x.map_or_else(|| "–".to_owned(), |v| format!("{v:.1}"))
}

fn money(x: f64) -> String {
    let whole = x.round() as i64;
    let digits = whole.unsigned_abs().to_string();
    let mut groups: Vec<String> = Vec::new();
    let chars: Vec<char> = digits.chars().collect();
    for chunk in chars.rchunks(3) {
        groups.push(chunk.iter().collect());
    }
    groups.reverse();
    let out = groups.join(",");
    if whole < 0 {
        format!("-{out}")
    } else {
        out
    }
}

fn rating_table(caption: &str, rows: &[(&str, ByRating)]) -> Table {
    Table {
        caption: caption.to_owned(),
        head: vec!["", "critical", "high", "moderate", "low", "total"],
        rows: rows
            .iter()
            .map(|(label, b)| {
                vec![
                    t(*label),
                    n(b.critical),
                    n(b.high),
                    n(b.moderate),
                    n(b.low),
                    n(b.total()),
                ]
            })
            .collect(),
    }
}

fn page(r: &Report) -> Page {
    let technical = r.level == ReportLevel::Technical;
    let scope_name = match r.systems.as_slice() {
        [one] => one.name.clone(),
        many => format!("{} systems", many.len()),
    };
    let level = if technical { "Technical" } else { "Executive" };
    let h = &r.headline;
    let mut cards = vec![
        Card {
            value: h.open_total.to_string(),
            label: "open items".into(),
        },
        Card {
            value: h.overdue_total.to_string(),
            label: "overdue".into(),
        },
        Card {
            value: h.closed_in_period.total().to_string(),
            label: "closed in the period".into(),
        },
        Card {
            value: h.risk_reduced.to_string(),
            label: format!("risk reduced (weighted; open now {})", h.open_weighted),
        },
    ];
    let mut headline_notes = Vec::new();
    for c in &h.cmmc {
        let name = r
            .systems
            .iter()
            .find(|s| s.id == c.system_id)
            .map_or_else(|| c.system_id.to_string(), |s| s.name.clone());
        cards.push(Card {
            value: c
                .score
                .map_or_else(|| "none".to_owned(), |s| format!("{s} / {}", c.max)),
            label: format!("SPRS score, {name}"),
        });
        headline_notes.push(format!(
            "{name}: Conditional Level 2 status {}{}.",
            if c.conditional_eligible {
                "available"
            } else {
                "not available"
            },
            match (c.closeout_deadline, c.days_left) {
                (Some(d), Some(left)) => format!("; POA&M closeout due {d} ({left} days left)"),
                _ => String::new(),
            }
        ));
    }

    let mut sections = Vec::new();
    // Headline chart: open and overdue by rating.
    let headline_bars: Vec<Bar> = RiskRating::ALL
        .iter()
        .flat_map(|rt| {
            [
                Bar {
                    label: format!("{rt} open"),
                    value: h.open.get(*rt) as f64,
                    fill: Fill::Rating(*rt),
                    text: h.open.get(*rt).to_string(),
                    mark: None,
                },
                Bar {
                    label: format!("{rt} overdue"),
                    value: h.overdue.get(*rt) as f64,
                    fill: Fill::Hatch,
                    text: format!("{} overdue", h.overdue.get(*rt)),
                    mark: None,
                },
            ]
        })
        .collect();
    let oldest = Table {
        caption: "Oldest open critical and high items".into(),
        head: vec!["item", "title", "rating", "detected", "age (days)", "owner"],
        rows: h
            .oldest_critical_high
            .iter()
            .map(|i| {
                vec![
                    t(&i.display_id),
                    t(&i.title),
                    t(i.risk_rating.as_str()),
                    t(i.detected_on.to_string()),
                    n(i.age_days),
                    t(i.owner.clone().unwrap_or_default()),
                ]
            })
            .collect(),
    };
    sections.push(Section {
        id: "open-by-rating",
        title: "Open and overdue items by risk".into(),
        intro: "Solid patterns: open items; hatched: the overdue among them.".into(),
        chart: svg::bars(
            "c-open",
            "Open and overdue items by risk rating",
            "Horizontal bars: open items per rating, each followed by its overdue count.",
            &headline_bars,
        ),
        tables: vec![
            rating_table(
                "Items by risk rating",
                &[
                    ("open", h.open),
                    ("overdue", h.overdue),
                    ("closed in the period", h.closed_in_period),
                ],
            ),
            oldest,
        ],
        page_break: false,
        open_tables: technical,
    });

    // Burn-down.
    let dates: Vec<NaiveDate> = r.burn_down.iter().map(|p| p.date).collect();
    sections.push(Section {
        id: "burn-down",
        title: "Burn-down".into(),
        intro: "Open items and their weighted risk at the end of each day (each week past 62 days), reconstructed from the items' detection and resolution dates, against the plan: the items that would be open had each been resolved on its scheduled completion date.".into(),
        chart: svg::lines(
            "c-burn",
            "Burn-down across the period",
            "Lines: open items (solid), open weighted risk (dashed), scheduled (dotted).",
            &dates,
            &[
                Series {
                    name: "open items".into(),
                    values: r.burn_down.iter().map(|p| p.open).collect(),
                    dash: "",
                    colour: "#1f3b57",
                },
                Series {
                    name: "weighted risk".into(),
                    values: r.burn_down.iter().map(|p| p.open_weighted).collect(),
                    dash: "8 4",
                    colour: "#a33",
                },
                Series {
                    name: "scheduled".into(),
                    values: r.burn_down.iter().map(|p| p.scheduled_open).collect(),
                    dash: "2 3",
                    colour: "#333",
                },
            ],
        ),
        tables: vec![Table {
            caption: "Burn-down points".into(),
            head: vec!["date", "open items", "weighted risk", "scheduled"],
            rows: r
                .burn_down
                .iter()
                .map(|p| {
                    vec![
                        t(p.date.to_string()),
                        n(p.open),
                        n(p.open_weighted),
                        n(p.scheduled_open),
                    ]
                })
                .collect(),
        }],
        page_break: technical,
        open_tables: false,
    });

    // Aging.
    let aging_rows: Vec<(String, ByRating)> = r
        .aging
        .iter()
        .map(|a| (format!("{} days", a.bucket), a.by_rating))
        .collect();
    sections.push(Section {
        id: "aging",
        title: "Aging of open items".into(),
        intro: format!(
            "Days since detection, in buckets {}.",
            AGE_BUCKETS.join(", ")
        ),
        chart: svg::stacked(
            "c-aging",
            "Open items by age and risk rating",
            "Stacked bars per age bucket, one pattern per risk rating.",
            &aging_rows,
        ),
        tables: vec![rating_table(
            "Open items by age",
            &aging_rows
                .iter()
                .map(|(l, b)| (l.as_str(), *b))
                .collect::<Vec<_>>(),
        )],
        page_break: technical,
        open_tables: technical,
    });

    // Slip.
    let s = &r.slip;
    let slip_bars: Vec<Bar> = s
        .by_family
        .iter()
        .take(8)
        .map(|g| Bar {
            label: format!("family {}", g.key),
            value: g.days_moved as f64,
            fill: Fill::Shade(1),
            text: format!("{} days, {} moves", g.days_moved, g.moves),
            mark: None,
        })
        .chain(s.by_owner.iter().take(8).map(|g| Bar {
            label: g.key.clone(),
            value: g.days_moved as f64,
            fill: Fill::Shade(2),
            text: format!("{} days, {} moves", g.days_moved, g.moves),
            mark: None,
        }))
        .collect();
    let group_table = |caption: &str, groups: &[poam_domain::report::SlipGroup]| Table {
        caption: caption.to_owned(),
        head: vec!["", "milestones moved", "moves", "days moved"],
        rows: groups
            .iter()
            .map(|g| vec![t(&g.key), n(g.milestones), n(g.moves), n(g.days_moved)])
            .collect(),
    };
    sections.push(Section {
        id: "slip",
        title: "Schedule slip".into(),
        intro: format!(
            "{} milestones moved {} times in the period, {} days in all (by control family of the item, dark; by owner, light).",
            s.milestones_moved, s.moves, s.days_moved
        ),
        chart: svg::bars(
            "c-slip",
            "Days milestones moved, by control family and owner",
            "Horizontal bars: days moved per control family, then per owner.",
            &slip_bars,
        ),
        tables: vec![
            group_table("Slip by control family", &s.by_family),
            group_table("Slip by owner", &s.by_owner),
        ],
        page_break: technical,
        open_tables: technical,
    });

    // Time to close.
    let close_bars: Vec<Bar> = r
        .time_to_close
        .iter()
        .flat_map(|c| {
            let mark = c.deadline_days.map(f64::from);
            [
                Bar {
                    label: format!("{} median", c.rating),
                    value: c.median_days.unwrap_or(0.0),
                    fill: Fill::Rating(c.rating),
                    text: format!("{} days", days(c.median_days)),
                    mark,
                },
                Bar {
                    label: format!("{} 90th pct", c.rating),
                    value: c.p90_days.unwrap_or(0.0),
                    fill: Fill::Hatch,
                    text: format!("{} days", days(c.p90_days)),
                    mark,
                },
            ]
        })
        .collect();
    sections.push(Section {
        id: "time-to-close",
        title: "Time to close".into(),
        intro: "Days from detection to closure of the items closed in the period: median and 90th percentile (nearest rank); the dashed tick is the regime's deadline for the rating.".into(),
        chart: svg::bars(
            "c-close",
            "Days to close by risk rating against the deadline",
            "Horizontal bars: median and 90th percentile days to close per rating, with the deadline as a dashed tick.",
            &close_bars,
        ),
        tables: vec![Table {
            caption: "Time to close".into(),
            head: vec!["rating", "closed", "median days", "90th percentile", "deadline days"],
            rows: r
                .time_to_close
                .iter()
                .map(|c| {
                    vec![
                        t(c.rating.as_str()),
                        n(c.closed),
                        n(days(c.median_days)),
                        n(days(c.p90_days)),
                        n(c.deadline_days.map_or_else(|| "–".to_owned(), |d| d.to_string())),
                    ]
                })
                .collect(),
        }],
        page_break: technical,
        open_tables: technical,
    });

    // Resources.
    let res = &r.resources;
    let res_bars = vec![
        Bar {
            label: "planned cost".into(),
            value: res.planned_cost,
            fill: Fill::Shade(1),
            text: money(res.planned_cost),
            mark: None,
        },
        Bar {
            label: "actual cost".into(),
            value: res.actual_cost,
            fill: Fill::Shade(0),
            text: money(res.actual_cost),
            mark: None,
        },
        Bar {
            label: "funded (estimated)".into(),
            value: res.funded.estimated_cost,
            fill: Fill::Shade(2),
            text: money(res.funded.estimated_cost),
            mark: None,
        },
        Bar {
            label: "unfunded (estimated)".into(),
            value: res.unfunded.estimated_cost,
            fill: Fill::Hatch,
            text: money(res.unfunded.estimated_cost),
            mark: None,
        },
    ];
    sections.push(Section {
        id: "resources",
        title: "Resources".into(),
        intro: format!(
            "Planned {} hours. Funded items: {}; unfunded: {}; not stated: {}.",
            days(Some(res.planned_hours)),
            res.funded.items,
            res.unfunded.items,
            res.funding_unknown.items
        ),
        chart: svg::bars(
            "c-res",
            "Planned against actual cost, funded against unfunded",
            "Horizontal bars: planned and actual cost, then the estimated cost of funded and unfunded items.",
            &res_bars,
        ),
        tables: vec![Table {
            caption: "Resources".into(),
            head: vec!["", "items", "amount"],
            rows: vec![
                vec![t("planned cost"), n(""), n(money(res.planned_cost))],
                vec![t("planned hours"), n(""), n(days(Some(res.planned_hours)))],
                vec![t("actual cost"), n(""), n(money(res.actual_cost))],
                vec![
                    t("funded"),
                    n(res.funded.items),
                    n(money(res.funded.estimated_cost)),
                ],
                vec![
                    t("unfunded"),
                    n(res.unfunded.items),
                    n(money(res.unfunded.estimated_cost)),
                ],
                vec![
                    t("funding not stated"),
                    n(res.funding_unknown.items),
                    n(money(res.funding_unknown.estimated_cost)),
                ],
            ],
        }],
        page_break: technical,
        open_tables: technical,
    });

    // Roadmap.
    let tasks: Vec<Task> = r
        .roadmap
        .rows
        .iter()
        .map(|row| Task {
            label: format!(
                "{} · {}",
                row.display_id,
                row.owner.as_deref().unwrap_or("unassigned")
            ),
            detail: format!("{} (due {})", row.milestone, row.due_on),
            rating: row.risk_rating,
            start: row.start,
            end: row.due_on,
            overdue: row.overdue,
        })
        .collect();
    sections.push(Section {
        id: "roadmap",
        title: "Remediation roadmap (next 90 days)".into(),
        intro: if r.roadmap.truncated > 0 {
            format!(
                "Open milestones due by {}, by owner; {} more not shown.",
                r.roadmap.to, r.roadmap.truncated
            )
        } else {
            format!("Open milestones due by {}, by owner; overdue ones pinned at the left, hatched.", r.roadmap.to)
        },
        chart: svg::gantt(
            "c-road",
            "Remediation roadmap",
            "Timeline: one bar per open milestone from the previous milestone (or today) to its due date; overdue milestones hatched.",
            r.roadmap.from,
            r.roadmap.to,
            &tasks,
        ),
        tables: vec![Table {
            caption: "Roadmap".into(),
            head: vec!["item", "owner", "milestone", "due", "state"],
            rows: r
                .roadmap
                .rows
                .iter()
                .map(|row| {
                    vec![
                        t(&row.display_id),
                        t(row.owner.clone().unwrap_or_default()),
                        t(&row.milestone),
                        t(row.due_on.to_string()),
                        t(if row.overdue { "overdue" } else { "planned" }),
                    ]
                })
                .collect(),
        }],
        page_break: true,
        open_tables: technical,
    });

    // Attention.
    sections.push(Section {
        id: "attention",
        title: "Needs attention".into(),
        intro: "The most urgent first, as the attention list answers.".into(),
        chart: String::new(),
        tables: vec![Table {
            caption: "Needs attention".into(),
            head: vec!["item", "reason", "rating", "date", "detail"],
            rows: r
                .attention
                .iter()
                .map(|a| {
                    vec![
                        t(&a.display_id),
                        t(a.reason.as_str()),
                        t(a.risk_rating.as_str()),
                        t(a.due_on.map(|d| d.to_string()).unwrap_or_default()),
                        t(&a.detail),
                    ]
                })
                .collect(),
        }],
        page_break: technical,
        open_tables: true,
    });

    let items = r
        .items
        .iter()
        .map(|p| {
            let i = &p.item;
            ItemView {
                heading: format!("{} — {}", i.display_id, i.title),
                meta: format!(
                    "{} · {} · {}{} · detected {} ({} days) · scheduled {} · {} evidence file(s)",
                    i.risk_rating,
                    i.status,
                    i.owner.as_deref().unwrap_or("unassigned"),
                    if i.overdue { " · OVERDUE" } else { "" },
                    i.detected_on,
                    i.age_days,
                    i.scheduled_completion
                        .map_or_else(|| "none".to_owned(), |d| d.to_string()),
                    p.evidence
                ),
                plan: if technical {
                    p.remediation_plan.clone().unwrap_or_default()
                } else {
                    String::new()
                },
                milestones: Table {
                    caption: "Milestones".into(),
                    head: vec!["milestone", "due", "status", "moves"],
                    rows: if technical {
                        p.milestones
                            .iter()
                            .map(|m| {
                                vec![
                                    t(&m.title),
                                    t(format!(
                                        "{}{}",
                                        m.due_on,
                                        if m.overdue { " (overdue)" } else { "" }
                                    )),
                                    t(&m.status),
                                    n(m.moves),
                                ]
                            })
                            .collect()
                    } else {
                        Vec::new()
                    },
                },
            }
        })
        .collect();

    Page {
        title: format!("{level} POA&M report — {scope_name}"),
        subtitle: format!(
            "Period {} to {} · generated {} · {}",
            r.period.from,
            r.period.to,
            r.generated_on,
            r.systems
                .iter()
                .map(|s| format!("{} ({})", s.name, s.regime))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        weights_note: format!(
            "Weighted risk: critical {}, high {}, moderate {}, low {} per item.",
            r.weights.critical, r.weights.high, r.weights.moderate, r.weights.low
        ),
        cards,
        headline_notes,
        sections,
        items_title: if technical {
            "Open items".into()
        } else {
            "Top ten items".into()
        },
        items_note: if r.items_not_listed > 0 {
            format!("{} more open items not listed.", r.items_not_listed)
        } else {
            String::new()
        },
        items,
        footer:
            "Self-contained report: no script, no external resource. Print to PDF from the browser."
                .into(),
    }
}
