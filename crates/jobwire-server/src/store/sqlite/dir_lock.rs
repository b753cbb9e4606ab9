//! One server per data directory: an exclusive lock on `DIR/jobwire.lock`, held while the
//! store is open.
//!
//! Opening the store ends the leases of every unfinished job in it (the previous process
//! is taken to be gone), so a second server on the same directory would fail the first
//! one's running jobs. The lock is `flock(2)`: the kernel releases it when the process
//! dies, however it dies, so a crash never leaves a stale lock behind. The holder writes
//! its pid into the file, for the error the next one gets.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::Path;

use crate::store::StoreError;

/// The lock file inside the data directory.
pub(super) const LOCK_FILE: &str = "jobwire.lock";

/// A held lock on a data directory; dropping it releases the lock.
#[derive(Debug)]
pub(super) struct DirLock {
    _file: File,
}

impl DirLock {
    /// Takes the lock on `dir`, or fails at once naming the process that holds it.
    pub(super) fn take(dir: &Path) -> Result<DirLock, StoreError> {
        let path = dir.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| StoreError::with_source(format!("opening {}", path.display()), e))?;
        if !try_lock(&file) {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim();
            let who = if holder.is_empty() {
                String::new()
            } else {
                format!(" (pid {holder})")
            };
            return Err(StoreError::new(format!(
                "the data directory {} is in use by another jobwire server{who}; \
                 one server per data directory (several servers share a PostgreSQL \
                 database instead)",
                dir.display()
            )));
        }
        // Ours now: say who holds it.
        let pid = std::process::id().to_string();
        let _ = file
            .set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| file.write_all(pid.as_bytes()));
        Ok(DirLock { _file: file })
    }
}

/// Takes an exclusive lock on `file` without waiting; false when another open file
/// description holds it.
#[cfg(unix)]
fn try_lock(file: &File) -> bool {
    use std::os::unix::io::AsRawFd;
    // SAFETY: flock on a descriptor this `File` owns and keeps open for the call.
    unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) == 0 }
}

/// Elsewhere there is no lock: one server per directory is the operator's to keep.
#[cfg(not(unix))]
fn try_lock(_file: &File) -> bool {
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_until_the_first_lets_go() {
        let dir = std::env::temp_dir().join(format!("jobwire-lock-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let first = DirLock::take(&dir).unwrap();
        let refused = DirLock::take(&dir).unwrap_err().to_string();
        assert!(
            refused.contains("in use by another jobwire server"),
            "{refused}"
        );
        assert!(
            refused.contains(&format!("pid {}", std::process::id())),
            "{refused}"
        );
        drop(first);
        let again = DirLock::take(&dir).unwrap();
        drop(again);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
