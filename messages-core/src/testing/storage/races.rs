//! Races: many writers at once on one thread, and a follower beside them.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::error::Error;
use crate::message::{
    IdempotencyKey, Limits, Message, MessageId, MessageKind, NewMessage, RequestFingerprint,
    Timestamp,
};
use crate::page::{PageQuery, PageSize};
use crate::write::Created;

/// Concurrent creates on one thread are each listed once.
pub async fn concurrent_creates_are_each_listed_once(subject: &Subject) {
    let store = Arc::clone(&subject.store);
    let t = thread();
    let tasks: Vec<_> = (0..32)
        .map(|task| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let author = user();
                let mut made = Vec::new();
                for i in 0..5 {
                    let m = message(t, author, T0 + (i * 32 + task), &format!("{task}/{i}"));
                    made.push(insert(store.as_ref(), &m).await);
                }
                made
            })
        })
        .collect();
    let mut created = Vec::new();
    for task in tasks {
        created.extend(task.await.expect("task"));
    }
    let listed = ids(&walk(store.as_ref(), t, PageQuery::Newest, 7).await);
    assert_eq!(listed.len(), 160, "every create listed, none twice");
    assert_eq!(
        listed.iter().copied().collect::<HashSet<_>>(),
        created.iter().map(|m| m.id).collect::<HashSet<_>>()
    );
    // Numbered 1 to 160, each once.
    let mut seqs: Vec<i64> = created.iter().map(|m| m.seq).collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=160).collect::<Vec<_>>());
}

/// A crowd of writers on one thread is numbered 1 to 64 without a gap; retries take no number.
///
/// 64 writers at once on one thread (a store may commit them together), a
/// quarter with idempotency keys, and, racing them, retries of a key used before (answered
/// with the original) and a reuse of it with another body (a conflict). Every new message gets
/// its own number, 1 to 64 without a gap; retries take none; the events carry the numbers.
pub async fn a_crowd_on_one_thread_with_keys_and_retries(subject: &Subject) {
    let store = Arc::clone(&subject.store);
    let t = thread();
    let author = user();
    let limits = Limits::default();
    let text = |s: &str| NewMessage::new(MessageKind::Text, s.into(), vec![], &limits).unwrap();
    let key = |s: &str| IdempotencyKey::parse(s).unwrap();
    // The key used before the crowd arrives.
    let used = text("the original");
    let used_key = key("used-before");
    let original = Message::from_new(
        MessageId::new_v7(),
        t,
        author,
        used.clone(),
        Timestamp::from_micros(T0),
    );
    let first = store
        .create_with(
            &original,
            Some(Keyed {
                key: &used_key,
                fingerprint: RequestFingerprint::of(&used),
            }),
        )
        .await
        .unwrap();
    let Created::New(original) = first else {
        panic!("expected a new message")
    };

    enum Expect {
        New,
        Replay,
        Conflict,
    }
    let mut tasks = Vec::new();
    for i in 0..72u32 {
        let store = Arc::clone(&store);
        let (new, key, expect) = match i {
            0..=47 => (text(&format!("plain {i}")), None, Expect::New),
            48..=63 => (
                text(&format!("keyed {i}")),
                Some(key(&format!("crowd-{i}"))),
                Expect::New,
            ),
            64..=70 => (used.clone(), Some(used_key.clone()), Expect::Replay),
            _ => (
                text("another body"),
                Some(used_key.clone()),
                Expect::Conflict,
            ),
        };
        let m = Message::from_new(
            MessageId::new_v7(),
            t,
            author,
            new.clone(),
            Timestamp::from_micros(T0 + 1 + i64::from(i)),
        );
        tasks.push(tokio::spawn(async move {
            let fingerprint = RequestFingerprint::of(&new);
            let idem = key.as_ref().map(|key| Keyed { key, fingerprint });
            (expect, store.create_with(&m, idem).await)
        }));
    }
    let mut seqs = vec![original.seq];
    for task in tasks {
        let (expect, outcome) = task.await.expect("task");
        match (expect, outcome) {
            (Expect::New, Ok(Created::New(m))) => {
                assert_eq!(m.rev, m.seq);
                let stored = store.get(t, m.id).await.unwrap();
                assert_eq!(stored, m, "the answer is the stored message");
                seqs.push(m.seq);
            }
            (Expect::Replay, Ok(Created::Replayed(m))) => assert_eq!(m.id, original.id),
            (Expect::Conflict, Err(Error::IdempotencyConflict)) => {}
            (_, other) => panic!("unexpected outcome: {other:?}"),
        }
    }
    seqs.sort_unstable();
    assert_eq!(
        seqs,
        (1..=65).collect::<Vec<i64>>(),
        "numbered 1 to 65, each once"
    );
    assert_eq!(
        store.head(t).await.ok(),
        Some(65),
        "retries and the conflict took no number"
    );
    let listed = ids(&walk(store.as_ref(), t, PageQuery::Newest, 20).await);
    assert_eq!(listed.len(), 65);
    let events = subject
        .store
        .claim(1_000, Duration::from_secs(60))
        .await
        .expect("claim");
    let mut numbered: Vec<i64> = events
        .iter()
        .filter(|e| e.thread_id == t)
        .map(|e| e.sequence)
        .collect();
    numbered.sort_unstable();
    assert_eq!(
        numbered,
        (1..=65).collect::<Vec<i64>>(),
        "one event per new message, numbered"
    );
}

/// Writers racing a follower never hide a message from it.
///
/// Writers race on one thread while a reader follows it, with the changes
/// feed and with `after_seq`, from positions it takes mid-run. At the end every acknowledged
/// message was seen exactly once by each way of following, in order.
pub async fn racing_writers_never_hide_a_message_from_a_follower(subject: &Subject) {
    use std::sync::atomic::{AtomicBool, Ordering};
    let store = Arc::clone(&subject.store);
    let t = thread();
    let done = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let author = user();
                let mut acknowledged = Vec::new();
                for i in 0..40 {
                    let m = message(t, author, T0 + i, &format!("w{w} #{i}"));
                    acknowledged.push(insert(store.as_ref(), &m).await.id);
                }
                acknowledged
            })
        })
        .collect();
    let follower = {
        let store = Arc::clone(&store);
        let done = Arc::clone(&done);
        tokio::spawn(async move {
            let (mut since, mut after) = (0i64, 0i64);
            let (mut by_changes, mut by_after) = (Vec::new(), Vec::new());
            let mut last_rev = 0;
            loop {
                let finished = done.load(Ordering::SeqCst);
                let read = store.changes(t, since, limit("7")).await.expect("changes");
                for change in &read.changes {
                    assert!(change.rev() > last_rev, "changes come in rev order");
                    last_rev = change.rev();
                    by_changes.push(change.id());
                }
                since = read.next;
                let p = store
                    .page(
                        t,
                        PageQuery::After(after),
                        PageSize::new(7).unwrap_or_default(),
                    )
                    .await
                    .expect("page");
                if let Some(last) = p.items.last() {
                    assert!(p.items.windows(2).all(|w| w[0].seq < w[1].seq));
                    after = last.seq;
                }
                by_after.extend(p.items.iter().map(|m| m.id));
                if finished && !read.has_more && !p.has_more {
                    return (by_changes, by_after);
                }
                tokio::task::yield_now().await;
            }
        })
    };
    let mut acknowledged = HashSet::new();
    for writer in writers {
        acknowledged.extend(writer.await.expect("writer"));
    }
    done.store(true, Ordering::SeqCst);
    let (by_changes, by_after) = follower.await.expect("follower");
    for (way, seen) in [("changes", by_changes), ("after_seq", by_after)] {
        let unique: HashSet<MessageId> = seen.iter().copied().collect();
        assert_eq!(unique.len(), seen.len(), "{way}: a message seen twice");
        assert_eq!(
            unique, acknowledged,
            "{way}: every acknowledged message seen"
        );
    }
}
