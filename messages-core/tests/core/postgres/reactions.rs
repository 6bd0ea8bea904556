//! PostgreSQL's reactions: a storm on one popular message commits a group at a time, a group
//! answers what its changes answer one at a time, and a moderator's clear answers what it
//! cleared.

use messages_core::storage::memory::MemoryStore;
use messages_core::storage::{MessageStore, PageStore, ReactionStore};
use messages_core::testing::postgres::TestDatabase;
use messages_core::testing::storage::Calls;
use messages_core::{
    Emoji, ReactionChange, ReactionLimits, ReactionRequest, Reactors, ThreadId, Timestamp, UserId,
};
use uuid::Uuid;

use super::{hold_message, note_transactions, one_lane_store};

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
    store.create_with(&m, None).await.expect("create");
    let request = |user: UserId, emoji: &str, max_emoji: usize| ReactionRequest {
        thread,
        id: m.id,
        user,
        emoji: Emoji::parse(emoji).expect("emoji"),
        change: ReactionChange::Add,
        at: Timestamp::from_micros(1_764_000_000_000_100),
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
        tasks.spawn(async move { (i, store.react(r).await) });
        if i == 0 {
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
        tokio::task::yield_now().await;
    }
    // A repeat of the first user's reaction, queued behind it: already made, no number.
    let (repeat_store, repeat) = (store.clone(), request(users[0], "👍", 2));
    tasks.spawn(async move { (24, repeat_store.react(repeat).await) });
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
            at: Timestamp::from_micros(1_764_000_000_000_100),
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
            s.create_with(&m, None).await.expect("create");
            for &change in &setup[..5] {
                s.react(request(change)).await.expect("react");
            }
        }
        // PostgreSQL: the ❤️ waits in flight on the held message, the group queues behind it.
        hold_message(&other, thread, m.id).await;
        let mut tasks = tokio::task::JoinSet::new();
        for (i, &change) in setup[5..].iter().chain(&changes).enumerate() {
            let (store, r) = (store.clone(), request(change));
            tasks.spawn(async move { (i, store.react(r).await) });
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
            let in_memory = memory.react(request(change)).await;
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
                    .reactors_of(thread, m.id, &thumbs, None, 100)
                    .await
                    .expect("reactors")
            ),
            holders(
                memory
                    .reactors_of(thread, m.id, &thumbs, None, 100)
                    .await
                    .expect("reactors")
            )
        );
    }
}

/// A moderator's clear answers the message as the clear left it, even when a delete of the
/// message commits the moment after: the message is read, the rule asked and the clear written
/// in one transaction, never read again after the commit.
///
/// To land the delete in that moment every time, a trigger on the clear's event asks another
/// session (through `dblink`) to take the messages table exclusively and delete the message,
/// and waits until that session's lock request queues behind the clear. Once the clear
/// commits, the other session runs first, and a read the store would send after the commit
/// waits for its delete.
#[tokio::test]
async fn a_clear_answers_what_it_cleared_whatever_commits_after_it() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let store = db.store().await;
    let (other, connection) = tokio_postgres::connect(db.url(), tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    let thread = ThreadId::from_uuid(Uuid::now_v7());
    let m =
        messages_core::testing::text_message(thread, UserId::from_uuid(Uuid::now_v7()), 1, "hi");
    store.create_with(&m, None).await.expect("create");
    let reaction = ReactionRequest {
        thread,
        id: m.id,
        user: UserId::from_uuid(Uuid::now_v7()),
        emoji: Emoji::parse("👍").expect("emoji"),
        change: ReactionChange::Add,
        at: Timestamp::from_micros(2),
        limits: ReactionLimits::default(),
    };
    store.react(reaction).await.expect("react");
    let delete = format!(
        "BEGIN; LOCK TABLE messages IN ACCESS EXCLUSIVE MODE; \
         UPDATE messages SET deleted_at = now() WHERE thread_id = '{thread}' AND id = '{id}'; \
         COMMIT;",
        id = m.id
    );
    other
        .batch_execute(&format!(
            "CREATE EXTENSION IF NOT EXISTS dblink WITH SCHEMA public;
             CREATE FUNCTION delete_after_clear() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN
                 PERFORM public.dblink_connect('deleter', {url});
                 PERFORM public.dblink_send_query('deleter', {delete});
                 FOR i IN 1..500 LOOP
                     EXIT WHEN EXISTS (
                         SELECT 1 FROM pg_locks
                         WHERE NOT granted AND mode = 'AccessExclusiveLock'
                           AND relation = 'messages'::regclass);
                     PERFORM pg_sleep(0.01);
                 END LOOP;
                 RETURN NEW;
             END $$;
             CREATE TRIGGER delete_after_clear AFTER INSERT ON outbox
             FOR EACH ROW WHEN (NEW.kind = 'reaction.cleared')
             EXECUTE FUNCTION delete_after_clear();",
            url = quote(db.url()),
            delete = quote(&delete),
        ))
        .await
        .expect("trigger");
    let moderator = UserId::from_uuid(Uuid::now_v7());
    let cleared = store
        .clear_as(thread, m.id, moderator, Timestamp::from_micros(3))
        .await
        .expect("a clear that committed answers its message");
    assert!(cleared.changed);
    assert!(cleared.message.reactions.is_empty());
    assert_eq!(cleared.message.rev, 3, "the clear's number");
    assert!(
        matches!(
            store.get(thread, m.id).await,
            Err(messages_core::Error::NotFound)
        ),
        "the delete landed right after the clear"
    );
}

/// `text` as an SQL string literal.
fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}
