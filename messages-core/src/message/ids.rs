//! Ids: thread, user and message ids, checked when parsed.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
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
