//! The one writer of the list inside the server: unsubscribes are queued and applied in
//! batches (group commit), each batch one locked reload + rewrite of the list.
//!
//! A request is answered only after its batch is durably written. Batching keeps a burst
//! of unsubscribes (a spam-folder sweep, a scanner replaying POSTs) from turning into a
//! rewrite of the whole list per request. Rows that are already suppressed (`bounced`,
//! `complained`) are left as they are: an unsubscribe does not overwrite a stronger
//! signal.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use tokio::sync::{mpsc, oneshot};

use super::index::{rewriting, Tokens};
use super::ServeLog;
use crate::subscribers::{self, Status, SubscriberEmail, SubscriberList};

/// The most unsubscribes applied in one rewrite of the list.
const MAX_BATCH: usize = 1000;
/// Requests waiting for the writer; more are refused (503) rather than queued without end.
const QUEUE: usize = 4096;

/// What an unsubscribe request did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// `subscribed` → `unsubscribed`.
    Unsubscribed,
    /// It was already `unsubscribed`.
    AlreadyUnsubscribed,
    /// It was `bounced` or `complained`, which stays.
    AlreadySuppressed(Status),
    /// The row was deleted from the list since the index was built.
    NotInList,
}

struct Job {
    email: SubscriberEmail,
    reply: oneshot::Sender<Result<Outcome, String>>,
}

/// The queue to the list writer.
#[derive(Clone)]
pub struct Writer {
    tx: mpsc::Sender<Job>,
}

/// Why an unsubscribe could not be recorded.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("too many unsubscribe requests are waiting")]
    Busy,
    #[error("the list writer has stopped")]
    Stopped,
    #[error("cannot update the list: {0}")]
    Failed(String),
}

impl Writer {
    /// Starts the writer task (needs a tokio runtime); a batch that cannot be written is
    /// told to `log`. The task ends once every `Writer` clone is dropped and the queue is
    /// drained.
    pub fn spawn(
        list_path: PathBuf,
        tokens: Arc<Tokens>,
        log: Arc<dyn ServeLog>,
    ) -> (Writer, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        let handle = tokio::spawn(run(rx, list_path, tokens, log));
        (Writer { tx }, handle)
    }

    /// Queues an unsubscribe and waits until it is written.
    pub async fn unsubscribe(&self, email: SubscriberEmail) -> Result<Outcome, WriteError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .try_send(Job { email, reply })
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => WriteError::Busy,
                mpsc::error::TrySendError::Closed(_) => WriteError::Stopped,
            })?;
        answer
            .await
            .map_err(|_| WriteError::Stopped)?
            .map_err(WriteError::Failed)
    }
}

async fn run(
    mut rx: mpsc::Receiver<Job>,
    path: PathBuf,
    tokens: Arc<Tokens>,
    log: Arc<dyn ServeLog>,
) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let emails: Vec<SubscriberEmail> = batch.iter().map(|j| j.email.clone()).collect();
        let p = path.clone();
        let result = tokio::task::spawn_blocking(move || rewriting(&p, || apply(&p, &emails)))
            .await
            .map(|(outcomes, rewrite)| {
                // Statuses only: the index still stands for the list we left.
                tokens.written(&rewrite);
                outcomes
            });
        match result {
            Ok(Ok(outcomes)) => {
                for (job, outcome) in batch.into_iter().zip(outcomes) {
                    let _ = job.reply.send(Ok(outcome));
                }
            }
            Ok(Err(err)) => {
                let msg = crate::base::error_chain(err.as_ref());
                log.warning(&format!("unsubscribe batch not written: {msg}"));
                for job in batch {
                    let _ = job.reply.send(Err(msg.clone()));
                }
            }
            Err(join) => {
                for job in batch {
                    let _ = job.reply.send(Err(format!("list writer failed: {join}")));
                }
            }
        }
    }
}

/// Unsubscribes the `subscribed` ones among `emails` in one locked rewrite; one outcome per
/// input, in order.
pub fn apply(path: &Path, emails: &[SubscriberEmail]) -> Result<Vec<Outcome>> {
    let list = SubscriberList::load(path)
        .with_context(|| format!("cannot read the subscriber list `{}`", path.display()))?;
    let status: HashMap<String, Status> = list
        .subscribers
        .iter()
        .map(|s| (s.email.key(), s.status))
        .collect();
    let mut changes: Vec<(SubscriberEmail, Status)> = Vec::new();
    let outcomes = emails
        .iter()
        .map(|e| match status.get(&e.key()) {
            Some(Status::Subscribed) => {
                if !changes.iter().any(|(c, _)| c == e) {
                    changes.push((e.clone(), Status::Unsubscribed));
                }
                Outcome::Unsubscribed
            }
            Some(Status::Unsubscribed) => Outcome::AlreadyUnsubscribed,
            Some(other) => Outcome::AlreadySuppressed(*other),
            None => Outcome::NotInList,
        })
        .collect();
    if !changes.is_empty() {
        subscribers::set_statuses(path, &changes)
            .with_context(|| format!("cannot update the subscriber list `{}`", path.display()))?;
    }
    Ok(outcomes)
}
