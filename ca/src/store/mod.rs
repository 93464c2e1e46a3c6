//! The CA's state behind traits: users, invites, factors, sessions, certificates,
//! revocations, bastions, serial numbers, the flows in progress between two
//! requests and the per-network budgets. SQLite ([`sqlite::SqliteStore`]) is
//! the embedded default; PostgreSQL ([`postgres::PostgresStore`]) lets several
//! CAs share one database. [`conformance`] holds the behaviour both must show.
//!
//! The state is split by responsibility into area traits ([`UserStore`],
//! [`FactorStore`], [`AttemptStore`], [`SessionStore`], [`CertStore`],
//! [`BastionStore`], [`MetaStore`], [`PendingStore`], [`BudgetStore`]), each
//! in its own module with the records it reads and writes. [`Store`] is all
//! of them together: a backend implements the areas and gets `Store` from the
//! blanket impl, and callers keep one `Arc<dyn Store>`. Calling an area's method through `dyn Store` needs that
//! area's trait in scope: `use crate::store::prelude::*` brings them all.
//!
//! Secrets never reach the store in the clear: invite codes and session tokens are
//! stored as SHA-256 hashes (they are 160+ random bits, so a fast hash is enough),
//! recovery codes as argon2 hashes, TOTP seeds encrypted by the caller; flows in
//! progress are keyed by the SHA-256 of their handle, and what they keep is
//! sealed by the caller where it is a secret.
//!
//! Every method that changes state is atomic. Methods that must not race (TOTP
//! step replay, invite redemption, recovery-code use) are compare-and-set.

mod attempts;
mod bastions;
mod budgets;
mod certs;
#[cfg(test)]
mod conformance;
mod factors;
mod meta;
mod pending;
pub mod postgres;
mod sessions;
pub mod sqlite;
mod users;

pub use attempts::{AttemptLimits, AttemptLock, AttemptStore, FailureTally, LockScope};
pub use bastions::{BastionJoin, BastionRecord, BastionStore, ProofClaim};
pub use budgets::{BudgetStore, BudgetUse};
pub use certs::{CertKind, CertRecord, CertStore, Revocations};
pub use factors::{CounterUpdate, FactorStore, TotpRecord, WebauthnEvidence, WebauthnKeyRecord};
pub use meta::MetaStore;
pub use pending::{PendingCaps, PendingEntry, PendingKind, PendingPut, PendingStore};
pub use sessions::{IdpBinding, IdpEvidence, SessionRecord, SessionStore};
pub use users::{InviteRedemption, PendingEnrollment, UserRecord, UserStore};

/// The area traits, for calling store methods through `dyn Store`.
pub mod prelude {
    pub use super::{
        AttemptStore, BastionStore, BudgetStore, CertStore, FactorStore, MetaStore, PendingStore,
        SessionStore, Store, UserStore,
    };
}

/// Errors of a store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database failed, described in words: there is no underlying error
    /// to keep (a poisoned lock, every pooled connection busy, a row that
    /// changed under a check).
    #[error("database: {0}")]
    Db(String),
    /// The database's settings are unusable (a URL that is not `postgres://`,
    /// a connection option this build does not support).
    #[error("{0}")]
    Settings(String),
    /// The database failed: `context` says what was being done, the source
    /// says how it failed (printed by whoever reports the chain, e.g.
    /// `rampart_api::report::one_line`, never twice).
    #[error("{context}")]
    Database {
        /// What failed, e.g. `SQLite query` or `upgrading the schema to version 3`.
        context: String,
        /// The backend's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
    /// The database server cannot be reached (refused, gone, shutting down):
    /// nothing was done, and the same request may succeed once it is back.
    #[error("the database is unavailable ({database})")]
    Unavailable {
        /// Where it was looked for (no password).
        database: String,
        /// How reaching it failed.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
    /// A row that must be unique already exists.
    #[error("{0} already exists")]
    Duplicate(String),
    /// A stored value could not be decoded.
    #[error("corrupt stored value: {0}")]
    Corrupt(String),
    /// The database was written by a newer release, with a schema this binary
    /// does not know.
    #[error(
        "the database has schema version {found}, newer than the {supported} this \
         rampart-ca knows: run the release that wrote it (or a newer one), or restore \
         the backup taken before upgrading"
    )]
    SchemaTooNew {
        /// The version in the database.
        found: i64,
        /// The newest version this binary knows.
        supported: u32,
    },
    /// The file is an SQLite database of something else.
    #[error("not a Rampart CA database (application_id {application_id:#x})")]
    NotCaDatabase {
        /// The file's `PRAGMA application_id`.
        application_id: i64,
    },
}

impl StoreError {
    /// A backend failure while doing `context`, keeping the backend's error as
    /// the source.
    pub fn database(
        context: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        StoreError::Database {
            context: context.into(),
            source: Box::new(source),
        }
    }
}

/// The CA's whole state: every area together. Implement the area traits; this
/// one comes from the blanket impl below.
pub trait Store:
    UserStore
    + FactorStore
    + AttemptStore
    + SessionStore
    + CertStore
    + BastionStore
    + MetaStore
    + PendingStore
    + BudgetStore
    + Send
    + Sync
    + std::fmt::Debug
{
}

impl<T> Store for T where
    T: UserStore
        + FactorStore
        + AttemptStore
        + SessionStore
        + CertStore
        + BastionStore
        + MetaStore
        + PendingStore
        + BudgetStore
        + Send
        + Sync
        + std::fmt::Debug
        + ?Sized
{
}
