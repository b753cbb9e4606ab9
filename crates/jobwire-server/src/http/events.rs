//! The event streams: `GET /v1/jobs/{id}/events` and `GET /v1/events`, as server-sent
//! events (`docs/api.md`, "Event streams").
//!
//! A stream subscribes to the live events it wants *before* it reads the history from the
//! store, and sends only events above the last id it sent: an event recorded while the
//! history is read is in both, and goes out once. Live events arrive in id order (see
//! `crate::bus`), so "above the last id sent" is all the deduplication needed.
//!
//! A stream subscribes to no more than it sends: a job's stream and a `job` filter to
//! those jobs' events, a `service` filter to that service's, so the bus never wakes it
//! for the tenant's other events. Each stream takes one of its tenant's stream slots
//! (`max_streams_per_tenant`; beyond them, 429 `rate_limited`).
//!
//! What a stream holds while its client does not read is bounded in bytes: its live
//! queue by the bus (past the bound it is cut off, and resumes from the store), and the
//! history page it is sending by the same bound (the rest of a page is read again
//! later; one event always fits).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::response::Response;
use bytes::Bytes;
use http::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderMap, StatusCode, Uri};
use tokio::sync::watch;
use tokio::time::{Instant, Interval, MissedTickBehavior};

use super::auth::Tenant;
use super::problem::ApiError;
use super::query::Query;
use super::routes::service_filter;
use super::App;
use crate::bus::{held_bytes, AtStreamCap, CutOff, Interest, Subscription};
use crate::store::{Event, EventQuery};

type Result<T> = std::result::Result<T, ApiError>;

/// Most job ids one `/v1/events` request may filter on.
const MAX_JOB_FILTERS: usize = 100;
/// Most events read from the store per history page (fewer when they are large: a page
/// is held to the subscriber byte bound).
const HISTORY_PAGE: usize = 256;
/// The reconnection delay clients are told once, at the start of each stream.
const RETRY_FRAME: &[u8] = b"retry: 1000\n\n";
/// The heartbeat: a comment line, then a blank line.
const KEEP_ALIVE_FRAME: &[u8] = b": keep-alive\n\n";

/// `Last-Event-ID`: absent (or empty), or a non-negative decimal integer.
fn last_event_id(headers: &HeaderMap) -> Result<Option<i64>> {
    let Some(value) = headers.get("last-event-id") else {
        return Ok(None);
    };
    let bad = || {
        ApiError::bad_request(format!(
            "Last-Event-ID must be an event id (a non-negative integer), not {:?}",
            String::from_utf8_lossy(value.as_bytes())
        ))
    };
    let text = value.to_str().map_err(|_| bad())?.trim();
    if text.is_empty() {
        return Ok(None);
    }
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    // Digits past any id there can be: after everything.
    Ok(Some(text.parse::<i64>().unwrap_or(i64::MAX)))
}

/// `GET /v1/jobs/{id}/events`: the job's events, history then live; ends after `done`.
pub(super) async fn job_events(
    State(app): State<Arc<App>>,
    tenant: Tenant,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response> {
    let after = last_event_id(&headers)?.unwrap_or(0);
    let (job, _) = app
        .runner
        .get(tenant.as_str(), &id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("there is no job {id:?}")))?;
    let live = open_stream(&app, &tenant, Interest::Jobs(vec![id.clone()]))?;
    let query = EventQuery {
        after,
        jobs: vec![id.clone()],
        service_id: None,
        limit: HISTORY_PAGE,
    };
    if job.is_finished() {
        // A finished job's events are removed together: none left means they are gone.
        let store = app.runner.store();
        let any = EventQuery {
            after: 0,
            limit: 1,
            ..query.clone()
        };
        if store.events(tenant.as_str(), &any).await?.is_empty() {
            return Err(ApiError::gone(format!(
                "the events of job {id} were removed after the retention window; \
                 read the job with GET /v1/jobs/{id}"
            )));
        }
        // Resumed past its `done`: the stream is over, and 204 says so the standard way
        // (an `EventSource` stops reconnecting).
        let next = EventQuery {
            limit: 1,
            ..query.clone()
        };
        if after > 0 && store.events(tenant.as_str(), &next).await?.is_empty() {
            return Ok(finished_stream());
        }
    }
    let end = End::AfterDone {
        finished_at_open: job.is_finished(),
    };
    Ok(sse_response(Feed::new(&app, tenant, query, live, end)))
}

/// The answer to a resume of a finished job's stream after its last event.
fn finished_stream() -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::NO_CONTENT;
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// `GET /v1/events?service&job`: every event of the tenant's jobs on one stream.
pub(super) async fn events(
    State(app): State<Arc<App>>,
    tenant: Tenant,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response> {
    let query = Query::parse(uri.query())?;
    let jobs: Vec<String> = query.all("job").map(str::to_owned).collect();
    if jobs.len() > MAX_JOB_FILTERS {
        return Err(ApiError::bad_request(format!(
            "at most {MAX_JOB_FILTERS} job filters per stream, not {}",
            jobs.len()
        )));
    }
    let store = app.runner.store();
    let service_id = service_filter(&app, &tenant, &query).await?;
    let resume = last_event_id(&headers)?;
    // The narrowest subscription that still sees every event the filters let through.
    let interest = match (&jobs, &service_id) {
        (jobs, _) if !jobs.is_empty() => Interest::Jobs(jobs.clone()),
        (_, Some(service)) => Interest::Service(service.clone()),
        _ => Interest::Tenant,
    };
    let live = open_stream(&app, &tenant, interest)?;
    let after = match resume {
        Some(n) => n,
        // A job filter alone asks for those jobs' history.
        None if !jobs.is_empty() => 0,
        // Nothing asked for: live events from now on.
        None => app.runner.bus().latest(),
    };
    // `Last-Event-ID: 0` asks for whatever is kept: never gone.
    let floor = store.event_floor(tenant.as_str()).await?;
    if resume.is_some_and(|n| n > 0) && after < floor {
        return Err(gone_since(after, floor));
    }
    let query = EventQuery {
        after,
        jobs,
        service_id,
        limit: HISTORY_PAGE,
    };
    let end = End::Never {
        resumed_from: resume.filter(|n| *n > 0),
    };
    Ok(sse_response(Feed::new(&app, tenant, query, live, end)))
}

/// Subscribes a new stream to `interest`, in one of the tenant's stream slots: 429 when
/// they are all taken.
fn open_stream(app: &App, tenant: &Tenant, interest: Interest) -> Result<Subscription> {
    app.runner
        .bus()
        .open_stream(tenant.as_str(), interest)
        .map_err(|AtStreamCap { limit }| {
            ApiError::rate_limited(format!(
                "this tenant already has {limit} event streams open, the most allowed \
                 (max_streams_per_tenant); close one, or retry after Retry-After"
            ))
        })
}

fn gone_since(after: i64, floor: i64) -> ApiError {
    ApiError::gone(format!(
        "events after {after} are no longer all kept (retention removed some up to {floor}); \
         re-read the jobs you follow with GET and subscribe again without Last-Event-ID"
    ))
}

/// When a stream ends by itself.
enum End {
    /// A job's stream: after its `done`, or (a job finished when the stream opened whose
    /// `done` is before the resume point) as soon as the history is sent.
    AfterDone { finished_at_open: bool },
    /// The multiplexed stream: never, but for a resume point retention overtook while
    /// the history was read (the stream ends, and the client's resume then answers 410).
    Never { resumed_from: Option<i64> },
}

/// One subscriber's stream: the history from the store, then live events.
struct Feed {
    app: Arc<App>,
    tenant: Tenant,
    /// `after` is the id of the last event sent.
    query: EventQuery,
    live: Subscription,
    /// Most bytes of history held at once (one event always).
    history_bytes: usize,
    closed: watch::Receiver<bool>,
    heartbeat: Interval,
    heartbeat_every: Duration,
    backlog: VecDeque<Event>,
    history_done: bool,
    end: End,
    /// Events this stream may still send before it ends (the client then resumes).
    budget: Option<usize>,
    started: bool,
    finished: bool,
}

impl Feed {
    fn new(
        app: &Arc<App>,
        tenant: Tenant,
        query: EventQuery,
        live: Subscription,
        end: End,
    ) -> Self {
        let every = app.heartbeat;
        let mut heartbeat = tokio::time::interval_at(Instant::now() + every, every);
        heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
        Feed {
            app: app.clone(),
            tenant,
            query,
            live,
            history_bytes: app.runner.bus().bounds().bytes,
            closed: app.runner.bus().closed(),
            heartbeat,
            heartbeat_every: every,
            backlog: VecDeque::new(),
            history_done: false,
            end,
            budget: app.max_events_per_stream,
            started: false,
            finished: false,
        }
    }

    /// The next frame to send; `None` ends the stream.
    async fn next_frame(&mut self) -> Option<Bytes> {
        if !self.started {
            self.started = true;
            return Some(Bytes::from_static(RETRY_FRAME));
        }
        loop {
            if self.finished {
                return None;
            }
            if let Some(event) = self.backlog.pop_front() {
                return Some(self.emit(&event));
            }
            if !self.history_done {
                self.read_history().await?;
                continue;
            }
            let received = tokio::select! {
                // Live events first: at shutdown, the last `done`s already published
                // still go out before the stream ends.
                biased;
                received = self.live.recv() => received,
                _ = self.closed.wait_for(|closed| *closed) => return None,
                _ = self.heartbeat.tick() => return Some(Bytes::from_static(KEEP_ALIVE_FRAME)),
            };
            match received {
                Ok(event) => {
                    if event.seq > self.query.after
                        && self.query.matches(&event.job_id, &event.service_id)
                    {
                        return Some(self.emit(&event));
                    }
                }
                // Too far behind: cut off; the client resumes from the store.
                Err(CutOff) => {
                    tracing::debug!(
                        after = self.query.after,
                        "cutting off a slow event subscriber"
                    );
                    return None;
                }
            }
        }
    }

    /// Reads the next history page into the backlog; `None` ends the stream.
    async fn read_history(&mut self) -> Option<()> {
        let store = self.app.runner.store().clone();
        let page = match store.events(self.tenant.as_str(), &self.query).await {
            Ok(page) => page,
            Err(e) => {
                tracing::error!(error = %e, "cannot read event history; ending the stream");
                return None;
            }
        };
        if !page.is_empty() {
            self.hold(page);
            return Some(());
        }
        self.history_done = true;
        match self.end {
            End::AfterDone { finished_at_open } if finished_at_open => {
                // Its `done` was at or before the resume point: nothing more will come.
                self.finished = true;
            }
            End::Never {
                resumed_from: Some(from),
            } => match store.event_floor(self.tenant.as_str()).await {
                Ok(floor) if floor > from => {
                    tracing::debug!(from, floor, "retention overtook a resume point");
                    self.finished = true;
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::error!(error = %e, "cannot read the event floor");
                    self.finished = true;
                }
            },
            _ => {}
        }
        Some(())
    }

    /// Keeps what of a history page fits the byte bound (at least its first event) to
    /// send; the rest is read again once that is sent. The next page asks for about as
    /// many events as fit, by this page's sizes.
    fn hold(&mut self, mut page: Vec<Event>) {
        let (mut held, mut keep) = (0usize, 0);
        for event in &page {
            let size = held_bytes(event);
            if keep > 0 && held.saturating_add(size) > self.history_bytes {
                break;
            }
            held += size;
            keep += 1;
        }
        page.truncate(keep);
        let average = (held / keep.max(1)).max(1);
        self.query.limit = (self.history_bytes / average).clamp(1, HISTORY_PAGE);
        self.backlog.extend(page);
    }

    /// The frame of `event`, which becomes the last one sent.
    fn emit(&mut self, event: &Event) -> Bytes {
        self.query.after = event.seq;
        if matches!(self.end, End::AfterDone { .. }) && event.kind == "done" {
            self.finished = true;
        }
        if let Some(budget) = &mut self.budget {
            *budget = budget.saturating_sub(1);
            if *budget == 0 {
                self.finished = true;
            }
        }
        // Keep-alives are for quiet streams: the next one is a full interval away.
        self.heartbeat.reset_after(self.heartbeat_every);
        frame(event)
    }
}

/// `id:`, `event:` and one `data:` line (serde_json writes no raw newline), then a blank
/// line.
fn frame(event: &Event) -> Bytes {
    let mut buf = Vec::with_capacity(128);
    buf.extend_from_slice(b"id: ");
    buf.extend_from_slice(event.seq.to_string().as_bytes());
    buf.extend_from_slice(b"\nevent: ");
    buf.extend_from_slice(event.kind.as_bytes());
    buf.extend_from_slice(b"\ndata: ");
    let text = event.data.get();
    if text.contains('\n') {
        // JSON a store gave back with line breaks: one data line must not have any.
        let compact = serde_json::from_str::<serde_json::Value>(text);
        if compact
            .map(|v| serde_json::to_writer(&mut buf, &v))
            .is_err()
        {
            buf.extend_from_slice(b"{}");
        }
    } else {
        buf.extend_from_slice(text.as_bytes());
    }
    buf.extend_from_slice(b"\n\n");
    Bytes::from(buf)
}

fn sse_response(feed: Feed) -> Response {
    let frames = futures_util::stream::unfold(feed, |mut feed| async move {
        let frame = feed.next_frame().await?;
        Some((Ok::<_, std::convert::Infallible>(frame), feed))
    });
    let mut response = Response::new(Body::from_stream(frames));
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // nginx buffers proxied answers unless told not to; a buffered stream is no stream.
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn last_event_ids_are_checked() {
        let with = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert("last-event-id", HeaderValue::from_str(v).unwrap());
            last_event_id(&h)
        };
        assert_eq!(last_event_id(&HeaderMap::new()).unwrap(), None);
        assert_eq!(with("").unwrap(), None);
        assert_eq!(with("42").unwrap(), Some(42));
        assert_eq!(with(" 7 ").unwrap(), Some(7));
        assert_eq!(with("99999999999999999999").unwrap(), Some(i64::MAX));
        for bad in ["-1", "x", "1.5"] {
            assert_eq!(with(bad).unwrap_err().problem().status, 400, "{bad}");
        }
    }

    #[test]
    fn frames_are_one_event_each() {
        let event = Event {
            seq: 12,
            job_id: "job_1".into(),
            service_id: "svc".into(),
            kind: "log".into(),
            data: crate::store::EventData::of(&json!({"job_id": "job_1", "line": "two\nlines"})),
            created_at: String::new(),
        };
        assert_eq!(
            &frame(&event)[..],
            b"id: 12\nevent: log\ndata: {\"job_id\":\"job_1\",\"line\":\"two\\nlines\"}\n\n"
        );
    }
}
