//! Lists of services and jobs: one page on request, or every item as a lazy `Stream`
//! that fetches the next page only when the current one is used up. The core's
//! [`Pager`] decides which page comes next.

use std::collections::VecDeque;

use futures_core::Stream;
use jobwire_core::endpoint::{Endpoint, ListJobs, ListServices};
use jobwire_core::paging::Pager;
use jobwire_core::{Error, Job, JobQuery, Page, Service, ServiceQuery};

use crate::Client;

/// The services a client can use; from [`Client::services`].
///
/// ```
/// # #[tokio::main]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let server = jobwire_server::spawn(jobwire_server::ServerConfig::new()).await?;
/// # let client = jobwire::Client::builder().base_url(server.url()).token(server.token()).build()?;
/// use futures_util::TryStreamExt;
/// let all: Vec<jobwire::Service> = client.services().limit(2).items().try_collect().await?;
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
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = jobwire_server::spawn(jobwire_server::ServerConfig::new()).await?;
    /// # let client = jobwire::Client::builder().base_url(server.url()).token(server.token()).build()?;
    /// let page = client.services().name("sleep").page().await?;
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
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = jobwire_server::spawn(jobwire_server::ServerConfig::new()).await?;
    /// # let client = jobwire::Client::builder().base_url(server.url()).token(server.token()).build()?;
    /// let job = client.submit("echo", &1).await?;
    /// let page = client.jobs().service("echo").limit(10).page().await?;
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
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = jobwire_server::spawn(jobwire_server::ServerConfig::new()).await?;
    /// # let client = jobwire::Client::builder().base_url(server.url()).token(server.token()).build()?;
    /// let first = client.services().limit(1).page().await?;
    /// assert_eq!(first.items.len(), 1);
    /// let cursor = first.next_cursor.expect("more than one service");
    /// let second = client.services().limit(1).cursor(cursor).page().await?;
    /// assert_ne!(second.items[0].id, first.items[0].id);
    /// # Ok(()) }
    /// ```
    pub async fn page(&self) -> Result<Page<Service>, Error> {
        self.client
            .execute(&ListServices::page(&self.query, None))
            .await
    }

    /// Every matching service, page after page, as a `Stream`.
    ///
    /// ```
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = jobwire_server::spawn(jobwire_server::ServerConfig::new()).await?;
    /// # let client = jobwire::Client::builder().base_url(server.url()).token(server.token()).build()?;
    /// use futures_util::TryStreamExt;
    /// let names: Vec<String> = client.services().limit(1).items().map_ok(|s| s.name).try_collect().await?;
    /// assert!(names.contains(&"sleep".to_owned()));
    /// # Ok(()) }
    /// ```
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
/// ```
/// # #[tokio::main]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let server = jobwire_server::spawn(jobwire_server::ServerConfig::new()).await?;
/// # let client = jobwire::Client::builder().base_url(server.url()).token(server.token()).build()?;
/// use futures_util::TryStreamExt;
/// client.run::<_, serde_json::Value>("echo", &1).await?;
/// let done: Vec<jobwire::Job> = client
///     .jobs()
///     .service("echo")
///     .status(jobwire::JobStatus::Succeeded)
///     .items()
///     .try_collect()
///     .await?;
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
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = jobwire_server::spawn(jobwire_server::ServerConfig::new()).await?;
    /// # let client = jobwire::Client::builder().base_url(server.url()).token(server.token()).build()?;
    /// use jobwire::SubmitOptions;
    /// client.submit_with("echo", &1, SubmitOptions::default().label("batch", "b1")).await?;
    /// let page = client.jobs().label("batch", "b1").page().await?;
    /// assert_eq!(page.items.len(), 1);
    /// assert!(page.next_cursor.is_none());
    /// # Ok(()) }
    /// ```
    pub async fn page(&self) -> Result<Page<Job>, Error> {
        self.client
            .execute(&ListJobs::page(&self.query, None))
            .await
    }

    /// Every matching job, page after page, as a `Stream`.
    ///
    /// ```
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = jobwire_server::spawn(jobwire_server::ServerConfig::new()).await?;
    /// # let client = jobwire::Client::builder().base_url(server.url()).token(server.token()).build()?;
    /// use futures_util::TryStreamExt;
    /// for i in 0..3 {
    ///     client.submit("echo", &i).await?;
    /// }
    /// let jobs: Vec<jobwire::Job> = client.jobs().limit(2).items().try_collect().await?;
    /// assert_eq!(jobs.len(), 3, "two pages");
    /// # Ok(()) }
    /// ```
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

/// The paging drive loop: streams the items of every page; the [`Pager`] decides which
/// page comes next and stops a server that repeats a cursor. An error ends the stream
/// after it is yielded.
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
                    walk.pager.stop();
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
