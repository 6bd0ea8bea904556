//! `GET /` and `/ui/{asset}`: the chat page and its files.

use http::{Method, StatusCode};
use serde_json::json;

use crate::helpers::TestApp;

/// The chat page and its assets: content types, the CSP, revalidation by `ETag`.
pub(super) async fn the_chat_page_is_served(app: &TestApp) {
    for (path, content_type) in [
        ("/", "text/html; charset=utf-8"),
        ("/ui/app.js", "text/javascript; charset=utf-8"),
        ("/ui/api.js", "text/javascript; charset=utf-8"),
        ("/ui/identity.js", "text/javascript; charset=utf-8"),
        ("/ui/render.js", "text/javascript; charset=utf-8"),
        ("/ui/reactions.js", "text/javascript; charset=utf-8"),
        ("/ui/replies.js", "text/javascript; charset=utf-8"),
        ("/ui/history.js", "text/javascript; charset=utf-8"),
        ("/ui/editing.js", "text/javascript; charset=utf-8"),
        ("/ui/live.js", "text/javascript; charset=utf-8"),
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
