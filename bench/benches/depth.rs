//! Depth does not cost: in a thread of 1,000,000 messages on PostgreSQL, the newest page and a
//! page 900,000 deep (limit 50), both through the store's own statement. Prints both plans.
//! Needs `DATABASE_URL` (a role that may create databases); it keeps its data in the database
//! `messages_bench_depth` between runs.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use messages_core::storage::PageStore;
use messages_core::storage::Schema;
use messages_core::storage::postgres::{PostgresConfig, PostgresStore};
use messages_core::{PageQuery, PageSize, ThreadId};

const ROWS: i64 = 1_000_000;
const DEPTH: i64 = 900_000;
const DB: &str = "messages_bench_depth";

async fn prepare(admin: &str) -> anyhow::Result<(PostgresStore, ThreadId, i64)> {
    let (client, connection) = tokio_postgres::connect(admin, tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    let exists = client
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&DB])
        .await?
        .is_some();
    if !exists {
        client
            .batch_execute(&format!("CREATE DATABASE {DB}"))
            .await?;
    }
    let url = messages_core::testing::postgres::with_dbname(admin, DB);
    let store = PostgresStore::open(&PostgresConfig::new(url.clone())).await?;
    store.migrate().await?;
    let thread = ThreadId::from_uuid(uuid::Uuid::from_u128(
        0x0193_a1a0_0000_7000_8000_0000_00de_e900,
    ));
    let (db, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    let count: i64 = db
        .query_one(
            "SELECT count(*) FROM messages WHERE thread_id = $1",
            &[thread.as_uuid()],
        )
        .await?
        .get(0);
    if count < ROWS {
        eprintln!("depth: inserting {ROWS} messages (once; kept in {DB})");
        db.execute(
            "DELETE FROM messages WHERE thread_id = $1",
            &[thread.as_uuid()],
        )
        .await?;
        db.execute(
            "INSERT INTO messages (thread_id, id, user_id, kind, content, paths, created_at, \
                                   updated_at, seq, rev) \
             SELECT $1, gen_random_uuid(), $1, 'text', 'message ' || g, '{}', ts, ts, g, g \
             FROM (SELECT g, timestamptz '2026-01-01' + g * interval '1 millisecond' AS ts \
                   FROM generate_series(1, $2::bigint) g) s",
            &[thread.as_uuid(), &ROWS],
        )
        .await?;
        db.execute(
            "INSERT INTO threads (thread_id, head) VALUES ($1, $2) \
             ON CONFLICT (thread_id) DO UPDATE SET head = EXCLUDED.head",
            &[thread.as_uuid(), &ROWS],
        )
        .await?;
        // A few deleted rows in between, as a live thread has.
        db.execute(
            "UPDATE messages SET deleted_at = now() WHERE thread_id = $1 AND content LIKE '%77'",
            &[thread.as_uuid()],
        )
        .await?;
        db.batch_execute("VACUUM ANALYZE messages").await?;
    }
    let deep: i64 = db
        .query_one(
            "SELECT seq FROM messages WHERE thread_id = $1 AND deleted_at IS NULL \
             ORDER BY seq DESC OFFSET $2 LIMIT 1",
            &[thread.as_uuid(), &DEPTH],
        )
        .await?
        .get(0);
    Ok((store, thread, deep))
}

fn depth(c: &mut Criterion) {
    let Ok(admin) = std::env::var("DATABASE_URL") else {
        eprintln!("depth: skipped, DATABASE_URL is not set");
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let (store, thread, deep) = rt
        .block_on(prepare(&admin))
        .unwrap_or_else(|e| panic!("depth setup: {e:#}"));
    let size = PageSize::DEFAULT;
    for (name, query) in [
        ("newest page", PageQuery::Newest),
        ("900,000 deep", PageQuery::Before(deep)),
    ] {
        let plan = rt
            .block_on(store.explain_page(thread, query, size))
            .unwrap_or_else(|e| panic!("explain: {e}"));
        eprintln!("plan, {name}:\n  {}", plan.join("\n  "));
    }
    let mut group = c.benchmark_group("depth");
    group.throughput(Throughput::Elements(50));
    group.bench_function("postgres newest page (50 of 1,000,000)", |b| {
        b.to_async(&rt)
            .iter(|| store.page(thread, PageQuery::Newest, size))
    });
    group.bench_function("postgres page 900,000 deep (50)", |b| {
        b.to_async(&rt)
            .iter(|| store.page(thread, PageQuery::Before(deep), size))
    });
    group.finish();
}

criterion_group!(benches, depth);
criterion_main!(benches);
