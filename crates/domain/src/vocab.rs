//! The closed vocabularies of the domain. Each has one spelling on the wire and in storage
//! (`snake_case`), parsed back with [`std::str::FromStr`].

use std::fmt;

/// The error of parsing a vocabulary word: names the vocabulary and lists what it accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownWord {
    pub vocabulary: &'static str,
    pub word: String,
    pub expected: &'static [&'static str],
}

impl fmt::Display for UnknownWord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` is not a {}; expected one of: {}",
            self.word,
            self.vocabulary,
            self.expected.join(", ")
        )
    }
}

macro_rules! vocabulary_pub {
    ($(#[$meta:meta])* $name:ident, $label:literal { $($(#[$vmeta:meta])* $variant:ident => $word:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $word)] $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            pub const WORDS: &'static [&'static str] = &[$($word),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $word),+
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::vocab::UnknownWord;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($word => Ok($name::$variant),)+
                    _ => Err($crate::vocab::UnknownWord { vocabulary: $label, word: s.to_owned(), expected: Self::WORDS }),
                }
            }
        }
    };
}
pub(crate) use vocabulary_pub;
use vocabulary_pub as vocabulary;

vocabulary!(
    /// The compliance regime whose rules and deadlines govern a system's POA&M.
    Regime, "regime" {
        Fedramp => "fedramp",
        CmmcL2 => "cmmc_l2",
        CmmcL3 => "cmmc_l3",
        Emass => "emass",
        Custom => "custom",
    }
);

vocabulary!(
    /// FIPS 199 security categorisation of the system.
    ImpactLevel, "impact level" {
        Low => "low",
        Moderate => "moderate",
        High => "high",
    }
);

vocabulary!(
    /// Risk rating of a weakness (FedRAMP's scale; deadlines are set from it).
    RiskRating, "risk rating" {
        Critical => "critical",
        High => "high",
        Moderate => "moderate",
        Low => "low",
    }
);

vocabulary!(
    /// A qualitative level (NIST SP 800-30 scale; eMASS severity), used for likelihood and impact.
    Level, "level" {
        VeryLow => "very_low",
        Low => "low",
        Moderate => "moderate",
        High => "high",
        VeryHigh => "very_high",
    }
);

vocabulary!(
    /// Where an item stands in its remediation.
    ItemStatus, "item status" {
        /// Known, not yet being worked.
        Open => "open",
        /// Remediation under way.
        InProgress => "in_progress",
        /// Remediated, awaiting independent verification.
        Completed => "completed",
        /// Remediation verified; the item is closed.
        Closed => "closed",
        /// Postponed for a valid reason (funding, dependency), with a new target date.
        Deferred => "deferred",
        /// The residual risk was formally accepted by an authorising official.
        RiskAccepted => "risk_accepted",
    }
);

vocabulary!(
    /// How a weakness was found.
    SourceKind, "source kind" {
        Assessment => "assessment",
        Scan => "scan",
        PenTest => "pen_test",
        Audit => "audit",
        Incident => "incident",
        SelfAssessment => "self_assessment",
        ContinuousMonitoring => "continuous_monitoring",
    }
);

vocabulary!(
    /// FedRAMP's three kinds of deviation request.
    DeviationKind, "deviation kind" {
        RiskAdjustment => "risk_adjustment",
        FalsePositive => "false_positive",
        OperationalRequirement => "operational_requirement",
    }
);

vocabulary!(
    /// Where a deviation request stands (FedRAMP: Pending or Yes).
    DeviationStatus, "deviation status" {
        Pending => "pending",
        Approved => "approved",
        Rejected => "rejected",
    }
);

impl RiskRating {
    /// Severity rank, higher is worse: the sort key for "most severe first".
    pub fn rank(self) -> i32 {
        match self {
            RiskRating::Critical => 4,
            RiskRating::High => 3,
            RiskRating::Moderate => 2,
            RiskRating::Low => 1,
        }
    }
}

impl ItemStatus {
    /// Statuses in which a scheduled completion date still binds (an item past it is overdue).
    pub fn is_active(self) -> bool {
        matches!(
            self,
            ItemStatus::Open | ItemStatus::InProgress | ItemStatus::Deferred
        )
    }

    /// Statuses that are an approver's decision, not an editor's work.
    pub fn is_decision(self) -> bool {
        matches!(self, ItemStatus::Closed | ItemStatus::RiskAccepted)
    }

    /// The statuses that count for the overdue filter.
    pub fn active() -> impl Iterator<Item = ItemStatus> {
        Self::ALL.iter().copied().filter(|s| s.is_active())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_word_round_trips_and_matches_serde() {
        for s in ItemStatus::ALL {
            assert_eq!(s.as_str().parse::<ItemStatus>().ok(), Some(*s));
            let json = serde_json::to_string(s).unwrap_or_default();
            assert_eq!(json, format!("\"{}\"", s.as_str()));
        }
        for r in Regime::ALL {
            assert_eq!(r.as_str().parse::<Regime>().ok(), Some(*r));
        }
    }

    #[test]
    fn unknown_words_name_the_vocabulary_and_the_choices() {
        let err = match "urgent".parse::<RiskRating>() {
            Err(e) => e,
            Ok(r) => panic!("parsed {r}"),
        };
        assert_eq!(
            err.to_string(),
            "`urgent` is not a risk rating; expected one of: critical, high, moderate, low"
        );
    }

    #[test]
    fn severity_rank_orders_critical_first() {
        let mut all = RiskRating::ALL.to_vec();
        all.sort_by_key(|r| std::cmp::Reverse(r.rank()));
        assert_eq!(
            all,
            vec![
                RiskRating::Critical,
                RiskRating::High,
                RiskRating::Moderate,
                RiskRating::Low
            ]
        );
    }

    #[test]
    fn only_unresolved_statuses_can_be_overdue() {
        let active: Vec<_> = ItemStatus::active().collect();
        assert_eq!(
            active,
            vec![
                ItemStatus::Open,
                ItemStatus::InProgress,
                ItemStatus::Deferred
            ]
        );
    }
}
