//! Subscribers: the list file, strict addresses, and imports from other tools.
//!
//! The list (`subscribers.csv`) is the only place subscription state lives. Every address
//! crosses the boundary as a [`SubscriberEmail`] (parse, don't validate); every rewrite of
//! the list is atomic (temp file in the same folder, fsync, rename) and serialised by a lock
//! so that concurrent writers (the unsubscribe endpoint, bounce processing, a send marking
//! bounces) never lose each other's updates. It never sends anything.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use anyhow::Result;
use serde::Serialize;

use crate::config::Config;

/// An address that passed the list's address policy (STANDARDS.md "Addresses").
///
/// The only constructor is [`SubscriberEmail::parse`]. The domain is lowercased (IDN as
/// A-labels); the local part is kept as written. Equality, ordering and hashing are
/// case-insensitive, so `Anna@x.org` and `anna@X.org` are the same subscriber.
#[derive(Debug, Clone)]
pub struct SubscriberEmail {
    address: String,
}

/// Why an address was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    #[error("the address is not yet checked")]
    NotImplemented,
}

impl SubscriberEmail {
    pub fn parse(input: &str) -> Result<SubscriberEmail, AddressError> {
        // Provisional check until the full policy lands (issue 4).
        let input = input.trim();
        match input.rsplit_once('@') {
            Some((l, d))
                if !l.is_empty() && d.contains('.') && !input.contains(char::is_whitespace) =>
            {
                Ok(SubscriberEmail {
                    address: format!("{l}@{}", d.to_ascii_lowercase()),
                })
            }
            _ => Err(AddressError::NotImplemented),
        }
    }
    pub fn as_str(&self) -> &str {
        &self.address
    }
    pub fn local_part(&self) -> &str {
        self.address.rsplit_once('@').map(|(l, _)| l).unwrap_or("")
    }
    pub fn domain(&self) -> &str {
        self.address.rsplit_once('@').map(|(_, d)| d).unwrap_or("")
    }
    /// The case-insensitive identity used for equality and de-duplication.
    pub fn key(&self) -> String {
        self.address.to_ascii_lowercase()
    }
}

impl PartialEq for SubscriberEmail {
    fn eq(&self, other: &Self) -> bool {
        self.address.eq_ignore_ascii_case(&other.address)
    }
}
impl Eq for SubscriberEmail {}
impl std::hash::Hash for SubscriberEmail {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        for b in self.address.bytes() {
            state.write_u8(b.to_ascii_lowercase());
        }
    }
}
impl fmt::Display for SubscriberEmail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.address)
    }
}
impl Serialize for SubscriberEmail {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.address)
    }
}

/// A subscriber's state. Only `Subscribed` rows get mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Subscribed,
    Unsubscribed,
    Bounced,
    Complained,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Subscribed => "subscribed",
            Status::Unsubscribed => "unsubscribed",
            Status::Bounced => "bounced",
            Status::Complained => "complained",
        }
    }
    pub fn parse(s: &str) -> Option<Status> {
        match s.trim().to_ascii_lowercase().as_str() {
            "subscribed" => Some(Status::Subscribed),
            "unsubscribed" => Some(Status::Unsubscribed),
            "bounced" => Some(Status::Bounced),
            "complained" => Some(Status::Complained),
            _ => None,
        }
    }
    /// A suppression is never turned back into `Subscribed` without explicit consent.
    pub fn is_suppression(self) -> bool {
        self != Status::Subscribed
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One row of the list.
#[derive(Debug, Clone, Serialize)]
pub struct Subscriber {
    pub email: SubscriberEmail,
    /// Display name, control characters already normalised away; may be empty.
    pub name: String,
    pub status: Status,
    /// When the row was created (free text, usually RFC 3339 or YYYY-MM-DD).
    pub since: String,
    /// Where the row came from (`import:mailchimp`, `manual`, ...).
    pub source: String,
    pub tags: Vec<String>,
    /// Extra columns, seen by templates as `subscriber.attrs.NAME`.
    pub attrs: BTreeMap<String, String>,
}

/// The list file in memory, in file order.
#[derive(Debug, Clone, Default)]
pub struct SubscriberList {
    pub subscribers: Vec<Subscriber>,
    /// Names of the extra columns, in file order.
    pub extra_columns: Vec<String>,
}

impl SubscriberList {
    /// Loads the list; malformed rows and duplicate addresses are errors naming the lines.
    /// A missing file is an empty list.
    pub fn load(path: &Path) -> Result<SubscriberList> {
        let _ = path;
        anyhow::bail!("loading the list is not implemented yet")
    }

    /// Writes the list atomically (temp file in the same folder, fsync, rename).
    pub fn save_atomic(&self, path: &Path) -> Result<()> {
        let _ = path;
        anyhow::bail!("saving the list is not implemented yet")
    }
}

/// Sets the status of the given addresses under the list lock: reload, apply, atomic write.
/// Addresses not in the list are ignored. Returns the addresses whose status changed.
/// Safe against concurrent callers in this and other processes.
pub fn set_statuses(
    path: &Path,
    changes: &[(SubscriberEmail, Status)],
) -> Result<Vec<SubscriberEmail>> {
    let _ = (path, changes);
    anyhow::bail!("updating the list is not implemented yet")
}

/// `fortnight subscribers …`.
pub fn cmd_subscribers(
    config: &Config,
    cmd: &crate::cli::SubscribersCommand,
) -> Result<crate::Exit> {
    let _ = (config, cmd);
    anyhow::bail!("`fortnight subscribers` is not implemented yet")
}

/// `fortnight unsubscribe ADDR... | --token T`.
pub fn cmd_unsubscribe(config: &Config, args: &crate::cli::UnsubscribeArgs) -> Result<crate::Exit> {
    let _ = (config, args);
    anyhow::bail!("`fortnight unsubscribe` is not implemented yet")
}
