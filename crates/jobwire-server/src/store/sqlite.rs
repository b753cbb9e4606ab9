//! [`SqliteStore`]: the durable embedded store, one SQLite database in WAL mode.

use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use jobwire_core::{Job, Service};
use rusqlite::types::Value as SqlValue;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension, Transaction};

use super::{Event, JobQuery, NewEvent, ServiceQuery, Store, StoreError};
use crate::util::lock;

/// The database file inside the data directory.
pub(crate) const DB_FILE: &str = "jobwire.db";

/// Tables and indexes, created when the database is opened.
///
/// Rows keep the model as JSON in `body` and copy out the columns that queries filter on.
/// `AUTOINCREMENT` keeps sequence numbers from ever being reused, which cursors rely on.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS services (
    seq    INTEGER PRIMARY KEY AUTOINCREMENT,
    id     TEXT NOT NULL UNIQUE,
    tenant TEXT,
    name   TEXT NOT NULL,
    body   TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS services_name ON services (name);
CREATE TABLE IF NOT EXISTS jobs (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    id         TEXT NOT NULL UNIQUE,
    tenant     TEXT NOT NULL,
    service_id TEXT NOT NULL,
    status     TEXT NOT NULL,
    body       TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_tenant_seq ON jobs (tenant, seq);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs (status);
CREATE TABLE IF NOT EXISTS job_labels (
    job_seq INTEGER NOT NULL REFERENCES jobs (seq),
    key     TEXT NOT NULL,
    value   TEXT NOT NULL,
    PRIMARY KEY (job_seq, key)
);
CREATE INDEX IF NOT EXISTS job_labels_kv ON job_labels (key, value);
CREATE TABLE IF NOT EXISTS events (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant     TEXT NOT NULL,
    job_id     TEXT NOT NULL,
    kind       TEXT NOT NULL,
    data       TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_tenant_seq ON events (tenant, seq);
";

/// A store in one SQLite database file, WAL mode, `synchronous=NORMAL`.
///
/// One connection behind a mutex: SQLite serialises writers anyway, and every call is one
/// short transaction. With `synchronous=NORMAL` in WAL mode a commit survives a process
/// crash; a power cut may lose the last commits but never corrupts the database.
pub(crate) struct SqliteStore {
    conn: Mutex<Connection>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").finish_non_exhaustive()
    }
}

fn err(context: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError {
    move |e| StoreError::with_source(context, e)
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::with_source("encoding a row", e))
}

fn from_json<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::with_source("decoding a row", e))
}

impl SqliteStore {
    /// Opens (creating if needed) `dir/jobwire.db` and its schema.
    pub(crate) fn open(dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| {
            StoreError::with_source(format!("creating data directory {}", dir.display()), e)
        })?;
        let path = dir.join(DB_FILE);
        let conn = Connection::open(&path)
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
        conn.execute_batch("PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;")
            .map_err(err("setting pragmas"))?;
        conn.execute_batch(SCHEMA)
            .map_err(err("creating the schema"))?;
        Ok(SqliteStore {
            conn: Mutex::new(conn),
        })
    }

    fn in_transaction<T>(
        &self,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = lock(&self.conn);
        let tx = conn.transaction().map_err(err("starting a transaction"))?;
        let out = f(&tx)?;
        tx.commit().map_err(err("committing"))?;
        Ok(out)
    }
}

fn insert_events(
    tx: &Transaction<'_>,
    tenant: &str,
    events: &[NewEvent],
) -> Result<(), StoreError> {
    if events.is_empty() {
        return Ok(());
    }
    let mut stmt = tx
        .prepare_cached(
            "INSERT INTO events (tenant, job_id, kind, data, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .map_err(err("preparing an event insert"))?;
    for e in events {
        stmt.execute(params![
            tenant,
            e.job_id,
            e.kind.as_str(),
            to_json(&e.data)?,
            e.created_at
        ])
        .map_err(err("inserting an event"))?;
    }
    Ok(())
}

impl Store for SqliteStore {
    fn upsert_service(&self, tenant: Option<&str>, service: &Service) -> Result<(), StoreError> {
        let body = to_json(service)?;
        self.in_transaction(|tx| {
            tx.execute(
                "INSERT INTO services (id, tenant, name, body) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (id) DO UPDATE SET tenant = excluded.tenant,
                     name = excluded.name, body = excluded.body",
                params![service.id, tenant, service.name, body],
            )
            .map_err(err("saving a service"))?;
            Ok(())
        })
    }

    fn find_service(&self, tenant: &str, id_or_name: &str) -> Result<Option<Service>, StoreError> {
        let conn = lock(&self.conn);
        let body: Option<String> = conn
            .prepare_cached(
                "SELECT body FROM services
                 WHERE (tenant IS NULL OR tenant = ?1) AND (id = ?2 OR name = ?2)
                 ORDER BY (id = ?2) DESC, seq LIMIT 1",
            )
            .and_then(|mut stmt| {
                stmt.query_row(params![tenant, id_or_name], |row| row.get(0))
                    .optional()
            })
            .map_err(err("reading a service"))?;
        body.as_deref().map(from_json).transpose()
    }

    fn list_services(
        &self,
        tenant: &str,
        query: &ServiceQuery,
    ) -> Result<Vec<(i64, Service)>, StoreError> {
        let conn = lock(&self.conn);
        let mut stmt = conn
            .prepare_cached(
                "SELECT seq, body FROM services
                 WHERE (tenant IS NULL OR tenant = ?1) AND seq > ?2 AND (?3 IS NULL OR name = ?3)
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
        let mut out = Vec::new();
        for row in rows {
            let (seq, body) = row.map_err(err("listing services"))?;
            out.push((seq, from_json(&body)?));
        }
        Ok(out)
    }

    fn insert_job(&self, tenant: &str, job: &Job, events: &[NewEvent]) -> Result<i64, StoreError> {
        let body = to_json(job)?;
        self.in_transaction(|tx| {
            tx.execute(
                "INSERT INTO jobs (id, tenant, service_id, status, body) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![job.id, tenant, job.service_id, job.status.as_str(), body],
            )
            .map_err(err("inserting a job"))?;
            let seq = tx.last_insert_rowid();
            if !job.labels.is_empty() {
                let mut stmt = tx
                    .prepare_cached("INSERT INTO job_labels (job_seq, key, value) VALUES (?1, ?2, ?3)")
                    .map_err(err("inserting labels"))?;
                for (k, v) in &job.labels {
                    stmt.execute(params![seq, k, v])
                        .map_err(err("inserting labels"))?;
                }
            }
            insert_events(tx, tenant, events)?;
            Ok(seq)
        })
    }

    fn update_job(&self, tenant: &str, job: &Job, events: &[NewEvent]) -> Result<(), StoreError> {
        let body = to_json(job)?;
        self.in_transaction(|tx| {
            let changed = tx
                .execute(
                    "UPDATE jobs SET status = ?1, body = ?2 WHERE id = ?3 AND tenant = ?4",
                    params![job.status.as_str(), body, job.id, tenant],
                )
                .map_err(err("updating a job"))?;
            if changed != 1 {
                return Err(StoreError::new(format!("no job {} to update", job.id)));
            }
            insert_events(tx, tenant, events)
        })
    }

    fn append_events(&self, tenant: &str, events: &[NewEvent]) -> Result<(), StoreError> {
        self.in_transaction(|tx| insert_events(tx, tenant, events))
    }

    fn get_job(&self, tenant: &str, id: &str) -> Result<Option<Job>, StoreError> {
        let conn = lock(&self.conn);
        let body: Option<String> = conn
            .prepare_cached("SELECT body FROM jobs WHERE id = ?1 AND tenant = ?2")
            .and_then(|mut stmt| {
                stmt.query_row(params![id, tenant], |row| row.get(0))
                    .optional()
            })
            .map_err(err("reading a job"))?;
        body.as_deref().map(from_json).transpose()
    }

    fn list_jobs(&self, tenant: &str, query: &JobQuery) -> Result<Vec<(i64, Job)>, StoreError> {
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

        let conn = lock(&self.conn);
        let mut stmt = conn.prepare_cached(&sql).map_err(err("listing jobs"))?;
        let rows = stmt
            .query_map(params_from_iter(args), |row| {
                Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?))
            })
            .map_err(err("listing jobs"))?;
        let mut out = Vec::new();
        for row in rows {
            let (seq, body) = row.map_err(err("listing jobs"))?;
            out.push((seq, from_json(&body)?));
        }
        Ok(out)
    }

    fn unfinished_jobs(&self) -> Result<Vec<(String, Job)>, StoreError> {
        let conn = lock(&self.conn);
        let mut stmt = conn
            .prepare(
                "SELECT tenant, body FROM jobs WHERE status IN ('queued', 'running') ORDER BY seq",
            )
            .map_err(err("listing unfinished jobs"))?;
        let rows = stmt
            .query_map([], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
            })
            .map_err(err("listing unfinished jobs"))?;
        let mut out = Vec::new();
        for row in rows {
            let (tenant, body) = row.map_err(err("listing unfinished jobs"))?;
            out.push((tenant, from_json(&body)?));
        }
        Ok(out)
    }

    fn events_after(
        &self,
        tenant: &str,
        after: i64,
        limit: usize,
    ) -> Result<Vec<Event>, StoreError> {
        let conn = lock(&self.conn);
        let mut stmt = conn
            .prepare_cached(
                "SELECT seq, job_id, kind, data, created_at FROM events
                 WHERE tenant = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
            )
            .map_err(err("reading events"))?;
        let rows = stmt
            .query_map(
                params![tenant, after, i64::try_from(limit).unwrap_or(i64::MAX)],
                |row| {
                    Ok((
                        row.get::<_, i64>(0)?,
                        row.get::<_, String>(1)?,
                        row.get::<_, String>(2)?,
                        row.get::<_, String>(3)?,
                        row.get::<_, String>(4)?,
                    ))
                },
            )
            .map_err(err("reading events"))?;
        let mut out = Vec::new();
        for row in rows {
            let (seq, job_id, kind, data, created_at) = row.map_err(err("reading events"))?;
            out.push(Event {
                seq,
                job_id,
                kind,
                data: from_json(&data)?,
                created_at,
            });
        }
        Ok(out)
    }

    fn close(&self) -> Result<(), StoreError> {
        let conn = lock(&self.conn);
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .map_err(err("checkpointing the WAL"))?;
        conn.execute_batch("PRAGMA optimize;")
            .map_err(err("optimizing"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A unique temporary directory, removed on drop.
    pub(crate) struct TempDir(pub std::path::PathBuf);

    impl TempDir {
        pub(crate) fn new(tag: &str) -> Self {
            let dir = std::env::temp_dir().join(format!(
                "jobwire-{tag}-{}-{}",
                std::process::id(),
                crate::util::random_id("", 8).unwrap()
            ));
            TempDir(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn sqlite_store_keeps_the_contract() {
        let dir = TempDir::new("store-contract");
        let store = SqliteStore::open(&dir.0).unwrap();
        super::super::contract::run(&store);
        store.close().unwrap();
    }

    #[test]
    fn sqlite_store_is_durable_and_in_wal_mode() {
        let dir = TempDir::new("store-durable");
        {
            let store = SqliteStore::open(&dir.0).unwrap();
            let job = Job::new("job_1", "svc_a", jobwire_core::JobStatus::Queued);
            store.insert_job("t", &job, &[]).unwrap();
            store.close().unwrap();
        }
        let store = SqliteStore::open(&dir.0).unwrap();
        assert!(store.get_job("t", "job_1").unwrap().is_some());
        let mode: String = lock(&store.conn)
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        // Sequence numbers continue after a restart instead of starting over.
        let seq = store
            .insert_job(
                "t",
                &Job::new("job_2", "svc_a", jobwire_core::JobStatus::Queued),
                &[],
            )
            .unwrap();
        assert_eq!(seq, 2);
    }
}
