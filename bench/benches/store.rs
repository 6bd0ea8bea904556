//! The in-memory and SQLite stores: create, and the newest page (limit 50) of a thread of
//! 1,000, beside the floor of cloning the same 51 messages. A SQLite create is one write
//! waited for alone, so it pays a whole commit (`synchronous = FULL`: a sync of the WAL).

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use messages_core::storage::memory::MemoryStore;
use messages_core::storage::sqlite::SqliteStore;
use messages_core::storage::{CreateStore, PageStore};
use messages_core::testing::sqlite::TempDir;
use messages_core::{CreateRequest, Message, MessageId, PageQuery, PageSize, Timestamp};

/// A create of `m`, without an idempotency key.
fn request(m: &Message) -> CreateRequest {
    CreateRequest {
        participants: messages_core::Participants::DEFAULT,
        message: m.clone(),
        idempotency: None,
    }
}

fn store(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let store = MemoryStore::new();
    let all = messages_bench::messages(1_000);
    let thread = all[0].thread_id;
    rt.block_on(async {
        for m in &all {
            let _ = store.create(request(m)).await;
        }
    });
    let template = all[0].clone();

    let mut group = c.benchmark_group("store");
    group.throughput(Throughput::Elements(1));
    let mut next = 0i64;
    group.bench_function("memory create", |b| {
        b.to_async(&rt).iter(|| {
            next += 1;
            let m = Message {
                id: MessageId::new_v7(),
                created_at: Timestamp::from_micros(1_800_000_000_000_000 + next),
                ..template.clone()
            };
            let store = &store;
            async move { store.create(black_box(request(&m))).await }
        })
    });
    group.bench_function("memory newest page (50 of 1,000+)", |b| {
        b.to_async(&rt)
            .iter(|| store.page(black_box(thread), PageQuery::Newest, PageSize::DEFAULT))
    });

    let dir = TempDir::new();
    let sqlite: SqliteStore = rt.block_on(dir.store());
    rt.block_on(async {
        for m in &all {
            let _ = sqlite.create(request(m)).await;
        }
    });
    group.bench_function("sqlite create", |b| {
        b.to_async(&rt).iter(|| {
            next += 1;
            let m = Message {
                id: MessageId::new_v7(),
                created_at: Timestamp::from_micros(1_800_000_000_000_000 + next),
                ..template.clone()
            };
            let store = &sqlite;
            async move { store.create(black_box(request(&m))).await }
        })
    });
    group.bench_function("sqlite newest page (50 of 1,000+)", |b| {
        b.to_async(&rt)
            .iter(|| sqlite.page(black_box(thread), PageQuery::Newest, PageSize::DEFAULT))
    });
    let fifty_one: Vec<Message> = all[..51].to_vec();
    group.bench_function("floor (clone 51 messages)", |b| {
        b.iter(|| black_box(&fifty_one).clone())
    });
    group.finish();
}

criterion_group!(benches, store);
criterion_main!(benches);
