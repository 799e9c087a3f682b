//! One integration-test binary (one link step on slow machines), one module per area.

mod support;

mod api_auth;
mod api_groups_tokens;
mod api_instance;
mod api_license;
mod api_users;
mod backups;
mod cli;
mod codec_fuzz;
mod codec_rejections;
mod codec_round_trip;
mod eligible_pages;
mod explorer;
mod fleet;
mod fleet_cli;
mod fleet_page;
mod graphql_fidelity;
mod graphql_seats;
mod hardening;
mod hooks;
mod jobs;
mod ledger;
mod operations;
mod policy;
mod provisioning;
mod replicas;
mod rest_fidelity;
mod ruby_compat;
mod scale;
mod scim;
mod scim_page;
mod seat_intelligence;
mod server_process;
mod vectors;
mod web;
