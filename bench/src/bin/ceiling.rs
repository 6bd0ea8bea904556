//! The HTTP ceiling: a minimal hyper server that answers every request with the bytes of one
//! file, as fast as hyper can. `ceiling <file> [addr]`, default addr `127.0.0.1:3100`.
//! Measured beside the service, it shows what the service costs on top of HTTP itself.

use std::convert::Infallible;
use std::sync::Arc;

use anyhow::Context;
use bytes::Bytes;
use http::{HeaderValue, Response, header};
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let file = args.next().context("usage: ceiling <file> [addr]")?;
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:3100".into());
    let body = Bytes::from(std::fs::read(&file).with_context(|| format!("read {file}"))?);
    let body = Arc::new(body);
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    eprintln!("ceiling: {} bytes on {addr}", body.len());
    let builder = auto::Builder::new(TokioExecutor::new());
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let body = Arc::clone(&body);
        let service = service_fn(move |_request| {
            let mut response = Response::new(Full::new(Bytes::clone(&body)));
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            async move { Ok::<_, Infallible>(response) }
        });
        let connection = builder
            .serve_connection(TokioIo::new(stream), service)
            .into_owned();
        tokio::spawn(async move {
            let _ = connection.await;
        });
    }
}
