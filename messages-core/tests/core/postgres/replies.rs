//! PostgreSQL's replies: a reply is tried in one statement on the root as this process last
//! wrote it, and written only if no one moved the root since.

use messages_core::storage::postgres::{PostgresConfig, PostgresStore};
use messages_core::testing::postgres::TestDatabase;
use messages_core::testing::storage::Calls;
use messages_core::{Created, UserId};
use uuid::Uuid;

use super::one_lane_store;

/// Two replicas reply to one root in turn: each keeps the root as it last wrote it, which
/// the other's reply made stale, and each count is still the replies there are.
#[tokio::test]
async fn a_root_another_replica_moved_is_read_again() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let (a, _, thread) = one_lane_store(&db).await;
    let b = PostgresStore::open(&PostgresConfig::new(db.url()))
        .await
        .expect("open");
    let author = UserId::from_uuid(Uuid::now_v7());
    let root = messages_core::testing::text_message(thread, author, 2, "root");
    a.create_with(&root, None).await.expect("root");
    let mut counts = Vec::new();
    let mut last_rev = 0;
    for (i, store) in [&a, &b, &a, &b, &a].into_iter().enumerate() {
        let user = UserId::from_uuid(Uuid::now_v7());
        let mut reply = messages_core::testing::text_message(thread, user, 3 + i as i64, "re");
        reply.reply_to = Some(root.id);
        let created = store.create_with(&reply, None).await.expect("reply");
        let Created::Reply {
            root: summarised,
            reply: written,
        } = created
        else {
            panic!("a reply to a live root answers the root: {created:?}");
        };
        let summary = summarised.replies.as_deref().expect("a summary");
        assert_eq!(summary.last_reply_id, reply.id);
        assert_eq!(
            summarised.rev,
            written.seq + 1,
            "the root takes the number after"
        );
        assert!(
            written.seq > last_rev,
            "numbered after the last reply's root"
        );
        last_rev = summarised.rev;
        counts.push(summary.count);
    }
    assert_eq!(counts, vec![1, 2, 3, 4, 5]);
}
