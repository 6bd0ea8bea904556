//! Choosing and opening the backends the configuration names: the store (with what it must do
//! at stop), the cache and the event publisher. Every failure names its variable.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use messages_core::cache::PageCache;
use messages_core::cache::memory::MemoryCache;
use messages_core::cache::redis::RedisCache;
use messages_core::events::Publisher;
use messages_core::events::amqp::AmqpPublisher;
use messages_core::events::memory::MemorySink;
use messages_core::storage::memory::MemoryStore;
use messages_core::storage::postgres::PostgresStore;
use messages_core::storage::sqlite::SqliteStore;
use messages_core::storage::{MessageStore, Schema};
use tokio::time::Instant;

use crate::config::{Config, DatabaseSettings, SqliteSettings, StoreSettings};
use crate::error::error_chain;

/// The open store, whichever it is: the store, the pool status for metrics when it has a
/// pool, and what its backend must do at stop. The lifecycle code calls [`Storage::close`]
/// and never asks which backend it has.
pub struct Storage {
    /// The store: messages and their outbox.
    pub store: Arc<dyn MessageStore>,
    /// PostgreSQL's pool, for metrics.
    pub pool: Option<crate::metrics::PoolStatus>,
    at_stop: AtStop,
}

/// What a backend does when the application stops.
enum AtStop {
    Nothing,
    /// Stop the writer and checkpoint the write-ahead log into the file, then release the
    /// data directory, whose lock is held while the store is open so no other process opens
    /// it.
    Sqlite {
        store: SqliteStore,
        _lock: std::fs::File,
    },
}

impl Storage {
    fn of<S: MessageStore>(store: S) -> Self {
        Storage {
            store: Arc::new(store),
            pool: None,
            at_stop: AtStop::Nothing,
        }
    }

    /// The last step of a stop, after requests and the relay are done. On SQLite: stop the
    /// writer and checkpoint, so that the database file alone holds every write (a copy of it
    /// after a clean stop is a complete backup), then release the directory.
    pub async fn close(self) {
        let AtStop::Sqlite { store, _lock } = self.at_stop else {
            return;
        };
        match store.close().await {
            Ok(true) => tracing::info!(
                "SQLite: write-ahead log checkpointed; the database file holds every write"
            ),
            Ok(false) => tracing::warn!(
                "SQLite: checkpoint incomplete (a read was running); the write-ahead log keeps the rest"
            ),
            Err(error) => tracing::warn!(
                error = %error_chain(&error),
                "SQLite: checkpoint failed; the write-ahead log keeps the writes"
            ),
        }
    }
}

/// Opens the store the configuration names, migrated (PostgreSQL: when `MIGRATE_ON_START`).
pub async fn storage(config: &Config) -> anyhow::Result<Storage> {
    match &config.store {
        StoreSettings::Postgres(db) => {
            let store = connect_postgres(db, db.migrate_on_start).await?;
            tracing::info!(
                pool_size = db.postgres.pool_size,
                group_max = db.postgres.group_max,
                group_lanes = db.postgres.group_lanes,
                "storage: PostgreSQL"
            );
            let status = store.clone();
            let mut storage = Storage::of(store);
            storage.pool = Some(Box::new(move || {
                let s = status.pool_status();
                (s.size, s.available, s.waiting)
            }));
            Ok(storage)
        }
        StoreSettings::Sqlite(settings) => {
            let (store, lock) = open_sqlite(settings).await?;
            tracing::info!(
                file = %settings.sqlite.path.display(),
                synchronous = ?settings.sqlite.synchronous,
                "storage: SQLite"
            );
            let mut storage = Storage::of(store.clone());
            storage.at_stop = AtStop::Sqlite { store, _lock: lock };
            Ok(storage)
        }
        StoreSettings::Memory => {
            tracing::info!("storage: in-memory (data is lost when the process exits)");
            Ok(Storage::of(MemoryStore::new()))
        }
    }
}

/// Creates the data directory if needed, checks that it can be written, takes its lock (one
/// process per directory), and opens the store in it, applying its migrations. Every failure
/// names the directory and `DATA_DIR`.
pub async fn open_sqlite(
    settings: &SqliteSettings,
) -> anyhow::Result<(SqliteStore, std::fs::File)> {
    let dir = settings.data_dir.clone();
    let lock = tokio::task::spawn_blocking(move || {
        let dir = &dir;
        std::fs::create_dir_all(dir).with_context(|| {
            format!(
                "cannot create the data directory {} (DATA_DIR)",
                dir.display()
            )
        })?;
        let probe = dir.join(".write-check");
        std::fs::write(&probe, b"ok")
            .and_then(|()| std::fs::remove_file(&probe))
            .with_context(|| {
                format!(
                    "cannot write in the data directory {} (DATA_DIR)",
                    dir.display()
                )
            })?;
        let lock_path = dir.join("messages.lock");
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .with_context(|| format!("cannot open {} (DATA_DIR)", lock_path.display()))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => anyhow::bail!(
                "the data directory {} is in use by another messages-server process (DATA_DIR): \
                 give each process a directory of its own, or share PostgreSQL between replicas",
                dir.display()
            ),
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(e)
                    .with_context(|| format!("cannot lock {} (DATA_DIR)", lock_path.display()));
            }
        }
        Ok(lock)
    })
    .await
    .context("preparing the data directory panicked")??;
    let cannot = |e: messages_core::Error| {
        anyhow::anyhow!(
            "cannot open the database {} (DATA_DIR): {}",
            settings.sqlite.path.display(),
            error_chain(&e)
        )
    };
    let store = SqliteStore::open(&settings.sqlite).await.map_err(cannot)?;
    store.migrate().await.map_err(cannot)?;
    Ok((store, lock))
}

/// The cache the configuration names: Redis, or the in-process one.
pub async fn cache(config: &Config) -> anyhow::Result<Arc<dyn PageCache>> {
    Ok(match &config.redis {
        Some(redis) => {
            let cache =
                RedisCache::new(redis.clone()).context("invalid Redis settings (REDIS_URL)")?;
            match cache.ping().await {
                Ok(()) => {
                    tracing::info!(prefix = %redis.key_prefix, redis = %redis.server.describe(), "cache: Redis")
                }
                Err(error) => tracing::warn!(
                    error = %error_chain(&error),
                    "cache: Redis is unreachable; reading the store until it answers"
                ),
            }
            Arc::new(cache)
        }
        None => {
            tracing::info!("cache: in-process");
            Arc::new(MemoryCache::new(config.memory_cache))
        }
    })
}

/// Where events go: RabbitMQ, or the in-process sink (returned too, for tests).
pub fn publisher(config: &Config) -> (Arc<dyn Publisher>, Option<Arc<MemorySink>>) {
    match &config.events.amqp {
        Some(amqp) => {
            if let StoreSettings::Postgres(_) = config.store {
                tracing::info!(exchange = %amqp.exchange, "events: RabbitMQ through the PostgreSQL outbox");
            } else if let StoreSettings::Sqlite(_) = config.store {
                tracing::info!(exchange = %amqp.exchange, "events: RabbitMQ through the SQLite outbox");
            } else {
                tracing::warn!(
                    exchange = %amqp.exchange,
                    "events: RabbitMQ through an in-memory outbox; events not yet delivered are lost if the process exits"
                );
            }
            (Arc::new(AmqpPublisher::new(amqp.clone())), None)
        }
        None => {
            tracing::info!("events: in-process sink");
            let sink = Arc::new(MemorySink::default());
            (Arc::clone(&sink) as Arc<dyn Publisher>, Some(sink))
        }
    }
}

/// Builds the PostgreSQL store and waits until the database answers, retrying with backoff
/// for at most `startup_timeout`; with `migrate`, applies the migrations once it does.
pub async fn connect_postgres(
    db: &DatabaseSettings,
    migrate: bool,
) -> anyhow::Result<PostgresStore> {
    let store = PostgresStore::open(&db.postgres)
        .await
        .context("invalid PostgreSQL settings (DATABASE_URL)")?;
    let deadline = Instant::now() + db.startup_timeout;
    let mut backoff = Duration::from_millis(250);
    let mut attempt = 1u32;
    loop {
        let ready = if migrate {
            store.migrate().await.map(|applied| {
                tracing::info!(applied, "migrations are up to date");
            })
        } else {
            store.ping().await
        };
        match ready {
            Ok(()) => return Ok(store),
            Err(error) if Instant::now() + backoff < deadline => {
                tracing::warn!(
                    attempt,
                    retry_in_ms = backoff.as_millis() as u64,
                    error = %error_chain(&error),
                    "PostgreSQL is not ready"
                );
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
                attempt += 1;
            }
            Err(error) => {
                return Err(anyhow::anyhow!(
                    "PostgreSQL did not become ready within {}s ({} attempts): {}",
                    db.startup_timeout.as_secs(),
                    attempt,
                    error_chain(&error)
                ));
            }
        }
    }
}
