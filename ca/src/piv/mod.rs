//! YubiKey PIV attestation: proof that the key to be certified was generated
//! inside a YubiKey's PIV applet, with the PIN and touch policies policy wants.
//!
//! This module owns the verification only: parse the slot attestation
//! certificate and the device's attestation intermediate (the certificate in
//! slot `f9`, optionally followed by further intermediates up to a root), check
//! the chain to one of the configured Yubico PIV attestation roots (signatures,
//! validity at `now`, CA constraints), read Yubico's extensions, apply the
//! touch/PIN policy lists, and check that the attested key is the SSH key to be
//! certified. It does no I/O besides [`PivVerifier::from_pem_files`] at start-up,
//! reads no clock (`now` is a parameter) and knows nothing of HTTP.
//!
//! What the YubiKey produces (developers.yubico.com, "PIV attestation"): after a
//! key is generated in a slot, the `ATTEST` instruction returns an X.509
//! certificate for that key, signed by the key in slot `f9`, whose factory
//! certificate is signed by Yubico's PIV root. The attestation certificate
//! carries, under `1.3.6.1.4.1.41482.3`:
//!
//! | OID  | content (the extension's OCTET STRING holds) |
//! |------|----------------------------------------------|
//! | `.3` | firmware version, 3 raw bytes `major minor patch` |
//! | `.7` | device serial, a DER INTEGER |
//! | `.8` | 2 raw bytes: PIN policy (1 never, 2 once, 3 always, 4 match-once, 5 match-always), touch policy (1 never, 2 always, 3 cached 15 s) |
//! | `.9` | form factor, 1 raw byte (1 USB-A keychain, 2 USB-A nano, 3 USB-C keychain, 4 USB-C nano, 5 USB-C Lightning, 6/7 USB-A/C Bio) |
//!
//! What attestation proves, and what it does not: the key lives in *a* YubiKey
//! with these policies and cannot be exported. It does not say whose YubiKey it
//! is; the serial is recorded in the certificate and the audit event so that
//! hosts and reviewers can tie keys to devices.
//!
//! One deliberate leniency: the factory `f9` certificates of many YubiKeys carry
//! no basicConstraints extension at all (Yubico/yubikey-manager#522, firmware
//! 5.2.4 and others), so the certificate directly above the slot certificate may
//! lack it. It may not *deny* being a CA, it may not itself be a slot
//! attestation (carry the `.8` policy extension), and the pathLenConstraint of
//! every certificate above it still counts it — which is what stops a slot key
//! from being used to sign a forged attestation under a genuine `f9`.
//!
//! # Files
//!
//! - `mod.rs`: `[piv]` settings and [`PivVerifier`], the checks in order.
//! - `x509.rs`: parsing, Yubico's extensions, signatures, path lengths, the
//!   attested key against the SSH key.
//! - `attested.rs`: the PIN and touch policies and what an attestation states.
//! - `error.rs`: the refusals and their codes.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use ssh_key::PublicKey;
use x509_parser::certificate::X509Certificate;

mod attested;
mod error;
mod x509;

pub use attested::{Attested, PinPolicy, TouchPolicy};
use error::malformed;
pub use error::PivError;
use x509::{
    check_path_len, check_signature, has_ext, join, parse_der, pem_certs, read_extensions, same_key,
};

/// `1.3.6.1.4.1.41482.3.3`: firmware version.
pub const OID_FIRMWARE: &str = "1.3.6.1.4.1.41482.3.3";
/// `1.3.6.1.4.1.41482.3.7`: serial number.
pub const OID_SERIAL: &str = "1.3.6.1.4.1.41482.3.7";
/// `1.3.6.1.4.1.41482.3.8`: PIN and touch policy.
pub const OID_POLICY: &str = "1.3.6.1.4.1.41482.3.8";
/// `1.3.6.1.4.1.41482.3.9`: form factor.
pub const OID_FORM_FACTOR: &str = "1.3.6.1.4.1.41482.3.9";

/// Certificate extension marking a certificate whose key was PIV-attested (the
/// policy crate's, so that the bastion and `pam_rampart` read the same name).
pub const EXT_KEY: &str = rampart_policy::EXT_MFA_KEY;
/// Value of [`EXT_KEY`].
pub const EXT_KEY_PIV: &str = rampart_policy::EXT_MFA_KEY_PIV;
/// Certificate extension: the attesting YubiKey's serial (decimal), when attested.
pub const EXT_PIV_SERIAL: &str = "mfa-piv-serial@rampart";
/// Certificate extension: the attested key policies, `pin=<p>,touch=<t>`.
pub const EXT_PIV_POLICY: &str = "mfa-piv-policy@rampart";

/// Most certificates accepted above the slot certificate (`f9` and the rest of
/// the chain). Yubico's older hierarchy has one; the 2024 one (firmware 5.7.4+)
/// has up to three.
pub const MAX_INTERMEDIATES: usize = 4;
/// Largest PEM text accepted for one field.
pub const MAX_PEM_BYTES: usize = 24 * 1024;

const OID_BASIC_CONSTRAINTS: &str = "2.5.29.19";
const OID_KEY_USAGE: &str = "2.5.29.15";
const OID_EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
const OID_P256: &str = "1.2.840.10045.3.1.7";
const OID_P384: &str = "1.3.132.0.34";
const OID_RSA: &str = "1.2.840.113549.1.1.1";
const OID_ED25519: &str = "1.3.101.112";
/// sha1WithRSAEncryption and its old alias: refused, SHA-1 collisions are practical.
const OIDS_SHA1_RSA: [&str; 2] = ["1.2.840.113549.1.1.5", "1.3.14.3.2.29"];
/// ecdsa-with-SHA1.
const OID_ECDSA_SHA1: &str = "1.2.840.10045.4.1";

/// `[piv]` in the CA config.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPiv {
    /// PEM files of the Yubico PIV attestation roots to trust (relative to the
    /// config file). Empty (the default): PIV attestations are refused with
    /// `piv_attestation_not_configured`.
    #[serde(default)]
    pub attestation_roots: Vec<PathBuf>,
    /// Accepted touch policies. Default `["always"]`.
    #[serde(default)]
    pub touch_policies: Option<Vec<String>>,
    /// Accepted PIN policies. Default `["once", "always", "match-once",
    /// "match-always"]`: anything but `never`.
    #[serde(default)]
    pub pin_policies: Option<Vec<String>>,
}

/// The trusted roots and accepted policies; verifies attestations.
#[derive(Clone)]
pub struct PivVerifier {
    /// DER of each trusted root, each checked to parse at construction.
    roots: Vec<Vec<u8>>,
    touch: Vec<TouchPolicy>,
    pin: Vec<PinPolicy>,
}

impl std::fmt::Debug for PivVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let subjects: Vec<String> = self
            .roots
            .iter()
            .filter_map(|der| parse_der(der, "root").ok().map(|c| c.subject().to_string()))
            .collect();
        f.debug_struct("PivVerifier")
            .field("roots", &subjects)
            .field("touch", &self.touch)
            .field("pin", &self.pin)
            .finish()
    }
}

/// Default accepted touch policies.
pub const DEFAULT_TOUCH: [TouchPolicy; 1] = [TouchPolicy::Always];
/// Default accepted PIN policies: all but `never`.
pub const DEFAULT_PIN: [PinPolicy; 4] = [
    PinPolicy::Once,
    PinPolicy::Always,
    PinPolicy::MatchOnce,
    PinPolicy::MatchAlways,
];

/// Validate `[piv]`: `None` when no root is configured.
pub fn validate(raw: &RawPiv, base: &Path) -> Result<Option<PivVerifier>, crate::CaError> {
    let cfg = |m: String| crate::CaError::Config(format!("[piv] {m}"));
    let touch = match &raw.touch_policies {
        None => DEFAULT_TOUCH.to_vec(),
        Some(list) => list
            .iter()
            .map(|s| {
                TouchPolicy::parse(s).ok_or_else(|| {
                    cfg(format!(
                        "touch_policies: {s:?} is not one of never, always, cached"
                    ))
                })
            })
            .collect::<Result<_, _>>()?,
    };
    let pin = match &raw.pin_policies {
        None => DEFAULT_PIN.to_vec(),
        Some(list) => list
            .iter()
            .map(|s| {
                PinPolicy::parse(s).ok_or_else(|| {
                    cfg(format!(
                        "pin_policies: {s:?} is not one of never, once, always, match-once, match-always"
                    ))
                })
            })
            .collect::<Result<_, _>>()?,
    };
    if touch.is_empty() || pin.is_empty() {
        return Err(cfg(
            "touch_policies and pin_policies must not be empty".into()
        ));
    }
    if raw.attestation_roots.is_empty() {
        return Ok(None);
    }
    let paths: Vec<PathBuf> = raw.attestation_roots.iter().map(|p| base.join(p)).collect();
    PivVerifier::from_pem_files(&paths, touch, pin)
        .map(Some)
        .map_err(|e| cfg(e.to_string()))
}

impl PivVerifier {
    /// A verifier trusting `roots_der` (DER certificates), accepting the given
    /// touch and PIN policies.
    ///
    /// # Errors
    /// [`PivError::Malformed`] if a root does not parse or none is given.
    pub fn new(
        roots_der: Vec<Vec<u8>>,
        touch: Vec<TouchPolicy>,
        pin: Vec<PinPolicy>,
    ) -> Result<Self, PivError> {
        if roots_der.is_empty() {
            return Err(malformed("attestation roots", "none configured"));
        }
        for der in &roots_der {
            parse_der(der, "root")?;
        }
        Ok(PivVerifier {
            roots: roots_der,
            touch,
            pin,
        })
    }

    /// Read roots from PEM files (each may hold several certificates).
    ///
    /// # Errors
    /// [`PivError::Malformed`] naming the file that cannot be read or parsed.
    pub fn from_pem_files(
        paths: &[PathBuf],
        touch: Vec<TouchPolicy>,
        pin: Vec<PinPolicy>,
    ) -> Result<Self, PivError> {
        let mut roots = Vec::new();
        for p in paths {
            let text = std::fs::read_to_string(p)
                .map_err(|e| malformed("attestation root", format!("{}: {e}", p.display())))?;
            let ders = pem_certs(&text, "attestation root", 64)
                .map_err(|e| malformed("attestation root", format!("{}: {e}", p.display())))?;
            roots.extend(ders);
        }
        Self::new(roots, touch, pin)
    }

    /// Verify a slot attestation for `key` at `now`.
    ///
    /// `slot_cert_pem` holds exactly one certificate (the `ATTEST` output);
    /// `intermediate_pem` holds the slot `f9` certificate first, optionally
    /// followed by further intermediates towards the root (a root itself may be
    /// included and is then ignored).
    ///
    /// # Errors
    /// A [`PivError`] naming the first check that failed.
    pub fn verify(
        &self,
        slot_cert_pem: &str,
        intermediate_pem: &str,
        key: &PublicKey,
        now: DateTime<Utc>,
    ) -> Result<Attested, PivError> {
        let slot_der = pem_certs(slot_cert_pem, "slot attestation certificate", 1)?;
        let mut inter_der = pem_certs(
            intermediate_pem,
            "attestation intermediate",
            MAX_INTERMEDIATES + 1,
        )?;
        // A client may append the root itself; trust comes from our copy only.
        while inter_der.len() > 1 && inter_der.last().is_some_and(|d| self.roots.contains(d)) {
            inter_der.pop();
        }
        if inter_der.len() > MAX_INTERMEDIATES {
            return Err(malformed(
                "attestation intermediate",
                format!("at most {MAX_INTERMEDIATES} certificates are accepted"),
            ));
        }
        let slot = match slot_der.first() {
            Some(d) => parse_der(d, "slot attestation certificate")?,
            None => return Err(malformed("slot attestation certificate", "no certificate")),
        };
        let inters = inter_der
            .iter()
            .map(|d| parse_der(d, "attestation intermediate"))
            .collect::<Result<Vec<_>, _>>()?;
        let roots = self
            .roots
            .iter()
            .map(|d| parse_der(d, "root"))
            .collect::<Result<Vec<_>, _>>()?;

        // 1. Signatures along the chain: slot ← f9 ← … ← root.
        let mut chain: Vec<(&X509Certificate<'_>, &'static str)> =
            vec![(&slot, "slot attestation certificate")];
        for (i, c) in inters.iter().enumerate() {
            chain.push((
                c,
                if i == 0 {
                    "attestation intermediate (f9)"
                } else {
                    "attestation intermediate"
                },
            ));
        }
        for pair in chain.windows(2) {
            let [(child, child_name), (parent, parent_name)] = pair else {
                continue;
            };
            if child.issuer().as_raw() != parent.subject().as_raw() {
                return Err(PivError::ChainBroken(format!(
                    "the {child_name} is issued by \"{}\", not by the {parent_name} \"{}\"",
                    child.issuer(),
                    parent.subject()
                )));
            }
            check_signature(child, parent, child_name)?;
        }
        let (top, top_name) = match chain.last() {
            Some(t) => *t,
            None => return Err(malformed("attestation intermediate", "no certificate")),
        };
        let root = roots
            .iter()
            .find(|r| {
                r.subject().as_raw() == top.issuer().as_raw()
                    && check_signature(top, r, top_name).is_ok()
            })
            .ok_or_else(|| {
                PivError::UntrustedRoot(format!(
                    "the chain's top is issued by \"{}\"",
                    top.issuer()
                ))
            })?;

        // 2. Validity at now, of everything including the root.
        let now_ts = now.timestamp();
        for (c, name) in chain.iter().copied().chain(std::iter::once((root, "root"))) {
            let v = c.validity();
            if now_ts < v.not_before.timestamp() || now_ts > v.not_after.timestamp() {
                return Err(PivError::NotValidNow {
                    which: name,
                    not_before: v.not_before.to_string(),
                    not_after: v.not_after.to_string(),
                });
            }
        }

        // 3. Critical extensions we do not understand refuse the certificate.
        for (c, name) in chain.iter().copied() {
            if let Some(ext) = c.extensions().iter().find(|e| {
                e.critical && {
                    let oid = e.oid.to_id_string();
                    oid != OID_BASIC_CONSTRAINTS && oid != OID_KEY_USAGE
                }
            }) {
                return Err(PivError::CriticalExtension {
                    which: name,
                    oid: ext.oid.to_id_string(),
                });
            }
        }

        // 4. CA constraints of the intermediates and the root.
        for (i, c) in inters.iter().enumerate() {
            let name = if i == 0 {
                "attestation intermediate (f9)"
            } else {
                "attestation intermediate"
            };
            let bc = c
                .basic_constraints()
                .map_err(|e| malformed("attestation intermediate", e.to_string()))?;
            match bc {
                Some(bc) if !bc.value.ca => return Err(PivError::NotCa(name)),
                Some(bc) => check_path_len(bc.value.path_len_constraint, i, name)?,
                // Factory f9 certificates without basicConstraints: see the module docs.
                None if i == 0 && !has_ext(c, OID_POLICY) => {}
                None => return Err(PivError::NotCa(name)),
            }
            let ku = c
                .key_usage()
                .map_err(|e| malformed("attestation intermediate", e.to_string()))?;
            if ku.is_some_and(|ku| !ku.value.key_cert_sign()) {
                return Err(PivError::NotCa(name));
            }
        }
        if let Ok(Some(bc)) = root.basic_constraints() {
            check_path_len(bc.value.path_len_constraint, inters.len(), "root")?;
        }

        // 5. Yubico's extensions on the slot certificate.
        let attested = read_extensions(&slot, root)?;
        if !self.touch.contains(&attested.touch_policy) {
            return Err(PivError::TouchPolicy {
                found: attested.touch_policy,
                accepted: join(self.touch.iter().map(|p| p.as_str())),
            });
        }
        if !self.pin.contains(&attested.pin_policy) {
            return Err(PivError::PinPolicy {
                found: attested.pin_policy,
                accepted: join(self.pin.iter().map(|p| p.as_str())),
            });
        }

        // 6. The attested key is the key to be certified.
        same_key(&slot, key)?;
        Ok(attested)
    }
}

#[cfg(test)]
mod tests;
