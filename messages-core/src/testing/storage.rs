//! The storage contract: what every `MessageStore` and its `Outbox` must do, written once as
//! a list of named cases. [`storage_contract!`](crate::storage_contract) stamps out one test
//! per case for a backend, so a failure names its case and does not hide the others.

use std::any::Any;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use uuid::Uuid;

use super::text_message as message;
use crate::error::Error;
use crate::events::codec;
use crate::message::{
    IdempotencyKey, Limits, Message, MessageId, MessageKind, MessagePatch, NewMessage,
    RequestFingerprint, ThreadId, Timestamp, UserId,
};
use crate::page::{Page, PageQuery, PageSize};
use crate::storage::{Created, Idempotency, MessageStore, Outbox};

/// A store under test: both of its sides, and whatever must live as long as the test (a
/// test database, a temporary directory).
pub struct Subject {
    /// The message side.
    pub store: Arc<dyn MessageStore>,
    /// The relay's side of the same store.
    pub outbox: Arc<dyn Outbox>,
    _keep: Option<Box<dyn Any + Send + Sync>>,
}

impl Subject {
    /// Both sides of `store`.
    pub fn new<S: MessageStore + Outbox>(store: S) -> Self {
        let store = Arc::new(store);
        Subject {
            store: Arc::clone(&store) as Arc<dyn MessageStore>,
            outbox: store,
            _keep: None,
        }
    }

    /// Keeps `guard` alive until the subject drops.
    pub fn keeping(mut self, guard: impl Any + Send + Sync) -> Self {
        self._keep = Some(Box::new(guard));
        self
    }
}

/// Stamps out one `#[tokio::test]` per case of the storage contract, in a module named
/// `$backend`. `$subject` is an expression giving a future of `Option<Subject>`; `None`
/// skips (a backend not configured outside CI).
///
/// ```ignore
/// messages_core::storage_contract!(memory => async {
///     Some(Subject::new(MemoryStore::new()))
/// });
/// ```
#[macro_export]
macro_rules! storage_contract {
    ($backend:ident => $subject:expr) => {
        mod $backend {
            #[allow(unused_imports)]
            use super::*;
            $crate::storage_contract!(@cases $subject;
                empty_thread,
                pages_exactly_in_both_directions,
                a_full_last_page_has_no_more,
                concurrent_creates_are_each_listed_once,
                a_cursor_survives_deletion_of_its_message,
                deleted_messages_never_appear,
                an_edit_never_moves_a_message,
                only_the_author_changes_a_message,
                a_blank_edit_is_refused,
                idempotent_creates,
                equal_timestamps_page_exactly_once,
                inserts_between_loads_cause_no_overlap_or_gap,
                deleted_runs_never_produce_empty_pages,
                every_write_leaves_one_event,
            );
        }
    };
    (@cases $subject:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let subject: Option<$crate::testing::storage::Subject> = $subject.await;
                let Some(subject) = subject else { return };
                $crate::testing::storage::$case(&subject).await;
            }
        )*
    };
}

fn thread() -> ThreadId {
    ThreadId::from_uuid(Uuid::new_v4())
}

fn user() -> UserId {
    UserId::from_uuid(Uuid::new_v4())
}

fn size(n: u32) -> PageSize {
    PageSize::new(n).unwrap_or_else(|e| panic!("{e}"))
}

/// A base time with whole-microsecond precision well inside every backend's range.
const T0: i64 = 1_764_000_000_000_000;

async fn insert(store: &dyn MessageStore, m: &Message) {
    let created = store
        .create(m, None, codec::created(m))
        .await
        .unwrap_or_else(|e| panic!("create: {e}"));
    assert_eq!(created, Created::New(m.clone()));
}

/// Inserts `n` messages one microsecond apart, returning them oldest first.
async fn fill(store: &dyn MessageStore, thread: ThreadId, n: usize) -> Vec<Message> {
    let author = user();
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let m = message(thread, author, T0 + i as i64, &format!("message {i}"));
        insert(store, &m).await;
        out.push(m);
    }
    out
}

async fn page(store: &dyn MessageStore, thread: ThreadId, q: PageQuery, n: u32) -> Page {
    store
        .page(thread, q, size(n))
        .await
        .unwrap_or_else(|e| panic!("page: {e}"))
}

/// Follows cursors from `start` until `has_more` is false, checking on the way that no page
/// is empty while more were promised and that `next_cursor` is present exactly when
/// `has_more`.
async fn walk(store: &dyn MessageStore, thread: ThreadId, start: PageQuery, n: u32) -> Vec<Page> {
    let mut pages = Vec::new();
    let mut query = start;
    loop {
        let p = page(store, thread, query, n).await;
        assert_eq!(
            p.next_cursor.is_some(),
            p.has_more,
            "next_cursor iff has_more"
        );
        if p.has_more {
            assert!(!p.items.is_empty(), "an empty page promised more");
        }
        let next = p.next_cursor;
        pages.push(p);
        match (next, start) {
            (Some(c), PageQuery::After(_)) => query = PageQuery::After(c),
            (Some(c), _) => query = PageQuery::Before(c),
            (None, _) => return pages,
        }
        assert!(pages.len() < 10_000, "pagination does not end");
    }
}

fn ids(pages: &[Page]) -> Vec<MessageId> {
    pages
        .iter()
        .flat_map(|p| p.items.iter().map(|m| m.id))
        .collect()
}

/// Contract case.
pub async fn empty_thread(subject: &Subject) {
    let store = subject.store.as_ref();
    let p = page(store, thread(), PageQuery::Newest, 10).await;
    assert!(p.items.is_empty() && !p.has_more && p.next_cursor.is_none());
}

/// Contract case.
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
    let oldest = crate::Cursor::of(&all[0]);
    let pages = walk(store, t, PageQuery::After(oldest), 10).await;
    assert_eq!(
        pages.iter().map(|p| p.items.len()).collect::<Vec<_>>(),
        [10, 10, 4]
    );
    let oldest_first: Vec<MessageId> = all[1..].iter().map(|m| m.id).collect();
    assert_eq!(ids(&pages), oldest_first);

    // The same cursor names a position, whichever way it is followed.
    let middle = crate::Cursor::of(&all[12]);
    let older = page(store, t, PageQuery::Before(middle), 200).await;
    let newer = page(store, t, PageQuery::After(middle), 200).await;
    assert_eq!(older.items.len(), 12);
    assert_eq!(newer.items.len(), 12);
    assert_eq!(older.items[0].id, all[11].id);
    assert_eq!(newer.items[0].id, all[13].id);
}

/// Contract case.
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

/// Contract case.
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
                    insert(store.as_ref(), &m).await;
                    made.push(m.id);
                }
                made
            })
        })
        .collect();
    let mut expected = HashSet::new();
    for task in tasks {
        expected.extend(task.await.unwrap_or_else(|e| panic!("task: {e}")));
    }
    let listed = ids(&walk(store.as_ref(), t, PageQuery::Newest, 7).await);
    assert_eq!(listed.len(), 160, "every create listed, none twice");
    assert_eq!(listed.iter().copied().collect::<HashSet<_>>(), expected);
}

/// Contract case.
pub async fn a_cursor_survives_deletion_of_its_message(subject: &Subject) {
    let store = subject.store.as_ref();
    let t = thread();
    let all = fill(store, t, 12).await;
    let first = page(store, t, PageQuery::Newest, 5).await;
    let cursor = first
        .next_cursor
        .unwrap_or_else(|| panic!("cursor expected"));
    let at_cursor = &all[7];
    assert_eq!(cursor.id(), at_cursor.id);
    store
        .delete(
            t,
            at_cursor.id,
            at_cursor.user_id,
            Timestamp::from_micros(T0 + 100),
            codec::deleted(t, at_cursor.id, Timestamp::from_micros(T0 + 100)),
        )
        .await
        .unwrap_or_else(|e| panic!("delete: {e}"));
    let next = page(store, t, PageQuery::Before(cursor), 5).await;
    let expected: Vec<MessageId> = all[2..7].iter().rev().map(|m| m.id).collect();
    assert_eq!(
        next.items.iter().map(|m| m.id).collect::<Vec<_>>(),
        expected
    );
    let back = page(store, t, PageQuery::After(cursor), 10).await;
    assert_eq!(
        back.items.iter().map(|m| m.id).collect::<Vec<_>>(),
        all[8..].iter().map(|m| m.id).collect::<Vec<_>>()
    );
}

async fn delete(store: &dyn MessageStore, m: &Message) {
    let at = Timestamp::from_micros(T0 + 1_000_000);
    store
        .delete(
            m.thread_id,
            m.id,
            m.user_id,
            at,
            codec::deleted(m.thread_id, m.id, at),
        )
        .await
        .unwrap_or_else(|e| panic!("delete: {e}"));
}

/// Contract case.
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
    let first = crate::Cursor::of(&all[0]);
    assert_eq!(ids(&walk(store, t, PageQuery::After(first), 2).await), live);
    assert!(matches!(
        store.get(t, all[0].id).await,
        Err(Error::NotFound)
    ));
    assert_eq!(store.get(t, all[1].id).await.ok().as_ref(), Some(&all[1]));
}

/// Contract case.
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
    .unwrap_or_else(|e| panic!("{e}"));
    let now = Timestamp::from_micros(T0 + 5_000_000);
    let edited = store
        .update(t, target.id, target.user_id, &patch, now, &codec::updated)
        .await
        .unwrap_or_else(|e| panic!("update: {e}"));
    assert_eq!(edited.content, "edited");
    assert_eq!(edited.paths, ["a.txt"]);
    assert_eq!(edited.created_at, target.created_at);
    assert_eq!(edited.updated_at, now);
    assert_eq!(edited.kind, target.kind);
    let listed = page(store, t, PageQuery::Newest, 10).await;
    assert_eq!(
        listed.items.iter().map(|m| m.id).collect::<Vec<_>>(),
        all.iter().rev().map(|m| m.id).collect::<Vec<_>>()
    );
    assert_eq!(listed.items[2], edited);
    // Only the named fields change.
    let paths_only =
        MessagePatch::new(None, Some(vec![]), &Limits::default()).unwrap_or_else(|e| panic!("{e}"));
    let again = store
        .update(
            t,
            target.id,
            target.user_id,
            &paths_only,
            now,
            &codec::updated,
        )
        .await
        .unwrap_or_else(|e| panic!("update: {e}"));
    assert_eq!(again.content, "edited");
    assert!(again.paths.is_empty());
}

/// Contract case.
pub async fn only_the_author_changes_a_message(subject: &Subject) {
    let store = subject.store.as_ref();
    let t = thread();
    let all = fill(store, t, 2).await;
    let m = &all[0];
    let stranger = user();
    let patch = MessagePatch::new(Some("x".into()), None, &Limits::default())
        .unwrap_or_else(|e| panic!("{e}"));
    let now = Timestamp::from_micros(T0 + 10);
    let ev = || codec::deleted(t, m.id, now);
    assert!(matches!(
        store
            .update(t, m.id, stranger, &patch, now, &codec::updated)
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
            .update(other, m.id, m.user_id, &patch, now, &codec::updated)
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
    // Nothing changed.
    assert_eq!(store.get(t, m.id).await.ok().as_ref(), Some(m));
    // Deleted: gone for reads, edits and second deletes, for the author too.
    delete(store, m).await;
    assert!(matches!(store.get(t, m.id).await, Err(Error::NotFound)));
    assert!(matches!(
        store
            .update(t, m.id, m.user_id, &patch, now, &codec::updated)
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
}

/// Contract case.
pub async fn a_blank_edit_is_refused(subject: &Subject) {
    let store = subject.store.as_ref();
    let t = thread();
    let all = fill(store, t, 1).await;
    let m = &all[0];
    let blank = MessagePatch::new(Some("   ".into()), None, &Limits::default())
        .unwrap_or_else(|e| panic!("{e}"));
    let result = store
        .update(
            t,
            m.id,
            m.user_id,
            &blank,
            Timestamp::from_micros(T0 + 9),
            &codec::updated,
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
}

/// Contract case.
pub async fn idempotent_creates(subject: &Subject) {
    let store = subject.store.as_ref();
    let t = thread();
    let author = user();
    let limits = Limits::default();
    let key = IdempotencyKey::parse("retry-1").unwrap_or_else(|e| panic!("{e}"));
    let new = NewMessage::new(MessageKind::Text, "once".into(), vec![], &limits)
        .unwrap_or_else(|e| panic!("{e}"));
    let fp = RequestFingerprint::of(&new);
    let idem = Idempotency {
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
    let created = store
        .create(&first, Some(idem), codec::created(&first))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(created, Created::New(first.clone()));

    let retry = Message::from_new(
        MessageId::new_v7(),
        t,
        author,
        new.clone(),
        Timestamp::from_micros(T0 + 1),
    );
    let replayed = store
        .create(&retry, Some(idem), codec::created(&retry))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(replayed, Created::Replayed(first.clone()));
    assert_eq!(
        page(store, t, PageQuery::Newest, 10).await.items,
        vec![first.clone()],
        "the retry stored nothing"
    );

    let other_body = NewMessage::new(MessageKind::Text, "twice".into(), vec![], &limits)
        .unwrap_or_else(|e| panic!("{e}"));
    let other = Message::from_new(
        MessageId::new_v7(),
        t,
        author,
        other_body.clone(),
        Timestamp::from_micros(T0 + 2),
    );
    let conflict = store
        .create(
            &other,
            Some(Idempotency {
                key: &key,
                fingerprint: RequestFingerprint::of(&other_body),
            }),
            codec::created(&other),
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
        store
            .create(&by_other_user, Some(idem), codec::created(&by_other_user))
            .await,
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
        store
            .create(
                &in_other_thread,
                Some(idem),
                codec::created(&in_other_thread)
            )
            .await,
        Ok(Created::New(_))
    ));

    // A retry after the message was deleted still answers with the original.
    delete(store, &first).await;
    let late = Message::from_new(
        MessageId::new_v7(),
        t,
        author,
        new,
        Timestamp::from_micros(T0 + 5),
    );
    assert_eq!(
        store
            .create(&late, Some(idem), codec::created(&late))
            .await
            .ok(),
        Some(Created::Replayed(first))
    );
}

/// Contract case.
pub async fn equal_timestamps_page_exactly_once(subject: &Subject) {
    let store = subject.store.as_ref();
    let t = thread();
    let author = user();
    let mut all: Vec<Message> = (0..30)
        .map(|i| message(t, author, T0, &format!("same {i}")))
        .collect();
    for m in &all {
        insert(store, m).await;
    }
    all.sort_by_key(|m| m.id);
    let down = ids(&walk(store, t, PageQuery::Newest, 4).await);
    assert_eq!(down, all.iter().rev().map(|m| m.id).collect::<Vec<_>>());
    let before_all = crate::Cursor::new(Timestamp::from_micros(T0 - 1), MessageId::new_v7());
    let up = ids(&walk(store, t, PageQuery::After(before_all), 4).await);
    assert_eq!(up, all.iter().map(|m| m.id).collect::<Vec<_>>());
}

/// Contract case.
pub async fn inserts_between_loads_cause_no_overlap_or_gap(subject: &Subject) {
    let store = subject.store.as_ref();
    let t = thread();
    let all = fill(store, t, 10).await;
    let first = page(store, t, PageQuery::Newest, 4).await;
    // A new message arrives between the two loads.
    let late = message(t, user(), T0 + 1_000, "late");
    insert(store, &late).await;
    let cursor = first
        .next_cursor
        .unwrap_or_else(|| panic!("cursor expected"));
    let rest = ids(&walk(store, t, PageQuery::Before(cursor), 4).await);
    let mut seen: Vec<MessageId> = first.items.iter().map(|m| m.id).collect();
    seen.extend(rest);
    assert_eq!(
        seen,
        all.iter().rev().map(|m| m.id).collect::<Vec<_>>(),
        "older pages ignore the newcomer"
    );
    // A client catching up from its newest message finds exactly the newcomer.
    let catch_up = page(
        store,
        t,
        PageQuery::After(crate::Cursor::of(&first.items[0])),
        10,
    )
    .await;
    assert_eq!(catch_up.items, vec![late]);
    assert!(!catch_up.has_more);
}

/// Contract case.
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
    let up = walk(
        store,
        t,
        PageQuery::After(crate::Cursor::new(
            Timestamp::from_micros(0),
            MessageId::from_uuid(Uuid::nil()),
        )),
        3,
    )
    .await;
    assert_eq!(ids(&up), expected.iter().rev().copied().collect::<Vec<_>>());
}

async fn drain(outbox: &dyn Outbox) {
    loop {
        let batch = outbox
            .claim(1_000, Duration::from_secs(60))
            .await
            .unwrap_or_else(|e| panic!("claim: {e}"));
        if batch.is_empty() {
            return;
        }
        let positions: Vec<i64> = batch.iter().map(|e| e.position).collect();
        outbox
            .ack(&positions)
            .await
            .unwrap_or_else(|e| panic!("ack: {e}"));
    }
}

/// Contract case.
pub async fn every_write_leaves_one_event(subject: &Subject) {
    let store = subject.store.as_ref();
    let outbox = subject.outbox.as_ref();
    drain(outbox).await;
    assert_eq!(outbox.pending().await.ok(), Some((0, None)));
    let t = thread();
    let m = message(t, user(), T0, "evented");
    insert(store, &m).await;
    let patch = MessagePatch::new(Some("changed".into()), None, &Limits::default())
        .unwrap_or_else(|e| panic!("{e}"));
    let edited = store
        .update(
            t,
            m.id,
            m.user_id,
            &patch,
            Timestamp::from_micros(T0 + 1),
            &codec::updated,
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    delete(store, &m).await;
    // A refused write leaves no event.
    let _ = store
        .update(
            t,
            m.id,
            m.user_id,
            &patch,
            Timestamp::from_micros(T0 + 2),
            &codec::updated,
        )
        .await;

    let (pending, oldest) = outbox.pending().await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(pending, 3);
    assert_eq!(oldest, Some(m.created_at));

    let claimed = outbox
        .claim(10, Duration::from_secs(60))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
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
    outbox
        .ack(&positions[..2])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(outbox.pending().await.ok().map(|p| p.0), Some(1));

    // A released claim can be claimed again at once, in order.
    let m3 = message(t, user(), T0 + 4, "released");
    insert(store, &m3).await;
    let taken = outbox
        .claim(10, Duration::from_secs(60))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(taken.len(), 1);
    outbox
        .release(&[taken[0].position])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let retaken = outbox
        .claim(10, Duration::from_secs(60))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        retaken.iter().map(|e| e.id).collect::<Vec<_>>(),
        vec![taken[0].id]
    );
    outbox
        .ack(&[retaken[0].position])
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    // An unacknowledged event comes back once its lease runs out.
    let m2 = message(t, user(), T0 + 5, "short lease");
    insert(store, &m2).await;
    let short = outbox
        .claim(10, Duration::from_millis(1))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(short.len(), 1);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let again = outbox
        .claim(10, Duration::from_secs(60))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        again.iter().map(|e| e.id).collect::<Vec<_>>(),
        vec![short[0].id]
    );
    outbox
        .ack(&[again[0].position, positions[2]])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(outbox.pending().await.ok(), Some((0, None)));
}
