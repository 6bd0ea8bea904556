//! Events on a real RabbitMQ (`AMQP_URL`; with PostgreSQL for the durable outbox,
//! `DATABASE_URL`, and SQLite): the wire format, an outage that loses nothing, two relays that
//! share one outbox without publishing twice, and events that wait in a SQLite outbox across a
//! restart. Skipped without the URLs, required under `CI=true`.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use messages_core::events::amqp::AmqpPublisher;
use messages_core::events::codec::{self, EventBody};
use messages_core::storage::memory::MemoryStore;
use messages_core::testing::amqp::{TestConsumer, amqp_url, test_config};
use messages_core::testing::post_text as post;
use messages_core::testing::postgres::TestDatabase;
use messages_core::testing::proxy::TcpProxy;
use messages_core::testing::sqlite::TempDir;
use messages_core::testing::storage::Subject;
use messages_core::{
    Emoji, MessagePatch, MessageService, ReactionChange, Removal, ThreadId, UserId,
};
use messages_core::{Relay, RelayConfig};
use secrecy::SecretString;

/// The service over the subject's store, and its relay to `publisher`, stepped by the test.
fn service_on(subject: &Subject, publisher: AmqpPublisher) -> (MessageService, Relay) {
    MessageService::builder(Arc::clone(&subject.store))
        .publisher(Arc::new(publisher))
        .build()
}

/// The service alone: its relay is not run, so its writes' events wait in the outbox.
fn writer_on(subject: &Subject) -> MessageService {
    MessageService::builder(Arc::clone(&subject.store))
        .build()
        .0
}

fn ids() -> (ThreadId, UserId) {
    (
        ThreadId::from_uuid(uuid::Uuid::new_v4()),
        UserId::from_uuid(uuid::Uuid::new_v4()),
    )
}

async fn wire_format(subject: Subject, url: &str) {
    let config = test_config(url);
    let consumer = TestConsumer::bind(&config).await;
    let (service, relay) = service_on(&subject, AmqpPublisher::new(config.clone()));
    let (thread, user) = ids();
    let created = post(&service, thread, user, "hello").await;
    let patch =
        MessagePatch::new(Some("hello, edited".into()), None, service.limits()).expect("valid");
    let edited = service
        .update(thread, created.id, user, patch)
        .await
        .expect("edit");
    let reader = UserId::from_uuid(uuid::Uuid::new_v4());
    let reacted = service
        .react(
            thread,
            created.id,
            reader,
            Emoji::parse("👍").expect("emoji"),
            ReactionChange::Add,
        )
        .await
        .expect("react");
    // Removed by a moderator, with a reason: both reach the broker in the tombstone.
    let moderator = UserId::from_uuid(uuid::Uuid::new_v4());
    let removal = Removal::new(moderator, true, Some("spam".into())).expect("valid");
    service
        .remove(thread, created.id, removal)
        .await
        .expect("remove");

    let report = relay.relay_once().await.expect("relay");
    assert_eq!(report.published, 4);
    assert_eq!(
        relay.relay_once().await.expect("relay").published,
        0,
        "each event once"
    );

    let all = consumer
        .drain(&consumer.all_queue, 4, Duration::from_secs(5))
        .await;
    assert_eq!(
        all.iter()
            .map(|a| a.routing_key.as_str())
            .collect::<Vec<_>>(),
        [
            codec::CREATED,
            codec::UPDATED,
            codec::REACTION_ADDED,
            codec::DELETED
        ]
    );
    let events: Vec<_> = all.iter().map(|a| a.event()).collect();
    assert_eq!(events[0].body, EventBody::Created(created.clone()));
    assert_eq!(events[1].body, EventBody::Updated(edited));
    match &events[2].body {
        EventBody::ReactionAdded(r) => {
            assert_eq!((r.message_id, r.user_id, r.count), (created.id, reader, 1));
            assert_eq!(r.emoji.as_str(), "👍");
            assert_eq!((r.seq, r.rev), (created.seq, reacted.message.rev));
            assert_eq!(events[2].sequence, reacted.message.rev);
        }
        other => panic!("expected a reaction event, got {other:?}"),
    }
    match &events[3].body {
        EventBody::Deleted(d) => {
            assert_eq!((d.id, d.thread_id), (created.id, thread));
            assert_eq!(d.deleted_by, Some(moderator));
            assert_eq!(d.reason.as_deref(), Some("spam"));
        }
        other => panic!("expected a deleted event, got {other:?}"),
    }
    for (arrived, event) in all.iter().zip(&events) {
        assert_eq!(
            arrived.message_id.as_deref(),
            Some(event.id.to_string().as_str())
        );
        assert_eq!(arrived.content_type.as_deref(), Some("application/json"));
        assert_eq!(arrived.delivery_mode, Some(2), "persistent");
        assert_eq!(event.thread_id, thread);
        let header = |n: &str| {
            arrived
                .headers
                .iter()
                .find(|(k, _)| k == n)
                .map(|(_, v)| v.clone())
        };
        assert_eq!(header("cloudEvents:source").as_deref(), Some("/messages"));
        assert_eq!(header("cloudEvents:specversion").as_deref(), Some("1.0"));
    }
    assert!(
        events.windows(2).all(|w| w[0].sequence < w[1].sequence),
        "per-thread sequence increases"
    );
    assert_eq!(events.iter().map(|e| e.id).collect::<HashSet<_>>().len(), 4);

    // The old consumers' queue gets the created event only, with the old body: the message JSON.
    let legacy = config.legacy_queue.clone().expect("legacy queue");
    let old = consumer.drain(&legacy, 1, Duration::from_secs(5)).await;
    assert_eq!(old.len(), 1);
    assert_eq!(old[0].body, created.to_json());
    consumer.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_outbox_events_on_the_wire() {
    let Some(url) = amqp_url() else { return };
    wire_format(Subject::new(MemoryStore::new()), &url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_outbox_events_on_the_wire() {
    let Some(url) = amqp_url() else { return };
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    wire_format(Subject::new(db.store().await), &url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_outbox_events_on_the_wire() {
    let Some(url) = amqp_url() else { return };
    let dir = TempDir::new();
    wire_format(Subject::new(dir.store().await), &url).await;
}

/// Events written while no relay ran are still in the file after the process closed it, and
/// the next process delivers every one of them, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_events_pending_at_exit_are_delivered_after_a_restart() {
    let Some(url) = amqp_url() else { return };
    let dir = TempDir::new();
    let config = test_config(&url);
    let consumer = TestConsumer::bind(&config).await;
    let (thread, user) = ids();
    let mut written = HashSet::new();
    {
        let subject = Subject::new(dir.store().await);
        let service = writer_on(&subject);
        for i in 0..25 {
            written.insert(post(&service, thread, user, &format!("m{i}")).await.id);
        }
        // A relay claims a batch and dies before it delivers it: the claim must not lose it.
        let claimed = subject
            .store
            .claim(5, Duration::from_millis(300))
            .await
            .expect("claim");
        assert_eq!(claimed.len(), 5);
    }
    let subject = Subject::new(dir.store().await);
    assert_eq!(subject.store.pending().await.expect("pending").0, 25);
    let (_service, relay) = service_on(&subject, AmqpPublisher::new(config.clone()));
    let deadline = Instant::now() + Duration::from_secs(10);
    while subject.store.pending().await.expect("pending").0 > 0 {
        assert!(Instant::now() < deadline, "delivered within seconds");
        if relay.relay_once().await.expect("relay").published == 0 {
            // The dead relay's lease has yet to run out.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let arrived = consumer
        .drain(&consumer.all_queue, 25, Duration::from_secs(5))
        .await;
    assert_eq!(arrived.len(), 25, "each event once");
    let delivered: HashSet<_> = arrived
        .iter()
        .filter_map(|a| match a.event().body {
            EventBody::Created(m) => Some(m.id),
            _ => None,
        })
        .collect();
    assert_eq!(delivered, written);
    let sequences: Vec<i64> = arrived.iter().map(|a| a.event().sequence).collect();
    let mut sorted = sequences.clone();
    sorted.sort_unstable();
    assert_eq!(
        sorted,
        (1..=25).collect::<Vec<i64>>(),
        "numbered without gaps"
    );
    consumer.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_outage_loses_no_event() {
    let Some(url) = amqp_url() else { return };
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let uri: lapin::uri::AMQPUri = url.parse().expect("AMQP_URL");
    let upstream = tokio::net::lookup_host((uri.authority.host.as_str(), uri.authority.port))
        .await
        .expect("resolve AMQP_URL")
        .next()
        .expect("an address");
    let proxy = TcpProxy::start(upstream).await;
    let direct = test_config(&url);
    let consumer = TestConsumer::bind(&direct).await;
    let mut through_proxy = direct.clone();
    through_proxy.url = SecretString::from(format!(
        "amqp://{}:{}@{}/{}",
        uri.authority.userinfo.username,
        uri.authority.userinfo.password,
        proxy.addr(),
        if uri.vhost == "/" {
            "%2f".to_owned()
        } else {
            uri.vhost.clone()
        }
    ));
    let subject = Subject::new(db.store().await);
    let (service, relay) = service_on(&subject, AmqpPublisher::new(through_proxy));
    let (thread, user) = ids();
    post(&service, thread, user, "before").await;
    assert_eq!(relay.relay_once().await.expect("relay").published, 1);

    proxy.cut();
    let mut written = HashSet::new();
    for i in 0..20 {
        written.insert(
            post(&service, thread, user, &format!("during {i}"))
                .await
                .id,
        );
    }
    assert!(
        relay.relay_once().await.is_err(),
        "the broker is unreachable"
    );
    let (pending, _) = subject.store.pending().await.expect("pending");
    assert_eq!(pending, 20, "the outbox holds every event");

    proxy.restore();
    let restored = Instant::now();
    while subject.store.pending().await.expect("pending").0 > 0 {
        assert!(
            restored.elapsed() < Duration::from_secs(10),
            "delivered within seconds"
        );
        if relay.relay_once().await.is_err() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let arrived = consumer
        .drain(&consumer.all_queue, 21, Duration::from_secs(5))
        .await;
    let delivered: HashSet<_> = arrived
        .iter()
        .filter_map(|a| match a.event().body {
            EventBody::Created(m) => Some(m.id),
            _ => None,
        })
        .collect();
    assert!(
        written.is_subset(&delivered),
        "every event written during the outage arrived"
    );
    assert_eq!(relay.stats().published(), 21);
    assert!(relay.stats().failed() >= 20);
    consumer.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_relays_share_one_outbox_and_publish_each_event_once() {
    let Some(url) = amqp_url() else { return };
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let config = test_config(&url);
    let consumer = TestConsumer::bind(&config).await;
    let subject = Subject::new(db.store().await);
    let service = writer_on(&subject);
    let mut expected = HashSet::new();
    for i in 0..300 {
        let (thread, user) = ids();
        expected.insert(post(&service, thread, user, &format!("m{i}")).await.id);
    }
    let small = RelayConfig {
        batch: 16,
        ..RelayConfig::default()
    };
    // Two replicas of the service on one store: each has its relay.
    let relays: Vec<Relay> = (0..2)
        .map(|_| {
            MessageService::builder(Arc::clone(&subject.store))
                .publisher(Arc::new(AmqpPublisher::new(config.clone())))
                .relay(small)
                .build()
                .1
        })
        .collect();
    let runs = relays.into_iter().map(|relay| {
        tokio::spawn(async move {
            let mut published = 0;
            loop {
                let report = relay.relay_once().await.expect("relay");
                if report.published == 0 {
                    return published;
                }
                published += report.published;
            }
        })
    });
    let mut counts = Vec::new();
    for run in runs.collect::<Vec<_>>() {
        counts.push(run.await.expect("relay task"));
    }
    assert_eq!(counts.iter().sum::<usize>(), 300, "{counts:?}");
    let arrived = consumer
        .drain(&consumer.all_queue, 300, Duration::from_secs(10))
        .await;
    assert_eq!(arrived.len(), 300, "no event published twice");
    let delivered: HashSet<_> = arrived
        .iter()
        .filter_map(|a| match a.event().body {
            EventBody::Created(m) => Some(m.id),
            _ => None,
        })
        .collect();
    assert_eq!(delivered, expected);
    consumer.cleanup().await;
}
