//! PostgreSQL's plans: the relay's statements never scan the outbox, a claim rewrites each
//! event on its own page, a popular message is read by its key.

use messages_core::testing::postgres::TestDatabase;
use messages_core::testing::storage::Calls;
use messages_core::{ThreadId, UserId};
use uuid::Uuid;

use super::one_lane_store;

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
        store.create_with(&m, None).await.expect("create");
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
    store.create_with(&m, None).await.expect("create");
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
