//! The chat page: `/` and its assets under `/ui/`, compiled into the binary (no build step).
//!
//! Each file is served with its content type and an `ETag` (a hash of its bytes) under
//! `Cache-Control: no-cache`: a browser revalidates and gets a 304 until the binary changes.
//! Every answer carries a Content-Security-Policy that admits only the page's own origin
//! (no inline script or style, no other host), so the page runs nothing it did not ship.
//! `/ui/config.json` tells the page how writers are authenticated and the content limit.

use std::sync::LazyLock;

use http::{HeaderValue, Request, Response, StatusCode, header};
use sha2::{Digest, Sha256};

use super::response::{HttpResponse, json, protect};
use super::state::AppState;
use crate::body::Body;
use crate::error::ApiError;

struct Asset {
    body: &'static [u8],
    content_type: &'static str,
    etag: HeaderValue,
}

impl Asset {
    fn new(body: &'static [u8], content_type: &'static str) -> Self {
        let digest = Sha256::digest(body);
        let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
        Asset {
            body,
            content_type,
            // Hex digits in quotes: always a valid header value.
            etag: HeaderValue::from_str(&format!("\"{hex}\""))
                .unwrap_or(HeaderValue::from_static("\"0\"")),
        }
    }
}

static PAGE: LazyLock<Asset> = LazyLock::new(|| {
    Asset::new(
        include_bytes!("../ui/index.html"),
        "text/html; charset=utf-8",
    )
});
/// A script module of the page, by its name under `src/ui/`.
macro_rules! module {
    ($name:literal) => {
        (
            $name,
            Asset::new(
                include_bytes!(concat!("../ui/", $name)),
                "text/javascript; charset=utf-8",
            ),
        )
    };
}

/// The page's files under `/ui/`, by name, each hashed once.
static FILES: LazyLock<[(&str, Asset); 21]> = LazyLock::new(|| {
    [
        module!("app.js"),
        module!("api.js"),
        module!("composer.js"),
        module!("picker.js"),
        module!("addressing.js"),
        module!("navigation.js"),
        module!("identity.js"),
        module!("render.js"),
        module!("reactions.js"),
        module!("replies.js"),
        module!("history.js"),
        module!("editing.js"),
        module!("live.js"),
        module!("unread.js"),
        module!("conversation.js"),
        module!("inbox.js"),
        module!("threads.js"),
        module!("mentions.js"),
        module!("search.js"),
        module!("panels.js"),
        (
            "style.css",
            Asset::new(include_bytes!("../ui/style.css"), "text/css; charset=utf-8"),
        ),
    ]
});

fn serve<B>(asset: &Asset, request: &Request<B>) -> HttpResponse {
    let fresh = request
        .headers()
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|tag| tag.trim() == asset.etag.to_str().unwrap_or_default() || tag.trim() == "*");
    let mut response = if fresh {
        let mut r = Response::new(Body::empty());
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        r
    } else {
        let mut r = Response::new(Body::from(bytes::Bytes::from_static(asset.body)));
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(asset.content_type),
        );
        r
    };
    let headers = response.headers_mut();
    headers.insert(header::ETAG, asset.etag.clone());
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    protect(&mut response);
    response
}

/// `GET /`: the page.
pub fn page<B>(request: &Request<B>) -> HttpResponse {
    serve(&PAGE, request)
}

/// `GET /ui/{asset}`: the page's script modules, the stylesheet, or the page's settings.
pub fn asset<B>(
    state: &AppState,
    name: Option<&str>,
    request: &Request<B>,
) -> Result<HttpResponse, ApiError> {
    if let Some((_, file)) = FILES.iter().find(|(file, _)| Some(*file) == name) {
        return Ok(serve(file, request));
    }
    match name {
        Some("config.json") => {
            let auth = match state.auth {
                crate::auth::Auth::TrustGateway => "trusted",
                crate::auth::Auth::Jwt { .. } => "jwt",
            };
            let body = serde_json::json!({
                "auth": auth,
                "max_content_chars": state.service.limits().max_content_chars,
            });
            let mut response = json(StatusCode::OK, body.to_string());
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            protect(&mut response);
            Ok(response)
        }
        _ => Err(ApiError::no_route()),
    }
}
