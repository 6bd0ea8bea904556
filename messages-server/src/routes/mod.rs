//! The routes: the table (`table`), the pipeline every request goes through (`dispatch`), what
//! the handlers share (`state`), and one file per group of routes. A response's body is
//! complete (in up to three parts) except an event stream's, which is fed by a bounded channel.
//!
//! - `table`: every route, its methods, whether it is part of the API.
//! - `dispatch`: match, limit, handle, log.
//! - `state`: the shared state and the compiled contract.
//! - `request_id`, `query`, `request_body`, `response`: a request's id, its query string, its
//!   body; JSON answers and the page's protective headers.
//! - `path`: the ids a path names.
//! - `streams`: the open event streams.
//! - `messages`, `reactions`, `changes`, `events`, `read`, `conversations`, `mentions`,
//!   `search`, `health`, `ui`, `docs`: the handlers.

mod changes;
mod conversations;
mod dispatch;
mod docs;
mod events;
mod health;
mod mentions;
mod messages;
mod path;
mod query;
mod reactions;
mod read;
mod request_body;
mod request_id;
mod response;
mod search;
mod state;
mod streams;
mod table;
mod ui;

pub use dispatch::handle;
pub use request_body::ReadBody;
pub use response::HttpResponse;
pub use state::{AppState, OPENAPI_YAML};
pub use streams::Streams;
pub use table::{all_routes, route_table};
