//! Assembling the newest page (limit 50 from a cached window of 200): from pre-encoded items,
//! beside the old way (parse the cached JSON list, serialise the page again) and beside the
//! floor (copying the same number of bytes).

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use messages_core::cache::Window;
use messages_core::{Message, Page, PageSize};

fn page(c: &mut Criterion) {
    let window_page = messages_bench::newest_page(200, 200);
    let window = Window::from_page(&window_page);
    // The old service cached the window as one JSON list of messages.
    let cached_list = serde_json::to_vec(&window_page.items).unwrap_or_default();

    let mut group = c.benchmark_group("page");
    for limit in [10u32, 50, 200] {
        let size = PageSize::new(limit).unwrap_or_default();
        let mut sample = Vec::new();
        window.write_page(size, &mut sample);
        let source = sample.clone();
        group.throughput(Throughput::Bytes(sample.len() as u64));
        group.bench_with_input(
            BenchmarkId::new("window (pre-encoded)", limit),
            &size,
            |b, &size| {
                b.iter(|| {
                    let mut out = Vec::new();
                    black_box(&window).write_page(size, &mut out);
                    out
                })
            },
        );
        group.bench_with_input(
            BenchmarkId::new("old way (parse + serialise)", limit),
            &size,
            |b, &size| {
                b.iter(|| {
                    let mut items: Vec<Message> =
                        serde_json::from_slice(black_box(&cached_list)).unwrap_or_default();
                    let has_more = items.len() > size.get();
                    items.truncate(size.get());
                    let page = Page {
                        next_cursor: if has_more {
                            items.last().map(messages_core::Cursor::of)
                        } else {
                            None
                        },
                        rev: items.first().map_or(0, |m| m.rev),
                        items,
                        has_more,
                    };
                    page.to_json()
                })
            },
        );
        group.bench_with_input(
            BenchmarkId::new("floor (byte copy)", limit),
            &source,
            |b, source| b.iter(|| black_box(source.as_slice()).to_vec()),
        );
    }
    group.finish();
}

criterion_group!(benches, page);
criterion_main!(benches);
