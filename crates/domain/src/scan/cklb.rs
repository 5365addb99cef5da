//! STIG Viewer 3 checklists (`.cklb`, JSON): one finding per `open` rule of each STIG, on the
//! checklist's target host, exactly as a CKL is read ([`super::ckl`]). A CKLB file is tens of
//! megabytes at most, so the document is read whole; each rule is then mapped on its own, so
//! one malformed rule is unmapped (with its JSON pointer) rather than failing the file.

use super::ckl::{map_rule, Rule, Stig, Target};
use super::{Options, ParseError, Sink, Unmapped};
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use std::io::BufRead;

/// Reads a STIG Viewer 3 checklist into `sink`.
pub fn read<R: BufRead>(
    input: R,
    options: &Options,
    sink: &mut dyn Sink,
) -> Result<(), ParseError> {
    let mut input = input;
    super::skip_bom(&mut input)?;
    let checklist: Checklist = serde_json::from_reader(input).map_err(json_error)?;
    let Some(stigs) = checklist.stigs else {
        return Err(ParseError::new(
            "/stigs",
            "the document has no `stigs` array: it is not a STIG Viewer 3 checklist (CKLB)",
        ));
    };
    sink.scanner("STIG Viewer 3 (CKLB)");
    let data: TargetData = match checklist.target_data {
        Value::Null => TargetData::default(),
        value => serde_json::from_value(value)
            .map_err(|e| ParseError::new("/target_data", format!("unreadable target: {e}")))?,
    };
    let mut target = Target::given(options);
    target.fqdn = data.fqdn.0;
    target.host_name = data.host_name.0;
    target.ip = data.ip_address.0;
    target.announce(sink);

    for (i, stig) in stigs.into_iter().enumerate() {
        let stig: StigJson = serde_json::from_value(stig)
            .map_err(|e| ParseError::new(format!("/stigs/{i}"), format!("unreadable STIG: {e}")))?;
        let identity = Stig {
            id: stig.stig_id.0,
            title: [stig.display_name.0, stig.stig_name.0, stig.title.0]
                .into_iter()
                .find(|s| !s.trim().is_empty())
                .unwrap_or_default(),
            release: stig.release_info.0,
        };
        for (j, rule) in stig.rules.into_iter().enumerate() {
            let place = format!("/stigs/{i}/rules/{j}");
            match serde_json::from_value::<RuleJson>(rule) {
                Ok(rule) => map_rule(&rule.into_rule(), &identity, &target, place, "rule", sink),
                Err(e) => sink.unmapped(Unmapped {
                    place,
                    element: "rule".into(),
                    reason: format!("the rule cannot be read: {e}"),
                }),
            }
        }
    }
    Ok(())
}

fn json_error(e: serde_json::Error) -> ParseError {
    let place = format!("line {}, column {}", e.line(), e.column());
    let message = match e.classify() {
        serde_json::error::Category::Eof => {
            format!("the file ends before the JSON document closes ({e})")
        }
        serde_json::error::Category::Syntax => format!("malformed JSON: {e}"),
        serde_json::error::Category::Data => format!(
            "the document is not a STIG Viewer 3 checklist (CKLB), an object with `stigs`: {e}"
        ),
        serde_json::error::Category::Io => format!("the file cannot be read: {e}"),
    };
    ParseError::new(place, message)
}

/// A string member that may be written as a string, a number, a boolean or null.
#[derive(Debug, Default)]
struct Text(String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(Text(match Value::deserialize(deserializer)? {
            Value::Null => String::new(),
            Value::String(s) => s,
            Value::Bool(b) => b.to_string(),
            Value::Number(n) => n.to_string(),
            other => other.to_string(),
        }))
    }
}

/// A list of strings that may be written as one string, or null.
fn texts<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    Ok(match Value::deserialize(deserializer)? {
        Value::Array(items) => items
            .into_iter()
            .filter_map(|v| match v {
                Value::String(s) => Some(s),
                Value::Null => None,
                other => Some(other.to_string()),
            })
            .collect(),
        Value::String(s) => s.split([',', ' ']).map(str::to_owned).collect(),
        _ => Vec::new(),
    })
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Checklist {
    target_data: Value,
    stigs: Option<Vec<Value>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct TargetData {
    host_name: Text,
    ip_address: Text,
    fqdn: Text,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct StigJson {
    stig_name: Text,
    display_name: Text,
    title: Text,
    stig_id: Text,
    release_info: Text,
    rules: Vec<Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RuleJson {
    group_id: Text,
    rule_id: Text,
    rule_version: Text,
    severity: Text,
    group_title: Text,
    rule_title: Text,
    fix_text: Text,
    discussion: Text,
    check_content: Text,
    #[serde(deserialize_with = "texts")]
    ccis: Vec<String>,
    status: Text,
    overrides: Value,
    comments: Text,
    finding_details: Text,
}

impl RuleJson {
    fn into_rule(self) -> Rule {
        // `overrides: {"severity": {"severity": "low", "reason": "…"}}`; a bare string is taken
        // as the severity too.
        let (severity_override, severity_justification) = match self.overrides.get("severity") {
            Some(Value::Object(o)) => (
                o.get("severity")
                    .and_then(Value::as_str)
                    .unwrap_or_default(),
                o.get("reason").and_then(Value::as_str).unwrap_or_default(),
            ),
            Some(Value::String(s)) => (s.as_str(), ""),
            _ => ("", ""),
        };
        Rule {
            vuln_id: self.group_id.0,
            rule_id: self.rule_id.0,
            rule_version: self.rule_version.0,
            rule_title: self.rule_title.0,
            group_title: self.group_title.0,
            discussion: self.discussion.0,
            check_content: self.check_content.0,
            fix_text: self.fix_text.0,
            severity: self.severity.0,
            ccis: self.ccis,
            status: self.status.0,
            finding_details: self.finding_details.0,
            comments: self.comments.0,
            severity_override: severity_override.to_owned(),
            severity_justification: severity_justification.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Collected, Options, ParseError, Severity};
    use super::read;

    const SAMPLE: &str = include_str!("testdata/cklb_sample.cklb");

    fn collect(text: &str) -> Result<Collected, ParseError> {
        let mut sink = Collected::default();
        read(text.as_bytes(), &Options::default(), &mut sink)?;
        Ok(sink)
    }

    #[test]
    fn maps_open_rules_to_findings() -> Result<(), ParseError> {
        let got = collect(SAMPLE)?;
        assert_eq!(got.scanner.as_deref(), Some("STIG Viewer 3 (CKLB)"));
        assert_eq!(got.hosts, ["web1.example.org"]);
        let keys: Vec<(&str, &str, &str, Option<Severity>, &str)> = got
            .findings
            .iter()
            .map(|f| {
                (
                    f.detector.as_str(),
                    f.identifier.as_str(),
                    f.asset.as_str(),
                    f.severity,
                    f.place.as_str(),
                )
            })
            .collect();
        assert_eq!(
            keys,
            [
                (
                    "stig:RHEL_8_STIG",
                    "V-230221",
                    "web1.example.org",
                    Some(Severity::Cat1),
                    "/stigs/0/rules/0"
                ),
                (
                    "stig:RHEL_8_STIG",
                    "V-230222",
                    "web1.example.org",
                    Some(Severity::Cat3),
                    "/stigs/0/rules/1"
                ),
                (
                    "stig:Apache_Server_2-4_UNIX_Server",
                    "V-214228",
                    "web1.example.org",
                    Some(Severity::Cat2),
                    "/stigs/1/rules/0"
                ),
            ]
        );
        let Some(first) = got.findings.first() else {
            panic!("no findings")
        };
        assert_eq!(first.title, "RHEL 8 must be a vendor-supported release.");
        assert_eq!(
            first.description,
            "Discussion of V-230221 & why it matters <really>."
        );
        assert_eq!(first.ccis, ["CCI-000366"]);
        assert_eq!(
            first.solution.as_deref(),
            Some("Configure the system for V-230221.")
        );
        let detail = |k: &str| first.details.get(k).map(String::as_str);
        assert_eq!(detail("rule_id"), Some("SV-230221r858734_rule"));
        assert_eq!(detail("stig_rule_version"), Some("RHEL-08-010000"));
        assert_eq!(detail("vuln_id"), Some("V-230221"));
        assert_eq!(detail("stig_id"), Some("RHEL_8_STIG"));
        assert_eq!(detail("stig_title"), Some("Red Hat Enterprise Linux 8"));
        assert_eq!(
            detail("stig_release"),
            Some("Release: 12 Benchmark Date: 25 Oct 2023")
        );
        assert_eq!(
            detail("check_content"),
            Some("Verify the setting for V-230221.")
        );
        assert_eq!(detail("finding_details"), Some("Release is 8.2"));
        assert_eq!(detail("comments"), Some("Upgrade planned"));
        assert_eq!(detail("status"), Some("open"));
        assert_eq!(detail("fqdn"), Some("web1.example.org"));
        assert_eq!(detail("ip"), Some("10.0.0.5"));
        assert_eq!(detail("host_name"), Some("web1"));

        let Some(overridden) = got.findings.get(1) else {
            panic!("no second finding")
        };
        assert_eq!(overridden.ccis, ["CCI-000366", "CCI-001227"]);
        assert_eq!(
            overridden
                .details
                .get("severity_override")
                .map(String::as_str),
            Some("low")
        );
        assert_eq!(
            overridden
                .details
                .get("severity_justification")
                .map(String::as_str),
            Some("Compensating control: isolated enclave.")
        );
        Ok(())
    }

    /// A checklist saved with a UTF-8 byte-order mark (as PowerShell tools such as
    /// Evaluate-STIG write them) reads as the same checklist without it.
    #[test]
    fn a_byte_order_mark_is_ignored() -> Result<(), ParseError> {
        let plain = collect(SAMPLE)?;
        let marked = collect(&format!("\u{feff}{SAMPLE}"))?;
        assert!(!plain.findings.is_empty());
        assert_eq!(marked.findings, plain.findings);
        assert_eq!(marked.skipped, plain.skipped);
        assert_eq!(marked.unmapped, plain.unmapped);
        // Only at the start: elsewhere it is a character like any other (here, not JSON).
        let err = collect(&format!(" \u{feff}{SAMPLE}")).err();
        assert!(err.is_some());
        Ok(())
    }

    #[test]
    fn accounts_for_every_rule() -> Result<(), ParseError> {
        let got = collect(SAMPLE)?;
        assert_eq!(
            got.findings.len() + got.skipped.len() + got.unmapped.len(),
            9
        );
        let skipped: Vec<(&str, &str, bool, &str)> = got
            .skipped
            .iter()
            .map(|s| {
                (
                    s.identifier.as_deref().unwrap_or_default(),
                    s.reason.as_str(),
                    s.fixed,
                    s.place.as_str(),
                )
            })
            .collect();
        assert_eq!(
            skipped,
            [
                ("V-230223", "not_a_finding", true, "/stigs/0/rules/2"),
                ("V-230224", "not_applicable", false, "/stigs/0/rules/3"),
                ("V-230225", "not_reviewed", false, "/stigs/0/rules/4"),
            ]
        );
        assert!(got
            .skipped
            .iter()
            .all(|s| s.asset.as_deref() == Some("web1.example.org")
                && s.detector.as_deref() == Some("stig:RHEL_8_STIG")));
        let unmapped: Vec<(&str, &str)> = got
            .unmapped
            .iter()
            .map(|u| (u.place.as_str(), u.reason.as_str()))
            .collect();
        let Some((last_place, last_reason)) = unmapped.get(2).copied() else {
            panic!("three unmapped rules expected: {unmapped:?}")
        };
        assert_eq!(
            unmapped.get(..2),
            Some(
                &[
                    ("/stigs/0/rules/5", "the status \"pending\" is not known"),
                    ("/stigs/0/rules/6", "the rule has no Vuln id (group id)"),
                ][..]
            )
        );
        assert_eq!(last_place, "/stigs/0/rules/7");
        assert!(last_reason.starts_with("the rule cannot be read"));
        Ok(())
    }

    #[test]
    fn a_checklist_without_a_host_maps_nothing() -> Result<(), ParseError> {
        let text = SAMPLE
            .replace("\"host_name\": \"web1\"", "\"host_name\": \"\"")
            .replace("\"ip_address\": \"10.0.0.5\"", "\"ip_address\": null")
            .replace("\"fqdn\": \"web1.example.org\"", "\"fqdn\": \" \"");
        let got = collect(&text)?;
        assert!(got.hosts.is_empty());
        assert!(got.findings.is_empty() && got.skipped.is_empty());
        assert_eq!(got.unmapped.len(), 9);
        let no_host = got
            .unmapped
            .iter()
            .filter(|u| {
                u.reason
                    == "the checklist names no target host (name one with the `host` parameter)"
            })
            .count();
        // The rule that is not an object cannot be read at all.
        assert_eq!(no_host, 8);

        // Named by the importer (`host`), the same rules map to that host; a checklist that
        // names its own keeps it.
        let given = Options {
            host: Some("kiosk-7".into()),
            ..Options::default()
        };
        let mut named = Collected::default();
        read(text.as_bytes(), &given, &mut named)?;
        assert_eq!(named.hosts, ["kiosk-7"]);
        let plain = collect(SAMPLE)?;
        assert_eq!(named.findings.len(), plain.findings.len());
        assert!(!named.findings.is_empty());
        assert!(named
            .findings
            .iter()
            .all(|f| f.asset == "kiosk-7" && f.host == "kiosk-7"));
        // What is unmapped is what is unmapped with the checklist's own host (a rule that is
        // not an object, an unknown status…), no longer every rule.
        assert_eq!(named.unmapped, plain.unmapped);
        let mut own = Collected::default();
        read(SAMPLE.as_bytes(), &given, &mut own)?;
        assert_eq!(own.findings, plain.findings);
        Ok(())
    }

    #[test]
    fn the_host_falls_back_to_name_then_ip() -> Result<(), ParseError> {
        let no_fqdn = SAMPLE.replace("\"fqdn\": \"web1.example.org\"", "\"fqdn\": \"\"");
        assert_eq!(collect(&no_fqdn)?.hosts, ["web1"]);
        let only_ip = no_fqdn.replace("\"host_name\": \"web1\"", "\"host_name\": null");
        let got = collect(&only_ip)?;
        assert_eq!(got.hosts, ["10.0.0.5"]);
        assert!(got.findings.iter().all(|f| f.asset == "10.0.0.5"));
        Ok(())
    }

    #[test]
    fn a_truncated_checklist_is_an_error() {
        for cut in [SAMPLE.len() / 2, SAMPLE.len() / 7, SAMPLE.len() - 3] {
            let Some(part) = SAMPLE.get(..cut) else {
                panic!("cut inside a character")
            };
            let Err(e) = collect(part) else {
                panic!("a truncated checklist was read")
            };
            assert!(e.place.starts_with("line "), "{e}");
            assert!(e.message.contains("the file ends before"), "{e}");
        }
    }

    #[test]
    fn malformed_json_names_its_line() {
        let Err(e) = collect("{\n  \"stigs\": [\n    {,}\n  ]\n}") else {
            panic!("malformed JSON was read")
        };
        assert_eq!(e.place, "line 3, column 6");
        assert!(e.message.starts_with("malformed JSON"), "{e}");
    }

    #[test]
    fn another_document_is_refused() {
        let Err(e) = collect("{\"runs\": [], \"version\": \"2.1.0\"}") else {
            panic!("a SARIF log was read as a checklist")
        };
        assert_eq!(e.place, "/stigs");
        let Err(e) = collect("[1, 2]") else {
            panic!("an array was read as a checklist")
        };
        assert!(e.place.starts_with("line 1"), "{e}");
        let Err(e) = collect("{\"stigs\": {\"rules\": []}}") else {
            panic!("stigs as an object was read")
        };
        assert!(e.place.starts_with("line 1"), "{e}");
        let Err(e) = collect("{\"stigs\": [7]}") else {
            panic!("a STIG that is a number was read")
        };
        assert_eq!(e.place, "/stigs/0");
        assert!(collect("<CHECKLIST/>").is_err());
    }

    #[test]
    fn lenient_with_missing_and_odd_members() -> Result<(), ParseError> {
        let text = r#"{"target_data": {"host_name": "h1"},
            "stigs": [{"stig_id": "X", "rules": [
              {"group_id": "V-1", "status": "open", "severity": "high", "ccis": "CCI-000001",
               "rule_version": 12, "comments": null, "overrides": {"severity": "medium"}}
            ]}, {"stig_id": "Y"}]}"#;
        let got = collect(text)?;
        let Some(f) = got.findings.first() else {
            panic!("no finding")
        };
        assert_eq!(f.identifier, "V-1");
        assert_eq!(f.asset, "h1");
        assert_eq!(f.title, "V-1");
        assert_eq!(f.severity, Some(Severity::Cat2));
        assert_eq!(f.ccis, ["CCI-000001"]);
        assert_eq!(
            f.details.get("stig_rule_version").map(String::as_str),
            Some("12")
        );
        Ok(())
    }
}
