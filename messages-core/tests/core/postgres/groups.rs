//! PostgreSQL's group commit: creates of many threads, and the edits and deletes of one
//! thread, that queue together commit together, and a refusal in a group fails only its own.

use messages_core::storage::PageStore;
use messages_core::storage::postgres::PostgresStore;
use messages_core::testing::postgres::TestDatabase;
use messages_core::testing::storage::Calls;
use messages_core::{
    Limits, Message, MessageId, MessagePatch, Removal, ThreadId, Timestamp, UserId,
};
use uuid::Uuid;

use super::{hold_message, note_transactions, one_lane_store};

/// Holds `held`'s counter row from `other`, starts a create on it (which then waits, in flight,
/// holding its lane), queues `messages` behind it, lets go, and answers every outcome, the
/// held thread's first.
async fn queue_behind_a_held_create(
    store: &PostgresStore,
    other: &tokio_postgres::Client,
    held: ThreadId,
    messages: Vec<Message>,
) -> Vec<messages_core::Result<messages_core::Created>> {
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
        async move { (0, store.create_with(&blocked, None).await) }
    });
    // The held create reaches the database before the others queue.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    for (i, m) in messages.into_iter().enumerate() {
        let store = store.clone();
        tasks.spawn(async move { (i + 1, store.create_with(&m, None).await) });
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
            messages_core::Created::New(m) => written.push(m),
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
            (_, Ok(messages_core::Created::New(m))) => assert_eq!(m.id, queued[i].id),
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
        store.create_with(&m, None).await.expect("create");
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
            let edited = store.update_as(thread, id, user, &patch, now).await;
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
                .delete_as(thread, id, &Removal::by_author(author), now)
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
