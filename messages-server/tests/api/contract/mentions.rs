//! `mentions` on `POST` and `PUT` of a message: kept, answered, replaced by an edit, kept in the
//! history; a malformed one refused with `invalid_mentions` naming the entry.

use http::StatusCode;
use serde_json::json;

use crate::helpers::{TestApp, new_id};

pub(super) async fn mentions_are_kept_replaced_and_checked(app: &TestApp) {
    let (thread, author, a, b) = (new_id(), new_id(), new_id(), new_id());
    let r = app
        .create(
            &thread,
            &author,
            json!({"content": "hi", "mentions": {"users": [a, a, author], "room": false}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let m = r.json();
    assert_eq!(
        m["mentions"],
        json!({"users": [a], "room": false}),
        "duplicates folded, the author left out"
    );
    let id = m["id"].as_str().unwrap_or_default().to_owned();
    let plain = app.post_text(&thread, &author, "to no one").await;
    assert!(plain.get("mentions").is_none(), "absent when no one");
    let only_self = app
        .create(
            &thread,
            &author,
            json!({"content": "me", "mentions": {"users": [author]}}),
        )
        .await;
    assert!(only_self.json().get("mentions").is_none());

    let r = app
        .edit(
            &thread,
            &id,
            &author,
            json!({"mentions": {"users": [b], "room": true}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["mentions"], json!({"users": [b], "room": true}));
    assert_eq!(r.json()["content"], "hi", "only the mentions changed");
    let r = app
        .edit(&thread, &id, &author, json!({"content": "hi again"}))
        .await;
    assert_eq!(
        r.json()["mentions"],
        json!({"users": [b], "room": true}),
        "an edit without mentions keeps them"
    );
    let got = app
        .request(
            http::Method::GET,
            &format!("/threads/{thread}/messages/{id}/edits"),
            &[],
            None,
        )
        .await
        .json();
    assert_eq!(
        got["versions"][0]["mentions"],
        json!({"users": [a], "room": false})
    );
    assert_eq!(
        got["versions"][1]["mentions"],
        json!({"users": [b], "room": true})
    );

    for (body, names) in [
        (
            json!({"content": "x", "mentions": {"users": [a, "nobody"]}}),
            "mentions.users[1]",
        ),
        (
            json!({"content": "x", "mentions": {"users": [null]}}),
            "mentions.users[0]",
        ),
        (
            json!({"content": "x", "mentions": {"users": a}}),
            "mentions.users",
        ),
        (
            json!({"content": "x", "mentions": {"room": "yes"}}),
            "mentions.room",
        ),
        (
            json!({"content": "x", "mentions": {"everyone": true}}),
            "mentions.everyone",
        ),
        (json!({"content": "x", "mentions": [a]}), "mentions"),
    ] {
        let r = app.create(&thread, &author, body.clone()).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(r.error_code(), "invalid_mentions", "{body}");
        let message = r.json()["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(message.starts_with(names), "{message} names {names}");
    }
    let too_many: Vec<String> = (0..51).map(|_| new_id()).collect();
    let r = app
        .create(
            &thread,
            &author,
            json!({"content": "x", "mentions": {"users": too_many}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.error_code(), "invalid_mentions");
    let r = app
        .edit(&thread, &id, &author, json!({"mentions": {"users": ["x"]}}))
        .await;
    assert_eq!(
        r.error_code(),
        "invalid_mentions",
        "an edit is checked the same way"
    );
}

pub(super) async fn mention_counts_reach_every_read_state(app: &TestApp) {
    let (thread, author, reader) = (new_id(), new_id(), new_id());
    let first = app
        .create(
            &thread,
            &author,
            json!({"content": "you", "mentions": {"users": [reader]}}),
        )
        .await
        .json();
    app.create(
        &thread,
        &author,
        json!({"content": "all", "mentions": {"room": true}}),
    )
    .await;
    app.post_text(&thread, &author, "chatter").await;
    let user = [("x-user-id", reader.as_str())];
    let unread = app
        .request(
            http::Method::GET,
            &format!("/unread?threads={thread}"),
            &user,
            None,
        )
        .await
        .json();
    assert_eq!(unread["threads"][0]["unread"], 3);
    assert_eq!(unread["threads"][0]["mentions"], 2);
    let body = json!({"seq": first["seq"]}).to_string().into_bytes();
    let moved = app
        .request(
            http::Method::PUT,
            &format!("/threads/{thread}/read"),
            &[
                ("x-user-id", reader.as_str()),
                ("content-type", "application/json"),
            ],
            Some(body),
        )
        .await
        .json();
    assert_eq!(
        (moved["unread"].clone(), moved["mentions"].clone()),
        (json!(2), json!(1))
    );
    let state = app
        .request(
            http::Method::GET,
            &format!("/threads/{thread}/read"),
            &user,
            None,
        )
        .await
        .json();
    assert_eq!(state["mentions"], 1);
    let authors = app
        .request(
            http::Method::GET,
            &format!("/threads/{thread}/read"),
            &[("x-user-id", author.as_str())],
            None,
        )
        .await
        .json();
    assert_eq!(
        authors["mentions"], 0,
        "their own room mention is not for them"
    );
}

pub(super) async fn mentions_of_the_caller_page_newest_first(app: &TestApp) {
    let (t1, t2, author, reader) = (new_id(), new_id(), new_id(), new_id());
    let mut mentioned = Vec::new();
    for (i, thread) in [&t1, &t2, &t1, &t2, &t1].into_iter().enumerate() {
        let body = match i {
            1 => json!({"content": "all", "mentions": {"room": true}}),
            _ => json!({"content": "you", "mentions": {"users": [reader]}}),
        };
        let m = app.create(thread, &author, body).await.json();
        mentioned.push(m["id"].as_str().unwrap_or_default().to_owned());
        app.post_text(thread, &author, "chatter").await;
    }
    mentioned.reverse();
    let user = [("x-user-id", reader.as_str())];
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = app
            .request(
                http::Method::GET,
                &format!("/mentions?threads={t1},{t2}&limit=2&cursor={cursor}"),
                &user,
                None,
            )
            .await;
        assert_eq!(page.status, StatusCode::OK);
        let page = page.json();
        for item in page["items"].as_array().cloned().unwrap_or_default() {
            assert!(item["seq"].as_i64().is_some() && item["thread_id"].is_string());
            seen.push(item["id"].as_str().unwrap_or_default().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = next.to_owned(),
            None => break,
        }
    }
    assert_eq!(seen, mentioned, "newest first, each once");
    let body = json!({"seq": 1_000_000}).to_string().into_bytes();
    app.request(
        http::Method::PUT,
        &format!("/threads/{t1}/read"),
        &[
            ("x-user-id", reader.as_str()),
            ("content-type", "application/json"),
        ],
        Some(body),
    )
    .await;
    let unread = app
        .request(
            http::Method::GET,
            &format!("/mentions?threads={t1},{t2}&unread_only=true"),
            &user,
            None,
        )
        .await
        .json();
    assert_eq!(
        unread["items"].as_array().map(Vec::len),
        Some(2),
        "the second thread's two"
    );
    for (query, code) in [
        (
            format!("/mentions?threads={t1}&cursor=nope"),
            "invalid_cursor",
        ),
        (
            format!("/mentions?threads={t1}&unread_only=maybe"),
            "invalid_unread_only",
        ),
        ("/mentions".to_owned(), "invalid_threads"),
        (format!("/mentions?threads={t1}&limit=0"), "invalid_limit"),
    ] {
        let r = app.request(http::Method::GET, &query, &user, None).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(r.error_code(), code, "{query}");
    }
}
