//! Where services, jobs and events are kept: the [`Store`] trait and its three
//! implementations, [`SqliteStore`] (durable, embedded, the binary's default),
//! [`PgStore`] (PostgreSQL, shared by several server processes) and [`MemoryStore`].
//!
//! The trait is async: no store call blocks the event loop. SQLite writes go to one
//! writer thread that commits everything that arrived while its last commit ran in one
//! transaction (group commit); its reads run on the blocking pool. PostgreSQL is driven
//! by an async driver and a connection pool.
//!
//! What makes several processes on one database safe is in the trait, not in any one
//! process's locks:
//!
//! - a job changes by compare-and-set ([`Store::update_job`] and
//!   [`Store::append_events`] name the status they expect and the server that must hold
//!   the job), so a server that lost a job to a peer can neither overwrite it nor record
//!   anything after its `done`;
//! - every unfinished job is leased to one server, which renews its leases; a job whose
//!   lease ran out is claimed by another server ([`Store::claim_orphans`]) and dealt with
//!   by the crash rule;
//! - idempotency keys and the per-tenant limit on unfinished jobs are checked inside the
//!   insert's transaction;
//! - event ids grow in commit order, and the store publishes every committed event, in
//!   id order, on the [`EventBus`](crate::bus::EventBus) it was opened with, whichever
//!   process wrote it.
//!
//! The parts:
//!
//! - [`interface`]: the [`Store`] trait and the records it takes and gives;
//! - `contract` (tests only): the one suite every implementation must pass;
//! - [`codec`]: the JSON rows and columns the SQL backends share;
//! - [`memory`], and one folder per SQL backend — [`sqlite`] (its writer, its readers,
//!   its migrations as `.sql` files) and [`postgres`] (its listener, its migrations).

pub(crate) mod codec;
#[cfg(test)]
pub(crate) mod contract;
pub(crate) mod interface;
mod memory;
mod postgres;
mod sqlite;

use std::fmt;

pub(crate) use interface::*;
pub(crate) use memory::MemoryStore;
pub(crate) use postgres::PgStore;
pub(crate) use sqlite::SqliteStore;

/// A storage failure: the database could not be opened, read or written.
///
/// The message says what was being done; the source is the underlying error.
#[derive(Debug)]
pub struct StoreError {
    context: String,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl StoreError {
    pub(crate) fn new(context: impl Into<String>) -> Self {
        StoreError {
            context: context.into(),
            source: None,
        }
    }

    pub(crate) fn with_source(
        context: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        StoreError {
            context: context.into(),
            source: Some(Box::new(source)),
        }
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.source {
            Some(source) => write!(f, "store: {}: {source}", self.context),
            None => write!(f, "store: {}", self.context),
        }
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}
