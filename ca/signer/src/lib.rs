//! `rampart-signer`: turns approved specs into OpenSSH certificates and KRLs.
//!
//! It owns:
//! - the CA key seam ([`CaSigner`]) and its encrypted-file backend
//!   ([`FileCaKey`]; a PKCS#11 HSM backend will implement the same trait);
//! - the subject-key policy ([`check_subject_key`]);
//! - user and host certificate specs, which can only be built from a
//!   `rampart_policy::Grant`/`HostGrant`, and their signing;
//! - the OpenSSH binary KRL encoder ([`build_krl`]) and the header check hosts
//!   run on a fetched KRL ([`read_krl_header`]).
//!
//! It must never do network I/O or read the system clock: every time is a
//! parameter (`now`, `generated_at`). The only outside inputs it draws on are
//! the OS random number generator (certificate nonces, key generation,
//! key-file encryption salts) and the CA key files it is told to read/write.

mod backend;
mod cert;
mod error;
mod grant;
mod krl;
mod pkcs11;
mod subject;

pub use backend::{CaSigner, FileCaKey};
pub use cert::{
    sign_host_cert, sign_user_cert, HostCertSpec, MfaEvidence, UserCertSpec, BACKDATE,
    EXT_BASTION_SESSION, EXT_MFA_EVENT, EXT_MFA_METHOD, EXT_MFA_TIME, EXT_USER_ADDRESS,
    EXT_USER_SOURCE_ADDRESS, OPT_SOURCE_ADDRESS,
};
pub use error::SignerError;
pub use grant::BastionSession;
pub use krl::{build_krl, key_sha256, parse_fingerprint, read_krl_header, KrlHeader, KrlSpec};
pub use pkcs11::{Pkcs11CaKey, Pkcs11Token, TokenPublicKey, MAX_SESSIONS as PKCS11_MAX_SESSIONS};
pub use subject::{check_subject_key, MIN_RSA_BITS};
