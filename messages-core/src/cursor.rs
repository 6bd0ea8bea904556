//! The opaque keyset cursor: a position `(created_at, id)` in a thread, URL-safe and versioned.
//!
//! Layout before encoding: one version byte, the creation time as big-endian microseconds
//! (8 bytes), the message id (16 bytes); 25 bytes in all, base64url without padding: 34
//! characters. Decoding accepts exactly that: a wrong length, padding, a non-canonical last
//! character, another alphabet, an unknown version or a time outside years 1 to 9999 (what
//! every store and RFC 3339 can hold) is an error, never a panic.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::message::{Message, MessageId, Timestamp};

const VERSION: u8 = 1;
const RAW_LEN: usize = 25;
const ENCODED_LEN: usize = 34;

/// A cursor in its URL-safe form, ready to be written into a response.
pub(crate) type EncodedCursor = [u8; ENCODED_LEN];

/// A position in a thread's order. The same cursor works for both directions: it names the
/// message the page starts after (older with `before`, newer with `after`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cursor {
    created_at: Timestamp,
    id: MessageId,
}

impl Cursor {
    /// The position of a message.
    pub fn new(created_at: Timestamp, id: MessageId) -> Self {
        Cursor { created_at, id }
    }

    /// The position of `message`.
    pub fn of(message: &Message) -> Self {
        Cursor::new(message.created_at, message.id)
    }

    /// The creation time of the message at this position.
    pub fn created_at(&self) -> Timestamp {
        self.created_at
    }

    /// The id of the message at this position.
    pub fn id(&self) -> MessageId {
        self.id
    }

    /// Encodes into the 34-character URL-safe form, without allocating.
    pub fn encode_to(&self, out: &mut [u8; ENCODED_LEN]) {
        let raw = self.raw();
        // The output length is exact for 25 bytes without padding, so this cannot fail.
        let written = URL_SAFE_NO_PAD.encode_slice(raw, out).unwrap_or(0);
        debug_assert_eq!(written, ENCODED_LEN);
    }

    /// The URL-safe form in a fixed buffer.
    pub(crate) fn encoded(&self) -> EncodedCursor {
        let mut out = [0u8; ENCODED_LEN];
        self.encode_to(&mut out);
        out
    }

    /// Encodes into the URL-safe form.
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.raw())
    }

    fn raw(&self) -> [u8; RAW_LEN] {
        let mut raw = [0u8; RAW_LEN];
        raw[0] = VERSION;
        raw[1..9].copy_from_slice(&self.created_at.as_micros().to_be_bytes());
        raw[9..].copy_from_slice(self.id.as_uuid().as_bytes());
        raw
    }

    /// Decodes a cursor; anything but the exact form [`Cursor::encode`] makes is
    /// [`Error::InvalidCursor`].
    pub fn decode(s: &str) -> Result<Self> {
        if s.len() != ENCODED_LEN {
            return Err(Error::InvalidCursor);
        }
        let mut raw = [0u8; RAW_LEN + 2];
        // The engine rejects padding, foreign characters and non-zero trailing bits, so
        // every accepted string is the one canonical encoding of its bytes.
        let n = URL_SAFE_NO_PAD
            .decode_slice(s.as_bytes(), &mut raw)
            .map_err(|_| Error::InvalidCursor)?;
        if n != RAW_LEN || raw[0] != VERSION {
            return Err(Error::InvalidCursor);
        }
        let mut micros = [0u8; 8];
        micros.copy_from_slice(&raw[1..9]);
        let mut id = [0u8; 16];
        id.copy_from_slice(&raw[9..RAW_LEN]);
        let created_at = Timestamp::checked_from_micros(i64::from_be_bytes(micros))
            .ok_or(Error::InvalidCursor)?;
        Ok(Cursor {
            created_at,
            id: MessageId::from_uuid(Uuid::from_bytes(id)),
        })
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0u8; ENCODED_LEN];
        self.encode_to(&mut buf);
        // base64url output is ASCII.
        f.write_str(std::str::from_utf8(&buf).map_err(|_| fmt::Error)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Cursor {
        Cursor::new(
            Timestamp::from_micros(1_764_000_000_123_456),
            MessageId::from_uuid(Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_0001)),
        )
    }

    #[test]
    fn round_trips() {
        for c in [
            sample(),
            Cursor::new(Timestamp::from_micros(0), MessageId::from_uuid(Uuid::nil())),
            Cursor::new(Timestamp::MIN, MessageId::from_uuid(Uuid::max())),
            Cursor::new(Timestamp::MAX, MessageId::new_v7()),
        ] {
            let s = c.encode();
            assert_eq!(s.len(), ENCODED_LEN);
            assert_eq!(c.to_string(), s);
            assert_eq!(Cursor::decode(&s).unwrap(), c);
            assert!(
                s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            );
        }
    }

    #[test]
    fn malformed_cursors_are_errors() {
        let good = sample().encode();
        let mut cases: Vec<String> = vec![
            String::new(),
            "x".into(),
            good[..ENCODED_LEN - 1].to_string(), // truncated
            format!("{good}A"),                  // extended
            format!("{good}=="),                 // padded
            good.replace('-', "+").replace('_', "/") + "", // other alphabet (if any)
            format!("{}!", &good[..ENCODED_LEN - 1]), // foreign character
            "0".repeat(ENCODED_LEN),             // version 0x d3...
            URL_SAFE_NO_PAD.encode([2u8; RAW_LEN]), // unknown version
            URL_SAFE_NO_PAD.encode([1u8; RAW_LEN - 1]), // short payload
            "é".repeat(ENCODED_LEN / 2),         // non-ASCII
            // Well-formed, but at an instant no store can hold (before year 1, after 9999).
            "AYAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".into(),
            Cursor::new(Timestamp::from_micros(i64::MIN), MessageId::new_v7()).encode(),
            Cursor::new(Timestamp::from_micros(i64::MAX), MessageId::new_v7()).encode(),
            Cursor::new(
                Timestamp::from_micros(Timestamp::MAX.as_micros() + 1),
                MessageId::new_v7(),
            )
            .encode(),
        ];
        // A non-canonical last character: same bytes, different trailing bits.
        let last = good.as_bytes()[ENCODED_LEN - 1];
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let idx = alphabet.iter().position(|&b| b == last).unwrap();
        let tweaked = alphabet[idx ^ 1] as char;
        cases.push(format!("{}{}", &good[..ENCODED_LEN - 1], tweaked));
        for case in cases {
            if case == good {
                continue;
            }
            assert!(
                matches!(Cursor::decode(&case), Err(Error::InvalidCursor)),
                "{case:?} decoded"
            );
        }
    }

    #[test]
    fn every_single_character_change_is_caught_or_is_a_different_position() {
        let good = sample().encode();
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        for i in 0..ENCODED_LEN {
            for &b in alphabet.iter().chain(b"+/=.~ ") {
                let mut bytes = good.clone().into_bytes();
                if bytes[i] == b {
                    continue;
                }
                bytes[i] = b;
                let s = String::from_utf8(bytes).unwrap();
                if let Ok(c) = Cursor::decode(&s) {
                    assert_ne!(c, sample());
                    assert_eq!(c.encode(), s, "accepted a non-canonical form");
                }
            }
        }
    }
}
