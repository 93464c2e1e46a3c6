//! Outer certificate checks and the revocation state they consult.
//!
//! **Owns:** the decision whether a certificate presented to the bastion (outer
//! connection, and again on the inner session) identifies a Rampart user:
//! a user certificate, signed by the user CA from join, valid now
//! (PROTOCOL.certkeys: `valid after <= now < valid before`), key ID naming
//! `user=<name>`, with neither its serial nor its key revoked and the user not
//! disabled. russh has already proved the client holds the certificate's key;
//! everything else is checked here. The CA checks the certificate again when
//! it issues the per-session certificate.

use std::collections::HashSet;

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
    pub key_fingerprints: HashSet<String>,
    /// Disabled users.
    pub disabled_users: HashSet<String>,
}

impl Revocations {
    /// Apply a fetch. Disabled users come with every answer; the lists only
    /// when `changed`.
    pub fn apply(&mut self, r: &rampart_api::BastionRevocations) {
        if r.changed || self.version.is_none() {
            self.serials = r.serials.iter().copied().collect();
            self.key_fingerprints = r.key_fingerprints.iter().cloned().collect();
        }
        self.disabled_users = r.disabled_users.iter().cloned().collect();
        self.version = Some(r.version);
    }

    /// Why a user with this serial and key may no longer connect, if so.
    pub fn revoked(&self, user: &str, serial: u64, key_fp: &str) -> Option<String> {
        if self.version.is_none() {
            return Some("the bastion has not loaded the revocation list from the CA yet".into());
        }
        if self.serials.contains(&serial) {
            return Some(format!("certificate serial {serial} is revoked"));
        }
        if self.key_fingerprints.contains(key_fp) {
            return Some(format!("key {key_fp} is revoked"));
        }
        if self.disabled_users.contains(user) {
            return Some(format!("user {user} is disabled"));
        }
        None
    }
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

/// Check `cert` at `now` (seconds since the epoch). `Err` is the refusal reason.
pub fn check_user_cert(
    cert: &Certificate,
    user_ca: &PublicKey,
    now: u64,
    rev: &Revocations,
) -> Result<OuterUser, String> {
    if cert.cert_type() != CertType::User {
        return Err("a host certificate was presented as a user certificate".into());
    }
    let ca_fp = user_ca.fingerprint(HashAlg::Sha256);
    if cert.signature_key().fingerprint(HashAlg::Sha256) != ca_fp {
        return Err("certificate not issued by the Rampart user CA".into());
    }
    if !(cert.valid_after() <= now && now < cert.valid_before()) {
        return Err("certificate expired or not yet valid; run `rampart login`".into());
    }
    if cert.validate_at(now, [&ca_fp]).is_err() {
        return Err("certificate signature does not verify".into());
    }
    let Some(name) = key_id_user(cert.key_id()) else {
        return Err("certificate key ID names no Rampart user".into());
    };
    let key = PublicKey::from(cert.public_key().clone());
    let key_fingerprint = key.fingerprint(HashAlg::Sha256).to_string();
    if let Some(why) = rev.revoked(name, cert.serial(), &key_fingerprint) {
        return Err(why);
    }
    let cert_line = cert
        .to_openssh()
        .map_err(|e| format!("certificate cannot be encoded ({e})"))?;
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
        assert!(check_user_cert(&good, ca.public_key(), now, &rev).is_err());
        rev.version = Some(1);
        let u = check_user_cert(&good, ca.public_key(), now, &rev).unwrap();
        assert_eq!((u.name.as_str(), u.serial), ("alice", 5));
        // Expired, not yet valid, at the exact end.
        assert!(check_user_cert(&good, ca.public_key(), now + 60, &rev).is_err());
        assert!(check_user_cert(&good, ca.public_key(), now - 11, &rev).is_err());
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
        assert!(check_user_cert(&foreign, ca.public_key(), now, &rev)
            .unwrap_err()
            .contains("not issued"));
        let host = sign(
            &ca,
            &key,
            "user=alice",
            7,
            now - 10,
            now + 60,
            CertType::Host,
        );
        assert!(check_user_cert(&host, ca.public_key(), now, &rev).is_err());
        let anon = sign(&ca, &key, "alice", 8, now - 10, now + 60, CertType::User);
        assert!(check_user_cert(&anon, ca.public_key(), now, &rev).is_err());
        // Revoked by serial, by key, by disabled user.
        let mut r = rev.clone();
        r.serials.insert(5);
        assert!(check_user_cert(&good, ca.public_key(), now, &r)
            .unwrap_err()
            .contains("serial 5"));
        let mut r = rev.clone();
        r.key_fingerprints.insert(u.key_fingerprint.clone());
        assert!(check_user_cert(&good, ca.public_key(), now, &r).is_err());
        let mut r = rev;
        r.disabled_users.insert("alice".into());
        assert!(check_user_cert(&good, ca.public_key(), now, &r)
            .unwrap_err()
            .contains("disabled"));
    }
}
