//! The ids in a thread route's path, parsed once per request into `Copy` UUIDs.

use messages_core::{Emoji, MessageId, ThreadId};

use crate::error::ApiError;

/// The ids in the path, parsed.
pub struct PathIds {
    thread: ThreadId,
    message: Option<MessageId>,
    emoji: Option<Result<Emoji, ApiError>>,
}

impl PathIds {
    /// Parses the path's thread and message ids; a malformed one is a 400. The emoji of a
    /// reaction route is percent-decoded as a path segment (`+` is itself) and checked when
    /// the handler asks for it, after the request's identity.
    pub fn parse(
        thread: Option<&str>,
        message: Option<&str>,
        emoji: Option<&str>,
    ) -> Result<Self, ApiError> {
        let thread = thread.ok_or_else(ApiError::no_route).and_then(|t| {
            ThreadId::parse(t)
                .map_err(|_| ApiError::bad_request("invalid_thread_id", "thread_id must be a UUID"))
        })?;
        let message = message
            .map(|m| {
                MessageId::parse(m).map_err(|_| {
                    ApiError::bad_request("invalid_message_id", "message_id must be a UUID")
                })
            })
            .transpose()?;
        let emoji = emoji.map(|raw| {
            percent_encoding::percent_decode_str(raw)
                .decode_utf8()
                .map_err(|_| {
                    ApiError::bad_request("invalid_emoji", "the emoji is not UTF-8 once decoded")
                })
                .and_then(|text| {
                    Emoji::parse(&text).map_err(|e| ApiError::refused("invalid_emoji", e))
                })
        });
        Ok(PathIds {
            thread,
            message,
            emoji,
        })
    }

    /// The emoji in the path, checked (a 400 `invalid_emoji`; a 404 on a route without one).
    pub fn emoji(&mut self) -> Result<Emoji, ApiError> {
        self.emoji
            .take()
            .unwrap_or_else(|| Err(ApiError::no_route()))
    }

    /// The message in the path (a 404 on a route without one).
    pub fn message(&self) -> Result<MessageId, ApiError> {
        self.message.ok_or_else(ApiError::no_route)
    }

    /// The thread in the path.
    pub fn thread(&self) -> ThreadId {
        self.thread
    }
}
