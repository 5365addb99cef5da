//! Threat and control catalogs an operator loads (offline sites load the files they downloaded
//! elsewhere): CISA's Known Exploited Vulnerabilities (JSON), FIRST's EPSS scores (CSV, plain or
//! gzip), DISA's CCI list (`U_CCI_List.xml`).

use super::csv::csv_error;
use super::ParseError;
use crate::controls::{normalize_control, normalize_cve};
use chrono::NaiveDate;
use quick_xml::events::Event;
use serde_json::{Map, Value};
use std::io::{BufRead, BufReader, Read};

/// CISA's KEV catalog, checked against its published JSON Schema's requirements.
#[derive(Debug, Clone, PartialEq)]
pub struct KevCatalog {
    /// `catalogVersion` (`2025.08.25`).
    pub version: String,
    /// `dateReleased`, as the file has it (RFC 3339).
    pub released: String,
    pub entries: Vec<KevEntry>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct KevEntry {
    pub cve: String,
    pub vendor_project: String,
    pub product: String,
    pub name: String,
    pub date_added: NaiveDate,
    pub due_date: NaiveDate,
    /// `knownRansomwareCampaignUse` is `Known`.
    pub ransomware: bool,
    /// `forensicTriage` (BOD 26-04) when present: `Yes` is true.
    pub forensic_triage: Option<bool>,
    pub required_action: String,
}

/// Reads and checks a KEV JSON document; every violation of the schema is listed with its
/// JSON pointer.
pub fn read_kev(bytes: &[u8]) -> Result<KevCatalog, Vec<ParseError>> {
    let doc: Value = serde_json::from_slice(bytes).map_err(|e| vec![json_error(&e)])?;
    let Value::Object(top) = &doc else {
        return Err(vec![ParseError::new(
            "",
            format!("a KEV catalog is a JSON object, not {}", type_name(&doc)),
        )]);
    };
    let mut errors = Errors::default();
    let version = string_member(top, "", "catalogVersion", true, &mut errors);
    let released = string_member(top, "", "dateReleased", true, &mut errors);
    if let Some(r) = &released {
        if chrono::DateTime::parse_from_rfc3339(r).is_err() {
            errors.push(
                "/dateReleased",
                format!("`{r}` is not an RFC 3339 date-time"),
            );
        }
    }
    match top.get("count") {
        None => errors.push("/count", "the required member is missing"),
        Some(v) if is_integer(v) => {}
        Some(v) => errors.push(
            "/count",
            format!("must be an integer, not {}", type_name(v)),
        ),
    }
    let mut entries = Vec::new();
    match top.get("vulnerabilities") {
        None => errors.push("/vulnerabilities", "the required member is missing"),
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                if let Some(entry) = read_kev_entry(i, item, &mut errors) {
                    entries.push(entry);
                }
            }
        }
        Some(v) => errors.push(
            "/vulnerabilities",
            format!("must be an array, not {}", type_name(v)),
        ),
    }
    match (version, released) {
        (Some(version), Some(released)) if errors.0.is_empty() => Ok(KevCatalog {
            version,
            released,
            entries,
        }),
        _ => Err(errors.0),
    }
}

/// At most this many schema violations are listed.
const MAX_ERRORS: usize = 100;

#[derive(Default)]
struct Errors(Vec<ParseError>);

impl Errors {
    fn push(&mut self, place: impl Into<String>, message: impl Into<String>) {
        if self.0.len() < MAX_ERRORS {
            self.0.push(ParseError::new(place, message));
        }
    }
}

fn json_error(e: &serde_json::Error) -> ParseError {
    let what = if e.is_eof() { "truncated" } else { "malformed" };
    ParseError::new(
        format!("line {}, column {}", e.line(), e.column()),
        format!("{what} JSON: {e}"),
    )
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// JSON Schema's `integer`: a number without a fractional part (`3` or `3.0`).
fn is_integer(v: &Value) -> bool {
    match v {
        Value::Number(n) => {
            n.is_i64()
                || n.is_u64()
                || n.as_f64()
                    .is_some_and(|f| f.is_finite() && f.fract() == 0.0)
        }
        _ => false,
    }
}

fn string_member(
    object: &Map<String, Value>,
    base: &str,
    key: &str,
    required: bool,
    errors: &mut Errors,
) -> Option<String> {
    match object.get(key) {
        None => {
            if required {
                errors.push(format!("{base}/{key}"), "the required member is missing");
            }
            None
        }
        Some(Value::String(s)) => Some(s.clone()),
        Some(v) => {
            errors.push(
                format!("{base}/{key}"),
                format!("must be a string, not {}", type_name(v)),
            );
            None
        }
    }
}

/// `^CVE-[0-9]{4}-[0-9]{4,19}$`, exactly (upper case).
fn is_kev_cve(s: &str) -> bool {
    let Some(rest) = s.strip_prefix("CVE-") else {
        return false;
    };
    let Some((year, seq)) = rest.split_once('-') else {
        return false;
    };
    year.len() == 4
        && year.bytes().all(|b| b.is_ascii_digit())
        && (4..=19).contains(&seq.len())
        && seq.bytes().all(|b| b.is_ascii_digit())
}

/// `^CWE-([0-9])+$`.
fn is_cwe(s: &str) -> bool {
    s.strip_prefix("CWE-")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// An RFC 3339 `full-date`: `YYYY-MM-DD`, a real day.
fn full_date(s: &str) -> Option<NaiveDate> {
    let b = s.as_bytes();
    let shape = b.len() == 10
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            _ => c.is_ascii_digit(),
        });
    if !shape {
        return None;
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()
}

fn read_kev_entry(i: usize, item: &Value, errors: &mut Errors) -> Option<KevEntry> {
    let base = format!("/vulnerabilities/{i}");
    let Value::Object(v) = item else {
        errors.push(base, format!("must be an object, not {}", type_name(item)));
        return None;
    };
    let before = errors.0.len();
    let cve = string_member(v, &base, "cveID", true, errors);
    if let Some(c) = &cve {
        if !is_kev_cve(c) {
            errors.push(
                format!("{base}/cveID"),
                format!("`{c}` does not match ^CVE-[0-9]{{4}}-[0-9]{{4,19}}$"),
            );
        }
    }
    let vendor_project = string_member(v, &base, "vendorProject", true, errors);
    let product = string_member(v, &base, "product", true, errors);
    let name = string_member(v, &base, "vulnerabilityName", true, errors);
    let date = |key: &str, errors: &mut Errors| -> Option<NaiveDate> {
        let raw = string_member(v, &base, key, true, errors)?;
        let parsed = full_date(&raw);
        if parsed.is_none() {
            errors.push(
                format!("{base}/{key}"),
                format!("`{raw}` is not a date (YYYY-MM-DD)"),
            );
        }
        parsed
    };
    let date_added = date("dateAdded", errors);
    let _short_description = string_member(v, &base, "shortDescription", true, errors);
    let required_action = string_member(v, &base, "requiredAction", true, errors);
    let due_date = date("dueDate", errors);
    let ransomware = string_member(v, &base, "knownRansomwareCampaignUse", false, errors);
    let triage = string_member(v, &base, "forensicTriage", false, errors);
    let _notes = string_member(v, &base, "notes", false, errors);
    match v.get("cwes") {
        None => {}
        Some(Value::Array(cwes)) => {
            for (j, cwe) in cwes.iter().enumerate() {
                match cwe {
                    Value::String(s) if is_cwe(s) => {}
                    Value::String(s) => errors.push(
                        format!("{base}/cwes/{j}"),
                        format!("`{s}` does not match ^CWE-([0-9])+$"),
                    ),
                    other => errors.push(
                        format!("{base}/cwes/{j}"),
                        format!("must be a string, not {}", type_name(other)),
                    ),
                }
            }
        }
        Some(other) => errors.push(
            format!("{base}/cwes"),
            format!("must be an array, not {}", type_name(other)),
        ),
    }
    if errors.0.len() != before {
        return None;
    }
    let forensic_triage = match triage.as_deref().map(str::trim) {
        Some(t) if t.eq_ignore_ascii_case("yes") => Some(true),
        Some(t) if t.eq_ignore_ascii_case("no") => Some(false),
        _ => None,
    };
    Some(KevEntry {
        cve: cve?,
        vendor_project: vendor_project?.trim().to_owned(),
        product: product?.trim().to_owned(),
        name: name?.trim().to_owned(),
        date_added: date_added?,
        due_date: due_date?,
        ransomware: ransomware.is_some_and(|r| r.trim().eq_ignore_ascii_case("known")),
        forensic_triage,
        required_action: required_action?.trim().to_owned(),
    })
}

/// FIRST's EPSS scores.
#[derive(Debug, Clone, PartialEq)]
pub struct EpssCatalog {
    /// From the first comment line (`#model_version:v2025.03.14,score_date:…`).
    pub model_version: Option<String>,
    pub score_date: Option<String>,
    pub entries: Vec<EpssEntry>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct EpssEntry {
    pub cve: String,
    /// Probability of exploitation in the next 30 days, 0–1.
    pub score: f64,
    /// 0–1.
    pub percentile: f64,
}

/// Reads an EPSS CSV, plain or gzip-compressed (recognised by its magic bytes).
pub fn read_epss(bytes: &[u8]) -> Result<EpssCatalog, ParseError> {
    read_epss_capped(bytes, EPSS_MAX_INFLATED)
}

/// A gzip EPSS file may inflate to at most this many bytes (the daily file is ~10 MB).
const EPSS_MAX_INFLATED: u64 = 1 << 30;

fn read_epss_capped(bytes: &[u8], cap: u64) -> Result<EpssCatalog, ParseError> {
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let inflated = Capped {
            inner: flate2::read::MultiGzDecoder::new(bytes),
            left: cap,
            cap,
        };
        read_epss_from(inflated)
    } else {
        read_epss_from(bytes)
    }
}

/// A reader that fails once more than `cap` bytes come out of it.
struct Capped<R> {
    inner: R,
    left: u64,
    cap: u64,
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            let mut probe = [0u8; 1];
            return match self.inner.read(&mut probe)? {
                0 => Ok(0),
                _ => Err(std::io::Error::other(format!(
                    "the file inflates past {} bytes",
                    self.cap
                ))),
            };
        }
        let most = usize::try_from(self.left)
            .unwrap_or(usize::MAX)
            .min(buf.len());
        let n = self.inner.read(&mut buf[..most])?;
        self.left -= n as u64;
        Ok(n)
    }
}

fn io_error(e: &std::io::Error) -> ParseError {
    ParseError::new("", format!("cannot read the EPSS file: {e}"))
}

fn read_epss_from<R: Read>(input: R) -> Result<EpssCatalog, ParseError> {
    let mut reader = BufReader::new(input);
    let mut first = Vec::new();
    reader
        .read_until(b'\n', &mut first)
        .map_err(|e| io_error(&e))?;
    let mut model_version = None;
    let mut score_date = None;
    let mut offset = 0;
    let text = String::from_utf8_lossy(&first);
    let text = text.trim_start_matches('\u{feff}');
    if let Some(comment) = text.strip_prefix('#') {
        offset = 1;
        for part in comment.trim().split(',') {
            let Some((key, value)) = part.split_once(':') else {
                continue;
            };
            let value = value.trim();
            match key.trim() {
                "model_version" => model_version = Some(value.to_owned()),
                "score_date" => {
                    let valid = chrono::DateTime::parse_from_rfc3339(value).is_ok()
                        || chrono::DateTime::parse_from_str(value, "%Y-%m-%dT%H:%M:%S%z").is_ok()
                        || chrono::DateTime::parse_from_str(value, "%Y-%m-%dT%H:%M:%S%.f%z")
                            .is_ok();
                    if !valid {
                        return Err(ParseError::new(
                            "line 1",
                            format!("score_date `{value}` is not a date-time"),
                        ));
                    }
                    score_date = Some(value.to_owned());
                }
                _ => {}
            }
        }
        first.clear();
    }
    let mut csv = ::csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .trim(::csv::Trim::All)
        .from_reader(std::io::Cursor::new(first).chain(reader));
    let place_of = |e: &::csv::Error| {
        let mut err = csv_error(e, "EPSS file");
        if let Some(p) = e.position() {
            err.place = format!("line {}", p.line() + offset);
        }
        err
    };
    let headers = csv.headers().map_err(|e| place_of(&e))?.clone();
    let find = |name: &str| {
        headers.iter().position(|h| {
            h.trim_start_matches('\u{feff}')
                .trim()
                .eq_ignore_ascii_case(name)
        })
    };
    let (Some(cve_at), Some(epss_at), Some(percentile_at)) =
        (find("cve"), find("epss"), find("percentile"))
    else {
        let missing: Vec<&str> = ["cve", "epss", "percentile"]
            .into_iter()
            .filter(|n| find(n).is_none())
            .collect();
        return Err(ParseError::new(
            format!("line {}", 1 + offset),
            format!(
                "the header `cve,epss,percentile` is missing column {}",
                missing.join(", ")
            ),
        ));
    };
    let mut entries = Vec::new();
    let mut record = ::csv::StringRecord::new();
    loop {
        match csv.read_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => return Err(place_of(&e)),
        }
        let line = record.position().map(|p| p.line()).unwrap_or_default() + offset;
        let place = format!("line {line}");
        let cell = |at: usize| record.get(at).unwrap_or_default();
        let Some(cve) = normalize_cve(cell(cve_at)) else {
            return Err(ParseError::new(
                place,
                format!("`{}` is not a CVE id", cell(cve_at)),
            ));
        };
        let probability = |name: &str, at: usize| -> Result<f64, ParseError> {
            cell(at)
                .parse::<f64>()
                .ok()
                .filter(|p| (0.0..=1.0).contains(p))
                .ok_or_else(|| {
                    ParseError::new(
                        place.clone(),
                        format!("{name} `{}` is not a number from 0 to 1", cell(at)),
                    )
                })
        };
        let score = probability("epss", epss_at)?;
        let percentile = probability("percentile", percentile_at)?;
        entries.push(EpssEntry {
            cve,
            score,
            percentile,
        });
    }
    Ok(EpssCatalog {
        model_version,
        score_date,
        entries,
    })
}

/// DISA's CCI list.
#[derive(Debug, Clone, PartialEq)]
pub struct CciCatalog {
    /// `metadata/version`.
    pub version: String,
    pub publish_date: Option<String>,
    pub entries: Vec<CciEntry>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CciEntry {
    /// `CCI-000366`.
    pub id: String,
    /// The NIST SP 800-53 controls of the newest revision the item references (Rev 5, else 4,
    /// else 3), normalised (`AC-1 b 1` is `AC-1`, `AC-2 (4)` is `AC-2(4)`), without repeats.
    pub controls: Vec<String>,
    /// Which revision they come from: `5`, `4` or `3`.
    pub revision: String,
}

/// Reads a CCI list.
pub fn read_cci<R: std::io::BufRead>(mut input: R) -> Result<CciCatalog, ParseError> {
    // The byte order mark is skipped here so that positions count from the first character.
    let has_bom = input
        .fill_buf()
        .map_err(|e| ParseError::new("", format!("cannot read the CCI list: {e}")))?
        .starts_with(b"\xef\xbb\xbf");
    if has_bom {
        input.consume(3);
    }
    let mut reader = quick_xml::Reader::from_reader(LineIndex::new(input));
    let mut buf = Vec::new();
    // The local names of the open elements.
    let mut path: Vec<String> = Vec::new();
    let mut text = String::new();
    let mut version = None;
    let mut publish_date = None;
    let mut item: Option<CciItem> = None;
    let mut entries = Vec::new();
    let mut root_seen = false;
    loop {
        let at = reader.buffer_position();
        let event = match reader.read_event_into(&mut buf) {
            Ok(event) => event,
            Err(e) => {
                let at = reader.error_position();
                return Err(xml_error(&reader, at, format!("malformed XML: {e}")));
            }
        };
        match event {
            Event::Start(e) => {
                on_start(&e, &path, &mut item, &mut root_seen)
                    .map_err(|m| xml_error(&reader, at, m))?;
                path.push(local_name(&e));
                text.clear();
            }
            Event::Empty(e) => {
                on_start(&e, &path, &mut item, &mut root_seen)
                    .map_err(|m| xml_error(&reader, at, m))?;
                let name = local_name(&e);
                on_end(
                    &name,
                    &path,
                    "",
                    &mut version,
                    &mut publish_date,
                    &mut item,
                    &mut entries,
                );
            }
            Event::End(_) => {
                let name = path.pop().unwrap_or_default();
                on_end(
                    &name,
                    &path,
                    &text,
                    &mut version,
                    &mut publish_date,
                    &mut item,
                    &mut entries,
                );
                text.clear();
            }
            Event::Text(t) if in_metadata(&path) => {
                let t = t
                    .decode()
                    .map_err(|e| xml_error(&reader, at, format!("malformed text: {e}")))?;
                text.push_str(&t);
            }
            Event::CData(t) if in_metadata(&path) => {
                let t = t
                    .decode()
                    .map_err(|e| xml_error(&reader, at, format!("malformed text: {e}")))?;
                text.push_str(&t);
            }
            Event::GeneralRef(r) if in_metadata(&path) => {
                let name = r
                    .decode()
                    .map_err(|e| xml_error(&reader, at, format!("malformed reference: {e}")))?;
                match r.resolve_char_ref() {
                    Ok(Some(c)) => text.push(c),
                    _ => match quick_xml::escape::resolve_predefined_entity(&name) {
                        Some(s) => text.push_str(s),
                        None => {
                            return Err(xml_error(
                                &reader,
                                at,
                                format!("unknown entity `&{name};`"),
                            ))
                        }
                    },
                }
            }
            Event::Eof => {
                let at = reader.buffer_position();
                if !root_seen {
                    return Err(xml_error(&reader, at, "no <cci_list> element"));
                }
                if let Some(open) = path.last() {
                    return Err(xml_error(
                        &reader,
                        at,
                        format!("truncated: <{open}> is not closed"),
                    ));
                }
                break;
            }
            _ => {}
        }
        buf.clear();
    }
    let Some(version) = version.filter(|v: &String| !v.is_empty()) else {
        return Err(ParseError::new("", "the CCI list has no metadata/version"));
    };
    Ok(CciCatalog {
        version,
        publish_date: publish_date.filter(|d: &String| !d.is_empty()),
        entries,
    })
}

/// The namespace of DISA's CCI list.
const CCI_NAMESPACE: &str = "http://iase.disa.mil/cci";

/// A `cci_item` being read: its id and its NIST SP 800-53 references (revision, index).
struct CciItem {
    id: String,
    references: Vec<(u8, String)>,
}

fn local_name(e: &quick_xml::events::BytesStart<'_>) -> String {
    String::from_utf8_lossy(e.local_name().as_ref()).into_owned()
}

fn in_metadata(path: &[String]) -> bool {
    path.len() == 3 && path[1] == "metadata"
}

fn attribute(e: &quick_xml::events::BytesStart<'_>, name: &[u8]) -> Result<Option<String>, String> {
    for a in e.attributes() {
        let a = a.map_err(|err| format!("malformed attribute: {err}"))?;
        if a.key.as_ref() == name {
            let raw = String::from_utf8_lossy(&a.value);
            let value = quick_xml::escape::unescape(&raw)
                .map_err(|err| format!("malformed attribute: {err}"))?;
            return Ok(Some(value.into_owned()));
        }
    }
    Ok(None)
}

fn on_start(
    e: &quick_xml::events::BytesStart<'_>,
    path: &[String],
    item: &mut Option<CciItem>,
    root_seen: &mut bool,
) -> Result<(), String> {
    let name = local_name(e);
    if path.is_empty() {
        if *root_seen {
            return Err(format!("<{name}> after the root element"));
        }
        if name != "cci_list" {
            return Err(format!(
                "the root element is <{name}>, not a CCI list's <cci_list>"
            ));
        }
        if let Some(ns) = attribute(e, b"xmlns")? {
            if ns != CCI_NAMESPACE {
                return Err(format!("namespace `{ns}` is not `{CCI_NAMESPACE}`"));
            }
        }
        *root_seen = true;
        return Ok(());
    }
    if name == "cci_item" && path.len() == 2 && path[1] == "cci_items" {
        let Some(id) = attribute(e, b"id")?.map(|s| s.trim().to_owned()) else {
            return Err("a cci_item without an id".to_owned());
        };
        *item = Some(CciItem {
            id,
            references: Vec::new(),
        });
    } else if name == "reference" && path.last().is_some_and(|p| p == "references") {
        if let Some(current) = item.as_mut() {
            let title = attribute(e, b"title")?.unwrap_or_default();
            if let Some(revision) = sp800_53_revision(&title) {
                let index = attribute(e, b"index")?.unwrap_or_default();
                current.references.push((revision, index));
            }
        }
    }
    Ok(())
}

fn on_end(
    name: &str,
    path: &[String],
    text: &str,
    version: &mut Option<String>,
    publish_date: &mut Option<String>,
    item: &mut Option<CciItem>,
    entries: &mut Vec<CciEntry>,
) {
    let in_metadata = path.len() == 2 && path[1] == "metadata";
    match name {
        "version" if in_metadata => *version = Some(text.trim().to_owned()),
        "publishdate" if in_metadata => *publish_date = Some(text.trim().to_owned()),
        "cci_item" if path.len() == 2 => {
            if let Some(done) = item.take() {
                entries.push(cci_entry(done));
            }
        }
        _ => {}
    }
}

/// The revision of a NIST SP 800-53 reference by its title: `NIST SP 800-53 Revision 5` is 5,
/// `… Revision 4` is 4, plain `NIST SP 800-53` is 3; `NIST SP 800-53A` (assessment) is none.
fn sp800_53_revision(title: &str) -> Option<u8> {
    let rest = title.trim().strip_prefix("NIST SP 800-53")?;
    if rest.is_empty() {
        return Some(3);
    }
    let n = rest
        .strip_prefix(' ')?
        .trim()
        .strip_prefix("Revision")?
        .trim();
    n.parse::<u8>().ok().filter(|n| (3..=9).contains(n))
}

/// A reference index to its control: `AC-1 b 1` is `AC-1`, `AC-2 (4)` is `AC-2(4)`,
/// `SC-7 (5) (a)` is `SC-7(5)`, `AC-17.2` is `AC-17`, `CP-2 (a)` is `CP-2`.
fn control_of_index(index: &str) -> Option<String> {
    let (family, rest) = index.trim().split_once('-')?;
    let digits_of = |s: &str| -> usize { s.bytes().take_while(u8::is_ascii_digit).count() };
    let n = digits_of(rest);
    let base: u32 = rest[..n].parse().ok()?;
    let after = rest[n..].trim_start();
    let enhancement = after.strip_prefix('(').and_then(|a| {
        let m = digits_of(a);
        if m > 0 && a[m..].starts_with(')') {
            a[..m].parse::<u32>().ok()
        } else {
            None
        }
    });
    let raw = match enhancement {
        Some(e) => format!("{}-{base}({e})", family.trim()),
        None => format!("{}-{base}", family.trim()),
    };
    normalize_control(&raw)
}

fn cci_entry(item: CciItem) -> CciEntry {
    let newest = item.references.iter().map(|(r, _)| *r).max();
    let mut controls: Vec<String> = Vec::new();
    if let Some(newest) = newest {
        for (_, index) in item.references.iter().filter(|(r, _)| *r == newest) {
            if let Some(control) = control_of_index(index) {
                if !controls.contains(&control) {
                    controls.push(control);
                }
            }
        }
    }
    CciEntry {
        id: item.id,
        controls,
        revision: newest.map(|r| r.to_string()).unwrap_or_default(),
    }
}

fn xml_error<R>(
    reader: &quick_xml::Reader<LineIndex<R>>,
    at: u64,
    message: impl Into<String>,
) -> ParseError {
    let (line, column) = reader.get_ref().line_column(at);
    ParseError::new(format!("line {line}, column {column}"), message)
}

/// A `BufRead` that notes where its lines start, to name an XML reader's byte position as a
/// line and column.
struct LineIndex<R> {
    inner: R,
    consumed: u64,
    newlines: Vec<u64>,
}

impl<R> LineIndex<R> {
    fn new(inner: R) -> Self {
        LineIndex {
            inner,
            consumed: 0,
            newlines: Vec::new(),
        }
    }

    /// The 1-based line and column of byte `at`.
    fn line_column(&self, at: u64) -> (usize, u64) {
        let before = self.newlines.partition_point(|n| *n < at);
        let line_start = match before {
            0 => 0,
            k => self.newlines[k - 1] + 1,
        };
        (before + 1, at.saturating_sub(line_start) + 1)
    }
}

impl<R: BufRead> Read for LineIndex<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = {
            let available = self.fill_buf()?;
            let n = available.len().min(buf.len());
            buf[..n].copy_from_slice(&available[..n]);
            n
        };
        self.consume(n);
        Ok(n)
    }
}

impl<R: BufRead> BufRead for LineIndex<R> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        self.inner.fill_buf()
    }

    fn consume(&mut self, amount: usize) {
        if let Ok(available) = self.inner.fill_buf() {
            let seen = &available[..amount.min(available.len())];
            let start = self.consumed;
            self.newlines.extend(
                seen.iter()
                    .enumerate()
                    .filter(|(_, b)| **b == b'\n')
                    .map(|(i, _)| start + i as u64),
            );
        }
        self.consumed += amount as u64;
        self.inner.consume(amount);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::io::Write;

    const KEV_SAMPLE: &[u8] = include_bytes!("testdata/kev_sample.json");
    const EPSS_SAMPLE: &str = include_str!("testdata/epss_sample.csv");
    const CCI_SMALL: &str = include_str!("testdata/cci_list_small.xml");

    fn date(y: i32, m: u32, d: u32) -> Option<NaiveDate> {
        NaiveDate::from_ymd_opt(y, m, d)
    }

    fn kev_doc() -> Result<Value, ParseError> {
        serde_json::from_slice(KEV_SAMPLE).map_err(|e| json_error(&e))
    }

    fn kev_errors(doc: &Value) -> Vec<(String, String)> {
        let bytes = serde_json::to_vec(doc).unwrap_or_default();
        match read_kev(&bytes) {
            Ok(_) => Vec::new(),
            Err(errors) => errors.into_iter().map(|e| (e.place, e.message)).collect(),
        }
    }

    fn places(errors: &[(String, String)]) -> Vec<&str> {
        errors.iter().map(|(p, _)| p.as_str()).collect()
    }

    #[test]
    fn reads_the_real_kev_sample() -> Result<(), Vec<ParseError>> {
        let kev = read_kev(KEV_SAMPLE)?;
        assert_eq!(kev.version, "2025.08.25");
        assert_eq!(kev.released, "2025-08-25T17:04:19.9796Z");
        assert_eq!(kev.entries.len(), 3);
        let git = &kev.entries[0];
        assert_eq!(git.cve, "CVE-2025-48384");
        assert_eq!(git.vendor_project, "Git");
        assert_eq!(git.name, "Git Link Following Vulnerability");
        assert_eq!(Some(git.date_added), date(2025, 8, 25));
        assert_eq!(Some(git.due_date), date(2025, 9, 15));
        assert!(!git.ransomware);
        assert_eq!(git.forensic_triage, None);
        assert_eq!(kev.entries[1].product, "Session Recording");
        // Due before it was added: real data, accepted.
        let spooler = &kev.entries[2];
        assert_eq!(spooler.cve, "CVE-2021-34527");
        assert_eq!(Some(spooler.date_added), date(2021, 11, 3));
        assert_eq!(Some(spooler.due_date), date(2021, 7, 20));
        assert!(spooler.ransomware);
        assert_eq!(
            spooler.required_action,
            "Apply updates per vendor instructions."
        );
        Ok(())
    }

    #[test]
    fn reads_forensic_triage_and_trims_vendor_names() -> Result<(), ParseError> {
        let mut doc = kev_doc()?;
        doc["vulnerabilities"][0]["forensicTriage"] = json!("Yes");
        doc["vulnerabilities"][0]["vendorProject"] = json!("SimpleHelp ");
        doc["vulnerabilities"][1]["forensicTriage"] = json!("No");
        doc["vulnerabilities"][2]["forensicTriage"] = json!("");
        doc["count"] = json!(1404);
        let bytes = serde_json::to_vec(&doc).unwrap_or_default();
        let kev = read_kev(&bytes).map_err(|mut e| e.remove(0))?;
        let triage: Vec<Option<bool>> = kev.entries.iter().map(|e| e.forensic_triage).collect();
        assert_eq!(triage, vec![Some(true), Some(false), None]);
        assert_eq!(kev.entries[0].vendor_project, "SimpleHelp");
        Ok(())
    }

    #[test]
    fn lists_every_schema_violation_with_its_pointer() -> Result<(), ParseError> {
        let mut doc = kev_doc()?;
        let Some(first) = doc["vulnerabilities"][0].as_object_mut() else {
            panic!("the sample has entries");
        };
        first.remove("dueDate");
        doc["vulnerabilities"][1]["cveID"] = json!("CVE-24-8068");
        doc["vulnerabilities"][2]["dateAdded"] = json!("2021-11-31");
        doc["vulnerabilities"][2]["product"] = json!(42);
        doc["vulnerabilities"][2]["cwes"] = json!(["CWE-269", "CWE-X", 7]);
        doc["vulnerabilities"][1]["knownRansomwareCampaignUse"] = json!(true);
        let errors = kev_errors(&doc);
        assert_eq!(
            places(&errors),
            vec![
                "/vulnerabilities/0/dueDate",
                "/vulnerabilities/1/cveID",
                "/vulnerabilities/1/knownRansomwareCampaignUse",
                "/vulnerabilities/2/product",
                "/vulnerabilities/2/dateAdded",
                "/vulnerabilities/2/cwes/1",
                "/vulnerabilities/2/cwes/2",
            ]
        );
        assert!(errors[0].1.contains("missing"));
        assert!(errors[3].1.contains("must be a string"));

        let mut doc = kev_doc()?;
        doc["count"] = json!("3");
        doc["dateReleased"] = json!("2025-08-25 17:04");
        doc["vulnerabilities"][0] = json!("CVE-2025-48384");
        let Some(top) = doc.as_object_mut() else {
            panic!("the sample is an object");
        };
        top.remove("catalogVersion");
        let errors = kev_errors(&doc);
        assert_eq!(
            places(&errors),
            vec![
                "/catalogVersion",
                "/dateReleased",
                "/count",
                "/vulnerabilities/0"
            ]
        );

        let errors = kev_errors(
            &json!({"catalogVersion": "x", "dateReleased": "2025-08-25T17:04:19Z", "count": 0.0, "vulnerabilities": {}}),
        );
        assert_eq!(places(&errors), vec!["/vulnerabilities"]);
        let errors = kev_errors(&json!([]));
        assert_eq!(places(&errors), vec![""]);
        Ok(())
    }

    #[test]
    fn caps_the_list_at_100_and_names_malformed_json() {
        let many: Vec<Value> = (0..150).map(|_| json!({})).collect();
        let doc = json!({"catalogVersion": "x", "dateReleased": "2025-08-25T17:04:19Z", "count": 150, "vulnerabilities": many});
        assert_eq!(kev_errors(&doc).len(), MAX_ERRORS);

        let Err(errors) = read_kev(b"{\"catalogVersion\": \"2025.08.25\",\n \"count\": 3,, }")
        else {
            panic!("malformed JSON is read");
        };
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].place, "line 2, column 13");
        let Err(errors) = read_kev(&KEV_SAMPLE[..KEV_SAMPLE.len() / 2]) else {
            panic!("a truncated catalog is read");
        };
        assert!(errors[0].message.contains("truncated"));
    }

    #[test]
    fn reads_a_plain_epss_file() -> Result<(), ParseError> {
        let epss = read_epss(EPSS_SAMPLE.as_bytes())?;
        assert_eq!(epss.model_version.as_deref(), Some("v2025.03.14"));
        assert_eq!(epss.score_date.as_deref(), Some("2025-09-03T12:55:00Z"));
        assert_eq!(epss.entries.len(), 4);
        assert_eq!(
            epss.entries[1],
            EpssEntry {
                cve: "CVE-2021-44228".to_owned(),
                score: 0.94358,
                percentile: 0.99989,
            }
        );
        Ok(())
    }

    #[test]
    fn reads_a_gzip_epss_file() -> Result<(), ParseError> {
        let io = |e: std::io::Error| ParseError::new("", e.to_string());
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(EPSS_SAMPLE.as_bytes()).map_err(io)?;
        let bytes = gz.finish().map_err(io)?;
        assert_eq!(bytes[..2], [0x1f, 0x8b]);
        let epss = read_epss(&bytes)?;
        assert_eq!(epss, read_epss(EPSS_SAMPLE.as_bytes())?);

        let Err(err) = read_epss_capped(&bytes, 64) else {
            panic!("the cap is not applied");
        };
        assert!(err.message.contains("inflates past"), "{err}");
        let Err(err) = read_epss(&bytes[..bytes.len() / 2]) else {
            panic!("a truncated gzip file is read");
        };
        assert!(err.message.contains("cannot read"), "{err}");
        Ok(())
    }

    #[test]
    fn reads_the_older_comment_and_columns_in_any_order() -> Result<(), ParseError> {
        let text = "#model_version:v2023.03.01,score_date:2024-05-13T00:00:00+0000\r\n\
                    percentile,cve,epss\r\n0.5,cve-2020-1472,0.97\r\n";
        let epss = read_epss(text.as_bytes())?;
        assert_eq!(epss.model_version.as_deref(), Some("v2023.03.01"));
        assert_eq!(epss.score_date.as_deref(), Some("2024-05-13T00:00:00+0000"));
        assert_eq!(epss.entries.len(), 1);
        assert_eq!(epss.entries[0].cve, "CVE-2020-1472");
        assert_eq!(epss.entries[0].score, 0.97);
        assert_eq!(epss.entries[0].percentile, 0.5);

        let epss = read_epss(b"cve,epss,percentile\nCVE-1999-0001,0,1\n")?;
        assert_eq!(epss.model_version, None);
        assert_eq!(epss.entries.len(), 1);
        Ok(())
    }

    #[test]
    fn epss_errors_name_their_line() {
        let place = |text: &str| read_epss(text.as_bytes()).err().map(|e| e.place);
        // No header.
        assert_eq!(
            place("#model_version:v2025.03.14,score_date:2025-09-03T12:55:00Z\nCVE-1999-0001,0.0142,0.7991\n"),
            Some("line 2".to_owned())
        );
        assert_eq!(place("cve,score\n"), Some("line 1".to_owned()));
        // A score out of range, a percentile that is not a number, a bad CVE id, a ragged row.
        let head = "#model_version:v2025.03.14,score_date:2025-09-03T12:55:00Z\ncve,epss,percentile\nCVE-1999-0001,0.0142,0.7991\n";
        assert_eq!(
            place(&format!("{head}CVE-1999-0002,1.5,0.9\n")),
            Some("line 4".to_owned())
        );
        assert_eq!(
            place(&format!("{head}CVE-1999-0002,0.5,high\n")),
            Some("line 4".to_owned())
        );
        assert_eq!(
            place(&format!("{head}CVE-99-2,0.5,0.5\n")),
            Some("line 4".to_owned())
        );
        assert_eq!(
            place(&format!("{head}CVE-1999-0002,0.5\n")),
            Some("line 4".to_owned())
        );
        assert_eq!(
            place("#model_version:v1,score_date:yesterday\ncve,epss,percentile\n"),
            Some("line 1".to_owned())
        );
    }

    #[test]
    fn reads_a_cci_list() -> Result<(), ParseError> {
        assert!(CCI_SMALL.starts_with('\u{feff}'));
        let cci = read_cci(CCI_SMALL.as_bytes())?;
        assert_eq!(cci.version, "2024-12-06");
        assert_eq!(cci.publish_date.as_deref(), Some("2024-12-06"));
        let got: Vec<(&str, Vec<&str>, &str)> = cci
            .entries
            .iter()
            .map(|e| {
                (
                    e.id.as_str(),
                    e.controls.iter().map(String::as_str).collect(),
                    e.revision.as_str(),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("CCI-000001", vec!["AC-1"], "4"),
                ("CCI-000366", vec!["CM-6"], "5"),
                ("CCI-001102", vec!["SC-7(5)", "AC-17"], "4"),
                ("CCI-002000", vec!["AR-1", "CP-2"], "4"),
                ("CCI-000068", vec!["AC-17(2)"], "5"),
                ("CCI-003999", vec![], ""),
            ]
        );
        Ok(())
    }

    #[test]
    fn reduces_reference_indexes_to_controls() {
        for (index, want) in [
            ("AC-1 a", Some("AC-1")),
            ("AC-1 b 1", Some("AC-1")),
            ("AC-2 (4)", Some("AC-2(4)")),
            ("SC-7 (5) (a)", Some("SC-7(5)")),
            ("AC-17.2", Some("AC-17")),
            ("CP-2 (8)1", Some("CP-2(8)")),
            ("SA-4  (1) (a)", Some("SA-4(1)")),
            ("CP-2 (a)", Some("CP-2")),
            ("AC-02", Some("AC-2")),
            ("Appendix J", None),
            ("AC-", None),
            ("ACX-1", None),
        ] {
            assert_eq!(control_of_index(index).as_deref(), want, "{index}");
        }
        for (title, want) in [
            ("NIST SP 800-53", Some(3)),
            ("NIST SP 800-53 Revision 4", Some(4)),
            ("NIST SP 800-53 Revision 5", Some(5)),
            ("NIST SP 800-53A", None),
            ("NIST SP 800-53A Revision 4", None),
            ("NIST SP 800-171", None),
        ] {
            assert_eq!(sp800_53_revision(title), want, "{title}");
        }
    }

    #[test]
    fn cci_errors_name_their_place() {
        let bad_end = CCI_SMALL.replace("</cci_items>", "</cci_itemz>");
        let Err(err) = read_cci(bad_end.as_bytes()) else {
            panic!("a mismatched end tag is read");
        };
        assert!(err.place.starts_with("line 81, column "), "{err}");

        let cut = &CCI_SMALL[..CCI_SMALL.len() / 2];
        let Err(err) = read_cci(cut.as_bytes()) else {
            panic!("a truncated list is read");
        };
        assert!(err.place.starts_with("line "), "{err}");

        let Err(err) =
            read_cci("<Benchmark xmlns=\"http://checklists.nist.gov/xccdf/1.1\"/>".as_bytes())
        else {
            panic!("another document is read");
        };
        assert_eq!(err.place, "line 1, column 1");
        assert!(err.message.contains("<Benchmark>"), "{err}");

        let other_ns =
            CCI_SMALL.replace("xmlns=\"http://iase.disa.mil/cci\"", "xmlns=\"urn:other\"");
        assert!(read_cci(other_ns.as_bytes()).is_err());
        let no_version = CCI_SMALL.replace("<version>2024-12-06</version>", "");
        assert!(read_cci(no_version.as_bytes()).is_err());
        let no_id = CCI_SMALL.replace("<cci_item id=\"CCI-000366\">", "<cci_item>");
        let Err(err) = read_cci(no_id.as_bytes()) else {
            panic!("an item without an id is read");
        };
        assert_eq!(err.place, "line 21, column 3");
        assert!(read_cci("".as_bytes()).is_err());
    }

    /// DISA's published list (2016-06-27), when the shared reference folder is present.
    #[test]
    fn reads_disas_published_cci_list() -> Result<(), ParseError> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/reference/cci/U_CCI_List-2016-06-27.xml");
        let Ok(file) = std::fs::File::open(&path) else {
            return Ok(());
        };
        let cci = read_cci(BufReader::new(file))?;
        assert_eq!(cci.version, "2016-06-27");
        assert!(cci.entries.len() > 1_000, "{}", cci.entries.len());
        let Some(cm6) = cci.entries.iter().find(|e| e.id == "CCI-000366") else {
            panic!("CCI-000366 is in the list");
        };
        assert_eq!(cm6.controls, vec!["CM-6".to_owned()]);
        assert_eq!(cm6.revision, "4");
        Ok(())
    }
}
