//! Output: the one place the command layer writes to the terminal. Results go to standard
//! output ([`report`], [`json`]); everything about the run (warnings, notes, progress lines,
//! prompts, log lines, the whole error chain) goes to standard error ([`messages`], [`warn`],
//! [`error`]), so a command's result can be piped while its messages stay on screen.

use std::io::{IsTerminal, Write};

use anyhow::Result;
use serde::Serialize;

use crate::base::escape_terminal;

/// The result stream (standard output), locked for one report.
pub fn report() -> std::io::StdoutLock<'static> {
    std::io::stdout().lock()
}

/// The message stream (standard error), locked for one message.
pub fn messages() -> std::io::StderrLock<'static> {
    std::io::stderr().lock()
}

/// Whether messages go to a terminal (for progress bars and prompts).
pub fn messages_to_terminal() -> bool {
    std::io::stderr().is_terminal()
}

/// Prints `value` as pretty JSON and a newline on standard output.
pub fn json<T: Serialize + ?Sized>(value: &T) -> Result<()> {
    let mut out = report();
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
    out.flush()?;
    Ok(())
}

/// Prints one line on standard error.
pub fn say(msg: impl std::fmt::Display) {
    let _ = writeln!(messages(), "{msg}");
}

/// Prints `error: top` and every cause on its own line to stderr. Control characters that
/// came from input (other than line breaks and tabs) are shown escaped, never obeyed.
pub fn error(err: &anyhow::Error) {
    let mut stderr = messages();
    let _ = writeln!(stderr, "error: {}", escape_terminal(&err.to_string()));
    for cause in err.chain().skip(1) {
        let _ = writeln!(
            stderr,
            "  caused by: {}",
            escape_terminal(&cause.to_string())
        );
    }
}

/// Prints one warning line to stderr (control characters escaped, as for [`error`]).
pub fn warn(msg: impl std::fmt::Display) {
    let _ = writeln!(messages(), "warning: {}", escape_terminal(&msg.to_string()));
}
