//! The `poam` binary's library: configuration, keys, telemetry and the server's wiring. The
//! integration tests start the real server through [`Application`].

pub mod config;
pub mod digest;
pub mod keys;
pub mod push;
pub mod scheduler;
pub mod tls;
pub mod webhook_config;

use config::{LogFormat, Settings};
use poam_persistence::db::{self, DbPool};
use poam_persistence::DatabaseUrl;
use std::net::{SocketAddr, TcpListener};

/// Logs go to stderr, so stdout carries only what a command prints (a token, the spec).
pub fn init_telemetry(settings: &Settings) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_new(&settings.log).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match settings.log_format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// Opens the pool of a command that runs and exits ([`db::connect_for_command`]).
pub fn open_command_pool(settings: &Settings) -> Result<DbPool, String> {
    prepare_database_file(settings)?;
    db::connect_for_command(&settings.database_url, &settings.pool)
}

fn prepare_database_file(settings: &Settings) -> Result<(), String> {
    if let DatabaseUrl::Sqlite(path) = &settings.database_url {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            keys::ensure_data_dir(parent)?;
        }
        create_private_file(path)?;
    }
    poam_persistence::items::set_escalation_grace_days(settings.escalation_grace_days);
    Ok(())
}

/// Opens the pool (creating the SQLite file's directory if needed).
pub fn open_pool(settings: &Settings) -> Result<DbPool, String> {
    // Items read through this process are judged escalated by the configured grace.
    prepare_database_file(settings)?;
    db::connect(&settings.database_url, &settings.pool)
}

/// Creates `path` empty with mode 0600 unless it exists, so the SQLite file (and the journal
/// files SQLite creates with its mode) is the service user's alone, whatever the umask and
/// whether or not the data directory already existed.
fn create_private_file(path: &std::path::Path) -> Result<(), String> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(format!(
            "cannot create the database file {}: {e}",
            path.display()
        )),
    }
}

/// Applies pending migrations; returns the versions applied.
pub fn migrate(pool: &DbPool) -> Result<Vec<String>, String> {
    let mut conn = pool
        .get()
        .map_err(|e| format!("no database connection: {e}"))?;
    db::run_migrations(&mut conn).map_err(|e| e.to_string())
}

/// Migrates (when configured to) or refuses to start on a schema with pending migrations.
pub fn prepare_schema(settings: &Settings, pool: &DbPool) -> Result<(), String> {
    if settings.auto_migrate {
        let applied = migrate(pool)?;
        if !applied.is_empty() {
            tracing::info!(?applied, "migrations applied");
        }
        return Ok(());
    }
    let mut conn = pool
        .get()
        .map_err(|e| format!("no database connection: {e}"))?;
    let pending = db::pending_migrations(&mut conn).map_err(|e| e.to_string())?;
    if pending.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "the database has pending migrations ({}): run `poam migrate` (or set POAM_AUTO_MIGRATE=true)",
            pending.join(", ")
        ))
    }
}

/// The evidence master key of `POAM_EVIDENCE_KEY_FILE`, if one is configured (the file must
/// be private to the service's user, as every secret file).
pub fn load_evidence_key(
    settings: &Settings,
) -> Result<Option<std::sync::Arc<poam_persistence::crypto::MasterKey>>, String> {
    let Some(path) = &settings.evidence_key_file else {
        return Ok(None);
    };
    read_evidence_key(path, "POAM_EVIDENCE_KEY_FILE").map(Some)
}

/// Reads a master key file, `what` naming where it comes from in errors.
pub fn read_evidence_key(
    path: &std::path::Path,
    what: &str,
) -> Result<std::sync::Arc<poam_persistence::crypto::MasterKey>, String> {
    keys::check_private(path, &format!("{what}: the evidence master key file"))?;
    poam_persistence::crypto::MasterKey::read(path)
        .map(std::sync::Arc::new)
        .map_err(|e| format!("{what}: {e}"))
}

/// Checks the evidence master key against the database (a missing or wrong key is an error
/// that names the setting) and installs it for this process's stores and downloads.
pub fn prepare_evidence_keys(settings: &Settings, pool: &DbPool) -> Result<(), String> {
    let key = load_evidence_key(settings)?;
    if key.is_none() && settings.evidence_encryption_required {
        return Err(
            "POAM_EVIDENCE_ENCRYPTION=required but POAM_EVIDENCE_KEY_FILE is not set: set it to the \
             evidence master key file (make one with `openssl rand -hex 32`, mode 0600)"
                .into(),
        );
    }
    let mut conn = pool
        .get()
        .map_err(|e| format!("no database connection: {e}"))?;
    let status = poam_persistence::crypto::check(&mut conn, key.as_deref())?;
    if let Some(key) = &key {
        tracing::info!(
            key_id = key.id(),
            fips = poam_persistence::crypto::fips_mode(),
            encrypted_files = status.encrypted,
            "evidence is encrypted at rest"
        );
        if status.plaintext > 0 {
            tracing::warn!(
                files = status.plaintext,
                "evidence stored unencrypted before the master key was set: run `poam evidence-keys encrypt-existing`"
            );
        }
    }
    poam_persistence::crypto::install(key);
    Ok(())
}

/// The running server.
pub struct Application {
    server: actix_web::dev::Server,
    addr: SocketAddr,
    /// `https` with `POAM_TLS_CERT`, else `http`.
    scheme: &'static str,
    /// The webhook delivery worker, stopped when the server stops.
    delivery: Option<poam_http::delivery::DeliveryWorker>,
    /// The scheduler of time-driven events, stopped when the server stops.
    scheduler: Option<scheduler::Scheduler>,
}

impl Application {
    /// Binds (port 0 picks a free port) and prepares the server; [`Application::run`] serves.
    pub fn build(
        settings: &Settings,
        pool: DbPool,
        authenticator: poam_http::Authenticator,
        listener: Option<TcpListener>,
    ) -> Result<Application, String> {
        prepare_evidence_keys(settings, &pool)?;
        let listener = match listener {
            Some(l) => l,
            None => TcpListener::bind(&settings.bind)
                .map_err(|e| format!("cannot listen on {}: {e}", settings.bind))?,
        };
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let spool_dir = settings.data_dir.join("spool");
        std::fs::create_dir_all(&spool_dir).map_err(|e| {
            format!(
                "cannot create the upload spool {}: {e}",
                spool_dir.display()
            )
        })?;
        // SQLite takes one writer at a time: this process's writes go through one thread that
        // commits them in batches. On PostgreSQL item creations do too, batched per system
        // (their rows are locked in one order); other writes run on the pool.
        let per_system = matches!(settings.database_url, DatabaseUrl::Postgres(_));
        let writer = poam_persistence::writer::Writer::start(pool.clone(), per_system)
            .map_err(|e| format!("cannot start the writer thread: {e}"))?;
        let mut state = poam_http::AppState::new(pool, authenticator);
        state.writer = Some(writer);
        state.evidence_limit = settings.evidence_max_bytes;
        state.bulk_max = settings.bulk_max_items;
        state.metrics_enabled = settings.metrics;
        state.item_cache = std::sync::Arc::new(poam_http::item_cache::ItemCache::new(
            settings.item_cache_bytes,
        ));
        state.import_limit = settings.import_max_bytes;
        state.scan_limit = settings.scan_max_bytes;
        state.spool_dir = spool_dir;
        state.classification_banner = std::sync::Arc::from(settings.classification_banner.as_str());
        state.protection = std::sync::Arc::new(poam_http::protection::Protection::new(
            settings.limits.clone(),
        ));
        let webhooks = std::sync::Arc::new(settings.webhooks.clone());
        state.webhooks = webhooks.clone();
        let delivery = if webhooks.deliver {
            Some(
                poam_http::delivery::DeliveryWorker::start(state.pool.clone(), webhooks)
                    .map_err(|e| format!("cannot start the webhook delivery thread: {e}"))?,
            )
        } else {
            None
        };
        let mailer = settings
            .digest
            .as_ref()
            .map(digest::Mailer::new)
            .transpose()?;
        let scheduler = match settings.scheduler_period {
            Some(period) => Some(
                scheduler::Scheduler::start(
                    state.pool.clone(),
                    period,
                    scheduler::system_clock(),
                    mailer,
                )
                .map_err(|e| format!("cannot start the scheduler thread: {e}"))?,
            ),
            None => {
                if mailer.is_some() {
                    tracing::warn!("POAM_SMTP_URL is set but POAM_SCHEDULER_PERIOD=off: no digests from this instance");
                }
                None
            }
        };
        let tls = settings.tls.as_ref().map(tls::server_config).transpose()?;
        let mut server = actix_web::HttpServer::new(move || poam_http::app(state.clone()))
            .shutdown_timeout(30)
            .client_request_timeout(std::time::Duration::from_secs(30))
            // actix's linger: the rest of a refused request's body is read and thrown away for
            // this long (its default, 1 s, reset clients still sending a 30 MB import).
            .client_disconnect_timeout(settings.limits.linger)
            // A TLS connection's verified client certificate, for the `Actor` extractor.
            .on_connect(tls::on_connect);
        if let Some(n) = settings.workers {
            server = server.workers(n);
        }
        let (server, scheme) = match tls {
            Some(tls) => {
                let mutual = settings.tls.as_ref().is_some_and(|t| t.client_ca.is_some());
                if mutual && settings.jwt.claims_map.is_none() {
                    tracing::warn!(
                        "POAM_TLS_CLIENT_CA is set but POAM_CLAIMS_MAP is not: client \
                         certificates are verified, but map to no role without cert.* rules"
                    );
                }
                tracing::info!(
                    certificate = %tls.certs.describe(),
                    client_certificates = if mutual { "optional, verified" } else { "not asked" },
                    "serving HTTPS (TLS 1.3 and 1.2); SIGHUP reloads the certificate"
                );
                tls::reload_on_sighup(tls.certs.clone())?;
                (server.listen_rustls_0_23(listener, tls.config), "https")
            }
            None => (server.listen(listener), "http"),
        };
        let server = server
            .map_err(|e| format!("cannot serve on {addr}: {e}"))?
            .run();
        Ok(Application {
            server,
            addr,
            scheme,
            delivery,
            scheduler,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `https` when the server serves TLS, else `http`.
    pub fn scheme(&self) -> &'static str {
        self.scheme
    }

    /// A handle that stops the server gracefully.
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// Serves until SIGTERM or SIGINT, then stops accepting and lets in-flight requests finish.
    pub async fn run(self) -> std::io::Result<()> {
        let served = self.server.await;
        if let Some(worker) = self.delivery {
            // Joining waits for the attempts in flight, each bounded by its timeout.
            let _ = actix_web::rt::task::spawn_blocking(move || worker.stop()).await;
        }
        if let Some(s) = self.scheduler {
            let _ = actix_web::rt::task::spawn_blocking(move || s.stop()).await;
        }
        served
    }
}

/// The verifier of an identity provider's tokens when `POAM_OIDC_ISSUER`, `POAM_JWKS_URL` or
/// `POAM_JWKS_FILE` is set (`None` otherwise): the key set is fetched now (an error when that
/// fails: discovery naming another issuer, no usable key, the IdP unreachable) and, with
/// `background`, again every `POAM_JWKS_REFRESH` and on unknown `kid`s by a thread of its own.
/// The claims map applies.
pub fn idp_authenticator(
    settings: &Settings,
    background: bool,
) -> Result<Option<poam_http::Authenticator>, String> {
    use poam_http::jwks::{Jwks, JwksSource};
    let jwt = &settings.jwt;
    let (name, source) = match (&jwt.oidc_issuer, &jwt.jwks_url, &jwt.jwks_file) {
        (Some(issuer), _, _) => (
            "POAM_OIDC_ISSUER",
            JwksSource::Url(poam_http::jwks::discover(issuer)?),
        ),
        (None, Some(url), _) => {
            poam_http::jwks::check_url(url, "POAM_JWKS_URL")?;
            ("POAM_JWKS_URL", JwksSource::Url(url.clone()))
        }
        (None, None, Some(file)) => ("POAM_JWKS_FILE", JwksSource::File(file.clone())),
        (None, None, None) => return Ok(None),
    };
    let algorithm = poam_http::auth::parse_algorithm(&jwt.algorithm)
        .map_err(|e| format!("POAM_JWT_ALGORITHM: {e}"))?;
    if algorithm == jsonwebtoken::Algorithm::HS256 {
        return Err(format!(
            "{name} is set but POAM_JWT_ALGORITHM is HS256: pin the algorithm your identity \
             provider signs with (RS256, ES256 or EdDSA)"
        ));
    }
    for (set, other) in [
        (jwt.secret.is_some(), "POAM_JWT_SECRET"),
        (jwt.public_key_file.is_some(), "POAM_JWT_PUBLIC_KEY_FILE"),
        (jwt.private_key_file.is_some(), "POAM_JWT_PRIVATE_KEY_FILE"),
    ] {
        if set {
            return Err(format!(
                "{name} and {other} are both set: with an identity provider's keys, tokens \
                 come from the identity provider; unset {other}"
            ));
        }
    }
    let jwks = Jwks::load(source, algorithm, background.then_some(jwt.jwks_refresh))
        .map_err(|e| format!("{name}: {e}"))?;
    // An OpenID Connect issuer is the `iss` its tokens carry, unless configured otherwise.
    let issuer = jwt.issuer.as_deref().or(jwt.oidc_issuer.as_deref());
    let authenticator =
        poam_http::Authenticator::with_jwks(algorithm, jwks, issuer, jwt.audience.as_deref())
            .with_max_lifetime(jwt.max_ttl);
    with_claims_map(authenticator, settings).map(Some)
}

/// Applies the claims map of `POAM_CLAIMS_MAP`, when set.
pub fn with_claims_map(
    authenticator: poam_http::Authenticator,
    settings: &Settings,
) -> Result<poam_http::Authenticator, String> {
    match &settings.jwt.claims_map {
        None => Ok(authenticator),
        Some(path) => {
            let map = poam_http::claims_map::ClaimsMap::load(path)
                .map_err(|e| format!("POAM_CLAIMS_MAP: {e}"))?;
            Ok(authenticator.with_claims_map(map))
        }
    }
}
