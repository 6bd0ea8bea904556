//! Test support (feature `testing`): the behavioural contracts every backend must pass, and
//! throwaway databases for backend tests. Embedders writing their own backend can run the
//! same contracts against it.
//!
//! Backend tests read their service's URL from the environment (`DATABASE_URL`, `REDIS_URL`).
//! Without it a test is skipped with a note on stderr, except under `CI=true`, where a missing
//! or unreachable backend fails the test: CI must never pass by skipping.

#![allow(clippy::unwrap_used)] // Test support: a failed call is a failed test, said by the panic.

use std::fmt::Display;

#[cfg(feature = "amqp")]
pub mod amqp;
pub mod cache;
pub mod limit;
#[cfg(feature = "postgres")]
pub mod postgres;
pub mod proxy;
#[cfg(feature = "redis")]
pub mod redis;
#[cfg(feature = "sqlite")]
pub mod sqlite;
pub mod storage;

/// The one way to run a test on every backend, for the core and the server alike: one
/// module per backend, one `#[tokio::test]` per case in it, so a failure names its backend
/// and its case (`sqlite::idempotent_creates`) and hides none of the others. Each backend's
/// expression gives a future of `Option<S>`: the subject the cases take by reference, or
/// `None` to skip (a backend not configured outside CI). The cases are functions
/// `async fn case(&S)` in the invoking module.
///
/// ```ignore
/// messages_core::every_backend!([lists_newest_first, refuses_a_bad_limit] on
///     memory => async { Some(App::memory()) },
///     postgres => async { App::postgres().await },
/// );
/// ```
#[macro_export]
macro_rules! every_backend {
    ($cases:tt on $($backend:ident => $subject:expr),+ $(,)?) => {
        $( $crate::every_backend!(@backend $backend, $subject, $cases); )+
    };
    (@backend $backend:ident, $subject:expr, [$($case:ident),* $(,)?]) => {
        mod $backend {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let Some(subject) = $subject.await else { return };
                    super::$case(&subject).await;
                }
            )*
        }
    };
}

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
    .unwrap();
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
    .unwrap();
    service
        .create(thread, user, new, None)
        .await
        .expect("create")
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
            skipped(&format!("{var} is not set"));
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
    skipped(&format!("{what} is unreachable: {error}"));
    None
}

/// Says that tests were skipped, and why, where a person running them sees it: once per
/// reason and test binary, written to the process's stderr directly, past the test harness's
/// capture (which keeps a passing test's output to itself), so `cargo test` without backends
/// never passes in silence.
pub fn skipped(why: &str) {
    use std::io::Write;
    static SAID: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let mut said = SAID
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if said.iter().any(|s| s == why) {
        return;
    }
    said.push(why.to_owned());
    let binary = std::env::args()
        .next()
        .and_then(|path| {
            std::path::Path::new(&path)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
        })
        .unwrap_or_default();
    let _ = writeln!(
        std::io::stderr().lock(),
        "\nskipped ({binary}): {why}: the tests that need it pass without running (set it, or CI=true to make them fail)"
    );
}
