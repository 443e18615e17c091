//! Plan: who gets the issue in this run, in list order, and who does not and why.
//!
//! The list says who is subscribed (read at send time, so an address that unsubscribed,
//! bounced or complained since the last run gets nothing more); the journal says what earlier
//! runs did: `sent` is never resent, `failed` is reported and not retried, `ambiguous` is
//! skipped unless `--resend-ambiguous`, `deferred` is retried once its backoff has passed.
//! A dry-run plans without the journal (as if nothing had been sent yet).
//!
//! [`ListWatch`] keeps watching the list during a run (its modification time, every half
//! second) and re-reads it when it changes, so an address unsubscribed mid-run is skipped.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::journal::{RowSummary, State};
use crate::subscribers::{Status, Subscriber, SubscriberList};

use super::deliver::Planned;

/// Options that shape a plan.
#[derive(Debug, Clone)]
pub struct PlanOptions {
    /// At most this many recipients.
    pub limit: Option<u64>,
    pub resend_ambiguous: bool,
    pub now: DateTime<Utc>,
}

/// Rows of this issue that this run leaves alone because of what the journal says.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Skipped {
    pub already_sent: u64,
    pub failed: u64,
    pub ambiguous: u64,
    pub deferred_not_due: u64,
    /// The earliest time a deferred row may be retried.
    pub next_retry_at: Option<DateTime<Utc>>,
    /// Left for a later run by `--limit`.
    pub beyond_limit: u64,
}

/// The recipients of one run.
#[derive(Debug, Default)]
pub struct Plan {
    pub recipients: Vec<Planned>,
    /// Rows of the list that are not subscribed, by status.
    pub suppressed: BTreeMap<Status, u64>,
    pub skipped: Skipped,
    /// Planned rows that earlier runs deferred (their backoff passed).
    pub retrying_deferred: u64,
    /// Planned rows that earlier runs left ambiguous (`--resend-ambiguous`).
    pub resending_ambiguous: u64,
    /// Rows in the list.
    pub list_rows: u64,
}

impl Plan {
    pub fn suppressed_total(&self) -> u64 {
        self.suppressed.values().sum()
    }
}

/// A 64-bit hash of a subscriber key (sets of these stay small for million-row lists).
pub fn key_hash(key: &str) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut h);
    h.finish()
}

/// Plans a run from the list (in file order) and, unless it is a dry-run, the journal rows
/// of the issue.
pub fn plan(
    subscribers: Vec<Subscriber>,
    journal: Option<&HashMap<String, RowSummary>>,
    opts: &PlanOptions,
) -> Plan {
    let mut p = Plan {
        list_rows: subscribers.len() as u64,
        ..Plan::default()
    };
    let limit = opts.limit.unwrap_or(u64::MAX);
    let mut seen: HashSet<u64> = HashSet::with_capacity(subscribers.len().min(1 << 20));
    for s in subscribers {
        if s.status != Status::Subscribed {
            *p.suppressed.entry(s.status).or_default() += 1;
            continue;
        }
        let key = s.email.key();
        if !seen.insert(key_hash(&key)) {
            continue;
        }
        let row = journal.and_then(|j| j.get(&key));
        let mut retrying = false;
        let mut resending = false;
        if let Some(row) = row {
            match row.state {
                State::Sent => {
                    p.skipped.already_sent += 1;
                    continue;
                }
                State::Failed => {
                    p.skipped.failed += 1;
                    continue;
                }
                State::Ambiguous | State::InFlight if !opts.resend_ambiguous => {
                    p.skipped.ambiguous += 1;
                    continue;
                }
                State::Ambiguous | State::InFlight => resending = true,
                State::Deferred => {
                    if let Some(next) = row.next_attempt_at {
                        if next > opts.now {
                            p.skipped.deferred_not_due += 1;
                            p.skipped.next_retry_at =
                                Some(p.skipped.next_retry_at.map_or(next, |t| t.min(next)));
                            continue;
                        }
                    }
                    retrying = true;
                }
                State::Pending | State::Suppressed => {}
            }
        }
        if p.recipients.len() as u64 >= limit {
            p.skipped.beyond_limit += 1;
            continue;
        }
        p.retrying_deferred += u64::from(retrying);
        p.resending_ambiguous += u64::from(resending);
        p.recipients.push(Planned {
            subscriber: s,
            prior_attempts: row.map_or(0, |r| r.attempts),
        });
    }
    p
}

/// What identifies one version of the list file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileStamp {
    modified: Option<std::time::SystemTime>,
    len: u64,
    #[cfg(unix)]
    inode: u64,
}

impl FileStamp {
    pub fn of(path: &Path) -> Option<FileStamp> {
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
}

impl ListWatch {
    /// Starts from the list as planned (`stamp` taken before it was read).
    pub fn new(path: &Path, subscribers: &[Planned], stamp: Option<FileStamp>) -> Arc<ListWatch> {
        let set: HashSet<u64> = subscribers
            .iter()
            .map(|p| key_hash(&p.subscriber.email.key()))
            .collect();
        Arc::new(ListWatch {
            path: path.to_path_buf(),
            subscribed: RwLock::new(Arc::new(set)),
            stamp: std::sync::Mutex::new(stamp),
            stop: AtomicBool::new(false),
        })
    }

    /// Whether the address is (still) subscribed.
    pub fn is_subscribed(&self, key: &str) -> bool {
        let set = self.subscribed.read().expect("list watch lock").clone();
        set.contains(&key_hash(key))
    }

    /// Re-reads the list if the file changed; returns whether it did. A list that cannot be
    /// read (being rewritten, say) keeps the previous view and is retried next time.
    pub fn refresh(&self) -> bool {
        let now = FileStamp::of(&self.path);
        {
            let stamp = self.stamp.lock().expect("list watch lock");
            if *stamp == now {
                return false;
            }
        }
        let Ok(list) = SubscriberList::load(&self.path) else {
            return false;
        };
        let set: HashSet<u64> = list
            .subscribers
            .iter()
            .filter(|s| s.status == Status::Subscribed)
            .map(|s| key_hash(&s.email.key()))
            .collect();
        *self.subscribed.write().expect("list watch lock") = Arc::new(set);
        *self.stamp.lock().expect("list watch lock") = now;
        true
    }

    /// Polls the file every `every` on a thread until [`ListWatch::shutdown`].
    pub fn spawn(self: &Arc<Self>, every: Duration) -> std::thread::JoinHandle<()> {
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

    pub fn shutdown(&self, handle: std::thread::JoinHandle<()>) {
        self.stop.store(true, Ordering::Relaxed);
        handle.thread().unpark();
        let _ = handle.join();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::subscribers::SubscriberEmail;

    fn sub(addr: &str, status: Status) -> Subscriber {
        Subscriber {
            email: SubscriberEmail::parse(addr).unwrap(),
            name: String::new(),
            status,
            since: String::new(),
            source: String::new(),
            tags: vec![],
            attrs: Default::default(),
        }
    }

    fn row(state: State, attempts: u32, next: Option<DateTime<Utc>>) -> RowSummary {
        RowSummary {
            state,
            attempts,
            next_attempt_at: next,
        }
    }

    fn opts() -> PlanOptions {
        PlanOptions {
            limit: None,
            resend_ambiguous: false,
            now: Utc::now(),
        }
    }

    fn addresses(p: &Plan) -> Vec<String> {
        p.recipients
            .iter()
            .map(|r| r.subscriber.email.to_string())
            .collect()
    }

    #[test]
    fn a_rerun_skips_sent_failed_and_ambiguous_and_retries_due_deferred_rows() {
        let now = Utc::now();
        let list = vec![
            sub("sent@a.org", Status::Subscribed),
            sub("failed@a.org", Status::Subscribed),
            sub("ambiguous@a.org", Status::Subscribed),
            sub("due@a.org", Status::Subscribed),
            sub("later@a.org", Status::Subscribed),
            sub("new@a.org", Status::Subscribed),
            sub("pending@a.org", Status::Subscribed),
            sub("gone@a.org", Status::Unsubscribed),
            sub("bounced@a.org", Status::Bounced),
        ];
        let journal: HashMap<String, RowSummary> = [
            ("sent@a.org", row(State::Sent, 1, None)),
            ("failed@a.org", row(State::Failed, 1, None)),
            ("ambiguous@a.org", row(State::Ambiguous, 1, None)),
            (
                "due@a.org",
                row(State::Deferred, 2, Some(now - chrono::Duration::seconds(1))),
            ),
            (
                "later@a.org",
                row(State::Deferred, 1, Some(now + chrono::Duration::hours(1))),
            ),
            ("pending@a.org", row(State::Pending, 0, None)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let p = plan(list.clone(), Some(&journal), &PlanOptions { now, ..opts() });
        assert_eq!(addresses(&p), ["due@a.org", "new@a.org", "pending@a.org"]);
        assert_eq!(p.recipients[0].prior_attempts, 2);
        assert_eq!(p.skipped.already_sent, 1);
        assert_eq!(p.skipped.failed, 1);
        assert_eq!(p.skipped.ambiguous, 1);
        assert_eq!(p.skipped.deferred_not_due, 1);
        assert_eq!(p.retrying_deferred, 1);
        assert_eq!(p.suppressed_total(), 2);

        let again = plan(
            list,
            Some(&journal),
            &PlanOptions {
                resend_ambiguous: true,
                now,
                ..opts()
            },
        );
        assert_eq!(
            addresses(&again),
            ["ambiguous@a.org", "due@a.org", "new@a.org", "pending@a.org"]
        );
        assert_eq!(again.resending_ambiguous, 1);
    }

    #[test]
    fn without_a_journal_everyone_subscribed_is_planned_in_list_order_up_to_the_limit() {
        let list = vec![
            sub("c@a.org", Status::Subscribed),
            sub("a@a.org", Status::Complained),
            sub("b@a.org", Status::Subscribed),
            sub("d@a.org", Status::Subscribed),
        ];
        let p = plan(
            list,
            None,
            &PlanOptions {
                limit: Some(2),
                ..opts()
            },
        );
        assert_eq!(addresses(&p), ["c@a.org", "b@a.org"]);
        assert_eq!(p.skipped.beyond_limit, 1);
        assert_eq!(p.suppressed.get(&Status::Complained), Some(&1));
    }

    #[test]
    fn the_same_address_twice_is_planned_once() {
        let list = vec![
            sub("Anna@a.org", Status::Subscribed),
            sub("anna@A.ORG", Status::Subscribed),
        ];
        let p = plan(list, None, &opts());
        assert_eq!(p.recipients.len(), 1);
    }
}
