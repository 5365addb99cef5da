//! CMMC Level 2: the SPRS score of the DoD Assessment Methodology (v1.2.1) and the Conditional
//! status check of 32 CFR 170.21. The 110 NIST SP 800-171 r2 requirements and their point
//! values are data (`data/cmmc-l2-sprs-weights.csv`), read once.

use crate::rules::Violation;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::LazyLock;
use utoipa::ToSchema;

/// The highest score: every requirement met.
pub const MAX_SCORE: i32 = 110;
/// A Conditional Level 2 status needs at least 80% of the maximum (32 CFR 170.21(a)(2)(i)).
pub const CONDITIONAL_MINIMUM: i32 = 88;
/// Days after the Conditional status date within which a closeout assessment must pass.
pub const CLOSEOUT_DAYS: u64 = 180;

/// What a requirement costs when not met.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Points {
    Fixed(i32),
    /// 3.5.3 and 3.13.11: 5 when not met, 3 in their partial case.
    Partial {
        full: i32,
        partial: i32,
    },
    /// 3.12.4 (the SSP): no value; without it there is no assessment and no score.
    None,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    pub cmmc_id: String,
    pub number: String,
    pub points: Points,
}

static REQUIREMENTS: LazyLock<Vec<Requirement>> = LazyLock::new(|| {
    include_str!("../data/cmmc-l2-sprs-weights.csv")
        .lines()
        .skip(1)
        .filter_map(|line| {
            let mut cols = line.splitn(5, ',');
            let (id, number, points) = (cols.next()?, cols.next()?, cols.next()?);
            let points = match points {
                "NA" => Points::None,
                "5/3" => Points::Partial {
                    full: 5,
                    partial: 3,
                },
                n => Points::Fixed(n.parse().ok()?),
            };
            Some(Requirement {
                cmmc_id: id.to_owned(),
                number: number.to_owned(),
                points,
            })
        })
        .collect()
});

/// The 110 requirements, in the methodology's order.
pub fn requirements() -> &'static [Requirement] {
    &REQUIREMENTS
}

/// The requirement a key names: an 800-171 number (`3.1.1`) or a CMMC id (`AC.L2-3.1.1`).
pub fn requirement(key: &str) -> Option<&'static Requirement> {
    let key = key.trim();
    REQUIREMENTS
        .iter()
        .find(|r| r.number == key || r.cmmc_id.eq_ignore_ascii_case(key))
}

/// Requirements 32 CFR 170.21(a)(2)(iii) keeps off any POA&M.
pub const EXCLUDED: &[&str] = &["3.1.20", "3.1.22", "3.10.3", "3.10.4", "3.10.5", "3.12.4"];

/// The state of one requirement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = CmmcStatus)]
pub enum Status {
    Met,
    NotMet,
    NotApplicable,
    /// Only 3.5.3 (MFA for remote and privileged users only) and 3.13.11 (encryption that is not
    /// FIPS-validated).
    Partial,
}

/// An assessment: every requirement's status (a requirement left out is not met).
pub type Statuses = BTreeMap<String, Status>;

/// Checks an assessment's keys and values, normalising keys to 800-171 numbers.
pub fn check_assessment(input: &BTreeMap<String, Status>) -> Result<Statuses, Vec<Violation>> {
    let mut out = Statuses::new();
    let mut errors = Vec::new();
    for (key, status) in input {
        let pointer = format!(
            "/requirements/{}",
            key.replace('~', "~0").replace('/', "~1")
        );
        match requirement(key) {
            None => errors.push(Violation::new("unknown_requirement", pointer, format!("`{key}` is not a NIST SP 800-171 r2 requirement (3.1.1 … 3.14.7) or its CMMC id"))),
            Some(r) if *status == Status::Partial && !matches!(r.points, Points::Partial { .. }) => errors.push(Violation::new(
                "partial_not_allowed",
                pointer,
                format!("only 3.5.3 and 3.13.11 have a partial case; {} is met, not met or not applicable", r.number),
            )),
            Some(r) => {
                if out.insert(r.number.clone(), *status).is_some() {
                    errors.push(Violation::new("duplicate_requirement", pointer, format!("{} is named twice", r.number)));
                }
            }
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

fn status_of(statuses: &Statuses, number: &str) -> Status {
    statuses.get(number).copied().unwrap_or(Status::NotMet)
}

/// What a requirement costs in its status (0 when met or not applicable).
fn cost(r: &Requirement, status: Status) -> i32 {
    match (status, r.points) {
        (Status::Met | Status::NotApplicable, _) => 0,
        (_, Points::None) => 0,
        (Status::Partial, Points::Partial { partial, .. }) => partial,
        (_, Points::Partial { full, .. }) => full,
        (_, Points::Fixed(n)) => n,
    }
}

/// The SPRS score: 110 minus the value of every requirement not met (minimum −203). `None`
/// when 3.12.4 (the system security plan) is not met: without an SSP there is no assessment.
pub fn score(statuses: &Statuses) -> Option<i32> {
    if matches!(
        status_of(statuses, "3.12.4"),
        Status::NotMet | Status::Partial
    ) {
        return None;
    }
    Some(
        MAX_SCORE
            - REQUIREMENTS
                .iter()
                .map(|r| cost(r, status_of(statuses, &r.number)))
                .sum::<i32>(),
    )
}

/// A system's recorded self-assessment.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Assessment {
    pub system_id: crate::SystemId,
    /// Every requirement named, by 800-171 number; one left out counts as not met.
    #[schema(value_type = BTreeMap<String, Status>)]
    pub requirements: Statuses,
    #[schema(required = true)]
    pub conditional_status_date: Option<NaiveDate>,
    pub version: i64,
    pub updated_at: chrono::DateTime<chrono::Utc>,
    pub updated_by: String,
}

/// Why a Conditional status is not available.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Reason {
    pub rule: String,
    #[schema(required = true)]
    pub requirement: Option<String>,
    pub citation: String,
}

fn reason(rule: &str, requirement: Option<&str>, citation: &str) -> Reason {
    Reason {
        rule: rule.into(),
        requirement: requirement.map(str::to_owned),
        citation: citation.into(),
    }
}

/// The outcome of the Conditional status check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conditional {
    pub score: Option<i32>,
    pub eligible: bool,
    pub reasons: Vec<Reason>,
    pub closeout_deadline: Option<NaiveDate>,
    pub days_left: Option<i64>,
}

/// Checks Conditional Level 2 status (32 CFR 170.21(a)(2)): a score of at least 88, and every
/// requirement not met eligible for a POA&M (1 point, or 3.13.11 in its 3-point case; none of
/// the six excluded) and tracked by an open POA&M item (`tracked`: requirement numbers).
pub fn conditional(
    statuses: &Statuses,
    tracked: &BTreeSet<String>,
    conditional_status_date: Option<NaiveDate>,
    today: NaiveDate,
) -> Conditional {
    let score = score(statuses);
    let mut reasons = Vec::new();
    match score {
        None => reasons.push(reason(
            "no_system_security_plan",
            Some("3.12.4"),
            "32 CFR 170.21(a)(2)(iii); DoD Assessment Methodology 1.2.1",
        )),
        Some(s) if s < CONDITIONAL_MINIMUM => reasons.push(reason(
            "score_below_minimum",
            None,
            "32 CFR 170.21(a)(2)(i)",
        )),
        Some(_) => {}
    }
    for r in REQUIREMENTS.iter() {
        let status = status_of(statuses, &r.number);
        if matches!(status, Status::Met | Status::NotApplicable) {
            continue;
        }
        if EXCLUDED.contains(&r.number.as_str()) {
            if r.number != "3.12.4" {
                reasons.push(reason(
                    "requirement_excluded",
                    Some(&r.number),
                    "32 CFR 170.21(a)(2)(iii)",
                ));
            }
            continue;
        }
        let eligible = cost(r, status) == 1 || (r.number == "3.13.11" && status == Status::Partial);
        if !eligible {
            reasons.push(reason(
                "requirement_not_poam_eligible",
                Some(&r.number),
                "32 CFR 170.21(a)(2)(ii)",
            ));
        } else if !tracked.contains(&r.number) {
            reasons.push(reason(
                "requirement_not_on_poam",
                Some(&r.number),
                "32 CFR 170.21(a)(2)",
            ));
        }
    }
    let closeout_deadline = conditional_status_date.map(|d| d + chrono::Days::new(CLOSEOUT_DAYS));
    Conditional {
        score,
        eligible: reasons.is_empty(),
        reasons,
        closeout_deadline,
        days_left: closeout_deadline.map(|d| (d - today).num_days()),
    }
}

/// Whether a requirement may be on a Level 2 POA&M at all (for flagging items).
pub fn poam_eligible(number: &str, status: Status) -> bool {
    match requirement(number) {
        None => true,
        Some(r) if EXCLUDED.contains(&r.number.as_str()) => false,
        Some(r) => {
            cost(
                r,
                if status == Status::Met {
                    Status::NotMet
                } else {
                    status
                },
            ) == 1
                || (r.number == "3.13.11" && status == Status::Partial)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(status: Status) -> Statuses {
        requirements()
            .iter()
            .map(|r| (r.number.clone(), status))
            .collect()
    }

    fn date(s: &str) -> NaiveDate {
        s.parse().unwrap_or_default()
    }

    #[test]
    fn there_are_110_requirements_worth_313_points() {
        assert_eq!(requirements().len(), 110);
        let total: i32 = requirements().iter().map(|r| cost(r, Status::NotMet)).sum();
        assert_eq!(total, 313);
    }

    #[test]
    fn sprs_arithmetic() {
        assert_eq!(score(&all(Status::Met)), Some(110));
        let mut none_but_ssp = all(Status::NotMet);
        none_but_ssp.insert("3.12.4".into(), Status::Met);
        assert_eq!(score(&none_but_ssp), Some(-203), "the minimum");
        assert_eq!(score(&all(Status::NotMet)), None, "no SSP, no score");
        assert_eq!(score(&Statuses::new()), None, "left out is not met");
        let mut s = all(Status::Met);
        s.insert("3.5.3".into(), Status::Partial);
        assert_eq!(
            score(&s),
            Some(107),
            "MFA only for remote and privileged users costs 3"
        );
        s.insert("3.5.3".into(), Status::NotMet);
        assert_eq!(score(&s), Some(105), "no MFA costs 5");
        s.insert("3.13.11".into(), Status::Partial);
        assert_eq!(
            score(&s),
            Some(102),
            "encryption not FIPS-validated costs 3"
        );
        s.insert("3.13.11".into(), Status::NotMet);
        assert_eq!(score(&s), Some(100));
        s.insert("3.1.1".into(), Status::NotApplicable);
        assert_eq!(score(&s), Some(100), "not applicable counts as met");
    }

    #[test]
    fn assessments_accept_both_spellings_and_partial_only_where_it_exists() {
        let input: BTreeMap<String, Status> = [
            ("AC.L2-3.1.1".to_string(), Status::Met),
            ("3.5.3".into(), Status::Partial),
        ]
        .into();
        let ok = check_assessment(&input).unwrap_or_default();
        assert_eq!(ok.get("3.1.1"), Some(&Status::Met));
        let bad: BTreeMap<String, Status> = [
            ("3.1.1".to_string(), Status::Partial),
            ("3.99.1".into(), Status::Met),
        ]
        .into();
        let codes: Vec<_> = check_assessment(&bad)
            .err()
            .unwrap_or_default()
            .into_iter()
            .map(|v| v.code)
            .collect();
        assert_eq!(codes, ["partial_not_allowed", "unknown_requirement"]);
        let dup: BTreeMap<String, Status> = [
            ("3.1.1".to_string(), Status::Met),
            ("AC.L2-3.1.1".into(), Status::Met),
        ]
        .into();
        assert!(check_assessment(&dup).is_err());
    }

    #[test]
    fn the_conditional_check_names_each_reason_with_its_citation() {
        let today = date("2026-11-22");
        let mut s = all(Status::Met);
        s.insert("3.1.3".into(), Status::NotMet); // 1 point, eligible
        s.insert("3.13.11".into(), Status::Partial); // 3 points, eligible in this case
        let tracked: BTreeSet<String> = ["3.1.3".to_string(), "3.13.11".into()].into();
        let c = conditional(&s, &tracked, Some(date("2026-10-01")), today);
        assert_eq!(c.score, Some(106));
        assert!(c.eligible, "{:?}", c.reasons);
        assert_eq!(c.closeout_deadline, Some(date("2027-03-30")));
        assert_eq!(c.days_left, Some(128));

        s.insert("3.1.1".into(), Status::NotMet); // 5 points: never on a POA&M
        s.insert("3.1.20".into(), Status::NotMet); // excluded by name
        s.insert("3.1.4".into(), Status::NotMet); // eligible but no item tracks it
        let c = conditional(&s, &tracked, None, today);
        let got: Vec<(String, Option<String>, String)> = c
            .reasons
            .iter()
            .map(|r| (r.rule.clone(), r.requirement.clone(), r.citation.clone()))
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    "requirement_not_poam_eligible".into(),
                    Some("3.1.1".into()),
                    "32 CFR 170.21(a)(2)(ii)".into()
                ),
                (
                    "requirement_not_on_poam".into(),
                    Some("3.1.4".into()),
                    "32 CFR 170.21(a)(2)".into()
                ),
                (
                    "requirement_excluded".into(),
                    Some("3.1.20".into()),
                    "32 CFR 170.21(a)(2)(iii)".into()
                ),
            ]
        );
        assert!(!c.eligible);
        assert_eq!((c.closeout_deadline, c.days_left), (None, None));

        let mut low = all(Status::NotMet);
        low.insert("3.12.4".into(), Status::Met);
        let c = conditional(&low, &BTreeSet::new(), None, today);
        assert_eq!(c.reasons[0].rule, "score_below_minimum");
        assert_eq!(c.reasons[0].citation, "32 CFR 170.21(a)(2)(i)");
        let c = conditional(&Statuses::new(), &BTreeSet::new(), None, today);
        assert_eq!(c.reasons[0].rule, "no_system_security_plan");
    }

    #[test]
    fn eligibility_of_single_requirements() {
        assert!(poam_eligible("3.1.3", Status::NotMet));
        assert!(!poam_eligible("3.1.1", Status::NotMet));
        assert!(!poam_eligible("3.10.3", Status::NotMet));
        assert!(poam_eligible("3.13.11", Status::Partial));
        assert!(!poam_eligible("3.13.11", Status::NotMet));
    }
}
