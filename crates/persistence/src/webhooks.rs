//! Webhook subscriptions, the transactional outbox of their deliveries and the log of every
//! attempt.
//!
//! [`enqueue`] runs inside the transaction that appends history events (called by
//! `events::insert_chained`), so a delivery exists exactly when its event does. Workers
//! [`claim`] deliveries with a lease (a conditional `UPDATE` of `lease_owner`/`lease_until`:
//! of several instances on one PostgreSQL, one wins each delivery and holds it while it sends)
//! and [`record`] each attempt. Deliveries of one subscription and one system go out in chain
//! order: only the pending delivery with the lowest `event_seq` of its (subscription, system)
//! is ever claimed, so a failing one holds back those behind it until it is delivered or dead.

use crate::db::{self, DbConnection};
use crate::error::{corrupt, StoreError};
use crate::events::EventRow;
use crate::schema::{events, webhook_attempts, webhook_deliveries, webhook_subscriptions};
use chrono::NaiveDateTime;
use diesel::prelude::*;
use poam_domain::webhooks::{self, AfterAttempt, Interest};
use poam_domain::SystemScope;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

pub const ACTIVE: &str = "active";
pub const PAUSED: &str = "paused";
pub const PENDING: &str = "pending";
pub const DELIVERED: &str = "delivered";
pub const DEAD: &str = "dead";

/// A subscription as stored (its secrets included: never render them but on creation and
/// rotation).
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = webhook_subscriptions)]
pub struct SubscriptionRow {
    pub id: String,
    pub url: String,
    pub events: String,
    pub systems: Option<String>,
    pub scope: Option<String>,
    pub payload: String,
    pub secret: String,
    pub previous_secret: Option<String>,
    pub previous_secret_until: Option<NaiveDateTime>,
    pub state: String,
    pub paused_reason: Option<String>,
    pub paused_at: Option<NaiveDateTime>,
    pub failing_since: Option<NaiveDateTime>,
    pub description: Option<String>,
    pub created_by: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub version: i64,
}

fn list_of(text: &str, what: &str) -> Result<Vec<String>, StoreError> {
    serde_json::from_str(text).map_err(|e| corrupt(what, e))
}

fn text_of(list: &[String]) -> Result<String, StoreError> {
    serde_json::to_string(list).map_err(|e| StoreError::Internal(e.to_string()))
}

impl SubscriptionRow {
    pub fn event_patterns(&self) -> Result<Vec<String>, StoreError> {
        list_of(&self.events, "webhook events")
    }

    pub fn system_ids(&self) -> Result<Option<Vec<String>>, StoreError> {
        self.systems
            .as_deref()
            .map(|s| list_of(s, "webhook systems"))
            .transpose()
    }

    fn interest(&self) -> Result<Interest, StoreError> {
        Ok(Interest {
            events: self.event_patterns()?,
            systems: self.system_ids()?,
            scope: self
                .scope
                .as_deref()
                .map(|s| list_of(s, "webhook scope"))
                .transpose()?,
        })
    }

    /// The secrets that sign now: the current one, and the previous one during its overlap.
    pub fn signing_secrets(&self, now: NaiveDateTime) -> Vec<&str> {
        let mut secrets = vec![self.secret.as_str()];
        if let (Some(old), Some(until)) = (&self.previous_secret, self.previous_secret_until) {
            if until > now {
                secrets.push(old);
            }
        }
        secrets
    }

    /// Whether a token of `scope` may see and manage the subscription: every system it may
    /// deliver from must be in the scope.
    fn visible_to(&self, scope: &SystemScope) -> Result<bool, StoreError> {
        let SystemScope::Only(allowed) = scope else {
            return Ok(true);
        };
        let reach = match self.system_ids()? {
            Some(s) => Some(s),
            None => self
                .scope
                .as_deref()
                .map(|s| list_of(s, "webhook scope"))
                .transpose()?,
        };
        Ok(reach.is_some_and(|ids| {
            ids.iter()
                .all(|id| id.parse().is_ok_and(|id| allowed.contains(&id)))
        }))
    }
}

/// What a new subscription holds.
pub struct NewSubscription {
    pub url: String,
    pub events: Vec<String>,
    pub systems: Option<Vec<String>>,
    /// The systems of the subscribing token (`None`: all).
    pub scope: Option<Vec<String>>,
    pub payload: String,
    pub description: Option<String>,
    pub secret: String,
    pub actor: String,
}

pub fn create(
    conn: &mut DbConnection,
    new: NewSubscription,
) -> Result<SubscriptionRow, StoreError> {
    let id = uuid::Uuid::now_v7().to_string();
    let now = db::now();
    let systems = new.systems.as_deref().map(text_of).transpose()?;
    let scope = new.scope.as_deref().map(text_of).transpose()?;
    db::write(conn, |conn| {
        diesel::insert_into(webhook_subscriptions::table)
            .values((
                webhook_subscriptions::id.eq(&id),
                webhook_subscriptions::url.eq(&new.url),
                webhook_subscriptions::events.eq(text_of(&new.events)?),
                webhook_subscriptions::systems.eq(&systems),
                webhook_subscriptions::scope.eq(&scope),
                webhook_subscriptions::payload.eq(&new.payload),
                webhook_subscriptions::secret.eq(&new.secret),
                webhook_subscriptions::state.eq(ACTIVE),
                webhook_subscriptions::description.eq(&new.description),
                webhook_subscriptions::created_by.eq(&new.actor),
                webhook_subscriptions::created_at.eq(now),
                webhook_subscriptions::updated_at.eq(now),
                webhook_subscriptions::version.eq(1_i64),
            ))
            .execute(conn)?;
        webhook_subscriptions::table
            .find(&id)
            .select(SubscriptionRow::as_select())
            .first(conn)
            .map_err(StoreError::from)
    })
}

/// Every subscription the scope may see, oldest first.
pub fn list(
    conn: &mut DbConnection,
    scope: &SystemScope,
) -> Result<Vec<SubscriptionRow>, StoreError> {
    let rows: Vec<SubscriptionRow> = webhook_subscriptions::table
        .order(webhook_subscriptions::id.asc())
        .select(SubscriptionRow::as_select())
        .load(conn)?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        if row.visible_to(scope)? {
            out.push(row);
        }
    }
    Ok(out)
}

/// One subscription, or `NotFound` when it does not exist or the scope may not see it.
pub fn get(
    conn: &mut DbConnection,
    id: &str,
    scope: &SystemScope,
) -> Result<SubscriptionRow, StoreError> {
    let row = webhook_subscriptions::table
        .find(id)
        .select(SubscriptionRow::as_select())
        .first(conn)?;
    if row.visible_to(scope)? {
        Ok(row)
    } else {
        Err(StoreError::NotFound)
    }
}

/// A change of a subscription; `None` leaves a field as it is.
#[derive(Default)]
pub struct SubscriptionChange {
    pub url: Option<String>,
    pub events: Option<Vec<String>>,
    /// `Some(None)`: every system of the scope.
    pub systems: Option<Option<Vec<String>>>,
    pub payload: Option<String>,
    pub description: Option<Option<String>>,
    /// `true` resumes (and forgets past failures), `false` pauses.
    pub active: Option<bool>,
    /// A new secret, and until when the current one keeps signing beside it.
    pub rotate: Option<(String, NaiveDateTime)>,
}

pub fn update(
    conn: &mut DbConnection,
    id: &str,
    scope: &SystemScope,
    if_match: Option<&poam_domain::IfMatch>,
    change: SubscriptionChange,
) -> Result<SubscriptionRow, StoreError> {
    let id = id.to_owned();
    db::write(conn, |conn| {
        let current = get(conn, &id, scope)?;
        if let Some(m) = if_match {
            if !m.admits(current.version) {
                return Err(StoreError::Stale {
                    current: current.version,
                });
            }
        }
        let now = db::now();
        let mut next = current.clone();
        if let Some(url) = change.url {
            next.url = url;
        }
        if let Some(events) = &change.events {
            next.events = text_of(events)?;
        }
        if let Some(systems) = &change.systems {
            next.systems = systems.as_deref().map(text_of).transpose()?;
        }
        if let Some(payload) = change.payload {
            next.payload = payload;
        }
        if let Some(description) = change.description {
            next.description = description;
        }
        match change.active {
            Some(true) if current.state != ACTIVE => {
                next.state = ACTIVE.into();
                next.paused_reason = None;
                next.paused_at = None;
                next.failing_since = None;
            }
            Some(false) if current.state != PAUSED => {
                next.state = PAUSED.into();
                next.paused_reason = Some("paused by an administrator".into());
                next.paused_at = Some(now);
            }
            _ => {}
        }
        if let Some((secret, until)) = change.rotate {
            next.previous_secret = Some(std::mem::replace(&mut next.secret, secret));
            next.previous_secret_until = Some(until);
        }
        diesel::update(webhook_subscriptions::table.find(&id))
            .set((
                webhook_subscriptions::url.eq(&next.url),
                webhook_subscriptions::events.eq(&next.events),
                webhook_subscriptions::systems.eq(&next.systems),
                webhook_subscriptions::payload.eq(&next.payload),
                webhook_subscriptions::description.eq(&next.description),
                webhook_subscriptions::state.eq(&next.state),
                webhook_subscriptions::paused_reason.eq(&next.paused_reason),
                webhook_subscriptions::paused_at.eq(next.paused_at),
                webhook_subscriptions::failing_since.eq(next.failing_since),
                webhook_subscriptions::secret.eq(&next.secret),
                webhook_subscriptions::previous_secret.eq(&next.previous_secret),
                webhook_subscriptions::previous_secret_until.eq(next.previous_secret_until),
                webhook_subscriptions::updated_at.eq(now),
                webhook_subscriptions::version.eq(current.version + 1),
            ))
            .execute(conn)?;
        get(conn, &id, scope)
    })
}

/// Deletes a subscription with its deliveries and their log.
pub fn delete(conn: &mut DbConnection, id: &str, scope: &SystemScope) -> Result<(), StoreError> {
    let id = id.to_owned();
    db::write(conn, |conn| {
        get(conn, &id, scope)?;
        let deliveries: Vec<String> = webhook_deliveries::table
            .filter(webhook_deliveries::subscription_id.eq(&id))
            .select(webhook_deliveries::id)
            .load(conn)?;
        for chunk in deliveries.chunks(500) {
            diesel::delete(
                webhook_attempts::table.filter(webhook_attempts::delivery_id.eq_any(chunk)),
            )
            .execute(conn)?;
        }
        diesel::delete(
            webhook_deliveries::table.filter(webhook_deliveries::subscription_id.eq(&id)),
        )
        .execute(conn)?;
        diesel::delete(webhook_subscriptions::table.find(&id)).execute(conn)?;
        Ok(())
    })
}

/// A delivery: one event for one subscription.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = webhook_deliveries)]
pub struct DeliveryRow {
    pub id: String,
    pub subscription_id: String,
    pub event_id: String,
    pub system_id: String,
    pub event_seq: i64,
    pub event_type: String,
    pub state: String,
    pub attempts: i32,
    pub next_attempt_at: NaiveDateTime,
    pub lease_owner: Option<String>,
    pub lease_until: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
    pub last_attempt_at: Option<NaiveDateTime>,
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
    pub delivered_at: Option<NaiveDateTime>,
}

/// One attempt of a delivery.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = webhook_attempts)]
pub struct AttemptRow {
    pub id: String,
    pub delivery_id: String,
    pub n: i32,
    pub at: NaiveDateTime,
    pub status: Option<i32>,
    pub latency_ms: i64,
    pub error: Option<String>,
    pub response_excerpt: Option<String>,
    pub instance: String,
}

/// A delivery with its attempts, oldest first.
pub type LoggedDelivery = (DeliveryRow, Vec<AttemptRow>);

/// A page of a subscription's deliveries, newest first, each with its attempts (oldest first),
/// and whether more follow. `before`: the id of the last delivery of the previous page. Read
/// in one snapshot: a delivery and its attempts are written together, and two reads on either
/// side of that write showed an attempt of 200 on a delivery still pending.
pub fn deliveries(
    conn: &mut DbConnection,
    subscription_id: &str,
    scope: &SystemScope,
    state: Option<&str>,
    before: Option<&str>,
    limit: i64,
) -> Result<(Vec<LoggedDelivery>, bool), StoreError> {
    db::snapshot(conn, |conn| {
        deliveries_in(conn, subscription_id, scope, state, before, limit)
    })
}

fn deliveries_in(
    conn: &mut DbConnection,
    subscription_id: &str,
    scope: &SystemScope,
    state: Option<&str>,
    before: Option<&str>,
    limit: i64,
) -> Result<(Vec<LoggedDelivery>, bool), StoreError> {
    get(conn, subscription_id, scope)?;
    let mut q = webhook_deliveries::table
        .filter(webhook_deliveries::subscription_id.eq(subscription_id.to_owned()))
        .into_boxed();
    if let Some(s) = state {
        q = q.filter(webhook_deliveries::state.eq(s.to_owned()));
    }
    if let Some(b) = before {
        q = q.filter(webhook_deliveries::id.lt(b.to_owned()));
    }
    let mut rows: Vec<DeliveryRow> = q
        .order(webhook_deliveries::id.desc())
        .limit(limit.saturating_add(1))
        .select(DeliveryRow::as_select())
        .load(conn)?;
    let more = rows.len() as i64 > limit;
    rows.truncate(usize::try_from(limit).unwrap_or(0));
    let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
    let attempts: Vec<AttemptRow> = webhook_attempts::table
        .filter(webhook_attempts::delivery_id.eq_any(&ids))
        .order((webhook_attempts::delivery_id, webhook_attempts::n))
        .select(AttemptRow::as_select())
        .load(conn)?;
    let mut by_delivery: BTreeMap<String, Vec<AttemptRow>> = BTreeMap::new();
    for a in attempts {
        by_delivery
            .entry(a.delivery_id.clone())
            .or_default()
            .push(a);
    }
    Ok((
        rows.into_iter()
            .map(|r| {
                let a = by_delivery.remove(&r.id).unwrap_or_default();
                (r, a)
            })
            .collect(),
        more,
    ))
}

/// Sends a delivery again from the first attempt of the schedule (whatever its state): it
/// takes its place again at the head of its subscription's queue for its system.
pub fn redeliver(
    conn: &mut DbConnection,
    subscription_id: &str,
    delivery_id: &str,
    scope: &SystemScope,
) -> Result<DeliveryRow, StoreError> {
    let (sid, did) = (subscription_id.to_owned(), delivery_id.to_owned());
    db::write(conn, |conn| {
        get(conn, &sid, scope)?;
        let found = diesel::update(
            webhook_deliveries::table
                .filter(webhook_deliveries::id.eq(&did))
                .filter(webhook_deliveries::subscription_id.eq(&sid)),
        )
        .set((
            webhook_deliveries::state.eq(PENDING),
            webhook_deliveries::attempts.eq(0),
            webhook_deliveries::next_attempt_at.eq(db::now()),
            webhook_deliveries::delivered_at.eq(None::<NaiveDateTime>),
        ))
        .execute(conn)?;
        if found == 0 {
            return Err(StoreError::NotFound);
        }
        webhook_deliveries::table
            .find(&did)
            .select(DeliveryRow::as_select())
            .first(conn)
            .map_err(StoreError::from)
    })
}

/// An event just appended, as the outbox needs it.
pub struct Emitted<'a> {
    pub event_id: &'a str,
    pub system_id: &'a str,
    pub seq: i64,
    pub resource_kind: &'a str,
    pub action: &'a str,
}

/// Writes a pending delivery of each event for every active subscription that wants it. Runs in
/// the transaction that appends the events: both commit, or neither.
pub fn enqueue(conn: &mut DbConnection, emitted: &[Emitted<'_>]) -> Result<(), StoreError> {
    if emitted.is_empty() {
        return Ok(());
    }
    let subscriptions: Vec<SubscriptionRow> = webhook_subscriptions::table
        .filter(webhook_subscriptions::state.eq(ACTIVE))
        .select(SubscriptionRow::as_select())
        .load(conn)?;
    if subscriptions.is_empty() {
        return Ok(());
    }
    let now = db::now();
    let mut rows = Vec::new();
    for sub in &subscriptions {
        let interest = sub.interest()?;
        for e in emitted {
            let event_type = webhooks::event_type(e.resource_kind, e.action);
            if interest.wants(e.system_id, &event_type) {
                rows.push((
                    webhook_deliveries::id.eq(uuid::Uuid::now_v7().to_string()),
                    webhook_deliveries::subscription_id.eq(sub.id.clone()),
                    webhook_deliveries::event_id.eq(e.event_id.to_owned()),
                    webhook_deliveries::system_id.eq(e.system_id.to_owned()),
                    webhook_deliveries::event_seq.eq(e.seq),
                    webhook_deliveries::event_type.eq(event_type),
                    webhook_deliveries::state.eq(PENDING),
                    webhook_deliveries::attempts.eq(0),
                    webhook_deliveries::next_attempt_at.eq(now),
                    webhook_deliveries::created_at.eq(now),
                ));
            }
        }
    }
    if rows.is_empty() {
        return Ok(());
    }
    crate::db::on_inner!(conn, |c| diesel::insert_into(webhook_deliveries::table)
        .values(&rows)
        .execute(c))?;
    Ok(())
}

/// A delivery claimed by a worker, with what sending it needs.
#[derive(Debug, Clone)]
pub struct Claim {
    pub delivery: DeliveryRow,
    pub subscription: SubscriptionRow,
    pub event: EventRow,
}

/// Claims up to `limit` deliveries that are due, each the head of its (subscription, system)
/// queue, for `lease`: no other worker takes them meanwhile.
pub fn claim(
    conn: &mut DbConnection,
    instance: &str,
    now: NaiveDateTime,
    lease: Duration,
    limit: usize,
) -> Result<Vec<Claim>, StoreError> {
    use diesel::dsl::min;
    let active: BTreeMap<String, SubscriptionRow> = webhook_subscriptions::table
        .filter(webhook_subscriptions::state.eq(ACTIVE))
        .select(SubscriptionRow::as_select())
        .load::<SubscriptionRow>(conn)?
        .into_iter()
        .map(|s| (s.id.clone(), s))
        .collect();
    if active.is_empty() {
        return Ok(Vec::new());
    }
    let heads: Vec<(String, String, Option<i64>)> = webhook_deliveries::table
        .filter(webhook_deliveries::state.eq(PENDING))
        .group_by((
            webhook_deliveries::subscription_id,
            webhook_deliveries::system_id,
        ))
        .select((
            webhook_deliveries::subscription_id,
            webhook_deliveries::system_id,
            min(webhook_deliveries::event_seq),
        ))
        .load(conn)?;
    let heads: BTreeSet<(String, String, i64)> = heads
        .into_iter()
        .filter(|(sub, _, _)| active.contains_key(sub))
        .filter_map(|(sub, sys, seq)| seq.map(|s| (sub, sys, s)))
        .collect();
    if heads.is_empty() {
        return Ok(Vec::new());
    }
    let subs: BTreeSet<&str> = heads.iter().map(|h| h.0.as_str()).collect();
    let seqs: BTreeSet<i64> = heads.iter().map(|h| h.2).collect();
    let mut due: Vec<DeliveryRow> = webhook_deliveries::table
        .filter(webhook_deliveries::state.eq(PENDING))
        .filter(webhook_deliveries::next_attempt_at.le(now))
        .filter(
            webhook_deliveries::lease_until
                .is_null()
                .or(webhook_deliveries::lease_until.lt(now)),
        )
        .filter(webhook_deliveries::subscription_id.eq_any(&subs))
        .filter(webhook_deliveries::event_seq.eq_any(&seqs))
        .select(DeliveryRow::as_select())
        .load::<DeliveryRow>(conn)?
        .into_iter()
        .filter(|d| heads.contains(&(d.subscription_id.clone(), d.system_id.clone(), d.event_seq)))
        .collect();
    due.sort_by(|a, b| {
        a.next_attempt_at
            .cmp(&b.next_attempt_at)
            .then(a.id.cmp(&b.id))
    });
    let until = now + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::minutes(5));
    let mut claimed = Vec::new();
    for mut d in due {
        if claimed.len() >= limit {
            break;
        }
        // Won by one worker only: the row is re-checked under its lock.
        let won = diesel::update(
            webhook_deliveries::table
                .filter(webhook_deliveries::id.eq(&d.id))
                .filter(webhook_deliveries::state.eq(PENDING))
                .filter(webhook_deliveries::attempts.eq(d.attempts))
                .filter(
                    webhook_deliveries::lease_until
                        .is_null()
                        .or(webhook_deliveries::lease_until.lt(now)),
                ),
        )
        .set((
            webhook_deliveries::lease_owner.eq(instance),
            webhook_deliveries::lease_until.eq(until),
        ))
        .execute(conn)?;
        if won == 1 {
            d.lease_owner = Some(instance.to_owned());
            d.lease_until = Some(until);
            claimed.push(d);
        }
    }
    if claimed.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<&str> = claimed.iter().map(|d| d.event_id.as_str()).collect();
    let mut found: BTreeMap<String, EventRow> = events::table
        .filter(events::id.eq_any(&ids))
        .select(EventRow::as_select())
        .load::<EventRow>(conn)?
        .into_iter()
        .map(|e| (e.id.clone(), e))
        .collect();
    let mut out = Vec::with_capacity(claimed.len());
    for d in claimed {
        let (Some(event), Some(sub)) = (found.remove(&d.event_id), active.get(&d.subscription_id))
        else {
            return Err(StoreError::Internal(format!(
                "delivery {} names an event or subscription that is gone",
                d.id
            )));
        };
        out.push(Claim {
            delivery: d,
            subscription: sub.clone(),
            event,
        });
    }
    Ok(out)
}

/// What one attempt gave.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub at: NaiveDateTime,
    /// The response status, when a response came.
    pub status: Option<u16>,
    pub latency_ms: i64,
    /// Why no acceptable response came (refused address, timeout, redirect, …).
    pub error: Option<String>,
    /// The start of the response body.
    pub excerpt: Option<String>,
}

/// Records an attempt of a claimed delivery and what follows it; moves the subscription's
/// failure clock, pausing it when it has failed for `pause_after` (or at once on `410 Gone`).
/// Returns `false` when the lease had been lost (another worker took the delivery over): then
/// nothing is written.
pub fn record(
    conn: &mut DbConnection,
    claim: &Claim,
    instance: &str,
    attempt: &Attempt,
    next: AfterAttempt,
    pause_after: Duration,
) -> Result<bool, StoreError> {
    db::write(conn, |conn| {
        let d = &claim.delivery;
        let (state, next_at, delivered_at) = match next {
            AfterAttempt::Delivered => (DELIVERED, d.next_attempt_at, Some(attempt.at)),
            AfterAttempt::RetryAt(at) => (PENDING, at, None),
            AfterAttempt::Dead => (DEAD, d.next_attempt_at, None),
        };
        let held = diesel::update(
            webhook_deliveries::table
                .filter(webhook_deliveries::id.eq(&d.id))
                .filter(webhook_deliveries::lease_owner.eq(instance))
                .filter(webhook_deliveries::state.eq(PENDING)),
        )
        .set((
            webhook_deliveries::state.eq(state),
            webhook_deliveries::attempts.eq(d.attempts + 1),
            webhook_deliveries::next_attempt_at.eq(next_at),
            webhook_deliveries::lease_owner.eq(None::<String>),
            webhook_deliveries::lease_until.eq(None::<NaiveDateTime>),
            webhook_deliveries::last_attempt_at.eq(attempt.at),
            webhook_deliveries::last_status.eq(attempt.status.map(i32::from)),
            webhook_deliveries::last_error.eq(&attempt.error),
            webhook_deliveries::delivered_at.eq(delivered_at),
        ))
        .execute(conn)?;
        if held == 0 {
            return Ok(false);
        }
        let n: i64 = webhook_attempts::table
            .filter(webhook_attempts::delivery_id.eq(&d.id))
            .count()
            .get_result(conn)?;
        diesel::insert_into(webhook_attempts::table)
            .values((
                webhook_attempts::id.eq(uuid::Uuid::now_v7().to_string()),
                webhook_attempts::delivery_id.eq(&d.id),
                webhook_attempts::n.eq(i32::try_from(n + 1).unwrap_or(i32::MAX)),
                webhook_attempts::at.eq(attempt.at),
                webhook_attempts::status.eq(attempt.status.map(i32::from)),
                webhook_attempts::latency_ms.eq(attempt.latency_ms),
                webhook_attempts::error.eq(&attempt.error),
                webhook_attempts::response_excerpt.eq(&attempt.excerpt),
                webhook_attempts::instance.eq(instance),
            ))
            .execute(conn)?;
        let sub = webhook_subscriptions::table
            .find(&d.subscription_id)
            .select((
                webhook_subscriptions::state,
                webhook_subscriptions::failing_since,
            ))
            .first::<(String, Option<NaiveDateTime>)>(conn)
            .optional()?;
        let Some((sub_state, failing_since)) = sub else {
            return Ok(true);
        };
        let target = webhook_subscriptions::table.find(&d.subscription_id);
        if next == AfterAttempt::Delivered {
            if failing_since.is_some() {
                diesel::update(target)
                    .set(webhook_subscriptions::failing_since.eq(None::<NaiveDateTime>))
                    .execute(conn)?;
            }
            return Ok(true);
        }
        let since = failing_since.unwrap_or(attempt.at);
        let pause = if attempt.status == Some(410) {
            Some("the receiver answered 410 Gone".to_owned())
        } else if webhooks::should_pause(since, attempt.at, pause_after) {
            Some(format!("deliveries failed since {since} (UTC)"))
        } else {
            None
        };
        match pause {
            Some(reason) if sub_state == ACTIVE => {
                tracing::warn!(subscription = %d.subscription_id, %reason, "webhook subscription paused");
                diesel::update(target)
                    .set((
                        webhook_subscriptions::state.eq(PAUSED),
                        webhook_subscriptions::paused_reason.eq(reason),
                        webhook_subscriptions::paused_at.eq(attempt.at),
                        webhook_subscriptions::failing_since.eq(since),
                    ))
                    .execute(conn)?;
            }
            _ if failing_since.is_none() => {
                diesel::update(target)
                    .set(webhook_subscriptions::failing_since.eq(since))
                    .execute(conn)?;
            }
            _ => {}
        }
        Ok(true)
    })
}
