//! Lists of services and jobs: one page on request, or every item as a lazy `Iterator`
//! that fetches the next page only when the current one is used up.

use std::collections::VecDeque;

use jobwire_core::endpoint::{Endpoint, ListJobs, ListServices};
use jobwire_core::paging::Pager;
use jobwire_core::{Error, Job, JobQuery, Page, Service, ServiceQuery};

use crate::Client;

/// The services a client can use; from [`Client::services`].
///
/// ```no_run
/// # fn demo(client: jobwire_blocking::Client) -> Result<(), jobwire_blocking::Error> {
/// let all: Vec<jobwire_blocking::Service> = client.services().limit(100).items().collect::<Result<_, _>>()?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct ServiceList {
    client: Client,
    query: ServiceQuery,
}

impl ServiceList {
    pub(crate) fn new(client: Client) -> Self {
        ServiceList {
            client,
            query: ServiceQuery::default(),
        }
    }

    jobwire_core::__service_query_setters!(query);

    /// One page, with the cursor to the next.
    pub fn page(&self) -> Result<Page<Service>, Error> {
        self.client.execute(&ListServices::page(&self.query, None))
    }

    /// Every matching service, page after page, as an `Iterator`.
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
/// ```no_run
/// # fn demo(client: jobwire_blocking::Client) -> Result<(), jobwire_blocking::Error> {
/// let failed: Vec<jobwire_blocking::Job> = client
///     .jobs()
///     .service("sleep")
///     .status(jobwire_blocking::JobStatus::Failed)
///     .items()
///     .collect::<Result<_, _>>()
///     ?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct JobList {
    client: Client,
    query: JobQuery,
}

impl JobList {
    pub(crate) fn new(client: Client) -> Self {
        JobList {
            client,
            query: JobQuery::default(),
        }
    }

    jobwire_core::__job_query_setters!(query);

    /// One page, with the cursor to the next.
    pub fn page(&self) -> Result<Page<Job>, Error> {
        self.client.execute(&ListJobs::page(&self.query, None))
    }

    /// Every matching job, page after page, as an `Iterator`.
    pub fn items(self) -> impl Iterator<Item = Result<Job, Error>> + Send + 'static {
        let start = self.query.start_cursor().map(str::to_owned);
        let query = self.query;
        paginate(self.client, start, move |cursor| {
            ListJobs::page(&query, cursor)
        })
    }
}

/// Iterates over the items of every page; the [`Pager`] decides which page comes next
/// and stops a server that repeats a cursor. An error ends the iteration after it is
/// yielded.
pub struct Items<T, F> {
    client: Client,
    endpoint_for: F,
    pager: Pager,
    buffered: VecDeque<T>,
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
                    self.pager = Pager::new(None);
                    self.pager.advance(None).ok()?;
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
