//! Redis caches for tests: each with a key prefix of its own, so tests never see each
//! other's keys.

use std::time::Duration;

use crate::cache::redis::{RedisCache, RedisCacheConfig};
use crate::limit::redis::RedisLimiter;
use crate::redis_server::RedisServer;

/// The `REDIS_URL` to test against, or `None` (skip); see [`super::backend_url`].
pub fn redis_url() -> Option<String> {
    super::backend_url("REDIS_URL")
}

/// A fresh key prefix.
pub fn unique_prefix() -> String {
    format!("messages-test-{}", uuid::Uuid::new_v4().simple())
}

/// A cache on `url` with a prefix of its own, checked to answer.
///
/// # Panics
/// Under `CI=true` when Redis does not answer.
pub async fn cache_at(url: &str, prefix: &str) -> Option<RedisCache> {
    cache_on(RedisServer::node(url), prefix).await
}

/// A cache on `REDIS_URL` with a fresh prefix; `None` means skip.
pub async fn test_cache() -> Option<RedisCache> {
    let url = redis_url()?;
    cache_at(&url, &unique_prefix()).await
}

/// A rate limiter on `url` under `prefix`.
pub fn limiter_at(url: &str, prefix: &str, rate: crate::limit::Rate) -> RedisLimiter {
    RedisLimiter::new(
        &RedisServer::node(url),
        prefix,
        Duration::from_millis(500),
        rate,
    )
    .expect("redis limiter")
}

/// Makes limiters on `REDIS_URL`, each under a fresh prefix, once Redis answered a ping;
/// `None` means skip.
pub async fn limiters() -> Option<super::limit::Subject> {
    let url = redis_url()?;
    let probe = limiter_at(
        &url,
        &unique_prefix(),
        crate::limit::Rate::new(1.0, 1).unwrap(),
    );
    if let Err(e) = crate::limit::RateLimiter::ping(&probe).await {
        super::unreachable("Redis", e)?;
        return None;
    }
    Some(std::sync::Arc::new(move |rate| {
        std::sync::Arc::new(limiter_at(&url, &unique_prefix(), rate))
            as std::sync::Arc<dyn crate::limit::RateLimiter>
    }))
}

/// A `redis-server` of a test's own on a free loopback port, killed with `SIGKILL` by
/// [`RedisProcess::kill`] or when dropped: for tests of what happens when Redis dies.
pub struct RedisProcess {
    child: std::process::Child,
    port: u16,
    alive: bool,
}

impl RedisProcess {
    /// Starts one and waits until it answers; `None` (skip) when `redis-server` is not
    /// installed, except under `CI=true`.
    ///
    /// # Panics
    /// Under `CI=true` when it cannot start.
    pub async fn start() -> Option<RedisProcess> {
        Self::start_with(&[], None).await
    }

    /// Starts one with more arguments, keeping its files (a cluster node's config) in `dir`.
    ///
    /// # Panics
    /// Under `CI=true` when it cannot start.
    pub async fn start_with(args: &[&str], dir: Option<&std::path::Path>) -> Option<RedisProcess> {
        let free_port = || {
            std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .map(|a| a.port())
                .expect("free port")
        };
        let port = free_port();
        let mut command = std::process::Command::new("redis-server");
        if args.contains(&"--cluster-enabled") {
            // The bus's port of its own: the default, port + 10,000, may be past 65,535.
            command.args(["--cluster-port", &free_port().to_string()]);
        }
        command
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--loglevel", "warning"])
            .args(args)
            .stdout(std::process::Stdio::null());
        if let Some(dir) = dir {
            command.arg("--dir").arg(dir);
            command.args(["--cluster-config-file", &format!("nodes-{port}.conf")]);
        }
        let child = match command.spawn() {
            Ok(child) => child,
            Err(e) => {
                super::unreachable("redis-server", e)?;
                return None;
            }
        };
        let process = RedisProcess {
            child,
            port,
            alive: true,
        };
        for _ in 0..100 {
            if process.query::<String>(&["PING"]).await.is_ok() {
                return Some(process);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        super::unreachable("redis-server", "it did not answer within 5 s")?;
        None
    }

    /// Its URL.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Whether it was not killed.
    pub fn alive(&self) -> bool {
        self.alive
    }

    /// Runs one command on this node alone.
    pub async fn query<T: redis::FromRedisValue>(&self, args: &[&str]) -> redis::RedisResult<T> {
        let client = redis::Client::open(self.url())?;
        let mut connection = client.get_multiplexed_async_connection().await?;
        let mut cmd = redis::cmd(args[0]);
        cmd.arg(&args[1..]);
        cmd.query_async(&mut connection).await
    }

    /// Kills it with `SIGKILL` and waits for it to be gone.
    pub fn kill(&mut self) {
        self.alive = false;
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for RedisProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The seeds of the Redis Cluster to test against (`REDIS_CLUSTER_NODES`, a comma list of
/// `host:port`), or `None` (skip) when unset outside CI; `tools/local-services redis-cluster`
/// starts one.
pub fn cluster_nodes() -> Option<Vec<String>> {
    let nodes = super::backend_url("REDIS_CLUSTER_NODES")?;
    Some(
        nodes
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(str::to_owned)
            .collect(),
    )
}

/// The Redis Cluster at `nodes`.
pub fn cluster(nodes: Vec<String>) -> RedisServer {
    RedisServer::Cluster {
        nodes,
        password: None,
    }
}

/// A cache on the cluster at `REDIS_CLUSTER_NODES` with a fresh prefix, checked to answer;
/// `None` means skip.
///
/// # Panics
/// Under `CI=true` when the cluster does not answer.
pub async fn test_cluster_cache() -> Option<RedisCache> {
    let nodes = cluster_nodes()?;
    cache_on(cluster(nodes), &unique_prefix()).await
}

/// A cache on `server` with a prefix of its own, checked to answer.
///
/// # Panics
/// Under `CI=true` when Redis does not answer.
pub async fn cache_on(server: RedisServer, prefix: &str) -> Option<RedisCache> {
    let mut config = RedisCacheConfig::on(server);
    config.key_prefix = prefix.to_owned();
    config.timeout = Duration::from_millis(500);
    let cache = RedisCache::new(config).expect("redis cache");
    if let Err(e) = crate::cache::PageCache::ping(&cache).await {
        super::unreachable("Redis", e)?;
        return None;
    }
    Some(cache)
}

/// Makes limiters on the cluster at `REDIS_CLUSTER_NODES`, each under a fresh prefix; `None`
/// means skip.
pub async fn cluster_limiters() -> Option<super::limit::Subject> {
    let server = cluster(cluster_nodes()?);
    let make = move |rate| {
        RedisLimiter::new(&server, &unique_prefix(), Duration::from_millis(500), rate)
            .expect("redis limiter")
    };
    if let Err(e) =
        crate::limit::RateLimiter::ping(&make(crate::limit::Rate::new(1.0, 1).unwrap())).await
    {
        super::unreachable("Redis Cluster", e)?;
        return None;
    }
    Some(std::sync::Arc::new(move |rate| {
        std::sync::Arc::new(make(rate)) as std::sync::Arc<dyn crate::limit::RateLimiter>
    }))
}

/// A Redis Cluster of a test's own: six `redis-server` nodes with cluster mode on (three
/// masters, three replicas) on free loopback ports, a node timeout of one second so a failover
/// is quick, killed when dropped. For tests that fail a master over.
pub struct ClusterProcess {
    nodes: Vec<RedisProcess>,
    dir: super::sqlite::TempDir,
}

impl ClusterProcess {
    /// Starts one and waits until its slots are served and its replicas attached; `None`
    /// (skip) when `redis-server` is not installed, except under `CI=true`.
    ///
    /// # Panics
    /// Under `CI=true` when it cannot start.
    pub async fn start() -> Option<ClusterProcess> {
        let dir = super::sqlite::TempDir::new();
        let mut nodes = Vec::new();
        for _ in 0..6 {
            nodes.push(
                RedisProcess::start_with(
                    &[
                        "--cluster-enabled",
                        "yes",
                        "--cluster-node-timeout",
                        "1000",
                        // A replica takes over however long ago its master last wrote to it
                        // (an idle test cluster's replicas hear from their masters rarely).
                        "--cluster-replica-validity-factor",
                        "0",
                    ],
                    Some(dir.path()),
                )
                .await?,
            );
        }
        let mut create = std::process::Command::new("redis-cli");
        create.arg("--cluster").arg("create");
        for node in &nodes {
            create.arg(format!("127.0.0.1:{}", node.port));
        }
        let created = create
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .stdout(std::process::Stdio::null())
            .status();
        match created {
            Ok(status) if status.success() => {}
            other => {
                super::unreachable("redis-cli --cluster create", format!("{other:?}"))?;
                return None;
            }
        }
        let cluster = ClusterProcess { nodes, dir };
        for _ in 0..200 {
            if cluster.settled().await {
                return Some(cluster);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        super::unreachable("Redis Cluster", "it did not settle within 10 s")?;
        None
    }

    /// Whether every live node sees every slot served and three replicas attached.
    pub async fn settled(&self) -> bool {
        for node in self.nodes.iter().filter(|n| n.alive()) {
            let Ok(info) = node.query::<String>(&["CLUSTER", "INFO"]).await else {
                return false;
            };
            let Ok(nodes) = node.query::<String>(&["CLUSTER", "NODES"]).await else {
                return false;
            };
            let replicas = nodes
                .lines()
                .filter(|l| l.contains("slave") && !l.contains("fail"))
                .count();
            if !info.contains("cluster_state:ok") || replicas < self.alive_masters_wanted() {
                return false;
            }
        }
        true
    }

    fn alive_masters_wanted(&self) -> usize {
        // After a master is killed its replica takes over and has no replica of its own.
        if self.nodes.iter().all(RedisProcess::alive) {
            3
        } else {
            2
        }
    }

    /// The seeds, for [`RedisServer::Cluster`].
    pub fn server(&self) -> RedisServer {
        cluster(
            self.nodes
                .iter()
                .map(|n| format!("127.0.0.1:{}", n.port))
                .collect(),
        )
    }

    /// The node that is master of `key`'s slot now and its replica, as a live node sees them.
    ///
    /// # Panics
    /// When the slot has no master or the master no replica.
    pub async fn master_and_replica_of(&self, key: &str) -> (usize, usize) {
        let master = self.master_of(key).await.expect("a master of the slot");
        let replica = self
            .replica_of(master)
            .await
            .expect("a replica of the master");
        (master, replica)
    }

    /// `CLUSTER NODES` as a live node answers it, for a failure's message.
    pub async fn cluster_nodes(&self) -> Option<String> {
        let first = self.nodes.iter().find(|n| n.alive())?;
        first.query(&["CLUSTER", "NODES"]).await.ok()
    }

    fn index_of(&self, line: &str) -> Option<usize> {
        let port: u16 = line
            .split_whitespace()
            .nth(1)?
            .split(['@', ':'])
            .nth(1)?
            .parse()
            .ok()?;
        self.nodes.iter().position(|n| n.port == port)
    }

    /// The live node serving `key`'s slot as master now, as a live node sees it.
    pub async fn master_of(&self, key: &str) -> Option<usize> {
        let first = self.nodes.iter().find(|n| n.alive())?;
        let slot: i64 = first.query(&["CLUSTER", "KEYSLOT", key]).await.ok()?;
        let nodes = self.cluster_nodes().await?;
        let line = nodes.lines().find(|l| {
            l.contains("master")
                && !l.contains("fail")
                && l.split_whitespace().skip(8).any(|range| {
                    let mut ends = range.split('-').map(|x| x.parse::<i64>().unwrap_or(-1));
                    let lo = ends.next().unwrap_or(-1);
                    let hi = ends.next().unwrap_or(lo);
                    (lo..=hi).contains(&slot)
                })
        })?;
        self.index_of(line).filter(|&i| self.nodes[i].alive())
    }

    /// The live replica of node `master`.
    pub async fn replica_of(&self, master: usize) -> Option<usize> {
        let nodes = self.cluster_nodes().await?;
        let id = nodes
            .lines()
            .find(|l| self.index_of(l) == Some(master))?
            .split_whitespace()
            .next()?
            .to_owned();
        let line = nodes.lines().find(|l| {
            l.contains("slave")
                && !l.contains("fail")
                && l.split_whitespace().nth(3) == Some(id.as_str())
        })?;
        self.index_of(line).filter(|&i| self.nodes[i].alive())
    }

    /// Fails the master of `key`'s slot over: `CLUSTER FAILOVER` on its replica, or, with
    /// `kill`, the master killed with `SIGKILL`. Returns the replica, which takes over.
    ///
    /// # Panics
    /// When the slot has no master or the master no replica.
    pub async fn fail_over(&mut self, key: &str, kill: bool) -> usize {
        let (master, replica) = self.master_and_replica_of(key).await;
        if kill {
            self.kill(master);
        } else {
            self.failover(replica).await;
        }
        replica
    }

    /// Whether `replica` serves `key`'s slot as master now and the cluster has settled.
    pub async fn taken_over(&self, key: &str, replica: usize) -> bool {
        self.master_of(key).await == Some(replica) && self.settled().await
    }

    /// `CLUSTER FAILOVER` on node `replica`: it and its master swap, without losing a write.
    pub async fn failover(&self, replica: usize) {
        let _: String = self.nodes[replica]
            .query(&["CLUSTER", "FAILOVER"])
            .await
            .expect("cluster failover");
    }

    /// How many clients each live node has subscribed to the shard channel `channel`
    /// (`PUBSUB SHARDNUMSUB`), by node.
    pub async fn shard_subscribers(&self, channel: &str) -> Vec<(usize, i64)> {
        let mut counts = Vec::new();
        for (index, node) in self.nodes.iter().enumerate().filter(|(_, n)| n.alive()) {
            let answer: redis::RedisResult<(String, i64)> =
                node.query(&["PUBSUB", "SHARDNUMSUB", channel]).await;
            if let Ok((_, count)) = answer {
                counts.push((index, count));
            }
        }
        counts
    }

    /// Kills node `index` with `SIGKILL`.
    pub fn kill(&mut self, index: usize) {
        self.nodes[index].kill();
    }

    /// The directory the nodes keep their cluster files in.
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }
}
