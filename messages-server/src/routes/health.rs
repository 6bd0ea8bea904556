//! Health routes: `/healthz` says the process runs, `/readyz` that its backends answer.

use http::StatusCode;

use super::{AppState, HttpResponse, json};
use crate::error::ApiError;

/// The process is alive.
pub fn alive() -> HttpResponse {
    json(StatusCode::OK, &b"{\"status\":\"ok\"}"[..])
}

/// The backends answer; 503 with the JSON error otherwise.
pub async fn ready(state: &AppState) -> Result<HttpResponse, ApiError> {
    state.service.ready().await?;
    Ok(json(StatusCode::OK, &b"{\"status\":\"ready\"}"[..]))
}
