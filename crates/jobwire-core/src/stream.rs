//! The one event-stream protocol every stream user speaks: a job's or the client's event
//! stream ([`Follower`]), and the hub that wakes waits from the client's shared stream
//! ([`push::Hub`](crate::push::Hub)). Each facade drives any [`EventProtocol`] with one
//! connection loop:
//!
//! 1. ask [`EventProtocol::step`] what to do at `now`;
//! 2. [`StreamStep::Connect`]: sleep the pause, send the stream's
//!    [`Follower::request`], report the answer's head ([`Follower::on_head`]); an answer
//!    that is not the stream is read (at most [`REFUSAL_LIMIT`] bytes) and reported with
//!    [`Follower::on_refused`], a failure with [`Follower::on_broken`];
//! 3. [`StreamStep::Read`]: read the next chunk until the deadline and report it
//!    ([`Follower::on_chunk`], [`Follower::on_end`], [`Follower::on_broken`], or
//!    [`Follower::on_silence`] when nothing came in time);
//! 4. [`StreamStep::Yield`]: hand the output to the stream's user; [`StreamStep::Stop`]:
//!    close the stream, the loop is over.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use jobwire_core::follow::{FollowOutput, Follower, StreamTarget};
//! use jobwire_core::stream::{EventProtocol, StreamStep};
//!
//! let now = Instant::now();
//! let mut stream = Follower::new(StreamTarget::job("job_1"), Duration::from_secs(45), 7);
//! assert!(matches!(stream.step(now), StreamStep::Connect { .. }));
//! let head = http::Response::builder()
//!     .header("content-type", "text/event-stream")
//!     .body(())
//!     .unwrap()
//!     .into_parts()
//!     .0;
//! let follower = stream.follower().expect("a stream to follow");
//! assert!(follower.on_head(now, &head));
//! follower.on_chunk(now, b"id: 1\nevent: log\ndata: {\"job_id\":\"job_1\",\"line\":\"hi\"}\n\n");
//! assert!(matches!(stream.step(now), StreamStep::Yield(FollowOutput::Event(e)) if e.id == 1));
//! ```

use std::time::{Duration, Instant};

pub use crate::follow::Follower;

/// The largest answer a connection loop reads to learn why a stream was refused.
pub const REFUSAL_LIMIT: usize = 64 * 1024;

/// What a connection loop does next; see the module docs. Exhaustive: a new step is a
/// compile error in every driver.
#[derive(Debug, PartialEq, Eq)]
pub enum StreamStep<O> {
    /// Sleep `pause` (often zero), then open the stream.
    Connect {
        /// How long to wait before connecting.
        pause: Duration,
    },
    /// Read the next chunk; report silence if nothing came by `deadline`.
    Read {
        /// When the watchdog (or the call's deadline) gives up on the read.
        deadline: Instant,
    },
    /// Hand this to the stream's user.
    Yield(O),
    /// The stream is over: close it.
    Stop,
}

/// A user of an event stream, as a connection loop drives it: the decisions, and the
/// stream being followed now.
pub trait EventProtocol {
    /// What the stream hands its user.
    type Output;

    /// The step to take at `now`.
    fn step(&mut self, now: Instant) -> StreamStep<Self::Output>;

    /// The stream being followed, to send its request and report what it did; `None`
    /// when there is none (the loop then asks [`step`](Self::step) again).
    fn follower(&mut self) -> Option<&mut Follower>;
}
