//! `rampart login --key piv`: the SSH key lives in YubiKey PIV slot 9a and never
//! leaves it.
//!
//! The first time, the key is generated on the device (ECC P-256, PIN policy
//! `once`, touch policy `always`); every login then reads the slot's attestation
//! certificate (the YubiKey signs it with its factory key in slot `f9`) and the
//! `f9` certificate, and sends both with the public key, so the CA can check the
//! chain to Yubico's PIV root, the policies and that the attested key is the one
//! it certifies (`rampart-ca`'s `piv` module). ssh then uses the key through the
//! YubiKey's PKCS#11 module (`PKCS11Provider`, [`PKCS11_MODULE`]), which asks for
//! the PIN once per session and for a touch on every signature.
//!
//! This module owns the device conversation and the ssh_config lines for it. It
//! holds no CA logic; the device code needs PC/SC (cargo feature `piv`, on by
//! default; build: libpcsclite-dev, run: pcscd).

use std::path::{Path, PathBuf};

use base64::Engine as _;
use rampart_api::PivAttestation;

use crate::error::CliError;
use crate::home::Home;

/// Debian's path of Yubico's PKCS#11 module (package `ykcs11`).
pub const PKCS11_MODULE: &str = "/usr/lib/x86_64-linux-gnu/libykcs11.so";

/// Environment variable holding a non-default PIV management key (hex, 24 bytes
/// 3DES), needed only to generate the key the first time.
#[cfg_attr(not(feature = "piv"), allow(dead_code))]
pub const MGM_KEY_ENV: &str = "RAMPART_PIV_MANAGEMENT_KEY";

/// The key in slot 9a and its attestation.
#[derive(Debug)]
pub struct PivKey {
    /// The public key in SSH form.
    pub public: ssh_key::PublicKey,
    /// Slot attestation and `f9` certificate, PEM.
    pub attestation: PivAttestation,
    /// The YubiKey's serial number.
    pub serial: u32,
    /// Whether this login generated the key.
    pub generated: bool,
}

/// Where the certificate for the PIV key goes.
pub fn cert_path(home: &Home) -> PathBuf {
    home.dir().join("id_piv-cert.pub")
}

/// The ssh_config that makes ssh sign with the YubiKey, for `hosts`: the PKCS#11
/// module offers the slot 9a key, and `CertificateFile` pairs it with the
/// certificate.
pub fn ssh_config(home: &Home, hosts: &[String], cert: &Path) -> String {
    crate::ssh::ssh_config(home, hosts, None, cert, Some(PKCS11_MODULE))
}

#[cfg_attr(not(feature = "piv"), allow(dead_code))]
fn pem(der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

/// The SSH public key of an uncompressed P-256/P-384 point from the slot's
/// attestation certificate (PIV slot keys made here are ECC).
#[cfg_attr(not(feature = "piv"), allow(dead_code))]
fn ssh_key_from_point(point: &[u8]) -> Result<ssh_key::PublicKey, CliError> {
    let ec = ssh_key::public::EcdsaPublicKey::from_sec1_bytes(point).map_err(|e| {
        anyhow::anyhow!(
            "slot 9a holds a key that is not ECC P-256/P-384 ({e}); the CA certifies \
             ECDSA P-256/P-384 PIV keys (clear the slot with `ykman piv keys delete 9a`)"
        )
    })?;
    Ok(ssh_key::PublicKey::new(
        ssh_key::public::KeyData::Ecdsa(ec),
        "yubikey-piv-9a",
    ))
}

/// Open the first YubiKey, make sure slot 9a holds an on-device key (generating
/// one the first time), and read its attestation and the `f9` certificate.
#[cfg(feature = "piv")]
pub fn prepare() -> Result<PivKey, CliError> {
    use yubikey::piv::{self, AlgorithmId, SlotId};
    use yubikey::{MgmKey, PinPolicy, TouchPolicy, YubiKey};

    let device = |what: &str, e: yubikey::Error| anyhow::anyhow!("YubiKey: {what}: {e}");
    let mut yk = YubiKey::open().map_err(|e| {
        anyhow::anyhow!(
            "no YubiKey found over PC/SC ({e}); plug it in and check that pcscd is running"
        )
    })?;
    let serial = yk.serial().0;
    let (slot_der, generated) = match piv::attest(&mut yk, SlotId::Authentication) {
        Ok(der) => (der, false),
        Err(_) => {
            // No attestable key. An imported key cannot be attested and must not be
            // overwritten silently; metadata (firmware 5.2.3+) tells them apart.
            if piv::metadata(&mut yk, SlotId::Authentication).is_ok() {
                return Err(anyhow::anyhow!(
                    "PIV slot 9a holds a key that was imported, not generated on the \
                     YubiKey, so it cannot be attested; delete it (`ykman piv keys delete \
                     9a`) and run `rampart login --key piv` again"
                )
                .into());
            }
            let mgm = match std::env::var(MGM_KEY_ENV) {
                Ok(hex_key) => {
                    let bytes = hex::decode(hex_key.trim())
                        .map_err(|_| anyhow::anyhow!("{MGM_KEY_ENV} is not hex"))?;
                    MgmKey::from_bytes(bytes)
                        .map_err(|e| device("the management key is not a 3DES key", e))?
                }
                Err(_) => MgmKey::default(),
            };
            yk.authenticate(mgm).map_err(|e| {
                device(
                    &format!("management key refused (set {MGM_KEY_ENV} if it is not the default)"),
                    e,
                )
            })?;
            eprintln!(
                "Generating an ECC P-256 key in YubiKey {serial} PIV slot 9a \
                 (PIN once per session, touch always)…"
            );
            piv::generate(
                &mut yk,
                SlotId::Authentication,
                AlgorithmId::EccP256,
                PinPolicy::Once,
                TouchPolicy::Always,
            )
            .map_err(|e| device("key generation in slot 9a failed", e))?;
            let der = piv::attest(&mut yk, SlotId::Authentication)
                .map_err(|e| device("attesting slot 9a failed", e))?;
            (der, true)
        }
    };
    let slot = yubikey::Certificate::from_bytes(slot_der.to_vec())
        .map_err(|e| device("the slot attestation is not a certificate", e))?;
    let public = ssh_key_from_point(slot.subject_pki().subject_public_key.raw_bytes())?;
    let f9 = yubikey::Certificate::read(&mut yk, SlotId::Attestation)
        .map_err(|e| device("cannot read the attestation certificate in slot f9", e))?;
    let f9_der = der::Encode::to_der(&f9.cert)
        .map_err(|e| anyhow::anyhow!("YubiKey: cannot encode the f9 certificate: {e}"))?;
    Ok(PivKey {
        public,
        attestation: PivAttestation {
            slot_cert_pem: pem(&slot_der),
            intermediate_pem: pem(&f9_der),
        },
        serial,
        generated,
    })
}

/// Without the `piv` feature the flag exists but explains itself.
#[cfg(not(feature = "piv"))]
pub fn prepare() -> Result<PivKey, CliError> {
    Err(anyhow::anyhow!(
        "this rampart was built without YubiKey support (cargo feature `piv`, which needs \
         libpcsclite-dev)"
    )
    .into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssh_config_uses_the_pkcs11_module_and_the_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::at(dir.path());
        let cert = cert_path(&home);
        let text = ssh_config(&home, &["db-1".to_owned()], &cert);
        assert!(
            text.contains(&format!("PKCS11Provider {PKCS11_MODULE}")),
            "{text}"
        );
        assert!(
            text.contains("CertificateFile") && text.contains("id_piv-cert.pub"),
            "{text}"
        );
        assert!(!text.contains("IdentityFile"), "{text}");
    }

    #[test]
    fn points_become_ecdsa_ssh_keys_and_other_keys_are_refused() {
        // The P-256 generator point, uncompressed.
        let g = hex::decode(
            "046b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296\
             4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5",
        )
        .unwrap();
        let k = ssh_key_from_point(&g).unwrap();
        assert_eq!(k.algorithm().as_str(), "ecdsa-sha2-nistp256");
        let err = ssh_key_from_point(&[4, 1, 2, 3]).unwrap_err().to_string();
        assert!(err.contains("not ECC"), "{err}");
        let p = pem(&[1, 2, 3]);
        assert!(p.starts_with("-----BEGIN CERTIFICATE-----\nAQID\n"), "{p}");
    }
}
