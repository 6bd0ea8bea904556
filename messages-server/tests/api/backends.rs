//! The server on its real backends: data that survives a restart, two processes sharing
//! PostgreSQL and Redis, and a PostgreSQL outage that answers 503 and recovers by itself.

use std::time::{Duration, Instant};

use crate::helpers::{database_settings, item_ids, new_id, redis_settings, start, test_config};
use http::{Method, StatusCode};
use messages_core::testing::postgres::TestDatabase;
use messages_core::testing::proxy::TcpProxy;
use messages_core::testing::redis::{redis_url, unique_prefix};
use messages_server::config::StoreSettings;

#[tokio::test]
async fn data_survives_a_restart() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let mut config = test_config();
    config.store = StoreSettings::Postgres(database_settings(db.url()));
    let thread = new_id();
    let user = new_id();
    let first = start(config.clone()).await;
    let m = first.post_text(&thread, &user, "durable").await;
    let keyed = first
        .create_with_key(
            &thread,
            &user,
            "restart-key",
            serde_json::json!({"content": "once"}),
        )
        .await;
    assert_eq!(keyed.status, StatusCode::CREATED);
    first.stop().await.expect("clean stop");

    let second = start(config).await;
    let page = second.page(&thread, "").await;
    assert_eq!(page["items"][1], m);
    // The idempotency key is persistent too.
    let retry = second
        .create_with_key(
            &thread,
            &user,
            "restart-key",
            serde_json::json!({"content": "once"}),
        )
        .await;
    assert_eq!(retry.json(), keyed.json());
    assert_eq!(item_ids(&second.page(&thread, "").await).len(), 2);
}

/// Two processes on one PostgreSQL, writing in turn: each read of the newest page shows
/// every write acknowledged before it, whichever process took the write.
async fn a_write_on_one_process_is_read_at_once_on_the_other(config: messages_server::Config) {
    let a = start(config.clone()).await;
    let b = start(config).await;
    let thread = new_id();
    let user = new_id();
    let mut expected = Vec::new();
    for i in 0..25 {
        // B's cache holds the newest page; A writes; B's next read must show the write.
        assert_eq!(item_ids(&b.page(&thread, "?limit=200").await), expected);
        let writer = if i % 2 == 0 { &a } else { &b };
        let m = writer.post_text(&thread, &user, &format!("m{i}")).await;
        expected.insert(0, m["id"].as_str().unwrap_or_default().to_owned());
        let reader = if i % 2 == 0 { &b } else { &a };
        assert_eq!(
            item_ids(&reader.page(&thread, "?limit=200").await),
            expected,
            "after write {i}"
        );
    }
    let (a, b) = (a.service.cache_stats(), b.service.cache_stats());
    assert!(a.hits + b.hits > 0, "the cache was used: {a:?} {b:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_on_one_process_is_read_at_once_on_the_other_through_redis() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let Some(redis) = redis_url() else { return };
    let prefix = unique_prefix();
    let mut config = test_config();
    config.store = StoreSettings::Postgres(database_settings(db.url()));
    config.redis = Some(redis_settings(&redis, &prefix));
    a_write_on_one_process_is_read_at_once_on_the_other(config).await;
}

/// Without Redis each process has a cache of its own, which hears of the other's writes from
/// nobody: its hits are checked against the thread's position in PostgreSQL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_on_one_process_is_read_at_once_on_the_other_without_redis() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let mut config = test_config();
    config.store = StoreSettings::Postgres(database_settings(db.url()));
    config.redis = None;
    a_write_on_one_process_is_read_at_once_on_the_other(config).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_outage_answers_503_and_recovers_without_restart() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let proxy = TcpProxy::start(db.upstream().await).await;
    let mut settings = database_settings(&db.url_through(proxy.addr()));
    settings.postgres.operation_timeout = Duration::from_secs(2);
    let mut config = test_config();
    config.store = StoreSettings::Postgres(settings);
    let app = start(config).await;
    let thread = new_id();
    let author = new_id();
    let before = app.post_text(&thread, &author, "before").await;

    proxy.cut();
    let started = std::time::Instant::now();
    let r = app
        .create(&thread, &author, serde_json::json!({"content": "during"}))
        .await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "no hang: {:?}",
        started.elapsed()
    );
    let r = app.request(Method::GET, "/readyz", &[], None).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    let r = app
        .list(
            &thread,
            "?limit=1&cursor=AQAGYUXzA1kSAaIeMexgdQmJkcXVsQ9PHg",
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "store reads fail as 503, not 500"
    );
    assert_eq!(
        app.request(Method::GET, "/healthz", &[], None).await.status,
        StatusCode::OK
    );

    proxy.restore();
    let mut recovered = false;
    for _ in 0..50 {
        if app.request(Method::GET, "/readyz", &[], None).await.status == StatusCode::OK {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(recovered, "ready again without a restart");
    let after = app.post_text(&thread, &author, "after").await;
    let ids = item_ids(&app.page(&thread, "").await);
    assert_eq!(
        ids,
        [
            after["id"].as_str().unwrap_or_default(),
            before["id"].as_str().unwrap_or_default()
        ],
        "the acknowledged writes are there, the refused one is not"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_reach_rabbitmq_through_the_postgres_outbox() {
    use messages_core::testing::amqp::{TestConsumer, amqp_url, test_config as amqp_test_config};
    let Some(url) = amqp_url() else { return };
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let amqp = amqp_test_config(&url);
    let consumer = TestConsumer::bind(&amqp).await;
    let mut config = test_config();
    config.store = StoreSettings::Postgres(database_settings(db.url()));
    config.events.amqp = Some(amqp.clone());
    config.events.relay.poll = Duration::from_millis(50);
    let app = start(config).await;
    let thread = new_id();
    let user = new_id();
    let m = app.post_text(&thread, &user, "to the broker").await;
    let legacy = amqp.legacy_queue.clone().unwrap_or_default();
    let old = consumer.drain(&legacy, 1, Duration::from_secs(10)).await;
    assert_eq!(
        old.len(),
        1,
        "the created event reached the old consumers' queue"
    );
    let body: serde_json::Value = serde_json::from_slice(&old[0].body).expect("JSON body");
    assert_eq!(
        body, m,
        "the old body: the message JSON, as the API returned it"
    );
    app.stop().await.expect("clean stop");
    consumer.cleanup().await;
}

/// How long after PostgreSQL returns a request that starts may still answer 503: the pool
/// opens new connections to replace those the outage cut.
const PG_RECOVERY: Duration = Duration::from_secs(1);

/// One request of the load: when it started and ended, and its status.
struct Answer {
    what: &'static str,
    started: Instant,
    ended: Instant,
    status: StatusCode,
}

/// Under steady load, PostgreSQL goes away and comes back, then Redis does. A request answers
/// 503 only if it was in flight while PostgreSQL was away or started within `PG_RECOVERY`
/// after it returned; no request fails while Redis is away; no other status appears; after
/// both, every acknowledged write is listed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outages_under_load_lose_no_acknowledged_write() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use tokio::sync::Mutex;

    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let Some(redis) = redis_url() else { return };
    let pg_proxy = TcpProxy::start(db.upstream().await).await;
    let redis_client = redis::Client::open(redis.as_str()).expect("REDIS_URL");
    let redis_addr = match redis_client.get_connection_info().addr() {
        redis::ConnectionAddr::Tcp(host, port) => tokio::net::lookup_host((host.as_str(), *port))
            .await
            .expect("resolve REDIS_URL")
            .next()
            .expect("an address"),
        other => panic!("needs a TCP REDIS_URL, got {other:?}"),
    };
    let redis_proxy = TcpProxy::start(redis_addr).await;
    let mut settings = database_settings(&db.url_through(pg_proxy.addr()));
    settings.postgres.operation_timeout = Duration::from_secs(2);
    let mut config = test_config();
    config.store = StoreSettings::Postgres(settings);
    config.redis = Some(redis_settings(
        &format!("redis://{}/0", redis_proxy.addr()),
        &unique_prefix(),
    ));
    let app = Arc::new(start(config).await);

    let running = Arc::new(AtomicBool::new(true));
    let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));
    let answers = Arc::new(Mutex::new(Vec::<Answer>::new()));
    let thread = new_id();
    let workers: Vec<_> = (0..4)
        .map(|w| {
            let (app, running, acknowledged, answers, thread) = (
                Arc::clone(&app),
                Arc::clone(&running),
                Arc::clone(&acknowledged),
                Arc::clone(&answers),
                thread.clone(),
            );
            tokio::spawn(async move {
                let user = new_id();
                let mut i = 0;
                while running.load(Ordering::SeqCst) {
                    i += 1;
                    let started = Instant::now();
                    let r = app
                        .create(
                            &thread,
                            &user,
                            serde_json::json!({"content": format!("w{w} #{i}")}),
                        )
                        .await;
                    let ended = Instant::now();
                    if r.status == StatusCode::CREATED {
                        acknowledged
                            .lock()
                            .await
                            .push(r.json()["id"].as_str().unwrap_or_default().to_owned());
                    }
                    answers.lock().await.push(Answer {
                        what: "create",
                        started,
                        ended,
                        status: r.status,
                    });
                    let started = Instant::now();
                    let r = app.list(&thread, "?limit=20").await;
                    answers.lock().await.push(Answer {
                        what: "list",
                        started,
                        ended: Instant::now(),
                        status: r.status,
                    });
                }
            })
        })
        .collect();

    tokio::time::sleep(Duration::from_millis(700)).await;
    let pg_cut = Instant::now();
    pg_proxy.cut();
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    pg_proxy.restore();
    let pg_back = Instant::now();
    while app.request(Method::GET, "/readyz", &[], None).await.status != StatusCode::OK {
        assert!(
            pg_back.elapsed() < Duration::from_secs(10),
            "not ready 10 s after PostgreSQL returned"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Until every request in flight during the outage has ended (the operation timeout).
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let redis_cut = Instant::now();
    redis_proxy.cut();
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    redis_proxy.restore();
    let redis_back = Instant::now();
    tokio::time::sleep(Duration::from_millis(700)).await;
    running.store(false, Ordering::SeqCst);
    for w in workers {
        w.await.expect("worker");
    }

    let answers = answers.lock().await;
    let at = |t: Instant| format!("{:.3}s", t.duration_since(pg_cut).as_secs_f64());
    let mut problems = Vec::new();
    for a in answers.iter() {
        let span = format!("{} {}..{}", a.what, at(a.started), at(a.ended));
        match a.status {
            StatusCode::OK | StatusCode::CREATED => {}
            StatusCode::SERVICE_UNAVAILABLE => {
                let during_pg_outage = a.ended >= pg_cut && a.started <= pg_back + PG_RECOVERY;
                if !during_pg_outage {
                    problems.push(format!("503 outside the PostgreSQL outage: {span}"));
                }
                if a.ended >= redis_cut && a.started <= redis_back {
                    problems.push(format!("503 during the Redis outage: {span}"));
                }
            }
            other => problems.push(format!("{other}: {span}")),
        }
    }
    assert!(
        problems.is_empty(),
        "PostgreSQL away 0s..{}, Redis away {}..{}: {problems:#?}",
        at(pg_back),
        at(redis_cut),
        at(redis_back)
    );
    let unavailable = answers
        .iter()
        .filter(|a| a.status == StatusCode::SERVICE_UNAVAILABLE)
        .count();
    assert!(unavailable > 0, "PostgreSQL really went away");
    let acknowledged = acknowledged.lock().await.clone();
    assert!(
        acknowledged.len() > 20,
        "load ran: {} writes",
        acknowledged.len()
    );
    let mut listed = std::collections::HashSet::new();
    let mut query = "?limit=200".to_owned();
    loop {
        let page = app.page(&thread, &query).await;
        listed.extend(item_ids(&page));
        match page["next_cursor"].as_str() {
            Some(c) => query = format!("?limit=200&cursor={c}"),
            None => break,
        }
    }
    let lost: Vec<_> = acknowledged
        .iter()
        .filter(|id| !listed.contains(*id))
        .collect();
    assert!(lost.is_empty(), "acknowledged writes missing: {lost:?}");
    // A write cut off after its commit but before its answer may be stored without having been
    // acknowledged (the client saw a 503 and would retry with its Idempotency-Key); that is
    // allowed, losing an acknowledged one is not.
    let stats = app.service.cache_stats();
    assert!(stats.errors > 0, "Redis really went away: {stats:?}");
}

/// Two server processes share PostgreSQL and Redis; writers post to both at once while a
/// reader follows the thread on each, one with the changes feed and one with `after_seq`,
/// from positions it took mid-run. Every acknowledged message is seen exactly once by both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_with_writers_on_both_miss_nothing() {
    use std::collections::HashSet;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let Some(redis) = redis_url() else { return };
    let mut config = test_config();
    config.store = StoreSettings::Postgres(database_settings(db.url()));
    config.redis = Some(redis_settings(&redis, &unique_prefix()));
    let apps = [
        Arc::new(start(config.clone()).await),
        Arc::new(start(config).await),
    ];
    let thread = new_id();
    let done = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..6)
        .map(|w| {
            let app = Arc::clone(&apps[w % 2]);
            let thread = thread.clone();
            tokio::spawn(async move {
                let user = new_id();
                let mut acknowledged = Vec::new();
                for i in 0..30 {
                    let m = app.post_text(&thread, &user, &format!("w{w} #{i}")).await;
                    acknowledged.push(m["id"].as_str().unwrap_or_default().to_owned());
                }
                acknowledged
            })
        })
        .collect();
    let follower = {
        let (by_changes, by_after) = (Arc::clone(&apps[1]), Arc::clone(&apps[0]));
        let (thread, done) = (thread.clone(), Arc::clone(&done));
        tokio::spawn(async move {
            let (mut since, mut after) = (0i64, 0i64);
            let (mut seen_changes, mut seen_after) = (Vec::new(), Vec::new());
            loop {
                let finished = done.load(Ordering::SeqCst);
                let read = by_changes
                    .changes(&thread, &format!("?since={since}&limit=9"))
                    .await;
                for change in read["changes"].as_array().into_iter().flatten() {
                    seen_changes.push(change["id"].as_str().unwrap_or_default().to_owned());
                }
                since = read["next"].as_i64().unwrap_or(since);
                let page = by_after
                    .page(&thread, &format!("?after_seq={after}&limit=9"))
                    .await;
                if let Some(last) = page["items"].as_array().and_then(|items| items.last()) {
                    after = last["seq"].as_i64().unwrap_or(after);
                }
                seen_after.extend(item_ids(&page));
                if finished && read["has_more"] == false && page["has_more"] == false {
                    return (seen_changes, seen_after);
                }
            }
        })
    };
    let mut acknowledged = HashSet::new();
    for writer in writers {
        acknowledged.extend(writer.await.expect("writer"));
    }
    done.store(true, Ordering::SeqCst);
    let (seen_changes, seen_after) = follower.await.expect("follower");
    for (way, seen) in [("changes", seen_changes), ("after_seq", seen_after)] {
        let unique: HashSet<String> = seen.iter().cloned().collect();
        assert_eq!(unique.len(), seen.len(), "{way}: a message seen twice");
        assert_eq!(
            unique, acknowledged,
            "{way}: every acknowledged message seen"
        );
    }
    assert_eq!(acknowledged.len(), 180);
}
