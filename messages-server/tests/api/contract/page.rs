//! `GET /` and `/ui/{asset}`: the chat page and its files.

use http::{Method, StatusCode};
use serde_json::json;

use crate::helpers::TestApp;

/// Every file of the page in `src/ui/` but the page itself, as `/ui/{name}`, with its type:
/// a module written and not served would leave the page broken.
fn assets() -> Vec<(String, &'static str)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/ui");
    let mut assets: Vec<(String, &'static str)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter_map(|name| {
            let kind = match name.rsplit_once('.')?.1 {
                "js" => "text/javascript; charset=utf-8",
                "css" => "text/css; charset=utf-8",
                _ => return None,
            };
            Some((format!("/ui/{name}"), kind))
        })
        .collect();
    assets.sort();
    assert!(assets.len() >= 20, "the page's files: {assets:?}");
    assets
}

/// The chat page and its assets: content types, the CSP, revalidation by `ETag`.
pub(super) async fn the_chat_page_is_served(app: &TestApp) {
    let mut files = vec![("/".to_owned(), "text/html; charset=utf-8")];
    files.extend(assets());
    for (path, content_type) in files {
        let path = path.as_str();
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
