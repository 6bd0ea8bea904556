//! Live delivery over HTTP: the event stream (on every backend and behind the gateway), its
//! resumption with `Last-Event-ID`, a subscriber on one process and writers on another, a cut
//! notification transport, slow readers, the stream limit, shutdown, and the long poll.

use std::sync::Arc;
use std::time::{Duration, Instant};

use http::StatusCode;
use messages_core::testing::postgres::TestDatabase;
use messages_core::testing::proxy::TcpProxy;
use messages_core::testing::redis::{redis_url, unique_prefix};
use messages_server::config::{LiveTransport, StoreSettings};
use serde_json::json;

use crate::helpers::{
    SseEvent, TestApp, database_settings, new_id, redis_settings, start, test_config,
};

const SOON: Duration = Duration::from_secs(5);

fn id_of(m: &serde_json::Value) -> String {
    m["id"].as_str().unwrap_or_default().to_owned()
}

/// What a list of events says, in a form easy to compare: (id, type, message id).
fn summary(events: &[SseEvent]) -> Vec<(i64, String, String)> {
    events
        .iter()
        .map(|e| (e.id, e.event.clone(), id_of(&e.data)))
        .collect()
}

/// A stream from `since=0` sees every change of the thread as it commits, in rev order,
/// with the shapes of the changes feed; a reconnect with `Last-Event-ID` gets exactly what
/// came after it.
async fn a_stream_carries_every_change_and_resumes(app: &TestApp) {
    let thread = new_id();
    let user = new_id();
    let first = app.post_text(&thread, &user, "before the stream").await;
    let mut stream = app
        .events(&thread, "?since=0", &[])
        .await
        .unwrap_or_else(|r| panic!("stream: {:?}", r.status));
    assert_eq!(
        stream
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("text/event-stream")
    );
    // The replay: what was there before.
    let replay = stream.take(1, SOON).await;
    assert_eq!(
        summary(&replay),
        [(1, "message.created".into(), id_of(&first))]
    );
    assert_eq!(replay[0].data, first);
    // Live: a create, an edit and a delete, in order. Each is taken before the next is made:
    // the changes feed keeps a message's latest change only, so a feed that reads after the
    // edit has committed rightly shows the message once, as updated at rev 3.
    let second = app.post_text(&thread, &user, "live").await;
    let mut live = stream.take(1, SOON).await;
    let edited = app
        .edit(
            &thread,
            &id_of(&second),
            &user,
            json!({"content": "live, edited"}),
        )
        .await
        .json();
    live.extend(stream.take(1, SOON).await);
    assert_eq!(
        app.remove(&thread, &id_of(&first), &user).await.status,
        StatusCode::NO_CONTENT
    );
    live.extend(stream.take(1, SOON).await);
    assert_eq!(
        summary(&live),
        [
            (2, "message.created".into(), id_of(&second)),
            (3, "message.updated".into(), id_of(&second)),
            (4, "message.deleted".into(), id_of(&first)),
        ]
    );
    assert_eq!(live[1].data, edited);
    assert_eq!(live[2].data["rev"], 4);
    assert!(live[2].data["deleted_at"].is_string() && live[2].data.get("content").is_none());
    drop(stream);

    // A burst while away; the reader comes back with the last id it had.
    let mut burst = Vec::new();
    for i in 0..20 {
        burst.push(app.post_text(&thread, &user, &format!("burst {i}")).await);
    }
    let mut resumed = app
        .events(&thread, "", &[("last-event-id", "4")])
        .await
        .unwrap_or_else(|r| panic!("resume: {:?}", r.status));
    let got = resumed.take(20, SOON).await;
    assert_eq!(
        got.iter().map(|e| e.id).collect::<Vec<_>>(),
        (5..25).collect::<Vec<_>>(),
        "exactly what came after the last id, once"
    );
    assert_eq!(
        got.iter().map(|e| id_of(&e.data)).collect::<Vec<_>>(),
        burst.iter().map(id_of).collect::<Vec<_>>()
    );
    // With neither Last-Event-ID nor since, only what comes next.
    let mut fresh = app
        .events(&thread, "", &[])
        .await
        .unwrap_or_else(|r| panic!("fresh: {:?}", r.status));
    let next = app
        .post_text(&thread, &user, "after the fresh stream")
        .await;
    assert_eq!(
        summary(&fresh.take(1, SOON).await),
        [(25, "message.created".into(), id_of(&next))]
    );
    // A bad position is a 400.
    for (query, header) in [("?since=-1", None), ("", Some("x"))] {
        let headers: Vec<(&str, &str)> = header.map(|h| ("last-event-id", h)).into_iter().collect();
        let r = app
            .events(&thread, query, &headers)
            .await
            .err()
            .unwrap_or_else(|| panic!("{query} {header:?} opened a stream"));
        assert_eq!(
            (r.status, r.error_code().as_str()),
            (StatusCode::BAD_REQUEST, "invalid_since")
        );
    }
}

/// A long poll of the changes feed answers as soon as something changes, or empty when the
/// wait runs out.
async fn a_long_poll_answers_when_the_thread_moves(app: &TestApp) {
    let thread = new_id();
    let user = new_id();
    app.post_text(&thread, &user, "one").await;
    let started = Instant::now();
    let idle = app.changes(&thread, "?since=1&wait=1").await;
    assert_eq!(idle, json!({"changes": [], "next": 1, "has_more": false}));
    assert!(started.elapsed() >= Duration::from_millis(900), "it waited");
    let poll = {
        let path = format!("/threads/{thread}/changes?since=1&wait=10");
        let client_app: &TestApp = app;
        async move {
            client_app
                .request(http::Method::GET, &path, &[], None)
                .await
                .json()
        }
    };
    let write = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        app.post_text(&thread, &user, "two").await
    };
    let started = Instant::now();
    let (answer, two) = tokio::join!(poll, write);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "answered at the write"
    );
    assert_eq!(answer["changes"][0], two);
    assert_eq!(answer["next"], 2);
    let r = app
        .request(
            http::Method::GET,
            &format!("/threads/{thread}/changes?wait=31"),
            &[],
            None,
        )
        .await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (StatusCode::BAD_REQUEST, "invalid_wait")
    );
}

macro_rules! on_backends {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let app = crate::helpers::spawn_app(crate::helpers::Backend::Memory).await.expect("memory");
                super::$name(&app).await;
            })*
        }
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let app = crate::helpers::spawn_app(crate::helpers::Backend::Sqlite).await.expect("SQLite");
                super::$name(&app).await;
            })*
        }
        mod postgres_redis {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let Some(app) = crate::helpers::spawn_app(crate::helpers::Backend::PostgresRedis).await else { return };
                super::$name(&app).await;
            })*
        }
        mod behind_gateway {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let Some(app) = crate::helpers::spawn_app(crate::helpers::Backend::SqliteBehindGateway).await else { return };
                super::$name(&app).await;
            })*
        }
    };
}

on_backends!(
    a_stream_carries_every_change_and_resumes,
    a_long_poll_answers_when_the_thread_moves,
);

/// Checks that `events` are every change `expected` (id, type, message) exactly once, in rev
/// order.
fn assert_exactly_once_in_order(events: &[SseEvent], expected: &[(String, &str)]) {
    let ids: Vec<i64> = events.iter().map(|e| e.id).collect();
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "in rev order, none twice: {ids:?}"
    );
    let mut got: Vec<(String, String)> = events
        .iter()
        .map(|e| (id_of(&e.data), e.event.clone()))
        .collect();
    let mut want: Vec<(String, String)> = expected
        .iter()
        .map(|(id, kind)| (id.clone(), (*kind).to_owned()))
        .collect();
    got.sort();
    want.sort();
    assert_eq!(got, want, "every change, once");
}

/// A subscriber on one process, writers on another, sharing PostgreSQL and Redis, over the
/// transport `LIVE_TRANSPORT` names: every create, edit and delete arrives once, in rev order;
/// then the same with the reader's link to the transport cut through `proxy` while the writer
/// goes on, and restored after its last write.
async fn across_processes_even_across_a_cut(reader: TestApp, writer: TestApp, proxy: &TcpProxy) {
    let writer = Arc::new(writer);
    let thread = new_id();
    let user = new_id();

    // Every create, edit and delete, each waited for before the next: each is its own event,
    // arriving over the other process's hints.
    let mut stream = reader
        .events(&thread, "?since=0", &[])
        .await
        .unwrap_or_else(|r| panic!("stream: {:?}", r.status));
    let mut expected = Vec::new();
    let mut received = Vec::new();
    for i in 0..10 {
        let m = writer.post_text(&thread, &user, &format!("m{i}")).await;
        expected.push((id_of(&m), "message.created"));
        received.extend(stream.take(1, SOON).await);
        if i % 3 == 0 {
            writer
                .edit(
                    &thread,
                    &id_of(&m),
                    &user,
                    json!({"content": format!("m{i}, edited")}),
                )
                .await;
            expected.push((id_of(&m), "message.updated"));
            received.extend(stream.take(1, SOON).await);
        }
        if i % 4 == 1 {
            writer.remove(&thread, &id_of(&m), &user).await;
            expected.push((id_of(&m), "message.deleted"));
            received.extend(stream.take(1, SOON).await);
        }
    }
    assert_exactly_once_in_order(&received, &expected);
    assert_eq!(
        received.iter().map(|e| e.id).collect::<Vec<_>>(),
        (1..=expected.len() as i64).collect::<Vec<_>>(),
        "one event per change, numbered without gaps"
    );
    let position = received.last().map_or(0, |e| e.id);
    drop(stream);
    // The cut: the reader's process loses its transport while the writer goes on; when the
    // link is back, the reader's stream catches up by itself.
    let follower = {
        let thread = thread.clone();
        tokio::spawn(async move {
            let events = {
                let mut stream = reader
                    .events(&thread, "", &[("last-event-id", &position.to_string())])
                    .await
                    .unwrap_or_else(|r| panic!("stream: {:?}", r.status));
                stream.take(15, Duration::from_secs(20)).await
            };
            (reader, events)
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    proxy.cut();
    let mut during = Vec::new();
    for i in 0..15 {
        let m = writer
            .post_text(&thread, &user, &format!("during {i}"))
            .await;
        during.push((id_of(&m), "message.created"));
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    // Nothing is written after the link is back: only the transport's recovery (the store
    // read on relink) can bring these.
    proxy.restore();
    let (reader, events) = follower.await.expect("follower");
    assert_exactly_once_in_order(&events, &during);
    assert!(
        events.first().is_some_and(|e| e.id == position + 1),
        "nothing missed at the seam"
    );
    // And the stream resumed on the reader's process, which was cut, not the writer's.
    drop(reader);
}

/// Over `NOTIFY`: the reader's link to PostgreSQL (its store and its notifications) is cut.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_on_one_process_reach_a_stream_on_another_over_notify_even_across_a_cut() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let Some(redis) = redis_url() else { return };
    let prefix = unique_prefix();
    let proxy = TcpProxy::start(db.upstream().await).await;
    let mut through_proxy = test_config();
    through_proxy.store = StoreSettings::Postgres(database_settings(&db.url_through(proxy.addr())));
    through_proxy.redis = Some(redis_settings(&redis, &prefix));
    through_proxy.streams.transport = LiveTransport::Postgres;
    let mut direct = test_config();
    direct.store = StoreSettings::Postgres(database_settings(db.url()));
    direct.redis = Some(redis_settings(&redis, &prefix));
    direct.streams.transport = LiveTransport::Postgres;
    across_processes_even_across_a_cut(start(through_proxy).await, start(direct).await, &proxy)
        .await;
}

/// The address a `redis://host:port/...` URL names.
async fn redis_addr(url: &str) -> std::net::SocketAddr {
    let authority = url
        .trim_start_matches("redis://")
        .rsplit('@')
        .next()
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_default()
        .to_owned();
    tokio::net::lookup_host(authority)
        .await
        .ok()
        .and_then(|mut addrs| addrs.next())
        .unwrap_or_else(|| panic!("REDIS_URL {url:?} names no address"))
}

/// Over Redis sharded pub/sub (the default with Redis): the reader's link to Redis (its
/// cache, its subscriptions) is cut; the store stays reachable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_on_one_process_reach_a_stream_on_another_over_redis_even_across_a_cut() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let Some(redis) = redis_url() else { return };
    let prefix = unique_prefix();
    let proxy = TcpProxy::start(redis_addr(&redis).await).await;
    let through = format!("redis://{}/0", proxy.addr());
    let mut reader = test_config();
    reader.store = StoreSettings::Postgres(database_settings(db.url()));
    reader.redis = Some(redis_settings(&through, &prefix));
    let mut writer = test_config();
    writer.store = StoreSettings::Postgres(database_settings(db.url()));
    writer.redis = Some(redis_settings(&redis, &prefix));
    across_processes_even_across_a_cut(start(reader).await, start(writer).await, &proxy).await;
}

/// How many subscribers Redis has on a thread's live channel.
async fn subscribers(redis: &mut redis::aio::MultiplexedConnection, channel: &str) -> i64 {
    let counts: Vec<redis::Value> = redis::cmd("PUBSUB")
        .arg("SHARDNUMSUB")
        .arg(channel)
        .query_async(redis)
        .await
        .expect("PUBSUB SHARDNUMSUB");
    match counts.get(1) {
        Some(redis::Value::Int(n)) => *n,
        other => panic!("PUBSUB SHARDNUMSUB answered {other:?}"),
    }
}

/// A replica subscribes to the threads its readers follow, and to no other: the channel of a
/// followed thread has one subscriber while the stream is open, none once it closes, and a
/// thread written to but not followed has none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_subscribes_only_to_the_threads_its_readers_follow() {
    let Some(redis) = redis_url() else { return };
    let prefix = unique_prefix();
    let mut config = test_config();
    config.redis = Some(redis_settings(&redis, &prefix));
    // A closed stream is noticed at its next write.
    config.streams.heartbeat = Duration::from_secs(1);
    let app = start(config).await;
    let mut probe = redis::Client::open(redis.as_str())
        .expect("REDIS_URL")
        .get_multiplexed_async_connection()
        .await
        .expect("Redis");
    let (followed, other, user) = (new_id(), new_id(), new_id());
    let channel = |thread: &str| format!("{prefix}:live:{{{thread}}}");
    let watcher = probe.clone();
    let settle = |want: i64, thread: String| {
        let mut probe = watcher.clone();
        let channel = channel(&thread);
        async move {
            let deadline = Instant::now() + SOON;
            loop {
                let got = subscribers(&mut probe, &channel).await;
                if got == want || Instant::now() > deadline {
                    return got;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    assert_eq!(subscribers(&mut probe, &channel(&followed)).await, 0);
    let mut stream = app
        .events(&followed, "?since=0", &[])
        .await
        .unwrap_or_else(|r| panic!("stream: {:?}", r.status));
    assert_eq!(settle(1, followed.clone()).await, 1, "the followed thread");
    app.post_text(&other, &user, "not followed").await;
    app.post_text(&followed, &user, "followed").await;
    assert_eq!(stream.take(1, SOON).await.len(), 1);
    assert_eq!(
        subscribers(&mut probe, &channel(&other)).await,
        0,
        "a thread nobody here follows"
    );
    drop(stream);
    assert_eq!(
        settle(0, followed.clone()).await,
        0,
        "unsubscribed once nobody follows"
    );
}

/// A reader that stops reading is closed, and the server's memory stays bounded: a child
/// server, a client that reads its stream's headers and then nothing, and 8 MB of messages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_that_stops_reading_is_closed_and_memory_stays_bounded() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let port = crate::helpers::free_port();
    let mut child = crate::helpers::server_command()
        .env("BIND_ADDR", format!("127.0.0.1:{port}"))
        .env("STREAM_BUFFER", "16")
        .env("STREAM_SLOW_READER_SECONDS", "1")
        .spawn()
        .expect("start the server");
    let addr = format!("127.0.0.1:{port}");
    let app_client = crate::helpers::RemoteClient::new(&addr).await;
    let buffered = || async {
        let page = app_client.get_text("/metrics").await;
        crate::helpers::metric(&page, "live_stream_buffered_bytes").unwrap_or(0.0)
    };
    let thread = new_id();
    let user = new_id();
    let big = "x".repeat(3_900);

    // The stuck reader: a request, then never a read. A tiny receive window makes the kernel
    // stop taking the stream almost at once.
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("recv buffer");
    let mut stuck = socket
        .connect(addr.parse().expect("addr"))
        .await
        .expect("connect");
    stuck
        .write_all(format!("GET /threads/{thread}/events HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
        .await
        .expect("request");
    // 2,000 events of 4 KB (8 MB) while the reader takes none: what the server holds for it
    // (what its stream queued and the connection has not taken) stays within the stream's
    // buffer of 16 events, however many are written.
    let mut most = 0f64;
    for i in 0..2_000 {
        app_client.post_text(&thread, &user, &big).await;
        if i % 50 == 0 {
            most = most.max(buffered().await);
        }
    }
    // The server closed the stream: draining the socket now ends in EOF.
    let mut buf = vec![0u8; 65_536];
    let closed = tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            match stuck.read(&mut buf).await {
                Ok(0) | Err(_) => return true,
                Ok(_) => {}
            }
        }
    })
    .await
    .unwrap_or(false);
    let after = buffered().await;
    let metrics = app_client.get_text("/metrics").await;
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        most > 0.0 && most <= 18.0 * 4_300.0,
        "a stuck reader's stream held {most} bytes at most; its buffer is 16 events of about 4 KB"
    );
    assert!(closed, "the stuck reader's stream was closed");
    assert_eq!(after, 0.0, "a closed stream holds nothing");
    assert!(
        metrics.contains("live_slow_readers_closed_total 1"),
        "counted as a slow reader:\n{metrics}"
    );
}

/// Past `STREAM_MAX` a new stream is a 503 with `Retry-After`; shutdown ends open streams
/// within the drain timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_are_limited_and_end_at_shutdown() {
    let mut config = test_config();
    config.streams.max_open = 1;
    let app = start(config).await;
    let thread = new_id();
    let mut open = app
        .events(&thread, "", &[])
        .await
        .unwrap_or_else(|r| panic!("{:?}", r.status));
    let refused = app
        .events(&thread, "", &[])
        .await
        .err()
        .expect("a second stream refused");
    assert_eq!(refused.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(refused.error_code(), "unavailable");
    assert!(refused.headers.get("retry-after").is_some());
    let stopping = tokio::spawn(app.stop());
    assert!(
        open.ends_within(Duration::from_secs(3)).await,
        "the stream ended at shutdown"
    );
    let stopped = tokio::time::timeout(Duration::from_secs(5), stopping).await;
    assert!(
        matches!(stopped, Ok(Ok(Ok(())))),
        "the server stopped within the drain timeout"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_need_no_token_with_jwt_on() {
    let mut config = test_config();
    config.auth = messages_server::config::AuthSettings::Hs256 {
        secret: "0123456789abcdef0123456789abcdef".to_owned().into(),
        issuer: None,
        audience: None,
        roles_claim: "roles".into(),
    };
    let app = start(config).await;
    assert!(
        app.events(&new_id(), "", &[]).await.is_ok(),
        "reads, streams included, need no token"
    );
}
