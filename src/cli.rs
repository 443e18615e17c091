//! The command line: clap derive types whose doc comments are the `--help` text.
//!
//! This module only describes the surface (commands, flags, defaults); it does no work.
//! `lib.rs` dispatches each command to the module that owns it.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::base::IssueDate;
use crate::subscribers::Status;

/// Compose and send the email digest of a biweekly publication.
#[derive(Debug, Parser)]
#[command(name = "fortnight", version, about, long_about = None)]
pub struct Cli {
    /// The configuration file; relative paths inside it resolve against its folder.
    #[arg(
        long,
        global = true,
        default_value = "config.toml",
        value_name = "PATH"
    )]
    pub config: PathBuf,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List the issues found in the articles folder, newest first.
    Issues(IssuesArgs),
    /// Render the digest of the newest (or given) issue to files.
    Preview(PreviewArgs),
    /// Send the issue to every subscribed address not yet served (a rerun resumes).
    Send(SendArgs),
    /// Show what the send journal knows about an issue.
    Status(StatusArgs),
    /// Manage the subscriber list.
    #[command(subcommand)]
    Subscribers(SubscribersCommand),
    /// Mark addresses unsubscribed (an atomic rewrite of the list).
    Unsubscribe(UnsubscribeArgs),
    /// Write a working starter project into DIR.
    Init(InitArgs),
    /// Serve the one-click unsubscribe endpoint over HTTP.
    Serve(ServeArgs),
    /// Read bounces and complaints from an mbox file or a Maildir.
    Bounces(BouncesArgs),
    /// Validate config, templates, articles and list; report deliverability problems.
    Check(CheckArgs),
}

#[derive(Debug, Args)]
pub struct IssuesArgs {
    /// Print a JSON array (stable, documented in the README) instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct PreviewArgs {
    /// The issue date (YYYY-MM-DD); default: the newest issue dated on or before today.
    #[arg(long, value_name = "DATE")]
    pub issue: Option<IssueDate>,
    /// Where to write digest.html, digest.txt and sample.eml.
    #[arg(long, value_name = "DIR", default_value = "preview")]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct SendArgs {
    /// The issue date (YYYY-MM-DD); default: the newest issue dated on or before today.
    #[arg(long, value_name = "DATE")]
    pub issue: Option<IssueDate>,
    /// Build every message and write it to files instead of sending; opens no socket.
    #[arg(long)]
    pub dry_run: bool,
    /// Dry-run output folder (default `outbox/ISSUE/`).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Handle at most N recipients in this run.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub limit: Option<u64>,
    /// Send a test copy to these addresses only (not journaled as the issue's delivery).
    #[arg(long = "to", value_name = "ADDR")]
    pub to: Vec<String>,
    /// Do not ask for confirmation.
    #[arg(long)]
    pub yes: bool,
    /// Also resend messages whose delivery is ambiguous (connection lost after the final dot).
    #[arg(long)]
    pub resend_ambiguous: bool,
    /// Go on although the issue changed since its first copies went out (journaled).
    #[arg(long)]
    pub allow_changed: bool,
    /// Print the final summary as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The issue date (YYYY-MM-DD); default: the newest issue in the journal.
    #[arg(long, value_name = "DATE")]
    pub issue: Option<IssueDate>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum SubscribersCommand {
    /// Merge exports of other tools (Mailchimp, Substack, Buttondown, listmonk, plain CSV) into the list.
    Import(ImportArgs),
    /// Counts by status and by domain.
    Stats,
    /// Write the list as CSV to standard output (with a formula-injection guard).
    Export(ExportArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ImportFormat {
    Auto,
    Mailchimp,
    Substack,
    Buttondown,
    Listmonk,
    Plain,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ImportEncoding {
    Auto,
    #[value(name = "utf-8")]
    Utf8,
    #[value(name = "windows-1252")]
    Windows1252,
    #[value(name = "utf-16")]
    Utf16,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The files to import, in order.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// The export format; `auto` detects it from the header.
    #[arg(long, value_enum, default_value = "auto")]
    pub format: ImportFormat,
    /// The file encoding; `auto` detects UTF-8/UTF-16 and legacy single-byte encodings.
    #[arg(long, value_enum, default_value = "auto")]
    pub encoding: ImportEncoding,
    /// The field delimiter (default: sniffed among `,` `;` and TAB).
    #[arg(long, value_name = "C", value_parser = parse_delimiter)]
    pub delimiter: Option<u8>,
    /// Print the report; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Allow the import to turn unsubscribed/bounced/complained addresses back into subscribed.
    #[arg(long)]
    pub resubscribe: bool,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Only rows with this status (subscribed, unsubscribed, bounced, complained).
    #[arg(long, value_name = "S", value_parser = parse_status)]
    pub status: Option<Status>,
}

#[derive(Debug, Args)]
pub struct UnsubscribeArgs {
    /// The addresses to unsubscribe.
    #[arg(value_name = "ADDR", required_unless_present = "token")]
    pub addresses: Vec<String>,
    /// An unsubscribe token from a message's List-Unsubscribe URL.
    #[arg(long, value_name = "T", conflicts_with = "addresses")]
    pub token: Option<String>,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// The folder to write the starter project into (created if missing).
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The address to listen on (default from `[serve] listen`, else 127.0.0.1:8025).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
}

#[derive(Debug, Args)]
pub struct BouncesArgs {
    /// mbox files or Maildir folders holding bounce messages and complaint reports.
    #[arg(required = true, value_name = "FILE_OR_DIR")]
    pub sources: Vec<PathBuf>,
    /// Print what would change; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// With `[bounces] verp = true`: also apply reports that carry no valid unsubscribe
    /// token (matched by the addresses they name; anyone can forge those).
    #[arg(long)]
    pub trust_unsigned: bool,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Print the DNS TXT records to publish instead: each DKIM key, and SPF and DMARC examples.
    #[arg(long)]
    pub dns_records: bool,
}

/// `--status`: one of the list's statuses.
fn parse_status(s: &str) -> Result<Status, String> {
    Status::parse(s)
        .ok_or_else(|| format!("`{s}` is not one of subscribed, unsubscribed, bounced, complained"))
}

/// `--delimiter`: one ASCII character, or `tab`, `\t`, `comma`, `semicolon`.
fn parse_delimiter(s: &str) -> Result<u8, String> {
    crate::subscribers::import::parse_delimiter(s).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_command_line_definition_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
