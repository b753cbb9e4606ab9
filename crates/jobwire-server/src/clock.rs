//! Time as the server writes it: an injectable [`Clock`] and RFC 3339 timestamps.
//!
//! Everything that stamps a job or an event takes the time from a [`Clock`], so tests can
//! set it; the server uses [`SystemClock`].

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Where the server reads the time of day.
pub(crate) trait Clock: Send + Sync + 'static {
    /// The current time.
    fn now(&self) -> SystemTime;

    /// The current time as the server writes it (see [`rfc3339_at`]).
    fn now_rfc3339(&self) -> String {
        rfc3339_at(self.now())
    }
}

/// The operating system's clock.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A time as RFC 3339 UTC with microsecond precision (enough to measure how soon a client
/// learns that a job finished). Every time the server writes has this one fixed width,
/// so they sort as text (the retention pass relies on it).
pub(crate) fn rfc3339_at(time: SystemTime) -> String {
    let since_epoch = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    format_rfc3339(since_epoch.as_secs(), since_epoch.subsec_micros())
}

/// Milliseconds since the Unix epoch (0 before it): how embedded stores keep lease ends.
pub(crate) fn unix_millis(time: SystemTime) -> i64 {
    let since_epoch = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX)
}

/// When a lease of `lease` taken at `now` runs out, in Unix milliseconds.
pub(crate) fn lease_end(now: SystemTime, lease: Duration) -> i64 {
    let lease = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX);
    unix_millis(now).saturating_add(lease)
}

/// Formats seconds since the Unix epoch (plus microseconds) as RFC 3339 UTC.
///
/// Digit by digit into the fixed-width layout, not through `format!`: a job's every change
/// is stamped, and the formatting machinery cost more than the rest of a stamp.
fn format_rfc3339(secs: u64, micros: u32) -> String {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    let mut out = *b"0000-00-00T00:00:00.000000Z";
    let mut put = |at: usize, width: usize, mut n: u64| {
        for i in (at..at + width).rev() {
            out[i] = b'0' + (n % 10) as u8;
            n /= 10;
        }
    };
    // Years past 9999 do not fit the width; they are far past any clock this runs on.
    put(0, 4, year.min(9999));
    put(5, 2, month);
    put(8, 2, day);
    put(11, 2, rem / 3600);
    put(14, 2, (rem % 3600) / 60);
    put(17, 2, rem % 60);
    put(20, 6, u64::from(micros.min(999_999)));
    // ASCII digits and separators only, so always UTF-8.
    std::str::from_utf8(&out)
        .map(str::to_owned)
        .unwrap_or_default()
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
            (1_798_761_599, 123_456, "2026-12-31T23:59:59.123456Z"),
        ] {
            assert_eq!(format_rfc3339(secs, micros), want);
        }
        // Past year 9999 the width still holds (the year stops there).
        assert_eq!(format_rfc3339(u64::MAX / 2, 0).len(), 27);
    }

    #[test]
    fn times_before_the_epoch_are_the_epoch() {
        let before = UNIX_EPOCH - Duration::from_secs(5);
        assert_eq!(rfc3339_at(before), "1970-01-01T00:00:00.000000Z");
        assert_eq!(unix_millis(before), 0);
        assert_eq!(unix_millis(UNIX_EPOCH + Duration::from_millis(1500)), 1500);
        let at = UNIX_EPOCH + Duration::from_secs(1);
        assert_eq!(lease_end(at, Duration::from_millis(250)), 1250);
        assert_eq!(lease_end(at, Duration::MAX), i64::MAX);
    }
}
