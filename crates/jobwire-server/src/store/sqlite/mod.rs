//! [`SqliteStore`]: the durable embedded store, one SQLite database in WAL mode.
//!
//! Writes go to one writer thread, which owns the only writing connection. It takes every
//! write that arrived while its last commit ran and commits them together: one
//! transaction, one fsync (`synchronous=FULL`), however many jobs (group commit). A
//! write's future resolves only after the commit, so an answer sent after it never
//! speaks of anything a crash or a power cut could take back. After each commit the
//! thread publishes the batch's events on the bus, in id order.
//!
//! A batch commits whole or not at all. Writes check what they depend on (a key, a
//! limit, the state a compare-and-set expects) with reads before they change anything,
//! so a write fails only on a database error — disk full, I/O — which would fail the
//! commit anyway. At the first failure the batch stops: it is rolled back, every write
//! in it (run or not) fails, and the next batch starts afresh. (A savepoint per write
//! would isolate them, but costs every write a copy of each page the batch touched
//! before it: a fifth of the throughput.)
//!
//! Reads run on tokio's blocking pool over a few read-only connections, which WAL lets
//! read while the writer writes.

use async_trait::async_trait;
use jobwire_core::{Job, Service};
use rusqlite::types::Value as SqlValue;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension};
use std::path::Path;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};
use tokio::sync::oneshot;
mod dir_lock;
mod migrations;
mod readers;
mod writer;

use dir_lock::DirLock;

use readers::{decode_rows, Readers, READERS};
use writer::{
    charge, checkpoint_loop, encode, insert_events, insert_job_row, last_event_seq, open_writer,
    seqs, write_loop, Command, JobInsert,
};

use super::codec::{finished_at, from_json, to_json};
use super::{
    Created, Cutoffs, Event, EventQuery, Expected, Inserted, JobQuery, KeyRecord, NewEvent, NewJob,
    Pruned, Retired, ServiceQuery, Store, StoreError,
};
use crate::bus::EventBus;
use crate::clock::{lease_end, unix_millis};
use crate::locking::lock;

/// Most jobs one retention pass prunes the events of, and most it removes: a backlog
/// is worked off over several passes, each short, since the writer waits for it.
const PRUNE_BATCH: i64 = 5_000;

/// The database file inside the data directory.
pub(crate) const DB_FILE: &str = "jobwire.db";

/// A store in one SQLite database file, WAL mode, `synchronous=FULL`, written by one
/// thread with group commit; see the module docs.
///
/// One server process per data directory: opening the store ends the leases of jobs a
/// previous process left unfinished, so the crash rule deals with them at once.
pub(crate) struct SqliteStore {
    writer: mpsc::Sender<Command>,
    thread: Mutex<Option<JoinHandle<()>>>,
    readers: Arc<Readers>,
    /// Stops the checkpointer (dropping the sender does too).
    checkpointer: Mutex<Option<(mpsc::Sender<()>, JoinHandle<()>)>>,
    /// The data directory is this store's until `close` (or the drop).
    lock: Mutex<Option<DirLock>>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").finish_non_exhaustive()
    }
}

fn err(context: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError {
    move |e| StoreError::with_source(context, e)
}

fn closed() -> StoreError {
    StoreError::new("the SQLite store is closed")
}

impl SqliteStore {
    /// Opens (creating if needed) `dir/jobwire.db` and its schema, and starts the writer
    /// thread, which publishes committed events on `bus`.
    pub(crate) fn open(dir: &Path, bus: Arc<EventBus>) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| {
            StoreError::with_source(format!("creating data directory {}", dir.display()), e)
        })?;
        let lock = DirLock::take(dir)?;
        let path = dir.join(DB_FILE);
        let conn = open_writer(&path)?;
        bus.advance(last_event_seq(&conn)?);
        let (writer, commands) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("jobwire-sqlite-writer".into())
            .spawn(move || write_loop(conn, commands, bus))
            .map_err(|e| StoreError::with_source("starting the writer thread", e))?;
        let (stop, stopped) = mpsc::channel();
        let checkpoint_path = path.clone();
        let checkpointer = std::thread::Builder::new()
            .name("jobwire-sqlite-checkpoint".into())
            .spawn(move || checkpoint_loop(&checkpoint_path, &stopped))
            .map_err(|e| StoreError::with_source("starting the checkpoint thread", e))?;
        Ok(SqliteStore {
            writer,
            thread: Mutex::new(Some(thread)),
            checkpointer: Mutex::new(Some((stop, checkpointer))),
            lock: Mutex::new(Some(lock)),
            readers: Arc::new(Readers {
                path,
                idle: Mutex::new(Vec::new()),
                permits: tokio::sync::Semaphore::new(READERS),
            }),
        })
    }
}

/// What a tenant's idempotency key was first used for.
fn read_key(conn: &Connection, tenant: &str, key: &str) -> Result<Option<KeyRecord>, StoreError> {
    conn.prepare_cached(
        "SELECT fingerprint, job_id, status FROM idempotency_keys WHERE tenant = ?1 AND key = ?2",
    )
    .and_then(|mut stmt| {
        stmt.query_row(params![tenant, key], |row| {
            Ok(KeyRecord {
                fingerprint: row.get(0)?,
                job_id: row.get(1)?,
                status: row.get(2)?,
            })
        })
        .optional()
    })
    .map_err(err("reading an idempotency key"))
}

#[async_trait]
impl Store for SqliteStore {
    async fn upsert_service(
        &self,
        tenant: Option<&str>,
        service: &Service,
    ) -> Result<(), StoreError> {
        let body = to_json(service)?;
        let (id, name) = (service.id.clone(), service.name.clone());
        let tenant = tenant.map(str::to_owned);
        self.write(move |conn| {
            conn.execute(
                "INSERT INTO services (id, tenant, name, body) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (id) DO UPDATE SET tenant = excluded.tenant,
                     name = excluded.name, body = excluded.body",
                params![id, tenant, name, body],
            )
            .map_err(err("saving a service"))?;
            Ok(((), Vec::new()))
        })
        .await
    }

    async fn create_service(&self, tenant: &str, service: &Service) -> Result<Created, StoreError> {
        let body = to_json(service)?;
        let (id, name) = (service.id.clone(), service.name.clone());
        let tenant = tenant.to_owned();
        self.write(move |conn| {
            // The writer is the only one: nothing can take the name between the two.
            let taken: Option<String> = conn
                .query_row(
                    "SELECT body FROM services
                     WHERE (tenant IS NULL OR tenant = ?1) AND name = ?2 AND retired = 0
                     ORDER BY seq LIMIT 1",
                    params![tenant, name],
                    |row| row.get(0),
                )
                .optional()
                .map_err(err("reading a service"))?;
            if let Some(body) = taken {
                return Ok((Created::NameTaken(Box::new(from_json(&body)?)), Vec::new()));
            }
            conn.execute(
                "INSERT INTO services (id, tenant, name, body) VALUES (?1, ?2, ?3, ?4)",
                params![id, tenant, name, body],
            )
            .map_err(err("saving a service"))?;
            Ok((Created::Stored, Vec::new()))
        })
        .await
    }

    async fn retire_service(&self, tenant: &str, id_or_name: &str) -> Result<Retired, StoreError> {
        let (tenant, wanted) = (tenant.to_owned(), id_or_name.to_owned());
        self.write(move |conn| {
            let found: Option<(Option<String>, String)> = conn
                .query_row(
                    "SELECT tenant, id FROM services
                     WHERE (tenant IS NULL OR tenant = ?1)
                         AND (id = ?2 OR (name = ?2 AND retired = 0))
                     ORDER BY (id = ?2) DESC, seq LIMIT 1",
                    params![tenant, wanted],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )
                .optional()
                .map_err(err("reading a service"))?;
            let retired = match found {
                None => Retired::Missing,
                Some((None, _)) => Retired::Global,
                Some((Some(_), id)) => {
                    conn.execute("UPDATE services SET retired = 1 WHERE id = ?1", params![id])
                        .map_err(err("retiring a service"))?;
                    Retired::Done(id)
                }
            };
            Ok((retired, Vec::new()))
        })
        .await
    }

    async fn is_retired(&self, tenant: &str, id: &str) -> Result<bool, StoreError> {
        let (tenant, id) = (tenant.to_owned(), id.to_owned());
        self.read(move |conn| {
            conn.prepare_cached(
                "SELECT 1 FROM services WHERE tenant = ?1 AND id = ?2 AND retired = 1",
            )
            .and_then(|mut stmt| stmt.exists(params![tenant, id]))
            .map_err(err("reading a service"))
        })
        .await
    }

    async fn find_service(
        &self,
        tenant: &str,
        id_or_name: &str,
    ) -> Result<Option<Service>, StoreError> {
        let (tenant, wanted) = (tenant.to_owned(), id_or_name.to_owned());
        let body: Option<String> = self
            .read(move |conn| {
                conn.prepare_cached(
                    "SELECT body FROM services
                     WHERE (tenant IS NULL OR tenant = ?1) AND (id = ?2 OR name = ?2)
                         AND retired = 0
                     ORDER BY (id = ?2) DESC, seq LIMIT 1",
                )
                .and_then(|mut stmt| {
                    stmt.query_row(params![tenant, wanted], |row| row.get(0))
                        .optional()
                })
                .map_err(err("reading a service"))
            })
            .await?;
        body.as_deref().map(from_json).transpose()
    }

    async fn list_services(
        &self,
        tenant: &str,
        query: &ServiceQuery,
    ) -> Result<Vec<(i64, Service)>, StoreError> {
        let (tenant, query) = (tenant.to_owned(), query.clone());
        let rows = self
            .read(move |conn| {
                let mut stmt = conn
                    .prepare_cached(
                        "SELECT seq, body FROM services
                         WHERE (tenant IS NULL OR tenant = ?1) AND seq > ?2
                             AND (?3 IS NULL OR name = ?3) AND retired = 0
                         ORDER BY seq LIMIT ?4",
                    )
                    .map_err(err("listing services"))?;
                let rows = stmt
                    .query_map(
                        params![
                            tenant,
                            query.after.unwrap_or(0),
                            query.name,
                            i64::try_from(query.limit).unwrap_or(i64::MAX)
                        ],
                        |row| Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?)),
                    )
                    .map_err(err("listing services"))?;
                rows.collect::<Result<Vec<_>, _>>()
                    .map_err(err("listing services"))
            })
            .await?;
        decode_rows(rows)
    }

    async fn insert_job(
        &self,
        new: NewJob<'_>,
        events: Vec<NewEvent>,
    ) -> Result<Inserted, StoreError> {
        let insert = JobInsert {
            tenant: new.tenant.to_owned(),
            job: new.job.clone(),
            body: to_json(new.job)?,
            key: new
                .key
                .map(|k| (k.key.to_owned(), k.fingerprint.to_owned(), k.answered)),
            max_in_flight: i64::try_from(new.max_in_flight).unwrap_or(i64::MAX),
            max_stored_bytes: i64::try_from(new.max_stored_bytes).unwrap_or(i64::MAX),
            owner: new.owner.to_owned(),
            lease_until: lease_end(SystemTime::now(), new.lease),
        };
        let events = encode(events)?;
        self.write(move |conn| insert_job_row(conn, insert, events))
            .await
    }

    async fn find_key(&self, tenant: &str, key: &str) -> Result<Option<KeyRecord>, StoreError> {
        let (tenant, key) = (tenant.to_owned(), key.to_owned());
        self.read(move |conn| read_key(conn, &tenant, &key)).await
    }

    async fn set_key_status(&self, tenant: &str, key: &str, status: u16) -> Result<(), StoreError> {
        let (tenant, key) = (tenant.to_owned(), key.to_owned());
        self.write(move |conn| {
            conn.prepare_cached(
                "UPDATE idempotency_keys SET status = ?1 WHERE tenant = ?2 AND key = ?3",
            )
            .and_then(|mut stmt| stmt.execute(params![status, tenant, key]))
            .map_err(err("recording an answer's status"))?;
            Ok(((), Vec::new()))
        })
        .await
    }

    async fn update_job(
        &self,
        tenant: &str,
        job: &Job,
        expected: Expected<'_>,
        events: Vec<NewEvent>,
    ) -> Result<Option<Vec<i64>>, StoreError> {
        let body = to_json(job)?;
        let tenant = tenant.to_owned();
        let (id, status) = (job.id.clone(), job.status.as_str().to_owned());
        let finished = finished_at(job).map(str::to_owned);
        let was = expected.status.as_str().to_owned();
        let owner = expected.owner.map(str::to_owned);
        let events = encode(events)?;
        self.write(move |conn| {
            // Compare, then set: nothing else writes between the two (one writer).
            let stored: Option<(i64, i64)> = conn
                .prepare_cached(
                    "SELECT seq, bytes FROM jobs
                     WHERE id = ?1 AND tenant = ?2 AND status = ?3
                         AND (?4 IS NULL OR owner = ?4)",
                )
                .and_then(|mut stmt| {
                    stmt.query_row(params![id, tenant, was, owner], |row| {
                        Ok((row.get(0)?, row.get(1)?))
                    })
                    .optional()
                })
                .map_err(err("reading a job to update"))?;
            let Some((seq, was_bytes)) = stored else {
                return Ok((None, Vec::new()));
            };
            let bytes = i64::try_from(body.len()).unwrap_or(i64::MAX);
            conn.prepare_cached(
                "UPDATE jobs SET status = ?1, body = ?2, finished_at = ?3, bytes = ?4
                 WHERE seq = ?5",
            )
            .and_then(|mut stmt| stmt.execute(params![status, body, finished, bytes, seq]))
            .map_err(err("updating a job"))?;
            let recorded = insert_events(conn, &tenant, events, bytes - was_bytes)?;
            Ok((Some(seqs(&recorded)), recorded))
        })
        .await
    }

    async fn append_events(
        &self,
        tenant: &str,
        job_id: &str,
        expected: Expected<'_>,
        events: Vec<NewEvent>,
    ) -> Result<Option<Vec<i64>>, StoreError> {
        let (tenant, id) = (tenant.to_owned(), job_id.to_owned());
        let was = expected.status.as_str().to_owned();
        let owner = expected.owner.map(str::to_owned);
        let events = encode(events)?;
        self.write(move |conn| {
            // The one writer makes check-then-insert atomic.
            let holds = conn
                .prepare_cached(
                    "SELECT 1 FROM jobs WHERE id = ?1 AND tenant = ?2 AND status = ?3
                         AND (?4 IS NULL OR owner = ?4)",
                )
                .and_then(|mut stmt| stmt.exists(params![id, tenant, was, owner]))
                .map_err(err("checking a job's state"))?;
            if !holds {
                return Ok((None, Vec::new()));
            }
            let recorded = insert_events(conn, &tenant, events, 0)?;
            Ok((Some(seqs(&recorded)), recorded))
        })
        .await
    }

    async fn get_job(&self, tenant: &str, id: &str) -> Result<Option<(Job, i64)>, StoreError> {
        let (tenant, id) = (tenant.to_owned(), id.to_owned());
        // One statement, one snapshot: the position is the last id as of this state.
        let row: Option<(String, Option<i64>)> = self
            .read(move |conn| {
                conn.prepare_cached(
                    "SELECT body, (SELECT seq FROM sqlite_sequence WHERE name = 'events')
                     FROM jobs WHERE id = ?1 AND tenant = ?2",
                )
                .and_then(|mut stmt| {
                    stmt.query_row(params![id, tenant], |row| Ok((row.get(0)?, row.get(1)?)))
                        .optional()
                })
                .map_err(err("reading a job"))
            })
            .await?;
        row.map(|(body, position)| Ok((from_json(&body)?, position.unwrap_or(0))))
            .transpose()
    }

    async fn list_jobs(
        &self,
        tenant: &str,
        query: &JobQuery,
    ) -> Result<Vec<(i64, Job)>, StoreError> {
        let mut sql = String::from(
            "SELECT seq, body FROM jobs WHERE tenant = ?1 AND seq < ?2
             AND (?3 IS NULL OR service_id = ?3) AND (?4 IS NULL OR status = ?4)",
        );
        let mut args: Vec<SqlValue> = vec![
            SqlValue::Text(tenant.to_owned()),
            SqlValue::Integer(query.before.unwrap_or(i64::MAX)),
            query
                .service_id
                .clone()
                .map_or(SqlValue::Null, SqlValue::Text),
            query.status.clone().map_or(SqlValue::Null, SqlValue::Text),
        ];
        for (k, v) in &query.labels {
            let n = args.len();
            sql.push_str(&format!(
                " AND EXISTS (SELECT 1 FROM job_labels l WHERE l.job_seq = jobs.seq AND l.key = ?{} AND l.value = ?{})",
                n + 1,
                n + 2
            ));
            args.push(SqlValue::Text(k.clone()));
            args.push(SqlValue::Text(v.clone()));
        }
        sql.push_str(&format!(" ORDER BY seq DESC LIMIT ?{}", args.len() + 1));
        args.push(SqlValue::Integer(
            i64::try_from(query.limit).unwrap_or(i64::MAX),
        ));
        let rows = self
            .read(move |conn| {
                let mut stmt = conn.prepare_cached(&sql).map_err(err("listing jobs"))?;
                let rows = stmt
                    .query_map(params_from_iter(args), |row| {
                        Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?))
                    })
                    .map_err(err("listing jobs"))?;
                rows.collect::<Result<Vec<_>, _>>()
                    .map_err(err("listing jobs"))
            })
            .await?;
        decode_rows(rows)
    }

    async fn renew_leases(
        &self,
        owner: &str,
        jobs: &[String],
        lease: Duration,
    ) -> Result<usize, StoreError> {
        if jobs.is_empty() {
            return Ok(0);
        }
        let (owner, jobs) = (owner.to_owned(), jobs.to_vec());
        let until = lease_end(SystemTime::now(), lease);
        self.write(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "UPDATE jobs SET lease_until = ?1
                     WHERE id = ?2 AND owner = ?3 AND status IN ('queued', 'running')",
                )
                .map_err(err("renewing leases"))?;
            let mut renewed = 0;
            for id in &jobs {
                renewed += stmt
                    .execute(params![until, id, owner])
                    .map_err(err("renewing leases"))?;
            }
            Ok((renewed, Vec::new()))
        })
        .await
    }

    async fn claim_orphans(
        &self,
        owner: &str,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<(String, Job)>, StoreError> {
        let owner = owner.to_owned();
        let now = unix_millis(SystemTime::now());
        let until = lease_end(SystemTime::now(), lease);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        // The one writer makes select-then-update a claim no one else can make.
        let rows = self
            .write(move |conn| {
                let rows = conn
                    .prepare_cached(
                        "UPDATE jobs SET owner = ?1, lease_until = ?2
                         WHERE seq IN (SELECT seq FROM jobs
                             WHERE status IN ('queued', 'running') AND lease_until <= ?3
                             ORDER BY seq LIMIT ?4)
                         RETURNING seq, tenant, body",
                    )
                    .and_then(|mut stmt| {
                        stmt.query_map(params![owner, until, now, limit], |row| {
                            Ok((
                                row.get::<_, i64>(0)?,
                                row.get::<_, String>(1)?,
                                row.get::<_, String>(2)?,
                            ))
                        })?
                        .collect::<Result<Vec<_>, _>>()
                    })
                    .map_err(err("claiming orphaned jobs"))?;
                Ok((rows, Vec::new()))
            })
            .await?;
        let mut rows = rows;
        rows.sort_by_key(|(seq, _, _)| *seq);
        rows.into_iter()
            .map(|(_, tenant, body)| Ok((tenant, from_json(&body)?)))
            .collect()
    }

    async fn release_leases(&self, owner: &str) -> Result<usize, StoreError> {
        let owner = owner.to_owned();
        self.write(move |conn| {
            let released = conn
                .execute(
                    "UPDATE jobs SET lease_until = 0
                     WHERE owner = ?1 AND status IN ('queued', 'running')",
                    [owner],
                )
                .map_err(err("releasing leases"))?;
            Ok((released, Vec::new()))
        })
        .await
    }

    async fn events(&self, tenant: &str, query: &EventQuery) -> Result<Vec<Event>, StoreError> {
        let mut sql = String::from(
            "SELECT seq, job_id, service_id, kind, data, created_at FROM events
             WHERE tenant = ?1 AND seq > ?2 AND (?3 IS NULL OR service_id = ?3)",
        );
        let mut args: Vec<SqlValue> = vec![
            SqlValue::Text(tenant.to_owned()),
            SqlValue::Integer(query.after),
            query
                .service_id
                .clone()
                .map_or(SqlValue::Null, SqlValue::Text),
        ];
        if !query.jobs.is_empty() {
            let marks: Vec<String> = (0..query.jobs.len())
                .map(|i| format!("?{}", args.len() + 1 + i))
                .collect();
            sql.push_str(&format!(" AND job_id IN ({})", marks.join(", ")));
            args.extend(query.jobs.iter().cloned().map(SqlValue::Text));
        }
        sql.push_str(&format!(" ORDER BY seq LIMIT ?{}", args.len() + 1));
        args.push(SqlValue::Integer(
            i64::try_from(query.limit).unwrap_or(i64::MAX),
        ));
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(&sql).map_err(err("reading events"))?;
            let rows = stmt
                .query_map(params_from_iter(args), |row| {
                    Ok((
                        row.get::<_, i64>(0)?,
                        row.get::<_, String>(1)?,
                        row.get::<_, String>(2)?,
                        row.get::<_, String>(3)?,
                        row.get::<_, String>(4)?,
                        row.get::<_, String>(5)?,
                    ))
                })
                .map_err(err("reading events"))?;
            let mut out = Vec::new();
            for row in rows {
                let (seq, job_id, service_id, kind, data, created_at) =
                    row.map_err(err("reading events"))?;
                out.push(Event {
                    seq,
                    job_id,
                    service_id,
                    kind,
                    data: from_json(&data)?,
                    created_at,
                });
            }
            Ok(out)
        })
        .await
    }

    async fn event_floor(&self, tenant: &str) -> Result<i64, StoreError> {
        let tenant = tenant.to_owned();
        let floor: Option<i64> = self
            .read(move |conn| {
                conn.prepare_cached("SELECT seq FROM event_floors WHERE tenant = ?1")
                    .and_then(|mut stmt| stmt.query_row([tenant], |row| row.get(0)).optional())
                    .map_err(err("reading an event floor"))
            })
            .await?;
        Ok(floor.unwrap_or(0))
    }

    async fn prune(&self, cutoffs: &Cutoffs) -> Result<Pruned, StoreError> {
        let cutoffs = cutoffs.clone();
        self.write(move |tx| {
            let keys = tx
                .execute(
                    "DELETE FROM idempotency_keys WHERE created_at < ?1",
                    [&cutoffs.keys_before],
                )
                .map_err(err("pruning idempotency keys"))?;
            // The events of jobs finished before the events' cutoff, and the jobs
            // finished before the jobs' cutoff, whole: each pass takes at most
            // PRUNE_BATCH jobs of each, so the writer is never held long.
            tx.execute_batch(
                "CREATE TEMP TABLE IF NOT EXISTS prunable (id TEXT PRIMARY KEY);
                 CREATE TEMP TABLE IF NOT EXISTS doomed (seq INTEGER PRIMARY KEY, id TEXT);
                 DELETE FROM prunable; DELETE FROM doomed;",
            )
            .map_err(err("preparing a retention pass"))?;
            tx.execute(
                "INSERT INTO prunable (id) SELECT id FROM jobs
                 WHERE events_kept = 1 AND finished_at < ?1 LIMIT ?2",
                params![cutoffs.events_before, PRUNE_BATCH],
            )
            .map_err(err("choosing jobs to prune"))?;
            tx.execute(
                "INSERT INTO doomed (seq, id) SELECT seq, id FROM jobs
                 WHERE finished_at IS NOT NULL AND finished_at < ?1 LIMIT ?2",
                params![cutoffs.jobs_before, PRUNE_BATCH],
            )
            .map_err(err("choosing jobs to remove"))?;
            tx.execute(
                "INSERT OR IGNORE INTO prunable (id) SELECT id FROM doomed",
                [],
            )
            .map_err(err("choosing jobs to prune"))?;
            tx.execute(
                "INSERT INTO event_floors (tenant, seq)
                 SELECT tenant, MAX(seq) FROM events
                 WHERE job_id IN (SELECT id FROM prunable) GROUP BY tenant
                 ON CONFLICT (tenant) DO UPDATE SET seq = MAX(seq, excluded.seq)",
                [],
            )
            .map_err(err("raising event floors"))?;
            // What leaves, per tenant, before it leaves.
            let freed: Vec<(String, i64)> = tx
                .prepare(
                    "SELECT tenant, sum(b) FROM (
                         SELECT tenant, length(CAST(data AS BLOB)) AS b FROM events
                         WHERE job_id IN (SELECT id FROM prunable)
                         UNION ALL
                         SELECT tenant, bytes FROM jobs WHERE seq IN (SELECT seq FROM doomed))
                     GROUP BY tenant",
                )
                .and_then(|mut stmt| {
                    stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
                        .collect::<Result<_, _>>()
                })
                .map_err(err("counting what a retention pass frees"))?;
            let events = tx
                .execute(
                    "DELETE FROM events WHERE job_id IN (SELECT id FROM prunable)",
                    [],
                )
                .map_err(err("pruning events"))?;
            tx.execute(
                "UPDATE jobs SET events_kept = 0 WHERE id IN (SELECT id FROM prunable)",
                [],
            )
            .map_err(err("marking pruned jobs"))?;
            tx.execute(
                "DELETE FROM job_labels WHERE job_seq IN (SELECT seq FROM doomed)",
                [],
            )
            .map_err(err("removing the labels of old jobs"))?;
            tx.execute(
                "DELETE FROM idempotency_keys WHERE job_id IN (SELECT id FROM doomed)",
                [],
            )
            .map_err(err("removing the keys of old jobs"))?;
            let jobs = tx
                .execute("DELETE FROM jobs WHERE seq IN (SELECT seq FROM doomed)", [])
                .map_err(err("removing old jobs"))?;
            for (tenant, bytes) in freed {
                charge(tx, &tenant, -bytes)?;
            }
            let pruned = Pruned { events, keys, jobs };
            Ok((pruned, Vec::new()))
        })
        .await
    }

    async fn close(&self) -> Result<(), StoreError> {
        let checkpointer = lock(&self.checkpointer).take();
        if let Some((stop, thread)) = checkpointer {
            let _ = stop.send(());
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
        let (tx, rx) = oneshot::channel();
        self.writer.send(Command::Close(tx)).map_err(|_| closed())?;
        let flushed = rx.await.map_err(|_| closed())?;
        let thread = lock(&self.thread).take();
        if let Some(thread) = thread {
            // The thread has answered and is about to return.
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
        // The writer is gone: another server may have the directory now.
        lock(&self.lock).take();
        flushed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{EventKind, KeyUse};
    use jobwire_core::JobStatus;

    /// A unique temporary directory, removed on drop.
    pub(crate) struct TempDir(pub std::path::PathBuf);

    impl TempDir {
        pub(crate) fn new(tag: &str) -> Self {
            let dir = std::env::temp_dir().join(format!(
                "jobwire-{tag}-{}-{}",
                std::process::id(),
                crate::ids::random_id("", 8).unwrap()
            ));
            TempDir(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn open(dir: &TempDir) -> (SqliteStore, Arc<EventBus>) {
        let bus = Arc::new(EventBus::new(4096));
        (SqliteStore::open(&dir.0, bus.clone()).unwrap(), bus)
    }

    fn new_job(job: &Job) -> NewJob<'_> {
        NewJob {
            tenant: "t",
            job,
            key: None,
            max_in_flight: 100_000,
            max_stored_bytes: u64::MAX,
            owner: "srv",
            lease: Duration::from_secs(60),
        }
    }

    #[tokio::test]
    async fn sqlite_store_keeps_the_contract() {
        let dir = TempDir::new("store-contract");
        let (store, bus) = open(&dir);
        super::super::contract::run(&store, &bus).await;
        store.close().await.unwrap();
    }

    #[tokio::test]
    async fn sqlite_store_is_durable_and_in_wal_mode() {
        let dir = TempDir::new("store-durable");
        {
            let (store, _) = open(&dir);
            let job = Job::new("job_1", "svc_a", JobStatus::Queued);
            store.insert_job(new_job(&job), vec![]).await.unwrap();
            store.close().await.unwrap();
        }
        let (store, _) = open(&dir);
        assert!(store.get_job("t", "job_1").await.unwrap().is_some());
        let mode: String = store
            .read(|conn| {
                conn.query_row("PRAGMA journal_mode", [], |r| r.get(0))
                    .map_err(err("reading the journal mode"))
            })
            .await
            .unwrap();
        assert_eq!(mode, "wal");
        // Sequence numbers continue after a restart instead of starting over.
        let job = Job::new("job_2", "svc_a", JobStatus::Queued);
        store.insert_job(new_job(&job), vec![]).await.unwrap();
        let rows = store
            .list_jobs(
                "t",
                &JobQuery {
                    limit: 10,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(rows.iter().map(|(seq, _)| *seq).collect::<Vec<_>>(), [2, 1]);
        // The restart ended the first process's lease: its job is claimable at once.
        let claimed = store
            .claim_orphans("srv_next", Duration::from_secs(60), 10)
            .await
            .unwrap();
        assert_eq!(claimed.len(), 1);
        assert_eq!(claimed[0].1.id, "job_1");
    }

    /// Writes that arrive together are committed together and published in id order; a
    /// write that fails takes its batch with it, and the next batch starts afresh: every
    /// write told it succeeded is stored, every write told it failed is not.
    #[tokio::test]
    async fn concurrent_writes_share_commits_and_fail_by_batch() {
        let dir = TempDir::new("store-group");
        let (store, bus) = open(&dir);
        let store = Arc::new(store);
        let mut live = bus.subscribe("t");
        let insert = |i: usize, id: String| {
            let store = store.clone();
            tokio::spawn(async move {
                let job = Job::new(id, "svc_a", JobStatus::Queued);
                let event = NewEvent {
                    job_id: job.id.clone(),
                    service_id: "svc_a".into(),
                    kind: EventKind::Status,
                    data: crate::store::EventData::of(&serde_json::json!({ "job_id": job.id })),
                    created_at: String::new(),
                };
                (i, store.insert_job(new_job(&job), vec![event]).await)
            })
        };
        insert(0, "job_dup".into()).await.unwrap().1.unwrap();
        // The same id again fails on the unique index, in whatever batch it lands.
        let mut tasks: Vec<_> = (1..=200).map(|i| insert(i, format!("job_{i}"))).collect();
        tasks.insert(100, insert(999, "job_dup".into()));
        let (mut ids, mut stored, mut failed) = (Vec::new(), Vec::new(), Vec::new());
        for task in tasks {
            match task.await.unwrap() {
                (i, Ok(Inserted::Stored(seqs))) => {
                    ids.extend(seqs);
                    stored.push(i);
                }
                (_, Ok(other)) => panic!("{other:?}"),
                (i, Err(_)) => failed.push(i),
            }
        }
        assert!(failed.contains(&999), "the duplicate fails");
        let listed = store
            .list_jobs(
                "t",
                &JobQuery {
                    limit: 1000,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let mut listed: Vec<String> = listed.into_iter().map(|(_, j)| j.id).collect();
        listed.sort();
        let mut want: Vec<String> = stored.iter().map(|i| format!("job_{i}")).collect();
        want.push("job_dup".into());
        want.sort();
        assert_eq!(listed, want, "exactly the writes told they succeeded");
        ids.sort_unstable();
        let mut published = Vec::new();
        while let Ok(event) = live.try_recv() {
            published.push(event.seq);
        }
        assert_eq!(
            published[1..],
            ids,
            "every committed event, published in id order"
        );
        // The store carries on.
        let after = Job::new("job_after", "svc_a", JobStatus::Queued);
        store.insert_job(new_job(&after), vec![]).await.unwrap();
        let keyed = Job::new("job_keyed", "svc_a", JobStatus::Queued);
        let with_key = NewJob {
            key: Some(KeyUse {
                key: "k",
                fingerprint: "f",
                answered: None,
            }),
            ..new_job(&keyed)
        };
        store.insert_job(with_key, vec![]).await.unwrap();
        assert!(store.find_key("t", "k").await.unwrap().is_some());
    }

    #[tokio::test]
    async fn a_database_from_before_versioning_is_migrated() {
        let dir = TempDir::new("store-migrate");
        std::fs::create_dir_all(&dir.0).unwrap();
        {
            let conn = Connection::open(dir.0.join(DB_FILE)).unwrap();
            conn.execute_batch(migrations::MIGRATIONS[0]).unwrap();
            let mut job = Job::new("job_old", "svc_a", JobStatus::Succeeded);
            job.finished_at = Some("2026-01-01T00:00:00.000Z".into());
            conn.execute(
                "INSERT INTO jobs (id, tenant, service_id, status, body) VALUES (?1, 't', 'svc_a', 'succeeded', ?2)",
                params![job.id, serde_json::to_string(&job).unwrap()],
            )
            .unwrap();
            conn.execute(
                "INSERT INTO events (tenant, job_id, kind, data, created_at) VALUES ('t', 'job_old', 'done', '{}', '')",
                [],
            )
            .unwrap();
        }
        let (store, bus) = open(&dir);
        assert_eq!(bus.latest(), 1, "the bus starts after the events there are");
        let version: i64 = store
            .read(|conn| {
                conn.query_row("PRAGMA user_version", [], |r| r.get(0))
                    .map_err(err("reading the version"))
            })
            .await
            .unwrap();
        assert_eq!(version, migrations::MIGRATIONS.len() as i64);
        let events = store
            .events(
                "t",
                &EventQuery {
                    limit: 10,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(events[0].service_id, "svc_a", "service ids are filled in");
        // The finished time was copied out of the body, so retention finds the job.
        let pruned = store
            .prune(&Cutoffs {
                events_before: "2026-02-01T00:00:00.000Z".into(),
                keys_before: "1970-01-01T00:00:00.000000Z".into(),
                jobs_before: "1970-01-01T00:00:00.000000Z".into(),
            })
            .await
            .unwrap();
        assert_eq!(pruned.events, 1);
        store.close().await.unwrap();
        drop(store);
        // Opening again applies nothing twice.
        open(&dir).0.close().await.unwrap();
    }
}
