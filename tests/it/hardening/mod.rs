//! The adversarial suite: the real binary attacked as a hostile or careless peer would —
//! requests that could crash it, batches that multiply work, slow and idle sockets, a hanging
//! hook receiver, a token without Admin Mode on every route, a database outage — each bounded
//! in time and traffic, each on SQLite and PostgreSQL (the outage on PostgreSQL, the only
//! backend reached over a network).

mod access_log;
mod admin;
mod audit;
mod errors;
mod graphql;
mod hooks;
mod outage;
mod startup;
mod timeouts;
