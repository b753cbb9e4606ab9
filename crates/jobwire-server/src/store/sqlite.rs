//! [`SqliteStore`]: the durable embedded store, one SQLite database in WAL mode.

use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use jobwire_core::{Job, Service};
use rusqlite::types::Value as SqlValue;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension, Transaction};

use super::{
    Event, EventQuery, JobQuery, KeyRecord, Keyed, NewEvent, Pruned, ServiceQuery, Store,
    StoreError,
};
use crate::util::lock;

/// The database file inside the data directory.
pub(crate) const DB_FILE: &str = "jobwire.db";

/// The schema as a list of migrations; `PRAGMA user_version` counts those applied.
///
/// Rows keep the model as JSON in `body` and copy out the columns that queries filter on.
/// `AUTOINCREMENT` keeps sequence numbers from ever being reused, which cursors and event
/// ids rely on. Migration 0 is idempotent (`IF NOT EXISTS`), so databases written before
/// versioning (user_version 0, tables present) take the later steps as well.
const MIGRATIONS: &[&str] = &[
    "
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
",
    // Event streams: the service filter, per-job reads, retention and resume floors.
    "
ALTER TABLE events ADD COLUMN service_id TEXT NOT NULL DEFAULT '';
UPDATE events SET service_id = coalesce(
    (SELECT service_id FROM jobs WHERE jobs.id = events.job_id), '');
CREATE INDEX events_job_seq ON events (job_id, seq);
ALTER TABLE jobs ADD COLUMN finished_at TEXT;
ALTER TABLE jobs ADD COLUMN events_kept INTEGER NOT NULL DEFAULT 1;
UPDATE jobs SET finished_at = json_extract(body, '$.finished_at')
    WHERE status IN ('succeeded', 'failed', 'cancelled');
CREATE INDEX jobs_prunable ON jobs (finished_at) WHERE events_kept = 1;
CREATE TABLE event_floors (
    tenant TEXT PRIMARY KEY,
    seq    INTEGER NOT NULL
);
",
    // Idempotency keys, per tenant, kept for a window from when they were recorded.
    "
CREATE TABLE idempotency_keys (
    tenant      TEXT NOT NULL,
    key         TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    job_id      TEXT NOT NULL,
    status      INTEGER,
    created_at  TEXT NOT NULL,
    PRIMARY KEY (tenant, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
",
];

/// Applies the migrations `conn` has not seen yet, each in its own transaction.
fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let applied: i64 = conn
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(err("reading the schema version"))?;
    let applied = usize::try_from(applied).unwrap_or(0);
    if applied > MIGRATIONS.len() {
        return Err(StoreError::new(format!(
            "the database has schema version {applied}, newer than this server knows ({})",
            MIGRATIONS.len()
        )));
    }
    for (version, sql) in MIGRATIONS.iter().enumerate().skip(applied) {
        let tx = conn.transaction().map_err(err("starting a migration"))?;
        tx.execute_batch(sql).map_err(|e| {
            StoreError::with_source(format!("migrating to version {}", version + 1), e)
        })?;
        tx.pragma_update(
            None,
            "user_version",
            i64::try_from(version + 1).unwrap_or(i64::MAX),
        )
        .map_err(err("recording the schema version"))?;
        tx.commit().map_err(err("committing a migration"))?;
    }
    Ok(())
}

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
        let mut conn = Connection::open(&path)
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
        migrate(&mut conn)?;
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

/// Inserts events; returns the sequence ids SQLite gave them.
fn insert_events(
    tx: &Transaction<'_>,
    tenant: &str,
    events: &[NewEvent],
) -> Result<Vec<i64>, StoreError> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    let mut stmt = tx
        .prepare_cached(
            "INSERT INTO events (tenant, job_id, service_id, kind, data, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )
        .map_err(err("preparing an event insert"))?;
    let mut seqs = Vec::with_capacity(events.len());
    for e in events {
        stmt.execute(params![
            tenant,
            e.job_id,
            e.service_id,
            e.kind.as_str(),
            to_json(&e.data)?,
            e.created_at
        ])
        .map_err(err("inserting an event"))?;
        seqs.push(tx.last_insert_rowid());
    }
    Ok(seqs)
}

/// Inserts a job (its row, labels and first events); returns its sequence number and
/// the events' ids.
fn insert_job_row(
    tx: &Transaction<'_>,
    tenant: &str,
    job: &Job,
    body: &str,
    events: &[NewEvent],
) -> Result<(i64, Vec<i64>), StoreError> {
    tx.execute(
        "INSERT INTO jobs (id, tenant, service_id, status, body, finished_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            job.id,
            tenant,
            job.service_id,
            job.status.as_str(),
            body,
            finished_at(job)
        ],
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
    Ok((seq, insert_events(tx, tenant, events)?))
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

/// The `finished_at` column of a job: set once it is terminal.
fn finished_at(job: &Job) -> Option<&str> {
    job.finished_at.as_deref().filter(|_| job.is_finished())
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

    fn insert_job(
        &self,
        tenant: &str,
        job: &Job,
        events: &[NewEvent],
    ) -> Result<(i64, Vec<i64>), StoreError> {
        let body = to_json(job)?;
        self.in_transaction(|tx| insert_job_row(tx, tenant, job, &body, events))
    }

    fn insert_keyed_job(
        &self,
        tenant: &str,
        job: &Job,
        events: &[NewEvent],
        key: &str,
        fingerprint: &str,
    ) -> Result<Keyed, StoreError> {
        let body = to_json(job)?;
        self.in_transaction(|tx| {
            if let Some(record) = read_key(tx, tenant, key)? {
                return Ok(Keyed::Taken(record));
            }
            tx.execute(
                "INSERT INTO idempotency_keys (tenant, key, fingerprint, job_id, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![tenant, key, fingerprint, job.id, job.created_at],
            )
            .map_err(err("recording an idempotency key"))?;
            let (_, seqs) = insert_job_row(tx, tenant, job, &body, events)?;
            Ok(Keyed::Inserted(seqs))
        })
    }

    fn find_key(&self, tenant: &str, key: &str) -> Result<Option<KeyRecord>, StoreError> {
        let conn = lock(&self.conn);
        read_key(&conn, tenant, key)
    }

    fn set_key_status(&self, tenant: &str, key: &str, status: u16) -> Result<(), StoreError> {
        self.in_transaction(|tx| {
            tx.execute(
                "UPDATE idempotency_keys SET status = ?1 WHERE tenant = ?2 AND key = ?3",
                params![status, tenant, key],
            )
            .map_err(err("recording an answer's status"))?;
            Ok(())
        })
    }

    fn update_job(
        &self,
        tenant: &str,
        job: &Job,
        events: &[NewEvent],
    ) -> Result<Vec<i64>, StoreError> {
        let body = to_json(job)?;
        self.in_transaction(|tx| {
            let changed = tx
                .execute(
                    "UPDATE jobs SET status = ?1, body = ?2, finished_at = ?3
                     WHERE id = ?4 AND tenant = ?5",
                    params![job.status.as_str(), body, finished_at(job), job.id, tenant],
                )
                .map_err(err("updating a job"))?;
            if changed != 1 {
                return Err(StoreError::new(format!("no job {} to update", job.id)));
            }
            insert_events(tx, tenant, events)
        })
    }

    fn append_events(&self, tenant: &str, events: &[NewEvent]) -> Result<Vec<i64>, StoreError> {
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

    fn events(&self, tenant: &str, query: &EventQuery) -> Result<Vec<Event>, StoreError> {
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

        let conn = lock(&self.conn);
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
    }

    fn event_floor(&self, tenant: &str) -> Result<i64, StoreError> {
        let conn = lock(&self.conn);
        let floor: Option<i64> = conn
            .prepare_cached("SELECT seq FROM event_floors WHERE tenant = ?1")
            .and_then(|mut stmt| stmt.query_row([tenant], |row| row.get(0)).optional())
            .map_err(err("reading an event floor"))?;
        Ok(floor.unwrap_or(0))
    }

    fn last_event_seq(&self) -> Result<i64, StoreError> {
        // sqlite_sequence remembers the highest id even after those rows are deleted.
        let conn = lock(&self.conn);
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

    fn prune(&self, cutoff: &str, keys_before: &str) -> Result<Pruned, StoreError> {
        self.in_transaction(|tx| {
            let keys = tx
                .execute(
                    "DELETE FROM idempotency_keys WHERE created_at < ?1",
                    [keys_before],
                )
                .map_err(err("pruning idempotency keys"))?;
            // Only jobs whose events are still there: each job is pruned once.
            tx.execute_batch(
                "CREATE TEMP TABLE IF NOT EXISTS prunable (id TEXT PRIMARY KEY);
                 DELETE FROM prunable;",
            )
            .map_err(err("preparing a retention pass"))?;
            tx.execute(
                "INSERT INTO prunable (id) SELECT id FROM jobs
                 WHERE events_kept = 1 AND finished_at < ?1",
                [cutoff],
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
            Ok(Pruned {
                events,
                keys,
                jobs: 0,
            })
        })
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
            .unwrap()
            .0;
        assert_eq!(seq, 2);
    }

    #[test]
    fn a_database_from_before_versioning_is_migrated() {
        let dir = TempDir::new("store-migrate");
        std::fs::create_dir_all(&dir.0).unwrap();
        {
            let conn = Connection::open(dir.0.join(DB_FILE)).unwrap();
            conn.execute_batch(MIGRATIONS[0]).unwrap();
            let mut job = Job::new("job_old", "svc_a", jobwire_core::JobStatus::Succeeded);
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
        let store = SqliteStore::open(&dir.0).unwrap();
        let version: i64 = lock(&store.conn)
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, MIGRATIONS.len() as i64);
        let events = store
            .events(
                "t",
                &EventQuery {
                    limit: 10,
                    ..Default::default()
                },
            )
            .unwrap();
        assert_eq!(events[0].service_id, "svc_a", "service ids are filled in");
        // The finished time was copied out of the body, so retention finds the job.
        let pruned = store
            .prune("2026-02-01T00:00:00.000Z", "1970-01-01T00:00:00.000000Z")
            .unwrap();
        assert_eq!(pruned.events, 1);
        drop(store);
        // Opening again applies nothing twice.
        SqliteStore::open(&dir.0).unwrap();
    }
}
