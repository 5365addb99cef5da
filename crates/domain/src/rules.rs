//! Rules an item or a system must satisfy beyond the shape of its fields. Each refusal is a
//! [`Violation`] with a stable code, the JSON pointer of the offending field, and a message a
//! person can act on.

use crate::controls::{normalize_cage_code, normalize_control, normalize_cve};
use crate::item::ItemFields;
use crate::limits::RESOURCE;
use crate::system::SystemFields;
use chrono::NaiveDate;

/// The years a date may fall in: four-digit years, and none before computing had POA&Ms.
pub const YEARS: std::ops::RangeInclusive<i32> = 1900..=9999;

/// Whether a date lies in [`YEARS`] (both backends store and compare such dates alike).
pub fn date_in_range(d: NaiveDate) -> bool {
    use chrono::Datelike;
    YEARS.contains(&d.year())
}

/// One broken rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Stable snake_case code clients can branch on.
    pub code: &'static str,
    /// RFC 6901 JSON pointer to the field, relative to the request body.
    pub pointer: String,
    pub message: String,
}

impl Violation {
    pub fn new(code: &'static str, pointer: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code,
            pointer: pointer.into(),
            message: message.into(),
        }
    }
}

/// Checks an item's content against the domain's rules and returns it normalised (control ids,
/// CVE ids upper-cased; duplicates dropped, first occurrence kept). `today` is the server's
/// date (UTC): dates of things that already happened may not lie after it.
pub fn check_item(mut f: ItemFields, today: NaiveDate) -> Result<ItemFields, Vec<Violation>> {
    let mut v = Vec::new();

    f.controls = normalize_list(&f.controls, "/controls", &mut v, |s| {
        normalize_control(s).ok_or_else(|| {
            (
                "invalid_control",
                format!(
                    "`{s}` is not a control reference: use NIST SP 800-53 (AC-2, AC-2(1)), \
                     800-171 (3.1.1) or CMMC (AC.L2-3.1.1)"
                ),
            )
        })
    });
    f.cves = normalize_list(&f.cves, "/cves", &mut v, |s| {
        normalize_cve(s).ok_or_else(|| {
            (
                "invalid_cve",
                format!("`{s}` is not a CVE id (CVE-YYYY-NNNN)"),
            )
        })
    });
    f.assets = normalize_list(&f.assets, "/assets", &mut v, |s| {
        let t = s.trim();
        if t.is_empty() || t.chars().count() as u64 > RESOURCE {
            Err((
                "invalid_asset",
                format!("an asset identifier has 1 to {RESOURCE} characters"),
            ))
        } else {
            Ok(t.to_owned())
        }
    });

    let before_dates = v.len();
    for (d, pointer) in [
        (Some(f.detected_on), "/detected_on"),
        (f.scheduled_completion, "/scheduled_completion"),
        (f.completed_on, "/completed_on"),
        (f.closed_on, "/closed_on"),
        (
            f.vendor_dependency.as_ref().and_then(|vd| vd.last_check_in),
            "/vendor_dependency/last_check_in",
        ),
        (
            f.deviation.as_ref().and_then(|d| d.expires_on),
            "/deviation/expires_on",
        ),
    ] {
        if let Some(d) = d.filter(|d| !date_in_range(*d)) {
            v.push(Violation::new(
                "date_out_of_range",
                pointer,
                format!(
                    "{d} is outside the years {}..={}",
                    YEARS.start(),
                    YEARS.end()
                ),
            ));
        }
    }
    if v.len() > before_dates {
        // Out-of-range dates make the order checks meaningless.
        return Err(v);
    }
    not_after_today(
        f.detected_on,
        "/detected_on",
        "detection date",
        today,
        &mut v,
    );
    if let Some(d) = f.completed_on {
        not_after_today(d, "/completed_on", "completion date", today, &mut v);
        not_before_detection(d, "/completed_on", "completion date", f.detected_on, &mut v);
    }
    if let Some(d) = f.closed_on {
        not_after_today(d, "/closed_on", "closure date", today, &mut v);
        not_before_detection(d, "/closed_on", "closure date", f.detected_on, &mut v);
        if let Some(c) = f.completed_on.filter(|c| d < *c) {
            v.push(Violation::new(
                "closed_before_completed",
                "/closed_on",
                format!("the closure date {d} is before the completion date {c}"),
            ));
        }
    }
    if let Some(d) = f.scheduled_completion {
        not_before_detection(
            d,
            "/scheduled_completion",
            "scheduled completion date",
            f.detected_on,
            &mut v,
        );
    }
    if let Some(d) = f.vendor_dependency.as_ref().and_then(|vd| vd.last_check_in) {
        not_after_today(
            d,
            "/vendor_dependency/last_check_in",
            "vendor check-in date",
            today,
            &mut v,
        );
    }
    if let Some(dev) = &f.deviation {
        if let Some(e) = dev.expires_on {
            // An expiry follows the decision: the detection date comes before any decision,
            // and a request still pending is decided today at the earliest.
            let (floor, what) = if dev.status == crate::DeviationStatus::Pending {
                (
                    today.max(f.detected_on),
                    "today (a pending request is decided today or later)",
                )
            } else {
                (f.detected_on, "the detection date")
            };
            if e <= floor {
                v.push(Violation::new(
                    "expiry_not_after_decision",
                    "/deviation/expires_on",
                    format!("the expiry date {e} must be after {what}: {floor}"),
                ));
            }
        }
    }
    if let Some(w) = f.change_management.as_ref().and_then(|c| c.check_window()) {
        v.push(w);
    }
    if f.adjusted_risk_rating.is_some() && f.risk_justification.is_none() {
        v.push(Violation::new(
            "adjustment_needs_justification",
            "/risk_justification",
            "an adjusted risk rating needs a risk justification (FedRAMP: Risk Adjustment \
             requires a deviation rationale)",
        ));
    }

    if v.is_empty() {
        Ok(f)
    } else {
        Err(v)
    }
}

/// Checks a system's content and returns it normalised (CAGE codes upper-cased, deduplicated).
pub fn check_system(mut f: SystemFields) -> Result<SystemFields, Vec<Violation>> {
    let mut v = Vec::new();
    f.cage_codes = normalize_list(&f.cage_codes, "/cage_codes", &mut v, |s| {
        normalize_cage_code(s).ok_or_else(|| {
            (
                "invalid_cage_code",
                format!("`{s}` is not a CAGE code (five letters or digits)"),
            )
        })
    });
    if f.vdr_since.is_some() && (f.fedramp_class.is_none() || f.regime != crate::Regime::Fedramp) {
        v.push(Violation::new(
            "vdr_needs_fedramp_class",
            "/vdr_since",
            "FedRAMP's 2026 rules apply to a system of the `fedramp` regime with its `fedramp_class`",
        ));
    }
    if v.is_empty() {
        Ok(f)
    } else {
        Err(v)
    }
}

fn normalize_list(
    raw: &[String],
    pointer: &str,
    violations: &mut Vec<Violation>,
    normalize: impl Fn(&str) -> Result<String, (&'static str, String)>,
) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(raw.len());
    for (i, s) in raw.iter().enumerate() {
        match normalize(s) {
            Ok(n) => {
                if !out.contains(&n) {
                    out.push(n);
                }
            }
            Err((code, message)) => {
                violations.push(Violation::new(code, format!("{pointer}/{i}"), message))
            }
        }
    }
    out
}

fn not_after_today(
    d: NaiveDate,
    pointer: &str,
    what: &str,
    today: NaiveDate,
    v: &mut Vec<Violation>,
) {
    if d > today {
        v.push(Violation::new(
            "date_in_future",
            pointer,
            format!("the {what} {d} is after today ({today})"),
        ));
    }
}

fn not_before_detection(
    d: NaiveDate,
    pointer: &str,
    what: &str,
    detected: NaiveDate,
    v: &mut Vec<Violation>,
) {
    if d < detected {
        v.push(Violation::new(
            "date_before_detection",
            pointer,
            format!("the {what} {d} is before the detection date {detected}"),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::item::{Source, VendorDependency};
    use crate::vocab::{ItemStatus, RiskRating, SourceKind};

    fn date(s: &str) -> NaiveDate {
        s.parse().unwrap_or_default()
    }

    fn item() -> ItemFields {
        ItemFields {
            ccis: Vec::new(),
            external_id: None,
            title: "t".into(),
            description: "d".into(),
            controls: vec![],
            source: Source {
                details: Default::default(),
                kind: SourceKind::Scan,
                detector: None,
                identifier: None,
            },
            cves: vec![],
            assets: vec![],
            likelihood: None,
            impact: None,
            risk_rating: RiskRating::High,
            adjusted_risk_rating: None,
            risk_justification: None,
            status: ItemStatus::Open,
            owner: None,
            implementer: None,
            remediation_plan: None,
            resources: None,
            actual_cost: None,
            interim_mitigation: None,
            residual_risk: None,
            detected_on: date("2026-10-01"),
            scheduled_completion: None,
            completed_on: None,
            closed_on: None,
            deviation: None,
            vendor_dependency: None,
            comments: None,
            change_management: None,
            escalation_contact: None,
            evaluation: None,
            cws_code: None,
        }
    }

    fn codes(r: Result<ItemFields, Vec<Violation>>) -> Vec<(&'static str, String)> {
        r.err()
            .unwrap_or_default()
            .into_iter()
            .map(|v| (v.code, v.pointer))
            .collect()
    }

    const TODAY: &str = "2026-11-22";

    #[test]
    fn a_plain_item_passes_and_lists_are_normalised() {
        let mut f = item();
        f.controls = vec!["ac-2".into(), "AC-2".into(), "3.1.1".into()];
        f.cves = vec!["cve-2024-3094".into()];
        f.assets = vec!["  host-1 ".into()];
        let out = check_item(f, date(TODAY)).unwrap_or_else(|v| panic!("{v:?}"));
        assert_eq!(out.controls, vec!["AC-2", "3.1.1"]);
        assert_eq!(out.cves, vec!["CVE-2024-3094"]);
        assert_eq!(out.assets, vec!["host-1"]);
    }

    #[test]
    fn bad_list_entries_are_pointed_at_by_index() {
        let mut f = item();
        f.controls = vec!["AC-2".into(), "nope".into()];
        f.cves = vec!["CVE-1".into()];
        f.assets = vec!["   ".into()];
        assert_eq!(
            codes(check_item(f, date(TODAY))),
            vec![
                ("invalid_control", "/controls/1".to_string()),
                ("invalid_cve", "/cves/0".to_string()),
                ("invalid_asset", "/assets/0".to_string()),
            ]
        );
    }

    #[test]
    fn things_that_happened_cannot_be_dated_after_today() {
        let mut f = item();
        f.detected_on = date("2026-11-23");
        f.vendor_dependency = Some(VendorDependency {
            product: "p".into(),
            vendor: None,
            last_check_in: Some(date("2026-12-01")),
        });
        assert_eq!(
            codes(check_item(f, date(TODAY))),
            vec![
                ("date_in_future", "/detected_on".to_string()),
                (
                    "date_in_future",
                    "/vendor_dependency/last_check_in".to_string()
                ),
            ]
        );
        let mut f = item();
        f.detected_on = date(TODAY);
        assert!(check_item(f, date(TODAY)).is_ok(), "today itself is fine");
    }

    #[test]
    fn dates_outside_four_digit_years_are_refused() {
        let mut f = item();
        f.detected_on = date("1899-12-31");
        f.scheduled_completion = "+10000-01-01".parse().ok();
        assert_eq!(
            codes(check_item(f, date(TODAY))),
            vec![
                ("date_out_of_range", "/detected_on".to_string()),
                ("date_out_of_range", "/scheduled_completion".to_string()),
            ]
        );
    }

    #[test]
    fn dates_keep_their_order() {
        let mut f = item();
        f.scheduled_completion = Some(date("2026-09-30"));
        f.completed_on = Some(date("2026-11-10"));
        f.closed_on = Some(date("2026-11-09"));
        assert_eq!(
            codes(check_item(f, date(TODAY))),
            vec![
                ("closed_before_completed", "/closed_on".to_string()),
                ("date_before_detection", "/scheduled_completion".to_string()),
            ]
        );
    }

    #[test]
    fn an_adjusted_rating_needs_a_justification() {
        let mut f = item();
        f.adjusted_risk_rating = Some(RiskRating::Moderate);
        assert_eq!(
            codes(check_item(f.clone(), date(TODAY))),
            vec![(
                "adjustment_needs_justification",
                "/risk_justification".to_string()
            )]
        );
        f.risk_justification = Some("compensating WAF rule".into());
        assert!(check_item(f, date(TODAY)).is_ok());
    }

    #[test]
    fn cage_codes_are_checked_and_normalised() {
        let f = SystemFields {
            name: "s".into(),
            description: None,
            organization: None,
            cage_codes: vec!["1abc2".into(), "1ABC2".into(), "bad".into()],
            impact_level: None,
            regime: crate::Regime::Custom,
            contacts: Default::default(),
            deadline_policy: None,
            fedramp_class: None,
            vdr_since: None,
            vdr_clock: None,
            certification_package_uri: None,
            fedramp_id: None,
            reminders: None,
            emass: None,
            dss_uid: None,
            cws_labels: None,
            scans: None,
        };
        let err = check_system(f.clone()).err().unwrap_or_default();
        assert_eq!(err.len(), 1);
        assert_eq!(err[0].pointer, "/cage_codes/2");
        let mut ok = f;
        ok.cage_codes.pop();
        assert_eq!(
            check_system(ok).map(|s| s.cage_codes).ok(),
            Some(vec!["1ABC2".to_string()])
        );
    }
}
