//! What every request handler shares: the service, the route table's router, limits, the
//! open streams, the compiled contract.

use std::sync::Arc;

use bytes::Bytes;
use messages_core::MessageService;

use super::streams::Streams;
use super::table::{ROUTES, Route};

/// What every request handler shares.
pub struct AppState {
    /// The message service.
    pub service: Arc<MessageService>,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// Longest time a request's body may take to arrive.
    pub body_read_timeout: std::time::Duration,
    pub(super) router: matchit::Router<Route>,
    pub(super) metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    pub(super) sources: crate::metrics::Sources,
    pub(super) openapi: Bytes,
    /// How writes are authenticated.
    pub auth: crate::auth::Auth,
    /// The open event streams.
    pub streams: Streams,
    /// Per-user write rate limits.
    pub limits: crate::limits::WriteLimits,
}

impl AppState {
    /// The shared state with the route table built.
    pub fn new(
        service: Arc<MessageService>,
        (max_body_bytes, body_read_timeout): (usize, std::time::Duration),
        sources: crate::metrics::Sources,
        (auth, limits): (crate::auth::Auth, crate::limits::WriteLimits),
        streams: crate::config::StreamSettings,
    ) -> Self {
        let mut router = matchit::Router::new();
        // The paths are constants and distinct, so inserting them cannot conflict.
        for &(route, path, _, _) in &ROUTES {
            if let Err(error) = router.insert(path, route) {
                tracing::error!(%error, path, "route table conflict");
            }
        }
        AppState {
            service,
            max_body_bytes,
            body_read_timeout,
            router,
            metrics: crate::metrics::install(),
            sources,
            openapi: openapi_json(),
            auth,
            streams: Streams::new(streams),
            limits,
        }
    }
}

/// The API contract, `messages-server/openapi.yaml`, compiled in.
pub const OPENAPI_YAML: &str = include_str!("../../openapi.yaml");

/// The contract as JSON, converted once at start.
fn openapi_json() -> Bytes {
    match serde_yaml_ng::from_str::<serde_json::Value>(OPENAPI_YAML) {
        Ok(value) => Bytes::from(value.to_string()),
        Err(error) => {
            tracing::error!(%error, "openapi.yaml does not parse");
            Bytes::from_static(b"{}")
        }
    }
}
