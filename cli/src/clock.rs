//! The command line's clock: every wall-clock reading of `rampart` (whether the
//! session and certificate are still valid, TOTP steps, how old a KRL is) goes
//! through [`now`], so there is one place that reads the system clock.
//!
//! The CLI runs one command and exits: it holds no state a clock object could
//! live in, and its tests run the real binary against the real clock, so a
//! plain function is the seam.

use chrono::{DateTime, Utc};

/// The current time.
pub fn now() -> DateTime<Utc> {
    #[allow(clippy::disallowed_methods)] // the CLI's one read of the wall clock
    Utc::now()
}

/// Seconds since the Unix epoch (0 before it).
pub fn unix_secs() -> u64 {
    u64::try_from(now().timestamp()).unwrap_or(0)
}
