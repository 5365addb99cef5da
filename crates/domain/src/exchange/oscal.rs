//! OSCAL Plan of Action and Milestones (JSON), following FedRAMP's conventions.
//!
//! Out: one observation (how the weakness was found), one risk (status, deadline, likelihood and
//! impact facets initial and adjusted, the remediation with its milestones as tasks, the risk
//! log from the status history, deviations as FedRAMP props) and one poam-item (with its
//! `POAM-ID`) per item; evidence as back-matter resources with their SHA-256. Every uuid is a v5
//! uuid derived from an internal id, so exporting twice gives the same uuids.
//!
//! In: [`read`] turns a document (OSCAL 1.0.x to 1.2.x) into item drafts, refusing dangling
//! references and listing every field it could not map.

use super::ItemRecord;
use crate::workflow::{Evidence, MilestoneStatus};
use crate::{
    Deviation, DeviationKind, DeviationStatus, ItemStatus, Level, Person, Resources, RiskRating,
    SourceKind, System, VendorDependency, Violation,
};
use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{json, Map, Value};
use std::collections::{BTreeSet, HashMap};

/// The OSCAL version FedRAMP targets.
pub const OSCAL_VERSION: &str = "1.1.2";
/// FedRAMP's namespace for its props.
pub const FEDRAMP_NS: &str = "https://fedramp.gov/ns/oscal";
/// This service's namespace, for the props that carry what OSCAL has no field for.
pub const POAM_NS: &str = "https://poam-service.dev/ns/oscal";
/// The facet system of likelihood, impact and risk values.
pub const FACET_SYSTEM: &str = "https://fedramp.gov";

/// The namespace of the v5 uuids derived from internal ids.
const UUID_NAMESPACE: uuid::Uuid = uuid::Uuid::from_bytes([
    0x6f, 0x1c, 0x3e, 0x5a, 0x92, 0x4b, 0x4d, 0x0e, 0x8a, 0x77, 0x2c, 0x51, 0xd4, 0x0b, 0x9e, 0x13,
]);

/// A stable v5 uuid for the `kind` of OSCAL object made from the internal id `id`.
pub fn uuid_for(kind: &str, id: &str) -> String {
    uuid::Uuid::new_v5(&UUID_NAMESPACE, format!("{kind}:{id}").as_bytes()).to_string()
}

/// A date as an OSCAL date-time (midnight UTC).
fn at_midnight(d: NaiveDate) -> String {
    format!("{}T00:00:00Z", d.format("%Y-%m-%d"))
}

fn timestamp(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// A prop value: OSCAL's strings have no leading or trailing blanks and no line breaks.
fn one_line(s: &str) -> Option<String> {
    let v = s.split_whitespace().collect::<Vec<_>>().join(" ");
    (!v.is_empty()).then_some(v)
}

fn prop(ns: &str, name: &str, value: &str) -> Option<Value> {
    one_line(value).map(|v| json!({"name": name, "ns": ns, "value": v}))
}

fn ours(name: &str, value: &str) -> Option<Value> {
    prop(POAM_NS, name, value)
}

/// Puts `key: value` in `obj` unless the array would be empty (OSCAL arrays have at least one
/// member).
fn put_list(obj: &mut Map<String, Value>, key: &str, list: Vec<Value>) {
    if !list.is_empty() {
        obj.insert(key.into(), Value::Array(list));
    }
}

fn put_text(obj: &mut Map<String, Value>, key: &str, text: Option<&str>) {
    if let Some(t) = text.filter(|t| !t.trim().is_empty()) {
        obj.insert(key.into(), Value::String(t.into()));
    }
}

/// The organisation party every origin and log entry points at.
pub fn organization_uuid(system: &System) -> String {
    uuid_for("organization", &system.id.to_string())
}

/// The document's opening members: uuid, metadata and system-id.
pub fn header(system: &System, last_modified: DateTime<Utc>, event_seq: i64) -> Map<String, Value> {
    let mut metadata = Map::new();
    metadata.insert(
        "title".into(),
        format!("{} Plan of Action and Milestones", system.name).into(),
    );
    metadata.insert("last-modified".into(), timestamp(last_modified).into());
    metadata.insert("version".into(), format!("event-{event_seq}").into());
    metadata.insert("oscal-version".into(), OSCAL_VERSION.into());
    let mut props = vec![ours("regime", system.regime.as_str())];
    if let Some(level) = system.impact_level {
        props.push(prop(FEDRAMP_NS, "impact-level", level.as_str()));
    }
    put_list(
        &mut metadata,
        "props",
        props.into_iter().flatten().collect(),
    );
    let org = system
        .organization
        .clone()
        .unwrap_or_else(|| system.name.clone());
    metadata.insert(
        "parties".into(),
        json!([{"uuid": organization_uuid(system), "type": "organization", "name": org}]),
    );
    let mut root = Map::new();
    root.insert(
        "uuid".into(),
        uuid_for("poam", &system.id.to_string()).into(),
    );
    root.insert("metadata".into(), Value::Object(metadata));
    root.insert(
        "system-id".into(),
        json!({"identifier-type": "https://ietf.org/rfc/rfc4122", "id": system.id.to_string()}),
    );
    root
}

fn item_id(rec: &ItemRecord) -> String {
    rec.item.id.to_string()
}

/// The inventory item an asset name becomes (in local-definitions).
pub fn asset_uuid(system: &System, asset: &str) -> String {
    uuid_for("asset", &format!("{}:{asset}", system.id))
}

pub fn inventory_item(system: &System, asset: &str) -> Value {
    json!({
        "uuid": asset_uuid(system, asset),
        "description": asset,
        "props": [{"name": "asset-id", "value": one_line(asset).unwrap_or_else(|| "unnamed".into())}],
    })
}

fn method(kind: SourceKind) -> &'static str {
    match kind {
        SourceKind::Scan | SourceKind::PenTest | SourceKind::ContinuousMonitoring => "TEST",
        SourceKind::Assessment | SourceKind::Audit | SourceKind::SelfAssessment => "EXAMINE",
        SourceKind::Incident => "INTERVIEW",
    }
}

/// How the weakness was found.
pub fn observation(system: &System, rec: &ItemRecord) -> Value {
    let it = &rec.item;
    let mut o = Map::new();
    o.insert("uuid".into(), uuid_for("observation", &item_id(rec)).into());
    o.insert("title".into(), it.title.clone().into());
    o.insert(
        "description".into(),
        format!(
            "Found by {} ({}).",
            it.source
                .detector
                .as_deref()
                .unwrap_or("an unnamed detector"),
            it.source.kind.as_str().replace('_', " ")
        )
        .into(),
    );
    let props = vec![
        ours("source-kind", it.source.kind.as_str()),
        it.source
            .detector
            .as_deref()
            .and_then(|d| ours("detector", d)),
        it.source
            .identifier
            .as_deref()
            .and_then(|d| ours("source-identifier", d)),
    ];
    put_list(&mut o, "props", props.into_iter().flatten().collect());
    o.insert("methods".into(), json!([method(it.source.kind)]));
    o.insert("types".into(), json!(["finding"]));
    put_list(
        &mut o,
        "subjects",
        it.assets
            .iter()
            .map(|a| {
                json!({"subject-uuid": asset_uuid(system, a), "type": "inventory-item", "title": a})
            })
            .collect(),
    );
    o.insert("collected".into(), at_midnight(it.detected_on).into());
    Value::Object(o)
}

/// The OSCAL risk status of an item status (the exact status travels in a prop beside it).
pub fn risk_status(status: ItemStatus, deviation: Option<&Deviation>) -> &'static str {
    match status {
        ItemStatus::Closed => "closed",
        ItemStatus::RiskAccepted => "deviation-approved",
        ItemStatus::InProgress | ItemStatus::Completed => "remediating",
        ItemStatus::Open | ItemStatus::Deferred => match deviation.map(|d| d.status) {
            Some(DeviationStatus::Pending) => "deviation-requested",
            Some(DeviationStatus::Approved) => "deviation-approved",
            _ => "open",
        },
    }
}

fn facet(name: &str, value: &str) -> Value {
    json!({"name": name, "system": FACET_SYSTEM, "value": value})
}

fn deviation_prop(kind: DeviationKind) -> &'static str {
    match kind {
        DeviationKind::RiskAdjustment => "risk-adjustment",
        DeviationKind::FalsePositive => "false-positive",
        DeviationKind::OperationalRequirement => "operational-requirement",
    }
}

fn person_props(role: &str, p: &Option<Person>) -> Vec<Option<Value>> {
    match p {
        None => vec![],
        Some(p) => vec![
            ours(&format!("{role}-name"), &p.name),
            p.email
                .as_deref()
                .and_then(|e| ours(&format!("{role}-email"), e)),
        ],
    }
}

/// The risk of an item: status, deadline, characterizations, remediation, risk log.
pub fn risk(system: &System, rec: &ItemRecord) -> Value {
    let it = &rec.item;
    let id = item_id(rec);
    let org = organization_uuid(system);
    let origin = json!({"actors": [{"type": "party", "actor-uuid": org}]});
    let mut r = Map::new();
    r.insert("uuid".into(), uuid_for("risk", &id).into());
    r.insert("title".into(), it.title.clone().into());
    r.insert("description".into(), it.description.clone().into());
    r.insert("statement".into(), it.description.clone().into());
    let mut props = vec![
        ours("status", it.status.as_str()),
        it.deadline_rule
            .as_deref()
            .and_then(|d| ours("deadline-rule", d)),
        it.external_id
            .as_deref()
            .and_then(|d| ours("external-id", d)),
        it.completed_on
            .and_then(|d| ours("completed-on", &d.to_string())),
        it.closed_on.and_then(|d| ours("closed-on", &d.to_string())),
        it.actual_cost
            .and_then(|c| ours("actual-cost", &c.to_string())),
    ];
    props.extend(it.controls.iter().map(|c| ours("control-id", c)));
    props.extend(it.cves.iter().map(|c| ours("cve-id", c)));
    props.extend(person_props("owner", &it.owner));
    props.extend(person_props("implementer", &it.implementer));
    for kind in DeviationKind::ALL {
        let value = match &it.deviation {
            Some(d) if d.kind == *kind => d.status.as_str(),
            _ => "no",
        };
        props.push(prop(FEDRAMP_NS, deviation_prop(*kind), value));
    }
    if let Some(v) = &it.vendor_dependency {
        props.push(prop(FEDRAMP_NS, "vendor-dependency", "yes"));
        props.push(prop(FEDRAMP_NS, "vendor-dependent-product", &v.product));
        props.extend([
            v.vendor.as_deref().and_then(|x| ours("vendor-name", x)),
            v.last_check_in
                .and_then(|d| ours("vendor-last-check-in", &d.to_string())),
        ]);
    }
    put_list(&mut r, "props", props.into_iter().flatten().collect());
    r.insert(
        "status".into(),
        risk_status(it.status, it.deviation.as_ref()).into(),
    );
    let mut initial = vec![facet("risk", it.risk_rating.as_str())];
    if let Some(l) = it.likelihood {
        initial.push(facet("likelihood", l.as_str()));
    }
    if let Some(i) = it.impact {
        initial.push(facet("impact", i.as_str()));
    }
    let mut characterizations = vec![json!({
        "props": [{"name": "characterization", "ns": POAM_NS, "value": "initial"}],
        "origin": origin,
        "facets": initial,
    })];
    if let Some(adjusted) = it.adjusted_risk_rating {
        let mut f = facet("risk", adjusted.as_str());
        if let (Value::Object(m), Some(j)) = (&mut f, it.risk_justification.as_deref()) {
            m.insert("remarks".into(), j.into());
        }
        characterizations.push(json!({
            "props": [{"name": "characterization", "ns": POAM_NS, "value": "adjusted"}],
            "origin": origin,
            "facets": [f],
        }));
    }
    r.insert("characterizations".into(), Value::Array(characterizations));
    if let Some(m) = it.interim_mitigation.as_deref() {
        r.insert(
            "mitigating-factors".into(),
            json!([{"uuid": uuid_for("mitigation", &id), "description": m}]),
        );
    }
    if let Some(d) = it.scheduled_completion {
        r.insert("deadline".into(), at_midnight(d).into());
    }
    r.insert("remediations".into(), json!([remediation(rec)]));
    let entries = risk_log(rec, &org);
    if !entries.is_empty() {
        r.insert("risk-log".into(), json!({ "entries": entries }));
    }
    r.insert(
        "related-observations".into(),
        json!([{"observation-uuid": uuid_for("observation", &id)}]),
    );
    put_text(&mut r, "remarks", it.residual_risk.as_deref());
    Value::Object(r)
}

fn remediation(rec: &ItemRecord) -> Value {
    let it = &rec.item;
    let id = item_id(rec);
    let mut m = Map::new();
    m.insert("uuid".into(), uuid_for("remediation", &id).into());
    m.insert("lifecycle".into(), "planned".into());
    m.insert("title".into(), "Remediation plan".into());
    m.insert(
        "description".into(),
        it.remediation_plan
            .clone()
            .unwrap_or_else(|| "No remediation plan recorded yet.".into())
            .into(),
    );
    let mut props = vec![ours(
        "remediation-plan",
        if it.remediation_plan.is_some() {
            "recorded"
        } else {
            "none"
        },
    )];
    if let Some(r) = &it.resources {
        props.extend([
            r.estimated_cost
                .and_then(|c| ours("estimated-cost", &c.to_string())),
            r.hours.and_then(|h| ours("hours", &h.to_string())),
            r.funded.and_then(|f| ours("funded", &f.to_string())),
            r.recurring.and_then(|f| ours("recurring", &f.to_string())),
        ]);
        if let Some(d) = r.description.as_deref() {
            m.insert(
                "required-assets".into(),
                json!([{"uuid": uuid_for("required-asset", &id), "description": d}]),
            );
        }
    }
    put_list(&mut m, "props", props.into_iter().flatten().collect());
    let tasks: Vec<Value> = rec
        .milestones
        .iter()
        .map(|ms| {
            let mut t = Map::new();
            t.insert("uuid".into(), uuid_for("milestone", &ms.id).into());
            t.insert("type".into(), "milestone".into());
            t.insert("title".into(), ms.title.clone().into());
            put_text(&mut t, "description", ms.description.as_deref());
            let props = vec![
                ours("milestone-status", ms.status.as_str()),
                ours("position", &ms.position.to_string()),
                ms.completed_on
                    .and_then(|d| ours("completed-on", &d.to_string())),
            ];
            put_list(&mut t, "props", props.into_iter().flatten().collect());
            t.insert(
                "timing".into(),
                json!({"on-date": {"date": at_midnight(ms.due_on)}}),
            );
            let moves: Vec<String> = ms
                .changes
                .iter()
                .map(|c| {
                    format!(
                        "Due date moved from {} to {} by {} on {}: {}",
                        c.from,
                        c.to,
                        c.by,
                        c.at.date_naive(),
                        c.reason
                    )
                })
                .collect();
            if !moves.is_empty() {
                t.insert("remarks".into(), moves.join("\n\n").into());
            }
            Value::Object(t)
        })
        .collect();
    put_list(&mut m, "tasks", tasks);
    Value::Object(m)
}

fn risk_log(rec: &ItemRecord, org: &str) -> Vec<Value> {
    let it = &rec.item;
    let logged_by = json!([{"party-uuid": org}]);
    let mut entries = vec![json!({
        "uuid": uuid_for("risk-log-created", &item_id(rec)),
        "title": "Recorded",
        "start": timestamp(it.created_at),
        "logged-by": logged_by,
        "status-change": "open",
    })];
    for t in &rec.transitions {
        let mut e = Map::new();
        e.insert("uuid".into(), uuid_for("transition", &t.id).into());
        e.insert(
            "title".into(),
            format!("Status {} to {}", t.from.as_str(), t.to.as_str()).into(),
        );
        put_text(&mut e, "description", t.comment.as_deref());
        e.insert("start".into(), timestamp(t.at).into());
        if let Some(p) = prop(POAM_NS, "actor", &t.actor) {
            e.insert("props".into(), json!([p]));
        }
        e.insert("logged-by".into(), logged_by.clone());
        e.insert("status-change".into(), risk_status(t.to, None).into());
        entries.push(Value::Object(e));
    }
    if let Some(d) = &it.deviation {
        entries.push(json!({
            "uuid": uuid_for("deviation", &item_id(rec)),
            "title": format!("Deviation request: {}", d.kind.as_str().replace('_', " ")),
            "description": d.rationale,
            "start": timestamp(it.updated_at),
            "props": [
                {"name": "deviation-kind", "ns": POAM_NS, "value": d.kind.as_str()},
                {"name": "deviation-status", "ns": POAM_NS, "value": d.status.as_str()},
            ],
            "logged-by": logged_by,
            "status-change": if d.status == DeviationStatus::Approved { "deviation-approved" } else { "deviation-requested" },
        }));
    }
    entries
}

/// The poam-item: the POA&M line that ties the observation and the risk together.
pub fn poam_item(rec: &ItemRecord) -> Value {
    let it = &rec.item;
    let id = item_id(rec);
    let mut p = Map::new();
    p.insert("uuid".into(), uuid_for("poam-item", &id).into());
    p.insert("title".into(), it.title.clone().into());
    p.insert("description".into(), it.description.clone().into());
    let props = vec![
        prop(FEDRAMP_NS, "POAM-ID", &it.display_id),
        ours("detected-on", &it.detected_on.to_string()),
    ];
    put_list(&mut p, "props", props.into_iter().flatten().collect());
    put_list(
        &mut p,
        "links",
        rec.evidence
            .iter()
            .filter(|e| e.withdrawn_at.is_none())
            .map(
                |e| json!({"href": format!("#{}", uuid_for("evidence", &e.id)), "rel": "evidence"}),
            )
            .collect(),
    );
    p.insert(
        "related-observations".into(),
        json!([{"observation-uuid": uuid_for("observation", &id)}]),
    );
    p.insert(
        "related-risks".into(),
        json!([{"risk-uuid": uuid_for("risk", &id)}]),
    );
    put_text(&mut p, "remarks", it.comments.as_deref());
    Value::Object(p)
}

/// An evidence file as a back-matter resource, with its hash and where to download it.
pub fn resource(e: &Evidence) -> Value {
    let mut r = Map::new();
    r.insert("uuid".into(), uuid_for("evidence", &e.id).into());
    r.insert("title".into(), e.title.clone().into());
    let props = vec![
        ours("evidence-kind", e.kind.as_str()),
        ours("filename", &e.filename),
        ours("size", &e.size.to_string()),
        ours("uploaded-by", &e.uploaded_by),
        e.collected_on
            .and_then(|d| ours("collected-on", &d.to_string())),
        e.withdrawn_at.and_then(|_| ours("withdrawn", "true")),
    ];
    put_list(&mut r, "props", props.into_iter().flatten().collect());
    r.insert(
        "rlinks".into(),
        json!([{
            "href": format!("/v1/evidence/{}/content", e.id),
            "media-type": e.media_type,
            "hashes": [{"algorithm": "SHA-256", "value": e.sha256}],
        }]),
    );
    if let Some(reason) = &e.withdrawal_reason {
        r.insert("remarks".into(), format!("Withdrawn: {reason}").into());
    }
    Value::Object(r)
}

// ---------------------------------------------------------------------------------------------
// Import

/// A milestone read from a risk's remediation tasks.
#[derive(Debug, Clone, PartialEq)]
pub struct MilestoneDraft {
    /// The task's uuid in the document.
    pub uuid: String,
    pub title: String,
    pub description: Option<String>,
    pub due_on: NaiveDate,
    pub status: MilestoneStatus,
    pub completed_on: Option<NaiveDate>,
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
    /// The item's fields as a JSON document of `ItemWrite`, checked by the caller: missing
    /// required fields stay missing, so the caller reports them.
    pub fields: Value,
    pub milestones: Vec<MilestoneDraft>,
}

/// What a document turned into.
#[derive(Debug, Clone)]
pub struct Plan {
    pub uuid: String,
    pub oscal_version: String,
    pub items: Vec<ItemDraft>,
    /// Pointers of everything in the document that has no place in the service.
    pub unmapped: Vec<String>,
}

fn esc(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// Reads objects, remembering which members were used, so the rest can be reported.
struct Reader {
    unmapped: BTreeSet<String>,
}

impl Reader {
    /// Notes the members of `obj` (at `at`) not in `known`.
    fn rest(&mut self, obj: &Map<String, Value>, at: &str, known: &[&str]) {
        for k in obj.keys() {
            if !known.contains(&k.as_str()) {
                self.unmapped.insert(format!("{at}/{}", esc(k)));
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

/// The props of an object by (namespace-less) name, the ones read marked as mapped.
struct Props<'a> {
    list: Vec<(&'a str, &'a str, String)>,
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
                ))
            })
            .collect();
        Props {
            list,
            used: BTreeSet::new(),
        }
    }

    fn get(&mut self, name: &str) -> Option<&'a str> {
        let i = self.list.iter().position(|(n, _, _)| *n == name)?;
        self.used.insert(i);
        Some(self.list[i].1)
    }

    fn all(&mut self, name: &str) -> Vec<&'a str> {
        let mut out = Vec::new();
        for (i, (n, v, _)) in self.list.iter().enumerate() {
            if *n == name {
                self.used.insert(i);
                out.push(*v);
            }
        }
        out
    }

    fn finish(self, r: &mut Reader) {
        for (i, (_, _, at)) in self.list.iter().enumerate() {
            if !self.used.contains(&i) {
                r.unmapped.insert(at.clone());
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
        "very_high" => Some(Level::VeryHigh),
        _ => None,
    }
}

fn rating_of(s: &str) -> Option<RiskRating> {
    match s.to_ascii_lowercase().as_str() {
        "critical" | "very-high" | "very_high" => Some(RiskRating::Critical),
        "high" => Some(RiskRating::High),
        "moderate" | "medium" => Some(RiskRating::Moderate),
        "low" | "very-low" | "very_low" => Some(RiskRating::Low),
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

/// Reads an OSCAL POA&M document. Refuses (with every dangling reference named) a document
/// whose poam-items point at risks or observations it does not contain.
pub fn read(doc: &Value) -> Result<Plan, Vec<Violation>> {
    const ROOT: &str = "/plan-of-action-and-milestones";
    let Some(root) = doc.get("plan-of-action-and-milestones") else {
        return Err(vec![bad(
            "not_oscal_poam",
            "",
            "the document has no `plan-of-action-and-milestones` root",
        )]);
    };
    let mut r = Reader {
        unmapped: BTreeSet::new(),
    };
    if let Some(obj) = doc.as_object() {
        r.rest(obj, "", &["plan-of-action-and-milestones"]);
    }
    let Some(root_obj) = root.as_object() else {
        return Err(vec![bad("invalid_type", ROOT, "must be an object")]);
    };
    r.rest(
        root_obj,
        ROOT,
        &[
            "uuid",
            "metadata",
            "import-ssp",
            "system-id",
            "local-definitions",
            "observations",
            "risks",
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
    for (i, _) in arr(root, "findings").iter().enumerate() {
        r.unmapped.insert(format!("{ROOT}/findings/{i}"));
    }
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

    // References first: a document with a dangling one is refused whole.
    let mut dangling = Vec::new();
    let poam_items = arr(root, "poam-items");
    if poam_items.is_empty() {
        return Err(vec![bad(
            "missing_field",
            format!("{ROOT}/poam-items"),
            "the document has no poam-items",
        )]);
    }
    for (i, p) in poam_items.iter().enumerate() {
        for (j, rr) in arr(p, "related-risks").iter().enumerate() {
            let u = rr.get("risk-uuid").and_then(Value::as_str).unwrap_or("");
            if !risks.contains_key(u) {
                dangling.push(bad(
                    "dangling_reference",
                    format!("{ROOT}/poam-items/{i}/related-risks/{j}/risk-uuid"),
                    format!("`{u}` is not the uuid of a risk in this document"),
                ));
            }
        }
        for (j, ro) in arr(p, "related-observations").iter().enumerate() {
            let u = ro
                .get("observation-uuid")
                .and_then(Value::as_str)
                .unwrap_or("");
            if !observations.contains_key(u) {
                dangling.push(bad(
                    "dangling_reference",
                    format!("{ROOT}/poam-items/{i}/related-observations/{j}/observation-uuid"),
                    format!("`{u}` is not the uuid of an observation in this document"),
                ));
            }
        }
    }
    for (u, (i, risk)) in &risks {
        for (j, ro) in arr(risk, "related-observations").iter().enumerate() {
            let o = ro
                .get("observation-uuid")
                .and_then(Value::as_str)
                .unwrap_or("");
            if !observations.contains_key(o) {
                dangling.push(bad(
                    "dangling_reference",
                    format!("{ROOT}/risks/{i}/related-observations/{j}/observation-uuid"),
                    format!(
                        "`{o}` (of risk {u}) is not the uuid of an observation in this document"
                    ),
                ));
            }
        }
    }
    if !dangling.is_empty() {
        dangling.sort_by(|a, b| a.pointer.cmp(&b.pointer));
        return Err(dangling);
    }

    let mut used_risks = BTreeSet::new();
    let mut used_observations = BTreeSet::new();
    let mut items = Vec::new();
    for (i, p) in poam_items.iter().enumerate() {
        let at = format!("{ROOT}/poam-items/{i}");
        let Some(obj) = p.as_object() else { continue };
        r.rest(
            obj,
            &at,
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
        let risk = arr(p, "related-risks")
            .first()
            .and_then(|rr| rr.get("risk-uuid")?.as_str())
            .and_then(|u| risks.get(u).copied());
        for (j, _) in arr(p, "related-risks").iter().enumerate().skip(1) {
            r.unmapped.insert(format!("{at}/related-risks/{j}"));
        }
        let observation = arr(p, "related-observations")
            .first()
            .and_then(|ro| ro.get("observation-uuid")?.as_str())
            .and_then(|u| observations.get(u).copied())
            .or_else(|| {
                let (_, rv) = risk?;
                arr(rv, "related-observations")
                    .first()
                    .and_then(|ro| ro.get("observation-uuid")?.as_str())
                    .and_then(|u| observations.get(u).copied())
            });
        for (j, _) in arr(p, "related-observations").iter().enumerate().skip(1) {
            r.unmapped.insert(format!("{at}/related-observations/{j}"));
        }
        for (j, _) in arr(p, "links").iter().enumerate() {
            r.unmapped.insert(format!("{at}/links/{j}"));
        }
        let uuid = text(p, "uuid")
            .or_else(|| risk.and_then(|(_, rv)| text(rv, "uuid")))
            .unwrap_or("")
            .to_owned();
        let mut fields = Map::new();
        let mut pprops = Props::of(p, &at);
        let poam_id = pprops.get("POAM-ID").map(str::to_owned);
        let detected = pprops.get("detected-on").and_then(date_of);
        pprops.finish(&mut r);
        if let Some(t) = text(p, "title") {
            fields.insert("title".into(), t.into());
        }
        if let Some(t) = text(p, "description") {
            fields.insert("description".into(), t.into());
        }
        if let Some(t) = text(p, "remarks") {
            fields.insert("comments".into(), t.into());
        }
        let mut milestones = Vec::new();
        if let Some((ri, rv)) = risk {
            used_risks.insert(ri);
            read_risk(&mut r, rv, ri, &mut fields, &mut milestones);
        }
        let mut source = Map::new();
        let mut detected_on = detected;
        if let Some((oi, ov)) = observation {
            let oat = format!("{ROOT}/observations/{oi}");
            if used_observations.insert(oi) {
                if let Some(obj) = ov.as_object() {
                    r.rest(
                        obj,
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
                        ],
                    );
                }
            }
            let mut oprops = Props::of(ov, &oat);
            let kind = oprops
                .get("source-kind")
                .and_then(|k| k.parse::<SourceKind>().ok())
                .unwrap_or_else(|| source_of_methods(arr(ov, "methods")));
            source.insert("kind".into(), kind.as_str().into());
            if let Some(d) = oprops.get("detector") {
                source.insert("detector".into(), d.into());
            }
            if let Some(d) = oprops.get("source-identifier") {
                source.insert("identifier".into(), d.into());
            }
            oprops.finish(&mut r);
            let assets: Vec<Value> = arr(ov, "subjects")
                .iter()
                .filter_map(|s| text(s, "title"))
                .map(|t| Value::String(t.to_owned()))
                .collect();
            if !assets.is_empty() {
                fields.insert("assets".into(), Value::Array(assets));
            }
            if detected_on.is_none() {
                detected_on = text(ov, "collected").and_then(date_of);
            }
        } else {
            source.insert("kind".into(), SourceKind::Assessment.as_str().into());
        }
        fields.insert("source".into(), Value::Object(source));
        if let Some(d) = detected_on {
            fields.insert("detected_on".into(), d.to_string().into());
        }
        items.push(ItemDraft {
            uuid,
            pointer: at,
            poam_id,
            fields: Value::Object(fields),
            milestones,
        });
    }
    for (i, _) in risks.values() {
        if !used_risks.contains(i) {
            r.unmapped.insert(format!("{ROOT}/risks/{i}"));
        }
    }
    for (i, _) in observations.values() {
        if !used_observations.contains(i) {
            r.unmapped.insert(format!("{ROOT}/observations/{i}"));
        }
    }
    let resources = root
        .get("back-matter")
        .map_or(&[][..], |b| arr(b, "resources"));
    for (i, _) in resources.iter().enumerate() {
        r.unmapped
            .insert(format!("{ROOT}/back-matter/resources/{i}"));
    }
    Ok(Plan {
        uuid: doc_uuid.to_owned(),
        oscal_version: version.to_owned(),
        items,
        unmapped: r.unmapped.into_iter().collect(),
    })
}

fn read_risk(
    r: &mut Reader,
    rv: &Value,
    ri: usize,
    fields: &mut Map<String, Value>,
    milestones: &mut Vec<MilestoneDraft>,
) {
    let at = format!("/plan-of-action-and-milestones/risks/{ri}");
    if let Some(obj) = rv.as_object() {
        r.rest(
            obj,
            &at,
            &[
                "uuid",
                "title",
                "description",
                "statement",
                "props",
                "status",
                "characterizations",
                "mitigating-factors",
                "deadline",
                "remediations",
                "risk-log",
                "related-observations",
                "remarks",
            ],
        );
    }
    if !fields.contains_key("title") {
        if let Some(t) = text(rv, "title") {
            fields.insert("title".into(), t.into());
        }
    }
    if !fields.contains_key("description") {
        if let Some(t) = text(rv, "description").or_else(|| text(rv, "statement")) {
            fields.insert("description".into(), t.into());
        }
    }
    let mut props = Props::of(rv, &at);
    let status = props
        .get("status")
        .and_then(|s| s.parse::<ItemStatus>().ok())
        .unwrap_or_else(|| status_of_risk(text(rv, "status").unwrap_or("open")));
    fields.insert("status".into(), status.as_str().into());
    let mut put = |k: &str, v: Option<&str>| {
        if let Some(v) = v {
            fields.insert(k.into(), v.into());
        }
    };
    put("external_id", props.get("external-id"));
    put("completed_on", props.get("completed-on"));
    put("closed_on", props.get("closed-on"));
    put("residual_risk", text(rv, "remarks"));
    if let Some(c) = props.get("actual-cost").and_then(|c| c.parse::<f64>().ok()) {
        fields.insert("actual_cost".into(), c.into());
    }
    let controls: Vec<Value> = props
        .all("control-id")
        .into_iter()
        .map(Value::from)
        .collect();
    if !controls.is_empty() {
        fields.insert("controls".into(), Value::Array(controls));
    }
    let cves: Vec<Value> = props.all("cve-id").into_iter().map(Value::from).collect();
    if !cves.is_empty() {
        fields.insert("cves".into(), Value::Array(cves));
    }
    for role in ["owner", "implementer"] {
        let name = props.get(&format!("{role}-name"));
        let email = props.get(&format!("{role}-email"));
        if let Some(p) = person(name, email) {
            if let Ok(v) = serde_json::to_value(p) {
                fields.insert(role.into(), v);
            }
        }
    }
    let mut deviation: Option<(DeviationKind, DeviationStatus)> = None;
    for kind in DeviationKind::ALL {
        let value = props.get(deviation_prop(*kind));
        let st = match value {
            Some("approved") | Some("yes") => Some(DeviationStatus::Approved),
            Some("pending") => Some(DeviationStatus::Pending),
            Some("rejected") => Some(DeviationStatus::Rejected),
            _ => None,
        };
        if let (Some(st), None) = (st, deviation) {
            deviation = Some((*kind, st));
        }
    }
    let vendor = props.get("vendor-dependency");
    let product = props.get("vendor-dependent-product");
    let vendor_name = props.get("vendor-name");
    let check_in = props.get("vendor-last-check-in").and_then(date_of);
    if vendor.is_some_and(|v| v != "no") {
        if let Some(product) = product {
            let v = VendorDependency {
                product: product.to_owned(),
                vendor: vendor_name.map(str::to_owned),
                last_check_in: check_in,
            };
            if let Ok(v) = serde_json::to_value(v) {
                fields.insert("vendor_dependency".into(), v);
            }
        }
    }
    let _ = props.get("deadline-rule");
    props.finish(r);

    for (ci, c) in arr(rv, "characterizations").iter().enumerate() {
        let cat = format!("{at}/characterizations/{ci}");
        let mut cprops = Props::of(c, &cat);
        let adjusted = cprops.get("characterization") == Some("adjusted");
        cprops.finish(r);
        for (fi, f) in arr(c, "facets").iter().enumerate() {
            let (name, value) = (
                text(f, "name").unwrap_or(""),
                text(f, "value").unwrap_or(""),
            );
            let mapped = match (name, adjusted) {
                ("risk", false) => rating_of(value).map(|v| ("risk_rating", v.as_str())),
                ("risk", true) => {
                    if let Some(j) = text(f, "remarks") {
                        fields.insert("risk_justification".into(), j.into());
                    }
                    rating_of(value).map(|v| ("adjusted_risk_rating", v.as_str()))
                }
                ("likelihood", false) => level(value).map(|v| ("likelihood", v.as_str())),
                ("impact", false) => level(value).map(|v| ("impact", v.as_str())),
                _ => None,
            };
            match mapped {
                Some((k, v)) => {
                    fields.insert(k.into(), v.into());
                }
                None => {
                    r.unmapped.insert(format!("{cat}/facets/{fi}"));
                }
            }
        }
    }
    // A document without a risk facet still says how bad it is through likelihood and impact.
    if !fields.contains_key("risk_rating") {
        let l = fields
            .get("likelihood")
            .and_then(Value::as_str)
            .and_then(level);
        let i = fields.get("impact").and_then(Value::as_str).and_then(level);
        if let (Some(l), Some(i)) = (l, i) {
            let rank = |x: Level| x as u8;
            let worst = rank(l).max(rank(i));
            let rating = match worst {
                4 => RiskRating::Critical,
                3 => RiskRating::High,
                2 => RiskRating::Moderate,
                _ => RiskRating::Low,
            };
            fields.insert("risk_rating".into(), rating.as_str().into());
        }
    }
    if let Some(m) = arr(rv, "mitigating-factors").first() {
        if let Some(d) = text(m, "description") {
            fields.insert("interim_mitigation".into(), d.into());
        }
    }
    for (j, _) in arr(rv, "mitigating-factors").iter().enumerate().skip(1) {
        r.unmapped.insert(format!("{at}/mitigating-factors/{j}"));
    }
    if let Some(d) = text(rv, "deadline").and_then(date_of) {
        fields.insert("scheduled_completion".into(), d.to_string().into());
    }
    let mut resources = Resources {
        description: None,
        estimated_cost: None,
        hours: None,
        funded: None,
        recurring: None,
    };
    for (k, rem) in arr(rv, "remediations").iter().enumerate() {
        let rat = format!("{at}/remediations/{k}");
        if k > 0 {
            r.unmapped.insert(rat);
            continue;
        }
        if let Some(obj) = rem.as_object() {
            r.rest(
                obj,
                &rat,
                &[
                    "uuid",
                    "lifecycle",
                    "title",
                    "description",
                    "props",
                    "required-assets",
                    "tasks",
                ],
            );
        }
        let mut rprops = Props::of(rem, &rat);
        let plan_recorded = rprops.get("remediation-plan") != Some("none");
        if plan_recorded {
            if let Some(d) = text(rem, "description") {
                fields.insert("remediation_plan".into(), d.into());
            }
        }
        resources.estimated_cost = rprops.get("estimated-cost").and_then(|c| c.parse().ok());
        resources.hours = rprops.get("hours").and_then(|c| c.parse().ok());
        resources.funded = rprops.get("funded").and_then(|c| c.parse().ok());
        resources.recurring = rprops.get("recurring").and_then(|c| c.parse().ok());
        rprops.finish(r);
        resources.description = arr(rem, "required-assets")
            .first()
            .and_then(|a| text(a, "description"))
            .map(str::to_owned);
        for (ti, t) in arr(rem, "tasks").iter().enumerate() {
            let tat = format!("{rat}/tasks/{ti}");
            if text(t, "type") != Some("milestone") {
                r.unmapped.insert(tat);
                continue;
            }
            if let Some(obj) = t.as_object() {
                r.rest(
                    obj,
                    &tat,
                    &["uuid", "type", "title", "description", "props", "timing"],
                );
            }
            let mut tprops = Props::of(t, &tat);
            let status = tprops
                .get("milestone-status")
                .and_then(|s| s.parse::<MilestoneStatus>().ok())
                .unwrap_or(MilestoneStatus::Planned);
            let completed_on = tprops.get("completed-on").and_then(date_of);
            let _ = tprops.get("position");
            tprops.finish(r);
            let due = t
                .pointer("/timing/on-date/date")
                .or_else(|| t.pointer("/timing/within-date-range/end"))
                .and_then(Value::as_str)
                .and_then(date_of);
            match (text(t, "uuid"), text(t, "title"), due) {
                (Some(u), Some(title), Some(due_on)) => milestones.push(MilestoneDraft {
                    uuid: u.to_owned(),
                    title: title.to_owned(),
                    description: text(t, "description").map(str::to_owned),
                    due_on,
                    status,
                    completed_on,
                }),
                _ => {
                    r.unmapped.insert(tat);
                }
            }
        }
    }
    if resources
        != (Resources {
            description: None,
            estimated_cost: None,
            hours: None,
            funded: None,
            recurring: None,
        })
    {
        if let Ok(v) = serde_json::to_value(resources) {
            fields.insert("resources".into(), v);
        }
    }
    let mut deviation_rationale = None;
    let entries = rv.get("risk-log").map_or(&[][..], |l| arr(l, "entries"));
    for (ei, e) in entries.iter().enumerate() {
        let eat = format!("{at}/risk-log/entries/{ei}");
        let mut eprops = Props::of(e, &eat);
        let kind = eprops.get("deviation-kind");
        let st = eprops.get("deviation-status");
        let kind = kind.and_then(|k| k.parse::<DeviationKind>().ok());
        if kind.is_none() {
            // A status change of the document's own history: this system keeps its own.
            r.unmapped.insert(eat);
            continue;
        }
        eprops.finish(r);
        if let Some(kind) = kind {
            let st = st
                .and_then(|s| s.parse::<DeviationStatus>().ok())
                .unwrap_or(DeviationStatus::Pending);
            deviation = Some((kind, st));
            deviation_rationale = text(e, "description").map(str::to_owned);
        }
    }
    if let Some((kind, status)) = deviation {
        let d = Deviation {
            kind,
            status,
            rationale: deviation_rationale
                .unwrap_or_else(|| "Recorded in the imported OSCAL document.".into()),
        };
        if let Ok(v) = serde_json::to_value(d) {
            fields.insert("deviation".into(), v);
        }
    }
}

/// The distinct asset names (sorted), for local-definitions.
#[derive(Debug, Default)]
pub struct AssetSet(BTreeSet<String>);

impl AssetSet {
    pub fn add(&mut self, assets: &[String]) {
        self.0.extend(assets.iter().cloned());
    }

    pub fn names(&self) -> impl Iterator<Item = &String> {
        self.0.iter()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}
