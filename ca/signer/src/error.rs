//! The one error type of this crate.

use std::path::PathBuf;

/// Everything that can go wrong while loading a CA key, checking a subject key,
/// building a certificate or building a KRL.
///
/// Messages are written for the operator who reads them in a log or on a
/// terminal: they name the file, key type or field involved and what would be
/// accepted instead. They never contain secret material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignerError {
    /// A file-system operation on a key file failed.
    #[error("cannot {action} {path}: {source}")]
    Io {
        /// What we were doing ("create", "read", "inspect", ...).
        action: &'static str,
        /// The file involved.
        path: PathBuf,
        /// The underlying OS error.
        #[source]
        source: std::io::Error,
    },

    /// A key file already exists; we never overwrite key material.
    #[error("refusing to overwrite existing file {path}")]
    FileExists {
        /// The file that is already there.
        path: PathBuf,
    },

    /// A private-key file is readable or writable by group or others.
    #[error(
        "refusing to load {path}: its mode {mode:04o} allows group/other access; \
         run `chmod 600` on it"
    )]
    LoosePermissions {
        /// The private-key file.
        path: PathBuf,
        /// Its permission bits (`mode & 0o7777`).
        mode: u32,
    },

    /// A CA private-key file is stored without a passphrase.
    #[error("refusing to load {path}: the CA private key is not encrypted with a passphrase")]
    UnencryptedKey {
        /// The private-key file.
        path: PathBuf,
    },

    /// The passphrase did not decrypt the key file.
    #[error("cannot decrypt {path}: wrong passphrase")]
    WrongPassphrase {
        /// The private-key file.
        path: PathBuf,
    },

    /// A key file is not a valid OpenSSH private key.
    #[error("{path} is not a valid OpenSSH private key: {source}")]
    KeyFormat {
        /// The private-key file.
        path: PathBuf,
        /// What ssh-key reported.
        #[source]
        source: ssh_key::Error,
    },

    /// A key is of a type we will not use as a CA key.
    #[error("unsupported CA key type {key_type}: {reason}")]
    UnsupportedCaKey {
        /// The key type as OpenSSH names it, with a size where relevant.
        key_type: String,
        /// Why, and what would be accepted.
        reason: String,
    },

    /// A subject public key failed the subject-key policy.
    #[error(
        "subject key {key_type} refused: {reason}; accepted: ssh-ed25519, \
         ecdsa-sha2-nistp256, ecdsa-sha2-nistp384, ssh-rsa of at least 3072 bits, \
         sk-ssh-ed25519@openssh.com, sk-ecdsa-sha2-nistp256@openssh.com"
    )]
    SubjectKeyRefused {
        /// The key type as OpenSSH names it, with a size where relevant.
        key_type: String,
        /// Why this key was refused.
        reason: String,
    },

    /// A certificate spec could not be built from the grant and inputs.
    #[error("invalid certificate spec: {0}")]
    InvalidSpec(String),

    /// The MFA evidence does not match the factor the grant was issued for.
    #[error("MFA evidence is for method {evidence:?} but the grant was made for {grant:?}")]
    MfaMismatch {
        /// The method named by the grant's factor.
        grant: String,
        /// The method named by the evidence.
        evidence: String,
    },

    /// The operating system's random number generator failed.
    #[error("the OS random number generator failed")]
    Rng,

    /// A signing backend (file key, HSM, ...) failed to produce a signature.
    #[error("CA signing backend failed: {0}")]
    Backend(String),

    /// A freshly signed certificate did not verify against the CA key, so the
    /// backend signed with a different key or produced a bad signature.
    #[error("the signed certificate does not verify against the CA public key")]
    SelfCheckFailed,

    /// An SSH encoding or certificate-building step failed.
    #[error("SSH encoding error: {0}")]
    Ssh(#[from] ssh_key::Error),

    /// A KRL could not be built from the spec.
    #[error("invalid KRL spec: {0}")]
    InvalidKrl(String),

    /// A KRL read from outside (the CA's, fetched by a host) is not a
    /// well-formed OpenSSH KRL.
    #[error("{0}")]
    MalformedKrl(String),

    /// A key fingerprint string is not `SHA256:<base64 without padding>`.
    #[error("invalid fingerprint {input:?}: {reason}")]
    BadFingerprint {
        /// The string we were given.
        input: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}
