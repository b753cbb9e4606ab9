//! The PostgreSQL schema, as the `.sql` files beside this one, applied in order under an
//! advisory lock.

use super::{err, get};
use crate::store::StoreError;

/// The schema as a list of migrations; `jobwire_schema.version` counts those applied.
///
/// Never edit a migration that has shipped: append a new one.
pub(super) const MIGRATIONS: &[&str] = &[
    include_str!("migrations/0001_schema.sql"),
    include_str!("migrations/0002_functions.sql"),
    include_str!("migrations/0003_retired_services.sql"),
    include_str!("migrations/0004_usage_and_job_retention.sql"),
    include_str!("migrations/0005_sequencer.sql"),
    include_str!("migrations/0006_key_answered.sql"),
];

/// Applies the migrations the database has not seen yet, each in its own transaction,
/// under an advisory lock so that servers starting together migrate one at a time.
pub(super) async fn migrate(client: &mut deadpool_postgres::Client) -> Result<(), StoreError> {
    loop {
        let tx = client
            .transaction()
            .await
            .map_err(err("starting a migration"))?;
        // Its own statement, so the next ones (and their view of the catalog) come after
        // whichever server migrated first has committed.
        tx.execute(
            "SELECT pg_advisory_xact_lock(hashtext('jobwire-migrations'))",
            &[],
        )
        .await
        .map_err(err("locking the schema"))?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS jobwire_schema (
                 id      boolean PRIMARY KEY DEFAULT true CHECK (id),
                 version integer NOT NULL
             );
             INSERT INTO jobwire_schema (version) VALUES (0) ON CONFLICT (id) DO NOTHING;",
        )
        .await
        .map_err(err("creating the schema version table"))?;
        let row = tx
            .query_one("SELECT version FROM jobwire_schema", &[])
            .await
            .map_err(err("reading the schema version"))?;
        let applied: i32 = get(&row, 0, "reading the schema version")?;
        let applied = usize::try_from(applied)
            .map_err(|e| StoreError::with_source("reading the schema version", e))?;
        if applied > MIGRATIONS.len() {
            return Err(StoreError::new(format!(
                "the database has schema version {applied}, newer than this server knows ({})",
                MIGRATIONS.len()
            )));
        }
        let Some(sql) = MIGRATIONS.get(applied) else {
            tx.commit()
                .await
                .map_err(err("committing the schema check"))?;
            return Ok(());
        };
        tx.batch_execute(sql).await.map_err(|e| {
            StoreError::with_source(format!("migrating to version {}", applied + 1), e)
        })?;
        let version = i32::try_from(applied + 1)
            .map_err(|e| StoreError::with_source("recording the schema version", e))?;
        tx.execute("UPDATE jobwire_schema SET version = $1", &[&version])
            .await
            .map_err(err("recording the schema version"))?;
        tx.commit().await.map_err(err("committing a migration"))?;
    }
}
