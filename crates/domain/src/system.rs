//! The information system whose POA&M this is, and the header data of its POA&M.

use crate::ids::SystemId;
use crate::limits::{CONTACT, LIST, NARRATIVE, RESOURCE};
use crate::vocab::{ImpactLevel, Regime};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use validator::Validate;

/// A point of contact on the POA&M header.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Contact {
    #[validate(length(min = 1, max = "CONTACT"))]
    #[schema(min_length = 1, max_length = 100, example = "Morgan Reyes")]
    pub name: String,
    #[serde(default)]
    #[validate(email, length(max = "CONTACT"))]
    #[schema(max_length = 100, format = Email, example = "morgan.reyes@example.org")]
    pub email: Option<String>,
    #[serde(default)]
    #[validate(length(min = 1, max = "CONTACT"))]
    #[schema(min_length = 1, max_length = 100, example = "+1 555 0100")]
    pub phone: Option<String>,
}

/// The people on the POA&M header: system owner, ISSM and alternate ISSM.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Contacts {
    #[serde(default)]
    #[validate(nested)]
    pub system_owner: Option<Contact>,
    #[serde(default)]
    #[validate(nested)]
    pub issm: Option<Contact>,
    #[serde(default)]
    #[validate(nested)]
    pub alternate_issm: Option<Contact>,
}

/// The header block of the eMASS POA&M template (rows 2–6) beyond the system's name and
/// contacts: what `format=emass` exports write there.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmassHeader {
    /// Combatant Command, Service, Agency or Field Activity (`CC/S/A/FA:`).
    #[serde(default)]
    #[validate(length(min = 1, max = "CONTACT"))]
    #[schema(min_length = 1, max_length = 100, example = "NAVY")]
    pub ccsafa: Option<String>,
    /// The DoW (DoD) IT registration number, DITPR (`DoW IT Registration No:`).
    #[serde(default)]
    #[validate(length(min = 1, max = "CONTACT"))]
    #[schema(min_length = 1, max_length = 100, example = "12345")]
    pub it_registration: Option<String>,
    /// `System Type:` as eMASS lists it (e.g. `IS Major Application`, `IS Enclave`).
    #[serde(default)]
    #[validate(length(min = 1, max = "CONTACT"))]
    #[schema(min_length = 1, max_length = 100, example = "IS Major Application")]
    pub system_type: Option<String>,
    /// `OMB Project ID:`.
    #[serde(default)]
    #[validate(length(min = 1, max = "CONTACT"))]
    #[schema(min_length = 1, max_length = 100, example = "007-000001234")]
    pub omb_project_id: Option<String>,
    /// `Security Costs:` (in the organisation's currency).
    #[serde(default)]
    #[validate(range(min = 0.0, max = 1e12))]
    #[schema(minimum = 0.0, maximum = 1e12, example = 10000.0)]
    pub security_costs: Option<f64>,
    /// The POA&M's point of contact (`POC Name:`, `POC Phone:`, `POC E-Mail:`); without one
    /// the ISSM, then the system owner.
    #[serde(default)]
    #[validate(nested)]
    pub poc: Option<Contact>,
}

/// The writable content of a system: the body of a create, and what a merge patch applies to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = SystemWrite)]
pub struct SystemFields {
    #[validate(length(min = 1, max = "RESOURCE"))]
    #[schema(min_length = 1, max_length = 250, example = "Acme Cloud Payroll")]
    pub name: String,
    #[serde(default)]
    #[validate(length(min = 1, max = "NARRATIVE"))]
    #[schema(min_length = 1, max_length = 2000)]
    pub description: Option<String>,
    /// Company or agency name.
    #[serde(default)]
    #[validate(length(min = 1, max = "CONTACT"))]
    #[schema(min_length = 1, max_length = 100, example = "Acme Corporation")]
    pub organization: Option<String>,
    /// CAGE codes: five characters, digits and letters.
    #[serde(default)]
    #[validate(length(max = "LIST"))]
    #[schema(max_items = 500, example = json!(["1ABC2"]))]
    pub cage_codes: Vec<String>,
    #[serde(default)]
    pub impact_level: Option<ImpactLevel>,
    #[serde(default = "custom")]
    pub regime: Regime,
    #[serde(default)]
    #[validate(nested)]
    pub contacts: Contacts,
    /// The system's own deadline policy (days from detection per rating); without one the
    /// regime's applies (FedRAMP: 30/30/90/180; CMMC: 180 days from the Conditional status date).
    #[serde(default)]
    #[validate(nested)]
    pub deadline_policy: Option<crate::deadlines::Policy>,
    /// FedRAMP certification class (A–D): picks the cells of the 2026 timeframe tables.
    #[serde(default)]
    pub fedramp_class: Option<crate::vdr::FedrampClass>,
    /// The date the system follows FedRAMP's 2026 rules (VDR/VER) from; until then its items
    /// keep the legacy 30/30/90/180 deadlines. Needs `fedramp_class` and the `fedramp` regime.
    /// Setting or moving it recomputes the policy dates of unresolved items, recorded in their
    /// history.
    #[serde(default)]
    #[schema(example = "2026-12-07")]
    pub vdr_since: Option<NaiveDate>,
    /// Where the VDR-TFR-PVR clock of a reduced rating starts; null: `from_reduction`.
    #[serde(default)]
    pub vdr_clock: Option<crate::vdr::Clock>,
    /// The Certification Package Overview's URI, which FedRAMP's reports carry
    /// (`certificationPackageOverviewUri`).
    #[serde(default)]
    #[validate(url, length(max = "RESOURCE"))]
    #[schema(
        max_length = 250,
        example = "https://packages.example.org/acme-payroll/overview"
    )]
    pub certification_package_uri: Option<String>,
    /// The FedRAMP package identifier (`F` and ten digits, as the FedRAMP Marketplace lists it):
    /// the OSCAL export's `system-id`.
    #[serde(default)]
    #[validate(custom(function = "check_fedramp_id"))]
    #[schema(pattern = "^F[0-9]{10}$", example = "F1234567890")]
    pub fedramp_id: Option<String>,
    /// Reminder settings: milestone due-soon windows per risk (default critical 7, high 14,
    /// others 30 days) and the POA&M review cadence (default `monthly`; NISP: `quarterly`).
    #[serde(default)]
    #[validate(nested)]
    pub reminders: Option<crate::reminders::ReminderPolicy>,
    /// The eMASS POA&M header fields (CC/S/A/FA, IT registration, system type, OMB project id,
    /// security costs, POC).
    #[serde(default)]
    #[validate(nested)]
    pub emass: Option<EmassHeader>,
    /// The DSS (DCSA) Unique Identifier of the system's accreditation package: the NISP
    /// template's `DSS UID` header field.
    #[serde(default)]
    #[validate(length(min = 1, max = "CONTACT"))]
    #[schema(min_length = 1, max_length = 100, example = "UID-000123")]
    pub dss_uid: Option<String>,
    /// What the NISP template's C/W/S codes mean for this system (code to label, e.g.
    /// `{"C": "Client", "W": "Workstation", "S": "Server"}`): the meaning of C/W/S is not
    /// settled in any public source, so each organisation states its own. Items keep the raw
    /// code (`cws_code`); the NISP export writes the label beside it. Up to 50 codes of 1–20
    /// characters, labels of 1–100.
    #[serde(default)]
    #[validate(custom(function = "check_cws_labels"))]
    #[schema(example = json!({"C": "Client", "W": "Workstation", "S": "Server"}))]
    pub cws_labels: Option<std::collections::BTreeMap<String, String>>,
    /// Scan imports: default controls, informational findings, KEV deadlines, the saved CSV
    /// column mapping, the point of contact and resources of the items scans create.
    #[serde(default)]
    #[validate(custom(function = "check_scans"))]
    pub scans: Option<crate::scan::ScanSettings>,
}

fn check_scans(s: &crate::scan::ScanSettings) -> Result<(), validator::ValidationError> {
    s.check()
        .map_err(|v| validator::ValidationError::new(v.code).with_message(v.message.into()))
}

/// A C/W/S label map: at most 50 codes of 1–20 characters, labels of 1–100.
fn check_cws_labels(
    map: &std::collections::BTreeMap<String, String>,
) -> Result<(), validator::ValidationError> {
    let bad = |k: &String, v: &String| {
        !(1..=20).contains(&k.chars().count()) || !(1..=100).contains(&v.chars().count())
    };
    if map.len() > 50 || map.iter().any(|(k, v)| bad(k, v)) {
        Err(
            validator::ValidationError::new("invalid_cws_labels").with_message(
                "at most 50 codes of 1 to 20 characters, each with a label of 1 to 100".into(),
            ),
        )
    } else {
        Ok(())
    }
}

/// A FedRAMP package id: `F` and ten digits.
fn check_fedramp_id(id: &str) -> Result<(), validator::ValidationError> {
    let digits = id.strip_prefix('F').unwrap_or("");
    if digits.len() == 10 && digits.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(validator::ValidationError::new("invalid_fedramp_id")
            .with_message("a FedRAMP package id is F and ten digits (F1234567890)".into()))
    }
}

impl SystemFields {
    /// The system's VDR/VER regime, when it has one (the `fedramp` regime, a class and a date).
    pub fn vdr_regime(&self) -> Option<crate::vdr::Regime> {
        match (self.regime, self.fedramp_class, self.vdr_since) {
            (Regime::Fedramp, Some(class), Some(since)) => Some(crate::vdr::Regime {
                class,
                since,
                clock: self.vdr_clock.unwrap_or(crate::vdr::DEFAULT_CLOCK),
            }),
            _ => None,
        }
    }
}

fn custom() -> Regime {
    Regime::Custom
}

/// A stored system.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct System {
    pub id: SystemId,
    pub name: String,
    #[schema(required = true)]
    pub description: Option<String>,
    #[schema(required = true)]
    pub organization: Option<String>,
    pub cage_codes: Vec<String>,
    #[schema(required = true)]
    pub impact_level: Option<ImpactLevel>,
    pub regime: Regime,
    pub contacts: Contacts,
    #[schema(required = true)]
    pub deadline_policy: Option<crate::deadlines::Policy>,
    #[schema(required = true)]
    pub fedramp_class: Option<crate::vdr::FedrampClass>,
    #[schema(required = true)]
    pub vdr_since: Option<NaiveDate>,
    #[schema(required = true)]
    pub vdr_clock: Option<crate::vdr::Clock>,
    #[schema(required = true)]
    pub certification_package_uri: Option<String>,
    #[schema(required = true)]
    pub fedramp_id: Option<String>,
    #[schema(required = true)]
    pub reminders: Option<crate::reminders::ReminderPolicy>,
    #[schema(required = true)]
    pub emass: Option<EmassHeader>,
    #[schema(required = true)]
    pub dss_uid: Option<String>,
    #[schema(required = true)]
    pub cws_labels: Option<std::collections::BTreeMap<String, String>>,
    #[schema(required = true)]
    pub scans: Option<crate::scan::ScanSettings>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[schema(required = true)]
    pub archived_at: Option<DateTime<Utc>>,
}

/// The bookkeeping half of a system, kept by the store.
#[derive(Debug, Clone, PartialEq)]
pub struct SystemMeta {
    pub id: SystemId,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub archived_at: Option<DateTime<Utc>>,
}

impl System {
    pub fn assemble(meta: SystemMeta, f: SystemFields) -> System {
        System {
            id: meta.id,
            name: f.name,
            description: f.description,
            organization: f.organization,
            cage_codes: f.cage_codes,
            impact_level: f.impact_level,
            regime: f.regime,
            contacts: f.contacts,
            deadline_policy: f.deadline_policy,
            fedramp_class: f.fedramp_class,
            vdr_since: f.vdr_since,
            vdr_clock: f.vdr_clock,
            certification_package_uri: f.certification_package_uri,
            fedramp_id: f.fedramp_id,
            reminders: f.reminders,
            emass: f.emass,
            dss_uid: f.dss_uid,
            cws_labels: f.cws_labels,
            scans: f.scans,
            version: meta.version,
            created_at: meta.created_at,
            updated_at: meta.updated_at,
            archived_at: meta.archived_at,
        }
    }

    pub fn fields(&self) -> SystemFields {
        SystemFields {
            name: self.name.clone(),
            description: self.description.clone(),
            organization: self.organization.clone(),
            cage_codes: self.cage_codes.clone(),
            impact_level: self.impact_level,
            regime: self.regime,
            contacts: self.contacts.clone(),
            deadline_policy: self.deadline_policy.clone(),
            fedramp_class: self.fedramp_class,
            vdr_since: self.vdr_since,
            vdr_clock: self.vdr_clock,
            certification_package_uri: self.certification_package_uri.clone(),
            fedramp_id: self.fedramp_id.clone(),
            reminders: self.reminders.clone(),
            emass: self.emass.clone(),
            dss_uid: self.dss_uid.clone(),
            cws_labels: self.cws_labels.clone(),
            scans: self.scans.clone(),
        }
    }
}

/// Names of the system fields the server keeps.
pub const READ_ONLY_FIELDS: &[&str] = &["id", "version", "created_at", "updated_at", "archived_at"];
