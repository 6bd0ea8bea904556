//! The route table: every route's path (also its label in metrics, a fixed name so ids do not
//! multiply series), the methods it takes, and whether it is part of the API contract (the
//! chat page is not). The router, the metrics, the OpenAPI check and `messages-server facts`
//! all read this one list.

/// A route of the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Route {
    ThreadMessages,
    Message,
    BulkDelete,
    Reactions,
    Reaction,
    Edits,
    ThreadChanges,
    ThreadRead,
    Unread,
    ThreadEvents,
    Healthz,
    Readyz,
    Metrics,
    OpenApi,
    Page,
    PageAsset,
    Docs,
    DocsIndex,
    DocsFile,
    Replies,
    Follow,
    RepliesRead,
    Inbox,
    Mentions,
    Search,
}

/// Every route: its path, the methods it takes, and whether it is part of the API contract.
pub(super) const ROUTES: [(Route, &str, &str, bool); 25] = [
    (
        Route::ThreadMessages,
        "/threads/{thread_id}/messages",
        "GET, POST",
        true,
    ),
    (
        Route::Message,
        "/threads/{thread_id}/messages/{message_id}",
        "GET, PUT, DELETE",
        true,
    ),
    (
        Route::BulkDelete,
        "/threads/{thread_id}/messages/bulk-delete",
        "POST",
        true,
    ),
    (
        Route::Reactions,
        "/threads/{thread_id}/messages/{message_id}/reactions",
        "DELETE",
        true,
    ),
    (
        Route::Reaction,
        "/threads/{thread_id}/messages/{message_id}/reactions/{emoji}",
        "GET, PUT, DELETE",
        true,
    ),
    (
        Route::Edits,
        "/threads/{thread_id}/messages/{message_id}/edits",
        "GET",
        true,
    ),
    (
        Route::ThreadChanges,
        "/threads/{thread_id}/changes",
        "GET",
        true,
    ),
    (
        Route::ThreadRead,
        "/threads/{thread_id}/read",
        "GET, PUT",
        true,
    ),
    (Route::Unread, "/unread", "GET", true),
    (
        Route::ThreadEvents,
        "/threads/{thread_id}/events",
        "GET",
        true,
    ),
    (Route::Healthz, "/healthz", "GET", true),
    (Route::Readyz, "/readyz", "GET", true),
    (Route::Metrics, "/metrics", "GET", true),
    (Route::OpenApi, "/openapi.json", "GET", true),
    (Route::Page, "/", "GET", false),
    (Route::PageAsset, "/ui/{asset}", "GET", false),
    (Route::Docs, "/docs", "GET", false),
    (Route::DocsIndex, "/docs/", "GET", false),
    (Route::DocsFile, "/docs/{*file}", "GET", false),
    (
        Route::Replies,
        "/threads/{thread_id}/messages/{message_id}/replies",
        "GET",
        true,
    ),
    (
        Route::Follow,
        "/threads/{thread_id}/messages/{message_id}/follow",
        "PUT, DELETE",
        true,
    ),
    (
        Route::RepliesRead,
        "/threads/{thread_id}/messages/{message_id}/replies/read",
        "PUT",
        true,
    ),
    (Route::Inbox, "/replies/inbox", "GET", true),
    (Route::Mentions, "/mentions", "GET", true),
    (Route::Search, "/search", "GET", true),
];

impl Route {
    fn entry(self) -> &'static (Route, &'static str, &'static str, bool) {
        // The table lists every variant in declaration order (a unit test checks it).
        &ROUTES[self as usize]
    }

    pub(super) fn allow(self) -> &'static str {
        self.entry().2
    }

    /// The route's label in metrics.
    pub(super) fn label(self) -> &'static str {
        self.entry().1
    }
}

/// Every route of the API and the methods it takes, as the router serves them; the OpenAPI
/// test checks the contract against this list. The chat page (`/`, `/ui/{asset}`) is not part
/// of the API.
pub fn route_table() -> Vec<(&'static str, Vec<&'static str>)> {
    ROUTES
        .iter()
        .filter(|(_, _, _, api)| *api)
        .map(|(_, path, allow, _)| (*path, allow.split(", ").collect()))
        .collect()
}

/// Every route, the chat page's too: its path, the methods it takes, and whether it is part
/// of the API contract.
pub fn all_routes() -> impl Iterator<Item = (&'static str, Vec<&'static str>, bool)> {
    ROUTES
        .iter()
        .map(|(_, path, allow, api)| (*path, allow.split(", ").collect(), *api))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_route_table_lists_every_route_in_order() {
        for (i, (route, _, _, _)) in ROUTES.iter().enumerate() {
            assert_eq!(*route as usize, i, "{route:?}");
        }
    }
}
