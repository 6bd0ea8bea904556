//! Replies (`reply_to` on `POST`), reactions (`PUT`, `DELETE` and `GET
//! /threads/{t}/messages/{id}/reactions/{emoji}`) and edit history (`GET .../edits`).

use http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, new_id};

fn id_of(message: &Value) -> String {
    message["id"].as_str().unwrap_or_default().to_owned()
}

/// `PUT` then `GET` of a message by id, as `app` answers them.
async fn get(app: &TestApp, thread: &str, id: &str) -> crate::helpers::TestResponse {
    app.request(
        Method::GET,
        &format!("/threads/{thread}/messages/{id}"),
        &[],
        None,
    )
    .await
}

/// A reply names a live message of its thread (422 `invalid_reply_to` otherwise) and keeps
/// it after that message is deleted.
pub(super) async fn a_reply_names_a_message_of_its_thread(app: &TestApp) {
    let (thread, user) = (new_id(), new_id());
    let question = app.post_text(&thread, &user, "question?").await;
    assert_eq!(question["reply_to"], Value::Null, "{question}");
    let r = app
        .create(
            &thread,
            &new_id(),
            json!({"content": "answer", "reply_to": id_of(&question)}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let answer = r.json();
    assert_eq!(answer["reply_to"], question["id"]);
    let elsewhere = app.post_text(&new_id(), &user, "elsewhere").await;
    for target in [new_id(), id_of(&elsewhere)] {
        let r = app
            .create(&thread, &user, json!({"content": "x", "reply_to": target}))
            .await;
        assert_eq!(
            (r.status, r.error_code().as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, "invalid_reply_to")
        );
    }
    let r = app
        .create(&thread, &user, json!({"content": "x", "reply_to": "nope"}))
        .await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_field")
    );
    app.remove(&thread, &id_of(&question), &user).await;
    let r = app
        .create(
            &thread,
            &user,
            json!({"content": "too late", "reply_to": id_of(&question)}),
        )
        .await;
    assert_eq!(r.error_code(), "invalid_reply_to");
    let kept = get(app, &thread, &id_of(&answer)).await.json();
    assert_eq!(kept["reply_to"], question["id"], "a reply keeps its target");
}

/// A reaction is added once (201, then 200 with nothing changed) and removed by its holder
/// (204 either way); the message carries each emoji with its count and users.
pub(super) async fn reactions_are_added_once_and_removed_by_their_holder(app: &TestApp) {
    let (thread, author, a, b) = (new_id(), new_id(), new_id(), new_id());
    let m = app.post_text(&thread, &author, "react to me").await;
    let id = id_of(&m);
    assert_eq!(m["reactions"], json!([]));
    let thumbs = "%F0%9F%91%8D"; // 👍
    let r = app.react(Method::PUT, &thread, &id, &a, thumbs).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let reacted = r.json();
    assert_eq!(
        reacted["reactions"],
        json!([{"emoji": "👍", "count": 1, "users": [a]}])
    );
    assert_eq!(reacted["rev"], m["rev"].as_i64().unwrap_or_default() + 1);
    assert_eq!(
        reacted["updated_at"], m["updated_at"],
        "a reaction is no edit"
    );
    let again = app.react(Method::PUT, &thread, &id, &a, thumbs).await;
    assert_eq!(
        (again.status, again.json()),
        (StatusCode::OK, reacted.clone())
    );
    // A shortcode, as sent encoded and not; an emoji with a skin tone.
    for emoji in [":+1:", "%3A%2B1%3A"] {
        let r = app.react(Method::PUT, &thread, &id, &b, emoji).await;
        assert!(r.status.is_success(), "{emoji}: {:?}", r.body);
    }
    let toned = app
        .react(Method::PUT, &thread, &id, &b, "%F0%9F%91%8D%F0%9F%8F%BD")
        .await;
    assert_eq!(toned.status, StatusCode::CREATED);
    let now = toned.json();
    assert_eq!(
        now["reactions"]
            .as_array()
            .map(|r| r.iter().map(|r| r["emoji"].clone()).collect::<Vec<_>>()),
        Some(vec![json!("👍"), json!(":+1:"), json!("👍🏽")])
    );
    assert_eq!(get(app, &thread, &id).await.json(), now);
    let r = app.react(Method::PUT, &thread, &id, &b, thumbs).await;
    assert_eq!(r.json()["reactions"][0]["count"], 2);
    // Who reacted, by id, a page at a time.
    let who = app
        .request(
            Method::GET,
            &format!("/threads/{thread}/messages/{id}/reactions/{thumbs}?limit=1"),
            &[],
            None,
        )
        .await;
    assert_eq!(who.status, StatusCode::OK);
    let page = who.json();
    let mut holders = [a.clone(), b.clone()];
    holders.sort();
    assert_eq!(page["count"], 2);
    assert_eq!(page["users"], json!([holders[0]]));
    assert_eq!(page["next"], json!(holders[0]));
    let rest = app
        .request(
            Method::GET,
            &format!(
                "/threads/{thread}/messages/{id}/reactions/{thumbs}?limit=1&after={}",
                holders[0]
            ),
            &[],
            None,
        )
        .await
        .json();
    assert_eq!(
        (rest["users"].clone(), rest["next"].clone()),
        (json!([holders[1]]), Value::Null)
    );
    // Removal: the holder's own, 204 whether or not it was held.
    for _ in 0..2 {
        let r = app.react(Method::DELETE, &thread, &id, &a, thumbs).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
    }
    let after = get(app, &thread, &id).await.json();
    assert_eq!(
        after["reactions"][0],
        json!({"emoji": "👍", "count": 1, "users": [b]})
    );
}

/// A bad emoji is a 400 `invalid_emoji`, a writer without identity a 400, a gone message a
/// 404, and a 21st distinct emoji a 422 `too_many_reactions`.
pub(super) async fn reactions_refuse_what_they_cannot_take(app: &TestApp) {
    let (thread, user) = (new_id(), new_id());
    let id = id_of(&app.post_text(&thread, &user, "bounded").await);
    for bad in ["abc", "%F0%9F%91%8D%F0%9F%91%8D", ":No:", "%3A%3A", "%FF"] {
        let r = app.react(Method::PUT, &thread, &id, &user, bad).await;
        assert_eq!(
            (r.status, r.error_code().as_str()),
            (StatusCode::BAD_REQUEST, "invalid_emoji"),
            "{bad}"
        );
    }
    let anonymous = app
        .request(
            Method::PUT,
            &format!("/threads/{thread}/messages/{id}/reactions/:x:"),
            &[],
            None,
        )
        .await;
    assert_eq!(anonymous.status, StatusCode::BAD_REQUEST);
    for n in 0..20 {
        let r = app
            .react(Method::PUT, &thread, &id, &user, &format!(":e{n}:"))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{n}: {:?}", r.body);
    }
    let r = app.react(Method::PUT, &thread, &id, &user, ":e20:").await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, "too_many_reactions")
    );
    let r = app
        .react(Method::PUT, &thread, &id, &new_id(), ":e3:")
        .await;
    assert_eq!(
        r.status,
        StatusCode::CREATED,
        "an emoji already there still takes one"
    );
    app.remove(&thread, &id, &user).await;
    for method in [Method::PUT, Method::DELETE, Method::GET] {
        let r = app.react(method.clone(), &thread, &id, &user, ":e1:").await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{method}");
    }
    let r = app
        .react(Method::PUT, &thread, &new_id(), &user, ":e1:")
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

/// A reaction reaches the changes feed and the newest page (cached or not) at once, like an
/// edit.
pub(super) async fn reactions_reach_the_changes_feed_and_the_newest_page(app: &TestApp) {
    let (thread, user) = (new_id(), new_id());
    let m = app.post_text(&thread, &user, "watched").await;
    let id = id_of(&m);
    // The newest page, read once so a cache holds it.
    let before = app.page(&thread, "").await;
    let since = before["rev"].as_i64().unwrap_or_default();
    let reacted = app
        .react(Method::PUT, &thread, &id, &new_id(), "%F0%9F%8E%89")
        .await
        .json();
    let page = app.page(&thread, "").await;
    assert_eq!(
        page["items"][0], reacted,
        "the page shows the reaction at once"
    );
    assert_eq!(page["rev"], reacted["rev"]);
    let changes = app.changes(&thread, &format!("?since={since}")).await;
    assert_eq!(changes["changes"], json!([reacted]));
}

/// Every edit keeps the version it replaced: `GET .../edits` lists them oldest first with the
/// current one last; a deleted message has none (404).
pub(super) async fn edit_history_lists_every_version(app: &TestApp) {
    let (thread, user) = (new_id(), new_id());
    let m = app.post_text(&thread, &user, "first").await;
    let id = id_of(&m);
    let edits = |thread: String, id: String| async move {
        app.request(
            Method::GET,
            &format!("/threads/{thread}/messages/{id}/edits"),
            &[],
            None,
        )
        .await
    };
    let one = edits(thread.clone(), id.clone()).await;
    assert_eq!(one.status, StatusCode::OK);
    assert_eq!(
        one.json(),
        json!({"versions": [{"content": "first", "paths": [], "edited_at": m["created_at"], "rev": m["seq"]}]})
    );
    let second = app
        .edit(&thread, &id, &user, json!({"content": "second"}))
        .await
        .json();
    let third = app
        .edit(&thread, &id, &user, json!({"paths": ["a.txt"]}))
        .await
        .json();
    let history = edits(thread.clone(), id.clone()).await.json();
    assert_eq!(
        history["versions"],
        json!([
            {"content": "first", "paths": [], "edited_at": m["created_at"], "rev": m["seq"]},
            {"content": "second", "paths": [], "edited_at": second["updated_at"], "rev": second["rev"]},
            {"content": "second", "paths": ["a.txt"], "edited_at": third["updated_at"], "rev": third["rev"]},
        ])
    );
    assert_eq!(
        edits(new_id(), id.clone()).await.status,
        StatusCode::NOT_FOUND
    );
    app.remove(&thread, &id, &user).await;
    let gone = edits(thread, id).await;
    assert_eq!(
        (gone.status, gone.error_code().as_str()),
        (StatusCode::NOT_FOUND, "not_found")
    );
}
