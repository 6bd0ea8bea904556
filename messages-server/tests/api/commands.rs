//! The binary's other commands: `migrate` applies the migrations and exits; `healthcheck`
//! exits 0 only when the local server answers `/readyz` with 200.

use crate::helpers::{server_command as server, start, test_config};
use messages_core::storage::Schema;
use messages_core::storage::postgres::{PostgresConfig, PostgresStore};
use messages_core::storage::sqlite::{SqliteConfig, SqliteStore};
use messages_core::testing::postgres::TestDatabase;
use messages_core::testing::sqlite::TempDir;

// Multi-threaded: the blocking `status()` must not stall the server under test.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthcheck_exits_zero_only_when_the_server_is_ready() {
    let app = start(test_config()).await;
    let ready = server()
        .args(["healthcheck"])
        .env("BIND_ADDR", app.addr.to_string())
        .status()
        .expect("run healthcheck");
    assert!(ready.success());
    let port = app.addr.port();
    app.stop().await.expect("clean stop");
    let gone = server()
        .args(["healthcheck"])
        .env("BIND_ADDR", format!("127.0.0.1:{port}"))
        .status()
        .expect("run healthcheck");
    assert!(!gone.success(), "nothing listens any more");
}

#[tokio::test]
async fn migrate_creates_the_embedded_store_and_refuses_memory() {
    let memory = server().args(["migrate"]).output().expect("run migrate");
    assert!(!memory.status.success());
    assert!(String::from_utf8_lossy(&memory.stderr).contains("nothing to migrate"));

    let dir = TempDir::new();
    let data = dir.path().join("data");
    for _ in 0..2 {
        let run = server()
            .args(["migrate"])
            .env_remove("STORE")
            .env("DATA_DIR", &data)
            .output()
            .expect("run migrate");
        assert!(
            run.status.success(),
            "{}",
            String::from_utf8_lossy(&run.stderr)
        );
    }
    let db = data.join("messages.db");
    assert!(db.is_file(), "migrate created {}", db.display());
    let store = SqliteStore::open(&SqliteConfig::new(&db))
        .await
        .expect("open");
    assert_eq!(
        store.schema_version().await.expect("schema version"),
        SqliteStore::migration_count(),
        "every migration applied once"
    );
}

#[tokio::test]
async fn migrate_applies_the_schema_once_on_postgres() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    for _ in 0..2 {
        let run = server()
            .args(["migrate"])
            .env_remove("STORE")
            .env("DATABASE_URL", db.url())
            .output()
            .expect("run migrate");
        assert!(
            run.status.success(),
            "{}",
            String::from_utf8_lossy(&run.stderr)
        );
    }
    let (client, connection) = tokio_postgres::connect(db.url(), tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    let tables: i64 = client
        .query_one(
            "SELECT count(*) FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_name IN ('messages', 'outbox')",
            &[],
        )
        .await
        .expect("query")
        .get(0);
    assert_eq!(tables, 2);
    let store = PostgresStore::open(&PostgresConfig::new(db.url()))
        .await
        .expect("open");
    assert_eq!(
        store.schema_version().await.expect("schema version"),
        PostgresStore::migration_count(),
        "every migration applied once; the second run applied nothing"
    );
}

#[test]
fn an_invalid_setting_stops_the_server_naming_the_variable() {
    let out = server()
        .env("CACHE_MAX_ITEMS", "500")
        .output()
        .expect("run server");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("CACHE_MAX_ITEMS"));
}
