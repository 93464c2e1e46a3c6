//! The CA's state behind a trait: users, invites, factors, sessions, certificates,
//! revocations and serial numbers. SQLite ([`sqlite::SqliteStore`]) is the embedded
//! default; PostgreSQL arrives with the HA work behind the same trait.
//!
//! Secrets never reach the store in the clear: invite codes and session tokens are
//! stored as SHA-256 hashes (they are 160+ random bits, so a fast hash is enough),
//! recovery codes as argon2 hashes, TOTP seeds encrypted by the caller.
//!
//! Every method that changes state is atomic. Methods that must not race (TOTP
//! step replay, invite redemption, recovery-code use) are compare-and-set.

pub mod sqlite;

use chrono::{DateTime, Utc};

/// Errors of a store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database failed.
    #[error("database: {0}")]
    Db(String),
    /// A row that must be unique already exists.
    #[error("{0} already exists")]
    Duplicate(String),
    /// A stored value could not be decoded.
    #[error("corrupt stored value: {0}")]
    Corrupt(String),
}

/// A user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    /// Unique name.
    pub name: String,
    /// Groups.
    pub groups: Vec<String>,
    /// Admin flag.
    pub admin: bool,
    /// Disabled flag.
    pub disabled: bool,
    /// Created.
    pub created_at: DateTime<Utc>,
}

/// Outcome of redeeming an invite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InviteRedemption {
    /// Valid; now used. Carries the user it enrols.
    Redeemed(String),
    /// No such invite.
    Unknown,
    /// Already used.
    AlreadyUsed,
    /// Past its expiry.
    Expired,
}

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

/// An enrolment that was started and not finished yet.
#[derive(Clone, PartialEq, Eq)]
pub struct PendingEnrollment {
    /// The user.
    pub user: String,
    /// Encrypted new seed.
    pub sealed_seed: Vec<u8>,
    /// Expiry.
    pub expires_at: DateTime<Utc>,
}

impl std::fmt::Debug for PendingEnrollment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingEnrollment")
            .field("user", &self.user)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// A login session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// Short public ID (for audit; not the token).
    pub id: String,
    /// The user.
    pub user: String,
    /// Factor method (`totp`, `recovery`).
    pub mfa_method: String,
    /// When the factor was verified.
    pub mfa_time: DateTime<Utc>,
    /// Audit event ID of that verification.
    pub mfa_event: String,
    /// Expiry.
    pub expires_at: DateTime<Utc>,
}

/// Outcome of [`Store::bind_idp_subject`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdpBinding {
    /// First login of this subject: now bound to the user.
    Bound,
    /// Already bound to this user.
    Matches,
    /// This subject is bound to another user (the user-name claim changed).
    SubjectBoundTo(String),
    /// The user is bound to another subject at this provider.
    UserBoundElsewhere,
}

/// What an identity provider said about an OIDC login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdpEvidence {
    /// Provider name from the config.
    pub provider: String,
    /// `acr`, if the token had one.
    pub acr: Option<String>,
    /// `amr` values.
    pub amr: Vec<String>,
    /// `auth_time`.
    pub auth_time: DateTime<Utc>,
}

/// What kind of certificate a record describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertKind {
    /// User certificate.
    User,
    /// Host certificate.
    Host,
}

/// An issued certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertRecord {
    /// Serial.
    pub serial: u64,
    /// User or host.
    pub kind: CertKind,
    /// User name, or host name for host certificates.
    pub subject: String,
    /// `SHA256:…` fingerprint of the certified key.
    pub key_fingerprint: String,
    /// Key ID.
    pub key_id: String,
    /// Principals.
    pub principals: Vec<String>,
    /// Validity start (unix seconds).
    pub valid_after: u64,
    /// Validity end (unix seconds).
    pub valid_before: u64,
    /// Issue time.
    pub issued_at: DateTime<Utc>,
}

/// Everything the KRL is built from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Revocations {
    /// Monotonic version, bumped by every revocation.
    pub version: u64,
    /// Revoked certificate serials (user CA; a host certificate is revoked
    /// through its key).
    pub serials: Vec<u64>,
    /// Revoked key fingerprints (`SHA256:…`).
    pub key_fingerprints: Vec<String>,
}

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
}

/// Outcome of [`Store::webauthn_key_used`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CounterUpdate {
    /// The counter moved forward (or both are zero: a counter-less key).
    Advanced,
    /// The presented counter is not above the stored one (the stored one carried).
    Regressed(u32),
    /// No such key, or it is disabled.
    Gone,
}

/// The CA's state.
pub trait Store: Send + Sync + std::fmt::Debug {
    /// Create a user. [`StoreError::Duplicate`] when the name is taken.
    fn create_user(&self, user: &UserRecord) -> Result<(), StoreError>;
    /// Look a user up.
    fn user(&self, name: &str) -> Result<Option<UserRecord>, StoreError>;
    /// All users, by name.
    fn users(&self) -> Result<Vec<UserRecord>, StoreError>;
    /// Set the disabled flag; false when no such user.
    fn set_disabled(&self, name: &str, disabled: bool) -> Result<bool, StoreError>;
    /// Replace groups; false when no such user.
    fn set_groups(&self, name: &str, groups: &[String]) -> Result<bool, StoreError>;

    /// Store an invite by the hash of its code.
    fn create_invite(
        &self,
        code_hash: &[u8; 32],
        user: &str,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// Atomically redeem an invite.
    fn redeem_invite(
        &self,
        code_hash: &[u8; 32],
        now: DateTime<Utc>,
    ) -> Result<InviteRedemption, StoreError>;

    /// Remember a started enrolment under the hash of its token.
    fn put_enrollment(
        &self,
        token_hash: &[u8; 32],
        pending: &PendingEnrollment,
    ) -> Result<(), StoreError>;
    /// Look a started enrolment up.
    fn enrollment(&self, token_hash: &[u8; 32]) -> Result<Option<PendingEnrollment>, StoreError>;
    /// Finish an enrolment atomically: drop the pending row, install the TOTP seed
    /// with `last_step` (the step just used to confirm it), and replace the user's
    /// recovery codes. False when the pending row was already taken.
    fn complete_enrollment(
        &self,
        token_hash: &[u8; 32],
        user: &str,
        totp: &TotpRecord,
        recovery: &[(String, String)],
    ) -> Result<bool, StoreError>;

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

    /// The lock that holds for `user` trying from `network` now, if any: the
    /// pair's own lock or a user-wide one. Read-only (for request starts).
    fn attempt_lock(
        &self,
        user: &str,
        network: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<AttemptLock>, StoreError>;
    /// Check the locks and count this attempt as a failure in one atomic step,
    /// so parallel guesses cannot all pass the check before any is counted. The
    /// count is provisional: [`Store::attempt_succeeded`] takes it back.
    fn begin_attempt(
        &self,
        user: &str,
        network: &str,
        now: DateTime<Utc>,
        limits: &AttemptLimits,
    ) -> Result<Result<(), AttemptLock>, StoreError>;
    /// A begun attempt failed: lock the pair (with back-off) or the user when a
    /// threshold is reached.
    fn attempt_failed(
        &self,
        user: &str,
        network: &str,
        now: DateTime<Utc>,
        limits: &AttemptLimits,
    ) -> Result<FailureTally, StoreError>;
    /// A begun attempt succeeded: the pair starts clean and the user-wide
    /// count gets the provisional failure back.
    fn attempt_succeeded(&self, user: &str, network: &str) -> Result<(), StoreError>;

    /// Store a session under the hash of its token.
    fn create_session(&self, token_hash: &[u8; 32], s: &SessionRecord) -> Result<(), StoreError>;
    /// Look a session up.
    fn session(&self, token_hash: &[u8; 32]) -> Result<Option<SessionRecord>, StoreError>;
    /// End a session.
    fn delete_session(&self, token_hash: &[u8; 32]) -> Result<(), StoreError>;
    /// Keep what an identity provider said about a session's login (OIDC), for
    /// the certificate's evidence extensions.
    fn put_idp_evidence(
        &self,
        session_id: &str,
        ev: &IdpEvidence,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// Tie an identity provider's subject (`iss` + `sub`, the only identifier
    /// OIDC Core §5.7 promises is stable) to a Rampart user on first login, and
    /// check it on every later one.
    fn bind_idp_subject(
        &self,
        provider: &str,
        subject: &str,
        user: &str,
        now: DateTime<Utc>,
    ) -> Result<IdpBinding, StoreError>;
    /// The user an IdP account is linked to, if any.
    fn idp_subject_user(&self, provider: &str, subject: &str)
        -> Result<Option<String>, StoreError>;
    /// The IdP account (subject) `user` is linked to at `provider`, if any.
    fn idp_link(&self, provider: &str, user: &str) -> Result<Option<String>, StoreError>;
    /// Remove `user`'s link at `provider`; the subject that was linked.
    fn unlink_idp_subject(&self, provider: &str, user: &str) -> Result<Option<String>, StoreError>;
    /// The identity provider's evidence for a session, if it was an OIDC login.
    fn idp_evidence(&self, session_id: &str) -> Result<Option<IdpEvidence>, StoreError>;
    /// End all of a user's sessions.
    fn delete_user_sessions(&self, user: &str) -> Result<u64, StoreError>;

    /// Durably reserve the next `count` serials and return the first. Serials are
    /// never handed out twice, even after a crash (reserved-but-unused ones are
    /// skipped).
    fn reserve_serials(&self, count: u64) -> Result<u64, StoreError>;
    /// Record an issued certificate.
    fn insert_cert(&self, cert: &CertRecord) -> Result<(), StoreError>;
    /// Serials of user certificates issued to `user`.
    fn serials_for_user(&self, user: &str) -> Result<Vec<u64>, StoreError>;
    /// Serials of user certificates for a key fingerprint.
    fn serials_for_key(&self, fingerprint: &str) -> Result<Vec<u64>, StoreError>;
    /// Does a user certificate with this serial exist?
    fn cert(&self, serial: u64) -> Result<Option<CertRecord>, StoreError>;

    /// Add revocations; returns the new version (unchanged if nothing was new).
    fn revoke(
        &self,
        serials: &[u64],
        key_fingerprints: &[String],
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError>;
    /// Everything revoked.
    fn revocations(&self) -> Result<Revocations, StoreError>;
    /// Keep a host certificate's public key (OpenSSH one-line) by its
    /// fingerprint, so that revoking the key can publish it for `@revoked`.
    fn record_host_key(&self, fingerprint: &str, public_key: &str) -> Result<(), StoreError>;
    /// Public keys of certified hosts whose key is revoked.
    fn revoked_host_keys(&self) -> Result<Vec<String>, StoreError>;
    /// Is this key fingerprint revoked?
    fn key_revoked(&self, fingerprint: &str) -> Result<bool, StoreError>;
    /// Is this certificate serial revoked? One indexed lookup, for the
    /// per-session checks that must not read the whole list.
    fn serial_revoked(&self, serial: u64) -> Result<bool, StoreError>;

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

    /// A small key/value table for CA metadata (salt, schema facts).
    fn meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Set a metadata value.
    fn set_meta(&self, key: &str, value: &[u8]) -> Result<(), StoreError>;
}

/// How failed factor checks turn into locks. A lock is per user *and* source
/// network, so a stranger's guesses lock only the stranger; a user-wide lock
/// needs many more failures (from many networks) within a window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptLimits {
    /// Failures from one network before the pair is locked.
    pub max_failures: u32,
    /// The first lock of a pair; each further lock doubles it.
    pub lockout: std::time::Duration,
    /// The longest a pair lock gets; also how long a pair's count is kept.
    pub max_lockout: std::time::Duration,
    /// Failures from all networks within `user_window` before the user is
    /// locked everywhere.
    pub user_max_failures: u32,
    /// Window of the user-wide count.
    pub user_window: std::time::Duration,
    /// How long a user-wide lock lasts.
    pub user_lockout: std::time::Duration,
}

/// What a lock covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockScope {
    /// The user, from one source network.
    Source,
    /// The user, from everywhere.
    User,
}

impl LockScope {
    /// Name used in audit details, errors and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            LockScope::Source => "source",
            LockScope::User => "user",
        }
    }
}

/// A lock in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttemptLock {
    /// What it covers.
    pub scope: LockScope,
    /// When it ends.
    pub until: DateTime<Utc>,
}

/// The counts after a failed attempt, and the lock it set, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureTally {
    /// Failures of this user from this network (before any lock reset them).
    pub source_failures: u32,
    /// Failures of this user from all networks in the user window.
    pub user_failures: u32,
    /// The lock this failure set.
    pub locked: Option<AttemptLock>,
}
