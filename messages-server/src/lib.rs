//! The HTTP server for `messages-core`: configuration, routing, error mapping and the
//! lifecycle of one process. `main.rs` only reads the environment and waits for a signal.
//!
//! # Layout
//!
//! - `auth`: who a write acts as: `X-User-Id` from the gateway, or a verified JWT.
//! - `body`: response bodies, sent in parts without copying them together.
//! - `config`: every environment variable, read once and validated.
//! - `startup`: builds the application (listener, backends, relay) and runs it.
//! - `shutdown`: turns SIGTERM and Ctrl-C into one future.
//! - `error`: the one mapping from core errors to HTTP statuses and JSON bodies.
//! - `routes`: the route table (`mod`), message routes, health routes.
//! - `metrics`: Prometheus metrics for `/metrics`.
//! - `telemetry`: logging setup.
#![cfg_attr(not(test), warn(clippy::unwrap_used))]

pub mod auth;
pub mod body;
pub mod config;
pub mod error;
pub mod metrics;
pub mod routes;
pub mod shutdown;
pub mod startup;
pub mod telemetry;
pub mod timed_store;

pub use config::Config;
pub use startup::Application;
