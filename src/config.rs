//! Settings from the environment. Secrets are wrapped so that `Debug` never prints them.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// A value that must never reach a log line or an error message.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("Secret(\"[redacted]\")")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub database_url: Secret,
    pub database_pool_size: Option<u32>,
    pub listen_addr: SocketAddr,
    pub data_dir: PathBuf,
    pub external_url: String,
    pub license_public_key_file: Option<PathBuf>,
    pub license_issuer_name: String,
    pub initial_root_token: Option<Secret>,
    pub admin_mode: bool,
    pub gitlab_version: String,
    pub log_format: LogFormat,
    /// A second address serving only `/-/metrics` (as GitLab's exporters listen apart).
    pub metrics_addr: Option<SocketAddr>,
    /// Peers that may scrape `/-/metrics` without a token (GitLab's monitoring allow-list).
    pub metrics_allowed_cidrs: Vec<ipnet::IpNet>,
    pub limits: Limits,
    /// Seat-usage percentages that raise a seat alert when crossed (`SEAT_ALERT_THRESHOLDS`).
    pub seat_alert_thresholds: Vec<u32>,
    /// `TRUE_UP_PRICE_PER_SEAT` and `TRUE_UP_CURRENCY`: the annual price of a seat the true-up
    /// forecast and its gauge put amounts on (a request's `price_per_seat` wins).
    pub true_up_price: Option<(crate::domain::true_up::Price, String)>,
    /// The key that encrypts secrets for other systems (fleet instances' tokens):
    /// `SECRETS_KEY` or the file `SECRETS_KEY_FILE`; unset, `DATA_DIR/keys/secrets.key`
    /// (generated when first needed).
    pub secrets_key: Option<Secret>,
    pub secrets_key_file: Option<PathBuf>,
    /// How often each fleet instance is synced (`FLEET_SYNC_INTERVAL_MINUTES`).
    pub fleet_sync_interval: Duration,
    /// Where outgoing calls may go (`OUTBOUND_ALLOW_LIST`); `None`: anywhere.
    pub outbound_allow_list: Option<Vec<AllowedDestination>>,
}

/// One entry of `OUTBOUND_ALLOW_LIST`: an address block, or a host name matched exactly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowedDestination {
    Addresses(ipnet::IpNet),
    Host(String),
}

impl AllowedDestination {
    /// Whether `host` (a URL's host: a name, an IPv4 address, or an IPv6 one in brackets)
    /// is this destination. Names are never resolved here: a name is allowed only when it is
    /// listed as a name.
    pub fn admits(&self, host: &str) -> bool {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        match (self, bare.parse::<std::net::IpAddr>()) {
            (Self::Addresses(block), Ok(address)) => block.contains(&address.to_canonical()),
            (Self::Host(name), Err(_)) => name.eq_ignore_ascii_case(bare),
            _ => false,
        }
    }
}

/// `OUTBOUND_ALLOW_LIST`: comma-separated addresses, CIDR blocks and host names.
fn outbound_allow_list(source: &dyn Source) -> Result<Option<Vec<AllowedDestination>>, String> {
    let Some(text) = source.get("OUTBOUND_ALLOW_LIST") else {
        return Ok(None);
    };
    text.split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(|entry| {
            if let Ok(block) = entry.parse::<ipnet::IpNet>() {
                Ok(AllowedDestination::Addresses(block))
            } else if let Ok(address) = entry.parse::<std::net::IpAddr>() {
                Ok(AllowedDestination::Addresses(ipnet::IpNet::from(address)))
            } else if entry
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-'))
            {
                Ok(AllowedDestination::Host(entry.to_ascii_lowercase()))
            } else {
                Err(format!(
                    "OUTBOUND_ALLOW_LIST: `{entry}` is not an address, a CIDR block or a host name"
                ))
            }
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// How long a peer may take, and how much it may hold, before it loses its connection or
/// its request (documented in docs/operations.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// A new connection, or a request started on a kept-alive one, must deliver its whole
    /// request head within this time.
    pub header_read_timeout: Duration,
    /// A kept-alive connection with no request for this long is closed.
    pub keep_alive_timeout: Duration,
    /// A request body must have arrived in full within this time of its head.
    pub request_body_timeout: Duration,
    /// After SIGTERM, requests in flight get this long before the connections are dropped.
    pub shutdown_timeout: Duration,
    /// One system-hook delivery (connect, send, answer) gets this long.
    pub hook_timeout: Duration,
    /// System-hook deliveries in flight at once, per server process.
    pub hook_concurrency: usize,
    /// One outgoing request (connect, send, the whole answer) gets this long.
    pub outbound_timeout: Duration,
    /// Attempts per outgoing request before its failure is final (429, 5xx, cut connections
    /// and time-outs are retried; other answers are not).
    pub outbound_max_attempts: u32,
    /// The first back-off between attempts; it doubles with each retry (with jitter).
    pub outbound_retry_base: Duration,
    /// The longest `Retry-After` / `RateLimit-Reset` wait honoured; a peer asking for more
    /// fails the call with its reason instead of holding the sync.
    pub outbound_max_retry_wait: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            keep_alive_timeout: Duration::from_secs(30),
            request_body_timeout: Duration::from_secs(30),
            shutdown_timeout: Duration::from_secs(10),
            hook_timeout: Duration::from_secs(10),
            hook_concurrency: 4,
            outbound_timeout: Duration::from_secs(30),
            outbound_max_attempts: 5,
            outbound_retry_base: Duration::from_millis(500),
            outbound_max_retry_wait: Duration::from_secs(60),
        }
    }
}

/// Reads `key` as a positive whole number within `range`, or `default` when unset.
fn number(
    source: &dyn Source,
    key: &str,
    default: u64,
    range: std::ops::RangeInclusive<u64>,
) -> Result<u64, String> {
    match source.get(key) {
        None => Ok(default),
        Some(text) => text
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|value| range.contains(value))
            .ok_or_else(|| {
                format!(
                    "{key} `{text}` is not a whole number from {} to {}",
                    range.start(),
                    range.end()
                )
            }),
    }
}

fn seconds(source: &dyn Source, key: &str, default: Duration) -> Result<Duration, String> {
    number(source, key, default.as_secs(), 1..=86_400).map(Duration::from_secs)
}

impl Limits {
    fn from_source(source: &dyn Source) -> Result<Self, String> {
        let defaults = Self::default();
        Ok(Self {
            header_read_timeout: seconds(
                source,
                "HTTP_HEADER_READ_TIMEOUT_SECONDS",
                defaults.header_read_timeout,
            )?,
            keep_alive_timeout: seconds(
                source,
                "HTTP_KEEP_ALIVE_TIMEOUT_SECONDS",
                defaults.keep_alive_timeout,
            )?,
            request_body_timeout: seconds(
                source,
                "HTTP_REQUEST_BODY_TIMEOUT_SECONDS",
                defaults.request_body_timeout,
            )?,
            shutdown_timeout: seconds(
                source,
                "SHUTDOWN_TIMEOUT_SECONDS",
                defaults.shutdown_timeout,
            )?,
            hook_timeout: seconds(source, "HOOK_TIMEOUT_SECONDS", defaults.hook_timeout)?,
            hook_concurrency: usize::try_from(number(
                source,
                "HOOK_CONCURRENCY",
                defaults.hook_concurrency as u64,
                1..=64,
            )?)
            .unwrap_or(defaults.hook_concurrency),
            outbound_timeout: seconds(
                source,
                "OUTBOUND_TIMEOUT_SECONDS",
                defaults.outbound_timeout,
            )?,
            outbound_max_attempts: u32::try_from(number(
                source,
                "OUTBOUND_MAX_ATTEMPTS",
                u64::from(defaults.outbound_max_attempts),
                1..=20,
            )?)
            .unwrap_or(defaults.outbound_max_attempts),
            outbound_retry_base: Duration::from_millis(number(
                source,
                "OUTBOUND_RETRY_BASE_MILLISECONDS",
                u64::try_from(defaults.outbound_retry_base.as_millis()).unwrap_or(500),
                1..=60_000,
            )?),
            outbound_max_retry_wait: seconds(
                source,
                "OUTBOUND_MAX_RETRY_WAIT_SECONDS",
                defaults.outbound_max_retry_wait,
            )?,
        })
    }
}

pub const DEFAULT_DATABASE_URL: &str = "sqlite://data/gitlab-license-server.db";
pub const DEFAULT_LISTEN_ADDR: &str = "127.0.0.1:8080";
pub const DEFAULT_ISSUER_NAME: &str = "the license issuer";
pub const DEFAULT_GITLAB_VERSION: &str = "18.6.0-ee";
pub const DEFAULT_METRICS_ALLOWED_CIDRS: &str = "127.0.0.0/8,::1/128";
pub const DEFAULT_SEAT_ALERT_THRESHOLDS: &str = "80,90,100";

/// `TRUE_UP_PRICE_PER_SEAT` (e.g. `290` or `290.50`) and `TRUE_UP_CURRENCY` (three letters,
/// `USD` by default).
fn true_up_price(
    source: &dyn Source,
) -> Result<Option<(crate::domain::true_up::Price, String)>, String> {
    let Some(text) = source
        .get("TRUE_UP_PRICE_PER_SEAT")
        .filter(|text| !text.trim().is_empty())
    else {
        return Ok(None);
    };
    let price = crate::domain::true_up::Price::parse(&text).ok_or_else(|| {
        format!("TRUE_UP_PRICE_PER_SEAT: `{text}` is not a price (digits, at most two decimals)")
    })?;
    let currency = source
        .get("TRUE_UP_CURRENCY")
        .unwrap_or_else(|| "USD".into());
    let currency = currency.trim().to_ascii_uppercase();
    if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Err(format!(
            "TRUE_UP_CURRENCY: `{currency}` is not a three-letter currency code"
        ));
    }
    Ok(Some((price, currency)))
}

/// `SEAT_ALERT_THRESHOLDS`: percentages of seats in use, comma-separated, each 1 to 1000
/// (above 100 warns of an overage that far past the seats); `none` turns seat alerts off.
fn seat_alert_thresholds(source: &dyn Source) -> Result<Vec<u32>, String> {
    let text = source
        .get("SEAT_ALERT_THRESHOLDS")
        .unwrap_or_else(|| DEFAULT_SEAT_ALERT_THRESHOLDS.into());
    if text.trim().eq_ignore_ascii_case("none") {
        return Ok(Vec::new());
    }
    let mut thresholds = text
        .split(',')
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .map(|part| {
            part.trim_end_matches('%')
                .parse::<u32>()
                .ok()
                .filter(|percent| (1..=1000).contains(percent))
                .ok_or_else(|| {
                    format!("SEAT_ALERT_THRESHOLDS: `{part}` is not a percentage from 1 to 1000 (or set it to none)")
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    thresholds.sort_unstable();
    thresholds.dedup();
    Ok(thresholds)
}

/// Where settings come from: the process environment in production, a map in tests.
pub trait Source {
    fn get(&self, key: &str) -> Option<String>;
}

pub struct Environment;

impl Source for Environment {
    /// An empty or blank value counts as unset: compose files pass settings through with
    /// `${VAR:- }`, since podman-compose 1.0 cannot substitute an empty default.
    fn get(&self, key: &str) -> Option<String> {
        std::env::var(key)
            .ok()
            .filter(|value| !value.trim().is_empty())
    }
}

impl<const N: usize> Source for [(&str, &str); N] {
    fn get(&self, key: &str) -> Option<String> {
        self.iter()
            .find(|(name, _)| *name == key)
            .map(|(_, value)| value.to_string())
    }
}

/// Characters an initial root token needs after its `glpat-` prefix (GitLab's own tokens
/// carry 20).
pub const MIN_ROOT_TOKEN_CHARS: usize = 20;

/// Refuses a guessable initial root token: it opens the administrator account.
fn strong_token(key: &str, token: &str) -> Result<Secret, String> {
    let random_part = token
        .strip_prefix(crate::domain::users::TOKEN_PREFIX)
        .unwrap_or(token);
    if random_part.chars().count() < MIN_ROOT_TOKEN_CHARS {
        return Err(format!(
            "{key} is too short to be safe: it needs at least {MIN_ROOT_TOKEN_CHARS} characters after the `glpat-` prefix (or leave it unset and a random token is generated into DATA_DIR/initial_root_token)"
        ));
    }
    Ok(Secret::new(token))
}

/// Refuses a database URL that names no database: PostgreSQL would pick a default one and
/// the server would migrate into it, and an empty SQLite path is no file at all.
fn check_database_url(url: &str) -> Result<(), String> {
    let (scheme, rest) = url.split_once(':').unwrap_or((url, ""));
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let (location, query) = rest.split_once('?').unwrap_or((rest, ""));
    let names_database = match scheme {
        "postgres" | "postgresql" => {
            let path = location.split_once('/').map_or("", |(_, path)| path);
            !path.trim_matches('/').is_empty()
                || query.split('&').any(|pair| {
                    pair.strip_prefix("dbname=")
                        .is_some_and(|name| !name.is_empty())
                })
        }
        "sqlite" => !location.is_empty(),
        // Any other scheme is refused by the store with its own message.
        _ => true,
    };
    if names_database {
        Ok(())
    } else {
        Err(format!(
            "DATABASE_URL names no database ({scheme}:…): give one, e.g. postgres://user@host:5432/gitlab_license_server or sqlite://data/gitlab-license-server.db"
        ))
    }
}

impl Config {
    pub fn from_env() -> Result<Self, String> {
        Self::from_source(&Environment)
    }

    pub fn from_source(source: &dyn Source) -> Result<Self, String> {
        let listen_addr_text = source
            .get("LISTEN_ADDR")
            .unwrap_or_else(|| DEFAULT_LISTEN_ADDR.into());
        let listen_addr: SocketAddr = listen_addr_text
            .parse()
            .map_err(|_| format!("LISTEN_ADDR `{listen_addr_text}` is not an address:port"))?;
        let database_pool_size = match source.get("DATABASE_POOL_SIZE") {
            None => None,
            Some(text) => Some(
                text.parse::<u32>()
                    .ok()
                    .filter(|size| *size > 0)
                    .ok_or_else(|| {
                        format!("DATABASE_POOL_SIZE `{text}` is not a positive number")
                    })?,
            ),
        };
        let admin_mode = match source.get("ADMIN_MODE").as_deref() {
            None | Some("false") | Some("0") | Some("no") => false,
            Some("true") | Some("1") | Some("yes") => true,
            Some(other) => return Err(format!("ADMIN_MODE `{other}` is not true or false")),
        };
        let log_format = match source.get("LOG_FORMAT").as_deref() {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => return Err(format!("LOG_FORMAT `{other}` is not text or json")),
        };
        let metrics_addr = match source.get("METRICS_ADDR") {
            None => None,
            Some(text) => Some(
                text.parse::<SocketAddr>()
                    .map_err(|_| format!("METRICS_ADDR `{text}` is not an address:port"))?,
            ),
        };
        let metrics_allowed_cidrs = source
            .get("METRICS_ALLOWED_CIDRS")
            .unwrap_or_else(|| DEFAULT_METRICS_ALLOWED_CIDRS.into())
            .split(',')
            .map(str::trim)
            .filter(|cidr| !cidr.is_empty())
            .map(|cidr| {
                cidr.parse::<ipnet::IpNet>()
                    .or_else(|_| cidr.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| {
                        format!("METRICS_ALLOWED_CIDRS: `{cidr}` is not an address or CIDR block")
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let initial_root_token = match (
            source.get("INITIAL_ROOT_TOKEN"),
            source.get("INITIAL_ROOT_TOKEN_FILE"),
        ) {
            (Some(token), _) => Some(strong_token("INITIAL_ROOT_TOKEN", token.trim())?),
            (None, Some(path)) => {
                let token = std::fs::read_to_string(&path)
                    .map_err(|error| format!("INITIAL_ROOT_TOKEN_FILE {path}: {error}"))?;
                Some(strong_token("INITIAL_ROOT_TOKEN_FILE", token.trim())?)
            }
            (None, None) => None,
        };
        let database_url = source
            .get("DATABASE_URL")
            .unwrap_or_else(|| DEFAULT_DATABASE_URL.into());
        check_database_url(&database_url)?;
        let external_url = source
            .get("EXTERNAL_URL")
            .unwrap_or_else(|| format!("http://localhost:{}", listen_addr.port()));
        Ok(Self {
            database_url: Secret::new(database_url),
            database_pool_size,
            listen_addr,
            data_dir: PathBuf::from(source.get("DATA_DIR").unwrap_or_else(|| "data".into())),
            external_url: external_url.trim_end_matches('/').to_string(),
            license_public_key_file: source.get("LICENSE_PUBLIC_KEY_FILE").map(PathBuf::from),
            license_issuer_name: source
                .get("LICENSE_ISSUER_NAME")
                .unwrap_or_else(|| DEFAULT_ISSUER_NAME.into()),
            initial_root_token,
            admin_mode,
            gitlab_version: source
                .get("GITLAB_VERSION")
                .unwrap_or_else(|| DEFAULT_GITLAB_VERSION.into()),
            log_format,
            metrics_addr,
            metrics_allowed_cidrs,
            limits: Limits::from_source(source)?,
            seat_alert_thresholds: seat_alert_thresholds(source)?,
            true_up_price: true_up_price(source)?,
            secrets_key: source.get("SECRETS_KEY").map(Secret::new),
            secrets_key_file: source.get("SECRETS_KEY_FILE").map(PathBuf::from),
            fleet_sync_interval: Duration::from_secs(
                60 * number(source, "FLEET_SYNC_INTERVAL_MINUTES", 60, 5..=10_080)?,
            ),
            outbound_allow_list: outbound_allow_list(source)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_outbound_allow_list_takes_blocks_addresses_and_names() {
        let config = Config::from_source(&[(
            "OUTBOUND_ALLOW_LIST",
            "127.0.0.0/8, ::1, GitLab.Example.com",
        )])
        .expect("config");
        let list = config.outbound_allow_list.expect("a list");
        let admitted = |host: &str| list.iter().any(|entry| entry.admits(host));
        for host in ["127.0.0.1", "127.9.9.9", "[::1]", "gitlab.example.com"] {
            assert!(admitted(host), "{host}");
        }
        for host in [
            "10.0.0.1",
            "[::2]",
            "example.com",
            "gitlab.example.com.evil",
        ] {
            assert!(!admitted(host), "{host}");
        }
        assert!(Config::from_source(&[("OUTBOUND_ALLOW_LIST", "a b")]).is_err());
        assert_eq!(
            Config::from_source(&[])
                .expect("defaults")
                .outbound_allow_list,
            None
        );
    }

    #[test]
    fn true_up_prices() {
        assert_eq!(
            Config::from_source(&[]).expect("defaults").true_up_price,
            None
        );
        let config = Config::from_source(&[("TRUE_UP_PRICE_PER_SEAT", "290.5")]).expect("price");
        assert_eq!(
            config.true_up_price,
            Some((
                crate::domain::true_up::Price { cents: 29_050 },
                "USD".to_string()
            ))
        );
        for (price, currency) in [
            ("-1", "USD"),
            ("1.234", "USD"),
            ("10", "EURO"),
            ("10", "12$"),
        ] {
            assert!(
                Config::from_source(&[
                    ("TRUE_UP_PRICE_PER_SEAT", price),
                    ("TRUE_UP_CURRENCY", currency)
                ])
                .is_err(),
                "{price} {currency}"
            );
        }
    }

    #[test]
    fn seat_alert_thresholds_are_percentages() {
        let config = Config::from_source(&[]).expect("defaults");
        assert_eq!(config.seat_alert_thresholds, [80, 90, 100]);
        let config =
            Config::from_source(&[("SEAT_ALERT_THRESHOLDS", "95%, 50,95")]).expect("custom");
        assert_eq!(config.seat_alert_thresholds, [50, 95]);
        let config = Config::from_source(&[("SEAT_ALERT_THRESHOLDS", "none")]).expect("off");
        assert!(config.seat_alert_thresholds.is_empty());
        for bad in ["0", "eighty", "1001"] {
            assert!(
                Config::from_source(&[("SEAT_ALERT_THRESHOLDS", bad)]).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn defaults() {
        let config = Config::from_source(&[]).expect("defaults");
        assert_eq!(config.database_url.expose(), DEFAULT_DATABASE_URL);
        assert_eq!(config.listen_addr.to_string(), DEFAULT_LISTEN_ADDR);
        assert_eq!(config.data_dir, PathBuf::from("data"));
        assert_eq!(config.external_url, "http://localhost:8080");
        assert!(!config.admin_mode);
    }

    #[test]
    fn secrets_are_redacted_in_debug() {
        let config = Config::from_source(&[
            ("INITIAL_ROOT_TOKEN", "glpat-supersecretvalue12345"),
            ("DATABASE_URL", "postgres://user:hunter2@db/x"),
        ])
        .expect("config");
        let debug = format!("{config:?}");
        assert!(!debug.contains("supersecret"));
        assert!(!debug.contains("hunter2"));
    }

    #[test]
    fn weak_root_tokens_and_urls_without_a_database_are_refused() {
        for weak in [
            "MyS3cretNotGlpat",
            "glpat-short",
            "glpat-0123456789012345678",
        ] {
            let error = Config::from_source(&[("INITIAL_ROOT_TOKEN", weak)]).expect_err(weak);
            assert!(error.contains("INITIAL_ROOT_TOKEN"), "{error}");
            assert!(!error.contains(weak), "the token is not repeated: {error}");
        }
        assert!(
            Config::from_source(&[("INITIAL_ROOT_TOKEN", "glpat-01234567890123456789")]).is_ok()
        );
        assert!(Config::from_source(&[("INITIAL_ROOT_TOKEN", "01234567890123456789")]).is_ok());
        for url in [
            "postgresql://",
            "postgres://u@h:5432",
            "postgres://u@h:5432/",
            "postgres://u@h/?sslmode=disable",
            "sqlite://",
            "sqlite:",
        ] {
            let error = Config::from_source(&[("DATABASE_URL", url)]).expect_err(url);
            assert!(error.contains("DATABASE_URL"), "{error}");
        }
        for url in [
            "postgres://u:p@h:5432/db",
            "postgresql://h/db?sslmode=disable",
            "postgres://u@h/?dbname=db",
            "sqlite://data/x.db",
            "sqlite:x.db",
        ] {
            assert!(
                Config::from_source(&[("DATABASE_URL", url)]).is_ok(),
                "{url}"
            );
        }
    }

    #[test]
    fn limits_have_defaults_and_bounds() {
        let config = Config::from_source(&[]).expect("defaults");
        assert_eq!(config.limits, Limits::default());
        let config = Config::from_source(&[
            ("HTTP_HEADER_READ_TIMEOUT_SECONDS", "3"),
            ("HOOK_CONCURRENCY", "8"),
        ])
        .expect("set");
        assert_eq!(config.limits.header_read_timeout, Duration::from_secs(3));
        assert_eq!(config.limits.hook_concurrency, 8);
        for (key, value) in [
            ("HTTP_KEEP_ALIVE_TIMEOUT_SECONDS", "0"),
            ("SHUTDOWN_TIMEOUT_SECONDS", "ten"),
            ("HOOK_CONCURRENCY", "1000"),
        ] {
            let error = Config::from_source(&[(key, value)]).expect_err(key);
            assert!(error.contains(key), "{error}");
        }
    }

    #[test]
    fn bad_values_are_named() {
        let error = Config::from_source(&[("LISTEN_ADDR", "nowhere")]).expect_err("bad");
        assert!(error.contains("LISTEN_ADDR"));
        let error = Config::from_source(&[("ADMIN_MODE", "maybe")]).expect_err("bad");
        assert!(error.contains("ADMIN_MODE"));
    }
}
