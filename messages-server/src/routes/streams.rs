//! The open event streams of this process: how many may be open, and the signal that ends them
//! all at a stop.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};

use crate::config::StreamSettings;

/// The open streams of this process, their limits, and the signal that ends them.
pub struct Streams {
    settings: StreamSettings,
    open: Arc<Semaphore>,
    closing: watch::Sender<bool>,
}

impl Streams {
    /// No stream open yet.
    pub fn new(settings: StreamSettings) -> Self {
        Streams {
            settings,
            open: Arc::new(Semaphore::new(settings.max_open)),
            closing: watch::channel(false).0,
        }
    }

    /// The settings.
    pub fn settings(&self) -> &StreamSettings {
        &self.settings
    }

    /// Ends every open stream (at shutdown); no new one starts after.
    pub fn close_all(&self) {
        self.closing.send_replace(true);
        self.open.close();
    }

    /// How many streams are open.
    pub fn open(&self) -> usize {
        self.settings.max_open - self.open.available_permits()
    }

    /// A place for one more stream, held while it is open; `None` when `STREAM_MAX` are.
    pub(super) fn try_open(&self) -> Option<OwnedSemaphorePermit> {
        Arc::clone(&self.open).try_acquire_owned().ok()
    }

    /// Told when every stream must end.
    pub(super) fn closing(&self) -> watch::Receiver<bool> {
        self.closing.subscribe()
    }
}
