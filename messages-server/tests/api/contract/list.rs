//! `GET /threads/{t}/messages`: pages both ways, by `seq`, `around`, the cached newest page.

use http::StatusCode;
use serde_json::json;

use crate::helpers::{TestApp, item_ids, new_id};

pub(super) async fn list_pages_newest_first_and_back(app: &TestApp) {
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

pub(super) async fn list_validates_its_query(app: &TestApp) {
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

pub(super) async fn list_sees_every_write_at_once(app: &TestApp) {
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

/// Builds a cursor of version 1, as the service issued before pages were ordered by `seq`.
pub(super) fn legacy_cursor(created_at: &str, id: &str) -> String {
    use base64::Engine;
    let micros = chrono::DateTime::parse_from_rfc3339(created_at)
        .expect("created_at")
        .timestamp_micros();
    let mut raw = vec![1u8];
    raw.extend_from_slice(&micros.to_be_bytes());
    raw.extend_from_slice(uuid::Uuid::parse_str(id).expect("id").as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

pub(super) async fn pages_by_seq_and_around_a_message(app: &TestApp) {
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

pub(super) async fn a_cached_page_reports_the_rev_a_store_read_does(app: &TestApp) {
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
