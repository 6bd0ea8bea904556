//! Per-user write rate limits over HTTP: the 429 and its headers, nothing stored or numbered
//! for it, an honest `Retry-After`, one bucket per user across replicas sharing Redis, writes
//! going through when Redis dies, replays and read-state updates not counted, exempt roles.
//!
//! The rates are slow (one write every two seconds) so that a burst sent one request after
//! another always ends inside the time one token takes to come back, however busy the
//! machine; the burst is the default, 30.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{Method, StatusCode};
use messages_core::limit::Rate;
use messages_core::testing::postgres::TestDatabase;
use messages_core::testing::redis::{RedisProcess, redis_url, unique_prefix};
use messages_server::Config;
use messages_server::config::{RateLimitSettings, StoreSettings};
use serde_json::json;

use crate::helpers::{
    TestApp, TestResponse, database_settings, new_id, redis_settings, start, test_config,
};

const BURST: u32 = 30;

/// A test configuration with limits of one write per `1 / per_second` seconds, burst `burst`.
fn limited(per_second: f64, burst: u32) -> Config {
    let mut config = test_config();
    config.rate_limit = RateLimitSettings {
        rate: Some(Rate::new(per_second, burst).unwrap()),
        ..RateLimitSettings::default()
    };
    config
}

fn header(r: &TestResponse, name: &str) -> Option<u64> {
    r.headers
        .get(name)
        .map(|v| v.to_str().unwrap().parse().unwrap())
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

async fn post(app: &TestApp, thread: &str, user: &str, text: &str) -> TestResponse {
    app.create(thread, user, json!({ "content": text })).await
}

/// The thread's head: its newest `seq`.
async fn head(app: &TestApp, thread: &str) -> i64 {
    app.page(thread, "?limit=1").await["items"][0]["seq"]
        .as_i64()
        .unwrap_or(0)
}

/// Checks a 429: its code, `Retry-After` in whole seconds (at most one token's time), the
/// bucket empty. Returns `Retry-After`.
fn assert_limited(r: &TestResponse, interval_s: u64) -> u64 {
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{:?}", r.body);
    assert_eq!(r.error_code(), "rate_limited");
    let retry = header(r, "retry-after").expect("Retry-After");
    assert!((1..=interval_s).contains(&retry), "Retry-After {retry}");
    assert_eq!(header(r, "x-ratelimit-limit"), Some(u64::from(BURST)));
    assert_eq!(header(r, "x-ratelimit-remaining"), Some(0));
    retry
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_write_past_the_burst_is_refused_stores_nothing_and_its_wait_is_honest() {
    let app = start(limited(0.5, BURST)).await;
    let mut events = app.sink.as_ref().expect("in-process events").subscribe();
    let (thread, user) = (new_id(), new_id());
    for i in 0..BURST {
        let r = post(&app, &thread, &user, &format!("m{i}")).await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        assert_eq!(header(&r, "x-ratelimit-limit"), Some(u64::from(BURST)));
        assert_eq!(
            header(&r, "x-ratelimit-remaining"),
            Some(u64::from(BURST - 1 - i))
        );
        // Full again once every token taken has come back: (i + 1) tokens of 2 s.
        let reset = header(&r, "x-ratelimit-reset").expect("X-RateLimit-Reset");
        let now = unix_now();
        assert!(
            reset >= now + u64::from(i) * 2 && reset <= now + u64::from(i + 1) * 2 + 1,
            "reset {reset} at {now} after {} writes",
            i + 1
        );
    }
    let refused = post(&app, &thread, &user, "one too many").await;
    let retry = assert_limited(&refused, 2);
    // The refusal was decided before anything else: even a malformed write is a 429.
    let malformed = app
        .request(
            Method::POST,
            &format!("/threads/{thread}/messages"),
            &[("x-user-id", &user)],
            Some(b"{not json".to_vec()),
        )
        .await;
    assert_limited(&malformed, 2);
    // Nothing was stored, numbered or sent for either.
    assert_eq!(head(&app, &thread).await, i64::from(BURST));
    let metrics = app.request(Method::GET, "/metrics", &[], None).await;
    let metrics = String::from_utf8_lossy(&metrics.body).into_owned();
    assert!(
        metrics
            .lines()
            .any(|l| l
                .starts_with("http_rate_limited_total{route=\"/threads/{thread_id}/messages\"}")),
        "{metrics}"
    );
    // Another user is not affected.
    let other = post(&app, &thread, &new_id(), "someone else").await;
    assert_eq!(other.status, StatusCode::CREATED);
    // After the wait said, the retry goes through and takes the next number.
    tokio::time::sleep(Duration::from_secs(retry)).await;
    let retried = post(&app, &thread, &user, "one too many").await;
    assert_eq!(retried.status, StatusCode::CREATED, "{:?}", retried.body);
    assert_eq!(retried.json()["seq"], json!(BURST + 2));
    // One event per stored message, none for the refusals.
    for n in 0..BURST + 2 {
        tokio::time::timeout(Duration::from_secs(5), events.recv())
            .await
            .unwrap_or_else(|_| panic!("event {n} missing"))
            .expect("event");
    }
    let more = tokio::time::timeout(Duration::from_millis(300), events.recv()).await;
    assert!(
        more.is_err(),
        "an event beyond the stored messages: {more:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_sharing_redis_share_each_users_bucket() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let Some(redis) = redis_url() else { return };
    let mut config = limited(0.5, BURST);
    config.store = StoreSettings::Postgres(database_settings(db.url()));
    config.redis = Some(redis_settings(&redis, &unique_prefix()));
    let (a, b) = (start(config.clone()).await, start(config).await);
    let (thread, user) = (new_id(), new_id());
    for i in 0..BURST {
        let replica = if i % 2 == 0 { &a } else { &b };
        let r = post(replica, &thread, &user, &format!("m{i}")).await;
        assert_eq!(r.status, StatusCode::CREATED, "write {i}: {:?}", r.body);
        assert_eq!(
            header(&r, "x-ratelimit-remaining"),
            Some(u64::from(BURST - 1 - i)),
            "one bucket across both replicas"
        );
    }
    // The 31st is refused on either replica.
    assert_limited(&post(&a, &thread, &user, "31st").await, 2);
    let retry = assert_limited(&post(&b, &thread, &user, "31st").await, 2);
    assert_eq!(
        head(&a, &thread).await,
        i64::from(BURST),
        "a 429 takes no number"
    );
    tokio::time::sleep(Duration::from_secs(retry)).await;
    let retried = post(&a, &thread, &user, "31st").await;
    assert_eq!(retried.status, StatusCode::CREATED, "{:?}", retried.body);
    assert_eq!(retried.json()["seq"], json!(BURST + 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_go_through_unchecked_when_redis_dies() {
    let Some(mut redis) = RedisProcess::start().await else {
        return;
    };
    let mut config = limited(0.5, 3);
    config.redis = Some(redis_settings(&redis.url(), &unique_prefix()));
    let app = start(config).await;
    let (thread, user) = (new_id(), new_id());
    for _ in 0..3 {
        let r = post(&app, &thread, &user, "limited").await;
        assert_eq!(r.status, StatusCode::CREATED);
        assert!(header(&r, "x-ratelimit-remaining").is_some());
    }
    let r = post(&app, &thread, &user, "limited").await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);

    redis.kill();
    for i in 0..10 {
        let r = post(&app, &thread, &user, &format!("unchecked {i}")).await;
        assert_eq!(r.status, StatusCode::CREATED, "write {i}: {:?}", r.body);
        assert_eq!(
            header(&r, "x-ratelimit-remaining"),
            None,
            "no bucket to speak of"
        );
    }
    assert_eq!(head(&app, &thread).await, 13);
    let metrics = app.request(Method::GET, "/metrics", &[], None).await;
    let metrics = String::from_utf8_lossy(&metrics.body).into_owned();
    let unchecked = crate::helpers::metric(&metrics, "rate_limit_unchecked_total");
    assert!(unchecked.is_some_and(|n| n >= 10.0), "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotent_replay_is_not_counted_and_a_refused_write_still_counts() {
    let app = start(limited(0.5, 3)).await;
    let (thread, user) = (new_id(), new_id());
    let first = app
        .create_with_key(&thread, &user, "key-1", json!({"content": "once"}))
        .await;
    assert_eq!(first.status, StatusCode::CREATED);
    assert_eq!(header(&first, "x-ratelimit-remaining"), Some(2));
    for _ in 0..5 {
        let replay = app
            .create_with_key(&thread, &user, "key-1", json!({"content": "once"}))
            .await;
        assert_eq!(replay.status, StatusCode::CREATED);
        assert_eq!(replay.json(), first.json());
        assert_eq!(header(&replay, "x-ratelimit-remaining"), Some(2));
    }
    // A write the service refuses took its token: the headers say so on the error too.
    let refused = app.create(&thread, &user, json!({"content": ""})).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(header(&refused, "x-ratelimit-remaining"), Some(1));
    assert_eq!(
        post(&app, &thread, &user, "two").await.status,
        StatusCode::CREATED
    );
    let limited = post(&app, &thread, &user, "three").await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(head(&app, &thread).await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_state_updates_are_not_counted() {
    let app = start(limited(0.5, 1)).await;
    let (thread, user) = (new_id(), new_id());
    assert_eq!(
        post(&app, &thread, &user, "one").await.status,
        StatusCode::CREATED
    );
    for _ in 0..5 {
        let r = app
            .request(
                Method::PUT,
                &format!("/threads/{thread}/read"),
                &[("x-user-id", &user)],
                Some(br#"{"seq": 1}"#.to_vec()),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        assert_eq!(header(&r, "x-ratelimit-remaining"), None);
    }
    let r = post(&app, &thread, &user, "two").await;
    assert_eq!(
        r.status,
        StatusCode::TOO_MANY_REQUESTS,
        "the one write used the burst"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moderators_and_services_are_not_limited_unless_configured() {
    let app = start(limited(0.5, 1)).await;
    let thread = new_id();
    for role in ["moderator", "service", "service,moderator"] {
        let user = new_id();
        for i in 0..3 {
            let r = app
                .request(
                    Method::POST,
                    &format!("/threads/{thread}/messages"),
                    &[("x-user-id", &user), ("x-user-roles", role)],
                    Some(
                        json!({"content": format!("{role} {i}")})
                            .to_string()
                            .into_bytes(),
                    ),
                )
                .await;
            assert_eq!(r.status, StatusCode::CREATED, "{role}: {:?}", r.body);
            assert_eq!(
                header(&r, "x-ratelimit-limit"),
                None,
                "{role} is not limited"
            );
        }
    }
    let mut config = limited(0.5, 1);
    config.rate_limit.exempt_moderators = false;
    config.rate_limit.exempt_services = false;
    let strict = start(config).await;
    let user = new_id();
    let as_moderator = [("x-user-id", user.as_str()), ("x-user-roles", "moderator")];
    let body = || Some(json!({"content": "x"}).to_string().into_bytes());
    let path = format!("/threads/{thread}/messages");
    let first = strict
        .request(Method::POST, &path, &as_moderator, body())
        .await;
    assert_eq!(first.status, StatusCode::CREATED);
    let second = strict
        .request(Method::POST, &path, &as_moderator, body())
        .await;
    assert_eq!(second.status, StatusCode::TOO_MANY_REQUESTS);
}

/// A message addressing the whole room takes from a bucket of its own (here 2 a minute): past
/// it a 429 that stores nothing, while the user's other writes and mentions of users go on;
/// each user has their own bucket, and moderators are exempt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn room_mentions_are_limited_apart_from_writes() {
    let mut config = test_config();
    config.rate_limit.room_mentions = RateLimitSettings::room_mentions_rate(2);
    let app = start(config).await;
    let (thread, user, other) = (new_id(), new_id(), new_id());
    let room = json!({"content": "everyone", "mentions": {"room": true}});
    let key = new_id();
    let first = app
        .create_with_key(&thread, &user, &key, room.clone())
        .await;
    assert_eq!(first.status, StatusCode::CREATED, "{:?}", first.body);
    // What stores no new room mention costs none: a replay of the create, a create refused
    // for its content, an edit of a message that addresses the room already.
    let replay = app
        .create_with_key(&thread, &user, &key, room.clone())
        .await;
    assert_eq!(
        replay
            .headers
            .get("idempotent-replayed")
            .and_then(|v| v.to_str().ok()),
        Some("true")
    );
    assert_eq!(replay.json()["id"], first.json()["id"]);
    let refused = json!({"content": "", "mentions": {"room": true}});
    assert_eq!(
        app.create(&thread, &user, refused).await.status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let first_id = first.json()["id"].as_str().unwrap_or_default().to_owned();
    let kept = app
        .edit(
            &thread,
            &first_id,
            &user,
            json!({"content": "everyone, edited", "mentions": {"room": true}}),
        )
        .await;
    assert_eq!(kept.status, StatusCode::OK, "{:?}", kept.body);
    let r = app.create(&thread, &user, room.clone()).await;
    assert_eq!(r.status, StatusCode::CREATED, "the second: {:?}", r.body);
    let before = head(&app, &thread).await;
    let r = app.create(&thread, &user, room.clone()).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{:?}", r.body);
    assert_eq!(r.error_code(), "rate_limited");
    let retry = header(&r, "retry-after").expect("Retry-After");
    assert!((1..=30).contains(&retry), "one token in 30 s: {retry}");
    assert_eq!(head(&app, &thread).await, before, "nothing stored");
    let named = json!({"content": "you", "mentions": {"users": [other]}});
    assert_eq!(
        app.create(&thread, &user, named).await.status,
        StatusCode::CREATED
    );
    let id = post(&app, &thread, &user, "plain").await.json()["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let r = app
        .edit(&thread, &id, &user, json!({"mentions": {"room": true}}))
        .await;
    assert_eq!(
        r.status,
        StatusCode::TOO_MANY_REQUESTS,
        "an edit takes one too"
    );
    assert_eq!(
        app.create(&thread, &other, room.clone()).await.status,
        StatusCode::CREATED,
        "another user's bucket"
    );
    for _ in 0..3 {
        let r = app
            .request(
                Method::POST,
                &format!("/threads/{thread}/messages"),
                &[("x-user-id", &user), ("x-user-roles", "moderator")],
                Some(room.to_string().into_bytes()),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "moderators are exempt");
    }
}
