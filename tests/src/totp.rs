//! The user's authenticator app: RFC 6238 codes from the `otpauth://` URI the CA
//! handed out at enrolment.
//!
//! The CA accepts the codes of the current 30-second step and one step either side,
//! and refuses a step that was already used. So a test that logs the same user in
//! several times needs a fresh step each time: [`Totp::fresh_code`] hands out steps
//! in strictly increasing order (which satisfies both "never the same step twice"
//! and the stricter "never a step at or before the last one used"), and waits for
//! the next step when the three acceptable ones are spent.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use totp_rs::TOTP;

/// A TOTP generator for one enrolled user.
#[derive(Debug)]
pub struct Totp {
    totp: TOTP,
    uri: String,
    last_step: Option<u64>,
}

/// Seconds since the Unix epoch, from the system clock. The CA reads the same clock
/// (same machine), which is what makes codes computed here valid there.
pub fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs_f64()
}

impl Totp {
    /// Parse an `otpauth://totp/...` URI (RFC 6238 parameters as Google
    /// Authenticator's key-URI format defines them).
    pub fn from_uri(uri: &str) -> Totp {
        let totp = TOTP::from_url(uri)
            .or_else(|_| TOTP::from_url_unchecked(uri))
            .unwrap_or_else(|e| {
                panic!("not an otpauth URI the CA should hand out: {uri:?}: {e:?}")
            });
        Totp {
            totp,
            uri: uri.to_owned(),
            last_step: None,
        }
    }

    /// The URI this was made from.
    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// The time step length in seconds (30 unless the URI says otherwise).
    pub fn period(&self) -> u64 {
        self.totp.step.max(1)
    }

    /// The current step number.
    pub fn current_step(&self) -> u64 {
        (unix_now() as u64) / self.period()
    }

    /// The code for an absolute step number.
    pub fn code_for_step(&self, step: u64) -> String {
        self.totp.generate(step * self.period())
    }

    /// The code `offset_steps` steps from now (−1, 0, +1 are accepted by the CA).
    /// Does not mark the step used; see [`Totp::fresh_code`] for that.
    pub fn code_at(&self, offset_steps: i64) -> String {
        let step = self.current_step().saturating_add_signed(offset_steps);
        self.code_for_step(step)
    }

    /// A code for a step never handed out before by this helper, later than all of
    /// them, that the CA will still accept when it checks it a moment from now.
    /// Sleeps until the next step when needed (at most one period).
    pub fn fresh_code(&mut self) -> String {
        loop {
            let now = unix_now();
            let period = self.period();
            let step = (now as u64) / period;
            let into = now - (step * period) as f64;
            // The previous step stays acceptable only until this one ends: use it
            // only with a few seconds to spare for the CLI to start and send it.
            let mut candidates = Vec::new();
            if into < (period as f64) - 6.0 {
                candidates.push(step.saturating_sub(1));
            }
            candidates.push(step);
            candidates.push(step + 1);
            if let Some(s) = candidates
                .into_iter()
                .find(|s| self.last_step.is_none_or(|last| *s > last))
            {
                self.last_step = Some(s);
                return self.code_for_step(s);
            }
            let wait = (period as f64) - into + 0.3;
            std::thread::sleep(Duration::from_secs_f64(wait.max(0.1)));
        }
    }

    /// Mark every step up to `step` as used (for codes sent by other means, e.g. the
    /// code the CLI sent during enrolment).
    pub fn mark_used(&mut self, step: u64) {
        self.last_step = Some(self.last_step.map_or(step, |l| l.max(step)));
    }

    /// A well-formed 6-digit code that is wrong for every step the CA could accept
    /// in the next minute.
    pub fn wrong_code(&self) -> String {
        let step = self.current_step();
        let near: Vec<String> = (step.saturating_sub(3)..=step + 3)
            .map(|s| self.code_for_step(s))
            .collect();
        (0u32..)
            .map(|n| format!("{:06}", (n * 7919 + 123_457) % 1_000_000))
            .find(|c| !near.contains(c))
            .expect("some 6-digit code is wrong")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 6238 appendix B, SHA-1 secret "12345678901234567890" (base32 below).
    const URI: &str = "otpauth://totp/rampart:alice?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=rampart&algorithm=SHA1&digits=8&period=30";

    #[test]
    fn matches_rfc6238_test_vectors() {
        let t = Totp::from_uri(URI);
        // T = 59 s → step 1 → 94287082; T = 1111111109 → 07081804.
        assert_eq!(t.code_for_step(1), "94287082");
        assert_eq!(t.code_for_step(1_111_111_109 / 30), "07081804");
    }

    #[test]
    fn fresh_codes_use_increasing_steps_and_wrong_code_is_wrong() {
        let mut t = Totp::from_uri(URI);
        let a = t.fresh_code();
        let s1 = t.last_step.unwrap();
        let b = t.fresh_code();
        let s2 = t.last_step.unwrap();
        assert!(s2 > s1);
        assert_ne!(a, b);
        let w = t.wrong_code();
        assert!((-1..=1).all(|o| t.code_at(o) != w));
    }
}
