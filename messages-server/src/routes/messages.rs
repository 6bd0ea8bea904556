//! Message routes: create, edit, delete and list, translating HTTP into service calls.

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use hyper::body::Incoming;
use messages_core::{
    Created, Cursor, IdempotencyKey, MessageId, MessageKind, MessagePatch, NewMessage, PageQuery,
    PageSize, ThreadId,
};
use serde::Deserialize;
use serde_json::error::Category;

use super::{AppState, HttpResponse, json, read_body};
use crate::body::Body;
use crate::error::ApiError;

/// The ids in the path, parsed.
pub struct PathIds {
    thread: ThreadId,
    message: Option<MessageId>,
}

impl PathIds {
    /// Parses the path's thread and message ids; a malformed one is a 400.
    pub fn parse(thread: Option<&str>, message: Option<&str>) -> Result<Self, ApiError> {
        let thread = thread.ok_or_else(ApiError::no_route).and_then(|t| {
            ThreadId::parse(t)
                .map_err(|_| ApiError::bad_request("invalid_thread_id", "thread_id must be a UUID"))
        })?;
        let message = message
            .map(|m| {
                MessageId::parse(m).map_err(|_| {
                    ApiError::bad_request("invalid_message_id", "message_id must be a UUID")
                })
            })
            .transpose()?;
        Ok(PathIds { thread, message })
    }

    fn message(&self) -> Result<MessageId, ApiError> {
        self.message.ok_or_else(ApiError::no_route)
    }
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<IdempotencyKey>, ApiError> {
    let Some(raw) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let invalid = || {
        ApiError::bad_request(
            "invalid_idempotency_key",
            "Idempotency-Key must be 1 to 128 visible ASCII characters",
        )
    };
    let key = raw.to_str().map_err(|_| invalid())?;
    IdempotencyKey::parse(key).map(Some).map_err(|_| invalid())
}

/// Parses a JSON body: malformed JSON is a 400, well-formed JSON of the wrong shape a 422.
fn parse_json<T: for<'de> Deserialize<'de>>(body: &Bytes) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|error| match error.classify() {
        Category::Data => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            error.to_string(),
        ),
        Category::Io | Category::Syntax | Category::Eof => ApiError::bad_request(
            "invalid_json",
            format!("the body is not valid JSON: {error}"),
        ),
    })
}

#[derive(Deserialize)]
struct CreateBody {
    content: String,
    #[serde(rename = "type", default)]
    kind: Option<MessageKind>,
    #[serde(default)]
    paths: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct UpdateBody {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    paths: Option<Vec<String>>,
}

/// `POST /threads/{thread_id}/messages`
pub async fn create(
    state: &AppState,
    ids: PathIds,
    request: Request<Incoming>,
) -> Result<HttpResponse, ApiError> {
    let user = state.auth.user(request.headers())?;
    let key = idempotency_key(request.headers())?;
    let body = read_body(request, state.max_body_bytes).await?;
    let body: CreateBody = parse_json(&body)?;
    let new = NewMessage::new(
        body.kind.unwrap_or_default(),
        body.content,
        body.paths.unwrap_or_default(),
        state.service.limits(),
    )?;
    let created = state.service.create(ids.thread, user, new, key).await?;
    let mut response = json(StatusCode::CREATED, created.message().to_json());
    if let Created::Replayed(_) = created {
        response.headers_mut().insert(
            "idempotent-replayed",
            http::HeaderValue::from_static("true"),
        );
    }
    Ok(response)
}

/// `PUT /threads/{thread_id}/messages/{message_id}`
pub async fn update(
    state: &AppState,
    ids: PathIds,
    request: Request<Incoming>,
) -> Result<HttpResponse, ApiError> {
    let id = ids.message()?;
    let user = state.auth.user(request.headers())?;
    let body = read_body(request, state.max_body_bytes).await?;
    let body: UpdateBody = parse_json(&body)?;
    let patch = MessagePatch::new(body.content, body.paths, state.service.limits())?;
    let message = state.service.update(ids.thread, id, user, patch).await?;
    Ok(json(StatusCode::OK, message.to_json()))
}

/// `DELETE /threads/{thread_id}/messages/{message_id}`
pub async fn delete(
    state: &AppState,
    ids: PathIds,
    request: &Request<Incoming>,
) -> Result<HttpResponse, ApiError> {
    let id = ids.message()?;
    let user = state.auth.user(request.headers())?;
    state.service.delete(ids.thread, id, user).await?;
    let mut response = HttpResponse::default();
    *response.status_mut() = StatusCode::NO_CONTENT;
    Ok(response)
}

fn set_once(slot: &mut Option<String>, value: String, message: &str) -> Result<(), ApiError> {
    if slot.replace(value).is_some() {
        return Err(ApiError::bad_request("invalid_cursor", message.to_owned()));
    }
    Ok(())
}

/// The query of a list request.
fn page_query(query: Option<&str>) -> Result<(PageQuery, PageSize), ApiError> {
    let mut size = PageSize::DEFAULT;
    let mut before: Option<String> = None;
    let mut after: Option<String> = None;
    let mut seen_limit = false;
    for (name, value) in super::query_pairs(query.unwrap_or_default()) {
        match name.as_ref() {
            "limit" => {
                if seen_limit {
                    return Err(ApiError::bad_request("invalid_limit", "give limit once"));
                }
                seen_limit = true;
                size = PageSize::parse(&value).map_err(|_| {
                    ApiError::bad_request("invalid_limit", "limit must be an integer from 1 to 200")
                })?;
            }
            // An empty value is the same as none, so a client may always send the parameter.
            "cursor" | "before" if !value.is_empty() => set_once(
                &mut before,
                value.into_owned(),
                "give one of cursor, before or after, once",
            )?,
            "after" if !value.is_empty() => {
                set_once(&mut after, value.into_owned(), "give after once")?;
            }
            _ => {}
        }
    }
    let decode = |s: &str| Cursor::decode(s).map_err(ApiError::from);
    let query = match (before, after) {
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request(
                "invalid_cursor",
                "give either a cursor (or before) or after, not both",
            ));
        }
        (Some(c), None) => PageQuery::Before(decode(&c)?),
        (None, Some(c)) => PageQuery::After(decode(&c)?),
        (None, None) => PageQuery::Newest,
    };
    Ok((query, size))
}

/// `GET /threads/{thread_id}/messages`
pub async fn list(
    state: &AppState,
    ids: PathIds,
    request: &Request<Incoming>,
) -> Result<HttpResponse, ApiError> {
    let (query, size) = page_query(request.uri().query())?;
    let page = state.service.page_json(ids.thread, query, size).await?;
    Ok(json(StatusCode::OK, Body::from_parts(page.into_parts())))
}
