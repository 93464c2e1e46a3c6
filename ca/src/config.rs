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
    /// Audit database. Default `audit.db`.
    #[serde(default = "default_audit_db")]
    pub database: PathBuf,
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

const NO_PASSPHRASE_SOURCE: &str = "[keys] must set passphrase_credential, passphrase_file \
     or passphrase_env: the CA keys are encrypted and the daemon will not start without \
     their passphrase";
const TWO_PASSPHRASE_SOURCES: &str = "[keys] sets more than one of passphrase_credential, \
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
fn read_credential_at(path: Option<PathBuf>, name: &str) -> Result<SecretString, CaError> {
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

/// Where the CA's state lives.
#[derive(Debug, Clone)]
pub enum Database {
    /// An SQLite file (absolute path): one CA.
    Sqlite(PathBuf),
    /// A PostgreSQL database, possibly shared by several CAs.
    Postgres(PostgresDatabase),
}

/// `database = "postgres://…"` and its password file. `Debug` and
/// [`PostgresDatabase::redacted`] never show a password.
#[derive(Clone)]
pub struct PostgresDatabase {
    url: String,
    /// `database_password_file` (absolute), read when the store is opened.
    pub password_file: Option<PathBuf>,
}

impl std::fmt::Debug for PostgresDatabase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresDatabase")
            .field("url", &self.redacted())
            .field("password_file", &self.password_file)
            .finish()
    }
}

impl PostgresDatabase {
    /// The URL with any password masked, for messages and logs.
    pub fn redacted(&self) -> String {
        crate::store::postgres::redact_url(&self.url)
    }

    /// The connection target, with the password file read (it must be 0600).
    pub fn target(&self) -> Result<crate::store::postgres::PgTarget, CaError> {
        let password = self
            .password_file
            .as_deref()
            .map(read_secret_file)
            .transpose()?;
        crate::store::postgres::PgTarget::new(&self.url, password)
            .map_err(|e| CaError::Config(format!("database: {e}")))
    }
}

impl Database {
    fn from_raw(
        raw: &Path,
        password_file: Option<&Path>,
        base: &Path,
    ) -> Result<Database, CaError> {
        let text = raw.to_str().unwrap_or_default();
        if crate::store::postgres::is_postgres_url(text) {
            // Checked now (the URL parses, no TLS asked for), connected later.
            crate::store::postgres::PgTarget::new(text, None)
                .map_err(|e| CaError::Config(format!("database: {e}")))?;
            return Ok(Database::Postgres(PostgresDatabase {
                url: text.to_owned(),
                password_file: password_file.map(|p| base.join(p)),
            }));
        }
        if password_file.is_some() {
            return Err(CaError::Config(
                "database_password_file is for a postgres:// database; this one is an \
                 SQLite file"
                    .into(),
            ));
        }
        Ok(Database::Sqlite(base.join(raw)))
    }

    /// The SQLite file, if that is the backend.
    pub fn sqlite_path(&self) -> Option<&Path> {
        match self {
            Database::Sqlite(p) => Some(p),
            Database::Postgres(_) => None,
        }
    }
}

impl std::fmt::Display for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Database::Sqlite(p) => write!(f, "{}", p.display()),
            Database::Postgres(pg) => f.write_str(&pg.redacted()),
        }
    }
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
    /// Audit database.
    pub audit_database: PathBuf,
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
        let ca_keys = match &raw.keys.pkcs11 {
            None => CaKeys::Files {
                user_ca: abs(&raw.keys.user_ca),
                host_ca: abs(&raw.keys.host_ca),
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
        };
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
        Ok(Config {
            path: path.to_path_buf(),
            listen,
            database: Database::from_raw(
                &raw.database,
                raw.database_password_file.as_deref(),
                base,
            )?,
            policy: abs(&raw.policy),
            ca_keys,
            audit_key: abs(&raw.keys.audit),
            passphrase,
            tls_cert: abs(&raw.tls.cert),
            tls_key: abs(&raw.tls.key),
            audit_database: abs(&raw.audit.database),
            checkpoint_every_events: raw.audit.checkpoint_every_events.max(1),
            checkpoint_every: dur("[audit] checkpoint_every", &raw.audit.checkpoint_every)?,
            forwarders: crate::forwarders::validate(&raw.audit.forwarders, base)?,
            audit_retention: rampart_audit::retention::parse_retention(&raw.audit.retention)
                .map_err(|e| CaError::Config(format!("[audit] {e}")))?,
            audit_witness: match &raw.audit.witness_file {
                Some(w) => abs(w),
                None => abs(&raw.audit.database).with_extension("witness"),
            },
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

/// Parse `90s`, `30m`, `1h30m`, `7d` into a duration: the same grammar as the
/// policy file, so one spelling works in both.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    rampart_policy::parse_duration(s.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minimal() -> String {
        "version = 1\n[keys]\npassphrase_env = \"RAMPART_TEST_PASS\"\n".into()
    }

    fn with_database(lines: &str) -> Result<Config, CaError> {
        let raw: RawConfig = toml::from_str(&format!("{lines}\n{}", minimal())).unwrap();
        Config::from_raw(
            raw,
            Path::new("/etc/rampart/ca.toml"),
            Path::new("/etc/rampart"),
        )
    }

    #[test]
    fn a_postgres_url_selects_postgres_and_its_password_stays_hidden() {
        let cfg = with_database(
            "database = \"postgres://ca:hunter2@db.internal:5432/rampart\"\n\
             database_password_file = \"secrets/db-password\"",
        )
        .unwrap();
        let Database::Postgres(pg) = &cfg.database else {
            panic!("not postgres: {:?}", cfg.database);
        };
        assert_eq!(
            pg.password_file.as_deref(),
            Some(Path::new("/etc/rampart/secrets/db-password"))
        );
        assert_eq!(cfg.database.sqlite_path(), None);
        let shown = format!("{cfg:?} {}", cfg.database);
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("postgres://ca:***@db.internal:5432/rampart"));
    }

    /// The password comes from the file, and reaches a server that demands it.
    #[test]
    fn the_database_password_file_is_used_to_log_in() {
        use std::os::unix::fs::PermissionsExt;
        let pg = crate::store::postgres::testing::TestPostgres::start();
        let url = pg.create_role_with_password("rampart", "s3cret-pw");
        let dir = tempfile::tempdir().unwrap();
        let pw = dir.path().join("db-password");
        std::fs::write(&pw, "s3cret-pw\n").unwrap();
        std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o600)).unwrap();
        let raw: RawConfig = toml::from_str(&format!(
            "database = \"{url}\"\ndatabase_password_file = \"db-password\"\n{}",
            minimal()
        ))
        .unwrap();
        let cfg = Config::from_raw(raw, &dir.path().join("ca.toml"), dir.path()).unwrap();
        let Database::Postgres(db) = &cfg.database else {
            panic!("not postgres");
        };
        let store = crate::store::postgres::PostgresStore::open(&db.target().unwrap()).unwrap();
        assert_eq!(
            store.schema_version().unwrap(),
            crate::store::postgres::SCHEMA_VERSION
        );
        // Without it, or with a wrong one, the server refuses; the error does
        // not carry the password.
        let none = crate::store::postgres::PgTarget::new(&url, None).unwrap();
        assert!(crate::store::postgres::PostgresStore::open(&none).is_err());
        let wrong =
            crate::store::postgres::PgTarget::new(&url, Some("not-it".to_owned().into())).unwrap();
        let e = crate::store::postgres::PostgresStore::open(&wrong).unwrap_err();
        assert!(!e.to_string().contains("not-it"), "{e}");
        // A password file others may read is refused before any connection.
        std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(db.target().is_err());
    }

    #[test]
    fn database_settings_that_cannot_work_are_refused() {
        let e = with_database("database_password_file = \"pw\"").unwrap_err();
        assert!(e.to_string().contains("postgres://"), "{e}");
        let e =
            with_database("database = \"postgres://ca@db/rampart?sslmode=require\"").unwrap_err();
        assert!(e.to_string().contains("TLS"), "{e}");
        let e =
            with_database("database = \"postgres://ca:hunter2@db:notaport/rampart\"").unwrap_err();
        assert!(!e.to_string().contains("hunter2"), "{e}");
    }

    #[test]
    fn durations_parse_and_refuse_garbage() {
        assert_eq!(parse_duration("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("7d").unwrap(), Duration::from_secs(604_800));
        for bad in ["", "0s", "10", "5x", "h", "-1h", "99999999999999999999d"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn defaults_fill_a_minimal_file() {
        let raw: RawConfig = toml::from_str(&minimal()).unwrap();
        let cfg = Config::from_raw(
            raw,
            Path::new("/etc/rampart/ca.toml"),
            Path::new("/etc/rampart"),
        )
        .unwrap();
        assert_eq!(cfg.listen.to_string(), "127.0.0.1:8443");
        assert_eq!(
            cfg.database.sqlite_path(),
            Some(Path::new("/etc/rampart/ca.db"))
        );
        assert_eq!(cfg.authority.limits.attempts.max_failures, 5);
        assert_eq!(cfg.authority.session_ttl, Duration::from_secs(8 * 3600));
        assert_eq!(
            cfg.passphrase,
            PassphraseSource::Env("RAMPART_TEST_PASS".into())
        );
    }

    #[test]
    fn unknown_keys_and_missing_passphrase_are_refused() {
        let err = toml::from_str::<RawConfig>(&format!("{}[totp]\nmax_failure = 3\n", minimal()))
            .unwrap_err();
        assert!(err.to_string().contains("unknown field"), "{err}");
        let raw: RawConfig = toml::from_str("version = 1\n[keys]\n").unwrap();
        let err = Config::from_raw(raw, Path::new("c.toml"), Path::new(".")).unwrap_err();
        assert!(err.to_string().contains("passphrase"), "{err}");
        let raw: RawConfig =
            toml::from_str("version = 2\n[keys]\npassphrase_env = \"X\"\n").unwrap();
        assert!(Config::from_raw(raw, Path::new("c.toml"), Path::new(".")).is_err());
    }

    #[test]
    fn ca_keys_are_files_or_a_token_with_one_pin_source_and_two_labels() {
        let cfg = |keys: &str| {
            let raw: RawConfig = toml::from_str(&format!(
                "version = 1\n[keys]\npassphrase_env = \"X\"\n{keys}"
            ))
            .unwrap();
            Config::from_raw(
                raw,
                Path::new("/etc/rampart/c.toml"),
                Path::new("/etc/rampart"),
            )
        };
        assert_eq!(
            cfg("").unwrap().ca_keys,
            CaKeys::Files {
                user_ca: PathBuf::from("/etc/rampart/keys/user_ca"),
                host_ca: PathBuf::from("/etc/rampart/keys/host_ca"),
            }
        );
        let token = cfg("pkcs11 = { module = \"/usr/lib/softhsm/libsofthsm2.so\", token = \"ca\", pin_file = \"pin\" }\n")
            .unwrap();
        assert_eq!(
            token.ca_keys,
            CaKeys::Pkcs11(Pkcs11Keys {
                module: PathBuf::from("/usr/lib/softhsm/libsofthsm2.so"),
                token: "ca".into(),
                pin: PassphraseSource::File(PathBuf::from("/etc/rampart/pin")),
                user_ca: "rampart-user-ca".into(),
                host_ca: "rampart-host-ca".into(),
                audit: "rampart-audit".into(),
            })
        );
        assert!(
            token.key_files().is_empty(),
            "no key file to read or back up"
        );
        for (bad, why) in [
            ("pkcs11 = { module = \"m\", token = \"ca\" }", "exactly one of"),
            (
                "pkcs11 = { module = \"m\", token = \"ca\", pin_file = \"p\", pin_env = \"P\" }",
                "exactly one of",
            ),
            (
                "pkcs11 = { module = \"m\", token = \"ca\", pin_env = \"P\", user_ca = \"k\", host_ca = \"k\" }",
                "three keys",
            ),
            (
                "pkcs11 = { module = \"m\", token = \"ca\", pin_env = \"P\", audit = \"rampart-user-ca\" }",
                "three keys",
            ),
            (
                "pkcs11 = { module = \"m\", token = \"\", pin_env = \"P\" }",
                "must not be empty",
            ),
        ] {
            let err = cfg(&format!("{bad}\n")).unwrap_err();
            assert!(err.to_string().contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn a_credential_is_one_file_in_the_credentials_directory() {
        use secrecy::ExposeSecret as _;
        use std::os::unix::fs::PermissionsExt;
        let cfg = |keys: &str| {
            let raw: RawConfig = toml::from_str(&format!("version = 1\n[keys]\n{keys}")).unwrap();
            Config::from_raw(raw, Path::new("c.toml"), Path::new("."))
        };
        assert_eq!(
            cfg("passphrase_credential = \"ca-passphrase\"\n")
                .unwrap()
                .passphrase,
            PassphraseSource::Credential("ca-passphrase".into())
        );
        for bad in ["", ".", "..", "../pass", "a/b"] {
            let err = cfg(&format!("passphrase_credential = {bad:?}\n")).unwrap_err();
            assert!(
                err.to_string().contains("not a credential name"),
                "{bad:?}: {err}"
            );
        }
        let err = cfg("passphrase_credential = \"c\"\npassphrase_env = \"X\"\n").unwrap_err();
        assert!(err.to_string().contains("more than one"), "{err}");

        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ca-passphrase");
        // Without a credentials directory the error says how the CA gets one.
        let err = read_credential_at(None, "ca-passphrase").unwrap_err();
        assert!(err.to_string().contains("CREDENTIALS_DIRECTORY"), "{err}");
        assert!(read_credential_at(Some(p.clone()), "ca-passphrase").is_err());
        std::fs::write(&p, "long enough passphrase\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o400)).unwrap();
        let pass = read_credential_at(Some(p.clone()), "ca-passphrase").unwrap();
        assert_eq!(pass.expose_secret(), "long enough passphrase");
        // Readable by others: refused like any other secret file.
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o444)).unwrap();
        assert!(read_credential_at(Some(p.clone()), "ca-passphrase").is_err());
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::write(&p, "\n").unwrap();
        let err = read_credential_at(Some(p), "ca-passphrase").unwrap_err();
        assert!(err.to_string().contains("empty"), "{err}");
    }

    #[test]
    fn loose_secret_files_are_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("pass");
        std::fs::write(&p, "x").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(check_private_file(&p).is_err());
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(check_private_file(&p).is_ok());
    }
}
