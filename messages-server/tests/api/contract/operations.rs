//! Operations: unknown routes and methods, health, metrics, request ids, the OpenAPI contract, the in-process event sink, a clean stop.

use http::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{Backend, TestApp, new_id, spawn_app};

pub(super) async fn unknown_routes_and_methods(app: &TestApp) {
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
            Method::POST,
            format!("/threads/{thread}/messages/{}", new_id()),
            "GET, PUT, DELETE",
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

pub(super) async fn health_routes(app: &TestApp) {
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
    // Every family has help text, as Prometheus's linter (`promtool check metrics`) asks.
    let families: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(families.len() >= 10, "{text}");
    for family in families {
        assert!(
            text.lines().any(|l| l
                .strip_prefix("# HELP ")
                .and_then(|l| l.split_whitespace().next())
                == Some(family)),
            "{family} has no # HELP line: {text}"
        );
    }
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
