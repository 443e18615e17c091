//! The token index of the running server, rebuilt when the list file changes.
//!
//! Tokens do not contain the address, so the server needs an index of the list to resolve
//! them (see [`crate::token::TokenIndex`]). It is built at startup and rebuilt lazily:
//! whenever the list file is no longer the one the index was built from (a subscriber was
//! imported, or removed, since), the list is read again before a token is answered, so a
//! removed address's token no longer resolves (400). Our own unsubscribes do not need a
//! rebuild: they change only statuses, and the index holds every row whatever its status,
//! so the writer tells the index the list it left ([`Tokens::written`]).

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use anyhow::{Context, Result};

use super::ServeLog;
use crate::subscribers::{SubscriberEmail, SubscriberList};
use crate::token::{Keyring, TokenError, TokenIndex};

/// What identifies one version of the list file.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
}

fn stamp_of(path: &Path) -> Option<Stamp> {
    let meta = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(&meta);
    #[cfg(not(unix))]
    let inode = 0;
    Some(Stamp {
        modified: meta.modified().ok(),
        len: meta.len(),
        inode,
    })
}

struct Snapshot {
    index: TokenIndex,
    /// The list file the index stands for (moved on by our own status-only rewrites).
    stamp: std::sync::Mutex<Option<Stamp>>,
    subscribers: usize,
}

impl Snapshot {
    fn stamp(&self) -> Option<Stamp> {
        self.stamp
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }
}

/// The list file's identity before and after one of the server's own rewrites.
#[derive(Debug, Clone)]
pub struct Rewrite {
    before: Option<Stamp>,
    after: Option<Stamp>,
}

/// Runs `rewrite` (a status-only change of the list at `path`) and notes the file's
/// identity around it.
pub fn rewriting<T>(path: &Path, rewrite: impl FnOnce() -> T) -> (T, Rewrite) {
    let before = stamp_of(path);
    let out = rewrite();
    let after = stamp_of(path);
    (out, Rewrite { before, after })
}

/// Resolves tokens against the current list.
pub struct Tokens {
    path: PathBuf,
    keyring: Keyring,
    list_id: String,
    current: RwLock<Arc<Snapshot>>,
    rebuild: tokio::sync::Mutex<()>,
    /// Where a failed rebuild is told.
    log: Arc<dyn ServeLog>,
}

impl Tokens {
    /// Reads the list and builds the first index (blocking).
    pub fn load(
        path: &Path,
        keyring: Keyring,
        list_id: &str,
        log: Arc<dyn ServeLog>,
    ) -> Result<Tokens> {
        let snapshot = build(path, &keyring, list_id)?;
        Ok(Tokens {
            path: path.to_path_buf(),
            keyring,
            list_id: list_id.to_string(),
            current: RwLock::new(Arc::new(snapshot)),
            rebuild: tokio::sync::Mutex::new(()),
            log,
        })
    }

    /// How many addresses the current index holds.
    pub fn indexed(&self) -> usize {
        self.snapshot().subscribers
    }

    fn snapshot(&self) -> Arc<Snapshot> {
        self.current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// After the server's own status-only rewrite: if the index stood for the list as it
    /// was before, it stands for the list as it is now.
    pub fn written(&self, rewrite: &Rewrite) {
        let snap = self.snapshot();
        let mut stamp = snap
            .stamp
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if *stamp == rewrite.before {
            *stamp = rewrite.after.clone();
        }
    }

    /// The subscriber a token names; rebuilds the index first if the list file changed
    /// since the last build (an address added or removed).
    pub async fn resolve(&self, token: &str) -> Result<SubscriberEmail, TokenError> {
        let snap = self.snapshot();
        let answer = snap.index.resolve(token);
        // A token that is not ours at all needs no fresher list.
        if !matches!(answer, Ok(_) | Err(TokenError::NoMatch))
            || stamp_of(&self.path) == snap.stamp()
        {
            return answer;
        }
        {
            let _one_rebuild_at_a_time = self.rebuild.lock().await;
            let snap = self.snapshot();
            if stamp_of(&self.path) != snap.stamp() {
                let (path, keyring, list_id) = (
                    self.path.clone(),
                    self.keyring.clone(),
                    self.list_id.clone(),
                );
                match tokio::task::spawn_blocking(move || build(&path, &keyring, &list_id)).await {
                    Ok(Ok(fresh)) => {
                        *self
                            .current
                            .write()
                            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(fresh);
                    }
                    Ok(Err(err)) => {
                        self.log.warning(&format!(
                            "keeping the previous token index: {}",
                            crate::base::error_chain(err.as_ref())
                        ));
                    }
                    Err(join) => {
                        self.log
                            .warning(&format!("token index rebuild failed: {join}"));
                    }
                }
            }
        }
        self.snapshot().index.resolve(token)
    }
}

fn build(path: &Path, keyring: &Keyring, list_id: &str) -> Result<Snapshot> {
    // Stamp first: a change during the read makes the next miss rebuild again.
    let stamp = stamp_of(path);
    let list = SubscriberList::load(path)
        .with_context(|| format!("cannot read the subscriber list `{}`", path.display()))?;
    let index = TokenIndex::build(
        keyring.clone(),
        list_id,
        list.subscribers.iter().map(|s| &s.email),
    );
    Ok(Snapshot {
        index,
        stamp: std::sync::Mutex::new(stamp),
        subscribers: list.subscribers.len(),
    })
}
