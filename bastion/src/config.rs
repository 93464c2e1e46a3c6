//! The bastion's configuration file (`bastion.toml`): what it listens on, how
//! it reaches the CA, where its identity files live, its targets and its limits.
//!
//! **Owns:** parsing (TOML, `deny_unknown_fields`) and validation into a
//! [`Config`] with every default documented here. Paths in the file are
//! relative to the file's own directory. Key material is never inline: the
//! credential and the host key are files, and a key file readable by others is
//! refused. Which settings a running bastion may take from a reloaded file
//! (SIGHUP), and which need a restart, is decided here too
//! ([`Config::reload_diff`]).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::BastionError;

/// Default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:2222";

/// The file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    version: u32,
    name: String,
    #[serde(default)]
    listen: Option<String>,
    ca: CaFile,
    #[serde(default)]
    identity: IdentityFile,
    #[serde(default)]
    recording: RecordingFile,
    #[serde(default)]
    audit: AuditFile,
    #[serde(default)]
    limits: LimitsFile,
    #[serde(default)]
    targets: Vec<TargetFile>,
    #[serde(default)]
    metrics: MetricsFile,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditFile {
    spool_dir: Option<String>,
    spool_max_mib: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct MetricsFile {
    listen: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CaFile {
    url: String,
    fingerprint: String,
    #[serde(default)]
    revocation_poll_ms: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct IdentityFile {
    credential: Option<String>,
    host_key: Option<String>,
    host_cert: Option<String>,
    user_ca: Option<String>,
    host_ca: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RecordingFile {
    dir: Option<String>,
    spool_dir: Option<String>,
    max_stored_mib: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitsFile {
    max_sessions_per_user: Option<usize>,
    max_sessions: Option<usize>,
    auth_timeout_secs: Option<u64>,
    idle_timeout_secs: Option<u64>,
    connections_per_second: Option<u32>,
    connection_burst: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TargetFile {
    name: String,
    address: String,
    #[serde(default)]
    port: Option<u16>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    host_key: Option<String>,
}

/// How the bastion checks a target's host key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostKeyCheck {
    /// A host certificate signed by the host CA whose principals name the
    /// target (by name or address).
    HostCa,
    /// Exactly this public key (OpenSSH one-line format, comment dropped).
    Pinned(russh::keys::ssh_key::PublicKey),
}

/// One target users may reach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The name users dial (`db-1`); the host certificate's principal.
    pub name: String,
    /// Where the bastion connects.
    pub address: String,
    /// SSH port (default 22).
    pub port: u16,
    /// Labels sent to the CA with each session-certificate request.
    pub labels: BTreeMap<String, String>,
    /// How its host key is checked (default: host CA).
    pub host_key: HostKeyCheck,
}

/// Limits (defaults in brackets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Concurrent sessions per user [10].
    pub max_sessions_per_user: usize,
    /// Concurrent sessions in total [1000].
    pub max_sessions: usize,
    /// Time to authenticate an outer connection [30 s].
    pub auth_timeout: Duration,
    /// A session with no data either way for this long is closed [1 h].
    pub idle_timeout: Duration,
    /// New connections per second per source address [20].
    pub connections_per_second: u32,
    /// Burst of new connections per source address [40].
    pub connection_burst: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_sessions_per_user: 10,
            max_sessions: 1000,
            auth_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(3600),
            connections_per_second: 20,
            connection_burst: 40,
        }
    }
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// This bastion's name (as joined).
    pub name: String,
    /// Listen address [127.0.0.1:2222].
    pub listen: SocketAddr,
    /// CA base URL (`https://host:port`), or several comma-separated: CAs
    /// that serve the same state, tried in turn when one cannot be reached.
    pub ca_url: String,
    /// CA TLS certificate fingerprint.
    pub ca_fingerprint: rampart_api::Fingerprint,
    /// Revocation poll interval [2 s].
    pub revocation_poll: Duration,
    /// Credential file [credential].
    pub credential_file: PathBuf,
    /// Host private key [host_key].
    pub host_key_file: PathBuf,
    /// Host certificate [host_key-cert.pub].
    pub host_cert_file: PathBuf,
    /// User CA public key [user_ca.pub].
    pub user_ca_file: PathBuf,
    /// Host CA public key [host_ca.pub].
    pub host_ca_file: PathBuf,
    /// Recordings being written [recordings].
    pub recording_dir: PathBuf,
    /// Finished recordings waiting for upload [spool].
    pub spool_dir: PathBuf,
    /// Data bytes one session's recording stores before its channels are only
    /// counted and hashed [128 MiB]; bounded so that a recording stays within
    /// what the CA accepts in one upload.
    pub recording_max_stored: u64,
    /// Audit events waiting for the CA [spool/events].
    pub audit_spool_dir: PathBuf,
    /// Most bytes of audit events spooled before new sessions are refused [1 GiB].
    pub audit_spool_max: u64,
    /// Limits.
    pub limits: Limits,
    /// Targets by name.
    pub targets: BTreeMap<String, Target>,
    /// Where `/metrics` is served [off].
    pub metrics_listen: Option<SocketAddr>,
}

/// What a reload changes, when the new file may replace the running config.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReloadChange {
    /// Targets only the new file has.
    pub added: Vec<String>,
    /// Targets only the running config has.
    pub removed: Vec<String>,
    /// Targets in both whose address, port, labels or host key differ.
    pub changed: Vec<String>,
    /// Other settings that differ, by their key in the file.
    pub settings: Vec<&'static str>,
}

impl ReloadChange {
    /// Whether the new file says what the running config says.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty()
            && self.removed.is_empty()
            && self.changed.is_empty()
            && self.settings.is_empty()
    }
}

/// `[recording] max_stored_mib`: kept 64 MiB below the CA's upload limit (the
/// compressed recording of random bytes is about as large as the bytes).
fn recording_max_stored(mib: Option<u64>) -> Result<u64, BastionError> {
    let mib = mib.unwrap_or(128);
    let max = (rampart_api::MAX_RECORDING_BYTES as u64 / (1024 * 1024)).saturating_sub(64);
    if mib > max {
        return Err(bad(format!(
            "[recording] max_stored_mib = {mib} is more than {max}, which the CA could not take in one upload"
        )));
    }
    Ok(mib * 1024 * 1024)
}

fn bad(msg: impl Into<String>) -> BastionError {
    BastionError::Config(msg.into())
}

/// Whether `s` is a host name users can dial: RFC 1123 labels, or an IP address.
pub fn valid_target_name(s: &str) -> bool {
    if s.parse::<std::net::IpAddr>().is_ok() {
        return true;
    }
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

impl Config {
    /// Read and validate `path`.
    pub fn load(path: &Path) -> Result<Config, BastionError> {
        let text = std::fs::read_to_string(path).map_err(|e| BastionError::io(path, e))?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::parse(&text, base)
    }

    /// Parse `text`, resolving relative paths against `base`.
    pub fn parse(text: &str, base: &Path) -> Result<Config, BastionError> {
        let f: File = toml::from_str(text)
            .map_err(|e| bad(rampart_api::report::at_line(text, e.span(), e.message())))?;
        if f.version != 1 {
            return Err(bad(format!("version = {} is not supported (1)", f.version)));
        }
        if !valid_target_name(&f.name) {
            return Err(bad(format!("name {:?} is not a host name", f.name)));
        }
        let listen = f
            .listen
            .as_deref()
            .unwrap_or(DEFAULT_LISTEN)
            .parse::<SocketAddr>()
            .map_err(|e| bad(format!("listen: {e}")))?;
        let metrics_listen = f
            .metrics
            .listen
            .as_deref()
            .map(|l| {
                l.parse::<SocketAddr>()
                    .map_err(|e| bad(format!("metrics.listen: {e}")))
            })
            .transpose()?;
        if rampart_api::client::CaUrls::parse(&f.ca.url).is_err() {
            return Err(bad(
                "ca.url must be https://host:port, or several such URLs comma-separated \
                 (CAs that share one database, key and TLS certificate)",
            ));
        }
        let ca_fingerprint = rampart_api::Fingerprint::parse(&f.ca.fingerprint)
            .map_err(|e| bad(format!("ca.fingerprint: {e}")))?;
        let path = |p: &Option<String>, default: &str| -> PathBuf {
            let p = p.as_deref().unwrap_or(default);
            base.join(p)
        };
        let l = f.limits;
        let def = Limits::default();
        let limits = Limits {
            max_sessions_per_user: l.max_sessions_per_user.unwrap_or(def.max_sessions_per_user),
            max_sessions: l.max_sessions.unwrap_or(def.max_sessions),
            auth_timeout: l
                .auth_timeout_secs
                .map(Duration::from_secs)
                .unwrap_or(def.auth_timeout),
            idle_timeout: l
                .idle_timeout_secs
                .map(Duration::from_secs)
                .unwrap_or(def.idle_timeout),
            connections_per_second: l
                .connections_per_second
                .unwrap_or(def.connections_per_second),
            connection_burst: l.connection_burst.unwrap_or(def.connection_burst),
        };
        if limits.max_sessions == 0 || limits.max_sessions_per_user == 0 {
            return Err(bad("limits: session limits must be at least 1"));
        }
        if limits.auth_timeout.is_zero() || limits.idle_timeout.is_zero() {
            return Err(bad("limits: timeouts must be at least 1 s"));
        }
        if limits.connections_per_second == 0 || limits.connection_burst == 0 {
            return Err(bad("limits: connection rate and burst must be at least 1"));
        }
        let mut targets = BTreeMap::new();
        for t in f.targets {
            if !valid_target_name(&t.name) {
                return Err(bad(format!("target name {:?} is not a host name", t.name)));
            }
            if t.address.is_empty() || t.address.len() > 253 {
                return Err(bad(format!("target {}: address is empty", t.name)));
            }
            let host_key = match t.host_key.as_deref().unwrap_or("host-ca") {
                "host-ca" => HostKeyCheck::HostCa,
                line => {
                    let key = russh::keys::ssh_key::PublicKey::from_openssh(line.trim())
                        .map_err(|e| {
                            bad(format!(
                                "target {}: host_key must be \"host-ca\" or an OpenSSH public key line ({e})",
                                t.name
                            ))
                        })?;
                    HostKeyCheck::Pinned(key)
                }
            };
            let name = t.name.clone();
            let target = Target {
                name: t.name,
                address: t.address,
                port: t.port.unwrap_or(22),
                labels: t.labels,
                host_key,
            };
            if targets.insert(name.clone(), target).is_some() {
                return Err(bad(format!("target {name} is defined twice")));
            }
        }
        Ok(Config {
            name: f.name,
            listen,
            ca_url: f.ca.url.trim_end_matches('/').to_owned(),
            ca_fingerprint,
            revocation_poll: Duration::from_millis(
                f.ca.revocation_poll_ms.unwrap_or(2000).max(100),
            ),
            credential_file: path(&f.identity.credential, "credential"),
            host_key_file: path(&f.identity.host_key, "host_key"),
            host_cert_file: path(&f.identity.host_cert, "host_key-cert.pub"),
            user_ca_file: path(&f.identity.user_ca, "user_ca.pub"),
            host_ca_file: path(&f.identity.host_ca, "host_ca.pub"),
            recording_dir: path(&f.recording.dir, "recordings"),
            spool_dir: path(&f.recording.spool_dir, "spool"),
            recording_max_stored: recording_max_stored(f.recording.max_stored_mib)?,
            audit_spool_dir: path(&f.audit.spool_dir, "spool/events"),
            audit_spool_max: f.audit.spool_max_mib.unwrap_or(1024).max(1) * 1024 * 1024,
            limits,
            targets,
            metrics_listen,
        })
    }

    /// Whether `new` (a reloaded file) may replace this running config.
    ///
    /// A reload takes the targets, `[limits]`, `ca.revocation_poll_ms` and
    /// `[recording] max_stored_mib`: each is read afresh for every new
    /// connection or session (or poll), and a live session keeps the config it
    /// started under. Everything else was bound or opened at start-up — the
    /// listener, the identity the bastion joined with, the CA client, the
    /// directories and the audit spool, the metrics listener — so a file that
    /// changes any of it is refused as a whole: `Err` names those keys.
    pub fn reload_diff(&self, new: &Config) -> Result<ReloadChange, Vec<&'static str>> {
        let fixed = [
            ("name", self.name == new.name),
            ("listen", self.listen == new.listen),
            ("ca.url", self.ca_url == new.ca_url),
            ("ca.fingerprint", self.ca_fingerprint == new.ca_fingerprint),
            (
                "identity.credential",
                self.credential_file == new.credential_file,
            ),
            ("identity.host_key", self.host_key_file == new.host_key_file),
            (
                "identity.host_cert",
                self.host_cert_file == new.host_cert_file,
            ),
            ("identity.user_ca", self.user_ca_file == new.user_ca_file),
            ("identity.host_ca", self.host_ca_file == new.host_ca_file),
            ("recording.dir", self.recording_dir == new.recording_dir),
            ("recording.spool_dir", self.spool_dir == new.spool_dir),
            (
                "audit.spool_dir",
                self.audit_spool_dir == new.audit_spool_dir,
            ),
            (
                "audit.spool_max_mib",
                self.audit_spool_max == new.audit_spool_max,
            ),
            ("metrics.listen", self.metrics_listen == new.metrics_listen),
        ];
        let restart: Vec<&'static str> = fixed
            .into_iter()
            .filter(|(_, same)| !same)
            .map(|(key, _)| key)
            .collect();
        if !restart.is_empty() {
            return Err(restart);
        }
        let (old_l, new_l) = (&self.limits, &new.limits);
        let settings = [
            (
                "ca.revocation_poll_ms",
                self.revocation_poll == new.revocation_poll,
            ),
            (
                "recording.max_stored_mib",
                self.recording_max_stored == new.recording_max_stored,
            ),
            (
                "limits.max_sessions_per_user",
                old_l.max_sessions_per_user == new_l.max_sessions_per_user,
            ),
            (
                "limits.max_sessions",
                old_l.max_sessions == new_l.max_sessions,
            ),
            (
                "limits.auth_timeout_secs",
                old_l.auth_timeout == new_l.auth_timeout,
            ),
            (
                "limits.idle_timeout_secs",
                old_l.idle_timeout == new_l.idle_timeout,
            ),
            (
                "limits.connections_per_second",
                old_l.connections_per_second == new_l.connections_per_second,
            ),
            (
                "limits.connection_burst",
                old_l.connection_burst == new_l.connection_burst,
            ),
        ]
        .into_iter()
        .filter(|(_, same)| !same)
        .map(|(key, _)| key)
        .collect();
        let mut change = ReloadChange {
            settings,
            ..ReloadChange::default()
        };
        for (name, t) in &new.targets {
            match self.targets.get(name) {
                None => change.added.push(name.clone()),
                Some(old) if old != t => change.changed.push(name.clone()),
                Some(_) => {}
            }
        }
        change.removed = self
            .targets
            .keys()
            .filter(|name| !new.targets.contains_key(*name))
            .cloned()
            .collect();
        Ok(change)
    }

    /// Check that the identity files exist, parse, and that secret files are 0600.
    pub fn check_files(&self) -> Result<(), BastionError> {
        use std::os::unix::fs::PermissionsExt;
        for secret in [&self.credential_file, &self.host_key_file] {
            let meta = std::fs::metadata(secret).map_err(|e| BastionError::io(secret, e))?;
            if meta.permissions().mode() & 0o077 != 0 {
                return Err(bad(format!(
                    "{} is readable by others (mode {:o}); chmod 600 it",
                    secret.display(),
                    meta.permissions().mode() & 0o777
                )));
            }
        }
        crate::join::Identity::load(self).map(|_| ())
    }
}

/// The commented config `join` writes.
pub fn render_default(name: &str, ca_url: &str, ca_fingerprint: &str) -> String {
    format!(
        r#"# rampart-bastion configuration (written by `rampart-bastion join`).
# Check it with `rampart-bastion check --config FILE`; run with `serve --config FILE`.
# Relative paths are relative to this file's directory.
version = 1
# This bastion's name, as joined with the CA (the principal of its host certificate).
name = "{name}"
# Where the SSH daemon listens (default 127.0.0.1:2222).
listen = "{DEFAULT_LISTEN}"

[ca]
# Several CAs on one database: list them comma-separated ("https://ca1:8443,https://ca2:8443");
# a request goes to the one that answered last and moves on only when it cannot connect.
url = "{ca_url}"
fingerprint = "{ca_fingerprint}"
# How often revocations are fetched from the CA, in milliseconds (default 2000).
# revocation_poll_ms = 2000

[identity]
# All written by `join`; the credential and host key must be mode 0600.
credential = "credential"
host_key = "host_key"
host_cert = "host_key-cert.pub"
user_ca = "user_ca.pub"
host_ca = "host_ca.pub"

[recording]
# asciicast v2 files being written (crash leftovers are finished at start-up).
dir = "recordings"
# Finished recordings waiting to be uploaded to the CA.
spool_dir = "spool"
# Every channel of a session is recorded (shells with or without a pty, exec,
# subsystems). Data bytes one session stores before its channels are only
# counted and SHA-256 hashed (the channel's close marker says how many bytes
# were left out); typed input of a channel without a pty counts too.
max_stored_mib = 128

[audit]
# Audit events the CA cannot take now (it is down or unreachable) are written
# here, fsynced, and resent oldest first; nothing is dropped. When the spool
# holds spool_max_mib, new sessions are refused until the CA is back (live
# sessions may still spool up to four times as much).
spool_dir = "spool/events"
spool_max_mib = 1024

[limits]
max_sessions_per_user = 10
max_sessions = 1000
auth_timeout_secs = 30
idle_timeout_secs = 3600
connections_per_second = 20
connection_burst = 40

[metrics]
# Prometheus /metrics over plain HTTP (docs/metrics.md, "Bastion series"). Off
# unless set; keep it on loopback or a management network.
# listen = "127.0.0.1:9465"

# Targets users may reach. `host_key` is "host-ca" (the target presents a host
# certificate from the Rampart host CA naming it) or a pinned public key line.
# [[targets]]
# name = "db-1"
# address = "10.0.0.5"
# port = 22
# labels = {{ env = "prod" }}
# host_key = "host-ca"
"#
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
    use super::*;

    const FP: &str = "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU";

    #[test]
    fn default_file_parses_with_documented_defaults() {
        let text = render_default("bastion-1", "https://127.0.0.1:8443", FP);
        let c = Config::parse(&text, Path::new("/etc/rampart")).unwrap();
        assert_eq!(c.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(c.limits.max_sessions_per_user, 10);
        assert_eq!(c.limits.max_sessions, 1000);
        assert_eq!(c.limits.auth_timeout, Duration::from_secs(30));
        assert_eq!(c.revocation_poll, Duration::from_secs(2));
        assert_eq!(c.credential_file, Path::new("/etc/rampart/credential"));
        assert!(c.targets.is_empty());
    }

    #[test]
    fn unknown_keys_bad_targets_and_pins_are_refused() {
        let base = render_default("b", "https://x:1", FP);
        let with = |extra: &str| Config::parse(&format!("{base}\n{extra}"), Path::new("/"));
        assert!(with("[[targets]]\nname = \"db-1\"\naddress = \"h\"\ncolour = 1").is_err());
        assert!(with("[[targets]]\nname = \"db 1\"\naddress = \"h\"").is_err());
        assert!(
            with("[[targets]]\nname = \"db-1\"\naddress = \"h\"\nhost_key = \"nope\"").is_err()
        );
        let twice = "[[targets]]\nname = \"a\"\naddress = \"h\"\n[[targets]]\nname = \"a\"\naddress = \"h\"";
        assert!(with(twice).is_err());
        let ok = with("[[targets]]\nname = \"db-1\"\naddress = \"127.0.0.1\"\nport = 2200\nlabels = { env = \"prod\" }\nhost_key = \"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\"").unwrap();
        let t = &ok.targets["db-1"];
        assert_eq!(t.port, 2200);
        assert!(matches!(t.host_key, HostKeyCheck::Pinned(_)));
        assert!(
            Config::parse(&base.replace("version = 1", "version = 2"), Path::new("/")).is_err()
        );
    }

    fn target(name: &str, address: &str, extra: &str) -> String {
        format!("\n[[targets]]\nname = \"{name}\"\naddress = \"{address}\"\n{extra}\n")
    }

    #[test]
    fn a_reload_takes_targets_and_limits_and_names_what_needs_a_restart() {
        let base = render_default("b", "https://x:1", FP);
        let dir = Path::new("/etc/rampart-bastion");
        let parse = |text: &str| Config::parse(text, dir).unwrap();
        let running = parse(&format!(
            "{base}{}{}{}",
            target("db-1", "10.0.0.1", ""),
            target("db-2", "10.0.0.2", ""),
            target("db-3", "10.0.0.3", "labels = { env = \"prod\" }"),
        ));
        assert!(running.reload_diff(&running.clone()).unwrap().is_empty());

        // db-1 gone, db-2 on another port, db-3 relabelled, db-4 new; two
        // reloadable settings changed.
        let text = base
            .replace("max_sessions_per_user = 10", "max_sessions_per_user = 3")
            .replace("# revocation_poll_ms = 2000", "revocation_poll_ms = 500");
        let new = parse(&format!(
            "{text}{}{}{}",
            target("db-2", "10.0.0.2", "port = 2200"),
            target("db-3", "10.0.0.3", "labels = { env = \"dev\" }"),
            target("db-4", "10.0.0.4", ""),
        ));
        let change = running.reload_diff(&new).unwrap();
        assert_eq!(change.added, ["db-4"]);
        assert_eq!(change.removed, ["db-1"]);
        assert_eq!(change.changed, ["db-2", "db-3"]);
        assert_eq!(
            change.settings,
            ["ca.revocation_poll_ms", "limits.max_sessions_per_user"]
        );
        // A pinned host key in place of the host CA is a change of the target.
        let pinned = parse(&format!(
            "{base}{}{}{}",
            target("db-1", "10.0.0.1", "host_key = \"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\""),
            target("db-2", "10.0.0.2", ""),
            target("db-3", "10.0.0.3", "labels = { env = \"prod\" }"),
        ));
        assert_eq!(running.reload_diff(&pinned).unwrap().changed, ["db-1"]);

        // Settings bound at start-up refuse the whole reload, each named.
        let restart = |from: &str, to: &str| {
            assert!(base.contains(from), "{from}");
            running
                .reload_diff(&parse(&base.replace(from, to)))
                .unwrap_err()
        };
        assert_eq!(
            restart("listen = \"127.0.0.1:2222\"", "listen = \"0.0.0.0:22\""),
            ["listen"]
        );
        assert_eq!(
            restart("url = \"https://x:1\"", "url = \"https://y:1\""),
            ["ca.url"]
        );
        assert_eq!(
            restart("host_key = \"host_key\"", "host_key = \"other_key\""),
            ["identity.host_key"]
        );
        assert_eq!(
            restart("credential = \"credential\"", "credential = \"cred2\""),
            ["identity.credential"]
        );
        assert_eq!(
            restart("dir = \"recordings\"", "dir = \"rec\""),
            ["recording.dir"]
        );
        assert_eq!(
            restart("spool_max_mib = 1024", "spool_max_mib = 2048"),
            ["audit.spool_max_mib"]
        );
        assert_eq!(
            restart(
                "# listen = \"127.0.0.1:9465\"",
                "listen = \"127.0.0.1:9465\""
            ),
            ["metrics.listen"]
        );
        assert_eq!(restart("name = \"b\"", "name = \"c\""), ["name"]);
        // Targets changed alongside a restart-only key: still refused.
        let both = parse(&format!(
            "{}{}",
            base.replace("listen = \"127.0.0.1:2222\"", "listen = \"127.0.0.1:2223\""),
            target("db-9", "10.0.0.9", "")
        ));
        assert_eq!(running.reload_diff(&both).unwrap_err(), ["listen"]);
        // The same file moved to another directory names other files.
        let moved = Config::parse(&base, Path::new("/srv/bastion")).unwrap();
        let keys = running.reload_diff(&moved).unwrap_err();
        for key in [
            "identity.credential",
            "identity.host_key",
            "recording.dir",
            "audit.spool_dir",
        ] {
            assert!(keys.contains(&key), "{key}: {keys:?}");
        }
    }

    /// The keys a `bastion.toml` table accepts
    /// ([`rampart_policy::reference::accepted_keys`]).
    fn accepted_keys(table: &str, probe: &str) -> std::collections::BTreeSet<String> {
        rampart_policy::reference::accepted_keys::<File>(probe)
            .unwrap_or_else(|e| panic!("{table}: {e}"))
    }

    /// The keys the reference rows of bastion/README.md name, by table (`""`
    /// the top level): a row's first cell lists backticked keys, the first
    /// optionally prefixed by `[table]` or `[[table]]`; a table row also makes
    /// the table a key of the top level.
    fn documented_keys(readme: &str) -> BTreeMap<String, std::collections::BTreeSet<String>> {
        let start = readme
            .find("| `version` |")
            .expect("bastion/README.md has no reference table (a `version` row)");
        let rows = readme.get(start..).unwrap_or_default();
        let mut tables: BTreeMap<String, std::collections::BTreeSet<String>> = BTreeMap::new();
        for line in rows.lines().take_while(|l| l.starts_with('|')) {
            let cell = line.split('|').nth(1).unwrap_or_default();
            let mut table = String::new();
            for (n, span) in cell.split('`').skip(1).step_by(2).enumerate() {
                let mut key = span.trim();
                if n == 0 && key.starts_with('[') {
                    let open = key.trim_start_matches('[');
                    let (t, rest) = open.split_once(']').unwrap_or((open, ""));
                    table = t.to_owned();
                    key = rest.trim_start_matches(']').trim();
                    tables
                        .entry(String::new())
                        .or_default()
                        .insert(table.clone());
                }
                if !key.is_empty() {
                    tables
                        .entry(table.clone())
                        .or_default()
                        .insert(key.to_owned());
                }
            }
        }
        tables
    }

    /// Every key each `bastion.toml` table accepts has a row in the reference
    /// of bastion/README.md, and every key a row names is accepted: a key
    /// added, renamed or removed in the code without the README fails here.
    #[test]
    fn the_readme_reference_lists_exactly_the_keys_bastion_toml_accepts() {
        let documented = documented_keys(include_str!("../README.md"));
        let probes = [
            ("", "zz_unknown_key = 1"),
            ("ca", "[ca]\nzz_unknown_key = 1"),
            ("identity", "[identity]\nzz_unknown_key = 1"),
            ("recording", "[recording]\nzz_unknown_key = 1"),
            ("audit", "[audit]\nzz_unknown_key = 1"),
            ("limits", "[limits]\nzz_unknown_key = 1"),
            ("metrics", "[metrics]\nzz_unknown_key = 1"),
            ("targets", "[[targets]]\nzz_unknown_key = 1"),
        ];
        let show = |t: &str| {
            if t.is_empty() {
                "the top level".to_owned()
            } else {
                format!("[{t}]")
            }
        };
        let mut problems = Vec::new();
        for (table, probe) in probes {
            let accepted = accepted_keys(&show(table), probe);
            let listed = documented.get(table).cloned().unwrap_or_default();
            for key in accepted.difference(&listed) {
                problems.push(format!(
                    "{}: key `{key}` is accepted by the code but has no reference row in bastion/README.md",
                    show(table)
                ));
            }
            for key in listed.difference(&accepted) {
                problems.push(format!(
                    "{}: key `{key}` is documented in bastion/README.md but the code refuses it",
                    show(table)
                ));
            }
        }
        for table in documented.keys() {
            if !probes.iter().any(|(t, _)| t == table) {
                problems.push(format!(
                    "{}: documented in bastion/README.md but not a table of bastion.toml \
                     (or missing from this test's probes)",
                    show(table)
                ));
            }
        }
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }
}
