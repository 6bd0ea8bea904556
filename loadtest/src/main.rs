//! Goose load tests of the messages HTTP API. It speaks HTTP only.
//!
//! Scenarios (pick with goose's `--scenarios`): `seed` (creates), `consume` (newest page, then
//! a follow of `next_cursor` with probability `LOADTEST_FOLLOW`), `mixed` (a chat room: reads,
//! creates, edits and deletes with `LOADTEST_MIX` weights) and `catchup` (a client that writes,
//! then catches up with the changes feed and with `after_seq`, and fails on any message it
//! knows was written but never saw). Thread and user ids are UUIDv5 of `LOADTEST_SEED` and an index,
//! so `consume` finds what `seed` wrote. Every response is checked: status, JSON shape, and
//! the page invariants; a 2xx with a wrong body is a failure in goose's metrics.
//!
//! `--host` may carry a path prefix (`http://gateway:8000/messages`), so the same binary
//! measures the service directly or through Kong.

use std::time::Duration;

use goose::metrics::GooseRequestMetric;
use goose::prelude::*;
use serde_json::Value;
use uuid::Uuid;

mod settings;

use settings::Settings;

/// Where a catching-up client is in one thread, and what it wrote there but has not seen.
#[derive(Clone, Default)]
struct Follow {
    /// The position of the changes feed (`since`).
    since: i64,
    /// The `seq` of the last message seen through `after_seq`.
    after_seq: i64,
    /// Messages written and acknowledged, not yet seen in the changes feed.
    unseen_by_changes: std::collections::HashSet<String>,
    /// The same, for `after_seq`.
    unseen_by_after: std::collections::HashSet<String>,
}

/// What one simulated client remembers.
#[derive(Clone)]
struct Session {
    prefix: String,
    /// Messages this client created (thread, id), newest last, for edits and deletes.
    own: Vec<(Uuid, String)>,
    /// The catch-up state per thread.
    follows: std::collections::HashMap<Uuid, Follow>,
    rng: u64,
}

impl Session {
    /// xorshift: cheap and good enough to pick threads and users.
    fn next(&mut self) -> u64 {
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        x
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn chance(&mut self, p: f64) -> bool {
        (self.next() % 1_000_000) as f64 / 1_000_000.0 < p
    }
}

fn settings() -> &'static Settings {
    settings::get()
}

async fn start(user: &mut GooseUser) -> TransactionResult {
    let prefix = user.base_url.as_str().trim_end_matches('/').to_owned();
    let s = settings();
    let rng = (s.seed as u64)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(user.weighted_users_index as u64 + 1)
        | 1;
    user.set_session_data(Session {
        prefix,
        own: Vec::new(),
        follows: std::collections::HashMap::new(),
        rng,
    });
    Ok(())
}

fn session(user: &mut GooseUser) -> &mut Session {
    user.get_session_data_unchecked_mut::<Session>()
}

/// Fails the request in goose's metrics with `why`.
fn fail(user: &mut GooseUser, request: &mut GooseRequestMetric, why: &str) -> TransactionResult {
    user.set_failure(why, request, None, None)
}

async fn send(
    user: &mut GooseUser,
    method: GooseMethod,
    name: &'static str,
    path: &str,
    user_id: Option<Uuid>,
    body: Option<&Value>,
) -> Result<(GooseRequestMetric, u16, Option<Value>), Box<TransactionError>> {
    let url = format!("{}{}", session(user).prefix, path);
    let mut builder = user.get_request_builder(&method, &url)?;
    if let Some(u) = user_id {
        builder = builder.header("X-User-Id", u.to_string());
    }
    if let Some(auth) = &settings().authorization {
        builder = builder.header("Authorization", auth.as_str());
    }
    if let Some(b) = body {
        builder = builder
            .header("Content-Type", "application/json")
            .body(b.to_string());
    }
    let request = GooseRequest::builder()
        .method(method)
        .path(url.as_str())
        .name(name)
        .set_request_builder(builder)
        .build();
    let goose = user.request(request).await?;
    let (status, json) = match goose.response {
        Ok(response) => {
            let status = response.status().as_u16();
            let text = response.text().await.unwrap_or_default();
            (status, serde_json::from_str(&text).ok())
        }
        Err(_) => (0, None),
    };
    Ok((goose.request, status, json))
}

/// A page must be `{items: [...], next_cursor: string iff has_more, has_more: bool}` with at
/// most `limit` items, each a message of `thread`.
fn page_is_valid(page: &Value, thread: Uuid, limit: usize) -> Result<(), &'static str> {
    let items = page["items"].as_array().ok_or("page without items")?;
    let has_more = page["has_more"].as_bool().ok_or("page without has_more")?;
    if has_more != page["next_cursor"].is_string() {
        return Err("next_cursor present without has_more, or the reverse");
    }
    if has_more && items.is_empty() {
        return Err("an empty page promised more");
    }
    if items.len() > limit {
        return Err("more items than the limit");
    }
    let thread = thread.to_string();
    for m in items {
        if m["thread_id"].as_str() != Some(thread.as_str()) || !m["id"].is_string() {
            return Err("an item that is not a message of the thread");
        }
    }
    Ok(())
}

fn message_is_valid(m: &Value, thread: Uuid, content: Option<&str>) -> bool {
    m["id"].is_string()
        && m["thread_id"].as_str() == Some(thread.to_string().as_str())
        && m["created_at"].is_string()
        && content.is_none_or(|c| m["content"].as_str() == Some(c))
}

fn pick_thread(user: &mut GooseUser) -> Uuid {
    let n = settings().threads;
    let i = session(user).below(n);
    settings().thread(i)
}

fn pick_user(user: &mut GooseUser) -> Uuid {
    let n = settings().users;
    let i = session(user).below(n);
    settings().user(i)
}

/// Creates a message in a random thread as `author`; returns the new message's id.
async fn post_message(
    user: &mut GooseUser,
    author: Uuid,
) -> Result<Option<(Uuid, String)>, Box<TransactionError>> {
    let thread = pick_thread(user);
    post_message_in(user, author, thread).await
}

/// Creates a message in `thread` as `author`; returns the new message's id.
async fn post_message_in(
    user: &mut GooseUser,
    author: Uuid,
    thread: Uuid,
) -> Result<Option<(Uuid, String)>, Box<TransactionError>> {
    let n = session(user).next() % 1_000_000;
    let content = format!("load test message {n}: the quick brown fox jumps over the lazy dog");
    let body = serde_json::json!({ "content": content });
    let (mut goose, status, json) = send(
        user,
        GooseMethod::Post,
        "create",
        &format!("/threads/{thread}/messages"),
        Some(author),
        Some(&body),
    )
    .await?;
    match json {
        Some(m) if status == 201 && message_is_valid(&m, thread, Some(&content)) => {
            Ok(m["id"].as_str().map(|id| (thread, id.to_owned())))
        }
        _ if status != 201 => fail(user, &mut goose, "create: status is not 201").map(|()| None),
        _ => fail(user, &mut goose, "create: the body is not the message").map(|()| None),
    }
}

/// A create as any user of the pool (the seed scenario).
async fn create(user: &mut GooseUser) -> TransactionResult {
    let author = pick_user(user);
    post_message(user, author).await.map(|_| ())
}

async fn read_page(
    user: &mut GooseUser,
    thread: Uuid,
    query: &str,
    name: &'static str,
    limit: usize,
) -> Result<Option<Value>, Box<TransactionError>> {
    let path = format!("/threads/{thread}/messages?{query}");
    let (mut goose, status, json) = send(user, GooseMethod::Get, name, &path, None, None).await?;
    let Some(page) = json.filter(|_| status == 200) else {
        fail(
            user,
            &mut goose,
            "list: status is not 200 or the body is not JSON",
        )?;
        return Ok(None);
    };
    if let Err(why) = page_is_valid(&page, thread, limit) {
        fail(user, &mut goose, why)?;
        return Ok(None);
    }
    Ok(Some(page))
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

/// In the mixed room each client writes as one user of the pool, so it may edit and delete
/// what it wrote.
fn session_author(user: &mut GooseUser) -> Uuid {
    settings().user(user.weighted_users_index % settings().users.max(1))
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

/// Reads `path`: the request's metric and, when the status is 200, its JSON (the request is
/// failed otherwise).
async fn read_json(
    user: &mut GooseUser,
    path: &str,
    name: &'static str,
) -> Result<(GooseRequestMetric, Option<Value>), Box<TransactionError>> {
    let (mut goose, status, json) = send(user, GooseMethod::Get, name, path, None, None).await?;
    match json {
        Some(v) if status == 200 => Ok((goose, Some(v))),
        _ => {
            fail(
                user,
                &mut goose,
                "status is not 200 or the body is not JSON",
            )?;
            Ok((goose, None))
        }
    }
}

/// A client that writes to a thread, then catches up on it twice: with the changes feed from
/// its last `next`, and with `after_seq` from the last message it saw. A message it wrote and
/// had acknowledged before a read began must be in what that read returns; one that is not is
/// a failure (named after the way of reading that missed it).
async fn catchup(user: &mut GooseUser) -> TransactionResult {
    let thread = pick_thread(user);
    let limit = settings().page_limit;
    if !session(user).follows.contains_key(&thread) {
        // First visit: start from where the thread is now.
        let Some(page) = read_page(user, thread, "limit=1", "newest page (position)", 1).await?
        else {
            return Ok(());
        };
        let follow = Follow {
            since: page["rev"].as_i64().unwrap_or(0),
            after_seq: page["items"][0]["seq"].as_i64().unwrap_or(0),
            ..Follow::default()
        };
        session(user).follows.insert(thread, follow);
    }
    let author = session_author(user);
    if let Some((_, id)) = post_message_in(user, author, thread).await? {
        let follow = session(user).follows.entry(thread).or_default();
        follow.unseen_by_changes.insert(id.clone());
        follow.unseen_by_after.insert(id);
    }

    // The changes feed, until caught up. A miss fails the last read, which should have had
    // the message.
    loop {
        let since = session(user).follows.entry(thread).or_default().since;
        let path = format!("/threads/{thread}/changes?since={since}&limit={limit}");
        let (mut goose, read) = read_json(user, &path, "changes since").await?;
        let Some(read) = read else {
            return Ok(());
        };
        let (Some(changes), Some(next), Some(has_more)) = (
            read["changes"].as_array(),
            read["next"].as_i64(),
            read["has_more"].as_bool(),
        ) else {
            return fail(user, &mut goose, "changes: not the documented shape");
        };
        let follow = session(user).follows.entry(thread).or_default();
        let mut last_rev = follow.since;
        let mut in_order = true;
        for change in changes {
            let rev = change["rev"].as_i64().unwrap_or(0);
            in_order &= rev > last_rev;
            last_rev = rev;
            if let Some(id) = change["id"].as_str() {
                follow.unseen_by_changes.remove(id);
            }
        }
        follow.since = next;
        let missed = !has_more && !follow.unseen_by_changes.is_empty();
        if !in_order {
            return fail(user, &mut goose, "changes: not in rev order");
        }
        if missed {
            return fail(
                user,
                &mut goose,
                "changes: an acknowledged message was never seen",
            );
        }
        if !has_more {
            break;
        }
    }

    // after_seq, until caught up.
    loop {
        let after = session(user).follows.entry(thread).or_default().after_seq;
        let path = format!("/threads/{thread}/messages?limit={limit}&after_seq={after}");
        let (mut goose, page) = read_json(user, &path, "newer page (after_seq)").await?;
        let Some(page) = page else {
            return Ok(());
        };
        if let Err(why) = page_is_valid(&page, thread, limit) {
            return fail(user, &mut goose, why);
        }
        let follow = session(user).follows.entry(thread).or_default();
        for m in page["items"].as_array().into_iter().flatten() {
            if let Some(seq) = m["seq"].as_i64() {
                follow.after_seq = follow.after_seq.max(seq);
            }
            if let Some(id) = m["id"].as_str() {
                follow.unseen_by_after.remove(id);
            }
        }
        let has_more = page["has_more"] == true;
        if !has_more && !follow.unseen_by_after.is_empty() {
            return fail(
                user,
                &mut goose,
                "after_seq: an acknowledged message was never seen",
            );
        }
        if !has_more {
            break;
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
                .register_transaction(transaction!(edit).set_name("edit").set_weight(mix.edit)?)
                .register_transaction(
                    transaction!(delete)
                        .set_name("delete")
                        .set_weight(mix.delete)?,
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
