//! `Idempotency-Key` on submit (`docs/api.md`, "Submitting safely"): a repeat with the
//! same key and the same request gets the first request's job, with the status code the
//! first was answered with, instead of a second job; the same key with another request
//! is 422; a repeat while the first is still being answered is 409. Keys are per tenant,
//! stored with the job they created (so they survive restarts), and kept for the
//! server's idempotency window (24 h by default).

use std::collections::{BTreeMap, HashSet};
use std::sync::Mutex;

use http::HeaderMap;
use jobwire_core::FieldError;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::problem::ApiError;
use crate::ids::hex;
use crate::locking::lock;

/// The request header.
pub(super) const HEADER: &str = "idempotency-key";
/// The header on an answer that repeats a first one.
pub(super) const REPLAYED: &str = "idempotent-replayed";
/// The longest key accepted.
const MAX_LEN: usize = 255;

/// The request's key, if it has one: 1 to 255 visible ASCII characters (400 otherwise).
pub(super) fn key_of(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get(HEADER) else {
        return Ok(None);
    };
    let bytes = value.as_bytes();
    if bytes.is_empty() || bytes.len() > MAX_LEN || !bytes.iter().all(u8::is_ascii_graphic) {
        return Err(ApiError::bad_request(format!(
            "Idempotency-Key must be 1 to {MAX_LEN} visible ASCII characters"
        )));
    }
    Ok(Some(String::from_utf8_lossy(bytes).into_owned()))
}

/// What a submit asks for, as a digest: the same service, input and labels give the same
/// one, however the JSON was spaced or its members ordered (`serde_json` maps are sorted).
pub(super) fn fingerprint(
    service_id: &str,
    input: &Value,
    labels: &BTreeMap<String, String>,
) -> String {
    let mut hasher = Sha256::new();
    hasher.update(service_id.as_bytes());
    hasher.update([0]);
    hasher.update(input.to_string().as_bytes());
    hasher.update([0]);
    for (k, v) in labels {
        hasher.update(k.as_bytes());
        hasher.update([0]);
        hasher.update(v.as_bytes());
        hasher.update([0]);
    }
    hex(&hasher.finalize())
}

/// The 422 for a key used for another request.
pub(super) fn mismatch() -> ApiError {
    ApiError::validation(
        "this Idempotency-Key was first used for a different request (service, input or \
         labels); a new request needs a new key",
        vec![FieldError::new(
            "",
            "differs from the request first sent with this key",
        )],
    )
}

/// Keys whose first request this process is answering now.
#[derive(Debug, Default)]
pub(crate) struct InFlight(Mutex<HashSet<(String, String)>>);

impl InFlight {
    /// Claims `key` of `tenant` for the request being answered; 409 when another request
    /// with it is being answered.
    pub(super) fn claim(&self, tenant: &str, key: &str) -> Result<Claim<'_>, ApiError> {
        let slot = (tenant.to_owned(), key.to_owned());
        if !lock(&self.0).insert(slot.clone()) {
            return Err(ApiError::conflict(
                "a request with this Idempotency-Key is still being answered; repeat it once \
                 that one has its answer",
            ));
        }
        Ok(Claim { set: self, slot })
    }
}

/// A claimed key, released when the answer is made.
pub(super) struct Claim<'a> {
    set: &'a InFlight,
    slot: (String, String),
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        lock(&self.set.0).remove(&self.slot);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;
    use serde_json::json;

    #[test]
    fn keys_are_checked() {
        let with = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(HEADER, HeaderValue::from_str(v).unwrap());
            key_of(&h)
        };
        assert_eq!(key_of(&HeaderMap::new()).unwrap(), None);
        assert_eq!(with("k-1").unwrap().as_deref(), Some("k-1"));
        assert!(with(&"k".repeat(255)).is_ok());
        for bad in ["", "has space", &"k".repeat(256)] {
            assert_eq!(with(bad).unwrap_err().problem().status, 400, "{bad:?}");
        }
    }

    #[test]
    fn fingerprints_see_content_not_spelling() {
        let labels = BTreeMap::from([("a".to_owned(), "1".to_owned())]);
        let a = fingerprint("svc", &json!({"x": 1, "y": [1, 2]}), &labels);
        let parsed: Value = serde_json::from_str(r#"{ "y":[1,2], "x":1 }"#).unwrap();
        assert_eq!(a, fingerprint("svc", &parsed, &labels));
        assert_ne!(a, fingerprint("svc2", &parsed, &labels));
        assert_ne!(
            a,
            fingerprint("svc", &json!({"x": 2, "y": [1, 2]}), &labels)
        );
        assert_ne!(a, fingerprint("svc", &parsed, &BTreeMap::new()));
    }

    #[test]
    fn a_claimed_key_is_409_until_released() {
        let in_flight = InFlight::default();
        let claim = in_flight.claim("t", "k").unwrap();
        let again = in_flight.claim("t", "k").map(drop);
        assert_eq!(again.unwrap_err().problem().status, 409);
        assert!(
            in_flight.claim("other", "k").map(drop).is_ok(),
            "per tenant"
        );
        drop(claim);
        assert!(in_flight.claim("t", "k").is_ok());
    }
}
