//! A connection's and a process's life: a write in flight when SIGTERM arrives is answered
//! and its event delivered; clients that send their headers slowly, or nothing, are cut off.

use std::process::Stdio;
use std::time::{Duration, Instant};

use messages_core::testing::amqp::{TestConsumer, amqp_url, test_config as amqp_config};
use secrecy::ExposeSecret;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{free_port, new_id, send_signal, server_command, start, test_config};

/// Reads until the peer closes, or `within` passes; returns what arrived and whether it closed.
async fn read_until_closed(stream: &mut TcpStream, within: Duration) -> (Vec<u8>, bool) {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (seen, true),
            Ok(Ok(n)) => seen.extend_from_slice(&buf[..n]),
            Err(_) => return (seen, false),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_in_flight_at_sigterm_is_answered_and_its_event_delivered() {
    let Some(url) = amqp_url() else { return };
    let amqp = amqp_config(&url);
    let consumer = TestConsumer::bind(&amqp).await;
    let port = free_port();
    // The in-memory outbox: an event the relay does not deliver before exit is lost.
    let mut child = server_command()
        .env("BIND_ADDR", format!("127.0.0.1:{port}"))
        .env("AMQP_URL", amqp.url.expose_secret())
        .env("AMQP_EXCHANGE", &amqp.exchange)
        .env(
            "AMQP_LEGACY_QUEUE",
            amqp.legacy_queue.as_deref().unwrap_or("none"),
        )
        .env("SHUTDOWN_TIMEOUT_SECONDS", "5")
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the server");
    let addr = format!("127.0.0.1:{port}");
    let mut stream = None;
    for _ in 0..200 {
        if let Ok(s) = TcpStream::connect(&addr).await {
            stream = Some(s);
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let mut stream = stream.expect("the server listens");

    // Headers and half of the body: the request is in flight.
    let thread = new_id();
    let body = br#"{"content":"written while the server stops"}"#;
    let (first, rest) = body.split_at(body.len() / 2);
    let head = format!(
        "POST /threads/{thread}/messages HTTP/1.1\r\nHost: x\r\nX-User-Id: {}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        new_id(),
        body.len()
    );
    stream.write_all(head.as_bytes()).await.expect("write head");
    stream.write_all(first).await.expect("write half");
    tokio::time::sleep(Duration::from_millis(200)).await;

    send_signal(&child, "TERM");
    // The server is draining now; new connections are refused.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        TcpStream::connect(&addr).await.is_err(),
        "stopped accepting"
    );

    stream.write_all(rest).await.expect("write the rest");
    let (response, _) = read_until_closed(&mut stream, Duration::from_secs(5)).await;
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 201"), "{response}");

    let exited = tokio::task::spawn_blocking(move || {
        let status = child.wait().expect("wait");
        let mut log = String::new();
        if let Some(mut out) = child.stdout.take() {
            let _ = std::io::Read::read_to_string(&mut out, &mut log);
        }
        (status, log)
    });
    let (status, log) = tokio::time::timeout(Duration::from_secs(15), exited)
        .await
        .expect("the server exits within the drain timeouts")
        .expect("join");
    assert!(status.success(), "{log}");
    let arrived = consumer
        .drain(&consumer.all_queue, 1, Duration::from_secs(5))
        .await;
    assert_eq!(
        arrived.len(),
        1,
        "the event of the write that finished during the drain reached the broker:\n{log}"
    );
    assert!(String::from_utf8_lossy(&arrived[0].body).contains("written while the server stops"));
    // The log says what happened, in order.
    let order = [
        "stopped accepting; draining in-flight requests",
        "every connection finished its requests",
        "the outbox relay delivers what is pending",
        "outbox relay stopped; nothing left to deliver",
        "stopped",
    ];
    let mut from = 0;
    for line in order {
        let at = log[from..]
            .find(line)
            .unwrap_or_else(|| panic!("{line:?} missing or out of order in:\n{log}"));
        from += at + line.len();
    }
    consumer.cleanup().await;
}

/// A body that does not arrive within `BODY_READ_TIMEOUT_SECONDS` is a 400 `bad_body`.
#[tokio::test]
async fn a_body_that_does_not_arrive_in_time_is_a_400_bad_body() {
    let mut config = test_config();
    config.http.body_read_timeout = Duration::from_secs(1);
    let app = start(config).await;
    let (thread, user) = (new_id(), new_id());
    let mut slow = TcpStream::connect(app.addr).await.expect("connect");
    slow.write_all(
        format!(
            "POST /threads/{thread}/messages HTTP/1.1\r\nHost: x\r\nX-User-Id: {user}\r\n\
             Content-Length: 40\r\n\r\n{{\"content\":"
        )
        .as_bytes(),
    )
    .await
    .expect("write");
    let started = Instant::now();
    let mut answer = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), slow.read(&mut answer))
        .await
        .expect("answered within the timeout")
        .expect("read");
    let waited = started.elapsed();
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("\"code\":\"bad_body\""), "{answer}");
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(3),
        "answered at the timeout: {waited:?}"
    );
    assert_eq!(
        app.page(&thread, "").await["items"],
        serde_json::json!([]),
        "nothing was stored"
    );
}

#[tokio::test]
async fn slow_or_silent_clients_are_cut_off_at_the_header_read_timeout() {
    let mut config = test_config();
    config.http.header_read_timeout = Duration::from_secs(1);
    let app = start(config).await;

    // Half a request line, then nothing.
    let mut slow = TcpStream::connect(app.addr).await.expect("connect");
    slow.write_all(b"GET /threads/").await.expect("write");
    let started = Instant::now();
    let (_, closed) = read_until_closed(&mut slow, Duration::from_secs(5)).await;
    assert!(closed, "a client stuck in its request line is disconnected");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(3),
        "closed at the timeout: {waited:?}"
    );

    // Nothing at all (hyper's own timer would not start before the protocol is known).
    let mut silent = TcpStream::connect(app.addr).await.expect("connect");
    let (_, closed) = read_until_closed(&mut silent, Duration::from_secs(5)).await;
    assert!(closed, "a client that sends nothing is disconnected");

    // Idle after a whole request: the keep-alive connection closes after the same timeout.
    let mut idle = TcpStream::connect(app.addr).await.expect("connect");
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let (answer, closed) = read_until_closed(&mut idle, Duration::from_secs(5)).await;
    assert!(String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 200"));
    assert!(closed, "an idle keep-alive connection is closed");

    // A client that keeps sending whole requests in time is served throughout.
    let mut busy = TcpStream::connect(app.addr).await.expect("connect");
    for _ in 0..4 {
        busy.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .expect("write");
        let mut buf = [0u8; 512];
        let n = tokio::time::timeout(Duration::from_secs(2), busy.read(&mut buf))
            .await
            .expect("answered")
            .expect("read");
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    app.stop().await.expect("clean stop");
}
