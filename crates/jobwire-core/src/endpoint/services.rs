use bytes::Bytes;

use super::url::{encode_component, Query};
use super::{decode_json, finish, json_body, start_request, Endpoint};
use crate::{ClientConfig, Error, Page, Service, ServiceSpec};

/// Filters and position for listing services; the same setters appear on the
/// facades' `client.services()` lists.
///
/// ```
/// let q = jobwire_core::endpoint::ServiceQuery::default().name("echo").limit(10);
/// assert_eq!(q.limit_value(), Some(10));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceQuery {
    name: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
}

impl ServiceQuery {
    /// Only the service with this exact name.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Items per page (the server's default is 50, its maximum 1000).
    pub fn limit(mut self, limit: u32) -> Self {
        self.limit = Some(limit);
        self
    }

    /// Start after this cursor (from an earlier page's `next_cursor`).
    pub fn cursor(mut self, cursor: impl Into<String>) -> Self {
        self.cursor = Some(cursor.into());
        self
    }

    /// The page size asked for, if set.
    pub fn limit_value(&self) -> Option<u32> {
        self.limit
    }

    /// The cursor to start from, if set.
    pub fn start_cursor(&self) -> Option<&str> {
        self.cursor.as_deref()
    }
}

/// Stamps the [`ServiceQuery`] setters onto a facade's list held in `$field`.
#[doc(hidden)]
#[macro_export]
macro_rules! __service_query_setters {
    ($field:ident) => {
        $crate::__forward_setters! { $field:
            /// Only the service with this exact name.
            fn name(name: impl Into<String>);
            /// Items per page (server default 50, maximum 1000).
            fn limit(limit: u32);
            /// Start after this cursor (from an earlier page's `next_cursor`).
            fn cursor(cursor: impl Into<String>);
        }
    };
}

/// `GET /v1/services`: one page of services.
#[derive(Debug, Clone, Default)]
pub struct ListServices {
    /// The filters; its cursor says which page.
    pub query: ServiceQuery,
}

impl ListServices {
    /// The page of `query` that starts at `cursor` (the query's own cursor if `None`).
    pub fn page(query: &ServiceQuery, cursor: Option<&str>) -> Self {
        let mut query = query.clone();
        if let Some(c) = cursor {
            query.cursor = Some(c.to_owned());
        }
        ListServices { query }
    }
}

impl Endpoint for ListServices {
    type Output = Page<Service>;

    fn request(&self, config: &ClientConfig) -> Result<http::Request<Bytes>, Error> {
        let mut q = Query::default();
        q.push_opt("name", self.query.name.as_deref());
        q.push_opt("limit", self.query.limit);
        q.push_opt("cursor", self.query.cursor.as_deref());
        let path = format!("/v1/services{}", q.as_str());
        finish(
            start_request(config, http::Method::GET, &path),
            Bytes::new(),
        )
    }

    fn parse(&self, response: http::Response<Bytes>) -> Result<Page<Service>, Error> {
        decode_json(response)
    }
}

/// `GET /v1/services/{id-or-name}`: one service, by id or by unique name.
///
/// ```
/// use jobwire_core::endpoint::{Endpoint, GetService};
/// let req = GetService::new("my service").request(&jobwire_core::ClientConfig::default()).unwrap();
/// assert_eq!(req.uri().path(), "/v1/services/my%20service");
/// assert!(GetService::new("").request(&jobwire_core::ClientConfig::default()).is_err());
/// ```
#[derive(Debug, Clone)]
pub struct GetService {
    id_or_name: String,
}

impl GetService {
    /// The service with this id (`svc_…`) or name.
    pub fn new(id_or_name: impl Into<String>) -> Self {
        GetService {
            id_or_name: id_or_name.into(),
        }
    }
}

impl Endpoint for GetService {
    type Output = Service;

    fn request(&self, config: &ClientConfig) -> Result<http::Request<Bytes>, Error> {
        let segment = non_empty_segment("service id or name", &self.id_or_name)?;
        let path = format!("/v1/services/{segment}");
        finish(
            start_request(config, http::Method::GET, &path),
            Bytes::new(),
        )
    }

    fn parse(&self, response: http::Response<Bytes>) -> Result<Service, Error> {
        decode_json(response)
    }
}

/// An id or name as one encoded path segment; an empty one is refused before sending.
pub(crate) fn non_empty_segment(what: &'static str, value: &str) -> Result<String, Error> {
    if value.trim().is_empty() {
        return Err(Error::invalid(what, "must not be empty"));
    }
    Ok(encode_component(value))
}

/// `POST /v1/services`: registers a command service (201 with the service); 403 when
/// the server runs no programs, 409 when the name is taken, 422 with each invalid field.
///
/// Not repeated after a lost answer: a second create would meet the first one's name
/// (409). `create_or_get_service` in the facades takes that case in its stride.
///
/// ```
/// use jobwire_core::endpoint::{CreateService, Endpoint};
/// use jobwire_core::{ClientConfig, CommandSpec, ServiceSpec};
/// let spec = ServiceSpec::command("true", CommandSpec::new("/bin/true"));
/// let req = CreateService::new(spec).request(&ClientConfig::default()).unwrap();
/// assert_eq!((req.method().as_str(), req.uri().path()), ("POST", "/v1/services"));
/// ```
#[derive(Debug, Clone)]
pub struct CreateService {
    spec: ServiceSpec,
}

impl CreateService {
    /// Registers `spec`.
    pub fn new(spec: ServiceSpec) -> Self {
        CreateService { spec }
    }
}

impl Endpoint for CreateService {
    type Output = Service;

    fn request(&self, config: &ClientConfig) -> Result<http::Request<Bytes>, Error> {
        if self.spec.name.trim().is_empty() {
            return Err(Error::invalid("service name", "must not be empty"));
        }
        json_body(
            start_request(config, http::Method::POST, "/v1/services"),
            &self.spec,
        )
    }

    fn parse(&self, response: http::Response<Bytes>) -> Result<Service, Error> {
        decode_json(response)
    }
}

/// `DELETE /v1/services/{id}`: retires one of the caller's services (204). Its jobs stay
/// readable; a submit to it then answers 410. Deleting a retired service again is 204
/// too, so the request may be repeated.
///
/// ```
/// use jobwire_core::endpoint::{DeleteService, Endpoint};
/// let req = DeleteService::new("svc_1").request(&jobwire_core::ClientConfig::default()).unwrap();
/// assert_eq!((req.method().as_str(), req.uri().path()), ("DELETE", "/v1/services/svc_1"));
/// ```
#[derive(Debug, Clone)]
pub struct DeleteService {
    id: String,
}

impl DeleteService {
    /// Retires the service with this id (`svc_…`).
    pub fn new(id: impl Into<String>) -> Self {
        DeleteService { id: id.into() }
    }
}

impl Endpoint for DeleteService {
    type Output = ();

    fn request(&self, config: &ClientConfig) -> Result<http::Request<Bytes>, Error> {
        let segment = non_empty_segment("service id", &self.id)?;
        let path = format!("/v1/services/{segment}");
        let builder =
            start_request(config, http::Method::DELETE, &path).extension(crate::retry::Repeatable);
        finish(builder, Bytes::new())
    }

    fn parse(&self, response: http::Response<Bytes>) -> Result<(), Error> {
        if response.status().is_success() {
            Ok(())
        } else {
            Err(super::error_from_response(&response))
        }
    }
}
