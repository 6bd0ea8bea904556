//! Reactions as the model holds them: the emoji a reaction is made of, and one emoji of a
//! message's summary (its count and first users). The rules that change a summary are in the
//! crate's `reaction` module.

use serde::{Deserialize, Serialize};

use super::UserId;
use crate::error::{Error, Result};

/// A reaction's emoji: one Unicode emoji (skin tones and ZWJ sequences included), kept in
/// its fully-qualified form so `❤` and `❤️` are one reaction, or a shortcode `:name:` of 1 to
/// 32 characters `[a-z0-9_+-]`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Emoji(String);

impl Emoji {
    /// The longest shortcode name, between the colons.
    pub const MAX_SHORTCODE: usize = 32;

    /// Checks one emoji or a shortcode; anything else is `Error::Invalid` on `emoji`.
    pub fn parse(s: &str) -> Result<Self> {
        if let Some(name) = s.strip_prefix(':').and_then(|s| s.strip_suffix(':')) {
            let ok = !name.is_empty()
                && name.len() <= Self::MAX_SHORTCODE
                && name.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'+' | b'-')
                });
            if ok {
                return Ok(Emoji(s.to_owned()));
            }
        } else if let Some(emoji) = emojis::get(s) {
            return Ok(Emoji(emoji.as_str().to_owned()));
        }
        Err(Error::invalid(
            "emoji",
            "must be one emoji or a shortcode :name: of 1 to 32 characters a-z, 0-9, _, + or -",
        ))
    }

    /// The emoji as stored and sent.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// One emoji on a message: how many users chose it and the first of them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reaction {
    /// The emoji.
    pub emoji: Emoji,
    /// How many users hold this reaction.
    pub count: i64,
    /// The first users who reacted with it, oldest first, at most
    /// [`ReactionLimits::users_shown`](crate::ReactionLimits::users_shown): a client can show "you reacted" in small rooms without
    /// a second call, and pages everyone with [`ReactionStore::reactors`](crate::storage::ReactionStore::reactors).
    pub users: Vec<UserId>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emoji_accepts_one_emoji_or_a_shortcode() {
        for ok in [
            "👍",
            "👍🏽",
            "👨‍👩‍👧",
            "🏳️‍🌈",
            "🇨🇱",
            ":+1:",
            ":party_parrot:",
            ":a-b:",
        ] {
            assert!(Emoji::parse(ok).is_ok(), "{ok:?}");
        }
        for bad in [
            "",
            "a",
            "👍👍",
            "👍 ",
            "::",
            ":Big:",
            ":a b:",
            ":x",
            &format!(":{}:", "a".repeat(33)),
            "<script>",
        ] {
            assert!(
                matches!(
                    Emoji::parse(bad),
                    Err(Error::Invalid { field: "emoji", .. })
                ),
                "{bad:?}"
            );
        }
        assert_eq!(Emoji::parse("❤").unwrap(), Emoji::parse("❤️").unwrap());
    }
}
