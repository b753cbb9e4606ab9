//! A pooled connection the server closed while it sat idle never surfaces as an error on
//! a request that may be repeated, in either facade. A proxy in front of the real server
//! serves one request per connection and closes the connection when the next request
//! arrives on it, as a server that timed out an idle connection does.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use jobwire_server::{ServerConfig, ServerHandle};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A proxy to `server` that lets one request through per connection; returns its
/// address and the count of requests it cut off.
async fn one_request_per_connection(server: SocketAddr) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let cut = Arc::new(AtomicUsize::new(0));
    let counter = cut.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let counter = counter.clone();
            tokio::spawn(async move {
                let Ok(upstream) = TcpStream::connect(server).await else {
                    return;
                };
                let (mut client_read, mut client_write) = client.into_split();
                let (mut up_read, mut up_write) = upstream.into_split();
                let answered = Arc::new(AtomicUsize::new(0));
                let seen = answered.clone();
                let back = tokio::spawn(async move {
                    let mut buf = vec![0u8; 64 * 1024];
                    while let Ok(n) = up_read.read(&mut buf).await {
                        if n == 0 || client_write.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                        seen.store(1, Ordering::SeqCst);
                    }
                });
                let mut buf = vec![0u8; 64 * 1024];
                while let Ok(n) = client_read.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    if answered.load(Ordering::SeqCst) == 1 {
                        // A second request on this connection: it went stale meanwhile.
                        counter.fetch_add(1, Ordering::SeqCst);
                        break;
                    }
                    if up_write.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
                back.abort();
            });
        }
    });
    (addr, cut)
}

async fn proxied() -> (ServerHandle, String, Arc<AtomicUsize>) {
    let server = jobwire_server::spawn(ServerConfig::new()).await.unwrap();
    let (addr, cut) = one_request_per_connection(server.addr()).await;
    (server, format!("http://{addr}"), cut)
}

#[tokio::test(flavor = "multi_thread")]
async fn stale_pooled_connections_are_retried_async() {
    let (server, url, cut) = proxied().await;
    let client = jobwire::Client::builder()
        .base_url(url)
        .token(server.token())
        .build()
        .unwrap();
    for i in 0..10 {
        let service = client.service("echo").await.unwrap();
        assert_eq!(service.name(), "echo");
        let job = client.submit("echo", &json!(i)).await.unwrap();
        client.get_job(job.id()).await.unwrap();
    }
    assert!(cut.load(Ordering::SeqCst) > 0, "stale connections were met");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn stale_pooled_connections_are_retried_blocking() {
    let (server, url, cut) = proxied().await;
    let token = server.token().to_owned();
    tokio::task::spawn_blocking(move || {
        let client = jobwire_blocking::Client::builder()
            .base_url(url)
            .token(token)
            .build()
            .unwrap();
        for i in 0..10 {
            assert_eq!(client.service("echo").unwrap().name(), "echo");
            let job = client.submit("echo", &json!(i)).unwrap();
            client.get_job(job.id()).unwrap();
        }
    })
    .await
    .unwrap();
    assert!(cut.load(Ordering::SeqCst) > 0, "stale connections were met");
    server.shutdown().await;
}
