//! The connection layer against hostile and careless peers, over real sockets: half-sent
//! requests, idle connections (HTTP/1.1 and HTTP/2), a peer that stops reading, a body
//! that dribbles in, and more connections than the server takes.

mod common;

use std::time::{Duration, Instant};

use common::Client;
use jobwire_server::{spawn, ServerConfig, ServerHandle};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn start(config: ServerConfig) -> (ServerHandle, Client) {
    let server = spawn(config).await.expect("server starts");
    let client = Client::new(server.addr(), server.token());
    (server, client)
}

/// Waits until the server counts `n` open connections; false if it never does.
async fn connections_reach(server: &ServerHandle, n: usize, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if server.connections() == n {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.connections() == n
}

/// Reads until the peer closes the socket (or resets it); the bytes read before.
async fn read_until_closed(socket: &mut TcpStream, within: Duration) -> Option<Vec<u8>> {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, socket.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(seen),
            Ok(Ok(n)) => seen.extend_from_slice(&buf[..n]),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_sent_requests_are_cut_at_the_header_timeout() {
    let (server, _) =
        start(ServerConfig::new().header_read_timeout(Duration::from_millis(400))).await;
    let mut sockets = Vec::new();
    for _ in 0..100 {
        let mut socket = TcpStream::connect(server.addr()).await.unwrap();
        socket
            .write_all(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        sockets.push(socket);
    }
    assert!(connections_reach(&server, 100, Duration::from_secs(2)).await);
    let started = Instant::now();
    for socket in &mut sockets {
        let closed = read_until_closed(socket, Duration::from_secs(3)).await;
        assert!(closed.is_some(), "a half-sent request is cut");
    }
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(connections_reach(&server, 0, Duration::from_secs(1)).await);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_close_and_busy_ones_do_not() {
    let idle = Duration::from_millis(400);
    let (server, client) = start(ServerConfig::new().idle_timeout(idle)).await;

    // HTTP/1.1: one request on a kept-alive connection, then nothing.
    let mut socket = TcpStream::connect(server.addr()).await.unwrap();
    socket
        .write_all(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let seen = read_until_closed(&mut socket, Duration::from_secs(3))
        .await
        .expect("the idle connection is closed");
    assert!(String::from_utf8_lossy(&seen).starts_with("HTTP/1.1 200"));
    let after = started.elapsed();
    assert!(after >= idle && after < idle * 4, "closed after {after:?}");

    // HTTP/2 (prior knowledge): idle too, closed with a GOAWAY.
    let tcp = TcpStream::connect(server.addr()).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(tcp),
    )
    .await
    .unwrap();
    let driven = tokio::spawn(connection);
    let request = http::Request::get(format!("{}/v1/health", server.url()))
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .unwrap();
    // From before the request: the server's idle clock starts after its answer.
    let started = Instant::now();
    assert_eq!(sender.send_request(request).await.unwrap().status(), 200);
    tokio::time::timeout(Duration::from_secs(3), driven)
        .await
        .expect("the idle HTTP/2 connection is closed")
        .unwrap()
        .ok();
    assert!(started.elapsed() >= idle);

    // A long-poll longer than the idle timeout is a request in progress, not idleness.
    let job = client
        .submit("sleep", json!({"duration_seconds": 1.2}), None)
        .await
        .job();
    let polled = client
        .get_with(&format!("/v1/jobs/{}", job.id), &[("Prefer", "wait=5")])
        .await;
    assert_eq!(polled.status, 200);
    assert!(polled.job().status.is_terminal(), "{:?}", polled.job());
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_stops_reading_is_cut_off() {
    let (server, client) = start(
        ServerConfig::new()
            .write_timeout(Duration::from_millis(500))
            .heartbeat(Duration::from_secs(30))
            // Room for every event below, so the stream is not cut off by its bound (it
            // would then end, and its connection wait idle for a next request): only
            // the write timeout can close it.
            .subscriber_buffer_bytes(64 << 20),
    )
    .await;
    // A stream of all the tenant's events, from a socket with a small window that is
    // never read.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stalled = socket.connect(server.addr()).await.unwrap();
    let request = format!(
        "GET /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\r\n",
        server.token()
    );
    stalled.write_all(request.as_bytes()).await.unwrap();
    assert!(connections_reach(&server, 1, Duration::from_secs(2)).await);
    // Enough events to fill both sides' buffers many times over.
    let blob = "x".repeat(8 * 1024);
    // 16 submitters of 25 each: a connection a request, so no more at once than the
    // test's runtime serves without resets.
    let mut submitters = Vec::new();
    for first in (0..400).step_by(25) {
        let client = client.clone();
        let blob = blob.clone();
        submitters.push(tokio::spawn(async move {
            let mut statuses = Vec::new();
            for i in first..first + 25 {
                let answer = client
                    .submit("echo", json!({"i": i, "blob": blob}), None)
                    .await;
                statuses.push(answer.status);
            }
            statuses
        }));
    }
    for submitter in submitters {
        assert!(submitter.await.unwrap().iter().all(|s| *s == 202));
    }
    // The stalled stream's connection is closed by the server; the submits' are closed
    // by the client after each request.
    assert!(
        connections_reach(&server, 0, Duration::from_secs(5)).await,
        "{} connections still open",
        server.connections()
    );
    // The server is fine: a fresh stream still works.
    assert_eq!(client.get("/v1/health").await.status, 200);
    drop(stalled);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dribbled_body_is_answered_408() {
    let (server, _) =
        start(ServerConfig::new().body_read_timeout(Duration::from_millis(300))).await;
    let mut socket = TcpStream::connect(server.addr()).await.unwrap();
    let head = format!(
        "POST /v1/services/echo/jobs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"input\":",
        server.token()
    );
    socket.write_all(head.as_bytes()).await.unwrap();
    let answer = read_until_closed(&mut socket, Duration::from_secs(3))
        .await
        .expect("answered and closed");
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("\"code\":\"request_timeout\""), "{text}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_cap_the_longest_idle_goes_and_a_busy_server_refuses() {
    let (server, client) = start(ServerConfig::new().max_connections(3)).await;
    let mut idle = Vec::new();
    for _ in 0..3 {
        let mut socket = TcpStream::connect(server.addr()).await.unwrap();
        socket
            .write_all(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 1024];
        let n = socket.read(&mut buf).await.unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
        idle.push(socket);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(connections_reach(&server, 3, Duration::from_secs(1)).await);
    // A fourth: the first (idle longest) is closed to make room, the fourth served.
    assert_eq!(client.get("/v1/health").await.status, 200);
    let first = read_until_closed(&mut idle[0], Duration::from_secs(2)).await;
    assert_eq!(
        first.as_deref(),
        Some(&[][..]),
        "the longest-idle one is closed"
    );
    drop(idle);
    assert!(connections_reach(&server, 0, Duration::from_secs(2)).await);

    // Three busy long-polls: a newcomer is refused with a problem.
    let job = client
        .submit("sleep", json!({"duration_seconds": 3}), None)
        .await
        .job();
    let mut polls = Vec::new();
    for _ in 0..3 {
        let client = client.clone();
        let path = format!("/v1/jobs/{}", job.id);
        polls.push(tokio::spawn(async move {
            client
                .get_with(&path, &[("Prefer", "wait=10")])
                .await
                .status
        }));
    }
    assert!(connections_reach(&server, 3, Duration::from_secs(2)).await);
    let mut refused = TcpStream::connect(server.addr()).await.unwrap();
    let answer = read_until_closed(&mut refused, Duration::from_secs(2))
        .await
        .expect("refused at once");
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 503"), "{text}");
    assert!(text.contains("\"code\":\"unavailable\""), "{text}");
    for poll in polls {
        assert_eq!(poll.await.unwrap(), 200, "the busy ones were left alone");
    }
    server.shutdown().await;
}
