//! Second factors a user proves: TOTP seeds and their replay guard, recovery
//! codes, WebAuthn keys with their signature counters, and what a WebAuthn login
//! proved (kept beside its session for the certificate).

use chrono::{DateTime, Utc};

use super::StoreError;

/// A TOTP factor.
#[derive(Clone, PartialEq, Eq)]
pub struct TotpRecord {
    /// Encrypted seed (see `crate::seal`).
    pub sealed_seed: Vec<u8>,
    /// Highest time step accepted so far; a step ≤ this is a replay.
    pub last_step: i64,
}

impl std::fmt::Debug for TotpRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TotpRecord")
            .field("last_step", &self.last_step)
            .finish_non_exhaustive()
    }
}

/// A registered WebAuthn/FIDO2 credential (a security key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebauthnKeyRecord {
    /// Short public ID (for listing and removal).
    pub id: String,
    /// The owner.
    pub user: String,
    /// The credential ID, base64url without padding (unique across users).
    pub credential_id: String,
    /// The serialized webauthn-rs `Credential` (public key, counter, flags): public
    /// data, no secret.
    pub credential: String,
    /// Authenticator model, lower-case UUID (all zeros when not disclosed).
    pub aaguid: String,
    /// Attestation statement format of the enrolment.
    pub attestation_format: String,
    /// The enrolment was user-verified.
    pub user_verified: bool,
    /// The key's attestation statement verified against the CA's configured
    /// `[webauthn] attestation_roots` when it was enrolled. Keys stored before the
    /// CA recorded this read as `false` (unattested) unless their AAGUID is
    /// allow-listed: nothing shows their attestation was ever checked.
    pub attestation_verified: bool,
    /// BE flag.
    pub backup_eligible: bool,
    /// BS flag, as last seen.
    pub backup_state: bool,
    /// Highest signature counter seen.
    pub sign_count: u32,
    /// The user's name for it.
    pub name: String,
    /// Enrolled.
    pub created_at: DateTime<Utc>,
    /// Last approval.
    pub last_used_at: Option<DateTime<Utc>>,
    /// Set when the CA disabled it (e.g. `sign_count_regressed`).
    pub disabled_reason: Option<String>,
}

/// What a WebAuthn login proved, kept beside its session for the certificate's
/// evidence extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebauthnEvidence {
    /// [`WebauthnKeyRecord::id`] of the key used.
    pub key_id: String,
    /// The key's AAGUID.
    pub aaguid: String,
    /// The assertion carried the UV flag.
    pub user_verified: bool,
    /// The CA trusted the key's model at login (attestation verified at
    /// enrolment, or AAGUID allow-listed).
    pub attested: bool,
    /// The assertion was given on the CA's approval page (through a link),
    /// not sent by the client from a key on its own machine (CTAP2).
    pub via_link: bool,
}

/// Outcome of [`FactorStore::webauthn_key_used`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CounterUpdate {
    /// The counter moved forward (or both are zero: a counter-less key).
    Advanced,
    /// The presented counter is not above the stored one (the stored one carried).
    Regressed(u32),
    /// No such key, or it is disabled.
    Gone,
}

/// TOTP, recovery codes and WebAuthn keys.
pub trait FactorStore {
    /// The user's TOTP factor.
    fn totp(&self, user: &str) -> Result<Option<TotpRecord>, StoreError>;

    /// Accept `step` for `user` only if it is newer than every step accepted so far
    /// (RFC 6238 §5.2: a code must not be accepted twice). True when accepted.
    fn advance_totp_step(&self, user: &str, step: i64) -> Result<bool, StoreError>;

    /// Argon2 hash of the user's unused recovery code with this ID.
    fn recovery_code(&self, user: &str, id: &str) -> Result<Option<String>, StoreError>;

    /// Mark a recovery code used; false if it already was.
    fn use_recovery_code(
        &self,
        user: &str,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// Unused recovery codes left.
    fn recovery_codes_left(&self, user: &str) -> Result<u32, StoreError>;

    /// Register a WebAuthn key; with `recovery`, atomically replace the user's
    /// recovery codes too (a first factor enrolled from an invite); with
    /// `replaces`, remove that key of the same user in the same transaction and
    /// return it (`None` when it is already gone: the user ends up with one key
    /// either way). [`StoreError::Duplicate`] when the credential ID (any user)
    /// or the name (this user) is taken.
    fn add_webauthn_key(
        &self,
        key: &WebauthnKeyRecord,
        recovery: Option<&[(String, String)]>,
        replaces: Option<&str>,
    ) -> Result<Option<WebauthnKeyRecord>, StoreError>;

    /// A user's keys, oldest first (disabled ones included).
    fn webauthn_keys(&self, user: &str) -> Result<Vec<WebauthnKeyRecord>, StoreError>;

    /// The key holding this credential ID, whoever owns it.
    fn webauthn_key_by_credential(
        &self,
        credential_id: &str,
    ) -> Result<Option<WebauthnKeyRecord>, StoreError>;

    /// After a verified assertion: move the counter to `count` only if it goes
    /// forward (WebAuthn §7.2 step 21; both zero means the key keeps no counter),
    /// store the updated credential, backup state and last use — compare-and-set,
    /// so two racing assertions cannot both pass with the same count.
    fn webauthn_key_used(
        &self,
        id: &str,
        count: u32,
        credential: &str,
        backup_state: bool,
        now: DateTime<Utc>,
    ) -> Result<CounterUpdate, StoreError>;

    /// Disable a key with a reason; false when unknown.
    fn disable_webauthn_key(&self, id: &str, reason: &str) -> Result<bool, StoreError>;

    /// Remove one of `user`'s keys; returns it, or `None` when unknown.
    fn remove_webauthn_key(
        &self,
        user: &str,
        id: &str,
    ) -> Result<Option<WebauthnKeyRecord>, StoreError>;

    /// Keep what a WebAuthn login proved, beside its session.
    fn put_webauthn_evidence(
        &self,
        session_id: &str,
        ev: &WebauthnEvidence,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// The WebAuthn evidence of a session, if it was a WebAuthn login.
    fn webauthn_evidence(&self, session_id: &str) -> Result<Option<WebauthnEvidence>, StoreError>;
}
