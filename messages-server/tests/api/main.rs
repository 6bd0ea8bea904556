//! The server's tests over HTTP, one crate: `spawn_app()` and the request helpers
//! (`helpers`), every row of the API on each backend (`contract`), authentication (`auth`),
//! the real backends, restarts, outages and shutdown (`backends`), a history checker
//! (`history`) run under faults: replicas killed, backends cut, a PostgreSQL failover
//! (`faults`), the embedded default's file: restarts, SIGKILL, data directories (`embedded`), the binary's commands
//! (`commands`), a connection's and a process's life (`lifecycle`), and live delivery: event
//! streams and long polls (`live`). Backends other than the embedded ones run when their URL
//! is set and are required under `CI=true`.

mod auth;
mod backends;
mod cluster;
mod commands;
mod contract;
mod embedded;
mod faults;
mod helpers;
mod history;
mod lifecycle;
mod limits;
mod live;
mod memory;
mod monitoring;
