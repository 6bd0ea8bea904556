//! Throwaway SQLite databases: a directory of the test's own, removed when it drops.

use std::path::{Path, PathBuf};

use crate::storage::Schema;
use crate::storage::sqlite::{SqliteConfig, SqliteStore};

/// A directory under the system's temporary directory, removed with everything in it on drop.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// A new, empty directory.
    ///
    /// # Panics
    /// When it cannot be created.
    pub fn new() -> Self {
        let path = std::env::temp_dir().join(format!("messages-test-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&path).unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
        TempDir { path }
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The settings of a database file `messages.db` in it.
    pub fn config(&self) -> SqliteConfig {
        SqliteConfig::new(self.path.join("messages.db"))
    }

    /// Opens a migrated store on `messages.db` in it.
    ///
    /// # Panics
    /// When the store cannot be opened or migrated.
    pub async fn store(&self) -> SqliteStore {
        let store = SqliteStore::open(&self.config())
            .await
            .expect("open SQLite store");
        store.migrate().await.expect("migrations");
        store
    }
}

impl Default for TempDir {
    fn default() -> Self {
        TempDir::new()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}
