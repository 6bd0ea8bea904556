//! The hand-written JSON of responses and events, in one place: what the hot paths write
//! without going through serde (a page's envelope, a thread position, a list of encoded
//! items) and the split of an object before and after its numbers.
//!
//! Each writer appends to a `Vec<u8>`, so a response is built in one buffer.

use serde::Serialize;

/// The page envelope up to the first item.
pub(crate) const PAGE_OPEN: &[u8] = b"{\"items\":[";

/// Appends `head` as a JSON object without its closing brace, for [`close_numbered`] to
/// finish once the change has its numbers.
pub(crate) fn write_open<T: Serialize>(head: &T, out: &mut Vec<u8>) {
    serde_json::to_writer(&mut *out, head)
        .expect("ids, times, strings and lists always serialise into memory");
    // serde_json writes a compact object: its last byte is the closing brace.
    out.pop();
}

/// Closes an object [`write_open`] began with a change's numbers: `,"seq":S,"rev":R}`.
pub(crate) fn close_numbered(out: &mut Vec<u8>, seq: i64, rev: i64) {
    out.extend_from_slice(b",\"seq\":");
    write_position(out, seq);
    out.extend_from_slice(b",\"rev\":");
    write_position(out, rev);
    out.push(b'}');
}

/// Appends a thread position as a JSON number.
pub(crate) fn write_position(out: &mut Vec<u8>, position: i64) {
    out.extend_from_slice(itoa::Buffer::new().format(position).as_bytes());
}

/// Appends `true` or `false`.
pub(crate) fn write_bool(out: &mut Vec<u8>, value: bool) {
    out.extend_from_slice(if value { b"true" } else { b"false" });
}

/// Appends `items` comma-separated, each written by `write`.
pub(crate) fn write_list<T>(
    out: &mut Vec<u8>,
    items: impl IntoIterator<Item = T>,
    mut write: impl FnMut(T, &mut Vec<u8>),
) {
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write(item, out);
    }
}

/// The page envelope after the last item, `next_cursor` already encoded:
/// `],"next_cursor":...,"has_more":...,"rev":N}`.
pub(crate) fn write_page_close(
    out: &mut Vec<u8>,
    next_cursor: Option<&[u8]>,
    has_more: bool,
    rev: i64,
) {
    write_list_close(out, next_cursor, has_more);
    out.extend_from_slice(b",\"rev\":");
    write_position(out, rev);
    out.push(b'}');
}

/// The envelope of a list that has no position (an inbox, mentions) after its last item,
/// `next_cursor` already encoded: `],"next_cursor":...,"has_more":...}`.
pub(crate) fn write_list_close(out: &mut Vec<u8>, next_cursor: Option<&[u8]>, has_more: bool) {
    out.extend_from_slice(b"],\"next_cursor\":");
    match next_cursor {
        Some(cursor) => {
            out.push(b'"');
            out.extend_from_slice(cursor);
            out.push(b'"');
        }
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"has_more\":");
    write_bool(out, has_more);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_open_object_closed_with_numbers_is_valid_json() {
        let mut out = Vec::new();
        write_open(&serde_json::json!({"a": 1}), &mut out);
        close_numbered(&mut out, 3, 9);
        let value: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(value, serde_json::json!({"a": 1, "seq": 3, "rev": 9}));
    }

    #[test]
    fn a_page_close_is_the_documented_shape() {
        let mut out = PAGE_OPEN.to_vec();
        write_list(&mut out, [&b"1"[..], b"2"], |item, out| {
            out.extend_from_slice(item)
        });
        write_page_close(&mut out, None, false, 7);
        assert_eq!(
            out,
            br#"{"items":[1,2],"next_cursor":null,"has_more":false,"rev":7}"#
        );
    }
}
