//! Small helpers with no better home: RFC 3339 timestamps, random identifiers, hex,
//! constant-time comparison and poison-tolerant locking.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

/// Locks a mutex, carrying on with the data if a panicking thread poisoned it.
///
/// Every structure behind these mutexes stays consistent between statements (no
/// half-done updates are left across a possible panic point), so the poison flag carries
/// no information worth failing a request for.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The current time as RFC 3339 UTC with microsecond precision:
/// `2026-01-31T12:00:00.123456Z`.
pub(crate) fn now_rfc3339() -> String {
    rfc3339_at(SystemTime::now())
}

/// A time as RFC 3339 UTC with microsecond precision (enough to measure how soon a client
/// learns that a job finished). Every time the server writes has this one fixed width,
/// so they sort as text (the retention pass relies on it).
pub(crate) fn rfc3339_at(time: SystemTime) -> String {
    let since_epoch = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    format_rfc3339(since_epoch.as_secs(), since_epoch.subsec_micros())
}

/// Formats seconds since the Unix epoch (plus microseconds) as RFC 3339 UTC.
pub(crate) fn format_rfc3339(secs: u64, micros: u32) -> String {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{micros:06}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day).
///
/// Howard Hinnant's `civil_from_days`, restricted to dates after the epoch.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// Lowercase hex of bytes.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

/// `prefix` followed by `n` random bytes as hex, from the operating system's generator.
pub(crate) fn random_id(prefix: &str, n: usize) -> Result<String, getrandom::Error> {
    let mut buf = vec![0u8; n];
    getrandom::fill(&mut buf)?;
    Ok(format!("{prefix}{}", hex(&buf)))
}

/// Compares two byte strings in time that depends only on their lengths.
///
/// Callers compare fixed-length digests, so the length is no secret either.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_rfc3339() {
        for (secs, micros, want) in [
            (0, 0, "1970-01-01T00:00:00.000000Z"),
            (951_782_400, 5, "2000-02-29T00:00:00.000005Z"),
            (1_767_225_599, 999_999, "2025-12-31T23:59:59.999999Z"),
            (4_107_542_400, 0, "2100-03-01T00:00:00.000000Z"),
        ] {
            assert_eq!(format_rfc3339(secs, micros), want);
        }
    }

    #[test]
    fn hex_and_ids() {
        assert_eq!(hex(&[0x00, 0xab, 0x7f]), "00ab7f");
        let id = random_id("job_", 12).unwrap();
        assert!(id.starts_with("job_") && id.len() == 4 + 24);
        assert_ne!(id, random_id("job_", 12).unwrap());
    }

    #[test]
    fn constant_time_eq_works() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(constant_time_eq(b"", b""));
    }
}
