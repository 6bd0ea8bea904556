//! HTTP errors: the one mapping from core errors to statuses, and the JSON error body
//! `{"error": {"code", "message"}}`.

use http::{HeaderValue, Response, StatusCode, header};
use messages_core::Error;
use messages_core::limit::Decision;

/// An error ready to be sent.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    allow: Option<&'static str>,
    retry_after: Option<u32>,
    /// For a write the rate limits counted: the user's bucket, for the `X-RateLimit-*`
    /// headers.
    /// Boxed: it is rare, and every `Result` carrying an `ApiError` would grow by its size.
    rate: Option<Box<Decision>>,
    /// For a 5xx: what went wrong, with its causes, for the log line the request handler
    /// writes. Never sent to the client.
    cause: Option<String>,
}

/// An error with its causes on one line, for logs: `a: b: c`.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut out = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        source = cause.source();
    }
    out
}

impl ApiError {
    /// An error with a status, a stable machine-readable code and a human message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            allow: None,
            retry_after: None,
            rate: None,
            cause: None,
        }
    }

    /// 429 `rate_limited` for a write past the user's limit, with `Retry-After` and the
    /// bucket's headers; `per_second` is the rate, for the message.
    pub fn rate_limited(decision: Decision, per_second: f64) -> Self {
        let seconds = retry_after_seconds(&decision);
        ApiError {
            retry_after: Some(seconds),
            rate: Some(Box::new(decision)),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!(
                    "too many writes: up to {} at once, then {per_second} a second; retry after {seconds} s",
                    decision.limit
                ),
            )
        }
    }

    /// 429 `rate_limited` with `Retry-After`, for a message addressing the room past the
    /// user's room mentions a minute (`decision` is that bucket's).
    pub fn room_mentions_limited(decision: Decision) -> Self {
        let seconds = retry_after_seconds(&decision);
        ApiError {
            retry_after: Some(seconds),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!(
                    "mentions.room: at most {} messages addressing the room a minute; retry after {seconds} s",
                    decision.limit
                ),
            )
        }
    }

    /// This error with the `X-RateLimit-*` headers of the write's bucket.
    pub fn with_rate(mut self, decision: Decision) -> Self {
        self.rate = Some(Box::new(decision));
        self
    }

    /// 503 with `Retry-After`, for a limit that frees up by itself (too many open streams).
    pub fn busy(message: impl Into<String>, retry_after_seconds: u32) -> Self {
        ApiError {
            retry_after: Some(retry_after_seconds),
            ..Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
        }
    }

    /// 400 with `code`.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 400 with `code` for a value the core refused, in the core's words: each limit has
    /// one text, where it is checked.
    pub fn refused(code: &'static str, error: Error) -> Self {
        Self::bad_request(code, error.to_string())
    }

    /// 401 for a write without a valid bearer token.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// 404 for a path no route matches.
    pub fn no_route() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "no such route")
    }

    /// 405 naming the methods the route takes.
    pub fn method_not_allowed(allow: &'static str) -> Self {
        ApiError {
            allow: Some(allow),
            ..Self::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                format!("this route takes {allow}"),
            )
        }
    }

    /// 413 for a body over the limit.
    pub fn too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the body is larger than {limit} bytes"),
        )
    }

    /// The status this error is sent with.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// For a 5xx, the cause with its chain, for the request's log line.
    pub fn cause(&self) -> Option<&str> {
        self.cause.as_deref()
    }

    /// The response.
    pub fn into_response(self) -> Response<crate::body::Body> {
        let body = serde_json::json!({
            "error": { "code": self.code, "message": self.message }
        });
        let mut response = Response::new(crate::body::Body::from(body.to_string()));
        *response.status_mut() = self.status;
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(allow) = self.allow {
            headers.insert(header::ALLOW, HeaderValue::from_static(allow));
        }
        if let Some(seconds) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if let Some(decision) = &self.rate {
            write_rate_headers(headers, decision);
        }
        response
    }
}

impl From<Error> for ApiError {
    fn from(error: Error) -> Self {
        match error {
            Error::NotFound => Self::new(StatusCode::NOT_FOUND, "not_found", "message not found"),
            Error::Forbidden => Self::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "only the author may change this message",
            ),
            Error::Invalid { field, reason } => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_field",
                format!("{field}: {reason}"),
            ),
            Error::InvalidCursor => Self::bad_request("invalid_cursor", "invalid cursor"),
            Error::InvalidReplyTo => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_reply_to",
                error.to_string(),
            ),
            Error::TooManyReactions { .. } => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "too_many_reactions",
                error.to_string(),
            ),
            Error::RefusedId { .. } => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_ids",
                error.to_string(),
            ),
            Error::IdempotencyConflict => Self::new(
                StatusCode::CONFLICT,
                "idempotency_conflict",
                "this Idempotency-Key was used with a different request",
            ),
            // The cause goes to the request's log line, never to the client.
            Error::Unavailable { .. } => ApiError {
                cause: Some(error_chain(&error)),
                ..Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "the service cannot answer right now; retry later",
                )
            },
            Error::Internal { .. } => ApiError {
                cause: Some(error_chain(&error)),
                ..Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal_error",
                    "the service failed; this is a bug, and it was logged",
                )
            },
        }
    }
}

/// `X-RateLimit-Limit`: the bucket's size.
pub const RATE_LIMIT: http::HeaderName = http::HeaderName::from_static("x-ratelimit-limit");
/// `X-RateLimit-Remaining`: writes left now.
pub const RATE_REMAINING: http::HeaderName = http::HeaderName::from_static("x-ratelimit-remaining");
/// `X-RateLimit-Reset`: Unix time, in whole seconds rounded up, at which the bucket is full.
pub const RATE_RESET: http::HeaderName = http::HeaderName::from_static("x-ratelimit-reset");

/// The `X-RateLimit-*` headers of `decision`.
pub fn write_rate_headers(headers: &mut http::HeaderMap, decision: &Decision) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let full = now + decision.reset_after;
    let reset = full.as_secs() + u64::from(full.subsec_nanos() > 0);
    headers.insert(RATE_LIMIT, HeaderValue::from(decision.limit));
    headers.insert(RATE_REMAINING, HeaderValue::from(decision.remaining));
    headers.insert(RATE_RESET, HeaderValue::from(reset));
}

/// Whole seconds to wait, rounded up, at least 1: what `Retry-After` says.
pub fn retry_after_seconds(decision: &Decision) -> u32 {
    let wait = decision.retry_after;
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    seconds.clamp(1, u64::from(u32::MAX)) as u32
}
