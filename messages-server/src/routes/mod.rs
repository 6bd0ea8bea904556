//! The route table and the request pipeline: match the path, check the method, call the
//! handler, turn errors into JSON, log one line per request. A response's body is complete
//! (in up to three parts) except an event stream's, which is fed by a bounded channel.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::BodyExt;

use crate::body::Body;
use messages_core::MessageService;
use tracing::Instrument;

use crate::error::ApiError;

mod changes;
mod docs;
pub mod events;
mod health;
mod messages;
mod path;
mod reactions;
mod read;
mod ui;

/// A response with a complete body.
pub type HttpResponse = Response<Body>;

/// A request body the routes can read: hyper's own, from this server's listener, or another
/// server's, when the routes are mounted in an application of another framework (see
/// [`crate::Application::into_handler`]).
pub trait ReadBody:
    hyper::body::Body<Data = Bytes, Error: std::fmt::Display> + Send + Unpin + 'static
{
}

impl<T> ReadBody for T where
    T: hyper::body::Body<Data = Bytes, Error: std::fmt::Display> + Send + Unpin + 'static
{
}

#[derive(Clone, Copy, Debug)]
enum Route {
    ThreadMessages,
    Message,
    BulkDelete,
    Reactions,
    Reaction,
    Edits,
    ThreadChanges,
    ThreadRead,
    Unread,
    ThreadEvents,
    Healthz,
    Readyz,
    Metrics,
    OpenApi,
    Page,
    PageAsset,
    Docs,
    DocsIndex,
    DocsFile,
}

/// Every route: its path (which is also its label in metrics, a fixed name so ids do not
/// multiply series), the methods it takes, and whether it is part of the API contract (the
/// chat page is not). The router, the metrics and the OpenAPI check all read this one list.
const ROUTES: [(Route, &str, &str, bool); 19] = [
    (
        Route::ThreadMessages,
        "/threads/{thread_id}/messages",
        "GET, POST",
        true,
    ),
    (
        Route::Message,
        "/threads/{thread_id}/messages/{message_id}",
        "GET, PUT, DELETE",
        true,
    ),
    (
        Route::BulkDelete,
        "/threads/{thread_id}/messages/bulk-delete",
        "POST",
        true,
    ),
    (
        Route::Reactions,
        "/threads/{thread_id}/messages/{message_id}/reactions",
        "DELETE",
        true,
    ),
    (
        Route::Reaction,
        "/threads/{thread_id}/messages/{message_id}/reactions/{emoji}",
        "GET, PUT, DELETE",
        true,
    ),
    (
        Route::Edits,
        "/threads/{thread_id}/messages/{message_id}/edits",
        "GET",
        true,
    ),
    (
        Route::ThreadChanges,
        "/threads/{thread_id}/changes",
        "GET",
        true,
    ),
    (
        Route::ThreadRead,
        "/threads/{thread_id}/read",
        "GET, PUT",
        true,
    ),
    (Route::Unread, "/unread", "GET", true),
    (
        Route::ThreadEvents,
        "/threads/{thread_id}/events",
        "GET",
        true,
    ),
    (Route::Healthz, "/healthz", "GET", true),
    (Route::Readyz, "/readyz", "GET", true),
    (Route::Metrics, "/metrics", "GET", true),
    (Route::OpenApi, "/openapi.json", "GET", true),
    (Route::Page, "/", "GET", false),
    (Route::PageAsset, "/ui/{asset}", "GET", false),
    (Route::Docs, "/docs", "GET", false),
    (Route::DocsIndex, "/docs/", "GET", false),
    (Route::DocsFile, "/docs/{*file}", "GET", false),
];

impl Route {
    fn entry(self) -> &'static (Route, &'static str, &'static str, bool) {
        // The table lists every variant in declaration order (a unit test checks it).
        &ROUTES[self as usize]
    }

    fn allow(self) -> &'static str {
        self.entry().2
    }

    /// The route's label in metrics.
    fn label(self) -> &'static str {
        self.entry().1
    }
}

/// What every request handler shares.
pub struct AppState {
    /// The message service.
    pub service: Arc<MessageService>,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// Longest time a request's body may take to arrive.
    pub body_read_timeout: std::time::Duration,
    router: matchit::Router<Route>,
    metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    sources: crate::metrics::Sources,
    openapi: Bytes,
    /// How writes are authenticated.
    pub auth: crate::auth::Auth,
    /// The open event streams.
    pub streams: events::Streams,
    /// Per-user write rate limits.
    pub limits: crate::limits::WriteLimits,
}

impl AppState {
    /// The shared state with the route table built.
    pub fn new(
        service: Arc<MessageService>,
        (max_body_bytes, body_read_timeout): (usize, std::time::Duration),
        sources: crate::metrics::Sources,
        (auth, limits): (crate::auth::Auth, crate::limits::WriteLimits),
        streams: crate::config::StreamSettings,
    ) -> Self {
        let mut router = matchit::Router::new();
        // The paths are constants and distinct, so inserting them cannot conflict.
        for &(route, path, _, _) in &ROUTES {
            if let Err(error) = router.insert(path, route) {
                tracing::error!(%error, path, "route table conflict");
            }
        }
        AppState {
            service,
            max_body_bytes,
            body_read_timeout,
            router,
            metrics: crate::metrics::install(),
            sources,
            openapi: openapi_json(),
            auth,
            streams: events::Streams::new(streams),
            limits,
        }
    }
}

/// Serves one request and logs it.
pub async fn handle<B: ReadBody>(state: Arc<AppState>, request: Request<B>) -> HttpResponse {
    let started = Instant::now();
    let method = request.method().clone();
    // The path is kept only if the request will be logged. Not a clone of the `Uri`: it
    // shares the connection's read buffer, and holding on to it makes hyper allocate a new
    // buffer for the next request.
    let logged_path =
        tracing::enabled!(tracing::Level::INFO).then(|| request.uri().path().to_owned());
    // The route is matched once; the path ids are parsed into `Copy` UUIDs right away.
    let target = state.router.at(request.uri().path()).ok().map(|m| {
        let ids = path::PathIds::parse(
            m.params.get("thread_id"),
            m.params.get("message_id"),
            m.params.get("emoji"),
        );
        (*m.value, ids)
    });
    let route = target.as_ref().map(|(route, _)| *route);
    let request_id = request_id(request.headers());
    // Every log line of this request, here and in the core, carries its id.
    let span = tracing::info_span!("request", request_id = %request_id);
    let dispatched = dispatch(&state, target, request);
    let result = if span.is_disabled() {
        dispatched.await
    } else {
        dispatched.instrument(span.clone()).await
    };
    let mut response = match result {
        Ok(response) => response,
        Err(error) => {
            if let Some(cause) = error.cause() {
                let _entered = span.enter();
                tracing::error!(
                    status = error.status().as_u16(),
                    error = cause,
                    "request failed"
                );
            }
            error.into_response()
        }
    };
    response
        .headers_mut()
        .insert(X_REQUEST_ID, request_id.0.clone());
    let _entered = span.enter();
    let status = response.status().as_u16();
    crate::metrics::record_request(
        route.map_or("unmatched", Route::label),
        &method,
        status,
        started.elapsed(),
    );
    tracing::info!(
        method = %method,
        path = logged_path.as_deref().unwrap_or_default(),
        status,
        latency_us = started.elapsed().as_micros() as u64,
        "request"
    );
    response
}

/// The API contract, `messages-server/openapi.yaml`, compiled in.
pub const OPENAPI_YAML: &str = include_str!("../../openapi.yaml");

/// The contract as JSON, converted once at start.
fn openapi_json() -> Bytes {
    match serde_yaml_ng::from_str::<serde_json::Value>(OPENAPI_YAML) {
        Ok(value) => Bytes::from(value.to_string()),
        Err(error) => {
            tracing::error!(%error, "openapi.yaml does not parse");
            Bytes::from_static(b"{}")
        }
    }
}

/// Every route of the API and the methods it takes, as the router serves them; the OpenAPI
/// test checks the contract against this list. The chat page (`/`, `/ui/{asset}`) is not part
/// of the API.
pub fn route_table() -> Vec<(&'static str, Vec<&'static str>)> {
    ROUTES
        .iter()
        .filter(|(_, _, _, api)| *api)
        .map(|(_, path, allow, _)| (*path, allow.split(", ").collect()))
        .collect()
}

/// `X-Request-Id`, named once: a header name given as a string is parsed on every use.
const X_REQUEST_ID: http::HeaderName = http::HeaderName::from_static("x-request-id");

/// A request's id, as it goes into the `X-Request-Id` response header and every log line.
pub struct RequestId(HeaderValue);

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Either the gateway's, checked to be visible ASCII, or one made here: always text.
        f.write_str(self.0.to_str().unwrap_or("-"))
    }
}

/// The gateway's `X-Request-Id` when it is a sane token (1 to 128 visible ASCII characters),
/// else a new one.
fn request_id(headers: &http::HeaderMap) -> RequestId {
    match headers.get(X_REQUEST_ID) {
        Some(v)
            if !v.is_empty() && v.len() <= 128 && v.as_bytes().iter().all(u8::is_ascii_graphic) =>
        {
            RequestId(v.clone())
        }
        _ => new_request_id(),
    }
}

/// A UUID-shaped id without a system call or an allocation per request: the high half is
/// random, drawn once per process (it carries the v4 version nibble); the low half counts
/// requests, with the RFC 4122 variant bits set.
fn new_request_id() -> RequestId {
    static PREFIX: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let prefix = *PREFIX.get_or_init(|| uuid::Uuid::new_v4().as_u64_pair().0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let low = (n & 0x3fff_ffff_ffff_ffff) | 0x8000_0000_0000_0000;
    let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
    uuid::Uuid::from_u64_pair(prefix, low)
        .hyphenated()
        .encode_lower(&mut text);
    // 36 ASCII hex digits and hyphens are a valid header value.
    RequestId(HeaderValue::from_bytes(&text).unwrap_or(HeaderValue::from_static("-")))
}

/// The pairs of a query string. Values are percent-decoded only when they hold a `%` or a
/// `+`: the parameters this API reads (numbers, ids, base64url cursors) rarely do, and the
/// borrowed fast path keeps a request free of allocations.
pub(crate) fn query_pairs(query: &str) -> impl Iterator<Item = (Cow<'_, str>, Cow<'_, str>)> {
    let mut rest = query;
    std::iter::from_fn(move || {
        loop {
            if rest.is_empty() {
                return None;
            }
            let (pair, tail) = match rest.as_bytes().iter().position(|&b| b == b'&') {
                Some(at) => (&rest[..at], &rest[at + 1..]),
                None => (rest, ""),
            };
            rest = tail;
            if pair.is_empty() {
                continue;
            }
            if pair.bytes().any(|b| b == b'%' || b == b'+') {
                return form_urlencoded::parse(pair.as_bytes())
                    .next()
                    .map(|(k, v)| (Cow::Owned(k.into_owned()), Cow::Owned(v.into_owned())));
            }
            let (k, v) = match pair.as_bytes().iter().position(|&b| b == b'=') {
                Some(at) => (&pair[..at], &pair[at + 1..]),
                None => (pair, ""),
            };
            return Some((Cow::Borrowed(k), Cow::Borrowed(v)));
        }
    })
}

async fn dispatch<B: ReadBody>(
    state: &AppState,
    target: Option<(Route, Result<path::PathIds, ApiError>)>,
    request: Request<B>,
) -> Result<HttpResponse, ApiError> {
    let (route, ids) = target.ok_or_else(ApiError::no_route)?;
    // Every handler but the cached read is boxed: their futures are large (a body being read,
    // a store call), and without the box each request would move that much through every
    // wrapper on its way into hyper. The cached read stays inline.
    if let Some(write) = Write::of(route, request.method()) {
        return Box::pin(write_through_limits(state, route, write, ids?, request)).await;
    }
    match (route, request.method()) {
        (Route::ThreadMessages, &Method::GET) => messages::list(state, ids?, &request).await,
        (Route::Message, &Method::GET) => Box::pin(messages::get(state, ids?)).await,
        (Route::Reaction, &Method::GET) => Box::pin(reactions::list(state, ids?, &request)).await,
        (Route::Edits, &Method::GET) => Box::pin(messages::edits(state, ids?)).await,
        (Route::ThreadChanges, &Method::GET) => {
            Box::pin(changes::list(state, ids?, &request)).await
        }
        (Route::ThreadRead, &Method::PUT) => Box::pin(read::mark(state, ids?, request)).await,
        (Route::ThreadRead, &Method::GET) => Box::pin(read::get(state, ids?, &request)).await,
        (Route::Unread, &Method::GET) => Box::pin(read::unread(state, &request)).await,
        (Route::ThreadEvents, &Method::GET) => {
            Box::pin(events::stream(state, ids?, &request)).await
        }
        (Route::Healthz, &Method::GET | &Method::HEAD) => Ok(health::alive()),
        (Route::Readyz, &Method::GET | &Method::HEAD) => Box::pin(health::ready(state)).await,
        (Route::OpenApi, &Method::GET) => Ok(json(StatusCode::OK, state.openapi.clone())),
        (Route::Page, &Method::GET) => Ok(ui::page(&request)),
        (Route::PageAsset, &Method::GET) => {
            ui::asset(state, request.uri().path().strip_prefix("/ui/"), &request)
        }
        (Route::Docs, &Method::GET) => Ok(docs::redirect()),
        (Route::DocsIndex, &Method::GET) => docs::file(""),
        (Route::DocsFile, &Method::GET) => docs::file(
            request
                .uri()
                .path()
                .strip_prefix("/docs/")
                .unwrap_or_default(),
        ),
        (Route::Metrics, &Method::GET) => {
            let body = Box::pin(crate::metrics::render(
                state.metrics.as_ref(),
                &state.sources,
            ))
            .await;
            let mut response = Response::new(Body::from(body));
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4"),
            );
            Ok(response)
        }
        (route, _) => Err(ApiError::method_not_allowed(route.allow())),
    }
}

/// The writes the rate limits count.
#[derive(Clone, Copy)]
enum Write {
    Create,
    Edit,
    Delete,
    BulkDelete,
    React,
    Unreact,
    ClearReactions,
}

impl Write {
    fn of(route: Route, method: &Method) -> Option<Write> {
        Some(match (route, method) {
            (Route::ThreadMessages, &Method::POST) => Write::Create,
            (Route::Message, &Method::PUT) => Write::Edit,
            (Route::Message, &Method::DELETE) => Write::Delete,
            (Route::BulkDelete, &Method::POST) => Write::BulkDelete,
            (Route::Reaction, &Method::PUT) => Write::React,
            (Route::Reaction, &Method::DELETE) => Write::Unreact,
            (Route::Reactions, &Method::DELETE) => Write::ClearReactions,
            _ => return None,
        })
    }
}

/// A write: who makes it, a token from their bucket (a 429 when there is none, before
/// anything is read or stored), the handler, then the bucket's headers on the answer.
async fn write_through_limits<B: ReadBody>(
    state: &AppState,
    route: Route,
    write: Write,
    ids: path::PathIds,
    request: Request<B>,
) -> Result<HttpResponse, ApiError> {
    let caller = state.auth.caller(request.headers())?;
    let grant = state.limits.take(&caller, route.label()).await?;
    let result = match write {
        Write::Create => messages::create(state, ids, caller, request).await,
        Write::Edit => messages::update(state, ids, caller, request).await,
        Write::Delete => messages::delete(state, ids, caller, request).await,
        Write::BulkDelete => messages::bulk_delete(state, ids, caller, request).await,
        Write::React => reactions::add(state, ids, caller).await,
        Write::Unreact => reactions::remove(state, ids, caller, &request).await,
        Write::ClearReactions => reactions::clear(state, ids, caller).await,
    };
    state.limits.settle(grant, result).await
}

/// Past the limit, how much of a body is still read and thrown away so that the 413 reaches
/// a proxy that is still sending (closing on unread data resets the connection, which a
/// gateway reports as a 502). Larger bodies are not read; the connection closes instead.
const DRAIN_LIMIT: u64 = 1024 * 1024;

/// Reads the body into memory up to `limit` bytes; past it the answer is 413 and nothing more
/// is kept. A `Content-Length` over the limit is refused without buffering anything.
/// The body must arrive within `timeout`, or the answer is a 400 `bad_body`.
async fn read_body<B: ReadBody>(
    request: Request<B>,
    limit: usize,
    timeout: std::time::Duration,
) -> Result<Bytes, ApiError> {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let limit_bytes = limit as u64;
    if declared.is_some_and(|n| n > DRAIN_LIMIT) {
        return Err(ApiError::too_large(limit));
    }
    let mut too_large = declared.is_some_and(|n| n > limit_bytes);
    let mut body = request.into_body();
    let mut kept = Vec::with_capacity(declared.map_or(1024, |n| n.min(limit_bytes) as usize));
    let mut seen = 0u64;
    let read = async {
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| {
                ApiError::bad_request("bad_body", format!("could not read the body: {e}"))
            })?;
            if let Ok(data) = frame.into_data() {
                seen += data.len() as u64;
                too_large |= seen > limit_bytes;
                if !too_large {
                    kept.extend_from_slice(&data);
                }
                if seen > DRAIN_LIMIT {
                    break;
                }
            }
        }
        Ok::<(), ApiError>(())
    };
    tokio::time::timeout(timeout, read)
        .await
        .map_err(|_| ApiError::bad_request("bad_body", "the body did not arrive in time"))??;
    if too_large {
        return Err(ApiError::too_large(limit));
    }
    Ok(Bytes::from(kept))
}

/// A JSON response.
fn json(status: StatusCode, body: impl Into<Body>) -> HttpResponse {
    let mut response = Response::new(body.into());
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_route_table_lists_every_route_in_order() {
        for (i, (route, _, _, _)) in ROUTES.iter().enumerate() {
            assert_eq!(*route as usize, i, "{route:?}");
        }
    }

    #[test]
    fn made_request_ids_are_uuids_and_differ() {
        let a = new_request_id().to_string();
        let b = new_request_id().to_string();
        assert_ne!(a, b);
        for id in [&a, &b] {
            let parsed = uuid::Uuid::parse_str(id).unwrap();
            assert_eq!(parsed.get_version_num(), 4, "{id}");
            assert_eq!(parsed.get_variant(), uuid::Variant::RFC4122, "{id}");
            assert_eq!(&parsed.to_string(), id);
        }
    }

    #[test]
    fn query_pairs_decode_only_when_needed() {
        let pairs: Vec<(String, String)> = query_pairs("limit=5&&cursor=a-b_c&x=%41+b&flag")
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        assert_eq!(
            pairs,
            [
                ("limit".into(), "5".into()),
                ("cursor".into(), "a-b_c".into()),
                ("x".into(), "A b".into()),
                ("flag".into(), String::new()),
            ]
        );
    }
}
