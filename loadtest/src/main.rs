//! Goose load tests of the messages HTTP API. It speaks HTTP only.
//!
//! Scenarios (pick with goose's `--scenarios`): `seed` (creates), `consume` (newest page, then
//! a follow of `next_cursor` with probability `LOADTEST_FOLLOW`), `mixed` (a chat room: reads,
//! creates, replies, reactions, edits, deletes, marking read and a sidebar's unread counts
//! with `LOADTEST_MIX` weights) and `catchup` (a client that writes,
//! then catches up with the changes feed and with `after_seq`, and fails on any message it
//! knows was written but never saw). Thread and user ids are UUIDv5 of `LOADTEST_SEED` and an index,
//! so `consume` finds what `seed` wrote. Every response is checked: status, JSON shape, and
//! the page invariants; a 2xx with a wrong body is a failure in goose's metrics.
//!
//! `--host` may carry a path prefix (`http://gateway:8000/messages`), so the same binary
//! measures the service directly or through Kong.

use std::time::Duration;

use uuid::Uuid;

use goose::prelude::*;

mod catchup;
mod client;
mod settings;

use catchup::catchup;
use client::*;

/// A create as any user of the pool (the seed scenario).
async fn create(user: &mut GooseUser) -> TransactionResult {
    let author = pick_user(user);
    post_message(user, author).await.map(|_| ())
}

async fn consume(user: &mut GooseUser) -> TransactionResult {
    let thread = pick_thread(user);
    let limit = settings().page_limit;
    let Some(page) = read_page(
        user,
        thread,
        &format!("limit={limit}"),
        "newest page",
        limit,
    )
    .await?
    else {
        return Ok(());
    };
    if let Some(items) = page["items"].as_array() {
        let seen = items
            .iter()
            .filter_map(|m| m["id"].as_str().map(|id| (thread, id.to_owned())))
            .collect();
        session(user).seen = seen;
    }
    if let Some(rev) = page["rev"].as_i64() {
        session(user).last_read = Some((thread, rev));
    }
    let follow = settings().follow;
    if let Some(cursor) = page["next_cursor"].as_str()
        && session(user).chance(follow)
    {
        let query = format!("limit={limit}&cursor={cursor}");
        read_page(user, thread, &query, "older page (cursor)", limit).await?;
    }
    Ok(())
}

async fn edit(user: &mut GooseUser) -> TransactionResult {
    let Some((thread, id)) = session(user).own.last().cloned() else {
        return create_own(user).await;
    };
    let author = session_author(user);
    let body = serde_json::json!({ "content": "edited by the load test" });
    let (mut goose, status, json) = send(
        user,
        GooseMethod::Put,
        "edit",
        &format!("/threads/{thread}/messages/{id}"),
        Some(author),
        Some(&body),
    )
    .await?;
    match json {
        Some(m)
            if status == 200 && message_is_valid(&m, thread, Some("edited by the load test")) =>
        {
            Ok(())
        }
        _ => fail(user, &mut goose, "edit: not 200 with the edited message"),
    }
}

async fn delete(user: &mut GooseUser) -> TransactionResult {
    let Some((thread, id)) = session(user).own.pop() else {
        return create_own(user).await;
    };
    let author = session_author(user);
    let (mut goose, status, _) = send(
        user,
        GooseMethod::Delete,
        "delete",
        &format!("/threads/{thread}/messages/{id}"),
        Some(author),
        None,
    )
    .await?;
    if status == 204 {
        Ok(())
    } else {
        fail(user, &mut goose, "delete: status is not 204")
    }
}

/// A message of the last page read, or none before the first read.
fn pick_seen(user: &mut GooseUser) -> Option<(Uuid, String)> {
    let n = session(user).seen.len();
    if n == 0 {
        return None;
    }
    let i = session(user).below(n);
    session(user).seen.get(i).cloned()
}

/// A reply to a message of the last page read. Its target may have been deleted by its author
/// since: the answer is then a 422 `invalid_reply_to`, the API's answer, not a failure.
async fn reply(user: &mut GooseUser) -> TransactionResult {
    let Some((thread, target)) = pick_seen(user) else {
        return consume(user).await;
    };
    let author = session_author(user);
    let body = serde_json::json!({ "content": "a reply from the load test", "reply_to": target });
    let (mut goose, status, json) = send(
        user,
        GooseMethod::Post,
        "reply",
        &format!("/threads/{thread}/messages"),
        Some(author),
        Some(&body),
    )
    .await?;
    let root = match (status, json) {
        (201, Some(m))
            if message_is_valid(&m, thread, None)
                && m["reply_to"].as_str() == Some(&target)
                && m["root_id"].is_string() =>
        {
            m["root_id"].as_str().unwrap_or_default().to_owned()
        }
        (422, Some(e)) if e["error"]["code"] == "invalid_reply_to" => {
            return user.set_success(&mut goose);
        }
        _ => {
            return fail(
                user,
                &mut goose,
                "reply: not 201 with the reply and its root",
            );
        }
    };
    // Then the conversation, as a client shows it after a reply: its replies, oldest first.
    let (mut goose, status, json) = send(
        user,
        GooseMethod::Get,
        "conversation",
        &format!("/threads/{thread}/messages/{root}/replies?limit=20"),
        None,
        None,
    )
    .await?;
    match (status, json) {
        (200, Some(page))
            if page["items"].as_array().is_some_and(|items| {
                items
                    .iter()
                    .all(|m| m["root_id"].as_str() == Some(root.as_str()))
            }) =>
        {
            Ok(())
        }
        // Its root was deleted since by its author: the API's answer.
        (404, _) => user.set_success(&mut goose),
        _ => fail(user, &mut goose, "conversation: not 200 with its replies"),
    }
}

const EMOJI: [&str; 4] = [
    "%F0%9F%91%8D",
    "%E2%9D%A4%EF%B8%8F",
    "%F0%9F%8E%89",
    "%3Aship%3A",
];

/// A reaction to a message of the last page read; when the client already held it, it takes
/// it back. A message deleted since answers 404, the API's answer, not a failure.
async fn react(user: &mut GooseUser) -> TransactionResult {
    let Some((thread, id)) = pick_seen(user) else {
        return consume(user).await;
    };
    let author = session_author(user);
    let emoji = EMOJI[session(user).below(EMOJI.len())];
    let path = format!("/threads/{thread}/messages/{id}/reactions/{emoji}");
    let (mut goose, status, json) =
        send(user, GooseMethod::Put, "react", &path, Some(author), None).await?;
    let author_text = author.to_string();
    match (status, json) {
        (201, Some(m)) => {
            let listed = m["reactions"].as_array().is_some_and(|rs| {
                rs.iter().any(|r| {
                    r["count"].as_i64().unwrap_or(0) >= 1
                        && (r["users"].as_array().is_some_and(|u| u.len() >= 10)
                            || r["users"]
                                .as_array()
                                .is_some_and(|u| u.iter().any(|u| u == author_text.as_str())))
                })
            });
            if message_is_valid(&m, thread, None) && listed {
                Ok(())
            } else {
                fail(
                    user,
                    &mut goose,
                    "react: the message does not carry the reaction",
                )
            }
        }
        (200, Some(_)) => {
            let (mut goose, status, _) = send(
                user,
                GooseMethod::Delete,
                "unreact",
                &path,
                Some(author),
                None,
            )
            .await?;
            if status == 204 {
                Ok(())
            } else {
                fail(user, &mut goose, "unreact: status is not 204")
            }
        }
        (404, _) => user.set_success(&mut goose),
        _ => fail(user, &mut goose, "react: not 201 or 200"),
    }
}

/// The client read a page and marks the thread read up to it, as a reader at the bottom does.
async fn mark_read(user: &mut GooseUser) -> TransactionResult {
    let Some((thread, rev)) = session(user).last_read.take() else {
        return consume(user).await;
    };
    let author = session_author(user);
    let body = serde_json::json!({ "seq": rev });
    let path = format!("/threads/{thread}/read");
    let (mut goose, status, json) = send(
        user,
        GooseMethod::Put,
        "mark read",
        &path,
        Some(author),
        Some(&body),
    )
    .await?;
    match (status, json) {
        // Positions move forward only and the head is at least the page's rev.
        (200, Some(r)) if read_state_is_valid(&r, thread) && r["seq"].as_i64() >= Some(rev) => {
            Ok(())
        }
        _ => fail(
            user,
            &mut goose,
            "mark read: not 200 with a position at or past the page",
        ),
    }
}

/// A client coming back into focus asks the unread counts of a sidebar of threads, one call,
/// and its inbox of followed reply conversations in those threads.
async fn sidebar(user: &mut GooseUser) -> TransactionResult {
    let s = settings();
    let first = session(user).below(s.threads.max(1));
    let asked: Vec<Uuid> = (0..s.threads.clamp(1, 20))
        .map(|i| s.thread((first + i) % s.threads.max(1)))
        .collect();
    let list: Vec<String> = asked.iter().map(Uuid::to_string).collect();
    let path = format!("/unread?threads={}", list.join(","));
    let author = session_author(user);
    let (mut goose, status, json) = send(
        user,
        GooseMethod::Get,
        "unread counts",
        &path,
        Some(author),
        None,
    )
    .await?;
    let valid = status == 200
        && json
            .as_ref()
            .and_then(|j| j["threads"].as_array())
            .is_some_and(|threads| {
                threads.len() == asked.len()
                    && threads
                        .iter()
                        .zip(&asked)
                        .all(|(state, &thread)| read_state_is_valid(state, thread))
            });
    if !valid {
        return fail(
            user,
            &mut goose,
            "unread: not 200 with one state per thread, in order",
        );
    }
    // The same threads' reply conversations the user follows, with their unread replies.
    let path = format!("/replies/inbox?threads={}&limit=20", list.join(","));
    let (mut goose, status, json) = send(
        user,
        GooseMethod::Get,
        "reply inbox",
        &path,
        Some(author),
        None,
    )
    .await?;
    let valid = status == 200
        && json
            .as_ref()
            .and_then(|j| j["items"].as_array())
            .is_some_and(|items| {
                items.len() <= 20
                    && items.iter().all(|item| {
                        item["root"]["replies"]["count"]
                            .as_i64()
                            .is_some_and(|c| c > 0)
                            && item["following"] == true
                            && item["unread"].is_u64()
                    })
            });
    if valid {
        Ok(())
    } else {
        fail(
            user,
            &mut goose,
            "inbox: not 200 with followed conversations",
        )
    }
}

/// A read state of `thread`: a position, a count, and a first unread exactly when there is one.
fn read_state_is_valid(state: &serde_json::Value, thread: Uuid) -> bool {
    let unread = state["unread"].as_u64();
    state["thread_id"].as_str() == Some(thread.to_string().as_str())
        && state["seq"].as_i64().is_some_and(|s| s >= 0)
        && state["capped"].is_boolean()
        && match unread {
            Some(0) => state["first_unread_seq"].is_null(),
            Some(_) => state["first_unread_seq"]
                .as_i64()
                .is_some_and(|f| Some(f) > state["seq"].as_i64()),
            None => false,
        }
}

/// A create in the mixed room, as the client's own user, remembered for edits and deletes.
async fn create_own(user: &mut GooseUser) -> TransactionResult {
    let author = session_author(user);
    if let Some(created) = post_message(user, author).await? {
        let own = &mut session(user).own;
        own.push(created);
        if own.len() > 64 {
            own.remove(0);
        }
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), GooseError> {
    let s = settings();
    let mix = s.mix;
    let metrics = GooseAttack::initialize()?
        .register_scenario(
            scenario!("seed")
                .register_transaction(transaction!(start).set_on_start())
                .register_transaction(transaction!(create).set_name("create")),
        )
        .register_scenario(
            scenario!("consume")
                .register_transaction(transaction!(start).set_on_start())
                .register_transaction(transaction!(consume).set_name("read newest, maybe follow")),
        )
        .register_scenario(
            scenario!("mixed")
                .set_wait_time(
                    Duration::from_millis(s.wait_ms.0),
                    Duration::from_millis(s.wait_ms.1),
                )?
                .register_transaction(transaction!(start).set_on_start())
                .register_transaction(
                    transaction!(consume)
                        .set_name("read")
                        .set_weight(mix.read)?,
                )
                .register_transaction(
                    transaction!(create_own)
                        .set_name("write")
                        .set_weight(mix.create)?,
                )
                .register_transaction(
                    transaction!(reply)
                        .set_name("reply")
                        .set_weight(mix.reply)?,
                )
                .register_transaction(
                    transaction!(react)
                        .set_name("react")
                        .set_weight(mix.react)?,
                )
                .register_transaction(transaction!(edit).set_name("edit").set_weight(mix.edit)?)
                .register_transaction(
                    transaction!(delete)
                        .set_name("delete")
                        .set_weight(mix.delete)?,
                )
                .register_transaction(
                    transaction!(mark_read)
                        .set_name("mark read")
                        .set_weight(mix.mark)?,
                )
                .register_transaction(
                    transaction!(sidebar)
                        .set_name("unread counts")
                        .set_weight(mix.sidebar)?,
                ),
        )
        .register_scenario(
            scenario!("catchup")
                .register_transaction(transaction!(start).set_on_start())
                .register_transaction(
                    transaction!(catchup).set_name("write, then catch up (changes, after_seq)"),
                ),
        )
        .execute()
        .await?;
    if s.fail_on_error {
        let failed: usize = metrics.requests.values().map(|r| r.fail_count).sum();
        let succeeded: usize = metrics.requests.values().map(|r| r.success_count).sum();
        if failed > 0 || succeeded == 0 {
            eprintln!("loadtest: {failed} failed requests, {succeeded} succeeded");
            std::process::exit(1);
        }
        eprintln!("loadtest: {succeeded} requests, none failed");
    }
    Ok(())
}
