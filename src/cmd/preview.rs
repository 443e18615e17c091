//! `fortnight preview`: render the digest of one issue to files and say what was written.
//!
//! The articles folder's warnings go to stderr first; then the notes, the issue, the subject,
//! the sample reader and each file written, with its size. A `sample.eml` that could not be
//! built is an error line and exit 1 (the other two files are written).

use std::io::Write;

use anyhow::Result;
use chrono::Utc;

use super::{output, Exit};
use crate::cli::PreviewArgs;
use crate::config::Config;
use crate::ops::preview::{self, PreviewOptions};

fn kb(n: usize) -> String {
    format!("{:.1} KB", n as f64 / 1024.0)
}

pub fn run(config: &Config, args: &PreviewArgs) -> Result<Exit> {
    let mut stdout = output::report();
    let catalog = preview::load_articles(config)?;
    for w in &catalog.warnings {
        output::warn(w);
    }
    let options = PreviewOptions {
        issue: args.issue,
        out: args.out.clone(),
        today: super::today()?,
    };
    let report = preview::preview(config, &catalog, &options, Utc::now())?;
    let out = &report.output;
    for n in &out.notes {
        writeln!(stdout, "note: {n}")?;
    }
    writeln!(
        stdout,
        "issue:   {} ({} articles)",
        report.issue, report.article_count
    )?;
    for date in &report.upcoming {
        writeln!(
            stdout,
            "upcoming: {date} (preview it with `--issue {date}`)"
        )?;
    }
    writeln!(stdout, "subject: {}", out.rendered.subject)?;
    writeln!(stdout, "sample:  {}", report.sample)?;
    writeln!(
        stdout,
        "wrote {} ({})",
        out.html_path.display(),
        kb(out.rendered.html.len())
    )?;
    writeln!(
        stdout,
        "wrote {} ({})",
        out.text_path.display(),
        kb(out.rendered.text.len())
    )?;
    match (&out.eml_path, &out.eml_error) {
        (Some(p), _) => {
            writeln!(stdout, "wrote {} ({})", p.display(), kb(out.eml_bytes))?;
            Ok(Exit::Success)
        }
        (None, Some(e)) => {
            output::say(format_args!(
                "error: sample.eml was not written: {}",
                crate::base::error_chain(e.as_ref())
            ));
            Ok(Exit::Failures)
        }
        (None, None) => Ok(Exit::Failures),
    }
}
