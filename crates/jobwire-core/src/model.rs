//! The resources of the jobwire API as Rust types: what the server sends and receives.
//!
//! Every model decodes leniently: fields a newer server adds are ignored, and a
//! [`JobStatus`] this version does not know decodes as [`JobStatus::Unknown`].

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// A named thing that runs jobs, with a JSON Schema for its input.
///
/// ```
/// let svc: jobwire_core::Service = serde_json::from_str(
///     r#"{"id":"svc_1","name":"echo","input_schema":{},"created_at":"2026-01-01T00:00:00Z"}"#,
/// ).unwrap();
/// assert_eq!(svc.name, "echo");
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Service {
    /// Opaque identifier, `svc_…`.
    pub id: String,
    /// Unique, human-chosen name (`echo`, `sleep`, …).
    pub name: String,
    /// What the service does, for people.
    #[serde(default)]
    pub description: String,
    /// How the service runs: `builtin`, `embedded` (a handler of the program that embeds
    /// the server) or `command` (a program; see [`command`](Self::command)).
    #[serde(default)]
    pub kind: String,
    /// JSON Schema that every job input is validated against.
    #[serde(default)]
    pub input_schema: Value,
    /// RFC 3339 UTC creation time.
    #[serde(default)]
    pub created_at: String,
    /// The program and limits of a `command` service; `None` for other kinds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<CommandSpec>,
}

impl Service {
    /// A service with an id, a name, an input schema and a creation time (RFC 3339);
    /// `description` and `kind` start empty (the fields are public: set them after).
    pub fn new(
        id: impl Into<String>,
        name: impl Into<String>,
        input_schema: Value,
        created_at: impl Into<String>,
    ) -> Self {
        Service {
            id: id.into(),
            name: name.into(),
            description: String::new(),
            kind: String::new(),
            input_schema,
            created_at: created_at.into(),
            command: None,
        }
    }
}

/// A service to register with `POST /v1/services`: its name, what it is for, the JSON
/// Schema of its input, and the program that runs its jobs. The facades'
/// `client.create_service(&spec)` and `client.create_or_get_service(&spec)` send it.
///
/// The server refuses it with 403 unless it was started with `--allow-commands`, with
/// 409 when the name is taken, and with 422 (one field error per mistake) when a part
/// is not valid.
///
/// ```
/// use std::time::Duration;
/// use jobwire_core::{CommandSpec, ServiceSpec};
///
/// let spec = ServiceSpec::command(
///     "word-count",
///     CommandSpec::new("python3")
///         .arg("-c")
///         .arg("import json,sys; print(json.dumps(len(json.load(sys.stdin)['text'].split())))")
///         .env("LANG", "C.UTF-8")
///         .timeout(Duration::from_secs(30))
///         .max_concurrency(4),
/// )
/// .description("Counts the words of a text.")
/// .input_schema(serde_json::json!({
///     "type": "object",
///     "properties": {"text": {"type": "string"}},
///     "required": ["text"]
/// }));
/// let body = serde_json::to_value(&spec).unwrap();
/// assert_eq!(body["command"]["timeout_seconds"], 30.0);
/// assert_eq!(body["command"]["max_concurrency"], 4);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ServiceSpec {
    /// Unique among the services the caller can see: 1 to 64 of `a-z`, `0-9`, `_`, `-`.
    pub name: String,
    /// What the service does, for people.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// The JSON Schema every input must match (`{}` takes anything).
    #[serde(default = "any_input")]
    pub input_schema: Value,
    /// The program that runs each job.
    pub command: CommandSpec,
}

fn any_input() -> Value {
    Value::Object(serde_json::Map::new())
}

impl ServiceSpec {
    /// A service named `name` whose jobs each run `command`; its input schema starts as
    /// `{}` (anything) and its description empty.
    pub fn command(name: impl Into<String>, command: CommandSpec) -> Self {
        ServiceSpec {
            name: name.into(),
            description: String::new(),
            input_schema: any_input(),
            command,
        }
    }

    /// What the service does, for people.
    pub fn description(mut self, text: impl Into<String>) -> Self {
        self.description = text.into();
        self
    }

    /// The JSON Schema every input must match; a submit that does not is refused with
    /// 422 and each failing field.
    pub fn input_schema(mut self, schema: Value) -> Self {
        self.input_schema = schema;
        self
    }
}

/// A program that runs a service's jobs, one process per job: the job's input as JSON on
/// its stdin, its output as JSON from its stdout, each stderr line a `log` event, each
/// stdout line `@progress FRACTION MESSAGE` a `progress` event; a non-zero exit fails
/// the job. See `docs/api.md` for the whole protocol.
///
/// ```
/// use std::time::Duration;
/// let cmd = jobwire_core::CommandSpec::new("/usr/bin/jq")
///     .arg("-c")
///     .arg("{n: (.n * 2)}")
///     .timeout(Duration::from_millis(2500));
/// assert_eq!(cmd.timeout_seconds, Some(2.5));
/// assert_eq!(cmd.args, ["-c", "{n: (.n * 2)}"]);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CommandSpec {
    /// An absolute path, or a name the server looks up on its `PATH` when the service is
    /// registered (the service then shows the absolute path).
    pub program: String,
    /// The program's arguments.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// The program's environment: these variables and no others.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// How long one job may run before it is stopped and fails with code `timeout`
    /// (the server's default when `None`: 60 s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<f64>,
    /// Most jobs of the service running at once on one server; more wait `queued`.
    /// `None`: no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrency: Option<u32>,
}

impl CommandSpec {
    /// Runs `program` with no arguments, no environment, the server's default timeout
    /// and no concurrency limit.
    pub fn new(program: impl Into<String>) -> Self {
        CommandSpec {
            program: program.into(),
            args: Vec::new(),
            env: BTreeMap::new(),
            timeout_seconds: None,
            max_concurrency: None,
        }
    }

    /// Adds an argument.
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Adds arguments.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Passes an environment variable.
    pub fn env(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.insert(name.into(), value.into());
        self
    }

    /// How long one job may run before it is stopped and fails with code `timeout`.
    pub fn timeout(mut self, timeout: std::time::Duration) -> Self {
        self.timeout_seconds = Some(timeout.as_secs_f64());
        self
    }

    /// Most jobs of the service running at once on one server; the rest wait `queued`.
    pub fn max_concurrency(mut self, n: u32) -> Self {
        self.max_concurrency = Some(n);
        self
    }
}

/// One execution of a service on one input.
///
/// ```
/// use jobwire_core::{Job, JobStatus};
/// let job: Job = serde_json::from_str(
///     r#"{"id":"job_1","service_id":"svc_1","status":"succeeded","output":{"ok":true}}"#,
/// ).unwrap();
/// assert_eq!(job.status, JobStatus::Succeeded);
/// assert!(job.status.is_terminal());
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Job {
    /// Opaque identifier, `job_…`.
    pub id: String,
    /// The id of the service that runs this job.
    pub service_id: String,
    /// The name of that service, for display.
    #[serde(default)]
    pub service: String,
    /// Where the job is in its lifecycle.
    pub status: JobStatus,
    /// The input the job was submitted with.
    #[serde(default)]
    pub input: Value,
    /// The output, once the job has succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<Value>,
    /// Why the job failed, once it has failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<JobError>,
    /// Caller-chosen labels, for filtering lists.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// The latest progress the job reported, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<Progress>,
    /// RFC 3339 UTC time the job was accepted.
    #[serde(default)]
    pub created_at: String,
    /// RFC 3339 UTC time the job started running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    /// RFC 3339 UTC time the job reached a terminal status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
}

impl Job {
    /// A job with an id, its service's id and a status; every other field starts empty
    /// (the fields are public: set them after).
    pub fn new(id: impl Into<String>, service_id: impl Into<String>, status: JobStatus) -> Self {
        Job {
            id: id.into(),
            service_id: service_id.into(),
            service: String::new(),
            status,
            input: Value::Null,
            output: None,
            error: None,
            labels: BTreeMap::new(),
            progress: None,
            created_at: String::new(),
            started_at: None,
            finished_at: None,
        }
    }
}

impl Job {
    /// Whether the job has reached a status that never changes again.
    pub fn is_finished(&self) -> bool {
        self.status.is_terminal()
    }
}

/// Why a job failed.
///
/// ```
/// let e = jobwire_core::JobError::new("boom");
/// assert_eq!(e.to_string(), "boom");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct JobError {
    /// Human-readable message from the service.
    pub message: String,
    /// Machine-readable code, when the service gives one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

impl JobError {
    /// A job error with a message and no code.
    pub fn new(message: impl Into<String>) -> Self {
        JobError {
            message: message.into(),
            code: None,
        }
    }
}

impl fmt::Display for JobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.code {
            Some(code) => write!(f, "{} ({code})", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// How far a running job has got, as it last reported.
///
/// ```
/// let p = jobwire_core::Progress::new(0.5, "half way");
/// assert_eq!(p.fraction, 0.5);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Progress {
    /// Between 0 and 1.
    pub fraction: f64,
    /// What the job is doing now.
    #[serde(default)]
    pub message: String,
}

impl Progress {
    /// A progress report.
    pub fn new(fraction: f64, message: impl Into<String>) -> Self {
        Progress {
            fraction,
            message: message.into(),
        }
    }
}

/// Where a job is in its lifecycle: `queued -> running -> succeeded | failed | cancelled`.
///
/// A status this version does not know (from a newer server) decodes as
/// [`JobStatus::Unknown`] instead of failing the whole response.
///
/// ```
/// use jobwire_core::JobStatus;
/// let s: JobStatus = serde_json::from_str("\"paused\"").unwrap();
/// assert_eq!(s, JobStatus::Unknown("paused".into()));
/// assert_eq!("running".parse::<JobStatus>().unwrap(), JobStatus::Running);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum JobStatus {
    /// Accepted, not started.
    Queued,
    /// Started, not finished.
    Running,
    /// Finished with an output.
    Succeeded,
    /// Finished with an error.
    Failed,
    /// Stopped on request before it finished.
    Cancelled,
    /// A status this version of the SDK does not know.
    Unknown(String),
}

impl JobStatus {
    /// The wire form: `queued`, `running`, …
    pub fn as_str(&self) -> &str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Running => "running",
            JobStatus::Succeeded => "succeeded",
            JobStatus::Failed => "failed",
            JobStatus::Cancelled => "cancelled",
            JobStatus::Unknown(s) => s,
        }
    }

    /// Terminal statuses never change again.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            JobStatus::Succeeded | JobStatus::Failed | JobStatus::Cancelled
        )
    }
}

impl fmt::Display for JobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for JobStatus {
    type Err = std::convert::Infallible;

    /// Never fails: an unknown word becomes [`JobStatus::Unknown`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "queued" => JobStatus::Queued,
            "running" => JobStatus::Running,
            "succeeded" => JobStatus::Succeeded,
            "failed" => JobStatus::Failed,
            "cancelled" => JobStatus::Cancelled,
            other => JobStatus::Unknown(other.to_owned()),
        })
    }
}

impl Serialize for JobStatus {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for JobStatus {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        let Ok(status) = s.parse();
        Ok(status)
    }
}

/// One slice of a list, with the opaque cursor to the next slice.
///
/// ```
/// let page: jobwire_core::Page<u32> =
///     serde_json::from_str(r#"{"items":[1,2],"next_cursor":"c2"}"#).unwrap();
/// assert_eq!(page.items, vec![1, 2]);
/// assert_eq!(page.next_cursor.as_deref(), Some("c2"));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Page<T> {
    /// The items of this slice, in list order.
    pub items: Vec<T>,
    /// Where the next slice starts; `None` on the last page.
    #[serde(default)]
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// A page from its items and cursor.
    pub fn new(items: Vec<T>, next_cursor: Option<String>) -> Self {
        Page { items, next_cursor }
    }
}

/// The answer of `GET /v1/health`.
///
/// ```
/// let h: jobwire_core::Health = serde_json::from_str(r#"{"status":"ok","version":"0.1.0"}"#).unwrap();
/// assert_eq!(h.status, "ok");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Health {
    /// `ok` when the server is serving.
    pub status: String,
    /// The server's version.
    #[serde(default)]
    pub version: String,
}

impl Health {
    /// A health answer.
    pub fn new(status: impl Into<String>, version: impl Into<String>) -> Self {
        Health {
            status: status.into(),
            version: version.into(),
        }
    }
}

/// The body of `POST /v1/services/{id-or-name}/jobs`.
///
/// ```
/// let body = jobwire_core::SubmitBody::new(serde_json::json!({"x": 1}));
/// assert_eq!(serde_json::to_value(&body).unwrap()["input"]["x"], 1);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SubmitBody {
    /// The job's input, validated against the service's input schema.
    pub input: Value,
    /// Labels to attach to the job.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

impl SubmitBody {
    /// A submit body with no labels.
    pub fn new(input: Value) -> Self {
        SubmitBody {
            input,
            labels: BTreeMap::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_round_trips_and_tolerates_unknown() {
        for (wire, status) in [
            ("queued", JobStatus::Queued),
            ("running", JobStatus::Running),
            ("succeeded", JobStatus::Succeeded),
            ("failed", JobStatus::Failed),
            ("cancelled", JobStatus::Cancelled),
            ("archived", JobStatus::Unknown("archived".into())),
        ] {
            let json = format!("\"{wire}\"");
            let decoded: JobStatus = serde_json::from_str(&json).unwrap();
            assert_eq!(decoded, status);
            assert_eq!(serde_json::to_string(&decoded).unwrap(), json);
        }
    }

    #[test]
    fn job_decodes_with_unknown_fields_and_status() {
        let job: Job = serde_json::from_str(
            r#"{"id":"job_1","service_id":"svc_1","status":"paused","shiny_new_field":[1]}"#,
        )
        .unwrap();
        assert_eq!(job.status, JobStatus::Unknown("paused".into()));
        assert!(!job.is_finished());
    }
}
