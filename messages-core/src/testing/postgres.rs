//! Throwaway PostgreSQL schemas: each test gets a schema of its own in one shared test
//! database, dropped when the handle drops.
//!
//! A schema, not a database per test: `DROP DATABASE` forces a checkpoint, and with a test
//! binary creating and dropping dozens of databases those checkpoints stalled other tests'
//! queries past their timeouts. `DROP SCHEMA ... CASCADE` forces nothing. The test database
//! (`messages_test` on the server `DATABASE_URL` names) is created once and kept; `.ci/run`
//! recreates it at the start of each run.

use std::net::SocketAddr;
use std::sync::OnceLock;

use tokio_postgres::NoTls;
use tokio_postgres::config::Host;
use tokio_postgres::error::SqlState;

use crate::storage::Schema;
use crate::storage::postgres::{PostgresConfig, PostgresStore};

/// The database every test schema lives in.
pub const TEST_DATABASE: &str = "messages_test";

/// A schema created for one test and dropped afterwards.
pub struct TestDatabase {
    config: tokio_postgres::Config,
    schema: String,
    url: String,
}

/// Replaces the database name in a `postgres://` URL, keeping its query (`?sslmode=...`).
/// The one place the tests rewrite a URL.
pub fn with_dbname(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let host_part = match base[scheme_end..].find('/') {
        Some(i) => &base[..scheme_end + i],
        None => base,
    };
    match query {
        Some(q) => format!("{host_part}/{name}?{q}"),
        None => format!("{host_part}/{name}"),
    }
}

/// Appends a query parameter to a URL.
fn with_param(url: &str, param: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}{param}")
}

async fn connect(url: &str) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await?;
    tokio::spawn(connection);
    Ok(client)
}

/// Creates the test database unless it exists (once per process).
async fn ensure_test_database(admin_url: &str) -> Result<(), tokio_postgres::Error> {
    static DONE: OnceLock<()> = OnceLock::new();
    if DONE.get().is_some() {
        return Ok(());
    }
    let admin = connect(admin_url).await?;
    let exists = admin
        .query_opt(
            "SELECT 1 FROM pg_database WHERE datname = $1",
            &[&TEST_DATABASE],
        )
        .await?
        .is_some();
    if exists {
        let _ = DONE.set(());
        return Ok(());
    }
    match admin
        .batch_execute(&format!("CREATE DATABASE {TEST_DATABASE}"))
        .await
    {
        Ok(()) => {}
        // Already there, or another test binary made it a moment ago.
        Err(e)
            if e.code() == Some(&SqlState::DUPLICATE_DATABASE)
                || e.code() == Some(&SqlState::UNIQUE_VIOLATION) => {}
        Err(e) => return Err(e),
    }
    let _ = DONE.set(());
    Ok(())
}

impl TestDatabase {
    /// Creates a fresh schema in the test database on the server `DATABASE_URL` names (a
    /// `postgres://` URL of a role that may create databases). `None` means skip; see
    /// [`super::backend_url`].
    pub async fn create() -> Option<TestDatabase> {
        let admin_url = super::backend_url("DATABASE_URL")?;
        if let Err(e) = ensure_test_database(&admin_url).await {
            super::unreachable("PostgreSQL", e)?;
            return None;
        }
        let base = with_dbname(&admin_url, TEST_DATABASE);
        let schema = format!("test_{}", uuid::Uuid::new_v4().simple());
        let created = async {
            connect(&base)
                .await?
                .batch_execute(&format!("CREATE SCHEMA {schema}"))
                .await
        };
        if let Err(e) = created.await {
            super::unreachable("PostgreSQL (CREATE SCHEMA)", e)?;
            return None;
        }
        let url = with_param(&base, &format!("options=-csearch_path%3D{schema}"));
        let config = url.parse().expect("DATABASE_URL does not parse");
        Some(TestDatabase {
            config,
            schema,
            url,
        })
    }

    /// The URL of the test's schema: the test database, with `search_path` set to it.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The server's address, for a proxy to stand in front of.
    ///
    /// # Panics
    /// When the host does not resolve.
    pub async fn upstream(&self) -> SocketAddr {
        let host = match self.config.get_hosts().first() {
            Some(Host::Tcp(h)) => h.clone(),
            _ => "127.0.0.1".to_owned(),
        };
        let port = self.config.get_ports().first().copied().unwrap_or(5432);
        tokio::net::lookup_host((host.as_str(), port))
            .await
            .expect("resolve DATABASE_URL")
            .next()
            .unwrap_or_else(|| panic!("DATABASE_URL's host has no address"))
    }

    /// The same schema reached through `addr` (a proxy) instead of the server itself.
    pub fn url_through(&self, addr: SocketAddr) -> String {
        let user = self.config.get_user().unwrap_or("postgres");
        let schema = &self.schema;
        format!("postgres://{user}@{addr}/{TEST_DATABASE}?options=-csearch_path%3D{schema}")
    }

    /// A migrated store on the test schema.
    ///
    /// # Panics
    /// When the store cannot be built or migrated.
    pub async fn store(&self) -> PostgresStore {
        let store = PostgresStore::open(&PostgresConfig::new(self.url.clone()))
            .await
            .expect("postgres store");
        store.migrate().await.expect("migrations");
        store
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let url = self.url.clone();
        let schema = self.schema.clone();
        // Dropping runs inside a test's runtime, which cannot be blocked on: use a thread with
        // a runtime of its own.
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                connect(&url)
                    .await
                    .ok()?
                    .batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                    .await
                    .ok()
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(()))) {
            eprintln!("could not drop test schema {}", self.schema);
        }
    }
}

/// The plans of the outbox relay's statements (claim 256 events, acknowledge and release 200
/// positions), as PostgreSQL makes them for the table as it is on `client`'s connection:
/// planned for the values given, as the store's unprepared statements are.
///
/// # Panics
/// When a statement cannot be explained.
pub async fn outbox_plans(client: &tokio_postgres::Client) -> Vec<String> {
    use crate::storage::postgres::{ACK, CLAIM, RELEASE};
    client
        .batch_execute(&format!(
            "SET plan_cache_mode = force_custom_plan;
             PREPARE claim (bigint, float8) AS {CLAIM};
             PREPARE ack (bigint, bigint, bigint[]) AS {ACK};
             PREPARE release (bigint, bigint, bigint[]) AS {RELEASE};"
        ))
        .await
        .expect("prepare the outbox's statements");
    let listed: Vec<String> = (1..=200).map(|p: i64| p.to_string()).collect();
    let positions = format!("'{{{}}}'", listed.join(","));
    let mut plans = Vec::new();
    for execute in [
        "claim(256, 30000)".to_owned(),
        format!("ack(1, 200, {positions})"),
        format!("release(1, 200, {positions})"),
    ] {
        let rows = client
            .query(&format!("EXPLAIN EXECUTE {execute}"), &[])
            .await
            .expect("explain");
        plans.push(
            rows.iter()
                .map(|row| row.get::<_, String>(0))
                .collect::<Vec<_>>()
                .join("\n"),
        );
    }
    plans
}

#[cfg(test)]
mod tests {
    use super::{with_dbname, with_param};

    #[test]
    fn replaces_the_database_name() {
        assert_eq!(
            with_dbname("postgres://u@h:5432/postgres", "x"),
            "postgres://u@h:5432/x"
        );
        assert_eq!(
            with_dbname("postgres://u@h/db?sslmode=disable", "x"),
            "postgres://u@h/x?sslmode=disable"
        );
        assert_eq!(with_dbname("postgres://u@h", "x"), "postgres://u@h/x");
        assert_eq!(with_param("postgres://h/x", "a=b"), "postgres://h/x?a=b");
        assert_eq!(
            with_param("postgres://h/x?sslmode=disable", "a=b"),
            "postgres://h/x?sslmode=disable&a=b"
        );
    }
}
