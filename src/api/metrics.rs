//! `GET /-/metrics`: Prometheus scrapes from allow-listed addresses (`METRICS_ALLOWED_CIDRS`,
//! loopback by default) need no token; anyone else needs an administrator's.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::AtomicU64;

use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::header;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use chrono::NaiveDate;
use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Admin;
use crate::domain::add_ons;
use crate::error::ApiError;
use crate::metrics;
use crate::services::{licenses, seat_alerts};
use crate::state::AppState;
use crate::store::StoreResult;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(scrape))
}

#[utoipa::path(get, operation_id = "metrics_scrape", path = "/-/metrics", tag = "operations", summary = "Prometheus metrics (OpenMetrics text)", responses((status = 200, description = "OK", body = String, content_type = "application/openmetrics-text"), crate::api::responses::ErrorResponses))]
async fn scrape(State(state): State<AppState>, mut parts: Parts) -> Response {
    let peer_allowed = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .is_some_and(|ConnectInfo(peer)| allowed_peer(&state, peer.ip()));
    if !peer_allowed {
        if let Err(refusal) = Admin::from_request_parts(&mut parts, &state).await {
            return refusal.into_response();
        }
    }
    match render(&state).await {
        Ok(text) => ([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], text).into_response(),
        Err(error) => ApiError::from(error).into_response(),
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SeatLabels {
    /// `license` or `add_on`.
    kind: &'static str,
    /// Which seats: "License seats", "GitLab Duo Pro seats (instance)".
    seats: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AddOnLabels {
    /// The add-on's GraphQL name (`CODE_SUGGESTIONS`).
    add_on: String,
    /// The group's path; empty for the instance's purchases.
    namespace: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct InstanceLabels {
    /// The fleet instance's name (never its URL or token).
    instance: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolLabels {
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: String,
    backend: String,
}

fn unix_seconds(date: &str) -> Option<i64> {
    NaiveDate::parse_from_str(date, "%Y-%m-%d")
        .ok()
        .and_then(|date| date.and_hms_opt(0, 0, 0))
        .map(|time| time.and_utc().timestamp())
}

fn gauge(registry: &mut Registry, name: &str, help: &str, value: i64) {
    let gauge = Gauge::<i64>::default();
    gauge.set(value);
    registry.register(name, help, gauge);
}

/// Reads what a scrape reports from the store and encodes everything.
async fn render(state: &AppState) -> StoreResult<String> {
    let mut scrape = Registry::default();
    if let Some(license) = licenses::current_entity(state).await? {
        let license_gauges = [
            (
                "gitlab_license_id",
                "ID of the current license",
                Some(license.id),
            ),
            (
                "gitlab_license_starts_at",
                "Start of the current license (unix seconds)",
                unix_seconds(&license.starts_at),
            ),
            (
                "gitlab_license_expires_at",
                "Expiry of the current license (unix seconds)",
                license.expires_at.as_deref().and_then(unix_seconds),
            ),
            (
                "gitlab_license_historical_max",
                "Highest daily billable-user count over the license term",
                Some(license.historical_max),
            ),
            (
                "gitlab_license_maximum_user_count",
                "Highest billable-user count of the license term, as GitLab reports it",
                Some(license.maximum_user_count),
            ),
            (
                "gitlab_license_expired",
                "1 when the current license has expired",
                Some(i64::from(license.expired.unwrap_or(false))),
            ),
            (
                "gitlab_license_overage",
                "Billable users beyond the license's seats",
                Some(license.overage),
            ),
            (
                "gitlab_license_user_limit",
                "Seats of the current license (0: unlimited)",
                Some(license.user_limit.as_i64().unwrap_or(0)),
            ),
            (
                "gitlab_license_active_users",
                "Billable users now",
                license.active_users,
            ),
        ];
        for (name, help, value) in license_gauges {
            if let Some(value) = value {
                gauge(&mut scrape, name, help, value);
            }
        }
    }

    gauge(
        &mut scrape,
        "gitlab_license_server_unverifiable_licenses",
        "Stored licenses that no configured public key verifies (hidden from the API and the page)",
        i64::try_from(licenses::unverifiable_count(state).await?).unwrap_or(i64::MAX),
    );

    let purchased = Family::<AddOnLabels, Gauge>::default();
    let assigned = Family::<AddOnLabels, Gauge>::default();
    let today = state.clock.today();
    for purchase in state.store.all_add_on_purchases().await? {
        if !add_ons::is_active(purchase.started_on, purchase.expires_on, today) {
            continue;
        }
        let labels = AddOnLabels {
            add_on: add_ons::display_name(&purchase.add_on_name),
            namespace: purchase.namespace_path.clone().unwrap_or_default(),
        };
        purchased.get_or_create(&labels).set(purchase.quantity);
        assigned
            .get_or_create(&labels)
            .set(purchase.assigned_quantity);
    }
    scrape.register(
        "gitlab_license_server_add_on_seats_purchased",
        "Seats bought with each active add-on purchase",
        purchased,
    );
    scrape.register(
        "gitlab_license_server_add_on_seats_assigned",
        "Seats assigned of each active add-on purchase",
        assigned,
    );

    // Next to the license gauges: how full each counted set of seats is (what seat alerts
    // compare with their thresholds).
    let utilization = Family::<SeatLabels, Gauge<f64, AtomicU64>>::default();
    for usage in seat_alerts::status(state).await? {
        let labels = SeatLabels {
            kind: usage.kind,
            seats: usage.label.clone(),
        };
        utilization.get_or_create(&labels).set(usage.utilization);
    }
    scrape.register(
        "gitlab_license_server_seat_utilization_ratio",
        "Seats in use as a share of the seats there are: the license's (billable users) and each active add-on purchase's (assigned seats)",
        utilization,
    );

    true_up_gauges(state, &mut scrape).await?;
    fleet_gauges(state, &mut scrape).await?;

    let pool = state.store.pool_stats();
    let connections = Family::<PoolLabels, Gauge>::default();
    for (label, value) in [("idle", pool.idle), ("in_use", pool.size - pool.idle)] {
        connections
            .get_or_create(&PoolLabels {
                state: label.into(),
            })
            .set(i64::from(value));
    }
    scrape.register(
        "gitlab_license_server_db_pool_connections",
        "Open database connections, idle or in use",
        connections,
    );
    gauge(
        &mut scrape,
        "gitlab_license_server_db_pool_max_connections",
        "The database pool's size limit",
        i64::from(pool.max),
    );
    let build = Family::<BuildLabels, Gauge>::default();
    build
        .get_or_create(&BuildLabels {
            version: env!("CARGO_PKG_VERSION").into(),
            backend: state.store.backend_name().into(),
        })
        .set(1);
    scrape.register(
        "gitlab_license_server_build_info",
        "Always 1; the labels say which build serves",
        build,
    );

    rate_limit_metrics(state, &mut scrape);
    let dropped_log_lines = Counter::<u64>::default();
    dropped_log_lines.inc_by(crate::logging::dropped_lines());
    scrape.register(
        "gitlab_license_server_log_lines_dropped",
        "Log lines dropped since start because the log output could not keep up",
        dropped_log_lines,
    );

    let mut text = String::new();
    // Both encodings end with `# EOF`; the exposition must end with exactly one.
    if state.metrics.encode(&mut text).is_ok() {
        if let Some(stripped) = text.strip_suffix("# EOF\n") {
            text.truncate(stripped.len());
        }
    }
    let _ = encode(&mut text, &scrape);
    Ok(text)
}

/// The rate limits: refusals, requests that could not be counted, keys counted now.
fn rate_limit_metrics(state: &AppState, scrape: &mut Registry) {
    let limiter = &state.rate_limiter;
    let refusals = Counter::<u64>::default();
    refusals.inc_by(limiter.refusals());
    scrape.register(
        "gitlab_license_server_rate_limit_refusals",
        "Requests refused by a rate limit (429) since start",
        refusals,
    );
    let untracked = Counter::<u64>::default();
    untracked.inc_by(limiter.untracked());
    scrape.register(
        "gitlab_license_server_rate_limit_untracked_requests",
        "Requests a rate limit could not count because too many keys were counted at once (let through)",
        untracked,
    );
    gauge(
        scrape,
        "gitlab_license_server_rate_limit_keys",
        "Users and addresses the rate limits are counting in this process",
        i64::try_from(limiter.keys()).unwrap_or(i64::MAX),
    );
}

/// The fleet: unique billable people, and per instance its billable users, whether its last
/// sync succeeded and when one last did.
/// The true-up forecast at today's count: the seats over the license at renewal, and their
/// amount when a price is configured (`TRUE_UP_PRICE_PER_SEAT`, labelled by currency).
async fn true_up_gauges(state: &AppState, scrape: &mut Registry) -> StoreResult<()> {
    use crate::services::true_up::{self, TrueUpError};
    let forecast = match true_up::forecast(state, None, None).await {
        Ok(forecast) => forecast,
        Err(TrueUpError::Store(error)) => return Err(error),
        // No license with seats and an end: no true-up.
        Err(_) => return Ok(()),
    };
    gauge(
        scrape,
        "gitlab_license_server_true_up_forecast_seats",
        "Users over the license the renewal is projected to charge (the term's peak, or today's count if higher, above the seats)",
        forecast.projected_overage,
    );
    if let (Some(amount), Some(currency)) = (forecast.amount, forecast.currency) {
        let family = Family::<CurrencyLabels, Gauge<f64, AtomicU64>>::default();
        family
            .get_or_create(&CurrencyLabels { currency })
            .set(amount);
        scrape.register(
            "gitlab_license_server_true_up_forecast_amount",
            "The projected true-up at the configured price per seat",
            family,
        );
    }
    Ok(())
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CurrencyLabels {
    currency: String,
}

async fn fleet_gauges(state: &AppState, scrape: &mut Registry) -> StoreResult<()> {
    let instances = state.store.fleet_instances().await?;
    if instances.is_empty() {
        return Ok(());
    }
    if let Some((figures, _)) = state.store.fleet_figures().await? {
        gauge(
            scrape,
            "gitlab_license_server_fleet_unique_billable_users",
            "Billable people across the fleet's instances, each counted once",
            figures.unique_billable_users,
        );
        gauge(
            scrape,
            "gitlab_license_server_fleet_people_outside_largest",
            "Billable people absent from, or not billable on, the largest instance (0: the subset assumption holds)",
            figures.people_outside_largest,
        );
    }
    let billable = Family::<InstanceLabels, Gauge>::default();
    let success = Family::<InstanceLabels, Gauge>::default();
    let last_success = Family::<InstanceLabels, Gauge>::default();
    for instance in &instances {
        let labels = InstanceLabels {
            instance: instance.name.clone(),
        };
        if let Some(count) = instance.billable_users {
            billable.get_or_create(&labels).set(count);
        }
        success
            .get_or_create(&labels)
            .set(i64::from(instance.sync_status == "success"));
        if let Some(at) = instance.last_success_at {
            last_success.get_or_create(&labels).set(at.timestamp());
        }
    }
    scrape.register(
        "gitlab_license_server_fleet_instance_billable_users",
        "Billable users in each fleet instance's last complete snapshot",
        billable,
    );
    scrape.register(
        "gitlab_license_server_fleet_instance_sync_success",
        "1 when the instance's last sync (or import) succeeded",
        success,
    );
    scrape.register(
        "gitlab_license_server_fleet_instance_last_success_timestamp_seconds",
        "When the instance's last successful sync (or import) finished (unix seconds)",
        last_success,
    );
    Ok(())
}

/// Whether `peer` may scrape without a token.
fn allowed_peer(state: &AppState, peer: IpAddr) -> bool {
    let peer = peer.to_canonical();
    state
        .config
        .metrics_allowed_cidrs
        .iter()
        .any(|cidr| cidr.contains(&peer))
}
