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

/// How many bytes `value`'s JSON text takes, counted as it is written (nothing is
/// kept): what a store without JSON rows charges a tenant for a job.
pub(crate) fn json_len<T: serde::Serialize + ?Sized>(value: &T) -> u64 {
    struct Counter(u64);
    impl std::io::Write for Counter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len() as u64;
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut counter = Counter(0);
    // A model always serializes; should one not, it is charged what was written.
    let _ = serde_json::to_writer(&mut counter, value);
    counter.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_len_is_the_length_of_the_text() {
        for value in [
            serde_json::json!(null),
            serde_json::json!({"a": [1, 2.5, "é\n\"x\""], "b": {"c": true}}),
            serde_json::json!("x".repeat(10_000)),
        ] {
            assert_eq!(json_len(&value), to_json(&value).unwrap().len() as u64);
        }
    }
}
