//! Where the CA's three keys come from, and loading them: the user CA and host
//! CA keys (certificates) and the audit key (checkpoints), either
//! passphrase-encrypted OpenSSH files or objects in a PKCS#11 token
//! (`[keys] pkcs11`), which is opened once per process and yields all three.
//!
//! **Owns:** turning `[keys]` into signers (with the keys a rotation publishes
//! beside them), and the public audit key for the commands that only check.

use std::path::Path;
use std::sync::Arc;

use rampart_audit::{AuditError, CheckpointSigner};
use rampart_signer::{CaSigner, FileCaKey, Pkcs11CaKey, Pkcs11Token};
use secrecy::SecretString;
use ssh_key::PublicKey;

use crate::authority::Keys;
use crate::config::{CaKeys, Config, Pkcs11Keys};
use crate::error::CaError;
use crate::rotation::{Slots, TokenSlots};

/// The keys a serving CA signs with.
pub struct Loaded {
    /// The user and host CA keys.
    pub ca: Keys,
    /// The audit key.
    pub audit: Arc<dyn CheckpointSigner>,
}

impl std::fmt::Debug for Loaded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Loaded")
            .field("ca", &self.ca)
            .field(
                "audit",
                &self.audit.public_key().fingerprint(Default::default()),
            )
            .finish()
    }
}

/// One encrypted key file.
pub(crate) fn load_file(path: &Path, pass: &SecretString) -> Result<FileCaKey, CaError> {
    FileCaKey::load_encrypted(path, pass).map_err(|e| {
        CaError::Config(format!(
            "{}: {}",
            path.display(),
            rampart_api::report::one_line(&e)
        ))
    })
}

/// All three keys, from their files or their token.
pub fn load(config: &Config, pass: &SecretString) -> Result<Loaded, CaError> {
    match &config.ca_keys {
        CaKeys::Files { user_ca, host_ca } => {
            let also = |path: &Path| Ok::<_, CaError>(Slots::of(path).published()?.also_trusted());
            Ok(Loaded {
                ca: Keys {
                    also_trusted_user: also(user_ca)?,
                    also_trusted_host: also(host_ca)?,
                    ..Keys::from_files(load_file(user_ca, pass)?, load_file(host_ca, pass)?)
                },
                audit: Arc::new(load_file(&config.audit_key, pass)?.private_key().clone()),
            })
        }
        CaKeys::Pkcs11(p) => {
            let token = std::rc::Rc::new(open_token(p)?);
            let key = |label: &str| token.key(label).map_err(token_error);
            let also = |label: &str| {
                Ok::<_, CaError>(
                    TokenSlots::new(token.clone(), label)
                        .published()?
                        .also_trusted(),
                )
            };
            Ok(Loaded {
                ca: Keys {
                    user_ca: Box::new(key(&p.user_ca)?),
                    host_ca: Box::new(key(&p.host_ca)?),
                    also_trusted_user: also(&p.user_ca)?,
                    also_trusted_host: also(&p.host_ca)?,
                },
                audit: Arc::new(TokenAuditKey(key(&p.audit)?)),
            })
        }
    }
}

/// The audit public key, for checks that sign nothing.
pub fn audit_public_key(config: &Config, pass: &SecretString) -> Result<PublicKey, CaError> {
    match &config.ca_keys {
        CaKeys::Files { .. } => Ok(load_file(&config.audit_key, pass)?
            .private_key()
            .public_key()
            .clone()),
        CaKeys::Pkcs11(p) => {
            Ok(CaSigner::public_key(&open_token(p)?.key(&p.audit).map_err(token_error)?).clone())
        }
    }
}

/// Open and log in to the token `[keys] pkcs11` names.
pub(crate) fn open_token(p: &Pkcs11Keys) -> Result<Pkcs11Token, CaError> {
    let pin = p.read_pin()?;
    Pkcs11Token::open(&p.module, &p.token, &pin).map_err(token_error)
}

pub(crate) fn token_error(e: rampart_signer::SignerError) -> CaError {
    CaError::Config(format!("[keys] pkcs11: {e}"))
}

/// The audit key in a token, signing checkpoints.
struct TokenAuditKey(Pkcs11CaKey);

impl CheckpointSigner for TokenAuditKey {
    fn public_key(&self) -> &PublicKey {
        CaSigner::public_key(&self.0)
    }

    fn sign_raw(&self, data: &[u8]) -> Result<ssh_key::Signature, AuditError> {
        self.0
            .sign_raw(data)
            .map_err(|e| AuditError::Signature(e.to_string()))
    }
}
