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
        .update(t, target.id, target.user_id, &patch, now, codec::updated)
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
        .update(
            t,
            target.id,
            target.user_id,
            &paths_only,
            now,
            codec::updated,
        )
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
    let ev = || codec::deleted(t, m.id, now);
    assert!(matches!(
        store
            .update(t, m.id, stranger, &patch, now, codec::updated)
            .await,
        Err(Error::Forbidden)
    ));
    assert!(matches!(
        store.delete(t, m.id, stranger, now, ev()).await,
        Err(Error::Forbidden)
    ));
    // Another thread, or an unknown id: not found, whoever asks.
    let other = thread();
    assert!(matches!(
        store
            .update(other, m.id, m.user_id, &patch, now, codec::updated)
            .await,
        Err(Error::NotFound)
    ));
    assert!(matches!(
        store.delete(other, m.id, m.user_id, now, ev()).await,
        Err(Error::NotFound)
    ));
    assert!(matches!(store.get(other, m.id).await, Err(Error::NotFound)));
    let unknown = MessageId::new_v7();
    assert!(matches!(
        store.delete(t, unknown, m.user_id, now, ev()).await,
        Err(Error::NotFound)
    ));
    // Nothing changed, and no refused write took a number.
    assert_eq!(store.get(t, m.id).await.ok().as_ref(), Some(m));
    assert_eq!(store.head(t).await.ok(), Some(2));
    // Deleted: gone for reads, edits and second deletes, for the author too.
    delete(store, m).await;
    assert!(matches!(store.get(t, m.id).await, Err(Error::NotFound)));
    assert!(matches!(
        store
            .update(t, m.id, m.user_id, &patch, now, codec::updated)
            .await,
        Err(Error::NotFound)
    ));
    assert!(matches!(
        store.delete(t, m.id, m.user_id, now, ev()).await,
        Err(Error::NotFound)
    ));
    assert!(matches!(
        store.delete(t, m.id, stranger, now, ev()).await,
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
        .update(
            t,
            m.id,
            m.user_id,
            &blank,
            Timestamp::from_micros(T0 + 9),
            codec::updated,
        )
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
