//! Which runs are alive: a run holds an OS lock on a file named after its sync for as long as
//! its process lives.
//!
//! A run record says `running` until the run ends, but a process killed with SIGKILL (or a
//! machine that lost power) never ends it. The heartbeat tells only after a while (see
//! `wharf_store::STALE_AFTER`); the lock tells at once: the kernel releases it when the
//! process dies, however it dies. So a new run that gets the lock knows that every `running`
//! run of its sync in this `$WHARF_HOME` is dead, closes them and aborts their uploads, and
//! starts without waiting. A run that finds the lock held is told which process holds it.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read as _, Seek as _, Write as _};
use std::path::{Path, PathBuf};

/// The lock of one sync's runs, held until dropped.
#[derive(Debug)]
pub(crate) struct RunLock {
    _file: File,
}

/// What trying the lock found.
pub(crate) enum Acquired {
    Held(RunLock),
    /// Another live process runs this sync; its pid when it wrote one.
    Busy {
        pid: Option<u32>,
    },
}

impl RunLock {
    /// The lock file of `sync_id` under `dir` (created with the folder if missing).
    fn path(dir: &Path, sync_id: &str) -> PathBuf {
        let safe: String = sync_id
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        dir.join(format!("sync-{safe}.lock"))
    }

    /// Tries to take the lock without waiting.
    pub(crate) fn try_acquire(dir: &Path, sync_id: &str) -> std::io::Result<Acquired> {
        std::fs::create_dir_all(dir)?;
        let path = Self::path(dir, sync_id);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)?;
        match file.try_lock() {
            Ok(()) => {
                file.set_len(0)?;
                file.rewind()?;
                write!(file, "{}", std::process::id())?;
                file.flush()?;
                Ok(Acquired::Held(RunLock { _file: file }))
            }
            Err(TryLockError::WouldBlock) => {
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                Ok(Acquired::Busy {
                    pid: text.trim().parse().ok(),
                })
            }
            Err(TryLockError::Error(e)) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_lock_is_busy_until_dropped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = match RunLock::try_acquire(dir.path(), "s1").expect("lock") {
            Acquired::Held(lock) => lock,
            Acquired::Busy { .. } => panic!("free at first"),
        };
        match RunLock::try_acquire(dir.path(), "s1").expect("lock") {
            Acquired::Busy { pid } => assert_eq!(pid, Some(std::process::id())),
            Acquired::Held(_) => panic!("held by the first"),
        }
        assert!(matches!(
            RunLock::try_acquire(dir.path(), "s2").expect("lock"),
            Acquired::Held(_)
        ));
        drop(first);
        assert!(matches!(
            RunLock::try_acquire(dir.path(), "s1").expect("lock"),
            Acquired::Held(_)
        ));
    }
}
