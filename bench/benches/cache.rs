//! The in-process cache's hit path end to end (lookup, then assemble limit 50 from the
//! window of 200), beside the floor of assembling from a window already in hand.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use messages_core::cache::memory::MemoryCache;
use messages_core::cache::{PageCache, Window};
use messages_core::{PageSize, ThreadId};

fn cache(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let window = Arc::new(Window::from_page(&messages_bench::newest_page(200, 200)));
    let cache = MemoryCache::default();
    let thread = ThreadId::from_uuid(uuid::Uuid::from_u128(7));
    rt.block_on(async {
        let generation = cache
            .lookup(thread)
            .await
            .map(|l| l.generation)
            .unwrap_or(0);
        let _ = cache.fill(thread, generation, Arc::clone(&window)).await;
    });
    // 10,000 other threads, so the map is not trivially small.
    rt.block_on(async {
        for i in 0..10_000u128 {
            let t = ThreadId::from_uuid(uuid::Uuid::from_u128(1_000_000 + i));
            let g = cache.lookup(t).await.map(|l| l.generation).unwrap_or(0);
            let _ = cache.fill(t, g, Arc::clone(&window)).await;
        }
    });
    let size = PageSize::DEFAULT;
    let mut sample = Vec::new();
    window.write_page(size, &mut sample);

    let mut group = c.benchmark_group("cache");
    group.throughput(Throughput::Bytes(sample.len() as u64));
    group.bench_function("in-process hit, limit 50 of 200", |b| {
        b.to_async(&rt).iter(|| async {
            let lookup = cache
                .lookup(black_box(thread))
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            let mut out = Vec::new();
            if let Some(w) = lookup.window {
                w.write_page(size, &mut out);
            }
            out
        })
    });
    group.bench_function("floor (assemble from a window in hand)", |b| {
        b.iter(|| {
            let mut out = Vec::new();
            black_box(&window).write_page(size, &mut out);
            out
        })
    });
    group.finish();
}

criterion_group!(benches, cache);
criterion_main!(benches);
