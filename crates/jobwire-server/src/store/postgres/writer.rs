//! Group commit: the job writes of this process (inserts, compare-and-sets, appended
//! events) go through two queues (inserts; changes) to writer tasks, each with a
//! connection of its own.
//! A writer takes what is queued, up to [`MAX_BATCH`], and runs it as one transaction:
//! the insert locks of the whole batch first, in one order, then one function call per
//! write, pipelined (sent together, answered in order), then one commit. While one
//! writer waits for its commit to be durable, the next takes the writes queued
//! meanwhile, so commits overlap and each costs one flush for many jobs.
//!
//! Each write still gets its own answer: the functions report a taken key, a tenant at
//! its limit or a job no longer in the expected state as a row, not as an error, so one
//! write's refusal does not touch the others. A statement that does fail (a broken
//! connection, a deadlock with a peer) rolls the batch back, and its writes are tried
//! again one transaction each, so only the failing one reports the failure.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use deadpool_postgres::{Object, Pool};
use futures_util::future::{join, join_all};
use tokio::sync::{mpsc, oneshot, Mutex, Notify};
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

use super::sequencer::Numbering;
use super::{connect_error, err, get, StoreError};

/// Writer tasks, each with its own connection: one for inserts, the others for changes,
/// enough that one batch of changes is being built while others wait for their flush.
///
/// Inserts have a writer of their own because a batch of inserts holds its tenants'
/// locks until its commit is durable: a second insert batch of the same tenant could
/// only wait for the first (and hold up the changes batched with it). With one lane,
/// the inserts that arrive during a flush are the next batch, which grows with the
/// load, and changes never wait for a tenant's lock.
pub(super) const WRITERS: usize = 4;

/// Most writes in one transaction.
const MAX_BATCH: usize = 256;

/// Writes queued beyond this wait to be queued (backpressure on the callers).
const QUEUE: usize = 4096;

/// Takes the insert locks of a batch (tenants `$1`, keys `$3` of tenants `$2`) in the
/// order of their ids, so two batches never wait on each other in a cycle; the insert
/// functions take them again, which then costs nothing.
const LOCKS: &str = "
SELECT pg_advisory_xact_lock(l) FROM (
    SELECT DISTINCT l FROM (
        SELECT jobwire_tenant_lock(t) AS l FROM unnest($1::text[]) t
        UNION ALL
        SELECT jobwire_key_lock(t, k) FROM unnest($2::text[], $3::text[]) AS x (t, k)
    ) a ORDER BY l
) s";

/// Wakes a sequencer on another server; committed asynchronously, as losing it costs
/// only a delay (the sequencer also polls).
const WAKE: &str = "BEGIN; SET LOCAL synchronous_commit = off; \
                    SELECT pg_notify('jobwire_unnumbered', ''); COMMIT";

/// A parameter of a write.
pub(super) type Param = Box<dyn ToSql + Sync + Send>;

/// One write: a call of a function of the schema whose second column is the insertion
/// keys of the events it recorded (`o_pos`).
pub(super) struct Write {
    pub(super) sql: &'static str,
    pub(super) params: Vec<Param>,
    /// For an insert: its tenant, and its idempotency key if any.
    pub(super) locks: Option<(String, Option<String>)>,
    /// The job it writes: a batch locks the rows of the jobs it changes in the order of
    /// their ids, as the lease renewal does, so that neither waits on the other in a
    /// cycle.
    pub(super) job: String,
}

/// A committed write: its rows, and the ids its events will get.
pub(super) struct Written {
    pub(super) rows: Vec<Row>,
    pub(super) ids: oneshot::Receiver<Vec<i64>>,
}

struct Request {
    write: Write,
    reply: oneshot::Sender<Result<Written, StoreError>>,
}

/// The queues to the writer tasks: inserts, and changes.
#[derive(Debug)]
pub(super) struct Writers {
    inserts: mpsc::Sender<Request>,
    changes: mpsc::Sender<Request>,
}

/// What the writer tasks share.
pub(super) struct Shared {
    pub(super) pool: Pool,
    pub(super) numbering: Arc<Numbering>,
    /// Wakes this process's sequencer.
    pub(super) wake: Arc<Notify>,
    /// Whether this process's sequencer holds the lock (then no other needs waking).
    pub(super) leading: Arc<AtomicBool>,
}

impl Writers {
    /// Starts the writer tasks; they end when the `Writers` is dropped.
    pub(super) fn start(shared: Shared) -> Writers {
        let shared = Arc::new(shared);
        let (inserts, receiver) = mpsc::channel(QUEUE);
        tokio::spawn(run(Arc::clone(&shared), Arc::new(Mutex::new(receiver))));
        let (changes, receiver) = mpsc::channel(QUEUE);
        let receiver = Arc::new(Mutex::new(receiver));
        for _ in 1..WRITERS {
            tokio::spawn(run(Arc::clone(&shared), Arc::clone(&receiver)));
        }
        Writers { inserts, changes }
    }

    /// Runs `write` in the next batch; answers once it is committed.
    pub(super) async fn write(&self, write: Write) -> Result<Written, StoreError> {
        let (reply, answer) = oneshot::channel();
        let queue = if write.locks.is_some() {
            &self.inserts
        } else {
            &self.changes
        };
        queue
            .send(Request { write, reply })
            .await
            .map_err(|_| StoreError::new("the store is closed"))?;
        answer
            .await
            .map_err(|_| StoreError::new("the writer stopped before answering"))?
    }
}

/// A writer task: batch after batch until the queue closes.
async fn run(shared: Arc<Shared>, queue: Arc<Mutex<mpsc::Receiver<Request>>>) {
    let mut client: Option<Object> = None;
    loop {
        let batch = {
            let mut queue = queue.lock().await;
            let Some(first) = queue.recv().await else {
                return;
            };
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match queue.try_recv() {
                    Ok(request) => batch.push(request),
                    Err(_) => break,
                }
            }
            batch
        };
        let connected = match client.take() {
            Some(c) if !c.is_closed() => Ok(c),
            _ => shared.pool.get().await.map_err(|e| {
                connect_error("taking a connection from the pool".into(), &e).to_string()
            }),
        };
        let mut c = match connected {
            Ok(c) => c,
            Err(e) => {
                for request in batch {
                    let _ = request.reply.send(Err(StoreError::new(e.clone())));
                }
                continue;
            }
        };
        write_batch(&shared, &mut c, batch).await;
        client = Some(c);
    }
}

/// Commits `batch` in one transaction and answers each write; on a failed statement,
/// commits each write in a transaction of its own.
async fn write_batch(shared: &Shared, client: &mut Object, mut batch: Vec<Request>) {
    // Inserts (which lock no existing row) first, then the changes by job id.
    batch.sort_by(|a, b| {
        let key = |r: &Request| (r.write.locks.is_none(), r.write.job.clone());
        key(a).cmp(&key(b))
    });
    let writes: Vec<&Write> = batch.iter().map(|r| &r.write).collect();
    let outcome = transact(shared, client, &writes).await;
    let recorded = match outcome {
        Ok(answers) => {
            let mut recorded = false;
            for (request, written) in batch.into_iter().zip(answers) {
                recorded |= written.recorded;
                let _ = request.reply.send(Ok(written.written));
            }
            recorded
        }
        Err(Failed::Commit(e)) => {
            // Whether it committed is unknown: no write is tried again.
            let text = e.to_string();
            for request in batch {
                let _ = request.reply.send(Err(StoreError::new(text.clone())));
            }
            false
        }
        Err(Failed::Statement(e)) if batch.len() == 1 => {
            if let Some(request) = batch.into_iter().next() {
                let _ = request.reply.send(Err(e));
            }
            false
        }
        Err(Failed::Statement(e)) => {
            tracing::debug!(error = %e, writes = batch.len(), "a batch failed; writing one by one");
            let mut recorded = false;
            for request in batch {
                let answer = match transact(shared, client, &[&request.write]).await {
                    Ok(mut answers) => match answers.pop() {
                        Some(written) => {
                            recorded |= written.recorded;
                            Ok(written.written)
                        }
                        None => Err(StoreError::new("a write got no answer")),
                    },
                    Err(Failed::Commit(e) | Failed::Statement(e)) => Err(e),
                };
                let _ = request.reply.send(answer);
            }
            recorded
        }
    };
    if recorded {
        shared.wake.notify_one();
        if !shared.leading.load(Ordering::Acquire) {
            if let Err(e) = client.batch_execute(WAKE).await {
                tracing::debug!(error = %e, "cannot wake the event sequencer");
            }
        }
    }
}

/// How a transaction failed.
enum Failed {
    /// A statement before the commit: nothing was written.
    Statement(StoreError),
    /// The commit: what was written is unknown.
    Commit(StoreError),
}

/// A write's answer, and whether it recorded events.
struct Answer {
    written: Written,
    recorded: bool,
}

/// One transaction: the locks, the writes pipelined, the commit.
async fn transact(
    shared: &Shared,
    client: &mut Object,
    writes: &[&Write],
) -> Result<Vec<Answer>, Failed> {
    let statement = |e: StoreError| Failed::Statement(e);
    let tx = client
        .transaction()
        .await
        .map_err(err("starting a transaction"))
        .map_err(statement)?;
    let mut statements = Vec::with_capacity(writes.len());
    for write in writes {
        let prepared = tx
            .prepare_cached(write.sql)
            .await
            .map_err(err("preparing a write"))
            .map_err(statement)?;
        statements.push(prepared);
    }
    let inserts: Vec<&(String, Option<String>)> =
        writes.iter().filter_map(|w| w.locks.as_ref()).collect();
    let locking = async {
        // One insert takes its own locks, in the function.
        if inserts.len() < 2 {
            return Ok(0);
        }
        let tenants: Vec<&str> = inserts.iter().map(|(t, _)| t.as_str()).collect();
        let (key_tenants, keys): (Vec<&str>, Vec<&str>) = inserts
            .iter()
            .filter_map(|(t, k)| k.as_deref().map(|k| (t.as_str(), k)))
            .unzip();
        let locks = tx.prepare_cached(LOCKS).await?;
        tx.execute(&locks, &[&tenants, &key_tenants, &keys]).await
    };
    let calls = writes.iter().zip(&statements).map(|(write, prepared)| {
        let params: Vec<&(dyn ToSql + Sync)> = write
            .params
            .iter()
            .map(|p| &**p as &(dyn ToSql + Sync))
            .collect();
        let tx = &tx;
        async move { tx.query(prepared, &params).await }
    });
    // Polled in order, so sent in order: the locks first, then every call.
    let (locked, results) = join(locking, join_all(calls)).await;
    locked
        .map_err(err("locking a batch of inserts"))
        .map_err(statement)?;
    let mut rows = Vec::with_capacity(results.len());
    for result in results {
        rows.push(result.map_err(err("writing a job")).map_err(statement)?);
    }
    let mut positions = Vec::with_capacity(rows.len());
    for job_rows in &rows {
        let pos: Option<Vec<i64>> = match job_rows.first() {
            Some(row) => get(row, 1, "reading insertion keys").map_err(statement)?,
            None => None,
        };
        positions.push(pos.unwrap_or_default());
    }
    // Awaited before the commit, so the listener cannot see an id before it is awaited.
    let ids: Vec<_> = positions
        .iter()
        .map(|p| shared.numbering.expect(p))
        .collect();
    if let Err(e) = tx.commit().await {
        for p in &positions {
            shared.numbering.forget(p);
        }
        return Err(Failed::Commit(StoreError::with_source(
            "committing a batch of writes",
            e,
        )));
    }
    Ok(rows
        .into_iter()
        .zip(ids)
        .zip(positions)
        .map(|((rows, ids), positions)| Answer {
            written: Written { rows, ids },
            recorded: !positions.is_empty(),
        })
        .collect())
}
