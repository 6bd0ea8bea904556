//! Reply threads: `root_id` and `replies` on the message, `GET
//! /threads/{t}/messages/{id}/replies`, and the root's change reaching the newest page and the
//! changes feed with the number after the reply's.

use http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestResponse, new_id};

fn id_of(message: &Value) -> String {
    message["id"].as_str().unwrap_or_default().to_owned()
}

async fn reply(app: &TestApp, thread: &str, user: &str, to: &Value, text: &str) -> Value {
    let r = app
        .create(
            thread,
            user,
            json!({"content": text, "reply_to": id_of(to)}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    r.json()
}

async fn replies(app: &TestApp, thread: &str, root: &str, query: &str) -> TestResponse {
    app.request(
        Method::GET,
        &format!("/threads/{thread}/messages/{root}/replies{query}"),
        &[],
        None,
    )
    .await
}

/// A reply names its conversation's root; the root carries its summary at the number after
/// the reply's, in the newest page (cached or not) and the changes feed; its replies page
/// oldest first; a reply to a reply joins the same root; a deleted reply leaves the count.
pub(super) async fn a_root_shows_its_replies_and_pages_them(app: &TestApp) {
    let (thread, a, b) = (new_id(), new_id(), new_id());
    let root = app.post_text(&thread, &a, "root").await;
    assert_eq!(root["root_id"], Value::Null, "{root}");
    assert_eq!(root["replies"], Value::Null, "{root}");
    // Cache the newest page before the reply: the reply must make it stale.
    app.page(&thread, "").await;
    let first = reply(app, &thread, &b, &root, "first").await;
    assert_eq!(first["root_id"], root["id"]);
    let second = reply(app, &thread, &a, &first, "second").await;
    assert_eq!(second["reply_to"], first["id"]);
    assert_eq!(
        second["root_id"], root["id"],
        "a reply to a reply joins the root"
    );
    let newest = app.page(&thread, "").await;
    let listed = newest["items"]
        .as_array()
        .and_then(|items| items.iter().find(|m| m["id"] == root["id"]).cloned())
        .expect("the root in the newest page");
    let summary = &listed["replies"];
    assert_eq!(summary["count"], 2, "{listed}");
    assert_eq!(summary["last_reply_id"], second["id"]);
    assert_eq!(summary["last_reply_at"], second["created_at"]);
    assert_eq!(summary["participants"], json!([a, b]));
    let second_seq = second["seq"].as_i64().unwrap_or_default();
    assert_eq!(
        listed["rev"],
        second_seq + 1,
        "the root takes the number after the reply"
    );
    assert_eq!(newest["rev"], second_seq + 1);
    let changes = app
        .changes(&thread, &format!("?since={}", second_seq - 1))
        .await;
    let ids: Vec<&Value> = changes["changes"]
        .as_array()
        .map(|c| c.iter().map(|m| &m["id"]).collect())
        .unwrap_or_default();
    assert_eq!(ids, [&second["id"], &root["id"]]);

    let third = reply(app, &thread, &b, &root, "third").await;
    let r = replies(app, &thread, &id_of(&root), "?limit=2").await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let page = r.json();
    assert_eq!(
        crate::helpers::item_ids(&page),
        [id_of(&first), id_of(&second)]
    );
    assert_eq!(page["has_more"], true);
    let cursor = page["next_cursor"].as_str().unwrap_or_default().to_owned();
    let page = replies(
        app,
        &thread,
        &id_of(&root),
        &format!("?limit=2&cursor={cursor}"),
    )
    .await
    .json();
    assert_eq!(crate::helpers::item_ids(&page), [id_of(&third)]);
    assert_eq!(page["has_more"], false);
    assert_eq!(page["next_cursor"], Value::Null);
    let page = replies(
        app,
        &thread,
        &id_of(&root),
        &format!("?after_seq={second_seq}"),
    )
    .await
    .json();
    assert_eq!(crate::helpers::item_ids(&page), [id_of(&third)]);

    let r = app.remove(&thread, &id_of(&third), &b).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
    let now = app
        .request(
            Method::GET,
            &format!("/threads/{thread}/messages/{}", id_of(&root)),
            &[],
            None,
        )
        .await
        .json();
    assert_eq!(
        now["replies"]["count"], 2,
        "a deleted reply leaves the count at once"
    );
    assert_eq!(now["replies"]["last_reply_id"], second["id"]);
}

/// The replies route answers 404 for an unknown or deleted root and for a reply, and 400 for
/// a backward position.
pub(super) async fn replies_refuse_what_is_no_root(app: &TestApp) {
    let (thread, user) = (new_id(), new_id());
    let root = app.post_text(&thread, &user, "root").await;
    let answer = reply(app, &thread, &user, &root, "answer").await;
    for missing in [new_id(), id_of(&answer)] {
        let r = replies(app, &thread, &missing, "").await;
        assert_eq!(
            (r.status, r.error_code().as_str()),
            (StatusCode::NOT_FOUND, "not_found")
        );
    }
    for query in [
        "?before_seq=3",
        "?around=00000000-0000-0000-0000-000000000000",
        "?limit=0",
    ] {
        let r = replies(app, &thread, &id_of(&root), query).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{query}: {:?}", r.body);
    }
    let r = replies(app, &thread, "nope", "").await;
    assert_eq!(r.error_code(), "invalid_message_id");
    app.remove(&thread, &id_of(&root), &user).await;
    let r = replies(app, &thread, &id_of(&root), "").await;
    assert_eq!(
        r.status,
        StatusCode::NOT_FOUND,
        "a deleted root has no replies page"
    );
}

async fn send(
    app: &TestApp,
    method: Method,
    path: &str,
    user: &str,
    body: Option<Value>,
) -> TestResponse {
    let body = body.map(|b| b.to_string().into_bytes());
    app.request(method, path, &[("x-user-id", user)], body)
        .await
}

/// Two users in a conversation: the root's author and a replier follow it, the inbox counts
/// the replies each has not read, reading clears it, unfollowing takes it out; bad input is a
/// 4xx, never a 500.
pub(super) async fn followed_conversations_fill_the_inbox(app: &TestApp) {
    let (thread, a, b) = (new_id(), new_id(), new_id());
    let root = app.post_text(&thread, &a, "root").await;
    let root_id = id_of(&root);
    let inbox = format!("/replies/inbox?threads={thread}");
    let empty = send(app, Method::GET, &inbox, &a, None).await;
    assert_eq!(empty.status, StatusCode::OK, "{:?}", empty.body);
    assert_eq!(empty.json()["items"], json!([]));
    let first = reply(app, &thread, &b, &root, "first").await;
    let second = reply(app, &thread, &b, &root, "second").await;
    let page = send(app, Method::GET, &inbox, &a, None).await.json();
    let item = &page["items"][0];
    assert_eq!(item["root"]["id"], root["id"], "{page}");
    assert_eq!(item["root"]["replies"]["count"], 2);
    assert_eq!(
        (item["following"].clone(), item["unread"].clone()),
        (json!(true), json!(2))
    );
    assert_eq!(item["first_unread_seq"], first["seq"]);
    assert_eq!(page["has_more"], false);
    let own = send(app, Method::GET, &inbox, &b, None).await.json();
    assert_eq!(
        own["items"][0]["unread"], 0,
        "a replier's own replies are read"
    );
    let read = send(
        app,
        Method::PUT,
        &format!("/threads/{thread}/messages/{root_id}/replies/read"),
        &a,
        Some(json!({"seq": second["seq"]})),
    )
    .await;
    assert_eq!(read.status, StatusCode::OK, "{:?}", read.body);
    assert_eq!(
        (read.json()["unread"].clone(), read.json()["seq"].clone()),
        (json!(0), second["seq"].clone())
    );
    let follow = format!("/threads/{thread}/messages/{root_id}/follow");
    let off = send(app, Method::DELETE, &follow, &a, None).await;
    assert_eq!(
        (off.status, off.json()["following"].clone()),
        (StatusCode::OK, json!(false))
    );
    assert_eq!(
        send(app, Method::GET, &inbox, &a, None).await.json()["items"],
        json!([])
    );
    let on = send(app, Method::PUT, &follow, &a, None).await;
    assert_eq!(on.json()["following"], true);
    // Paging: a second conversation, one a page.
    let other = app.post_text(&thread, &a, "other root").await;
    reply(app, &thread, &b, &other, "x").await;
    let page = send(app, Method::GET, &format!("{inbox}&limit=1"), &a, None)
        .await
        .json();
    assert_eq!(
        page["items"][0]["root"]["id"], other["id"],
        "the latest reply first"
    );
    let cursor = page["next_cursor"].as_str().unwrap_or_default().to_owned();
    let next = send(
        app,
        Method::GET,
        &format!("{inbox}&limit=1&cursor={cursor}"),
        &a,
        None,
    )
    .await
    .json();
    assert_eq!(next["items"][0]["root"]["id"], root["id"]);
    assert_eq!(next["has_more"], false);
    // Refusals.
    for (method, path, body, status) in [
        (
            Method::GET,
            "/replies/inbox".to_owned(),
            None,
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::GET,
            format!("{inbox}&cursor=nope"),
            None,
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::GET,
            format!("{inbox}&limit=0"),
            None,
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::PUT,
            format!("/threads/{thread}/messages/{}/follow", id_of(&first)),
            None,
            StatusCode::NOT_FOUND,
        ),
        (
            Method::PUT,
            format!("/threads/{thread}/messages/{root_id}/replies/read"),
            Some(json!({"seq": -1})),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            Method::PUT,
            format!("/threads/{thread}/messages/{root_id}/replies/read"),
            Some(json!({"at": 1})),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ] {
        let r = send(app, method.clone(), &path, &a, body).await;
        assert_eq!(r.status, status, "{method} {path}: {:?}", r.body);
    }
    let r = app.request(Method::GET, &inbox, &[], None).await;
    assert!(
        r.status.is_client_error(),
        "an inbox needs a user: {:?}",
        r.body
    );
}
