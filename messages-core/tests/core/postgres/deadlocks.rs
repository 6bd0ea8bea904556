//! PostgreSQL ends one of two transactions that wait for each other; a write of this store it
//! ends runs again, so the caller sees it written once, never a 503. A group of changes takes
//! its locks in the order the other writes do, so it makes no such circle.

use messages_core::storage::PageStore;
use messages_core::testing::postgres::TestDatabase;
use messages_core::testing::storage::Calls;
use messages_core::{Created, Limits, MessageId, MessagePatch, Timestamp, UserId};
use uuid::Uuid;

use super::one_lane_store;

/// A reply holds its root and waits for the thread's counter, which another session holds
/// and which then asks for the root: a circle. The other session waits 20 s before it looks
/// for one, the store's the server's second, so PostgreSQL ends the reply's transaction; the
/// reply runs again once the other commits, and is written once with its root's summary.
#[tokio::test]
async fn a_reply_ended_to_break_a_deadlock_runs_again() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let (store, other, thread) = one_lane_store(&db).await;
    let (alice, bob) = (
        UserId::from_uuid(Uuid::now_v7()),
        UserId::from_uuid(Uuid::now_v7()),
    );
    let root = messages_core::testing::text_message(thread, alice, 2, "root");
    store.create_with(&root, None).await.expect("root");
    let mut reply = messages_core::testing::text_message(thread, bob, 3, "an answer");
    reply.reply_to = Some(root.id);
    other
        .batch_execute(&format!(
            "BEGIN; SET LOCAL deadlock_timeout = '20s';
             SELECT head FROM threads WHERE thread_id = '{thread}' FOR UPDATE"
        ))
        .await
        .expect("hold the counter");
    let replying = {
        let (store, reply) = (store.clone(), reply.clone());
        tokio::spawn(async move { store.create_with(&reply, None).await })
    };
    // The reply has its root and waits for the counter; now the other asks for the root.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    other
        .batch_execute(&format!(
            "SELECT 1 FROM messages WHERE thread_id = '{thread}' AND id = '{}' FOR UPDATE",
            root.id
        ))
        .await
        .expect("the other session is not the one ended");
    other.batch_execute("COMMIT").await.expect("commit");
    let created = replying.await.expect("join").expect("the reply, run again");
    let Created::Reply {
        reply: written,
        root: summarised,
    } = created
    else {
        panic!("a reply to a live root answers the root too: {created:?}");
    };
    assert_eq!(written.id, reply.id);
    let summary = summarised.replies.as_deref().expect("a summary");
    assert_eq!((summary.count, summary.last_reply_id), (1, reply.id));
    // Written once: the root's replies hold it, and the sequence has no hole.
    let page = store
        .replies(
            thread,
            root.id,
            0,
            messages_core::PageSize::new(10).expect("size"),
        )
        .await
        .expect("replies");
    let ids: Vec<MessageId> = page.items.iter().map(|m| m.id).collect();
    assert_eq!(ids, vec![reply.id]);
    assert_eq!(
        (written.seq, summarised.rev),
        (3, 4),
        "first, root, reply, summary"
    );
}

/// A group of a thread's edits locks its messages before it takes the counter: while its
/// second message is held by another session, the group holds nothing that session waits for,
/// so the other takes the counter at once (within a 300 ms lock timeout, long before
/// PostgreSQL would look for a circle), commits, and both edits of the group are written.
#[tokio::test]
async fn a_group_takes_its_messages_before_the_counter() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let (store, holder, thread) = one_lane_store(&db).await;
    let (circle, connection) = tokio_postgres::connect(db.url(), tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    let alice = UserId::from_uuid(Uuid::now_v7());
    let mut written = Vec::new();
    for (i, text) in ["held first", "edited in the group", "held by the circle"]
        .into_iter()
        .enumerate()
    {
        let m = messages_core::testing::text_message(thread, alice, 2 + i as i64, text);
        store.create_with(&m, None).await.expect("create");
        written.push(m.id);
    }
    let edit = |id: MessageId, text: &'static str| {
        let store = store.clone();
        async move {
            let patch = MessagePatch::new(Some(text.into()), None, &Limits::default())
                .expect("a valid patch");
            let at = Timestamp::from_micros(1_764_000_000_000_900);
            store.update_as(thread, id, alice, &patch, at).await
        }
    };
    // The first edit waits in flight for a held row; the next two queue and go as one group.
    super::hold_message(&holder, thread, written[0]).await;
    circle
        .batch_execute(&format!(
            "BEGIN; SET LOCAL deadlock_timeout = '20s';
             SELECT 1 FROM messages WHERE thread_id = '{thread}' AND id = '{}' FOR UPDATE",
            written[2]
        ))
        .await
        .expect("hold the group's second message");
    let first = tokio::spawn(edit(written[0], "first, edited"));
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let group = [
        tokio::spawn(edit(written[1], "second, edited")),
        tokio::spawn(edit(written[2], "third, edited")),
    ];
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    holder.batch_execute("ROLLBACK").await.expect("let go");
    // The group waits for the third message, holding no counter: the other takes it at once.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let took = circle
        .batch_execute(&format!(
            "SET LOCAL lock_timeout = '300ms';
             SELECT head FROM threads WHERE thread_id = '{thread}' FOR UPDATE"
        ))
        .await;
    // Let go either way, so the group goes on and the test ends whatever it found.
    circle.batch_execute("ROLLBACK").await.expect("let go");
    first.await.expect("join").expect("the first edit");
    let mut revs = Vec::new();
    for (edit, text) in group.into_iter().zip(["second, edited", "third, edited"]) {
        let edited = edit.await.expect("join").expect("an edit of the group");
        assert_eq!(edited.content, text);
        revs.push(edited.rev);
    }
    took.expect("the counter is free while the group waits for a message");
    assert_eq!(
        revs,
        vec![6, 7],
        "numbered after the first edit (5), in the order they queued"
    );
}
