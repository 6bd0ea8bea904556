//! The chat page in a real browser: `tests/browser/run.mjs` (playwright-core driving Chromium)
//! against this build's server on the embedded default, once directly and once behind the
//! nginx stand-in for Kong (the page under `/messages/`). The script starts, stops and starts
//! the server itself. Screenshots go to `results/ui/`.
//!
//! Needs node, Chromium (`/usr/bin/chromium`, or `CHROMIUM`) and `npm ci` in `tests/browser`;
//! skipped without them, except under `CI=true`.
//!
//! A test binary of its own: cargo runs test binaries one after another, so the browser and
//! the servers it drives do not share the two cores with the HTTP tests, and the checks of how
//! soon a change reaches the other user measure the page, not the load of other tests.

// The HTTP tests' helpers (the nginx gateway, free ports); this binary uses a few of them.
#[allow(dead_code)]
#[path = "api/helpers.rs"]
mod helpers;

use std::path::{Path, PathBuf};
use std::process::Command;

use messages_core::testing::sqlite::TempDir;

use crate::helpers::{Gateway, free_port};

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

/// What the run needs, or why it cannot run here.
fn prerequisites() -> Result<(String, PathBuf), String> {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    if !Path::new(&chromium).exists() {
        return Err(format!("Chromium is not installed at {chromium}"));
    }
    if Command::new("node").arg("--version").output().is_err() {
        return Err("node is not installed".into());
    }
    let dir = browser_dir();
    if !dir.join("node_modules/playwright-core").exists() {
        return Err(format!(
            "playwright-core is not installed (npm ci in {})",
            dir.display()
        ));
    }
    Ok((chromium, dir))
}

/// Runs the script with the page at `base_url` (the server on `port`), and fails with its
/// output when a check fails.
fn run_script(name: &str, port: u16, base_url: &str) {
    let (chromium, dir) = match prerequisites() {
        Ok(found) => found,
        Err(why) if messages_core::testing::required() => {
            panic!("the browser tests are required under CI=true: {why}")
        }
        Err(why) => {
            messages_core::testing::skipped(&why);
            return;
        }
    };
    let data = TempDir::new();
    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("../results/ui");
    let output = Command::new("node")
        .arg("run.mjs")
        .current_dir(&dir)
        .env("SERVER_BIN", env!("CARGO_BIN_EXE_messages-server"))
        .env("SERVER_PORT", port.to_string())
        .env("DATA_DIR", data.path().join("data"))
        .env("BASE_URL", base_url)
        .env("SHOTS_DIR", &shots)
        .env("SHOTS_NAME", name)
        .env("CHROMIUM", chromium)
        .output()
        .unwrap_or_else(|e| panic!("run node: {e}"));
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    println!("{log}");
    assert!(output.status.success(), "browser checks failed:\n{log}");
}

#[test]
fn the_chat_page_works_in_a_browser() {
    let port = free_port();
    run_script("direct", port, &format!("http://127.0.0.1:{port}/"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chat_page_works_behind_the_gateway() {
    if prerequisites().is_err() && !messages_core::testing::required() {
        messages_core::testing::skipped(
            "the browser tests need node, Chromium and playwright-core",
        );
        return;
    }
    let port = free_port();
    let upstream = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let Some(gateway) = Gateway::start(upstream).await else {
        return;
    };
    let base = format!("http://{}/messages/", gateway.addr);
    tokio::task::spawn_blocking(move || run_script("gateway", port, &base))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    drop(gateway);
}
