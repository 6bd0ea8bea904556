//! Where Redis is, one node or a Redis Cluster, and the one connection type the cache and the
//! rate limiter use over either. Every key they use carries a hash tag (`{thread}`,
//! `{user}`) and every script and pipeline touches one tag, so each call goes to one slot's
//! master on a cluster, as it goes to the one node otherwise.

use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::{ClusterClientBuilder, ClusterConfig};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, Value};
use secrecy::{ExposeSecret, SecretString};

use crate::error::{Error, Result};

/// Where Redis is.
#[derive(Clone, Debug)]
pub enum RedisServer {
    /// One node, by `redis://` URL (it may hold a password, so it never prints).
    Node(SecretString),
    /// A Redis Cluster: seed nodes as `host:port` (any of its nodes; the client learns the
    /// rest and follows the slots as they move), and the password every node asks, if any.
    Cluster {
        /// Seed nodes.
        nodes: Vec<String>,
        /// The password.
        password: Option<SecretString>,
    },
}

impl RedisServer {
    /// One node at `url`.
    pub fn node(url: impl Into<String>) -> Self {
        RedisServer::Node(SecretString::from(url.into()))
    }

    /// What the server is, without secrets, for logs.
    pub fn describe(&self) -> String {
        match self {
            RedisServer::Node(_) => "one node".into(),
            RedisServer::Cluster { nodes, .. } => {
                format!("a cluster, seeds {}", nodes.join(","))
            }
        }
    }
}

/// A connection to one node or to a cluster: opened on first use, re-opened after failures,
/// each call bounded by the timeout it was opened with. Cheap to clone: clones share it.
#[derive(Clone)]
pub(crate) enum Connection {
    Node(ConnectionManager),
    Cluster(ClusterConnection),
}

fn unavailable(e: impl Into<crate::error::BoxError>) -> Error {
    Error::unavailable("redis", e)
}

impl Connection {
    /// A connection to `server` that connects in the background; a Redis that is down at
    /// start delays nothing, and calls fail fast until it answers.
    pub(crate) fn open(server: &RedisServer, timeout: Duration) -> Result<Self> {
        Self::connect(server, timeout, None)
    }

    /// A connection for sharded pub/sub: RESP3, every push (messages, confirmations, and the
    /// crate's `Disconnection` when the link drops) handed to `pushes`, and its subscriptions
    /// renewed by the client after a reconnect or, on a cluster, after the slots move.
    pub(crate) fn open_subscriber(
        server: &RedisServer,
        timeout: Duration,
        pushes: tokio::sync::mpsc::UnboundedSender<redis::PushInfo>,
    ) -> Result<Self> {
        Self::connect(server, timeout, Some(pushes))
    }

    fn connect(
        server: &RedisServer,
        timeout: Duration,
        pushes: Option<tokio::sync::mpsc::UnboundedSender<redis::PushInfo>>,
    ) -> Result<Self> {
        match server {
            RedisServer::Node(url) => {
                let invalid = |e: redis::RedisError| Error::invalid("redis url", e.to_string());
                let mut info = redis::IntoConnectionInfo::into_connection_info(url.expose_secret())
                    .map_err(invalid)?;
                let mut config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(timeout))
                    .set_response_timeout(Some(timeout))
                    .set_number_of_retries(1)
                    .set_max_delay(Duration::from_secs(1));
                if let Some(pushes) = pushes {
                    let settings = info
                        .redis_settings()
                        .clone()
                        .set_protocol(redis::ProtocolVersion::RESP3);
                    info = info.set_redis_settings(settings);
                    config = config
                        .set_push_sender(pushes)
                        .set_automatic_resubscription();
                }
                let client = redis::Client::open(info).map_err(invalid)?;
                ConnectionManager::new_lazy_with_config(client, config)
                    .map(Connection::Node)
                    .map_err(unavailable)
            }
            RedisServer::Cluster { nodes, password } => {
                let mut builder =
                    ClusterClientBuilder::new(nodes.iter().map(|node| format!("redis://{node}")))
                        .retries(2)
                        .min_retry_wait(10)
                        .max_retry_wait(250);
                if let Some(password) = password {
                    builder = builder.password(password.expose_secret());
                }
                if let Some(pushes) = pushes {
                    builder = builder
                        .use_protocol(redis::ProtocolVersion::RESP3)
                        .push_sender(pushes);
                }
                let client = builder
                    .build()
                    .map_err(|e| Error::invalid("redis cluster nodes", e.to_string()))?;
                let config = ClusterConfig::new()
                    .set_connection_timeout(timeout)
                    .set_response_timeout(timeout);
                Ok(Connection::Cluster(
                    client.get_pending_async_connection_with_config(config),
                ))
            }
        }
    }

    /// Subscribes to one sharded channel; answers once the server confirmed it.
    ///
    /// On a cluster, a read of the channel's slot goes first. After a failover, the client
    /// may still take the demoted master for the slot's owner, and that node, now a replica,
    /// accepts `SSUBSCRIBE` and then hears nothing; the read is answered with a redirection
    /// instead, which makes the client learn the slots again and subscribe where they are.
    pub(crate) async fn ssubscribe(&mut self, channel: &str) -> Result<()> {
        if let Connection::Cluster(c) = self {
            redis::cmd("EXISTS")
                .arg(channel)
                .query_async::<Value>(c)
                .await
                .map_err(unavailable)?;
        }
        match self {
            // One channel, so one confirmation, which the connection takes as the answer.
            Connection::Node(c) => redis::cmd("SSUBSCRIBE")
                .arg(channel)
                .query_async::<Value>(c)
                .await
                .map(drop),
            Connection::Cluster(c) => c.ssubscribe(channel).await,
        }
        .map_err(unavailable)
    }

    /// Unsubscribes from one sharded channel.
    pub(crate) async fn sunsubscribe(&mut self, channel: &str) -> Result<()> {
        match self {
            Connection::Node(c) => redis::cmd("SUNSUBSCRIBE")
                .arg(channel)
                .query_async::<Value>(c)
                .await
                .map(drop),
            Connection::Cluster(c) => c.sunsubscribe(channel).await,
        }
        .map_err(unavailable)
    }
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Connection::Node(c) => c.req_packed_command(cmd),
            Connection::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Connection::Node(c) => c.req_packed_commands(pipeline, offset, count),
            Connection::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Connection::Node(c) => c.get_db(),
            Connection::Cluster(c) => c.get_db(),
        }
    }
}
