//! Ctrl-C during `run` and `batch`: what becomes of the jobs already submitted. They run
//! on the server whatever this process does, so the user decides: `--cancel-on-interrupt`
//! cancels them, a terminal is asked, and anything else leaves them running and names them.

use std::future::Future;
use std::io::IsTerminal;
use std::pin::Pin;

use tokio::sync::oneshot;

use crate::commands::cancel::cancel_one;
use crate::exit::{describe, Failure};

type Signal = Pin<Box<dyn Future<Output = std::io::Result<()>> + Send>>;

/// Ctrl-C, caught instead of ending the process.
pub struct Interrupt {
    signal: Option<Signal>,
}

impl Interrupt {
    /// Catches Ctrl-C from now on.
    pub async fn catch() -> Interrupt {
        let mut signal: Signal = Box::pin(tokio::signal::ctrl_c());
        // `ctrl_c` installs its handler when first polled: poll it now, so a Ctrl-C that
        // comes right after a submit is caught rather than killing the process.
        match futures_util::future::poll_immediate(&mut signal).await {
            None => Interrupt {
                signal: Some(signal),
            },
            // It cannot be caught (or already came): `recv` starts afresh.
            Some(_) => Interrupt { signal: None },
        }
    }

    /// Resolves at the next Ctrl-C; never, if Ctrl-C cannot be caught. Cancel-safe: a
    /// Ctrl-C that comes while another `select!` branch wins is not lost.
    pub async fn recv(&mut self) {
        let signal = self
            .signal
            .get_or_insert_with(|| Box::pin(tokio::signal::ctrl_c()));
        let caught = signal.as_mut().await;
        self.signal = None;
        if caught.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// Deals with the unfinished jobs `job_ids` after a Ctrl-C, as `--cancel-on-interrupt`,
/// the user's answer or the lack of a terminal says, and returns the failure to exit with.
pub async fn settle(
    client: &jobwire::Client,
    job_ids: &[String],
    cancel_without_asking: bool,
    interrupt: &mut Interrupt,
) -> Failure {
    let n = job_ids.len();
    let jobs = if n == 1 { "job" } else { "jobs" };
    if n == 0 {
        eprintln!("jobwire: interrupted");
        return Failure::Interrupted;
    }
    let cancel = if cancel_without_asking {
        true
    } else if std::io::stdin().is_terminal() {
        ask(&format!("cancel {n} submitted {jobs}? [y/N] "), interrupt).await
    } else {
        false
    };
    if cancel {
        let cancels = job_ids.iter().map(|id| cancel_one(client, id));
        let results = futures_util::future::join_all(cancels).await;
        for (id, result) in job_ids.iter().zip(results) {
            match result {
                Ok(job) => eprintln!("{id}: {}", job.status),
                Err(e) => eprintln!("jobwire: cannot cancel {id}: {}", describe(&e)),
            }
        }
        eprintln!("jobwire: interrupted; cancelled {n} {jobs}");
    } else {
        eprintln!("jobwire: interrupted; left {n} {jobs} running:");
        for id in job_ids {
            eprintln!("{id}");
        }
    }
    Failure::Interrupted
}

/// Asks on stderr and reads the answer from stdin; a second Ctrl-C, an end of input or
/// anything but `y`/`yes` is no.
async fn ask(question: &str, interrupt: &mut Interrupt) -> bool {
    eprint!("{question}");
    let (tx, rx) = oneshot::channel();
    // A thread of its own, not `spawn_blocking`: a read that never returns must not hold
    // the runtime's shutdown up.
    let reader = std::thread::Builder::new()
        .name("jobwire-answer".into())
        .spawn(move || {
            let mut line = String::new();
            let answer = std::io::stdin().read_line(&mut line).map(|_| line);
            let _ = tx.send(answer);
        });
    if reader.is_err() {
        eprintln!();
        return false;
    }
    tokio::select! {
        answer = rx => matches!(answer, Ok(Ok(line)) if is_yes(&line)),
        () = interrupt.recv() => {
            eprintln!();
            false
        }
    }
}

/// Whether an answer says yes.
fn is_yes(answer: &str) -> bool {
    matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_yes_is_yes() {
        for yes in ["y\n", "Y", " yes\r\n", "YES"] {
            assert!(is_yes(yes), "{yes:?}");
        }
        for no in ["", "\n", "n", "no", "yep", "y y"] {
            assert!(!is_yes(no), "{no:?}");
        }
    }
}
