//! `messages-server`: serve the API (default), or `messages-server migrate` to apply the
//! database migrations and exit.

use anyhow::Context;
use messages_server::{Application, Config, shutdown, startup, telemetry};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::from_env().context("invalid configuration")?;
    telemetry::init(config.log_format);
    match std::env::args().nth(1).as_deref() {
        None | Some("serve") => {
            let app = Application::build(config).await?;
            app.run(shutdown::signal()).await
        }
        Some("migrate") => {
            let Some(db) = &config.database else {
                anyhow::bail!("migrate needs DATABASE_URL (or DB_HOST) to name a database");
            };
            startup::connect_postgres(db, true).await?;
            Ok(())
        }
        Some(other) => anyhow::bail!("unknown command {other:?}; expected serve or migrate"),
    }
}
