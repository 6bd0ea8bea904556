//! A chat kept in a SQLite file, through the public API only: open (and create) the file,
//! build the service and run its relay, post a few messages, edit one, read the newest page,
//! then follow the changes feed from where the page left off; at the end the relay delivers
//! the writes' events (to the log) and the store closes. Run it twice: the history is still
//! there.
//!
//!   cargo run -p messages-core --example sqlite_chat [-- path/to/chat.db]

use std::sync::Arc;
use std::time::Duration;

use messages_core::storage::sqlite::{SqliteConfig, SqliteStore};
use messages_core::storage::{Outbox, Schema};
use messages_core::{
    ChangesLimit, MessageKind, MessagePatch, MessageService, NewMessage, PageQuery, PageSize,
    ThreadId, UserId,
};

#[tokio::main]
async fn main() -> messages_core::Result<()> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "chat.db".to_owned());
    let store = SqliteStore::open(&SqliteConfig::new(&path)).await?;
    let applied = store.migrate().await?;
    let (service, relay) = MessageService::builder(Arc::new(store.clone())).build();
    let relay = relay.spawn();

    // Ids are UUIDs the application chooses; one fixed room, so a second run finds it again.
    let room = ThreadId::parse("0193a1a0-0000-7000-8000-0000000000e1")?;
    let (ada, bob) = (
        UserId::parse("0193a1a0-0000-7000-8000-00000000a0da")?,
        UserId::parse("0193a1a0-0000-7000-8000-00000000b0b0")?,
    );
    let before = service
        .page(room, PageQuery::Newest, PageSize::DEFAULT)
        .await?;
    println!(
        "{path}: {applied} migrations applied; the room holds {} messages at rev {}",
        before.items.len(),
        before.rev
    );

    let say =
        |text: &str| NewMessage::new(MessageKind::Text, text.to_owned(), vec![], service.limits());
    let hello = service.create(room, ada, say("hello, Bob")?, None).await?;
    service.create(room, bob, say("hi Ada!")?, None).await?;
    let patch = MessagePatch::new(
        Some("hello, Bob (edited)".to_owned()),
        None,
        service.limits(),
    )?;
    service.update(room, hello.message().id, ada, patch).await?;

    let page = service
        .page(room, PageQuery::Newest, PageSize::DEFAULT)
        .await?;
    println!("newest first, at rev {}:", page.rev);
    for m in page.items.iter().take(3) {
        println!("  #{} {}: {}", m.seq, m.user_id, m.content);
    }
    // A client that held `before.rev` catches up on everything since, edits included.
    let changes = service
        .changes(room, before.rev, ChangesLimit::DEFAULT)
        .await?;
    println!(
        "{} changes since rev {}, now at {}",
        changes.changes.len(),
        before.rev,
        changes.next
    );

    // Deliver what is pending, then stop the writer and checkpoint the file.
    relay.stop(Duration::from_secs(5)).await;
    let (undelivered, _) = store.pending().await?;
    store.close().await?;
    println!("{undelivered} events left undelivered");
    Ok(())
}
