//! The storage contract on every store: in memory always, PostgreSQL when `DATABASE_URL` is
//! set (required under `CI=true`).

use std::sync::Arc;

use messages_core::storage::memory::MemoryStore;
use messages_core::testing::postgres::TestDatabase;
use messages_core::testing::storage::storage_contract;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_store_passes_the_contract() {
    storage_contract(Arc::new(MemoryStore::new())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_store_passes_the_contract() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    storage_contract(Arc::new(db.store().await)).await;
}
