//! Safe retries: the first complete response to a caller's `Idempotency-Key`, replayed to its
//! retries. A key is claimed before the request runs, so two concurrent requests with one key
//! never both execute.

use crate::db::{self, DbConnection};
use crate::error::StoreError;
use crate::schema::idempotency_keys as keys;
use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};

/// How long a response is kept for replay.
pub const RETENTION_HOURS: i64 = 24;
/// A claim older than this is taken over: its request died without finishing.
pub const STALE_CLAIM_SECONDS: i64 = 300;

/// A finished first response.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub path: String,
    pub body_hash: Option<String>,
    pub status: u16,
    /// JSON object of header name to value.
    pub headers: String,
    pub body: Vec<u8>,
}

/// What to do with a request carrying a key.
#[derive(Debug, Clone)]
pub enum Claim {
    /// First time: the caller runs the request, then [`finish`] or [`release`].
    Fresh,
    /// Another request with this key is running.
    InFlight,
    /// Already answered: replay it (if the request is the same).
    Done(Recorded),
}

/// Claims `key` for `actor`, or reports its state. Expired records are swept first.
pub fn claim(
    conn: &mut DbConnection,
    actor: &str,
    key: &str,
    path: &str,
) -> Result<Claim, StoreError> {
    let now = db::now();
    let attempt = db::write(conn, |conn| {
        diesel::delete(
            keys::table.filter(keys::created_at.lt(now - Duration::hours(RETENTION_HOURS))),
        )
        .execute(conn)?;
        type Row = (
            String,
            Option<String>,
            i32,
            String,
            Option<Vec<u8>>,
            NaiveDateTime,
        );
        let existing: Option<Row> = keys::table
            .find((actor, key))
            .select((
                keys::path,
                keys::body_hash,
                keys::status,
                keys::headers,
                keys::body,
                keys::created_at,
            ))
            .first(conn)
            .optional()?;
        match existing {
            Some((path, body_hash, status, headers, body, _)) if status > 0 => {
                Ok(Claim::Done(Recorded {
                    path,
                    body_hash,
                    status: u16::try_from(status).unwrap_or(500),
                    headers,
                    body: body.unwrap_or_default(),
                }))
            }
            Some((_, _, _, _, _, created))
                if created > now - Duration::seconds(STALE_CLAIM_SECONDS) =>
            {
                Ok(Claim::InFlight)
            }
            Some(_) => {
                diesel::update(keys::table.find((actor, key)))
                    .set((keys::path.eq(path), keys::created_at.eq(now)))
                    .execute(conn)?;
                Ok(Claim::Fresh)
            }
            None => {
                diesel::insert_into(keys::table)
                    .values((
                        keys::actor.eq(actor),
                        keys::idem_key.eq(key),
                        keys::path.eq(path),
                        keys::status.eq(0),
                        keys::headers.eq("{}"),
                        keys::created_at.eq(now),
                    ))
                    .execute(conn)?;
                Ok(Claim::Fresh)
            }
        }
    });
    match attempt {
        // A concurrent request claimed it between our read and our insert.
        Err(ClaimError::Db(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _))) => {
            Ok(Claim::InFlight)
        }
        Err(ClaimError::Db(e)) => Err(e.into()),
        Err(ClaimError::Store(e)) => Err(e),
        Ok(c) => Ok(c),
    }
}

enum ClaimError {
    Db(DieselError),
    Store(StoreError),
}

impl From<DieselError> for ClaimError {
    fn from(e: DieselError) -> Self {
        ClaimError::Db(e)
    }
}

impl From<StoreError> for ClaimError {
    fn from(e: StoreError) -> Self {
        ClaimError::Store(e)
    }
}

/// Records the first response to a claimed key.
pub fn finish(
    conn: &mut DbConnection,
    actor: &str,
    key: &str,
    body_hash: &str,
    status: u16,
    headers: &str,
    body: &[u8],
) -> Result<(), StoreError> {
    diesel::update(keys::table.find((actor, key)))
        .set((
            keys::body_hash.eq(body_hash),
            keys::status.eq(i32::from(status)),
            keys::headers.eq(headers),
            keys::body.eq(body),
        ))
        .execute(conn)?;
    Ok(())
}

/// Gives a claimed key back: the request failed and created nothing, so a retry runs again.
pub fn release(conn: &mut DbConnection, actor: &str, key: &str) -> Result<(), StoreError> {
    diesel::delete(keys::table.find((actor, key)).filter(keys::status.eq(0))).execute(conn)?;
    Ok(())
}
