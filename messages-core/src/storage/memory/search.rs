//! Search in memory: every live message of the threads asked, read in full (the reference
//! the indexed backends are held to).

use async_trait::async_trait;

use super::MemoryStore;
use crate::error::Result;
use crate::locks;
use crate::newest::NewestPage;
use crate::search::{SearchPage, SearchQuery};
use crate::storage::SearchStore;

#[async_trait]
impl SearchStore for MemoryStore {
    async fn search(&self, query: &SearchQuery) -> Result<SearchPage> {
        let stored = locks::read(&self.threads);
        let mut found = Vec::new();
        let mut threads = Vec::with_capacity(query.threads.as_slice().len());
        for &thread in query.threads.as_slice() {
            let Some(entry) = stored.get(&thread) else {
                threads.push((thread, 0));
                continue;
            };
            threads.push((thread, entry.head));
            found.extend(
                entry
                    .live
                    .iter()
                    .filter_map(|seq| entry.by_seq.get(seq))
                    .map(|e| &e.message)
                    .filter(|m| query.finds(m))
                    .cloned(),
            );
        }
        let page = NewestPage::from_candidates(found, query.after, query.size.get());
        Ok(SearchPage { page, threads })
    }
}
