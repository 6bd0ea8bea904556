//! A group of creates as the group statements take it (`create`'s creates, `reply_group`'s
//! replies): one array per column, the first sixteen parameters of both statements.

use chrono::{DateTime, Utc};
use tokio_postgres::types::ToSql;

use super::queue::CreateJob;
use super::rows::{group_mention_keys, mentions_column};

/// The columns of a group's messages, their keys and events: `$1`-`$16` of a group statement
/// (thread, id, user, kind, content, paths as JSON, created at, idempotency key and request
/// hash, event id, kind, time and payload, mentions as JSON, then the mention keys' places
/// and keys).
pub(super) struct GroupColumns<'a> {
    threads: Vec<&'a uuid::Uuid>,
    ids: Vec<&'a uuid::Uuid>,
    users: Vec<&'a uuid::Uuid>,
    kinds: Vec<&'a str>,
    contents: Vec<&'a str>,
    paths: Vec<String>,
    created: Vec<DateTime<Utc>>,
    keys: Vec<Option<&'a str>>,
    hashes: Vec<Option<&'a [u8]>>,
    event_ids: Vec<&'a uuid::Uuid>,
    event_kinds: Vec<&'a str>,
    event_times: Vec<DateTime<Utc>>,
    payloads: Vec<&'a [u8]>,
    mentions: Vec<Option<String>>,
    mention_places: Vec<i64>,
    mention_keys: Vec<uuid::Uuid>,
}

impl<'a> GroupColumns<'a> {
    /// The columns of `jobs`, in their order.
    pub(super) fn of(jobs: &'a [CreateJob]) -> Self {
        let message = |j: &'a CreateJob| &j.request.message;
        let (mention_places, mention_keys) = group_mention_keys(jobs.iter().map(message));
        GroupColumns {
            threads: jobs
                .iter()
                .map(|j| message(j).thread_id.as_uuid())
                .collect(),
            ids: jobs.iter().map(|j| message(j).id.as_uuid()).collect(),
            users: jobs.iter().map(|j| message(j).user_id.as_uuid()).collect(),
            kinds: jobs.iter().map(|j| message(j).kind.as_str()).collect(),
            contents: jobs.iter().map(|j| message(j).content.as_str()).collect(),
            paths: jobs
                .iter()
                .map(|j| {
                    serde_json::to_string(&message(j).paths)
                        .expect("a list of strings always serialises to JSON")
                })
                .collect(),
            created: jobs
                .iter()
                .map(|j| message(j).created_at.to_datetime())
                .collect(),
            keys: jobs
                .iter()
                .map(|j| j.request.idempotency.as_ref().map(|i| i.key.as_str()))
                .collect(),
            hashes: jobs
                .iter()
                .map(|j| {
                    let idempotency = j.request.idempotency.as_ref();
                    idempotency.map(|i| i.fingerprint.as_bytes().as_slice())
                })
                .collect(),
            event_ids: jobs.iter().map(|j| &j.event.id).collect(),
            event_kinds: jobs.iter().map(|j| j.event.kind).collect(),
            event_times: jobs.iter().map(|j| j.event.time.to_datetime()).collect(),
            payloads: jobs
                .iter()
                .map(|j| j.event.open_payload.as_slice())
                .collect(),
            mentions: jobs
                .iter()
                .map(|j| mentions_column(message(j).mentions.as_ref()))
                .collect(),
            mention_places,
            mention_keys,
        }
    }

    /// `$1`-`$16`, then `more` from `$17` on.
    pub(super) fn params<'s>(
        &'s self,
        more: &[&'s (dyn ToSql + Sync)],
    ) -> Vec<&'s (dyn ToSql + Sync)> {
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![
            &self.threads,
            &self.ids,
            &self.users,
            &self.kinds,
            &self.contents,
            &self.paths,
            &self.created,
            &self.keys,
            &self.hashes,
            &self.event_ids,
            &self.event_kinds,
            &self.event_times,
            &self.payloads,
            &self.mentions,
            &self.mention_places,
            &self.mention_keys,
        ];
        params.extend_from_slice(more);
        params
    }
}
