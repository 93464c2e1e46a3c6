//! CA key backends: the [`CaSigner`] seam and the encrypted-file backend.
//!
//! Certificate and KRL code only ever sees `&dyn CaSigner`, so a PKCS#11 HSM
//! backend can be added later without touching them.

use std::ffi::OsString;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};
use ssh_key::private::{Ed25519Keypair, KeypairData};
use ssh_key::{HashAlg, LineEnding, PrivateKey, PublicKey, Signature};
use zeroize::Zeroizing;

use crate::error::SignerError;

/// The signing seam between certificate building and where the CA key lives.
///
/// `sign_raw` signs `data` exactly as OpenSSH would sign a certificate's
/// to-be-signed bytes with this key (PROTOCOL.certkeys: "signature is computed
/// over all preceding fields from the initial string up to, and including the
/// signature key"), returning an SSH signature blob.
pub trait CaSigner: Send + Sync {
    /// The CA's public key; it goes into every certificate's `signature key`.
    fn public_key(&self) -> &PublicKey;

    /// Sign `data` with the CA private key.
    ///
    /// # Errors
    /// [`SignerError::Backend`] (or another variant) if the backend cannot sign.
    fn sign_raw(&self, data: &[u8]) -> Result<Signature, SignerError>;
}

/// Largest private-key file we read. An OpenSSH RSA-16384 key is ~13 KiB; a
/// file much bigger than that is not a key and is not read into memory.
const MAX_KEY_FILE: u64 = 64 * 1024;

/// A CA key held in an OpenSSH private-key file encrypted with a passphrase
/// (bcrypt-pbkdf + aes256-ctr, the format `ssh-keygen -N` writes).
///
/// The decrypted key lives only in memory; ssh-key zeroizes it on drop.
pub struct FileCaKey {
    key: PrivateKey,
}

impl FileCaKey {
    /// Generate a new Ed25519 CA key from the OS random number generator.
    ///
    /// # Errors
    /// [`SignerError::Rng`] if the OS RNG fails.
    pub fn generate(comment: &str) -> Result<Self, SignerError> {
        let mut seed = Zeroizing::new([0u8; 32]);
        ssh_key::getrandom::fill(seed.as_mut_slice()).map_err(|_| SignerError::Rng)?;
        let keypair = Ed25519Keypair::from_seed(&seed);
        let key = PrivateKey::new(KeypairData::Ed25519(keypair), comment)?;
        Ok(Self { key })
    }

    /// Wrap an already decrypted private key, checking that it is a type we
    /// sign with (Ed25519, ECDSA P-256/P-384, RSA >= 3072 bits).
    ///
    /// # Errors
    /// [`SignerError::UnsupportedCaKey`] for any other key, or an encrypted one.
    pub fn from_private_key(key: PrivateKey) -> Result<Self, SignerError> {
        if key.is_encrypted() {
            return Err(SignerError::UnsupportedCaKey {
                key_type: key.algorithm().to_string(),
                reason: "the key is still encrypted".to_owned(),
            });
        }
        check_ca_key(key.public_key())?;
        Ok(Self { key })
    }

    /// Write the key to `path` in OpenSSH private-key format, encrypted with
    /// `passphrase`, and its public half to `<path>.pub`.
    ///
    /// The private file is created with mode 0600 (atomically, at `open`), and
    /// neither file may already exist: key material is never overwritten.
    ///
    /// # Errors
    /// [`SignerError::FileExists`], [`SignerError::Io`], or
    /// [`SignerError::InvalidSpec`] for an empty passphrase.
    pub fn write_encrypted(
        &self,
        path: &Path,
        passphrase: &SecretString,
    ) -> Result<(), SignerError> {
        if passphrase.expose_secret().is_empty() {
            return Err(SignerError::InvalidSpec(
                "a CA key passphrase must not be empty".to_owned(),
            ));
        }
        let pub_path = pub_path(path);
        for p in [path, pub_path.as_path()] {
            if p.symlink_metadata().is_ok() {
                return Err(SignerError::FileExists { path: p.to_owned() });
            }
        }

        let encrypted = self.key.encrypt(
            &mut ssh_key::getrandom::SysRng,
            passphrase.expose_secret().as_bytes(),
        )?;
        let pem = encrypted.to_openssh(LineEnding::LF)?;
        write_new_file(path, pem.as_bytes(), 0o600)?;

        // Either both files exist afterwards or neither does: a private key
        // without its .pub would block a retry with FileExists.
        let public = match self.key.public_key().to_openssh() {
            Ok(p) => p,
            Err(e) => {
                let _ = std::fs::remove_file(path);
                return Err(e.into());
            }
        };
        write_new_file(&pub_path, format!("{public}\n").as_bytes(), 0o644).inspect_err(|_| {
            let _ = std::fs::remove_file(path);
        })
    }

    /// Load a CA key written by [`FileCaKey::write_encrypted`] or by
    /// `ssh-keygen -N <passphrase>`.
    ///
    /// # Errors
    /// - [`SignerError::LoosePermissions`] if group or others have any access;
    /// - [`SignerError::UnencryptedKey`] if the file has no passphrase;
    /// - [`SignerError::WrongPassphrase`] if the passphrase does not decrypt it;
    /// - [`SignerError::KeyFormat`] / [`SignerError::Io`] for unreadable files;
    /// - [`SignerError::UnsupportedCaKey`] for key types we do not sign with.
    pub fn load_encrypted(path: &Path, passphrase: &SecretString) -> Result<Self, SignerError> {
        let io_err = |action, source| SignerError::Io {
            action,
            path: path.to_owned(),
            source,
        };
        let file = File::open(path).map_err(|e| io_err("open", e))?;
        let meta = file.metadata().map_err(|e| io_err("inspect", e))?;
        if !meta.is_file() {
            return Err(io_err(
                "read",
                std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a regular file"),
            ));
        }
        check_private_mode(path, &meta)?;
        if meta.len() > MAX_KEY_FILE {
            return Err(SignerError::KeyFormat {
                path: path.to_owned(),
                source: ssh_key::Error::FormatEncoding,
            });
        }
        let mut text = Zeroizing::new(String::new());
        file.take(MAX_KEY_FILE)
            .read_to_string(&mut text)
            .map_err(|e| io_err("read", e))?;

        let parsed =
            PrivateKey::from_openssh(text.as_bytes()).map_err(|source| SignerError::KeyFormat {
                path: path.to_owned(),
                source,
            })?;
        if !parsed.is_encrypted() {
            return Err(SignerError::UnencryptedKey {
                path: path.to_owned(),
            });
        }
        let key = parsed
            .decrypt(passphrase.expose_secret().as_bytes())
            .map_err(|e| match e {
                // A wrong passphrase yields garbage plaintext whose two
                // "checkint" words disagree (PROTOCOL.key), reported as Crypto.
                ssh_key::Error::Crypto => SignerError::WrongPassphrase {
                    path: path.to_owned(),
                },
                source => SignerError::KeyFormat {
                    path: path.to_owned(),
                    source,
                },
            })?;
        Self::from_private_key(key)
    }

    /// The decrypted private key (the audit log signs checkpoints with it).
    #[must_use]
    pub fn private_key(&self) -> &PrivateKey {
        &self.key
    }

    /// The key's SHA-256 fingerprint, `SHA256:<base64>`, as `ssh-keygen -l` prints it.
    #[must_use]
    pub fn fingerprint(&self) -> String {
        self.key.fingerprint(HashAlg::Sha256).to_string()
    }
}

impl CaSigner for FileCaKey {
    fn public_key(&self) -> &PublicKey {
        self.key.public_key()
    }

    fn sign_raw(&self, data: &[u8]) -> Result<Signature, SignerError> {
        signature::Signer::try_sign(&self.key, data)
            .map_err(|e| SignerError::Backend(format!("file key: {e}")))
    }
}

impl fmt::Debug for FileCaKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileCaKey")
            .field("algorithm", &self.key.algorithm().as_str())
            .field("fingerprint", &self.fingerprint())
            .finish_non_exhaustive()
    }
}

/// CA keys we sign with: the subject-key set minus security keys (a CA key in
/// a file cannot be a FIDO token).
fn check_ca_key(key: &PublicKey) -> Result<(), SignerError> {
    let data = key.key_data();
    if data.is_sk_ed25519() || data.is_sk_ecdsa_p256() {
        return Err(SignerError::UnsupportedCaKey {
            key_type: key.algorithm().to_string(),
            reason: "security-key (sk-*) keys cannot be used as a file CA key".to_owned(),
        });
    }
    crate::subject::check_subject_key(key).map_err(|e| match e {
        SignerError::SubjectKeyRefused { key_type, reason } => SignerError::UnsupportedCaKey {
            key_type,
            reason: format!(
                "{reason}; accepted CA keys: ssh-ed25519, ecdsa-sha2-nistp256, \
                 ecdsa-sha2-nistp384, ssh-rsa of at least 3072 bits"
            ),
        },
        other => other,
    })
}

fn pub_path(path: &Path) -> PathBuf {
    let mut s: OsString = path.as_os_str().to_owned();
    s.push(".pub");
    PathBuf::from(s)
}

/// Create `path` (which must not exist) with `mode`, write `bytes`, fsync.
fn write_new_file(path: &Path, bytes: &[u8], mode: u32) -> Result<(), SignerError> {
    let io_err = |action, source| SignerError::Io {
        action,
        path: path.to_owned(),
        source,
    };
    let mut opts = OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = opts.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            SignerError::FileExists {
                path: path.to_owned(),
            }
        } else {
            io_err("create", e)
        }
    })?;
    let written = file
        .write_all(bytes)
        .map_err(|e| io_err("write", e))
        .and_then(|()| file.sync_all().map_err(|e| io_err("sync", e)));
    if written.is_err() {
        // Do not leave a truncated key file behind.
        let _ = std::fs::remove_file(path);
    }
    written
}

#[cfg(unix)]
fn check_private_mode(path: &Path, meta: &std::fs::Metadata) -> Result<(), SignerError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(SignerError::LoosePermissions {
            path: path.to_owned(),
            mode,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private_mode(_path: &Path, _meta: &std::fs::Metadata) -> Result<(), SignerError> {
    Ok(())
}

/// Adapts a `&dyn CaSigner` to ssh-key's `SigningKey` (a `signature::Signer`
/// plus "which public key am I"), which `certificate::Builder::sign` wants.
///
/// `signature::Error` cannot carry our error, so the backend's error is kept
/// here and handed back by [`SignerAdapter::take_error`].
pub(crate) struct SignerAdapter<'a> {
    inner: &'a dyn CaSigner,
    error: std::sync::Mutex<Option<SignerError>>,
}

impl<'a> SignerAdapter<'a> {
    pub(crate) fn new(inner: &'a dyn CaSigner) -> Self {
        Self {
            inner,
            error: std::sync::Mutex::new(None),
        }
    }

    pub(crate) fn take_error(&self) -> Option<SignerError> {
        self.error.lock().ok().and_then(|mut e| e.take())
    }
}

impl signature::Signer<Signature> for SignerAdapter<'_> {
    fn try_sign(&self, msg: &[u8]) -> signature::Result<Signature> {
        self.inner.sign_raw(msg).map_err(|e| {
            if let Ok(mut slot) = self.error.lock() {
                *slot = Some(e);
            }
            signature::Error::new()
        })
    }
}

impl From<&SignerAdapter<'_>> for ssh_key::public::KeyData {
    fn from(adapter: &SignerAdapter<'_>) -> Self {
        adapter.inner.public_key().key_data().clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pass(s: &str) -> SecretString {
        SecretString::from(s.to_owned())
    }

    #[test]
    fn debug_shows_only_fingerprint() {
        let key = FileCaKey::generate("ca").unwrap();
        let dbg = format!("{key:?}");
        assert!(dbg.contains(&key.fingerprint()), "{dbg}");
        assert!(dbg.contains("ssh-ed25519"), "{dbg}");
        let secret = key
            .private_key()
            .key_data()
            .ed25519()
            .unwrap()
            .private
            .to_bytes();
        let secret_b64 = format!("{secret:?}");
        assert!(!dbg.contains(&secret_b64));
        assert!(!dbg.contains("private"), "{dbg}");
    }

    #[test]
    fn round_trip_and_refusals() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("user_ca");
        let key = FileCaKey::generate("rampart user CA").unwrap();
        key.write_encrypted(&path, &pass("correct horse")).unwrap();

        let loaded = FileCaKey::load_encrypted(&path, &pass("correct horse")).unwrap();
        assert_eq!(loaded.fingerprint(), key.fingerprint());
        assert_eq!(loaded.public_key(), key.public_key());

        // Refuses to overwrite.
        let err = key.write_encrypted(&path, &pass("x")).unwrap_err();
        assert!(matches!(err, SignerError::FileExists { .. }), "{err}");

        let err = FileCaKey::load_encrypted(&path, &pass("wrong")).unwrap_err();
        assert!(matches!(err, SignerError::WrongPassphrase { .. }), "{err}");
        assert!(err.to_string().contains("wrong passphrase"));

        let err = key
            .write_encrypted(&dir.path().join("other"), &pass(""))
            .unwrap_err();
        assert!(matches!(err, SignerError::InvalidSpec(_)), "{err}");
    }

    #[test]
    fn signs_and_verifies() {
        let key = FileCaKey::generate("ca").unwrap();
        let sig = key.sign_raw(b"hello").unwrap();
        signature::Verifier::verify(key.public_key().key_data(), b"hello", &sig).unwrap();
        assert!(signature::Verifier::verify(key.public_key().key_data(), b"hellO", &sig).is_err());
    }
}
