//! The `catchup` scenario: a client that must never miss a message it knows was written.

use goose::prelude::*;

use crate::client::*;

/// A client that writes to a thread, then catches up on it twice: with the changes feed from
/// its last `next`, and with `after_seq` from the last message it saw. A message it wrote and
/// had acknowledged before a read began must be in what that read returns; one that is not is
/// a failure (named after the way of reading that missed it).
pub(crate) async fn catchup(user: &mut GooseUser) -> TransactionResult {
    let thread = pick_thread(user);
    let limit = settings().page_limit;
    if !session(user).follows.contains_key(&thread) {
        // First visit: start from where the thread is now.
        let Some(page) = read_page(user, thread, "limit=1", "newest page (position)", 1).await?
        else {
            return Ok(());
        };
        let follow = Follow {
            since: page["rev"].as_i64().unwrap_or(0),
            after_seq: page["items"][0]["seq"].as_i64().unwrap_or(0),
            ..Follow::default()
        };
        session(user).follows.insert(thread, follow);
    }
    let author = session_author(user);
    if let Some((_, id)) = post_message_in(user, author, thread).await? {
        let follow = session(user).follows.entry(thread).or_default();
        follow.unseen_by_changes.insert(id.clone());
        follow.unseen_by_after.insert(id);
    }

    // The changes feed, until caught up. A miss fails the last read, which should have had
    // the message.
    loop {
        let since = session(user).follows.entry(thread).or_default().since;
        let path = format!("/threads/{thread}/changes?since={since}&limit={limit}");
        let (mut goose, read) = read_json(user, &path, "changes since").await?;
        let Some(read) = read else {
            return Ok(());
        };
        let (Some(changes), Some(next), Some(has_more)) = (
            read["changes"].as_array(),
            read["next"].as_i64(),
            read["has_more"].as_bool(),
        ) else {
            return fail(user, &mut goose, "changes: not the documented shape");
        };
        let follow = session(user).follows.entry(thread).or_default();
        let mut last_rev = follow.since;
        let mut in_order = true;
        for change in changes {
            let rev = change["rev"].as_i64().unwrap_or(0);
            in_order &= rev > last_rev;
            last_rev = rev;
            if let Some(id) = change["id"].as_str() {
                follow.unseen_by_changes.remove(id);
            }
        }
        follow.since = next;
        let missed = !has_more && !follow.unseen_by_changes.is_empty();
        if !in_order {
            return fail(user, &mut goose, "changes: not in rev order");
        }
        if missed {
            return fail(
                user,
                &mut goose,
                "changes: an acknowledged message was never seen",
            );
        }
        if !has_more {
            break;
        }
    }

    // after_seq, until caught up.
    loop {
        let after = session(user).follows.entry(thread).or_default().after_seq;
        let path = format!("/threads/{thread}/messages?limit={limit}&after_seq={after}");
        let (mut goose, page) = read_json(user, &path, "newer page (after_seq)").await?;
        let Some(page) = page else {
            return Ok(());
        };
        if let Err(why) = page_is_valid(&page, thread, limit) {
            return fail(user, &mut goose, why);
        }
        let follow = session(user).follows.entry(thread).or_default();
        for m in page["items"].as_array().into_iter().flatten() {
            if let Some(seq) = m["seq"].as_i64() {
                follow.after_seq = follow.after_seq.max(seq);
            }
            if let Some(id) = m["id"].as_str() {
                follow.unseen_by_after.remove(id);
            }
        }
        let has_more = page["has_more"] == true;
        if !has_more && !follow.unseen_by_after.is_empty() {
            return fail(
                user,
                &mut goose,
                "after_seq: an acknowledged message was never seen",
            );
        }
        if !has_more {
            break;
        }
    }
    Ok(())
}
