//! gitlab-license-server: GitLab's license and seat APIs, self-hosted.
//!
//! Requests flow one way: `api` (extractors, handlers) → `services` (use cases) → `domain`
//! (pure rules) and `store` (SQL). `license_key` is the pure codec underneath.

pub mod api;
pub mod auth;
pub mod body;
pub mod bootstrap;
pub mod cache;
pub mod cli;
pub mod clock;
pub mod config;
pub mod domain;
pub mod error;
pub mod graphql;
pub mod http;
pub mod jobs;
pub mod keyfiles;
pub mod license_key;
pub mod logging;
pub mod memory;
pub mod metrics;
pub mod outbound;
pub mod policy;
pub mod rate_limits;
pub mod secrets;
pub mod server;
pub mod services;
pub mod state;
pub mod store;
pub mod web;
