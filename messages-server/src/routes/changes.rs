//! The changes feed: `GET /threads/{thread_id}/changes?since=R&limit=L`, every message changed
//! after the client's position, in `rev` order, deleted ones as tombstones.

use http::{Request, StatusCode};
use hyper::body::Incoming;
use messages_core::{ChangesLimit, parse_position};

use super::messages::PathIds;
use super::{AppState, HttpResponse, json};
use crate::error::ApiError;

/// The query of a changes request.
struct ChangesQuery {
    since: i64,
    limit: ChangesLimit,
}

fn changes_query(query: Option<&str>) -> Result<ChangesQuery, ApiError> {
    let mut parsed = ChangesQuery {
        since: 0,
        limit: ChangesLimit::DEFAULT,
    };
    let (mut seen_since, mut seen_limit) = (false, false);
    for (name, value) in super::query_pairs(query.unwrap_or_default()) {
        match name.as_ref() {
            "since" => {
                if std::mem::replace(&mut seen_since, true) {
                    return Err(ApiError::bad_request("invalid_since", "give since once"));
                }
                parsed.since = parse_position("since", &value).map_err(|_| {
                    ApiError::bad_request("invalid_since", "since must be a non-negative integer")
                })?;
            }
            "limit" => {
                if std::mem::replace(&mut seen_limit, true) {
                    return Err(ApiError::bad_request("invalid_limit", "give limit once"));
                }
                parsed.limit = ChangesLimit::parse(&value).map_err(|_| {
                    ApiError::bad_request(
                        "invalid_limit",
                        "limit must be an integer from 1 to 1000",
                    )
                })?;
            }
            _ => {}
        }
    }
    Ok(parsed)
}

/// `GET /threads/{thread_id}/changes`
pub async fn list(
    state: &AppState,
    ids: PathIds,
    request: &Request<Incoming>,
) -> Result<HttpResponse, ApiError> {
    let query = changes_query(request.uri().query())?;
    let changes = state
        .service
        .changes(ids.thread(), query.since, query.limit)
        .await?;
    Ok(json(StatusCode::OK, changes.to_json()))
}
