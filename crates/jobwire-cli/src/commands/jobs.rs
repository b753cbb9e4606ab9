//! `jobwire jobs` and `jobwire job ID`.

use futures_util::{StreamExt, TryStreamExt};
use jobwire::{Job, JobStatus};

use crate::args::JobsArgs;
use crate::context::Context;
use crate::exit::Failure;

/// The server's largest page.
const MAX_PAGE: u32 = 1000;

/// Lists jobs, newest first, at most `--limit` of them.
pub async fn list(ctx: &Context, args: &JobsArgs) -> Result<(), Failure> {
    let mut query = ctx.client.jobs().limit(args.limit.min(MAX_PAGE));
    if let Some(status) = &args.status {
        let Ok(status) = status.parse::<JobStatus>();
        query = query.status(status);
    }
    if let Some(service) = &args.service {
        query = query.service(service);
    }
    let limit = usize::try_from(args.limit).unwrap_or(usize::MAX);
    let jobs: Vec<Job> = query.items().take(limit).try_collect().await?;
    if ctx.printer.is_json() {
        return ctx.printer.json(&jobs);
    }
    let rows: Vec<Vec<String>> = jobs
        .into_iter()
        .map(|j| vec![j.id, j.service, j.status.to_string(), j.created_at])
        .collect();
    ctx.printer
        .table(&["ID", "SERVICE", "STATUS", "CREATED_AT"], &rows)
}

/// Shows one job as it stands.
pub async fn show(ctx: &Context, id: &str) -> Result<(), Failure> {
    let handle = ctx.client.get_job(id).await?;
    let job = handle.job();
    if ctx.printer.is_json() {
        return ctx.printer.json(job);
    }
    let mut fields = vec![
        ("id", job.id.clone()),
        ("service", job.service.clone()),
        ("status", job.status.to_string()),
        ("created_at", job.created_at.clone()),
    ];
    if let Some(at) = &job.started_at {
        fields.push(("started_at", at.clone()));
    }
    if let Some(at) = &job.finished_at {
        fields.push(("finished_at", at.clone()));
    }
    if !job.labels.is_empty() {
        let labels: Vec<String> = job.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        fields.push(("labels", labels.join(" ")));
    }
    if let Some(p) = &job.progress {
        fields.push((
            "progress",
            format!("{:.0}% {}", p.fraction * 100.0, p.message),
        ));
    }
    if let Some(error) = &job.error {
        fields.push(("error", error.to_string()));
    }
    ctx.printer.fields(&fields)?;
    ctx.printer.line("input:")?;
    ctx.printer.json(&job.input)?;
    if let Some(output) = &job.output {
        ctx.printer.line("output:")?;
        ctx.printer.json(output)?;
    }
    Ok(())
}
