use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use messages_core::RelayConfig;
use messages_core::limit::Rate;
use messages_core::storage::postgres::PostgresConfig;

use messages_core::storage::sqlite::Synchronous;
use secrecy::ExposeSecret;

use super::*;

mod backends;

fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Config::from_lookup(|k| map.get(k).cloned())
}

#[test]
fn defaults_without_environment_are_the_core_defaults() {
    let c = config(&[]).unwrap();
    let d = Config::default();
    assert_eq!(c.http.bind_addr, d.http.bind_addr);
    assert_eq!(c.http, HttpSettings::default());
    assert_eq!(c.service, ServiceConfig::default());
    assert_eq!(c.memory_cache, MemoryCacheConfig::default());
    assert_eq!(c.events.relay, RelayConfig::default());
    assert!(c.redis.is_none() && c.events.amqp.is_none());
    match &c.store {
        StoreSettings::Sqlite(s) => {
            assert_eq!(s.data_dir, PathBuf::from("./data"));
            assert_eq!(s.sqlite.path, PathBuf::from("./data/messages.db"));
            assert_eq!(s.sqlite.synchronous, Synchronous::Full);
            assert_eq!(s.sqlite.max_size, None);
        }
        other => panic!("the default store is SQLite, got {other:?}"),
    }
    assert!(matches!(c.auth, AuthSettings::TrustGateway));
    assert_eq!(
        c.http.bind_addr,
        HttpSettings::LOOPBACK,
        "trusted headers: loopback only"
    );
    let limits = c.rate_limit;
    assert_eq!(limits, RateLimitSettings::default());
    assert_eq!(limits.rate, Some(Rate::new(10.0, 30).unwrap()));
    assert!(limits.exempt_moderators && limits.exempt_services);
}

#[test]
fn rate_limits_are_read_and_zero_turns_them_off() {
    let c = config(&[
        ("RATE_LIMIT_WRITES_PER_SECOND", "0.5"),
        ("RATE_LIMIT_BURST", "4"),
        ("RATE_LIMIT_EXEMPT_ROLES", "service"),
    ])
    .unwrap();
    assert_eq!(c.rate_limit.rate, Some(Rate::new(0.5, 4).unwrap()));
    assert!(!c.rate_limit.exempt_moderators && c.rate_limit.exempt_services);
    let off = config(&[("RATE_LIMIT_WRITES_PER_SECOND", "0")]).unwrap();
    assert_eq!(off.rate_limit.rate, None);
    let everyone = config(&[("RATE_LIMIT_EXEMPT_ROLES", "none")]).unwrap();
    assert!(!everyone.rate_limit.exempt_moderators && !everyone.rate_limit.exempt_services);
}

#[test]
fn values_are_read() {
    let c = config(&[
        ("BIND_ADDR", "127.0.0.1:8080"),
        ("MAX_BODY_BYTES", "2048"),
        ("CACHE_MAX_ITEMS", "50"),
        ("CACHE_TOUCH_ON_HIT", "false"),
        ("LOG_FORMAT", "JSON"),
        ("HEADER_READ_TIMEOUT_SECONDS", "3"),
        ("RELAY_POLL_MS", "250"),
        ("REACTION_MAX_EMOJI", "5"),
        ("REACTION_USERS_SHOWN", "0"),
        ("UNREAD_MAX", "250"),
    ])
    .unwrap();
    assert_eq!(c.service.unread_max.get(), 250);
    assert_eq!(c.service.reactions.max_emoji, 5);
    assert_eq!(c.service.reactions.users_shown, 0);
    assert_eq!(c.http.bind_addr.port(), 8080);
    assert_eq!(c.http.max_body_bytes, 2048);
    assert_eq!(c.service.window.get(), 50);
    assert!(!c.memory_cache.lifetime.touch_on_hit);
    assert_eq!(c.log_format, LogFormat::Json);
    assert_eq!(c.http.header_read_timeout, Duration::from_secs(3));
    assert_eq!(c.events.relay.poll, Duration::from_millis(250));
    assert_eq!(c.events.relay.batch, RelayConfig::default().batch);
}

#[test]
fn database_from_url_or_parts() {
    let db = config(&[
        ("DATABASE_URL", "postgres://u:p@h:5433/d"),
        ("MIGRATE_ON_START", "false"),
        ("DB_POOL_SIZE", "4"),
        ("DB_GROUP_MAX", "32"),
        ("DB_GROUP_LANES", "2"),
    ])
    .unwrap()
    .store;
    let StoreSettings::Postgres(db) = db else {
        panic!("DATABASE_URL or DB_HOST selects PostgreSQL")
    };
    assert_eq!(db.postgres.url.expose_secret(), "postgres://u:p@h:5433/d");
    assert_eq!(db.postgres.pool_size, 4);
    assert_eq!((db.postgres.group_max, db.postgres.group_lanes), (32, 2));
    assert_eq!(
        db.postgres.operation_timeout,
        PostgresConfig::new("x").operation_timeout
    );
    assert!(!db.migrate_on_start);
    assert!(
        !format!("{db:?}").contains("u:p"),
        "the URL is never printed"
    );
    let db = config(&[
        ("DB_HOST", "db"),
        ("DB_USER", "app"),
        ("DB_PASSWORD", "it's"),
        ("DB_NAME", "messages"),
    ])
    .unwrap()
    .store;
    let StoreSettings::Postgres(db) = db else {
        panic!("DATABASE_URL or DB_HOST selects PostgreSQL")
    };
    assert_eq!(
        db.postgres.url.expose_secret(),
        "host='db' port=5432 user='app' password='it\\'s' dbname='messages'"
    );
    let parsed: tokio_postgres::Config = db.postgres.url.expose_secret().parse().unwrap();
    assert_eq!(parsed.get_password(), Some(&b"it's"[..]));
    assert_eq!(parsed.get_dbname(), Some("messages"));
    assert!(!format!("{db:?}").contains("it's"));
}

#[test]
fn store_is_chosen_by_store_or_by_a_database_url() {
    let store = |vars: &[(&str, &str)]| config(vars).map(|c| c.store);
    assert!(matches!(
        store(&[("STORE", "memory")]),
        Ok(StoreSettings::Memory)
    ));
    assert!(matches!(
        store(&[("STORE", "SQLite")]),
        Ok(StoreSettings::Sqlite(_))
    ));
    let url = ("DATABASE_URL", "postgres://h/d");
    assert!(matches!(store(&[url]), Ok(StoreSettings::Postgres(_))));
    assert!(matches!(
        store(&[url, ("STORE", "postgres")]),
        Ok(StoreSettings::Postgres(_))
    ));
    for conflicting in ["memory", "sqlite"] {
        let err = store(&[url, ("STORE", conflicting)]).unwrap_err();
        assert_eq!(err.var, "STORE");
        assert!(err.reason.contains("DATABASE_URL"), "{err}");
    }
    let err = store(&[("STORE", "postgres")]).unwrap_err();
    assert!(err.reason.contains("DATABASE_URL"), "{err}");
    let Ok(StoreSettings::Sqlite(s)) = store(&[
        ("DATA_DIR", "/var/lib/messages"),
        ("SQLITE_SYNCHRONOUS", "normal"),
        ("SQLITE_MAX_SIZE_MB", "512"),
        ("DB_TIMEOUT_MS", "750"),
    ]) else {
        panic!("SQLite settings")
    };
    assert_eq!(
        s.sqlite.path,
        PathBuf::from("/var/lib/messages/messages.db")
    );
    assert_eq!(s.sqlite.synchronous, Synchronous::Normal);
    assert_eq!(s.sqlite.max_size, Some(512 << 20));
    assert_eq!(s.sqlite.operation_timeout, Duration::from_millis(750));
}

#[test]
fn a_jwt_secret_never_prints() {
    let c = config(&[("AUTH_JWT_SECRET", "0123456789abcdef0123456789abcdef")]).unwrap();
    assert!(!format!("{:?}", c.auth).contains("0123456789"));
    assert_eq!(
        config(&[("AUTH_JWT_SECRET", "short")]).unwrap_err().var,
        "AUTH_JWT_SECRET"
    );
}

#[test]
fn errors_name_the_variable() {
    for (var, value) in [
        ("BIND_ADDR", "nope"),
        ("MAX_BODY_BYTES", "-1"),
        ("MAX_BODY_BYTES", "10"),
        ("CACHE_MAX_ITEMS", "201"),
        ("CACHE_MAX_ITEMS", "0"),
        ("CACHE_TOUCH_ON_HIT", "maybe"),
        ("LOG_FORMAT", "xml"),
        ("SHUTDOWN_TIMEOUT_SECONDS", "soon"),
        ("HEADER_READ_TIMEOUT_SECONDS", "0"),
        ("DATABASE_URL", "postgres://h:notaport/x"),
        ("DB_PORT", "70000"),
        ("DB_GROUP_MAX", "0"),
        ("DB_GROUP_MAX", "5000"),
        ("DB_GROUP_LANES", "0"),
        ("MIGRATE_ON_START", "sometimes"),
        ("STORE", "mongodb"),
        ("SQLITE_SYNCHRONOUS", "off"),
        ("SQLITE_MAX_SIZE_MB", "0"),
        ("REACTION_MAX_EMOJI", "0"),
        ("REACTION_USERS_SHOWN", "101"),
        ("UNREAD_MAX", "0"),
        ("AUTH_JWT_ROLES_CLAIM", "bad claim"),
        ("UNREAD_MAX", "100001"),
        ("RATE_LIMIT_WRITES_PER_SECOND", "-1"),
        ("RATE_LIMIT_WRITES_PER_SECOND", "NaN"),
        ("RATE_LIMIT_WRITES_PER_SECOND", "fast"),
        ("RATE_LIMIT_WRITES_PER_SECOND", "2000000"),
        ("RATE_LIMIT_BURST", "0"),
        ("RATE_LIMIT_EXEMPT_ROLES", "admin"),
        ("LIVE_TRANSPORT", "kafka"),
        // Each transport needs its backend.
        ("LIVE_TRANSPORT", "redis"),
        ("LIVE_TRANSPORT", "postgres"),
    ] {
        let vars: Vec<(&str, &str)> = if var.starts_with("DB_") || var == "MIGRATE_ON_START" {
            vec![("DB_HOST", "db"), (var, value)]
        } else {
            vec![(var, value)]
        };
        let err = config(&vars).unwrap_err();
        assert_eq!(err.var, var);
        assert!(err.to_string().starts_with(var));
    }
}

#[test]
fn with_jwt_authentication_the_default_address_is_every_interface() {
    let c = config(&[("AUTH_JWT_SECRET", "a-secret-of-at-least-thirty-two-bytes!!")]).unwrap();
    assert_eq!(c.http.bind_addr, HttpSettings::EVERYWHERE);
    let set = config(&[("BIND_ADDR", "0.0.0.0:8080")]).unwrap();
    assert_eq!(set.http.bind_addr.to_string(), "0.0.0.0:8080");
}

#[test]
fn the_live_transport_follows_the_backends_unless_named() {
    assert_eq!(config(&[]).unwrap().streams.transport, LiveTransport::Auto);
    let both = [
        ("DATABASE_URL", "postgres://db/messages"),
        ("REDIS_URL", "redis://cache:6379/0"),
    ];
    for (value, want) in [
        ("auto", LiveTransport::Auto),
        ("REDIS", LiveTransport::Redis),
        ("postgres", LiveTransport::Postgres),
        ("none", LiveTransport::None),
    ] {
        let mut vars = both.to_vec();
        vars.push(("LIVE_TRANSPORT", value));
        assert_eq!(config(&vars).unwrap().streams.transport, want, "{value}");
    }
    let err = config(&[
        ("DATABASE_URL", "postgres://db/m"),
        ("LIVE_TRANSPORT", "redis"),
    ])
    .unwrap_err();
    assert!(err.reason.contains("needs Redis"), "{err}");
    let err = config(&[
        ("REDIS_URL", "redis://cache"),
        ("LIVE_TRANSPORT", "postgres"),
    ])
    .unwrap_err();
    assert!(err.reason.contains("PostgreSQL store"), "{err}");
}

/// The variables the program lists are the ones it reads: each is listed once, its default is
/// what the configuration holds without it, and the program reads every variable the
/// deployment files may set (checked by `tools/check-deployment` against this list).
#[test]
fn the_variables_listed_are_those_read_with_their_defaults() {
    let variables = Config::variables();
    let names: Vec<&str> = variables.iter().map(|v| v.name).collect();
    let mut unique = names.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), names.len(), "each once: {names:?}");
    for expected in [
        "BIND_ADDR",
        "DATABASE_URL",
        "DB_HOST",
        "DB_PORT",
        "DB_PASSWORD",
        "REDIS_URL",
        "REDIS_CLUSTER_NODES",
        "REDIS_PORT",
        "AMQP_URL",
        "QUEUE_VHOST",
        "AUTH_JWT_SECRET",
        "AUTH_JWT_PUBLIC_KEY",
        "LIVE_TRANSPORT",
        "STORE",
        "DATA_DIR",
        "SQLITE_SYNCHRONOUS",
        "RATE_LIMIT_EXEMPT_ROLES",
        "RELAY_POLL_MS",
    ] {
        assert!(names.contains(&expected), "{expected} is not listed");
    }
    let default = |name: &str| {
        variables
            .iter()
            .find(|v| v.name == name)
            .map(|v| v.default.as_str())
            .unwrap_or_else(|| panic!("{name} is not listed"))
    };
    let d = Config::default();
    assert_eq!(default("BIND_ADDR"), d.http.bind_addr.to_string());
    assert_eq!(
        default("SHUTDOWN_TIMEOUT_SECONDS"),
        d.http.shutdown_timeout.as_secs().to_string()
    );
    assert_eq!(
        default("STREAM_RETRY_MS"),
        d.streams.retry.as_millis().to_string()
    );
    assert_eq!(default("LIVE_TRANSPORT"), "auto");
    assert_eq!(default("LOG_FORMAT"), "text");
    assert_eq!(default("SQLITE_SYNCHRONOUS"), "full");
    assert_eq!(
        default("CACHE_TOUCH_ON_HIT"),
        d.memory_cache.lifetime.touch_on_hit.to_string()
    );
    assert_eq!(default("DATABASE_URL"), "", "unset: not configured");
    assert_eq!(default("RATE_LIMIT_EXEMPT_ROLES"), "moderator,service");
    // Every listed variable is read: a value no reader takes is refused, naming it (the ones
    // that take any text are skipped).
    let any_text = [
        "DATABASE_URL",
        "DB_HOST",
        "DB_USER",
        "DB_PASSWORD",
        "DB_NAME",
        "DATA_DIR",
        "REDIS_HOST",
        "REDIS_PASSWORD",
        "QUEUE_HOST",
        "QUEUE_USER",
        "QUEUE_PASSWORD",
        "QUEUE_VHOST",
        "EVENT_SOURCE",
        "AUTH_JWT_SECRET",
        "AUTH_JWT_ISSUER",
        "AUTH_JWT_AUDIENCE",
    ];
    for variable in &variables {
        if any_text.contains(&variable.name) {
            continue;
        }
        let mut vars = vec![(variable.name, "not a value \u{1} anyone takes")];
        if variable.name.starts_with("DB_") || variable.name == "MIGRATE_ON_START" {
            vars.push(("DB_HOST", "db"));
        }
        if variable.name.starts_with("REDIS_") || variable.name == "CACHE_KEY_PREFIX" {
            vars.push(("REDIS_HOST", "redis"));
        }
        if variable.name.starts_with("QUEUE_") {
            vars.push(("QUEUE_HOST", "rabbitmq"));
        }
        let refused = config(&vars);
        assert!(
            matches!(&refused, Err(e) if e.var == variable.name),
            "{} is listed but a bad value of it is not refused: {:?}",
            variable.name,
            refused.map(|_| ())
        );
    }
}
