//! CSV files of scanners without a standard format (Tenable.sc, Qualys), read through a column
//! mapping the request supplies or the system saved.

use super::{Finding, Options, ParseError, Severity, Sink, Skipped, Unmapped};
use crate::controls::{normalize_control, normalize_cve};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// Which column holds what. Column names match the header row case-insensitively, surrounding
/// spaces ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = CsvMapping)]
pub struct Mapping {
    /// The detector of the findings' key (`Tenable.sc`, `Qualys`).
    pub scanner: String,
    /// The column of the finding's stable id (plugin id, QID).
    pub identifier: String,
    /// The column of the asset (host name or IP).
    pub asset: String,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub severity: Option<String>,
    /// The severity column's values (case-insensitive) to severities; values not listed are
    /// unmapped rows.
    #[serde(default)]
    pub severity_values: BTreeMap<String, Severity>,
    /// CVE ids, separated by commas, semicolons or white space.
    #[serde(default)]
    pub cves: Option<String>,
    /// NIST SP 800-53 controls, separated likewise.
    #[serde(default)]
    pub controls: Option<String>,
    #[serde(default)]
    pub solution: Option<String>,
    /// A date (`YYYY-MM-DD`, `MM/DD/YYYY`, or RFC 3339) of when the finding was seen.
    #[serde(default)]
    pub seen_on: Option<String>,
    /// The host column for the scan's scope, when it is not the asset column.
    #[serde(default)]
    pub host: Option<String>,
}

/// The names of the built-in mappings ([`preset`]).
pub const PRESETS: [&str; 2] = ["tenable_sc", "qualys"];

/// A detail cell is clipped to this many characters.
const DETAIL_MAX_CHARS: usize = 4_000;

/// A built-in mapping by name (see [`PRESETS`]).
///
/// * `tenable_sc`: Tenable.sc (Security Center) "Vulnerability Detail List" CSV export,
///   columns `Plugin`, `Plugin Name`, `Severity` (`Info`, `Low`, `Medium`, `High`, `Critical`:
///   Nessus 0–4), `IP Address` (asset and host), `DNS Name` (kept in details), `CVE`,
///   `Solution`, `Synopsis` (kept in details), `Description`, `Last Observed`
///   (`Nov 3, 2026 10:12:01 UTC`). These column names follow the export as commonly seen; they
///   could not be confirmed against Tenable's own documentation (none was found), so a site
///   whose export differs supplies its own mapping.
/// * `qualys`: Qualys VM scan report CSV, columns `IP` (asset and host), `DNS`, `QID`,
///   `Title`, `Severity` (1–5: 5 Critical, 4 High, 3 Moderate, 2 Low, 1 informational),
///   `CVE ID`, `Threat` (description), `Solution`, `Last Detected`. `IP`, `DNS`, `QID`,
///   `CVE ID`, `Threat` and `Solution` are the names Qualys's help and third-party guides give;
///   `Last Detected` is not confirmed. A Qualys report starts with a few lines of report
///   metadata before the header row: the header row must be the file's first line.
pub fn preset(name: &str) -> Option<Mapping> {
    let text = |s: &str| Some(s.to_owned());
    match name {
        "tenable_sc" => Some(Mapping {
            scanner: "Tenable.sc".to_owned(),
            identifier: "Plugin".to_owned(),
            asset: "IP Address".to_owned(),
            title: text("Plugin Name"),
            description: text("Description"),
            severity: text("Severity"),
            severity_values: BTreeMap::from([
                ("info".to_owned(), Severity::Info),
                ("low".to_owned(), Severity::NessusLow),
                ("medium".to_owned(), Severity::NessusMedium),
                ("high".to_owned(), Severity::NessusHigh),
                ("critical".to_owned(), Severity::NessusCritical),
            ]),
            cves: text("CVE"),
            controls: None,
            solution: text("Solution"),
            seen_on: text("Last Observed"),
            host: text("IP Address"),
        }),
        "qualys" => Some(Mapping {
            scanner: "Qualys".to_owned(),
            identifier: "QID".to_owned(),
            asset: "IP".to_owned(),
            title: text("Title"),
            description: text("Threat"),
            severity: text("Severity"),
            severity_values: BTreeMap::from([
                ("1".to_owned(), Severity::Info),
                ("2".to_owned(), Severity::Low),
                ("3".to_owned(), Severity::Moderate),
                ("4".to_owned(), Severity::High),
                ("5".to_owned(), Severity::Critical),
            ]),
            cves: text("CVE ID"),
            controls: None,
            solution: text("Solution"),
            seen_on: text("Last Detected"),
            host: text("IP"),
        }),
        _ => None,
    }
}

/// The header positions of the mapping's columns.
struct Columns {
    identifier: usize,
    asset: usize,
    title: Option<usize>,
    description: Option<usize>,
    severity: Option<usize>,
    cves: Option<usize>,
    controls: Option<usize>,
    solution: Option<usize>,
    seen_on: Option<usize>,
    host: Option<usize>,
}

impl Columns {
    fn used(&self) -> Vec<usize> {
        [
            Some(self.identifier),
            Some(self.asset),
            self.title,
            self.description,
            self.severity,
            self.cves,
            self.controls,
            self.solution,
            self.seen_on,
            self.host,
        ]
        .into_iter()
        .flatten()
        .collect()
    }
}

fn header_name(raw: &str) -> String {
    raw.trim_start_matches('\u{feff}').trim().to_owned()
}

fn find_columns(headers: &[String], mapping: &Mapping) -> Result<Columns, ParseError> {
    let mut missing = Vec::new();
    let mut find = |name: &str| -> Option<usize> {
        let want = name.trim();
        let at = headers.iter().position(|h| h.eq_ignore_ascii_case(want));
        if at.is_none() {
            missing.push(format!("`{want}`"));
        }
        at
    };
    let identifier = find(&mapping.identifier);
    let asset = find(&mapping.asset);
    let mut optional = |name: &Option<String>| name.as_deref().and_then(&mut find);
    let title = optional(&mapping.title);
    let description = optional(&mapping.description);
    let severity = optional(&mapping.severity);
    let cves = optional(&mapping.cves);
    let controls = optional(&mapping.controls);
    let solution = optional(&mapping.solution);
    let seen_on = optional(&mapping.seen_on);
    let host = optional(&mapping.host);
    match (identifier, asset) {
        (Some(identifier), Some(asset)) if missing.is_empty() => Ok(Columns {
            identifier,
            asset,
            title,
            description,
            severity,
            cves,
            controls,
            solution,
            seen_on,
            host,
        }),
        _ => Err(ParseError::new(
            "line 1",
            format!(
                "the header row has no column {} of the mapping",
                missing.join(", ")
            ),
        )),
    }
}

/// A `csv` error as a place and message.
pub(crate) fn csv_error(e: &::csv::Error, what: &str) -> ParseError {
    let place = match e.position() {
        Some(p) => format!("line {}", p.line()),
        None => String::new(),
    };
    let message = match e.kind() {
        ::csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!("this row has {len} fields, the header {expected_len}"),
        ::csv::ErrorKind::Utf8 { err, .. } => format!("field {} is not UTF-8", err.field() + 1),
        ::csv::ErrorKind::Io(io) => format!("cannot read the {what}: {io}"),
        _ => format!("malformed {what}: {e}"),
    };
    ParseError::new(place, message)
}

/// Splits a cell of ids on commas, semicolons and white space.
fn split_ids(cell: &str) -> impl Iterator<Item = &str> {
    cell.split(|c: char| c == ',' || c == ';' || c.is_whitespace())
        .filter(|s| !s.is_empty())
}

fn clip(s: &str) -> String {
    match s.char_indices().nth(DETAIL_MAX_CHARS) {
        Some((at, _)) => s[..at].to_owned(),
        None => s.to_owned(),
    }
}

/// A date as scanners' CSV exports write it: `2026-11-03`, `11/03/2026`, `11/3/2026`, RFC 3339,
/// `2026-11-03 10:12:01`, `11/03/2026 10:12:01`, Tenable's `Nov 3, 2026 10:12:01 UTC`.
pub(crate) fn parse_seen_on(raw: &str) -> Option<chrono::NaiveDate> {
    use chrono::{DateTime, NaiveDate, NaiveDateTime};
    let s = raw.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.date_naive());
    }
    for format in ["%Y-%m-%d", "%m/%d/%Y", "%b %d, %Y", "%B %d, %Y"] {
        if let Ok(d) = NaiveDate::parse_from_str(s, format) {
            return Some(d);
        }
    }
    // A trailing zone name (`UTC`, `EST`) is dropped: the date is the one written.
    let without_zone = match s.rsplit_once(' ') {
        Some((head, zone)) if zone.bytes().all(|b| b.is_ascii_alphabetic()) => head.trim_end(),
        _ => s,
    };
    for format in [
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M:%S",
        "%m/%d/%Y %H:%M:%S",
        "%m/%d/%Y %H:%M",
        "%b %d, %Y %H:%M:%S",
        "%B %d, %Y %H:%M:%S",
        "%m/%d/%Y %I:%M:%S %p",
        "%m/%d/%Y %I:%M %p",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(without_zone, format) {
            return Some(t.date());
        }
    }
    None
}

/// Reads a CSV file through `mapping` into `sink`.
pub fn read<R: std::io::BufRead>(
    input: R,
    mapping: &Mapping,
    options: &Options,
    sink: &mut dyn Sink,
) -> Result<(), ParseError> {
    let mut reader = ::csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .trim(::csv::Trim::All)
        .from_reader(input);
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| csv_error(&e, "CSV file"))?
        .iter()
        .map(header_name)
        .collect();
    let columns = find_columns(&headers, mapping)?;
    let used = columns.used();
    let severity_values: Vec<(String, Severity)> = mapping
        .severity_values
        .iter()
        .map(|(k, v)| (k.trim().to_lowercase(), *v))
        .collect();
    let mut hosts = std::collections::BTreeSet::new();

    let mut record = ::csv::StringRecord::new();
    loop {
        match reader.read_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => return Err(csv_error(&e, "CSV file")),
        }
        let line = record.position().map(|p| p.line()).unwrap_or_default();
        let place = format!("line {line}");
        let cell = |at: usize| record.get(at).map(str::trim).unwrap_or_default();
        let optional = |at: Option<usize>| at.map(cell).filter(|s| !s.is_empty());

        let identifier = cell(columns.identifier);
        let asset = cell(columns.asset);
        let host = optional(columns.host).unwrap_or(asset);
        if !host.is_empty() && !hosts.contains(host) {
            hosts.insert(host.to_owned());
            sink.host(host);
        }
        if identifier.is_empty() {
            sink.unmapped(Unmapped {
                place,
                element: "row".to_owned(),
                reason: "no identifier".to_owned(),
            });
            continue;
        }
        if asset.is_empty() {
            sink.unmapped(Unmapped {
                place,
                element: "row".to_owned(),
                reason: "no asset".to_owned(),
            });
            continue;
        }

        let severity = match columns.severity.map(cell) {
            None => None,
            Some(value) => {
                let key = value.to_lowercase();
                match severity_values.iter().find(|(k, _)| *k == key) {
                    Some((_, s)) => Some(*s),
                    None => {
                        sink.unmapped(Unmapped {
                            place,
                            element: "row".to_owned(),
                            reason: format!("severity `{value}` is not in the mapping"),
                        });
                        continue;
                    }
                }
            }
        };
        if severity == Some(Severity::Info) && !options.include_informational {
            sink.skipped(Skipped {
                place,
                detector: Some(mapping.scanner.clone()),
                identifier: Some(identifier.to_owned()),
                asset: Some(asset.to_owned()),
                reason: "informational".to_owned(),
                fixed: false,
            });
            continue;
        }

        let mut details = BTreeMap::new();
        let mut cves = Vec::new();
        let mut unparsed = Vec::new();
        for raw in optional(columns.cves).map(split_ids).into_iter().flatten() {
            match normalize_cve(raw) {
                Some(c) if !cves.contains(&c) => cves.push(c),
                Some(_) => {}
                None => unparsed.push(raw),
            }
        }
        if !unparsed.is_empty() {
            details.insert("unparsed_cves".to_owned(), clip(&unparsed.join(", ")));
        }
        let mut controls = Vec::new();
        let mut unparsed = Vec::new();
        for raw in optional(columns.controls)
            .map(split_ids)
            .into_iter()
            .flatten()
        {
            match normalize_control(raw) {
                Some(c) if !controls.contains(&c) => controls.push(c),
                Some(_) => {}
                None => unparsed.push(raw),
            }
        }
        if !unparsed.is_empty() {
            details.insert("unparsed_controls".to_owned(), clip(&unparsed.join(", ")));
        }
        let seen_raw = optional(columns.seen_on);
        let seen_on = seen_raw.and_then(parse_seen_on);
        if let (Some(raw), None) = (seen_raw, seen_on) {
            details.insert("seen_on_raw".to_owned(), clip(raw));
        }
        for (at, value) in record.iter().enumerate() {
            let value = value.trim();
            if used.contains(&at) || value.is_empty() {
                continue;
            }
            if let Some(name) = headers.get(at).filter(|h| !h.is_empty()) {
                details.entry(name.clone()).or_insert_with(|| clip(value));
            }
        }

        let title = optional(columns.title)
            .map(str::to_owned)
            .unwrap_or_else(|| format!("{} {identifier}", mapping.scanner));
        let description = optional(columns.description)
            .map(str::to_owned)
            .unwrap_or_else(|| title.clone());
        sink.finding(Finding {
            detector: mapping.scanner.clone(),
            identifier: identifier.to_owned(),
            asset: asset.to_owned(),
            host: host.to_owned(),
            title,
            description,
            severity,
            cves,
            controls,
            solution: optional(columns.solution).map(str::to_owned),
            seen_on,
            details,
            place,
            ..Finding::default()
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::Collected;
    use chrono::NaiveDate;

    const TENABLE_SC: &str = include_str!("testdata/csv_tenable_sc.csv");
    const QUALYS: &str = include_str!("testdata/csv_qualys.csv");

    fn date(y: i32, m: u32, d: u32) -> Option<NaiveDate> {
        NaiveDate::from_ymd_opt(y, m, d)
    }

    fn read_with(
        text: &str,
        mapping: &Mapping,
        options: &Options,
    ) -> Result<Collected, ParseError> {
        let mut sink = Collected::default();
        read(text.as_bytes(), mapping, options, &mut sink)?;
        Ok(sink)
    }

    fn preset_mapping(name: &str) -> Result<Mapping, ParseError> {
        preset(name).ok_or_else(|| ParseError::new("", format!("no preset {name}")))
    }

    fn minimal() -> Mapping {
        Mapping {
            scanner: "Custom".to_owned(),
            identifier: "Id".to_owned(),
            asset: "Asset".to_owned(),
            title: None,
            description: None,
            severity: None,
            severity_values: BTreeMap::new(),
            cves: None,
            controls: None,
            solution: None,
            seen_on: None,
            host: None,
        }
    }

    #[test]
    fn every_preset_is_named() {
        for name in PRESETS {
            assert!(preset(name).is_some(), "{name}");
        }
        assert!(preset("nessus").is_none());
    }

    #[test]
    fn reads_a_tenable_sc_export() -> Result<(), ParseError> {
        let c = read_with(
            TENABLE_SC,
            &preset_mapping("tenable_sc")?,
            &Options::default(),
        )?;
        assert_eq!(
            c.hosts,
            vec!["10.0.1.15", "10.0.1.22", "10.0.2.7", "10.0.2.9"]
        );
        let places: Vec<&str> = c.findings.iter().map(|f| f.place.as_str()).collect();
        assert_eq!(places, vec!["line 2", "line 6", "line 7", "line 8"]);
        assert_eq!(c.skipped.len(), 1);
        assert_eq!(c.skipped[0].place, "line 5");
        assert_eq!(c.skipped[0].reason, "informational");
        assert_eq!(c.skipped[0].identifier.as_deref(), Some("19506"));
        let unmapped: Vec<(&str, &str)> = c
            .unmapped
            .iter()
            .map(|u| (u.place.as_str(), u.reason.as_str()))
            .collect();
        assert_eq!(
            unmapped,
            vec![
                ("line 9", "severity `Moderate` is not in the mapping"),
                ("line 10", "no identifier"),
            ]
        );
        // Seven data rows, every one accounted for.
        assert_eq!(c.findings.len() + c.skipped.len() + c.unmapped.len(), 7);

        let log4j = &c.findings[0];
        assert_eq!(log4j.detector, "Tenable.sc");
        assert_eq!(log4j.identifier, "156032");
        assert_eq!(log4j.asset, "10.0.1.15");
        assert_eq!(log4j.host, "10.0.1.15");
        assert!(log4j.title.starts_with("Apache Log4Shell RCE"));
        assert!(log4j.description.starts_with("The version of Apache Log4j"));
        assert_eq!(log4j.severity, Some(Severity::NessusCritical));
        assert_eq!(log4j.cves, vec!["CVE-2021-44228", "CVE-2021-45046"]);
        assert_eq!(
            log4j.solution.as_deref(),
            Some("Upgrade to Apache Log4j version 2.16.0 or later.")
        );
        assert_eq!(log4j.seen_on, date(2026, 11, 3));
        assert_eq!(
            log4j.details.get("DNS Name").map(String::as_str),
            Some("app01.corp.example.mil")
        );
        assert!(log4j
            .details
            .get("Plugin Text")
            .is_some_and(|t| t.contains("\nGET /?x=")));
        assert!(log4j.details.contains_key("Synopsis"));
        assert!(log4j.details.contains_key("First Discovered"));
        for used in [
            "Plugin",
            "Plugin Name",
            "Severity",
            "IP Address",
            "CVE",
            "Solution",
        ] {
            assert!(!log4j.details.contains_key(used), "{used}");
        }

        let ssh = &c.findings[1];
        assert_eq!(ssh.severity, Some(Severity::NessusHigh));
        assert_eq!(ssh.cves, vec!["CVE-2023-48795", "CVE-2023-51384"]);
        assert_eq!(
            ssh.details.get("unparsed_cves").map(String::as_str),
            Some("CVE-2023-XXXX")
        );
        assert_eq!(ssh.seen_on, date(2026, 11, 2));

        let cert = &c.findings[2];
        assert_eq!(cert.severity, Some(Severity::NessusMedium));
        assert!(cert.cves.is_empty());
        assert_eq!(cert.seen_on, None);
        assert_eq!(
            cert.details.get("seen_on_raw").map(String::as_str),
            Some("last week")
        );

        let icmp = &c.findings[3];
        assert_eq!(icmp.severity, Some(Severity::NessusLow));
        assert_eq!(icmp.cves, vec!["CVE-1999-0524"]);
        assert_eq!(icmp.seen_on, date(2026, 10, 31));
        assert!(!icmp.details.contains_key("DNS Name"));
        Ok(())
    }

    #[test]
    fn reads_a_qualys_export_with_a_byte_order_mark() -> Result<(), ParseError> {
        assert!(QUALYS.starts_with('\u{feff}'));
        let mapping = preset_mapping("qualys")?;
        let c = read_with(QUALYS, &mapping, &Options::default())?;
        assert_eq!(
            c.hosts,
            vec!["192.168.10.21", "192.168.10.35", "192.168.10.40"]
        );
        let got: Vec<(&str, &str, Option<Severity>, Option<NaiveDate>)> = c
            .findings
            .iter()
            .map(|f| {
                (
                    f.place.as_str(),
                    f.identifier.as_str(),
                    f.severity,
                    f.seen_on,
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    "line 2",
                    "91855",
                    Some(Severity::Critical),
                    date(2026, 11, 3)
                ),
                ("line 3", "38794", Some(Severity::High), date(2026, 11, 3)),
                (
                    "line 4",
                    "38909",
                    Some(Severity::Moderate),
                    date(2026, 11, 2)
                ),
                ("line 6", "11827", Some(Severity::Low), date(2026, 11, 1)),
            ]
        );
        assert_eq!(c.skipped.len(), 1);
        assert_eq!(c.skipped[0].place, "line 5");
        assert!(c.unmapped.is_empty());
        let patch = &c.findings[0];
        assert_eq!(patch.detector, "Qualys");
        assert_eq!(patch.cves, vec!["CVE-2026-21001", "CVE-2026-21044"]);
        assert_eq!(
            patch.title,
            "Microsoft Windows Security Update for November 2026"
        );
        assert!(patch.description.starts_with("Microsoft releases"));
        assert_eq!(
            patch.details.get("DNS").map(String::as_str),
            Some("web21.example.org")
        );
        assert_eq!(
            patch.details.get("Vendor Reference").map(String::as_str),
            Some("KB5049981")
        );

        let with_info = read_with(
            QUALYS,
            &mapping,
            &Options {
                include_informational: true,
                ..Options::default()
            },
        )?;
        assert_eq!(with_info.findings.len(), 5);
        assert_eq!(with_info.findings[3].severity, Some(Severity::Info));
        Ok(())
    }

    #[test]
    fn a_custom_mapping_with_controls_and_fallbacks() -> Result<(), ParseError> {
        let mut mapping = minimal();
        mapping.controls = Some(" controls ".to_owned());
        mapping.host = Some("SYSTEM".to_owned());
        mapping.seen_on = Some("seen".to_owned());
        let long = "x".repeat(5_000);
        let text = format!(
            "ID , asset,Controls,System,Seen,Notes\n\
             A-1,srv1,\"ac-2(1); SI-4 ; bogus\",enclave-a,2026-11-03,{long}\n\
             A-2,srv2,,,03/11/2026,\n\
             A-3,,,,,\n"
        );
        let c = read_with(&text, &mapping, &Options::default())?;
        assert_eq!(c.hosts, vec!["enclave-a", "srv2"]);
        assert_eq!(c.findings.len(), 2);
        assert_eq!(c.unmapped.len(), 1);
        assert_eq!(c.unmapped[0].reason, "no asset");
        assert_eq!(c.unmapped[0].place, "line 4");
        let f = &c.findings[0];
        assert_eq!(f.controls, vec!["AC-2(1)", "SI-4"]);
        assert_eq!(
            f.details.get("unparsed_controls").map(String::as_str),
            Some("bogus")
        );
        assert_eq!(f.host, "enclave-a");
        assert_eq!(f.asset, "srv1");
        assert_eq!(f.title, "Custom A-1");
        assert_eq!(f.description, "Custom A-1");
        assert_eq!(f.severity, None);
        assert_eq!(f.seen_on, date(2026, 11, 3));
        assert_eq!(
            f.details.get("Notes").map(|n| n.chars().count()),
            Some(4_000)
        );
        let g = &c.findings[1];
        assert_eq!(g.host, "srv2");
        assert_eq!(g.seen_on, date(2026, 3, 11));
        assert!(g.details.is_empty());
        Ok(())
    }

    #[test]
    fn a_missing_column_is_named_on_line_1() {
        let mut mapping = minimal();
        mapping.severity = Some("Risk".to_owned());
        let err = read_with("Id,Asset\n1,a\n", &mapping, &Options::default());
        let Err(err) = err else {
            panic!("a mapping column is missing");
        };
        assert_eq!(err.place, "line 1");
        assert!(err.message.contains("`Risk`"), "{err}");
        let err = read_with("", &minimal(), &Options::default());
        assert!(matches!(err, Err(ParseError { ref place, .. }) if place == "line 1"));
    }

    #[test]
    fn a_ragged_or_broken_row_is_an_error_naming_its_line() {
        let text = "Id,Asset\n1,a\n2,b,extra\n3,c\n";
        let Err(err) = read_with(text, &minimal(), &Options::default()) else {
            panic!("a ragged row is read");
        };
        assert_eq!(err.place, "line 3");
        assert!(err.message.contains("3 fields"), "{err}");

        let mut bytes = b"Id,Asset\n1,a\n2,".to_vec();
        bytes.extend_from_slice(&[0xff, 0xfe]);
        bytes.push(b'\n');
        let mut sink = Collected::default();
        let Err(err) = read(bytes.as_slice(), &minimal(), &Options::default(), &mut sink) else {
            panic!("invalid UTF-8 is read");
        };
        assert_eq!(err.place, "line 3");

        // A quoted field cut off at the end of the file.
        let cut = &TENABLE_SC[..TENABLE_SC.find("Plugin Output:").unwrap_or_default() + 20];
        let err = read_with(
            cut,
            &preset_mapping("tenable_sc").unwrap_or_else(|_| minimal()),
            &Options::default(),
        );
        assert!(matches!(err, Err(ParseError { ref place, .. }) if place.starts_with("line ")));
    }

    #[test]
    fn reads_the_dates_scanners_write() {
        for (raw, want) in [
            ("2026-11-03", date(2026, 11, 3)),
            ("11/03/2026", date(2026, 11, 3)),
            ("1/2/2026", date(2026, 1, 2)),
            ("2026-11-03T23:30:00-05:00", date(2026, 11, 3)),
            ("2026-11-03T10:12:01.123Z", date(2026, 11, 3)),
            ("Nov 3, 2026 10:12:01 UTC", date(2026, 11, 3)),
            ("Nov 13, 2026 10:12:01 EST", date(2026, 11, 13)),
            ("Nov 3, 2026", date(2026, 11, 3)),
            ("11/03/2026 09:14:22", date(2026, 11, 3)),
            ("2026-11-03 09:14:22", date(2026, 11, 3)),
            ("yesterday", None),
            ("13/45/2026", None),
        ] {
            assert_eq!(parse_seen_on(raw), want, "{raw}");
        }
    }
}
