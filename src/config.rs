//! Settings from the environment. Secrets are wrapped so that `Debug` never prints them.

use std::net::SocketAddr;
use std::path::PathBuf;

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
}

pub const DEFAULT_DATABASE_URL: &str = "sqlite://data/gitlab-license-server.db";
pub const DEFAULT_LISTEN_ADDR: &str = "127.0.0.1:8080";
pub const DEFAULT_ISSUER_NAME: &str = "the license issuer";
pub const DEFAULT_GITLAB_VERSION: &str = "18.6.0-ee";
pub const DEFAULT_METRICS_ALLOWED_CIDRS: &str = "127.0.0.0/8,::1/128";

/// Where settings come from: the process environment in production, a map in tests.
pub trait Source {
    fn get(&self, key: &str) -> Option<String>;
}

pub struct Environment;

impl Source for Environment {
    fn get(&self, key: &str) -> Option<String> {
        std::env::var(key).ok().filter(|value| !value.is_empty())
    }
}

impl<const N: usize> Source for [(&str, &str); N] {
    fn get(&self, key: &str) -> Option<String> {
        self.iter()
            .find(|(name, _)| *name == key)
            .map(|(_, value)| value.to_string())
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
            (Some(token), _) => Some(Secret::new(token.trim())),
            (None, Some(path)) => {
                let token = std::fs::read_to_string(&path)
                    .map_err(|error| format!("INITIAL_ROOT_TOKEN_FILE {path}: {error}"))?;
                Some(Secret::new(token.trim()))
            }
            (None, None) => None,
        };
        let external_url = source
            .get("EXTERNAL_URL")
            .unwrap_or_else(|| format!("http://localhost:{}", listen_addr.port()));
        Ok(Self {
            database_url: Secret::new(
                source
                    .get("DATABASE_URL")
                    .unwrap_or_else(|| DEFAULT_DATABASE_URL.into()),
            ),
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
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            ("INITIAL_ROOT_TOKEN", "glpat-supersecretvalue123"),
            ("DATABASE_URL", "postgres://user:hunter2@db/x"),
        ])
        .expect("config");
        let debug = format!("{config:?}");
        assert!(!debug.contains("supersecret"));
        assert!(!debug.contains("hunter2"));
    }

    #[test]
    fn bad_values_are_named() {
        let error = Config::from_source(&[("LISTEN_ADDR", "nowhere")]).expect_err("bad");
        assert!(error.contains("LISTEN_ADDR"));
        let error = Config::from_source(&[("ADMIN_MODE", "maybe")]).expect_err("bad");
        assert!(error.contains("ADMIN_MODE"));
    }
}
