//! Test support (feature `testing`): the behavioural contracts every backend must pass, and
//! throwaway databases for backend tests. Embedders writing their own backend can run the
//! same contracts against it.
//!
//! Backend tests read their service's URL from the environment (`DATABASE_URL`, `REDIS_URL`).
//! Without it a test is skipped with a note on stderr, except under `CI=true`, where a missing
//! or unreachable backend fails the test: CI must never pass by skipping.

use std::fmt::Display;

#[cfg(feature = "amqp")]
pub mod amqp;
pub mod cache;
#[cfg(feature = "postgres")]
pub mod postgres;
pub mod proxy;
#[cfg(feature = "redis")]
pub mod redis;
#[cfg(feature = "sqlite")]
pub mod sqlite;
pub mod storage;

/// A text message at `micros`, as a store would hold it.
///
/// # Panics
/// When `text` is not a valid message.
pub fn text_message(
    thread: crate::ThreadId,
    user: crate::UserId,
    micros: i64,
    text: &str,
) -> crate::Message {
    let new = crate::NewMessage::new(
        crate::MessageKind::Text,
        text.to_owned(),
        vec![],
        &crate::Limits::default(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    crate::Message::from_new(
        crate::MessageId::new_v7(),
        thread,
        user,
        new,
        crate::Timestamp::from_micros(micros),
    )
}

/// Creates a text message through the service and returns it.
///
/// # Panics
/// When the create fails.
pub async fn post_text(
    service: &crate::MessageService,
    thread: crate::ThreadId,
    user: crate::UserId,
    text: &str,
) -> crate::Message {
    let new = crate::NewMessage::new(
        crate::MessageKind::Text,
        text.into(),
        vec![],
        service.limits(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    service
        .create(thread, user, new, None)
        .await
        .unwrap_or_else(|e| panic!("create: {e}"))
        .message()
        .clone()
}

/// Whether backend tests must run (`CI=true`).
pub fn required() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// The URL in `var`, or `None` (skip) when it is unset outside CI.
///
/// # Panics
/// Under `CI=true` when the variable is unset.
pub fn backend_url(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ if required() => panic!("{var} must be set when CI=true"),
        _ => {
            eprintln!("skipped: {var} is not set");
            None
        }
    }
}

/// Handles a backend that could not be reached: fails under CI, skips otherwise.
///
/// # Panics
/// Under `CI=true`.
pub fn unreachable(what: &str, error: impl Display) -> Option<std::convert::Infallible> {
    if required() {
        panic!("{what} is unreachable under CI=true: {error}");
    }
    eprintln!("skipped: {what} is unreachable: {error}");
    None
}
