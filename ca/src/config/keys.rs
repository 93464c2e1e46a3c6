//! Where the CA keys live: passphrase-encrypted files, or a PKCS#11 token
//! (`[keys] pkcs11`), and the token's settings as the config states them.

use std::path::PathBuf;

use secrecy::SecretString;
use serde::Deserialize;

use super::{check_credential_name, PassphraseSource};
use crate::error::CaError;

/// `[keys.pkcs11]`: the user and host CA keys live in a PKCS#11 token (an
/// HSM, or SoftHSM2), found by label; the private halves never leave it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPkcs11 {
    /// The vendor's PKCS#11 module (a shared library).
    pub module: PathBuf,
    /// The token's label.
    pub token: String,
    /// File holding the token's user PIN (mode 0600).
    #[serde(default)]
    pub pin_file: Option<PathBuf>,
    /// Environment variable holding the PIN.
    #[serde(default)]
    pub pin_env: Option<String>,
    /// systemd credential holding the PIN.
    #[serde(default)]
    pub pin_credential: Option<String>,
    /// Label of the user CA key. Default `rampart-user-ca`.
    #[serde(default = "default_user_ca_label")]
    pub user_ca: String,
    /// Label of the host CA key. Default `rampart-host-ca`.
    #[serde(default = "default_host_ca_label")]
    pub host_ca: String,
    /// Label of the audit checkpoint key. Default `rampart-audit`.
    #[serde(default = "default_audit_label")]
    pub audit: String,
}

fn default_audit_label() -> String {
    "rampart-audit".to_owned()
}

fn default_user_ca_label() -> String {
    "rampart-user-ca".to_owned()
}

fn default_host_ca_label() -> String {
    "rampart-host-ca".to_owned()
}

/// Where the user and host CA keys live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaKeys {
    /// Passphrase-encrypted OpenSSH key files.
    Files {
        /// User CA key file.
        user_ca: PathBuf,
        /// Host CA key file.
        host_ca: PathBuf,
    },
    /// A PKCS#11 token.
    Pkcs11(Pkcs11Keys),
}

/// `[keys.pkcs11]`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pkcs11Keys {
    /// The vendor's module.
    pub module: PathBuf,
    /// The token's label.
    pub token: String,
    /// Where the token's user PIN comes from.
    pub pin: PassphraseSource,
    /// Label of the user CA key.
    pub user_ca: String,
    /// Label of the host CA key.
    pub host_ca: String,
    /// Label of the audit checkpoint key.
    pub audit: String,
}

impl Pkcs11Keys {
    /// Read the PIN from its source.
    pub fn read_pin(&self) -> Result<SecretString, CaError> {
        self.pin.read("the PKCS#11 PIN")
    }
}

impl CaKeys {
    /// `[keys]` as the config states it: files (paths resolved by `abs`), or
    /// the token with exactly one PIN source and three distinct labels.
    pub(super) fn from_raw(
        raw: &super::RawKeys,
        abs: &dyn Fn(&std::path::Path) -> PathBuf,
    ) -> Result<CaKeys, CaError> {
        Ok(match &raw.pkcs11 {
            None => CaKeys::Files {
                user_ca: abs(&raw.user_ca),
                host_ca: abs(&raw.host_ca),
            },
            Some(p) => {
                let pin = match (&p.pin_file, &p.pin_env, &p.pin_credential) {
                    (Some(f), None, None) => PassphraseSource::File(abs(f)),
                    (None, Some(v), None) if !v.is_empty() => PassphraseSource::Env(v.clone()),
                    (None, None, Some(c)) => {
                        check_credential_name(c)?;
                        PassphraseSource::Credential(c.clone())
                    }
                    _ => {
                        return Err(CaError::Config(
                            "[keys.pkcs11] must set exactly one of pin_credential, pin_file                              or pin_env"
                                .into(),
                        ))
                    }
                };
                let labels = [&p.user_ca, &p.host_ca, &p.audit];
                if p.token.is_empty() || labels.iter().any(|l| l.is_empty()) {
                    return Err(CaError::Config(
                        "[keys.pkcs11] token, user_ca, host_ca and audit must not be empty".into(),
                    ));
                }
                if p.user_ca == p.host_ca || p.audit == p.user_ca || p.audit == p.host_ca {
                    return Err(CaError::Config(
                        "[keys.pkcs11] user_ca, host_ca and audit must name three keys: a \
                         host CA that is also the user CA would let host certificates log in \
                         as users, and the audit key signs nothing else"
                            .into(),
                    ));
                }
                CaKeys::Pkcs11(Pkcs11Keys {
                    module: abs(&p.module),
                    token: p.token.clone(),
                    pin,
                    user_ca: p.user_ca.clone(),
                    host_ca: p.host_ca.clone(),
                    audit: p.audit.clone(),
                })
            }
        })
    }
}
