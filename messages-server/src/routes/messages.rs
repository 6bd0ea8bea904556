//! Message routes: create, edit, delete and list, translating HTTP into service calls.

use http::{HeaderMap, Request, StatusCode};
use messages_core::{
    BulkIds, Created, Cursor, IdempotencyKey, MessageId, MessageKind, MessagePatch, NewMessage,
    PageQuery, PageSize, Removal, parse_position,
};
use serde::Deserialize;

use super::path::PathIds;
use super::request_body::ReadBody;
use super::request_body::{parse_json, read_body};
use super::response::{HttpResponse, json};
use super::state::AppState;
use crate::auth::Caller;
use crate::body::Body;
use crate::error::ApiError;
use crate::limits::RoomMention;

fn idempotency_key(headers: &HeaderMap) -> Result<Option<IdempotencyKey>, ApiError> {
    let Some(raw) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    // A key that is not text is refused in the same words as one of the wrong length.
    IdempotencyKey::parse(raw.to_str().unwrap_or_default())
        .map(Some)
        .map_err(|e| ApiError::refused("invalid_idempotency_key", e))
}

#[derive(Deserialize)]
struct CreateBody {
    content: String,
    #[serde(rename = "type", default)]
    kind: Option<MessageKind>,
    #[serde(default)]
    paths: Option<Vec<String>>,
    #[serde(default)]
    reply_to: Option<MessageId>,
    /// Checked in `mentions`, which names the entry it refuses.
    #[serde(default)]
    mentions: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct UpdateBody {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    paths: Option<Vec<String>>,
    #[serde(default)]
    mentions: Option<serde_json::Value>,
}

/// `POST /threads/{thread_id}/messages`
pub async fn create<B: ReadBody>(
    state: &AppState,
    ids: PathIds,
    caller: Caller,
    request: Request<B>,
) -> Result<HttpResponse, ApiError> {
    let user = caller.user;
    let key = idempotency_key(request.headers())?;
    let body = read_body(request, state.max_body_bytes, state.body_read_timeout).await?;
    let body: CreateBody = parse_json(&body)?;
    let limits = state.service.limits();
    let mentions = super::mentions::parse(body.mentions, limits)?;
    let room = mentions.as_ref().is_some_and(|m| m.room);
    let new = NewMessage::new(
        body.kind.unwrap_or_default(),
        body.content,
        body.paths.unwrap_or_default(),
        limits,
    )?
    .replying_to(body.reply_to)
    .mentioning(mentions);
    // Taken once the request is known to be valid; given back unless a new message is stored.
    let taken = match room {
        true => state.limits.take_room_mention(&caller).await?,
        false => RoomMention::none(),
    };
    let created = state.service.create(ids.thread(), user, new, key).await;
    let stored = matches!(created, Ok(Created::New(_) | Created::Reply { .. }));
    state.limits.settle_room_mention(taken, stored).await;
    let created = created?;
    let mut response = json(StatusCode::CREATED, created.message().to_json());
    if let Created::Replayed(_) = created {
        response.headers_mut().insert(
            crate::limits::IDEMPOTENT_REPLAYED,
            http::HeaderValue::from_static("true"),
        );
    }
    Ok(response)
}

/// `GET /threads/{thread_id}/messages/{message_id}`: the message in its current state; a 404
/// when it is unknown, deleted or another thread's.
pub async fn get(state: &AppState, ids: PathIds) -> Result<HttpResponse, ApiError> {
    let message = state.service.get(ids.thread(), ids.message()?).await?;
    Ok(json(StatusCode::OK, message.to_json()))
}

/// `GET /threads/{thread_id}/messages/{message_id}/edits`: the message's versions, oldest
/// first, the current one last; a 404 as for the message.
pub async fn edits(state: &AppState, ids: PathIds) -> Result<HttpResponse, ApiError> {
    let history = state.service.history(ids.thread(), ids.message()?).await?;
    Ok(json(StatusCode::OK, history.to_json()))
}

/// `PUT /threads/{thread_id}/messages/{message_id}`
pub async fn update<B: ReadBody>(
    state: &AppState,
    ids: PathIds,
    caller: Caller,
    request: Request<B>,
) -> Result<HttpResponse, ApiError> {
    let id = ids.message()?;
    let user = caller.user;
    let body = read_body(request, state.max_body_bytes, state.body_read_timeout).await?;
    let body: UpdateBody = parse_json(&body)?;
    let limits = state.service.limits();
    let mentions = super::mentions::parse(body.mentions, limits)?;
    let room = mentions.as_ref().is_some_and(|m| m.room);
    let patch = MessagePatch::with_mentions(body.content, body.paths, mentions, limits)?;
    // An edit that keeps a message addressed to the room reaches no one new: no room mention.
    let taken = match room && !addresses_room(state, &ids, id).await {
        true => state.limits.take_room_mention(&caller).await?,
        false => RoomMention::none(),
    };
    let message = state.service.update(ids.thread(), id, user, patch).await;
    state
        .limits
        .settle_room_mention(taken, message.is_ok())
        .await;
    let message = message?;
    Ok(json(StatusCode::OK, message.to_json()))
}

/// Whether message `id` addresses the room now (false when it cannot be read: the edit then
/// answers why).
async fn addresses_room(state: &AppState, ids: &PathIds, id: MessageId) -> bool {
    match state.service.get(ids.thread(), id).await {
        Ok(message) => message.mentions.is_some_and(|m| m.room),
        Err(_) => false,
    }
}

/// `{"reason": "..."}`, the optional body of a removal.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RemoveBody {
    #[serde(default)]
    reason: Option<String>,
}

/// `DELETE /threads/{thread_id}/messages/{message_id}`: the author removes their message; a
/// moderator removes anyone's. An optional reason, as `?reason=` or a body `{"reason"}`.
pub async fn delete<B: ReadBody>(
    state: &AppState,
    ids: PathIds,
    caller: Caller,
    request: Request<B>,
) -> Result<HttpResponse, ApiError> {
    let id = ids.message()?;
    let mut reason = None;
    for (name, value) in super::query::query_pairs(request.uri().query().unwrap_or_default()) {
        if name == "reason" {
            reason = Some(value.into_owned());
        }
    }
    let body = read_body(request, state.max_body_bytes, state.body_read_timeout).await?;
    if !body.iter().all(u8::is_ascii_whitespace) {
        let body: RemoveBody = parse_json(&body)?;
        if body.reason.is_some() && reason.is_some() {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_field",
                "reason: give it in the query or in the body, not both",
            ));
        }
        reason = reason.or(body.reason);
    }
    let removal = Removal::new(caller.user, caller.moderator, reason)?;
    state.service.remove(ids.thread(), id, removal).await?;
    let mut response = HttpResponse::default();
    *response.status_mut() = StatusCode::NO_CONTENT;
    Ok(response)
}

/// `{"ids": [...], "reason"?}`, a bulk removal.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BulkDeleteBody {
    ids: Vec<MessageId>,
    #[serde(default)]
    reason: Option<String>,
}

/// `POST /threads/{thread_id}/messages/bulk-delete`: a moderator removes 1 to 100 messages of
/// the thread at once, all of them or none; 200 with the tombstones in the order given.
pub async fn bulk_delete<B: ReadBody>(
    state: &AppState,
    ids: PathIds,
    caller: Caller,
    request: Request<B>,
) -> Result<HttpResponse, ApiError> {
    if !caller.moderator {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "only a moderator may delete messages in bulk",
        ));
    }
    let body = read_body(request, state.max_body_bytes, state.body_read_timeout).await?;
    let body: BulkDeleteBody = parse_json(&body)?;
    let removal = Removal::new(caller.user, caller.moderator, body.reason)?;
    let messages = BulkIds::new(body.ids)?;
    let tombstones = state
        .service
        .remove_many(ids.thread(), messages, removal)
        .await?;
    let mut out = Vec::with_capacity(64 + 160 * tombstones.len());
    out.extend_from_slice(b"{\"deleted\":[");
    for (i, tombstone) in tombstones.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        tombstone.write_json(&mut out);
    }
    out.extend_from_slice(b"]}");
    Ok(json(StatusCode::OK, out))
}

/// Where a list request starts: at most one of `cursor` (or `before`), `after`,
/// `before_seq`, `after_seq` and `around`.
enum Position {
    Newest,
    BeforeCursor(Cursor),
    AfterCursor(Cursor),
    BeforeSeq(i64),
    AfterSeq(i64),
    Around(MessageId),
}

fn position_error(message: impl Into<String>) -> ApiError {
    ApiError::bad_request("invalid_cursor", message)
}

/// The query of a list request: its position and size.
fn page_query(query: Option<&str>) -> Result<(Position, PageSize), ApiError> {
    let mut size = PageSize::DEFAULT;
    let mut seen_limit = false;
    let mut position: Option<(&'static str, Position)> = None;
    for (name, value) in super::query::query_pairs(query.unwrap_or_default()) {
        // An empty position is the same as none, so a client may always send the parameter.
        let (param, parsed) = match name.as_ref() {
            "limit" => {
                if seen_limit {
                    return Err(ApiError::bad_request("invalid_limit", "give limit once"));
                }
                seen_limit = true;
                size =
                    PageSize::parse(&value).map_err(|e| ApiError::refused("invalid_limit", e))?;
                continue;
            }
            _ if value.is_empty() => continue,
            "cursor" | "before" => ("cursor", Position::BeforeCursor(Cursor::decode(&value)?)),
            "after" => ("after", Position::AfterCursor(Cursor::decode(&value)?)),
            "before_seq" => (
                "before_seq",
                Position::BeforeSeq(
                    parse_position("before_seq", &value)
                        .map_err(|_| position_error("before_seq must be a non-negative integer"))?,
                ),
            ),
            "after_seq" => (
                "after_seq",
                Position::AfterSeq(
                    parse_position("after_seq", &value)
                        .map_err(|_| position_error("after_seq must be a non-negative integer"))?,
                ),
            ),
            "around" => (
                "around",
                Position::Around(MessageId::parse(&value).map_err(|_| {
                    ApiError::bad_request("invalid_message_id", "around must be a message id")
                })?),
            ),
            _ => continue,
        };
        if let Some((earlier, _)) = position.replace((param, parsed)) {
            return Err(position_error(format!(
                "give one position: {earlier} and {param} were both given (cursor, before, \
                 after, before_seq, after_seq and around exclude each other)"
            )));
        }
    }
    Ok((position.map_or(Position::Newest, |(_, p)| p), size))
}

/// `GET /threads/{thread_id}/messages/{message_id}/replies`: a root's live replies, oldest
/// first; `cursor` (or `after`) and `after_seq` read on from where a page ended.
pub async fn replies<B>(
    state: &AppState,
    ids: PathIds,
    request: &Request<B>,
) -> Result<HttpResponse, ApiError> {
    let (position, size) = page_query(request.uri().query())?;
    let (service, thread, root) = (&state.service, ids.thread(), ids.message()?);
    let after = match position {
        Position::Newest => 0,
        Position::AfterSeq(seq) => seq,
        Position::BeforeCursor(c) | Position::AfterCursor(c) => {
            Box::pin(service.resolve(thread, c)).await?
        }
        Position::BeforeSeq(_) | Position::Around(_) => {
            return Err(position_error(
                "replies read forward: give cursor, after or after_seq",
            ));
        }
    };
    let page = Box::pin(service.replies(thread, root, after, size)).await?;
    Ok(json(StatusCode::OK, page.to_json()))
}

/// `GET /threads/{thread_id}/messages`
pub async fn list<B>(
    state: &AppState,
    ids: PathIds,
    request: &Request<B>,
) -> Result<HttpResponse, ApiError> {
    let (position, size) = page_query(request.uri().query())?;
    let service = &state.service;
    let thread = ids.thread();
    let query = match position {
        Position::Newest => PageQuery::Newest,
        Position::BeforeSeq(seq) => PageQuery::Before(seq),
        Position::AfterSeq(seq) => PageQuery::After(seq),
        Position::BeforeCursor(c) => PageQuery::Before(Box::pin(service.resolve(thread, c)).await?),
        Position::AfterCursor(c) => PageQuery::After(Box::pin(service.resolve(thread, c)).await?),
        Position::Around(id) => {
            let body = Box::pin(service.around_json(thread, id, size)).await?;
            return Ok(json(StatusCode::OK, body));
        }
    };
    let page = service.page_json(thread, query, size).await?;
    Ok(json(StatusCode::OK, Body::from_parts(page.into_parts())))
}
