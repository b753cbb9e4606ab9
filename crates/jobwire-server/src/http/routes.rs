//! The handlers of API v1, one per route (the event streams are in `events`). See
//! `docs/api.md` for the contract.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use http::header::{HeaderName, HeaderValue, CONTENT_LENGTH, CONTENT_TYPE, LINK, LOCATION};
use http::{HeaderMap, Method, StatusCode, Uri};
use jobwire_core::{FieldError, Health, Job, JobStatus, Page};
use serde::Serialize;
use serde_json::Value;

use super::auth::Tenant;
use super::idempotency;
use super::prefer;
use super::problem::ApiError;
use super::query::{decode_cursor, encode_cursor, CursorKind, Query};
use super::App;
use crate::bus::Interest;
use crate::clock::{rfc3339_at, unix_millis, Clock, SystemClock};
use crate::ids::sortable_id;
use crate::runner::SubmitError;
use crate::services::registration;
use crate::store::{Created, JobQuery, KeyRecord, KeyUse, Retired, ServiceQuery};

type Result<T> = std::result::Result<T, ApiError>;

/// The OpenAPI document of this API, served as is.
const OPENAPI: &str = include_str!("../../openapi.json");

/// Most labels a job may carry.
const MAX_LABELS: usize = 64;

fn json_response<T: Serialize>(status: StatusCode, value: &T) -> Result<Response> {
    // Most answers are a job or a page of a few hundred bytes: one allocation, not a
    // doubling series.
    let mut body = Vec::with_capacity(512);
    serde_json::to_writer(&mut body, value).map_err(|e| {
        tracing::error!(error = %e, "cannot encode a response body");
        ApiError::internal()
    })?;
    let mut response = (status, body).into_response();
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(response)
}

/// A page of `rows` fetched with `limit + 1`: the extra row only says there is a next page.
fn page_response<T: Serialize>(
    mut rows: Vec<(i64, T)>,
    limit: usize,
    query: &Query,
    path: &str,
    kind: CursorKind,
) -> Result<Response> {
    let next = if rows.len() > limit {
        rows.truncate(limit);
        rows.last().map(|(seq, _)| encode_cursor(kind, *seq))
    } else {
        None
    };
    let page = Page::new(
        rows.into_iter().map(|(_, item)| item).collect(),
        next.clone(),
    );
    let mut response = json_response(StatusCode::OK, &page)?;
    if let Some(cursor) = next {
        if let Ok(link) = HeaderValue::from_str(&query.next_link(path, &cursor)) {
            response.headers_mut().insert(LINK, link);
        }
    }
    Ok(response)
}

/// The header on job answers that tells where to follow the job's later changes from.
// Names made once: one from a `&str` is allocated on every insert.
const LAST_EVENT_ID: HeaderName = HeaderName::from_static("jobwire-last-event-id");
const PREFERENCE_APPLIED: HeaderName = HeaderName::from_static("preference-applied");

/// A job answer, with its event position in `Jobwire-Last-Event-Id`, and `Location`
/// (submit) and `Preference-Applied` when they apply.
fn job_response(
    status: StatusCode,
    (job, position): (Job, i64),
    location: bool,
    applied_wait: Option<u64>,
) -> Result<Response> {
    let mut response = json_response(status, &job)?;
    let headers = response.headers_mut();
    headers.insert(LAST_EVENT_ID, HeaderValue::from(position));
    if location {
        if let Ok(value) = HeaderValue::try_from(["/v1/jobs/", job.id.as_str()].concat()) {
            headers.insert(LOCATION, value);
        }
    }
    if let Some(wait) = applied_wait {
        if let Ok(value) = HeaderValue::from_str(&format!("wait={wait}")) {
            headers.insert(PREFERENCE_APPLIED, value);
        }
    }
    Ok(response)
}

/// `GET /v1/health`
pub(super) async fn health() -> Result<Response> {
    json_response(
        StatusCode::OK,
        &Health::new("ok", env!("CARGO_PKG_VERSION")),
    )
}

/// `GET /v1/openapi.json`
pub(super) async fn openapi() -> Response {
    let mut response = OPENAPI.into_response();
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// Any path no route matches.
pub(super) async fn not_found(uri: Uri) -> ApiError {
    ApiError::not_found(format!("there is no route {}", uri.path()))
}

/// A path that exists, with a method it does not answer.
pub(super) async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::method_not_allowed(format!("{method} is not allowed on {}", uri.path()))
}

/// `GET /v1/services?limit&cursor&name`
pub(super) async fn list_services(
    State(app): State<Arc<App>>,
    tenant: Tenant,
    uri: Uri,
) -> Result<Response> {
    let query = Query::parse(uri.query())?;
    let limit = query.limit()?;
    let after = query
        .text("cursor")
        .map(|c| decode_cursor(CursorKind::Services, c))
        .transpose()?;
    let rows = app
        .runner
        .store()
        .list_services(
            tenant.as_str(),
            &ServiceQuery {
                name: query.text("name").map(str::to_owned),
                after,
                limit: limit + 1,
            },
        )
        .await?;
    page_response(rows, limit, &query, "/v1/services", CursorKind::Services)
}

/// `GET /v1/services/{id-or-name}`
pub(super) async fn get_service(
    State(app): State<Arc<App>>,
    tenant: Tenant,
    Path(id): Path<String>,
) -> Result<Response> {
    let service = app
        .runner
        .store()
        .find_service(tenant.as_str(), &id)
        .await?
        .ok_or_else(|| {
            ApiError::not_found(format!("there is no service with id or name {id:?}"))
        })?;
    json_response(StatusCode::OK, &service)
}

/// `POST /v1/services`: registers a command service of the caller's tenant.
pub(super) async fn create_service(
    State(app): State<Arc<App>>,
    tenant: Tenant,
    headers: HeaderMap,
    body: Body,
) -> Result<Response> {
    app.runner
        .handlers()
        .allows_commands_for(tenant.as_str())
        .map_err(ApiError::forbidden)?;
    let bytes = read_body(&app, body, &headers).await?;
    let body: Value = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::bad_request(format!("the body is not valid JSON: {e}")))?;
    let Value::Object(body) = body else {
        return Err(ApiError::bad_request(
            "the body must be a JSON object: {\"name\": …, \"command\": {\"program\": …}}",
        ));
    };
    let registration = registration::check(&body, registration::resolve_program)
        .map_err(|errors| ApiError::validation("the service spec is not valid", errors))?;
    let at = SystemClock.now();
    let id = sortable_id("svc_", unix_millis(at)).map_err(|e| {
        tracing::error!(error = %e, "cannot generate a service id");
        ApiError::internal()
    })?;
    let service = registration.into_service(id, rfc3339_at(at));
    match app
        .runner
        .store()
        .create_service(tenant.as_str(), &service)
        .await?
    {
        Created::Stored => {}
        Created::NameTaken(taken) => {
            return Err(ApiError::conflict(format!(
                "there is a service named {:?} already ({})",
                taken.name, taken.id
            )))
        }
    }
    let mut response = json_response(StatusCode::CREATED, &service)?;
    if let Ok(value) = HeaderValue::from_str(&format!("/v1/services/{}", service.id)) {
        response.headers_mut().insert(LOCATION, value);
    }
    Ok(response)
}

/// `DELETE /v1/services/{id-or-name}`: retires one of the caller's services.
pub(super) async fn delete_service(
    State(app): State<Arc<App>>,
    tenant: Tenant,
    Path(id): Path<String>,
) -> Result<Response> {
    let retired = app
        .runner
        .store()
        .retire_service(tenant.as_str(), &id)
        .await?;
    match retired {
        Retired::Done(service_id) => {
            app.services.forget(&service_id);
            app.runner.handlers().forget(&service_id);
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        Retired::Global => Err(ApiError::forbidden(format!(
            "{id:?} is a service of the server itself, not one to delete"
        ))),
        Retired::Missing => Err(ApiError::not_found(format!(
            "there is no service with id or name {id:?}"
        ))),
    }
}

/// Reads a request body of at most `max_body_bytes`, 413 beyond, within
/// `body_read_timeout`, 408 past it.
async fn read_body(app: &App, body: Body, headers: &HeaderMap) -> Result<Bytes> {
    let limit = app.max_body_bytes;
    tokio::time::timeout(
        app.body_read_timeout,
        read_body_within(body, headers, limit),
    )
    .await
    .unwrap_or_else(|_| Err(ApiError::request_timeout(app.body_read_timeout)))
}

async fn read_body_within(body: Body, headers: &HeaderMap, limit: usize) -> Result<Bytes> {
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(ApiError::payload_too_large(limit));
    }
    let mut stream = body.into_data_stream();
    let mut buf = BytesMut::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk
            .map_err(|e| ApiError::bad_request(format!("cannot read the request body: {e}")))?;
        if buf.len() + chunk.len() > limit {
            return Err(ApiError::payload_too_large(limit));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

/// A submit body, checked: `{"input": …, "labels": {"k": "v"}}`.
fn parse_submit(bytes: &[u8]) -> Result<(Value, BTreeMap<String, String>)> {
    let body: Value = serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request(format!("the body is not valid JSON: {e}")))?;
    let Value::Object(mut body) = body else {
        return Err(ApiError::validation(
            "the body must be a JSON object: {\"input\": …, \"labels\": {…}}",
            Vec::new(),
        ));
    };
    let input = body.remove("input").ok_or_else(|| {
        ApiError::validation(
            "the body has no \"input\" member",
            vec![FieldError::new("", "is required")],
        )
    })?;
    let labels = match body.remove("labels") {
        None | Some(Value::Null) => BTreeMap::new(),
        Some(Value::Object(map)) => {
            let mut labels = BTreeMap::new();
            for (key, value) in map {
                let Value::String(value) = value else {
                    return Err(ApiError::validation(
                        format!("label {key:?} must have a string value"),
                        Vec::new(),
                    ));
                };
                if key.is_empty() || key.contains(':') {
                    return Err(ApiError::validation(
                        format!("label key {key:?} must be non-empty and contain no ':'"),
                        Vec::new(),
                    ));
                }
                labels.insert(key, value);
            }
            labels
        }
        Some(_) => {
            return Err(ApiError::validation(
                "labels must be an object of strings",
                Vec::new(),
            ))
        }
    };
    if labels.len() > MAX_LABELS {
        return Err(ApiError::validation(
            format!("a job may carry at most {MAX_LABELS} labels"),
            Vec::new(),
        ));
    }
    Ok((input, labels))
}

/// `POST /v1/services/{id-or-name}/jobs`
pub(super) async fn submit(
    State(app): State<Arc<App>>,
    tenant: Tenant,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response> {
    let wait = prefer::wait_seconds(&headers).map_err(ApiError::bad_request)?;
    let key = idempotency::key_of(&headers)?;
    let store = app.runner.store();
    let Some(service) = app
        .services
        .find(store.as_ref(), tenant.as_str(), &id)
        .await?
    else {
        return Err(if store.is_retired(tenant.as_str(), &id).await? {
            ApiError::gone(format!("service {id} was deleted"))
        } else {
            ApiError::not_found(format!("there is no service with id or name {id:?}"))
        });
    };
    let handlers = app.runner.handlers();
    let handler = handlers.handler(tenant.as_str(), &service).ok_or_else(|| {
        let why = match handlers.allows_commands_for(tenant.as_str()) {
            Err(why) if service.command.is_some() => format!("it runs a program, and {why}"),
            _ => "this server process has no handler for it".to_owned(),
        };
        ApiError::unavailable(format!("service {} cannot run here: {why}", service.name))
    })?;
    let bytes = read_body(&app, body, &headers).await?;
    let (input, labels) = parse_submit(&bytes)?;
    let schema = service.input.as_ref().map_err(|e| {
        ApiError::unavailable(format!(
            "service {} cannot take jobs: its input schema is not valid at {:?}: {}",
            service.name, e.pointer, e.message
        ))
    })?;
    let errors = schema.errors(&input);
    if !errors.is_empty() {
        return Err(ApiError::from(jobwire_core::schema::invalid_input(
            &service.name,
            errors,
        )));
    }
    // A keyed request: claimed while it is answered; a key used before is answered
    // from what it was used for.
    let fingerprint = key
        .as_ref()
        .map(|_| idempotency::fingerprint(&service.id, &input, &labels));
    let _claim = match &key {
        Some(k) => Some(app.keys_in_flight.claim(tenant.as_str(), k)?),
        None => None,
    };
    let applied = wait.map(|w| app.cap_wait(w));
    // 200 only for a job that finished within a wait the client asked for; without one,
    // even a job that is already done answers 202, as docs/api.md promises.
    let finished_status = if applied.is_some() {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    let key_use = key
        .as_deref()
        .zip(fingerprint.as_deref())
        .map(|(key, fingerprint)| KeyUse {
            key,
            fingerprint,
            // A job stored finished is answered so: its key is stored with that status.
            answered: Some(finished_status.as_u16()),
        });
    if let Some(used) = key_use {
        if let Some(record) = app
            .runner
            .store()
            .find_key(tenant.as_str(), used.key)
            .await?
        {
            return replay(&app, &tenant, record, used.fingerprint).await;
        }
    }
    let submitted = app
        .runner
        .submit(tenant.as_str(), &service, handler, input, labels, key_use)
        .await;
    let admitted = match submitted {
        Ok(admitted) => admitted,
        // Recorded meanwhile by another server on the same store.
        Err(SubmitError::KeyTaken(record)) => {
            let fingerprint = fingerprint.unwrap_or_default();
            return replay(&app, &tenant, record, &fingerprint).await;
        }
        Err(e) => {
            return Err(match e {
                SubmitError::RateLimited(_) => ApiError::rate_limited(e.to_string()),
                SubmitError::ShuttingDown => ApiError::unavailable(e.to_string()),
                SubmitError::OverQuota { used, limit } => ApiError::quota_exceeded(used, limit),
                SubmitError::Store(e) => ApiError::from(e),
                _ => {
                    tracing::error!(error = %e, "cannot submit a job");
                    ApiError::internal()
                }
            })
        }
    };
    let mut rx = admitted.rx;
    if let Some(seconds) = applied.filter(|s| *s > 0) {
        // Err (timeout, or a sender gone) just means: answer with the job as it stands.
        let _ = tokio::time::timeout(
            Duration::from_secs(seconds),
            rx.wait_for(|job| job.status.is_terminal()),
        )
        .await;
    }
    let seen = rx.borrow().clone();
    let current = app
        .runner
        .current(tenant.as_str(), seen)
        .await?
        .ok_or_else(ApiError::internal)?;
    let status = if current.0.status.is_terminal() {
        finished_status
    } else {
        StatusCode::ACCEPTED
    };
    // A job stored finished has its key stored with this status already.
    if let Some(key) = key.as_ref().filter(|_| !admitted.finished) {
        // Recorded before the answer leaves: a client that never gets it and repeats the
        // request gets this same status.
        let store = app.runner.store();
        if let Err(e) = store
            .set_key_status(tenant.as_str(), key, status.as_u16())
            .await
        {
            tracing::warn!(error = %e, "cannot record an idempotent answer's status");
        }
    }
    job_response(status, current, true, applied)
}

/// The answer to a repeat of a keyed request: the first request's job as it stands now,
/// with the status code the first was answered with (202 when it never was).
async fn replay(
    app: &App,
    tenant: &Tenant,
    record: KeyRecord,
    fingerprint: &str,
) -> Result<Response> {
    if record.fingerprint != fingerprint {
        return Err(idempotency::mismatch());
    }
    let current = app
        .runner
        .get(tenant.as_str(), &record.job_id)
        .await?
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "job {} of this Idempotency-Key is no longer kept",
                record.job_id
            ))
        })?;
    let status = record
        .status
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::ACCEPTED);
    let mut response = job_response(status, current, true, None)?;
    response
        .headers_mut()
        .insert(idempotency::REPLAYED, HeaderValue::from_static("true"));
    Ok(response)
}

/// `GET /v1/jobs/{id}`, honouring `Prefer: wait=N`.
pub(super) async fn get_job(
    State(app): State<Arc<App>>,
    tenant: Tenant,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response> {
    let wait = prefer::wait_seconds(&headers).map_err(ApiError::bad_request)?;
    let applied = wait.map(|w| app.cap_wait(w));
    let seconds = applied.unwrap_or(0);
    let not_found = || ApiError::not_found(format!("there is no job {id:?}"));
    if seconds == 0 {
        let current = app
            .runner
            .get(tenant.as_str(), &id)
            .await?
            .ok_or_else(not_found)?;
        return job_response(StatusCode::OK, current, false, applied);
    }
    let wait = Duration::from_secs(seconds);
    if let Some(mut rx) = app.runner.watch(tenant.as_str(), &id) {
        // A job this server runs: its watch channel sees every change.
        let initial = rx.borrow_and_update().status.clone();
        let _ = tokio::time::timeout(
            wait,
            rx.wait_for(|job| job.status != initial || job.status.is_terminal()),
        )
        .await;
    } else {
        // Another server's job (or a finished one): its events say when it changes.
        let mut live = app
            .runner
            .bus()
            .subscribe_to(tenant.as_str(), Interest::Jobs(vec![id.clone()]));
        let (job, position) = app
            .runner
            .get(tenant.as_str(), &id)
            .await?
            .ok_or_else(not_found)?;
        if job.is_finished() {
            return job_response(StatusCode::OK, (job, position), false, applied);
        }
        let changed = async {
            loop {
                match live.recv().await {
                    Ok(event) => {
                        if event.seq > position && matches!(event.kind.as_str(), "status" | "done")
                        {
                            return;
                        }
                    }
                    // Fell behind, or the server is stopping: read the job again now.
                    Err(_) => return,
                }
            }
        };
        let _ = tokio::time::timeout(wait, changed).await;
    }
    let current = app
        .runner
        .get(tenant.as_str(), &id)
        .await?
        .ok_or_else(not_found)?;
    job_response(StatusCode::OK, current, false, applied)
}

/// `POST /v1/jobs/{id}/cancel`
pub(super) async fn cancel(
    State(app): State<Arc<App>>,
    tenant: Tenant,
    Path(id): Path<String>,
) -> Result<Response> {
    let current = app
        .runner
        .cancel(tenant.as_str(), &id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("there is no job {id:?}")))?;
    job_response(StatusCode::OK, current, false, None)
}

/// The service id a `service=<id or name>` filter means. An unknown service is no error
/// for a filter: it simply matches nothing.
pub(super) async fn service_filter(
    app: &App,
    tenant: &Tenant,
    query: &Query,
) -> Result<Option<String>> {
    let Some(wanted) = query.text("service") else {
        return Ok(None);
    };
    let found = app
        .runner
        .store()
        .find_service(tenant.as_str(), wanted)
        .await?;
    Ok(Some(found.map_or_else(|| wanted.to_owned(), |svc| svc.id)))
}

/// `GET /v1/jobs?service&status&label&limit&cursor`, newest first.
///
/// `service` is an id or a name; `status` one of the five statuses; `label=key:value` may
/// be repeated, and a job must carry every label asked for.
pub(super) async fn list_jobs(
    State(app): State<Arc<App>>,
    tenant: Tenant,
    uri: Uri,
) -> Result<Response> {
    let query = Query::parse(uri.query())?;
    let limit = query.limit()?;
    let before = query
        .text("cursor")
        .map(|c| decode_cursor(CursorKind::Jobs, c))
        .transpose()?;
    let store = app.runner.store();
    let service_id = service_filter(&app, &tenant, &query).await?;
    let status = match query.get("status") {
        Some(s) => match s.parse::<JobStatus>() {
            Ok(JobStatus::Unknown(_)) | Err(_) => {
                return Err(ApiError::bad_request(format!(
                    "status must be one of queued, running, succeeded, failed, cancelled, not {s:?}"
                )))
            }
            Ok(status) => Some(status.as_str().to_owned()),
        },
        None => None,
    };
    let labels = query
        .all("label")
        .map(|l| {
            l.split_once(':')
                .filter(|(k, _)| !k.is_empty())
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .ok_or_else(|| ApiError::bad_request(format!("label must be key:value, not {l:?}")))
        })
        .collect::<Result<Vec<_>>>()?;
    let rows = store
        .list_jobs(
            tenant.as_str(),
            &JobQuery {
                service_id,
                status,
                labels,
                before,
                limit: limit + 1,
            },
        )
        .await?;
    page_response(rows, limit, &query, "/v1/jobs", CursorKind::Jobs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn submit_bodies() {
        let (input, labels) =
            parse_submit(br#"{"input": {"a": 1}, "labels": {"env": "dev"}}"#).unwrap();
        assert_eq!(input, json!({"a": 1}));
        assert_eq!(labels.get("env").map(String::as_str), Some("dev"));
        let (input, _) = parse_submit(br#"{"input": null, "extra": 1}"#).unwrap();
        assert_eq!(input, Value::Null);

        for (body, status, code) in [
            (&b"{"[..], 400, "bad_request"),
            (b"", 400, "bad_request"),
            (b"[1]", 422, "validation_failed"),
            (b"{}", 422, "validation_failed"),
            (br#"{"input": 1, "labels": []}"#, 422, "validation_failed"),
            (
                br#"{"input": 1, "labels": {"a": 1}}"#,
                422,
                "validation_failed",
            ),
            (
                br#"{"input": 1, "labels": {"a:b": "c"}}"#,
                422,
                "validation_failed",
            ),
        ] {
            let err = parse_submit(body).unwrap_err();
            assert_eq!(
                err.problem().status,
                status,
                "{}",
                String::from_utf8_lossy(body)
            );
            assert_eq!(err.problem().code, code);
        }
        let err = parse_submit(b"{\"input\": [1,,]}").unwrap_err();
        assert!(err
            .problem()
            .detail
            .as_deref()
            .unwrap()
            .contains("line 1 column"));
    }
}
