//! `rampart-audit`: Rampart's audit events and the tamper-evident log they live in.
//!
//! **Owns:** the event schema (kinds with stable codes and severities), the
//! hash-chained append-only log over SQLite (its own database file, e.g.
//! `audit.db`) or PostgreSQL (one chain several CAs append to:
//! [`AuditLog::open_postgres`], checked by [`copy_to_sqlite`] then [`verify`]),
//! signed checkpoints, [`verify`], and the session recording format whose
//! digests the log seals ([`recording`]).
//! **Must never:** sign certificates or evaluate policy. It reads no wall clock
//! for event times (they are parameters); the only clock it reads is the monotonic
//! [`std::time::Instant`] that spaces periodic checkpoints and recording flushes.
//!
//! # Using it
//!
//! ```no_run
//! # fn main() -> Result<(), rampart_audit::AuditError> {
//! use rampart_audit::{AuditConfig, AuditLog, EventKind, NewEvent, Outcome};
//! let key = None; // Some(ssh_key::PrivateKey) to sign checkpoints
//! let log = AuditLog::open("audit.db".as_ref(), key, AuditConfig::default())?;
//! let now = chrono::Utc::now(); // from the caller's clock
//! let at = log.append(
//!     NewEvent::new(EventKind::CertIssued, Outcome::Success, now).user("alice").serial(7),
//! )?; // returns only once the event is fsynced; on Err, refuse the action (fail closed)
//! log.close()?;
//! let report = rampart_audit::verify("audit.db".as_ref(), None)?;
//! assert!(report.problem.is_none());
//! # let _ = at; Ok(()) }
//! ```
//!
//! # Event codes
//!
//! Codes are stable and greppable (in the spirit of Teleport's `lib/events/codes.go`):
//! never renumbered, never reused; new kinds get new codes.
//!
//! | code | kind | severity |
//! |---|---|---|
//! | `RA-CA-001` | `ca_initialized` | notice |
//! | `RA-CA-002` | `ca_started` | info |
//! | `RA-CA-003` | `ca_stopped` | notice |
//! | `RA-ADM-001` | `user_created` | notice |
//! | `RA-ADM-002` | `user_disabled` | warning |
//! | `RA-ADM-003` | `user_enabled` | notice |
//! | `RA-ADM-004` | `user_groups_changed` | notice |
//! | `RA-ADM-005` | `invite_created` | notice |
//! | `RA-ADM-006` | `invite_redeemed` | notice |
//! | `RA-ADM-007` | `invite_refused` | warning |
//! | `RA-ADM-008` | `admin_action_denied` | high |
//! | `RA-AUTH-001` | `totp_enrolled` | notice |
//! | `RA-AUTH-002` | `recovery_codes_issued` | notice |
//! | `RA-AUTH-003` | `mfa_succeeded` | info |
//! | `RA-AUTH-004` | `mfa_failed` | warning |
//! | `RA-AUTH-005` | `mfa_locked_out` | high |
//! | `RA-AUTH-006` | `recovery_code_used` | warning |
//! | `RA-AUTH-007` | `webauthn_key_enrolled` | notice |
//! | `RA-AUTH-008` | `webauthn_key_removed` | notice |
//! | `RA-AUTH-009` | `webauthn_key_cloned` | high |
//! | `RA-AUTH-010` | `webauthn_enrolment_refused` | warning |
//! | `RA-SES-001` | `session_created` | info |
//! | `RA-SES-002` | `session_ended` | info |
//! | `RA-CERT-001` | `cert_issued` | info |
//! | `RA-CERT-002` | `cert_denied` | warning |
//! | `RA-CERT-003` | `host_cert_issued` | notice |
//! | `RA-CERT-004` | `revoked` | warning |
//! | `RA-CERT-005` | `krl_published` | info |
//! | `RA-BAS-001` | `bastion_token_created` | notice |
//! | `RA-BAS-002` | `bastion_joined` | notice |
//! | `RA-BAS-003` | `bastion_join_refused` | warning |
//! | `RA-BAS-004` | `access_granted` | info |
//! | `RA-BAS-005` | `access_denied` | warning |
//! | `RA-BAS-006` | `bastion_session_started` | info |
//! | `RA-BAS-007` | `bastion_session_ended` | info |
//! | `RA-BAS-008` | `bastion_connection_refused` | warning |
//! | `RA-BAS-009` | `bastion_exec` | info |
//! | `RA-BAS-010` | `bastion_file_op` | info |
//! | `RA-BAS-011` | `bastion_forward` | info |
//! | `RA-BAS-012` | `bastion_request_refused` | warning |
//! | `RA-BAS-013` | `recording_sealed` | notice |
//! | `RA-BAS-014` | `recording_viewed` | notice |
//! | `RA-BAS-015` | `audit_event_rejected` | warning |
//! | `RA-BAS-016` | `bastion_config_reloaded` | notice |
//!
//! # On-disk format, version 1
//!
//! ## The chain
//!
//! Events have sequence numbers `seq` = 1, 2, 3, … without gaps. Each event's hash is
//!
//! ```text
//! hash(seq) = SHA-256( hash(seq - 1) ‖ body(seq) )        hash(0) = 32 zero bytes
//! ```
//!
//! where `body` is the canonical encoding below, as UTF-8 bytes.
//!
//! ## Canonical body
//!
//! A single-line JSON object with no insignificant whitespace and exactly these
//! keys, in this order, every key always present:
//!
//! ```text
//! {"v":1,"seq":N,"id":"ULID","time":"T","kind":"K","code":"C","severity":"S",
//!  "outcome":"O","actor":A,"user":U,"source":SRC,"target":TGT,"session":SES,
//!  "serial":SERIAL,"mfa_method":M,"mfa_age_seconds":AGE,"reason":R,"details":D}
//! ```
//!
//! (shown wrapped; the real body has no newline).
//! - `v`: the integer 1 (this format's version).
//! - `seq`: the event's sequence number (so a body cannot be moved to another position).
//! - `id`: the ULID in its 26-character Crockford base32 form (upper case).
//! - `time`: RFC 3339 in UTC with exactly nine fractional digits and `Z`
//!   (`2025-03-01T12:00:00.000000000Z`).
//! - `kind`, `severity`, `outcome`: snake_case names; `code`: the stable code.
//! - `actor`, `user`, `source`, `target`, `session`, `mfa_method`, `reason`: a JSON
//!   string or `null`; `serial` (u64) and `mfa_age_seconds` (i64): a JSON integer or `null`.
//! - `details`: a JSON object whose keys — and the keys of every object nested in
//!   it, at any depth — are sorted by byte-wise (UTF-8) order; arrays keep order.
//! - Strings are escaped as serde_json writes them: `"` → `\"`, `\` → `\\`, U+0008,
//!   U+0009, U+000A, U+000C, U+000D → `\b \t \n \f \r`, other control characters below
//!   U+0020 → `\u00XX` (lower-case hex); everything else, including `/` and non-ASCII,
//!   is written as raw UTF-8. Integers are plain decimal; floating-point numbers use
//!   serde_json's shortest round-trip form (ryu).
//!
//! ## Tables
//!
//! `events(seq INTEGER PRIMARY KEY, id, time, kind, user, serial, body, hash)`:
//! `body` is the canonical body (TEXT), `hash` its 32-byte chain hash (BLOB);
//! `id`, `time`, `kind`, `user`, `serial` are indexed copies of body fields for
//! queries (`serial` holds the u64 bit-for-bit in SQLite's signed INTEGER).
//! `checkpoints(seq INTEGER PRIMARY KEY, hash, time, signature)`. Triggers abort any
//! `UPDATE` or `DELETE` on either table with `audit log is append-only`.
//! `PRAGMA application_id` is `0x52414d41` ("RAMA") and `PRAGMA user_version` is the
//! schema version, 1. The writer creates the schema in a new file and upgrades an
//! older version in one transaction; every opener refuses a newer version, and
//! readers (verify, query, export, forwarders) also refuse an older one.
//! The database runs in WAL mode with `synchronous=FULL`: an append returns only
//! after its transaction's WAL frames are fsynced.
//!
//! ## Checkpoints
//!
//! Every `checkpoint_every_events` events, every `checkpoint_every` (when there is
//! something new), and on close, the writer signs the current head with the audit
//! key. The signed message is exactly
//!
//! ```text
//! rampart-audit-checkpoint v1
//! seq=<decimal seq>
//! hash=<64 lower-case hex digits>
//! time=<that event's canonical time>
//! ```
//!
//! (each line ending in `\n`, including the last), signed as an SSHSIG
//! (OpenSSH `PROTOCOL.sshsig`) with namespace `rampart-audit@rampart` and hash
//! SHA-512, and stored PEM-armored. Stock OpenSSH checks one like this:
//!
//! ```sh
//! echo "audit@rampart namespaces=\"rampart-audit@rampart\" $(cat audit_key.pub)" > allowed_signers
//! sqlite3 audit.db "SELECT signature FROM checkpoints WHERE seq = 1000" > cp.sig
//! sqlite3 audit.db "SELECT 'rampart-audit-checkpoint v1' || char(10) || 'seq=' || seq || char(10)
//!     || 'hash=' || lower(hex(hash)) || char(10) || 'time=' || time || char(10)
//!     FROM checkpoints WHERE seq = 1000" | head -c -1 > cp.msg   # drop sqlite3's extra newline
//! ssh-keygen -Y verify -f allowed_signers -I audit@rampart -n rampart-audit@rampart -s cp.sig < cp.msg
//! ```
//!
//! # What `verify` proves, and what it cannot
//!
//! It detects any altered column, a deleted, duplicated, moved or swapped row, a
//! checkpoint whose hash or signature is wrong, and a log cut off before its last
//! signed checkpoint; it names the first bad sequence number. On the database
//! alone it cannot see a log cut back to an *earlier* checkpoint (events and
//! checkpoints after it deleted together), nor an `anchors` row copied from a
//! genuine checkpoint to make the history before it deletable: both leave a valid,
//! signed, shorter log. [`witness`] closes that: the writer appends every
//! checkpoint (and retention every anchor) to a file outside the database, and
//! [`witness::check`] fails a database that is behind it, disagrees with it, or
//! has an anchor it never saw. A witness on the same host can be rewritten by
//! whoever is root there: keep a copy (or the SIEM's newest `seq`/`hash`) off-box.

// Tests may read the wall clock; the code they test reads it through its seam.
#![cfg_attr(test, allow(clippy::disallowed_methods))]

mod checkpoint;
mod error;
mod event;
pub mod export;
pub mod forward;
mod location;
mod log;
pub mod recording;
pub mod retention;
mod store;
mod verify;
pub mod witness;

pub use checkpoint::{
    allowed_signers_line, checkpoint_message, Checkpoint, CheckpointSigner, CHECKPOINT_NAMESPACE,
};
pub use error::AuditError;
pub use event::{canonical_time, Event, EventKind, NewEvent, Outcome, Severity, BODY_VERSION};
pub use location::AuditStore;
pub use log::{Appended, AuditConfig, AuditLog};
pub use store::postgres::{
    copy_to_sqlite, is_postgres_url, pg_config, postgres_schema_version, PgConfig,
    PG_SCHEMA_VERSION,
};
pub use store::{schema_version, Query};
pub use verify::{verify, VerifyProblem, VerifyReport};
