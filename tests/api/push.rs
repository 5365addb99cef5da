//! `poam push`: the binary uploads scan files to a running service and reports on each; the
//! token never shows in its output.

use crate::harness::{Backend, TestApp};
use poam_domain::Role;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("poam-push-{tag}-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("temp dir: {e}"));
    dir
}

/// Writes `token` to a file only its owner may read.
fn token_file(dir: &Path, token: &str) -> PathBuf {
    use std::io::Write;
    let path = dir.join("token");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(&path)
        .unwrap_or_else(|e| panic!("token file: {e}"));
    writeln!(file, "{token}").unwrap_or_else(|e| panic!("token file: {e}"));
    path
}

/// A Nessus v2 file: two hosts with the TLS 1.0 finding each, and one informational item.
fn nessus() -> String {
    let mut s =
        String::from("<?xml version=\"1.0\" ?>\n<NessusClientData_v2>\n<Report name=\"r\">\n");
    for ip in ["10.0.0.1", "10.0.0.2"] {
        s.push_str(&format!(
            "<ReportHost name=\"{ip}\"><HostProperties><tag name=\"host-ip\">{ip}</tag></HostProperties>\n\
             <ReportItem port=\"443\" svc_name=\"www\" protocol=\"tcp\" severity=\"3\" pluginID=\"104743\" \
             pluginName=\"TLS Version 1.0 Protocol Detection\" pluginFamily=\"Service detection\">\n\
             <synopsis>The remote service encrypts traffic using an older version of TLS.</synopsis>\n\
             <description>The remote service accepts connections encrypted using TLS 1.0.</description>\n\
             <solution>Enable support for TLS 1.2 and 1.3, and disable support for TLS 1.0.</solution>\n\
             <cve>CVE-2011-3389</cve>\n</ReportItem>\n"
        ));
        if ip == "10.0.0.1" {
            s.push_str(
                "<ReportItem port=\"0\" svc_name=\"general\" protocol=\"tcp\" severity=\"0\" pluginID=\"19506\" \
                 pluginName=\"Nessus Scan Information\" pluginFamily=\"Settings\">\n\
                 <synopsis>Information about the Nessus scan.</synopsis>\n\
                 <description>This plugin displays information about the Nessus scan.</description>\n\
                 <solution>n/a</solution>\n</ReportItem>\n",
            );
        }
        s.push_str("</ReportHost>\n");
    }
    s.push_str("</Report>\n</NessusClientData_v2>\n");
    s
}

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn push(server: &str, token: &Path, system: &str, files: &[&Path]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_poam"));
    for (k, _) in std::env::vars() {
        if k.starts_with("POAM_") {
            cmd.env_remove(k);
        }
    }
    cmd.args(["push", "--server", server, "--token-file"])
        .arg(token)
        .args(["--system", system, "--timeout", "60"])
        .args(files);
    let Output {
        status,
        stdout,
        stderr,
    } = cmd.output().unwrap_or_else(|e| panic!("poam push: {e}"));
    Run {
        code: status.code(),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

impl Run {
    /// Asserts the exit status and that the token shows nowhere.
    #[track_caller]
    fn expect(self, code: i32, token: &str) -> Run {
        assert_eq!(
            self.code,
            Some(code),
            "stdout: {}\nstderr: {}",
            self.stdout,
            self.stderr
        );
        assert!(
            !self.stdout.contains(token) && !self.stderr.contains(token),
            "the token was printed"
        );
        self
    }
}

#[test]
fn push_imports_a_nessus_file_notes_a_repeat_and_refuses_a_bad_one() {
    let Some(app) = TestApp::spawn(Backend::Sqlite) else {
        return;
    };
    let sid = app.system("Pushed");
    let token = app.token(&[Role::Editor], &[]);
    let dir = temp_dir("import");
    let token_path = token_file(&dir, &token);
    let scan = dir.join("scan.nessus");
    let content = nessus();
    std::fs::write(&scan, &content).unwrap_or_else(|e| panic!("{e}"));
    // A trailing `/` on the server is fine.
    let server = format!("{}/", app.base);

    let first = push(&server, &token_path, &sid, &[&scan]).expect(0, &token);
    assert!(first.stdout.contains("scan.nessus: "), "{}", first.stdout);
    assert!(first.stdout.contains("2 findings"), "{}", first.stdout);
    assert!(first.stdout.contains("2 created"), "{}", first.stdout);
    assert!(first.stdout.contains("0 failed"), "{}", first.stdout);
    assert!(
        first.stdout.contains("1 informational skipped"),
        "{}",
        first.stdout
    );
    assert!(!first.stdout.contains("same file"), "{}", first.stdout);
    // Not a terminal: a plain line per upload.
    assert!(
        first.stderr.contains(&format!(
            "uploading {} ({} bytes)",
            scan.display(),
            content.len()
        )),
        "{}",
        first.stderr
    );
    // The service kept the file under its base name.
    let scans = app
        .get(&format!("/v1/systems/{sid}/scans"), &app.admin())
        .expect(200);
    let list = scans.body.as_array().cloned().unwrap_or_default();
    assert_eq!(list.len(), 1, "{}", scans.body);
    assert_eq!(list[0]["filename"], "scan.nessus", "{}", scans.body);
    let scan_id = list[0]["id"].as_str().unwrap_or_default().to_owned();
    assert!(first.stdout.contains(&scan_id), "{}", first.stdout);

    // The same file again changes nothing.
    let again = push(&app.base, &token_path, &sid, &[&scan]).expect(0, &token);
    assert!(
        again
            .stdout
            .contains(&format!("(same file as scan {scan_id}: nothing changed)")),
        "{}",
        again.stdout
    );

    // A truncated copy is refused naming the problem; the next file is still pushed.
    let truncated = dir.join("truncated.nessus");
    std::fs::write(&truncated, &content[..content.len() / 2]).unwrap_or_else(|e| panic!("{e}"));
    let bad = push(&app.base, &token_path, &sid, &[&truncated, &scan]).expect(1, &token);
    assert!(
        bad.stderr
            .contains(&format!("{}: 422 unreadable_scan: ", truncated.display())),
        "{}",
        bad.stderr
    );
    assert!(bad.stdout.contains("same file as scan"), "{}", bad.stdout);
    assert!(!bad.stdout.contains("truncated.nessus"), "{}", bad.stdout);

    // An extension naming no format is a usage error, and nothing is sent.
    let unknown = dir.join("scan.txt");
    std::fs::write(&unknown, &content).unwrap_or_else(|e| panic!("{e}"));
    let usage = push(&app.base, &token_path, &sid, &[&scan, &unknown]).expect(2, &token);
    assert!(usage.stderr.contains("scan.txt"), "{}", usage.stderr);
    assert!(usage.stderr.contains("--format"), "{}", usage.stderr);
    assert!(usage.stdout.is_empty(), "{}", usage.stdout);

    // A token without write rights: the service's 403, exit 1.
    let viewer = app.token(&[Role::Viewer], &[]);
    let viewer_dir = temp_dir("viewer");
    let viewer_path = token_file(&viewer_dir, &viewer);
    let refused = push(&app.base, &viewer_path, &sid, &[&scan]).expect(1, &viewer);
    assert!(
        refused
            .stderr
            .contains(&format!("{}: 403 ", scan.display())),
        "{}",
        refused.stderr
    );

    let after = app
        .get(&format!("/v1/systems/{sid}/scans"), &app.admin())
        .expect(200);
    assert_eq!(
        after.body.as_array().map(Vec::len),
        Some(1),
        "{}",
        after.body
    );
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&viewer_dir);
}

#[test]
fn push_without_a_readable_token_file_is_a_usage_error() {
    let dir = temp_dir("usage");
    let scan = dir.join("scan.nessus");
    std::fs::write(&scan, nessus()).unwrap_or_else(|e| panic!("{e}"));
    let system = uuid::Uuid::new_v4().to_string();
    let run = push(
        "http://127.0.0.1:9",
        &dir.join("no-such-token"),
        &system,
        &[&scan],
    );
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(run.stderr.contains("--token-file"), "{}", run.stderr);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn push_to_an_unreachable_server_fails_each_file_and_goes_on() {
    let dir = temp_dir("unreachable");
    let token = "eyJhbGciOiJIUzI1NiJ9.not-a-real-token.signature";
    let token_path = token_file(&dir, token);
    let a = dir.join("a.nessus");
    let b = dir.join("b.sarif.json");
    std::fs::write(&a, nessus()).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(&b, "{}").unwrap_or_else(|e| panic!("{e}"));
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("port: {e}"));
    let system = uuid::Uuid::new_v4().to_string();
    let run = push(
        &format!("http://127.0.0.1:{port}"),
        &token_path,
        &system,
        &[&a, &b],
    )
    .expect(1, token);
    assert!(
        run.stderr.contains(&format!("{}: ", a.display())),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(&format!("{}: ", b.display())),
        "{}",
        run.stderr
    );
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    let _ = std::fs::remove_dir_all(&dir);
}
