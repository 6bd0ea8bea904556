//! What every scenario shares: the session of a goose user, requests with their checks, and
//! the picks of thread and user.

use goose::metrics::GooseRequestMetric;
use goose::prelude::*;
use serde_json::Value;
use uuid::Uuid;

use crate::settings::Settings;

/// Where a catching-up client is in one thread, and what it wrote there but has not seen.
#[derive(Clone, Default)]
pub(crate) struct Follow {
    /// The position of the changes feed (`since`).
    pub(crate) since: i64,
    /// The `seq` of the last message seen through `after_seq`.
    pub(crate) after_seq: i64,
    /// Messages written and acknowledged, not yet seen in the changes feed.
    pub(crate) unseen_by_changes: std::collections::HashSet<String>,
    /// The same, for `after_seq`.
    pub(crate) unseen_by_after: std::collections::HashSet<String>,
}

/// What one simulated client remembers.
#[derive(Clone)]
pub(crate) struct Session {
    pub(crate) prefix: String,
    /// Messages this client created (thread, id), newest last, for edits and deletes.
    pub(crate) own: Vec<(Uuid, String)>,
    /// The catch-up state per thread.
    pub(crate) follows: std::collections::HashMap<Uuid, Follow>,
    /// Messages of the last page this client read (thread, id), to reply and react to.
    pub(crate) seen: Vec<(Uuid, String)>,
    /// The thread of the last page read and that page's `rev`, to mark read.
    pub(crate) last_read: Option<(Uuid, i64)>,
    pub(crate) rng: u64,
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

    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    pub(crate) fn chance(&mut self, p: f64) -> bool {
        (self.next() % 1_000_000) as f64 / 1_000_000.0 < p
    }
}

pub(crate) fn settings() -> &'static Settings {
    crate::settings::get()
}

pub(crate) async fn start(user: &mut GooseUser) -> TransactionResult {
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
        seen: Vec::new(),
        last_read: None,
        rng,
    });
    Ok(())
}

pub(crate) fn session(user: &mut GooseUser) -> &mut Session {
    user.get_session_data_unchecked_mut::<Session>()
}

/// Fails the request in goose's metrics with `why`.
pub(crate) fn fail(
    user: &mut GooseUser,
    request: &mut GooseRequestMetric,
    why: &str,
) -> TransactionResult {
    user.set_failure(why, request, None, None)
}

pub(crate) async fn send(
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
pub(crate) fn page_is_valid(page: &Value, thread: Uuid, limit: usize) -> Result<(), &'static str> {
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

pub(crate) fn message_is_valid(m: &Value, thread: Uuid, content: Option<&str>) -> bool {
    m["id"].is_string()
        && m["thread_id"].as_str() == Some(thread.to_string().as_str())
        && m["created_at"].is_string()
        && content.is_none_or(|c| m["content"].as_str() == Some(c))
}

pub(crate) fn pick_thread(user: &mut GooseUser) -> Uuid {
    let n = settings().threads;
    let i = session(user).below(n);
    settings().thread(i)
}

pub(crate) fn pick_user(user: &mut GooseUser) -> Uuid {
    let n = settings().users;
    let i = session(user).below(n);
    settings().user(i)
}

/// Creates a message in a random thread as `author`; returns the new message's id.
pub(crate) async fn post_message(
    user: &mut GooseUser,
    author: Uuid,
) -> Result<Option<(Uuid, String)>, Box<TransactionError>> {
    let thread = pick_thread(user);
    post_message_in(user, author, thread).await
}

/// Creates a message in `thread` as `author`; returns the new message's id.
pub(crate) async fn post_message_in(
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

/// Reads `path`: the request's metric and, when the status is 200, its JSON (the request is
/// failed otherwise).
pub(crate) async fn read_json(
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

pub(crate) async fn read_page(
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

/// In the mixed room each client writes as one user of the pool, so it may edit and delete
/// what it wrote.
pub(crate) fn session_author(user: &mut GooseUser) -> Uuid {
    settings().user(user.weighted_users_index % settings().users.max(1))
}
