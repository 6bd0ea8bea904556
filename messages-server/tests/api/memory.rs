//! What the server holds stays within its bounds, whatever clients post: the in-process cache
//! is bounded in bytes, measured on the resident memory of a server process of its own.

use std::sync::Arc;

use serde_json::json;

use crate::helpers::{RemoteClient, free_port, new_id, resident_kib, server_command};

/// 30 threads of 200 messages of about 20 KB (4,000 characters and 16 paths of 1,000) are
/// 120 MB of newest pages; with `CACHE_MAX_MB=16` reading every thread's page grows the server
/// by about the budget (and the 16 MiB of kept encodings), not by the pages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_in_process_cache_stays_within_its_byte_budget() {
    let dir = messages_core::testing::sqlite::TempDir::new();
    let port = free_port();
    let mut child = server_command()
        .env("STORE", "sqlite")
        .env("DATA_DIR", dir.path())
        .env("SQLITE_SYNCHRONOUS", "normal")
        .env("CACHE_MAX_MB", "16")
        .env("BIND_ADDR", format!("127.0.0.1:{port}"))
        .spawn()
        .expect("start the server");
    let client = Arc::new(RemoteClient::new(&format!("127.0.0.1:{port}")).await);
    let threads: Vec<String> = (0..30).map(|_| new_id()).collect();
    let user = new_id();
    let paths: Vec<String> = (0..16)
        .map(|i| format!("{i:02}/{}", "p".repeat(997)))
        .collect();
    let body = json!({"content": "c".repeat(4_000), "type": "file", "paths": paths});
    let mut writers = tokio::task::JoinSet::new();
    for chunk in threads.chunks(5) {
        let (client, chunk, user, body) = (
            Arc::clone(&client),
            chunk.to_vec(),
            user.clone(),
            body.clone(),
        );
        writers.spawn(async move {
            for thread in &chunk {
                for _ in 0..200 {
                    client.post(thread, &user, body.clone()).await;
                }
            }
        });
    }
    while let Some(done) = writers.join_next().await {
        done.expect("a writer");
    }
    // Once, so what every first read allocates (buffers, reader connections) is counted.
    let first = client
        .get_text(&format!("/threads/{}/messages?limit=200", threads[0]))
        .await;
    assert!(
        first.len() > 3_000_000,
        "a page of about 4 MB: {} bytes",
        first.len()
    );
    let before = resident_kib(&child);
    let mut read = 0;
    for thread in &threads {
        read += client
            .get_text(&format!("/threads/{thread}/messages?limit=200"))
            .await
            .len();
    }
    let growth_mib = resident_kib(&child).saturating_sub(before) / 1024;
    eprintln!(
        "read {} MB of pages; resident memory grew by {growth_mib} MiB",
        read / 1_000_000
    );
    let _ = child.kill();
    let _ = child.wait();
    assert!(read > 100_000_000, "read {read} bytes of pages");
    assert!(
        growth_mib < 16 + 16 + 24,
        "reading {} MB of pages grew the server by {growth_mib} MiB with a 16 MiB cache",
        read / 1_000_000
    );
}
