//! Nessus v2 (`.nessus`, root `<NessusClientData_v2>`): one finding per `ReportItem` (plugin,
//! host, port, protocol). A compliance check's `ReportItem` (an audit file's check: the
//! `cm:compliance-*` elements, every check of one audit under one plugin id, 21156 or 21157, on
//! port 0) is one finding per check when it `FAILED`, identified as `<plugin id>:<check id>`;
//! `PASSED` is a fix seen, `WARNING` (a check for a person to judge) and `ERROR` (the check did
//! not run) are listed as skipped. The file is streamed: only the current `ReportHost`'s properties and
//! the current `ReportItem` are held, so a file of hundreds of megabytes reads in bounded memory.
//! The `Policy` section is skipped.

use super::{Finding, Options, ParseError, Severity, Sink, Skipped, Unmapped};
use crate::controls::normalize_cve;
use std::collections::BTreeMap;
use std::io::BufRead;

const ROOT: &str = "NessusClientData_v2";
const DETECTOR: &str = "nessus";

/// How many characters of a long text (plugin output, check content) a finding keeps.
pub(super) const CLIP: usize = 4_000;

/// Reads a Nessus v2 file into `sink`.
pub fn read<R: BufRead>(
    input: R,
    options: &Options,
    sink: &mut dyn Sink,
) -> Result<(), ParseError> {
    let (mut xml, root) = xml::XmlReader::open(input, ROOT)?;
    sink.scanner("Nessus");
    if root.empty {
        return Ok(());
    }
    while let Some(child) = xml.next_child()? {
        match child.name.as_str() {
            "Report" if !child.empty => {
                while let Some(host) = xml.next_child()? {
                    if host.name == "ReportHost" {
                        read_host(&mut xml, &host, options, sink)?;
                    } else {
                        xml.skip(&host)?;
                    }
                }
            }
            // `Policy` and anything else at this level: not findings.
            _ => xml.skip(&child)?,
        }
    }
    xml.finish()
}

/// The current `ReportHost`: its name attribute and the properties read so far.
struct Host {
    name_attr: String,
    properties: BTreeMap<String, String>,
    /// The name findings use, fixed when first needed (and announced to the sink then).
    name: Option<String>,
}

impl Host {
    fn property(&self, key: &str) -> Option<&str> {
        self.properties
            .get(key)
            .map(|v| v.as_str())
            .filter(|v| !v.is_empty())
    }

    /// The host's name: its FQDN, else IP, else NetBIOS name, else the `name` attribute.
    fn name(&mut self, sink: &mut dyn Sink) -> String {
        if let Some(name) = &self.name {
            return name.clone();
        }
        let name = self
            .property("host-fqdn")
            .or_else(|| self.property("host-ip"))
            .or_else(|| self.property("netbios-name"))
            .unwrap_or(self.name_attr.as_str())
            .to_owned();
        sink.host(&name);
        self.name = Some(name.clone());
        name
    }

    /// The date the host's scan ended: `HOST_END` (`Tue Nov  3 10:12:01 2026`), else the epoch
    /// seconds of `HOST_END_TIMESTAMP`.
    fn seen_on(&self) -> Option<chrono::NaiveDate> {
        let from_text = self.property("HOST_END").and_then(|raw| {
            let collapsed = raw.split_whitespace().collect::<Vec<_>>().join(" ");
            chrono::NaiveDateTime::parse_from_str(&collapsed, "%a %b %e %H:%M:%S %Y")
                .map(|t| t.date())
                .ok()
        });
        from_text.or_else(|| {
            let secs = self
                .property("HOST_END_TIMESTAMP")?
                .trim()
                .parse::<i64>()
                .ok()?;
            chrono::DateTime::from_timestamp(secs, 0).map(|t| t.date_naive())
        })
    }
}

fn read_host<R: BufRead>(
    xml: &mut xml::XmlReader<R>,
    element: &xml::Element,
    options: &Options,
    sink: &mut dyn Sink,
) -> Result<(), ParseError> {
    let mut host = Host {
        name_attr: element.attr("name").unwrap_or_default().trim().to_owned(),
        properties: BTreeMap::new(),
        name: None,
    };
    if !element.empty {
        while let Some(child) = xml.next_child()? {
            match child.name.as_str() {
                "HostProperties" if !child.empty => {
                    while let Some(tag) = xml.next_child()? {
                        if tag.name == "tag" {
                            let key = tag.attr("name").unwrap_or_default().to_owned();
                            let value = xml.text(&tag)?;
                            host.properties.insert(key, value);
                        } else {
                            xml.skip(&tag)?;
                        }
                    }
                }
                "ReportItem" => {
                    let item = read_item(xml, &child)?;
                    map_item(&item, &mut host, options, sink);
                }
                _ => xml.skip(&child)?,
            }
        }
    }
    // A host without items is still in the scan's scope.
    host.name(sink);
    Ok(())
}

/// The current `ReportItem`: its attributes and its children's texts, in file order.
struct Item {
    element: xml::Element,
    children: Vec<(String, String)>,
}

impl Item {
    fn child(&self, name: &str) -> Option<&str> {
        self.children
            .iter()
            .find(|(n, v)| n == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.children
            .iter()
            .filter(move |(n, v)| n == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }
}

fn read_item<R: BufRead>(
    xml: &mut xml::XmlReader<R>,
    element: &xml::Element,
) -> Result<Item, ParseError> {
    let mut children = Vec::new();
    if !element.empty {
        while let Some(child) = xml.next_child()? {
            let text = xml.text(&child)?;
            children.push((child.name, text));
        }
    }
    Ok(Item {
        element: element.clone(),
        children,
    })
}

/// A compliance check's `ReportItem`: its result, its stable id (`cm:compliance-check-id`,
/// else its name, clipped) and its name.
struct Check {
    result: String,
    id: String,
    name: Option<String>,
}

impl Check {
    /// The length a check's name may take as its id (without a `cm:compliance-check-id`).
    const ID_MAX: usize = 200;

    fn of(item: &Item) -> Option<Check> {
        let result = item.child("cm:compliance-result").map(str::trim)?;
        let name = item
            .child("cm:compliance-check-name")
            .map(|n| n.trim().to_owned());
        let id = item
            .child("cm:compliance-check-id")
            .map(|i| i.trim().to_owned())
            .or_else(|| name.as_deref().map(|n| clip(n, Self::ID_MAX)))
            .unwrap_or_default();
        Some(Check {
            result: result.to_owned(),
            id,
            name,
        })
    }
}

fn map_item(item: &Item, host: &mut Host, options: &Options, sink: &mut dyn Sink) {
    let element = &item.element;
    let place = element.place.clone();
    let host_name = host.name(sink);
    let plugin_id = element.attr("pluginID").unwrap_or_default().trim();
    if plugin_id.is_empty() {
        sink.unmapped(Unmapped {
            place,
            element: "ReportItem".into(),
            reason: "the ReportItem has no pluginID".into(),
        });
        return;
    }
    let raw_severity = element.attr("severity").unwrap_or_default().trim();
    let severity = match raw_severity {
        "0" => Severity::Info,
        "1" => Severity::NessusLow,
        "2" => Severity::NessusMedium,
        "3" => Severity::NessusHigh,
        "4" => Severity::NessusCritical,
        other => {
            let reason = if other.is_empty() {
                "the ReportItem has no severity".to_owned()
            } else {
                format!("the severity \"{other}\" is not one of 0, 1, 2, 3, 4")
            };
            sink.unmapped(Unmapped {
                place,
                element: format!("ReportItem pluginID={plugin_id}"),
                reason,
            });
            return;
        }
    };
    let port = element.attr("port").unwrap_or_default().trim();
    let protocol = element.attr("protocol").unwrap_or_default().trim();
    let asset = if port.is_empty() || port == "0" {
        host_name.clone()
    } else if protocol.is_empty() {
        format!("{host_name}:{port}")
    } else {
        format!("{host_name}:{port}/{protocol}")
    };
    let check = Check::of(item);
    let identifier = match &check {
        Some(c) => format!("{plugin_id}:{}", c.id),
        None => plugin_id.to_owned(),
    };
    if let Some(c) = &check {
        if c.id.is_empty() {
            sink.unmapped(Unmapped {
                place,
                element: format!("ReportItem pluginID={plugin_id}"),
                reason: "the compliance check has neither a cm:compliance-check-id nor a name"
                    .into(),
            });
            return;
        }
        let skipped = match c.result.to_ascii_uppercase().as_str() {
            "FAILED" => None,
            "PASSED" => Some(("passed", true)),
            "WARNING" => Some(("needs_review", false)),
            "ERROR" => Some(("check_error", false)),
            other => {
                sink.unmapped(Unmapped {
                    place,
                    element: format!("ReportItem pluginID={plugin_id}"),
                    reason: format!(
                        "the compliance result \"{other}\" is not one of FAILED, PASSED, WARNING, ERROR"
                    ),
                });
                return;
            }
        };
        if let Some((reason, fixed)) = skipped {
            sink.skipped(Skipped {
                place,
                detector: Some(DETECTOR.into()),
                identifier: Some(identifier),
                asset: Some(asset),
                reason: reason.into(),
                fixed,
            });
            return;
        }
    }
    if severity == Severity::Info && !options.include_informational {
        sink.skipped(Skipped {
            place,
            detector: Some(DETECTOR.into()),
            identifier: Some(identifier),
            asset: Some(asset),
            reason: "informational".into(),
            fixed: false,
        });
        return;
    }

    let mut details = BTreeMap::new();
    let mut put = |key: &str, value: Option<&str>| {
        if let Some(v) = value.map(str::trim).filter(|v| !v.is_empty()) {
            details.insert(key.to_owned(), v.to_owned());
        }
    };
    let plugin_name = element.attr("pluginName").unwrap_or_default().trim();
    put("plugin_name", Some(plugin_name));
    put("plugin_family", element.attr("pluginFamily"));
    put("synopsis", item.child("synopsis"));
    put("risk_factor", item.child("risk_factor"));
    put("stig_severity", item.child("stig_severity"));
    put("fqdn", host.property("host-fqdn"));
    put("ip", host.property("host-ip"));
    put("netbios", host.property("netbios-name"));
    put("port", Some(port));
    put("protocol", Some(protocol));
    put("svc_name", element.attr("svc_name"));
    put("cvss_base_score", item.child("cvss_base_score"));
    put("exploit_available", item.child("exploit_available"));
    put(
        "patch_publication_date",
        item.child("patch_publication_date")
            .map(iso_date)
            .as_deref(),
    );
    put(
        "plugin_output",
        item.child("plugin_output")
            .map(|o| clip(o, CLIP))
            .as_deref(),
    );
    let mut iav: Vec<&str> = Vec::new();
    for (name, value) in &item.children {
        let is_iav = matches!(name.as_str(), "iava" | "iavb" | "iavt" | "iavm")
            || (name == "xref" && value.to_ascii_uppercase().starts_with("IAV"));
        if is_iav && !value.is_empty() && !iav.contains(&value.as_str()) {
            iav.push(value);
        }
    }
    put("iavm", Some(&iav.join(", ")));
    let see_also: Vec<&str> = item.all("see_also").collect();
    put("see_also", Some(&see_also.join("\n")));

    let mut cves: Vec<String> = Vec::new();
    let mut unparsed: Vec<&str> = Vec::new();
    for raw in item.all("cve") {
        match normalize_cve(raw) {
            Some(cve) if !cves.contains(&cve) => cves.push(cve),
            Some(_) => {}
            None => unparsed.push(raw),
        }
    }
    put("unparsed_cves", Some(&unparsed.join(", ")));

    let mut description = [item.child("synopsis"), item.child("description")]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join("\n\n");
    let score = |name: &str| item.child(name).and_then(|s| s.trim().parse::<f64>().ok());
    let mut title = if plugin_name.is_empty() {
        format!("Nessus plugin {plugin_id}")
    } else {
        plugin_name.into()
    };
    let mut solution = item.child("solution").map(str::to_owned);
    let (mut controls, mut ccis) = (Vec::new(), Vec::new());
    if let Some(c) = &check {
        title = c
            .name
            .clone()
            .unwrap_or_else(|| format!("{title}: {}", c.id));
        if let Some(info) = item.child("cm:compliance-info") {
            description = info.to_owned();
        }
        if let Some(fix) = item.child("cm:compliance-solution") {
            solution = Some(fix.to_owned());
        }
        for (key, value) in [
            ("compliance_result", Some(c.result.as_str())),
            ("audit_file", item.child("cm:compliance-audit-file")),
            ("check_id", Some(c.id.as_str())),
            (
                "actual_value",
                item.child("cm:compliance-actual-value")
                    .map(|v| clip(v, CLIP))
                    .as_deref(),
            ),
            (
                "policy_value",
                item.child("cm:compliance-policy-value")
                    .map(|v| clip(v, CLIP))
                    .as_deref(),
            ),
            (
                "reference",
                item.child("cm:compliance-reference")
                    .map(|v| clip(v, CLIP))
                    .as_deref(),
            ),
        ] {
            if let Some(v) = value.map(str::trim).filter(|v| !v.is_empty()) {
                details.insert(key.to_owned(), v.to_owned());
            }
        }
        // `800-53|AU-9, CCI|CCI-000366, Vuln-ID|V-220697, …`: the controls and CCIs it names,
        // and a DISA STIG audit's rule ids under the names a checklist's findings use.
        for entry in item
            .child("cm:compliance-reference")
            .unwrap_or_default()
            .split(',')
        {
            let Some((scheme, value)) = entry.split_once('|') else {
                continue;
            };
            let (scheme, value) = (scheme.trim(), value.trim());
            let scheme = scheme.to_ascii_uppercase();
            if scheme.starts_with("800-53") || scheme == "800-171" {
                if let Some(control) = crate::controls::normalize_control(value) {
                    if !controls.contains(&control) {
                        controls.push(control);
                    }
                }
            } else if scheme == "CCI" {
                let cci = value.to_ascii_uppercase();
                if cci.starts_with("CCI-") && !ccis.contains(&cci) {
                    ccis.push(cci);
                }
            } else if let Some(key) = match scheme.as_str() {
                "VULN-ID" => Some("vuln_id"),
                "STIG-ID" => Some("stig_id"),
                "RULE-ID" => Some("rule_id"),
                _ => None,
            } {
                details
                    .entry(key.to_owned())
                    .or_insert_with(|| value.to_owned());
            }
        }
    }

    sink.finding(Finding {
        detector: DETECTOR.into(),
        identifier,
        asset,
        host: host_name,
        title,
        description,
        severity: Some(severity),
        cves,
        controls,
        ccis,
        cvss3_base: score("cvss3_base_score"),
        cvss4_base: score("cvss4_base_score"),
        solution,
        seen_on: host.seen_on(),
        details,
        place,
    });
}

/// `2024/01/09` → `2024-01-09`; anything else is kept as written.
fn iso_date(raw: &str) -> String {
    chrono::NaiveDate::parse_from_str(raw.trim(), "%Y/%m/%d")
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_else(|_| raw.trim().to_owned())
}

/// The first `max` characters of `text`, with `…` when it was longer.
pub(super) fn clip(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

/// A streaming XML cursor over quick-xml shared by the XML readers: it names places as
/// `line L, column C` (counted from the bytes consumed, never by re-reading), checks the root
/// element, and turns a file that ends before its root closes into an error.
pub(super) mod xml {
    use super::super::ParseError;
    use quick_xml::events::Event;
    use quick_xml::Reader;
    use std::io::{BufRead, Read};

    /// A `BufRead` that counts the lines of what its reader consumed.
    pub(super) struct Counting<R> {
        inner: R,
        offset: u64,
        line: u64,
        line_start: u64,
    }

    impl<R: BufRead> Read for Counting<R> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.inner.read(buf)?;
            let seen = buf.get(..n).unwrap_or_default();
            self.count(seen);
            Ok(n)
        }
    }

    impl<R: BufRead> BufRead for Counting<R> {
        fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
            self.inner.fill_buf()
        }

        fn consume(&mut self, amt: usize) {
            let (newlines, last) = match self.inner.fill_buf() {
                Ok(buf) => {
                    let seen = buf.get(..amt.min(buf.len())).unwrap_or_default();
                    let newlines = seen.iter().filter(|b| **b == b'\n').count() as u64;
                    (newlines, seen.iter().rposition(|b| *b == b'\n'))
                }
                Err(_) => (0, None),
            };
            self.line += newlines;
            if let Some(i) = last {
                self.line_start = self.offset + i as u64 + 1;
            }
            self.offset += amt as u64;
            self.inner.consume(amt);
        }
    }

    impl<R> Counting<R> {
        fn count(&mut self, seen: &[u8]) {
            for (i, b) in seen.iter().enumerate() {
                if *b == b'\n' {
                    self.line += 1;
                    self.line_start = self.offset + i as u64 + 1;
                }
            }
            self.offset += seen.len() as u64;
        }

        /// `line L, column C` of byte `at` when it is on the current line, else of the point
        /// consumed so far.
        fn place(&self, at: Option<u64>) -> String {
            let at = at
                .filter(|a| *a >= self.line_start && *a <= self.offset)
                .unwrap_or(self.offset);
            format!("line {}, column {}", self.line, at - self.line_start + 1)
        }
    }

    /// An element's start: its name, attributes (unescaped) and place.
    #[derive(Debug, Clone)]
    pub(in super::super) struct Element {
        pub name: String,
        pub attributes: Vec<(String, String)>,
        pub place: String,
        /// `<x/>`: it has no content and no end tag.
        pub empty: bool,
    }

    impl Element {
        pub fn attr(&self, key: &str) -> Option<&str> {
            self.attributes
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
        }
    }

    enum Ev {
        Start(Element),
        End,
        Text(String),
        Eof,
    }

    pub(in super::super) struct XmlReader<R: BufRead> {
        reader: Reader<Counting<R>>,
        buf: Vec<u8>,
        /// The names of the open elements, the root first.
        open: Vec<String>,
        root: &'static str,
    }

    impl<R: BufRead> XmlReader<R> {
        /// Reads up to the root element, which must be `root`.
        pub fn open(input: R, root: &'static str) -> Result<(Self, Element), ParseError> {
            let counting = Counting {
                inner: input,
                offset: 0,
                line: 1,
                line_start: 0,
            };
            let mut reader = Reader::from_reader(counting);
            reader.config_mut().trim_text(false);
            let mut xml = XmlReader {
                reader,
                buf: Vec::new(),
                open: Vec::new(),
                root,
            };
            loop {
                match xml.event()? {
                    Ev::Start(element) => {
                        if !element.empty {
                            xml.open.push(element.name.clone());
                        }
                        if element.name != root {
                            return Err(ParseError::new(
                                element.place,
                                format!(
                                    "the root element is <{}>, expected <{root}>: this is not \
                                     the format being read",
                                    element.name
                                ),
                            ));
                        }
                        return Ok((xml, element));
                    }
                    Ev::Text(t) if t.trim().is_empty() => {}
                    Ev::Text(_) => {
                        return Err(ParseError::new(
                            xml.place(),
                            format!("text before the root element; expected <{root}>"),
                        ))
                    }
                    Ev::End => {
                        return Err(ParseError::new(
                            xml.place(),
                            "an end tag before the root element",
                        ))
                    }
                    Ev::Eof => {
                        return Err(ParseError::new(
                            xml.place(),
                            format!("the file ends before its root element <{root}>"),
                        ))
                    }
                }
            }
        }

        fn place(&self) -> String {
            self.reader.get_ref().place(None)
        }

        fn error(&self, e: quick_xml::Error) -> ParseError {
            let at = Some(self.reader.error_position());
            let place = self.reader.get_ref().place(at);
            match e {
                quick_xml::Error::Syntax(quick_xml::errors::SyntaxError::InvalidBangMarkup) => {
                    ParseError::new(
                        place,
                        "malformed XML: a `<!` that starts no comment, CDATA or DOCTYPE",
                    )
                }
                quick_xml::Error::Syntax(s) => ParseError::new(
                    place,
                    format!("the file ends before the markup closes ({s})"),
                ),
                other => ParseError::new(place, format!("malformed XML: {other}")),
            }
        }

        /// The next event, with text pieces (text, CDATA, entity references) as text.
        fn event(&mut self) -> Result<Ev, ParseError> {
            loop {
                let place = self.place();
                self.buf.clear();
                let event = match self.reader.read_event_into(&mut self.buf) {
                    Ok(event) => event,
                    Err(e) => return Err(self.error(e)),
                };
                let empty = matches!(&event, Event::Empty(_));
                let ev = match event {
                    Event::Start(start) | Event::Empty(start) => {
                        let name = String::from_utf8_lossy(start.name().as_ref()).into_owned();
                        let mut attributes = Vec::new();
                        for attr in start.attributes() {
                            let attr = attr.map_err(|e| {
                                ParseError::new(&place, format!("malformed attribute: {e}"))
                            })?;
                            let key = String::from_utf8_lossy(attr.key.as_ref()).into_owned();
                            let raw = String::from_utf8_lossy(&attr.value);
                            let value = quick_xml::escape::unescape(&raw).map_err(|e| {
                                ParseError::new(&place, format!("malformed attribute: {e}"))
                            })?;
                            attributes.push((key, value.into_owned()));
                        }
                        Ev::Start(Element {
                            name,
                            attributes,
                            place,
                            empty,
                        })
                    }
                    Event::End(_) => Ev::End,
                    Event::Text(text) => Ev::Text(
                        text.xml10_content()
                            .map_err(|e| ParseError::new(&place, format!("bad text: {e}")))?
                            .into_owned(),
                    ),
                    Event::CData(cdata) => Ev::Text(
                        cdata
                            .xml10_content()
                            .map_err(|e| ParseError::new(&place, format!("bad CDATA: {e}")))?
                            .into_owned(),
                    ),
                    Event::GeneralRef(reference) => {
                        let name = reference
                            .decode()
                            .map_err(|e| ParseError::new(&place, format!("bad reference: {e}")))?
                            .into_owned();
                        match reference.resolve_char_ref() {
                            Ok(Some(c)) => Ev::Text(c.to_string()),
                            Ok(None) => match quick_xml::escape::resolve_predefined_entity(&name) {
                                Some(s) => Ev::Text(s.to_owned()),
                                None => Ev::Text(format!("&{name};")),
                            },
                            Err(e) => {
                                return Err(ParseError::new(
                                    place,
                                    format!("bad character reference &{name};: {e}"),
                                ))
                            }
                        }
                    }
                    Event::Eof => Ev::Eof,
                    Event::Comment(_) | Event::Decl(_) | Event::PI(_) | Event::DocType(_) => {
                        continue
                    }
                };
                return Ok(ev);
            }
        }

        /// The next child element of the element last opened, or `None` when that element
        /// closes. A child that is not empty must then be read with [`Self::next_child`],
        /// [`Self::text`] or [`Self::skip`].
        pub fn next_child(&mut self) -> Result<Option<Element>, ParseError> {
            loop {
                match self.event()? {
                    Ev::Start(element) => {
                        if !element.empty {
                            self.open.push(element.name.clone());
                        }
                        return Ok(Some(element));
                    }
                    Ev::End => {
                        self.open.pop();
                        return Ok(None);
                    }
                    Ev::Text(_) => {}
                    Ev::Eof => return Err(self.truncated()),
                }
            }
        }

        /// The text of `element` (just returned by [`Self::next_child`]), trimmed: its text,
        /// CDATA and references, and those of any element inside it.
        pub fn text(&mut self, element: &Element) -> Result<String, ParseError> {
            let mut text = String::new();
            if element.empty {
                return Ok(text);
            }
            let depth = self.open.len();
            loop {
                match self.event()? {
                    Ev::Start(inner) => {
                        if !inner.empty {
                            self.open.push(inner.name);
                        }
                    }
                    Ev::End => {
                        self.open.pop();
                        if self.open.len() < depth {
                            break;
                        }
                    }
                    Ev::Text(t) => text.push_str(&t),
                    Ev::Eof => return Err(self.truncated()),
                }
            }
            let trimmed = text.trim();
            if trimmed.len() != text.len() {
                text = trimmed.to_owned();
            }
            Ok(text)
        }

        /// Reads past `element` (just returned by [`Self::next_child`]) and all it holds.
        pub fn skip(&mut self, element: &Element) -> Result<(), ParseError> {
            if element.empty {
                return Ok(());
            }
            let depth = self.open.len();
            loop {
                match self.event()? {
                    Ev::Start(inner) => {
                        if !inner.empty {
                            self.open.push(inner.name);
                        }
                    }
                    Ev::End => {
                        self.open.pop();
                        if self.open.len() < depth {
                            return Ok(());
                        }
                    }
                    Ev::Text(_) => {}
                    Ev::Eof => return Err(self.truncated()),
                }
            }
        }

        /// After the root closed: nothing but whitespace, comments and processing
        /// instructions may follow.
        pub fn finish(mut self) -> Result<(), ParseError> {
            loop {
                match self.event()? {
                    Ev::Eof => return Ok(()),
                    Ev::Text(t) if t.trim().is_empty() => {}
                    _ => {
                        return Err(ParseError::new(
                            self.place(),
                            format!("content after the root element <{}> closed", self.root),
                        ))
                    }
                }
            }
        }

        fn truncated(&self) -> ParseError {
            let innermost = self.open.last().map(String::as_str).unwrap_or(self.root);
            let message = if innermost == self.root {
                format!("the file ends before the <{}> element closes", self.root)
            } else {
                format!(
                    "the file ends before the <{innermost}> element (inside <{}>) closes",
                    self.root
                )
            };
            ParseError::new(self.place(), message)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Collected, Options, ParseError, Severity};
    use super::read;

    const SAMPLE: &str = include_str!("testdata/nessus_sample.nessus");

    fn collect(text: &str, options: &Options) -> Result<Collected, ParseError> {
        let mut sink = Collected::default();
        read(text.as_bytes(), options, &mut sink)?;
        Ok(sink)
    }

    fn date(y: i32, m: u32, d: u32) -> Option<chrono::NaiveDate> {
        chrono::NaiveDate::from_ymd_opt(y, m, d)
    }

    #[test]
    fn maps_report_items_to_findings() -> Result<(), ParseError> {
        let got = collect(SAMPLE, &Options::default())?;
        assert_eq!(got.scanner.as_deref(), Some("Nessus"));
        assert_eq!(got.hosts, ["web1.example.org", "10.0.0.6", "DBLEGACY"]);
        let keys: Vec<(&str, &str, Option<Severity>)> = got
            .findings
            .iter()
            .map(|f| (f.identifier.as_str(), f.asset.as_str(), f.severity))
            .collect();
        assert_eq!(
            keys,
            [
                (
                    "104743",
                    "web1.example.org:443/tcp",
                    Some(Severity::NessusHigh)
                ),
                (
                    "187315",
                    "web1.example.org:22/tcp",
                    Some(Severity::NessusCritical)
                ),
                ("85582", "10.0.0.6:80/tcp", Some(Severity::NessusMedium)),
                ("10884", "10.0.0.6:123/udp", Some(Severity::NessusLow)),
                ("73756", "DBLEGACY:1433/tcp", Some(Severity::NessusHigh)),
            ]
        );
        let Some(tls) = got.findings.first() else {
            panic!("no findings")
        };
        assert_eq!(tls.detector, "nessus");
        assert_eq!(tls.host, "web1.example.org");
        assert_eq!(tls.title, "TLS Version 1.0 Protocol Detection");
        assert_eq!(
            tls.description,
            "The remote service encrypts traffic using an older version of TLS.\n\n\
             The remote service accepts connections encrypted using TLS 1.0 & older <protocols>."
        );
        assert_eq!(tls.cvss3_base, Some(6.5));
        assert_eq!(tls.cvss4_base, None);
        assert_eq!(tls.seen_on, date(2026, 11, 3));
        assert_eq!(tls.place, "line 20, column 1");
        let detail = |k: &str| tls.details.get(k).map(String::as_str);
        assert_eq!(detail("plugin_output"), Some("TLSv1 is enabled & <weak>"));
        assert_eq!(detail("patch_publication_date"), Some("2020-03-31"));
        assert_eq!(detail("stig_severity"), Some("II"));
        assert_eq!(detail("iavm"), Some("IAVA:2020-A-0123, 2021-B-0001"));
        assert_eq!(detail("cvss_base_score"), Some("6.1"));
        assert_eq!(detail("fqdn"), Some("web1.example.org"));
        assert_eq!(detail("ip"), Some("10.0.0.5"));
        assert_eq!(detail("netbios"), Some("WEB1"));
        assert_eq!(detail("port"), Some("443"));
        assert_eq!(detail("protocol"), Some("tcp"));
        assert_eq!(detail("svc_name"), Some("www"));
        assert_eq!(detail("plugin_family"), Some("Service detection"));
        assert_eq!(detail("risk_factor"), Some("Medium"));

        let Some(ssh) = got.findings.get(1) else {
            panic!("no ssh finding")
        };
        assert_eq!(ssh.title, "OpenSSH < 9.6 Multiple Vulnerabilities");
        assert_eq!(
            ssh.cves,
            ["CVE-2023-48795", "CVE-2023-51385", "CVE-2023-51384"]
        );
        assert_eq!(
            ssh.details.get("unparsed_cves").map(String::as_str),
            Some("not-a-cve")
        );
        assert_eq!(ssh.cvss3_base, Some(9.8));
        assert_eq!(ssh.cvss4_base, Some(9.3));
        assert_eq!(
            ssh.details.get("iavm").map(String::as_str),
            Some("2024-A-0001")
        );
        assert_eq!(
            ssh.solution.as_deref(),
            Some("Upgrade to OpenSSH version 9.6 or later.")
        );

        // Only host-ip, and the date from HOST_END_TIMESTAMP.
        let Some(web) = got.findings.get(2) else {
            panic!("no clickjacking finding")
        };
        assert_eq!(web.host, "10.0.0.6");
        assert_eq!(web.seen_on, date(2026, 11, 5));
        assert_eq!(
            web.description,
            "The remote web server may fail to mitigate a class of web application vulnerabilities."
        );
        let Some(db) = got.findings.get(4) else {
            panic!("no db finding")
        };
        assert_eq!(db.seen_on, None);
        Ok(())
    }

    #[test]
    fn accounts_for_every_report_item() -> Result<(), ParseError> {
        let got = collect(SAMPLE, &Options::default())?;
        let items = SAMPLE.matches("<ReportItem ").count();
        assert_eq!(
            got.findings.len() + got.skipped.len() + got.unmapped.len(),
            items
        );
        assert_eq!(got.skipped.len(), 1);
        let Some(info) = got.skipped.first() else {
            panic!("nothing skipped")
        };
        assert_eq!(info.reason, "informational");
        assert_eq!(info.identifier.as_deref(), Some("19506"));
        assert_eq!(info.asset.as_deref(), Some("web1.example.org"));
        assert_eq!(info.detector.as_deref(), Some("nessus"));
        assert!(!info.fixed);
        let reasons: Vec<&str> = got.unmapped.iter().map(|u| u.reason.as_str()).collect();
        assert_eq!(
            reasons,
            [
                "the severity \"9\" is not one of 0, 1, 2, 3, 4",
                "the ReportItem has no pluginID"
            ]
        );
        assert!(got.unmapped.iter().all(|u| u.place.starts_with("line ")));
        Ok(())
    }

    /// An audit's compliance checks, all under plugin 21157 on port 0 as Nessus reports them
    /// (the `cm` namespace declared on `Report`, as Tenable's exports do): one finding per
    /// failed check, each its own key; a passed check is a fix seen; a warning and an error are
    /// listed as skipped; an unknown result is unmapped. Read from Tenable's documented
    /// `cm:compliance-*` elements, not from a file of ours alone: a real CIS audit export of
    /// 381 checks on 3 hosts became 3 items before (every check of a host one key).
    #[test]
    fn compliance_checks_are_one_finding_per_failed_check() -> Result<(), ParseError> {
        let check = |sev: u8, id: &str, name: &str, result: &str, reference: &str| {
            format!(
                "<ReportItem port=\"0\" svc_name=\"general\" protocol=\"tcp\" severity=\"{sev}\" \
                 pluginID=\"21157\" pluginName=\"Unix Compliance Checks\" pluginFamily=\"Policy Compliance\">\
                 <description>\"{name}\" : [{result}]</description>\
                 <cm:compliance-audit-file>CIS_Demo_L1.audit</cm:compliance-audit-file>\
                 <cm:compliance-check-id>{id}</cm:compliance-check-id>\
                 <cm:compliance-check-name>{name}</cm:compliance-check-name>\
                 <cm:compliance-info>Why {name} matters.</cm:compliance-info>\
                 <cm:compliance-solution>Fix {name}.</cm:compliance-solution>\
                 <cm:compliance-actual-value>found 0 &amp; nothing</cm:compliance-actual-value>\
                 <cm:compliance-policy-value>expect: 1</cm:compliance-policy-value>\
                 <cm:compliance-reference>{reference}</cm:compliance-reference>\
                 <cm:compliance-result>{result}</cm:compliance-result>\
                 </ReportItem>"
            )
        };
        let items = [
            check(3, "aa11", "1.1.12 Ensure separate partition exists for /var/log/audit", "FAILED",
                  "800-171|3.3.8, 800-53|AU-9, 800-53|CM-6, CSCv7|6.4, LEVEL|2S"),
            check(3, "bb22", "WN10-00-000005 - Domain-joined systems must use Enterprise", "FAILED",
                  "CAT|II, CCI|CCI-000366, Rule-ID|SV-220697r569187_rule, STIG-ID|WN10-00-000005, Vuln-ID|V-220697"),
            check(1, "cc33", "1.2 Ensure updates are installed", "PASSED", "800-53|SI-2"),
            check(2, "dd44", "1.3 Ensure the FAT module is limited", "WARNING", "800-53|CM-6"),
            check(2, "ee55", "1.4 Ensure a check that cannot run", "ERROR", ""),
            check(2, "ff66", "1.5 Ensure something odd", "SKIPPED-ISH", ""),
            // Not a compliance check: a plugin finding on the same host, keyed as before.
            "<ReportItem port=\"0\" protocol=\"tcp\" severity=\"2\" pluginID=\"12345\" pluginName=\"p\"/>".to_owned(),
        ];
        let text = format!(
            "<?xml version=\"1.0\" ?><NessusClientData_v2>\
             <Report name=\"CIS\" xmlns:cm=\"http://www.nessus.org/cm\">\
             <ReportHost name=\"10.0.0.9\"><HostProperties><tag name=\"host-fqdn\">db9.example.org</tag></HostProperties>\
             {}</ReportHost></Report></NessusClientData_v2>",
            items.concat()
        );
        let got = collect(&text, &Options::default())?;
        let keys: Vec<(&str, &str)> = got
            .findings
            .iter()
            .map(|f| (f.identifier.as_str(), f.title.as_str()))
            .collect();
        assert_eq!(
            keys,
            [
                (
                    "21157:aa11",
                    "1.1.12 Ensure separate partition exists for /var/log/audit"
                ),
                (
                    "21157:bb22",
                    "WN10-00-000005 - Domain-joined systems must use Enterprise"
                ),
                ("12345", "p"),
            ]
        );
        let Some(first) = got.findings.first() else {
            panic!("no finding")
        };
        assert_eq!(first.asset, "db9.example.org");
        assert_eq!(first.severity, Some(Severity::NessusHigh));
        assert_eq!(first.controls, ["3.3.8", "AU-9", "CM-6"]);
        assert!(first.ccis.is_empty());
        assert_eq!(
            first.description,
            "Why 1.1.12 Ensure separate partition exists for /var/log/audit matters."
        );
        assert_eq!(
            first.solution.as_deref(),
            Some("Fix 1.1.12 Ensure separate partition exists for /var/log/audit.")
        );
        let detail = |f: &super::super::Finding, k: &str| f.details.get(k).cloned();
        assert_eq!(
            detail(first, "compliance_result").as_deref(),
            Some("FAILED")
        );
        assert_eq!(
            detail(first, "audit_file").as_deref(),
            Some("CIS_Demo_L1.audit")
        );
        assert_eq!(
            detail(first, "actual_value").as_deref(),
            Some("found 0 & nothing")
        );
        assert_eq!(detail(first, "policy_value").as_deref(), Some("expect: 1"));
        assert_eq!(detail(first, "check_id").as_deref(), Some("aa11"));
        let Some(stig) = got.findings.get(1) else {
            panic!("no second finding")
        };
        assert_eq!(stig.ccis, ["CCI-000366"]);
        assert!(stig.controls.is_empty());
        assert_eq!(detail(stig, "vuln_id").as_deref(), Some("V-220697"));
        assert_eq!(detail(stig, "stig_id").as_deref(), Some("WN10-00-000005"));
        assert_eq!(
            detail(stig, "rule_id").as_deref(),
            Some("SV-220697r569187_rule")
        );

        let skipped: Vec<(Option<&str>, &str, bool)> = got
            .skipped
            .iter()
            .map(|s| (s.identifier.as_deref(), s.reason.as_str(), s.fixed))
            .collect();
        assert_eq!(
            skipped,
            [
                (Some("21157:cc33"), "passed", true),
                (Some("21157:dd44"), "needs_review", false),
                (Some("21157:ee55"), "check_error", false),
            ]
        );
        let reasons: Vec<&str> = got.unmapped.iter().map(|u| u.reason.as_str()).collect();
        assert_eq!(
            reasons,
            ["the compliance result \"SKIPPED-ISH\" is not one of FAILED, PASSED, WARNING, ERROR"]
        );
        assert_eq!(
            got.findings.len() + got.skipped.len() + got.unmapped.len(),
            items.len()
        );
        Ok(())
    }

    #[test]
    fn keeps_informational_when_asked() -> Result<(), ParseError> {
        let options = Options {
            include_informational: true,
            ..Options::default()
        };
        let got = collect(SAMPLE, &options)?;
        assert!(got.skipped.is_empty());
        let Some(info) = got.findings.first() else {
            panic!("no findings")
        };
        assert_eq!(info.identifier, "19506");
        assert_eq!(info.severity, Some(Severity::Info));
        assert_eq!(info.asset, "web1.example.org");
        assert_eq!(got.findings.len(), 6);
        Ok(())
    }

    #[test]
    fn a_truncated_file_is_an_error() {
        for cut in [SAMPLE.len() / 2, SAMPLE.len() / 3, SAMPLE.len() - 10] {
            let Some(half) = SAMPLE.get(..cut) else {
                panic!("cut inside a character")
            };
            let result = collect(half, &Options::default());
            let Err(e) = result else {
                panic!("a truncated file was read")
            };
            assert!(e.place.starts_with("line "), "{e}");
            assert!(e.message.contains("the file ends before"), "{e}");
        }
    }

    #[test]
    fn a_mismatched_tag_is_an_error_with_its_line() {
        let text = "<NessusClientData_v2>\n<Report>\n<ReportHost name=\"a\">\n</Report>";
        let Err(e) = collect(text, &Options::default()) else {
            panic!("malformed XML was read")
        };
        assert!(e.place.starts_with("line 4"), "{e}");
    }

    #[test]
    fn another_format_is_refused_by_its_root() {
        let ckl = "<?xml version=\"1.0\"?>\n<CHECKLIST><ASSET/></CHECKLIST>";
        let Err(e) = collect(ckl, &Options::default()) else {
            panic!("a checklist was read as Nessus")
        };
        assert_eq!(e.place, "line 2, column 1");
        assert!(e.message.contains("<NessusClientData_v2>"), "{e}");
        assert!(collect("", &Options::default()).is_err());
        assert!(collect("{\"stigs\": []}", &Options::default()).is_err());
    }

    #[test]
    fn places_name_line_and_column() -> Result<(), ParseError> {
        let text =
            "<NessusClientData_v2>\r\n  <Report name=\"r\">\n    <ReportHost name=\"h\">\n      \
                    <ReportItem port=\"0\" severity=\"1\" pluginID=\"7\" pluginName=\"p\"/>\
                    <ReportItem port=\"0\" severity=\"1\" pluginID=\"8\" pluginName=\"q\"/>\n\
                    </ReportHost></Report></NessusClientData_v2>";
        let got = collect(text, &Options::default())?;
        let places: Vec<&str> = got.findings.iter().map(|f| f.place.as_str()).collect();
        assert_eq!(places, ["line 4, column 7", "line 4, column 70"]);
        Ok(())
    }

    #[test]
    fn an_empty_host_is_in_scope() -> Result<(), ParseError> {
        let text = "<NessusClientData_v2><Report name=\"r\"><ReportHost name=\"10.1.1.1\">\
                    <HostProperties><tag name=\"host-ip\">10.1.1.1</tag></HostProperties>\
                    </ReportHost></Report></NessusClientData_v2>";
        let got = collect(text, &Options::default())?;
        assert_eq!(got.hosts, ["10.1.1.1"]);
        assert!(got.findings.is_empty());
        Ok(())
    }

    #[test]
    fn long_plugin_output_is_clipped() -> Result<(), ParseError> {
        let output = "x".repeat(5_000);
        let text = format!(
            "<NessusClientData_v2><Report name=\"r\"><ReportHost name=\"h\">\
             <ReportItem port=\"0\" protocol=\"tcp\" severity=\"2\" pluginID=\"1\" pluginName=\"p\">\
             <plugin_output>{output}</plugin_output></ReportItem>\
             </ReportHost></Report></NessusClientData_v2>"
        );
        let got = collect(&text, &Options::default())?;
        let Some(f) = got.findings.first() else {
            panic!("no finding")
        };
        let clipped = f.details.get("plugin_output").cloned().unwrap_or_default();
        assert_eq!(clipped.chars().count(), 4_001);
        assert!(clipped.ends_with('…'));
        assert_eq!(f.asset, "h");
        Ok(())
    }

    #[test]
    fn reads_a_large_file_item_by_item() -> Result<(), ParseError> {
        let mut text = String::from(
            "<?xml version=\"1.0\" ?>\n<NessusClientData_v2>\n<Report name=\"big\">\n",
        );
        for host in 0..20 {
            text.push_str(&format!(
                "<ReportHost name=\"10.2.0.{host}\"><HostProperties>\
                 <tag name=\"host-ip\">10.2.0.{host}</tag></HostProperties>\n"
            ));
            for item in 0..100 {
                text.push_str(&format!(
                    "<ReportItem port=\"{}\" svc_name=\"x\" protocol=\"tcp\" severity=\"{}\" \
                     pluginID=\"{}\" pluginName=\"Plugin {item}\" pluginFamily=\"General\">\n\
                     <synopsis>s</synopsis><description>d</description>\
                     <cve>CVE-2024-{:04}</cve><plugin_output>{}</plugin_output></ReportItem>\n",
                    1000 + item,
                    1 + item % 4,
                    100_000 + item,
                    item + 1000,
                    "output ".repeat(50)
                ));
            }
            text.push_str("</ReportHost>\n");
        }
        text.push_str("</Report>\n</NessusClientData_v2>\n");
        let reader = std::io::BufReader::with_capacity(4096, text.as_bytes());
        let mut sink = Collected::default();
        read(reader, &Options::default(), &mut sink)?;
        assert_eq!(sink.findings.len(), 2_000);
        assert_eq!(sink.hosts.len(), 20);
        let Some(last) = sink.findings.last() else {
            panic!("no findings")
        };
        assert_eq!(last.asset, "10.2.0.19:1099/tcp");
        let line = 4 + 19 * 202 + 1 + 99 * 2;
        assert_eq!(last.place, format!("line {line}, column 1"));
        Ok(())
    }
}
