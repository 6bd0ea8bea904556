//! Search of message history: the query a client types, and what it matches.
//!
//! Matching is one rule on every backend. A message matches when each term of the query is
//! found in its text, both folded the same way ([`fold`]: lower case, every run of white space
//! one space), anywhere in it: inside a word too, so a word of a script written without spaces
//! (Chinese, Japanese, Thai) is found where it stands, not only at the start of the message,
//! and the last word a user is still typing matches as the start of a longer one. A term is a
//! word (a run of characters without white space) or a quoted phrase (`"release notes"`),
//! found as written, its words in order with one space between them. Nothing is stemmed: a
//! word matches the words that contain it (`deploy` finds "deployed" and "redeploy"), in any
//! language alike.

use crate::message::{Message, ThreadId, UserId};
use crate::newest::{NewestCursor, NewestPage};
use crate::page::PageSize;
use crate::read::ThreadList;

/// The longest query, in characters.
pub const MAX_QUERY_CHARS: usize = 256;

/// The most terms (words and phrases) a query holds.
pub const MAX_TERMS: usize = 16;

/// Why a query cannot be run; the message says so to the person who typed it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// Nothing to look for: empty, white space, or only empty quotes.
    #[error("give at least one word to search for")]
    Empty,
    /// Longer than [`MAX_QUERY_CHARS`].
    #[error("a query is at most {MAX_QUERY_CHARS} characters")]
    TooLong,
    /// A `"` opens a phrase that no `"` closes.
    #[error("a quoted phrase is not closed: add the closing \"")]
    UnclosedQuote,
    /// More than [`MAX_TERMS`] words and phrases.
    #[error("a query holds at most {MAX_TERMS} words and phrases")]
    TooManyTerms,
}

/// `text` as search compares it: lower case (Unicode), every run of white space one space, none
/// at either end.
pub fn fold(text: &str) -> String {
    let mut folded = String::with_capacity(text.len());
    for word in text.split_whitespace() {
        if !folded.is_empty() {
            folded.push(' ');
        }
        folded.extend(word.chars().flat_map(char::to_lowercase));
    }
    folded
}

/// A parsed query: the terms a message's text must all hold, folded, each once, in the order
/// typed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SearchText {
    terms: Vec<String>,
}

impl SearchText {
    /// Reads a query as a person types it: words separated by white space, and phrases
    /// between double quotes.
    pub fn parse(query: &str) -> Result<Self, QueryError> {
        if query.chars().count() > MAX_QUERY_CHARS {
            return Err(QueryError::TooLong);
        }
        let mut terms: Vec<String> = Vec::new();
        let mut push = |term: String| {
            if !term.is_empty() && !terms.contains(&term) {
                terms.push(term);
            }
        };
        let mut rest = query;
        while let Some(start) = rest.find(|c: char| !c.is_whitespace()) {
            rest = &rest[start..];
            if let Some(quoted) = rest.strip_prefix('"') {
                let end = quoted.find('"').ok_or(QueryError::UnclosedQuote)?;
                push(fold(&quoted[..end]));
                rest = &quoted[end + 1..];
            } else {
                // A word runs to white space or to a quote, which opens a phrase.
                let end = rest
                    .find(|c: char| c.is_whitespace() || c == '"')
                    .unwrap_or(rest.len());
                push(fold(&rest[..end]));
                rest = &rest[end..];
            }
        }
        match terms.len() {
            0 => Err(QueryError::Empty),
            n if n > MAX_TERMS => Err(QueryError::TooManyTerms),
            _ => Ok(SearchText { terms }),
        }
    }

    /// The terms, folded (see [`fold`]), each once.
    pub fn terms(&self) -> &[String] {
        &self.terms
    }

    /// Whether `text` holds every term.
    pub fn matches(&self, text: &str) -> bool {
        self.matches_folded(&fold(text))
    }

    /// Whether `folded`, a text already [`fold`]ed, holds every term.
    pub fn matches_folded(&self, folded: &str) -> bool {
        self.terms.iter().all(|term| folded.contains(term.as_str()))
    }
}

/// The most authors one search keeps (`from`).
pub const MAX_FROM: usize = 20;

/// What a search asks: the text, the threads it looks in (those the client may see), the
/// authors it keeps (none: everyone's), where the page starts and how many it holds.
#[derive(Clone, Debug)]
pub struct SearchQuery {
    /// The terms every message found holds.
    pub text: SearchText,
    /// Where it looks.
    pub threads: ThreadList,
    /// Only messages by these authors; empty for everyone's. At most [`MAX_FROM`].
    pub from: Vec<UserId>,
    /// The page after this one (newest first: older than it).
    pub after: Option<NewestCursor>,
    /// How many a page holds.
    pub size: PageSize,
}

impl SearchQuery {
    /// Whether the query finds `message`, a live message of one of its threads: by one of its
    /// authors, its text holding every term. A store finds exactly these.
    pub fn finds(&self, message: &Message) -> bool {
        (self.from.is_empty() || self.from.contains(&message.user_id))
            && self.text.matches(&message.content)
    }
}

/// What a search found: a page of messages, newest first, each in its current state, and the
/// position of each thread the page reflects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SearchPage {
    /// The messages found and where the next page starts.
    pub page: NewestPage,
    /// Each thread asked, in the order asked, with the number of its latest change when it was
    /// read: every change up to it is in the answer (an edit's old words no longer match, a
    /// deleted message is gone), nothing after it.
    pub threads: Vec<(ThreadId, i64)>,
}

impl SearchPage {
    /// The answer JSON: `{"items":[message...],"next_cursor","has_more",
    /// "threads":[{"thread_id","rev"}...]}`.
    pub fn to_json(&self) -> Vec<u8> {
        let mut out = self.page.to_json();
        // The page's object stays open for the threads' positions.
        out.pop();
        out.extend_from_slice(b",\"threads\":[");
        for (i, (thread, rev)) in self.threads.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(b"{\"thread_id\":\"");
            out.extend_from_slice(thread.to_string().as_bytes());
            out.extend_from_slice(b"\",\"rev\":");
            out.extend_from_slice(rev.to_string().as_bytes());
            out.push(b'}');
        }
        out.extend_from_slice(b"]}");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn terms(query: &str) -> Vec<String> {
        SearchText::parse(query)
            .map(|q| q.terms().to_vec())
            .unwrap_or_else(|e| panic!("{query:?}: {e}"))
    }

    #[test]
    fn words_and_phrases_are_read_as_typed() {
        assert_eq!(terms("deploy  Failed"), ["deploy", "failed"]);
        assert_eq!(
            terms(r#"the "Release   notes" are"#),
            ["the", "release notes", "are"]
        );
        assert_eq!(
            terms(r#"build"green light"ok"#),
            ["build", "green light", "ok"]
        );
        assert_eq!(terms("a a A"), ["a"], "each once");
        assert_eq!(terms(r#"x "" y"#), ["x", "y"], "an empty phrase is nothing");
    }

    #[test]
    fn what_cannot_be_run_says_why() {
        let seventeen: Vec<String> = (0..17).map(|i| format!("w{i}")).collect();
        for (query, error) in [
            ("", QueryError::Empty),
            (" \t\n", QueryError::Empty),
            (r#""  ""#, QueryError::Empty),
            (r#"release "notes"#, QueryError::UnclosedQuote),
            (&"x".repeat(257), QueryError::TooLong),
            (&seventeen.join(" "), QueryError::TooManyTerms),
        ] {
            assert_eq!(SearchText::parse(query), Err(error.clone()), "{query:?}");
        }
        assert!(
            SearchText::parse(&"é".repeat(256)).is_ok(),
            "256 characters, not bytes"
        );
        assert!(SearchText::parse(&seventeen[..16].join(" ")).is_ok());
    }

    #[test]
    fn a_term_is_found_anywhere_in_the_text_case_folded() {
        let q = |query: &str| SearchText::parse(query).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            q("deploy").matches("We redeployed at noon"),
            "inside a word"
        );
        assert!(q("DEPLO").matches("deploy it"), "the word being typed");
        assert!(q("ÉTÉ").matches("un été chaud"), "Unicode case");
        assert!(
            q("会议").matches("明天的会议取消了"),
            "inside unsegmented text"
        );
        assert!(q("🎉").matches("shipped 🎉 finally"));
        assert!(q("example.com/a?b=1").matches("see https://example.com/a?b=1 now"));
        assert!(q(r#""release notes""#).matches("the Release\n\tnotes are out"));
        assert!(
            !q(r#""release notes""#).matches("notes on the release"),
            "in order"
        );
        assert!(!q("deploy failed").matches("deploy passed"), "every term");
        assert!(!q("100%").matches("100 percent"), "no wildcard in a term");
    }

    #[test]
    fn fold_is_lower_case_with_single_spaces() {
        assert_eq!(fold("  Hello\n\n World\t "), "hello world");
        assert_eq!(fold("İstanbul ẞ"), "i̇stanbul ß");
    }
}
