//! The one connection loop of every event stream — a job's or the client's events, and
//! the hub that wakes waits: it opens, reads and reopens the stream an
//! [`EventProtocol`] asks for, reports each answer and chunk to it, and returns what it
//! yields. Every decision is the protocol's; this moves bytes.

use std::pin::pin;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use futures_util::future::{select, Either};
use jobwire_core::stream::{EventProtocol, StreamStep, REFUSAL_LIMIT};
use jobwire_core::transport::AsyncBody;
use jobwire_core::TransportError;
use tokio::sync::Notify;

use crate::Client;

/// The stream's machine, shared with whoever else changes it (waits joining the hub).
pub(crate) fn lock<M>(machine: &Mutex<M>) -> MutexGuard<'_, M> {
    // The machine is consistent between statements; a panic elsewhere changes nothing.
    machine.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Follows the stream `machine` asks for until it yields something for its user
/// (`Some`) or stops (`None`). `body` is the open stream, kept between calls; a read
/// waiting on it also ends when `interrupt` (if any) is notified, so the machine is
/// asked again at once.
pub(crate) async fn follow<M: EventProtocol>(
    client: &Client,
    machine: &Mutex<M>,
    body: &mut Option<AsyncBody>,
    interrupt: Option<&Notify>,
) -> Option<M::Output> {
    loop {
        let step = lock(machine).step(Instant::now());
        match step {
            StreamStep::Yield(output) => return Some(output),
            StreamStep::Stop => return None,
            StreamStep::Connect { pause } => {
                *body = None;
                if !pause.is_zero() {
                    tokio::time::sleep(pause).await;
                }
                *body = connect(client, machine).await;
            }
            StreamStep::Read { deadline } => {
                let read = match body.as_mut() {
                    Some(stream) => read(stream, deadline, interrupt).await,
                    None => Read::End,
                };
                let now = Instant::now();
                let open = {
                    let mut machine = lock(machine);
                    let Some(follower) = machine.follower() else {
                        continue;
                    };
                    match read {
                        Read::Chunk(chunk) => {
                            follower.on_chunk(now, &chunk);
                            true
                        }
                        Read::Interrupted => true,
                        Read::Broken(e) => {
                            follower.on_broken(now, e);
                            false
                        }
                        Read::End => {
                            follower.on_end(now);
                            false
                        }
                        Read::Silent => {
                            follower.on_silence(now);
                            false
                        }
                    }
                };
                if !open {
                    *body = None;
                }
            }
        }
    }
}

/// What one read of the stream came to.
enum Read {
    Chunk(bytes::Bytes),
    Broken(TransportError),
    End,
    Silent,
    Interrupted,
}

async fn read(stream: &mut AsyncBody, deadline: Instant, interrupt: Option<&Notify>) -> Read {
    let chunk = tokio::time::timeout_at(deadline.into(), stream.next_chunk());
    let interrupted = async {
        match interrupt {
            Some(notify) => notify.notified().await,
            None => std::future::pending().await,
        }
    };
    match select(pin!(chunk), pin!(interrupted)).await {
        Either::Left((Ok(Some(Ok(chunk))), _)) => Read::Chunk(chunk),
        Either::Left((Ok(Some(Err(e))), _)) => Read::Broken(e),
        Either::Left((Ok(None), _)) => Read::End,
        Either::Left((Err(_), _)) => Read::Silent,
        Either::Right(_) => Read::Interrupted,
    }
}

/// Opens the stream the machine asks for and reports the answer; the body when it is
/// the stream.
async fn connect<M: EventProtocol>(client: &Client, machine: &Mutex<M>) -> Option<AsyncBody> {
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
    let answer = client.transport().send(request).await;
    let now = Instant::now();
    match answer {
        Ok(answer) => {
            let (head, stream) = answer.into_parts();
            if lock(machine).follower()?.on_head(now, &head) {
                return Some(stream);
            }
            let text = stream
                .read_to_bytes(REFUSAL_LIMIT)
                .await
                .unwrap_or_default();
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
