//! PostgreSQL's replies: a reply is tried in one statement on the root as this process last
//! wrote it, and written only if no one moved the root since; replies that queue together are
//! written by one statement on the same condition.

use std::collections::BTreeSet;

use messages_core::storage::postgres::{PostgresConfig, PostgresStore};
use messages_core::storage::{ConversationStore, PageStore};
use messages_core::testing::postgres::TestDatabase;
use messages_core::testing::storage::Calls;
use messages_core::{
    Created, FollowRequest, Message, MessageId, PageSize, RepliesReadRequest, ThreadId, ThreadList,
    UnreadMax, UserId,
};
use uuid::Uuid;

use super::one_lane_store;

/// Another replica on the same database.
async fn another_replica(db: &TestDatabase) -> PostgresStore {
    PostgresStore::open(&PostgresConfig::new(db.url()))
        .await
        .expect("open")
}

/// Two replicas reply to one root in turn: each keeps the root as it last wrote it, which
/// the other's reply made stale, and each count is still the replies there are.
#[tokio::test]
async fn a_root_another_replica_moved_is_read_again() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let (a, _, thread) = one_lane_store(&db).await;
    let b = another_replica(&db).await;
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
    let b = another_replica(&db).await;
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

/// `n` replies at once through `store`, to `roots` in turn: each reply and its root as answered.
async fn replies_at_once(
    store: &PostgresStore,
    thread: ThreadId,
    roots: &[MessageId],
    n: usize,
) -> Vec<(Message, Message)> {
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let store = store.clone();
            let root = roots[i % roots.len()];
            tokio::spawn(async move {
                let user = UserId::from_uuid(Uuid::now_v7());
                let mut reply = messages_core::testing::text_message(thread, user, 10, "re");
                reply.reply_to = Some(root);
                match store.create_with(&reply, None).await.expect("reply") {
                    Created::Reply { reply, root } => (reply, *root),
                    other => panic!("a reply to a live root answers the root: {other:?}"),
                }
            })
        })
        .collect();
    let mut answered = Vec::with_capacity(n);
    for task in tasks {
        answered.push(task.await.expect("reply task"));
    }
    answered
}

/// The numbers `answered` took after `before`: each reply's and each root change's, once.
fn numbers_taken(answered: &[(Message, Message)]) -> (Vec<i64>, BTreeSet<i64>) {
    let mut replies: Vec<i64> = answered.iter().map(|(reply, _)| reply.seq).collect();
    replies.sort_unstable();
    let roots = answered.iter().map(|(_, root)| root.rev).collect();
    (replies, roots)
}

/// Replies that queue together are written by one statement that changes each root once,
/// after all of its replies; a group on a root another replica moved writes nothing and each
/// reply goes alone. Either way every number is taken once and the counts are exact.
#[tokio::test]
async fn replies_that_queue_together_change_their_root_once() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let (a, _, thread) = one_lane_store(&db).await;
    let b = another_replica(&db).await;
    let author = UserId::from_uuid(Uuid::now_v7());
    let mut roots = Vec::new();
    for i in 0..2 {
        let root = messages_core::testing::text_message(thread, author, 2 + i, "root");
        a.create_with(&root, None).await.expect("root");
        roots.push(root.id);
    }
    // `a` knows both roots as it wrote them; a reply through `b` moves the first.
    let mut moved = messages_core::testing::text_message(thread, author, 5, "elsewhere");
    moved.reply_to = Some(roots[0]);
    b.create_with(&moved, None).await.expect("reply through b");

    for (round, replies) in [(1, 20usize), (2, 20)] {
        let before = a.head(thread).await.expect("head");
        let answered = replies_at_once(&a, thread, &roots, replies).await;
        let (mut taken, root_changes) = numbers_taken(&answered);
        taken.extend(&root_changes);
        taken.sort_unstable();
        let head = a.head(thread).await.expect("head");
        assert_eq!(
            taken,
            (before + 1..=head).collect::<Vec<i64>>(),
            "round {round}: every number after {before} taken once"
        );
        for (reply, root) in &answered {
            assert!(root.rev > reply.seq, "a root's change follows its reply");
        }
        if round == 2 {
            assert!(
                root_changes.len() < replies,
                "replies that queued together changed their root once: {} changes for {replies}",
                root_changes.len()
            );
        }
    }
    let counts: Vec<i64> = {
        let mut counts = Vec::new();
        for root in &roots {
            let now = a.get(thread, *root).await.expect("root");
            counts.push(now.replies.as_deref().expect("summary").count);
        }
        counts
    };
    assert_eq!(counts, vec![21, 20], "each count is the replies there are");
}
