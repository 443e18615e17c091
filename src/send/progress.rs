//! Progress: what a running send shows, and the summary it ends with.
//!
//! On a terminal an indicatif bar (done / planned, sent, retrying, deferred, failed, rate,
//! ETA) redrawn ten times a second on stderr; otherwise (cron, CI, a pipe) one plain line on
//! stderr every five seconds. Both only read the live [`Stats`] counters: they decide
//! nothing. The final summary goes to stdout, as a table or as JSON.

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::deliver::{RunReport, Stats, StopReason};
use super::dryrun::human_duration;

/// A running progress display; [`Progress::finish`] removes it.
pub struct Progress {
    stop: Arc<tokio::sync::Notify>,
    task: tokio::task::JoinHandle<()>,
}

fn counts_line(stats: &Stats) -> String {
    let g = Stats::get;
    let mut s = format!("sent {}", g(&stats.sent));
    for (name, n) in [
        ("retrying", g(&stats.retrying)),
        ("deferred", g(&stats.deferred)),
        ("failed", g(&stats.failed)),
        ("ambiguous", g(&stats.ambiguous)),
        ("skipped", g(&stats.suppressed)),
    ] {
        if n > 0 {
            s.push_str(&format!(", {name} {n}"));
        }
    }
    s
}

impl Progress {
    /// Starts the display for a run of `total` recipients (call inside the runtime).
    pub fn start(stats: Arc<Stats>, total: u64, tty: bool) -> Progress {
        let stop = Arc::new(tokio::sync::Notify::new());
        let stop2 = stop.clone();
        let task = tokio::spawn(async move {
            if tty {
                let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
                bar.set_style(
                    ProgressStyle::with_template(
                        "{bar:30.cyan/blue} {pos}/{len} {msg} | {per_sec} | ETA {eta}",
                    )
                    .expect("a valid progress template")
                    .progress_chars("=> "),
                );
                loop {
                    bar.set_position(stats.done());
                    bar.set_message(counts_line(&stats));
                    tokio::select! {
                        _ = stop2.notified() => break,
                        _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                    }
                }
                bar.finish_and_clear();
            } else {
                let started = Instant::now();
                loop {
                    tokio::select! {
                        _ = stop2.notified() => break,
                        _ = tokio::time::sleep(Duration::from_secs(5)) => {}
                    }
                    let done = stats.done();
                    let secs = started.elapsed().as_secs_f64();
                    let rate = Stats::get(&stats.sent) as f64 / secs.max(0.001);
                    let eta = if rate > 0.0 && total > done {
                        format!(
                            ", ETA {}",
                            human_duration(Duration::from_secs_f64((total - done) as f64 / rate))
                        )
                    } else {
                        String::new()
                    };
                    let _ = writeln!(
                        std::io::stderr().lock(),
                        "progress: {done}/{total} ({}), {rate:.0} messages/s{eta}",
                        counts_line(&stats)
                    );
                }
            }
        });
        Progress { stop, task }
    }

    pub async fn finish(self) {
        self.stop.notify_one();
        let _ = self.task.await;
    }
}

/// At most this many problem lines in the text summary (`fortnight status` lists them all).
const PROBLEM_LINES: usize = 20;

/// Prints the text summary of a run.
pub fn print_summary(
    out: &mut impl Write,
    title: &str,
    report: &RunReport,
    notes: &[String],
) -> std::io::Result<()> {
    writeln!(out, "{title}")?;
    let rows = [
        ("sent", report.sent),
        ("deferred", report.deferred),
        ("failed", report.failed),
        ("ambiguous", report.ambiguous),
        ("skipped", report.suppressed),
        ("not attempted", report.not_attempted),
    ];
    for (name, n) in rows {
        if n > 0 || name == "sent" {
            writeln!(out, "  {name:<14} {n:>8}")?;
        }
    }
    writeln!(
        out,
        "  {:<14} {:>8}  ({} attempts in {}, {:.0} messages/s)",
        "planned",
        report.planned,
        report.attempts,
        human_duration(Duration::from_secs_f64(report.elapsed_secs)),
        report.rate()
    )?;
    if report.slowdowns > 0 {
        writeln!(
            out,
            "  the server asked to slow down; the rate was halved {} time(s)",
            report.slowdowns
        )?;
    }
    if report.suppressed > 0 {
        writeln!(
            out,
            "  {} address(es) left the list during the run and were skipped",
            report.suppressed
        )?;
    }
    if !report.problems.is_empty() {
        writeln!(out, "\nNot delivered:")?;
        for p in report.problems.iter().take(PROBLEM_LINES) {
            writeln!(out, "  {:<9} {}  {}", p.state.as_str(), p.address, p.reply)?;
        }
        if report.problems.len() > PROBLEM_LINES {
            writeln!(
                out,
                "  ... and {} more (`fortnight status` lists them all)",
                report.problems.len() - PROBLEM_LINES
            )?;
        }
    }
    for n in notes {
        writeln!(out, "{n}")?;
    }
    match &report.stopped {
        Some(StopReason::Interrupted) => writeln!(
            out,
            "\nInterrupted: transactions in flight were journaled; run the same command again to resume."
        )?,
        Some(StopReason::DailyCap) | Some(StopReason::Fatal(_)) | None => {}
    }
    Ok(())
}
