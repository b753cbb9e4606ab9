//! Identifiers the server makes up: job ids, tokens, server ids; and the hex they are
//! written in.

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

/// `prefix` followed by the time in milliseconds (6 bytes) and 8 random bytes, as hex:
/// ids made later sort later, so a store's index of them grows at one end (one page
/// touched per batch of new jobs, not one random page per job), while the random part
/// keeps them unguessable and unique.
pub(crate) fn sortable_id(prefix: &str, unix_millis: i64) -> Result<String, getrandom::Error> {
    let mut buf = [0u8; 14];
    let millis = u64::try_from(unix_millis).unwrap_or(0).to_be_bytes();
    buf[..6].copy_from_slice(&millis[2..]);
    getrandom::fill(&mut buf[6..])?;
    Ok(format!("{prefix}{}", hex(&buf)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sortable_ids_sort_by_time_and_differ_within_a_millisecond() {
        let a = sortable_id("job_", 1_767_225_599_000).unwrap();
        let b = sortable_id("job_", 1_767_225_599_000).unwrap();
        let later = sortable_id("job_", 1_767_225_599_001).unwrap();
        assert_eq!(a.len(), 4 + 28);
        assert!(a.starts_with("job_019b7"), "{a}");
        assert_ne!(a, b);
        assert!(a < later && b < later);
    }

    #[test]
    fn hex_and_ids() {
        assert_eq!(hex(&[0x00, 0xab, 0x7f]), "00ab7f");
        let id = random_id("job_", 12).unwrap();
        assert!(id.starts_with("job_") && id.len() == 4 + 24);
        assert_ne!(id, random_id("job_", 12).unwrap());
    }
}
