//! The command launcher: the server's own binary started as `… launch [--user UID:GID]
//! [--limit NAME=SOFT:HARD]… -- PROGRAM ARGS…`, which sets a registered command's
//! isolation up in its own process (descriptors closed, limits, no new privileges, user
//! and group; [`ChildSetup`]) and then execs the program in place.
//!
//! Why a launcher: setting these up between fork and exec (`pre_exec`, `uid`) keeps std
//! from starting the child with `posix_spawn` (a vfork that shares the parent's memory)
//! and makes it `fork` the whole server, copying its page tables — a cost that grows
//! with what the server holds (with 5,000 event streams open, `fork` and the `exec`
//! that unmaps the copy took ~17 % of the server's CPU in `perf`). The launcher is
//! started with `posix_spawn`, costs the same whatever the server's size, and the
//! program still starts with everything set before its first instruction.
//!
//! A launch that fails before the program runs (no such program, a limit refused) exits
//! with status [`FAILED_STATUS`] and one stderr line starting with [`FAILED_PREFIX`], which
//! the server reads as a failure to start.

// Only the binary (feature `cli`) is ever a launcher; the library only starts one.
#![cfg_attr(not(feature = "cli"), allow(dead_code))]

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use super::isolation::{ChildSetup, Resource, RunAs};

/// The word after the binary's leading arguments that makes it a launcher.
pub(crate) const SUBCOMMAND: &str = "launch";
/// The exit status of a launch that failed before the program ran (a shell's "cannot
/// execute"); a program's own 127 is told apart by [`FAILED_PREFIX`] on stderr.
pub(crate) const FAILED_STATUS: i32 = 127;
/// How the launcher's own failure line starts.
pub(crate) const FAILED_PREFIX: &str = "jobwire launch: ";

/// The binary to start as the launcher, with the arguments that come before
/// [`SUBCOMMAND`] (`serve` for the `jobwire` CLI).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Launcher {
    pub(crate) program: PathBuf,
    pub(crate) leading: Vec<String>,
}

impl Launcher {
    /// This process's own binary as the launcher, when `tail` (the arguments its server
    /// was started with) ends its command line: what comes between the binary and `tail`
    /// leads the launcher's arguments too. `/proc/self/exe` on Linux, so that a binary
    /// replaced on disk while the server runs still launches as the one running.
    pub(crate) fn this_binary(tail: &[String]) -> Option<Launcher> {
        let all: Vec<String> = std::env::args_os()
            .skip(1)
            .map(|a| a.into_string())
            .collect::<Result<_, _>>()
            .ok()?;
        let leading = all.len().checked_sub(tail.len())?;
        if all[leading..] != *tail {
            return None;
        }
        #[cfg(target_os = "linux")]
        let program = PathBuf::from("/proc/self/exe");
        #[cfg(not(target_os = "linux"))]
        let program = std::env::current_exe().ok()?;
        Some(Launcher {
            program,
            leading: all[..leading].to_vec(),
        })
    }

    /// The launcher's arguments for `program ARGS…` run as `run_as` with `setup`.
    pub(crate) fn args(
        &self,
        setup: &ChildSetup,
        run_as: Option<RunAs>,
        program: &std::path::Path,
        args: &[String],
    ) -> Vec<OsString> {
        let mut out: Vec<OsString> = self.leading.iter().map(OsString::from).collect();
        out.push(SUBCOMMAND.into());
        if let Some(user) = run_as {
            out.push("--user".into());
            out.push(format!("{}:{}", user.uid, user.gid).into());
        }
        for &(resource, soft, hard) in &setup.set {
            out.push("--limit".into());
            out.push(format!("{}={soft}:{hard}", resource.name()).into());
        }
        out.push("--".into());
        out.push(program.as_os_str().to_owned());
        out.extend(args.iter().map(OsString::from));
        out
    }
}

/// A launch as its arguments give it.
#[derive(Debug, PartialEq, Eq)]
struct Launch {
    run_as: Option<RunAs>,
    set: Vec<(Resource, u64, u64)>,
    program: String,
    args: Vec<String>,
}

/// Reads the arguments after [`SUBCOMMAND`].
fn parse(args: impl IntoIterator<Item = String>) -> Result<Launch, String> {
    let mut args = args.into_iter();
    let mut run_as = None;
    let mut set = Vec::new();
    loop {
        let Some(flag) = args.next() else {
            return Err("no program (after --)".into());
        };
        let value = match flag.as_str() {
            "--" => break,
            "--user" | "--limit" => args.next().ok_or_else(|| format!("{flag} needs a value"))?,
            other => return Err(format!("unknown argument {other:?}")),
        };
        if flag == "--user" {
            let parsed = value.split_once(':').and_then(|(u, g)| {
                Some(RunAs {
                    uid: u.parse().ok()?,
                    gid: g.parse().ok()?,
                })
            });
            run_as = Some(parsed.ok_or_else(|| format!("--user {value:?}: not UID:GID"))?);
        } else {
            let parsed = value.split_once('=').and_then(|(name, range)| {
                let (soft, hard) = range.split_once(':')?;
                Some((
                    Resource::named(name)?,
                    soft.parse().ok()?,
                    hard.parse().ok()?,
                ))
            });
            set.push(parsed.ok_or_else(|| format!("--limit {value:?}: not NAME=SOFT:HARD"))?);
        }
    }
    let program = args.next().ok_or("no program (after --)")?;
    Ok(Launch {
        run_as,
        set,
        program,
        args: args.collect(),
    })
}

/// `… launch ARGS`: sets the isolation up and execs the program; returns only when that
/// failed, with [`FAILED_STATUS`] after saying why on stderr.
pub(crate) fn main(args: impl IntoIterator<Item = String>) -> ExitCode {
    let error = match parse(args) {
        Ok(launch) => exec(launch),
        Err(e) => e,
    };
    eprintln!("{FAILED_PREFIX}{error}");
    ExitCode::from(FAILED_STATUS as u8)
}

#[cfg(unix)]
fn exec(launch: Launch) -> String {
    use std::os::unix::process::CommandExt;

    let mut command = std::process::Command::new(&launch.program);
    command.args(&launch.args);
    ChildSetup::new(launch.set).install(&mut command, launch.run_as);
    let error = command.exec();
    format!("cannot start {}: {error}", launch.program)
}

#[cfg(not(unix))]
fn exec(_launch: Launch) -> String {
    "the launcher runs on Unix only".into()
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn what_the_server_writes_the_launcher_reads_back() {
        let launcher = Launcher {
            program: "/proc/self/exe".into(),
            leading: strings(&["serve"]),
        };
        let setup = ChildSetup::new(vec![
            (Resource::Cpu, 12, 22),
            (Resource::Core, 0, 0),
            (Resource::AddressSpace, 1 << 32, u64::MAX),
        ]);
        let run_as = Some(RunAs {
            uid: 65534,
            gid: 65533,
        });
        let args = launcher.args(
            &setup,
            run_as,
            "/bin/sh".as_ref(),
            &strings(&["-c", "echo -- --user"]),
        );
        let args: Vec<String> = args.into_iter().map(|a| a.into_string().unwrap()).collect();
        assert_eq!(args[..2], strings(&["serve", SUBCOMMAND]));
        let launch = parse(args.into_iter().skip(2)).unwrap();
        assert_eq!(
            launch,
            Launch {
                run_as,
                set: setup.set.clone(),
                program: "/bin/sh".into(),
                args: strings(&["-c", "echo -- --user"]),
            }
        );
    }

    #[test]
    fn arguments_it_cannot_read_are_refused_with_the_reason() {
        let cases: [(&[&str], &str); 6] = [
            (&[], "no program"),
            (&["--"], "no program"),
            (&["--user"], "--user needs a value"),
            (&["--user", "1", "--", "x"], "not UID:GID"),
            (&["--limit", "stack=1:2", "--", "x"], "not NAME=SOFT:HARD"),
            (&["-x", "--", "x"], "unknown argument"),
        ];
        for (args, expected) in cases {
            let error = parse(strings(args)).unwrap_err();
            assert!(error.contains(expected), "{args:?}: {error}");
        }
    }

    #[test]
    fn the_launcher_is_this_binary_only_when_its_arguments_end_the_command_line() {
        let tail: Vec<String> = std::env::args().skip(1).collect();
        let found = Launcher::this_binary(&tail).unwrap();
        assert!(found.leading.is_empty(), "{found:?}");
        let not_ours = strings(&["--no-such-argument-here"]);
        assert_eq!(Launcher::this_binary(&not_ours), None);
    }
}
