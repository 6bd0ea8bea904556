//! The changes feed: `GET /threads/{thread_id}/changes?since=R&limit=L`, every message changed
//! after the client's position, in `rev` order, deleted ones as tombstones; with `&wait=S`
//! (up to 30), a long poll that answers as soon as there is a change, or after S seconds.

use std::time::Duration;

use http::{Request, StatusCode};
use messages_core::{ChangesLimit, parse_position};

use super::path::PathIds;
use super::response::{HttpResponse, json};
use super::state::AppState;
use crate::config::StreamSettings;
use crate::error::ApiError;

/// The query of a changes request.
struct ChangesQuery {
    since: i64,
    limit: ChangesLimit,
    wait: Option<Duration>,
}

fn changes_query(query: Option<&str>) -> Result<ChangesQuery, ApiError> {
    let mut parsed = ChangesQuery {
        since: 0,
        limit: ChangesLimit::DEFAULT,
        wait: None,
    };
    let (mut seen_since, mut seen_limit) = (false, false);
    for (name, value) in super::query::query_pairs(query.unwrap_or_default()) {
        match name.as_ref() {
            "since" => {
                if std::mem::replace(&mut seen_since, true) {
                    return Err(ApiError::bad_request("invalid_since", "give since once"));
                }
                parsed.since = parse_position("since", &value)
                    .map_err(|e| ApiError::refused("invalid_since", e))?;
            }
            "limit" => {
                if std::mem::replace(&mut seen_limit, true) {
                    return Err(ApiError::bad_request("invalid_limit", "give limit once"));
                }
                parsed.limit = ChangesLimit::parse(&value)
                    .map_err(|e| ApiError::refused("invalid_limit", e))?;
            }
            "wait" => {
                if parsed.wait.is_some() {
                    return Err(ApiError::bad_request("invalid_wait", "give wait once"));
                }
                let max = StreamSettings::MAX_WAIT.as_secs();
                let seconds = value
                    .parse::<u64>()
                    .ok()
                    .filter(|s| *s <= max && value.bytes().all(|b| b.is_ascii_digit()))
                    .ok_or_else(|| {
                        ApiError::bad_request(
                            "invalid_wait",
                            format!("wait must be a whole number of seconds from 0 to {max}"),
                        )
                    })?;
                parsed.wait = Some(Duration::from_secs(seconds));
            }
            _ => {}
        }
    }
    Ok(parsed)
}

/// `GET /threads/{thread_id}/changes`
pub async fn list<B>(
    state: &AppState,
    ids: PathIds,
    request: &Request<B>,
) -> Result<HttpResponse, ApiError> {
    let query = changes_query(request.uri().query())?;
    let thread = ids.thread();
    let mut changes = state
        .service
        .changes(thread, query.since, query.limit)
        .await?;
    let longest = state.streams.settings().long_poll_max;
    if let Some(wait) = query.wait.map(|w| w.min(longest)).filter(|w| !w.is_zero())
        && changes.changes.is_empty()
        && state
            .service
            .hub()
            .wait_past(thread, query.since, wait)
            .await
    {
        changes = state
            .service
            .changes(thread, query.since, query.limit)
            .await?;
    }
    Ok(json(StatusCode::OK, changes.to_json()))
}
