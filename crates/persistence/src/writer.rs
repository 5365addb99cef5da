//! Group commit. SQLite has one writer at a time, so this process's single-record
//! writes (an item created, patched, moved through its lifecycle) are run back to back by one
//! thread on one connection: whatever has queued while a batch ran becomes the next batch, run
//! inside one `BEGIN IMMEDIATE` transaction, each write in its own savepoint, committed once.
//!
//! What a caller sees does not change: its write is atomic (a failed write rolls back to its
//! savepoint and leaves the batch's other writes alone), and its answer arrives only after the
//! batch's `COMMIT` returned, so an acknowledged write is a committed one. What changes is the
//! cost: pages every write touches (the system's row, the right edges of the indexes, the
//! history's tail) are written to the WAL once per batch instead of once per write, the writer's
//! page cache stays valid because no other connection of this process writes meanwhile, and no
//! lock is handed between threads per write.
//!
//! Item creations ([`Writer::create`]) go further: the creations of one system that follow each
//! other in a batch are written together by [`items::create_many`], which locks the system's
//! row once, checks every external id in one query, and inserts the items, their control rows
//! and their chained history events with one multi-row statement per table. Each creation still
//! gets the answer it would have had alone (a taken external id, a refusal by the regime's
//! rules); should one of the shared statements fail, the group's savepoint is rolled back and
//! its creations are run again one by one, each in its own savepoint.
//!
//! On PostgreSQL (several instances share the database, and row locks order writers) only item
//! creations come here, and a batch holds creations in one system: its first statement locks
//! that system's row, and nothing else it locks (new rows) can be held by a transaction waiting
//! for that row, so batches of two instances never wait on each other in a cycle.
//!
//! A failure of the batch itself (the lock held by another process past the busy timeout, the
//! file gone or read-only, `COMMIT` refused) fails every write of the batch with that error
//! (503). A panic inside a write rolls back the whole batch and fails each of its writes with a
//! bare internal error; the connection is discarded and the thread carries on.

use crate::db::{self, DbConnection, DbPool, PooledDb};
use crate::error::StoreError;
use crate::events::Action;
use crate::items::{self, NewItem};
use diesel::connection::{AnsiTransactionManager, TransactionManager};
use diesel::Connection;
use poam_domain::Item;
use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::{self, Receiver, SyncSender, TryRecvError, TrySendError};

/// The most writes one transaction holds.
const MAX_BATCH: usize = 64;
/// The most writes waiting; beyond it a write is refused with 503 at once.
const QUEUE: usize = 4096;

/// What a write's caller is told once its batch is settled: `None` when the batch committed,
/// or the batch's own error.
type Settle = Box<dyn FnOnce(Option<&StoreError>) + Send>;

/// A queued write.
enum Work {
    /// Any write, run in its own savepoint.
    Write(Box<dyn Job>),
    /// An item creation, run together with the creations of its system beside it in the batch.
    Create(Box<Creation>),
}

impl Work {
    /// The system the write belongs to, when it names one (creations do).
    fn system(&self) -> Option<&str> {
        match self {
            Work::Write(_) => None,
            Work::Create(c) => Some(&c.system),
        }
    }

    /// The batch failed before this write ran.
    fn fail(self, error: StoreError) {
        match self {
            Work::Write(job) => job.fail(error),
            Work::Create(c) => (c.done)(Err(error)),
        }
    }
}

/// A write of any kind, type-erased.
trait Job: Send {
    /// Runs the write in its savepoint; the answer waits for the batch.
    fn run(self: Box<Self>, conn: &mut DbConnection) -> Settle;
    /// The batch failed before this write ran.
    fn fail(self: Box<Self>, error: StoreError);
}

/// An item creation queued with [`Writer::create`].
struct Creation {
    system: String,
    item: NewItem,
    done: Box<dyn FnOnce(Result<Item, StoreError>) + Send>,
    span: tracing::Span,
}

/// Runs creations of one system together ([`items::create_many`]), in a savepoint. Should a
/// statement of theirs fail, the savepoint is rolled back and each is run alone, in its own, so
/// that only the one at fault fails.
fn run_creations(conn: &mut DbConnection, group: Vec<Creation>) -> Vec<Settle> {
    let Some(system) = group.first().map(|c| c.system.clone()) else {
        return Vec::new();
    };
    let together = {
        let items: Vec<&NewItem> = group.iter().map(|c| &c.item).collect();
        conn.transaction(|conn| items::create_many(conn, &system, &items, Action::Created))
    };
    let results = match together {
        Ok(results) => results,
        Err(e) => {
            tracing::warn!(cause = %e, creations = group.len(), "creations written together failed: each is written alone");
            group
                .iter()
                .map(|c| {
                    let _entered = c.span.enter();
                    conn.transaction(|conn| {
                        items::create_in(
                            conn,
                            &system,
                            &c.item.fields,
                            &c.item.actor,
                            Action::Created,
                        )
                    })
                })
                .collect()
        }
    };
    group
        .into_iter()
        .zip(results)
        .map(|(c, result)| settle_after(result, c.done))
        .collect()
}

/// What tells a write's caller its answer once the batch is settled: its own result if the
/// batch committed, else the batch's error.
fn settle_after<T: Send + 'static>(
    result: Result<T, StoreError>,
    done: impl FnOnce(Result<T, StoreError>) + Send + 'static,
) -> Settle {
    Box::new(move |batch: Option<&StoreError>| {
        done(match (result, batch) {
            (Ok(_), Some(e)) => Err(echo(e)),
            (result, _) => result,
        })
    })
}

struct Pending<F, D> {
    write: F,
    done: D,
    span: tracing::Span,
}

impl<T, F, D> Job for Pending<F, D>
where
    T: Send + 'static,
    F: FnOnce(&mut DbConnection) -> Result<T, StoreError> + Send + 'static,
    D: FnOnce(Result<T, StoreError>) + Send + 'static,
{
    fn run(self: Box<Self>, conn: &mut DbConnection) -> Settle {
        let Pending { write, done, span } = *self;
        let result = {
            let _entered = span.enter();
            // Inside the batch's transaction this is a savepoint.
            conn.transaction(write)
        };
        settle_after(result, done)
    }

    fn fail(self: Box<Self>, error: StoreError) {
        (self.done)(Err(error))
    }
}

/// The batch's error, once for each write it failed.
fn echo(e: &StoreError) -> StoreError {
    match e {
        StoreError::Unavailable(m) => StoreError::Unavailable(m.clone()),
        other => StoreError::Internal(other.to_string()),
    }
}

/// The queue in front of the writer thread; clones share it. The thread ends when the last
/// clone is dropped.
#[derive(Clone)]
pub struct Writer {
    queue: SyncSender<Work>,
    per_system: bool,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Writer")
    }
}

impl Writer {
    /// Starts the writer thread; it borrows a connection from `pool` while it has work.
    /// `per_system`: a batch holds writes to one system only (PostgreSQL); otherwise any
    /// writes share a batch (SQLite, where the file has one writer anyway).
    pub fn start(pool: DbPool, per_system: bool) -> std::io::Result<Writer> {
        let (queue, rx) = mpsc::sync_channel::<Work>(QUEUE);
        std::thread::Builder::new()
            .name("poam-writer".into())
            .spawn(move || serve(&pool, &rx, per_system))?;
        Ok(Writer { queue, per_system })
    }

    /// Whether batches are formed per system (so only item creations come here).
    pub fn per_system(&self) -> bool {
        self.per_system
    }

    /// Queues `write`; `done` receives its result once the batch holding it is settled. `write`
    /// must not open a transaction of its own other than through [`db::write`] (which joins the
    /// batch's) and must be short: the writes queued behind it wait for it. On a per-system
    /// writer it runs in a batch of its own.
    pub fn submit<T, F, D>(&self, write: F, done: D) -> Result<(), StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConnection) -> Result<T, StoreError> + Send + 'static,
        D: FnOnce(Result<T, StoreError>) + Send + 'static,
    {
        self.send(Work::Write(Box::new(Pending {
            write,
            done,
            span: tracing::Span::current(),
        })))
    }

    /// Queues the creation of `item` in `system` (the caller checked the scope); `done` receives
    /// the created item once the batch holding it is settled. Creations of one system that share
    /// a batch are written together: one statement per table for all of them.
    pub fn create<D>(&self, system: String, item: NewItem, done: D) -> Result<(), StoreError>
    where
        D: FnOnce(Result<Item, StoreError>) + Send + 'static,
    {
        self.send(Work::Create(Box::new(Creation {
            system,
            item,
            done: Box::new(done),
            span: tracing::Span::current(),
        })))
    }

    fn send(&self, work: Work) -> Result<(), StoreError> {
        self.queue.try_send(work).map_err(|e| match e {
            TrySendError::Full(_) => StoreError::Unavailable("the write queue is full".into()),
            TrySendError::Disconnected(_) => {
                StoreError::Unavailable("the writer has stopped".into())
            }
        })
    }
}

fn serve(pool: &DbPool, rx: &Receiver<Work>, per_system: bool) {
    // The connection is kept while writes keep coming and given back to the pool when idle.
    let mut held: Option<PooledDb> = None;
    // Writes taken off the queue that belong to another system's batch, in arrival order.
    let mut deferred: VecDeque<Work> = VecDeque::new();
    loop {
        let first = match deferred.pop_front() {
            Some(job) => job,
            None => match rx.try_recv() {
                Ok(job) => job,
                Err(TryRecvError::Disconnected) => return,
                Err(TryRecvError::Empty) => {
                    held = None;
                    match rx.recv() {
                        Ok(job) => job,
                        Err(_) => return,
                    }
                }
            },
        };
        let key = first.system().map(str::to_owned);
        let joins = |work: &Work| !per_system || (key.is_some() && work.system() == key.as_deref());
        let mut batch = vec![first];
        let mut i = 0;
        while i < deferred.len() && batch.len() < MAX_BATCH {
            if deferred.get(i).is_some_and(joins) {
                batch.extend(deferred.remove(i));
            } else {
                i += 1;
            }
        }
        while batch.len() < MAX_BATCH && deferred.len() < QUEUE {
            match rx.try_recv() {
                Ok(work) if joins(&work) => batch.push(work),
                Ok(work) => deferred.push_back(work),
                Err(_) => break,
            }
        }
        let mut conn = match held.take().map(Ok).unwrap_or_else(|| db::checkout(pool)) {
            Ok(conn) => conn,
            Err(e) => {
                for work in batch {
                    work.fail(echo(&e));
                }
                continue;
            }
        };
        if run_batch(&mut conn, batch) {
            held = Some(conn);
        } else {
            conn.failed();
        }
    }
}

/// Runs one batch; false when the connection must not be used again.
fn run_batch(conn: &mut DbConnection, batch: Vec<Work>) -> bool {
    let _turn = db::writer_turn(conn);
    if let Err(e) = db::begin_write(conn) {
        let e = StoreError::from(e);
        tracing::warn!(cause = %e, writes = batch.len(), "a write batch could not begin");
        for work in batch {
            work.fail(echo(&e));
        }
        return false;
    }
    let mut settles = Vec::with_capacity(batch.len());
    let mut queued: VecDeque<Work> = batch.into();
    while let Some(work) = queued.pop_front() {
        let unit = match work {
            // A creation takes the creations of the same system that follow it.
            Work::Create(first) => {
                let mut group = vec![*first];
                while let Some(Work::Create(c)) = queued.front() {
                    if c.system != group[0].system {
                        break;
                    }
                    if let Some(Work::Create(c)) = queued.pop_front() {
                        group.push(*c);
                    }
                }
                catch_unwind(AssertUnwindSafe(|| run_creations(conn, group)))
            }
            Work::Write(job) => catch_unwind(AssertUnwindSafe(|| vec![job.run(conn)])),
        };
        match unit {
            Ok(done) => settles.extend(done),
            Err(_) => {
                tracing::error!("a write panicked: its batch is rolled back");
                let e = StoreError::Internal("a write of the batch panicked".into());
                for settle in settles {
                    settle(Some(&e));
                }
                for work in queued {
                    work.fail(echo(&e));
                }
                // Still inside the transaction: the pool discards the connection.
                return false;
            }
        }
    }
    let committed = match conn {
        DbConnection::Pg(c) => AnsiTransactionManager::commit_transaction(c),
        DbConnection::Sqlite(c) => AnsiTransactionManager::commit_transaction(c),
    };
    match committed {
        Ok(()) => {
            for settle in settles {
                settle(None);
            }
            true
        }
        Err(e) => {
            // diesel has rolled back (or marked the connection broken); it is not reused.
            let e = StoreError::from(e);
            tracing::warn!(cause = %e, writes = settles.len(), "a write batch did not commit");
            for settle in settles {
                settle(Some(&e));
            }
            false
        }
    }
}
