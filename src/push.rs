//! `poam push`: a thin client that uploads scanner files to a running service's
//! `POST /v1/systems/{id}/imports/{format}` and prints what became of each.
//!
//! The token is read from a file and only ever sent in the `Authorization` header: it is
//! never printed, logged or put in a URL.

use serde_json::Value;
use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The most failed results listed per file; the rest are counted.
const FAILED_SHOWN: usize = 20;

/// A scan file format the service imports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ScanFormat {
    Nessus,
    Ckl,
    Cklb,
    Sarif,
    Csv,
}

impl ScanFormat {
    /// The path segment of the import endpoint.
    pub fn as_str(self) -> &'static str {
        match self {
            ScanFormat::Nessus => "nessus",
            ScanFormat::Ckl => "ckl",
            ScanFormat::Cklb => "cklb",
            ScanFormat::Sarif => "sarif",
            ScanFormat::Csv => "csv",
        }
    }

    /// The request's `Content-Type`.
    pub fn media_type(self) -> &'static str {
        match self {
            ScanFormat::Nessus | ScanFormat::Ckl => "application/xml",
            ScanFormat::Cklb => "application/json",
            ScanFormat::Sarif => "application/sarif+json",
            ScanFormat::Csv => "text/csv",
        }
    }

    /// The format a file name's extension names: `.nessus`, `.ckl`, `.cklb`, `.sarif` or
    /// `.sarif.json`, `.csv` (any case).
    pub fn from_name(path: &Path) -> Option<ScanFormat> {
        let name = path.file_name()?.to_string_lossy().to_ascii_lowercase();
        if name.ends_with(".sarif.json") {
            return Some(ScanFormat::Sarif);
        }
        let (_, ext) = name.rsplit_once('.')?;
        match ext {
            "nessus" => Some(ScanFormat::Nessus),
            "ckl" => Some(ScanFormat::Ckl),
            "cklb" => Some(ScanFormat::Cklb),
            "sarif" => Some(ScanFormat::Sarif),
            "csv" => Some(ScanFormat::Csv),
            _ => None,
        }
    }
}

/// A CSV column-mapping preset the service knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Preset {
    #[value(name = "tenable_sc")]
    TenableSc,
    #[value(name = "qualys")]
    Qualys,
}

impl Preset {
    fn as_str(self) -> &'static str {
        match self {
            Preset::TenableSc => "tenable_sc",
            Preset::Qualys => "qualys",
        }
    }
}

/// `poam push`'s arguments.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Exit status: 0 when every file was imported with no failed finding; 1 when a file \
                  was refused (or could not be sent) or a finding failed; 2 for a usage error. \
                  Every file is tried even after a failure."
)]
pub struct PushArgs {
    /// The service's base URL, e.g. https://poam.example.org (a trailing `/` is fine).
    #[arg(long, value_name = "URL")]
    pub server: String,
    /// A file holding the bearer token (an editor's); it is never printed.
    #[arg(long, value_name = "FILE")]
    pub token_file: PathBuf,
    /// The id of the system the findings belong to.
    #[arg(long, value_name = "ID")]
    pub system: String,
    /// The files' format, for every file [default: from each file's extension: .nessus, .ckl,
    /// .cklb, .sarif or .sarif.json, .csv].
    #[arg(long, value_enum)]
    pub format: Option<ScanFormat>,
    /// CSV only: a preset column mapping.
    #[arg(long, value_enum, conflicts_with = "mapping_file")]
    pub preset: Option<Preset>,
    /// CSV only: a JSON file holding the column mapping ({"scanner": "…", "identifier":
    /// "Plugin", "asset": "IP Address", …}) [default: the preset, else the system's saved one].
    #[arg(long, value_name = "FILE")]
    pub mapping_file: Option<PathBuf>,
    /// Keep informational findings (Nessus severity 0, SARIF `none`) as items [default: the
    /// system's setting, else no].
    #[arg(long)]
    pub include_informational: bool,
    /// The longest a file's upload and import may take, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 600)]
    pub timeout: u64,
    /// The scan files to upload, in order.
    #[arg(value_name = "FILE", required = true)]
    pub files: Vec<PathBuf>,
}

/// Why a file was not imported cleanly.
enum Outcome {
    /// Imported, no failed finding.
    Clean,
    /// Refused, not sent, or imported with failed findings (already reported).
    Failed,
}

/// Runs the command; returns the exit status (0, 1 or 2).
pub fn run(args: &PushArgs) -> u8 {
    let plan = match prepare(args) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(plan.timeout))
        .user_agent(concat!("poam-push/", env!("CARGO_PKG_VERSION")))
        .build();
    let progress = std::io::stderr().is_terminal();
    let mut failed = false;
    for (path, format) in &plan.files {
        match push_file(&agent, &plan, path, *format, progress) {
            Outcome::Clean => {}
            Outcome::Failed => failed = true,
        }
    }
    u8::from(failed)
}

/// What the arguments resolve to before anything is sent.
struct Plan {
    /// The base URL without a trailing `/`.
    server: String,
    token: String,
    system: String,
    files: Vec<(PathBuf, ScanFormat)>,
    preset: Option<Preset>,
    /// The mapping file's JSON, compact.
    mapping: Option<String>,
    include_informational: bool,
    timeout: u64,
}

/// Checks the arguments and reads the token and mapping files: a usage error otherwise.
fn prepare(args: &PushArgs) -> Result<Plan, String> {
    let server = args.server.trim().trim_end_matches('/').to_owned();
    if !(server.starts_with("http://") || server.starts_with("https://")) {
        return Err(format!(
            "--server: `{}` is not an http:// or https:// URL",
            args.server
        ));
    }
    let system = args.system.trim().to_owned();
    if system.parse::<uuid::Uuid>().is_err() {
        return Err(format!("--system: `{system}` is not a system id"));
    }
    if args.timeout == 0 {
        return Err("--timeout must be at least 1 second".into());
    }
    // The error names the file, never its content.
    let token = std::fs::read_to_string(&args.token_file)
        .map_err(|e| {
            format!(
                "--token-file: cannot read {}: {e}",
                args.token_file.display()
            )
        })?
        .trim()
        .to_owned();
    if token.is_empty() {
        return Err(format!(
            "--token-file: {} is empty",
            args.token_file.display()
        ));
    }
    if token.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "--token-file: {} holds more than one token (or spaces within it)",
            args.token_file.display()
        ));
    }
    let mapping = match &args.mapping_file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("--mapping-file: cannot read {}: {e}", path.display()))?;
            let json: Value = serde_json::from_str(&text)
                .map_err(|e| format!("--mapping-file: {} is not JSON: {e}", path.display()))?;
            if !json.is_object() {
                return Err(format!(
                    "--mapping-file: {} must hold a JSON object",
                    path.display()
                ));
            }
            Some(json.to_string())
        }
        None => None,
    };
    let mut files = Vec::with_capacity(args.files.len());
    let mut unknown = Vec::new();
    for path in &args.files {
        match args.format.or_else(|| ScanFormat::from_name(path)) {
            Some(f) => files.push((path.clone(), f)),
            None => unknown.push(path.display().to_string()),
        }
    }
    if !unknown.is_empty() {
        return Err(format!(
            "cannot tell the format of {} from the extension (.nessus, .ckl, .cklb, .sarif, \
             .sarif.json, .csv): name it with --format; nothing was sent",
            unknown.join(", ")
        ));
    }
    if (args.preset.is_some() || mapping.is_some())
        && !files.iter().any(|(_, f)| *f == ScanFormat::Csv)
    {
        return Err("--preset and --mapping-file are for CSV files; no file here is CSV".into());
    }
    Ok(Plan {
        server,
        token,
        system,
        files,
        preset: args.preset,
        mapping,
        include_informational: args.include_informational,
        timeout: args.timeout,
    })
}

/// A reader that advances a progress bar by the bytes read through it.
struct Counted<R> {
    inner: R,
    bar: Option<indicatif::ProgressBar>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(bar) = &self.bar {
            bar.inc(n as u64);
        }
        Ok(n)
    }
}

fn progress_bar(name: &str, total: u64) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::with_draw_target(
        Some(total),
        indicatif::ProgressDrawTarget::stderr(),
    );
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(name.to_owned());
    bar
}

/// Uploads one file and reports on it: the summary to stdout, a refusal to stderr.
fn push_file(
    agent: &ureq::Agent,
    plan: &Plan,
    path: &Path,
    format: ScanFormat,
    progress: bool,
) -> Outcome {
    let label = path.display().to_string();
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("{label}: cannot open: {e}");
            return Outcome::Failed;
        }
    };
    let size = match file.metadata() {
        Ok(m) if m.is_file() => m.len(),
        Ok(_) => {
            eprintln!("{label}: not a regular file");
            return Outcome::Failed;
        }
        Err(e) => {
            eprintln!("{label}: cannot read: {e}");
            return Outcome::Failed;
        }
    };
    let base_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| label.clone());
    let url = format!(
        "{}/v1/systems/{}/imports/{}",
        plan.server,
        plan.system,
        format.as_str()
    );
    let mut request = agent
        .post(&url)
        .set("Authorization", &format!("Bearer {}", plan.token))
        .set("Content-Type", format.media_type())
        .set("Accept", "application/json, application/problem+json")
        .set("Content-Length", &size.to_string())
        .query("filename", &base_name);
    if format == ScanFormat::Csv {
        if let Some(m) = &plan.mapping {
            request = request.query("mapping", m);
        } else if let Some(p) = plan.preset {
            request = request.query("preset", p.as_str());
        }
    }
    if plan.include_informational {
        request = request.query("include_informational", "true");
    }

    let bar = if progress {
        Some(progress_bar(&base_name, size))
    } else {
        eprintln!("uploading {label} ({size} bytes)…");
        None
    };
    let body = Counted {
        // Never more than the length announced, should the file grow meanwhile.
        inner: file.take(size),
        bar: bar.clone(),
    };
    let result = request.send(body);
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    match result {
        Ok(response) => {
            let status = response.status();
            match response.into_json::<Value>() {
                Ok(report) => print_report(&label, &report),
                Err(e) => {
                    eprintln!("{label}: {status}: the answer is not the expected JSON: {e}");
                    Outcome::Failed
                }
            }
        }
        Err(ureq::Error::Status(status, response)) => {
            let text = response.into_string().unwrap_or_default();
            eprintln!("{}", describe_problem(&label, status, &text));
            Outcome::Failed
        }
        Err(ureq::Error::Transport(t)) => {
            eprintln!("{label}: {}", describe_transport(&t));
            Outcome::Failed
        }
    }
}

/// A transport error without the request's URL (its query may be long).
fn describe_transport(t: &ureq::Transport) -> String {
    let mut out = t.kind().to_string();
    if let Some(m) = t.message() {
        out.push_str(": ");
        out.push_str(m);
    }
    if let Some(source) = std::error::Error::source(t) {
        let s = source.to_string();
        if !out.contains(&s) {
            out.push_str(": ");
            out.push_str(&s);
        }
    }
    out
}

/// `F: <status> <code>: <detail>`, then the problem's field errors not already in the detail.
fn describe_problem(label: &str, status: u16, text: &str) -> String {
    let Ok(problem) = serde_json::from_str::<Value>(text) else {
        let snippet: String = text.trim().chars().take(200).collect();
        return if snippet.is_empty() {
            format!("{label}: {status}")
        } else {
            format!("{label}: {status}: {snippet}")
        };
    };
    let code = problem["code"]
        .as_str()
        .or_else(|| problem["title"].as_str())
        .unwrap_or("error");
    let detail = problem["detail"].as_str().unwrap_or("");
    let mut out = format!("{label}: {status} {code}: {detail}");
    if let Some(errors) = problem["errors"].as_array() {
        let extra: Vec<String> = errors
            .iter()
            .filter_map(|e| {
                let d = e["detail"].as_str().unwrap_or("");
                if d.is_empty() || detail.contains(d) {
                    return None;
                }
                let at = ["pointer", "parameter", "place", "cell"]
                    .iter()
                    .find_map(|k| e[*k].as_str())
                    .unwrap_or("");
                Some(if at.is_empty() {
                    format!("  {d}")
                } else {
                    format!("  {at}: {d}")
                })
            })
            .collect();
        for line in extra.iter().take(FAILED_SHOWN) {
            out.push('\n');
            out.push_str(line);
        }
        if extra.len() > FAILED_SHOWN {
            out.push_str(&format!("\n  … {} more", extra.len() - FAILED_SHOWN));
        }
    }
    out
}

fn count(summary: &Value, key: &str) -> u64 {
    summary[key].as_u64().unwrap_or(0)
}

/// The summary line for one import, then its failed results.
fn print_report(label: &str, report: &Value) -> Outcome {
    let s = &report["summary"];
    let scan = report["scan"]["id"].as_str().unwrap_or("?");
    let mut line = format!(
        "{label}: {} findings — {} created, {} updated, {} unchanged, {} reopened, {} failed; \
         {} not seen; {} informational skipped",
        count(s, "findings"),
        count(s, "created"),
        count(s, "updated"),
        count(s, "unchanged"),
        count(s, "reopened"),
        count(s, "failed"),
        count(s, "not_seen"),
        count(s, "skipped_informational"),
    );
    let other = count(s, "skipped_other");
    if other > 0 {
        line.push_str(&format!(", {other} otherwise skipped"));
    }
    line.push_str(&format!("; {} unmapped", count(s, "unmapped")));
    match report["repeat_of"].as_str() {
        Some(first) => line.push_str(&format!(" (same file as scan {first}: nothing changed)")),
        None => line.push_str(&format!(" (scan {scan})")),
    }
    println!("{line}");
    let failed: Vec<&Value> = report["results"]
        .as_array()
        .map(|r| r.iter().filter(|r| r["status"] == "failed").collect())
        .unwrap_or_default();
    for r in failed.iter().take(FAILED_SHOWN) {
        let field = |k: &str| r[k].as_str().unwrap_or("").to_owned();
        let detail = r["problem"]["detail"]
            .as_str()
            .or_else(|| r["problem"]["title"].as_str())
            .unwrap_or("failed");
        println!(
            "  failed: {} {} {}: {detail}",
            field("place"),
            field("identifier"),
            field("asset")
        );
    }
    if failed.len() > FAILED_SHOWN {
        println!("  … {} more", failed.len() - FAILED_SHOWN);
    }
    if count(s, "failed") > 0 || !failed.is_empty() {
        Outcome::Failed
    } else {
        Outcome::Clean
    }
}

#[cfg(test)]
mod tests {
    use super::{describe_problem, ScanFormat};
    use std::path::Path;

    #[test]
    fn formats_from_names() {
        let f = |n: &str| ScanFormat::from_name(Path::new(n));
        assert_eq!(f("a/scan.nessus"), Some(ScanFormat::Nessus));
        assert_eq!(f("x.CKL"), Some(ScanFormat::Ckl));
        assert_eq!(f("x.cklb"), Some(ScanFormat::Cklb));
        assert_eq!(f("x.sarif"), Some(ScanFormat::Sarif));
        assert_eq!(f("x.sarif.json"), Some(ScanFormat::Sarif));
        assert_eq!(f("x.csv"), Some(ScanFormat::Csv));
        assert_eq!(f("x.json"), None);
        assert_eq!(f("x.txt"), None);
        assert_eq!(f("nessus"), None);
    }

    #[test]
    fn problems() {
        let text = r#"{"type":"urn:poam:problem:unreadable_scan","title":"t","status":422,
            "detail":"cannot be read at line 3: eof","code":"unreadable_scan",
            "errors":[{"place":"line 3","code":"malformed","detail":"eof"}]}"#;
        assert_eq!(
            describe_problem("f.nessus", 422, text),
            "f.nessus: 422 unreadable_scan: cannot be read at line 3: eof"
        );
        assert_eq!(
            describe_problem("f", 502, "<html>bad gateway</html>"),
            "f: 502: <html>bad gateway</html>"
        );
    }
}
