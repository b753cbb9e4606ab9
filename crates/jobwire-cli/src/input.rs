//! Job inputs from the command line: JSON text, `@FILE`, `-` for stdin. Every problem
//! here is a usage error, found before anything is sent.

use std::io::Read;

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
}
