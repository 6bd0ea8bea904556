//! `PUT` and `DELETE /threads/{t}/messages/{id}`: edits and soft deletes, by the author only.

use http::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{TestApp, item_ids, new_id};

/// A message is read by its id in its current state; an unknown id, another thread's message
/// and a deleted one are 404s, a malformed id a 400.
pub(super) async fn a_message_is_read_by_its_id(app: &TestApp) {
    let (thread, user) = (new_id(), new_id());
    let created = app.post_text(&thread, &user, "read me").await;
    let id = created["id"].as_str().unwrap_or_default().to_owned();
    let get = |thread: String, id: String| async move {
        app.request(
            Method::GET,
            &format!("/threads/{thread}/messages/{id}"),
            &[],
            None,
        )
        .await
    };
    let r = get(thread.clone(), id.clone()).await;
    assert_eq!((r.status, r.json()), (StatusCode::OK, created.clone()));
    let edited = app
        .edit(&thread, &id, &user, json!({"content": "read me, edited"}))
        .await
        .json();
    assert_eq!(
        get(thread.clone(), id.clone()).await.json(),
        edited,
        "its current state"
    );
    for (t, m) in [(thread.clone(), new_id()), (new_id(), id.clone())] {
        let r = get(t, m).await;
        assert_eq!(
            (r.status, r.error_code().as_str()),
            (StatusCode::NOT_FOUND, "not_found")
        );
    }
    let r = get(thread.clone(), "not-a-uuid".into()).await;
    assert_eq!(r.error_code(), "invalid_message_id");
    app.remove(&thread, &id, &user).await;
    let r = get(thread, id).await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (StatusCode::NOT_FOUND, "not_found")
    );
}

pub(super) async fn edit_changes_content_and_paths(app: &TestApp) {
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

pub(super) async fn edit_and_delete_are_for_the_author_only(app: &TestApp) {
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

pub(super) async fn delete_is_soft_and_final(app: &TestApp) {
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
