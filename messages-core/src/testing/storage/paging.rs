//! Paging: keyset pages in both directions, exact `has_more`, cursors, `around`, `locate`.

use super::*;
use crate::changes::Change;
use crate::error::Error;
use crate::message::{Message, MessageId};
use crate::page::PageQuery;

/// An empty thread pages as empty, at position 0, in every direction.
pub async fn empty_thread(subject: &Subject) {
    let store = subject.store.as_ref();
    let t = thread();
    let p = page(store, t, PageQuery::Newest, 10).await;
    assert!(p.items.is_empty() && !p.has_more && p.next_cursor.is_none());
    assert_eq!(p.rev, 0, "a thread never written is at position 0");
    assert_eq!(store.head(t).await.ok(), Some(0));
    let changes = store.changes(t, 0, limit("10")).await.unwrap();
    assert!(changes.changes.is_empty() && !changes.has_more && changes.next == 0);
}

/// Pages newest first and oldest first give every message once, with an exact `has_more`.
pub async fn pages_exactly_in_both_directions(subject: &Subject) {
    let store = subject.store.as_ref();
    let t = thread();
    let all = fill(store, t, 25).await;
    let pages = walk(store, t, PageQuery::Newest, 10).await;
    let sizes: Vec<usize> = pages.iter().map(|p| p.items.len()).collect();
    assert_eq!(sizes, [10, 10, 5]);
    assert_eq!(
        pages.iter().map(|p| p.has_more).collect::<Vec<_>>(),
        [true, true, false]
    );
    let newest_first: Vec<MessageId> = all.iter().rev().map(|m| m.id).collect();
    assert_eq!(ids(&pages), newest_first);
    assert_eq!(
        pages[0].items[0], all[24],
        "pages return the stored message"
    );

    // Catching up from the oldest message: the 24 newer ones, oldest first.
    let pages = walk(store, t, PageQuery::After(all[0].seq), 10).await;
    assert_eq!(
        pages.iter().map(|p| p.items.len()).collect::<Vec<_>>(),
        [10, 10, 4]
    );
    let oldest_first: Vec<MessageId> = all[1..].iter().map(|m| m.id).collect();
    assert_eq!(ids(&pages), oldest_first);

    // The same position names the same place, whichever way it is followed.
    let middle = all[12].seq;
    let older = page(store, t, PageQuery::Before(middle), 200).await;
    let newer = page(store, t, PageQuery::After(middle), 200).await;
    assert_eq!(older.items.len(), 12);
    assert_eq!(newer.items.len(), 12);
    assert_eq!(older.items[0].id, all[11].id);
    assert_eq!(newer.items[0].id, all[13].id);
    // Past either end: empty, and no more.
    let past = page(store, t, PageQuery::After(all[24].seq), 10).await;
    assert!(past.items.is_empty() && !past.has_more);
    let before = page(store, t, PageQuery::Before(all[0].seq), 10).await;
    assert!(before.items.is_empty() && !before.has_more);
}

/// A last page that is exactly full says there is no more.
pub async fn a_full_last_page_has_no_more(subject: &Subject) {
    let store = subject.store.as_ref();
    let t = thread();
    fill(store, t, 20).await;
    let pages = walk(store, t, PageQuery::Newest, 10).await;
    assert_eq!(pages.len(), 2, "no empty third page");
    assert!(pages[0].has_more);
    assert!(!pages[1].has_more);
    assert_eq!(pages[1].items.len(), 10);
}

/// A cursor still pages after the message it names is deleted.
pub async fn a_cursor_survives_deletion_of_its_message(subject: &Subject) {
    let store = subject.store.as_ref();
    let t = thread();
    let all = fill(store, t, 12).await;
    let first = page(store, t, PageQuery::Newest, 5).await;
    let cursor = first
        .next_cursor
        .unwrap_or_else(|| panic!("cursor expected"));
    let at_cursor = &all[7];
    assert_eq!(cursor, crate::Cursor::Seq(at_cursor.seq));
    delete(store, at_cursor).await;
    let next = page(store, t, PageQuery::Before(seq_of(cursor)), 5).await;
    let expected: Vec<MessageId> = all[2..7].iter().rev().map(|m| m.id).collect();
    assert_eq!(
        next.items.iter().map(|m| m.id).collect::<Vec<_>>(),
        expected
    );
    let back = page(store, t, PageQuery::After(seq_of(cursor)), 10).await;
    assert_eq!(
        back.items.iter().map(|m| m.id).collect::<Vec<_>>(),
        all[8..].iter().map(|m| m.id).collect::<Vec<_>>()
    );
}

/// A deleted message is in no page.
pub async fn deleted_messages_never_appear(subject: &Subject) {
    let store = subject.store.as_ref();
    let t = thread();
    let all = fill(store, t, 9).await;
    for m in all.iter().step_by(3) {
        delete(store, m).await;
    }
    let live: Vec<MessageId> = all
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 3 != 0)
        .map(|(_, m)| m.id)
        .collect();
    let newest = ids(&walk(store, t, PageQuery::Newest, 2).await);
    assert_eq!(newest, live.iter().rev().copied().collect::<Vec<_>>());
    assert_eq!(ids(&walk(store, t, PageQuery::After(0), 2).await), live);
    assert!(matches!(
        store.get(t, all[0].id).await,
        Err(Error::NotFound)
    ));
    assert_eq!(store.get(t, all[1].id).await.ok().as_ref(), Some(&all[1]));
}

/// Messages created in the same microsecond page once each.
pub async fn equal_timestamps_page_exactly_once(subject: &Subject) {
    let store = subject.store.as_ref();
    let t = thread();
    let author = user();
    let mut all = Vec::new();
    for i in 0..30 {
        all.push(insert(store, &message(t, author, T0, &format!("same {i}"))).await);
    }
    // The number orders them, not the clock.
    let down = ids(&walk(store, t, PageQuery::Newest, 4).await);
    assert_eq!(down, all.iter().rev().map(|m| m.id).collect::<Vec<_>>());
    let up = ids(&walk(store, t, PageQuery::After(0), 4).await);
    assert_eq!(up, all.iter().map(|m| m.id).collect::<Vec<_>>());
}

/// Messages inserted between two page loads cause no overlap and no gap.
pub async fn inserts_between_loads_cause_no_overlap_or_gap(subject: &Subject) {
    let store = subject.store.as_ref();
    let t = thread();
    let all = fill(store, t, 10).await;
    let first = page(store, t, PageQuery::Newest, 4).await;
    // A new message arrives between the two loads, stamped earlier than all the others (a
    // clock that went back): the number still puts it last.
    let late = insert(store, &message(t, user(), T0 - 1_000, "late")).await;
    let cursor = first
        .next_cursor
        .unwrap_or_else(|| panic!("cursor expected"));
    let rest = ids(&walk(store, t, PageQuery::Before(seq_of(cursor)), 4).await);
    let mut seen: Vec<MessageId> = first.items.iter().map(|m| m.id).collect();
    seen.extend(rest);
    assert_eq!(
        seen,
        all.iter().rev().map(|m| m.id).collect::<Vec<_>>(),
        "older pages ignore the newcomer"
    );
    // A client catching up from its newest message finds exactly the newcomer.
    let catch_up = page(store, t, PageQuery::After(first.items[0].seq), 10).await;
    assert_eq!(catch_up.items, vec![late]);
    assert!(!catch_up.has_more);
}

/// A long run of deleted messages never yields an empty page while more are promised.
pub async fn deleted_runs_never_produce_empty_pages(subject: &Subject) {
    let store = subject.store.as_ref();
    let t = thread();
    let all = fill(store, t, 310).await;
    for m in &all[5..305] {
        delete(store, m).await;
    }
    let pages = walk(store, t, PageQuery::Newest, 3).await;
    let listed = ids(&pages);
    let expected: Vec<MessageId> = all[..5]
        .iter()
        .chain(&all[305..])
        .rev()
        .map(|m| m.id)
        .collect();
    assert_eq!(listed, expected);
    let up = walk(store, t, PageQuery::After(0), 3).await;
    assert_eq!(ids(&up), expected.iter().rev().copied().collect::<Vec<_>>());
}

/// A page's `rev` is the thread's position its rows reflect.
pub async fn a_page_reflects_its_rev(subject: &Subject) {
    let store = subject.store.as_ref();
    let t = thread();
    let all = fill(store, t, 6).await;
    edit(store, &all[0], "edited").await;
    delete(store, &all[5]).await;
    for query in [PageQuery::Newest, PageQuery::Before(4), PageQuery::After(1)] {
        let p = page(store, t, query, 10).await;
        assert_eq!(p.rev, 8, "{query:?}: the thread's position");
        assert!(p.items.iter().all(|m| m.rev <= p.rev), "{query:?}");
    }
    // Following the changes from a page's rev misses nothing written after it.
    let p = page(store, t, PageQuery::Newest, 10).await;
    let later = insert(store, &message(t, user(), T0 + 50, "after the page")).await;
    let changes = store.changes(t, p.rev, limit("10")).await.unwrap();
    assert_eq!(changes.changes, vec![Change::Message(later)]);
}

/// `around` gives the window around the first, the last and a deleted message.
pub async fn around_the_first_the_last_and_a_deleted_message(subject: &Subject) {
    let store = subject.store.as_ref();
    let t = thread();
    let all = fill(store, t, 11).await;
    let ids_of = |items: &[Message]| items.iter().map(|m| m.id).collect::<Vec<_>>();
    let around = |id| async move { store.around(t, id, 3).await.expect("around") };
    let middle = around(all[5].id).await;
    assert_eq!(ids_of(&middle.items), ids_of(&all[2..9]));
    assert!(middle.has_more_before && middle.has_more_after);
    assert_eq!(middle.rev, 11);
    let first = around(all[0].id).await;
    assert_eq!(ids_of(&first.items), ids_of(&all[..4]));
    assert!(!first.has_more_before && first.has_more_after);
    let last = around(all[10].id).await;
    assert_eq!(ids_of(&last.items), ids_of(&all[7..]));
    assert!(last.has_more_before && !last.has_more_after);
    // A deleted message still anchors; it is not among the items.
    delete(store, &all[5]).await;
    let deleted = around(all[5].id).await;
    let mut expected = ids_of(&all[2..5]);
    expected.extend(ids_of(&all[6..9]));
    assert_eq!(ids_of(&deleted.items), expected);
    assert_eq!(deleted.rev, 12);
    // Unknown, or of another thread: not found.
    assert!(matches!(
        store.around(t, MessageId::new_v7(), 3).await,
        Err(Error::NotFound)
    ));
    assert!(matches!(
        store.around(thread(), all[1].id, 3).await,
        Err(Error::NotFound)
    ));
}

/// `locate` finds a message's `seq`, deleted or not.
pub async fn locate_finds_deleted_messages_too(subject: &Subject) {
    let store = subject.store.as_ref();
    let t = thread();
    let all = fill(store, t, 3).await;
    delete(store, &all[1]).await;
    for m in &all {
        assert_eq!(store.locate(t, m.id).await.ok(), Some(Some(m.seq)));
    }
    assert_eq!(store.locate(t, MessageId::new_v7()).await.ok(), Some(None));
    assert_eq!(store.locate(thread(), all[0].id).await.ok(), Some(None));
}
