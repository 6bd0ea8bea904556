//! Read state: `PUT` and `GET /threads/{t}/read`, and `GET /unread?threads=`.

use http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestResponse, new_id};

async fn mark(app: &TestApp, thread: &str, user: &str, body: Value) -> TestResponse {
    app.request(
        Method::PUT,
        &format!("/threads/{thread}/read"),
        &[("x-user-id", user), ("content-type", "application/json")],
        Some(body.to_string().into_bytes()),
    )
    .await
}

async fn read_state(app: &TestApp, thread: &str, user: &str) -> Value {
    let r = app
        .request(
            Method::GET,
            &format!("/threads/{thread}/read"),
            &[("x-user-id", user)],
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    r.json()
}

async fn unread(app: &TestApp, user: &str, threads: &str) -> TestResponse {
    app.request(
        Method::GET,
        &format!("/unread?threads={threads}"),
        &[("x-user-id", user)],
        None,
    )
    .await
}

/// A reader's position moves forward only, "mark as unread" moves it back, a position past
/// the head is clamped, and the count skips the reader's own and deleted messages.
pub(super) async fn read_positions_move_and_count_exactly(app: &TestApp) {
    let (thread, author, reader) = (new_id(), new_id(), new_id());
    let mut seqs = Vec::new();
    for i in 0..4 {
        let m = app.post_text(&thread, &author, &format!("m{i}")).await;
        seqs.push(m["seq"].as_i64().unwrap_or_default());
    }
    let never = read_state(app, &thread, &reader).await;
    assert_eq!(
        never,
        json!({"thread_id": thread, "seq": 0, "unread": 4, "capped": false,
               "first_unread_seq": seqs[0], "mentions": 0})
    );
    let r = mark(app, &thread, &reader, json!({"seq": seqs[1]})).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(
        (r.json()["seq"].as_i64(), r.json()["unread"].as_i64()),
        (Some(seqs[1]), Some(2))
    );
    let r = mark(app, &thread, &reader, json!({"seq": seqs[0]})).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["seq"].as_i64(), Some(seqs[1]), "never backwards");
    let r = mark(app, &thread, &reader, json!({"unread_from": seqs[0]})).await;
    assert_eq!(
        r.json()["seq"].as_i64(),
        Some(seqs[0] - 1),
        "mark as unread"
    );
    assert_eq!(r.json()["unread"].as_i64(), Some(4));
    let r = mark(app, &thread, &reader, json!({"seq": 1_000_000})).await;
    assert_eq!(
        (r.json()["seq"].as_i64(), r.json()["unread"].as_i64()),
        (Some(seqs[3]), Some(0)),
        "clamped to the head"
    );

    // A message of the reader's own moves their position and is not counted; a delete by
    // its author lowers the others' counts at once.
    mark(app, &thread, &reader, json!({"unread_from": seqs[2]})).await;
    let own = app.post_text(&thread, &reader, "mine").await;
    let after_own = read_state(app, &thread, &reader).await;
    assert_eq!(after_own["seq"], own["seq"]);
    assert_eq!(after_own["unread"], 0);
    let theirs = read_state(app, &thread, &author).await;
    assert_eq!(
        theirs["unread"], 1,
        "the author has the reader's message unread"
    );
    assert_eq!(theirs["first_unread_seq"], own["seq"]);
    let r = app
        .remove(&thread, own["id"].as_str().unwrap_or_default(), &reader)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(read_state(app, &thread, &author).await["unread"], 0);

    // A position is private: nothing of it reaches the thread's changes.
    let changes = app
        .request(
            Method::GET,
            &format!("/threads/{thread}/changes?since={}", seqs[3]),
            &[],
            None,
        )
        .await
        .json();
    assert_eq!(
        changes["changes"].as_array().map(Vec::len),
        Some(1),
        "the reader's message, deleted since, and nothing else: {changes}"
    );
    assert_eq!(changes["changes"][0]["id"], own["id"]);
}

/// A sidebar's counts in one call, in the order asked, a thread never written included.
pub(super) async fn unread_counts_for_many_threads(app: &TestApp) {
    let (author, reader) = (new_id(), new_id());
    let (busy, quiet, empty) = (new_id(), new_id(), new_id());
    for i in 0..3 {
        app.post_text(&busy, &author, &format!("b{i}")).await;
    }
    let q = app.post_text(&quiet, &author, "q").await;
    mark(app, &quiet, &reader, json!({"seq": q["seq"]})).await;
    let r = unread(app, &reader, &format!("{quiet},{busy},{empty}")).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let threads = r.json()["threads"].clone();
    let got: Vec<(Value, Value, Value)> = threads
        .as_array()
        .map(|a| {
            a.iter()
                .map(|t| {
                    (
                        t["thread_id"].clone(),
                        t["seq"].clone(),
                        t["unread"].clone(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        got,
        vec![
            (json!(quiet), q["seq"].clone(), json!(0)),
            (json!(busy), json!(0), json!(3)),
            (json!(empty), json!(0), json!(0)),
        ]
    );
}

/// Bad marks and thread lists are refused with their own codes, and a caller without an
/// identity has no position.
pub(super) async fn read_state_refuses_bad_input(app: &TestApp) {
    let (thread, user) = (new_id(), new_id());
    for body in [
        json!({}),
        json!({"seq": 1, "unread_from": 1}),
        json!({"seq": -1}),
        json!({"unread_from": 0}),
        json!({"seq": "3"}),
        json!({"position": 3}),
    ] {
        let r = mark(app, &thread, &user, body.clone()).await;
        assert_eq!(
            (r.status, r.error_code().as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, "invalid_field"),
            "{body}"
        );
    }
    let r = app
        .request(
            Method::PUT,
            &format!("/threads/{thread}/read"),
            &[("x-user-id", &user), ("content-type", "application/json")],
            Some(b"{\"seq\":".to_vec()),
        )
        .await;
    assert_eq!(r.error_code(), "invalid_json");
    let r = app
        .request(Method::GET, &format!("/threads/{thread}/read"), &[], None)
        .await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (StatusCode::BAD_REQUEST, "missing_user_id"),
        "a position is always the caller's own"
    );
    for (list, code) in [
        ("", "invalid_threads"),
        ("nope", "invalid_thread_id"),
        (&vec![thread.as_str(); 201].join(","), "invalid_threads"),
    ] {
        let r = unread(app, &user, list).await;
        assert_eq!(
            (r.status, r.error_code().as_str()),
            (StatusCode::BAD_REQUEST, code),
            "{list:.40}"
        );
    }
    let r = app
        .request(Method::GET, "/unread", &[("x-user-id", &user)], None)
        .await;
    assert_eq!(r.error_code(), "invalid_threads");
    let most = vec![thread.as_str(); 200].join(",");
    let r = unread(app, &user, &most).await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "200 threads is the most: {:?}",
        r.body
    );
}
