//! The ids in a thread route's path, parsed once per request into `Copy` UUIDs.

use messages_core::{MessageId, ThreadId};

use crate::error::ApiError;

/// The ids in the path, parsed.
pub struct PathIds {
    thread: ThreadId,
    message: Option<MessageId>,
}

impl PathIds {
    /// Parses the path's thread and message ids; a malformed one is a 400.
    pub fn parse(thread: Option<&str>, message: Option<&str>) -> Result<Self, ApiError> {
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
        Ok(PathIds { thread, message })
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
