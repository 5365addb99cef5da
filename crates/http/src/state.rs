//! What every handler shares.

use crate::auth::Authenticator;
use poam_domain::{Item, SystemScope};
use poam_persistence::db::DbConnection;
use poam_persistence::items::{self, NewItem};
use poam_persistence::writer::Writer;
use poam_persistence::{DbPool, StoreError};
use std::sync::Arc;

use crate::problem::ApiError;
use actix_web::web;

/// The largest JSON body accepted by default (1 MiB): far above any item (its text fields are
/// bounded at 2000 characters), far below what could exhaust memory.
pub const DEFAULT_BODY_LIMIT: usize = 1 << 20;

/// The largest bulk or import body accepted by default: 32 MiB (a thousand items at their
/// longest fit).
pub const DEFAULT_IMPORT_LIMIT: usize = 32 << 20;

/// The most elements one bulk request may carry by default.
pub const DEFAULT_BULK_MAX: usize = 1000;

/// The largest streamed scan file: 1 GiB (a large ACAS `.nessus` runs to hundreds of MB).
pub const DEFAULT_SCAN_LIMIT: usize = 1 << 30;

/// What the item renderings may take by default (`POAM_ITEM_CACHE_MIB`): 24 MiB, about 12,000
/// items.
pub const DEFAULT_ITEM_CACHE_BYTES: u64 = 24 << 20;

/// eMASS's limit for one artifact: 30 MiB.
pub const DEFAULT_EVIDENCE_LIMIT: usize = 30 << 20;

#[derive(Clone)]
pub struct AppState {
    pub pool: DbPool,
    pub auth: Arc<Authenticator>,
    pub body_limit: usize,
    /// The largest evidence file accepted.
    pub evidence_limit: usize,
    /// The largest bulk or import body.
    pub import_limit: usize,
    /// The largest scan file streamed from disk (`.nessus`, CKL, CSV): never held in memory.
    pub scan_limit: usize,
    /// The most elements of one bulk request.
    pub bulk_max: usize,
    /// Serve Prometheus metrics at `/metrics` (to tokens with the audit permission).
    pub metrics_enabled: bool,
    /// Where uploads are spooled while they stream in (never held whole in memory).
    pub spool_dir: std::path::PathBuf,
    /// The classification banner in row 1 of eMASS template exports.
    pub classification_banner: Arc<str>,
    /// The group-commit writer: on SQLite every single-record write queues here instead of each
    /// taking the file's write lock in turn; on PostgreSQL item creations, batched per system.
    /// `None`: every write runs on the pool.
    pub writer: Option<Writer>,
    /// Rate limits, concurrency limits, the memory budget, quotas and idle timeouts.
    pub protection: Arc<crate::protection::Protection>,
    /// Webhook settings: the URL checks of subscriptions and the secret overlap of rotations.
    pub webhooks: Arc<crate::delivery::WebhookSettings>,
    /// Items as `GET /v1/items/{id}` last rendered them, by version.
    pub item_cache: Arc<crate::item_cache::ItemCache>,
}

impl AppState {
    pub fn new(pool: DbPool, auth: Authenticator) -> Self {
        AppState {
            pool,
            auth: Arc::new(auth),
            body_limit: DEFAULT_BODY_LIMIT,
            evidence_limit: DEFAULT_EVIDENCE_LIMIT,
            import_limit: DEFAULT_IMPORT_LIMIT,
            scan_limit: DEFAULT_SCAN_LIMIT,
            bulk_max: DEFAULT_BULK_MAX,
            metrics_enabled: true,
            writer: None,
            spool_dir: std::env::temp_dir(),
            classification_banner: Arc::from(poam_domain::exchange::emass::DEFAULT_BANNER),
            protection: Arc::new(crate::protection::Protection::default()),
            webhooks: Arc::new(crate::delivery::WebhookSettings::default()),
            item_cache: Arc::new(crate::item_cache::ItemCache::new(DEFAULT_ITEM_CACHE_BYTES)),
        }
    }

    /// Runs database work on the blocking pool, never on an actix worker, inside the caller's
    /// tracing span.
    pub async fn db<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConnection) -> Result<T, StoreError> + Send + 'static,
    {
        let pool = self.pool.clone();
        let span = tracing::Span::current();
        web::block(move || {
            let _entered = span.enter();
            let mut conn = poam_persistence::db::checkout(&pool)?;
            let result = f(&mut conn);
            conn.settle(result)
        })
        .await
        .map_err(|e| {
            tracing::error!(cause = %e, "blocking task failed");
            ApiError::Internal
        })?
        .map_err(ApiError::from)
    }

    /// A short read by key (one row by its primary key): on SQLite, run right here when a
    /// connection is idle, since a read from the page cache takes microseconds and handing it to
    /// the blocking pool and back costs two thread switches; otherwise (PostgreSQL, or the pool
    /// busy) as [`AppState::db`]. Never for scans, exports or anything that may wait on a lock
    /// (SQLite readers in WAL mode do not wait on writers).
    pub async fn read<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConnection) -> Result<T, StoreError> + Send + 'static,
    {
        match poam_persistence::db::checkout_now(&self.pool) {
            Some(mut conn) => {
                let result = f(&mut conn);
                conn.settle(result).map_err(ApiError::from)
            }
            None => self.db(f).await,
        }
    }

    /// Runs one short write (a record created, changed or moved through its lifecycle): through
    /// the group-commit writer when there is one, else as [`AppState::db`]. `f` makes its
    /// changes through `db::write`, and its answer comes once they are committed.
    pub async fn write<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConnection) -> Result<T, StoreError> + Send + 'static,
    {
        match &self.writer {
            Some(writer) if !writer.per_system() => self.queue(writer, f).await,
            _ => self.db(f).await,
        }
    }

    /// Creates an item (the caller checked the scope): through the group-commit writer when
    /// there is one, where the creations of one system that share a batch are written together.
    pub async fn create_item(
        &self,
        system: poam_domain::SystemId,
        item: NewItem,
    ) -> Result<Item, ApiError> {
        let Some(writer) = &self.writer else {
            return self
                .db(move |conn| {
                    items::create(conn, system, &SystemScope::All, &item.fields, &item.actor)
                })
                .await;
        };
        let (tx, rx) = tokio::sync::oneshot::channel();
        writer.create(system.to_string(), item, move |result| {
            // The caller may have gone (its connection closed); the item stands.
            let _ = tx.send(result);
        })?;
        answer(rx.await)
    }

    async fn queue<T, F>(&self, writer: &Writer, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConnection) -> Result<T, StoreError> + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        writer.submit(f, move |result| {
            // The caller may have gone (its connection closed); the write stands.
            let _ = tx.send(result);
        })?;
        answer(rx.await)
    }
}

/// What the writer answered, or a bare 500 if it dropped the write unanswered (a panic).
fn answer<T>(
    received: Result<Result<T, StoreError>, tokio::sync::oneshot::error::RecvError>,
) -> Result<T, ApiError> {
    match received {
        Ok(result) => result.map_err(ApiError::from),
        Err(_) => {
            tracing::error!("the writer dropped a write without an answer");
            Err(ApiError::Internal)
        }
    }
}
