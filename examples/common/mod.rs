//! What every example shares: the server it talks to, and how it proves what it shows.
//!
//! An example runs against `JOBWIRE_URL` / `JOBWIRE_TOKEN` when `JOBWIRE_URL` is set,
//! and otherwise against a reference server it spawns in this process on 127.0.0.1:0,
//! so nothing needs to be installed or started. It ends with an error — exit status 1 —
//! when what it shows did not happen: [`check`] is how it says so.
//!
//! Included by each example with `mod common;`, so each uses only part of it.
#![allow(dead_code)]

use std::fmt::Display;

use jobwire::ClientConfig;
use jobwire_server::ServerConfig;

/// What an example's `main` returns: any error ends it with exit status 1.
pub type Result<T = (), E = Box<dyn std::error::Error>> = std::result::Result<T, E>;

/// Says that `claim` held (`ok: …`), or ends the example with `not so: …`.
///
/// ```ignore
/// check(wall < Duration::from_secs(3), format!("10 one-second jobs took {wall:.2?}"))?;
/// ```
pub fn check(claim: bool, what: impl Display) -> Result {
    if claim {
        println!("ok: {what}");
        Ok(())
    } else {
        Err(format!("not so: {what}").into())
    }
}

/// A label value no other run of any example uses: jobs an example lists are its own,
/// even on a shared server.
pub fn run_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!("{}-{nanos}", std::process::id())
}

/// The settings `JOBWIRE_URL` and `JOBWIRE_TOKEN` give, when `JOBWIRE_URL` is set.
fn from_env() -> Option<ClientConfig> {
    std::env::var_os("JOBWIRE_URL")?;
    let config = ClientConfig::from_env();
    println!("server: {} (from JOBWIRE_URL)", config.base_url_value());
    Some(config)
}

/// The server an async example talks to.
pub struct Server {
    config: ClientConfig,
    embedded: Option<jobwire_server::ServerHandle>,
}

impl Server {
    /// `JOBWIRE_URL`'s server, or a reference server with the defaults, spawned here.
    pub async fn start() -> Result<Server> {
        Server::start_with(ServerConfig::new()).await
    }

    /// `JOBWIRE_URL`'s server (which must then have been started with what `config`
    /// asks for: faults, commands allowed), or a reference server spawned here with
    /// `config`.
    pub async fn start_with(config: ServerConfig) -> Result<Server> {
        if let Some(config) = from_env() {
            return Ok(Server {
                config,
                embedded: None,
            });
        }
        Server::spawn(config).await
    }

    /// A reference server spawned here with `config`, whatever `JOBWIRE_URL` says: for
    /// an example whose services are its own functions, which only this process has.
    pub async fn embedded(config: ServerConfig) -> Result<Server> {
        if std::env::var_os("JOBWIRE_URL").is_some() {
            println!("(JOBWIRE_URL is not used: this example serves its own functions)");
        }
        Server::spawn(config).await
    }

    async fn spawn(config: ServerConfig) -> Result<Server> {
        let server = jobwire_server::spawn(config).await?;
        println!("server: {} (embedded in this process)", server.url());
        Ok(Server {
            config: ClientConfig::default()
                .base_url(server.url())
                .token(server.token()),
            embedded: Some(server),
        })
    }

    /// The client settings for this server: its URL and token.
    pub fn config(&self) -> ClientConfig {
        self.config.clone()
    }

    /// A client of this server with the default settings.
    pub fn client(&self) -> Result<jobwire::Client> {
        Ok(jobwire::Client::from_config(self.config())?)
    }

    /// The server's base URL.
    pub fn url(&self) -> &str {
        self.config.base_url_value()
    }

    /// The token the clients send.
    pub fn token(&self) -> &str {
        self.config.token_value().unwrap_or_default()
    }

    /// Whether the server runs in this process (and so has the settings asked for).
    pub fn is_embedded(&self) -> bool {
        self.embedded.is_some()
    }

    /// Stops the embedded server, if there is one.
    pub async fn stop(self) {
        if let Some(server) = self.embedded {
            server.shutdown().await;
        }
    }
}

/// The server a blocking example talks to; an embedded one runs on threads of its own,
/// so the example itself has no async runtime.
pub struct BlockingServer {
    config: ClientConfig,
    embedded: Option<jobwire_server::BlockingServerHandle>,
}

impl BlockingServer {
    /// `JOBWIRE_URL`'s server, or a reference server with the defaults, started here.
    pub fn start() -> Result<BlockingServer> {
        BlockingServer::start_with(ServerConfig::new())
    }

    /// `JOBWIRE_URL`'s server, or a reference server started here with `config`.
    pub fn start_with(config: ServerConfig) -> Result<BlockingServer> {
        if let Some(config) = from_env() {
            return Ok(BlockingServer {
                config,
                embedded: None,
            });
        }
        let server = jobwire_server::spawn_blocking_server(config)?;
        println!("server: {} (embedded in this process)", server.url());
        Ok(BlockingServer {
            config: ClientConfig::default()
                .base_url(server.url())
                .token(server.token()),
            embedded: Some(server),
        })
    }

    /// The client settings for this server: its URL and token.
    pub fn config(&self) -> ClientConfig {
        self.config.clone()
    }

    /// A blocking client of this server with the default settings.
    pub fn client(&self) -> Result<jobwire_blocking::Client> {
        Ok(jobwire_blocking::Client::from_config(self.config())?)
    }

    /// The server's base URL.
    pub fn url(&self) -> &str {
        self.config.base_url_value()
    }

    /// The token the clients send.
    pub fn token(&self) -> &str {
        self.config.token_value().unwrap_or_default()
    }

    /// Stops the embedded server, if there is one.
    pub fn stop(self) {
        if let Some(server) = self.embedded {
            server.shutdown();
        }
    }
}
