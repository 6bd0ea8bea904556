//! A history checker, in the manner of Jepsen's: a workload of writers, stream readers, a
//! changes-feed reader and a broker consumer runs against a set of replicas while a scenario
//! injects faults (`faults`). Every request is recorded with its outcome and every observation
//! with where it was made; afterwards the whole history is checked against the service's
//! promises (`check`), and the first violation is printed with the operations around it.
//!
//! What it checks:
//! - every acknowledged create is in the final state exactly once, and nothing appears twice
//!   (a create retried with its `Idempotency-Key` on another replica is one message);
//!   acknowledged edits, deletes and reactions hold in the final state unless a later attempt
//!   of unknown outcome may have changed them; two acknowledged changes never share a number;
//! - per thread, the ids a stream reader received rise and never repeat, across reconnects to
//!   other replicas with `Last-Event-ID`; each event's data carries the rev of its id; the
//!   changes feed's `next` never goes back;
//! - the state each reader built from what it received equals the store's final state (so no
//!   change that still stands was skipped);
//! - the broker delivered every number of every thread at least once: after dropping
//!   duplicates by `cloudEvents:id`, each thread's `cloudEvents:sequence` is 1..head, one
//!   event per number;
//! - a user's read position never moves back (the workload never marks as unread);
//! - no request got an answer the service never gives to it (a 500, a 400 to a well-formed
//!   request).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::helpers::EventStream;

/// What became of a request.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// A success status and its body (`Null` when it had none).
    Done(u16, Value),
    /// A refusal the workload can provoke honestly (a message deleted meanwhile).
    Refused(u16),
    /// No answer, or 502/503/504: the write may or may not have landed.
    Unknown(String),
    /// An answer the service never gives to this request (a 500, a 400 to a valid request).
    Wrong(u16, String),
}

impl Outcome {
    fn done(&self) -> Option<&Value> {
        match self {
            Outcome::Done(_, body) => Some(body),
            _ => None,
        }
    }

    fn unknown(&self) -> bool {
        matches!(self, Outcome::Unknown(_))
    }
}

/// One recorded operation or observation.
#[derive(Clone, Debug)]
pub enum Event {
    Create {
        thread: String,
        tag: String,
        attempts: u32,
        outcome: Outcome,
    },
    Edit {
        thread: String,
        id: String,
        content: String,
        outcome: Outcome,
    },
    Delete {
        thread: String,
        id: String,
        outcome: Outcome,
    },
    React {
        thread: String,
        id: String,
        user: String,
        emoji: &'static str,
        add: bool,
        outcome: Outcome,
    },
    Read {
        thread: String,
        user: String,
        outcome: Outcome,
    },
    /// What a scenario did, printed with the operations around a violation.
    Fault(#[allow(dead_code, reason = "printed in a violation's context")] String),
    /// A stream reader (re)connected to `replica` after `after`.
    #[allow(dead_code, reason = "printed in a violation's context")]
    Connected {
        reader: usize,
        replica: usize,
        after: i64,
    },
    /// A stream reader received event `id` with `data`.
    Streamed {
        reader: usize,
        thread: String,
        id: i64,
        data: Value,
    },
    /// The changes feed answered `changes` after `since`, with `next`.
    Polled {
        thread: String,
        since: i64,
        next: i64,
        changes: Vec<Value>,
    },
}

/// One entry: when (milliseconds since the run began), who, what.
#[derive(Clone, Debug)]
pub struct Entry {
    pub at_ms: u64,
    pub who: String,
    pub event: Event,
}

/// The history of a run, appended to by every task of the workload.
#[derive(Clone)]
pub struct History {
    began: Instant,
    entries: Arc<Mutex<Vec<Entry>>>,
}

impl History {
    pub fn new() -> History {
        History {
            began: Instant::now(),
            entries: Arc::new(Mutex::new(Vec::new())),
        }
    }

    pub fn record(&self, who: &str, event: Event) {
        let at_ms = u64::try_from(self.began.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(Entry {
                at_ms,
                who: who.to_owned(),
                event,
            });
    }

    pub fn entries(&self) -> Vec<Entry> {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

/// The store's final state: thread → message id → the message or its tombstone.
pub type Store = HashMap<String, BTreeMap<String, Value>>;

/// One event the broker delivered: its thread, `cloudEvents:sequence` and `cloudEvents:id`.
#[derive(Clone, Debug)]
pub struct Published {
    pub thread: String,
    pub sequence: i64,
    pub id: String,
}

/// A broken promise: what, and the entry of the history it concerns, if one.
#[derive(Clone, Debug)]
pub struct Violation {
    pub what: String,
    pub entry: Option<usize>,
}

/// What `check` counted and found.
#[derive(Debug, Default)]
pub struct Report {
    pub writes: usize,
    pub acknowledged: usize,
    pub unknown: usize,
    pub faults: usize,
    pub streamed: usize,
    pub reconnects: usize,
    pub polled: usize,
    pub published: usize,
    pub violations: Vec<Violation>,
}

impl Report {
    /// One line of counts.
    pub fn summary(&self) -> String {
        format!(
            "{} writes ({} acknowledged, {} of unknown outcome), {} faults, {} events streamed \
             over {} connections, {} changes polled, {} broker deliveries: {} violations",
            self.writes,
            self.acknowledged,
            self.unknown,
            self.faults,
            self.streamed,
            self.reconnects,
            self.polled,
            self.published,
            self.violations.len()
        )
    }

    /// The first violation with the writes and faults around it.
    pub fn first_violation(&self, entries: &[Entry]) -> Option<String> {
        let first = self.violations.first()?;
        let mut out = format!("first violation: {}\n", first.what);
        if let Some(at) = first.entry {
            let around: Vec<usize> = (0..entries.len())
                .filter(|&i| {
                    !matches!(
                        entries[i].event,
                        Event::Streamed { .. } | Event::Polled { .. }
                    )
                })
                .collect();
            let pos = around.iter().position(|&i| i >= at).unwrap_or(around.len());
            for &i in &around[pos.saturating_sub(8)..(pos + 8).min(around.len())] {
                let e = &entries[i];
                let mark = if i == at { ">>" } else { "  " };
                let _ = writeln!(out, "{mark} {:>6} ms {:<10} {:?}", e.at_ms, e.who, e.event);
            }
        }
        Some(out)
    }
}

/// A message's identity across edits: the tag its create wrote (`w3-17`), which edits keep
/// as the part before `/`.
fn tag_of(message: &Value) -> Option<&str> {
    message["content"].as_str()?.split('/').next()
}

fn rev_of(message: &Value) -> i64 {
    message["rev"].as_i64().unwrap_or(-1)
}

fn reaction_count(message: &Value, emoji: &str) -> i64 {
    message["reactions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["emoji"] == emoji)
        .and_then(|r| r["count"].as_i64())
        .unwrap_or(0)
}

/// Checks a history against the store's final state (`thread → id → message or tombstone`,
/// from the changes feed) and what the broker delivered (`None`: no broker in this run).
pub fn check(entries: &[Entry], store: &Store, broker: Option<&[Published]>) -> Report {
    let mut report = Report::default();
    let mut violations = Vec::new();
    let mut violate = |what: String, entry: Option<usize>| {
        violations.push(Violation { what, entry });
    };
    let message = |thread: &str, id: &str| store.get(thread).and_then(|m| m.get(id));

    // Writes: acknowledged ones hold, nothing appears twice, numbers are taken once.
    let mut creates: HashMap<&str, (usize, bool)> = HashMap::new();
    let mut numbers: HashMap<(&str, i64), usize> = HashMap::new();
    // Per message: its edits in order; its deletes; per (message, user, emoji): reactions.
    let mut edits: HashMap<&str, Vec<(usize, &str, &Outcome)>> = HashMap::new();
    let mut deletes: HashMap<&str, Vec<(usize, &Outcome)>> = HashMap::new();
    type Holding<'a> = Vec<(usize, bool, &'a Outcome)>;
    let mut reactions: HashMap<(&str, &str, &str), Holding> = HashMap::new();
    let mut positions: HashMap<(&str, &str), (usize, i64)> = HashMap::new();
    // Writes, acknowledged (answered, a refusal included), of unknown outcome.
    let counted = |outcome: &Outcome, tally: &mut (usize, usize, usize)| {
        tally.0 += 1;
        match outcome {
            Outcome::Done(..) | Outcome::Refused(_) => tally.1 += 1,
            Outcome::Unknown(_) => tally.2 += 1,
            Outcome::Wrong(..) => {}
        }
    };
    let mut tally = (0, 0, 0);
    let (mut faults, mut reconnects, mut streamed, mut polled_changes) = (0, 0, 0, 0);
    for (i, entry) in entries.iter().enumerate() {
        let (thread, outcome) = match &entry.event {
            Event::Create {
                thread,
                tag,
                attempts,
                outcome,
            } => {
                creates.insert(tag, (i, outcome.done().is_some()));
                if *attempts > 1 {
                    // A replay answers the message in its current state: its rev is not the
                    // create's own number.
                    counted(outcome, &mut tally);
                    if let Outcome::Wrong(status, body) = outcome {
                        violate(
                            format!("{}: create answered {status}: {body}", entry.who),
                            Some(i),
                        );
                    }
                    continue;
                }
                (thread, outcome)
            }
            Event::Edit {
                thread,
                id,
                content,
                outcome,
            } => {
                edits.entry(id).or_default().push((i, content, outcome));
                (thread, outcome)
            }
            Event::Delete {
                thread,
                id,
                outcome,
            } => {
                deletes.entry(id).or_default().push((i, outcome));
                (thread, outcome)
            }
            Event::React {
                thread,
                id,
                user,
                emoji,
                add,
                outcome,
            } => {
                reactions
                    .entry((id, user, emoji))
                    .or_default()
                    .push((i, *add, outcome));
                if matches!(outcome, Outcome::Done(200, _)) {
                    // Held already: no number taken, the answer carries the message's rev.
                    counted(outcome, &mut tally);
                    continue;
                }
                (thread, outcome)
            }
            Event::Read {
                thread,
                user,
                outcome,
            } => {
                if let Some(seq) = outcome.done().and_then(|b| b["seq"].as_i64()) {
                    if let Some(&(_, before)) = positions.get(&(thread.as_str(), user.as_str()))
                        && seq < before
                    {
                        violate(
                            format!(
                                "{user}'s read position in {thread} went back from {before} to {seq}"
                            ),
                            Some(i),
                        );
                    }
                    positions.insert((thread, user), (i, seq));
                }
                if let Outcome::Wrong(status, body) = outcome {
                    violate(
                        format!("{}: read position answered {status}: {body}", entry.who),
                        Some(i),
                    );
                }
                continue;
            }
            Event::Fault(_) => {
                faults += 1;
                continue;
            }
            Event::Connected { .. } => {
                reconnects += 1;
                continue;
            }
            Event::Streamed { .. } => {
                streamed += 1;
                continue;
            }
            Event::Polled { changes, .. } => {
                polled_changes += changes.len();
                continue;
            }
        };
        counted(outcome, &mut tally);
        if let Outcome::Wrong(status, body) = outcome {
            violate(format!("{}: answered {status}: {body}", entry.who), Some(i));
        }
        if let Some(body) = outcome.done()
            && body.is_object()
        {
            let rev = rev_of(body);
            if let Some(&other) = numbers.get(&(thread.as_str(), rev)) {
                violate(
                    format!(
                        "two acknowledged changes of {thread} both took number {rev} (the other at entry {other})"
                    ),
                    Some(i),
                );
            }
            numbers.insert((thread, rev), i);
        }
    }
    (report.writes, report.acknowledged, report.unknown) = tally;
    (
        report.faults,
        report.reconnects,
        report.streamed,
        report.polled,
    ) = (faults, reconnects, streamed, polled_changes);

    // Every message of the store: one per tag, and every tag one that a create tried.
    let mut seen_tags: HashMap<&str, &str> = HashMap::new();
    for messages in store.values() {
        for (id, m) in messages {
            if m.get("deleted_at").is_some() {
                continue;
            }
            let Some(tag) = tag_of(m) else { continue };
            if let Some(other) = seen_tags.insert(tag, id) {
                violate(
                    format!("create {tag} is in the store twice: {other} and {id}"),
                    creates.get(tag).map(|c| c.0),
                );
            }
            if !creates.contains_key(tag) {
                violate(format!("{id} carries {tag}, which no create wrote"), None);
            }
        }
    }
    // Acknowledged creates: present (as a message, or a tombstone if a delete was tried).
    for entry in entries.iter().enumerate() {
        let (i, Entry { event, .. }) = entry;
        if let Event::Create {
            thread,
            outcome: Outcome::Done(_, body),
            ..
        } = event
        {
            let id = body["id"].as_str().unwrap_or_default();
            match message(thread, id) {
                None => violate(
                    format!("acknowledged create {id} is not in the store"),
                    Some(i),
                ),
                Some(m) if m.get("deleted_at").is_some() && !deletes.contains_key(id) => {
                    violate(
                        format!("{id} was deleted, but no delete of it was sent"),
                        Some(i),
                    );
                }
                Some(_) => {}
            }
        }
    }
    // Edits: the final content is the last acknowledged edit's, or one tried after it.
    for (id, tries) in &edits {
        let Some(m) = store.values().find_map(|ms| ms.get(*id)) else {
            continue;
        };
        if m.get("deleted_at").is_some() {
            continue;
        }
        let last_done = tries.iter().rposition(|(_, _, o)| o.done().is_some());
        let allowed: Vec<&str> = match last_done {
            Some(k) => tries[k..]
                .iter()
                .filter(|(_, _, o)| o.done().is_some() || o.unknown())
                .map(|(_, c, _)| *c)
                .collect(),
            None => continue,
        };
        let content = m["content"].as_str().unwrap_or_default();
        if !allowed.contains(&content) {
            violate(
                format!(
                    "{id} reads {content:?}; its last acknowledged edit wrote {:?}",
                    allowed[0]
                ),
                Some(tries[last_done.unwrap_or(0)].0),
            );
        }
    }
    // Deletes: an acknowledged one leaves a tombstone.
    for (id, tries) in &deletes {
        if let Some(&(i, _)) = tries.iter().find(|(_, o)| o.done().is_some()) {
            let stored = store.values().find_map(|ms| ms.get(*id));
            if stored.is_none_or(|m| m.get("deleted_at").is_none()) {
                violate(
                    format!("acknowledged delete of {id} did not leave a tombstone"),
                    Some(i),
                );
            }
        }
    }
    // Reactions: per (message, emoji), the count lies between the users who surely hold it
    // and those who may.
    let mut bounds: HashMap<(&str, &str), (i64, i64, usize)> = HashMap::new();
    for ((id, _user, emoji), tries) in &reactions {
        let last_done = tries.iter().rposition(|(_, _, o)| o.done().is_some());
        let held = last_done.is_some_and(|k| tries[k].1);
        let uncertain = tries[last_done.map_or(0, |k| k + 1)..]
            .iter()
            .any(|(_, _, o)| o.unknown())
            || (last_done.is_none() && tries.iter().any(|(_, _, o)| o.unknown()));
        let b = bounds.entry((id, emoji)).or_insert((0, 0, tries[0].0));
        if uncertain {
            b.1 += 1;
        } else if held {
            b.0 += 1;
            b.1 += 1;
        }
    }
    for ((id, emoji), (low, high, at)) in bounds {
        let Some(m) = store.values().find_map(|ms| ms.get(id)) else {
            continue;
        };
        if m.get("deleted_at").is_some() {
            continue;
        }
        let count = reaction_count(m, emoji);
        if count < low || count > high {
            violate(
                format!(
                    "{id} has {count} of {emoji}; the acknowledged reactions say {low}..={high}"
                ),
                Some(at),
            );
        }
    }

    // Readers: ids rise without repeats across reconnects; the state built equals the store's.
    let mut built: HashMap<usize, (String, i64, BTreeMap<String, Value>)> = HashMap::new();
    let mut polled: HashMap<&str, (i64, BTreeMap<String, Value>)> = HashMap::new();
    for (i, entry) in entries.iter().enumerate() {
        match &entry.event {
            Event::Streamed {
                reader,
                thread,
                id,
                data,
            } => {
                let (_, last, state) = built
                    .entry(*reader)
                    .or_insert_with(|| (thread.clone(), 0, BTreeMap::new()));
                if *id <= *last {
                    violate(
                        format!("reader {reader} of {thread} received {id} after {last}"),
                        Some(i),
                    );
                }
                if rev_of(data) != *id {
                    violate(
                        format!("reader {reader}: event {id} carries rev {}", rev_of(data)),
                        Some(i),
                    );
                }
                *last = (*last).max(*id);
                if let Some(mid) = data["id"].as_str() {
                    state.insert(mid.to_owned(), data.clone());
                }
            }
            Event::Polled {
                thread,
                since,
                next,
                changes,
            } => {
                let (at, state) = polled.entry(thread).or_default();
                if next < since || since != at {
                    violate(
                        format!(
                            "the changes feed of {thread} went from {at} to since={since}, next={next}"
                        ),
                        Some(i),
                    );
                }
                let mut previous = *since;
                for change in changes {
                    if rev_of(change) <= previous {
                        violate(
                            format!(
                                "the changes feed of {thread} after {since} gave {} after {previous}",
                                rev_of(change)
                            ),
                            Some(i),
                        );
                    }
                    previous = rev_of(change);
                    if let Some(mid) = change["id"].as_str() {
                        state.insert(mid.to_owned(), change.clone());
                    }
                }
                *at = *next;
            }
            _ => {}
        }
    }
    let empty = BTreeMap::new();
    // The acknowledged write that took a number, to show a violation in its context.
    let writer_of = |thread: &str, rev: i64| numbers.get(&(thread, rev)).copied();
    for (reader, (thread, last, state)) in &built {
        let expected = store.get(thread).unwrap_or(&empty);
        if let Some((diff, rev)) = first_difference(state, expected) {
            let last_at = entries
                .iter()
                .rev()
                .find(|e| matches!(&e.event, Event::Streamed { reader: r, .. } if r == reader))
                .map_or(0, |e| e.at_ms);
            violate(
                format!(
                    "reader {reader} of {thread}: {diff}; it received up to {last}, the last at {last_at} ms"
                ),
                writer_of(thread, rev),
            );
        }
    }
    for (thread, (at, state)) in &polled {
        let expected = store.get(*thread).unwrap_or(&empty);
        if let Some((diff, rev)) = first_difference(state, expected) {
            violate(
                format!("the changes feed reader of {thread}: {diff}; it read up to {at}"),
                writer_of(thread, rev),
            );
        }
    }

    // The broker: each thread's numbers 1..head, one event each, after dropping duplicates.
    if let Some(published) = broker {
        report.published = published.len();
        let mut by_thread: HashMap<&str, BTreeMap<i64, HashSet<&str>>> = HashMap::new();
        for p in published {
            by_thread
                .entry(&p.thread)
                .or_default()
                .entry(p.sequence)
                .or_default()
                .insert(&p.id);
        }
        for (thread, messages) in store {
            let head = messages.values().map(rev_of).max().unwrap_or(0);
            let got = by_thread.remove(thread.as_str()).unwrap_or_default();
            if let Some(missing) = (1..=head).find(|n| !got.contains_key(n)) {
                violate(
                    format!("the broker never delivered {thread}'s number {missing} (head {head})"),
                    None,
                );
            }
            if let Some((n, ids)) = got.iter().find(|(_, ids)| ids.len() > 1) {
                violate(
                    format!(
                        "{thread}'s number {n} was published as {} different events",
                        ids.len()
                    ),
                    None,
                );
            }
            if let Some((n, _)) = got.iter().find(|(n, _)| **n > head || **n < 1) {
                violate(
                    format!("{thread}: the broker delivered number {n}, past head {head}"),
                    None,
                );
            }
        }
    }
    report.violations = violations;
    report
}

/// Where a reader's state first differs from the store's, if it does, and the rev concerned.
fn first_difference(
    built: &BTreeMap<String, Value>,
    store: &BTreeMap<String, Value>,
) -> Option<(String, i64)> {
    for (id, expected) in store {
        match built.get(id) {
            None => {
                return Some((
                    format!("never received {id} (rev {})", rev_of(expected)),
                    rev_of(expected),
                ));
            }
            Some(got) if got != expected => {
                return Some((
                    format!(
                        "holds {id} at rev {}, the store at rev {}",
                        rev_of(got),
                        rev_of(expected)
                    ),
                    rev_of(expected),
                ));
            }
            Some(_) => {}
        }
    }
    built
        .iter()
        .find(|(id, _)| !store.contains_key(*id))
        .map(|(id, m)| {
            (
                format!("received {id}, which the store does not hold"),
                rev_of(m),
            )
        })
}

// ----------------------------------------------------------------------------------------
// The workload.

/// An HTTP client with a deadline on every request.
#[derive(Clone)]
pub struct Http {
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Http {
    pub fn new() -> Http {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(Duration::from_secs(1)));
        Http {
            client: Client::builder(TokioExecutor::new())
                .pool_idle_timeout(Duration::from_secs(5))
                .build(connector),
        }
    }

    /// Sends a request; its status and JSON body (`Null` if none), or why there is no answer.
    pub async fn send(
        &self,
        addr: &str,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<(StatusCode, Value), String> {
        let mut builder = Request::builder()
            .method(method)
            .uri(format!("http://{addr}{path}"));
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let payload = body.map(|b| b.to_string()).unwrap_or_default();
        if body.is_some() {
            builder = builder.header("content-type", "application/json");
        }
        let request = builder
            .body(Full::new(Bytes::from(payload)))
            .map_err(|e| e.to_string())?;
        let answer = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| e.to_string())?;
            let status = response.status();
            let bytes = response
                .into_body()
                .collect()
                .await
                .map_err(|e| e.to_string())?
                .to_bytes();
            let json = if bytes.is_empty() {
                Value::Null
            } else {
                serde_json::from_slice(&bytes)
                    .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
            };
            Ok((status, json))
        };
        tokio::time::timeout(Duration::from_secs(5), answer)
            .await
            .map_err(|_| "no answer within 5 s".to_owned())?
    }

    /// Opens a thread's event stream after `last_event_id`.
    pub async fn stream(
        &self,
        addr: &str,
        thread: &str,
        last_event_id: i64,
    ) -> Result<EventStream, String> {
        let request = Request::builder()
            .uri(format!("http://{addr}/threads/{thread}/events"))
            .header("last-event-id", last_event_id.to_string())
            .body(Full::new(Bytes::new()))
            .map_err(|e| e.to_string())?;
        let response = tokio::time::timeout(Duration::from_secs(5), self.client.request(request))
            .await
            .map_err(|_| "no answer within 5 s".to_owned())?
            .map_err(|e| e.to_string())?;
        if response.status() != StatusCode::OK {
            return Err(format!("status {}", response.status()));
        }
        Ok(EventStream::from_response(response))
    }
}

fn classify(answer: Result<(StatusCode, Value), String>, refusals: &[u16]) -> Outcome {
    match answer {
        Err(e) => Outcome::Unknown(e),
        Ok((status, body)) if status.is_success() => Outcome::Done(status.as_u16(), body),
        Ok((status, _)) if matches!(status.as_u16(), 502..=504) => {
            Outcome::Unknown(status.to_string())
        }
        Ok((status, _)) if refusals.contains(&status.as_u16()) => Outcome::Refused(status.as_u16()),
        Ok((status, body)) => Outcome::Wrong(status.as_u16(), body.to_string()),
    }
}

/// The replicas' addresses (a replica restarted by a scenario comes back on its own).
pub type Replicas = Arc<Vec<String>>;

/// The knobs of a run.
pub struct Workload {
    pub threads: usize,
    pub writers: usize,
    pub readers_per_thread: usize,
    pub duration: Duration,
}

impl Workload {
    /// The run's length: `HISTORY_SECONDS`, else `default`.
    pub fn seconds(default: u64) -> Duration {
        let seconds = std::env::var("HISTORY_SECONDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(default);
        Duration::from_secs(seconds)
    }
}

const EMOJI: [&str; 3] = [":tada:", ":heart:", ":+1:"];

/// A small deterministic generator (xorshift64), seeded per task.
struct Dice(u64);

impl Dice {
    fn roll(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        usize::try_from(self.0 % n as u64).unwrap_or(0)
    }
}

/// What the run left: the history, the threads it wrote to.
pub struct Run {
    pub history: History,
    pub threads: Vec<String>,
}

impl Workload {
    /// Runs the workload against `replicas` for its duration while `faults` runs alongside;
    /// then waits for the faults to end, lets every reader catch up with the store and
    /// returns the history and the store's final state.
    pub async fn run(
        &self,
        replicas: Replicas,
        history: History,
        faults: impl std::future::Future<Output = ()>,
    ) -> (Run, Store) {
        let http = Http::new();
        let threads: Vec<String> = (0..self.threads)
            .map(|_| uuid::Uuid::now_v7().to_string())
            .collect();
        let deadline = tokio::time::Instant::now() + self.duration;
        let known: Arc<Mutex<Vec<(usize, String)>>> = Arc::default();
        let (targets_tx, targets) = watch::channel::<Option<HashMap<String, i64>>>(None);

        let mut readers = Vec::new();
        let mut reader = 0;
        for thread in &threads {
            for _ in 0..self.readers_per_thread {
                readers.push(tokio::spawn(follow(
                    reader,
                    thread.clone(),
                    Arc::clone(&replicas),
                    http.clone(),
                    history.clone(),
                    targets.clone(),
                )));
                reader += 1;
            }
            readers.push(tokio::spawn(poll(
                thread.clone(),
                Arc::clone(&replicas),
                http.clone(),
                history.clone(),
                targets.clone(),
            )));
        }
        let writers: Vec<_> = (0..self.writers)
            .map(|w| {
                tokio::spawn(write(
                    w,
                    threads.clone(),
                    Arc::clone(&replicas),
                    http.clone(),
                    history.clone(),
                    Arc::clone(&known),
                    deadline,
                ))
            })
            .collect();
        faults.await;
        for writer in writers {
            let _ = writer.await;
        }
        // The final state, read through the changes feed once no write is in flight: a
        // request the writer gave up on may still be running in a replica until its database
        // timeout, so read until two reads a second apart agree.
        let mut store = HashMap::new();
        for _ in 0..30 {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let mut now = HashMap::new();
            for thread in &threads {
                now.insert(thread.clone(), final_state(&http, &replicas, thread).await);
            }
            if now == store {
                break;
            }
            store = now;
        }
        let heads = store
            .iter()
            .map(|(t, ms)| (t.clone(), ms.values().map(rev_of).max().unwrap_or(0)))
            .collect();
        let _ = targets_tx.send(Some(heads));
        for reader in readers {
            let _ = tokio::time::timeout(Duration::from_secs(60), reader).await;
        }
        (Run { history, threads }, store)
    }
}

/// A writer: creates (retried with the same `Idempotency-Key` on the next replica while the
/// outcome is unknown), edits and deletes its own messages, toggles reactions on anyone's,
/// moves its read position forward.
async fn write(
    n: usize,
    threads: Vec<String>,
    replicas: Replicas,
    http: Http,
    history: History,
    known: Arc<Mutex<Vec<(usize, String)>>>,
    deadline: tokio::time::Instant,
) {
    let who = format!("writer{n}");
    let user = uuid::Uuid::new_v4().to_string();
    let mut dice = Dice(0x9E37_79B9_7F4A_7C15 ^ (n as u64 + 1));
    let mut replica = n % replicas.len();
    let mut own: Vec<(usize, String, String, u32)> = Vec::new();
    let mut holds: HashSet<(String, &'static str)> = HashSet::new();
    let mut highest: HashMap<usize, i64> = HashMap::new();
    let mut created = 0;
    while tokio::time::Instant::now() < deadline {
        let addr = replicas[replica].clone();
        let roll = dice.roll(100);
        let unknown = if roll < 50 || own.is_empty() {
            let t = dice.roll(threads.len());
            let thread = &threads[t];
            let tag = format!("w{n}-{created}");
            created += 1;
            let key = uuid::Uuid::new_v4().to_string();
            let body = json!({ "content": tag });
            let mut attempts = 0;
            let outcome = loop {
                attempts += 1;
                let answer = http
                    .send(
                        &replicas[replica],
                        Method::POST,
                        &format!("/threads/{thread}/messages"),
                        &[("x-user-id", &user), ("idempotency-key", &key)],
                        Some(&body),
                    )
                    .await;
                let outcome = classify(answer, &[]);
                if !outcome.unknown() || attempts == 10 {
                    break outcome;
                }
                replica = (replica + 1) % replicas.len();
                tokio::time::sleep(Duration::from_millis(300)).await;
            };
            if let Some(m) = outcome.done() {
                let id = m["id"].as_str().unwrap_or_default().to_owned();
                let seq = m["seq"].as_i64().unwrap_or(0);
                highest
                    .entry(t)
                    .and_modify(|s| *s = (*s).max(seq))
                    .or_insert(seq);
                own.push((t, id.clone(), tag.clone(), 0));
                known
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push((t, id));
            }
            let unknown = outcome.unknown();
            history.record(
                &who,
                Event::Create {
                    thread: thread.clone(),
                    tag,
                    attempts,
                    outcome,
                },
            );
            unknown
        } else if roll < 65 {
            let k = dice.roll(own.len());
            let (t, id, tag, edits) = &mut own[k];
            *edits += 1;
            let content = format!("{tag}/e{edits}");
            let thread = threads[*t].clone();
            let answer = http
                .send(
                    &addr,
                    Method::PUT,
                    &format!("/threads/{thread}/messages/{id}"),
                    &[("x-user-id", &user)],
                    Some(&json!({ "content": content })),
                )
                .await;
            let outcome = classify(answer, &[404]);
            let unknown = outcome.unknown();
            history.record(
                &who,
                Event::Edit {
                    thread,
                    id: id.clone(),
                    content,
                    outcome,
                },
            );
            unknown
        } else if roll < 85 {
            let target = {
                let known = known
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                let k = dice.roll(known.len().max(1));
                known.get(k).cloned()
            };
            let Some((t, id)) = target else { continue };
            let emoji = EMOJI[dice.roll(EMOJI.len())];
            let add = !holds.contains(&(id.clone(), emoji));
            let thread = threads[t].clone();
            let answer = http
                .send(
                    &addr,
                    if add { Method::PUT } else { Method::DELETE },
                    &format!("/threads/{thread}/messages/{id}/reactions/{emoji}"),
                    &[("x-user-id", &user)],
                    None,
                )
                .await;
            let outcome = classify(answer, &[404]);
            if outcome.done().is_some() {
                if add {
                    holds.insert((id.clone(), emoji));
                } else {
                    holds.remove(&(id.clone(), emoji));
                }
            }
            let unknown = outcome.unknown();
            history.record(
                &who,
                Event::React {
                    thread,
                    id,
                    user: user.clone(),
                    emoji,
                    add,
                    outcome,
                },
            );
            unknown
        } else if roll < 93 {
            let k = dice.roll(own.len());
            let (t, id, _, _) = own.swap_remove(k);
            let thread = threads[t].clone();
            let answer = http
                .send(
                    &addr,
                    Method::DELETE,
                    &format!("/threads/{thread}/messages/{id}"),
                    &[("x-user-id", &user)],
                    None,
                )
                .await;
            let outcome = classify(answer, &[404]);
            let unknown = outcome.unknown();
            history.record(
                &who,
                Event::Delete {
                    thread,
                    id,
                    outcome,
                },
            );
            unknown
        } else {
            let t = dice.roll(threads.len());
            let seq = highest.get(&t).copied().unwrap_or(0);
            let thread = threads[t].clone();
            let answer = http
                .send(
                    &addr,
                    Method::PUT,
                    &format!("/threads/{thread}/read"),
                    &[("x-user-id", &user)],
                    Some(&json!({ "seq": seq })),
                )
                .await;
            let outcome = classify(answer, &[]);
            let unknown = outcome.unknown();
            history.record(
                &who,
                Event::Read {
                    thread,
                    user: user.clone(),
                    outcome,
                },
            );
            unknown
        };
        if unknown {
            replica = (replica + 1) % replicas.len();
            tokio::time::sleep(Duration::from_millis(200)).await;
        } else {
            tokio::time::sleep(Duration::from_millis(5 + dice.roll(15) as u64)).await;
        }
    }
}

/// Whether a reader at `at` has caught up with the final head of `thread`.
fn caught_up(
    targets: &watch::Receiver<Option<HashMap<String, i64>>>,
    thread: &str,
    at: i64,
) -> bool {
    targets
        .borrow()
        .as_ref()
        .is_some_and(|heads| heads.get(thread).is_some_and(|&head| at >= head))
}

/// A stream reader: follows `thread` on one replica, and after any drop resumes on the next
/// with `Last-Event-ID`, until it has the thread's final head.
async fn follow(
    reader: usize,
    thread: String,
    replicas: Replicas,
    http: Http,
    history: History,
    targets: watch::Receiver<Option<HashMap<String, i64>>>,
) {
    let who = format!("reader{reader}");
    let mut replica = reader % replicas.len();
    let mut last = 0;
    while !caught_up(&targets, &thread, last) {
        match http.stream(&replicas[replica], &thread, last).await {
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            Ok(mut stream) => {
                history.record(
                    &who,
                    Event::Connected {
                        reader,
                        replica,
                        after: last,
                    },
                );
                loop {
                    match stream.next_event(Duration::from_millis(500)).await {
                        Some(event) => {
                            last = event.id;
                            history.record(
                                &who,
                                Event::Streamed {
                                    reader,
                                    thread: thread.clone(),
                                    id: event.id,
                                    data: event.data,
                                },
                            );
                        }
                        None if stream.ended() => break,
                        None if caught_up(&targets, &thread, last) => return,
                        None => {}
                    }
                }
            }
        }
        replica = (replica + 1) % replicas.len();
    }
}

/// A changes-feed reader: long polls `thread` round the replicas until the final head.
async fn poll(
    thread: String,
    replicas: Replicas,
    http: Http,
    history: History,
    targets: watch::Receiver<Option<HashMap<String, i64>>>,
) {
    let who = format!("poller{}", &thread[thread.len() - 4..]);
    let mut since = 0;
    let mut replica = 0;
    while !caught_up(&targets, &thread, since) {
        let answer = http
            .send(
                &replicas[replica],
                Method::GET,
                &format!("/threads/{thread}/changes?since={since}&limit=50&wait=1"),
                &[],
                None,
            )
            .await;
        match answer {
            Ok((StatusCode::OK, body)) => {
                let next = body["next"].as_i64().unwrap_or(since);
                let changes = body["changes"].as_array().cloned().unwrap_or_default();
                history.record(
                    &who,
                    Event::Polled {
                        thread: thread.clone(),
                        since,
                        next,
                        changes,
                    },
                );
                since = next;
            }
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
        replica = (replica + 1) % replicas.len();
    }
}

/// A thread's every message in its current state, through the changes feed of whichever
/// replica answers.
async fn final_state(http: &Http, replicas: &Replicas, thread: &str) -> BTreeMap<String, Value> {
    let mut state = BTreeMap::new();
    let mut since = 0;
    let mut replica = 0;
    let mut failures = 0;
    loop {
        let answer = http
            .send(
                &replicas[replica],
                Method::GET,
                &format!("/threads/{thread}/changes?since={since}&limit=500"),
                &[],
                None,
            )
            .await;
        match answer {
            Ok((StatusCode::OK, body)) => {
                for change in body["changes"].as_array().into_iter().flatten() {
                    if let Some(id) = change["id"].as_str() {
                        state.insert(id.to_owned(), change.clone());
                    }
                }
                since = body["next"].as_i64().unwrap_or(since);
                if body["has_more"] != true {
                    return state;
                }
            }
            other => {
                failures += 1;
                assert!(
                    failures < 100,
                    "the final state of {thread} cannot be read: {other:?}"
                );
                replica = (replica + 1) % replicas.len();
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

/// Checks a run, prints its counts past the harness's capture (so CI's log shows them) and
/// fails the test with the first violation and the operations around it.
pub fn judge(scenario: &str, run: &Run, store: &Store, broker: Option<&[Published]>) -> Report {
    use std::io::Write;
    let entries = run.history.entries();
    let report = check(&entries, store, broker);
    let _ = writeln!(
        std::io::stderr().lock(),
        "\nhistory ({scenario}): {} threads, {}",
        run.threads.len(),
        report.summary()
    );
    if let Some(first) = report.first_violation(&entries) {
        panic!("{scenario}: {}\n{first}", report.summary());
    }
    report
}

#[cfg(test)]
mod checker {
    //! The checker itself: a clean history passes, and each kind of broken promise is found.

    use super::*;

    const T: &str = "t1";

    fn message(id: &str, content: &str, rev: i64) -> Value {
        json!({ "id": id, "content": content, "rev": rev, "seq": rev, "reactions": [] })
    }

    fn entry(event: Event) -> Entry {
        Entry {
            at_ms: 0,
            who: "w".into(),
            event,
        }
    }

    fn create(tag: &str, outcome: Outcome) -> Entry {
        entry(Event::Create {
            thread: T.into(),
            tag: tag.into(),
            attempts: 1,
            outcome,
        })
    }

    fn streamed(reader: usize, data: &Value) -> Entry {
        entry(Event::Streamed {
            reader,
            thread: T.into(),
            id: rev_of(data),
            data: data.clone(),
        })
    }

    /// Two creates and an edit, streamed and published; the store holds `a` edited and `b`.
    fn clean() -> (Vec<Entry>, Store, Vec<Published>) {
        let a1 = message("a", "w0-0", 1);
        let b2 = message("b", "w0-1", 2);
        let a3 = message("a", "w0-0/e1", 3);
        let entries = vec![
            create("w0-0", Outcome::Done(201, a1.clone())),
            create("w0-1", Outcome::Done(201, b2.clone())),
            entry(Event::Edit {
                thread: T.into(),
                id: "a".into(),
                content: "w0-0/e1".into(),
                outcome: Outcome::Done(200, a3.clone()),
            }),
            streamed(0, &a1),
            streamed(0, &b2),
            streamed(0, &a3),
        ];
        let store = HashMap::from([(
            T.to_owned(),
            BTreeMap::from([("a".to_owned(), a3), ("b".to_owned(), b2)]),
        )]);
        let broker = (1..=3)
            .map(|n| Published {
                thread: T.into(),
                sequence: n,
                id: format!("e{n}"),
            })
            .collect();
        (entries, store, broker)
    }

    fn found(entries: &[Entry], store: &Store, broker: &[Published]) -> Vec<String> {
        check(entries, store, Some(broker))
            .violations
            .into_iter()
            .map(|v| v.what)
            .collect()
    }

    #[test]
    fn a_clean_history_passes() {
        let (entries, store, broker) = clean();
        assert_eq!(found(&entries, &store, &broker), Vec::<String>::new());
    }

    #[test]
    fn an_acknowledged_create_missing_from_the_store_is_found() {
        let (entries, mut store, broker) = clean();
        store.get_mut(T).map(|m| m.remove("b"));
        let found = found(&entries, &store, &broker);
        assert!(
            found
                .iter()
                .any(|v| v.contains("acknowledged create b is not in the store")),
            "{found:?}"
        );
    }

    #[test]
    fn a_create_stored_twice_is_found() {
        let (entries, mut store, broker) = clean();
        store
            .get_mut(T)
            .map(|m| m.insert("c".into(), message("c", "w0-1", 4)));
        let found = found(&entries, &store, &broker);
        assert!(
            found.iter().any(|v| v.contains("in the store twice")),
            "{found:?}"
        );
    }

    #[test]
    fn a_lost_edit_is_found() {
        let (entries, mut store, broker) = clean();
        store
            .get_mut(T)
            .map(|m| m.insert("a".into(), message("a", "w0-0", 3)));
        let found = found(&entries, &store, &broker);
        assert!(
            found.iter().any(|v| v.contains("last acknowledged edit")),
            "{found:?}"
        );
    }

    #[test]
    fn a_reader_that_goes_back_or_misses_a_change_is_found() {
        let (mut entries, store, broker) = clean();
        // Reader 1 sees 2 then 1, and never 3.
        entries.push(streamed(1, &message("b", "w0-1", 2)));
        entries.push(streamed(1, &message("a", "w0-0", 1)));
        let found = found(&entries, &store, &broker);
        assert!(
            found.iter().any(|v| v.contains("received 1 after 2")),
            "{found:?}"
        );
        assert!(
            found
                .iter()
                .any(|v| v.contains("reader 1") && v.contains("rev 1, the store at rev 3")),
            "{found:?}"
        );
    }

    #[test]
    fn a_number_the_broker_never_delivered_is_found() {
        let (entries, store, mut broker) = clean();
        broker.remove(1);
        broker.push(Published {
            thread: T.into(),
            sequence: 3,
            id: "other".into(),
        });
        let found = found(&entries, &store, &broker);
        assert!(
            found
                .iter()
                .any(|v| v.contains("never delivered t1's number 2")),
            "{found:?}"
        );
        assert!(
            found
                .iter()
                .any(|v| v.contains("number 3 was published as 2")),
            "{found:?}"
        );
    }

    #[test]
    fn a_read_position_that_moves_back_is_found() {
        let (mut entries, store, broker) = clean();
        for seq in [2, 1] {
            entries.push(entry(Event::Read {
                thread: T.into(),
                user: "u".into(),
                outcome: Outcome::Done(200, json!({ "seq": seq })),
            }));
        }
        let found = found(&entries, &store, &broker);
        assert!(
            found.iter().any(|v| v.contains("went back from 2 to 1")),
            "{found:?}"
        );
    }

    #[test]
    fn two_acknowledged_changes_with_one_number_and_a_500_are_found() {
        let (mut entries, store, broker) = clean();
        entries.push(create("w0-2", Outcome::Done(201, message("c", "w0-2", 2))));
        entries.push(create("w0-3", Outcome::Wrong(500, "{}".into())));
        let found = found(&entries, &store, &broker);
        assert!(
            found.iter().any(|v| v.contains("both took number 2")),
            "{found:?}"
        );
        assert!(
            found.iter().any(|v| v.contains("answered 500")),
            "{found:?}"
        );
    }
}
