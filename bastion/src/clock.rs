//! The bastion's clock seam: every wall-clock reading (an audit event's time,
//! certificate validity, how long a security-key approval has left, the KRL's
//! age) comes from a [`Clock`], so tests can set the time and nothing reads the
//! system clock behind the seam's back.
//!
//! How long something has been idle or running is not a wall-clock question:
//! those use [`std::time::Instant`] (see [`monotonic_ms`]), which a clock step
//! (NTP, an operator) cannot move.

use std::sync::OnceLock;
use std::time::Instant;

use chrono::{DateTime, Utc};

/// Source of the current wall-clock time.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// The current time.
    fn now(&self) -> DateTime<Utc>;

    /// Seconds since the Unix epoch (0 before it), as OpenSSH certificates
    /// count validity.
    fn unix_secs(&self) -> u64 {
        u64::try_from(self.now().timestamp()).unwrap_or(0)
    }
}

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        #[allow(clippy::disallowed_methods)] // the bastion's one read of the wall clock
        Utc::now()
    }
}

/// A clock that stays where it is set; for tests.
#[derive(Debug, Clone, Copy)]
pub struct FixedClock(pub DateTime<Utc>);

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        self.0
    }
}

/// Milliseconds on a monotonic clock that starts with the process: for idle
/// and elapsed times, compared only with other readings of it.
pub fn monotonic_ms() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    let elapsed = START.get_or_init(Instant::now).elapsed().as_millis();
    u64::try_from(elapsed).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fixed_clock_counts_unix_seconds_and_never_goes_below_zero() {
        let t = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        assert_eq!(FixedClock(t).unix_secs(), 1_800_000_000);
        let before_epoch = DateTime::from_timestamp(-5, 0).unwrap();
        assert_eq!(FixedClock(before_epoch).unix_secs(), 0);
    }

    #[test]
    fn monotonic_ms_never_goes_back() {
        let a = monotonic_ms();
        std::thread::sleep(std::time::Duration::from_millis(5));
        assert!(monotonic_ms() >= a + 5);
    }
}
