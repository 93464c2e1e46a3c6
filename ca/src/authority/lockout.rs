//! Who may try a factor now. Three limits, each aimed at one kind of abuse:
//!
//! - **(user, source network) locks**, kept in the store: failed checks of any
//!   factor for one user from one network lock that pair, with back-off. A
//!   stranger guessing an admin's codes locks only the stranger; the admin logs
//!   in from their own network. The check and the count are one store step
//!   ([`crate::store::AttemptStore::begin_attempt`]), so parallel guesses cannot all
//!   pass before one is counted.
//! - **a user-wide lock**, also in the store, only after many more failures
//!   from all networks within a window (a distributed guess). It is audited
//!   with `scope = user` and counted as the `user_lockout` bypass kind, which
//!   pages (`RampartUserLockedEverywhere`).
//! - **per-network budgets**, in the store ([`crate::store::BudgetStore`]):
//!   failures across all users, and unauthenticated request starts
//!   (security-key and OIDC logins), so one network cannot fill the pending
//!   requests or spray users. Every CA on a shared database spends the same
//!   budget, so N CAs behind a load balancer allow a network what one would.
//!   The unanswered link prompts of each user are a budget there too.
//!
//! Networks: an IPv4 address counts alone (IPv4-mapped IPv6 too), an IPv6
//! address by its /64, since one host routinely holds a whole /64.

use rampart_api::ErrorCode;
use rampart_policy::MfaMethod;
use std::net::IpAddr;

use super::*;
use crate::metrics::{self, Bypass};
use crate::store::{AttemptLock, FailureTally, LockScope};

/// The network a source address is counted under: `192.0.2.7`, or
/// `2001:db8:1:2::/64`.
pub fn source_network(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            let prefix = std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0);
            format!("{prefix}/64")
        }
    }
}

impl Caller {
    /// The network this caller is counted under.
    pub fn network(&self) -> String {
        source_network(self.source)
    }
}

/// Link prompts (a security-key request a user answers on a page) that one
/// user denied, let expire or mistyped the code of, within
/// [`PROMPT_FATIGUE_WINDOW`]: at this many, no new link prompt is sent for
/// them until the oldest leaves the window. Push-style MFA fatigue (prompt the
/// victim until they approve) stops here; the user's own terminal prompt
/// (`--direct`) and other factors still work.
pub const PROMPT_FATIGUE_MAX: u32 = 3;
/// The window of [`PROMPT_FATIGUE_MAX`].
pub const PROMPT_FATIGUE_WINDOW: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// The store budgets of this module.
#[derive(Debug, Clone, Copy)]
enum Budget {
    /// Failed checks from one network, whatever users they named.
    Failures,
    /// Unauthenticated request starts from one network.
    Starts,
    /// Link prompts one user denied, let expire or mistyped.
    UnansweredPrompts,
}

impl Budget {
    fn name(self) -> &'static str {
        match self {
            Budget::Failures => "network_failures",
            Budget::Starts => "network_starts",
            Budget::UnansweredPrompts => "unanswered_prompts",
        }
    }
}

/// Seconds until `frees_at`, at least 1.
fn retry_after(frees_at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> u64 {
    frees_at.map_or(1, |t| (t - now).num_seconds().max(1) as u64)
}

impl Authority {
    /// Refuse a network over its failure budget (whatever users it tried).
    pub(super) fn check_source_limit(&self, caller: &Caller) -> Result<(), CaError> {
        let now = self.now();
        let used = self.store.budget_use(
            Budget::Failures.name(),
            &caller.network(),
            now,
            self.settings.limits.ip_window,
        )?;
        if used.used >= self.settings.limits.ip_max_failures {
            let retry = retry_after(used.frees_at, now);
            return Err(CaError::RateLimited {
                code: ErrorCode::SourceRateLimited,
                message: format!(
                    "too many failed attempts from {}; try again in {retry} s",
                    caller.network()
                ),
                retry_after_secs: retry,
            });
        }
        Ok(())
    }

    /// Count a failure against the caller's network. A store that fails here
    /// fails the request's other steps too; the count is not worth an error
    /// of its own.
    pub(super) fn note_source_failure(&self, caller: &Caller) {
        if let Err(e) = self.store.budget_note(
            Budget::Failures.name(),
            &caller.network(),
            self.now(),
            self.settings.limits.ip_window,
        ) {
            tracing::warn!(error = %rampart_api::report::one_line(&e), "counting a failure against its network");
        }
    }

    /// Spend one unauthenticated request start from the caller's network, or
    /// refuse when its budget for the window is used up.
    pub(crate) fn spend_start_budget(&self, caller: &Caller) -> Result<(), CaError> {
        self.check_source_limit(caller)?;
        let now = self.now();
        let spent = self.store.budget_spend(
            Budget::Starts.name(),
            &caller.network(),
            now,
            self.settings.limits.ip_window,
            self.settings.limits.ip_max_starts,
        )?;
        if let Err(used) = spent {
            let retry = retry_after(used.frees_at, now);
            metrics::bypass_attempt(metrics::Factor::Webauthn, Bypass::RateLimited);
            return Err(CaError::RateLimited {
                code: ErrorCode::SourceRateLimited,
                message: format!(
                    "too many login requests from {}; try again in {retry} s",
                    caller.network()
                ),
                retry_after_secs: retry,
            });
        }
        Ok(())
    }

    /// Refuse a new link prompt for `user` while their unanswered prompts are
    /// at [`PROMPT_FATIGUE_MAX`].
    pub(super) fn check_prompt_fatigue(&self, user: &str) -> Result<(), CaError> {
        let now = self.now();
        let used = self.store.budget_use(
            Budget::UnansweredPrompts.name(),
            user,
            now,
            PROMPT_FATIGUE_WINDOW,
        )?;
        if used.used < PROMPT_FATIGUE_MAX {
            return Ok(());
        }
        let retry = retry_after(used.frees_at, now);
        metrics::bypass_attempt(metrics::Factor::Webauthn, Bypass::RateLimited);
        Err(CaError::RateLimited {
            code: ErrorCode::WebauthnPromptsLocked,
            message: format!(
                "{user} denied or left {PROMPT_FATIGUE_MAX} security-key requests unanswered \
                 lately; no new link is sent for {retry} s (a terminal prompt, --direct, \
                 still works)"
            ),
            retry_after_secs: retry,
        })
    }

    /// Count a link prompt `user` denied, let expire or mistyped; the one that
    /// reaches the limit is audited (`mfa_locked_out`, scope `prompts`).
    pub(super) fn note_unanswered_prompt(
        &self,
        caller: &Caller,
        user: &str,
        why: &str,
    ) -> Result<(), CaError> {
        let now = self.now();
        let window = to_chrono(PROMPT_FATIGUE_WINDOW);
        let reached = self
            .store
            .budget_note(
                Budget::UnansweredPrompts.name(),
                user,
                now,
                PROMPT_FATIGUE_WINDOW,
            )?
            .used
            == PROMPT_FATIGUE_MAX;
        if reached {
            self.record(
                self.event(EventKind::MfaLockedOut, Outcome::Failure, Some(caller))
                    .user(user)
                    .mfa_method(MfaMethod::Webauthn.as_str())
                    .reason("prompt_fatigue")
                    .detail("scope", "prompts")
                    .detail("last", why)
                    .detail("locked_until", (now + window).to_rfc3339()),
            )?;
        }
        Ok(())
    }

    /// The lock on `user` from `network`, if one holds now (read-only).
    pub(super) fn attempt_lock(
        &self,
        user: &str,
        network: &str,
    ) -> Result<Option<AttemptLock>, CaError> {
        Ok(self.store.attempt_lock(user, network, self.now())?)
    }

    /// Check the locks and count this attempt in one store step. `Err` inside
    /// is the lock that refuses it; the caller audits the refusal its own way.
    pub(super) fn begin_attempt(
        &self,
        user: &str,
        network: &str,
    ) -> Result<Result<(), AttemptLock>, CaError> {
        Ok(self
            .store
            .begin_attempt(user, network, self.now(), &self.settings.limits.attempts)?)
    }

    /// A begun attempt failed: count it against the network too, audit
    /// `failed` (with the failure counts), and lock when a threshold is
    /// reached, audited as `mfa_locked_out` with its scope.
    pub(super) fn attempt_failed(
        &self,
        caller: &Caller,
        user: &str,
        network: &str,
        factor: metrics::Factor,
        failed: NewEvent,
    ) -> Result<FailureTally, CaError> {
        self.note_source_failure(caller);
        let tally =
            self.store
                .attempt_failed(user, network, self.now(), &self.settings.limits.attempts)?;
        self.record(
            failed
                .detail("failures", u64::from(tally.source_failures))
                .detail("user_failures", u64::from(tally.user_failures)),
        )?;
        if let Some(lock) = tally.locked {
            let (kind, failures) = match lock.scope {
                LockScope::Source => (Bypass::Lockout, tally.source_failures),
                LockScope::User => (Bypass::UserLockout, tally.user_failures),
            };
            metrics::bypass_attempt(factor, kind);
            self.record(
                self.event(EventKind::MfaLockedOut, Outcome::Failure, Some(caller))
                    .user(user)
                    .reason(&format!("{failures} failed attempts"))
                    .detail("scope", lock.scope.as_str())
                    .detail("network", network)
                    .detail("locked_until", lock.until.to_rfc3339()),
            )?;
        }
        Ok(tally)
    }

    /// A begun attempt succeeded.
    pub(super) fn attempt_succeeded(&self, user: &str, network: &str) -> Result<(), CaError> {
        Ok(self.store.attempt_succeeded(user, network)?)
    }
}

/// The answer to an attempt refused by `lock`. A pair lock says it holds from
/// this network, so a user who trips it knows another network still works
/// (the attacker learns nothing new: they tripped it).
pub(super) fn locked_error(user: &str, lock: &AttemptLock, now: DateTime<Utc>) -> CaError {
    CaError::RateLimited {
        code: ErrorCode::UserLocked,
        message: locked_message(user, lock, now),
        retry_after_secs: (lock.until - now).num_seconds().max(1) as u64,
    }
}

/// What a refused user is told (see [`locked_error`]).
pub(super) fn locked_message(user: &str, lock: &AttemptLock, now: DateTime<Utc>) -> String {
    let retry = (lock.until - now).num_seconds().max(1);
    match lock.scope {
        LockScope::Source => format!(
            "too many failed attempts: {user} is locked from this network for another {retry} s"
        ),
        LockScope::User => {
            format!("too many failed attempts: {user} is locked for another {retry} s")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_counts_by_its_64_and_ipv4_alone() {
        let net = |s: &str| source_network(s.parse().unwrap());
        assert_eq!(net("192.0.2.7"), "192.0.2.7");
        assert_eq!(net("::ffff:192.0.2.7"), "192.0.2.7");
        assert_eq!(net("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
        assert_eq!(net("2001:db8:1:2:ffff:ffff:ffff:ffff"), "2001:db8:1:2::/64");
        assert_ne!(net("2001:db8:1:3::1"), net("2001:db8:1:2::1"));
    }
}
