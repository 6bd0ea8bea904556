//! The cache contract: what every `PageCache` must do, written once.

use std::sync::Arc;

use uuid::Uuid;

use crate::cache::{PageCache, Window};
use crate::message::{Message, ThreadId, UserId};
use crate::page::{Page, PageSize};

fn window(n: usize, has_more: bool) -> Arc<Window> {
    let thread = ThreadId::from_uuid(Uuid::new_v4());
    let user = UserId::from_uuid(Uuid::new_v4());
    let items: Vec<Message> = (0..n)
        .map(|i| {
            let mut m = super::text_message(thread, user, 1_000 - i as i64, &format!("cached {i}"));
            m.seq = 1_000 - i as i64;
            m.rev = m.seq;
            m
        })
        .collect();
    let mut page = Page::from_overfetch(
        items,
        PageSize::new(n.max(1) as u32).unwrap_or_default(),
        1_000,
    );
    page.has_more = has_more;
    page.next_cursor = if has_more {
        page.items.last().map(crate::Cursor::of)
    } else {
        None
    };
    Arc::new(Window::from_page(&page))
}

/// Runs every case of the contract against `cache`. Each case uses threads of its own.
pub async fn cache_contract(cache: Arc<dyn PageCache>) {
    let c = cache.as_ref();
    let t = ThreadId::from_uuid(Uuid::new_v4());
    let first = c.lookup(t).await.unwrap_or_else(|e| panic!("lookup: {e}"));
    assert!(first.window.is_none(), "a new thread has no window");
    let g = first.generation;

    // A fill with the current generation is kept, and read back byte for byte.
    let w = window(5, true);
    assert!(
        c.fill(t, g, Arc::clone(&w))
            .await
            .unwrap_or_else(|e| panic!("fill: {e}"))
    );
    let hit = c.lookup(t).await.unwrap_or_else(|e| panic!("lookup: {e}"));
    assert_eq!(hit.window.as_deref(), Some(w.as_ref()));
    assert_eq!(hit.generation, g, "reads do not change the generation");

    // A write drops the window and moves the generation, so a fill read before it is refused.
    c.invalidate(t)
        .await
        .unwrap_or_else(|e| panic!("invalidate: {e}"));
    let after = c.lookup(t).await.unwrap_or_else(|e| panic!("lookup: {e}"));
    assert!(after.window.is_none(), "invalidate drops the window");
    assert_ne!(after.generation, g, "invalidate moves the generation");
    assert!(
        !c.fill(t, g, window(3, false))
            .await
            .unwrap_or_else(|e| panic!("fill: {e}")),
        "a stale fill is refused"
    );
    assert!(
        c.lookup(t)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .window
            .is_none()
    );
    let fresh = window(2, false);
    assert!(
        c.fill(t, after.generation, Arc::clone(&fresh))
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    );
    assert_eq!(
        c.lookup(t)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .window
            .as_deref(),
        Some(fresh.as_ref())
    );

    // Threads are independent.
    let other = ThreadId::from_uuid(Uuid::new_v4());
    let og = c
        .lookup(other)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .generation;
    assert!(
        c.fill(other, og, window(1, false))
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    );
    c.invalidate(t).await.unwrap_or_else(|e| panic!("{e}"));
    assert!(
        c.lookup(other)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .window
            .is_some()
    );

    // Two invalidations in a row still refuse a fill from before both; an empty thread's
    // window (no messages) is cached like any other.
    let g1 = c
        .lookup(t)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .generation;
    c.invalidate(t).await.unwrap_or_else(|e| panic!("{e}"));
    c.invalidate(t).await.unwrap_or_else(|e| panic!("{e}"));
    assert!(
        !c.fill(t, g1, window(1, false))
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    );
    let g2 = c
        .lookup(t)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .generation;
    let empty = window(0, false);
    assert!(
        c.fill(t, g2, Arc::clone(&empty))
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    );
    let got = c.lookup(t).await.unwrap_or_else(|e| panic!("{e}")).window;
    assert_eq!(got.as_deref().map(Window::len), Some(0));

    c.ping().await.unwrap_or_else(|e| panic!("ping: {e}"));
}
