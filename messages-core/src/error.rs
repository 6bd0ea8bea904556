//! The one error type of the crate: what went wrong, in terms a caller can act on.

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;

/// A boxed error from a backend (PostgreSQL, Redis, RabbitMQ, a pool).
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// Everything an operation of this crate can fail with.
///
/// Each variant is a decision for the caller: the server maps them to status codes in one
/// `match`, an embedding service can retry `Unavailable` and show the rest to its user.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The message does not exist, was deleted, or belongs to another thread.
    #[error("message not found")]
    NotFound,
    /// The message exists but the caller may not change it: not its author (nor, for a
    /// removal, a moderator).
    #[error("only the author may change this message")]
    Forbidden,
    /// A field failed validation; `field` names it as the API spells it.
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// The field as clients name it (`content`, `paths`, `limit`, ...).
        field: &'static str,
        /// Why the value was refused.
        reason: String,
    },
    /// A reply to a message the thread does not hold live: unknown, another thread's, or
    /// deleted.
    #[error("reply_to must name a live message of this thread")]
    InvalidReplyTo,
    /// A reaction with a new emoji on a message that already has the most distinct emoji.
    #[error("a message takes at most {max} distinct emoji")]
    TooManyReactions {
        /// The bound, [`ReactionLimits::max_emoji`](crate::ReactionLimits::max_emoji).
        max: usize,
    },
    /// One id of a request naming several messages (a bulk delete) that cannot be acted on:
    /// not a live message of the thread, or named twice. Nothing was done.
    #[error("ids: {id} {why}")]
    RefusedId {
        /// The id refused (a message id; a plain UUID here, as the error type is below the
        /// model).
        id: uuid::Uuid,
        /// Why, as a sentence's end ("is named twice").
        why: &'static str,
    },
    /// A pagination cursor that this service did not issue, or that was altered.
    #[error("invalid cursor")]
    InvalidCursor,
    /// An idempotency key that was already used for a request with another body.
    #[error("idempotency key already used with a different request")]
    IdempotencyConflict,
    /// A backend could not answer (unreachable, timed out, overloaded, shutting down); the
    /// request may succeed later.
    #[error("backend unavailable: {what}")]
    Unavailable {
        /// Which backend or operation failed, for logs.
        what: &'static str,
        /// The backend's own error.
        #[source]
        source: BoxError,
    },
    /// A backend refused the operation in a way no retry will fix: a bug of this crate or a
    /// schema that is not the one it expects. Never caused by a client's input, which is
    /// checked before it reaches a backend.
    #[error("internal error: {what}")]
    Internal {
        /// Which backend or operation failed, for logs.
        what: &'static str,
        /// The backend's own error.
        #[source]
        source: BoxError,
    },
}

impl Error {
    /// Shorthand for [`Error::Invalid`].
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Error::Invalid {
            field,
            reason: reason.into(),
        }
    }

    /// Shorthand for [`Error::Unavailable`].
    pub fn unavailable(what: &'static str, source: impl Into<BoxError>) -> Self {
        Error::Unavailable {
            what,
            source: source.into(),
        }
    }

    /// Shorthand for [`Error::Internal`].
    pub fn internal(what: &'static str, source: impl Into<BoxError>) -> Self {
        Error::Internal {
            what,
            source: source.into(),
        }
    }
}

impl Error {
    /// The same error for one more of several callers that waited on one operation (a shared
    /// load, a batch of writes): the same variant, so each caller answers as the first one
    /// did, with the backend's cause shared rather than flattened into text.
    pub fn shared(error: &Arc<Error>) -> Error {
        match &**error {
            Error::NotFound => Error::NotFound,
            Error::Forbidden => Error::Forbidden,
            Error::Invalid { field, reason } => Error::invalid(field, reason.clone()),
            Error::InvalidCursor => Error::InvalidCursor,
            Error::InvalidReplyTo => Error::InvalidReplyTo,
            Error::TooManyReactions { max } => Error::TooManyReactions { max: *max },
            Error::RefusedId { id, why } => Error::RefusedId { id: *id, why },
            Error::IdempotencyConflict => Error::IdempotencyConflict,
            Error::Unavailable { what, .. } => {
                Error::unavailable(what, SharedCause(Arc::clone(error)))
            }
            Error::Internal { what, .. } => Error::internal(what, SharedCause(Arc::clone(error))),
        }
    }
}

/// The cause of an error handed to several callers: it reads as the original's cause and
/// continues with that cause's own chain.
#[derive(Debug)]
struct SharedCause(Arc<Error>);

impl fmt::Display for SharedCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.source() {
            Some(cause) => fmt::Display::fmt(cause, f),
            None => fmt::Display::fmt(&*self.0, f),
        }
    }
}

impl StdError for SharedCause {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.0.source().and_then(StdError::source)
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(error: &dyn StdError) -> Vec<String> {
        let mut out = vec![error.to_string()];
        let mut next = error.source();
        while let Some(cause) = next {
            out.push(cause.to_string());
            next = cause.source();
        }
        out
    }

    #[test]
    fn a_shared_error_keeps_its_kind_and_its_cause() {
        let io = std::io::Error::new(std::io::ErrorKind::TimedOut, "timed out");
        let first = Arc::new(Error::unavailable("store", io));
        let copy = Error::shared(&first);
        assert!(matches!(copy, Error::Unavailable { what: "store", .. }));
        assert_eq!(chain(&copy), chain(&*first));
        assert!(matches!(
            Error::shared(&Arc::new(Error::NotFound)),
            Error::NotFound
        ));
        assert!(matches!(
            Error::shared(&Arc::new(Error::invalid("content", "too long"))),
            Error::Invalid {
                field: "content",
                ..
            }
        ));
        let internal = Error::shared(&Arc::new(Error::internal("store", "bad schema")));
        assert!(matches!(internal, Error::Internal { what: "store", .. }));
        assert_eq!(chain(&internal), ["internal error: store", "bad schema"]);
    }
}
