//! Subject-key policy: which public keys we will put into a certificate.

use ssh_key::public::KeyData;
use ssh_key::{EcdsaCurve, PublicKey};

use crate::error::SignerError;

/// Smallest RSA modulus we certify. NIST SP 800-57 puts 2048-bit RSA at 112
/// bits of security, below the 128 of every other accepted type.
pub const MIN_RSA_BITS: u32 = 3072;

/// Check that `key` is a type and size we are willing to certify.
///
/// Accepted: Ed25519, ECDSA P-256 and P-384, RSA of at least
/// [`MIN_RSA_BITS`] bits, and the FIDO security-key types
/// `sk-ssh-ed25519@openssh.com` and `sk-ecdsa-sha2-nistp256@openssh.com`.
/// Refused: DSA (deprecated by OpenSSH, 1024-bit), RSA below the minimum,
/// ECDSA P-521 (kept out to keep the accepted set small and widely
/// supported by hardware), certificates as subjects, and unknown types.
///
/// # Errors
/// [`SignerError::SubjectKeyRefused`], naming the type (and size) and what is accepted.
pub fn check_subject_key(key: &PublicKey) -> Result<(), SignerError> {
    let refuse = |key_type: String, reason: &str| {
        Err(SignerError::SubjectKeyRefused {
            key_type,
            reason: reason.to_owned(),
        })
    };
    match key.key_data() {
        KeyData::Ed25519(_) | KeyData::SkEd25519(_) | KeyData::SkEcdsaSha2NistP256(_) => Ok(()),
        KeyData::Ecdsa(ec) => match ec.curve() {
            EcdsaCurve::NistP256 | EcdsaCurve::NistP384 => Ok(()),
            EcdsaCurve::NistP521 => refuse(
                ec.algorithm().to_string(),
                "ECDSA P-521 is not accepted (use P-256, P-384 or Ed25519)",
            ),
        },
        KeyData::Rsa(rsa) => {
            let bits = rsa.key_size();
            if bits >= MIN_RSA_BITS {
                Ok(())
            } else {
                refuse(
                    format!("ssh-rsa ({bits} bits)"),
                    "RSA keys must be at least 3072 bits",
                )
            }
        }
        KeyData::Dsa(_) => refuse(
            "ssh-dss".to_owned(),
            "DSA keys are deprecated and disabled in OpenSSH",
        ),
        KeyData::Certificate(_) => refuse(
            key.algorithm().to_string(),
            "a certificate cannot be the subject of another certificate; send the plain public key",
        ),
        _ => refuse(key.algorithm().to_string(), "unknown key type"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ssh_key::public::{Ed25519PublicKey, SkEd25519};

    #[test]
    fn sk_ed25519_built_in_code_is_accepted() {
        let sk = SkEd25519::new(Ed25519PublicKey([7u8; 32]), "ssh:");
        let key = PublicKey::new(KeyData::SkEd25519(sk), "");
        check_subject_key(&key).unwrap();
    }

    #[test]
    fn error_names_type_and_accepted_set() {
        // An ssh-dss key: string "ssh-dss", mpint p, q, g, y (tiny, parse-only).
        let mut blob = Vec::new();
        for part in [&b"ssh-dss"[..], &[0x01], &[0x01], &[0x01], &[0x01]] {
            blob.extend_from_slice(&u32::try_from(part.len()).unwrap().to_be_bytes());
            blob.extend_from_slice(part);
        }
        let key = PublicKey::from_bytes(&blob).unwrap();
        let msg = check_subject_key(&key).unwrap_err().to_string();
        assert!(msg.contains("ssh-dss"), "{msg}");
        assert!(msg.contains("ssh-ed25519"), "{msg}");
        assert!(msg.contains("3072"), "{msg}");
    }
}
