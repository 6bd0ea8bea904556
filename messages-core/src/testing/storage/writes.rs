//! Writes: edits and deletes, and who may make them.

use super::*;
use crate::error::Error;
use crate::events::codec;
use crate::message::{Limits, MessageId, MessagePatch, Timestamp};
use crate::page::PageQuery;

/// An edit moves a message's `rev`, never its place in pages.
pub async fn an_edit_never_moves_a_message(subject: &Subject) {
    let store = subject.store.as_ref();
    let t = thread();
    let all = fill(store, t, 5).await;
    let target = &all[2];
    let patch = MessagePatch::new(
        Some("edited".into()),
        Some(vec!["a.txt".into()]),
        &Limits::default(),
    )
    .unwrap();
    let now = Timestamp::from_micros(T0 + 5_000_000);
    let edited = store
        .update_as(t, target.id, target.user_id, &patch, now)
        .await
        .expect("update");
    assert_eq!(edited.content, "edited");
    assert_eq!(edited.paths, ["a.txt"]);
    assert_eq!(edited.created_at, target.created_at);
    assert_eq!(edited.updated_at, now);
    assert_eq!(edited.kind, target.kind);
    assert_eq!(edited.seq, target.seq, "an edit keeps the message's place");
    assert_eq!(edited.rev, 6, "an edit takes the thread's next number");
    let listed = page(store, t, PageQuery::Newest, 10).await;
    assert_eq!(
        listed.items.iter().map(|m| m.id).collect::<Vec<_>>(),
        all.iter().rev().map(|m| m.id).collect::<Vec<_>>()
    );
    assert_eq!(listed.items[2], edited);
    // Only the named fields change.
    let paths_only = MessagePatch::new(None, Some(vec![]), &Limits::default()).unwrap();
    let again = store
        .update_as(t, target.id, target.user_id, &paths_only, now)
        .await
        .expect("update");
    assert_eq!(again.content, "edited");
    assert!(again.paths.is_empty());
    assert_eq!(again.rev, 7);
}

/// Only a message's author edits or deletes it.
pub async fn only_the_author_changes_a_message(subject: &Subject) {
    let store = subject.store.as_ref();
    let t = thread();
    let all = fill(store, t, 2).await;
    let m = &all[0];
    let stranger = user();
    let patch = MessagePatch::new(Some("x".into()), None, &Limits::default()).unwrap();
    let now = Timestamp::from_micros(T0 + 10);
    let by = |user| crate::removal::Removal::by_author(user);
    assert!(matches!(
        store.update_as(t, m.id, stranger, &patch, now).await,
        Err(Error::Forbidden)
    ));
    assert!(matches!(
        store.delete_as(t, m.id, &by(stranger), now).await,
        Err(Error::Forbidden)
    ));
    // Another thread, or an unknown id: not found, whoever asks.
    let other = thread();
    assert!(matches!(
        store.update_as(other, m.id, m.user_id, &patch, now).await,
        Err(Error::NotFound)
    ));
    assert!(matches!(
        store.delete_as(other, m.id, &by(m.user_id), now).await,
        Err(Error::NotFound)
    ));
    assert!(matches!(store.get(other, m.id).await, Err(Error::NotFound)));
    let unknown = MessageId::new_v7();
    assert!(matches!(
        store.delete_as(t, unknown, &by(m.user_id), now).await,
        Err(Error::NotFound)
    ));
    // Nothing changed, and no refused write took a number.
    assert_eq!(store.get(t, m.id).await.ok().as_ref(), Some(m));
    assert_eq!(store.head(t).await.ok(), Some(2));
    // Deleted: gone for reads, edits and second deletes, for the author too.
    delete(store, m).await;
    assert!(matches!(store.get(t, m.id).await, Err(Error::NotFound)));
    assert!(matches!(
        store.update_as(t, m.id, m.user_id, &patch, now).await,
        Err(Error::NotFound)
    ));
    assert!(matches!(
        store.delete_as(t, m.id, &by(m.user_id), now).await,
        Err(Error::NotFound)
    ));
    assert!(matches!(
        store.delete_as(t, m.id, &by(stranger), now).await,
        Err(Error::NotFound)
    ));
    assert_eq!(
        store.head(t).await.ok(),
        Some(3),
        "one number for one delete"
    );
}

/// An edit that would leave a message blank is refused and changes nothing.
pub async fn a_blank_edit_is_refused(subject: &Subject) {
    let store = subject.store.as_ref();
    let t = thread();
    let all = fill(store, t, 1).await;
    let m = &all[0];
    let blank = MessagePatch::new(Some("   ".into()), None, &Limits::default()).unwrap();
    let result = store
        .update_as(t, m.id, m.user_id, &blank, Timestamp::from_micros(T0 + 9))
        .await;
    assert!(
        matches!(
            result,
            Err(Error::Invalid {
                field: "content",
                ..
            })
        ),
        "{result:?}"
    );
    assert_eq!(
        store.get(t, m.id).await.ok().as_ref(),
        Some(m),
        "a refused edit changes nothing"
    );
    assert_eq!(store.head(t).await.ok(), Some(1), "and takes no number");
}

/// A moderator removes anyone's message, with a reason; the tombstone, the changes feed and
/// the event name the remover when not the author and keep the reason.
pub async fn a_moderator_removes_any_message_with_a_reason(subject: &Subject) {
    use crate::changes::Change;
    use crate::events::codec::{EventBody, decode};
    use crate::removal::Removal;

    let store = subject.store.as_ref();
    super::outbox::drain(subject.store.as_ref()).await;
    let t = thread();
    let all = fill(store, t, 3).await;
    let author = all[0].user_id;
    let moderator = user();
    let now = Timestamp::from_micros(T0 + 20);
    let removal = Removal::new(moderator, true, Some("spam".into())).unwrap();
    let tombstone = store
        .delete_as(t, all[0].id, &removal, now)
        .await
        .expect("a moderator removes another's message");
    assert_eq!(tombstone.deleted_by, Some(moderator));
    assert_eq!(tombstone.reason.as_deref(), Some("spam"));
    assert_eq!((tombstone.seq, tombstone.rev), (all[0].seq, 4));

    // The author removing their own, with a reason: no `deleted_by`.
    let own = Removal::new(author, false, Some("typo".into())).unwrap();
    let second = store
        .delete_as(t, all[1].id, &own, now)
        .await
        .expect("the author removes theirs");
    assert_eq!(
        (second.deleted_by, second.reason.as_deref()),
        (None, Some("typo"))
    );
    // A moderator who wrote the message is its author: no `deleted_by`, the reason kept.
    let mine = message(t, moderator, T0 + 30, "mine");
    let mine = insert(store, &mine).await;
    let third = store
        .delete_as(t, mine.id, &removal, now)
        .await
        .expect("a moderator removes their own");
    assert_eq!(third.deleted_by, None);
    // Gone is gone, for a moderator too; and a non-moderator still may not.
    assert!(matches!(
        store.delete_as(t, all[0].id, &removal, now).await,
        Err(Error::NotFound)
    ));
    assert!(matches!(
        store
            .delete_as(t, all[2].id, &Removal::by_author(moderator), now)
            .await,
        Err(Error::Forbidden)
    ));

    let changes = store.changes(t, 0, limit("100")).await.expect("changes");
    let tombstones: Vec<_> = changes
        .changes
        .iter()
        .filter_map(|c| match c {
            Change::Deleted(d) => Some((d.id, d.deleted_by, d.reason.clone())),
            Change::Message(_) => None,
        })
        .collect();
    assert_eq!(
        tombstones,
        vec![
            (all[0].id, Some(moderator), Some("spam".to_owned())),
            (all[1].id, None, Some("typo".to_owned())),
            (mine.id, None, Some("spam".to_owned())),
        ]
    );

    let events = subject
        .store
        .claim(100, std::time::Duration::from_secs(60))
        .await
        .expect("claim");
    let removed: Vec<_> = events
        .iter()
        .filter(|e| e.kind == codec::DELETED)
        .map(|e| match decode(&e.kind, &e.payload) {
            Ok(EventBody::Deleted(d)) => (d.id, d.deleted_by, d.reason, d.rev),
            other => panic!("a deletion's event: {other:?}"),
        })
        .collect();
    assert_eq!(
        removed,
        vec![
            (all[0].id, Some(moderator), Some("spam".to_owned()), 4),
            (all[1].id, None, Some("typo".to_owned()), 5),
            (mine.id, None, Some("spam".to_owned()), 7),
        ]
    );
}

/// A bulk removal deletes every id or none: each deletion numbered in the order given and
/// evented of its own; one id that is not live in the thread refuses the whole request.
pub async fn a_bulk_removal_is_all_or_nothing(subject: &Subject) {
    use crate::changes::Change;
    use crate::removal::Removal;

    let store = subject.store.as_ref();
    super::outbox::drain(subject.store.as_ref()).await;
    let t = thread();
    let all = fill(store, t, 100).await;
    let moderator = Removal::new(user(), true, Some("raid".into())).unwrap();
    let now = Timestamp::from_micros(T0 + 500);

    // One gone, one unknown, one of another thread: nothing deleted, the id named.
    delete(store, &all[0]).await;
    let elsewhere = fill(store, thread(), 1).await;
    for bad in [all[0].id, MessageId::new_v7(), elsewhere[0].id] {
        let ids = [all[5].id, bad, all[6].id];
        match store.delete_many_as(t, &ids, &moderator, now).await {
            Err(Error::RefusedId { id, .. }) => assert_eq!(id, *bad.as_uuid()),
            other => panic!("expected the refused id {bad}, got {other:?}"),
        }
    }
    // Not a moderator, and one message is another's: forbidden, nothing deleted.
    let stranger = Removal::by_author(user());
    assert!(matches!(
        store.delete_many_as(t, &[all[1].id], &stranger, now).await,
        Err(Error::Forbidden)
    ));
    assert_eq!(
        store.head(t).await.ok(),
        Some(101),
        "no refused removal took a number"
    );
    assert_eq!(
        store
            .page(t, PageQuery::Newest, size(200))
            .await
            .unwrap()
            .items
            .len(),
        99
    );
    let events = subject
        .store
        .claim(1_000, std::time::Duration::from_secs(60))
        .await
        .expect("claim");
    let positions: Vec<i64> = events.iter().map(|e| e.position).collect();
    subject.store.ack(&positions).await.expect("ack");

    // The other 99, newest first, at once: numbered in the order given.
    let ids: Vec<MessageId> = all[1..].iter().rev().map(|m| m.id).collect();
    let tombstones = store
        .delete_many_as(t, &ids, &moderator, now)
        .await
        .expect("a bulk removal");
    assert_eq!(
        tombstones.iter().map(|d| d.id).collect::<Vec<_>>(),
        ids,
        "in the order given"
    );
    assert_eq!(
        tombstones.iter().map(|d| d.rev).collect::<Vec<_>>(),
        (102..=200).collect::<Vec<i64>>()
    );
    assert!(
        tombstones
            .iter()
            .all(|d| d.deleted_by == Some(moderator.by()) && d.reason.as_deref() == Some("raid"))
    );
    let page = store.page(t, PageQuery::Newest, size(200)).await.unwrap();
    assert!(page.items.is_empty());
    let changes = store.changes(t, 101, limit("1000")).await.expect("changes");
    assert!(
        changes
            .changes
            .iter()
            .all(|c| matches!(c, Change::Deleted(_)))
    );
    assert_eq!(changes.changes.len(), 99);
    let events = subject
        .store
        .claim(1_000, std::time::Duration::from_secs(60))
        .await
        .expect("claim");
    let sequences: Vec<i64> = events.iter().map(|e| e.sequence).collect();
    assert_eq!(
        sequences,
        (102..=200).collect::<Vec<i64>>(),
        "an event each"
    );
    assert!(events.iter().all(|e| e.kind == codec::DELETED));
    // The author alone may bulk-remove their own in the store (the service asks for a
    // moderator; the store checks each message's author).
    let mine = fill(store, t, 2).await;
    let own = Removal::by_author(mine[0].user_id);
    let ids = [mine[1].id, mine[0].id];
    assert_eq!(
        store
            .delete_many_as(t, &ids, &own, now)
            .await
            .expect("their own")
            .len(),
        2
    );
}

/// A bulk removal that names a message the remover may not remove and an id that is not a
/// live message of the thread is refused for the missing id, whichever comes first: every id
/// is looked at for existence before any for permission, on every store. Nothing is removed
/// and no number taken.
pub async fn a_bulk_removal_names_a_missing_id_before_a_forbidden_one(subject: &Subject) {
    let store = subject.store.as_ref();
    let t = thread();
    let theirs = insert(store, &message(t, user(), T0, "someone else's")).await;
    let stranger = crate::removal::Removal::by_author(user());
    let missing = MessageId::new_v7();
    let now = Timestamp::from_micros(T0 + 5);
    for ids in [[theirs.id, missing], [missing, theirs.id]] {
        let refused = store.delete_many_as(t, &ids, &stranger, now).await;
        assert!(
            matches!(refused, Err(Error::RefusedId { id, .. }) if id == *missing.as_uuid()),
            "{ids:?}: {refused:?}"
        );
    }
    assert!(matches!(
        store.delete_many_as(t, &[theirs.id], &stranger, now).await,
        Err(Error::Forbidden)
    ));
    assert_eq!(store.head(t).await.ok(), Some(1), "no number taken");
    assert!(store.get(t, theirs.id).await.is_ok(), "nothing removed");
}
