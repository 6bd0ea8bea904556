//! Faults under the history checker's workload (`history`): server processes sharing
//! PostgreSQL, Redis and RabbitMQ while a replica is killed with SIGKILL and started again;
//! PostgreSQL cut twice, Redis killed and restarted and RabbitMQ stopped and started; and a PostgreSQL
//! primary stopped hard and its synchronous standby promoted. After each run the whole history
//! is checked; a scenario passes only when the checker finds nothing.
//!
//! Each runs `HISTORY_SECONDS` (30 by default; longer by hand, e.g. `HISTORY_SECONDS=300
//! cargo test -p messages-server --test api faults::`).

use std::process::{Child, Stdio};
use std::time::Duration;

use messages_core::testing::amqp::{TestConsumer, amqp_url, test_config as amqp_config};
use messages_core::testing::postgres::TestDatabase;
use messages_core::testing::proxy::TcpProxy;
use messages_core::testing::redis::{redis_url, unique_prefix};

use crate::helpers::{free_port, send_signal, server_command};
use crate::history::{Event, History, Http, Published, Replicas, Workload, judge};

/// Server processes on fixed loopback ports, sharing one environment.
struct Processes {
    env: Vec<(String, String)>,
    ports: Vec<u16>,
    children: Vec<Option<Child>>,
}

impl Processes {
    async fn start(n: usize, env: Vec<(String, String)>) -> Processes {
        let mut replicas = Processes {
            env,
            ports: (0..n).map(|_| free_port()).collect(),
            children: (0..n).map(|_| None).collect(),
        };
        // The first applies the migrations before the others start.
        for i in 0..n {
            replicas.restart(i).await;
        }
        replicas
    }

    fn addrs(&self) -> Replicas {
        std::sync::Arc::new(
            self.ports
                .iter()
                .map(|p| format!("127.0.0.1:{p}"))
                .collect(),
        )
    }

    /// Starts replica `i` (again) and waits until it is ready.
    async fn restart(&mut self, i: usize) {
        let mut command = server_command();
        command.env("BIND_ADDR", format!("127.0.0.1:{}", self.ports[i]));
        if std::env::var_os("TEST_LOG").is_none() {
            command.stdout(Stdio::null()).stderr(Stdio::null());
        }
        for (k, v) in &self.env {
            command.env(k, v);
        }
        self.children[i] = Some(command.spawn().expect("start a replica"));
        let http = Http::new();
        let addr = format!("127.0.0.1:{}", self.ports[i]);
        for _ in 0..300 {
            if let Ok((status, _)) = http
                .send(&addr, http::Method::GET, "/readyz", &[], None)
                .await
                && status.is_success()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("replica {i} on {addr} never became ready");
    }

    /// SIGKILL, and the process reaped.
    fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.children[i].take() {
            send_signal(&child, "KILL");
            let _ = child.wait();
        }
    }
}

impl Drop for Processes {
    fn drop(&mut self) {
        for i in 0..self.children.len() {
            self.kill(i);
        }
    }
}

/// The replicas' environment: PostgreSQL at `database`, Redis at `redis` under a prefix of
/// the test's own, RabbitMQ by `amqp` (`None`: no broker).
fn backend_env(
    database: &str,
    redis: &str,
    amqp: Option<(&str, &messages_core::events::amqp::AmqpConfig)>,
) -> Vec<(String, String)> {
    let mut env = vec![
        ("STORE", "postgres".to_owned()),
        ("DATABASE_URL", database.to_owned()),
        // Answer 503 before the workload's clients (5 s) give up on a request.
        ("DB_TIMEOUT_MS", "2000".to_owned()),
        ("DB_STARTUP_TIMEOUT_SECONDS", "30".to_owned()),
        ("REDIS_URL", redis.to_owned()),
        ("CACHE_KEY_PREFIX", unique_prefix()),
        ("STREAM_RETRY_MS", "200".to_owned()),
    ];
    if let Some((url, config)) = amqp {
        env.push(("AMQP_URL", url.to_owned()));
        env.push(("AMQP_EXCHANGE", config.exchange.clone()));
        env.push(("AMQP_LEGACY_QUEUE", "none".to_owned()));
    }
    env.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

/// What the broker delivered to `consumer`, drained until every thread's numbers up to its
/// head arrived or `patience` passed.
async fn delivered(
    consumer: &TestConsumer,
    store: &std::collections::HashMap<
        String,
        std::collections::BTreeMap<String, serde_json::Value>,
    >,
    patience: Duration,
) -> Vec<Published> {
    use std::collections::HashSet;
    let deadline = tokio::time::Instant::now() + patience;
    let wanted: usize = store
        .values()
        .map(|ms| {
            ms.values()
                .filter_map(|m| m["rev"].as_i64())
                .max()
                .unwrap_or(0)
        })
        .map(|h| usize::try_from(h).unwrap_or(0))
        .sum();
    let mut out = Vec::new();
    let mut numbers = HashSet::new();
    while numbers.len() < wanted && tokio::time::Instant::now() < deadline {
        for arrived in consumer
            .drain(&consumer.all_queue, 0, Duration::from_millis(500))
            .await
        {
            let event = arrived.event();
            numbers.insert((event.thread_id.to_string(), event.sequence));
            out.push(Published {
                thread: event.thread_id.to_string(),
                sequence: event.sequence,
                id: event.id.to_string(),
            });
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    out
}

fn workload(replicas: usize) -> Workload {
    Workload {
        threads: 3,
        writers: 6,
        readers_per_thread: replicas,
        duration: Workload::seconds(30),
    }
}

/// Three replicas; one is killed with SIGKILL while its readers stream and started again a
/// third of the run later. Readers resume on another replica with `Last-Event-ID`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_killed_under_live_readers_loses_nothing() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let Some(redis) = redis_url() else { return };
    let Some(amqp_url) = amqp_url() else { return };
    let amqp = amqp_config(&amqp_url);
    let consumer = TestConsumer::bind(&amqp).await;
    let env = backend_env(db.url(), &redis, Some((&amqp_url, &amqp)));
    let mut replicas = Processes::start(3, env).await;
    let workload = workload(3);
    let history = History::new();
    let third = workload.duration / 3;
    let nemesis = history.clone();
    let addrs = replicas.addrs();
    let faults = async {
        tokio::time::sleep(third).await;
        nemesis.record("nemesis", Event::Fault("SIGKILL replica 0".into()));
        replicas.kill(0);
        tokio::time::sleep(third).await;
        replicas.restart(0).await;
        nemesis.record("nemesis", Event::Fault("replica 0 started again".into()));
    };
    let (run, store) = workload.run(addrs, history, faults).await;
    let broker = delivered(&consumer, &store, Duration::from_secs(30)).await;
    let report = judge("a replica killed", &run, &store, Some(&broker));
    assert!(report.reconnects > 9, "readers moved replicas: {report:?}");
    consumer.cleanup().await;
}

/// A Redis server of the test's own, so it can be killed without touching other tests'.
struct OwnRedis {
    port: u16,
    child: Option<Child>,
}

impl OwnRedis {
    async fn start(port: u16) -> OwnRedis {
        let child = std::process::Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server (Debian's redis-server package)");
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        OwnRedis {
            port,
            child: Some(child),
        }
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            send_signal(&child, "KILL");
            let _ = child.wait();
        }
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Two replicas; PostgreSQL cut twice for 3 s through a proxy, Redis (a server of the test's
/// own) killed with SIGKILL and started again, RabbitMQ (a node of the test's own) stopped
/// and started again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_outages_under_load_lose_nothing() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    // The shared broker's variable switches this test on, as for the other RabbitMQ tests.
    if amqp_url().is_none() {
        return;
    }
    let Some(mut rabbit) = OwnRabbit::start().await else {
        return;
    };
    let amqp = amqp_config(&rabbit.url());
    let mut consumer = TestConsumer::bind_durable(&amqp).await;
    let pg = TcpProxy::start(db.upstream().await).await;
    let mut redis = OwnRedis::start(free_port()).await;
    let redis_url = format!("redis://127.0.0.1:{}/0", redis.port);
    let env = backend_env(
        &db.url_through(pg.addr()),
        &redis_url,
        Some((&rabbit.url(), &amqp)),
    );
    let replicas = Processes::start(2, env).await;
    let workload = workload(2);
    let history = History::new();
    let nemesis = history.clone();
    let fault = |what: &str| nemesis.record("nemesis", Event::Fault(what.to_owned()));
    // Each fault at its share of the run (or right after the one before, if that one took
    // longer: a RabbitMQ node takes seconds to start).
    let began = tokio::time::Instant::now();
    let at = |share: f64| tokio::time::sleep_until(began + workload.duration.mul_f64(share));
    let faults = async {
        at(0.15).await;
        fault("PostgreSQL cut");
        pg.cut();
        tokio::time::sleep(Duration::from_secs(3)).await;
        pg.restore();
        fault("PostgreSQL back");
        at(0.3).await;
        fault("RabbitMQ stopped");
        rabbit.stop();
        tokio::time::sleep(Duration::from_secs(2)).await;
        rabbit.run().await;
        fault("RabbitMQ started again");
        at(0.55).await;
        fault("Redis SIGKILL");
        let port = redis.port;
        redis.kill();
        tokio::time::sleep(Duration::from_secs(2)).await;
        redis = OwnRedis::start(port).await;
        fault("Redis started again");
        at(0.75).await;
        fault("PostgreSQL cut");
        pg.cut();
        tokio::time::sleep(Duration::from_secs(3)).await;
        pg.restore();
        fault("PostgreSQL back");
    };
    let (run, store) = workload
        .run(replicas.addrs(), history.clone(), faults)
        .await;
    consumer.reconnect().await;
    let broker = delivered(&consumer, &store, Duration::from_secs(60)).await;
    judge("backend outages", &run, &store, Some(&broker));
    consumer.cleanup().await;
    drop(redis);
}

/// A RabbitMQ node of the test's own (its own ports, data directory and Erlang node name),
/// so it can be stopped and started without touching the broker the other tests share.
struct OwnRabbit {
    program: std::path::PathBuf,
    dir: std::path::PathBuf,
    port: u16,
    dist_port: u16,
    child: Option<Child>,
}

impl OwnRabbit {
    /// Starts the node, or `None` (skip) without RabbitMQ's programs.
    async fn start() -> Option<OwnRabbit> {
        let program = std::path::PathBuf::from(
            std::env::var_os("RABBITMQ_SERVER")
                .unwrap_or_else(|| "/usr/lib/rabbitmq/bin/rabbitmq-server".into()),
        );
        if !program.exists() {
            messages_core::testing::unreachable(
                "RabbitMQ's rabbitmq-server (RABBITMQ_SERVER)",
                "not found",
            )?;
            return None;
        }
        let dir = scratch_dir("rabbitmq");
        let mut rabbit = OwnRabbit {
            program,
            dir,
            port: free_port(),
            dist_port: free_port(),
            child: None,
        };
        rabbit.run().await;
        Some(rabbit)
    }

    fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port)
    }

    /// Starts the node (again, on the same data: durable queues and persistent messages
    /// survive) and waits until it takes AMQP connections.
    async fn run(&mut self) {
        let dir = |name: &str| self.dir.join(name);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir("server.log"))
            .expect("log file");
        let child = std::process::Command::new(&self.program)
            .current_dir(&self.dir)
            .env("HOME", &self.dir)
            .env(
                "RABBITMQ_NODENAME",
                format!("messages-test-{}@localhost", self.port),
            )
            .env("RABBITMQ_NODE_IP_ADDRESS", "127.0.0.1")
            .env("RABBITMQ_NODE_PORT", self.port.to_string())
            .env("RABBITMQ_DIST_PORT", self.dist_port.to_string())
            .env("RABBITMQ_MNESIA_BASE", dir("mnesia"))
            .env("RABBITMQ_LOG_BASE", dir("log"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", dir("enabled_plugins"))
            .env("RABBITMQ_CONFIG_FILE", dir("rabbitmq"))
            .env("RABBITMQ_ADVANCED_CONFIG_FILE", dir("advanced.config"))
            .env("RABBITMQ_PID_FILE", dir("pid"))
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .expect("start rabbitmq-server");
        self.child = Some(child);
        for _ in 0..240 {
            let connected =
                lapin::Connection::connect(&self.url(), lapin::ConnectionProperties::default())
                    .await;
            if let Ok(connection) = connected {
                let _ = connection.close(0, "ready".into()).await;
                return;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        panic!(
            "the test's RabbitMQ node never took connections; see {}",
            dir("server.log").display()
        );
    }

    /// Stops the node as `rabbitmqctl stop` does: its Erlang VM (the start script's child)
    /// gets SIGTERM and shuts down in order.
    fn stop(&mut self) {
        self.signal("TERM");
    }

    fn signal(&mut self, signal: &str) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let vm = std::process::Command::new("pgrep")
            .args(["-P", &child.id().to_string()])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        for pid in vm.split_whitespace() {
            let _ = std::process::Command::new("kill")
                .args([format!("-{signal}"), pid.to_owned()])
                .status();
        }
        let _ = child.wait();
    }
}

impl Drop for OwnRabbit {
    fn drop(&mut self) {
        self.signal("KILL");
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A PostgreSQL primary and its streaming standby, clusters of the test's own in a temporary
/// directory, with synchronous replication: a commit is acknowledged once the standby has it.
struct ReplicatedPostgres {
    dir: std::path::PathBuf,
    bin: std::path::PathBuf,
    primary: u16,
    standby: u16,
}

impl ReplicatedPostgres {
    /// Runs a PostgreSQL program as the `postgres` user when this process is root (the
    /// server refuses to run as root), else as this user.
    fn run(&self, program: &str, args: &[&str]) {
        let output = self
            .command(program)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("{program}: {e}"));
        assert!(
            output.status.success(),
            "{program} {args:?}: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// `program` of PostgreSQL's, as the `postgres` user when this process is root.
    fn command(&self, program: &str) -> std::process::Command {
        let path = self.bin.join(program);
        if is_root() {
            let mut command = std::process::Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(&path);
            command
        } else {
            std::process::Command::new(&path)
        }
    }

    fn data(&self, name: &str) -> String {
        self.dir.join(name).to_string_lossy().into_owned()
    }

    fn start_server(&self, name: &str, port: u16) {
        let options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off \
             -c wal_level=replica -c max_wal_senders=4 -c hot_standby=on",
            self.dir.display()
        );
        let log = self
            .dir
            .join(format!("{name}.log"))
            .to_string_lossy()
            .into_owned();
        self.run(
            "pg_ctl",
            &[
                "-D",
                &self.data(name),
                "-o",
                &options,
                "-l",
                &log,
                "-w",
                "start",
            ],
        );
    }

    /// Makes both clusters, or `None` (skip) when PostgreSQL's programs are not here.
    async fn start() -> Option<ReplicatedPostgres> {
        let Some(bin) = postgres_bin() else {
            messages_core::testing::unreachable(
                "PostgreSQL's programs (initdb, pg_ctl)",
                "not found",
            )?;
            return None;
        };
        let dir = scratch_dir("failover");
        let pg = ReplicatedPostgres {
            dir,
            bin,
            primary: free_port(),
            standby: free_port(),
        };
        if is_root() {
            let status = std::process::Command::new("chown")
                .args(["postgres:postgres", &pg.dir.to_string_lossy()])
                .status()
                .expect("chown");
            assert!(status.success(), "chown the cluster directory to postgres");
        }
        pg.run(
            "initdb",
            &[
                "-D",
                &pg.data("primary"),
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
            ],
        );
        pg.start_server("primary", pg.primary);
        pg.run(
            "pg_basebackup",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &pg.primary.to_string(),
                "-U",
                "postgres",
                "-D",
                &pg.data("standby"),
                "-R",
                "-X",
                "stream",
                "--no-sync",
            ],
        );
        pg.start_server("standby", pg.standby);
        // Synchronous from now on (set after the copy, so the standby, once promoted, does not
        // wait for a standby of its own).
        let primary = pg.client(pg.primary).await;
        // One statement at a time: ALTER SYSTEM refuses to run in the implicit transaction
        // of a multi-statement query.
        for statement in [
            "ALTER SYSTEM SET synchronous_standby_names = '*'",
            "ALTER SYSTEM SET synchronous_commit = 'on'",
            "SELECT pg_reload_conf()",
        ] {
            primary
                .batch_execute(statement)
                .await
                .expect("synchronous replication");
        }
        for _ in 0..100 {
            let sync: i64 = primary
                .query_one(
                    "SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'sync'",
                    &[],
                )
                .await
                .expect("pg_stat_replication")
                .get(0);
            if sync == 1 {
                return Some(pg);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the standby never became synchronous");
    }

    async fn client(&self, port: u16) -> tokio_postgres::Client {
        let (client, connection) = tokio_postgres::connect(
            &format!("host=127.0.0.1 port={port} user=postgres dbname=postgres"),
            tokio_postgres::NoTls,
        )
        .await
        .expect("connect to the test's own cluster");
        tokio::spawn(connection);
        client
    }

    /// Both servers, primary first, the one that answers read-write.
    fn url(&self) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{},127.0.0.1:{}/postgres?target_session_attrs=read-write&connect_timeout=2",
            self.primary, self.standby
        )
    }

    /// The primary stopped hard, as by a crash: no shutdown checkpoint, connections dropped.
    fn crash_primary(&self) {
        self.run(
            "pg_ctl",
            &["-D", &self.data("primary"), "-m", "immediate", "stop"],
        );
    }

    fn promote_standby(&self) {
        self.run("pg_ctl", &["-D", &self.data("standby"), "-w", "promote"]);
    }
}

impl Drop for ReplicatedPostgres {
    fn drop(&mut self) {
        for name in ["primary", "standby"] {
            let data = self.data(name);
            let _ = self
                .command("pg_ctl")
                .args(["-D", &data, "-m", "immediate", "stop"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A new directory under the system's temporary one, for a backend of the test's own.
fn scratch_dir(what: &str) -> std::path::PathBuf {
    let dir =
        std::env::temp_dir().join(format!("messages-{what}-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("temporary directory");
    dir
}

fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

/// The directory of `initdb` and `pg_ctl`: `PG_BIN`, else the newest Debian layout.
fn postgres_bin() -> Option<std::path::PathBuf> {
    if let Some(bin) = std::env::var_os("PG_BIN") {
        return Some(bin.into());
    }
    let mut versions: Vec<u32> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    versions.sort_unstable();
    let bin = std::path::PathBuf::from(format!("/usr/lib/postgresql/{}/bin", versions.last()?));
    bin.join("initdb").exists().then_some(bin)
}

/// Two replicas on a multi-host `DATABASE_URL` (`target_session_attrs=read-write`) over a
/// primary and its synchronous standby; the primary is stopped hard under load and the
/// standby promoted four seconds later. No acknowledged write is lost, the replicas go on
/// without a restart, and writes are acknowledged again after the promotion.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_failover_loses_no_acknowledged_write() {
    // The backend tests' switch: without DATABASE_URL (and outside CI) this one skips too.
    if messages_core::testing::backend_url("DATABASE_URL").is_none() {
        return;
    }
    let Some(redis) = redis_url() else { return };
    let Some(amqp_url) = amqp_url() else { return };
    let Some(pg) = ReplicatedPostgres::start().await else {
        return;
    };
    let amqp = amqp_config(&amqp_url);
    let consumer = TestConsumer::bind(&amqp).await;
    let env = backend_env(&pg.url(), &redis, Some((&amqp_url, &amqp)));
    let replicas = Processes::start(2, env).await;
    let workload = workload(2);
    let history = History::new();
    let nemesis = history.clone();
    let before = workload.duration * 2 / 5;
    let promoted_at = std::sync::Mutex::new(None);
    let faults = async {
        tokio::time::sleep(before).await;
        nemesis.record(
            "nemesis",
            Event::Fault("PostgreSQL primary stopped hard".into()),
        );
        pg.crash_primary();
        // Longer than the replicas' DB_TIMEOUT_MS, so requests meanwhile get their 503.
        tokio::time::sleep(Duration::from_secs(4)).await;
        pg.promote_standby();
        nemesis.record("nemesis", Event::Fault("standby promoted".into()));
        *promoted_at.lock().expect("promoted") = Some(nemesis.entries().len());
    };
    let (run, store) = workload.run(replicas.addrs(), history, faults).await;
    let broker = delivered(&consumer, &store, Duration::from_secs(60)).await;
    judge("PostgreSQL failover", &run, &store, Some(&broker));
    let promoted = promoted_at
        .lock()
        .expect("promoted")
        .expect("the standby was promoted");
    let entries = run.history.entries();
    let after = entries[promoted..]
        .iter()
        .filter(|e| {
            matches!(
                &e.event,
                Event::Create {
                    outcome: crate::history::Outcome::Done(..),
                    ..
                }
            )
        })
        .count();
    assert!(
        after > 10,
        "the replicas write to the promoted standby without a restart ({after} creates after)"
    );
    // Requests without an answer (503s, and creates retried past their attempts) only while
    // there was no primary: from the crash to a moment after the promotion.
    let promoted_ms = entries[promoted - 1].at_ms;
    let late: Vec<_> = entries
        .iter()
        .filter(|e| e.at_ms > promoted_ms + 3_000 && e.who.starts_with("writer"))
        .filter(|e| match &e.event {
            Event::Create {
                outcome, attempts, ..
            } => *attempts > 1 || !matches!(outcome, crate::history::Outcome::Done(..)),
            Event::Edit { outcome, .. }
            | Event::Delete { outcome, .. }
            | Event::React { outcome, .. }
            | Event::Read { outcome, .. } => matches!(outcome, crate::history::Outcome::Unknown(_)),
            _ => false,
        })
        .collect();
    assert!(
        late.is_empty(),
        "writes failed more than 3 s after the promotion: {late:?}"
    );
    consumer.cleanup().await;
}
