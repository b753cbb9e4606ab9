//! [`PgStore`]: the store in a PostgreSQL database, which several server processes may
//! share.
//!
//! Rows keep the model as JSON text in `body` and copy out the columns that queries
//! filter on, like the SQLite store. What differs is what several processes need:
//!
//! - **Event ids in commit order, numbered after commit.** A sequence handing out ids at
//!   insert time would not do: a transaction that took id 7 may commit after one that
//!   took id 8, and a reader could see 8 without 7 and later skip 7. A counter row
//!   updated as the last statement before commit (what this store did first) puts ids
//!   in commit order, but its row lock queues every event-writing transaction of every
//!   server until the previous one's commit is durable: one flush at a time for the
//!   whole database. So a writer now inserts its events into `event_inbox`, with no id
//!   and an insertion key (`pos`, an identity column), and takes no shared lock for
//!   them. One *sequencer* per database gives the ids: `jobwire_number_events`
//!   (migration 5), in one short transaction, moves the events it sees committed from
//!   the inbox to `events`, numbered after `event_counter.last` in insertion order,
//!   advances the counter and sends `NOTIFY jobwire_events`. Readers (the listener,
//!   `events`) read `events` only, where every event has its id. (Moving rows rather
//!   than setting `seq` in place: an update would touch every index of `events` again
//!   and leave a dead row behind in a partial index the sequencer scans.) Since numbering transactions follow one another and each numbers only
//!   what is committed, every snapshot sees a prefix of the ids, and an event that
//!   commits late is numbered late — after everything numbered before it — so a reader
//!   resuming from the last id it saw never skips it and never sees an id twice.
//!   (`get_job`'s position is the counter in the job's snapshot: every later change of
//!   the job is numbered above it; a change committed just before the read may be too,
//!   and is then delivered once more to a stream started from the position, never
//!   lost.) The alternative, reading only below the oldest running transaction's
//!   snapshot (`pg_snapshot_xmin`), needs ids given at insert time to be compared with
//!   transaction ids, and one slow transaction anywhere in the database (a vacuum, a
//!   report) would hold every stream back; the sequencer is held back only by itself.
//! - **Electing the sequencer.** Every server runs a candidate on a connection of its
//!   own (`application_name` `jobwire-sequencer`) that tries the session-level advisory
//!   lock `jobwire-sequencer` every 200 ms; the holder numbers, woken by its own
//!   writers, by `NOTIFY jobwire_unnumbered` from the other servers' writers (sent
//!   after their commit, asynchronously committed: a lost wake-up costs a delay), and
//!   every 200 ms in any case. A write returns once its events are numbered: the
//!   listener, which reads `pos` with each event, tells the writer its ids.
//! - **Failure cases.** *The sequencer dies* (its process, its connection, its backend
//!   killed): its session ends, so its lock goes and its open numbering transaction
//!   rolls back whole; another server's candidate (or its own, reconnected) takes the
//!   lock within 200 ms and numbers what is unnumbered from the committed counter on —
//!   nothing numbered twice, nothing skipped. Two sessions numbering at once cannot
//!   happen while the lock holds, and would not harm either: the step locks the
//!   counter row first and reads the unnumbered events in a new snapshot after it. If
//!   the holder's backend lingers (a network partition), numbering pauses until
//!   PostgreSQL ends that session; writes wait (up to 30 s, then report a failure,
//!   their data committed). *A server stalls mid-transaction* (its events inserted,
//!   not committed): nobody waits for it (no lock is shared); the sequencer numbers
//!   around it, and its events get ids when it commits, above every id given so far,
//!   or never, if it rolls back. *A database crash*: numbering is an ordinary durable
//!   transaction, so an id a reader saw is never given again.
//! - **Group commit.** Job writes (inserts, compare-and-sets, appended events) go to
//!   writer tasks, each with its own connection (one for inserts, three for changes),
//!   that commit what is queued as one transaction, the calls pipelined; while one waits
//!   for its flush, the next batches what arrived meanwhile (see `writer.rs`). Each write still gets its own answer, and
//!   one write's failure does not fail the others.
//! - **Publication from the database.** The sequencer's step sends
//!   `NOTIFY jobwire_events` (delivered at commit). Every process runs a listener that,
//!   on a notification or once a second, reads the numbered events after the last one
//!   it published, in id order, and publishes them on its [`EventBus`]. A process
//!   publishes its own events the same way, never straight after its commit, which would
//!   race with the listener and break id order.
//! - **Leases on the database clock.** `lease_until` is a `timestamptz` compared with
//!   `now()`, so the servers' clocks may disagree.
//! - **Checks inside the insert.** Idempotency keys and the per-tenant limit on
//!   unfinished jobs are checked under transaction-scoped advisory locks, so two servers
//!   cannot both pass the check.
//! - **One call per write.** Inserting a job, changing one and recording its events
//!   are each one call of a function of the schema (`jobwire_insert_job`, …, migration
//!   5); a batch takes the insert locks of all its writes first, in the order of their
//!   ids, so two batches never deadlock on them.
//!
//! Times other than leases are RFC 3339 text as the server writes them, compared as text
//! under the `C` collation (bytewise, whatever the database's locale).

use async_trait::async_trait;
use deadpool_postgres::{GenericClient, Manager, Pool, Runtime};
use jobwire_core::{Job, Service};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;
mod listener;
mod migrations;
mod sequencer;
mod tls;
mod usage;
mod writer;

use listener::Listener;
use migrations::migrate;
use sequencer::{Numbering, Sequencer};
use usage::Ledger;
use writer::{Param, Write, Writers, Written};

use super::codec::{finished_at, from_json, to_json};
use super::{
    Created, Cutoffs, Event, EventQuery, Expected, Inserted, JobQuery, KeyRecord, NewEvent, NewJob,
    Pruned, Retired, ServiceQuery, Store, StoreError,
};
use crate::bus::EventBus;

#[cfg(test)]
#[path = "../../../tests/support/pg_cluster.rs"]
mod pg_cluster;

/// Connections in the pool, the writers' included (the listener and the sequencer have
/// one more each of their own).
const POOL_SIZE: usize = 16 + writer::WRITERS;

/// How long a write waits for its committed events to be numbered before it reports a
/// failure (the write itself stands): long enough for a peer to take over from a dead
/// sequencer.
const NUMBERING_WAIT: Duration = Duration::from_secs(30);

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
    /// The queue of job writes, committed in batches.
    writers: Writers,
    /// Set (or dropped with the store) to stop the listener.
    stop: watch::Sender<bool>,
    /// The listener task, until `close` waits for it.
    listener: Mutex<Option<JoinHandle<()>>>,
    /// The bytes each tenant stores, as this process knows them.
    ledger: Arc<Ledger>,
    /// The task that flushes the ledger, until `close` waits for it.
    flusher: Mutex<Option<JoinHandle<()>>>,
    /// The sequencer task, until `close` stops it.
    sequencer: Mutex<Option<JoinHandle<()>>>,
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
        let mut columns = EventColumns {
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

    /// `params` followed by the five event columns.
    fn into_params(self, mut params: Vec<Param>) -> Vec<Param> {
        params.push(Box::new(self.job_ids));
        params.push(Box::new(self.service_ids));
        params.push(Box::new(self.kinds));
        params.push(Box::new(self.data));
        params.push(Box::new(self.created_at));
        params
    }
}

/// The answer of `jobwire_update_job` or `jobwire_append_events`: whether the job was in
/// the expected state (and the write made).
fn changed(rows: &[Row], what: &'static str) -> Result<bool, StoreError> {
    let row = rows
        .first()
        .ok_or_else(|| StoreError::new(format!("{what}: no outcome")))?;
    get(row, 0, what)
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
        let numbering = Arc::new(Numbering::default());
        let wake = Arc::new(Notify::new());
        let leading = Arc::new(AtomicBool::new(false));
        let sequencer = Sequencer {
            config: config.clone(),
            tls: tls.clone(),
            wake: Arc::clone(&wake),
            leading: Arc::clone(&leading),
            closed: bus.closed(),
            stop: stop.subscribe(),
        };
        let sequencer = tokio::spawn(sequencer.run());
        let writers = Writers::start(writer::Shared {
            pool: pool.clone(),
            numbering: Arc::clone(&numbering),
            wake,
            leading,
        });
        let listener = Listener {
            pool: pool.clone(),
            config,
            tls,
            closed: bus.closed(),
            bus,
            numbering,
            published: last,
            stop: stopped,
        };
        let listener = tokio::spawn(listener.run());
        let ledger = Arc::new(Ledger::default());
        let flusher = tokio::spawn(flush_loop(pool.clone(), ledger.clone(), stop.subscribe()));
        Ok(PgStore {
            pool,
            writers,
            stop,
            listener: Mutex::new(Some(listener)),
            ledger,
            flusher: Mutex::new(Some(flusher)),
            sequencer: Mutex::new(Some(sequencer)),
        })
    }

    /// Checks a database URL without connecting (its TLS parameters, its syntax).
    pub(crate) fn check_url(url: &str) -> Result<(), StoreError> {
        tls::check(url)
    }

    /// Commits `write` (in a batch with others) and returns its rows, and the ids its
    /// events got once the sequencer has numbered them.
    async fn write(&self, write: Write) -> Result<(Vec<Row>, Vec<i64>), StoreError> {
        let Written { rows, ids } = self.writers.write(write).await?;
        match tokio::time::timeout(NUMBERING_WAIT, ids).await {
            Ok(Ok(ids)) => Ok((rows, ids)),
            Ok(Err(_)) => Err(StoreError::new("the event listener stopped")),
            Err(_) => Err(StoreError::new(
                "committed events got no id in time: is a sequencer running?",
            )),
        }
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
        let bytes = bytes_of(&body) + events.bytes;
        let params: Vec<Param> = vec![
            Box::new(new.tenant.to_owned()),
            Box::new(job.id.clone()),
            Box::new(job.service_id.clone()),
            Box::new(job.status.as_str().to_owned()),
            Box::new(labels),
            Box::new(body),
            Box::new(finished_at(job).map(str::to_owned)),
            Box::new(new.owner.to_owned()),
            Box::new(new.lease.as_secs_f64()),
            Box::new(limit(new.max_in_flight)),
            Box::new(new.key.map(|k| k.key.to_owned())),
            Box::new(new.key.map(|k| k.fingerprint.to_owned())),
            Box::new(job.created_at.clone()),
        ];
        let mut params = events.into_params(params);
        params.push(Box::new(new.key.and_then(|k| k.answered).map(i32::from)));
        let (rows, ids) = self
            .write(Write {
                sql: "SELECT * FROM jobwire_insert_job($1, $2, $3, $4, $5, $6, $7, $8, $9,
                          $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)",
                params,
                locks: Some((new.tenant.to_owned(), new.key.map(|k| k.key.to_owned()))),
                job: job.id.clone(),
            })
            .await?;
        let row = rows
            .first()
            .ok_or_else(|| StoreError::new("inserting a job: no outcome"))?;
        let outcome: &str = get(row, 0, WHAT)?;
        match outcome {
            "stored" => {
                self.ledger.charge(new.tenant, bytes);
                Ok(Inserted::Stored(ids))
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
        let bytes = bytes_of(&body) + events.bytes;
        let params: Vec<Param> = vec![
            Box::new(tenant.to_owned()),
            Box::new(job.id.clone()),
            Box::new(job.status.as_str().to_owned()),
            Box::new(body),
            Box::new(finished_at(job).map(str::to_owned)),
            Box::new(labels),
            Box::new(expected.status.as_str().to_owned()),
            Box::new(expected.owner.map(str::to_owned)),
        ];
        let (rows, ids) = self
            .write(Write {
                sql: "SELECT * FROM jobwire_update_job($1, $2, $3, $4, $5, $6, $7, $8, $9,
                          $10, $11, $12, $13)",
                params: events.into_params(params),
                locks: None,
                job: job.id.clone(),
            })
            .await?;
        if !changed(&rows, WHAT)? {
            return Ok(None);
        }
        let was: i64 = rows.first().map_or(Ok(0), |row| get(row, 2, WHAT))?;
        self.ledger.charge(tenant, bytes - was);
        Ok(Some(ids))
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
        let bytes = events.bytes;
        let params: Vec<Param> = vec![
            Box::new(tenant.to_owned()),
            Box::new(job_id.to_owned()),
            Box::new(expected.status.as_str().to_owned()),
            Box::new(expected.owner.map(str::to_owned)),
        ];
        let (rows, ids) = self
            .write(Write {
                sql: "SELECT * FROM jobwire_append_events($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                params: events.into_params(params),
                locks: None,
                job: job_id.to_owned(),
            })
            .await?;
        if !changed(&rows, WHAT)? {
            return Ok(None);
        }
        self.ledger.charge(tenant, bytes);
        Ok(Some(ids))
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
        const WHAT: &str = "renewing leases";
        let client = self.client().await?;
        let lease = lease.as_secs_f64();
        // The rows no batch of writes holds, at once; SKIP LOCKED, because waiting for
        // each held row in turn while holding the others would hold up every write to
        // those until the last of the batches committed.
        let rows = query(
            &client,
            WHAT,
            "WITH held AS MATERIALIZED (
                 SELECT seq FROM jobs
                 WHERE owner = $1 AND id = ANY($3) AND status IN ('queued', 'running')
                 FOR UPDATE SKIP LOCKED
             )
             UPDATE jobs SET lease_until = now() + $2::float8 * interval '1 second'
             FROM held WHERE jobs.seq = held.seq
             RETURNING jobs.id",
            &[&owner, &lease, &jobs],
        )
        .await?;
        let done: std::collections::HashSet<&str> = rows
            .iter()
            .map(|row| get(row, 0, WHAT))
            .collect::<Result<_, _>>()?;
        // Then the others one by one, each its own transaction holding one row: a job
        // being written is renewed once its batch commits (a finished one is not).
        let statement = client
            .prepare_cached(
                "UPDATE jobs SET lease_until = now() + $2::float8 * interval '1 second'
                 WHERE owner = $1 AND id = $3 AND status IN ('queued', 'running')",
            )
            .await
            .map_err(err(WHAT))?;
        let rest = jobs
            .iter()
            .filter(|id| !done.contains(id.as_str()))
            .map(|id| {
                let (client, statement) = (&client, &statement);
                async move { client.execute(statement, &[&owner, &lease, id]).await }
            });
        let mut renewed = done.len();
        for one in futures_util::future::join_all(rest).await {
            renewed += count(one.map_err(err(WHAT))?);
        }
        Ok(renewed)
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
            // Rows locked in id order, as a batch of writes locks them (see writer.rs).
            "WITH held AS MATERIALIZED (
                 SELECT seq FROM jobs
                 WHERE owner = $1 AND status IN ('queued', 'running')
                 ORDER BY id FOR UPDATE
             )
             UPDATE jobs SET lease_until = '-infinity'
             FROM held WHERE jobs.seq = held.seq
               AND jobs.owner = $1 AND jobs.status IN ('queued', 'running')",
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
        let sequencer = self
            .sequencer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(mut sequencer) = sequencer {
            // Every write of this process waited for its ids: nothing of ours is left to
            // number. Its session ends with it, and a peer's takes the lock over.
            if tokio::time::timeout(CLOSE_WAIT, &mut sequencer)
                .await
                .is_err()
            {
                sequencer.abort();
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
        let url = cluster.database("contract").unwrap();
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
        let url = cluster.database("shared").unwrap();
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
            // Not necessarily consecutive: the sequencer numbers in insertion order,
            // and concurrent inserts interleave.
            assert!(ids.windows(2).all(|w| w[0] < w[1]), "one call, in order");
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

    /// Ends the session of whichever sequencer holds the lock; returns whether there
    /// was one.
    async fn kill_sequencer(store: &PgStore) -> bool {
        let client = store.client().await.unwrap();
        let rows = client
            .query(
                "SELECT pg_terminate_backend(a.pid) FROM pg_stat_activity a
                 JOIN pg_locks l ON l.pid = a.pid
                 WHERE l.locktype = 'advisory' AND l.granted
                   AND a.application_name = $1",
                &[&sequencer::APPLICATION_NAME],
            )
            .await
            .unwrap();
        !rows.is_empty()
    }

    /// Every event `live` receives until it has `n`, within 10 s each.
    async fn receive(live: &mut crate::bus::Subscription, n: usize) -> Vec<i64> {
        let mut got = Vec::with_capacity(n);
        while got.len() < n {
            got.push(next(live).await);
        }
        got
    }

    /// Writes from two servers while the sequencer's session is killed again and again
    /// (mid-step, as it numbers a batch): another session takes over each time, and every
    /// event ends with exactly one id, in a run with no gap, published in order by both
    /// servers.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_killed_sequencer_is_replaced_and_nothing_is_lost_or_numbered_twice() {
        let Some(cluster) = PgCluster::start() else {
            return;
        };
        let url = cluster.database("failover").unwrap();
        // Room for every event of the run: the subscribers read only at the end.
        let (bus_a, bus_b) = (
            Arc::new(EventBus::new(1 << 16)),
            Arc::new(EventBus::new(1 << 16)),
        );
        let a = Arc::new(PgStore::connect(&url, Arc::clone(&bus_a)).await.unwrap());
        let b = Arc::new(PgStore::connect(&url, Arc::clone(&bus_b)).await.unwrap());
        let mut live_a = bus_a.subscribe("tk");
        let mut live_b = bus_b.subscribe("tk");
        const JOBS: usize = 40;
        const ROUNDS: usize = 25;
        for i in 0..JOBS {
            job(&a, "tk", &format!("job_{i}")).await;
        }
        let before = stored_ids(&a, "tk").await.len();
        // Writers go on (at least ROUNDS each) until the killer is done.
        let killing = Arc::new(AtomicBool::new(true));
        let writers: Vec<_> = (0..JOBS)
            .map(|i| {
                let store = Arc::clone(if i % 2 == 0 { &a } else { &b });
                let killing = Arc::clone(&killing);
                tokio::spawn(async move {
                    let job = format!("job_{i}");
                    let mut ids = Vec::new();
                    let mut rounds = 0;
                    while rounds < ROUNDS || killing.load(Ordering::Acquire) {
                        ids.extend(append(&store, "tk", &job, vec![log(&job), log(&job)]).await);
                        rounds += 1;
                    }
                    ids
                })
            })
            .collect();
        let killer = tokio::spawn({
            let (a, killing) = (Arc::clone(&a), Arc::clone(&killing));
            async move {
                // A few times, each once the last replacement has had time to work.
                let mut kills = 0;
                while kills < 3 {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    if kill_sequencer(&a).await {
                        kills += 1;
                    }
                }
                killing.store(false, Ordering::Release);
                kills
            }
        });
        let mut given = Vec::new();
        for writer in writers {
            let ids = writer.await.unwrap();
            assert!(ids.windows(2).all(|w| w[0] < w[1]), "a job's ids grow");
            given.extend(ids);
        }
        assert_eq!(killer.await.unwrap(), 3);

        let stored = stored_ids(&a, "tk").await;
        assert!(given.len() >= JOBS * ROUNDS * 2);
        assert_eq!(stored.len(), before + given.len(), "every event, once");
        let expected: Vec<i64> = (1..=stored.len() as i64).collect();
        assert_eq!(stored, expected, "no gap, no id twice");
        given.sort_unstable();
        assert_eq!(given, stored[before..], "each write learned its own ids");
        for live in [&mut live_a, &mut live_b] {
            assert_eq!(receive(live, stored.len()).await, stored);
        }
        a.close().await.unwrap();
        b.close().await.unwrap();
    }

    /// A writer stalled mid-transaction (its events inserted, not committed) holds back
    /// nobody, and its events, once committed, come after everything numbered meanwhile:
    /// a stream never gets a later event before an earlier one, and a reader resuming from
    /// the last id it saw gets them, with no gap.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stalled_transaction_is_numbered_after_what_committed_before_it() {
        let Some(cluster) = PgCluster::start() else {
            return;
        };
        let url = cluster.database("stall").unwrap();
        let bus = new_bus();
        let store = PgStore::connect(&url, Arc::clone(&bus)).await.unwrap();
        let mut live = bus.subscribe("ts");
        job(&store, "ts", "job_slow").await;
        job(&store, "ts", "job_fast").await;

        // A peer's write, stalled after its insert: the events have the lower insertion key.
        let mut peer = store.client().await.unwrap();
        let stalled = peer.transaction().await.unwrap();
        let row = stalled
            .query_one(
                "SELECT o_pos FROM jobwire_append_events('ts', 'job_slow', 'queued', 'srv',
                     ARRAY['job_slow'], ARRAY['svc_a'], ARRAY['log'],
                     ARRAY['{\"job_id\":\"job_slow\",\"line\":\"late\"}'],
                     ARRAY['2026-01-01T00:00:00.000000Z'])",
                &[],
            )
            .await
            .unwrap();
        let stalled_pos: Vec<i64> = row.get(0);

        // Writes go on meanwhile, and are numbered and published at once.
        let mut fast = Vec::new();
        for _ in 0..3 {
            fast.extend(append(&store, "ts", "job_fast", vec![log("job_fast")]).await);
        }
        assert_eq!(receive(&mut live, 3).await, fast);
        let seen = stored_ids(&store, "ts").await;
        assert_eq!(seen, fast, "the uncommitted event is not read");
        let fast_pos: i64 = store
            .client()
            .await
            .unwrap()
            .query_one("SELECT min(pos) FROM events WHERE job_id = 'job_fast'", &[])
            .await
            .unwrap()
            .get(0);
        assert!(stalled_pos[0] < fast_pos, "inserted first, committed last");

        // Committed outside the writers: the sequencer finds it by polling.
        stalled.commit().await.unwrap();
        let late = next(&mut live).await;
        assert!(
            late > fast[2],
            "numbered after everything committed before it"
        );
        let resumed = store
            .events(
                "ts",
                &EventQuery {
                    after: fast[2],
                    limit: 100,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(resumed.len(), 1);
        assert_eq!(resumed[0].seq, late);
        assert_eq!(resumed[0].job_id, "job_slow");
        let all = stored_ids(&store, "ts").await;
        assert_eq!(all, [fast.clone(), vec![late]].concat());
        drop(peer);
        store.close().await.unwrap();
    }

    /// A reader that resumes from its last id on one server, then the other, page after
    /// page, while both write: it reads every event once, in id order.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn resuming_across_two_servers_under_load_skips_and_repeats_nothing() {
        let Some(cluster) = PgCluster::start() else {
            return;
        };
        let url = cluster.database("resume").unwrap();
        let a = Arc::new(PgStore::connect(&url, new_bus()).await.unwrap());
        let b = Arc::new(PgStore::connect(&url, new_bus()).await.unwrap());
        const JOBS: usize = 32;
        const ROUNDS: usize = 30;
        for i in 0..JOBS {
            job(&a, "tr2", &format!("job_{i}")).await;
        }
        let writing = Arc::new(AtomicBool::new(true));
        let reader = tokio::spawn({
            let (a, b, writing) = (Arc::clone(&a), Arc::clone(&b), Arc::clone(&writing));
            async move {
                let mut read = Vec::new();
                let mut last = 0;
                let mut pages = 0usize;
                loop {
                    // Checked before the read: the last page is read after every write.
                    let done = !writing.load(Ordering::Acquire);
                    let server = if pages % 2 == 0 { &a } else { &b };
                    pages += 1;
                    let query = EventQuery {
                        after: last,
                        limit: 37,
                        ..Default::default()
                    };
                    let page = server.events("tr2", &query).await.unwrap();
                    if let Some(event) = page.last() {
                        last = event.seq;
                    }
                    let full = page.len() == 37;
                    read.extend(page.into_iter().map(|e| e.seq));
                    if done && !full {
                        return (read, pages);
                    }
                }
            }
        });
        let writers: Vec<_> = (0..JOBS)
            .map(|i| {
                let store = Arc::clone(if i % 2 == 0 { &a } else { &b });
                tokio::spawn(async move {
                    let job = format!("job_{i}");
                    for _ in 0..ROUNDS {
                        append(&store, "tr2", &job, vec![log(&job)]).await;
                    }
                })
            })
            .collect();
        for writer in writers {
            writer.await.unwrap();
        }
        writing.store(false, Ordering::Release);
        let (read, pages) = reader.await.unwrap();
        assert!(pages > 4, "{pages} pages");
        let distinct: HashSet<i64> = read.iter().copied().collect();
        assert_eq!(distinct.len(), read.len(), "no event read twice");
        assert!(read.windows(2).all(|w| w[0] < w[1]), "in id order");
        assert_eq!(read.len(), JOBS * ROUNDS, "every event read");
        assert_eq!(read, stored_ids(&a, "tr2").await, "no gap");
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
    async fn next(live: &mut crate::bus::Subscription) -> i64 {
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
        let url = cluster.database("reconnect").unwrap();
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
        let url = cluster.database("claims").unwrap();
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
        let url = cluster.database("tls").unwrap();
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
        let url = cluster.database("contract").unwrap();
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
