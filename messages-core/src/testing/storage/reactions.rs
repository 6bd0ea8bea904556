//! Reactions: each change of one in the thread's sequence, the summary's first holders and
//! exact counts, the page of holders.

use std::time::Duration;

use super::outbox::drain;
use super::*;
use crate::error::Error;
use crate::events::codec;
use crate::message::Emoji;
use crate::message::Timestamp;
use crate::reaction::ReactionRequest;
use crate::reaction::{Reacted, ReactionChange, ReactionLimits};

pub(super) fn emoji(s: &str) -> Emoji {
    Emoji::parse(s).unwrap()
}

/// Adds or removes `user`'s `emoji` on `m` with `limits`.
pub(super) async fn react_with(
    store: &dyn MessageStore,
    m: &Message,
    user: UserId,
    emoji: Emoji,
    change: ReactionChange,
    limits: ReactionLimits,
) -> crate::Result<Reacted> {
    let request = ReactionRequest {
        thread: m.thread_id,
        id: m.id,
        user,
        emoji,
        change,
        at: Timestamp::from_micros(T0 + 3_000_000),
        limits,
    };
    store.react(request).await
}

pub(super) async fn react(
    store: &dyn MessageStore,
    m: &Message,
    user: UserId,
    e: &str,
    change: ReactionChange,
) -> Reacted {
    react_with(store, m, user, emoji(e), change, ReactionLimits::default())
        .await
        .expect("react")
}

/// A reaction takes the thread's next number as the message's `rev`; a repeat add and the
/// removal of a reaction not held take none.
pub async fn a_reaction_takes_a_number_and_a_repeat_takes_none(subject: &Subject) {
    let store = subject.store.as_ref();
    let t = thread();
    let m = insert(store, &message(t, user(), T0, "react to me")).await;
    let reader = user();
    let added = react(store, &m, reader, "👍", ReactionChange::Add).await;
    assert!(added.changed);
    assert_eq!(added.message.rev, m.rev + 1);
    assert_eq!(
        added.message.updated_at, m.updated_at,
        "a reaction is no edit"
    );
    assert_eq!(added.message.reactions.len(), 1);
    assert_eq!(added.message.reactions[0].count, 1);
    assert_eq!(added.message.reactions[0].users, [reader]);
    assert_eq!(store.get(t, m.id).await.unwrap(), added.message);
    let again = react(store, &m, reader, "👍", ReactionChange::Add).await;
    assert!(!again.changed);
    assert_eq!(again.message, added.message);
    assert_eq!(store.head(t).await.unwrap(), added.message.rev);
    let never = react(store, &m, user(), "👍", ReactionChange::Remove).await;
    assert!(!never.changed);
    assert_eq!(store.head(t).await.unwrap(), added.message.rev);
    let removed = react(store, &m, reader, "👍", ReactionChange::Remove).await;
    assert!(removed.changed);
    assert_eq!(removed.message.rev, added.message.rev + 1);
    assert!(removed.message.reactions.is_empty());
    let twice = react(store, &m, reader, "👍", ReactionChange::Remove).await;
    assert!(!twice.changed);
    assert_eq!(store.head(t).await.unwrap(), removed.message.rev);
}

/// Each reaction change leaves one event of its own, numbered like the change, with the
/// emoji's new count.
pub async fn each_reaction_change_leaves_its_own_event(subject: &Subject) {
    let store = subject.store.as_ref();
    let outbox = subject.store.as_ref();
    drain(outbox).await;
    let t = thread();
    let m = insert(store, &message(t, user(), T0, "evented")).await;
    let (a, b) = (user(), user());
    react(store, &m, a, "🎉", ReactionChange::Add).await;
    react(store, &m, a, "🎉", ReactionChange::Add).await;
    react(store, &m, b, "🎉", ReactionChange::Add).await;
    let last = react(store, &m, a, "🎉", ReactionChange::Remove).await;
    let claimed = outbox.claim(10, Duration::from_secs(60)).await.unwrap();
    let kinds: Vec<&str> = claimed.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            codec::CREATED,
            codec::REACTION_ADDED,
            codec::REACTION_ADDED,
            codec::REACTION_REMOVED
        ]
    );
    let bodies: Vec<codec::ReactionBody> = claimed[1..]
        .iter()
        .map(|e| match codec::decode(&e.kind, &e.payload).unwrap() {
            codec::EventBody::ReactionAdded(body) | codec::EventBody::ReactionRemoved(body) => body,
            other => panic!("not a reaction: {other:?}"),
        })
        .collect();
    assert_eq!(
        bodies
            .iter()
            .map(|b| (b.user_id, b.count, b.seq, b.rev))
            .collect::<Vec<_>>(),
        [
            (a, 1, m.seq, m.rev + 1),
            (b, 2, m.seq, m.rev + 2),
            (a, 1, m.seq, m.rev + 3)
        ]
    );
    assert!(
        bodies
            .iter()
            .all(|b| b.message_id == m.id && b.emoji == emoji("🎉"))
    );
    assert_eq!(claimed[3].sequence, last.message.rev);
}

/// A summary lists each emoji in the order it was first used, with an exact count and its
/// first holders; when a listed holder leaves, the next one takes the place. Everyone is
/// paged by id.
pub async fn reactions_list_their_first_holders_and_exact_counts(subject: &Subject) {
    let store = subject.store.as_ref();
    let t = thread();
    let m = insert(store, &message(t, user(), T0, "popular")).await;
    let limits = ReactionLimits {
        max_emoji: 20,
        users_shown: 2,
    };
    let users: Vec<UserId> = (0..5).map(|_| user()).collect();
    let up = emoji("👍");
    let heart = emoji("❤️");
    let go = |u: UserId, e: &Emoji, change| react_with(store, &m, u, e.clone(), change, limits);
    go(users[0], &heart, ReactionChange::Add).await.unwrap();
    for u in &users {
        go(*u, &up, ReactionChange::Add).await.unwrap();
    }
    let now = store.get(t, m.id).await.unwrap();
    assert_eq!(
        now.reactions
            .iter()
            .map(|r| (r.emoji.clone(), r.count))
            .collect::<Vec<_>>(),
        [(heart.clone(), 1), (up.clone(), 5)]
    );
    assert_eq!(now.reactions[1].users, users[..2]);
    let after = go(users[0], &up, ReactionChange::Remove).await.unwrap();
    assert_eq!(after.message.reactions[1].count, 4);
    assert_eq!(after.message.reactions[1].users, [users[1], users[2]]);
    // The last holder of the first emoji leaves: it goes, and comes back last.
    go(users[0], &heart, ReactionChange::Remove).await.unwrap();
    let back = go(users[3], &heart, ReactionChange::Add).await.unwrap();
    assert_eq!(
        back.message
            .reactions
            .iter()
            .map(|r| r.emoji.clone())
            .collect::<Vec<_>>(),
        [up.clone(), heart.clone()]
    );
    assert_eq!(store.get(t, m.id).await.unwrap(), back.message);
    // Everyone who holds 👍, two by two, by id.
    let mut holders = users[1..].to_vec();
    holders.sort();
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = store.reactors_of(t, m.id, &up, after, 2).await.unwrap();
        assert_eq!(page.count, 4);
        seen.extend(page.users.iter().copied());
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
        assert!(seen.len() <= holders.len(), "reactor pages do not end");
    }
    assert_eq!(seen, holders);
    let none = store
        .reactors_of(t, m.id, &emoji(":none:"), None, 10)
        .await
        .unwrap();
    assert_eq!((none.count, none.users.len(), none.next), (0, 0, None));
}

/// A new emoji past the limit is refused and takes no number; emoji already there still
/// take reactions.
pub async fn a_message_takes_a_bounded_number_of_emoji(subject: &Subject) {
    let store = subject.store.as_ref();
    let t = thread();
    let m = insert(store, &message(t, user(), T0, "bounded")).await;
    let limits = ReactionLimits {
        max_emoji: 2,
        users_shown: 10,
    };
    let add = |u, e: &str| react_with(store, &m, u, emoji(e), ReactionChange::Add, limits);
    add(user(), "👍").await.unwrap();
    add(user(), ":x:").await.unwrap();
    let head = store.head(t).await.unwrap();
    assert!(matches!(
        add(user(), "🎉").await,
        Err(Error::TooManyReactions { max: 2 })
    ));
    assert_eq!(store.head(t).await.unwrap(), head);
    assert_eq!(store.get(t, m.id).await.unwrap().reactions.len(), 2);
    add(user(), ":x:").await.unwrap();
}

/// A deleted, unknown or other thread's message takes no reaction and has no history.
pub async fn a_deleted_message_takes_no_reaction_and_has_no_history(subject: &Subject) {
    let store = subject.store.as_ref();
    let t = thread();
    let m = insert(store, &message(t, user(), T0, "soon gone")).await;
    react(store, &m, user(), "👍", ReactionChange::Add).await;
    edit(store, &m, "edited").await;
    delete(store, &m).await;
    let up = emoji("👍");
    let reacted = react_with(
        store,
        &m,
        user(),
        up.clone(),
        ReactionChange::Add,
        ReactionLimits::default(),
    );
    assert!(matches!(reacted.await, Err(Error::NotFound)));
    assert!(matches!(store.history(t, m.id).await, Err(Error::NotFound)));
    assert!(matches!(
        store.reactors_of(t, m.id, &up, None, 10).await,
        Err(Error::NotFound)
    ));
    let other = insert(store, &message(thread(), user(), T0, "elsewhere")).await;
    assert!(matches!(
        store.history(t, other.id).await,
        Err(Error::NotFound)
    ));
    let elsewhere = Message {
        thread_id: t,
        ..other
    };
    let reacted = react_with(
        store,
        &elsewhere,
        user(),
        up.clone(),
        ReactionChange::Add,
        ReactionLimits::default(),
    );
    assert!(matches!(reacted.await, Err(Error::NotFound)));
}

/// A reaction reaches the changes feed and pages exactly like an edit: the message in its
/// current state, at its new `rev`.
pub async fn reactions_reach_the_changes_feed_like_edits(subject: &Subject) {
    let store = subject.store.as_ref();
    let t = thread();
    let all = fill(store, t, 3).await;
    let since = store.head(t).await.unwrap();
    let reacted = react(store, &all[0], user(), "👀", ReactionChange::Add).await;
    let changes = store.changes(t, since, limit("10")).await.unwrap();
    assert_eq!(changes.changes.len(), 1);
    assert_eq!(
        changes.changes[0],
        crate::Change::Message(reacted.message.clone())
    );
    assert_eq!(changes.changes[0].kind(), codec::UPDATED);
    assert_eq!(changes.next, reacted.message.rev);
    let newest = page(store, t, PageQuery::Newest, 10).await;
    assert_eq!(newest.rev, reacted.message.rev);
    assert_eq!(newest.items[2], reacted.message);
    let around = store.around(t, all[0].id, 2).await.unwrap();
    assert!(around.items.contains(&reacted.message));
}

/// 16 users adding and removing the same emoji on one message at once: the count ends equal
/// to the users who hold it, every change is numbered once, and the changes feed's final
/// state is the message as `get` reads it.
pub async fn racing_reactions_keep_counts_exact(subject: &Subject) {
    let store = std::sync::Arc::clone(&subject.store);
    let t = thread();
    let m = insert(store.as_ref(), &message(t, user(), T0, "hot")).await;
    let tasks: Vec<_> = (0..16)
        .map(|task| {
            let store = std::sync::Arc::clone(&store);
            let m = m.clone();
            tokio::spawn(async move {
                let me = user();
                let mut changes = Vec::new();
                // Add, add again, remove, add; odd tasks remove at the end too.
                let mut steps = vec![
                    ReactionChange::Add,
                    ReactionChange::Add,
                    ReactionChange::Remove,
                    ReactionChange::Add,
                ];
                if task % 2 == 1 {
                    steps.push(ReactionChange::Remove);
                }
                for step in steps {
                    let up = emoji("👍");
                    let done =
                        react_with(store.as_ref(), &m, me, up, step, ReactionLimits::default())
                            .await
                            .expect("react");
                    if done.changed {
                        changes.push(done.message.rev);
                    }
                }
                (me, task % 2 == 0, changes)
            })
        })
        .collect();
    let mut revs = Vec::new();
    let mut holders = Vec::new();
    for task in tasks {
        let (me, holds, changes) = task.await.expect("task");
        assert_eq!(changes.len(), if holds { 3 } else { 4 });
        revs.extend(changes);
        if holds {
            holders.push(me);
        }
    }
    revs.sort_unstable();
    let expected: Vec<i64> = (m.rev + 1..=m.rev + revs.len() as i64).collect();
    assert_eq!(revs, expected, "every change numbered once, without a gap");
    let now = store.get(t, m.id).await.unwrap();
    assert_eq!(now.rev, *expected.last().unwrap());
    assert_eq!(now.reactions.len(), 1);
    assert_eq!(now.reactions[0].count, holders.len() as i64);
    let listed: std::collections::HashSet<UserId> =
        now.reactions[0].users.iter().copied().collect();
    assert_eq!(listed.len(), holders.len().min(10));
    assert!(listed.iter().all(|u| holders.contains(u)));
    let everyone = store
        .reactors_of(t, m.id, &emoji("👍"), None, 100)
        .await
        .unwrap();
    let mut sorted = holders.clone();
    sorted.sort();
    assert_eq!(everyone.users, sorted);
    let feed = store.changes(t, 0, limit("100")).await.unwrap();
    assert_eq!(feed.changes, [crate::Change::Message(now)]);
}

/// Clearing a message's reactions (a moderator's act) is one numbered change with its event;
/// a message without reactions changes nothing; the holders are gone, so each may react again.
pub async fn clearing_reactions_is_one_numbered_change(subject: &Subject) {
    let store = subject.store.as_ref();
    super::outbox::drain(subject.store.as_ref()).await;
    let t = thread();
    let m = insert(store, &message(t, user(), T0, "popular")).await;
    let (a, b) = (user(), user());
    react(store, &m, a, "👍", ReactionChange::Add).await;
    react(store, &m, b, "👍", ReactionChange::Add).await;
    react(store, &m, a, "🎉", ReactionChange::Add).await;
    let head = store.head(t).await.expect("head");
    let (moderator, at) = (user(), Timestamp::from_micros(T0 + 9));
    super::outbox::drain(subject.store.as_ref()).await;
    let cleared = store.clear_as(t, m.id, moderator, at).await.expect("clear");
    assert!(cleared.changed);
    assert!(cleared.message.reactions.is_empty());
    assert_eq!(
        cleared.message.rev,
        head + 1,
        "one number for the whole clear"
    );
    assert_eq!(store.head(t).await.ok(), Some(head + 1));
    assert_eq!(
        store.get(t, m.id).await.expect("get").reactions,
        Vec::new(),
        "stored"
    );
    let reactors = store
        .reactors_of(t, m.id, &emoji("👍"), None, 100)
        .await
        .expect("reactors");
    assert_eq!(reactors.count, 0);
    assert!(reactors.users.is_empty());
    let events = subject
        .store
        .claim(100, Duration::from_secs(60))
        .await
        .expect("claim");
    assert_eq!(
        events
            .iter()
            .map(|e| (e.kind.as_str(), e.sequence))
            .collect::<Vec<_>>(),
        vec![(codec::REACTIONS_CLEARED, head + 1)]
    );
    match codec::decode(&events[0].kind, &events[0].payload) {
        Ok(codec::EventBody::ReactionsCleared(c)) => {
            assert_eq!((c.message_id, c.seq, c.rev), (m.id, m.seq, head + 1));
        }
        other => panic!("a cleared event: {other:?}"),
    }

    let again = store
        .clear_as(t, m.id, moderator, at)
        .await
        .expect("clear again");
    assert!(!again.changed, "nothing to clear, nothing numbered");
    assert_eq!(store.head(t).await.ok(), Some(head + 1));
    let back = react(store, &m, a, "👍", ReactionChange::Add).await;
    assert!(back.changed, "a holder cleared away may react again");
    assert_eq!(back.message.reactions[0].count, 1);

    delete(store, &m).await;
    assert!(matches!(
        store.clear_as(t, m.id, moderator, at).await,
        Err(Error::NotFound)
    ));
}

/// A reactor is listed whatever their id, the smallest there is included: every store pages
/// holders from the first, not from a sentinel id.
pub async fn a_reactor_is_listed_whatever_their_id(subject: &Subject) {
    let store = subject.store.as_ref();
    let t = thread();
    let m = insert(store, &message(t, user(), T0, "for everyone")).await;
    let nil = UserId::from_uuid(uuid::Uuid::nil());
    let other = user();
    for u in [other, nil] {
        react(store, &m, u, "👍", ReactionChange::Add).await;
    }
    let page = store
        .reactors_of(t, m.id, &emoji("👍"), None, 10)
        .await
        .expect("reactors");
    assert_eq!(page.count, 2);
    assert_eq!(page.users, [nil, other], "by id, the smallest first");
    let rest = store
        .reactors_of(t, m.id, &emoji("👍"), Some(nil), 10)
        .await
        .expect("reactors");
    assert_eq!(rest.users, [other], "after the first");
}
