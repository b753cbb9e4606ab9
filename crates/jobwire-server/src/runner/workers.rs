//! The worker pool: where blocking handlers (the `digest` built-in, the embedding
//! program's `fn` handlers) run, on threads of their own.
//!
//! Not on tokio's blocking pool, which the SQLite store's reads use: ten thousand
//! CPU-bound jobs of one tenant there would queue every other tenant's reads behind them.
//! Here they wait in the pool's own queue, and:
//!
//! - **bounded**: a fixed number of threads (by default one per core), so a flood of
//!   jobs is a queue, not a thousand threads;
//! - **fair between tenants**: each tenant has its own queue and the threads take from
//!   them in turn, so one tenant's ten thousand jobs delay another's next job by at most
//!   one job per thread;
//! - **behind the event loop**: on Linux the threads run under `SCHED_IDLE`, so a
//!   request, a store read or an async job that wakes on a core a worker holds takes it
//!   at once. A lower nice value is not enough: the kernel's scheduler (EEVDF) lets the
//!   running thread finish its slice (about 3 ms) before a woken one runs, which put
//!   milliseconds on every read during a `digest` flood. Idle threads still get the CPU
//!   nothing else wants, so a busy server's handlers slow down rather than stop;
//! - **skipping the abandoned**: work whose job was cancelled (its task aborted) before a
//!   thread took it is dropped, not run.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Condvar, Mutex};

use tokio::sync::oneshot;

use crate::locking::lock;

/// A unit of work: runs on a pool thread.
type Work = Box<dyn FnOnce() + Send>;

/// The pool; see the module docs. Dropping it stops the threads once their current work
/// is done (queued work is dropped).
pub(crate) struct Workers {
    shared: Arc<Shared>,
}

struct Shared {
    queues: Mutex<Queues>,
    ready: Condvar,
}

#[derive(Default)]
struct Queues {
    /// Each tenant's waiting work, oldest first.
    by_tenant: HashMap<String, VecDeque<Work>>,
    /// The tenants with waiting work, in the order they are served next.
    turn: VecDeque<String>,
    closed: bool,
}

impl Queues {
    /// The next work in tenant order: the first tenant's oldest, that tenant then goes
    /// to the back of the line.
    fn next(&mut self) -> Option<Work> {
        let tenant = self.turn.pop_front()?;
        let queue = self.by_tenant.get_mut(&tenant)?;
        let work = queue.pop_front();
        if queue.is_empty() {
            self.by_tenant.remove(&tenant);
        } else {
            self.turn.push_back(tenant);
        }
        work
    }

    fn push(&mut self, tenant: &str, work: Work) {
        match self.by_tenant.get_mut(tenant) {
            Some(queue) => queue.push_back(work),
            None => {
                self.by_tenant
                    .insert(tenant.to_owned(), VecDeque::from([work]));
                self.turn.push_back(tenant.to_owned());
            }
        }
    }
}

/// How a piece of work ended, when it did not return.
pub(crate) enum Unfinished {
    /// It panicked, with this payload.
    Panicked(Box<dyn std::any::Any + Send>),
    /// The pool was gone before it ran.
    Dropped,
}

impl Workers {
    /// A pool of `threads` threads (at least one). Threads that cannot be started are
    /// logged and the pool runs with those that could (none: every run is `Dropped`).
    pub(crate) fn new(threads: usize) -> Self {
        let shared = Arc::new(Shared {
            queues: Mutex::new(Queues::default()),
            ready: Condvar::new(),
        });
        for i in 0..threads.max(1) {
            let shared = shared.clone();
            let started = std::thread::Builder::new()
                .name(format!("jobwire-worker-{i}"))
                .spawn(move || {
                    lower_priority();
                    work_loop(&shared);
                });
            if let Err(e) = started {
                tracing::error!(error = %e, "cannot start a worker thread");
            }
        }
        Workers { shared }
    }

    /// Queues `f` for `tenant` at once; the future resolves to what it returned. If the
    /// future is dropped before a thread takes the work, the work is skipped.
    pub(crate) fn run<T, F>(
        &self,
        tenant: &str,
        f: F,
    ) -> impl std::future::Future<Output = Result<T, Unfinished>> + Send + 'static
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let work: Work = Box::new(move || {
            if tx.is_closed() {
                return;
            }
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
                .map_err(Unfinished::Panicked);
            let _ = tx.send(outcome);
        });
        {
            let mut queues = lock(&self.shared.queues);
            queues.push(tenant, work);
        }
        self.shared.ready.notify_one();
        async move { rx.await.unwrap_or(Err(Unfinished::Dropped)) }
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        lock(&self.shared.queues).closed = true;
        self.shared.ready.notify_all();
    }
}

fn work_loop(shared: &Shared) {
    loop {
        let work = {
            let mut queues = lock(&shared.queues);
            loop {
                if queues.closed {
                    return;
                }
                if let Some(work) = queues.next() {
                    break work;
                }
                queues = shared
                    .ready
                    .wait(queues)
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
            }
        };
        work();
    }
}

/// Lets the event loop's threads take the CPU first: `SCHED_IDLE` for this thread
/// (Linux sets the policy per thread), or nice 19 where that is refused.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        let param = libc::sched_param { sched_priority: 0 };
        // SAFETY: both calls act on this thread alone (id 0 / its own tid) and only read
        // `param`, which lives across the call.
        let failed = unsafe {
            libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) != 0
                && libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, 19) != 0
        };
        if failed {
            tracing::debug!("cannot lower a worker thread's priority");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn tenants_take_turns() {
        let mut queues = Queues::default();
        let order = Arc::new(Mutex::new(Vec::new()));
        for (tenant, n) in [("a", 3), ("b", 2), ("c", 1)] {
            for i in 0..n {
                let order = order.clone();
                queues.push(
                    tenant,
                    Box::new(move || order.lock().unwrap().push(format!("{tenant}{i}"))),
                );
            }
        }
        while let Some(work) = queues.next() {
            work();
        }
        assert_eq!(*order.lock().unwrap(), ["a0", "b0", "c0", "a1", "b1", "a2"]);
        assert!(queues.by_tenant.is_empty() && queues.turn.is_empty());
    }

    #[tokio::test]
    async fn work_runs_panics_are_caught_and_the_pool_is_bounded() {
        let workers = Arc::new(Workers::new(2));
        assert_eq!(workers.run("t", || 40 + 2).await.ok(), Some(42));
        let panicked = workers.run("t", || -> u32 { panic!("boom") }).await;
        assert!(matches!(panicked, Err(Unfinished::Panicked(_))));
        // Two threads: four 200 ms jobs take two rounds.
        let started = std::time::Instant::now();
        let runs: Vec<_> = (0..4)
            .map(|_| {
                let workers = workers.clone();
                tokio::spawn(async move {
                    workers
                        .run("t", || std::thread::sleep(Duration::from_millis(200)))
                        .await
                        .is_ok()
                })
            })
            .collect();
        for run in runs {
            assert!(run.await.unwrap());
        }
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(400), "{took:?}");
    }

    #[tokio::test]
    async fn abandoned_work_is_skipped() {
        let workers = Workers::new(1);
        let ran = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        // Hold the only thread, queue one more, abandon it.
        let busy = workers.run("t", || std::thread::sleep(Duration::from_millis(200)));
        let counted = ran.clone();
        let abandoned = workers.run("t", move || {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        });
        let abandoned = tokio::time::timeout(Duration::from_millis(20), abandoned).await;
        assert!(abandoned.is_err(), "still queued");
        busy.await.ok();
        // Anything queued after it runs, the abandoned one does not.
        let counted = ran.clone();
        workers
            .run("t", move || {
                counted.fetch_add(10, std::sync::atomic::Ordering::SeqCst);
            })
            .await
            .ok();
        assert_eq!(ran.load(std::sync::atomic::Ordering::SeqCst), 10);
    }
}
