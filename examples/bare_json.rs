//! The benchmark baseline: a bare axum handler answering a license-sized JSON object, with no
//! authentication, database or middleware. `scripts/bench.sh` measures `GET /api/v4/license`
//! against it in the same run.
//!
//!     cargo run --release --example bare_json -- 127.0.0.1:18081

use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

async fn license() -> Json<Value> {
    Json(json!({
        "id": 1, "plan": "ultimate", "created_at": "2026-01-01T00:00:00.000Z",
        "starts_at": "2026-01-01", "expires_at": "2027-01-01", "historical_max": 0,
        "maximum_user_count": 1, "licensee": {"Name": "Bench", "Email": "bench@example.org", "Company": "Bench"},
        "add_ons": {}, "expired": false, "overage": 0, "user_limit": 100, "active_users": 1
    }))
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let address = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:18081".into());
    let listener = tokio::net::TcpListener::bind(&address).await?;
    axum::serve(listener, Router::new().route("/license", get(license))).await
}
