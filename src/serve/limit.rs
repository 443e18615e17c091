//! A per-client token bucket: each client address may make `per_minute` requests in a burst,
//! refilled evenly over a minute. IPv6 clients are bucketed by their /64 (one host usually
//! owns a whole /64). Behind a reverse proxy every request comes from the proxy unless
//! `[serve] client_ip_header` names the header the proxy sets.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Buckets kept before idle (full) ones are dropped.
const MAX_CLIENTS: usize = 65_536;

struct Bucket {
    tokens: f64,
    updated: Instant,
}

/// Requests allowed per client address.
pub struct RateLimiter {
    capacity: f64,
    per_second: f64,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

/// What the limiter decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// Refused; the client may retry after this long.
    Deny(Duration),
}

fn key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut seg = v6.segments();
                for s in &mut seg[4..] {
                    *s = 0;
                }
                IpAddr::V6(seg.into())
            }
        },
    }
}

impl RateLimiter {
    /// `per_minute = 0` turns limiting off.
    pub fn new(per_minute: u32) -> RateLimiter {
        RateLimiter {
            capacity: f64::from(per_minute),
            per_second: f64::from(per_minute) / 60.0,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    pub fn check(&self, ip: IpAddr) -> Decision {
        self.check_at(ip, Instant::now())
    }

    fn check_at(&self, ip: IpAddr, now: Instant) -> Decision {
        if self.capacity <= 0.0 {
            return Decision::Allow;
        }
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if buckets.len() >= MAX_CLIENTS {
            let (cap, rate) = (self.capacity, self.per_second);
            buckets.retain(|_, b| {
                b.tokens + rate * now.saturating_duration_since(b.updated).as_secs_f64() < cap
            });
            if buckets.len() >= MAX_CLIENTS {
                // Under a flood from very many addresses: start over rather than grow.
                buckets.clear();
            }
        }
        let b = buckets.entry(key(ip)).or_insert(Bucket {
            tokens: self.capacity,
            updated: now,
        });
        let elapsed = now.saturating_duration_since(b.updated).as_secs_f64();
        b.tokens = (b.tokens + elapsed * self.per_second).min(self.capacity);
        b.updated = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Decision::Allow
        } else {
            let wait = (1.0 - b.tokens) / self.per_second;
            Decision::Deny(Duration::from_secs_f64(wait.clamp(1.0, 3600.0)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_allowed_then_refused_then_refilled() {
        let l = RateLimiter::new(3);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(l.check_at(ip, t0), Decision::Allow);
        }
        assert!(matches!(l.check_at(ip, t0), Decision::Deny(_)));
        assert_eq!(l.check_at(other, t0), Decision::Allow);
        assert_eq!(
            l.check_at(ip, t0 + Duration::from_secs(20)),
            Decision::Allow
        );
    }

    #[test]
    fn ipv6_clients_share_a_bucket_per_64() {
        let l = RateLimiter::new(1);
        let t0 = Instant::now();
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2::ffff".parse().unwrap();
        assert_eq!(l.check_at(a, t0), Decision::Allow);
        assert!(matches!(l.check_at(b, t0), Decision::Deny(_)));
    }

    #[test]
    fn zero_turns_limiting_off() {
        let l = RateLimiter::new(0);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..1000 {
            assert_eq!(l.check(ip), Decision::Allow);
        }
    }
}
