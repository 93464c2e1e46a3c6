//! Signed checkpoints: an SSHSIG signature by the audit key over a chain position.
//!
//! The signature format is OpenSSH's `PROTOCOL.sshsig` ("Armored SSH signatures"),
//! the same format `ssh-keygen -Y sign` writes, so stock OpenSSH can check a
//! checkpoint without Rampart (see the crate documentation for the command).

use chrono::{DateTime, Utc};
use ssh_key::{HashAlg, LineEnding, PrivateKey, PublicKey, SshSig};

use crate::event::canonical_time;
use crate::AuditError;

/// The SSHSIG namespace for checkpoint signatures. PROTOCOL.sshsig: "The purpose
/// of the namespace value is to specify a unambiguous interpretation domain for
/// the signature", so an audit-key signature can never be replayed as, say, a git
/// commit signature.
pub const CHECKPOINT_NAMESPACE: &str = "rampart-audit@rampart";

/// What signs checkpoints: the audit key, held in memory ([`PrivateKey`]) or
/// elsewhere (a PKCS#11 token, through the CA's adapter). It signs raw bytes;
/// [`Checkpoint::sign`] wraps the signature in the SSHSIG envelope.
pub trait CheckpointSigner: Send + Sync {
    /// The audit public key.
    fn public_key(&self) -> &PublicKey;

    /// Sign `data` (an SSHSIG's signed-data blob) with the audit key.
    ///
    /// # Errors
    /// [`AuditError::Signature`] when the key cannot sign.
    fn sign_raw(&self, data: &[u8]) -> Result<ssh_key::Signature, AuditError>;
}

impl CheckpointSigner for PrivateKey {
    fn public_key(&self) -> &PublicKey {
        PrivateKey::public_key(self)
    }

    fn sign_raw(&self, data: &[u8]) -> Result<ssh_key::Signature, AuditError> {
        signature::Signer::try_sign(self, data).map_err(|e| AuditError::Signature(e.to_string()))
    }
}

/// A signed statement "the chain had hash H at sequence N".
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// Sequence number of the last event covered.
    pub seq: u64,
    /// That event's chain hash.
    pub hash: [u8; 32],
    /// That event's time (not the wall-clock time of signing: the crate reads no clock).
    pub time: DateTime<Utc>,
    /// The armored SSHSIG signature (`-----BEGIN SSH SIGNATURE-----`).
    pub signature: String,
}

/// The exact bytes that are signed:
/// `rampart-audit-checkpoint v1\nseq=<n>\nhash=<64 hex>\ntime=<rfc3339>\n`.
pub fn checkpoint_message(seq: u64, hash: &[u8; 32], time: &str) -> String {
    format!(
        "rampart-audit-checkpoint v1\nseq={seq}\nhash={}\ntime={time}\n",
        hex::encode(hash)
    )
}

impl Checkpoint {
    /// Sign a checkpoint for (`seq`, `hash`, `time`) with the audit key.
    pub fn sign(
        key: &dyn CheckpointSigner,
        seq: u64,
        hash: [u8; 32],
        time: DateTime<Utc>,
    ) -> Result<Checkpoint, AuditError> {
        let msg = checkpoint_message(seq, &hash, &canonical_time(&time));
        // PROTOCOL.sshsig: the signature is over the "signed data" blob (magic,
        // namespace, reserved, hash algorithm, H(message)), built here so any
        // signer of raw bytes can make one.
        let blob = SshSig::signed_data(CHECKPOINT_NAMESPACE, HashAlg::Sha512, msg.as_bytes())?;
        let raw = key.sign_raw(&blob)?;
        let sig = SshSig::new(
            key.public_key().key_data().clone(),
            CHECKPOINT_NAMESPACE,
            HashAlg::Sha512,
            raw,
        )?;
        let signature = sig.to_pem(LineEnding::LF)?;
        Ok(Checkpoint {
            seq,
            hash,
            time,
            signature,
        })
    }

    /// The message this checkpoint's signature covers.
    pub fn message(&self) -> String {
        checkpoint_message(self.seq, &self.hash, &canonical_time(&self.time))
    }

    /// Check the signature against the audit public key.
    pub fn verify(&self, key: &PublicKey) -> Result<(), AuditError> {
        verify_signature(key, self.message().as_bytes(), &self.signature)
    }
}

/// Check an armored SSHSIG over `msg` in the checkpoint namespace.
pub(crate) fn verify_signature(
    key: &PublicKey,
    msg: &[u8],
    armored: &str,
) -> Result<(), AuditError> {
    let sig = SshSig::from_pem(armored)?;
    key.verify(CHECKPOINT_NAMESPACE, msg, &sig)?;
    Ok(())
}

/// A line for an OpenSSH `allowed_signers` file that trusts `key` for checkpoint
/// signatures only, under the name `principal`:
/// `<principal> namespaces="rampart-audit@rampart" ssh-ed25519 AAAA…`.
pub fn allowed_signers_line(key: &PublicKey, principal: &str) -> Result<String, AuditError> {
    let mut k = key.clone();
    k.set_comment("");
    Ok(format!(
        "{principal} namespaces=\"{CHECKPOINT_NAMESPACE}\" {}",
        k.to_openssh()?.trim_end()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use ssh_key::private::Ed25519Keypair;

    fn key(seed: u8) -> PrivateKey {
        PrivateKey::from(Ed25519Keypair::from_seed(&[seed; 32]))
    }

    #[test]
    fn message_format_is_exact() {
        let m = checkpoint_message(42, &[0x11; 32], "2025-01-01T00:00:00.000000000Z");
        assert_eq!(
            m,
            format!(
                "rampart-audit-checkpoint v1\nseq=42\nhash={}\ntime=2025-01-01T00:00:00.000000000Z\n",
                "11".repeat(32)
            )
        );
    }

    #[test]
    fn sign_verify_and_negative_cases() {
        let t = Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap();
        let k = key(1);
        let cp = Checkpoint::sign(&k, 10, [3; 32], t).unwrap();
        assert!(cp.signature.starts_with("-----BEGIN SSH SIGNATURE-----"));
        cp.verify(k.public_key()).unwrap();
        // another key
        assert!(cp.verify(key(2).public_key()).is_err());
        // altered fields
        for altered in [
            Checkpoint {
                seq: 11,
                ..cp.clone()
            },
            Checkpoint {
                hash: [4; 32],
                ..cp.clone()
            },
            Checkpoint {
                time: t + chrono::Duration::seconds(1),
                ..cp.clone()
            },
            Checkpoint {
                signature: "garbage".into(),
                ..cp.clone()
            },
        ] {
            assert!(altered.verify(k.public_key()).is_err(), "{altered:?}");
        }
        // right key, wrong namespace: a git-style signature must not pass as a checkpoint
        let other = k
            .sign("git", HashAlg::Sha512, cp.message().as_bytes())
            .unwrap();
        let forged = Checkpoint {
            signature: other.to_pem(LineEnding::LF).unwrap(),
            ..cp.clone()
        };
        assert!(forged.verify(k.public_key()).is_err());
    }

    #[test]
    fn allowed_signers_line_names_namespace() {
        let line = allowed_signers_line(key(1).public_key(), "audit@rampart").unwrap();
        assert!(
            line.starts_with("audit@rampart namespaces=\"rampart-audit@rampart\" ssh-ed25519 AAAA")
        );
        assert!(!line.ends_with(' '));
    }
}
