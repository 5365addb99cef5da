//! Items as `GET /v1/items/{id}` last rendered them, kept with the row's [`Stamp`] they were
//! rendered from, the item's system, and the count of noticed changes
//! (`poam_persistence::db::changes_seen`) read before that stamp was read. A read of an item
//! with a kept rendering asks the database first whether anything was committed since that
//! count (one statement on the connection, no page of the items read): if nothing was, the
//! caller's scope is checked against the kept system and the rendering answers. Otherwise the
//! row's stamp is read, its system checked against the caller's scope, and the rendering
//! answers when it is of that very stamp (kept again under the new count); otherwise (and at
//! once for an item with none kept) the item is read whole and rendered, and the rendering
//! kept. Never an answer from memory alone: every request asks the database, and a rendering
//! answers only for the version, the instant of that version, the day and the escalation
//! grace it was rendered for (`overdue`, `escalated` are the day's). An item with a FedRAMP
//! 2026 schedule is not kept: its `vdr` status is read to the hour.
//!
//! Bounded by the bytes of the renderings (`POAM_ITEM_CACHE_MIB`), evicted by `quick_cache`'s
//! S3-FIFO policy; shared by the workers (sharded locks, no global one).

use crate::telemetry::ShardedCounter;
use actix_web::web::Bytes;
use poam_domain::{ItemId, SystemId};
use poam_persistence::items::{Kept, Stamp};

/// What one kept rendering costs beside its bytes (the key, the stamp, the system, the count,
/// the bytes' handle and its shared count, the cache's slot and hash entry), counted against
/// the budget. The bytes are kept at their length (the handler shrinks its buffer before
/// keeping it).
const ENTRY_OVERHEAD: u64 = 184;

#[derive(Clone)]
struct Entry {
    stamp: Stamp,
    system: SystemId,
    seen: u64,
    body: Bytes,
}

#[derive(Clone)]
struct Weight;

impl quick_cache::Weighter<u128, Entry> for Weight {
    fn weight(&self, _: &u128, e: &Entry) -> u64 {
        e.body.len() as u64 + ENTRY_OVERHEAD
    }
}

/// The renderings, with what they answered and what they did not.
pub struct ItemCache {
    kept: Option<quick_cache::sync::Cache<u128, Entry, Weight>>,
    budget: u64,
    /// Counted per worker thread and summed when shown.
    hits: ShardedCounter,
    misses: ShardedCounter,
    /// Hits whose rendering was checked against the row's stamp (something was committed since
    /// it was last checked).
    rechecks: ShardedCounter,
}

impl ItemCache {
    /// At most `budget` bytes of renderings; `0` keeps none.
    pub fn new(budget: u64) -> Self {
        // Renderings run to about 2 KiB; the estimate only sizes the cache's tables.
        let estimated = usize::try_from(budget / 2048).unwrap_or(usize::MAX).max(16);
        ItemCache {
            kept: (budget > 0)
                .then(|| quick_cache::sync::Cache::with_weighter(estimated, budget, Weight)),
            budget,
            hits: ShardedCounter::default(),
            misses: ShardedCounter::default(),
            rechecks: ShardedCounter::default(),
        }
    }

    /// Whether renderings are kept at all (a read without the cache skips the stamp's query).
    pub(crate) fn enabled(&self) -> bool {
        self.kept.is_some()
    }

    /// The rendering kept for `id`, with what it is of: an answer only if nothing was committed
    /// since its count, or the row still has its stamp (the store asks, `items::get_or_cached`).
    pub(crate) fn candidate(&self, id: ItemId) -> Option<Kept<Bytes>> {
        self.kept
            .as_ref()?
            .get(&id.as_uuid().as_u128())
            .map(|e| Kept {
                stamp: e.stamp,
                system: e.system,
                seen: e.seen,
                answer: e.body,
            })
    }

    /// Counts a read the cache could have answered: a kept rendering answered it, or not.
    pub(crate) fn count(&self, hit: bool) {
        if hit {
            self.hits.inc();
        } else {
            self.misses.inc();
        }
    }

    /// Counts a hit whose rendering was checked against the row's stamp first.
    pub(crate) fn count_recheck(&self) {
        self.rechecks.inc();
    }

    /// Keeps `body`, the rendering of `id` in `system` at `stamp`, read under the count `seen`
    /// (in place of any older one).
    pub(crate) fn put(&self, id: ItemId, system: SystemId, stamp: Stamp, seen: u64, body: Bytes) {
        if let Some(kept) = &self.kept {
            let entry = Entry {
                stamp,
                system,
                seen,
                body,
            };
            kept.insert(id.as_uuid().as_u128(), entry);
        }
    }

    /// The Prometheus series (text format), for `/metrics`.
    pub fn metrics_text(&self) -> String {
        let (entries, bytes) = self.kept.as_ref().map_or((0, 0), |k| (k.len(), k.weight()));
        format!(
            "# HELP poam_item_cache_hits Item reads answered by the rendering of the item's current version.\n\
             # TYPE poam_item_cache_hits counter\n\
             poam_item_cache_hits_total {}\n\
             # HELP poam_item_cache_misses Item reads that found no rendering of the item's current version.\n\
             # TYPE poam_item_cache_misses counter\n\
             poam_item_cache_misses_total {}\n\
             # HELP poam_item_cache_rechecks Item reads answered by a kept rendering after the row's stamp was read (something was committed since the rendering was last checked; otherwise the row is not read).\n\
             # TYPE poam_item_cache_rechecks counter\n\
             poam_item_cache_rechecks_total {}\n\
             # HELP poam_item_cache_entries Item renderings kept.\n\
             # TYPE poam_item_cache_entries gauge\n\
             poam_item_cache_entries {entries}\n\
             # HELP poam_item_cache_bytes Bytes the kept renderings count against the budget.\n\
             # TYPE poam_item_cache_bytes gauge\n\
             poam_item_cache_bytes {bytes}\n\
             # HELP poam_item_cache_budget_bytes Bytes the renderings may take (POAM_ITEM_CACHE_MIB).\n\
             # TYPE poam_item_cache_budget_bytes gauge\n\
             poam_item_cache_budget_bytes {}\n",
            self.hits.get(),
            self.misses.get(),
            self.rechecks.get(),
            self.budget,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn stamp(version: i64, day: u32) -> Stamp {
        let date = NaiveDate::from_ymd_opt(2026, 12, day).unwrap_or_default();
        Stamp {
            version,
            updated_at: date.and_hms_opt(9, 0, 0).unwrap_or_default(),
            today: date,
            grace_days: 14,
        }
    }

    /// A rendering is offered with the stamp it was made for, and a stamp that differs in
    /// anything (version, day, instant, grace) is another stamp: the store answers the
    /// rendering only for an equal one (`items::get_or_cached`).
    #[test]
    fn a_rendering_is_offered_with_its_own_stamp() {
        let cache = ItemCache::new(1 << 20);
        let (id, system) = (ItemId::new(), SystemId::new());
        cache.put(
            id,
            system,
            stamp(3, 1),
            7,
            Bytes::from_static(b"{\"version\":3}"),
        );
        let found = cache.candidate(id).unwrap_or_else(|| panic!("kept"));
        let kept = found.stamp;
        assert_eq!(kept, stamp(3, 1));
        assert_eq!((found.system, found.seen), (system, 7));
        assert_eq!(&found.answer[..], &b"{\"version\":3}"[..]);
        assert!(cache.candidate(ItemId::new()).is_none());
        let mut moved = stamp(3, 1);
        moved.updated_at += chrono::Duration::microseconds(1);
        let mut graced = stamp(3, 1);
        graced.grace_days = 0;
        for other in [stamp(4, 1), stamp(3, 2), moved, graced] {
            assert_ne!(kept, other);
        }
        cache.count(true);
        for _ in 0..5 {
            cache.count(false);
        }
        let text = cache.metrics_text();
        assert!(text.contains("poam_item_cache_hits_total 1\n"), "{text}");
        assert!(text.contains("poam_item_cache_misses_total 5\n"), "{text}");
        assert!(text.contains("poam_item_cache_entries 1\n"), "{text}");
    }

    #[test]
    fn the_budget_bounds_the_renderings() {
        let cache = ItemCache::new(64 << 10);
        let body = Bytes::from(vec![b'x'; 2000]);
        for _ in 0..1000 {
            cache.put(ItemId::new(), SystemId::new(), stamp(1, 1), 1, body.clone());
        }
        let kept = cache.kept.as_ref().map_or(0, |k| k.weight());
        assert!(kept <= 64 << 10, "{kept}");
        assert!(kept > 0);
        let off = ItemCache::new(0);
        off.put(ItemId::new(), SystemId::new(), stamp(1, 1), 1, body);
        assert!(!off.enabled());
        assert!(off.metrics_text().contains("poam_item_cache_entries 0\n"));
    }
}
