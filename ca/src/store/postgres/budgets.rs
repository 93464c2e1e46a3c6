//! Per-key event budgets in PostgreSQL: one row per event in `budget_events`.
//! A spend checks and counts under a transaction-scoped advisory lock on the
//! budget and key, so CAs spending one network's budget at once serialise
//! and together allow what one CA would.

use chrono::{DateTime, Utc};
use postgres::GenericClient;

use super::{db, PostgresStore};
use crate::store::budgets::{use_of, window_start};
use crate::store::{BudgetStore, BudgetUse, StoreError};

/// First key of the advisory locks on budgets ("RAMB").
const BUDGET_LOCK_SPACE: i32 = 0x5241_4d42;

fn use_in(
    c: &mut impl GenericClient,
    budget: &str,
    key: &str,
    now: DateTime<Utc>,
    window: std::time::Duration,
) -> Result<BudgetUse, StoreError> {
    let r = c
        .query_one(
            "SELECT COUNT(*), MIN(at) FROM budget_events
             WHERE budget = $1 AND key = $2 AND at > $3",
            &[&budget, &key, &window_start(now, window)],
        )
        .map_err(db)?;
    Ok(use_of(r.get(0), r.get(1), window))
}

/// Hold the lock on `budget`/`key` and forget the key's events that left the
/// window (they no longer count anyway).
fn lock_and_trim(
    tx: &mut postgres::Transaction<'_>,
    budget: &str,
    key: &str,
    now: DateTime<Utc>,
    window: std::time::Duration,
) -> Result<(), StoreError> {
    tx.execute(
        "SELECT pg_advisory_xact_lock($1, hashtext($2 || '/' || $3))",
        &[&BUDGET_LOCK_SPACE, &budget, &key],
    )
    .map_err(db)?;
    tx.execute(
        "DELETE FROM budget_events WHERE budget = $1 AND key = $2 AND at <= $3",
        &[&budget, &key, &window_start(now, window)],
    )
    .map_err(db)?;
    Ok(())
}

/// Forget the events of keys not seen for a window, best effort: it runs
/// outside any key's lock, and a failure (another CA deleting the same rows)
/// leaves them for the next write.
fn forget_old(
    c: &mut impl GenericClient,
    budget: &str,
    now: DateTime<Utc>,
    window: std::time::Duration,
) {
    if let Err(e) = c.execute(
        "DELETE FROM budget_events WHERE budget = $1 AND at <= $2",
        &[&budget, &window_start(now, window)],
    ) {
        tracing::debug!(error = %rampart_api::report::one_line(&e), budget, "forgetting old budget events");
    }
}

fn add(
    tx: &mut postgres::Transaction<'_>,
    budget: &str,
    key: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO budget_events(budget, key, at) VALUES ($1, $2, $3)",
        &[&budget, &key, &now],
    )
    .map_err(db)?;
    Ok(())
}

impl BudgetStore for PostgresStore {
    fn budget_use(
        &self,
        budget: &str,
        key: &str,
        now: DateTime<Utc>,
        window: std::time::Duration,
    ) -> Result<BudgetUse, StoreError> {
        use_in(&mut *self.conn()?, budget, key, now, window)
    }

    fn budget_note(
        &self,
        budget: &str,
        key: &str,
        now: DateTime<Utc>,
        window: std::time::Duration,
    ) -> Result<BudgetUse, StoreError> {
        let mut c = self.conn()?;
        forget_old(&mut *c, budget, now, window);
        let mut tx = c.transaction().map_err(db)?;
        lock_and_trim(&mut tx, budget, key, now, window)?;
        add(&mut tx, budget, key, now)?;
        let used = use_in(&mut tx, budget, key, now, window)?;
        tx.commit().map_err(db)?;
        Ok(used)
    }

    fn budget_spend(
        &self,
        budget: &str,
        key: &str,
        now: DateTime<Utc>,
        window: std::time::Duration,
        max: u32,
    ) -> Result<Result<BudgetUse, BudgetUse>, StoreError> {
        let mut c = self.conn()?;
        let mut tx = c.transaction().map_err(db)?;
        lock_and_trim(&mut tx, budget, key, now, window)?;
        let before = use_in(&mut tx, budget, key, now, window)?;
        if before.used >= max {
            return Ok(Err(before));
        }
        add(&mut tx, budget, key, now)?;
        let after = use_in(&mut tx, budget, key, now, window)?;
        tx.commit().map_err(db)?;
        Ok(Ok(after))
    }
}
