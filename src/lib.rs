//! fortnight composes and sends the email digest of a biweekly publication.
//!
//! Files in, mail out: the articles folder is read into biweekly issues ([`articles`]), the
//! newest issue is rendered from Tera templates ([`digest`]), one MIME message is built per
//! subscriber of the list ([`subscribers`], [`message`]) and delivered over SMTP or written
//! to files ([`send`]), with every state change recorded in a SQLite journal ([`journal`]).
//! [`serve`] and [`bounces`] close the loop (unsubscribes, bounces, complaints).
//!
//! `main.rs` only parses arguments and maps the outcome of [`run`] to an exit code.

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
pub mod report;
pub mod send;
pub mod serve;
pub mod subscribers;
pub mod token;

/// Transitional: the library's old command functions still return the command layer's exit.
pub use cmd::Exit;
