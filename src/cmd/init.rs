//! `fortnight init DIR`: write a starter project, list its files and the next steps.

use std::io::Write;

use anyhow::Result;
use chrono::Utc;

use super::{output, Exit};
use crate::cli::InitArgs;

pub fn run(args: &InitArgs) -> Result<Exit> {
    let mut stdout = output::report();
    let written = crate::ops::init_dir(&args.dir, Utc::now().date_naive())?;
    for p in &written {
        writeln!(stdout, "wrote {}", p.display())?;
    }
    writeln!(
        stdout,
        "\nA starter project is ready. Next:\n  cd {}\n  fortnight issues      # the sample article's issue\n  fortnight preview     # preview/digest.html, digest.txt, sample.eml\n  fortnight check       # before the first send\nEdit config.toml (name, sender, unsubscribe URL), put your articles in articles/,\nyour list in subscribers.csv, and restyle templates/ as you like.",
        args.dir.display()
    )?;
    Ok(Exit::Success)
}
