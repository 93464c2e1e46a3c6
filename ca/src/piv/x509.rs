//! The X.509 work under [`super::PivVerifier::verify`]: parsing DER and PEM,
//! reading Yubico's extensions, checking a signature and a path length, and
//! comparing the attested key with the SSH key to be certified.

use super::{
    malformed, Attested, PinPolicy, PivError, TouchPolicy, MAX_PEM_BYTES, OIDS_SHA1_RSA,
    OID_ECDSA_SHA1, OID_EC_PUBLIC_KEY, OID_ED25519, OID_FIRMWARE, OID_FORM_FACTOR, OID_P256,
    OID_P384, OID_POLICY, OID_RSA, OID_SERIAL,
};

use ssh_key::public::KeyData;
use ssh_key::{EcdsaCurve, PublicKey};
use x509_parser::certificate::X509Certificate;
use x509_parser::prelude::FromDer;
use x509_parser::public_key::PublicKey as SpkiKey;

pub(super) fn join<'a>(it: impl Iterator<Item = &'a str>) -> String {
    it.collect::<Vec<_>>().join(", ")
}

/// `path_len`: at most this many intermediates may follow (below) the
/// certificate; `below` is how many do.
pub(super) fn check_path_len(
    path_len: Option<u32>,
    below: usize,
    name: &'static str,
) -> Result<(), PivError> {
    match path_len {
        Some(n) if usize::try_from(n).unwrap_or(usize::MAX) < below => {
            Err(PivError::PathTooLong(name))
        }
        _ => Ok(()),
    }
}

pub(super) fn has_ext(c: &X509Certificate<'_>, oid: &str) -> bool {
    c.extensions().iter().any(|e| e.oid.to_id_string() == oid)
}

/// The value of the extension `oid`, refusing duplicates.
pub(super) fn ext_value<'a>(
    c: &'a X509Certificate<'_>,
    oid: &str,
) -> Result<Option<&'a [u8]>, PivError> {
    let mut found = c
        .extensions()
        .iter()
        .filter(|e| e.oid.to_id_string() == oid);
    let first = found.next().map(|e| e.value);
    if found.next().is_some() {
        return Err(malformed(
            "slot attestation certificate",
            format!("extension {oid} appears twice"),
        ));
    }
    Ok(first)
}

pub(super) fn read_extensions(
    slot: &X509Certificate<'_>,
    root: &X509Certificate<'_>,
) -> Result<Attested, PivError> {
    let bad = |m: String| malformed("slot attestation certificate", m);
    let policy = ext_value(slot, OID_POLICY)?.ok_or(PivError::PolicyMissing)?;
    let (pin, touch) = match policy {
        [p, t] => (*p, *t),
        _ => {
            return Err(bad(format!(
                "the policy extension has {} bytes, expected 2",
                policy.len()
            )))
        }
    };
    let pin_policy =
        PinPolicy::from_byte(pin).ok_or_else(|| bad(format!("unknown PIN policy {pin:#04x}")))?;
    let touch_policy = TouchPolicy::from_byte(touch)
        .ok_or_else(|| bad(format!("unknown touch policy {touch:#04x}")))?;
    let firmware = match ext_value(slot, OID_FIRMWARE)? {
        None => None,
        Some([a, b, c]) => Some(format!("{a}.{b}.{c}")),
        Some(v) => {
            return Err(bad(format!(
                "the firmware extension has {} bytes, expected 3",
                v.len()
            )))
        }
    };
    let serial = match ext_value(slot, OID_SERIAL)? {
        None => None,
        Some(v) => match x509_parser::der_parser::der::parse_der_u32(v) {
            Ok(([], s)) => Some(s),
            _ => return Err(bad("the serial extension is not a DER INTEGER".into())),
        },
    };
    let form_factor = match ext_value(slot, OID_FORM_FACTOR)? {
        None => None,
        Some([b]) => Some(*b),
        Some(v) => {
            return Err(bad(format!(
                "the form factor extension has {} bytes, expected 1",
                v.len()
            )))
        }
    };
    Ok(Attested {
        serial,
        firmware,
        pin_policy,
        touch_policy,
        form_factor,
        root: root.subject().to_string(),
    })
}

pub(super) fn check_signature(
    child: &X509Certificate<'_>,
    parent: &X509Certificate<'_>,
    which: &'static str,
) -> Result<(), PivError> {
    let oid = child.signature_algorithm.algorithm.to_id_string();
    if OIDS_SHA1_RSA.contains(&oid.as_str()) || oid == OID_ECDSA_SHA1 {
        return Err(PivError::WeakSignature { which, oid });
    }
    child
        .verify_signature(Some(parent.public_key()))
        .map_err(|e| match e {
            x509_parser::error::X509Error::SignatureUnsupportedAlgorithm => {
                PivError::WeakSignature { which, oid }
            }
            _ => PivError::BadSignature(which),
        })
}

/// Compare the slot certificate's SubjectPublicKeyInfo with the SSH key.
pub(super) fn same_key(slot: &X509Certificate<'_>, key: &PublicKey) -> Result<(), PivError> {
    let spki = slot.public_key();
    let alg = spki.algorithm.algorithm.to_id_string();
    let point: &[u8] = &spki.subject_public_key.data;
    let equal = match key.key_data() {
        KeyData::Ecdsa(ec) => {
            let want_curve = match ec.curve() {
                EcdsaCurve::NistP256 => OID_P256,
                EcdsaCurve::NistP384 => OID_P384,
                EcdsaCurve::NistP521 => {
                    return Err(PivError::UnsupportedKey("ECDSA P-521".into()));
                }
            };
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map(|o| o.to_id_string());
            alg == OID_EC_PUBLIC_KEY
                && curve.as_deref() == Some(want_curve)
                && point == ec.as_sec1_bytes()
        }
        KeyData::Ed25519(k) => alg == OID_ED25519 && point == k.0.as_slice(),
        KeyData::Rsa(rsa) => {
            alg == OID_RSA
                && match spki.parsed() {
                    Ok(SpkiKey::RSA(r)) => {
                        Some(strip_zeros(r.modulus)) == rsa.n().as_positive_bytes().map(strip_zeros)
                            && Some(strip_zeros(r.exponent))
                                == rsa.e().as_positive_bytes().map(strip_zeros)
                    }
                    _ => false,
                }
        }
        other => return Err(PivError::UnsupportedKey(other.algorithm().to_string())),
    };
    if equal {
        Ok(())
    } else {
        Err(PivError::KeyMismatch)
    }
}

pub(super) fn strip_zeros(b: &[u8]) -> &[u8] {
    let n = b.iter().take_while(|&&x| x == 0).count();
    b.get(n..).unwrap_or_default()
}

pub(super) fn parse_der<'a>(
    der: &'a [u8],
    what: &'static str,
) -> Result<X509Certificate<'a>, PivError> {
    match X509Certificate::from_der(der) {
        Ok(([], cert)) => Ok(cert),
        Ok(_) => Err(malformed(what, "trailing bytes after the certificate")),
        Err(e) => Err(malformed(what, format!("not an X.509 certificate ({e})"))),
    }
}

/// The DER of each `CERTIFICATE` block in `text`; 1..=`max` of them.
pub(super) fn pem_certs(
    text: &str,
    what: &'static str,
    max: usize,
) -> Result<Vec<Vec<u8>>, PivError> {
    if text.len() > MAX_PEM_BYTES * max.max(1) {
        return Err(malformed(what, "too large"));
    }
    let mut out = Vec::new();
    for block in x509_parser::pem::Pem::iter_from_buffer(text.as_bytes()) {
        let block = block.map_err(|e| malformed(what, format!("not PEM ({e})")))?;
        if block.label != "CERTIFICATE" {
            return Err(malformed(
                what,
                format!("a {} block where a CERTIFICATE was expected", block.label),
            ));
        }
        out.push(block.contents);
        if out.len() > max {
            return Err(malformed(what, format!("more than {max} certificate(s)")));
        }
    }
    if out.is_empty() {
        return Err(malformed(what, "no PEM CERTIFICATE block"));
    }
    Ok(out)
}
