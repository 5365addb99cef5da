//! Safe retries: the first complete response to a caller's `Idempotency-Key`, replayed to its
//! retries. A key is claimed before the request runs, so two concurrent requests with one key
//! never both execute.

use crate::db::{self, DbConnection};
use crate::error::StoreError;
use crate::schema::idempotency_keys as keys;
use crate::schema::{evidence, items, milestones, reviews};
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
    /// What the first request was authorized for (JSON, written by the HTTP layer); `None`
    /// for a record made before this was kept.
    pub grants: Option<String>,
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
            Option<String>,
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
                keys::grants,
            ))
            .first(conn)
            .optional()?;
        match existing {
            Some((path, body_hash, status, headers, body, _, grants)) if status > 0 => {
                Ok(Claim::Done(Recorded {
                    path,
                    body_hash,
                    status: u16::try_from(status).unwrap_or(500),
                    headers,
                    body: body.unwrap_or_default(),
                    grants,
                }))
            }
            Some((_, _, _, _, _, created, _))
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

/// The first response to a claimed key, to record with [`finish`].
#[derive(Debug, Clone, Copy)]
pub struct Response<'a> {
    pub body_hash: &'a str,
    pub status: u16,
    /// JSON object of header name to value.
    pub headers: &'a str,
    pub body: &'a [u8],
    /// What the request was authorized for (JSON), checked again by every replay.
    pub grants: &'a str,
}

/// Records the first response to a claimed key.
pub fn finish(
    conn: &mut DbConnection,
    actor: &str,
    key: &str,
    response: Response<'_>,
) -> Result<(), StoreError> {
    diesel::update(keys::table.find((actor, key)))
        .set((
            keys::body_hash.eq(response.body_hash),
            keys::status.eq(i32::from(response.status)),
            keys::headers.eq(response.headers),
            keys::body.eq(response.body),
            keys::grants.eq(response.grants),
        ))
        .execute(conn)?;
    Ok(())
}

/// A record a request path names, whose system a replay must be allowed to reach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    System(String),
    Item(String),
    Milestone(String),
    Evidence(String),
    Review(String),
}

/// The system `owner` belongs to, archived or not; `None` when there is no such record.
pub fn system_of(conn: &mut DbConnection, owner: &Owner) -> Result<Option<String>, StoreError> {
    let found = match owner {
        Owner::System(id) => Some(id.clone()),
        Owner::Item(id) => items::table
            .find(id)
            .select(items::system_id)
            .first(conn)
            .optional()?,
        Owner::Milestone(id) => milestones::table
            .find(id)
            .select(milestones::system_id)
            .first(conn)
            .optional()?,
        Owner::Evidence(id) => evidence::table
            .find(id)
            .select(evidence::system_id)
            .first(conn)
            .optional()?,
        Owner::Review(id) => reviews::table
            .find(id)
            .select(reviews::system_id)
            .first(conn)
            .optional()?,
    };
    Ok(found)
}

/// Gives a claimed key back: the request failed and created nothing, so a retry runs again.
pub fn release(conn: &mut DbConnection, actor: &str, key: &str) -> Result<(), StoreError> {
    diesel::delete(keys::table.find((actor, key)).filter(keys::status.eq(0))).execute(conn)?;
    Ok(())
}
