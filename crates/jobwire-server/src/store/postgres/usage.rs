//! Stored bytes per tenant on a shared database: a ledger per server process.
//!
//! Every write knows what it adds (a job's body, its events) or, for an update, what
//! the job was charged before. The process adds that to its ledger at once and flushes
//! its deltas to `tenant_usage` about once a second, in one statement, reading back
//! every tenant's total as it does. A tenant's usage as a process sees it is the total
//! it last read plus its own unflushed deltas, so it trails the peers' writes by about
//! a second; a counter row updated inside every write would be exact, but would queue
//! all of a tenant's writes, across servers, behind the last one's commit.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use deadpool_postgres::GenericClient;

use super::{get, query};
use crate::store::StoreError;

/// How often a process flushes its deltas and reads the totals back.
pub(super) const FLUSH_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// One process's view of the bytes each tenant stores.
#[derive(Debug, Default)]
pub(super) struct Ledger {
    inner: Mutex<Books>,
}

#[derive(Debug, Default)]
struct Books {
    /// Totals as last read from the database.
    totals: HashMap<String, i64>,
    /// This process's changes since.
    pending: HashMap<String, i64>,
}

impl Ledger {
    /// Adds `delta` bytes to what `tenant` stores.
    pub(super) fn charge(&self, tenant: &str, delta: i64) {
        if delta == 0 {
            return;
        }
        let mut books = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        match books.pending.get_mut(tenant) {
            Some(n) => *n = n.saturating_add(delta),
            None => {
                books.pending.insert(tenant.to_owned(), delta);
            }
        }
    }

    /// What `tenant` stores, as this process knows it.
    pub(super) fn used(&self, tenant: &str) -> u64 {
        let books = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let total = books.totals.get(tenant).copied().unwrap_or(0);
        let pending = books.pending.get(tenant).copied().unwrap_or(0);
        u64::try_from(total.saturating_add(pending)).unwrap_or(0)
    }

    /// Writes the pending deltas to `tenant_usage` and reads every total back. On a
    /// failure the deltas stay pending for the next flush. Totals are never clamped in
    /// the table (a retention pass may subtract what a peer has not flushed yet, and
    /// that peer's flush nets out); only [`Ledger::used`] reads a negative one as 0.
    pub(super) async fn flush(&self, client: &impl GenericClient) -> Result<(), StoreError> {
        const WHAT: &str = "flushing stored bytes";
        let pending: Vec<(String, i64)> = {
            let mut books = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
            books.pending.drain().collect()
        };
        let (tenants, deltas): (Vec<&str>, Vec<i64>) =
            pending.iter().map(|(t, d)| (t.as_str(), *d)).unzip();
        let rows = query(
            client,
            WHAT,
            "WITH added AS (
                 INSERT INTO tenant_usage (tenant, bytes)
                 SELECT * FROM unnest($1::text[], $2::bigint[])
                 ON CONFLICT (tenant) DO UPDATE
                     SET bytes = tenant_usage.bytes + excluded.bytes
                 RETURNING tenant, bytes
             )
             SELECT tenant, bytes FROM added
             UNION ALL
             SELECT tenant, bytes FROM tenant_usage WHERE tenant <> ALL($1::text[])",
            &[&tenants, &deltas],
        )
        .await;
        let mut books = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        match rows {
            Ok(rows) => {
                books.totals.clear();
                for row in &rows {
                    let tenant: String = get(row, 0, WHAT)?;
                    books.totals.insert(tenant, get(row, 1, WHAT)?);
                }
                Ok(())
            }
            Err(e) => {
                for (tenant, delta) in pending {
                    *books.pending.entry(tenant).or_insert(0) += delta;
                }
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_is_the_last_total_plus_what_is_pending() {
        let ledger = Ledger::default();
        assert_eq!(ledger.used("t"), 0);
        ledger.charge("t", 100);
        ledger.charge("t", -30);
        ledger.charge("u", 5);
        assert_eq!(ledger.used("t"), 70);
        {
            let mut books = ledger.inner.lock().unwrap();
            books.totals.insert("t".into(), 1_000);
        }
        assert_eq!(ledger.used("t"), 1_070);
        ledger.charge("t", -5_000);
        assert_eq!(ledger.used("t"), 0, "never below zero");
    }
}
