//! The message model: ids, kinds, validated input (`NewMessage`, `MessagePatch`) and `Message`.
//!
//! Every type here checks its input when it is built, so a value that exists is valid and the
//! rest of the crate never validates again.

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize, Serializer};
use uuid::Uuid;

use crate::error::{Error, Result};

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $field:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// Parses the hyphenated or simple UUID form; anything else is `Error::Invalid`.
            pub fn parse(s: &str) -> Result<Self> {
                Uuid::try_parse(s)
                    .map($name)
                    .map_err(|_| Error::invalid($field, "must be a UUID"))
            }

            /// Wraps an existing UUID.
            pub const fn from_uuid(id: Uuid) -> Self {
                $name(id)
            }

            /// The UUID inside.
            pub const fn as_uuid(&self) -> &Uuid {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self> {
                Self::parse(s)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.as_hyphenated().fmt(f)
            }
        }
    };
}

id_type!(
    /// The thread (conversation) a message belongs to.
    ThreadId,
    "thread_id"
);
id_type!(
    /// The author of a message, as the gateway or a verified token names it.
    UserId,
    "user_id"
);
id_type!(
    /// A message's id: a UUIDv7 made by the service, so ids sort by creation time.
    MessageId,
    "message_id"
);

impl MessageId {
    /// A new time-ordered id. The `uuid` crate keeps v7 ids monotonic within a process.
    pub fn new_v7() -> Self {
        MessageId(Uuid::now_v7())
    }
}

/// What a message carries. Serialised in lower case as the field `type`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MessageKind {
    /// Plain text (the default).
    #[default]
    Text,
    /// A voice message; `paths` name the audio files.
    Audio,
    /// An attachment; `paths` name the files.
    File,
}

impl MessageKind {
    /// The wire and database name.
    pub const fn as_str(self) -> &'static str {
        match self {
            MessageKind::Text => "text",
            MessageKind::Audio => "audio",
            MessageKind::File => "file",
        }
    }

    /// Parses the wire name.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "text" => Ok(MessageKind::Text),
            "audio" => Ok(MessageKind::Audio),
            "file" => Ok(MessageKind::File),
            _ => Err(Error::invalid("type", "must be one of text, audio, file")),
        }
    }
}

/// Size limits for message input. Defaults match the documented API.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Maximum length of `content`, in characters (Unicode scalar values).
    pub max_content_chars: usize,
    /// Maximum number of entries in `paths`.
    pub max_paths: usize,
    /// Maximum length of one path, in characters.
    pub max_path_chars: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_content_chars: 4_000,
            max_paths: 16,
            max_path_chars: 1_024,
        }
    }
}

impl Limits {
    fn check_content(&self, content: &str) -> Result<()> {
        if content.chars().count() > self.max_content_chars {
            return Err(Error::invalid(
                "content",
                format!("at most {} characters", self.max_content_chars),
            ));
        }
        if content.contains('\0') {
            return Err(Error::invalid("content", "must not contain NUL characters"));
        }
        Ok(())
    }

    fn check_paths(&self, paths: &[String]) -> Result<()> {
        if paths.len() > self.max_paths {
            return Err(Error::invalid(
                "paths",
                format!("at most {} entries", self.max_paths),
            ));
        }
        for path in paths {
            if path.is_empty() {
                return Err(Error::invalid("paths", "entries must not be empty"));
            }
            if path.chars().count() > self.max_path_chars {
                return Err(Error::invalid(
                    "paths",
                    format!("entries are at most {} characters", self.max_path_chars),
                ));
            }
            if path.contains('\0') {
                return Err(Error::invalid("paths", "must not contain NUL characters"));
            }
        }
        Ok(())
    }
}

/// A validated message to create.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewMessage {
    kind: MessageKind,
    content: String,
    paths: Vec<String>,
}

impl NewMessage {
    /// Checks the input against `limits`. A message needs content or at least one path.
    pub fn new(
        kind: MessageKind,
        content: String,
        paths: Vec<String>,
        limits: &Limits,
    ) -> Result<Self> {
        limits.check_content(&content)?;
        limits.check_paths(&paths)?;
        if content.trim().is_empty() && paths.is_empty() {
            return Err(Error::invalid(
                "content",
                "must not be blank unless paths are given",
            ));
        }
        Ok(NewMessage {
            kind,
            content,
            paths,
        })
    }

    /// The kind of message.
    pub fn kind(&self) -> MessageKind {
        self.kind
    }

    /// The text.
    pub fn content(&self) -> &str {
        &self.content
    }

    /// Attached file paths.
    pub fn paths(&self) -> &[String] {
        &self.paths
    }
}

/// A validated edit: new content, new paths, or both.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessagePatch {
    content: Option<String>,
    paths: Option<Vec<String>>,
}

impl MessagePatch {
    /// Checks the input against `limits`. An edit that changes nothing is refused.
    pub fn new(
        content: Option<String>,
        paths: Option<Vec<String>>,
        limits: &Limits,
    ) -> Result<Self> {
        if content.is_none() && paths.is_none() {
            return Err(Error::invalid("content", "give content, paths or both"));
        }
        if let Some(content) = &content {
            limits.check_content(content)?;
        }
        if let Some(paths) = &paths {
            limits.check_paths(paths)?;
        }
        Ok(MessagePatch { content, paths })
    }

    /// The new content, if it changes.
    pub fn content(&self) -> Option<&str> {
        self.content.as_deref()
    }

    /// The new paths, if they change.
    pub fn paths(&self) -> Option<&[String]> {
        self.paths.as_deref()
    }

    /// Applies the edit to `message`, stamping `updated_at`, and checks the result is not empty.
    pub fn apply(&self, message: &mut Message, now: Timestamp) -> Result<()> {
        let content = self.content.as_deref().unwrap_or(&message.content);
        let paths = self.paths.as_deref().unwrap_or(&message.paths);
        if content.trim().is_empty() && paths.is_empty() {
            return Err(Error::invalid(
                "content",
                "must not be blank unless paths are given",
            ));
        }
        if let Some(content) = &self.content {
            message.content.clone_from(content);
        }
        if let Some(paths) = &self.paths {
            message.paths.clone_from(paths);
        }
        message.updated_at = now;
        Ok(())
    }
}

/// A point in time at microsecond precision, the precision PostgreSQL stores.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(from = "DateTime<Utc>")]
pub struct Timestamp(i64);

impl Timestamp {
    /// The earliest instant the crate accepts from outside: 0001-01-01T00:00:00Z. Every store
    /// and RFC 3339 can hold every instant from here to [`Timestamp::MAX`].
    pub const MIN: Timestamp = Timestamp(-62_135_596_800_000_000);
    /// The latest instant the crate accepts from outside: 9999-12-31T23:59:59.999999Z.
    pub const MAX: Timestamp = Timestamp(253_402_300_799_999_999);

    /// Microseconds since the Unix epoch.
    pub const fn from_micros(micros: i64) -> Self {
        Timestamp(micros)
    }

    /// Microseconds since the Unix epoch, if within [`Timestamp::MIN`]..=[`Timestamp::MAX`]:
    /// for values that come from outside (a cursor), so no backend is asked for an instant it
    /// cannot store.
    pub const fn checked_from_micros(micros: i64) -> Option<Self> {
        if micros >= Self::MIN.0 && micros <= Self::MAX.0 {
            Some(Timestamp(micros))
        } else {
            None
        }
    }

    /// Microseconds since the Unix epoch.
    pub const fn as_micros(self) -> i64 {
        self.0
    }

    /// The same instant as a chrono value. chrono's range (about ±262,000 years) is narrower
    /// than an `i64` of microseconds (about ±292,000 years); instants beyond it, which only a
    /// caller of [`Timestamp::from_micros`] can make, saturate at its ends.
    pub fn to_datetime(self) -> DateTime<Utc> {
        DateTime::from_timestamp_micros(self.0).unwrap_or(if self.0 < 0 {
            DateTime::<Utc>::MIN_UTC
        } else {
            DateTime::<Utc>::MAX_UTC
        })
    }

    /// RFC 3339 in UTC with six fractional digits, e.g. `2026-01-02T03:04:05.678901Z`.
    pub fn to_rfc3339(self) -> String {
        self.to_datetime()
            .to_rfc3339_opts(SecondsFormat::Micros, true)
    }
}

impl From<DateTime<Utc>> for Timestamp {
    fn from(value: DateTime<Utc>) -> Self {
        Timestamp(value.timestamp_micros())
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_rfc3339())
    }
}

/// The service's clock: wall time in microseconds that never goes backwards within a process,
/// so a message created later never sorts before an earlier one from the same process.
#[derive(Debug, Default)]
pub struct Clock {
    last: AtomicI64,
}

impl Clock {
    /// A new clock.
    pub fn new() -> Self {
        Clock::default()
    }

    /// The current time, never earlier than the previous reading.
    pub fn now(&self) -> Timestamp {
        let wall = Utc::now().timestamp_micros();
        let prev = self.last.fetch_max(wall, Ordering::Relaxed);
        Timestamp(prev.max(wall))
    }
}

/// A stored message as clients see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// The message's id.
    pub id: MessageId,
    /// The thread it belongs to.
    pub thread_id: ThreadId,
    /// Its author.
    pub user_id: UserId,
    /// Its kind, serialised as `type`.
    #[serde(rename = "type")]
    pub kind: MessageKind,
    /// The text.
    pub content: String,
    /// Attached file paths.
    pub paths: Vec<String>,
    /// When it was created; with `id`, its position in the thread.
    pub created_at: Timestamp,
    /// When it was last edited (equal to `created_at` until then).
    pub updated_at: Timestamp,
}

impl Message {
    /// Builds a message from validated input, an id and a time.
    pub fn from_new(
        id: MessageId,
        thread_id: ThreadId,
        user_id: UserId,
        new: NewMessage,
        now: Timestamp,
    ) -> Self {
        Message {
            id,
            thread_id,
            user_id,
            kind: new.kind,
            content: new.content,
            paths: new.paths,
            created_at: now,
            updated_at: now,
        }
    }

    /// A message with neither text nor paths, which no write may leave behind.
    pub fn is_blank(&self) -> bool {
        self.content.trim().is_empty() && self.paths.is_empty()
    }

    /// The message as response JSON.
    pub fn to_json(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(320);
        self.write_json(&mut out);
        out
    }

    /// Appends the message's response JSON to `out`.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        serde_json::to_writer(out, self)
            .expect("a message always serialises: strings, numbers and lists into memory");
    }
}

/// A client-chosen key that makes a create safe to retry: 1 to 128 visible ASCII characters.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// Checks the key's length and characters.
    pub fn parse(s: &str) -> Result<Self> {
        if s.is_empty() || s.len() > 128 || !s.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(Error::invalid(
                "Idempotency-Key",
                "must be 1 to 128 visible ASCII characters",
            ));
        }
        Ok(IdempotencyKey(s.to_owned()))
    }

    /// The key.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A digest of a create request's body, to tell a retry from a different request reusing a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RequestFingerprint([u8; 32]);

impl RequestFingerprint {
    /// SHA-256 over the kind, content and paths, each length-prefixed so no two inputs collide
    /// by concatenation.
    pub fn of(new: &NewMessage) -> Self {
        use sha2::{Digest, Sha256};
        let mut hasher = Sha256::new();
        hasher.update(new.kind.as_str().as_bytes());
        hasher.update((new.content.len() as u64).to_be_bytes());
        hasher.update(new.content.as_bytes());
        hasher.update((new.paths.len() as u64).to_be_bytes());
        for path in &new.paths {
            hasher.update((path.len() as u64).to_be_bytes());
            hasher.update(path.as_bytes());
        }
        RequestFingerprint(hasher.finalize().into())
    }

    /// Rebuilds a stored fingerprint.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        RequestFingerprint(bytes)
    }

    /// The digest.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_accept_uuids_only() {
        assert!(ThreadId::parse("67e55044-10b1-426f-9247-bb680e5fe0c8").is_ok());
        for bad in [
            "",
            "x",
            "67e55044-10b1-426f-9247",
            "67e55044-10b1-426f-9247-bb680e5fe0c8x",
        ] {
            assert!(matches!(
                ThreadId::parse(bad),
                Err(Error::Invalid {
                    field: "thread_id",
                    ..
                })
            ));
        }
    }

    #[test]
    fn content_and_paths_are_bounded() {
        let limits = Limits::default();
        let ok = NewMessage::new(MessageKind::Text, "a".repeat(4_000), vec![], &limits);
        assert!(ok.is_ok());
        let long = NewMessage::new(MessageKind::Text, "a".repeat(4_001), vec![], &limits);
        assert!(matches!(
            long,
            Err(Error::Invalid {
                field: "content",
                ..
            })
        ));
        // Characters, not bytes: 4,000 two-byte characters fit.
        assert!(NewMessage::new(MessageKind::Text, "é".repeat(4_000), vec![], &limits).is_ok());
        let many = NewMessage::new(MessageKind::File, "x".into(), vec!["p".into(); 17], &limits);
        assert!(matches!(many, Err(Error::Invalid { field: "paths", .. })));
        let long_path = NewMessage::new(
            MessageKind::File,
            "x".into(),
            vec!["p".repeat(1_025)],
            &limits,
        );
        assert!(matches!(
            long_path,
            Err(Error::Invalid { field: "paths", .. })
        ));
        let blank = NewMessage::new(MessageKind::Text, "  ".into(), vec![], &limits);
        assert!(matches!(
            blank,
            Err(Error::Invalid {
                field: "content",
                ..
            })
        ));
        assert!(
            NewMessage::new(
                MessageKind::File,
                String::new(),
                vec!["a.png".into()],
                &limits
            )
            .is_ok()
        );
    }

    #[test]
    fn empty_patch_is_refused() {
        assert!(MessagePatch::new(None, None, &Limits::default()).is_err());
    }

    #[test]
    fn idempotency_keys_are_visible_ascii() {
        assert!(IdempotencyKey::parse("abc-123_X").is_ok());
        assert!(IdempotencyKey::parse(&"k".repeat(128)).is_ok());
        for bad in ["", "has space", "tab\t", "é", &"k".repeat(129)] {
            assert!(IdempotencyKey::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn fingerprint_separates_fields() {
        let l = Limits::default();
        let a = NewMessage::new(MessageKind::Text, "ab".into(), vec!["c".into()], &l).unwrap();
        let b = NewMessage::new(MessageKind::Text, "a".into(), vec!["bc".into()], &l).unwrap();
        assert_ne!(RequestFingerprint::of(&a), RequestFingerprint::of(&b));
        assert_eq!(
            RequestFingerprint::of(&a),
            RequestFingerprint::of(&a.clone())
        );
    }

    #[test]
    fn the_accepted_range_is_years_1_to_9999() {
        assert_eq!(Timestamp::MIN.to_rfc3339(), "0001-01-01T00:00:00.000000Z");
        assert_eq!(Timestamp::MAX.to_rfc3339(), "9999-12-31T23:59:59.999999Z");
        assert!(Timestamp::checked_from_micros(Timestamp::MIN.as_micros()).is_some());
        assert!(Timestamp::checked_from_micros(Timestamp::MAX.as_micros()).is_some());
        assert!(Timestamp::checked_from_micros(Timestamp::MIN.as_micros() - 1).is_none());
        assert!(Timestamp::checked_from_micros(Timestamp::MAX.as_micros() + 1).is_none());
        assert!(Timestamp::checked_from_micros(i64::MIN).is_none());
        // Beyond chrono's range: saturates instead of jumping to the other end.
        assert_eq!(
            Timestamp::from_micros(i64::MAX).to_datetime(),
            DateTime::<Utc>::MAX_UTC
        );
        assert_eq!(
            Timestamp::from_micros(i64::MIN).to_datetime(),
            DateTime::<Utc>::MIN_UTC
        );
    }

    #[test]
    fn clock_never_goes_back_and_json_uses_micros() {
        let clock = Clock::new();
        let a = clock.now();
        let b = clock.now();
        assert!(b >= a);
        assert_eq!(
            Timestamp::from_micros(1_700_000_000_123_456).to_rfc3339(),
            "2023-11-14T22:13:20.123456Z"
        );
    }

    #[test]
    fn message_json_has_the_documented_fields() {
        let l = Limits::default();
        let new =
            NewMessage::new(MessageKind::Audio, "hi".into(), vec!["a.ogg".into()], &l).unwrap();
        let thread = ThreadId::from_uuid(Uuid::nil());
        let user = UserId::from_uuid(Uuid::max());
        let m = Message::from_new(
            MessageId::new_v7(),
            thread,
            user,
            new,
            Timestamp::from_micros(0),
        );
        let v: serde_json::Value = serde_json::from_slice(&m.to_json()).unwrap();
        assert_eq!(v["type"], "audio");
        assert_eq!(v["thread_id"], "00000000-0000-0000-0000-000000000000");
        assert_eq!(v["created_at"], "1970-01-01T00:00:00.000000Z");
        assert_eq!(v["paths"], serde_json::json!(["a.ogg"]));
        let back: Message = serde_json::from_slice(&m.to_json()).unwrap();
        assert_eq!(back, m);
    }
}
