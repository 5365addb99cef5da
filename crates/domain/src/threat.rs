//! What the threat catalogs and scans say about an item: KEV membership and due date, EPSS,
//! when its finding was last seen. Derived by the service, never written by a client.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The item's CVE in CISA's KEV catalog (of several, the earliest due date).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Kev {
    #[schema(example = "CVE-2024-3094")]
    pub cve: String,
    pub date_added: NaiveDate,
    /// CISA's due date for the required action.
    pub due_date: NaiveDate,
    /// `knownRansomwareCampaignUse` is `Known`.
    pub ransomware: bool,
    /// BOD 26-04's forensic triage, when the catalog says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forensic_triage: Option<bool>,
    /// The catalog's `catalogVersion`.
    #[schema(example = "2026.11.30")]
    pub catalog_version: String,
}

/// FIRST's EPSS score of the item's CVE (of several, the highest).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Epss {
    #[schema(example = "CVE-2024-3094")]
    pub cve: String,
    /// Probability of exploitation in the next 30 days, 0–1.
    #[schema(example = 0.94)]
    pub score: f64,
    /// 0–1.
    #[schema(example = 0.999)]
    pub percentile: f64,
    /// The catalog's model version and score date, as loaded.
    pub catalog_version: String,
}

/// A scan that reported the item's finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Seen {
    pub scan_id: uuid::Uuid,
    pub at: DateTime<Utc>,
}

/// The KEV entry that governs: the earliest due date.
pub fn governing_kev(entries: impl IntoIterator<Item = Kev>) -> Option<Kev> {
    entries
        .into_iter()
        .min_by(|a, b| a.due_date.cmp(&b.due_date).then(a.cve.cmp(&b.cve)))
}

/// The EPSS score shown: the highest.
pub fn governing_epss(entries: impl IntoIterator<Item = Epss>) -> Option<Epss> {
    entries
        .into_iter()
        .max_by(|a, b| a.score.total_cmp(&b.score).then_with(|| b.cve.cmp(&a.cve)))
}

/// The rule name of a deadline CISA's KEV due date set: `kev:CVE-2024-3094`.
pub fn kev_rule(cve: &str) -> String {
    format!("kev:{cve}")
}

/// A policy's deadline, moved to the KEV due date when that is earlier (FedRAMP VDR-TFR-KEV,
/// BOD 26-04): never a date a person set (`manual`). Returns the new date and rule, or `None`
/// to keep the policy's.
pub fn kev_deadline(
    policy: (Option<NaiveDate>, Option<&str>),
    kev: Option<&Kev>,
) -> Option<(NaiveDate, String)> {
    let kev = kev?;
    let (date, rule) = policy;
    if rule == Some(crate::deadlines::MANUAL) {
        return None;
    }
    match date {
        Some(d) if d <= kev.due_date => None,
        _ => Some((kev.due_date, kev_rule(&kev.cve))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kev(cve: &str, due: &str) -> Kev {
        Kev {
            cve: cve.into(),
            date_added: NaiveDate::default(),
            due_date: due.parse().unwrap_or_default(),
            ransomware: false,
            forensic_triage: None,
            catalog_version: "2026.11.30".into(),
        }
    }

    #[test]
    fn the_earliest_due_date_governs() {
        let k = governing_kev([
            kev("CVE-2024-0002", "2026-12-20"),
            kev("CVE-2024-0001", "2026-12-10"),
        ]);
        assert_eq!(k.map(|k| k.cve), Some("CVE-2024-0001".to_owned()));
    }

    #[test]
    fn an_earlier_kev_date_replaces_the_policy_but_never_a_person() {
        let k = kev("CVE-2024-0001", "2026-12-10");
        let policy = "2027-01-01".parse().ok();
        assert_eq!(
            kev_deadline((policy, Some("fedramp:high:30d")), Some(&k)),
            Some((k.due_date, "kev:CVE-2024-0001".into()))
        );
        assert_eq!(kev_deadline((policy, Some("manual")), Some(&k)), None);
        let earlier = "2026-12-01".parse().ok();
        assert_eq!(
            kev_deadline((earlier, Some("fedramp:high:30d")), Some(&k)),
            None
        );
        assert_eq!(
            kev_deadline((None, None), Some(&k)),
            Some((k.due_date, "kev:CVE-2024-0001".into()))
        );
    }
}
