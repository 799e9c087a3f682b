//! Pure rules: no HTTP, no SQL, no clock. Callers pass rows, counts and today's date.

pub mod add_ons;
pub mod cursors;
pub mod dormant;
pub mod fleet;
pub mod groups;
pub mod jobs;
pub mod ledger;
pub mod licenses;
pub mod members;
pub mod moderation;
pub mod scim;
pub mod seats;
pub mod settings;
pub mod subscription;
pub mod text;
pub mod throttle;
pub mod tokens;
pub mod true_up;
pub mod upload;
pub mod usage_csv;
pub mod users;
