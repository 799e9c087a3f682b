//! `/-/health`, `/-/liveness`, `/-/readiness` (the last one checks the database).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(health))
        .routes(routes!(liveness))
        .routes(routes!(readiness))
}

/// GitLab's probe answer: `ok` or `failed`, with the database check on readiness.
#[derive(Debug, Clone, Serialize, ToSchema)]
struct Probe {
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    db_check: Option<Vec<Check>>,
}

/// One check of a readiness probe.
#[derive(Debug, Clone, Serialize, ToSchema)]
struct Check {
    status: &'static str,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
}

#[utoipa::path(get, operation_id = "health_health", path = "/-/health", tag = "operations", summary = "Health probe", responses((status = 200, description = "OK", body = String, content_type = "text/plain")))]
async fn health() -> &'static str {
    "GitLab OK"
}

#[utoipa::path(get, operation_id = "health_liveness", path = "/-/liveness", tag = "operations", summary = "Liveness probe", responses((status = 200, description = "OK", body = Probe)))]
async fn liveness() -> Json<Probe> {
    Json(Probe {
        status: "ok",
        db_check: None,
    })
}

#[utoipa::path(get, operation_id = "health_readiness", path = "/-/readiness", tag = "operations", summary = "Readiness probe (503 while the database is unreachable or not at this build's schema)", responses((status = 200, description = "OK", body = Probe), (status = 503, description = "Not ready", body = Probe)))]
async fn readiness(State(state): State<AppState>) -> impl IntoResponse {
    // A pool waiting for a dead database would hang the probe; answer within two seconds.
    let check = tokio::time::timeout(
        std::time::Duration::from_secs(2),
        state.store.check_schema(),
    )
    .await;
    match check
        .map_err(|_| "database unreachable (timed out)".to_string())
        .and_then(|result| result)
    {
        Ok(()) => (
            StatusCode::OK,
            Json(Probe {
                status: "ok",
                db_check: Some(vec![Check {
                    status: "ok",
                    message: None,
                }]),
            }),
        ),
        Err(error) => {
            tracing::warn!(error, "readiness: not ready");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(Probe {
                    status: "failed",
                    db_check: Some(vec![Check {
                        status: "failed",
                        message: Some(error),
                    }]),
                }),
            )
        }
    }
}
