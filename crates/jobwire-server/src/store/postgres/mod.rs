//! [`PgStore`]: the store in a PostgreSQL database, which several server processes may
//! share.
//!
//! Rows keep the model as JSON text in `body` and copy out the columns that queries
//! filter on, like the SQLite store. What differs is what several processes need:
//!
//! - **Event ids in commit order.** A sequence hands out ids at insert time, so a
//!   transaction that took id 7 may commit after one that took id 8, and a reader could
//!   see 8 without 7 and later skip 7. Ids come instead from the one row of
//!   `event_counter`, updated as the last statement before commit: its row lock queues
//!   event-writing transactions until the previous one has committed, so ids grow in
//!   commit order and every snapshot sees a prefix of them.
//! - **Publication from the database.** A transaction that records events also sends
//!   `NOTIFY jobwire_events` (delivered at commit). Every process runs a listener that,
//!   on a notification or once a second, reads the events after the last one it
//!   published, in id order, and publishes them on its [`EventBus`]. A process publishes
//!   its own events the same way, never straight after its commit, which would race
//!   with the listener and break id order.
//! - **Leases on the database clock.** `lease_until` is a `timestamptz` compared with
//!   `now()`, so the servers' clocks may disagree.
//! - **Checks inside the insert.** Idempotency keys and the per-tenant limit on
//!   unfinished jobs are checked under transaction-scoped advisory locks, so two servers
//!   cannot both pass the check.
//! - **One round trip per write.** Inserting a job, changing one and recording its events
//!   are each one call of a function of the schema (`jobwire_insert_job`, …, migration
//!   2) in a transaction of its own, so the locks above are held for the function and
//!   its commit, not across round trips between this process and the database.
//!
//! Times other than leases are RFC 3339 text as the server writes them, compared as text
//! under the `C` collation (bytewise, whatever the database's locale).

use async_trait::async_trait;
use deadpool_postgres::{GenericClient, Manager, Pool, Runtime};
use jobwire_core::{Job, Service};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;
mod listener;
mod migrations;
mod tls;
mod usage;

use listener::Listener;
use migrations::migrate;
use usage::Ledger;

use super::codec::{finished_at, from_json, to_json};
use super::{
    Created, Cutoffs, Event, EventQuery, Expected, Inserted, JobQuery, KeyRecord, NewEvent, NewJob,
    Pruned, Retired, ServiceQuery, Store, StoreError,
};
use crate::bus::EventBus;

#[cfg(test)]
#[path = "../../../tests/support/pg_cluster.rs"]
mod pg_cluster;

/// Connections in the pool (the listener has one more of its own).
const POOL_SIZE: usize = 16;

/// How long a store call waits for a free pooled connection before failing.
const POOL_WAIT: Duration = Duration::from_secs(30);

/// How long opening a connection may take, unless the URL says otherwise.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The channel of `NOTIFY`, sent by every transaction that records events (spelled out
/// in `jobwire_record_events`, migration 2, as well).
const CHANNEL: &str = "jobwire_events";

/// Most jobs one retention pass prunes the events of, and most it removes: a backlog
/// is worked off over several passes, each short.
const PRUNE_BATCH: i64 = 5_000;

/// How long `close` waits for the listener to stop.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// A store in a PostgreSQL database; see the module docs.
pub(crate) struct PgStore {
    pool: Pool,
    /// Set (or dropped with the store) to stop the listener.
    stop: watch::Sender<bool>,
    /// The listener task, until `close` waits for it.
    listener: Mutex<Option<JoinHandle<()>>>,
    /// The bytes each tenant stores, as this process knows them.
    ledger: Arc<Ledger>,
    /// The task that flushes the ledger, until `close` waits for it.
    flusher: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore").finish_non_exhaustive()
    }
}

/// Wraps a driver or pool error with what was being done.
fn err<E>(context: &'static str) -> impl FnOnce(E) -> StoreError
where
    E: std::error::Error + Send + Sync + 'static,
{
    move |e| StoreError::with_source(context, e)
}

/// Wraps an error of opening a connection with what was being done and every cause:
/// tokio-postgres's errors leave theirs (the server's refusal, the certificate's fault)
/// out of their own text, which says only "db error" or "error performing TLS handshake".
fn connect_error(context: String, e: &(dyn std::error::Error + 'static)) -> StoreError {
    let mut text = format!("{context}: {e}");
    let mut source = e.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        // Some errors print their cause already.
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    StoreError::new(text)
}

/// A `LIMIT` parameter.
fn limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A row count as the trait reports it.
fn count(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// Prepares `sql` (once per pooled connection) and runs it; returns its rows.
async fn query(
    client: &impl GenericClient,
    what: &'static str,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Vec<Row>, StoreError> {
    let statement = client.prepare_cached(sql).await.map_err(err(what))?;
    client.query(&statement, params).await.map_err(err(what))
}

/// Prepares `sql` (once per pooled connection) and runs it; returns how many rows it
/// changed.
async fn execute(
    client: &impl GenericClient,
    what: &'static str,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<u64, StoreError> {
    let statement = client.prepare_cached(sql).await.map_err(err(what))?;
    client.execute(&statement, params).await.map_err(err(what))
}

/// Column `index` of a row.
fn get<'a, T: tokio_postgres::types::FromSql<'a>>(
    row: &'a Row,
    index: usize,
    what: &'static str,
) -> Result<T, StoreError> {
    row.try_get(index).map_err(err(what))
}

/// A `(seq, body)` row as a sequence number and a decoded model.
fn seq_and_body<T: serde::de::DeserializeOwned>(
    row: &Row,
    what: &'static str,
) -> Result<(i64, T), StoreError> {
    let seq = get(row, 0, what)?;
    let body: &str = get(row, 1, what)?;
    Ok((seq, from_json(body)?))
}

/// An event row, from column `first` on: seq, job_id, service_id, kind, data,
/// created_at.
fn event_from(row: &Row, first: usize) -> Result<Event, StoreError> {
    const WHAT: &str = "reading an event";
    let data: &str = get(row, first + 4, WHAT)?;
    Ok(Event {
        seq: get(row, first, WHAT)?,
        job_id: get(row, first + 1, WHAT)?,
        service_id: get(row, first + 2, WHAT)?,
        kind: get(row, first + 3, WHAT)?,
        data: from_json(data)?,
        created_at: get(row, first + 5, WHAT)?,
    })
}

/// The bytes of a text, as the ledger counts them.
fn bytes_of(text: &str) -> i64 {
    i64::try_from(text.len()).unwrap_or(i64::MAX)
}

/// Events as the columns `jobwire_record_events` takes, one array each.
struct EventColumns {
    n: i64,
    /// The bytes of their data, together.
    bytes: i64,
    job_ids: Vec<String>,
    service_ids: Vec<String>,
    kinds: Vec<&'static str>,
    data: Vec<String>,
    created_at: Vec<String>,
}

impl EventColumns {
    fn new(events: Vec<NewEvent>) -> Result<Self, StoreError> {
        let n = i64::try_from(events.len())
            .map_err(|e| StoreError::with_source("too many events", e))?;
        let mut columns = EventColumns {
            n,
            bytes: 0,
            job_ids: Vec::with_capacity(events.len()),
            service_ids: Vec::with_capacity(events.len()),
            kinds: Vec::with_capacity(events.len()),
            data: Vec::with_capacity(events.len()),
            created_at: Vec::with_capacity(events.len()),
        };
        for e in events {
            let data = to_json(&e.data)?;
            columns.bytes += bytes_of(&data);
            columns.data.push(data);
            columns.kinds.push(e.kind.as_str());
            columns.job_ids.push(e.job_id);
            columns.service_ids.push(e.service_id);
            columns.created_at.push(e.created_at);
        }
        Ok(columns)
    }

    /// The ids the events got, from the last one (`None` when there were none).
    fn ids(&self, last: Option<i64>) -> Vec<i64> {
        match last {
            Some(last) => (last - self.n + 1..=last).collect(),
            None => Vec::new(),
        }
    }
}

/// The answer of `jobwire_update_job` or `jobwire_append_events`: the events' ids, or
/// `None` when the job was not in the expected state.
fn changed_and_ids(
    rows: &[Row],
    events: &EventColumns,
    what: &'static str,
) -> Result<Option<Vec<i64>>, StoreError> {
    let row = rows
        .first()
        .ok_or_else(|| StoreError::new(format!("{what}: no outcome")))?;
    let changed: bool = get(row, 0, what)?;
    if !changed {
        return Ok(None);
    }
    Ok(Some(events.ids(get(row, 1, what)?)))
}

/// What a tenant's idempotency key was first used for.
async fn read_key(
    client: &impl GenericClient,
    tenant: &str,
    key: &str,
) -> Result<Option<KeyRecord>, StoreError> {
    const WHAT: &str = "reading an idempotency key";
    let rows = query(
        client,
        WHAT,
        "SELECT fingerprint, job_id, status FROM idempotency_keys
         WHERE tenant = $1 AND key = $2",
        &[&tenant, &key],
    )
    .await?;
    let Some(row) = rows.first() else {
        return Ok(None);
    };
    let status: Option<i32> = get(row, 2, WHAT)?;
    Ok(Some(KeyRecord {
        fingerprint: get(row, 0, WHAT)?,
        job_id: get(row, 1, WHAT)?,
        status: status.map(u16::try_from).transpose().map_err(err(WHAT))?,
    }))
}

impl PgStore {
    /// Connects to the database at `url` (a `postgres://` URL, over TLS as its `sslmode`
    /// says: see the `tls` module), brings its schema up to date, tells `bus` where the
    /// recorded events end and starts publishing every event committed from now on, by
    /// any server, on `bus`.
    pub(crate) async fn connect(url: &str, bus: Arc<EventBus>) -> Result<PgStore, StoreError> {
        let tls::Connection {
            mut config,
            tls,
            settings,
        } = tls::connection(url)?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        let pool = Pool::builder(Manager::new(config.clone(), tls.clone()))
            .max_size(POOL_SIZE)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(POOL_WAIT))
            .create_timeout(Some(CONNECT_TIMEOUT))
            .build()
            .map_err(err("building the connection pool"))?;
        // A refused certificate or a server without TLS shows here, with the mode.
        let mut client = pool.get().await.map_err(|e| {
            let context = format!("connecting to PostgreSQL ({})", settings.describe());
            connect_error(context, &e)
        })?;
        migrate(&mut client).await?;
        let row = client
            .query_one("SELECT last FROM event_counter", &[])
            .await
            .map_err(err("reading the last event id"))?;
        let last: i64 = get(&row, 0, "reading the last event id")?;
        drop(client);
        bus.advance(last);

        let (stop, stopped) = watch::channel(false);
        let listener = Listener {
            pool: pool.clone(),
            config,
            tls,
            closed: bus.closed(),
            bus,
            published: last,
            stop: stopped,
        };
        let listener = tokio::spawn(listener.run());
        let ledger = Arc::new(Ledger::default());
        let flusher = tokio::spawn(flush_loop(pool.clone(), ledger.clone(), stop.subscribe()));
        Ok(PgStore {
            pool,
            stop,
            listener: Mutex::new(Some(listener)),
            ledger,
            flusher: Mutex::new(Some(flusher)),
        })
    }

    /// Checks a database URL without connecting (its TLS parameters, its syntax).
    pub(crate) fn check_url(url: &str) -> Result<(), StoreError> {
        tls::check(url)
    }

    /// A pooled connection.
    async fn client(&self) -> Result<deadpool_postgres::Client, StoreError> {
        self.pool
            .get()
            .await
            .map_err(|e| connect_error("taking a connection from the pool".into(), &e))
    }
}

/// Flushes `ledger` every [`usage::FLUSH_EVERY`] until `stop`, then once more.
async fn flush_loop(pool: Pool, ledger: Arc<Ledger>, mut stop: watch::Receiver<bool>) {
    loop {
        let stopping = tokio::select! {
            _ = tokio::time::sleep(usage::FLUSH_EVERY) => false,
            _ = stop.wait_for(|stop| *stop) => true,
        };
        let flushed = match pool.get().await {
            Ok(client) => ledger.flush(&client).await,
            Err(e) => Err(StoreError::with_source("flushing stored bytes", e)),
        };
        if let Err(e) = flushed {
            tracing::warn!(error = %e, "cannot flush stored bytes; retrying");
        }
        if stopping {
            return;
        }
    }
}

#[async_trait]
impl Store for PgStore {
    async fn upsert_service(
        &self,
        tenant: Option<&str>,
        service: &Service,
    ) -> Result<(), StoreError> {
        let body = to_json(service)?;
        let client = self.client().await?;
        execute(
            &client,
            "saving a service",
            "INSERT INTO services (id, tenant, name, body) VALUES ($1, $2, $3, $4)
             ON CONFLICT (id) DO UPDATE SET tenant = excluded.tenant,
                 name = excluded.name, body = excluded.body",
            &[&service.id, &tenant, &service.name, &body],
        )
        .await?;
        Ok(())
    }

    async fn create_service(&self, tenant: &str, service: &Service) -> Result<Created, StoreError> {
        const WHAT: &str = "saving a service";
        let body = to_json(service)?;
        let client = self.client().await?;
        // A global name is checked in the statement; a tenant's own by the unique index,
        // which also settles two creates racing on different servers.
        let rows = query(
            &client,
            WHAT,
            "WITH taken AS (
                 SELECT body FROM services
                 WHERE (tenant IS NULL OR tenant = $2) AND name = $3 AND NOT retired
                 ORDER BY seq LIMIT 1
             ), inserted AS (
                 INSERT INTO services (id, tenant, name, body)
                 SELECT $1, $2, $3, $4 WHERE NOT EXISTS (SELECT 1 FROM taken)
                 ON CONFLICT (tenant, name) WHERE tenant IS NOT NULL AND NOT retired
                 DO NOTHING
                 RETURNING id
             )
             SELECT (SELECT count(*) FROM inserted), (SELECT body FROM taken)",
            &[&service.id, &tenant, &service.name, &body],
        )
        .await?;
        let row = rows
            .first()
            .ok_or_else(|| StoreError::new("no answer to an insert"))?;
        let inserted: i64 = get(row, 0, WHAT)?;
        let taken: Option<&str> = get(row, 1, WHAT)?;
        match (inserted, taken) {
            (1, _) => Ok(Created::Stored),
            (_, Some(body)) => Ok(Created::NameTaken(Box::new(from_json(body)?))),
            // Lost a race to a create that committed meanwhile: that one has the name.
            _ => self
                .find_service(tenant, &service.name)
                .await?
                .map(|taken| Created::NameTaken(Box::new(taken)))
                .ok_or_else(|| StoreError::new("a service name is taken by no service")),
        }
    }

    async fn retire_service(&self, tenant: &str, id_or_name: &str) -> Result<Retired, StoreError> {
        const WHAT: &str = "retiring a service";
        let client = self.client().await?;
        let rows = query(
            &client,
            WHAT,
            "SELECT tenant, id FROM services
             WHERE (tenant IS NULL OR tenant = $1)
               AND (id = $2 OR (name = $2 AND NOT retired))
             ORDER BY (id = $2) DESC, seq LIMIT 1",
            &[&tenant, &id_or_name],
        )
        .await?;
        let Some(row) = rows.first() else {
            return Ok(Retired::Missing);
        };
        let owner: Option<&str> = get(row, 0, WHAT)?;
        if owner.is_none() {
            return Ok(Retired::Global);
        }
        let id: String = get(row, 1, WHAT)?;
        execute(
            &client,
            WHAT,
            "UPDATE services SET retired = true WHERE id = $1",
            &[&id],
        )
        .await?;
        Ok(Retired::Done(id))
    }

    async fn is_retired(&self, tenant: &str, id: &str) -> Result<bool, StoreError> {
        const WHAT: &str = "reading a service";
        let client = self.client().await?;
        let rows = query(
            &client,
            WHAT,
            "SELECT 1 FROM services WHERE tenant = $1 AND id = $2 AND retired",
            &[&tenant, &id],
        )
        .await?;
        Ok(!rows.is_empty())
    }

    async fn find_service(
        &self,
        tenant: &str,
        id_or_name: &str,
    ) -> Result<Option<Service>, StoreError> {
        const WHAT: &str = "reading a service";
        let client = self.client().await?;
        // An id match wins over a name match; among names, the oldest service.
        let rows = query(
            &client,
            WHAT,
            "SELECT body FROM services
             WHERE (tenant IS NULL OR tenant = $1) AND (id = $2 OR name = $2) AND NOT retired
             ORDER BY (id = $2) DESC, seq LIMIT 1",
            &[&tenant, &id_or_name],
        )
        .await?;
        rows.first()
            .map(|row| from_json(get(row, 0, WHAT)?))
            .transpose()
    }

    async fn list_services(
        &self,
        tenant: &str,
        query: &ServiceQuery,
    ) -> Result<Vec<(i64, Service)>, StoreError> {
        const WHAT: &str = "listing services";
        let client = self.client().await?;
        let rows = self::query(
            &client,
            WHAT,
            "SELECT seq, body FROM services
             WHERE (tenant IS NULL OR tenant = $1) AND seq > $2
               AND ($3::text IS NULL OR name = $3) AND NOT retired
             ORDER BY seq LIMIT $4",
            &[
                &tenant,
                &query.after.unwrap_or(0),
                &query.name,
                &limit(query.limit),
            ],
        )
        .await?;
        rows.iter().map(|row| seq_and_body(row, WHAT)).collect()
    }

    async fn insert_job(
        &self,
        new: NewJob<'_>,
        events: Vec<NewEvent>,
    ) -> Result<Inserted, StoreError> {
        const WHAT: &str = "inserting a job";
        let job = new.job;
        let used = self.ledger.used(new.tenant);
        if used >= new.max_stored_bytes {
            return Ok(Inserted::OverQuota { used });
        }
        let body = to_json(job)?;
        let labels = to_json(&job.labels)?;
        let events = EventColumns::new(events)?;
        let client = self.client().await?;
        let rows = query(
            &client,
            WHAT,
            "SELECT * FROM jobwire_insert_job($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11,
                 $12, $13, $14, $15, $16, $17, $18, $19)",
            &[
                &new.tenant,
                &job.id,
                &job.service_id,
                &job.status.as_str(),
                &labels,
                &body,
                &finished_at(job),
                &new.owner,
                &new.lease.as_secs_f64(),
                &limit(new.max_in_flight),
                &new.key.map(|k| k.key),
                &new.key.map(|k| k.fingerprint),
                &job.created_at,
                &events.job_ids,
                &events.service_ids,
                &events.kinds,
                &events.data,
                &events.created_at,
                &new.key.and_then(|k| k.answered).map(i32::from),
            ],
        )
        .await?;
        let row = rows
            .first()
            .ok_or_else(|| StoreError::new("inserting a job: no outcome"))?;
        let outcome: &str = get(row, 0, WHAT)?;
        match outcome {
            "stored" => {
                self.ledger
                    .charge(new.tenant, bytes_of(&body) + events.bytes);
                Ok(Inserted::Stored(events.ids(get(row, 1, WHAT)?)))
            }
            "at_limit" => Ok(Inserted::AtLimit),
            "key_taken" => {
                let status: Option<i32> = get(row, 4, WHAT)?;
                Ok(Inserted::KeyTaken(KeyRecord {
                    fingerprint: get(row, 2, WHAT)?,
                    job_id: get(row, 3, WHAT)?,
                    status: status.map(u16::try_from).transpose().map_err(err(WHAT))?,
                }))
            }
            other => Err(StoreError::new(format!(
                "inserting a job: unknown outcome {other:?}"
            ))),
        }
    }

    async fn find_key(&self, tenant: &str, key: &str) -> Result<Option<KeyRecord>, StoreError> {
        let client = self.client().await?;
        read_key(&client, tenant, key).await
    }

    async fn set_key_status(&self, tenant: &str, key: &str, status: u16) -> Result<(), StoreError> {
        let client = self.client().await?;
        execute(
            &client,
            "recording an answer's status",
            "UPDATE idempotency_keys SET status = $1 WHERE tenant = $2 AND key = $3",
            &[&i32::from(status), &tenant, &key],
        )
        .await?;
        Ok(())
    }

    async fn update_job(
        &self,
        tenant: &str,
        job: &Job,
        expected: Expected<'_>,
        events: Vec<NewEvent>,
    ) -> Result<Option<Vec<i64>>, StoreError> {
        const WHAT: &str = "updating a job";
        let body = to_json(job)?;
        let labels = to_json(&job.labels)?;
        let events = EventColumns::new(events)?;
        let client = self.client().await?;
        let rows = query(
            &client,
            WHAT,
            "SELECT * FROM jobwire_update_job($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11,
                 $12, $13)",
            &[
                &tenant,
                &job.id,
                &job.status.as_str(),
                &body,
                &finished_at(job),
                &labels,
                &expected.status.as_str(),
                &expected.owner,
                &events.job_ids,
                &events.service_ids,
                &events.kinds,
                &events.data,
                &events.created_at,
            ],
        )
        .await?;
        let changed = changed_and_ids(&rows, &events, WHAT)?;
        if changed.is_some() {
            let was: i64 = rows.first().map_or(Ok(0), |row| get(row, 2, WHAT))?;
            self.ledger
                .charge(tenant, bytes_of(&body) - was + events.bytes);
        }
        Ok(changed)
    }

    async fn append_events(
        &self,
        tenant: &str,
        job_id: &str,
        expected: Expected<'_>,
        events: Vec<NewEvent>,
    ) -> Result<Option<Vec<i64>>, StoreError> {
        const WHAT: &str = "recording events";
        let events = EventColumns::new(events)?;
        let client = self.client().await?;
        let rows = query(
            &client,
            WHAT,
            "SELECT * FROM jobwire_append_events($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            &[
                &tenant,
                &job_id,
                &expected.status.as_str(),
                &expected.owner,
                &events.job_ids,
                &events.service_ids,
                &events.kinds,
                &events.data,
                &events.created_at,
            ],
        )
        .await?;
        let changed = changed_and_ids(&rows, &events, WHAT)?;
        if changed.is_some() {
            self.ledger.charge(tenant, events.bytes);
        }
        Ok(changed)
    }

    async fn get_job(&self, tenant: &str, id: &str) -> Result<Option<(Job, i64)>, StoreError> {
        const WHAT: &str = "reading a job";
        let client = self.client().await?;
        // One statement, one snapshot: the position is the last id committed when the
        // job was read.
        let rows = query(
            &client,
            WHAT,
            "SELECT body, (SELECT last FROM event_counter) FROM jobs
             WHERE id = $1 AND tenant = $2",
            &[&id, &tenant],
        )
        .await?;
        let Some(row) = rows.first() else {
            return Ok(None);
        };
        let body: &str = get(row, 0, WHAT)?;
        Ok(Some((from_json(body)?, get(row, 1, WHAT)?)))
    }

    async fn list_jobs(
        &self,
        tenant: &str,
        query: &JobQuery,
    ) -> Result<Vec<(i64, Job)>, StoreError> {
        const WHAT: &str = "listing jobs";
        // One containment test per wanted label (an object would merge repeated keys).
        let labels: Vec<String> = query
            .labels
            .iter()
            .map(|(k, v)| {
                let one: std::collections::BTreeMap<&str, &str> = [(k.as_str(), v.as_str())].into();
                to_json(&one)
            })
            .collect::<Result<_, _>>()?;
        let client = self.client().await?;
        let rows = self::query(
            &client,
            WHAT,
            "SELECT seq, body FROM jobs
             WHERE tenant = $1 AND seq < $2
               AND ($3::text IS NULL OR service_id = $3)
               AND ($4::text IS NULL OR status = $4)
               AND labels @> ALL ($5::text[]::jsonb[])
             ORDER BY seq DESC LIMIT $6",
            &[
                &tenant,
                &query.before.unwrap_or(i64::MAX),
                &query.service_id,
                &query.status,
                &labels,
                &limit(query.limit),
            ],
        )
        .await?;
        rows.iter().map(|row| seq_and_body(row, WHAT)).collect()
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
        let client = self.client().await?;
        let renewed = execute(
            &client,
            "renewing leases",
            "UPDATE jobs SET lease_until = now() + $2::float8 * interval '1 second'
             WHERE owner = $1 AND id = ANY($3) AND status IN ('queued', 'running')",
            &[&owner, &lease.as_secs_f64(), &jobs],
        )
        .await?;
        Ok(count(renewed))
    }

    async fn claim_orphans(
        &self,
        owner: &str,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<(String, Job)>, StoreError> {
        const WHAT: &str = "claiming orphaned jobs";
        let client = self.client().await?;
        // SKIP LOCKED: servers claiming at once take different jobs instead of queueing;
        // a row updated meanwhile is re-checked against the lease condition when locked.
        let rows = query(
            &client,
            WHAT,
            "WITH orphans AS MATERIALIZED (
                 SELECT seq FROM jobs
                 WHERE status IN ('queued', 'running') AND lease_until <= now()
                 ORDER BY seq LIMIT $3
                 FOR UPDATE SKIP LOCKED
             )
             UPDATE jobs SET owner = $1, lease_until = now() + $2::float8 * interval '1 second'
             FROM orphans WHERE jobs.seq = orphans.seq
             RETURNING jobs.seq, jobs.tenant, jobs.body",
            &[&owner, &lease.as_secs_f64(), &self::limit(limit)],
        )
        .await?;
        let mut claimed = rows
            .iter()
            .map(|row| {
                let seq: i64 = get(row, 0, WHAT)?;
                let tenant: String = get(row, 1, WHAT)?;
                let body: &str = get(row, 2, WHAT)?;
                Ok((seq, tenant, from_json::<Job>(body)?))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        // RETURNING has no order.
        claimed.sort_by_key(|(seq, _, _)| *seq);
        Ok(claimed
            .into_iter()
            .map(|(_, tenant, job)| (tenant, job))
            .collect())
    }

    async fn release_leases(&self, owner: &str) -> Result<usize, StoreError> {
        let client = self.client().await?;
        let released = execute(
            &client,
            "releasing leases",
            "UPDATE jobs SET lease_until = '-infinity'
             WHERE owner = $1 AND status IN ('queued', 'running')",
            &[&owner],
        )
        .await?;
        Ok(count(released))
    }

    async fn events(&self, tenant: &str, query: &EventQuery) -> Result<Vec<Event>, StoreError> {
        let client = self.client().await?;
        let rows = self::query(
            &client,
            "reading events",
            "SELECT seq, job_id, service_id, kind, data, created_at FROM events
             WHERE tenant = $1 AND seq > $2
               AND ($3::text IS NULL OR service_id = $3)
               AND (cardinality($4::text[]) = 0 OR job_id = ANY ($4::text[]))
             ORDER BY seq LIMIT $5",
            &[
                &tenant,
                &query.after,
                &query.service_id,
                &query.jobs,
                &limit(query.limit),
            ],
        )
        .await?;
        rows.iter().map(|row| event_from(row, 0)).collect()
    }

    async fn event_floor(&self, tenant: &str) -> Result<i64, StoreError> {
        let client = self.client().await?;
        let rows = query(
            &client,
            "reading an event floor",
            "SELECT seq FROM event_floors WHERE tenant = $1",
            &[&tenant],
        )
        .await?;
        match rows.first() {
            Some(row) => get(row, 0, "reading an event floor"),
            None => Ok(0),
        }
    }

    async fn prune(&self, cutoffs: &Cutoffs) -> Result<Pruned, StoreError> {
        let mut client = self.client().await?;
        let tx = client
            .transaction()
            .await
            .map_err(err("starting a transaction"))?;
        // One pass at a time across servers: two would only wait on each other's rows.
        execute(
            &tx,
            "locking the retention pass",
            "SELECT pg_advisory_xact_lock(hashtext('jobwire-prune'))",
            &[],
        )
        .await?;
        let keys = execute(
            &tx,
            "pruning idempotency keys",
            "DELETE FROM idempotency_keys WHERE created_at < $1",
            &[&cutoffs.keys_before],
        )
        .await?;
        // The events of jobs finished before the events' cutoff (each job once, by
        // events_kept), and jobs finished before the jobs' cutoff, whole; at most
        // PRUNE_BATCH of each per pass, so no pass holds its locks long. The tenants'
        // floors rise to the highest id removed; what leaves is taken off their usage.
        let rows = query(
            &tx,
            "pruning events and jobs",
            "WITH doomed AS (
                 DELETE FROM jobs WHERE seq IN (
                     SELECT seq FROM jobs
                     WHERE finished_at IS NOT NULL AND finished_at < $2 LIMIT $3)
                 RETURNING id, tenant, bytes
             ), old_keys AS (
                 DELETE FROM idempotency_keys k USING doomed
                 WHERE k.tenant = doomed.tenant AND k.job_id = doomed.id
             ), prunable AS (
                 UPDATE jobs SET events_kept = false WHERE seq IN (
                     SELECT seq FROM jobs
                     WHERE events_kept AND finished_at < $1 LIMIT $3)
                 RETURNING id, tenant
             ), removed AS (
                 DELETE FROM events e USING (
                     SELECT id, tenant FROM prunable
                     UNION SELECT id, tenant FROM doomed) p
                 WHERE e.job_id = p.id AND e.tenant = p.tenant
                 RETURNING e.tenant, e.seq, octet_length(e.data) AS bytes
             ), floors AS (
                 INSERT INTO event_floors (tenant, seq)
                 SELECT tenant, max(seq) FROM removed GROUP BY tenant
                 ON CONFLICT (tenant) DO UPDATE
                     SET seq = greatest(event_floors.seq, excluded.seq)
             ), freed AS (
                 SELECT tenant, sum(bytes) AS bytes FROM (
                     SELECT tenant, bytes FROM removed
                     UNION ALL SELECT tenant, bytes FROM doomed) f
                 GROUP BY tenant
             ), usage AS (
                 -- Upserted, and never clamped here: a server may not have flushed what
                 -- it charged for these yet, and its flush then nets out to the truth.
                 INSERT INTO tenant_usage (tenant, bytes)
                 SELECT tenant, -bytes FROM freed
                 ON CONFLICT (tenant) DO UPDATE SET bytes = tenant_usage.bytes + excluded.bytes
             )
             SELECT (SELECT count(*) FROM removed), (SELECT count(*) FROM doomed)",
            &[&cutoffs.events_before, &cutoffs.jobs_before, &PRUNE_BATCH],
        )
        .await?;
        let (events, jobs): (i64, i64) = match rows.first() {
            Some(row) => (get(row, 0, "pruning events")?, get(row, 1, "pruning jobs")?),
            None => (0, 0),
        };
        tx.commit()
            .await
            .map_err(err("committing a retention pass"))?;
        Ok(Pruned {
            events: usize::try_from(events).unwrap_or(0),
            keys: count(keys),
            jobs: usize::try_from(jobs).unwrap_or(0),
        })
    }

    fn shared(&self) -> bool {
        true
    }

    async fn close(&self) -> Result<(), StoreError> {
        // Everything is committed already; the listener and the ledger's last flush
        // are what is in flight.
        self.stop.send_replace(true);
        let flusher = self
            .flusher
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(flusher) = flusher {
            if tokio::time::timeout(CLOSE_WAIT, flusher).await.is_err() {
                tracing::warn!("the last flush of stored bytes did not finish");
            }
        }
        let listener = self
            .listener
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(mut listener) = listener {
            // It stops at once unless a read is stuck on an unreachable database.
            match tokio::time::timeout(CLOSE_WAIT, &mut listener).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "the PostgreSQL event listener failed"),
                Err(_) => {
                    tracing::warn!("the PostgreSQL event listener did not stop; aborting it");
                    listener.abort();
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::pg_cluster::{PgCluster, Tls, SCRAM_ROLE};
    use super::*;
    use crate::store::EventKind;
    use jobwire_core::JobStatus;
    use std::collections::HashSet;
    use std::sync::atomic::{AtomicBool, Ordering};

    const LONG: Duration = Duration::from_secs(3600);

    fn new_bus() -> Arc<EventBus> {
        Arc::new(EventBus::new(4096))
    }

    fn log(job_id: &str) -> NewEvent {
        NewEvent {
            job_id: job_id.into(),
            service_id: "svc_a".into(),
            kind: EventKind::Log,
            data: crate::store::EventData::of(
                &serde_json::json!({ "job_id": job_id, "line": "x" }),
            ),
            created_at: "2026-01-01T00:00:00.000000Z".into(),
        }
    }

    /// Stores a queued job `id` of `tenant` held by `srv`, with no events.
    async fn job(store: &PgStore, tenant: &str, id: &str) {
        let job = Job::new(id, "svc_a", JobStatus::Queued);
        let new = NewJob {
            tenant,
            job: &job,
            key: None,
            max_in_flight: 100_000,
            max_stored_bytes: u64::MAX,
            owner: "srv",
            lease: LONG,
        };
        assert!(matches!(
            store.insert_job(new, vec![]).await.unwrap(),
            Inserted::Stored(_)
        ));
    }

    /// Appends to a queued job held by `srv`.
    async fn append(store: &PgStore, tenant: &str, id: &str, events: Vec<NewEvent>) -> Vec<i64> {
        let queued = Expected {
            status: &JobStatus::Queued,
            owner: Some("srv"),
        };
        store
            .append_events(tenant, id, queued, events)
            .await
            .unwrap()
            .expect("the job is queued")
    }

    /// The ids of every stored event of `tenant`, oldest first.
    async fn stored_ids(store: &PgStore, tenant: &str) -> Vec<i64> {
        let query = EventQuery {
            limit: 100_000,
            ..Default::default()
        };
        let events = store.events(tenant, &query).await.unwrap();
        events.into_iter().map(|e| e.seq).collect()
    }

    #[tokio::test]
    async fn postgres_store_keeps_the_contract() {
        let Some(cluster) = PgCluster::start() else {
            return;
        };
        let url = cluster.database("contract");
        let bus = new_bus();
        let store = PgStore::connect(&url, Arc::clone(&bus)).await.unwrap();
        // sslmode=prefer (the default), and the server offers no TLS: plain text.
        let client = store.client().await.unwrap();
        assert!(!encrypted(&client, backend(&client).await).await);
        drop(client);
        super::super::contract::run(&store, &bus).await;
        store.close().await.unwrap();
        // Opening again migrates nothing and starts from the recorded events.
        let again = new_bus();
        let reopened = PgStore::connect(&url, Arc::clone(&again)).await.unwrap();
        assert_eq!(again.latest(), bus.latest());
        reopened.close().await.unwrap();
    }

    /// Two servers on one database: concurrent writes from both get ids in commit
    /// order, and each server publishes every event, its own and the other's, in id
    /// order.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn two_servers_publish_every_event_in_commit_order() {
        let Some(cluster) = PgCluster::start() else {
            return;
        };
        let url = cluster.database("shared");
        let (bus_a, bus_b) = (new_bus(), new_bus());
        // Started together: the migration lock lets one of them create the schema.
        let (a, b) = tokio::join!(
            PgStore::connect(&url, Arc::clone(&bus_a)),
            PgStore::connect(&url, Arc::clone(&bus_b))
        );
        let (a, b) = (Arc::new(a.unwrap()), Arc::new(b.unwrap()));
        let mut live_a = bus_a.subscribe("tp");
        let mut live_b = bus_b.subscribe("tp");

        // Meanwhile every snapshot must see a prefix of the ids: were ids not in commit
        // order, a reader would at some point see a later id without an earlier one.
        let writing = Arc::new(AtomicBool::new(true));
        let reader = tokio::spawn({
            let (a, writing) = (Arc::clone(&a), Arc::clone(&writing));
            async move {
                let mut reads = 0;
                while writing.load(Ordering::Acquire) {
                    let ids = stored_ids(&a, "tp").await;
                    if let Some(first) = ids.first() {
                        assert_eq!(*first, 1);
                    }
                    assert!(
                        ids.windows(2).all(|w| w[1] == w[0] + 1),
                        "a snapshot saw a later id without an earlier one: {ids:?}"
                    );
                    reads += 1;
                }
                reads
            }
        });

        for i in 0..200 {
            job(&a, "tp", &format!("job_{i}")).await;
        }
        let writers: Vec<_> = (0..200)
            .map(|i| {
                let store = Arc::clone(if i % 2 == 0 { &a } else { &b });
                tokio::spawn(async move {
                    let job = format!("job_{i}");
                    let events = (0..1 + i % 3).map(|_| log(&job)).collect();
                    append(&store, "tp", &job, events).await
                })
            })
            .collect();
        let mut given = Vec::new();
        for writer in writers {
            let ids = writer.await.unwrap();
            assert!(
                ids.windows(2).all(|w| w[1] == w[0] + 1),
                "one call, one run"
            );
            given.extend(ids);
        }
        writing.store(false, Ordering::Release);
        assert!(reader.await.unwrap() > 0);

        given.sort_unstable();
        let stored = stored_ids(&a, "tp").await;
        assert_eq!(given, stored);
        let expected: Vec<i64> = (1..=stored.len() as i64).collect();
        assert_eq!(stored, expected, "no gaps");

        for (name, live) in [("a", &mut live_a), ("b", &mut live_b)] {
            let mut published = Vec::new();
            while published.len() < stored.len() {
                let event = tokio::time::timeout(Duration::from_secs(10), live.recv())
                    .await
                    .unwrap_or_else(|_| panic!("server {name}: published within 10 s"))
                    .unwrap();
                published.push(event.seq);
            }
            assert_eq!(published, stored, "server {name} publishes in id order");
        }
        assert_eq!(bus_a.latest(), *stored.last().unwrap());
        assert_eq!(bus_b.latest(), bus_a.latest());
        a.close().await.unwrap();
        b.close().await.unwrap();
    }

    /// The pid of the backend serving the listener's `LISTEN`, other than `not`.
    async fn listen_backend(store: &PgStore, not: i32) -> i32 {
        let client = store.client().await.unwrap();
        for _ in 0..100 {
            let row = client
                .query_opt(
                    "SELECT pid FROM pg_stat_activity
                     WHERE query = 'LISTEN jobwire_events' AND pid <> $1",
                    &[&not],
                )
                .await
                .unwrap();
            if let Some(row) = row {
                return row.get(0);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("no LISTEN connection within 10 s");
    }

    /// The id of the next event `live` receives, within 10 s.
    async fn next(live: &mut tokio::sync::broadcast::Receiver<crate::bus::LiveEvent>) -> i64 {
        tokio::time::timeout(Duration::from_secs(10), live.recv())
            .await
            .expect("published within 10 s")
            .unwrap()
            .seq
    }

    /// A lost `LISTEN` connection costs no event: polling covers the gap and the
    /// listener reconnects.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn keeps_publishing_when_the_listen_connection_drops() {
        let Some(cluster) = PgCluster::start() else {
            return;
        };
        let url = cluster.database("reconnect");
        let bus = new_bus();
        let store = PgStore::connect(&url, Arc::clone(&bus)).await.unwrap();
        let mut live = bus.subscribe("tr");
        let first = listen_backend(&store, 0).await;
        let client = store.client().await.unwrap();
        client
            .execute("SELECT pg_terminate_backend($1)", &[&first])
            .await
            .unwrap();
        job(&store, "tr", "job_r").await;
        let ids = append(&store, "tr", "job_r", vec![log("job_r")]).await;
        assert_eq!(next(&mut live).await, ids[0]);

        let second = listen_backend(&store, first).await;
        assert_ne!(second, first);
        let ids = append(&store, "tr", "job_r", vec![log("job_r")]).await;
        assert_eq!(next(&mut live).await, ids[0]);
        drop(client);
        store.close().await.unwrap();
    }

    /// Servers claiming orphans at once never get the same job; a database newer than
    /// the code is refused.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_claims_never_overlap() {
        let Some(cluster) = PgCluster::start() else {
            return;
        };
        let url = cluster.database("claims");
        let a = Arc::new(PgStore::connect(&url, new_bus()).await.unwrap());
        let b = Arc::new(PgStore::connect(&url, new_bus()).await.unwrap());
        const JOBS: usize = 60;
        for i in 0..JOBS {
            let mut job = Job::new(format!("job_{i}"), "svc_a", JobStatus::Queued);
            job.created_at = "2026-01-01T00:00:00.000000Z".into();
            let new = NewJob {
                tenant: ["t1", "t2", "t3"][i % 3],
                job: &job,
                key: None,
                max_in_flight: 1000,
                max_stored_bytes: u64::MAX,
                owner: "srv_gone",
                lease: Duration::ZERO,
            };
            let stored = a.insert_job(new, vec![]).await.unwrap();
            assert!(matches!(stored, Inserted::Stored(_)));
        }

        let claimers: Vec<_> = (0..8)
            .map(|i| {
                let store = Arc::clone(if i % 2 == 0 { &a } else { &b });
                tokio::spawn(async move {
                    let owner = format!("srv_{i}");
                    let mut mine = Vec::new();
                    loop {
                        let claimed = store.claim_orphans(&owner, LONG, 3).await.unwrap();
                        if claimed.is_empty() {
                            break;
                        }
                        mine.extend(claimed.into_iter().map(|(_, job)| job.id));
                    }
                    let held = store.renew_leases(&owner, &mine, LONG).await.unwrap();
                    assert_eq!(held, mine.len(), "{owner} holds what it claimed");
                    mine
                })
            })
            .collect();
        let mut all = Vec::new();
        for claimer in claimers {
            all.extend(claimer.await.unwrap());
        }
        let distinct: HashSet<&String> = all.iter().collect();
        assert_eq!(distinct.len(), all.len(), "a job was claimed twice");
        assert_eq!(all.len(), JOBS, "every orphan was claimed");

        // A database migrated by a newer server is refused.
        let client = a.client().await.unwrap();
        client
            .execute("UPDATE jobwire_schema SET version = version + 1", &[])
            .await
            .unwrap();
        drop(client);
        let refused = PgStore::connect(&url, new_bus()).await.unwrap_err();
        assert!(refused.to_string().contains("newer"), "{refused}");
        a.close().await.unwrap();
        b.close().await.unwrap();
    }

    /// Whether the backend `pid` speaks TLS with its client.
    async fn encrypted(client: &impl GenericClient, pid: i32) -> bool {
        let row = client
            .query_one("SELECT ssl FROM pg_stat_ssl WHERE pid = $1", &[&pid])
            .await
            .unwrap();
        row.get(0)
    }

    /// The pid of the backend serving `client`.
    async fn backend(client: &impl GenericClient) -> i32 {
        let row = client
            .query_one("SELECT pg_backend_pid()", &[])
            .await
            .unwrap();
        row.get(0)
    }

    /// Why a store cannot connect to `url`.
    async fn refused(url: &str) -> String {
        match PgStore::connect(url, new_bus()).await {
            Ok(store) => {
                store.close().await.unwrap();
                panic!("{url} connected");
            }
            Err(e) => {
                eprintln!("refused as expected: {e}");
                e.to_string()
            }
        }
    }

    /// One cluster that speaks TLS only: each `sslmode` connects, checks the certificate,
    /// or is refused as libpq's would, the pool's and the listener's connections alike,
    /// and the whole contract holds over TLS.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn connects_over_tls_as_sslmode_says() {
        let Some(cluster) = PgCluster::start_with(Tls::Only) else {
            return;
        };
        let url = cluster.database("tls");
        let port = cluster.port();
        let root = cluster.root_cert().display().to_string();
        let other = cluster.other_root_cert().display().to_string();

        // require: encrypted, with no certificate check (the test CA is known to no one).
        let store = PgStore::connect(&format!("{url}?sslmode=require"), new_bus())
            .await
            .unwrap();
        let client = store.client().await.unwrap();
        assert!(encrypted(&client, backend(&client).await).await);
        let listen = listen_backend(&store, 0).await;
        assert!(
            encrypted(&client, listen).await,
            "the LISTEN connection is encrypted too"
        );
        client
            .batch_execute(&format!(
                "CREATE ROLE {SCRAM_ROLE} LOGIN SUPERUSER PASSWORD 'secret'"
            ))
            .await
            .unwrap();
        drop(client);
        store.close().await.unwrap();

        // prefer, the default: TLS, as the server offers it.
        let store = PgStore::connect(&url, new_bus()).await.unwrap();
        let client = store.client().await.unwrap();
        assert!(encrypted(&client, backend(&client).await).await);
        drop(client);
        store.close().await.unwrap();

        // verify-full with the root that signed the server's certificate: by its IP
        // address and by its DNS name; and channel binding (SCRAM-SHA-256-PLUS) works
        // over the connector.
        for url in [
            format!("{url}?sslmode=verify-full&sslrootcert={root}"),
            format!(
                "postgres://postgres@localhost:{port}/tls?hostaddr=127.0.0.1\
                 &sslmode=verify-full&sslrootcert={root}"
            ),
            format!(
                "postgres://{SCRAM_ROLE}:secret@127.0.0.1:{port}/tls?channel_binding=require\
                 &sslmode=verify-full&sslrootcert={root}"
            ),
        ] {
            let store = PgStore::connect(&url, new_bus()).await.unwrap();
            let client = store.client().await.unwrap();
            assert!(encrypted(&client, backend(&client).await).await, "{url}");
            drop(client);
            store.close().await.unwrap();
        }

        // A certificate the given root did not sign, or the system's roots, which do not
        // know the test CA.
        let wrong_root = refused(&format!("{url}?sslmode=verify-full&sslrootcert={other}")).await;
        let expected = format!("(sslmode=verify-full, root certificates from {other})");
        assert!(wrong_root.contains(&expected), "{wrong_root}");
        assert!(wrong_root.contains("UnknownIssuer"), "{wrong_root}");
        let system = refused(&format!("{url}?sslmode=verify-ca")).await;
        assert!(
            system.contains("UnknownIssuer") || system.contains("no usable root certificate"),
            "{system}"
        );
        assert!(system.contains("system's"), "{system}");
        // libpq's rule: a root certificate makes require check the chain.
        let required = refused(&format!("{url}?sslmode=require&sslrootcert={other}")).await;
        assert!(required.contains("UnknownIssuer"), "{required}");

        // A host name the certificate is not for: refused by verify-full, not verify-ca.
        let renamed = format!(
            "postgres://postgres@db.invalid:{port}/tls?hostaddr=127.0.0.1&sslrootcert={root}"
        );
        let wrong_name = refused(&format!("{renamed}&sslmode=verify-full")).await;
        assert!(
            wrong_name.contains("certificate not valid for name \"db.invalid\""),
            "{wrong_name}"
        );
        let store = PgStore::connect(&format!("{renamed}&sslmode=verify-ca"), new_bus())
            .await
            .unwrap();
        store.close().await.unwrap();

        // disable, where the server takes TLS connections only.
        let plain = refused(&format!("{url}?sslmode=disable")).await;
        assert!(plain.contains("(sslmode=disable)"), "{plain}");
        assert!(plain.contains("no encryption"), "{plain}");

        // A bad sslmode is refused before any connection.
        let bad = refused(&format!("{url}?sslmode=verify")).await;
        assert!(bad.contains("sslmode must be disable, prefer"), "{bad}");

        // The whole contract, over TLS with every check.
        let url = cluster.database("contract");
        let bus = new_bus();
        let store = PgStore::connect(
            &format!("{url}?sslmode=verify-full&sslrootcert={root}"),
            Arc::clone(&bus),
        )
        .await
        .unwrap();
        super::super::contract::run(&store, &bus).await;
        store.close().await.unwrap();
    }
}
