//! Message: a rendered digest and a subscriber in, one standards-correct MIME message out.
//!
//! A pure function of its inputs (digest, subscriber, config, clock): multipart/alternative
//! (text then HTML), encoded headers, a deterministic Message-ID per (issue, subscriber),
//! List-Id / List-Unsubscribe / List-Unsubscribe-Post, optional DKIM. What all subscribers
//! share is encoded once; only what differs is encoded per copy. It opens no socket.

use std::sync::Arc;

use anyhow::Result;
use chrono::{DateTime, Utc};

use crate::articles::IssueDate;
use crate::config::Config;
use crate::digest::{Digest, Rendered};
use crate::subscribers::{Subscriber, SubscriberEmail};
use crate::token::Keyring;

/// One finished message, ready for SMTP or a file.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub recipient: SubscriberEmail,
    /// With angle brackets, e.g. `<2002-02-27.3f9a…@analyst.example.org>`.
    pub message_id: String,
    pub subject: String,
    /// Envelope MAIL FROM.
    pub envelope_from: String,
    /// The whole message, CRLF line endings.
    pub bytes: Vec<u8>,
}

/// Builds the messages of one issue.
pub struct Composer {
    _private: (),
}

impl Composer {
    /// Prepares what all copies share (encoded parts, headers, DKIM key from `[dkim]`).
    pub fn new(
        config: &Config,
        issue: IssueDate,
        digest: Arc<Digest>,
        keyring: Keyring,
        now: DateTime<Utc>,
    ) -> Result<Composer> {
        let _ = (config, issue, digest, keyring, now);
        anyhow::bail!("message building is not implemented yet")
    }

    /// A composer for `send --to` test copies: subject prefixed with `[digest] test_subject_prefix`.
    pub fn for_test_copies(self) -> Composer {
        self
    }

    pub fn compose(&self, subscriber: &Subscriber) -> Result<Outgoing> {
        let _ = subscriber;
        anyhow::bail!("message building is not implemented yet")
    }
}

/// The deterministic Message-ID of (issue, subscriber) on the sender's domain.
pub fn message_id(issue: IssueDate, email: &SubscriberEmail, domain: &str) -> String {
    let _ = (issue, email, domain);
    unimplemented!("message ids")
}

/// How serious a deliverability finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// A send is refused.
    Error,
    Warning,
}

/// One deliverability problem found before any send.
#[derive(Debug, Clone)]
pub struct Finding {
    pub severity: Severity,
    pub message: String,
}

/// Deliverability problems of this config and a sample rendered copy (used by `check`).
pub fn deliverability_findings(config: &Config, sample: &Rendered) -> Vec<Finding> {
    let _ = (config, sample);
    Vec::new()
}
