//! The SQLite outbox: events written with their change, read by the relay from a reader,
//! deleted by the writer once delivered. The events survive a restart.
//!
//! Leases are held in memory by the store that claimed them, not written to the file: a
//! claim is a read, and an event's row is written twice (inserted with its change, deleted
//! once delivered) instead of three times. One process writes a file (its writer owns the
//! file; the server also locks its data directory), so no other process claims from it, and
//! after a restart the new process claims at once every event the old one did not
//! acknowledge.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::SqliteStore;
use super::command::{Ack, Command, Statements, Undo};
use super::error::db;
use super::rows::{decode, timestamp};
use crate::error::Result;
use crate::message::{ThreadId, Timestamp};
use crate::storage::{Outbox, StoredEvent};

/// One event, by position.
const ONE: &str = "SELECT position, id, kind, thread_id, time, sequence, payload \
    FROM outbox WHERE position = ?1";
/// The oldest events past a position.
const NEWER: &str = "SELECT position, id, kind, thread_id, time, sequence, payload \
    FROM outbox WHERE position > ?1 ORDER BY position LIMIT ?2";

fn event_from_row(row: &Row<'_>) -> Result<StoredEvent> {
    Ok(StoredEvent {
        position: row.get(0).map_err(decode)?,
        id: row.get(1).map_err(decode)?,
        kind: row.get(2).map_err(decode)?,
        thread_id: ThreadId::from_uuid(row.get(3).map_err(decode)?),
        time: timestamp(row.get(4).map_err(decode)?)?,
        sequence: row.get(5).map_err(decode)?,
        payload: row.get(6).map_err(decode)?,
    })
}

/// Deletes the events at the acknowledged positions, on the writer: those of each unbroken
/// run of positions (the common case: a batch claimed in order) by one range.
impl Statements for Ack {
    type Output = ();
    const WHAT: &'static str = "ack events";
    const UNDO: Undo = Undo::Savepoint;

    fn write(self, conn: &Connection) -> Result<()> {
        delete(conn, self.0)
    }
}

fn delete(conn: &Connection, positions: Vec<i64>) -> Result<()> {
    let mut sorted = positions;
    sorted.sort_unstable();
    sorted.dedup();
    let mut stmt = conn
        .prepare_cached("DELETE FROM outbox WHERE position BETWEEN ?1 AND ?2")
        .map_err(db("ack events"))?;
    let mut runs = sorted.chunk_by(|a, b| b - a == 1);
    runs.try_for_each(|run| {
        let (Some(first), Some(last)) = (run.first(), run.last()) else {
            return Ok(());
        };
        stmt.execute([first, last])
            .map(drop)
            .map_err(db("ack events"))
    })
}

#[async_trait]
impl Outbox for SqliteStore {
    async fn claim(&self, limit: usize, lease: Duration) -> Result<Vec<StoredEvent>> {
        // Held across the read, so that two claims never take the same event.
        let mut leases = self.inner.leases.lock().await;
        let now = Instant::now();
        let until = now
            .checked_add(lease)
            .unwrap_or(now + Duration::from_secs(86_400 * 365));
        let due = leases.due(now, limit);
        let again = due.clone();
        let claimed_to = leases.claimed_to;
        let fresh = limit.saturating_sub(again.len());
        let fresh = i64::try_from(fresh).unwrap_or(i64::MAX);
        let read = self
            .read("claim events", move |tx| {
                let mut events = Vec::with_capacity(again.len());
                let mut one = tx.prepare_cached(ONE).map_err(db("claim events"))?;
                for position in again {
                    // An event acknowledged since (after its lease ran out) is gone.
                    if let Some(event) = one
                        .query_row([position], |row| Ok(event_from_row(row)))
                        .optional()
                        .map_err(db("claim events"))?
                    {
                        events.push(event?);
                    }
                }
                let mut newer = tx.prepare_cached(NEWER).map_err(db("claim events"))?;
                let mut rows = newer
                    .query(params![claimed_to, fresh])
                    .map_err(db("claim events"))?;
                while let Some(row) = rows.next().map_err(db("claim events"))? {
                    events.push(event_from_row(row)?);
                }
                events.sort_by_key(|e| e.position);
                Ok(events)
            })
            .await;
        match read {
            Ok(events) => {
                leases.hold(&events, until);
                Ok(events)
            }
            Err(error) => {
                // Nothing was claimed: what was due stays due.
                leases.give_back(&due);
                Err(error)
            }
        }
    }

    async fn ack(&self, positions: &[i64]) -> Result<()> {
        self.write(Ack(positions.to_vec()), Command::Ack).await?;
        self.inner.leases.lock().await.forget(positions);
        Ok(())
    }

    async fn release(&self, positions: &[i64]) -> Result<()> {
        self.inner.leases.lock().await.give_back(positions);
        Ok(())
    }

    async fn pending(&self) -> Result<(u64, Option<Timestamp>)> {
        self.read("pending events", |tx| {
            let (count, oldest): (i64, Option<i64>) = tx
                .query_row("SELECT count(*), min(time) FROM outbox", [], |row| {
                    Ok((row.get(0)?, row.get(1)?))
                })
                .map_err(db("pending events"))?;
            Ok((count.max(0) as u64, oldest.map(timestamp).transpose()?))
        })
        .await
    }
}
