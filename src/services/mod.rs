//! Use cases: each reads and writes through the store and applies the domain rules.

pub mod add_ons;
pub mod approvals;
pub mod audit;
pub mod dormant;
pub mod duo_bulk;
pub mod fleet;
pub mod groups;
pub mod hooks;
pub mod ledger;
pub mod license_changes;
pub mod license_check;
pub mod licenses;
pub mod scim;
pub mod seat_alerts;
pub mod seat_holders;
pub mod settings;
pub mod subscription;
pub mod throttles;
pub mod tokens;
pub mod true_up;
pub mod users;
pub mod web_sessions;
