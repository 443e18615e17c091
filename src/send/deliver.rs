//! Deliver: the worker pool that turns planned recipients into SMTP transactions, and the
//! classification of what happened to each one.
//!
//! Three kinds of actors:
//! - a *composer* thread walks the plan (and the retry queue) in order, builds each message
//!   with the composer it is given and pushes it into a bounded channel (twice the worker
//!   count), so messages are streamed, never all held in memory;
//! - `concurrency` *workers*, each with its own SMTP connection, take a message, check that
//!   the address is still subscribed, wait for the global throttle, take a unit of the daily
//!   cap, mark the row `in_flight` (and wait for that commit), run the transaction and wait
//!   for the commit of its outcome before anything else (so no verdict is ever held across a
//!   wait: a crash while every worker waits leaves no `in_flight` row);
//! - the *journal writer* ([`crate::journal::JournalWriter`]), a task on the same event
//!   loop, commits in groups.
//!
//! Outcomes follow docs/standards.md "SMTP replies": 2xx after the final `.` is sent; 4xx is
//! deferred with exponential backoff and jitter and retried within the run up to `retries` times
//! (421, 4.7.x and 450 4.2.1 also halve the global rate); 5.1.x fails and asks for the address to
//! be marked bounced; other 5xx fail; 5.7.x, 530, 535, 552 5.3.4 and TLS failures stop the run (the
//! row stays deferred so the next run retries it); a connection lost before the final `.` is
//! retried, one lost after it is ambiguous and never retried automatically.
//!
//! Stopping (fatal error, daily cap, Ctrl-C) means: no new transaction starts; transactions
//! in flight finish (after Ctrl-C for at most the grace period, then they are abandoned and
//! journaled as ambiguous); rows never started stay `pending` (or `deferred`).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Result;
use chrono::Utc;
use lettre::Address;
use serde::Serialize;
use tokio::sync::watch;

use crate::base::IssueDate;
use crate::config::ThrottleConfig;
use crate::journal::{AttemptKind, Begin, End, JournalHandle, JournalKey, State, Ticket};
use crate::message::Outgoing;
use crate::subscribers::{Status, Subscriber};

use super::compose::{ComposeFn, ComposerFactory, Restamp};
use super::plan::Planned;
use super::smtp::{self, classify, SmtpConnection, SmtpSettings, Stage, TxOutcome, Verdict};
use super::throttle::{DailyBudget, Throttle};
use super::watch::ListWatch;

/// A message composed longer ago than this is composed again right before its transaction,
/// so its `Date` (and DKIM `t=`) is the moment it enters SMTP.
const RESTAMP_AFTER: Duration = Duration::from_millis(500);
/// After waiting this long in the throttle, a worker checks its connection with NOOP.
const PROBE_AFTER: Duration = Duration::from_secs(30);
/// This many exchanges in a row without any reply (greeting, EHLO, AUTH or a transaction
/// timing out) stop the run: the relay takes connections but does not answer.
const SILENT_LIMIT: u32 = 3;
/// This many 5.7.x refusals at RCPT in a row (no message accepted in between) stop the run:
/// the relay refuses us, not one recipient.
const POLICY_LIMIT: u32 = 3;
/// At most this many problems are kept for the report (all are in the journal).
const PROBLEMS_KEPT: usize = 10_000;

/// Why a run stopped before its plan was done.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", content = "message", rename_all = "snake_case")]
pub enum StopReason {
    /// Ctrl-C.
    Interrupted,
    /// The daily cap (`[throttle] per_day`) was reached.
    DailyCap,
    /// Authentication, policy, TLS, connection, journal or composition failure.
    Fatal(String),
}

#[derive(Debug, Clone, Default)]
struct StopState {
    reason: Option<StopReason>,
    abandon: bool,
}

/// Tells every part of a run to stop; the first reason given wins.
#[derive(Clone)]
pub struct Stopper {
    tx: Arc<watch::Sender<StopState>>,
}

impl Default for Stopper {
    fn default() -> Self {
        Stopper::new()
    }
}

impl Stopper {
    pub fn new() -> Stopper {
        Stopper {
            tx: Arc::new(watch::Sender::new(StopState::default())),
        }
    }
    pub fn stop(&self, reason: StopReason) {
        self.tx.send_if_modified(|s| {
            if s.reason.is_none() {
                s.reason = Some(reason);
                true
            } else {
                false
            }
        });
    }
    /// Stop waiting for transactions in flight (a second Ctrl-C).
    pub fn abandon(&self) {
        self.tx.send_modify(|s| {
            s.reason.get_or_insert(StopReason::Interrupted);
            s.abandon = true;
        });
    }
    pub(crate) fn reason(&self) -> Option<StopReason> {
        self.tx.borrow().reason.clone()
    }
    pub(crate) fn is_stopped(&self) -> bool {
        self.tx.borrow().reason.is_some()
    }
    /// Resolves once a stop was asked for.
    pub async fn stopped(&self) {
        let mut rx = self.tx.subscribe();
        let _ = rx.wait_for(|s| s.reason.is_some()).await;
    }
    async fn abandoned(&self) {
        let mut rx = self.tx.subscribe();
        let _ = rx.wait_for(|s| s.abandon).await;
    }
}

/// Live counters, read by the progress display.
#[derive(Debug, Default)]
pub struct Stats {
    pub planned: AtomicU64,
    pub sent: AtomicU64,
    pub failed: AtomicU64,
    pub ambiguous: AtomicU64,
    /// Left deferred for a later run.
    pub deferred: AtomicU64,
    /// Deferred and waiting for a retry within this run.
    pub retrying: AtomicU64,
    pub suppressed: AtomicU64,
    pub in_flight: AtomicU64,
    /// Transactions started.
    pub attempts: AtomicU64,
    /// Times the rate was halved.
    pub slowdowns: AtomicU64,
    /// Workers retired because the relay refused more connections.
    pub fewer_connections: AtomicU64,
}

impl Stats {
    fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Ordering::Relaxed);
    }
    fn sub(c: &AtomicU64) {
        c.fetch_sub(1, Ordering::Relaxed);
    }
    pub fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }
    /// Recipients whose fate this run decided.
    pub(crate) fn done(&self) -> u64 {
        Stats::get(&self.sent)
            + Stats::get(&self.failed)
            + Stats::get(&self.ambiguous)
            + Stats::get(&self.deferred)
            + Stats::get(&self.suppressed)
    }
}

/// One recipient that did not get the message, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    pub address: String,
    pub state: State,
    pub reply: String,
}

/// What a run did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RunReport {
    pub planned: u64,
    pub sent: u64,
    pub failed: u64,
    pub ambiguous: u64,
    /// Left deferred (retried by a later run once the backoff passed).
    pub deferred: u64,
    /// Left the list during the run.
    pub suppressed: u64,
    /// Never attempted (the run stopped first); still pending.
    pub not_attempted: u64,
    pub attempts: u64,
    pub slowdowns: u64,
    /// Connections given up because the relay allows fewer than `concurrency`.
    #[serde(skip_serializing_if = "is_zero")]
    pub fewer_connections: u64,
    /// Addresses marked bounced (5.1.x) in the list.
    pub bounced: u64,
    pub stopped: Option<StopReason>,
    pub problems: Vec<Problem>,
    pub elapsed_secs: f64,
}

impl RunReport {
    pub fn rate(&self) -> f64 {
        if self.elapsed_secs > 0.0 {
            self.sent as f64 / self.elapsed_secs
        } else {
            0.0
        }
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// A 5.7.x refusal (policy), not the authentication codes 530/535.
fn is_policy(r: &smtp::Reply) -> bool {
    r.enhanced.is_some_and(|e| e.class == 5 && e.subject == 7) && !matches!(r.code, 530 | 535)
}

/// The knobs of a run that come from `[throttle]`.
#[derive(Debug, Clone)]
pub struct DeliveryOptions {
    pub issue: IssueDate,
    pub kind: AttemptKind,
    pub concurrency: usize,
    /// Retries within the run after the first attempt.
    pub retries: u32,
    pub backoff: Duration,
    pub backoff_max: Duration,
    /// After Ctrl-C, how long transactions in flight may take before they are abandoned.
    pub interrupt_grace: Duration,
}

impl DeliveryOptions {
    pub fn from_config(issue: IssueDate, kind: AttemptKind, t: &ThrottleConfig) -> Self {
        DeliveryOptions {
            issue,
            kind,
            concurrency: t.concurrency.max(1) as usize,
            retries: t.retries,
            backoff: Duration::from_secs_f64(t.backoff_secs.max(0.0)),
            backoff_max: Duration::from_secs_f64(t.backoff_max_secs.max(0.0)),
            interrupt_grace: Duration::from_secs(30),
        }
    }

    /// Exponential backoff with "equal jitter": the `n`th attempt (1-based) waits between
    /// half and all of `backoff * 2^(n-1)`, capped at `backoff_max`.
    pub(crate) fn backoff_delay(&self, attempts: u32) -> Duration {
        let exp = attempts.saturating_sub(1).min(30);
        let full = self
            .backoff
            .saturating_mul(1u32 << exp)
            .min(self.backoff_max);
        let half = full / 2;
        half + full.mul_f64(rand::random::<f64>() * 0.5)
    }
}

/// Everything a run needs besides its recipients.
pub struct Deliverer {
    pub options: DeliveryOptions,
    pub smtp: Arc<SmtpSettings>,
    pub throttle: Arc<Throttle>,
    pub budget: Option<Arc<DailyBudget>>,
    pub journal: JournalHandle,
    pub stop: Stopper,
    pub stats: Arc<Stats>,
    /// Re-reads the list during the run so addresses that leave it are skipped.
    pub list_watch: Option<Arc<ListWatch>>,
    /// Composes a copy again, dated now, when it waited (see [`RESTAMP_AFTER`]).
    pub restamp: Option<Restamp>,
}

struct Job {
    planned: Planned,
    attempts_in_run: u32,
    message_id: String,
    /// The whole message; `wire_len` bytes of it go on the wire (see [`smtp::wire_body`]).
    bytes: Vec<u8>,
    wire_len: usize,
    envelope: Result<(Address, Address), String>,
    composed_at: std::time::Instant,
}

struct Retry {
    due: std::time::Instant,
    seq: u64,
    planned: Planned,
    attempts_in_run: u32,
}

impl PartialEq for Retry {
    fn eq(&self, o: &Self) -> bool {
        (self.due, self.seq) == (o.due, o.seq)
    }
}
impl Eq for Retry {}
impl PartialOrd for Retry {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Retry {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.due, self.seq).cmp(&(o.due, o.seq))
    }
}

struct InFlight {
    ticket: Ticket,
    who: JournalKey,
}

struct Ctx {
    d: Deliverer,
    issue: IssueDate,
    retry_tx: Mutex<std::sync::mpsc::Sender<Retry>>,
    outstanding: Arc<AtomicUsize>,
    alive_workers: AtomicUsize,
    in_flight: Mutex<HashMap<usize, InFlight>>,
    problems: Mutex<Vec<Problem>>,
    bounced: AtomicU64,
    /// Exchanges in a row that got no reply at all (see [`SILENT_LIMIT`]).
    silent_in_a_row: AtomicU32,
    /// 5.7.x refusals at RCPT since the last accepted message (see [`POLICY_LIMIT`]).
    policy_in_a_row: AtomicU32,
    /// Messages the relay accepted in this run.
    accepted: AtomicU64,
    /// Recipients refused at RCPT by policy in this run: key → `accepted` at that moment.
    policy_refused: Mutex<HashMap<String, u64>>,
}

/// Decrements the outstanding-job count when a job is done with, whatever the path.
struct Outstanding(Arc<AtomicUsize>);
impl Drop for Outstanding {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn journal_key(s: &Subscriber) -> JournalKey {
    JournalKey {
        key: s.email.key(),
        address: s.email.as_str().to_string(),
    }
}

impl Deliverer {
    /// Runs the plan to its end (or to a stop) and reports.
    pub async fn deliver(self, recipients: Vec<Planned>, composer: ComposerFactory) -> RunReport {
        let started = std::time::Instant::now();
        self.stats
            .planned
            .store(recipients.len() as u64, Ordering::Relaxed);
        let concurrency = self.options.concurrency;
        let (job_tx, job_rx) = tokio::sync::mpsc::channel::<Job>(concurrency * 2);
        let (retry_tx, retry_rx) = std::sync::mpsc::channel::<Retry>();
        let outstanding = Arc::new(AtomicUsize::new(0));
        let stop = self.stop.clone();
        let journal = self.journal.clone();
        let grace = self.options.interrupt_grace;

        let feeder = Feeder {
            plan: recipients.into_iter(),
            plan_done: false,
            retries: BinaryHeap::new(),
            job_tx,
            retry_rx,
            outstanding: outstanding.clone(),
            stop: stop.clone(),
            stats: self.stats.clone(),
        };
        let feeder = std::thread::Builder::new()
            .name("compose".into())
            .spawn(move || feeder.run(composer))
            .expect("spawning the composer thread");

        let ctx = Arc::new(Ctx {
            issue: self.options.issue,
            retry_tx: Mutex::new(retry_tx),
            outstanding,
            alive_workers: AtomicUsize::new(concurrency),
            in_flight: Mutex::new(HashMap::new()),
            problems: Mutex::new(Vec::new()),
            bounced: AtomicU64::new(0),
            silent_in_a_row: AtomicU32::new(0),
            policy_in_a_row: AtomicU32::new(0),
            accepted: AtomicU64::new(0),
            policy_refused: Mutex::new(HashMap::new()),
            d: self,
        });
        let jobs = Arc::new(tokio::sync::Mutex::new(job_rx));
        let mut workers = tokio::task::JoinSet::new();
        for id in 0..concurrency {
            workers.spawn(worker(id, ctx.clone(), jobs.clone()));
        }
        drop(jobs);

        if !finished_or_abandoned(&mut workers, &stop, grace).await {
            workers.abort_all();
            while workers.join_next().await.is_some() {}
            ctx.abandon_in_flight();
        }
        // The composer thread ends once the workers are gone (its channel is closed) or
        // the plan is done; joining it is a blocking call.
        let _ = tokio::task::spawn_blocking(move || feeder.join()).await;
        if let Err(e) = journal.flush().await {
            stop.stop(StopReason::Fatal(format!("{e:#}")));
        }
        ctx.report(started)
    }
}

/// Waits for every worker; `false` when they were given up on instead (after Ctrl-C, once
/// the grace period passed or a second Ctrl-C came).
async fn finished_or_abandoned(
    workers: &mut tokio::task::JoinSet<()>,
    stop: &Stopper,
    grace: Duration,
) -> bool {
    let abandon = async {
        stop.stopped().await;
        if stop.reason() == Some(StopReason::Interrupted) {
            tokio::select! {
                _ = tokio::time::sleep(grace) => {}
                _ = stop.abandoned() => {}
            }
        } else {
            std::future::pending::<()>().await;
        }
    };
    let finished = async { while workers.join_next().await.is_some() {} };
    tokio::select! {
        _ = finished => true,
        _ = abandon => false,
    }
}

/// The composer thread's side of a run: retries that are due first, then the plan in order.
struct Feeder {
    plan: std::vec::IntoIter<Planned>,
    plan_done: bool,
    retries: BinaryHeap<Reverse<Retry>>,
    job_tx: tokio::sync::mpsc::Sender<Job>,
    retry_rx: std::sync::mpsc::Receiver<Retry>,
    outstanding: Arc<AtomicUsize>,
    stop: Stopper,
    stats: Arc<Stats>,
}

impl Feeder {
    fn run(mut self, composer: ComposerFactory) {
        let mut compose = match composer() {
            Ok(c) => c,
            Err(e) => {
                self.stop.stop(StopReason::Fatal(format!(
                    "cannot prepare the messages: {e:#}"
                )));
                return;
            }
        };
        loop {
            if self.stop.is_stopped() {
                return;
            }
            self.retries.extend(self.retry_rx.try_iter().map(Reverse));
            let now = std::time::Instant::now();
            let Some((planned, attempts_in_run)) = self.next(now) else {
                if self.is_done() {
                    return;
                }
                self.wait_for_retry(now);
                continue;
            };
            let Some(job) = self.job(&mut compose, planned, attempts_in_run) else {
                return;
            };
            self.outstanding.fetch_add(1, Ordering::SeqCst);
            if self.job_tx.blocking_send(job).is_err() {
                self.outstanding.fetch_sub(1, Ordering::SeqCst);
                return;
            }
        }
    }

    /// The next recipient to compose: a retry that is due, else the next of the plan.
    fn next(&mut self, now: std::time::Instant) -> Option<(Planned, u32)> {
        if self.retries.peek().is_some_and(|r| r.0.due <= now) {
            let Reverse(r) = self.retries.pop().expect("peeked");
            Stats::sub(&self.stats.retrying);
            return Some((r.planned, r.attempts_in_run));
        }
        if self.plan_done {
            return None;
        }
        let next = self.plan.next();
        self.plan_done = next.is_none();
        next.map(|p| (p, 0))
    }

    /// The plan is done and no job can still ask for a retry.
    fn is_done(&mut self) -> bool {
        // Outstanding first: a worker queues its retry before it stops counting the job.
        if self.plan_done && self.outstanding.load(Ordering::SeqCst) == 0 {
            self.retries.extend(self.retry_rx.try_iter().map(Reverse));
            return self.retries.is_empty();
        }
        false
    }

    /// Waits for a retry to come in or the next one to fall due (at most 50 ms).
    fn wait_for_retry(&mut self, now: std::time::Instant) {
        let wait = self
            .retries
            .peek()
            .map_or(Duration::from_millis(50), |r| {
                r.0.due.saturating_duration_since(now)
            })
            .min(Duration::from_millis(50));
        if let Ok(r) = self.retry_rx.recv_timeout(wait) {
            self.retries.push(Reverse(r));
        }
    }

    /// Composes the message and its envelope; `None` when that stopped the run.
    fn job(&self, compose: &mut ComposeFn, planned: Planned, attempts_in_run: u32) -> Option<Job> {
        let out = match compose(&planned.subscriber) {
            Ok(o) => o,
            Err(e) => {
                self.stop.stop(StopReason::Fatal(format!(
                    "cannot build the message for {}: {e:#}",
                    planned.subscriber.email
                )));
                return None;
            }
        };
        let envelope = match (
            out.envelope_from.parse::<Address>(),
            out.recipient.as_str().parse::<Address>(),
        ) {
            (Ok(f), Ok(t)) => Ok((f, t)),
            (Err(e), _) => {
                self.stop.stop(StopReason::Fatal(format!(
                    "the envelope sender `{}` is not a valid address: {e}",
                    out.envelope_from
                )));
                return None;
            }
            (_, Err(e)) => Err(format!("the address is not valid for SMTP: {e}")),
        };
        let message_id = out.message_id.clone();
        let (bytes, wire_len) = on_the_wire(out);
        Some(Job {
            planned,
            attempts_in_run,
            message_id,
            bytes,
            wire_len,
            envelope,
            composed_at: std::time::Instant::now(),
        })
    }
}

/// The message's bytes and how many of them go on the wire. Usually the message is already
/// clean: keep its buffer and send a prefix of it.
fn on_the_wire(out: Outgoing) -> (Vec<u8>, usize) {
    match smtp::wire_body(&out.bytes) {
        std::borrow::Cow::Borrowed(b) => {
            let n = b.len();
            (out.bytes, n)
        }
        std::borrow::Cow::Owned(v) => {
            let n = v.len();
            (v, n)
        }
    }
}

async fn worker(
    id: usize,
    ctx: Arc<Ctx>,
    jobs: Arc<tokio::sync::Mutex<tokio::sync::mpsc::Receiver<Job>>>,
) {
    let mut conn: Option<SmtpConnection> = None;
    let stop = ctx.d.stop.clone();
    loop {
        if stop.is_stopped() {
            break;
        }
        let job = {
            let mut rx = tokio::select! {
                biased;
                _ = stop.stopped() => break,
                g = jobs.lock() => g,
            };
            tokio::select! {
                biased;
                _ = stop.stopped() => break,
                j = rx.recv() => j,
            }
        };
        let Some(job) = job else { break };
        let guard = Outstanding(ctx.outstanding.clone());
        let keep_going = ctx.handle(id, job, &mut conn).await;
        drop(guard);
        if !keep_going {
            break;
        }
    }
    if let Some(c) = conn {
        c.quit(&ctx.d.smtp).await;
    }
}

impl Ctx {
    /// Journals the transactions still in flight after the workers were given up on as
    /// ambiguous.
    fn abandon_in_flight(&self) {
        let stats = &self.d.stats;
        let left: Vec<InFlight> = self
            .in_flight
            .lock()
            .expect("in-flight lock")
            .drain()
            .map(|(_, v)| v)
            .collect();
        for f in left {
            Stats::sub(&stats.in_flight);
            Stats::add(&stats.ambiguous, 1);
            let reply = "abandoned after Ctrl-C while the transaction was in flight".to_string();
            self.problem(&f.who.address, State::Ambiguous, &reply);
            let _ = self.d.journal.end(End {
                kind: self.d.options.kind,
                ticket: f.ticket,
                issue: self.issue,
                who: f.who,
                state: State::Ambiguous,
                reply: Some(reply),
                next_attempt_at: None,
                list_update: None,
                at: Utc::now(),
            });
        }
    }

    /// What the run did, from the counters.
    fn report(&self, started: std::time::Instant) -> RunReport {
        let stats = &self.d.stats;
        let g = |c: &AtomicU64| Stats::get(c);
        let planned = g(&stats.planned);
        let deferred = g(&stats.deferred) + g(&stats.retrying);
        let done = g(&stats.sent)
            + g(&stats.failed)
            + g(&stats.ambiguous)
            + deferred
            + g(&stats.suppressed);
        let problems = std::mem::take(&mut *self.problems.lock().expect("problems lock"));
        RunReport {
            planned,
            sent: g(&stats.sent),
            failed: g(&stats.failed),
            ambiguous: g(&stats.ambiguous),
            deferred,
            suppressed: g(&stats.suppressed),
            not_attempted: planned.saturating_sub(done),
            attempts: g(&stats.attempts),
            slowdowns: g(&stats.slowdowns),
            fewer_connections: g(&stats.fewer_connections),
            bounced: self.bounced.load(Ordering::Relaxed),
            stopped: self.d.stop.reason(),
            problems,
            elapsed_secs: started.elapsed().as_secs_f64(),
        }
    }

    fn problem(&self, address: &str, state: State, reply: &str) {
        let mut p = self.problems.lock().expect("problems lock");
        if p.len() < PROBLEMS_KEPT {
            p.push(Problem {
                address: address.to_string(),
                state,
                reply: reply.to_string(),
            });
        }
    }

    fn requeue(&self, job: Job) {
        Stats::add(&self.d.stats.retrying, 1);
        let _ = self.retry_tx.lock().expect("retry lock").send(Retry {
            due: std::time::Instant::now(),
            seq: rand::random(),
            planned: job.planned,
            attempts_in_run: job.attempts_in_run,
        });
    }

    /// Opens a connection, retrying network failures with backoff. `None`: this worker
    /// gives up (the run stops if it was the last one).
    async fn connect(&self) -> Option<SmtpConnection> {
        let stop = &self.d.stop;
        let mut failures = 0u32;
        loop {
            let attempt_started = tokio::time::Instant::now();
            let r = tokio::select! {
                biased;
                _ = stop.stopped() => return None,
                r = smtp::connect(&self.d.smtp) => r,
            };
            let e = match r {
                Ok(c) => {
                    self.heard_from_the_server();
                    return Some(c);
                }
                Err(e) => e,
            };
            if matches!(e, smtp::ConnectError::NoReply(_)) {
                self.heard_nothing(&e.to_string());
                if stop.is_stopped() {
                    return None;
                }
            }
            if e.is_fatal() {
                stop.stop(StopReason::Fatal(format!(
                    "SMTP server {}: {e}",
                    self.d.smtp
                )));
                return None;
            }
            if self.too_many_connections(&e) {
                // The relay allows fewer connections than `concurrency`: one fewer, and
                // the rate stays as it is (docs/standards.md "SMTP replies").
                Stats::add(&self.d.stats.fewer_connections, 1);
                return None;
            }
            if e.asks_to_slow_down()
                && self
                    .d
                    .throttle
                    .slow_down(attempt_started, tokio::time::Instant::now())
            {
                Stats::add(&self.d.stats.slowdowns, 1);
            }
            failures += 1;
            if failures > self.d.options.retries {
                if self.alive_workers.fetch_sub(1, Ordering::SeqCst) == 1 {
                    stop.stop(StopReason::Fatal(format!(
                        "cannot connect to the SMTP server {} ({failures} attempts): {e}",
                        self.d.smtp
                    )));
                }
                return None;
            }
            let delay = self.d.options.backoff_delay(failures);
            tokio::select! {
                biased;
                _ = stop.stopped() => return None,
                _ = tokio::time::sleep(delay) => {}
            }
        }
    }

    /// A 4xx refusal of the session (greeting, EHLO) while other workers still have
    /// connections: this worker retires (down to one worker), so the relay's connection limit
    /// lowers the number of connections instead of the rate. `true` when it retired.
    fn too_many_connections(&self, e: &smtp::ConnectError) -> bool {
        let smtp::ConnectError::Refused(r) = e else {
            return false;
        };
        if !(400..500).contains(&r.code) {
            return false;
        }
        self.alive_workers
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n > 1).then(|| n - 1)
            })
            .is_ok()
    }

    /// The server answered something: the silence count starts again.
    fn heard_from_the_server(&self) {
        self.silent_in_a_row.store(0, Ordering::SeqCst);
    }

    /// The server did not answer in time; [`SILENT_LIMIT`] times in a row stop the run.
    fn heard_nothing(&self, what: &str) {
        let n = self.silent_in_a_row.fetch_add(1, Ordering::SeqCst) + 1;
        if n >= SILENT_LIMIT {
            self.d.stop.stop(StopReason::Fatal(format!(
                "the SMTP server {} takes connections but did not answer {n} times in a row \
                 (last: {what}); this is not about one recipient, so the run stopped (the rows \
                 not sent stay deferred or pending for the next run)",
                self.d.smtp
            )));
        }
    }

    /// Handles one job; `false` when this worker should stop taking jobs.
    async fn handle(&self, id: usize, job: Job, conn: &mut Option<SmtpConnection>) -> bool {
        let who = journal_key(&job.planned.subscriber);
        if let Err(reason) = &job.envelope {
            // Nothing can be sent to this address: record a failure without a transaction.
            let reason = reason.clone();
            return self.record_without_transaction(job, who, reason).await;
        }
        if conn.as_ref().is_none_or(|c| !c.is_usable()) {
            *conn = None;
            match self.connect().await {
                Some(c) => *conn = Some(c),
                None => {
                    self.requeue_unless_stopped(job);
                    return false;
                }
            }
        }
        if self.left_the_list(&who) {
            return !self.d.stop.is_stopped();
        }
        let Some(job) = self.wait_turn(job, conn).await else {
            return false;
        };
        // The wait may have been long: ask the list again right before the transaction.
        if self.left_the_list(&who) {
            self.give_back();
            return !self.d.stop.is_stopped();
        }
        let Some(job) = self.restamped(job) else {
            self.give_back();
            return false;
        };
        self.transact(id, job, who, conn).await
    }

    /// The job, composed again dated now when it waited since it was composed; `None` when
    /// that failed (the run stops).
    fn restamped(&self, mut job: Job) -> Option<Job> {
        let Some(restamp) = &self.d.restamp else {
            return Some(job);
        };
        if job.composed_at.elapsed() < RESTAMP_AFTER {
            return Some(job);
        }
        match restamp(&job.planned.subscriber) {
            Ok(out) => {
                (job.bytes, job.wire_len) = on_the_wire(out);
                job.composed_at = std::time::Instant::now();
                Some(job)
            }
            Err(e) => {
                self.d.stop.stop(StopReason::Fatal(format!(
                    "cannot build the message for {}: {e:#}",
                    job.planned.subscriber.email
                )));
                None
            }
        }
    }

    /// Whether the address left the list during the run (then its row is suppressed), or
    /// the list cannot be read any more (then the run stops, the row stays as it was).
    fn left_the_list(&self, who: &JournalKey) -> bool {
        let d = &self.d;
        if d.options.kind != AttemptKind::Delivery {
            return false;
        }
        let Some(w) = &d.list_watch else {
            return false;
        };
        if let Some(why) = w.broken() {
            d.stop.stop(StopReason::Fatal(format!(
                "{why}\nThe run stopped so that nobody who left the list is mailed from an old \
                 copy of it."
            )));
            return true;
        }
        if w.is_subscribed(&who.key) {
            return false;
        }
        Stats::add(&d.stats.suppressed, 1);
        if let Err(e) = d.journal.suppress(self.issue, &who.key) {
            d.stop.stop(StopReason::Fatal(format!("{e:#}")));
        }
        true
    }

    /// Waits for the throttle, takes a unit of the daily cap and, after a long wait, checks
    /// the connection. `None`: this worker stops (the job was requeued, or the run stops),
    /// with the unit given back.
    async fn wait_turn(&self, job: Job, conn: &mut Option<SmtpConnection>) -> Option<Job> {
        let d = &self.d;
        let waited_from = tokio::time::Instant::now();
        tokio::select! {
            biased;
            _ = d.stop.stopped() => return None,
            _ = d.throttle.acquire() => {}
        }
        if let Some(b) = &d.budget {
            if !b.take() {
                d.stop.stop(StopReason::DailyCap);
                return None;
            }
        }
        if waited_from.elapsed() > PROBE_AFTER && !self.still_connected(conn).await {
            self.give_back();
            self.requeue_unless_stopped(job);
            return None;
        }
        if d.stop.is_stopped() {
            self.give_back();
            return None;
        }
        Some(job)
    }

    /// Checks the connection with NOOP and reconnects if it is gone; `false` when that failed.
    async fn still_connected(&self, conn: &mut Option<SmtpConnection>) -> bool {
        let alive = match conn.as_mut() {
            Some(c) => c.probe(&self.d.smtp).await,
            None => false,
        };
        if alive {
            return true;
        }
        *conn = None;
        *conn = self.connect().await;
        conn.is_some()
    }

    /// Marks the row `in_flight`, runs the transaction and records its outcome; `false` when
    /// this worker should stop taking jobs.
    async fn transact(
        &self,
        id: usize,
        job: Job,
        who: JournalKey,
        conn: &mut Option<SmtpConnection>,
    ) -> bool {
        let d = &self.d;
        let begin = Begin {
            kind: d.options.kind,
            issue: self.issue,
            who: who.clone(),
            message_id: job.message_id.clone(),
            at: Utc::now(),
        };
        let ticket = match d.journal.begin(begin).await {
            Ok(Some(t)) => t,
            Ok(None) => {
                self.give_back();
                self.already_decided(&who);
                return false;
            }
            Err(e) => {
                self.give_back();
                d.stop.stop(StopReason::Fatal(format!("{e:#}")));
                return false;
            }
        };
        Stats::add(&d.stats.attempts, 1);
        Stats::add(&d.stats.in_flight, 1);
        self.in_flight.lock().expect("in-flight lock").insert(
            id,
            InFlight {
                ticket: ticket.clone(),
                who: who.clone(),
            },
        );

        let (from, to) = job.envelope.as_ref().expect("checked above");
        let c = conn.as_mut().expect("connected above");
        let started = tokio::time::Instant::now();
        let outcome = c.send(&d.smtp, from, to, &job.bytes[..job.wire_len]).await;

        self.in_flight.lock().expect("in-flight lock").remove(&id);
        Stats::sub(&d.stats.in_flight);
        if !c.is_usable() {
            *conn = None;
        }
        let accepted_or_maybe = self.finish(job, ticket, who, outcome, started);
        if !accepted_or_maybe {
            self.give_back();
        }
        // The verdict is durable before this worker waits for anything (the throttle, a
        // backoff, the next message): a crash from here on loses nothing the relay said.
        self.commit_verdict().await;
        !d.stop.is_stopped()
    }

    /// Waits until the outcomes buffered so far are committed (several workers' outcomes
    /// share one commit); a journal error stops the run.
    async fn commit_verdict(&self) {
        if let Err(e) = self.d.journal.flush().await {
            self.d.stop.stop(StopReason::Fatal(format!("{e:#}")));
        }
    }

    /// The journal refused the `in_flight` mark: the row is already sent, failed or in flight,
    /// which this run did not plan; only a second sender can have done that. Nothing is sent
    /// and the run stops.
    fn already_decided(&self, who: &JournalKey) {
        self.d.stop.stop(StopReason::Fatal(format!(
            "the journal already records {} as sent, failed or in flight for this issue, which \
             this run did not plan: another sender is working on it; stopping without sending",
            who.address
        )));
    }

    /// Gives a unit of the daily cap back (the message was not accepted).
    fn give_back(&self) {
        if let Some(b) = &self.d.budget {
            b.give_back();
        }
    }

    fn requeue_unless_stopped(&self, job: Job) {
        if !self.d.stop.is_stopped() {
            self.requeue(job);
        }
    }

    async fn record_without_transaction(&self, job: Job, who: JournalKey, reason: String) -> bool {
        let d = &self.d;
        let begin = Begin {
            kind: d.options.kind,
            issue: self.issue,
            who: who.clone(),
            message_id: job.message_id.clone(),
            at: Utc::now(),
        };
        match d.journal.begin(begin).await {
            Ok(None) => {
                self.already_decided(&who);
                false
            }
            Ok(Some(ticket)) => {
                self.end(ticket, &who, State::Failed, &reason, None, None);
                Stats::add(&d.stats.failed, 1);
                self.commit_verdict().await;
                !d.stop.is_stopped()
            }
            Err(e) => {
                d.stop.stop(StopReason::Fatal(format!("{e:#}")));
                false
            }
        }
    }

    fn end(
        &self,
        ticket: Ticket,
        who: &JournalKey,
        state: State,
        reply: &str,
        next: Option<Duration>,
        list_update: Option<Status>,
    ) {
        let now = Utc::now();
        if state != State::Sent {
            self.problem(&who.address, state, reply);
        }
        let end = End {
            kind: self.d.options.kind,
            ticket,
            issue: self.issue,
            who: who.clone(),
            state,
            reply: Some(reply.to_string()),
            next_attempt_at: next.map(|d| now + chrono::Duration::from_std(d).unwrap_or_default()),
            list_update,
            at: now,
        };
        if let Err(e) = self.d.journal.end(end) {
            self.d.stop.stop(StopReason::Fatal(format!("{e:#}")));
        }
    }

    /// Records the outcome; returns whether the relay (maybe) accepted the message.
    fn finish(
        &self,
        job: Job,
        ticket: Ticket,
        who: JournalKey,
        outcome: TxOutcome,
        started: tokio::time::Instant,
    ) -> bool {
        let d = &self.d;
        let outcome = match outcome {
            TxOutcome::Silent { stage, error } => {
                self.heard_nothing(&error);
                TxOutcome::Lost { stage, error }
            }
            TxOutcome::Replied { .. } => {
                self.heard_from_the_server();
                outcome
            }
            other => other,
        };
        match outcome {
            TxOutcome::Replied { stage, reply } => {
                self.replied(job, ticket, &who, stage, &reply, started)
            }
            TxOutcome::Silent { .. } => unreachable!("turned into Lost above"),
            TxOutcome::Lost {
                stage: Stage::AfterDot,
                error,
            } => {
                let text =
                    format!("connection lost after the final dot, before the reply: {error}");
                self.end(ticket, &who, State::Ambiguous, &text, None, None);
                Stats::add(&d.stats.ambiguous, 1);
                true
            }
            TxOutcome::Lost { stage, error } => {
                self.defer(
                    job,
                    ticket,
                    &who,
                    format!("connection lost during {stage}: {error}"),
                );
                false
            }
            TxOutcome::Local(msg) => {
                self.end(
                    ticket,
                    &who,
                    State::Deferred,
                    &msg,
                    Some(Duration::ZERO),
                    None,
                );
                Stats::add(&d.stats.deferred, 1);
                d.stop.stop(StopReason::Fatal(format!(
                    "cannot send through {}: {msg}",
                    d.smtp
                )));
                false
            }
        }
    }

    /// Records what the server replied at `stage` (the table in [`classify`]); returns
    /// whether it accepted the message.
    fn replied(
        &self,
        job: Job,
        ticket: Ticket,
        who: &JournalKey,
        stage: Stage,
        reply: &smtp::Reply,
        started: tokio::time::Instant,
    ) -> bool {
        let d = &self.d;
        let stats = &d.stats;
        let text = reply.to_string();
        match classify(reply) {
            Verdict::Sent if stage == Stage::AfterDot => {
                // Only the journal keeps successful replies.
                self.policy_in_a_row.store(0, Ordering::SeqCst);
                self.accepted.fetch_add(1, Ordering::SeqCst);
                self.end(ticket, who, State::Sent, &text, None, None);
                Stats::add(&stats.sent, 1);
                true
            }
            Verdict::Sent => {
                // A positive reply where a negative one ended the transaction cannot
                // happen; treat it as a temporary failure.
                let why = format!("unexpected reply at {stage}: {text}");
                self.defer(job, ticket, who, why);
                false
            }
            Verdict::Defer { slow_down } => {
                if slow_down && d.throttle.slow_down(started, tokio::time::Instant::now()) {
                    Stats::add(&stats.slowdowns, 1);
                }
                self.defer(job, ticket, who, text);
                false
            }
            Verdict::Fail { bounce } => {
                let list_update =
                    (bounce && d.options.kind == AttemptKind::Delivery).then_some(Status::Bounced);
                if list_update.is_some() {
                    self.bounced.fetch_add(1, Ordering::Relaxed);
                }
                self.end(ticket, who, State::Failed, &text, None, list_update);
                Stats::add(&stats.failed, 1);
                false
            }
            Verdict::Stop if stage == Stage::Rcpt && is_policy(reply) => {
                self.policy_at_rcpt(job, ticket, who, &text)
            }
            Verdict::Stop => {
                // Not this recipient's fault: keep the row for the next run.
                let retry_now = Some(Duration::ZERO);
                self.end(ticket, who, State::Deferred, &text, retry_now, None);
                Stats::add(&stats.deferred, 1);
                d.stop.stop(StopReason::Fatal(format!(
                    "the SMTP server {} refused {stage} with `{text}`; this is not about one \
                     recipient (policy, authentication or size), so the run stopped",
                    d.smtp
                )));
                false
            }
        }
    }

    /// A 5.7.x refusal of one recipient at RCPT (docs/standards.md "SMTP replies"): the
    /// first time in a run it is deferred (retried later in the run); refused again after
    /// the relay accepted other messages since its first refusal, that recipient fails and
    /// the run goes on. The [`POLICY_LIMIT`]th first refusal in a row (nothing accepted in
    /// between) stops the run. Returns `false` (not accepted).
    fn policy_at_rcpt(&self, job: Job, ticket: Ticket, who: &JournalKey, text: &str) -> bool {
        let d = &self.d;
        let accepted = self.accepted.load(Ordering::SeqCst);
        let refused_again_after_accepts = {
            let mut m = self.policy_refused.lock().expect("policy lock");
            let again = m.get(&who.key).is_some_and(|at| accepted > *at);
            if !again {
                m.insert(who.key.clone(), accepted);
            }
            again
        };
        if refused_again_after_accepts {
            // The relay takes the others: it is about this recipient.
            self.end(ticket, who, State::Failed, text, None, None);
            Stats::add(&d.stats.failed, 1);
            return false;
        }
        let n = self.policy_in_a_row.fetch_add(1, Ordering::SeqCst) + 1;
        if n >= POLICY_LIMIT {
            self.end(
                ticket,
                who,
                State::Deferred,
                text,
                Some(Duration::ZERO),
                None,
            );
            Stats::add(&d.stats.deferred, 1);
            d.stop.stop(StopReason::Fatal(format!(
                "the SMTP server {} refused {n} recipients in a row at RCPT TO with a policy \
                 reply (last: `{text}`); this is about us, not one recipient (blocklist, \
                 authentication, reputation), so the run stopped",
                d.smtp
            )));
        } else {
            self.defer(job, ticket, who, text.to_string());
        }
        false
    }

    fn defer(&self, job: Job, ticket: Ticket, who: &JournalKey, reply: String) {
        let d = &self.d;
        let total = job.planned.prior_attempts + job.attempts_in_run + 1;
        let delay = d.options.backoff_delay(total);
        let retry_here = job.attempts_in_run < d.options.retries && !d.stop.is_stopped();
        // Only deferrals left for a later run are problems worth reporting.
        let now = Utc::now();
        let end = End {
            kind: d.options.kind,
            ticket,
            issue: self.issue,
            who: who.clone(),
            state: State::Deferred,
            reply: Some(reply.clone()),
            next_attempt_at: Some(now + chrono::Duration::from_std(delay).unwrap_or_default()),
            list_update: None,
            at: now,
        };
        if let Err(e) = d.journal.end(end) {
            d.stop.stop(StopReason::Fatal(format!("{e:#}")));
        }
        if retry_here {
            Stats::add(&d.stats.retrying, 1);
            let planned = job.planned;
            let _ = self.retry_tx.lock().expect("retry lock").send(Retry {
                due: std::time::Instant::now() + delay,
                seq: rand::random(),
                planned,
                attempts_in_run: job.attempts_in_run + 1,
            });
        } else {
            self.problem(&who.address, State::Deferred, &reply);
            Stats::add(&d.stats.deferred, 1);
        }
    }
}
