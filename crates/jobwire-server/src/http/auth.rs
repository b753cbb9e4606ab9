//! Bearer-token authentication: each token maps to one tenant.
//!
//! Only SHA-256 digests of the tokens are kept for checking. A presented token is hashed
//! and compared against every digest in constant time, without stopping at a match, so
//! the time taken says nothing about the tokens. Tokens are never logged.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use http::header::AUTHORIZATION;
use http::request::Parts;
use sha2::{Digest, Sha256};

use super::problem::ApiError;
use super::App;

/// Compares two byte strings in time that depends only on their lengths.
///
/// Callers compare fixed-length digests, so the length is no secret either.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// The tokens the server accepts.
pub(crate) struct Tokens {
    entries: Vec<([u8; 32], String)>,
}

impl Tokens {
    /// From `(token, tenant)` pairs.
    pub(crate) fn new(pairs: &[(String, String)]) -> Self {
        Tokens {
            entries: pairs
                .iter()
                .map(|(token, tenant)| (Sha256::digest(token.as_bytes()).into(), tenant.clone()))
                .collect(),
        }
    }

    /// The tenant of `token`, if it is one of ours.
    pub(crate) fn tenant_for(&self, token: &str) -> Option<&str> {
        let presented: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let mut found = None;
        for (digest, tenant) in &self.entries {
            if constant_time_eq(digest, &presented) && found.is_none() {
                found = Some(tenant.as_str());
            }
        }
        found
    }
}

/// The tenant a request acts for, from its `Authorization: Bearer` header. Extracting it
/// is what makes a route require authentication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Tenant(pub String);

impl Tenant {
    /// The tenant's name.
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromRequestParts<Arc<App>> for Tenant {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .ok_or_else(|| ApiError::unauthorized("send Authorization: Bearer <token>"))?;
        let token = header
            .to_str()
            .ok()
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim())
            .ok_or_else(|| {
                ApiError::unauthorized("the Authorization header must be Bearer <token>")
            })?;
        app.tokens
            .tenant_for(token)
            .map(|tenant| Tenant(tenant.to_owned()))
            .ok_or_else(|| ApiError::unauthorized("the token is not valid"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_eq_works() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(constant_time_eq(b"", b""));
    }

    #[test]
    fn tokens_map_to_tenants() {
        let tokens = Tokens::new(&[("alpha".into(), "a".into()), ("beta".into(), "b".into())]);
        assert_eq!(tokens.tenant_for("alpha"), Some("a"));
        assert_eq!(tokens.tenant_for("beta"), Some("b"));
        assert_eq!(tokens.tenant_for("alph"), None);
        assert_eq!(tokens.tenant_for(""), None);
    }
}
