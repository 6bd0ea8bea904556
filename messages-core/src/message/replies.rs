//! A root's summary of its replies, as the model holds it. The rules that change it are in the
//! crate's `replies` module.

use serde::{Deserialize, Serialize};

use super::{MessageId, Timestamp, UserId};

/// What a root shows of its replies.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplySummary {
    /// How many live replies the root has.
    pub count: i64,
    /// When the newest live reply was written.
    pub last_reply_at: Timestamp,
    /// The newest live reply.
    pub last_reply_id: MessageId,
    /// The users who replied most recently, the most recent first, each once, at most
    /// `Participants` (the crate's `replies`) of them.
    pub participants: Vec<UserId>,
}
