//! Buckets in Redis, shared by every replica: one script per take, on one key per user,
//! timed by the Redis server's clock so replicas whose clocks differ still agree.
//!
//! The key is `<prefix>:limit:{<user_id>}`: the braces are a Redis Cluster hash tag, as for
//! the cache's keys, and the script touches that one key. It expires when the bucket is full
//! again, so an idle user costs Redis nothing.

use std::time::Duration;

use async_trait::async_trait;
use redis::Script;

use super::{Decision, Rate, RateLimiter};
use crate::cache::redis::unavailable;
use crate::error::Result;
use crate::message::UserId;
use crate::redis_server::{Connection, RedisServer};

/// [`super::Bucket::take`] and [`super::Bucket::give_back`] in Lua, on whole microseconds
/// (exact in Lua's doubles below 2^53). `KEYS`: the bucket, holding when it is full again.
/// `ARGV`: microseconds per token, burst, and `take` or `back`.
/// A take returns `{allowed, microseconds short of full after it, microseconds to wait}`.
const BUCKET: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local span = interval * tonumber(ARGV[2])
local full_at = tonumber(redis.call('GET', KEYS[1]) or '0')
if ARGV[3] == 'back' then
  full_at = full_at - interval
  if full_at > now then
    redis.call('SET', KEYS[1], string.format('%.0f', full_at), 'PX', math.ceil((full_at - now) / 1000))
  else
    redis.call('DEL', KEYS[1])
  end
  return {1, 0, 0}
end
if full_at < now then full_at = now end
local missing = full_at - now
local room = span - interval
if missing > room then
  return {0, missing, missing - room}
end
local after = missing + interval
redis.call('SET', KEYS[1], string.format('%.0f', now + after), 'PX', math.ceil(after / 1000))
return {1, after, 0}
";

/// Per-user buckets in Redis.
pub struct RedisLimiter {
    connection: Connection,
    prefix: String,
    timeout: Duration,
    rate: Rate,
    script: Script,
}

impl RedisLimiter {
    /// Buckets of `rate` on `server`, under `key_prefix` (the cache's, so one
    /// deployment's keys share one prefix), each call bounded by `timeout`. The connection
    /// opens on first use, so a Redis that is down at start delays nothing.
    pub fn new(
        server: &RedisServer,
        key_prefix: &str,
        timeout: Duration,
        rate: Rate,
    ) -> Result<Self> {
        Ok(RedisLimiter {
            connection: Connection::open(server, timeout)?,
            prefix: key_prefix.to_owned(),
            timeout,
            rate,
            script: Script::new(BUCKET),
        })
    }

    async fn run(&self, user: UserId, op: &str) -> Result<(u8, u64, u64)> {
        let mut connection = self.connection.clone();
        let mut invocation = self.script.key(format!("{}:limit:{{{user}}}", self.prefix));
        invocation
            .arg(self.rate.interval_us)
            .arg(self.rate.burst)
            .arg(op);
        let call = invocation.invoke_async(&mut connection);
        match tokio::time::timeout(self.timeout, call).await {
            Ok(result) => result.map_err(unavailable),
            Err(_) => Err(unavailable("timed out")),
        }
    }
}

#[async_trait]
impl RateLimiter for RedisLimiter {
    fn rate(&self) -> Rate {
        self.rate
    }

    async fn take(&self, user: UserId) -> Result<Decision> {
        let (allowed, missing, retry) = self.run(user, "take").await?;
        Ok(self.rate.decision(allowed == 1, missing, retry))
    }

    async fn give_back(&self, user: UserId) -> Result<()> {
        self.run(user, "back").await.map(|_| ())
    }

    async fn ping(&self) -> Result<()> {
        let mut connection = self.connection.clone();
        match tokio::time::timeout(
            self.timeout,
            redis::cmd("PING").query_async::<()>(&mut connection),
        )
        .await
        {
            Ok(result) => result.map_err(unavailable),
            Err(_) => Err(unavailable("timed out")),
        }
    }
}
