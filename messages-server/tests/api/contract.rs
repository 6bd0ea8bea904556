//! Black-box tests of the HTTP contract: every row of the API table, on the embedded default
//! (SQLite), in memory, on PostgreSQL, on PostgreSQL with Redis (when `DATABASE_URL` and `REDIS_URL` are set;
//! required under `CI=true`), and behind nginx configured like the Kong route (prefix
//! `/messages` stripped; when nginx is installed, required under `CI=true`).

use crate::helpers::{Backend, TestApp, item_ids, new_id, spawn_app};
use http::{Method, StatusCode};
use serde_json::json;

/// Runs each named test on every backend.
macro_rules! on_every_backend {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test]
                async fn $name() {
                    let app = crate::helpers::spawn_app(crate::helpers::Backend::Memory).await.expect("memory backend");
                    super::$name(&app).await;
                }
            )*
        }
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    let app = crate::helpers::spawn_app(crate::helpers::Backend::Sqlite).await.expect("SQLite backend");
                    super::$name(&app).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    let Some(app) = crate::helpers::spawn_app(crate::helpers::Backend::Postgres).await else { return };
                    super::$name(&app).await;
                }
            )*
        }
        mod behind_gateway {
            $(
                #[tokio::test]
                async fn $name() {
                    let Some(app) = crate::helpers::spawn_app(crate::helpers::Backend::SqliteBehindGateway).await else { return };
                    super::$name(&app).await;
                }
            )*
        }
        mod postgres_redis {
            $(
                #[tokio::test]
                async fn $name() {
                    let Some(app) = crate::helpers::spawn_app(crate::helpers::Backend::PostgresRedis).await else { return };
                    super::$name(&app).await;
                }
            )*
        }
    };
}

on_every_backend!(
    the_chat_page_is_served,
    create_returns_the_message,
    create_validates_headers_and_body,
    create_refuses_oversized_bodies,
    idempotent_create,
    list_pages_newest_first_and_back,
    list_validates_its_query,
    list_sees_every_write_at_once,
    edit_changes_content_and_paths,
    edit_and_delete_are_for_the_author_only,
    delete_is_soft_and_final,
    unknown_routes_and_methods,
    health_routes,
    pages_by_seq_and_around_a_message,
    the_changes_feed_follows_edits_and_deletes,
    a_cached_page_reports_the_rev_a_store_read_does,
    a_refused_value_is_answered_in_the_words_of_the_check,
);

/// Each limit has one text, the core's, whichever route refuses the value.
async fn a_refused_value_is_answered_in_the_words_of_the_check(app: &TestApp) {
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

async fn create_returns_the_message(app: &TestApp) {
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

async fn create_validates_headers_and_body(app: &TestApp) {
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
    // Nothing above was stored.
    assert_eq!(item_ids(&app.page(&thread, "").await).len(), 0);
}

async fn create_refuses_oversized_bodies(app: &TestApp) {
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

async fn idempotent_create(app: &TestApp) {
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

async fn list_pages_newest_first_and_back(app: &TestApp) {
    let thread = new_id();
    let user = new_id();
    let mut ids = Vec::new();
    for i in 0..25 {
        ids.push(
            app.post_text(&thread, &user, &format!("m{i}")).await["id"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        );
    }
    let newest_first: Vec<String> = ids.iter().rev().cloned().collect();

    let default = app.page(&thread, "").await;
    assert_eq!(
        item_ids(&default),
        newest_first,
        "default limit 50 holds all 25"
    );
    assert_eq!(default["has_more"], false);

    let p1 = app.page(&thread, "?limit=10").await;
    assert_eq!(item_ids(&p1), newest_first[..10]);
    assert_eq!(p1["has_more"], true);
    let c1 = p1["next_cursor"].as_str().unwrap_or_default().to_owned();
    let p2 = app.page(&thread, &format!("?limit=10&cursor={c1}")).await;
    assert_eq!(item_ids(&p2), newest_first[10..20]);
    let c2 = p2["next_cursor"].as_str().unwrap_or_default().to_owned();
    // `before` is the same as `cursor`.
    let p3 = app.page(&thread, &format!("?limit=10&before={c2}")).await;
    assert_eq!(item_ids(&p3), newest_first[20..]);
    assert_eq!(p3["has_more"], false);
    assert!(p3["next_cursor"].is_null());

    // `after` pages to newer messages, oldest first, from the same cursor.
    let up = app.page(&thread, &format!("?limit=10&after={c2}")).await;
    let expected: Vec<String> = newest_first[..19].iter().rev().take(10).cloned().collect();
    assert_eq!(item_ids(&up), expected);
    assert_eq!(up["has_more"], true);
    let up2 = app
        .page(
            &thread,
            &format!(
                "?limit=10&after={}",
                up["next_cursor"].as_str().unwrap_or_default()
            ),
        )
        .await;
    assert_eq!(
        item_ids(&up2),
        newest_first[..9].iter().rev().cloned().collect::<Vec<_>>()
    );
    assert_eq!(up2["has_more"], false);
    // An empty cursor parameter is no cursor.
    assert_eq!(
        item_ids(&app.page(&thread, "?limit=3&cursor=").await),
        newest_first[..3]
    );
    // An unknown thread is an empty page, not an error.
    let empty = app.page(&new_id(), "").await;
    assert_eq!(
        empty,
        json!({"items": [], "next_cursor": null, "has_more": false, "rev": 0})
    );
}

async fn list_validates_its_query(app: &TestApp) {
    let thread = new_id();
    let user = new_id();
    app.post_text(&thread, &user, "a").await;
    app.post_text(&thread, &user, "b").await;
    let cursor = app.page(&thread, "?limit=1").await["next_cursor"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let mut tampered = cursor.clone().into_bytes();
    tampered[0] = if tampered[0] == b'B' { b'C' } else { b'B' };
    let tampered = String::from_utf8(tampered).unwrap_or_default();
    for (query, code) in [
        ("?limit=0", "invalid_limit"),
        ("?limit=201", "invalid_limit"),
        ("?limit=abc", "invalid_limit"),
        ("?limit=-1", "invalid_limit"),
        ("?limit=", "invalid_limit"),
        ("?limit=5&limit=6", "invalid_limit"),
        ("?cursor=abc", "invalid_cursor"),
        (
            &format!("?cursor={}", &cursor[..cursor.len() - 1]),
            "invalid_cursor",
        ),
        (&format!("?cursor={cursor}%3D"), "invalid_cursor"),
        (&format!("?cursor={tampered}"), "invalid_cursor"),
        (
            &format!("?cursor={cursor}&after={cursor}"),
            "invalid_cursor",
        ),
        (
            &format!("?before={cursor}&after={cursor}"),
            "invalid_cursor",
        ),
        (
            &format!("?cursor={cursor}&before={cursor}"),
            "invalid_cursor",
        ),
        // Well-formed but at an instant no store holds: a 400 on every backend, never a 503.
        (
            "?cursor=AYAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            "invalid_cursor",
        ),
        (
            "?after=AYAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            "invalid_cursor",
        ),
        (
            "?before=AX__________AAAAAAAAAAAAAAAAAAAAAA",
            "invalid_cursor",
        ),
    ] {
        let r = app.list(&thread, query).await;
        assert_eq!(
            (r.status, r.error_code().as_str()),
            (StatusCode::BAD_REQUEST, code),
            "{query}"
        );
    }
    assert_eq!(app.list(&thread, "?limit=200").await.status, StatusCode::OK);
    assert_eq!(
        app.list(&thread, "?limit=1&other=x").await.status,
        StatusCode::OK
    );
    let r = app.list("nope", "").await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (StatusCode::BAD_REQUEST, "invalid_thread_id")
    );
}

async fn list_sees_every_write_at_once(app: &TestApp) {
    // The newest page is cached; every acknowledged write must show on the next read.
    let thread = new_id();
    let user = new_id();
    let a = app.post_text(&thread, &user, "a").await;
    assert_eq!(item_ids(&app.page(&thread, "?limit=5").await).len(), 1);
    let b = app.post_text(&thread, &user, "b").await;
    let page = app.page(&thread, "?limit=5").await;
    assert_eq!(
        item_ids(&page),
        [
            b["id"].as_str().unwrap_or_default(),
            a["id"].as_str().unwrap_or_default()
        ]
    );
    let id = a["id"].as_str().unwrap_or_default();
    assert_eq!(
        app.edit(&thread, id, &user, json!({"content": "a2"}))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        app.page(&thread, "?limit=5").await["items"][1]["content"],
        "a2"
    );
    assert_eq!(
        app.remove(&thread, id, &user).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(item_ids(&app.page(&thread, "?limit=5").await).len(), 1);
    // Smaller and larger pages from the same cached window keep has_more exact.
    for _ in 0..3 {
        app.post_text(&thread, &user, "more").await;
    }
    let small = app.page(&thread, "?limit=2").await;
    assert_eq!(
        (item_ids(&small).len(), &small["has_more"]),
        (2, &json!(true))
    );
    let exact = app.page(&thread, "?limit=4").await;
    assert_eq!(
        (item_ids(&exact).len(), &exact["has_more"]),
        (4, &json!(false))
    );
    let next = app
        .page(
            &thread,
            &format!(
                "?limit=2&cursor={}",
                small["next_cursor"].as_str().unwrap_or_default()
            ),
        )
        .await;
    assert_eq!(item_ids(&next), item_ids(&exact)[2..]);
    let stats = app.service.cache_stats();
    assert!(stats.hits > 0 && stats.fills > 0, "{stats:?}");
}

async fn edit_changes_content_and_paths(app: &TestApp) {
    let thread = new_id();
    let user = new_id();
    let m = app.post_text(&thread, &user, "before").await;
    let id = m["id"].as_str().unwrap_or_default();
    let r = app
        .edit(&thread, id, &user, json!({"content": "after"}))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let edited = r.json();
    assert_eq!(edited["content"], "after");
    assert_eq!(edited["created_at"], m["created_at"]);
    assert!(edited["updated_at"].as_str() > m["updated_at"].as_str());
    let r = app
        .edit(&thread, id, &user, json!({"paths": ["f.png"]}))
        .await;
    assert_eq!(
        (r.json()["content"].clone(), r.json()["paths"].clone()),
        (json!("after"), json!(["f.png"]))
    );
    for (body, status, code) in [
        ("{}", StatusCode::UNPROCESSABLE_ENTITY, "invalid_field"),
        (
            r#"{"content":null,"paths":null}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
        ),
        (
            r#"{"content":7}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
        ),
        ("{", StatusCode::BAD_REQUEST, "invalid_json"),
    ] {
        let r = app
            .request(
                Method::PUT,
                &format!("/threads/{thread}/messages/{id}"),
                &[("x-user-id", &user)],
                Some(body.into()),
            )
            .await;
        assert_eq!(
            (r.status, r.error_code().as_str()),
            (status, code),
            "{body}"
        );
    }
    let r = app
        .edit(&thread, "not-an-id", &user, json!({"content": "x"}))
        .await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (StatusCode::BAD_REQUEST, "invalid_message_id")
    );
    let r = app
        .request(
            Method::PUT,
            &format!("/threads/{thread}/messages/{id}"),
            &[],
            Some(br#"{"content":"x"}"#.to_vec()),
        )
        .await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (StatusCode::BAD_REQUEST, "missing_user_id")
    );
    assert_eq!(app.page(&thread, "").await["items"][0]["content"], "after");
}

async fn edit_and_delete_are_for_the_author_only(app: &TestApp) {
    let thread = new_id();
    let author = new_id();
    let m = app.post_text(&thread, &author, "mine").await;
    let id = m["id"].as_str().unwrap_or_default();
    let stranger = new_id();
    let r = app
        .edit(&thread, id, &stranger, json!({"content": "theirs"}))
        .await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (StatusCode::FORBIDDEN, "forbidden")
    );
    let r = app.remove(&thread, id, &stranger).await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (StatusCode::FORBIDDEN, "forbidden")
    );
    // Under another thread the message does not exist, even for its author.
    let other = new_id();
    let r = app.edit(&other, id, &author, json!({"content": "x"})).await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (StatusCode::NOT_FOUND, "not_found")
    );
    assert_eq!(
        app.remove(&other, id, &author).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.edit(&thread, &new_id(), &author, json!({"content": "x"}))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.page(&thread, "").await["items"][0],
        m,
        "nothing changed"
    );
}

async fn delete_is_soft_and_final(app: &TestApp) {
    let thread = new_id();
    let user = new_id();
    let keep = app.post_text(&thread, &user, "keep").await;
    let gone = app.post_text(&thread, &user, "gone").await;
    let id = gone["id"].as_str().unwrap_or_default();
    let r = app.remove(&thread, id, &user).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert!(r.body.is_empty());
    assert_eq!(
        item_ids(&app.page(&thread, "").await),
        [keep["id"].as_str().unwrap_or_default()]
    );
    let r = app.remove(&thread, id, &user).await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (StatusCode::NOT_FOUND, "not_found")
    );
    assert_eq!(
        app.edit(&thread, id, &user, json!({"content": "back"}))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let r = app
        .request(
            Method::DELETE,
            &format!("/threads/{thread}/messages/{id}"),
            &[],
            None,
        )
        .await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (StatusCode::BAD_REQUEST, "missing_user_id")
    );
}

/// The chat page and its assets: content types, the CSP, revalidation by `ETag`.
async fn the_chat_page_is_served(app: &TestApp) {
    for (path, content_type) in [
        ("/", "text/html; charset=utf-8"),
        ("/ui/app.js", "text/javascript; charset=utf-8"),
        ("/ui/api.js", "text/javascript; charset=utf-8"),
        ("/ui/identity.js", "text/javascript; charset=utf-8"),
        ("/ui/render.js", "text/javascript; charset=utf-8"),
        ("/ui/style.css", "text/css; charset=utf-8"),
    ] {
        let r = app.request(Method::GET, path, &[], None).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        let header = |name: &str| {
            r.headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        assert_eq!(header("content-type"), content_type, "{path}");
        assert!(header("content-security-policy").starts_with("default-src 'self'"));
        assert_eq!(header("x-content-type-options"), "nosniff");
        assert_eq!(header("cache-control"), "no-cache");
        let etag = header("etag");
        assert!(etag.starts_with('"') && etag.len() > 2, "{path}: {etag}");
        let again = app
            .request(Method::GET, path, &[("if-none-match", &etag)], None)
            .await;
        assert_eq!(again.status, StatusCode::NOT_MODIFIED, "{path}");
        assert!(again.body.is_empty());
    }
    let page = app.request(Method::GET, "/", &[], None).await;
    let html = String::from_utf8_lossy(&page.body);
    // Relative URLs only, so the page works under a gateway's prefix.
    assert!(html.contains("src=\"ui/app.js\"") && html.contains("href=\"ui/style.css\""));
    assert!(!html.contains("src=\"/") && !html.contains("href=\"/"));
    let config = app.request(Method::GET, "/ui/config.json", &[], None).await;
    assert_eq!(config.status, StatusCode::OK);
    assert_eq!(
        config.json(),
        json!({"auth": "trusted", "max_content_chars": 4000})
    );
    let post = app.request(Method::POST, "/", &[], None).await;
    assert_eq!(post.status, StatusCode::METHOD_NOT_ALLOWED);
}

async fn unknown_routes_and_methods(app: &TestApp) {
    let thread = new_id();
    for path in [
        "/threads",
        &format!("/threads/{thread}"),
        &format!("/threads/{thread}/messages/a/b"),
        "/messages",
        "/ui/nothing.js",
    ] {
        let r = app.request(Method::GET, path, &[], None).await;
        assert_eq!(
            (r.status, r.error_code().as_str()),
            (StatusCode::NOT_FOUND, "not_found"),
            "{path}"
        );
    }
    for (method, path, allow) in [
        (
            Method::PATCH,
            format!("/threads/{thread}/messages"),
            "GET, POST",
        ),
        (
            Method::DELETE,
            format!("/threads/{thread}/messages"),
            "GET, POST",
        ),
        (
            Method::GET,
            format!("/threads/{thread}/messages/{}", new_id()),
            "PUT, DELETE",
        ),
        (Method::POST, "/healthz".to_owned(), "GET"),
    ] {
        let r = app.request(method.clone(), &path, &[], None).await;
        assert_eq!(
            (r.status, r.error_code().as_str()),
            (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            "{method} {path}"
        );
        assert_eq!(
            r.headers.get("allow").and_then(|v| v.to_str().ok()),
            Some(allow)
        );
    }
}

async fn health_routes(app: &TestApp) {
    let r = app.request(Method::GET, "/healthz", &[], None).await;
    assert_eq!(
        (r.status, r.json()),
        (StatusCode::OK, json!({"status": "ok"}))
    );
    let r = app.request(Method::GET, "/readyz", &[], None).await;
    assert_eq!(
        (r.status, r.json()),
        (StatusCode::OK, json!({"status": "ready", "cache": "ok"}))
    );
}

#[tokio::test]
async fn shutdown_finishes_and_stops_listening() {
    let app = spawn_app(Backend::Memory).await.expect("memory backend");
    let addr = app.addr;
    app.post_text(&new_id(), &new_id(), "before stop").await;
    tokio::time::timeout(std::time::Duration::from_secs(10), app.stop())
        .await
        .expect("stops within the drain timeout")
        .expect("exits cleanly");
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "no longer listening"
    );
}

#[tokio::test]
async fn events_reach_the_in_process_sink() {
    let app = spawn_app(Backend::Memory).await.expect("memory backend");
    let mut events = app.sink.as_ref().expect("in-process sink").subscribe();
    let thread = new_id();
    let user = new_id();
    let m = app.post_text(&thread, &user, "announce me").await;
    let id = m["id"].as_str().unwrap_or_default();
    app.edit(&thread, id, &user, json!({"content": "edited"}))
        .await;
    app.remove(&thread, id, &user).await;
    let mut kinds = Vec::new();
    for _ in 0..3 {
        let event = tokio::time::timeout(std::time::Duration::from_secs(5), events.recv())
            .await
            .expect("event within 5 s")
            .expect("sink open");
        assert_eq!(event.thread_id.to_string(), thread);
        kinds.push(event.kind);
    }
    assert_eq!(
        kinds,
        ["message.created", "message.updated", "message.deleted"]
    );
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_report_the_backends() {
    let app = spawn_app(Backend::Memory).await.expect("memory backend");
    let thread = new_id();
    app.post_text(&thread, &new_id(), "counted").await;
    app.page(&thread, "").await;
    app.page(&thread, "").await;
    app.list("not-a-thread", "").await;
    let r = app.request(Method::GET, "/metrics", &[], None).await;
    assert_eq!(r.status, StatusCode::OK);
    let text = String::from_utf8_lossy(&r.body).into_owned();
    let has = |needle: &str| text.lines().any(|l| l.starts_with(needle));
    assert!(has("http_requests_total{"), "{text}");
    assert!(
        text.lines().any(|l| l.starts_with("http_requests_total{")
            && l.contains(r#"route="/threads/{thread_id}/messages""#)
            && l.contains(r#"status="400""#)),
        "the route label is the pattern, never the path: {text}"
    );
    assert!(!text.contains("not-a-thread"));
    assert!(has("http_request_duration_seconds_bucket{"), "{text}");
    for name in [
        "cache_hits_total",
        "cache_misses_total",
        "cache_fills_total",
        "cache_rejected_fills_total",
        "cache_errors_total",
        "events_published_total",
        "events_failed_total",
        "outbox_pending_events",
        "outbox_oldest_event_age_seconds",
        "store_operation_duration_seconds_bucket",
    ] {
        assert!(has(name), "{name} missing: {text}");
    }
    let hits: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("cache_hits_total "))
        .and_then(|v| v.trim().parse().ok())
        .expect("cache_hits_total value");
    assert!(hits >= 1.0, "the second read was a hit");
}

#[tokio::test]
async fn request_ids_are_echoed_or_made() {
    let app = spawn_app(Backend::Memory).await.expect("memory backend");
    let r = app
        .request(
            Method::GET,
            "/healthz",
            &[("x-request-id", "gateway-id-123")],
            None,
        )
        .await;
    assert_eq!(
        r.headers.get("x-request-id").map(|v| v.as_bytes()),
        Some(&b"gateway-id-123"[..])
    );
    let made = app.request(Method::GET, "/nope", &[], None).await;
    let id = made
        .headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert!(
        uuid::Uuid::parse_str(id).is_ok(),
        "a generated id on errors too: {id:?}"
    );
    let bad = app
        .request(
            Method::GET,
            "/healthz",
            &[("x-request-id", "has space")],
            None,
        )
        .await;
    let replaced = bad
        .headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert!(
        uuid::Uuid::parse_str(replaced).is_ok(),
        "an unusable id is replaced: {replaced:?}"
    );
}

#[tokio::test]
async fn the_openapi_contract_and_the_router_agree() {
    let spec: serde_json::Value = serde_yaml_ng::from_str(messages_server::routes::OPENAPI_YAML)
        .expect("openapi.yaml parses");
    assert_eq!(spec["openapi"], "3.1.0");
    let mut documented: Vec<(String, String)> = spec["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .into_iter()
                .flat_map(|ops| ops.keys())
                .filter(|k| ["get", "post", "put", "delete", "patch", "head"].contains(&k.as_str()))
                .map(move |m| (path.clone(), m.to_uppercase()))
        })
        .collect();
    let mut served: Vec<(String, String)> = messages_server::routes::route_table()
        .into_iter()
        .flat_map(|(path, methods)| {
            methods
                .into_iter()
                .map(move |m| (path.to_owned(), m.to_owned()))
        })
        .collect();
    documented.sort();
    served.sort();
    assert_eq!(
        documented, served,
        "every route is documented, and only those"
    );

    // And the server serves the same document.
    let app = spawn_app(Backend::Memory).await.expect("memory backend");
    let r = app.request(Method::GET, "/openapi.json", &[], None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json(), spec);
}

/// Builds a cursor of version 1, as the service issued before pages were ordered by `seq`.
fn legacy_cursor(created_at: &str, id: &str) -> String {
    use base64::Engine;
    let micros = chrono::DateTime::parse_from_rfc3339(created_at)
        .expect("created_at")
        .timestamp_micros();
    let mut raw = vec![1u8];
    raw.extend_from_slice(&micros.to_be_bytes());
    raw.extend_from_slice(uuid::Uuid::parse_str(id).expect("id").as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

async fn pages_by_seq_and_around_a_message(app: &TestApp) {
    let thread = new_id();
    let user = new_id();
    let mut all = Vec::new();
    for i in 0..9 {
        all.push(app.post_text(&thread, &user, &format!("m{i}")).await);
    }
    let seqs: Vec<i64> = all
        .iter()
        .map(|m| m["seq"].as_i64().unwrap_or(-1))
        .collect();
    assert_eq!(
        seqs,
        (1..=9).collect::<Vec<_>>(),
        "numbered in order from 1"
    );
    assert!(all.iter().all(|m| m["rev"] == m["seq"]));
    let id = |i: usize| all[i]["id"].as_str().unwrap_or_default().to_owned();
    let ids = |range: std::ops::Range<usize>| range.map(id).collect::<Vec<_>>();

    // A client resumes after the last message it has, and pages back before one.
    let after = app.page(&thread, "?after_seq=6").await;
    assert_eq!(item_ids(&after), ids(6..9));
    assert_eq!(
        (after["has_more"].clone(), after["rev"].clone()),
        (json!(false), json!(9))
    );
    let caught_up = app.page(&thread, "?after_seq=9").await;
    assert_eq!(item_ids(&caught_up), Vec::<String>::new());
    assert_eq!(
        caught_up["rev"], 9,
        "a caught-up page still says where the thread is"
    );
    let before = app.page(&thread, "?before_seq=4&limit=2").await;
    assert_eq!(item_ids(&before), [id(2), id(1)]);
    assert_eq!(before["has_more"], true);
    // Its cursor (12 characters) and before_seq name the same place.
    let cursor = before["next_cursor"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(cursor.len(), 12);
    assert_eq!(
        item_ids(&app.page(&thread, &format!("?cursor={cursor}")).await),
        item_ids(&app.page(&thread, "?before_seq=2").await)
    );
    // A cursor from before the sequence still works: the service finds its message.
    let old = legacy_cursor(all[4]["created_at"].as_str().unwrap_or_default(), &id(4));
    assert_eq!(
        item_ids(&app.page(&thread, &format!("?limit=2&cursor={old}")).await),
        [id(3), id(2)]
    );
    assert_eq!(
        item_ids(&app.page(&thread, &format!("?after={old}")).await),
        ids(5..9)
    );

    // Around a message: up to limit / 2 on each side, oldest first.
    let r = app
        .list(&thread, &format!("?around={}&limit=4", id(4)))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let around = r.json();
    assert_eq!(item_ids(&around), ids(2..7));
    assert_eq!(
        (
            around["has_more_before"].clone(),
            around["has_more_after"].clone(),
            around["rev"].clone()
        ),
        (json!(true), json!(true), json!(9))
    );
    let first = app
        .list(&thread, &format!("?around={}&limit=4", id(0)))
        .await
        .json();
    assert_eq!(item_ids(&first), ids(0..3));
    assert_eq!(first["has_more_before"], false);
    let gone = app.remove(&thread, &id(8), &user).await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT);
    let last = app
        .list(&thread, &format!("?around={}&limit=4", id(8)))
        .await
        .json();
    assert_eq!(
        item_ids(&last),
        ids(6..8),
        "a deleted message still anchors"
    );
    assert_eq!(last["has_more_after"], false);

    for (query, status, code) in [
        (
            format!("?around={}", new_id()),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            "?around=nope".to_owned(),
            StatusCode::BAD_REQUEST,
            "invalid_message_id",
        ),
        (
            "?after_seq=-1".to_owned(),
            StatusCode::BAD_REQUEST,
            "invalid_cursor",
        ),
        (
            "?before_seq=1.5".to_owned(),
            StatusCode::BAD_REQUEST,
            "invalid_cursor",
        ),
        (
            "?after_seq=1&before_seq=5".to_owned(),
            StatusCode::BAD_REQUEST,
            "invalid_cursor",
        ),
        (
            format!("?after_seq=1&around={}", id(1)),
            StatusCode::BAD_REQUEST,
            "invalid_cursor",
        ),
        (
            format!("?cursor={cursor}&after_seq=1"),
            StatusCode::BAD_REQUEST,
            "invalid_cursor",
        ),
        (
            format!(
                "?after={}",
                legacy_cursor("2026-01-01T00:00:00Z", &new_id())
            ),
            StatusCode::BAD_REQUEST,
            "invalid_cursor",
        ),
    ] {
        let r = app.list(&thread, &query).await;
        assert_eq!(
            (r.status, r.error_code().as_str()),
            (status, code),
            "{query}"
        );
    }
    // Another thread's message does not anchor here.
    let elsewhere = app.post_text(&new_id(), &user, "elsewhere").await;
    let r = app
        .list(
            &thread,
            &format!("?around={}", elsewhere["id"].as_str().unwrap_or_default()),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

async fn the_changes_feed_follows_edits_and_deletes(app: &TestApp) {
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

async fn a_cached_page_reports_the_rev_a_store_read_does(app: &TestApp) {
    let thread = new_id();
    let user = new_id();
    for i in 0..3 {
        app.post_text(&thread, &user, &format!("m{i}")).await;
    }
    // The first read fills the cache, the second is a hit; a page past the newest message
    // is always a store read. All three say the same.
    let first = app.page(&thread, "").await;
    let hit = app.page(&thread, "").await;
    let stored = app.page(&thread, "?before_seq=1000").await;
    assert_eq!(first, hit);
    assert_eq!(hit["rev"], 3);
    assert_eq!(stored["rev"], hit["rev"]);
    assert_eq!(item_ids(&stored), item_ids(&hit));
    // A write moves both.
    app.post_text(&thread, &user, "m3").await;
    assert_eq!(app.page(&thread, "").await["rev"], 4);
    assert_eq!(app.page(&thread, "?before_seq=1000").await["rev"], 4);
}
