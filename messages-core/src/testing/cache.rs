//! The cache contract: what every `PageCache` must do, written once as named cases.
//! [`cache_contract!`](crate::cache_contract) stamps out one test per case and backend through
//! [`every_backend!`](crate::every_backend). Each case uses threads of its own.

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
    let mut page = Page::from_overfetch(items, PageSize::new(n.max(1) as u32).unwrap(), 1_000);
    page.has_more = has_more;
    page.next_cursor = if has_more {
        page.items.last().map(crate::Cursor::of)
    } else {
        None
    };
    Arc::new(Window::from_page(&page))
}

/// The cache under test.
pub type Subject = Arc<dyn PageCache>;

/// Stamps out one `#[tokio::test]` per case of the cache contract and per backend, in a module
/// `cache_contract::<backend>`. Each backend's expression gives a future of
/// `Option<Arc<dyn PageCache>>`; `None` skips.
#[macro_export]
macro_rules! cache_contract {
    ($($backend:ident => $subject:expr),+ $(,)?) => {
        mod cache_contract {
            #[allow(unused_imports)]
            use super::*;
            #[allow(unused_imports)]
            use $crate::testing::cache::*;
            $crate::every_backend!([
                a_new_thread_has_no_window,
                a_fill_with_the_current_generation_is_read_back,
                an_invalidation_drops_the_window_and_refuses_a_fill_from_before_it,
                threads_are_independent,
                two_invalidations_refuse_a_fill_from_before_both,
                an_empty_threads_window_is_cached,
                the_cache_answers_a_ping,
            ] on $($backend => $subject),+);
        }
    };
}

fn new_thread() -> ThreadId {
    ThreadId::from_uuid(Uuid::new_v4())
}

/// A thread never seen has no window.
pub async fn a_new_thread_has_no_window(c: &Subject) {
    assert!(c.lookup(new_thread()).await.unwrap().window.is_none());
}

/// A fill with the generation a lookup gave is kept, and read back byte for byte; reads do not
/// move the generation.
pub async fn a_fill_with_the_current_generation_is_read_back(c: &Subject) {
    let t = new_thread();
    let g = c.lookup(t).await.unwrap().generation;
    let w = window(5, true);
    assert!(c.fill(t, g, Arc::clone(&w)).await.unwrap());
    let hit = c.lookup(t).await.unwrap();
    assert_eq!(hit.window.as_deref(), Some(w.as_ref()));
    assert_eq!(hit.generation, g, "reads do not change the generation");
}

/// A write's invalidation drops the window and moves the generation, so a fill read before it
/// is refused and one read after it is kept.
pub async fn an_invalidation_drops_the_window_and_refuses_a_fill_from_before_it(c: &Subject) {
    let t = new_thread();
    let g = c.lookup(t).await.unwrap().generation;
    assert!(c.fill(t, g, window(5, true)).await.unwrap());
    c.invalidate(t).await.unwrap();
    let after = c.lookup(t).await.unwrap();
    assert!(after.window.is_none(), "invalidate drops the window");
    assert_ne!(after.generation, g, "invalidate moves the generation");
    assert!(
        !c.fill(t, g, window(3, false)).await.unwrap(),
        "a stale fill is refused"
    );
    assert!(c.lookup(t).await.unwrap().window.is_none());
    let fresh = window(2, false);
    assert!(
        c.fill(t, after.generation, Arc::clone(&fresh))
            .await
            .unwrap()
    );
    assert_eq!(
        c.lookup(t).await.unwrap().window.as_deref(),
        Some(fresh.as_ref())
    );
}

/// An invalidation of one thread leaves another's window alone.
pub async fn threads_are_independent(c: &Subject) {
    let (t, other) = (new_thread(), new_thread());
    let g = c.lookup(other).await.unwrap().generation;
    assert!(c.fill(other, g, window(1, false)).await.unwrap());
    c.invalidate(t).await.unwrap();
    assert!(c.lookup(other).await.unwrap().window.is_some());
}

/// Two invalidations in a row still refuse a fill from before both.
pub async fn two_invalidations_refuse_a_fill_from_before_both(c: &Subject) {
    let t = new_thread();
    let g = c.lookup(t).await.unwrap().generation;
    c.invalidate(t).await.unwrap();
    c.invalidate(t).await.unwrap();
    assert!(!c.fill(t, g, window(1, false)).await.unwrap());
}

/// An empty thread's window (no messages) is cached like any other.
pub async fn an_empty_threads_window_is_cached(c: &Subject) {
    let t = new_thread();
    let g = c.lookup(t).await.unwrap().generation;
    assert!(c.fill(t, g, window(0, false)).await.unwrap());
    let got = c.lookup(t).await.unwrap().window;
    assert_eq!(got.as_deref().map(Window::len), Some(0));
}

/// The cache answers a ping.
pub async fn the_cache_answers_a_ping(c: &Subject) {
    c.ping().await.unwrap();
}
