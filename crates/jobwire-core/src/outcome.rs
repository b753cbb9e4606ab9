//! Turning typed inputs into JSON and finished jobs into typed results.

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::{Error, Job, JobError, JobStatus};

/// Serialises a job input; an input serde cannot represent is an error, not a panic.
///
/// ```
/// #[derive(serde::Serialize)]
/// struct Sleep { duration_seconds: f64 }
/// let v = jobwire_core::outcome::input_value(&Sleep { duration_seconds: 0.5 }).unwrap();
/// assert_eq!(v["duration_seconds"], 0.5);
/// ```
pub fn input_value<T: Serialize + ?Sized>(input: &T) -> Result<Value, Error> {
    serde_json::to_value(input).map_err(|e| Error::Invalid {
        what: "job input",
        message: e.to_string(),
    })
}

/// The result of a terminal job: its output decoded as `T`, or the error that says why
/// there is none.
///
/// ```
/// use jobwire_core::{outcome::job_result, Error, Job};
/// let job: Job = serde_json::from_str(
///     r#"{"id":"job_1","service_id":"s","status":"failed","error":{"message":"boom"}}"#,
/// ).unwrap();
/// assert!(matches!(job_result::<serde_json::Value>(&job), Err(Error::JobFailed { .. })));
/// ```
pub fn job_result<T: DeserializeOwned>(job: &Job) -> Result<T, Error> {
    match &job.status {
        JobStatus::Succeeded => {
            // Read in place: decoding from a borrowed value copies only what `T` keeps.
            let output = job.output.as_ref().unwrap_or(&Value::Null);
            T::deserialize(output).map_err(|e| Error::Decode {
                status: http::StatusCode::OK,
                message: format!("output of job {}: {e}", job.id),
                body: serde_json::to_vec(&job.output).unwrap_or_default().into(),
            })
        }
        JobStatus::Failed => Err(Error::JobFailed {
            job_id: job.id.clone(),
            error: job
                .error
                .clone()
                .unwrap_or_else(|| JobError::new("the job failed without a message")),
        }),
        JobStatus::Cancelled => Err(Error::JobCancelled {
            job_id: job.id.clone(),
        }),
        other => Err(Error::Protocol(format!(
            "job {} has no result while {other}",
            job.id
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(json: &str) -> Job {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn result_table() {
        let ok = job(r#"{"id":"j","service_id":"s","status":"succeeded","output":{"slept":1.5}}"#);
        #[derive(serde::Deserialize, Debug, PartialEq)]
        struct Slept {
            slept: f64,
        }
        assert_eq!(job_result::<Slept>(&ok).unwrap(), Slept { slept: 1.5 });
        assert!(matches!(
            job_result::<String>(&ok),
            Err(Error::Decode { .. })
        ));
        let cancelled = job(r#"{"id":"j","service_id":"s","status":"cancelled"}"#);
        assert!(
            matches!(job_result::<Value>(&cancelled), Err(Error::JobCancelled { job_id }) if job_id == "j")
        );
        let failed = job(
            r#"{"id":"j","service_id":"s","status":"failed","error":{"message":"m","code":"c"}}"#,
        );
        match job_result::<Value>(&failed) {
            Err(Error::JobFailed { error, .. }) => assert_eq!(error.message, "m"),
            other => panic!("{other:?}"),
        }
        let running = job(r#"{"id":"j","service_id":"s","status":"running"}"#);
        assert!(matches!(
            job_result::<Value>(&running),
            Err(Error::Protocol(_))
        ));
    }
}
