//! The PostgreSQL outbox: events claimed with `FOR UPDATE SKIP LOCKED`, so several relays
//! share the work, and deleted once delivered.
//!
//! The outbox is a queue: often empty when analysed, then thousands of pages of delivered rows
//! until vacuum comes (autovacuum wakes once a minute; at 10,000 creates a second that is
//! hundreds of megabytes). Its statements are written so that no plan reads the whole table:
//! the claim picks by `outbox_by_seq` and updates by tuple id, a delivered batch is deleted by
//! its range of positions, and both run unprepared (`query_typed`), planned for the table as
//! it is rather than as it was. The creates fill the table's pages to half
//! (`V8__outbox_fillfactor.sql`), so a claim rewrites each row on its own page: no new entry
//! in the outbox's three indexes, and only the changed bytes in the WAL.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio_postgres::types::Type;

use super::{PostgresStore, db, decode};
use crate::error::Result;
use crate::message::{ThreadId, Timestamp};
use crate::storage::close_payload;
use crate::storage::{Outbox, StoredEvent};

/// Claims up to $1 events for $2 milliseconds, oldest first. The events are picked and
/// locked once, in a materialised CTE: as an `IN` subquery the planner may run the locking
/// `LIMIT` again for every row of the outer scan, which on a large outbox ran for minutes (and
/// on after its caller gave up). The locked rows are then updated by their tuple ids, a TID
/// scan whatever the statistics say: joined back by `seq`, the planner (which thinks an outbox
/// analysed empty holds many rows of each `seq`) hashed the picked rows and scanned the whole
/// table for them, 175 ms a claim on a queue of delivered rows not yet vacuumed. A locked row
/// cannot move, so its tuple id holds until the statement ends.
pub(crate) const CLAIM: &str = "WITH picked AS MATERIALIZED ( \
    SELECT ctid FROM outbox \
    WHERE claimed_until IS NULL OR claimed_until < now() \
    ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED \
    ) \
    UPDATE outbox SET claimed_until = now() + $2 * interval '1 millisecond' \
    WHERE ctid = ANY(ARRAY(SELECT ctid FROM picked)) \
    RETURNING seq, id, kind, thread_id, time, payload, message_seq, rev";

/// Deletes the delivered events at positions $3, which lie between $1 and $2 (see
/// `by_positions`).
pub(crate) const ACK: &str = "DELETE FROM outbox WHERE seq BETWEEN $1 AND $2 AND seq = ANY($3)";

/// Hands the events at positions $3, between $1 and $2, back for another claim.
pub(crate) const RELEASE: &str =
    "UPDATE outbox SET claimed_until = NULL WHERE seq BETWEEN $1 AND $2 AND seq = ANY($3)";

#[async_trait]
impl Outbox for PostgresStore {
    async fn claim(&self, limit: usize, lease: Duration) -> Result<Vec<StoredEvent>> {
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
        self.timed(
            "ack events",
            self.by_positions(ACK, positions, "ack events"),
        )
        .await
    }

    async fn release(&self, positions: &[i64]) -> Result<()> {
        self.timed(
            "release events",
            self.by_positions(RELEASE, positions, "release events"),
        )
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

impl PostgresStore {
    /// Runs `statement` (`ACK` or `RELEASE`) on the events at `positions`.
    /// The positions are given as a range as well as a list: with no statistics the planner
    /// takes each listed value for 0.5 % of the table, so a list of a batch's 200 positions
    /// reads as all of it and is planned as a sequential scan of the whole queue, dead rows
    /// and all, while the range keeps it on `outbox_by_seq`.
    async fn by_positions(
        &self,
        statement: &'static str,
        positions: &[i64],
        what: &'static str,
    ) -> Result<()> {
        let (Some(first), Some(last)) = (positions.iter().min(), positions.iter().max()) else {
            return Ok(());
        };
        let client = self.client().await?;
        client
            .query_typed(
                statement,
                &[
                    (first, Type::INT8),
                    (last, Type::INT8),
                    (&positions, Type::INT8_ARRAY),
                ],
            )
            .await
            .map_err(db(what))?;
        Ok(())
    }
}
