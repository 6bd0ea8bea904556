//! `GET /threads/{t}/changes`: the changes feed.

use http::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{TestApp, new_id};

pub(super) async fn the_changes_feed_follows_edits_and_deletes(app: &TestApp) {
    let thread = new_id();
    let user = new_id();
    let a = app.post_text(&thread, &user, "a").await;
    let b = app.post_text(&thread, &user, "b").await;
    let page = app.page(&thread, "").await;
    let position = page["rev"].as_i64().unwrap_or(-1);
    assert_eq!(position, 2);
    // While the client is away: an edit, a delete, a new message.
    let id = |m: &serde_json::Value| m["id"].as_str().unwrap_or_default().to_owned();
    let edited = app
        .edit(&thread, &id(&a), &user, json!({"content": "a, edited"}))
        .await
        .json();
    assert_eq!(edited["rev"], 3);
    assert_eq!(
        app.remove(&thread, &id(&b), &user).await.status,
        StatusCode::NO_CONTENT
    );
    let c = app.post_text(&thread, &user, "c").await;

    let changes = app.changes(&thread, &format!("?since={position}")).await;
    let list = changes["changes"].as_array().cloned().unwrap_or_default();
    assert_eq!(list.len(), 3);
    assert_eq!(list[0], edited);
    assert_eq!(
        (
            list[1]["id"].clone(),
            list[1]["seq"].clone(),
            list[1]["rev"].clone()
        ),
        (b["id"].clone(), json!(2), json!(4)),
        "the deletion, as a tombstone"
    );
    assert!(list[1]["deleted_at"].is_string() && list[1].get("content").is_none());
    assert_eq!(list[2], c);
    assert_eq!(
        (changes["next"].clone(), changes["has_more"].clone()),
        (json!(5), json!(false))
    );
    // Nothing new: the same position back.
    let idle = app.changes(&thread, "?since=5").await;
    assert_eq!(idle, json!({"changes": [], "next": 5, "has_more": false}));
    // From the start, in pieces.
    let first = app.changes(&thread, "?since=0&limit=2").await;
    assert_eq!(first["has_more"], true);
    assert_eq!(first["changes"].as_array().map(Vec::len), Some(2));
    let rest = app
        .changes(&thread, &format!("?since={}&limit=2", first["next"]))
        .await;
    assert_eq!(rest["has_more"], false);
    assert_eq!(rest["next"], 5);
    // A thread never written.
    assert_eq!(
        app.changes(&new_id(), "").await,
        json!({"changes": [], "next": 0, "has_more": false})
    );
    for (query, code) in [
        ("?since=-1", "invalid_since"),
        ("?since=x", "invalid_since"),
        ("?since=1&since=2", "invalid_since"),
        ("?limit=0", "invalid_limit"),
        ("?limit=1001", "invalid_limit"),
    ] {
        let r = app
            .request(
                Method::GET,
                &format!("/threads/{thread}/changes{query}"),
                &[],
                None,
            )
            .await;
        assert_eq!(
            (r.status, r.error_code().as_str()),
            (StatusCode::BAD_REQUEST, code),
            "{query}"
        );
    }
}
