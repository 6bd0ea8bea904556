//! The SQLite outbox: events written with their change, read by the relay from a reader,
//! deleted by the writer once delivered. The events survive a restart.
//!
//! Leases are held in memory by the store that claimed them, not written to the file: a
//! claim is a read, and an event's row is written twice (inserted with its change, deleted
//! once delivered) instead of three times. One process writes a file (its writer owns the
//! file; the server also locks its data directory), so no other process claims from it, and
//! after a restart the new process claims at once every event the old one did not
//! acknowledge.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use rusqlite::{OptionalExtension, Row, params};

use super::{SqliteStore, db, decode, timestamp};
use crate::error::Result;
use crate::message::{ThreadId, Timestamp};
use crate::storage::{Outbox, StoredEvent};

/// What this store has claimed and not yet had acknowledged.
#[derive(Debug, Default)]
pub(super) struct Leases {
    /// The highest position this store has claimed: events past it were never claimed.
    claimed_to: i64,
    /// Claimed events, with when their lease runs out.
    held: BTreeMap<i64, Instant>,
    /// Events at or below `claimed_to` to claim again: released, or their lease ran out.
    again: BTreeSet<i64>,
}

impl Leases {
    /// Takes up to `limit` events to claim again, in order of position: released ones and
    /// those whose lease has run out.
    fn due(&mut self, now: Instant, limit: usize) -> Vec<i64> {
        let expired: Vec<i64> = self
            .held
            .iter()
            .filter(|&(_, until)| *until <= now)
            .map(|(&position, _)| position)
            .collect();
        for position in expired {
            self.held.remove(&position);
            self.again.insert(position);
        }
        let due: Vec<i64> = self.again.iter().take(limit).copied().collect();
        for position in &due {
            self.again.remove(position);
        }
        due
    }

    fn hold(&mut self, events: &[StoredEvent], until: Instant) {
        for event in events {
            self.held.insert(event.position, until);
            self.claimed_to = self.claimed_to.max(event.position);
        }
    }

    fn forget(&mut self, positions: &[i64]) {
        for position in positions {
            self.held.remove(position);
            self.again.remove(position);
        }
    }

    fn give_back(&mut self, positions: &[i64]) {
        for &position in positions {
            if self.held.remove(&position).is_some() || position <= self.claimed_to {
                self.again.insert(position);
            }
        }
    }
}

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

/// Deletes the events at `positions`: those of each unbroken run of positions (the common
/// case: a batch claimed in order) by one range.
fn delete(conn: &rusqlite::Connection, positions: &[i64]) -> Result<()> {
    let mut sorted = positions.to_vec();
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
        let owned = positions.to_vec();
        self.write("ack events", move |conn| delete(conn, &owned))
            .await?;
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
