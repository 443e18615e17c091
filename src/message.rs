//! Message: a rendered digest and a subscriber in, one standards-correct MIME message out.
//!
//! A pure function of its inputs (digest, subscriber, config, clock): multipart/alternative
//! (text then HTML), encoded headers, a deterministic Message-ID per (issue, subscriber),
//! List-Id / List-Unsubscribe / List-Unsubscribe-Post, optional DKIM. What all subscribers
//! share is encoded once; only what differs is encoded per copy. It opens no socket.

use anyhow::Result;

use crate::articles::IssueDate;
use crate::subscribers::{Subscriber, SubscriberEmail};

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
