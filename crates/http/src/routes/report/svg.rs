//! The report's charts as plain, self-contained SVG: no script, no external reference, fonts
//! left to the viewer. Risk ratings are told apart by pattern and label as well as hue, so a
//! greyscale print still reads; every chart has a `<title>` and a `<desc>`, and every text
//! written here is escaped (titles and owners are user input).

use chrono::NaiveDate;
use poam_domain::report::ByRating;
use poam_domain::RiskRating;
use std::fmt::Write;

const WIDTH: f64 = 720.0;
const LABEL: f64 = 170.0;
const RIGHT: f64 = 130.0;

/// Escapes text for SVG/HTML content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// Shortens a label to `n` characters (an ellipsis marks the cut).
fn short(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(n.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// How a bar is filled.
#[derive(Debug, Clone, Copy)]
pub enum Fill {
    Rating(RiskRating),
    /// A plain shade, 0 (dark) to 3 (light).
    Shade(u8),
    /// Hatched, for "not done" or "unfunded".
    Hatch,
}

fn fill(id: &str, f: Fill) -> String {
    match f {
        Fill::Rating(r) => format!("url(#{id}-{r})"),
        Fill::Shade(0) => "#1f3b57".to_owned(),
        Fill::Shade(1) => "#4f7396".to_owned(),
        Fill::Shade(2) => "#8fb0cc".to_owned(),
        Fill::Shade(_) => "#c9d9e6".to_owned(),
        Fill::Hatch => format!("url(#{id}-hatch)"),
    }
}

/// Pattern definitions for a chart: critical solid dark red, high dense diagonal hatch on
/// orange, moderate dots on yellow, low light blue with sparse lines; a generic hatch.
fn defs(id: &str) -> String {
    format!(
        r##"<defs><pattern id="{id}-critical" width="6" height="6" patternUnits="userSpaceOnUse"><rect width="6" height="6" fill="#7a0d0d"/><path d="M0 3h6" stroke="#000" stroke-width="1"/></pattern><pattern id="{id}-high" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="6" height="6" fill="#e06b1f"/><rect width="3" height="6" fill="#7a3408"/></pattern><pattern id="{id}-moderate" width="6" height="6" patternUnits="userSpaceOnUse"><rect width="6" height="6" fill="#f2c94c"/><circle cx="3" cy="3" r="1.4" fill="#5c4a0c"/></pattern><pattern id="{id}-low" width="8" height="8" patternUnits="userSpaceOnUse"><rect width="8" height="8" fill="#cfe3f2"/><path d="M0 8L8 0" stroke="#5a7d99" stroke-width="0.8"/></pattern><pattern id="{id}-hatch" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(-45)"><rect width="6" height="6" fill="#fff"/><rect width="2" height="6" fill="#555"/></pattern></defs>"##
    )
}

fn open(id: &str, height: f64, title: &str, desc: &str) -> String {
    format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" aria-labelledby="{id}-t {id}-d" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" font-family="sans-serif" font-size="12"><title id="{id}-t">{}</title><desc id="{id}-d">{}</desc>{}"#,
        esc(title),
        esc(desc),
        defs(id)
    )
}

fn number(x: f64) -> String {
    if (x - x.round()).abs() < 1e-9 {
        format!("{x:.0}")
    } else {
        format!("{x:.1}")
    }
}

/// One horizontal bar.
#[derive(Debug, Clone)]
pub struct Bar {
    pub label: String,
    pub value: f64,
    pub fill: Fill,
    /// The text written after the bar (the value, with its unit).
    pub text: String,
    /// A reference mark on the same scale (a deadline), drawn as a dashed tick.
    pub mark: Option<f64>,
}

/// Horizontal bars, one per row, on one scale from zero.
pub fn bars(id: &str, title: &str, desc: &str, rows: &[Bar]) -> String {
    let row_h = 22.0;
    let height = 10.0 + row_h * rows.len().max(1) as f64 + 10.0;
    let max = rows
        .iter()
        .flat_map(|b| [b.value, b.mark.unwrap_or(0.0)])
        .filter(|v| v.is_finite())
        .fold(0.0_f64, f64::max)
        .max(1.0);
    let span = WIDTH - LABEL - RIGHT;
    let mut s = open(id, height, title, desc);
    let _ = write!(
        s,
        r##"<line x1="{LABEL}" y1="5" x2="{LABEL}" y2="{}" stroke="#333"/>"##,
        height - 5.0
    );
    if rows.is_empty() {
        let _ = write!(
            s,
            r##"<text x="{}" y="25" fill="#333">No data</text>"##,
            LABEL + 8.0
        );
    }
    for (i, b) in rows.iter().enumerate() {
        let y = 10.0 + row_h * i as f64;
        let v = if b.value.is_finite() {
            b.value.max(0.0)
        } else {
            0.0
        };
        let w = span * v / max;
        let _ = write!(
            s,
            r##"<text x="{}" y="{}" text-anchor="end" fill="#111">{}</text><rect x="{LABEL}" y="{}" width="{w:.1}" height="{}" fill="{}" stroke="#222" stroke-width="0.6"><title>{}: {}</title></rect><text x="{:.1}" y="{}" fill="#111">{}</text>"##,
            LABEL - 6.0,
            y + 15.0,
            esc(&short(&b.label, 26)),
            y + 3.0,
            row_h - 6.0,
            fill(id, b.fill),
            esc(&b.label),
            esc(&b.text),
            LABEL + w + 4.0,
            y + 15.0,
            esc(&b.text),
        );
        if let Some(m) = b.mark.filter(|m| m.is_finite()) {
            let x = LABEL + span * m.max(0.0) / max;
            let _ = write!(
                s,
                r##"<line x1="{x:.1}" y1="{}" x2="{x:.1}" y2="{}" stroke="#000" stroke-width="2" stroke-dasharray="3 2"><title>deadline {} days</title></line>"##,
                y,
                y + row_h,
                number(m)
            );
        }
    }
    s.push_str("</svg>");
    s
}

/// Horizontal bars stacked by risk rating, with a legend.
pub fn stacked(id: &str, title: &str, desc: &str, rows: &[(String, ByRating)]) -> String {
    let row_h = 24.0;
    let legend = 26.0;
    let height = legend + row_h * rows.len().max(1) as f64 + 10.0;
    let max = rows
        .iter()
        .map(|(_, b)| b.total())
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let span = WIDTH - LABEL - RIGHT;
    let mut s = open(id, height, title, desc);
    legend_row(&mut s, id);
    for (i, (label, b)) in rows.iter().enumerate() {
        let y = legend + row_h * i as f64;
        let _ = write!(
            s,
            r##"<text x="{}" y="{}" text-anchor="end" fill="#111">{}</text>"##,
            LABEL - 6.0,
            y + 16.0,
            esc(label)
        );
        let mut x = LABEL;
        for r in RiskRating::ALL {
            let n = b.get(*r);
            if n <= 0 {
                continue;
            }
            let w = span * n as f64 / max;
            let _ = write!(
                s,
                r##"<rect x="{x:.1}" y="{}" width="{w:.1}" height="{}" fill="url(#{id}-{r})" stroke="#222" stroke-width="0.6"><title>{}, {r}: {n}</title></rect>"##,
                y + 3.0,
                row_h - 6.0,
                esc(label)
            );
            x += w;
        }
        let _ = write!(
            s,
            r##"<text x="{:.1}" y="{}" fill="#111">{}</text>"##,
            x + 4.0,
            y + 16.0,
            b.total()
        );
    }
    s.push_str("</svg>");
    s
}

fn legend_row(s: &mut String, id: &str) {
    let mut x = LABEL;
    for r in RiskRating::ALL {
        let _ = write!(
            s,
            r##"<rect x="{x}" y="5" width="14" height="14" fill="url(#{id}-{r})" stroke="#222" stroke-width="0.6"/><text x="{}" y="16" fill="#111">{r}</text>"##,
            x + 18.0
        );
        x += 95.0;
    }
}

/// One line of a line chart.
#[derive(Debug, Clone)]
pub struct Series {
    pub name: String,
    pub values: Vec<i64>,
    /// `stroke-dasharray` ("" for solid): lines differ by dash, not only by colour.
    pub dash: &'static str,
    pub colour: &'static str,
}

/// Lines over dates, on one scale from zero, with a legend.
pub fn lines(id: &str, title: &str, desc: &str, dates: &[NaiveDate], series: &[Series]) -> String {
    let (left, top, bottom, right) = (50.0, 30.0, 30.0, 20.0);
    let height = 260.0;
    let plot_w = WIDTH - left - right;
    let plot_h = height - top - bottom;
    let max = series
        .iter()
        .flat_map(|s| s.values.iter().copied())
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let mut s = open(id, height, title, desc);
    // Axes and a few gridlines.
    for k in 0..=4 {
        let v = max * f64::from(k) / 4.0;
        let y = top + plot_h - plot_h * f64::from(k) / 4.0;
        let _ = write!(
            s,
            r##"<line x1="{left}" y1="{y:.1}" x2="{}" y2="{y:.1}" stroke="#ccc"/><text x="{}" y="{:.1}" text-anchor="end" fill="#333">{}</text>"##,
            left + plot_w,
            left - 4.0,
            y + 4.0,
            number(v.round())
        );
    }
    let n = dates.len();
    let x_of = |i: usize| {
        if n <= 1 {
            left + plot_w / 2.0
        } else {
            left + plot_w * i as f64 / (n - 1) as f64
        }
    };
    if let (Some(first), Some(last)) = (dates.first(), dates.last()) {
        let _ = write!(
            s,
            r##"<text x="{left}" y="{}" fill="#333">{first}</text><text x="{}" y="{}" text-anchor="end" fill="#333">{last}</text>"##,
            height - 8.0,
            left + plot_w,
            height - 8.0
        );
    } else {
        let _ = write!(
            s,
            r##"<text x="{}" y="{}" fill="#333">No data</text>"##,
            left + 10.0,
            top + 20.0
        );
    }
    let mut lx = left;
    for line in series {
        let points: Vec<String> = line
            .values
            .iter()
            .enumerate()
            .map(|(i, v)| {
                format!(
                    "{:.1},{:.1}",
                    x_of(i),
                    top + plot_h - plot_h * (*v as f64) / max
                )
            })
            .collect();
        let _ = write!(
            s,
            r##"<polyline points="{}" fill="none" stroke="{}" stroke-width="2.2" stroke-dasharray="{}"><title>{}</title></polyline><line x1="{lx}" y1="12" x2="{}" y2="12" stroke="{}" stroke-width="2.2" stroke-dasharray="{}"/><text x="{}" y="16" fill="#111">{}</text>"##,
            points.join(" "),
            line.colour,
            line.dash,
            esc(&line.name),
            lx + 28.0,
            line.colour,
            line.dash,
            lx + 32.0,
            esc(&line.name)
        );
        lx += 32.0 + 8.0 * line.name.chars().count() as f64 + 20.0;
    }
    s.push_str("</svg>");
    s
}

/// One bar of the timeline.
#[derive(Debug, Clone)]
pub struct Task {
    pub label: String,
    pub detail: String,
    pub rating: RiskRating,
    pub start: NaiveDate,
    pub end: NaiveDate,
    pub overdue: bool,
}

/// A Gantt-like timeline from `from` to `to`: one row per task, weekly gridlines, today's line;
/// overdue tasks pinned at the left edge, hatched and labelled "overdue".
pub fn gantt(
    id: &str,
    title: &str,
    desc: &str,
    from: NaiveDate,
    to: NaiveDate,
    tasks: &[Task],
) -> String {
    let (left, top, right) = (230.0, 24.0, 20.0);
    let row_h = 20.0;
    let height = top + row_h * tasks.len().max(1) as f64 + 10.0;
    let days = (to - from).num_days().max(1) as f64;
    let plot_w = WIDTH - left - right;
    let x_of = |d: NaiveDate| {
        let k = ((d - from).num_days() as f64).clamp(0.0, days);
        left + plot_w * k / days
    };
    let mut s = open(id, height, title, desc);
    let mut d = from;
    let mut week = 0;
    while d <= to {
        let x = x_of(d);
        let _ = write!(
            s,
            r##"<line x1="{x:.1}" y1="{}" x2="{x:.1}" y2="{height}" stroke="#ddd"/>"##,
            top - 4.0
        );
        if week % 2 == 0 {
            let _ = write!(
                s,
                r##"<text x="{x:.1}" y="14" fill="#333" font-size="10">{}</text>"##,
                d.format("%m-%d")
            );
        }
        week += 1;
        match d.checked_add_days(chrono::Days::new(7)) {
            Some(n) => d = n,
            None => break,
        }
    }
    if tasks.is_empty() {
        let _ = write!(
            s,
            r##"<text x="{}" y="{}" fill="#333">No open milestone in the next 90 days</text>"##,
            left + 8.0,
            top + 14.0
        );
    }
    for (i, t) in tasks.iter().enumerate() {
        let y = top + row_h * i as f64;
        let _ = write!(
            s,
            r##"<text x="{}" y="{}" text-anchor="end" fill="#111" font-size="11">{}</text>"##,
            left - 6.0,
            y + 14.0,
            esc(&short(&t.label, 34))
        );
        let tip = format!("{}: {}", t.label, t.detail);
        if t.overdue {
            let _ = write!(
                s,
                r##"<rect x="{left}" y="{}" width="60" height="{}" fill="url(#{id}-hatch)" stroke="#000" stroke-width="1.2"><title>{}</title></rect><text x="{}" y="{}" fill="#000" font-weight="bold" font-size="11">overdue since {}</text>"##,
                y + 3.0,
                row_h - 6.0,
                esc(&tip),
                left + 64.0,
                y + 14.0,
                t.end
            );
        } else {
            let x1 = x_of(t.start);
            let x2 = x_of(t.end).max(x1 + 3.0);
            let _ = write!(
                s,
                r##"<rect x="{x1:.1}" y="{}" width="{:.1}" height="{}" fill="url(#{id}-{})" stroke="#222" stroke-width="0.6"><title>{}</title></rect><path d="M{x2:.1} {} l4 6 l-4 6 l-4 -6 z" fill="#000"/>"##,
                y + 3.0,
                x2 - x1,
                row_h - 6.0,
                t.rating,
                esc(&tip),
                y + 4.0
            );
        }
    }
    let x = x_of(from);
    let _ = write!(
        s,
        r##"<line x1="{x:.1}" y1="{}" x2="{x:.1}" y2="{height}" stroke="#000" stroke-width="1.5"/>"##,
        top - 6.0
    );
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_in_every_chart() {
        let evil = "<script>alert(1)</script>";
        let b = bars(
            "x",
            evil,
            evil,
            &[Bar {
                label: evil.into(),
                value: f64::NAN,
                fill: Fill::Hatch,
                text: evil.into(),
                mark: Some(f64::INFINITY),
            }],
        );
        assert!(!b.contains("<script>"), "{b}");
        let day = NaiveDate::MIN;
        let g = gantt(
            "g",
            "t",
            "d",
            day,
            day,
            &[Task {
                label: evil.into(),
                detail: evil.into(),
                rating: RiskRating::High,
                start: day,
                end: day,
                overdue: true,
            }],
        );
        assert!(!g.contains("<script>"), "{g}");
        let l = lines("l", evil, evil, &[], &[]);
        assert!(l.contains("No data") && !l.contains("<script>"));
    }
}
