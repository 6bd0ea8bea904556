//! What a SQLite error means for a caller: unavailable (a retry may succeed) or a bug.

use rusqlite::ErrorCode;

use crate::error::Error;

/// What a SQLite error means for the caller, by its primary result code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Failure {
    /// The file cannot be written or read now: disk full, read-only, locked by another
    /// process, an I/O error, no memory. A retry may succeed (503).
    Unavailable,
    /// Anything else: a statement that does not fit the schema, a constraint this crate
    /// should have kept. A bug (500).
    Bug,
}

pub(super) fn classify(code: Option<ErrorCode>) -> Failure {
    match code {
        Some(
            ErrorCode::DiskFull
            | ErrorCode::ReadOnly
            | ErrorCode::DatabaseBusy
            | ErrorCode::DatabaseLocked
            | ErrorCode::SystemIoFailure
            | ErrorCode::CannotOpen
            | ErrorCode::OutOfMemory
            | ErrorCode::FileLockingProtocolFailed
            | ErrorCode::OperationInterrupted,
        ) => Failure::Unavailable,
        _ => Failure::Bug,
    }
}

pub(super) fn code_of(e: &rusqlite::Error) -> Option<ErrorCode> {
    match e {
        rusqlite::Error::SqliteFailure(f, _) => Some(f.code),
        _ => None,
    }
}

/// Maps an error of the operation `what` by [`classify`].
pub(super) fn db(what: &'static str) -> impl Fn(rusqlite::Error) -> Error {
    move |e| match classify(code_of(&e)) {
        Failure::Unavailable => Error::unavailable(what, e),
        Failure::Bug => Error::internal(what, e),
    }
}
