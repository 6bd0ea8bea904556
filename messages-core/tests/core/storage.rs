//! The storage contract on every store, one test per case: in memory and on SQLite always,
//! PostgreSQL when `DATABASE_URL` is set (required under `CI=true`).

use messages_core::storage::Schema;
use messages_core::storage::memory::MemoryStore;
use messages_core::storage::postgres::{PostgresConfig, PostgresStore};
use messages_core::storage::sqlite::SqliteStore;
use messages_core::testing::postgres::TestDatabase;
use messages_core::testing::sqlite::TempDir;
use messages_core::testing::storage::Subject;

messages_core::storage_contract!(
    memory => async { Some(Subject::new(MemoryStore::new())) },
    sqlite => async {
        let dir = TempDir::new();
        let store = dir.store().await;
        Some(Subject::new(store).keeping(dir))
    },
    postgres => async {
        let db = TestDatabase::create().await?;
        let store = db.store().await;
        Some(Subject::new(store).keeping(db))
    },
);

/// Every store has one schema shape: a fresh database is at version 0, `migrate` applies
/// every migration the store has, and a second `migrate` applies none.
async fn the_schema_is_applied_once<S: Schema + Sync>(store: S) {
    assert_eq!(store.schema_version().await.expect("version"), 0);
    assert_eq!(
        store.migrate().await.expect("migrate"),
        S::migration_count()
    );
    assert_eq!(store.migrate().await.expect("migrate again"), 0);
    assert_eq!(
        store.schema_version().await.expect("version"),
        S::migration_count()
    );
}

#[tokio::test]
async fn the_schema_is_applied_once_on_sqlite() {
    let dir = TempDir::new();
    let store = SqliteStore::open(&dir.config()).await.expect("open");
    assert!(SqliteStore::migration_count() > 0);
    the_schema_is_applied_once(store).await;
}

#[tokio::test]
async fn the_schema_is_applied_once_on_postgres() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let store = PostgresStore::open(&PostgresConfig::new(db.url()))
        .await
        .expect("open");
    assert!(PostgresStore::migration_count() > 0);
    the_schema_is_applied_once(store).await;
}

#[tokio::test]
async fn memory_has_no_schema_to_migrate() {
    the_schema_is_applied_once(MemoryStore::new()).await;
}

/// A run without backends says so where a person sees it: this test binary, run again on one
/// PostgreSQL test with no `DATABASE_URL`, reports the test passed and writes past the
/// harness's capture which backend it skipped and why; under `CI=true` the same test fails.
#[test]
fn a_run_without_backends_says_what_it_skipped() {
    let run = |ci: bool| {
        let mut command = std::process::Command::new(std::env::current_exe().expect("this binary"));
        command
            .args([
                "--exact",
                "storage::the_schema_is_applied_once_on_postgres",
                "--test-threads",
                "1",
            ])
            .env_remove("DATABASE_URL")
            .env_remove("CI");
        if ci {
            command.env("CI", "true");
        }
        command.output().expect("the test binary runs")
    };
    let out = run(false);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("1 passed"), "{stdout}");
    assert!(
        stderr.contains("skipped (") && stderr.contains("DATABASE_URL is not set"),
        "the skip is not said: {stderr}"
    );
    let out = run(true);
    assert!(
        !out.status.success(),
        "under CI=true a backend test without its URL fails"
    );
}
