//! The store's error: what the HTTP room maps to problem+json, once.

use poam_domain::Violation;
use std::fmt;

#[derive(Debug)]
pub enum StoreError {
    /// No such resource, or one outside the caller's scope (the two are not told apart).
    NotFound,
    /// `If-Match` named a version that is no longer current.
    Stale { current: i64 },
    /// The write conflicts with the current state (a taken external id, an archived parent).
    Conflict(Violation),
    /// A rule reserves the change to another role (an approver's decision, an admin's migration).
    Forbidden(Violation),
    /// A list cursor that this list did not issue.
    BadCursor,
    /// The content breaks a rule.
    Invalid(Vec<Violation>),
    /// The database cannot be reached or is busy past its bound: retry later.
    Unavailable(String),
    /// Anything else: logged in full, answered as a bare 500.
    Internal(String),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::NotFound => f.write_str("not found"),
            StoreError::Stale { current } => write!(f, "stale version (current {current})"),
            StoreError::Conflict(v) => write!(f, "conflict: {}", v.message),
            StoreError::Forbidden(v) => write!(f, "forbidden: {}", v.message),
            StoreError::Invalid(v) => write!(f, "{} rule violation(s)", v.len()),
            StoreError::BadCursor => f.write_str("foreign cursor"),
            StoreError::Unavailable(m) => write!(f, "database unavailable: {m}"),
            StoreError::Internal(m) => write!(f, "internal: {m}"),
        }
    }
}

impl std::error::Error for StoreError {}

impl From<poam_domain::change::Refusal> for StoreError {
    fn from(r: poam_domain::change::Refusal) -> Self {
        use poam_domain::change::Refusal;
        match r {
            Refusal::Forbidden(v) => StoreError::Forbidden(v),
            Refusal::Invalid(v) => StoreError::Invalid(v),
            Refusal::Conflict(v) => StoreError::Conflict(v),
        }
    }
}

impl From<diesel::result::Error> for StoreError {
    fn from(e: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind, Error};
        match e {
            Error::NotFound => StoreError::NotFound,
            Error::DatabaseError(DatabaseErrorKind::ClosedConnection, info) => {
                StoreError::Unavailable(info.message().to_owned())
            }
            Error::DatabaseError(_, info) if unavailable(info.message()) => {
                StoreError::Unavailable(info.message().to_owned())
            }
            Error::BrokenTransactionManager => {
                StoreError::Unavailable("the connection broke inside a transaction".into())
            }
            other => StoreError::Internal(other.to_string()),
        }
    }
}

/// Messages of a database that is gone, going, busy or unwritable: the request may succeed
/// later, so it is a 503, never a 500.
fn unavailable(message: &str) -> bool {
    const SIGNS: &[&str] = &[
        // SQLite: another writer holds the lock past the busy timeout; the file cannot be
        // written (read-only, full disk) or reached.
        "database is locked",
        "database is busy",
        "attempt to write a readonly database",
        "unable to open database file",
        "disk I/O error",
        "database or disk is full",
        // PostgreSQL: shut down, restarted or unreachable under a live connection.
        "terminating connection",
        "server closed the connection",
        "no connection to the server",
        "connection to server",
        "could not connect",
        "the database system is shutting down",
        "the database system is starting up",
        "the database system is in recovery mode",
        "could not receive data from server",
        "could not send data to server",
    ];
    SIGNS.iter().any(|s| message.contains(s))
}

impl From<diesel::r2d2::PoolError> for StoreError {
    fn from(e: diesel::r2d2::PoolError) -> Self {
        StoreError::Unavailable(e.to_string())
    }
}

/// Stored JSON that does not parse is corruption, never a client error.
pub(crate) fn corrupt(what: &str, e: impl fmt::Display) -> StoreError {
    StoreError::Internal(format!("stored {what} does not parse: {e}"))
}
