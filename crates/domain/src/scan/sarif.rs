//! SARIF 2.1.0 (OASIS Static Analysis Results Interchange Format): code scanners (CodeQL,
//! Semgrep) and dependency scanners (Trivy, Grype) alike. A SARIF log is limited to tens of
//! megabytes, so the document is held while its runs are read.
//!
//! Each `runs[r].results[i]` becomes a finding, a skipped result (`kind` other than `fail`,
//! `suppressed`, `informational`) or an unmapped one; its place is the JSON pointer
//! `/runs/{r}/results/{i}`.

use super::{Finding, Options, ParseError, Severity, Sink, Skipped, Unmapped};
use crate::controls::normalize_cve;
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Log {
    version: Option<serde_json::Value>,
    runs: Option<Vec<Run>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Run {
    tool: Tool,
    results: Vec<SarifResult>,
    version_control_provenance: Vec<VersionControl>,
    automation_details: Option<AutomationDetails>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Tool {
    driver: Driver,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Driver {
    name: String,
    version: Option<String>,
    semantic_version: Option<String>,
    rules: Vec<Rule>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Rule {
    id: Option<String>,
    name: Option<String>,
    short_description: Option<Message>,
    full_description: Option<Message>,
    help: Option<Message>,
    default_configuration: Option<Configuration>,
    properties: Option<Properties>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Message {
    text: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Configuration {
    level: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Properties {
    tags: Vec<String>,
    #[serde(rename = "security-severity")]
    security_severity: Option<serde_json::Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct VersionControl {
    repository_uri: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct AutomationDetails {
    id: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct SarifResult {
    rule_id: Option<String>,
    rule_index: Option<i64>,
    rule: Option<RuleReference>,
    level: Option<String>,
    kind: Option<String>,
    message: Message,
    locations: Vec<Location>,
    fingerprints: BTreeMap<String, String>,
    partial_fingerprints: BTreeMap<String, String>,
    suppressions: Vec<Suppression>,
    baseline_state: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RuleReference {
    id: Option<String>,
    index: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Location {
    physical_location: Option<PhysicalLocation>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct PhysicalLocation {
    artifact_location: Option<ArtifactLocation>,
    region: Option<Region>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct ArtifactLocation {
    uri: Option<String>,
    uri_base_id: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Region {
    start_line: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Suppression {
    status: Option<String>,
}

/// Reads a SARIF 2.1.0 log into `sink`.
pub fn read<R: std::io::BufRead>(
    input: R,
    options: &Options,
    sink: &mut dyn Sink,
) -> Result<(), ParseError> {
    let mut input = input;
    super::skip_bom(&mut input)?;
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut input, &mut bytes)
        .map_err(|e| ParseError::new("", format!("cannot read the SARIF log: {e}")))?;
    let log: Log = serde_json::from_slice(&bytes).map_err(|e| json_error(&e))?;
    drop(bytes);
    match log.version.as_ref() {
        Some(serde_json::Value::String(v)) if v == "2.1.0" => {}
        Some(other) => {
            return Err(ParseError::new(
                "/version",
                format!("SARIF version {other} is not 2.1.0"),
            ))
        }
        None => return Err(ParseError::new("/version", "no SARIF version (2.1.0)")),
    }
    let Some(runs) = log.runs else {
        return Err(ParseError::new("/runs", "a SARIF log has runs"));
    };
    for (r, run) in runs.iter().enumerate() {
        read_run(r, run, options, sink);
    }
    Ok(())
}

/// serde_json's error as a place: `line L, column C`.
fn json_error(e: &serde_json::Error) -> ParseError {
    let place = format!("line {}, column {}", e.line(), e.column());
    let message = if e.is_eof() {
        format!("truncated SARIF: {e}")
    } else {
        format!("malformed SARIF: {e}")
    };
    ParseError::new(place, message)
}

fn non_empty(s: Option<&String>) -> Option<&str> {
    s.map(|s| s.trim()).filter(|s| !s.is_empty())
}

fn read_run(r: usize, run: &Run, options: &Options, sink: &mut dyn Sink) {
    let driver = &run.tool.driver;
    let driver_name = driver.name.trim();
    let tool_version =
        non_empty(driver.version.as_ref()).or_else(|| non_empty(driver.semantic_version.as_ref()));
    match tool_version {
        Some(v) => sink.scanner(&format!("{driver_name} {v}")),
        None => sink.scanner(driver_name),
    }
    let repository = run
        .version_control_provenance
        .first()
        .and_then(|v| non_empty(v.repository_uri.as_ref()));
    let automation = run
        .automation_details
        .as_ref()
        .and_then(|a| non_empty(a.id.as_ref()));
    let host = repository.or(automation).unwrap_or(driver_name).to_owned();
    sink.host(&host);
    let detector = format!("sarif:{}", driver_name.to_lowercase());

    for (i, result) in run.results.iter().enumerate() {
        let place = format!("/runs/{r}/results/{i}");
        read_result(
            &place, result, driver, repository, &host, &detector, options, sink,
        );
    }
}

/// The rule a result refers to: by `ruleIndex` / `rule.index`, else by id.
fn find_rule<'a>(driver: &'a Driver, result: &SarifResult, id: Option<&str>) -> Option<&'a Rule> {
    let index = result
        .rule_index
        .or_else(|| result.rule.as_ref().and_then(|r| r.index))
        .filter(|i| *i >= 0)
        .and_then(|i| usize::try_from(i).ok());
    if let Some(rule) = index.and_then(|i| driver.rules.get(i)) {
        return Some(rule);
    }
    let id = id?;
    driver
        .rules
        .iter()
        .find(|rule| rule.id.as_deref() == Some(id))
}

#[allow(clippy::too_many_arguments)]
fn read_result(
    place: &str,
    result: &SarifResult,
    driver: &Driver,
    repository: Option<&str>,
    host: &str,
    detector: &str,
    options: &Options,
    sink: &mut dyn Sink,
) {
    let stated_id = non_empty(result.rule_id.as_ref())
        .or_else(|| result.rule.as_ref().and_then(|r| non_empty(r.id.as_ref())));
    let rule = find_rule(driver, result, stated_id);
    let rule_id = stated_id.or_else(|| rule.and_then(|r| non_empty(r.id.as_ref())));

    let physical = result
        .locations
        .first()
        .and_then(|l| l.physical_location.as_ref());
    let artifact = physical.and_then(|p| p.artifact_location.as_ref());
    let uri = artifact.and_then(|a| non_empty(a.uri.as_ref()));
    let uri_base_id = artifact.and_then(|a| non_empty(a.uri_base_id.as_ref()));
    let line = physical
        .and_then(|p| p.region.as_ref())
        .and_then(|r| r.start_line);
    let asset = uri.or(repository).unwrap_or(driver.name.trim()).to_owned();

    let fingerprint =
        first_value(&result.fingerprints).or_else(|| first_value(&result.partial_fingerprints));
    let identifier = match (fingerprint, rule_id) {
        (Some((_, value)), _) => Some(value.to_owned()),
        (None, Some(id)) => Some(match line {
            Some(l) => format!("{id}@{asset}:{l}"),
            None => format!("{id}@{asset}"),
        }),
        (None, None) => None,
    };

    let skip = |reason: String, sink: &mut dyn Sink| {
        sink.skipped(Skipped {
            place: place.to_owned(),
            detector: Some(detector.to_owned()),
            identifier: identifier.clone(),
            asset: Some(asset.clone()),
            reason,
            fixed: false,
        });
    };

    if let Some(kind) = non_empty(result.kind.as_ref()) {
        if kind != "fail" {
            skip(format!("kind_{kind}"), sink);
            return;
        }
    }
    if result
        .suppressions
        .iter()
        .any(|s| s.status.as_deref().map(str::trim) != Some("rejected"))
    {
        skip("suppressed".to_owned(), sink);
        return;
    }
    let Some(identifier) = identifier.clone() else {
        sink.unmapped(Unmapped {
            place: place.to_owned(),
            element: "result".to_owned(),
            reason: "a result without a rule id and without a fingerprint".to_owned(),
        });
        return;
    };

    let level = non_empty(result.level.as_ref())
        .or_else(|| {
            rule.and_then(|r| r.default_configuration.as_ref())
                .and_then(|c| non_empty(c.level.as_ref()))
        })
        .unwrap_or("warning");
    let severity = match level {
        "error" => Severity::SarifError,
        "warning" => Severity::SarifWarning,
        "note" => Severity::SarifNote,
        "none" => Severity::Info,
        other => {
            sink.unmapped(Unmapped {
                place: place.to_owned(),
                element: "result".to_owned(),
                reason: format!("level `{other}` is not a SARIF level"),
            });
            return;
        }
    };
    if severity == Severity::Info && !options.include_informational {
        skip("informational".to_owned(), sink);
        return;
    }

    let rule_name = rule.and_then(|r| non_empty(r.name.as_ref()));
    let short = rule
        .and_then(|r| r.short_description.as_ref())
        .and_then(|m| non_empty(m.text.as_ref()));
    let full = rule
        .and_then(|r| r.full_description.as_ref())
        .and_then(|m| non_empty(m.text.as_ref()));
    let help = rule
        .and_then(|r| r.help.as_ref())
        .and_then(|m| non_empty(m.text.as_ref()));
    let message = non_empty(result.message.text.as_ref());
    let properties = rule.and_then(|r| r.properties.as_ref());
    let tags: &[String] = properties.map(|p| p.tags.as_slice()).unwrap_or_default();

    let title = short
        .or(rule_name)
        .or(rule_id)
        .unwrap_or(identifier.as_str())
        .to_owned();
    let description = match (message, full) {
        (Some(m), Some(f)) => format!("{m}\n\n{f}"),
        (Some(m), None) => m.to_owned(),
        (None, Some(f)) => f.to_owned(),
        (None, None) => title.clone(),
    };

    let mut cves: Vec<String> = Vec::new();
    let texts = rule_id
        .into_iter()
        .chain(rule_name)
        .chain(tags.iter().map(String::as_str))
        .chain(message);
    for text in texts {
        for cve in cves_in(text) {
            if !cves.contains(&cve) {
                cves.push(cve);
            }
        }
    }

    let mut details = BTreeMap::new();
    if let Some(id) = rule_id {
        details.insert("rule_id".to_owned(), id.to_owned());
    }
    details.insert("level".to_owned(), level.to_owned());
    if let Some(uri) = uri {
        let location = match line {
            Some(l) => format!("{uri}:{l}"),
            None => uri.to_owned(),
        };
        details.insert("location".to_owned(), location);
    }
    if let Some(base) = uri_base_id {
        details.insert("uri_base_id".to_owned(), base.to_owned());
    }
    if let Some((kind, _)) = fingerprint {
        details.insert("fingerprint_kind".to_owned(), kind.to_owned());
    }
    if let Some(s) = properties.and_then(|p| p.security_severity.as_ref()) {
        let s = match s {
            serde_json::Value::String(s) => s.trim().to_owned(),
            other => other.to_string(),
        };
        if !s.is_empty() {
            details.insert("security_severity".to_owned(), s);
        }
    }
    if let Some(b) = non_empty(result.baseline_state.as_ref()) {
        details.insert("baseline_state".to_owned(), b.to_owned());
    }
    if !tags.is_empty() {
        details.insert("tags".to_owned(), tags.join(", "));
    }
    if let Some(name) = rule_name {
        details.insert("rule_name".to_owned(), name.to_owned());
    }

    sink.finding(Finding {
        detector: detector.to_owned(),
        identifier,
        asset,
        host: host.to_owned(),
        title,
        description,
        severity: Some(severity),
        cves,
        solution: help.map(str::to_owned),
        details,
        place: place.to_owned(),
        ..Finding::default()
    });
}

/// The first non-empty value in key order, with its key.
fn first_value(map: &BTreeMap<String, String>) -> Option<(&str, &str)> {
    map.iter()
        .map(|(k, v)| (k.as_str(), v.trim()))
        .find(|(_, v)| !v.is_empty())
}

/// The CVE ids in free text (`CVE-2021-44228`, any case), normalised.
pub(crate) fn cves_in(text: &str) -> Vec<String> {
    let upper = text.to_ascii_uppercase();
    let bytes = upper.as_bytes();
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(at) = upper[from..].find("CVE-") {
        let start = from + at;
        let mut end = start + 4;
        while end < bytes.len() && (bytes[end].is_ascii_digit() || bytes[end] == b'-') {
            end += 1;
        }
        let preceded_by_word = start > 0 && bytes[start - 1].is_ascii_alphanumeric();
        if !preceded_by_word {
            let candidate = upper[start..end].trim_end_matches('-');
            if let Some(cve) = normalize_cve(candidate) {
                found.push(cve);
            }
        }
        from = end.max(start + 4);
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::Collected;

    const TWO_RUNS: &str = include_str!("testdata/sarif_two_runs.sarif.json");

    fn read_str(text: &str, options: &Options) -> Result<Collected, ParseError> {
        let mut sink = Collected::default();
        read(text.as_bytes(), options, &mut sink)?;
        Ok(sink)
    }

    #[test]
    fn reads_a_codeql_run_and_a_trivy_run() -> Result<(), ParseError> {
        let c = read_str(TWO_RUNS, &Options::default())?;
        assert_eq!(
            c.hosts,
            vec![
                "https://github.com/example/webapp".to_owned(),
                "trivy/image/registry.example.com/webapp:1.4.2".to_owned()
            ]
        );
        assert_eq!(c.scanner.as_deref(), Some("Trivy 0.58.1"));

        // Run 0: 5 results. 0 finding, 1 suppressed, 2 kind pass, 3 finding (note via rule
        // default), 4 level none (informational).
        // Run 1: 4 results. 0, 1 findings, 2 suppression rejected → finding, 3 no rule id, no
        // fingerprint → unmapped.
        let places: Vec<&str> = c.findings.iter().map(|f| f.place.as_str()).collect();
        assert_eq!(
            places,
            vec![
                "/runs/0/results/0",
                "/runs/0/results/3",
                "/runs/1/results/0",
                "/runs/1/results/1",
                "/runs/1/results/2",
            ]
        );
        let skipped: Vec<(&str, &str)> = c
            .skipped
            .iter()
            .map(|s| (s.place.as_str(), s.reason.as_str()))
            .collect();
        assert_eq!(
            skipped,
            vec![
                ("/runs/0/results/1", "suppressed"),
                ("/runs/0/results/2", "kind_pass"),
                ("/runs/0/results/4", "informational"),
            ]
        );
        assert_eq!(c.unmapped.len(), 1);
        assert_eq!(c.unmapped[0].place, "/runs/1/results/3");
        assert_eq!(c.findings.len() + c.skipped.len() + c.unmapped.len(), 9);

        let f = &c.findings[0];
        assert_eq!(f.detector, "sarif:codeql");
        assert_eq!(f.identifier, "5f8a3d2c9e1b7a60");
        assert_eq!(f.asset, "src/db/query.js");
        assert_eq!(f.host, "https://github.com/example/webapp");
        assert_eq!(f.title, "Database query built from user-controlled sources");
        assert!(f.description.starts_with("This query depends on a "));
        assert!(f.description.contains("\n\nBuilding a database query"));
        assert_eq!(f.severity, Some(Severity::SarifError));
        assert!(f.cves.is_empty());
        assert_eq!(
            f.details.get("rule_id").map(String::as_str),
            Some("js/sql-injection")
        );
        assert_eq!(f.details.get("level").map(String::as_str), Some("error"));
        assert_eq!(
            f.details.get("location").map(String::as_str),
            Some("src/db/query.js:42")
        );
        assert_eq!(
            f.details.get("fingerprint_kind").map(String::as_str),
            Some("matchBasedId/v1")
        );
        assert_eq!(
            f.details.get("security_severity").map(String::as_str),
            Some("8.8")
        );
        assert_eq!(
            f.details.get("baseline_state").map(String::as_str),
            Some("new")
        );
        assert_eq!(
            f.details.get("uri_base_id").map(String::as_str),
            Some("%SRCROOT%")
        );
        assert!(f
            .details
            .get("tags")
            .is_some_and(|t| t.contains("external/cwe/cwe-089")));
        assert!(f
            .solution
            .as_deref()
            .is_some_and(|s| s.contains("parameters")));
        assert_eq!(c.skipped[0].identifier.as_deref(), Some("0bd1c7e5a2f94d33"));

        // No result level, rule default `note`; by ruleIndex.
        let note = &c.findings[1];
        assert_eq!(note.severity, Some(Severity::SarifNote));
        assert_eq!(note.title, "Unused variable, import, function or class");

        let trivy = &c.findings[2];
        assert_eq!(trivy.detector, "sarif:trivy");
        assert_eq!(trivy.identifier, "c0ffee1234567890");
        assert_eq!(
            trivy.details.get("fingerprint_kind").map(String::as_str),
            Some("primaryLocationLineHash")
        );
        assert_eq!(trivy.cves, vec!["CVE-2023-44487".to_owned()]);
        assert_eq!(trivy.asset, "usr/lib/libnghttp2.so.14");
        assert_eq!(trivy.host, "trivy/image/registry.example.com/webapp:1.4.2");
        assert_eq!(trivy.severity, Some(Severity::SarifError));
        // The CVE ids from the rule id, the message and the tags, without repeats.
        let second = &c.findings[3];
        assert_eq!(
            second.cves,
            vec!["CVE-2024-45337".to_owned(), "CVE-2024-45338".to_owned()]
        );
        // No fingerprint: rule id at location.
        let rejected = &c.findings[4];
        assert_eq!(rejected.identifier, "CVE-2022-40897@app/requirements.txt:3");
        assert_eq!(rejected.severity, Some(Severity::SarifWarning));
        assert!(!rejected.details.contains_key("fingerprint_kind"));
        Ok(())
    }

    #[test]
    fn keeps_informational_when_asked() -> Result<(), ParseError> {
        let options = Options {
            include_informational: true,
            ..Options::default()
        };
        let c = read_str(TWO_RUNS, &options)?;
        assert_eq!(c.findings.len(), 6);
        assert!(c
            .findings
            .iter()
            .any(|f| f.place == "/runs/0/results/4" && f.severity == Some(Severity::Info)));
        Ok(())
    }

    #[test]
    fn refuses_another_version() {
        let text = r#"{"version": "2.0.0", "runs": []}"#;
        let err = read_str(text, &Options::default());
        assert!(matches!(err, Err(ParseError { ref place, .. }) if place == "/version"));
        let text = r#"{"runs": []}"#;
        let err = read_str(text, &Options::default());
        assert!(matches!(err, Err(ParseError { ref place, .. }) if place == "/version"));
        let text = r#"{"version": "2.1.0"}"#;
        let err = read_str(text, &Options::default());
        assert!(matches!(err, Err(ParseError { ref place, .. }) if place == "/runs"));
    }

    #[test]
    fn names_the_place_of_truncated_or_malformed_json() {
        let cut = &TWO_RUNS[..TWO_RUNS.len() / 2];
        let Err(err) = read_str(cut, &Options::default()) else {
            panic!("a truncated log is read");
        };
        assert!(err.place.starts_with("line "), "{err}");
        assert!(err.place.contains(", column "), "{err}");
        assert!(err.message.contains("truncated"), "{err}");

        let text = "{\n  \"version\": \"2.1.0\",\n  \"runs\": [ { \"tool\": } ]\n}";
        let Err(err) = read_str(text, &Options::default()) else {
            panic!("malformed JSON is read");
        };
        assert_eq!(err.place, "line 3, column 23");
    }

    #[test]
    fn a_run_without_results_still_names_its_scope() -> Result<(), ParseError> {
        let text = r#"{"version":"2.1.0","runs":[{"tool":{"driver":{"name":"Semgrep"}},
            "automationDetails":{"id":"nightly/2026-11-03"},"results":[]}]}"#;
        let c = read_str(text, &Options::default())?;
        assert_eq!(c.hosts, vec!["nightly/2026-11-03".to_owned()]);
        assert_eq!(c.scanner.as_deref(), Some("Semgrep"));
        assert!(c.findings.is_empty());
        Ok(())
    }

    #[test]
    fn finds_cve_ids_in_text() {
        assert_eq!(
            cves_in("GHSA-x; cve-2021-44228 and CVE-2021-45046, xCVE-2020-1111, CVE-20-1"),
            vec!["CVE-2021-44228".to_owned(), "CVE-2021-45046".to_owned()]
        );
    }
}
