//! `jobwire wait ID...`: waits for jobs that already exist, all at once.

use futures_util::future::join_all;

use crate::context::Context;
use crate::exit::Failure;

/// Waits for every job to end and prints the status each ended in (the whole job per
/// line with `-o json`), in the order given; a job that failed or was cancelled, or an
/// id of no job, is told at the end, and the first decides the exit code.
pub async fn wait(ctx: &Context, ids: &[String]) -> Result<(), Failure> {
    let waits = ids.iter().map(|id| ctx.client.wait(id));
    let mut failures = Vec::new();
    for ended in join_all(waits).await {
        let job = match ended {
            Ok(job) => job,
            Err(e) => {
                failures.push(Failure::Sdk(e));
                continue;
            }
        };
        if ctx.printer.is_json() {
            ctx.printer.json_line(&job)?;
        } else {
            ctx.printer.line(&format!("{}  {}", job.id, job.status))?;
        }
        if let Err(e) = jobwire::core::outcome::job_result::<serde_json::Value>(&job) {
            failures.push(Failure::Sdk(e));
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(Failure::Several(failures))
    }
}
