//! What the transport's handle and its two tasks share: the channels' names, the hints to send,
//! the threads followed here.

use std::collections::HashMap;
use std::sync::Mutex;

use redis::Value;
use tokio::sync::Notify;

use crate::live::transport::Outgoing;
use crate::message::ThreadId;

/// How many subscription or publish calls are in flight at once.
pub(super) const CONCURRENCY: usize = 32;

/// `SPUBLISH` from a script that names the channel as its key, on a cluster. A script is a
/// write, so a node that is not the slot's master answers it with a redirection, where a bare
/// `SPUBLISH` is accepted by a replica of the slot's shard (a demoted master after a failover,
/// to a client that has not learnt the slots again) and reaches nobody.
pub(super) const PUBLISH: &str = "return redis.call('SPUBLISH', KEYS[1], ARGV[1])";

/// State shared by the transport's handle and its two tasks.
#[derive(Default)]
pub(super) struct Shared {
    /// Hints to send.
    pub(super) pending: Outgoing,
    /// The threads followed here, with how many feeds follow each.
    pub(super) followed: Mutex<HashMap<ThreadId, usize>>,
    pub(super) changed: Notify,
}

/// Channel names: `<prefix>:live:{<thread>}`.
#[derive(Clone)]
pub(super) struct Channels {
    pub(super) prefix: String,
}

impl Channels {
    pub(super) fn of(&self, thread: ThreadId) -> String {
        format!("{}:live:{{{thread}}}", self.prefix)
    }

    /// The thread a channel of ours names.
    pub(super) fn thread(&self, channel: &[u8]) -> Option<ThreadId> {
        let channel = std::str::from_utf8(channel).ok()?;
        let tagged = channel
            .strip_prefix(self.prefix.as_str())?
            .strip_prefix(":live:{")?
            .strip_suffix('}')?;
        ThreadId::parse(tagged).ok()
    }
}

pub(super) fn bulk(value: Option<&Value>) -> Option<&[u8]> {
    match value? {
        Value::BulkString(bytes) => Some(bytes),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_channel_names_its_thread_under_the_prefix() {
        let channels = Channels {
            prefix: "app".into(),
        };
        let thread = ThreadId::from_uuid(uuid::Uuid::now_v7());
        let channel = channels.of(thread);
        assert_eq!(channel, format!("app:live:{{{thread}}}"));
        assert_eq!(channels.thread(channel.as_bytes()), Some(thread));
        let other = Channels {
            prefix: "other".into(),
        };
        assert_eq!(other.thread(channel.as_bytes()), None);
        assert_eq!(channels.thread(b"app:live:{not-a-thread}"), None);
        assert_eq!(channels.thread(b"app:live:"), None);
    }
}
