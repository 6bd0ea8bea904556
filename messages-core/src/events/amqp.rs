//! The RabbitMQ publisher: events to a durable topic exchange with publisher confirms, in the
//! CloudEvents 1.0 AMQP binary mode, plus the durable queue the old service's consumers read.

use std::time::Duration;

use async_trait::async_trait;
use lapin::options::{
    BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions,
    QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Mutex;

use super::Publisher;
use super::codec;
use crate::error::{Error, Result};
use crate::storage::StoredEvent;

/// Settings of the RabbitMQ publisher.
#[derive(Clone, Debug)]
pub struct AmqpConfig {
    /// An `amqp://` URL; it may hold a password, so it never prints.
    pub url: SecretString,
    /// The topic exchange events go to (durable); routing key = event type. Default
    /// `messages`.
    pub exchange: String,
    /// A durable queue bound to `message.created` for consumers of the old service, which
    /// receives the message JSON as before; `None` declares no such queue. Default
    /// `messages_service`.
    pub legacy_queue: Option<String>,
    /// `cloudEvents:source` of every event. Default `/messages`.
    pub source: String,
    /// Longest wait to connect, or for a batch's confirms. Default 5 s.
    pub timeout: Duration,
}

impl AmqpConfig {
    /// Defaults for everything but the URL.
    pub fn new(url: impl Into<String>) -> Self {
        AmqpConfig {
            url: SecretString::from(url.into()),
            exchange: "messages".into(),
            legacy_queue: Some("messages_service".into()),
            source: "/messages".into(),
            timeout: Duration::from_secs(5),
        }
    }
}

/// Publishes to RabbitMQ, connecting on first use and again after any failure.
pub struct AmqpPublisher {
    config: AmqpConfig,
    /// One channel in confirm mode; a tokio `Mutex` because it is held across the publish and
    /// its confirms, which keeps a batch's events in order on one channel.
    link: Mutex<Option<(Connection, Channel)>>,
}

fn broker(e: impl Into<crate::error::BoxError>) -> Error {
    Error::unavailable("rabbitmq", e)
}

impl AmqpPublisher {
    /// A publisher; nothing connects until the first publish or ping.
    pub fn new(config: AmqpConfig) -> Self {
        AmqpPublisher {
            config,
            link: Mutex::new(None),
        }
    }

    async fn connect(&self) -> Result<(Connection, Channel)> {
        let properties = ConnectionProperties::default()
            .with_connection_name(LongString::from("messages-relay"));
        let connection = tokio::time::timeout(
            self.config.timeout,
            Connection::connect(self.config.url.expose_secret(), properties),
        )
        .await
        .map_err(|_| broker("connect timed out"))?
        .map_err(broker)?;
        let channel = connection.create_channel().await.map_err(broker)?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(broker)?;
        channel
            .exchange_declare(
                self.config.exchange.as_str().into(),
                ExchangeKind::Topic,
                ExchangeDeclareOptions {
                    durable: true,
                    ..ExchangeDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .map_err(broker)?;
        if let Some(queue) = &self.config.legacy_queue {
            channel
                .queue_declare(
                    queue.as_str().into(),
                    QueueDeclareOptions {
                        durable: true,
                        ..QueueDeclareOptions::default()
                    },
                    FieldTable::default(),
                )
                .await
                .map_err(broker)?;
            channel
                .queue_bind(
                    queue.as_str().into(),
                    self.config.exchange.as_str().into(),
                    codec::CREATED.into(),
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await
                .map_err(broker)?;
        }
        tracing::info!(exchange = %self.config.exchange, "connected to RabbitMQ");
        Ok((connection, channel))
    }

    fn properties(&self, event: &StoredEvent) -> BasicProperties {
        let mut headers = FieldTable::default();
        for (name, value) in codec::headers(event, &self.config.source) {
            headers.insert(
                ShortString::from(name),
                AMQPValue::LongString(LongString::from(value)),
            );
        }
        BasicProperties::default()
            .with_content_type(codec::CONTENT_TYPE.into())
            .with_delivery_mode(2)
            .with_message_id(event.id.to_string().into())
            .with_timestamp(event.time.as_micros().max(0) as u64 / 1_000_000)
            .with_type(event.kind.as_str().into())
            .with_headers(headers)
    }

    async fn publish_on(&self, channel: &Channel, events: &[StoredEvent]) -> Result<()> {
        let mut confirms = Vec::with_capacity(events.len());
        for event in events {
            let confirm = channel
                .basic_publish(
                    self.config.exchange.as_str().into(),
                    event.kind.as_str().into(),
                    BasicPublishOptions::default(),
                    &event.payload,
                    self.properties(event),
                )
                .await
                .map_err(broker)?;
            confirms.push(confirm);
        }
        let all = async {
            for confirm in confirms {
                let confirmation = confirm.await.map_err(broker)?;
                if !confirmation.is_ack() {
                    return Err(broker("the broker refused an event (nack)"));
                }
            }
            Ok(())
        };
        tokio::time::timeout(self.config.timeout, all)
            .await
            .map_err(|_| broker("confirms timed out"))?
    }
}

#[async_trait]
impl Publisher for AmqpPublisher {
    async fn publish(&self, events: &[StoredEvent]) -> Result<()> {
        let mut link = self.link.lock().await;
        let usable = link
            .as_ref()
            .is_some_and(|(c, ch)| c.status().connected() && ch.status().connected());
        if !usable {
            *link = Some(self.connect().await?);
        }
        let Some((_, channel)) = link.as_ref() else {
            return Err(broker("no channel"));
        };
        let published = self.publish_on(channel, events).await;
        if published.is_err() {
            // Start clean next time: the channel may be half-closed or its confirms lost.
            if let Some((connection, _)) = link.take() {
                let _ = connection.close(0, "publish failed".into()).await;
            }
        }
        published
    }
}
