//! What the CA issued and took back: serial reservations, issued certificates,
//! revoked serials and keys (the KRL's input), and the host keys a revoked key
//! fingerprint maps back to.

use chrono::{DateTime, Utc};

use super::StoreError;

/// What kind of certificate a record describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertKind {
    /// User certificate.
    User,
    /// Host certificate.
    Host,
}

impl CertKind {
    /// The name both backends store (`user`, `host`).
    pub fn as_str(self) -> &'static str {
        match self {
            CertKind::User => "user",
            CertKind::Host => "host",
        }
    }
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

/// Certificates, serials, revocations and host keys.
pub trait CertStore {
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

    /// The latest end of validity (unix seconds) among certificates of `kind`
    /// valid from `valid_after_upto` or earlier, with its serial; `None` when
    /// there is none. A CA key rotation asks it when the key that was replaced
    /// at that moment signed its last still-valid certificate.
    fn last_expiry(
        &self,
        kind: CertKind,
        valid_after_upto: u64,
    ) -> Result<Option<(u64, u64)>, StoreError>;

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

    /// The current revocation version alone (one small read): a CA compares
    /// it with the KRL it serves, so a revocation another CA made on the same
    /// database is in this CA's KRL at its next request.
    fn krl_version(&self) -> Result<u64, StoreError>;

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
}
