//! PostgreSQL's replies: a reply is tried in one statement on the root as this process last
//! wrote it, and written only if no one moved the root since.

use messages_core::storage::ConversationStore;
use messages_core::storage::postgres::{PostgresConfig, PostgresStore};
use messages_core::testing::postgres::TestDatabase;
use messages_core::testing::storage::Calls;
use messages_core::{
    Created, FollowRequest, MessageId, PageSize, RepliesReadRequest, ThreadList, UnreadMax, UserId,
};
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

/// An inbox asked again is the page made before only while nothing it shows moved: a read, an
/// unfollow and a reply made through another replica each show at the next ask.
#[tokio::test]
async fn an_inbox_asked_again_shows_what_another_replica_changed() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let (a, _, thread) = one_lane_store(&db).await;
    let b = PostgresStore::open(&PostgresConfig::new(db.url()))
        .await
        .expect("open");
    let (me, other) = (
        UserId::from_uuid(Uuid::now_v7()),
        UserId::from_uuid(Uuid::now_v7()),
    );
    let mut roots = Vec::new();
    for (i, text) in ["first root", "second root"].into_iter().enumerate() {
        let root = messages_core::testing::text_message(thread, me, 2 + i as i64, text);
        a.create_with(&root, None).await.expect("root");
        let mut reply = messages_core::testing::text_message(thread, other, 4 + i as i64, "re");
        reply.reply_to = Some(root.id);
        a.create_with(&reply, None).await.expect("reply");
        roots.push(root.id);
    }
    let threads = ThreadList::new(vec![thread]).expect("threads");
    let size = PageSize::new(10).expect("size");
    let max = UnreadMax::default();
    let unread = |inbox: &messages_core::Inbox| -> Vec<(MessageId, u64)> {
        inbox
            .items
            .iter()
            .map(|e| (e.root.id, e.conversation.unread))
            .collect()
    };
    let asked = a.inbox(me, &threads, None, size, max).await.expect("inbox");
    assert_eq!(unread(&asked), vec![(roots[1], 1), (roots[0], 1)]);
    let again = a.inbox(me, &threads, None, size, max).await.expect("inbox");
    assert_eq!(again, asked, "asked again while quiet");
    // Read through the other replica: no number of the thread moves, the follow row does.
    let read = RepliesReadRequest {
        thread,
        root: roots[0],
        user: me,
        seq: i64::MAX,
        max,
    };
    b.mark_replies_read(read).await.expect("read");
    let after_read = a.inbox(me, &threads, None, size, max).await.expect("inbox");
    assert_eq!(unread(&after_read), vec![(roots[1], 1), (roots[0], 0)]);
    let unfollow = FollowRequest {
        thread,
        root: roots[1],
        user: me,
        follow: false,
        max,
    };
    b.follow(unfollow).await.expect("unfollow");
    let after_unfollow = a.inbox(me, &threads, None, size, max).await.expect("inbox");
    assert_eq!(unread(&after_unfollow), vec![(roots[0], 0)]);
    let mut reply = messages_core::testing::text_message(thread, other, 9, "another");
    reply.reply_to = Some(roots[0]);
    b.create_with(&reply, None).await.expect("reply");
    let after_reply = a.inbox(me, &threads, None, size, max).await.expect("inbox");
    assert_eq!(unread(&after_reply), vec![(roots[0], 1)]);
    let summary = after_reply.items[0]
        .root
        .replies
        .as_deref()
        .expect("summary");
    assert_eq!((summary.count, summary.last_reply_id), (2, reply.id));
}
