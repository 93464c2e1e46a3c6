//! `rampart-bastion join`: the bastion's identity with the CA, and loading it back.
//!
//! **Owns:** generating the bastion's Ed25519 host key, redeeming a join token
//! (`POST /v1/bastion/join`), and writing what comes back — the credential and
//! the host key (mode 0600), the user and host CA keys, the host certificate —
//! plus a commented `bastion.toml`. It never overwrites an existing identity.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use rampart_api::{BastionJoinRequest, Fingerprint, WireSecret};
use russh::keys::ssh_key::{self, Certificate, LineEnding, PrivateKey, PublicKey};

use crate::ca_client::CaClient;
use crate::config::{self, Config};
use crate::BastionError;

/// What `join` needs.
#[derive(Debug)]
pub struct JoinArgs {
    /// CA base URL.
    pub ca_url: String,
    /// CA TLS fingerprint.
    pub ca_fingerprint: String,
    /// The join token.
    pub token: String,
    /// The bastion's name.
    pub name: String,
    /// Directory for the identity and config.
    pub dir: PathBuf,
}

/// The loaded identity.
pub struct Identity {
    /// The bastion's host key (also presented for targets, under per-target certs).
    pub host_key: PrivateKey,
    /// Its certificate for the bastion's own name.
    pub host_cert: Certificate,
    /// Outer certificates must be signed by one of these (several while the
    /// CA rotates its key).
    pub user_ca: Vec<PublicKey>,
    /// Targets' host certificates must be signed by one of these.
    pub host_ca: Vec<PublicKey>,
    /// Bearer credential for the CA (zeroized, never in `Debug`).
    pub credential: WireSecret,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("host_key", &self.host_key.public_key().to_openssh().ok())
            .field("credential", &self.credential)
            .finish_non_exhaustive()
    }
}

/// Generate a fresh Ed25519 key from the OS RNG.
pub fn generate_ed25519() -> Result<PrivateKey, BastionError> {
    let mut rng = ssh_key::rand_core::UnwrapErr(ssh_key::getrandom::SysRng);
    PrivateKey::random(&mut rng, ssh_key::Algorithm::Ed25519)
        .map_err(|e| BastionError::Key(e.to_string()))
}

fn read(path: &Path) -> Result<String, BastionError> {
    std::fs::read_to_string(path).map_err(|e| BastionError::io(path, e))
}

impl Identity {
    /// Load the identity files named by `config`.
    pub fn load(config: &Config) -> Result<Identity, BastionError> {
        let key_err =
            |p: &Path, e: ssh_key::Error| BastionError::Key(format!("{}: {e}", p.display()));
        let host_key = PrivateKey::from_openssh(read(&config.host_key_file)?)
            .map_err(|e| key_err(&config.host_key_file, e))?;
        let host_cert = Certificate::from_openssh(read(&config.host_cert_file)?.trim())
            .map_err(|e| key_err(&config.host_cert_file, e))?;
        let keys = |path: &Path| {
            parse_ca_keys(&read(path)?)
                .map_err(|e| BastionError::Key(format!("{}: {e}", path.display())))
        };
        let user_ca = keys(&config.user_ca_file)?;
        let host_ca = keys(&config.host_ca_file)?;
        // Both copies (as read, and trimmed) are zeroized when dropped.
        let as_read = WireSecret::new(read(&config.credential_file)?);
        let credential = WireSecret::new(as_read.expose().trim());
        if !credential
            .expose()
            .starts_with(rampart_api::BASTION_CREDENTIAL_PREFIX)
        {
            return Err(BastionError::Config(format!(
                "{} does not hold a bastion credential",
                config.credential_file.display()
            )));
        }
        if host_cert.public_key() != host_key.public_key().key_data() {
            return Err(BastionError::Key(
                "the host certificate is not for the host key".into(),
            ));
        }
        Ok(Identity {
            host_key,
            host_cert,
            user_ca,
            host_ca,
            credential,
        })
    }
}

/// The CA keys in a file of OpenSSH public keys, one per line (blank lines and
/// `#` comments skipped); at least one.
pub fn parse_ca_keys(text: &str) -> Result<Vec<PublicKey>, String> {
    let keys = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| PublicKey::from_openssh(l).map_err(|e| e.to_string()))
        .collect::<Result<Vec<_>, _>>()?;
    if keys.is_empty() {
        return Err("no public key".into());
    }
    Ok(keys)
}

fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), BastionError> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|e| BastionError::io(path, e))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| BastionError::io(path, e))
}

/// Join the CA and write the identity and `DIR/bastion.toml`. Returns the config path.
pub async fn join(args: &JoinArgs) -> Result<PathBuf, BastionError> {
    let dir = &args.dir;
    std::fs::create_dir_all(dir).map_err(|e| BastionError::io(dir, e))?;
    let conf_path = dir.join("bastion.toml");
    for existing in ["bastion.toml", "credential", "host_key"] {
        let p = dir.join(existing);
        if p.exists() {
            return Err(BastionError::Config(format!(
                "{} already exists: this directory holds a joined bastion",
                p.display()
            )));
        }
    }
    if !config::valid_target_name(&args.name) {
        return Err(BastionError::Config(format!(
            "--name {:?} is not a host name",
            args.name
        )));
    }
    let pin = Fingerprint::parse(&args.ca_fingerprint)?;
    let client = CaClient::new(&args.ca_url, pin)?;
    let host_key = generate_ed25519()?;
    let public = host_key
        .public_key()
        .to_openssh()
        .map_err(|e| BastionError::Key(e.to_string()))?;
    let resp = client
        .join(&BastionJoinRequest {
            token: args.token.clone().into(),
            name: args.name.clone(),
            host_public_key: public.clone(),
        })
        .await?;
    let private = host_key
        .to_openssh(LineEnding::LF)
        .map_err(|e| BastionError::Key(e.to_string()))?;
    write_new(&dir.join("host_key"), private.as_bytes(), 0o600)?;
    write_new(
        &dir.join("host_key.pub"),
        format!("{public}\n").as_bytes(),
        0o644,
    )?;
    write_new(
        &dir.join("credential"),
        WireSecret::new(format!("{}\n", resp.credential.expose()))
            .expose()
            .as_bytes(),
        0o600,
    )?;
    // One key per line: several while the CA rotates a key.
    let line = |s: &str| format!("{}\n", s.trim());
    write_new(
        &dir.join("user_ca.pub"),
        line(&resp.user_ca).as_bytes(),
        0o644,
    )?;
    write_new(
        &dir.join("host_ca.pub"),
        line(&resp.host_ca).as_bytes(),
        0o644,
    )?;
    write_new(
        &dir.join("host_key-cert.pub"),
        line(&resp.host_certificate.certificate).as_bytes(),
        0o644,
    )?;
    for sub in ["recordings", "spool"] {
        let p = dir.join(sub);
        std::fs::create_dir_all(&p).map_err(|e| BastionError::io(&p, e))?;
    }
    let text = config::render_default(&resp.name, client_base(&args.ca_url), &pin.to_string());
    write_new(&conf_path, text.as_bytes(), 0o644)?;
    Ok(conf_path)
}

fn client_base(url: &str) -> &str {
    url.trim_end_matches('/')
}
