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
        if mfa.method != granted_method.as_str() {
            return Err(SignerError::MfaMismatch {
                grant: granted_method.as_str().to_owned(),
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
            key_id: None,
        })
    }

    /// Build the spec for a bastion's per-session certificate: the bastion logs in
    /// onward to `access.target()` as `access.login()` with an ephemeral key.
    ///
    /// Needs both decisions: `access` (from `rampart_policy::evaluate_access`:
    /// this user may open this login on this target) and `grant` (from
    /// `rampart_policy::evaluate` for the same user and factor: extensions and
    /// the lifetime ceiling).
    ///
    /// - key ID `user=<name> session=<id> serial=<n> via=<bastion>`;
    /// - the only principal is the login;
    /// - valid from `now - BACKDATE` until `now + min(session.ttl, grant.ttl())`;
    /// - extensions: the grant's plus the user's original MFA evidence,
    ///   [`crate::EXT_BASTION_SESSION`] (`<bastion> <session id>`), which only a
    ///   per-session certificate carries, and the user's side of the outer
    ///   connection: [`crate::EXT_USER_SOURCE_ADDRESS`] (the grant's address
    ///   rules, when it has any) and [`crate::EXT_USER_ADDRESS`] (the address
    ///   the bastion reported, when it reported one);
    /// - `source-address` = `session.source_address` (the bastion's addresses),
    ///   not the grant's, which restricts where the *user* connects from and is
    ///   the bastion's to enforce on the outer connection.
    ///
    /// # Errors
    /// As [`UserCertSpec::from_grant`], and [`SignerError::InvalidSpec`] when the
    /// two decisions are for different users or a session field is unusable.
    pub fn for_bastion_session(
        grant: &rampart_policy::Grant,
        access: &rampart_policy::AccessGrant,
        session: &BastionSession<'_>,
        subject: PublicKey,
        serial: u64,
        mfa: MfaEvidence,
        now: DateTime<Utc>,
    ) -> Result<Self, SignerError> {
        if grant.user() != access.user() {
            return Err(SignerError::InvalidSpec(
                "the certificate grant and the access grant are for different users".to_owned(),
            ));
        }
        let granted_method = grant.factor().method();
        if mfa.method != granted_method.as_str() {
            return Err(SignerError::MfaMismatch {
                grant: granted_method.as_str().to_owned(),
                evidence: mfa.method,
            });
        }
        // The key ID is free text for sshd's log line; keep it one clean token each.
        let clean = |s: &str| {
            !s.is_empty()
                && s.len() <= 128
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        };
        if !clean(session.id) || !clean(session.bastion) {
            return Err(SignerError::InvalidSpec(
                "session id and bastion name must be 1-128 of [A-Za-z0-9._-]".to_owned(),
            ));
        }
        let principals = [access.login().to_owned()];
        let mut extensions = grant.extensions().clone();
        let rules: Vec<String> = grant
            .source_address()
            .iter()
            .map(ToString::to_string)
            .collect();
        let ours = [
            (
                crate::cert::EXT_BASTION_SESSION,
                Some(format!("{} {}", session.bastion, session.id)),
            ),
            (
                crate::cert::EXT_USER_SOURCE_ADDRESS,
                (!rules.is_empty()).then(|| rules.join(",")),
            ),
            (
                crate::cert::EXT_USER_ADDRESS,
                session.user_address.map(|a| a.to_canonical().to_string()),
            ),
        ];
        for (name, value) in ours {
            if extensions.contains_key(name) {
                return Err(SignerError::InvalidSpec(format!(
                    "the grant sets extension {name}, which is reserved for the signer"
                )));
            }
            if let Some(value) = value {
                extensions.insert(name.to_owned(), value);
            }
        }
        Self::build(UserInputs {
            user: grant.user(),
            principals: &principals,
            ttl: session.ttl.min(grant.ttl()),
            extensions: &extensions,
            source_address: session.source_address,
            subject,
            serial,
            key_id: Some(format!(
                "user={} session={} serial={serial} via={}",
                grant.user(),
                session.id,
                session.bastion
            )),
            mfa,
            now,
        })
    }
}

/// What the bastion's session contributes to a per-session certificate.
#[derive(Debug, Clone, Copy)]
pub struct BastionSession<'a> {
    /// The bastion's session ID.
    pub id: &'a str,
    /// The bastion's name.
    pub bastion: &'a str,
    /// Lifetime wanted (clamped to the grant's).
    pub ttl: std::time::Duration,
    /// Addresses (CIDR) the certificate may be used from: the bastion's.
    pub source_address: &'a [String],
    /// The user's address on the outer connection, as the bastion reported
    /// it (`None` when it did not).
    pub user_address: Option<std::net::IpAddr>,
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
