//! STIG Viewer 2 checklists (`.ckl`, XML, root `<CHECKLIST>`): one finding per `Open` rule
//! (`VULN`) of each `iSTIG`, on the checklist's target host. Rules that are `NotAFinding`,
//! `Not_Applicable` or `Not_Reviewed` are skipped with that reason; a `NotAFinding` rule is a
//! fix seen. The file is streamed: only the asset, the current STIG's information and the
//! current rule are held.

use super::nessus::{clip, xml, CLIP};
use super::{Finding, Options, ParseError, Severity, Sink, Skipped, Unmapped};
use std::collections::BTreeMap;
use std::io::BufRead;

const ROOT: &str = "CHECKLIST";

/// Reads a STIG Viewer 2 checklist into `sink`.
pub fn read<R: BufRead>(
    input: R,
    options: &Options,
    sink: &mut dyn Sink,
) -> Result<(), ParseError> {
    let (mut xml, root) = xml::XmlReader::open(input, ROOT)?;
    sink.scanner("STIG Viewer (CKL)");
    if root.empty {
        return Ok(());
    }
    let mut target = Target::given(options);
    while let Some(child) = xml.next_child()? {
        match child.name.as_str() {
            "ASSET" if !child.empty => {
                while let Some(field) = xml.next_child()? {
                    let value = xml.text(&field)?;
                    match field.name.as_str() {
                        "HOST_NAME" => target.host_name = value,
                        "HOST_IP" => target.ip = value,
                        "HOST_FQDN" => target.fqdn = value,
                        _ => {}
                    }
                }
                target.announce(sink);
            }
            "STIGS" if !child.empty => {
                while let Some(stig) = xml.next_child()? {
                    if stig.name == "iSTIG" {
                        read_stig(&mut xml, &stig, &mut target, sink)?;
                    } else {
                        xml.skip(&stig)?;
                    }
                }
            }
            _ => xml.skip(&child)?,
        }
    }
    xml.finish()
}

/// A checklist's target: the host its rules were checked on.
#[derive(Debug, Default)]
pub(super) struct Target {
    pub host_name: String,
    pub ip: String,
    pub fqdn: String,
    /// The host the importer named for a checklist that names none ([`Options::host`]).
    pub given: String,
    announced: bool,
}

impl Target {
    /// The FQDN, else the host name, else the IP, else the host the importer named; none when
    /// neither the checklist nor the importer names one.
    pub fn host(&self) -> Option<&str> {
        [&self.fqdn, &self.host_name, &self.ip, &self.given]
            .into_iter()
            .map(|s| s.trim())
            .find(|s| !s.is_empty())
    }

    /// A target with nothing read yet but the host the importer named.
    pub fn given(options: &Options) -> Self {
        Target {
            given: options.host.clone().unwrap_or_default(),
            ..Target::default()
        }
    }

    /// Tells the sink the host once, when there is one.
    pub fn announce(&mut self, sink: &mut dyn Sink) {
        if self.announced {
            return;
        }
        if let Some(host) = self.host() {
            sink.host(host);
            self.announced = true;
        }
    }

    fn put_details(&self, details: &mut BTreeMap<String, String>) {
        put(details, "fqdn", &self.fqdn);
        put(details, "ip", &self.ip);
        put(details, "host_name", &self.host_name);
    }
}

/// A STIG's identity: `stigid`, title and release.
#[derive(Debug, Default)]
pub(super) struct Stig {
    pub id: String,
    pub title: String,
    pub release: String,
}

impl Stig {
    pub fn detector(&self) -> String {
        if self.id.trim().is_empty() {
            "stig".to_owned()
        } else {
            format!("stig:{}", self.id.trim())
        }
    }
}

/// One rule of a checklist, as either format gives it.
#[derive(Debug, Default)]
pub(super) struct Rule {
    pub vuln_id: String,
    pub rule_id: String,
    pub rule_version: String,
    pub rule_title: String,
    pub group_title: String,
    pub discussion: String,
    pub check_content: String,
    pub fix_text: String,
    pub severity: String,
    pub ccis: Vec<String>,
    pub status: String,
    pub finding_details: String,
    pub comments: String,
    pub severity_override: String,
    pub severity_justification: String,
}

/// What a checklist status means: a finding, or a skip with its reason and whether it is a fix.
enum Status {
    Open,
    Skip(&'static str, bool),
}

/// Both formats' spellings: `Open` / `open`, `NotAFinding` / `not_a_finding`…
fn status(raw: &str) -> Option<Status> {
    let key: String = raw
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_ascii_lowercase();
    match key.as_str() {
        "open" => Some(Status::Open),
        "notafinding" => Some(Status::Skip("not_a_finding", true)),
        "notapplicable" => Some(Status::Skip("not_applicable", false)),
        "notreviewed" => Some(Status::Skip("not_reviewed", false)),
        _ => None,
    }
}

/// `high` → CAT I, `medium` → CAT II, `low` → CAT III.
fn severity(raw: &str) -> Option<Severity> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "high" | "cat i" | "cat1" | "i" => Some(Severity::Cat1),
        "medium" | "cat ii" | "cat2" | "ii" => Some(Severity::Cat2),
        "low" | "cat iii" | "cat3" | "iii" => Some(Severity::Cat3),
        _ => None,
    }
}

fn put(details: &mut BTreeMap<String, String>, key: &str, value: &str) {
    let value = value.trim();
    if !value.is_empty() {
        details.insert(key.to_owned(), value.to_owned());
    }
}

/// Maps one rule to a finding, a skip or an unmapped element (`element` names it).
pub(super) fn map_rule(
    rule: &Rule,
    stig: &Stig,
    target: &Target,
    place: String,
    element: &str,
    sink: &mut dyn Sink,
) {
    let Some(host) = target.host() else {
        sink.unmapped(Unmapped {
            place,
            element: element.to_owned(),
            reason: "the checklist names no target host (name one with the `host` parameter)"
                .into(),
        });
        return;
    };
    let vuln_id = rule.vuln_id.trim();
    if vuln_id.is_empty() {
        sink.unmapped(Unmapped {
            place,
            element: element.to_owned(),
            reason: "the rule has no Vuln id (group id)".into(),
        });
        return;
    }
    let detector = stig.detector();
    match status(&rule.status) {
        None => {
            sink.unmapped(Unmapped {
                place,
                element: format!("{element} {vuln_id}"),
                reason: format!("the status \"{}\" is not known", rule.status.trim()),
            });
        }
        Some(Status::Skip(reason, fixed)) => sink.skipped(Skipped {
            place,
            detector: Some(detector),
            identifier: Some(vuln_id.to_owned()),
            asset: Some(host.to_owned()),
            reason: reason.to_owned(),
            fixed,
        }),
        Some(Status::Open) => {
            let mut details = BTreeMap::new();
            put(&mut details, "rule_id", &rule.rule_id);
            put(&mut details, "stig_rule_version", &rule.rule_version);
            put(&mut details, "vuln_id", vuln_id);
            put(&mut details, "stig_id", &stig.id);
            put(&mut details, "stig_title", &stig.title);
            put(&mut details, "stig_release", &stig.release);
            put(
                &mut details,
                "check_content",
                &clip(rule.check_content.trim(), CLIP),
            );
            put(&mut details, "finding_details", &rule.finding_details);
            put(&mut details, "comments", &rule.comments);
            put(&mut details, "status", &rule.status);
            put(&mut details, "severity_override", &rule.severity_override);
            put(
                &mut details,
                "severity_justification",
                &rule.severity_justification,
            );
            target.put_details(&mut details);
            let stated = if rule.severity_override.trim().is_empty() {
                &rule.severity
            } else {
                &rule.severity_override
            };
            let severity = severity(stated);
            if severity.is_none() {
                put(&mut details, "severity", stated);
            }
            let title = [&rule.rule_title, &rule.group_title]
                .into_iter()
                .map(|s| s.trim())
                .find(|s| !s.is_empty())
                .unwrap_or(vuln_id)
                .to_owned();
            let mut ccis: Vec<String> = Vec::new();
            for cci in &rule.ccis {
                let cci = cci.trim().to_ascii_uppercase();
                if !cci.is_empty() && !ccis.contains(&cci) {
                    ccis.push(cci);
                }
            }
            let fix = rule.fix_text.trim();
            sink.finding(Finding {
                detector,
                identifier: vuln_id.to_owned(),
                asset: host.to_owned(),
                host: host.to_owned(),
                title,
                description: rule.discussion.trim().to_owned(),
                severity,
                cves: Vec::new(),
                controls: Vec::new(),
                ccis,
                cvss3_base: None,
                cvss4_base: None,
                solution: (!fix.is_empty()).then(|| fix.to_owned()),
                seen_on: None,
                details,
                place,
            });
        }
    }
}

fn read_stig<R: BufRead>(
    xml: &mut xml::XmlReader<R>,
    element: &xml::Element,
    target: &mut Target,
    sink: &mut dyn Sink,
) -> Result<(), ParseError> {
    let mut stig = Stig::default();
    if element.empty {
        return Ok(());
    }
    while let Some(child) = xml.next_child()? {
        match child.name.as_str() {
            "STIG_INFO" if !child.empty => {
                while let Some(si) = xml.next_child()? {
                    if si.name != "SI_DATA" || si.empty {
                        xml.skip(&si)?;
                        continue;
                    }
                    let (mut name, mut data) = (String::new(), String::new());
                    while let Some(field) = xml.next_child()? {
                        match field.name.as_str() {
                            "SID_NAME" => name = xml.text(&field)?,
                            "SID_DATA" => data = xml.text(&field)?,
                            _ => xml.skip(&field)?,
                        }
                    }
                    match name.as_str() {
                        "stigid" => stig.id = data,
                        "title" => stig.title = data,
                        "releaseinfo" => stig.release = data,
                        _ => {}
                    }
                }
            }
            "VULN" => {
                let rule = read_vuln(xml, &child)?;
                target.announce(sink);
                map_rule(&rule, &stig, target, child.place.clone(), "VULN", sink);
            }
            _ => xml.skip(&child)?,
        }
    }
    Ok(())
}

fn read_vuln<R: BufRead>(
    xml: &mut xml::XmlReader<R>,
    element: &xml::Element,
) -> Result<Rule, ParseError> {
    let mut rule = Rule::default();
    if element.empty {
        return Ok(rule);
    }
    while let Some(child) = xml.next_child()? {
        match child.name.as_str() {
            "STIG_DATA" if !child.empty => {
                let (mut attribute, mut data) = (String::new(), String::new());
                while let Some(field) = xml.next_child()? {
                    match field.name.as_str() {
                        "VULN_ATTRIBUTE" => attribute = xml.text(&field)?,
                        "ATTRIBUTE_DATA" => data = xml.text(&field)?,
                        _ => xml.skip(&field)?,
                    }
                }
                let slot = match attribute.as_str() {
                    "Vuln_Num" => &mut rule.vuln_id,
                    "Rule_ID" => &mut rule.rule_id,
                    "Rule_Ver" => &mut rule.rule_version,
                    "Rule_Title" => &mut rule.rule_title,
                    "Group_Title" => &mut rule.group_title,
                    "Vuln_Discuss" => &mut rule.discussion,
                    "Check_Content" => &mut rule.check_content,
                    "Fix_Text" => &mut rule.fix_text,
                    "Severity" => &mut rule.severity,
                    "CCI_REF" => {
                        rule.ccis.push(data);
                        continue;
                    }
                    _ => continue,
                };
                *slot = data;
            }
            "STATUS" => rule.status = xml.text(&child)?,
            "FINDING_DETAILS" => rule.finding_details = xml.text(&child)?,
            "COMMENTS" => rule.comments = xml.text(&child)?,
            "SEVERITY_OVERRIDE" => rule.severity_override = xml.text(&child)?,
            "SEVERITY_JUSTIFICATION" => rule.severity_justification = xml.text(&child)?,
            _ => xml.skip(&child)?,
        }
    }
    Ok(rule)
}

#[cfg(test)]
mod tests {
    use super::super::{Collected, Options, ParseError, Severity};
    use super::read;

    const SAMPLE: &str = include_str!("testdata/ckl_sample.ckl");

    fn collect(text: &str) -> Result<Collected, ParseError> {
        let mut sink = Collected::default();
        read(text.as_bytes(), &Options::default(), &mut sink)?;
        Ok(sink)
    }

    #[test]
    fn maps_open_rules_to_findings() -> Result<(), ParseError> {
        let got = collect(SAMPLE)?;
        assert_eq!(got.scanner.as_deref(), Some("STIG Viewer (CKL)"));
        assert_eq!(got.hosts, ["web1.example.org"]);
        let keys: Vec<(&str, &str, &str, Option<Severity>)> = got
            .findings
            .iter()
            .map(|f| {
                (
                    f.detector.as_str(),
                    f.identifier.as_str(),
                    f.asset.as_str(),
                    f.severity,
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
                    Some(Severity::Cat1)
                ),
                (
                    "stig:RHEL_8_STIG",
                    "V-230222",
                    "web1.example.org",
                    Some(Severity::Cat3)
                ),
                ("stig", "V-214228", "web1.example.org", Some(Severity::Cat2)),
            ]
        );
        let Some(first) = got.findings.first() else {
            panic!("no findings")
        };
        assert_eq!(first.title, "RHEL 8 must be a vendor-supported release.");
        assert_eq!(
            first.description,
            "Discussion of V-230221 & why it matters."
        );
        assert_eq!(first.ccis, ["CCI-000366"]);
        assert_eq!(
            first.solution.as_deref(),
            Some("Configure the system for V-230221.")
        );
        assert_eq!(first.host, "web1.example.org");
        assert_eq!(first.place, "line 65, column 4");
        let detail = |k: &str| first.details.get(k).map(String::as_str);
        assert_eq!(detail("rule_id"), Some("SV-230221r858734_rule"));
        assert_eq!(detail("stig_rule_version"), Some("RHEL-08-010000"));
        assert_eq!(detail("vuln_id"), Some("V-230221"));
        assert_eq!(detail("stig_id"), Some("RHEL_8_STIG"));
        assert_eq!(
            detail("stig_title"),
            Some("Red Hat Enterprise Linux 8 Security Technical Implementation Guide")
        );
        assert_eq!(
            detail("stig_release"),
            Some("Release: 12 Benchmark Date: 25 Oct 2023")
        );
        assert_eq!(
            detail("check_content"),
            Some("Verify <setting> for V-230221.")
        );
        assert_eq!(detail("finding_details"), Some("Release is 8.2 < 8.8"));
        assert_eq!(detail("comments"), Some("Upgrade planned <Q3>"));
        assert_eq!(detail("status"), Some("Open"));
        assert_eq!(detail("fqdn"), Some("web1.example.org"));
        assert_eq!(detail("ip"), Some("10.0.0.5"));
        assert_eq!(detail("host_name"), Some("web1"));
        assert_eq!(detail("severity_override"), None);

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
        let Some(apache) = got.findings.get(2) else {
            panic!("no third finding")
        };
        assert_eq!(
            apache.details.get("stig_title").map(String::as_str),
            Some("Apache Server 2.4 UNIX Server Security Technical Implementation Guide")
        );
        assert_eq!(apache.details.get("stig_id"), None);
        Ok(())
    }

    #[test]
    fn accounts_for_every_rule() -> Result<(), ParseError> {
        let got = collect(SAMPLE)?;
        let vulns = SAMPLE.matches("<VULN>").count();
        assert_eq!(vulns, 8);
        assert_eq!(
            got.findings.len() + got.skipped.len() + got.unmapped.len(),
            vulns
        );
        let skipped: Vec<(&str, &str, bool)> = got
            .skipped
            .iter()
            .map(|s| {
                (
                    s.identifier.as_deref().unwrap_or_default(),
                    s.reason.as_str(),
                    s.fixed,
                )
            })
            .collect();
        assert_eq!(
            skipped,
            [
                ("V-230223", "not_a_finding", true),
                ("V-230224", "not_applicable", false),
                ("V-230225", "not_reviewed", false),
            ]
        );
        assert!(got
            .skipped
            .iter()
            .all(|s| s.asset.as_deref() == Some("web1.example.org")
                && s.detector.as_deref() == Some("stig:RHEL_8_STIG")));
        let unmapped: Vec<&str> = got.unmapped.iter().map(|u| u.reason.as_str()).collect();
        assert_eq!(
            unmapped,
            [
                "the status \"Pending\" is not known",
                "the rule has no Vuln id (group id)"
            ]
        );
        assert_eq!(
            got.unmapped.first().map(|u| u.place.as_str()),
            Some("line 166, column 4")
        );
        Ok(())
    }

    #[test]
    fn a_checklist_without_a_host_maps_nothing() -> Result<(), ParseError> {
        let text = SAMPLE
            .replace("<HOST_NAME>web1</HOST_NAME>", "<HOST_NAME/>")
            .replace("<HOST_IP>10.0.0.5</HOST_IP>", "<HOST_IP></HOST_IP>")
            .replace(
                "<HOST_FQDN>web1.example.org</HOST_FQDN>",
                "<HOST_FQDN> </HOST_FQDN>",
            );
        let got = collect(&text)?;
        assert!(got.hosts.is_empty());
        assert!(got.findings.is_empty());
        assert!(got.skipped.is_empty());
        assert_eq!(got.unmapped.len(), 8);
        assert!(got.unmapped.iter().all(|u| u.reason
            == "the checklist names no target host (name one with the `host` parameter)"));
        Ok(())
    }

    #[test]
    fn the_host_falls_back_to_name_then_ip() -> Result<(), ParseError> {
        let no_fqdn = SAMPLE.replace("<HOST_FQDN>web1.example.org</HOST_FQDN>", "");
        assert_eq!(collect(&no_fqdn)?.hosts, ["web1"]);
        let only_ip = no_fqdn.replace("<HOST_NAME>web1</HOST_NAME>", "<HOST_NAME></HOST_NAME>");
        let got = collect(&only_ip)?;
        assert_eq!(got.hosts, ["10.0.0.5"]);
        assert!(got.findings.iter().all(|f| f.asset == "10.0.0.5"));
        Ok(())
    }

    #[test]
    fn a_truncated_checklist_is_an_error() {
        for cut in [SAMPLE.len() / 2, SAMPLE.len() / 5, SAMPLE.len() - 3] {
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
    fn another_format_is_refused_by_its_root() {
        let nessus =
            "<?xml version=\"1.0\"?>\n<NessusClientData_v2><Report/></NessusClientData_v2>";
        let Err(e) = collect(nessus) else {
            panic!("a Nessus file was read as a checklist")
        };
        assert!(e.message.contains("expected <CHECKLIST>"), "{e}");
        assert_eq!(e.place, "line 2, column 1");
        assert!(collect("not xml at all").is_err());
    }
}
