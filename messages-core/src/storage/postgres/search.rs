//! Search on PostgreSQL: the live messages' folded text (`search_text`, a generated column)
//! by its trigrams, in one statement with the threads' positions.

use async_trait::async_trait;

use super::rows::message_from_row;
use super::{PostgresStore, db, decode};
use crate::error::Result;
use crate::newest::NewestPage;
use crate::search::{SearchPage, SearchQuery};
use crate::storage::SearchStore;

/// The statement for `terms` terms: the position of each thread of $1 in its order, and the
/// live messages of those threads whose folded text is like every pattern ($6 on, one a term,
/// so each can use the index), by an author of $2 (any when empty), older than ($3, $4) by
/// (id, thread) when $3 is given, the newest $5: the positions on every row, and one row with
/// the message columns NULL when none is found. Each thread is its own range of the index
/// (its key is the thread, then the trigrams). One statement, one snapshot.
fn statement(terms: usize) -> String {
    let likes: String = (0..terms)
        .map(|i| format!(" AND m.search_text LIKE ${}", i + 6))
        .collect();
    format!(
        r#"
WITH heads AS (
    SELECT array_agg(COALESCE(h.head, 0) ORDER BY t.ord) AS heads
    FROM unnest($1::uuid[]) WITH ORDINALITY AS t(thread_id, ord)
    LEFT JOIN threads h ON h.thread_id = t.thread_id
), found AS (
    SELECT c.* FROM (SELECT DISTINCT unnest($1::uuid[]) AS thread_id) t
    CROSS JOIN LATERAL (
        SELECT m.thread_id, m.id, m.user_id, m.kind, m.content, m.paths, m.created_at,
               m.updated_at, m.seq, m.rev, m.reply_to, m.reactions, m.root_id, m.reply_count,
               m.last_reply_at, m.last_reply_id, m.reply_users, m.mentions
        FROM messages m
        WHERE m.thread_id = t.thread_id AND m.deleted_at IS NULL{likes}
          AND (cardinality($2::uuid[]) = 0 OR m.user_id = ANY($2))
          AND ($3::uuid IS NULL OR (m.id, m.thread_id) < ($3, $4::uuid))
        ORDER BY m.id DESC
        LIMIT $5
    ) c
    ORDER BY c.id DESC, c.thread_id DESC
    LIMIT $5
)
SELECT heads.heads, found.* FROM heads LEFT JOIN found ON true
"#
    )
}

/// `%term%`, with LIKE's own characters in the term taken literally.
fn contains(term: &str) -> String {
    let mut pattern = String::with_capacity(term.len() + 2);
    pattern.push('%');
    for c in term.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

#[async_trait]
impl SearchStore for PostgresStore {
    async fn search(&self, query: &SearchQuery) -> Result<SearchPage> {
        self.timed("search", async {
            let client = self.client().await?;
            let stmt = client
                .prepare_cached(&statement(query.text.terms().len()))
                .await
                .map_err(db("prepare"))?;
            let threads: Vec<uuid::Uuid> = query
                .threads
                .as_slice()
                .iter()
                .map(|t| *t.as_uuid())
                .collect();
            let patterns: Vec<String> = query.text.terms().iter().map(|t| contains(t)).collect();
            let from: Vec<uuid::Uuid> = query.from.iter().map(|u| *u.as_uuid()).collect();
            let (id, thread) = match query.after {
                Some(a) => (Some(*a.id.as_uuid()), Some(*a.thread.as_uuid())),
                None => (None, None),
            };
            // One more for `has_more`.
            let take = query.size.get() as i64 + 1;
            let mut params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> =
                vec![&threads, &from, &id, &thread, &take];
            params.extend(
                patterns
                    .iter()
                    .map(|p| p as &(dyn tokio_postgres::types::ToSql + Sync)),
            );
            let rows = client.query(&stmt, &params).await.map_err(db("search"))?;
            let heads: Vec<i64> = match rows.first() {
                Some(row) => row.try_get(0).map_err(decode)?,
                None => Vec::new(),
            };
            let mut found = Vec::with_capacity(rows.len());
            for row in &rows {
                let thread: Option<uuid::Uuid> = row.try_get(1).map_err(decode)?;
                if thread.is_some() {
                    found.push(message_from_row(row, 1)?);
                }
            }
            let page = NewestPage::from_candidates(found, query.after, query.size.get());
            let threads = query
                .threads
                .as_slice()
                .iter()
                .copied()
                .zip(heads.into_iter().chain(std::iter::repeat(0)))
                .collect();
            Ok(SearchPage { page, threads })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::contains;

    #[test]
    fn a_term_is_taken_literally() {
        assert_eq!(contains("100%_off\\x"), "%100\\%\\_off\\\\x%");
        assert_eq!(contains("会议"), "%会议%");
    }
}
