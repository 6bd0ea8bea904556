//! The request headers a client controls: `X-User-Id`, `Idempotency-Key`, `Last-Event-ID`
//! and a bearer token (`Authorization`), handled before and during verification. The input is
//! up to four values separated by newlines; whatever they hold, the answer is a 2xx or a 4xx
//! with an error body, and a token that does not verify never names a user.
#![no_main]

#[path = "common/mod.rs"]
mod common;

use bytes::Bytes;
use http::{HeaderValue, Request, StatusCode};
use http_body_util::Full;
use libfuzzer_sys::fuzz_target;

use common::THREAD;

fuzz_target!(|data: &[u8]| {
    let mut fields = data.splitn(4, |&b| b == b'\n');
    let mut next = || fields.next().and_then(|f| HeaderValue::from_bytes(f).ok());
    let (user, key, last_event, authorization) = (next(), next(), next(), next());
    let server = common::server();

    let mut create = Request::post(format!("/threads/{THREAD}/messages"))
        .header("content-type", "application/json");
    if let Some(user) = &user {
        create = create.header("x-user-id", user.clone());
    }
    if let Some(key) = &key {
        create = create.header("idempotency-key", key.clone());
    }
    let body = Full::new(Bytes::from_static(br#"{"content":"fuzz"}"#));
    server.check(&server.trusted, create.body(body).expect("request"));

    let mut events = Request::get(format!("/threads/{THREAD}/events"));
    if let Some(last_event) = &last_event {
        events = events.header("last-event-id", last_event.clone());
    }
    server.check(
        &server.trusted,
        events.body(Full::new(Bytes::new())).expect("request"),
    );

    // The handler that verifies tokens: an input cannot forge one (it never holds the
    // secret), so a write with it is refused.
    let mut unread = Request::get(format!("/unread?threads={THREAD}"));
    if let Some(authorization) = &authorization {
        unread = unread.header("authorization", authorization.clone());
    }
    let (status, _) = server.check(
        &server.jwt,
        unread.body(Full::new(Bytes::new())).expect("request"),
    );
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "a token not signed with the secret was taken"
    );
});
