//! Compose: how a run builds its messages. Each worker thread gets its own
//! [`ComposeFn`] (a [`Composer`] over the prepared digest), made on that thread by a factory
//! so the composer itself need not be `Send`; the sample reader's rendering feeds the
//! deliverability checks and the dry-run's `digest.html` / `digest.txt`.

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};

use crate::base::IssueDate;
use crate::config::Config;
use crate::digest::{Digest, Rendered};
use crate::message::{Composer, Outgoing};
use crate::subscribers::Subscriber;
use crate::token::Keyring;

/// Builds one subscriber's message (runs on the composer thread).
pub type ComposeFn = Box<dyn FnMut(&Subscriber) -> Result<Outgoing>>;
/// Makes the [`ComposeFn`] on the composer thread (so the composer need not be `Send`).
pub type ComposerFactory = Box<dyn FnOnce() -> Result<ComposeFn> + Send>;
/// Composes one subscriber's message dated now (on the event loop: only for copies that
/// waited, i.e. in throttled runs).
pub type Restamp = Arc<dyn Fn(&Subscriber) -> Result<Outgoing> + Send + Sync>;
/// Makes one [`ComposeFn`] per worker thread (the dry-run's).
pub(crate) type SharedComposerFactory = Arc<dyn Fn() -> Result<ComposeFn> + Send + Sync>;

/// What every composer of one run shares.
#[derive(Clone)]
pub(crate) struct Composers {
    pub config: Config,
    pub issue: IssueDate,
    pub digest: Arc<Digest>,
    pub keyring: Keyring,
    pub now: DateTime<Utc>,
    /// `send --to`: the messages are marked as test copies.
    pub test_copies: bool,
    /// The Message-IDs the journal recorded for this issue (resends keep them).
    pub recorded_ids: Option<Arc<HashMap<String, String>>>,
}

impl Composers {
    /// A new [`ComposeFn`] (call it on the thread that will use it).
    pub fn make(&self) -> Result<ComposeFn> {
        let composer = self.build()?;
        Ok(Box::new(move |s: &Subscriber| composer.compose(s)))
    }

    fn build(&self) -> Result<Composer> {
        let mut composer = Composer::new(
            &self.config,
            self.issue,
            self.digest.clone(),
            self.keyring.clone(),
            self.now,
        )?;
        if self.test_copies {
            composer = composer.for_test_copies();
        }
        if let Some(ids) = &self.recorded_ids {
            composer = composer.with_recorded_ids(ids.clone());
        }
        Ok(composer)
    }

    /// One composer, for a delivery run.
    pub fn factory(self) -> ComposerFactory {
        Box::new(move || self.make())
    }

    /// Composes one copy dated now, for a copy that waited before its transaction.
    pub fn restamp(&self) -> Result<Restamp> {
        let composer = Arc::new(self.build()?);
        Ok(Arc::new(move |s: &Subscriber| {
            composer.compose_at(s, Utc::now())
        }))
    }

    /// A composer per thread, for a dry-run.
    pub fn shared(self) -> SharedComposerFactory {
        Arc::new(move || self.make())
    }
}

/// The sample reader's digest (for the rendered files and the deliverability checks).
pub(crate) fn render_sample(
    config: &Config,
    keyring: &Keyring,
    digest: &Digest,
) -> Result<Rendered> {
    let sample = crate::message::sample_subscriber(config).subscriber;
    let url = crate::message::unsubscribe_url(config, keyring, &sample.email).unwrap_or_default();
    digest
        .render_for(&sample, &url)
        .context("cannot render the digest for a sample subscriber")
}
