//! The core's integration tests, one crate: the storage and cache contracts on every backend,
//! the service's ordering of store → cache, and event delivery. Backends other than the
//! in-memory ones run when their URL is set (`DATABASE_URL`, `REDIS_URL`, `AMQP_URL`) and
//! are required under `CI=true`.

mod cache;
mod distribution;
mod embedding;
mod events;
mod limit;
mod postgres;
mod service;
mod sqlite;
mod storage;
mod upgrades;
