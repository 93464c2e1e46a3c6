//! `rampart-ca init`: a new CA in a directory — the user CA, host CA and audit
//! keys (Ed25519, OpenSSH format, passphrase-encrypted), a self-signed TLS
//! certificate for the API, the databases, a commented config and policy, and a
//! one-time invite for the bootstrap admin.

use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use rampart_api::{CreateUserRequest, Fingerprint, InviteRequest};
use rampart_audit::{EventKind, NewEvent, Outcome};
use rampart_signer::FileCaKey;
use secrecy::{ExposeSecret as _, SecretString};
use serde::Serialize;

use crate::clock::SystemClock;
use crate::config::Config;
use crate::error::CaError;
use crate::secrets;
use crate::server::{self, SEAL_SALT};
use crate::store::postgres::{PgTarget, PostgresStore};
use crate::store::sqlite::SqliteStore;
use crate::store::{MetaStore, UserStore};

mod config_template;

use config_template::{config_text, config_text_with, postgres_audit_lines};

/// The policy a new CA starts with.
pub const DEFAULT_POLICY: &str = include_str!("../default_policy.toml");

/// Name of the systemd credential the packaged unit loads the passphrase from
/// (`LoadCredentialEncrypted=ca-passphrase:/etc/rampart/ca-passphrase.cred`).
pub const SYSTEMD_CREDENTIAL: &str = "ca-passphrase";

/// Where `init` gets the key passphrase, and so where the daemon will.
///
/// A passphrase stored beside the keys it encrypts protects nothing against
/// whoever copies the directory (a backup, a snapshot, a disk image), so that is
/// never the default: a production CA's passphrase is typed at `init` (or handed
/// to it as a credential) and given to the daemon as a systemd credential, or
/// comes from a file or variable the operator names.
#[derive(Debug, Clone)]
pub enum PassphraseChoice {
    /// This passphrase (typed at the terminal, or read from the credential);
    /// the daemon reads it from the systemd credential [`SYSTEMD_CREDENTIAL`],
    /// which the operator creates with `systemd-creds encrypt`.
    SystemdCredential(SecretString),
    /// Read it from this file, and name the file in the config.
    File(PathBuf),
    /// Read it from this environment variable, and name the variable in the config.
    Env(String),
    /// Generate a random one into `<dir>/secrets/passphrase` (0600), beside the
    /// keys it encrypts: only for a throwaway CA (`rampart dev`, tests).
    /// `rampart-ca check` warns about it.
    InsecureBesideKeys,
}

/// Options of `init`.
#[derive(Debug, Clone)]
pub struct InitOptions {
    /// Directory to create (must not hold a config yet).
    pub dir: PathBuf,
    /// API listen address.
    pub listen: String,
    /// Name of the bootstrap admin.
    pub admin: String,
    /// Passphrase source.
    pub passphrase: PassphraseChoice,
    /// Extra DNS names or IP addresses for the TLS certificate.
    pub extra_names: Vec<String>,
    /// Make the user and host CA keys inside this PKCS#11 token instead of
    /// key files.
    pub pkcs11: Option<Pkcs11Init>,
    /// Keep the CA's state in this PostgreSQL database rather than `ca.db`.
    pub database: Option<InitPostgres>,
}

/// `--database postgres://…` and `--database-password-file` of `init`.
#[derive(Clone)]
pub struct InitPostgres {
    /// The URL (its password, if any, is never shown).
    pub url: String,
    /// A file (0600) holding the password.
    pub password_file: Option<PathBuf>,
    /// CA certificates (PEM) the server's TLS certificate must chain to:
    /// TLS required and verified.
    pub tls_ca_file: Option<PathBuf>,
}

impl std::fmt::Debug for InitPostgres {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InitPostgres")
            .field("url", &crate::store::postgres::redact_url(&self.url))
            .field("password_file", &self.password_file)
            .field("tls_ca_file", &self.tls_ca_file)
            .finish()
    }
}

/// The empty PostgreSQL database `init` will fill, opened before any file is
/// written so that a wrong URL leaves nothing behind; and the config lines
/// naming it: for the state, and for the audit log's `[audit] database`.
fn open_postgres(pg: &InitPostgres) -> Result<(PostgresStore, String, String), CaError> {
    let password_file = pg
        .password_file
        .as_deref()
        .map(|p| std::fs::canonicalize(p).map_err(|e| CaError::io(p, e)))
        .transpose()?;
    let password = password_file
        .as_deref()
        .map(crate::config::read_secret_file)
        .transpose()?;
    let mut target = PgTarget::new(&pg.url, password).map_err(|e| {
        CaError::Config(format!("--database: {}", rampart_api::report::one_line(&e)))
    })?;
    let tls_ca_file = pg
        .tls_ca_file
        .as_deref()
        .map(|p| std::fs::canonicalize(p).map_err(|e| CaError::io(p, e)))
        .transpose()?;
    if let Some(f) = &tls_ca_file {
        let pem = std::fs::read(f).map_err(|e| CaError::io(f, e))?;
        target = target.with_tls_roots(&pem).map_err(|e| {
            CaError::Config(format!(
                "--database-tls-ca-file: {}",
                rampart_api::report::one_line(&e)
            ))
        })?;
    }
    let store = PostgresStore::open(&target)
        .map_err(|e| CaError::Config(format!("{target}: {}", rampart_api::report::one_line(&e))))?;
    if store.meta(SEAL_SALT)?.is_some() || !store.users()?.is_empty() {
        return Err(CaError::Config(format!(
            "{target} already holds a CA; another CA on it needs that CA's keys and \
             config: copy its directory instead of running init"
        )));
    }
    let mut lines = format!("database = {}", toml::Value::String(pg.url.clone()));
    if let Some(f) = password_file {
        lines.push_str(&format!(
            "\ndatabase_password_file = {}",
            toml::Value::String(f.display().to_string())
        ));
    }
    if let Some(f) = tls_ca_file {
        lines.push_str(&format!(
            "\ndatabase_tls_ca_file = {}",
            toml::Value::String(f.display().to_string())
        ));
    }
    Ok((store, lines, postgres_audit_lines(&pg.url)))
}

/// The token `init --pkcs11-*` makes the CA keys in.
#[derive(Debug, Clone)]
pub struct Pkcs11Init {
    /// The vendor's module.
    pub module: PathBuf,
    /// The token's label.
    pub token: String,
    /// File holding the token's user PIN (mode 0600); the daemon reads it too.
    pub pin_file: PathBuf,
}

/// Labels `init` gives the keys it makes in a token.
const USER_CA_LABEL: &str = "rampart-user-ca";
const HOST_CA_LABEL: &str = "rampart-host-ca";
const AUDIT_LABEL: &str = "rampart-audit";

/// What `init` made; printed once (as JSON with `--json`).
#[derive(Clone, Serialize)]
pub struct InitOutcome {
    /// Config file path.
    pub config: PathBuf,
    /// API URL.
    pub url: String,
    /// SHA-256 fingerprint of the API's TLS certificate (`SHA256:…`).
    pub tls_fingerprint: String,
    /// Bootstrap admin user.
    pub admin_user: String,
    /// The admin's one-time invite code.
    pub admin_invite: rampart_api::WireSecret,
    /// When the invite expires.
    pub invite_expires_at: DateTime<Utc>,
    /// User CA public key line.
    pub user_ca: String,
    /// Host CA public key line.
    pub host_ca: String,
}

impl std::fmt::Debug for InitOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InitOutcome")
            .field("config", &self.config)
            .field("url", &self.url)
            .field("admin_invite", &"<redacted>")
            .finish_non_exhaustive()
    }
}

fn mkdir_private(p: &Path) -> Result<(), CaError> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(p)
        .map_err(|e| CaError::io(p, e))
}

/// Write a new file with `mode`, refusing to overwrite.
pub fn write_new(path: &Path, contents: &[u8], mode: u32) -> Result<(), CaError> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|e| CaError::io(path, e))?;
    f.write_all(contents)
        .and_then(|_| f.sync_all())
        .map_err(|e| CaError::io(path, e))
}

/// The `[keys]` lines naming the user and host CA keys: files, or the token.
fn ca_key_lines(pkcs11: Option<&Pkcs11Init>) -> Result<String, CaError> {
    let Some(p) = pkcs11 else {
        return Ok("user_ca = \"keys/user_ca\"\nhost_ca = \"keys/host_ca\"".to_owned());
    };
    let pin = std::fs::canonicalize(&p.pin_file).map_err(|e| CaError::io(&p.pin_file, e))?;
    // Debug quoting of a path is a valid TOML basic string for every path a
    // filesystem here can hold.
    Ok(format!(
        "# The user CA, host CA and audit keys live in a PKCS#11 token (made there by\n\
         # init; they never leave it). `audit` below names only keys/audit.pub, the\n\
         # public half that `rampart audit verify --audit-pubkey` reads.\n\
         pkcs11 = {{ module = {:?}, token = {:?}, pin_file = {:?}, user_ca = {USER_CA_LABEL:?}, host_ca = {HOST_CA_LABEL:?}, audit = {AUDIT_LABEL:?} }}",
        p.module.display().to_string(),
        p.token,
        pin.display().to_string(),
    ))
}

/// Make the three keys in the token (refusing labels already taken) and
/// write the audit key's public half to `audit_pub` for the verifying tools.
fn make_token_keys(p: &Pkcs11Init, audit_pub: &Path) -> Result<(), CaError> {
    use rampart_signer::CaSigner as _;
    let failed = |e: rampart_signer::SignerError| {
        CaError::Config(format!(
            "--pkcs11-token: {}",
            rampart_api::report::one_line(&e)
        ))
    };
    let pin = crate::config::read_secret_file(&p.pin_file)?;
    let token = rampart_signer::Pkcs11Token::open(&p.module, &p.token, &pin).map_err(failed)?;
    for label in [USER_CA_LABEL, HOST_CA_LABEL] {
        token.generate(label).map_err(failed)?;
    }
    let audit = token.generate(AUDIT_LABEL).map_err(failed)?;
    let line = audit
        .public_key()
        .to_openssh()
        .map_err(|e| CaError::Internal(format!("audit public key: {e}")))?;
    write_new(audit_pub, format!("{line}\n").as_bytes(), 0o644)
}

/// The URL a client on this host dials for a CA listening on `listen`. A
/// wildcard address (`0.0.0.0`, `[::]`, as in a container) is where the CA
/// listens, not an address to dial, so loopback of the same family stands in
/// for it; the printed `rampart enroll` line then works as it is.
pub fn url_for(listen: &str) -> String {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
    let dial = match listen.parse::<SocketAddr>() {
        Ok(addr) if addr.ip().is_unspecified() => {
            let loopback: IpAddr = if addr.is_ipv4() {
                Ipv4Addr::LOCALHOST.into()
            } else {
                Ipv6Addr::LOCALHOST.into()
            };
            SocketAddr::new(loopback, addr.port()).to_string()
        }
        _ => listen.to_owned(),
    };
    format!("https://{dial}")
}

/// Create a CA in `opts.dir`. When it fails, what it created there is
/// removed again (what was there before stays), so that the same command can
/// simply be run again once the cause is fixed.
pub fn init(opts: &InitOptions) -> Result<InitOutcome, CaError> {
    let before = match std::fs::read_dir(&opts.dir) {
        Ok(entries) => Before::Entries(
            entries
                .filter_map(|e| e.ok().map(|e| e.file_name()))
                .collect(),
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Before::Absent,
        Err(_) => Before::Unknown,
    };
    let made = init_in(opts);
    if made.is_err() {
        remove_created(&opts.dir, &before);
    }
    made
}

/// What the CA directory held before `init`.
enum Before {
    /// It did not exist: init made it.
    Absent,
    /// These entries.
    Entries(Vec<std::ffi::OsString>),
    /// It could not be read: nothing is removed.
    Unknown,
}

/// Remove what a failed `init` made in `dir`: the directory itself when it
/// did not exist before, else the entries that were not there.
fn remove_created(dir: &Path, before: &Before) {
    let removed = match before {
        Before::Unknown => Ok(()),
        Before::Absent => std::fs::remove_dir_all(dir).or_else(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Ok(()),
            _ => Err(e),
        }),
        Before::Entries(before) => std::fs::read_dir(dir).and_then(|entries| {
            for entry in entries {
                let entry = entry?;
                if before.contains(&entry.file_name()) {
                    continue;
                }
                let path = entry.path();
                if entry.file_type()?.is_dir() {
                    std::fs::remove_dir_all(&path)?;
                } else {
                    std::fs::remove_file(&path)?;
                }
            }
            Ok(())
        }),
    };
    if let Err(e) = removed {
        tracing::warn!(dir = %dir.display(), error = %e,
            "init failed and could not remove what it had made; remove it before trying again");
    }
}

fn init_in(opts: &InitOptions) -> Result<InitOutcome, CaError> {
    let listen: std::net::SocketAddr = opts
        .listen
        .parse()
        .map_err(|_| CaError::Config(format!("--listen {:?} is not host:port", opts.listen)))?;
    mkdir_private(&opts.dir)?;
    let dir = std::fs::canonicalize(&opts.dir).map_err(|e| CaError::io(&opts.dir, e))?;
    let config_path = dir.join("config.toml");
    if config_path.exists() {
        return Err(CaError::Config(format!(
            "{} already exists; refusing to overwrite an existing CA",
            config_path.display()
        )));
    }
    let postgres = opts.database.as_ref().map(open_postgres).transpose()?;
    for sub in ["keys", "tls"] {
        mkdir_private(&dir.join(sub))?;
    }

    let (pass, passphrase_line) = match &opts.passphrase {
        PassphraseChoice::SystemdCredential(p) => {
            if p.expose_secret().is_empty() {
                return Err(CaError::Config("the key passphrase is empty".into()));
            }
            (
                p.clone(),
                format!("passphrase_credential = {SYSTEMD_CREDENTIAL:?}"),
            )
        }
        PassphraseChoice::InsecureBesideKeys => {
            mkdir_private(&dir.join("secrets"))?;
            let p = secrets::new_token();
            write_new(
                &dir.join("secrets/passphrase"),
                p.expose().as_bytes(),
                0o600,
            )?;
            (
                p.into_secret(),
                "passphrase_file = \"secrets/passphrase\"".to_owned(),
            )
        }
        PassphraseChoice::File(f) => {
            let abs = std::fs::canonicalize(f).map_err(|e| CaError::io(f, e))?;
            (
                crate::config::read_secret_file(&abs)?,
                format!("passphrase_file = {:?}", abs.display().to_string()),
            )
        }
        PassphraseChoice::Env(var) => {
            let v = zeroize::Zeroizing::new(std::env::var(var).map_err(|_| {
                CaError::Config(format!("the passphrase variable {var} is not set"))
            })?);
            (
                crate::config::nonempty_passphrase(&v)?,
                format!("passphrase_env = {var:?}"),
            )
        }
    };

    let file_keys: &[(&str, &str)] = match &opts.pkcs11 {
        None => &[
            ("user_ca", "rampart user CA"),
            ("host_ca", "rampart host CA"),
            ("audit", "rampart audit checkpoints"),
        ],
        Some(p) => {
            make_token_keys(p, &dir.join("keys/audit.pub"))?;
            &[]
        }
    };
    for (name, comment) in file_keys {
        let key = FileCaKey::generate(comment)?;
        key.write_encrypted(&dir.join("keys").join(name), &pass)?;
    }
    let ca_key_lines = ca_key_lines(opts.pkcs11.as_ref())?;

    let mut names = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    if !listen.ip().is_unspecified() && !names.contains(&listen.ip().to_string()) {
        names.push(listen.ip().to_string());
    }
    names.extend(opts.extra_names.iter().cloned());
    let certified = rcgen::generate_simple_self_signed(names)
        .map_err(|e| CaError::Internal(format!("TLS certificate: {e}")))?;
    write_new(
        &dir.join("tls/cert.pem"),
        certified.cert.pem().as_bytes(),
        0o644,
    )?;
    write_new(
        &dir.join("tls/key.pem"),
        certified.key_pair.serialize_pem().as_bytes(),
        0o600,
    )?;
    let tls_fingerprint = Fingerprint::of_der(certified.cert.der()).to_string();

    write_new(&dir.join("policy.toml"), DEFAULT_POLICY.as_bytes(), 0o644)?;
    write_new(
        &config_path,
        match &postgres {
            None => config_text(&opts.listen, &passphrase_line, &ca_key_lines),
            Some((_, lines, audit_lines)) => config_text_with(
                &opts.listen,
                &passphrase_line,
                &ca_key_lines,
                &format!(
                    "# Identities, factors, sessions, issued certificates, revocations:\n\
                     # PostgreSQL, which other CAs with copies of this directory may share.\n\
                     {lines}"
                ),
                audit_lines,
            ),
        }
        .as_bytes(),
        0o600,
    )?;

    let salt = secrets::new_salt();
    match postgres {
        None => {
            let store = SqliteStore::open(&dir.join("ca.db"))?;
            store.set_meta(SEAL_SALT, &salt)?;
        }
        Some((store, _, _)) => {
            // Insert-if-absent: of two inits racing on one database, one salt wins
            // and the other init stops here.
            if store.meta_or_insert(SEAL_SALT, &salt)? != salt {
                return Err(CaError::Config(
                    "another CA was initialised on this database meanwhile".into(),
                ));
            }
        }
    }

    let config = Config::load(&config_path)?;
    let loaded = server::open_with_passphrase(&config, &pass, Arc::new(SystemClock))?;
    let auth = loaded.authority;
    auth.record(
        NewEvent::new(EventKind::CaInitialized, Outcome::Success, auth.now())
            .actor("rampart-ca init")
            .detail("user_ca", auth.user_ca_line())
            .detail("host_ca", auth.host_ca_line())
            .detail("tls_fingerprint", tls_fingerprint.clone()),
    )?;
    auth.create_user(
        None,
        None,
        &CreateUserRequest {
            name: opts.admin.clone(),
            groups: vec!["admins".to_owned()],
            admin: true,
        },
    )?;
    let invite = auth.create_invite(
        None,
        None,
        &InviteRequest {
            user: opts.admin.clone(),
            ttl_seconds: None,
        },
    )?;
    let user_ca = auth.user_ca_line();
    let host_ca = auth.host_ca_line();
    auth.audit_log()
        .close()
        .map_err(CaError::AuditUnavailable)?;
    Ok(InitOutcome {
        config: config_path,
        url: url_for(&opts.listen),
        tls_fingerprint,
        admin_user: opts.admin.clone(),
        admin_invite: invite.code,
        invite_expires_at: invite.expires_at,
        user_ca,
        host_ca,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wildcard_listen_address_is_dialled_on_loopback() {
        assert_eq!(url_for("0.0.0.0:8443"), "https://127.0.0.1:8443");
        assert_eq!(url_for("[::]:8443"), "https://[::1]:8443");
        assert_eq!(url_for("192.0.2.7:443"), "https://192.0.2.7:443");
        assert_eq!(url_for("[2001:db8::1]:443"), "https://[2001:db8::1]:443");
        assert_eq!(url_for("ca.example.com:443"), "https://ca.example.com:443");
    }
    #[test]
    fn the_default_policy_parses_without_errors() {
        let p = rampart_policy::Policy::from_toml(DEFAULT_POLICY).unwrap();
        let errors: Vec<_> = p
            .lint()
            .into_iter()
            .filter(|l| l.severity == rampart_policy::LintSeverity::Error)
            .collect();
        assert!(errors.is_empty(), "{errors:?}");
    }

    /// The default policy, with its commented example role and group turned on.
    fn default_policy_with_example() -> String {
        let mut out = String::new();
        let mut in_example = false;
        for line in DEFAULT_POLICY.lines() {
            if line.starts_with("# [roles.db-oncall]") {
                in_example = true;
            }
            let on = line.starts_with("# oncall = ") || in_example;
            match line.strip_prefix("# ").filter(|_| on) {
                Some(code) => out.push_str(code),
                None => out.push_str(line),
            }
            out.push('\n');
        }
        out
    }

    #[test]
    fn the_default_policy_opens_no_target_and_its_example_opens_one() {
        use rampart_policy::{evaluate_access, AccessRequest, Factor};
        let labels: std::collections::BTreeMap<String, String> =
            [("env".to_owned(), "prod".to_owned())].into();
        let now = chrono::Utc::now();
        let access = |policy: &rampart_policy::Policy, groups: &[String], login, target| {
            evaluate_access(
                &AccessRequest {
                    user: "alice",
                    groups,
                    factor: Factor::Totp,
                    mfa_time: now,
                    login,
                    target,
                    labels: &labels,
                },
                policy,
                now,
            )
        };
        // As written: no role names a target, and the file says so.
        let policy = rampart_policy::Policy::from_toml(DEFAULT_POLICY).unwrap();
        let everyone = ["engineers".to_owned(), "admins".to_owned()];
        assert!(access(&policy, &everyone, "alice", "db-1").is_err());
        assert!(DEFAULT_POLICY.contains("nobody can reach any target"));
        // The example, uncommented, is a valid policy that does what it says.
        let text = default_policy_with_example();
        let policy =
            rampart_policy::Policy::from_toml(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        let oncall = ["oncall".to_owned()];
        let grant = access(&policy, &oncall, "postgres", "db-1").unwrap();
        assert_eq!(grant.login(), "postgres");
        assert!(access(&policy, &oncall, "alice", "db-1").is_ok());
        assert!(access(&policy, &oncall, "root", "db-1").is_err());
        assert!(access(&policy, &oncall, "postgres", "db-secret").is_err());
        assert!(access(&policy, &oncall, "postgres", "web-1").is_err());
    }

    #[test]
    fn the_config_template_is_valid_and_matches_the_defaults() {
        let text = config_text(
            "127.0.0.1:8443",
            "passphrase_env = \"X\"",
            &ca_key_lines(None).unwrap(),
        );
        let raw: crate::config::RawConfig = toml::from_str(&text).unwrap();
        assert_eq!(raw.totp.max_failures, 5);
        assert_eq!(raw.audit.checkpoint_every_events, 1000);
    }

    #[test]
    fn an_init_that_fails_late_leaves_nothing_behind_and_can_be_run_again() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca");
        std::fs::create_dir(&ca).unwrap();
        std::fs::write(ca.join("operator-notes.txt"), "mine").unwrap();
        // The audit database's path is taken by a directory: init gets as far
        // as opening the audit log, after the keys, TLS files and config.
        std::fs::create_dir(ca.join("audit.db")).unwrap();
        let opts = InitOptions {
            dir: ca.clone(),
            listen: "127.0.0.1:0".into(),
            admin: "admin".into(),
            passphrase: PassphraseChoice::InsecureBesideKeys,
            extra_names: vec![],
            pkcs11: None,
            database: None,
        };
        assert!(init(&opts).is_err());
        let mut left: Vec<String> = std::fs::read_dir(&ca)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(
            left,
            ["audit.db", "operator-notes.txt"],
            "only what was there before"
        );
        std::fs::remove_dir(ca.join("audit.db")).unwrap();
        init(&opts).unwrap();
        // A directory init made itself goes altogether (here it stops at the
        // passphrase, after making the key and TLS directories).
        let fresh = dir.path().join("fresh");
        let bad = InitOptions {
            dir: fresh.clone(),
            passphrase: PassphraseChoice::Env("RAMPART_TEST_PASSPHRASE_NOBODY_SETS".into()),
            ..opts.clone()
        };
        let e = init(&bad).unwrap_err();
        assert!(e.to_string().contains("is not set"), "{e}");
        assert!(!fresh.exists());
        // A CA that exists is never touched by a refused second init.
        let e = init(&opts).unwrap_err();
        assert!(e.to_string().contains("already exists"), "{e}");
        assert!(ca.join("config.toml").exists() && ca.join("keys/user_ca").exists());
    }

    #[test]
    fn a_passphrase_kept_away_from_the_keys_draws_no_warning() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let pass = dir.path().join("elsewhere/pass");
        std::fs::create_dir(dir.path().join("elsewhere")).unwrap();
        std::fs::write(&pass, "correct horse battery staple\n").unwrap();
        std::fs::set_permissions(&pass, std::fs::Permissions::from_mode(0o600)).unwrap();
        let out = init(&InitOptions {
            dir: dir.path().join("ca"),
            listen: "127.0.0.1:0".into(),
            admin: "admin".into(),
            passphrase: PassphraseChoice::File(pass.clone()),
            extra_names: vec![],
            pkcs11: None,
            database: None,
        })
        .unwrap();
        assert!(!dir.path().join("ca/secrets").exists());
        let report = server::check(&out.config).unwrap();
        assert!(!report.contains("warning"), "{report}");
        // The same file moved into the CA directory is warned about.
        let inside = dir.path().join("ca/pass");
        std::fs::rename(&pass, &inside).unwrap();
        let config = std::fs::read_to_string(&out.config).unwrap();
        let config: String = config
            .lines()
            .map(|l| {
                if l.starts_with("passphrase_file = ") {
                    "passphrase_file = \"pass\"\n".to_owned()
                } else {
                    format!("{l}\n")
                }
            })
            .collect();
        assert!(config.contains("passphrase_file = \"pass\""), "{config}");
        std::fs::write(&out.config, config).unwrap();
        let report = server::check(&out.config).unwrap();
        assert!(
            report.contains("warning: the key passphrase file"),
            "{report}"
        );
    }

    #[test]
    fn init_on_postgres_keeps_the_state_there_and_a_second_init_is_refused() {
        let pg = crate::store::postgres::testing::TestPostgres::start();
        let url = pg.create_database("ca");
        let dir = tempfile::tempdir().unwrap();
        let opts = |sub: &str| InitOptions {
            dir: dir.path().join(sub),
            listen: "127.0.0.1:0".into(),
            admin: "root-admin".into(),
            passphrase: PassphraseChoice::InsecureBesideKeys,
            extra_names: vec![],
            pkcs11: None,
            database: Some(InitPostgres {
                url: url.clone(),
                password_file: None,
                tls_ca_file: None,
            }),
        };
        let out = init(&opts("ca1")).unwrap();
        assert!(!dir.path().join("ca1/ca.db").exists(), "no SQLite state");
        assert!(
            !dir.path().join("ca1/audit.db").exists(),
            "no SQLite audit log"
        );
        let report = server::check(&out.config).unwrap();
        assert!(
            report.contains(&format!(
                "audit database OK: postgres://127.0.0.1:{}/ca (schema version {})",
                pg.port(),
                rampart_audit::PG_SCHEMA_VERSION
            )),
            "{report}"
        );
        assert!(report.contains("audit witness OK"), "{report}");
        assert!(
            report.contains(&format!(
                "CA database OK: {url} (schema version {})",
                crate::store::postgres::SCHEMA_VERSION
            )),
            "{report}"
        );
        let store = PostgresStore::open(&PgTarget::new(&url, None).unwrap()).unwrap();
        assert!(store.user("root-admin").unwrap().unwrap().admin);
        assert!(store.meta(SEAL_SALT).unwrap().is_some());
        // A second init on the same database would bring other keys: refused
        // before it writes anything.
        let e = init(&opts("ca2")).unwrap_err();
        assert!(e.to_string().contains("already holds a CA"), "{e}");
        assert!(!dir.path().join("ca2/config.toml").exists());
    }

    #[test]
    fn a_typed_passphrase_is_read_from_the_systemd_credential() {
        let dir = tempfile::tempdir().unwrap();
        let out = init(&InitOptions {
            dir: dir.path().join("ca"),
            listen: "127.0.0.1:0".into(),
            admin: "admin".into(),
            passphrase: PassphraseChoice::SystemdCredential(SecretString::from(
                "typed at the terminal",
            )),
            extra_names: vec![],
            pkcs11: None,
            database: None,
        })
        .unwrap();
        assert!(!dir.path().join("ca/secrets").exists());
        let config = crate::Config::load(&out.config).unwrap();
        assert_eq!(
            config.passphrase,
            crate::config::PassphraseSource::Credential(SYSTEMD_CREDENTIAL.into())
        );
        assert!(server::passphrase_beside_keys(&config).is_none());
    }

    #[test]
    fn init_creates_a_ca_and_refuses_to_overwrite_it() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let opts = InitOptions {
            dir: dir.path().join("ca"),
            listen: "127.0.0.1:0".into(),
            admin: "admin".into(),
            passphrase: PassphraseChoice::InsecureBesideKeys,
            extra_names: vec![],
            pkcs11: None,
            database: None,
        };
        let out = init(&opts).unwrap();
        assert!(out.tls_fingerprint.starts_with("SHA256:"));
        assert!(out.user_ca.starts_with("ssh-ed25519 "));
        for f in [
            "keys/user_ca",
            "keys/host_ca",
            "keys/audit",
            "tls/key.pem",
            "secrets/passphrase",
        ] {
            let mode = std::fs::metadata(opts.dir.join(f))
                .unwrap()
                .permissions()
                .mode()
                & 0o777;
            assert_eq!(mode, 0o600, "{f}");
        }
        assert!(init(&opts)
            .unwrap_err()
            .to_string()
            .contains("already exists"));
        let report = server::check(&out.config).unwrap();
        assert!(report.starts_with("configuration OK"), "{report}");
        // The generated passphrase sits beside the keys: check says so.
        assert!(
            report.contains("warning: the key passphrase file")
                && report.contains("secrets/passphrase")
                && report.contains("beside the encrypted keys"),
            "{report}"
        );
        // A role that needs phishing-resistant keys while [webauthn] vouches for
        // no key model: check warns (the policy file alone cannot tell).
        let policy = opts.dir.join("policy.toml");
        std::fs::write(
            &policy,
            "version = 1\n[roles.prod]\nprincipals = [\"root\"]\n\
             min_factor = \"phishing-resistant\"\n[groups]\nsre = [\"prod\"]\n",
        )
        .unwrap();
        let warned = server::check(&out.config).unwrap();
        assert!(
            warned
                .contains("policy warning: warning: roles.prod needs a phishing-resistant factor"),
            "{warned}"
        );
        let config = std::fs::read_to_string(&out.config).unwrap();
        std::fs::write(
            &out.config,
            config.replace(
                "# [webauthn]\n",
                "[webauthn]\nallowed_aaguids = [\"cb69481e-8ff7-4039-93ec-0a2729a154a8\"]\n",
            ),
        )
        .unwrap();
        let quiet = server::check(&out.config).unwrap();
        assert!(!quiet.contains("phishing-resistant"), "{quiet}");
        // Loosen a key file: the CA must refuse to start.
        std::fs::set_permissions(
            opts.dir.join("keys/user_ca"),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        assert!(server::check(&out.config).is_err());
    }
}
