//! The `Prefer` request header (RFC 7240), of which jobwire uses `wait`: the SDK writes
//! `Prefer: wait=N` to long-poll a job ([`wait_value`]) and the server reads it
//! ([`wait_seconds`]), so one module owns the header both ways.
//!
//! A request may carry several `Prefer` headers, each with several comma-separated
//! preferences (`respond-async, wait=5`), each possibly with `;`-separated parameters.
//! Names are case-insensitive; unknown preferences are ignored; when a preference appears
//! more than once, the first counts (RFC 7240 §2). A `wait` whose value is not a
//! non-negative integer is an error, not silently ignored: a client that asked to wait
//! and did not get it would poll instead.
//!
//! ```
//! use jobwire_core::prefer::{wait_seconds, wait_value, PREFER};
//!
//! let mut headers = http::HeaderMap::new();
//! headers.insert(PREFER, wait_value(30));
//! assert_eq!(headers[PREFER], "wait=30");
//! assert_eq!(wait_seconds(&headers), Ok(Some(30)));
//!
//! headers.insert(PREFER, http::HeaderValue::from_static("respond-async, wait=soon"));
//! assert!(wait_seconds(&headers).is_err());
//! ```

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue};

/// RFC 7240's header (the `http` crate has no constant for it).
pub const PREFER: HeaderName = HeaderName::from_static("prefer");

/// Why a request's `Prefer` header cannot be honoured.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PreferError {
    /// A `Prefer` header value is not visible ASCII.
    #[error("the Prefer header is not valid ASCII")]
    NotAscii,
    /// The `wait` preference has no value, or one that is not a whole number of seconds.
    #[error(
        "Prefer: {preference} is not valid: wait takes a non-negative whole number of seconds, as in wait=10"
    )]
    BadWait {
        /// The preference as it came (its parameters removed).
        preference: String,
    },
}

/// `wait=N` as a header value, written without the formatting machinery (it is on every
/// long-poll).
///
/// ```
/// assert_eq!(jobwire_core::prefer::wait_value(u64::MAX), "wait=18446744073709551615");
/// ```
pub fn wait_value(seconds: u64) -> HeaderValue {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut n = seconds;
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let mut value = Vec::with_capacity(5 + digits.len() - at);
    value.extend_from_slice(b"wait=");
    value.extend_from_slice(&digits[at..]);
    // Digits and "wait=" are always a valid header value.
    HeaderValue::from_maybe_shared(Bytes::from(value))
        .unwrap_or_else(|_| HeaderValue::from_static("wait=0"))
}

/// The `wait` preference of a request's `Prefer` headers in seconds, if it has one.
///
/// Values too large for a `u64` saturate (a server caps them to its longest wait
/// anyway).
///
/// ```
/// use jobwire_core::prefer::{wait_seconds, PREFER};
/// let mut headers = http::HeaderMap::new();
/// headers.append(PREFER, http::HeaderValue::from_static("respond-async"));
/// headers.append(PREFER, http::HeaderValue::from_static("WAIT=\"5\"; x=y, wait=9"));
/// assert_eq!(wait_seconds(&headers), Ok(Some(5)), "the first counts");
/// ```
pub fn wait_seconds(headers: &HeaderMap) -> Result<Option<u64>, PreferError> {
    for value in headers.get_all(PREFER) {
        let value = value.to_str().map_err(|_| PreferError::NotAscii)?;
        for preference in value.split(',') {
            // Parameters after `;` do not matter for `wait`.
            let token = preference.split(';').next().unwrap_or("").trim();
            let (name, raw) = match token.split_once('=') {
                Some((name, raw)) => (name.trim(), Some(raw.trim())),
                None => (token, None),
            };
            if !name.eq_ignore_ascii_case("wait") {
                continue;
            }
            let raw = raw.map(|r| {
                r.strip_prefix('"')
                    .and_then(|r| r.strip_suffix('"'))
                    .unwrap_or(r)
            });
            return match raw {
                Some(digits)
                    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) =>
                {
                    Ok(Some(digits.parse::<u64>().unwrap_or(u64::MAX)))
                }
                _ => Err(PreferError::BadWait {
                    preference: token.to_owned(),
                }),
            };
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_values() {
        for (seconds, want) in [
            (0, "wait=0"),
            (1, "wait=1"),
            (60, "wait=60"),
            (u64::MAX, "wait=18446744073709551615"),
        ] {
            assert_eq!(wait_value(seconds), want);
            let mut headers = HeaderMap::new();
            headers.insert(PREFER, wait_value(seconds));
            assert_eq!(wait_seconds(&headers), Ok(Some(seconds)), "read back");
        }
    }

    #[test]
    fn errors_say_what_to_send() {
        assert_eq!(
            PreferError::BadWait {
                preference: "wait=soon".into()
            }
            .to_string(),
            "Prefer: wait=soon is not valid: wait takes a non-negative whole number of seconds, as in wait=10"
        );
        let mut headers = HeaderMap::new();
        headers.insert(PREFER, HeaderValue::from_bytes(b"wait=\xff").unwrap());
        assert_eq!(wait_seconds(&headers), Err(PreferError::NotAscii));
    }
}
