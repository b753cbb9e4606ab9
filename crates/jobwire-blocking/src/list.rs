//! Lists of services and jobs: one page on request, or every item as a lazy `Iterator`
//! that fetches the next page only when the current one is used up. The core's
//! [`Pager`] decides which page comes next.

use std::collections::VecDeque;

use jobwire_core::endpoint::{Endpoint, ListJobs, ListServices};
use jobwire_core::paging::Pager;
use jobwire_core::{Error, Job, JobQuery, Page, Service, ServiceQuery};

use crate::Client;

/// The services a client can use; from [`Client::services`].
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let server = jobwire_server::spawn_blocking_server(jobwire_server::ServerConfig::new())?;
/// # let client = jobwire_blocking::Client::builder().base_url(server.url()).token(server.token()).build()?;
/// let all: Vec<jobwire_blocking::Service> = client.services().limit(2).items().collect::<Result<_, _>>()?;
/// assert!(all.iter().any(|s| s.name == "echo"));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct ServiceList {
    client: Client,
    query: ServiceQuery,
}

impl Client {
    /// The services this client can use: `.items()` walks them all, page by page;
    /// `.page()` fetches one page.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = jobwire_server::spawn_blocking_server(jobwire_server::ServerConfig::new())?;
    /// # let client = jobwire_blocking::Client::builder().base_url(server.url()).token(server.token()).build()?;
    /// let page = client.services().name("sleep").page()?;
    /// assert_eq!(page.items[0].name, "sleep");
    /// # Ok(()) }
    /// ```
    pub fn services(&self) -> ServiceList {
        ServiceList {
            client: self.clone(),
            query: ServiceQuery::default(),
        }
    }

    /// The jobs of this client's tenant, newest first, with filters.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = jobwire_server::spawn_blocking_server(jobwire_server::ServerConfig::new())?;
    /// # let client = jobwire_blocking::Client::builder().base_url(server.url()).token(server.token()).build()?;
    /// let job = client.submit("echo", &1)?;
    /// let page = client.jobs().service("echo").limit(10).page()?;
    /// assert_eq!(page.items[0].id, job.id());
    /// # Ok(()) }
    /// ```
    pub fn jobs(&self) -> JobList {
        JobList {
            client: self.clone(),
            query: JobQuery::default(),
        }
    }
}

impl ServiceList {
    jobwire_core::__service_query_setters!(query);

    /// One page, with the cursor to the next.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = jobwire_server::spawn_blocking_server(jobwire_server::ServerConfig::new())?;
    /// # let client = jobwire_blocking::Client::builder().base_url(server.url()).token(server.token()).build()?;
    /// let first = client.services().limit(1).page()?;
    /// assert_eq!(first.items.len(), 1);
    /// let cursor = first.next_cursor.expect("more than one service");
    /// let second = client.services().limit(1).cursor(cursor).page()?;
    /// assert_ne!(second.items[0].id, first.items[0].id);
    /// # Ok(()) }
    /// ```
    pub fn page(&self) -> Result<Page<Service>, Error> {
        self.client.execute(&ListServices::page(&self.query, None))
    }

    /// Every matching service, page after page, as an `Iterator`.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = jobwire_server::spawn_blocking_server(jobwire_server::ServerConfig::new())?;
    /// # let client = jobwire_blocking::Client::builder().base_url(server.url()).token(server.token()).build()?;
    /// let names: Vec<String> = client
    ///     .services()
    ///     .limit(1)
    ///     .items()
    ///     .map(|s| s.map(|s| s.name))
    ///     .collect::<Result<_, _>>()?;
    /// assert!(names.contains(&"sleep".to_owned()));
    /// # Ok(()) }
    /// ```
    pub fn items(self) -> impl Iterator<Item = Result<Service, Error>> + Send + 'static {
        let start = self.query.start_cursor().map(str::to_owned);
        let query = self.query;
        paginate(self.client, start, move |cursor| {
            ListServices::page(&query, cursor)
        })
    }
}

/// The jobs of the client's tenant, newest first; from [`Client::jobs`].
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let server = jobwire_server::spawn_blocking_server(jobwire_server::ServerConfig::new())?;
/// # let client = jobwire_blocking::Client::builder().base_url(server.url()).token(server.token()).build()?;
/// client.run::<_, serde_json::Value>("echo", &1)?;
/// let done: Vec<jobwire_blocking::Job> = client
///     .jobs()
///     .service("echo")
///     .status(jobwire_blocking::JobStatus::Succeeded)
///     .items()
///     .collect::<Result<_, _>>()?;
/// assert_eq!(done.len(), 1);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct JobList {
    client: Client,
    query: JobQuery,
}

impl JobList {
    jobwire_core::__job_query_setters!(query);

    /// One page, with the cursor to the next.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = jobwire_server::spawn_blocking_server(jobwire_server::ServerConfig::new())?;
    /// # let client = jobwire_blocking::Client::builder().base_url(server.url()).token(server.token()).build()?;
    /// use jobwire_blocking::SubmitOptions;
    /// client.submit_with("echo", &1, SubmitOptions::default().label("batch", "b1"))?;
    /// let page = client.jobs().label("batch", "b1").page()?;
    /// assert_eq!(page.items.len(), 1);
    /// assert!(page.next_cursor.is_none());
    /// # Ok(()) }
    /// ```
    pub fn page(&self) -> Result<Page<Job>, Error> {
        self.client.execute(&ListJobs::page(&self.query, None))
    }

    /// Every matching job, page after page, as an `Iterator`.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = jobwire_server::spawn_blocking_server(jobwire_server::ServerConfig::new())?;
    /// # let client = jobwire_blocking::Client::builder().base_url(server.url()).token(server.token()).build()?;
    /// for i in 0..3 {
    ///     client.submit("echo", &i)?;
    /// }
    /// let jobs: Vec<jobwire_blocking::Job> = client.jobs().limit(2).items().collect::<Result<_, _>>()?;
    /// assert_eq!(jobs.len(), 3, "two pages");
    /// # Ok(()) }
    /// ```
    pub fn items(self) -> impl Iterator<Item = Result<Job, Error>> + Send + 'static {
        let start = self.query.start_cursor().map(str::to_owned);
        let query = self.query;
        paginate(self.client, start, move |cursor| {
            ListJobs::page(&query, cursor)
        })
    }
}

/// The paging drive loop, as an iterator over the items of every page; the [`Pager`]
/// decides which page comes next and stops a server that repeats a cursor. An error
/// ends the iteration after it is yielded.
pub struct Items<T, F> {
    client: Client,
    endpoint_for: F,
    pager: Pager,
    buffered: VecDeque<T>,
}

impl<T, F> std::fmt::Debug for Items<T, F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Items")
            .field("pager", &self.pager)
            .field("buffered", &self.buffered.len())
            .finish_non_exhaustive()
    }
}

impl<E, T, F> Iterator for Items<T, F>
where
    E: Endpoint<Output = Page<T>>,
    F: Fn(Option<&str>) -> E,
{
    type Item = Result<T, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(item) = self.buffered.pop_front() {
                return Some(Ok(item));
            }
            let endpoint = (self.endpoint_for)(self.pager.next_request()?);
            let page = match self.client.execute(&endpoint) {
                Ok(page) => page,
                Err(e) => {
                    self.pager.stop();
                    return Some(Err(e));
                }
            };
            if let Err(e) = self.pager.advance(page.next_cursor) {
                return Some(Err(e));
            }
            self.buffered.extend(page.items);
        }
    }
}

fn paginate<E, T, F>(client: Client, start: Option<String>, endpoint_for: F) -> Items<T, F>
where
    E: Endpoint<Output = Page<T>>,
    F: Fn(Option<&str>) -> E,
{
    Items {
        client,
        endpoint_for,
        pager: Pager::new(start),
        buffered: VecDeque::new(),
    }
}
