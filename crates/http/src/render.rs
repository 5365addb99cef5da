//! An item's JSON, written field by field: the bytes `Serialize` writes (a test holds the two
//! equal, byte for byte, for an item with every part filled and for a bare one), without its
//! per-field cost. Through `Serialize`, each of an item's 49 keys was escaped as if it could
//! hold anything (a copy into a 32-byte scratch block, a SIMD scan, a reservation of six times
//! its length) and each field dispatched through the serializer's state machine: 9,000 of the
//! 78,000 instructions of a GET by id. Here a key is a constant, copied; a vocabulary word is
//! written as it is (its words need no escaping); free text goes through sonic-rs's escaping,
//! and the nested records (people, resources, deviations, the 2026 status, …) through their
//! `Serialize`, as before.
//!
//! The item is taken apart by a pattern that names every field, so a field added to [`Item`]
//! does not compile until it is written here.

use poam_domain::{Item, Source};
use serde::Serialize;
use sonic_rs::format::{CompactFormatter, Formatter};

pub(crate) type Rendered = std::io::Result<()>;

/// `s` as a JSON string.
fn text(out: &mut Vec<u8>, s: &str) -> Rendered {
    CompactFormatter.write_string_fast(out, s, true)
}

/// A word known to need no escaping (a vocabulary's), quoted.
fn word(out: &mut Vec<u8>, w: &str) {
    out.push(b'"');
    out.extend_from_slice(w.as_bytes());
    out.push(b'"');
}

fn null(out: &mut Vec<u8>) {
    out.extend_from_slice(b"null");
}

/// `null`, or `v` as `write` writes it.
fn or_null<T>(
    out: &mut Vec<u8>,
    v: Option<T>,
    write: impl FnOnce(&mut Vec<u8>, T) -> Rendered,
) -> Rendered {
    match v {
        Some(v) => write(out, v),
        None => {
            null(out);
            Ok(())
        }
    }
}

fn maybe_text(out: &mut Vec<u8>, s: Option<&str>) -> Rendered {
    or_null(out, s, text)
}

fn maybe_word(out: &mut Vec<u8>, w: Option<&str>) -> Rendered {
    or_null(out, w, |out, w| {
        word(out, w);
        Ok(())
    })
}

fn texts(out: &mut Vec<u8>, list: &[String]) -> Rendered {
    out.push(b'[');
    for (i, s) in list.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        text(out, s)?;
    }
    out.push(b']');
    Ok(())
}

fn uuid(out: &mut Vec<u8>, id: uuid::Uuid) {
    let mut buf = uuid::Uuid::encode_buffer();
    word(out, id.hyphenated().encode_lower(&mut buf));
}

/// Any other value, through its `Serialize`.
fn value<T: Serialize + ?Sized>(out: &mut Vec<u8>, v: &T) -> Rendered {
    sonic_rs::to_writer(&mut *out, v).map_err(std::io::Error::other)
}

/// An optional record: `null`, or the record through its `Serialize`.
fn maybe<T: Serialize>(out: &mut Vec<u8>, v: &Option<T>) -> Rendered {
    or_null(out, v.as_ref(), value)
}

fn day(out: &mut Vec<u8>, d: &chrono::NaiveDate) -> Rendered {
    match poam_domain::json_time::day_text(d, &mut [0u8; 10]) {
        Some(t) => {
            word(out, t);
            Ok(())
        }
        None => value(out, d),
    }
}

fn maybe_day(out: &mut Vec<u8>, d: Option<&chrono::NaiveDate>) -> Rendered {
    or_null(out, d, day)
}

fn instant(out: &mut Vec<u8>, t: &chrono::DateTime<chrono::Utc>) -> Rendered {
    match poam_domain::json_time::instant_text(t, &mut [0u8; 30]) {
        Some(s) => {
            word(out, s);
            Ok(())
        }
        None => value(out, t),
    }
}

fn maybe_instant(out: &mut Vec<u8>, t: Option<&chrono::DateTime<chrono::Utc>>) -> Rendered {
    or_null(out, t, instant)
}

fn boolean(out: &mut Vec<u8>, b: bool) {
    out.extend_from_slice(if b { b"true" } else { b"false" });
}

fn source(out: &mut Vec<u8>, s: &Source) -> Rendered {
    let Source {
        kind,
        detector,
        identifier,
        details,
    } = s;
    out.extend_from_slice(b"{\"kind\":");
    word(out, kind.as_str());
    out.extend_from_slice(b",\"detector\":");
    maybe_text(out, detector.as_deref())?;
    out.extend_from_slice(b",\"identifier\":");
    maybe_text(out, identifier.as_deref())?;
    if !details.is_empty() {
        out.extend_from_slice(b",\"details\":");
        value(out, details)?;
    }
    out.push(b'}');
    Ok(())
}

/// Appends `item` as `Serialize` writes it.
pub(crate) fn item(out: &mut Vec<u8>, item: &Item) -> Rendered {
    let Item {
        id,
        display_id,
        system_id,
        external_id,
        title,
        description,
        controls,
        source: src,
        cves,
        ccis,
        assets,
        likelihood,
        impact,
        risk_rating,
        adjusted_risk_rating,
        risk_justification,
        status,
        owner,
        implementer,
        remediation_plan,
        resources,
        actual_cost,
        interim_mitigation,
        residual_risk,
        detected_on,
        scheduled_completion,
        completed_on,
        closed_on,
        deviation,
        vendor_dependency,
        comments,
        change_management,
        escalation_contact,
        evaluation,
        cws_code,
        deadline_rule,
        overdue,
        escalated,
        vdr,
        kev,
        epss,
        last_seen,
        not_seen_since,
        not_seen_scan,
        version,
        created_at,
        updated_at,
        archived_at,
        archive_reason,
    } = item;
    out.extend_from_slice(b"{\"id\":");
    uuid(out, id.as_uuid());
    out.extend_from_slice(b",\"display_id\":");
    text(out, display_id)?;
    out.extend_from_slice(b",\"system_id\":");
    uuid(out, system_id.as_uuid());
    out.extend_from_slice(b",\"external_id\":");
    maybe_text(out, external_id.as_deref())?;
    out.extend_from_slice(b",\"title\":");
    text(out, title)?;
    out.extend_from_slice(b",\"description\":");
    text(out, description)?;
    out.extend_from_slice(b",\"controls\":");
    texts(out, controls)?;
    out.extend_from_slice(b",\"source\":");
    source(out, src)?;
    out.extend_from_slice(b",\"cves\":");
    texts(out, cves)?;
    if !ccis.is_empty() {
        out.extend_from_slice(b",\"ccis\":");
        texts(out, ccis)?;
    }
    out.extend_from_slice(b",\"assets\":");
    texts(out, assets)?;
    out.extend_from_slice(b",\"likelihood\":");
    maybe_word(out, likelihood.map(|l| l.as_str()))?;
    out.extend_from_slice(b",\"impact\":");
    maybe_word(out, impact.map(|l| l.as_str()))?;
    out.extend_from_slice(b",\"risk_rating\":");
    word(out, risk_rating.as_str());
    out.extend_from_slice(b",\"adjusted_risk_rating\":");
    maybe_word(out, adjusted_risk_rating.map(|r| r.as_str()))?;
    out.extend_from_slice(b",\"risk_justification\":");
    maybe_text(out, risk_justification.as_deref())?;
    out.extend_from_slice(b",\"status\":");
    word(out, status.as_str());
    out.extend_from_slice(b",\"owner\":");
    maybe(out, owner)?;
    out.extend_from_slice(b",\"implementer\":");
    maybe(out, implementer)?;
    out.extend_from_slice(b",\"remediation_plan\":");
    maybe_text(out, remediation_plan.as_deref())?;
    out.extend_from_slice(b",\"resources\":");
    maybe(out, resources)?;
    out.extend_from_slice(b",\"actual_cost\":");
    maybe(out, actual_cost)?;
    out.extend_from_slice(b",\"interim_mitigation\":");
    maybe_text(out, interim_mitigation.as_deref())?;
    out.extend_from_slice(b",\"residual_risk\":");
    maybe_text(out, residual_risk.as_deref())?;
    out.extend_from_slice(b",\"detected_on\":");
    day(out, detected_on)?;
    out.extend_from_slice(b",\"scheduled_completion\":");
    maybe_day(out, scheduled_completion.as_ref())?;
    out.extend_from_slice(b",\"completed_on\":");
    maybe_day(out, completed_on.as_ref())?;
    out.extend_from_slice(b",\"closed_on\":");
    maybe_day(out, closed_on.as_ref())?;
    out.extend_from_slice(b",\"deviation\":");
    maybe(out, deviation)?;
    out.extend_from_slice(b",\"vendor_dependency\":");
    maybe(out, vendor_dependency)?;
    out.extend_from_slice(b",\"comments\":");
    maybe_text(out, comments.as_deref())?;
    out.extend_from_slice(b",\"change_management\":");
    maybe(out, change_management)?;
    out.extend_from_slice(b",\"escalation_contact\":");
    maybe(out, escalation_contact)?;
    out.extend_from_slice(b",\"evaluation\":");
    maybe(out, evaluation)?;
    out.extend_from_slice(b",\"cws_code\":");
    maybe_text(out, cws_code.as_deref())?;
    out.extend_from_slice(b",\"deadline_rule\":");
    maybe_text(out, deadline_rule.as_deref())?;
    out.extend_from_slice(b",\"overdue\":");
    boolean(out, *overdue);
    out.extend_from_slice(b",\"escalated\":");
    boolean(out, *escalated);
    out.extend_from_slice(b",\"vdr\":");
    maybe(out, vdr)?;
    out.extend_from_slice(b",\"kev\":");
    maybe(out, kev)?;
    out.extend_from_slice(b",\"epss\":");
    maybe(out, epss)?;
    out.extend_from_slice(b",\"last_seen\":");
    maybe(out, last_seen)?;
    out.extend_from_slice(b",\"not_seen_since\":");
    maybe_instant(out, not_seen_since.as_ref())?;
    out.extend_from_slice(b",\"not_seen_scan\":");
    or_null(out, *not_seen_scan, |out, scan| {
        uuid(out, scan);
        Ok(())
    })?;
    out.extend_from_slice(b",\"version\":");
    out.extend_from_slice(itoa::Buffer::new().format(*version).as_bytes());
    out.extend_from_slice(b",\"created_at\":");
    instant(out, created_at)?;
    out.extend_from_slice(b",\"updated_at\":");
    instant(out, updated_at)?;
    out.extend_from_slice(b",\"archived_at\":");
    maybe_instant(out, archived_at.as_ref())?;
    out.extend_from_slice(b",\"archive_reason\":");
    maybe_text(out, archive_reason.as_deref())?;
    out.push(b'}');
    Ok(())
}

/// A page of items, as `ItemPage`'s `Serialize` writes it.
pub(crate) fn item_page(out: &mut Vec<u8>, items: &[Item], next_cursor: Option<&str>) -> Rendered {
    out.extend_from_slice(b"{\"items\":[");
    for (i, it) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        item(out, it)?;
    }
    out.extend_from_slice(b"],\"next_cursor\":");
    maybe_text(out, next_cursor)?;
    out.push(b'}');
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use poam_domain::threat::{Epss, Kev, Seen};
    use poam_domain::vdr::{self, Deadline, FedrampClass, Schedule};
    use poam_domain::{ItemFields, ItemId, ItemMeta, SystemId};

    /// Every byte JSON escapes (the controls, `"`, `\`) and some it does not (`/`, DEL,
    /// U+2028, astral characters, HTML's).
    pub(crate) fn nasty() -> String {
        (0u8..0x20)
            .map(char::from)
            .chain("\"\\/\u{7f}é\u{2028}\u{2029}😀 <script>&'".chars())
            .collect()
    }

    /// An item with every part filled, every string holding what JSON must escape.
    fn full() -> Item {
        let nasty = nasty();
        let fields: Result<ItemFields, _> = serde_json::from_value(serde_json::json!({
            "external_id": nasty,
            "title": format!("Title {nasty}"),
            "description": nasty.repeat(40),
            "controls": ["SC-8(1)", nasty],
            "source": {"kind": "pen_test", "detector": nasty, "identifier": "plugin 104743",
                       "details": {"k\"ey": nasty, "plain": "text"}},
            "cves": ["CVE-2011-3389", "CVE-2024-3094"],
            "ccis": ["CCI-000068", nasty],
            "assets": [nasty, "10.0.0.7"],
            "likelihood": "very_high", "impact": "very_low", "risk_rating": "critical",
            "adjusted_risk_rating": "moderate", "risk_justification": nasty,
            "status": "risk_accepted",
            "owner": {"name": "Dana \"D\" Whitfield", "email": "dana@example.org"},
            "implementer": {"name": "Lee Park", "email": null},
            "remediation_plan": nasty,
            "resources": {"description": nasty, "estimated_cost": 1200.5, "hours": 16, "funded": true, "recurring": false},
            "actual_cost": 0.1,
            "interim_mitigation": nasty, "residual_risk": nasty,
            "detected_on": "2026-10-01", "scheduled_completion": "2026-10-31",
            "completed_on": "2026-11-02", "closed_on": "0001-01-01",
            "deviation": {"kind": "risk_adjustment", "rationale": nasty},
            "vendor_dependency": {"product": "Acme LB 9.2", "vendor": "Acme", "last_check_in": "2026-11-01"},
            "comments": nasty,
            "change_management": {"ticket": "CHG0012345", "testing": nasty, "expedited": true},
            "escalation_contact": {"name": nasty, "email": "esc@example.org"},
            "evaluation": {"detected_at": "2026-11-01T09:30:00Z", "detection_source": nasty,
                           "evaluated_at": "2026-11-02T10:00:00.5Z", "internet_reachable": true,
                           "likely_exploitable": false, "agency_impact": "N3"},
            "cws_code": nasty,
        }));
        let fields = fields.unwrap_or_else(|e| panic!("fixture: {e}"));
        let at = chrono::DateTime::from_timestamp(1_790_000_000, 123_456_000).unwrap_or_default();
        let mut item = Item::assemble(
            ItemMeta {
                id: ItemId::new(),
                display_id: "POAM-0001".into(),
                system_id: SystemId::new(),
                deadline_rule: Some(nasty.clone()),
                version: i64::MAX,
                created_at: at,
                updated_at: chrono::DateTime::from_timestamp(1_790_000_000, 0).unwrap_or_default(),
                archived_at: Some(at),
                archive_reason: Some(nasty.clone()),
            },
            fields,
            at.date_naive(),
        );
        let schedule = Schedule {
            evaluation: Some(Deadline {
                rule: nasty.clone(),
                due_at: at,
            }),
            ..Schedule::default()
        };
        item.vdr = Some(vdr::status(
            FedrampClass::C,
            &schedule,
            item.evaluation.as_ref(),
            at + chrono::Duration::days(400),
        ));
        item.kev = Some(Kev {
            cve: "CVE-2024-3094".into(),
            date_added: at.date_naive(),
            due_date: at.date_naive(),
            ransomware: true,
            forensic_triage: Some(false),
            catalog_version: nasty.clone(),
        });
        item.epss = Some(Epss {
            cve: "CVE-2024-3094".into(),
            score: 0.94,
            percentile: 1e-7,
            catalog_version: nasty.clone(),
        });
        item.last_seen = Some(Seen {
            scan_id: uuid::Uuid::new_v4(),
            at,
        });
        item.not_seen_since = Some(at);
        item.not_seen_scan = Some(uuid::Uuid::new_v4());
        item.overdue = true;
        item.escalated = true;
        item
    }

    /// Only what an item must have.
    fn bare() -> Item {
        let fields: Result<ItemFields, _> = serde_json::from_value(serde_json::json!({
            "title": "t", "description": "d", "risk_rating": "low",
            "detected_on": "2026-10-01", "source": {"kind": "audit"},
        }));
        let fields = fields.unwrap_or_else(|e| panic!("fixture: {e}"));
        let at = chrono::DateTime::from_timestamp(0, 0).unwrap_or_default();
        Item::assemble(
            ItemMeta {
                id: ItemId::new(),
                display_id: "POAM-0002".into(),
                system_id: SystemId::new(),
                deadline_rule: None,
                version: 1,
                created_at: at,
                updated_at: at,
                archived_at: None,
                archive_reason: None,
            },
            fields,
            at.date_naive(),
        )
    }

    fn ours(it: &Item) -> String {
        let mut out = Vec::new();
        item(&mut out, it).unwrap_or_else(|e| panic!("render: {e}"));
        String::from_utf8(out).unwrap_or_else(|e| panic!("utf-8: {e}"))
    }

    fn serde(v: &impl Serialize) -> String {
        serde_json::to_string(v).unwrap_or_else(|e| panic!("serde_json: {e}"))
    }

    #[test]
    fn an_item_renders_as_its_serialize_does() {
        for it in [full(), bare()] {
            assert_eq!(ours(&it), serde(&it));
        }
        let full = serde(&full());
        for part in [
            "\"ccis\":",
            "\"details\":",
            "\"vdr\":{",
            "\"kev\":{",
            "\"epss\":{",
        ] {
            assert!(full.contains(part), "the full fixture fills {part}");
        }
    }

    #[test]
    fn a_page_renders_as_its_serialize_does() {
        let nasty = nasty();
        for (items, next_cursor) in [
            (vec![full(), bare()], Some(nasty)),
            (vec![full()], None),
            (vec![], None),
        ] {
            let mut out = Vec::new();
            item_page(&mut out, &items, next_cursor.as_deref())
                .unwrap_or_else(|e| panic!("render: {e}"));
            let page = crate::routes::items::ItemPage { items, next_cursor };
            assert_eq!(String::from_utf8_lossy(&out), serde(&page));
        }
    }
}
