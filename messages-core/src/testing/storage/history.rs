//! Edit history: every version an edit replaced, each in the sequence.

use super::reactions::react;
use super::*;
use crate::history::Version;
use crate::message::{Limits, Timestamp};
use crate::reaction::ReactionChange;

/// Every edit keeps the version it replaced: the history lists the versions oldest first,
/// each with the number of the change that made it, the current one last. A reaction makes
/// no version.
pub async fn an_edit_keeps_the_version_it_replaced(subject: &Subject) {
    let store = subject.store.as_ref();
    let t = thread();
    let m = insert(store, &message(t, user(), T0, "first")).await;
    let only = store.history(t, m.id).await.unwrap();
    assert_eq!(
        only.versions,
        [Version {
            content: "first".into(),
            paths: vec![],
            mentions: None,
            edited_at: m.created_at,
            rev: m.seq,
        }]
    );
    let second = edit(store, &m, "second").await;
    react(store, &m, user(), "👍", ReactionChange::Add).await;
    let patch = MessagePatch::new(None, Some(vec!["a.txt".into()]), &Limits::default()).unwrap();
    let third_at = Timestamp::from_micros(T0 + 9_000_000);
    let third = store
        .update_as(t, m.id, m.user_id, &patch, third_at)
        .await
        .unwrap();
    let history = store.history(t, m.id).await.unwrap();
    assert_eq!(
        history.versions,
        [
            Version {
                content: "first".into(),
                paths: vec![],
                mentions: None,
                edited_at: m.created_at,
                rev: m.seq,
            },
            Version {
                content: "second".into(),
                paths: vec![],
                mentions: None,
                edited_at: second.updated_at,
                rev: second.rev,
            },
            Version {
                content: "second".into(),
                paths: vec!["a.txt".into()],
                mentions: None,
                edited_at: third_at,
                rev: third.rev,
            },
        ]
    );
}
