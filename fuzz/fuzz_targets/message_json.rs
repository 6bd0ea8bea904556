//! The JSON bodies a client sends: a new message, an edit, a read position, a moderator's
//! bulk delete. Whatever the bytes, the answer is a 2xx or a 4xx with an error body; a
//! message created from them reads back with the content it was given.
#![no_main]

#[path = "common/mod.rs"]
mod common;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::Full;
use libfuzzer_sys::fuzz_target;

use common::{AUTHOR, THREAD};

/// A thread with no messages: a bulk delete there never removes the message the edits need.
const EMPTY: &str = "0193a1a0-0000-7000-8000-000000000002";

fuzz_target!(|data: &[u8]| {
    let Some((&route, body)) = data.split_first() else {
        return;
    };
    let server = common::server();
    let m = &server.message;
    let (method, path) = match route % 4 {
        0 => (Method::POST, format!("/threads/{THREAD}/messages")),
        1 => (Method::PUT, format!("/threads/{THREAD}/messages/{m}")),
        2 => (Method::PUT, format!("/threads/{THREAD}/read")),
        _ => (
            Method::POST,
            format!("/threads/{EMPTY}/messages/bulk-delete"),
        ),
    };
    let request = Request::builder()
        .method(method.clone())
        .uri(path)
        .header("x-user-id", AUTHOR)
        .header("x-user-roles", "moderator")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::copy_from_slice(body)))
        .expect("request");
    let (status, answer) = server.check(&server.trusted, request);
    if status == StatusCode::CREATED {
        let sent: serde_json::Value = serde_json::from_slice(body).expect("a created body is JSON");
        let stored: serde_json::Value = serde_json::from_slice(&answer).expect("JSON answer");
        assert_eq!(
            stored["content"], sent["content"],
            "the content kept as sent"
        );
    }
});
