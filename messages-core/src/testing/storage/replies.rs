//! Replies: a reply names a live message of its thread, and a retried reply answers the same
//! message.

use super::*;
use crate::error::Error;
use crate::message::{Limits, MessageKind, NewMessage, RequestFingerprint, Timestamp};

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
    let Created::New(created) = created else {
        panic!("the first create is new");
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
