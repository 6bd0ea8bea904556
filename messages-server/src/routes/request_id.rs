//! A request's id: the gateway's `X-Request-Id` when it is a sane token, else one made here; it
//! goes into the response header and every log line of the request.

use http::HeaderValue;

/// `X-Request-Id`, named once: a header name given as a string is parsed on every use.
pub(super) const X_REQUEST_ID: http::HeaderName = http::HeaderName::from_static("x-request-id");

/// A request's id, as it goes into the `X-Request-Id` response header and every log line.
pub struct RequestId(pub(super) HeaderValue);

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Either the gateway's, checked to be visible ASCII, or one made here: always text.
        f.write_str(self.0.to_str().unwrap_or("-"))
    }
}

/// The gateway's `X-Request-Id` when it is a sane token (1 to 128 visible ASCII characters),
/// else a new one.
pub(super) fn request_id(headers: &http::HeaderMap) -> RequestId {
    match headers.get(X_REQUEST_ID) {
        Some(v)
            if !v.is_empty() && v.len() <= 128 && v.as_bytes().iter().all(u8::is_ascii_graphic) =>
        {
            RequestId(v.clone())
        }
        _ => new_request_id(),
    }
}

/// A UUID-shaped id without a system call or an allocation per request: the high half is
/// random, drawn once per process (it carries the v4 version nibble); the low half counts
/// requests, with the RFC 4122 variant bits set.
fn new_request_id() -> RequestId {
    static PREFIX: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let prefix = *PREFIX.get_or_init(|| uuid::Uuid::new_v4().as_u64_pair().0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let low = (n & 0x3fff_ffff_ffff_ffff) | 0x8000_0000_0000_0000;
    let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
    uuid::Uuid::from_u64_pair(prefix, low)
        .hyphenated()
        .encode_lower(&mut text);
    // 36 ASCII hex digits and hyphens are a valid header value.
    RequestId(HeaderValue::from_bytes(&text).unwrap_or(HeaderValue::from_static("-")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_request_ids_are_uuids_and_differ() {
        let a = new_request_id().to_string();
        let b = new_request_id().to_string();
        assert_ne!(a, b);
        for id in [&a, &b] {
            let parsed = uuid::Uuid::parse_str(id).unwrap();
            assert_eq!(parsed.get_version_num(), 4, "{id}");
            assert_eq!(parsed.get_variant(), uuid::Variant::RFC4122, "{id}");
            assert_eq!(&parsed.to_string(), id);
        }
    }
}
