//! Replies: a reply names a live message of its thread, a retried reply answers the same
//! message; a reply joins its root's conversation and moves the root's summary with the
//! number after its own; a root's replies read as pages; removed replies leave the count.

use std::collections::{HashMap, HashSet};

use super::outbox::drain;
use super::*;
use crate::changes::Change;
use crate::error::Error;
use crate::events::codec;
use crate::message::{Limits, MessageKind, NewMessage, RequestFingerprint, Timestamp};
use crate::removal::Removal;
use crate::replies::{REPLIES_UPDATED, RepliesBody};

/// A reply to `target` by `author`, not yet stored.
fn reply(thread: ThreadId, author: UserId, target: MessageId, text: &str) -> Message {
    let new = NewMessage::new(MessageKind::Text, text.into(), vec![], &Limits::default())
        .unwrap()
        .replying_to(Some(target));
    Message::from_new(
        MessageId::new_v7(),
        thread,
        author,
        new,
        Timestamp::from_micros(T0 + 10),
    )
}

/// A reply names a live message of its thread; anything else is refused and takes no
/// number, and a reply keeps its target when the target is deleted later.
pub async fn a_reply_names_a_live_message_of_its_thread(subject: &Subject) {
    let store = subject.store.as_ref();
    let t = thread();
    let author = user();
    let target = insert(store, &message(t, author, T0, "question")).await;
    let answer = insert(store, &reply(t, user(), target.id, "answer")).await;
    assert_eq!(answer.reply_to, Some(target.id));
    assert_eq!(
        store.get(t, answer.id).await.unwrap().reply_to,
        Some(target.id)
    );
    let elsewhere = insert(store, &message(thread(), author, T0, "elsewhere")).await;
    let gone = insert(store, &message(t, author, T0 + 1, "gone")).await;
    delete(store, &gone).await;
    let head = store.head(t).await.unwrap();
    for bad in [MessageId::new_v7(), elsewhere.id, gone.id] {
        let refused = reply(t, author, bad, "x");
        let refused = store.create_with(&refused, None).await;
        assert!(
            matches!(refused, Err(Error::InvalidReplyTo)),
            "a reply to {bad} is refused"
        );
    }
    assert_eq!(
        store.head(t).await.unwrap(),
        head,
        "a refused reply takes no number"
    );
    delete(store, &target).await;
    let listed = page(store, t, PageQuery::Newest, 10).await;
    assert_eq!(listed.items.len(), 1);
    assert_eq!(
        listed.items[0].reply_to,
        Some(target.id),
        "a reply keeps its target after the target is deleted"
    );
}

/// A retried reply answers the message the first request created, even after its target
/// was deleted.
pub async fn an_idempotent_replay_of_a_reply_answers_the_same_message(subject: &Subject) {
    let store = subject.store.as_ref();
    let t = thread();
    let author = user();
    let target = insert(store, &message(t, author, T0, "question")).await;
    let key = crate::IdempotencyKey::parse("reply-1").unwrap();
    let new = NewMessage::new(
        MessageKind::Text,
        "answer".into(),
        vec![],
        &Limits::default(),
    )
    .unwrap()
    .replying_to(Some(target.id));
    let fingerprint = RequestFingerprint::of(&new);
    let first = reply(t, author, target.id, "answer");
    let idem = Keyed {
        key: &key,
        fingerprint,
    };
    let created = store.create_with(&first, Some(idem)).await.unwrap();
    let Created::Reply { reply: created, .. } = created else {
        panic!("the first create is a new reply: {created:?}");
    };
    delete(store, &target).await;
    let retry = reply(t, author, target.id, "answer");
    let replayed = store.create_with(&retry, Some(idem)).await.unwrap();
    assert_eq!(replayed, Created::Replayed(created));
    // The same key with a reply to another message is another request.
    let other = insert(store, &message(t, author, T0 + 5, "other")).await;
    let differs = NewMessage::new(
        MessageKind::Text,
        "answer".into(),
        vec![],
        &Limits::default(),
    )
    .unwrap()
    .replying_to(Some(other.id));
    assert_ne!(RequestFingerprint::of(&differs), fingerprint);
}

/// Creates `m`, a reply to a live root: the reply and the root in its new state.
pub(super) async fn reply_with_root(store: &dyn MessageStore, m: &Message) -> (Message, Message) {
    match store.create_with(m, None).await.expect("create reply") {
        Created::Reply { reply, root } => (reply, *root),
        other => panic!("a reply to a live root changes the root: {other:?}"),
    }
}

/// A reply takes the thread's next number N and its root's new summary N+1, in one write:
/// the changes feed lists both in that order, `GET` of the root answers its new state, and
/// the root's change leaves an event of its own.
pub async fn a_reply_takes_n_and_its_root_n_plus_one(subject: &Subject) {
    let store = subject.store.as_ref();
    drain(store).await;
    let t = thread();
    let (asker, answerer) = (user(), user());
    let root = insert(store, &message(t, asker, T0, "question")).await;
    assert_eq!(root.replies, None, "a message without replies has none");
    let before = store.head(t).await.unwrap();
    let (answer, root_after) = reply_with_root(store, &reply(t, answerer, root.id, "answer")).await;
    assert_eq!(answer.root_id, Some(root.id));
    assert_eq!((answer.seq, answer.rev), (before + 1, before + 1));
    assert_eq!(
        root_after.rev,
        before + 2,
        "the root takes the number after the reply"
    );
    assert_eq!(root_after.seq, root.seq, "the root keeps its place");
    let summary = root_after.replies.clone().expect("a summary");
    assert_eq!(summary.count, 1);
    assert_eq!(summary.last_reply_id, answer.id);
    assert_eq!(summary.last_reply_at, answer.created_at);
    assert_eq!(summary.participants, vec![answerer]);
    assert_eq!(store.head(t).await.unwrap(), before + 2);
    assert_eq!(store.get(t, root.id).await.unwrap(), root_after);
    assert_eq!(store.get(t, answer.id).await.unwrap(), answer);
    let changes = store.changes(t, before, limit("10")).await.unwrap();
    let revs: Vec<(MessageId, i64)> = changes.changes.iter().map(|c| (c.id(), c.rev())).collect();
    assert_eq!(revs, [(answer.id, before + 1), (root.id, before + 2)]);
    assert_eq!(changes.changes[1], Change::Message(root_after.clone()));
    let events = store
        .claim(10, std::time::Duration::from_secs(60))
        .await
        .unwrap();
    let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, [codec::CREATED, codec::CREATED, REPLIES_UPDATED]);
    assert_eq!(
        codec::decode(&events[1].kind, &events[1].payload).ok(),
        Some(codec::EventBody::Created(answer.clone())),
        "the reply's event carries its root"
    );
    let body: RepliesBody = serde_json::from_slice(&events[2].payload).expect("replies body");
    assert_eq!(body.message_id, root.id);
    assert_eq!((body.seq, body.rev), (root.seq, root_after.rev));
    assert_eq!(body.replies.as_ref(), root_after.replies.as_deref());
    assert_eq!(events[2].sequence, root_after.rev);
    let positions: Vec<i64> = events.iter().map(|e| e.position).collect();
    store.ack(&positions).await.unwrap();
}

/// A reply to a reply names the message it answers and joins that message's root; the root
/// lists the most recent participants first, each once.
pub async fn a_reply_to_a_reply_joins_the_same_root(subject: &Subject) {
    let store = subject.store.as_ref();
    let t = thread();
    let (a, b) = (user(), user());
    let root = insert(store, &message(t, a, T0, "root")).await;
    let (first, _) = reply_with_root(store, &reply(t, b, root.id, "first")).await;
    let (second, root_now) = reply_with_root(store, &reply(t, a, first.id, "second")).await;
    assert_eq!(second.reply_to, Some(first.id));
    assert_eq!(second.root_id, Some(root.id));
    let summary = root_now.replies.expect("a summary");
    assert_eq!((summary.count, summary.last_reply_id), (2, second.id));
    assert_eq!(summary.participants, vec![a, b]);
    let (third, root_now) = reply_with_root(store, &reply(t, b, second.id, "third")).await;
    assert_eq!(third.root_id, Some(root.id));
    let summary = root_now.replies.expect("a summary");
    assert_eq!(summary.count, 3);
    assert_eq!(summary.participants, vec![b, a], "each participant once");
    let first_now = store.get(t, first.id).await.unwrap();
    assert_eq!(first_now.replies, None, "a reply has no replies of its own");
    assert_eq!(
        first_now.rev, first.rev,
        "a reply to a reply leaves that reply alone"
    );
}

/// A root's replies page oldest first with an exact `has_more` and the thread's position,
/// live ones only, whatever else the thread holds; an unknown or deleted root, or a reply, is
/// not found.
pub async fn replies_page_oldest_first_exactly(subject: &Subject) {
    let store = subject.store.as_ref();
    let t = thread();
    let author = user();
    let root = insert(store, &message(t, author, T0, "root")).await;
    let other = insert(store, &message(t, author, T0 + 1, "other root")).await;
    let mut replies = Vec::new();
    for i in 0..5 {
        let (r, _) = reply_with_root(store, &reply(t, user(), root.id, &format!("r{i}"))).await;
        replies.push(r.id);
        insert(store, &message(t, author, T0 + 2 + i, "between")).await;
        reply_with_root(store, &reply(t, author, other.id, "elsewhere")).await;
    }
    delete(store, &store.get(t, replies[2]).await.unwrap()).await;
    replies.remove(2);
    let (mut after, mut seen) = (0, Vec::new());
    loop {
        let p = store
            .replies(t, root.id, after, size(2))
            .await
            .expect("replies");
        assert_eq!(p.rev, store.head(t).await.unwrap());
        assert!(p.items.len() <= 2);
        assert!(p.items.iter().all(|m| m.root_id == Some(root.id)));
        seen.extend(p.items.iter().map(|m| m.id));
        match p.next_cursor {
            Some(cursor) => {
                assert!(p.has_more);
                after = seq_of(cursor);
            }
            None => {
                assert!(!p.has_more);
                break;
            }
        }
    }
    assert_eq!(seen, replies, "every live reply once, oldest first");
    let all = store.replies(t, root.id, 0, size(4)).await.unwrap();
    assert!(!all.has_more, "a full last page has no more");
    let reply_id = replies[0];
    for missing in [MessageId::new_v7(), reply_id] {
        assert!(matches!(
            store.replies(t, missing, 0, size(10)).await,
            Err(Error::NotFound)
        ));
    }
    delete(store, &root).await;
    assert!(matches!(
        store.replies(t, root.id, 0, size(10)).await,
        Err(Error::NotFound)
    ));
    let listed = page(store, t, PageQuery::Newest, 100).await;
    assert!(
        listed.items.iter().any(|m| m.id == reply_id),
        "the replies of a deleted root stay in the thread's pages"
    );
}

/// A removed reply leaves its root's count at once: the removal takes N, the recounted root
/// N+1; a bulk removal recounts each root once after every removal; the last reply gone, the
/// root has no summary.
pub async fn removed_replies_leave_the_count_at_once(subject: &Subject) {
    let store = subject.store.as_ref();
    let t = thread();
    let (a, b, c) = (user(), user(), user());
    let root = insert(store, &message(t, a, T0, "root")).await;
    let (r1, _) = reply_with_root(store, &reply(t, a, root.id, "1")).await;
    let (r2, _) = reply_with_root(store, &reply(t, b, root.id, "2")).await;
    let (r3, _) = reply_with_root(store, &reply(t, c, r2.id, "3")).await;
    let tombstone = delete(store, &r3).await;
    let root_now = store.get(t, root.id).await.unwrap();
    assert_eq!(
        root_now.rev,
        tombstone.rev + 1,
        "the recount takes the number after"
    );
    assert_eq!(store.head(t).await.unwrap(), root_now.rev);
    let summary = root_now.replies.clone().expect("two left");
    assert_eq!((summary.count, summary.last_reply_id), (2, r2.id));
    assert_eq!(summary.last_reply_at, r2.created_at);
    assert_eq!(summary.participants, vec![b, a]);
    let moderator = Removal::new(user(), true, None).unwrap();
    let at = Timestamp::from_micros(T0 + 100);
    let gone = store
        .delete_many_as(t, &[r1.id, r2.id], &moderator, at)
        .await
        .expect("bulk");
    let root_now = store.get(t, root.id).await.unwrap();
    assert_eq!(root_now.replies, None, "no live reply, no summary");
    assert_eq!(
        root_now.rev,
        gone[1].rev + 1,
        "one recount after every removal"
    );
    assert_eq!(store.head(t).await.unwrap(), root_now.rev);
    let changes = store.changes(t, tombstone.rev, limit("10")).await.unwrap();
    let ids: Vec<MessageId> = changes.changes.iter().map(|c| c.id()).collect();
    assert_eq!(ids, [r1.id, r2.id, root.id]);
}

/// Sixteen writers reply to one root at once (some to each other's replies) while a follower
/// catches up by the changes feed: the count equals the live replies, the last reply is the
/// highest `seq`, every number is taken once, and the follower's final state equals `GET` of
/// the root and of every reply.
pub async fn racing_replies_keep_the_summary_exact(subject: &Subject) {
    use std::sync::atomic::{AtomicBool, Ordering};
    let store = Arc::clone(&subject.store);
    let t = thread();
    let root = insert(store.as_ref(), &message(t, user(), T0, "busy root")).await;
    let done = Arc::new(AtomicBool::new(false));
    let follower = {
        let store = Arc::clone(&store);
        let done = Arc::clone(&done);
        tokio::spawn(async move {
            let (mut since, mut last_rev) = (0i64, 0i64);
            let mut state: HashMap<MessageId, Message> = HashMap::new();
            loop {
                let finished = done.load(Ordering::SeqCst);
                let read = store.changes(t, since, limit("5")).await.expect("changes");
                for change in read.changes {
                    assert!(change.rev() > last_rev, "after N never repeats");
                    last_rev = change.rev();
                    if let Change::Message(m) = change {
                        state.insert(m.id, m);
                    }
                }
                since = read.next;
                if finished && !read.has_more {
                    return state;
                }
                tokio::task::yield_now().await;
            }
        })
    };
    let writers: Vec<_> = (0..16)
        .map(|w| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let author = user();
                let mut mine = Vec::new();
                let mut target = root.id;
                for i in 0..6 {
                    let r = reply(t, author, target, &format!("w{w} #{i}"));
                    let (r, root_after) = reply_with_root(store.as_ref(), &r).await;
                    assert!(
                        root_after.rev > r.seq,
                        "the root's change follows its reply's"
                    );
                    if i % 3 == 1 {
                        target = r.id;
                    }
                    mine.push((r, root_after.rev));
                }
                mine
            })
        })
        .collect();
    let mut replies = Vec::new();
    let mut numbers = vec![root.seq];
    let mut root_changes = HashSet::new();
    for writer in writers {
        for (r, root_rev) in writer.await.expect("writer") {
            numbers.push(r.seq);
            root_changes.insert(root_rev);
            replies.push(r);
        }
    }
    // Every number up to the head taken once: by the root, a reply, or a change of the
    // root's summary (one per reply, or one for the replies a store committed together).
    numbers.extend(&root_changes);
    numbers.sort_unstable();
    let replied = store.head(t).await.unwrap();
    assert_eq!(
        numbers,
        (1..=replied).collect::<Vec<i64>>(),
        "every number taken once"
    );
    // Some go again: the count follows at once.
    for gone in replies.iter().step_by(7) {
        delete(store.as_ref(), gone).await;
    }
    let gone: HashSet<MessageId> = replies.iter().step_by(7).map(|m| m.id).collect();
    done.store(true, Ordering::SeqCst);
    let state = follower.await.expect("follower");
    let live: Vec<&Message> = replies.iter().filter(|m| !gone.contains(&m.id)).collect();
    let root_now = store.get(t, root.id).await.unwrap();
    let summary = root_now.replies.clone().expect("a summary");
    assert_eq!(
        summary.count,
        live.len() as i64,
        "the count is the live replies"
    );
    let newest = live.iter().max_by_key(|m| m.seq).expect("replies");
    assert_eq!(
        summary.last_reply_id, newest.id,
        "the last reply is the highest seq"
    );
    assert_eq!(
        state.get(&root.id),
        Some(&root_now),
        "the follower ends with the root as GET"
    );
    for r in &live {
        assert_eq!(state.get(&r.id), Some(&store.get(t, r.id).await.unwrap()));
    }
    let head = store.head(t).await.unwrap();
    // Each removal with its recount.
    assert_eq!(
        head,
        replied + 2 * gone.len() as i64,
        "a removal takes two numbers"
    );
}
