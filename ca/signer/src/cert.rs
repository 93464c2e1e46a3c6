//! User and host certificate specs, built only from policy grants, and signing.
//!
//! Field meanings follow PROTOCOL.certkeys: `valid after`/`valid before` are
//! seconds since the epoch and "a certificate is considered valid if valid
//! after <= current time < valid before"; `critical options` must all be
//! understood by the server or the certificate is refused; `extensions` may
//! be ignored by a server that does not know them.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use ssh_key::certificate::{Builder, CertType};
use ssh_key::{Certificate, HashAlg, PublicKey};

use crate::backend::{CaSigner, SignerAdapter};
use crate::error::SignerError;
use crate::subject::check_subject_key;

/// How far before `now` a certificate's validity starts, so that a host whose
/// clock runs a little behind the CA's still accepts a fresh certificate.
pub const BACKDATE: std::time::Duration = std::time::Duration::from_secs(5 * 60);

/// Extension naming the MFA method that was proven (e.g. `totp`).
pub const EXT_MFA_METHOD: &str = "mfa-method@rampart";
/// Extension carrying the MFA time, RFC 3339 UTC with seconds (`2025-01-02T03:04:05Z`).
pub const EXT_MFA_TIME: &str = "mfa-time@rampart";
/// Extension carrying the audit event id of the MFA ceremony.
pub const EXT_MFA_EVENT: &str = "mfa-event@rampart";
/// Extension marking a bastion's per-session certificate (see
/// [`rampart_policy::EXT_BASTION_SESSION`]).
pub const EXT_BASTION_SESSION: &str = rampart_policy::EXT_BASTION_SESSION;
/// Extension of a per-session certificate: the user's own address rules (the
/// granting roles' `source_address`, comma-separated CIDR), which the bastion
/// and the CA enforced on the user's connection. The certificate's
/// `source-address` is the bastion's, so without this a reader of the
/// certificate (or the host's log) could not see the user was bound at all.
pub const EXT_USER_SOURCE_ADDRESS: &str = "user-source-address@rampart";
/// Extension of a per-session certificate: the user's address as the bastion
/// reported it and the CA checked it against [`EXT_USER_SOURCE_ADDRESS`].
pub const EXT_USER_ADDRESS: &str = "user-address@rampart";
/// The critical option restricting the source addresses (PROTOCOL.certkeys:
/// "Comma-separated list of source addresses from which this certificate is
/// accepted for authentication. Addresses are specified in CIDR format").
pub const OPT_SOURCE_ADDRESS: &str = "source-address";

/// Size of the random nonce in each certificate; OpenSSH's own CA uses 32 bytes.
const NONCE_LEN: usize = 32;

/// Evidence of the MFA ceremony that allowed this certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MfaEvidence {
    /// The factor's method name, e.g. `totp`; must match the grant's factor.
    pub method: String,
    /// When the factor was proven.
    pub time: DateTime<Utc>,
    /// The audit event id of the ceremony.
    pub event_id: String,
}

/// An approved user certificate, ready to sign.
///
/// Its fields are private and the only constructor takes a
/// [`rampart_policy::Grant`], which only policy evaluation can make: code that
/// has not been through a policy decision cannot obtain one.
#[derive(Debug, Clone)]
pub struct UserCertSpec {
    body: CertBody,
}

/// An approved host certificate, ready to sign; made only from a
/// [`rampart_policy::HostGrant`].
#[derive(Debug, Clone)]
pub struct HostCertSpec {
    body: CertBody,
}

/// What the two spec types have in common: every field of the certificate
/// except the nonce, the CA key and the signature.
#[derive(Debug, Clone)]
struct CertBody {
    subject: PublicKey,
    serial: u64,
    key_id: String,
    principals: Vec<String>,
    valid_after: u64,
    valid_before: u64,
    critical_options: BTreeMap<String, String>,
    extensions: BTreeMap<String, String>,
}

impl UserCertSpec {
    /// Add identity-provider evidence (e.g. `mfa-idp@rampart`, `mfa-acr@rampart`)
    /// beside the MFA extensions. Names must end in `@rampart` and must not be
    /// set already, so neither the policy nor a caller can overwrite evidence.
    ///
    /// # Errors
    /// [`SignerError::InvalidSpec`] for a name outside `@rampart`, a name already
    /// present, or an empty value.
    pub fn with_idp_evidence(mut self, evidence: &[(String, String)]) -> Result<Self, SignerError> {
        for (name, value) in evidence {
            if !name.ends_with("@rampart") || value.is_empty() {
                return Err(SignerError::InvalidSpec(format!(
                    "IdP evidence {name:?} must be a non-empty name@rampart extension"
                )));
            }
            if self
                .body
                .extensions
                .insert(name.clone(), value.clone())
                .is_some()
            {
                return Err(SignerError::InvalidSpec(format!(
                    "extension {name} is already set"
                )));
            }
        }
        Ok(self)
    }

    pub(crate) fn build(input: UserInputs<'_>) -> Result<Self, SignerError> {
        check_subject_key(&input.subject)?;
        let (valid_after, valid_before) = validity(input.now, input.ttl)?;
        if input.mfa.method.is_empty() || input.mfa.event_id.is_empty() {
            return Err(SignerError::InvalidSpec(
                "MFA evidence needs a method and an event id".to_owned(),
            ));
        }

        let mut extensions = input.extensions.clone();
        let ours = [
            (EXT_MFA_METHOD, input.mfa.method.clone()),
            (
                EXT_MFA_TIME,
                input.mfa.time.to_rfc3339_opts(SecondsFormat::Secs, true),
            ),
            (EXT_MFA_EVENT, input.mfa.event_id.clone()),
        ];
        for (name, value) in ours {
            // A policy must not be able to forge the MFA record.
            if extensions.insert(name.to_owned(), value).is_some() {
                return Err(SignerError::InvalidSpec(format!(
                    "the grant sets extension {name}, which is reserved for the signer"
                )));
            }
        }

        let mut critical_options = BTreeMap::new();
        if !input.source_address.is_empty() {
            critical_options.insert(
                OPT_SOURCE_ADDRESS.to_owned(),
                input.source_address.join(","),
            );
        }

        let body = CertBody {
            key_id: input.key_id.unwrap_or_else(|| {
                format!(
                    "user={} serial={} mfa={}",
                    input.user, input.serial, input.mfa.method
                )
            }),
            subject: input.subject,
            serial: input.serial,
            principals: checked_principals(input.principals)?,
            valid_after,
            valid_before,
            critical_options,
            extensions,
        };
        Ok(Self { body })
    }

    /// The key ID, `user=<name> serial=<n> mfa=<method>`.
    #[must_use]
    pub fn key_id(&self) -> &str {
        &self.body.key_id
    }
    /// Start of validity, Unix seconds (`now - BACKDATE`).
    #[must_use]
    pub fn valid_after(&self) -> u64 {
        self.body.valid_after
    }
    /// End of validity (exclusive), Unix seconds (`now + ttl`).
    #[must_use]
    pub fn valid_before(&self) -> u64 {
        self.body.valid_before
    }
    /// The principals the certificate is valid for.
    #[must_use]
    pub fn principals(&self) -> &[String] {
        &self.body.principals
    }
    /// The CA-assigned serial.
    #[must_use]
    pub fn serial(&self) -> u64 {
        self.body.serial
    }
    /// The subject public key.
    #[must_use]
    pub fn subject(&self) -> &PublicKey {
        &self.body.subject
    }
    /// All extensions that will be in the certificate.
    #[must_use]
    pub fn extensions(&self) -> &BTreeMap<String, String> {
        &self.body.extensions
    }
    /// All critical options that will be in the certificate.
    #[must_use]
    pub fn critical_options(&self) -> &BTreeMap<String, String> {
        &self.body.critical_options
    }
}

impl HostCertSpec {
    pub(crate) fn build(
        name: &str,
        principals: &[String],
        ttl: std::time::Duration,
        subject: PublicKey,
        serial: u64,
        now: DateTime<Utc>,
    ) -> Result<Self, SignerError> {
        check_subject_key(&subject)?;
        let (valid_after, valid_before) = validity(now, ttl)?;
        let body = CertBody {
            subject,
            serial,
            key_id: name.to_owned(),
            principals: checked_principals(principals)?,
            valid_after,
            valid_before,
            critical_options: BTreeMap::new(),
            extensions: BTreeMap::new(),
        };
        Ok(Self { body })
    }

    /// The key ID (the host name).
    #[must_use]
    pub fn key_id(&self) -> &str {
        &self.body.key_id
    }
    /// Start of validity, Unix seconds.
    #[must_use]
    pub fn valid_after(&self) -> u64 {
        self.body.valid_after
    }
    /// End of validity (exclusive), Unix seconds.
    #[must_use]
    pub fn valid_before(&self) -> u64 {
        self.body.valid_before
    }
    /// The host names the certificate is valid for.
    #[must_use]
    pub fn principals(&self) -> &[String] {
        &self.body.principals
    }
    /// The CA-assigned serial.
    #[must_use]
    pub fn serial(&self) -> u64 {
        self.body.serial
    }
}

pub(crate) struct UserInputs<'a> {
    pub(crate) user: &'a str,
    pub(crate) principals: &'a [String],
    pub(crate) ttl: std::time::Duration,
    pub(crate) extensions: &'a BTreeMap<String, String>,
    pub(crate) source_address: &'a [String],
    pub(crate) subject: PublicKey,
    pub(crate) serial: u64,
    pub(crate) mfa: MfaEvidence,
    pub(crate) now: DateTime<Utc>,
    /// Overrides the default key ID (`user=<name> serial=<n> mfa=<method>`).
    pub(crate) key_id: Option<String>,
}

/// `(now - BACKDATE, now + ttl)` in Unix seconds.
fn validity(now: DateTime<Utc>, ttl: std::time::Duration) -> Result<(u64, u64), SignerError> {
    let now = u64::try_from(now.timestamp())
        .map_err(|_| SignerError::InvalidSpec("time is before 1970".to_owned()))?;
    if ttl.as_secs() == 0 {
        return Err(SignerError::InvalidSpec(
            "certificate TTL must be at least one second".to_owned(),
        ));
    }
    let valid_after = now.saturating_sub(BACKDATE.as_secs());
    let valid_before = now
        .checked_add(ttl.as_secs())
        .ok_or_else(|| SignerError::InvalidSpec("certificate TTL overflows".to_owned()))?;
    Ok((valid_after, valid_before))
}

/// An empty principal list means "valid for every principal" in OpenSSH
/// (PROTOCOL.certkeys: "As a special case, a zero-length 'valid principals'
/// field means the certificate is valid for any principal of the specified
/// type"), so it is refused rather than signed.
fn checked_principals(principals: &[String]) -> Result<Vec<String>, SignerError> {
    if principals.is_empty() {
        return Err(SignerError::InvalidSpec(
            "no principals: an empty list would make the certificate valid for every principal"
                .to_owned(),
        ));
    }
    if let Some(bad) = principals.iter().find(|p| p.is_empty() || p.contains(',')) {
        return Err(SignerError::InvalidSpec(format!(
            "invalid principal {bad:?}"
        )));
    }
    Ok(principals.to_vec())
}

/// Sign a user certificate.
///
/// # Errors
/// Backend failures, RNG failure, or [`SignerError::SelfCheckFailed`] if the
/// result does not verify against `ca.public_key()`.
pub fn sign_user_cert(ca: &dyn CaSigner, spec: &UserCertSpec) -> Result<Certificate, SignerError> {
    sign(ca, &spec.body, CertType::User)
}

/// Sign a host certificate.
///
/// # Errors
/// As for [`sign_user_cert`].
pub fn sign_host_cert(ca: &dyn CaSigner, spec: &HostCertSpec) -> Result<Certificate, SignerError> {
    sign(ca, &spec.body, CertType::Host)
}

fn sign(
    ca: &dyn CaSigner,
    body: &CertBody,
    cert_type: CertType,
) -> Result<Certificate, SignerError> {
    let mut nonce = [0u8; NONCE_LEN];
    ssh_key::getrandom::fill(&mut nonce).map_err(|_| SignerError::Rng)?;

    let mut builder = Builder::new(
        nonce,
        body.subject.key_data().clone(),
        body.valid_after,
        body.valid_before,
    )?;
    builder.serial(body.serial)?;
    builder.key_id(body.key_id.clone())?;
    builder.cert_type(cert_type)?;
    for principal in &body.principals {
        builder.valid_principal(principal.clone())?;
    }
    for (name, value) in &body.critical_options {
        builder.critical_option(name.clone(), value.clone())?;
    }
    for (name, value) in &body.extensions {
        builder.extension(name.clone(), value.clone())?;
    }
    builder.comment(body.key_id.clone())?;

    let adapter = SignerAdapter::new(ca);
    let cert = builder
        .sign(&adapter)
        .map_err(|e| adapter.take_error().unwrap_or(SignerError::Ssh(e)))?;

    // Never hand out a certificate that does not verify: a misbehaving
    // backend (e.g. an HSM slot holding a different key) is caught here.
    let ca_fp = ca.public_key().fingerprint(HashAlg::Sha256);
    cert.validate_at(body.valid_after, [&ca_fp])
        .map_err(|_| SignerError::SelfCheckFailed)?;
    Ok(cert)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::FileCaKey;
    use chrono::TimeZone;
    use ssh_key::{Algorithm, PrivateKey, Signature};

    fn subject() -> PublicKey {
        FileCaKey::generate("subject").unwrap().public_key().clone()
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 3, 4, 5, 6, 7).unwrap()
    }

    fn mfa() -> MfaEvidence {
        MfaEvidence {
            method: "totp".into(),
            time: Utc.with_ymd_and_hms(2025, 3, 4, 5, 6, 0).unwrap(),
            event_id: "01JEVENT".into(),
        }
    }

    fn user_spec(
        exts: &BTreeMap<String, String>,
        src: &[String],
    ) -> Result<UserCertSpec, SignerError> {
        UserCertSpec::build(UserInputs {
            user: "alice",
            principals: &["alice".to_owned(), "deploy".to_owned()],
            ttl: std::time::Duration::from_secs(3600),
            extensions: exts,
            source_address: src,
            subject: subject(),
            serial: 42,
            mfa: mfa(),
            now: now(),
            key_id: None,
        })
    }

    #[test]
    fn user_spec_fields() {
        let mut exts = BTreeMap::new();
        exts.insert("permit-pty".to_owned(), String::new());
        let spec = user_spec(&exts, &["10.0.0.0/8".to_owned(), "192.0.2.1/32".to_owned()]).unwrap();
        let t = u64::try_from(now().timestamp()).unwrap();
        assert_eq!(spec.key_id(), "user=alice serial=42 mfa=totp");
        assert_eq!(spec.valid_after(), t - 300);
        assert_eq!(spec.valid_before(), t + 3600);
        assert_eq!(spec.principals(), ["alice", "deploy"]);
        assert_eq!(
            spec.extensions()["mfa-time@rampart"],
            "2025-03-04T05:06:00Z"
        );
        assert_eq!(spec.extensions()["mfa-method@rampart"], "totp");
        assert_eq!(spec.extensions()["mfa-event@rampart"], "01JEVENT");
        assert_eq!(spec.extensions()["permit-pty"], "");
        assert_eq!(
            spec.critical_options()["source-address"],
            "10.0.0.0/8,192.0.2.1/32"
        );

        let no_src = user_spec(&exts, &[]).unwrap();
        assert!(no_src.critical_options().is_empty());
    }

    #[test]
    fn user_spec_refusals() {
        let mut exts = BTreeMap::new();
        exts.insert(EXT_MFA_METHOD.to_owned(), "webauthn".to_owned());
        let err = user_spec(&exts, &[]).unwrap_err();
        assert!(err.to_string().contains("reserved"), "{err}");

        let base = |principals: &[String], ttl: u64, now: DateTime<Utc>| {
            UserCertSpec::build(UserInputs {
                user: "alice",
                principals,
                ttl: std::time::Duration::from_secs(ttl),
                extensions: &BTreeMap::new(),
                source_address: &[],
                subject: subject(),
                serial: 1,
                mfa: mfa(),
                now,
                key_id: None,
            })
        };
        let p = ["alice".to_owned()];
        assert!(matches!(
            base(&[], 60, now()),
            Err(SignerError::InvalidSpec(_))
        ));
        assert!(matches!(
            base(&["a,b".to_owned()], 60, now()),
            Err(SignerError::InvalidSpec(_))
        ));
        assert!(matches!(
            base(&p, 0, now()),
            Err(SignerError::InvalidSpec(_))
        ));
        let before_epoch = Utc.with_ymd_and_hms(1969, 1, 1, 0, 0, 0).unwrap();
        assert!(matches!(
            base(&p, 60, before_epoch),
            Err(SignerError::InvalidSpec(_))
        ));
        // Backdating near the epoch saturates rather than wrapping.
        let near_epoch = Utc.with_ymd_and_hms(1970, 1, 1, 0, 1, 0).unwrap();
        assert_eq!(base(&p, 60, near_epoch).unwrap().valid_after(), 0);
    }

    #[test]
    fn signed_user_cert_carries_spec_and_verifies() {
        let ca = FileCaKey::generate("ca").unwrap();
        let mut exts = BTreeMap::new();
        exts.insert("permit-pty".to_owned(), String::new());
        let spec = user_spec(&exts, &["10.0.0.0/8".to_owned()]).unwrap();
        let cert = sign_user_cert(&ca, &spec).unwrap();
        assert_eq!(cert.serial(), 42);
        assert_eq!(cert.cert_type(), CertType::User);
        assert_eq!(cert.key_id(), spec.key_id());
        assert_eq!(cert.valid_principals(), spec.principals());
        assert_eq!(cert.nonce().len(), NONCE_LEN);
        let fp = ca.public_key().fingerprint(HashAlg::Sha256);
        cert.validate_at(spec.valid_after(), [&fp]).unwrap();
        cert.validate_at(spec.valid_before() - 1, [&fp]).unwrap();
        assert!(cert.validate_at(spec.valid_before(), [&fp]).is_err());
        assert!(cert.validate_at(spec.valid_after() - 1, [&fp]).is_err());
    }

    /// A backend that signs with a different key than it claims.
    struct Liar {
        claimed: PublicKey,
        real: FileCaKey,
    }
    impl CaSigner for Liar {
        fn public_key(&self) -> &PublicKey {
            &self.claimed
        }
        fn sign_raw(&self, data: &[u8]) -> Result<Signature, SignerError> {
            self.real.sign_raw(data)
        }
    }

    struct Broken(PublicKey);
    impl CaSigner for Broken {
        fn public_key(&self) -> &PublicKey {
            &self.0
        }
        fn sign_raw(&self, _: &[u8]) -> Result<Signature, SignerError> {
            Err(SignerError::Backend("token removed".to_owned()))
        }
    }

    #[test]
    fn backend_errors_surface() {
        let spec = user_spec(&BTreeMap::new(), &[]).unwrap();
        let err = sign_user_cert(&Broken(subject()), &spec).unwrap_err();
        assert!(err.to_string().contains("token removed"), "{err}");

        // Builder::sign self-validates in debug builds; either way the result is an error.
        let liar = Liar {
            claimed: subject(),
            real: FileCaKey::generate("x").unwrap(),
        };
        assert!(sign_user_cert(&liar, &spec).is_err());
    }

    #[test]
    fn host_spec_and_cert() {
        let ca = FileCaKey::generate("host ca").unwrap();
        let mut rng = ssh_key::rand_core::UnwrapErr(ssh_key::getrandom::SysRng);
        let host_key = PrivateKey::random(&mut rng, Algorithm::Ed25519).unwrap();
        let spec = HostCertSpec::build(
            "db-1",
            &["db-1".to_owned(), "db-1.example.internal".to_owned()],
            std::time::Duration::from_secs(86400),
            host_key.public_key().clone(),
            7,
            now(),
        )
        .unwrap();
        assert_eq!(spec.key_id(), "db-1");
        let cert = sign_host_cert(&ca, &spec).unwrap();
        assert_eq!(cert.cert_type(), CertType::Host);
        assert!(cert.extensions().is_empty());
        assert_eq!(cert.valid_principals(), spec.principals());
    }
}
