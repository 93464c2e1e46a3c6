//! `rampart-ca` configuration: the file-facing TOML shape ([`RawConfig`], every
//! table `deny_unknown_fields`, every option defaulted) and the validated
//! [`Config`] with paths resolved against the config file's directory.
//!
//! Key material is never inline: the config names files (which must be 0600) and
//! where the key passphrase comes from (a systemd credential, a file or an
//! environment variable).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;

use crate::error::CaError;
use crate::store::AttemptLimits;

mod database;
mod keys;
mod secrets;
#[cfg(test)]
mod tests;

pub use database::*;
pub use keys::*;
pub use secrets::*;

/// The only config format version this build reads.
pub const CONFIG_VERSION: u32 = 1;

/// The config file as written on disk.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Format version; must be 1.
    pub version: u32,
    /// Address of the HTTPS API. Default `127.0.0.1:8443`.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// Where identities, factors, sessions and certificates live: an SQLite
    /// file, or a `postgres://user@host:port/db` URL (several CAs may share
    /// one PostgreSQL database).
    #[serde(default = "default_database")]
    pub database: PathBuf,
    /// The PostgreSQL password, from a file (0600) rather than the URL.
    #[serde(default)]
    pub database_password_file: Option<PathBuf>,
    /// The PostgreSQL password, from the systemd credential of this name
    /// (the unit's `LoadCredentialEncrypted=`), so it is never a plain file.
    #[serde(default)]
    pub database_password_credential: Option<String>,
    /// CA certificates (PEM) that a PostgreSQL server's TLS certificate must
    /// chain to; when set, TLS is required and the server's name checked.
    #[serde(default)]
    pub database_tls_ca_file: Option<PathBuf>,
    /// Policy file.
    #[serde(default = "default_policy")]
    pub policy: PathBuf,
    /// Key files and their passphrase.
    pub keys: RawKeys,
    /// TLS certificate and key of the API.
    #[serde(default)]
    pub tls: RawTls,
    /// Audit log.
    #[serde(default)]
    pub audit: RawAudit,
    /// TOTP and failure limits.
    #[serde(default)]
    pub totp: RawTotp,
    /// Login sessions.
    #[serde(default)]
    pub sessions: RawSessions,
    /// Invites.
    #[serde(default)]
    pub invites: RawInvites,
    /// Admin requirements.
    #[serde(default)]
    pub admin: RawAdmin,
    /// The Prometheus `/metrics` listener (off unless `listen` is set).
    #[serde(default)]
    pub metrics: crate::metrics::RawMetrics,
    /// OpenID Connect providers (`[[oidc.providers]]`); none by default.
    #[serde(default)]
    pub oidc: crate::oidc::RawOidc,
    /// Security keys (WebAuthn/FIDO2); on by default for `https://localhost:<port>`.
    #[serde(default)]
    pub webauthn: crate::webauthn::RawWebauthn,
    /// Connection caps and timeouts of the HTTPS API.
    #[serde(default)]
    pub http: crate::connections::RawHttp,
    /// YubiKey PIV attestation (`[piv]`): trusted roots and accepted key
    /// policies; without roots, PIV-attested certificate requests are refused.
    #[serde(default)]
    pub piv: crate::piv::RawPiv,
}

/// `[keys]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawKeys {
    /// User CA private key (OpenSSH format, encrypted). Default `keys/user_ca`.
    #[serde(default = "default_user_ca")]
    pub user_ca: PathBuf,
    /// Host CA private key. Default `keys/host_ca`.
    #[serde(default = "default_host_ca")]
    pub host_ca: PathBuf,
    /// Audit checkpoint signing key. Default `keys/audit`.
    #[serde(default = "default_audit_key")]
    pub audit: PathBuf,
    /// File holding the passphrase (mode 0600 or stricter).
    #[serde(default)]
    pub passphrase_file: Option<PathBuf>,
    /// Environment variable holding the passphrase.
    #[serde(default)]
    pub passphrase_env: Option<String>,
    /// Name of the systemd credential holding the passphrase, read from
    /// `$CREDENTIALS_DIRECTORY` (the unit's `LoadCredentialEncrypted=`).
    #[serde(default)]
    pub passphrase_credential: Option<String>,
    /// The user and host CA keys in a PKCS#11 token instead of files.
    #[serde(default)]
    pub pkcs11: Option<RawPkcs11>,
}

/// `[tls]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTls {
    /// PEM certificate chain. Default `tls/cert.pem`.
    #[serde(default = "default_tls_cert")]
    pub cert: PathBuf,
    /// PEM private key (0600). Default `tls/key.pem`.
    #[serde(default = "default_tls_key")]
    pub key: PathBuf,
}

impl Default for RawTls {
    fn default() -> Self {
        RawTls {
            cert: default_tls_cert(),
            key: default_tls_key(),
        }
    }
}

/// `[audit]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAudit {
    /// Audit database: an SQLite file (default `audit.db`), or a
    /// `postgres://` URL for one log several CAs share.
    #[serde(default = "default_audit_db")]
    pub database: PathBuf,
    /// Password file for a `postgres://` audit database (0600). Default: the
    /// top-level `database_password_file`.
    #[serde(default)]
    pub database_password_file: Option<PathBuf>,
    /// Sign a checkpoint after this many events. Default 1000.
    #[serde(default = "default_checkpoint_events")]
    pub checkpoint_every_events: u64,
    /// …or after this long. Default `60s`.
    #[serde(default = "default_checkpoint_every")]
    pub checkpoint_every: String,
    /// SIEM forwarders (`[[audit.forwarders]]`), see [`crate::forwarders`]. Default none.
    #[serde(default)]
    pub forwarders: Vec<crate::forwarders::RawForwarder>,
    /// How long to keep audit events: `90d`, `12h`, `2w`, or `forever`. Older
    /// events are pruned up to a signed checkpoint, which becomes the anchor that
    /// `verify` starts from (see `rampart_audit::retention`). Default `forever`.
    #[serde(default = "default_retention")]
    pub retention: String,
    /// Append-only file that receives a copy of every signed checkpoint and
    /// retention anchor, so that a database cut back to an earlier checkpoint is
    /// caught (see `rampart_audit::witness`). Default: `audit.witness` beside
    /// the audit database (the database's name with the extension `witness`).
    #[serde(default)]
    pub witness_file: Option<PathBuf>,
}

fn default_retention() -> String {
    "forever".into()
}

impl Default for RawAudit {
    fn default() -> Self {
        RawAudit {
            database: default_audit_db(),
            database_password_file: None,
            checkpoint_every_events: default_checkpoint_events(),
            checkpoint_every: default_checkpoint_every(),
            forwarders: Vec::new(),
            retention: default_retention(),
            witness_file: None,
        }
    }
}

/// `[totp]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTotp {
    /// Failed factor checks (any factor) for one user from one source network
    /// (an IPv4 address, an IPv6 /64) before that pair is locked. Default 5.
    #[serde(default = "default_max_failures")]
    pub max_failures: u32,
    /// The first lock of a (user, network) pair; each further lock doubles it.
    /// Default `5m`.
    #[serde(default = "default_lockout")]
    pub lockout: String,
    /// The longest a pair lock gets through doubling. Default `1h`.
    #[serde(default = "default_max_lockout")]
    pub max_lockout: String,
    /// Failed factor checks for one user from all networks within
    /// `user_window` before the user is locked everywhere. Default 100.
    #[serde(default = "default_user_max_failures")]
    pub user_max_failures: u32,
    /// Window of the user-wide count. Default `1h`.
    #[serde(default = "default_max_lockout")]
    pub user_window: String,
    /// How long a user-wide lock lasts. Default `15m`.
    #[serde(default = "default_user_lockout")]
    pub user_lockout: String,
    /// Failed factor checks from one source network within `ip_window` before
    /// that network is refused. Default 20.
    #[serde(default = "default_ip_max_failures")]
    pub ip_max_failures: u32,
    /// Unauthenticated request starts (security-key logins, OIDC logins and
    /// device flows) from one source network within `ip_window`. Default 60.
    #[serde(default = "default_ip_max_starts")]
    pub ip_max_starts: u32,
    /// Window of the per-network limits. Default `5m`.
    #[serde(default = "default_lockout")]
    pub ip_window: String,
    /// Issuer shown by authenticator apps. Default `Rampart`.
    #[serde(default = "default_issuer")]
    pub issuer: String,
}

impl Default for RawTotp {
    fn default() -> Self {
        RawTotp {
            max_failures: default_max_failures(),
            lockout: default_lockout(),
            max_lockout: default_max_lockout(),
            user_max_failures: default_user_max_failures(),
            user_window: default_max_lockout(),
            user_lockout: default_user_lockout(),
            ip_max_failures: default_ip_max_failures(),
            ip_max_starts: default_ip_max_starts(),
            ip_window: default_lockout(),
            issuer: default_issuer(),
        }
    }
}

/// `[sessions]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSessions {
    /// Lifetime of a login session (the bearer token). Default `8h`.
    #[serde(default = "default_session_ttl")]
    pub ttl: String,
}

impl Default for RawSessions {
    fn default() -> Self {
        RawSessions {
            ttl: default_session_ttl(),
        }
    }
}

/// `[invites]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawInvites {
    /// Default invite lifetime. Default `24h`.
    #[serde(default = "default_invite_ttl")]
    pub default_ttl: String,
    /// Longest invite lifetime an admin may ask for. Default `7d`.
    #[serde(default = "default_invite_max_ttl")]
    pub max_ttl: String,
}

impl Default for RawInvites {
    fn default() -> Self {
        RawInvites {
            default_ttl: default_invite_ttl(),
            max_ttl: default_invite_max_ttl(),
        }
    }
}

/// `[admin]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAdmin {
    /// Admin operations need an MFA check younger than this. Default `1h`.
    #[serde(default = "default_admin_mfa_age")]
    pub max_mfa_age: String,
    /// May a session opened with a recovery code perform admin operations?
    /// Default false.
    #[serde(default)]
    pub allow_recovery: bool,
}

impl Default for RawAdmin {
    fn default() -> Self {
        RawAdmin {
            max_mfa_age: default_admin_mfa_age(),
            allow_recovery: false,
        }
    }
}

fn default_listen() -> String {
    "127.0.0.1:8443".into()
}
fn default_database() -> PathBuf {
    "ca.db".into()
}
fn default_policy() -> PathBuf {
    "policy.toml".into()
}
fn default_user_ca() -> PathBuf {
    "keys/user_ca".into()
}
fn default_host_ca() -> PathBuf {
    "keys/host_ca".into()
}
fn default_audit_key() -> PathBuf {
    "keys/audit".into()
}
fn default_tls_cert() -> PathBuf {
    "tls/cert.pem".into()
}
fn default_tls_key() -> PathBuf {
    "tls/key.pem".into()
}
fn default_audit_db() -> PathBuf {
    "audit.db".into()
}
fn default_checkpoint_events() -> u64 {
    1000
}
fn default_checkpoint_every() -> String {
    "60s".into()
}
fn default_max_failures() -> u32 {
    5
}
fn default_lockout() -> String {
    "5m".into()
}
fn default_ip_max_failures() -> u32 {
    20
}
fn default_ip_max_starts() -> u32 {
    60
}
fn default_max_lockout() -> String {
    "1h".into()
}
fn default_user_max_failures() -> u32 {
    100
}
fn default_user_lockout() -> String {
    "15m".into()
}
fn default_issuer() -> String {
    "Rampart".into()
}
fn default_session_ttl() -> String {
    "8h".into()
}
fn default_invite_ttl() -> String {
    "24h".into()
}
fn default_invite_max_ttl() -> String {
    "7d".into()
}
fn default_admin_mfa_age() -> String {
    "1h".into()
}

/// The validated configuration, paths absolute.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the config file lives.
    pub path: PathBuf,
    /// API address.
    pub listen: SocketAddr,
    /// Connection caps and timeouts of the API.
    pub http: crate::connections::HttpLimits,
    /// State database.
    pub database: Database,
    /// Policy file.
    pub policy: PathBuf,
    /// Where the user and host CA keys live.
    pub ca_keys: CaKeys,
    /// Audit key file (with the keys in a token: only its `.pub` exists,
    /// for the tools that verify checkpoints).
    pub audit_key: PathBuf,
    /// Passphrase source.
    pub passphrase: PassphraseSource,
    /// TLS certificate.
    pub tls_cert: PathBuf,
    /// TLS key.
    pub tls_key: PathBuf,
    /// Where the audit log lives.
    pub audit_database: rampart_audit::AuditStore,
    /// Checkpoint cadence in events.
    pub checkpoint_every_events: u64,
    /// Checkpoint cadence in time.
    pub checkpoint_every: Duration,
    /// SIEM forwarders.
    pub forwarders: Vec<crate::forwarders::ForwarderConfig>,
    /// Audit retention window (`None`: keep forever).
    pub audit_retention: Option<chrono::Duration>,
    /// The audit witness file (absolute).
    pub audit_witness: PathBuf,
    /// What the authority itself needs: factor limits, lifetimes, admin rules.
    pub authority: crate::authority::Settings,
    /// `[metrics]`.
    pub metrics: crate::metrics::MetricsConfig,
    /// OpenID Connect providers, validated, secrets read.
    pub oidc: Vec<crate::oidc::ProviderSettings>,
    /// `[webauthn]`, validated.
    pub webauthn: crate::webauthn::Settings,
    /// `[piv]`: the attestation verifier, `None` when no root is configured.
    pub piv: Option<crate::piv::PivVerifier>,
}

/// Failure limits for factor checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Locks per (user, source network) and per user.
    pub attempts: AttemptLimits,
    /// Failures per source network per window, whatever the user.
    pub ip_max_failures: u32,
    /// Unauthenticated request starts per source network per window.
    pub ip_max_starts: u32,
    /// Window of the per-network limits.
    pub ip_window: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            attempts: AttemptLimits {
                max_failures: 5,
                lockout: Duration::from_secs(300),
                max_lockout: Duration::from_secs(3600),
                user_max_failures: 100,
                user_window: Duration::from_secs(3600),
                user_lockout: Duration::from_secs(900),
            },
            ip_max_failures: 20,
            ip_max_starts: 60,
            ip_window: Duration::from_secs(300),
        }
    }
}

/// Where `database_password_credential = NAME` puts the password: the
/// file NAME in `$CREDENTIALS_DIRECTORY`. Refused beside
/// `database_password_file` (`file_too`), or outside a unit with credentials.
/// `lookup` is [`secrets::credential_path`] (tests pass their own).
fn database_password_credential(
    name: Option<&str>,
    file_too: bool,
    lookup: impl Fn(&str) -> Option<PathBuf>,
) -> Result<Option<PathBuf>, CaError> {
    let Some(name) = name else {
        return Ok(None);
    };
    if file_too {
        return Err(CaError::Config(
            "database_password_credential and database_password_file are both set; choose one"
                .into(),
        ));
    }
    if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\0']) {
        return Err(CaError::Config(format!(
            "database_password_credential = {name:?} is not a credential name (one file name, \
             as in LoadCredentialEncrypted=NAME:…)"
        )));
    }
    lookup(name).map(Some).ok_or_else(|| {
        CaError::Config(format!(
            "the database password is the systemd credential {name:?}, and \
             ${} is not set: start the CA from its unit (LoadCredentialEncrypted={name}:FILE)",
            secrets::CREDENTIALS_DIRECTORY
        ))
    })
}

impl Config {
    /// Read and validate a config file. Does not touch keys or databases.
    pub fn load(path: &Path) -> Result<Config, CaError> {
        let text = std::fs::read_to_string(path).map_err(|e| CaError::io(path, e))?;
        let raw: RawConfig = toml::from_str(&text).map_err(|e| {
            let at = rampart_api::report::at_line(&text, e.span(), e.message());
            CaError::Config(format!("{}: {at}", path.display()))
        })?;
        let base = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        let base = std::fs::canonicalize(&base).unwrap_or(base);
        Config::from_raw(raw, path, &base)
    }

    fn from_raw(raw: RawConfig, path: &Path, base: &Path) -> Result<Config, CaError> {
        if raw.version != CONFIG_VERSION {
            return Err(CaError::Config(format!(
                "version = {} is not supported; this rampart-ca reads version {CONFIG_VERSION}",
                raw.version
            )));
        }
        let listen: SocketAddr = raw.listen.parse().map_err(|_| {
            CaError::Config(format!(
                "listen = {:?} is not an address like 127.0.0.1:8443",
                raw.listen
            ))
        })?;
        let abs = |p: &Path| base.join(p);
        let passphrase = match (
            &raw.keys.passphrase_file,
            &raw.keys.passphrase_env,
            &raw.keys.passphrase_credential,
        ) {
            (Some(f), None, None) => PassphraseSource::File(abs(f)),
            (None, Some(v), None) if !v.is_empty() => PassphraseSource::Env(v.clone()),
            (None, None, Some(c)) => {
                check_credential_name(c)?;
                PassphraseSource::Credential(c.clone())
            }
            (None, None, None) | (None, Some(_), None) => {
                return Err(CaError::Config(NO_PASSPHRASE_SOURCE.into()))
            }
            _ => return Err(CaError::Config(TWO_PASSPHRASE_SOURCES.into())),
        };
        let ca_keys = CaKeys::from_raw(&raw.keys, &abs)?;
        let dur = |key: &str, v: &str| {
            parse_duration(v).map_err(|e| CaError::Config(format!("{key} = {v:?}: {e}")))
        };
        let lockout = dur("[totp] lockout", &raw.totp.lockout)?;
        let max_lockout = dur("[totp] max_lockout", &raw.totp.max_lockout)?;
        if lockout > max_lockout {
            return Err(CaError::Config(
                "[totp] lockout is longer than max_lockout".into(),
            ));
        }
        let max_failures = raw.totp.max_failures.max(1);
        if raw.totp.user_max_failures < max_failures {
            return Err(CaError::Config(
                "[totp] user_max_failures is below max_failures: one network could lock \
                 the user everywhere"
                    .into(),
            ));
        }
        let limits = Limits {
            attempts: AttemptLimits {
                max_failures,
                lockout,
                max_lockout,
                user_max_failures: raw.totp.user_max_failures,
                user_window: dur("[totp] user_window", &raw.totp.user_window)?,
                user_lockout: dur("[totp] user_lockout", &raw.totp.user_lockout)?,
            },
            ip_max_failures: raw.totp.ip_max_failures.max(1),
            ip_max_starts: raw.totp.ip_max_starts.max(1),
            ip_window: dur("[totp] ip_window", &raw.totp.ip_window)?,
        };
        let invite_default_ttl = dur("[invites] default_ttl", &raw.invites.default_ttl)?;
        let invite_max_ttl = dur("[invites] max_ttl", &raw.invites.max_ttl)?;
        if invite_default_ttl > invite_max_ttl {
            return Err(CaError::Config(
                "[invites] default_ttl is longer than max_ttl".into(),
            ));
        }
        let credential_password = database_password_credential(
            raw.database_password_credential.as_deref(),
            raw.database_password_file.is_some(),
            secrets::credential_path,
        )?;
        let pg_files = PgFiles {
            password: credential_password
                .as_deref()
                .or(raw.database_password_file.as_deref()),
            tls_ca: raw.database_tls_ca_file.as_deref(),
        };
        let (audit_database, audit_witness) = audit_store(&raw.audit, pg_files, base)?;
        let recordings_dir = match audit_database.sqlite_path() {
            Some(db) => db.parent().unwrap_or(base).to_path_buf(),
            None => base.to_path_buf(),
        }
        .join(crate::authority::sessions::RECORDINGS_DIR);
        let recordings_database = match &audit_database {
            rampart_audit::AuditStore::Postgres(db) => Some(db.clone()),
            rampart_audit::AuditStore::Sqlite(_) => None,
        };
        let audit_retention = rampart_audit::retention::parse_retention(&raw.audit.retention)
            .map_err(|e| CaError::Config(format!("[audit] {e}")))?;
        if audit_retention.is_some() && audit_database.sqlite_path().is_none() {
            return Err(CaError::Config(
                "[audit] retention: pruning a PostgreSQL audit log is not supported yet; \
                 keep retention = \"forever\" (the default) and archive with \
                 `rampart audit export`"
                    .into(),
            ));
        }
        Ok(Config {
            path: path.to_path_buf(),
            listen,
            database: Database::from_raw(&raw.database, pg_files, base)?,
            policy: abs(&raw.policy),
            ca_keys,
            audit_key: abs(&raw.keys.audit),
            passphrase,
            tls_cert: abs(&raw.tls.cert),
            tls_key: abs(&raw.tls.key),
            audit_database,
            checkpoint_every_events: raw.audit.checkpoint_every_events.max(1),
            checkpoint_every: dur("[audit] checkpoint_every", &raw.audit.checkpoint_every)?,
            forwarders: crate::forwarders::validate(&raw.audit.forwarders, base)?,
            audit_retention,
            audit_witness,
            oidc: crate::oidc::validate(&raw.oidc, base)?,
            webauthn: crate::webauthn::validate_in(&raw.webauthn, listen, base)?,
            piv: crate::piv::validate(&raw.piv, base)?,
            http: crate::connections::HttpLimits::from_raw(&raw.http, dur)?,
            authority: crate::authority::Settings {
                limits,
                totp_issuer: raw.totp.issuer,
                session_ttl: dur("[sessions] ttl", &raw.sessions.ttl)?,
                invite_default_ttl,
                invite_max_ttl,
                admin_max_mfa_age: dur("[admin] max_mfa_age", &raw.admin.max_mfa_age)?,
                admin_allow_recovery: raw.admin.allow_recovery,
                recordings_dir,
                recordings_database,
            },
            metrics: crate::metrics::MetricsConfig::from_raw(&raw.metrics)?,
        })
    }

    /// The private key files (none when the keys live in a token).
    pub fn key_files(&self) -> Vec<&Path> {
        match &self.ca_keys {
            CaKeys::Files { user_ca, host_ca } => vec![user_ca, host_ca, &self.audit_key],
            CaKeys::Pkcs11(_) => Vec::new(),
        }
    }

    /// Read the key passphrase from its source. A passphrase file must not be
    /// readable by group or others.
    pub fn read_passphrase(&self) -> Result<SecretString, CaError> {
        self.passphrase.read("the key passphrase")
    }

    /// The file the passphrase is read from, if it is a file (a credential
    /// counts when `$CREDENTIALS_DIRECTORY` is set).
    pub fn passphrase_path(&self) -> Option<PathBuf> {
        match &self.passphrase {
            PassphraseSource::File(p) => Some(p.clone()),
            PassphraseSource::Credential(name) => credential_path(name),
            PassphraseSource::Env(_) => None,
        }
    }
}

/// Parse `90s`, `30m`, `1h30m`, `7d` into a duration: the same grammar as the
/// policy file, so one spelling works in both.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    rampart_policy::parse_duration(s.trim())
}
