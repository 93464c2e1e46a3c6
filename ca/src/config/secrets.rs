//! Where secrets come from (the key passphrase, a token PIN): a 0600 file, an
//! environment variable or a systemd credential, and reading them without
//! leaving copies in the clear.

use std::path::{Path, PathBuf};

use secrecy::SecretString;

use crate::error::CaError;

/// Where the key passphrase (or a token PIN) comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PassphraseSource {
    /// A file (0600).
    File(PathBuf),
    /// An environment variable.
    Env(String),
    /// A systemd credential: the file of that name in `$CREDENTIALS_DIRECTORY`,
    /// which systemd fills from `LoadCredentialEncrypted=` or `LoadCredential=`
    /// when it starts the unit, so the passphrase never lies unencrypted on disk.
    Credential(String),
}

pub(super) const NO_PASSPHRASE_SOURCE: &str =
    "[keys] must set passphrase_credential, passphrase_file \
     or passphrase_env: the CA keys are encrypted and the daemon will not start without \
     their passphrase";
pub(super) const TWO_PASSPHRASE_SOURCES: &str =
    "[keys] sets more than one of passphrase_credential, \
     passphrase_file and passphrase_env; choose one";

/// The environment variable systemd sets to the directory of a unit's
/// credentials.
pub const CREDENTIALS_DIRECTORY: &str = "CREDENTIALS_DIRECTORY";

/// Where the systemd credential `name` is for this process: `None` when it was
/// not started with credentials.
pub fn credential_path(name: &str) -> Option<PathBuf> {
    let dir = std::env::var_os(CREDENTIALS_DIRECTORY).filter(|d| !d.is_empty())?;
    Some(Path::new(&dir).join(name))
}

/// A credential name must name one file inside the credentials directory.
pub fn check_credential_name(name: &str) -> Result<(), CaError> {
    if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\0']) {
        return Err(CaError::Config(format!(
            "[keys] passphrase_credential = {name:?} is not a credential name \
             (one file name, as in LoadCredentialEncrypted=NAME:…)"
        )));
    }
    Ok(())
}

/// Read a secret file (0600 or stricter) and drop the trailing line ends that
/// `echo` and editors add and no passphrase means.
pub(crate) fn read_secret_file(p: &Path) -> Result<SecretString, CaError> {
    check_private_file(p)?;
    let text = zeroize::Zeroizing::new(std::fs::read_to_string(p).map_err(|e| CaError::io(p, e))?);
    nonempty_passphrase(&text)
}

pub(crate) fn nonempty_passphrase(text: &str) -> Result<SecretString, CaError> {
    let trimmed = text.trim_end_matches(['\n', '\r']);
    if trimmed.is_empty() {
        return Err(CaError::Config("the key passphrase is empty".into()));
    }
    Ok(SecretString::from(trimmed.to_owned()))
}

/// Read the passphrase from the systemd credential `name`.
pub fn read_credential(name: &str) -> Result<SecretString, CaError> {
    read_credential_at(credential_path(name), name)
}

/// [`read_credential`] with the credential's path (`None`: no credentials
/// directory) already looked up.
pub(super) fn read_credential_at(
    path: Option<PathBuf>,
    name: &str,
) -> Result<SecretString, CaError> {
    check_credential_name(name)?;
    let Some(path) = path else {
        return Err(CaError::Config(format!(
            "the key passphrase is the systemd credential {name:?}, and ${CREDENTIALS_DIRECTORY} \
             is not set: start the CA from its unit (LoadCredentialEncrypted={name}:FILE) or \
             set {CREDENTIALS_DIRECTORY} to a directory holding the file {name}"
        )));
    };
    read_secret_file(&path)
}

impl PassphraseSource {
    /// Read the secret (`what`, for messages) from this source.
    pub fn read(&self, what: &str) -> Result<SecretString, CaError> {
        match self {
            PassphraseSource::File(p) => read_secret_file(p),
            PassphraseSource::Credential(name) => read_credential(name),
            PassphraseSource::Env(var) => {
                let text = zeroize::Zeroizing::new(std::env::var(var).map_err(|_| {
                    CaError::Config(format!(
                        "{what} variable {var} is not set; the CA will not start without it"
                    ))
                })?);
                nonempty_passphrase(&text)
            }
        }
    }
}

/// Refuse a secret file that group or others can read or write.
pub fn check_private_file(path: &Path) -> Result<(), CaError> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).map_err(|e| CaError::io(path, e))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(CaError::Config(format!(
            "{} has mode {mode:04o}; secret files must not be accessible by group or others \
             (chmod 600 {})",
            path.display(),
            path.display()
        )));
    }
    Ok(())
}
