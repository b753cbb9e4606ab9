//! What goes to stdout: aligned tables and pretty JSON for people, JSON for scripts.

use std::io::Write;

use serde::Serialize;

use crate::args::Format;
use crate::exit::Failure;

/// Writes results to stdout in the chosen format.
#[derive(Debug, Clone, Copy)]
pub struct Printer {
    format: Format,
}

impl Printer {
    /// A printer for `format`.
    pub fn new(format: Format) -> Self {
        Printer { format }
    }

    /// Whether scripts asked for JSON (`-o json`).
    pub fn is_json(&self) -> bool {
        self.format == Format::Json
    }

    /// A JSON value: pretty for people, one compact line for scripts.
    pub fn json(&self, value: &impl Serialize) -> Result<(), Failure> {
        let text = match self.format {
            Format::Table => serde_json::to_string_pretty(value),
            Format::Json => serde_json::to_string(value),
        }
        .map_err(|e| Failure::Output(e.into()))?;
        self.line(&text)
    }

    /// A JSON value on one line, whatever the format (JSON Lines streams).
    pub fn json_line(&self, value: &impl Serialize) -> Result<(), Failure> {
        let text = serde_json::to_string(value).map_err(|e| Failure::Output(e.into()))?;
        self.line(&text)
    }

    /// One line of text.
    pub fn line(&self, text: &str) -> Result<(), Failure> {
        // Stdout is line-buffered, so streams (`events`, `batch`) show each line at once.
        writeln!(std::io::stdout().lock(), "{text}").map_err(Failure::Output)
    }

    /// Rows under a header, in columns as wide as their widest cell.
    pub fn table(&self, header: &[&str], rows: &[Vec<String>]) -> Result<(), Failure> {
        self.line(&render_table(header, rows))
    }

    /// `name: value` lines, the names aligned.
    pub fn fields(&self, fields: &[(&str, String)]) -> Result<(), Failure> {
        let width = fields.iter().map(|(name, _)| name.len()).max().unwrap_or(0);
        let text: Vec<String> = fields
            .iter()
            .map(|(name, value)| {
                format!("{:width$} {value}", format!("{name}:"), width = width + 1)
            })
            .collect();
        self.line(&text.join("\n"))
    }
}

/// The text of a table; no line ends in blanks.
fn render_table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(width) = widths.get_mut(i) {
                *width = (*width).max(cell.chars().count());
            }
        }
    }
    let header: Vec<String> = header.iter().map(|h| (*h).to_owned()).collect();
    std::iter::once(&header)
        .chain(rows)
        .map(|row| {
            let cells: Vec<String> = row
                .iter()
                .enumerate()
                .map(|(i, cell)| {
                    let width = widths.get(i).copied().unwrap_or(0);
                    format!("{cell:width$}")
                })
                .collect();
            cells.join("  ").trim_end().to_owned()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_aligned_and_lines_unpadded() {
        let rows = vec![
            vec!["svc_echo".into(), "echo".into(), "Echoes.".into()],
            vec!["svc_x".into(), "a-longer-name".into(), "".into()],
        ];
        assert_eq!(
            render_table(&["ID", "NAME", "DESCRIPTION"], &rows),
            "ID        NAME           DESCRIPTION\n\
             svc_echo  echo           Echoes.\n\
             svc_x     a-longer-name"
        );
    }
}
