//! The witness: every signed checkpoint (and every retention anchor) copied to an
//! append-only file outside the audit database, and the comparison of a database
//! with such a copy.
//!
//! **Owns:** the witness file format, appending to it (each line fsynced before
//! the call returns), reading it strictly, and [`check()`] / [`check_expected`],
//! which say whether a database is behind, or disagrees with, a head recorded
//! elsewhere.
//! **Must never:** write to the audit database, or skip a line it cannot parse
//! (a damaged witness is reported, not guessed around).
//!
//! # Why
//!
//! The chain and its checkpoints prove that what the database holds was not
//! altered; they cannot prove that nothing was cut off. Whoever can write the
//! database can delete every event and checkpoint after checkpoint *K*, and what
//! is left is a perfectly valid, signed log that ends at *K*. Only a record of a
//! later head kept somewhere else shows the cut. The writer therefore appends each
//! checkpoint it commits to the witness file, and `verify`, `rampart-ca serve` and
//! `rampart-ca check` compare the database with the file's newest line.
//!
//! # Format
//!
//! One JSON object per line, each line ending in `\n`, the shape of the
//! checkpoint lines of a JSON Lines export:
//!
//! ```text
//! {"type":"checkpoint","seq":1200,"hash":"<64 hex>","time":"<canonical time>","signature":"-----BEGIN SSH SIGNATURE-----\n…"}
//! {"type":"anchor","seq":1000,"hash":"<64 hex>","time":"…","signature":"…"}
//! ```
//!
//! `signature` is the checkpoint's armored SSHSIG over the message described in
//! the crate documentation, so every line can be checked with the audit public
//! key alone. `checkpoint` lines are written after the checkpoint is committed
//! (a crash in between leaves the witness one checkpoint behind, never ahead);
//! `anchor` lines are written by retention pruning *before* the anchor row, so an
//! anchor in the database that the witness never saw was not made by Rampart.
//!
//! # What a witness proves, and what it does not
//!
//! With the witness, a database cut back to an earlier checkpoint (its head is
//! below the witnessed head), a chain rewritten from some point on (its hash at a
//! witnessed sequence differs), an `anchors` row copied from a checkpoint to make
//! the history before it deletable (the anchor was never witnessed), and an
//! altered witness line (its signature fails, or its hash is not the chain's) are
//! all detected. A witness file on the CA host is only as safe as that host:
//! whoever is root there can rewrite the file as well as the database. Keep a copy
//! where the CA host cannot write — the SIEM receives every event's `seq` and
//! `hash`, which is all `--expect-head` needs, and the witness file itself can be
//! shipped by a log agent.
//!
//! A log in PostgreSQL that several CAs share is compared the same way by
//! `postgres` (the newest line; there is no retention anchor there).
//!
//! # Files
//!
//! - `mod.rs`: [`Head`], a chain position, and its `SEQ:HASH` form.
//! - `file.rs`: the witness file itself: its line format, appending (fsynced),
//!   reading strictly, and whether a witness is absent.
//! - `check.rs`: comparing an SQLite audit database with a witness or with a
//!   head recorded elsewhere ([`check()`], [`check_expected`]).
//! - `start.rs`: where a new witness starts, the refusal of a missing one at
//!   open, and the deliberate [`restart`].
//! - `postgres.rs`: the same checks and restart for a log in PostgreSQL.

mod check;
mod file;
mod postgres;
mod start;

pub(crate) use check::compare;
pub use check::{check, check_expected, check_file, read_head, Depth, WitnessReport};
pub use file::{append, append_checkpoint, is_absent, read, WitnessEntry, WitnessKind};
pub(crate) use file::{append_checkpoint_to, append_existing};
pub(crate) use postgres::open_check_postgres;
pub use postgres::{check_postgres, restart_postgres, start_points_postgres};
pub use start::{absent_check, restart, start_points, StartPoints};
pub(crate) use start::{absent_problem, open_check};

use crate::AuditError;

/// A chain position: a sequence number and the chain hash there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Head {
    /// Sequence number (0: the empty log).
    pub seq: u64,
    /// Chain hash at `seq` (32 zero bytes for the empty log).
    pub hash: [u8; 32],
}

impl std::fmt::Display for Head {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "sequence {} hash {}", self.seq, hex::encode(self.hash))
    }
}

impl Head {
    /// Parse `SEQ:HASH` (decimal sequence, 64 hex digits), the form
    /// `rampart audit verify` prints and `--expect-head` takes.
    pub fn parse(s: &str) -> Result<Head, AuditError> {
        let bad = |why: &str| AuditError::Config(format!("head {s:?}: {why} (expected SEQ:HASH)"));
        let (seq, hash) = s.trim().split_once(':').ok_or_else(|| bad("no ':'"))?;
        let seq: u64 = seq.parse().map_err(|_| bad("sequence is not a number"))?;
        let hash = parse_hash(hash).ok_or_else(|| bad("hash is not 64 hex digits"))?;
        Ok(Head { seq, hash })
    }
}

fn parse_hash(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 {
        return None;
    }
    let v = hex::decode(s).ok()?;
    <[u8; 32]>::try_from(v.as_slice()).ok()
}
