//! Milestones and reviews: the plan, and the recorded decisions on it.

use crate::ids::{EvidenceId, ItemId, MilestoneId, ReviewId, SystemId};
use crate::limits::{CONTACT, LIST, NARRATIVE, RESOURCE};
use crate::rules::Violation;
use crate::vocab::{vocabulary_pub as vocabulary, DeviationKind, Regime, RiskRating};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use validator::Validate;

vocabulary!(
    /// Where a milestone stands.
    MilestoneStatus, "milestone status" {
        Planned => "planned",
        InProgress => "in_progress",
        Completed => "completed",
        Cancelled => "cancelled",
    }
);

vocabulary!(
    /// What a review decides on.
    ReviewKind, "review kind" {
        /// A periodic review of the POA&M, with minutes and action items.
        Periodic => "periodic",
        Approval => "approval",
        ClosureVerification => "closure_verification",
        RiskAcceptance => "risk_acceptance",
        Deviation => "deviation",
        Extension => "extension",
        /// DSS's (DCSA's) determination on one item of a NISP POA&M, as the approver records
        /// it: its date (`determined_on`) and whether the item stays open or is closed
        /// (`determination`). The NISP export's "DSS Approval Date and Determination".
        DssDetermination => "dss_determination",
        /// FedRAMP 2026 (FRD-ACV): an approver's decision that the provider does not intend to
        /// fully mitigate or remediate the item's vulnerability, on an item of a system under
        /// the 2026 rules. `approved` (with the explanation in `notes`) sets the item's
        /// `evaluation.accepted` in the same write; `rejected` withdraws an acceptance an
        /// earlier such review set.
        VulnerabilityAcceptance => "vulnerability_acceptance",
    }
);

vocabulary!(
    /// DSS's determination on a NISP POA&M item.
    Determination, "determination" {
        Open => "open",
        Closed => "closed",
    }
);

vocabulary!(
    /// A review's outcome.
    Decision, "decision" {
        Approved => "approved",
        Rejected => "rejected",
        ChangesRequested => "changes_requested",
        Noted => "noted",
    }
);

vocabulary!(
    /// What a piece of evidence shows.
    EvidenceKind, "evidence kind" {
        ConfigBefore => "config_before",
        ConfigAfter => "config_after",
        TestResult => "test_result",
        ScanReport => "scan_report",
        Screenshot => "screenshot",
        Policy => "policy",
        SignOff => "sign_off",
        /// An implementation procedure.
        Procedure => "procedure",
        /// A record of training taken (a course completion report, an attendance list).
        TrainingRecord => "training_record",
        Other => "other",
    }
);

vocabulary!(
    /// What a milestone's step is. A `training` milestone completes only with a training record.
    MilestoneKind, "milestone kind" {
        Change => "change",
        Test => "test",
        Training => "training",
        Verification => "verification",
        Procurement => "procurement",
        Other => "other",
    }
);

impl EvidenceKind {
    /// Kinds that show the fix was verified (closing a high or critical item needs one).
    pub fn is_verification(self) -> bool {
        matches!(self, EvidenceKind::TestResult | EvidenceKind::ScanReport)
    }
}

/// A milestone past its due date and neither completed nor cancelled is delayed (eMASS's and
/// DCSA's "Delayed"). Derived on every read, never stored.
pub fn is_delayed(status: MilestoneStatus, due_on: NaiveDate, today: NaiveDate) -> bool {
    status.is_open() && due_on < today
}

/// A training milestone (seed 002: security awareness training as a remediation step)
/// completes only with evidence of the training: `training_records` counts the non-withdrawn
/// evidence of kind `training_record` attached to the milestone.
pub fn check_milestone_completion(
    kind: MilestoneKind,
    training_records: usize,
) -> Result<(), Violation> {
    if kind == MilestoneKind::Training && training_records == 0 {
        Err(Violation::new(
            "training_evidence_required",
            "/evidence",
            "a training milestone completes only with evidence of the training: upload a training_record with this milestone_id first",
        ))
    } else {
        Ok(())
    }
}

fn other_kind() -> MilestoneKind {
    MilestoneKind::Other
}

/// A piece of evidence: immutable; withdrawal is recorded, never a deletion.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Evidence {
    pub id: EvidenceId,
    pub item_id: ItemId,
    #[schema(required = true)]
    pub milestone_id: Option<MilestoneId>,
    pub title: String,
    pub kind: EvidenceKind,
    pub filename: String,
    /// The media type the uploader declared.
    #[schema(example = "application/pdf")]
    pub media_type: String,
    /// Bytes.
    pub size: i64,
    /// SHA-256 of the content, hex; also the download's ETag.
    pub sha256: String,
    #[schema(required = true)]
    pub collected_on: Option<NaiveDate>,
    pub uploaded_by: String,
    pub uploaded_at: DateTime<Utc>,
    #[schema(required = true)]
    pub withdrawn_at: Option<DateTime<Utc>>,
    #[schema(required = true)]
    pub withdrawn_by: Option<String>,
    #[schema(required = true)]
    pub withdrawal_reason: Option<String>,
    /// Evidence a scan import attached: the scan file (`GET /v1/scans/{id}`), stored once for
    /// the system.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scan_id: Option<uuid::Uuid>,
}

/// The body of withdrawing evidence.
#[derive(Debug, Clone, Serialize, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WithdrawEvidence {
    #[validate(length(min = 1, max = "NARRATIVE"))]
    #[schema(
        min_length = 1,
        max_length = 2000,
        example = "Uploaded to the wrong item"
    )]
    pub reason: String,
}

/// Evidence of a completed or closed item is part of the record the decision rests on: it
/// can no longer be withdrawn.
pub fn check_withdrawal(status: crate::ItemStatus) -> Result<(), Violation> {
    if matches!(
        status,
        crate::ItemStatus::Completed | crate::ItemStatus::Closed
    ) {
        Err(Violation::new(
            "evidence_locked",
            "",
            format!(
                "the item is {status}: its evidence is part of the record and cannot be withdrawn"
            ),
        ))
    } else {
        Ok(())
    }
}

impl ReviewKind {
    /// Kinds that are an approver's decision (all but the periodic review).
    pub fn is_approval(self) -> bool {
        self != ReviewKind::Periodic
    }

    /// Kinds that decide on one item.
    pub fn needs_item(self) -> bool {
        matches!(
            self,
            ReviewKind::ClosureVerification
                | ReviewKind::RiskAcceptance
                | ReviewKind::Deviation
                | ReviewKind::Extension
                | ReviewKind::DssDetermination
                | ReviewKind::VulnerabilityAcceptance
        )
    }
}

impl MilestoneStatus {
    pub fn is_open(self) -> bool {
        matches!(self, MilestoneStatus::Planned | MilestoneStatus::InProgress)
    }
}

/// The body of a milestone creation.
#[derive(Debug, Clone, Serialize, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewMilestone {
    #[validate(length(min = 1, max = "RESOURCE"))]
    #[schema(
        min_length = 1,
        max_length = 250,
        example = "Disable TLS 1.0 in the listener policy"
    )]
    pub title: String,
    #[serde(default)]
    #[validate(length(min = 1, max = "NARRATIVE"))]
    #[schema(min_length = 1, max_length = 2000)]
    pub description: Option<String>,
    #[schema(example = "2026-12-15")]
    pub due_on: NaiveDate,
    /// Order within the item's plan (default: after the last).
    #[serde(default)]
    #[validate(range(min = 0, max = 10000))]
    #[schema(minimum = 0, maximum = 10000)]
    pub position: Option<i32>,
    /// What the step is (default `other`).
    #[serde(default = "other_kind")]
    pub kind: MilestoneKind,
    /// Progress, 0 to 100 (default 0).
    #[serde(default)]
    #[validate(range(min = 0, max = 100))]
    #[schema(minimum = 0, maximum = 100, example = 0)]
    pub percent_complete: Option<i32>,
}

/// The body of a milestone update: the fields to change. Moving `due_on` needs a
/// `change_reason`, kept in the milestone's `changes`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MilestonePatch {
    #[serde(default)]
    #[validate(length(min = 1, max = "RESOURCE"))]
    #[schema(min_length = 1, max_length = 250)]
    pub title: Option<String>,
    #[serde(default)]
    #[validate(length(min = 1, max = "NARRATIVE"))]
    #[schema(min_length = 1, max_length = 2000)]
    pub description: Option<String>,
    #[serde(default)]
    pub due_on: Option<NaiveDate>,
    /// Why the due date moves (FedRAMP's "Milestone Changes").
    #[serde(default)]
    #[validate(length(min = 1, max = "NARRATIVE"))]
    #[schema(
        min_length = 1,
        max_length = 2000,
        example = "Vendor patch slipped to January"
    )]
    pub change_reason: Option<String>,
    #[serde(default)]
    #[validate(range(min = 0, max = 10000))]
    #[schema(minimum = 0, maximum = 10000)]
    pub position: Option<i32>,
    /// `planned` or `in_progress`; completing and cancelling have their own operations.
    #[serde(default)]
    pub status: Option<MilestoneStatus>,
    #[serde(default)]
    pub kind: Option<MilestoneKind>,
    /// Progress, 0 to 100 (completing the milestone sets 100).
    #[serde(default)]
    #[validate(range(min = 0, max = 100))]
    #[schema(minimum = 0, maximum = 100, example = 50)]
    pub percent_complete: Option<i32>,
}

/// One move of a milestone's due date.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MilestoneChange {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub reason: String,
    pub by: String,
    pub at: DateTime<Utc>,
}

/// A milestone of an item's plan.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Milestone {
    pub id: MilestoneId,
    pub item_id: ItemId,
    pub title: String,
    #[schema(required = true)]
    pub description: Option<String>,
    pub due_on: NaiveDate,
    pub status: MilestoneStatus,
    #[schema(required = true)]
    pub completed_on: Option<NaiveDate>,
    pub position: i32,
    pub kind: MilestoneKind,
    /// Progress, 0 to 100; a completed milestone reads 100.
    pub percent_complete: i32,
    /// Past its due date and still planned or in progress (derived on read, never stored;
    /// `status` keeps the stored planned/in_progress).
    pub delayed: bool,
    /// Every due-date move, oldest first.
    pub changes: Vec<MilestoneChange>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The body of completing a milestone.
#[derive(Debug, Clone, Default, Serialize, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompleteMilestone {
    /// Default: today.
    #[serde(default)]
    pub completed_on: Option<NaiveDate>,
}

/// The body of cancelling a milestone.
#[derive(Debug, Clone, Serialize, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelMilestone {
    #[validate(length(min = 1, max = "NARRATIVE"))]
    #[schema(
        min_length = 1,
        max_length = 2000,
        example = "Superseded by the vendor's fixed release"
    )]
    pub reason: String,
}

/// A milestone may not fall after its item's scheduled completion date unless an extension was
/// approved (eMASS: the scheduled date of an approved item does not move; slips go through
/// milestones and extensions).
pub fn check_milestone_due(
    due_on: NaiveDate,
    scheduled_completion: Option<NaiveDate>,
    extension_approved: bool,
) -> Result<(), Violation> {
    if !crate::rules::date_in_range(due_on) {
        return Err(Violation::new(
            "date_out_of_range",
            "/due_on",
            format!("{due_on} is outside the years 1900..=9999"),
        ));
    }
    match scheduled_completion {
        Some(s) if due_on > s && !extension_approved => Err(Violation::new(
            "milestone_after_scheduled_completion",
            "/due_on",
            format!(
                "the milestone is due {due_on}, after the item's scheduled completion {s}: record an approved extension review for the item first"
            ),
        )),
        _ => Ok(()),
    }
}

/// The body of a review.
#[derive(Debug, Clone, Serialize, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewReview {
    pub kind: ReviewKind,
    pub decision: Decision,
    /// For `deviation` reviews: which deviation is decided.
    #[serde(default)]
    pub deviation_kind: Option<DeviationKind>,
    /// Minutes, rationale, conditions.
    #[serde(default)]
    #[validate(length(min = 1, max = "NARRATIVE"))]
    #[schema(min_length = 1, max_length = 2000)]
    pub notes: Option<String>,
    #[serde(default)]
    #[validate(length(max = "LIST"))]
    #[schema(max_items = 500, example = json!(["Morgan Reyes (ISSM)", "Dana Whitfield"]))]
    pub attendees: Vec<String>,
    #[serde(default)]
    #[validate(length(max = "LIST"))]
    #[schema(max_items = 500, example = json!(["Dana: rescan after the patch window"]))]
    pub action_items: Vec<String>,
    /// Who asked for the decision (token subject or e-mail): may not be the reviewer.
    #[serde(default)]
    #[validate(length(min = 1, max = "CONTACT"))]
    #[schema(
        min_length = 1,
        max_length = 100,
        example = "dana.whitfield@example.org"
    )]
    pub requested_by: Option<String>,
    /// The review this one corrects (reviews are never edited).
    #[serde(default)]
    pub supersedes: Option<ReviewId>,
    /// For `dss_determination` reviews (required there, refused elsewhere): DSS's
    /// determination, `open` or `closed`.
    #[serde(default)]
    pub determination: Option<Determination>,
    /// For `dss_determination` reviews (required there, refused elsewhere): the date DSS
    /// made its determination.
    #[serde(default)]
    #[schema(example = "2026-11-20")]
    pub determined_on: Option<NaiveDate>,
}

/// What a review decides on: a system's POA&M as a whole, or one item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReviewTarget {
    System(SystemId),
    Item(ItemId),
}

/// A recorded review. Append-only.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Review {
    pub id: ReviewId,
    pub system_id: SystemId,
    #[schema(required = true)]
    pub item_id: Option<ItemId>,
    pub kind: ReviewKind,
    #[schema(required = true)]
    pub deviation_kind: Option<DeviationKind>,
    pub decision: Decision,
    #[schema(required = true)]
    pub notes: Option<String>,
    pub attendees: Vec<String>,
    pub action_items: Vec<String>,
    #[schema(required = true)]
    pub requested_by: Option<String>,
    /// The token subject that recorded it.
    pub reviewer: String,
    #[schema(required = true)]
    pub reviewer_name: Option<String>,
    pub reviewed_at: DateTime<Utc>,
    #[schema(required = true)]
    pub supersedes: Option<ReviewId>,
    /// `dss_determination` reviews: DSS's determination.
    #[schema(required = true)]
    pub determination: Option<Determination>,
    /// `dss_determination` reviews: the date of DSS's determination.
    #[schema(required = true)]
    pub determined_on: Option<NaiveDate>,
}

/// What a review's rules need to know about its item.
#[derive(Debug, Clone, Copy)]
pub struct ReviewContext {
    pub regime: Regime,
    pub item_risk: Option<RiskRating>,
    pub has_item: bool,
    /// The system follows FedRAMP's 2026 rules today (`fedramp_class` set, `vdr_since`
    /// reached).
    pub under_vdr: bool,
}

/// Checks a review against the rules that do not need the database.
/// `requesters`: who asked for the decision, as the server derives it from the item's story
/// ([`crate::change::requesters`]).
pub fn check_review(
    r: &NewReview,
    reviewer: &str,
    requesters: &[String],
    ctx: ReviewContext,
) -> Vec<Violation> {
    let mut v = Vec::new();
    let entries = |list: &[String], pointer: &str, max: u64, v: &mut Vec<Violation>| {
        for (i, s) in list.iter().enumerate() {
            if s.trim().is_empty() || s.chars().count() as u64 > max {
                v.push(Violation::new(
                    "invalid_length",
                    format!("{pointer}/{i}"),
                    format!("must have 1 to {max} characters"),
                ));
            }
        }
    };
    entries(&r.attendees, "/attendees", CONTACT, &mut v);
    entries(&r.action_items, "/action_items", RESOURCE, &mut v);
    if r.kind.needs_item() && !ctx.has_item {
        v.push(Violation::new(
            "item_required",
            "/kind",
            format!(
                "a {} review decides on one item: record it under /v1/items/{{id}}/reviews",
                r.kind
            ),
        ));
    }
    match (r.kind, r.deviation_kind) {
        (ReviewKind::Deviation, None) => v.push(Violation::new("deviation_kind_required", "/deviation_kind", "a deviation review names the deviation: risk_adjustment, false_positive or operational_requirement")),
        (k, Some(_)) if k != ReviewKind::Deviation => v.push(Violation::new("deviation_kind_unexpected", "/deviation_kind", "only deviation reviews carry a deviation_kind")),
        _ => {}
    }
    if r.kind == ReviewKind::DssDetermination {
        if r.determination.is_none() {
            v.push(Violation::new(
                "determination_required",
                "/determination",
                "a dss_determination review carries DSS's determination: open or closed",
            ));
        }
        if r.determined_on.is_none() {
            v.push(Violation::new(
                "determined_on_required",
                "/determined_on",
                "a dss_determination review carries the date of DSS's determination",
            ));
        }
    } else {
        for (set, pointer) in [
            (r.determination.is_some(), "/determination"),
            (r.determined_on.is_some(), "/determined_on"),
        ] {
            if set {
                v.push(Violation::new(
                    "determination_unexpected",
                    pointer,
                    "only dss_determination reviews carry a determination and its date",
                ));
            }
        }
    }
    if r.kind == ReviewKind::VulnerabilityAcceptance {
        if !ctx.under_vdr {
            v.push(Violation::new(
                "not_under_vdr",
                "/kind",
                "a vulnerability_acceptance review decides on an item of a system under FedRAMP's 2026 rules (FRD-ACV): set the system's fedramp_class and a vdr_since already reached",
            ));
        }
        if r.decision == Decision::Approved
            && r.notes.as_deref().is_none_or(|n| n.trim().is_empty())
        {
            v.push(Violation::new(
                "notes_required",
                "/notes",
                "an approved vulnerability_acceptance carries the explanation of why the vulnerability is accepted (VER-RPT-AVI item 7) in notes",
            ));
        }
    }
    // Separation of duties: the requester is who the item's story shows asked for the
    // decision (`requesters`, derived by the server); `requested_by` is a note, and counts
    // only to refuse more, never to allow.
    let me = crate::change::subject_key(reviewer);
    let noted = r
        .requested_by
        .as_deref()
        .map(crate::change::subject_key)
        .filter(|q| !q.is_empty());
    if r.kind.is_approval()
        && (requesters
            .iter()
            .any(|q| crate::change::subject_key(q) == me)
            || noted.as_deref() == Some(me.as_str()))
    {
        v.push(Violation::new(
            "self_approval",
            "/kind",
            format!(
                "the requester may not decide their own request (separation of duties): the item's history shows {} asked for this {} decision",
                reviewer.trim(),
                r.kind
            ),
        ));
    }
    if ctx.regime == Regime::Fedramp
        && r.kind == ReviewKind::Deviation
        && r.deviation_kind == Some(DeviationKind::OperationalRequirement)
        && matches!(ctx.item_risk, Some(RiskRating::High | RiskRating::Critical))
    {
        v.push(Violation::new(
            "operational_requirement_on_high",
            "/deviation_kind",
            "FedRAMP does not approve an operational requirement for a High (or Critical) risk",
        ));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn review(kind: ReviewKind) -> NewReview {
        NewReview {
            kind,
            decision: Decision::Approved,
            deviation_kind: None,
            notes: None,
            attendees: vec![],
            action_items: vec![],
            requested_by: Some("dana@example.org".into()),
            supersedes: None,
            determination: None,
            determined_on: None,
        }
    }

    #[test]
    fn a_dss_determination_carries_its_date_and_determination() {
        let codes = |v: Vec<Violation>| v.into_iter().map(|v| v.code).collect::<Vec<_>>();
        assert_eq!(
            codes(check_review(
                &review(ReviewKind::DssDetermination),
                "x",
                &[],
                ctx()
            )),
            ["determination_required", "determined_on_required"]
        );
        let mut r = review(ReviewKind::DssDetermination);
        r.determination = Some(Determination::Closed);
        r.determined_on = NaiveDate::from_ymd_opt(2026, 11, 20);
        assert!(check_review(&r, "x", &[], ctx()).is_empty());
        r.kind = ReviewKind::Approval;
        assert_eq!(
            codes(check_review(&r, "x", &[], ctx())),
            ["determination_unexpected", "determination_unexpected"]
        );
        assert!(ReviewKind::DssDetermination.is_approval());
        assert!(ReviewKind::DssDetermination.needs_item());
    }

    fn ctx() -> ReviewContext {
        ReviewContext {
            regime: Regime::Fedramp,
            item_risk: Some(RiskRating::High),
            has_item: true,
            under_vdr: true,
        }
    }

    #[test]
    fn a_vulnerability_acceptance_needs_the_2026_rules_and_its_explanation() {
        let mut r = review(ReviewKind::VulnerabilityAcceptance);
        assert!(ReviewKind::VulnerabilityAcceptance.is_approval());
        assert!(ReviewKind::VulnerabilityAcceptance.needs_item());
        assert_eq!(
            codes(check_review(&r, "x", &[], ctx())),
            vec!["notes_required"]
        );
        r.notes = Some("  ".into());
        assert_eq!(
            codes(check_review(&r, "x", &[], ctx())),
            vec!["notes_required"]
        );
        r.notes = Some("End-of-life appliance, replaced in 2027".into());
        assert!(check_review(&r, "x", &[], ctx()).is_empty());
        let legacy = ReviewContext {
            under_vdr: false,
            ..ctx()
        };
        assert_eq!(
            codes(check_review(&r, "x", &[], legacy)),
            vec!["not_under_vdr"]
        );
        // A rejection needs no explanation.
        r.decision = Decision::Rejected;
        r.notes = None;
        assert!(check_review(&r, "x", &[], ctx()).is_empty());
    }

    fn codes(v: Vec<Violation>) -> Vec<&'static str> {
        v.into_iter().map(|v| v.code).collect()
    }

    #[test]
    fn requesters_do_not_approve_their_own_requests() {
        // The server's requester, whatever the body says; compared trimmed and case-blind.
        let mut anonymous = review(ReviewKind::Extension);
        anonymous.requested_by = None;
        assert_eq!(
            codes(check_review(
                &anonymous,
                " DANA@example.org",
                &["dana@example.org".into()],
                ctx()
            )),
            vec!["self_approval"]
        );
        assert!(check_review(
            &anonymous,
            "issm@example.org",
            &["dana@example.org".into()],
            ctx()
        )
        .is_empty());
        assert_eq!(
            codes(check_review(
                &review(ReviewKind::Extension),
                "DANA@example.org",
                &[],
                ctx()
            )),
            vec!["self_approval"]
        );
        assert!(check_review(
            &review(ReviewKind::Extension),
            "issm@example.org",
            &[],
            ctx()
        )
        .is_empty());
        assert!(
            check_review(
                &review(ReviewKind::Periodic),
                "dana@example.org",
                &[],
                ctx()
            )
            .is_empty(),
            "a periodic review is not an approval"
        );
    }

    #[test]
    fn deviations_name_their_kind_and_fedramp_refuses_operational_requirements_on_highs() {
        assert_eq!(
            codes(check_review(
                &review(ReviewKind::Deviation),
                "x",
                &[],
                ctx()
            )),
            vec!["deviation_kind_required"]
        );
        let mut r = review(ReviewKind::Deviation);
        r.deviation_kind = Some(DeviationKind::OperationalRequirement);
        assert_eq!(
            codes(check_review(&r, "x", &[], ctx())),
            vec!["operational_requirement_on_high"]
        );
        let moderate = ReviewContext {
            item_risk: Some(RiskRating::Moderate),
            ..ctx()
        };
        assert!(check_review(&r, "x", &[], moderate).is_empty());
        let emass = ReviewContext {
            regime: Regime::Emass,
            ..ctx()
        };
        assert!(check_review(&r, "x", &[], emass).is_empty());
        let mut p = review(ReviewKind::Periodic);
        p.deviation_kind = Some(DeviationKind::FalsePositive);
        assert_eq!(
            codes(check_review(&p, "x", &[], ctx())),
            vec!["deviation_kind_unexpected"]
        );
    }

    #[test]
    fn item_decisions_need_an_item() {
        let system_level = ReviewContext {
            has_item: false,
            ..ctx()
        };
        assert_eq!(
            codes(check_review(
                &review(ReviewKind::ClosureVerification),
                "x",
                &[],
                system_level
            )),
            vec!["item_required"]
        );
        assert!(check_review(&review(ReviewKind::Periodic), "x", &[], system_level).is_empty());
    }

    #[test]
    fn training_milestones_complete_only_with_a_training_record() {
        assert_eq!(
            check_milestone_completion(MilestoneKind::Training, 0).map_err(|v| v.code),
            Err("training_evidence_required")
        );
        assert!(check_milestone_completion(MilestoneKind::Training, 1).is_ok());
        for k in MilestoneKind::ALL
            .iter()
            .filter(|k| **k != MilestoneKind::Training)
        {
            assert!(check_milestone_completion(*k, 0).is_ok(), "{k}");
        }
    }

    #[test]
    fn open_milestones_past_due_are_delayed() {
        let d = |s: &str| s.parse::<NaiveDate>().unwrap_or_default();
        let today = d("2026-12-01");
        assert!(is_delayed(MilestoneStatus::Planned, d("2026-11-30"), today));
        assert!(is_delayed(
            MilestoneStatus::InProgress,
            d("2026-11-30"),
            today
        ));
        assert!(!is_delayed(MilestoneStatus::Planned, today, today));
        assert!(!is_delayed(
            MilestoneStatus::Completed,
            d("2026-11-30"),
            today
        ));
        assert!(!is_delayed(
            MilestoneStatus::Cancelled,
            d("2026-11-30"),
            today
        ));
    }

    #[test]
    fn milestones_stay_within_the_schedule_unless_extended() {
        let d = |s: &str| s.parse::<NaiveDate>().unwrap_or_default();
        assert!(check_milestone_due(d("2026-12-31"), Some(d("2026-12-31")), false).is_ok());
        assert_eq!(
            check_milestone_due(d("2027-01-01"), Some(d("2026-12-31")), false).map_err(|v| v.code),
            Err("milestone_after_scheduled_completion")
        );
        assert!(check_milestone_due(d("2027-01-01"), Some(d("2026-12-31")), true).is_ok());
        assert!(check_milestone_due(d("2027-01-01"), None, false).is_ok());
        assert_eq!(
            check_milestone_due(d("0183-01-01"), None, false).map_err(|v| v.code),
            Err("date_out_of_range")
        );
    }
}
