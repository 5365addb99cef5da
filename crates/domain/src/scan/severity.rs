//! Severity to risk rating: a table per regime, data rather than code, stated in every scan
//! import's answer and in the docs.
//!
//! - DoD (eMASS, CMMC): a STIG CAT I is high, CAT II moderate, CAT III low (DISA's categories
//!   map to the RMF's Very High/High…; this service's ratings stop at critical, which DoD
//!   practice reserves for no scanner category); a Nessus critical or high is a CAT I, so high.
//! - FedRAMP (and custom systems): Nessus critical is critical, high high, medium moderate,
//!   low low, as FedRAMP's ConMon guide takes the scanner's CVSS-based rating; CATs as DoD.
//! - SARIF: `error` high, `warning` moderate, `note` low, everywhere.

use super::Severity;
use crate::vocab::{Regime, RiskRating};
use serde::Serialize;
use utoipa::ToSchema;

/// One row of a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[schema(as = SeverityRow)]
pub struct Row {
    pub severity: Severity,
    pub label: &'static str,
    pub risk_rating: RiskRating,
}

/// A regime's table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[schema(as = SeverityTable)]
pub struct Table {
    /// `dod` or `fedramp`.
    pub name: &'static str,
    pub rows: Vec<Row>,
}

const COMMON: [(Severity, RiskRating); 10] = [
    (Severity::NessusLow, RiskRating::Low),
    (Severity::NessusMedium, RiskRating::Moderate),
    (Severity::NessusHigh, RiskRating::High),
    (Severity::Cat3, RiskRating::Low),
    (Severity::Cat2, RiskRating::Moderate),
    (Severity::Cat1, RiskRating::High),
    (Severity::SarifNote, RiskRating::Low),
    (Severity::SarifWarning, RiskRating::Moderate),
    (Severity::SarifError, RiskRating::High),
    (Severity::Info, RiskRating::Low),
];

const WORDS: [(Severity, RiskRating); 4] = [
    (Severity::Critical, RiskRating::Critical),
    (Severity::High, RiskRating::High),
    (Severity::Moderate, RiskRating::Moderate),
    (Severity::Low, RiskRating::Low),
];

/// The table a system's regime uses.
pub fn table(regime: Regime) -> Table {
    let (name, critical) = match regime {
        Regime::Emass | Regime::CmmcL2 | Regime::CmmcL3 => ("dod", RiskRating::High),
        Regime::Fedramp | Regime::Custom => ("fedramp", RiskRating::Critical),
    };
    let mut rows: Vec<Row> = COMMON
        .iter()
        .chain(WORDS.iter())
        .map(|&(severity, risk_rating)| Row {
            severity,
            label: severity.label(),
            risk_rating,
        })
        .collect();
    rows.push(Row {
        severity: Severity::NessusCritical,
        label: Severity::NessusCritical.label(),
        risk_rating: critical,
    });
    rows.sort_by_key(|r| r.severity);
    Table { name, rows }
}

impl Table {
    /// The rating of `severity`; every severity has a row.
    pub fn rating(&self, severity: Severity) -> RiskRating {
        self.rows
            .iter()
            .find(|r| r.severity == severity)
            .map(|r| r.risk_rating)
            .unwrap_or(RiskRating::Low)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dod_takes_cat_one_and_nessus_critical_as_high() {
        let t = table(Regime::Emass);
        assert_eq!(t.rating(Severity::Cat1), RiskRating::High);
        assert_eq!(t.rating(Severity::NessusCritical), RiskRating::High);
        assert_eq!(t.rating(Severity::Cat3), RiskRating::Low);
    }

    #[test]
    fn fedramp_keeps_nessus_critical_critical() {
        let t = table(Regime::Fedramp);
        assert_eq!(t.rating(Severity::NessusCritical), RiskRating::Critical);
        assert_eq!(t.rating(Severity::NessusMedium), RiskRating::Moderate);
        assert_eq!(t.rating(Severity::SarifError), RiskRating::High);
    }

    #[test]
    fn every_severity_has_one_row() {
        for regime in Regime::ALL {
            let t = table(*regime);
            assert_eq!(t.rows.len(), 15, "{regime:?}");
        }
    }
}
