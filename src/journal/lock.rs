//! The run lock: at most one `fortnight send` per journal at a time, held as an exclusive
//! lock on `<journal>.lock` for the length of a run.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// Holds the run lock: at most one `fortnight send` per journal at a time.
#[derive(Debug)]
pub(crate) struct RunLock {
    _file: std::fs::File,
}

impl RunLock {
    /// Takes the lock next to the journal (`<journal>.lock`), or fails naming the file.
    pub(crate) fn acquire(journal_path: &Path) -> Result<RunLock> {
        let path = lock_path(journal_path);
        if let Some(parent) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            crate::base::files::data_folder(parent)
                .with_context(|| format!("cannot prepare the folder `{}`", parent.display()))?;
        }
        crate::base::files::ensure_private_file(&path)
            .with_context(|| format!("cannot open the lock file `{}`", path.display()))?;
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .with_context(|| format!("cannot open the lock file `{}`", path.display()))?;
        match file.try_lock() {
            Ok(()) => Ok(RunLock { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => bail!(
                "another `fortnight send` is running with this journal (it holds `{}`); \
                 wait for it to finish",
                path.display()
            ),
            Err(std::fs::TryLockError::Error(e)) => {
                Err(e).with_context(|| format!("cannot lock `{}`", path.display()))
            }
        }
    }
}

fn lock_path(journal_path: &Path) -> PathBuf {
    let mut name = journal_path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_else(|| "journal".into());
    name.push(".lock");
    journal_path.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_one_send_at_a_time_holds_the_run_lock() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".fortnight/journal.sqlite");
        let first = RunLock::acquire(&path).unwrap();
        let err = RunLock::acquire(&path).unwrap_err();
        assert!(
            err.to_string().contains("another `fortnight send`"),
            "{err}"
        );
        drop(first);
        assert!(RunLock::acquire(&path).is_ok());
    }
}
