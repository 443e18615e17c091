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
use std::io::Write;
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
    let tmp = tempfile::Builder::new()
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
        let file = tmp.as_file().try_clone().with_context(ctx)?;
        let mut out = SyncingWriter::new(file);
        let written = write(&mut out).and_then(|()| out.flush().map_err(Into::into));
        let finished = out.finish();
        written.with_context(ctx)?;
        finished.with_context(ctx)?;
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

/// Bytes handed to the disk thread at a time.
const CHUNK: usize = 4 << 20;
/// The disk thread flushes to the device after this many bytes, so that the final fsync
/// has little left to wait for.
const SYNC_EVERY: usize = 32 << 20;

/// A writer that hands full buffers to a thread which writes them and syncs them to the
/// device as it goes: a big list is formatted on one core while the disk takes the
/// previous chunks, instead of formatting first and waiting for one long fsync after.
struct SyncingWriter {
    buf: Vec<u8>,
    tx: Option<std::sync::mpsc::SyncSender<Vec<u8>>>,
    disk: Option<std::thread::JoinHandle<std::io::Result<()>>>,
}

impl SyncingWriter {
    fn new(mut file: File) -> SyncingWriter {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(2);
        let disk = std::thread::spawn(move || -> std::io::Result<()> {
            let mut unsynced = 0usize;
            for chunk in rx {
                file.write_all(&chunk)?;
                unsynced += chunk.len();
                if unsynced >= SYNC_EVERY {
                    file.sync_data()?;
                    unsynced = 0;
                }
            }
            Ok(())
        });
        SyncingWriter {
            buf: Vec::with_capacity(CHUNK),
            tx: Some(tx),
            disk: Some(disk),
        }
    }

    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        let sent = self.tx.as_ref().map(|tx| tx.send(chunk).is_ok());
        if sent == Some(true) {
            return Ok(());
        }
        // The disk thread stopped: its error says why.
        match self.finish() {
            Err(e) => Err(e),
            Ok(()) => Err(std::io::Error::other("the writer thread stopped")),
        }
    }

    /// Waits for the disk thread and returns its outcome (once; later calls return Ok).
    fn finish(&mut self) -> std::io::Result<()> {
        drop(self.tx.take());
        match self.disk.take() {
            Some(handle) => handle
                .join()
                .unwrap_or_else(|_| Err(std::io::Error::other("the writer thread panicked"))),
            None => Ok(()),
        }
    }
}

impl Write for SyncingWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if self.buf.len() + data.len() > CHUNK && !self.buf.is_empty() {
            self.send()?;
        }
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}

impl Drop for SyncingWriter {
    fn drop(&mut self) {
        let _ = self.finish();
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::subscribers::{set_statuses, SubscriberList};

    fn addr(i: usize) -> SubscriberEmail {
        SubscriberEmail::parse(&format!("reader{i}@example.org")).unwrap()
    }

    fn write_list(path: &Path, n: usize) {
        let mut text = String::from("email,name,status,since,source,tags,country\n");
        for i in 0..n {
            text.push_str(&format!(
                "reader{i}@example.org,Reader {i},subscribed,2024-01-01,manual,,GE\n"
            ));
        }
        std::fs::write(path, text).unwrap();
    }

    #[test]
    fn concurrent_status_updates_from_many_threads_lose_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("subscribers.csv");
        let n = 200;
        write_list(&path, n);
        let handles: Vec<_> = (0..n)
            .map(|i| {
                let path = path.clone();
                std::thread::spawn(move || {
                    let status = if i % 3 == 0 {
                        Status::Bounced
                    } else {
                        Status::Unsubscribed
                    };
                    set_statuses(&path, &[(addr(i), status)]).unwrap()
                })
            })
            .collect();
        for (i, h) in handles.into_iter().enumerate() {
            assert_eq!(
                h.join().unwrap(),
                vec![addr(i)],
                "thread {i} sees its own change"
            );
        }
        let list = SubscriberList::load(&path).unwrap();
        assert_eq!(list.subscribers.len(), n);
        for (i, s) in list.subscribers.iter().enumerate() {
            assert_eq!(s.email, addr(i), "row order kept");
            let want = if i % 3 == 0 {
                Status::Bounced
            } else {
                Status::Unsubscribed
            };
            assert_eq!(s.status, want, "{}", s.email);
            assert_eq!(s.attrs["country"], "GE", "extra column kept");
        }
    }

    #[test]
    fn the_os_lock_alone_serialises_writers() {
        // Bypass the in-process batching: every thread opens, locks and rewrites the list
        // itself, as separate processes do.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("subscribers.csv");
        let n = 40;
        write_list(&path, n);
        let handles: Vec<_> = (0..n)
            .map(|i| {
                let path = path.clone();
                std::thread::spawn(move || {
                    let batch = vec![(i as u64, vec![(addr(i), Status::Unsubscribed)])];
                    apply_batch(&path, &batch).pop().unwrap().unwrap()
                })
            })
            .collect();
        for h in handles {
            assert_eq!(
                h.join().unwrap(),
                vec![StatusOutcome::Changed(Status::Subscribed)]
            );
        }
        let list = SubscriberList::load(&path).unwrap();
        assert!(list
            .subscribers
            .iter()
            .all(|s| s.status == Status::Unsubscribed));
    }

    #[test]
    fn status_update_is_idempotent_and_ignores_strangers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("subscribers.csv");
        write_list(&path, 2);
        let stranger = SubscriberEmail::parse("nobody@example.org").unwrap();
        let changes = [
            (addr(0), Status::Unsubscribed),
            (stranger.clone(), Status::Unsubscribed),
        ];
        assert_eq!(
            update_statuses(&path, &changes).unwrap(),
            vec![
                StatusOutcome::Changed(Status::Subscribed),
                StatusOutcome::NotFound
            ]
        );
        let after_first = std::fs::read(&path).unwrap();
        let modified = std::fs::metadata(&path).unwrap().modified().unwrap();
        assert_eq!(
            update_statuses(&path, &changes).unwrap(),
            vec![StatusOutcome::Unchanged, StatusOutcome::NotFound]
        );
        assert_eq!(std::fs::read(&path).unwrap(), after_first);
        assert_eq!(
            std::fs::metadata(&path).unwrap().modified().unwrap(),
            modified,
            "nothing changed, nothing written"
        );
        assert!(set_statuses(&path, &[(addr(0), Status::Unsubscribed)])
            .unwrap()
            .is_empty());
    }

    #[test]
    fn status_update_on_a_missing_list_is_an_error_and_creates_no_list() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("subscribers.csv");
        let e = update_statuses(&path, &[(addr(1), Status::Bounced)]).unwrap_err();
        assert!(format!("{e:#}").contains("does not exist"), "{e:#}");
        assert!(!path.exists());
    }

    #[cfg(unix)]
    #[test]
    fn rewrite_keeps_the_file_mode_and_new_lists_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("subscribers.csv");
        write_list(&path, 1);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        set_statuses(&path, &[(addr(0), Status::Bounced)]).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o640);

        let fresh = dir.path().join("new.csv");
        write_atomically(&fresh, |out| SubscriberList::default().write_csv(out)).unwrap();
        let mode = std::fs::metadata(&fresh).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn a_rewrite_larger_than_the_disk_chunks_arrives_whole_and_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.csv");
        let line = b"0123456789abcdefghijklmnopqrstuvwxyz\n";
        let n = (2 * CHUNK + CHUNK / 2) / line.len();
        write_atomically(&path, |out| {
            for i in 0..n {
                out.write_all(&line[i % 10..])?;
            }
            Ok(())
        })
        .unwrap();
        let got = std::fs::read(&path).unwrap();
        let mut want = Vec::new();
        for i in 0..n {
            want.extend_from_slice(&line[i % 10..]);
        }
        assert!(got.len() > 2 * CHUNK);
        assert!(got == want, "content differs");
    }

    #[test]
    fn a_failed_rewrite_leaves_the_old_file_and_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("subscribers.csv");
        write_list(&path, 3);
        let before = std::fs::read(&path).unwrap();
        let err = write_atomically(&path, |out| {
            out.write_all(b"email,status\n")?;
            anyhow::bail!("disk full (simulated)")
        })
        .unwrap_err();
        assert!(format!("{err:#}").contains("disk full"));
        assert_eq!(std::fs::read(&path).unwrap(), before);
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }
}
