//! `POST /threads/{t}/messages`: create, its validation, its limits, idempotency.

use http::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{TestApp, item_ids, new_id};

pub(super) async fn create_returns_the_message(app: &TestApp) {
    let thread = new_id();
    let user = new_id();
    let r = app
        .create(&thread, &user, json!({"content": "hello"}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(
        r.headers.get("content-type").and_then(|v| v.to_str().ok()),
        Some("application/json")
    );
    let m = r.json();
    assert_eq!(m["thread_id"], thread);
    assert_eq!(m["user_id"], user);
    assert_eq!(m["content"], "hello");
    assert_eq!(m["type"], "text");
    assert_eq!(m["paths"], json!([]));
    assert_eq!(m["created_at"], m["updated_at"]);
    let created = m["created_at"].as_str().unwrap_or_default();
    assert!(
        created.ends_with('Z') && created.len() == "2026-01-01T00:00:00.000000Z".len(),
        "{created}"
    );
    let id = uuid::Uuid::parse_str(m["id"].as_str().unwrap_or_default()).expect("id is a UUID");
    assert_eq!(id.get_version_num(), 7);

    let r = app
        .create(
            &thread,
            &user,
            json!({"content": "voice", "type": "audio", "paths": ["a/b.ogg"]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(r.json()["type"], "audio");
    assert_eq!(r.json()["paths"], json!(["a/b.ogg"]));
    // A file message may carry paths only.
    let r = app
        .create(
            &thread,
            &user,
            json!({"content": "", "type": "file", "paths": ["x.pdf"]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    // `type: null` is the default kind; unknown fields are ignored as before.
    let r = app
        .create(
            &thread,
            &user,
            json!({"content": "n", "type": null, "extra": 1}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(r.json()["type"], "text");

    let page = app.page(&thread, "").await;
    assert_eq!(page["items"].as_array().map(Vec::len), Some(4));
    assert_eq!(
        page["items"][3], m,
        "the list returns what the create returned"
    );
}

pub(super) async fn create_validates_headers_and_body(app: &TestApp) {
    let thread = new_id();
    let user = new_id();
    let post = |headers: Vec<(&'static str, String)>, body: &'static str| {
        let thread = thread.clone();
        async move {
            let headers: Vec<(&str, &str)> =
                headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            app.request(
                Method::POST,
                &format!("/threads/{thread}/messages"),
                &headers,
                Some(body.as_bytes().to_vec()),
            )
            .await
        }
    };
    let u = || vec![("x-user-id", user.clone())];
    type Headers = Vec<(&'static str, String)>;
    let cases: Vec<(Headers, &'static str, StatusCode, &str)> = vec![
        (
            vec![],
            r#"{"content":"x"}"#,
            StatusCode::BAD_REQUEST,
            "missing_user_id",
        ),
        (
            vec![("x-user-id", "not-a-uuid".into())],
            r#"{"content":"x"}"#,
            StatusCode::BAD_REQUEST,
            "invalid_user_id",
        ),
        (
            u(),
            r#"{"content":"x""#,
            StatusCode::BAD_REQUEST,
            "invalid_json",
        ),
        (u(), "", StatusCode::BAD_REQUEST, "invalid_json"),
        (u(), "content=x", StatusCode::BAD_REQUEST, "invalid_json"),
        (
            u(),
            r#"{}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
        ),
        (
            u(),
            r#"{"content":5}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
        ),
        (
            u(),
            r#"[1]"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
        ),
        (
            u(),
            r#"{"content":"x","type":"video"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
        ),
        (
            u(),
            r#"{"content":"x","paths":"a"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
        ),
        (
            u(),
            r#"{"content":"x","paths":[""]}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
        ),
        (
            u(),
            r#"{"content":"   "}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
        ),
        (
            vec![
                ("x-user-id", user.clone()),
                ("idempotency-key", "has space".into()),
            ],
            r#"{"content":"x"}"#,
            StatusCode::BAD_REQUEST,
            "invalid_idempotency_key",
        ),
    ];
    for (headers, body, status, code) in cases {
        let r = post(headers.clone(), body).await;
        assert_eq!(r.status, status, "{headers:?} {body}: {:?}", r.body);
        assert_eq!(r.error_code(), code, "{body}");
    }
    let long = json!({"content": "a".repeat(4_001)});
    let r = app.create(&thread, &user, long).await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_field")
    );
    let many = json!({"content": "x", "paths": vec!["p"; 17]});
    assert_eq!(
        app.create(&thread, &user, many).await.status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let long_path = json!({"content": "x", "paths": ["p".repeat(1_025)]});
    assert_eq!(
        app.create(&thread, &user, long_path).await.status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let r = app
        .create("not-a-thread", &user, json!({"content": "x"}))
        .await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (StatusCode::BAD_REQUEST, "invalid_thread_id")
    );
    // Bytes that are not UTF-8 are not JSON, even inside a field the service ignores (found
    // by the message_json fuzz target: the parser skips an ignored string without reading it).
    let mut not_utf8 = br#"{"content":"x","extra":""#.to_vec();
    not_utf8.extend_from_slice(&[0xba, 0xba, b'"', b'}']);
    let r = app
        .request(
            Method::POST,
            &format!("/threads/{thread}/messages"),
            &[("x-user-id", user.as_str())],
            Some(not_utf8),
        )
        .await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (StatusCode::BAD_REQUEST, "invalid_json")
    );
    // Nothing above was stored.
    assert_eq!(item_ids(&app.page(&thread, "").await).len(), 0);
}

pub(super) async fn create_refuses_oversized_bodies(app: &TestApp) {
    let thread = new_id();
    let user = new_id();
    let big = vec![b' '; 64 * 1024 + 1];
    let r = app
        .request(
            Method::POST,
            &format!("/threads/{thread}/messages"),
            &[("x-user-id", &user)],
            Some(big),
        )
        .await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
    );
    // Exactly at the limit is read (and here refused only as JSON).
    let edge = vec![b' '; 64 * 1024];
    let r = app
        .request(
            Method::POST,
            &format!("/threads/{thread}/messages"),
            &[("x-user-id", &user)],
            Some(edge),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

pub(super) async fn idempotent_create(app: &TestApp) {
    let thread = new_id();
    let user = new_id();
    let body = json!({"content": "pay once"});
    let first = app
        .create_with_key(&thread, &user, "k-1", body.clone())
        .await;
    assert_eq!(first.status, StatusCode::CREATED);
    let again = app
        .create_with_key(&thread, &user, "k-1", body.clone())
        .await;
    assert_eq!(again.status, StatusCode::CREATED);
    assert_eq!(
        again.json(),
        first.json(),
        "a retry answers with the original message"
    );
    assert_eq!(
        again
            .headers
            .get("idempotent-replayed")
            .map(|v| v.as_bytes()),
        Some(&b"true"[..])
    );
    assert_eq!(
        item_ids(&app.page(&thread, "").await).len(),
        1,
        "the retry created nothing"
    );

    let other = app
        .create_with_key(&thread, &user, "k-1", json!({"content": "pay twice"}))
        .await;
    assert_eq!(
        (other.status, other.error_code().as_str()),
        (StatusCode::CONFLICT, "idempotency_conflict")
    );
    // The key belongs to this user in this thread only.
    let someone = app
        .create_with_key(&thread, &new_id(), "k-1", body.clone())
        .await;
    assert_eq!(someone.status, StatusCode::CREATED);
    assert_ne!(someone.json()["id"], first.json()["id"]);
    assert_eq!(item_ids(&app.page(&thread, "").await).len(), 2);
}

/// Each limit has one text, the core's, whichever route refuses the value.
pub(super) async fn a_refused_value_is_answered_in_the_words_of_the_check(app: &TestApp) {
    let thread = new_id();
    let user = new_id();
    let message = |r: &crate::helpers::TestResponse| {
        r.json()["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    let core = |e: messages_core::Error| e.to_string();
    let page_limit = core(messages_core::PageSize::parse("0").unwrap_err());
    assert_eq!(message(&app.list(&thread, "?limit=0").await), page_limit);
    let changes_limit = core(messages_core::ChangesLimit::parse("0").unwrap_err());
    let r = app
        .request(
            Method::GET,
            &format!("/threads/{thread}/changes?limit=0"),
            &[],
            None,
        )
        .await;
    assert_eq!(message(&r), changes_limit);
    let since = core(messages_core::parse_position("since", "x").unwrap_err());
    let r = app
        .request(
            Method::GET,
            &format!("/threads/{thread}/changes?since=x"),
            &[],
            None,
        )
        .await;
    assert_eq!(message(&r), since);
    let key = "k".repeat(129);
    let r = app
        .request(
            Method::POST,
            &format!("/threads/{thread}/messages"),
            &[
                ("x-user-id", user.as_str()),
                ("idempotency-key", key.as_str()),
            ],
            Some(b"{\"content\":\"x\"}".to_vec()),
        )
        .await;
    assert_eq!(r.error_code(), "invalid_idempotency_key");
    assert_eq!(
        message(&r),
        core(messages_core::IdempotencyKey::parse(&key).unwrap_err())
    );
}
