//! Progress: what a running send shows, and the summary table it ends with.
//!
//! On a terminal an indicatif bar (done / planned, sent, retrying, deferred, failed, rate,
//! ETA) redrawn ten times a second on stderr; otherwise (cron, CI, a pipe) one plain line on
//! stderr every five seconds. Both run on their own thread and only read the live
//! [`Stats`] counters: they decide nothing. The summary of a run goes to stdout.

use super::output;
use std::io::Write;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::send::deliver::{RunReport, Stats, StopReason};

/// A running progress display; [`Progress::finish`] removes it.
pub struct Progress {
    stop: mpsc::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl Progress {
    /// Starts the display for a run of `total` recipients: a bar when `tty`, else lines.
    pub fn start(stats: Arc<Stats>, total: u64, tty: bool) -> Progress {
        let (stop, stopped) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("progress".into())
            .spawn(move || {
                if tty {
                    draw_bar(&stats, total, &stopped);
                } else {
                    print_lines(&stats, total, &stopped);
                }
            })
            .expect("spawning the progress thread");
        Progress { stop, thread }
    }

    /// Stops the display (the bar is cleared) and waits for it.
    pub fn finish(self) {
        let _ = self.stop.send(());
        let _ = self.thread.join();
    }
}

/// Waits up to `d`; `true` once [`Progress::finish`] was called.
fn wait(stopped: &mpsc::Receiver<()>, d: Duration) -> bool {
    !matches!(
        stopped.recv_timeout(d),
        Err(mpsc::RecvTimeoutError::Timeout)
    )
}

fn draw_bar(stats: &Stats, total: u64, stopped: &mpsc::Receiver<()>) {
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
        bar.set_message(counts_line(stats));
        if wait(stopped, Duration::from_millis(100)) {
            break;
        }
    }
    bar.finish_and_clear();
}

fn print_lines(stats: &Stats, total: u64, stopped: &mpsc::Receiver<()>) {
    let started = Instant::now();
    while !wait(stopped, Duration::from_secs(5)) {
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
            output::messages(),
            "progress: {done}/{total} ({}), {rate:.0} messages/s{eta}",
            counts_line(stats)
        );
    }
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

/// At most this many problem lines in the text summary (`fortnight status` lists them all).
const PROBLEM_LINES: usize = 20;

/// Prints the text summary of a run: `title`, the counts, the problems, then `notes`.
pub fn print_summary(
    out: &mut impl Write,
    title: &str,
    report: &RunReport,
    notes: &[String],
) -> std::io::Result<()> {
    writeln!(out, "{title}")?;
    print_counts(out, report)?;
    if !report.problems.is_empty() {
        writeln!(out, "\nNot delivered:")?;
        for p in report.problems.iter().take(PROBLEM_LINES) {
            writeln!(out, "  {:<9} {}  {}", p.state, p.address, p.reply)?;
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

fn print_counts(out: &mut impl Write, report: &RunReport) -> std::io::Result<()> {
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
    Ok(())
}

/// Formats a duration for people: `45 s`, `12 min`, `3 h 20 min`, `2 days 4 h`.
pub fn human_duration(d: Duration) -> String {
    let s = d.as_secs_f64().round() as u64;
    if d < Duration::from_millis(500) {
        "under 1 s".to_string()
    } else if s < 90 {
        format!("{s} s")
    } else if s < 90 * 60 {
        format!("{} min", (s + 30) / 60)
    } else if s < 48 * 3600 {
        format!("{} h {} min", s / 3600, (s % 3600) / 60)
    } else {
        format!("{} days {} h", s / 86400, (s % 86400) / 3600)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(human_duration(Duration::from_secs(45)), "45 s");
        assert_eq!(human_duration(Duration::from_millis(2900)), "3 s");
        assert_eq!(human_duration(Duration::from_millis(100)), "under 1 s");
        assert_eq!(human_duration(Duration::from_secs(600)), "10 min");
        assert_eq!(
            human_duration(Duration::from_secs(3 * 3600 + 1200)),
            "3 h 20 min"
        );
        assert_eq!(human_duration(Duration::from_secs(3 * 86400)), "3 days 0 h");
    }
}
