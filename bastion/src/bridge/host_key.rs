//! Whether a target is who it claims to be: a host certificate from the host
//! CA naming the target, or the key pinned in config; a revoked key is
//! refused whatever vouches for it. Never trust on first use.

use std::collections::HashSet;
use std::sync::Arc;

use russh::keys::ssh_key::{certificate::CertType, Certificate, HashAlg, PublicKey};
use russh::keys::PublicKeyOrCertificate;

use crate::clock::Clock;
use crate::config::{HostKeyCheck, Target};

/// What a target's host key is judged by.
#[derive(Debug, Clone)]
pub struct HostTrust {
    /// The Rampart host CA keys (several while the CA rotates its key).
    pub host_ca: Arc<[PublicKey]>,
    /// Revoked key fingerprints as last fetched from the CA; a revoked host
    /// key is refused whatever certificate it carries.
    pub revoked_keys: Arc<HashSet<String>>,
    /// What "now" is for the host certificate's validity.
    pub clock: Arc<dyn Clock>,
}

/// Why a target's host key is refused. The text is what the user is told.
#[derive(Debug, thiserror::Error)]
pub enum HostKeyRefused {
    /// The key (whatever vouches for it) is on the revocation list.
    #[error("target {target}'s host key {fingerprint} is revoked")]
    Revoked {
        /// The target's name.
        target: String,
        /// The key's `SHA256:…` fingerprint.
        fingerprint: String,
    },
    /// A plain key other than the pinned one.
    #[error("target {target} presented host key {fingerprint}, not the pinned key")]
    NotPinned {
        /// The target's name.
        target: String,
        /// The presented key's `SHA256:…` fingerprint.
        fingerprint: String,
    },
    /// A certificate for a key other than the pinned one.
    #[error("target {0} presented a certificate for another key")]
    CertificateForAnotherKey(String),
    /// A plain key where the config asks for a host certificate.
    #[error(
        "target {0} presented a plain host key, but it must present a host certificate from the Rampart host CA"
    )]
    PlainKey(String),
    /// A user certificate offered as a host key.
    #[error("target {0} presented a user certificate as host key")]
    UserCertificate(String),
    /// The host certificate does not verify against the host CA (or is not
    /// valid now).
    #[error("target {target}'s host certificate is not valid from the Rampart host CA")]
    InvalidCertificate {
        /// The target's name.
        target: String,
        /// What the certificate check found.
        #[source]
        source: russh::keys::ssh_key::Error,
    },
    /// The host certificate names neither the target nor its address.
    #[error("target {target}'s host certificate names {principals:?}, not {target} or {address}")]
    WrongPrincipals {
        /// The target's name.
        target: String,
        /// The target's address from the config.
        address: String,
        /// The certificate's principals.
        principals: Vec<String>,
    },
}

/// Check a target's host key or certificate against the config and the
/// revoked keys.
pub fn check_host_key(
    target: &Target,
    trust: &HostTrust,
    presented: &PublicKeyOrCertificate,
    now: u64,
) -> Result<(), HostKeyRefused> {
    let host_ca = &trust.host_ca;
    let key_fp = match presented {
        PublicKeyOrCertificate::PublicKey { key, .. } => key.fingerprint(HashAlg::Sha256),
        PublicKeyOrCertificate::Certificate(cert) => {
            PublicKey::from(cert.public_key().clone()).fingerprint(HashAlg::Sha256)
        }
    };
    if trust.revoked_keys.contains(&key_fp.to_string()) {
        return Err(HostKeyRefused::Revoked {
            target: target.name.clone(),
            fingerprint: key_fp.to_string(),
        });
    }
    match (&target.host_key, presented) {
        (HostKeyCheck::Pinned(pin), PublicKeyOrCertificate::PublicKey { key, .. }) => {
            if key.key_data() == pin.key_data() {
                Ok(())
            } else {
                Err(HostKeyRefused::NotPinned {
                    target: target.name.clone(),
                    fingerprint: key.fingerprint(HashAlg::Sha256).to_string(),
                })
            }
        }
        (HostKeyCheck::Pinned(pin), PublicKeyOrCertificate::Certificate(cert)) => {
            if cert.public_key() == pin.key_data() {
                Ok(())
            } else {
                Err(HostKeyRefused::CertificateForAnotherKey(
                    target.name.clone(),
                ))
            }
        }
        (HostKeyCheck::HostCa, PublicKeyOrCertificate::Certificate(cert)) => {
            check_host_cert(target, host_ca, cert, now)
        }
        (HostKeyCheck::HostCa, PublicKeyOrCertificate::PublicKey { .. }) => {
            Err(HostKeyRefused::PlainKey(target.name.clone()))
        }
    }
}

fn check_host_cert(
    target: &Target,
    host_ca: &[PublicKey],
    cert: &Certificate,
    now: u64,
) -> Result<(), HostKeyRefused> {
    if cert.cert_type() != CertType::Host {
        return Err(HostKeyRefused::UserCertificate(target.name.clone()));
    }
    let fps: Vec<_> = host_ca
        .iter()
        .map(|k| k.fingerprint(HashAlg::Sha256))
        .collect();
    cert.validate_at(now, &fps)
        .map_err(|source| HostKeyRefused::InvalidCertificate {
            target: target.name.clone(),
            source,
        })?;
    let names = cert.valid_principals();
    if names
        .iter()
        .any(|p| p == &target.name || p == &target.address)
    {
        Ok(())
    } else {
        Err(HostKeyRefused::WrongPrincipals {
            target: target.name.clone(),
            address: target.address.clone(),
            principals: names.to_vec(),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use russh::keys::ssh_key::certificate::Builder;
    use russh::keys::ssh_key::PrivateKey;

    fn host_cert(ca: &PrivateKey, host: &PrivateKey, principal: &str, now: u64) -> Certificate {
        let mut b = Builder::new(
            [9u8; 32].to_vec(),
            host.public_key().key_data().clone(),
            now - 10,
            now + 600,
        )
        .unwrap();
        b.serial(42).unwrap();
        b.key_id("host").unwrap();
        b.cert_type(CertType::Host).unwrap();
        b.valid_principal(principal).unwrap();
        b.sign(ca).unwrap()
    }

    #[test]
    fn a_revoked_host_key_is_refused_whatever_certificate_or_pin_vouches_for_it() {
        let now = crate::clock::SystemClock.unix_secs();
        let ca = crate::join::generate_ed25519().unwrap();
        let host = crate::join::generate_ed25519().unwrap();
        let mut target = Target {
            name: "db-1".into(),
            address: "10.0.0.5".into(),
            port: 22,
            labels: Default::default(),
            host_key: HostKeyCheck::HostCa,
        };
        let cert = PublicKeyOrCertificate::Certificate(host_cert(&ca, &host, "db-1", now));
        let none = HostTrust {
            host_ca: vec![ca.public_key().clone()].into(),
            revoked_keys: Arc::default(),
            clock: Arc::new(crate::clock::SystemClock),
        };
        assert!(check_host_key(&target, &none, &cert, now).is_ok());
        let fp = host.public_key().fingerprint(HashAlg::Sha256).to_string();
        let revoked = HostTrust {
            revoked_keys: Arc::new([fp.clone()].into()),
            ..none.clone()
        };
        let why = check_host_key(&target, &revoked, &cert, now)
            .unwrap_err()
            .to_string();
        assert!(why.contains(&fp) && why.contains("revoked"), "{why}");
        // A pinned plain key is refused too once revoked.
        target.host_key = HostKeyCheck::Pinned(host.public_key().clone());
        let plain = PublicKeyOrCertificate::PublicKey {
            key: host.public_key().clone(),
            hash_alg: None,
        };
        assert!(check_host_key(&target, &none, &plain, now).is_ok());
        assert!(check_host_key(&target, &revoked, &plain, now).is_err());
    }
}
