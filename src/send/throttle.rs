//! Throttle: one global limiter that every SMTP transaction passes right before it starts.
//!
//! Each configured limit (`per_second`, `per_minute`, `per_hour`) is a token bucket of
//! capacity one (GCRA without burst): starts are spaced evenly at the limit's rate, so
//! `per_second = 50` starts one transaction every 20 ms and no window of one second ever holds
//! more than 50 starts (a bucket holding a whole second's worth would allow 99 in the first
//! second, which a relay counting a sliding window rejects). A transaction reserves a start
//! time from every bucket and sleeps until the latest one; reservations are taken in order
//! under one lock, so the limit holds across all workers. `per_day` is not a bucket: it is the daily cap, counted from the journal across
//! runs (see [`DailyBudget`]).
//!
//! Adaptive slowdown: a 421, 4.7.x or 450 4.2.1 reply calls `Throttle::slow_down`, which
//! halves the rate (the configured sustained rate, or the rate measured over the last five
//! seconds when nothing is configured), down to one message a minute. Only a reply to a
//! transaction that started after the previous halving, and at least a second after it, halves
//! again: the replies to transactions already under way when the rate was cut say nothing
//! about the new rate (one cut per round trip, as in TCP congestion control). After
//! `SLOWDOWN_PERIOD` without such a reply the rate doubles, every period, until it is back to
//! normal.
//!
//! The limiter decides *when*; it never opens sockets and never counts concurrency (the fixed
//! worker pool does).

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::config::ThrottleConfig;

/// How long a slowdown lasts without a new 421 / 4.7.x reply before the rate doubles again.
pub(crate) const SLOWDOWN_PERIOD: Duration = Duration::from_secs(60);
/// Two slowdown replies closer than this halve the rate once (a burst of 421s from every
/// connection is one signal).
const SLOWDOWN_DEBOUNCE: Duration = Duration::from_secs(1);
/// The slowest rate a slowdown goes to (messages per second).
const SLOWEST_RATE: f64 = 1.0 / 60.0;
/// Window over which the actual rate is measured when no limit is configured.
const MEASURE_WINDOW: Duration = Duration::from_secs(5);

/// A limit in messages per window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Limit {
    pub(crate) count: u32,
    pub(crate) window: Duration,
}

impl Limit {
    fn per_second(self) -> f64 {
        f64::from(self.count) / self.window.as_secs_f64()
    }
}

/// One GCRA bucket without burst: `interval` between starts.
#[derive(Debug, Clone)]
struct Bucket {
    interval: Duration,
    /// Theoretical arrival time of the next message.
    tat: Option<Instant>,
}

impl Bucket {
    fn new(limit: Limit) -> Bucket {
        Bucket {
            interval: limit.window / limit.count.max(1),
            tat: None,
        }
    }

    fn with_rate(rate_per_sec: f64) -> Bucket {
        Bucket {
            interval: Duration::from_secs_f64(1.0 / rate_per_sec),
            tat: None,
        }
    }

    /// The earliest start at or after `now` this bucket allows.
    fn earliest(&self, now: Instant) -> Instant {
        self.tat.map_or(now, |tat| now.max(tat))
    }

    fn take(&mut self, at: Instant) {
        let base = self.tat.map_or(at, |t| t.max(at));
        self.tat = Some(base + self.interval);
    }
}

#[derive(Debug)]
struct Slowdown {
    bucket: Bucket,
    rate: f64,
    /// The rate to return to.
    normal: f64,
    until: Instant,
    last_halved: Instant,
}

#[derive(Debug)]
struct State {
    buckets: Vec<Bucket>,
    slow: Option<Slowdown>,
    /// Recent reservation times, to measure the actual rate.
    recent: VecDeque<Instant>,
}

/// The global limiter. Share it behind an `Arc`.
#[derive(Debug)]
pub struct Throttle {
    limits: Vec<Limit>,
    state: Mutex<State>,
}

impl Throttle {
    pub(crate) fn new(limits: Vec<Limit>) -> Throttle {
        Throttle {
            state: Mutex::new(State {
                buckets: limits.iter().copied().map(Bucket::new).collect(),
                slow: None,
                recent: VecDeque::new(),
            }),
            limits,
        }
    }

    /// The rate limits of `[throttle]` (per_day is the daily cap, not a bucket).
    pub fn from_config(t: &ThrottleConfig) -> Throttle {
        Throttle::new(limits_of(t))
    }

    /// Reserves the next start time at or after `now` and returns it.
    pub(crate) fn reserve(&self, now: Instant) -> Instant {
        let mut s = self.state.lock().expect("throttle lock poisoned");
        if let Some(slow) = &mut s.slow {
            if now >= slow.until {
                slow.rate *= 2.0;
                slow.until = now + SLOWDOWN_PERIOD;
                if slow.rate >= slow.normal {
                    s.slow = None;
                } else {
                    slow.bucket.interval = Duration::from_secs_f64(1.0 / slow.rate);
                }
            }
        }
        let mut at = now;
        for b in &s.buckets {
            at = at.max(b.earliest(now));
        }
        if let Some(slow) = &s.slow {
            at = at.max(slow.bucket.earliest(now));
        }
        for b in &mut s.buckets {
            b.take(at);
        }
        if let Some(slow) = &mut s.slow {
            slow.bucket.take(at);
        }
        s.recent.push_back(at);
        while s.recent.len() > 4096
            || s.recent
                .front()
                .is_some_and(|t| at.saturating_duration_since(*t) > MEASURE_WINDOW)
        {
            s.recent.pop_front();
        }
        at
    }

    /// Waits until this transaction may start. A slot that is already due costs nothing
    /// (a zero-length tokio sleep still waits for the next 1 ms tick of the timer wheel).
    pub(crate) async fn acquire(&self) {
        let now = Instant::now();
        let at = self.reserve(now);
        if at > now {
            tokio::time::sleep_until(at).await;
        }
    }

    /// Halves the rate for [`SLOWDOWN_PERIOD`] because a transaction that started at
    /// `started` got a slowdown reply at `now`; returns whether it did (see the module docs).
    pub(crate) fn slow_down(&self, started: Instant, now: Instant) -> bool {
        let mut s = self.state.lock().expect("throttle lock poisoned");
        let configured = self
            .limits
            .iter()
            .map(|l| l.per_second())
            .fold(f64::INFINITY, f64::min);
        // Reservations in the window over the time they span (at least a second, so the first
        // few messages of a run do not look like a flood).
        let span = s
            .recent
            .front()
            .map_or(Duration::ZERO, |first| {
                now.saturating_duration_since(*first)
            })
            .clamp(Duration::from_secs(1), MEASURE_WINDOW);
        let measured = (s.recent.len() as f64 / span.as_secs_f64()).max(1.0);
        match &mut s.slow {
            Some(slow) => {
                if started < slow.last_halved
                    || now.saturating_duration_since(slow.last_halved) < SLOWDOWN_DEBOUNCE
                {
                    slow.until = now + SLOWDOWN_PERIOD;
                    return false;
                }
                slow.rate = (slow.rate / 2.0).max(SLOWEST_RATE);
                slow.bucket.interval = Duration::from_secs_f64(1.0 / slow.rate);
                slow.until = now + SLOWDOWN_PERIOD;
                slow.last_halved = now;
                true
            }
            None => {
                let normal = if configured.is_finite() {
                    configured
                } else {
                    measured
                };
                let rate = (normal / 2.0).max(SLOWEST_RATE);
                let mut bucket = Bucket::with_rate(rate);
                bucket.tat = Some(now);
                s.slow = Some(Slowdown {
                    bucket,
                    rate,
                    normal,
                    until: now + SLOWDOWN_PERIOD,
                    last_halved: now,
                });
                true
            }
        }
    }

    /// The current slowed-down rate (messages per second), if a slowdown is active.
    pub fn slowed_rate(&self) -> Option<f64> {
        let s = self.state.lock().expect("throttle lock poisoned");
        s.slow.as_ref().map(|x| x.rate)
    }
}

/// The bucket limits of a `[throttle]` section.
pub(crate) fn limits_of(t: &ThrottleConfig) -> Vec<Limit> {
    [(t.per_second, 1), (t.per_minute, 60), (t.per_hour, 3600)]
        .into_iter()
        .filter_map(|(count, secs)| {
            count.map(|count| Limit {
                count,
                window: Duration::from_secs(secs),
            })
        })
        .collect()
}

/// How long `n` messages take at the configured rate limits (the last one starts after
/// `n - 1` intervals), ignoring the server's speed
/// and the daily cap; `None` when no rate limit is configured.
pub(crate) fn estimate(n: u64, t: &ThrottleConfig) -> Option<Duration> {
    let limits = limits_of(t);
    if limits.is_empty() {
        return None;
    }
    let secs = limits
        .iter()
        .map(|l| n.saturating_sub(1) as f64 / l.per_second())
        .fold(0.0, f64::max);
    Some(Duration::from_secs_f64(secs))
}

/// The daily cap for one run: `per_day` minus what the journal counted in the last 24 hours.
///
/// A transaction takes one unit before it starts; one that the server did not accept
/// (deferred, failed) gives it back.
#[derive(Debug)]
pub struct DailyBudget {
    left: std::sync::atomic::AtomicI64,
}

impl DailyBudget {
    pub fn new(cap: u64, used: u64) -> DailyBudget {
        DailyBudget {
            left: std::sync::atomic::AtomicI64::new(cap as i64 - used as i64),
        }
    }
    /// Takes one unit; `false` when the cap is reached.
    pub(crate) fn take(&self) -> bool {
        use std::sync::atomic::Ordering;
        let prev = self.left.fetch_sub(1, Ordering::SeqCst);
        if prev <= 0 {
            self.left.fetch_add(1, Ordering::SeqCst);
            false
        } else {
            true
        }
    }
    pub(crate) fn give_back(&self) {
        self.left.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
    pub(crate) fn left(&self) -> u64 {
        self.left.load(std::sync::atomic::Ordering::SeqCst).max(0) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn per_second(n: u32) -> Limit {
        Limit {
            count: n,
            window: Duration::from_secs(1),
        }
    }

    /// Reserves `n` starts, each asked for as soon as the previous one was granted.
    fn run(t: &Throttle, start: Instant, n: usize) -> Vec<Duration> {
        let mut now = start;
        (0..n)
            .map(|_| {
                now = t.reserve(now);
                now - start
            })
            .collect()
    }

    #[test]
    fn fifty_per_second_makes_five_hundred_messages_take_nine_seconds() {
        let t = Throttle::new(vec![per_second(50)]);
        let times = run(&t, Instant::now(), 500);
        // One start every 20 ms.
        assert_eq!(times[0], Duration::ZERO);
        assert_eq!(times[1], Duration::from_millis(20));
        let last = times[499].as_secs_f64();
        assert!(last >= 9.0, "{last}");
        assert!((9.97..=9.99).contains(&last), "{last}");
    }

    #[test]
    fn concurrent_reservations_are_spaced_too() {
        // Sixteen workers asking at the same instant get sixteen distinct slots.
        let t = Throttle::new(vec![per_second(100)]);
        let now = Instant::now();
        let mut slots: Vec<Duration> = (0..16).map(|_| t.reserve(now) - now).collect();
        slots.dedup();
        assert_eq!(slots.len(), 16);
        assert_eq!(slots[15], Duration::from_millis(150));
    }

    #[test]
    fn no_window_of_one_second_holds_more_than_the_limit() {
        let t = Throttle::new(vec![per_second(10)]);
        let times = run(&t, Instant::now(), 200);
        for (i, a) in times.iter().enumerate() {
            let in_window = times[i..]
                .iter()
                .take_while(|b| **b - *a < Duration::from_secs(1))
                .count();
            assert!(in_window <= 10, "{in_window} starts within 1 s of {a:?}");
        }
    }

    #[test]
    fn the_tightest_of_several_limits_wins() {
        let t = Throttle::new(vec![
            per_second(100),
            Limit {
                count: 120,
                window: Duration::from_secs(60),
            },
        ]);
        let times = run(&t, Instant::now(), 240);
        // 2 per second: the per-minute limit is the tighter one.
        assert_eq!(times[1], Duration::from_millis(500));
        let last = times[239].as_secs_f64();
        assert!((119.4..=119.6).contains(&last), "{last}");
    }

    #[test]
    fn a_slowdown_halves_the_rate_and_recovers_after_the_period() {
        let t = Throttle::new(vec![per_second(10)]);
        let start = Instant::now();
        let mut times = run(&t, start, 20); // burst spent
        let before = times[19] - times[18];
        assert!(t.slow_down(start + times[19], start + times[19]));
        times = run(&t, start + times[19], 5);
        let after = times[4] - times[3];
        assert_eq!(before, Duration::from_millis(100));
        assert_eq!(after, Duration::from_millis(200));
        assert_eq!(t.slowed_rate(), Some(5.0));
        // Past the period the rate doubles back to normal and the slowdown ends.
        let later = start + Duration::from_secs(200);
        t.reserve(later);
        assert_eq!(t.slowed_rate(), None);
    }

    #[test]
    fn a_burst_of_slowdown_replies_halves_once() {
        let t = Throttle::new(vec![per_second(64)]);
        let now = Instant::now();
        assert!(t.slow_down(now, now));
        for i in 1..16 {
            let at = now + Duration::from_millis(i * 10);
            assert!(!t.slow_down(at, at));
        }
        assert_eq!(t.slowed_rate(), Some(32.0));
        let later = now + Duration::from_millis(1500);
        assert!(t.slow_down(later, later));
        assert_eq!(t.slowed_rate(), Some(16.0));
    }

    #[test]
    fn replies_to_transactions_started_before_the_last_cut_do_not_cut_again() {
        let t = Throttle::new(vec![per_second(64)]);
        let now = Instant::now();
        assert!(t.slow_down(now, now));
        // A slow transaction that started before the cut answers 421 five seconds later.
        let late = now + Duration::from_secs(5);
        assert!(!t.slow_down(now - Duration::from_millis(1), late));
        assert_eq!(t.slowed_rate(), Some(32.0));
        // One that started after the cut does.
        assert!(t.slow_down(now + Duration::from_secs(2), late));
        assert_eq!(t.slowed_rate(), Some(16.0));
    }

    #[test]
    fn without_limits_a_slowdown_halves_the_measured_rate() {
        let t = Throttle::new(Vec::new());
        let start = Instant::now();
        // 100 messages over one second.
        for i in 0..100u64 {
            t.reserve(start + Duration::from_millis(i * 10));
        }
        assert!(t.slow_down(
            start + Duration::from_secs(1),
            start + Duration::from_secs(1)
        ));
        // 100 over one second = 100/s measured, halved.
        assert_eq!(t.slowed_rate(), Some(50.0));
        let a = t.reserve(start + Duration::from_secs(1));
        let b = t.reserve(start + Duration::from_secs(1));
        assert_eq!(b - a, Duration::from_millis(20));
    }

    #[test]
    fn a_slowdown_at_the_very_start_of_a_run_does_not_take_the_rate_to_the_floor() {
        let t = Throttle::new(Vec::new());
        let start = Instant::now();
        for _ in 0..8 {
            t.reserve(start);
        }
        let at = start + Duration::from_millis(10);
        assert!(t.slow_down(start, at));
        // 8 messages over (at least) one second, halved: 4 per second, not one a minute.
        assert_eq!(t.slowed_rate(), Some(4.0));
    }

    #[test]
    fn estimate_spaces_messages_at_the_tightest_rate() {
        let cfg = ThrottleConfig {
            per_second: Some(50),
            ..ThrottleConfig::default()
        };
        assert_eq!(estimate(501, &cfg), Some(Duration::from_secs(10)));
        assert_eq!(estimate(1, &cfg), Some(Duration::ZERO));
        assert_eq!(estimate(10, &ThrottleConfig::default()), None);
    }

    #[test]
    fn daily_budget_stops_at_the_cap_and_takes_back_refused_messages() {
        let b = DailyBudget::new(3, 1);
        assert!(b.take());
        assert!(b.take());
        assert!(!b.take());
        b.give_back();
        assert!(b.take());
        assert!(!b.take());
        assert_eq!(b.left(), 0);
        let over = DailyBudget::new(3, 5);
        assert!(!over.take());
    }
}
