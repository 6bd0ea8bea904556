//! Reply conversations: who follows them, their positions and unread replies, and the inbox.

use std::collections::HashSet;

use super::*;
use crate::conversation::{Conversation, FollowRequest, InboxCursor, RepliesReadRequest};
use crate::error::Error;
use crate::message::{Limits, MessageKind, NewMessage};
use crate::read::{ThreadList, UnreadMax};
use crate::write::Created;

/// A reply to `target` by `author` at `micros`, stored; the reply as numbered.
async fn reply_at(
    store: &dyn MessageStore,
    thread: ThreadId,
    author: UserId,
    target: MessageId,
    micros: i64,
) -> Message {
    let new = NewMessage::new(MessageKind::Text, "re".into(), vec![], &Limits::default())
        .unwrap()
        .replying_to(Some(target));
    let m = Message::from_new(
        MessageId::new_v7(),
        thread,
        author,
        new,
        Timestamp::from_micros(micros),
    );
    match store.create_with(&m, None).await.expect("reply") {
        Created::Reply { reply, .. } | Created::New(reply) => reply,
        other => panic!("a new reply: {other:?}"),
    }
}

async fn follow(
    store: &dyn MessageStore,
    thread: ThreadId,
    root: MessageId,
    user: UserId,
    on: bool,
) -> Result<Conversation, Error> {
    store
        .follow(FollowRequest {
            thread,
            root,
            user,
            follow: on,
            max: UnreadMax::DEFAULT,
        })
        .await
}

async fn read_to(
    store: &dyn MessageStore,
    thread: ThreadId,
    root: MessageId,
    user: UserId,
    seq: i64,
) -> Result<Conversation, Error> {
    store
        .mark_replies_read(RepliesReadRequest {
            thread,
            root,
            user,
            seq,
            max: UnreadMax::DEFAULT,
        })
        .await
}

/// The whole inbox of `user` in `threads`, walked `size` at a time: the roots in order.
async fn walk_inbox(
    store: &dyn MessageStore,
    user: UserId,
    threads: &[ThreadId],
    size: u32,
) -> Vec<(MessageId, Conversation)> {
    let list = ThreadList::new(threads.to_vec()).unwrap();
    let (mut after, mut seen) = (None::<InboxCursor>, Vec::new());
    loop {
        let page = store
            .inbox(user, &list, after, super::size(size), UnreadMax::DEFAULT)
            .await
            .expect("inbox");
        assert!(page.items.len() <= size as usize);
        assert_eq!(page.has_more, page.next_cursor.is_some());
        seen.extend(
            page.items
                .iter()
                .map(|e| (e.root.id, e.conversation.clone())),
        );
        match page.next_cursor {
            Some(c) => after = Some(c),
            None => return seen,
        }
    }
}

/// A reply follows its writer, with the reply read, and the root's author; unread replies are
/// the live ones after a position that others wrote; a position moves forward only, up to the
/// head; a deleted reply leaves the count at once.
pub async fn a_reply_follows_its_writer_and_its_roots_author(subject: &Subject) {
    let store = subject.store.as_ref();
    let t = thread();
    let (a, b, c) = (user(), user(), user());
    let root = insert(store, &message(t, a, T0, "root")).await;
    let rb = reply_at(store, t, b, root.id, T0 + 1).await;
    let state = follow_state(store, t, root.id, b).await;
    assert_eq!(
        (state.following, state.seq, state.unread),
        (true, rb.seq, 0)
    );
    let state = follow_state(store, t, root.id, a).await;
    assert_eq!((state.following, state.unread), (true, 1));
    assert_eq!(state.first_unread_seq, Some(rb.seq));
    let rc = reply_at(store, t, c, rb.id, T0 + 2).await;
    assert_eq!(follow_state(store, t, root.id, a).await.unread, 2);
    assert_eq!(follow_state(store, t, root.id, b).await.unread, 1);
    let state = read_to(store, t, root.id, b, rc.seq).await.unwrap();
    assert_eq!(
        (state.seq, state.unread, state.first_unread_seq),
        (rc.seq, 0, None)
    );
    let back = read_to(store, t, root.id, b, 1).await.unwrap();
    assert_eq!(back.seq, rc.seq, "a position never moves back");
    let head = store.head(t).await.unwrap();
    let far = read_to(store, t, root.id, b, head + 100).await.unwrap();
    assert_eq!(far.seq, head, "a position stops at the head");
    delete(store, &rc).await;
    let state = follow_state(store, t, root.id, a).await;
    assert_eq!(state.unread, 1, "a deleted reply leaves the count at once");
    // A stranger's position alone does not follow them.
    let stranger = read_to(store, t, root.id, user(), 1).await.unwrap();
    assert!(!stranger.following);
}

/// The state `user` has in the conversation of `root` (following left as it is).
async fn follow_state(
    store: &dyn MessageStore,
    thread: ThreadId,
    root: MessageId,
    user: UserId,
) -> Conversation {
    read_to(store, thread, root, user, 0).await.expect("state")
}

/// Following is asked for or stopped, and a stop is kept through later replies; only live
/// roots are followed.
pub async fn an_unfollow_is_kept_and_a_follow_is_asked(subject: &Subject) {
    let store = subject.store.as_ref();
    let t = thread();
    let (a, b, d) = (user(), user(), user());
    let root = insert(store, &message(t, a, T0, "root")).await;
    let rb = reply_at(store, t, b, root.id, T0 + 1).await;
    let off = follow(store, t, root.id, a, false).await.unwrap();
    assert!(!off.following);
    reply_at(store, t, b, root.id, T0 + 2).await;
    assert!(
        !follow_state(store, t, root.id, a).await.following,
        "a stop is kept"
    );
    let inbox = walk_inbox(store, a, &[t], 10).await;
    assert!(
        inbox.is_empty(),
        "an unfollowed conversation leaves the inbox"
    );
    let on = follow(store, t, root.id, d, true).await.unwrap();
    assert_eq!((on.following, on.unread), (true, 2));
    assert_eq!(walk_inbox(store, d, &[t], 10).await.len(), 1);
    for missing in [MessageId::new_v7(), rb.id] {
        assert!(matches!(
            follow(store, t, missing, d, true).await,
            Err(Error::NotFound)
        ));
        assert!(matches!(
            read_to(store, t, missing, d, 1).await,
            Err(Error::NotFound)
        ));
    }
    delete(store, &root).await;
    assert!(matches!(
        follow(store, t, root.id, d, true).await,
        Err(Error::NotFound)
    ));
    assert!(
        walk_inbox(store, d, &[t], 10).await.is_empty(),
        "a deleted root leaves the inbox"
    );
}

/// The inbox lists the followed conversations of the threads named, the most recent reply
/// first, in pages without gaps or repeats, also while replies arrive; a conversation whose
/// last reply went leaves it.
pub async fn the_inbox_orders_by_latest_reply_and_pages_exactly(subject: &Subject) {
    let store = subject.store.as_ref();
    let (t1, t2, elsewhere) = (thread(), thread(), thread());
    let (me, other) = (user(), user());
    let mut roots = Vec::new();
    for (i, t) in [t1, t2, t1, t2, t1, elsewhere].into_iter().enumerate() {
        let root = insert(store, &message(t, me, T0 + i as i64, "mine")).await;
        reply_at(store, t, other, root.id, T0 + 100 + 10 * i as i64).await;
        roots.push(root);
    }
    let listed: Vec<MessageId> = walk_inbox(store, me, &[t1, t2], 2)
        .await
        .into_iter()
        .map(|(id, c)| {
            assert_eq!(c.unread, 1);
            id
        })
        .collect();
    let newest_first: Vec<MessageId> = roots[..5].iter().rev().map(|r| r.id).collect();
    assert_eq!(
        listed, newest_first,
        "the most recent reply first, every one once"
    );
    // A reply arrives during a walk: the conversations not moved are each listed once.
    let list = ThreadList::new(vec![t1, t2]).unwrap();
    let first = store
        .inbox(me, &list, None, size(2), UnreadMax::DEFAULT)
        .await
        .unwrap();
    reply_at(store, t1, other, roots[4].id, T0 + 1_000).await;
    let mut rest = Vec::new();
    let mut after = first.next_cursor;
    while let Some(cursor) = after {
        let page = store
            .inbox(me, &list, Some(cursor), size(2), UnreadMax::DEFAULT)
            .await
            .unwrap();
        rest.extend(page.items.iter().map(|e| e.root.id));
        after = page.next_cursor;
    }
    let mut walked: Vec<MessageId> = first.items.iter().map(|e| e.root.id).collect();
    walked.extend(rest);
    assert_eq!(
        walked, newest_first,
        "no gap and no repeat while a reply arrives"
    );
    let now = walk_inbox(store, me, &[t1, t2], 10).await;
    assert_eq!(
        now[0].0, roots[4].id,
        "the conversation replied to moves first"
    );
    assert_eq!(now[0].1.unread, 2);
    // Every reply of a conversation gone: it leaves the inbox.
    let only = walk_inbox(store, other, &[t2], 10).await;
    assert_eq!(only.len(), 2);
    for r in store
        .replies(t2, roots[3].id, 0, size(10))
        .await
        .unwrap()
        .items
    {
        delete(store, &r).await;
    }
    let left: HashSet<MessageId> = walk_inbox(store, me, &[t2], 10)
        .await
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(left, HashSet::from([roots[1].id]));
}

/// Unread replies are exact for a thousand followers: each replied once, and each has the
/// later replies of the others unread.
pub async fn unread_replies_are_exact_for_a_thousand_followers(subject: &Subject) {
    let store = subject.store.as_ref();
    let t = thread();
    let root = insert(store, &message(t, user(), T0, "town hall")).await;
    let followers: Vec<UserId> = (0..1_000).map(|_| user()).collect();
    for (i, &u) in followers.iter().enumerate() {
        reply_at(store, t, u, root.id, T0 + 1 + i as i64).await;
    }
    let list = ThreadList::new(vec![t]).unwrap();
    for (i, &u) in followers.iter().enumerate() {
        let page = store
            .inbox(u, &list, None, size(5), UnreadMax::DEFAULT)
            .await
            .unwrap();
        assert_eq!(page.items.len(), 1);
        let c = &page.items[0].conversation;
        assert_eq!(
            c.unread,
            (followers.len() - 1 - i) as u64,
            "follower {i}: the replies after their own"
        );
        assert_eq!(
            page.items[0].root.replies.as_ref().map(|s| s.count),
            Some(1_000)
        );
    }
}
