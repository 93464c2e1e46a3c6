//! Per-key event budgets in SQLite: one row per event in `budget_events`
//! (schema version 4). A spend checks and counts in one immediate
//! transaction.

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, TransactionBehavior};

use super::{db, parse_ts, ts, SqliteStore};
use crate::store::budgets::{use_of, window_start};
use crate::store::{BudgetStore, BudgetUse, StoreError};

fn use_in(
    conn: &Connection,
    budget: &str,
    key: &str,
    now: DateTime<Utc>,
    window: std::time::Duration,
) -> Result<BudgetUse, StoreError> {
    let (n, oldest): (i64, Option<String>) = conn
        .query_row(
            "SELECT COUNT(*), MIN(at) FROM budget_events
             WHERE budget = ?1 AND key = ?2 AND at > ?3",
            params![budget, key, ts(window_start(now, window))],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .map_err(db)?;
    Ok(use_of(
        n,
        oldest.as_deref().map(parse_ts).transpose()?,
        window,
    ))
}

/// Forget the budget's events that left the window, then count one.
fn add(
    conn: &Connection,
    budget: &str,
    key: &str,
    now: DateTime<Utc>,
    window: std::time::Duration,
) -> Result<(), StoreError> {
    conn.execute(
        "DELETE FROM budget_events WHERE budget = ?1 AND at <= ?2",
        params![budget, ts(window_start(now, window))],
    )
    .map_err(db)?;
    conn.execute(
        "INSERT INTO budget_events(budget, key, at) VALUES (?1, ?2, ?3)",
        params![budget, key, ts(now)],
    )
    .map_err(db)?;
    Ok(())
}

impl BudgetStore for SqliteStore {
    fn budget_use(
        &self,
        budget: &str,
        key: &str,
        now: DateTime<Utc>,
        window: std::time::Duration,
    ) -> Result<BudgetUse, StoreError> {
        use_in(&*self.conn()?, budget, key, now, window)
    }

    fn budget_note(
        &self,
        budget: &str,
        key: &str,
        now: DateTime<Utc>,
        window: std::time::Duration,
    ) -> Result<BudgetUse, StoreError> {
        let mut conn = self.conn()?;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db)?;
        add(&tx, budget, key, now, window)?;
        let used = use_in(&tx, budget, key, now, window)?;
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
        let mut conn = self.conn()?;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db)?;
        let before = use_in(&tx, budget, key, now, window)?;
        if before.used >= max {
            return Ok(Err(before));
        }
        add(&tx, budget, key, now, window)?;
        let after = use_in(&tx, budget, key, now, window)?;
        tx.commit().map_err(db)?;
        Ok(Ok(after))
    }
}
