//! Edit history: the versions an edit replaced, as each store keeps them (one row per edit,
//! written in the edit's transaction), and the list of versions clients read.

use serde::Serialize;

use crate::message::{Mentions, Message, Timestamp};

/// A version an edit replaced, as a store keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Replaced {
    /// The text before the edit.
    pub content: String,
    /// The paths before the edit.
    pub paths: Vec<String>,
    /// Whom that version mentioned.
    pub mentions: Option<Mentions>,
    /// When that version was made: the message's creation, or the edit before.
    pub made_at: Timestamp,
    /// The number of the edit that replaced it.
    pub replaced_by: i64,
}

/// One version of a message, as `GET .../edits` answers it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Version {
    /// The text of this version.
    pub content: String,
    /// The paths of this version.
    pub paths: Vec<String>,
    /// Whom this version mentioned (absent when no one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mentions: Option<Mentions>,
    /// When this version was made.
    pub edited_at: Timestamp,
    /// The number of the change that made it: the creation's `seq` for the first version,
    /// then each edit's.
    pub rev: i64,
}

/// A live message's versions, oldest first, the current one last.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct History {
    /// Every version; one for a message never edited.
    pub versions: Vec<Version>,
}

impl History {
    /// The versions of `message` from the versions its edits replaced (in any order).
    pub(crate) fn new(message: &Message, mut replaced: Vec<Replaced>) -> Self {
        replaced.sort_by_key(|r| r.replaced_by);
        let mut versions = Vec::with_capacity(replaced.len() + 1);
        let mut made_by = message.seq;
        for old in replaced {
            versions.push(Version {
                content: old.content,
                paths: old.paths,
                mentions: old.mentions,
                edited_at: old.made_at,
                rev: made_by,
            });
            made_by = old.replaced_by;
        }
        versions.push(Version {
            content: message.content.clone(),
            paths: message.paths.clone(),
            mentions: message.mentions.clone(),
            edited_at: message.updated_at,
            rev: made_by,
        });
        History { versions }
    }

    /// The history as response JSON: `{"versions": [...]}`.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("strings, times and numbers always serialise")
    }
}
