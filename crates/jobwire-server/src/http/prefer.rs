//! The `Prefer` request header (RFC 7240), of which the server honours `wait`.
//!
//! A request may carry several `Prefer` headers, each with several comma-separated
//! preferences (`respond-async, wait=5`), each possibly with `;`-separated parameters.
//! Names are case-insensitive; unknown preferences are ignored; when a preference appears
//! more than once, the first counts (RFC 7240 §2). A `wait` whose value is not a
//! non-negative integer is an error (400), not silently ignored: a client that asked to
//! wait and did not get it would poll instead.

use http::HeaderMap;

/// The `Prefer` header name (the `http` crate has no constant for it).
const PREFER: &str = "prefer";

/// The `wait` preference in seconds, if the request has one.
///
/// Values too large for a `u64` saturate (they are capped to the server's maximum wait
/// anyway).
pub(crate) fn wait_seconds(headers: &HeaderMap) -> Result<Option<u64>, String> {
    for value in headers.get_all(PREFER) {
        let value = value
            .to_str()
            .map_err(|_| "the Prefer header is not valid ASCII".to_owned())?;
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
                Some(digits) if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) => {
                    Ok(Some(digits.parse::<u64>().unwrap_or(u64::MAX)))
                }
                _ => Err(format!(
                    "Prefer: {} is not valid: wait takes a non-negative whole number of seconds, as in wait=10",
                    token
                )),
            };
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn parse(values: &[&str]) -> Result<Option<u64>, String> {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append(PREFER, HeaderValue::from_str(v).unwrap());
        }
        wait_seconds(&headers)
    }

    #[test]
    fn table() {
        let ok: &[(&[&str], Option<u64>)] = &[
            (&[], None),
            (&["wait=5"], Some(5)),
            (&["WAIT=5"], Some(5)),
            (&["wait = 7"], Some(7)),
            (&["wait=\"3\""], Some(3)),
            (&["respond-async, wait=5"], Some(5)),
            (&["respond-async,wait=0"], Some(0)),
            (&["return=minimal; foo=bar, wait=9; x=y"], Some(9)),
            (&["respond-async", "wait=4"], Some(4)),
            (&["wait=1", "wait=2"], Some(1)),
            (&["wait=1, wait=x"], Some(1)),
            (&["respond-async, handling=lenient"], None),
            (&["waiting=3"], None),
            (&["wait=99999999999999999999999"], Some(u64::MAX)),
        ];
        for (headers, want) in ok {
            assert_eq!(parse(headers), Ok(*want), "{headers:?}");
        }
        for bad in [
            &["wait"][..],
            &["wait="],
            &["wait=-1"],
            &["wait=1.5"],
            &["wait=abc"],
            &["respond-async, wait=soon"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }
}
