//! A small JSON Schema validator: the subset the built-in services' input schemas use.
//!
//! Supported keywords: boolean schemas, `type` (a name or a list of names: `object`,
//! `string`, `number`, `integer`, `boolean`, `array`, `null`), `properties`, `required`,
//! `additionalProperties` (`false` or a schema), `items` (one schema), `enum`, `minimum`,
//! `maximum`, `exclusiveMinimum`, `exclusiveMaximum`, `minLength`, `maxLength`. Other
//! keywords are ignored, as JSON Schema asks of unknown keywords.
//!
//! Every failure is reported (not only the first), each as a [`FieldError`] whose pointer
//! (RFC 6901) points into the validated value. When a value has the wrong type, the other
//! keywords of that schema are not checked, so one mistake gives one error.

use jobwire_core::FieldError;
use serde_json::{Map, Value};

/// Validates `value` against `schema`; an empty list means valid.
pub(crate) fn validate(schema: &Value, value: &Value) -> Vec<FieldError> {
    let mut errors = Vec::new();
    check(schema, value, &mut String::new(), &mut errors);
    errors
}

/// What is wrong with `schema` as a schema of the subset above, each mistake a
/// [`FieldError`] whose pointer is `at` followed by the path into the schema; an empty
/// list means it is well-formed. Unknown keywords are not mistakes.
pub(crate) fn malformed(schema: &Value, at: &str) -> Vec<FieldError> {
    let mut errors = Vec::new();
    check_schema(schema, &mut at.to_owned(), &mut errors);
    errors
}

const TYPE_NAMES: [&str; 7] = [
    "object", "string", "number", "integer", "boolean", "array", "null",
];

fn check_schema(schema: &Value, pointer: &mut String, errors: &mut Vec<FieldError>) {
    let map = match schema {
        Value::Bool(_) => return,
        Value::Object(map) => map,
        _ => {
            errors.push(FieldError::new(
                pointer.clone(),
                "must be a schema: an object or a boolean",
            ));
            return;
        }
    };
    for (keyword, value) in map {
        let len = pointer.len();
        push_token(pointer, keyword);
        let problem = match keyword.as_str() {
            "type" => type_problem(value),
            "properties" => match value.as_object() {
                Some(members) => {
                    for (name, member) in members {
                        let len = pointer.len();
                        push_token(pointer, name);
                        check_schema(member, pointer, errors);
                        pointer.truncate(len);
                    }
                    None
                }
                None => Some("must be an object of schemas"),
            },
            "additionalProperties" | "items" => {
                check_schema(value, pointer, errors);
                None
            }
            "required" => match value.as_array() {
                Some(names) if names.iter().all(Value::is_string) && all_unique(names) => None,
                _ => Some("must be a list of distinct strings"),
            },
            "enum" => (!value.is_array()).then_some("must be a list"),
            "minimum" | "maximum" | "exclusiveMinimum" | "exclusiveMaximum" => {
                (!value.is_number()).then_some("must be a number")
            }
            "minLength" | "maxLength" => {
                (value.as_u64().is_none()).then_some("must be a non-negative integer")
            }
            _ => None,
        };
        if let Some(message) = problem {
            errors.push(FieldError::new(pointer.clone(), message));
        }
        pointer.truncate(len);
    }
}

fn type_problem(value: &Value) -> Option<&'static str> {
    let known = |v: &Value| v.as_str().is_some_and(|name| TYPE_NAMES.contains(&name));
    let fine = match value {
        Value::String(_) => known(value),
        Value::Array(names) => !names.is_empty() && names.iter().all(known) && all_unique(names),
        _ => false,
    };
    (!fine).then_some(
        "must be a type name (object, string, number, integer, boolean, array, null) \
         or a list of distinct ones",
    )
}

fn all_unique(values: &[Value]) -> bool {
    values
        .iter()
        .enumerate()
        .all(|(i, v)| !values[..i].contains(v))
}

/// Appends `token` to a JSON pointer, escaped as RFC 6901 says.
fn push_token(pointer: &mut String, token: &str) {
    pointer.push('/');
    for c in token.chars() {
        match c {
            '~' => pointer.push_str("~0"),
            '/' => pointer.push_str("~1"),
            c => pointer.push(c),
        }
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if is_integer(n) => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// JSON Schema counts `1.0` as an integer.
fn is_integer(n: &serde_json::Number) -> bool {
    n.is_i64()
        || n.is_u64()
        || n.as_f64()
            .is_some_and(|f| f.is_finite() && f.fract() == 0.0)
}

fn has_type(value: &Value, name: &str) -> bool {
    match name {
        "number" => value.is_number(),
        "integer" => matches!(value, Value::Number(n) if is_integer(n)),
        other => type_name(value) == other,
    }
}

fn a_or_an(name: &str) -> &'static str {
    if name.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    }
}

fn check(schema: &Value, value: &Value, pointer: &mut String, errors: &mut Vec<FieldError>) {
    let schema = match schema {
        Value::Bool(true) => return,
        Value::Bool(false) => {
            errors.push(FieldError::new(pointer.clone(), "no value is allowed here"));
            return;
        }
        Value::Object(map) => map,
        // Not a schema: nothing to check against.
        _ => return,
    };

    if !check_type(schema, value, pointer, errors) {
        return;
    }
    if let Some(Value::Array(options)) = schema.get("enum") {
        if !options.contains(value) {
            let list: Vec<String> = options.iter().map(Value::to_string).collect();
            errors.push(FieldError::new(
                pointer.clone(),
                format!("must be one of {}", list.join(", ")),
            ));
        }
    }
    match value {
        Value::Number(n) => check_number(schema, n, pointer, errors),
        Value::String(s) => check_string(schema, s, pointer, errors),
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    let len = pointer.len();
                    push_token(pointer, &i.to_string());
                    check(item_schema, item, pointer, errors);
                    pointer.truncate(len);
                }
            }
        }
        Value::Object(object) => check_object(schema, object, pointer, errors),
        Value::Null | Value::Bool(_) => {}
    }
}

/// Checks `type`; false when the value has the wrong type.
fn check_type(
    schema: &Map<String, Value>,
    value: &Value,
    pointer: &str,
    errors: &mut Vec<FieldError>,
) -> bool {
    let names: Vec<&str> = match schema.get("type") {
        Some(Value::String(name)) => vec![name.as_str()],
        Some(Value::Array(names)) => names.iter().filter_map(Value::as_str).collect(),
        _ => return true,
    };
    if names.iter().any(|name| has_type(value, name)) {
        return true;
    }
    let wanted = match names.as_slice() {
        [one] => format!("{} {one}", a_or_an(one)),
        many => format!("one of {}", many.join(", ")),
    };
    errors.push(FieldError::new(
        pointer,
        format!("must be {wanted}, not {}", type_name(value)),
    ));
    false
}

fn check_number(
    schema: &Map<String, Value>,
    n: &serde_json::Number,
    pointer: &str,
    errors: &mut Vec<FieldError>,
) {
    let Some(x) = n.as_f64() else { return };
    let bound = |key: &str| schema.get(key).and_then(Value::as_f64);
    if let Some(min) = bound("minimum") {
        if x < min {
            errors.push(FieldError::new(pointer, format!("must be at least {min}")));
        }
    }
    if let Some(max) = bound("maximum") {
        if x > max {
            errors.push(FieldError::new(pointer, format!("must be at most {max}")));
        }
    }
    if let Some(min) = bound("exclusiveMinimum") {
        if x <= min {
            errors.push(FieldError::new(
                pointer,
                format!("must be greater than {min}"),
            ));
        }
    }
    if let Some(max) = bound("exclusiveMaximum") {
        if x >= max {
            errors.push(FieldError::new(pointer, format!("must be less than {max}")));
        }
    }
}

fn check_string(schema: &Map<String, Value>, s: &str, pointer: &str, errors: &mut Vec<FieldError>) {
    let len = || s.chars().count() as u64;
    if let Some(max) = schema.get("maxLength").and_then(Value::as_u64) {
        // Cheap pre-check: a string never has more characters than bytes.
        if s.len() as u64 > max && len() > max {
            errors.push(FieldError::new(
                pointer,
                format!("must be at most {max} characters long"),
            ));
        }
    }
    if let Some(min) = schema.get("minLength").and_then(Value::as_u64) {
        if len() < min {
            errors.push(FieldError::new(
                pointer,
                format!("must be at least {min} characters long"),
            ));
        }
    }
}

fn check_object(
    schema: &Map<String, Value>,
    object: &Map<String, Value>,
    pointer: &mut String,
    errors: &mut Vec<FieldError>,
) {
    let properties = schema.get("properties").and_then(Value::as_object);
    if let Some(Value::Array(required)) = schema.get("required") {
        for name in required.iter().filter_map(Value::as_str) {
            if !object.contains_key(name) {
                let len = pointer.len();
                push_token(pointer, name);
                errors.push(FieldError::new(pointer.clone(), "is required"));
                pointer.truncate(len);
            }
        }
    }
    let additional = schema.get("additionalProperties");
    for (name, member) in object {
        let len = pointer.len();
        push_token(pointer, name);
        match properties.and_then(|p| p.get(name)) {
            Some(member_schema) => check(member_schema, member, pointer, errors),
            None => match additional {
                Some(Value::Bool(false)) => {
                    errors.push(FieldError::new(pointer.clone(), "is not an allowed member"));
                }
                Some(extra_schema) => check(extra_schema, member, pointer, errors),
                None => {}
            },
        }
        pointer.truncate(len);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn malformed_schemas_table() {
        let cases: Vec<(Value, Vec<&str>)> = vec![
            (json!({}), vec![]),
            (json!(true), vec![]),
            (json!({"type": "object", "x-unknown": 3}), vec![]),
            (
                json!({"type": ["string", "null"], "enum": ["a", null], "maxLength": 3}),
                vec![],
            ),
            (json!(3), vec!["/s"]),
            (json!({"type": "text"}), vec!["/s/type"]),
            (json!({"type": []}), vec!["/s/type"]),
            (json!({"type": ["string", "string"]}), vec!["/s/type"]),
            (
                json!({"properties": {"a": {"type": 1}, "b/c": 7}}),
                vec!["/s/properties/a/type", "/s/properties/b~1c"],
            ),
            (json!({"properties": []}), vec!["/s/properties"]),
            (json!({"required": ["a", "a"]}), vec!["/s/required"]),
            (json!({"required": "a"}), vec!["/s/required"]),
            (
                json!({"items": {"minLength": -1}}),
                vec!["/s/items/minLength"],
            ),
            (
                json!({"additionalProperties": "no"}),
                vec!["/s/additionalProperties"],
            ),
            (
                json!({"enum": 1, "minimum": "0"}),
                vec!["/s/enum", "/s/minimum"],
            ),
        ];
        for (schema, want) in cases {
            let got: Vec<String> = malformed(&schema, "/s")
                .into_iter()
                .map(|e| e.pointer)
                .collect();
            assert_eq!(got, want, "{schema}");
        }
    }

    fn errors(schema: Value, value: Value) -> Vec<(String, String)> {
        validate(&schema, &value)
            .into_iter()
            .map(|e| (e.pointer, e.message))
            .collect()
    }

    #[test]
    fn table() {
        let sleep = json!({
            "type": "object",
            "properties": {"duration_seconds": {"type": "number", "minimum": 0, "maximum": 3600}},
            "required": ["duration_seconds"],
            "additionalProperties": false
        });
        let steps = json!({
            "type": "object",
            "properties": {
                "steps": {"type": "integer", "minimum": 1, "maximum": 1000},
                "interval_ms": {"type": "integer", "minimum": 0, "maximum": 60000}
            },
            "required": ["steps", "interval_ms"]
        });
        let digest = json!({
            "type": "object",
            "properties": {"data": {"type": "string", "maxLength": 3}, "tags": {"type": "array", "items": {"type": "string"}}}
        });
        type Case = (Value, Value, Vec<(&'static str, &'static str)>);
        let cases: Vec<Case> = vec![
            // Anything goes.
            (json!({}), json!({"a": [1, null]}), vec![]),
            (json!(true), json!(3), vec![]),
            (
                json!(false),
                json!(3),
                vec![("", "no value is allowed here")],
            ),
            // sleep
            (sleep.clone(), json!({"duration_seconds": 1.5}), vec![]),
            (sleep.clone(), json!({"duration_seconds": 0}), vec![]),
            (
                sleep.clone(),
                json!({}),
                vec![("/duration_seconds", "is required")],
            ),
            (
                sleep.clone(),
                json!({"duration_seconds": "2"}),
                vec![("/duration_seconds", "must be a number, not string")],
            ),
            (
                sleep.clone(),
                json!({"duration_seconds": -1}),
                vec![("/duration_seconds", "must be at least 0")],
            ),
            (
                sleep.clone(),
                json!({"duration_seconds": 3601}),
                vec![("/duration_seconds", "must be at most 3600")],
            ),
            (
                sleep.clone(),
                json!({"duration_seconds": 1, "x": 1}),
                vec![("/x", "is not an allowed member")],
            ),
            (
                sleep.clone(),
                json!([1]),
                vec![("", "must be an object, not array")],
            ),
            (
                sleep.clone(),
                json!(null),
                vec![("", "must be an object, not null")],
            ),
            // steps: integers, several errors at once.
            (steps.clone(), json!({"steps": 3, "interval_ms": 0}), vec![]),
            (
                steps.clone(),
                json!({"steps": 3.0, "interval_ms": 10}),
                vec![],
            ),
            (
                steps.clone(),
                json!({"steps": 2.5, "interval_ms": 0}),
                vec![("/steps", "must be an integer, not number")],
            ),
            (
                steps.clone(),
                json!({"steps": 0, "interval_ms": 60001}),
                vec![
                    ("/interval_ms", "must be at most 60000"),
                    ("/steps", "must be at least 1"),
                ],
            ),
            (
                steps.clone(),
                json!({"interval_ms": true}),
                vec![
                    ("/steps", "is required"),
                    ("/interval_ms", "must be an integer, not boolean"),
                ],
            ),
            // strings and arrays
            (digest.clone(), json!({"data": "abc"}), vec![]),
            (digest.clone(), json!({"data": "héé"}), vec![]),
            (
                digest.clone(),
                json!({"data": "abcd"}),
                vec![("/data", "must be at most 3 characters long")],
            ),
            (
                digest.clone(),
                json!({"tags": ["a", 1]}),
                vec![("/tags/1", "must be a string, not integer")],
            ),
            // type lists, enums, escaping
            (json!({"type": ["string", "null"]}), json!(null), vec![]),
            (
                json!({"type": ["string", "null"]}),
                json!(1),
                vec![("", "must be one of string, null, not integer")],
            ),
            (
                json!({"enum": ["a", "b"]}),
                json!("c"),
                vec![("", "must be one of \"a\", \"b\"")],
            ),
            (
                json!({"properties": {"a/b~c": {"type": "boolean"}}}),
                json!({"a/b~c": 1}),
                vec![("/a~1b~0c", "must be a boolean, not integer")],
            ),
            (
                json!({"additionalProperties": {"type": "string"}}),
                json!({"k": 1}),
                vec![("/k", "must be a string, not integer")],
            ),
            (
                json!({"exclusiveMinimum": 0, "exclusiveMaximum": 1}),
                json!(1),
                vec![("", "must be less than 1")],
            ),
            (
                json!({"minLength": 2}),
                json!("a"),
                vec![("", "must be at least 2 characters long")],
            ),
        ];
        for (i, (schema, value, want)) in cases.into_iter().enumerate() {
            let want: Vec<(String, String)> = want
                .into_iter()
                .map(|(p, m)| (p.to_string(), m.to_string()))
                .collect();
            assert_eq!(errors(schema, value.clone()), want, "case {i}: {value}");
        }
    }
}
