//! The soak's load generator (`cargo xtask soak` runs it against a server binary it
//! started with some fault injection): for `--seconds S`, both facades at once, each as
//! its own tenant with its own client — `jobwire` with callers as tasks on a two-thread
//! runtime, `jobwire-blocking` with callers as threads:
//!
//! - `--callers N` mixed callers per facade (default 24), each looping over a weighted
//!   mix with a think time of 0–200 ms between two operations: `run` of a small `echo`,
//!   `submit` of a `sleep` then `job.wait()`, `submit` of `steps` then `job.events()` to
//!   its `done` (chunks and progress checked), `submit` of a long `sleep` then
//!   `job.cancel()`, paging through `client.jobs()` (three pages of 50), and `run` of
//!   `fail` (its `JobFailed` is the right answer);
//! - `--large N` large callers per facade (default 2), 0.5–1.5 s apart: `echo` of 200–400
//!   KiB, and a command service's output of 1–2 MiB (`blob`, registered at the start)
//!   awaited by `run` or followed by `job.events()`, in turns;
//! - one `client.events()` follower per facade for the whole run, checking that event
//!   ids increase.
//!
//! Every answer is checked (an echo comes back as sent, a blob has its length, …); a
//! wrong answer or an error is a failure, counted by facade, operation and kind, each
//! operation bounded by `client.within(60 s)` so a hang is a `timeout` failure too.
//! Retries are counted from the SDK's own `tracing` events (`retrying`, with the
//! reason), by facade. Prints a progress line every 10 s
//! (`{"t":…,"ok":…,"failed":…,"heap_bytes":…}`, the last what the program holds on its
//! heap, counted by its allocator) and a summary line at the end, as JSON; exits 1 when
//! anything failed. Once a second it hands its allocator's free pages back to the
//! kernel (`malloc_trim`), so its resident memory shows what it holds.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use jobwire::{CommandSpec, EventKind, Job, JobEvent, JobStatus, ServiceSpec};
use jobwire_bench::{arg, emit};
use serde_json::{json, Value};

/// The system allocator, counting the bytes allocated and not yet freed, so that the
/// progress lines can say what the program holds apart from what its allocator keeps.
struct Counting;

static HEAP_BYTES: AtomicU64 = AtomicU64::new(0);

/// Hands the pages of the allocator's free blocks back to the kernel. glibc keeps the
/// holes freed blocks leave inside its heaps until asked, so a program's resident memory
/// follows the most it ever held at once and creeps up with each new peak; the soak
/// is after what the load holds (a leak), so the load asks once a second. (By hand,
/// without it: the load's resident memory rose from ~40 to ~46 MiB between the third
/// and the sixth minute while its heap in use swung 7–28 MiB with no trend.)
fn return_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim takes no pointer; it locks each arena while it walks it.
    unsafe {
        libc::malloc_trim(0);
    }
}

// SAFETY: every call is passed on to the system allocator unchanged; only a counter is
// kept beside it.
unsafe impl std::alloc::GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        let p = std::alloc::System.alloc(layout);
        if !p.is_null() {
            HEAP_BYTES.fetch_add(layout.size() as u64, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        std::alloc::System.dealloc(ptr, layout);
        HEAP_BYTES.fetch_sub(layout.size() as u64, Ordering::Relaxed);
    }

    unsafe fn alloc_zeroed(&self, layout: std::alloc::Layout) -> *mut u8 {
        let p = std::alloc::System.alloc_zeroed(layout);
        if !p.is_null() {
            HEAP_BYTES.fetch_add(layout.size() as u64, Ordering::Relaxed);
        }
        p
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new: usize) -> *mut u8 {
        let p = std::alloc::System.realloc(ptr, layout, new);
        if !p.is_null() {
            HEAP_BYTES.fetch_add(new as u64, Ordering::Relaxed);
            HEAP_BYTES.fetch_sub(layout.size() as u64, Ordering::Relaxed);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// How long one operation may take before it counts as hung.
const OP_LIMIT: Duration = Duration::from_secs(60);
/// The command service whose output is `{"blob": "xxx…"}` of as many bytes as its input
/// (a number) says. The program gets no `PATH`, hence the absolute paths.
const BLOB: &str = "n=$(/usr/bin/head -c 32 | /usr/bin/tr -cd 0-9); printf '{\"blob\":\"'; \
                    /usr/bin/head -c \"$n\" /dev/zero | /usr/bin/tr '\\0' x; printf '\"}'";
const KIB: usize = 1024;
const MIB: usize = 1024 * 1024;

/// A small, seeded generator (xorshift64*): each caller draws its own sequence.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// In `lo..hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo).max(1)
    }
}

/// The operations, with their weights in the mixed callers' draw.
#[derive(Clone, Copy, Debug)]
enum Op {
    Echo,
    Wait,
    JobEvents,
    Cancel,
    List,
    Fail,
    EchoLarge,
    BlobRun,
    BlobEvents,
}

const MIX: &[(Op, u64)] = &[
    (Op::Echo, 35),
    (Op::Wait, 20),
    (Op::JobEvents, 15),
    (Op::Cancel, 10),
    (Op::List, 10),
    (Op::Fail, 10),
];

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Echo => "echo",
            Op::Wait => "submit+wait",
            Op::JobEvents => "steps+job.events",
            Op::Cancel => "cancel",
            Op::List => "list",
            Op::Fail => "fail",
            Op::EchoLarge => "echo 200-400 KiB",
            Op::BlobRun => "blob 1-2 MiB run",
            Op::BlobEvents => "blob 1-2 MiB job.events",
        }
    }

    fn mixed(rng: &mut Rng) -> Op {
        let total: u64 = MIX.iter().map(|(_, w)| w).sum();
        let mut pick = rng.range(0, total);
        for (op, weight) in MIX {
            if pick < *weight {
                return *op;
            }
            pick -= weight;
        }
        Op::Echo
    }

    /// The large callers' turn `i`.
    fn large(i: u64) -> Op {
        [Op::EchoLarge, Op::BlobRun, Op::EchoLarge, Op::BlobEvents][(i % 4) as usize]
    }
}

/// Why an operation failed: the error's kind (`Error::kind_name`) or `wrong` (an
/// answer that is not what was sent or asked for), and what it said.
struct Failure {
    kind: &'static str,
    message: String,
}

impl From<jobwire_core::Error> for Failure {
    fn from(e: jobwire_core::Error) -> Self {
        Failure {
            kind: e.kind_name(),
            message: e.to_string(),
        }
    }
}

fn wrong(message: impl Into<String>) -> Failure {
    Failure {
        kind: "wrong",
        message: message.into(),
    }
}

type Outcome = Result<(), Failure>;

/// What every caller reports to.
#[derive(Default)]
struct Stats {
    ok: AtomicU64,
    failed: AtomicU64,
    /// `facade / op` → operations done right.
    done: Mutex<BTreeMap<String, u64>>,
    /// `facade / op / kind` → failures.
    failures: Mutex<BTreeMap<String, u64>>,
    /// The first few failures' messages, to say what went wrong.
    examples: Mutex<Vec<String>>,
    /// `facade / event kind` → events the `client.events()` followers saw.
    events: Mutex<BTreeMap<String, u64>>,
}

fn bump(map: &Mutex<BTreeMap<String, u64>>, key: String) {
    if let Ok(mut map) = map.lock() {
        *map.entry(key).or_default() += 1;
    }
}

impl Stats {
    fn record(&self, facade: &str, op: &str, outcome: Outcome) {
        match outcome {
            Ok(()) => {
                self.ok.fetch_add(1, Ordering::Relaxed);
                bump(&self.done, format!("{facade} / {op}"));
            }
            Err(f) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                bump(&self.failures, format!("{facade} / {op} / {}", f.kind));
                if let Ok(mut examples) = self.examples.lock() {
                    if examples.len() < 20 {
                        let message: String = f.message.chars().take(1500).collect();
                        examples.push(format!("{facade} / {op} / {}: {message}", f.kind));
                    }
                }
            }
        }
    }
}

/// Retries the SDK made, from its `retrying` events: `facade / reason` → count. The
/// facade is told by the thread the event came from (the blocking callers' threads are
/// named `blocking-…`; the async ones run on the runtime's).
mod retries {
    use std::collections::BTreeMap;
    use std::fmt::Debug;
    use std::sync::Mutex;

    use tracing::field::{Field, Visit};
    use tracing::span::{Attributes, Id, Record};
    use tracing::subscriber::Interest;
    use tracing::{Event, Level, Metadata};

    pub static COUNTS: Mutex<BTreeMap<String, u64>> = Mutex::new(BTreeMap::new());

    /// Listens to the debug events of `jobwire_core::call` and nothing else (no span is
    /// ever built, so the SDK's other tracing costs nothing).
    pub struct Counter;

    fn wanted(meta: &Metadata<'_>) -> bool {
        meta.is_event() && *meta.level() == Level::DEBUG && meta.target() == "jobwire_core::call"
    }

    #[derive(Default)]
    struct Fields {
        message: String,
        reason: String,
    }

    impl Visit for Fields {
        fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
            match field.name() {
                "message" => self.message = format!("{value:?}"),
                "reason" => self.reason = format!("{value:?}"),
                _ => {}
            }
        }
    }

    impl tracing::Subscriber for Counter {
        fn register_callsite(&self, meta: &'static Metadata<'static>) -> Interest {
            if wanted(meta) {
                Interest::always()
            } else {
                Interest::never()
            }
        }
        fn enabled(&self, meta: &Metadata<'_>) -> bool {
            wanted(meta)
        }
        fn new_span(&self, _: &Attributes<'_>) -> Id {
            Id::from_u64(1)
        }
        fn record(&self, _: &Id, _: &Record<'_>) {}
        fn record_follows_from(&self, _: &Id, _: &Id) {}
        fn event(&self, event: &Event<'_>) {
            let mut fields = Fields::default();
            event.record(&mut fields);
            if fields.message != "retrying" {
                return;
            }
            let facade = match std::thread::current().name() {
                Some(name) if name.starts_with("blocking-") => "jobwire-blocking",
                _ => "jobwire",
            };
            if let Ok(mut counts) = COUNTS.lock() {
                *counts
                    .entry(format!("{facade} / {}", fields.reason))
                    .or_default() += 1;
            }
        }
        fn enter(&self, _: &Id) {}
        fn exit(&self, _: &Id) {}
    }
}

/// The input of one operation, and what must come back.
fn echo_input(caller: usize, i: u64, pad: usize) -> Value {
    json!({"caller": caller, "i": i, "pad": "p".repeat(pad)})
}

fn check_echo(sent: &Value, got: &Value) -> Outcome {
    if sent == got {
        Ok(())
    } else {
        Err(wrong("echo came back different"))
    }
}

fn check_blob(n: usize, job: &Job) -> Outcome {
    if job.status != JobStatus::Succeeded {
        return Err(wrong(format!(
            "blob job ended {}: {:?}",
            job.status, job.error
        )));
    }
    check_blob_output(n, job.output.as_ref())
}

fn check_blob_output(n: usize, output: Option<&Value>) -> Outcome {
    let blob = output.and_then(|o| o["blob"].as_str());
    match blob {
        Some(b) if b.len() == n && b.bytes().all(|c| c == b'x') => Ok(()),
        Some(b) => Err(wrong(format!("blob of {} bytes, {n} asked", b.len()))),
        None => Err(wrong("blob job without its blob")),
    }
}

fn check_fail(i: u64, result: Result<Value, jobwire_core::Error>) -> Outcome {
    match result {
        Err(jobwire_core::Error::JobFailed { error, .. })
            if error.code.as_deref() == Some("fail") && error.message == format!("soak {i}") =>
        {
            Ok(())
        }
        Err(e) => Err(e.into()),
        Ok(_) => Err(wrong("a fail job succeeded")),
    }
}

fn check_slept(job: &Job, seconds: f64) -> Outcome {
    match (&job.status, &job.output) {
        (JobStatus::Succeeded, Some(out)) if out["slept"].as_f64() == Some(seconds) => Ok(()),
        _ => Err(wrong(format!(
            "sleep job ended {} with {:?}",
            job.status, job.output
        ))),
    }
}

/// What a `steps` job's events must add up to: every progress step and chunk once, and
/// a `done` whose text is the chunks. Keeps the trail of events seen, so a stream that
/// fails can say where it stood.
struct Steps {
    progress: usize,
    text: String,
    started: Instant,
    /// `id:kind@ms` of each event seen, ms since the submit.
    trail: Vec<String>,
}

impl Steps {
    fn new() -> Steps {
        Steps {
            progress: 0,
            text: String::new(),
            started: Instant::now(),
            trail: Vec::new(),
        }
    }

    fn see(&mut self, event: &JobEvent) {
        let kind = match &event.kind {
            EventKind::Progress { .. } => {
                self.progress += 1;
                "progress"
            }
            EventKind::Output(chunk) => {
                self.text.push_str(chunk);
                "output"
            }
            EventKind::Status(_) => "status",
            EventKind::Log(_) => "log",
            EventKind::Done(_) => "done",
            _ => "other",
        };
        let ms = self.started.elapsed().as_millis();
        self.trail.push(format!("{}:{kind}@{ms}", event.id));
    }

    /// A stream that failed: its error, what it had seen by then, and the job as a read
    /// (without the op's deadline) shows it now.
    fn stalled(
        &self,
        error: jobwire_core::Error,
        job_id: &str,
        now: Result<Job, String>,
    ) -> Failure {
        let now = match now {
            Ok(job) => format!("{} (finished at {:?})", job.status, job.finished_at),
            Err(e) => format!("unreadable: {e}"),
        };
        let mut failure = Failure::from(error);
        failure.message = format!(
            "{} — job {job_id} after {} ms, events seen [{}], the job now {now}",
            failure.message,
            self.started.elapsed().as_millis(),
            self.trail.join(" ")
        );
        failure
    }

    fn check(&self, steps: usize, job: &Job) -> Outcome {
        let text = job.output.as_ref().and_then(|o| o["text"].as_str());
        if job.status != JobStatus::Succeeded || text != Some(self.text.as_str()) {
            return Err(wrong(format!(
                "steps ended {} with {:?}; the chunks said {:?}",
                job.status, text, self.text
            )));
        }
        if self.progress != steps {
            return Err(wrong(format!(
                "{} progress events for {steps} steps",
                self.progress
            )));
        }
        Ok(())
    }
}

const STEPS: usize = 4;

/// Paging must not repeat a job (a tenant's first list may well be empty).
fn list_check(ids: Vec<String>) -> Outcome {
    let mut seen = std::collections::HashSet::new();
    for id in ids {
        if !seen.insert(id.clone()) {
            return Err(wrong(format!("{id} twice in one listing")));
        }
    }
    Ok(())
}

fn blob_service() -> ServiceSpec {
    ServiceSpec::command(
        "blob",
        CommandSpec::new("/bin/sh")
            .arg("-c")
            .arg(BLOB)
            .timeout(Duration::from_secs(30)),
    )
    .description("Answers {\"blob\": N bytes of x}, N its input.")
}

// ---- the async facade ----

async fn async_op(
    client: &jobwire::Client,
    op: Op,
    rng: &mut Rng,
    caller: usize,
    i: u64,
) -> Outcome {
    let c = client.within(OP_LIMIT);
    match op {
        Op::Echo | Op::EchoLarge => {
            let pad = match op {
                Op::Echo => rng.range(100, 2 * KIB as u64),
                _ => rng.range(200 * KIB as u64, 400 * KIB as u64),
            } as usize;
            let sent = echo_input(caller, i, pad);
            let got: Value = c.run("echo", &sent).await?;
            check_echo(&sent, &got)
        }
        Op::Wait => {
            let seconds = rng.range(5, 50) as f64 / 100.0;
            let mut job = c
                .submit("sleep", &json!({"duration_seconds": seconds}))
                .await?;
            check_slept(job.wait().await?, seconds)
        }
        Op::JobEvents => {
            let job = c
                .submit("steps", &json!({"steps": STEPS, "interval_ms": 20}))
                .await?;
            let mut events = job.events();
            let mut steps = Steps::new();
            while let Some(event) = events.next().await {
                let event = match event {
                    Ok(event) => event,
                    Err(e) => {
                        let now = client.get_job(job.id()).await;
                        let now = now.map(|j| j.job().clone()).map_err(|e| e.to_string());
                        return Err(steps.stalled(e, job.id(), now));
                    }
                };
                steps.see(&event);
                if let EventKind::Done(done) = &event.kind {
                    return steps.check(STEPS, done);
                }
            }
            Err(wrong("job.events() ended before done"))
        }
        Op::Cancel => {
            let mut job = c.submit("sleep", &json!({"duration_seconds": 30})).await?;
            tokio::time::sleep(Duration::from_millis(rng.range(10, 100))).await;
            let status = job.cancel().await?.status.clone();
            match status {
                JobStatus::Cancelled => Ok(()),
                other => Err(wrong(format!("a cancelled job is {other}"))),
            }
        }
        Op::List => {
            let ids: Vec<String> = c
                .jobs()
                .limit(50)
                .items()
                .take(150)
                .map(|j| j.map(|j| j.id))
                .collect::<Vec<_>>()
                .await
                .into_iter()
                .collect::<Result<_, _>>()?;
            list_check(ids)
        }
        Op::Fail => {
            let result = c
                .run::<_, Value>("fail", &json!({"message": format!("soak {i}")}))
                .await;
            check_fail(i, result)
        }
        Op::BlobRun => {
            let n = rng.range(MIB as u64, 2 * MIB as u64) as usize;
            let out: Value = c.run("blob", &n).await?;
            check_blob_output(n, Some(&out))
        }
        Op::BlobEvents => {
            let n = rng.range(MIB as u64, 2 * MIB as u64) as usize;
            let job = c.submit("blob", &n).await?;
            let mut events = job.events();
            while let Some(event) = events.next().await {
                if let EventKind::Done(done) = event?.kind {
                    return check_blob(n, &done);
                }
            }
            Err(wrong("job.events() ended before done"))
        }
    }
}

async fn async_caller(
    client: jobwire::Client,
    stats: Arc<Stats>,
    caller: usize,
    large: bool,
    until: Instant,
) {
    let mut rng = Rng::new(1000 + caller as u64);
    let mut i = 0;
    while Instant::now() < until {
        let op = if large {
            Op::large(i)
        } else {
            Op::mixed(&mut rng)
        };
        let outcome = async_op(&client, op, &mut rng, caller, i).await;
        stats.record("jobwire", op.name(), outcome);
        i += 1;
        let think = if large {
            rng.range(500, 1500)
        } else {
            rng.range(0, 200)
        };
        tokio::time::sleep(Duration::from_millis(think)).await;
    }
}

async fn async_follower(client: jobwire::Client, stats: Arc<Stats>, until: Instant) {
    let mut last = 0;
    while Instant::now() < until {
        let mut events = client.events();
        loop {
            let next = tokio::select! {
                next = events.next() => next,
                _ = tokio::time::sleep_until(tokio::time::Instant::from_std(until)) => return,
            };
            let outcome = match next {
                Some(Ok(event)) => {
                    bump(
                        &stats.events,
                        format!("jobwire / {}", kind_name(&event.kind)),
                    );
                    if event.id <= last {
                        Err(wrong(format!("event id {} after {last}", event.id)))
                    } else {
                        last = event.id;
                        continue;
                    }
                }
                Some(Err(e)) => Err(e.into()),
                None => Err(wrong("client.events() ended")),
            };
            stats.record("jobwire", "client.events", outcome);
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

// ---- the blocking facade ----

fn blocking_op(
    client: &jobwire_blocking::Client,
    op: Op,
    rng: &mut Rng,
    caller: usize,
    i: u64,
) -> Outcome {
    let c = client.within(OP_LIMIT);
    match op {
        Op::Echo | Op::EchoLarge => {
            let pad = match op {
                Op::Echo => rng.range(100, 2 * KIB as u64),
                _ => rng.range(200 * KIB as u64, 400 * KIB as u64),
            } as usize;
            let sent = echo_input(caller, i, pad);
            let got: Value = c.run("echo", &sent)?;
            check_echo(&sent, &got)
        }
        Op::Wait => {
            let seconds = rng.range(5, 50) as f64 / 100.0;
            let mut job = c.submit("sleep", &json!({"duration_seconds": seconds}))?;
            check_slept(job.wait()?, seconds)
        }
        Op::JobEvents => {
            let job = c.submit("steps", &json!({"steps": STEPS, "interval_ms": 20}))?;
            let mut steps = Steps::new();
            for event in job.events() {
                let event = match event {
                    Ok(event) => event,
                    Err(e) => {
                        let now = client.get_job(job.id());
                        let now = now.map(|j| j.job().clone()).map_err(|e| e.to_string());
                        return Err(steps.stalled(e, job.id(), now));
                    }
                };
                steps.see(&event);
                if let EventKind::Done(done) = &event.kind {
                    return steps.check(STEPS, done);
                }
            }
            Err(wrong("job.events() ended before done"))
        }
        Op::Cancel => {
            let mut job = c.submit("sleep", &json!({"duration_seconds": 30}))?;
            std::thread::sleep(Duration::from_millis(rng.range(10, 100)));
            match &job.cancel()?.status {
                JobStatus::Cancelled => Ok(()),
                other => Err(wrong(format!("a cancelled job is {other}"))),
            }
        }
        Op::List => {
            let ids = c
                .jobs()
                .limit(50)
                .items()
                .take(150)
                .map(|j| j.map(|j| j.id))
                .collect::<Result<Vec<_>, _>>()?;
            list_check(ids)
        }
        Op::Fail => {
            let result = c.run::<_, Value>("fail", &json!({"message": format!("soak {i}")}));
            check_fail(i, result)
        }
        Op::BlobRun => {
            let n = rng.range(MIB as u64, 2 * MIB as u64) as usize;
            let out: Value = c.run("blob", &n)?;
            check_blob_output(n, Some(&out))
        }
        Op::BlobEvents => {
            let n = rng.range(MIB as u64, 2 * MIB as u64) as usize;
            let job = c.submit("blob", &n)?;
            for event in job.events() {
                if let EventKind::Done(done) = event?.kind {
                    return check_blob(n, &done);
                }
            }
            Err(wrong("job.events() ended before done"))
        }
    }
}

fn blocking_caller(
    client: &jobwire_blocking::Client,
    stats: &Stats,
    caller: usize,
    large: bool,
    until: Instant,
) {
    let mut rng = Rng::new(2000 + caller as u64);
    let mut i = 0;
    while Instant::now() < until {
        let op = if large {
            Op::large(i)
        } else {
            Op::mixed(&mut rng)
        };
        let outcome = blocking_op(client, op, &mut rng, caller, i);
        stats.record("jobwire-blocking", op.name(), outcome);
        i += 1;
        let think = if large {
            rng.range(500, 1500)
        } else {
            rng.range(0, 200)
        };
        std::thread::sleep(Duration::from_millis(think));
    }
}

fn blocking_follower(client: &jobwire_blocking::Client, stats: &Stats, until: Instant) {
    let mut last = 0;
    while let Some(left) = until.checked_duration_since(Instant::now()) {
        // Bounded by the run: the stream ends with a timeout at `until`, which is no
        // failure.
        let mut events = client.within(left).events();
        let outcome = loop {
            match events.next() {
                Some(Ok(event)) => {
                    bump(
                        &stats.events,
                        format!("jobwire-blocking / {}", kind_name(&event.kind)),
                    );
                    if event.id <= last {
                        break Err(wrong(format!("event id {} after {last}", event.id)));
                    }
                    last = event.id;
                }
                Some(Err(jobwire_core::Error::Timeout { .. })) if Instant::now() >= until => return,
                Some(Err(e)) => break Err(e.into()),
                None => break Err(wrong("client.events() ended")),
            }
        };
        stats.record("jobwire-blocking", "client.events", outcome);
        std::thread::sleep(Duration::from_secs(1));
    }
}

fn kind_name(kind: &EventKind) -> &'static str {
    match kind {
        EventKind::Status(_) => "status",
        EventKind::Progress { .. } => "progress",
        EventKind::Log(_) => "log",
        EventKind::Output(_) => "output",
        EventKind::Done(_) => "done",
        _ => "other",
    }
}

fn snapshot(map: &Mutex<BTreeMap<String, u64>>) -> BTreeMap<String, u64> {
    map.lock().map(|m| m.clone()).unwrap_or_default()
}

fn main() {
    let seconds: u64 = arg("--seconds", 120);
    let callers: usize = arg("--callers", 24);
    let large: usize = arg("--large", 2);
    let url = std::env::var("JOBWIRE_URL").unwrap_or_default();
    let (async_token, blocking_token) = (
        std::env::var("JOBWIRE_SOAK_ASYNC_TOKEN").unwrap_or_default(),
        std::env::var("JOBWIRE_SOAK_BLOCKING_TOKEN").unwrap_or_default(),
    );
    if url.is_empty() || async_token.is_empty() || blocking_token.is_empty() {
        eprintln!(
            "soak: set JOBWIRE_URL, JOBWIRE_SOAK_ASYNC_TOKEN and JOBWIRE_SOAK_BLOCKING_TOKEN \
             (two tenants); cargo xtask soak does"
        );
        std::process::exit(2);
    }
    if tracing::subscriber::set_global_default(retries::Counter).is_err() {
        eprintln!("soak: cannot count retries (another tracing subscriber is set)");
    }
    let stats = Arc::new(Stats::default());
    let config = |token: &str| {
        jobwire_core::ClientConfig::default()
            .base_url(url.as_str())
            .token(token)
    };
    let blocking = match jobwire_blocking::Client::from_config(config(&blocking_token)) {
        Ok(c) => c,
        Err(e) => fail_setup(&e),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => fail_setup(&e),
    };
    let asynchronous = match runtime.block_on(async {
        let client = jobwire::Client::from_config(config(&async_token))?;
        client.create_or_get_service(&blob_service()).await?;
        Ok::<_, jobwire_core::Error>(client)
    }) {
        Ok(c) => c,
        Err(e) => fail_setup(&e),
    };
    if let Err(e) = blocking.create_or_get_service(&blob_service()) {
        fail_setup(&e);
    }

    let started = Instant::now();
    let until = started + Duration::from_secs(seconds);
    // Progress lines, every 10 s, for the sampler's table; free memory handed back
    // every second.
    let reporter = {
        let stats = stats.clone();
        std::thread::spawn(move || {
            let mut second = 1;
            while Instant::now() < until {
                let next = started + Duration::from_secs(second);
                std::thread::sleep(next.saturating_duration_since(Instant::now()));
                return_free_memory();
                if second % 10 == 0 {
                    emit(json!({
                        "t": started.elapsed().as_secs(),
                        "ok": stats.ok.load(Ordering::Relaxed),
                        "failed": stats.failed.load(Ordering::Relaxed),
                        "heap_bytes": HEAP_BYTES.load(Ordering::Relaxed),
                    }));
                }
                second += 1;
            }
        })
    };
    let load = {
        let (client, stats) = (asynchronous.clone(), stats.clone());
        runtime.spawn(async move {
            let mut tasks = Vec::new();
            for caller in 0..callers + large {
                tasks.push(tokio::spawn(async_caller(
                    client.clone(),
                    stats.clone(),
                    caller,
                    caller >= callers,
                    until,
                )));
            }
            tasks.push(tokio::spawn(async_follower(client, stats, until)));
            for task in tasks {
                let _ = task.await;
            }
        })
    };
    std::thread::scope(|scope| {
        for caller in 0..callers + large {
            let (client, stats) = (&blocking, &*stats);
            let spawned = std::thread::Builder::new()
                .name(format!("blocking-{caller}"))
                .spawn_scoped(scope, move || {
                    blocking_caller(client, stats, caller, caller >= callers, until)
                });
            if let Err(e) = spawned {
                fail_setup(&e);
            }
        }
        let (client, stats) = (&blocking, &*stats);
        let _ = std::thread::Builder::new()
            .name("blocking-events".into())
            .spawn_scoped(scope, move || blocking_follower(client, stats, until));
    });
    let _ = runtime.block_on(load);
    let _ = reporter.join();

    let failed = stats.failed.load(Ordering::Relaxed);
    emit(json!({
        "summary": true,
        "seconds": started.elapsed().as_secs_f64(),
        "callers_per_facade": callers,
        "large_callers_per_facade": large,
        "ok": stats.ok.load(Ordering::Relaxed),
        "failed": failed,
        "done": snapshot(&stats.done),
        "failures": snapshot(&stats.failures),
        "failure_examples": stats.examples.lock().map(|e| e.clone()).unwrap_or_default(),
        "retries": snapshot(&retries::COUNTS),
        "events": snapshot(&stats.events),
    }));
    if failed > 0 {
        std::process::exit(1);
    }
}

fn fail_setup(e: &dyn std::fmt::Display) -> ! {
    eprintln!("soak: cannot set up the load: {e}");
    std::process::exit(2);
}
