//! Encoding a created event (body, closed with its numbers, and CloudEvents headers), beside
//! the floor of serialising the message alone.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use messages_core::events::codec;
use messages_core::storage::StoredEvent;

fn event(c: &mut Criterion) {
    let message = messages_bench::messages(1).remove(0);
    let mut group = c.benchmark_group("event");
    group.throughput(Throughput::Elements(1));
    group.bench_function("created: body + headers", |b| {
        b.iter(|| {
            let event = codec::created(black_box(&message));
            let stored = StoredEvent {
                position: 1,
                id: event.id,
                kind: event.kind.to_owned(),
                thread_id: event.thread_id,
                time: event.time,
                sequence: message.rev,
                payload: event.payload(message.seq, message.rev),
            };
            let headers = codec::headers(&stored, "/messages");
            (stored, headers)
        })
    });
    group.bench_function("floor (message JSON only)", |b| {
        b.iter(|| black_box(&message).to_json())
    });
    group.finish();
}

criterion_group!(benches, event);
criterion_main!(benches);
