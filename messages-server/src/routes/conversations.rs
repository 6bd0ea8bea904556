//! Reply conversations as the caller follows them: following a root, their position in its
//! replies, and their inbox of followed conversations. Private to the caller, like read
//! positions: every route reads the user from the request's identity.

use http::{Request, StatusCode};
use messages_core::InboxCursor;
use serde::Deserialize;

use super::path::PathIds;
use super::read::ListQuery;
use super::request_body::{ReadBody, parse_json, read_body};
use super::response::{HttpResponse, json};
use super::state::AppState;
use crate::error::ApiError;

/// `PUT` (follow) or `DELETE` (stop following) `/threads/{t}/messages/{id}/follow`: the
/// caller's state in the conversation.
pub async fn follow<B>(
    state: &AppState,
    ids: PathIds,
    request: &Request<B>,
    on: bool,
) -> Result<HttpResponse, ApiError> {
    let user = state.auth.user(request.headers())?;
    let conversation = state
        .service
        .follow(ids.thread(), ids.message()?, user, on)
        .await?;
    Ok(json(StatusCode::OK, conversation.to_json()))
}

/// `{"seq": N}`: read the replies up to N.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MarkBody {
    seq: i64,
}

/// `PUT /threads/{t}/messages/{id}/replies/read`: moves the caller's position in the root's
/// replies forward; their state after it.
pub async fn mark_read<B: ReadBody>(
    state: &AppState,
    ids: PathIds,
    request: Request<B>,
) -> Result<HttpResponse, ApiError> {
    let user = state.auth.user(request.headers())?;
    let (thread, root) = (ids.thread(), ids.message()?);
    let body = read_body(request, state.max_body_bytes, state.body_read_timeout).await?;
    let body: MarkBody = parse_json(&body)?;
    if body.seq < 0 {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            "seq must be 0 or more".to_owned(),
        ));
    }
    let conversation = state
        .service
        .mark_replies_read(thread, root, user, body.seq)
        .await?;
    Ok(json(StatusCode::OK, conversation.to_json()))
}

/// `GET /replies/inbox?threads=<ids>&limit=&cursor=`: the caller's followed conversations in
/// those threads, the most recent reply first.
pub async fn inbox<B>(state: &AppState, request: &Request<B>) -> Result<HttpResponse, ApiError> {
    let user = state.auth.user(request.headers())?;
    let list = ListQuery::parse(request, |_, _| Ok(()))?;
    let after = list.cursor.map(|c| InboxCursor::decode(&c)).transpose()?;
    let inbox = state
        .service
        .inbox(user, &list.threads, after, list.size)
        .await?;
    Ok(json(StatusCode::OK, inbox.to_json()))
}
