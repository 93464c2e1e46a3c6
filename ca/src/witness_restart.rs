//! `rampart-ca witness-restart`: the deliberate way to begin a new audit witness
//! when the old one is gone (deleted, emptied, or never written by an older
//! release) while the audit database already holds signed checkpoints.
//!
//! `serve` and `check` refuse that state, because a CA that started a fresh
//! witness by itself would accept a log cut back to any earlier checkpoint. This
//! command is the operator saying "I compared the database with the SIEM's copy
//! and it is whole". Whoever runs it holds the CA's keys and passphrase, so it
//! grants nothing new; what it must not be is quiet: an `audit_witness_restarted`
//! event (severity high) naming the head it restarts from is committed, and
//! signed into a checkpoint, before the new witness's first line is written.
//! Like `recover-admin`, it opens the audit log beside a running daemon if there
//! is one.

use std::path::{Path, PathBuf};

use rampart_audit::witness::{self, Head};
use rampart_audit::{AuditConfig, EventKind, NewEvent, Outcome};

use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::error::CaError;

/// What `witness-restart` did.
#[derive(Debug)]
pub struct WitnessRestart {
    /// The new witness file.
    pub witness: PathBuf,
    /// The newest checkpoint (or anchor) before the restart: what the event names.
    pub from: Head,
    /// The `audit_witness_restarted` event's sequence number.
    pub event_seq: u64,
    /// The head the new witness starts at (the checkpoint over the event).
    pub started_at: Head,
}

fn audit_err(e: rampart_audit::AuditError) -> CaError {
    CaError::Config(format!(
        "audit witness: {}",
        rampart_api::report::one_line(&e)
    ))
}

/// Begin a new witness for the CA configured at `config_path`.
pub fn witness_restart(config_path: &Path) -> Result<WitnessRestart, CaError> {
    let config = Config::load(config_path)?;
    let db = &config.audit_database;
    let w = &config.audit_witness;
    if db.sqlite_path().is_some_and(|p| !p.exists()) {
        return Err(CaError::Config(format!(
            "{db} does not exist; run `rampart-ca init` first"
        )));
    }
    // Checked again by `witness::restart` at the end; refusing here first keeps
    // a witness that is there from costing an event.
    if !witness::is_absent(w).map_err(audit_err)? {
        return Err(CaError::Config(format!(
            "audit witness {} exists and is not empty: there is nothing to restart; \
             if it is damaged or belongs to another database, move it aside yourself \
             (keep it as evidence) and run this again",
            w.display()
        )));
    }
    let before = db.witness_start_points().map_err(audit_err)?;
    let Some(from) = before.newest() else {
        return Err(CaError::Config(format!(
            "the audit database {} has no checkpoint yet: there is nothing to restart \
             from, and `rampart-ca serve` begins {} by itself",
            db,
            w.display()
        )));
    };
    let db_head = db.head().map_err(audit_err)?;
    let pass = config.read_passphrase()?;
    let keys = crate::keys::load(&config, &pass)?;
    // Without the witness: its check at open is exactly what this command
    // overrides. The event's checkpoint is not witnessed by the writer; the
    // restart below writes it as the new witness's first line.
    let log = db
        .open(
            Some(keys.audit),
            AuditConfig {
                checkpoint_every_events: config.checkpoint_every_events,
                checkpoint_every: config.checkpoint_every,
                witness: None,
                ..AuditConfig::default()
            },
        )
        .map_err(|e| CaError::Config(format!("{db}: {}", rampart_api::report::one_line(&e))))?;
    let os_user = crate::recover::os_user();
    // Audit first: the new witness exists only once the log says who made it.
    let appended = log
        .append(
            NewEvent::new(
                EventKind::AuditWitnessRestarted,
                Outcome::Success,
                SystemClock.now(),
            )
            .actor("rampart-ca witness-restart")
            .detail("witness", w.display().to_string())
            .detail("from_seq", from.seq)
            .detail("from_hash", hex::encode(from.hash))
            .detail("anchor_seq", before.anchor.as_ref().map(|a| a.seq))
            .detail("db_head_seq", db_head.seq)
            .detail("db_head_hash", hex::encode(db_head.hash))
            .detail("os_user", os_user),
        )
        .map_err(CaError::AuditUnavailable)?;
    // Sign the event into a checkpoint, so the new witness starts past it and
    // a log cut back before the restart is caught by the new witness too.
    log.checkpoint_now().map_err(CaError::AuditUnavailable)?;
    log.close().map_err(CaError::AuditUnavailable)?;
    let after = db.restart_witness(w).map_err(audit_err)?;
    let started_at = after.newest().ok_or_else(|| {
        CaError::Config("the audit database lost its checkpoints during the restart".into())
    })?;
    Ok(WitnessRestart {
        witness: w.clone(),
        from,
        event_seq: appended.seq,
        started_at,
    })
}
