//! The PostgreSQL message store: one statement per write where SQL allows it.

use async_trait::async_trait;

use super::{COLUMNS, PostgresStore, db, decode, message_from_row, page_sql, query_position};
use crate::error::{Error, Result};
use crate::message::{
    Message, MessageId, MessagePatch, RequestFingerprint, ThreadId, Timestamp, UserId,
};
use crate::page::{Page, PageQuery, PageSize};
use crate::storage::{Created, Idempotency, MessageStore, OutboxEvent, UpdateEvent};

#[async_trait]
impl MessageStore for PostgresStore {
    async fn create(
        &self,
        message: &Message,
        idempotency: Option<Idempotency<'_>>,
        event: OutboxEvent,
    ) -> Result<Created> {
        // One statement: both inserts commit together, and a conflicting key inserts neither.
        const INSERT: &str = "WITH ins AS ( \
                INSERT INTO messages (thread_id, id, user_id, kind, content, paths, created_at, \
                                      updated_at, idempotency_key, request_hash) \
                VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8, $9) \
                ON CONFLICT (thread_id, user_id, idempotency_key) \
                    WHERE idempotency_key IS NOT NULL DO NOTHING \
                RETURNING id \
            ), ob AS ( \
                INSERT INTO outbox (id, kind, thread_id, time, payload) \
                SELECT $10, $11, $1, $12, $13 FROM ins \
            ) SELECT count(*) FROM ins";
        const ORIGINAL: &str = "SELECT thread_id, id, user_id, kind, content, paths, \
                created_at, updated_at, request_hash FROM messages \
                WHERE thread_id = $1 AND user_id = $2 AND idempotency_key = $3";
        self.timed("create", async {
            let client = self.client().await?;
            let stmt = client.prepare_cached(INSERT).await.map_err(db("prepare"))?;
            let key = idempotency.map(|i| i.key.as_str());
            let hash = idempotency.map(|i| i.fingerprint.as_bytes().to_vec());
            let created_at = message.created_at.to_datetime();
            let event_time = event.time.to_datetime();
            let row = client
                .query_one(
                    &stmt,
                    &[
                        message.thread_id.as_uuid(),
                        message.id.as_uuid(),
                        message.user_id.as_uuid(),
                        &message.kind.as_str(),
                        &message.content,
                        &message.paths,
                        &created_at,
                        &key,
                        &hash,
                        &event.id,
                        &event.kind,
                        &event_time,
                        &event.payload,
                    ],
                )
                .await
                .map_err(db("insert message"))?;
            let inserted: i64 = row.try_get(0).map_err(decode)?;
            if inserted == 1 {
                return Ok(Created::New(message.clone()));
            }
            let Some(idem) = idempotency else {
                return Err(Error::internal("insert message", "no row inserted"));
            };
            let stmt = client
                .prepare_cached(ORIGINAL)
                .await
                .map_err(db("prepare"))?;
            let row = client
                .query_one(
                    &stmt,
                    &[
                        message.thread_id.as_uuid(),
                        message.user_id.as_uuid(),
                        &idem.key.as_str(),
                    ],
                )
                .await
                .map_err(db("idempotent replay"))?;
            let stored: Vec<u8> = row.try_get(8).map_err(decode)?;
            let stored: [u8; 32] = stored
                .try_into()
                .map_err(|_| decode("bad request_hash length"))?;
            if RequestFingerprint::from_bytes(stored) != idem.fingerprint {
                return Err(Error::IdempotencyConflict);
            }
            Ok(Created::Replayed(message_from_row(&row)?))
        })
        .await
    }

    async fn get(&self, thread: ThreadId, id: MessageId) -> Result<Message> {
        self.timed("get", async {
            let client = self.client().await?;
            let stmt = client
                .prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM messages \
                     WHERE thread_id = $1 AND id = $2 AND deleted_at IS NULL"
                ))
                .await
                .map_err(db("prepare"))?;
            let row = client
                .query_opt(&stmt, &[thread.as_uuid(), id.as_uuid()])
                .await
                .map_err(db("get message"))?;
            row.as_ref().map(message_from_row).ok_or(Error::NotFound)?
        })
        .await
    }

    async fn update(
        &self,
        thread: ThreadId,
        id: MessageId,
        user: UserId,
        patch: &MessagePatch,
        now: Timestamp,
        event: UpdateEvent<'_>,
    ) -> Result<Message> {
        const OUTBOX: &str =
            "INSERT INTO outbox (id, kind, thread_id, time, payload) VALUES ($1, $2, $3, $4, $5)";
        self.timed("update", async {
            let mut client = self.client().await?;
            let update = client
                .prepare_cached(&format!(
                    "UPDATE messages SET content = COALESCE($4, content), \
                         paths = COALESCE($5, paths), updated_at = $6 \
                     WHERE thread_id = $1 AND id = $2 AND user_id = $3 AND deleted_at IS NULL \
                     RETURNING {COLUMNS}"
                ))
                .await
                .map_err(db("prepare"))?;
            let outbox = client.prepare_cached(OUTBOX).await.map_err(db("prepare"))?;
            let tx = client.transaction().await.map_err(db("begin"))?;
            let now_dt = now.to_datetime();
            let row = tx
                .query_opt(
                    &update,
                    &[
                        thread.as_uuid(),
                        id.as_uuid(),
                        user.as_uuid(),
                        &patch.content(),
                        &patch.paths(),
                        &now_dt,
                    ],
                )
                .await
                .map_err(db("update message"))?;
            let Some(row) = row else {
                drop(tx);
                return Err(self.diagnose(&client, thread, id).await);
            };
            let edited = message_from_row(&row)?;
            if edited.is_blank() {
                // Rolled back when `tx` drops.
                return Err(Error::invalid(
                    "content",
                    "must not be blank unless paths are given",
                ));
            }
            let e = event(&edited);
            let time = e.time.to_datetime();
            tx.execute(
                &outbox,
                &[&e.id, &e.kind, e.thread_id.as_uuid(), &time, &e.payload],
            )
            .await
            .map_err(db("insert event"))?;
            tx.commit().await.map_err(db("commit"))?;
            Ok(edited)
        })
        .await
    }

    async fn delete(
        &self,
        thread: ThreadId,
        id: MessageId,
        user: UserId,
        now: Timestamp,
        event: OutboxEvent,
    ) -> Result<()> {
        const DELETE: &str = "WITH del AS ( \
                UPDATE messages SET deleted_at = $4 \
                WHERE thread_id = $1 AND id = $2 AND user_id = $3 AND deleted_at IS NULL \
                RETURNING id \
            ), ob AS ( \
                INSERT INTO outbox (id, kind, thread_id, time, payload) \
                SELECT $5, $6, $1, $7, $8 FROM del \
            ) SELECT count(*) FROM del";
        self.timed("delete", async {
            let client = self.client().await?;
            let stmt = client.prepare_cached(DELETE).await.map_err(db("prepare"))?;
            let now_dt = now.to_datetime();
            let time = event.time.to_datetime();
            let row = client
                .query_one(
                    &stmt,
                    &[
                        thread.as_uuid(),
                        id.as_uuid(),
                        user.as_uuid(),
                        &now_dt,
                        &event.id,
                        &event.kind,
                        &time,
                        &event.payload,
                    ],
                )
                .await
                .map_err(db("delete message"))?;
            let deleted: i64 = row.try_get(0).map_err(decode)?;
            if deleted == 1 {
                Ok(())
            } else {
                Err(self.diagnose(&client, thread, id).await)
            }
        })
        .await
    }

    async fn page(&self, thread: ThreadId, query: PageQuery, size: PageSize) -> Result<Page> {
        self.timed("page", async {
            let client = self.client().await?;
            let stmt = client
                .prepare_cached(&page_sql(query, false))
                .await
                .map_err(db("prepare"))?;
            let (at, id) = query_position(query);
            let take = (size.get() + 1) as i64;
            let rows = match query {
                PageQuery::Newest => client.query(&stmt, &[thread.as_uuid(), &take]).await,
                PageQuery::Before(_) | PageQuery::After(_) => {
                    client
                        .query(&stmt, &[thread.as_uuid(), &at, &id, &take])
                        .await
                }
            }
            .map_err(db("page"))?;
            let messages = rows
                .iter()
                .map(message_from_row)
                .collect::<Result<Vec<_>>>()?;
            Ok(Page::from_overfetch(messages, size))
        })
        .await
    }

    async fn ping(&self) -> Result<()> {
        self.timed("ping", async {
            let client = self.client().await?;
            client.simple_query("SELECT 1").await.map_err(db("ping"))?;
            Ok(())
        })
        .await
    }
}
