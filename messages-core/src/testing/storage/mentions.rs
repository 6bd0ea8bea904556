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
