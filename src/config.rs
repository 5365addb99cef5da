//! Configuration: environment variables, optionally layered over a file of `KEY=VALUE` lines
//! (`POAM_CONFIG`); the environment wins. Secrets are held in [`Secret`], which never prints.
//!
//! Each setting is defined once, in [`SETTINGS`]: its name, kind, default, help and whether it
//! is secret. `poam --help`, `poam config --markdown` (the README's table, which a test compares),
//! the configuration file's known keys and the defaults [`Settings::from_lookup`] reads all come
//! from that definition; to add a setting, add it there, read it in `from_lookup`, and paste
//! `poam config --markdown` into the README.

use poam_persistence::{DatabaseUrl, PoolOptions};
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What a setting takes, and so how it is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Free text (an address, a URL, a log filter...).
    Text,
    /// A file or directory.
    Path,
    /// A whole number.
    Number,
    /// Seconds, or a number with `s`, `m`, `h` or `d` ([`parse_duration`]).
    Duration,
    /// A number with `ms`, `s`, `m`, `h` or `d` (`poam_domain::webhooks::parse_delay`).
    Delay,
    /// `true` or `false` (also `1`/`0`, `yes`/`no`, `on`/`off`).
    Bool,
    /// One of these words.
    Choice(&'static [&'static str]),
    /// Comma-separated items.
    List,
}

/// A setting's default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefaultValue {
    /// This value, read exactly as if it were set; the note says what it amounts to ("30 MiB").
    Value(&'static str, &'static str),
    /// Worked out from other settings, as the text says.
    Derived(&'static str),
    /// No value; the text (if any) says what that means.
    Unset(&'static str),
}

impl DefaultValue {
    /// The value read when the setting is unset.
    pub fn value(&self) -> Option<&'static str> {
        match self {
            DefaultValue::Value(v, _) => Some(v),
            _ => None,
        }
    }

    /// As `--help` shows it: `[default: 8]`.
    fn help(&self) -> String {
        match self {
            DefaultValue::Value(v, "") => format!("[default: {v}]"),
            DefaultValue::Value(v, note) => format!("[default: {v}, {note}]"),
            DefaultValue::Derived(text) => format!("[default: {}]", text.replace('`', "")),
            DefaultValue::Unset("") => "[default: none]".to_owned(),
            DefaultValue::Unset(text) => format!("[default: none, {text}]"),
        }
    }

    /// As the README's table shows it: `` `8` ``.
    fn markdown(&self) -> String {
        match self {
            DefaultValue::Value(v, "") => format!("`{v}`"),
            DefaultValue::Value(v, note) => format!("`{v}` ({note})"),
            DefaultValue::Derived(text) => (*text).to_owned(),
            DefaultValue::Unset("") => "—".to_owned(),
            DefaultValue::Unset(text) => format!("none ({text})"),
        }
    }
}

/// One setting: the only place its name, default, help and secrecy are written.
#[derive(Debug, Clone, Copy)]
pub struct Setting {
    pub name: &'static str,
    pub kind: Kind,
    pub default: DefaultValue,
    pub help: &'static str,
    /// The value may hold a password or key: read only into [`Secret`] (or a type that redacts).
    pub secret: bool,
}

const fn setting(
    name: &'static str,
    kind: Kind,
    default: DefaultValue,
    help: &'static str,
) -> Setting {
    Setting {
        name,
        kind,
        default,
        help,
        secret: false,
    }
}

const fn secret(
    name: &'static str,
    kind: Kind,
    default: DefaultValue,
    help: &'static str,
) -> Setting {
    Setting {
        name,
        kind,
        default,
        help,
        secret: true,
    }
}

const ON_OFF: Kind = Kind::Choice(&["on", "off"]);
const NONE: DefaultValue = DefaultValue::Unset("");

const fn value(v: &'static str) -> DefaultValue {
    DefaultValue::Value(v, "")
}

/// Every setting: `poam --help`, `poam config --markdown` (the README's table), the
/// configuration file's known keys and the defaults [`Settings::from_lookup`] reads all come
/// from here.
pub const SETTINGS: &[Setting] = &[
    setting("POAM_CONFIG", Kind::Path, NONE, "a file of `KEY=VALUE` lines read first (also `--config`); the environment overrides it; refused if its group or others may read it"),
    setting("POAM_DATA_DIR", Kind::Path, value("./data"), "directory of the SQLite file and the generated signing key"),
    secret("POAM_DATABASE_URL", Kind::Text, DefaultValue::Derived("`sqlite://$POAM_DATA_DIR/poam.db`"), "`sqlite://PATH` or `postgres://USER[:PASSWORD]@HOST[:PORT]/DB`; any other scheme is an error; the password is never logged"),
    setting("POAM_BIND", Kind::Text, value("127.0.0.1:8080"), "address to listen on"),
    setting("POAM_TLS_CERT", Kind::Path, DefaultValue::Unset("plain HTTP"), "PEM certificate chain (server certificate first) to serve HTTPS with, TLS 1.2 and 1.3 only; read again on SIGHUP (a bad new one is logged and the old one kept); with `POAM_TLS_KEY`"),
    setting("POAM_TLS_KEY", Kind::Path, NONE, "PEM private key of `POAM_TLS_CERT` (PKCS#8, PKCS#1 or SEC1), mode 0600; read again on SIGHUP"),
    setting("POAM_TLS_CLIENT_CA", Kind::Path, DefaultValue::Unset("no client certificates asked for"), "PEM bundle of the CAs whose client certificates are accepted (mutual TLS); a certificate is optional, one from another CA is refused at the handshake; a request without a bearer token is authenticated by its certificate through `POAM_CLAIMS_MAP`'s `cert.*` rules"),
    setting("POAM_AUTO_MIGRATE", Kind::Bool, DefaultValue::Derived("`true` on SQLite, `false` on PostgreSQL"), "apply pending migrations on start: `true` or `false`"),
    setting("POAM_POOL_SIZE", Kind::Number, value("8"), "database connections per instance; on SQLite all are opened at start and kept (they share `POAM_SQLITE_CACHE_MIB`)"),
    setting("POAM_SQLITE_CACHE_MIB", Kind::Number, value("16"), "SQLite's page cache in MiB, one for the process, shared by the pool's connections; filled as pages are read (10,000 items and their indexes take 22 MiB; `GET /v1/items/{id}` reads 1.2 MiB of them); at least 1"),
    setting("POAM_ITEM_CACHE_MIB", Kind::Number, value("24"), "the rendered items `GET /v1/items/{id}` may keep, in MiB, shared by the workers (24 MiB hold 12,000 items); a kept rendering answers only of the item's current version (and day): every read asks the database whether anything was committed since it was last checked, and reads the item's stamp if so; SQLite only; `0` keeps none; at most 4096"),
    setting("POAM_SQLITE_BUSY_TIMEOUT_MS", Kind::Number, value("5000"), "longest wait on another process's SQLite write lock before a 503, in milliseconds"),
    setting("POAM_POOL_TIMEOUT_MS", Kind::Number, value("5000"), "longest wait for a database connection before a 503, in milliseconds"),
    setting("POAM_EVIDENCE_MAX_BYTES", Kind::Number, DefaultValue::Value("31457280", "30 MiB, eMASS's"), "largest evidence file accepted, in bytes"),
    setting("POAM_BULK_MAX_ITEMS", Kind::Number, value("1000"), "most elements of one bulk upsert; more is 413"),
    setting("POAM_IMPORT_MAX_BYTES", Kind::Number, DefaultValue::Value("33554432", "32 MiB"), "largest bulk, OSCAL or spreadsheet (FedRAMP, eMASS) import body, in bytes; also CKLB and SARIF scan files"),
    setting("POAM_SCAN_MAX_BYTES", Kind::Number, DefaultValue::Value("1073741824", "1 GiB"), "largest streamed scan file (`.nessus`, CKL, CSV), in bytes: spooled to disk and read twice, never held in memory"),
    setting("POAM_WORKERS", Kind::Number, DefaultValue::Derived("one per CPU"), "HTTP worker threads"),
    setting("POAM_ESCALATION_GRACE_DAYS", Kind::Number, value("14"), "days an unresolved item may be overdue before it reads as `escalated`, at most 3650"),
    setting("POAM_CLASSIFICATION_BANNER", Kind::Text, value(poam_domain::exchange::emass::DEFAULT_BANNER), "the classification banner in row 1 of eMASS template exports, 1 to 200 characters"),
    setting("POAM_EVIDENCE_KEY_FILE", Kind::Path, DefaultValue::Unset("files stored unencrypted"), "the master key that encrypts evidence and scan files at rest (AES-256-GCM): a file of 32 random bytes, raw or as 64 hex characters, mode 0600 (`openssl rand -hex 32`); required once any file is stored encrypted"),
    setting("POAM_EVIDENCE_ENCRYPTION", Kind::Choice(&["auto", "required"]), value("auto"), "`auto`: encrypt when `POAM_EVIDENCE_KEY_FILE` is set; `required`: refuse to start without it"),
    setting("POAM_JWT_ALGORITHM", Kind::Text, value("HS256"), "`HS256`, `RS256`, `ES256` or `EdDSA` (pinned: tokens signed with another are refused)"),
    secret("POAM_JWT_SECRET", Kind::Text, DefaultValue::Derived("generated into `$POAM_DATA_DIR/jwt-secret`, mode 0600"), "HS256 secret shared by several instances: at least 32 bytes, random (one with fewer than 8 distinct characters or under ~96 bits of estimated entropy, such as `aaaa…`, is refused)"),
    setting("POAM_JWT_PUBLIC_KEY_FILE", Kind::Path, NONE, "PEM public key that verifies your identity provider's RS256/ES256/EdDSA tokens"),
    setting("POAM_JWT_PRIVATE_KEY_FILE", Kind::Path, NONE, "PEM private key, only for `poam token` with RS256/ES256/EdDSA"),
    setting("POAM_JWT_ISSUER", Kind::Text, NONE, "required `iss` of tokens (and set on minted ones)"),
    setting("POAM_JWT_AUDIENCE", Kind::Text, NONE, "required `aud` of tokens (and set on minted ones)"),
    setting("POAM_TOKEN_MAX_TTL", Kind::Duration, value("90d"), "longest token lifetime (`exp - iat`) the server accepts and `poam token --ttl` mints: seconds, or a number with s, m, h or d"),
    setting("POAM_OIDC_ISSUER", Kind::Text, NONE, "your identity provider's issuer URL: its keys come from the `jwks_uri` of `{issuer}/.well-known/openid-configuration`, whose issuer must equal it; tokens must carry it as `iss` unless `POAM_JWT_ISSUER` says otherwise; with RS256, ES256 or EdDSA"),
    setting("POAM_JWKS_URL", Kind::Text, NONE, "URL of your identity provider's JWKS (instead of `POAM_OIDC_ISSUER`); keys chosen by `kid`; https, or http on loopback"),
    setting("POAM_JWKS_FILE", Kind::Path, NONE, "a JWKS JSON file of verification keys (instead of a URL), read again on the same schedule"),
    setting("POAM_JWKS_REFRESH", Kind::Duration, value("10m"), "how often the JWKS is fetched again (and at most every 30 s when a token names an unknown `kid`); the last good set is kept when a fetch fails: seconds, or a number with s, m, h or d"),
    setting("POAM_CLAIMS_MAP", Kind::Path, NONE, "TOML file mapping token claims (e.g. IdP groups) to roles and systems: `subject`, `name`, `[[roles]]` `claim`/`value`/`role`/`systems` rules; without it the `roles` and `systems` claims are read"),
    setting("POAM_LOG", Kind::Text, value("info"), "log filter, e.g. `info` or `poam_http=debug,info` (stderr)"),
    setting("POAM_METRICS", ON_OFF, value("on"), "Prometheus metrics at `/metrics` for admin and auditor tokens; `off` removes them"),
    setting("POAM_LOG_FORMAT", Kind::Choice(&["text", "json"]), value("text"), "`text`, or `json` for structured logs"),
    setting("POAM_RATE_LIMIT_PER_SECOND", Kind::Number, value("100"), "requests per second one token subject may make, sustained; over it: 429 `rate_limited` with `Retry-After`; `0` turns the limit off"),
    setting("POAM_RATE_LIMIT_BURST", Kind::Number, value("200"), "requests one token subject may make at once above that rate; `0` turns the limit off"),
    setting("POAM_RATE_LIMIT_ADDRESS_PER_SECOND", Kind::Number, value("500"), "requests per second from one client address (the TCP peer: behind a proxy, all its clients share one budget), authenticated or not; `/healthz` and `/readyz` are exempt; `0` turns the limit off"),
    setting("POAM_RATE_LIMIT_ADDRESS_BURST", Kind::Number, value("1000"), "requests one client address may make at once above that rate; `0` turns the limit off"),
    setting("POAM_AUTH_FAILURES_PER_MINUTE", Kind::Number, value("30"), "failed authentications per minute one client address may make; once spent, that address is answered 429 `too_many_failed_authentications` (good tokens too) until it recovers; `0` turns the limit off"),
    setting("POAM_AUTH_FAILURE_BURST", Kind::Number, value("10"), "failed authentications one client address may make at once; `0` turns the limit off"),
    setting("POAM_EXPORT_CONCURRENCY", Kind::Number, value("4"), "exports one token subject may run at once (429 `too_many_concurrent` beyond), and the service in all (503 `server_busy`) unless `POAM_EXPORT_CONCURRENCY_TOTAL` says otherwise; `0`: no limit"),
    setting("POAM_EXPORT_CONCURRENCY_TOTAL", Kind::Number, DefaultValue::Derived("`POAM_EXPORT_CONCURRENCY`"), "exports the service runs at once, when it should differ from the per-token limit"),
    setting("POAM_HEAVY_CONCURRENCY", Kind::Number, value("4"), "bulk upserts, OSCAL imports and evidence uploads one token subject may run at once (429), and the service in all (503) unless `POAM_HEAVY_CONCURRENCY_TOTAL` says otherwise; `0`: no limit"),
    setting("POAM_HEAVY_CONCURRENCY_TOTAL", Kind::Number, DefaultValue::Derived("`POAM_HEAVY_CONCURRENCY`"), "bulk upserts, imports and uploads the service runs at once"),
    setting("POAM_MEMORY_BUDGET_BYTES", Kind::Number, DefaultValue::Value("536870912", "512 MiB"), "memory the heavy operations may hold together: a bulk or import reserves 6 × its `Content-Length` (or 6 × `POAM_IMPORT_MAX_BYTES` without one), capped at the budget; an upload or export 1 MiB. Spent: 503 `memory_budget_exhausted`; `0` turns it off"),
    setting("POAM_EVIDENCE_QUOTA_BYTES", Kind::Number, DefaultValue::Value("10737418240", "10 GiB"), "evidence bytes one system may store (withdrawn evidence counts: it is kept); an upload that does not fit is 413 `evidence_quota_exceeded` and nothing is stored; `0`: no quota"),
    setting("POAM_BODY_IDLE_TIMEOUT", Kind::Duration, value("10s"), "longest pause in a request body: 408 `body_timeout`, connection closed; seconds, or a number with s, m, h or d"),
    setting("POAM_BODY_MIN_RATE", Kind::Number, value("1024"), "slowest average rate of a request body in bytes per second, once the idle timeout has passed since it began (a 200 B/s trickle is cut off with 408); `0`: no minimum"),
    setting("POAM_LINGER_TIMEOUT", Kind::Duration, value("10s"), "after an answer given before a request's body was read (a refusal: 401, 413, 429, 503), how long the rest of the body is still read and thrown away before the connection closes, so that a client that sends its whole body before reading sees the answer rather than a reset connection; `0` closes at once"),
    setting("POAM_SEND_IDLE_TIMEOUT", Kind::Duration, value("30s"), "longest a streamed response (an export) waits for a client that takes nothing: then it is abandoned and the connection closes short of its `Content-Length`"),
    setting("POAM_WEBHOOK_ALLOW", Kind::List, NONE, "hosts, addresses or CIDRs (comma-separated) webhooks may reach although they are loopback, private, link-local, CGNAT or metadata addresses; http is allowed for them too"),
    setting("POAM_WEBHOOK_RETRY_SCHEDULE", Kind::List, value("5s,5m,30m,2h,5h,10h,14h,20h,24h"), "delays between a delivery's attempts (comma-separated, units `ms`, `s`, `m`, `h`, `d`), each spread by ±20% jitter; after the last failed attempt the delivery is `dead` (about 3 days)"),
    setting("POAM_WEBHOOK_TIMEOUT", Kind::Delay, value("15s"), "longest one delivery attempt may take, connection included"),
    setting("POAM_WEBHOOK_CONNECT_TIMEOUT", Kind::Delay, value("5s"), "longest the connection of one attempt may take"),
    setting("POAM_WEBHOOK_PAUSE_AFTER", Kind::Delay, value("3d"), "a subscription whose deliveries fail this long without one success is paused (also at once on `410 Gone`)"),
    setting("POAM_WEBHOOK_POLL", Kind::Delay, value("1s"), "how often an idle delivery worker looks for due deliveries"),
    setting("POAM_WEBHOOK_CONCURRENCY", Kind::Number, value("8"), "delivery attempts one instance makes at once, 1 to 256"),
    setting("POAM_WEBHOOK_SECRET_OVERLAP", Kind::Delay, value("24h"), "how long the previous secret keeps signing after a rotation, unless the request says"),
    setting("POAM_SCHEDULER_PERIOD", Kind::Delay, value("1m"), "how often the scheduler looks for time-driven events (overdue, due soon, check-ins, closeouts, reviews): units `ms`, `s`, `m`, `h`, `d`; `off`: not in this instance. Safe to run on every instance"),
    setting("POAM_WEBHOOK_DELIVERY", ON_OFF, value("on"), "`off`: this instance writes the outbox but does not deliver (another instance does)"),
    secret("POAM_SMTP_URL", Kind::Text, DefaultValue::Unset("no digests"), "SMTP server for the daily e-mail digests: `smtps://user:password@mail.example.org` (implicit TLS), `smtp://relay:25?tls=required` (STARTTLS), `smtp://relay:25` (plain); the password is never logged"),
    setting("POAM_SMTP_FROM", Kind::Text, NONE, "From address of the digests (`POA&M <poam@example.org>`); required with `POAM_SMTP_URL`"),
    setting("POAM_DIGEST_HOUR", Kind::Number, value("7"), "UTC hour (0 to 23) from which each day's digest is sent, once per address, to whom the attention list says something waits on"),
];

/// The setting of this name.
pub fn find(name: &str) -> Option<&'static Setting> {
    SETTINGS.iter().find(|s| s.name == name)
}

/// The settings as `poam --help` lists them: one line each, help then default.
pub fn help_text() -> String {
    let mut out = String::new();
    for s in SETTINGS {
        out.push_str(&format!(
            "  {:<26} {} {}\n",
            s.name,
            s.help,
            s.default.help()
        ));
    }
    out
}

/// The README's configuration table (`poam config --markdown`).
pub fn markdown_table() -> String {
    let mut out = String::from("| variable | default | meaning |\n|---|---|---|\n");
    for s in SETTINGS {
        out.push_str(&format!(
            "| `{}` | {} | {} |\n",
            s.name,
            s.default.markdown(),
            s.help
        ));
    }
    out
}

/// Reads settings by their definitions: the value set (a blank one counts as unset), else the
/// definition's default value; the reader must match the definition's kind, and a secret is
/// only read as a [`Secret`].
struct Lookup<'a> {
    get: &'a dyn Fn(&str) -> Option<String>,
}

impl Lookup<'_> {
    fn value(
        &self,
        name: &str,
        kind: fn(Kind) -> bool,
        secret: bool,
    ) -> Result<Option<String>, String> {
        let s = find(name).ok_or_else(|| format!("{name}: not a defined setting"))?;
        if !kind(s.kind) || s.secret != secret {
            return Err(format!(
                "{name}: read other than its definition says ({:?})",
                s.kind
            ));
        }
        Ok((self.get)(name).or_else(|| s.default.value().map(str::to_owned)))
    }

    fn text(&self, name: &str) -> Result<Option<String>, String> {
        self.value(name, |k| k == Kind::Text, false)
    }

    fn secret(&self, name: &str) -> Result<Option<Secret>, String> {
        Ok(self
            .value(name, |k| k == Kind::Text, true)?
            .map(Secret::new))
    }

    fn path(&self, name: &str) -> Result<Option<PathBuf>, String> {
        Ok(self
            .value(name, |k| k == Kind::Path, false)?
            .map(PathBuf::from))
    }

    fn number<T: std::str::FromStr>(&self, name: &str) -> Result<Option<T>, String> {
        self.value(name, |k| k == Kind::Number, false)?
            .map(|v| parse_num(name, &v))
            .transpose()
    }

    fn bool(&self, name: &str) -> Result<Option<bool>, String> {
        self.value(name, |k| k == Kind::Bool, false)?
            .map(|v| parse_bool(name, &v))
            .transpose()
    }

    fn duration(&self, name: &str) -> Result<Option<Duration>, String> {
        self.value(name, |k| k == Kind::Duration, false)?
            .map(|v| {
                parse_duration(&v)
                    .map(|s| Duration::from_secs(s.unsigned_abs()))
                    .map_err(|e| format!("{name}: {e}"))
            })
            .transpose()
    }

    /// A delay, or `None` for `off`.
    fn delay_or_off(&self, name: &str) -> Result<Option<Option<Duration>>, String> {
        self.value(name, |k| k == Kind::Delay, false)?
            .map(|v| match v.trim() {
                "off" => Ok(None),
                v => poam_domain::webhooks::parse_delay(v)
                    .map(Some)
                    .map_err(|e| format!("{name}: {e}")),
            })
            .transpose()
    }

    /// The position of the value among the definition's choices.
    fn choice(&self, name: &str) -> Result<Option<usize>, String> {
        let Some(v) = self.value(name, |k| matches!(k, Kind::Choice(_)), false)? else {
            return Ok(None);
        };
        let choices = match find(name).map(|s| s.kind) {
            Some(Kind::Choice(choices)) => choices,
            _ => &[],
        };
        choices
            .iter()
            .position(|c| *c == v)
            .map(Some)
            .ok_or_else(|| {
                let words = match choices.split_last() {
                    Some((last, [])) => (*last).to_owned(),
                    Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
                    None => String::new(),
                };
                format!("{name}: `{v}` is not {words}")
            })
    }
}

/// A setting that has a default value: `None` is a definition without one.
fn required<T>(name: &str, value: Option<T>) -> Result<T, String> {
    value.ok_or_else(|| format!("{name}: no value and no default"))
}

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

impl fmt::Display for Secret {
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
    /// What the item renderings may take (`POAM_ITEM_CACHE_MIB`), in bytes; 0: none kept.
    pub item_cache_bytes: u64,
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
        if find(k).is_none() {
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
fn limits(l: &Lookup) -> Result<poam_http::protection::Limits, String> {
    use poam_http::protection::Limits;
    let num = |name: &str| -> Result<u64, String> { required(name, l.number(name)?) };
    let small = |name: &str| -> Result<u32, String> { required(name, l.number(name)?) };
    let secs = |name: &str| -> Result<Duration, String> { required(name, l.duration(name)?) };
    let size = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
    // Either of rate and burst at 0 turns a limiter off.
    let pair = |rate: &str, burst: &str| -> Result<(u32, u32), String> {
        let (r, b) = (small(rate)?, small(burst)?);
        Ok(if r == 0 || b == 0 { (0, 0) } else { (r, b) })
    };
    let (rate_per_second, rate_burst) =
        pair("POAM_RATE_LIMIT_PER_SECOND", "POAM_RATE_LIMIT_BURST")?;
    let (address_per_second, address_burst) = pair(
        "POAM_RATE_LIMIT_ADDRESS_PER_SECOND",
        "POAM_RATE_LIMIT_ADDRESS_BURST",
    )?;
    let (auth_failures_per_minute, auth_failure_burst) =
        pair("POAM_AUTH_FAILURES_PER_MINUTE", "POAM_AUTH_FAILURE_BURST")?;
    let export_per_token = size(num("POAM_EXPORT_CONCURRENCY")?);
    let export_total = l
        .number("POAM_EXPORT_CONCURRENCY_TOTAL")?
        .map_or(export_per_token, size);
    let heavy_per_token = size(num("POAM_HEAVY_CONCURRENCY")?);
    let heavy_total = l
        .number("POAM_HEAVY_CONCURRENCY_TOTAL")?
        .map_or(heavy_per_token, size);
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
        memory_budget: size(num("POAM_MEMORY_BUDGET_BYTES")?),
        evidence_quota: num("POAM_EVIDENCE_QUOTA_BYTES")?,
        body_idle: secs("POAM_BODY_IDLE_TIMEOUT")?,
        body_min_rate: num("POAM_BODY_MIN_RATE")?,
        send_idle: secs("POAM_SEND_IDLE_TIMEOUT")?,
        linger: secs("POAM_LINGER_TIMEOUT")?,
    })
}

impl Settings {
    /// Builds the settings from a lookup (the process environment over the optional file);
    /// what it does not give takes the default of its definition in [`SETTINGS`].
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Settings, String> {
        let set = |k: &str| get(k).filter(|v| !v.is_empty());
        let l = Lookup { get: &set };
        // For the readers elsewhere (webhooks, digests): the value set, else the default.
        let with_default =
            |k: &str| set(k).or_else(|| find(k).and_then(|s| s.default.value()).map(str::to_owned));
        let data_dir = required("POAM_DATA_DIR", l.path("POAM_DATA_DIR")?)?;
        let url_text = match l.secret("POAM_DATABASE_URL")? {
            Some(url) => url,
            None => Secret::new(format!("sqlite://{}", data_dir.join("poam.db").display())),
        };
        let database_url =
            DatabaseUrl::parse(url_text.expose()).map_err(|e| format!("POAM_DATABASE_URL: {e}"))?;
        let auto_migrate = match l.bool("POAM_AUTO_MIGRATE")? {
            Some(v) => v,
            None => matches!(database_url, DatabaseUrl::Sqlite(_)),
        };
        let max_size = required("POAM_POOL_SIZE", l.number("POAM_POOL_SIZE")?)?;
        if max_size == 0 {
            return Err("POAM_POOL_SIZE: must be at least 1".into());
        }
        let workers = l.number("POAM_WORKERS")?;
        if workers == Some(0) {
            return Err("POAM_WORKERS: must be at least 1".into());
        }
        let evidence_max_bytes = required(
            "POAM_EVIDENCE_MAX_BYTES",
            l.number("POAM_EVIDENCE_MAX_BYTES")?,
        )?;
        let bulk_max_items = required("POAM_BULK_MAX_ITEMS", l.number("POAM_BULK_MAX_ITEMS")?)?;
        if bulk_max_items == 0 {
            return Err("POAM_BULK_MAX_ITEMS: must be at least 1".into());
        }
        let metrics = required("POAM_METRICS", l.choice("POAM_METRICS")?)? == 0;
        let import_max_bytes =
            required("POAM_IMPORT_MAX_BYTES", l.number("POAM_IMPORT_MAX_BYTES")?)?;
        let scan_max_bytes = required("POAM_SCAN_MAX_BYTES", l.number("POAM_SCAN_MAX_BYTES")?)?;
        let escalation_grace_days: u32 = required(
            "POAM_ESCALATION_GRACE_DAYS",
            l.number("POAM_ESCALATION_GRACE_DAYS")?,
        )?;
        if escalation_grace_days > 3650 {
            return Err("POAM_ESCALATION_GRACE_DAYS: at most 3650 days".into());
        }
        let classification_banner = required(
            "POAM_CLASSIFICATION_BANNER",
            l.text("POAM_CLASSIFICATION_BANNER")?,
        )?;
        if classification_banner.trim().is_empty() || classification_banner.chars().count() > 200 {
            return Err("POAM_CLASSIFICATION_BANNER: 1 to 200 characters".into());
        }
        let log_format = match required("POAM_LOG_FORMAT", l.choice("POAM_LOG_FORMAT")?)? {
            0 => LogFormat::Text,
            _ => LogFormat::Json,
        };
        let jwt = JwtSettings {
            algorithm: required("POAM_JWT_ALGORITHM", l.text("POAM_JWT_ALGORITHM")?)?,
            secret: l.secret("POAM_JWT_SECRET")?,
            public_key_file: l.path("POAM_JWT_PUBLIC_KEY_FILE")?,
            private_key_file: l.path("POAM_JWT_PRIVATE_KEY_FILE")?,
            issuer: l.text("POAM_JWT_ISSUER")?,
            audience: l.text("POAM_JWT_AUDIENCE")?,
            max_ttl: required("POAM_TOKEN_MAX_TTL", l.duration("POAM_TOKEN_MAX_TTL")?)?
                .as_secs()
                .try_into()
                .unwrap_or(i64::MAX),
            oidc_issuer: l.text("POAM_OIDC_ISSUER")?,
            jwks_url: l.text("POAM_JWKS_URL")?,
            jwks_file: l.path("POAM_JWKS_FILE")?,
            jwks_refresh: required("POAM_JWKS_REFRESH", l.duration("POAM_JWKS_REFRESH")?)?,
            claims_map: l.path("POAM_CLAIMS_MAP")?,
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
        let evidence_encryption_required = required(
            "POAM_EVIDENCE_ENCRYPTION",
            l.choice("POAM_EVIDENCE_ENCRYPTION")?,
        )? == 1;
        let limits = limits(&l)?;
        let webhooks = crate::webhook_config::from_lookup(&with_default)?;
        let scheduler_period = required(
            "POAM_SCHEDULER_PERIOD",
            l.delay_or_off("POAM_SCHEDULER_PERIOD")?,
        )?;
        let digest = crate::digest::DigestSettings::from_lookup(&with_default)?;
        let client_ca = l.path("POAM_TLS_CLIENT_CA")?;
        let tls = match (l.path("POAM_TLS_CERT")?, l.path("POAM_TLS_KEY")?) {
            (Some(cert), Some(key)) => Some(TlsSettings {
                cert,
                key,
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
        let bind = required("POAM_BIND", l.text("POAM_BIND")?)?;
        let connection_timeout = match required(
            "POAM_POOL_TIMEOUT_MS",
            l.number::<u64>("POAM_POOL_TIMEOUT_MS")?,
        )? {
            0 => return Err("POAM_POOL_TIMEOUT_MS: must be at least 1".into()),
            ms => Duration::from_millis(ms),
        };
        let busy_timeout = Duration::from_millis(required(
            "POAM_SQLITE_BUSY_TIMEOUT_MS",
            l.number("POAM_SQLITE_BUSY_TIMEOUT_MS")?,
        )?);
        let sqlite_cache_mib: u32 =
            required("POAM_SQLITE_CACHE_MIB", l.number("POAM_SQLITE_CACHE_MIB")?)?;
        if !(1..=1 << 20).contains(&sqlite_cache_mib) {
            return Err("POAM_SQLITE_CACHE_MIB: must be 1 to 1048576".into());
        }
        let item_cache_mib: u64 =
            required("POAM_ITEM_CACHE_MIB", l.number("POAM_ITEM_CACHE_MIB")?)?;
        if item_cache_mib > 4096 {
            return Err("POAM_ITEM_CACHE_MIB: at most 4096".into());
        }
        Ok(Settings {
            tls,
            limits,
            webhooks,
            scheduler_period,
            digest,
            data_dir,
            database_url,
            bind,
            auto_migrate,
            pool: PoolOptions {
                max_size,
                connection_timeout,
                busy_timeout,
                sqlite_cache_kib: sqlite_cache_mib << 10,
            },
            workers,
            item_cache_bytes: item_cache_mib << 20,
            evidence_max_bytes,
            bulk_max_items,
            metrics,
            import_max_bytes,
            scan_max_bytes,
            escalation_grace_days,
            classification_banner,
            jwt,
            evidence_key_file: l.path("POAM_EVIDENCE_KEY_FILE")?,
            evidence_encryption_required,
            log: required("POAM_LOG", l.text("POAM_LOG")?)?,
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
            ("POAM_SQLITE_CACHE_MIB", "0"),
            ("POAM_SQLITE_CACHE_MIB", "1048577"),
            ("POAM_ITEM_CACHE_MIB", "4097"),
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
    fn definitions_are_well_formed() {
        let mut names = std::collections::BTreeSet::new();
        for s in SETTINGS {
            assert!(s.name.starts_with("POAM_"), "{}", s.name);
            assert!(names.insert(s.name), "{} is defined twice", s.name);
            for text in [s.help, s.default.markdown().as_str()] {
                // One row of a Markdown table each.
                assert!(
                    !text.is_empty() && !text.contains(['|', '\n']),
                    "{}: {text}",
                    s.name
                );
            }
            if let Kind::Choice(choices) = s.kind {
                assert!(choices.len() >= 2, "{}", s.name);
            }
        }
    }

    #[test]
    fn every_default_value_is_valid() {
        // Each default is read as if it were set: set explicitly, it gives the same settings.
        let defaults = settings(&[]).unwrap_or_else(|e| panic!("{e}"));
        let pairs: Vec<(&str, &str)> = SETTINGS
            .iter()
            .filter_map(|s| s.default.value().map(|v| (s.name, v)))
            .collect();
        let explicit = settings(&pairs).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(format!("{defaults:?}"), format!("{explicit:?}"));
    }

    #[test]
    fn the_defaults_are_the_libraries_defaults() {
        // The crates keep defaults of their own for other callers: they must agree.
        let s = settings(&[]).unwrap_or_else(|e| panic!("{e}"));
        let limits = poam_http::protection::Limits {
            evidence_quota: 10 << 30,
            ..poam_http::protection::Limits::default()
        };
        assert_eq!(format!("{:?}", s.limits), format!("{limits:?}"));
        assert_eq!(
            format!("{:?}", s.webhooks),
            format!("{:?}", poam_http::delivery::WebhookSettings::default())
        );
        assert_eq!(
            format!("{:?}", s.pool),
            format!("{:?}", PoolOptions::default())
        );
        assert_eq!(
            s.escalation_grace_days,
            poam_domain::item::DEFAULT_ESCALATION_GRACE_DAYS
        );
        assert_eq!(s.jwt.max_ttl, poam_http::auth::DEFAULT_MAX_LIFETIME_SECS);
        assert_eq!(s.jwt.jwks_refresh, poam_http::jwks::DEFAULT_REFRESH);
        assert_eq!(s.evidence_max_bytes, 30 << 20);
        assert_eq!(s.import_max_bytes, 32 << 20);
        assert_eq!(s.scan_max_bytes, 1 << 30);
        assert_eq!(s.scheduler_period, Some(Duration::from_secs(60)));
        assert!(s.metrics && !s.evidence_encryption_required);
        assert_eq!(s.log_format, LogFormat::Text);
        // The digest hour: digest.rs's own default (without a value) and the definition's.
        let smtp = [
            ("POAM_SMTP_URL", "smtp://localhost:25"),
            ("POAM_SMTP_FROM", "poam@example.org"),
        ];
        let hour = |lookup: &dyn Fn(&str) -> Option<String>| {
            crate::digest::DigestSettings::from_lookup(&lookup)
                .ok()
                .flatten()
                .map(|d| d.hour)
        };
        let without = |k: &str| {
            smtp.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        };
        let with = |k: &str| {
            without(k).or_else(|| find(k).and_then(|s| s.default.value()).map(str::to_owned))
        };
        assert!(hour(&without).is_some());
        assert_eq!(hour(&without), hour(&with));
    }

    #[test]
    fn secret_settings_never_print() {
        // A valid value holding `HUNTER2` for every setting defined as secret.
        let samples = [
            (
                "POAM_JWT_SECRET",
                "HUNTER2-0123456789abcdef0123456789abcdef",
            ),
            (
                "POAM_DATABASE_URL",
                "postgres://poam:HUNTER2@db.example.org/poam",
            ),
            ("POAM_SMTP_URL", "smtps://poam:HUNTER2@mail.example.org"),
        ];
        for s in SETTINGS.iter().filter(|s| s.secret) {
            assert!(
                samples.iter().any(|(name, _)| *name == s.name),
                "add a sample value for the secret {}",
                s.name
            );
        }
        let mut pairs = samples.to_vec();
        pairs.push(("POAM_SMTP_FROM", "poam@example.org"));
        let s = settings(&pairs).unwrap_or_else(|e| panic!("{e}"));
        assert!(s.jwt.secret.is_some() && s.digest.is_some());
        assert!(!format!("{s:?}").contains("HUNTER2"));
        let secret = Secret::new("HUNTER2".into());
        assert_eq!(format!("{secret} {secret:?}"), "[redacted] [redacted]");
    }

    #[test]
    fn bad_values_keep_their_messages() {
        for (k, v, message) in [
            (
                "POAM_METRICS",
                "maybe",
                "POAM_METRICS: `maybe` is not on or off",
            ),
            (
                "POAM_LOG_FORMAT",
                "xml",
                "POAM_LOG_FORMAT: `xml` is not text or json",
            ),
            (
                "POAM_EVIDENCE_ENCRYPTION",
                "always",
                "POAM_EVIDENCE_ENCRYPTION: `always` is not auto or required",
            ),
            (
                "POAM_AUTO_MIGRATE",
                "maybe",
                "POAM_AUTO_MIGRATE: `maybe` is not true or false",
            ),
            (
                "POAM_BULK_MAX_ITEMS",
                "x",
                "POAM_BULK_MAX_ITEMS: `x` is not a positive number",
            ),
            (
                "POAM_BULK_MAX_ITEMS",
                "0",
                "POAM_BULK_MAX_ITEMS: must be at least 1",
            ),
            ("POAM_WORKERS", "0", "POAM_WORKERS: must be at least 1"),
            (
                "POAM_POOL_TIMEOUT_MS",
                "0",
                "POAM_POOL_TIMEOUT_MS: must be at least 1",
            ),
            (
                "POAM_ESCALATION_GRACE_DAYS",
                "4000",
                "POAM_ESCALATION_GRACE_DAYS: at most 3650 days",
            ),
            (
                "POAM_CLASSIFICATION_BANNER",
                "  ",
                "POAM_CLASSIFICATION_BANNER: 1 to 200 characters",
            ),
            (
                "POAM_TOKEN_MAX_TTL",
                "5y",
                "POAM_TOKEN_MAX_TTL: unknown unit `y`; use s, m, h or d",
            ),
            (
                "POAM_JWKS_REFRESH",
                "0",
                "POAM_JWKS_REFRESH: `0` is out of range",
            ),
            (
                "POAM_BODY_IDLE_TIMEOUT",
                "x",
                "POAM_BODY_IDLE_TIMEOUT: `x` is not a duration",
            ),
            (
                "POAM_WEBHOOK_CONCURRENCY",
                "0",
                "POAM_WEBHOOK_CONCURRENCY: `0` is not 1 to 256",
            ),
            (
                "POAM_DIGEST_HOUR",
                "24",
                "POAM_DIGEST_HOUR: `24` is not an hour from 0 to 23",
            ),
        ] {
            let err = settings(&[(k, v)]).err().unwrap_or_default();
            assert_eq!(err, message);
        }
        let s = settings(&[("POAM_SCHEDULER_PERIOD", "off"), ("POAM_METRICS", "off")])
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.scheduler_period, None);
        assert!(!s.metrics);
        // A blank value is unset: the default.
        let s = settings(&[("POAM_BIND", "")]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.bind, "127.0.0.1:8080");
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
