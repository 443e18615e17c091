//! The one-click unsubscribe endpoint (`fortnight serve`).
//!
//! Starts the server, says where it listens (the address on stdout, for scripts), writes
//! one line per request and every warning to stderr, and stops on Ctrl-C or SIGTERM.

use std::io::Write;
use std::sync::Arc;

use anyhow::{Context, Result};
use tokio::net::TcpListener;

use super::{output, Exit};
use crate::base::signal::Interrupts;
use crate::cli::ServeArgs;
use crate::config::Config;
use crate::serve::{self, App, RequestRecord, ServeLog, Setup};

/// The server's log on stderr.
struct StderrLog;

impl ServeLog for StderrLog {
    fn request(&self, r: &RequestRecord<'_>) {
        // One write per line, so that lines of concurrent requests never interleave.
        let line = format!(
            "{} {} {} {} {} {}ms\n",
            r.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            r.method,
            r.route,
            r.status,
            r.outcome,
            r.elapsed.as_millis()
        );
        let _ = output::messages().write_all(line.as_bytes());
    }

    fn warning(&self, message: &str) {
        output::warn(message);
    }
}

pub fn run(config: &Config, args: &ServeArgs) -> Result<Exit> {
    let setup = Setup::from_config(config, args.listen.as_deref())?;
    for w in &setup.warnings {
        output::warn(w);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve_until_stopped(config, setup))?;
    Ok(Exit::Success)
}

async fn serve_until_stopped(config: &Config, setup: Setup) -> Result<()> {
    let addr = setup.listen;
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} (is another server using it?)"))?;
    let local = listener.local_addr()?;
    let app = App::start(config, setup.keyring, setup.options, Arc::new(StderrLog)).await?;
    output::say(format_args!(
        "serving one-click unsubscribes at {} for list {} ({} addresses indexed)",
        app.route_display(),
        config.sender.list_id,
        app.indexed()
    ));
    {
        let mut out = output::report();
        writeln!(out, "listening on http://{local}")?;
        out.flush()?;
    }
    let mut interrupts = Interrupts::listen()?;
    serve::run(listener, app, async move { interrupts.next().await }).await?;
    output::say("stopped");
    Ok(())
}
