//! Search on SQLite: the live messages' folded text in an FTS5 index of trigrams
//! (`message_text`, kept by triggers in each write's transaction).

use std::collections::HashSet;

use async_trait::async_trait;
use rusqlite::{Connection, params};

use super::SqliteStore;
use super::error::db;
use super::rows::{columns, head, message_from_row};
use crate::error::Result;
use crate::message::{Message, ThreadId};
use crate::newest::NewestPage;
use crate::search::SearchPage;
use crate::search::SearchQuery;
use crate::storage::SearchStore;

/// The messages whose folded text holds every trigram of the FTS5 query ?1: candidates, which
/// the search's own rule then keeps or not.
const MATCHED: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM messages WHERE (thread_id, seq) IN (
        SELECT i.thread_id, i.seq FROM message_text t
        JOIN message_text_ids i ON i.doc = t.rowid
        WHERE message_text MATCH ?1)
      AND deleted_at IS NULL"
);

/// The live messages of thread ?1, every one (for a query with no term the index can look up).
const LIVE: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM messages WHERE thread_id = ?1 AND deleted_at IS NULL"
);

/// The most trigrams one index query asks for: enough to leave few candidates, which the
/// search's own rule then checks.
const MOST_TRIGRAMS: usize = 64;

/// The index's query for the terms it can look up (three characters or more): every trigram
/// of each, each a token of its own (the index keeps no positions, so a term is the set of its
/// trigrams); None when no term is that long.
fn fts_query(query: &SearchQuery) -> Option<String> {
    let mut trigrams: Vec<String> = Vec::new();
    for term in query.text.terms() {
        let chars: Vec<char> = term.chars().collect();
        for window in chars.windows(3) {
            let trigram: String = window.iter().collect();
            if !trigrams.contains(&trigram) && trigrams.len() < MOST_TRIGRAMS {
                trigrams.push(trigram);
            }
        }
    }
    let tokens: Vec<String> = trigrams
        .iter()
        .map(|t| format!("\"{}\"", t.replace('"', "\"\"")))
        .collect();
    (!tokens.is_empty()).then(|| tokens.join(" AND "))
}

fn rows(conn: &Connection, sql: &str, param: impl rusqlite::ToSql) -> Result<Vec<Message>> {
    let mut stmt = conn.prepare_cached(sql).map_err(db("search"))?;
    let mut rows = stmt.query(params![param]).map_err(db("search"))?;
    let mut found = Vec::new();
    while let Some(row) = rows.next().map_err(db("search"))? {
        found.push(message_from_row(row, 0)?);
    }
    Ok(found)
}

#[async_trait]
impl SearchStore for SqliteStore {
    async fn search(&self, query: &SearchQuery) -> Result<SearchPage> {
        let query = query.clone();
        self.read("search", move |tx| {
            let asked: HashSet<ThreadId> = query.threads.as_slice().iter().copied().collect();
            let candidates = match fts_query(&query) {
                Some(fts) => rows(tx, MATCHED, fts)?
                    .into_iter()
                    .filter(|m| asked.contains(&m.thread_id))
                    .collect(),
                None => {
                    let mut all = Vec::new();
                    for thread in &asked {
                        all.extend(rows(tx, LIVE, thread.as_uuid())?);
                    }
                    all
                }
            };
            let found = candidates.into_iter().filter(|m| query.finds(m));
            let page = NewestPage::from_candidates(found, query.after, query.size.get());
            let mut threads = Vec::with_capacity(asked.len());
            for &thread in query.threads.as_slice() {
                threads.push((thread, head(tx, thread)?));
            }
            Ok(SearchPage { page, threads })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::fts_query;
    use crate::page::PageSize;
    use crate::read::ThreadList;
    use crate::search::{SearchQuery, SearchText};

    fn query(text: &str) -> Option<String> {
        fts_query(&SearchQuery {
            text: SearchText::parse(text).unwrap(),
            threads: ThreadList::new(vec![crate::message::ThreadId::from_uuid(uuid::Uuid::nil())])
                .unwrap(),
            from: vec![],
            after: None,
            size: PageSize::DEFAULT,
        })
    }

    #[test]
    fn a_term_is_the_set_of_its_trigrams() {
        assert_eq!(query("ab 会议"), None, "no term of three characters");
        assert_eq!(query("Abcd"), Some(r#""abc" AND "bcd""#.into()));
        assert_eq!(query("aaaa"), Some(r#""aaa""#.into()), "each trigram once");
        assert_eq!(
            query("q \"b c\""),
            Some(r#""b c""#.into()),
            "a phrase's space is in its trigram"
        );
    }
}
