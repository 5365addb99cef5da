//! The history's rules: what an event records, how its hash is made, and how a chain is checked.
//!
//! Each system's events form a chain: an event's hash is SHA-256 over its predecessor's hash and
//! its own canonical content (keys sorted, no insignificant white space). Changing, removing or
//! reordering any recorded event, or cutting the chain's tail, breaks a link that [`verify`]
//! names.

use chrono::NaiveDateTime;
use serde::{Serialize, Serializer};
use serde_json::value::RawValue;
use serde_json::Value;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

const HEX: &[u8; 16] = b"0123456789abcdef";

/// The hash of the empty chain's (non-existent) predecessor.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// JSON with object keys sorted at every depth and no white space: one text per value.
pub fn canonical_json(v: &Value) -> String {
    let mut out = Vec::with_capacity(256);
    write_canonical(v, &mut out);
    // Only serde_json's own output and ASCII punctuation were written: valid UTF-8.
    String::from_utf8(out).unwrap_or_default()
}

/// A string or scalar as serde_json writes it (escaped the same way everywhere).
fn write_plain<T: serde::Serialize + ?Sized>(v: &T, out: &mut Vec<u8>) {
    // Writing a string or a JSON scalar into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, v);
}

fn write_canonical(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
            out.push(b'{');
            for (i, (k, inner)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_plain(k.as_str(), out);
                out.push(b':');
                write_canonical(inner, out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(item, out);
            }
            out.push(b']');
        }
        other => write_plain(other, out),
    }
}

/// The one text of an event's time, hashed and shown alike: RFC 3339 in UTC with exactly six
/// fractional digits (`2026-11-22T08:00:00.000001Z`).
const AT_FORMAT: &str = "%Y-%m-%dT%H:%M:%S%.6fZ";

/// An event's time as the chain hashes it and every view of an event shows it.
pub fn event_time(at: NaiveDateTime) -> String {
    at.format(AT_FORMAT).to_string()
}

fn serialize_event_time<S: Serializer>(at: &NaiveDateTime, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&at.format(AT_FORMAT))
}

/// One recorded change, exactly as hashed: the change feed, an item's history and the auditor
/// bundle all show an event as this. Recompute `hash` as SHA-256 over `prev_hash`, a newline and
/// the canonical JSON (keys sorted, no white space) of every other member to check it offline.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
pub struct Event<'a> {
    #[schema(format = Uuid)]
    pub id: &'a str,
    #[schema(format = Uuid)]
    pub system_id: &'a str,
    /// Position in the system's chain: 1, 2, 3, … without gaps.
    pub seq: i64,
    /// RFC 3339 in UTC with exactly six fractional digits, as hashed.
    #[serde(serialize_with = "serialize_event_time")]
    #[schema(value_type = String, format = DateTime, example = "2026-11-22T08:00:00.000001Z")]
    pub at: NaiveDateTime,
    /// The token subject that made the change.
    pub actor: &'a str,
    /// `created`, `updated`, `archived`, `transitioned`, `completed`, `cancelled`, `recorded`,
    /// `withdrawn`, `exported` or `imported`.
    #[schema(example = "updated")]
    pub action: &'a str,
    /// `system`, `item`, `milestone`, `review`, `evidence`, `cmmc_assessment`, `export` or
    /// `import`.
    #[schema(example = "item")]
    pub resource_kind: &'a str,
    pub resource_id: &'a str,
    /// The resource's version after the change.
    pub version: i64,
    /// The changed fields: `{"field": {"before": …, "after": …}}`.
    #[schema(value_type = std::collections::HashMap<String, FieldChange>, example = json!({"title": {"before": "TLS 1.0", "after": "TLS 1.0 and 1.1"}}))]
    pub changes: &'a RawValue,
    /// The resource as it was after the change: the `System`, `Item`, `Milestone`, `Review`,
    /// `Evidence`, ... document `resource_kind` names, as the API answered it then.
    #[schema(value_type = std::collections::HashMap<String, serde_json::Value>)]
    pub snapshot: &'a RawValue,
    /// SHA-256 of the previous event (64 zeros for the first).
    pub prev_hash: &'a str,
    /// SHA-256 of `prev_hash` and this event's canonical content.
    pub hash: &'a str,
}

/// One changed field of an event (documentation of the wire shape of `Event.changes`).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct FieldChange {
    /// The value before the change (`null`: none, or a creation).
    #[schema(value_type = serde_json::Value)]
    before: (),
    /// The value after the change (`null`: cleared).
    #[schema(value_type = serde_json::Value)]
    after: (),
}

/// Fields kept by the bookkeeping of every resource: they change on every write (or with the
/// date: `overdue`, `escalated`, a milestone's `delayed`) and say nothing about what changed.
const BOOKKEEPING: &[&str] = &["version", "updated_at", "overdue", "escalated", "delayed"];

/// The changed top-level fields: `{field: {"before": old, "after": new}}`. With no `before`
/// (a creation) every non-null field is a change from null.
pub fn changes(before: Option<&Value>, after: &Value) -> Value {
    let empty = serde_json::Map::new();
    let old = before.and_then(Value::as_object).unwrap_or(&empty);
    let new = after.as_object().unwrap_or(&empty);
    let mut keys: Vec<&String> = old.keys().chain(new.keys()).collect();
    keys.sort();
    keys.dedup();
    let mut out = serde_json::Map::new();
    for k in keys {
        if BOOKKEEPING.contains(&k.as_str()) {
            continue;
        }
        let (b, a) = (
            old.get(k).unwrap_or(&Value::Null),
            new.get(k).unwrap_or(&Value::Null),
        );
        if b != a {
            out.insert(k.clone(), serde_json::json!({"before": b, "after": a}));
        }
    }
    Value::Object(out)
}

/// An event as the chain sees it: everything its hash covers, and the hashes.
#[derive(Debug, Clone, PartialEq)]
pub struct ChainedEvent {
    pub id: String,
    pub system_id: String,
    pub seq: i64,
    /// [`event_time`]: RFC 3339 UTC with microseconds.
    pub at: String,
    pub actor: String,
    pub action: String,
    pub resource_kind: String,
    pub resource_id: String,
    pub version: i64,
    pub changes: Value,
    pub snapshot: Value,
    pub prev_hash: String,
    pub hash: String,
}

impl ChainedEvent {
    /// The canonical content the hash covers (everything but the hashes themselves); the
    /// reference [`ChainedEvent::hash_of_parts`] is tested against.
    pub fn content(&self) -> Value {
        serde_json::json!({
            "id": self.id,
            "system_id": self.system_id,
            "seq": self.seq,
            "at": self.at,
            "actor": self.actor,
            "action": self.action,
            "resource_kind": self.resource_kind,
            "resource_id": self.resource_id,
            "version": self.version,
            "changes": self.changes,
            "snapshot": self.snapshot,
        })
    }

    /// SHA-256 (hex) of the predecessor's hash and this event's canonical content.
    pub fn compute_hash(&self, prev_hash: &str) -> String {
        self.hash_of_parts(
            prev_hash,
            &canonical_json(&self.changes),
            &canonical_json(&self.snapshot),
        )
    }

    /// [`ChainedEvent::compute_hash`] given the canonical texts of `changes` and `snapshot`,
    /// which the writer has made anyway to store them: the canonical content is assembled
    /// around them, its keys in sorted order, without copying or re-serialising either.
    pub fn hash_of_parts(&self, prev_hash: &str, changes: &str, snapshot: &str) -> String {
        enum Part<'a> {
            Text(&'a str),
            Number(i64),
            Canonical(&'a str),
        }
        // The members of `content()`, in sorted key order.
        let members = [
            ("action", Part::Text(&self.action)),
            ("actor", Part::Text(&self.actor)),
            ("at", Part::Text(&self.at)),
            ("changes", Part::Canonical(changes)),
            ("id", Part::Text(&self.id)),
            ("resource_id", Part::Text(&self.resource_id)),
            ("resource_kind", Part::Text(&self.resource_kind)),
            ("seq", Part::Number(self.seq)),
            ("snapshot", Part::Canonical(snapshot)),
            ("system_id", Part::Text(&self.system_id)),
            ("version", Part::Number(self.version)),
        ];
        let mut content = Vec::with_capacity(changes.len() + snapshot.len() + 512);
        content.push(b'{');
        for (i, (name, part)) in members.iter().enumerate() {
            if i > 0 {
                content.push(b',');
            }
            write_plain(*name, &mut content);
            content.push(b':');
            match part {
                Part::Text(t) => write_plain(*t, &mut content),
                Part::Number(n) => write_plain(n, &mut content),
                Part::Canonical(c) => content.extend_from_slice(c.as_bytes()),
            }
        }
        content.push(b'}');
        let mut h = Sha256::new();
        h.update(prev_hash.as_bytes());
        h.update(b"\n");
        h.update(&content);
        let digest = h.finalize();
        let mut hex = String::with_capacity(64);
        for b in digest {
            hex.push(char::from(HEX[usize::from(b >> 4)]));
            hex.push(char::from(HEX[usize::from(b & 0xf)]));
        }
        hex
    }
}

/// Where and why a chain breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokenLink {
    /// The sequence number at which the chain breaks (the expected one when events are missing).
    pub seq: i64,
    /// The event found there, if any.
    pub event_id: Option<String>,
    pub reason: String,
}

/// Checks a chain one event at a time, in `seq` order, holding only the last hash: a chain of
/// any length verifies in constant memory, page by page.
#[derive(Debug, Clone)]
pub struct Verifier {
    prev: String,
    expected_seq: i64,
}

impl Default for Verifier {
    fn default() -> Self {
        Verifier {
            prev: GENESIS.to_owned(),
            expected_seq: 1,
        }
    }
}

impl Verifier {
    pub fn new() -> Self {
        Self::default()
    }

    /// The events checked so far.
    pub fn checked(&self) -> i64 {
        self.expected_seq - 1
    }

    /// The sequence number the next event must have.
    pub fn expected_seq(&self) -> i64 {
        self.expected_seq
    }

    /// Checks the next event against its predecessor.
    pub fn check(&mut self, e: &ChainedEvent) -> Result<(), BrokenLink> {
        let broken = |reason: String| BrokenLink {
            seq: self.expected_seq,
            event_id: Some(e.id.clone()),
            reason,
        };
        if e.seq != self.expected_seq {
            return Err(broken(format!(
                "event {} is missing (found {} instead): events were removed",
                self.expected_seq, e.seq
            )));
        }
        if e.prev_hash != self.prev {
            return Err(broken(
                "its prev_hash does not name the previous event's hash: the chain was re-linked"
                    .into(),
            ));
        }
        if e.compute_hash(&self.prev) != e.hash {
            return Err(broken(
                "its content does not match its hash: the event was altered".into(),
            ));
        }
        self.prev.clone_from(&e.hash);
        self.expected_seq += 1;
        Ok(())
    }

    /// Compares the end of the chain with the head the system recorded (`head_seq`,
    /// `head_hash`).
    pub fn finish(&self, head_seq: i64, head_hash: &str) -> Result<(), BrokenLink> {
        let last = self.checked();
        if last != head_seq || self.prev != head_hash {
            return Err(BrokenLink {
                seq: last + 1,
                event_id: None,
                reason: format!(
                    "the system recorded {head_seq} events but {last} remain: the chain's tail was removed or replaced"
                ),
            });
        }
        Ok(())
    }
}

/// Checks a system's events, in `seq` order, against each other and against the chain head the
/// system recorded (`head_seq`, `head_hash`).
pub fn verify(events: &[ChainedEvent], head_seq: i64, head_hash: &str) -> Result<(), BrokenLink> {
    let mut v = Verifier::new();
    for e in events {
        v.check(e)?;
    }
    v.finish(head_seq, head_hash)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn canonical_json_sorts_keys_at_every_depth() {
        let v = json!({"b": 1, "a": {"d": [true, null, {"z": 1, "y": "é"}], "c": 2.5}});
        assert_eq!(
            canonical_json(&v),
            r#"{"a":{"c":2.5,"d":[true,null,{"y":"é","z":1}]},"b":1}"#
        );
    }

    #[test]
    fn changes_name_each_changed_field_with_before_and_after() {
        let before = json!({"title": "a", "status": "open", "version": 1, "owner": null});
        let after = json!({"title": "b", "status": "open", "version": 2, "owner": {"name": "x"}});
        assert_eq!(
            changes(Some(&before), &after),
            json!({"owner": {"before": null, "after": {"name": "x"}}, "title": {"before": "a", "after": "b"}})
        );
        assert_eq!(
            changes(None, &json!({"title": "a", "comments": null})),
            json!({"title": {"before": null, "after": "a"}})
        );
    }

    #[test]
    fn the_assembled_content_hashes_as_the_canonical_document() {
        let event = ChainedEvent {
            id: "e-1".into(),
            system_id: "s-\"1\"".into(),
            seq: 42,
            at: "2026-11-22T08:00:00.000001Z".into(),
            actor: "dana\u{7}\u{e9}\u{1F600}\\".into(),
            action: "created".into(),
            resource_kind: "item".into(),
            resource_id: "i-1".into(),
            version: -3,
            changes: json!({"title": {"before": null, "after": "a\nb"}}),
            snapshot: json!({"z": [1, 2.5, {"b": true, "a": null}], "a": "</script>"}),
            prev_hash: GENESIS.into(),
            hash: String::new(),
        };
        let mut h = Sha256::new();
        h.update(GENESIS.as_bytes());
        h.update(b"\n");
        h.update(canonical_json(&event.content()).as_bytes());
        let reference: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(event.compute_hash(GENESIS), reference);
    }

    #[test]
    fn the_event_view_is_the_hashed_content_and_its_hashes() {
        let at = chrono::NaiveDate::from_ymd_opt(2026, 11, 22)
            .and_then(|d| d.and_hms_micro_opt(8, 0, 0, 1))
            .unwrap_or_default();
        assert_eq!(event_time(at), "2026-11-22T08:00:00.000001Z");
        let whole = chrono::NaiveDate::from_ymd_opt(2026, 11, 22)
            .and_then(|d| d.and_hms_opt(8, 0, 0))
            .unwrap_or_default();
        assert_eq!(event_time(whole), "2026-11-22T08:00:00.000000Z");
        let mut chained = ChainedEvent {
            id: "e-1".into(),
            system_id: "s-1".into(),
            seq: 1,
            at: event_time(at),
            actor: "dana".into(),
            action: "created".into(),
            resource_kind: "item".into(),
            resource_id: "i-1".into(),
            version: 1,
            changes: json!({"title": {"before": null, "after": "a"}}),
            snapshot: json!({"title": "a", "b": [1, 2]}),
            prev_hash: GENESIS.into(),
            hash: String::new(),
        };
        chained.hash = chained.compute_hash(GENESIS);
        let (changes, snapshot) = (
            canonical_json(&chained.changes),
            canonical_json(&chained.snapshot),
        );
        fn raw(t: &str) -> Option<&RawValue> {
            serde_json::from_str(t).ok()
        }
        let (Some(changes), Some(snapshot)) = (raw(&changes), raw(&snapshot)) else {
            panic!("canonical JSON parses");
        };
        let view = Event {
            id: &chained.id,
            system_id: &chained.system_id,
            seq: chained.seq,
            at,
            actor: &chained.actor,
            action: &chained.action,
            resource_kind: &chained.resource_kind,
            resource_id: &chained.resource_id,
            version: chained.version,
            changes,
            snapshot,
            prev_hash: &chained.prev_hash,
            hash: &chained.hash,
        };
        let mut shown = serde_json::to_value(view).unwrap_or_default();
        let mut content = chained.content();
        if let (Some(shown), Some(content)) = (shown.as_object_mut(), content.as_object_mut()) {
            assert_eq!(shown.remove("hash"), Some(json!(chained.hash)));
            assert_eq!(shown.remove("prev_hash"), Some(json!(GENESIS)));
            assert_eq!(shown, content, "the view shows exactly what is hashed");
        } else {
            panic!("objects");
        }
    }

    #[test]
    fn the_verifier_checks_page_by_page_in_constant_memory() {
        let c = chain(7);
        let mut v = Verifier::new();
        for page in c.chunks(2) {
            for e in page {
                assert_eq!(v.check(e), Ok(()));
            }
        }
        assert_eq!(v.checked(), 7);
        assert_eq!(v.finish(7, &c[6].hash), Ok(()));
        assert_eq!(v.finish(8, &c[6].hash).map_err(|b| b.seq), Err(8));
    }

    fn chain(n: i64) -> Vec<ChainedEvent> {
        let mut prev = GENESIS.to_owned();
        (1..=n)
            .map(|seq| {
                let mut e = ChainedEvent {
                    id: format!("e{seq}"),
                    system_id: "s".into(),
                    seq,
                    at: format!("2026-11-22T00:00:0{seq}.000000Z"),
                    actor: "a".into(),
                    action: "updated".into(),
                    resource_kind: "item".into(),
                    resource_id: "i".into(),
                    version: seq,
                    changes: json!({"title": {"before": seq - 1, "after": seq}}),
                    snapshot: json!({"title": seq}),
                    prev_hash: prev.clone(),
                    hash: String::new(),
                };
                e.hash = e.compute_hash(&prev);
                prev = e.hash.clone();
                e
            })
            .collect()
    }

    #[test]
    fn an_intact_chain_verifies() {
        let c = chain(4);
        assert_eq!(verify(&c, 4, &c[3].hash), Ok(()));
        assert_eq!(verify(&[], 0, GENESIS), Ok(()));
    }

    #[test]
    fn every_kind_of_tampering_is_named() {
        let c = chain(4);
        let head = c[3].hash.clone();
        let mut altered = c.clone();
        altered[1].actor = "mallory".into();
        let err = verify(&altered, 4, &head).err();
        assert_eq!(
            err.as_ref().map(|b| (b.seq, b.event_id.clone())),
            Some((2, Some("e2".into())))
        );
        assert!(err
            .map(|b| b.reason)
            .unwrap_or_default()
            .contains("altered"));

        let mut removed = c.clone();
        removed.remove(2);
        let err = verify(&removed, 4, &head).err();
        assert_eq!(err.map(|b| b.seq), Some(3));

        let mut rehashed = c.clone();
        rehashed[1].actor = "mallory".into();
        rehashed[1].hash = rehashed[1].compute_hash(&rehashed[0].hash);
        let err = verify(&rehashed, 4, &head).err();
        assert_eq!(
            err.map(|b| b.seq),
            Some(3),
            "re-hashing one event breaks the next link"
        );

        let cut = &c[..3];
        let err = verify(cut, 4, &head).err();
        assert_eq!(
            err.as_ref().map(|b| (b.seq, b.event_id.clone())),
            Some((4, None))
        );
    }
}
