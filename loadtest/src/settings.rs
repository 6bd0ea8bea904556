//! Load test settings from the environment, read once. Every variable is optional.
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `LOADTEST_SEED` | `1` | run seed: thread and user ids are UUIDv5 of it and an index |
//! | `LOADTEST_THREADS` | `10` | threads written and read |
//! | `LOADTEST_USERS` | `100` | chat users (authors) |
//! | `LOADTEST_PAGE_LIMIT` | `50` | `limit` of every page read |
//! | `LOADTEST_FOLLOW` | `0.3` | probability that `consume` follows `next_cursor` |
//! | `LOADTEST_MIX` | `read=80,create=12,reply=2,react=4,edit=1,delete=1` | weights of the mixed room |
//! | `LOADTEST_WAIT_MS` | `0,0` | pause between a mixed client's actions, min,max |
//! | `LOADTEST_FAIL_ON_ERROR` | `false` | exit 1 if any request failed (or none ran) |
//! | `LOADTEST_AUTHORIZATION` | unset | `Authorization` header on every request (a gateway's JWT) |

use std::sync::OnceLock;

use uuid::Uuid;

/// Weights of the mixed room's actions.
#[derive(Clone, Copy, Debug)]
pub struct Mix {
    pub read: usize,
    pub create: usize,
    pub reply: usize,
    pub react: usize,
    pub edit: usize,
    pub delete: usize,
    pub mark: usize,
    pub sidebar: usize,
}

/// The settings.
#[derive(Clone, Debug)]
pub struct Settings {
    pub seed: u32,
    pub threads: usize,
    pub users: usize,
    pub page_limit: usize,
    pub follow: f64,
    pub mix: Mix,
    pub wait_ms: (u64, u64),
    pub fail_on_error: bool,
    pub authorization: Option<String>,
}

/// A fixed namespace, so ids depend on the seed and the index only.
const NAMESPACE: Uuid = Uuid::from_u128(0x6d65_7373_6167_6573_6c6f_6164_7465_7374);

impl Settings {
    /// The id of thread `i` of this run.
    pub fn thread(&self, i: usize) -> Uuid {
        Uuid::new_v5(&NAMESPACE, format!("{}/thread/{i}", self.seed).as_bytes())
    }

    /// The id of user `i` of this run.
    pub fn user(&self, i: usize) -> Uuid {
        Uuid::new_v5(&NAMESPACE, format!("{}/user/{i}", self.seed).as_bytes())
    }
}

fn var<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v.trim().parse().unwrap_or_else(|_| {
            eprintln!("loadtest: {name}={v:?} is not valid");
            std::process::exit(2)
        }),
        _ => default,
    }
}

fn mix() -> Mix {
    let raw = std::env::var("LOADTEST_MIX").unwrap_or_else(|_| {
        "read=80,create=12,reply=2,react=4,edit=1,delete=1,mark=8,sidebar=2".into()
    });
    let mut mix = Mix {
        read: 0,
        create: 0,
        reply: 0,
        react: 0,
        edit: 0,
        delete: 0,
        mark: 0,
        sidebar: 0,
    };
    for part in raw.split(',').filter(|p| !p.trim().is_empty()) {
        let (name, weight) = part.split_once('=').unwrap_or((part, ""));
        let Ok(weight) = weight.trim().parse::<usize>() else {
            eprintln!("loadtest: LOADTEST_MIX: {part:?} is not name=weight");
            std::process::exit(2)
        };
        match name.trim() {
            "read" => mix.read = weight,
            "create" => mix.create = weight,
            "reply" => mix.reply = weight,
            "react" => mix.react = weight,
            "edit" => mix.edit = weight,
            "delete" => mix.delete = weight,
            "mark" => mix.mark = weight,
            "sidebar" => mix.sidebar = weight,
            other => {
                eprintln!(
                    "loadtest: LOADTEST_MIX: unknown action {other:?} \
                     (read, create, reply, react, edit, delete, mark, sidebar)"
                );
                std::process::exit(2)
            }
        }
    }
    // Goose refuses a weight of 0: an action left out gets the least weight.
    mix.read = mix.read.max(1);
    mix.create = mix.create.max(1);
    mix.reply = mix.reply.max(1);
    mix.react = mix.react.max(1);
    mix.edit = mix.edit.max(1);
    mix.delete = mix.delete.max(1);
    mix.mark = mix.mark.max(1);
    mix.sidebar = mix.sidebar.max(1);
    mix
}

static SETTINGS: OnceLock<Settings> = OnceLock::new();

/// The settings, read on first use.
pub fn get() -> &'static Settings {
    SETTINGS.get_or_init(|| {
        let wait: String = var("LOADTEST_WAIT_MS", "0,0".to_owned());
        let (lo, hi) = wait.split_once(',').unwrap_or((&wait, &wait));
        let wait_ms = (
            lo.trim().parse().unwrap_or(0),
            hi.trim().parse().unwrap_or(0),
        );
        let follow: f64 = var("LOADTEST_FOLLOW", 0.3);
        if !(0.0..=1.0).contains(&follow) {
            eprintln!("loadtest: LOADTEST_FOLLOW must be from 0 to 1");
            std::process::exit(2);
        }
        Settings {
            seed: var("LOADTEST_SEED", 1),
            threads: var("LOADTEST_THREADS", 10usize).max(1),
            users: var("LOADTEST_USERS", 100usize).max(1),
            page_limit: var("LOADTEST_PAGE_LIMIT", 50usize).clamp(1, 200),
            follow,
            mix: mix(),
            wait_ms: (wait_ms.0, wait_ms.1.max(wait_ms.0)),
            fail_on_error: var("LOADTEST_FAIL_ON_ERROR", false),
            authorization: std::env::var("LOADTEST_AUTHORIZATION")
                .ok()
                .filter(|v| !v.trim().is_empty()),
        }
    })
}
