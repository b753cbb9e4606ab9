//! `spawn_blocking_server` from plain, runtime-free test code.

use std::io::{Read, Write};
use std::net::TcpStream;

use jobwire_server::{spawn_blocking_server, ServerConfig, ServerError};

fn get(addr: std::net::SocketAddr, path: &str, token: Option<&str>) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{auth}\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

#[test]
fn blocking_server_serves_and_stops() {
    let server = spawn_blocking_server(ServerConfig::new()).unwrap();
    assert!(server.url().starts_with("http://127.0.0.1:"));
    assert!(server.token().starts_with("jw_"));
    let addr = server.addr();
    assert!(get(addr, "/v1/health", None).starts_with("HTTP/1.1 200"));
    let services = get(addr, "/v1/services/echo", Some(server.token()));
    assert!(services.starts_with("HTTP/1.1 200"), "{services}");
    assert!(get(addr, "/v1/services/echo", Some("nope")).starts_with("HTTP/1.1 401"));
    server.shutdown();
    assert!(TcpStream::connect(addr).is_err());
}

#[test]
fn dropping_the_handle_stops_the_server() {
    let server = spawn_blocking_server(ServerConfig::new().token("tok", "t")).unwrap();
    assert_eq!(server.token(), "tok");
    let addr = server.addr();
    drop(server);
    assert!(TcpStream::connect(addr).is_err());
}

#[test]
fn start_errors_are_reported() {
    let first = spawn_blocking_server(ServerConfig::new()).unwrap();
    let taken = spawn_blocking_server(ServerConfig::new().addr(first.addr()));
    assert!(matches!(taken, Err(ServerError::Bind(_))), "{taken:?}");
    let bad = spawn_blocking_server(ServerConfig::new().max_body_bytes(0));
    assert!(matches!(bad, Err(ServerError::Config(_))), "{bad:?}");
    first.shutdown();
}
