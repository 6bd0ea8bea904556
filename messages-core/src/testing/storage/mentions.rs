//! Mentions: whom a message addresses is kept with it, read back by every read, replaced by an
//! edit, and kept with each version in its history.

use super::*;
use crate::message::Mentions;

fn mentions(users: &[UserId], room: bool) -> Option<Mentions> {
    Some(Mentions {
        users: users.to_vec(),
        room,
    })
}

/// A message's mentions come back from `get`, pages and the changes feed; an edit that gives
/// mentions replaces them (the author's own id left out, empty ones leave none), one that does
/// not keeps them; the history keeps each version's.
pub async fn mentions_are_kept_and_an_edit_replaces_them(subject: &Subject) {
    let store = subject.store.as_ref();
    let t = thread();
    let (author, a, b) = (user(), user(), user());
    let mut m = message(t, author, T0, "for a");
    m.mentions = mentions(&[a], false);
    let created = insert(store, &m).await;
    assert_eq!(created.mentions, mentions(&[a], false));
    let plain = insert(store, &message(t, author, T0 + 1, "for no one")).await;
    assert_eq!(store.get(t, plain.id).await.unwrap().mentions, None);
    assert_eq!(store.get(t, m.id).await.unwrap().mentions, created.mentions);

    let to_b_and_room = Mentions {
        users: vec![b, author],
        room: true,
    };
    let patch =
        MessagePatch::with_mentions(None, None, Some(to_b_and_room), &Limits::default()).unwrap();
    let at = Timestamp::from_micros(T0 + 1_000_000);
    let edited = store.update_as(t, m.id, author, &patch, at).await.unwrap();
    assert_eq!(
        edited.mentions,
        mentions(&[b], true),
        "replaced, without the author"
    );
    let newest = page(store, t, PageQuery::Newest, 10).await;
    let listed = newest.items.iter().find(|x| x.id == m.id).expect("listed");
    assert_eq!(listed.mentions, edited.mentions, "a page reads them");
    let feed = store.changes(t, created.seq, limit("10")).await.unwrap();
    let fed = feed.changes.iter().find(|c| c.id() == m.id).expect("fed");
    match fed {
        crate::changes::Change::Message(fed) => assert_eq!(fed.mentions, edited.mentions),
        other => panic!("an edited message is fed as a message: {other:?}"),
    }

    let text_only = edit(store, &m, "still for b").await;
    assert_eq!(
        text_only.mentions, edited.mentions,
        "an edit without mentions keeps them"
    );
    let patch =
        MessagePatch::with_mentions(None, None, Some(Mentions::default()), &Limits::default())
            .unwrap();
    let at = Timestamp::from_micros(T0 + 3_000_000);
    let cleared = store.update_as(t, m.id, author, &patch, at).await.unwrap();
    assert_eq!(cleared.mentions, None, "empty mentions leave none");
    assert_eq!(store.get(t, m.id).await.unwrap().mentions, None);

    let history = store.history(t, m.id).await.unwrap();
    let kept: Vec<Option<Mentions>> = history.versions.into_iter().map(|v| v.mentions).collect();
    assert_eq!(
        kept,
        [
            mentions(&[a], false),
            mentions(&[b], true),
            mentions(&[b], true),
            None
        ],
        "each version keeps its own"
    );
}

/// The reader's mentions in a thread: the count beside the unread count of one read state.
async fn counted(store: &dyn MessageStore, t: ThreadId, reader: UserId, max: u64) -> (u64, u64) {
    let max = crate::read::UnreadMax::new(max as usize).unwrap();
    let states = store.read_states_of(reader, &[t], max).await.unwrap();
    (states[0].unread, states[0].mentions)
}

/// A message by `author` in `t` that addresses `users` (and the room).
async fn post(
    store: &dyn MessageStore,
    t: ThreadId,
    author: UserId,
    users: &[UserId],
    room: bool,
) -> Message {
    let mut m = message(t, author, T0, "mention");
    m.mentions = Mentions::new(users.to_vec(), room, 50)
        .unwrap()
        .of_author(author);
    insert(store, &m).await
}

/// Re-mentions `m` as its author: `users` and the room.
async fn remention(store: &dyn MessageStore, m: &Message, users: &[UserId], room: bool) {
    let mentions = Mentions::new(users.to_vec(), room, 50).unwrap();
    let patch =
        MessagePatch::with_mentions(None, None, Some(mentions), &Limits::default()).unwrap();
    let at = Timestamp::from_micros(T0 + 5_000_000);
    store
        .update_as(m.thread_id, m.id, m.user_id, &patch, at)
        .await
        .unwrap();
}

/// Mention counts beside unread counts: the live messages after the reader's position that
/// others wrote and that name the reader or the room, each once however it is made; edits
/// that add and remove the reader, deletes, reading forward, marking as unread, and the cap.
pub async fn mention_counts_are_exact(subject: &Subject) {
    let store = subject.store.as_ref();
    let t = thread();
    let (reader, bystander, a, b) = (user(), user(), user(), user());
    // The reader's own message addresses the room (and moves their position to it).
    let own = post(store, t, reader, &[a], true).await;
    let named = post(store, t, a, &[reader], false).await;
    let room = post(store, t, b, &[], true).await;
    let both = post(store, t, a, &[reader, b], true).await;
    let plain = post(store, t, a, &[], false).await;
    post(store, t, b, &[bystander], false).await;
    assert_eq!(
        counted(store, t, reader, 1000).await,
        (5, 3),
        "named, room, both once"
    );
    assert_eq!(
        counted(store, t, bystander, 1000).await,
        (6, 4),
        "the room's three (one the reader's) and their own name"
    );
    assert_eq!(
        counted(store, t, a, 1000).await,
        (1, 0),
        "after their own last message"
    );

    remention(store, &named, &[b], false).await;
    remention(store, &plain, &[reader], false).await;
    assert_eq!(
        counted(store, t, reader, 1000).await.1,
        3,
        "one removed, one added"
    );
    delete(store, &room).await;
    assert_eq!(
        counted(store, t, reader, 1000).await,
        (4, 2),
        "a deleted one leaves"
    );
    assert_eq!(
        counted(store, t, reader, 1).await,
        (1, 1),
        "both stop at the cap"
    );

    let max = crate::read::UnreadMax::default();
    let read = store
        .mark_read_as(t, reader, crate::read::ReadMark::ReadTo(both.seq), max)
        .await
        .unwrap();
    assert_eq!(
        (read.unread, read.mentions),
        (2, 1),
        "the re-mentioned one is left"
    );
    let back = store
        .mark_read_as(t, reader, crate::read::ReadMark::UnreadFrom(own.seq), max)
        .await
        .unwrap();
    assert_eq!(
        (back.unread, back.mentions),
        (4, 2),
        "marked unread, counted again; the reader's own room mention never"
    );

    // Past the cap, the mentions are those among the unread counted (one pass counts both):
    // a mention after the first `max + 1` unread is not seen until the reader reads on.
    let t = thread();
    for _ in 0..2 {
        post(store, t, a, &[], false).await;
    }
    post(store, t, b, &[reader], false).await;
    assert_eq!(counted(store, t, reader, 1).await, (1, 0), "capped");
    assert_eq!(
        counted(store, t, reader, 3).await,
        (3, 1),
        "below the cap: exact"
    );
}

/// Writers mentioning one reader at once, on several threads: every mention counted once.
pub async fn racing_mentions_are_each_counted(subject: &Subject) {
    let store = Arc::clone(&subject.store);
    let (t, reader) = (thread(), user());
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let author = user();
                for i in 0..10 {
                    let room = (w + i) % 5 == 0;
                    let users = if room { vec![] } else { vec![reader, user()] };
                    post(store.as_ref(), t, author, &users, room).await;
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.expect("writer");
    }
    assert_eq!(counted(store.as_ref(), t, reader, 1000).await, (80, 80));
}

/// Every page of a reader's mentions across threads, walked with `size`.
async fn walk_mentions(
    store: &dyn MessageStore,
    reader: UserId,
    threads: &crate::read::ThreadList,
    size: u32,
    unread_only: bool,
    between: impl AsyncFn(usize),
) -> Vec<Message> {
    let mut seen = Vec::new();
    let mut after = None;
    for turn in 0.. {
        let page = store
            .mentions(reader, threads, after, super::size(size), unread_only)
            .await
            .unwrap();
        assert!(page.items.len() <= size as usize);
        assert_eq!(page.has_more, page.next_cursor.is_some());
        seen.extend(page.items);
        between(turn).await;
        match page.next_cursor {
            Some(next) => after = Some(next),
            None => return seen,
        }
    }
    unreachable!("the loop returns")
}

/// A reader's mentions across threads, newest first: the live messages others wrote that name
/// them or the room, each once (a thread named twice too), paged without gaps or repeats while
/// new mentions arrive; `unread_only` keeps those after the reader's position.
pub async fn mentions_of_a_reader_page_exactly(subject: &Subject) {
    let store = subject.store.as_ref();
    let reader = user();
    let (a, b) = (user(), user());
    let threads: Vec<ThreadId> = (0..3).map(|_| thread()).collect();
    let mut expected = Vec::new();
    for i in 0..21 {
        let t = threads[i % 3];
        let author = if i % 2 == 0 { a } else { b };
        let m = match i % 7 {
            0 => post(store, t, author, &[], true).await,
            1 => post(store, t, author, &[], false).await,
            2 => post(store, t, reader, &[a], true).await,
            _ => post(store, t, author, &[reader, b], false).await,
        };
        match i % 7 {
            1 | 2 => {}
            5 => {
                delete(store, &m).await;
            }
            _ => expected.push((m.id, m.thread_id)),
        }
    }
    expected.sort_by(|x, y| y.cmp(x));
    let expected: Vec<MessageId> = expected.into_iter().map(|(id, _)| id).collect();
    let named = crate::read::ThreadList::new(
        threads
            .iter()
            .chain(threads.iter().take(1))
            .copied()
            .collect(),
    )
    .unwrap();
    let arriving = |turn: usize| {
        let t = threads[turn % 3];
        async move {
            post(store, t, a, &[reader], false).await;
        }
    };
    let seen = walk_mentions(store, reader, &named, 4, false, arriving).await;
    let seen: Vec<MessageId> = seen.iter().map(|m| m.id).collect();
    assert_eq!(seen, expected, "newest first, no gap, no repeat");

    // Read the first thread up to its head: its mentions are no longer unread.
    let max = crate::read::UnreadMax::default();
    let head = store.head(threads[0]).await.unwrap();
    store
        .mark_read_as(threads[0], reader, crate::read::ReadMark::ReadTo(head), max)
        .await
        .unwrap();
    let unread = walk_mentions(store, reader, &named, 50, true, async |_| {}).await;
    let all = walk_mentions(store, reader, &named, 50, false, async |_| {}).await;
    let states = store.read_states_of(reader, &threads, max).await.unwrap();
    let wanted: Vec<MessageId> = all
        .iter()
        .filter(|m| {
            states
                .iter()
                .any(|s| s.thread_id == m.thread_id && m.seq > s.seq)
        })
        .map(|m| m.id)
        .collect();
    let unread: Vec<MessageId> = unread.iter().map(|m| m.id).collect();
    assert!(unread.len() < all.len(), "the first thread is read");
    assert_eq!(unread, wanted, "unread only: those after the position");
}

/// A reply conversation counts its mentions beside its unread replies: in the answer of a
/// follow, of a move of the position, and in the inbox.
pub async fn a_conversation_counts_its_mentions(subject: &Subject) {
    use crate::conversation::{FollowRequest, RepliesReadRequest};
    let store = subject.store.as_ref();
    let t = thread();
    let (author, reader, other) = (user(), user(), user());
    let root = post(store, t, author, &[], false).await;
    let max = crate::read::UnreadMax::default();
    let follow = FollowRequest {
        thread: t,
        root: root.id,
        user: reader,
        follow: true,
        max,
    };
    assert_eq!(store.follow(follow).await.unwrap().mentions, 0);
    let mut replies = Vec::new();
    for (users, room) in [(vec![reader], false), (vec![], true), (vec![], false)] {
        let mut m = message(t, other, T0, "re");
        m.reply_to = Some(root.id);
        m.mentions = Mentions::new(users, room, 50).unwrap().of_author(other);
        replies.push(super::replies::reply_with_root(store, &m).await.0);
    }
    // Mentioned in the thread, outside the conversation: not the conversation's.
    post(store, t, other, &[reader], false).await;
    let state = store.follow(follow).await.unwrap();
    assert_eq!((state.unread, state.mentions), (3, 2));
    let threads = crate::read::ThreadList::new(vec![t]).unwrap();
    let inbox = store
        .inbox(reader, &threads, None, super::size(10), max)
        .await
        .unwrap();
    assert_eq!(inbox.items[0].conversation.mentions, 2);
    let read = RepliesReadRequest {
        thread: t,
        root: root.id,
        user: reader,
        seq: replies[0].seq,
        max,
    };
    let moved = store.mark_replies_read(read).await.unwrap();
    assert_eq!((moved.unread, moved.mentions), (2, 1));
    // Past the cap, those among the replies counted: a mention after the first `max + 1`
    // unread replies is not seen until the reader reads on.
    let t = thread();
    let root = post(store, t, author, &[], false).await;
    for users in [vec![], vec![], vec![reader]] {
        let mut m = message(t, other, T0, "re");
        m.reply_to = Some(root.id);
        m.mentions = Mentions::new(users, false, 50).unwrap().of_author(other);
        super::replies::reply_with_root(store, &m).await;
    }
    let follow = |max| FollowRequest {
        thread: t,
        root: root.id,
        user: reader,
        follow: true,
        max: crate::read::UnreadMax::new(max).unwrap(),
    };
    let capped = store.follow(follow(1)).await.unwrap();
    assert_eq!(
        (capped.unread, capped.capped, capped.mentions),
        (1, true, 0)
    );
    let all = store.follow(follow(3)).await.unwrap();
    assert_eq!((all.unread, all.capped, all.mentions), (3, false, 1));
}
