//! The local state directory (`$RAMPART_HOME`, default `~/.rampart`, mode 0700):
//! `config.toml`, `session.json`, the file key and its certificate, and the
//! Include-able `ssh_config` with its `known_hosts`.
//!
//! Every file is written atomically (temporary file in the same directory, fsync,
//! rename) with its final mode set at creation, so a crash never leaves a
//! half-written key or a world-readable token.

use std::fs::{self, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use zeroize::Zeroize as _;

use crate::error::CliError;

/// File name of the file key.
pub const KEY_FILE: &str = "id_ed25519";

/// Paths inside one state directory.
#[derive(Debug, Clone)]
pub struct Home {
    dir: PathBuf,
}

impl Home {
    /// `--home` / `$RAMPART_HOME`, else `~/.rampart`.
    pub fn resolve(flag: Option<PathBuf>) -> Result<Self, CliError> {
        let dir = match flag {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => {
                let home = std::env::var_os("HOME")
                    .filter(|h| !h.is_empty())
                    .ok_or_else(|| {
                        CliError::Usage(
                            "cannot find your home directory: set HOME, RAMPART_HOME or pass --home"
                                .to_owned(),
                        )
                    })?;
                PathBuf::from(home).join(".rampart")
            }
        };
        // Absolute paths end up in ssh_config, which ssh reads from anywhere.
        let dir = if dir.is_absolute() {
            dir
        } else {
            std::env::current_dir()
                .context("cannot read the current directory")?
                .join(dir)
        };
        Ok(Home { dir })
    }

    /// A home at an explicit path (`dev` keeps the admin's session in its own).
    pub fn new(dir: PathBuf) -> Self {
        Home { dir }
    }

    /// A home at an explicit path, for tests.
    #[cfg(test)]
    pub fn at(dir: &Path) -> Self {
        Home::new(dir.to_path_buf())
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Create the directory (0700) if it does not exist.
    pub fn ensure(&self) -> Result<(), CliError> {
        if !self.dir.exists() {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&self.dir)
                .with_context(|| format!("cannot create {}", self.dir.display()))?;
        }
        Ok(())
    }

    /// `config.toml`.
    pub fn config_path(&self) -> PathBuf {
        self.dir.join("config.toml")
    }
    /// `session.json`.
    pub fn session_path(&self) -> PathBuf {
        self.dir.join("session.json")
    }
    /// The file key's private half.
    pub fn key_path(&self) -> PathBuf {
        self.dir.join(KEY_FILE)
    }
    /// The file key's certificate, where ssh-add and ssh look for it.
    pub fn cert_path(&self) -> PathBuf {
        self.dir.join(format!("{KEY_FILE}-cert.pub"))
    }
    /// `ssh_config`.
    pub fn ssh_config_path(&self) -> PathBuf {
        self.dir.join("ssh_config")
    }
    /// `known_hosts`.
    pub fn known_hosts_path(&self) -> PathBuf {
        self.dir.join("known_hosts")
    }

    /// Read `config.toml`; a missing file is an empty config.
    pub fn load_config(&self) -> Result<Config, CliError> {
        let path = self.config_path();
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Config::default()),
            Err(e) => {
                return Err(anyhow::Error::new(e)
                    .context(format!("cannot read {}", path.display()))
                    .into())
            }
        };
        toml::from_str(&text).map_err(|e| {
            CliError::Other(anyhow::anyhow!(
                "{} is not a valid rampart config: {}",
                path.display(),
                e.message()
            ))
        })
    }

    /// Write `config.toml` (0600).
    pub fn save_config(&self, config: &Config) -> Result<(), CliError> {
        self.ensure()?;
        let text = toml::to_string(config).context("cannot encode config.toml")?;
        write_atomic(&self.config_path(), text.as_bytes(), 0o600)
    }

    /// Read `session.json`; `None` when there is none.
    pub fn load_session(&self) -> Result<Option<Session>, CliError> {
        let path = self.session_path();
        let mut text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(anyhow::Error::new(e)
                    .context(format!("cannot read {}", path.display()))
                    .into())
            }
        };
        let parsed = serde_json::from_str::<Session>(&text);
        text.zeroize();
        parsed.map(Some).map_err(|e| {
            CliError::NotLoggedIn(format!(
                "{} is damaged ({e}); log in again (`rampart login`)",
                path.display()
            ))
        })
    }

    /// The session, if it exists and has not expired at `now`.
    pub fn live_session(&self, now: DateTime<Utc>) -> Result<Session, CliError> {
        match self.load_session()? {
            Some(s) if s.expires_at > now => Ok(s),
            _ => Err(CliError::log_in_first()),
        }
    }

    /// Write `session.json` (0600).
    pub fn save_session(&self, session: &Session) -> Result<(), CliError> {
        self.ensure()?;
        let mut text = serde_json::to_string_pretty(session).context("cannot encode session")?;
        let res = write_atomic(&self.session_path(), text.as_bytes(), 0o600);
        text.zeroize();
        res
    }
}

/// `config.toml`: what `enroll` and `login` remember so later commands need no flags.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// CA base URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_url: Option<String>,
    /// SHA-256 pin of the CA's TLS certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_fingerprint: Option<String>,
    /// Rampart user name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// ssh_config `Host` patterns the certificate is offered to besides the CA's
    /// bastions (`rampart login --ssh-host`, remembered).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ssh_hosts: Vec<String>,
}

/// `session.json`: the bearer token and what the CA said about it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Session {
    /// Bearer token. Zeroized on drop, never in `Debug`.
    pub token: rampart_api::WireSecret,
    /// User.
    pub user: String,
    /// Admin rights.
    pub admin: bool,
    /// Factor used (`totp`, `recovery`).
    pub mfa_method: String,
    /// When the factor was verified.
    pub mfa_time: DateTime<Utc>,
    /// Session end.
    pub expires_at: DateTime<Utc>,
    /// Certificate obtained with this session (so `status` and `logout` find an
    /// agent-key certificate too). Not in the original contract; optional.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_file: Option<PathBuf>,
    /// Private key file that was added to ssh-agent, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_added_key: Option<PathBuf>,
}

/// Write `bytes` to `path` atomically with `mode`: a temporary file in the same
/// directory (created with the final mode, so secrets are never readable by others
/// even for a moment, and set to it again past the umask), fsync, rename over the
/// target, fsync the directory (so the rename itself survives a power cut). On
/// failure the temporary file is removed and `path` is untouched.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<(), CliError> {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".to_owned());
    let nanos = crate::clock::now().timestamp_subsec_nanos();
    let tmp = dir.join(format!(".{name}.tmp-{}-{nanos}", std::process::id()));
    let result = (|| -> std::io::Result<()> {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        f.set_permissions(fs::Permissions::from_mode(mode))?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        fs::File::open(&dir)?.sync_all()
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(CliError::Other(
            anyhow::Error::new(e).context(format!("cannot write {}", path.display())),
        ));
    }
    Ok(())
}

/// Remove a file; a file that is already gone is fine.
pub fn remove_if_exists(path: &Path) -> Result<bool, CliError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(CliError::Other(
            anyhow::Error::new(e).context(format!("cannot remove {}", path.display())),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    fn session(expires_at: DateTime<Utc>) -> Session {
        Session {
            token: "tok-secret".into(),
            user: "alice".into(),
            admin: true,
            mfa_method: "totp".into(),
            mfa_time: Utc::now(),
            expires_at,
            cert_file: None,
            agent_added_key: None,
        }
    }

    #[test]
    fn config_round_trips_and_rejects_unknown_keys() {
        let tmp = tempfile::tempdir().unwrap();
        let home = Home::at(&tmp.path().join("h"));
        assert_eq!(home.load_config().unwrap(), Config::default());
        let cfg = Config {
            ca_url: Some("https://ca:8443".into()),
            ca_fingerprint: Some("SHA256:abc".into()),
            user: Some("alice".into()),
            ssh_hosts: vec!["db-*".into()],
        };
        home.save_config(&cfg).unwrap();
        assert_eq!(home.load_config().unwrap(), cfg);
        let dir_mode = fs::metadata(home.dir()).unwrap().permissions().mode() & 0o777;
        assert_eq!(dir_mode, 0o700);
        let mode = fs::metadata(home.config_path())
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);

        fs::write(home.config_path(), "ca_url = 'x'\nbogus = 1\n").unwrap();
        let err = home.load_config().unwrap_err().one_line();
        assert!(err.contains("unknown field"), "{err}");
    }

    #[test]
    fn session_is_private_redacted_and_expires() {
        let tmp = tempfile::tempdir().unwrap();
        let home = Home::at(tmp.path());
        let now = crate::clock::now();
        assert!(home.load_session().unwrap().is_none());
        assert_eq!(
            home.live_session(now).unwrap_err().to_string(),
            "log in first (`rampart login`)"
        );
        home.save_session(&session(now + chrono::Duration::hours(1)))
            .unwrap();
        let mode = fs::metadata(home.session_path())
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
        let s = home.live_session(now).unwrap();
        assert_eq!(s.token.expose(), "tok-secret");
        assert!(!format!("{s:?}").contains("tok-secret"));

        home.save_session(&session(now - chrono::Duration::seconds(1)))
            .unwrap();
        assert!(home.live_session(now).is_err());

        fs::write(home.session_path(), "{not json").unwrap();
        let err = home.load_session().unwrap_err();
        assert_eq!(err.exit_code(), crate::error::EXIT_NOT_LOGGED_IN);
    }

    #[test]
    fn atomic_write_replaces_and_sets_mode() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("f");
        write_atomic(&p, b"one", 0o644).unwrap();
        write_atomic(&p, b"two", 0o600).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let leftovers: Vec<_> = fs::read_dir(tmp.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1);
        let err = write_atomic(&tmp.path().join("no/such/dir/f"), b"x", 0o600).unwrap_err();
        assert!(
            err.one_line().starts_with("cannot write"),
            "{}",
            err.one_line()
        );
        assert!(remove_if_exists(&p).unwrap());
        assert!(!remove_if_exists(&p).unwrap());
    }
}
