//! The service's ordering of store → cache: no stale page after a write, one store read per
//! stampede, and a cache outage that fails no request. Run on the in-process cache always and
//! on Redis when `REDIS_URL` is set (required under `CI=true`).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use messages_core::cache::PageCache;
use messages_core::cache::memory::MemoryCache;
use messages_core::storage::memory::MemoryStore;
use messages_core::storage::{
    ChangeStore, CreateStore, MessageStore, Outbox, PageStore, ReactionStore, ReadStateStore,
    StoredEvent,
};
use messages_core::testing::post_text as post;
use messages_core::testing::proxy::TcpProxy;
use messages_core::testing::redis::{cache_at, redis_url, test_cache, unique_prefix};
use messages_core::{
    Around, BulkDeleteRequest, Changes, ChangesLimit, ClearRequest, CreateRequest, Created,
    DeleteRequest, EditRequest, Emoji, History, MarkReadRequest, Message, MessageId,
    MessageService, Page, PageQuery, PageSize, Reacted, ReactionRequest, Reactors, ReactorsLimit,
    ReadState, Result, ThreadId, ThreadList, Timestamp, Tombstone, UnreadMax, UserId,
};
use tokio::sync::{Mutex, Notify};

/// A store that counts newest-page reads and can hold one after it has read, as a slow
/// reader would be held between reading the store and filling the cache.
#[derive(Default)]
struct GatedStore {
    inner: MemoryStore,
    page_reads: AtomicUsize,
    hold_next: Mutex<Option<(Arc<Notify>, Arc<Notify>)>>,
    /// The next create commits and then answers `Unavailable`, as when the connection drops
    /// between the commit and its answer.
    lose_next_answer: std::sync::atomic::AtomicBool,
}

impl GatedStore {
    /// The next page read signals `reached` after reading, then waits for `release`.
    async fn hold_next_read(&self) -> (Arc<Notify>, Arc<Notify>) {
        let reached = Arc::new(Notify::new());
        let release = Arc::new(Notify::new());
        *self.hold_next.lock().await = Some((Arc::clone(&reached), Arc::clone(&release)));
        (reached, release)
    }
}

#[async_trait]
impl CreateStore for GatedStore {
    async fn create(&self, request: CreateRequest) -> Result<Created> {
        let created = self.inner.create(request).await;
        if self.lose_next_answer.swap(false, Ordering::SeqCst) {
            return Err(messages_core::Error::unavailable(
                "insert message",
                "the connection dropped after the commit",
            ));
        }
        created
    }
}

#[async_trait]
impl PageStore for GatedStore {
    async fn get(&self, t: ThreadId, id: MessageId) -> Result<Message> {
        self.inner.get(t, id).await
    }
    async fn page(&self, t: ThreadId, q: PageQuery, s: PageSize) -> Result<Page> {
        self.page_reads.fetch_add(1, Ordering::SeqCst);
        let page = self.inner.page(t, q, s).await;
        let hold = self.hold_next.lock().await.take();
        if let Some((reached, release)) = hold {
            reached.notify_one();
            release.notified().await;
        }
        page
    }
    async fn replies(&self, t: ThreadId, r: MessageId, after: i64, s: PageSize) -> Result<Page> {
        self.inner.replies(t, r, after, s).await
    }
    async fn around(&self, t: ThreadId, id: MessageId, half: usize) -> Result<Around> {
        self.inner.around(t, id, half).await
    }
    async fn changes(&self, t: ThreadId, since: i64, limit: ChangesLimit) -> Result<Changes> {
        self.inner.changes(t, since, limit).await
    }
    async fn locate(&self, t: ThreadId, id: MessageId) -> Result<Option<i64>> {
        self.inner.locate(t, id).await
    }
    async fn head(&self, t: ThreadId) -> Result<i64> {
        self.inner.head(t).await
    }
    async fn history(&self, t: ThreadId, id: MessageId) -> Result<History> {
        self.inner.history(t, id).await
    }
}

// The rest is the memory store's, unchanged.
#[async_trait]
impl ChangeStore for GatedStore {
    async fn edit(&self, r: EditRequest) -> Result<Message> {
        self.inner.edit(r).await
    }
    async fn delete(&self, r: DeleteRequest) -> Result<Tombstone> {
        self.inner.delete(r).await
    }
    async fn delete_many(&self, r: BulkDeleteRequest) -> Result<Vec<Tombstone>> {
        self.inner.delete_many(r).await
    }
}

#[async_trait]
impl ReactionStore for GatedStore {
    async fn react(&self, r: ReactionRequest) -> Result<Reacted> {
        self.inner.react(r).await
    }
    async fn clear_reactions(&self, r: ClearRequest) -> Result<Reacted> {
        self.inner.clear_reactions(r).await
    }
    async fn reactors(
        &self,
        t: ThreadId,
        id: MessageId,
        emoji: &Emoji,
        after: Option<UserId>,
        limit: ReactorsLimit,
    ) -> Result<Reactors> {
        self.inner.reactors(t, id, emoji, after, limit).await
    }
}

#[async_trait]
impl ReadStateStore for GatedStore {
    async fn mark_read(&self, r: MarkReadRequest) -> Result<ReadState> {
        self.inner.mark_read(r).await
    }
    async fn read_states(
        &self,
        user: UserId,
        threads: &ThreadList,
        max: UnreadMax,
    ) -> Result<Vec<ReadState>> {
        self.inner.read_states(user, threads, max).await
    }
    async fn mentions(
        &self,
        user: UserId,
        threads: &ThreadList,
        after: Option<messages_core::NewestCursor>,
        size: PageSize,
        unread_only: bool,
    ) -> Result<messages_core::NewestPage> {
        self.inner
            .mentions(user, threads, after, size, unread_only)
            .await
    }
}

#[async_trait]
impl messages_core::storage::SearchStore for GatedStore {
    async fn search(
        &self,
        query: &messages_core::search::SearchQuery,
    ) -> Result<messages_core::search::SearchPage> {
        self.inner.search(query).await
    }
}

#[async_trait]
impl messages_core::storage::ConversationStore for GatedStore {
    async fn follow(&self, r: messages_core::FollowRequest) -> Result<messages_core::Conversation> {
        self.inner.follow(r).await
    }
    async fn mark_replies_read(
        &self,
        r: messages_core::RepliesReadRequest,
    ) -> Result<messages_core::Conversation> {
        self.inner.mark_replies_read(r).await
    }
    async fn inbox(
        &self,
        user: UserId,
        threads: &ThreadList,
        after: Option<messages_core::InboxCursor>,
        size: PageSize,
        max: UnreadMax,
    ) -> Result<messages_core::Inbox> {
        self.inner.inbox(user, threads, after, size, max).await
    }
}

#[async_trait]
impl Outbox for GatedStore {
    async fn claim(&self, limit: usize, lease: Duration) -> Result<Vec<StoredEvent>> {
        self.inner.claim(limit, lease).await
    }
    async fn ack(&self, positions: &[i64]) -> Result<()> {
        self.inner.ack(positions).await
    }
    async fn release(&self, positions: &[i64]) -> Result<()> {
        self.inner.release(positions).await
    }
    async fn pending(&self) -> Result<(u64, Option<Timestamp>)> {
        self.inner.pending().await
    }
}

#[async_trait]
impl MessageStore for GatedStore {
    async fn ping(&self) -> Result<()> {
        self.inner.ping().await
    }
}

fn service(store: Arc<GatedStore>, cache: Arc<dyn PageCache>) -> Arc<MessageService> {
    // The relay is not run: these tests read pages, not events.
    let (service, _relay) = MessageService::builder(store).cache(cache).build();
    Arc::new(service)
}

fn ids() -> (ThreadId, UserId) {
    (
        ThreadId::from_uuid(uuid::Uuid::new_v4()),
        UserId::from_uuid(uuid::Uuid::new_v4()),
    )
}

async fn newest_ids(service: &MessageService, thread: ThreadId) -> Vec<String> {
    let body = service
        .page_json(thread, PageQuery::Newest, PageSize::DEFAULT)
        .await
        .expect("page")
        .to_bytes();
    let v: serde_json::Value = serde_json::from_slice(&body).expect("json");
    v["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|m| m["id"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// A read misses, reads the store, and is held; a write commits and is acknowledged; the
/// held read then offers its (now stale) window. The next read must show the write.
async fn a_slow_fill_never_hides_a_write(cache: &Arc<dyn PageCache>) {
    let store = Arc::new(GatedStore::default());
    let service = service(Arc::clone(&store), Arc::clone(cache));
    let (thread, user) = ids();
    let first = post(&service, thread, user, "first").await;

    let (reached, release) = store.hold_next_read().await;
    let slow = tokio::spawn({
        let service = Arc::clone(&service);
        async move { newest_ids(&service, thread).await }
    });
    reached.notified().await;
    let second = post(&service, thread, user, "second").await;
    release.notify_one();
    let slow_view = slow.await.expect("slow reader");
    assert_eq!(
        slow_view,
        [first.id.to_string()],
        "the slow read saw the store before the write"
    );

    let stats = service.cache_stats();
    assert_eq!(
        stats.rejected_fills, 1,
        "the stale window was refused: {stats:?}"
    );
    assert_eq!(
        newest_ids(&service, thread).await,
        [second.id.to_string(), first.id.to_string()],
        "the next read shows the acknowledged write"
    );
}

/// Many concurrent misses on one thread share one store read.
async fn concurrent_misses_share_one_read(cache: &Arc<dyn PageCache>) {
    let store = Arc::new(GatedStore::default());
    let service = service(Arc::clone(&store), Arc::clone(cache));
    let (thread, user) = ids();
    post(&service, thread, user, "hot").await;
    let before = store.page_reads.load(Ordering::SeqCst);

    let (reached, release) = store.hold_next_read().await;
    let readers: Vec<_> = (0..50)
        .map(|_| {
            let service = Arc::clone(&service);
            tokio::spawn(async move { newest_ids(&service, thread).await })
        })
        .collect();
    reached.notified().await;
    // Let every reader reach the cache and join the load in flight.
    tokio::time::sleep(Duration::from_millis(200)).await;
    release.notify_one();
    for reader in readers {
        assert_eq!(reader.await.expect("reader").len(), 1);
    }
    assert_eq!(
        store.page_reads.load(Ordering::SeqCst) - before,
        1,
        "one store read for 50 misses"
    );
    // And the window it filled serves the next reads without the store.
    newest_ids(&service, thread).await;
    assert_eq!(store.page_reads.load(Ordering::SeqCst) - before, 1);
}

messages_core::every_backend!([a_slow_fill_never_hides_a_write, concurrent_misses_share_one_read] on
    memory_cache => async { Some(Arc::new(MemoryCache::default()) as Arc<dyn PageCache>) },
    redis_cache => async { Some(Arc::new(test_cache().await?) as Arc<dyn PageCache>) },
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_outage_fails_no_request_and_serves_no_stale_page() {
    let Some(url) = redis_url() else { return };
    let client = redis::Client::open(url.as_str()).expect("REDIS_URL");
    let upstream = match client.get_connection_info().addr() {
        redis::ConnectionAddr::Tcp(host, port) => tokio::net::lookup_host((host.as_str(), *port))
            .await
            .expect("resolve REDIS_URL")
            .next()
            .expect("an address"),
        other => panic!("the outage test needs a TCP REDIS_URL, got {other:?}"),
    };
    let proxy = TcpProxy::start(upstream).await;
    let db = client.get_connection_info().redis_settings().db();
    let through_proxy = format!("redis://{}/{db}", proxy.addr());
    let cache = cache_at(&through_proxy, &unique_prefix())
        .await
        .expect("redis through proxy");
    let store = Arc::new(GatedStore::default());
    let service = service(Arc::clone(&store), Arc::new(cache));
    let (thread, user) = ids();
    let a = post(&service, thread, user, "before outage").await;
    assert_eq!(newest_ids(&service, thread).await, [a.id.to_string()]);
    assert_eq!(newest_ids(&service, thread).await, [a.id.to_string()]);
    assert!(service.cache_stats().hits >= 1);

    proxy.cut();
    // Writes and reads go on; the write's invalidation cannot reach Redis.
    let b = post(&service, thread, user, "during outage").await;
    for _ in 0..5 {
        assert_eq!(
            newest_ids(&service, thread).await,
            [b.id.to_string(), a.id.to_string()]
        );
    }
    assert!(service.cache_stats().errors >= 1);

    proxy.restore();
    // Redis still holds the page from before the outage; it must never be served.
    let mut hits_after = 0;
    for _ in 0..40 {
        assert_eq!(
            newest_ids(&service, thread).await,
            [b.id.to_string(), a.id.to_string()]
        );
        hits_after = service.cache_stats().hits;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let stats = service.cache_stats();
    assert!(
        stats.fills >= 2,
        "the cache is used again after the outage: {stats:?}"
    );
    assert!(hits_after > 1, "hits resume after the outage: {stats:?}");
}

/// The median and the 90th percentile of `samples`.
fn median_and_p90(mut samples: Vec<Duration>) -> (Duration, Duration) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize];
    (at(0.5), at(0.9))
}

/// Redis goes silent (connections accepted, never answered) under a steady reader: with the
/// circuit breaker a request waits out the cache timeout only until the breaker opens, so the
/// typical request stays within a small factor of its latency with Redis up, and far below the
/// timeout every request would otherwise pay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_redis_costs_requests_little() {
    let Some(url) = redis_url() else { return };
    let client = redis::Client::open(url.as_str()).expect("REDIS_URL");
    let upstream = match client.get_connection_info().addr() {
        redis::ConnectionAddr::Tcp(host, port) => tokio::net::lookup_host((host.as_str(), *port))
            .await
            .expect("resolve REDIS_URL")
            .next()
            .expect("an address"),
        other => panic!("the outage test needs a TCP REDIS_URL, got {other:?}"),
    };
    let proxy = TcpProxy::start(upstream).await;
    let db = client.get_connection_info().redis_settings().db();
    let cache = cache_at(&format!("redis://{}/{db}", proxy.addr()), &unique_prefix())
        .await
        .expect("redis through proxy");
    let timeout = Duration::from_millis(500); // cache_at's timeout
    let store = Arc::new(GatedStore::default());
    let service = service(Arc::clone(&store), Arc::new(cache));
    let (thread, user) = ids();
    post(&service, thread, user, "hello").await;

    let timed_reads = |n: usize| {
        let service = Arc::clone(&service);
        async move {
            let mut samples = Vec::with_capacity(n);
            for _ in 0..n {
                let started = std::time::Instant::now();
                assert_eq!(newest_ids(&service, thread).await.len(), 1);
                samples.push(started.elapsed());
            }
            samples
        }
    };
    let (normal, _) = median_and_p90(timed_reads(100).await);

    proxy.hang();
    let (silent, silent_p90) = median_and_p90(timed_reads(100).await);
    eprintln!(
        "newest page: median {normal:?} with Redis up; median {silent:?}, p90 {silent_p90:?} with Redis silent"
    );
    assert!(
        silent_p90 < timeout / 5,
        "most requests skip the silent cache: p90 {silent_p90:?} with a {timeout:?} timeout"
    );
    assert!(
        silent <= normal * 10 + Duration::from_millis(5),
        "the typical request stays close to normal: median {silent:?} against {normal:?}"
    );
    assert!(service.cache_stats().errors >= 3, "the cache really failed");

    proxy.restore();
    // The background probe finds Redis again and the cache is used once more.
    let back = std::time::Instant::now();
    let hits = service.cache_stats().hits;
    while service.cache_stats().hits == hits {
        assert!(
            back.elapsed() < Duration::from_secs(15),
            "the cache is used again after Redis returns"
        );
        newest_ids(&service, thread).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A write that committed but whose answer was lost (the store answers `Unavailable`) is
/// treated as a commit of unknown number: a live follower gets the change at once, not at the
/// thread's next write, and the cached newest page is not left without it.
#[tokio::test]
async fn a_write_whose_answer_was_lost_still_reaches_followers_and_the_page() {
    let store = Arc::new(GatedStore::default());
    let service = service(Arc::clone(&store), Arc::new(MemoryCache::default()));
    let (thread, user) = ids();
    let first = post(&service, thread, user, "one").await;
    assert_eq!(
        newest_ids(&service, thread).await,
        vec![first.id.to_string()]
    );
    let mut follower = service.hub().follow(thread, None).await.expect("follow");
    // The thread's feed has started, and the follower has caught up with the store and
    // waits on the feed.
    tokio::time::sleep(Duration::from_millis(50)).await;
    post(&service, thread, user, "two").await;
    let frames = follower.next().await.expect("frames");
    assert_eq!(frames.iter().map(|f| f.rev).collect::<Vec<_>>(), vec![2]);
    // And the feed has read that change: nothing is left for it to read.
    tokio::time::sleep(Duration::from_millis(50)).await;
    store.lose_next_answer.store(true, Ordering::SeqCst);
    let new = messages_core::NewMessage::new(
        messages_core::MessageKind::Text,
        "three".into(),
        vec![],
        service.limits(),
    )
    .expect("valid");
    let lost = service.create(thread, user, new, None).await;
    assert!(
        matches!(lost, Err(messages_core::Error::Unavailable { .. })),
        "{lost:?}"
    );
    let frames = tokio::time::timeout(Duration::from_secs(5), follower.next())
        .await
        .expect("the follower hears of the change without another write")
        .expect("frames");
    assert_eq!(frames.iter().map(|f| f.rev).collect::<Vec<_>>(), vec![3]);
    assert_eq!(
        newest_ids(&service, thread).await.len(),
        3,
        "the page shows it"
    );
}

/// A change committed after a follower's replay read the store but before the thread's feed
/// read where it starts is in neither the replay nor the feed's batches: the follower sees
/// that the feed started past it and reads the store again, rather than waiting for the
/// thread's next write. (On this single-threaded runtime the feed's task first runs when the
/// test waits, after both writes.)
#[tokio::test]
async fn a_change_committed_before_the_feed_starts_reaches_a_follower() {
    let store = Arc::new(GatedStore::default());
    let service = service(Arc::clone(&store), Arc::new(MemoryCache::default()));
    let (thread, user) = ids();
    post(&service, thread, user, "one").await;
    let mut follower = service.hub().follow(thread, None).await.expect("follow");
    post(&service, thread, user, "two").await;
    let frames = follower.next().await.expect("frames");
    assert_eq!(frames.iter().map(|f| f.rev).collect::<Vec<_>>(), vec![2]);
    post(&service, thread, user, "three").await;
    let frames = tokio::time::timeout(Duration::from_secs(5), follower.next())
        .await
        .expect("the follower gets the change without another write")
        .expect("frames");
    assert_eq!(frames.iter().map(|f| f.rev).collect::<Vec<_>>(), vec![3]);
}
