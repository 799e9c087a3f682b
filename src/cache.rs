//! In-process caches for the hot read paths (token lookups, decoded licenses, the current
//! license's JSON).
//!
//! Freshness rule: an entry is served only if no write has been committed or announced since it
//! was read ([`Store::change_count`]), and only for [`MAX_AGE`]. Local writes invalidate at
//! once; on PostgreSQL other replicas' writes arrive by `LISTEN/NOTIFY` within milliseconds, and
//! `MAX_AGE` bounds staleness should a notification ever be missed (or when a command-line tool
//! writes to the database behind the server's back).
//!
//! Outages: while the database cannot be reached, the last value read (the `last_known_*`
//! getters) is what it would answer — no write can happen without it — so callers serve that
//! instead of an error.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use chrono::NaiveDate;

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

    fn fresh<T>(&self, entry: &Entry<T>, store: &Store) -> bool {
        self.enabled.load(Ordering::Acquire)
            && entry.changes == store.change_count()
            && entry.stored_at.elapsed() < MAX_AGE
    }

    pub fn token(&self, digest: &str, store: &Store) -> Option<Arc<TokenWithUser>> {
        let map = self
            .auth
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        map.get(digest)
            .filter(|entry| self.fresh(entry, store))
            .map(|entry| Arc::clone(&entry.value))
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
        let slot = self
            .current_license
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        slot.as_ref()
            .filter(|entry| entry.value.0 == today && self.fresh(entry, store))
            .map(|entry| entry.value.1.clone())
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

    /// The active add-on purchases of a namespace (`None`: the instance) on `today`.
    pub fn purchases(
        &self,
        namespace_id: Option<i64>,
        today: NaiveDate,
        store: &Store,
    ) -> Option<Arc<Vec<AddOnPurchase>>> {
        self.purchases_entry((namespace_id, today), |entry| self.fresh(entry, store))
    }

    /// The purchases as last read for `today`, however old (for outages only).
    pub fn last_known_purchases(
        &self,
        namespace_id: Option<i64>,
        today: NaiveDate,
    ) -> Option<Arc<Vec<AddOnPurchase>>> {
        self.purchases_entry((namespace_id, today), |_| true)
    }

    fn purchases_entry(
        &self,
        key: PurchasesKey,
        usable: impl Fn(&Entry<Arc<Vec<AddOnPurchase>>>) -> bool,
    ) -> Option<Arc<Vec<AddOnPurchase>>> {
        let map = self
            .purchases
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        map.get(&key)
            .filter(|entry| usable(entry))
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
