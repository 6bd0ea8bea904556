//! The route table and the request pipeline: match the path, check the method, call the
//! handler, turn errors into JSON, log one line per request.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use messages_core::MessageService;

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
}

impl Route {
    fn allow(self) -> &'static str {
        match self {
            Route::ThreadMessages => "GET, POST",
            Route::Message => "PUT, DELETE",
            Route::Healthz | Route::Readyz => "GET",
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
}

impl AppState {
    /// The shared state with the route table built.
    pub fn new(service: Arc<MessageService>, max_body_bytes: usize) -> Self {
        let mut router = matchit::Router::new();
        // The paths are constants and distinct, so inserting them cannot conflict.
        for (path, route) in [
            ("/threads/{thread_id}/messages", Route::ThreadMessages),
            ("/threads/{thread_id}/messages/{message_id}", Route::Message),
            ("/healthz", Route::Healthz),
            ("/readyz", Route::Readyz),
        ] {
            if let Err(error) = router.insert(path, route) {
                tracing::error!(%error, path, "route table conflict");
            }
        }
        AppState {
            service,
            max_body_bytes,
            router,
        }
    }
}

/// Serves one request and logs it.
pub async fn handle(state: Arc<AppState>, request: Request<Incoming>) -> HttpResponse {
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let response = dispatch(&state, request)
        .await
        .unwrap_or_else(ApiError::into_response);
    let status = response.status().as_u16();
    tracing::info!(
        method = %method,
        path = %path,
        status,
        latency_us = started.elapsed().as_micros() as u64,
        "request"
    );
    response
}

async fn dispatch(state: &AppState, request: Request<Incoming>) -> Result<HttpResponse, ApiError> {
    let matched = state
        .router
        .at(request.uri().path())
        .map_err(|_| ApiError::no_route())?;
    let route = *matched.value;
    let thread = matched.params.get("thread_id").map(str::to_owned);
    let message = matched.params.get("message_id").map(str::to_owned);
    let ids = messages::PathIds::parse(thread.as_deref(), message.as_deref());
    match (route, request.method()) {
        (Route::ThreadMessages, &Method::GET) => messages::list(state, ids?, &request).await,
        (Route::ThreadMessages, &Method::POST) => messages::create(state, ids?, request).await,
        (Route::Message, &Method::PUT) => messages::update(state, ids?, request).await,
        (Route::Message, &Method::DELETE) => messages::delete(state, ids?, &request).await,
        (Route::Healthz, &Method::GET | &Method::HEAD) => Ok(health::alive()),
        (Route::Readyz, &Method::GET | &Method::HEAD) => health::ready(state).await,
        (route, _) => Err(ApiError::method_not_allowed(route.allow())),
    }
}

/// Reads the whole body, refusing it with 413 once it passes `limit` bytes, and without
/// reading at all when `Content-Length` already says it is too large.
async fn read_body(request: Request<Incoming>, limit: usize) -> Result<Bytes, ApiError> {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(ApiError::too_large(limit));
    }
    match Limited::new(request.into_body(), limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) if error.is::<http_body_util::LengthLimitError>() => {
            Err(ApiError::too_large(limit))
        }
        Err(error) => Err(ApiError::bad_request(
            "bad_body",
            format!("could not read the body: {error}"),
        )),
    }
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
