//! The `fortnight` binary: parse arguments, run, map the outcome to an exit code.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = fortnight::cli::Cli::parse();
    match fortnight::cmd::run(cli) {
        Ok(exit) => ExitCode::from(exit.code()),
        Err(err) => {
            // A closed stdout (`fortnight issues | head`) is not an error worth reporting.
            let broken_pipe = err.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
            });
            if broken_pipe {
                return ExitCode::SUCCESS;
            }
            fortnight::cmd::output::error(&err);
            ExitCode::from(fortnight::cmd::EXIT_FATAL)
        }
    }
}
