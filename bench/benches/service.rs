//! Through the service with in-memory backends: a create followed by a newest-page read (which
//! misses, since the create invalidated the page), and a cached read alone.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use messages_core::{MessageKind, MessageService, NewMessage, PageQuery, PageSize, UserId};

fn service(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    // The relay is not run, as before the service handed it back: the events wait in memory,
    // and the figures stay comparable with the earlier runs.
    let (service, _relay) = MessageService::in_memory();
    let seed = messages_bench::messages(200);
    let thread = seed[0].thread_id;
    let user = UserId::from_uuid(uuid::Uuid::from_u128(0xaa));
    rt.block_on(async {
        for m in seed.iter().rev() {
            let new = NewMessage::new(
                MessageKind::Text,
                m.content.clone(),
                vec![],
                service.limits(),
            )
            .unwrap_or_else(|e| panic!("{e}"));
            let _ = service.create(thread, user, new, None).await;
        }
    });

    let mut group = c.benchmark_group("service");
    group.throughput(Throughput::Elements(1));
    group.bench_function("create then newest page", |b| {
        b.to_async(&rt).iter(|| async {
            let new = NewMessage::new(
                MessageKind::Text,
                "a new message in the thread".into(),
                vec![],
                service.limits(),
            )
            .unwrap_or_else(|e| panic!("{e}"));
            let _ = service.create(thread, user, new, None).await;
            service
                .page_json(thread, PageQuery::Newest, PageSize::DEFAULT)
                .await
        })
    });
    group.bench_function("cached newest page", |b| {
        b.to_async(&rt)
            .iter(|| service.page_json(black_box(thread), PageQuery::Newest, PageSize::DEFAULT))
    });
    group.finish();
}

criterion_group!(benches, service);
criterion_main!(benches);
