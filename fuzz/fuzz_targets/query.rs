//! The query string of each route that reads one (a page, the changes feed and its long poll,
//! an event stream's start, unread counts, who reacted, a message's edits), sent to the
//! server's handler: whatever it holds, the answer is a 2xx or a 4xx with an error body.
#![no_main]

#[path = "common/mod.rs"]
mod common;

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use libfuzzer_sys::fuzz_target;

use common::{AUTHOR, THREAD};

fuzz_target!(|data: &[u8]| {
    let Some((&route, rest)) = data.split_first() else {
        return;
    };
    let Ok(query) = std::str::from_utf8(rest) else {
        return;
    };
    let server = common::server();
    let m = &server.message;
    let path = match route % 6 {
        0 => format!("/threads/{THREAD}/messages"),
        1 => format!("/threads/{THREAD}/changes"),
        2 => format!("/threads/{THREAD}/events"),
        3 => "/unread".to_owned(),
        4 => format!("/threads/{THREAD}/messages/{m}/reactions/:tada:"),
        _ => format!("/threads/{THREAD}/messages/{m}/edits"),
    };
    // What HTTP cannot carry in a request line never reaches the handler.
    let Ok(uri) = http::Uri::try_from(format!("{path}?{query}")) else {
        return;
    };
    let Ok(request) = Request::get(uri)
        .header("x-user-id", AUTHOR)
        .body(Full::new(Bytes::new()))
    else {
        return;
    };
    server.check(&server.trusted, request);
});
