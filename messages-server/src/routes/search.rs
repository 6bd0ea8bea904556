//! `GET /search?q=&threads=&from=&limit=&cursor=`: the live messages of the threads named whose
//! text holds every word and phrase of `q` (see `messages_core::search`), newest first, with
//! each thread's position the answer reflects.

use http::{Request, StatusCode};
use messages_core::NewestCursor;
use messages_core::UserId;
use messages_core::search::{MAX_FROM, SearchQuery, SearchText};

use super::read::ListQuery;
use super::response::{HttpResponse, json};
use super::state::AppState;
use crate::error::ApiError;

/// The authors `from` names (comma-separated, or the parameter repeated), each once.
fn add_authors(from: &mut Vec<UserId>, value: &str) -> Result<(), ApiError> {
    for part in value.split(',').filter(|p| !p.is_empty()) {
        let user = UserId::parse(part.trim()).map_err(|_| {
            ApiError::bad_request("invalid_from", format!("from: {part:?} is not a user id"))
        })?;
        if !from.contains(&user) {
            from.push(user);
        }
    }
    if from.len() > MAX_FROM {
        return Err(ApiError::bad_request(
            "invalid_from",
            format!("from: name at most {MAX_FROM} authors"),
        ));
    }
    Ok(())
}

/// `GET /search`
pub async fn search<B>(state: &AppState, request: &Request<B>) -> Result<HttpResponse, ApiError> {
    let (mut text, mut from) = (None, Vec::new());
    let list = ListQuery::parse(request, |name, value| {
        match name {
            "q" if text.is_some() => {
                return Err(ApiError::bad_request("invalid_query", "q: give it once"));
            }
            "q" => {
                let parsed = SearchText::parse(value)
                    .map_err(|e| ApiError::bad_request("invalid_query", format!("q: {e}")))?;
                text = Some(parsed);
            }
            "from" => add_authors(&mut from, value)?,
            _ => {}
        }
        Ok(())
    })?;
    let text = text
        .ok_or_else(|| ApiError::bad_request("invalid_query", "q: give the words to search for"))?;
    let after = list.cursor.map(|c| NewestCursor::decode(&c)).transpose()?;
    let query = SearchQuery {
        text,
        threads: list.threads,
        from,
        after,
        size: list.size,
    };
    let page = state.service.search(&query).await?;
    Ok(json(StatusCode::OK, page.to_json()))
}
