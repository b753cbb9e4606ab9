//! An event-stream reader for tests: hyper's HTTP/1.1 client and the SDK core's SSE
//! decoder, read incrementally, as a client would.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use jobwire_core::sse::{SseDecoder, SseEvent};
use serde_json::Value;
use tokio::net::{TcpSocket, TcpStream};

/// One open event stream.
pub struct Stream {
    pub status: u16,
    pub content_type: String,
    body: Incoming,
    decoder: SseDecoder,
    ready: VecDeque<SseEvent>,
    /// Arrival times of keep-alive comments.
    pub keep_alives: Vec<Instant>,
}

/// Opens `path` on `addr` as `token`, optionally resuming after `last_event_id`; with a
/// small `recv_buffer`, the client's socket holds little, as a subscriber that never
/// reads would.
pub async fn open_on(
    addr: SocketAddr,
    token: &str,
    path: &str,
    last_event_id: Option<&str>,
    recv_buffer: Option<u32>,
) -> Stream {
    let tcp = match recv_buffer {
        Some(size) => {
            let socket = TcpSocket::new_v4().unwrap();
            socket.set_recv_buffer_size(size).unwrap();
            socket.connect(addr).await.unwrap()
        }
        None => TcpStream::connect(addr).await.unwrap(),
    };
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp))
            .await
            .unwrap();
    tokio::spawn(conn);
    let mut request = http::Request::get(path)
        .header("host", addr.to_string())
        .header("authorization", format!("Bearer {token}"))
        .header("accept", "text/event-stream");
    if let Some(id) = last_event_id {
        request = request.header("last-event-id", id);
    }
    let response = sender
        .send_request(request.body(Empty::<Bytes>::new()).unwrap())
        .await
        .unwrap();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    Stream {
        status: response.status().as_u16(),
        content_type,
        body: response.into_body(),
        decoder: SseDecoder::new(),
        ready: VecDeque::new(),
        keep_alives: Vec::new(),
    }
}

impl Stream {
    /// The next event; `None` when the stream ended. Panics after 10 s of nothing.
    pub async fn next(&mut self) -> Option<SseEvent> {
        loop {
            if let Some(event) = self.ready.pop_front() {
                return Some(event);
            }
            let frame = tokio::time::timeout(Duration::from_secs(10), self.body.frame())
                .await
                .expect("an event within 10 s");
            let Some(frame) = frame else {
                self.decoder.finish();
                return None;
            };
            let Ok(data) = frame.expect("body frame").into_data() else {
                continue;
            };
            if data.windows(12).any(|w| w == b": keep-alive") {
                self.keep_alives.push(Instant::now());
            }
            let mut out = Vec::new();
            self.decoder.push(&data, &mut out).expect("decodes");
            self.ready.extend(out);
        }
    }

    /// Every event until the stream ends.
    pub async fn rest(&mut self) -> Vec<SseEvent> {
        let mut all = Vec::new();
        while let Some(event) = self.next().await {
            all.push(event);
        }
        all
    }

    /// Events until one of `kind` for `job` (inclusive).
    pub async fn until(&mut self, kind: &str, job: &str) -> Vec<SseEvent> {
        let mut all = Vec::new();
        while let Some(event) = self.next().await {
            let done = event.event == kind && data(&event)["job_id"] == job;
            all.push(event);
            if done {
                return all;
            }
        }
        panic!(
            "the stream ended before {kind} of {job}, after {:?}",
            ids(&all).iter().zip(kinds(&all)).collect::<Vec<_>>()
        );
    }
}

pub fn data(event: &SseEvent) -> Value {
    serde_json::from_str(&event.data).unwrap()
}

pub fn ids(events: &[SseEvent]) -> Vec<i64> {
    events.iter().map(|e| e.id.parse().unwrap()).collect()
}

pub fn kinds(events: &[SseEvent]) -> Vec<&str> {
    events.iter().map(|e| e.event.as_str()).collect()
}
