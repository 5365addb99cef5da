//! Connections, the pool and migrations. The backend is chosen from the URL scheme by the pool's
//! own connection manager: `postgres://` (or `postgresql://`) or `sqlite://`; anything else is
//! refused, so a typo never silently creates an empty SQLite file.

use crate::error::StoreError;
use chrono::{NaiveDateTime, SubsecRound, Utc};
use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::pg::PgConnection;
use diesel::r2d2::{self, ManageConnection, Pool, PooledConnection};
use diesel::sqlite::SqliteConnection;
use diesel::{Connection, RunQueryDsl};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Runs `$body` with `$c` bound to the backend's own connection, typed once per backend: for
/// the few statements the [`DbConnection`] does not pass through (multi-row `VALUES`).
macro_rules! on_inner {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            $crate::db::DbConnection::Pg($c) => $body,
            $crate::db::DbConnection::Sqlite($c) => $body,
        }
    };
}
pub(crate) use on_inner;

/// One connection to either backend; queries are written once against it.
#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    Pg(PgConnection),
    Sqlite(SqliteConnection),
}

/// The backend type of [`DbConnection`].
pub type Backend = <DbConnection as Connection>::Backend;

pub const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/postgres");
pub const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/sqlite");

/// A parsed database URL.
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    Postgres(String),
    Sqlite(PathBuf),
}

impl fmt::Debug for DatabaseUrl {
    // A PostgreSQL URL may carry a password: show only where it points.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.redacted())
    }
}

impl DatabaseUrl {
    pub fn parse(url: &str) -> Result<Self, String> {
        if let Some(path) = url.strip_prefix("sqlite://") {
            if path.is_empty() {
                return Err(
                    "a sqlite:// URL needs a file path, e.g. sqlite://./data/poam.db".into(),
                );
            }
            Ok(DatabaseUrl::Sqlite(PathBuf::from(path)))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(DatabaseUrl::Postgres(url.to_owned()))
        } else {
            let scheme = url.split_once("://").map_or(url, |(s, _)| s);
            Err(format!(
                "unsupported database URL scheme `{scheme}`: use sqlite://PATH or postgres://…"
            ))
        }
    }

    pub fn backend_name(&self) -> &'static str {
        match self {
            DatabaseUrl::Postgres(_) => "postgres",
            DatabaseUrl::Sqlite(_) => "sqlite",
        }
    }

    /// The URL with any password replaced, fit for logs.
    pub fn redacted(&self) -> String {
        match self {
            DatabaseUrl::Sqlite(p) => format!("sqlite://{}", p.display()),
            DatabaseUrl::Postgres(u) => mask_query_password(&match (u.find("://"), u.rfind('@')) {
                (Some(s), Some(at)) if at > s => {
                    let userinfo = &u[s + 3..at];
                    let user = userinfo.split(':').next().unwrap_or_default();
                    let masked = if userinfo.contains(':') {
                        format!("{user}:***")
                    } else {
                        user.to_owned()
                    };
                    format!("{}{}{}", &u[..s + 3], masked, &u[at..])
                }
                _ => u.clone(),
            }),
        }
    }
}

/// Masks a `password=` parameter in a URL's query string (libpq accepts one there too).
fn mask_query_password(url: &str) -> String {
    let Some((base, query)) = url.split_once('?') else {
        return url.to_owned();
    };
    let params: Vec<String> = query
        .split('&')
        .map(|p| match p.split_once('=') {
            Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
            _ => p.to_owned(),
        })
        .collect();
    format!("{base}?{}", params.join("&"))
}

/// The r2d2 manager: opens the right variant for the URL and prepares SQLite connections
/// (foreign keys on, WAL, a busy timeout).
#[derive(Debug, Clone)]
pub struct DbManager {
    url: DatabaseUrl,
    busy_timeout: Duration,
    /// Each SQLite connection's `cache_size`, in KiB.
    cache_kib: u32,
}

impl DbManager {
    pub fn new(url: DatabaseUrl, options: &PoolOptions) -> Self {
        Self {
            url,
            busy_timeout: options.busy_timeout,
            cache_kib: (options.sqlite_cache_kib / options.max_size.max(1)).max(64),
        }
    }

    fn open_sqlite(&self, path: &Path) -> Result<SqliteConnection, r2d2::Error> {
        let text = path.to_str().ok_or_else(|| {
            r2d2::Error::ConnectionError(diesel::ConnectionError::InvalidConnectionUrl(
                "the SQLite path is not valid UTF-8".into(),
            ))
        })?;
        let mut conn = SqliteConnection::establish(text).map_err(r2d2::Error::ConnectionError)?;
        conn.batch_execute(&format!(
            "PRAGMA busy_timeout = {};
             PRAGMA journal_mode = WAL;
             PRAGMA synchronous = NORMAL;
             PRAGMA foreign_keys = ON;
             PRAGMA temp_store = MEMORY;
             PRAGMA cache_size = -{};",
            self.busy_timeout.as_millis(),
            self.cache_kib
        ))
        .map_err(r2d2::Error::QueryError)?;
        refresh_statistics(&mut conn).map_err(r2d2::Error::QueryError)?;
        register_changes_seen(&mut conn).map_err(r2d2::Error::QueryError)?;
        Ok(conn)
    }
}

/// How often a connection of this process has found the SQLite database changed since it last
/// looked ([`changes_seen`]): equal counts, read one after the other, mean nothing was committed
/// in between that any connection of this process has noticed.
static CHANGES_SEEN: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

diesel::define_sql_function! {
    /// The connection's own `(total_changes(), data_version)` given, [`CHANGES_SEEN`] returned,
    /// raised first when the pair is not what this connection gave last time.
    fn poam_changes_seen(changes: diesel::sql_types::BigInt, data_version: diesel::sql_types::BigInt) -> diesel::sql_types::BigInt;
}

/// Gives `conn` the function [`changes_seen`] asks, with this connection's last pair of its
/// own: none yet, so its first answer is a raised count.
fn register_changes_seen(conn: &mut SqliteConnection) -> diesel::QueryResult<()> {
    use std::sync::atomic::Ordering;
    let mut last: Option<(i64, i64)> = None;
    poam_changes_seen_utils::register_nondeterministic_impl(
        conn,
        move |changes: i64, version: i64| {
            let now = Some((changes, version));
            let seen = if last == now {
                CHANGES_SEEN.load(Ordering::SeqCst)
            } else {
                last = now;
                CHANGES_SEEN.fetch_add(1, Ordering::SeqCst).wrapping_add(1)
            };
            // Compared for equality only: the wrap of a cast is harmless.
            seen as i64
        },
    )
}

/// Whether anything may have been committed to the SQLite database since an earlier answer: a
/// count that is the same as an earlier one (from any connection of this process) means
/// nothing was. Each connection compares, in one statement, its own `total_changes()` (what it
/// wrote itself, committed or not) and `PRAGMA data_version` (which changes when any other
/// connection, of this process or another, committed) with what it saw the last time it was
/// asked, and raises the process's count when either moved.
///
/// Why an equal count is proof: a commit C finishes; a connection asked after C reads a
/// `data_version` (or, on C's own connection, a `total_changes()`) other than the one it read
/// before C, unless an earlier question on that connection after C already saw the change and
/// raised the count then. Either way the count was raised after C, so a count read before C
/// differs from every count read after C's first noticing, and a later question on any
/// connection notices (every connection looks at its own pair each time it is asked). A
/// reader that takes the count *before* reading the rows it answers from (see
/// `items::get_or_cached`) can trust those rows for as long as the count stays the same.
pub fn changes_seen(conn: &mut SqliteConnection) -> Result<u64, StoreError> {
    let seen: i64 = ChangesSeen.get_result(conn)?;
    Ok(seen as u64)
}

/// `SELECT poam_changes_seen(total_changes(), data_version) FROM pragma_data_version()`, a
/// statement of static shape (prepared once per connection).
#[derive(Debug, Clone, Copy)]
struct ChangesSeen;

impl diesel::query_builder::QueryId for ChangesSeen {
    type QueryId = ChangesSeen;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl diesel::query_builder::Query for ChangesSeen {
    type SqlType = diesel::sql_types::BigInt;
}

impl diesel::query_builder::QueryFragment<diesel::sqlite::Sqlite> for ChangesSeen {
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, diesel::sqlite::Sqlite>,
    ) -> diesel::QueryResult<()> {
        out.push_sql(
            "SELECT poam_changes_seen(total_changes(), data_version) FROM pragma_data_version()",
        );
        Ok(())
    }
}

impl<Conn> RunQueryDsl<Conn> for ChangesSeen {}

/// Initialises OpenSSL, which libpq speaks TLS with, before anything else does, and without
/// OpenSSL's exit-time cleanup: that cleanup frees OpenSSL's global state from `exit()` while
/// other threads may still be closing or opening TLS connections (a pool's maintenance thread,
/// a worker dropping its connection), which aborted a process at exit with "double free or
/// corruption" (a test process of ours, after its test had passed). The first initialisation
/// decides: called before a pool's first PostgreSQL connection (nothing else in the process
/// uses OpenSSL: TLS is rustls, evidence encryption AWS-LC), and not on SQLite, where OpenSSL
/// is never loaded (its initialisation costs about 5 MiB of idle RSS); idempotent.
pub fn init_tls_library() {
    openssl_sys::init();
}

impl ManageConnection for DbManager {
    type Connection = PoolConn;
    type Error = r2d2::Error;

    fn connect(&self) -> Result<PoolConn, r2d2::Error> {
        let conn = match &self.url {
            DatabaseUrl::Postgres(url) => PgConnection::establish(url)
                .map(DbConnection::Pg)
                .map_err(r2d2::Error::ConnectionError)?,
            DatabaseUrl::Sqlite(path) => self.open_sqlite(path).map(DbConnection::Sqlite)?,
        };
        Ok(PoolConn {
            conn,
            dead: false,
            last_checkout: Instant::now(),
        })
    }

    fn is_valid(&self, conn: &mut PoolConn) -> Result<(), r2d2::Error> {
        conn.conn
            .batch_execute("SELECT 1")
            .map_err(r2d2::Error::QueryError)
    }

    fn has_broken(&self, conn: &mut PoolConn) -> bool {
        conn.dead
            || <DbConnection as Connection>::TransactionManager::is_broken_transaction_manager(
                &mut conn.conn,
            )
    }
}

/// What the pool holds: a connection and what is known of its health. Used as a
/// [`DbConnection`] (it dereferences to one).
///
/// The pool does not ping a connection on every checkout (a round trip per request on
/// PostgreSQL): [`checkout`] pings only one that sat idle long enough for the server to have
/// dropped it, and a connection that failed as a dead one fails ([`PoolConn::settle`]) is
/// discarded instead of going back to the pool.
pub struct PoolConn {
    conn: DbConnection,
    /// Failed the way a lost connection fails: the pool closes it.
    dead: bool,
    last_checkout: Instant,
}

impl std::ops::Deref for PoolConn {
    type Target = DbConnection;
    fn deref(&self) -> &DbConnection {
        &self.conn
    }
}

impl std::ops::DerefMut for PoolConn {
    fn deref_mut(&mut self) -> &mut DbConnection {
        &mut self.conn
    }
}

impl PoolConn {
    /// Passes `result` through, marking the connection dead when the error says the server is
    /// gone (PostgreSQL; a busy SQLite file does not make its connection bad).
    pub fn settle<T>(&mut self, result: Result<T, StoreError>) -> Result<T, StoreError> {
        if matches!(result, Err(StoreError::Unavailable(_))) {
            self.failed();
        }
        result
    }

    /// Work on the connection failed in a way the connection itself may have caused: on
    /// PostgreSQL it is not used again (closed when it goes back to the pool).
    pub fn failed(&mut self) {
        if matches!(self.conn, DbConnection::Pg(_)) {
            self.dead = true;
        }
    }
}

/// A connection idle for less than this is trusted without a ping: the server (a restart, a
/// failover, `idle_session_timeout`, an administrator's `pg_terminate_backend`) drops idle
/// connections, and a busy one that breaks fails its request with a 503 and is discarded.
const TRUSTED_IDLE: Duration = Duration::from_secs(1);

/// A connection from the pool, pinged first (PostgreSQL) when it sat idle past
/// [`TRUSTED_IDLE`]; a dead one is discarded and the next one tried.
pub fn checkout(pool: &DbPool) -> Result<PooledDb, StoreError> {
    let mut failure = None;
    for _ in 0..=pool.max_size() {
        let mut conn = pool.get()?;
        let idle = conn.last_checkout.elapsed();
        conn.last_checkout = Instant::now();
        if idle < TRUSTED_IDLE || matches!(conn.conn, DbConnection::Sqlite(_)) {
            return Ok(conn);
        }
        match conn.conn.batch_execute("SELECT 1") {
            Ok(()) => return Ok(conn),
            Err(e) => {
                conn.dead = true;
                failure = Some(e);
            }
        }
    }
    Err(failure.map_or_else(
        || StoreError::Unavailable("no live database connection".into()),
        StoreError::from,
    ))
}

/// A free connection at once, when the database is in-process (SQLite) and one is idle: for a
/// read so short (a primary-key lookup in the page cache) that handing it to another thread and
/// back costs more than the read. `None`: PostgreSQL, or every connection busy.
pub fn checkout_now(pool: &DbPool) -> Option<PooledDb> {
    let mut conn = pool.try_get()?;
    if !matches!(conn.conn, DbConnection::Sqlite(_)) {
        return None;
    }
    conn.last_checkout = Instant::now();
    Some(conn)
}

pub type DbPool = Pool<DbManager>;
pub type PooledDb = PooledConnection<DbManager>;

/// Pool sizing and waiting.
#[derive(Debug, Clone)]
pub struct PoolOptions {
    pub max_size: u32,
    /// How long a request waits for a connection before the service answers 503.
    pub connection_timeout: Duration,
    /// How long SQLite waits on a lock held by another writer.
    pub busy_timeout: Duration,
    /// SQLite's page cache in KiB, for the whole pool: the bundled SQLite keeps one cache for
    /// the process, as large as its open connections' `cache_size` together, so each
    /// connection is given its share.
    pub sqlite_cache_kib: u32,
}

impl Default for PoolOptions {
    fn default() -> Self {
        Self {
            max_size: 8,
            connection_timeout: Duration::from_secs(5),
            busy_timeout: Duration::from_secs(5),
            sqlite_cache_kib: 16 << 10,
        }
    }
}

/// Opens a pool. For SQLite the file's directory must exist; the file is created.
///
/// On SQLite every connection of the pool is opened now and kept: the bundled SQLite
/// (`SQLITE_ENABLE_MEMORY_MANAGEMENT`) keeps one page cache for all the connections of the
/// process, as large as the caches of the connections open (each its share of
/// `PoolOptions::sqlite_cache_kib`). A pool that opened connections only as requests needed
/// them read the database through the two or three that two workers keep busy, a third of
/// the cache: a GET by id at 10,000 items read the file
/// 0.89-1.29 times a request then, 0.81-0.89 with the pool open (the reference ceiling's own
/// pool of 8 reads 0.61 against 1.72 when cut to 2). On PostgreSQL one is kept idle: every
/// instance's idle connection is the server's to hold.
pub fn connect(url: &DatabaseUrl, options: &PoolOptions) -> Result<DbPool, String> {
    let idle = match url {
        DatabaseUrl::Sqlite(_) => options.max_size,
        DatabaseUrl::Postgres(_) => 1,
    };
    connect_keeping(url, options, idle)
}

/// A pool for a command that runs and exits (`migrate`, `backup`, `audit verify`,
/// `evidence-keys`): no connection is opened in the background to keep one idle, only to be
/// closed at once (seen before [`init_tls_library`]: `free(): invalid pointer` at the exit of
/// `evidence-keys rotate` on PostgreSQL over TLS, a handshake under way in libpq while OpenSSL's
/// exit handler ran).
pub fn connect_for_command(url: &DatabaseUrl, options: &PoolOptions) -> Result<DbPool, String> {
    connect_keeping(url, options, 0)
}

fn connect_keeping(url: &DatabaseUrl, options: &PoolOptions, idle: u32) -> Result<DbPool, String> {
    if matches!(url, DatabaseUrl::Postgres(_)) {
        init_tls_library();
    }
    let manager = DbManager::new(url.clone(), options);
    let pool = Pool::builder()
        .max_size(options.max_size)
        .min_idle(Some(idle))
        .connection_timeout(options.connection_timeout)
        // No ping per checkout: `checkout` pings only connections idle long enough to have
        // been dropped, and connections that failed as dead ones are discarded.
        .test_on_check_out(false)
        // One thread opens and reaps connections in the background (r2d2 starts three, idle
        // almost always: their stacks and arena). A pool that grows under a burst opens its
        // new connections one after another, once.
        .thread_pool(std::sync::Arc::new(
            scheduled_thread_pool::ScheduledThreadPool::builder()
                .num_threads(1)
                .thread_name_pattern("r2d2-worker-{}")
                .build(),
        ))
        .build(manager)
        .map_err(|e| format!("cannot connect to {}: {e}", url.redacted()))?;
    if idle == 0 {
        // Nothing was opened to build it: one connection now, so a wrong URL or a stopped
        // server is reported as such, here.
        pool.get()
            .map_err(|e| format!("cannot connect to {}: {e}", url.redacted()))?;
    }
    Ok(pool)
}

fn migration_error(e: Box<dyn std::error::Error + Send + Sync>) -> StoreError {
    StoreError::Internal(format!("migration failed: {e}"))
}

/// Applies every pending migration; returns the versions applied.
pub fn run_migrations(conn: &mut DbConnection) -> Result<Vec<String>, StoreError> {
    let applied: Vec<String> = match conn {
        DbConnection::Pg(c) => c
            .run_pending_migrations(POSTGRES_MIGRATIONS)
            .map(|a| a.iter().map(|v| v.to_string()).collect()),
        DbConnection::Sqlite(c) => c
            .run_pending_migrations(SQLITE_MIGRATIONS)
            .map(|a| a.iter().map(|v| v.to_string()).collect()),
    }
    .map_err(migration_error)?;
    // A new index has no statistics until analysed: without them the planner may prefer a scan
    // (a million-item system's metrics: 2.8 s instead of 0.25 s).
    if let (DbConnection::Sqlite(c), false) = (&mut *conn, applied.is_empty()) {
        refresh_statistics(c)?;
    }
    Ok(applied)
}

/// SQLite's planner statistics brought up to date where they are missing or stale, sampling at
/// most 400 rows per index (milliseconds, whatever the size of the file). PostgreSQL's
/// autovacuum does this on its own.
fn refresh_statistics(conn: &mut SqliteConnection) -> diesel::QueryResult<()> {
    conn.batch_execute("PRAGMA analysis_limit = 400; PRAGMA optimize = 0x10002;")
}

/// The migrations not yet applied.
pub fn pending_migrations(conn: &mut DbConnection) -> Result<Vec<String>, StoreError> {
    match conn {
        DbConnection::Pg(c) => c
            .pending_migrations(POSTGRES_MIGRATIONS)
            .map(|p| p.iter().map(|m| m.name().to_string()).collect()),
        DbConnection::Sqlite(c) => c
            .pending_migrations(SQLITE_MIGRATIONS)
            .map(|p| p.iter().map(|m| m.name().to_string()).collect()),
    }
    .map_err(migration_error)
}

/// Reverts every applied migration (tests prove each runs down and up again).
pub fn revert_all_migrations(conn: &mut DbConnection) -> Result<Vec<String>, StoreError> {
    let reverted = match conn {
        DbConnection::Pg(c) => c.revert_all_migrations(POSTGRES_MIGRATIONS),
        DbConnection::Sqlite(c) => c.revert_all_migrations(SQLITE_MIGRATIONS),
    }
    .map_err(migration_error)?;
    Ok(reverted.iter().map(|v| v.to_string()).collect())
}

/// A table's name and its columns (name, portable type, nullable), sorted.
pub type TableShape = (String, Vec<(String, String, bool)>);

/// PostgreSQL's spelling of a portable column type, as the migrations write it.
fn portable_type(pg: &str) -> String {
    match pg {
        "timestamp without time zone" => "TIMESTAMP".into(),
        "bytea" => "BLOB".into(),
        other => other.to_ascii_uppercase(),
    }
}

/// The tables and their columns, and the index names, sorted: what both backends must agree on.
pub fn describe_schema(
    conn: &mut DbConnection,
) -> Result<(Vec<TableShape>, Vec<String>), StoreError> {
    use diesel::sql_types::{Bool, Text};
    use diesel::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct Column {
        #[diesel(sql_type = Text)]
        table_name: String,
        #[diesel(sql_type = Text)]
        column_name: String,
        #[diesel(sql_type = Text)]
        data_type: String,
        #[diesel(sql_type = Bool)]
        nullable: bool,
    }
    #[derive(diesel::QueryableByName)]
    struct Index {
        #[diesel(sql_type = Text)]
        name: String,
    }
    let (rows, indexes): (Vec<Column>, Vec<Index>) = match conn {
        DbConnection::Pg(c) => (
            diesel::sql_query(
                "SELECT table_name::text AS table_name, column_name::text AS column_name,
                        data_type::text AS data_type, (is_nullable = 'YES') AS nullable
                 FROM information_schema.columns
                 WHERE table_schema = current_schema() AND table_name <> '__diesel_schema_migrations'",
            )
            .load(c)?,
            diesel::sql_query(
                "SELECT indexname::text AS name FROM pg_indexes
                 WHERE schemaname = current_schema() AND indexname NOT LIKE '%\\_pkey'
                   AND tablename <> '__diesel_schema_migrations'",
            )
            .load(c)?,
        ),
        DbConnection::Sqlite(c) => (
            diesel::sql_query(
                "SELECT m.name AS table_name, p.name AS column_name, p.type AS data_type,
                        (p.\"notnull\" = 0 AND p.pk = 0) AS nullable
                 FROM sqlite_master m, pragma_table_info(m.name) p
                 WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%'
                   AND m.name <> '__diesel_schema_migrations'",
            )
            .load(c)?,
            diesel::sql_query(
                "SELECT name FROM sqlite_master WHERE type = 'index' AND name NOT LIKE 'sqlite_autoindex%'",
            )
            .load(c)?,
        ),
    };
    let mut tables: std::collections::BTreeMap<String, Vec<(String, String, bool)>> =
        Default::default();
    for r in rows {
        tables.entry(r.table_name).or_default().push((
            r.column_name,
            portable_type(&r.data_type),
            r.nullable,
        ));
    }
    let tables = tables
        .into_iter()
        .map(|(t, mut cols)| {
            cols.sort();
            (t, cols)
        })
        .collect();
    let mut names: Vec<String> = indexes.into_iter().map(|i| i.name).collect();
    names.sort();
    Ok((tables, names))
}

/// SQLite has one writer at a time. Writers of this process queue here, in order, instead of
/// polling the file lock through the busy handler (whose back-off sleeps made the tail latency
/// of concurrent creates hundreds of milliseconds); other processes still meet the busy timeout.
static SQLITE_WRITER: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Runs `f` in one write transaction. On SQLite it begins `IMMEDIATE`, taking the write lock
/// up front so that concurrent writers queue instead of failing on a stale read snapshot;
/// PostgreSQL uses a normal transaction (row locks do the queueing).
pub fn write<T, E>(
    conn: &mut DbConnection,
    f: impl FnOnce(&mut DbConnection) -> Result<T, E>,
) -> Result<T, E>
where
    E: From<diesel::result::Error>,
{
    if in_transaction(conn) {
        // Inside a batch of the group-commit writer, which gave this write a savepoint of its
        // own (rolled back when the write fails): join it. Another savepoint would cost two
        // round trips on PostgreSQL, and on SQLite a second copy of every page it touches.
        return f(conn);
    }
    if let DbConnection::Pg(_) = conn {
        return conn.transaction(f);
    }
    let _turn = writer_turn(conn);
    begin_write(conn)?;
    let result = f(conn);
    if let DbConnection::Sqlite(c) = conn {
        match &result {
            Ok(_) => AnsiTransactionManager::commit_transaction(c)?,
            Err(_) => AnsiTransactionManager::rollback_transaction(c)?,
        }
    }
    result
}

/// Whether a transaction is open on the connection.
fn in_transaction(conn: &mut DbConnection) -> bool {
    let status = match conn {
        DbConnection::Pg(c) => AnsiTransactionManager::transaction_manager_status_mut(c),
        DbConnection::Sqlite(c) => AnsiTransactionManager::transaction_manager_status_mut(c),
    };
    !matches!(status.transaction_depth(), Ok(None))
}

/// This process's turn to write to a SQLite file (nothing to wait for on PostgreSQL).
pub(crate) fn writer_turn(conn: &DbConnection) -> Option<std::sync::MutexGuard<'static, ()>> {
    match conn {
        // A writer that panicked released the lock without corrupting anything it guards.
        DbConnection::Sqlite(_) => Some(SQLITE_WRITER.lock().unwrap_or_else(|p| p.into_inner())),
        DbConnection::Pg(_) => None,
    }
}

/// Begins a write transaction: `BEGIN IMMEDIATE` on SQLite, after checking that the file is
/// still there; `BEGIN` on PostgreSQL.
pub(crate) fn begin_write(conn: &mut DbConnection) -> Result<(), diesel::result::Error> {
    match conn {
        DbConnection::Pg(c) => AnsiTransactionManager::begin_transaction(c),
        DbConnection::Sqlite(c) => {
            sqlite_file_present(c)?;
            AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE")
        }
    }
}

/// Runs `f` inside one read-only snapshot: every read sees the database as of the first one
/// (PostgreSQL: REPEATABLE READ; SQLite: a WAL read transaction), whatever commits meanwhile.
/// Always rolled back: nothing written inside survives.
pub fn snapshot<T, E>(
    conn: &mut DbConnection,
    f: impl FnOnce(&mut DbConnection) -> Result<T, E>,
) -> Result<T, E>
where
    E: From<diesel::result::Error>,
{
    match conn {
        DbConnection::Pg(c) => AnsiTransactionManager::begin_transaction_sql(
            c,
            "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
        )?,
        DbConnection::Sqlite(c) => AnsiTransactionManager::begin_transaction_sql(c, "BEGIN")?,
    }
    let result = f(conn);
    let rolled_back = match conn {
        DbConnection::Pg(c) => AnsiTransactionManager::rollback_transaction(c),
        DbConnection::Sqlite(c) => AnsiTransactionManager::rollback_transaction(c),
    };
    let value = result?;
    rolled_back?;
    Ok(value)
}

/// Writes a consistent copy of a SQLite database to `to` while the service keeps running
/// (`VACUUM INTO`: one read transaction, so the copy is a snapshot, compacted). PostgreSQL is
/// backed up with its own tools (`pg_dump`), which this refuses to imitate.
pub fn backup_sqlite(conn: &mut DbConnection, to: &Path) -> Result<(), StoreError> {
    if to.exists() {
        return Err(StoreError::Internal(format!(
            "{} exists: a backup never overwrites",
            to.display()
        )));
    }
    let target = to
        .to_str()
        .ok_or_else(|| StoreError::Internal("the backup path is not valid UTF-8".into()))?;
    match conn {
        DbConnection::Sqlite(c) => diesel::sql_query("VACUUM INTO ?")
            .bind::<diesel::sql_types::Text, _>(target)
            .execute(c)
            .map(|_| ())
            .map_err(StoreError::from),
        DbConnection::Pg(_) => Err(StoreError::Internal(
            "PostgreSQL is backed up with pg_dump (see the README); `poam backup` copies SQLite"
                .into(),
        )),
    }
}

#[derive(diesel::QueryableByName)]
struct MainFile {
    #[diesel(sql_type = diesel::sql_types::Text)]
    file: String,
}

/// A SQLite file removed under the running service keeps working on its open inode, and every
/// write to it would vanish at the next start: refused instead (503, "unable to open database
/// file"), so the operator sees it at once.
fn sqlite_file_present(c: &mut SqliteConnection) -> Result<(), diesel::result::Error> {
    let files: Vec<MainFile> =
        diesel::sql_query("SELECT file FROM pragma_database_list WHERE name = 'main'").load(c)?;
    match files.first() {
        Some(f) if !f.file.is_empty() && !Path::new(&f.file).exists() => {
            Err(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::Unknown,
                Box::new(format!(
                    "unable to open database file: {} was removed under the running service",
                    f.file
                )),
            ))
        }
        _ => Ok(()),
    }
}

/// A round trip to the database (readiness).
pub fn ping(conn: &mut DbConnection) -> Result<(), StoreError> {
    if let DbConnection::Sqlite(c) = conn {
        sqlite_file_present(c).map_err(|e| StoreError::Unavailable(e.to_string()))?;
    }
    conn.batch_execute("SELECT 1")
        .map_err(|e| StoreError::Unavailable(e.to_string()))
}

/// The current time in UTC, at the microsecond precision both backends store.
pub fn now() -> NaiveDateTime {
    Utc::now().naive_utc().trunc_subsecs(6)
}

/// Refreshes the planner's statistics of the tables a large import has just grown: on
/// PostgreSQL, `ANALYZE` of them (a table grown from empty keeps its "empty" estimate until
/// autovacuum comes round, and the planner then scans it whole for every lookup: a repeated
/// 20,000-finding scan import took 5.05 s before, 0.57 s after); on SQLite, `PRAGMA optimize`.
pub fn refresh_after_import(conn: &mut DbConnection, tables: &[&str]) -> Result<(), StoreError> {
    match conn {
        DbConnection::Pg(c) => {
            let names: Vec<&str> = tables
                .iter()
                .copied()
                .filter(|t| t.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
                .collect();
            if !names.is_empty() {
                c.batch_execute(&format!("ANALYZE {}", names.join(", ")))?;
            }
        }
        DbConnection::Sqlite(c) => refresh_statistics(c)?,
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `changes_seen` stays the same while nothing is committed, and moves after a commit by
    /// another connection (`data_version`) and after one by the asking connection itself
    /// (`total_changes()`, which `data_version` does not count).
    #[test]
    fn changes_seen_moves_after_every_commit_and_only_then() {
        let dir = std::env::temp_dir().join(format!("poam-seen-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        let file = dir.join("seen.db");
        let manager = DbManager::new(DatabaseUrl::Sqlite(file.clone()), &PoolOptions::default());
        let open = || {
            manager
                .open_sqlite(&file)
                .unwrap_or_else(|e| panic!("open: {e}"))
        };
        let (mut a, mut b) = (open(), open());
        let seen = |c: &mut SqliteConnection| changes_seen(c).unwrap_or_else(|e| panic!("{e}"));
        a.batch_execute("CREATE TABLE t (x INTEGER)")
            .unwrap_or_else(|e| panic!("{e}"));
        // Each connection's first answer is a raised count; then the same while nothing moves.
        seen(&mut a);
        seen(&mut b);
        let quiet = seen(&mut a);
        assert_eq!(seen(&mut b), quiet);
        assert_eq!(seen(&mut a), quiet);

        // B commits: A notices (data_version); B notices its own (total_changes).
        b.batch_execute("INSERT INTO t VALUES (1)")
            .unwrap_or_else(|e| panic!("{e}"));
        let after_b = seen(&mut a);
        assert_ne!(after_b, quiet);
        assert_ne!(seen(&mut b), after_b);
        let quiet = seen(&mut a);
        assert_eq!(seen(&mut b), quiet);

        // A commits and asks first, and again after B's question.
        a.batch_execute("UPDATE t SET x = 2")
            .unwrap_or_else(|e| panic!("{e}"));
        let after_a = seen(&mut a);
        assert_ne!(after_a, quiet);
        assert_ne!(seen(&mut b), after_a);
        let quiet = seen(&mut b);
        assert_eq!(seen(&mut a), quiet);

        // A write that changed no row and a read are no commit of a change.
        a.batch_execute("UPDATE t SET x = 3 WHERE x = 99; SELECT * FROM t")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(seen(&mut a), quiet);
        assert_eq!(seen(&mut b), quiet);
        drop((a, b));
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// The bundled SQLite is built as `.cargo/config.toml` asks: plans stable across bound
    /// values (a cached statement is not prepared again) and no per-connection mutex.
    #[test]
    fn the_bundled_sqlite_has_the_flags_the_service_relies_on() {
        use diesel::Connection;
        #[derive(diesel::QueryableByName)]
        struct CompileOption {
            #[diesel(sql_type = diesel::sql_types::Text)]
            compile_options: String,
        }
        let mut c = diesel::SqliteConnection::establish(":memory:")
            .unwrap_or_else(|e| panic!("in-memory SQLite: {e}"));
        let options: Vec<String> = diesel::sql_query("PRAGMA compile_options")
            .load::<CompileOption>(&mut c)
            .unwrap_or_else(|e| panic!("compile options: {e}"))
            .into_iter()
            .map(|o| o.compile_options)
            .collect();
        for wanted in ["ENABLE_QPSG", "THREADSAFE=2"] {
            assert!(
                options.iter().any(|o| o == wanted),
                "{wanted} in {options:?}"
            );
        }
    }

    #[test]
    fn urls_pick_the_backend_by_scheme_and_refuse_others() {
        assert_eq!(
            DatabaseUrl::parse("sqlite://./data/poam.db"),
            Ok(DatabaseUrl::Sqlite(PathBuf::from("./data/poam.db")))
        );
        assert_eq!(
            DatabaseUrl::parse("sqlite:///var/lib/poam/poam.db"),
            Ok(DatabaseUrl::Sqlite(PathBuf::from("/var/lib/poam/poam.db")))
        );
        assert!(matches!(
            DatabaseUrl::parse("postgresql://u@h/db"),
            Ok(DatabaseUrl::Postgres(_))
        ));
        for bad in ["mysql://h/db", "sqlite://", "./poam.db", "sqlite:poam.db"] {
            assert!(DatabaseUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn passwords_never_reach_the_log() {
        let url = DatabaseUrl::parse("postgres://poam:s3cret@db:5432/poam")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(url.redacted(), "postgres://poam:***@db:5432/poam");
        assert!(!format!("{url:?}").contains("s3cret"));
        let url =
            DatabaseUrl::parse("postgres://db/poam?user=poam&password=s3cret&sslmode=require")
                .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            url.redacted(),
            "postgres://db/poam?user=poam&password=***&sslmode=require"
        );
    }
}
