//! The event stream: `GET /threads/{thread_id}/events`, every change of a thread as a
//! server-sent event, from the reader's last event on.
//!
//! A stream starts after `Last-Event-ID` (what a browser sends when it reconnects), or after
//! `?since=R`, or with neither at the thread's current position. It replays the changes after
//! that position from the store, then goes live without a gap or a duplicate at the seam (see
//! `messages_core::live`). Every stream is bounded: at most `STREAM_MAX` open in a process
//! (past it a 503 with `Retry-After`), a channel of `STREAM_BUFFER` events to its reader, and a
//! reader that does not take an event within `STREAM_SLOW_READER_SECONDS` (or falls behind the
//! thread's feed) is closed rather than buffered for; it resumes with `Last-Event-ID`. Every
//! stream ends when the server begins to shut down.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, header};
use messages_core::live::{self, FollowError, Follower};
use messages_core::parse_position;
use tokio::sync::{OwnedSemaphorePermit, mpsc, watch};

use super::path::PathIds;
use super::response::HttpResponse;
use super::state::AppState;
use crate::body::Body;
use crate::config::StreamSettings;
use crate::error::ApiError;

/// Where the reader wants to start: `Last-Event-ID`, else `?since=`, else `None` (now).
fn start_position<B>(request: &Request<B>) -> Result<Option<i64>, ApiError> {
    let invalid = |e| ApiError::refused("invalid_since", e);
    if let Some(last) = request.headers().get("last-event-id") {
        // A header that is not text is refused in the same words as one that is no number.
        let last = last.to_str().unwrap_or("-").trim();
        // An empty Last-Event-ID is what a browser sends before it had any event.
        if !last.is_empty() {
            return parse_position("Last-Event-ID", last)
                .map(Some)
                .map_err(invalid);
        }
    }
    let mut since = None;
    for (name, value) in super::query::query_pairs(request.uri().query().unwrap_or_default()) {
        if name == "since" && !value.is_empty() {
            if since.is_some() {
                return Err(ApiError::bad_request("invalid_since", "give since once"));
            }
            since = Some(parse_position("since", &value).map_err(invalid)?);
        }
    }
    Ok(since)
}

/// `GET /threads/{thread_id}/events`
pub async fn stream<B>(
    state: &AppState,
    ids: PathIds,
    request: &Request<B>,
) -> Result<HttpResponse, ApiError> {
    let since = start_position(request)?;
    let streams = &state.streams;
    let permit = streams.try_open().ok_or_else(|| {
        ApiError::busy(
            "too many open event streams; retry, or poll /changes with wait",
            5,
        )
    })?;
    let follower = state.service.hub().follow(ids.thread(), since).await?;
    let settings = *streams.settings();
    let (tx, rx) = mpsc::channel::<Bytes>(settings.buffer.max(2));
    // The first thing a reader gets: how long to wait before reconnecting.
    let hint = live::retry_hint(settings.retry.as_millis() as u64);
    let len = hint.len();
    if tx.try_send(hint).is_ok() {
        crate::metrics::stream_bytes_queued(len);
    }
    crate::metrics::stream_opened();
    tokio::spawn(forward(follower, tx, permit, settings, streams.closing()));
    let mut response = Response::new(Body::stream(rx));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // nginx (and Kong, which is built on it) would otherwise buffer the stream.
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    *response.status_mut() = StatusCode::OK;
    Ok(response)
}

/// Why a stream ended, for the log and the metrics.
#[derive(Debug)]
enum Ended {
    /// The reader went away.
    Gone,
    /// The reader did not take events fast enough.
    Slow,
    /// The server is shutting down.
    Shutdown,
}

/// Completes once the server begins to shut down (at once if it already has).
async fn shutting_down(closing: &mut watch::Receiver<bool>) {
    while !*closing.borrow_and_update() {
        if closing.changed().await.is_err() {
            return;
        }
    }
}

/// Sends `chunk`, waiting at most `patience` for the reader to make room.
/// The bytes are counted as queued before they are, so the body, which counts them out,
/// never takes the gauge below what streams hold.
async fn send(tx: &mpsc::Sender<Bytes>, chunk: Bytes, patience: Duration) -> Result<(), Ended> {
    let len = chunk.len();
    crate::metrics::stream_bytes_queued(len);
    let sent = match tokio::time::timeout(patience, tx.send(chunk)).await {
        Ok(Ok(())) => return Ok(()),
        Ok(Err(_)) => Err(Ended::Gone),
        Err(_) => Err(Ended::Slow),
    };
    crate::metrics::stream_bytes_taken(len);
    sent
}

/// Moves the follower's events to the reader until the reader goes, falls behind, or the
/// server shuts down; heartbeats in between.
async fn forward(
    mut follower: Follower,
    tx: mpsc::Sender<Bytes>,
    _permit: OwnedSemaphorePermit,
    settings: StreamSettings,
    mut closing: watch::Receiver<bool>,
) {
    let mut heartbeat = tokio::time::interval(settings.heartbeat);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    heartbeat.tick().await;
    let mut backoff = Duration::from_millis(100);
    let ended = loop {
        let mut pause = None;
        tokio::select! {
            next = follower.next() => match next {
                Ok(frames) => {
                    backoff = Duration::from_millis(100);
                    let count = frames.len() as u64;
                    let mut sent = Ok(());
                    for frame in frames {
                        sent = send(&tx, frame.bytes, settings.slow_reader).await;
                        if sent.is_err() {
                            break;
                        }
                    }
                    if let Err(ended) = sent {
                        break ended;
                    }
                    crate::metrics::stream_events_sent(count);
                    heartbeat.reset();
                }
                Err(FollowError::Lagged) => break Ended::Slow,
                Err(FollowError::Store(error)) => {
                    // The store is away: the reader keeps its stream (and heartbeats) while
                    // the follower retries.
                    tracing::warn!(
                        error = %crate::error::error_chain(&error),
                        retry_in_ms = backoff.as_millis() as u64,
                        position = follower.position(),
                        "event stream cannot read the store; retrying"
                    );
                    pause = Some(backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            },
            _ = heartbeat.tick() => {
                if let Err(ended) = send(&tx, live::heartbeat(), settings.slow_reader).await {
                    break ended;
                }
            }
            () = tx.closed() => break Ended::Gone,
            () = shutting_down(&mut closing) => break Ended::Shutdown,
        }
        if let Some(pause) = pause {
            tokio::select! {
                () = tokio::time::sleep(pause) => {}
                () = shutting_down(&mut closing) => break Ended::Shutdown,
            }
        }
    };
    match ended {
        Ended::Slow => {
            crate::metrics::stream_slow_reader_closed();
            tracing::info!(
                position = follower.position(),
                "event stream closed: the reader was too slow; it resumes with Last-Event-ID"
            );
        }
        Ended::Gone => tracing::debug!(position = follower.position(), "event stream reader gone"),
        Ended::Shutdown => tracing::debug!("event stream ended by shutdown"),
    }
    crate::metrics::stream_closed();
}
