//! The reader that previews, checks and dry-runs render for.
//!
//! One rule for every command, so `preview`, `check` and `send --dry-run` show the same
//! personalisation: the first subscribed row of the list, else a made-up reader with the
//! list's extra columns left empty.

use crate::config::Config;
use crate::subscribers::{Status, Subscriber, SubscriberEmail, SubscriberList};

/// The address of the made-up reader.
const MADE_UP_ADDRESS: &str = "reader@example.org";

/// A reader to render for, and a phrase saying who it is.
#[derive(Debug, Clone)]
pub struct Sample {
    pub subscriber: Subscriber,
    /// "the first subscribed address of the list, …" or why it is a made-up reader.
    pub description: String,
}

/// The sample reader of `config`'s list (see the module docs).
pub fn sample_subscriber(config: &Config) -> Sample {
    match SubscriberList::first_subscribed(&config.subscribers_file()) {
        Ok((Some(s), _)) => Sample {
            description: format!("the first subscribed address of the list, {}", s.email),
            subscriber: s,
        },
        Ok((None, columns)) => Sample {
            subscriber: made_up(&columns),
            description: "a made-up reader (the list has no subscribed address)".to_string(),
        },
        Err(_) => Sample {
            subscriber: made_up(&[]),
            description: "a made-up reader (the subscriber list could not be read)".to_string(),
        },
    }
}

fn made_up(columns: &[String]) -> Subscriber {
    Subscriber {
        email: SubscriberEmail::parse(MADE_UP_ADDRESS).expect("the made-up address is valid"),
        name: "Sample Reader".to_string(),
        status: Status::Subscribed,
        since: "2001-09-01".to_string(),
        source: "preview".to_string(),
        tags: Vec::new(),
        attrs: columns.iter().map(|c| (c.clone(), String::new())).collect(),
    }
}
