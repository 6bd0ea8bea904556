//! The transport between replicas on PostgreSQL: `NOTIFY` to tell, `LISTEN` to hear.
//!
//! Why PostgreSQL: every deployment with more than one replica already shares its store, and
//! Redis is an optional cache here; a transport on the store needs nothing more to run and
//! nothing more to fail. Hints are sent after the commit, from a connection of their own and
//! in batches, so no write transaction takes the lock `NOTIFY` holds on the notification
//! queue while it commits (which would serialise every writing transaction). A hint is
//! `<thread> <rev> <sent at, microseconds>`, so the receiver can measure the lag.
//!
//! The listener holds a session of its own (not through PgBouncer in transaction mode, which
//! drops `LISTEN`). While it is disconnected every feed of this process reads the store once
//! per `poll_while_unlinked`; when it is back, once more: hints missed meanwhile delay changes,
//! never lose them.

use std::future::poll_fn;
use std::str::FromStr;
use std::sync::{Arc, Weak};
use std::time::Duration;

use secrecy::ExposeSecret;
use tokio_postgres::{AsyncMessage, NoTls};

use super::transport::Outgoing;
use super::{Hub, Transport, hint};
use crate::error::{Error, Result};
use crate::message::ThreadId;
use crate::storage::postgres::PostgresConfig;

/// The channel every replica of a database listens on.
pub const CHANNEL: &str = "messages_live";

/// Sends and receives hints through PostgreSQL.
pub struct PgTransport {
    pending: Arc<Outgoing>,
}

impl Transport for PgTransport {
    fn publish(&self, thread: ThreadId, rev: i64) {
        self.pending.put(thread, rev);
    }
}

impl PgTransport {
    /// Starts the sender and the listener on the database `config` names and links them to
    /// `hub`. They stop when the hub is dropped.
    pub fn start(config: &PostgresConfig, hub: &Arc<Hub>) -> Result<Arc<Self>> {
        let mut pg = tokio_postgres::Config::from_str(config.url.expose_secret())
            .map_err(|e| Error::invalid("database url", e.to_string()))?;
        pg.connect_timeout(config.connect_timeout);
        pg.application_name("messages-live");
        let pending = Arc::new(Outgoing::default());
        // A hint is best effort, so the sender's transactions do not wait for their commit to
        // reach the disk: NOTIFY holds its database-wide lock from before the commit until
        // the commit is done, and with a synchronous commit that includes a WAL flush.
        let mut sender = pg.clone();
        sender.options("-c synchronous_commit=off");
        tokio::spawn(send(sender, Arc::clone(&pending), Arc::downgrade(hub)));
        let poll = hub.config().poll_while_unlinked;
        tokio::spawn(listen(pg, Arc::downgrade(hub), poll));
        let transport = Arc::new(PgTransport { pending });
        hub.link(Arc::clone(&transport) as Arc<dyn Transport>);
        Ok(transport)
    }
}

/// Sends pending hints, all of them in one statement, whenever there are some.
async fn send(config: tokio_postgres::Config, pending: Arc<Outgoing>, hub: Weak<Hub>) {
    let mut client: Option<tokio_postgres::Client> = None;
    let mut backoff = Duration::from_millis(100);
    loop {
        pending.ready().await;
        if hub.strong_count() == 0 {
            return;
        }
        let batch: Vec<String> = {
            let sent_at = hint::now_micros();
            pending
                .take()
                .into_iter()
                .map(|(thread, rev)| format!("{thread} {}", hint::encode(rev, sent_at)))
                .collect()
        };
        if batch.is_empty() {
            continue;
        }
        loop {
            if client
                .as_ref()
                .is_none_or(tokio_postgres::Client::is_closed)
            {
                match config.connect(NoTls).await {
                    Ok((c, connection)) => {
                        tokio::spawn(connection);
                        client = Some(c);
                    }
                    Err(error) => {
                        tracing::warn!(error = %error, "live: cannot connect to send hints; retrying");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(5));
                        continue;
                    }
                }
            }
            let Some(c) = &client else { continue };
            let sent = c
                .execute(
                    "SELECT pg_notify($1, hint) FROM unnest($2::text[]) AS hint",
                    &[&CHANNEL, &batch],
                )
                .await;
            match sent {
                Ok(_) => {
                    backoff = Duration::from_millis(100);
                    break;
                }
                Err(error) => {
                    tracing::warn!(error = %error, "live: sending hints failed; retrying");
                    client = None;
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }
}

/// Parses `<thread> <rev> <sent at>`; the lag is `None` for a clock that went backwards.
fn parse_hint(payload: &str) -> Option<(ThreadId, Option<Duration>)> {
    let mut parts = payload.split(' ');
    let thread = ThreadId::parse(parts.next()?).ok()?;
    Some((thread, hint::decode(parts)?))
}

/// Listens for hints and hands them to the hub; reconnects with back-off when the session
/// drops, and meanwhile makes the hub's feeds read the store on a timer.
async fn listen(config: tokio_postgres::Config, hub: Weak<Hub>, poll: Duration) {
    let mut backoff = Duration::from_millis(100);
    let mut linked_before = false;
    loop {
        let connected = config.connect(NoTls).await;
        let (client, mut connection) = match connected {
            Ok(pair) => pair,
            Err(error) => {
                if linked_before {
                    tracing::warn!(error = %error, "live: cannot reach PostgreSQL to listen; feeds read the store until it is back");
                }
                if !unlinked_wait(&hub, backoff.max(poll)).await {
                    return;
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        // The connection's messages: the answer to LISTEN, then notifications.
        let listening = async {
            let statement = format!("LISTEN {CHANNEL}");
            let listen = client.batch_execute(&statement);
            tokio::pin!(listen);
            let mut listened = false;
            loop {
                tokio::select! {
                    result = &mut listen, if !listened => {
                        result?;
                        listened = true;
                        backoff = Duration::from_millis(100);
                        tracing::info!(channel = CHANNEL, "live: listening for other replicas' writes");
                        // Hints sent while not listening are lost: read everything once.
                        match hub.upgrade() {
                            Some(hub) => hub.wake_all(),
                            None => return Ok(()),
                        }
                    }
                    message = poll_fn(|cx| connection.poll_message(cx)) => match message {
                        Some(Ok(AsyncMessage::Notification(n))) => {
                            let Some(hub) = hub.upgrade() else { return Ok(()) };
                            if let Some((thread, lag)) = parse_hint(n.payload()) {
                                hub.hinted(thread, lag);
                            }
                        }
                        Some(Ok(_)) => {}
                        Some(Err(error)) => return Err(error),
                        None => return Ok(()),
                    },
                }
            }
        };
        let ended: std::result::Result<(), tokio_postgres::Error> = listening.await;
        if hub.strong_count() == 0 {
            return;
        }
        linked_before = true;
        match ended {
            Ok(()) => tracing::warn!("live: the listening session ended; reconnecting"),
            Err(error) => {
                tracing::warn!(error = %error, "live: the listening session failed; reconnecting")
            }
        }
        if !unlinked_wait(&hub, poll).await {
            return;
        }
    }
}

/// While unlinked: makes every feed read the store, then waits `pause`. False once the hub
/// is gone.
async fn unlinked_wait(hub: &Weak<Hub>, pause: Duration) -> bool {
    match hub.upgrade() {
        Some(hub) => hub.wake_all(),
        None => return false,
    }
    tokio::time::sleep(pause).await;
    hub.strong_count() > 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_parse_and_carry_their_lag() {
        let thread = ThreadId::from_uuid(uuid::Uuid::now_v7());
        let sent = hint::now_micros() - 1_500;
        let (got, lag) = parse_hint(&format!("{thread} 42 {sent}")).unwrap();
        assert_eq!(got, thread);
        assert!(lag.is_some_and(|l| l >= Duration::from_micros(1_500)));
        assert!(parse_hint("not a hint").is_none());
        assert!(parse_hint(&format!("{thread} x 1")).is_none());
    }
}
