//! Query strings: their pairs, decoded only when they need it.

use std::borrow::Cow;

/// The pairs of a query string. Values are percent-decoded only when they hold a `%` or a
/// `+`: the parameters this API reads (numbers, ids, base64url cursors) rarely do, and the
/// borrowed fast path keeps a request free of allocations.
pub(crate) fn query_pairs(query: &str) -> impl Iterator<Item = (Cow<'_, str>, Cow<'_, str>)> {
    let mut rest = query;
    std::iter::from_fn(move || {
        loop {
            if rest.is_empty() {
                return None;
            }
            let (pair, tail) = match rest.as_bytes().iter().position(|&b| b == b'&') {
                Some(at) => (&rest[..at], &rest[at + 1..]),
                None => (rest, ""),
            };
            rest = tail;
            if pair.is_empty() {
                continue;
            }
            if pair.bytes().any(|b| b == b'%' || b == b'+') {
                return form_urlencoded::parse(pair.as_bytes())
                    .next()
                    .map(|(k, v)| (Cow::Owned(k.into_owned()), Cow::Owned(v.into_owned())));
            }
            let (k, v) = match pair.as_bytes().iter().position(|&b| b == b'=') {
                Some(at) => (&pair[..at], &pair[at + 1..]),
                None => (pair, ""),
            };
            return Some((Cow::Borrowed(k), Cow::Borrowed(v)));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_pairs_decode_only_when_needed() {
        let pairs: Vec<(String, String)> = query_pairs("limit=5&&cursor=a-b_c&x=%41+b&flag")
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        assert_eq!(
            pairs,
            [
                ("limit".into(), "5".into()),
                ("cursor".into(), "a-b_c".into()),
                ("x".into(), "A b".into()),
                ("flag".into(), String::new()),
            ]
        );
    }
}
