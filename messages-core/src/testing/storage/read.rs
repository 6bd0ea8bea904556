//! Read state: where each user stopped reading, and exact unread counts after it.

use super::*;
use crate::read::{ReadMark, ReadState, ThreadList, UnreadMax};

fn max() -> UnreadMax {
    UnreadMax::DEFAULT
}

async fn state(store: &dyn MessageStore, thread: ThreadId, reader: UserId) -> ReadState {
    let mut states = store
        .read_states_of(reader, &[thread], max())
        .await
        .expect("read states");
    assert_eq!(states.len(), 1, "one state per thread asked");
    states.remove(0)
}

async fn mark(
    store: &dyn MessageStore,
    thread: ThreadId,
    reader: UserId,
    mark: ReadMark,
) -> ReadState {
    store
        .mark_read_as(thread, reader, mark, max())
        .await
        .expect("mark read")
}

/// Writes `n` messages by `author`, numbered.
async fn write(
    store: &dyn MessageStore,
    thread: ThreadId,
    author: UserId,
    n: usize,
) -> Vec<Message> {
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let m = message(thread, author, T0 + i as i64, &format!("message {i}"));
        out.push(insert(store, &m).await);
    }
    out
}

/// `(seq, unread, capped, first_unread_seq)` of a state.
fn summary(s: &ReadState) -> (i64, u64, bool, Option<i64>) {
    (s.seq, s.unread, s.capped, s.first_unread_seq)
}

/// A thread never read counts every message in it; one never written counts none.
pub async fn a_thread_never_read_counts_everything(subject: &Subject) {
    let store = subject.store.as_ref();
    let (thread, author, reader) = (thread(), user(), user());
    let written = write(store, thread, author, 3).await;
    let s = state(store, thread, reader).await;
    assert_eq!(s.thread_id, thread);
    assert_eq!(summary(&s), (0, 3, false, Some(written[0].seq)));

    let empty = state(store, super::thread(), reader).await;
    assert_eq!(
        summary(&empty),
        (0, 0, false, None),
        "a thread never written"
    );
}

/// Reading moves the position forward only, and never past the head.
pub async fn reading_moves_forward_only_and_stops_at_the_head(subject: &Subject) {
    let store = subject.store.as_ref();
    let (thread, author, reader) = (thread(), user(), user());
    let written = write(store, thread, author, 5).await;
    let s = mark(store, thread, reader, ReadMark::ReadTo(written[2].seq)).await;
    assert_eq!(
        summary(&s),
        (written[2].seq, 2, false, Some(written[3].seq))
    );

    let back = mark(store, thread, reader, ReadMark::ReadTo(written[0].seq)).await;
    assert_eq!(
        back.seq, written[2].seq,
        "a lower position leaves it as it is"
    );
    assert_eq!(state(store, thread, reader).await.seq, written[2].seq);

    // An edit moves the head past the last message's seq; a position may reach the head.
    super::edit(store, &written[4], "edited").await;
    let head = store.head(thread).await.expect("head");
    let past = mark(store, thread, reader, ReadMark::ReadTo(head + 1_000)).await;
    assert_eq!(
        summary(&past),
        (head, 0, false, None),
        "clamped to the head"
    );
    let again = state(store, thread, reader).await;
    assert_eq!(summary(&again), (head, 0, false, None), "and kept");
}

/// "Mark as unread" sets the position just before a message, backwards too.
pub async fn mark_as_unread_moves_back(subject: &Subject) {
    let store = subject.store.as_ref();
    let (thread, author, reader) = (thread(), user(), user());
    let written = write(store, thread, author, 5).await;
    mark(store, thread, reader, ReadMark::ReadTo(written[4].seq)).await;
    let s = mark(store, thread, reader, ReadMark::UnreadFrom(written[1].seq)).await;
    assert_eq!(
        summary(&s),
        (written[1].seq - 1, 4, false, Some(written[1].seq))
    );
    let first = mark(store, thread, reader, ReadMark::UnreadFrom(1)).await;
    assert_eq!(summary(&first), (0, 5, false, Some(written[0].seq)));
    let forward = mark(store, thread, reader, ReadMark::ReadTo(written[3].seq)).await;
    assert_eq!(forward.unread, 1, "reading moves forward again from there");
}

/// A writer's own message is read: it moves their position and is never counted.
pub async fn own_messages_are_read_and_never_counted(subject: &Subject) {
    let store = subject.store.as_ref();
    let (thread, author, reader) = (thread(), user(), user());
    write(store, thread, author, 3).await;
    let own = write(store, thread, reader, 1).await;
    let s = state(store, thread, reader).await;
    assert_eq!(
        summary(&s),
        (own[0].seq, 0, false, None),
        "writing moves the writer's position to their message"
    );
    let later = write(store, thread, author, 2).await;
    let s = state(store, thread, reader).await;
    assert_eq!(summary(&s), (own[0].seq, 2, false, Some(later[0].seq)));

    // Back to the start: the reader's own message is not counted among the unread.
    let s = mark(store, thread, reader, ReadMark::UnreadFrom(1)).await;
    assert_eq!((s.seq, s.unread), (0, 5));

    // Several of the reader's creates at once (a store may write them together): the
    // position ends at the last.
    let mut creates = tokio::task::JoinSet::new();
    for i in 0..8 {
        let store = Arc::clone(&subject.store);
        let m = message(thread, reader, T0 + 100 + i, &format!("burst {i}"));
        creates.spawn(async move { insert(store.as_ref(), &m).await.seq });
    }
    let last = creates
        .join_all()
        .await
        .into_iter()
        .max()
        .expect("eight creates");
    let s = state(store, thread, reader).await;
    assert_eq!((s.seq, s.unread), (last, 0));
    assert_eq!(
        state(store, thread, author).await.seq,
        later[1].seq,
        "the other writer's position is their own last message"
    );
}

/// A deleted message leaves the counts at once.
pub async fn deletes_lower_counts_at_once(subject: &Subject) {
    let store = subject.store.as_ref();
    let (thread, author, reader) = (thread(), user(), user());
    let written = write(store, thread, author, 4).await;
    assert_eq!(state(store, thread, reader).await.unread, 4);
    super::delete(store, &written[0]).await;
    let s = state(store, thread, reader).await;
    assert_eq!(summary(&s), (0, 3, false, Some(written[1].seq)));
    super::delete(store, &written[2]).await;
    assert_eq!(state(store, thread, reader).await.unread, 2);
}

/// A count stops at the cap and says so.
pub async fn counts_stop_at_the_cap(subject: &Subject) {
    let store = subject.store.as_ref();
    let (thread, author, reader) = (thread(), user(), user());
    let written = write(store, thread, author, 5).await;
    let three = UnreadMax::new(3).expect("valid");
    let capped = store
        .read_states_of(reader, &[thread], three)
        .await
        .expect("read states");
    assert_eq!(summary(&capped[0]), (0, 3, true, Some(written[0].seq)));
    let five = UnreadMax::new(5).expect("valid");
    let exact = store
        .mark_read_as(thread, reader, ReadMark::ReadTo(0), five)
        .await
        .expect("mark read");
    assert_eq!(summary(&exact), (0, 5, false, Some(written[0].seq)));
    let marked = store
        .mark_read_as(thread, reader, ReadMark::ReadTo(written[0].seq), three)
        .await
        .expect("mark read");
    assert_eq!((marked.unread, marked.capped), (3, true));
}

/// Sessions marking read at once in any order end at the furthest position.
pub async fn concurrent_marks_never_move_back(subject: &Subject) {
    let store = &subject.store;
    let (thread, author, reader) = (thread(), user(), user());
    let written = write(store.as_ref(), thread, author, 20).await;
    // Two sessions mark read in whatever order their requests land.
    let mut marks = tokio::task::JoinSet::new();
    for m in written.iter().rev().chain(written.iter()) {
        let store = Arc::clone(store);
        let seq = m.seq;
        marks.spawn(async move {
            let s = store
                .mark_read_as(thread, reader, ReadMark::ReadTo(seq), max())
                .await
                .expect("mark read");
            assert!(s.seq >= seq, "an answer is at least the position asked");
        });
    }
    marks.join_all().await;
    let last = written.last().expect("twenty").seq;
    let s = state(store.as_ref(), thread, reader).await;
    assert_eq!(summary(&s), (last, 0, false, None));
}

/// The most threads one call may name, each answered in the order asked.
pub async fn many_threads_in_one_call(subject: &Subject) {
    let store = subject.store.as_ref();
    let (author, reader) = (user(), user());
    let threads: Vec<ThreadId> = (0..ThreadList::MAX).map(|_| thread()).collect();
    // Every fourth thread holds i % 3 + 1 messages, and the reader has read one of them in
    // every other such thread; the rest were never written.
    let mut expected = Vec::with_capacity(threads.len());
    for (i, &t) in threads.iter().enumerate() {
        if i % 4 != 0 {
            expected.push((0, 0, false, None));
            continue;
        }
        let written = write(store, t, author, i % 3 + 1).await;
        if i % 8 == 0 {
            mark(store, t, reader, ReadMark::ReadTo(written[0].seq)).await;
            expected.push((
                written[0].seq,
                written.len() as u64 - 1,
                false,
                written.get(1).map(|m| m.seq),
            ));
        } else {
            expected.push((0, written.len() as u64, false, Some(written[0].seq)));
        }
    }
    let states = store
        .read_states_of(reader, &threads, max())
        .await
        .expect("read states");
    let asked: Vec<ThreadId> = states.iter().map(|s| s.thread_id).collect();
    assert_eq!(asked, threads, "in the order asked");
    let got: Vec<_> = states.iter().map(summary).collect();
    assert_eq!(got, expected);
}
