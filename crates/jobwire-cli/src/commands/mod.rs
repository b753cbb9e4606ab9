//! One module per command; `dispatch` picks the one asked for.

pub mod batch;
pub mod cancel;
pub mod events;
pub mod jobs;
pub mod run;
pub mod services;
pub mod submit;
pub mod wait;

use crate::args::{Command, ServiceAction};
use crate::context::Context;
use crate::exit::Failure;

/// Runs `command` against the server of `ctx`.
pub async fn dispatch(command: &Command, ctx: &Context) -> Result<(), Failure> {
    match command {
        Command::Services(_) => ctx.bounded("listing services", services::list(ctx)).await,
        Command::Service(a) => match (&a.action, &a.name) {
            (Some(ServiceAction::Create { file, .. }), _) => {
                ctx.bounded("registering the service", services::create(ctx, file))
                    .await
            }
            (Some(ServiceAction::Delete { name, .. }), _) => {
                let doing = format!("retiring service {name}");
                ctx.bounded(&doing, services::delete(ctx, name)).await
            }
            (Some(ServiceAction::Show { name, .. }), _) | (None, Some(name)) => {
                let doing = format!("reading service {name}");
                ctx.bounded(&doing, services::show(ctx, name)).await
            }
            (None, None) => Err(Failure::Usage(
                "name a service, or create or delete one".into(),
            )),
        },
        // These two watch the deadline themselves, to say which jobs it left running.
        Command::Run(a) => run::run(ctx, a).await,
        Command::Batch(a) => batch::run(ctx, a).await,
        Command::Submit(a) => ctx.bounded("submitting", submit::submit(ctx, a)).await,
        Command::Jobs(a) => ctx.bounded("listing jobs", jobs::list(ctx, a)).await,
        Command::Job(a) => {
            let doing = format!("reading job {}", a.id);
            ctx.bounded(&doing, jobs::show(ctx, &a.id)).await
        }
        Command::Events(a) => {
            let doing = format!("following the events of job {}", a.id);
            ctx.bounded(&doing, events::follow(ctx, &a.id)).await
        }
        Command::Wait(a) => {
            ctx.bounded("waiting for the jobs", wait::wait(ctx, &a.ids))
                .await
        }
        Command::Cancel(a) => ctx.bounded("cancelling", cancel::cancel(ctx, &a.ids)).await,
        // `main` runs the server before any runtime or client exists.
        Command::Serve(_) => Ok(()),
    }
}
