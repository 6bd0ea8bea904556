//! Black-box tests of the HTTP contract, one file per route: every row of the API table, on
//! the embedded default (SQLite), in memory, on PostgreSQL, on PostgreSQL with Redis (when
//! `DATABASE_URL` and `REDIS_URL` are set; required under `CI=true`), and behind nginx
//! configured like the Kong route (prefix `/messages` stripped; when nginx is installed,
//! required under `CI=true`).

use crate::helpers::{Backend, spawn_app};

mod changes;
mod create;
mod list;
mod mentions;
mod message;
mod moderation;
mod operations;
mod page;
mod reactions;
mod read;
mod replies;
mod search;

use changes::*;
use create::*;
use list::*;
use mentions::*;
use message::*;
use moderation::*;
use operations::{health_routes, unknown_routes_and_methods};
use page::*;
use reactions::*;
use read::*;
use replies::*;
use search::*;

messages_core::every_backend!([
    the_chat_page_is_served,
    create_returns_the_message,
    create_validates_headers_and_body,
    create_refuses_oversized_bodies,
    idempotent_create,
    list_pages_newest_first_and_back,
    list_validates_its_query,
    list_sees_every_write_at_once,
    a_message_is_read_by_its_id,
    edit_changes_content_and_paths,
    edit_and_delete_are_for_the_author_only,
    delete_is_soft_and_final,
    unknown_routes_and_methods,
    health_routes,
    pages_by_seq_and_around_a_message,
    the_changes_feed_follows_edits_and_deletes,
    a_cached_page_reports_the_rev_a_store_read_does,
    a_refused_value_is_answered_in_the_words_of_the_check,
    a_reply_names_a_message_of_its_thread,
    a_root_shows_its_replies_and_pages_them,
    replies_refuse_what_is_no_root,
    followed_conversations_fill_the_inbox,
    reactions_are_added_once_and_removed_by_their_holder,
    reactions_refuse_what_they_cannot_take,
    reactions_reach_the_changes_feed_and_the_newest_page,
    edit_history_lists_every_version,
    mentions_are_kept_replaced_and_checked,
    mention_counts_reach_every_read_state,
    mentions_of_the_caller_page_newest_first,
    read_positions_move_and_count_exactly,
    unread_counts_for_many_threads,
    read_state_refuses_bad_input,
    a_moderator_removes_any_message_with_a_reason,
    a_removal_reason_is_checked,
    a_bulk_delete_is_for_moderators_and_all_or_nothing,
    a_moderator_removes_anyones_reaction,
    a_moderator_clears_a_messages_reactions,
    search_finds_every_term_and_follows_changes,
    search_pages_newest_first,
    search_refuses_what_it_cannot_run,
] on
    memory => async { Some(spawn_app(Backend::Memory).await.expect("memory backend")) },
    sqlite => async { Some(spawn_app(Backend::Sqlite).await.expect("SQLite backend")) },
    postgres => spawn_app(Backend::Postgres),
    behind_gateway => spawn_app(Backend::SqliteBehindGateway),
    postgres_redis => spawn_app(Backend::PostgresRedis),
    postgres_redis_cluster => spawn_app(Backend::PostgresRedisCluster),
);
