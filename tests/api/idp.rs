//! Tokens from an organisation's identity provider: a real JWKS and OpenID Connect discovery
//! server runs in the test (a thread answering HTTP on 127.0.0.1), with RS256, ES256 and
//! EdDSA keys the test makes with the `openssl` command; key rotation, unknown `kid`s (and a
//! flood of them), the identity provider being down, a discovery document naming another
//! issuer, and the claims map (groups to roles and systems).
//!
//! Most of these run on SQLite only: what they check (keys, their refresh, the verified-token
//! cache, the start-up refusal) happens before any database is touched, and is the same code
//! on both backends. The claims-map scope test runs on both: the per-system scope filters
//! database queries.

use crate::harness::{minimal_item, Backend, TestApp, SECRET};
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("poam-idp-{tag}-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("temp dir: {e}"));
    dir
}

fn openssl(args: &[&str]) -> Vec<u8> {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("openssl: {e}"));
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// A signing key of the identity provider, and its public JWK.
struct IdpKey {
    kid: String,
    alg: Algorithm,
    encoding: EncodingKey,
    jwk: Value,
}

impl IdpKey {
    /// A new key pair made by `openssl genpkey`.
    fn new(alg: Algorithm, kid: &str) -> IdpKey {
        let dir = temp_dir("key");
        let pem_path = dir.join("key.pem");
        let pem_arg = pem_path.display().to_string();
        let gen: &[&str] = match alg {
            Algorithm::RS256 => &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
            Algorithm::ES256 => &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
            _ => &["-algorithm", "ed25519"],
        };
        let mut args = vec!["genpkey"];
        args.extend_from_slice(gen);
        args.extend_from_slice(&["-out", &pem_arg]);
        openssl(&args);
        let pem = std::fs::read(&pem_path).unwrap_or_default();
        let encoding = match alg {
            Algorithm::RS256 => EncodingKey::from_rsa_pem(&pem),
            Algorithm::ES256 => EncodingKey::from_ec_pem(&pem),
            _ => EncodingKey::from_ed_pem(&pem),
        }
        .unwrap_or_else(|e| panic!("{alg:?} key: {e}"));
        let mut jwk = match alg {
            // jsonwebtoken derives RSA and EC JWKs from the private key.
            Algorithm::RS256 | Algorithm::ES256 => serde_json::to_value(
                Jwk::from_encoding_key(&encoding, alg).unwrap_or_else(|e| panic!("jwk: {e}")),
            )
            .unwrap_or_default(),
            // Ed25519: the last 32 bytes of the SubjectPublicKeyInfo are the public key.
            _ => {
                let der = openssl(&["pkey", "-in", &pem_arg, "-pubout", "-outform", "DER"]);
                let x = &der[der.len().saturating_sub(32)..];
                use base64::Engine;
                json!({
                    "kty": "OKP",
                    "crv": "Ed25519",
                    "alg": "EdDSA",
                    "x": base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(x),
                })
            }
        };
        jwk["kid"] = json!(kid);
        jwk["use"] = json!("sig");
        let _ = std::fs::remove_dir_all(&dir);
        IdpKey {
            kid: kid.to_owned(),
            alg,
            encoding,
            jwk,
        }
    }

    /// A token signed by this key, naming its `kid`.
    fn sign(&self, claims: &Value) -> String {
        self.sign_as(&self.kid, claims)
    }

    /// A token signed by this key, naming `kid`.
    fn sign_as(&self, kid: &str, claims: &Value) -> String {
        let mut header = Header::new(self.alg);
        header.kid = Some(kid.to_owned());
        jsonwebtoken::encode(&header, claims, &self.encoding).unwrap_or_default()
    }
}

/// Claims of an identity provider's token for `sub`, valid ten minutes, with `extra`.
fn claims(sub: &str, extra: Value) -> Value {
    let mut c = json!({"sub": sub, "iat": now(), "exp": now() + 600});
    if let (Some(c), Some(extra)) = (c.as_object_mut(), extra.as_object()) {
        c.extend(extra.clone());
    }
    c
}

#[derive(Default)]
struct IdpState {
    keys: Vec<Value>,
    /// The issuer the discovery document states (default: the server's own URL).
    stated_issuer: Option<String>,
    discovery_requests: usize,
    jwks_requests: usize,
}

/// A small identity provider: `/.well-known/openid-configuration` and `/jwks.json` over
/// plain HTTP on 127.0.0.1, from a key set the test changes; stopped (its port closed) by
/// [`Idp::stop`] or when dropped.
struct Idp {
    addr: SocketAddr,
    state: Arc<Mutex<IdpState>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Idp {
    fn start(keys: &[&IdpKey]) -> Idp {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("bind: {e}"));
        listener
            .set_nonblocking(true)
            .unwrap_or_else(|e| panic!("nonblocking: {e}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("addr: {e}"));
        let state = Arc::new(Mutex::new(IdpState {
            keys: keys.iter().map(|k| k.jwk.clone()).collect(),
            ..IdpState::default()
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let (thread_state, thread_stop) = (state.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            // The listener is dropped (the port closed) when the loop ends.
            while !thread_stop.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((stream, _)) => answer(stream, addr, &thread_state),
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Idp {
            addr,
            state,
            stop,
            thread: Some(thread),
        }
    }

    fn issuer(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn jwks_url(&self) -> String {
        format!("http://{}/jwks.json", self.addr)
    }

    fn state(&self) -> std::sync::MutexGuard<'_, IdpState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn publish(&self, keys: &[&IdpKey]) {
        self.state().keys = keys.iter().map(|k| k.jwk.clone()).collect();
    }

    fn jwks_requests(&self) -> usize {
        self.state().jwks_requests
    }

    fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Idp {
    fn drop(&mut self) {
        self.stop();
    }
}

fn answer(mut stream: TcpStream, addr: SocketAddr, state: &Mutex<IdpState>) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let head = String::from_utf8_lossy(&head);
    let path = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
    let (status, body) = {
        let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
        match path.as_str() {
            "/.well-known/openid-configuration" => {
                s.discovery_requests += 1;
                let own = format!("http://{addr}");
                let issuer = s.stated_issuer.clone().unwrap_or_else(|| own.clone());
                (
                    "200 OK",
                    json!({"issuer": issuer, "jwks_uri": format!("{own}/jwks.json")}),
                )
            }
            "/jwks.json" => {
                s.jwks_requests += 1;
                ("200 OK", json!({"keys": s.keys}))
            }
            _ => ("404 Not Found", json!({})),
        }
    };
    let body = body.to_string();
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.flush();
}

/// Server settings verifying tokens with `idp`'s JWKS, pinned to `alg`.
fn jwks_env<'a>(alg: &'a str, url: &'a str, refresh: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("POAM_JWT_SECRET", ""),
        ("POAM_JWT_ALGORITHM", alg),
        ("POAM_JWKS_URL", url),
        ("POAM_JWKS_REFRESH", refresh),
    ]
}

/// Polls `f` every 100 ms until it is true or `within` passed.
fn eventually(within: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if f() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Rotation: the old and the new key verify during the overlap; once the old key is removed
/// and the set refreshed, its tokens are refused, even one verified (and cached) before.
#[test]
fn rotation_overlaps_then_drops_the_removed_key() {
    let old = IdpKey::new(Algorithm::RS256, "rsa-2025");
    let new = IdpKey::new(Algorithm::RS256, "rsa-2026");
    let idp = Idp::start(&[&old]);
    let url = idp.jwks_url();
    let Some(app) = TestApp::spawn_with(Backend::Sqlite, &jwks_env("RS256", &url, "1s")) else {
        return;
    };
    let viewer = claims("alice", json!({"roles": ["viewer"], "systems": ["*"]}));
    let old_token = old.sign(&viewer);
    app.get("/v1/systems", &old_token).expect(200);
    // The IdP publishes the next key beside the current one: both verify.
    idp.publish(&[&old, &new]);
    let new_token = new.sign(&viewer);
    app.get("/v1/systems", &new_token).expect(200);
    app.get("/v1/systems", &old_token).expect(200);
    // The old key is withdrawn: within a refresh period its token (verified before, so in
    // the verified-token cache) is refused; the new key's still verifies.
    idp.publish(&[&new]);
    assert!(
        eventually(Duration::from_secs(10), || app
            .get("/v1/systems", &old_token)
            .status
            == 401),
        "the removed key's token kept verifying"
    );
    let r = app
        .get("/v1/systems", &old_token)
        .problem(401, "invalid_token");
    assert!(
        r.body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("kid"),
        "{}",
        r.body
    );
    app.get("/v1/systems", &new_token).expect(200);
    // A token naming the new key's kid but signed by the old key does not verify either.
    app.get("/v1/systems", &old.sign_as("rsa-2026", &viewer))
        .problem(401, "invalid_token");
}

/// An unknown `kid` makes one refresh, then 401; a flood of 50 bogus `kid`s right after makes
/// no further request to the identity provider (at most one per 30 s).
#[test]
fn unknown_kids_refresh_once_and_a_flood_is_rate_limited() {
    let key = IdpKey::new(Algorithm::ES256, "ec-1");
    let stranger = IdpKey::new(Algorithm::ES256, "ec-stranger");
    let idp = Idp::start(&[&key]);
    let url = idp.jwks_url();
    let Some(app) = TestApp::spawn_with(Backend::Sqlite, &jwks_env("ES256", &url, "10m")) else {
        return;
    };
    assert_eq!(idp.jwks_requests(), 1, "fetched once at start");
    let viewer = claims("bob", json!({"roles": ["viewer"], "systems": ["*"]}));
    app.get("/v1/systems", &key.sign(&viewer)).expect(200);
    assert_eq!(idp.jwks_requests(), 1, "a known kid fetches nothing");
    let r = app
        .get("/v1/systems", &stranger.sign_as("bogus-0", &viewer))
        .problem(401, "invalid_token");
    assert!(
        r.body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("kid"),
        "{}",
        r.body
    );
    assert_eq!(idp.jwks_requests(), 2, "one refresh for the unknown kid");
    for i in 1..=50 {
        app.get(
            "/v1/systems",
            &stranger.sign_as(&format!("bogus-{i}"), &viewer),
        )
        .problem(401, "invalid_token");
    }
    assert_eq!(
        idp.jwks_requests(),
        2,
        "50 bogus kids within 30 s fetch nothing more"
    );
    // Tokens of known keys are unaffected.
    app.get("/v1/systems", &key.sign(&viewer)).expect(200);
}

/// A key the identity provider publishes after the start verifies on its first token: the
/// unknown `kid` fetches the set again and the request waits for it.
#[test]
fn a_new_key_is_fetched_on_its_first_token() {
    let first = IdpKey::new(Algorithm::EdDSA, "ed-1");
    let second = IdpKey::new(Algorithm::EdDSA, "ed-2");
    let idp = Idp::start(&[&first]);
    let url = idp.jwks_url();
    let Some(app) = TestApp::spawn_with(Backend::Sqlite, &jwks_env("EdDSA", &url, "10m")) else {
        return;
    };
    let viewer = claims("carol", json!({"roles": ["viewer"], "systems": ["*"]}));
    app.get("/v1/systems", &first.sign(&viewer)).expect(200);
    idp.publish(&[&first, &second]);
    app.get("/v1/systems", &second.sign(&viewer)).expect(200);
    assert_eq!(idp.jwks_requests(), 2);
    // The algorithm stays pinned: an RS256 token is refused without a fetch, whatever its kid.
    let rsa = IdpKey::new(Algorithm::RS256, "ed-1");
    app.get("/v1/systems", &rsa.sign(&viewer))
        .problem(401, "invalid_token");
    assert_eq!(idp.jwks_requests(), 2);
}

/// The identity provider goes down: the keys fetched before keep verifying (new tokens too,
/// not only cached ones); an unknown kid is still a quick 401.
#[test]
fn cached_keys_verify_while_the_idp_is_down() {
    let key = IdpKey::new(Algorithm::RS256, "rsa-1");
    let mut idp = Idp::start(&[&key]);
    let url = idp.jwks_url();
    let Some(app) = TestApp::spawn_with(Backend::Sqlite, &jwks_env("RS256", &url, "1s")) else {
        return;
    };
    let viewer = |sub: &str| claims(sub, json!({"roles": ["viewer"], "systems": ["*"]}));
    app.get("/v1/systems", &key.sign(&viewer("before")))
        .expect(200);
    idp.stop();
    // Several scheduled refreshes fail meanwhile.
    std::thread::sleep(Duration::from_millis(2500));
    app.get("/v1/systems", &key.sign(&viewer("during")))
        .expect(200);
    let started = Instant::now();
    app.get("/v1/systems", &key.sign_as("rsa-unknown", &viewer("x")))
        .problem(401, "invalid_token");
    assert!(started.elapsed() < Duration::from_secs(4), "a bounded wait");
    app.get("/v1/systems", &key.sign(&viewer("after")))
        .expect(200);
}

fn poam(env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_poam"));
    for (k, _) in std::env::vars() {
        if k.starts_with("POAM_") {
            cmd.env_remove(k);
        }
    }
    cmd.envs(env.iter().copied());
    cmd
}

/// Discovery: the issuer's `jwks_uri` is used and tokens must carry the issuer as `iss`; a
/// discovery document naming another issuer stops the server at start with a clear message.
#[test]
fn discovery_finds_the_keys_and_refuses_another_issuer() {
    let key = IdpKey::new(Algorithm::RS256, "rsa-oidc");
    let idp = Idp::start(&[&key]);
    let issuer = idp.issuer();
    let env = [
        ("POAM_JWT_SECRET", ""),
        ("POAM_JWT_ALGORITHM", "RS256"),
        ("POAM_OIDC_ISSUER", issuer.as_str()),
    ];
    {
        let Some(app) = TestApp::spawn_with(Backend::Sqlite, &env) else {
            return;
        };
        assert_eq!(idp.state().discovery_requests, 1);
        let viewer = json!({"roles": ["viewer"], "systems": ["*"]});
        let mut with_iss = viewer.clone();
        with_iss["iss"] = json!(issuer);
        app.get("/v1/systems", &key.sign(&claims("dave", with_iss)))
            .expect(200);
        app.get("/v1/systems", &key.sign(&claims("dave", viewer)))
            .problem(401, "invalid_token");
    }
    // The same IdP now states another issuer: the server refuses to start.
    idp.state().stated_issuer = Some("https://evil.example.org".into());
    let dir = temp_dir("discovery");
    let data = dir.join("data");
    let data_arg = data.display().to_string();
    let mut child = poam(&env)
        .env("POAM_DATA_DIR", &data_arg)
        .env("POAM_BIND", "127.0.0.1:0")
        .arg("serve")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn: {e}"));
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Ok(Some(status)) = child.try_wait() {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut stderr);
    }
    let status = status.unwrap_or_else(|| panic!("the server started: {stderr}"));
    assert!(!status.success(), "{stderr}");
    assert!(
        stderr.contains("names the issuer `https://evil.example.org`")
            && stderr.contains("POAM_OIDC_ISSUER"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn write_map(dir: &Path, rules: &str) -> String {
    let path = dir.join("claims-map.toml");
    std::fs::write(
        &path,
        format!("subject = \"email\"\nname = \"name\"\n\n{rules}"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    path.display().to_string()
}

const ADMIN_RULE: &str = r#"
[[roles]]
claim = "groups"
value = "poam-admins"
role = "admin"
systems = ["*"]
"#;

fn editor_rule(system: &str) -> String {
    format!(
        r#"
[[roles]]
claim = "groups"
value = "sys-payroll-editors"
role = "editor"
systems = ["{system}"]
"#
    )
}

/// The claims map: an admin group over every system, an editor group limited to its system
/// (404 on another, as for any system outside a scope), and a token whose groups match no rule
/// refused with `no_role_mapped`. On both backends: the scope filters database queries.
fn claims_map_groups(backend: Backend) {
    let key = IdpKey::new(Algorithm::EdDSA, "ed-groups");
    let idp = Idp::start(&[&key]);
    let url = idp.jwks_url();
    let dir = temp_dir("map");
    let env = jwks_env("EdDSA", &url, "10m");
    // First an instance reading the tokens' own roles claims, to create the systems.
    let Some(setup) = TestApp::spawn_with(backend, &env) else {
        return;
    };
    let root = key.sign(&claims(
        "root",
        json!({"roles": ["admin"], "systems": ["*"]}),
    ));
    let system = |name: &str| {
        setup
            .post("/v1/systems", &root, &json!({"name": name}))
            .expect(201)
            .body["id"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    let payroll = system("Payroll");
    let other = system("Other");
    // Then an instance on the same database with the claims map.
    let map = write_map(&dir, &format!("{ADMIN_RULE}{}", editor_rule(&payroll)));
    let database = match &setup.settings.database_url {
        poam_persistence::DatabaseUrl::Sqlite(p) => format!("sqlite://{}", p.display()),
        poam_persistence::DatabaseUrl::Postgres(u) => u.clone(),
    };
    let mut mapped_env = env.clone();
    mapped_env.push(("POAM_CLAIMS_MAP", &map));
    mapped_env.push(("POAM_DATABASE_URL", &database));
    let Some(app) = TestApp::spawn_with(backend, &mapped_env) else {
        return;
    };
    let person = |email: &str, groups: Value| {
        key.sign(&json!({
            "sub": format!("00u{}", email.len()),
            "email": email,
            "name": "Someone",
            "groups": groups,
            "iat": now(),
            "exp": now() + 600,
        }))
    };
    // The admin group: every system.
    let admin = person("admin@example.org", json!(["Everyone", "poam-admins"]));
    let listed = app.get("/v1/systems", &admin).expect(200);
    assert_eq!(listed.body["items"].as_array().map(Vec::len), Some(2));
    // The per-system editor group: its system only.
    let editor = person(
        "pat@example.org",
        json!(["Everyone", "sys-payroll-editors"]),
    );
    let listed = app.get("/v1/systems", &editor).expect(200);
    let ids: Vec<&str> = listed.body["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["id"].as_str())
        .collect();
    assert_eq!(ids, [payroll.as_str()]);
    app.post(
        &format!("/v1/systems/{payroll}/items"),
        &editor,
        &minimal_item(),
    )
    .expect(201);
    // The subject is the mapped claim (email): the actor of the change in the history.
    let history = app
        .get(
            &format!("/v1/systems/{payroll}/events?resource=item"),
            &admin,
        )
        .expect(200);
    assert!(
        history
            .body
            .to_string()
            .contains("\"actor\":\"pat@example.org\""),
        "{}",
        history.body
    );
    app.get(&format!("/v1/systems/{other}"), &editor)
        .problem(404, "not_found");
    app.post(
        &format!("/v1/systems/{other}/items"),
        &editor,
        &minimal_item(),
    )
    .problem(404, "not_found");
    // An editor cannot do what only an admin may.
    app.delete(&format!("/v1/systems/{payroll}"), &editor, None)
        .problem(403, "forbidden");
    // Groups that match no rule: refused, saying why. The token's own roles claim is ignored
    // under a claims map.
    let nobody = person("guest@example.org", json!(["Everyone"]));
    let r = app
        .get("/v1/systems", &nobody)
        .problem(403, "no_role_mapped");
    assert!(
        r.body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("map to no role"),
        "{}",
        r.body
    );
    let with_roles_claim = key.sign(&json!({
        "sub": "root", "email": "root@example.org", "roles": ["admin"], "systems": ["*"],
        "iat": now(), "exp": now() + 600,
    }));
    app.get("/v1/systems", &with_roles_claim)
        .problem(403, "no_role_mapped");
    // A token without the subject claim the map names is no one.
    let r = app.get("/v1/systems", &root).problem(401, "invalid_token");
    assert!(
        r.body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("`email`"),
        "{}",
        r.body
    );
    drop(app);
    drop(setup);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn claims_map_groups_sqlite() {
    claims_map_groups(Backend::Sqlite);
}

#[test]
fn claims_map_groups_postgres() {
    claims_map_groups(Backend::Postgres);
}

/// `poam auth explain` prints what a token maps to (never the token), or why it is refused.
/// No database is involved: SQLite settings only.
#[test]
fn auth_explain_prints_the_mapping() {
    let key = IdpKey::new(Algorithm::ES256, "ec-explain");
    let idp = Idp::start(&[&key]);
    let url = idp.jwks_url();
    let dir = temp_dir("explain");
    let system = "0193a5b0-0000-7000-8000-00000000beef";
    let map = write_map(&dir, &format!("{ADMIN_RULE}{}", editor_rule(system)));
    let data = dir.join("data").display().to_string();
    let env = [
        ("POAM_DATA_DIR", data.as_str()),
        ("POAM_JWT_ALGORITHM", "ES256"),
        ("POAM_JWKS_URL", url.as_str()),
        ("POAM_CLAIMS_MAP", map.as_str()),
    ];
    let explain = |token: &str| {
        let file = dir.join(format!("token-{}", uuid::Uuid::new_v4()));
        std::fs::write(&file, format!("{token}\n")).unwrap_or_else(|e| panic!("{e}"));
        let out = poam(&env)
            .args(["auth", "explain", "--token-file"])
            .arg(&file)
            .output()
            .unwrap_or_else(|e| panic!("{e}"));
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let token = key.sign(&json!({
        "sub": "00u42",
        "email": "pat@example.org",
        "name": "Pat Doe",
        "groups": ["Everyone", "sys-payroll-editors"],
        "iat": now(),
        "exp": now() + 600,
    }));
    let (ok, out, err) = explain(&token);
    assert!(ok, "{out}{err}");
    for expected in [
        "subject:  pat@example.org",
        "name:     Pat Doe",
        "roles:    editor",
        system,
        "groups has \"sys-payroll-editors\" → editor",
        "ec-explain",
    ] {
        assert!(out.contains(expected), "lacks {expected}: {out}");
    }
    assert!(
        !out.contains(&token) && !err.contains(&token),
        "the token is never printed"
    );
    // No rule matches: refused, with the code, and what the rules read.
    let nobody = key.sign(&json!({
        "sub": "00u7", "email": "guest@example.org", "groups": ["Everyone"],
        "iat": now(), "exp": now() + 600,
    }));
    let (ok, out, err) = explain(&nobody);
    assert!(!ok);
    assert!(err.contains("no_role_mapped"), "{err}");
    assert!(out.contains("groups = [\"Everyone\"]"), "{out}");
    // A token of a key the identity provider does not have.
    let stranger = IdpKey::new(Algorithm::ES256, "ec-stranger");
    let (ok, _, err) = explain(&stranger.sign(&claims("x", json!({}))));
    assert!(!ok);
    assert!(
        err.contains("invalid_token") && err.contains("kid"),
        "{err}"
    );
    // Without an identity provider: the HS256 secret and the token's own claims.
    let hs = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims("ops", json!({"roles": ["auditor"], "systems": ["*"]})),
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap_or_default();
    let file = dir.join("hs-token");
    std::fs::write(&file, &hs).unwrap_or_else(|e| panic!("{e}"));
    let out = poam(&[
        ("POAM_DATA_DIR", data.as_str()),
        ("POAM_JWT_SECRET", SECRET),
    ])
    .args(["auth", "explain", "--token-file"])
    .arg(&file)
    .output()
    .unwrap_or_else(|e| panic!("{e}"));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("roles:    auditor") && text.contains("own roles and systems claims"),
        "{text}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
