//! A command's running program: started in a process group of its own, its exit seen
//! without reaping it, and its group stopped when the job ends — but only while the
//! group can still be the program's.
//!
//! Why that matters: a process group is named by its leader's pid, and pids are reused.
//! Once the leader is reaped and the last process of its group is gone, the same number
//! may name a new process (and a group it leads) that has nothing to do with the job, so
//! a `kill(-pgid, …)` sent "just in case" a few seconds after the job ended could hit a
//! stranger. Here the leader is not reaped until the group has been dealt with: its exit
//! is observed with `waitid(…, WNOWAIT)`, which leaves it a zombie. A zombie keeps its
//! pid, and the kernel does not hand out a pid that is still in use as a process or group
//! id, so while the leader is unreaped every process in group `pgid` is the program or
//! one it started (or one from the server's own session that joined on purpose), and a
//! signal to the group reaches nothing else. After the reap, nothing is signalled again.

use std::process::ExitStatus;
use std::time::Duration;

use tokio::process::Child;

/// How often the exit is checked for when nothing wakes the check (a safety net: the
/// pidfd, or SIGCHLD, wakes it at once).
#[cfg(unix)]
const EXIT_POLL: Duration = Duration::from_millis(200);
/// How often a stopping group is checked for being empty during the grace period.
#[cfg(unix)]
const STOP_POLL: Duration = Duration::from_millis(50);

/// A started program; dropping it stops its group (see the module docs) in a task of its
/// own, so a dropped job never waits for it.
pub(crate) struct Program {
    child: Option<Child>,
    grace: Duration,
    #[cfg(unix)]
    pid: i32,
    #[cfg(unix)]
    exit: ExitWatch,
}

/// What wakes a wait for the program's exit.
#[cfg(unix)]
enum ExitWatch {
    /// A pidfd (Linux 5.3+), readable once the process exited: only this program's
    /// exit wakes its job.
    #[cfg(target_os = "linux")]
    Pidfd(tokio::io::unix::AsyncFd<std::os::fd::OwnedFd>),
    /// SIGCHLD, which any child's exit sends; `None` when it cannot be listened to
    /// (then the exit is polled).
    Sigchld(Option<tokio::signal::unix::Signal>),
}

impl Program {
    /// Starts `command` in a process group of its own.
    pub(crate) fn spawn(
        command: &mut tokio::process::Command,
        grace: Duration,
    ) -> std::io::Result<Program> {
        #[cfg(unix)]
        {
            // Without pidfds, SIGCHLD is listened to before the spawn, so that none of
            // this child's is missed.
            #[cfg(target_os = "linux")]
            let pidfd_works = PIDFD_WORKS.load(std::sync::atomic::Ordering::Relaxed);
            #[cfg(not(target_os = "linux"))]
            let pidfd_works = false;
            let sigchld = (!pidfd_works)
                .then(|| tokio::signal::unix::signal(tokio::signal::unix::SignalKind::child()).ok())
                .flatten();
            command.process_group(0);
            let child = command.spawn()?;
            let pid = child
                .id()
                .and_then(|id| i32::try_from(id).ok())
                .ok_or_else(|| std::io::Error::other("the program has no pid"))?;
            let exit = match watch_exit(pid) {
                Some(watch) => watch,
                // A pidfd was expected and is missing: poll (rare; never on a kernel
                // that opened one before).
                None => ExitWatch::Sigchld(sigchld),
            };
            Ok(Program {
                child: Some(child),
                grace,
                pid,
                exit,
            })
        }
        #[cfg(not(unix))]
        {
            Ok(Program {
                child: Some(command.spawn()?),
                grace,
            })
        }
    }

    /// The child, for its pipes.
    pub(crate) fn child(&mut self) -> Option<&mut Child> {
        self.child.as_mut()
    }

    /// Resolves when the program has exited, with its status, leaving it unreaped.
    #[cfg(unix)]
    pub(crate) async fn exited(&mut self) -> std::io::Result<ExitStatus> {
        loop {
            if let Some(status) = peek_exit(self.pid)? {
                return Ok(status);
            }
            match &mut self.exit {
                #[cfg(target_os = "linux")]
                ExitWatch::Pidfd(fd) => {
                    // Readable from the exit on, for good: no need to clear readiness.
                    let _ = tokio::time::timeout(EXIT_POLL, fd.readable()).await;
                }
                ExitWatch::Sigchld(Some(sigchld)) => {
                    let _ = tokio::time::timeout(EXIT_POLL, sigchld.recv()).await;
                }
                ExitWatch::Sigchld(None) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
    }

    #[cfg(not(unix))]
    pub(crate) async fn exited(&mut self) -> std::io::Result<ExitStatus> {
        match &mut self.child {
            Some(child) => child.wait().await,
            None => Err(std::io::Error::other("the program is gone")),
        }
    }
}

impl Drop for Program {
    fn drop(&mut self) {
        let Some(child) = self.child.take() else {
            return;
        };
        #[cfg(unix)]
        {
            let stop = Stop {
                child: Some(child),
                pid: self.pid,
                grace: self.grace,
                #[cfg(target_os = "linux")]
                group: match &self.exit {
                    ExitWatch::Pidfd(fd) => fd.get_ref().try_clone().ok(),
                    ExitWatch::Sigchld(_) => None,
                },
            };
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                // If the runtime is shutting down, the task is dropped unrun and
                // `Stop`'s own drop kills the group at once.
                runtime.spawn(stop.run());
            }
        }
        #[cfg(not(unix))]
        {
            let mut child = child;
            let _ = self.grace;
            let _ = child.start_kill();
        }
    }
}

/// The end of a program's group: SIGTERM to the group, SIGKILL after the grace period if
/// anything in it still runs, then the leader reaped. Dropped unfinished (its runtime
/// stopped), it sends SIGKILL at once and leaves the reaping to tokio.
#[cfg(unix)]
struct Stop {
    child: Option<Child>,
    pid: i32,
    grace: Duration,
    /// The leader's pidfd, which names its group for good (see [`Stop::by_pidfd`]).
    #[cfg(target_os = "linux")]
    group: Option<std::os::fd::OwnedFd>,
}

/// What is left of a program's group.
#[cfg(unix)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Left {
    /// The leader runs, or others of its group do.
    Running,
    /// The leader exited (unreaped) and nothing else of its group runs.
    Nothing,
    /// The leader cannot be waited for (someone else reaped it): the group id may no
    /// longer be the program's, so nothing may be signalled.
    Unknown,
}

#[cfg(unix)]
impl Stop {
    async fn run(mut self) {
        #[cfg(target_os = "linux")]
        if let Some(group) = &self.group {
            // Linux 6.9+ signals a pidfd's group; older kernels refuse the flag.
            if matches!(signal_group_by_pidfd(group, 0), Ok(true)) {
                return self.by_pidfd().await;
            }
            self.group = None;
        }
        self.by_scan().await;
    }

    /// The end of the group through the leader's pidfd: the pidfd names the leader's
    /// `struct pid`, and its group's members stay attached to that, while a newcomer
    /// given the same number gets a new one. So the leader can be reaped as soon as it
    /// exits, and then one `pidfd_send_signal` with signal 0 says whether anything of
    /// its group is left — no walk of `/proc`, whose cost grows with every process on
    /// the machine (with hundreds of programs running it took ~40 % of the server's
    /// CPU), and still no signal for a stranger.
    #[cfg(target_os = "linux")]
    async fn by_pidfd(mut self) {
        let mut deadline = None;
        while let Some(group) = &self.group {
            if self.child.is_some() && !matches!(peek_exit(self.pid), Ok(None)) {
                if let Some(mut child) = self.child.take() {
                    let _ = child.wait().await;
                }
            }
            // While the leader is unreaped it counts itself; once reaped, only the others.
            if self.child.is_none() && !matches!(signal_group_by_pidfd(group, 0), Ok(true)) {
                self.group = None;
                break;
            }
            let now = tokio::time::Instant::now();
            let at = match deadline {
                None => {
                    let _ = signal_group_by_pidfd(group, libc::SIGTERM);
                    *deadline.insert(now + self.grace)
                }
                Some(at) if now >= at => {
                    let _ = signal_group_by_pidfd(group, libc::SIGKILL);
                    self.group = None;
                    break;
                }
                Some(at) => at,
            };
            tokio::time::sleep_until(at.min(now + STOP_POLL)).await;
        }
        if let Some(mut child) = self.child.take() {
            let _ = child.wait().await;
        }
    }

    /// The end of the group where a pidfd cannot signal it: the leader is held unreaped
    /// (so its id stays the group's) while `/proc` is walked for other members.
    async fn by_scan(mut self) {
        if self.left().await == Left::Running {
            signal_group(self.pid, libc::SIGTERM);
            let deadline = tokio::time::Instant::now() + self.grace;
            loop {
                tokio::time::sleep_until(deadline.min(tokio::time::Instant::now() + STOP_POLL))
                    .await;
                match self.left().await {
                    Left::Running if tokio::time::Instant::now() >= deadline => {
                        // The leader is still unreaped here: the group is the program's.
                        signal_group(self.pid, libc::SIGKILL);
                        break;
                    }
                    Left::Running => {}
                    Left::Nothing | Left::Unknown => break,
                }
            }
        }
        if let Some(mut child) = self.child.take() {
            // After SIGKILL (or a clean exit) the leader is gone or going: reap it. From
            // here on its pid may be reused, and nothing is signalled any more.
            let _ = child.wait().await;
        }
    }

    async fn left(&self) -> Left {
        match peek_exit(self.pid) {
            Ok(None) => Left::Running,
            Err(_) => Left::Unknown,
            Ok(Some(_)) => {
                let pgid = self.pid;
                match tokio::task::spawn_blocking(move || others_in_group(pgid)).await {
                    Ok(false) => Left::Nothing,
                    _ => Left::Running,
                }
            }
        }
    }
}

#[cfg(unix)]
impl Drop for Stop {
    fn drop(&mut self) {
        if self.child.take().is_some() {
            // Not reaped yet, so the group is still the program's. The dropped `Child` is
            // reaped by tokio's orphan queue.
            signal_group(self.pid, libc::SIGKILL);
            return;
        }
        // Reaped, stopped half-way: the pidfd still names the group and nothing else.
        #[cfg(target_os = "linux")]
        if let Some(group) = self.group.take() {
            let _ = signal_group_by_pidfd(&group, libc::SIGKILL);
        }
    }
}

/// Whether pidfd_open(2) worked so far (it does from Linux 5.3 on): once it fails, SIGCHLD
/// is used instead.
#[cfg(target_os = "linux")]
static PIDFD_WORKS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

/// A pidfd for child `pid`, registered with the runtime; `None` where there is none.
#[cfg(unix)]
fn watch_exit(pid: i32) -> Option<ExitWatch> {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::FromRawFd;
        if !PIDFD_WORKS.load(std::sync::atomic::Ordering::Relaxed) {
            return None;
        }
        // SAFETY: a raw syscall with integer arguments; the pid is our unreaped child, so
        // it names that process. The descriptor is close-on-exec.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        let Ok(fd) = libc::c_int::try_from(fd).map_err(drop).and_then(|fd| {
            if fd >= 0 {
                Ok(fd)
            } else {
                Err(())
            }
        }) else {
            PIDFD_WORKS.store(false, std::sync::atomic::Ordering::Relaxed);
            return None;
        };
        // SAFETY: the descriptor was just opened and is owned by nothing else.
        let owned = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) };
        // SAFETY: `owned` is a valid descriptor, and nothing replaces or closes it while
        // the AsyncFd owns it.
        let registered = unsafe {
            tokio::io::unix::AsyncFd::register_with_interest(owned, tokio::io::Interest::READABLE)
        };
        registered.ok().map(ExitWatch::Pidfd)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = pid;
        None
    }
}

/// Sends `signal` to process group `pgid`. Callers hold the unreaped leader (see the
/// module docs).
#[cfg(unix)]
fn signal_group(pgid: i32, signal: libc::c_int) {
    // SAFETY: kill(2) takes plain integers; a negative pid names the group.
    unsafe {
        libc::kill(-pgid, signal);
    }
}

/// Sends `signal` (0: none, only the check) to the process group of the process whose
/// pidfd is `pidfd` (`PIDFD_SIGNAL_PROCESS_GROUP`, Linux 6.9+): `Ok(false)` when nothing
/// is left in that group, an error where the kernel refuses the flag.
#[cfg(target_os = "linux")]
fn signal_group_by_pidfd(
    pidfd: &std::os::fd::OwnedFd,
    signal: libc::c_int,
) -> std::io::Result<bool> {
    use std::os::fd::AsRawFd;
    /// From `linux/pidfd.h`; not in every libc crate version.
    const PIDFD_SIGNAL_PROCESS_GROUP: libc::c_uint = 1 << 2;
    // SAFETY: a raw syscall on a descriptor we own, with no siginfo.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signal,
            std::ptr::null::<libc::siginfo_t>(),
            PIDFD_SIGNAL_PROCESS_GROUP,
        )
    };
    if rc == 0 {
        return Ok(true);
    }
    let error = std::io::Error::last_os_error();
    match error.raw_os_error() {
        Some(libc::ESRCH) => Ok(false),
        _ => Err(error),
    }
}

/// The exit status of child `pid` if it has exited, without reaping it.
#[cfg(unix)]
fn peek_exit(pid: i32) -> std::io::Result<Option<ExitStatus>> {
    use std::os::unix::process::ExitStatusExt;
    let Ok(id) = libc::id_t::try_from(pid) else {
        return Err(std::io::Error::other("not a pid"));
    };
    // SAFETY: all-zero is a valid siginfo_t; waitid writes it.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    let rc = unsafe {
        libc::waitid(
            libc::P_PID,
            id,
            &mut info,
            libc::WEXITED | libc::WNOWAIT | libc::WNOHANG,
        )
    };
    if rc != 0 {
        let error = std::io::Error::last_os_error();
        if error.kind() == std::io::ErrorKind::Interrupted {
            return Ok(None);
        }
        return Err(error);
    }
    // SAFETY: waitid filled the SIGCHLD fields (or left si_pid 0: no exit yet).
    let (who, status) = unsafe { (info.si_pid(), info.si_status()) };
    if who == 0 {
        return Ok(None);
    }
    // The wait(2) status word, as ExitStatus holds it.
    let raw = match info.si_code {
        libc::CLD_EXITED => (status & 0xff) << 8,
        libc::CLD_DUMPED => (status & 0x7f) | 0x80,
        _ => status & 0x7f,
    };
    Ok(Some(ExitStatus::from_raw(raw)))
}

/// Whether any live process but the leader is in group `pgid` (Linux: read from
/// `/proc`). Zombies do not count: they run nothing.
#[cfg(target_os = "linux")]
fn others_in_group(pgid: i32) -> bool {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return true;
    };
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|name| name.parse::<i32>().ok())
        else {
            continue;
        };
        if pid == pgid {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        if let Some((state, group)) = state_and_group(&stat) {
            if group == pgid && state != "Z" && state != "X" {
                return true;
            }
        }
    }
    false
}

/// Elsewhere there is no cheap way to look: assume something may still run, so the group
/// gets its grace period and SIGKILL (the leader is held unreaped meanwhile).
#[cfg(all(unix, not(target_os = "linux")))]
fn others_in_group(_pgid: i32) -> bool {
    true
}

/// The state and process group of a `/proc/<pid>/stat` line:
/// `pid (comm) state ppid pgrp …`, where comm may hold spaces and parentheses.
#[cfg(target_os = "linux")]
fn state_and_group(stat: &str) -> Option<(&str, i32)> {
    let (_, rest) = stat.rsplit_once(')')?;
    let mut fields = rest.split_whitespace();
    let state = fields.next()?;
    let _ppid = fields.next()?;
    let pgrp = fields.next()?.parse().ok()?;
    Some((state, pgrp))
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_are_read_whatever_the_command_name() {
        assert_eq!(state_and_group("42 (sh) S 1 42 42 0 -1"), Some(("S", 42)));
        assert_eq!(state_and_group("7 (a) b (c) d) Z 3 99 1"), Some(("Z", 99)));
        assert_eq!(state_and_group("garbage"), None);
        assert_eq!(state_and_group("1 (x) R 0"), None);
    }

    /// Whether process `pid` still runs (a zombie does not).
    fn runs(pid: i32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|stat| state_and_group(&stat).map(|(state, _)| state != "Z"))
            .unwrap_or(false)
    }

    /// A program that exits 0 at once, leaving a child that ignores SIGTERM in its group,
    /// is stopped the same way whether its pidfd signals the group or `/proc` is walked:
    /// the child is gone within the grace period and a little, the leader reaped.
    #[tokio::test]
    async fn what_a_program_leaves_is_stopped_by_pidfd_and_by_scan() {
        use tokio::io::AsyncBufReadExt;
        for by_pidfd in [true, false] {
            let mut command = tokio::process::Command::new("/bin/sh");
            command
                // The child says its pid once it ignores SIGTERM, so the test cannot
                // signal it before.
                .args([
                    "-c",
                    "sh -c 'trap \"\" TERM; echo $$; exec sleep 30' </dev/null 2>&1 &",
                ])
                .stdout(std::process::Stdio::piped());
            let grace = Duration::from_millis(300);
            let mut program = Program::spawn(&mut command, grace).unwrap();
            let stdout = program.child().unwrap().stdout.take().unwrap();
            let mut line = String::new();
            tokio::io::BufReader::new(stdout)
                .read_line(&mut line)
                .await
                .unwrap();
            let left: i32 = line.trim().parse().unwrap();
            assert!(program.exited().await.unwrap().success());
            let leader = program.pid;
            assert!(runs(left), "the child runs on after its leader exited");
            if let (true, ExitWatch::Pidfd(fd)) = (by_pidfd, &program.exit) {
                match signal_group_by_pidfd(fd.get_ref(), 0) {
                    Ok(found) => assert!(found, "the unreaped leader is in its group"),
                    Err(e) => eprintln!(
                        "this kernel cannot signal a pidfd's group ({e}): both rounds walk /proc"
                    ),
                }
            } else {
                program.exit = ExitWatch::Sigchld(None);
            }
            let dropped = std::time::Instant::now();
            drop(program);
            let deadline = std::time::Instant::now() + grace + Duration::from_secs(3);
            while runs(left) || std::path::Path::new(&format!("/proc/{leader}")).exists() {
                assert!(
                    std::time::Instant::now() < deadline,
                    "by_pidfd {by_pidfd}: {left} or its leader {leader} is left"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            assert!(dropped.elapsed() >= grace, "the child ignores SIGTERM");
        }
    }

    #[test]
    fn this_process_group_has_members_and_a_made_up_one_has_none() {
        // SAFETY: plain getter.
        let own = unsafe { libc::getpgrp() };
        let me = std::process::id() as i32;
        if own != me {
            assert!(others_in_group(own), "this test process is in group {own}");
        }
        assert!(!others_in_group(i32::MAX));
    }
}
