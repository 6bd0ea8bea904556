//! The rate limiter contract on every limiter: in process always, Redis when `REDIS_URL` is
//! set, a Redis Cluster when `REDIS_CLUSTER_NODES` is (both required under `CI=true`); buckets shared between processes through Redis; and a
//! limiter that cannot answer letting writes through.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use messages_core::UserId;
use messages_core::cache::breaker::{Breaker, BreakerConfig};
use messages_core::limit::memory::MemoryLimiter;
use messages_core::limit::{Decision, FailOpen, Rate, RateLimiter};
use messages_core::testing::limit::Subject;
use messages_core::testing::redis::{limiter_at, limiters, redis_url, unique_prefix};

messages_core::limit_contract!(
    memory => async {
        Some(Arc::new(|rate| Arc::new(MemoryLimiter::new(rate)) as Arc<dyn RateLimiter>) as Subject)
    },
    redis => limiters(),
    redis_cluster => messages_core::testing::redis::cluster_limiters(),
);

fn user() -> UserId {
    UserId::from_uuid(uuid::Uuid::new_v4())
}

#[tokio::test]
async fn redis_buckets_are_shared_between_processes() {
    // Two limiters with one prefix stand for two server processes.
    let Some(url) = redis_url() else { return };
    if limiters().await.is_none() {
        return;
    }
    let prefix = unique_prefix();
    let rate = Rate::new(1.0, 3).unwrap();
    let (a, b) = (
        limiter_at(&url, &prefix, rate),
        limiter_at(&url, &prefix, rate),
    );
    let u = user();
    assert_eq!(a.take(u).await.unwrap().remaining, 2);
    assert_eq!(b.take(u).await.unwrap().remaining, 1);
    assert_eq!(a.take(u).await.unwrap().remaining, 0);
    assert!(!b.take(u).await.unwrap().allowed);
    b.give_back(u).await.unwrap();
    assert!(a.take(u).await.unwrap().allowed);
}

#[tokio::test]
async fn a_limiter_that_cannot_answer_lets_writes_through_and_its_breaker_stops_asking() {
    // Nothing listens on the port: every call fails.
    let port = {
        let socket = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        socket.local_addr().unwrap().port()
    };
    let down = Arc::new(Counted {
        inner: limiter_at(
            &format!("redis://127.0.0.1:{port}/0"),
            &unique_prefix(),
            Rate::new(1.0, 1).unwrap(),
        ),
        calls: AtomicUsize::new(0),
    });
    let probed = Arc::clone(&down);
    let breaker = Breaker::new(
        "redis",
        BreakerConfig {
            threshold: 2,
            first_interval: Duration::from_secs(60),
            max_interval: Duration::from_secs(60),
        },
        Box::new(move || {
            let limiter = Arc::clone(&probed);
            Box::pin(async move { limiter.ping().await })
        }),
    );
    let limiter = FailOpen::new(
        Arc::clone(&down) as Arc<dyn RateLimiter>,
        Some(Arc::clone(&breaker)),
    );
    let u = user();
    for _ in 0..2 {
        assert_eq!(
            limiter.take(u).await,
            None,
            "a failed limiter decides nothing"
        );
    }
    assert!(!breaker.is_closed(), "two failures open the breaker");
    // Open: a thousand writes go through without a call to Redis.
    for _ in 0..1_000 {
        assert_eq!(limiter.take(u).await, None);
    }
    limiter.give_back(u).await;
    assert_eq!(down.calls.load(Ordering::SeqCst), 2);
}

/// A limiter that counts the calls reaching it.
struct Counted<L> {
    inner: L,
    calls: AtomicUsize,
}

#[async_trait::async_trait]
impl<L: RateLimiter> RateLimiter for Counted<L> {
    fn rate(&self) -> Rate {
        self.inner.rate()
    }
    async fn take(&self, user: UserId) -> messages_core::Result<Decision> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.take(user).await
    }
    async fn give_back(&self, user: UserId) -> messages_core::Result<()> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.give_back(user).await
    }
    async fn ping(&self) -> messages_core::Result<()> {
        self.inner.ping().await
    }
}

#[tokio::test]
async fn the_in_process_limiter_forgets_users_whose_bucket_is_full() {
    let limiter = MemoryLimiter::new(Rate::new(100.0, 1).unwrap());
    for _ in 0..100 {
        assert!(limiter.take(user()).await.unwrap().allowed);
    }
    assert_eq!(limiter.tracked(), 100);
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(limiter.tracked(), 0, "full buckets are the same as none");
}
