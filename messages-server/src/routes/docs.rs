//! `/docs`: the API contract (`/openapi.json`) as interactive docs, with "try it out". Swagger
//! UI's files come with the `utoipa-swagger-ui` crate (its `vendored` feature ships them in the
//! crate, so the build fetches nothing and the binary needs no CDN), served under the chat
//! page's self-only Content-Security-Policy. Every URL is relative, so the docs work behind the
//! gateway's `/messages` prefix as they do directly.

use std::sync::{Arc, LazyLock};

use http::{HeaderValue, Response, StatusCode, header};
use utoipa_swagger_ui::Config;

use super::response::HttpResponse;
use crate::body::Body;
use crate::error::ApiError;

/// The chat page's policy, but for the one style element Swagger UI writes into the page,
/// admitted by its hash (any other inline style or script is still refused; the browser test
/// fails on any refusal, so a Swagger UI that writes another one is noticed).
const CSP: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self' 'sha256-RL3ie0nH+Lzz2YNqQN83mnU0J1ot4QL7b99vMdIX99w='; \
     img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; \
     form-action 'self'; frame-ancestors 'none'";

/// The docs read the contract from beside them: `/docs/` → `/openapi.json`.
static CONFIG: LazyLock<Arc<Config<'static>>> = LazyLock::new(|| {
    Arc::new(
        Config::new(["../openapi.json"])
            .try_it_out_enabled(true)
            .display_request_duration(true),
    )
});

/// `GET /docs`: to `/docs/`, where the docs' relative URLs resolve.
pub fn redirect() -> HttpResponse {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::PERMANENT_REDIRECT;
    response
        .headers_mut()
        .insert(header::LOCATION, HeaderValue::from_static("docs/"));
    response
}

/// `GET /docs/` and `GET /docs/{file}`: the docs' page and its files.
pub fn file(tail: &str) -> Result<HttpResponse, ApiError> {
    let found = utoipa_swagger_ui::serve(tail, Arc::clone(&CONFIG)).map_err(|error| {
        tracing::error!(%error, file = tail, "the API docs' file could not be made");
        ApiError::no_route()
    })?;
    let Some(file) = found else {
        return Err(ApiError::no_route());
    };
    let body = match file.bytes {
        std::borrow::Cow::Borrowed(bytes) => Body::from(bytes::Bytes::from_static(bytes)),
        std::borrow::Cow::Owned(bytes) => Body::from(bytes::Bytes::from(bytes)),
    };
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    if let Ok(content_type) = HeaderValue::from_str(&file.content_type) {
        headers.insert(header::CONTENT_TYPE, content_type);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    super::response::protect(&mut response);
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    Ok(response)
}
