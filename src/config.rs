//! Configuration: environment variables, optionally layered over a file of `KEY=VALUE` lines
//! (`POAM_CONFIG`); the environment wins. Secrets are held in [`Secret`], which never prints.

use poam_persistence::{DatabaseUrl, PoolOptions};
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Every setting, with its default, as `poam --help` documents it.
pub const VARIABLES: &[(&str, &str)] = &[
    ("POAM_CONFIG", "file of KEY=VALUE lines read first; the environment overrides it"),
    ("POAM_DATA_DIR", "directory for the SQLite file and the generated signing key [default: ./data]"),
    ("POAM_DATABASE_URL", "sqlite://PATH or postgres://USER[:PASSWORD]@HOST[:PORT]/DB [default: sqlite://$POAM_DATA_DIR/poam.db]"),
    ("POAM_BIND", "address to listen on [default: 127.0.0.1:8080]"),
    ("POAM_TLS_CERT", "PEM certificate chain (server certificate first) to serve HTTPS with, TLS 1.2 and 1.3 only; read again on SIGHUP (a bad new one is logged and the old one kept); with POAM_TLS_KEY [default: none, plain HTTP]"),
    ("POAM_TLS_KEY", "PEM private key of POAM_TLS_CERT (PKCS#8, PKCS#1 or SEC1), mode 0600; read again on SIGHUP [default: none]"),
    ("POAM_TLS_CLIENT_CA", "PEM bundle of the CAs whose client certificates are accepted (mutual TLS); a certificate is optional, one from another CA is refused at the handshake; a request without a bearer token is authenticated by its certificate through POAM_CLAIMS_MAP's cert.* rules [default: none, no client certificates asked]"),
    ("POAM_AUTO_MIGRATE", "apply pending migrations on start: true|false [default: true on SQLite, false on PostgreSQL]"),
    ("POAM_POOL_SIZE", "database connections per instance [default: 8]"),
    ("POAM_SQLITE_BUSY_TIMEOUT_MS", "how long a SQLite write waits on another process's lock before 503 [default: 5000]"),
    ("POAM_POOL_TIMEOUT_MS", "longest wait for a database connection before answering 503 [default: 5000]"),
    ("POAM_EVIDENCE_MAX_BYTES", "largest evidence file accepted, in bytes [default: 31457280, eMASS's 30 MiB]"),
    ("POAM_BULK_MAX_ITEMS", "most elements of one bulk upsert; more is 413 [default: 1000]"),
    ("POAM_IMPORT_MAX_BYTES", "largest bulk, OSCAL or spreadsheet import body, in bytes [default: 33554432]"),
    ("POAM_SCAN_MAX_BYTES", "largest streamed scan file (.nessus, CKL, CSV), in bytes; CKLB and SARIF take the import limit [default: 1073741824]"),
    ("POAM_WORKERS", "HTTP worker threads [default: one per CPU]"),
    ("POAM_ESCALATION_GRACE_DAYS", "days an unresolved item may be overdue before it reads as escalated [default: 14]"),
    ("POAM_CLASSIFICATION_BANNER", "the classification banner in row 1 of eMASS template exports, 1 to 200 characters [default: ***** CONTROLLED UNCLASSIFIED INFORMATION *****]"),
    ("POAM_EVIDENCE_KEY_FILE", "the master key that encrypts evidence and scan files at rest (AES-256-GCM): a file of 32 random bytes, raw or as 64 hex characters, mode 0600 (`openssl rand -hex 32`); required once any file is stored encrypted [default: none, files stored unencrypted]"),
    ("POAM_EVIDENCE_ENCRYPTION", "auto: encrypt when POAM_EVIDENCE_KEY_FILE is set; required: refuse to start without it [default: auto]"),
    ("POAM_JWT_ALGORITHM", "HS256, RS256, ES256 or EdDSA [default: HS256]"),
    ("POAM_JWT_SECRET", "HS256 secret, at least 32 bytes [default: generated into $POAM_DATA_DIR/jwt-secret, mode 0600]"),
    ("POAM_JWT_PUBLIC_KEY_FILE", "PEM public key that verifies RS256/ES256/EdDSA tokens (your identity provider's)"),
    ("POAM_JWT_PRIVATE_KEY_FILE", "PEM private key, only for `poam token` with RS256/ES256/EdDSA"),
    ("POAM_JWT_ISSUER", "required `iss` of tokens (and set on minted ones)"),
    ("POAM_JWT_AUDIENCE", "required `aud` of tokens (and set on minted ones)"),
    ("POAM_TOKEN_MAX_TTL", "longest token lifetime (exp - iat) the server accepts and `poam token --ttl` mints: seconds, or a number with s, m, h or d [default: 90d]"),
    ("POAM_OIDC_ISSUER", "your identity provider's issuer URL: its keys come from the jwks_uri of {issuer}/.well-known/openid-configuration, whose issuer must equal it; tokens must carry it as iss unless POAM_JWT_ISSUER says otherwise; with RS256, ES256 or EdDSA [default: none]"),
    ("POAM_JWKS_URL", "URL of your identity provider's JWKS (instead of POAM_OIDC_ISSUER); keys chosen by kid; https, or http on loopback [default: none]"),
    ("POAM_JWKS_FILE", "a JWKS JSON file of verification keys (instead of a URL), read again on the same schedule [default: none]"),
    ("POAM_JWKS_REFRESH", "how often the JWKS is fetched again (and at most every 30 s when a token names an unknown kid); the last good set is kept when a fetch fails: seconds, or a number with s, m, h or d [default: 10m]"),
    ("POAM_CLAIMS_MAP", "TOML file mapping token claims (e.g. IdP groups) to roles and systems: subject, name, [[roles]] claim/value/role/systems rules; without it the roles and systems claims are read [default: none]"),
    ("POAM_LOG", "log filter, e.g. info or poam_http=debug,info [default: info]"),
    ("POAM_METRICS", "serve Prometheus metrics at /metrics to admin and auditor tokens: on or off [default: on]"),
    ("POAM_LOG_FORMAT", "text or json [default: text]"),
    ("POAM_RATE_LIMIT_PER_SECOND", "requests per second one token subject may make, sustained; 0 turns the limit off [default: 100]"),
    ("POAM_RATE_LIMIT_BURST", "requests one token subject may make at once above that rate; 0 turns the limit off [default: 200]"),
    ("POAM_RATE_LIMIT_ADDRESS_PER_SECOND", "requests per second from one client address; 0 turns the limit off [default: 500]"),
    ("POAM_RATE_LIMIT_ADDRESS_BURST", "requests one client address may make at once above that rate [default: 1000]"),
    ("POAM_AUTH_FAILURES_PER_MINUTE", "failed authentications per minute one client address may make before 429; 0 turns the limit off [default: 30]"),
    ("POAM_AUTH_FAILURE_BURST", "failed authentications one client address may make at once [default: 10]"),
    ("POAM_EXPORT_CONCURRENCY", "exports one token subject may run at once, and the service in all unless POAM_EXPORT_CONCURRENCY_TOTAL says otherwise; 0: no limit [default: 4]"),
    ("POAM_EXPORT_CONCURRENCY_TOTAL", "exports the service runs at once [default: POAM_EXPORT_CONCURRENCY]"),
    ("POAM_HEAVY_CONCURRENCY", "bulk upserts, OSCAL imports and evidence uploads one token subject may run at once, and the service in all unless POAM_HEAVY_CONCURRENCY_TOTAL says otherwise; 0: no limit [default: 4]"),
    ("POAM_HEAVY_CONCURRENCY_TOTAL", "bulk upserts, imports and uploads the service runs at once [default: POAM_HEAVY_CONCURRENCY]"),
    ("POAM_MEMORY_BUDGET_BYTES", "memory the heavy operations may hold together (a bulk or import reserves 12 times its body); 0: no budget [default: 536870912]"),
    ("POAM_EVIDENCE_QUOTA_BYTES", "evidence bytes one system may store; 0: no quota [default: 10737418240, 10 GiB]"),
    ("POAM_BODY_IDLE_TIMEOUT", "longest pause in a request body before 408: seconds, or a number with s, m or h [default: 10s]"),
    ("POAM_BODY_MIN_RATE", "slowest average rate of a request body, bytes per second, once the idle timeout has passed; 0: none [default: 1024]"),
    ("POAM_SEND_IDLE_TIMEOUT", "longest a streamed response waits for a client that takes nothing before it is abandoned [default: 30s]"),
    ("POAM_WEBHOOK_ALLOW", "hosts, addresses or CIDRs webhooks may reach despite the private-range rule (loopback, private, link-local, CGNAT, metadata), over http too; comma-separated [default: none]"),
    ("POAM_WEBHOOK_RETRY_SCHEDULE", "delays between a delivery's attempts, each spread by ±20% jitter; after the last the delivery is dead: comma-separated, units ms, s, m, h, d [default: 5s,5m,30m,2h,5h,10h,14h,20h,24h]"),
    ("POAM_WEBHOOK_TIMEOUT", "longest one delivery attempt may take, connection included [default: 15s]"),
    ("POAM_WEBHOOK_CONNECT_TIMEOUT", "longest the connection of one attempt may take [default: 5s]"),
    ("POAM_WEBHOOK_PAUSE_AFTER", "how long a subscription may fail without a success before it is paused [default: 3d]"),
    ("POAM_WEBHOOK_POLL", "how often an idle delivery worker looks for due deliveries [default: 1s]"),
    ("POAM_WEBHOOK_CONCURRENCY", "delivery attempts one instance makes at once, 1 to 256 [default: 8]"),
    ("POAM_WEBHOOK_SECRET_OVERLAP", "how long the previous secret keeps signing after a rotation, unless the request says [default: 24h]"),
    ("POAM_SCHEDULER_PERIOD", "how often the scheduler looks for time-driven events (overdue, due soon, check-ins, closeouts, reviews): units ms, s, m, h, d, or off [default: 1m]"),
    ("POAM_WEBHOOK_DELIVERY", "run the delivery worker in this instance: on or off (the outbox is written either way) [default: on]"),
    ("POAM_SMTP_URL", "the SMTP server of the daily e-mail digests, e.g. smtps://user:password@mail.example.org or smtp://relay:25 (smtp:// is plain text; add ?tls=required for STARTTLS); unset: no digests [default: none]"),
    ("POAM_SMTP_FROM", "the From address of the digests, e.g. POA&M <poam@example.org> (required with POAM_SMTP_URL)"),
    ("POAM_DIGEST_HOUR", "the UTC hour (0 to 23) from which each day's digest is sent, once per address, to whom the attention list says something waits on [default: 7]"),
];

/// A secret value: shown as `[redacted]` in every `Debug` and `Display`.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: String) -> Self {
        Secret(s)
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone)]
pub struct JwtSettings {
    pub algorithm: String,
    pub secret: Option<Secret>,
    pub public_key_file: Option<PathBuf>,
    pub private_key_file: Option<PathBuf>,
    pub issuer: Option<String>,
    pub audience: Option<String>,
    /// The longest token lifetime accepted and minted, in seconds.
    pub max_ttl: i64,
    /// Where verification keys come from instead of POAM_JWT_PUBLIC_KEY_FILE: at most one of
    /// `POAM_OIDC_ISSUER`, `POAM_JWKS_URL`, `POAM_JWKS_FILE`.
    pub oidc_issuer: Option<String>,
    pub jwks_url: Option<String>,
    pub jwks_file: Option<PathBuf>,
    /// How often the JWKS is fetched again (`POAM_JWKS_REFRESH`).
    pub jwks_refresh: Duration,
    /// The claims map file (`POAM_CLAIMS_MAP`).
    pub claims_map: Option<PathBuf>,
}

/// TLS served by the binary (`POAM_TLS_CERT`, `POAM_TLS_KEY`, `POAM_TLS_CLIENT_CA`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// The CAs of client certificates (mutual TLS); `None`: none asked for.
    pub client_ca: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub data_dir: PathBuf,
    pub database_url: DatabaseUrl,
    pub bind: String,
    /// HTTPS instead of plain HTTP; `None`: plain HTTP.
    pub tls: Option<TlsSettings>,
    pub auto_migrate: bool,
    pub pool: PoolOptions,
    pub workers: Option<usize>,
    pub evidence_max_bytes: usize,
    pub bulk_max_items: usize,
    pub metrics: bool,
    pub import_max_bytes: usize,
    pub scan_max_bytes: usize,
    /// Days an unresolved item may be overdue before it is flagged `escalated`.
    pub escalation_grace_days: u32,
    /// The classification banner of eMASS template exports (`POAM_CLASSIFICATION_BANNER`).
    pub classification_banner: String,
    pub jwt: JwtSettings,
    /// The master key file of evidence encryption (`POAM_EVIDENCE_KEY_FILE`).
    pub evidence_key_file: Option<PathBuf>,
    /// `POAM_EVIDENCE_ENCRYPTION=required`: no start without a master key.
    pub evidence_encryption_required: bool,
    pub log: String,
    pub log_format: LogFormat,
    /// Rate limits, concurrency limits, the memory budget, the evidence quota, idle timeouts.
    pub limits: poam_http::protection::Limits,
    /// Webhook delivery (`POAM_WEBHOOK_*`).
    pub webhooks: poam_http::delivery::WebhookSettings,
    /// How often the scheduler ticks; `None`: not in this instance (`POAM_SCHEDULER_PERIOD=off`).
    pub scheduler_period: Option<Duration>,
    /// The daily e-mail digests (`POAM_SMTP_*`, `POAM_DIGEST_HOUR`); `None`: off.
    pub digest: Option<crate::digest::DigestSettings>,
}

/// Reads a `KEY=VALUE` file: blank lines and `#` comments skipped, optional quotes removed.
pub fn read_file(path: &Path) -> Result<BTreeMap<String, String>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read configuration file {}: {e}", path.display()))?;
    let mut out = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (k, v) = line
            .split_once('=')
            .ok_or_else(|| format!("{}:{}: expected KEY=VALUE", path.display(), n + 1))?;
        let k = k.trim().trim_start_matches("export ").trim();
        if !VARIABLES.iter().any(|(name, _)| *name == k) {
            return Err(format!(
                "{}:{}: unknown setting `{k}`",
                path.display(),
                n + 1
            ));
        }
        let v = v.trim();
        let v = v
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(v);
        out.insert(k.to_owned(), v.to_owned());
    }
    Ok(out)
}

fn parse_bool(name: &str, v: &str) -> Result<bool, String> {
    match v.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(format!("{name}: `{v}` is not true or false")),
    }
}

/// Parses `90`, `90s`, `30m`, `12h`, `7d` into a positive number of seconds.
pub fn parse_duration(text: &str) -> Result<i64, String> {
    let text = text.trim();
    let (digits, unit) = match text.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => text.split_at(i),
        None => (text, "s"),
    };
    let n: i64 = digits
        .parse()
        .map_err(|_| format!("`{text}` is not a duration"))?;
    let factor = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("unknown unit `{unit}`; use s, m, h or d")),
    };
    match n.checked_mul(factor) {
        Some(secs) if secs > 0 => Ok(secs),
        _ => Err(format!("`{text}` is out of range")),
    }
}

fn parse_num<T: std::str::FromStr>(name: &str, v: &str) -> Result<T, String> {
    v.parse()
        .map_err(|_| format!("{name}: `{v}` is not a positive number"))
}

/// The protection settings (see `poam_http::protection`).
fn limits(get: &impl Fn(&str) -> Option<String>) -> Result<poam_http::protection::Limits, String> {
    use poam_http::protection::Limits;
    let d = Limits::default();
    let num = |name: &str, default: u64| -> Result<u64, String> {
        get(name).map_or(Ok(default), |v| parse_num(name, &v))
    };
    let small = |name: &str, default: u32| -> Result<u32, String> {
        get(name).map_or(Ok(default), |v| parse_num(name, &v))
    };
    let secs = |name: &str, default: Duration| -> Result<Duration, String> {
        match get(name) {
            Some(v) => parse_duration(&v)
                .map(|s| Duration::from_secs(s.unsigned_abs()))
                .map_err(|e| format!("{name}: {e}")),
            None => Ok(default),
        }
    };
    let size = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
    // Either of rate and burst at 0 turns a limiter off.
    let pair = |rate: &str, burst: &str, d_rate: u32, d_burst: u32| -> Result<(u32, u32), String> {
        let (r, b) = (small(rate, d_rate)?, small(burst, d_burst)?);
        Ok(if r == 0 || b == 0 { (0, 0) } else { (r, b) })
    };
    let (rate_per_second, rate_burst) = pair(
        "POAM_RATE_LIMIT_PER_SECOND",
        "POAM_RATE_LIMIT_BURST",
        d.rate_per_second,
        d.rate_burst,
    )?;
    let (address_per_second, address_burst) = pair(
        "POAM_RATE_LIMIT_ADDRESS_PER_SECOND",
        "POAM_RATE_LIMIT_ADDRESS_BURST",
        d.address_per_second,
        d.address_burst,
    )?;
    let (auth_failures_per_minute, auth_failure_burst) = pair(
        "POAM_AUTH_FAILURES_PER_MINUTE",
        "POAM_AUTH_FAILURE_BURST",
        d.auth_failures_per_minute,
        d.auth_failure_burst,
    )?;
    let export_per_token = size(num("POAM_EXPORT_CONCURRENCY", d.export_per_token as u64)?);
    let export_total = size(num(
        "POAM_EXPORT_CONCURRENCY_TOTAL",
        export_per_token as u64,
    )?);
    let heavy_per_token = size(num("POAM_HEAVY_CONCURRENCY", d.heavy_per_token as u64)?);
    let heavy_total = size(num("POAM_HEAVY_CONCURRENCY_TOTAL", heavy_per_token as u64)?);
    Ok(Limits {
        rate_per_second,
        rate_burst,
        address_per_second,
        address_burst,
        auth_failures_per_minute,
        auth_failure_burst,
        export_per_token,
        export_total,
        heavy_per_token,
        heavy_total,
        memory_budget: size(num("POAM_MEMORY_BUDGET_BYTES", d.memory_budget as u64)?),
        evidence_quota: num("POAM_EVIDENCE_QUOTA_BYTES", DEFAULT_EVIDENCE_QUOTA)?,
        body_idle: secs("POAM_BODY_IDLE_TIMEOUT", d.body_idle)?,
        body_min_rate: num("POAM_BODY_MIN_RATE", d.body_min_rate)?,
        send_idle: secs("POAM_SEND_IDLE_TIMEOUT", d.send_idle)?,
    })
}

/// Evidence one system may store unless configured: 10 GiB.
pub const DEFAULT_EVIDENCE_QUOTA: u64 = 10 << 30;

impl Settings {
    /// Builds the settings from a lookup (the process environment over the optional file).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Settings, String> {
        let get = |k: &str| get(k).filter(|v| !v.is_empty());
        let data_dir = PathBuf::from(get("POAM_DATA_DIR").unwrap_or_else(|| "./data".into()));
        let url_text = get("POAM_DATABASE_URL")
            .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("poam.db").display()));
        let database_url =
            DatabaseUrl::parse(&url_text).map_err(|e| format!("POAM_DATABASE_URL: {e}"))?;
        let auto_migrate = match get("POAM_AUTO_MIGRATE") {
            Some(v) => parse_bool("POAM_AUTO_MIGRATE", &v)?,
            None => matches!(database_url, DatabaseUrl::Sqlite(_)),
        };
        let mut pool = PoolOptions::default();
        if let Some(v) = get("POAM_POOL_SIZE") {
            pool.max_size = parse_num("POAM_POOL_SIZE", &v)?;
            if pool.max_size == 0 {
                return Err("POAM_POOL_SIZE: must be at least 1".into());
            }
        }
        let workers = get("POAM_WORKERS")
            .map(|v| parse_num("POAM_WORKERS", &v))
            .transpose()?;
        if workers == Some(0) {
            return Err("POAM_WORKERS: must be at least 1".into());
        }
        let evidence_max_bytes = match get("POAM_EVIDENCE_MAX_BYTES") {
            Some(v) => parse_num("POAM_EVIDENCE_MAX_BYTES", &v)?,
            None => 30 << 20,
        };
        let bulk_max_items = match get("POAM_BULK_MAX_ITEMS") {
            Some(v) => parse_num("POAM_BULK_MAX_ITEMS", &v)?,
            None => 1000,
        };
        if bulk_max_items == 0 {
            return Err("POAM_BULK_MAX_ITEMS: must be at least 1".into());
        }
        let metrics = match get("POAM_METRICS").as_deref() {
            None | Some("on") => true,
            Some("off") => false,
            Some(other) => return Err(format!("POAM_METRICS: `{other}` is not on or off")),
        };
        let import_max_bytes = match get("POAM_IMPORT_MAX_BYTES") {
            Some(v) => parse_num("POAM_IMPORT_MAX_BYTES", &v)?,
            None => 32 << 20,
        };
        let scan_max_bytes = match get("POAM_SCAN_MAX_BYTES") {
            Some(v) => parse_num("POAM_SCAN_MAX_BYTES", &v)?,
            None => 1 << 30,
        };
        let escalation_grace_days = match get("POAM_ESCALATION_GRACE_DAYS") {
            Some(v) => parse_num("POAM_ESCALATION_GRACE_DAYS", &v)?,
            None => poam_domain::item::DEFAULT_ESCALATION_GRACE_DAYS,
        };
        if escalation_grace_days > 3650 {
            return Err("POAM_ESCALATION_GRACE_DAYS: at most 3650 days".into());
        }
        let classification_banner = match get("POAM_CLASSIFICATION_BANNER") {
            Some(v) if v.trim().is_empty() || v.chars().count() > 200 => {
                return Err("POAM_CLASSIFICATION_BANNER: 1 to 200 characters".into())
            }
            Some(v) => v,
            None => poam_domain::exchange::emass::DEFAULT_BANNER.to_owned(),
        };
        let log_format = match get("POAM_LOG_FORMAT").as_deref() {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => return Err(format!("POAM_LOG_FORMAT: `{other}` is not text or json")),
        };
        let jwt = JwtSettings {
            algorithm: get("POAM_JWT_ALGORITHM").unwrap_or_else(|| "HS256".into()),
            secret: get("POAM_JWT_SECRET").map(Secret::new),
            public_key_file: get("POAM_JWT_PUBLIC_KEY_FILE").map(PathBuf::from),
            private_key_file: get("POAM_JWT_PRIVATE_KEY_FILE").map(PathBuf::from),
            issuer: get("POAM_JWT_ISSUER"),
            audience: get("POAM_JWT_AUDIENCE"),
            max_ttl: match get("POAM_TOKEN_MAX_TTL") {
                Some(v) => parse_duration(&v).map_err(|e| format!("POAM_TOKEN_MAX_TTL: {e}"))?,
                None => poam_http::auth::DEFAULT_MAX_LIFETIME_SECS,
            },
            oidc_issuer: get("POAM_OIDC_ISSUER"),
            jwks_url: get("POAM_JWKS_URL"),
            jwks_file: get("POAM_JWKS_FILE").map(PathBuf::from),
            jwks_refresh: match get("POAM_JWKS_REFRESH") {
                Some(v) => Duration::from_secs(
                    parse_duration(&v)
                        .map_err(|e| format!("POAM_JWKS_REFRESH: {e}"))?
                        .unsigned_abs(),
                ),
                None => poam_http::jwks::DEFAULT_REFRESH,
            },
            claims_map: get("POAM_CLAIMS_MAP").map(PathBuf::from),
        };
        let sources = [
            jwt.oidc_issuer.is_some(),
            jwt.jwks_url.is_some(),
            jwt.jwks_file.is_some(),
        ];
        if sources.iter().filter(|s| **s).count() > 1 {
            return Err(
                "POAM_OIDC_ISSUER, POAM_JWKS_URL and POAM_JWKS_FILE: set one of them, not several"
                    .into(),
            );
        }
        let evidence_encryption_required = match get("POAM_EVIDENCE_ENCRYPTION").as_deref() {
            None | Some("auto") => false,
            Some("required") => true,
            Some(other) => {
                return Err(format!(
                    "POAM_EVIDENCE_ENCRYPTION: `{other}` is not auto or required"
                ))
            }
        };
        let limits = limits(&get)?;
        let webhooks = crate::webhook_config::from_lookup(&get)?;
        let scheduler_period = match get("POAM_SCHEDULER_PERIOD").as_deref().map(str::trim) {
            None => Some(Duration::from_secs(60)),
            Some("off") => None,
            Some(v) => Some(
                poam_domain::webhooks::parse_delay(v)
                    .map_err(|e| format!("POAM_SCHEDULER_PERIOD: {e}"))?,
            ),
        };
        let digest = crate::digest::DigestSettings::from_lookup(&get)?;
        let client_ca = get("POAM_TLS_CLIENT_CA").map(PathBuf::from);
        let tls = match (get("POAM_TLS_CERT"), get("POAM_TLS_KEY")) {
            (Some(cert), Some(key)) => Some(TlsSettings {
                cert: PathBuf::from(cert),
                key: PathBuf::from(key),
                client_ca,
            }),
            (None, None) if client_ca.is_some() => {
                return Err(
                    "POAM_TLS_CLIENT_CA is set without POAM_TLS_CERT and POAM_TLS_KEY: \
                            client certificates are asked for in TLS handshakes; set both"
                        .into(),
                )
            }
            (None, None) => None,
            (Some(_), None) => {
                return Err("POAM_TLS_CERT is set without POAM_TLS_KEY: set both (the \
                            certificate chain and its private key, PEM files) or neither"
                    .into())
            }
            (None, Some(_)) => {
                return Err("POAM_TLS_KEY is set without POAM_TLS_CERT: set both (the \
                            certificate chain and its private key, PEM files) or neither"
                    .into())
            }
        };
        Ok(Settings {
            tls,
            limits,
            webhooks,
            scheduler_period,
            digest,
            data_dir,
            database_url,
            bind: get("POAM_BIND").unwrap_or_else(|| "127.0.0.1:8080".into()),
            auto_migrate,
            pool: PoolOptions {
                connection_timeout: match get("POAM_POOL_TIMEOUT_MS") {
                    Some(v) => match parse_num::<u64>("POAM_POOL_TIMEOUT_MS", &v)? {
                        0 => return Err("POAM_POOL_TIMEOUT_MS: must be at least 1".into()),
                        ms => Duration::from_millis(ms),
                    },
                    None => Duration::from_secs(5),
                },
                busy_timeout: match get("POAM_SQLITE_BUSY_TIMEOUT_MS") {
                    Some(v) => Duration::from_millis(parse_num("POAM_SQLITE_BUSY_TIMEOUT_MS", &v)?),
                    None => Duration::from_secs(5),
                },
                ..pool
            },
            workers,
            evidence_max_bytes,
            bulk_max_items,
            metrics,
            import_max_bytes,
            scan_max_bytes,
            escalation_grace_days,
            classification_banner,
            jwt,
            evidence_key_file: get("POAM_EVIDENCE_KEY_FILE").map(PathBuf::from),
            evidence_encryption_required,
            log: get("POAM_LOG").unwrap_or_else(|| "info".into()),
            log_format,
        })
    }

    /// The process environment, over the file named by `config_file` (or `POAM_CONFIG`).
    pub fn load(config_file: Option<&Path>) -> Result<Settings, String> {
        let file_path = config_file
            .map(Path::to_path_buf)
            .or_else(|| std::env::var_os("POAM_CONFIG").map(PathBuf::from));
        let file = match file_path {
            Some(p) => {
                let file = read_file(&p)?;
                // It may hold POAM_JWT_SECRET or a database password.
                crate::keys::check_private(&p, "the configuration file")?;
                file
            }
            None => BTreeMap::new(),
        };
        Settings::from_lookup(|k| std::env::var(k).ok().or_else(|| file.get(k).cloned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> Result<Settings, String> {
        let map: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_need_no_configuration() {
        let s = settings(&[]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            s.database_url,
            DatabaseUrl::Sqlite(PathBuf::from("./data/poam.db"))
        );
        assert_eq!(s.bind, "127.0.0.1:8080");
        assert!(s.auto_migrate);
        assert_eq!(s.jwt.algorithm, "HS256");
    }

    #[test]
    fn the_data_dir_moves_the_default_database() {
        let s = settings(&[("POAM_DATA_DIR", "/srv/poam")]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            s.database_url,
            DatabaseUrl::Sqlite(PathBuf::from("/srv/poam/poam.db"))
        );
    }

    #[test]
    fn postgres_does_not_migrate_by_itself_and_unknown_schemes_fail() {
        let s = settings(&[("POAM_DATABASE_URL", "postgres://u@h/db")])
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(!s.auto_migrate);
        let err = settings(&[("POAM_DATABASE_URL", "mysql://u@h/db")])
            .err()
            .unwrap_or_default();
        assert!(
            err.contains("unsupported database URL scheme `mysql`"),
            "{err}"
        );
    }

    #[test]
    fn bad_values_are_named() {
        for (k, v) in [
            ("POAM_POOL_SIZE", "0"),
            ("POAM_LOG_FORMAT", "xml"),
            ("POAM_AUTO_MIGRATE", "maybe"),
        ] {
            let err = settings(&[(k, v)]).err().unwrap_or_default();
            assert!(err.starts_with(k), "{err}");
        }
    }

    #[test]
    fn tls_needs_both_the_certificate_and_the_key() {
        let s = settings(&[]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.tls, None);
        for (pairs, needle) in [
            (
                &[("POAM_TLS_CERT", "c.pem")][..],
                "POAM_TLS_CERT is set without POAM_TLS_KEY",
            ),
            (
                &[("POAM_TLS_KEY", "k.pem")][..],
                "POAM_TLS_KEY is set without POAM_TLS_CERT",
            ),
            (
                &[("POAM_TLS_CLIENT_CA", "ca.pem")][..],
                "POAM_TLS_CLIENT_CA is set without",
            ),
        ] {
            let err = settings(pairs).err().unwrap_or_default();
            assert!(err.contains(needle), "{err}");
        }
        let s = settings(&[
            ("POAM_TLS_CERT", "c.pem"),
            ("POAM_TLS_KEY", "k.pem"),
            ("POAM_TLS_CLIENT_CA", "ca.pem"),
        ])
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            s.tls,
            Some(TlsSettings {
                cert: "c.pem".into(),
                key: "k.pem".into(),
                client_ca: Some("ca.pem".into()),
            })
        );
    }

    #[test]
    fn secrets_do_not_print() {
        let s = settings(&[("POAM_JWT_SECRET", "0123456789abcdef0123456789abcdef")])
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(!format!("{s:?}").contains("0123456789abcdef"));
    }

    #[test]
    fn files_are_read_and_unknown_keys_refused() {
        let dir = std::env::temp_dir().join(format!("poam-cfg-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap_or_default();
        let ok = dir.join("ok.env");
        std::fs::write(
            &ok,
            "# comment\nPOAM_BIND=\"0.0.0.0:9000\"\nexport POAM_LOG=debug\n",
        )
        .unwrap_or_default();
        let map = read_file(&ok).unwrap_or_default();
        assert_eq!(
            map.get("POAM_BIND").map(String::as_str),
            Some("0.0.0.0:9000")
        );
        assert_eq!(map.get("POAM_LOG").map(String::as_str), Some("debug"));
        let bad = dir.join("bad.env");
        std::fs::write(&bad, "POAM_BINDD=1\n").unwrap_or_default();
        assert!(read_file(&bad)
            .err()
            .unwrap_or_default()
            .contains("unknown setting `POAM_BINDD`"));
        std::fs::remove_dir_all(&dir).unwrap_or_default();
    }
}
