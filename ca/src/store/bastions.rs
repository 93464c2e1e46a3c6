//! Bastions joined to the CA: their single-use join tokens and the credential
//! each one holds.

use chrono::{DateTime, Utc};

use super::StoreError;

/// A joined bastion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BastionRecord {
    /// Unique name (a host name).
    pub name: String,
    /// `SHA256:…` fingerprint of its SSH host key.
    pub host_key_fingerprint: String,
    /// When it joined.
    pub joined_at: DateTime<Utc>,
}

/// Outcome of presenting a bastion join token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BastionJoin {
    /// Valid; now used; the bastion is registered under the new credential.
    Joined,
    /// No such token.
    Unknown,
    /// Already used.
    AlreadyUsed,
    /// Past its expiry.
    Expired,
    /// The token is bound to another name (carried); it stays unused.
    NameMismatch(String),
    /// Another bastion holds this name and the token was not made for it; the
    /// token stays unused.
    NameTaken,
}

/// Outcome of presenting a user's proof of presence (the signed SSH session
/// a session-certificate request carries).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProofClaim {
    /// Not seen before: now bound to this bastion.
    First,
    /// Presented before by this bastion, and still within its window.
    Again,
    /// Presented first by another bastion (named).
    Foreign(String),
    /// Presented before by this bastion, but its window is over.
    Expired,
}

/// Bastion join tokens, joined bastions, and the user proofs they present.
pub trait BastionStore {
    /// Store a bastion join token by the hash of the token.
    fn create_bastion_token(
        &self,
        token_hash: &[u8; 32],
        name: Option<&str>,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// Atomically redeem a join token and register (or, with a token made for
    /// this name, re-register) the bastion under `credential_hash`.
    fn join_bastion(
        &self,
        token_hash: &[u8; 32],
        bastion: &BastionRecord,
        credential_hash: &[u8; 32],
        now: DateTime<Utc>,
    ) -> Result<BastionJoin, StoreError>;

    /// Bind the proof of the SSH session whose identifier hashes to
    /// `session_hash` to `bastion` on first use (accepted until
    /// `accept_until`, remembered until `keep_until`), or say how it was bound
    /// before. Atomic: two bastions racing for one proof cannot both win.
    fn claim_user_proof(
        &self,
        session_hash: &[u8; 32],
        bastion: &str,
        now: DateTime<Utc>,
        accept_until: DateTime<Utc>,
        keep_until: DateTime<Utc>,
    ) -> Result<ProofClaim, StoreError>;

    /// A bastion by name.
    fn bastion(&self, name: &str) -> Result<Option<BastionRecord>, StoreError>;

    /// The names of all joined bastions, sorted.
    fn bastion_names(&self) -> Result<Vec<String>, StoreError>;

    /// Forget a bastion (its credential stops working); false when unknown.
    fn remove_bastion(&self, name: &str) -> Result<bool, StoreError>;

    /// The bastion holding this credential.
    fn bastion_by_credential(
        &self,
        credential_hash: &[u8; 32],
    ) -> Result<Option<BastionRecord>, StoreError>;
}
