//! The command layer: one file per command turns parsed arguments into the library's typed
//! options, calls the use case, and renders its report. This layer (with `main.rs` and
//! `cli.rs`) is the only code that sees clap or prints; everything it prints goes through
//! [`output`]. It decides exit codes from the reports; the library never does.

pub mod bounces;
pub mod check;
pub mod init;
pub mod issues;
pub mod output;
pub mod preview;
mod progress;
pub mod send;
pub mod serve;
pub mod status;
pub mod subscribers;
pub mod unsubscribe;

use anyhow::Result;
use chrono::NaiveDate;

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

/// The variable that sets the date the commands take as today (`YYYY-MM-DD`), for tests and
/// for rehearsing a send ahead of time; unset, it is the local date of the system clock.
pub const ENV_TODAY: &str = "FORTNIGHT_TODAY";

/// Today, as the issue selection sees it: `FORTNIGHT_TODAY` when set, else the local date.
pub(crate) fn today() -> Result<NaiveDate> {
    match std::env::var(ENV_TODAY) {
        Ok(v) => NaiveDate::parse_from_str(v.trim(), "%Y-%m-%d").map_err(|_| {
            anyhow::anyhow!("{ENV_TODAY}=`{v}` is not a date; write it as YYYY-MM-DD or unset it")
        }),
        Err(_) => Ok(chrono::Local::now().date_naive()),
    }
}

/// Exit code of a fatal error or usage error: nothing was sent or written.
pub const EXIT_FATAL: u8 = 2;

/// Runs one command. An `Err` is fatal (exit 2); print it with [`output::error`].
pub fn run(cli: Cli) -> Result<Exit> {
    if let Command::Init(args) = &cli.command {
        return init::run(args);
    }
    let config = Config::load(&cli.config)?;
    match &cli.command {
        Command::Issues(a) => issues::run(&config, a),
        Command::Preview(a) => preview::run(&config, a),
        Command::Send(a) => send::run(&config, a),
        Command::Status(a) => status::run(&config, a),
        Command::Subscribers(c) => subscribers::run(&config, c),
        Command::Unsubscribe(a) => unsubscribe::run(&config, a),
        Command::Init(_) => unreachable!("handled above"),
        Command::Serve(a) => serve::run(&config, a),
        Command::Bounces(a) => bounces::run(&config, a),
        Command::Check(a) => check::run(&config, a),
    }
}
