//! The one error type of the crate: what went wrong, in terms a caller can act on.

use std::error::Error as StdError;

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
    /// The message exists but the caller is not its author.
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

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
