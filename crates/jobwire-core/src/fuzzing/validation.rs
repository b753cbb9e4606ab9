//! The `schema` target: the JSON Schema check of inputs the server runs on every submit
//! (and the SDK before it sends), with the schemas of the built-in services, richer
//! ones, and schemas as arbitrary as a tenant's registration may bring.

use std::sync::OnceLock;

use serde_json::{json, Value};

use crate::schema::{InputCheck, InputSchema};
use crate::Service;

/// The input schemas of the reference server's built-in services, by name, as
/// `GET /v1/services` shows them (`tests/fuzz_corpus.rs` compares them with a running
/// server's, so they cannot drift).
pub const BUILTIN_SCHEMAS: &[(&str, &str)] = &[
    ("echo", r#"{}"#),
    (
        "sleep",
        r#"{"type":"object","properties":{"duration_seconds":{"type":"number","minimum":0,"maximum":3600}},"required":["duration_seconds"],"additionalProperties":false}"#,
    ),
    (
        "fail",
        r#"{"type":"object","properties":{"message":{"type":"string"}},"required":["message"]}"#,
    ),
    (
        "steps",
        r#"{"type":"object","properties":{"steps":{"type":"integer","minimum":1,"maximum":1000},"interval_ms":{"type":"integer","minimum":0,"maximum":60000}},"required":["steps","interval_ms"],"additionalProperties":false}"#,
    ),
    (
        "digest",
        r#"{"type":"object","properties":{"data":{"type":"string","maxLength":1000000},"rounds":{"type":"integer","minimum":1,"maximum":10000000}},"required":["data","rounds"],"additionalProperties":false}"#,
    ),
];

/// Schemas that use much of JSON Schema 2020-12, as a tenant's registered service may.
const RICH_SCHEMAS: &[&str] = &[
    // A recursive tree through `$defs` and `$ref`.
    r##"{"$defs":{"node":{"type":"object","properties":{"value":{"type":"integer","minimum":-9223372036854775808,"maximum":18446744073709551615},"children":{"type":"array","items":{"$ref":"#/$defs/node"},"maxItems":8}},"required":["value"],"additionalProperties":false}},"$ref":"#/$defs/node"}"##,
    // Every asserted format.
    r#"{"type":"object","properties":{"email":{"format":"email"},"date":{"format":"date"},"time":{"format":"time"},"dt":{"format":"date-time"},"duration":{"format":"duration"},"uri":{"format":"uri"},"uri_ref":{"format":"uri-reference"},"iri":{"format":"iri"},"host":{"format":"hostname"},"idn":{"format":"idn-hostname"},"ipv4":{"format":"ipv4"},"ipv6":{"format":"ipv6"},"uuid":{"format":"uuid"},"regex":{"format":"regex"},"pointer":{"format":"json-pointer"},"rel":{"format":"relative-json-pointer"},"template":{"format":"uri-template"}},"additionalProperties":{"format":"date-time"}}"#,
    // Combinators and conditionals.
    r#"{"oneOf":[{"type":"string","pattern":"^[a-z]+(-[a-z0-9]+)*$","minLength":1,"maxLength":64},{"type":"integer","multipleOf":7},{"type":"array","prefixItems":[{"const":"x"},{"enum":[1,"1",null,{"a":[]}]}],"items":false},{"allOf":[{"type":"object"},{"not":{"required":["forbidden"]}}],"if":{"properties":{"kind":{"const":"a"}}},"then":{"required":["a"]},"else":{"required":["b"]},"dependentRequired":{"x":["y"]},"patternProperties":{"^n_":{"type":"number","exclusiveMinimum":0,"exclusiveMaximum":1}},"propertyNames":{"maxLength":16},"unevaluatedProperties":{"type":"boolean"},"minProperties":1,"maxProperties":10}]}"#,
    // Arrays: contains, uniqueness, decimals.
    r#"{"type":"array","contains":{"type":"number","multipleOf":0.01},"minContains":1,"maxContains":3,"uniqueItems":true,"items":{"anyOf":[{"type":"number","minimum":-1e308,"maximum":1e308},{"type":"string","pattern":"\\p{L}+"},{"type":"null"}]}}"#,
];

/// The fixed schemas, compiled once: the built-ins, then the rich ones.
fn fixed() -> &'static [InputSchema] {
    static FIXED: OnceLock<Vec<InputSchema>> = OnceLock::new();
    FIXED.get_or_init(|| {
        let texts = BUILTIN_SCHEMAS.iter().map(|(_, text)| *text);
        texts
            .chain(RICH_SCHEMAS.iter().copied())
            .map(|text| {
                let schema: Value = serde_json::from_str(text)
                    .unwrap_or_else(|e| panic!("a fixed schema is not JSON: {e}: {text}"));
                InputSchema::new(&schema)
                    .unwrap_or_else(|e| panic!("a fixed schema does not compile: {e}: {text}"))
            })
            .collect()
    })
}

/// `schema`: input checks, and the compilation of arbitrary schemas.
///
/// Input: a byte, then the rest. Below 0x80 the byte picks a fixed schema and the rest
/// is the input (JSON, or else the text as a JSON string). From 0x80 on the rest is a
/// schema, then optionally a NUL and an input (without one, a few inputs of every JSON
/// type are checked): it is compiled, and the input checked by the compiled schema and
/// by the SDK's [`InputCheck`], which must agree.
pub fn schema(data: &[u8]) {
    let Some((&choice, rest)) = data.split_first() else {
        return;
    };
    if choice < 0x80 {
        let fixed = fixed();
        check(&fixed[usize::from(choice) % fixed.len()], &input_of(rest));
        return;
    }
    let (text, input) = match rest.iter().position(|&b| b == 0) {
        Some(at) => (&rest[..at], Some(&rest[at + 1..])),
        None => (rest, None),
    };
    let Ok(schema) = serde_json::from_slice::<Value>(text) else {
        return;
    };
    let compiled = InputSchema::new(&schema);
    if let Err(mistake) = &compiled {
        assert!(pointer_like(&mistake.pointer), "{mistake:?}");
    }
    let inputs = match input {
        Some(input) => vec![input_of(input)],
        None => vec![
            Value::Null,
            json!(true),
            json!(0),
            json!(-1.5),
            json!(18446744073709551615u64),
            json!(""),
            json!("2026-12-01T00:00:00Z"),
            json!([]),
            json!([1, "a", null, [], {}]),
            json!({}),
            json!({"a": {"b": [0]}, "n": 1e300}),
        ],
    };
    let service = Service::new("svc_fuzz", "fuzz", schema, "");
    let sdk = InputCheck::default();
    for input in inputs {
        let valid = match &compiled {
            Ok(compiled) => check(compiled, &input),
            // The SDK leaves a schema it cannot compile to the server.
            Err(_) => true,
        };
        assert_eq!(
            sdk.check(&service, &input).is_ok(),
            valid,
            "the SDK's check disagrees on {input}"
        );
    }
}

/// Checks `input` against `schema`: the error list and [`InputSchema::check`] agree and
/// each error points with a JSON pointer. Whether it was valid.
fn check(schema: &InputSchema, input: &Value) -> bool {
    let errors = schema.errors(input);
    for error in &errors {
        assert!(pointer_like(&error.pointer), "{error:?}");
    }
    assert_eq!(errors.is_empty(), schema.check("fuzz", input).is_ok());
    errors.is_empty()
}

/// An RFC 6901 JSON pointer: empty, or `/`-separated.
fn pointer_like(pointer: &str) -> bool {
    pointer.is_empty() || pointer.starts_with('/')
}

/// The input as JSON, or else as a JSON string of its text.
fn input_of(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(bytes).into_owned()))
}
