//! What the SQL backends share about rows: models kept as JSON text, and the columns
//! copied out of them.

use jobwire_core::Job;

use super::StoreError;

/// A model as the JSON text of a row's `body` (or an event's `data`).
pub(crate) fn to_json<T: serde::Serialize + ?Sized>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::with_source("encoding a row", e))
}

/// A model from the JSON text of a row.
pub(crate) fn from_json<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::with_source("decoding a row", e))
}

/// The `finished_at` column of a job: set once it is terminal.
pub(crate) fn finished_at(job: &Job) -> Option<&str> {
    job.finished_at.as_deref().filter(|_| job.is_finished())
}
