//! The one connection loop of every event stream — a job's or the client's events, and
//! the reader thread that wakes waits: it opens, reads and reopens the stream an
//! [`EventProtocol`] asks for, reports each answer and chunk to it, and returns what it
//! yields. Every decision is the protocol's; this moves bytes, blocking the calling
//! thread.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use jobwire_core::stream::{EventProtocol, StreamStep, REFUSAL_LIMIT};
use jobwire_core::transport::Body;

use crate::Client;

/// The read buffer of a stream.
const CHUNK: usize = 16 * 1024;

/// The stream's machine, shared with whoever else changes it (waits joining the hub).
pub(crate) fn lock<M>(machine: &Mutex<M>) -> MutexGuard<'_, M> {
    // The machine is consistent between statements; a panic elsewhere changes nothing.
    machine.lock().unwrap_or_else(PoisonError::into_inner)
}

/// An open stream and its read buffer, kept between calls of [`follow`].
#[derive(Default)]
pub(crate) struct Connection {
    body: Option<Body>,
    buf: Vec<u8>,
}

impl Connection {
    /// Lets the open stream go.
    pub(crate) fn close(&mut self) {
        self.body = None;
    }
}

/// Follows the stream `machine` asks for until it yields something for its user
/// (`Some`) or stops (`None`). A blocking read cannot be cut short: the transport's
/// read timeout (the request's `ReadTimeout`: the watchdog's, or a tick of a follower
/// that reads in ticks) ends a read that waits too long, and its `RequestTimeout` (what
/// is left of the call's deadline) the whole answer.
pub(crate) fn follow<M: EventProtocol>(
    client: &Client,
    machine: &Mutex<M>,
    connection: &mut Connection,
) -> Option<M::Output> {
    loop {
        let step = lock(machine).step(Instant::now());
        match step {
            StreamStep::Yield(output) => return Some(output),
            StreamStep::Stop => return None,
            StreamStep::Connect { pause } => {
                // Let the old connection go before waiting to reconnect.
                connection.body = None;
                std::thread::sleep(pause);
                connection.body = connect(client, machine);
            }
            StreamStep::Read { .. } => {
                if connection.buf.is_empty() {
                    connection.buf = vec![0u8; CHUNK];
                }
                let read = connection
                    .body
                    .as_mut()
                    .map(|body| body.read_chunk(&mut connection.buf));
                let now = Instant::now();
                let mut machine = lock(machine);
                let Some(follower) = machine.follower() else {
                    continue;
                };
                // The connection is let go at the next `Connect`, if the follower asks
                // for one: a read that timed out within a tick goes on reading.
                match read {
                    Some(Ok(0)) | None => follower.on_end(now),
                    Some(Ok(n)) => follower.on_chunk(now, &connection.buf[..n]),
                    Some(Err(e)) if e.is_timeout() => follower.on_read_timeout(now),
                    Some(Err(e)) => follower.on_broken(now, e),
                }
            }
        }
    }
}

/// Opens the stream the machine asks for and reports the answer; the body when it is
/// the stream.
fn connect<M: EventProtocol>(client: &Client, machine: &Mutex<M>) -> Option<Body> {
    let request = {
        let mut machine = lock(machine);
        let follower = machine.follower()?;
        match follower.request(client.config(), Instant::now()) {
            Ok(request) => request,
            Err(e) => {
                follower.on_unsendable(e);
                return None;
            }
        }
    };
    let answer = client.transport().send(request);
    let now = Instant::now();
    match answer {
        Ok(answer) => {
            let (head, stream) = answer.into_parts();
            if lock(machine).follower()?.on_head(now, &head) {
                return Some(stream);
            }
            let text = stream.read_to_bytes(REFUSAL_LIMIT).unwrap_or_default();
            if let Some(follower) = lock(machine).follower() {
                follower.on_refused(now, http::Response::from_parts(head, text));
            }
            None
        }
        Err(e) => {
            if let Some(follower) = lock(machine).follower() {
                follower.on_broken(now, e);
            }
            None
        }
    }
}
