//! Writing the list safely: one writer at a time, and never a half-written file.
//!
//! Every read-modify-write of the list happens under an exclusive OS lock on a sidecar file
//! (`subscribers.csv.lock`, next to the list and never deleted, so every process locks the
//! same inode), held across reload, change and write. The write itself goes to a temporary
//! file in the same folder, is fsynced, renamed over the list, and the folder is fsynced: a
//! crash leaves the old list or the new one, never a mix. The list's file mode is kept
//! (0600 for a new list: it holds addresses).
//!
//! Status updates ([`update_statuses`]) come from many places at once: the unsubscribe
//! endpoint (hundreds of concurrent POSTs), bounce processing, a send marking 5.1.x
//! bounces. Within one process, concurrent callers for the same list are batched ("group
//! commit"): one thread takes the lock and applies every waiting caller's changes, in
//! arrival order, in a single rewrite; each caller gets the outcome of its own changes, as
//! if the calls had run one after the other. Across processes the OS lock serialises.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, OnceLock};

use anyhow::{anyhow, Context, Result};

use super::list::Table;
use super::{Status, SubscriberEmail};

/// The sidecar lock file of a list.
pub fn lock_path(list: &Path) -> PathBuf {
    let mut name = list
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_else(|| "subscribers.csv".into());
    name.push(".lock");
    list.with_file_name(name)
}

/// Holds the list's exclusive lock until dropped.
pub struct ListLock {
    _file: File,
}

/// Takes the exclusive lock of the list at `list`, waiting for other holders.
pub fn lock_list(list: &Path) -> Result<ListLock> {
    let path = lock_path(list);
    let mut opts = OpenOptions::new();
    opts.create(true).truncate(false).write(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let file = opts.open(&path).with_context(|| {
        format!(
            "failed to open the lock file `{}` (is the list's folder writable?)",
            path.display()
        )
    })?;
    file.lock()
        .with_context(|| format!("failed to lock `{}`", path.display()))?;
    Ok(ListLock { _file: file })
}

/// Replaces `path` atomically with what `write` produces: temp file in the same folder,
/// write, fsync, keep the old file's mode (0600 for a new file), rename, fsync the folder.
/// On any error the old file is untouched and the temp file removed.
pub fn write_atomically(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> Result<()>,
) -> Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "list".to_string());
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{file_name}."))
        .suffix(".tmp")
        .tempfile_in(&dir)
        .with_context(|| {
            format!(
                "failed to create a temporary file in `{}` to rewrite `{}`",
                dir.display(),
                path.display()
            )
        })?;
    let ctx = || format!("failed to write `{}`", tmp_display(path));
    {
        let mut out = BufWriter::with_capacity(1 << 18, tmp.as_file_mut());
        write(&mut out).with_context(ctx)?;
        out.flush().with_context(ctx)?;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = match std::fs::metadata(path) {
            Ok(m) => m.permissions().mode() & 0o7777,
            Err(_) => 0o600,
        };
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(mode))
            .with_context(ctx)?;
    }
    tmp.as_file().sync_all().with_context(ctx)?;
    tmp.persist(path)
        .map_err(|e| e.error)
        .with_context(|| format!("failed to replace `{}`", path.display()))?;
    sync_dir(&dir);
    Ok(())
}

fn tmp_display(path: &Path) -> String {
    format!("{} (temporary copy)", path.display())
}

/// Makes the rename durable. Not all systems can fsync a folder; that is not an error.
fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// What a status update did to one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusOutcome {
    /// The status changed from this one.
    Changed(Status),
    /// The address already had the requested status.
    Unchanged,
    /// The address is not in the list.
    NotFound,
}

type BatchResult = std::result::Result<Vec<StatusOutcome>, String>;

#[derive(Default)]
struct QueueState {
    next_ticket: u64,
    pending: Vec<(u64, Vec<(SubscriberEmail, Status)>)>,
    busy: bool,
    done: HashMap<u64, BatchResult>,
}

#[derive(Default)]
struct Queue {
    state: Mutex<QueueState>,
    wake: Condvar,
}

fn queue_for(path: &Path) -> Arc<Queue> {
    static QUEUES: OnceLock<Mutex<HashMap<PathBuf, Arc<Queue>>>> = OnceLock::new();
    let key = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut map = QUEUES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    map.entry(key).or_default().clone()
}

/// Sets statuses under the list lock (reload, apply, atomic write) and reports, per change
/// in order, what happened. Changes of concurrent callers in this process are applied in
/// one rewrite. Nothing is written when nothing changes.
pub fn update_statuses(
    path: &Path,
    changes: &[(SubscriberEmail, Status)],
) -> Result<Vec<StatusOutcome>> {
    if changes.is_empty() {
        return Ok(Vec::new());
    }
    let queue = queue_for(path);
    let mut st = queue.state.lock().unwrap_or_else(|e| e.into_inner());
    let ticket = st.next_ticket;
    st.next_ticket += 1;
    st.pending.push((ticket, changes.to_vec()));
    loop {
        if let Some(result) = st.done.remove(&ticket) {
            return result.map_err(|msg| anyhow!(msg));
        }
        if st.busy {
            st = queue.wake.wait(st).unwrap_or_else(|e| e.into_inner());
            continue;
        }
        // Become the writer for everything waiting now.
        st.busy = true;
        let batch = std::mem::take(&mut st.pending);
        drop(st);
        let tickets: Vec<u64> = batch.iter().map(|(t, _)| *t).collect();
        let mut guard = BatchGuard {
            queue: &queue,
            tickets,
            results: None,
        };
        guard.results = Some(apply_batch(path, &batch));
        drop(guard);
        st = queue.state.lock().unwrap_or_else(|e| e.into_inner());
    }
}

/// Publishes a batch's results (or, if the writer panicked, an error for each caller) and
/// hands the writer role on.
struct BatchGuard<'q> {
    queue: &'q Queue,
    tickets: Vec<u64>,
    results: Option<Vec<BatchResult>>,
}

impl Drop for BatchGuard<'_> {
    fn drop(&mut self) {
        let mut st = self.queue.state.lock().unwrap_or_else(|e| e.into_inner());
        let results = self.results.take().unwrap_or_default();
        let mut results = results.into_iter();
        for t in &self.tickets {
            let r = results
                .next()
                .unwrap_or_else(|| Err("the list update was interrupted".to_string()));
            st.done.insert(*t, r);
        }
        st.busy = false;
        self.queue.wake.notify_all();
    }
}

fn apply_batch(path: &Path, batch: &[(u64, Vec<(SubscriberEmail, Status)>)]) -> Vec<BatchResult> {
    let fail = |e: anyhow::Error| {
        let msg = format!("{e:#}");
        batch.iter().map(|_| Err(msg.clone())).collect()
    };
    let _lock = match lock_list(path) {
        Ok(l) => l,
        Err(e) => return fail(e),
    };
    let mut table = match Table::load(path) {
        Ok(t) => t,
        Err(e) => return fail(e),
    };
    let mut changed_any = false;
    let results: Vec<Vec<StatusOutcome>> = batch
        .iter()
        .map(|(_, changes)| {
            changes
                .iter()
                .map(|(email, status)| match table.find(email.as_str()) {
                    None => StatusOutcome::NotFound,
                    Some(i) if table.status(i) == *status => StatusOutcome::Unchanged,
                    Some(i) => {
                        let from = table.status(i);
                        table.set_status(i, *status);
                        changed_any = true;
                        StatusOutcome::Changed(from)
                    }
                })
                .collect()
        })
        .collect();
    if changed_any {
        if let Err(e) = write_atomically(path, |out| table.write_csv(out)) {
            return fail(e);
        }
    }
    results.into_iter().map(Ok).collect()
}
