//! Validated input: the message kinds, size limits, a new message, an edit, and the
//! idempotency key and fingerprint that make a create safe to retry.

use serde::{Deserialize, Serialize};

use super::{Mentions, Message, MessageId, Timestamp};
use crate::error::{Error, Result};

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
    /// Most users one message mentions.
    pub max_mentions: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_content_chars: 4_000,
            max_paths: 16,
            max_path_chars: 1_024,
            max_mentions: 50,
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
    reply_to: Option<MessageId>,
    mentions: Option<Mentions>,
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
            reply_to: None,
            mentions: None,
        })
    }

    /// The same message as a reply to `target`, a message of the same thread; the store
    /// refuses a target it does not hold live (`Error::InvalidReplyTo`).
    pub fn replying_to(mut self, target: Option<MessageId>) -> Self {
        self.reply_to = target;
        self
    }

    /// The message this one replies to.
    pub fn reply_to(&self) -> Option<MessageId> {
        self.reply_to
    }

    /// The same message addressing `mentions` (the author's own id is left out when it is
    /// created).
    pub fn mentioning(mut self, mentions: Option<Mentions>) -> Self {
        self.mentions = mentions;
        self
    }

    /// Whom the message addresses.
    pub fn mentions(&self) -> Option<&Mentions> {
        self.mentions.as_ref()
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

    /// The kind, content, paths, target and mentions, taken apart.
    pub(crate) fn into_parts(
        self,
    ) -> (
        MessageKind,
        String,
        Vec<String>,
        Option<MessageId>,
        Option<Mentions>,
    ) {
        (
            self.kind,
            self.content,
            self.paths,
            self.reply_to,
            self.mentions,
        )
    }
}

/// A validated edit: new content, new paths, new mentions, or any of them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessagePatch {
    content: Option<String>,
    paths: Option<Vec<String>>,
    mentions: Option<Mentions>,
}

impl MessagePatch {
    /// Checks the input against `limits`. An edit that changes nothing is refused.
    pub fn new(
        content: Option<String>,
        paths: Option<Vec<String>>,
        limits: &Limits,
    ) -> Result<Self> {
        Self::with_mentions(content, paths, None, limits)
    }

    /// As [`MessagePatch::new`], and `mentions`, when given, replace the message's (empty
    /// ones leave it mentioning no one).
    pub fn with_mentions(
        content: Option<String>,
        paths: Option<Vec<String>>,
        mentions: Option<Mentions>,
        limits: &Limits,
    ) -> Result<Self> {
        if content.is_none() && paths.is_none() && mentions.is_none() {
            return Err(Error::invalid(
                "content",
                "give content, paths, mentions or any of them",
            ));
        }
        if let Some(content) = &content {
            limits.check_content(content)?;
        }
        if let Some(paths) = &paths {
            limits.check_paths(paths)?;
        }
        Ok(MessagePatch {
            content,
            paths,
            mentions,
        })
    }

    /// The new content, if it changes.
    pub fn content(&self) -> Option<&str> {
        self.content.as_deref()
    }

    /// The new paths, if they change.
    pub fn paths(&self) -> Option<&[String]> {
        self.paths.as_deref()
    }

    /// The new mentions, if they change.
    pub fn mentions(&self) -> Option<&Mentions> {
        self.mentions.as_ref()
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
        if let Some(mentions) = &self.mentions {
            message.mentions = mentions.clone().of_author(message.user_id);
        }
        message.updated_at = now;
        Ok(())
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
    /// SHA-256 over the kind, content, paths and the message replied to, each length-prefixed
    /// so no two inputs collide by concatenation. A create that replies to nothing hashes as
    /// before replies existed, so keys stored then still match their retries.
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
        if let Some(target) = new.reply_to {
            hasher.update(b"reply_to");
            hasher.update(target.as_uuid().as_bytes());
        }
        if let Some(mentions) = &new.mentions {
            hasher.update(b"mentions");
            hasher.update([u8::from(mentions.room)]);
            hasher.update((mentions.users.len() as u64).to_be_bytes());
            for user in &mentions.users {
                hasher.update(user.as_uuid().as_bytes());
            }
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
