//! FedRAMP 2026 reports of a system's items: the vulnerability detail report (VER-RPT-VDT),
//! the accepted vulnerability info (VER-RPT-AVI), the historical activity (VER-TFR-MRH), in
//! the shapes of FedRAMP's 2026-06-24 JSON schemas, and the human-readable monthly report
//! (VER-TFR-MHR) as a printable HTML page. Pure: the caller brings the items and the moment.
//!
//! VER-RPT-NID: the reports carry only what the schemas ask, the rating history the rules ask
//! (as the schemas' `painReductionEvent`), and text a person wrote for the purpose
//! (`report_description`, `supplementary_information`, an acceptance's rationale). The item's
//! internal description is copied only when its `disclose_description` says so.

use crate::item::Item;
use crate::vdr::{self, Evaluation, Mitigation, NRating, Regime, State, Status};
use chrono::{DateTime, NaiveTime, SecondsFormat, Utc};
use serde_json::{json, Map, Value};

/// What the description is replaced by when the item has none written for reports.
pub const WITHHELD: &str =
    "Description withheld under VER-RPT-NID; see the supplementary information.";

/// An item under the system's 2026 regime, with its standing at the report's moment.
pub struct Entry<'a> {
    pub item: &'a Item,
    pub status: Status,
}

/// The standing of each item at `now` under `regime`, computed afresh from the tables (so a
/// report never depends on when an item was last written). Archived items are the caller's
/// to leave out.
pub fn entries<'a>(regime: &Regime, items: &'a [Item], now: DateTime<Utc>) -> Vec<Entry<'a>> {
    items
        .iter()
        .map(|item| {
            let schedule = vdr::schedule(
                &vdr::FEDRAMP_2026,
                regime,
                item.evaluation.as_ref(),
                item.detected_on,
            );
            let status = vdr::status(regime.class, &schedule, item.evaluation.as_ref(), now);
            Entry { item, status }
        })
        .collect()
}

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// When the item was detected, and by what.
fn detection(item: &Item) -> (DateTime<Utc>, String) {
    match &item.evaluation {
        Some(e) => (e.detected_at, e.detection_source.clone()),
        None => (
            item.detected_on.and_time(NaiveTime::MIN).and_utc(),
            item.source
                .detector
                .clone()
                .unwrap_or_else(|| item.source.kind.to_string()),
        ),
    }
}

/// The description a report may carry (VER-RPT-NID).
pub fn report_description(item: &Item) -> String {
    let e = item.evaluation.as_ref();
    e.and_then(|e| e.report_description.clone())
        .or_else(|| {
            e.filter(|e| e.disclose_description)
                .map(|_| item.description.clone())
        })
        .unwrap_or_else(|| WITHHELD.to_owned())
}

/// One `vulnerabilityDetail` (common definitions), with the rating history the rules ask
/// (VER-RPT-VDT items 6 and 7) as `painReductionEvents` of the schemas' `painReductionEvent`.
pub fn vulnerability_detail(entry: &Entry) -> Value {
    let item = entry.item;
    let (detected_at, source) = detection(item);
    let mut v = Map::new();
    v.insert("providerTrackingId".into(), json!(item.display_id));
    v.insert(
        "detection".into(),
        json!({"detectedAt": ts(detected_at), "detectionSource": source}),
    );
    v.insert(
        "vulnerabilityDescription".into(),
        json!(report_description(item)),
    );
    let e: Option<&Evaluation> = item.evaluation.as_ref();
    if let Some(e) = e {
        if let Some(at) = e.evaluated_at {
            v.insert("evaluationCompletedAt".into(), json!(ts(at)));
        }
        if let Some(b) = e.internet_reachable {
            v.insert("isInternetReachable".into(), json!(b));
        }
        if let Some(b) = e.likely_exploitable {
            v.insert("isLikelyExploitable".into(), json!(b));
        }
        if let Some(r) = e.agency_impact {
            v.insert("currentRating".into(), json!(r.value()));
        }
        if !e.reductions.is_empty() {
            v.insert(
                "painReductionEvents".into(),
                Value::Array(
                    e.reductions
                        .iter()
                        .map(|r| json!({"reducedAt": ts(r.at), "rating": r.to.value()}))
                        .collect(),
                ),
            );
            v.insert(
                "historicalRatings".into(),
                json!(e
                    .rating_history()
                    .iter()
                    .map(|r| r.value())
                    .collect::<Vec<_>>()),
            );
        }
        if let Some(next) = e.next_reduction.as_ref().filter(|_| !e.is_resolved()) {
            v.insert(
                "projectedNextReduction".into(),
                json!({"estimatedAt": ts(next.at), "targetRating": next.target.value()}),
            );
        }
        if let Some(s) = &e.supplementary_information {
            v.insert("supplementaryRiskInformation".into(), json!(s));
        }
        if let Some(d) = vdr::final_disposition(e) {
            v.insert("finalDisposition".into(), json!(d));
        } else if e.mitigation == Mitigation::Partial && !item.status.is_active() {
            v.insert("finalDisposition".into(), json!("Partially Mitigated"));
        }
    }
    let mut overdue = Map::new();
    overdue.insert("isOverdue".into(), json!(entry.status.overdue));
    if let Some(x) = &entry.status.overdue_explanation {
        overdue.insert("explanation".into(), json!(x));
    }
    v.insert("overdueStatus".into(), Value::Object(overdue));
    Value::Object(v)
}

/// One `acceptedVulnerabilityInfo`.
pub fn accepted_info(entry: &Entry) -> Value {
    json!({
        "vulnerabilityDetail": vulnerability_detail(entry),
        "acceptanceRationale": entry.status.accepted_explanation.clone().unwrap_or_default(),
    })
}

/// The report's period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

impl Period {
    fn json(&self) -> Value {
        json!({"from": ts(self.from), "to": ts(self.to)})
    }

    fn contains(&self, t: DateTime<Utc>) -> bool {
        self.from <= t && t <= self.to
    }
}

/// Activity in the period: detected, evaluated, reduced, mitigated or changed in it; or still
/// open at its end (an open vulnerability is reported every period).
fn active_in(entry: &Entry, period: &Period) -> bool {
    let item = entry.item;
    let (detected_at, _) = detection(item);
    if detected_at > period.to {
        return false;
    }
    let open = !matches!(
        entry.status.state,
        State::FullyMitigated | State::Remediated | State::FalsePositive
    ) && item.status.is_active();
    open || period.contains(item.updated_at)
}

/// The vulnerability detail report (VER-RPT-VDT): non-accepted vulnerabilities with activity
/// in the period.
pub fn vdt(package_uri: &str, period: &Period, entries: &[Entry]) -> Value {
    json!({
        "certificationPackageOverviewUri": package_uri,
        "reportPeriod": period.json(),
        "vulnerabilities": entries
            .iter()
            .filter(|e| !e.status.accepted && active_in(e, period))
            .map(vulnerability_detail)
            .collect::<Vec<_>>(),
    })
}

/// The accepted vulnerability info (VER-RPT-AVI): accepted vulnerabilities with activity in
/// the period.
pub fn avi(package_uri: &str, period: &Period, entries: &[Entry]) -> Value {
    json!({
        "certificationPackageOverviewUri": package_uri,
        "reportPeriod": period.json(),
        "acceptedVulnerabilities": entries
            .iter()
            .filter(|e| e.status.accepted && active_in(e, period))
            .map(accepted_info)
            .collect::<Vec<_>>(),
    })
}

/// The historical VER activity (VER-TFR-MRH): every vulnerability, active and accepted, changed
/// since `since` (all without it).
pub fn history(
    package_uri: &str,
    generated_at: DateTime<Utc>,
    since: Option<DateTime<Utc>>,
    entries: &[Entry],
) -> Value {
    let recent = |e: &&Entry| since.is_none_or(|s| e.item.updated_at >= s);
    json!({
        "certificationPackageOverviewUri": package_uri,
        "generatedAt": ts(generated_at),
        "since": since.map(ts),
        "activeVulnerabilities": entries
            .iter()
            .filter(|e| !e.status.accepted)
            .filter(recent)
            .map(vulnerability_detail)
            .collect::<Vec<_>>(),
        "acceptedVulnerabilities": entries
            .iter()
            .filter(|e| e.status.accepted)
            .filter(recent)
            .map(accepted_info)
            .collect::<Vec<_>>(),
    })
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn state_word(s: State) -> &'static str {
    match s {
        State::Detected => "detected",
        State::Evaluated => "evaluated",
        State::PartiallyMitigated => "partially mitigated",
        State::FullyMitigated => "fully mitigated",
        State::Remediated => "remediated",
        State::FalsePositive => "false positive",
        State::Accepted => "accepted",
    }
}

const STATES: [State; 7] = [
    State::Detected,
    State::Evaluated,
    State::PartiallyMitigated,
    State::FullyMitigated,
    State::Remediated,
    State::FalsePositive,
    State::Accepted,
];

fn rows<'a>(
    entries: impl Iterator<Item = &'a Entry<'a>>,
    cell: impl Fn(&Entry) -> String,
) -> String {
    let body: String = entries
        .map(|e| {
            format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>\n",
                esc(&e.item.display_id),
                esc(&report_description(e.item)),
                esc(&cell(e))
            )
        })
        .collect();
    if body.is_empty() {
        "<tr><td colspan=\"3\">None.</td></tr>\n".to_owned()
    } else {
        body
    }
}

fn section(title: &str, head: &str, body: String) -> String {
    format!(
        "<h2>{}</h2>\n<table>\n<tr><th>Tracking id</th><th>Description</th><th>{}</th></tr>\n{body}</table>\n",
        esc(title),
        esc(head)
    )
}

/// The human-readable monthly report (VER-TFR-MHR): counts by N-rating and state, and what
/// was detected, evaluated, reduced, overdue and accepted in the period. A printable page.
pub fn monthly_html(
    system_name: &str,
    class: vdr::FedrampClass,
    period: &Period,
    entries: &[Entry],
) -> String {
    let rating_of = |e: &Entry| e.item.evaluation.as_ref().and_then(|x| x.agency_impact);
    let mut counts = String::new();
    for r in NRating::ALL.into_iter().rev().map(Some).chain([None]) {
        let label = r.map_or("not rated".to_owned(), |r| r.to_string());
        let cells: String = STATES
            .iter()
            .map(|s| {
                let n = entries
                    .iter()
                    .filter(|e| rating_of(e) == r && e.status.state == *s)
                    .count();
                format!("<td>{n}</td>")
            })
            .collect();
        counts.push_str(&format!("<tr><th>{label}</th>{cells}</tr>\n"));
    }
    let header: String = STATES
        .iter()
        .map(|s| format!("<th>{}</th>", state_word(*s)))
        .collect();
    let detected = rows(
        entries
            .iter()
            .filter(|e| period.contains(detection(e.item).0)),
        |e| {
            let (at, source) = detection(e.item);
            format!("{} by {source}", ts(at))
        },
    );
    let evaluated = rows(
        entries.iter().filter(|e| {
            e.item
                .evaluation
                .as_ref()
                .and_then(|x| x.evaluated_at)
                .is_some_and(|t| period.contains(t))
        }),
        |e| {
            let x = e.item.evaluation.as_ref();
            let yn = |b: Option<bool>| match b {
                Some(true) => "yes",
                Some(false) => "no",
                None => "?",
            };
            format!(
                "{}; internet-reachable {}, likely exploitable {}",
                x.and_then(|x| x.agency_impact)
                    .map_or("—".into(), |r| r.to_string()),
                yn(x.and_then(|x| x.internet_reachable)),
                yn(x.and_then(|x| x.likely_exploitable)),
            )
        },
    );
    let reduced = rows(
        entries.iter().filter(|e| {
            e.item
                .evaluation
                .as_ref()
                .is_some_and(|x| x.reductions.iter().any(|r| period.contains(r.at)))
        }),
        |e| {
            e.item
                .evaluation
                .as_ref()
                .map(|x| {
                    x.reductions
                        .iter()
                        .filter(|r| period.contains(r.at))
                        .map(|r| format!("{} → {} on {}", r.from, r.to, ts(r.at)))
                        .collect::<Vec<_>>()
                        .join("; ")
                })
                .unwrap_or_default()
        },
    );
    let overdue = rows(entries.iter().filter(|e| e.status.overdue), |e| {
        e.status.overdue_explanation.clone().unwrap_or_default()
    });
    let accepted = rows(entries.iter().filter(|e| e.status.accepted), |e| {
        e.status.accepted_explanation.clone().unwrap_or_default()
    });
    let incidents = rows(
        entries
            .iter()
            .filter(|e| e.status.reportable_incident.is_some()),
        |e| e.status.reportable_incident.clone().unwrap_or_default(),
    );
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>Vulnerability detection and response: {name}, {from} to {to}</title>\n<style>\nbody {{ font-family: sans-serif; margin: 2em; }}\ntable {{ border-collapse: collapse; margin-bottom: 1.5em; }}\nth, td {{ border: 1px solid #999; padding: 0.3em 0.6em; text-align: left; vertical-align: top; }}\n@media print {{ body {{ margin: 0; }} h2 {{ page-break-after: avoid; }} table {{ page-break-inside: auto; }} }}\n</style>\n</head>\n<body>\n<h1>Vulnerability detection and response report</h1>\n<p>System: {name}. FedRAMP Class {class}. Period: {from} to {to} (VER-TFR-MHR, VER-RPT-PER).</p>\n<h2>Vulnerabilities by N-rating and state</h2>\n<table>\n<tr><th>N-rating</th>{header}</tr>\n{counts}</table>\n{s1}{s2}{s3}{s4}{s5}{s6}</body>\n</html>\n",
        name = esc(system_name),
        from = ts(period.from),
        to = ts(period.to),
        s1 = section("Detected", "Detected", detected),
        s2 = section("Evaluated", "Evaluation", evaluated),
        s3 = section("N-rating reductions", "Reductions", reduced),
        s4 = section("Overdue (FRD-ODV)", "Explanation", overdue),
        s5 = section("Accepted (FRD-ACV)", "Explanation", accepted),
        s6 = section("Reportable incidents (VER-TFR-IRI, VER-TFR-NRI)", "Rule", incidents),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{ItemId, SystemId};
    use crate::item::ItemMeta;
    use crate::vdr::{Clock, FedrampClass};

    fn item(display: &str, evaluation: Value, description: &str) -> Item {
        let f = serde_json::from_value(json!({
            "title": "t", "description": description, "risk_rating": "high",
            "detected_on": "2026-11-01", "source": {"kind": "scan"},
            "evaluation": evaluation
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        let at: DateTime<Utc> = "2026-11-10T00:00:00Z".parse().unwrap_or_default();
        Item::assemble(
            ItemMeta {
                id: ItemId::from_uuid(uuid::Uuid::nil()),
                display_id: display.into(),
                system_id: SystemId::from_uuid(uuid::Uuid::nil()),
                deadline_rule: None,
                version: 1,
                created_at: at,
                updated_at: at,
                archived_at: None,
                archive_reason: None,
            },
            f,
            at.date_naive(),
        )
    }

    #[test]
    fn reports_split_accepted_from_the_rest_and_withhold_internal_text() {
        let regime = Regime {
            class: FedrampClass::C,
            since: "2026-07-04".parse().unwrap_or_default(),
            clock: Clock::FromReduction,
        };
        let items = vec![
            item(
                "POAM-0001",
                json!({"detected_at": "2026-11-01T00:00:00Z", "detection_source": "scanner",
                  "evaluated_at": "2026-11-02T00:00:00Z", "internet_reachable": true,
                  "likely_exploitable": true, "agency_impact": "N4"}),
                "secret internal detail",
            ),
            item(
                "POAM-0002",
                json!({"detected_at": "2026-11-01T00:00:00Z", "detection_source": "pentest",
                  "evaluated_at": "2026-11-02T00:00:00Z", "internet_reachable": false,
                  "likely_exploitable": false, "agency_impact": "N2",
                  "accepted": {"rationale": "end of life"},
                  "report_description": "Outdated appliance firmware"}),
                "secret",
            ),
        ];
        let now: DateTime<Utc> = "2026-11-20T00:00:00Z".parse().unwrap_or_default();
        let entries = entries(&regime, &items, now);
        let period = Period {
            from: "2026-11-01T00:00:00Z".parse().unwrap_or_default(),
            to: now,
        };
        let vdt = vdt("https://example.org/p", &period, &entries);
        let v = &vdt["vulnerabilities"];
        assert_eq!(v.as_array().map(Vec::len), Some(1));
        assert_eq!(v[0]["providerTrackingId"], "POAM-0001");
        assert_eq!(v[0]["vulnerabilityDescription"], WITHHELD);
        assert_eq!(v[0]["overdueStatus"]["isOverdue"], true);
        assert!(!vdt.to_string().contains("secret"));
        let avi = avi("https://example.org/p", &period, &entries);
        let a = &avi["acceptedVulnerabilities"];
        assert_eq!(a.as_array().map(Vec::len), Some(1));
        assert_eq!(
            a[0]["vulnerabilityDetail"]["vulnerabilityDescription"],
            "Outdated appliance firmware"
        );
        assert!(a[0]["acceptanceRationale"]
            .as_str()
            .is_some_and(|s| s.contains("end of life")));
        let html = monthly_html("Payroll <prod>", FedrampClass::C, &period, &entries);
        assert!(html.contains("Payroll &lt;prod&gt;") && !html.contains("secret"));
        assert!(html.contains("Overdue (FRD-ODV)"));
    }
}
