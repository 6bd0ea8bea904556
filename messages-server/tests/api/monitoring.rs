//! What operators look at, checked by Prometheus's own tool: `promtool check metrics` on the
//! server's `/metrics` after traffic on every backend kind, and `promtool check rules` and
//! `promtool test rules` on the alerting rules in `deployment/monitoring`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use http::{Method, StatusCode};

use crate::helpers::{Backend, new_id, spawn_app};

/// `promtool`, from Debian's `prometheus` package; `None` (skip) when it is not installed,
/// except under `CI=true`.
fn promtool() -> Option<&'static str> {
    let found = Command::new("promtool")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if found {
        return Some("promtool");
    }
    messages_core::testing::unreachable(
        "promtool (Debian package prometheus)",
        "it is not installed",
    )?;
    None
}

fn monitoring() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deployment/monitoring")
}

/// Runs promtool; its output when it fails.
fn run(promtool: &str, args: &[&str], input: Option<&[u8]>) -> Result<String, String> {
    let mut child = Command::new(promtool)
        .args(args)
        .current_dir(monitoring())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool runs");
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(input.unwrap_or_default())
            .expect("promtool stdin");
    }
    let out = child.wait_with_output().expect("promtool ends");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        Ok(text)
    } else {
        Err(text)
    }
}

#[test]
fn the_alerting_rules_pass_promtool_and_their_unit_tests() {
    let Some(promtool) = promtool() else { return };
    let checked = run(promtool, &["check", "rules", "prometheus-rules.yml"], None)
        .unwrap_or_else(|out| panic!("promtool check rules:\n{out}"));
    assert!(checked.contains("SUCCESS: 7 rules found"), "{checked}");
    run(
        promtool,
        &["test", "rules", "prometheus-rules.test.yml"],
        None,
    )
    .unwrap_or_else(|out| panic!("promtool test rules:\n{out}"));
}

/// Traffic that makes every family the backend has appear, then `promtool check metrics`
/// on what `/metrics` answers: it must find nothing to say.
async fn promtool_accepts_the_metrics(backend: Backend) {
    let Some(promtool) = promtool() else { return };
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let (thread, user) = (new_id(), new_id());
    let m = app.post_text(&thread, &user, "counted").await;
    app.page(&thread, "").await;
    app.page(&thread, "").await;
    app.list("not-a-thread", "").await;
    let id = m["id"].as_str().unwrap_or_default();
    let r = app
        .request(
            Method::GET,
            &format!("/threads/{thread}/changes?since=0&wait=1"),
            &[],
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    app.remove(&thread, id, &user).await;
    let r = app.request(Method::GET, "/metrics", &[], None).await;
    assert_eq!(r.status, StatusCode::OK);
    let families = String::from_utf8_lossy(&r.body)
        .lines()
        .filter(|l| l.starts_with("# TYPE "))
        .count();
    assert!(families >= 10, "{}", String::from_utf8_lossy(&r.body));
    let said = run(promtool, &["check", "metrics"], Some(&r.body))
        .unwrap_or_else(|out| panic!("promtool check metrics ({backend:?}):\n{out}"));
    assert!(
        said.trim().is_empty(),
        "promtool check metrics ({backend:?}) found problems:\n{said}"
    );
}

#[tokio::test]
async fn promtool_accepts_the_metrics_on_the_embedded_default() {
    promtool_accepts_the_metrics(Backend::Sqlite).await;
}

#[tokio::test]
async fn promtool_accepts_the_metrics_on_postgres_and_redis() {
    promtool_accepts_the_metrics(Backend::PostgresRedis).await;
}
