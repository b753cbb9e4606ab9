//! A server that refuses, stalls, dies mid-answer or answers too much: each facade
//! returns a typed error within its timeout and never panics. The misbehaving peers
//! are raw sockets on 127.0.0.1, since the reference server does none of this.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::thread;
use std::time::{Duration, Instant};

use jobwire_core::{Error, TransportErrorKind};

/// A peer on 127.0.0.1 that answers each connection with `behave`.
fn peer(behave: fn(std::net::TcpStream)) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        for stream in listener.incoming().flatten().take(8) {
            thread::spawn(move || behave(stream));
        }
    });
    addr
}

fn read_head(stream: &mut std::net::TcpStream) {
    let mut buf = [0u8; 4096];
    let _ = stream.read(&mut buf);
}

fn stall(mut s: std::net::TcpStream) {
    read_head(&mut s);
    thread::sleep(Duration::from_secs(5));
}

fn die_mid_body(mut s: std::net::TcpStream) {
    read_head(&mut s);
    let _ = s.write_all(
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 500\r\n\r\n{\"status\":",
    );
    // Dropping the socket here cuts the body short.
}

fn huge(mut s: std::net::TcpStream) {
    read_head(&mut s);
    let _ = s.write_all(
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 100000\r\n\r\n",
    );
    let _ = s.write_all(&vec![b' '; 100_000]);
}

fn garbage(mut s: std::net::TcpStream) {
    read_head(&mut s);
    let _ = s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\nnot json!");
}

fn refused_addr() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
    // Dropped: nothing listens there any more.
}

fn blocking_client(addr: SocketAddr) -> jobwire_blocking::Client {
    jobwire_blocking::Client::builder()
        .base_url(format!("http://{addr}"))
        .timeout(Duration::from_millis(400))
        .max_body_bytes(10_000)
        .build()
        .unwrap()
}

fn async_client(addr: SocketAddr) -> jobwire::Client {
    jobwire::Client::builder()
        .base_url(format!("http://{addr}"))
        .timeout(Duration::from_millis(400))
        .max_body_bytes(10_000)
        .build()
        .unwrap()
}

fn assert_kind(err: &Error, kind: TransportErrorKind) {
    match err {
        Error::Transport(e) => assert_eq!(e.kind(), kind, "{err:?}"),
        other => panic!("expected a {kind} transport error, got {other:?}"),
    }
}

#[test]
fn blocking_facade_survives_bad_servers() {
    let err = blocking_client(refused_addr()).health().unwrap_err();
    assert_kind(&err, TransportErrorKind::Connect);

    let started = Instant::now();
    let err = blocking_client(peer(stall)).health().unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );

    let err = blocking_client(peer(die_mid_body)).health().unwrap_err();
    assert!(matches!(err, Error::Transport(_)), "{err:?}");

    let err = blocking_client(peer(huge)).health().unwrap_err();
    assert!(
        matches!(
            err,
            Error::TooLarge {
                what: "an answer body",
                limit: 10_000
            }
        ),
        "{err:?}"
    );

    match blocking_client(peer(garbage)).health().unwrap_err() {
        Error::Decode { body, .. } => assert_eq!(&body[..], b"not json!"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn async_facade_survives_bad_servers() {
    let err = async_client(refused_addr()).health().await.unwrap_err();
    assert_kind(&err, TransportErrorKind::Connect);

    let started = Instant::now();
    let err = async_client(peer(stall)).health().await.unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );

    let err = async_client(peer(die_mid_body)).health().await.unwrap_err();
    assert!(matches!(err, Error::Transport(_)), "{err:?}");

    let err = async_client(peer(huge)).health().await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::TooLarge {
                what: "an answer body",
                limit: 10_000
            }
        ),
        "{err:?}"
    );

    match async_client(peer(garbage)).health().await.unwrap_err() {
        Error::Decode { body, .. } => assert_eq!(&body[..], b"not json!"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn hyper_transport_speaks_http2_to_the_server() {
    use jobwire::transport::{AsyncTransport, HyperTransport};
    let server = jobwire_server::spawn(jobwire_server::ServerConfig::new())
        .await
        .unwrap();
    let h2 = HyperTransport::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let request = http::Request::get(format!("{}/v1/health", server.url()))
        .body(bytes::Bytes::new())
        .unwrap();
    let answer = h2.send(request).await.unwrap();
    assert_eq!(answer.version(), http::Version::HTTP_2);
    assert_eq!(answer.status(), 200);

    // The whole SDK works over it too.
    let client = jobwire::Client::builder()
        .base_url(server.url())
        .token(server.token())
        .transport(h2)
        .build()
        .unwrap();
    let out: serde_json::Value = client.run("echo", &serde_json::json!([1])).await.unwrap();
    assert_eq!(out, serde_json::json!([1]));
    server.shutdown().await;
}

#[test]
fn invalid_settings_are_refused_before_anything_is_sent() {
    for url in ["", "localhost:7878", "ftp://x", "http://h/?q"] {
        let err = jobwire_blocking::Client::builder()
            .base_url(url)
            .build()
            .unwrap_err();
        assert!(matches!(err, Error::Invalid { .. }), "{url}: {err:?}");
        let err = jobwire::Client::builder()
            .base_url(url)
            .build()
            .unwrap_err();
        assert!(matches!(err, Error::Invalid { .. }), "{url}: {err:?}");
    }
}
