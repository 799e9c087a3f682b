//! What every request handler can reach.

use std::sync::{Arc, RwLock};

use crate::cache::Cache;
use crate::clock::Clock;
use crate::config::Config;
use crate::license_key::RsaPublicKey;
use crate::store::Store;

/// What every handler reaches, behind one `Arc`: axum clones the state for every request
/// (the handler service and each `State` extractor), and one reference count is all such a
/// clone should cost.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    pub fn new(shared: Shared) -> Self {
        Self(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The state's parts.
pub struct Shared {
    pub config: Arc<Config>,
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    /// Keys that verify license keys, tried in order (rotation).
    pub license_keys: Arc<LicenseKeys>,
    pub cache: Arc<Cache>,
    /// Wakes the job worker when work was queued (here or, on PostgreSQL, by a replica).
    pub jobs_wake: Arc<tokio::sync::Notify>,
    /// Wakes the system-hook sender when deliveries were queued.
    pub hooks_wake: Arc<tokio::sync::Notify>,
    /// Wakes the fleet-sync runner when a sync was queued.
    pub fleet_wake: Arc<tokio::sync::Notify>,
    pub metrics: Arc<crate::metrics::Metrics>,
    /// The one client for every outgoing call (hooks, fleet instances).
    pub outbound: Arc<crate::outbound::Outbound>,
    /// Seals and opens secrets for other systems (fleet instances' tokens).
    pub secrets: Arc<crate::secrets::Secrets>,
    /// The rate limits' counters (shared with replicas through the database).
    pub rate_limiter: Arc<crate::rate_limits::RateLimiter>,
}

/// The keys that verify license keys. Set once at start, except on a first run, where the
/// generated pair arrives a moment after the server is ready (no license can be signed by a
/// key that does not exist yet, so verifying with none until then is exact).
#[derive(Default)]
pub struct LicenseKeys(RwLock<Arc<Vec<RsaPublicKey>>>);

impl LicenseKeys {
    pub fn new(keys: Vec<RsaPublicKey>) -> Self {
        Self(RwLock::new(Arc::new(keys)))
    }

    pub fn current(&self) -> Arc<Vec<RsaPublicKey>> {
        match self.0.read() {
            Ok(keys) => Arc::clone(&keys),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    pub fn replace(&self, keys: Vec<RsaPublicKey>) {
        match self.0.write() {
            Ok(mut current) => *current = Arc::new(keys),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(keys),
        }
    }
}
