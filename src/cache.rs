//! In-process caches for the hot read paths (token lookups, decoded licenses, the current
//! license's JSON).
//!
//! Freshness rule: an entry is served only if no write has been committed or announced since it
//! was read ([`Store::change_count`]), and only for [`MAX_AGE`]. Local writes invalidate at
//! once; on PostgreSQL other replicas' writes arrive by `LISTEN/NOTIFY` within milliseconds, and
//! `MAX_AGE` (plus the one read that renews an aged entry) bounds staleness should a
//! notification ever be missed (or when a command-line tool writes to the database behind the
//! server's back).
//!
//! Outages: while the database cannot be reached, the last value read (the `last_known_*`
//! getters) is what it would answer — no write can happen without it — so callers serve that
//! instead of an error.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use chrono::NaiveDate;

use crate::domain::settings::Settings;
use crate::license_key::{DecodeError, License};
use crate::store::{AddOnPurchase, Store, TokenWithUser};

/// A license's decoding, shared between requests.
pub type Decoded = Arc<Result<License, DecodeError>>;

pub const MAX_AGE: Duration = Duration::from_secs(1);
/// Tokens are few; a flood of distinct valid tokens just empties the map.
const MAX_AUTH_ENTRIES: usize = 10_000;
const MAX_DECODED_ENTRIES: usize = 1_000;

#[derive(Clone)]
struct Entry<T> {
    changes: u64,
    stored_at: Instant,
    value: T,
}

pub struct Cache {
    /// False while cross-replica notifications are not being received (PostgreSQL listener
    /// down): then nothing is served from cache at all.
    enabled: AtomicBool,
    auth: RwLock<HashMap<String, Entry<Arc<TokenWithUser>>>>,
    /// License id → (stored text, its decoding).
    decoded: RwLock<HashMap<i64, (String, Decoded)>>,
    current_license: RwLock<Option<Entry<(NaiveDate, bytes::Bytes)>>>,
    /// The instance's settings (read on every request once a throttle is on).
    settings: RwLock<Option<Entry<Arc<Settings>>>>,
    /// Active add-on purchases by (namespace, day).
    purchases: RwLock<HashMap<PurchasesKey, Entry<Arc<Vec<AddOnPurchase>>>>>,
    /// When this process last recorded each token's use (GitLab records it at most every
    /// ten minutes).
    token_touches: std::sync::Mutex<HashMap<i64, Instant>>,
    /// The day this process last recorded each user's activity (once a day, as GitLab).
    activity: std::sync::Mutex<HashMap<i64, NaiveDate>>,
}

/// A namespace (`None`: the instance) on a day.
type PurchasesKey = (Option<i64>, NaiveDate);

enum Freshness {
    Fresh,
    /// Older than [`MAX_AGE`], with no change known since it was read.
    Aged,
    /// Written since it was read (or cross-replica notifications are off).
    Changed,
}

/// A read's starting point: capture it *before* querying, store with it afterwards.
#[derive(Debug, Clone, Copy)]
pub struct Ticket(u64);

impl Cache {
    pub fn new(enabled: bool) -> Self {
        Self {
            enabled: AtomicBool::new(enabled),
            auth: RwLock::default(),
            decoded: RwLock::default(),
            current_license: RwLock::default(),
            settings: RwLock::default(),
            purchases: RwLock::default(),
            token_touches: std::sync::Mutex::default(),
            activity: std::sync::Mutex::default(),
        }
    }

    pub fn set_enabled(&self, enabled: bool) {
        self.enabled.store(enabled, Ordering::Release);
    }

    pub fn ticket(store: &Store) -> Ticket {
        Ticket(store.change_count())
    }

    fn freshness<T>(&self, entry: &Entry<T>, changes: u64) -> Freshness {
        if !self.enabled.load(Ordering::Acquire) || entry.changes != changes {
            Freshness::Changed
        } else if entry.stored_at.elapsed() < MAX_AGE {
            Freshness::Fresh
        } else {
            Freshness::Aged
        }
    }

    /// The value of the entry `find` picks, if it may be served. An entry that has only aged
    /// past [`MAX_AGE`] (no change known) goes back to the database through one caller: its
    /// clock restarts for the others, who keep being served it meanwhile, instead of every
    /// request in flight reading the same row at the same moment once a second.
    fn lookup<M, T, R>(
        &self,
        slot: &RwLock<M>,
        changes: u64,
        find: impl Fn(&M) -> Option<&Entry<T>>,
        find_mut: impl Fn(&mut M) -> Option<&mut Entry<T>>,
        value: impl Fn(&T) -> Option<R>,
    ) -> Option<R> {
        {
            let map = slot.read().unwrap_or_else(|poisoned| poisoned.into_inner());
            let entry = find(&map)?;
            match self.freshness(entry, changes) {
                Freshness::Fresh => return value(&entry.value),
                Freshness::Changed => return None,
                Freshness::Aged => {}
            }
        }
        let mut map = slot
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let entry = find_mut(&mut map)?;
        match self.freshness(entry, changes) {
            // Another caller is reading it again.
            Freshness::Fresh => value(&entry.value),
            Freshness::Changed => None,
            Freshness::Aged => {
                entry.stored_at = Instant::now();
                None
            }
        }
    }

    pub fn token(&self, digest: &str, store: &Store) -> Option<Arc<TokenWithUser>> {
        self.lookup(
            &self.auth,
            store.change_count(),
            |map| map.get(digest),
            |map| map.get_mut(digest),
            |value| Some(Arc::clone(value)),
        )
    }

    /// The token as last read, however old (for outages only).
    pub fn last_known_token(&self, digest: &str) -> Option<Arc<TokenWithUser>> {
        let map = self
            .auth
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        map.get(digest).map(|entry| Arc::clone(&entry.value))
    }

    pub fn put_token(&self, digest: &str, ticket: Ticket, value: Arc<TokenWithUser>) {
        let mut map = self
            .auth
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if map.len() >= MAX_AUTH_ENTRIES {
            map.clear();
        }
        map.insert(
            digest.to_string(),
            Entry {
                changes: ticket.0,
                stored_at: Instant::now(),
                value,
            },
        );
    }

    /// True at most once per `interval` per token in this process: whether to record its use.
    pub fn should_touch_token(&self, token_id: i64, interval: Duration) -> bool {
        let mut touches = self
            .token_touches
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if touches.len() >= MAX_AUTH_ENTRIES {
            touches.clear();
        }
        let now = Instant::now();
        match touches.get(&token_id) {
            Some(last) if now.duration_since(*last) < interval => false,
            _ => {
                touches.insert(token_id, now);
                true
            }
        }
    }

    /// True at most once per user and day in this process: whether to record its activity.
    pub fn should_record_activity(&self, user_id: i64, today: NaiveDate) -> bool {
        let mut recorded = self
            .activity
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if recorded.len() >= MAX_AUTH_ENTRIES {
            recorded.clear();
        }
        recorded.insert(user_id, today) != Some(today)
    }

    /// Decoding is a pure function of the stored text, so a decoded license stays valid for
    /// as long as its row holds the same text.
    pub fn decoded(&self, id: i64, data: &str) -> Option<Decoded> {
        let map = self
            .decoded
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        map.get(&id)
            .filter(|(cached_data, _)| cached_data == data)
            .map(|(_, decoded)| Arc::clone(decoded))
    }

    pub fn put_decoded(&self, id: i64, data: &str, decoded: Decoded) {
        let mut map = self
            .decoded
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if map.len() >= MAX_DECODED_ENTRIES {
            map.clear();
        }
        map.insert(id, (data.to_string(), decoded));
    }

    /// The JSON body of `GET /license`, if computed for `today` since the last change.
    pub fn current_license(&self, today: NaiveDate, store: &Store) -> Option<bytes::Bytes> {
        self.lookup(
            &self.current_license,
            store.change_count(),
            |slot| slot.as_ref().filter(|entry| entry.value.0 == today),
            |slot| slot.as_mut().filter(|entry| entry.value.0 == today),
            |(_, body)| Some(body.clone()),
        )
    }

    /// The `GET /license` body last computed for `today`, however old (for outages only).
    pub fn last_known_current_license(&self, today: NaiveDate) -> Option<bytes::Bytes> {
        let slot = self
            .current_license
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        slot.as_ref()
            .filter(|entry| entry.value.0 == today)
            .map(|entry| entry.value.1.clone())
    }

    /// The instance's settings, if read since the last change.
    pub fn settings(&self, store: &Store) -> Option<Arc<Settings>> {
        self.lookup(
            &self.settings,
            store.change_count(),
            |slot| slot.as_ref(),
            |slot| slot.as_mut(),
            |settings| Some(Arc::clone(settings)),
        )
    }

    /// `view` of the cached settings, without taking a reference to them (the throttles ask
    /// this on every API request); `None` when they must be read again.
    pub fn settings_view<R>(&self, store: &Store, view: impl Fn(&Settings) -> R) -> Option<R> {
        self.lookup(
            &self.settings,
            store.change_count(),
            |slot| slot.as_ref(),
            |slot| slot.as_mut(),
            |settings| Some(view(settings)),
        )
    }

    /// The settings as last read, however old (for outages only).
    pub fn last_known_settings(&self) -> Option<Arc<Settings>> {
        let slot = self
            .settings
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        slot.as_ref().map(|entry| Arc::clone(&entry.value))
    }

    pub fn put_settings(&self, ticket: Ticket, settings: Arc<Settings>) {
        let mut slot = self
            .settings
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *slot = Some(Entry {
            changes: ticket.0,
            stored_at: Instant::now(),
            value: settings,
        });
    }

    /// The active add-on purchases of a namespace (`None`: the instance) on `today`.
    pub fn purchases(
        &self,
        namespace_id: Option<i64>,
        today: NaiveDate,
        store: &Store,
    ) -> Option<Arc<Vec<AddOnPurchase>>> {
        let key = (namespace_id, today);
        self.lookup(
            &self.purchases,
            store.change_count(),
            |map| map.get(&key),
            |map| map.get_mut(&key),
            |purchases| Some(Arc::clone(purchases)),
        )
    }

    /// The purchases as last read for `today`, however old (for outages only).
    pub fn last_known_purchases(
        &self,
        namespace_id: Option<i64>,
        today: NaiveDate,
    ) -> Option<Arc<Vec<AddOnPurchase>>> {
        let map = self
            .purchases
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        map.get(&(namespace_id, today))
            .map(|entry| Arc::clone(&entry.value))
    }

    pub fn put_purchases(
        &self,
        namespace_id: Option<i64>,
        today: NaiveDate,
        ticket: Ticket,
        purchases: Arc<Vec<AddOnPurchase>>,
    ) {
        let mut map = self
            .purchases
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // Namespaces are few; a day's change or a flood of namespaces starts the map over.
        if map.len() >= MAX_DECODED_ENTRIES || map.keys().any(|(_, day)| *day != today) {
            map.clear();
        }
        map.insert(
            (namespace_id, today),
            Entry {
                changes: ticket.0,
                stored_at: Instant::now(),
                value: purchases,
            },
        );
    }

    pub fn put_current_license(&self, today: NaiveDate, ticket: Ticket, body: bytes::Bytes) {
        let mut slot = self
            .current_license
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *slot = Some(Entry {
            changes: ticket.0,
            stored_at: Instant::now(),
            value: (today, body),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 12, 3).unwrap_or_default()
    }

    fn cached_body(cache: &Cache, changes: u64) -> Option<bytes::Bytes> {
        cache.lookup(
            &cache.current_license,
            changes,
            |slot| slot.as_ref().filter(|entry| entry.value.0 == today()),
            |slot| slot.as_mut().filter(|entry| entry.value.0 == today()),
            |(_, body)| Some(body.clone()),
        )
    }

    fn age(cache: &Cache) {
        let mut slot = cache.current_license.write().expect("lock");
        if let Some(entry) = slot.as_mut() {
            entry.stored_at = Instant::now() - MAX_AGE * 2;
        }
    }

    #[test]
    fn an_aged_entry_is_read_again_by_one_caller_while_the_others_are_served() {
        let cache = Cache::new(true);
        cache.put_current_license(today(), Ticket(5), bytes::Bytes::from_static(b"{}"));
        assert!(cached_body(&cache, 5).is_some());
        age(&cache);
        // The first caller to find it aged reads it again; the rest are served meanwhile.
        assert_eq!(cached_body(&cache, 5), None);
        assert!(cached_body(&cache, 5).is_some());
        assert!(cached_body(&cache, 5).is_some());
        // Once it has aged again, the next caller reads it again.
        age(&cache);
        assert_eq!(cached_body(&cache, 5), None);
        assert!(cached_body(&cache, 5).is_some());
    }

    #[test]
    fn a_changed_entry_is_never_served() {
        let cache = Cache::new(true);
        cache.put_current_license(today(), Ticket(5), bytes::Bytes::from_static(b"{}"));
        assert_eq!(cached_body(&cache, 6), None);
        assert_eq!(cached_body(&cache, 6), None);
        age(&cache);
        assert_eq!(cached_body(&cache, 6), None);
        assert_eq!(cached_body(&cache, 6), None);
        cache.set_enabled(false);
        assert_eq!(cached_body(&cache, 5), None);
    }
}
