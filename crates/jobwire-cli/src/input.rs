//! Job inputs from the command line: JSON text, `@FILE`, `-` for stdin, and JSON Lines
//! files for `batch`. Every problem here is a usage error, found before anything is sent.

use std::io::Read;
use std::path::Path;

use serde_json::Value;

use crate::exit::Failure;

/// The INPUT argument as JSON: the text itself, the contents of `@FILE`, or stdin for `-`.
pub fn read_input(arg: &str) -> Result<Value, Failure> {
    let (text, source) = if arg == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| Failure::Usage(format!("cannot read INPUT from stdin: {e}")))?;
        (text, "stdin".to_owned())
    } else if let Some(path) = arg.strip_prefix('@') {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Failure::Usage(format!("cannot read INPUT file {path:?}: {e}")))?;
        (text, format!("{path:?}"))
    } else {
        (arg.to_owned(), "INPUT".to_owned())
    };
    serde_json::from_str(&text).map_err(|e| Failure::Usage(format!("{source} is not JSON: {e}")))
}

/// One input per non-blank line of a JSON Lines file, each with its line number (from
/// 1), all checked before any is used.
pub fn read_json_lines(path: &Path) -> Result<Vec<(usize, Value)>, Failure> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure::Usage(format!("cannot read {}: {e}", path.display())))?;
    parse_json_lines(&text).map_err(|(line, e)| {
        Failure::Usage(format!("{}: line {line} is not JSON: {e}", path.display()))
    })
}

/// The values of the non-blank lines with their numbers (from 1), or the first bad
/// line's number and why.
fn parse_json_lines(text: &str) -> Result<Vec<(usize, Value)>, (usize, serde_json::Error)> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| {
            serde_json::from_str(line)
                .map(|value| (i + 1, value))
                .map_err(|e| (i + 1, e))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn text_and_files() {
        assert_eq!(read_input(r#"{"a":1}"#).unwrap(), json!({"a": 1}));
        assert!(matches!(read_input("{nope"), Err(Failure::Usage(_))));
        assert!(matches!(
            read_input("@/nonexistent/input.json"),
            Err(Failure::Usage(_))
        ));
    }

    #[test]
    fn json_lines_skip_blanks_and_name_the_bad_line() {
        let values = parse_json_lines("{\"a\":1}\n\n  \n2\r\n\"x\"\n").unwrap();
        assert_eq!(
            values,
            [(1, json!({"a": 1})), (4, json!(2)), (5, json!("x"))]
        );
        let (line, _) = parse_json_lines("1\n\n{oops\n3").unwrap_err();
        assert_eq!(line, 3);
    }
}
