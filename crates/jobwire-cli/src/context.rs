//! What every server command works with: the client, the printer, and the deadline of
//! `--timeout`.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use crate::args::Common;
use crate::exit::Failure;
use crate::output::Printer;

/// The client, the printer and the deadline of one command.
#[derive(Debug)]
pub struct Context {
    /// The SDK client, for `--url` and `--token` (or `JOBWIRE_URL`, `JOBWIRE_TOKEN`).
    pub client: jobwire::Client,
    /// Where results go.
    pub printer: Printer,
    /// The `--timeout` given, and when it runs out.
    limit: Option<(Duration, Instant)>,
}

impl Context {
    /// A client for the connection flags; the `--timeout` clock starts now.
    pub fn new(common: &Common) -> Result<Context, Failure> {
        let mut builder = jobwire::Client::builder()
            .user_agent(concat!("jobwire-cli/", env!("CARGO_PKG_VERSION")));
        if let Some(url) = &common.url {
            builder = builder.base_url(url);
        }
        if let Some(token) = &common.token {
            builder = builder.token(token);
        }
        let client = builder.build()?;
        Ok(Context {
            client,
            printer: Printer::new(common.output),
            limit: common.timeout.map(|t| (t, Instant::now() + t)),
        })
    }

    /// Resolves when `--timeout` runs out; never without one.
    pub async fn deadline(&self) {
        match self.limit {
            Some((_, at)) => tokio::time::sleep_until(at).await,
            None => std::future::pending().await,
        }
    }

    /// The failure for a `--timeout` that ran out while `doing`.
    pub fn timed_out(&self, doing: impl Into<String>) -> Failure {
        Failure::TimedOut {
            after: self.limit.map_or(Duration::ZERO, |(t, _)| t),
            doing: doing.into(),
        }
    }

    /// `work`, unless `--timeout` runs out first.
    pub async fn bounded<T>(
        &self,
        doing: &str,
        work: impl Future<Output = Result<T, Failure>>,
    ) -> Result<T, Failure> {
        tokio::select! {
            done = work => done,
            () = self.deadline() => Err(self.timed_out(doing)),
        }
    }
}
