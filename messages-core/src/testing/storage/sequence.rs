//! The sequence: gap-free numbers per thread, and the changes feed read by them.

use super::*;
use crate::changes::Change;
use crate::events::codec;

/// Each thread's writes are numbered 1, 2, 3, ... without a gap, whatever other threads do.
pub async fn numbers_are_gap_free_per_thread(subject: &Subject) {
    let store = subject.store.as_ref();
    let (a, b) = (thread(), thread());
    let first_a = insert(store, &message(a, user(), T0, "a1")).await;
    let first_b = insert(store, &message(b, user(), T0, "b1")).await;
    assert_eq!((first_a.seq, first_b.seq), (1, 1), "threads number apart");
    let edited = edit(store, &first_a, "a1, edited").await;
    assert_eq!(edited.rev, 2);
    let second_a = insert(store, &message(a, user(), T0 + 1, "a2")).await;
    assert_eq!(second_a.seq, 3);
    let gone = delete(store, &second_a).await;
    assert_eq!((gone.seq, gone.rev), (3, 4));
    assert_eq!(store.head(a).await.ok(), Some(4));
    assert_eq!(store.head(b).await.ok(), Some(1));
}

/// The changes feed gives edits in their current state and deletes as tombstones.
pub async fn edits_and_deletes_appear_in_the_changes_feed(subject: &Subject) {
    let store = subject.store.as_ref();
    let t = thread();
    let all = fill(store, t, 4).await; // revs 1..=4
    let position = store.head(t).await.unwrap();
    assert_eq!(position, 4);
    let edited = edit(store, &all[1], "edited while away").await; // rev 5
    let gone = delete(store, &all[2]).await; // rev 6
    let newer = insert(store, &message(t, user(), T0 + 99, "new while away")).await; // 7
    let since = store.changes(t, position, limit("200")).await.unwrap();
    assert_eq!(
        since.changes,
        vec![
            Change::Message(edited.clone()),
            Change::Deleted(gone),
            Change::Message(newer.clone()),
        ]
    );
    assert_eq!(
        since.changes.iter().map(Change::kind).collect::<Vec<_>>(),
        [codec::UPDATED, codec::DELETED, codec::CREATED]
    );
    assert_eq!((since.next, since.has_more), (7, false));
    // Nothing new: the same position back.
    let idle = store.changes(t, 7, limit("200")).await.unwrap();
    assert!(idle.changes.is_empty());
    assert_eq!((idle.next, idle.has_more), (7, false));
    // From the start: every message once, in its current state, by rev.
    let everything = store.changes(t, 0, limit("200")).await.unwrap();
    let revs: Vec<i64> = everything.changes.iter().map(Change::rev).collect();
    assert_eq!(revs, [1, 4, 5, 6, 7]);
    assert_eq!(everything.changes[0], Change::Message(all[0].clone()));
}

/// The changes feed read in small pages gives every change once, in order.
pub async fn the_changes_feed_pages_without_gaps(subject: &Subject) {
    let store = subject.store.as_ref();
    let t = thread();
    let all = fill(store, t, 25).await;
    let mut since = 0;
    let mut seen = Vec::new();
    let mut reads = 0;
    loop {
        let read = store.changes(t, since, limit("10")).await.unwrap();
        assert!(read.changes.len() <= 10);
        seen.extend(read.changes.iter().map(Change::id));
        since = read.next;
        reads += 1;
        if !read.has_more {
            break;
        }
        assert!(!read.changes.is_empty(), "more was promised");
    }
    assert_eq!(reads, 3);
    assert_eq!(since, 25);
    assert_eq!(seen, all.iter().map(|m| m.id).collect::<Vec<_>>());
}
