//! The service's routes as a value another server calls: [`Handler`].

use std::sync::Arc;

use crate::routes::AppState;

/// The service's routes without this server's listener, for mounting in an application of
/// another framework (an axum `Router`, a tower stack, a hyper server of its own): every route,
/// its errors, logs and metrics, as the server answers them. Cheap to clone.
#[derive(Clone)]
pub struct Handler {
    state: Arc<AppState>,
}

impl Handler {
    /// The routes over `state`.
    pub(crate) fn new(state: Arc<AppState>) -> Self {
        Handler { state }
    }
}

impl Handler {
    /// Answers one request. The path is the service's own (`/threads/...`): strip any prefix
    /// it is mounted under first (axum's `nest_service` does).
    pub async fn handle<B: crate::routes::ReadBody>(
        &self,
        request: http::Request<B>,
    ) -> crate::routes::HttpResponse {
        crate::routes::handle(Arc::clone(&self.state), request.map(SyncBody::new)).await
    }

    /// Ends every open event stream (readers reconnect elsewhere); call it when the hosting
    /// server begins its graceful shutdown, which would otherwise wait for them.
    pub fn close_streams(&self) {
        self.state.streams.close_all();
    }
}

/// A body that is `Sync` whenever it is `Send`, as the routes need (they hold a request across
/// awaits, and their futures must be `Send`): another framework's body need not be `Sync`
/// (axum's is not). Free: it is only ever polled through `&mut`, so the lock is never taken
/// but to answer `size_hint`.
struct SyncBody<B>(std::sync::Mutex<B>);

impl<B> SyncBody<B> {
    fn new(body: B) -> Self {
        SyncBody(std::sync::Mutex::new(body))
    }
}

impl<B: hyper::body::Body + Unpin> hyper::body::Body for SyncBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        let body = self
            .get_mut()
            .0
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        std::pin::Pin::new(body).poll_frame(cx)
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .size_hint()
    }
}
