//! One process per journal directory: an exclusive lock on the `lock` file
//! in it, taken before anything in the directory is read or changed.
//!
//! The lock is `File::try_lock` (`flock` on Unix, `LockFileEx` on Windows):
//! it belongs to the open file, so a second opener in the same process is
//! refused too, and the operating system drops it when the process dies, so
//! a killed process never leaves a stale lock. The file stays in the
//! directory; only the lock on it means anything. The holder writes its pid
//! into it so that the refusal can name it.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use super::io_error;
use crate::error::WasenderError;

/// The lock file's name in the journal directory.
pub(crate) const LOCK_FILE: &str = "lock";

/// How long a held lock is retried before the opener is refused.
///
/// A lock can outlive its release by a moment: when another thread of the
/// releasing process starts a child process, the child holds a copy of every
/// descriptor, the lock file's included, from `fork` until `exec` closes it
/// (close-on-exec). A restart in the same process, or a tool started right
/// after a stop, would otherwise be refused by that window. A real holder is
/// still refused, this much later.
const LOCK_PATIENCE: Duration = Duration::from_millis(250);

/// The held lock on a journal directory; released when dropped.
#[derive(Debug)]
pub(crate) struct DirLock {
    /// `None` where the file system cannot lock (see [`DirLock::acquire`]).
    _file: Option<File>,
}

impl DirLock {
    /// Locks `dir` (which must exist), or fails with
    /// [`WasenderError::JournalLocked`] naming the directory and the holder's
    /// pid when it can be read. A refused attempt changes nothing (the lock
    /// file already exists when someone holds it).
    ///
    /// Where the file system does not support locking at all, the journal
    /// opens unlocked with a `log::warn!`, as before locks existed.
    pub(crate) fn acquire(dir: &Path) -> crate::error::Result<Self> {
        let path = dir.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| io_error(&path, e))?;
        let patience = Instant::now() + LOCK_PATIENCE;
        let locked = loop {
            match file.try_lock() {
                Err(TryLockError::WouldBlock) if Instant::now() < patience => {
                    std::thread::sleep(Duration::from_millis(5));
                }
                other => break other,
            }
        };
        match locked {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(WasenderError::JournalLocked {
                    path: dir.to_path_buf(),
                    pid: read_pid(&mut file),
                })
            }
            Err(TryLockError::Error(e)) if e.kind() == io::ErrorKind::Unsupported => {
                log::warn!(
                    "journal {}: the file system cannot lock {LOCK_FILE} ({e}); make sure only \
                     one process opens this directory",
                    dir.display()
                );
                return Ok(Self { _file: None });
            }
            Err(TryLockError::Error(e)) => return Err(io_error(&path, e)),
        }
        write_pid(&mut file).map_err(|e| io_error(&path, e))?;
        Ok(Self { _file: Some(file) })
    }
}

/// The pid the holder wrote, if the file holds one (it may be empty for a
/// moment while the holder writes it, and unreadable where locks are mandatory).
fn read_pid(file: &mut File) -> Option<u32> {
    let mut text = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.take(32).read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

fn write_pid(file: &mut File) -> io::Result<()> {
    file.set_len(0)?;
    file.seek(SeekFrom::Start(0))?;
    writeln!(file, "{}", std::process::id())
}
