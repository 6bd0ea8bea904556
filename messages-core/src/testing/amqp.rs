//! RabbitMQ for tests: names of their own per test, and a consumer that collects what arrives.

use std::time::Duration;

use lapin::options::{
    BasicAckOptions, BasicGetOptions, ExchangeDeleteOptions, QueueBindOptions, QueueDeclareOptions,
    QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, Connection, ConnectionProperties};

use crate::events::amqp::AmqpConfig;
use crate::events::codec::{self, ReceivedEvent};

/// The `AMQP_URL` to test against, or `None` (skip); see [`super::backend_url`].
pub fn amqp_url() -> Option<String> {
    super::backend_url("AMQP_URL")
}

/// A publisher configuration on `url` with an exchange and a legacy queue of the test's own.
pub fn test_config(url: &str) -> AmqpConfig {
    let tag = uuid::Uuid::new_v4().simple().to_string();
    let mut config = AmqpConfig::new(url);
    config.exchange = format!("messages-test-{tag}");
    config.legacy_queue = Some(format!("messages_service-test-{tag}"));
    config.timeout = Duration::from_secs(2);
    config
}

/// One message as it arrived.
#[derive(Clone, Debug)]
pub struct Arrived {
    /// The routing key.
    pub routing_key: String,
    /// The body.
    pub body: Vec<u8>,
    /// The AMQP `message_id` property.
    pub message_id: Option<String>,
    /// The AMQP `content_type` property.
    pub content_type: Option<String>,
    /// The AMQP delivery mode (2 = persistent).
    pub delivery_mode: Option<u8>,
    /// String headers.
    pub headers: Vec<(String, String)>,
}

impl Arrived {
    /// Decodes the CloudEvent.
    ///
    /// # Panics
    /// When it is not one.
    pub fn event(&self) -> ReceivedEvent {
        codec::decode_event(
            |name| {
                self.headers
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| v.as_str())
            },
            &self.body,
        )
        .expect("not an event")
    }
}

/// Reads what a test's exchange and legacy queue received.
pub struct TestConsumer {
    connection: Connection,
    channel: Channel,
    /// A queue bound to every event type of the exchange.
    pub all_queue: String,
    config: AmqpConfig,
}

impl TestConsumer {
    /// Declares the exchange, the legacy queue (as the publisher would) and a queue bound to
    /// `message.*`, so nothing published after this is missed.
    ///
    /// # Panics
    /// When RabbitMQ does not answer.
    pub async fn bind(config: &AmqpConfig) -> TestConsumer {
        Self::bind_with(config, false).await
    }

    /// As [`TestConsumer::bind`], with the queue of every event durable: what it holds
    /// survives the broker's restart (the events are published persistent and confirmed).
    /// After a restart, [`TestConsumer::reconnect`] before reading.
    ///
    /// # Panics
    /// When RabbitMQ does not answer.
    pub async fn bind_durable(config: &AmqpConfig) -> TestConsumer {
        Self::bind_with(config, true).await
    }

    /// A new connection and channel to the same broker (after it restarted).
    ///
    /// # Panics
    /// When RabbitMQ does not answer.
    pub async fn reconnect(&mut self) {
        self.connection = Connection::connect(
            secrecy::ExposeSecret::expose_secret(&self.config.url),
            ConnectionProperties::default(),
        )
        .await
        .expect("RabbitMQ at AMQP_URL");
        self.channel = self.connection.create_channel().await.expect("channel");
    }

    async fn bind_with(config: &AmqpConfig, durable: bool) -> TestConsumer {
        let connection = Connection::connect(
            secrecy::ExposeSecret::expose_secret(&config.url),
            ConnectionProperties::default(),
        )
        .await
        .expect("RabbitMQ at AMQP_URL");
        let channel = connection.create_channel().await.expect("channel");
        // The publisher declares the same exchange; declaring it here too keeps the order of
        // the two free.
        channel
            .exchange_declare(
                config.exchange.as_str().into(),
                lapin::ExchangeKind::Topic,
                lapin::options::ExchangeDeclareOptions {
                    durable: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .expect("exchange");
        if let Some(legacy) = &config.legacy_queue {
            channel
                .queue_declare(
                    legacy.as_str().into(),
                    QueueDeclareOptions {
                        durable: true,
                        ..Default::default()
                    },
                    FieldTable::default(),
                )
                .await
                .expect("legacy queue");
            channel
                .queue_bind(
                    legacy.as_str().into(),
                    config.exchange.as_str().into(),
                    codec::CREATED.into(),
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await
                .expect("legacy bind");
        }
        let all_queue = format!("{}-all", config.exchange);
        channel
            .queue_declare(
                all_queue.as_str().into(),
                QueueDeclareOptions {
                    durable,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .expect("queue");
        channel
            .queue_bind(
                all_queue.as_str().into(),
                config.exchange.as_str().into(),
                // Every event: message.* and reaction.*.
                "#".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .expect("bind");
        TestConsumer {
            connection,
            channel,
            all_queue,
            config: config.clone(),
        }
    }

    /// Takes everything waiting in `queue`, waiting up to `patience` for at least `expected`.
    pub async fn drain(&self, queue: &str, expected: usize, patience: Duration) -> Vec<Arrived> {
        let deadline = tokio::time::Instant::now() + patience;
        let mut out = Vec::new();
        loop {
            let got = self
                .channel
                .basic_get(queue.into(), BasicGetOptions::default())
                .await
                .expect("basic_get");
            match got {
                Some(message) => {
                    let delivery = &message.delivery;
                    let props = &delivery.properties;
                    let headers = props
                        .headers()
                        .as_ref()
                        .map(|h| {
                            h.inner()
                                .iter()
                                .filter_map(|(k, v)| match v {
                                    AMQPValue::LongString(s) => Some((
                                        k.to_string(),
                                        String::from_utf8_lossy(s.as_bytes()).into_owned(),
                                    )),
                                    _ => None,
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                    out.push(Arrived {
                        routing_key: delivery.routing_key.to_string(),
                        body: delivery.data.clone(),
                        message_id: props.message_id().as_ref().map(ToString::to_string),
                        content_type: props.content_type().as_ref().map(ToString::to_string),
                        delivery_mode: *props.delivery_mode(),
                        headers,
                    });
                    delivery.ack(BasicAckOptions::default()).await.expect("ack");
                }
                None if out.len() >= expected || tokio::time::Instant::now() >= deadline => {
                    return out;
                }
                None => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    }

    /// Deletes the test's queues and exchange.
    pub async fn cleanup(self) {
        let _ = self
            .channel
            .queue_delete(
                self.all_queue.as_str().into(),
                QueueDeleteOptions::default(),
            )
            .await;
        if let Some(q) = &self.config.legacy_queue {
            let _ = self
                .channel
                .queue_delete(q.as_str().into(), QueueDeleteOptions::default())
                .await;
        }
        let _ = self
            .channel
            .exchange_delete(
                self.config.exchange.as_str().into(),
                ExchangeDeleteOptions::default(),
            )
            .await;
        let _ = self.connection.close(0, "done".into()).await;
    }
}
