//! Moderation: a moderator (`X-User-Roles: moderator`, as the gateway sets it) removes anyone's
//! message with a reason, which the changes feed and the event stream carry.

use std::time::Duration;

use http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestResponse, new_id};

async fn remove_as(
    app: &TestApp,
    thread: &str,
    id: &str,
    headers: &[(&str, &str)],
    query: &str,
    body: Option<Value>,
) -> TestResponse {
    let mut headers = headers.to_vec();
    if body.is_some() {
        headers.push(("content-type", "application/json"));
    }
    app.request(
        Method::DELETE,
        &format!("/threads/{thread}/messages/{id}{query}"),
        &headers,
        body.map(|b| b.to_string().into_bytes()),
    )
    .await
}

fn id_of(message: &Value) -> String {
    message["id"].as_str().unwrap_or_default().to_owned()
}

/// A moderator removes another's message with a reason (in the query or the body); the
/// tombstone names them and keeps the reason; anyone else still gets 403.
pub(super) async fn a_moderator_removes_any_message_with_a_reason(app: &TestApp) {
    let (thread, author, moderator, stranger) = (new_id(), new_id(), new_id(), new_id());
    let first = app.post_text(&thread, &author, "one").await;
    let second = app.post_text(&thread, &author, "two").await;
    let third = app.post_text(&thread, &author, "three").await;
    let head = third["rev"].as_i64().unwrap_or_default();
    let mut stream = app
        .events(&thread, &format!("?since={head}"), &[])
        .await
        .unwrap_or_else(|r| panic!("stream: {:?}", r.status));

    for roles in ["", "moderators", "admin"] {
        let r = remove_as(
            app,
            &thread,
            &id_of(&first),
            &[("x-user-id", &stranger), ("x-user-roles", roles)],
            "",
            None,
        )
        .await;
        assert_eq!(
            (r.status, r.error_code().as_str()),
            (StatusCode::FORBIDDEN, "forbidden"),
            "roles {roles:?}"
        );
    }
    let mod_headers = [
        ("x-user-id", moderator.as_str()),
        ("x-user-roles", "admin, moderator"),
    ];
    let r = remove_as(
        app,
        &thread,
        &id_of(&first),
        &mod_headers,
        "?reason=spam%20link",
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
    let r = remove_as(
        app,
        &thread,
        &id_of(&second),
        &mod_headers,
        "",
        Some(json!({"reason": "off topic"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);

    let changes = app.changes(&thread, &format!("?since={head}")).await;
    let tombstones: Vec<(Value, Value, Value)> = changes["changes"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|c| {
                    (
                        c["id"].clone(),
                        c["deleted_by"].clone(),
                        c["reason"].clone(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        tombstones,
        vec![
            (first["id"].clone(), json!(moderator), json!("spam link")),
            (second["id"].clone(), json!(moderator), json!("off topic")),
        ]
    );
    let streamed = stream.take(2, Duration::from_secs(5)).await;
    let seen: Vec<(&str, Value, Value)> = streamed
        .iter()
        .map(|e| {
            (
                e.event.as_str(),
                e.data["deleted_by"].clone(),
                e.data["reason"].clone(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        vec![
            ("message.deleted", json!(moderator), json!("spam link")),
            ("message.deleted", json!(moderator), json!("off topic")),
        ]
    );

    // The author removes their own: no `deleted_by`; editing stays the author's alone.
    let r = app
        .edit(
            &thread,
            &id_of(&third),
            &moderator,
            json!({"content": "rewritten"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(
        app.remove(&thread, &id_of(&third), &author).await.status,
        StatusCode::NO_CONTENT
    );
    let last = app.changes(&thread, &format!("?since={}", head + 2)).await;
    assert_eq!(last["changes"][0]["id"], third["id"]);
    assert!(last["changes"][0].get("deleted_by").is_none(), "{last}");
    assert!(last["changes"][0].get("reason").is_none(), "{last}");
}

/// A reason is checked: at most 512 characters, in the query or the body but not both, and
/// a body must be `{"reason"}`.
pub(super) async fn a_removal_reason_is_checked(app: &TestApp) {
    let (thread, author) = (new_id(), new_id());
    let m = app.post_text(&thread, &author, "keep me").await;
    let headers = [("x-user-id", author.as_str())];
    let long = "x".repeat(513);
    for (query, body, status, code) in [
        (
            format!("?reason={long}"),
            None,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
        ),
        (
            "?reason=a".to_owned(),
            Some(json!({"reason": "b"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
        ),
        (
            String::new(),
            Some(json!({"why": "b"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
        ),
        (
            String::new(),
            Some(json!({"reason": 3})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
        ),
    ] {
        let r = remove_as(app, &thread, &id_of(&m), &headers, &query, body.clone()).await;
        assert_eq!(
            (r.status, r.error_code().as_str()),
            (status, code),
            "{query:.20} {body:?}"
        );
    }
    let r = app
        .request(
            Method::DELETE,
            &format!("/threads/{thread}/messages/{}", id_of(&m)),
            &[("x-user-id", &author), ("content-type", "application/json")],
            Some(b"{\"reason\":".to_vec()),
        )
        .await;
    assert_eq!(r.error_code(), "invalid_json");
    // Nothing was removed by the refused requests; the most a reason may be is kept whole.
    let most = "é".repeat(512);
    let r = remove_as(
        app,
        &thread,
        &id_of(&m),
        &headers,
        "",
        Some(json!({"reason": most})),
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let changes = app.changes(&thread, "").await;
    assert_eq!(changes["changes"][0]["reason"], json!(most));
}

async fn bulk(app: &TestApp, thread: &str, user: &str, roles: &str, body: Value) -> TestResponse {
    app.request(
        Method::POST,
        &format!("/threads/{thread}/messages/bulk-delete"),
        &[
            ("x-user-id", user),
            ("x-user-roles", roles),
            ("content-type", "application/json"),
        ],
        Some(body.to_string().into_bytes()),
    )
    .await
}

/// A bulk delete is for moderators, removes every id or none (an id named twice or not live
/// in the thread is a 422 naming it), and answers the tombstones in the order given.
pub(super) async fn a_bulk_delete_is_for_moderators_and_all_or_nothing(app: &TestApp) {
    let (thread, author, moderator) = (new_id(), new_id(), new_id());
    let mut messages = Vec::new();
    for i in 0..3 {
        messages.push(app.post_text(&thread, &author, &format!("m{i}")).await);
    }
    let ids: Vec<String> = messages.iter().map(id_of).collect();
    let head = messages[2]["rev"].as_i64().unwrap_or_default();

    let r = bulk(app, &thread, &author, "", json!({"ids": [ids[0]]})).await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (StatusCode::FORBIDDEN, "forbidden")
    );
    let unknown = new_id();
    for (body, status, code, named) in [
        (
            json!({"ids": [ids[0], ids[0]]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_ids",
            Some(&ids[0]),
        ),
        (
            json!({"ids": [ids[1], unknown]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_ids",
            Some(&unknown),
        ),
        (
            json!({"ids": []}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            None,
        ),
        (
            json!({"ids": vec![ids[0].clone(); 101]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            None,
        ),
        (
            json!({"ids": ["nope"]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            None,
        ),
        (
            json!({"ids": [ids[0]], "why": "x"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            None,
        ),
    ] {
        let r = bulk(app, &thread, &moderator, "moderator", body.clone()).await;
        assert_eq!(
            (r.status, r.error_code().as_str()),
            (status, code),
            "{body}"
        );
        if let Some(id) = named {
            let message = r.json()["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            assert!(message.contains(id.as_str()), "{message} names {id}");
        }
    }
    assert_eq!(
        app.changes(&thread, &format!("?since={head}")).await["changes"],
        json!([]),
        "nothing was deleted by a refused bulk delete"
    );

    let r = bulk(
        app,
        &thread,
        &moderator,
        "moderator",
        json!({"ids": [ids[2], ids[0]], "reason": "raid"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let deleted = r.json()["deleted"].clone();
    let got: Vec<(Value, Value, Value, Value)> = deleted
        .as_array()
        .map(|a| {
            a.iter()
                .map(|d| {
                    (
                        d["id"].clone(),
                        d["rev"].clone(),
                        d["deleted_by"].clone(),
                        d["reason"].clone(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        got,
        vec![
            (
                json!(ids[2]),
                json!(head + 1),
                json!(moderator),
                json!("raid")
            ),
            (
                json!(ids[0]),
                json!(head + 2),
                json!(moderator),
                json!("raid")
            ),
        ]
    );
    let page = app.page(&thread, "").await;
    assert_eq!(page["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(page["items"][0]["id"], json!(ids[1]));
}

/// A moderator removes another user's reaction (`?user=`); nobody else may.
pub(super) async fn a_moderator_removes_anyones_reaction(app: &TestApp) {
    let (thread, author, reader, moderator) = (new_id(), new_id(), new_id(), new_id());
    let m = app.post_text(&thread, &author, "react to me").await;
    let thumbs = "%F0%9F%91%8D";
    let r = app
        .react(Method::PUT, &thread, &id_of(&m), &reader, thumbs)
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let path = format!(
        "/threads/{thread}/messages/{}/reactions/{thumbs}?user={reader}",
        id_of(&m)
    );
    let r = app
        .request(Method::DELETE, &path, &[("x-user-id", &author)], None)
        .await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (StatusCode::FORBIDDEN, "forbidden")
    );
    let r = app
        .request(
            Method::DELETE,
            &path,
            &[("x-user-id", &moderator), ("x-user-roles", "moderator")],
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
    let r = app
        .request(
            Method::GET,
            &format!("/threads/{thread}/messages/{}", id_of(&m)),
            &[],
            None,
        )
        .await;
    assert_eq!(
        r.json()["reactions"],
        json!([]),
        "the reader's reaction is gone"
    );
    let bad = app
        .request(
            Method::DELETE,
            &format!(
                "/threads/{thread}/messages/{}/reactions/{thumbs}?user=nope",
                id_of(&m)
            ),
            &[("x-user-id", &moderator), ("x-user-roles", "moderator")],
            None,
        )
        .await;
    assert_eq!(bad.error_code(), "invalid_user_id");
}

/// A moderator clears every reaction of a message (one change, seen in the changes feed);
/// nobody else may.
pub(super) async fn a_moderator_clears_a_messages_reactions(app: &TestApp) {
    let (thread, author, moderator) = (new_id(), new_id(), new_id());
    let m = app.post_text(&thread, &author, "too popular").await;
    for (user, emoji) in [(new_id(), "%F0%9F%91%8D"), (new_id(), "%F0%9F%8E%89")] {
        let r = app
            .react(Method::PUT, &thread, &id_of(&m), &user, emoji)
            .await;
        assert_eq!(r.status, StatusCode::CREATED);
    }
    let path = format!("/threads/{thread}/messages/{}/reactions", id_of(&m));
    let r = app
        .request(Method::DELETE, &path, &[("x-user-id", &author)], None)
        .await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (StatusCode::FORBIDDEN, "forbidden")
    );
    let before = app.changes(&thread, "").await["next"]
        .as_i64()
        .unwrap_or_default();
    let moderator_headers = [
        ("x-user-id", moderator.as_str()),
        ("x-user-roles", "moderator"),
    ];
    let r = app
        .request(Method::DELETE, &path, &moderator_headers, None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
    let changes = app.changes(&thread, &format!("?since={before}")).await;
    assert_eq!(
        changes["changes"].as_array().map(Vec::len),
        Some(1),
        "{changes}"
    );
    assert_eq!(changes["changes"][0]["reactions"], json!([]));
    assert_eq!(changes["changes"][0]["rev"], json!(before + 1));
    // Nothing left to clear: 204, and no number taken.
    let r = app
        .request(Method::DELETE, &path, &moderator_headers, None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(app.changes(&thread, "").await["next"], json!(before + 1));
}
