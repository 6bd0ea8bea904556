//! `spawn_app()`: the one way tests start the server. It binds port 0, gives the test its own
//! database schema when the backend needs one, and returns a `TestApp` with a method per
//! request.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use messages_core::MessageService;
use messages_core::cache::redis::RedisCacheConfig;
use messages_core::events::memory::MemorySink;
use messages_core::testing::postgres::TestDatabase;
use messages_core::testing::sqlite::TempDir;
use messages_server::Application;
use messages_server::config::{
    Config, DatabaseSettings, HttpSettings, RateLimitSettings, SqliteSettings, StoreSettings,
};
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Which backends the server runs on.
#[derive(Clone, Copy, Debug)]
pub enum Backend {
    /// The in-memory store (`STORE=memory`).
    Memory,
    /// The embedded default: SQLite in a data directory of the test's own.
    Sqlite,
    /// PostgreSQL (`DATABASE_URL`), a database of the test's own.
    Postgres,
    /// PostgreSQL and Redis (`REDIS_URL`), with a key prefix of the test's own.
    PostgresRedis,
    /// PostgreSQL and a Redis Cluster (`REDIS_CLUSTER_NODES`), with a key prefix of the
    /// test's own.
    PostgresRedisCluster,
    /// The embedded default behind nginx configured like the Kong route: the API under
    /// `/messages`, the prefix stripped, `X-Request-Id` added.
    SqliteBehindGateway,
}

pub struct TestApp {
    pub addr: SocketAddr,
    /// Prepended to every request path (`/messages` behind the gateway).
    pub prefix: String,
    gateway: Option<Gateway>,
    pub service: Arc<MessageService>,
    pub sink: Option<Arc<MemorySink>>,
    client: Client<HttpConnector, Full<Bytes>>,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<anyhow::Result<()>>>,
    pub db: Option<TestDatabase>,
    pub data: Option<TempDir>,
}

pub struct TestResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl TestResponse {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {:?}", self.body))
    }

    /// Checks the error shape and content type, and returns the error code.
    pub fn error_code(&self) -> String {
        assert_eq!(
            self.headers
                .get("content-type")
                .and_then(|v| v.to_str().ok()),
            Some("application/json")
        );
        let v = self.json();
        let message = v["error"]["message"].as_str().unwrap_or_default();
        assert!(!message.is_empty(), "error without message: {v}");
        assert_eq!(v.as_object().map(|o| o.len()), Some(1), "only `error`: {v}");
        v["error"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("error without code: {v}"))
            .to_owned()
    }
}

/// A configuration for a server in a test: port 0, the in-memory store, a short drain, no
/// rate limits (tests write far faster than people; the limits' own tests turn them on).
pub fn test_config() -> Config {
    Config {
        rate_limit: RateLimitSettings::OFF,
        store: StoreSettings::Memory,
        http: HttpSettings {
            bind_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            shutdown_timeout: Duration::from_secs(5),
            ..HttpSettings::default()
        },
        ..Config::default()
    }
}

/// Starts the server on `backend`; `None` means the backend is not configured here (skip).
pub async fn spawn_app(backend: Backend) -> Option<TestApp> {
    spawn_app_with(backend, test_config()).await
}

pub fn database_settings(url: &str) -> DatabaseSettings {
    let mut db = DatabaseSettings::new(url);
    db.postgres.pool_size = 8;
    db.startup_timeout = Duration::from_secs(10);
    db
}

pub fn redis_settings(url: &str, prefix: &str) -> RedisCacheConfig {
    let mut redis = RedisCacheConfig::new(url);
    redis.key_prefix = prefix.to_owned();
    redis
}

pub async fn spawn_app_with(backend: Backend, mut config: Config) -> Option<TestApp> {
    let mut data = None;
    let db = match backend {
        Backend::Memory => None,
        Backend::Sqlite | Backend::SqliteBehindGateway => {
            let dir = TempDir::new();
            config.store = StoreSettings::Sqlite(SqliteSettings::new(dir.path()));
            data = Some(dir);
            None
        }
        Backend::Postgres | Backend::PostgresRedis | Backend::PostgresRedisCluster => {
            let db = TestDatabase::create().await?;
            config.store = StoreSettings::Postgres(database_settings(db.url()));
            Some(db)
        }
    };
    if let Backend::PostgresRedis = backend {
        let url = messages_core::testing::redis::redis_url()?;
        config.redis = Some(redis_settings(
            &url,
            &messages_core::testing::redis::unique_prefix(),
        ));
    }
    if let Backend::PostgresRedisCluster = backend {
        let nodes = messages_core::testing::redis::cluster_nodes()?;
        let mut redis = RedisCacheConfig::on(messages_core::testing::redis::cluster(nodes));
        redis.key_prefix = messages_core::testing::redis::unique_prefix();
        config.redis = Some(redis);
    }
    let mut app = start(config).await;
    app.db = db;
    app.data = data;
    if let Backend::SqliteBehindGateway = backend {
        let gateway = Gateway::start(app.addr).await?;
        app.addr = gateway.addr;
        app.prefix = "/messages".into();
        app.gateway = Some(gateway);
    }
    Some(app)
}

/// nginx in front of the server, as Kong routes to it.
pub struct Gateway {
    pub addr: SocketAddr,
    child: std::process::Child,
    _dir: TempDir,
}

impl Gateway {
    /// `None` (skip) when nginx is not installed, except under `CI=true`.
    // The child is waited for in `Drop`, which the lint cannot see.
    #[allow(clippy::zombie_processes)]
    pub async fn start(upstream: SocketAddr) -> Option<Gateway> {
        let nginx = ["/usr/sbin/nginx", "/usr/bin/nginx"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists());
        let Some(nginx) = nginx else {
            if messages_core::testing::required() {
                panic!("nginx is required for the gateway tests under CI=true");
            }
            messages_core::testing::skipped("nginx is not installed (the gateway-shaped tests)");
            return None;
        };
        let temp = TempDir::new();
        let dir = temp.path().to_path_buf();
        let port = free_port();
        let d = dir.display();
        let conf = format!(
            r#"worker_processes 1;
daemon off;
error_log {d}/error.log warn;
pid {d}/nginx.pid;
events {{ worker_connections 256; }}
http {{
  access_log off;
  client_body_temp_path {d}/body;
  proxy_temp_path {d}/proxy;
  fastcgi_temp_path {d}/fastcgi;
  uwsgi_temp_path {d}/uwsgi;
  scgi_temp_path {d}/scgi;
  upstream messages {{ server {upstream}; keepalive 16; }}
  server {{
    listen 127.0.0.1:{port};
    client_max_body_size 1m;
    # As Kong's page route: the page's relative URLs need the trailing slash.
    location = /messages {{
      return 301 /messages/$is_args$args;
    }}
    # The event stream, as Kong's stream route: no response buffering, reads longer than
    # the heartbeat.
    location ~ ^/messages/(threads/[^/]+/events)$ {{
      proxy_pass http://messages/$1$is_args$args;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
      proxy_read_timeout 3600s;
      proxy_set_header X-Request-Id $request_id;
      add_header X-Request-Id $request_id always;
    }}
    location /messages/ {{
      proxy_pass http://messages/;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header X-Request-Id $request_id;
      add_header X-Request-Id $request_id always;
    }}
  }}
}}
"#
        );
        let conf_path = dir.join("nginx.conf");
        std::fs::write(&conf_path, conf).expect("gateway conf");
        let mut child = std::process::Command::new(nginx)
            .arg("-c")
            .arg(&conf_path)
            .arg("-p")
            .arg(&dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start nginx");
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(addr).await.is_ok() {
                return Some(Gateway {
                    addr,
                    child,
                    _dir: temp,
                });
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "nginx did not start; see {}",
            dir.join("error.log").display()
        );
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// With `TEST_LOG` set, the logs of the servers a test starts (filtered by `RUST_LOG`,
/// default `info`) go to the test's output: `TEST_LOG=1 cargo test -p messages-server --test
/// api <name> -- --nocapture`. Server processes started by a test inherit both variables.
fn test_log() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    if std::env::var_os("TEST_LOG").is_some() {
        ONCE.call_once(|| {
            let filter = tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
            let _ = tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_test_writer()
                .try_init();
        });
    }
}

/// Starts the server on exactly `config`.
pub async fn start(config: Config) -> TestApp {
    test_log();
    let app = Application::build(config)
        .await
        .unwrap_or_else(|e| panic!("build: {e:#}"));
    let addr = app.local_addr();
    let service = app.service();
    let sink = app.event_sink();
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(app.run(async {
        let _ = stopped.await;
    }));
    let client = Client::builder(TokioExecutor::new()).build_http();
    TestApp {
        addr,
        prefix: String::new(),
        gateway: None,
        service,
        sink,
        client,
        stop: Some(stop),
        server: Some(server),
        db: None,
        data: None,
    }
}

impl TestApp {
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> TestResponse {
        let mut builder = Request::builder()
            .method(method)
            .uri(format!("http://{}{}{}", self.addr, self.prefix, path));
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let request = builder
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .expect("request");
        let response = self.client.request(request).await.expect("send");
        let status = response.status();
        let headers = response.headers().clone();
        let body = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        TestResponse {
            status,
            headers,
            body,
        }
    }

    /// Opens `GET /threads/{thread}/events{query}` with `headers`; the stream when it answers
    /// 200, else the error response.
    pub async fn events(
        &self,
        thread: &str,
        query: &str,
        headers: &[(&str, &str)],
    ) -> Result<EventStream, TestResponse> {
        let mut builder = Request::builder().method(Method::GET).uri(format!(
            "http://{}{}/threads/{thread}/events{query}",
            self.addr, self.prefix
        ));
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let request = builder.body(Full::new(Bytes::new())).expect("request");
        let response = self.client.request(request).await.expect("send");
        let status = response.status();
        let headers = response.headers().clone();
        if status != StatusCode::OK {
            let body = response
                .into_body()
                .collect()
                .await
                .expect("body")
                .to_bytes();
            return Err(TestResponse {
                status,
                headers,
                body,
            });
        }
        Ok(EventStream {
            headers,
            body: response.into_body(),
            buffer: Vec::new(),
            ended: false,
        })
    }

    pub async fn create(&self, thread: &str, user: &str, body: Value) -> TestResponse {
        self.request(
            Method::POST,
            &format!("/threads/{thread}/messages"),
            &[("x-user-id", user), ("content-type", "application/json")],
            Some(body.to_string().into_bytes()),
        )
        .await
    }

    pub async fn create_with_key(
        &self,
        thread: &str,
        user: &str,
        key: &str,
        body: Value,
    ) -> TestResponse {
        self.request(
            Method::POST,
            &format!("/threads/{thread}/messages"),
            &[("x-user-id", user), ("idempotency-key", key)],
            Some(body.to_string().into_bytes()),
        )
        .await
    }

    /// Creates a text message and returns its JSON.
    pub async fn post_text(&self, thread: &str, user: &str, text: &str) -> Value {
        let r = self
            .create(thread, user, serde_json::json!({ "content": text }))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        r.json()
    }

    pub async fn edit(&self, thread: &str, id: &str, user: &str, body: Value) -> TestResponse {
        self.request(
            Method::PUT,
            &format!("/threads/{thread}/messages/{id}"),
            &[("x-user-id", user)],
            Some(body.to_string().into_bytes()),
        )
        .await
    }

    pub async fn remove(&self, thread: &str, id: &str, user: &str) -> TestResponse {
        self.request(
            Method::DELETE,
            &format!("/threads/{thread}/messages/{id}"),
            &[("x-user-id", user)],
            None,
        )
        .await
    }

    /// `method` on `/threads/{thread}/messages/{id}/reactions/{emoji}` as `user` (`emoji` as
    /// it goes in the path, percent-encoded or not).
    pub async fn react(
        &self,
        method: Method,
        thread: &str,
        id: &str,
        user: &str,
        emoji: &str,
    ) -> TestResponse {
        self.request(
            method,
            &format!("/threads/{thread}/messages/{id}/reactions/{emoji}"),
            &[("x-user-id", user)],
            None,
        )
        .await
    }

    pub async fn list(&self, thread: &str, query: &str) -> TestResponse {
        self.request(
            Method::GET,
            &format!("/threads/{thread}/messages{query}"),
            &[],
            None,
        )
        .await
    }

    /// `GET /threads/{thread}/changes{query}`, expected to answer 200.
    pub async fn changes(&self, thread: &str, query: &str) -> Value {
        let r = self
            .request(
                Method::GET,
                &format!("/threads/{thread}/changes{query}"),
                &[],
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        r.json()
    }

    /// Lists and checks the page envelope: `next_cursor` present exactly when `has_more`.
    pub async fn page(&self, thread: &str, query: &str) -> Value {
        let r = self.list(thread, query).await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        let v = r.json();
        assert_eq!(
            v["has_more"].as_bool().is_some_and(|m| m),
            !v["next_cursor"].is_null(),
            "{v}"
        );
        assert!(v["items"].is_array());
        v
    }

    /// Stops the server as a signal would and waits for it to finish.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.server.take() {
            Some(server) => server.await.expect("server task"),
            None => Ok(()),
        }
    }
}

pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// The ids of a page's items.
pub fn item_ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|m| m["id"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Sends `signal` (`TERM`, `KILL`) to a server process started by a test.
pub fn send_signal(child: &std::process::Child, signal: &str) {
    let status = std::process::Command::new("kill")
        .args([format!("-{signal}"), child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{signal} {}", child.id());
}

/// The server binary with none of the test's backend variables, on the in-memory store
/// (`STORE=memory`, so no test writes a data directory it did not ask for), without rate
/// limits: a test sets what it needs.
pub fn server_command() -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_messages-server"));
    for var in [
        "DATABASE_URL",
        "DB_HOST",
        "REDIS_URL",
        "REDIS_HOST",
        "REDIS_CLUSTER_NODES",
        "REDIS_PASSWORD",
        "AMQP_URL",
        "QUEUE_HOST",
        "DATA_DIR",
    ] {
        command.env_remove(var);
    }
    command.env("STORE", "memory");
    command.env("RATE_LIMIT_WRITES_PER_SECOND", "0");
    if std::env::var_os("TEST_LOG").is_none() {
        command.env("RUST_LOG", "warn");
    }
    command
}

/// The resident memory of a process, in KiB (0 if it cannot be read).
pub fn resident_kib(child: &std::process::Child) -> u64 {
    std::fs::read_to_string(format!("/proc/{}/status", child.id()))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .unwrap_or(0)
}

/// The value of an unlabelled metric in a Prometheus text page.
pub fn metric(page: &str, name: &str) -> Option<f64> {
    page.lines().find_map(|line| {
        line.strip_prefix(name)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

/// A loopback port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// One server-sent event: its id, its type and its data as JSON.
#[derive(Clone, Debug, PartialEq)]
pub struct SseEvent {
    pub id: i64,
    pub event: String,
    pub data: Value,
}

/// A stream of server-sent events read from a response body.
pub struct EventStream {
    pub headers: HeaderMap,
    body: hyper::body::Incoming,
    buffer: Vec<u8>,
    ended: bool,
}

impl EventStream {
    /// The stream of a 200 response.
    pub fn from_response(response: http::Response<hyper::body::Incoming>) -> EventStream {
        let headers = response.headers().clone();
        EventStream {
            headers,
            body: response.into_body(),
            buffer: Vec::new(),
            ended: false,
        }
    }

    /// Whether the server ended the stream (or the connection broke).
    pub fn ended(&self) -> bool {
        self.ended
    }

    /// The next event, skipping comments and the `retry` field; `None` if the stream ended or
    /// nothing came within `within`.
    pub async fn next_event(&mut self, within: Duration) -> Option<SseEvent> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            while let Some(end) = self.buffer.windows(2).position(|w| w == b"\n\n") {
                let block: Vec<u8> = self.buffer.drain(..end + 2).collect();
                let text = String::from_utf8_lossy(&block).into_owned();
                let (mut id, mut event, mut data) = (None, None, None);
                for line in text.lines() {
                    if let Some(v) = line.strip_prefix("id: ") {
                        id = v.parse().ok();
                    } else if let Some(v) = line.strip_prefix("event: ") {
                        event = Some(v.to_owned());
                    } else if let Some(v) = line.strip_prefix("data: ") {
                        data = serde_json::from_str(v).ok();
                    }
                }
                if let (Some(id), Some(event), Some(data)) = (id, event, data) {
                    return Some(SseEvent { id, event, data });
                }
            }
            if self.ended {
                return None;
            }
            match tokio::time::timeout_at(deadline, self.body.frame()).await {
                Ok(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        self.buffer.extend_from_slice(&data);
                    }
                }
                Ok(Some(Err(_)) | None) => self.ended = true,
                Err(_) => return None,
            }
        }
    }

    /// The next `n` events, each within `within` of the one before.
    pub async fn take(&mut self, n: usize, within: Duration) -> Vec<SseEvent> {
        let mut events = Vec::with_capacity(n);
        while events.len() < n {
            match self.next_event(within).await {
                Some(event) => events.push(event),
                None => break,
            }
        }
        events
    }

    /// Everything until the stream ends, or `within` passes; true if it ended.
    pub async fn ends_within(&mut self, within: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        while !self.ended {
            match tokio::time::timeout_at(deadline, self.body.frame()).await {
                Ok(Some(Ok(_))) => {}
                Ok(Some(Err(_)) | None) => self.ended = true,
                Err(_) => return false,
            }
        }
        true
    }
}

/// A client of a server this test did not start in process (a child process).
pub struct RemoteClient {
    addr: String,
    client: hyper_util::client::legacy::Client<HttpConnector, Full<Bytes>>,
}

impl RemoteClient {
    /// A client of the server at `addr`, once it answers `/healthz`.
    pub async fn new(addr: &str) -> RemoteClient {
        let client = RemoteClient {
            addr: addr.to_owned(),
            client: hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build_http(),
        };
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(addr).await.is_ok() {
                return client;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("the server at {addr} never listened");
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        user: Option<&str>,
        body: Vec<u8>,
    ) -> (StatusCode, Bytes) {
        let mut builder = Request::builder()
            .method(method)
            .uri(format!("http://{}{path}", self.addr));
        if let Some(user) = user {
            builder = builder.header("x-user-id", user);
        }
        let request = builder.body(Full::new(Bytes::from(body))).expect("request");
        let response = self.client.request(request).await.expect("send");
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        (status, body)
    }

    /// Creates a text message and returns its JSON.
    pub async fn post_text(&self, thread: &str, user: &str, text: &str) -> Value {
        self.post(thread, user, serde_json::json!({ "content": text }))
            .await
    }

    /// Creates a message from `body` and returns its JSON.
    pub async fn post(&self, thread: &str, user: &str, body: Value) -> Value {
        let (status, body) = self
            .send(
                Method::POST,
                &format!("/threads/{thread}/messages"),
                Some(user),
                body.to_string().into_bytes(),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body:?}");
        serde_json::from_slice(&body).expect("JSON")
    }

    /// The body of a GET, as text.
    pub async fn get_text(&self, path: &str) -> String {
        let (_, body) = self.send(Method::GET, path, None, Vec::new()).await;
        String::from_utf8_lossy(&body).into_owned()
    }
}
