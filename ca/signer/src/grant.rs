//! The only constructors of the certificate specs: from policy grants.
//!
//! Kept apart from `cert.rs` so that the authorisation boundary — "a spec
//! exists only because `rampart_policy::evaluate` produced a grant" — is
//! visible in one small file.

use chrono::{DateTime, Utc};
use ssh_key::PublicKey;

use crate::cert::{HostCertSpec, MfaEvidence, UserCertSpec, UserInputs};
use crate::error::SignerError;

impl UserCertSpec {
    /// Build the spec for a user certificate from a policy grant.
    ///
    /// - key ID `user=<name> serial=<n> mfa=<method>`;
    /// - principals from the grant;
    /// - valid from `now - BACKDATE` until `now + grant.ttl()`;
    /// - extensions: the grant's, plus `mfa-method@rampart`, `mfa-time@rampart`
    ///   and `mfa-event@rampart`;
    /// - critical option `source-address` when the grant restricts addresses.
    ///
    /// # Errors
    /// [`SignerError::SubjectKeyRefused`] for a key type we do not certify,
    /// [`SignerError::MfaMismatch`] if the evidence is for another factor, and
    /// [`SignerError::InvalidSpec`] for empty principals, a zero TTL, a time
    /// before 1970 or a grant extension that collides with ours.
    pub fn from_grant(
        grant: &rampart_policy::Grant,
        subject: PublicKey,
        serial: u64,
        mfa: MfaEvidence,
        now: DateTime<Utc>,
    ) -> Result<Self, SignerError> {
        let granted_method = grant.factor().method();
        if mfa.method != granted_method {
            return Err(SignerError::MfaMismatch {
                grant: granted_method.to_owned(),
                evidence: mfa.method,
            });
        }
        let source_address: Vec<String> = grant
            .source_address()
            .iter()
            .map(ToString::to_string)
            .collect();
        Self::build(UserInputs {
            user: grant.user(),
            principals: grant.principals(),
            ttl: grant.ttl(),
            extensions: grant.extensions(),
            source_address: &source_address,
            subject,
            serial,
            mfa,
            now,
        })
    }
}

impl HostCertSpec {
    /// Build the spec for a host certificate: key ID = host name, principals
    /// from the grant, valid from `now - BACKDATE` until `now + grant.ttl()`,
    /// no options or extensions.
    ///
    /// # Errors
    /// As for [`UserCertSpec::from_grant`].
    pub fn from_grant(
        grant: &rampart_policy::HostGrant,
        subject: PublicKey,
        serial: u64,
        now: DateTime<Utc>,
    ) -> Result<Self, SignerError> {
        Self::build(
            grant.name(),
            grant.principals(),
            grant.ttl(),
            subject,
            serial,
            now,
        )
    }
}
