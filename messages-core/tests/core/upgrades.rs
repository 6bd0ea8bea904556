//! Upgrades and restarts: a database of the previous release keeps its data and takes the new
//! writes; what a store keeps is there for the next store opened on the same file or database.

use messages_core::storage::postgres::{PostgresConfig, PostgresStore};
use messages_core::storage::sqlite::SqliteStore;
use messages_core::storage::{MessageStore, Schema};
use messages_core::testing::postgres::TestDatabase;
use messages_core::testing::sqlite::TempDir;
use messages_core::testing::storage::Calls;
use messages_core::{
    Emoji, Limits, Mentions, Message, MessageId, MessageKind, MessagePatch, NewMessage,
    ReactionChange, ReactionLimits, ReactionRequest, ReadMark, ThreadId, Timestamp, UnreadMax,
    UserId,
};
use uuid::Uuid;

/// Replies the previous release wrote, as the upgrade finds them: `root` with live replies
/// `first` (by `a`, to the root) and `second` (by `b`, to `first`) and a deleted one: each
/// reply joins the root, and the root's summary counts the live ones.
async fn replies_of_the_previous_release_join_their_roots(
    store: &dyn MessageStore,
    thread: ThreadId,
    [root, first, second]: [MessageId; 3],
    [a, b]: [UserId; 2],
) {
    let root_now = store.get(thread, root).await.expect("the root");
    assert_eq!(root_now.root_id, None);
    let summary = root_now.replies.expect("a summary of the old replies");
    assert_eq!((summary.count, summary.last_reply_id), (2, second));
    assert_eq!(summary.participants, vec![b, a]);
    for reply in [first, second] {
        let r = store.get(thread, reply).await.expect("a reply");
        assert_eq!(r.root_id, Some(root), "an old reply joins its root");
        assert_eq!(r.replies, None);
    }
    let page = store
        .replies(thread, root, 0, messages_core::PageSize::DEFAULT)
        .await
        .expect("the root's replies");
    let ids: Vec<MessageId> = page.items.iter().map(|m| m.id).collect();
    assert_eq!(ids, [first, second]);
    // Their writers follow the conversation with their newest reply read.
    let threads = messages_core::ThreadList::new(vec![thread]).expect("one thread");
    for (user, unread) in [(a, 1), (b, 0)] {
        let inbox = store
            .inbox(
                user,
                &threads,
                None,
                messages_core::PageSize::DEFAULT,
                UnreadMax::DEFAULT,
            )
            .await
            .expect("inbox");
        assert_eq!(inbox.items.len(), 1, "an old conversation is followed");
        assert_eq!(inbox.items[0].conversation.unread, unread);
    }
}

/// What an upgraded database must show: the messages written before the upgrade, with no
/// reply and no reaction, and every new feature working on them.
async fn an_upgraded_store_keeps_its_messages_and_takes_the_new_writes(
    store: &dyn MessageStore,
    thread: ThreadId,
    old: MessageId,
    author: UserId,
) {
    let kept = store
        .get(thread, old)
        .await
        .expect("the old message is there");
    assert_eq!(kept.content, "written before the upgrade");
    assert_eq!((kept.reply_to, kept.reactions.len()), (None, 0));
    // The search index was built for the rows there before it.
    let query = messages_core::search::SearchQuery {
        text: messages_core::search::SearchText::parse("BEFORE the upgrade").expect("a query"),
        threads: messages_core::ThreadList::new(vec![thread]).expect("one thread"),
        from: vec![],
        after: None,
        size: messages_core::PageSize::DEFAULT,
    };
    let found = store.search(&query).await.expect("search");
    assert_eq!(
        found.page.items.iter().map(|m| m.id).collect::<Vec<_>>(),
        [old]
    );
    let reply = Message::from_new(
        MessageId::new_v7(),
        thread,
        author,
        NewMessage::new(
            MessageKind::Text,
            "a reply".into(),
            vec![],
            &Limits::default(),
        )
        .expect("valid")
        .replying_to(Some(old)),
        Timestamp::from_micros(1_764_000_000_000_500),
    );
    let created = store
        .create_with(&reply, None)
        .await
        .expect("a reply to an old message");
    assert_eq!(created.message().reply_to, Some(old));
    assert_eq!(
        created.message().seq,
        2,
        "the sequence goes on from the old head"
    );
    let request = ReactionRequest {
        thread,
        id: old,
        user: author,
        emoji: Emoji::parse("👍").expect("emoji"),
        change: ReactionChange::Add,
        at: Timestamp::from_micros(1_764_000_000_000_600),
        limits: ReactionLimits::default(),
    };
    let reacted = store.react(request).await.expect("react");
    assert_eq!(
        reacted.message.rev, 4,
        "after the reply (2) and its root's summary (3)"
    );
    assert_eq!(
        reacted.message.replies.map(|r| (r.count, r.last_reply_id)),
        Some((1, created.message().id))
    );
    // An old message takes mentions with an edit; its old version mentioned no one.
    let mentioned = UserId::from_uuid(Uuid::now_v7());
    let mentions = Mentions::new(vec![mentioned], false, 50).expect("mentions");
    let patch = MessagePatch::with_mentions(
        Some("edited after".into()),
        None,
        Some(mentions.clone()),
        &Limits::default(),
    )
    .expect("valid");
    let edited = store
        .update_as(
            thread,
            old,
            author,
            &patch,
            Timestamp::from_micros(1_764_000_000_000_700),
        )
        .await
        .expect("edit");
    assert_eq!(edited.mentions.as_ref(), Some(&mentions));
    assert_eq!(kept.mentions, None, "an old message mentions no one");
    let history = store.history(thread, old).await.expect("history");
    assert_eq!(
        history.versions.last().and_then(|v| v.mentions.as_ref()),
        Some(&mentions)
    );
    assert_eq!(
        history
            .versions
            .iter()
            .map(|v| v.content.as_str())
            .collect::<Vec<_>>(),
        ["written before the upgrade", "edited after"]
    );
    // Read state on the old rows: a reader who never read counts both messages; the
    // author's own reply moved the author's position to it.
    let reader = UserId::from_uuid(Uuid::now_v7());
    let states = store
        .read_states_of(reader, &[thread], UnreadMax::DEFAULT)
        .await
        .expect("read states");
    assert_eq!((states[0].seq, states[0].unread), (0, 2));
    let marked = store
        .mark_read_as(thread, reader, ReadMark::ReadTo(1), UnreadMax::DEFAULT)
        .await
        .expect("mark read");
    assert_eq!((marked.seq, marked.unread), (1, 1));
    let own = store
        .read_states_of(author, &[thread], UnreadMax::DEFAULT)
        .await
        .expect("read states");
    assert_eq!((own[0].seq, own[0].unread), (2, 0));
}

#[tokio::test]
async fn an_sqlite_database_of_the_previous_release_upgrades_with_its_data() {
    let dir = TempDir::new();
    let store = SqliteStore::open(&dir.config()).await.expect("open");
    // The release before reply threads, whose two migrations (summaries, follows) run here,
    // and the mentions' and the search index's after them.
    let previous = SqliteStore::migration_count() - 4;
    assert_eq!(store.migrate_to(previous).await.expect("migrate"), previous);
    let (thread, old, author) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    let [replies, root, first, second, gone, a, b] = [(); 7].map(|_| Uuid::now_v7());
    {
        // Written as the previous release wrote it, on a connection of the test's own.
        let conn = rusqlite::Connection::open(dir.config().path).expect("open file");
        conn.execute(
            "INSERT INTO threads (thread_id, head) VALUES (?1, 1)",
            [thread],
        )
        .expect("thread");
        conn.execute(
            "INSERT INTO messages (thread_id, seq, id, user_id, kind, content, paths, \
             created_at, updated_at, rev) \
             VALUES (?1, 1, ?2, ?3, 'text', 'written before the upgrade', '[]', 1, 1, 1)",
            [thread, old, author],
        )
        .expect("message");
        let insert = "INSERT INTO messages (thread_id, seq, id, user_id, kind, content, paths, \
             created_at, updated_at, rev, reply_to, deleted_at) \
             VALUES (?1, ?2, ?3, ?4, 'text', 'old', '[]', ?2, ?2, ?2, ?5, ?6)";
        for (seq, id, user, to, deleted) in [
            (1, root, a, None, None),
            (2, first, a, Some(root), None),
            (3, second, b, Some(first), None),
            (4, gone, b, Some(root), Some(4)),
        ] {
            conn.execute(
                insert,
                rusqlite::params![replies, seq, id, user, to, deleted],
            )
            .expect("an old reply");
        }
        conn.execute(
            "INSERT INTO threads (thread_id, head) VALUES (?1, 4)",
            [replies],
        )
        .expect("thread");
    }
    assert_eq!(store.migrate().await.expect("upgrade"), 4);
    replies_of_the_previous_release_join_their_roots(
        &store,
        ThreadId::from_uuid(replies),
        [root, first, second].map(MessageId::from_uuid),
        [a, b].map(UserId::from_uuid),
    )
    .await;
    an_upgraded_store_keeps_its_messages_and_takes_the_new_writes(
        &store,
        ThreadId::from_uuid(thread),
        MessageId::from_uuid(old),
        UserId::from_uuid(author),
    )
    .await;
}

#[tokio::test]
async fn a_postgres_database_of_the_previous_release_upgrades_with_its_data() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let store = PostgresStore::open(&PostgresConfig::new(db.url()))
        .await
        .expect("open");
    // The release before reply threads (V8), whose migrations (summaries, follows, the
    // follows' change numbers) run here.
    let previous = 8;
    assert_eq!(store.migrate_to(previous).await.expect("migrate"), previous);
    let (thread, old, author) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    let [replies, root, first, second, gone, a, b] = [(); 7].map(|_| Uuid::now_v7());
    let (client, connection) = tokio_postgres::connect(db.url(), tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    client
        .batch_execute(&format!(
            "INSERT INTO threads (thread_id, head) VALUES ('{thread}', 1);
             INSERT INTO messages (thread_id, id, user_id, kind, content, created_at,
                                   updated_at, seq, rev)
             VALUES ('{thread}', '{old}', '{author}', 'text', 'written before the upgrade',
                     now(), now(), 1, 1);
             INSERT INTO threads (thread_id, head) VALUES ('{replies}', 4);
             INSERT INTO messages (thread_id, id, user_id, kind, content, created_at,
                                   updated_at, seq, rev, reply_to, deleted_at)
             VALUES ('{replies}', '{root}', '{a}', 'text', 'old', now(), now(), 1, 1, NULL, NULL),
                    ('{replies}', '{first}', '{a}', 'text', 'old', now(), now(), 2, 2,
                     '{root}', NULL),
                    ('{replies}', '{second}', '{b}', 'text', 'old', now(), now(), 3, 3,
                     '{first}', NULL),
                    ('{replies}', '{gone}', '{b}', 'text', 'old', now(), now(), 4, 4,
                     '{root}', now());"
        ))
        .await
        .expect("rows of the previous release");
    assert_eq!(
        store.migrate().await.expect("upgrade"),
        PostgresStore::migration_count() - previous
    );
    replies_of_the_previous_release_join_their_roots(
        &store,
        ThreadId::from_uuid(replies),
        [root, first, second].map(MessageId::from_uuid),
        [a, b].map(UserId::from_uuid),
    )
    .await;
    an_upgraded_store_keeps_its_messages_and_takes_the_new_writes(
        &store,
        ThreadId::from_uuid(thread),
        MessageId::from_uuid(old),
        UserId::from_uuid(author),
    )
    .await;
}

/// A read position is in the database: a new store on the same file or database (a restart)
/// answers it.
async fn a_read_position_survives_a_restart<F, Fut, S>(open: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = S>,
    S: MessageStore,
{
    let (thread, author, reader) = (
        ThreadId::from_uuid(Uuid::now_v7()),
        UserId::from_uuid(Uuid::now_v7()),
        UserId::from_uuid(Uuid::now_v7()),
    );
    {
        let store = open().await;
        for i in 0..3 {
            let m = messages_core::testing::text_message(
                thread,
                author,
                1_764_000_000_000_000 + i,
                "before the restart",
            );
            store.create_with(&m, None).await.expect("create");
        }
        let marked = store
            .mark_read_as(thread, reader, ReadMark::ReadTo(2), UnreadMax::DEFAULT)
            .await
            .expect("mark read");
        assert_eq!((marked.seq, marked.unread), (2, 1));
    }
    let store = open().await;
    let states = store
        .read_states_of(reader, &[thread], UnreadMax::DEFAULT)
        .await
        .expect("read states");
    assert_eq!(
        (states[0].seq, states[0].unread, states[0].first_unread_seq),
        (2, 1, Some(3))
    );
}

#[tokio::test]
async fn a_read_position_survives_a_restart_on_sqlite() {
    let dir = TempDir::new();
    a_read_position_survives_a_restart(|| dir.store()).await;
}

#[tokio::test]
async fn a_read_position_survives_a_restart_on_postgres() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    a_read_position_survives_a_restart(|| db.store()).await;
}
