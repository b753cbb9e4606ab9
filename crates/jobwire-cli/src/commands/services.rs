//! `jobwire services`, `jobwire service NAME`, and `jobwire service create FILE` /
//! `jobwire service delete NAME` for command services.

use futures_util::TryStreamExt;

use crate::context::Context;
use crate::exit::Failure;
use crate::input::read_input;

/// Lists every service the token can see, walking all pages.
pub async fn list(ctx: &Context) -> Result<(), Failure> {
    let services: Vec<jobwire::Service> = ctx
        .client
        .services()
        .limit(100)
        .items()
        .try_collect()
        .await?;
    if ctx.printer.is_json() {
        return ctx.printer.json(&services);
    }
    let rows: Vec<Vec<String>> = services
        .into_iter()
        .map(|s| vec![s.id, s.name, s.kind, s.description])
        .collect();
    ctx.printer
        .table(&["ID", "NAME", "KIND", "DESCRIPTION"], &rows)
}

/// Shows one service, by name or id, with its input schema.
pub async fn show(ctx: &Context, name: &str) -> Result<(), Failure> {
    let service = ctx.client.service(name).await?;
    print(ctx, service.info())
}

/// Registers the command service described by the JSON of `file` (a path, or `-` for
/// stdin) and shows it as the server made it.
pub async fn create(ctx: &Context, file: &str) -> Result<(), Failure> {
    let text = if file == "-" {
        read_input("-")?
    } else {
        read_input(&format!("@{file}"))?
    };
    let spec: jobwire::ServiceSpec = serde_json::from_value(text)
        .map_err(|e| Failure::Usage(format!("{file} is not a service: {e}")))?;
    let service = ctx.client.create_service(&spec).await?;
    print(ctx, service.info())
}

/// Retires a service by name or id; prints its id.
pub async fn delete(ctx: &Context, name: &str) -> Result<(), Failure> {
    let service = ctx.client.service(name).await?;
    service.delete().await?;
    if ctx.printer.is_json() {
        ctx.printer
            .json(&serde_json::json!({"id": service.id(), "deleted": true}))
    } else {
        ctx.printer.line(&format!("{}  deleted", service.id()))
    }
}

/// A service, as fields and its schema (or JSON).
fn print(ctx: &Context, info: &jobwire::Service) -> Result<(), Failure> {
    if ctx.printer.is_json() {
        return ctx.printer.json(info);
    }
    let mut fields = vec![
        ("id", info.id.clone()),
        ("name", info.name.clone()),
        ("kind", info.kind.clone()),
        ("created_at", info.created_at.clone()),
        ("description", info.description.clone()),
    ];
    if let Some(command) = &info.command {
        let mut line = command.program.clone();
        for arg in &command.args {
            line.push(' ');
            line.push_str(arg);
        }
        fields.push(("command", line));
    }
    ctx.printer.fields(&fields)?;
    ctx.printer.line("input_schema:")?;
    ctx.printer.json(&info.input_schema)
}
