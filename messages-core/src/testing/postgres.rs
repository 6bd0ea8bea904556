//! Throwaway PostgreSQL databases: each test gets its own, dropped when the handle drops.

use crate::storage::postgres::{PostgresConfig, PostgresStore};

/// A database created for one test and dropped (with `FORCE`) afterwards.
pub struct TestDatabase {
    admin_url: String,
    name: String,
    url: String,
}

/// Replaces the database name in a `postgres://` URL.
fn with_dbname(url: &str, name: &str) -> String {
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

impl TestDatabase {
    /// Creates a fresh database on the server `DATABASE_URL` names (a `postgres://` URL of a
    /// role that may create databases). `None` means skip; see [`super::backend_url`].
    pub async fn create() -> Option<TestDatabase> {
        let admin_url = super::backend_url("DATABASE_URL")?;
        let name = format!("messages_test_{}", uuid::Uuid::new_v4().simple());
        let (client, connection) =
            match tokio_postgres::connect(&admin_url, tokio_postgres::NoTls).await {
                Ok(c) => c,
                Err(e) => {
                    super::unreachable("PostgreSQL", e)?;
                    return None;
                }
            };
        tokio::spawn(connection);
        if let Err(e) = client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
        {
            super::unreachable("PostgreSQL (CREATE DATABASE)", e)?;
            return None;
        }
        let url = with_dbname(&admin_url, &name);
        Some(TestDatabase {
            admin_url,
            name,
            url,
        })
    }

    /// The URL of the test database.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A migrated store on the test database.
    ///
    /// # Panics
    /// When the store cannot be built or migrated.
    pub async fn store(&self) -> PostgresStore {
        let store = PostgresStore::new(&PostgresConfig::new(self.url.clone()))
            .unwrap_or_else(|e| panic!("postgres store: {e}"));
        store
            .migrate()
            .await
            .unwrap_or_else(|e| panic!("migrations: {e:?}"));
        store
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        // Dropping runs inside a test's runtime, which cannot be blocked on: use a thread with
        // a runtime of its own.
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                let (client, connection) =
                    tokio_postgres::connect(&admin_url, tokio_postgres::NoTls)
                        .await
                        .ok()?;
                tokio::spawn(connection);
                client
                    .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await
                    .ok()
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(()))) {
            eprintln!("could not drop test database {}", self.name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::with_dbname;

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
    }
}
