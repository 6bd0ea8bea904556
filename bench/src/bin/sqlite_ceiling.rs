//! The SQLite ceiling: the SQLite store's create, statement for statement, through rusqlite
//! alone in a loop on one thread: the thread's counter bumped, the message and its event
//! inserted, the author's read position moved to their message, committed. `sqlite_ceiling <dir> <seconds> [per-commit]` prints creates a second.
//!
//! The file is made by the store itself (its schema and settings: WAL, `synchronous = FULL`),
//! so the loop writes exactly what the server writes, less everything around it. With
//! `per-commit` > 1 the loop commits that many creates together, as the store's writer does
//! when writes queue up.

use std::time::{Duration, Instant};

use anyhow::Context;
use messages_core::events::codec;
use messages_core::storage::Schema;
use messages_core::storage::sqlite::{SqliteConfig, SqliteStore};
use rusqlite::{Connection, params};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: sqlite_ceiling <dir> <seconds> [per-commit]";
    let dir = std::path::PathBuf::from(args.next().context(usage)?);
    let seconds: u64 = args.next().context(usage)?.parse()?;
    let per_commit: u64 = args.next().map_or(Ok(1), |n| n.parse())?.max(1);
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("ceiling.db");
    let config = SqliteConfig::new(&path);
    // The store's own schema, applied once; the loop below writes through rusqlite alone.
    tokio::runtime::Runtime::new()?
        .block_on(async {
            let store = SqliteStore::open(&config).await?;
            store.migrate().await.map(drop)
        })
        .map_err(|e| anyhow::anyhow!("{e}"))?;

    let conn = Connection::open(&path)?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    let template = messages_bench::messages(1).remove(0);
    let paths = serde_json::to_string(&template.paths)?;
    let mut bump = conn.prepare(
        "INSERT INTO threads (thread_id, head) VALUES (?1, 1) \
         ON CONFLICT (thread_id) DO UPDATE SET head = head + 1 RETURNING head",
    )?;
    let mut insert = conn.prepare(
        "INSERT INTO messages (thread_id, seq, id, user_id, kind, content, paths, \
         created_at, updated_at, rev, idempotency_key, request_hash) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8, ?2, ?9, ?10)",
    )?;
    let mut event = conn.prepare(
        "INSERT INTO outbox (id, kind, thread_id, time, sequence, payload) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    let mut read = conn.prepare(
        "INSERT INTO read_positions (thread_id, user_id, seq) \
         VALUES (?1, ?2, max(0, min(?3, coalesce((SELECT head FROM threads WHERE thread_id = ?1), 0)))) \
         ON CONFLICT (thread_id, user_id) DO UPDATE SET \
         seq = CASE WHEN ?4 THEN excluded.seq ELSE max(seq, excluded.seq) END",
    )?;
    let threads: Vec<uuid::Uuid> = (1..=100u128)
        .map(|i| uuid::Uuid::from_u128(0x0193_a1a0_0000_7000_8000_0000_0000_0000 + i))
        .collect();
    let until = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut done = 0u64;
    while Instant::now() < until {
        conn.execute_batch("BEGIN IMMEDIATE")?;
        for _ in 0..per_commit {
            let thread = threads[(done % 100) as usize];
            let id = uuid::Uuid::now_v7();
            let seq: i64 = bump.query_row([thread], |row| row.get(0))?;
            insert.execute(params![
                thread,
                seq,
                id,
                template.user_id.as_uuid(),
                template.kind.as_str(),
                template.content,
                paths,
                template.created_at.as_micros(),
                Option::<&str>::None,
                Option::<&[u8]>::None,
            ])?;
            let e = codec::created(&template);
            event.execute(params![
                uuid::Uuid::now_v7(),
                e.kind,
                thread,
                e.time.as_micros(),
                seq,
                e.payload(seq, seq),
            ])?;
            read.execute(params![thread, template.user_id.as_uuid(), seq, false])?;
            done += 1;
        }
        conn.execute_batch("COMMIT")?;
    }
    let rate = done as f64 / started.elapsed().as_secs_f64();
    println!("{rate:.0} creates/s ({done} in {seconds} s, {per_commit} per commit)");
    Ok(())
}
