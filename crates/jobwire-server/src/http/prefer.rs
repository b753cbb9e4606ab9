//! The `Prefer` request header (RFC 7240), of which the server honours `wait`.
//!
//! The parser is [`jobwire_core::prefer`]'s, beside the SDK's writer of the header: the
//! first `wait` of the request's `Prefer` headers counts, and a `wait` whose value is not
//! a non-negative integer is an error (400), not silently ignored: a client that asked to
//! wait and did not get it would poll instead.

use http::HeaderMap;

/// The `wait` preference in seconds, if the request has one; the error is the 400's
/// detail.
///
/// Values too large for a `u64` saturate (they are capped to the server's maximum wait
/// anyway).
pub(crate) fn wait_seconds(headers: &HeaderMap) -> Result<Option<u64>, String> {
    jobwire_core::prefer::wait_seconds(headers).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;
    use jobwire_core::prefer::PREFER;

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
