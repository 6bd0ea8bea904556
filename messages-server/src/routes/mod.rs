//! The route table and the request pipeline: match the path, check the method, call the
//! handler, turn errors into JSON, log one line per request.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use messages_core::MessageService;
use tracing::Instrument;

use crate::error::ApiError;

mod health;
mod messages;

/// A response with a complete body.
pub type HttpResponse = Response<Full<Bytes>>;

#[derive(Clone, Copy, Debug)]
enum Route {
    ThreadMessages,
    Message,
    Healthz,
    Readyz,
    Metrics,
    OpenApi,
}

impl Route {
    fn allow(self) -> &'static str {
        match self {
            Route::ThreadMessages => "GET, POST",
            Route::Message => "PUT, DELETE",
            Route::Healthz | Route::Readyz | Route::Metrics | Route::OpenApi => "GET",
        }
    }

    /// The route's label in metrics: a fixed name, never the path, so ids do not multiply
    /// series.
    fn label(self) -> &'static str {
        match self {
            Route::ThreadMessages => "/threads/{thread_id}/messages",
            Route::Message => "/threads/{thread_id}/messages/{message_id}",
            Route::Healthz => "/healthz",
            Route::Readyz => "/readyz",
            Route::Metrics => "/metrics",
            Route::OpenApi => "/openapi.json",
        }
    }
}

/// What every request handler shares.
pub struct AppState {
    /// The message service.
    pub service: Arc<MessageService>,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    router: matchit::Router<Route>,
    metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    sources: crate::metrics::Sources,
    openapi: Bytes,
    /// How writes are authenticated.
    pub auth: crate::auth::Auth,
}

impl AppState {
    /// The shared state with the route table built.
    pub fn new(
        service: Arc<MessageService>,
        max_body_bytes: usize,
        sources: crate::metrics::Sources,
        auth: crate::auth::Auth,
    ) -> Self {
        let mut router = matchit::Router::new();
        // The paths are constants and distinct, so inserting them cannot conflict.
        for (path, route) in [
            ("/threads/{thread_id}/messages", Route::ThreadMessages),
            ("/threads/{thread_id}/messages/{message_id}", Route::Message),
            ("/healthz", Route::Healthz),
            ("/readyz", Route::Readyz),
            ("/metrics", Route::Metrics),
            ("/openapi.json", Route::OpenApi),
        ] {
            if let Err(error) = router.insert(path, route) {
                tracing::error!(%error, path, "route table conflict");
            }
        }
        AppState {
            service,
            max_body_bytes,
            router,
            metrics: crate::metrics::install(),
            sources,
            openapi: openapi_json(),
            auth,
        }
    }
}

/// Serves one request and logs it.
pub async fn handle(state: Arc<AppState>, request: Request<Incoming>) -> HttpResponse {
    let started = Instant::now();
    let method = request.method().clone();
    // A `Uri` clone shares its bytes; the path is read only if the request is logged.
    let uri = request.uri().clone();
    // The route is matched once; the path ids are parsed into `Copy` UUIDs right away.
    let target = state.router.at(uri.path()).ok().map(|m| {
        let ids = messages::PathIds::parse(m.params.get("thread_id"), m.params.get("message_id"));
        (*m.value, ids)
    });
    let route = target.as_ref().map(|(route, _)| *route);
    let request_id = request_id(request.headers());
    // Every log line of this request, here and in the core, carries its id.
    let span = tracing::info_span!("request", request_id = %request_id);
    let mut response = match dispatch(&state, target, request)
        .instrument(span.clone())
        .await
    {
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
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("x-request-id", value);
    }
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
        path = %uri.path(),
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

/// Every route and the methods it takes, as the router serves them; the OpenAPI test checks
/// the contract against this list.
pub fn route_table() -> Vec<(&'static str, Vec<&'static str>)> {
    [
        Route::ThreadMessages,
        Route::Message,
        Route::Healthz,
        Route::Readyz,
        Route::Metrics,
        Route::OpenApi,
    ]
    .into_iter()
    .map(|r| (r.label(), r.allow().split(", ").collect()))
    .collect()
}

/// The gateway's `X-Request-Id` when it is a sane token (1 to 128 visible ASCII characters),
/// else a new one.
fn request_id(headers: &http::HeaderMap) -> String {
    headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map_or_else(new_request_id, str::to_owned)
}

/// A UUID-shaped id without a system call per request: the high half is random, drawn once
/// per process (it carries the v4 version nibble); the low half counts requests, with the
/// RFC 4122 variant bits set.
fn new_request_id() -> String {
    static PREFIX: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let prefix = *PREFIX.get_or_init(|| uuid::Uuid::new_v4().as_u64_pair().0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    uuid::Uuid::from_u64_pair(prefix, (n & 0x3fff_ffff_ffff_ffff) | 0x8000_0000_0000_0000)
        .to_string()
}

async fn dispatch(
    state: &AppState,
    target: Option<(Route, Result<messages::PathIds, ApiError>)>,
    request: Request<Incoming>,
) -> Result<HttpResponse, ApiError> {
    let (route, ids) = target.ok_or_else(ApiError::no_route)?;
    match (route, request.method()) {
        (Route::ThreadMessages, &Method::GET) => messages::list(state, ids?, &request).await,
        (Route::ThreadMessages, &Method::POST) => messages::create(state, ids?, request).await,
        (Route::Message, &Method::PUT) => messages::update(state, ids?, request).await,
        (Route::Message, &Method::DELETE) => messages::delete(state, ids?, &request).await,
        (Route::Healthz, &Method::GET | &Method::HEAD) => Ok(health::alive()),
        (Route::Readyz, &Method::GET | &Method::HEAD) => health::ready(state).await,
        (Route::OpenApi, &Method::GET) => Ok(json(StatusCode::OK, state.openapi.clone())),
        (Route::Metrics, &Method::GET) => {
            let body = crate::metrics::render(state.metrics.as_ref(), &state.sources).await;
            let mut response = Response::new(Full::new(Bytes::from(body)));
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4"),
            );
            Ok(response)
        }
        (route, _) => Err(ApiError::method_not_allowed(route.allow())),
    }
}

/// Past the limit, how much of a body is still read and thrown away so that the 413 reaches
/// a proxy that is still sending (closing on unread data resets the connection, which a
/// gateway reports as a 502). Larger bodies are not read; the connection closes instead.
const DRAIN_LIMIT: u64 = 1024 * 1024;

/// Reads the body into memory up to `limit` bytes; past it the answer is 413 and nothing more
/// is kept. A `Content-Length` over the limit is refused without buffering anything.
async fn read_body(request: Request<Incoming>, limit: usize) -> Result<Bytes, ApiError> {
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
    tokio::time::timeout(std::time::Duration::from_secs(10), read)
        .await
        .map_err(|_| ApiError::bad_request("bad_body", "the body did not arrive in time"))??;
    if too_large {
        return Err(ApiError::too_large(limit));
    }
    Ok(Bytes::from(kept))
}

/// A JSON response.
fn json(status: StatusCode, body: impl Into<Bytes>) -> HttpResponse {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}
