//! Import, count and export the list (`fortnight subscribers`).

use std::io::Write;

use anyhow::{Context, Result};

use super::{output, Exit};
use crate::cli::{ExportArgs, ImportArgs, ImportEncoding, ImportFormat, SubscribersCommand};
use crate::config::Config;
use crate::subscribers::import::{Encoding, Format, ImportOptions, ImportReport, RowNote};
use crate::subscribers::{self, ImportOutcome, ListWrite, Status};

pub fn run(config: &Config, args: &SubscribersCommand) -> Result<Exit> {
    match args {
        SubscribersCommand::Import(args) => import(config, args),
        SubscribersCommand::Stats => stats(config),
        SubscribersCommand::Export(args) => export(config, args),
    }
}

fn format_of(f: ImportFormat) -> Format {
    match f {
        ImportFormat::Auto => Format::Auto,
        ImportFormat::Mailchimp => Format::Mailchimp,
        ImportFormat::Substack => Format::Substack,
        ImportFormat::Buttondown => Format::Buttondown,
        ImportFormat::Listmonk => Format::Listmonk,
        ImportFormat::Plain => Format::Plain,
    }
}

fn encoding_of(e: ImportEncoding) -> Encoding {
    match e {
        ImportEncoding::Auto => Encoding::Auto,
        ImportEncoding::Utf8 => Encoding::Utf8,
        ImportEncoding::Windows1252 => Encoding::Windows1252,
        ImportEncoding::Utf16 => Encoding::Utf16,
    }
}

/// `fortnight subscribers import`: exit 1 when some rows could not be used.
fn import(config: &Config, args: &ImportArgs) -> Result<Exit> {
    let list_path = config.subscribers_file();
    let opts = ImportOptions {
        format: format_of(args.format),
        encoding: encoding_of(args.encoding),
        delimiter: args.delimiter,
        resubscribe: args.resubscribe,
        today: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    };
    let outcome = subscribers::import(&list_path, &args.files, opts, args.dry_run)?;
    let mut out = output::report();
    write_import_report(&outcome.report, &mut out)?;
    let shown = list_path.display();
    let totals = totals(&outcome);
    match outcome.write {
        ListWrite::DryRun => {
            writeln!(out, "dry run: {shown} not written (it would hold {totals})")?
        }
        ListWrite::Written => writeln!(out, "wrote {shown}: {totals}")?,
        ListWrite::Unchanged => writeln!(out, "{shown} unchanged: {totals}")?,
    }
    Ok(if outcome.report.invalid.is_empty() {
        Exit::Success
    } else {
        Exit::Failures
    })
}

/// `N addresses: N subscribed, N unsubscribed, N bounced, N complained`.
fn totals(outcome: &ImportOutcome) -> String {
    format!(
        "{} addresses: {} subscribed, {} unsubscribed, {} bounced, {} complained",
        outcome.total,
        outcome.count(Status::Subscribed),
        outcome.count(Status::Unsubscribed),
        outcome.count(Status::Bounced),
        outcome.count(Status::Complained)
    )
}

/// Writes the import report: one line per file, the counts, then every noted row.
fn write_import_report(report: &ImportReport, out: &mut dyn Write) -> std::io::Result<()> {
    for f in &report.files {
        let delim = match f.delimiter {
            b'\t' => "TAB".to_string(),
            d => format!("`{}`", d as char),
        };
        writeln!(
            out,
            "{}: {}, {}{}, delimiter {delim}, {} row{}{}",
            f.file,
            f.format.label(),
            f.encoding,
            if f.encoding_guessed {
                " (detected)"
            } else {
                ""
            },
            f.rows,
            if f.rows == 1 { "" } else { "s" },
            if f.headerless {
                " (no header: email, name)"
            } else {
                ""
            },
        )?;
    }
    writeln!(out, "added:       {}", report.added)?;
    writeln!(out, "updated:     {}", report.updated)?;
    writeln!(out, "unchanged:   {}", report.unchanged)?;
    writeln!(out, "duplicates:  {}", report.duplicates.len())?;
    writeln!(out, "suppressed:  {}", report.suppressed)?;
    writeln!(out, "invalid:     {}", report.invalid.len())?;
    if !report.skipped.is_empty() {
        writeln!(out, "skipped:     {}", report.skipped.len())?;
    }
    if report.resubscribed > 0 {
        writeln!(out, "resubscribed: {}", report.resubscribed)?;
    }
    if !report.cells_skipped.is_empty() {
        writeln!(out, "cells skipped: {}", report.cells_skipped.len())?;
    }
    let sections: [(&str, &[RowNote]); 6] = [
        ("changed:", &report.changed),
        (
            "cells skipped (the address was imported without them):",
            &report.cells_skipped,
        ),
        ("invalid rows (not imported):", &report.invalid),
        ("duplicates (first spelling kept):", &report.duplicates),
        ("skipped:", &report.skipped),
        (
            "not resubscribed (they left or bounced; use --resubscribe if they asked to come back):",
            &report.kept_suppressed,
        ),
    ];
    for (title, notes) in sections {
        if notes.is_empty() {
            continue;
        }
        writeln!(out, "{title}")?;
        for n in notes {
            writeln!(out, "  {}:{}: {}", n.file, n.line, n.text)?;
        }
    }
    Ok(())
}

/// `fortnight subscribers stats`: counts by status and the top domains.
fn stats(config: &Config) -> Result<Exit> {
    let path = config.subscribers_file();
    let st = subscribers::stats(&path)?;
    let mut out = output::report();
    writeln!(out, "{}: {} addresses", path.display(), st.total)?;
    for s in [
        Status::Subscribed,
        Status::Unsubscribed,
        Status::Bounced,
        Status::Complained,
    ] {
        let n = st.by_status.get(&s).copied().unwrap_or(0);
        writeln!(out, "  {:<13} {n}", s.as_str())?;
    }
    if !st.top_domains.is_empty() {
        writeln!(
            out,
            "top domains ({} of {}):",
            st.top_domains.len(),
            st.domains
        )?;
        let width = st
            .top_domains
            .iter()
            .map(|(d, _)| d.len())
            .max()
            .unwrap_or(0);
        for (d, n) in &st.top_domains {
            writeln!(out, "  {d:<width$} {n}")?;
        }
    }
    Ok(Exit::Success)
}

/// `fortnight subscribers export`: the list as CSV on standard output.
fn export(config: &Config, args: &ExportArgs) -> Result<Exit> {
    let mut out = output::report();
    subscribers::export(&config.subscribers_file(), args.status, &mut out)?;
    out.flush().context("failed to write the export")?;
    Ok(Exit::Success)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_says_how_to_resubscribe_suppressed_addresses_it_left_alone() {
        let report = ImportReport {
            kept_suppressed: vec![RowNote {
                file: "again.csv".into(),
                line: 2,
                text: "`left@example.org` is unsubscribed in the list".to_string(),
            }],
            ..ImportReport::default()
        };
        let mut out = Vec::new();
        write_import_report(&report, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("--resubscribe"), "{text}");
        assert!(text.contains("again.csv:2"), "{text}");
    }
}
