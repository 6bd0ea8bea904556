//! PostgreSQL shared by processes: what one process keeps (counts, the messages it wrote last)
//! never hides another's change, and a statement the store gave up on stops in the database.

use messages_core::storage::postgres::{PostgresConfig, PostgresStore};
use messages_core::storage::{PageStore, ReactionStore, Schema};
use messages_core::testing::postgres::TestDatabase;
use messages_core::testing::storage::Calls;
use messages_core::{
    Emoji, ReactionChange, ReactionLimits, ReactionRequest, ReadMark, Removal, ThreadId, Timestamp,
    UnreadMax, UserId,
};
use uuid::Uuid;

/// A count one process keeps is not answered after another process changed the thread or
/// the position: the head and the position it was made at are checked in the same statement.
#[tokio::test]
async fn a_kept_unread_count_follows_changes_made_by_another_process() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let (here, there) = (db.store().await, db.store().await);
    let (thread, author, reader) = (
        ThreadId::from_uuid(Uuid::now_v7()),
        UserId::from_uuid(Uuid::now_v7()),
        UserId::from_uuid(Uuid::now_v7()),
    );
    let mut written = Vec::new();
    for i in 0..3 {
        let m =
            messages_core::testing::text_message(thread, author, 1_764_000_000_000_000 + i, "m");
        written.push(
            here.create_with(&m, None)
                .await
                .expect("create")
                .message()
                .clone(),
        );
    }
    let unread = |store: &PostgresStore| {
        let store = store.clone();
        async move {
            let states = store
                .read_states_of(reader, &[thread], UnreadMax::DEFAULT)
                .await
                .expect("read states");
            (states[0].seq, states[0].unread, states[0].first_unread_seq)
        }
    };
    assert_eq!(unread(&here).await, (0, 3, Some(written[0].seq)));
    assert_eq!(
        unread(&here).await,
        (0, 3, Some(written[0].seq)),
        "kept, and the same"
    );

    // Another process deletes the first message: the count here follows.
    let gone = Timestamp::from_micros(1_764_000_000_100_000);
    there
        .delete_as(thread, written[0].id, &Removal::by_author(author), gone)
        .await
        .expect("delete");
    assert_eq!(unread(&here).await, (0, 2, Some(written[1].seq)));

    // And moves the reader's position.
    there
        .mark_read_as(
            thread,
            reader,
            ReadMark::ReadTo(written[1].seq),
            UnreadMax::DEFAULT,
        )
        .await
        .expect("mark read");
    assert_eq!(
        unread(&here).await,
        (written[1].seq, 1, Some(written[2].seq))
    );

    // A count made under another cap is not reused.
    let capped = here
        .read_states_of(reader, &[thread], UnreadMax::new(1).expect("valid"))
        .await
        .expect("read states");
    assert_eq!((capped[0].unread, capped[0].capped), (1, false));
    there
        .mark_read_as(thread, reader, ReadMark::UnreadFrom(1), UnreadMax::DEFAULT)
        .await
        .expect("mark unread");
    let capped = here
        .read_states_of(reader, &[thread], UnreadMax::new(1).expect("valid"))
        .await
        .expect("read states");
    assert_eq!((capped[0].unread, capped[0].capped), (1, true));
    assert_eq!(unread(&here).await, (0, 2, Some(written[1].seq)));
}

/// A reaction added on one process to a message another process changed since the first
/// wrote it: the first process's kept state is stale, and the reaction is applied to the
/// message as it is, keeping the other's change.
#[tokio::test]
async fn a_reaction_after_another_process_changed_the_message_keeps_that_change() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let here = db.store().await;
    let there = PostgresStore::open(&PostgresConfig::new(db.url()))
        .await
        .expect("open");
    let thread = ThreadId::from_uuid(Uuid::now_v7());
    let m = messages_core::testing::text_message(
        thread,
        UserId::from_uuid(Uuid::now_v7()),
        1_764_000_000_000_000,
        "hello",
    );
    here.create_with(&m, None).await.expect("create");
    let request = |user: UserId, emoji: &str| ReactionRequest {
        thread,
        id: m.id,
        user,
        emoji: Emoji::parse(emoji).expect("emoji"),
        change: ReactionChange::Add,
        at: Timestamp::from_micros(1_764_000_000_000_100),
        limits: ReactionLimits::default(),
    };
    let (a, b) = (
        UserId::from_uuid(Uuid::now_v7()),
        UserId::from_uuid(Uuid::now_v7()),
    );
    there.react(request(a, "👍")).await.expect("react there");
    let reacted = here.react(request(b, "🎉")).await.expect("react here");
    assert!(reacted.changed);
    assert_eq!(
        reacted
            .message
            .reactions
            .iter()
            .map(|r| (r.emoji.as_str().to_owned(), r.users.clone()))
            .collect::<Vec<_>>(),
        [("👍".to_owned(), vec![a]), ("🎉".to_owned(), vec![b])],
        "the other process's reaction is kept"
    );
    assert_eq!(reacted.message.rev, 3);
    assert_eq!(here.get(thread, m.id).await.expect("get"), reacted.message);
    // And a repeat on the fresh state takes no number.
    let again = here.react(request(b, "🎉")).await.expect("repeat");
    assert!(!again.changed);
    assert_eq!(here.head(thread).await.expect("head"), 3);
}

/// A write that waits past the store's operation timeout is answered `Unavailable`, and
/// PostgreSQL stops the statement too: it does not wait on, or land later, unacknowledged.
#[tokio::test]
async fn a_statement_past_the_operation_timeout_is_stopped_in_the_database() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let mut config = PostgresConfig::new(db.url());
    config.operation_timeout = std::time::Duration::from_millis(300);
    let store = PostgresStore::open(&config).await.expect("open");
    store.migrate().await.expect("migrate");
    let thread = ThreadId::from_uuid(Uuid::now_v7());
    let author = UserId::from_uuid(Uuid::now_v7());
    let first = messages_core::testing::text_message(thread, author, 1_764_000_000_000_000, "one");
    store.create_with(&first, None).await.expect("create");
    // Another session holds the thread's counter row, so the next write of the thread waits.
    let (other, connection) = tokio_postgres::connect(db.url(), tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    other
        .batch_execute(&format!(
            "BEGIN; SELECT head FROM threads WHERE thread_id = '{thread}' FOR UPDATE"
        ))
        .await
        .expect("lock");
    let second = messages_core::testing::text_message(thread, author, 1_764_000_000_000_001, "two");
    let waited = store.create_with(&second, None).await;
    assert!(
        matches!(waited, Err(messages_core::Error::Unavailable { .. })),
        "{waited:?}"
    );
    // The statements this session's lock holds up; other tests share the database, and some
    // hold locks of their own on purpose. PostgreSQL ends the store's statement at its timeout,
    // 300 ms after it began; on a loaded machine it may begin a little after the caller gave up.
    let mut waiting: i64 = -1;
    for _ in 0..30 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        waiting = other
            .query_one(
                "SELECT count(*) FROM pg_stat_activity \
                 WHERE pg_backend_pid() = ANY(pg_blocking_pids(pid))",
                &[],
            )
            .await
            .expect("activity")
            .get(0);
        if waiting == 0 {
            break;
        }
    }
    // Let go before asserting, so a failure does not leave the test's schema locked.
    other.batch_execute("ROLLBACK").await.expect("rollback");
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(waiting, 0, "no statement of the store still waits");
    assert_eq!(
        store.head(thread).await.expect("head"),
        1,
        "the write given up on did not land later"
    );
}
