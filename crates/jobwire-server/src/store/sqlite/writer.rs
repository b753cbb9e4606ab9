//! The writer: one thread owns the only writing connection and commits every write that
//! arrived while its last commit ran in one transaction (group commit), then publishes
//! the batch's events; and the statements of the writes it runs.

use std::path::Path;
use std::sync::{mpsc, Arc};
use std::time::Duration;

use jobwire_core::Job;
use rusqlite::{params, Connection, OptionalExtension};
use tokio::sync::oneshot;

use super::migrations::migrate;
use super::{closed, err, read_key, SqliteStore};
use crate::bus::EventBus;
use crate::store::codec::{finished_at, to_json};
use crate::store::{Event, Inserted, NewEvent, StoreError};

/// Most writes committed in one transaction.
pub(super) const MAX_BATCH: usize = 1024;

/// How often the checkpointer copies the WAL into the database file.
pub(super) const CHECKPOINT_EVERY: Duration = Duration::from_millis(200);

/// Copies the WAL into the database file from a thread and connection of its own: a
/// passive checkpoint never blocks the writer, so commits do not pay for it (the
/// writer's own automatic checkpoint only steps in when the WAL grows past 50 000 pages).
pub(super) fn checkpoint_loop(path: &Path, stop: &mpsc::Receiver<()>) {
    let conn = match Connection::open(path).and_then(|conn| {
        conn.execute_batch("PRAGMA synchronous=FULL;")?;
        Ok(conn)
    }) {
        Ok(conn) => conn,
        Err(e) => {
            tracing::warn!(error = %e, "no checkpointer; the writer checkpoints by itself");
            return;
        }
    };
    while let Err(mpsc::RecvTimeoutError::Timeout) = stop.recv_timeout(CHECKPOINT_EVERY) {
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::warn!(error = %e, "a checkpoint failed");
        }
    }
}

/// What the writer thread is asked to do.
pub(super) enum Command {
    /// Run a write in the next transaction.
    Write(WriteOp),
    /// Finish the pending writes, checkpoint the WAL, and stop.
    Close(oneshot::Sender<Result<(), StoreError>>),
}

/// A write: given the batch's transaction, it runs and says what to publish and whom to
/// tell once the batch is committed, or returns `None` when it failed (having told its
/// caller). Given the error that stopped its batch before it ran, it tells its caller.
pub(super) type WriteOp =
    Box<dyn FnOnce(Result<&Connection, &StoreError>) -> Option<Staged> + Send>;

/// A write that succeeded inside an uncommitted transaction.
pub(super) struct Staged {
    /// Its events, to publish after the commit.
    pub(super) events: Vec<(String, Event)>,
    /// Tells the caller how the commit went.
    pub(super) reply: Box<dyn FnOnce(Result<(), StoreError>) + Send>,
}

/// The connection the writer thread owns, set up.
pub(super) fn open_writer(path: &Path) -> Result<Connection, StoreError> {
    let mut conn = Connection::open(path)
        .map_err(|e| StoreError::with_source(format!("opening {}", path.display()), e))?;
    conn.busy_timeout(Duration::from_secs(5))
        .map_err(err("setting the busy timeout"))?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode=WAL", [], |row| row.get(0))
        .map_err(err("switching to WAL mode"))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::new(format!(
            "the database stayed in journal mode {mode}, not WAL"
        )));
    }
    // FULL: a commit is on disk before its writes' futures resolve. Group commit pays
    // the fsync once per batch, not once per job.
    // An 8 MiB page cache and memory-mapped reads keep the writer off pread (a much
    // bigger cache costs more to reset than it saves); checkpoints are the
    // checkpointer's (see `checkpoint_loop`).
    conn.execute_batch(
        "PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON; PRAGMA cache_size=-8192;
         PRAGMA mmap_size=268435456; PRAGMA wal_autocheckpoint=50000;",
    )
    .map_err(err("setting pragmas"))?;
    migrate(&mut conn)?;
    // The previous process is gone (one process per data directory): its leases end now.
    conn.execute(
        "UPDATE jobs SET lease_until = 0 WHERE status IN ('queued', 'running')",
        [],
    )
    .map_err(err("ending a previous process's leases"))?;
    Ok(conn)
}

/// The writer thread: commits batches until closed or every sender is gone.
pub(super) fn write_loop(
    mut conn: Connection,
    commands: mpsc::Receiver<Command>,
    bus: Arc<EventBus>,
) {
    let mut closing = None;
    while closing.is_none() {
        let Ok(first) = commands.recv() else { break };
        let mut batch = Vec::new();
        match first {
            Command::Write(op) => batch.push(op),
            Command::Close(done) => closing = Some(done),
        }
        while closing.is_none() && batch.len() < MAX_BATCH {
            match commands.try_recv() {
                Ok(Command::Write(op)) => batch.push(op),
                Ok(Command::Close(done)) => closing = Some(done),
                Err(_) => break,
            }
        }
        if !batch.is_empty() {
            commit_batch(&mut conn, batch, &bus);
        }
    }
    let checkpointed = conn
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .map_err(err("checkpointing the WAL"))
        .and_then(|()| {
            conn.execute_batch("PRAGMA optimize;")
                .map_err(err("optimizing"))
        });
    if let Some(done) = closing {
        let _ = done.send(checkpointed);
    }
}

/// Runs `batch` in one transaction, commits it (or rolls it back when a write failed),
/// publishes the events in id order and answers every write.
pub(super) fn commit_batch(conn: &mut Connection, batch: Vec<WriteOp>, bus: &EventBus) {
    let mut staged = Vec::with_capacity(batch.len());
    let committed = (|| {
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(err("starting a transaction"))?;
        let mut ops = batch.into_iter();
        for op in ops.by_ref() {
            match op(Ok(&tx)) {
                Some(done) => staged.push(done),
                None => {
                    // Stop here: a failed statement may have ended the transaction, and
                    // later writes must not commit on their own.
                    let stopped = StoreError::new(
                        "rolled back with the rest of its group commit: a write in it failed",
                    );
                    for unrun in ops {
                        unrun(Err(&stopped));
                    }
                    // Dropping the transaction rolls it back.
                    return Err(stopped);
                }
            }
        }
        tx.commit().map_err(err("committing"))
    })();
    match committed {
        Ok(()) => {
            bus.publish(
                staged
                    .iter_mut()
                    .flat_map(|s| std::mem::take(&mut s.events)),
            );
            for done in staged {
                (done.reply)(Ok(()));
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "a group commit failed");
            for done in staged {
                (done.reply)(Err(StoreError::new(format!("the commit failed: {e}"))));
            }
        }
    }
}

/// The highest event id ever given: `sqlite_sequence` remembers it after those rows are
/// deleted.
pub(super) fn last_event_seq(conn: &Connection) -> Result<i64, StoreError> {
    let seq: Option<i64> = conn
        .query_row(
            "SELECT seq FROM sqlite_sequence WHERE name = 'events'",
            [],
            |row| row.get(0),
        )
        .optional()
        .map_err(err("reading the last event id"))?;
    Ok(seq.unwrap_or(0))
}

/// Events with their data already encoded: the encoding is done by the caller, off the
/// writer thread, which is the store's one serial resource.
pub(super) struct Encoded(Vec<(NewEvent, String)>);

pub(super) fn encode(events: Vec<NewEvent>) -> Result<Encoded, StoreError> {
    let encoded = events
        .into_iter()
        .map(|e| {
            let text = to_json(&e.data)?;
            Ok((e, text))
        })
        .collect::<Result<_, StoreError>>()?;
    Ok(Encoded(encoded))
}

/// Adds `delta` to the bytes `tenant` stores.
pub(super) fn charge(conn: &Connection, tenant: &str, delta: i64) -> Result<(), StoreError> {
    if delta == 0 {
        return Ok(());
    }
    conn.prepare_cached(
        "INSERT INTO tenant_usage (tenant, bytes) VALUES (?1, ?2)
         ON CONFLICT (tenant) DO UPDATE SET bytes = max(0, bytes + excluded.bytes)",
    )
    .and_then(|mut stmt| stmt.execute(params![tenant, delta]))
    .map_err(err("counting stored bytes"))?;
    Ok(())
}

/// The bytes `tenant` stores.
pub(super) fn usage(conn: &Connection, tenant: &str) -> Result<i64, StoreError> {
    conn.prepare_cached("SELECT bytes FROM tenant_usage WHERE tenant = ?1")
        .and_then(|mut stmt| stmt.query_row([tenant], |row| row.get(0)).optional())
        .map(Option::unwrap_or_default)
        .map_err(err("reading stored bytes"))
}

/// Inserts events, charging their tenant for them and for `more` bytes the same write
/// stores (its job's: one update of the tenant's count per write, not two); returns them
/// as recorded, with the ids SQLite gave them.
pub(super) fn insert_events(
    conn: &Connection,
    tenant: &str,
    events: Encoded,
    more: i64,
) -> Result<Vec<(String, Event)>, StoreError> {
    let events = events.0;
    if events.is_empty() {
        charge(conn, tenant, more)?;
        return Ok(Vec::new());
    }
    let mut stmt = conn
        .prepare_cached(
            "INSERT INTO events (tenant, job_id, service_id, kind, data, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )
        .map_err(err("preparing an event insert"))?;
    let mut recorded = Vec::with_capacity(events.len());
    let bytes: usize = events.iter().map(|(_, data)| data.len()).sum();
    for (e, data) in events {
        stmt.execute(params![
            tenant,
            e.job_id,
            e.service_id,
            e.kind.as_str(),
            data,
            e.created_at
        ])
        .map_err(err("inserting an event"))?;
        recorded.push((tenant.to_owned(), e.recorded(conn.last_insert_rowid())));
    }
    let bytes = i64::try_from(bytes).unwrap_or(i64::MAX);
    charge(conn, tenant, bytes.saturating_add(more))?;
    Ok(recorded)
}

pub(super) fn seqs(events: &[(String, Event)]) -> Vec<i64> {
    events.iter().map(|(_, e)| e.seq).collect()
}

/// A job insert, owned so it can travel to the writer thread.
pub(super) struct JobInsert {
    pub(super) tenant: String,
    pub(super) job: Job,
    pub(super) body: String,
    /// The key, the request's fingerprint, and the answer's status when known.
    pub(super) key: Option<(String, String, Option<u16>)>,
    pub(super) max_in_flight: i64,
    pub(super) max_stored_bytes: i64,
    pub(super) owner: String,
    pub(super) lease_until: i64,
}

/// The insert of [`Store::insert_job`], inside the writer's transaction.
pub(super) fn insert_job_row(
    conn: &Connection,
    new: JobInsert,
    events: Encoded,
) -> Result<(Inserted, Vec<(String, Event)>), StoreError> {
    let JobInsert {
        tenant,
        job,
        body,
        key,
        max_in_flight,
        max_stored_bytes,
        owner,
        lease_until,
    } = new;
    if let Some((key, _, _)) = &key {
        if let Some(record) = read_key(conn, &tenant, key)? {
            return Ok((Inserted::KeyTaken(record), Vec::new()));
        }
    }
    // Counts no further than the limit.
    let unfinished: i64 = conn
        .prepare_cached(
            "SELECT count(*) FROM (SELECT 1 FROM jobs
             WHERE tenant = ?1 AND status IN ('queued', 'running') LIMIT ?2)",
        )
        .and_then(|mut stmt| stmt.query_row(params![tenant, max_in_flight], |row| row.get(0)))
        .map_err(err("counting unfinished jobs"))?;
    if unfinished >= max_in_flight {
        return Ok((Inserted::AtLimit, Vec::new()));
    }
    let used = usage(conn, &tenant)?;
    if used >= max_stored_bytes {
        let used = u64::try_from(used).unwrap_or(0);
        return Ok((Inserted::OverQuota { used }, Vec::new()));
    }
    let bytes = i64::try_from(body.len()).unwrap_or(i64::MAX);
    conn.prepare_cached(
        "INSERT INTO jobs (id, tenant, service_id, status, body, finished_at, owner, lease_until,
                           bytes)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )
    .and_then(|mut stmt| {
        stmt.execute(params![
            job.id,
            tenant,
            job.service_id,
            job.status.as_str(),
            body,
            finished_at(&job),
            owner,
            lease_until,
            bytes
        ])
    })
    .map_err(err("inserting a job"))?;
    let seq = conn.last_insert_rowid();
    if !job.labels.is_empty() {
        let mut stmt = conn
            .prepare_cached("INSERT INTO job_labels (job_seq, key, value) VALUES (?1, ?2, ?3)")
            .map_err(err("inserting labels"))?;
        for (k, v) in &job.labels {
            stmt.execute(params![seq, k, v])
                .map_err(err("inserting labels"))?;
        }
    }
    if let Some((key, fingerprint, answered)) = &key {
        conn.prepare_cached(
            "INSERT INTO idempotency_keys (tenant, key, fingerprint, job_id, created_at, status)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )
        .and_then(|mut stmt| {
            stmt.execute(params![
                tenant,
                key,
                fingerprint,
                job.id,
                job.created_at,
                answered
            ])
        })
        .map_err(err("recording an idempotency key"))?;
    }
    let recorded = insert_events(conn, &tenant, events, bytes)?;
    Ok((Inserted::Stored(seqs(&recorded)), recorded))
}

impl SqliteStore {
    /// Runs `f` in the writer's next transaction; resolves once that is committed. `f`
    /// returns its value and the events it recorded (published after the commit).
    pub(super) async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<(T, Vec<(String, Event)>), StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (tx, rx) = oneshot::channel();
        let op: WriteOp = Box::new(move |conn| match conn.map(f) {
            Ok(Ok((value, events))) => Some(Staged {
                events,
                reply: Box::new(move |committed| {
                    let _ = tx.send(committed.map(|()| value));
                }),
            }),
            Ok(Err(e)) => {
                let _ = tx.send(Err(e));
                None
            }
            Err(stopped) => {
                let _ = tx.send(Err(StoreError::new(stopped.to_string())));
                None
            }
        });
        self.writer.send(Command::Write(op)).map_err(|_| closed())?;
        rx.await.map_err(|_| closed())?
    }
}
