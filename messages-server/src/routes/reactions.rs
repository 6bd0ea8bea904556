//! Reaction routes: the caller adds or removes their reaction, and anyone pages who reacted.

use http::{Request, StatusCode};
use messages_core::{ReactionChange, ReactorsLimit, Removal, UserId};

use super::path::PathIds;
use super::response::{HttpResponse, json};
use super::state::AppState;
use crate::auth::Caller;
use crate::error::ApiError;

/// `PUT /threads/{thread_id}/messages/{message_id}/reactions/{emoji}`: 201 with the message
/// when the reaction was added, 200 when the caller already held it (nothing changed).
pub async fn add(
    state: &AppState,
    mut ids: PathIds,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    let id = ids.message()?;
    let user = caller.user;
    let emoji = ids.emoji()?;
    let reacted = state
        .service
        .react(ids.thread(), id, user, emoji, ReactionChange::Add)
        .await?;
    let status = if reacted.changed {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(json(status, reacted.message.to_json()))
}

/// `DELETE /threads/{thread_id}/messages/{message_id}/reactions/{emoji}`: 204 whether or not
/// the user held the reaction. The caller's own, or with `?user=<id>` a moderator removes
/// another user's.
pub async fn remove<B>(
    state: &AppState,
    mut ids: PathIds,
    caller: Caller,
    request: &Request<B>,
) -> Result<HttpResponse, ApiError> {
    let id = ids.message()?;
    let mut user = caller.user;
    for (name, value) in super::query::query_pairs(request.uri().query().unwrap_or_default()) {
        if name == "user" {
            user = UserId::parse(&value).map_err(|_| {
                ApiError::bad_request("invalid_user_id", "user must be a user id (UUID)")
            })?;
        }
    }
    if user != caller.user && !caller.moderator {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "only a moderator may remove another user's reaction",
        ));
    }
    let emoji = ids.emoji()?;
    state
        .service
        .react(ids.thread(), id, user, emoji, ReactionChange::Remove)
        .await?;
    let mut response = HttpResponse::default();
    *response.status_mut() = StatusCode::NO_CONTENT;
    Ok(response)
}

/// `DELETE /threads/{thread_id}/messages/{message_id}/reactions`: a moderator clears every
/// reaction of the message; 204 whether or not it had any.
pub async fn clear(
    state: &AppState,
    ids: PathIds,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    let id = ids.message()?;
    if !caller.moderator {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "only a moderator may clear a message's reactions",
        ));
    }
    let removal = Removal::new(caller.user, true, None)?;
    state
        .service
        .clear_reactions(ids.thread(), id, &removal)
        .await?;
    let mut response = HttpResponse::default();
    *response.status_mut() = StatusCode::NO_CONTENT;
    Ok(response)
}

/// `GET /threads/{thread_id}/messages/{message_id}/reactions/{emoji}?after=<user id>&limit=`:
/// everyone who holds the emoji, by user id, `limit` (1 to 1,000, default 100) at a time.
pub async fn list<B>(
    state: &AppState,
    mut ids: PathIds,
    request: &Request<B>,
) -> Result<HttpResponse, ApiError> {
    let id = ids.message()?;
    let emoji = ids.emoji()?;
    let mut after = None;
    let mut limit = ReactorsLimit::DEFAULT;
    for (name, value) in super::query::query_pairs(request.uri().query().unwrap_or_default()) {
        match name.as_ref() {
            "after" if !value.is_empty() => {
                after = Some(UserId::parse(&value).map_err(|_| {
                    ApiError::bad_request("invalid_cursor", "after must be a user id")
                })?);
            }
            "limit" => {
                limit = ReactorsLimit::parse(&value)
                    .map_err(|e| ApiError::refused("invalid_limit", e))?;
            }
            _ => {}
        }
    }
    let page = state
        .service
        .reactors(ids.thread(), id, &emoji, after, limit)
        .await?;
    Ok(json(StatusCode::OK, page.to_json()))
}
