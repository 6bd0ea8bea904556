//! The library embedded as its documentation shows (`lib.rs`, `examples/sqlite_chat.rs`): a
//! SQLite file, the service built over it, the relay it hands back run beside it.

use std::sync::Arc;
use std::time::Duration;

use messages_core::storage::sqlite::SqliteStore;
use messages_core::storage::{Outbox, Schema};
use messages_core::testing::sqlite::TempDir;
use messages_core::{MessageKind, MessageService, NewMessage, ThreadId, UserId};

/// Every event the writes leave in the store is delivered by the relay the builder handed
/// back, so an embedder's outbox does not grow: 10,000 messages written, none left after the
/// relay stops. The same writes with the relay never run leave every event in the store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_embedded_service_leaves_no_event_behind() {
    const MESSAGES: usize = 10_000;
    let dir = TempDir::new();
    let store = SqliteStore::open(&dir.config()).await.expect("open");
    store.migrate().await.expect("migrate");
    let (service, relay) = MessageService::builder(Arc::new(store.clone())).build();
    let relay = relay.spawn();
    write(Arc::new(service), MESSAGES).await;
    relay.stop(Duration::from_secs(60)).await;
    let (pending, _) = store.pending().await.expect("pending");
    assert_eq!(pending, 0, "the relay delivered every event");
    store.close().await.expect("close");

    let dir = TempDir::new();
    let store = SqliteStore::open(&dir.config()).await.expect("open");
    store.migrate().await.expect("migrate");
    let (service, _relay_never_run) = MessageService::builder(Arc::new(store.clone())).build();
    write(Arc::new(service), 100).await;
    let (pending, _) = store.pending().await.expect("pending");
    assert_eq!(
        pending, 100,
        "without its relay, every event stays in the store"
    );
}

/// `n` messages over ten threads, from 50 writers at once.
async fn write(service: Arc<MessageService>, n: usize) {
    let threads: Vec<ThreadId> = (0..10)
        .map(|_| ThreadId::from_uuid(uuid::Uuid::now_v7()))
        .collect();
    let user = UserId::from_uuid(uuid::Uuid::now_v7());
    let writers = 50.min(n);
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..writers {
        let (service, threads) = (Arc::clone(&service), threads.clone());
        tasks.spawn(async move {
            for i in (w..n).step_by(writers) {
                let new = NewMessage::new(
                    MessageKind::Text,
                    format!("message {i}"),
                    vec![],
                    service.limits(),
                )
                .expect("valid");
                service
                    .create(threads[i % threads.len()], user, new, None)
                    .await
                    .expect("create");
            }
        });
    }
    tasks.join_all().await;
}
