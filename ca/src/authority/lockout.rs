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
//! - **per-network budgets**, in memory: failures across all users, and
//!   unauthenticated request starts (security-key and OIDC logins), so one
//!   network cannot fill the CA's pending-request tables or spray users.
//!
//! Networks: an IPv4 address counts alone (IPv4-mapped IPv6 too), an IPv6
//! address by its /64, since one host routinely holds a whole /64.

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
pub const PROMPT_FATIGUE_MAX: usize = 3;
/// The window of [`PROMPT_FATIGUE_MAX`].
pub const PROMPT_FATIGUE_WINDOW: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// One network's recent events (failures or starts) in the window, and each
/// user's recent unanswered link prompts.
#[derive(Debug, Default)]
pub(super) struct NetworkBudgets {
    failures: HashMap<String, Vec<DateTime<Utc>>>,
    starts: HashMap<String, Vec<DateTime<Utc>>>,
    unanswered_prompts: HashMap<String, Vec<DateTime<Utc>>>,
}

/// Which in-memory budget.
#[derive(Debug, Clone, Copy)]
enum Budget {
    Failures,
    Starts,
}

impl NetworkBudgets {
    fn list(&mut self, budget: Budget) -> &mut HashMap<String, Vec<DateTime<Utc>>> {
        match budget {
            Budget::Failures => &mut self.failures,
            Budget::Starts => &mut self.starts,
        }
    }
}

impl Authority {
    fn budgets(&self) -> Result<std::sync::MutexGuard<'_, NetworkBudgets>, CaError> {
        self.network_budgets
            .lock()
            .map_err(|_| CaError::Internal("limiter lock poisoned".into()))
    }

    /// How many `budget` events the caller's network had in the window, and
    /// when the oldest of them leaves it.
    fn budget_used(
        &self,
        caller: &Caller,
        budget: Budget,
    ) -> Result<(usize, DateTime<Utc>), CaError> {
        let now = self.now();
        let window = to_chrono(self.settings.limits.ip_window);
        let mut budgets = self.budgets()?;
        let Some(list) = budgets.list(budget).get_mut(&caller.network()) else {
            return Ok((0, now));
        };
        list.retain(|t| *t > now - window);
        Ok((list.len(), list.first().map_or(now, |t| *t + window)))
    }

    fn note(&self, caller: &Caller, budget: Budget) {
        let now = self.now();
        let window = to_chrono(self.settings.limits.ip_window);
        if let Ok(mut budgets) = self.budgets() {
            let map = budgets.list(budget);
            if map.len() >= MAX_TRACKED_SOURCES {
                map.retain(|_, v| v.last().is_some_and(|t| *t > now - window));
            }
            map.entry(caller.network()).or_default().push(now);
        }
    }

    /// Refuse a network over its failure budget (whatever users it tried).
    pub(super) fn check_source_limit(&self, caller: &Caller) -> Result<(), CaError> {
        let (used, frees_at) = self.budget_used(caller, Budget::Failures)?;
        if used >= self.settings.limits.ip_max_failures as usize {
            let retry = (frees_at - self.now()).num_seconds().max(1) as u64;
            return Err(CaError::RateLimited {
                code: "source_rate_limited",
                message: format!(
                    "too many failed attempts from {}; try again in {retry} s",
                    caller.network()
                ),
                retry_after_secs: retry,
            });
        }
        Ok(())
    }

    /// Count a failure against the caller's network.
    pub(super) fn note_source_failure(&self, caller: &Caller) {
        self.note(caller, Budget::Failures);
    }

    /// Spend one unauthenticated request start from the caller's network, or
    /// refuse when its budget for the window is used up.
    pub(crate) fn spend_start_budget(&self, caller: &Caller) -> Result<(), CaError> {
        self.check_source_limit(caller)?;
        let (used, frees_at) = self.budget_used(caller, Budget::Starts)?;
        if used >= self.settings.limits.ip_max_starts as usize {
            let retry = (frees_at - self.now()).num_seconds().max(1) as u64;
            metrics::bypass_attempt(metrics::Factor::Webauthn, Bypass::RateLimited);
            return Err(CaError::RateLimited {
                code: "source_rate_limited",
                message: format!(
                    "too many login requests from {}; try again in {retry} s",
                    caller.network()
                ),
                retry_after_secs: retry,
            });
        }
        self.note(caller, Budget::Starts);
        Ok(())
    }

    /// Refuse a new link prompt for `user` while their unanswered prompts are
    /// at [`PROMPT_FATIGUE_MAX`].
    pub(super) fn check_prompt_fatigue(&self, user: &str) -> Result<(), CaError> {
        let now = self.now();
        let window = to_chrono(PROMPT_FATIGUE_WINDOW);
        let mut budgets = self.budgets()?;
        let Some(list) = budgets.unanswered_prompts.get_mut(user) else {
            return Ok(());
        };
        list.retain(|t| *t > now - window);
        if list.len() < PROMPT_FATIGUE_MAX {
            return Ok(());
        }
        let retry = list
            .first()
            .map_or(1, |t| (*t + window - now).num_seconds().max(1) as u64);
        metrics::bypass_attempt(metrics::Factor::Webauthn, Bypass::RateLimited);
        Err(CaError::RateLimited {
            code: "webauthn_prompts_locked",
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
        let reached = {
            let mut budgets = self.budgets()?;
            let map = &mut budgets.unanswered_prompts;
            if map.len() >= MAX_TRACKED_SOURCES {
                map.retain(|_, v| v.last().is_some_and(|t| *t > now - window));
            }
            let list = map.entry(user.to_owned()).or_default();
            list.retain(|t| *t > now - window);
            list.push(now);
            list.len() == PROMPT_FATIGUE_MAX
        };
        if reached {
            self.record(
                self.event(EventKind::MfaLockedOut, Outcome::Failure, Some(caller))
                    .user(user)
                    .mfa_method("webauthn")
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
        code: "user_locked",
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
