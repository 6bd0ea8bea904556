//! Request bodies: read into memory within a size and a time, and parsed as JSON with the
//! API's errors (400 `invalid_json` for what is not JSON, 422 `invalid_field` for a field of
//! the wrong shape).

use bytes::Bytes;
use http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use serde::Deserialize;
use serde_json::error::Category;

use crate::error::ApiError;

/// A request body the routes can read: hyper's own, from this server's listener, or another
/// server's, when the routes are mounted in an application of another framework (see
/// [`crate::Application::into_handler`]).
pub trait ReadBody:
    hyper::body::Body<Data = Bytes, Error: std::fmt::Display> + Send + Unpin + 'static
{
}

impl<T> ReadBody for T where
    T: hyper::body::Body<Data = Bytes, Error: std::fmt::Display> + Send + Unpin + 'static
{
}

/// Past the limit, how much of a body is still read and thrown away so that the 413 reaches
/// a proxy that is still sending (closing on unread data resets the connection, which a
/// gateway reports as a 502). Larger bodies are not read; the connection closes instead.
const DRAIN_LIMIT: u64 = 1024 * 1024;

/// Reads the body into memory up to `limit` bytes; past it the answer is 413 and nothing more
/// is kept. A `Content-Length` over the limit is refused without buffering anything.
/// The body must arrive within `timeout`, or the answer is a 400 `bad_body`.
pub(crate) async fn read_body<B: ReadBody>(
    request: Request<B>,
    limit: usize,
    timeout: std::time::Duration,
) -> Result<Bytes, ApiError> {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let limit_bytes = limit as u64;
    if declared.is_some_and(|n| n > DRAIN_LIMIT) {
        return Err(ApiError::too_large(limit));
    }
    let mut too_large = declared.is_some_and(|n| n > limit_bytes);
    let mut body = request.into_body();
    let mut kept = Vec::with_capacity(declared.map_or(1024, |n| n.min(limit_bytes) as usize));
    let mut seen = 0u64;
    let read = async {
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| {
                ApiError::bad_request("bad_body", format!("could not read the body: {e}"))
            })?;
            if let Ok(data) = frame.into_data() {
                seen += data.len() as u64;
                too_large |= seen > limit_bytes;
                if !too_large {
                    kept.extend_from_slice(&data);
                }
                if seen > DRAIN_LIMIT {
                    break;
                }
            }
        }
        Ok::<(), ApiError>(())
    };
    tokio::time::timeout(timeout, read)
        .await
        .map_err(|_| ApiError::bad_request("bad_body", "the body did not arrive in time"))??;
    if too_large {
        return Err(ApiError::too_large(limit));
    }
    Ok(Bytes::from(kept))
}

/// Parses a JSON body: malformed JSON is a 400, well-formed JSON of the wrong shape a 422.
/// JSON is UTF-8 throughout (RFC 8259): checked first, since the parser does not look inside
/// the strings of fields it ignores.
pub(crate) fn parse_json<T: for<'de> Deserialize<'de>>(body: &Bytes) -> Result<T, ApiError> {
    let text = std::str::from_utf8(body).map_err(|error| {
        ApiError::bad_request(
            "invalid_json",
            format!("the body is not valid JSON: not UTF-8 ({error})"),
        )
    })?;
    serde_json::from_str(text).map_err(|error| match error.classify() {
        Category::Data => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            error.to_string(),
        ),
        Category::Io | Category::Syntax | Category::Eof => ApiError::bad_request(
            "invalid_json",
            format!("the body is not valid JSON: {error}"),
        ),
    })
}
