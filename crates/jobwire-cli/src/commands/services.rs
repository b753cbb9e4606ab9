//! `jobwire services` and `jobwire service NAME`.

use futures_util::TryStreamExt;

use crate::context::Context;
use crate::exit::Failure;

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
    let info = service.info();
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
