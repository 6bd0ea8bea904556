//! `messages-server`: serve the API (default), or `messages-server migrate` to apply the
//! store's migrations and exit, `healthcheck` to ask a local server whether it is ready, or
//! `facts` to print the routes, metrics and variables as JSON.

use anyhow::Context;
use messages_server::config::StoreSettings;
use messages_server::{Application, Config, backends, shutdown, telemetry};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `messages-server healthcheck`: asks the local server's `/readyz` and exits 0 if it is ready,
/// for container health checks in images without a shell or curl.
async fn healthcheck(config: &Config) -> anyhow::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let port = config.http.bind_addr.port();
    let check = async {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
        stream
            .write_all(b"GET /readyz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .await?;
        let mut head = [0u8; 12];
        stream.read_exact(&mut head).await?;
        Ok::<_, std::io::Error>(head)
    };
    let head = tokio::time::timeout(std::time::Duration::from_secs(3), check)
        .await
        .context("no answer within 3 s")??;
    anyhow::ensure!(
        head.starts_with(b"HTTP/1.1 200"),
        "not ready: {}",
        String::from_utf8_lossy(&head)
    );
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let command = std::env::args().nth(1);
    if command.as_deref() == Some("facts") {
        println!(
            "{}",
            messages_server::facts::Facts::of_this_build().to_json()
        );
        return Ok(());
    }
    let config = Config::from_env().context("invalid configuration")?;
    telemetry::init(config.log_format);
    match command.as_deref() {
        None | Some("serve") => {
            let app = Application::build(config).await?;
            app.run(shutdown::signal()).await
        }
        Some("migrate") => match &config.store {
            StoreSettings::Postgres(db) => backends::connect_postgres(db, true).await.map(drop),
            StoreSettings::Sqlite(settings) => backends::open_sqlite(settings).await.map(drop),
            StoreSettings::Memory => anyhow::bail!("STORE=memory has nothing to migrate"),
        },
        Some("healthcheck") => healthcheck(&config).await,
        Some(other) => {
            anyhow::bail!(
                "unknown command {other:?}; expected serve, migrate, healthcheck or facts"
            )
        }
    }
}
