//! The embedded default, SQLite in a data directory: everything written is there after a
//! restart (events not yet delivered included) and after the process is killed mid-write, and
//! a data directory the server cannot use stops it at start with an error that names it.

use std::collections::HashSet;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use messages_core::events::codec::EventBody;
use messages_core::testing::amqp::{TestConsumer, amqp_url, test_config as amqp_config};
use messages_core::testing::sqlite::TempDir;
use messages_server::config::{SqliteSettings, StoreSettings};
use secrecy::SecretString;
use serde_json::{Value, json};

use crate::helpers::{
    free_port, item_ids, new_id, send_signal, server_command, start, test_config,
};

fn sqlite_config(dir: &TempDir) -> messages_server::Config {
    let mut config = test_config();
    config.store = StoreSettings::Sqlite(SqliteSettings::new(dir.path()));
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_edits_deletes_and_keys_survive_a_restart() {
    let dir = TempDir::new();
    let (thread, user) = (new_id(), new_id());
    let first = start(sqlite_config(&dir)).await;
    let kept = first.post_text(&thread, &user, "kept").await;
    let edited = first.post_text(&thread, &user, "to edit").await;
    let gone = first.post_text(&thread, &user, "to delete").await;
    let id = |m: &Value| m["id"].as_str().unwrap_or_default().to_owned();
    let r = first
        .edit(&thread, &id(&edited), &user, json!({"content": "edited"}))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        first.remove(&thread, &id(&gone), &user).await.status,
        StatusCode::NO_CONTENT
    );
    let keyed = first
        .create_with_key(&thread, &user, "restart-key", json!({"content": "once"}))
        .await;
    assert_eq!(keyed.status, StatusCode::CREATED);
    let before = first.page(&thread, "").await;
    let changes_before = first.changes(&thread, "?since=0").await;
    first.stop().await.expect("clean stop");

    let second = start(sqlite_config(&dir)).await;
    assert_eq!(second.page(&thread, "").await, before, "the same page");
    assert_eq!(
        second.changes(&thread, "?since=0").await,
        changes_before,
        "the same changes, numbers included"
    );
    let page = second.page(&thread, "").await;
    assert_eq!(
        item_ids(&page),
        [id(&keyed.json()), id(&edited), id(&kept)],
        "newest first, the deleted one gone"
    );
    assert_eq!(page["items"][1]["content"], "edited");
    let retry = second
        .create_with_key(&thread, &user, "restart-key", json!({"content": "once"}))
        .await;
    assert_eq!(retry.status, StatusCode::CREATED);
    assert_eq!(retry.json(), keyed.json(), "the key still answers");
    let conflict = second
        .create_with_key(&thread, &user, "restart-key", json!({"content": "other"}))
        .await;
    assert_eq!(conflict.status, StatusCode::CONFLICT);
    // Writes go on from the position the file holds.
    let next = second.post_text(&thread, &user, "after the restart").await;
    assert_eq!(
        next["seq"], 7,
        "after creates 1-3, the edit (4), the delete (5), the keyed create (6)"
    );
}

/// Events written while the broker was unreachable wait in the file through a restart, and
/// the next process delivers every one of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_pending_at_shutdown_are_delivered_after_a_restart() {
    let Some(url) = amqp_url() else { return };
    let dir = TempDir::new();
    let amqp = amqp_config(&url);
    let consumer = TestConsumer::bind(&amqp).await;
    let (thread, user) = (new_id(), new_id());

    let mut unreachable = amqp.clone();
    unreachable.url =
        SecretString::from(format!("amqp://guest:guest@127.0.0.1:{}/%2f", free_port()));
    let mut config = sqlite_config(&dir);
    config.events.amqp = Some(unreachable);
    config.http.shutdown_timeout = Duration::from_secs(1);
    let first = start(config).await;
    let mut written = HashSet::new();
    for i in 0..10 {
        let m = first.post_text(&thread, &user, &format!("m{i}")).await;
        written.insert(m["id"].as_str().unwrap_or_default().to_owned());
    }
    first.stop().await.expect("stop");

    let mut config = sqlite_config(&dir);
    config.events.amqp = Some(amqp.clone());
    let second = start(config).await;
    let arrived = consumer
        .drain(&consumer.all_queue, 10, Duration::from_secs(10))
        .await;
    let delivered: HashSet<String> = arrived
        .iter()
        .filter_map(|a| match a.event().body {
            EventBody::Created(m) => Some(m.id.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(delivered, written, "every pending event, once");
    second.stop().await.expect("stop");
    consumer.cleanup().await;
}

/// Posts `content` and answers the new message's id once the server acknowledged it, or
/// `None` when the server did not answer 201 (it was killed).
async fn try_post(
    client: &Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
    addr: &str,
    thread: &str,
    user: &str,
    content: &str,
) -> Option<String> {
    let request = Request::builder()
        .method(Method::POST)
        .uri(format!("http://{addr}/threads/{thread}/messages"))
        .header("x-user-id", user)
        .body(Full::new(Bytes::from(
            json!({ "content": content }).to_string(),
        )))
        .ok()?;
    let response = client.request(request).await.ok()?;
    if response.status() != StatusCode::CREATED {
        return None;
    }
    let body = response.into_body().collect().await.ok()?.to_bytes();
    let message: Value = serde_json::from_slice(&body).ok()?;
    message["id"].as_str().map(str::to_owned)
}

/// The binary on its default store, SQLite in `data_dir`.
fn spawn_server(data_dir: &Path, port: u16) -> std::process::Child {
    server_command()
        .env_remove("STORE")
        .env("BIND_ADDR", format!("127.0.0.1:{port}"))
        .env("DATA_DIR", data_dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the server")
}

async fn wait_listening(addr: &str) {
    for _ in 0..400 {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the server at {addr} never listened");
}

/// Clients write while the server process is killed with SIGKILL: after a restart on the same
/// data directory every write it had acknowledged is there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_write_survives_sigkill() {
    let dir = TempDir::new();
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let mut child = spawn_server(dir.path(), port);
    wait_listening(&addr).await;
    let thread = new_id();
    let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let (client, addr, thread) = (client.clone(), addr.clone(), thread.clone());
            let acknowledged = Arc::clone(&acknowledged);
            tokio::spawn(async move {
                let user = new_id();
                for i in 0.. {
                    match try_post(&client, &addr, &thread, &user, &format!("w{w} m{i}")).await {
                        Some(id) => acknowledged
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .push(id),
                        None => return,
                    }
                }
            })
        })
        .collect();
    // Kill it in the middle of the writes.
    loop {
        let n = acknowledged
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len();
        if n >= 400 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    send_signal(&child, "KILL");
    let _ = child.wait();
    for writer in writers {
        writer.await.expect("writer");
    }
    let acknowledged: Vec<String> = acknowledged
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();

    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let mut child = spawn_server(dir.path(), port);
    wait_listening(&addr).await;
    let mut stored = HashSet::new();
    let mut since = 0;
    loop {
        let uri = format!("http://{addr}/threads/{thread}/changes?since={since}&limit=1000");
        let request = Request::get(uri)
            .body(Full::new(Bytes::new()))
            .expect("request");
        let response = client.request(request).await.expect("changes");
        let body = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        let feed: Value = serde_json::from_slice(&body).expect("JSON");
        for change in feed["changes"].as_array().into_iter().flatten() {
            stored.insert(change["id"].as_str().unwrap_or_default().to_owned());
        }
        since = feed["next"].as_i64().expect("next");
        if feed["has_more"] != json!(true) {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let missing: Vec<&String> = acknowledged
        .iter()
        .filter(|id| !stored.contains(*id))
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged writes lost: {missing:?}",
        missing.len(),
        acknowledged.len()
    );
    // At most the writes in flight at the kill (one per writer) were stored unacknowledged.
    assert!(stored.len() <= acknowledged.len() + 4);
}

/// After a clean stop (SIGTERM) the database file holds every write by itself, so copying
/// `messages.db` alone, without its write-ahead log, is a complete backup.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_clean_stop_the_database_file_alone_holds_every_write() {
    let dir = TempDir::new();
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let mut child = spawn_server(dir.path(), port);
    wait_listening(&addr).await;
    let (thread, user) = (new_id(), new_id());
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let mut written = Vec::new();
    for i in 0..20 {
        let id = try_post(&client, &addr, &thread, &user, &format!("message {i}")).await;
        written.push(id.expect("the server answers 201"));
    }
    send_signal(&child, "TERM");
    let status = child.wait().expect("wait for the server");
    assert!(status.success(), "a clean stop: {status}");

    let copy = TempDir::new();
    std::fs::copy(
        dir.path().join("messages.db"),
        copy.path().join("messages.db"),
    )
    .expect("copy the database file alone");
    let restored = start(sqlite_config(&copy)).await;
    let page = restored.page(&thread, "?limit=50").await;
    let mut ids = item_ids(&page);
    ids.reverse();
    assert_eq!(ids, written, "the copy holds every write, in order");
    restored.stop().await.expect("stop");
}

/// Runs the server on `data_dir` and returns its exit status and stderr: it must not start.
fn fails_to_start(command: &mut std::process::Command, data_dir: &Path) -> String {
    let out = command
        .env_remove("STORE")
        .env("BIND_ADDR", format!("127.0.0.1:{}", free_port()))
        .env("DATA_DIR", data_dir)
        .output()
        .expect("run the server");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "it started: {stderr}");
    assert!(
        stderr.contains("DATA_DIR") && stderr.contains(&data_dir.display().to_string()),
        "the error names the directory and the variable: {stderr}"
    );
    stderr
}

#[test]
fn a_data_directory_that_cannot_be_created_stops_the_server() {
    let dir = TempDir::new();
    let file = dir.path().join("not-a-directory");
    std::fs::write(&file, b"in the way").expect("write");
    let stderr = fails_to_start(&mut server_command(), &file.join("data"));
    assert!(
        stderr.contains("cannot create the data directory"),
        "{stderr}"
    );
}

/// Without write permission on the directory. Root ignores permissions, so as root the server
/// runs as `nobody` (through `setpriv`), from a copy of the binary that `nobody` may run.
#[test]
fn a_data_directory_without_write_permission_stops_the_server() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let data = dir.path().join("data");
    std::fs::create_dir(&data).expect("mkdir");
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o555)).expect("chmod");
    let root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    let mut command = if root {
        let binary = dir.path().join("messages-server");
        std::fs::copy(env!("CARGO_BIN_EXE_messages-server"), &binary).expect("copy");
        let mut command = std::process::Command::new("setpriv");
        command
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(&binary)
            .env_clear()
            .env("RUST_LOG", "warn");
        command
    } else {
        server_command()
    };
    let stderr = fails_to_start(&mut command, &data);
    assert!(
        stderr.contains("cannot write in the data directory"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_directory_in_use_by_another_process_stops_the_server() {
    let dir = TempDir::new();
    let running = start(sqlite_config(&dir)).await;
    let data = dir.path().to_path_buf();
    let stderr = tokio::task::spawn_blocking(move || fails_to_start(&mut server_command(), &data))
        .await
        .expect("join");
    assert!(
        stderr.contains("in use by another messages-server process"),
        "{stderr}"
    );
    // The running server is unharmed.
    running.post_text(&new_id(), &new_id(), "still here").await;
    running.stop().await.expect("stop");
}

/// A full file (here, the size limit) answers writes with 503 `unavailable`, never a 500,
/// while reads and readiness go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_file_answers_503_and_reads_go_on() {
    let dir = TempDir::new();
    let mut settings = SqliteSettings::new(dir.path());
    settings.sqlite.max_size = Some(256 * 1024);
    let mut config = test_config();
    config.store = StoreSettings::Sqlite(settings);
    let app = start(config).await;
    let (thread, user) = (new_id(), new_id());
    let big = "z".repeat(3_900);
    let mut stored = 0;
    let refused = loop {
        let r = app.create(&thread, &user, json!({ "content": big })).await;
        if r.status != StatusCode::CREATED {
            break r;
        }
        stored += 1;
        assert!(stored < 1_000, "the size limit never took effect");
    };
    assert_eq!(refused.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(refused.error_code(), "unavailable");
    let page = app.page(&thread, "?limit=200").await;
    assert_eq!(item_ids(&page).len(), stored.min(200));
    let ready = app.request(Method::GET, "/readyz", &[], None).await;
    assert_eq!(
        ready.status,
        StatusCode::OK,
        "reads are served: still ready"
    );
}
