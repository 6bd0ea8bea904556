//! Health routes: `/healthz` says the process runs, `/readyz` that its backends answer.

use http::StatusCode;

use super::response::{HttpResponse, json};
use super::state::AppState;
use crate::error::ApiError;

/// The process is alive.
pub fn alive() -> HttpResponse {
    json(StatusCode::OK, "{\"status\":\"ok\"}")
}

/// The store answers; 503 with the JSON error otherwise. The cache's state is reported but
/// does not make the service unready: without it requests read the store.
pub async fn ready(state: &AppState) -> Result<HttpResponse, ApiError> {
    state.service.ready().await?;
    let cache = if state.service.cache_ready().await.is_ok() {
        "ok"
    } else {
        "unavailable"
    };
    let body = serde_json::json!({ "status": "ready", "cache": cache });
    Ok(json(StatusCode::OK, body.to_string()))
}
