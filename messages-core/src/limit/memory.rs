//! Buckets in this process: for a single replica, or when there is no Redis.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use async_trait::async_trait;

use super::{Bucket, Decision, Rate, RateLimiter};
use crate::error::Result;
use crate::locks;
use crate::message::UserId;

/// Buckets of users who wrote recently, in a map swept of full ones as it grows.
pub struct MemoryLimiter {
    rate: Rate,
    epoch: Instant,
    /// Held for a map operation only, never across an await (`locks`).
    buckets: Mutex<Buckets>,
}

struct Buckets {
    by_user: HashMap<UserId, Bucket>,
    /// The size at which full buckets are swept out next: twice what a sweep left, so a sweep
    /// costs each write a constant on average.
    sweep_at: usize,
}

impl MemoryLimiter {
    const FIRST_SWEEP: usize = 1_024;

    /// A limiter whose every bucket has `rate`.
    pub fn new(rate: Rate) -> Self {
        MemoryLimiter {
            rate,
            epoch: Instant::now(),
            buckets: Mutex::new(Buckets {
                by_user: HashMap::new(),
                sweep_at: Self::FIRST_SWEEP,
            }),
        }
    }

    /// Microseconds on this limiter's clock; 1 at the start, so that 0 always means full.
    fn now_us(&self) -> u64 {
        self.epoch.elapsed().as_micros() as u64 + 1
    }

    /// Users whose bucket is not full, for tests and metrics.
    pub fn tracked(&self) -> usize {
        let now = self.now_us();
        locks::lock(&self.buckets)
            .by_user
            .values()
            .filter(|b| b.full_at_us > now)
            .count()
    }
}

#[async_trait]
impl RateLimiter for MemoryLimiter {
    fn rate(&self) -> Rate {
        self.rate
    }

    async fn take(&self, user: UserId) -> Result<Decision> {
        let now = self.now_us();
        let mut buckets = locks::lock(&self.buckets);
        let bucket = buckets
            .by_user
            .get(&user)
            .copied()
            .unwrap_or(Bucket { full_at_us: 0 });
        let (after, decision) = bucket.take(now, self.rate);
        if decision.allowed {
            buckets.by_user.insert(user, after);
            if buckets.by_user.len() >= buckets.sweep_at {
                buckets.by_user.retain(|_, b| b.full_at_us > now);
                buckets.sweep_at = (buckets.by_user.len() * 2).max(Self::FIRST_SWEEP);
            }
        }
        Ok(decision)
    }

    async fn give_back(&self, user: UserId) -> Result<()> {
        let now = self.now_us();
        let mut buckets = locks::lock(&self.buckets);
        if let Some(bucket) = buckets.by_user.get(&user).copied() {
            match bucket.give_back(now, self.rate) {
                Some(after) => buckets.by_user.insert(user, after),
                None => buckets.by_user.remove(&user),
            };
        }
        Ok(())
    }

    async fn ping(&self) -> Result<()> {
        Ok(())
    }
}
