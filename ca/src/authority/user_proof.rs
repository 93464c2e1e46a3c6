//! The user's proof of presence on a per-session certificate request: the
//! check that the holder of the outer certificate's private key logged in to
//! the SSH connection the bastion is asking for.
//!
//! **Owns:** verifying a [`api::user_proof::UserProof`] against the outer
//! certificate (layout, certificate, algorithm, signature, sizes), and the
//! rule for using one proof more than once ([`USER_PROOF_WINDOW`], first
//! bastion wins). The store keeps the binding (`Store::claim_user_proof`).
//! **Must never:** accept a proof that is not a signature by the
//! certificate's own key over RFC 4252 userauth data naming that very
//! certificate, or let a second bastion use a proof another bastion used.
//!
//! # Why a proof, and why it may be used more than once
//!
//! The outer certificate is public: every server the user logs in to sees it.
//! Without more, whoever holds a bastion credential could ask for a session
//! certificate for any user whose certificate they have seen. The signature
//! the user's SSH client made to log in to the bastion covers the session
//! identifier, the hash of that connection's key exchange, which nobody can
//! choose; only the key holder could have made it, for that connection only.
//!
//! One connection legitimately asks more than once: the first request may be
//! answered "per-session MFA required" and retried with a code or a
//! security-key approval, and a wrong code is retried again. So a proof is not
//! single use. It is bound instead to the bastion that first presents it
//! (keyed by the SHA-256 of its session identifier; a session identifier is
//! unique to one key exchange, so no two honest bastions ever present the
//! same one) and accepted for [`USER_PROOF_WINDOW`] after that first use, and
//! never past the outer certificate's own expiry.

use std::time::Duration;

use rampart_api as api;
use rampart_api::ErrorCode;
use sha2::{Digest as _, Sha256};
use signature::Verifier as _;
use ssh_key::encoding::{Decode as _, Encode as _};
use ssh_key::public::KeyData;
use ssh_key::{Algorithm, Certificate, HashAlg, Signature};

/// How long after its first use a proof is still accepted from the bastion
/// that used it. Every request the bastion makes with one proof happens while
/// that connection is authenticating: the first request and its per-session
/// MFA retries, which the bastion bounds by its authentication timeout, a
/// person's code-typing grace (minutes) and the wait for a security-key
/// approval (the approval's lifetime, 5 minutes by default, and never more
/// than 15 minutes at the bastion). Half an hour covers the longest of those
/// with room to spare; anything longer would only let a proof copied off a
/// bastion host be used for longer.
pub const USER_PROOF_WINDOW: Duration = Duration::from_secs(30 * 60);

/// Code of a request without a proof.
pub const CODE_REQUIRED: ErrorCode = ErrorCode::UserProofRequired;
/// Code of a proof that does not show the certificate holder logged in.
pub const CODE_INVALID: ErrorCode = ErrorCode::UserProofInvalid;
/// Code of a proof another bastion presented first.
pub const CODE_FOREIGN: ErrorCode = ErrorCode::UserProofForeign;
/// Code of a proof used past [`USER_PROOF_WINDOW`].
pub const CODE_EXPIRED: ErrorCode = ErrorCode::UserProofExpired;

/// A verified proof: what the CA keys its binding by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedProof {
    /// SHA-256 of the SSH session identifier the user signed.
    pub session_hash: [u8; 32],
    /// The SSH user name the client logged in to the bastion as.
    pub ssh_user: String,
}

/// Check `proof` against the outer certificate `outer`. `Err` is the refusal
/// code ([`CODE_REQUIRED`] or [`CODE_INVALID`]) and a sentence for the log.
pub fn verify(
    proof: Option<&api::user_proof::UserProof>,
    outer: &Certificate,
) -> Result<VerifiedProof, (ErrorCode, String)> {
    let invalid = |why: String| (CODE_INVALID, why);
    let Some(proof) = proof else {
        return Err((
            CODE_REQUIRED,
            "the request carries no proof that the user logged in to the bastion (user_proof)"
                .into(),
        ));
    };
    let (signed, encoded_signature) = proof.decode().map_err(|e| invalid(e.to_string()))?;
    let parsed = api::user_proof::SignedUserauth::parse(&signed)
        .map_err(|e| invalid(format!("user_proof: {e}")))?;
    let blob = outer
        .encode_vec()
        .map_err(|e| invalid(format!("the user certificate cannot be encoded ({e})")))?;
    if parsed.key_blob != blob {
        return Err(invalid(
            "the proof is a login with another certificate than the one in the request".into(),
        ));
    }
    let key = outer.public_key();
    let Some(algorithm) = signature_algorithm(&parsed.algorithm, key) else {
        return Err(invalid(format!(
            "the proof names algorithm {:?}, which is not a certificate algorithm for this key",
            parsed.algorithm.chars().take(64).collect::<String>()
        )));
    };
    let mut reader = encoded_signature.as_slice();
    let sig = Signature::decode(&mut reader)
        .map_err(|e| invalid(format!("the proof's signature is malformed ({e})")))?;
    if !reader.is_empty() {
        return Err(invalid("trailing bytes after the proof's signature".into()));
    }
    // RFC 4252 §7 / RFC 8332 §3: the signature is made with the algorithm the
    // request names (else rsa-sha2-512 could be announced and SHA-1 used).
    if sig.algorithm() != algorithm {
        return Err(invalid(
            "the proof's signature uses another algorithm than its request names".into(),
        ));
    }
    key.verify(&signed, &sig).map_err(|_| {
        invalid("the proof's signature does not verify under the certificate's key".into())
    })?;
    Ok(VerifiedProof {
        session_hash: Sha256::digest(&parsed.session_id).into(),
        ssh_user: parsed.user,
    })
}

/// The signature algorithm a certificate login named `name` must use, when
/// `name` is a certificate algorithm for `key`'s type. RSA's names pick the
/// hash; `ssh-rsa-cert-v01` (SHA-1) is refused.
fn signature_algorithm(name: &str, key: &KeyData) -> Option<Algorithm> {
    let algorithm = match name {
        "rsa-sha2-256-cert-v01@openssh.com" => Algorithm::Rsa {
            hash: Some(HashAlg::Sha256),
        },
        "rsa-sha2-512-cert-v01@openssh.com" => Algorithm::Rsa {
            hash: Some(HashAlg::Sha512),
        },
        other => Algorithm::new_certificate(other).ok()?,
    };
    match (&algorithm, key.algorithm()) {
        (Algorithm::Rsa { hash: Some(_) }, Algorithm::Rsa { .. }) => Some(algorithm),
        (Algorithm::Rsa { .. }, _) => None,
        (a, k) if *a == k => Some(algorithm),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
    use super::*;
    use api::user_proof::{SignedUserauth, UserProof};
    use signature::Signer as _;
    use ssh_key::certificate::{Builder, CertType};
    use ssh_key::private::{KeypairData, RsaKeypair};
    use ssh_key::rand_core::UnwrapErr;
    use ssh_key::{EcdsaCurve, PrivateKey};

    fn rng() -> UnwrapErr<ssh_key::getrandom::SysRng> {
        UnwrapErr(ssh_key::getrandom::SysRng)
    }

    fn cert_for(key: &PrivateKey) -> Certificate {
        let ca = PrivateKey::random(&mut rng(), Algorithm::Ed25519).unwrap();
        let mut b = Builder::new(
            [7u8; 32].to_vec(),
            key.public_key().key_data().clone(),
            1_000,
            4_000_000_000,
        )
        .unwrap();
        b.serial(3).unwrap();
        b.key_id("user=alice").unwrap();
        b.cert_type(CertType::User).unwrap();
        b.valid_principal("root").unwrap();
        b.sign(&ca).unwrap()
    }

    fn data(cert: &Certificate, algorithm: &str) -> SignedUserauth {
        SignedUserauth {
            session_id: vec![9; 32],
            user: "root+db-1".into(),
            algorithm: algorithm.into(),
            key_blob: cert.encode_vec().unwrap(),
        }
    }

    fn sign(key: &PrivateKey, data: &[u8], hash: Option<HashAlg>) -> Vec<u8> {
        let sig: Signature = match key.key_data() {
            KeypairData::Rsa(rsa) => (rsa, hash).try_sign(data).unwrap(),
            _ => key.try_sign(data).unwrap(),
        };
        sig.encode_vec().unwrap()
    }

    fn proof(key: &PrivateKey, d: &SignedUserauth, hash: Option<HashAlg>) -> UserProof {
        let bytes = d.encode();
        UserProof::from_raw(&bytes, &sign(key, &bytes, hash))
    }

    fn code(r: Result<VerifiedProof, (ErrorCode, String)>) -> &'static str {
        r.map(|_| "ok").unwrap_or_else(|(c, _)| c.as_str())
    }

    #[test]
    fn a_login_signature_by_the_certificate_key_is_a_proof() {
        let cases = [
            (Algorithm::Ed25519, "ssh-ed25519-cert-v01@openssh.com"),
            (
                Algorithm::Ecdsa {
                    curve: EcdsaCurve::NistP256,
                },
                "ecdsa-sha2-nistp256-cert-v01@openssh.com",
            ),
            (
                Algorithm::Ecdsa {
                    curve: EcdsaCurve::NistP384,
                },
                "ecdsa-sha2-nistp384-cert-v01@openssh.com",
            ),
        ];
        for (alg, name) in cases {
            let key = PrivateKey::random(&mut rng(), alg).unwrap();
            let cert = cert_for(&key);
            let d = data(&cert, name);
            let ok = verify(Some(&proof(&key, &d, None)), &cert).unwrap();
            assert_eq!(ok.session_hash, <[u8; 32]>::from(Sha256::digest([9; 32])));
            assert_eq!(ok.ssh_user, "root+db-1");
        }
    }

    #[test]
    fn rsa_proofs_use_sha2_and_the_hash_they_name() {
        let rsa = RsaKeypair::random(&mut rng(), 2048).unwrap();
        let key = PrivateKey::from(rsa);
        let cert = cert_for(&key);
        for (name, hash) in [
            ("rsa-sha2-256-cert-v01@openssh.com", HashAlg::Sha256),
            ("rsa-sha2-512-cert-v01@openssh.com", HashAlg::Sha512),
        ] {
            let d = data(&cert, name);
            assert_eq!(
                code(verify(Some(&proof(&key, &d, Some(hash))), &cert)),
                "ok"
            );
        }
        // Announce SHA-512, sign with SHA-256: refused.
        let d = data(&cert, "rsa-sha2-512-cert-v01@openssh.com");
        let mixed = proof(&key, &d, Some(HashAlg::Sha256));
        assert_eq!(code(verify(Some(&mixed), &cert)), CODE_INVALID);
        // ssh-rsa (SHA-1) is not accepted.
        let d = data(&cert, "ssh-rsa-cert-v01@openssh.com");
        let sha1 = proof(&key, &d, Some(HashAlg::Sha256));
        assert_eq!(code(verify(Some(&sha1), &cert)), CODE_INVALID);
    }

    #[test]
    fn missing_forged_and_foreign_proofs_are_refused() {
        let key = PrivateKey::random(&mut rng(), Algorithm::Ed25519).unwrap();
        let cert = cert_for(&key);
        let name = "ssh-ed25519-cert-v01@openssh.com";
        let d = data(&cert, name);
        assert_eq!(code(verify(None, &cert)), CODE_REQUIRED);

        // Signed by another key.
        let other = PrivateKey::random(&mut rng(), Algorithm::Ed25519).unwrap();
        assert_eq!(
            code(verify(Some(&proof(&other, &d, None)), &cert)),
            CODE_INVALID
        );
        // Signed data altered after signing (another session identifier).
        let good = proof(&key, &d, None);
        let mut altered = d.clone();
        altered.session_id[0] ^= 1;
        let tampered = UserProof {
            signed_data: UserProof::from_raw(&altered.encode(), b"").signed_data,
            signature: good.signature.clone(),
        };
        assert_eq!(code(verify(Some(&tampered), &cert)), CODE_INVALID);
        // A real login, but with another certificate of the same key.
        let second = cert_for(&key);
        let for_second = proof(&key, &data(&second, name), None);
        assert_eq!(code(verify(Some(&for_second), &cert)), CODE_INVALID);
        // The algorithm of another key type.
        let wrong_alg = proof(
            &key,
            &data(&cert, "ecdsa-sha2-nistp256-cert-v01@openssh.com"),
            None,
        );
        assert_eq!(code(verify(Some(&wrong_alg), &cert)), CODE_INVALID);
        // A plain-key algorithm name.
        let plain = proof(&key, &data(&cert, "ssh-ed25519"), None);
        assert_eq!(code(verify(Some(&plain), &cert)), CODE_INVALID);
        // Garbage, and bytes after the signature.
        let garbage = UserProof {
            signed_data: good.signed_data.clone(),
            signature: "AAAA".into(),
        };
        assert_eq!(code(verify(Some(&garbage), &cert)), CODE_INVALID);
        let bytes = d.encode();
        let mut sig = sign(&key, &bytes, None);
        sig.push(0);
        let trailing = UserProof::from_raw(&bytes, &sig);
        assert_eq!(code(verify(Some(&trailing), &cert)), CODE_INVALID);
        // The good one, for contrast.
        assert_eq!(code(verify(Some(&good), &cert)), "ok");
    }
}
