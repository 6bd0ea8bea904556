//! The storage contract: what every `MessageStore` (its outbox included) must do, written once as
//! named cases, one file per topic. [`storage_contract!`](crate::storage_contract) stamps out
//! one test per case and backend, so a failure names its case and does not hide the others.
//!
//! - `paging`: keyset pages, cursors, `around`, `locate`.
//! - `writes`: edits and deletes, and who may make them.
//! - `idempotency`: retried creates.
//! - `outbox`: the events writes leave.
//! - `sequence`: gap-free numbers and the changes feed.
//! - `races`: many writers at once, and a follower beside them.
//! - `replies`: replies name a live message of their thread, join their root's conversation,
//!   and move its summary; their pages; racing replies.
//! - `conversations`: following reply conversations, positions in them, the inbox.
//! - `reactions`: reactions, each change in the sequence, and the page of their holders.
//! - `history`: the versions an edit replaced.
//! - `mentions`: whom a message addresses, kept, edited and in its history.
//! - `read`: read positions and unread counts.
//! - `search`: what a search finds, at once after a change, and its pages.

use std::any::Any;
use std::sync::Arc;

use uuid::Uuid;

pub(super) use super::text_message as message;
use crate::changes::ChangesLimit;
use crate::message::{Limits, Message, MessageId, MessagePatch, ThreadId, Timestamp, UserId};
use crate::page::{Page, PageQuery, PageSize};
use crate::storage::MessageStore;
use crate::write::Created;

mod calls;
mod conversations;
mod history;
mod idempotency;
mod mentions;
mod outbox;
mod paging;
mod races;
mod reactions;
mod read;
mod replies;
mod search;
mod sequence;
mod writes;

pub use calls::{Calls, Keyed};
pub use conversations::*;
pub use history::*;
pub use idempotency::*;
pub use mentions::*;
pub use outbox::{events_carry_their_change_numbers, every_write_leaves_one_event};
pub use paging::*;
pub use races::*;
pub use reactions::*;
pub use read::*;
pub use replies::*;
pub use search::*;
pub use sequence::*;
pub use writes::*;

/// A store under test, and whatever must live as long as the test (a test database, a
/// temporary directory).
pub struct Subject {
    /// The store: its messages and its outbox.
    pub store: Arc<dyn MessageStore>,
    _keep: Option<Box<dyn Any + Send + Sync>>,
}

impl Subject {
    /// `store` under test.
    pub fn new<S: MessageStore>(store: S) -> Self {
        Subject {
            store: Arc::new(store),
            _keep: None,
        }
    }

    /// Keeps `guard` alive until the subject drops.
    pub fn keeping(mut self, guard: impl Any + Send + Sync) -> Self {
        self._keep = Some(Box::new(guard));
        self
    }
}

/// Stamps out one `#[tokio::test]` per case of the storage contract and per backend, in a
/// module `storage_contract::<backend>`, through [`every_backend!`](crate::every_backend).
/// Each backend's expression gives a future of `Option<Subject>`; `None` skips (a backend not
/// configured outside CI).
///
/// ```ignore
/// messages_core::storage_contract!(
///     memory => async { Some(Subject::new(MemoryStore::new())) },
/// );
/// ```
#[macro_export]
macro_rules! storage_contract {
    ($($backend:ident => $subject:expr),+ $(,)?) => {
        mod storage_contract {
            #[allow(unused_imports)]
            use super::*;
            #[allow(unused_imports)]
            use $crate::testing::storage::*;
            $crate::every_backend!([
                empty_thread,
                pages_exactly_in_both_directions,
                a_full_last_page_has_no_more,
                a_cursor_survives_deletion_of_its_message,
                deleted_messages_never_appear,
                equal_timestamps_page_exactly_once,
                inserts_between_loads_cause_no_overlap_or_gap,
                deleted_runs_never_produce_empty_pages,
                a_page_reflects_its_rev,
                around_the_first_the_last_and_a_deleted_message,
                locate_finds_deleted_messages_too,
                an_edit_never_moves_a_message,
                only_the_author_changes_a_message,
                a_blank_edit_is_refused,
                a_moderator_removes_any_message_with_a_reason,
                a_bulk_removal_is_all_or_nothing,
                a_bulk_removal_names_a_missing_id_before_a_forbidden_one,
                idempotent_creates,
                an_idempotent_replay_takes_no_number,
                every_write_leaves_one_event,
                events_carry_their_change_numbers,
                numbers_are_gap_free_per_thread,
                edits_and_deletes_appear_in_the_changes_feed,
                the_changes_feed_pages_without_gaps,
                concurrent_creates_are_each_listed_once,
                a_crowd_on_one_thread_with_keys_and_retries,
                racing_writers_never_hide_a_message_from_a_follower,
                a_reply_names_a_live_message_of_its_thread,
                an_idempotent_replay_of_a_reply_answers_the_same_message,
                a_reply_takes_n_and_its_root_n_plus_one,
                a_reply_to_a_reply_joins_the_same_root,
                replies_page_oldest_first_exactly,
                removed_replies_leave_the_count_at_once,
                racing_replies_keep_the_summary_exact,
                a_reply_follows_its_writer_and_its_roots_author,
                an_unfollow_is_kept_and_a_follow_is_asked,
                the_inbox_orders_by_latest_reply_and_pages_exactly,
                unread_replies_are_exact_for_a_thousand_followers,
                a_reaction_takes_a_number_and_a_repeat_takes_none,
                each_reaction_change_leaves_its_own_event,
                reactions_list_their_first_holders_and_exact_counts,
                a_reactor_is_listed_whatever_their_id,
                a_message_takes_a_bounded_number_of_emoji,
                a_deleted_message_takes_no_reaction_and_has_no_history,
                reactions_reach_the_changes_feed_like_edits,
                an_edit_keeps_the_version_it_replaced,
                mentions_are_kept_and_an_edit_replaces_them,
                mention_counts_are_exact,
                racing_mentions_are_each_counted,
                mentions_of_a_reader_page_exactly,
                a_conversation_counts_its_mentions,
                racing_reactions_keep_counts_exact,
                clearing_reactions_is_one_numbered_change,
                a_thread_never_read_counts_everything,
                reading_moves_forward_only_and_stops_at_the_head,
                mark_as_unread_moves_back,
                own_messages_are_read_and_never_counted,
                deletes_lower_counts_at_once,
                counts_stop_at_the_cap,
                concurrent_marks_never_move_back,
                many_threads_in_one_call,
                a_search_finds_every_term_anywhere_case_folded,
                an_edit_or_a_delete_changes_what_a_search_finds,
                search_pages_newest_first_without_gaps_while_messages_arrive,
            ] on $($backend => $subject),+);
        }
    };
}

pub(super) fn thread() -> ThreadId {
    ThreadId::from_uuid(Uuid::new_v4())
}

pub(super) fn user() -> UserId {
    UserId::from_uuid(Uuid::new_v4())
}

pub(super) fn size(n: u32) -> PageSize {
    PageSize::new(n).unwrap()
}

pub(super) fn limit(n: &str) -> ChangesLimit {
    ChangesLimit::parse(n).unwrap()
}

/// A base time with whole-microsecond precision well inside every backend's range.
pub(super) const T0: i64 = 1_764_000_000_000_000;

/// Creates `m`, returning it as the store numbered it.
pub(super) async fn insert(store: &dyn MessageStore, m: &Message) -> Message {
    let created = store.create_with(m, None).await.expect("create");
    let (Created::New(numbered)
    | Created::Reply {
        reply: numbered, ..
    }) = created
    else {
        panic!("a create without a key is new: {created:?}");
    };
    assert_eq!(
        Message {
            seq: m.seq,
            rev: m.rev,
            root_id: m.root_id,
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
pub(super) async fn fill(store: &dyn MessageStore, thread: ThreadId, n: usize) -> Vec<Message> {
    let author = user();
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let m = message(thread, author, T0 + i as i64, &format!("message {i}"));
        out.push(insert(store, &m).await);
    }
    out
}

pub(super) async fn page(store: &dyn MessageStore, thread: ThreadId, q: PageQuery, n: u32) -> Page {
    store.page(thread, q, size(n)).await.expect("page")
}

/// The `seq` a page's cursor names.
pub(super) fn seq_of(cursor: crate::Cursor) -> i64 {
    match cursor {
        crate::Cursor::Seq(seq) => seq,
        crate::Cursor::Legacy(id) => panic!("a store issued a legacy cursor for {id}"),
    }
}

/// Follows cursors from `start` until `has_more` is false, checking on the way that no page
/// is empty while more were promised and that `next_cursor` is present exactly when
/// `has_more`.
pub(super) async fn walk(
    store: &dyn MessageStore,
    thread: ThreadId,
    start: PageQuery,
    n: u32,
) -> Vec<Page> {
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

pub(super) fn ids(pages: &[Page]) -> Vec<MessageId> {
    pages
        .iter()
        .flat_map(|p| p.items.iter().map(|m| m.id))
        .collect()
}

pub(super) async fn delete(store: &dyn MessageStore, m: &Message) -> crate::Tombstone {
    let at = Timestamp::from_micros(T0 + 1_000_000);
    store
        .delete_as(
            m.thread_id,
            m.id,
            &crate::removal::Removal::by_author(m.user_id),
            at,
        )
        .await
        .expect("delete")
}

pub(super) async fn edit(store: &dyn MessageStore, m: &Message, text: &str) -> Message {
    let patch = MessagePatch::new(Some(text.into()), None, &Limits::default()).unwrap();
    store
        .update_as(
            m.thread_id,
            m.id,
            m.user_id,
            &patch,
            Timestamp::from_micros(T0 + 2_000_000),
        )
        .await
        .expect("update")
}
