//! Shared fixtures for the benchmarks: realistic messages and windows.
//!
//! # Layout
//!
//! - `benches/cursor.rs`, `page.rs`, `cache.rs`, `event.rs`, `store.rs`, `service.rs`: one
//!   criterion file per hot path of `messages-core`, each contender beside a baseline or floor.
//! - `benches/depth.rs`: newest page against a page 900,000 deep on PostgreSQL.
//! - `src/bin/ceiling.rs`: the HTTP ceiling, a hyper server answering fixed bytes.
//! - `src/bin/sqlite_ceiling.rs`: the SQLite ceiling, the store's create through rusqlite alone.

use messages_core::{
    Limits, Message, MessageId, MessageKind, NewMessage, Page, PageSize, ThreadId, Timestamp,
    UserId,
};

/// `n` messages of one thread, newest first, with chat-sized text (about 80 characters).
pub fn messages(n: usize) -> Vec<Message> {
    let thread = ThreadId::from_uuid(uuid::Uuid::from_u128(
        0x0193_a1a0_0000_7000_8000_0000_0000_0001,
    ));
    let limits = Limits::default();
    (0..n)
        .map(|i| {
            let new = NewMessage::new(
                MessageKind::Text,
                format!("message {i}: the quick brown fox jumps over the lazy dog, twice over {i}"),
                vec![],
                &limits,
            )
            .unwrap_or_else(|e| panic!("{e}"));
            let user = UserId::from_uuid(uuid::Uuid::from_u128(0xaa00 + (i % 7) as u128));
            let mut m = Message::from_new(
                MessageId::new_v7(),
                thread,
                user,
                new,
                Timestamp::from_micros(1_764_000_000_000_000 - i as i64),
            );
            m.seq = (n - i) as i64;
            m.rev = m.seq;
            m
        })
        .collect()
}

/// The newest page of `n` messages read with `size`, as a store returns it.
pub fn newest_page(n: usize, size: u32) -> Page {
    let all = messages(n + 1);
    let rev = all.first().map_or(0, |m| m.rev);
    Page::from_overfetch(all, PageSize::new(size).unwrap_or_default(), rev)
}
