//! Outer certificate checks and the revocation state they consult.
//!
//! **Owns:** the decision whether a certificate presented to the bastion (outer
//! connection, and again on the inner session) identifies a Rampart user:
//! a user certificate, signed by the user CA from join, valid now
//! (PROTOCOL.certkeys: `valid after <= now < valid before`), key ID naming
//! `user=<name>`, with neither its serial nor its key revoked and the user not
//! disabled, and presented from an address its `source-address` critical
//! option allows. A critical option the bastion does not know is refused, as
//! sshd refuses one (PROTOCOL.certkeys: "If an implementation does not
//! recognise a critical option, then the validating party should refuse to
//! accept the certificate"). russh has already proved the client holds the certificate's key;
//! everything else is checked here. The CA checks the certificate again when
//! it issues the per-session certificate.

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::Arc;

use rampart_api::source::{source_address_allows, SOURCE_ADDRESS};

use russh::keys::ssh_key::{certificate::CertType, Certificate, HashAlg, PublicKey};

/// The revocation lists as last fetched from the CA.
#[derive(Debug, Default, Clone)]
pub struct Revocations {
    /// KRL version of the lists; `None` until the first successful fetch, when
    /// every certificate is refused (fail closed).
    pub version: Option<u64>,
    /// Revoked certificate serials.
    pub serials: HashSet<u64>,
    /// Revoked key fingerprints (`SHA256:…`).
    /// Shared, so a target dial can take the list for its host-key check
    /// without copying it.
    pub key_fingerprints: Arc<HashSet<String>>,
    /// Disabled users.
    pub disabled_users: HashSet<String>,
}

impl Revocations {
    /// Apply a fetch. Disabled users come with every answer; the lists only
    /// when `changed`.
    pub fn apply(&mut self, r: &rampart_api::BastionRevocations) {
        if r.changed || self.version.is_none() {
            self.serials = r.serials.iter().copied().collect();
            self.key_fingerprints = Arc::new(r.key_fingerprints.iter().cloned().collect());
        }
        self.disabled_users = r.disabled_users.iter().cloned().collect();
        self.version = Some(r.version);
    }

    /// Why a user with this serial and key may no longer connect, if so.
    pub fn revoked(&self, user: &str, serial: u64, key_fp: &str) -> Option<Revoked> {
        if self.version.is_none() {
            return Some(Revoked::NotLoaded);
        }
        if self.serials.contains(&serial) {
            return Some(Revoked::Serial(serial));
        }
        if self.key_fingerprints.contains(key_fp) {
            return Some(Revoked::Key(key_fp.to_owned()));
        }
        if self.disabled_users.contains(user) {
            return Some(Revoked::UserDisabled(user.to_owned()));
        }
        None
    }
}

/// Why the revocation state refuses a user (and ends their live sessions).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Revoked {
    /// No revocation list yet: every certificate is refused (fail closed).
    #[error("the bastion has not loaded the revocation list from the CA yet")]
    NotLoaded,
    /// The certificate's serial is revoked.
    #[error("certificate serial {0} is revoked")]
    Serial(u64),
    /// The certified key (`SHA256:…`) is revoked.
    #[error("key {0} is revoked")]
    Key(String),
    /// The user is disabled.
    #[error("user {0} is disabled")]
    UserDisabled(String),
}

/// Why a user certificate is refused. The text is what the user's ssh client
/// and the audit event's reason say.
#[derive(Debug, thiserror::Error)]
pub enum CertRefused {
    /// A host certificate offered for user authentication.
    #[error("a host certificate was presented as a user certificate")]
    HostCertificate,
    /// Signed by none of the user CA keys trusted now.
    #[error("certificate not issued by the Rampart user CA")]
    ForeignCa,
    /// Outside its validity interval.
    #[error("certificate expired or not yet valid; run `rampart login`")]
    NotValidNow,
    /// The CA's signature does not verify.
    #[error("certificate signature does not verify")]
    BadSignature,
    /// The key ID has no `user=`.
    #[error("certificate key ID names no Rampart user")]
    NoUser,
    /// A critical option other than `source-address` (its name, shortened).
    #[error("certificate carries critical option {0:?}, which the bastion cannot honour")]
    UnknownCriticalOption(String),
    /// `source-address` does not list the client.
    #[error("certificate is not valid from {client} (source-address {allowed})")]
    SourceAddress {
        /// Where the connection comes from.
        client: IpAddr,
        /// The option's value, shortened.
        allowed: String,
    },
    /// `source-address` does not parse (the parser's own words).
    #[error("{0}")]
    MalformedSourceAddress(String),
    /// Revoked, disabled, or no revocation list yet.
    #[error(transparent)]
    Revoked(#[from] Revoked),
    /// The revocation state's lock was poisoned.
    #[error("revocation state unavailable")]
    RevocationsUnavailable,
    /// The certificate could not be re-encoded for the CA.
    #[error("certificate cannot be encoded")]
    Encode(#[source] russh::keys::ssh_key::Error),
}

/// A user the outer certificate identifies.
#[derive(Debug, Clone)]
pub struct OuterUser {
    /// Rampart user name (key ID `user=`).
    pub name: String,
    /// Certificate serial.
    pub serial: u64,
    /// SHA-256 fingerprint of the certified key.
    pub key_fingerprint: String,
    /// The certified public key.
    pub key: PublicKey,
    /// The certificate, OpenSSH one-line format (sent to the CA).
    pub cert_line: String,
    /// Seconds since the epoch at which the certificate expires.
    pub valid_before: u64,
}

/// The `user=` field of a key ID.
pub fn key_id_user(key_id: &str) -> Option<&str> {
    key_id
        .split(' ')
        .find_map(|part| part.strip_prefix("user="))
        .filter(|u| !u.is_empty() && u.len() <= 256)
}

/// The certificate's critical options, checked for a connection from `client`.
pub fn check_critical_options(cert: &Certificate, client: IpAddr) -> Result<(), CertRefused> {
    for (name, value) in cert.critical_options().iter() {
        if name.as_str() != SOURCE_ADDRESS {
            return Err(CertRefused::UnknownCriticalOption(
                name.chars().take(64).collect(),
            ));
        }
        if !source_address_allows(value, client).map_err(CertRefused::MalformedSourceAddress)? {
            return Err(CertRefused::SourceAddress {
                client,
                allowed: value.chars().take(256).collect(),
            });
        }
    }
    Ok(())
}

/// Check `cert` at `now` (seconds since the epoch), presented from `client`.
/// `Err` is the refusal reason.
pub fn check_user_cert(
    cert: &Certificate,
    user_ca: &[PublicKey],
    now: u64,
    rev: &Revocations,
    client: IpAddr,
) -> Result<OuterUser, CertRefused> {
    if cert.cert_type() != CertType::User {
        return Err(CertRefused::HostCertificate);
    }
    let signer = cert.signature_key().fingerprint(HashAlg::Sha256);
    let Some(ca_fp) = user_ca
        .iter()
        .map(|k| k.fingerprint(HashAlg::Sha256))
        .find(|fp| *fp == signer)
    else {
        return Err(CertRefused::ForeignCa);
    };
    if !(cert.valid_after() <= now && now < cert.valid_before()) {
        return Err(CertRefused::NotValidNow);
    }
    if cert.validate_at(now, [&ca_fp]).is_err() {
        return Err(CertRefused::BadSignature);
    }
    let Some(name) = key_id_user(cert.key_id()) else {
        return Err(CertRefused::NoUser);
    };
    check_critical_options(cert, client)?;
    let key = PublicKey::from(cert.public_key().clone());
    let key_fingerprint = key.fingerprint(HashAlg::Sha256).to_string();
    if let Some(why) = rev.revoked(name, cert.serial(), &key_fingerprint) {
        return Err(why.into());
    }
    let cert_line = cert.to_openssh().map_err(CertRefused::Encode)?;
    Ok(OuterUser {
        name: name.to_owned(),
        serial: cert.serial(),
        key_fingerprint,
        key,
        cert_line,
        valid_before: cert.valid_before(),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use russh::keys::ssh_key::{certificate::Builder, PrivateKey};

    const CLIENT: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 1, 2, 3));

    fn with_options(ca: &PrivateKey, key: &PrivateKey, options: &[(&str, &str)]) -> Certificate {
        let mut b = Builder::new(
            [7u8; 32].to_vec(),
            key.public_key().key_data().clone(),
            1_000,
            3_000_000_000,
        )
        .unwrap();
        b.serial(9).unwrap();
        b.key_id("user=alice").unwrap();
        b.cert_type(CertType::User).unwrap();
        b.valid_principal("root").unwrap();
        for (name, value) in options {
            b.critical_option(*name, *value).unwrap();
        }
        b.sign(ca).unwrap()
    }

    #[test]
    fn source_address_is_enforced_and_unknown_critical_options_refused() {
        let ca = crate::join::generate_ed25519().unwrap();
        let key = crate::join::generate_ed25519().unwrap();
        let rev = Revocations {
            version: Some(1),
            ..Revocations::default()
        };
        let now = 1_800_000_000;
        let check = |cert: &Certificate, client: &str| {
            check_user_cert(
                cert,
                std::slice::from_ref(ca.public_key()),
                now,
                &rev,
                client.parse().unwrap(),
            )
        };
        let cert = with_options(&ca, &key, &[("source-address", "10.0.0.0/8,192.0.2.7")]);
        assert!(check(&cert, "10.200.0.1").is_ok());
        assert!(check(&cert, "192.0.2.7").is_ok());
        assert!(check(&cert, "::ffff:10.9.9.9").is_ok(), "IPv4-mapped");
        let outside = check(&cert, "192.0.2.8").unwrap_err().to_string();
        assert!(outside.contains("not valid from 192.0.2.8"), "{outside}");
        assert!(check(&cert, "127.0.0.1").is_err());
        let v6 = with_options(&ca, &key, &[("source-address", "2001:db8::/32")]);
        assert!(check(&v6, "2001:db8:1::5").is_ok());
        assert!(check(&v6, "2001:db9::5").is_err());
        let garbage = with_options(&ca, &key, &[("source-address", "10.0.0.0/8,nonsense")]);
        assert!(check(&garbage, "10.0.0.1")
            .unwrap_err()
            .to_string()
            .contains("nonsense"));
        let forced = with_options(&ca, &key, &[("force-command", "/bin/true")]);
        assert!(check(&forced, "10.0.0.1")
            .unwrap_err()
            .to_string()
            .contains("force-command"));
        let plain = with_options(&ca, &key, &[]);
        assert!(
            check(&plain, "203.0.113.9").is_ok(),
            "no option: any source"
        );
    }

    fn sign(
        ca: &PrivateKey,
        key: &PrivateKey,
        key_id: &str,
        serial: u64,
        after: u64,
        before: u64,
        kind: CertType,
    ) -> Certificate {
        let mut b = Builder::new(
            [7u8; 32].to_vec(),
            key.public_key().key_data().clone(),
            after,
            before,
        )
        .unwrap();
        b.serial(serial).unwrap();
        b.key_id(key_id).unwrap();
        b.cert_type(kind).unwrap();
        b.valid_principal("root").unwrap();
        b.sign(ca).unwrap()
    }

    #[test]
    fn certificates_are_checked_for_ca_type_time_key_id_and_revocation() {
        let ca = crate::join::generate_ed25519().unwrap();
        let other = crate::join::generate_ed25519().unwrap();
        let key = crate::join::generate_ed25519().unwrap();
        let mut rev = Revocations::default();
        let now = 1_800_000_000;
        // Checked against `ca` alone, from the usual client address.
        let trusted = std::slice::from_ref(ca.public_key());
        let check = |cert: &Certificate, at: u64, rev: &Revocations| {
            check_user_cert(cert, trusted, at, rev, CLIENT)
        };
        let good = sign(
            &ca,
            &key,
            "user=alice serial=5",
            5,
            now - 10,
            now + 60,
            CertType::User,
        );
        // Before the first revocation fetch: refused.
        assert!(check(&good, now, &rev).is_err());
        rev.version = Some(1);
        let u = check(&good, now, &rev).unwrap();
        assert_eq!((u.name.as_str(), u.serial), ("alice", 5));
        // Expired, not yet valid, at the exact end.
        assert!(check(&good, now + 60, &rev).is_err());
        assert!(check(&good, now - 11, &rev).is_err());
        // Foreign CA, host cert, no user in key ID.
        let foreign = sign(
            &other,
            &key,
            "user=alice",
            6,
            now - 10,
            now + 60,
            CertType::User,
        );
        assert!(check(&foreign, now, &rev)
            .unwrap_err()
            .to_string()
            .contains("not issued"));
        // While the CA rotates its key both are trusted, and either signs.
        let both = [ca.public_key().clone(), other.public_key().clone()];
        assert!(check_user_cert(&foreign, &both, now, &rev, CLIENT).is_ok());
        assert!(check_user_cert(&good, &both, now, &rev, CLIENT).is_ok());
        let host = sign(
            &ca,
            &key,
            "user=alice",
            7,
            now - 10,
            now + 60,
            CertType::Host,
        );
        assert!(check(&host, now, &rev).is_err());
        let anon = sign(&ca, &key, "alice", 8, now - 10, now + 60, CertType::User);
        assert!(check(&anon, now, &rev).is_err());
        // Revoked by serial, by key, by disabled user.
        let mut r = rev.clone();
        r.serials.insert(5);
        assert!(check(&good, now, &r)
            .unwrap_err()
            .to_string()
            .contains("serial 5"));
        let mut r = rev.clone();
        Arc::make_mut(&mut r.key_fingerprints).insert(u.key_fingerprint.clone());
        assert!(check(&good, now, &r).is_err());
        let mut r = rev;
        r.disabled_users.insert("alice".into());
        assert!(check(&good, now, &r)
            .unwrap_err()
            .to_string()
            .contains("disabled"));
    }
}
