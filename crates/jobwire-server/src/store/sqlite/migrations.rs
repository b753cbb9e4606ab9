//! The SQLite schema, as the `.sql` files beside this one, applied in order.

use rusqlite::Connection;

use super::err;
use crate::store::StoreError;

/// The schema as a list of migrations; `PRAGMA user_version` counts those applied.
///
/// Rows keep the model as JSON in `body` and copy out the columns that queries filter on.
/// `AUTOINCREMENT` keeps sequence numbers from ever being reused, which cursors and event
/// ids rely on. Migration 0 is idempotent (`IF NOT EXISTS`), so databases written before
/// versioning (user_version 0, tables present) take the later steps as well.
pub(super) const MIGRATIONS: &[&str] = &[
    include_str!("migrations/0001_schema.sql"),
    include_str!("migrations/0002_event_streams.sql"),
    include_str!("migrations/0003_idempotency_keys.sql"),
    include_str!("migrations/0004_leases.sql"),
    include_str!("migrations/0005_drop_status_index.sql"),
    include_str!("migrations/0006_retired_services.sql"),
    include_str!("migrations/0007_usage_and_job_retention.sql"),
];

/// Applies the migrations `conn` has not seen yet, each in its own transaction.
pub(super) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
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
