//! PostgreSQL alone: what its store does beyond the contract every store passes, and the
//! sessions and triggers its tests use to watch it.

use messages_core::storage::Schema;
use messages_core::storage::postgres::{PostgresConfig, PostgresStore};
use messages_core::testing::postgres::TestDatabase;
use messages_core::testing::storage::Calls;
use messages_core::{MessageId, ThreadId, UserId};
use uuid::Uuid;

mod deadlocks;
mod groups;
mod plans;
mod processes;
mod reactions;
mod replies;

/// A PostgreSQL store with one lane of creates, so that every create queued while one is in
/// flight joins the next group; a session of its own on the same schema; a thread whose first
/// create is written.
pub(super) async fn one_lane_store(
    db: &TestDatabase,
) -> (PostgresStore, tokio_postgres::Client, ThreadId) {
    let mut config = PostgresConfig::new(db.url());
    config.group_lanes = 1;
    let store = PostgresStore::open(&config).await.expect("open");
    store.migrate().await.expect("migrate");
    let (other, connection) = tokio_postgres::connect(db.url(), tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    let held = ThreadId::from_uuid(Uuid::now_v7());
    let first =
        messages_core::testing::text_message(held, UserId::from_uuid(Uuid::now_v7()), 1, "first");
    store.create_with(&first, None).await.expect("create");
    (store, other, held)
}

/// Begins a transaction on `other` that holds the message's row, so a change of it waits.
pub(super) async fn hold_message(other: &tokio_postgres::Client, thread: ThreadId, id: MessageId) {
    other
        .batch_execute(&format!(
            "BEGIN; SELECT 1 FROM messages WHERE thread_id = '{thread}' AND id = '{id}' FOR UPDATE"
        ))
        .await
        .expect("lock");
}

/// Makes every row inserted into `table` record `column` and the transaction that wrote it in
/// a table `writes (id, tx)`.
pub(super) async fn note_transactions(other: &tokio_postgres::Client, table: &str, column: &str) {
    other
        .batch_execute(&format!(
            "CREATE TABLE writes (id uuid, tx bigint);
             CREATE FUNCTION note_write() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN INSERT INTO writes VALUES (NEW.{column}, txid_current()); RETURN NEW; END $$;
             CREATE TRIGGER note_write AFTER INSERT ON {table}
             FOR EACH ROW EXECUTE FUNCTION note_write();"
        ))
        .await
        .expect("trigger");
}
