//! The storage contract: what every `MessageStore` and its `Outbox` must do, written once as
//! a list of named cases. [`storage_contract!`](crate::storage_contract) stamps out one test
//! per case for a backend, so a failure names its case and does not hide the others.

use std::any::Any;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use uuid::Uuid;

use super::text_message as message;
use crate::changes::{Change, ChangesLimit};
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
                a_crowd_on_one_thread_with_keys_and_retries,
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
                numbers_are_gap_free_per_thread,
                an_idempotent_replay_takes_no_number,
                edits_and_deletes_appear_in_the_changes_feed,
                the_changes_feed_pages_without_gaps,
                a_page_reflects_its_rev,
                around_the_first_the_last_and_a_deleted_message,
                locate_finds_deleted_messages_too,
                racing_writers_never_hide_a_message_from_a_follower,
                events_carry_their_change_numbers,
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

fn limit(n: &str) -> ChangesLimit {
    ChangesLimit::parse(n).unwrap_or_else(|e| panic!("{e}"))
}

/// A base time with whole-microsecond precision well inside every backend's range.
const T0: i64 = 1_764_000_000_000_000;

/// Creates `m`, returning it as the store numbered it.
async fn insert(store: &dyn MessageStore, m: &Message) -> Message {
    let created = store
        .create(m, None, codec::created(m))
        .await
        .unwrap_or_else(|e| panic!("create: {e}"));
    let Created::New(numbered) = created else {
        panic!("a create without a key is new: {created:?}");
    };
    assert_eq!(
        Message {
            seq: m.seq,
            rev: m.rev,
            ..numbered.clone()
        },
        *m,
        "the store keeps the message as given"
    );
    assert!(
        numbered.seq > 0 && numbered.rev == numbered.seq,
        "{numbered:?}"
    );
    numbered
}

/// Inserts `n` messages one microsecond apart, returning them oldest first, numbered.
async fn fill(store: &dyn MessageStore, thread: ThreadId, n: usize) -> Vec<Message> {
    let author = user();
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let m = message(thread, author, T0 + i as i64, &format!("message {i}"));
        out.push(insert(store, &m).await);
    }
    out
}

async fn page(store: &dyn MessageStore, thread: ThreadId, q: PageQuery, n: u32) -> Page {
    store
        .page(thread, q, size(n))
        .await
        .unwrap_or_else(|e| panic!("page: {e}"))
}

/// The `seq` a page's cursor names.
fn seq_of(cursor: crate::Cursor) -> i64 {
    match cursor {
        crate::Cursor::Seq(seq) => seq,
        crate::Cursor::Legacy(id) => panic!("a store issued a legacy cursor for {id}"),
    }
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
            (Some(c), PageQuery::After(_)) => query = PageQuery::After(seq_of(c)),
            (Some(c), _) => query = PageQuery::Before(seq_of(c)),
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

async fn delete(store: &dyn MessageStore, m: &Message) -> crate::Tombstone {
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
        .unwrap_or_else(|e| panic!("delete: {e}"))
}

async fn edit(store: &dyn MessageStore, m: &Message, text: &str) -> Message {
    let patch = MessagePatch::new(Some(text.into()), None, &Limits::default())
        .unwrap_or_else(|e| panic!("{e}"));
    store
        .update(
            m.thread_id,
            m.id,
            m.user_id,
            &patch,
            Timestamp::from_micros(T0 + 2_000_000),
            codec::updated,
        )
        .await
        .unwrap_or_else(|e| panic!("update: {e}"))
}

/// Contract case.
pub async fn empty_thread(subject: &Subject) {
    let store = subject.store.as_ref();
    let t = thread();
    let p = page(store, t, PageQuery::Newest, 10).await;
    assert!(p.items.is_empty() && !p.has_more && p.next_cursor.is_none());
    assert_eq!(p.rev, 0, "a thread never written is at position 0");
    assert_eq!(store.head(t).await.ok(), Some(0));
    let changes = store
        .changes(t, 0, limit("10"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(changes.changes.is_empty() && !changes.has_more && changes.next == 0);
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
                    made.push(insert(store.as_ref(), &m).await);
                }
                made
            })
        })
        .collect();
    let mut created = Vec::new();
    for task in tasks {
        created.extend(task.await.unwrap_or_else(|e| panic!("task: {e}")));
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

/// Contract case: 64 writers at once on one thread (a store may commit them together), a
/// quarter with idempotency keys, and, racing them, retries of a key used before (answered
/// with the original) and a reuse of it with another body (a conflict). Every new message gets
/// its own number, 1 to 64 without a gap; retries take none; the events carry the numbers.
pub async fn a_crowd_on_one_thread_with_keys_and_retries(subject: &Subject) {
    let store = Arc::clone(&subject.store);
    let t = thread();
    let author = user();
    let limits = Limits::default();
    let text = |s: &str| {
        NewMessage::new(MessageKind::Text, s.into(), vec![], &limits)
            .unwrap_or_else(|e| panic!("{e}"))
    };
    let key = |s: &str| IdempotencyKey::parse(s).unwrap_or_else(|e| panic!("{e}"));
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
        .create(
            &original,
            Some(Idempotency {
                key: &used_key,
                fingerprint: RequestFingerprint::of(&used),
            }),
            codec::created(&original),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
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
            let idem = key.as_ref().map(|key| Idempotency { key, fingerprint });
            (expect, store.create(&m, idem, codec::created(&m)).await)
        }));
    }
    let mut seqs = vec![original.seq];
    for task in tasks {
        let (expect, outcome) = task.await.unwrap_or_else(|e| panic!("task: {e}"));
        match (expect, outcome) {
            (Expect::New, Ok(Created::New(m))) => {
                assert_eq!(m.rev, m.seq);
                let stored = store.get(t, m.id).await.unwrap_or_else(|e| panic!("{e}"));
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
        .outbox
        .claim(1_000, Duration::from_secs(60))
        .await
        .unwrap_or_else(|e| panic!("claim: {e}"));
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
    assert_eq!(ids(&walk(store, t, PageQuery::After(0), 2).await), live);
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
        .update(t, target.id, target.user_id, &patch, now, codec::updated)
        .await
        .unwrap_or_else(|e| panic!("update: {e}"));
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
    let paths_only =
        MessagePatch::new(None, Some(vec![]), &Limits::default()).unwrap_or_else(|e| panic!("{e}"));
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
        .unwrap_or_else(|e| panic!("update: {e}"));
    assert_eq!(again.content, "edited");
    assert!(again.paths.is_empty());
    assert_eq!(again.rev, 7);
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
    let replayed = store
        .create(&late, Some(idem), codec::created(&late))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let Created::Replayed(again) = replayed else {
        panic!("expected a replay: {replayed:?}");
    };
    assert_eq!(
        (again.id, again.seq, again.content.as_str()),
        (first.id, first.seq, "once")
    );
    assert_eq!(again.rev, tombstone.rev);
}

/// Contract case.
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

/// Contract case.
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
    let up = walk(store, t, PageQuery::After(0), 3).await;
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
    let m = insert(store, &message(t, user(), T0, "evented")).await;
    let edited = edit(store, &m, "changed").await;
    delete(store, &m).await;
    // A refused write leaves no event.
    let patch = MessagePatch::new(Some("again".into()), None, &Limits::default())
        .unwrap_or_else(|e| panic!("{e}"));
    let _ = store
        .update(
            t,
            m.id,
            m.user_id,
            &patch,
            Timestamp::from_micros(T0 + 2),
            codec::updated,
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
    insert(store, &message(t, user(), T0 + 4, "released")).await;
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
    insert(store, &message(t, user(), T0 + 5, "short lease")).await;
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

/// Contract case.
pub async fn numbers_are_gap_free_per_thread(subject: &Subject) {
    let store = subject.store.as_ref();
    let (a, b) = (thread(), thread());
    let first_a = insert(store, &message(a, user(), T0, "a1")).await;
    let first_b = insert(store, &message(b, user(), T0, "b1")).await;
    assert_eq!((first_a.seq, first_b.seq), (1, 1), "threads number apart");
    let edited = edit(store, &first_a, "a1, edited").await;
    assert_eq!(edited.rev, 2);
    let second_a = insert(store, &message(a, user(), T0 + 1, "a2")).await;
    assert_eq!(second_a.seq, 3);
    let gone = delete(store, &second_a).await;
    assert_eq!((gone.seq, gone.rev), (3, 4));
    assert_eq!(store.head(a).await.ok(), Some(4));
    assert_eq!(store.head(b).await.ok(), Some(1));
}

/// Contract case.
pub async fn an_idempotent_replay_takes_no_number(subject: &Subject) {
    let store = subject.store.as_ref();
    let t = thread();
    let author = user();
    let key = IdempotencyKey::parse("once").unwrap_or_else(|e| panic!("{e}"));
    let new = NewMessage::new(MessageKind::Text, "x".into(), vec![], &Limits::default())
        .unwrap_or_else(|e| panic!("{e}"));
    let idem = Idempotency {
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
        store
            .create(&m, Some(idem), codec::created(&m))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }
    assert_eq!(store.head(t).await.ok(), Some(1));
    let next = insert(store, &message(t, author, T0 + 9, "next")).await;
    assert_eq!(next.seq, 2, "no gap after the replays");
}

/// Contract case.
pub async fn edits_and_deletes_appear_in_the_changes_feed(subject: &Subject) {
    let store = subject.store.as_ref();
    let t = thread();
    let all = fill(store, t, 4).await; // revs 1..=4
    let position = store.head(t).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(position, 4);
    let edited = edit(store, &all[1], "edited while away").await; // rev 5
    let gone = delete(store, &all[2]).await; // rev 6
    let newer = insert(store, &message(t, user(), T0 + 99, "new while away")).await; // 7
    let since = store
        .changes(t, position, limit("200"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        since.changes,
        vec![
            Change::Message(edited.clone()),
            Change::Deleted(gone),
            Change::Message(newer.clone()),
        ]
    );
    assert_eq!(
        since.changes.iter().map(Change::kind).collect::<Vec<_>>(),
        [codec::UPDATED, codec::DELETED, codec::CREATED]
    );
    assert_eq!((since.next, since.has_more), (7, false));
    // Nothing new: the same position back.
    let idle = store
        .changes(t, 7, limit("200"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(idle.changes.is_empty());
    assert_eq!((idle.next, idle.has_more), (7, false));
    // From the start: every message once, in its current state, by rev.
    let everything = store
        .changes(t, 0, limit("200"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let revs: Vec<i64> = everything.changes.iter().map(Change::rev).collect();
    assert_eq!(revs, [1, 4, 5, 6, 7]);
    assert_eq!(everything.changes[0], Change::Message(all[0].clone()));
}

/// Contract case.
pub async fn the_changes_feed_pages_without_gaps(subject: &Subject) {
    let store = subject.store.as_ref();
    let t = thread();
    let all = fill(store, t, 25).await;
    let mut since = 0;
    let mut seen = Vec::new();
    let mut reads = 0;
    loop {
        let read = store
            .changes(t, since, limit("10"))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(read.changes.len() <= 10);
        seen.extend(read.changes.iter().map(Change::id));
        since = read.next;
        reads += 1;
        if !read.has_more {
            break;
        }
        assert!(!read.changes.is_empty(), "more was promised");
    }
    assert_eq!(reads, 3);
    assert_eq!(since, 25);
    assert_eq!(seen, all.iter().map(|m| m.id).collect::<Vec<_>>());
}

/// Contract case.
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
    let changes = store
        .changes(t, p.rev, limit("10"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(changes.changes, vec![Change::Message(later)]);
}

/// Contract case.
pub async fn around_the_first_the_last_and_a_deleted_message(subject: &Subject) {
    let store = subject.store.as_ref();
    let t = thread();
    let all = fill(store, t, 11).await;
    let ids_of = |items: &[Message]| items.iter().map(|m| m.id).collect::<Vec<_>>();
    let around = |id| async move {
        store
            .around(t, id, 3)
            .await
            .unwrap_or_else(|e| panic!("around: {e}"))
    };
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

/// Contract case.
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

/// Contract case: writers race on one thread while a reader follows it, with the changes
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
                let read = store
                    .changes(t, since, limit("7"))
                    .await
                    .unwrap_or_else(|e| panic!("changes: {e}"));
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
                    .unwrap_or_else(|e| panic!("page: {e}"));
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
        acknowledged.extend(writer.await.unwrap_or_else(|e| panic!("writer: {e}")));
    }
    done.store(true, Ordering::SeqCst);
    let (by_changes, by_after) = follower.await.unwrap_or_else(|e| panic!("follower: {e}"));
    for (way, seen) in [("changes", by_changes), ("after_seq", by_after)] {
        let unique: HashSet<MessageId> = seen.iter().copied().collect();
        assert_eq!(unique.len(), seen.len(), "{way}: a message seen twice");
        assert_eq!(
            unique, acknowledged,
            "{way}: every acknowledged message seen"
        );
    }
}

/// Contract case.
pub async fn events_carry_their_change_numbers(subject: &Subject) {
    let store = subject.store.as_ref();
    let outbox = subject.outbox.as_ref();
    drain(outbox).await;
    let t = thread();
    let m = insert(store, &message(t, user(), T0, "numbered")).await;
    let edited = edit(store, &m, "numbered, edited").await;
    let gone = delete(store, &m).await;
    let events = outbox
        .claim(10, Duration::from_secs(60))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
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
    outbox
        .ack(&positions)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
}
