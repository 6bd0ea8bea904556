//! The SQLite outbox: events claimed for a lease by the writer, deleted once delivered. The
//! events survive a restart; those claimed by a process that died are claimed again when
//! their lease runs out.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use rusqlite::params;

use super::{SqliteStore, db, decode, timestamp};
use crate::error::Result;
use crate::message::{ThreadId, Timestamp};
use crate::storage::{Outbox, StoredEvent};

/// Microseconds since the Unix epoch, the unit of every time in the file.
fn now_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

#[async_trait]
impl Outbox for SqliteStore {
    async fn claim(&self, limit: usize, lease: Duration) -> Result<Vec<StoredEvent>> {
        const CLAIM: &str = "UPDATE outbox SET claimed_until = ?2 \
            WHERE position IN ( \
                SELECT position FROM outbox WHERE claimed_until IS NULL OR claimed_until < ?3 \
                ORDER BY position LIMIT ?1 \
            ) RETURNING position, id, kind, thread_id, time, sequence, payload";
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let lease = i64::try_from(lease.as_micros()).unwrap_or(i64::MAX);
        self.write("claim events", move |conn| {
            let now = now_micros();
            let mut stmt = conn.prepare_cached(CLAIM).map_err(db("claim events"))?;
            let mut rows = stmt
                .query(params![limit, now.saturating_add(lease), now])
                .map_err(db("claim events"))?;
            let mut events = Vec::new();
            while let Some(row) = rows.next().map_err(db("claim events"))? {
                events.push(StoredEvent {
                    position: row.get(0).map_err(decode)?,
                    id: row.get(1).map_err(decode)?,
                    kind: row.get(2).map_err(decode)?,
                    thread_id: ThreadId::from_uuid(row.get(3).map_err(decode)?),
                    time: timestamp(row.get(4).map_err(decode)?)?,
                    sequence: row.get(5).map_err(decode)?,
                    payload: row.get(6).map_err(decode)?,
                });
            }
            // RETURNING gives no order.
            events.sort_by_key(|e| e.position);
            Ok(events)
        })
        .await
    }

    async fn ack(&self, positions: &[i64]) -> Result<()> {
        let positions = positions.to_vec();
        self.write("ack events", move |conn| {
            let mut stmt = conn
                .prepare_cached("DELETE FROM outbox WHERE position = ?1")
                .map_err(db("ack events"))?;
            for position in positions {
                stmt.execute([position]).map_err(db("ack events"))?;
            }
            Ok(())
        })
        .await
    }

    async fn release(&self, positions: &[i64]) -> Result<()> {
        let positions = positions.to_vec();
        self.write("release events", move |conn| {
            let mut stmt = conn
                .prepare_cached("UPDATE outbox SET claimed_until = NULL WHERE position = ?1")
                .map_err(db("release events"))?;
            for position in positions {
                stmt.execute([position]).map_err(db("release events"))?;
            }
            Ok(())
        })
        .await
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
