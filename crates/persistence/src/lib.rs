//! The only room that knows SQL: one diesel schema over PostgreSQL and SQLite, the pool and its
//! URL-chosen connection manager, embedded migrations for both backends, and one module per
//! aggregate. Rows become domain types at this crate's door.

pub mod cmmc;
pub mod crypto;
mod dates;
pub mod db;
pub mod error;
pub mod events;
pub mod evidence;
pub mod exchange;
pub mod idempotency;
pub mod items;
pub mod metrics;
pub mod page;
pub mod reminders;
pub mod report;
pub mod scans;
pub mod schema;
pub mod systems;
pub mod threats;
pub mod vdr;
pub mod webhooks;
pub mod workflow;
pub mod writer;

pub use db::{DatabaseUrl, DbConnection, DbPool, PoolOptions};
pub use error::StoreError;
pub use page::Page;
