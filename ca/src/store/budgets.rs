//! Sliding-window budgets: how many events of one kind (a failed check, an
//! unauthenticated request start, an unanswered link prompt) one key (a source
//! network, a user) had lately. They live in the store so that every CA on a
//! database counts against one budget: N CAs behind a load balancer allow a
//! network the rate one CA would, not N times it.
//!
//! One row per event; a window is "the events after `now - window`". Each
//! write forgets the budget's events older than the window it is given, so the
//! table holds about one window of events per budget.

use chrono::{DateTime, Utc};

use super::StoreError;

/// The use of one key's budget in a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BudgetUse {
    /// Events in the window.
    pub used: u32,
    /// When the oldest of them leaves the window (`None`: there are none).
    pub frees_at: Option<DateTime<Utc>>,
}

/// Per-key event budgets shared by every CA on the database.
pub trait BudgetStore {
    /// Events of `key` under `budget` after `now - window`.
    fn budget_use(
        &self,
        budget: &str,
        key: &str,
        now: DateTime<Utc>,
        window: std::time::Duration,
    ) -> Result<BudgetUse, StoreError>;

    /// Count one event of `key` whatever the budget holds; the use after it.
    fn budget_note(
        &self,
        budget: &str,
        key: &str,
        now: DateTime<Utc>,
        window: std::time::Duration,
    ) -> Result<BudgetUse, StoreError>;

    /// Count one event of `key` unless `max` are already in the window, in one
    /// step (CAs racing cannot all pass the check before one is counted).
    /// `Err` holds the use that refused it.
    fn budget_spend(
        &self,
        budget: &str,
        key: &str,
        now: DateTime<Utc>,
        window: std::time::Duration,
        max: u32,
    ) -> Result<Result<BudgetUse, BudgetUse>, StoreError>;
}

/// The start of the window ending `now`.
pub(crate) fn window_start(now: DateTime<Utc>, window: std::time::Duration) -> DateTime<Utc> {
    now - chrono::Duration::from_std(window).unwrap_or(chrono::Duration::MAX / 2)
}

/// The use of a window from its count and oldest event.
pub(crate) fn use_of(
    count: i64,
    oldest: Option<DateTime<Utc>>,
    window: std::time::Duration,
) -> BudgetUse {
    BudgetUse {
        used: u32::try_from(count).unwrap_or(u32::MAX),
        frees_at: oldest.map(|t| t + chrono::Duration::from_std(window).unwrap_or_default()),
    }
}
