//! `StoreSettings`: where messages and their events are kept: SQLite in a data directory (the
//! default), PostgreSQL, or memory.

use std::path::PathBuf;
use std::time::Duration;

use messages_core::storage::postgres::PostgresConfig;
use messages_core::storage::sqlite::{SqliteConfig, Synchronous};

use super::env::{Choice, ConfigError, Env, quote_conninfo};

/// Where messages and their events are kept (`STORE`).
#[derive(Clone, Debug)]
pub enum StoreSettings {
    /// A SQLite file in a data directory: the default without PostgreSQL (`STORE=sqlite`).
    Sqlite(SqliteSettings),
    /// Process memory, lost at exit: for tests and benchmarks (`STORE=memory`).
    Memory,
    /// PostgreSQL: the default when `DATABASE_URL` or `DB_HOST` is set (`STORE=postgres`).
    Postgres(DatabaseSettings),
}

/// The embedded store.
#[derive(Clone, Debug)]
pub struct SqliteSettings {
    /// The directory of the data (`DATA_DIR`), created at start when missing. The database
    /// is `messages.db` in it.
    pub data_dir: PathBuf,
    /// The store's settings: its file, `SQLITE_SYNCHRONOUS`, `SQLITE_MAX_SIZE_MB`, and
    /// `DB_TIMEOUT_MS` for the longest wait of an operation.
    pub sqlite: SqliteConfig,
}

impl SqliteSettings {
    /// Default of `data_dir`.
    pub const DEFAULT_DATA_DIR: &str = "./data";
    /// The database's file name in the data directory.
    pub const FILE_NAME: &str = "messages.db";

    /// The store in `data_dir` with every other setting at its default.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        let data_dir = data_dir.into();
        SqliteSettings {
            sqlite: SqliteConfig::new(data_dir.join(Self::FILE_NAME)),
            data_dir,
        }
    }
}

/// PostgreSQL, present when `DATABASE_URL` or `DB_HOST` is set.
#[derive(Clone, Debug)]
pub struct DatabaseSettings {
    /// The store's settings: the connection string (`DATABASE_URL`, or built from `DB_HOST`,
    /// `DB_PORT`, `DB_USER`, `DB_PASSWORD`, `DB_NAME`), `DB_POOL_SIZE`, `DB_TIMEOUT_MS`,
    /// `DB_GROUP_MAX`, `DB_GROUP_LANES`.
    pub postgres: PostgresConfig,
    /// How long to keep retrying an unreachable database at start
    /// (`DB_STARTUP_TIMEOUT_SECONDS`).
    pub startup_timeout: Duration,
    /// Whether `serve` applies migrations before listening (`MIGRATE_ON_START`).
    pub migrate_on_start: bool,
}

impl DatabaseSettings {
    /// Default of `startup_timeout`.
    pub const DEFAULT_STARTUP_TIMEOUT: Duration = Duration::from_secs(60);
    /// Default of `migrate_on_start`.
    pub const DEFAULT_MIGRATE_ON_START: bool = true;

    /// PostgreSQL at `url` with every other setting at its default.
    pub fn new(url: impl Into<String>) -> Self {
        DatabaseSettings {
            postgres: PostgresConfig::new(url),
            startup_timeout: Self::DEFAULT_STARTUP_TIMEOUT,
            migrate_on_start: Self::DEFAULT_MIGRATE_ON_START,
        }
    }
}

/// `STORE`: PostgreSQL when it is configured, else SQLite in `DATA_DIR`; `memory` on request.
impl StoreSettings {
    /// Reads `STORE` and the chosen store's variables.
    pub(super) fn from_env<F: Fn(&str) -> Option<String>>(
        env: &Env<F>,
    ) -> Result<Self, ConfigError> {
        let postgres = database(env)?;
        match (env.choice("STORE", StoreKind::Auto)?, postgres) {
            (StoreKind::Auto | StoreKind::Postgres, Some(db)) => Ok(StoreSettings::Postgres(db)),
            (StoreKind::Postgres, None) => Err(ConfigError {
                var: "STORE",
                reason: "STORE=postgres needs DATABASE_URL (or DB_HOST)".into(),
            }),
            (other, Some(_)) => Err(ConfigError {
                var: "STORE",
                reason: format!(
                    "STORE={}, but DATABASE_URL (or DB_HOST) names a PostgreSQL database: unset one",
                    other.name()
                ),
            }),
            (StoreKind::Memory, None) => Ok(StoreSettings::Memory),
            (StoreKind::Auto | StoreKind::Sqlite, None) => {
                let dir = env.text("DATA_DIR", SqliteSettings::DEFAULT_DATA_DIR);
                let mut settings = SqliteSettings::new(dir);
                let sqlite = &mut settings.sqlite;
                sqlite.synchronous = env.choice("SQLITE_SYNCHRONOUS", sqlite.synchronous)?;
                sqlite.operation_timeout =
                    env.millis("DB_TIMEOUT_MS", sqlite.operation_timeout, 10, 600_000)?;
                if env.get("SQLITE_MAX_SIZE_MB").is_some() {
                    let mb = env.range("SQLITE_MAX_SIZE_MB", 0, 1, 16 << 20)?;
                    sqlite.max_size = Some(mb << 20);
                }
                Ok(StoreSettings::Sqlite(settings))
            }
        }
    }
}

/// `STORE`'s names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum StoreKind {
    /// PostgreSQL when it is configured, else SQLite: the default.
    Auto,
    Sqlite,
    Memory,
    Postgres,
}

impl Choice for StoreKind {
    const ALL: &'static [Self] = &[
        StoreKind::Auto,
        StoreKind::Sqlite,
        StoreKind::Memory,
        StoreKind::Postgres,
    ];

    fn name(self) -> &'static str {
        match self {
            StoreKind::Auto => "auto",
            StoreKind::Sqlite => "sqlite",
            StoreKind::Memory => "memory",
            StoreKind::Postgres => "postgres",
        }
    }
}

impl Choice for Synchronous {
    const ALL: &'static [Self] = &[Synchronous::Full, Synchronous::Normal];

    fn name(self) -> &'static str {
        match self {
            Synchronous::Full => "full",
            Synchronous::Normal => "normal",
        }
    }
}

fn database<F: Fn(&str) -> Option<String>>(
    env: &Env<F>,
) -> Result<Option<DatabaseSettings>, ConfigError> {
    let url = match (env.get("DATABASE_URL"), env.get("DB_HOST")) {
        (Some(url), _) => {
            if let Err(messages_core::Error::Invalid { reason, .. }) =
                PostgresConfig::new(url.clone()).check()
            {
                return Err(ConfigError {
                    var: "DATABASE_URL",
                    reason: format!("not a PostgreSQL connection string ({reason})"),
                });
            }
            url
        }
        (None, Some(host)) => {
            let port = env.range("DB_PORT", 5432, 1, 65_535)?;
            let mut parts = vec![
                format!("host={}", quote_conninfo(&host)),
                format!("port={port}"),
            ];
            for (var, key) in [
                ("DB_USER", "user"),
                ("DB_PASSWORD", "password"),
                ("DB_NAME", "dbname"),
            ] {
                if let Some(value) = env.get(var) {
                    parts.push(format!("{key}={}", quote_conninfo(&value)));
                }
            }
            parts.join(" ")
        }
        (None, None) => return Ok(None),
    };
    let mut postgres = PostgresConfig::new(url);
    postgres.pool_size = env.count("DB_POOL_SIZE", postgres.pool_size, 1, 1_000)?;
    postgres.operation_timeout =
        env.millis("DB_TIMEOUT_MS", postgres.operation_timeout, 10, 600_000)?;
    postgres.group_max = env.count("DB_GROUP_MAX", postgres.group_max, 1, 4_096)?;
    postgres.group_lanes = env.count("DB_GROUP_LANES", postgres.group_lanes, 1, 64)?;
    Ok(Some(DatabaseSettings {
        postgres,
        startup_timeout: env.seconds(
            "DB_STARTUP_TIMEOUT_SECONDS",
            DatabaseSettings::DEFAULT_STARTUP_TIMEOUT,
            0,
            3_600,
        )?,
        migrate_on_start: env.flag(
            "MIGRATE_ON_START",
            DatabaseSettings::DEFAULT_MIGRATE_ON_START,
        )?,
    }))
}
