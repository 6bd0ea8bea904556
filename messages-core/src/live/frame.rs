//! A change as a server-sent event, encoded once and shared by every reader:
//! `id: <rev>`, `event: message.created | message.updated | message.deleted`, and the message
//! JSON (or the tombstone) as `data`. The JSON is one line, so it is one `data` field.

use bytes::Bytes;

use crate::changes::Change;

/// One change as a server-sent event: its `rev` and the encoded event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// The change's number (the event's `id`).
    pub rev: i64,
    /// `id: ...\nevent: ...\ndata: ...\n\n`.
    pub bytes: Bytes,
}

impl Frame {
    /// The event of one change.
    pub(crate) fn of(change: &Change) -> Frame {
        let rev = change.rev();
        let mut out = Vec::with_capacity(400);
        out.extend_from_slice(b"id: ");
        out.extend_from_slice(itoa::Buffer::new().format(rev).as_bytes());
        out.extend_from_slice(b"\nevent: ");
        out.extend_from_slice(change.kind().as_bytes());
        out.extend_from_slice(b"\ndata: ");
        change.write_json(&mut out);
        out.extend_from_slice(b"\n\n");
        Frame {
            rev,
            bytes: Bytes::from(out),
        }
    }
}

/// A comment line: keeps proxies from closing an idle stream, and tells the server whether
/// the reader is still there.
pub fn heartbeat() -> Bytes {
    Bytes::from_static(b": keep-alive\n\n")
}

/// How long a client should wait before reconnecting, as the stream's first field.
pub fn retry_hint(millis: u64) -> Bytes {
    Bytes::from(format!("retry: {millis}\n\n"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{MessageId, ThreadId, Timestamp, Tombstone};

    #[test]
    fn an_event_is_id_event_and_one_data_line() {
        let t = Tombstone {
            id: MessageId::from_uuid(uuid::Uuid::nil()),
            thread_id: ThreadId::from_uuid(uuid::Uuid::nil()),
            deleted_at: Timestamp::from_micros(0),
            deleted_by: None,
            reason: None,
            seq: 3,
            rev: 9,
        };
        let frame = Frame::of(&Change::Deleted(t.clone()));
        assert_eq!(frame.rev, 9);
        let text = String::from_utf8(frame.bytes.to_vec()).unwrap();
        assert_eq!(
            text,
            format!(
                "id: 9\nevent: message.deleted\ndata: {}\n\n",
                String::from_utf8(t.to_json()).unwrap()
            )
        );
    }
}
