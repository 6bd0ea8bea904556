//! The outbox: one event per write, numbered like its change.

use std::collections::HashSet;
use std::time::Duration;

use super::*;
use crate::events::codec;
use crate::message::{Limits, MessagePatch, Timestamp};
use crate::storage::Outbox;

pub(super) async fn drain(outbox: &dyn Outbox) {
    loop {
        let batch = outbox
            .claim(1_000, Duration::from_secs(60))
            .await
            .expect("claim");
        if batch.is_empty() {
            return;
        }
        let positions: Vec<i64> = batch.iter().map(|e| e.position).collect();
        outbox.ack(&positions).await.expect("ack");
    }
}

/// Every write leaves exactly one event in the outbox.
pub async fn every_write_leaves_one_event(subject: &Subject) {
    let store = subject.store.as_ref();
    let outbox = subject.store.as_ref();
    drain(outbox).await;
    assert_eq!(outbox.pending().await.ok(), Some((0, None)));
    let t = thread();
    let m = insert(store, &message(t, user(), T0, "evented")).await;
    let edited = edit(store, &m, "changed").await;
    delete(store, &m).await;
    // A refused write leaves no event.
    let patch = MessagePatch::new(Some("again".into()), None, &Limits::default()).unwrap();
    let _ = store
        .update_as(t, m.id, m.user_id, &patch, Timestamp::from_micros(T0 + 2))
        .await;

    let (pending, oldest) = outbox.pending().await.unwrap();
    assert_eq!(pending, 3);
    assert_eq!(oldest, Some(m.created_at));

    let claimed = outbox.claim(10, Duration::from_secs(60)).await.unwrap();
    let kinds: Vec<&str> = claimed.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, [codec::CREATED, codec::UPDATED, codec::DELETED]);
    assert!(claimed.windows(2).all(|w| w[0].position < w[1].position));
    assert!(claimed.iter().all(|e| e.thread_id == t));
    assert_eq!(
        codec::decode(&claimed[0].kind, &claimed[0].payload).ok(),
        Some(codec::EventBody::Created(m.clone()))
    );
    assert_eq!(
        codec::decode(&claimed[1].kind, &claimed[1].payload).ok(),
        Some(codec::EventBody::Updated(edited))
    );
    assert_eq!(
        claimed.iter().map(|e| e.id).collect::<HashSet<_>>().len(),
        3,
        "event ids are unique"
    );

    // Claimed events are invisible to other claimers until their lease ends.
    assert!(
        outbox
            .claim(10, Duration::from_secs(60))
            .await
            .unwrap_or_default()
            .is_empty()
    );
    let positions: Vec<i64> = claimed.iter().map(|e| e.position).collect();
    // Only the events listed go, not those between them.
    outbox.ack(&[positions[0], positions[2]]).await.unwrap();
    assert_eq!(outbox.pending().await.ok().map(|p| p.0), Some(1));

    // A released claim can be claimed again at once, in order.
    insert(store, &message(t, user(), T0 + 4, "released")).await;
    let taken = outbox.claim(10, Duration::from_secs(60)).await.unwrap();
    assert_eq!(taken.len(), 1);
    outbox.release(&[taken[0].position]).await.unwrap();
    let retaken = outbox.claim(10, Duration::from_secs(60)).await.unwrap();
    assert_eq!(
        retaken.iter().map(|e| e.id).collect::<Vec<_>>(),
        vec![taken[0].id]
    );
    outbox.ack(&[retaken[0].position]).await.unwrap();

    // An unacknowledged event comes back once its lease runs out.
    insert(store, &message(t, user(), T0 + 5, "short lease")).await;
    let short = outbox.claim(10, Duration::from_millis(1)).await.unwrap();
    assert_eq!(short.len(), 1);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let again = outbox.claim(10, Duration::from_secs(60)).await.unwrap();
    assert_eq!(
        again.iter().map(|e| e.id).collect::<Vec<_>>(),
        vec![short[0].id]
    );
    outbox
        .ack(&[again[0].position, positions[1]])
        .await
        .unwrap();
    assert_eq!(outbox.pending().await.ok(), Some((0, None)));
}

/// Each event carries the `seq` and `rev` its change took.
pub async fn events_carry_their_change_numbers(subject: &Subject) {
    let store = subject.store.as_ref();
    let outbox = subject.store.as_ref();
    drain(outbox).await;
    let t = thread();
    let m = insert(store, &message(t, user(), T0, "numbered")).await;
    let edited = edit(store, &m, "numbered, edited").await;
    let gone = delete(store, &m).await;
    let events = outbox.claim(10, Duration::from_secs(60)).await.unwrap();
    let ours: Vec<_> = events.iter().filter(|e| e.thread_id == t).collect();
    assert_eq!(
        ours.iter().map(|e| e.sequence).collect::<Vec<_>>(),
        [1, 2, 3],
        "cloudEvents:sequence is the change's rev"
    );
    assert_eq!(
        ours[0].payload,
        m.to_json(),
        "bodies are closed with the numbers"
    );
    assert_eq!(ours[1].payload, edited.to_json());
    assert_eq!(ours[2].payload, gone.to_json());
    let positions: Vec<i64> = events.iter().map(|e| e.position).collect();
    outbox.ack(&positions).await.unwrap();
}
