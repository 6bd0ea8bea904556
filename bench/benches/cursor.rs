//! Cursor encode and decode, beside a baseline that encodes the position as JSON then base64.

use std::hint::black_box;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use messages_core::Cursor;

fn cursor(c: &mut Criterion) {
    let message = &messages_bench::messages(1)[0];
    let cursor = Cursor::of(message);
    let encoded = cursor.encode();
    let json_form = URL_SAFE_NO_PAD
        .encode(serde_json::to_vec(&serde_json::json!({"seq": message.seq})).unwrap_or_default());

    let mut group = c.benchmark_group("cursor");
    group.throughput(Throughput::Elements(1));
    group.bench_function("encode", |b| b.iter(|| black_box(&cursor).encode()));
    group.bench_function("decode", |b| b.iter(|| Cursor::decode(black_box(&encoded))));
    group.bench_function("encode+decode", |b| {
        b.iter(|| Cursor::decode(&black_box(&cursor).encode()))
    });
    group.bench_function("baseline json+base64 encode+decode", |b| {
        b.iter(|| {
            let s = URL_SAFE_NO_PAD.encode(
                serde_json::to_vec(&serde_json::json!({"seq": message.seq})).unwrap_or_default(),
            );
            let raw = URL_SAFE_NO_PAD.decode(black_box(&s)).unwrap_or_default();
            serde_json::from_slice::<serde_json::Value>(&raw).ok()
        })
    });
    group.bench_function("baseline json+base64 decode", |b| {
        b.iter(|| {
            let raw = URL_SAFE_NO_PAD
                .decode(black_box(&json_form))
                .unwrap_or_default();
            serde_json::from_slice::<serde_json::Value>(&raw).ok()
        })
    });
    group.finish();
}

criterion_group!(benches, cursor);
criterion_main!(benches);
