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
pub mod bounces;
pub mod cli;
pub mod config;
pub mod digest;
pub mod files;
pub mod journal;
pub mod message;
pub mod report;
pub mod send;
pub mod serve;
pub mod subscribers;
pub mod token;

use anyhow::Result;

use crate::cli::{Cli, Command};
use crate::config::Config;

/// How a command that did not fail outright ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 0: all good.
    Success,
    /// 1: the run finished but something failed (a recipient rejected, an import row invalid).
    Failures,
    /// 130: interrupted (Ctrl-C); what was in flight was journaled.
    Interrupted,
}

impl Exit {
    pub fn code(self) -> u8 {
        match self {
            Exit::Success => 0,
            Exit::Failures => 1,
            Exit::Interrupted => 130,
        }
    }
}

/// Exit code of a fatal error or usage error: nothing was sent or written.
pub const EXIT_FATAL: u8 = 2;

/// Runs one command. An `Err` is fatal (exit 2); print it with [`report::print_error`].
pub fn run(cli: Cli) -> Result<Exit> {
    if let Command::Init(args) = &cli.command {
        return digest::cmd_init(args);
    }
    let config = Config::load(&cli.config)?;
    match &cli.command {
        Command::Issues(a) => articles::cmd_issues(&config, a),
        Command::Preview(a) => digest::cmd_preview(&config, a),
        Command::Send(a) => send::cmd_send(&config, a),
        Command::Status(a) => journal::cmd_status(&config, a),
        Command::Subscribers(c) => subscribers::cmd_subscribers(&config, c),
        Command::Unsubscribe(a) => subscribers::cmd_unsubscribe(&config, a),
        Command::Init(_) => unreachable!("handled above"),
        Command::Serve(a) => serve::cmd_serve(&config, a),
        Command::Bounces(a) => bounces::cmd_bounces(&config, a),
        Command::Check(a) => digest::cmd_check(&config, a),
    }
}
