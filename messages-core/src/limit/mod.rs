//! Per-user write rate limits: a token bucket per user, kept in this process
//! ([`memory::MemoryLimiter`]) or in Redis and shared by every replica
//! ([`redis::RedisLimiter`]).
//!
//! The bucket holds up to `burst` tokens and gains `per_second` of them each second; a write
//! takes one, and a write that finds none is refused with the wait until one is there. Both
//! limiters keep a bucket as one number, the instant at which it will be full again
//! ([`Bucket`], the "generic cell rate" form of the token bucket): a full bucket and an
//! unknown user are the same thing, so nothing needs to be stored for an idle user, and the
//! arithmetic is whole microseconds, identical in Rust and in the Redis script.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::cache::breaker::Breaker;
use crate::error::{Error, Result};
use crate::message::UserId;

pub mod memory;
#[cfg(feature = "redis")]
pub mod redis;

/// A rate: tokens gained per second and the most a bucket holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    /// Microseconds per token.
    interval_us: u64,
    burst: u32,
}

impl Rate {
    /// The most tokens per second: one per microsecond.
    pub const MAX_PER_SECOND: f64 = 1_000_000.0;
    /// The largest burst.
    pub const MAX_BURST: u32 = 1_000_000;

    /// `per_second` tokens a second (a fraction is fine: 0.5 is one every two seconds), at
    /// most `burst` at once.
    pub fn new(per_second: f64, burst: u32) -> Result<Self> {
        if !(per_second.is_finite() && per_second > 0.0 && per_second <= Self::MAX_PER_SECOND) {
            return Err(Error::invalid(
                "rate",
                format!(
                    "must be more than 0 and at most {} a second, got {per_second}",
                    Self::MAX_PER_SECOND
                ),
            ));
        }
        if !(1..=Self::MAX_BURST).contains(&burst) {
            return Err(Error::invalid(
                "burst",
                format!("must be from 1 to {}, got {burst}", Self::MAX_BURST),
            ));
        }
        // At least one microsecond; at most 10^6 * 10^6 microseconds (1e12), far below 2^53,
        // the largest whole number the Redis script's numbers hold exactly.
        let interval_us = ((1_000_000.0 / per_second).round() as u64).max(1);
        Ok(Rate { interval_us, burst })
    }

    /// The most tokens a bucket holds.
    pub fn burst(self) -> u32 {
        self.burst
    }

    /// The time one token takes to come back.
    pub fn interval(self) -> Duration {
        Duration::from_micros(self.interval_us)
    }

    /// The decision for a take that was `allowed` (or not) and left the bucket `missing_us`
    /// short of full, with `retry_us` to wait for a token when refused.
    fn decision(self, allowed: bool, missing_us: u64, retry_us: u64) -> Decision {
        Decision {
            allowed,
            limit: self.burst,
            remaining: (self.span_us().saturating_sub(missing_us) / self.interval_us) as u32,
            reset_after: Duration::from_micros(missing_us),
            retry_after: Duration::from_micros(retry_us),
        }
    }

    /// The time an empty bucket takes to fill.
    fn span_us(self) -> u64 {
        self.interval_us * u64::from(self.burst)
    }
}

/// What a limiter said to one write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    /// Whether the write may go ahead (it took a token).
    pub allowed: bool,
    /// The bucket's size.
    pub limit: u32,
    /// Whole tokens left after this write.
    pub remaining: u32,
    /// How long until the bucket is full again.
    pub reset_after: Duration,
    /// For a refused write: how long until a token is there. Zero when allowed.
    pub retry_after: Duration,
}

/// One bucket: the instant, in microseconds on the limiter's clock, at which it is full again
/// (any instant not after `now` means full).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bucket {
    /// When the bucket is full again.
    pub full_at_us: u64,
}

impl Bucket {
    /// Takes a token at `now_us` if there is one: the bucket after, and the decision. A
    /// refused take leaves the bucket as it was.
    pub fn take(self, now_us: u64, rate: Rate) -> (Bucket, Decision) {
        let full_at = self.full_at_us.max(now_us);
        // Tokens missing now, in microseconds of refill.
        let missing = full_at - now_us;
        let room = rate.span_us() - rate.interval_us;
        if missing > room {
            return (self, rate.decision(false, missing, missing - room));
        }
        let after = missing + rate.interval_us;
        (
            Bucket {
                full_at_us: now_us + after,
            },
            rate.decision(true, after, 0),
        )
    }

    /// Puts a token back at `now_us` (a write that turned out not to count); `None` when the
    /// bucket is then full.
    pub fn give_back(self, now_us: u64, rate: Rate) -> Option<Bucket> {
        let full_at = self.full_at_us.saturating_sub(rate.interval_us);
        (full_at > now_us).then_some(Bucket {
            full_at_us: full_at,
        })
    }
}

/// A per-user token bucket limiter.
#[async_trait]
pub trait RateLimiter: Send + Sync + 'static {
    /// The rate every bucket of this limiter has.
    fn rate(&self) -> Rate;

    /// Takes a token from `user`'s bucket if there is one.
    async fn take(&self, user: UserId) -> Result<Decision>;

    /// Puts back a token taken for a write that did not count (an idempotent replay).
    async fn give_back(&self, user: UserId) -> Result<()>;

    /// Whether the limiter can answer now.
    async fn ping(&self) -> Result<()>;
}

/// A limiter that never turns its own failure into a failed write: behind a circuit breaker
/// (the cache's, when both are on one Redis), a limiter that fails or is skipped answers
/// `None`, and the write goes ahead unchecked.
pub struct FailOpen {
    inner: Arc<dyn RateLimiter>,
    breaker: Option<Arc<Breaker>>,
}

impl FailOpen {
    /// `inner`, guarded by `breaker` when it is given (a limiter in this process needs none).
    pub fn new(inner: Arc<dyn RateLimiter>, breaker: Option<Arc<Breaker>>) -> Self {
        FailOpen { inner, breaker }
    }

    /// The rate of every bucket.
    pub fn rate(&self) -> Rate {
        self.inner.rate()
    }

    async fn guarded<T>(&self, call: impl std::future::Future<Output = Result<T>>) -> Result<T> {
        match &self.breaker {
            Some(breaker) => {
                breaker.admit()?;
                breaker.record(call.await)
            }
            None => call.await,
        }
    }

    /// The decision for `user`'s write, or `None` when the limiter could not answer (the
    /// write goes ahead; the failure is logged at debug level, the breaker's opening at warn).
    pub async fn take(&self, user: UserId) -> Option<Decision> {
        match self.guarded(self.inner.take(user)).await {
            Ok(decision) => Some(decision),
            Err(error) => {
                tracing::debug!(error = %error, "rate limiter unavailable; the write goes ahead");
                None
            }
        }
    }

    /// Puts back the token of a write that did not count; a failure only costs the user that
    /// token.
    pub async fn give_back(&self, user: UserId) {
        if let Err(error) = self.guarded(self.inner.give_back(user)).await {
            tracing::debug!(error = %error, "rate limiter unavailable; a token was not given back");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(per_second: f64, burst: u32) -> Rate {
        Rate::new(per_second, burst).unwrap()
    }

    #[test]
    fn a_full_bucket_gives_its_burst_then_refuses_until_a_token_comes_back() {
        let r = rate(10.0, 3);
        let mut bucket = Bucket { full_at_us: 0 };
        let now = 5_000_000;
        for remaining in [2, 1, 0] {
            let (next, d) = bucket.take(now, r);
            assert!(d.allowed);
            assert_eq!(d.remaining, remaining);
            bucket = next;
        }
        let (same, refused) = bucket.take(now, r);
        assert_eq!(same, bucket, "a refused take changes nothing");
        assert!(!refused.allowed);
        assert_eq!(refused.retry_after, Duration::from_millis(100));
        assert_eq!(refused.reset_after, Duration::from_millis(300));
        // One microsecond early is still refused; on time it is allowed.
        assert!(!bucket.take(now + 99_999, r).1.allowed);
        let (_, d) = bucket.take(now + 100_000, r);
        assert!(d.allowed);
        assert_eq!(d.remaining, 0);
    }

    #[test]
    fn a_bucket_refills_at_the_rate_up_to_the_burst() {
        let r = rate(2.0, 4);
        let (bucket, _) = Bucket { full_at_us: 0 }.take(1_000_000, r);
        // A long idle time fills it to the burst, never past it.
        let (_, d) = bucket.take(1_000_000 + 60_000_000, r);
        assert_eq!(d.remaining, 3);
        assert_eq!(d.reset_after, Duration::from_millis(500));
    }

    #[test]
    fn a_token_given_back_is_there_again_and_never_overfills() {
        let r = rate(1.0, 2);
        let now = 10_000_000;
        let (b, _) = Bucket { full_at_us: 0 }.take(now, r);
        let (b, _) = b.take(now, r);
        assert!(!b.take(now, r).1.allowed);
        let b = b.give_back(now, r).unwrap();
        assert!(b.take(now, r).1.allowed);
        assert_eq!(b.give_back(now, r), None, "full again: nothing to keep");
    }

    #[test]
    fn rates_are_checked() {
        assert!(Rate::new(0.0, 1).is_err());
        assert!(Rate::new(-1.0, 1).is_err());
        assert!(Rate::new(f64::NAN, 1).is_err());
        assert!(Rate::new(2e6, 1).is_err());
        assert!(Rate::new(1.0, 0).is_err());
        assert_eq!(rate(0.5, 1).interval(), Duration::from_secs(2));
    }
}
