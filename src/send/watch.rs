//! List watch: keeps watching the list during a run (its modification time, size and inode,
//! every half second) and re-reads it when it changes, so an address that unsubscribes
//! mid-run is skipped. A list that cannot be read any more (malformed, unreadable, removed)
//! is never replaced by the last good view: the watch is marked broken with the reason
//! (naming the file and line) and the engine stops the run before the next transaction.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::subscribers::{Status, SubscriberList};

use super::plan::{key_hash, Planned};

/// What identifies one version of the list file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FileStamp {
    modified: Option<std::time::SystemTime>,
    len: u64,
    #[cfg(unix)]
    inode: u64,
}

impl FileStamp {
    pub(crate) fn of(path: &Path) -> Option<FileStamp> {
        let m = std::fs::metadata(path).ok()?;
        Some(FileStamp {
            modified: m.modified().ok(),
            len: m.len(),
            #[cfg(unix)]
            inode: std::os::unix::fs::MetadataExt::ino(&m),
        })
    }
}

/// The subscribed addresses of the list, kept current during a run.
pub struct ListWatch {
    path: PathBuf,
    subscribed: RwLock<Arc<HashSet<u64>>>,
    stamp: std::sync::Mutex<Option<FileStamp>>,
    stop: AtomicBool,
    /// Why the list cannot be trusted any more (set once, never cleared during a run).
    broken: std::sync::Mutex<Option<String>>,
}

impl ListWatch {
    /// Starts from the list as planned (`stamp` taken before it was read).
    pub(crate) fn new(
        path: &Path,
        subscribers: &[Planned],
        stamp: Option<FileStamp>,
    ) -> Arc<ListWatch> {
        let set: HashSet<u64> = subscribers
            .iter()
            .map(|p| key_hash(&p.subscriber.email.key()))
            .collect();
        Arc::new(ListWatch {
            path: path.to_path_buf(),
            subscribed: RwLock::new(Arc::new(set)),
            stamp: std::sync::Mutex::new(stamp),
            stop: AtomicBool::new(false),
            broken: std::sync::Mutex::new(None),
        })
    }

    /// Why the list cannot be read any more, if it cannot: the run must stop.
    pub(crate) fn broken(&self) -> Option<String> {
        self.broken.lock().expect("list watch lock").clone()
    }

    /// Whether the address is (still) subscribed.
    pub(crate) fn is_subscribed(&self, key: &str) -> bool {
        let set = self.subscribed.read().expect("list watch lock").clone();
        set.contains(&key_hash(key))
    }

    /// Re-reads the list if the file changed; returns whether it did. A list that cannot be
    /// read (malformed, unreadable, removed) marks the watch broken (see [`ListWatch::broken`]).
    pub(crate) fn refresh(&self) -> bool {
        let now = FileStamp::of(&self.path);
        {
            let stamp = self.stamp.lock().expect("list watch lock");
            if *stamp == now {
                return false;
            }
        }
        if now.is_none() {
            self.mark_broken(format!(
                "the subscriber list `{}` disappeared during the run",
                self.path.display()
            ));
            return false;
        }
        let mut set: HashSet<u64> = HashSet::new();
        let read = SubscriberList::for_each(&self.path, |s| {
            if s.status == Status::Subscribed {
                set.insert(key_hash(&s.email.key()));
            }
            Ok(())
        });
        if let Err(e) = read {
            self.mark_broken(format!(
                "the subscriber list `{}` cannot be read any more: {e:#}",
                self.path.display()
            ));
            return false;
        }
        *self.subscribed.write().expect("list watch lock") = Arc::new(set);
        *self.stamp.lock().expect("list watch lock") = now;
        true
    }

    fn mark_broken(&self, why: String) {
        self.broken
            .lock()
            .expect("list watch lock")
            .get_or_insert(why);
    }

    /// Polls the file every `every` on a thread until [`ListWatch::shutdown`].
    pub(crate) fn spawn(self: &Arc<Self>, every: Duration) -> std::thread::JoinHandle<()> {
        let me = self.clone();
        std::thread::Builder::new()
            .name("list-watch".into())
            .spawn(move || {
                while !me.stop.load(Ordering::Relaxed) {
                    std::thread::park_timeout(every);
                    if me.stop.load(Ordering::Relaxed) {
                        break;
                    }
                    me.refresh();
                }
            })
            .expect("spawning the list watcher")
    }

    pub(crate) fn shutdown(&self, handle: std::thread::JoinHandle<()>) {
        self.stop.store(true, Ordering::Relaxed);
        handle.thread().unpark();
        let _ = handle.join();
    }
}
