//! Search: every term found anywhere in a message's text, case folded, in the threads asked;
//! an edit or a delete changes what is found at once; pages newest first without gaps or
//! repeats while messages arrive.

use super::*;
use crate::newest::NewestCursor;
use crate::read::ThreadList;
use crate::search::{SearchPage, SearchQuery, SearchText};

fn threads(ts: &[ThreadId]) -> ThreadList {
    ThreadList::new(ts.to_vec()).unwrap()
}

async fn search_page(
    store: &dyn MessageStore,
    ts: &[ThreadId],
    text: &str,
    from: &[UserId],
    after: Option<NewestCursor>,
    n: u32,
) -> SearchPage {
    let query = SearchQuery {
        text: SearchText::parse(text).unwrap(),
        threads: threads(ts),
        from: from.to_vec(),
        after,
        size: size(n),
    };
    store.search(&query).await.expect("search")
}

/// The contents a search finds, newest first.
async fn found(store: &dyn MessageStore, ts: &[ThreadId], text: &str) -> Vec<String> {
    search_page(store, ts, text, &[], None, 200)
        .await
        .page
        .items
        .into_iter()
        .map(|m| m.content)
        .collect()
}

/// What matches: every term, anywhere (inside a word, inside text without spaces), case
/// folded, phrases as written; emoji and URLs; only the threads asked; only the authors asked;
/// the threads' positions.
pub async fn a_search_finds_every_term_anywhere_case_folded(subject: &Subject) {
    let store = subject.store.as_ref();
    let (t, other) = (thread(), thread());
    let (ada, bob) = (user(), user());
    let texts = [
        (ada, "We REDEPLOYED the gateway at noon"),
        (bob, "明天的会议取消了"),
        (ada, "shipped 🎉 see https://example.com/a?b=1_c"),
        (bob, "The Release\n\tnotes are out"),
        (ada, "notes on the release"),
        (bob, "Été à Paris"),
        (ada, "100% done, 50_50 split"),
    ];
    for (author, text) in texts {
        insert(store, &message(t, author, T0, text)).await;
    }
    insert(store, &message(other, ada, T0, "deployed elsewhere")).await;
    assert_eq!(
        found(store, &[t], "deploy").await,
        ["We REDEPLOYED the gateway at noon"],
        "inside a word, case folded, only the thread asked"
    );
    assert_eq!(found(store, &[t, other], "deploy").await.len(), 2);
    assert_eq!(found(store, &[t], "会议").await, ["明天的会议取消了"]);
    assert_eq!(found(store, &[t], "取消").await, ["明天的会议取消了"]);
    assert_eq!(
        found(store, &[t], "🎉 example.com/a?b=1_c").await.len(),
        1,
        "emoji and a URL"
    );
    assert_eq!(
        found(store, &[t], "\"release notes\"").await,
        ["The Release\n\tnotes are out"],
        "a phrase as written, white space as one space"
    );
    assert_eq!(
        found(store, &[t], "release notes").await.len(),
        2,
        "words in any order"
    );
    assert_eq!(found(store, &[t], "ÉTÉ").await, ["Été à Paris"]);
    assert_eq!(found(store, &[t], "é").await.len(), 1, "one character");
    assert_eq!(
        found(store, &[t], "0_5").await,
        ["100% done, 50_50 split"],
        "LIKE's characters taken literally"
    );
    assert!(found(store, &[t], "0%d").await.is_empty());
    assert!(
        found(store, &[t], "deploy noon gateway missing")
            .await
            .is_empty()
    );
    let by_bob = search_page(store, &[t], "a", &[bob], None, 50).await;
    assert!(by_bob.page.items.iter().all(|m| m.user_id == bob));
    assert_eq!(by_bob.page.items.len(), 2, "the release notes, Paris");
    let never = thread();
    assert_eq!(
        search_page(store, &[t, never], "x", &[], None, 5)
            .await
            .threads,
        [(t, 7), (never, 0)],
        "each thread's position, in the order asked"
    );
}

/// An edit's old words stop matching and its new ones match, a deleted message is gone, in
/// the answer after the change, whose positions include it.
pub async fn an_edit_or_a_delete_changes_what_a_search_finds(subject: &Subject) {
    let store = subject.store.as_ref();
    let t = thread();
    let author = user();
    let m = insert(store, &message(t, author, T0, "the launch is on Friday")).await;
    let kept = insert(store, &message(t, author, T0, "Friday drinks")).await;
    assert_eq!(found(store, &[t], "friday").await.len(), 2);
    edit(store, &m, "the launch moved to Monday").await;
    assert_eq!(found(store, &[t], "friday").await, ["Friday drinks"]);
    assert_eq!(
        found(store, &[t], "launch monday").await,
        ["the launch moved to Monday"]
    );
    delete(store, &kept).await;
    assert!(found(store, &[t], "friday").await.is_empty());
    let after = search_page(store, &[t], "monday", &[], None, 5).await;
    assert_eq!(after.threads, [(t, 4)], "the edit and the delete are in it");
    assert_eq!(after.page.items[0].rev, 3);
}

/// Pages newest first (by id, then thread) across threads, each message once, `has_more`
/// exact, while matching messages arrive between pages (newer: not on later pages).
pub async fn search_pages_newest_first_without_gaps_while_messages_arrive(subject: &Subject) {
    let store = subject.store.as_ref();
    let ts = [thread(), thread(), thread()];
    let author = user();
    let mut wanted = Vec::new();
    for i in 0..25 {
        let t = ts[i % 3];
        let text = if i % 4 == 3 {
            format!("chatter {i}")
        } else {
            format!("standup note {i}")
        };
        let m = insert(store, &message(t, author, T0 + i as i64, &text)).await;
        if i % 4 != 3 {
            wanted.push(m);
        }
    }
    wanted.sort_by_key(|m| std::cmp::Reverse((m.id, m.thread_id)));
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = search_page(store, &ts, "standup", &[], after, 7).await.page;
        assert!(page.items.len() <= 7);
        seen.extend(page.items.iter().map(|m| m.id));
        // Newer ones arrive between pages: they belong before the first page, not after.
        insert(store, &message(ts[0], author, T0, "standup late")).await;
        assert_eq!(page.has_more, page.next_cursor.is_some());
        match page.next_cursor {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(seen, wanted.iter().map(|m| m.id).collect::<Vec<_>>());
}
