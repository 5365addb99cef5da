//! The OSCAL POA&M reader: a document (OSCAL 1.0.x to 1.2.x) becomes typed item drafts.
//!
//! Every member read is accounted for: mapped to a field of the draft, or listed as
//! [`Unmapped`] with the reason (unknown to the service, present but unparseable with the value
//! quoted, or not kept, with why). Remediations are read by their lifecycle (the `planned` one
//! is the plan and holds the milestones; a tool's `recommendation` is not the plan); facets by
//! FedRAMP's `state` (initial or adjusted). A missing risk rating is derived from likelihood
//! and impact by NIST SP 800-30 Table I-2, and the derivation noted for review.

use super::{control_from_oscal, deviation_prop, level_of_risk, rating_of_level, POAM_NS};
use crate::item::ChangeManagement;
use crate::workflow::{MilestoneKind, MilestoneStatus};
use crate::{
    Deviation, DeviationKind, DeviationStatus, ItemStatus, Level, OperationalImpact, Person,
    Resources, RiskRating, Source, SourceKind, VendorDependency, Violation,
};
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};

const ROOT: &str = "/plan-of-action-and-milestones";

/// A milestone read from the planned remediation's tasks.
#[derive(Debug, Clone, PartialEq)]
pub struct MilestoneDraft {
    /// The task's uuid in the document.
    pub uuid: String,
    pub title: String,
    pub description: Option<String>,
    pub due_on: NaiveDate,
    pub status: MilestoneStatus,
    pub completed_on: Option<NaiveDate>,
    /// The task's `milestone-kind` prop, when it has one.
    pub kind: Option<MilestoneKind>,
    /// The task's `percent-complete` prop (0 to 100), when it has one.
    pub percent_complete: Option<i32>,
}

/// The fields of an item as a document gives them: a partial of `ItemWrite`. What the document
/// lacks stays absent, so the caller's check names the missing required fields.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FieldsDraft {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub controls: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<Source>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cves: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub assets: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub likelihood: Option<Level>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub impact: Option<Level>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub risk_rating: Option<RiskRating>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub adjusted_risk_rating: Option<RiskRating>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub risk_justification: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<ItemStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<Person>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub implementer: Option<Person>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remediation_plan: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resources: Option<Resources>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actual_cost: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interim_mitigation: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub residual_risk: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detected_on: Option<NaiveDate>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scheduled_completion: Option<NaiveDate>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completed_on: Option<NaiveDate>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub closed_on: Option<NaiveDate>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deviation: Option<Deviation>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vendor_dependency: Option<VendorDependency>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comments: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub change_management: Option<ChangeManagement>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub escalation_contact: Option<Person>,
}

impl FieldsDraft {
    /// The draft as an `ItemWrite` document, for the caller's check (which names what is
    /// missing or out of bounds by its field pointer).
    pub fn to_document(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// An item read from a poam-item and its risk and observation.
#[derive(Debug, Clone)]
pub struct ItemDraft {
    /// The poam-item's uuid (or, for a 1.0 document without one, its risk's).
    pub uuid: String,
    /// Pointer of the poam-item in the document.
    pub pointer: String,
    /// The document's own POA&M id (FedRAMP's `POAM-ID` prop), if any.
    pub poam_id: Option<String>,
    pub fields: FieldsDraft,
    pub milestones: Vec<MilestoneDraft>,
    /// What reading decided for the caller to review (a derived risk rating), field pointers
    /// relative to the item.
    pub notes: Vec<Violation>,
}

/// A poam-item kept out of an import because a reference it depends on dangles.
#[derive(Debug, Clone)]
pub struct KeptOut {
    pub uuid: String,
    pub pointer: String,
    pub poam_id: Option<String>,
    /// Each dangling reference, named by its pointer.
    pub dangling: Vec<Violation>,
}

/// Why a member of the document has no place in the result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum UnmappedReason {
    /// The service has no field for it.
    Unknown,
    /// A field it maps to, but its value does not parse (the value is quoted).
    Unparseable,
    /// Understood, and deliberately not kept (the detail says why).
    NotKept,
    /// A reference to nothing in the document (with `on_dangling=skip`).
    Dangling,
}

/// A member of the document that was not mapped, and why.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, utoipa::ToSchema)]
pub struct Unmapped {
    /// RFC 6901 pointer into the document.
    pub pointer: String,
    pub reason: UnmappedReason,
    pub detail: String,
}

/// What to do with references that point at nothing in the document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnDangling {
    /// Refuse the whole document, every dangling reference named (the default).
    #[default]
    Refuse,
    /// Import what is consistent; keep out the poam-items a dangling reference touches.
    Skip,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct ReadOptions {
    pub on_dangling: OnDangling,
}

/// What a document turned into.
#[derive(Debug, Clone)]
pub struct Plan {
    pub uuid: String,
    pub oscal_version: String,
    /// The document was written by this service (its metadata carries the service's props):
    /// its `POAM-ID`s are the source system's display ids, not external ids.
    pub from_this_service: bool,
    pub items: Vec<ItemDraft>,
    /// Poam-items kept out by dangling references (`on_dangling=skip`).
    pub kept_out: Vec<KeptOut>,
    /// Every member of the document with no place in the service, sorted by pointer.
    pub unmapped: Vec<Unmapped>,
}

fn esc(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// Collects what was not mapped.
#[derive(Default)]
struct Reader {
    unmapped: BTreeMap<String, (UnmappedReason, String)>,
}

impl Reader {
    fn unknown(&mut self, at: impl Into<String>) {
        self.unmapped.insert(
            at.into(),
            (
                UnmappedReason::Unknown,
                "the service has no field for it".into(),
            ),
        );
    }

    fn unparseable(&mut self, at: impl Into<String>, value: &str, wanted: &str) {
        self.unmapped.insert(
            at.into(),
            (
                UnmappedReason::Unparseable,
                format!("`{value}` is not {wanted}"),
            ),
        );
    }

    fn not_kept(&mut self, at: impl Into<String>, why: impl Into<String>) {
        self.unmapped
            .insert(at.into(), (UnmappedReason::NotKept, why.into()));
    }

    /// Notes the members of `obj` (at `at`) not in `known` as unknown.
    fn rest(&mut self, v: &Value, at: &str, known: &[&str]) {
        if let Some(obj) = v.as_object() {
            for k in obj.keys() {
                if !known.contains(&k.as_str()) {
                    self.unknown(format!("{at}/{}", esc(k)));
                }
            }
        }
    }
}

fn arr<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice)
}

fn text<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
}

fn date_of(s: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(s.get(..10)?, "%Y-%m-%d").ok()
}

fn bad(code: &'static str, at: impl Into<String>, detail: impl Into<String>) -> Violation {
    Violation::new(code, at, detail)
}

/// The props of an object by name (any namespace), those read marked as mapped; the rest
/// reported as unknown by [`Props::finish`].
struct Props<'a> {
    /// name, value, pointer, remarks
    list: Vec<(&'a str, &'a str, String, Option<&'a str>)>,
    used: BTreeSet<usize>,
}

impl<'a> Props<'a> {
    fn of(v: &'a Value, at: &str) -> Self {
        let list = arr(v, "props")
            .iter()
            .enumerate()
            .filter_map(|(i, p)| {
                Some((
                    p.get("name")?.as_str()?,
                    p.get("value")?.as_str()?,
                    format!("{at}/props/{i}"),
                    text(p, "remarks"),
                ))
            })
            .collect();
        Props {
            list,
            used: BTreeSet::new(),
        }
    }

    fn find(&mut self, name: &str) -> Option<usize> {
        let i = self.list.iter().position(|(n, ..)| *n == name)?;
        self.used.insert(i);
        Some(i)
    }

    fn get(&mut self, name: &str) -> Option<&'a str> {
        self.find(name).map(|i| self.list[i].1)
    }

    /// The value parsed by `parse`; a value that does not parse is reported (quoted).
    fn parsed<T>(
        &mut self,
        r: &mut Reader,
        name: &str,
        wanted: &str,
        parse: impl Fn(&str) -> Option<T>,
    ) -> Option<T> {
        let i = self.find(name)?;
        let (_, v, at, _) = &self.list[i];
        let out = parse(v);
        if out.is_none() {
            r.unparseable(at.clone(), v, wanted);
        }
        out
    }

    /// Every value of `name`, with its pointer.
    fn all(&mut self, name: &str) -> Vec<(&'a str, String)> {
        let mut out = Vec::new();
        for (i, (n, v, at, _)) in self.list.iter().enumerate() {
            if *n == name {
                self.used.insert(i);
                out.push((*v, at.clone()));
            }
        }
        out
    }

    fn finish(self, r: &mut Reader) {
        for (i, (_, _, at, _)) in self.list.iter().enumerate() {
            if !self.used.contains(&i) {
                r.unknown(at.clone());
            }
        }
    }
}

fn level(s: &str) -> Option<Level> {
    match s.to_ascii_lowercase().replace(['-', ' '], "_").as_str() {
        "very_low" => Some(Level::VeryLow),
        "low" => Some(Level::Low),
        "moderate" | "medium" => Some(Level::Moderate),
        "high" => Some(Level::High),
        "very_high" | "critical" => Some(Level::VeryHigh),
        _ => None,
    }
}

fn rating_of(s: &str) -> Option<RiskRating> {
    match s.to_ascii_lowercase().replace(['-', ' '], "_").as_str() {
        "critical" | "very_high" => Some(RiskRating::Critical),
        "high" => Some(RiskRating::High),
        "moderate" | "medium" => Some(RiskRating::Moderate),
        "low" | "very_low" => Some(RiskRating::Low),
        _ => None,
    }
}

fn status_of_risk(s: &str) -> ItemStatus {
    match s {
        "closed" => ItemStatus::Closed,
        "remediating" => ItemStatus::InProgress,
        "deviation-approved" => ItemStatus::RiskAccepted,
        _ => ItemStatus::Open,
    }
}

fn source_of_methods(methods: &[Value]) -> SourceKind {
    match methods.first().and_then(Value::as_str) {
        Some("TEST") => SourceKind::Scan,
        Some("INTERVIEW") => SourceKind::Incident,
        _ => SourceKind::Assessment,
    }
}

fn person(name: Option<&str>, email: Option<&str>) -> Option<Person> {
    name.map(|n| Person {
        name: n.to_owned(),
        email: email.map(str::to_owned),
    })
}

fn uuid_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

/// The document's local-definitions, by uuid, and which of them were used.
struct Locals<'a> {
    components: HashMap<&'a str, (usize, &'a Value)>,
    inventory: HashMap<&'a str, (usize, &'a Value)>,
    used_components: BTreeSet<usize>,
    used_inventory: BTreeSet<usize>,
}

impl<'a> Locals<'a> {
    fn of(root: &'a Value) -> Self {
        let index = |key: &str| -> HashMap<&'a str, (usize, &'a Value)> {
            root.get("local-definitions")
                .map_or(&[][..], |l| arr(l, key))
                .iter()
                .enumerate()
                .filter_map(|(i, v)| Some((v.get("uuid")?.as_str()?, (i, v))))
                .collect()
        };
        Locals {
            components: index("components"),
            inventory: index("inventory-items"),
            used_components: BTreeSet::new(),
            used_inventory: BTreeSet::new(),
        }
    }

    /// A tool's name: its component's title (FedRAMP's `name` prop first).
    fn tool(&mut self, uuid: &str) -> Option<String> {
        let (i, c) = self.components.get(uuid).copied()?;
        self.used_components.insert(i);
        let named = arr(c, "props")
            .iter()
            .find(|p| p.get("name").and_then(Value::as_str) == Some("name"))
            .and_then(|p| text(p, "value"));
        named
            .or_else(|| text(c, "title"))
            .map(|s| s.trim().to_owned())
    }

    /// An asset's name: the inventory item's `asset-id`, `fqdn` or `ipv4-address` prop, or its
    /// description.
    fn asset(&mut self, uuid: &str) -> Option<String> {
        if let Some((i, inv)) = self.inventory.get(uuid).copied() {
            self.used_inventory.insert(i);
            for name in ["asset-id", "fqdn", "ipv4-address", "ipv6-address", "uri"] {
                if let Some(v) = arr(inv, "props")
                    .iter()
                    .find(|p| p.get("name").and_then(Value::as_str) == Some(name))
                    .and_then(|p| text(p, "value"))
                {
                    return Some(v.to_owned());
                }
            }
            return text(inv, "description").map(str::to_owned);
        }
        let (i, c) = self.components.get(uuid).copied()?;
        self.used_components.insert(i);
        text(c, "title").map(str::to_owned)
    }
}

/// Reads an OSCAL POA&M document. Refuses (with every dangling reference named) a document
/// whose poam-items or risks point at objects it does not contain, unless `on_dangling` is
/// `skip`: then the poam-items a dangling reference touches are kept out and listed.
pub fn read(doc: &Value, options: ReadOptions) -> Result<Plan, Vec<Violation>> {
    let Some(root) = doc.get("plan-of-action-and-milestones") else {
        return Err(vec![bad(
            "not_oscal_poam",
            "",
            "the document has no `plan-of-action-and-milestones` root",
        )]);
    };
    let mut r = Reader::default();
    r.rest(doc, "", &["plan-of-action-and-milestones"]);
    if !root.is_object() {
        return Err(vec![bad("invalid_type", ROOT, "must be an object")]);
    }
    r.rest(
        root,
        ROOT,
        &[
            "uuid",
            "metadata",
            "import-ssp",
            "system-id",
            "local-definitions",
            "observations",
            "risks",
            "findings",
            "poam-items",
            "back-matter",
        ],
    );
    let version = root
        .pointer("/metadata/oscal-version")
        .and_then(Value::as_str)
        .unwrap_or("");
    if !(version.starts_with("1.0.") || version.starts_with("1.1.") || version.starts_with("1.2."))
    {
        return Err(vec![bad(
            "unsupported_oscal_version",
            format!("{ROOT}/metadata/oscal-version"),
            format!("`{version}` is not an OSCAL version this service reads (1.0.x to 1.2.x)"),
        )]);
    }
    let Some(doc_uuid) = text(root, "uuid") else {
        return Err(vec![bad(
            "missing_field",
            format!("{ROOT}/uuid"),
            "the document has no uuid",
        )]);
    };
    let from_this_service = arr(root.get("metadata").unwrap_or(&Value::Null), "props")
        .iter()
        .any(|p| {
            p.get("ns").and_then(Value::as_str) == Some(POAM_NS)
                && p.get("name").and_then(Value::as_str) == Some("regime")
        });
    read_frame(&mut r, root);

    let risks: HashMap<&str, (usize, &Value)> = arr(root, "risks")
        .iter()
        .enumerate()
        .filter_map(|(i, v)| Some((v.get("uuid")?.as_str()?, (i, v))))
        .collect();
    let observations: HashMap<&str, (usize, &Value)> = arr(root, "observations")
        .iter()
        .enumerate()
        .filter_map(|(i, v)| Some((v.get("uuid")?.as_str()?, (i, v))))
        .collect();
    let poam_items = arr(root, "poam-items");
    if poam_items.is_empty() {
        return Err(vec![bad(
            "missing_field",
            format!("{ROOT}/poam-items"),
            "the document has no poam-items",
        )]);
    }

    // References first: by default a document with a dangling one is refused whole.
    let mut risk_dangling: HashMap<usize, Vec<Violation>> = HashMap::new();
    for (u, (i, risk)) in &risks {
        for (j, ro) in arr(risk, "related-observations").iter().enumerate() {
            let o = uuid_of(ro, "observation-uuid");
            if !observations.contains_key(o) {
                risk_dangling.entry(*i).or_default().push(bad(
                    "dangling_reference",
                    format!("{ROOT}/risks/{i}/related-observations/{j}/observation-uuid"),
                    format!(
                        "`{o}` (of risk {u}) is not the uuid of an observation in this document"
                    ),
                ));
            }
        }
    }
    let mut item_dangling: Vec<Vec<Violation>> = vec![Vec::new(); poam_items.len()];
    let mut risks_kept_out = BTreeSet::new();
    for (i, p) in poam_items.iter().enumerate() {
        for (j, rr) in arr(p, "related-risks").iter().enumerate() {
            let u = uuid_of(rr, "risk-uuid");
            match risks.get(u) {
                None => item_dangling[i].push(bad(
                    "dangling_reference",
                    format!("{ROOT}/poam-items/{i}/related-risks/{j}/risk-uuid"),
                    format!("`{u}` is not the uuid of a risk in this document"),
                )),
                Some((ri, _)) => {
                    if let Some(d) = risk_dangling.get(ri) {
                        item_dangling[i].extend(d.iter().cloned());
                        risks_kept_out.insert(*ri);
                    }
                }
            }
        }
        for (j, ro) in arr(p, "related-observations").iter().enumerate() {
            let u = uuid_of(ro, "observation-uuid");
            if !observations.contains_key(u) {
                item_dangling[i].push(bad(
                    "dangling_reference",
                    format!("{ROOT}/poam-items/{i}/related-observations/{j}/observation-uuid"),
                    format!("`{u}` is not the uuid of an observation in this document"),
                ));
            }
        }
    }
    if options.on_dangling == OnDangling::Refuse {
        let mut all: Vec<Violation> = item_dangling
            .iter()
            .flatten()
            .cloned()
            .chain(risk_dangling.values().flatten().cloned())
            .collect();
        if !all.is_empty() {
            all.sort_by(|a, b| a.pointer.cmp(&b.pointer));
            all.dedup_by(|a, b| a.pointer == b.pointer);
            return Err(all);
        }
    }
    // Dangling references of risks no kept-out item uses are listed on their own.
    for (ri, list) in &risk_dangling {
        if !risks_kept_out.contains(ri) {
            for v in list {
                r.unmapped.insert(
                    v.pointer.clone(),
                    (UnmappedReason::Dangling, v.message.clone()),
                );
            }
        }
    }

    let mut locals = Locals::of(root);
    let mut used_risks = BTreeSet::new();
    let mut used_observations = BTreeSet::new();
    let mut items = Vec::new();
    let mut kept_out = Vec::new();
    for (i, p) in poam_items.iter().enumerate() {
        let at = format!("{ROOT}/poam-items/{i}");
        let risk = arr(p, "related-risks")
            .first()
            .and_then(|rr| risks.get(uuid_of(rr, "risk-uuid")).copied());
        let uuid = text(p, "uuid")
            .or_else(|| risk.and_then(|(_, rv)| text(rv, "uuid")))
            .unwrap_or("")
            .to_owned();
        let poam_id = arr(p, "props")
            .iter()
            .find(|x| x.get("name").and_then(Value::as_str) == Some("POAM-ID"))
            .and_then(|x| text(x, "value"))
            .map(str::to_owned);
        if !item_dangling[i].is_empty() {
            let mut dangling = std::mem::take(&mut item_dangling[i]);
            dangling.sort_by(|a, b| a.pointer.cmp(&b.pointer));
            dangling.dedup_by(|a, b| a.pointer == b.pointer);
            kept_out.push(KeptOut {
                uuid,
                pointer: at,
                poam_id,
                dangling,
            });
            continue;
        }
        let mut draft = ItemDraft {
            uuid,
            pointer: at.clone(),
            poam_id: None,
            fields: FieldsDraft::default(),
            milestones: Vec::new(),
            notes: Vec::new(),
        };
        read_poam_item(&mut r, p, &at, from_this_service, &mut draft);
        for (j, _) in arr(p, "related-risks").iter().enumerate().skip(1) {
            r.not_kept(
                format!("{at}/related-risks/{j}"),
                "an item has one risk: the first related risk is read",
            );
        }
        if let Some((ri, rv)) = risk {
            used_risks.insert(ri);
            read_risk(&mut r, &mut locals, rv, ri, &mut draft);
        }
        let observation = arr(p, "related-observations")
            .first()
            .and_then(|ro| observations.get(uuid_of(ro, "observation-uuid")).copied())
            .or_else(|| {
                let (_, rv) = risk?;
                arr(rv, "related-observations")
                    .first()
                    .and_then(|ro| observations.get(uuid_of(ro, "observation-uuid")).copied())
            });
        for (j, ro) in arr(p, "related-observations").iter().enumerate().skip(1) {
            // FedRAMP links a deviation's evidence as a second observation.
            let u = uuid_of(ro, "observation-uuid");
            if let Some((oi, _)) = observations.get(u) {
                if used_observations.insert(*oi) {
                    r.not_kept(
                        format!("{ROOT}/observations/{oi}"),
                        "an item has one observation (how it was found): this one is not kept",
                    );
                }
            }
            r.not_kept(
                format!("{at}/related-observations/{j}"),
                "an item has one observation: the first related observation is read",
            );
        }
        match observation {
            Some((oi, ov)) => {
                let fresh = used_observations.insert(oi);
                read_observation(&mut r, &mut locals, ov, oi, fresh, &mut draft);
            }
            None => {
                draft.fields.source.get_or_insert(Source {
                    details: Default::default(),
                    kind: SourceKind::Assessment,
                    detector: None,
                    identifier: None,
                });
            }
        }
        derive_rating(&mut draft);
        items.push(draft);
    }
    for (i, _) in risks.values() {
        if !used_risks.contains(i) && !risks_kept_out.contains(i) {
            r.not_kept(
                format!("{ROOT}/risks/{i}"),
                "no poam-item of the document relates to this risk",
            );
        }
    }
    for (i, _) in observations.values() {
        if !used_observations.contains(i) {
            r.not_kept(
                format!("{ROOT}/observations/{i}"),
                "no poam-item of the document relates to this observation",
            );
        }
    }
    for (key, index, used) in [
        ("components", &locals.components, &locals.used_components),
        ("inventory-items", &locals.inventory, &locals.used_inventory),
    ] {
        for (i, _) in index.values() {
            if !used.contains(i) {
                r.not_kept(
                    format!("{ROOT}/local-definitions/{key}/{i}"),
                    "no observation names it as its tool or subject",
                );
            }
        }
    }
    Ok(Plan {
        uuid: doc_uuid.to_owned(),
        oscal_version: version.to_owned(),
        from_this_service,
        items,
        kept_out,
        unmapped: r
            .unmapped
            .into_iter()
            .map(|(pointer, (reason, detail))| Unmapped {
                pointer,
                reason,
                detail,
            })
            .collect(),
    })
}

/// The document's frame: metadata, the system it names, local definitions beyond components
/// and inventory, findings, back-matter.
fn read_frame(r: &mut Reader, root: &Value) {
    if let Some(Value::Object(metadata)) = root.get("metadata") {
        for k in metadata.keys() {
            if k != "oscal-version" {
                r.not_kept(
                    format!("{ROOT}/metadata/{}", esc(k)),
                    "the document's metadata: an export writes the system's own",
                );
            }
        }
    }
    for key in ["import-ssp", "system-id"] {
        if root.get(key).is_some() {
            r.not_kept(
                format!("{ROOT}/{key}"),
                "the document's system: the import goes into the system of the request",
            );
        }
    }
    if let Some(Value::Object(locals)) = root.get("local-definitions") {
        for k in locals.keys() {
            if k != "components" && k != "inventory-items" {
                r.not_kept(
                    format!("{ROOT}/local-definitions/{}", esc(k)),
                    "local definitions other than tools and assets are not kept",
                );
            }
        }
    }
    for (i, _) in arr(root, "findings").iter().enumerate() {
        r.not_kept(
            format!("{ROOT}/findings/{i}"),
            "assessment findings are not POA&M items",
        );
    }
    let resources = root
        .get("back-matter")
        .map_or(&[][..], |b| arr(b, "resources"));
    for (i, _) in resources.iter().enumerate() {
        r.not_kept(
            format!("{ROOT}/back-matter/resources/{i}"),
            "back-matter resources (evidence files, the SSP) are not imported: evidence is uploaded to the item",
        );
    }
}

fn read_poam_item(
    r: &mut Reader,
    p: &Value,
    at: &str,
    from_this_service: bool,
    draft: &mut ItemDraft,
) {
    r.rest(
        p,
        at,
        &[
            "uuid",
            "title",
            "description",
            "props",
            "links",
            "related-observations",
            "related-risks",
            "remarks",
        ],
    );
    for (j, _) in arr(p, "links").iter().enumerate() {
        r.not_kept(
            format!("{at}/links/{j}"),
            "links to evidence resources: evidence files are uploaded to the item",
        );
    }
    let mut props = Props::of(p, at);
    draft.poam_id = props.get("POAM-ID").map(str::to_owned);
    draft.fields.detected_on = props.parsed(r, "detected-on", "a date", date_of);
    props.finish(r);
    if !from_this_service {
        // A provider's own POA&M id is kept as the item's external id (unless the document
        // gives one), and exported back as such.
        draft.fields.external_id = draft.poam_id.clone();
    }
    draft.fields.title = text(p, "title").map(str::to_owned);
    draft.fields.description = text(p, "description").map(str::to_owned);
    draft.fields.comments = text(p, "remarks").map(str::to_owned);
}

/// Fills `slot` from the risk's `key` text when the poam-item did not; when both have one and
/// they differ, the risk's is listed as not kept.
fn fill_text(r: &mut Reader, rv: &Value, at: &str, key: &str, slot: &mut Option<String>) {
    let Some(t) = text(rv, key) else { return };
    match slot {
        None => *slot = Some(t.to_owned()),
        Some(s) if s == t => {}
        Some(_) => r.not_kept(
            format!("{at}/{key}"),
            format!("the poam-item's {key} is the item's; the risk's differs"),
        ),
    }
}

fn read_risk(r: &mut Reader, locals: &mut Locals<'_>, rv: &Value, ri: usize, d: &mut ItemDraft) {
    let at = format!("{ROOT}/risks/{ri}");
    r.rest(
        rv,
        &at,
        &[
            "uuid",
            "title",
            "description",
            "statement",
            "props",
            "status",
            "origins",
            "characterizations",
            "mitigating-factors",
            "deadline",
            "remediations",
            "risk-log",
            "related-observations",
            "remarks",
        ],
    );
    let f = &mut d.fields;
    fill_text(r, rv, &at, "title", &mut f.title);
    fill_text(r, rv, &at, "description", &mut f.description);
    if let Some(s) = text(rv, "statement") {
        if f.description.is_none() {
            f.description = Some(s.to_owned());
        } else if f.description.as_deref() != Some(s) && s != "No Risk Statement" {
            r.not_kept(
                format!("{at}/statement"),
                "the risk statement: the item keeps one description",
            );
        }
    }
    if let Some(t) = text(rv, "remarks") {
        // OSCAL's risk has no remarks; older exports of this service wrote the residual risk
        // there.
        f.residual_risk = Some(t.to_owned());
    }
    if !arr(rv, "origins").is_empty() {
        r.not_kept(
            format!("{at}/origins"),
            "who identified the risk: the observation's origin names the source",
        );
    }
    let mut props = Props::of(rv, &at);
    let status_prop = props.parsed(r, "status", "an item status", |s| {
        s.parse::<ItemStatus>().ok()
    });
    f.status =
        Some(status_prop.unwrap_or_else(|| status_of_risk(text(rv, "status").unwrap_or("open"))));
    f.external_id = props
        .get("external-id")
        .map(str::to_owned)
        .or(f.external_id.take());
    f.completed_on = props.parsed(r, "completed-on", "a date", date_of);
    f.closed_on = props.parsed(r, "closed-on", "a date", date_of);
    f.actual_cost = props.parsed(r, "actual-cost", "a number", |c| c.parse::<f64>().ok());
    // A deadline this service derived by a rule (not set by hand) is derived again by the
    // importing system's own rules.
    let derived_deadline = props.get("deadline-rule").is_some_and(|r| r != "manual");
    if let Some(i) = props.find("residual-risk") {
        let (_, v, _, remarks) = props.list[i];
        f.residual_risk = Some(remarks.unwrap_or(v).to_owned());
    }
    for name in ["control-id", "impacted-control-id"] {
        for (v, _) in props.all(name) {
            let c = control_from_oscal(v);
            if !f.controls.contains(&c) {
                f.controls.push(c);
            }
        }
    }
    for (v, _) in props.all("cve-id") {
        f.cves.push(v.to_owned());
    }
    f.owner = person(props.get("owner-name"), props.get("owner-email"));
    f.implementer = person(
        props.get("implementer-name"),
        props.get("implementer-email"),
    );
    f.escalation_contact = person(
        props.get("escalation-contact-name"),
        props.get("escalation-contact-email"),
    );
    // FedRAMP's deviation props: investigating or pending is a pending request, approved an
    // approved one; withdrawn (or this service's older `no`) none.
    let mut deviation: Option<(DeviationKind, DeviationStatus)> = None;
    for kind in DeviationKind::ALL {
        let name = deviation_prop(*kind);
        let st = props.parsed(
            r,
            name,
            "investigating, pending, approved or withdrawn",
            |v| match v.to_ascii_lowercase().as_str() {
                "approved" | "yes" => Some(Some(DeviationStatus::Approved)),
                "pending" | "investigating" => Some(Some(DeviationStatus::Pending)),
                "rejected" => Some(Some(DeviationStatus::Rejected)),
                "withdrawn" | "no" => Some(None),
                _ => None,
            },
        );
        if let (Some(Some(st)), None) = (st, deviation) {
            deviation = Some((*kind, st));
        }
    }
    let vendor = props.parsed(
        r,
        "vendor-dependency",
        "investigating, tracking or resolved",
        |v| match v.to_ascii_lowercase().as_str() {
            "investigating" | "tracking" | "yes" => Some(true),
            "resolved" | "no" => Some(false),
            _ => None,
        },
    );
    let product = props.get("vendor-dependent-product");
    let vendor_name = props.get("vendor-name");
    let check_in = props.parsed(r, "vendor-last-check-in", "a date", date_of);
    if vendor == Some(true) {
        f.vendor_dependency = Some(VendorDependency {
            product: product.unwrap_or("Unnamed vendor product").to_owned(),
            vendor: vendor_name.map(str::to_owned),
            last_check_in: check_in,
        });
    }
    f.change_management = read_change(r, &mut props);
    props.finish(r);

    read_characterizations(r, locals, rv, &at, d);
    let f = &mut d.fields;
    for (j, m) in arr(rv, "mitigating-factors").iter().enumerate() {
        let mat = format!("{at}/mitigating-factors/{j}");
        if j == 0 {
            f.interim_mitigation = text(m, "description").map(str::to_owned);
            r.rest(m, &mat, &["uuid", "description"]);
        } else {
            r.not_kept(
                mat,
                "an item keeps one interim mitigation: the first is read",
            );
        }
    }
    if let Some(dl) = text(rv, "deadline").filter(|_| !derived_deadline) {
        f.scheduled_completion = date_of(dl);
        if f.scheduled_completion.is_none() {
            r.unparseable(format!("{at}/deadline"), dl, "a date-time");
        }
    }
    read_remediations(r, rv, &at, d);
    read_risk_log(r, rv, &at, deviation, d);
}

fn read_change(r: &mut Reader, props: &mut Props<'_>) -> Option<ChangeManagement> {
    let mut text_of = |name: &str| props.get(name).map(str::to_owned);
    let mut c = ChangeManagement {
        ticket: text_of("change-ticket"),
        ticket_url: text_of("change-ticket-url"),
        testing: text_of("change-testing"),
        approval_authority: text_of("change-approval-authority"),
        rollback: text_of("change-rollback"),
        communication: text_of("change-communication"),
        window_start: None,
        window_end: None,
        impact: None,
        expedited: None,
    };
    let ts = |s: &str| {
        DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    };
    c.window_start = props.parsed(r, "change-window-start", "a timestamp", ts);
    c.window_end = props.parsed(r, "change-window-end", "a timestamp", ts);
    c.impact = props.parsed(r, "change-impact", "an operational impact", |s| {
        s.parse::<OperationalImpact>().ok()
    });
    c.expedited = props.parsed(r, "change-expedited", "true or false", |s| {
        s.parse::<bool>().ok()
    });
    let empty = ChangeManagement {
        ticket: None,
        ticket_url: None,
        testing: None,
        approval_authority: None,
        rollback: None,
        communication: None,
        window_start: None,
        window_end: None,
        impact: None,
        expedited: None,
    };
    (c != empty).then_some(c)
}

/// Facets by their FedRAMP `state` (or, in older documents of this service, their
/// characterization's `characterization` prop): initial or adjusted.
fn read_characterizations(
    r: &mut Reader,
    locals: &mut Locals<'_>,
    rv: &Value,
    at: &str,
    d: &mut ItemDraft,
) {
    let f = &mut d.fields;
    let mut adjusted_likelihood = None;
    let mut adjusted_impact = None;
    let mut adjusted_at = Vec::new();
    for (ci, c) in arr(rv, "characterizations").iter().enumerate() {
        let cat = format!("{at}/characterizations/{ci}");
        r.rest(c, &cat, &["props", "origin", "facets", "links"]);
        let mut cprops = Props::of(c, &cat);
        let whole = cprops.get("characterization");
        cprops.finish(r);
        if let Some(origin) = c.get("origin") {
            read_tool_actor(r, locals, origin, &format!("{cat}/origin"), f);
        }
        for (fi, facet) in arr(c, "facets").iter().enumerate() {
            let fat = format!("{cat}/facets/{fi}");
            r.rest(
                facet,
                &fat,
                &["name", "system", "value", "props", "remarks", "links"],
            );
            let mut fprops = Props::of(facet, &fat);
            let state_i = fprops.find("state");
            let state = state_i
                .map(|i| fprops.list[i].1)
                .or(whole)
                .unwrap_or("initial");
            let state_remarks = state_i.and_then(|i| fprops.list[i].3);
            fprops.finish(r);
            let name = text(facet, "name").unwrap_or("");
            let value = text(facet, "value").unwrap_or("");
            let system = text(facet, "system").unwrap_or("");
            let adjusted = match state {
                "initial" => false,
                "adjusted" => true,
                other => {
                    r.unparseable(format!("{fat}/props"), other, "initial or adjusted");
                    continue;
                }
            };
            let remarks = text(facet, "remarks").or(state_remarks);
            let ok = match (name, adjusted) {
                ("risk", false) => rating_of(value).map(|v| f.risk_rating = Some(v)),
                ("risk", true) => rating_of(value).map(|v| {
                    f.adjusted_risk_rating = Some(v);
                    if let Some(j) = remarks {
                        f.risk_justification = Some(j.to_owned());
                    }
                }),
                ("likelihood", false) => level(value).map(|v| f.likelihood = Some(v)),
                ("impact", false) => level(value).map(|v| f.impact = Some(v)),
                ("likelihood", true) => level(value).map(|v| {
                    adjusted_likelihood = Some(v);
                    adjusted_at.push(fat.clone());
                    if let (Some(j), None) = (remarks, &f.risk_justification) {
                        f.risk_justification = Some(j.to_owned());
                    }
                }),
                ("impact", true) => level(value).map(|v| {
                    adjusted_impact = Some(v);
                    adjusted_at.push(fat.clone());
                    if let (Some(j), None) = (remarks, &f.risk_justification) {
                        f.risk_justification = Some(j.to_owned());
                    }
                }),
                ("vulnerability-id" | "cve-id" | "cve", _)
                    if value.to_ascii_uppercase().starts_with("CVE-")
                        || system.contains("cve.mitre.org") =>
                {
                    if !f.cves.iter().any(|c| c.eq_ignore_ascii_case(value)) {
                        f.cves.push(value.to_owned());
                    }
                    Some(())
                }
                _ => None,
            };
            if ok.is_none() {
                if matches!(name, "risk" | "likelihood" | "impact") {
                    r.unparseable(fat, value, "a level (very low to very high)");
                } else {
                    r.unknown(fat);
                }
            }
        }
    }
    // Adjusted likelihood and impact, without an adjusted risk: the adjusted rating follows
    // from them (NIST SP 800-30 Table I-2); with one, they are not kept.
    if f.adjusted_risk_rating.is_none() {
        if let Some(a) = adjusted_level(f, adjusted_likelihood, adjusted_impact) {
            f.adjusted_risk_rating = Some(a);
            d.notes.push(Violation::new(
                "adjusted_rating_derived",
                "/adjusted_risk_rating",
                format!(
                    "derived from the adjusted likelihood and impact by NIST SP 800-30 Rev. 1 Table I-2: {a}"
                ),
            ));
        }
    } else {
        for fat in adjusted_at {
            r.not_kept(
                fat,
                "adjusted likelihood and impact: the item keeps the adjusted risk rating",
            );
        }
    }
}

fn adjusted_level(f: &FieldsDraft, l: Option<Level>, i: Option<Level>) -> Option<RiskRating> {
    if l.is_none() && i.is_none() {
        return None;
    }
    let l = l.or(f.likelihood)?;
    let i = i.or(f.impact)?;
    Some(rating_of_level(level_of_risk(l, i)))
}

/// A tool actor of an origin: its component's name is the detector, its `vulnerability-id` or
/// `plugin-id` prop the source identifier (FedRAMP's Weakness Source Identifier).
fn read_tool_actor(
    r: &mut Reader,
    locals: &mut Locals<'_>,
    origin: &Value,
    at: &str,
    f: &mut FieldsDraft,
) {
    r.rest(origin, at, &["actors", "related-tasks"]);
    for (ai, a) in arr(origin, "actors").iter().enumerate() {
        let aat = format!("{at}/actors/{ai}");
        r.rest(
            a,
            &aat,
            &["type", "actor-uuid", "role-id", "props", "links"],
        );
        let mut props = Props::of(a, &aat);
        let id = props.get("vulnerability-id");
        let plugin = props.get("plugin-id");
        props.finish(r);
        if text(a, "type") != Some("tool") {
            continue;
        }
        let source = f.source.get_or_insert(Source {
            details: Default::default(),
            kind: SourceKind::Scan,
            detector: None,
            identifier: None,
        });
        if source.detector.is_none() {
            source.detector = locals.tool(uuid_of(a, "actor-uuid"));
        }
        if source.identifier.is_none() {
            source.identifier = plugin.or(id).map(str::to_owned);
        }
    }
}

fn read_remediations(r: &mut Reader, rv: &Value, at: &str, d: &mut ItemDraft) {
    let rems = arr(rv, "remediations");
    // The plan: the first `planned` (or `completed`) remediation; a document without one has
    // no plan, whatever it recommends.
    let plan = rems
        .iter()
        .position(|m| matches!(text(m, "lifecycle"), Some("planned") | Some("completed")));
    let mut plan_text = None;
    if let Some(k) = plan {
        plan_text = read_plan(r, &rems[k], &format!("{at}/remediations/{k}"), d);
    }
    for (k, m) in rems.iter().enumerate() {
        if Some(k) == plan {
            continue;
        }
        let rat = format!("{at}/remediations/{k}");
        match text(m, "lifecycle") {
            Some("recommendation") => {
                let desc = text(m, "description").unwrap_or("");
                if plan_text.as_deref() == Some(desc) {
                    // The recommendation this service writes beside its plan.
                    r.rest(
                        m,
                        &rat,
                        &[
                            "uuid",
                            "lifecycle",
                            "title",
                            "description",
                            "origins",
                            "props",
                        ],
                    );
                } else {
                    r.not_kept(
                        rat,
                        format!(
                            "a recommendation (\"{}\"): the item keeps the planned remediation as its plan",
                            desc.chars().take(120).collect::<String>()
                        ),
                    );
                }
            }
            _ => r.not_kept(
                rat,
                "an item has one remediation plan: the first planned remediation is read",
            ),
        }
    }
}

/// The planned remediation: description, resources, milestones. Returns the description read.
fn read_plan(r: &mut Reader, rem: &Value, rat: &str, d: &mut ItemDraft) -> Option<String> {
    r.rest(
        rem,
        rat,
        &[
            "uuid",
            "lifecycle",
            "title",
            "description",
            "props",
            "origins",
            "required-assets",
            "tasks",
        ],
    );
    if let Some(t) = text(rem, "title").filter(|t| *t != "Remediation plan") {
        r.not_kept(
            format!("{rat}/title"),
            format!("the remediation's title (\"{t}\"): the item has no field for it"),
        );
    }
    let f = &mut d.fields;
    let mut rprops = Props::of(rem, rat);
    let recorded = rprops.get("remediation-plan") != Some("none");
    let desc = text(rem, "description").map(str::to_owned);
    if recorded {
        f.remediation_plan = desc.clone();
    }
    let number = |c: &str| c.parse::<f64>().ok().filter(|n| n.is_finite());
    let boolean = |c: &str| c.parse::<bool>().ok();
    let mut resources = Resources {
        description: None,
        estimated_cost: rprops.parsed(r, "estimated-cost", "a number", number),
        hours: rprops.parsed(r, "hours", "a number", number),
        funded: rprops.parsed(r, "funded", "true or false", boolean),
        recurring: rprops.parsed(r, "recurring", "true or false", boolean),
    };
    rprops.finish(r);
    for (ai, a) in arr(rem, "required-assets").iter().enumerate() {
        let aat = format!("{rat}/required-assets/{ai}");
        if ai == 0 {
            resources.description = text(a, "description").map(str::to_owned);
            r.rest(a, &aat, &["uuid", "description"]);
            if a.get("subjects").is_some() {
                r.not_kept(
                    format!("{aat}/subjects"),
                    "who or what the resources are: the item keeps their description",
                );
            }
        } else {
            r.not_kept(
                aat,
                "an item keeps one resources description: the first is read",
            );
        }
    }
    let empty = Resources {
        description: None,
        estimated_cost: None,
        hours: None,
        funded: None,
        recurring: None,
    };
    if resources != empty {
        f.resources = Some(resources);
    }
    for (ti, t) in arr(rem, "tasks").iter().enumerate() {
        let tat = format!("{rat}/tasks/{ti}");
        if text(t, "type") != Some("milestone") {
            r.not_kept(
                tat,
                "an action task: the item's milestones are the milestone tasks",
            );
            continue;
        }
        read_task(r, t, &tat, d);
    }
    desc
}

fn read_task(r: &mut Reader, t: &Value, tat: &str, d: &mut ItemDraft) {
    r.rest(
        t,
        tat,
        &[
            "uuid",
            "type",
            "title",
            "description",
            "props",
            "timing",
            "remarks",
        ],
    );
    if text(t, "remarks").is_some() {
        r.not_kept(
            format!("{tat}/remarks"),
            "the document's account of due-date moves: the importing system records its own",
        );
    }
    let mut tprops = Props::of(t, tat);
    let status = tprops
        .parsed(r, "milestone-status", "a milestone status", |s| {
            s.parse::<MilestoneStatus>().ok()
        })
        .unwrap_or(MilestoneStatus::Planned);
    let completed_on = tprops.parsed(r, "completed-on", "a date", date_of);
    let kind = tprops.parsed(r, "milestone-kind", "a milestone kind", |k| {
        k.parse::<MilestoneKind>().ok()
    });
    let percent_complete = tprops.parsed(r, "percent-complete", "a whole number 0 to 100", |p| {
        p.parse::<i32>().ok().filter(|p| (0..=100).contains(p))
    });
    // Derived on read: the importing system judges them itself.
    let _ = tprops.get("milestone-delayed");
    let _ = tprops.get("position");
    tprops.finish(r);
    let timing = t.get("timing");
    let on = timing
        .and_then(|x| x.pointer("/on-date/date"))
        .and_then(Value::as_str);
    let range_end = timing
        .and_then(|x| x.pointer("/within-date-range/end"))
        .and_then(Value::as_str);
    if let Some(start) = timing
        .and_then(|x| x.pointer("/within-date-range/start"))
        .and_then(Value::as_str)
    {
        r.not_kept(
            format!("{tat}/timing/within-date-range/start"),
            format!("the task's start ({start}): a milestone has a due date, its end"),
        );
    }
    if let Some(Value::Object(tm)) = timing {
        for k in tm.keys() {
            if k != "on-date" && k != "within-date-range" {
                r.unknown(format!("{tat}/timing/{}", esc(k)));
            }
        }
    }
    let raw = on.or(range_end);
    let due = raw.and_then(date_of);
    if let (Some(v), None) = (raw, due) {
        r.unparseable(format!("{tat}/timing"), v, "a date-time");
    }
    match (text(t, "uuid"), text(t, "title"), due) {
        (Some(u), Some(title), Some(due_on)) => d.milestones.push(MilestoneDraft {
            uuid: u.to_owned(),
            title: title.to_owned(),
            description: text(t, "description").map(str::to_owned),
            due_on,
            status,
            completed_on,
            kind,
            percent_complete,
        }),
        _ => r.not_kept(
            tat,
            "a milestone needs a uuid, a title and a due date (timing on-date)",
        ),
    }
}

fn read_risk_log(
    r: &mut Reader,
    rv: &Value,
    at: &str,
    from_props: Option<(DeviationKind, DeviationStatus)>,
    d: &mut ItemDraft,
) {
    let mut deviation = from_props;
    let mut rationale = None;
    let entries = rv.get("risk-log").map_or(&[][..], |l| arr(l, "entries"));
    for (ei, e) in entries.iter().enumerate() {
        let eat = format!("{at}/risk-log/entries/{ei}");
        let mut eprops = Props::of(e, &eat);
        let kind = eprops
            .get("deviation-kind")
            .and_then(|k| k.parse::<DeviationKind>().ok());
        let Some(kind) = kind else {
            r.not_kept(
                eat,
                "an entry of the document's history: the importing system keeps its own",
            );
            continue;
        };
        let st = eprops
            .parsed(r, "deviation-status", "a deviation status", |s| {
                s.parse::<DeviationStatus>().ok()
            })
            .unwrap_or(DeviationStatus::Pending);
        eprops.finish(r);
        deviation = Some((kind, st));
        rationale = text(e, "description").map(str::to_owned);
    }
    if let Some((kind, status)) = deviation {
        d.fields.deviation = Some(Deviation {
            kind,
            status,
            rationale: rationale
                .unwrap_or_else(|| "Recorded in the imported OSCAL document.".into()),
            expires_on: None,
        });
    }
}

fn read_observation(
    r: &mut Reader,
    locals: &mut Locals<'_>,
    ov: &Value,
    oi: usize,
    fresh: bool,
    d: &mut ItemDraft,
) {
    let oat = format!("{ROOT}/observations/{oi}");
    let mut sink = Reader::default();
    // An observation shared by several items is accounted for once.
    let r: &mut Reader = if fresh { r } else { &mut sink };
    r.rest(
        ov,
        &oat,
        &[
            "uuid",
            "title",
            "description",
            "props",
            "methods",
            "types",
            "subjects",
            "collected",
            "origins",
            "relevant-evidence",
        ],
    );
    let f = &mut d.fields;
    let mut oprops = Props::of(ov, &oat);
    let kind = oprops
        .parsed(r, "source-kind", "a source kind", |k| {
            k.parse::<SourceKind>().ok()
        })
        .unwrap_or_else(|| source_of_methods(arr(ov, "methods")));
    let source = f.source.get_or_insert(Source {
        details: Default::default(),
        kind,
        detector: None,
        identifier: None,
    });
    source.kind = kind;
    if let Some(det) = oprops.get("detector") {
        source.detector = Some(det.to_owned());
    }
    if let Some(id) = oprops.get("source-identifier") {
        source.identifier = Some(id.to_owned());
    }
    oprops.finish(r);
    for (i, origin) in arr(ov, "origins").iter().enumerate() {
        read_tool_actor(r, locals, origin, &format!("{oat}/origins/{i}"), f);
    }
    if let Some(s) = f.source.as_mut() {
        s.kind = kind;
    }
    for (si, s) in arr(ov, "subjects").iter().enumerate() {
        let sat = format!("{oat}/subjects/{si}");
        let name = text(s, "title")
            .map(str::to_owned)
            .or_else(|| locals.asset(uuid_of(s, "subject-uuid")));
        match name {
            Some(n) => {
                let _ = locals.asset(uuid_of(s, "subject-uuid"));
                if !f.assets.contains(&n) {
                    f.assets.push(n);
                }
            }
            None => r.not_kept(
                sat,
                "a subject without a title or a local inventory item or component naming it",
            ),
        }
    }
    if f.detected_on.is_none() {
        if let Some(c) = text(ov, "collected") {
            f.detected_on = date_of(c);
            if f.detected_on.is_none() {
                r.unparseable(format!("{oat}/collected"), c, "a date-time");
            }
        }
    }
    if let Some(t) = text(ov, "title") {
        if f.title.as_deref() != Some(t) {
            r.not_kept(
                format!("{oat}/title"),
                "the observation's title: the item's title is the poam-item's",
            );
        }
    }
    if let Some(desc) = text(ov, "description") {
        let ours = f.source.as_ref().map(|s| {
            format!(
                "Found by {} ({}).",
                s.detector.as_deref().unwrap_or("an unnamed detector"),
                s.kind.as_str().replace('_', " ")
            )
        });
        if ours.as_deref() != Some(desc) {
            r.not_kept(
                format!("{oat}/description"),
                "the observation's description: the item keeps its source, not its narrative",
            );
        }
    }
    for (i, _) in arr(ov, "relevant-evidence").iter().enumerate() {
        r.not_kept(
            format!("{oat}/relevant-evidence/{i}"),
            "evidence references: evidence files are uploaded to the item",
        );
    }
}

/// A missing risk rating, derived from likelihood and impact by NIST SP 800-30 Rev. 1
/// Table I-2; with only one of them, the other is taken at its worst (very high) and the
/// rating flagged for review.
fn derive_rating(d: &mut ItemDraft) {
    let f = &mut d.fields;
    if f.risk_rating.is_some() {
        return;
    }
    let (rating, how) = match (f.likelihood, f.impact) {
        (Some(l), Some(i)) => (
            rating_of_level(level_of_risk(l, i)),
            format!("derived from likelihood {l} and impact {i} by NIST SP 800-30 Rev. 1 Table I-2"),
        ),
        (Some(l), None) => (
            rating_of_level(level_of_risk(l, Level::VeryHigh)),
            format!("the document gives no impact: derived from likelihood {l} with the impact taken as very high (NIST SP 800-30 Rev. 1 Table I-2); review it"),
        ),
        (None, Some(i)) => (
            rating_of_level(level_of_risk(Level::VeryHigh, i)),
            format!("the document gives no likelihood: derived from impact {i} with the likelihood taken as very high (NIST SP 800-30 Rev. 1 Table I-2); review it"),
        ),
        (None, None) => return,
    };
    f.risk_rating = Some(rating);
    d.notes.push(Violation::new(
        "risk_rating_derived",
        "/risk_rating",
        format!("{rating}: {how}"),
    ));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exchange::oscal::FEDRAMP_NS;
    use serde_json::json;

    fn doc(risk: Value, extra_items: Vec<Value>) -> Value {
        let mut items = vec![json!({
            "uuid": "9a1f3c2e-5b6d-4e7f-8a9b-0c1d2e3f4a5b",
            "title": "Weak ciphers", "description": "RC4 accepted.",
            "props": [{"name": "POAM-ID", "ns": FEDRAMP_NS, "value": "V-1"}],
            "related-risks": [{"risk-uuid": "5d2c8a4e-1a0b-4d8e-9c1f-1c6a7c9e0b11"}]
        })];
        items.extend(extra_items);
        json!({"plan-of-action-and-milestones": {
            "uuid": "0b1d8a6f-7a7e-4c53-9a55-5f0f6d4d4a01",
            "metadata": {"title": "T", "last-modified": "2026-11-01T00:00:00Z", "version": "1", "oscal-version": "1.1.2"},
            "risks": [risk],
            "poam-items": items
        }})
    }

    fn risk(extra: Value) -> Value {
        let mut r = json!({
            "uuid": "5d2c8a4e-1a0b-4d8e-9c1f-1c6a7c9e0b11",
            "title": "Weak ciphers", "description": "RC4 accepted.", "statement": "RC4 accepted.",
            "status": "open"
        });
        if let (Some(r), Some(e)) = (r.as_object_mut(), extra.as_object()) {
            r.extend(e.clone());
        }
        r
    }

    fn facet(name: &str, value: &str, state: &str) -> Value {
        json!({"name": name, "system": "https://fedramp.gov", "value": value,
               "props": [{"name": "state", "value": state}]})
    }

    fn one(d: &Value) -> (ItemDraft, Vec<Unmapped>) {
        match read(d, ReadOptions::default()) {
            Ok(mut p) => (p.items.remove(0), p.unmapped),
            Err(e) => panic!("{e:?}"),
        }
    }

    #[test]
    fn facets_are_read_by_state() {
        let (d, _) = one(&doc(
            risk(json!({"characterizations": [{"facets": [
                facet("risk", "high", "initial"), facet("risk", "moderate", "adjusted"),
                facet("likelihood", "high", "initial"), facet("impact", "low", "initial")]}]})),
            vec![],
        ));
        assert_eq!(d.fields.risk_rating, Some(RiskRating::High));
        assert_eq!(d.fields.adjusted_risk_rating, Some(RiskRating::Moderate));
        assert_eq!(d.fields.likelihood, Some(Level::High));
        assert_eq!(d.fields.impact, Some(Level::Low));
    }

    #[test]
    fn a_missing_rating_follows_table_i2_and_is_noted() {
        let (d, _) = one(&doc(
            risk(json!({"characterizations": [{"facets": [
                facet("likelihood", "low", "initial"), facet("impact", "high", "initial")]}]})),
            vec![],
        ));
        assert_eq!(d.fields.risk_rating, Some(RiskRating::Low));
        assert_eq!(d.notes[0].code, "risk_rating_derived");
        let (d, _) = one(&doc(
            risk(
                json!({"characterizations": [{"facets": [facet("likelihood", "moderate", "initial")]}]}),
            ),
            vec![],
        ));
        assert_eq!(d.fields.risk_rating, Some(RiskRating::High));
        assert!(d.notes[0].message.contains("review"));
    }

    #[test]
    fn remediations_are_read_by_lifecycle() {
        let (d, unmapped) = one(&doc(
            risk(json!({"remediations": [
                {"uuid": "a3106e23-8b79-4b1b-abf4-74f16c51ad0c", "lifecycle": "recommendation",
                 "title": "Tool's Recommendation", "description": "Upgrade OpenSSL."},
                {"uuid": "e9ee6fe2-856f-42c7-8c2e-ff6466d31010", "lifecycle": "planned",
                 "title": "CSP's Remediation Plan", "description": "Disable RC4.",
                 "props": [{"name": "estimated-cost", "value": "lots"}],
                 "tasks": [{"uuid": "a12dea1d-e4d1-4f09-aacf-1eaf203a3092", "type": "milestone",
                            "title": "Change", "description": "d",
                            "timing": {"within-date-range": {"start": "2026-11-01T00:00:00Z", "end": "2026-11-20T00:00:00Z"}}}]}
            ]})),
            vec![],
        ));
        assert_eq!(d.fields.remediation_plan.as_deref(), Some("Disable RC4."));
        assert_eq!(d.milestones.len(), 1);
        assert_eq!(d.milestones[0].due_on.to_string(), "2026-11-20");
        let why = |p: &str| {
            unmapped
                .iter()
                .find(|u| u.pointer.ends_with(p))
                .map(|u| (u.reason, u.detail.clone()))
        };
        assert!(why("/remediations/0")
            .is_some_and(|(r, d)| r == UnmappedReason::NotKept && d.contains("Upgrade OpenSSL.")));
        assert!(why("/remediations/1/props/0")
            .is_some_and(|(r, d)| r == UnmappedReason::Unparseable && d.contains("`lots`")));
        assert!(why("/remediations/1/title").is_some());
        assert!(why("/tasks/0/timing/within-date-range/start").is_some());
    }

    #[test]
    fn dangling_references_refuse_or_keep_out() {
        let d = doc(
            risk(json!({})),
            vec![
                json!({"uuid": "6f5fff73-cac6-4da0-a0d9-0f931a5efafa", "title": "t", "description": "d",
                        "related-risks": [{"risk-uuid": "260d3c0a-fc2e-4627-9fb9-a003acdc4b14"}]}),
            ],
        );
        let refused = read(&d, ReadOptions::default()).err().unwrap_or_default();
        assert_eq!(
            refused
                .iter()
                .map(|v| v.pointer.as_str())
                .collect::<Vec<_>>(),
            ["/plan-of-action-and-milestones/poam-items/1/related-risks/0/risk-uuid"]
        );
        let plan = read(
            &d,
            ReadOptions {
                on_dangling: OnDangling::Skip,
            },
        )
        .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(plan.items.len(), 1);
        assert_eq!(plan.kept_out.len(), 1);
        assert_eq!(plan.kept_out[0].dangling.len(), 1);
    }
}
