//! The storage contract on every store, one test per case: in memory and on SQLite always,
//! PostgreSQL when `DATABASE_URL` is set (required under `CI=true`).

use messages_core::storage::memory::MemoryStore;
use messages_core::testing::postgres::TestDatabase;
use messages_core::testing::sqlite::TempDir;
use messages_core::testing::storage::Subject;

messages_core::storage_contract!(memory => async { Some(Subject::new(MemoryStore::new())) });

messages_core::storage_contract!(postgres => async {
    let db = TestDatabase::create().await?;
    let store = db.store().await;
    Some(Subject::new(store).keeping(db))
});

messages_core::storage_contract!(sqlite => async {
    let dir = TempDir::new();
    let store = dir.store();
    Some(Subject::new(store).keeping(dir))
});
