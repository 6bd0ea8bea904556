//! The storage contract on every store, one test per case: in memory and on SQLite always,
//! PostgreSQL when `DATABASE_URL` is set (required under `CI=true`).

use messages_core::events::codec;
use messages_core::storage::memory::MemoryStore;
use messages_core::storage::postgres::{PostgresConfig, PostgresStore};
use messages_core::storage::sqlite::SqliteStore;
use messages_core::storage::{MessageStore, ReactionRequest, Schema};
use messages_core::testing::postgres::TestDatabase;
use messages_core::testing::sqlite::TempDir;
use messages_core::testing::storage::Subject;
use messages_core::{
    Emoji, Limits, Message, MessageId, MessageKind, MessagePatch, NewMessage, ReactionChange,
    ReactionLimits, Reactors, ReadMark, Removal, ThreadId, Timestamp, UnreadMax, UserId,
};
use uuid::Uuid;

messages_core::storage_contract!(
    memory => async { Some(Subject::new(MemoryStore::new())) },
    sqlite => async {
        let dir = TempDir::new();
        let store = dir.store().await;
        Some(Subject::new(store).keeping(dir))
    },
    postgres => async {
        let db = TestDatabase::create().await?;
        let store = db.store().await;
        Some(Subject::new(store).keeping(db))
    },
);

/// Every store has one schema shape: a fresh database is at version 0, `migrate` applies
/// every migration the store has, and a second `migrate` applies none.
async fn the_schema_is_applied_once<S: Schema + Sync>(store: S) {
    assert_eq!(store.schema_version().await.expect("version"), 0);
    assert_eq!(
        store.migrate().await.expect("migrate"),
        S::migration_count()
    );
    assert_eq!(store.migrate().await.expect("migrate again"), 0);
    assert_eq!(
        store.schema_version().await.expect("version"),
        S::migration_count()
    );
}

#[tokio::test]
async fn the_schema_is_applied_once_on_sqlite() {
    let dir = TempDir::new();
    let store = SqliteStore::open(&dir.config()).await.expect("open");
    assert!(SqliteStore::migration_count() > 0);
    the_schema_is_applied_once(store).await;
}

#[tokio::test]
async fn the_schema_is_applied_once_on_postgres() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let store = PostgresStore::open(&PostgresConfig::new(db.url()))
        .await
        .expect("open");
    assert!(PostgresStore::migration_count() > 0);
    the_schema_is_applied_once(store).await;
}

#[tokio::test]
async fn memory_has_no_schema_to_migrate() {
    the_schema_is_applied_once(MemoryStore::new()).await;
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
        .create(&reply, None, codec::created(&reply))
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
        now: Timestamp::from_micros(1_764_000_000_000_600),
        limits: ReactionLimits::default(),
    };
    let reacted = store.react(request, codec::reaction).await.expect("react");
    assert_eq!(reacted.message.rev, 3);
    let patch =
        MessagePatch::new(Some("edited after".into()), None, &Limits::default()).expect("valid");
    store
        .update(
            thread,
            old,
            author,
            &patch,
            Timestamp::from_micros(1_764_000_000_000_700),
            codec::updated,
        )
        .await
        .expect("edit");
    let history = store.history(thread, old).await.expect("history");
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
        .read_states(reader, &[thread], UnreadMax::DEFAULT)
        .await
        .expect("read states");
    assert_eq!((states[0].seq, states[0].unread), (0, 2));
    let marked = store
        .mark_read(thread, reader, ReadMark::ReadTo(1), UnreadMax::DEFAULT)
        .await
        .expect("mark read");
    assert_eq!((marked.seq, marked.unread), (1, 1));
    let own = store
        .read_states(author, &[thread], UnreadMax::DEFAULT)
        .await
        .expect("read states");
    assert_eq!((own[0].seq, own[0].unread), (2, 0));
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
            store
                .create(&m, None, codec::created(&m))
                .await
                .expect("create");
        }
        let marked = store
            .mark_read(thread, reader, ReadMark::ReadTo(2), UnreadMax::DEFAULT)
            .await
            .expect("mark read");
        assert_eq!((marked.seq, marked.unread), (2, 1));
    }
    let store = open().await;
    let states = store
        .read_states(reader, &[thread], UnreadMax::DEFAULT)
        .await
        .expect("read states");
    assert_eq!(
        (states[0].seq, states[0].unread, states[0].first_unread_seq),
        (2, 1, Some(3))
    );
}

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
            here.create(&m, None, codec::created(&m))
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
                .read_states(reader, &[thread], UnreadMax::DEFAULT)
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
        .delete(
            thread,
            written[0].id,
            &Removal::by_author(author),
            gone,
            codec::deleted,
        )
        .await
        .expect("delete");
    assert_eq!(unread(&here).await, (0, 2, Some(written[1].seq)));

    // And moves the reader's position.
    there
        .mark_read(
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
        .read_states(reader, &[thread], UnreadMax::new(1).expect("valid"))
        .await
        .expect("read states");
    assert_eq!((capped[0].unread, capped[0].capped), (1, false));
    there
        .mark_read(thread, reader, ReadMark::UnreadFrom(1), UnreadMax::DEFAULT)
        .await
        .expect("mark unread");
    let capped = here
        .read_states(reader, &[thread], UnreadMax::new(1).expect("valid"))
        .await
        .expect("read states");
    assert_eq!((capped[0].unread, capped[0].capped), (1, true));
    assert_eq!(unread(&here).await, (0, 2, Some(written[1].seq)));
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

#[tokio::test]
async fn an_sqlite_database_of_the_previous_release_upgrades_with_its_data() {
    let dir = TempDir::new();
    let store = SqliteStore::open(&dir.config()).await.expect("open");
    let previous = SqliteStore::migration_count() - 1;
    assert_eq!(store.migrate_to(previous).await.expect("migrate"), previous);
    let (thread, old, author) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
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
    }
    assert_eq!(store.migrate().await.expect("upgrade"), 1);
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
    let previous = PostgresStore::migration_count() - 1;
    assert_eq!(store.migrate_to(previous).await.expect("migrate"), previous);
    let (thread, old, author) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
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
                     now(), now(), 1, 1);"
        ))
        .await
        .expect("rows of the previous release");
    assert_eq!(store.migrate().await.expect("upgrade"), 1);
    an_upgraded_store_keeps_its_messages_and_takes_the_new_writes(
        &store,
        ThreadId::from_uuid(thread),
        MessageId::from_uuid(old),
        UserId::from_uuid(author),
    )
    .await;
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
    here.create(&m, None, codec::created(&m))
        .await
        .expect("create");
    let request = |user: UserId, emoji: &str| ReactionRequest {
        thread,
        id: m.id,
        user,
        emoji: Emoji::parse(emoji).expect("emoji"),
        change: ReactionChange::Add,
        now: Timestamp::from_micros(1_764_000_000_000_100),
        limits: ReactionLimits::default(),
    };
    let (a, b) = (
        UserId::from_uuid(Uuid::now_v7()),
        UserId::from_uuid(Uuid::now_v7()),
    );
    there
        .react(request(a, "👍"), codec::reaction)
        .await
        .expect("react there");
    let reacted = here
        .react(request(b, "🎉"), codec::reaction)
        .await
        .expect("react here");
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
    let again = here
        .react(request(b, "🎉"), codec::reaction)
        .await
        .expect("repeat");
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
    store
        .create(&first, None, codec::created(&first))
        .await
        .expect("create");
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
    let waited = store.create(&second, None, codec::created(&second)).await;
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

/// A run without backends says so where a person sees it: this test binary, run again on one
/// PostgreSQL test with no `DATABASE_URL`, reports the test passed and writes past the
/// harness's capture which backend it skipped and why; under `CI=true` the same test fails.
#[test]
fn a_run_without_backends_says_what_it_skipped() {
    let run = |ci: bool| {
        let mut command = std::process::Command::new(std::env::current_exe().expect("this binary"));
        command
            .args([
                "--exact",
                "storage::the_schema_is_applied_once_on_postgres",
                "--test-threads",
                "1",
            ])
            .env_remove("DATABASE_URL")
            .env_remove("CI");
        if ci {
            command.env("CI", "true");
        }
        command.output().expect("the test binary runs")
    };
    let out = run(false);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("1 passed"), "{stdout}");
    assert!(
        stderr.contains("skipped (") && stderr.contains("DATABASE_URL is not set"),
        "the skip is not said: {stderr}"
    );
    let out = run(true);
    assert!(
        !out.status.success(),
        "under CI=true a backend test without its URL fails"
    );
}

/// A PostgreSQL store with one lane of creates, so that every create queued while one is in
/// flight joins the next group; a session of its own on the same schema; a thread whose first
/// create is written.
async fn one_lane_store(db: &TestDatabase) -> (PostgresStore, tokio_postgres::Client, ThreadId) {
    let mut config = PostgresConfig::new(db.url());
    config.group_lanes = 1;
    let store = PostgresStore::open(&config).await.expect("open");
    store.migrate().await.expect("migrate");
    let (other, connection) = tokio_postgres::connect(db.url(), tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    let held = ThreadId::from_uuid(Uuid::now_v7());
    let first =
        messages_core::testing::text_message(held, UserId::from_uuid(Uuid::now_v7()), 1, "first");
    store
        .create(&first, None, codec::created(&first))
        .await
        .expect("create");
    (store, other, held)
}

/// Begins a transaction on `other` that holds the message's row, so a change of it waits.
async fn hold_message(other: &tokio_postgres::Client, thread: ThreadId, id: MessageId) {
    other
        .batch_execute(&format!(
            "BEGIN; SELECT 1 FROM messages WHERE thread_id = '{thread}' AND id = '{id}' FOR UPDATE"
        ))
        .await
        .expect("lock");
}

/// Makes every row inserted into `table` record `column` and the transaction that wrote it in
/// a table `writes (id, tx)`.
async fn note_transactions(other: &tokio_postgres::Client, table: &str, column: &str) {
    other
        .batch_execute(&format!(
            "CREATE TABLE writes (id uuid, tx bigint);
             CREATE FUNCTION note_write() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN INSERT INTO writes VALUES (NEW.{column}, txid_current()); RETURN NEW; END $$;
             CREATE TRIGGER note_write AFTER INSERT ON {table}
             FOR EACH ROW EXECUTE FUNCTION note_write();"
        ))
        .await
        .expect("trigger");
}

/// Holds `held`'s counter row from `other`, starts a create on it (which then waits, in flight,
/// holding its lane), queues `messages` behind it, lets go, and answers every outcome, the
/// held thread's first.
async fn queue_behind_a_held_create(
    store: &PostgresStore,
    other: &tokio_postgres::Client,
    held: ThreadId,
    messages: Vec<Message>,
) -> Vec<messages_core::Result<messages_core::storage::Created>> {
    other
        .batch_execute(&format!(
            "BEGIN; SELECT head FROM threads WHERE thread_id = '{held}' FOR UPDATE"
        ))
        .await
        .expect("lock");
    let blocked =
        messages_core::testing::text_message(held, UserId::from_uuid(Uuid::now_v7()), 2, "held");
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn({
        let store = store.clone();
        async move {
            (
                0,
                store.create(&blocked, None, codec::created(&blocked)).await,
            )
        }
    });
    // The held create reaches the database before the others queue.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    for (i, m) in messages.into_iter().enumerate() {
        let store = store.clone();
        tasks.spawn(async move { (i + 1, store.create(&m, None, codec::created(&m)).await) });
        tokio::task::yield_now().await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    other.batch_execute("ROLLBACK").await.expect("let go");
    let mut outcomes: Vec<_> = tasks.join_all().await;
    outcomes.sort_by_key(|(i, _)| *i);
    outcomes.into_iter().map(|(_, outcome)| outcome).collect()
}

/// Creates of many threads that queue while a create is in flight are written by one
/// transaction, each thread numbered without a gap in the order its creates queued, each with
/// its event numbered the same.
#[tokio::test]
async fn creates_of_many_threads_that_queue_together_commit_together() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let (store, other, held) = one_lane_store(&db).await;
    // Each message written records the transaction that wrote it.
    note_transactions(&other, "messages", "id").await;
    let threads: Vec<ThreadId> = (0..10)
        .map(|_| ThreadId::from_uuid(Uuid::now_v7()))
        .collect();
    let author = UserId::from_uuid(Uuid::now_v7());
    // Three creates on each of ten threads, interleaved.
    let queued: Vec<Message> = (0..30)
        .map(|i| {
            messages_core::testing::text_message(
                threads[i % 10],
                author,
                10 + i as i64,
                &format!("m{i}"),
            )
        })
        .collect();
    let outcomes = queue_behind_a_held_create(&store, &other, held, queued.clone()).await;
    let mut written = Vec::new();
    for outcome in outcomes {
        match outcome.expect("every create is written") {
            messages_core::storage::Created::New(m) => written.push(m),
            replayed => panic!("nothing was replayed: {replayed:?}"),
        }
    }
    assert_eq!(written[0].seq, 2, "the held create wrote after the first");
    for (i, m) in written[1..].iter().enumerate() {
        assert_eq!(m.id, queued[i].id);
        assert_eq!(
            m.seq,
            (i / 10) as i64 + 1,
            "numbered in the order its thread's creates queued"
        );
        assert_eq!(store.get(m.thread_id, m.id).await.expect("get"), *m);
    }
    let transactions: i64 = other
        .query_one(
            "SELECT count(DISTINCT tx) FROM writes WHERE id = ANY($1)",
            &[&queued.iter().map(|m| *m.id.as_uuid()).collect::<Vec<_>>()],
        )
        .await
        .expect("writes")
        .get(0);
    assert_eq!(
        transactions, 1,
        "thirty creates of ten threads, one transaction"
    );
    let events: Vec<(Uuid, i64)> = other
        .query(
            "SELECT thread_id, message_seq FROM outbox WHERE kind = 'message.created' \
             AND thread_id = ANY($1) ORDER BY thread_id, message_seq",
            &[&threads.iter().map(|t| *t.as_uuid()).collect::<Vec<_>>()],
        )
        .await
        .expect("outbox")
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    let mut expected: Vec<(Uuid, i64)> = threads
        .iter()
        .flat_map(|t| (1..=3).map(move |seq| (*t.as_uuid(), seq)))
        .collect();
    expected.sort();
    assert_eq!(events, expected, "one event per create, numbered like it");
}

/// A value PostgreSQL refuses in a group fails only its own create: the group goes in one by
/// one, that create answers 422 as it would alone, its neighbours are written without a gap.
/// The refusal is injected in the database (a trigger), since input validation stops such
/// values before the store.
#[tokio::test]
async fn a_refused_value_in_a_group_fails_only_its_own_create() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let (store, other, held) = one_lane_store(&db).await;
    other
        .batch_execute(
            "CREATE SEQUENCE refusals;
             CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN
                 IF NEW.content = 'refused by the store' THEN
                     PERFORM nextval('refusals');
                     RAISE EXCEPTION 'refused' USING ERRCODE = '22023';
                 END IF;
                 RETURN NEW;
             END $$;
             CREATE TRIGGER refuse BEFORE INSERT ON messages
             FOR EACH ROW EXECUTE FUNCTION refuse();",
        )
        .await
        .expect("trigger");
    let threads: Vec<ThreadId> = (0..4)
        .map(|_| ThreadId::from_uuid(Uuid::now_v7()))
        .collect();
    let author = UserId::from_uuid(Uuid::now_v7());
    let queued: Vec<Message> = (0..8)
        .map(|i| {
            let text = if i == 5 {
                "refused by the store".to_owned()
            } else {
                format!("m{i}")
            };
            messages_core::testing::text_message(threads[i % 4], author, 10 + i as i64, &text)
        })
        .collect();
    let outcomes = queue_behind_a_held_create(&store, &other, held, queued.clone()).await;
    for (i, outcome) in outcomes[1..].iter().enumerate() {
        match (i, outcome) {
            (5, Err(messages_core::Error::Invalid { .. })) => {}
            (5, other) => panic!("the refused create answers as invalid: {other:?}"),
            (_, Ok(messages_core::storage::Created::New(m))) => assert_eq!(m.id, queued[i].id),
            (_, other) => panic!("its neighbours are written: {other:?}"),
        }
    }
    let refusals: i64 = other
        .query_one("SELECT last_value FROM refusals", &[])
        .await
        .expect("refusals")
        .get(0);
    assert_eq!(refusals, 2, "refused in the group, then alone");
    for (n, t) in threads.iter().enumerate() {
        let expected = if n == 1 { 1 } else { 2 };
        assert_eq!(
            store.head(*t).await.expect("head"),
            expected,
            "no number lost"
        );
    }
}

/// Edits and deletes of one thread that queue while one is in flight are applied by one
/// transaction, each numbered in the order it queued with its own event; one refused (not the
/// caller's message, no such message, a value PostgreSQL refuses) answers its own error and
/// undoes only itself, and takes no number.
#[tokio::test]
async fn edits_and_deletes_of_one_thread_that_queue_together_commit_together() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let (store, other, _) = one_lane_store(&db).await;
    note_transactions(&other, "outbox", "id").await;
    // An edit to this text is refused by the database, as a value it cannot store would be.
    other
        .batch_execute(
            "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN
                 IF NEW.content = 'refused by the store' THEN
                     RAISE EXCEPTION 'refused' USING ERRCODE = '22023';
                 END IF;
                 RETURN NEW;
             END $$;
             CREATE TRIGGER refuse BEFORE UPDATE ON messages
             FOR EACH ROW EXECUTE FUNCTION refuse();",
        )
        .await
        .expect("trigger");
    let thread = ThreadId::from_uuid(Uuid::now_v7());
    let author = UserId::from_uuid(Uuid::now_v7());
    let stranger = UserId::from_uuid(Uuid::now_v7());
    let mut written = Vec::new();
    for i in 0..8 {
        let m = messages_core::testing::text_message(thread, author, 10 + i, &format!("m{i}"));
        store
            .create(&m, None, codec::created(&m))
            .await
            .expect("create");
        written.push(m);
    }
    let head = store.head(thread).await.expect("head");
    assert_eq!(head, 8);
    let now = Timestamp::from_micros(1_764_000_000_900_000);
    let patch = |text: &str| {
        MessagePatch::new(Some(text.into()), None, &Limits::default()).expect("a valid patch")
    };
    // The first edit waits for the held row, in flight; the rest queue behind it.
    hold_message(&other, thread, written[0].id).await;
    let mut tasks = tokio::task::JoinSet::new();
    let edit = |i: usize, id: MessageId, user: UserId, text: &str| {
        let (store, patch) = (store.clone(), patch(text));
        async move {
            let edited = store
                .update(thread, id, user, &patch, now, codec::updated)
                .await;
            (i, edited.map(|m| (m.rev, m.content)))
        }
    };
    tasks.spawn(edit(0, written[0].id, author, "held"));
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    tasks.spawn(edit(1, written[1].id, author, "edited 1"));
    tokio::task::yield_now().await;
    tasks.spawn(edit(2, written[2].id, stranger, "not theirs"));
    tokio::task::yield_now().await;
    tasks.spawn({
        let store = store.clone();
        let id = written[3].id;
        async move {
            let deleted = store
                .delete(thread, id, &Removal::by_author(author), now, codec::deleted)
                .await;
            (3, deleted.map(|t| (t.rev, String::new())))
        }
    });
    tokio::task::yield_now().await;
    tasks.spawn(edit(4, MessageId::new_v7(), author, "no such message"));
    tokio::task::yield_now().await;
    tasks.spawn(edit(5, written[5].id, author, "refused by the store"));
    tokio::task::yield_now().await;
    tasks.spawn(edit(6, written[6].id, author, "edited 6"));
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    other.batch_execute("ROLLBACK").await.expect("let go");
    let mut outcomes: Vec<_> = tasks.join_all().await;
    outcomes.sort_by_key(|(i, _)| *i);
    let answers: Vec<_> = outcomes.into_iter().map(|(_, outcome)| outcome).collect();

    assert_eq!(
        answers[0].as_ref().expect("the held edit"),
        &(9, "held".into())
    );
    assert_eq!(
        answers[1].as_ref().expect("an edit of the group"),
        &(10, "edited 1".into())
    );
    assert!(
        matches!(answers[2], Err(messages_core::Error::Forbidden)),
        "not the caller's: {:?}",
        answers[2]
    );
    assert_eq!(
        answers[3].as_ref().expect("a delete of the group").0,
        11,
        "numbered after the edit before it"
    );
    assert!(
        matches!(answers[4], Err(messages_core::Error::NotFound)),
        "{:?}",
        answers[4]
    );
    assert!(
        matches!(answers[5], Err(messages_core::Error::Invalid { .. })),
        "refused by the database: {:?}",
        answers[5]
    );
    assert_eq!(
        answers[6].as_ref().expect("an edit after the refused ones"),
        &(12, "edited 6".into()),
        "the refused changes took no number"
    );
    assert_eq!(store.head(thread).await.expect("head"), 12);
    assert_eq!(
        store
            .get(thread, written[5].id)
            .await
            .expect("the refused edit's message")
            .content,
        "m5",
        "undone"
    );
    assert!(
        matches!(
            store.get(thread, written[3].id).await,
            Err(messages_core::Error::NotFound)
        ),
        "deleted"
    );
    let events: Vec<(i64, Option<i64>)> = other
        .query(
            "SELECT w.tx, o.rev FROM outbox o JOIN writes w ON w.id = o.id \
             WHERE o.thread_id = $1 AND o.kind <> 'message.created' ORDER BY o.rev",
            &[thread.as_uuid()],
        )
        .await
        .expect("outbox")
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    let revs: Vec<Option<i64>> = events.iter().map(|(_, rev)| *rev).collect();
    assert_eq!(
        revs,
        vec![Some(9), Some(10), Some(11), Some(12)],
        "one event per change written, numbered like it"
    );
    let transactions: std::collections::HashSet<i64> =
        events[1..].iter().map(|(tx, _)| *tx).collect();
    assert_eq!(
        transactions.len(),
        1,
        "the changes that queued behind the held edit, one transaction"
    );
    assert_ne!(events[0].0, events[1].0, "the held edit went alone");
}

/// The outbox relay's statements keep off sequential scans of a queue analysed empty and then
/// full of delivered rows nothing vacuumed yet: each such scan walks every dead row, and on
/// every claim and acknowledgement that was the largest single cost of a create under load.
/// At this size the claim joined back by `seq` scans (and fails this test); the list-only
/// delete scanned only on a queue of some 25,000 pages, which this test does not build.
#[tokio::test]
async fn the_relay_never_scans_the_whole_outbox() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let (_store, other, _) = one_lane_store(&db).await;
    other
        .batch_execute(
            "DELETE FROM outbox;
             ANALYZE outbox;
             INSERT INTO outbox (id, kind, thread_id, time, payload)
             SELECT gen_random_uuid(), 'message.created', gen_random_uuid(), now(), '\\x00'
             FROM generate_series(1, 30000);
             DELETE FROM outbox WHERE seq % 100 <> 0;",
        )
        .await
        .expect("a queue of delivered rows");
    for plan in messages_core::testing::postgres::outbox_plans(&other).await {
        assert!(
            !plan.contains("Seq Scan"),
            "a relay statement reads the whole queue:\n{plan}"
        );
    }
}

/// A relay's claim rewrites each event on the page it was written to (a heap-only update: no
/// new index entry, only the changed bytes logged), because the creates leave room on every
/// page of the outbox for their rows' claims (V8). Without V8, every claimed row but the first
/// moved to another page.
#[tokio::test]
async fn a_claim_rewrites_each_event_on_its_own_page() {
    use messages_core::storage::Outbox;
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let (store, other, _) = one_lane_store(&db).await;
    let threads: Vec<ThreadId> = (0..4)
        .map(|_| ThreadId::from_uuid(Uuid::now_v7()))
        .collect();
    let user = UserId::from_uuid(Uuid::now_v7());
    for i in 0..400 {
        let m = messages_core::testing::text_message(
            threads[i % threads.len()],
            user,
            i as i64 + 1,
            "a chat message of ordinary length, about sixty characters long",
        );
        store
            .create(&m, None, codec::created(&m))
            .await
            .expect("create");
    }
    async fn pages(other: &tokio_postgres::Client) -> Vec<(i64, i64)> {
        other
            .query(
                "SELECT seq, (ctid::text::point)[0]::bigint FROM outbox ORDER BY seq",
                &[],
            )
            .await
            .expect("pages")
            .iter()
            .map(|row| (row.get::<_, i64>(0), row.get::<_, i64>(1)))
            .collect()
    }
    let before = pages(&other).await;
    assert!(before.len() > 400, "every create left its event");
    let claimed = store
        .claim(1_000, std::time::Duration::from_secs(60))
        .await
        .expect("claim");
    assert_eq!(claimed.len(), before.len(), "one claim takes them all");
    let after = pages(&other).await;
    let moved: Vec<_> = before
        .iter()
        .zip(&after)
        .filter(|(b, a)| b != a)
        .map(|(b, _)| b.0)
        .collect();
    assert!(moved.is_empty(), "claimed events moved page: {moved:?}");
}

/// A message that turns popular after the statistics were taken: looking up whether one user
/// holds an emoji still probes the primary key, not every holder of the emoji through the
/// position index (which the statistics, showing the message with no reactions, made look as
/// cheap), while the next holder to list still reads the position index.
#[tokio::test]
async fn a_message_that_turned_popular_since_analyze_is_read_by_its_primary_key() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let (store, other, _) = one_lane_store(&db).await;
    let thread = ThreadId::from_uuid(Uuid::now_v7());
    let m = messages_core::testing::text_message(
        thread,
        UserId::from_uuid(Uuid::now_v7()),
        1,
        "about to be popular",
    );
    store
        .create(&m, None, codec::created(&m))
        .await
        .expect("create");
    // Other messages' reactions, analysed; then 20,000 on this one.
    other
        .batch_execute(&format!(
            "INSERT INTO reactions (thread_id, message_id, emoji, user_id)
             SELECT gen_random_uuid(), gen_random_uuid(), 'x', gen_random_uuid()
             FROM generate_series(1, 2000);
             ANALYZE reactions;
             INSERT INTO reactions (thread_id, message_id, emoji, user_id)
             SELECT '{thread}', '{id}', (ARRAY['a', 'b', 'c', 'd'])[1 + g % 4], gen_random_uuid()
             FROM generate_series(1, 20000) g;",
            id = m.id
        ))
        .await
        .expect("reactions");
    let plan = |sql: String| {
        let other = &other;
        async move {
            other
                .query(&format!("EXPLAIN {sql}"), &[])
                .await
                .expect("explain")
                .iter()
                .map(|row| row.get::<_, String>(0))
                .collect::<Vec<_>>()
                .join("\n")
        }
    };
    let lookup = plan(format!(
        "SELECT 1 FROM reactions WHERE thread_id = '{thread}' AND message_id = '{id}' \
         AND emoji = 'a' AND user_id = '{user}' LIMIT 1",
        id = m.id,
        user = Uuid::now_v7()
    ))
    .await;
    assert!(
        lookup.contains("reactions_pkey") && !lookup.contains("reactions_by_position"),
        "one probe of the primary key:\n{lookup}"
    );
    let next = plan(format!(
        "SELECT user_id FROM reactions WHERE thread_id = '{thread}' AND message_id = '{id}' \
         AND emoji = 'a' AND user_id <> ALL('{{}}') AND position IS NOT NULL \
         ORDER BY position LIMIT 1",
        id = m.id
    ))
    .await;
    assert!(
        next.contains("reactions_by_position"),
        "the next holder reads the position index:\n{next}"
    );
}

/// Reactions to one message that queue while one is in flight are applied by one transaction,
/// each numbered in the order it queued with its own event, the counts exact; one the message's
/// bounds refuse answers its error while the rest are applied; a repeat takes no number.
#[tokio::test]
async fn a_storm_of_reactions_on_one_message_commits_together() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let (store, other, _) = one_lane_store(&db).await;
    note_transactions(&other, "reactions", "user_id").await;
    let thread = ThreadId::from_uuid(Uuid::now_v7());
    let m = messages_core::testing::text_message(
        thread,
        UserId::from_uuid(Uuid::now_v7()),
        1,
        "popular",
    );
    store
        .create(&m, None, codec::created(&m))
        .await
        .expect("create");
    let request = |user: UserId, emoji: &str, max_emoji: usize| ReactionRequest {
        thread,
        id: m.id,
        user,
        emoji: Emoji::parse(emoji).expect("emoji"),
        change: ReactionChange::Add,
        now: Timestamp::from_micros(1_764_000_000_000_100),
        limits: ReactionLimits {
            max_emoji,
            ..ReactionLimits::default()
        },
    };
    // Another session holds the message, so the first reaction waits in flight.
    hold_message(&other, thread, m.id).await;
    let users: Vec<UserId> = (0..24).map(|_| UserId::from_uuid(Uuid::now_v7())).collect();
    let mut tasks = tokio::task::JoinSet::new();
    for (i, user) in users.iter().enumerate() {
        // Two emoji on the message at most: the third emoji is refused.
        let emoji = match i {
            10 => "🎉",
            _ if i % 2 == 0 => "👍",
            _ => "❤️",
        };
        let (store, r) = (store.clone(), request(*user, emoji, 2));
        tasks.spawn(async move { (i, store.react(r, codec::reaction).await) });
        if i == 0 {
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
        tokio::task::yield_now().await;
    }
    // A repeat of the first user's reaction, queued behind it: already made, no number.
    let (repeat_store, repeat) = (store.clone(), request(users[0], "👍", 2));
    tasks.spawn(async move { (24, repeat_store.react(repeat, codec::reaction).await) });
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    other.batch_execute("ROLLBACK").await.expect("let go");
    let mut outcomes = tasks.join_all().await;
    outcomes.sort_by_key(|(i, _)| *i);
    let mut revs = Vec::new();
    for (i, outcome) in outcomes {
        match (i, outcome) {
            (10, Err(messages_core::Error::TooManyReactions { max: 2 })) => {}
            (24, Ok(reacted)) => assert!(!reacted.changed, "a repeat changes nothing"),
            (i, Ok(reacted)) if i != 10 && i != 24 => {
                assert!(reacted.changed);
                revs.push(reacted.message.rev);
            }
            (i, other) => panic!("change {i}: {other:?}"),
        }
    }
    revs.sort_unstable();
    assert_eq!(
        revs,
        (2..=24).collect::<Vec<i64>>(),
        "23 changes, numbered without a gap"
    );
    let stored = store.get(thread, m.id).await.expect("get");
    let counts: Vec<(String, i64)> = stored
        .reactions
        .iter()
        .map(|r| (r.emoji.as_str().to_owned(), r.count))
        .collect();
    assert_eq!(counts, [("👍".to_owned(), 11), ("❤️".to_owned(), 12)]);
    assert_eq!(stored.rev, 24);
    let transactions: i64 = other
        .query_one(
            "SELECT count(DISTINCT tx) FROM writes WHERE id = ANY($1)",
            &[&users[1..].iter().map(|u| *u.as_uuid()).collect::<Vec<_>>()],
        )
        .await
        .expect("writes")
        .get(0);
    assert_eq!(
        transactions, 1,
        "the changes queued behind the first, one transaction"
    );
    let events: Vec<i64> = other
        .query(
            "SELECT rev FROM outbox WHERE thread_id = $1 AND kind <> 'message.created' ORDER BY rev",
            &[thread.as_uuid()],
        )
        .await
        .expect("outbox")
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(
        events,
        (2..=24).collect::<Vec<i64>>(),
        "one event per change"
    );
}

/// Reaction changes applied as one group on PostgreSQL answer exactly what the same changes
/// answer one at a time in memory: each change's summary, number and whether it changed
/// anything, then the message and its holders. The groups take unlisted and listed holders'
/// reactions away (the second is applied a statement per change), take back an add made in
/// the same group, and repeat changes already made.
#[tokio::test]
async fn a_group_of_reaction_changes_answers_what_they_answer_one_at_a_time() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let (store, other, _) = one_lane_store(&db).await;
    let memory = MemoryStore::new();
    let users: Vec<UserId> = (0..8).map(|_| UserId::from_uuid(Uuid::now_v7())).collect();
    let (add, remove) = (ReactionChange::Add, ReactionChange::Remove);
    let groups = [
        vec![
            (remove, 3, "👍"),
            (add, 5, "👍"),
            (remove, 5, "👍"),
            (add, 6, "👍"),
            (add, 6, "👍"),
            (remove, 7, "👍"),
            (add, 7, "🎉"),
            (add, 2, "🎉"),
        ],
        vec![
            (remove, 0, "👍"),
            (add, 0, "👍"),
            (remove, 1, "👍"),
            (add, 3, "👍"),
        ],
    ];
    for changes in groups {
        let thread = ThreadId::from_uuid(Uuid::now_v7());
        let m = messages_core::testing::text_message(thread, users[0], 1, "popular");
        let request = |(change, user, emoji): (ReactionChange, usize, &str)| ReactionRequest {
            thread,
            id: m.id,
            user: users[user],
            emoji: Emoji::parse(emoji).expect("emoji"),
            change,
            now: Timestamp::from_micros(1_764_000_000_000_100),
            limits: ReactionLimits {
                users_shown: 2,
                ..ReactionLimits::default()
            },
        };
        // Both stores: the message, five holders of 👍 (two listed), one ❤️.
        let setup: Vec<_> = (0..5)
            .map(|u| (add, u, "👍"))
            .chain([(add, 7, "❤️")])
            .collect();
        for s in [&store as &dyn MessageStore, &memory] {
            s.create(&m, None, codec::created(&m))
                .await
                .expect("create");
            for &change in &setup[..5] {
                s.react(request(change), codec::reaction)
                    .await
                    .expect("react");
            }
        }
        // PostgreSQL: the ❤️ waits in flight on the held message, the group queues behind it.
        hold_message(&other, thread, m.id).await;
        let mut tasks = tokio::task::JoinSet::new();
        for (i, &change) in setup[5..].iter().chain(&changes).enumerate() {
            let (store, r) = (store.clone(), request(change));
            tasks.spawn(async move { (i, store.react(r, codec::reaction).await) });
            if i == 0 {
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
            tokio::task::yield_now().await;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        other.batch_execute("ROLLBACK").await.expect("let go");
        let mut grouped = tasks.join_all().await;
        grouped.sort_by_key(|(i, _)| *i);
        for ((i, on_postgres), &change) in
            grouped.into_iter().zip(setup[5..].iter().chain(&changes))
        {
            let in_memory = memory.react(request(change), codec::reaction).await;
            let seen = |r: messages_core::Result<messages_core::Reacted>| {
                r.map(|r| (r.changed, r.message.rev, r.message.reactions))
                    .map_err(|e| e.to_string())
            };
            assert_eq!(seen(on_postgres), seen(in_memory), "change {i}: {change:?}");
        }
        let thumbs = Emoji::parse("👍").expect("emoji");
        assert_eq!(
            store.get(thread, m.id).await.expect("get"),
            memory.get(thread, m.id).await.expect("get")
        );
        let holders = |r: Reactors| (r.count, r.users);
        assert_eq!(
            holders(
                store
                    .reactors(thread, m.id, &thumbs, None, 100)
                    .await
                    .expect("reactors")
            ),
            holders(
                memory
                    .reactors(thread, m.id, &thumbs, None, 100)
                    .await
                    .expect("reactors")
            )
        );
    }
}
