//! The addresses of the `[sender]` table (`from`, `reply_to`, `bounce`), parsed once, one way.
//!
//! Every reader of those keys (the composer, the deliverability checks, the bounce
//! processor) goes through [`SenderAddress::parse`], so an address a message would carry is
//! the address every other command compares against. A value is `Name <address>` or a bare
//! address; the address must be written in a header as it is (plain ASCII, no quotes or
//! comments).

use std::str::FromStr;

use anyhow::{bail, Context, Result};

use super::headers::is_header_safe_address;
use crate::config::Config;

/// One configured address: the display name (may be empty) and the address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SenderAddress {
    pub name: String,
    pub address: String,
}

impl SenderAddress {
    /// Parses `Name <address>` or a bare address given as `key` in the config; the error
    /// names the key and the value.
    pub fn parse(key: &str, value: &str) -> Result<SenderAddress> {
        let mbox = lettre::message::Mailbox::from_str(value.trim()).with_context(|| {
            format!("{key} `{value}` is not an address like `Name <address@example.org>`")
        })?;
        let address = mbox.email.to_string();
        if !is_header_safe_address(&address) {
            bail!("{key} `{value}`: the address must be plain ASCII without quotes or comments");
        }
        Ok(SenderAddress {
            name: mbox.name.unwrap_or_default(),
            address,
        })
    }

    /// `[sender] from`.
    pub fn from_of(config: &Config) -> Result<SenderAddress> {
        SenderAddress::parse("[sender] from", &config.sender.from)
    }

    /// `[sender] bounce`, when set.
    pub fn bounce_of(config: &Config) -> Result<Option<SenderAddress>> {
        config
            .sender
            .bounce
            .as_deref()
            .map(|b| SenderAddress::parse("[sender] bounce", b))
            .transpose()
    }

    /// `[sender] reply_to`, when set.
    pub fn reply_to_of(config: &Config) -> Result<Option<SenderAddress>> {
        config
            .sender
            .reply_to
            .as_deref()
            .map(|r| SenderAddress::parse("[sender] reply_to", r))
            .transpose()
    }

    /// The domain of the address, as written.
    pub fn domain(&self) -> &str {
        self.address
            .rsplit_once('@')
            .map(|(_, d)| d)
            .expect("a header-safe address holds an @")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_bare_addresses_parse_and_unsafe_ones_are_refused() {
        let a = SenderAddress::parse(
            "[sender] from",
            " The Analyst <Digest@Analyst.example.org> ",
        )
        .unwrap();
        assert_eq!(a.name, "The Analyst");
        assert_eq!(a.address, "Digest@Analyst.example.org");
        assert_eq!(a.domain(), "Analyst.example.org");
        let bare = SenderAddress::parse("[sender] bounce", "bounces@example.org").unwrap();
        assert_eq!(bare.name, "");
        let err = SenderAddress::parse("[sender] from", "not an address").unwrap_err();
        assert!(format!("{err:#}").contains("[sender] from `not an address`"));
    }
}
