//! The item lifecycle: which status changes exist and what each one needs. Pure: the caller
//! gathers the facts (milestones, evidence, reviews) and this module decides.

use crate::rules::Violation;
use crate::vocab::{ItemStatus, Regime, RiskRating};
use chrono::NaiveDate;

/// What a transition request carries.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub to: Option<ItemStatus>,
    pub comment: Option<String>,
    pub completed_on: Option<NaiveDate>,
    pub target_date: Option<NaiveDate>,
}

/// What the rules need to know about the item and its surroundings.
#[derive(Debug, Clone)]
pub struct Facts {
    pub status: ItemStatus,
    pub regime: Regime,
    pub scheduled_completion: Option<NaiveDate>,
    pub detected_on: NaiveDate,
    pub milestones: usize,
    /// Milestones neither completed nor cancelled.
    pub open_milestones: usize,
    /// Evidence not withdrawn.
    pub evidence: usize,
    /// The item's original risk rating.
    pub risk_rating: RiskRating,
    /// Evidence not withdrawn of a verification kind (`test_result`, `scan_report`).
    pub verification_evidence: usize,
    pub residual_risk: Option<String>,
    /// The implementer's identities (name and e-mail, lower-cased).
    pub implementer: Vec<String>,
    /// Who made the latest transition to `completed`.
    pub completed_by: Option<String>,
    /// Reviewers of approved closure verifications since the item was last completed.
    pub closure_verifiers: Vec<String>,
    /// An approved risk acceptance exists.
    pub risk_acceptance_approved: bool,
    pub today: NaiveDate,
}

/// The decided change: the new status and the dates it sets.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    pub from: ItemStatus,
    pub to: ItemStatus,
    pub completed_on: Option<NaiveDate>,
    pub closed_on: Option<NaiveDate>,
    pub scheduled_completion: Option<NaiveDate>,
    /// Dates the item keeps or clears (`None` clears).
    pub clear_completion: bool,
}

impl Transition {
    /// What the transition does to the item's content: the new status, and the dates it sets
    /// or clears. The one place that applies a decided transition.
    pub fn apply(&self, mut f: crate::item::ItemFields) -> crate::item::ItemFields {
        f.status = self.to;
        if self.clear_completion {
            f.completed_on = None;
            f.closed_on = None;
        }
        if let Some(d) = self.completed_on {
            f.completed_on = Some(d);
        }
        if let Some(d) = self.closed_on {
            f.closed_on = Some(d);
        }
        if let Some(d) = self.scheduled_completion {
            f.scheduled_completion = Some(d);
        }
        f
    }
}

/// The statuses reachable from `from`.
pub fn allowed(from: ItemStatus) -> &'static [ItemStatus] {
    use ItemStatus::*;
    match from {
        Open => &[InProgress, Completed, Deferred, RiskAccepted],
        InProgress => &[Open, Completed, Deferred, RiskAccepted],
        Deferred => &[Open, InProgress, RiskAccepted],
        Completed => &[Closed, InProgress],
        Closed => &[Open],
        RiskAccepted => &[Open],
    }
}

/// Transitions that are decisions (an approver's), not work (an editor's).
pub fn is_decision(to: ItemStatus) -> bool {
    matches!(to, ItemStatus::Closed | ItemStatus::RiskAccepted)
}

fn v(code: &'static str, pointer: &str, message: impl Into<String>) -> Violation {
    Violation::new(code, pointer, message)
}

fn filled(s: &Option<String>) -> bool {
    s.as_deref().is_some_and(|t| !t.trim().is_empty())
}

/// Where closing a high or critical item needs test or scan evidence besides the review.
const VERIFICATION_EVIDENCE_CITATION: &str = "FedRAMP POA&M Template Completion Guide (closure: evidence the weakness was remediated, e.g. a rescan) and NIST SP 800-171A 3.12.2 / CMMC assessment guide (evidence of implementation)";

/// FedRAMP and CMMC: a high or critical item closes only with at least one non-withdrawn
/// `test_result` or `scan_report` besides the closure-verification review.
fn verification_evidence_rule(facts: &Facts) -> Option<Violation> {
    let regime = matches!(
        facts.regime,
        Regime::Fedramp | Regime::CmmcL2 | Regime::CmmcL3
    );
    let severe = matches!(facts.risk_rating, RiskRating::High | RiskRating::Critical);
    (regime && severe && facts.verification_evidence == 0).then(|| {
        v(
            "verification_evidence_required",
            "/evidence",
            format!(
                "closing a {} item under {} needs at least one test_result or scan_report evidence besides the verification review ({VERIFICATION_EVIDENCE_CITATION})",
                facts.risk_rating, facts.regime
            ),
        )
    })
}

/// Decides a transition, or returns every rule it breaks. `actor` is the token subject.
pub fn decide(req: &Request, facts: &Facts, actor: &str) -> Result<Transition, Vec<Violation>> {
    let Some(to) = req.to else {
        return Err(vec![v("missing_field", "/to", "missing field `to`")]);
    };
    let from = facts.status;
    if !allowed(from).contains(&to) {
        let options: Vec<&str> = allowed(from).iter().map(|s| s.as_str()).collect();
        return Err(vec![v(
            "transition_not_allowed",
            "/to",
            format!(
                "an item cannot go from {from} to {to}; from {from} it can go to: {}",
                options.join(", ")
            ),
        )]);
    }
    let mut errors = Vec::new();
    let mut t = Transition {
        from,
        to,
        completed_on: None,
        closed_on: None,
        scheduled_completion: None,
        clear_completion: false,
    };
    use ItemStatus::*;
    if matches!(to, InProgress | Completed) {
        if facts.scheduled_completion.is_none() {
            errors.push(v("scheduled_completion_required", "/scheduled_completion",
                format!("{to} needs a scheduled completion date (eMASS: Ongoing and Completed items need one)")));
        }
        if facts.milestones == 0 {
            errors.push(v("milestone_required", "/milestones",
                format!("{to} needs at least one milestone (eMASS: Ongoing and Completed items need one)")));
        }
    }
    match to {
        Completed => {
            match req.completed_on {
                None => errors.push(v("completion_date_required", "/completed_on", "completed needs the completion date")),
                Some(d) if d > facts.today => errors.push(v("date_in_future", "/completed_on",
                    format!("the completion date {d} is after today ({}); eMASS refuses future completion dates", facts.today))),
                Some(d) if d < facts.detected_on => errors.push(v("date_before_detection", "/completed_on",
                    format!("the completion date {d} is before the detection date {}", facts.detected_on))),
                Some(d) => t.completed_on = Some(d),
            }
            if !filled(&req.comment) {
                errors.push(v("comment_required", "/comment", "completed needs a comment saying what was done (eMASS: Completed items need comments)"));
            }
            if facts.evidence == 0 {
                errors.push(v("evidence_required", "/evidence",
                    "completed needs at least one piece of evidence of the remediation (closing needs proof, not the implementer's claim)"));
            }
        }
        Closed => {
            let key = crate::change::subject_key;
            let me = key(actor);
            let implementer: Vec<String> = facts.implementer.iter().map(|s| key(s)).collect();
            let completed_by = facts.completed_by.as_deref().map(key);
            let independent: Vec<&String> = facts
                .closure_verifiers
                .iter()
                .filter(|r| {
                    !implementer.contains(&key(r))
                        && completed_by.as_deref() != Some(key(r).as_str())
                })
                .collect();
            if facts.closure_verifiers.is_empty() {
                errors.push(v("closure_verification_required", "/reviews",
                    "closed needs an approved closure-verification review recorded after the item was completed"));
            } else if independent.is_empty() {
                errors.push(v("verifier_not_independent", "/reviews",
                    "the closure verification must come from an approver who neither implemented the fix nor marked the item completed"));
            }
            if implementer.contains(&me) || completed_by.as_deref() == Some(me.as_str()) {
                errors.push(v(
                    "verifier_not_independent",
                    "/to",
                    "the implementer, or whoever marked the item completed, cannot close it",
                ));
            }
            if let Some(e) = verification_evidence_rule(facts) {
                errors.push(e);
            }
            t.closed_on = Some(facts.today);
        }
        RiskAccepted => {
            if matches!(facts.regime, Regime::CmmcL2 | Regime::CmmcL3) {
                errors.push(v("risk_acceptance_forbidden", "/to",
                    "CMMC allows no risk acceptance of a POA&M item: it must be remediated and closed out (32 CFR 170.21)"));
            }
            if !facts.risk_acceptance_approved {
                errors.push(v(
                    "risk_acceptance_review_required",
                    "/reviews",
                    "risk accepted needs an approved risk-acceptance review",
                ));
            }
            if !filled(&facts.residual_risk) {
                errors.push(v(
                    "residual_risk_required",
                    "/residual_risk",
                    "risk accepted needs a residual-risk justification on the item",
                ));
            }
            if facts.open_milestones > 0 {
                errors.push(v("open_milestones", "/milestones",
                    format!("risk accepted allows no open milestones ({} open): complete or cancel them (eMASS)", facts.open_milestones)));
            }
        }
        Deferred => {
            if !filled(&req.comment) {
                errors.push(v(
                    "comment_required",
                    "/comment",
                    "deferred needs the reason (funding, dependency, …)",
                ));
            }
            match req.target_date {
                None => errors.push(v(
                    "target_date_required",
                    "/target_date",
                    "deferred needs a new target date",
                )),
                Some(d) if d <= facts.today => errors.push(v(
                    "target_date_not_in_future",
                    "/target_date",
                    "the new target date must lie in the future",
                )),
                Some(d) => t.scheduled_completion = Some(d),
            }
        }
        Open if from == Closed => {
            if !filled(&req.comment) {
                errors.push(v(
                    "comment_required",
                    "/comment",
                    "reopening a closed item needs the reason (the weakness recurred)",
                ));
            }
            t.clear_completion = true;
        }
        Open | InProgress => {
            if from == Completed || from == RiskAccepted {
                t.clear_completion = true;
            }
        }
    }
    if errors.is_empty() {
        Ok(t)
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ItemStatus::*;

    fn date(s: &str) -> NaiveDate {
        s.parse().unwrap_or_default()
    }

    fn ready(status: ItemStatus) -> Facts {
        Facts {
            status,
            regime: Regime::Fedramp,
            scheduled_completion: Some(date("2026-12-31")),
            detected_on: date("2026-10-01"),
            milestones: 2,
            open_milestones: 0,
            evidence: 1,
            risk_rating: RiskRating::High,
            verification_evidence: 1,
            residual_risk: Some("low".into()),
            implementer: vec!["lee@example.org".into()],
            completed_by: Some("lee@example.org".into()),
            closure_verifiers: vec!["issm@example.org".into()],
            risk_acceptance_approved: true,
            today: date("2026-11-22"),
        }
    }

    fn req(to: ItemStatus) -> Request {
        Request {
            to: Some(to),
            comment: Some("done".into()),
            completed_on: Some(date("2026-11-20")),
            target_date: Some(date("2027-03-31")),
        }
    }

    fn codes(r: Result<Transition, Vec<Violation>>) -> Vec<&'static str> {
        r.err()
            .unwrap_or_default()
            .into_iter()
            .map(|v| v.code)
            .collect()
    }

    #[test]
    fn every_pair_of_statuses_is_either_allowed_or_refused_by_name() {
        for from in ItemStatus::ALL {
            for to in ItemStatus::ALL {
                let r = decide(&req(*to), &ready(*from), "issm@example.org");
                if allowed(*from).contains(to) {
                    assert!(r.is_ok(), "{from} -> {to}: {r:?}");
                } else {
                    assert_eq!(codes(r), vec!["transition_not_allowed"], "{from} -> {to}");
                }
            }
        }
    }

    #[test]
    fn work_needs_a_date_and_a_milestone() {
        let mut f = ready(Open);
        f.scheduled_completion = None;
        f.milestones = 0;
        assert_eq!(
            codes(decide(&req(InProgress), &f, "x")),
            vec!["scheduled_completion_required", "milestone_required"]
        );
    }

    #[test]
    fn completion_needs_a_past_date_a_comment_and_evidence() {
        let mut f = ready(InProgress);
        f.evidence = 0;
        let mut r = req(Completed);
        r.comment = Some("  ".into());
        r.completed_on = Some(date("2026-11-23"));
        assert_eq!(
            codes(decide(&r, &f, "x")),
            vec!["date_in_future", "comment_required", "evidence_required"]
        );
        r.completed_on = None;
        assert!(codes(decide(&r, &f, "x")).contains(&"completion_date_required"));
        let ok = decide(&req(Completed), &ready(InProgress), "x");
        assert_eq!(ok.map(|t| t.completed_on), Ok(Some(date("2026-11-20"))));
    }

    #[test]
    fn closing_needs_an_independent_verification() {
        let mut f = ready(Completed);
        f.closure_verifiers = vec![];
        assert_eq!(
            codes(decide(&req(Closed), &f, "issm@example.org")),
            vec!["closure_verification_required"]
        );
        f.closure_verifiers = vec!["lee@example.org".into()];
        assert_eq!(
            codes(decide(&req(Closed), &f, "issm@example.org")),
            vec!["verifier_not_independent"]
        );
        let f = ready(Completed);
        assert_eq!(
            codes(decide(&req(Closed), &f, "LEE@example.org")),
            vec!["verifier_not_independent"],
            "the implementer cannot close"
        );
        let t = decide(&req(Closed), &f, "issm@example.org");
        assert_eq!(t.map(|t| t.closed_on), Ok(Some(date("2026-11-22"))));
    }

    #[test]
    fn closing_a_severe_item_under_fedramp_or_cmmc_needs_test_or_scan_evidence() {
        for regime in [Regime::Fedramp, Regime::CmmcL2, Regime::CmmcL3] {
            for rating in [RiskRating::High, RiskRating::Critical] {
                let mut f = ready(Completed);
                f.regime = regime;
                f.risk_rating = rating;
                f.verification_evidence = 0;
                assert_eq!(
                    codes(decide(&req(Closed), &f, "issm@example.org")),
                    vec!["verification_evidence_required"],
                    "{regime} {rating}"
                );
                f.verification_evidence = 1;
                assert!(decide(&req(Closed), &f, "issm@example.org").is_ok());
            }
        }
        let mut f = ready(Completed);
        f.verification_evidence = 0;
        f.risk_rating = RiskRating::Moderate;
        assert!(
            decide(&req(Closed), &f, "issm@example.org").is_ok(),
            "moderate"
        );
        f.risk_rating = RiskRating::Critical;
        for regime in [Regime::Emass, Regime::Custom] {
            f.regime = regime;
            assert!(
                decide(&req(Closed), &f, "issm@example.org").is_ok(),
                "{regime}"
            );
        }
    }

    #[test]
    fn risk_acceptance_rules() {
        let mut f = ready(InProgress);
        f.regime = Regime::CmmcL2;
        f.risk_acceptance_approved = false;
        f.residual_risk = None;
        f.open_milestones = 1;
        assert_eq!(
            codes(decide(&req(RiskAccepted), &f, "x")),
            vec![
                "risk_acceptance_forbidden",
                "risk_acceptance_review_required",
                "residual_risk_required",
                "open_milestones"
            ]
        );
        assert!(decide(&req(RiskAccepted), &ready(InProgress), "x").is_ok());
    }

    #[test]
    fn deferral_and_reopening_need_reasons() {
        let mut r = req(Deferred);
        r.comment = None;
        r.target_date = Some(date("2026-11-01"));
        assert_eq!(
            codes(decide(&r, &ready(Open), "x")),
            vec!["comment_required", "target_date_not_in_future"]
        );
        assert_eq!(
            decide(&req(Deferred), &ready(Open), "x").map(|t| t.scheduled_completion),
            Ok(Some(date("2027-03-31")))
        );
        let mut r = req(Open);
        r.comment = None;
        assert_eq!(
            codes(decide(&r, &ready(Closed), "x")),
            vec!["comment_required"]
        );
        assert_eq!(
            decide(&req(Open), &ready(Closed), "x").map(|t| t.clear_completion),
            Ok(true)
        );
    }

    #[test]
    fn decisions_are_closed_and_risk_accepted() {
        let decisions: Vec<_> = ItemStatus::ALL
            .iter()
            .copied()
            .filter(|s| is_decision(*s))
            .collect();
        assert_eq!(decisions, vec![Closed, RiskAccepted]);
    }
}
