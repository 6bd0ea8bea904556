//! Responses: the type every route answers, a JSON answer, and the headers that keep the page
//! and the API docs to their own origin.

use http::{HeaderValue, Response, StatusCode, header};

use crate::body::Body;

/// A response with a complete body.
pub type HttpResponse = Response<Body>;

/// A JSON response.
pub(crate) fn json(status: StatusCode, body: impl Into<Body>) -> HttpResponse {
    let mut response = Response::new(body.into());
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// Only the page's own origin: scripts, styles, fetches and the event stream.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
     frame-ancestors 'none'";

/// Headers every answer of the page (and of the API docs) carries.
pub(crate) fn protect(response: &mut HttpResponse) {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
}
