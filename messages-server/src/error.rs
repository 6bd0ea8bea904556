//! HTTP errors: the one mapping from core errors to statuses, and the JSON error body
//! `{"error": {"code", "message"}}`.

use http::{HeaderValue, Response, StatusCode, header};
use messages_core::Error;

/// An error ready to be sent.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    allow: Option<&'static str>,
    retry_after: Option<u32>,
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
            cause: None,
        }
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
