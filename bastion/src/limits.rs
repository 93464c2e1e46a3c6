//! Connection-rate limits per source address.
//!
//! **Owns:** a token bucket per source IP (rate and burst from config), pruned
//! as it grows. Session-count limits live with the session registry in
//! [`crate::server`].

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Instant;

/// Most tracked sources before idle buckets are pruned.
const MAX_SOURCES: usize = 65_536;

/// Token buckets per source address.
#[derive(Debug)]
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    buckets: HashMap<IpAddr, (f64, Instant)>,
}

impl RateLimiter {
    /// `rate` new connections per second, bursts of `burst`.
    pub fn new(rate: u32, burst: u32) -> Self {
        RateLimiter {
            rate: f64::from(rate),
            burst: f64::from(burst),
            buckets: HashMap::new(),
        }
    }

    /// New rate and burst (a reloaded config). Sources keep their buckets: a
    /// bucket holding more than the new burst is cut to it at its next use.
    pub fn set_rate(&mut self, rate: u32, burst: u32) {
        self.rate = f64::from(rate);
        self.burst = f64::from(burst);
    }

    /// Take one token for `ip` at `now`; false when the source is over its rate.
    pub fn allow(&mut self, ip: IpAddr, now: Instant) -> bool {
        if self.buckets.len() >= MAX_SOURCES {
            let burst = self.burst;
            let rate = self.rate;
            self.buckets.retain(|_, (tokens, at)| {
                *tokens + now.duration_since(*at).as_secs_f64() * rate < burst
            });
        }
        let (tokens, at) = self.buckets.entry(ip).or_insert((self.burst, now));
        let refill = now.saturating_duration_since(*at).as_secs_f64() * self.rate;
        *tokens = (*tokens + refill).min(self.burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn burst_then_rate() {
        let mut l = RateLimiter::new(20, 40);
        let ip: IpAddr = [127, 0, 0, 1].into();
        let t0 = Instant::now();
        assert!((0..40).all(|_| l.allow(ip, t0)));
        assert!(!l.allow(ip, t0));
        // Another source is unaffected.
        assert!(l.allow([127, 0, 0, 2].into(), t0));
        // 100 ms later: two tokens.
        let t1 = t0 + Duration::from_millis(100);
        assert!(l.allow(ip, t1));
        assert!(l.allow(ip, t1));
        assert!(!l.allow(ip, t1));
    }

    #[test]
    fn a_new_rate_applies_to_sources_already_seen() {
        let mut l = RateLimiter::new(20, 40);
        let ip: IpAddr = [127, 0, 0, 1].into();
        let t0 = Instant::now();
        assert!(l.allow(ip, t0));
        // The bucket held 39 tokens; the new burst of 2 caps it.
        l.set_rate(1, 2);
        assert!(l.allow(ip, t0));
        assert!(l.allow(ip, t0));
        assert!(!l.allow(ip, t0));
        assert!(l.allow(ip, t0 + Duration::from_secs(1)));
    }
}
