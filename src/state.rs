//! What every request handler can reach.

use std::sync::Arc;

use crate::cache::Cache;
use crate::clock::Clock;
use crate::config::Config;
use crate::license_key::RsaPublicKey;
use crate::store::Store;

#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    /// Keys that verify license keys, tried in order (rotation).
    pub license_keys: Arc<Vec<RsaPublicKey>>,
    pub cache: Arc<Cache>,
    /// Wakes the job worker when work was queued (here or, on PostgreSQL, by a replica).
    pub jobs_wake: Arc<tokio::sync::Notify>,
    pub metrics: Arc<crate::metrics::Metrics>,
}
