//! The POA&M item: a weakness of a system and the plan to remediate it.

use crate::ids::{ItemId, SystemId};
use crate::limits::{CONTACT, LIST, NARRATIVE, RESOURCE};
use crate::vocab::{DeviationKind, DeviationStatus, ItemStatus, Level, RiskRating, SourceKind};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use validator::Validate;

/// A named person: the item's owner (accountable) or implementer (responsible).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Person {
    #[validate(length(min = 1, max = "CONTACT"))]
    #[schema(min_length = 1, max_length = 100, example = "Dana Whitfield")]
    pub name: String,
    #[serde(default)]
    #[validate(email, length(max = "CONTACT"))]
    #[schema(max_length = 100, format = Email, example = "dana.whitfield@example.org")]
    pub email: Option<String>,
}

/// How the weakness was found: FedRAMP's "Weakness Detector Source" and "Weakness Source
/// Identifier".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Source {
    pub kind: SourceKind,
    /// The tool or team that found it (scanner name, assessor).
    #[serde(default)]
    #[validate(length(min = 1, max = "CONTACT"))]
    #[schema(min_length = 1, max_length = 100, example = "Tenable Nessus")]
    pub detector: Option<String>,
    /// The detector's own id of the finding (plugin id, rule id).
    #[serde(default)]
    #[validate(length(min = 1, max = "RESOURCE"))]
    #[schema(min_length = 1, max_length = 250, example = "plugin 187315")]
    pub identifier: Option<String>,
    /// What the detector reported about the finding, by name (`plugin_name`, `rule_id`,
    /// `stig_id`, `severity`, `cvss3_base_score`, `solution`, `finding_details`…): set by scan
    /// imports, kept as written. Up to 64 entries; names up to 64 characters, values up to
    /// 4,000.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    #[validate(custom(function = "check_source_details"))]
    #[schema(example = json!({"plugin_name": "TLS Version 1.0 Protocol Detection", "severity": "Nessus 2 (Medium)"}))]
    pub details: std::collections::BTreeMap<String, String>,
}

/// Entries of [`Source::details`].
pub const SOURCE_DETAILS_MAX: usize = 64;
/// Characters of one value of [`Source::details`].
pub const SOURCE_DETAIL_CHARS: usize = 4000;

fn check_source_details(
    d: &std::collections::BTreeMap<String, String>,
) -> Result<(), validator::ValidationError> {
    if d.len() > SOURCE_DETAILS_MAX {
        return Err(validator::ValidationError::new("too_many")
            .with_message(format!("at most {SOURCE_DETAILS_MAX} entries").into()));
    }
    for (k, v) in d {
        if k.is_empty() || k.chars().count() > 64 {
            return Err(validator::ValidationError::new("length")
                .with_message("names are 1 to 64 characters".into()));
        }
        if v.chars().count() > SOURCE_DETAIL_CHARS {
            return Err(validator::ValidationError::new("length").with_message(
                format!("values are at most {SOURCE_DETAIL_CHARS} characters").into(),
            ));
        }
    }
    Ok(())
}

fn check_ccis(ccis: &[String]) -> Result<(), validator::ValidationError> {
    let ok = |c: &str| {
        c.strip_prefix("CCI-")
            .is_some_and(|n| n.len() == 6 && n.bytes().all(|b| b.is_ascii_digit()))
    };
    if ccis.len() > 500 {
        return Err(
            validator::ValidationError::new("length").with_message("at most 500 CCIs".into())
        );
    }
    match ccis.iter().find(|c| !ok(c)) {
        Some(bad) => Err(validator::ValidationError::new("pattern")
            .with_message(format!("`{bad}` is not a CCI id (CCI-000366)").into())),
        None => Ok(()),
    }
}

/// Resources required for the remediation (eMASS's "resources", FedRAMP's column I).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    #[serde(default)]
    #[validate(length(min = 1, max = "RESOURCE"))]
    #[schema(
        min_length = 1,
        max_length = 250,
        example = "Two engineer-weeks and a FIPS 140-3 HSM"
    )]
    pub description: Option<String>,
    /// Estimated cost in the organisation's currency.
    #[serde(default)]
    #[validate(range(min = 0.0, max = 1e12))]
    #[schema(minimum = 0.0, maximum = 1e12, example = 12000.0)]
    pub estimated_cost: Option<f64>,
    #[serde(default)]
    #[validate(range(min = 0.0, max = 1e7))]
    #[schema(minimum = 0.0, maximum = 1e7, example = 80.0)]
    pub hours: Option<f64>,
    #[serde(default)]
    pub funded: Option<bool>,
    /// A recurring cost (licence, subscription) rather than a one-time one.
    #[serde(default)]
    pub recurring: Option<bool>,
}

/// A deviation request: risk adjustment, false positive or operational requirement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Deviation {
    pub kind: DeviationKind,
    #[serde(default = "pending")]
    pub status: DeviationStatus,
    #[validate(length(min = 1, max = "NARRATIVE"))]
    #[schema(min_length = 1, max_length = 2000)]
    pub rationale: String,
    /// The last day the approved deviation (and a risk acceptance resting on it: eMASS's
    /// "Requested Risk Accepted Expiration Date") holds; the scheduler reminds before it and
    /// says when it has lapsed. After the detection date, and for a pending request after
    /// today (its decision is today or later).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "2027-06-30")]
    pub expires_on: Option<NaiveDate>,
}

fn pending() -> DeviationStatus {
    DeviationStatus::Pending
}

/// The remediation waits on a vendor (FedRAMP: check in at least monthly).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VendorDependency {
    #[validate(length(min = 1, max = "RESOURCE"))]
    #[schema(min_length = 1, max_length = 250, example = "Acme VPN appliance 9.2")]
    pub product: String,
    #[serde(default)]
    #[validate(length(min = 1, max = "CONTACT"))]
    #[schema(min_length = 1, max_length = 100)]
    pub vendor: Option<String>,
    #[serde(default)]
    pub last_check_in: Option<NaiveDate>,
}

crate::vocab::vocabulary_pub!(
    /// The operational impact of a change (seed practice 9): what the implementation may
    /// disturb.
    OperationalImpact, "operational impact" {
        NoImpact => "none",
        Low => "low",
        Moderate => "moderate",
        High => "high",
    }
);

/// Change management of the remediation (seed practice 9): the change ticket, testing before
/// implementation, the approval authority, rollback, communication, the implementation window
/// (RFC 3339 timestamps; `window_end` not before `window_start`), the operational impact and
/// whether the change is expedited (critical fixes).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeManagement {
    /// The change ticket's key (Jira, ServiceNow, …).
    #[serde(default)]
    #[validate(length(min = 1, max = "CONTACT"))]
    #[schema(min_length = 1, max_length = 100, example = "CHG0012345")]
    pub ticket: Option<String>,
    /// The ticket's address (an absolute URL).
    #[serde(default)]
    #[validate(url, length(max = "RESOURCE"))]
    #[schema(
        max_length = 250,
        example = "https://example.service-now.com/change_request.do?sys_id=CHG0012345"
    )]
    pub ticket_url: Option<String>,
    /// Testing required before implementation.
    #[serde(default)]
    #[validate(length(min = 1, max = "NARRATIVE"))]
    #[schema(
        min_length = 1,
        max_length = 2000,
        example = "Handshake scan of staging with testssl.sh"
    )]
    pub testing: Option<String>,
    /// Who approves the change (a board, a role, a person).
    #[serde(default)]
    #[validate(length(min = 1, max = "CONTACT"))]
    #[schema(min_length = 1, max_length = 100, example = "Change Advisory Board")]
    pub approval_authority: Option<String>,
    /// Rollback procedure.
    #[serde(default)]
    #[validate(length(min = 1, max = "NARRATIVE"))]
    #[schema(min_length = 1, max_length = 2000)]
    pub rollback: Option<String>,
    /// Communication plan.
    #[serde(default)]
    #[validate(length(min = 1, max = "NARRATIVE"))]
    #[schema(min_length = 1, max_length = 2000)]
    pub communication: Option<String>,
    /// Start of the implementation window (RFC 3339 timestamp).
    #[serde(default)]
    #[schema(example = "2026-12-05T02:00:00Z")]
    pub window_start: Option<DateTime<Utc>>,
    /// End of the implementation window (RFC 3339 timestamp), not before its start.
    #[serde(default)]
    #[schema(example = "2026-12-05T04:00:00Z")]
    pub window_end: Option<DateTime<Utc>>,
    #[serde(default)]
    pub impact: Option<OperationalImpact>,
    /// An expedited change (a critical fix that cannot wait for the regular window).
    #[serde(default)]
    pub expedited: Option<bool>,
}

impl ChangeManagement {
    /// The window's end must not precede its start.
    pub fn check_window(&self) -> Option<crate::rules::Violation> {
        match (self.window_start, self.window_end) {
            (Some(s), Some(e)) if e < s => Some(crate::rules::Violation::new(
                "change_window_reversed",
                "/change_management/window_end",
                format!("the implementation window ends ({e}) before it starts ({s})"),
            )),
            _ => None,
        }
    }

    /// Ticket, testing and rollback are all recorded (what the profiles look for).
    pub fn is_planned(&self) -> bool {
        let filled = |s: &Option<String>| s.as_deref().is_some_and(|t| !t.trim().is_empty());
        filled(&self.ticket) && filled(&self.testing) && filled(&self.rollback)
    }
}

/// The writable content of an item: the body of a create, and what a merge patch applies to.
/// Unknown fields are refused, so a misspelt field is never silently dropped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ItemWrite)]
pub struct ItemFields {
    /// The client's own id of this item (eMASS `externalUid`, a GRC platform's key), unique per
    /// system: the key for two-way sync.
    #[serde(default)]
    #[validate(length(min = 1, max = "CONTACT"))]
    #[schema(min_length = 1, max_length = 100, example = "grc-48213")]
    pub external_id: Option<String>,
    /// Weakness name.
    #[validate(length(min = 1, max = "RESOURCE"))]
    #[schema(
        min_length = 1,
        max_length = 250,
        example = "TLS 1.0 enabled on the public load balancer"
    )]
    pub title: String,
    /// Weakness description.
    #[validate(length(min = 1, max = "NARRATIVE"))]
    #[schema(
        min_length = 1,
        max_length = 2000,
        example = "The load balancer accepts TLS 1.0 and 1.1 handshakes."
    )]
    pub description: String,
    /// Control references: NIST SP 800-53 (`SC-8(1)`), 800-171 (`3.13.8`) or CMMC
    /// (`SC.L2-3.13.8`). Normalised to upper case; duplicates dropped.
    #[serde(default)]
    #[validate(length(max = "LIST"))]
    #[schema(max_items = 500, example = json!(["SC-8(1)", "3.13.8"]))]
    pub controls: Vec<String>,
    #[validate(nested)]
    pub source: Source,
    /// CVE ids (`CVE-2024-3094`).
    #[serde(default)]
    #[validate(length(max = "LIST"))]
    #[schema(max_items = 500, example = json!(["CVE-2011-3389"]))]
    pub cves: Vec<String>,
    /// DISA Control Correlation Identifiers (`CCI-000366`) a STIG checklist cites; with the
    /// CCI catalog loaded they map to the item's controls.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[validate(custom(function = "check_ccis"))]
    #[schema(max_items = 500, example = json!(["CCI-000366"]))]
    pub ccis: Vec<String>,
    /// Affected assets (host names, IPs, image digests), up to 250 characters each.
    #[serde(default)]
    #[validate(length(max = "LIST"))]
    #[schema(max_items = 500, example = json!(["lb-prod-1.example.org"]))]
    pub assets: Vec<String>,
    #[serde(default)]
    pub likelihood: Option<Level>,
    #[serde(default)]
    pub impact: Option<Level>,
    /// Original risk rating.
    pub risk_rating: RiskRating,
    /// Risk rating after an approved risk adjustment; needs a `risk_justification`.
    #[serde(default)]
    pub adjusted_risk_rating: Option<RiskRating>,
    #[serde(default)]
    #[validate(length(min = 1, max = "NARRATIVE"))]
    #[schema(min_length = 1, max_length = 2000)]
    pub risk_justification: Option<String>,
    #[serde(default = "open")]
    pub status: ItemStatus,
    #[serde(default)]
    #[validate(nested)]
    pub owner: Option<Person>,
    #[serde(default)]
    #[validate(nested)]
    pub implementer: Option<Person>,
    /// Overall remediation plan.
    #[serde(default)]
    #[validate(length(min = 1, max = "NARRATIVE"))]
    #[schema(min_length = 1, max_length = 2000)]
    pub remediation_plan: Option<String>,
    #[serde(default)]
    #[validate(nested)]
    pub resources: Option<Resources>,
    /// Actual spend so far.
    #[serde(default)]
    #[validate(range(min = 0.0, max = 1e12))]
    #[schema(minimum = 0.0, maximum = 1e12)]
    pub actual_cost: Option<f64>,
    /// Compensating controls in place until the fix lands.
    #[serde(default)]
    #[validate(length(min = 1, max = "NARRATIVE"))]
    #[schema(min_length = 1, max_length = 2000)]
    pub interim_mitigation: Option<String>,
    #[serde(default)]
    #[validate(length(min = 1, max = "NARRATIVE"))]
    #[schema(min_length = 1, max_length = 2000)]
    pub residual_risk: Option<String>,
    /// Original detection date.
    #[schema(example = "2026-10-01")]
    pub detected_on: NaiveDate,
    #[serde(default)]
    #[schema(example = "2026-10-31")]
    pub scheduled_completion: Option<NaiveDate>,
    #[serde(default)]
    pub completed_on: Option<NaiveDate>,
    #[serde(default)]
    pub closed_on: Option<NaiveDate>,
    #[serde(default)]
    #[validate(nested)]
    pub deviation: Option<Deviation>,
    #[serde(default)]
    #[validate(nested)]
    pub vendor_dependency: Option<VendorDependency>,
    #[serde(default)]
    #[validate(length(min = 1, max = "NARRATIVE"))]
    #[schema(min_length = 1, max_length = 2000)]
    pub comments: Option<String>,
    /// Change management of the remediation (ticket, testing, rollback, window, …).
    #[serde(default)]
    #[validate(nested)]
    pub change_management: Option<ChangeManagement>,
    /// Whom an item overdue past the escalation grace goes to.
    #[serde(default)]
    #[validate(nested)]
    pub escalation_contact: Option<Person>,
    /// FedRAMP 2026 (VDR/VER): detection, evaluation, mitigation and N-rating reductions.
    /// Its deadlines apply once the system follows the 2026 rules (`fedramp_class`,
    /// `vdr_since`).
    #[serde(default)]
    #[validate(nested)]
    pub evaluation: Option<crate::vdr::Evaluation>,
    /// The NISP template's C/W/S code, kept as written (its meaning is not settled: the
    /// system's `cws_labels` says what each code means there).
    #[serde(default)]
    #[validate(length(min = 1, max = 20))]
    #[schema(min_length = 1, max_length = 20, example = "W")]
    pub cws_code: Option<String>,
}

fn open() -> ItemStatus {
    ItemStatus::Open
}

/// A stored item: its identity and bookkeeping, and its content.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Item {
    pub id: ItemId,
    /// Human id, unique within the system: `POAM-0001`, … Never reused.
    #[schema(example = "POAM-0001")]
    pub display_id: String,
    pub system_id: SystemId,
    #[schema(required = true)]
    pub external_id: Option<String>,
    pub title: String,
    pub description: String,
    pub controls: Vec<String>,
    pub source: Source,
    pub cves: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ccis: Vec<String>,
    pub assets: Vec<String>,
    #[schema(required = true)]
    pub likelihood: Option<Level>,
    #[schema(required = true)]
    pub impact: Option<Level>,
    pub risk_rating: RiskRating,
    #[schema(required = true)]
    pub adjusted_risk_rating: Option<RiskRating>,
    #[schema(required = true)]
    pub risk_justification: Option<String>,
    pub status: ItemStatus,
    #[schema(required = true)]
    pub owner: Option<Person>,
    #[schema(required = true)]
    pub implementer: Option<Person>,
    #[schema(required = true)]
    pub remediation_plan: Option<String>,
    #[schema(required = true)]
    pub resources: Option<Resources>,
    #[schema(required = true)]
    pub actual_cost: Option<f64>,
    #[schema(required = true)]
    pub interim_mitigation: Option<String>,
    #[schema(required = true)]
    pub residual_risk: Option<String>,
    #[serde(serialize_with = "crate::json_time::day")]
    pub detected_on: NaiveDate,
    #[schema(required = true)]
    #[serde(serialize_with = "crate::json_time::maybe_day")]
    pub scheduled_completion: Option<NaiveDate>,
    #[schema(required = true)]
    #[serde(serialize_with = "crate::json_time::maybe_day")]
    pub completed_on: Option<NaiveDate>,
    #[schema(required = true)]
    #[serde(serialize_with = "crate::json_time::maybe_day")]
    pub closed_on: Option<NaiveDate>,
    #[schema(required = true)]
    pub deviation: Option<Deviation>,
    #[schema(required = true)]
    pub vendor_dependency: Option<VendorDependency>,
    #[schema(required = true)]
    pub comments: Option<String>,
    #[schema(required = true)]
    pub change_management: Option<ChangeManagement>,
    #[schema(required = true)]
    pub escalation_contact: Option<Person>,
    #[schema(required = true)]
    pub evaluation: Option<crate::vdr::Evaluation>,
    /// The NISP template's C/W/S code, raw.
    #[schema(required = true)]
    pub cws_code: Option<String>,
    /// Which rule set `scheduled_completion`: `manual` (a person), a policy rule such as
    /// `fedramp:high:30d` or `cmmc:conditional_status_date+180d`, or null (none applies).
    #[schema(example = "fedramp:high:30d")]
    #[schema(required = true)]
    pub deadline_rule: Option<String>,
    /// Past its scheduled completion date while still unresolved (open, in progress, deferred).
    pub overdue: bool,
    /// Overdue for longer than the escalation grace (`POAM_ESCALATION_GRACE_DAYS`, default
    /// 14 days) while still unresolved: escalate to the `escalation_contact`.
    pub escalated: bool,
    /// Under FedRAMP's 2026 rules (the system's `vdr_since` reached): the item's deadlines,
    /// each naming its rule and cell, and whether it is overdue (FRD-ODV), accepted (FRD-ACV)
    /// or a reportable incident (VER-TFR-IRI/NRI), with explanations. Computed, never written.
    #[schema(required = true)]
    pub vdr: Option<crate::vdr::Status>,
    /// One of its CVEs is in CISA's Known Exploited Vulnerabilities catalog (the loaded one):
    /// the entry with the earliest due date.
    #[schema(required = true)]
    pub kev: Option<crate::threat::Kev>,
    /// FIRST's EPSS score of its CVEs (the highest), from the loaded catalog.
    #[schema(required = true)]
    pub epss: Option<crate::threat::Epss>,
    /// When a scan last reported its finding, and which.
    #[schema(required = true)]
    pub last_seen: Option<crate::threat::Seen>,
    /// Set when a scan that covered its host no longer reports its finding (or a checklist
    /// says NotAFinding): a closure candidate. It is never closed by the scan; the scan is
    /// attached to it as evidence for the verifier.
    #[schema(required = true)]
    #[serde(serialize_with = "crate::json_time::maybe_instant")]
    pub not_seen_since: Option<DateTime<Utc>>,
    /// The scan that no longer showed it.
    #[schema(required = true)]
    pub not_seen_scan: Option<uuid::Uuid>,
    /// Optimistic-concurrency version; also the `ETag`.
    pub version: i64,
    #[serde(serialize_with = "crate::json_time::instant")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "crate::json_time::instant")]
    pub updated_at: DateTime<Utc>,
    /// Set when the item was archived: it is kept, but hidden from default lists.
    #[schema(required = true)]
    #[serde(serialize_with = "crate::json_time::maybe_instant")]
    pub archived_at: Option<DateTime<Utc>>,
    /// Why it was archived (required when it was archived unresolved).
    #[schema(required = true)]
    pub archive_reason: Option<String>,
}

/// The bookkeeping half of an item, kept by the store.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemMeta {
    pub id: ItemId,
    pub display_id: String,
    pub system_id: SystemId,
    pub deadline_rule: Option<String>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub archived_at: Option<DateTime<Utc>>,
    pub archive_reason: Option<String>,
}

impl Item {
    /// Assembles an item; `today` decides whether it is overdue (and escalated, after the
    /// default grace).
    pub fn assemble(meta: ItemMeta, f: ItemFields, today: NaiveDate) -> Item {
        Item::assemble_with_grace(meta, f, today, DEFAULT_ESCALATION_GRACE_DAYS)
    }

    /// [`Item::assemble`] with the escalation grace in days.
    pub fn assemble_with_grace(
        meta: ItemMeta,
        f: ItemFields,
        today: NaiveDate,
        grace_days: u32,
    ) -> Item {
        let overdue = is_overdue(f.status, f.scheduled_completion, today);
        let escalated = is_escalated(f.status, f.scheduled_completion, today, grace_days);
        Item {
            id: meta.id,
            display_id: meta.display_id,
            system_id: meta.system_id,
            external_id: f.external_id,
            title: f.title,
            description: f.description,
            controls: f.controls,
            source: f.source,
            cves: f.cves,
            ccis: f.ccis,
            assets: f.assets,
            likelihood: f.likelihood,
            impact: f.impact,
            risk_rating: f.risk_rating,
            adjusted_risk_rating: f.adjusted_risk_rating,
            risk_justification: f.risk_justification,
            status: f.status,
            owner: f.owner,
            implementer: f.implementer,
            remediation_plan: f.remediation_plan,
            resources: f.resources,
            actual_cost: f.actual_cost,
            interim_mitigation: f.interim_mitigation,
            residual_risk: f.residual_risk,
            detected_on: f.detected_on,
            scheduled_completion: f.scheduled_completion,
            completed_on: f.completed_on,
            closed_on: f.closed_on,
            deviation: f.deviation,
            vendor_dependency: f.vendor_dependency,
            comments: f.comments,
            change_management: f.change_management,
            escalation_contact: f.escalation_contact,
            evaluation: f.evaluation,
            cws_code: f.cws_code,
            deadline_rule: meta.deadline_rule,
            overdue,
            escalated,
            vdr: None,
            kev: None,
            epss: None,
            last_seen: None,
            not_seen_since: None,
            not_seen_scan: None,
            version: meta.version,
            created_at: meta.created_at,
            updated_at: meta.updated_at,
            archived_at: meta.archived_at,
            archive_reason: meta.archive_reason,
        }
    }

    /// The writable content, the document a merge patch applies to.
    pub fn fields(&self) -> ItemFields {
        ItemFields {
            external_id: self.external_id.clone(),
            title: self.title.clone(),
            description: self.description.clone(),
            controls: self.controls.clone(),
            source: self.source.clone(),
            cves: self.cves.clone(),
            ccis: self.ccis.clone(),
            assets: self.assets.clone(),
            likelihood: self.likelihood,
            impact: self.impact,
            risk_rating: self.risk_rating,
            adjusted_risk_rating: self.adjusted_risk_rating,
            risk_justification: self.risk_justification.clone(),
            status: self.status,
            owner: self.owner.clone(),
            implementer: self.implementer.clone(),
            remediation_plan: self.remediation_plan.clone(),
            resources: self.resources.clone(),
            actual_cost: self.actual_cost,
            interim_mitigation: self.interim_mitigation.clone(),
            residual_risk: self.residual_risk.clone(),
            detected_on: self.detected_on,
            scheduled_completion: self.scheduled_completion,
            completed_on: self.completed_on,
            closed_on: self.closed_on,
            deviation: self.deviation.clone(),
            vendor_dependency: self.vendor_dependency.clone(),
            comments: self.comments.clone(),
            change_management: self.change_management.clone(),
            escalation_contact: self.escalation_contact.clone(),
            evaluation: self.evaluation.clone(),
            cws_code: self.cws_code.clone(),
        }
    }
}

/// An unresolved item past its scheduled completion date.
pub fn is_overdue(status: ItemStatus, due: Option<NaiveDate>, today: NaiveDate) -> bool {
    status.is_active() && due.is_some_and(|d| d < today)
}

/// Days an item may be overdue before it is escalated, unless configured otherwise.
pub const DEFAULT_ESCALATION_GRACE_DAYS: u32 = 14;

/// `today - grace_days`: an unresolved item whose scheduled completion date lies before it is
/// escalated (with a grace of 0, escalated is overdue).
pub fn escalation_cutoff(today: NaiveDate, grace_days: u32) -> NaiveDate {
    today
        .checked_sub_days(chrono::Days::new(u64::from(grace_days)))
        .unwrap_or(NaiveDate::MIN)
}

/// An unresolved item overdue for more than `grace_days` days: its scheduled completion date
/// lies before `today - grace_days`.
pub fn is_escalated(
    status: ItemStatus,
    due: Option<NaiveDate>,
    today: NaiveDate,
    grace_days: u32,
) -> bool {
    status.is_active() && due.is_some_and(|d| d < escalation_cutoff(today, grace_days))
}

/// Names of the item fields the server keeps: a client may read them but never write them.
pub const READ_ONLY_FIELDS: &[&str] = &[
    "id",
    "display_id",
    "system_id",
    "deadline_rule",
    "overdue",
    "escalated",
    "vdr",
    "kev",
    "epss",
    "last_seen",
    "not_seen_since",
    "not_seen_scan",
    "version",
    "created_at",
    "updated_at",
    "archived_at",
    "archive_reason",
];
