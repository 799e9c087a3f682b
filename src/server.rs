//! Start-up, serving and shutdown.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::bootstrap::{self, KeySource, RootSetup};
use crate::cache::Cache;
use crate::clock::Clock;
use crate::config::Config;
use crate::state::{AppState, LicenseKeys, Shared};
use crate::store::{Store, CHANGE_CHANNEL};

/// Connects to the configured database and brings its schema up to date.
pub async fn open_store(config: &Config, pool_size: Option<u32>) -> Result<Store, String> {
    let store = Store::connect(config.database_url.expose(), pool_size)
        .await
        .map_err(|error| format!("cannot open the database: {error}"))?;
    store
        .migrate()
        .await
        .map_err(|error| format!("cannot migrate the database: {error}"))?;
    match store.ensure_search_indexes().await {
        Ok(true) => {}
        Ok(false) => tracing::warn!(
            "user search will read the whole users table: PostgreSQL's pg_trgm extension is not \
             installed and this database user may not install it. Run `CREATE EXTENSION pg_trgm;` \
             in this database as a superuser, then restart; the search indexes are created then"
        ),
        // Another replica creating the same index at this moment, or a lock: search still
        // answers, and the next start tries again.
        Err(error) => tracing::warn!(%error, "could not check the user-search indexes"),
    }
    Ok(store)
}

/// The state an operator's command works with against the configured database: no root
/// user is created, no key pair generated, no listener or worker started. Refused when no
/// public key is configured (nothing could be verified).
pub async fn command_state(config: Config, clock: Arc<dyn Clock>) -> Result<AppState, String> {
    let store = open_store(&config, Some(2)).await?;
    let keys = match bootstrap::license_keys(&config)? {
        Some((keys, _)) => keys,
        None => {
            return Err(
                "no license public key is configured: set LICENSE_PUBLIC_KEY_FILE (or run where DATA_DIR holds the server's key pair)"
                    .into(),
            )
        }
    };
    let license_keys = Arc::new(LicenseKeys::default());
    license_keys.replace(keys);
    Ok(state_over(config, store, clock, license_keys))
}

/// The state over an open store: fresh caches, wake handles and counters.
fn state_over(
    config: Config,
    store: Store,
    clock: Arc<dyn Clock>,
    license_keys: Arc<LicenseKeys>,
) -> AppState {
    // SQLite has one writer process, so local invalidation is exact from the start; on
    // PostgreSQL caching waits for the change listener.
    let cache = Arc::new(Cache::new(store.postgres_pool().is_none()));
    let config_limits = config.limits;
    let config_allow_list = config.outbound_allow_list.clone();
    let secrets = crate::secrets::Secrets::from_config(&config);
    AppState::new(Shared {
        config: Arc::new(config),
        store,
        clock,
        license_keys,
        cache,
        jobs_wake: crate::jobs::wake_handle(),
        hooks_wake: crate::jobs::wake_handle(),
        fleet_wake: crate::jobs::wake_handle(),
        metrics: Arc::new(crate::metrics::Metrics::new()),
        outbound: Arc::new(crate::outbound::Outbound::new(
            config_limits,
            config_allow_list,
        )),
        secrets: Arc::new(secrets),
        rate_limiter: Arc::new(crate::rate_limits::RateLimiter::new()),
    })
}

/// Connects, migrates, creates root and loads the keys: everything before the first request.
pub async fn prepare(config: Config, clock: Arc<dyn Clock>) -> Result<AppState, String> {
    // Created when first needed (the root token, the key pair, the SQLite file); an existing
    // one is made private now.
    if config.data_dir.exists() {
        crate::keyfiles::ensure_private_dir(&config.data_dir)?;
    }
    crate::secrets::Secrets::from_config(&config)
        .validate()
        .map_err(|error| error.to_string())?;
    let store = open_store(&config, config.database_pool_size).await?;
    match bootstrap::ensure_root(&store, &config, clock.now()).await? {
        RootSetup::Existing => {}
        RootSetup::FromConfig => {
            tracing::info!("created the root user with the token from INITIAL_ROOT_TOKEN")
        }
        RootSetup::Generated(path) => tracing::info!(
            path = %path.display(),
            "created the root user; its personal access token is in this file"
        ),
    }
    let license_keys = Arc::new(LicenseKeys::default());
    let generate_keys = match bootstrap::license_keys(&config)? {
        Some((keys, KeySource::Configured(path) | KeySource::DataDir(path))) => {
            tracing::info!(
                path = %path.display(),
                keys = keys.len(),
                "license verification keys loaded"
            );
            license_keys.replace(keys);
            false
        }
        None => true,
    };
    let state = state_over(config, store, clock, license_keys);
    spawn_change_listener(&state);
    crate::rate_limits::spawn_sync(
        Arc::clone(&state.rate_limiter),
        state.store.clone(),
        Arc::clone(&state.clock),
    );
    if generate_keys {
        spawn_key_generation(&state);
    }
    Ok(state)
}

/// A first run's signing key pair, made off the start-up path: the prime search takes from
/// tens to hundreds of milliseconds, and nothing needs the key before it exists.
fn spawn_key_generation(state: &AppState) {
    let config = Arc::clone(&state.config);
    let keys = Arc::clone(&state.license_keys);
    tokio::spawn(async move {
        let generated = tokio::task::spawn_blocking(move || {
            bootstrap::generate_license_keys(&config, |generated| keys.replace(generated))
        })
        .await;
        match generated {
            Ok(Ok(public_path)) => tracing::info!(
                public_key = %public_path.display(),
                private_key = %public_path.with_extension("").display(),
                "generated a license signing key pair; issue licenses with `gitlab-license-server license issue --private-key <private_key> …`"
            ),
            Ok(Err(error)) => {
                tracing::error!(%error, "could not generate the license signing key pair")
            }
            Err(error) => tracing::error!(%error, "the key generation task failed"),
        }
    });
}

/// How long the change listener waits for a connection before it calls the database
/// unreachable, and how often it tries again while it is.
const LISTENER_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
const LISTENER_RETRY: Duration = Duration::from_millis(500);

/// On PostgreSQL, follows the other replicas' writes so caches drop what they changed; while
/// the listener is down, caching is off. It is also the outage detector: when its connection
/// drops and no new one can be had, the store is marked unreachable (requests then get what
/// the caches hold, or a 503, at once) until a connection succeeds again.
fn spawn_change_listener(state: &AppState) {
    let Some(pool) = state.store.postgres_pool().cloned() else {
        return;
    };
    // Its own connection, not one of the pool's: a listener holds its connection for good, and
    // with a small DATABASE_POOL_SIZE it would starve the requests.
    let listener_pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(LISTENER_CONNECT_TIMEOUT)
        .connect_lazy_with((*pool.connect_options()).clone());
    let store = state.store.clone();
    let cache = Arc::clone(&state.cache);
    let jobs_wake = Arc::clone(&state.jobs_wake);
    let fleet_wake = Arc::clone(&state.fleet_wake);
    let hooks_wake = Arc::clone(&state.hooks_wake);
    tokio::spawn(async move {
        // A lost connection is followed by an immediate attempt to get one back (its failure
        // is what tells an outage from a dropped connection); failed attempts are paced.
        let mut pause = false;
        loop {
            if pause {
                tokio::time::sleep(LISTENER_RETRY).await;
            }
            let connected = tokio::time::timeout(
                LISTENER_CONNECT_TIMEOUT,
                sqlx::postgres::PgListener::connect_with(&listener_pool),
            )
            .await;
            match connected {
                Ok(Ok(mut listener)) => {
                    if listener.listen(CHANGE_CHANNEL).await.is_ok() {
                        store.mark_reachable();
                        store.changed();
                        cache.set_enabled(true);
                        while listener.try_recv().await.ok().flatten().is_some() {
                            store.changed();
                            // Another replica may have queued work.
                            jobs_wake.notify_one();
                            hooks_wake.notify_one();
                            fleet_wake.notify_one();
                        }
                    }
                    tracing::warn!("change listener disconnected; caching paused");
                    pause = false;
                }
                Ok(Err(error)) if !crate::store::is_connection_error(&error) => {
                    tracing::warn!("change listener cannot listen");
                    pause = true;
                }
                _ => {
                    store.mark_unreachable();
                    pause = true;
                }
            }
            cache.set_enabled(false);
            store.changed();
            if pool.is_closed() {
                return;
            }
        }
    });
}

/// `serve`: runs until SIGINT or SIGTERM, then finishes the requests in flight.
pub async fn serve(config: Config) -> Result<(), String> {
    let listen_addr = config.listen_addr;
    let clock: Arc<dyn Clock> = Arc::new(crate::clock::SystemClock);
    let state = prepare(config, clock).await?;
    let store = state.store.clone();
    let worker = crate::jobs::spawn_worker(state.clone());
    let listener = TcpListener::bind(listen_addr)
        .await
        .map_err(|error| format!("cannot listen on {listen_addr}: {error}"))?;
    tracing::info!(
        address = %listen_addr,
        database = store.backend_name(),
        version = env!("CARGO_PKG_VERSION"),
        "ready"
    );
    let limits = state.config.limits;
    let metrics_server = match state.config.metrics_addr {
        Some(address) => {
            let metrics_listener = TcpListener::bind(address)
                .await
                .map_err(|error| format!("cannot listen on METRICS_ADDR {address}: {error}"))?;
            tracing::info!(address = %address, "serving /-/metrics");
            let metrics_app = crate::api::metrics_app(state.clone());
            Some(tokio::spawn(crate::http::serve(
                metrics_listener,
                metrics_app,
                limits,
                std::future::pending(),
            )))
        }
        None => None,
    };
    let hook_sender = crate::services::hooks::spawn_sender(state.clone());
    let fleet_syncer = crate::jobs::spawn_fleet_syncer(state.clone());
    let drop_reporter = tokio::spawn(crate::logging::report_drops());
    // Off the start-up path: it reads and verifies every stored license.
    tokio::spawn({
        let state = state.clone();
        async move { crate::services::licenses::warn_about_unverifiable(&state).await }
    });
    let app = crate::api::app(state);
    // Once start-up's own work (the tasks above included) is over, its code leaves memory;
    // again whenever the server has gone idle.
    let memory_keeper = tokio::spawn(crate::memory::keep_idle_memory_low());
    crate::http::serve(listener, app, limits, shutdown_signal()).await;
    if let Some(metrics_server) = metrics_server {
        metrics_server.abort();
    }
    // A job or delivery cut off here is claimed again once its lease runs out.
    worker.abort();
    hook_sender.abort();
    fleet_syncer.abort();
    drop_reporter.abort();
    memory_keeper.abort();
    store.close().await;
    crate::logging::report_drops_at_stop();
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}
