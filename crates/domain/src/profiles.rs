//! Validation profiles: each regime's rules over an item, as findings that name the rule, its
//! severity, the field and the citation. `blocking` rules also refuse writes; the others are
//! reported by the dry runs (they depend on time or on the POA&M as a whole).

use crate::cmmc::{self, Status, Statuses};
use crate::item::ItemFields;
use crate::rules::Violation;
use crate::vocab::{DeviationKind, ItemStatus, Regime, RiskRating};
use chrono::NaiveDate;
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = FindingSeverity)]
pub enum Severity {
    Error,
    Warning,
}

/// One broken rule of a profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Finding {
    #[schema(example = "fedramp.operational_requirement_on_high")]
    pub rule: String,
    pub severity: Severity,
    /// JSON pointer into the item.
    pub pointer: String,
    pub message: String,
    #[schema(example = "FedRAMP POA&M Template Completion Guide, Operational Requirement")]
    pub citation: String,
    /// The item, when a whole POA&M is validated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub item_id: Option<String>,
    /// Refuses writes (not on the wire).
    #[serde(skip)]
    pub blocking: bool,
}

/// What the rules need beyond the item's fields.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    pub milestones: usize,
    pub open_milestones: usize,
}

const EMASS: &str = "eMASS REST API v3.22, POA&M required fields";
const FEDRAMP_OR: &str = "FedRAMP POA&M Template Completion Guide, Operational Requirement";
const FEDRAMP_VENDOR: &str = "FedRAMP POA&M Template Completion Guide, Vendor Dependency";
const CHANGE_MANAGEMENT: &str =
    "NIST SP 800-53 CM-3 (configuration change control); NIST SP 800-171 3.4.3";

fn finding(
    rule: &str,
    severity: Severity,
    pointer: &str,
    message: String,
    citation: &str,
    blocking: bool,
) -> Finding {
    Finding {
        rule: rule.into(),
        severity,
        pointer: pointer.into(),
        message,
        citation: citation.into(),
        item_id: None,
        blocking,
    }
}

fn missing(s: &Option<String>) -> bool {
    s.as_deref().is_none_or(|t| t.trim().is_empty())
}

/// The findings of an item under its system's regime. `facts` is `None` for a proposed item
/// (no milestones yet); `cmmc` is the system's assessment, when there is one.
pub fn check(
    regime: Regime,
    item: &ItemFields,
    facts: Option<&Facts>,
    cmmc_statuses: Option<&Statuses>,
    today: NaiveDate,
) -> Vec<Finding> {
    use Severity::*;
    let mut out = Vec::new();
    let facts = facts.cloned().unwrap_or_default();
    match regime {
        Regime::Emass => {
            if item
                .resources
                .as_ref()
                .is_none_or(|r| missing(&r.description))
            {
                out.push(finding(
                    "emass.resources_required",
                    Error,
                    "/resources/description",
                    "eMASS requires the resources needed for the remediation".into(),
                    EMASS,
                    true,
                ));
            }
            if item.owner.is_none() {
                out.push(finding(
                    "emass.poc_required",
                    Error,
                    "/owner",
                    "eMASS requires a point of contact".into(),
                    EMASS,
                    true,
                ));
            }
            if missing(&item.source.identifier) {
                out.push(finding(
                    "emass.source_identifier_required",
                    Error,
                    "/source/identifier",
                    "eMASS requires the source identifying the vulnerability".into(),
                    EMASS,
                    true,
                ));
            }
            if matches!(item.status, ItemStatus::InProgress | ItemStatus::Completed) {
                if item.scheduled_completion.is_none() {
                    out.push(finding(
                        "emass.scheduled_completion_required",
                        Error,
                        "/scheduled_completion",
                        "Ongoing and Completed items need a scheduled completion date".into(),
                        EMASS,
                        false,
                    ));
                }
                if facts.milestones == 0 {
                    out.push(finding(
                        "emass.milestone_required",
                        Error,
                        "/milestones",
                        "Ongoing and Completed items need at least one milestone".into(),
                        EMASS,
                        false,
                    ));
                }
            }
            if item.completed_on.is_some_and(|d| d > today) {
                out.push(finding(
                    "emass.completion_in_future",
                    Error,
                    "/completed_on",
                    "the completion date may not lie in the future".into(),
                    EMASS,
                    false,
                ));
            }
            if matches!(
                item.status,
                ItemStatus::Completed | ItemStatus::RiskAccepted
            ) && missing(&item.comments)
            {
                out.push(finding(
                    "emass.comments_required",
                    Error,
                    "/comments",
                    format!("{} items need comments", item.status),
                    EMASS,
                    false,
                ));
            }
            if item.status == ItemStatus::RiskAccepted && facts.open_milestones > 0 {
                out.push(finding(
                    "emass.risk_accepted_has_milestones",
                    Error,
                    "/milestones",
                    "Risk Accepted items have no open milestones".into(),
                    EMASS,
                    false,
                ));
            }
        }
        Regime::Fedramp => {
            let high = matches!(
                item.adjusted_risk_rating.unwrap_or(item.risk_rating),
                RiskRating::High | RiskRating::Critical
            );
            if item
                .deviation
                .as_ref()
                .is_some_and(|d| d.kind == DeviationKind::OperationalRequirement)
                && matches!(item.risk_rating, RiskRating::High | RiskRating::Critical)
            {
                out.push(finding(
                    "fedramp.operational_requirement_on_high",
                    Error,
                    "/deviation/kind",
                    "FedRAMP does not approve an operational requirement for a High risk".into(),
                    FEDRAMP_OR,
                    true,
                ));
            }
            if let Some(vd) = &item.vendor_dependency {
                if vd.last_check_in.is_none_or(|d| (today - d).num_days() > 31) {
                    out.push(finding(
                        "fedramp.vendor_check_in_overdue",
                        Warning,
                        "/vendor_dependency/last_check_in",
                        "check in with the vendor at least monthly".into(),
                        FEDRAMP_VENDOR,
                        false,
                    ));
                }
                if high && (today - item.detected_on).num_days() > 30 {
                    out.push(finding("fedramp.vendor_dependency_not_mitigated", Warning, "/adjusted_risk_rating", "a High with a vendor dependency must be mitigated to Moderate within 30 days".into(), FEDRAMP_VENDOR, false));
                }
            }
        }
        Regime::CmmcL2 | Regime::CmmcL3 => {
            if item.status == ItemStatus::RiskAccepted {
                out.push(finding(
                    "cmmc.risk_accepted",
                    Error,
                    "/status",
                    "CMMC allows no risk acceptance of a POA&M item".into(),
                    "32 CFR 170.21(a)(2)",
                    false,
                ));
            }
            for (i, control) in item.controls.iter().enumerate() {
                let Some(r) = cmmc::requirement(control) else {
                    continue;
                };
                let status = cmmc_statuses
                    .and_then(|s| s.get(&r.number))
                    .copied()
                    .unwrap_or(Status::NotMet);
                if !cmmc::poam_eligible(&r.number, status) {
                    let citation = if cmmc::EXCLUDED.contains(&r.number.as_str()) {
                        "32 CFR 170.21(a)(2)(iii)"
                    } else {
                        "32 CFR 170.21(a)(2)(ii)"
                    };
                    out.push(finding(
                        "cmmc.requirement_not_poam_eligible",
                        Error,
                        &format!("/controls/{i}"),
                        format!("{} may not be on a Level 2 POA&M: a Conditional status is out of reach while it is not met", r.number),
                        citation,
                        false,
                    ));
                }
            }
        }
        Regime::Custom => {}
    }
    if regime != Regime::Custom
        && item.status == ItemStatus::InProgress
        && matches!(item.risk_rating, RiskRating::High | RiskRating::Critical)
        && !item
            .change_management
            .as_ref()
            .is_some_and(|c| c.is_planned())
    {
        out.push(finding(
            "change_management_missing",
            Warning,
            "/change_management",
            format!(
                "a {} item in progress should carry its change management: the change ticket, the testing before implementation and the rollback procedure",
                item.risk_rating
            ),
            CHANGE_MANAGEMENT,
            false,
        ));
    }
    out
}

/// The findings that refuse a write, as violations.
pub fn blocking(regime: Regime, item: &ItemFields, today: NaiveDate) -> Vec<Violation> {
    check(regime, item, None, None, today)
        .into_iter()
        .filter(|f| f.blocking)
        .map(|f| {
            Violation::new(
                rule_code(&f.rule),
                f.pointer,
                format!("{} ({})", f.message, f.citation),
            )
        })
        .collect()
}

/// A domain rule's violation as a finding of a dry run.
pub fn from_violation(v: Violation, item_id: Option<String>) -> Finding {
    Finding {
        rule: format!("item.{}", v.code),
        severity: Severity::Error,
        pointer: v.pointer,
        message: v.message,
        citation: "POA&M service item rules".into(),
        item_id,
        blocking: true,
    }
}

/// The stable code of a blocking rule (its id, as a static string).
fn rule_code(rule: &str) -> &'static str {
    match rule {
        "emass.resources_required" => "emass.resources_required",
        "emass.poc_required" => "emass.poc_required",
        "emass.source_identifier_required" => "emass.source_identifier_required",
        "fedramp.operational_requirement_on_high" => "fedramp.operational_requirement_on_high",
        _ => "profile_rule",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::item::{Deviation, VendorDependency};
    use crate::vocab::DeviationStatus;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap_or_default()
    }

    fn item() -> ItemFields {
        serde_json::from_value(serde_json::json!({
            "title": "t", "description": "d", "risk_rating": "high", "detected_on": "2026-10-01", "source": {"kind": "scan"}
        }))
        .unwrap_or_else(|e| panic!("{e}"))
    }

    fn rules(f: &[Finding]) -> Vec<&str> {
        f.iter().map(|x| x.rule.as_str()).collect()
    }

    const TODAY: &str = "2026-11-22";

    #[test]
    fn severe_items_in_progress_without_change_management_are_warned_about() {
        let mut f = item();
        f.status = ItemStatus::InProgress;
        f.scheduled_completion = Some(d("2026-12-31"));
        let warned = |f: &ItemFields, regime| {
            check(regime, f, None, None, d(TODAY))
                .into_iter()
                .filter(|x| x.rule == "change_management_missing")
                .map(|x| (x.severity, x.blocking))
                .collect::<Vec<_>>()
        };
        for regime in [Regime::Fedramp, Regime::CmmcL2, Regime::Emass] {
            assert_eq!(warned(&f, regime), [(Severity::Warning, false)], "{regime}");
        }
        assert!(warned(&f, Regime::Custom).is_empty());
        f.change_management = Some(crate::item::ChangeManagement {
            ticket: Some("CHG-1".into()),
            testing: Some("staging rescan".into()),
            ..Default::default()
        });
        assert_eq!(
            warned(&f, Regime::Fedramp).len(),
            1,
            "rollback still missing"
        );
        if let Some(c) = f.change_management.as_mut() {
            c.rollback = Some("restore the listener policy".into());
        }
        assert!(warned(&f, Regime::Fedramp).is_empty());
        f.change_management = None;
        f.risk_rating = RiskRating::Moderate;
        assert!(warned(&f, Regime::Fedramp).is_empty());
        f.risk_rating = RiskRating::Critical;
        f.status = ItemStatus::Open;
        assert!(warned(&f, Regime::Fedramp).is_empty());
        assert!(blocking(Regime::Fedramp, &f, d(TODAY)).is_empty());
    }

    #[test]
    fn emass_requires_resources_a_contact_and_the_source() {
        let f = check(Regime::Emass, &item(), None, None, d(TODAY));
        assert_eq!(
            rules(&f),
            [
                "emass.resources_required",
                "emass.poc_required",
                "emass.source_identifier_required"
            ]
        );
        assert!(f
            .iter()
            .all(|x| x.blocking && x.citation.starts_with("eMASS")));
        let mut it = item();
        it.status = ItemStatus::RiskAccepted;
        let f = check(
            Regime::Emass,
            &it,
            Some(&Facts {
                milestones: 1,
                open_milestones: 1,
            }),
            None,
            d(TODAY),
        );
        assert!(rules(&f).contains(&"emass.risk_accepted_has_milestones"));
        assert!(rules(&f).contains(&"emass.comments_required"));
        assert!(check(Regime::Custom, &item(), None, None, d(TODAY)).is_empty());
    }

    #[test]
    fn fedramp_operational_requirements_and_vendor_dependencies() {
        let mut it = item();
        it.deviation = Some(Deviation {
            kind: DeviationKind::OperationalRequirement,
            status: DeviationStatus::Pending,
            rationale: "r".into(),
            expires_on: None,
        });
        let f = check(Regime::Fedramp, &it, None, None, d(TODAY));
        assert_eq!(rules(&f), ["fedramp.operational_requirement_on_high"]);
        assert_eq!(blocking(Regime::Fedramp, &it, d(TODAY)).len(), 1);
        let mut it = item();
        it.vendor_dependency = Some(VendorDependency {
            product: "p".into(),
            vendor: None,
            last_check_in: Some(d("2026-10-01")),
        });
        let f = check(Regime::Fedramp, &it, None, None, d(TODAY));
        assert_eq!(
            rules(&f),
            [
                "fedramp.vendor_check_in_overdue",
                "fedramp.vendor_dependency_not_mitigated"
            ]
        );
        assert!(f
            .iter()
            .all(|x| x.severity == Severity::Warning && !x.blocking));
        it.adjusted_risk_rating = Some(RiskRating::Moderate);
        it.vendor_dependency = Some(VendorDependency {
            product: "p".into(),
            vendor: None,
            last_check_in: Some(d("2026-11-10")),
        });
        assert!(check(Regime::Fedramp, &it, None, None, d(TODAY)).is_empty());
    }

    #[test]
    fn cmmc_flags_items_on_ineligible_requirements() {
        let mut it = item();
        it.controls = vec![
            "3.1.3".into(),
            "AC.L2-3.1.1".into(),
            "3.10.3".into(),
            "3.13.11".into(),
            "AC-2".into(),
        ];
        let f = check(Regime::CmmcL2, &it, None, None, d(TODAY));
        let pointers: Vec<(&str, &str)> = f
            .iter()
            .map(|x| (x.pointer.as_str(), x.citation.as_str()))
            .collect();
        assert_eq!(
            pointers,
            [
                ("/controls/1", "32 CFR 170.21(a)(2)(ii)"),
                ("/controls/2", "32 CFR 170.21(a)(2)(iii)"),
                ("/controls/3", "32 CFR 170.21(a)(2)(ii)"),
            ]
        );
        let partial: Statuses = [("3.13.11".to_string(), Status::Partial)].into();
        let f = check(Regime::CmmcL2, &it, None, Some(&partial), d(TODAY));
        assert_eq!(f.len(), 2, "3.13.11 in its 3-point case is eligible");
    }
}
