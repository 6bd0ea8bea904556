//! The request pipeline: match the path, check the method, count a write against the user's
//! limits, call the handler, turn errors into JSON, log one line per request.

use std::sync::Arc;
use std::time::Instant;

use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use tracing::Instrument;

use super::request_body::ReadBody;
use super::request_id::{X_REQUEST_ID, request_id};
use super::response::{HttpResponse, json};
use super::state::AppState;
use super::table::Route;
use super::{
    changes, conversations, docs, events, health, messages, path, reactions, read, search, ui,
};
use crate::body::Body;
use crate::error::ApiError;

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
        (Route::Replies, &Method::GET) => Box::pin(messages::replies(state, ids?, &request)).await,
        (Route::Follow, &Method::PUT) => {
            Box::pin(conversations::follow(state, ids?, &request, true)).await
        }
        (Route::Follow, &Method::DELETE) => {
            Box::pin(conversations::follow(state, ids?, &request, false)).await
        }
        (Route::RepliesRead, &Method::PUT) => {
            Box::pin(conversations::mark_read(state, ids?, request)).await
        }
        (Route::Inbox, &Method::GET) => Box::pin(conversations::inbox(state, &request)).await,
        (Route::Mentions, &Method::GET) => Box::pin(read::mentions(state, &request)).await,
        (Route::Search, &Method::GET) => Box::pin(search::search(state, &request)).await,
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
