//! The inputs each fuzz target starts from: boundary values that blind mutation rarely
//! writes (a 20-digit number, a date in year 9999, a line one byte past the 1 MiB
//! limit). Made here, not checked in, so that big ones cost no repository space;
//! `cargo xtask fuzz` writes them into the fuzzer's corpus and the corpus replay test
//! runs them too.

use crate::sse::SseDecoder;

/// Numbers at the edges of the integer types, as text: 0, 2^31, 2^32, 2^53 + 1, 2^63,
/// 2^64 - 1, 2^64, -1, -2^63 and longer.
const NUMBERS: &[&str] = &[
    "0",
    "1",
    "2147483648",
    "4294967296",
    "9007199254740993",
    "9223372036854775808",
    "18446744073709551615",
    "18446744073709551616",
    "99999999999999999999999",
    "-1",
    "-9223372036854775808",
    "1e400",
    "-0",
    "0.5",
];

/// `Retry-After` and `Date` values: the three date forms of RFC 9110 at the edges of
/// what `httpdate` reads, and texts that are almost numbers.
const DATES: &[&str] = &[
    "Sun, 06 Nov 1994 08:49:37 GMT",
    "Sunday, 06-Nov-94 08:49:37 GMT",
    "Sun Nov  6 08:49:37 1994",
    "Thu, 01 Jan 1970 00:00:00 GMT",
    "Fri, 31 Dec 9999 23:59:59 GMT",
    "Sat, 01 Jan 10000 00:00:00 GMT",
    "Tue, 19 Jan 2038 03:14:08 GMT",
    "Mon, 01 Dec 2026 00:00:00 GMT",
    "Wed, 31 Dec 1969 23:59:59 GMT",
    "",
    " 7 ",
    "+5",
    "1.5",
    "0x10",
];

/// The inputs fuzz target `target` starts from (none for a target [`run`](super::run)
/// does not know).
///
/// ```
/// let seeds = jobwire_core::fuzzing::seeds("retry_after");
/// assert!(seeds.iter().any(|s| s.ends_with(b"18446744073709551615")));
/// ```
pub fn seeds(target: &str) -> Vec<Vec<u8>> {
    match target {
        "sse" => sse(),
        "events" => events(),
        "problem" => problem(),
        "retry_after" => retry_after(),
        "prefer" => prefer(),
        "schema" => schema(),
        _ => Vec::new(),
    }
}

/// A job as the server sends it, with `output`.
fn job(id: &str, status: &str, output: &str) -> String {
    format!(
        r#"{{"id":"{id}","service_id":"svc_echo","service":"echo","status":"{status}","input":{{}},"output":{output},"labels":{{"k":"v"}},"progress":{{"fraction":1,"message":""}},"created_at":"2026-12-01T00:00:00Z","started_at":"+275760-09-13T00:00:00Z","finished_at":"9999-12-31T23:59:59.999999999Z"}}"#
    )
}

/// An `sse` input: the mode byte (limit `limit_bits`, no cuts: one byte at a time, or
/// the cuts given), the cuts, the stream.
fn sse_input(limit_bits: u8, cuts: &[u8], stream: &[u8]) -> Vec<u8> {
    let mut input = vec![limit_bits | (cuts.len().min(15) as u8) << 4];
    input.extend_from_slice(&cuts[..cuts.len().min(15)]);
    input.extend_from_slice(stream);
    input
}

fn sse() -> Vec<Vec<u8>> {
    let mut streams: Vec<Vec<u8>> = vec![
        b"data: a\n\ndata: b\r\n\r\ndata: c\r\rid: 1\nevent: log\ndata: {}\n\n".to_vec(),
        b"\xEF\xBB\xBFdata: bom\n\n\xEF\xBB\xBFdata: not a bom\n\n".to_vec(),
        b"\xEF\xBBdata: half a bom\n\n".to_vec(),
        b": comment\nretry: 1000\nid\nid: a\0b\ndata\ndata:\ndata:  two spaces\n\n".to_vec(),
        b"data: caf\xE9\n\ndata: \xF0\x9F\x92\n\n".to_vec(),
        format!(
            "id: 7\nevent: done\ndata: {}\n\n",
            job("job_1", "succeeded", r#"{"n":1}"#)
        )
        .into_bytes(),
        format!(
            "event: progress\nid: 2\ndata: {}\n\nevent: status\nid: 3\ndata: {}\n\n",
            r#"{"job_id":"job_1","fraction":1e400,"message":"m"}"#,
            r#"{"job_id":"job_1","status":"paused"}"#
        )
        .into_bytes(),
    ];
    for n in NUMBERS {
        streams.push(
            format!(
                "retry: {n}\nid: {n}\nevent: log\ndata: {{\"job_id\":\"j\",\"line\":\"{n}\"}}\n\n"
            )
            .into_bytes(),
        );
    }
    let mut seeds = Vec::new();
    for stream in &streams {
        seeds.push(sse_input(0, &[], stream));
        seeds.push(sse_input(0, &[3, 0, 1, 7], stream));
        seeds.push(sse_input(1, &[2], stream));
        seeds.push(sse_input(3, &[5, 1], stream));
    }
    // Lines and events at the default limit, one byte under and over, in chunks of up
    // to 255 bytes.
    let limit = SseDecoder::DEFAULT_LIMIT;
    let cuts = [255, 255, 0, 1];
    for len in [limit - 1, limit, limit + 1] {
        let mut line = b"data: ".to_vec();
        line.resize(len, b'x');
        line.extend_from_slice(b"\n\n");
        seeds.push(sse_input(0, &cuts, &line));
        let mut comment = vec![b':'; len];
        comment.extend_from_slice(b"\r\ndata: after\r\n\r\n");
        seeds.push(sse_input(0, &cuts, &comment));
    }
    // Data lines that add up to the limit.
    let mut many = Vec::new();
    let line = format!("data: {}\n", "y".repeat(1017));
    while many.len() + line.len() <= limit + 1024 {
        many.extend_from_slice(line.as_bytes());
    }
    many.extend_from_slice(b"\n");
    seeds.push(sse_input(0, &cuts, &many));
    // A `done` as large as the limit allows.
    let output = format!("\"{}\"", "z".repeat(limit - 600));
    let done = format!(
        "id: 9\nevent: done\ndata: {}\n\n",
        job("job_2", "succeeded", &output)
    );
    seeds.push(sse_input(0, &cuts, done.as_bytes()));
    seeds
}

fn events() -> Vec<Vec<u8>> {
    let mut seeds = Vec::new();
    let kinds = [
        "status",
        "progress",
        "log",
        "output",
        "done",
        "heartbeat",
        "",
    ];
    let datas = [
        r#"{"job_id":"job_1","status":"running"}"#.to_owned(),
        r#"{"job_id":"job_1","status":"something-new"}"#.to_owned(),
        r#"{"job_id":"job_1","fraction":0.5,"message":"half"}"#.to_owned(),
        r#"{"job_id":"job_1","fraction":-1e308}"#.to_owned(),
        r#"{"job_id":"job_1","line":"a\u0000b"}"#.to_owned(),
        r#"{"job_id":"job_1","chunk":"\ud800"}"#.to_owned(),
        job("job_1", "succeeded", "null"),
        job("job_1", "failed", r#"{"deep":[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]}"#),
        r#"{"id":"job_1","id":"job_2","service_id":"s","status":"succeeded"}"#.to_owned(),
        r#"{"items":[],"next_cursor":"c"}"#.to_owned(),
        r#"{"items":[],"next_cursor":""}"#.to_owned(),
        format!(r#"{{"items":[{}],"next_cursor":null}}"#, job("job_3", "queued", "1")),
        r#"{"status":"ok","version":"0.1.0"}"#.to_owned(),
        r#"{"id":"svc_1","name":"echo","input_schema":{},"command":{"program":"/bin/true","timeout_seconds":1e400,"max_concurrency":4294967296}}"#.to_owned(),
        String::new(),
    ];
    for kind in kinds {
        for data in &datas {
            seeds.push(format!("{kind}\n42\n{data}").into_bytes());
        }
    }
    for n in NUMBERS {
        seeds.push(format!("done\n{n}\n{}", job("job_1", "cancelled", n)).into_bytes());
        seeds.push(format!("progress\n{n}\n{{\"job_id\":\"j\",\"fraction\":{n}}}").into_bytes());
    }
    // A job answer near the SDK's limits: 1 MiB of output.
    let big = job(
        "job_big",
        "succeeded",
        &format!("[{}0]", "1234567,".repeat(128 * 1024)),
    );
    seeds.push(format!("done\n18446744073709551615\n{big}").into_bytes());
    seeds
}

/// A `problem` input: the status, header lines, an empty line, the body.
fn problem_input(status: u16, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut input = status.wrapping_sub(100).to_be_bytes().to_vec();
    for (name, value) in headers {
        input.extend_from_slice(format!("{name}: {value}\n").as_bytes());
    }
    input.extend_from_slice(b"\n");
    input.extend_from_slice(body);
    input
}

fn problem() -> Vec<Vec<u8>> {
    let statuses = [
        100, 200, 204, 304, 400, 401, 403, 404, 408, 409, 410, 413, 422, 429, 500, 502, 503, 504,
        599, 999,
    ];
    let bodies: Vec<String> = vec![
        r#"{"type":"https://jobwire.dev/problems/not_found","title":"Not Found","status":404,"code":"not_found","detail":"no job","request_id":"r1"}"#.into(),
        r#"{"status":0,"code":"","title":""}"#.into(),
        r#"{"status":65536,"code":"x"}"#.into(),
        r#"{"status":-1,"code":"x"}"#.into(),
        r#"{"status":18446744073709551615,"title":"t"}"#.into(),
        r#"{"code":"validation_failed","errors":[{"pointer":"/a","message":"is required"},{"pointer":"","message":""}],"retryable":true,"x-ext":[1e400]}"#.into(),
        r#"{"code":"rate_limited","retry_after":18446744073709551615}"#.into(),
        "<html>bad gateway</html>".into(),
        "caf\u{e9} \u{1F600}".into(),
        String::new(),
        "null".into(),
    ];
    let headers: Vec<Vec<(&str, &str)>> = vec![
        vec![],
        vec![
            ("content-type", "application/problem+json"),
            ("x-request-id", "req_1"),
        ],
        vec![("retry-after", "18446744073709551615")],
        vec![("retry-after", "100000000"), ("retry-after", "1")],
        vec![
            ("date", "Sun, 06 Nov 1994 08:49:37 GMT"),
            ("retry-after", "Fri, 31 Dec 9999 23:59:59 GMT"),
        ],
        vec![("retry-after", "-1"), ("x-request-id", "\u{7f}")],
    ];
    let mut seeds = Vec::new();
    for (i, status) in statuses.into_iter().enumerate() {
        for (j, body) in bodies.iter().enumerate() {
            let headers = &headers[(i + j) % headers.len()];
            seeds.push(problem_input(status, headers, body.as_bytes()));
        }
    }
    // A body past any detail's length: the detail is cut, on a character boundary.
    let mut big = "é".repeat(512 * 1024).into_bytes();
    big.push(0xff);
    seeds.push(problem_input(502, &[], &big));
    seeds
}

fn retry_after() -> Vec<Vec<u8>> {
    let mut seeds = Vec::new();
    let values = NUMBERS.iter().chain(DATES);
    for (i, value) in values.clone().enumerate() {
        // Every rate and longest pause, over the seeds.
        let choice = (i * 17 % 0x80) as u8;
        seeds.push([&[choice], value.as_bytes()].concat());
        for date in [DATES[0], DATES[4], DATES[5], "not a date"] {
            seeds.push([&[choice ^ 0x11], value.as_bytes(), b"\n", date.as_bytes()].concat());
        }
    }
    // Rates given as bits: the smallest, a negative, infinity, NaN.
    for rate in [5e-324_f64, -1.0, f64::INFINITY, f64::NAN, 1e-19] {
        seeds.push([&[0x80][..], &rate.to_be_bytes(), b"18446744073709551615"].concat());
    }
    seeds
}

fn prefer() -> Vec<Vec<u8>> {
    let values = [
        "wait=5",
        "WAIT = \"7\"",
        "respond-async, wait=5; x=y",
        "wait=1, wait=2",
        "return=minimal\nwait=3",
        "wait",
        "wait=",
        "wait=\"\"",
        "wait=\"5",
        "wait=-1",
        "wait=1.5",
        "wait=0x10",
        "wait=+5",
        "wait=\u{663}",
        "waiting=3, handling=lenient",
        ",,;,=,",
        "",
    ];
    let mut seeds = Vec::new();
    for (i, value) in values.iter().enumerate() {
        let seconds = [0, 1, 1 << 31, 1 << 63, u64::MAX][i % 5];
        seeds.push([&seconds.to_be_bytes()[..], value.as_bytes()].concat());
    }
    for n in NUMBERS {
        seeds.push([&[0; 8][..], b"wait=", n.as_bytes()].concat());
        seeds.push(
            [
                &u64::MAX.to_be_bytes()[..],
                b"respond-async\nwait=\"",
                n.as_bytes(),
                b"\"",
            ]
            .concat(),
        );
    }
    seeds
}

fn schema() -> Vec<Vec<u8>> {
    let mut seeds = Vec::new();
    // Inputs for the fixed schemas: every built-in (0-4) and rich one (5-8).
    let inputs = [
        (0, r#"{"anything":[1e308,null]}"#.to_owned()),
        (1, r#"{"duration_seconds":0}"#.to_owned()),
        (1, r#"{"duration_seconds":3600.0000000001}"#.to_owned()),
        (1, r#"{"duration_seconds":-1}"#.to_owned()),
        (1, r#"{"duration_seconds":1e400}"#.to_owned()),
        (1, r#"{"duration_seconds":"1","extra":true}"#.to_owned()),
        (2, r#"{"message":"\u0000"}"#.to_owned()),
        (2, "[]".to_owned()),
        (3, r#"{"steps":18446744073709551615,"interval_ms":-9223372036854775808}"#.to_owned()),
        (3, r#"{"steps":1000.0,"interval_ms":2147483648}"#.to_owned()),
        (4, r#"{"data":"","rounds":10000001}"#.to_owned()),
        (5, r#"{"value":1,"children":[{"value":2,"children":[{"value":-1}]}]}"#.to_owned()),
        (5, r#"{"value":18446744073709551616}"#.to_owned()),
        (6, r#"{"email":"a@b.c","date":"2026-02-30","time":"23:59:60Z","dt":"9999-12-31T23:59:59.999999999+23:59","duration":"P1Y2M3DT4H5M6S","uri":"http://[::1]:99999/","host":"a..b","ipv4":"256.0.0.1","ipv6":"::ffff:1.2.3.4","uuid":"00000000-0000-0000-0000-000000000000","regex":"(?<n>a)\\k<n>","pointer":"/a~2","rel":"0#","template":"{x","other":"+275760-09-13T00:00:00Z"}"#.to_owned()),
        (7, r#"["x",{"a":[]}]"#.to_owned()),
        (7, r#"{"kind":"a","a":1,"x":1,"n_1":0.5,"u":true}"#.to_owned()),
        (7, "kebab-case-name".to_owned()),
        (8, r#"[0.01,0.03,"é",null,1e308,-1e308]"#.to_owned()),
    ];
    for (choice, input) in inputs {
        seeds.push([&[choice][..], input.as_bytes()].concat());
    }
    // Built-in inputs at the size limits: a `digest` data of exactly and one past
    // 1,000,000 characters.
    for len in [1_000_000, 1_000_001] {
        let input = format!(r#"{{"data":"{}","rounds":1}}"#, "d".repeat(len));
        seeds.push([&[4][..], input.as_bytes()].concat());
    }
    // Schemas a tenant may register: slow patterns, recursion, extreme numbers,
    // remote and odd references, other drafts.
    let schemas = [
        r#"{"pattern":"^(a+)+$"}"#,
        r#"{"pattern":"(x+x+)+y","minLength":18446744073709551615}"#,
        r##"{"$ref":"#"}"##,
        r##"{"$defs":{"a":{"$ref":"#/$defs/b"},"b":{"$ref":"#/$defs/a"}},"$ref":"#/$defs/a"}"##,
        r##"{"properties":{"a":{"$ref":"#"}},"additionalProperties":{"$ref":"#/properties/a"}}"##,
        r#"{"multipleOf":1e-308}"#,
        r#"{"multipleOf":5e-324,"maximum":1e308}"#,
        r#"{"maxLength":18446744073709551616}"#,
        r#"{"minItems":-1}"#,
        r#"{"format":"regex"}"#,
        r#"{"$ref":"https://example.com/s.json"}"#,
        r#"{"$id":"urn:x","$ref":"urn:x#/nope"}"#,
        r#"{"$schema":"http://json-schema.org/draft-04/schema#","exclusiveMinimum":true,"minimum":0}"#,
        r#"{"$schema":"https://example.com/unknown"}"#,
        r##"{"$dynamicRef":"#meta","$dynamicAnchor":"meta"}"##,
        r#"{"contentMediaType":"application/json","contentEncoding":"base64"}"#,
        r#"{"type":["string","integer"],"enum":[]}"#,
        r#"{"uniqueItems":true}"#,
        "true",
        "false",
        "[]",
    ];
    let inputs = [
        r#""aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!""#,
        r#""xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx""#,
        r#"{"a":{"a":{"a":{}}},"b":1}"#,
        r#"[1,1.0,{"a":1},{"a":1.0}]"#,
        "1e308",
        r#""(?<""#,
    ];
    for (i, schema) in schemas.iter().enumerate() {
        seeds.push([&[0x80][..], schema.as_bytes()].concat());
        let input = inputs[i % inputs.len()];
        seeds.push([&[0xff][..], schema.as_bytes(), b"\0", input.as_bytes()].concat());
    }
    seeds
}
