//! The OpenAPI document the server serves is the one in the repository, and every
//! operation it documents is answered by the server with a documented success status.

use bytes::Bytes;
use jobwire_blocking::transport::{Transport, UreqTransport};
use serde_json::{json, Value};

#[test]
fn every_documented_operation_is_served() {
    let config = jobwire_server::ServerConfig::new().allow_commands(true);
    let server = jobwire_server::spawn_blocking_server(config).unwrap();
    let transport = UreqTransport::new();
    let send = |method: &str, path: &str, body: Option<Value>| {
        let mut req = http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", server.url()))
            .header("authorization", format!("Bearer {}", server.token()));
        if body.is_some() {
            req = req.header("content-type", "application/json");
        }
        let body = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
        let (head, body) = transport
            .send(req.body(body).unwrap())
            .unwrap()
            .into_parts();
        let is_stream = head
            .headers
            .get("content-type")
            .is_some_and(|v| v == "text/event-stream");
        // An event stream does not end by itself: its status and type are the answer.
        // A 204 has no body to read.
        let body = if is_stream {
            Bytes::from_static(b"(event stream)")
        } else if head.status == http::StatusCode::NO_CONTENT {
            Bytes::new()
        } else {
            body.read_to_bytes(1 << 20).unwrap()
        };
        (head.status, body)
    };

    let in_repo: Value =
        serde_json::from_str(include_str!("../crates/jobwire-server/openapi.json")).unwrap();
    let (status, served) = send("GET", "/v1/openapi.json", None);
    assert_eq!(status, 200);
    assert_eq!(serde_json::from_slice::<Value>(&served).unwrap(), in_repo);

    let job = jobwire_blocking::Client::builder()
        .base_url(server.url())
        .token(server.token())
        .build()
        .unwrap()
        .submit("sleep", &json!({"duration_seconds": 30}))
        .unwrap();

    let mut checked = 0;
    for (template, item) in in_repo["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let Some(responses) = op.get("responses").and_then(Value::as_object) else {
                continue;
            };
            let path = match (method.as_str(), template.as_str()) {
                // A service of its own to delete, whichever operation comes first.
                ("delete", "/v1/services/{id_or_name}") => {
                    let spec = json!({"name": "doomed", "command": {"program": "/bin/true"}});
                    let (status, created) = send("POST", "/v1/services", Some(spec));
                    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&created));
                    let created: Value = serde_json::from_slice(&created).unwrap();
                    format!("/v1/services/{}", created["id"].as_str().unwrap())
                }
                _ => template
                    .replace("{id_or_name}", "echo")
                    .replace("{id}", job.id()),
            };
            let body = match method.as_str() {
                "post" if path == "/v1/services" => {
                    Some(json!({"name": "true-cmd", "command": {"program": "/bin/true"}}))
                }
                "post" if path.ends_with("/jobs") => Some(json!({"input": {}})),
                _ => None,
            };
            let (status, answer) = send(&method.to_uppercase(), &path, body);
            assert!(
                status.is_success() && responses.contains_key(status.as_str()),
                "{method} {template}: {status} not among documented successes {:?}: {}",
                responses.keys().collect::<Vec<_>>(),
                String::from_utf8_lossy(&answer)
            );
            checked += 1;
        }
    }
    assert_eq!(
        checked, 12,
        "the document lists the twelve operations of this version"
    );
    server.shutdown();
}
