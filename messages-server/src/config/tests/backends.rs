//! Reading the backends' sections: Redis (one node or a cluster) and the events' broker.

use secrecy::ExposeSecret;

use super::config;
use messages_core::redis_server::RedisServer;
use std::time::Duration;

#[test]
fn redis_from_url_or_parts() {
    let r = config(&[
        ("REDIS_URL", "redis://127.0.0.1:6379/2"),
        ("CACHE_TTL_SECONDS", "30"),
    ])
    .unwrap()
    .redis
    .unwrap();
    assert_eq!(node_url(&r.server), "redis://127.0.0.1:6379/2");
    assert_eq!(r.key_prefix, "messages");
    assert_eq!(
        r.lifetime.ttl,
        Duration::from_secs(30),
        "one lifetime for both caches"
    );
    let r = config(&[
        ("REDIS_HOST", "cache"),
        ("REDIS_PASSWORD", "p@ss word"),
        ("REDIS_DB", "3"),
    ])
    .unwrap()
    .redis
    .unwrap();
    assert_eq!(node_url(&r.server), "redis://:p%40ss%20word@cache:6379/3");
    assert!(!format!("{r:?}").contains("p%40ss"));
    for (var, value) in [
        ("REDIS_URL", "http://x"),
        ("CACHE_KEY_PREFIX", "a{b}"),
        ("REDIS_TIMEOUT_MS", "0"),
    ] {
        let err = config(&[("REDIS_HOST", "cache"), (var, value)]).unwrap_err();
        assert_eq!(err.var, var);
    }
}

#[test]
fn events_from_url_or_parts() {
    let e = config(&[
        ("QUEUE_HOST", "mq"),
        ("QUEUE_USER", "app"),
        ("QUEUE_PASSWORD", "hunter2/x"),
    ])
    .unwrap()
    .events;
    let amqp = e.amqp.unwrap();
    assert_eq!(
        amqp.url.expose_secret(),
        "amqp://app:hunter2%2Fx@mq:5672/%2F"
    );
    assert_eq!(amqp.exchange, "messages");
    assert_eq!(amqp.legacy_queue.as_deref(), Some("messages_service"));
    assert!(!format!("{amqp:?}").contains("hunter2"));
    let e = config(&[
        ("AMQP_URL", "amqp://g:g@h:5672/%2f"),
        ("AMQP_LEGACY_QUEUE", "none"),
    ])
    .unwrap()
    .events;
    assert_eq!(e.amqp.unwrap().legacy_queue, None);
    for (var, value) in [
        ("AMQP_URL", "http://x"),
        ("AMQP_EXCHANGE", "a b"),
        ("RELAY_BATCH", "0"),
    ] {
        assert_eq!(config(&[(var, value)]).unwrap_err().var, var);
    }
}

fn node_url(server: &RedisServer) -> String {
    match server {
        RedisServer::Node(url) => url.expose_secret().to_owned(),
        other => panic!("expected one node, got {other:?}"),
    }
}

#[test]
fn a_redis_cluster_from_its_seed_nodes() {
    let c = config(&[
        (
            "REDIS_CLUSTER_NODES",
            "10.0.0.1:7001, redis-1.cache:7002,[::1]:7003",
        ),
        ("REDIS_PASSWORD", "s3cret"),
        ("CACHE_KEY_PREFIX", "chat"),
    ])
    .unwrap();
    let redis = c.redis.expect("redis");
    assert_eq!(redis.key_prefix, "chat");
    match redis.server {
        RedisServer::Cluster { nodes, password } => {
            assert_eq!(nodes, ["10.0.0.1:7001", "redis-1.cache:7002", "[::1]:7003"]);
            assert_eq!(
                password.map(|p| p.expose_secret().to_owned()).as_deref(),
                Some("s3cret")
            );
        }
        other => panic!("expected a cluster, got {other:?}"),
    }
    for (vars, var) in [
        (
            vec![
                ("REDIS_CLUSTER_NODES", "a:1"),
                ("REDIS_URL", "redis://x:6379"),
            ],
            "REDIS_CLUSTER_NODES",
        ),
        (
            vec![("REDIS_CLUSTER_NODES", "nohost")],
            "REDIS_CLUSTER_NODES",
        ),
        (vec![("REDIS_CLUSTER_NODES", "h:0")], "REDIS_CLUSTER_NODES"),
        (
            vec![("REDIS_CLUSTER_NODES", ":7001")],
            "REDIS_CLUSTER_NODES",
        ),
        (vec![("REDIS_CLUSTER_NODES", ",")], "REDIS_CLUSTER_NODES"),
    ] {
        assert_eq!(config(&vars).unwrap_err().var, var, "{vars:?}");
    }
}
