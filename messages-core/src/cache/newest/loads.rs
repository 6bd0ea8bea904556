//! Shared loads: the store read of a thread's newest window made once however many requests
//! missed together, each waiter answered with the first one's result, an error of the same
//! kind included.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::OnceCell;

use crate::cache::{Generation, Window};
use crate::error::{Error, Result};
use crate::locks;
use crate::message::ThreadId;

type Load = Arc<OnceCell<std::result::Result<Arc<Window>, Arc<Error>>>>;

/// What makes two misses the same load: the thread, the cache generation both saw, and the
/// store position both saw (0 unless hits are checked against the store). A request joins a
/// load only if that load began after everything the request must see.
pub(super) type LoadKey = (ThreadId, Generation, i64);

/// The loads under way. Its std lock follows the crate's policy (`locks`).
#[derive(Default)]
pub(super) struct SharedLoads {
    loads: Mutex<HashMap<LoadKey, Load>>,
}

impl SharedLoads {
    /// Runs `load` for `key` unless a load for the same key is under way, whose result is
    /// then this one's too.
    pub(super) async fn run(
        &self,
        key: LoadKey,
        load: impl Future<Output = Result<Arc<Window>>>,
    ) -> Result<Arc<Window>> {
        let cell: Load = Arc::clone(locks::lock(&self.loads).entry(key).or_default());
        let result = cell
            .get_or_init(|| async { load.await.map_err(Arc::new) })
            .await
            .clone();
        {
            let mut loads = locks::lock(&self.loads);
            if loads.get(&key).is_some_and(|c| Arc::ptr_eq(c, &cell)) {
                loads.remove(&key);
            }
        }
        result.map_err(|shared| Error::shared(&shared))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn every_waiter_gets_the_first_ones_error_kind() {
        let loads = SharedLoads::default();
        let key = (ThreadId::from_uuid(uuid::Uuid::now_v7()), 1, 0);
        let runs = AtomicUsize::new(0);
        let gate = tokio::sync::Notify::new();
        let load = || async {
            runs.fetch_add(1, Ordering::SeqCst);
            gate.notified().await;
            Err::<Arc<Window>, _>(Error::NotFound)
        };
        let (first, second, ()) =
            tokio::join!(loads.run(key, load()), loads.run(key, load()), async {
                tokio::task::yield_now().await;
                gate.notify_waiters();
            });
        assert_eq!(runs.load(Ordering::SeqCst), 1, "one store read for both");
        assert!(matches!(first, Err(Error::NotFound)), "{first:?}");
        assert!(matches!(second, Err(Error::NotFound)), "{second:?}");
    }
}
