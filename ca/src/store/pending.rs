//! The steps of multi-step flows between two requests: a login started on one
//! CA and finished on another finds its state here, not in the memory of the
//! CA that started it.
//!
//! An entry is found by its kind and the SHA-256 of the handle its client
//! holds (an OIDC `state`, a device-grant handle), never by the handle itself.
//! What it holds is the caller's business: the store keeps opaque bytes (the
//! OIDC flows seal theirs with the CA's sealing key, since they carry a PKCE
//! verifier, a nonce or a device code). Each entry has a version, so a flow
//! that changes an entry in steps (a device grant's polling slot) does so by
//! compare-and-set, and [`PendingStore::pending_take`] hands an entry to
//! exactly one caller however many CAs race for it: a ceremony is consumed
//! once.
//!
//! Entries end at `forget_at`: past it no call returns them, and
//! [`PendingStore::pending_put`] removes them, so the table holds what is in
//! progress and little else. A flow that must tell "expired" from "unknown"
//! keeps its own, earlier, end inside the payload.

use chrono::{DateTime, Utc};

use super::StoreError;

/// Which flow an entry belongs to. Keys are unique per kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PendingKind {
    /// An OIDC authorisation-code login waiting for its code.
    OidcLogin,
    /// An OIDC device grant being polled.
    OidcDevice,
    /// A security-key request (enrolment, login, bastion approval), from its
    /// start until its outcome is collected and a while after.
    WebauthnRequest,
    /// A single-use host join token, from its making until a day after it
    /// was used or expired.
    HostJoinToken,
}

impl PendingKind {
    /// The name stored in the `kind` column.
    pub fn as_str(self) -> &'static str {
        match self {
            PendingKind::OidcLogin => "oidc_login",
            PendingKind::OidcDevice => "oidc_device",
            PendingKind::WebauthnRequest => "webauthn_request",
            PendingKind::HostJoinToken => "host_join_token",
        }
    }
}

/// One step of a flow in progress.
#[derive(Clone, PartialEq, Eq)]
pub struct PendingEntry {
    /// The flow.
    pub kind: PendingKind,
    /// SHA-256 of the handle the client holds.
    pub key: [u8; 32],
    /// Whom the per-owner cap counts it against (a source network, a user);
    /// empty: nobody in particular.
    pub owner: String,
    /// Until when it counts against its owner's cap: a flow that ends before
    /// it is forgotten (kept only to answer late callers) stops counting.
    pub counts_until: DateTime<Utc>,
    /// The flow's state, opaque to the store.
    pub payload: Vec<u8>,
    /// Bumped by every [`PendingStore::pending_update`]; 0 when put.
    pub version: i64,
    /// When it was put.
    pub created_at: DateTime<Utc>,
    /// When the store forgets it.
    pub forget_at: DateTime<Utc>,
}

impl std::fmt::Debug for PendingEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingEntry")
            .field("kind", &self.kind)
            .field("owner", &self.owner)
            .field("payload", &format_args!("<{} bytes>", self.payload.len()))
            .field("version", &self.version)
            .field("forget_at", &self.forget_at)
            .finish_non_exhaustive()
    }
}

/// How many live entries of one kind may exist at once: a flood of starts is
/// refused rather than let fill the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PendingCaps {
    /// Of the kind, in all.
    pub total: u32,
    /// Of the kind, for one owner, among the entries that still count
    /// (`counts_until` not past).
    pub per_owner: u32,
}

/// What [`PendingStore::pending_put`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PendingPut {
    /// Stored.
    Stored,
    /// A cap was reached: nothing stored.
    Full,
}

/// Flows in progress, shared by every CA on the database.
pub trait PendingStore {
    /// Store a new entry (version 0), after forgetting every entry past its
    /// `forget_at`, unless the kind is at a cap. A key already live is
    /// [`StoreError::Duplicate`]. The caps are checked and the entry stored in
    /// one step, so CAs racing cannot pass them together.
    fn pending_put(
        &self,
        entry: &PendingEntry,
        caps: &PendingCaps,
        now: DateTime<Utc>,
    ) -> Result<PendingPut, StoreError>;

    /// The live entry under `key`, left in place.
    fn pending_get(
        &self,
        kind: PendingKind,
        key: &[u8; 32],
        now: DateTime<Utc>,
    ) -> Result<Option<PendingEntry>, StoreError>;

    /// Every live entry of `kind`, oldest first (at most the kind's cap).
    fn pending_list(
        &self,
        kind: PendingKind,
        now: DateTime<Utc>,
    ) -> Result<Vec<PendingEntry>, StoreError>;

    /// Remove the live entry under `key` and return it. Of any number of
    /// callers racing, on any number of CAs, exactly one gets it.
    fn pending_take(
        &self,
        kind: PendingKind,
        key: &[u8; 32],
        now: DateTime<Utc>,
    ) -> Result<Option<PendingEntry>, StoreError>;

    /// Replace the payload and `counts_until` of the live entry under `key`
    /// if its version is still `version` (and bump it): `false` if it
    /// changed, ended or was taken meanwhile.
    fn pending_update(
        &self,
        kind: PendingKind,
        key: &[u8; 32],
        version: i64,
        payload: &[u8],
        counts_until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// Forget every entry past its `forget_at`; how many went.
    fn pending_purge(&self, now: DateTime<Utc>) -> Result<u64, StoreError>;
}

/// The kind named by a stored `kind` column.
pub(crate) fn kind_of(s: &str) -> Result<PendingKind, StoreError> {
    match s {
        "oidc_login" => Ok(PendingKind::OidcLogin),
        "oidc_device" => Ok(PendingKind::OidcDevice),
        "webauthn_request" => Ok(PendingKind::WebauthnRequest),
        "host_join_token" => Ok(PendingKind::HostJoinToken),
        other => Err(StoreError::Corrupt(format!("pending kind {other:?}"))),
    }
}

/// The key column as 32 bytes.
pub(crate) fn key_of(v: &[u8]) -> Result<[u8; 32], StoreError> {
    v.try_into()
        .map_err(|_| StoreError::Corrupt(format!("pending key of {} bytes", v.len())))
}
