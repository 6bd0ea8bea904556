//! One edit or one removal on PostgreSQL, on a connection or inside a group's transaction (see
//! `change`): the message read, the core's rule asked, the change written with its number and
//! its event.

use deadpool_postgres::GenericClient;

use super::replies::{lock_root, recount_root};
use super::rows::{mentions_column, message_from_row};
use super::{db, decode};
use crate::error::{Error, Result};
use crate::message::{Message, MessageId, ThreadId, Tombstone, UserId};
use crate::rules::{self, Actor, Removed};
use crate::write::{DeleteRequest, EditRequest};

/// An edit, first step: lock the live message (a concurrent edit, delete or reaction waits)
/// and read it as it is, for the service's patch and the version it replaces.
const LOCK: &str = r#"
SELECT thread_id, id, user_id, kind, content, paths, created_at, updated_at, seq, rev,
       reply_to, reactions, root_id, reply_count, last_reply_at, last_reply_id,
       reply_users, mentions
FROM messages
WHERE thread_id = $1 AND id = $2 AND deleted_at IS NULL
FOR UPDATE
"#;

/// An edit, last step before the commit: bump the counter, write the new content and
/// mentions ($13) numbered with it, file the message under its new mention keys ($15) alone
/// (the rows of its old keys, $16, that it no longer has go, each found by its primary key),
/// keep the replaced version ($6, $7, $8, $14), write the event.
const NUMBER_EDIT: &str = r#"
WITH bump AS (
    INSERT INTO threads AS t (thread_id, head) VALUES ($1, 1)
    ON CONFLICT (thread_id) DO UPDATE SET head = t.head + 1
    RETURNING head
), upd AS (
    UPDATE messages m
    SET content = $3, paths = $4, updated_at = $5, rev = bump.head, mentions = $13 FROM bump
    WHERE m.thread_id = $1 AND m.id = $2 RETURNING m.seq, m.rev, m.user_id, m.root_id
), old AS (
    INSERT INTO message_edits (thread_id, message_id, replaced_by, content, paths, made_at,
                               mentions)
    SELECT $1, $2, rev, $6, $7, $8, $14 FROM upd
), unfiled AS (
    DELETE FROM mentions
    WHERE thread_id = $1 AND user_id = ANY($16::uuid[]) AND user_id <> ALL($15::uuid[])
      AND seq = (SELECT seq FROM upd)
), filed AS (
    INSERT INTO mentions (thread_id, user_id, seq, author, id)
    SELECT $1, k, seq, user_id, $2 FROM upd, unnest($15::uuid[]) k
    ON CONFLICT DO NOTHING
), ob AS (
    INSERT INTO outbox (id, kind, thread_id, time, payload, message_seq, rev)
    SELECT $9, $10, $1, $11, $12, seq, rev FROM upd
) SELECT rev FROM upd
"#;

/// One statement: lock the live message written by $3 (a concurrent delete waits, then finds
/// it gone), bump the counter, mark the message deleted with the new number, who removed it
/// when not its author ($9) and why ($10), forget its edit history, reactions and mentions
/// (the rows of the keys its `mentions` names, each found by its primary key), write the event. A moderator's removal names the author it read first as $3.
const DELETE: &str = r#"
WITH target AS (
    SELECT id FROM messages
    WHERE thread_id = $1 AND id = $2 AND user_id = $3 AND deleted_at IS NULL FOR UPDATE
), bump AS (
    INSERT INTO threads AS t (thread_id, head) SELECT $1, 1 WHERE EXISTS (SELECT 1 FROM target)
    ON CONFLICT (thread_id) DO UPDATE SET head = t.head + 1
    RETURNING head
), del AS (
    UPDATE messages m
    SET deleted_at = $4, rev = bump.head, deleted_by = $9, delete_reason = $10 FROM bump
    WHERE m.thread_id = $1 AND m.id = $2 AND m.deleted_at IS NULL
    RETURNING m.seq, m.rev, m.mentions::jsonb AS mentions
), edits AS (
    DELETE FROM message_edits
    WHERE thread_id = $1 AND message_id = $2 AND EXISTS (SELECT 1 FROM del)
), holders AS (
    DELETE FROM reactions
    WHERE thread_id = $1 AND message_id = $2 AND EXISTS (SELECT 1 FROM del)
), unfiled AS (
    DELETE FROM mentions x USING del
    WHERE x.thread_id = $1 AND x.seq = del.seq AND del.mentions IS NOT NULL
      AND x.user_id = ANY(CASE WHEN (del.mentions ->> 'room')::boolean
                               THEN ARRAY['00000000-0000-0000-0000-000000000000'::uuid]
                               ELSE ARRAY(SELECT jsonb_array_elements_text(del.mentions -> 'users')::uuid)
                          END)
), ob AS (
    INSERT INTO outbox (id, kind, thread_id, time, payload, message_seq, rev)
    SELECT $5, $6, $1, $7, $8, seq, rev FROM del
) SELECT seq, rev FROM del
"#;

/// The author of a live message, and the root of its conversation when it is a reply.
const AUTHOR: &str = r#"
SELECT user_id, root_id FROM messages WHERE thread_id = $1 AND id = $2 AND deleted_at IS NULL
"#;

/// The live messages of thread $1 among the ids $2, with their authors and roots, locked in
/// id order.
pub(super) const LOCK_LIVE_MANY: &str = r#"
SELECT id, user_id, root_id FROM messages
WHERE thread_id = $1 AND id = ANY($2) AND deleted_at IS NULL
ORDER BY id
FOR UPDATE
"#;

/// Edits as `request` says on `client`, inside a transaction (or a savepoint) the caller
/// commits: the live message held, the rule asked, the edit numbered with its event.
pub(super) async fn edit_in<C: GenericClient + Sync>(
    client: &C,
    request: &EditRequest,
) -> Result<Message> {
    let (thread, id) = (request.thread, request.id);
    let lock = client.prepare_cached(LOCK).await.map_err(db("prepare"))?;
    let number = client
        .prepare_cached(NUMBER_EDIT)
        .await
        .map_err(db("prepare"))?;
    let current = client
        .query_opt(&lock, &[thread.as_uuid(), id.as_uuid()])
        .await
        .map_err(db("update message"))?
        .map(|row| message_from_row(&row, 0))
        .transpose()?;
    let mut edit = rules::edit(current.as_ref(), request)?;
    let (message, replaced, event) = (&edit.message, &edit.replaced, &edit.event);
    let row = client
        .query_one(
            &number,
            &[
                thread.as_uuid(),
                id.as_uuid(),
                &message.content,
                &message.paths,
                &message.updated_at.to_datetime(),
                &replaced.content,
                &replaced.paths,
                &replaced.made_at.to_datetime(),
                &event.id,
                &event.kind,
                &event.time.to_datetime(),
                &event.open_payload,
                &mentions_column(message.mentions.as_ref()),
                &mentions_column(replaced.mentions.as_ref()),
                &crate::message::Mentions::keys(message.mentions.as_ref()),
                &crate::message::Mentions::keys(replaced.mentions.as_ref()),
            ],
        )
        .await
        .map_err(db("number edit"))?;
    edit.number(row.try_get(0).map_err(decode)?);
    Ok(edit.message)
}

/// Deletes as `request` says on `client`, inside a transaction (or a savepoint) the caller
/// commits: a reply's live root locked first, the removal numbered, then the root's recounted
/// summary numbered after it.
pub(super) async fn delete_in<C: GenericClient + Sync>(
    client: &C,
    request: &DeleteRequest,
) -> Result<Tombstone> {
    let (thread, id, removal) = (request.thread, request.id, &request.removal);
    // Whose it is decides whether the remover may and what the tombstone says; the statement
    // requires that author again, so a change in between is told apart after.
    let found = author_of_live(client, thread, id).await?;
    let author = found.map(|(author, _)| author);
    let removed = rules::remove(thread, id, author, removal, request.at)?;
    let author = author.ok_or(Error::NotFound)?;
    let root = match found.and_then(|(_, root)| root) {
        Some(root) => lock_root(client, thread, root).await?,
        None => None,
    };
    let stmt = client.prepare_cached(DELETE).await.map_err(db("prepare"))?;
    match run_delete(client, &stmt, &removed, author).await? {
        Some(tombstone) => {
            if let Some(root) = root {
                recount_root(client, root, request.participants, request.at).await?;
            }
            Ok(tombstone)
        }
        None => {
            // Not live, or not the remover's: the rule says which, from what is there now.
            let found = author_of_live(client, thread, id).await?;
            rules::may_change(found.map(|(author, _)| author), Actor::Remover(removal))?;
            Err(Error::internal(
                "delete message",
                "a message the remover may remove was not removed",
            ))
        }
    }
}

/// The author of the live message `id` of `thread` and its root when it is a reply, if the
/// thread holds it live.
async fn author_of_live<C: GenericClient + Sync>(
    client: &C,
    thread: ThreadId,
    id: MessageId,
) -> Result<Option<(UserId, Option<MessageId>)>> {
    let stmt = client.prepare_cached(AUTHOR).await.map_err(db("prepare"))?;
    let Some(row) = client
        .query_opt(&stmt, &[thread.as_uuid(), id.as_uuid()])
        .await
        .map_err(db("delete message"))?
    else {
        return Ok(None);
    };
    let author: uuid::Uuid = row.try_get(0).map_err(decode)?;
    let root: Option<uuid::Uuid> = row.try_get(1).map_err(decode)?;
    Ok(Some((
        UserId::from_uuid(author),
        root.map(MessageId::from_uuid),
    )))
}

/// Runs `DELETE` (prepared as `stmt`) for a removal the rules allowed, of a live message
/// `author` wrote; its tombstone, or `None` when the message was not live (or not `author`'s).
pub(super) async fn run_delete<C: GenericClient + Sync>(
    client: &C,
    stmt: &tokio_postgres::Statement,
    removed: &Removed,
    author: UserId,
) -> Result<Option<Tombstone>> {
    let (event, deletion) = (&removed.event, &removed.deletion);
    let deleted_by = deletion.by.map(|u| *u.as_uuid());
    let row = client
        .query_opt(
            stmt,
            &[
                removed.thread.as_uuid(),
                removed.id.as_uuid(),
                author.as_uuid(),
                &deletion.at.to_datetime(),
                &event.id,
                &event.kind,
                &event.time.to_datetime(),
                &event.open_payload,
                &deleted_by,
                &deletion.reason,
            ],
        )
        .await
        .map_err(db("delete message"))?;
    row.map(|row| {
        let seq = row.try_get(0).map_err(decode)?;
        let rev = row.try_get(1).map_err(decode)?;
        Ok(removed.tombstone(seq, rev))
    })
    .transpose()
}

/// Prepares `DELETE` on `client`, for [`run_delete`].
pub(super) async fn prepare_delete<C: GenericClient + Sync>(
    client: &C,
) -> Result<tokio_postgres::Statement> {
    client.prepare_cached(DELETE).await.map_err(db("prepare"))
}
