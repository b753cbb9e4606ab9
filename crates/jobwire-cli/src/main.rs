//! `jobwire`: the jobwire command line. Lists services, runs and watches jobs, runs
//! batches, and serves the reference server, on the async SDK (`jobwire`).

mod args;
mod commands;
mod context;
mod exit;
mod input;
mod interrupt;
mod output;
mod progress;

use std::process::ExitCode;

use clap::Parser;

use crate::args::{Cli, Command};
use crate::context::Context;
use crate::exit::Failure;

fn main() -> ExitCode {
    // Usage errors exit 2 and `--help` exits 0, both from clap.
    let cli = Cli::parse();
    let common = match &cli.command {
        // The server builds its own runtime, so it runs before one exists here.
        Command::Serve(serve) => return jobwire_server::cli::main_with_args(serve.args.clone()),
        other => other.common(),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => return Failure::Runtime(e).exit(),
    };
    let result = runtime.block_on(async {
        let ctx = match common {
            Some(common) => Context::new(common)?,
            None => return Ok(()),
        };
        let url = ctx.client.config().base_url_value();
        commands::dispatch(&cli.command, &ctx)
            .await
            .map_err(|failure| failure.naming_server(url))
    });
    // Whatever is still in flight (a cancelled request, a stream's driver) is dropped.
    runtime.shutdown_background();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => failure.exit(),
    }
}
