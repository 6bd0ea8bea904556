//! The outbox in memory: events wait in order; a claim leases them until acknowledged or
//! released, or until the lease runs out.

use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::MemoryStore;
use crate::error::Result;
use crate::locks;
use crate::message::Timestamp;
use crate::storage::{Outbox, StoredEvent};

#[async_trait]
impl Outbox for MemoryStore {
    async fn claim(&self, limit: usize, lease: Duration) -> Result<Vec<StoredEvent>> {
        let mut outbox = locks::lock(&self.outbox);
        let now = Instant::now();
        // Leases that ran out go back to the front, oldest first.
        let expired: Vec<i64> = outbox
            .leased
            .iter()
            .filter(|(_, (_, until))| *until <= now)
            .map(|(position, _)| *position)
            .collect();
        for position in expired.into_iter().rev() {
            if let Some((event, _)) = outbox.leased.remove(&position) {
                outbox.ready.push_front(event);
            }
        }
        let n = limit.min(outbox.ready.len());
        let claimed: Vec<StoredEvent> = outbox.ready.drain(..n).collect();
        for event in &claimed {
            outbox
                .leased
                .insert(event.position, (event.clone(), now + lease));
        }
        Ok(claimed)
    }

    async fn ack(&self, positions: &[i64]) -> Result<()> {
        let mut outbox = locks::lock(&self.outbox);
        for position in positions {
            outbox.leased.remove(position);
        }
        Ok(())
    }

    async fn release(&self, positions: &[i64]) -> Result<()> {
        let mut outbox = locks::lock(&self.outbox);
        let mut released: Vec<StoredEvent> = positions
            .iter()
            .filter_map(|position| outbox.leased.remove(position).map(|(e, _)| e))
            .collect();
        released.sort_by_key(|e| std::cmp::Reverse(e.position));
        for event in released {
            outbox.ready.push_front(event);
        }
        Ok(())
    }

    async fn pending(&self) -> Result<(u64, Option<Timestamp>)> {
        let outbox = locks::lock(&self.outbox);
        let count = outbox.ready.len() + outbox.leased.len();
        let oldest = outbox
            .ready
            .iter()
            .chain(outbox.leased.values().map(|(e, _)| e))
            .map(|e| e.time)
            .min();
        Ok((count as u64, oldest))
    }
}
