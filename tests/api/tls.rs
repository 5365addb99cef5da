//! TLS served by the binary (`POAM_TLS_CERT`, `POAM_TLS_KEY`, reloaded on SIGHUP), mutual TLS
//! (`POAM_TLS_CLIENT_CA`, certificates mapped by `POAM_CLAIMS_MAP`), and PostgreSQL over TLS
//! (`sslmode=verify-full`). Certificates are made with the `openssl` CLI; the server runs as a
//! process of its own (SIGHUP goes to it, not to the tests).

use crate::harness::{postgres_url, PgSchema, GENEROUS_LIMITS, SECRET};
use poam_domain::Role;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("poam-{tag}-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("temp dir: {e}"));
    dir
}

/// Runs `openssl` in `dir`; panics with its output unless it succeeds.
fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run openssl: {e}"));
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn private(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
}

const EC: [&str; 4] = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"];

/// A CA `name` in `dir`: `{name}.pem` and `{name}.key`.
fn ca(dir: &Path, name: &str) {
    let (pem, key) = (format!("{name}.pem"), format!("{name}.key"));
    let subject = format!("/CN=poam test {name}");
    let mut args = vec!["req", "-x509", "-nodes", "-days", "2"];
    args.extend(EC);
    args.extend(["-subj", &subject, "-keyout", &key, "-out", &pem]);
    openssl(dir, &args);
}

/// A certificate `name` signed by CA `ca` with `subject`, `serial` and extensions `ext`:
/// `{name}.pem` and `{name}.key` (mode 0600).
fn leaf(dir: &Path, ca: &str, name: &str, subject: &str, serial: &str, ext: &str) {
    let (pem, key, csr, extfile) = (
        format!("{name}.pem"),
        format!("{name}.key"),
        format!("{name}.csr"),
        format!("{name}.ext"),
    );
    std::fs::write(dir.join(&extfile), ext).unwrap_or_else(|e| panic!("ext: {e}"));
    let mut args = vec!["req", "-nodes"];
    args.extend(EC);
    args.extend(["-subj", subject, "-keyout", &key, "-out", &csr]);
    openssl(dir, &args);
    let (ca_pem, ca_key) = (format!("{ca}.pem"), format!("{ca}.key"));
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &ca_pem,
            "-CAkey",
            &ca_key,
            "-set_serial",
            serial,
            "-days",
            "2",
            "-extfile",
            &extfile,
            "-out",
            &pem,
        ],
    );
    private(&dir.join(key));
}

const SERVER_EXT: &str =
    "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n";
const CLIENT_EXT: &str = "subjectAltName=email:scanner@example.org,DNS:scanner.example.org\nextendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n";

/// A CA, a server certificate (serial 0x1001) and client certificates: `admin-client` (OU
/// poam-admins), `ops-client` (OU ops only), and `intruder` of another CA (OU poam-admins).
fn pki(dir: &Path) {
    ca(dir, "ca");
    leaf(dir, "ca", "server", "/CN=localhost", "0x1001", SERVER_EXT);
    leaf(
        dir,
        "ca",
        "admin-client",
        "/O=Example/OU=ops/OU=poam-admins/CN=scanner-01",
        "0x2001",
        CLIENT_EXT,
    );
    leaf(
        dir,
        "ca",
        "ops-client",
        "/O=Example/OU=ops/CN=ops-01",
        "0x2002",
        CLIENT_EXT,
    );
    ca(dir, "other-ca");
    leaf(
        dir,
        "other-ca",
        "intruder",
        "/O=Example/OU=poam-admins/CN=intruder",
        "0x2003",
        CLIENT_EXT,
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("port: {e}"))
}

fn poam(env: &[(&str, String)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_poam"));
    for (k, _) in std::env::vars() {
        if k.starts_with("POAM_") {
            cmd.env_remove(k);
        }
    }
    cmd.envs(GENEROUS_LIMITS.iter().copied())
        .env("POAM_JWT_SECRET", SECRET)
        .env("POAM_SCHEDULER_PERIOD", "off")
        .env("POAM_WEBHOOK_DELIVERY", "off")
        .env("POAM_LOG", "info")
        .env("POAM_LOG_FORMAT", "json");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// A rustls client trusting `ca` (PEM), with only `versions`, presenting `client` (a
/// certificate and key PEM pair) when given.
fn agent(
    ca: &Path,
    versions: &[&'static rustls::SupportedProtocolVersion],
    client: Option<(&Path, &Path)>,
) -> ureq::Agent {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca)
        .unwrap_or_else(|e| panic!("{e}"))
        .flatten()
    {
        roots.add(cert).unwrap_or_else(|e| panic!("root: {e}"));
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(versions)
    .unwrap_or_else(|e| panic!("{e}"))
    .with_root_certificates(roots);
    let config = match client {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => {
            let chain: Vec<_> = CertificateDer::pem_file_iter(cert)
                .unwrap_or_else(|e| panic!("{e}"))
                .flatten()
                .collect();
            let key = PrivateKeyDer::from_pem_file(key).unwrap_or_else(|e| panic!("{e}"));
            builder
                .with_client_auth_cert(chain, key)
                .unwrap_or_else(|e| panic!("client cert: {e}"))
        }
    };
    ureq::AgentBuilder::new()
        .tls_config(Arc::new(config))
        .timeout(Duration::from_secs(20))
        .build()
}

const BOTH: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

/// A `poam serve` process with TLS; killed when dropped.
struct Server {
    child: std::process::Child,
    port: u16,
    base: String,
    log: PathBuf,
}

impl Server {
    /// Starts `poam serve` in `dir` (SQLite) with `env`, and waits until `/readyz` answers
    /// over HTTPS trusting `dir/ca.pem` (presenting `dir/admin-client` when `mutual`).
    fn start(dir: &Path, env: &[(&str, String)]) -> Server {
        let port = free_port();
        let log = dir.join(format!("server-{port}.log"));
        let stderr = std::fs::File::create(&log).unwrap_or_else(|e| panic!("log: {e}"));
        let mut all = vec![
            ("POAM_DATA_DIR", dir.join("data").display().to_string()),
            ("POAM_BIND", format!("127.0.0.1:{port}")),
        ];
        all.extend(env.iter().cloned());
        let child = poam(&all)
            .arg("serve")
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn: {e}"));
        let mut server = Server {
            child,
            port,
            base: format!("https://127.0.0.1:{port}"),
            log,
        };
        let probe = agent(&dir.join("ca.pem"), BOTH, None);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if probe.get(&format!("{}/readyz", server.base)).call().is_ok() {
                return server;
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("the server exited ({status}): {}", server.log_text());
            }
            assert!(
                Instant::now() < deadline,
                "the server did not come up: {}",
                server.log_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn hangup(&self) {
        let status = Command::new("kill")
            .args(["-HUP", &self.child.id().to_string()])
            .status()
            .unwrap_or_else(|e| panic!("kill: {e}"));
        assert!(status.success());
    }

    /// The serial of the certificate the server presents, as `openssl x509 -serial` prints it.
    fn served_serial(&self) -> String {
        let out = s_client(self.port, &[]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let begin = text.find("-----BEGIN CERTIFICATE-----");
        let end = text.find("-----END CERTIFICATE-----");
        let (Some(begin), Some(end)) = (begin, end) else {
            panic!("no certificate served: {text}");
        };
        let pem = &text[begin..end + "-----END CERTIFICATE-----".len()];
        let mut x509 = Command::new("openssl")
            .args(["x509", "-noout", "-serial"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("openssl: {e}"));
        if let Some(mut stdin) = x509.stdin.take() {
            std::io::Write::write_all(&mut stdin, pem.as_bytes())
                .unwrap_or_else(|e| panic!("openssl stdin: {e}"));
        }
        let out = x509
            .wait_with_output()
            .unwrap_or_else(|e| panic!("openssl: {e}"));
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .trim_start_matches("serial=")
            .to_owned()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `openssl s_client` to the port with `args`, stdin closed.
fn s_client(port: u16, args: &[&str]) -> std::process::Output {
    let connect = format!("127.0.0.1:{port}");
    Command::new("openssl")
        .args(["s_client", "-connect", &connect, "-servername", "localhost"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("openssl s_client: {e}"))
}

fn tls_env(dir: &Path) -> Vec<(&'static str, String)> {
    vec![
        (
            "POAM_TLS_CERT",
            dir.join("server.pem").display().to_string(),
        ),
        ("POAM_TLS_KEY", dir.join("server.key").display().to_string()),
    ]
}

/// A GET's status and body; a transport error (a refused handshake) is `Err`.
fn get(
    agent: &ureq::Agent,
    url: &str,
    token: Option<&str>,
) -> Result<(u16, serde_json::Value, Option<String>), String> {
    let mut req = agent.get(url);
    if let Some(t) = token {
        req = req.set("Authorization", &format!("Bearer {t}"));
    }
    let response = match req.call() {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => return Err(e.to_string()),
    };
    let status = response.status();
    let cache = response.header("cache-control").map(str::to_owned);
    let body = response.into_json().unwrap_or(serde_json::Value::Null);
    Ok((status, body, cache))
}

fn admin_token() -> String {
    let settings =
        poam::config::Settings::from_lookup(|k| (k == "POAM_JWT_SECRET").then(|| SECRET.into()))
            .unwrap_or_else(|e| panic!("{e}"));
    poam::keys::load(&settings)
        .ok()
        .and_then(|k| k.issuer)
        .unwrap_or_else(|| panic!("no issuer"))
        .mint("tester@example.org", None, &[Role::Admin], &[], 600)
        .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn tls13_and_tls12_are_served_and_tls11_is_refused() {
    let dir = temp_dir("tls-versions");
    pki(&dir);
    let server = Server::start(&dir, &tls_env(&dir));
    let ca = dir.join("ca.pem");
    for versions in [
        &[&rustls::version::TLS13][..],
        &[&rustls::version::TLS12][..],
    ] {
        let (status, body, _) = get(
            &agent(&ca, versions, None),
            &format!("{}/healthz", server.base),
            None,
        )
        .unwrap_or_else(|e| panic!("{versions:?}: {e}"));
        assert_eq!(status, 200, "{body}");
    }
    // openssl as the client: 1.2 and 1.3 negotiate; 1.1 is refused by the server (the
    // client is allowed every cipher at security level 0, so the refusal is the server's).
    for (flag, protocol) in [("-tls1_3", "TLSv1.3"), ("-tls1_2", "TLSv1.2")] {
        let out = s_client(server.port, &[flag]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains(&format!("Protocol  : {protocol}"))
                || text.contains(&format!("New, {protocol}")),
            "{flag}: {text}"
        );
    }
    let out = s_client(server.port, &["-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"]);
    let (text, err) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(!out.status.success(), "TLS 1.1 negotiated: {text}");
    assert!(
        !text.contains("BEGIN CERTIFICATE"),
        "TLS 1.1 negotiated: {text}"
    );
    // The server's alert (not a refusal of the client's own).
    assert!(
        text.contains("CONNECTED") && err.contains("alert"),
        "{text}\n{err}"
    );
    // `poam health` (the container's HEALTHCHECK) speaks TLS to it too.
    let mut env = tls_env(&dir);
    env.push(("POAM_BIND", format!("127.0.0.1:{}", server.port)));
    let out = poam(&env)
        .arg("health")
        .output()
        .unwrap_or_else(|e| panic!("health: {e}"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok");
    // Plain HTTP to the TLS port gets no HTTP answer.
    assert!(
        ureq::get(&format!("http://127.0.0.1:{}/healthz", server.port))
            .call()
            .is_err()
    );
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn tls_settings_that_cannot_work_fail_at_start() {
    let dir = temp_dir("tls-misconfigured");
    pki(&dir);
    let cert = dir.join("server.pem").display().to_string();
    let key = dir.join("server.key").display().to_string();
    let data = dir.join("data").display().to_string();
    let start = |env: &[(&str, String)]| {
        let mut all = vec![
            ("POAM_DATA_DIR", data.clone()),
            ("POAM_BIND", format!("127.0.0.1:{}", free_port())),
        ];
        all.extend(env.iter().cloned());
        let out = poam(&all)
            .arg("serve")
            .stdout(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("spawn: {e}"));
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let err = start(&[("POAM_TLS_CERT", cert.clone())]);
    assert!(
        err.contains("POAM_TLS_CERT is set without POAM_TLS_KEY"),
        "{err}"
    );
    let err = start(&[("POAM_TLS_KEY", key.clone())]);
    assert!(
        err.contains("POAM_TLS_KEY is set without POAM_TLS_CERT"),
        "{err}"
    );
    // A key file others may read.
    let open_key = dir.join("open.key");
    std::fs::copy(dir.join("server.key"), &open_key).unwrap_or_else(|e| panic!("{e}"));
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&open_key, std::fs::Permissions::from_mode(0o644))
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let err = start(&[
        ("POAM_TLS_CERT", cert.clone()),
        ("POAM_TLS_KEY", open_key.display().to_string()),
    ]);
    assert!(
        err.contains("POAM_TLS_KEY") && err.contains("chmod 600"),
        "{err}"
    );
    // A key of another certificate; the key's content is never printed.
    let err = start(&[
        ("POAM_TLS_CERT", cert.clone()),
        (
            "POAM_TLS_KEY",
            dir.join("admin-client.key").display().to_string(),
        ),
    ]);
    assert!(err.contains("does not belong to the certificate"), "{err}");
    let key_text = std::fs::read_to_string(dir.join("admin-client.key")).unwrap_or_default();
    let body = key_text
        .lines()
        .find(|l| !l.starts_with("-----"))
        .unwrap_or("-----");
    assert!(!err.contains(body), "the key is printed: {err}");
    // Not a certificate.
    let err = start(&[
        ("POAM_TLS_CERT", key.clone()),
        ("POAM_TLS_KEY", key.clone()),
    ]);
    assert!(
        err.contains("POAM_TLS_CERT") && err.contains("no PEM certificate"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn sighup_reloads_the_certificate_and_a_bad_one_keeps_the_old() {
    let dir = temp_dir("tls-reload");
    pki(&dir);
    let server = Server::start(&dir, &tls_env(&dir));
    assert_eq!(server.served_serial(), "1001");
    // A keep-alive connection made before the reload.
    let client = agent(&dir.join("ca.pem"), BOTH, None);
    let health = format!("{}/healthz", server.base);
    assert_eq!(get(&client, &health, None).map(|r| r.0), Ok(200));

    // A renewed certificate (and key) in place of the old files: served after SIGHUP.
    leaf(&dir, "ca", "renewed", "/CN=localhost", "0x1002", SERVER_EXT);
    std::fs::copy(dir.join("renewed.pem"), dir.join("server.pem"))
        .unwrap_or_else(|e| panic!("{e}"));
    std::fs::copy(dir.join("renewed.key"), dir.join("server.key"))
        .unwrap_or_else(|e| panic!("{e}"));
    server.hangup();
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.served_serial() != "1002" {
        assert!(
            Instant::now() < deadline,
            "the renewed certificate is not served: {}",
            server.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(server.log_text().contains("TLS certificate reloaded"));
    assert_eq!(get(&client, &health, None).map(|r| r.0), Ok(200));

    // A bad new certificate (not PEM), then a key that is not the certificate's: logged, and
    // the renewed one stays in service on the same listener.
    std::fs::write(dir.join("server.pem"), "not a certificate\n").unwrap_or_else(|e| panic!("{e}"));
    server.hangup();
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.log_text().matches("was not reloaded").count() < 1 {
        assert!(
            Instant::now() < deadline,
            "no error logged: {}",
            server.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Only once that reload has read the bad file: the good certificate back, a foreign key.
    std::fs::copy(dir.join("renewed.pem"), dir.join("server.pem"))
        .unwrap_or_else(|e| panic!("{e}"));
    std::fs::copy(dir.join("admin-client.key"), dir.join("server.key"))
        .unwrap_or_else(|e| panic!("{e}"));
    server.hangup();
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.log_text().matches("was not reloaded").count() < 2 {
        assert!(
            Instant::now() < deadline,
            "no error logged: {}",
            server.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = server.log_text();
    assert!(log.contains("no PEM certificate"), "{log}");
    assert!(log.contains("does not belong to the certificate"), "{log}");
    assert_eq!(server.served_serial(), "1002");
    let fresh = agent(&dir.join("ca.pem"), BOTH, None);
    assert_eq!(get(&fresh, &health, None).map(|r| r.0), Ok(200));
    assert_eq!(get(&client, &health, None).map(|r| r.0), Ok(200));
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn client_certificates_map_to_principals_through_the_claims_map() {
    let dir = temp_dir("tls-mutual");
    pki(&dir);
    let map = dir.join("claims.toml");
    std::fs::write(
        &map,
        r#"
# Tokens minted by `poam token` carry roles = ["admin"].
[[roles]]
claim = "roles"
value = "admin"
role = "admin"
systems = ["*"]

[[roles]]
claim = "cert.ou"
value = "poam-admins"
role = "admin"
systems = ["*"]
"#,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let mut env = tls_env(&dir);
    env.push((
        "POAM_TLS_CLIENT_CA",
        dir.join("ca.pem").display().to_string(),
    ));
    env.push(("POAM_CLAIMS_MAP", map.display().to_string()));
    let server = Server::start(&dir, &env);
    let ca = dir.join("ca.pem");
    let pair = |name: &str| {
        (
            dir.join(format!("{name}.pem")),
            dir.join(format!("{name}.key")),
        )
    };
    let systems = format!("{}/v1/systems", server.base);

    // A certificate whose OU maps to admin, no token: admin, named by its CN.
    let (cert, key) = pair("admin-client");
    let admin = agent(&ca, BOTH, Some((&cert, &key)));
    let (status, body, cache) = get(&admin, &systems, None).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(status, 200, "{body}");
    assert_eq!(cache.as_deref(), Some("no-store"));
    let created = admin
        .post(&systems)
        .send_json(serde_json::json!({"name": "Payroll", "regime": "custom"}))
        .unwrap_or_else(|e| panic!("create: {e}"));
    assert_eq!(created.status(), 201);
    let sid = created
        .into_json::<serde_json::Value>()
        .map(|v| v["id"].as_str().unwrap_or_default().to_owned())
        .unwrap_or_default();
    let (_, events, _) =
        get(&admin, &format!("{systems}/{sid}/events"), None).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(events["items"][0]["actor"], "scanner-01", "{events}");

    // With a bearer token, the token decides: a bad one is 401 despite the certificate.
    let (status, body, _) =
        get(&admin, &systems, Some("not-a-token")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("invalid_token"))
    );

    // A verified certificate no rule maps: 403 no_role_mapped.
    let (cert, key) = pair("ops-client");
    let ops = agent(&ca, BOTH, Some((&cert, &key)));
    let (status, body, _) = get(&ops, &systems, None).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("no_role_mapped"))
    );

    // A certificate of another CA: refused at the handshake, on TLS 1.3 and 1.2.
    let (cert, key) = pair("intruder");
    for versions in [
        &[&rustls::version::TLS13][..],
        &[&rustls::version::TLS12][..],
    ] {
        let intruder = agent(&ca, versions, Some((&cert, &key)));
        assert!(
            get(&intruder, &systems, None).is_err(),
            "{versions:?}: an unknown CA's certificate was accepted"
        );
    }

    // No certificate and no token: 401; a token alone still works.
    let anonymous = agent(&ca, BOTH, None);
    let (status, body, _) = get(&anonymous, &systems, None).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("missing_token"))
    );
    let (status, body, _) =
        get(&anonymous, &systems, Some(&admin_token())).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["items"][0]["id"], sid.as_str());
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The CA of the local PostgreSQL's TLS certificate: `POAM_TEST_PG_SSL_CA`, or the one
/// `.ci/pg-ssl` left in the data directory. Under CI=true it must exist; elsewhere its absence
/// skips the test, loudly.
fn postgres_ca() -> Option<PathBuf> {
    use diesel::{Connection, PgConnection, RunQueryDsl};
    #[derive(diesel::QueryableByName)]
    struct Setting {
        #[diesel(sql_type = diesel::sql_types::Text)]
        value: String,
    }
    let ci = std::env::var("CI").as_deref() == Ok("true");
    let found = std::env::var_os("POAM_TEST_PG_SSL_CA")
        .map(PathBuf::from)
        .or_else(|| {
            let mut conn = PgConnection::establish(&postgres_url()).ok()?;
            let data: Vec<Setting> =
                diesel::sql_query("SELECT current_setting('data_directory') AS value")
                    .load(&mut conn)
                    .ok()?;
            Some(PathBuf::from(&data.first()?.value).join("poam-ci-ca.pem"))
        })
        .filter(|p| std::fs::read(p).is_ok());
    if found.is_none() {
        let why = "the local PostgreSQL has no TLS certificate of a test CA: run `.ci/pg-ssl` \
                   (it sets ssl = on with one, idempotently) or set POAM_TEST_PG_SSL_CA";
        assert!(!ci, "CI=true but {why}");
        eprintln!("SKIPPED: PostgreSQL over TLS: {why}");
    }
    found
}

#[test]
fn postgres_connections_verify_the_server_certificate() {
    let Some(schema) = PgSchema::create() else {
        return;
    };
    let Some(ca) = postgres_ca() else {
        return;
    };
    let dir = temp_dir("tls-postgres");
    let app_name = format!(
        "poam-tls-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    let url = |ca: &Path| {
        format!(
            "{}&sslmode=verify-full&sslrootcert={}&application_name={app_name}",
            schema.url,
            ca.display()
        )
    };
    let port = free_port();
    let env = |ca: &Path| {
        vec![
            ("POAM_DATA_DIR", dir.join("data").display().to_string()),
            ("POAM_BIND", format!("127.0.0.1:{port}")),
            ("POAM_DATABASE_URL", url(ca)),
            ("POAM_AUTO_MIGRATE", "true".to_owned()),
            ("POAM_POOL_TIMEOUT_MS", "3000".to_owned()),
        ]
    };

    // The right CA: the service migrates, serves, and its connections are encrypted.
    let mut child = poam(&env(&ca))
        .arg("serve")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn: {e}"));
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while ureq::get(&format!("{base}/readyz")).call().is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("the service did not start with sslmode=verify-full ({status})");
        }
        assert!(Instant::now() < deadline, "the service did not come up");
        std::thread::sleep(Duration::from_millis(100));
    }
    {
        use diesel::{Connection, PgConnection, RunQueryDsl};
        #[derive(diesel::QueryableByName)]
        struct Count {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let mut conn = PgConnection::establish(&postgres_url()).unwrap_or_else(|e| panic!("{e}"));
        let rows: Vec<Count> = diesel::sql_query(format!(
            "SELECT count(*) FILTER (WHERE s.ssl) AS n FROM pg_stat_activity a \
             JOIN pg_stat_ssl s USING (pid) WHERE a.application_name = '{app_name}'"
        ))
        .load(&mut conn)
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(
            rows.first().is_some_and(|c| c.n >= 1),
            "no TLS connection of the service"
        );
    }
    let _ = child.kill();
    let _ = child.wait();

    // Another CA: a clear failure at start.
    ca_file(&dir, "wrong-ca");
    let out = poam(&env(&dir.join("wrong-ca.pem")))
        .arg("serve")
        .stdout(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("spawn: {e}"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "started with the wrong CA: {err}");
    assert!(err.contains("cannot connect to postgres://"), "{err}");
    assert!(err.contains("certificate verify failed"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A CA certificate `name.pem` in `dir` that signed nothing the server presents.
fn ca_file(dir: &Path, name: &str) {
    ca(dir, name);
}
