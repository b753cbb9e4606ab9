//! A deliberately small HTTP/1.1 client over a tokio `TcpStream` (one request per
//! connection), so the server is tested over real sockets without depending on the SDK.

#![allow(dead_code)]

pub mod process;
pub mod sse;

use std::net::SocketAddr;
use std::time::Duration;

use jobwire_core::{Job, Problem};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// An answer.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    /// The first value of a header (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn job(&self) -> Job {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not a job ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    /// The problem of an error answer, after checking its media type and request id.
    pub fn problem(&self) -> Problem {
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json"),
            "{self:?}"
        );
        let p: Problem = serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "not a problem ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        });
        assert_eq!(p.status, self.status);
        assert_eq!(p.request_id.as_deref(), self.header("x-request-id"));
        assert!(p.request_id.is_some());
        p
    }
}

/// A client for one server, with or without a token.
#[derive(Clone, Debug)]
pub struct Client {
    pub addr: SocketAddr,
    pub token: Option<String>,
}

impl Client {
    pub fn new(addr: SocketAddr, token: &str) -> Self {
        Client {
            addr,
            token: Some(token.to_owned()),
        }
    }

    pub fn anonymous(addr: SocketAddr) -> Self {
        Client { addr, token: None }
    }

    pub async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Resp {
        self.try_send(method, path, headers, body)
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    /// [`send`](Self::send) to a server that may be gone: an error when it cannot be
    /// reached or closes without an answer.
    pub async fn try_send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> std::io::Result<Resp> {
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n",
            self.addr
        );
        if let Some(token) = &self.token {
            head.push_str(&format!("Authorization: Bearer {token}\r\n"));
        }
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        if let Some(body) = body {
            head.push_str("Content-Type: application/json\r\n");
            head.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        head.push_str("\r\n");
        let mut stream = TcpStream::connect(self.addr).await?;
        stream.write_all(head.as_bytes()).await?;
        if let Some(body) = body {
            // The server may answer (413) and close before reading it all.
            let _ = stream.write_all(body).await;
        }
        let mut raw = Vec::new();
        let mut buf = [0u8; 16 * 1024];
        loop {
            match tokio::time::timeout(Duration::from_secs(120), stream.read(&mut buf)).await {
                Ok(Ok(0)) => break,
                Ok(Ok(n)) => raw.extend_from_slice(&buf[..n]),
                Ok(Err(e)) if !raw.is_empty() => {
                    eprintln!("read error after {} bytes: {e}", raw.len());
                    break;
                }
                Ok(Err(e)) => return Err(e),
                Err(_) => panic!("no answer within 120 s"),
            }
        }
        if raw.is_empty() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "closed without an answer",
            ));
        }
        Ok(parse(&raw))
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.send("GET", path, &[], None).await
    }

    pub async fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> Resp {
        self.send("GET", path, headers, None).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Resp {
        self.post_with(path, body, &[]).await
    }

    pub async fn post_with(&self, path: &str, body: &Value, headers: &[(&str, &str)]) -> Resp {
        let bytes = serde_json::to_vec(body).unwrap();
        self.send("POST", path, headers, Some(&bytes)).await
    }

    /// Submits `input` to `service` and returns the answer.
    pub async fn submit(&self, service: &str, input: Value, wait: Option<u64>) -> Resp {
        let wait_header = wait.map(|w| format!("wait={w}"));
        let headers: Vec<(&str, &str)> = wait_header
            .as_deref()
            .map(|w| vec![("Prefer", w)])
            .unwrap_or_default();
        self.post_with(
            &format!("/v1/services/{service}/jobs"),
            &serde_json::json!({ "input": input }),
            &headers,
        )
        .await
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn parse(raw: &[u8]) -> Resp {
    let split = find(raw, b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(raw)));
    let head = std::str::from_utf8(&raw[..split]).expect("utf-8 head");
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let rest = &raw[split + 4..];
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    let body = if chunked {
        dechunk(rest)
    } else if let Some(len) = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok())
    {
        rest[..len.min(rest.len())].to_vec()
    } else {
        rest.to_vec()
    };
    Resp {
        status,
        headers,
        body,
    }
}

fn dechunk(mut rest: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(line_end) = find(rest, b"\r\n") {
        let size_text = std::str::from_utf8(&rest[..line_end]).unwrap();
        let size = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16).unwrap();
        rest = &rest[line_end + 2..];
        if size == 0 {
            break;
        }
        out.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
    out
}

/// A unique temporary directory, removed on drop.
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        use std::time::{SystemTime, UNIX_EPOCH};
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        TempDir(
            std::env::temp_dir().join(format!("jobwire-test-{tag}-{}-{nanos}", std::process::id())),
        )
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
