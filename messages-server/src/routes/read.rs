//! Read-state routes: the caller's position in a thread, and unread counts for many threads.
//! A position is the caller's own: every route reads it from the request's identity, so no
//! one can read or move another user's.

use http::{Request, StatusCode};
use messages_core::{NewestCursor, PageSize, ReadMark, ThreadId, ThreadList, states_to_json};
use serde::Deserialize;

use super::path::PathIds;
use super::request_body::ReadBody;
use super::request_body::parse_json;
use super::request_body::read_body;
use super::response::{HttpResponse, json};
use super::state::AppState;
use crate::error::ApiError;

/// `{"seq": N}` (read up to N) or `{"unread_from": S}` (unread from S on).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MarkBody {
    #[serde(default)]
    seq: Option<i64>,
    #[serde(default)]
    unread_from: Option<i64>,
}

fn invalid(message: &str) -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
        message.to_owned(),
    )
}

/// `PUT /threads/{thread_id}/read`: moves the caller's position; answers it with the count.
pub async fn mark<B: ReadBody>(
    state: &AppState,
    ids: PathIds,
    request: Request<B>,
) -> Result<HttpResponse, ApiError> {
    let user = state.auth.user(request.headers())?;
    let body = read_body(request, state.max_body_bytes, state.body_read_timeout).await?;
    let body: MarkBody = parse_json(&body)?;
    let mark = match (body.seq, body.unread_from) {
        (Some(seq), None) => ReadMark::read_to(seq),
        (None, Some(seq)) => ReadMark::unread_from(seq),
        _ => return Err(invalid("give exactly one of seq and unread_from")),
    }?;
    let read = state.service.mark_read(ids.thread(), user, mark).await?;
    Ok(json(StatusCode::OK, read.to_json()))
}

/// `GET /threads/{thread_id}/read`: the caller's position (0 when never set) and the count.
pub async fn get<B>(
    state: &AppState,
    ids: PathIds,
    request: &Request<B>,
) -> Result<HttpResponse, ApiError> {
    let user = state.auth.user(request.headers())?;
    let one = ThreadList::new(vec![ids.thread()])?;
    let mut states = state.service.read_states(user, &one).await?;
    match states.pop() {
        Some(read) => Ok(json(StatusCode::OK, read.to_json())),
        None => Err(ApiError::from(messages_core::Error::internal(
            "read state",
            "the store answered no state for the thread asked",
        ))),
    }
}

/// `GET /unread?threads=<id>,<id>,...`: the caller's state in each thread, in that order.
pub async fn unread<B>(state: &AppState, request: &Request<B>) -> Result<HttpResponse, ApiError> {
    let user = state.auth.user(request.headers())?;
    let mut threads = None;
    for (name, value) in super::query::query_pairs(request.uri().query().unwrap_or_default()) {
        if name == "threads" {
            threads = Some(parse_threads(&value)?);
        }
    }
    let threads = threads.ok_or_else(|| {
        ApiError::bad_request(
            "invalid_threads",
            "threads: give 1 to 200 thread ids, comma-separated",
        )
    })?;
    let states = state.service.read_states(user, &threads).await?;
    Ok(json(StatusCode::OK, states_to_json(&states)))
}

/// A comma list of 1 to [`ThreadList::MAX`] thread ids. Past the most, the rest of the list is
/// not parsed.
pub(super) fn parse_threads(list: &str) -> Result<ThreadList, ApiError> {
    let mut threads = Vec::new();
    for raw in list.split(',').filter(|s| !s.is_empty()) {
        if threads.len() > ThreadList::MAX {
            break;
        }
        let thread = ThreadId::parse(raw.trim()).map_err(|_| {
            ApiError::bad_request(
                "invalid_thread_id",
                format!("threads: {raw:?} is not a UUID"),
            )
        })?;
        threads.push(thread);
    }
    let none = threads.is_empty();
    ThreadList::new(threads).map_err(|_| {
        ApiError::bad_request(
            "invalid_threads",
            if none {
                format!(
                    "threads: give 1 to {} thread ids, comma-separated",
                    ThreadList::MAX
                )
            } else {
                format!("threads: at most {} ids", ThreadList::MAX)
            },
        )
    })
}

/// The query of a list over the threads a client names (`/replies/inbox`, `/mentions`):
/// `threads` (required), `limit`, `cursor` (still encoded); any other parameter goes to the
/// route's own reader.
pub(super) struct ListQuery {
    pub(super) threads: ThreadList,
    pub(super) size: PageSize,
    pub(super) cursor: Option<String>,
}

impl ListQuery {
    pub(super) fn parse<B>(
        request: &Request<B>,
        mut other: impl FnMut(&str, &str) -> Result<(), ApiError>,
    ) -> Result<Self, ApiError> {
        let (mut threads, mut size, mut cursor) = (None, PageSize::DEFAULT, None);
        for (name, value) in super::query::query_pairs(request.uri().query().unwrap_or_default()) {
            match name.as_ref() {
                "threads" => threads = Some(parse_threads(&value)?),
                "limit" => {
                    size = PageSize::parse(&value)
                        .map_err(|e| ApiError::refused("invalid_limit", e))?;
                }
                "cursor" if !value.is_empty() => cursor = Some(value.into_owned()),
                name => other(name, &value)?,
            }
        }
        let threads = threads.ok_or_else(|| {
            ApiError::bad_request(
                "invalid_threads",
                "threads: give 1 to 200 thread ids, comma-separated",
            )
        })?;
        Ok(ListQuery {
            threads,
            size,
            cursor,
        })
    }
}

/// `GET /mentions?threads=<ids>&limit=&cursor=&unread_only=`: the live messages of those
/// threads others wrote that name the caller or the room, newest first.
pub async fn mentions<B>(state: &AppState, request: &Request<B>) -> Result<HttpResponse, ApiError> {
    let user = state.auth.user(request.headers())?;
    let mut unread_only = false;
    let list = ListQuery::parse(request, |name, value| {
        if name == "unread_only" {
            unread_only = match value {
                "true" | "1" => true,
                "false" | "0" | "" => false,
                other => {
                    return Err(ApiError::bad_request(
                        "invalid_unread_only",
                        format!("unread_only: {other:?} is neither true nor false"),
                    ));
                }
            };
        }
        Ok(())
    })?;
    let after = list.cursor.map(|c| NewestCursor::decode(&c)).transpose()?;
    let (threads, size) = (list.threads, list.size);
    let page = state
        .service
        .mentions(user, &threads, after, size, unread_only)
        .await?;
    Ok(json(StatusCode::OK, page.to_json()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thread_lists_are_checked() {
        let id = "0193a1a0-0000-7000-8000-000000000001";
        let len = |list: &str| parse_threads(list).map(|t| t.as_slice().len()).ok();
        assert_eq!(len(id), Some(1));
        assert_eq!(len(&format!("{id},{id}")), Some(2));
        assert!(parse_threads("").is_err());
        assert!(parse_threads("not-a-uuid").is_err());
        let many = vec![id; ThreadList::MAX + 1].join(",");
        assert!(parse_threads(&many).is_err());
        let most = vec![id; ThreadList::MAX].join(",");
        assert_eq!(len(&most), Some(ThreadList::MAX));
    }
}
