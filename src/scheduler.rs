//! The scheduler: a thread that, every period, asks the store to emit the time-driven events
//! that have fallen due ([`poam_persistence::reminders::tick`]). Every instance may run one: an
//! event's key is recorded once per system (a unique key), so a second instance, or a tick after
//! a restart, finds it and emits nothing. With digests on, each tick also sends the day's
//! e-mail digests once their hour has come ([`crate::digest::Mailer`]).

use crate::digest::Mailer;
use chrono::{DateTime, Utc};
use poam_http::background::{pause, Background};
use poam_persistence::db::DbPool;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// Now, as the scheduler sees it: the real time, or a fixed one in tests. Dates are its UTC
/// date; FedRAMP 2026 deadlines (timestamps) are compared with it to the second.
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// The wall clock (UTC).
pub fn system_clock() -> Clock {
    Arc::new(chrono::Utc::now)
}

/// The running scheduler thread of this instance.
pub struct Scheduler(Background);

impl Scheduler {
    /// Starts the thread: a first tick at once, then one every `period`.
    pub fn start(
        pool: DbPool,
        period: Duration,
        clock: Clock,
        mailer: Option<Mailer>,
    ) -> std::io::Result<Self> {
        Background::spawn("scheduler", move |stop| {
            while !stop.load(Ordering::SeqCst) {
                let now = clock();
                run_once(&pool, now);
                if let Some(m) = &mailer {
                    m.run(&pool, now);
                }
                pause(stop, period);
            }
        })
        .map(Scheduler)
    }

    /// Stops the thread and waits for the tick in flight.
    pub fn stop(self) {
        self.0.stop();
    }
}

/// One tick at `now`; a failure is logged and the next tick tries again.
pub fn run_once(pool: &DbPool, now: DateTime<Utc>) {
    let mut conn = match pool.get() {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "scheduler: no database connection");
            return;
        }
    };
    match poam_persistence::reminders::tick(&mut conn, now) {
        Ok(0) => {}
        Ok(n) => tracing::info!(emitted = n, %now, "scheduler: time-driven events emitted"),
        Err(e) => tracing::warn!(error = %e, "scheduler: tick failed"),
    }
}
