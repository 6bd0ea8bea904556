//! The PostgreSQL outbox: events claimed with `FOR UPDATE SKIP LOCKED`, so several relays
//! share the work, and deleted once delivered.
//!
//! The claim and the delete run unprepared (`query_typed`), so each is planned for the outbox
//! as it is at that moment. The outbox is a queue: empty when analysed, then thousands of
//! pages of delivered rows until vacuum comes. A prepared statement keeps the plan it made
//! for the empty table, a sequential scan, and then walks every dead row on every claim (on a
//! server without autovacuum that was the largest single cost of a create under load);
//! planned afresh, the planner sees the table's current size and takes `outbox_by_seq`.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio_postgres::types::Type;

use super::{PostgresStore, db, decode};
use crate::error::Result;
use crate::message::{ThreadId, Timestamp};
use crate::storage::close_payload;
use crate::storage::{Outbox, StoredEvent};

#[async_trait]
impl Outbox for PostgresStore {
    async fn claim(&self, limit: usize, lease: Duration) -> Result<Vec<StoredEvent>> {
        // The events to claim are picked and locked once, in a materialised CTE: as an `IN`
        // subquery the planner may run the locking `LIMIT` again for every row of the outer
        // scan, which on a large outbox ran for minutes (and on after its caller gave up).
        const CLAIM: &str = "WITH picked AS MATERIALIZED ( \
                SELECT seq FROM outbox \
                WHERE claimed_until IS NULL OR claimed_until < now() \
                ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED \
            ) \
            UPDATE outbox o SET claimed_until = now() + $2 * interval '1 millisecond' \
            FROM picked WHERE o.seq = picked.seq \
            RETURNING o.seq, o.id, o.kind, o.thread_id, o.time, o.payload, o.message_seq, o.rev";
        self.timed("claim events", async {
            let client = self.client().await?;
            let limit = limit as i64;
            let lease_ms = lease.as_millis() as f64;
            let rows = client
                .query_typed(CLAIM, &[(&limit, Type::INT8), (&lease_ms, Type::FLOAT8)])
                .await
                .map_err(db("claim events"))?;
            let mut events = rows
                .iter()
                .map(|row| {
                    let time: DateTime<Utc> = row.try_get(4)?;
                    let position: i64 = row.try_get(0)?;
                    let payload: Vec<u8> = row.try_get(5)?;
                    let seq: Option<i64> = row.try_get(6)?;
                    let rev: Option<i64> = row.try_get(7)?;
                    // Events written before the sequence existed have a complete body and
                    // keep their outbox position as their sequence.
                    let (sequence, payload) = match (seq, rev) {
                        (Some(seq), Some(rev)) => (rev, close_payload(&payload, seq, rev)),
                        _ => (position, payload),
                    };
                    Ok(StoredEvent {
                        position,
                        id: row.try_get(1)?,
                        kind: row.try_get(2)?,
                        thread_id: ThreadId::from_uuid(row.try_get(3)?),
                        time: Timestamp::from(time),
                        sequence,
                        payload,
                    })
                })
                .collect::<std::result::Result<Vec<_>, tokio_postgres::Error>>()
                .map_err(decode)?;
            events.sort_by_key(|e| e.position);
            Ok(events)
        })
        .await
    }

    async fn ack(&self, positions: &[i64]) -> Result<()> {
        self.timed("ack events", async {
            let client = self.client().await?;
            client
                .query_typed(
                    "DELETE FROM outbox WHERE seq = ANY($1)",
                    &[(&positions, Type::INT8_ARRAY)],
                )
                .await
                .map_err(db("ack events"))?;
            Ok(())
        })
        .await
    }

    async fn release(&self, positions: &[i64]) -> Result<()> {
        self.timed("release events", async {
            let client = self.client().await?;
            let stmt = client
                .prepare_cached("UPDATE outbox SET claimed_until = NULL WHERE seq = ANY($1)")
                .await
                .map_err(db("prepare"))?;
            client
                .execute(&stmt, &[&positions])
                .await
                .map_err(db("release events"))?;
            Ok(())
        })
        .await
    }

    async fn pending(&self) -> Result<(u64, Option<Timestamp>)> {
        self.timed("pending events", async {
            let client = self.client().await?;
            let stmt = client
                .prepare_cached("SELECT count(*), min(time) FROM outbox")
                .await
                .map_err(db("prepare"))?;
            let row = client
                .query_one(&stmt, &[])
                .await
                .map_err(db("pending events"))?;
            let count: i64 = row.try_get(0).map_err(decode)?;
            let oldest: Option<DateTime<Utc>> = row.try_get(1).map_err(decode)?;
            Ok((count.max(0) as u64, oldest.map(Timestamp::from)))
        })
        .await
    }
}
