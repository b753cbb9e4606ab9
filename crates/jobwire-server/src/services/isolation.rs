//! What the programs of registered command services run with: the user and group, and
//! the resource limits set in their process just before the program starts.
//!
//! The threat model these serve is in `docs/security.md`: a tenant allowed to register
//! commands runs code on the server's machine, so the programs run with as little as the
//! operator lets them — another user than the server's (`--command-user`), no way to gain
//! privileges (`PR_SET_NO_NEW_PRIVS`), and bounded memory, files, processes and CPU.

use std::sync::Arc;
use std::time::Duration;

use super::launcher::Launcher;
use super::registration::Tenants;

/// Resource limits set (`setrlimit`) in a registered command's process before its program
/// starts; children it starts inherit them. `None` leaves a limit as the server has it.
///
/// The defaults: 4 GiB of address space (`RLIMIT_AS`), 1024 open files
/// (`RLIMIT_NOFILE`), files of at most 1 GiB written (`RLIMIT_FSIZE`), and, when the
/// programs run as a user of their own ([`ServerConfig::command_user`]), 4096 processes
/// of that user (`RLIMIT_NPROC`; it counts every process and thread of the user, so it is
/// left as it is when programs share the server's user, whose threads it would count).
/// Whatever is set here, CPU time (`RLIMIT_CPU`) is capped just above the service's
/// timeout and core dumps are off (`RLIMIT_CORE` 0). A limit above the server's own hard
/// limit is lowered to it.
///
/// [`ServerConfig::command_user`]: crate::ServerConfig::command_user
///
/// ```
/// use jobwire_server::{CommandLimits, ServerConfig};
///
/// let limits = CommandLimits::default()
///     .address_space(Some(512 * 1024 * 1024))
///     .open_files(Some(64))
///     .processes(Some(32))
///     .file_size(None);
/// let config = ServerConfig::new().allow_commands(true).command_limits(limits);
/// # let _ = config;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandLimits {
    address_space: Option<u64>,
    open_files: Option<u64>,
    processes: Processes,
    file_size: Option<u64>,
}

/// The process limit: set, left alone, or the default that depends on the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Processes {
    /// 4096 with a command user of its own, else left as it is.
    Default,
    Set(Option<u64>),
}

/// The default process limit with a command user of its own.
const DEFAULT_PROCESSES: u64 = 4096;

impl Default for CommandLimits {
    fn default() -> Self {
        CommandLimits {
            address_space: Some(4 << 30),
            open_files: Some(1024),
            processes: Processes::Default,
            file_size: Some(1 << 30),
        }
    }
}

impl CommandLimits {
    /// No limit but the CPU time and core dumps: the program has what the server has.
    ///
    /// ```
    /// let limits = jobwire_server::CommandLimits::none();
    /// assert_ne!(limits, jobwire_server::CommandLimits::default());
    /// ```
    pub fn none() -> Self {
        CommandLimits {
            address_space: None,
            open_files: None,
            processes: Processes::Set(None),
            file_size: None,
        }
    }

    /// Most bytes of address space (virtual memory) of each process (`RLIMIT_AS`).
    pub fn address_space(mut self, bytes: Option<u64>) -> Self {
        self.address_space = bytes;
        self
    }

    /// Most open file descriptors of each process (`RLIMIT_NOFILE`).
    pub fn open_files(mut self, n: Option<u64>) -> Self {
        self.open_files = n;
        self
    }

    /// Most processes (and threads) of the user the programs run as (`RLIMIT_NPROC`).
    pub fn processes(mut self, n: Option<u64>) -> Self {
        self.processes = Processes::Set(n);
        self
    }

    /// Largest file a process may write (`RLIMIT_FSIZE`), in bytes.
    pub fn file_size(mut self, bytes: Option<u64>) -> Self {
        self.file_size = bytes;
        self
    }
}

/// The command settings of a [`ServerConfig`](crate::ServerConfig), as set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct CommandSettings {
    /// Who may register command services (and have their programs run here).
    pub tenants: Tenants,
    /// The user (name or uid) and group the programs run as; the server's when `None`.
    pub user: Option<String>,
    pub group: Option<String>,
    pub limits: CommandLimits,
    /// Started to set a program's isolation up and exec it; `None`: the server's own
    /// process does, between fork and exec.
    pub launcher: Option<Launcher>,
}

impl CommandSettings {
    /// The settings in force: the user and group looked up, refused when they cannot be
    /// applied.
    pub(crate) fn resolve(&self) -> Result<CommandPolicy, String> {
        let mut isolation = Isolation::new(
            self.user.as_deref(),
            self.group.as_deref(),
            self.limits.clone(),
        )?;
        isolation.launcher.clone_from(&self.launcher);
        Ok(CommandPolicy {
            tenants: self.tenants.clone(),
            isolation: Arc::new(isolation),
        })
    }
}

/// Which tenants' command services run here, and how.
#[derive(Debug, Clone, Default)]
pub(crate) struct CommandPolicy {
    pub tenants: Tenants,
    pub isolation: Arc<Isolation>,
}

/// The user and group a program runs as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RunAs {
    pub uid: u32,
    pub gid: u32,
}

/// How the programs of registered command services run: resolved once, at start.
#[derive(Debug, Clone, Default)]
pub(crate) struct Isolation {
    pub run_as: Option<RunAs>,
    pub limits: CommandLimits,
    /// What sets the isolation up and execs the program; `None`: the server's own
    /// process does, between fork and exec (see `launcher.rs` for the difference).
    pub launcher: Option<Launcher>,
}

impl Isolation {
    /// Resolves `user` (and `group`; the user's own group when `None`), names or numeric
    /// ids, and checks this process can start programs as them: refused when the user or
    /// group does not exist, or the server would need root and is not root.
    pub(crate) fn new(
        user: Option<&str>,
        group: Option<&str>,
        limits: CommandLimits,
    ) -> Result<Self, String> {
        let run_as = match (user, group) {
            (None, None) => None,
            (None, Some(_)) => {
                return Err(
                    "a command group needs a command user (--command-user USER:GROUP)".into(),
                )
            }
            (Some(user), group) => Some(resolve(user, group)?),
        };
        Ok(Isolation {
            run_as,
            limits,
            launcher: None,
        })
    }

    /// What to do in a program's process before it starts, for a program with this
    /// timeout and grace: its limits, each lowered to the hard limit this process has.
    #[cfg(unix)]
    pub(crate) fn child_setup(&self, timeout: Duration, grace: Duration) -> ChildSetup {
        let limits = &self.limits;
        let processes = match limits.processes {
            Processes::Set(n) => n,
            Processes::Default => self.run_as.map(|_| DEFAULT_PROCESSES),
        };
        // Past the timeout the program is stopped anyway; the CPU limit is a backstop for
        // a process that left its group. SIGXCPU at the soft limit, SIGKILL at the hard.
        let cpu_soft = timeout.as_secs().saturating_add(2);
        let cpu_hard = cpu_soft.saturating_add(grace.as_secs()).saturating_add(5);
        let wanted = [
            (Resource::Cpu, Some((cpu_soft, cpu_hard))),
            (Resource::Core, Some((0, 0))),
            (Resource::AddressSpace, limits.address_space.map(|n| (n, n))),
            (Resource::OpenFiles, limits.open_files.map(|n| (n, n))),
            (Resource::Processes, processes.map(|n| (n, n))),
            (Resource::FileSize, limits.file_size.map(|n| (n, n))),
        ];
        let mut set = Vec::new();
        for (resource, limit) in wanted {
            let Some((soft, hard)) = limit else { continue };
            let (_, current_hard) = resource.get();
            let hard = hard.min(current_hard);
            set.push((resource, soft.min(hard), hard));
        }
        ChildSetup::new(set)
    }
}

/// Looks up a user and group by name or number.
#[cfg(unix)]
fn resolve(user: &str, group: Option<&str>) -> Result<RunAs, String> {
    let (uid, primary) = match lookup_user(user) {
        Some(found) => found,
        None => match user.parse::<u32>() {
            Ok(uid) => (uid, primary_group_of(uid)),
            Err(_) => return Err(format!("there is no user {user:?} (--command-user)")),
        },
    };
    let gid = match group {
        Some(group) => match lookup_group(group).or_else(|| group.parse().ok()) {
            Some(gid) => gid,
            None => return Err(format!("there is no group {group:?} (--command-user)")),
        },
        None => primary.ok_or_else(|| {
            format!("user {user} has no entry in the user database: name its group (USER:GROUP)")
        })?,
    };
    // SAFETY: plain getters without arguments.
    let (euid, egid) = unsafe { (libc::geteuid(), libc::getegid()) };
    if euid != 0 && (uid != euid || gid != egid) {
        return Err(format!(
            "programs cannot run as user {user} (uid {uid}, gid {gid}): that needs the server \
             to run as root, and it runs as uid {euid}"
        ));
    }
    Ok(RunAs { uid, gid })
}

#[cfg(not(unix))]
fn resolve(_user: &str, _group: Option<&str>) -> Result<RunAs, String> {
    Err("a command user is only supported on Unix".into())
}

/// The uid and primary gid of the user named `name`.
#[cfg(unix)]
fn lookup_user(name: &str) -> Option<(u32, Option<u32>)> {
    let name = std::ffi::CString::new(name).ok()?;
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        // SAFETY: all-zero is a valid passwd (null pointers, zero ids).
        let mut entry: libc::passwd = unsafe { std::mem::zeroed() };
        let mut found: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: every pointer is valid for the call, the buffer for its length.
        let rc = unsafe {
            libc::getpwnam_r(
                name.as_ptr(),
                &mut entry,
                buf.as_mut_ptr().cast(),
                buf.len(),
                &mut found,
            )
        };
        if rc == libc::ERANGE && buf.len() < 1 << 20 {
            buf.resize(buf.len() * 2, 0);
            continue;
        }
        return (rc == 0 && !found.is_null()).then_some((entry.pw_uid, Some(entry.pw_gid)));
    }
}

/// The primary gid of the user with this uid, if the user database has it.
#[cfg(unix)]
fn primary_group_of(uid: u32) -> Option<u32> {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        // SAFETY: all-zero is a valid passwd (null pointers, zero ids).
        let mut entry: libc::passwd = unsafe { std::mem::zeroed() };
        let mut found: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: every pointer is valid for the call, the buffer for its length.
        let rc = unsafe {
            libc::getpwuid_r(
                uid,
                &mut entry,
                buf.as_mut_ptr().cast(),
                buf.len(),
                &mut found,
            )
        };
        if rc == libc::ERANGE && buf.len() < 1 << 20 {
            buf.resize(buf.len() * 2, 0);
            continue;
        }
        return (rc == 0 && !found.is_null()).then_some(entry.pw_gid);
    }
}

/// The gid of the group named `name`.
#[cfg(unix)]
fn lookup_group(name: &str) -> Option<u32> {
    let name = std::ffi::CString::new(name).ok()?;
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        // SAFETY: all-zero is a valid group (null pointers, zero id).
        let mut entry: libc::group = unsafe { std::mem::zeroed() };
        let mut found: *mut libc::group = std::ptr::null_mut();
        // SAFETY: every pointer is valid for the call, the buffer for its length.
        let rc = unsafe {
            libc::getgrnam_r(
                name.as_ptr(),
                &mut entry,
                buf.as_mut_ptr().cast(),
                buf.len(),
                &mut found,
            )
        };
        if rc == libc::ERANGE && buf.len() < 1 << 20 {
            buf.resize(buf.len() * 2, 0);
            continue;
        }
        return (rc == 0 && !found.is_null()).then_some(entry.gr_gid);
    }
}

/// A resource limit this module sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resource {
    Cpu,
    Core,
    AddressSpace,
    OpenFiles,
    Processes,
    FileSize,
}

impl Resource {
    /// Every resource, each with its name on the launcher's command line.
    const NAMES: [(Resource, &'static str); 6] = [
        (Resource::Cpu, "cpu"),
        (Resource::Core, "core"),
        (Resource::AddressSpace, "as"),
        (Resource::OpenFiles, "nofile"),
        (Resource::Processes, "nproc"),
        (Resource::FileSize, "fsize"),
    ];

    /// This resource's name on the launcher's command line.
    pub(crate) fn name(self) -> &'static str {
        Self::NAMES
            .iter()
            .find(|(r, _)| *r == self)
            .map_or("", |(_, name)| name)
    }

    /// The resource named `name` on the launcher's command line.
    pub(crate) fn named(name: &str) -> Option<Resource> {
        Self::NAMES
            .iter()
            .find(|(_, n)| *n == name)
            .map(|(r, _)| *r)
    }
}

#[cfg(unix)]
impl Resource {
    /// `setrlimit` for this resource. A `match`, not a stored constant: the type of the
    /// resource argument differs between platforms.
    fn set(self, limit: &libc::rlimit) -> libc::c_int {
        // SAFETY: setrlimit reads the struct it is given; async-signal-safe, so it may run
        // between fork and exec.
        unsafe {
            match self {
                Resource::Cpu => libc::setrlimit(libc::RLIMIT_CPU, limit),
                Resource::Core => libc::setrlimit(libc::RLIMIT_CORE, limit),
                Resource::AddressSpace => libc::setrlimit(libc::RLIMIT_AS, limit),
                Resource::OpenFiles => libc::setrlimit(libc::RLIMIT_NOFILE, limit),
                Resource::Processes => libc::setrlimit(libc::RLIMIT_NPROC, limit),
                Resource::FileSize => libc::setrlimit(libc::RLIMIT_FSIZE, limit),
            }
        }
    }

    /// This process's (soft, hard) limit; infinity as `u64::MAX`.
    fn get(self) -> (u64, u64) {
        let mut limit = libc::rlimit {
            rlim_cur: libc::RLIM_INFINITY,
            rlim_max: libc::RLIM_INFINITY,
        };
        // SAFETY: getrlimit writes the struct it is given.
        let rc = unsafe {
            match self {
                Resource::Cpu => libc::getrlimit(libc::RLIMIT_CPU, &mut limit),
                Resource::Core => libc::getrlimit(libc::RLIMIT_CORE, &mut limit),
                Resource::AddressSpace => libc::getrlimit(libc::RLIMIT_AS, &mut limit),
                Resource::OpenFiles => libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit),
                Resource::Processes => libc::getrlimit(libc::RLIMIT_NPROC, &mut limit),
                Resource::FileSize => libc::getrlimit(libc::RLIMIT_FSIZE, &mut limit),
            }
        };
        if rc != 0 {
            return (u64::MAX, u64::MAX);
        }
        // rlim_t is u64 on most targets, narrower on some 32-bit ones.
        #[allow(clippy::useless_conversion)]
        let as_u64 = |v: libc::rlim_t| {
            if v == libc::RLIM_INFINITY {
                u64::MAX
            } else {
                u64::try_from(v).unwrap_or(u64::MAX)
            }
        };
        (as_u64(limit.rlim_cur), as_u64(limit.rlim_max))
    }
}

/// What is done in a program's process between fork and exec.
#[cfg(unix)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ChildSetup {
    /// The limits to set: (resource, soft, hard).
    pub(crate) set: Vec<(Resource, u64, u64)>,
    /// Above the pipes, descriptors up to this one are made close-on-exec where
    /// close_range(2) cannot do them all.
    max_fd: libc::c_int,
}

#[cfg(unix)]
impl ChildSetup {
    /// Sets these limits, (resource, soft, hard), and closes the descriptors above the
    /// pipes up to this process's own limit on open files where close_range(2) is
    /// missing (that limit bounds every descriptor the process can hold).
    pub(crate) fn new(set: Vec<(Resource, u64, u64)>) -> ChildSetup {
        let (open_soft, _) = Resource::OpenFiles.get();
        let max_fd = libc::c_int::try_from(open_soft.min(1 << 20)).unwrap_or(1 << 20);
        ChildSetup { set, max_fd }
    }

    /// Makes `command` start its program as `run_as` (when given) with this setup
    /// applied just before the exec: in a forked child, or in the launcher's own
    /// process before it execs in place.
    pub(crate) fn install(self, command: &mut std::process::Command, run_as: Option<RunAs>) {
        use std::os::unix::process::CommandExt;
        if let Some(user) = run_as {
            // std drops the supplementary groups (setgroups) before setuid.
            command.uid(user.uid).gid(user.gid);
        }
        // SAFETY: `apply` allocates nothing and makes only async-signal-safe calls, as
        // code between fork and exec must.
        unsafe {
            command.pre_exec(move || self.apply());
        }
    }

    /// Has every descriptor but stdin, stdout and stderr closed by the exec — the
    /// server's own are close-on-exec already, but a descriptor its process inherited
    /// without that flag (from whatever started it) would otherwise reach the program —
    /// then sets the
    /// limits, and `PR_SET_NO_NEW_PRIVS` on Linux (a setuid program such as `su` or
    /// `sudo` gains nothing). Runs in the child between fork and exec, so it allocates
    /// nothing and calls only async-signal-safe functions.
    pub(crate) fn apply(&self) -> std::io::Result<()> {
        close_on_exec_from(3, self.max_fd);
        // rlim_t is u64 on most targets, narrower on some 32-bit ones.
        #[allow(clippy::useless_conversion)]
        let raw = |v: u64| {
            if v == u64::MAX {
                libc::RLIM_INFINITY
            } else {
                libc::rlim_t::try_from(v).unwrap_or(libc::RLIM_INFINITY)
            }
        };
        for &(resource, soft, hard) in &self.set {
            let limit = libc::rlimit {
                rlim_cur: raw(soft),
                rlim_max: raw(hard),
            };
            if resource.set(&limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
        #[cfg(target_os = "linux")]
        {
            // SAFETY: prctl with integer arguments; async-signal-safe.
            if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
        Ok(())
    }
}

/// Marks descriptors `first` and above close-on-exec, so that the exec closes them:
/// close_range(2) with `CLOSE_RANGE_CLOEXEC` on Linux 5.11+, one by one up to `max_fd`
/// elsewhere. Not closed here: std reports a failed exec to the parent through a
/// close-on-exec pipe of its own in this range, and a child that cannot write it aborts
/// instead of the spawn saying why.
#[cfg(unix)]
fn close_on_exec_from(first: libc::c_int, max_fd: libc::c_int) {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: a raw syscall with integer arguments; async-signal-safe.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_close_range,
                first,
                libc::c_uint::MAX,
                libc::CLOSE_RANGE_CLOEXEC,
            )
        };
        if rc == 0 {
            return;
        }
    }
    for fd in first..=max_fd {
        // SAFETY: fcntl on a descriptor number; one that is not open fails harmlessly.
        unsafe {
            libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
        }
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    fn limit_of(rlimits: &ChildSetup, resource: Resource) -> Option<(u64, u64)> {
        rlimits
            .set
            .iter()
            .find(|(r, _, _)| *r == resource)
            .map(|&(_, soft, hard)| (soft, hard))
    }

    #[test]
    fn limits_follow_the_settings_the_timeout_and_the_user() {
        let timeout = Duration::from_secs(10);
        let grace = Duration::from_secs(5);
        let own_user = Isolation::default().child_setup(timeout, grace);
        assert_eq!(limit_of(&own_user, Resource::Core), Some((0, 0)));
        let (cpu_soft, cpu_hard) = limit_of(&own_user, Resource::Cpu).unwrap();
        assert!(cpu_soft <= 12 && cpu_hard <= 22 && cpu_soft <= cpu_hard);
        assert!(limit_of(&own_user, Resource::OpenFiles).unwrap().0 <= 1024);
        assert_eq!(
            limit_of(&own_user, Resource::Processes),
            None,
            "not set for the server's own user"
        );
        let other_user = Isolation {
            run_as: Some(RunAs { uid: 1, gid: 1 }),
            ..Isolation::default()
        };
        let (nproc, _) = limit_of(&other_user.child_setup(timeout, grace), Resource::Processes)
            .expect("set for a user of its own");
        assert!(nproc <= DEFAULT_PROCESSES);
        let none = Isolation {
            limits: CommandLimits::none(),
            ..Isolation::default()
        }
        .child_setup(Duration::MAX, Duration::MAX);
        let kinds: Vec<Resource> = none.set.iter().map(|(r, _, _)| *r).collect();
        assert_eq!(kinds, [Resource::Cpu, Resource::Core]);
        let (soft, hard) = limit_of(&none, Resource::Cpu).unwrap();
        assert!(soft <= hard, "a huge timeout saturates, never overflows");
    }

    #[test]
    fn users_are_resolved_or_refused_clearly() {
        // SAFETY: plain getters.
        let (euid, egid) = unsafe { (libc::geteuid(), libc::getegid()) };
        let me = Isolation::new(
            Some(&euid.to_string()),
            Some(&egid.to_string()),
            CommandLimits::default(),
        )
        .unwrap();
        assert_eq!(
            me.run_as,
            Some(RunAs {
                uid: euid,
                gid: egid
            })
        );
        let missing = Isolation::new(Some("no-such-user-here"), None, CommandLimits::default());
        assert!(missing.unwrap_err().contains("no user"));
        let group_only = Isolation::new(None, Some("x"), CommandLimits::default());
        assert!(group_only.unwrap_err().contains("--command-user"));
        let bad_group = Isolation::new(
            Some("root"),
            Some("no-such-group-here"),
            CommandLimits::default(),
        );
        assert!(bad_group.unwrap_err().contains("no group"));
        if euid != 0 {
            let root = Isolation::new(Some("root"), None, CommandLimits::default());
            assert!(root
                .unwrap_err()
                .contains("needs the server to run as root"));
        } else {
            let nobody = Isolation::new(Some("nobody"), None, CommandLimits::default()).unwrap();
            assert_ne!(nobody.run_as.unwrap().uid, 0);
        }
    }
}
