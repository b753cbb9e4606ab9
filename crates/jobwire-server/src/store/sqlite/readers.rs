//! The readers: a few read-only connections, which WAL lets read while the writer
//! writes, used on tokio's blocking pool.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::{closed, err, SqliteStore};
use crate::locking::lock;
use crate::store::codec::from_json;
use crate::store::StoreError;

/// Reads that run at once, each on a read-only connection of its own; the connections
/// stay open (opening one parses the schema, which costs more than most reads).
pub(super) const READERS: usize = 16;

/// Read-only connections, opened on demand, at most [`READERS`] of them.
pub(super) struct Readers {
    pub(super) path: PathBuf,
    pub(super) idle: Mutex<Vec<Connection>>,
    pub(super) permits: tokio::sync::Semaphore,
}

impl Readers {
    fn take(&self) -> Result<Connection, StoreError> {
        if let Some(conn) = lock(&self.idle).pop() {
            return Ok(conn);
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(&self.path, flags)
            .map_err(err("opening a read connection"))?;
        conn.busy_timeout(Duration::from_secs(5))
            .map_err(err("setting the busy timeout"))?;
        conn.execute_batch("PRAGMA mmap_size=268435456;")
            .map_err(err("setting pragmas"))?;
        Ok(conn)
    }

    fn put(&self, conn: Connection) {
        lock(&self.idle).push(conn);
    }
}

/// Rows of `(seq, body)` decoded.
pub(super) fn decode_rows<T: serde::de::DeserializeOwned>(
    rows: Vec<(i64, String)>,
) -> Result<Vec<(i64, T)>, StoreError> {
    rows.into_iter()
        .map(|(seq, body)| Ok((seq, from_json(&body)?)))
        .collect()
}

impl SqliteStore {
    /// Runs `f` on a read connection, on the blocking pool.
    pub(super) async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let readers = self.readers.clone();
        let _permit = readers.permits.acquire().await.map_err(|_| closed())?;
        let readers = self.readers.clone();
        tokio::task::spawn_blocking(move || {
            let conn = readers.take()?;
            let out = f(&conn);
            readers.put(conn);
            out
        })
        .await
        .map_err(|e| StoreError::with_source("a read task failed", e))?
    }
}
