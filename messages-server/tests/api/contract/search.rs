//! `GET /search`: every term anywhere in the text, case folded; an edit or a delete changes the
//! next answer; the threads' positions; pages; a query that cannot run is a 400 saying why.

use http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, new_id};

async fn search(app: &TestApp, query: &str) -> (StatusCode, Value) {
    let r = app
        .request(Method::GET, &format!("/search?{query}"), &[], None)
        .await;
    let body = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
    (r.status, body)
}

fn contents(body: &Value) -> Vec<String> {
    body["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|m| m["content"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

pub(super) async fn search_finds_every_term_and_follows_changes(app: &TestApp) {
    let (t, other, ada, bob) = (new_id(), new_id(), new_id(), new_id());
    let launch = app.post_text(&t, &ada, "The launch is on Friday").await;
    app.post_text(&t, &bob, "明天的会议取消了").await;
    app.post_text(&t, &bob, "Release\nnotes: see https://example.com/a?b=1")
        .await;
    app.post_text(&other, &ada, "friday elsewhere").await;
    let (status, body) = search(app, &format!("threads={t}&q=FRIDAY")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(contents(&body), ["The launch is on Friday"]);
    assert_eq!(body["has_more"], false);
    assert_eq!(body["threads"], json!([{"thread_id": t, "rev": 3}]));
    assert_eq!(body["items"][0]["thread_id"], t.as_str());
    assert_eq!(body["items"][0]["seq"], 1);
    let (_, body) = search(app, &format!("threads={t},{other}&q=fri")).await;
    assert_eq!(
        contents(&body).len(),
        2,
        "the word being typed, both threads"
    );
    let (_, body) = search(app, &format!("threads={t}&q=%E4%BC%9A%E8%AE%AE")).await;
    assert_eq!(
        contents(&body),
        ["明天的会议取消了"],
        "inside text without spaces"
    );
    let (_, body) = search(
        app,
        &format!("threads={t}&q=%22release+notes%22+example.com%2Fa%3Fb%3D1"),
    )
    .await;
    assert_eq!(
        contents(&body).len(),
        1,
        "a phrase across a line break, a URL"
    );
    let (_, body) = search(app, &format!("threads={t}&q=e&from={bob}")).await;
    assert_eq!(contents(&body).len(), 1, "by bob only");

    // The edit's old words stop finding it, its new ones do; a delete takes it out.
    let id = launch["id"].as_str().unwrap_or_default().to_owned();
    let r = app
        .edit(
            &t,
            &id,
            &ada,
            json!({"content": "The launch moved to Monday"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let (_, body) = search(app, &format!("threads={t}&q=friday")).await;
    assert!(contents(&body).is_empty(), "{body}");
    assert_eq!(body["threads"][0]["rev"], 4, "the edit is in it");
    let (_, body) = search(app, &format!("threads={t}&q=monday")).await;
    assert_eq!(contents(&body), ["The launch moved to Monday"]);
    assert_eq!(
        app.remove(&t, &id, &ada).await.status,
        StatusCode::NO_CONTENT
    );
    let (_, body) = search(app, &format!("threads={t}&q=monday")).await;
    assert!(contents(&body).is_empty());
    assert_eq!(body["threads"][0]["rev"], 5);
}

pub(super) async fn search_pages_newest_first(app: &TestApp) {
    let (t, user) = (new_id(), new_id());
    for i in 0..5 {
        app.post_text(&t, &user, &format!("standup {i}")).await;
    }
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let (status, body) = search(
            app,
            &format!("threads={t}&q=standup&limit=2&cursor={cursor}"),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        seen.extend(contents(&body));
        match body["next_cursor"].as_str() {
            Some(next) => cursor = next.to_owned(),
            None => break,
        }
    }
    assert_eq!(
        seen,
        [
            "standup 4",
            "standup 3",
            "standup 2",
            "standup 1",
            "standup 0"
        ]
    );
}

pub(super) async fn search_refuses_what_it_cannot_run(app: &TestApp) {
    let t = new_id();
    let long = "x".repeat(257);
    for (query, code) in [
        (format!("threads={t}"), "invalid_query"),
        (format!("threads={t}&q="), "invalid_query"),
        (format!("threads={t}&q=%22unclosed"), "invalid_query"),
        (format!("threads={t}&q={long}"), "invalid_query"),
        (format!("threads={t}&q=a&q=b"), "invalid_query"),
        (format!("threads={t}&q=a&from=nobody"), "invalid_from"),
        ("q=a".to_owned(), "invalid_threads"),
        (format!("threads={t}&q=a&cursor=zzz"), "invalid_cursor"),
        (format!("threads={t}&q=a&limit=0"), "invalid_limit"),
    ] {
        let r = app
            .request(Method::GET, &format!("/search?{query}"), &[], None)
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(r.error_code(), code, "{query}");
    }
    let r = app
        .request(
            Method::GET,
            &format!("/search?threads={t}&q=%22ab"),
            &[],
            None,
        )
        .await;
    let message = String::from_utf8_lossy(&r.body).to_string();
    assert!(message.contains("quoted phrase"), "says why: {message}");
}
