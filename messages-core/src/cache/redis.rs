//! The Redis cache: windows shared by every server process, guarded by a per-thread generation
//! in Redis, with a per-process copy of hot windows so a hit moves a few bytes, not the window.
//!
//! Keys are `<prefix>:{<thread_id>}:gen` and `<prefix>:{<thread_id>}:win`: the braces are a
//! Redis Cluster hash tag, so both keys of a thread live on one slot and every script touches
//! one slot only. Generations are random 63-bit values, never a counter: a flushed or expired
//! key can never come back with a value a slow reader still holds.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use redis::{Script, Value};

use super::window::Closes;
use super::{Generation, Lifetime, Lookup, PageCache, Window};
use crate::cursor::{Cursor, EncodedCursor};
use crate::error::{Error, Result};
use crate::locks;
use crate::message::ThreadId;
use crate::redis_server::{Connection, RedisServer};

/// Settings of the Redis cache.
#[derive(Clone, Debug)]
pub struct RedisCacheConfig {
    /// Where Redis is: one node or a cluster.
    pub server: RedisServer,
    /// Prefix of every key, so several deployments can share one Redis. Default `messages`.
    pub key_prefix: String,
    /// How long a window lives. Default: [`Lifetime::default`].
    pub lifetime: Lifetime,
    /// Longest wait for any cache call; past it the request reads the store instead.
    /// Default 250 ms.
    pub timeout: Duration,
    /// Threads whose window this process keeps a copy of. Default 10,000.
    pub local_windows: usize,
}

impl RedisCacheConfig {
    /// Defaults for everything but the URL of the one node.
    pub fn new(url: impl Into<String>) -> Self {
        Self::on(RedisServer::node(url))
    }

    /// Defaults for everything but where Redis is.
    pub fn on(server: RedisServer) -> Self {
        RedisCacheConfig {
            server,
            key_prefix: "messages".into(),
            lifetime: Lifetime::default(),
            timeout: Duration::from_millis(250),
            local_windows: 10_000,
        }
    }
}

/// `KEYS`: gen, win. `ARGV`: fresh generation, generation whose window this process holds
/// (or 0), window ttl, touch (1/0), gen ttl.
/// Returns `{generation, window or false, same}`; `same` = 1 when the local copy is current.
const LOOKUP: &str = r"
local g = redis.call('GET', KEYS[1])
if not g then
  redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[5])
  return {ARGV[1], false, 0}
end
if ARGV[4] == '1' then
  redis.call('EXPIRE', KEYS[2], ARGV[3])
  redis.call('EXPIRE', KEYS[1], ARGV[5])
end
if g == ARGV[2] and redis.call('EXISTS', KEYS[2]) == 1 then
  return {g, false, 1}
end
return {g, redis.call('GET', KEYS[2]), 0}
";

/// `KEYS`: gen, win. `ARGV`: generation seen, window bytes, window ttl, gen ttl.
const FILL: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[3])
  redis.call('EXPIRE', KEYS[1], ARGV[4])
  return 1
end
return 0
";

/// `KEYS`: gen, win. `ARGV`: new generation, gen ttl.
const INVALIDATE: &str = r"
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
redis.call('DEL', KEYS[2])
return 1
";

/// Windows in Redis.
pub struct RedisCache {
    connection: Connection,
    config: RedisCacheConfig,
    lookup: Script,
    fill: Script,
    invalidate: Script,
    /// This process's copies, by thread: the generation they belong to and the window. A std
    /// `Mutex` held for a map operation only, never across an await (the crate's lock policy,
    /// `locks`).
    local: Mutex<HashMap<ThreadId, Local>>,
}

/// A window this process holds, the generation it belongs to, and when its keys' lives were
/// last extended.
#[derive(Clone)]
struct Local {
    generation: Generation,
    window: Arc<Window>,
    touched: Instant,
}

pub(crate) fn unavailable(e: impl Into<crate::error::BoxError>) -> Error {
    Error::unavailable("redis", e)
}

fn fresh_generation() -> Generation {
    // 63 bits so the value survives Lua's number handling as a string round trip, and never 0,
    // which means "no local copy".
    (uuid::Uuid::new_v4().as_u64_pair().0 >> 1).max(1)
}

impl RedisCache {
    /// Builds the cache. The connection is opened on first use and re-opened after failures,
    /// so a Redis that is down at start delays nothing: calls fail fast and fall back.
    pub fn new(config: RedisCacheConfig) -> Result<Self> {
        let connection = Connection::open(&config.server, config.timeout)?;
        Ok(RedisCache {
            connection,
            config,
            lookup: Script::new(LOOKUP),
            fill: Script::new(FILL),
            invalidate: Script::new(INVALIDATE),
            local: Mutex::new(HashMap::new()),
        })
    }

    fn keys(&self, thread: ThreadId) -> (String, String) {
        let prefix = &self.config.key_prefix;
        (
            format!("{prefix}:{{{thread}}}:gen"),
            format!("{prefix}:{{{thread}}}:win"),
        )
    }

    fn ttl_secs(&self) -> u64 {
        self.config.lifetime.ttl.as_secs().max(1)
    }

    /// Generations outlive windows, so a window is never guarded by a missing generation.
    fn gen_ttl_secs(&self) -> u64 {
        (self.ttl_secs() * 4).max(3_600)
    }

    async fn bounded<T>(&self, f: impl Future<Output = redis::RedisResult<T>>) -> Result<T> {
        match tokio::time::timeout(self.config.timeout, f).await {
            Ok(result) => result.map_err(unavailable),
            Err(_) => Err(unavailable("timed out")),
        }
    }

    fn remember(&self, thread: ThreadId, generation: Generation, window: &Arc<Window>) {
        let mut local = locks::lock(&self.local);
        if local.len() >= self.config.local_windows && !local.contains_key(&thread) {
            // Full: forget an arbitrary copy; a miss costs one window transfer.
            if let Some(evict) = local.keys().next().copied() {
                local.remove(&evict);
            }
        }
        local.insert(
            thread,
            Local {
                generation,
                window: Arc::clone(window),
                touched: Instant::now(),
            },
        );
    }

    /// The hit path when this process holds a copy: one `GET` of the generation (a few bytes),
    /// plus, at most every quarter of the TTL, the `EXPIRE`s that keep a read window alive.
    /// `None` when the copy is stale (or the window's key is due a touch and is gone), so the
    /// caller runs the full lookup.
    async fn lookup_local(&self, thread: ThreadId, copy: &Local) -> Result<Option<Lookup>> {
        let (gen_key, win_key) = self.keys(thread);
        let mut connection = self.connection.clone();
        let touch_due = self.config.lifetime.touch_on_hit
            && copy.touched.elapsed() > self.config.lifetime.ttl / 4;
        let current: Option<String> = if touch_due {
            let (current, window_alive, _): (Option<String>, i64, i64) = self
                .bounded(
                    redis::pipe()
                        .get(&gen_key)
                        .expire(&win_key, self.ttl_secs() as i64)
                        .expire(&gen_key, self.gen_ttl_secs() as i64)
                        .query_async(&mut connection),
                )
                .await?;
            if window_alive == 0 {
                return Ok(None);
            }
            if let Some(entry) = locks::lock(&self.local).get_mut(&thread) {
                entry.touched = Instant::now();
            }
            current
        } else {
            self.bounded(redis::cmd("GET").arg(&gen_key).query_async(&mut connection))
                .await?
        };
        match current.and_then(|g| g.parse::<Generation>().ok()) {
            Some(g) if g == copy.generation => Ok(Some(Lookup {
                window: Some(Arc::clone(&copy.window)),
                generation: g,
            })),
            _ => Ok(None),
        }
    }
}

fn parse_generation(value: &Value) -> Result<Generation> {
    let raw = match value {
        Value::BulkString(b) => std::str::from_utf8(b).map_err(unavailable)?.to_owned(),
        Value::SimpleString(s) => s.clone(),
        Value::Int(i) => i.to_string(),
        other => return Err(unavailable(format!("unexpected generation {other:?}"))),
    };
    raw.parse().map_err(unavailable)
}

#[async_trait]
impl PageCache for RedisCache {
    async fn lookup(&self, thread: ThreadId) -> Result<Lookup> {
        let local = locks::lock(&self.local).get(&thread).cloned();
        if let Some(copy) = &local
            && let Some(hit) = self.lookup_local(thread, copy).await?
        {
            return Ok(hit);
        }
        let (gen_key, win_key) = self.keys(thread);
        let known = local.as_ref().map_or(0, |c| c.generation);
        let mut connection = self.connection.clone();
        let reply: Vec<Value> = self
            .bounded(
                self.lookup
                    .key(&gen_key)
                    .key(&win_key)
                    .arg(fresh_generation())
                    .arg(known)
                    .arg(self.ttl_secs())
                    .arg(u8::from(self.config.lifetime.touch_on_hit))
                    .arg(self.gen_ttl_secs())
                    .invoke_async(&mut connection),
            )
            .await?;
        let [generation, window, same] = reply.as_slice() else {
            return Err(unavailable("unexpected lookup reply"));
        };
        let generation = parse_generation(generation)?;
        if matches!(same, Value::Int(1)) {
            return Ok(Lookup {
                window: local.map(|c| c.window),
                generation,
            });
        }
        let window = match window {
            Value::BulkString(bytes) => {
                match window_from_bytes(&Bytes::copy_from_slice(bytes)) {
                    Some(w) => {
                        let w = Arc::new(w);
                        self.remember(thread, generation, &w);
                        Some(w)
                    }
                    // Unreadable (another version wrote it): treat as a miss and refill.
                    None => None,
                }
            }
            _ => None,
        };
        Ok(Lookup { window, generation })
    }

    async fn fill(&self, thread: ThreadId, seen: Generation, window: Arc<Window>) -> Result<bool> {
        let (gen_key, win_key) = self.keys(thread);
        let mut connection = self.connection.clone();
        let stored: i64 = self
            .bounded(
                self.fill
                    .key(&gen_key)
                    .key(&win_key)
                    .arg(seen)
                    .arg(window_to_bytes(&window))
                    .arg(self.ttl_secs())
                    .arg(self.gen_ttl_secs())
                    .invoke_async(&mut connection),
            )
            .await?;
        if stored == 1 {
            self.remember(thread, seen, &window);
        }
        Ok(stored == 1)
    }

    async fn invalidate(&self, thread: ThreadId) -> Result<()> {
        locks::lock(&self.local).remove(&thread);
        let (gen_key, win_key) = self.keys(thread);
        let mut connection = self.connection.clone();
        let _: i64 = self
            .bounded(
                self.invalidate
                    .key(&gen_key)
                    .key(&win_key)
                    .arg(fresh_generation())
                    .arg(self.gen_ttl_secs())
                    .invoke_async(&mut connection),
            )
            .await?;
        Ok(())
    }

    async fn ping(&self) -> Result<()> {
        let mut connection = self.connection.clone();
        let _: String = self
            .bounded(redis::cmd("PING").query_async(&mut connection))
            .await?;
        Ok(())
    }
}
/// A window as Redis keeps it: a format byte (which carries `has_more`), the position, the
/// item count, each item's end offset and cursor, then the joined items.
fn window_to_bytes(window: &Window) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + window.len() * ENTRY + window.joined.len());
    out.push(FORMAT | u8::from(window.has_more));
    out.extend_from_slice(&window.rev.to_be_bytes());
    out.extend_from_slice(&(window.len() as u32).to_be_bytes());
    for (end, cursor) in window.ends.iter().zip(&window.cursors) {
        out.extend_from_slice(&end.to_be_bytes());
        out.extend_from_slice(cursor);
    }
    out.extend_from_slice(&window.joined);
    out
}

/// Reads what [`window_to_bytes`] wrote; `None` for anything else, including a window an
/// older version of this service wrote (a miss: the reader refills it).
fn window_from_bytes(bytes: &Bytes) -> Option<Window> {
    let has_more = match *bytes.first()? {
        b if b == FORMAT => false,
        b if b == FORMAT | 1 => true,
        _ => return None,
    };
    let rev = i64::from_be_bytes(bytes.get(1..9)?.try_into().ok()?);
    let count = u32::from_be_bytes(bytes.get(9..HEADER)?.try_into().ok()?) as usize;
    let table_end = HEADER.checked_add(count.checked_mul(ENTRY)?)?;
    let table = bytes.get(HEADER..table_end)?;
    let joined = bytes.slice(table_end..);
    let mut ends = Vec::with_capacity(count);
    let mut cursors = Vec::with_capacity(count);
    let mut previous = 0u32;
    for entry in table.chunks_exact(ENTRY) {
        let end = u32::from_be_bytes(entry[..4].try_into().ok()?);
        if end < previous || end as usize > joined.len() {
            return None;
        }
        previous = end;
        ends.push(end);
        // Only a cursor that decodes is kept: the bytes go into responses as they are.
        let cursor = Cursor::decode(std::str::from_utf8(&entry[4..]).ok()?).ok()?;
        cursors.push(cursor.encoded());
    }
    if ends.last().map_or(0, |&e| e as usize) != joined.len() {
        return None;
    }
    Some(Window {
        joined,
        closes: Closes::new(ends.len()),
        ends,
        cursors,
        has_more,
        rev,
    })
}

/// The format byte of [`window_to_bytes`], with `has_more` in its low bit. Windows written
/// before the sequence began with 0 or 1.
const FORMAT: u8 = 0x20;
/// Format byte, position, count.
const HEADER: usize = 1 + 8 + 4;
/// End offset and cursor of one item.
const ENTRY: usize = 4 + std::mem::size_of::<EncodedCursor>();

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;
    use crate::cache::window::tests::page;

    proptest! {
        /// Every window survives Redis's format whole.
        #[test]
        fn every_window_round_trips(n in 0usize..60, has_more: bool) {
            let window = Window::from_page(&page(n, has_more));
            let bytes = Bytes::from(window_to_bytes(&window));
            prop_assert_eq!(window_from_bytes(&bytes), Some(window));
        }

        /// Whatever Redis hands back (another version's value, a truncated or altered one)
        /// is read as a window or refused, never a panic; one it accepts is exactly the bytes
        /// that window writes, so a response never carries bytes the service did not make.
        #[test]
        fn any_bytes_are_a_window_or_a_miss(
            n in 0usize..8,
            has_more: bool,
            cut in 0usize..4_000,
            flips in proptest::collection::vec((0usize..4_000, any::<u8>()), 0..4),
            noise in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let mut bytes = window_to_bytes(&Window::from_page(&page(n, has_more)));
            bytes.truncate(cut.min(bytes.len()));
            for (at, value) in flips {
                if let Some(b) = bytes.get_mut(at) {
                    *b = value;
                }
            }
            for candidate in [Bytes::from(bytes), Bytes::from(noise)] {
                if let Some(window) = window_from_bytes(&candidate) {
                    prop_assert_eq!(Bytes::from(window_to_bytes(&window)), candidate);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::window::tests::page;

    #[test]
    fn window_bytes_round_trip_and_reject_garbage() {
        let window = Window::from_page(&page(7, true));
        let bytes = Bytes::from(window_to_bytes(&window));
        assert_eq!(window_from_bytes(&bytes), Some(window.clone()));
        assert_eq!(
            window_from_bytes(&Bytes::from(window_to_bytes(&Window::from_page(&page(
                0, false
            )))))
            .map(|w| w.len()),
            Some(0)
        );
        for cut in [0, 1, 4, 5, 40, bytes.len() - 1] {
            assert_eq!(window_from_bytes(&bytes.slice(..cut)), None, "cut at {cut}");
        }
        let back = window_from_bytes(&bytes).unwrap();
        assert_eq!(back.rev(), 1_234, "the position survives the round trip");
        let mut bad = bytes.to_vec();
        bad[0] = 7;
        assert_eq!(window_from_bytes(&Bytes::from(bad)), None);
        // A window in the format from before the sequence (first byte 0 or 1) is a miss.
        let mut old = bytes.to_vec();
        old[0] = 1;
        assert_eq!(window_from_bytes(&Bytes::from(old)), None);
    }
}
