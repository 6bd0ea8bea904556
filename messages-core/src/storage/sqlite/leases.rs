//! The SQLite outbox's leases: which events this store has claimed and not yet had
//! acknowledged, held in memory by the store that claimed them (see `outbox`).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use crate::storage::StoredEvent;

/// What this store has claimed and not yet had acknowledged.
#[derive(Debug, Default)]
pub(super) struct Leases {
    /// The highest position this store has claimed: events past it were never claimed.
    pub(super) claimed_to: i64,
    /// Claimed events, with when their lease runs out.
    held: BTreeMap<i64, Instant>,
    /// Events at or below `claimed_to` to claim again: released, or their lease ran out.
    again: BTreeSet<i64>,
}

impl Leases {
    /// Takes up to `limit` events to claim again, in order of position: released ones and
    /// those whose lease has run out.
    pub(super) fn due(&mut self, now: Instant, limit: usize) -> Vec<i64> {
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

    pub(super) fn hold(&mut self, events: &[StoredEvent], until: Instant) {
        for event in events {
            self.held.insert(event.position, until);
            self.claimed_to = self.claimed_to.max(event.position);
        }
    }

    pub(super) fn forget(&mut self, positions: &[i64]) {
        for position in positions {
            self.held.remove(position);
            self.again.remove(position);
        }
    }

    pub(super) fn give_back(&mut self, positions: &[i64]) {
        for &position in positions {
            if self.held.remove(&position).is_some() || position <= self.claimed_to {
                self.again.insert(position);
            }
        }
    }
}
