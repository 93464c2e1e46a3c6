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

/// The network of the user-wide attempt row.
pub(crate) const ALL_NETWORKS: &str = "*";

fn chrono_of(d: std::time::Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

/// One stored attempt row (a user and network pair, or the user-wide row
/// under [`ALL_NETWORKS`]), or a fresh one. The backends load and save rows;
/// how counts turn into locks is here, the same for every backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AttemptRow {
    pub(crate) count: u32,
    /// For a pair, the last attempt; for the user-wide row, the start of the
    /// current window.
    pub(crate) since: DateTime<Utc>,
    pub(crate) lock_level: u32,
    pub(crate) locked_until: Option<DateTime<Utc>>,
}

impl AttemptRow {
    /// A row never written. Its `since` lies long before any real attempt, so
    /// the first one starts a new window.
    pub(crate) fn fresh() -> AttemptRow {
        AttemptRow {
            count: 0,
            since: DateTime::<Utc>::UNIX_EPOCH,
            lock_level: 0,
            locked_until: None,
        }
    }

    /// A pair quiet for longer than the longest lock starts over, back-off too.
    fn expire_pair(&mut self, now: DateTime<Utc>, limits: &AttemptLimits) {
        if self.since + chrono_of(limits.max_lockout) < now {
            self.count = 0;
            self.lock_level = 0;
        }
    }

    /// The user-wide count is per window.
    fn expire_window(&mut self, now: DateTime<Utc>, limits: &AttemptLimits) {
        if self.since + chrono_of(limits.user_window) < now {
            self.count = 0;
            self.since = now;
        }
    }

    /// Lock the pair for `lockout`, doubled for each earlier lock, at most
    /// `max_lockout`.
    fn lock_pair(&mut self, now: DateTime<Utc>, limits: &AttemptLimits) -> AttemptLock {
        let factor = 1u32.checked_shl(self.lock_level).unwrap_or(u32::MAX);
        let length = limits
            .lockout
            .checked_mul(factor)
            .unwrap_or(limits.max_lockout)
            .min(limits.max_lockout);
        let until = now + chrono_of(length);
        self.locked_until = Some(until);
        self.lock_level = self.lock_level.saturating_add(1);
        self.count = 0;
        self.since = now;
        AttemptLock {
            scope: LockScope::Source,
            until,
        }
    }
}

/// The user-wide lock if one holds (it is the wider answer), else the pair's.
pub(crate) fn lock_in_force(
    pair: &AttemptRow,
    all: &AttemptRow,
    now: DateTime<Utc>,
) -> Option<AttemptLock> {
    [(all, LockScope::User), (pair, LockScope::Source)]
        .into_iter()
        .find_map(|(row, scope)| {
            row.locked_until
                .filter(|until| *until > now)
                .map(|until| AttemptLock { scope, until })
        })
}

/// What [`begin`] decided, and which rows the backend must save.
#[derive(Debug)]
pub(crate) enum Begun {
    /// A lock holds: nothing changed.
    Refused(AttemptLock),
    /// The pair's count was at its limit: the pair is locked now (save it).
    LockedNow(AttemptLock),
    /// Counted provisionally (save both rows).
    Counted,
}

/// [`AttemptStore::begin_attempt`] on rows the backend loaded under a lock.
pub(crate) fn begin(
    pair: &mut AttemptRow,
    all: &mut AttemptRow,
    now: DateTime<Utc>,
    limits: &AttemptLimits,
) -> Begun {
    if let Some(lock) = lock_in_force(pair, all, now) {
        return Begun::Refused(lock);
    }
    pair.expire_pair(now, limits);
    all.expire_window(now, limits);
    // A count already at the limit (a crash between count and lock, or a
    // lowered limit) locks now rather than allowing one more guess.
    if pair.count >= limits.max_failures {
        return Begun::LockedNow(pair.lock_pair(now, limits));
    }
    pair.count += 1;
    pair.since = now;
    all.count += 1;
    Begun::Counted
}

/// [`AttemptStore::attempt_failed`] on rows the backend loaded under a lock;
/// the backend saves both.
pub(crate) fn failed(
    pair: &mut AttemptRow,
    all: &mut AttemptRow,
    now: DateTime<Utc>,
    limits: &AttemptLimits,
) -> FailureTally {
    let mut tally = FailureTally {
        source_failures: pair.count,
        user_failures: all.count,
        locked: None,
    };
    if pair.count >= limits.max_failures {
        tally.locked = Some(pair.lock_pair(now, limits));
    }
    if all.count >= limits.user_max_failures {
        let until = now + chrono_of(limits.user_lockout);
        all.locked_until = Some(until);
        all.count = 0;
        all.since = now;
        tally.locked = Some(AttemptLock {
            scope: LockScope::User,
            until,
        });
    }
    tally
}
