//! Per-user write rate limits at the HTTP edge: who is limited, the 429 with `Retry-After`,
//! the `X-RateLimit-*` headers on every limited write, and the token handed back when a write
//! turns out to be an idempotent replay.
//!
//! Limited: creates, edits, deletes (one token for a bulk delete) and reaction changes.
//! Read-state updates are not: they take no number, send no event and move one private row,
//! and a client sends one each time its reader reaches the bottom of a thread.

use http::HeaderName;
use messages_core::MessageService;
use messages_core::limit::memory::MemoryLimiter;
use messages_core::limit::redis::RedisLimiter;
use messages_core::limit::{Decision, FailOpen, RateLimiter};
use std::sync::Arc;

use crate::auth::Caller;
use crate::config::{Config, RateLimitSettings};
use crate::error::ApiError;

/// A response with a complete body (as the routes answer).
type HttpResponse = http::Response<crate::body::Body>;

/// `Idempotent-Replayed: true` marks the answer of a create that replayed an earlier one; a
/// write answered with it gives its token back.
pub const IDEMPOTENT_REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");

/// The limits of this process.
pub struct WriteLimits {
    limiter: Option<FailOpen>,
    /// Messages addressing the whole room, apart from the writes (see `RateLimitSettings`).
    room_mentions: Option<FailOpen>,
    settings: RateLimitSettings,
}

/// A room mention a write took (or none: the limit is off, the caller exempt, or the limiter
/// could not answer); see [`WriteLimits::settle_room_mention`].
#[must_use = "a room mention is settled after the write"]
pub struct RoomMention(Option<messages_core::UserId>);

impl RoomMention {
    /// None taken: the write addresses no room, or did already.
    pub fn none() -> Self {
        RoomMention(None)
    }
}

/// What the limiter said to a write that goes ahead.
pub enum Grant {
    /// Not limited: limits are off, or the caller's role is exempt.
    Unlimited,
    /// The limiter could not answer; the write goes ahead unchecked.
    Unchecked,
    /// A token was taken from the user's bucket.
    Taken {
        /// Whose.
        caller: Caller,
        /// The bucket after it.
        decision: Decision,
    },
}

impl WriteLimits {
    /// The limits the configuration names: shared in Redis when there is one (behind the
    /// cache's breaker), else in this process; none when the rate is 0.
    pub fn open(config: &Config, service: &MessageService) -> anyhow::Result<Self> {
        let settings = config.rate_limit;
        let room_mentions = match settings.room_mentions {
            Some(rate) => Some(Self::bucket(config, service, rate, "room")?),
            None => None,
        };
        let Some(rate) = settings.rate else {
            tracing::info!("rate limits: off (RATE_LIMIT_WRITES_PER_SECOND=0)");
            return Ok(WriteLimits {
                limiter: None,
                room_mentions,
                settings,
            });
        };
        let per_second = 1.0 / rate.interval().as_secs_f64();
        let limiter = match &config.redis {
            Some(redis) => {
                let limiter =
                    RedisLimiter::new(&redis.server, &redis.key_prefix, redis.timeout, rate)
                        .map_err(|e| anyhow::anyhow!("invalid Redis settings (REDIS_URL): {e}"))?;
                tracing::info!(
                    per_second,
                    burst = rate.burst(),
                    "rate limits: per user, shared by every replica in Redis; writes go unchecked while Redis is unreachable"
                );
                FailOpen::new(
                    Arc::new(limiter) as Arc<dyn RateLimiter>,
                    service.cache_breaker(),
                )
            }
            None => {
                tracing::info!(
                    per_second,
                    burst = rate.burst(),
                    "rate limits: per user, in this process"
                );
                FailOpen::new(Arc::new(MemoryLimiter::new(rate)), None)
            }
        };
        Ok(WriteLimits {
            limiter: Some(limiter),
            room_mentions,
            settings,
        })
    }

    /// A bucket per user at `rate`, named `name` apart from the writes' buckets: in Redis
    /// when there is one, else in this process.
    fn bucket(
        config: &Config,
        service: &MessageService,
        rate: messages_core::limit::Rate,
        name: &str,
    ) -> anyhow::Result<FailOpen> {
        Ok(match &config.redis {
            Some(redis) => {
                let prefix = format!("{}:{name}", redis.key_prefix);
                let limiter = RedisLimiter::new(&redis.server, &prefix, redis.timeout, rate)
                    .map_err(|e| anyhow::anyhow!("invalid Redis settings (REDIS_URL): {e}"))?;
                FailOpen::new(
                    Arc::new(limiter) as Arc<dyn RateLimiter>,
                    service.cache_breaker(),
                )
            }
            None => FailOpen::new(Arc::new(MemoryLimiter::new(rate)), None),
        })
    }

    /// Takes a room mention for `caller` (a message addressing the whole room): a 429
    /// `rate_limited` past `RATE_LIMIT_ROOM_MENTIONS_PER_MINUTE` (nothing is written then).
    /// What it answers goes to [`WriteLimits::settle_room_mention`] after the write.
    pub async fn take_room_mention(&self, caller: &Caller) -> Result<RoomMention, ApiError> {
        let Some(limiter) = &self.room_mentions else {
            return Ok(RoomMention(None));
        };
        if self.exempt(caller) {
            return Ok(RoomMention(None));
        }
        match limiter.take(caller.user).await {
            None => {
                metrics::counter!("rate_limit_unchecked_total").increment(1);
                Ok(RoomMention(None))
            }
            Some(decision) if decision.allowed => Ok(RoomMention(Some(caller.user))),
            Some(decision) => {
                metrics::counter!("http_rate_limited_total", "route" => "room_mention")
                    .increment(1);
                tracing::info!(user = %caller.user, "room mention rate limited");
                Err(ApiError::room_mentions_limited(decision))
            }
        }
    }

    /// After a write that took a room mention: the mention is given back unless the write
    /// stored a new one (`stored`): a refused write or an idempotent replay costs nothing.
    pub async fn settle_room_mention(&self, taken: RoomMention, stored: bool) {
        if let (RoomMention(Some(user)), false, Some(limiter)) =
            (taken, stored, &self.room_mentions)
        {
            limiter.give_back(user).await;
        }
    }

    fn exempt(&self, caller: &Caller) -> bool {
        (caller.moderator && self.settings.exempt_moderators)
            || (caller.service && self.settings.exempt_services)
    }

    /// Takes a token for `caller`'s write on `route`: a 429 `rate_limited` when the bucket is
    /// empty (nothing else happens for that request).
    pub async fn take(&self, caller: &Caller, route: &'static str) -> Result<Grant, ApiError> {
        let Some(limiter) = &self.limiter else {
            return Ok(Grant::Unlimited);
        };
        if self.exempt(caller) {
            return Ok(Grant::Unlimited);
        }
        match limiter.take(caller.user).await {
            None => {
                metrics::counter!("rate_limit_unchecked_total").increment(1);
                Ok(Grant::Unchecked)
            }
            Some(decision) if decision.allowed => Ok(Grant::Taken {
                caller: *caller,
                decision,
            }),
            Some(decision) => {
                metrics::counter!("http_rate_limited_total", "route" => route).increment(1);
                tracing::info!(
                    user = %caller.user,
                    route,
                    retry_after_ms = decision.retry_after.as_millis() as u64,
                    "write rate limited"
                );
                Err(ApiError::rate_limited(
                    decision,
                    1.0 / limiter.rate().interval().as_secs_f64(),
                ))
            }
        }
    }

    /// After the write: the headers on its answer, and the token back when the answer is an
    /// idempotent replay (which stored nothing and does not count).
    pub async fn settle(
        &self,
        grant: Grant,
        result: Result<HttpResponse, ApiError>,
    ) -> Result<HttpResponse, ApiError> {
        let Grant::Taken {
            caller,
            mut decision,
        } = grant
        else {
            return result;
        };
        match result {
            Ok(mut response) => {
                if response.headers().contains_key(IDEMPOTENT_REPLAYED)
                    && let Some(limiter) = &self.limiter
                {
                    limiter.give_back(caller.user).await;
                    decision.remaining = (decision.remaining + 1).min(decision.limit);
                }
                crate::error::write_rate_headers(response.headers_mut(), &decision);
                Ok(response)
            }
            Err(error) => Err(error.with_rate(decision)),
        }
    }
}
