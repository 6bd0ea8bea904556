//! Settings of the SQLite store: the file, how often it is synced, readers, timeouts, bounds.

use std::path::PathBuf;
use std::time::Duration;

/// How often SQLite syncs the file to disk.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Synchronous {
    /// The WAL is synced at every commit: an acknowledged write survives a power cut.
    #[default]
    Full,
    /// The WAL is synced at checkpoints only: an acknowledged write survives a crash of the
    /// process, but a power cut may lose the last writes before it.
    Normal,
}

impl Synchronous {
    pub(super) fn pragma(self) -> &'static str {
        match self {
            Synchronous::Full => "FULL",
            Synchronous::Normal => "NORMAL",
        }
    }
}

/// Settings of the SQLite store.
#[derive(Clone, Debug)]
pub struct SqliteConfig {
    /// The database file; created, with its schema, when missing.
    pub path: PathBuf,
    /// How often the file is synced. Default [`Synchronous::Full`].
    pub synchronous: Synchronous,
    /// Read-only connections, the most reads that run at once. Default 4.
    pub readers: usize,
    /// Longest wait for an operation (a queued write, a free reader, a read) before
    /// `Unavailable`. Default 5 s.
    pub operation_timeout: Duration,
    /// The largest the file may grow to, in bytes; past it writes fail as `Unavailable` (as
    /// on a full disk) while reads go on. Default `None`: as large as the disk allows.
    pub max_size: Option<u64>,
    /// Most writes committed together in one transaction. Default 256.
    pub max_batch: usize,
}

impl SqliteConfig {
    /// Defaults for everything but the file.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        SqliteConfig {
            path: path.into(),
            synchronous: Synchronous::Full,
            readers: 4,
            operation_timeout: Duration::from_secs(5),
            max_size: None,
            max_batch: 256,
        }
    }
}
