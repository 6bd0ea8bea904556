//! The HTTP server for `messages-core`: configuration, routing, error mapping and the
//! lifecycle of one process. `main.rs` reads the environment, then serves (until SIGTERM or
//! Ctrl-C), or runs the `migrate` or `healthcheck` command.
//!
//! # Layout
//!
//! - `roles`: the roles the service knows, by name.
//! - `auth`: who a write acts as: `X-User-Id` from the gateway, or a verified JWT.
//! - `body`: response bodies, sent in parts without copying them together.
//! - `config`: every environment variable, read once and validated.
//! - `backends`: chooses and opens the store, the cache and the event publisher.
//! - `startup`: builds the application (backends, service, relay) and runs it.
//! - `handler`: the routes as a value another server mounts (`Handler`).
//! - `listener`: accepts connections, serves each, and drains them at a stop.
//! - `shutdown`: turns SIGTERM and Ctrl-C into one future.
//! - `limits`: per-user write rate limits: the 429, the `X-RateLimit-*` headers.
//! - `error`: the one mapping from core errors to HTTP statuses and JSON bodies.
//! - `facts`: the routes, metrics and variables, as `messages-server facts` prints them.
//! - `routes`: the route table (`mod`), the path's ids, message, changes, event-stream,
//!   health and page routes.
//! - `metrics`: Prometheus metrics for `/metrics`; `store_timing` times each store operation.
//! - `telemetry`: logging setup.
#![cfg_attr(not(test), warn(clippy::unwrap_used))]

pub mod auth;
pub mod backends;
pub mod body;
pub mod config;
pub mod error;
pub mod facts;
mod handler;
pub mod limits;
mod listener;
pub mod metrics;
pub mod roles;
pub mod routes;
pub mod shutdown;
pub mod startup;
pub mod store_timing;
pub mod telemetry;

pub use config::Config;
pub use handler::Handler;
pub use startup::Application;
