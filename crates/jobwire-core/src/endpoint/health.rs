use bytes::Bytes;

use super::{decode_json, finish, start_request, Endpoint};
use crate::{ClientConfig, Error, Health};

/// `GET /v1/health`: is the server up, and which version is it.
///
/// ```
/// use jobwire_core::endpoint::{Endpoint, GetHealth};
/// let req = GetHealth.request(&jobwire_core::ClientConfig::default()).unwrap();
/// assert_eq!(req.uri().path(), "/v1/health");
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct GetHealth;

impl Endpoint for GetHealth {
    type Output = Health;

    fn request(&self, config: &ClientConfig) -> Result<http::Request<Bytes>, Error> {
        finish(
            start_request(config, http::Method::GET, "/v1/health"),
            Bytes::new(),
        )
    }

    fn parse(&self, response: http::Response<Bytes>) -> Result<Health, Error> {
        decode_json(response)
    }
}
