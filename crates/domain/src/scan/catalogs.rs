//! Threat and control catalogs an operator loads (offline sites load the files they downloaded
//! elsewhere): CISA's Known Exploited Vulnerabilities (JSON), FIRST's EPSS scores (CSV, plain or
//! gzip), DISA's CCI list (`U_CCI_List.xml`).

use super::ParseError;
use chrono::NaiveDate;

/// CISA's KEV catalog, checked against its published JSON Schema's requirements.
#[derive(Debug, Clone, PartialEq)]
pub struct KevCatalog {
    /// `catalogVersion` (`2025.08.25`).
    pub version: String,
    /// `dateReleased`, as the file has it (RFC 3339).
    pub released: String,
    pub entries: Vec<KevEntry>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct KevEntry {
    pub cve: String,
    pub vendor_project: String,
    pub product: String,
    pub name: String,
    pub date_added: NaiveDate,
    pub due_date: NaiveDate,
    /// `knownRansomwareCampaignUse` is `Known`.
    pub ransomware: bool,
    /// `forensicTriage` (BOD 26-04) when present: `Yes` is true.
    pub forensic_triage: Option<bool>,
    pub required_action: String,
}

/// Reads and checks a KEV JSON document; every violation of the schema is listed with its
/// JSON pointer.
pub fn read_kev(bytes: &[u8]) -> Result<KevCatalog, Vec<ParseError>> {
    let _ = bytes;
    Err(vec![ParseError::new("", "not yet readable")])
}

/// FIRST's EPSS scores.
#[derive(Debug, Clone, PartialEq)]
pub struct EpssCatalog {
    /// From the first comment line (`#model_version:v2025.03.14,score_date:…`).
    pub model_version: Option<String>,
    pub score_date: Option<String>,
    pub entries: Vec<EpssEntry>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct EpssEntry {
    pub cve: String,
    /// Probability of exploitation in the next 30 days, 0–1.
    pub score: f64,
    /// 0–1.
    pub percentile: f64,
}

/// Reads an EPSS CSV, plain or gzip-compressed (recognised by its magic bytes).
pub fn read_epss(bytes: &[u8]) -> Result<EpssCatalog, ParseError> {
    let _ = bytes;
    Err(ParseError::new("", "not yet readable"))
}

/// DISA's CCI list.
#[derive(Debug, Clone, PartialEq)]
pub struct CciCatalog {
    /// `metadata/version`.
    pub version: String,
    pub publish_date: Option<String>,
    pub entries: Vec<CciEntry>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CciEntry {
    /// `CCI-000366`.
    pub id: String,
    /// The NIST SP 800-53 controls of the newest revision the item references (Rev 5, else 4,
    /// else 3), normalised (`AC-1 b 1` is `AC-1`, `AC-2 (4)` is `AC-2(4)`), without repeats.
    pub controls: Vec<String>,
    /// Which revision they come from: `5`, `4` or `3`.
    pub revision: String,
}

/// Reads a CCI list.
pub fn read_cci<R: std::io::BufRead>(input: R) -> Result<CciCatalog, ParseError> {
    let _ = input;
    Err(ParseError::new("", "not yet readable"))
}
