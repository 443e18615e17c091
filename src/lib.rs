//! fortnight composes and sends the email digest of a biweekly publication.
//!
//! Files in, mail out: the articles folder is read into biweekly issues ([`articles`]), the
//! newest issue is rendered from Tera templates ([`digest`]), one MIME message is built per
//! subscriber of the list ([`subscribers`], [`message`]) and delivered over SMTP or written
//! to files ([`send`]), with every state change recorded in a SQLite journal ([`journal`]).
//! [`serve`] and [`bounces`] close the loop (unsubscribes, bounces, complaints).
//!
//! # Layers
//!
//! Read from the bottom up, the crate is the pipeline: each module uses only modules listed
//! below it. `tests/integration/layers.rs` fails on a cycle among these modules (or among the
//! files of one module folder), on clap outside the command layer and on printing outside it.
//!
//! ```text
//!  layer         module        uses (besides base)
//!  command       main, cli     cmd
//!                cmd/          every module below; cmd/output is the one place that prints
//!  use cases     ops           digest, message, articles, subscribers, token, config
//!  delivery      send          journal, message, digest, articles, subscribers, token, config
//!                serve         subscribers, token, config
//!                bounces       message, subscribers, token, config
//!  record        journal       subscribers, config
//!  composition   message       digest, token, subscribers, config
//!  rendering     digest        articles, subscribers, config
//!  identity      token         subscribers, config
//!  inputs        articles      config
//!                subscribers   -
//!  settings      config        -
//!  primitives    base          - (IssueDate, HTML escaper, hex, private files, error chain,
//!                                 did-you-mean distance, interrupt signals, host FQDN,
//!                                 language tables)
//! ```
//!
//! The command layer turns arguments into the typed options of a use case, calls it, and
//! renders the typed report it returns (text or `--json`); it alone decides exit codes.
//! Library code never prints: warnings come back in reports, and the long-running use cases
//! (send, serve) report progress through a trait the command layer implements
//! (`send::SendEvents`, `serve::ServeLog`). The rules the code follows, with their sources,
//! are in `docs/standards.md`; the delivery guarantees in `docs/guarantees.md`.

pub mod articles;
pub mod base;
pub mod bounces;
pub mod cli;
pub mod cmd;
pub mod config;
pub mod digest;
pub mod journal;
pub mod message;
pub mod ops;
pub mod send;
pub mod serve;
pub mod subscribers;
pub mod token;
