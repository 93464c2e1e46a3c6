//! Failed factor checks and the locks they set, per user and source network and
//! per user. The limits come from the config; the counting and locking is the
//! store's, so that it is atomic.

use chrono::{DateTime, Utc};

use super::StoreError;

/// How failed factor checks turn into locks. A lock is per user *and* source
/// network, so a stranger's guesses lock only the stranger; a user-wide lock
/// needs many more failures (from many networks) within a window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptLimits {
    /// Failures from one network before the pair is locked.
    pub max_failures: u32,
    /// The first lock of a pair; each further lock doubles it.
    pub lockout: std::time::Duration,
    /// The longest a pair lock gets; also how long a pair's count is kept.
    pub max_lockout: std::time::Duration,
    /// Failures from all networks within `user_window` before the user is
    /// locked everywhere.
    pub user_max_failures: u32,
    /// Window of the user-wide count.
    pub user_window: std::time::Duration,
    /// How long a user-wide lock lasts.
    pub user_lockout: std::time::Duration,
}

/// What a lock covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockScope {
    /// The user, from one source network.
    Source,
    /// The user, from everywhere.
    User,
}

impl LockScope {
    /// Name used in audit details, errors and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            LockScope::Source => "source",
            LockScope::User => "user",
        }
    }
}

/// A lock in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttemptLock {
    /// What it covers.
    pub scope: LockScope,
    /// When it ends.
    pub until: DateTime<Utc>,
}

/// The counts after a failed attempt, and the lock it set, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureTally {
    /// Failures of this user from this network (before any lock reset them).
    pub source_failures: u32,
    /// Failures of this user from all networks in the user window.
    pub user_failures: u32,
    /// The lock this failure set.
    pub locked: Option<AttemptLock>,
}

/// Failed attempts and lockouts.
pub trait AttemptStore {
    /// The lock that holds for `user` trying from `network` now, if any: the
    /// pair's own lock or a user-wide one. Read-only (for request starts).
    fn attempt_lock(
        &self,
        user: &str,
        network: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<AttemptLock>, StoreError>;

    /// Check the locks and count this attempt as a failure in one atomic step,
    /// so parallel guesses cannot all pass the check before any is counted. The
    /// count is provisional: [`AttemptStore::attempt_succeeded`] takes it back.
    fn begin_attempt(
        &self,
        user: &str,
        network: &str,
        now: DateTime<Utc>,
        limits: &AttemptLimits,
    ) -> Result<Result<(), AttemptLock>, StoreError>;

    /// A begun attempt failed: lock the pair (with back-off) or the user when a
    /// threshold is reached.
    fn attempt_failed(
        &self,
        user: &str,
        network: &str,
        now: DateTime<Utc>,
        limits: &AttemptLimits,
    ) -> Result<FailureTally, StoreError>;

    /// A begun attempt succeeded: the pair starts clean and the user-wide
    /// count gets the provisional failure back.
    fn attempt_succeeded(&self, user: &str, network: &str) -> Result<(), StoreError>;
}
