//! Idempotency: a retried create answers the first one and takes no number.

use super::*;
use crate::error::Error;
use crate::message::{
    IdempotencyKey, Limits, Message, MessageId, MessageKind, NewMessage, RequestFingerprint,
    Timestamp,
};
use crate::page::PageQuery;
use crate::write::Created;

/// A retried create with the same key answers the first message; another body is a conflict.
pub async fn idempotent_creates(subject: &Subject) {
    let store = subject.store.as_ref();
    let t = thread();
    let author = user();
    let limits = Limits::default();
    let key = IdempotencyKey::parse("retry-1").unwrap();
    let new = NewMessage::new(MessageKind::Text, "once".into(), vec![], &limits).unwrap();
    let fp = RequestFingerprint::of(&new);
    let idem = Keyed {
        key: &key,
        fingerprint: fp,
    };
    let first = Message::from_new(
        MessageId::new_v7(),
        t,
        author,
        new.clone(),
        Timestamp::from_micros(T0),
    );
    let created = store.create_with(&first, Some(idem)).await.unwrap();
    let Created::New(first) = created else {
        panic!("expected a new message: {created:?}");
    };

    let retry = Message::from_new(
        MessageId::new_v7(),
        t,
        author,
        new.clone(),
        Timestamp::from_micros(T0 + 1),
    );
    let replayed = store.create_with(&retry, Some(idem)).await.unwrap();
    assert_eq!(replayed, Created::Replayed(first.clone()));
    assert_eq!(
        page(store, t, PageQuery::Newest, 10).await.items,
        vec![first.clone()],
        "the retry stored nothing"
    );

    let other_body = NewMessage::new(MessageKind::Text, "twice".into(), vec![], &limits).unwrap();
    let other = Message::from_new(
        MessageId::new_v7(),
        t,
        author,
        other_body.clone(),
        Timestamp::from_micros(T0 + 2),
    );
    let conflict = store
        .create_with(
            &other,
            Some(Keyed {
                key: &key,
                fingerprint: RequestFingerprint::of(&other_body),
            }),
        )
        .await;
    assert!(
        matches!(conflict, Err(Error::IdempotencyConflict)),
        "{conflict:?}"
    );

    // Keys are scoped to the thread and the user.
    let by_other_user = Message::from_new(
        MessageId::new_v7(),
        t,
        user(),
        new.clone(),
        Timestamp::from_micros(T0 + 3),
    );
    assert!(matches!(
        store.create_with(&by_other_user, Some(idem)).await,
        Ok(Created::New(_))
    ));
    let in_other_thread = Message::from_new(
        MessageId::new_v7(),
        thread(),
        author,
        new.clone(),
        Timestamp::from_micros(T0 + 4),
    );
    assert!(matches!(
        store.create_with(&in_other_thread, Some(idem)).await,
        Ok(Created::New(_))
    ));

    // A retry after the message was deleted still answers with it (the same message; its
    // `rev` is now its deletion's).
    let tombstone = delete(store, &first).await;
    let late = Message::from_new(
        MessageId::new_v7(),
        t,
        author,
        new,
        Timestamp::from_micros(T0 + 5),
    );
    let replayed = store.create_with(&late, Some(idem)).await.unwrap();
    let Created::Replayed(again) = replayed else {
        panic!("expected a replay: {replayed:?}");
    };
    assert_eq!(
        (again.id, again.seq, again.content.as_str()),
        (first.id, first.seq, "once")
    );
    assert_eq!(again.rev, tombstone.rev);
}

/// An idempotent replay takes no number of the sequence.
pub async fn an_idempotent_replay_takes_no_number(subject: &Subject) {
    let store = subject.store.as_ref();
    let t = thread();
    let author = user();
    let key = IdempotencyKey::parse("once").unwrap();
    let new = NewMessage::new(MessageKind::Text, "x".into(), vec![], &Limits::default()).unwrap();
    let idem = Keyed {
        key: &key,
        fingerprint: RequestFingerprint::of(&new),
    };
    for i in 0..3 {
        let m = Message::from_new(
            MessageId::new_v7(),
            t,
            author,
            new.clone(),
            Timestamp::from_micros(T0 + i),
        );
        store.create_with(&m, Some(idem)).await.unwrap();
    }
    assert_eq!(store.head(t).await.ok(), Some(1));
    let next = insert(store, &message(t, author, T0 + 9, "next")).await;
    assert_eq!(next.seq, 2, "no gap after the replays");
}
