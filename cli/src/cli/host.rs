//! `rampart host …`: the helpers a production host runs (KRL sync, sshd's
//! principals command, install).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};

use crate::duration;

/// `rampart host …`.
#[derive(Debug, Subcommand)]
#[command(
    after_help = "Exit codes besides the common ones: 20 the fetched KRL was refused \
    (bad signature, wrong key, not a KRL, too old), 21 it is older than the installed one, \
    22 the CA's user CA key set was refused."
)]
pub enum HostCommand {
    /// Fetch the CA's signed KRL, verify it, and install it atomically for `RevokedKeys`.
    KrlSync(KrlSyncArgs),
    /// For sshd's AuthorizedPrincipalsCommand: print the certificate principals the
    /// host policy accepts for an account.
    Principals(PrincipalsArgs),
    /// Print (or write with --write) the sshd drop-in, CA key, host policy and timer.
    Install(InstallArgs),
    /// Renew this host's certificate from the CA before it expires, proving
    /// the host holds the current one and its key (run daily by
    /// rampart-host-cert.timer); the first one comes from `rampart admin host-cert`.
    RenewCert(RenewCertArgs),
}

/// `rampart host renew-cert`.
#[derive(Debug, Args)]
pub struct RenewCertArgs {
    /// CA URL, e.g. https://ca.example.com:8443; several CAs sharing one database:
    /// comma-separated, tried in turn when one cannot be reached.
    #[arg(long, env = "RAMPART_CA", value_name = "URL")]
    pub ca: String,
    /// SHA-256 fingerprint of the CA's TLS certificate.
    #[arg(long, env = "RAMPART_CA_FINGERPRINT", value_name = "SHA256:…")]
    pub ca_fingerprint: String,
    /// The host's private key (sshd's HostKey).
    #[arg(
        long,
        default_value = "/etc/ssh/ssh_host_ed25519_key",
        value_name = "FILE"
    )]
    pub key: PathBuf,
    /// The host certificate to renew and replace (sshd's HostCertificate);
    /// default: the key's path with -cert.pub.
    #[arg(long, value_name = "FILE")]
    pub cert: Option<PathBuf>,
    /// Renew only when less than this is left of the certificate, e.g. 10d.
    #[arg(long, value_parser = duration::parse, default_value = "10d", value_name = "DURATION")]
    pub renew_before: Duration,
}

/// `rampart host krl-sync`.
#[derive(Debug, Args)]
pub struct KrlSyncArgs {
    /// CA URL, e.g. https://ca.example.com:8443; several CAs sharing one database:
    /// comma-separated, tried in turn when one cannot be reached.
    #[arg(long, env = "RAMPART_CA", value_name = "URL")]
    pub ca: String,
    /// SHA-256 fingerprint of the CA's TLS certificate.
    #[arg(long, env = "RAMPART_CA_FINGERPRINT", value_name = "SHA256:…")]
    pub ca_fingerprint: String,
    /// The user CA public key(s) the KRL signature must verify with (the
    /// TrustedUserCAKeys file).
    #[arg(
        long,
        default_value = "/etc/ssh/rampart_user_ca.pub",
        value_name = "FILE"
    )]
    pub ca_key: PathBuf,
    /// Where to install the KRL (its signature goes to FILE.sig).
    #[arg(long, default_value = "/etc/ssh/rampart.krl", value_name = "FILE")]
    pub out: PathBuf,
    /// Refuse a KRL whose signed generation date is older than this (the CA
    /// re-signs its KRL hourly), e.g. 6h.
    #[arg(long, value_parser = duration::parse, value_name = "DURATION")]
    pub max_age: Option<Duration>,
}

/// `rampart host principals`.
#[derive(Debug, Args)]
pub struct PrincipalsArgs {
    /// The host policy file (TOML).
    #[arg(
        long,
        default_value = "/etc/rampart/host-policy.toml",
        value_name = "FILE"
    )]
    pub policy: PathBuf,
    /// The local account being logged in to (sshd's %u).
    #[arg(value_name = "ACCOUNT")]
    pub account: String,
    /// The key type (sshd's %t), e.g. ssh-ed25519-cert-v01@openssh.com.
    #[arg(value_name = "KEY_TYPE")]
    pub key_type: String,
    /// The certificate, base64 (sshd's %k).
    #[arg(value_name = "CERT_BASE64")]
    pub cert: String,
}

/// `rampart host install`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("ca_pair").multiple(true).args(["ca", "ca_fingerprint"])))]
pub struct InstallArgs {
    /// CA URL: fetch the user CA key and the first KRL from it, and configure the timer.
    #[arg(
        long,
        env = "RAMPART_CA",
        value_name = "URL",
        requires = "ca_fingerprint"
    )]
    pub ca: Option<String>,
    /// SHA-256 fingerprint of the CA's TLS certificate.
    #[arg(
        long,
        env = "RAMPART_CA_FINGERPRINT",
        value_name = "SHA256:…",
        requires = "ca"
    )]
    pub ca_fingerprint: Option<String>,
    /// Write the files (default: only print what would be written).
    #[arg(long)]
    pub write: bool,
    /// Write below this directory instead of / (for tests and images).
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Path of the rampart binary on the host, as sshd will run it.
    #[arg(long, default_value = "/usr/bin/rampart", value_name = "FILE")]
    pub rampart_bin: PathBuf,
    /// The unprivileged user sshd runs `rampart host principals` as.
    #[arg(long, default_value = "nobody", value_name = "USER")]
    pub principals_user: String,
    /// A host join token (`rampart admin host-token`): when the host has no
    /// certificate yet, get its first one from the CA for --host-key, and have
    /// sshd present it. Pass it as --join-token=TOKEN.
    #[arg(
        long,
        env = "RAMPART_JOIN_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN",
        requires = "ca"
    )]
    pub join_token: Option<String>,
    /// The host key the certificate is for, as sshd reads it (its `.pub` is
    /// sent; the certificate goes beside it as `…-cert.pub`).
    #[arg(
        long,
        default_value = "/etc/ssh/ssh_host_ed25519_key",
        value_name = "FILE"
    )]
    pub host_key: PathBuf,
}
