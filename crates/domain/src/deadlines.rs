//! Deadline policies: data, not code. An item's scheduled completion date defaults from its
//! system's policy, and the item says which rule set it (`deadline_rule`); a date a person set
//! is never recomputed.

use crate::vocab::{Regime, RiskRating};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use validator::Validate;

/// The rule name of a date a person set.
pub const MANUAL: &str = "manual";

/// A custom policy: days from detection per risk rating (a rating left out gets no default).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    #[serde(default)]
    #[validate(range(min = 1, max = 3650))]
    #[schema(minimum = 1, maximum = 3650, example = 15)]
    pub critical: Option<u32>,
    #[serde(default)]
    #[validate(range(min = 1, max = 3650))]
    #[schema(minimum = 1, maximum = 3650, example = 30)]
    pub high: Option<u32>,
    #[serde(default)]
    #[validate(range(min = 1, max = 3650))]
    #[schema(minimum = 1, maximum = 3650, example = 90)]
    pub moderate: Option<u32>,
    #[serde(default)]
    #[validate(range(min = 1, max = 3650))]
    #[schema(minimum = 1, maximum = 3650, example = 180)]
    pub low: Option<u32>,
}

impl Policy {
    fn days(&self, rating: RiskRating) -> Option<u32> {
        match rating {
            RiskRating::Critical => self.critical,
            RiskRating::High => self.high,
            RiskRating::Moderate => self.moderate,
            RiskRating::Low => self.low,
        }
    }
}

/// FedRAMP's remediation deadlines from discovery: Critical and High 30 days, Moderate 90,
/// Low 180 (FedRAMP Continuous Monitoring Strategy Guide).
pub const FEDRAMP: Policy = Policy {
    critical: Some(30),
    high: Some(30),
    moderate: Some(90),
    low: Some(180),
};

/// What decides an item's default deadline.
#[derive(Debug, Clone, PartialEq)]
pub struct Context {
    pub regime: Regime,
    /// The system's own policy; it takes precedence over the regime's.
    pub custom: Option<Policy>,
    /// CMMC: the Conditional status date (the POA&M closes out within 180 days of it).
    pub conditional_status_date: Option<NaiveDate>,
    /// FedRAMP 2026 (VDR/VER): the system's class, since when and its clock. From `since` on,
    /// it replaces the legacy 30/30/90/180 policy (and a custom one) for the system's items.
    pub vdr: Option<crate::vdr::Regime>,
    /// CISA's KEV due date binds when earlier than the policy's (the system's
    /// `scans.kev_deadlines`; FedRAMP's by default).
    pub kev_deadlines: bool,
}

/// The default scheduled completion and the rule that sets it, if any rule applies.
pub fn default_deadline(
    ctx: &Context,
    rating: RiskRating,
    detected_on: NaiveDate,
) -> Option<(NaiveDate, String)> {
    let from_detection = |policy: &Policy, name: &str| {
        policy
            .days(rating)
            .and_then(|d| detected_on.checked_add_days(chrono::Days::new(u64::from(d))))
            .map(|date| {
                (
                    date,
                    format!("{name}:{rating}:{}d", policy.days(rating).unwrap_or(0)),
                )
            })
    };
    if let Some(custom) = &ctx.custom {
        return from_detection(custom, "custom");
    }
    match ctx.regime {
        Regime::Fedramp => from_detection(&FEDRAMP, "fedramp"),
        Regime::CmmcL2 | Regime::CmmcL3 => ctx.conditional_status_date.map(|d| {
            (
                d + chrono::Days::new(crate::cmmc::CLOSEOUT_DAYS),
                "cmmc:conditional_status_date+180d".to_owned(),
            )
        }),
        Regime::Emass | Regime::Custom => None,
    }
}

/// The scheduled completion and rule an item ends up with after a write: a date the writer
/// changed is theirs (`manual`), cleared or never set it follows the policy, and a date the
/// policy set follows the policy again (its rating or detection date may have moved).
pub fn resolve(
    ctx: &Context,
    rating: RiskRating,
    detected_on: NaiveDate,
    before: Option<(Option<NaiveDate>, Option<&str>)>,
    requested: Option<NaiveDate>,
) -> (Option<NaiveDate>, Option<String>) {
    if by_person(before, requested) {
        return (requested, Some(MANUAL.to_owned()));
    }
    match default_deadline(ctx, rating, detected_on) {
        Some((date, rule)) => (Some(date), Some(rule)),
        // No rule applies: a date the old policy set stays, unattributed, until one does.
        None => (requested, None),
    }
}

/// Whether the date after a write is a person's: a date sent on creation, a changed date on
/// update, or an unchanged one a person had set.
fn by_person(
    before: Option<(Option<NaiveDate>, Option<&str>)>,
    requested: Option<NaiveDate>,
) -> bool {
    match before {
        // Creation: a date sent is the person's.
        None => requested.is_some(),
        // Update: a changed date is the person's; an unchanged one keeps its origin.
        Some((previous, rule)) => {
            if requested != previous {
                requested.is_some()
            } else {
                rule == Some(MANUAL)
            }
        }
    }
}

/// An item's deadlines after a write: its scheduled completion and the rule that set it, and
/// under FedRAMP's 2026 rules its VDR/VER schedule.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved {
    pub scheduled_completion: Option<NaiveDate>,
    pub rule: Option<String>,
    pub vdr: Option<crate::vdr::Schedule>,
}

/// [`resolve`] over the whole item: from the system's `vdr_since` on (`today` reached it),
/// FedRAMP's 2026 tables decide — the scheduled completion is the earliest pending deadline
/// (evaluation, reduction, KEV, the 192-day line) and `deadline_rule` names its rule and cell
/// (`fedramp-vdr:VDR-TFR-PVR:D:N5:irv_lev:12h`); a person's date stays theirs, while the VDR
/// schedule is computed all the same. Before that date the legacy policy applies.
pub fn resolve_item(
    ctx: &Context,
    f: &crate::item::ItemFields,
    before: Option<(Option<NaiveDate>, Option<&str>)>,
    today: NaiveDate,
) -> Resolved {
    let requested = f.scheduled_completion;
    let Some(regime) = ctx.vdr.filter(|r| r.applies(today)) else {
        let (scheduled_completion, rule) =
            resolve(ctx, f.risk_rating, f.detected_on, before, requested);
        return Resolved {
            scheduled_completion,
            rule,
            vdr: None,
        };
    };
    let schedule = crate::vdr::schedule(
        &crate::vdr::FEDRAMP_2026,
        &regime,
        f.evaluation.as_ref(),
        f.detected_on,
    );
    let (scheduled_completion, rule) = if by_person(before, requested) {
        (requested, Some(MANUAL.to_owned()))
    } else {
        match schedule.governing(f.evaluation.as_ref()) {
            Some(d) => (Some(d.date()), Some(d.rule.clone())),
            None => (requested, None),
        }
    };
    Resolved {
        scheduled_completion,
        rule,
        vdr: Some(schedule),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap_or_default()
    }

    fn fedramp() -> Context {
        Context {
            regime: Regime::Fedramp,
            custom: None,
            conditional_status_date: None,
            vdr: None,
            kev_deadlines: false,
        }
    }

    #[test]
    fn fedramp_counts_from_detection_by_rating() {
        let at = d("2026-10-01");
        assert_eq!(
            default_deadline(&fedramp(), RiskRating::Critical, at),
            Some((d("2026-10-31"), "fedramp:critical:30d".into()))
        );
        assert_eq!(
            default_deadline(&fedramp(), RiskRating::High, at).map(|x| x.0),
            Some(d("2026-10-31"))
        );
        assert_eq!(
            default_deadline(&fedramp(), RiskRating::Moderate, at).map(|x| x.0),
            Some(d("2026-12-30"))
        );
        assert_eq!(
            default_deadline(&fedramp(), RiskRating::Low, at).map(|x| x.0),
            Some(d("2027-03-30"))
        );
    }

    #[test]
    fn cmmc_counts_from_the_conditional_status_date_and_custom_policies_win() {
        let cmmc = Context {
            regime: Regime::CmmcL2,
            custom: None,
            conditional_status_date: Some(d("2026-10-01")),
            vdr: None,
            kev_deadlines: false,
        };
        assert_eq!(
            default_deadline(&cmmc, RiskRating::Low, d("2026-01-01")),
            Some((d("2027-03-30"), "cmmc:conditional_status_date+180d".into()))
        );
        let no_date = Context {
            conditional_status_date: None,
            ..cmmc
        };
        assert_eq!(
            default_deadline(&no_date, RiskRating::Low, d("2026-01-01")),
            None
        );
        let custom = Context {
            custom: Some(Policy {
                critical: None,
                high: Some(14),
                moderate: None,
                low: None,
            }),
            ..fedramp()
        };
        assert_eq!(
            default_deadline(&custom, RiskRating::High, d("2026-10-01")),
            Some((d("2026-10-15"), "custom:high:14d".into()))
        );
        assert_eq!(
            default_deadline(&custom, RiskRating::Low, d("2026-10-01")),
            None
        );
        let emass = Context {
            regime: Regime::Emass,
            custom: None,
            conditional_status_date: None,
            vdr: None,
            kev_deadlines: false,
        };
        assert_eq!(
            default_deadline(&emass, RiskRating::High, d("2026-10-01")),
            None
        );
    }

    #[test]
    fn the_2026_rules_take_over_on_vdr_since_and_name_the_cell() {
        use crate::vdr::{Clock, FedrampClass, Regime as Vdr};
        let mut f: crate::item::ItemFields = serde_json::from_value(serde_json::json!({
            "title": "t", "description": "d", "risk_rating": "high",
            "detected_on": "2026-12-01", "source": {"kind": "scan"},
            "evaluation": {"detected_at": "2026-12-01T08:00:00Z", "detection_source": "scanner",
              "evaluated_at": "2026-12-01T20:00:00Z", "internet_reachable": true,
              "likely_exploitable": true, "agency_impact": "N5"}
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        let ctx = Context {
            vdr: Some(Vdr {
                class: FedrampClass::D,
                since: d("2026-12-07"),
                clock: Clock::FromReduction,
            }),
            ..fedramp()
        };
        // Before vdr_since: the legacy 30 days.
        let legacy = resolve_item(&ctx, &f, None, d("2026-12-02"));
        assert_eq!(
            (
                legacy.scheduled_completion,
                legacy.rule.as_deref(),
                legacy.vdr
            ),
            (Some(d("2026-12-31")), Some("fedramp:high:30d"), None)
        );
        // From it: the 12-hour cell, with its rule.
        let now = resolve_item(&ctx, &f, None, d("2026-12-07"));
        assert_eq!(now.scheduled_completion, Some(d("2026-12-02")));
        assert_eq!(
            now.rule.as_deref(),
            Some("fedramp-vdr:VDR-TFR-PVR:D:N5:irv_lev:12h")
        );
        assert!(now.vdr.is_some_and(|s| s.reduction.is_some()));
        // A person's date stays theirs.
        f.scheduled_completion = Some(d("2027-01-01"));
        let manual = resolve_item(&ctx, &f, None, d("2026-12-07"));
        assert_eq!(manual.rule.as_deref(), Some(MANUAL));
        assert!(manual.vdr.is_some());
    }

    #[test]
    fn a_person_s_date_is_never_recomputed() {
        let at = d("2026-10-01");
        // Created without a date: the policy's.
        assert_eq!(
            resolve(&fedramp(), RiskRating::High, at, None, None),
            (Some(d("2026-10-31")), Some("fedramp:high:30d".into()))
        );
        // Created with one: the person's.
        assert_eq!(
            resolve(
                &fedramp(),
                RiskRating::High,
                at,
                None,
                Some(d("2026-12-01"))
            ),
            (Some(d("2026-12-01")), Some(MANUAL.into()))
        );
        // The rating moves on a policy date: recomputed.
        let policy_before = Some((Some(d("2026-10-31")), Some("fedramp:high:30d")));
        assert_eq!(
            resolve(
                &fedramp(),
                RiskRating::Low,
                at,
                policy_before,
                Some(d("2026-10-31"))
            )
            .0,
            Some(d("2027-03-30"))
        );
        // The rating moves on a person's date: kept.
        let manual_before = Some((Some(d("2026-12-01")), Some(MANUAL)));
        assert_eq!(
            resolve(
                &fedramp(),
                RiskRating::Low,
                at,
                manual_before,
                Some(d("2026-12-01"))
            ),
            (Some(d("2026-12-01")), Some(MANUAL.into()))
        );
        // A person clears it: the policy again.
        assert_eq!(
            resolve(&fedramp(), RiskRating::High, at, manual_before, None),
            (Some(d("2026-10-31")), Some("fedramp:high:30d".into()))
        );
    }
}
