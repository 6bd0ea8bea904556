//! The messages service mounted in an axum application, through the public API only: the
//! host application has routes of its own, and the whole messages API (every route, its
//! errors, logs and metrics) answers under `/messages`, with the outbox relay running beside
//! it and stopping with the host.
//!
//!   cargo run -p messages-server --example axum_mount            # checks itself, then stops
//!   cargo run -p messages-server --example axum_mount -- serve   # serves on 127.0.0.1:3000
//!
//! Settings come from the environment as for the server (`DATABASE_URL`, `REDIS_URL`, ...);
//! without any, the embedded default (SQLite, in `./data`, or in a temporary directory for
//! the self-check).

use std::convert::Infallible;

use anyhow::{Context, bail};
use axum::Router;
use axum::routing::get;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use messages_server::config::{SqliteSettings, StoreSettings};
use messages_server::{Application, Config};
use tokio::sync::oneshot;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let serve = std::env::args().nth(1).as_deref() == Some("serve");
    let mut config = Config::from_env()?;
    let scratch = std::env::temp_dir().join(format!("messages-axum-{}", std::process::id()));
    if !serve {
        // The self-check keeps nothing: a data directory of its own, removed at the end.
        if matches!(config.store, StoreSettings::Sqlite(_)) {
            config.store = StoreSettings::Sqlite(SqliteSettings::new(&scratch));
        }
    }
    // The host listens; the service's own listener is not used.
    config.http.bind_addr = "127.0.0.1:0".parse()?;
    let app = Application::build(config).await?;
    let (stop, stopped) = oneshot::channel::<()>();
    let (messages, background) = app.into_handler(async {
        let _ = stopped.await;
    });
    let relay = tokio::spawn(background);
    let streams = messages.clone();

    let service = tower::service_fn(move |request: axum::extract::Request| {
        let messages = messages.clone();
        async move { Ok::<_, Infallible>(messages.handle(request).await) }
    });
    let host = Router::new()
        .route(
            "/",
            get(|| async { "the host application; messages under /messages\n" }),
        )
        .nest_service("/messages", service);

    let addr = if serve {
        "127.0.0.1:3000"
    } else {
        "127.0.0.1:0"
    };
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    println!("axum_mount: listening on http://{addr}, the messages API under /messages");
    let (quit, quitting) = oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        axum::serve(listener, host)
            .with_graceful_shutdown(async {
                let _ = quitting.await;
            })
            .await
    });

    let outcome = if serve {
        tokio::signal::ctrl_c().await.context("waiting for Ctrl-C")
    } else {
        check(&format!("http://{addr}")).await
    };
    // Open event streams would hold the host's graceful shutdown: end them first.
    streams.close_streams();
    let _ = quit.send(());
    server.await??;
    let _ = stop.send(());
    relay.await?;
    let _ = std::fs::remove_dir_all(&scratch);
    outcome
}

/// Uses the mounted API as a client would: the host's own route, a create, the newest page,
/// and an error in the service's words.
async fn check(base: &str) -> anyhow::Result<()> {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let thread = "0193a1a0-0000-7000-8000-0000000000f1";
    let user = "0193a1a0-0000-7000-8000-0000000000f2";
    let send = |method: &str, path: &str, body: &str| {
        let request = hyper::Request::builder()
            .method(method)
            .uri(format!("{base}{path}"))
            .header("x-user-id", user)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body.to_owned())));
        let client = client.clone();
        async move {
            let response = client.request(request?).await?;
            let status = response.status().as_u16();
            let body = response.into_body().collect().await?.to_bytes();
            anyhow::Ok((status, String::from_utf8_lossy(&body).into_owned()))
        }
    };
    let (status, body) = send("GET", "/", "").await?;
    println!("GET / -> {status}: {}", body.trim());
    let path = format!("/messages/threads/{thread}/messages");
    let (status, created) = send("POST", &path, r#"{"content": "hello from axum"}"#).await?;
    println!("POST {path} -> {status}: {created}");
    if status != 201 || !created.contains("hello from axum") {
        bail!("the mounted create answered {status}: {created}");
    }
    let (status, page) = send("GET", &format!("{path}?limit=10"), "").await?;
    println!("GET {path}?limit=10 -> {status}: {page}");
    if status != 200 || !page.contains("hello from axum") {
        bail!("the mounted page answered {status}: {page}");
    }
    let (status, refused) = send("GET", "/messages/threads/not-a-thread/messages", "").await?;
    println!("GET /messages/threads/not-a-thread/messages -> {status}: {refused}");
    if status != 400 {
        bail!("a bad thread id answered {status}, not 400");
    }
    println!("axum_mount: the mounted service answered as the server does");
    Ok(())
}
