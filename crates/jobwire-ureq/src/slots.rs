//! Turns at each host: at most `max` requests in flight to one host, the threads past it
//! waiting in the order they came. Each waiting thread parks; a finished request hands
//! its turn straight to the first in line and unparks it, so a release wakes one thread,
//! not all of them (thousands may wait).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::Thread;
use std::time::Instant;

/// The turns of every host a transport talks to.
#[derive(Debug)]
pub(crate) struct HostSlots {
    max: usize,
    /// One queue per host (`host:port`, as the URI has it).
    hosts: Mutex<HashMap<String, Arc<Slots>>>,
}

/// The turns at one host.
#[derive(Debug)]
struct Slots {
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    /// Turns nobody holds.
    free: usize,
    /// Threads waiting, first in line first.
    line: VecDeque<Arc<Waiter>>,
}

/// A thread waiting for its turn.
#[derive(Debug)]
struct Waiter {
    /// Set, under the state's lock, when a finished request handed its turn over.
    given: AtomicBool,
    thread: Thread,
}

/// A request's turn at its host: the next in line gets it when this is dropped.
#[derive(Debug)]
pub(crate) struct Slot(Arc<Slots>);

impl Drop for Slot {
    fn drop(&mut self) {
        let mut state = self.0.lock();
        match state.line.pop_front() {
            Some(next) => {
                next.given.store(true, Ordering::Release);
                next.thread.unpark();
            }
            None => state.free += 1,
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // The state is consistent between statements; a panic elsewhere changes nothing.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Slots {
    fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }
}

impl HostSlots {
    /// At most `max` requests in flight per host.
    pub(crate) fn new(max: usize) -> Self {
        HostSlots {
            max,
            hosts: Mutex::new(HashMap::new()),
        }
    }

    /// A turn at `host`, once it comes; `Err` when `deadline` comes first.
    pub(crate) fn acquire(&self, host: &str, deadline: Option<Instant>) -> Result<Slot, ()> {
        let slots = {
            let mut hosts = lock(&self.hosts);
            match hosts.get(host) {
                Some(slots) => slots.clone(),
                None => {
                    let slots = Arc::new(Slots {
                        state: Mutex::new(State {
                            free: self.max,
                            line: VecDeque::new(),
                        }),
                    });
                    hosts.insert(host.to_owned(), slots.clone());
                    slots
                }
            }
        };
        let waiter = {
            let mut state = slots.lock();
            if state.free > 0 && state.line.is_empty() {
                state.free -= 1;
                drop(state);
                return Ok(Slot(slots));
            }
            let waiter = Arc::new(Waiter {
                given: AtomicBool::new(false),
                thread: std::thread::current(),
            });
            state.line.push_back(waiter.clone());
            waiter
        };
        loop {
            if waiter.given.load(Ordering::Acquire) {
                return Ok(Slot(slots));
            }
            match deadline {
                None => std::thread::park(),
                Some(deadline) => {
                    let now = Instant::now();
                    if now < deadline {
                        std::thread::park_timeout(deadline - now);
                        continue;
                    }
                    let mut state = slots.lock();
                    // Handed over just now: it is ours after all.
                    if waiter.given.load(Ordering::Acquire) {
                        drop(state);
                        return Ok(Slot(slots));
                    }
                    state.line.retain(|w| !Arc::ptr_eq(w, &waiter));
                    return Err(());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;

    /// Queues `n` threads behind the `max` turns held by the test, each in line before
    /// the next comes, then lets them through; returns the order they got their turns
    /// in (as they finished: each holds its turn a moment) and the most at once.
    fn queue_up(max: usize, n: usize) -> (Vec<usize>, usize) {
        let slots = Arc::new(HostSlots::new(max));
        let held: Vec<Slot> = (0..max)
            .map(|_| slots.acquire("h:1", None).unwrap())
            .collect();
        let order = Arc::new(Mutex::new(Vec::new()));
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let waiters: Vec<_> = (0..n)
            .map(|i| {
                let (mine, order) = (slots.clone(), order.clone());
                let (running, most) = (running.clone(), most.clone());
                let waiter = std::thread::spawn(move || {
                    let slot = mine.acquire("h:1", None).unwrap();
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    lock(&order).push(i);
                    std::thread::sleep(Duration::from_millis(2));
                    running.fetch_sub(1, Ordering::SeqCst);
                    drop(slot);
                });
                while lock(&slots.hosts)["h:1"].lock().line.len() <= i {
                    std::thread::yield_now();
                }
                waiter
            })
            .collect();
        // Another host has turns of its own.
        drop(slots.acquire("h:2", Some(Instant::now())).unwrap());
        drop(held);
        for waiter in waiters {
            waiter.join().unwrap();
        }
        assert_eq!(
            lock(&slots.hosts)["h:1"].lock().free,
            max,
            "every turn back"
        );
        let order = lock(&order).clone();
        (order, most.load(Ordering::SeqCst))
    }

    /// Never more than `max` at once, every waiter served, in the order they came.
    #[test]
    fn turns_are_bounded_and_first_come_first_served() {
        let (order, most) = queue_up(1, 20);
        assert_eq!(
            order,
            (0..20).collect::<Vec<_>>(),
            "one at a time, in order"
        );
        assert_eq!(most, 1);
        let (order, most) = queue_up(3, 30);
        assert_eq!(order.len(), 30);
        assert!(most <= 3, "{most} at once");
    }

    /// A wait that reaches its deadline leaves the line, and the turns are intact.
    #[test]
    fn a_wait_ends_at_its_deadline() {
        let slots = HostSlots::new(1);
        let held = slots.acquire("h", None).unwrap();
        let started = Instant::now();
        let deadline = started + Duration::from_millis(50);
        assert!(slots.acquire("h", Some(deadline)).is_err());
        assert!(started.elapsed() >= Duration::from_millis(50));
        assert!(lock(&slots.hosts)["h"].lock().line.is_empty());
        drop(held);
        assert!(slots.acquire("h", Some(Instant::now())).is_ok());
    }
}
