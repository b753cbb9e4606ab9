//! What the benchmark programs share: where the server is, how to read the process's CPU
//! time and memory, and percentiles. Each program prints its figures as JSON lines on
//! stdout; `cargo xtask bench` runs them, five times each, and writes `bench/RESULTS.md`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The server under test: `JOBWIRE_URL` and `JOBWIRE_TOKEN` (the xtask starts it, on
/// another core).
pub fn server_from_env() -> Result<(String, String), String> {
    let url = std::env::var("JOBWIRE_URL").map_err(|_| "set JOBWIRE_URL (and JOBWIRE_TOKEN)")?;
    let token = std::env::var("JOBWIRE_TOKEN").unwrap_or_default();
    Ok((url.trim_end_matches('/').to_owned(), token))
}

/// The pid of the server process, when the xtask gives it (`JOBWIRE_BENCH_SERVER_PID`),
/// to read its memory.
pub fn server_pid() -> Option<u32> {
    std::env::var("JOBWIRE_BENCH_SERVER_PID").ok()?.parse().ok()
}

/// CPU time this process has used, user plus system (`getrusage`).
pub fn cpu_time() -> Duration {
    let (user, system) = cpu_times();
    user + system
}

/// CPU time this process has used: (user, system) (`getrusage`).
pub fn cpu_times() -> (Duration, Duration) {
    // SAFETY: getrusage fills the struct it is given; a zeroed rusage is a valid value.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let time = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    (time(usage.ru_utime), time(usage.ru_stime))
}

/// A field of `/proc/<pid>/status` in KiB (`VmRSS`, `VmHWM`), for `pid` or this process.
pub fn status_kib(pid: Option<u32>, field: &str) -> u64 {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/status"),
        None => "/proc/self/status".to_owned(),
    };
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

/// The nearest-rank percentile `q` (0 to 1) of `values`, which it sorts; zero for none.
pub fn percentile(values: &mut [Duration], q: f64) -> Duration {
    if values.is_empty() {
        return Duration::ZERO;
    }
    values.sort_unstable();
    let rank = ((values.len() as f64 * q).ceil() as usize).clamp(1, values.len());
    values[rank - 1]
}

/// Milliseconds, for the JSON lines.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// From the job's `finished_at` (the server marked it done) to `returned` (the client had
/// it): both read from this machine's clock.
pub fn completion_latency(job: &jobwire_core::Job, returned: SystemTime) -> Option<Duration> {
    let finished = parse_utc(job.finished_at.as_deref()?)?;
    Some(returned.duration_since(finished).unwrap_or_default())
}

/// `YYYY-MM-DDTHH:MM:SS.ffffffZ` (any number of fraction digits) as a time.
pub fn parse_utc(text: &str) -> Option<SystemTime> {
    let (date, time) = text.strip_suffix('Z')?.split_once('T')?;
    let mut ymd = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, m, d) = (ymd.next()??, ymd.next()??, ymd.next()??);
    let (hms, fraction) = time.split_once('.').unwrap_or((time, "0"));
    let mut hms = hms.split(':').map(|p| p.parse::<u64>().ok());
    let (hh, mm, ss) = (hms.next()??, hms.next()??, hms.next()??);
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = u64::try_from(era * 146_097 + doe - 719_468).ok()?;
    let nanos: u64 = format!("{fraction:0<9}").get(..9)?.parse().ok()?;
    let secs = days * 86_400 + hh * 3600 + mm * 60 + ss;
    Some(UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_nanos(nanos))
}

/// `--name value` from the arguments, parsed, or `default`.
pub fn arg<T: std::str::FromStr>(name: &str, default: T) -> T {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Prints one result line.
pub fn emit(value: serde_json::Value) {
    println!("{value}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let mut v: Vec<Duration> = (1..=100).rev().map(Duration::from_millis).collect();
        assert_eq!(percentile(&mut v, 0.5), Duration::from_millis(50));
        assert_eq!(percentile(&mut v, 0.99), Duration::from_millis(99));
        assert_eq!(percentile(&mut [], 0.5), Duration::ZERO);
    }

    #[test]
    fn utc_times_parse() {
        let t = parse_utc("1970-01-02T00:00:01.5Z").unwrap();
        assert_eq!(
            t.duration_since(UNIX_EPOCH).unwrap(),
            Duration::from_millis(86_401_500)
        );
        assert!(parse_utc("yesterday").is_none());
    }
}
