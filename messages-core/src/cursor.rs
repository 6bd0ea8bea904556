//! The opaque cursor: a position in a thread, URL-safe and versioned.
//!
//! Version 2, the one this service issues: one version byte and the `seq` of the message the
//! page ends at (8 bytes, big-endian), base64url without padding: 12 characters. Version 1,
//! issued before pages were ordered by `seq`, named the message by its creation time and id
//! (25 bytes, 34 characters); it is still accepted, and the service finds the message's `seq`
//! by its id. Decoding accepts exactly those forms: a wrong length, padding, a non-canonical
//! last character, another alphabet, an unknown version, a negative `seq` or a time outside
//! years 1 to 9999 is an error, never a panic.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::message::{Message, MessageId, Timestamp};

const VERSION: u8 = 2;
const RAW_LEN: usize = 9;
const ENCODED_LEN: usize = 12;

const LEGACY_VERSION: u8 = 1;
const LEGACY_RAW_LEN: usize = 25;
const LEGACY_ENCODED_LEN: usize = 34;

/// A cursor in its URL-safe form, ready to be written into a response.
pub(crate) type EncodedCursor = [u8; ENCODED_LEN];

/// A position in a thread's order. The same cursor works for both directions: it names the
/// message a page ends at (older with `before`, newer with `after`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Cursor {
    /// After or before the message whose creation took this `seq`.
    Seq(i64),
    /// A cursor of version 1: the message with this id, whose `seq` the store knows.
    Legacy(MessageId),
}

impl Cursor {
    /// The position of `message`.
    pub fn of(message: &Message) -> Self {
        Cursor::Seq(message.seq)
    }

    /// The URL-safe form in a fixed buffer. A legacy cursor is never encoded again: it
    /// encodes as the position 0.
    pub(crate) fn encoded(&self) -> EncodedCursor {
        let mut raw = [0u8; RAW_LEN];
        raw[0] = VERSION;
        if let Cursor::Seq(seq) = self {
            raw[1..].copy_from_slice(&seq.to_be_bytes());
        }
        let mut out = [0u8; ENCODED_LEN];
        // The output length is exact for 9 bytes without padding, so this cannot fail.
        let written = URL_SAFE_NO_PAD.encode_slice(raw, &mut out).unwrap_or(0);
        debug_assert_eq!(written, ENCODED_LEN);
        out
    }

    /// Encodes into the URL-safe form.
    pub fn encode(&self) -> String {
        let encoded = self.encoded();
        String::from_utf8_lossy(&encoded).into_owned()
    }

    /// Decodes a cursor; anything but the exact forms this service made is
    /// [`Error::InvalidCursor`].
    pub fn decode(s: &str) -> Result<Self> {
        match s.len() {
            ENCODED_LEN => {
                let raw = decode_exact::<RAW_LEN>(s)?;
                if raw[0] != VERSION {
                    return Err(Error::InvalidCursor);
                }
                let mut seq = [0u8; 8];
                seq.copy_from_slice(&raw[1..]);
                match i64::from_be_bytes(seq) {
                    seq if seq >= 0 => Ok(Cursor::Seq(seq)),
                    _ => Err(Error::InvalidCursor),
                }
            }
            LEGACY_ENCODED_LEN => {
                let raw = decode_exact::<LEGACY_RAW_LEN>(s)?;
                if raw[0] != LEGACY_VERSION {
                    return Err(Error::InvalidCursor);
                }
                let mut micros = [0u8; 8];
                micros.copy_from_slice(&raw[1..9]);
                // The time is no longer used, but a cursor that never came from this service
                // is refused as before.
                Timestamp::checked_from_micros(i64::from_be_bytes(micros))
                    .ok_or(Error::InvalidCursor)?;
                let mut id = [0u8; 16];
                id.copy_from_slice(&raw[9..]);
                Ok(Cursor::Legacy(MessageId::from_uuid(Uuid::from_bytes(id))))
            }
            _ => Err(Error::InvalidCursor),
        }
    }
}

/// Decodes exactly `N` bytes. The engine rejects padding, foreign characters and non-zero
/// trailing bits, so every accepted string is the one canonical encoding of its bytes.
fn decode_exact<const N: usize>(s: &str) -> Result<[u8; N]> {
    let mut raw = [0u8; 32];
    let n = URL_SAFE_NO_PAD
        .decode_slice(s.as_bytes(), &mut raw)
        .map_err(|_| Error::InvalidCursor)?;
    if n != N {
        return Err(Error::InvalidCursor);
    }
    let mut out = [0u8; N];
    out.copy_from_slice(&raw[..N]);
    Ok(out)
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let encoded = self.encoded();
        // base64url output is ASCII.
        f.write_str(std::str::from_utf8(&encoded).map_err(|_| fmt::Error)?)
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    /// Strings of the cursor's length over the base64url alphabet, and a few characters
    /// outside it: what a client that edits a cursor sends.
    fn cursor_like() -> impl Strategy<Value = String> {
        let char = prop_oneof![
            20 => proptest::char::ranges(vec!['A'..='Z', 'a'..='z', '0'..='9'].into()),
            2 => Just('-'),
            2 => Just('_'),
            1 => prop_oneof![Just('='), Just('+'), Just('/'), Just('é'), Just(' ')],
        ];
        prop_oneof![Just(ENCODED_LEN), Just(LEGACY_ENCODED_LEN), 0usize..40]
            .prop_flat_map(move |len| proptest::collection::vec(char.clone(), len))
            .prop_map(|chars| chars.into_iter().collect())
    }

    proptest! {
        /// Every position survives the round trip, in 12 URL-safe characters.
        #[test]
        fn every_position_round_trips(seq in 0..=i64::MAX) {
            let encoded = Cursor::Seq(seq).encode();
            prop_assert_eq!(encoded.len(), ENCODED_LEN);
            prop_assert!(encoded.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
            prop_assert_eq!(Cursor::decode(&encoded).ok(), Some(Cursor::Seq(seq)));
        }

        /// Whatever a client sends decodes or is refused, never panics; a cursor that decodes
        /// to a position is exactly the one encoding of it (no two strings name one page).
        #[test]
        fn anything_decodes_canonically_or_is_refused(s in cursor_like()) {
            match Cursor::decode(&s) {
                Ok(Cursor::Seq(seq)) => {
                    prop_assert!(seq >= 0);
                    prop_assert_eq!(Cursor::Seq(seq).encode(), s);
                }
                Ok(Cursor::Legacy(_)) => prop_assert_eq!(s.len(), LEGACY_ENCODED_LEN),
                Err(error) => prop_assert!(matches!(error, Error::InvalidCursor)),
            }
        }

        /// Arbitrary bytes, not only characters of the alphabet.
        #[test]
        fn arbitrary_text_never_panics(s in "\\PC{0,40}") {
            let _ = Cursor::decode(&s);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

    fn legacy(micros: i64, id: MessageId) -> String {
        let mut raw = [0u8; LEGACY_RAW_LEN];
        raw[0] = LEGACY_VERSION;
        raw[1..9].copy_from_slice(&micros.to_be_bytes());
        raw[9..].copy_from_slice(id.as_uuid().as_bytes());
        URL_SAFE_NO_PAD.encode(raw)
    }

    #[test]
    fn round_trips() {
        for seq in [0, 1, 42, 1 << 40, i64::MAX] {
            let c = Cursor::Seq(seq);
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
    fn version_1_cursors_still_name_their_message() {
        let id = MessageId::new_v7();
        let s = legacy(1_764_000_000_123_456, id);
        assert_eq!(Cursor::decode(&s).unwrap(), Cursor::Legacy(id));
        // But not one at an instant no store can hold.
        for micros in [i64::MIN, i64::MAX, Timestamp::MAX.as_micros() + 1] {
            assert!(Cursor::decode(&legacy(micros, id)).is_err());
        }
        assert!(Cursor::decode("AYAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA").is_err());
    }

    #[test]
    fn malformed_cursors_are_errors() {
        let good = Cursor::Seq(123_456).encode();
        let mut cases: Vec<String> = vec![
            String::new(),
            "x".into(),
            good[..ENCODED_LEN - 1].to_string(),      // truncated
            format!("{good}A"),                       // extended
            format!("{good}=="),                      // padded
            format!("{}!", &good[..ENCODED_LEN - 1]), // foreign character
            "0".repeat(ENCODED_LEN),                  // version 0xd3...
            URL_SAFE_NO_PAD.encode([3u8; RAW_LEN]),   // unknown version
            URL_SAFE_NO_PAD.encode([2u8; RAW_LEN - 1]), // short payload
            URL_SAFE_NO_PAD.encode([2, 0xff, 0, 0, 0, 0, 0, 0, 0]), // negative seq
            "é".repeat(ENCODED_LEN / 2),              // non-ASCII
        ];
        // A version 1 cursor with a non-canonical last character: same bytes, different
        // trailing bits (version 2 has no trailing bits: 9 bytes are exactly 12 characters).
        let old = legacy(1_764_000_000_123_456, MessageId::new_v7());
        let last = old.as_bytes()[LEGACY_ENCODED_LEN - 1];
        let idx = ALPHABET.iter().position(|&b| b == last).unwrap();
        cases.push(format!(
            "{}{}",
            &old[..LEGACY_ENCODED_LEN - 1],
            ALPHABET[idx ^ 1] as char
        ));
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
        let good = Cursor::Seq(987_654_321).encode();
        for i in 0..ENCODED_LEN {
            for &b in ALPHABET.iter().chain(b"+/=.~ ") {
                let mut bytes = good.clone().into_bytes();
                if bytes[i] == b {
                    continue;
                }
                bytes[i] = b;
                let s = String::from_utf8(bytes).unwrap();
                if let Ok(c) = Cursor::decode(&s) {
                    assert_ne!(c, Cursor::Seq(987_654_321));
                    assert_eq!(c.encode(), s, "accepted a non-canonical form");
                }
            }
        }
    }
}
