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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_and_ids() {
        assert_eq!(hex(&[0x00, 0xab, 0x7f]), "00ab7f");
        let id = random_id("job_", 12).unwrap();
        assert!(id.starts_with("job_") && id.len() == 4 + 24);
        assert_ne!(id, random_id("job_", 12).unwrap());
    }
}
