//! OSCAL Plan of Action and Milestones (JSON), following FedRAMP's conventions.
//!
//! [`writer`] renders items as OSCAL 1.1.2 or 1.2.1 ([`OscalVersion`]); [`reader`] turns a
//! document (OSCAL 1.0.x to 1.2.x) into typed item drafts, refusing dangling references (or
//! keeping out the items they touch, when asked) and accounting for every member it reads:
//! mapped, or listed as unmapped with the reason.

pub mod reader;
pub mod writer;

pub use reader::{
    read, FieldsDraft, ItemDraft, KeptOut, MilestoneDraft, OnDangling, Plan, ReadOptions, Unmapped,
    UnmappedReason,
};
pub use writer::*;

use crate::{DeviationKind, Level, RiskRating};
use serde::Deserialize;

/// The OSCAL version FedRAMP targets, and the default of an export.
pub const OSCAL_VERSION: &str = "1.1.2";
/// FedRAMP's namespace for its props.
pub const FEDRAMP_NS: &str = "https://fedramp.gov/ns/oscal";
/// This service's namespace, for the props that carry what OSCAL has no field for.
pub const POAM_NS: &str = "https://poam-service.dev/ns/oscal";
/// The facet system of likelihood, impact and risk values.
pub const FACET_SYSTEM: &str = "https://fedramp.gov";

/// The OSCAL versions an export can claim (and is validated against, in CI).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, utoipa::ToSchema)]
pub enum OscalVersion {
    /// OSCAL 1.1.2, the version FedRAMP targets.
    #[default]
    #[serde(rename = "1.1.2")]
    V1_1_2,
    /// OSCAL 1.2.1 (1.2.0's JSON schemas miss flags that 1.2.1 restores).
    #[serde(rename = "1.2.1")]
    V1_2_1,
}

impl OscalVersion {
    pub const ALL: &'static [OscalVersion] = &[OscalVersion::V1_1_2, OscalVersion::V1_2_1];

    pub fn as_str(self) -> &'static str {
        match self {
            OscalVersion::V1_1_2 => "1.1.2",
            OscalVersion::V1_2_1 => "1.2.1",
        }
    }
}

/// The namespace of the v5 uuids derived from internal ids.
const UUID_NAMESPACE: uuid::Uuid = uuid::Uuid::from_bytes([
    0x6f, 0x1c, 0x3e, 0x5a, 0x92, 0x4b, 0x4d, 0x0e, 0x8a, 0x77, 0x2c, 0x51, 0xd4, 0x0b, 0x9e, 0x13,
]);

/// A stable v5 uuid for the `kind` of OSCAL object made from the internal id `id`.
pub fn uuid_for(kind: &str, id: &str) -> String {
    uuid::Uuid::new_v5(&UUID_NAMESPACE, format!("{kind}:{id}").as_bytes()).to_string()
}

/// FedRAMP's prop of each deviation kind (on the risk).
fn deviation_prop(kind: DeviationKind) -> &'static str {
    match kind {
        DeviationKind::RiskAdjustment => "risk-adjustment",
        DeviationKind::FalsePositive => "false-positive",
        DeviationKind::OperationalRequirement => "operational-requirement",
    }
}

/// A control reference as OSCAL writes control ids (lower case, enhancements after a dot):
/// `SC-8(1)` is `sc-8.1`; 800-171 (`3.13.8`) and CMMC (`sc.l2-3.13.8`) ids are lower-cased.
pub fn control_to_oscal(control: &str) -> String {
    let c = control.trim().to_ascii_lowercase();
    match (c.find('('), c.strip_suffix(')')) {
        (Some(open), Some(body)) => format!("{}.{}", &c[..open], &body[open + 1..]),
        _ => c,
    }
}

/// An OSCAL control id back as this service writes it: `sc-8.1` is `SC-8(1)`, `ac-2` is `AC-2`.
pub fn control_from_oscal(id: &str) -> String {
    let c = id.trim().to_ascii_uppercase();
    // An 800-53 enhancement: two letters, a dash, digits, a dot, digits.
    let bytes = c.as_bytes();
    let family = bytes.len() > 3 && bytes[..2].iter().all(u8::is_ascii_alphabetic);
    if family && bytes[2] == b'-' {
        if let Some((base, enh)) = c[3..].split_once('.') {
            let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
            if digits(base) && digits(enh) {
                return format!("{}-{base}({enh})", &c[..2]);
            }
        }
    }
    c
}

/// The level of risk of a likelihood and an impact: NIST SP 800-30 Rev. 1, Appendix I,
/// Table I-2 ("Assessment Scale – Level of Risk (Combination of Likelihood and Impact)").
/// Rows are the likelihood (that threat events occur and result in adverse impacts), columns
/// the level of impact; e.g. likelihood Low with impact High is Low, likelihood High with
/// impact Moderate is Moderate.
pub fn level_of_risk(likelihood: Level, impact: Level) -> Level {
    use Level::{High as H, Low as L, Moderate as M, VeryHigh as VH, VeryLow as VL};
    // Columns: impact Very Low, Low, Moderate, High, Very High.
    const TABLE_I2: [[Level; 5]; 5] = [
        // likelihood Very Low
        [VL, VL, VL, L, L],
        // Low
        [VL, L, L, L, M],
        // Moderate
        [VL, L, M, M, H],
        // High
        [VL, L, M, H, VH],
        // Very High
        [VL, L, M, H, VH],
    ];
    let at = |l: Level| match l {
        VL => 0,
        L => 1,
        M => 2,
        H => 3,
        VH => 4,
    };
    TABLE_I2[at(likelihood)][at(impact)]
}

/// The service's risk rating of an 800-30 level (FedRAMP's scale has no "very low"; its
/// "critical" is 800-30's "very high").
pub fn rating_of_level(l: Level) -> RiskRating {
    match l {
        Level::VeryHigh => RiskRating::Critical,
        Level::High => RiskRating::High,
        Level::Moderate => RiskRating::Moderate,
        Level::Low | Level::VeryLow => RiskRating::Low,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_i2_of_sp_800_30() {
        use Level::*;
        assert_eq!(level_of_risk(Low, High), Low);
        assert_eq!(level_of_risk(High, Moderate), Moderate);
        assert_eq!(level_of_risk(High, High), High);
        assert_eq!(level_of_risk(VeryHigh, VeryHigh), VeryHigh);
        assert_eq!(level_of_risk(Moderate, VeryHigh), High);
        assert_eq!(level_of_risk(Low, VeryHigh), Moderate);
        assert_eq!(level_of_risk(VeryLow, High), Low);
        assert_eq!(level_of_risk(VeryLow, Moderate), VeryLow);
        assert_eq!(level_of_risk(Moderate, High), Moderate);
    }

    #[test]
    fn control_ids_travel_in_oscal_form() {
        for (ours, theirs) in [
            ("SC-8(1)", "sc-8.1"),
            ("AC-2", "ac-2"),
            ("3.13.8", "3.13.8"),
            ("SC.L2-3.13.8", "sc.l2-3.13.8"),
            ("AC-2(12)", "ac-2.12"),
        ] {
            assert_eq!(control_to_oscal(ours), theirs);
            assert_eq!(control_from_oscal(theirs), ours);
        }
    }
}
