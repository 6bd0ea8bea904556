//! `EventSettings`: RabbitMQ, and the outbox relay.

use messages_core::RelayConfig;
use messages_core::events::amqp::AmqpConfig;

use super::env::{ConfigError, Env, percent_encode};

/// Event delivery.
#[derive(Clone, Debug, Default)]
pub struct EventSettings {
    /// RabbitMQ (`AMQP_URL`, or built from `QUEUE_HOST`, `QUEUE_PORT`, `QUEUE_USER`,
    /// `QUEUE_PASSWORD`, `QUEUE_VHOST`; then `AMQP_EXCHANGE`, `AMQP_LEGACY_QUEUE`,
    /// `EVENT_SOURCE`); `None` delivers to the in-process sink.
    pub amqp: Option<AmqpConfig>,
    /// The outbox relay (`RELAY_BATCH`, `RELAY_POLL_MS`).
    pub relay: RelayConfig,
}

impl EventSettings {
    /// Reads `AMQP_URL` (or `QUEUE_HOST` and its parts), the exchange and queue names, and the
    /// relay's settings.
    pub(super) fn from_env<F: Fn(&str) -> Option<String>>(
        env: &Env<F>,
    ) -> Result<Self, ConfigError> {
        let url = match (env.get("AMQP_URL"), env.get("QUEUE_HOST")) {
            (Some(url), _) => {
                if !(url.starts_with("amqp://") || url.starts_with("amqps://")) {
                    return Err(ConfigError {
                        var: "AMQP_URL",
                        reason: "expected an amqp:// URL".into(),
                    });
                }
                Some(url)
            }
            (None, Some(host)) => {
                let port = env.range("QUEUE_PORT", 5672, 1, 65_535)?;
                let user = env.text("QUEUE_USER", "guest");
                let password = env.text("QUEUE_PASSWORD", "guest");
                let vhost = env.text("QUEUE_VHOST", "/");
                Some(format!(
                    "amqp://{}:{}@{host}:{port}/{}",
                    percent_encode(&user),
                    percent_encode(&password),
                    percent_encode(&vhost)
                ))
            }
            (None, None) => None,
        };
        let name = |var: &'static str, default: &str| -> Result<String, ConfigError> {
            let value = env.text(var, default);
            if value.len() > 255 || value.chars().any(char::is_whitespace) {
                return Err(ConfigError {
                    var,
                    reason: "must be at most 255 characters without spaces".into(),
                });
            }
            Ok(value)
        };
        // The names are checked whether or not RabbitMQ is configured, so a typo shows at once.
        let mut amqp = AmqpConfig::new(url.clone().unwrap_or_default());
        amqp.exchange = name("AMQP_EXCHANGE", &amqp.exchange)?;
        let legacy = name(
            "AMQP_LEGACY_QUEUE",
            amqp.legacy_queue.as_deref().unwrap_or("none"),
        )?;
        amqp.legacy_queue = (!legacy.eq_ignore_ascii_case("none")).then_some(legacy);
        amqp.source = env.text("EVENT_SOURCE", &amqp.source);
        let mut relay = RelayConfig::default();
        relay.batch = env.count("RELAY_BATCH", relay.batch, 1, 10_000)?;
        relay.poll = env.millis("RELAY_POLL_MS", relay.poll, 10, 60_000)?;
        Ok(EventSettings {
            amqp: url.map(|_| amqp),
            relay,
        })
    }
}
