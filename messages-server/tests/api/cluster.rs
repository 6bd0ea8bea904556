//! The service on a Redis Cluster of the test's own while a master fails over, gracefully
//! (`CLUSTER FAILOVER` on its replica) and hard (the master killed): under steady writes and
//! reads, no request fails, no read misses a write acknowledged before it, and once the cluster
//! settles the cache is used again. And live hints on the cluster's sharded pub/sub through the
//! same failovers: a stream on one process misses nothing written on another.

use std::time::{Duration, Instant};

use http::StatusCode;
use messages_core::cache::redis::RedisCacheConfig;
use messages_core::testing::postgres::TestDatabase;
use messages_core::testing::redis::{ClusterProcess, unique_prefix};
use messages_server::config::StoreSettings;

use crate::helpers::{TestApp, database_settings, item_ids, new_id, start, test_config};

/// Writes then reads the newest page twice (a miss that fills, then a hit), `rounds` times:
/// every answer a success, every page holding every write acknowledged so far, newest first.
async fn write_and_read(
    app: &TestApp,
    thread: &str,
    user: &str,
    written: &mut Vec<String>,
    rounds: usize,
) {
    for _ in 0..rounds {
        let r = app
            .create(
                thread,
                user,
                serde_json::json!({"content": format!("m{}", written.len())}),
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::CREATED,
            "a write failed: {:?}",
            r.body
        );
        written.insert(0, r.json()["id"].as_str().unwrap_or_default().to_owned());
        let mut expected = written.clone();
        expected.truncate(200);
        for _ in 0..2 {
            let page = app.list(thread, "?limit=200").await;
            assert_eq!(
                page.status,
                StatusCode::OK,
                "a read failed: {:?}",
                page.body
            );
            assert_eq!(
                item_ids(&page.json()),
                expected,
                "a stale page after {} writes",
                written.len()
            );
        }
    }
}

async fn a_failover_fails_no_request(kill: bool) {
    let Some(mut cluster) = ClusterProcess::start().await else {
        return;
    };
    let mut config = test_config();
    let mut redis = RedisCacheConfig::on(cluster.server());
    redis.key_prefix = unique_prefix();
    config.redis = Some(redis);
    let app = start(config).await;
    let (thread, user) = (new_id(), new_id());
    let mut written = Vec::new();
    write_and_read(&app, &thread, &user, &mut written, 20).await;
    assert!(
        app.service.cache_stats().hits > 0,
        "the cluster's cache is used"
    );

    let slot = format!("{{{thread}}}");
    let replica = cluster.fail_over(&slot, kill).await;
    // Steady load through the failover until the replica serves the thread's slot and the
    // cluster has settled.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        write_and_read(&app, &thread, &user, &mut written, 5).await;
        if cluster.taken_over(&slot, replica).await {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the replica did not take over in 30 s:\n{}",
            cluster.cluster_nodes().await.unwrap_or_default()
        );
    }
    // Once settled (and the breaker's probe has seen it), reads are hits again.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        write_and_read(&app, &thread, &user, &mut written, 1).await;
        let before = app.service.cache_stats().hits;
        for _ in 0..5 {
            assert_eq!(app.list(&thread, "?limit=200").await.status, StatusCode::OK);
        }
        if app.service.cache_stats().hits > before {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the cache was not used again within 20 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    write_and_read(&app, &thread, &user, &mut written, 5).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_failover_fails_no_request_and_serves_no_stale_page() {
    a_failover_fails_no_request(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_master_fails_no_request_and_serves_no_stale_page() {
    a_failover_fails_no_request(true).await;
}

/// A stream on one process, a writer on another, one PostgreSQL, hints on the cluster's
/// sharded pub/sub. The master owning the thread's slot fails over while the writer writes;
/// once the cluster has settled nothing more is written, so what was written during the
/// failover can only arrive through the transport's recovery (the subscription moved to the
/// new master, the store read on resubscribe, hints kept and sent again). Every change arrives
/// once, numbered without gaps.
async fn live_hints_survive_a_failover(kill: bool) {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let Some(mut cluster) = ClusterProcess::start().await else {
        return;
    };
    let prefix = unique_prefix();
    let config = || {
        let mut config = test_config();
        config.store = StoreSettings::Postgres(database_settings(db.url()));
        let mut redis = RedisCacheConfig::on(cluster.server());
        redis.key_prefix = prefix.clone();
        config.redis = Some(redis);
        config
    };
    let reader = start(config()).await;
    let writer = start(config()).await;
    let (thread, user) = (new_id(), new_id());
    let mut stream = reader
        .events(&thread, "?since=0", &[])
        .await
        .unwrap_or_else(|r| panic!("stream: {:?}", r.status));
    let mut written = 0_i64;
    let mut received = Vec::new();
    for _ in 0..5 {
        writer.post_text(&thread, &user, "before").await;
        written += 1;
        received.extend(stream.take(1, Duration::from_secs(5)).await);
    }
    assert_eq!(received.len(), 5, "hints arrive before the failover");

    let slot = format!("{{{thread}}}");
    let replica = cluster.fail_over(&slot, kill).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        writer.post_text(&thread, &user, "during").await;
        written += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
        if cluster.taken_over(&slot, replica).await {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the replica did not take over in 30 s:\n{}",
            cluster.cluster_nodes().await.unwrap_or_default()
        );
    }
    let missing = usize::try_from(written).unwrap_or_default() - received.len();
    received.extend(stream.take(missing, Duration::from_secs(20)).await);
    assert_eq!(
        received.iter().map(|e| e.id).collect::<Vec<_>>(),
        (1..=written).collect::<Vec<_>>(),
        "every change once, in order, after the failover (killed: {kill})"
    );
    // The reader's subscription moved to the new master, so the next hint arrives as one.
    let channel = format!("{prefix}:live:{{{thread}}}");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let subscribers = cluster.shard_subscribers(&channel).await;
        if subscribers.contains(&(replica, 1)) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no subscription on the new master {replica}: {subscribers:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    writer.post_text(&thread, &user, "after").await;
    let after = stream.take(1, Duration::from_secs(5)).await;
    assert_eq!(after.first().map(|e| e.id), Some(written + 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_hints_survive_a_graceful_failover() {
    live_hints_survive_a_failover(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_hints_survive_a_killed_master() {
    live_hints_survive_a_failover(true).await;
}
