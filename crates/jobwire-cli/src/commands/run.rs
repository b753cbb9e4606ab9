//! `jobwire run SERVICE INPUT`: submit (with labels, and a key that makes a retried run
//! follow the first run's job), show the job's progress, print its output.

use futures_util::StreamExt;
use indicatif::ProgressBar;
use jobwire::{EventKind, Job, JobHandle};
use serde_json::Value;

use crate::args::RunArgs;
use crate::context::Context;
use crate::exit::Failure;
use crate::input::read_input;
use crate::interrupt::{self, Interrupt};
use crate::progress;

/// Submits a job, draws its progress until it ends, and prints its output; a job that
/// failed or was cancelled is the failure.
pub async fn run(ctx: &Context, args: &RunArgs) -> Result<(), Failure> {
    let input = read_input(&args.input)?;
    let mut options = args.labels.iter().fold(
        jobwire::SubmitOptions::default(),
        |options, (key, value)| options.label(key, value),
    );
    if let Some(key) = &args.key {
        options = options.idempotency_key(key);
    }
    let mut interrupt = Interrupt::catch().await;
    let job = tokio::select! {
        job = ctx.client.submit_with(&args.service, &input, options) => job?,
        // Whether the job was made is not known, so there is nothing to cancel.
        () = interrupt.recv() => return Err(Failure::Interrupted),
        () = ctx.deadline() => return Err(ctx.timed_out("submitting the job")),
    };
    // The status comes with the job's first events, which replay from `queued`.
    let bar = progress::job_bar(&args.service);
    let finished = tokio::select! {
        finished = watch(&job, &bar) => finished,
        () = interrupt.recv() => {
            bar.abandon();
            let ids = [job.id().to_owned()];
            let cancel = args.interrupt.cancel_on_interrupt;
            return Err(interrupt::settle(&ctx.client, &ids, cancel, &mut interrupt).await);
        }
        () = ctx.deadline() => {
            bar.abandon();
            let doing = format!("waiting for job {}, which is left running", job.id());
            return Err(ctx.timed_out(doing));
        }
    };
    let finished = match finished {
        Ok(finished) => finished,
        Err(e) => {
            bar.abandon();
            return Err(e);
        }
    };
    bar.finish_and_clear();
    let output: Value = jobwire::core::outcome::job_result(&finished)?;
    ctx.printer.json(&output)
}

/// Follows the job's events into the bar until its `done`, and returns the final job.
async fn watch(job: &JobHandle, bar: &ProgressBar) -> Result<Job, Failure> {
    let mut events = job.events();
    while let Some(event) = events.next().await {
        match event?.kind {
            EventKind::Status(status) => bar.set_message(status.to_string()),
            EventKind::Progress { fraction, message } => {
                bar.set_position(progress::position(fraction));
                bar.set_message(message);
            }
            // Log lines are kept even where no bar is drawn.
            EventKind::Log(line) if bar.is_hidden() => eprintln!("{line}"),
            EventKind::Log(line) => bar.println(line),
            EventKind::Done(job) => return Ok(*job),
            // Output chunks add up to the output printed at the end.
            _ => {}
        }
    }
    Err(Failure::Sdk(jobwire::Error::Protocol(format!(
        "the event stream of job {} ended before its done event",
        job.id()
    ))))
}
