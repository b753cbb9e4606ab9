//! Checking an input against a service's input schema: JSON Schema 2020-12 whole
//! (`$ref` within the schema, `pattern`, `oneOf`, `const`, `format` asserted, …; no
//! remote references), with the [`jsonschema`] crate. The reference server runs this
//! on every submit and the SDK before it sends (cargo feature `validation`), so a wrong
//! input gets the same [`FieldError`]s on both sides — from the SDK, without a request.
//!
//! `pattern` and `patternProperties` run on the `regex` crate's engine, whose matching
//! takes time linear in the input, not on a backtracking one: a schema is a tenant's to
//! write, and a backtracking pattern such as `(x*.*x+)(x*.*x+)++y` held a check for
//! seconds per input (found by fuzzing). Patterns that need backtracking (back-references,
//! look-around) are refused when the schema is compiled, as is a pattern whose compiled
//! form passes [`PATTERN_SIZE_LIMIT`].
//!
//! ```
//! use jobwire_core::schema::InputSchema;
//! use serde_json::json;
//!
//! let schema = json!({
//!     "type": "object",
//!     "properties": {"n": {"type": "integer", "minimum": 1}},
//!     "required": ["n"],
//! });
//! let checker = InputSchema::new(&schema).unwrap();
//! assert!(checker.errors(&json!({"n": 2})).is_empty());
//! let errors = checker.errors(&json!({"n": 0}));
//! assert_eq!(errors[0].pointer, "/n");
//! assert_eq!(errors[0].message, "value is less than the minimum of 1");
//! ```

use std::sync::{Arc, OnceLock};

use jsonschema::error::ValidationErrorKind;
use jsonschema::{Draft, PatternOptions, ValidationError, Validator};
use serde_json::Value;

use crate::{Error, FieldError, Problem, Service};

/// The most memory one compiled `pattern` may take (the `regex` crate's size limit, and
/// the same again for its lazy DFA's cache): enough for any pattern a schema means, far
/// below what `x{1000}{1000}` would build.
///
/// ```
/// use jobwire_core::schema::{InputSchema, PATTERN_SIZE_LIMIT};
/// assert_eq!(PATTERN_SIZE_LIMIT, 1 << 20);
/// assert!(InputSchema::new(&serde_json::json!({"pattern": "x{1000}{1000}"})).is_err());
/// ```
pub const PATTERN_SIZE_LIMIT: usize = 1 << 20;

/// A service's input schema, compiled to check inputs with; see the module docs.
pub struct InputSchema {
    validator: Validator,
}

impl std::fmt::Debug for InputSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InputSchema").finish_non_exhaustive()
    }
}

impl InputSchema {
    /// Compiles `schema` (a JSON Schema, 2020-12 unless its `$schema` says another
    /// draft). A schema that is not one is the [`FieldError`] of its first mistake, its
    /// pointer into the schema.
    ///
    /// ```
    /// use jobwire_core::schema::InputSchema;
    /// let mistake = InputSchema::new(&serde_json::json!({"minimum": "one"})).unwrap_err();
    /// assert_eq!(mistake.pointer, "/minimum");
    /// let remote = InputSchema::new(&serde_json::json!({"$ref": "https://example.com/s.json"}));
    /// assert!(remote.is_err(), "nothing is fetched");
    /// ```
    pub fn new(schema: &Value) -> Result<Self, FieldError> {
        jsonschema::options()
            .with_draft(Draft::Draft202012)
            .should_validate_formats(true)
            .with_pattern_options(
                PatternOptions::regex()
                    .size_limit(PATTERN_SIZE_LIMIT)
                    .dfa_size_limit(PATTERN_SIZE_LIMIT),
            )
            .build(schema)
            .map(|validator| InputSchema { validator })
            .map_err(|e| FieldError::new(e.instance_path().to_string(), schema_mistake(&e)))
    }

    /// Every way `input` fails the schema, each a [`FieldError`] whose pointer (RFC
    /// 6901) points into the input; empty when it is valid. Messages do not quote the
    /// input's values (an input may be large, or secret).
    ///
    /// ```
    /// use jobwire_core::schema::InputSchema;
    /// let schema = serde_json::json!({"type": "object", "required": ["a", "b"]});
    /// let errors = InputSchema::new(&schema).unwrap().errors(&serde_json::json!({}));
    /// assert_eq!(errors.len(), 2);
    /// ```
    pub fn errors(&self, input: &Value) -> Vec<FieldError> {
        let mut errors = Vec::new();
        for error in self.validator.iter_errors(input) {
            field_errors(&error, &mut errors);
        }
        errors
    }

    /// `Ok` when `input` is valid; otherwise the [`Error::Validation`] the server would
    /// answer a submit of it to `service` with (see [`invalid_input`]).
    ///
    /// ```
    /// use jobwire_core::schema::InputSchema;
    /// let checker = InputSchema::new(&serde_json::json!({"type": "string"})).unwrap();
    /// let refused = checker.check("echo", &serde_json::json!(1)).unwrap_err();
    /// assert!(matches!(&refused, jobwire_core::Error::Validation { problem } if problem.errors.len() == 1));
    /// ```
    pub fn check(&self, service: &str, input: &Value) -> Result<(), Error> {
        let errors = self.errors(input);
        if errors.is_empty() {
            Ok(())
        } else {
            Err(Error::Validation {
                problem: Box::new(invalid_input(service, errors)),
            })
        }
    }
}

/// A service's input check as an SDK handle keeps it: compiled when first used, shared
/// by the handle's clones. A schema the SDK cannot compile is left to the server to
/// judge (the check passes).
///
/// ```
/// use jobwire_core::schema::InputCheck;
/// let service = jobwire_core::Service::new("svc_1", "sleep", serde_json::json!({"type": "object"}), "now");
/// let check = InputCheck::default();
/// assert!(check.check(&service, &serde_json::json!({})).is_ok());
/// assert!(check.check(&service, &serde_json::json!(1)).is_err());
/// ```
#[derive(Debug, Clone, Default)]
pub struct InputCheck(Arc<OnceLock<Option<InputSchema>>>);

impl InputCheck {
    /// `Ok` when `input` is valid for `service` (or its schema cannot be compiled
    /// here); otherwise the [`Error::Validation`] the server would answer.
    pub fn check(&self, service: &Service, input: &Value) -> Result<(), Error> {
        let schema = self.0.get_or_init(|| match InputSchema::new(&service.input_schema) {
            Ok(schema) => Some(schema),
            Err(mistake) => {
                tracing::debug!(service = %service.name, %mistake, "input schema not checked here");
                None
            }
        });
        match schema {
            Some(schema) => schema.check(&service.name, input),
            None => Ok(()),
        }
    }
}

/// The problem of an input that fails the input schema of `service`: 422
/// `validation_failed`, one [`FieldError`] per failure. The one shape the server answers
/// and the SDK's own check returns.
///
/// ```
/// let problem = jobwire_core::schema::invalid_input("sleep", vec![jobwire_core::FieldError::new("/x", "bad")]);
/// assert_eq!((problem.status, problem.code.as_str()), (422, "validation_failed"));
/// ```
pub fn invalid_input(service: &str, errors: Vec<FieldError>) -> Problem {
    let mut problem = Problem::new(422, "validation_failed", "Unprocessable Entity").with_detail(
        format!("the input does not match the input schema of {service}"),
    );
    problem.errors = errors;
    problem
}

/// The field errors of one failure. A missing or unexpected member is the error of that
/// member (its pointer names it), so a form can mark the field.
fn field_errors(error: &ValidationError<'_>, out: &mut Vec<FieldError>) {
    let at = error.instance_path().to_string();
    let member = |name: &str| format!("{at}/{}", name.replace('~', "~0").replace('/', "~1"));
    match error.kind() {
        ValidationErrorKind::Required { property } => {
            let name = property
                .as_str()
                .map_or_else(|| property.to_string(), str::to_owned);
            out.push(FieldError::new(member(&name), "is required"));
        }
        ValidationErrorKind::AdditionalProperties { unexpected }
        | ValidationErrorKind::UnevaluatedProperties { unexpected } => {
            for name in unexpected {
                out.push(FieldError::new(member(name), "is not an allowed member"));
            }
        }
        _ => out.push(FieldError::new(at, error.masked().to_string())),
    }
}

/// What is wrong with a schema, in words for the tenant who wrote it.
fn schema_mistake(error: &ValidationError<'_>) -> String {
    match error.kind() {
        ValidationErrorKind::Referencing(_) => format!(
            "a $ref that does not resolve within the schema (remote references are not \
             fetched): {error}"
        ),
        _ => format!("not a valid JSON Schema: {}", error.masked()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn errors(schema: Value, input: Value) -> Vec<(String, String)> {
        InputSchema::new(&schema)
            .unwrap()
            .errors(&input)
            .into_iter()
            .map(|e| (e.pointer, e.message))
            .collect()
    }

    /// The keywords the built-in services use, and those the hand-written subset
    /// validator once ignored (`pattern`, `oneOf`, `$ref`, `format`, `const`).
    #[test]
    fn table() {
        let sleep = json!({
            "type": "object",
            "properties": {"duration_seconds": {"type": "number", "minimum": 0, "maximum": 3600}},
            "required": ["duration_seconds"],
            "additionalProperties": false
        });
        type Case = (Value, Value, Vec<(&'static str, &'static str)>);
        let cases: Vec<Case> = vec![
            (json!({}), json!({"a": [1, null]}), vec![]),
            (json!(true), json!(3), vec![]),
            (
                json!(false),
                json!(3),
                vec![("", "False schema does not allow value")],
            ),
            (sleep.clone(), json!({"duration_seconds": 1.5}), vec![]),
            (
                sleep.clone(),
                json!({}),
                vec![("/duration_seconds", "is required")],
            ),
            (
                sleep.clone(),
                json!({"duration_seconds": "2"}),
                vec![("/duration_seconds", r#"value is not of type "number""#)],
            ),
            (
                sleep.clone(),
                json!({"duration_seconds": -1}),
                vec![("/duration_seconds", "value is less than the minimum of 0")],
            ),
            (
                sleep.clone(),
                json!({"duration_seconds": 1, "x": 1, "y/z": 2}),
                vec![
                    ("/x", "is not an allowed member"),
                    ("/y~1z", "is not an allowed member"),
                ],
            ),
            (json!({"type": "integer"}), json!(3.0), vec![]),
            (json!({"pattern": "^a+$"}), json!("aaa"), vec![]),
            (
                json!({"pattern": "^a+$"}),
                json!("ab"),
                vec![("", r#"value does not match "^a+$""#)],
            ),
            (json!({"const": 3}), json!(4), vec![("", "3 was expected")]),
            (
                json!({"format": "email"}),
                json!("no"),
                vec![("", r#"value is not a "email""#)],
            ),
            (json!({"format": "date"}), json!("2026-12-04"), vec![]),
            (
                json!({"oneOf": [{"type": "string"}, {"type": "integer"}]}),
                json!(1.5),
                vec![(
                    "",
                    "value is not valid under any of the schemas listed in the 'oneOf' keyword",
                )],
            ),
            (
                json!({"$defs": {"pos": {"exclusiveMinimum": 0}}, "properties": {"r": {"$ref": "#/$defs/pos"}}}),
                json!({"r": 0}),
                vec![("/r", "value is less than or equal to the minimum of 0")],
            ),
            (
                json!({"items": {"type": "string"}}),
                json!(["a", 1]),
                vec![("/1", r#"value is not of type "string""#)],
            ),
        ];
        for (i, (schema, input, want)) in cases.into_iter().enumerate() {
            let want: Vec<(String, String)> = want
                .into_iter()
                .map(|(p, m)| (p.into(), m.into()))
                .collect();
            assert_eq!(errors(schema, input.clone()), want, "case {i}: {input}");
        }
    }

    /// Patterns a backtracking engine takes exponential time on, against long inputs they
    /// almost match: each check says the input does not match (a backtracking engine
    /// gives up at its step limit instead, after seconds: the first pattern is the one
    /// the fuzzer found holding a check for over 10 s). Run on a thread and waited for,
    /// so a regression fails rather than hangs.
    #[test]
    fn patterns_match_in_linear_time() {
        let cases = [
            ("(x*.*x+)(x*.*x+)++y", "x"),
            ("^(a+)+$", "a"),
            ("^(a|aa)+$", "a"),
            ("(x+x+)+y", "x"),
        ];
        for (pattern, unit) in cases {
            let schema = json!({"type": "string", "pattern": pattern});
            let input = json!(format!("{}!", unit.repeat(100_000)));
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let checker = InputSchema::new(&schema).unwrap();
                let errors = checker.errors(&input);
                let _ = tx.send(errors.into_iter().map(|e| e.message).collect::<Vec<_>>());
            });
            let got = rx.recv_timeout(std::time::Duration::from_secs(60));
            let want = vec![format!("value does not match {pattern:?}")];
            assert_eq!(got, Ok(want), "{pattern}");
        }
    }

    #[test]
    fn malformed_schemas_table() {
        let cases: Vec<(Value, Option<&str>)> = vec![
            (json!({}), None),
            (json!(true), None),
            (json!({"type": "object", "x-unknown": 3}), None),
            (json!(3), Some("")),
            (json!({"type": "text"}), Some("/type")),
            (
                json!({"properties": {"a": {"type": 1}}}),
                Some("/properties/a/type"),
            ),
            (json!({"required": "a"}), Some("/required")),
            (json!({"minimum": "0"}), Some("/minimum")),
            (json!({"pattern": "("}), Some("/pattern")),
            // What only backtracking can match is refused, not run.
            (json!({"pattern": "^(a*)*\\1b$"}), Some("/pattern")),
            (json!({"pattern": "^(?=a)a+$"}), Some("/pattern")),
            (json!({"pattern": "x{1000}{1000}"}), Some("/pattern")),
            (
                json!({"patternProperties": {"(?!a)": {}}}),
                Some("/patternProperties/(?!a)"),
            ),
            (json!({"$ref": "#/nope"}), Some("")),
            (json!({"$ref": "https://example.com/s.json"}), Some("")),
        ];
        for (schema, want) in cases {
            let got = InputSchema::new(&schema).err().map(|e| e.pointer);
            assert_eq!(got.as_deref(), want, "{schema}");
        }
        let remote = InputSchema::new(&json!({"$ref": "https://example.com/s.json"})).unwrap_err();
        assert!(
            remote.message.contains("remote references are not fetched"),
            "{}",
            remote.message
        );
    }
}
