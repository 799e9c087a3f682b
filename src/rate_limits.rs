//! The rate limits' counters (GitLab keeps them in Redis; here, in the database every replica
//! shares). A request is counted in this process's memory at once — no database on the request
//! path — and every half second each process adds what it counted to the shared rows and
//! learns the total of all replicas. So a key's count is exact for this process's requests and
//! at most about half a second behind for the others' (a key at half its limit or more is
//! read back every time, whether or not this process counted it since): several replicas
//! together may let through what they serve in that half second beyond a limit, never more.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::clock::Clock;
use crate::domain::throttle::{window, CounterKey, Limit};
use crate::store::{RateCount, Store};

/// How often counts are added to the shared rows.
pub const SYNC_INTERVAL: Duration = Duration::from_millis(500);
/// The most keys counted at once in one process (each address of unauthenticated requests is
/// a key). Beyond it, keys whose window has ended are dropped; if all are live, a new key is
/// not counted (and the `rate_limit_untracked_requests` metric says so) rather than memory
/// growing with every address a peer can send from.
pub const MAX_KEYS: usize = 50_000;
/// How many keys one statement adds.
const SYNC_BATCH: usize = 1_000;
/// How often rows of ended windows are deleted.
const CLEANUP_EVERY: u32 = 120;

#[derive(Debug, Clone, Copy)]
struct Counter {
    window_start: i64,
    window_end: i64,
    /// The total of every replica as of the last visit to the shared rows (this process's
    /// counts included).
    shared: i64,
    /// Counted here since then.
    pending: i64,
    /// The limit it is counted against.
    limit: i64,
}

#[derive(Default)]
pub struct RateLimiter {
    counters: Mutex<HashMap<CounterKey, Counter>>,
    untracked: AtomicU64,
    refused: AtomicU64,
}

impl RateLimiter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts one request against `key` under `limit` and returns how many it has seen in the
    /// current window, this one included (GitLab's `RateLimit-Observed`), or `None` when the
    /// key could not be counted (see [`MAX_KEYS`]).
    pub fn hit(&self, key: CounterKey, limit: &Limit, now: DateTime<Utc>) -> Option<i64> {
        let (start, end) = window(limit.period_seconds, now);
        let mut counters = self
            .counters
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if !counters.contains_key(&key) && counters.len() >= MAX_KEYS {
            let second = now.timestamp();
            counters.retain(|_, counter| counter.window_end > second);
            if counters.len() >= MAX_KEYS {
                self.untracked.fetch_add(1, Ordering::Relaxed);
                return None;
            }
        }
        let fresh = Counter {
            window_start: start,
            window_end: end,
            shared: 0,
            pending: 0,
            limit: limit.limit,
        };
        let counter = counters.entry(key).or_insert(fresh);
        if counter.window_start != start {
            *counter = fresh;
        }
        counter.limit = limit.limit;
        counter.pending += 1;
        Some(counter.shared + counter.pending)
    }

    /// Notes a refused request (for the metric).
    pub fn note_refusal(&self) {
        self.refused.fetch_add(1, Ordering::Relaxed);
    }

    /// Requests refused by a rate limit since start.
    pub fn refusals(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// Requests that could not be counted since start (see [`MAX_KEYS`]).
    pub fn untracked(&self) -> u64 {
        self.untracked.load(Ordering::Relaxed)
    }

    /// Keys counted now.
    pub fn keys(&self) -> usize {
        self.counters
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .len()
    }

    /// Adds what this process counted to the shared rows and takes back every key's total;
    /// forgets keys whose window has ended. Returns how many keys were visited.
    pub async fn sync(
        &self,
        store: &Store,
        now: DateTime<Utc>,
    ) -> Result<usize, crate::store::StoreError> {
        let second = now.timestamp();
        let (keys, counts): (Vec<CounterKey>, Vec<RateCount>) = {
            let mut counters = self
                .counters
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            counters.retain(|_, counter| counter.window_end > second);
            // What this process counted, and the keys at half their limit or more even when it
            // counted nothing since: there, what the other replicas counted decides the next
            // answer, so their count is fetched every time (adding nothing).
            counters
                .iter()
                .filter(|(_, counter)| counter.pending > 0 || counter.shared * 2 >= counter.limit)
                .map(|(key, counter)| {
                    let count = RateCount {
                        key: key.to_string(),
                        window_start: counter.window_start,
                        expires_at: counter.window_end,
                        delta: counter.pending,
                    };
                    (*key, count)
                })
                .unzip()
        };
        for (batch_keys, batch) in keys.chunks(SYNC_BATCH).zip(counts.chunks(SYNC_BATCH)) {
            let totals: HashMap<(String, i64), i64> = store
                .add_rate_limit_counts(batch)
                .await?
                .into_iter()
                .map(|(key, window_start, total)| ((key, window_start), total))
                .collect();
            let mut counters = self
                .counters
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            for (key, sent) in batch_keys.iter().zip(batch) {
                let total = totals.get(&(sent.key.clone(), sent.window_start));
                match (counters.get_mut(key), total) {
                    (Some(counter), Some(total)) if counter.window_start == sent.window_start => {
                        counter.pending -= sent.delta;
                        counter.shared = counter.shared.max(*total);
                    }
                    _ => {}
                }
            }
        }
        Ok(counts.len())
    }
}

/// Adds the counts to the shared rows every [`SYNC_INTERVAL`] and deletes ended windows now
/// and then, for as long as the process runs. Idle (no query) while nothing is counted.
pub fn spawn_sync(limiter: Arc<RateLimiter>, store: Store, clock: Arc<dyn Clock>) {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(SYNC_INTERVAL);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut ticks: u32 = 0;
        loop {
            ticker.tick().await;
            let now = clock.now();
            match limiter.sync(&store, now).await {
                Ok(_) => {}
                // Counting goes on in memory; the next tick adds it.
                Err(error) => tracing::warn!(%error, "could not add the rate-limit counts"),
            }
            ticks = ticks.wrapping_add(1);
            if ticks % CLEANUP_EVERY == 0 && limiter.keys() > 0 {
                if let Err(error) = store
                    .delete_expired_rate_limit_counts(now.timestamp())
                    .await
                {
                    tracing::warn!(%error, "could not delete ended rate-limit windows");
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::<Utc>::from_timestamp(seconds, 0).expect("time")
    }

    use crate::domain::throttle::Subject;

    fn key(id: i64) -> CounterKey {
        CounterKey {
            name: "test",
            subject: Subject::User(id),
        }
    }

    const LIMIT: Limit = Limit {
        name: "test",
        limit: 3,
        period_seconds: 60,
    };

    #[test]
    fn counts_per_key_and_window() {
        let limiter = RateLimiter::new();
        assert_eq!(limiter.hit(key(1), &LIMIT, at(120)), Some(1));
        assert_eq!(limiter.hit(key(1), &LIMIT, at(150)), Some(2));
        assert_eq!(limiter.hit(key(2), &LIMIT, at(150)), Some(1));
        // The next window starts at 180.
        assert_eq!(limiter.hit(key(1), &LIMIT, at(180)), Some(1));
        assert_eq!(limiter.keys(), 2);
    }

    #[test]
    fn memory_is_bounded_and_ended_windows_make_room() {
        let limiter = RateLimiter::new();
        for id in 0..MAX_KEYS {
            assert!(limiter.hit(key(id as i64), &LIMIT, at(0)).is_some());
        }
        assert_eq!(limiter.hit(key(-1), &LIMIT, at(30)), None);
        assert_eq!(limiter.untracked(), 1);
        assert_eq!(limiter.keys(), MAX_KEYS);
        // Once their window has ended, the old keys go and the new one is counted.
        assert_eq!(limiter.hit(key(-1), &LIMIT, at(60)), Some(1));
        assert_eq!(limiter.keys(), 1);
    }
}
