//! `poam`: the POA&M service and its administration commands.

use clap::{Parser, Subcommand};
use poam::config::Settings;
use poam::{keys, Application};
use poam_domain::{Role, SystemId};
use std::path::PathBuf;
use std::process::ExitCode;

/// jemalloc, configured in `.cargo/config.toml` (`JEMALLOC_SYS_WITH_MALLOC_CONF`): it gives back
/// within seconds what a burst freed (glibc kept two thirds of a 100 MiB import burst for the
/// life of the process), at about the same idle RSS and fewer instructions per request
/// (`docs/benchmarks.md`). The C libraries (SQLite, libpq) still allocate through glibc.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Parser)]
#[command(
    name = "poam",
    version,
    about = "POA&M service: Plans of Action and Milestones over a REST/JSON API",
    long_about = "POA&M service: Plans of Action and Milestones for CMMC, FedRAMP and DoD RMF (eMASS) over a REST/JSON API.\n\nWith no configuration, `poam serve` keeps its data in ./data (a SQLite file and a generated signing key), listens on 127.0.0.1:8080, and writes a bootstrap admin token to ./data/bootstrap-admin-token (mode 0600; `--print-token` prints it instead).",
    after_long_help = after_help(),
    after_help = "Configuration comes from environment variables; `poam --help` lists them."
)]
struct Cli {
    /// A file of KEY=VALUE settings, read before the environment (which overrides it).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// On the first start, print the bootstrap admin token to stdout instead of writing it to
    /// `$POAM_DATA_DIR/bootstrap-admin-token` (mode 0600): stdout often ends in logs.
    #[arg(long, global = true)]
    print_token: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP service (the default).
    Serve,
    /// Apply pending database migrations (the production path for PostgreSQL).
    Migrate {
        /// Only list the pending migrations.
        #[arg(long)]
        status: bool,
    },
    /// Mint a bearer token for a script or a person; prints only the token.
    Token {
        /// Subject: who the token speaks for (recorded as the actor of every change).
        #[arg(long)]
        sub: String,
        /// Display name.
        #[arg(long)]
        name: Option<String>,
        /// Role, repeatable or comma-separated: admin, editor, approver, auditor, viewer.
        #[arg(long = "role", required = true, value_delimiter = ',')]
        roles: Vec<String>,
        /// System id the token may reach, repeatable or comma-separated [default: every system].
        #[arg(long = "system", value_delimiter = ',')]
        systems: Vec<String>,
        /// Lifetime: seconds, or a number with s, m, h or d; at most POAM_TOKEN_MAX_TTL
        /// [default maximum: 90d].
        #[arg(long, default_value = "1h")]
        ttl: String,
    },
    /// Print the OpenAPI document (or, with --bundle-schema, the export bundle's JSON Schema).
    Openapi {
        #[arg(long)]
        bundle_schema: bool,
    },
    /// Copy the SQLite database to a new file while the service runs (online, consistent).
    /// For PostgreSQL use pg_dump (see the README).
    Backup {
        /// The file to create (never overwritten).
        #[arg(long, value_name = "FILE")]
        to: PathBuf,
    },
    /// Audit the history.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Ask the running service's `/healthz` (at POAM_BIND); exit status 0 when it answers 200.
    /// The container's HEALTHCHECK.
    Health,
    /// List every setting (environment variable) with its default and meaning.
    Config {
        /// As the README's Markdown table.
        #[arg(long)]
        markdown: bool,
    },
    /// Token tools for operators.
    Auth {
        #[command(subcommand)]
        command: AuthCommand,
    },
    /// Upload scanner files (.nessus, .ckl, .cklb, .sarif, .csv) to a running service's
    /// import endpoints and print what became of each.
    Push(poam::push::PushArgs),
    /// The master key that encrypts evidence at rest (POAM_EVIDENCE_KEY_FILE): rotate it, or
    /// encrypt the files stored before it was set.
    #[command(name = "evidence-keys", visible_alias = "keys")]
    EvidenceKeys {
        #[command(subcommand)]
        command: EvidenceKeysCommand,
    },
}

#[derive(Subcommand)]
enum EvidenceKeysCommand {
    /// Re-wrap every file's data key under a new master key (content is not re-encrypted).
    /// POAM_EVIDENCE_KEY_FILE names the current key. Resumable: run it again if it stops.
    /// Then point POAM_EVIDENCE_KEY_FILE at the new key and restart the service.
    Rotate {
        /// The new master key: 32 random bytes, raw or as 64 hex characters, mode 0600
        /// (`openssl rand -hex 32 > new.key`).
        #[arg(long, value_name = "FILE")]
        new_key_file: PathBuf,
        /// Data keys re-wrapped per transaction.
        #[arg(long, default_value_t = 500)]
        batch: i64,
    },
    /// Encrypt the evidence and scan files stored unencrypted (before POAM_EVIDENCE_KEY_FILE
    /// was set) under the configured master key; one file per transaction, resumable. The
    /// SHA-256 users verify does not change.
    EncryptExisting {
        /// Files looked up per round.
        #[arg(long, default_value_t = 100)]
        batch: i64,
    },
}

fn evidence_keys(settings: &Settings, command: EvidenceKeysCommand) -> Result<(), String> {
    use poam_persistence::crypto;
    let pool = poam::open_command_pool(settings)?;
    poam::prepare_schema(settings, &pool)?;
    let mut conn = pool.get().map_err(|e| e.to_string())?;
    let current = poam::load_evidence_key(settings)?.ok_or(
        "POAM_EVIDENCE_KEY_FILE is not set: set it to the current evidence master key file",
    )?;
    match command {
        EvidenceKeysCommand::Rotate {
            new_key_file,
            batch,
        } => {
            let new = poam::read_evidence_key(&new_key_file, "--new-key-file")?;
            let done = crypto::rotate(&mut conn, &current, &new, batch, |n| {
                eprintln!("re-wrapped {n} data keys");
            })
            .map_err(|e| e.to_string())?;
            println!(
                "{} data keys re-wrapped under master key {} ({} already were). Now set \
                 POAM_EVIDENCE_KEY_FILE={} and restart the service; keep the old key {} as long \
                 as backups taken before now are kept.",
                done.rewrapped,
                new.id(),
                done.already,
                new_key_file.display(),
                current.id()
            );
        }
        EvidenceKeysCommand::EncryptExisting { batch } => {
            crypto::check(&mut conn, Some(&current))?;
            let done = crypto::encrypt_existing(&mut conn, &current, batch, |p| {
                eprintln!("encrypted {} files ({} bytes)", p.files, p.bytes);
            })
            .map_err(|e| e.to_string())?;
            for file in &done.mismatched {
                println!(
                    "warning: {file}: its stored bytes do not match its recorded SHA-256 (encrypted as stored)"
                );
            }
            println!(
                "{} files ({} bytes) encrypted under master key {}; none is left unencrypted",
                done.files,
                done.bytes,
                current.id()
            );
        }
    }
    Ok(())
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Recompute every system's hash chain (or one's); exit status 1 when a link is broken.
    Verify {
        /// Only this system.
        #[arg(long)]
        system: Option<String>,
    },
}

fn backup(settings: &Settings, to: &std::path::Path) -> Result<(), String> {
    let pool = poam::open_command_pool(settings)?;
    let mut conn = pool.get().map_err(|e| e.to_string())?;
    poam_persistence::db::backup_sqlite(&mut conn, to).map_err(|e| match e {
        poam_persistence::StoreError::Internal(m) => m,
        other => other.to_string(),
    })?;
    let bytes = std::fs::metadata(to).map(|m| m.len()).unwrap_or(0);
    println!("backed up to {} ({bytes} bytes)", to.display());
    Ok(())
}

/// GET /healthz over HTTP/1.1 on the bind address (a wildcard address is asked on loopback),
/// within 3 s; over TLS when POAM_TLS_CERT is set (the server must present that certificate).
fn health(bind: &str, tls: Option<&poam::config::TlsSettings>) -> Result<(), String> {
    use std::io::{Read, Write};
    use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
    use std::time::Duration;
    let addr: SocketAddr = bind
        .to_socket_addrs()
        .map_err(|e| format!("POAM_BIND `{bind}`: {e}"))?
        .next()
        .ok_or_else(|| format!("POAM_BIND `{bind}` names no address"))?;
    let addr = if addr.ip().is_unspecified() {
        SocketAddr::new(
            if addr.is_ipv4() {
                std::net::Ipv4Addr::LOCALHOST.into()
            } else {
                std::net::Ipv6Addr::LOCALHOST.into()
            },
            addr.port(),
        )
    } else {
        addr
    };
    let timeout = Duration::from_secs(3);
    let tcp = TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("{addr}: {e}"))?;
    tcp.set_read_timeout(Some(timeout))
        .and_then(|()| tcp.set_write_timeout(Some(timeout)))
        .map_err(|e| e.to_string())?;
    trait Stream: Read + Write {}
    impl<T: Read + Write> Stream for T {}
    let mut stream: Box<dyn Stream> = match tls {
        Some(tls) => Box::new(poam::tls::pinned_stream(tls, tcp)?),
        None => Box::new(tcp),
    };
    write!(
        stream,
        "GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| format!("{addr}: {e}"))?;
    let mut head = [0u8; 12];
    stream
        .read_exact(&mut head)
        .map_err(|e| format!("{addr}: {e}"))?;
    let status = String::from_utf8_lossy(&head);
    if status.starts_with("HTTP/1.1 200") || status.starts_with("HTTP/1.0 200") {
        println!("ok");
        Ok(())
    } else {
        Err(format!("{addr}/healthz answered `{}`", status.trim()))
    }
}

fn audit_verify(settings: &Settings, system: Option<String>) -> Result<(), String> {
    let pool = poam::open_command_pool(settings)?;
    let mut conn = pool.get().map_err(|e| e.to_string())?;
    let ids = match system {
        Some(id) => vec![id
            .parse::<SystemId>()
            .map_err(|_| format!("--system: `{id}` is not a system id"))?
            .to_string()],
        None => poam_persistence::events::system_ids(&mut conn).map_err(|e| e.to_string())?,
    };
    let mut broken = 0;
    for id in ids {
        let v = poam_persistence::events::verify(&mut conn, &id).map_err(|e| match e {
            poam_persistence::StoreError::NotFound => format!("no system {id}"),
            other => other.to_string(),
        })?;
        match v.broken {
            None => println!("ok      {id}  {} events  head {}", v.events, v.head_hash),
            Some(b) => {
                broken += 1;
                let event = b
                    .event_id
                    .map(|e| format!(" (event {e})"))
                    .unwrap_or_default();
                println!("BROKEN  {id}  at seq {}{event}: {}", b.seq, b.reason);
            }
        }
    }
    if broken > 0 {
        Err(format!("{broken} system(s) with a broken history"))
    } else {
        Ok(())
    }
}

#[derive(Subcommand)]
enum AuthCommand {
    /// Verify a token with the configured keys (an identity provider's key set is fetched
    /// once) and print the subject, name, roles and systems it maps to, or why it is refused.
    /// Never prints the token. Exit status 1 when it is refused.
    Explain {
        /// A file holding the token (a bearer token, nothing else).
        #[arg(long, value_name = "FILE")]
        token_file: PathBuf,
    },
}

fn auth_explain(settings: &Settings, token_file: &std::path::Path) -> Result<(), String> {
    let text = std::fs::read_to_string(token_file)
        .map_err(|e| format!("cannot read {}: {e}", token_file.display()))?;
    let token = text.trim();
    let token = token
        .strip_prefix("Bearer ")
        .or_else(|| token.strip_prefix("bearer "))
        .unwrap_or(token)
        .trim();
    if token.is_empty() {
        return Err(format!("{} holds no token", token_file.display()));
    }
    let authenticator = match poam::idp_authenticator(settings, false)? {
        Some(a) => a,
        None => {
            if settings.jwt.algorithm == "HS256"
                && settings.jwt.secret.is_none()
                && !keys::secret_path(settings).exists()
            {
                return Err(format!(
                    "no verification key: POAM_JWT_SECRET is not set and {} does not exist",
                    keys::secret_path(settings).display()
                ));
            }
            keys::load(settings)?.authenticator
        }
    };
    let refused = |e: &poam_http::problem::ApiError| {
        let problem = e.problem();
        format!(
            "the token is refused ({} {}): {}",
            problem.status, problem.code, problem.detail
        )
    };
    let explained = authenticator.explain(token).map_err(|e| refused(&e))?;
    if let Some(kid) = &explained.kid {
        println!("key:      {kid} ({})", settings.jwt.algorithm);
    }
    if !explained.claims_read.is_empty() {
        println!("claims the rules read:");
        for (claim, value) in &explained.claims_read {
            match value {
                Some(v) => println!("  {claim} = {v}"),
                None => println!("  {claim} (absent)"),
            }
        }
    }
    let actor = explained.outcome.map_err(|e| refused(&e))?;
    println!("subject:  {}", actor.sub);
    println!("name:     {}", actor.name.as_deref().unwrap_or("-"));
    let roles: Vec<&str> = actor.roles.iter().map(|r| r.as_str()).collect();
    println!(
        "roles:    {}",
        if roles.is_empty() {
            "none (every request is refused with 403)".to_owned()
        } else {
            roles.join(", ")
        }
    );
    match &actor.scope {
        poam_domain::SystemScope::All => println!("systems:  * (every system)"),
        poam_domain::SystemScope::Only(ids) if ids.is_empty() => println!("systems:  none"),
        poam_domain::SystemScope::Only(ids) => println!(
            "systems:  {}",
            ids.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
    if explained.mapped {
        println!("matched rules (POAM_CLAIMS_MAP):");
        for rule in &explained.matched {
            println!("  {rule}");
        }
        if explained.matched.len() > 1 {
            println!("  (rules combine: every role above applies on every system above)");
        }
    } else {
        println!("mapped by: the token's own roles and systems claims (no POAM_CLAIMS_MAP)");
    }
    Ok(())
}

fn after_help() -> String {
    let mut out = String::from("Environment:\n");
    out.push_str(&poam::config::help_text());
    out.push_str(
        "\nExamples:\n  poam                                   # serve on SQLite in ./data\n  \
         POAM_DATABASE_URL=postgres://poam@db/poam poam migrate && poam serve\n  \
         poam token --sub scanner@ci --role editor --system 6f1c1a8e-… --ttl 30d\n",
    );
    out
}

/// Parses `90`, `90s`, `30m`, `12h`, `7d` into seconds.
fn parse_ttl(text: &str) -> Result<i64, String> {
    poam::config::parse_duration(text).map_err(|e| format!("--ttl: {e}"))
}

/// A duration in the largest unit that divides it: `90d`, `36h`, `100s`.
fn describe_secs(secs: i64) -> String {
    [(86_400, "d"), (3600, "h"), (60, "m")]
        .into_iter()
        .find(|(unit, _)| secs % unit == 0)
        .map_or_else(
            || format!("{secs}s"),
            |(unit, u)| format!("{}{u}", secs / unit),
        )
}

/// Why a command failed: a bad argument (exit status 2, as for clap's own usage errors) or
/// anything else (exit status 1).
enum Failure {
    Usage(String),
    Other(String),
}

impl From<String> for Failure {
    fn from(e: String) -> Self {
        Failure::Other(e)
    }
}

impl From<&str> for Failure {
    fn from(e: &str) -> Self {
        Failure::Other(e.to_owned())
    }
}

/// Writes the bootstrap token to a file of the data directory only its owner may read.
fn write_token_file(path: &std::path::Path, token: &str) -> Result<(), String> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    // A file left by an earlier start with another mode is made private too.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(|e| format!("cannot set permissions of {}: {e}", path.display()))?;
    }
    writeln!(file, "{token}")
        .and_then(|_| file.sync_all())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

fn serve(settings: &Settings, print_token: bool) -> Result<(), String> {
    poam::init_telemetry(settings);
    let keys = keys::load(settings)?;
    let pool = poam::open_pool(settings)?;
    poam::prepare_schema(settings, &pool)?;
    if keys.generated {
        if let Some(issuer) = &keys.issuer {
            // 24 hours, or the configured maximum lifetime when that is shorter.
            let ttl = settings.jwt.max_ttl.min(86_400);
            let token = issuer.mint(
                "bootstrap-admin",
                Some("Bootstrap administrator"),
                &[Role::Admin],
                &[],
                ttl,
            )?;
            let valid = if ttl == 86_400 {
                "24 hours".to_owned()
            } else {
                describe_secs(ttl)
            };
            if print_token {
                println!(
                    "\nA signing key was generated in {}.\nBootstrap admin token (valid {valid}; shown only now):\n\n{token}\n\n\
                     Mint more with: poam token --sub you@example.org --role editor [--system ID] [--ttl 8h]\n",
                    keys::secret_path(settings).display()
                );
            } else {
                let path = settings.data_dir.join("bootstrap-admin-token");
                write_token_file(&path, &token)?;
                println!(
                    "\nA signing key was generated in {}.\nBootstrap admin token (valid {valid}) written to {} (mode 0600); \
                     read it, then delete the file.\n\n\
                     Mint more with: poam token --sub you@example.org --role editor [--system ID] [--ttl 8h]\n",
                    keys::secret_path(settings).display(),
                    path.display()
                );
            }
        }
    }
    actix_web::rt::System::new().block_on(async {
        let app = Application::build(settings, pool, keys.authenticator, None)?;
        tracing::info!(
            address = %app.local_addr(),
            database = %settings.database_url.redacted(),
            docs = %format!("{}://{}/docs/", app.scheme(), app.local_addr()),
            "listening"
        );
        app.run().await.map_err(|e| format!("server failed: {e}"))
    })
}

fn run(cli: Cli) -> Result<(), Failure> {
    let command = cli.command.unwrap_or(Command::Serve);
    if let Command::Openapi { bundle_schema } = command {
        let spec = if bundle_schema {
            serde_json::to_string_pretty(&poam_http::bundle_schema())
                .map_err(|e| format!("cannot render the bundle schema: {e}"))?
        } else {
            poam_http::openapi()
                .to_pretty_json()
                .map_err(|e| format!("cannot render the OpenAPI document: {e}"))?
        };
        println!("{spec}");
        return Ok(());
    }
    if let Command::Config { markdown } = command {
        if markdown {
            print!("{}", poam::config::markdown_table());
        } else {
            print!("{}", poam::config::help_text());
        }
        return Ok(());
    }
    let settings = Settings::load(cli.config.as_deref())?;
    match command {
        Command::Serve => Ok(serve(&settings, cli.print_token)?),
        Command::Migrate { status } => {
            poam::init_telemetry(&settings);
            let pool = poam::open_command_pool(&settings)?;
            if status {
                let mut conn = pool.get().map_err(|e| e.to_string())?;
                let pending = poam_persistence::db::pending_migrations(&mut conn)
                    .map_err(|e| e.to_string())?;
                if pending.is_empty() {
                    println!("up to date");
                }
                for name in pending {
                    println!("pending {name}");
                }
            } else {
                let applied = poam::migrate(&pool)?;
                if applied.is_empty() {
                    println!("up to date");
                }
                for v in applied {
                    println!("applied {v}");
                }
            }
            Ok(())
        }
        Command::Token {
            sub,
            name,
            roles,
            systems,
            ttl,
        } => {
            let roles = roles
                .iter()
                .map(|r| r.trim().parse::<Role>().map_err(|e| format!("--role: {e}")))
                .collect::<Result<Vec<_>, _>>()
                .map_err(Failure::Usage)?;
            let systems = systems
                .iter()
                .filter(|s| s.trim() != "*")
                .map(|s| {
                    s.trim()
                        .parse::<SystemId>()
                        .map_err(|_| format!("--system: `{s}` is not a system id"))
                })
                .collect::<Result<Vec<_>, _>>()
                .map_err(Failure::Usage)?;
            let ttl = parse_ttl(&ttl).map_err(Failure::Usage)?;
            let max = settings.jwt.max_ttl;
            if ttl > max {
                return Err(Failure::Usage(format!(
                    "--ttl: {} exceeds the longest token lifetime this service accepts, {} \
                     (POAM_TOKEN_MAX_TTL); mint a shorter token, or raise POAM_TOKEN_MAX_TTL \
                     where the server runs too",
                    describe_secs(ttl),
                    describe_secs(max)
                )));
            }
            if sub.trim().is_empty() {
                return Err(Failure::Usage("--sub must not be empty".into()));
            }
            poam_http::auth::check_subject(&sub).map_err(|e| {
                Failure::Usage(format!(
                    "--sub: {}",
                    e.replace("the token's `sub` (subject)", "the subject")
                ))
            })?;
            let keys = keys::load(&settings)?;
            let issuer = keys.issuer.ok_or(
                "this configuration verifies tokens with a public key only: set POAM_JWT_PRIVATE_KEY_FILE, \
                 or have your identity provider issue the token",
            )?;
            println!(
                "{}",
                issuer.mint(&sub, name.as_deref(), &roles, &systems, ttl)?
            );
            Ok(())
        }
        Command::Audit {
            command: AuditCommand::Verify { system },
        } => Ok(audit_verify(&settings, system)?),
        Command::Backup { to } => Ok(backup(&settings, &to)?),
        Command::EvidenceKeys { command } => Ok(evidence_keys(&settings, command)?),
        Command::Health => Ok(health(&settings.bind, settings.tls.as_ref())?),
        Command::Auth {
            command: AuthCommand::Explain { token_file },
        } => Ok(auth_explain(&settings, &token_file)?),
        Command::Openapi { .. } | Command::Config { .. } | Command::Push(_) => Ok(()),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // A client of a service elsewhere: no settings of this one are read.
    if let Some(Command::Push(args)) = &cli.command {
        return ExitCode::from(poam::push::run(args));
    }
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(e)) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
        Err(Failure::Other(e)) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{describe_secs, parse_ttl};

    #[test]
    fn ttls() {
        assert_eq!(parse_ttl("90"), Ok(90));
        assert_eq!(parse_ttl("30m"), Ok(1800));
        assert_eq!(parse_ttl("12h"), Ok(43_200));
        assert_eq!(parse_ttl("7d"), Ok(604_800));
        assert!(parse_ttl("0").is_err());
        assert!(parse_ttl("1w").is_err());
        assert!(parse_ttl("h").is_err());
        assert_eq!(describe_secs(90 * 86_400), "90d");
        assert_eq!(describe_secs(36 * 3600), "36h");
        assert_eq!(describe_secs(61), "61s");
    }
}
