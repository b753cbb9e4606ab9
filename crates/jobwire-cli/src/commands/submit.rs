//! `jobwire submit SERVICE INPUT [--label K=V]...`.

use crate::args::SubmitArgs;
use crate::context::Context;
use crate::exit::Failure;
use crate::input::read_input;

/// Submits a job without waiting for it; prints its id (the whole job with `-o json`).
pub async fn submit(ctx: &Context, args: &SubmitArgs) -> Result<(), Failure> {
    let input = read_input(&args.input)?;
    let options = args.labels.iter().fold(
        jobwire::SubmitOptions::default(),
        |options, (key, value)| options.label(key, value),
    );
    let job = ctx
        .client
        .submit_with(&args.service, &input, options)
        .await?;
    if ctx.printer.is_json() {
        ctx.printer.json(job.job())
    } else {
        ctx.printer.line(job.id())
    }
}
