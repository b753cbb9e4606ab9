//! Lists of services and jobs: one page on request, or every item as a lazy `Stream`
//! that fetches the next page only when the current one is used up.

use std::collections::VecDeque;

use futures_core::Stream;
use jobwire_core::endpoint::{Endpoint, ListJobs, ListServices};
use jobwire_core::paging::Pager;
use jobwire_core::{Error, Job, JobQuery, Page, Service, ServiceQuery};

use crate::Client;

/// The services a client can use; from [`Client::services`].
///
/// ```no_run
/// # async fn demo(client: jobwire::Client) -> Result<(), jobwire::Error> {
/// use futures_util::TryStreamExt;
/// let all: Vec<jobwire::Service> = client.services().limit(100).items().try_collect().await?;
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
    pub async fn page(&self) -> Result<Page<Service>, Error> {
        self.client
            .execute(&ListServices::page(&self.query, None))
            .await
    }

    /// Every matching service, page after page, as a `Stream`.
    pub fn items(self) -> impl Stream<Item = Result<Service, Error>> + Send + 'static {
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
/// # async fn demo(client: jobwire::Client) -> Result<(), jobwire::Error> {
/// use futures_util::TryStreamExt;
/// let failed: Vec<jobwire::Job> = client
///     .jobs()
///     .service("sleep")
///     .status(jobwire::JobStatus::Failed)
///     .items()
///     .try_collect()
///     .await?;
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
    pub async fn page(&self) -> Result<Page<Job>, Error> {
        self.client
            .execute(&ListJobs::page(&self.query, None))
            .await
    }

    /// Every matching job, page after page, as a `Stream`.
    pub fn items(self) -> impl Stream<Item = Result<Job, Error>> + Send + 'static {
        let start = self.query.start_cursor().map(str::to_owned);
        let query = self.query;
        paginate(self.client, start, move |cursor| {
            ListJobs::page(&query, cursor)
        })
    }
}

struct PageWalk<F, T> {
    client: Client,
    endpoint_for: F,
    pager: Pager,
    buffered: VecDeque<T>,
}

/// Streams the items of every page; the [`Pager`] decides which page comes next and
/// stops a server that repeats a cursor. An error ends the stream after it is yielded.
fn paginate<E, T, F>(
    client: Client,
    start: Option<String>,
    endpoint_for: F,
) -> impl Stream<Item = Result<T, Error>> + Send + 'static
where
    E: Endpoint<Output = Page<T>> + Send + Sync + 'static,
    T: Send + 'static,
    F: Fn(Option<&str>) -> E + Send + 'static,
{
    let walk = PageWalk {
        client,
        endpoint_for,
        pager: Pager::new(start),
        buffered: VecDeque::new(),
    };
    futures_util::stream::unfold(walk, |mut walk| async move {
        loop {
            if let Some(item) = walk.buffered.pop_front() {
                return Some((Ok(item), walk));
            }
            let endpoint = (walk.endpoint_for)(walk.pager.next_request()?);
            let page = match walk.client.execute(&endpoint).await {
                Ok(page) => page,
                Err(e) => {
                    // End the walk: the error is the last item.
                    walk.pager = Pager::new(None);
                    walk.pager.advance(None).ok()?;
                    return Some((Err(e), walk));
                }
            };
            if let Err(e) = walk.pager.advance(page.next_cursor) {
                return Some((Err(e), walk));
            }
            walk.buffered.extend(page.items);
        }
    })
}
