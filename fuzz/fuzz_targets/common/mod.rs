//! The server's request handler on the in-memory store, built once per fuzzing process, and
//! the one property every target holds it to: whatever a client sends, the answer is never a
//! 5xx (a malformed request is a 4xx with an error body), and nothing panics.

#![allow(dead_code, reason = "each target uses the part it needs")]

use std::sync::OnceLock;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use messages_server::{Application, Config, Handler};

/// The thread and the message that exist before any input runs, and their author.
pub const THREAD: &str = "0193a1a0-0000-7000-8000-000000000001";
pub const AUTHOR: &str = "0193a1a0-0000-7000-8000-0000000000aa";
/// The HS256 secret of the handler that verifies bearer tokens.
pub const SECRET: &str = "fuzzing-secret-of-at-least-32-bytes!!";

pub struct Server {
    runtime: tokio::runtime::Runtime,
    /// Trusts `X-User-Id` (the gateway's header).
    pub trusted: Handler,
    /// Verifies a bearer JWT (`AUTH_JWT_SECRET`).
    pub jwt: Handler,
    /// A message of `AUTHOR` in `THREAD`.
    pub message: String,
}

fn handler(runtime: &tokio::runtime::Runtime, vars: &[(&str, &str)]) -> Handler {
    let config = Config::from_lookup(|name| {
        vars.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| (*v).to_owned())
    })
    .expect("the fuzzing configuration is valid");
    runtime.block_on(async {
        let app = Application::build(config)
            .await
            .expect("the handler builds on the memory store");
        let (handler, background) = app.into_handler(std::future::pending());
        tokio::spawn(background);
        handler
    })
}

/// The process's server.
pub fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| {
        // A paused clock, which moves on whenever the handler waits on it: a long poll's
        // `wait=30` answers at once instead of holding the fuzzer for 30 s.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .expect("runtime");
        let common = [
            ("STORE", "memory"),
            ("BIND_ADDR", "127.0.0.1:0"),
            ("RATE_LIMIT_WRITES_PER_SECOND", "0"),
            ("STREAM_HEARTBEAT_SECONDS", "1"),
        ];
        let trusted = handler(&runtime, &common);
        let mut with_jwt = common.to_vec();
        with_jwt.push(("AUTH_JWT_SECRET", SECRET));
        let jwt = handler(&runtime, &with_jwt);
        let mut server = Server {
            runtime,
            trusted,
            jwt,
            message: String::new(),
        };
        let created = server.send(
            &server.trusted,
            Request::post(format!("/threads/{THREAD}/messages"))
                .header("x-user-id", AUTHOR)
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from_static(br#"{"content":"hello"}"#)))
                .expect("request"),
        );
        assert_eq!(created.0, StatusCode::CREATED, "{:?}", created.1);
        let json: serde_json::Value = serde_json::from_slice(&created.1).expect("JSON");
        server.message = json["id"].as_str().expect("an id").to_owned();
        server
    })
}

impl Server {
    /// Answers `request`; the status and the body (none read from an event stream, which
    /// does not end).
    pub fn send(&self, handler: &Handler, request: Request<Full<Bytes>>) -> (StatusCode, Bytes) {
        self.runtime.block_on(async {
            let response = handler.handle(request).await;
            let status = response.status();
            let streaming = response
                .headers()
                .get("content-type")
                .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
            let body = if streaming {
                // The stream ends on its next heartbeat after the reader leaves: let the
                // (paused) clock pass one, so streams do not pile up across inputs.
                drop(response);
                tokio::time::sleep(std::time::Duration::from_secs(2)).await;
                Bytes::new()
            } else {
                response
                    .into_body()
                    .collect()
                    .await
                    .map(|b| b.to_bytes())
                    .unwrap_or_default()
            };
            (status, body)
        })
    }

    /// Answers `request` and holds the answer to the property: no 5xx, and a refusal says why
    /// in the error body.
    pub fn check(&self, handler: &Handler, request: Request<Full<Bytes>>) -> (StatusCode, Bytes) {
        let what = format!("{} {}", request.method(), request.uri());
        let (status, body) = self.send(handler, request);
        assert!(
            !status.is_server_error(),
            "{what} answered {status}: {}",
            String::from_utf8_lossy(&body)
        );
        if status.is_client_error() && status != StatusCode::METHOD_NOT_ALLOWED {
            let json: serde_json::Value = serde_json::from_slice(&body)
                .unwrap_or_else(|_| panic!("{what}: a {status} without a JSON error body"));
            assert!(
                json["error"].is_object() || json["error"].is_string(),
                "{what}: {json}"
            );
        }
        (status, body)
    }
}
