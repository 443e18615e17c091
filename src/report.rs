//! Report: how fortnight talks to the person running it.
//!
//! The whole error chain (a Tera error's top line says only "failed to render"; the line
//! and the variable are in its causes) and warning lines. Nothing here decides anything;
//! each command prints its own report.

use std::io::Write;

/// Prints `error: top` and every cause on its own line to stderr.
pub fn print_error(err: &anyhow::Error) {
    let mut stderr = std::io::stderr().lock();
    let _ = writeln!(stderr, "error: {}", err);
    for cause in err.chain().skip(1) {
        let _ = writeln!(stderr, "  caused by: {}", cause);
    }
}

/// Prints one warning line to stderr.
pub fn warn(msg: impl std::fmt::Display) {
    let _ = writeln!(std::io::stderr().lock(), "warning: {msg}");
}
