//! Services tenants register over the API (`POST /v1/services`): the request body,
//! checked field by field, and the service record made of it.
//!
//! Only command services can be registered this way; the checks are pure but for the
//! program's lookup, which is passed in (the server looks on its own `PATH`).

use std::path::{Path, PathBuf};

use jobwire_core::schema::InputSchema;
use jobwire_core::{CommandSpec, FieldError, Service};
use serde_json::{Map, Value};

/// Longest description.
const MAX_DESCRIPTION: usize = 1000;
/// Most arguments, and most environment variables.
const MAX_ARGS: usize = 256;
const MAX_ENV: usize = 256;
/// Longest per-job timeout, in seconds.
const MAX_TIMEOUT_SECONDS: f64 = 86_400.0;
/// The timeout of a command that names none, in seconds.
pub(crate) const DEFAULT_TIMEOUT_SECONDS: f64 = 60.0;
/// Highest concurrency limit.
const MAX_CONCURRENCY: u64 = 10_000;

/// The tenants whose command services this server registers and runs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) enum Tenants {
    /// None: the default.
    #[default]
    None,
    /// Every tenant (`--allow-commands`).
    All,
    /// These tenants only (`--allow-commands-for`).
    Only(std::collections::BTreeSet<String>),
}

impl Tenants {
    /// Whether `tenant` may register command services and have their programs run.
    pub(crate) fn allow(&self, tenant: &str) -> bool {
        match self {
            Tenants::None => false,
            Tenants::All => true,
            Tenants::Only(tenants) => tenants.contains(tenant),
        }
    }

    /// Why `tenant` may not, for a 403 or 503 problem's detail.
    pub(crate) fn refusal(&self, tenant: &str) -> String {
        match self {
            Tenants::Only(_) => format!(
                "this server runs programs only for the tenants it was started with \
                 (--allow-commands-for), and tenant {tenant:?} is not one of them"
            ),
            _ => "this server does not run programs for its tenants (it was started without \
                  --allow-commands)"
                .into(),
        }
    }
}

/// A registration that passed every check, with its program resolved.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Registration {
    pub name: String,
    pub description: String,
    pub input_schema: Value,
    pub command: CommandSpec,
}

impl Registration {
    /// The service record: kind `command`, with `id` and `created_at`.
    pub(crate) fn into_service(self, id: String, created_at: String) -> Service {
        let mut service = Service::new(id, self.name, self.input_schema, created_at);
        service.description = self.description;
        service.kind = "command".into();
        service.command = Some(self.command);
        service
    }
}

/// Whether `name` may name a service: 1 to 64 of `a-z`, `0-9`, `_`, `-`.
pub(crate) fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// Checks a `POST /v1/services` body (already known to be an object), finding programs
/// with `resolve`; every failing field is reported, by JSON pointer into the body.
pub(crate) fn check(
    body: &Map<String, Value>,
    resolve: impl Fn(&str) -> Result<PathBuf, String>,
) -> Result<Registration, Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut fail = |pointer: &str, message: &str| errors.push(FieldError::new(pointer, message));
    for member in body.keys() {
        if !["name", "description", "input_schema", "command"].contains(&member.as_str()) {
            fail(&pointer_to("", member), "is not an allowed member");
        }
    }
    let name = match body.get("name") {
        Some(Value::String(name)) if is_valid_name(name) => name.clone(),
        Some(_) => {
            fail("/name", "must be 1 to 64 of a-z, 0-9, '_' and '-'");
            String::new()
        }
        None => {
            fail("/name", "is required");
            String::new()
        }
    };
    let description = match body.get("description") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(text)) if text.chars().count() <= MAX_DESCRIPTION => text.clone(),
        Some(_) => {
            fail(
                "/description",
                &format!("must be a string of at most {MAX_DESCRIPTION} characters"),
            );
            String::new()
        }
    };
    let input_schema = body
        .get("input_schema")
        .cloned()
        .unwrap_or_else(|| Value::Object(Map::new()));
    if let Err(mistake) = InputSchema::new(&input_schema) {
        errors.push(FieldError::new(
            format!("/input_schema{}", mistake.pointer),
            mistake.message,
        ));
    }
    let command = match body.get("command") {
        Some(Value::Object(command)) => check_command(command, &resolve, &mut errors),
        Some(_) => {
            errors.push(FieldError::new("/command", "must be an object"));
            None
        }
        None => {
            errors.push(FieldError::new(
                "/command",
                "is required: only command services can be registered over the API",
            ));
            None
        }
    };
    match command {
        Some(command) if errors.is_empty() => Ok(Registration {
            name,
            description,
            input_schema,
            command,
        }),
        _ => Err(errors),
    }
}

fn check_command(
    command: &Map<String, Value>,
    resolve: &impl Fn(&str) -> Result<PathBuf, String>,
    errors: &mut Vec<FieldError>,
) -> Option<CommandSpec> {
    let mut fail =
        |pointer: String, message: String| errors.push(FieldError::new(pointer, message));
    let known = [
        "program",
        "args",
        "env",
        "timeout_seconds",
        "max_concurrency",
    ];
    for member in command.keys() {
        if !known.contains(&member.as_str()) {
            fail(
                pointer_to("/command", member),
                "is not an allowed member".into(),
            );
        }
    }
    let program = match command.get("program") {
        Some(Value::String(program)) => match resolve(program) {
            Ok(path) => Some(path.to_string_lossy().into_owned()),
            Err(why) => {
                fail("/command/program".into(), why);
                None
            }
        },
        Some(_) => {
            fail("/command/program".into(), "must be a string".into());
            None
        }
        None => {
            fail("/command/program".into(), "is required".into());
            None
        }
    };
    let mut args = Vec::new();
    match command.get("args") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) if items.len() <= MAX_ARGS => {
            for (i, item) in items.iter().enumerate() {
                match item.as_str() {
                    Some(arg) if !arg.contains('\0') => args.push(arg.to_owned()),
                    _ => fail(
                        format!("/command/args/{i}"),
                        "must be a string without NUL".into(),
                    ),
                }
            }
        }
        Some(_) => fail(
            "/command/args".into(),
            format!("must be a list of at most {MAX_ARGS} strings"),
        ),
    }
    let mut env = std::collections::BTreeMap::new();
    match command.get("env") {
        None | Some(Value::Null) => {}
        Some(Value::Object(vars)) if vars.len() <= MAX_ENV => {
            for (name, value) in vars {
                let pointer = pointer_to("/command/env", name);
                match value.as_str() {
                    _ if !is_env_name(name) => fail(
                        pointer,
                        "is not a variable name ([A-Za-z_][A-Za-z0-9_]*)".into(),
                    ),
                    Some(value) if !value.contains('\0') => {
                        env.insert(name.clone(), value.to_owned());
                    }
                    _ => fail(pointer, "must be a string without NUL".into()),
                }
            }
        }
        Some(_) => fail(
            "/command/env".into(),
            format!("must be an object of at most {MAX_ENV} strings"),
        ),
    }
    let timeout_seconds = match command.get("timeout_seconds") {
        None | Some(Value::Null) => DEFAULT_TIMEOUT_SECONDS,
        Some(value) => match value.as_f64() {
            Some(t) if t > 0.0 && t <= MAX_TIMEOUT_SECONDS => t,
            _ => {
                fail(
                    "/command/timeout_seconds".into(),
                    format!("must be a number above 0 and at most {MAX_TIMEOUT_SECONDS}"),
                );
                DEFAULT_TIMEOUT_SECONDS
            }
        },
    };
    let max_concurrency = match command.get("max_concurrency") {
        None | Some(Value::Null) => None,
        Some(value) => match value.as_u64() {
            Some(n @ 1..=MAX_CONCURRENCY) => u32::try_from(n).ok(),
            _ => {
                fail(
                    "/command/max_concurrency".into(),
                    format!("must be an integer from 1 to {MAX_CONCURRENCY}"),
                );
                None
            }
        },
    };
    let mut spec = CommandSpec::new(program?);
    spec.args = args;
    spec.env = env;
    spec.timeout_seconds = Some(timeout_seconds);
    spec.max_concurrency = max_concurrency;
    Some(spec)
}

/// `base` followed by `token` as one RFC 6901 pointer token.
fn pointer_to(base: &str, token: &str) -> String {
    format!("{base}/{}", token.replace('~', "~0").replace('/', "~1"))
}

fn is_env_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Finds `program` as the server would run it: an absolute path to an executable file,
/// or a name (no `/`) looked up on the server's `PATH`; answers the absolute path.
pub(crate) fn resolve_program(program: &str) -> Result<PathBuf, String> {
    if program.is_empty() || program.contains('\0') {
        return Err("must be a program's path or name".into());
    }
    if program.contains('/') {
        let path = Path::new(program);
        if !path.is_absolute() {
            return Err("must be an absolute path, or a name to look up on PATH".into());
        }
        return if is_executable(path) {
            Ok(path.to_owned())
        } else {
            Err(format!("{program} is not an executable file on the server"))
        };
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .filter(|dir| dir.is_absolute())
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable(candidate))
        .ok_or_else(|| format!("there is no program {program:?} on the server's PATH"))
}

fn is_executable(path: &Path) -> bool {
    let Ok(meta) = std::fs::metadata(path) else {
        return false;
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        meta.is_file() && meta.permissions().mode() & 0o111 != 0
    }
    #[cfg(not(unix))]
    {
        meta.is_file()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn found(program: &str) -> Result<PathBuf, String> {
        match program {
            "tool" => Ok(PathBuf::from("/usr/bin/tool")),
            other => Err(format!("no {other}")),
        }
    }

    fn pointers(body: Value) -> Vec<String> {
        match check(body.as_object().unwrap(), found) {
            Ok(_) => Vec::new(),
            Err(errors) => errors.into_iter().map(|e| e.pointer).collect(),
        }
    }

    #[test]
    fn a_good_body_is_resolved_and_defaulted() {
        let body = json!({
            "name": "wc",
            "description": "counts",
            "input_schema": {"type": "object"},
            "command": {"program": "tool", "args": ["-l"], "env": {"LANG": "C"}}
        });
        let reg = check(body.as_object().unwrap(), found).unwrap();
        assert_eq!(reg.command.program, "/usr/bin/tool");
        assert_eq!(reg.command.args, ["-l"]);
        assert_eq!(reg.command.env["LANG"], "C");
        assert_eq!(reg.command.timeout_seconds, Some(DEFAULT_TIMEOUT_SECONDS));
        assert_eq!(reg.command.max_concurrency, None);
        let service = reg.into_service("svc_1".into(), "now".into());
        assert_eq!(
            (service.kind.as_str(), service.name.as_str()),
            ("command", "wc")
        );
    }

    #[test]
    fn every_failing_field_is_named() {
        let cases: Vec<(Value, Vec<&str>)> = vec![
            (json!({}), vec!["/name", "/command"]),
            (
                json!({"name": "Bad Name", "command": {"program": "tool"}}),
                vec!["/name"],
            ),
            (json!({"name": "a", "command": "tool"}), vec!["/command"]),
            (
                json!({"name": "a", "command": {"program": "nope"}}),
                vec!["/command/program"],
            ),
            (
                json!({"name": "a", "command": {}}),
                vec!["/command/program"],
            ),
            (
                json!({"name": "a", "extra": 1, "command": {"program": "tool", "x/y": 1}}),
                vec!["/extra", "/command/x~1y"],
            ),
            (
                json!({"name": "a", "command": {"program": "tool", "args": ["ok", 3]}}),
                vec!["/command/args/1"],
            ),
            (
                json!({"name": "a", "command": {"program": "tool", "env": {"1X": "v", "Y": 2, "Z": "ok"}}}),
                vec!["/command/env/1X", "/command/env/Y"],
            ),
            (
                json!({"name": "a", "command": {"program": "tool", "timeout_seconds": 0}}),
                vec!["/command/timeout_seconds"],
            ),
            (
                json!({"name": "a", "command": {"program": "tool", "timeout_seconds": 86401}}),
                vec!["/command/timeout_seconds"],
            ),
            (
                json!({"name": "a", "command": {"program": "tool", "max_concurrency": 0}}),
                vec!["/command/max_concurrency"],
            ),
            (
                json!({"name": "a", "command": {"program": "tool", "max_concurrency": 1.5}}),
                vec!["/command/max_concurrency"],
            ),
            (
                json!({"name": "a", "input_schema": {"type": "nope"}, "command": {"program": "tool"}}),
                vec!["/input_schema/type"],
            ),
            (
                json!({"name": "a", "description": 3, "command": {"program": "tool", "max_concurrency": 10000}}),
                vec!["/description"],
            ),
        ];
        for (body, want) in cases {
            assert_eq!(pointers(body.clone()), want, "{body}");
        }
    }

    #[test]
    fn tenants_are_allowed_by_the_list() {
        let only = Tenants::Only(["a".to_string()].into_iter().collect());
        let cases = [
            (Tenants::None, "a", false),
            (Tenants::All, "a", true),
            (only.clone(), "a", true),
            (only.clone(), "b", false),
            (only.clone(), "", false),
        ];
        for (tenants, tenant, allowed) in cases {
            assert_eq!(tenants.allow(tenant), allowed, "{tenants:?} {tenant}");
            assert!(tenants.refusal(tenant).contains("--allow-commands"));
        }
        assert!(only.refusal("b").contains("\"b\""));
    }

    #[test]
    fn programs_are_found_as_the_server_would_run_them() {
        assert!(resolve_program("/bin/sh").is_ok());
        let sh = resolve_program("sh").unwrap();
        assert!(sh.is_absolute() && sh.ends_with("sh"), "{sh:?}");
        assert!(
            resolve_program("bin/sh").is_err(),
            "relative paths are refused"
        );
        assert!(resolve_program("/etc/passwd").is_err(), "not executable");
        assert!(resolve_program("/no/such/program").is_err());
        assert!(resolve_program("no-such-program-anywhere").is_err());
        assert!(resolve_program("").is_err());
    }
}
