//! Unsubscribe addresses or a token (`fortnight unsubscribe`).
//!
//! A token names its subscriber only through the list: it is resolved here, against an
//! index of the list built with the key that signed it, before the list is changed.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};

use super::{output, Exit};
use crate::cli::UnsubscribeArgs;
use crate::config::{Config, ENV_UNSUBSCRIBE_KEY};
use crate::subscribers::{self, CompactList, StatusOutcome, SubscriberEmail};
use crate::token::{keyring_from_env, TokenIndex};

/// Exit 1 when an address is not in the list.
pub fn run(config: &Config, args: &UnsubscribeArgs) -> Result<Exit> {
    let path = config.subscribers_file();
    let addresses = match &args.token {
        Some(token) => vec![resolve_token(config, &path, token)?],
        None => subscribers::parse_addresses(&args.addresses)?,
    };
    let outcomes = subscribers::unsubscribe(&path, &addresses)?;
    let mut out = output::report();
    let mut missing = 0;
    for (a, o) in addresses.iter().zip(outcomes) {
        match o {
            StatusOutcome::Changed(from) => writeln!(out, "unsubscribed: {a} (was {from})")?,
            StatusOutcome::Unchanged => writeln!(out, "already unsubscribed: {a}")?,
            StatusOutcome::NotFound => {
                missing += 1;
                output::warn(format_args!("{a} is not in {}", path.display()));
            }
        }
    }
    Ok(if missing > 0 {
        Exit::Failures
    } else {
        Exit::Success
    })
}

/// The subscriber an unsubscribe token names (needs the key that signed it).
fn resolve_token(config: &Config, path: &Path, token: &str) -> Result<SubscriberEmail> {
    let (keyring, _) = keyring_from_env(config.unsubscribe.as_ref(), false).with_context(|| {
        format!(
            "`fortnight unsubscribe --token` needs the key that signed the token: set the \
             environment variable {ENV_UNSUBSCRIBE_KEY}"
        )
    })?;
    let list = CompactList::load(path)?;
    let emails: Vec<SubscriberEmail> = (0..list.len())
        .map(|i| SubscriberEmail::from_normalized(list.email(i).to_string()))
        .collect();
    let index = TokenIndex::build(keyring, &config.sender.list_id, emails.iter());
    index.resolve(token).with_context(|| {
        format!(
            "the token does not unsubscribe anyone from {} (list id `{}`)",
            path.display(),
            config.sender.list_id
        )
    })
}
