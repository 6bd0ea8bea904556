//! Search of history: [`SearchStore`]. A read: no number of the sequence, no event.

use async_trait::async_trait;

use crate::error::Result;
use crate::search::{SearchPage, SearchQuery};

/// The messages a search finds.
#[async_trait]
pub trait SearchStore: Send + Sync + 'static {
    /// The live messages of the query's threads that it finds ([`SearchQuery::finds`]: the
    /// one rule of the `search` module), newest first after its cursor, a page of its size
    /// with `has_more` exact, and the position of each thread, all from one snapshot: an edit
    /// or a delete numbered up to a thread's position is in the answer, whatever came after
    /// is not.
    async fn search(&self, query: &SearchQuery) -> Result<SearchPage>;
}
