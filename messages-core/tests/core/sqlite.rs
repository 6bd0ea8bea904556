//! What only the SQLite store must show: its file keeps everything across a restart, and a
//! full file refuses writes as unavailable while reads go on.

use std::sync::Arc;
use std::time::Duration;

use messages_core::Created;
use messages_core::events::codec;
use messages_core::storage::Schema;
use messages_core::storage::sqlite::SqliteStore;
use messages_core::storage::{Outbox, PageStore};
use messages_core::testing::sqlite::TempDir;
use messages_core::testing::storage::{Calls, Keyed};
use messages_core::testing::text_message;
use messages_core::{
    Change, ChangesLimit, Error, IdempotencyKey, Limits, MessageKind, MessagePatch, NewMessage,
    PageQuery, PageSize, Removal, RequestFingerprint, ThreadId, Timestamp, UserId,
};

fn ids() -> (ThreadId, UserId) {
    (
        ThreadId::from_uuid(uuid::Uuid::new_v4()),
        UserId::from_uuid(uuid::Uuid::new_v4()),
    )
}

fn new_text(text: &str) -> NewMessage {
    NewMessage::new(MessageKind::Text, text.into(), vec![], &Limits::default()).expect("valid")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_keeps_messages_edits_deletes_keys_and_pending_events() {
    let dir = TempDir::new();
    let (thread, user) = ids();
    let key = IdempotencyKey::parse("retry-me").expect("key");
    let keyed = new_text("sent once");
    let fingerprint = RequestFingerprint::of(&keyed);
    let (first, second, third);
    {
        let store = dir.store().await;
        first = text_message(thread, user, 1_000, "one");
        second = text_message(thread, user, 2_000, "two");
        third = text_message(thread, user, 3_000, "sent once");
        for m in [&first, &second] {
            store.create_with(m, None).await.expect("create");
        }
        let idem = Keyed {
            key: &key,
            fingerprint,
        };
        store
            .create_with(&third, Some(idem))
            .await
            .expect("create with a key");
        let patch =
            MessagePatch::new(Some("one, edited".into()), None, &Limits::default()).expect("patch");
        store
            .update_as(
                thread,
                first.id,
                user,
                &patch,
                Timestamp::from_micros(4_000),
            )
            .await
            .expect("edit");
        store
            .delete_as(
                thread,
                second.id,
                &Removal::by_author(user),
                Timestamp::from_micros(5_000),
            )
            .await
            .expect("delete");
    }

    let store = dir.store().await;
    let page = store
        .page(thread, PageQuery::Newest, PageSize::DEFAULT)
        .await
        .expect("page");
    let contents: Vec<&str> = page.items.iter().map(|m| m.content.as_str()).collect();
    assert_eq!(
        contents,
        ["sent once", "one, edited"],
        "the delete and the edit held"
    );
    assert_eq!(page.rev, 5);
    let changes = store
        .changes(thread, 0, ChangesLimit::parse("10").expect("limit"))
        .await
        .expect("changes");
    let revs: Vec<i64> = changes.changes.iter().map(Change::rev).collect();
    assert_eq!(revs, [3, 4, 5]);
    assert!(matches!(changes.changes[2], Change::Deleted(_)));

    // The key still answers with the original, and still refuses another body.
    let retry = text_message(thread, user, 6_000, "sent once");
    let idem = Keyed {
        key: &key,
        fingerprint,
    };
    match store.create_with(&retry, Some(idem)).await {
        Ok(Created::Replayed(m)) => assert_eq!(m.id, third.id),
        other => panic!("expected the replay, got {other:?}"),
    }
    let other = Keyed {
        key: &key,
        fingerprint: RequestFingerprint::of(&new_text("something else")),
    };
    assert!(matches!(
        store.create_with(&retry, Some(other)).await,
        Err(Error::IdempotencyConflict)
    ));
    assert_eq!(
        store.head(thread).await.expect("head"),
        5,
        "no number taken"
    );

    // Every event is still waiting, complete and numbered.
    let events = store
        .claim(100, Duration::from_secs(30))
        .await
        .expect("claim");
    let sequences: Vec<i64> = events.iter().map(|e| e.sequence).collect();
    assert_eq!(sequences, [1, 2, 3, 4, 5]);
    for event in &events {
        codec::decode(&event.kind, &event.payload).expect("a complete body");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_file_refuses_writes_as_unavailable_and_keeps_reading() {
    let dir = TempDir::new();
    let mut config = dir.config();
    config.max_size = Some(256 * 1024);
    let store = Arc::new(SqliteStore::open(&config).await.expect("open"));
    store.migrate().await.expect("migrate");
    let (thread, user) = ids();
    let big = "x".repeat(3_500);
    let mut stored = 0i64;
    let refused = loop {
        let m = text_message(thread, user, stored + 1, &big);
        match store.create_with(&m, None).await {
            Ok(_) => stored += 1,
            Err(e) => break e,
        }
        assert!(stored < 1_000, "the size limit never took effect");
    };
    assert!(
        matches!(refused, Error::Unavailable { .. }),
        "a full file is a 503, not a 500: {refused:?}"
    );
    assert!(stored > 0, "some writes fit");
    // The refused write left nothing: no number, no message, no event.
    assert_eq!(store.head(thread).await.expect("head"), stored);
    let page = store
        .page(thread, PageQuery::Newest, PageSize::MAX_SIZE)
        .await
        .expect("reads go on");
    assert_eq!(page.items.len() as i64, stored);
    assert_eq!(store.pending().await.expect("pending").0 as i64, stored);
    // Room made by delivering the events lets writes in again.
    let events = store
        .claim(1_000, Duration::from_secs(30))
        .await
        .expect("claim");
    let positions: Vec<i64> = events.iter().map(|e| e.position).collect();
    store.ack(&positions).await.expect("ack");
    let (other, _) = ids();
    let small = text_message(other, user, 1, "fits");
    store
        .create_with(&small, None)
        .await
        .expect("a small write fits once there is room");
}

/// Writers racing into a full file: batches of several writes fail together when SQLite rolls
/// one back. Every refusal is `Unavailable`, every acknowledged write is there, and nothing
/// else is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_writers_into_a_full_file_lose_no_acknowledged_write() {
    let dir = TempDir::new();
    let mut config = dir.config();
    config.max_size = Some(160 * 1024);
    let store = Arc::new(SqliteStore::open(&config).await.expect("open"));
    store.migrate().await.expect("migrate");
    let (thread, user) = ids();
    let writers = (0..8).map(|w| {
        let store = Arc::clone(&store);
        tokio::spawn(async move {
            let (mut acknowledged, mut refused) = (Vec::new(), 0);
            for i in 0..200 {
                let m = text_message(thread, user, w * 1_000 + i, &"y".repeat(2_000));
                match store.create_with(&m, None).await {
                    Ok(created) => acknowledged.push(created.message().id),
                    Err(Error::Unavailable { .. }) => refused += 1,
                    Err(other) => panic!("a full file must be a 503: {other:?}"),
                }
            }
            (acknowledged, refused)
        })
    });
    let (mut acknowledged, mut refused) = (Vec::new(), 0);
    for writer in writers.collect::<Vec<_>>() {
        let (ids, n) = writer.await.expect("writer");
        acknowledged.extend(ids);
        refused += n;
    }
    assert!(
        refused > 0 && !acknowledged.is_empty(),
        "the file filled up"
    );
    assert_eq!(
        store.head(thread).await.expect("head"),
        acknowledged.len() as i64,
        "numbers only for acknowledged writes"
    );
    for id in &acknowledged {
        store
            .get(thread, *id)
            .await
            .expect("every acknowledged write is there");
    }
    assert_eq!(
        store.pending().await.expect("pending").0,
        acknowledged.len() as u64,
        "one event per acknowledged write"
    );
}

/// The outbox's leases live in the store that claimed: a claim reads and writes nothing to the
/// file, and the events a store claimed but never had acknowledged (its process stopped) are
/// claimed at once by the next store on the file, in order, without waiting out a lease.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_writes_nothing_and_a_restart_claims_the_unacknowledged_at_once() {
    let dir = TempDir::new();
    let (thread, user) = ids();
    let version = |conn: &rusqlite::Connection| -> i64 {
        conn.query_row("PRAGMA data_version", [], |row| row.get(0))
            .expect("data_version")
    };
    {
        let store = dir.store().await;
        for at in 1..=4 {
            let m = text_message(thread, user, at * 1_000, "to deliver");
            store.create_with(&m, None).await.expect("create");
        }
        // data_version moves when another connection commits to the file.
        let watcher = rusqlite::Connection::open(dir.config().path).expect("open file");
        let before = version(&watcher);
        let claimed = store
            .claim(2, Duration::from_secs(3_600))
            .await
            .expect("claim");
        assert_eq!(
            claimed.iter().map(|e| e.sequence).collect::<Vec<_>>(),
            [1, 2]
        );
        assert_eq!(version(&watcher), before, "a claim commits nothing");
        // The first is delivered; the second is still leased when the store stops.
        store.ack(&[claimed[0].position]).await.expect("ack");
        assert_ne!(version(&watcher), before, "an acknowledgement deletes");
        let rest = store
            .claim(10, Duration::from_secs(3_600))
            .await
            .expect("claim the rest");
        assert_eq!(rest.iter().map(|e| e.sequence).collect::<Vec<_>>(), [3, 4]);
    }
    let store = dir.store().await;
    let events = store
        .claim(10, Duration::from_secs(3_600))
        .await
        .expect("claim after the restart");
    assert_eq!(
        events.iter().map(|e| e.sequence).collect::<Vec<_>>(),
        [2, 3, 4],
        "every event not acknowledged, leased or not, and only those"
    );
}
