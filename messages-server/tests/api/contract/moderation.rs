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
