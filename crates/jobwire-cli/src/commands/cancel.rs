//! `jobwire cancel ID...`, and the one cancel that Ctrl-C handling uses too.

use crate::context::Context;
use crate::exit::Failure;

/// Cancels one job by id (idempotent) and returns it as it now stands: one request.
pub async fn cancel_one(
    client: &jobwire::Client,
    id: &str,
) -> Result<jobwire::Job, jobwire::Error> {
    client.cancel(id).await
}

/// Cancels each job in turn and prints the status it ends up in; the failures (a job
/// not found, say) are told at the end, and the first one sets the exit code.
pub async fn cancel(ctx: &Context, ids: &[String]) -> Result<(), Failure> {
    let mut failures = Vec::new();
    for id in ids {
        match cancel_one(&ctx.client, id).await {
            Ok(job) if ctx.printer.is_json() => ctx.printer.json_line(&job)?,
            Ok(job) => ctx.printer.line(&format!("{}  {}", job.id, job.status))?,
            Err(e) => failures.push(Failure::Sdk(e)),
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(Failure::Several(failures))
    }
}
