//! `rampart enroll` and `rampart login`: getting a certificate, and the key
//! and factor a login uses.

use std::time::Duration;

use clap::Args;

use crate::duration;

/// `rampart enroll`.
#[derive(Debug, Args)]
pub struct EnrollArgs {
    /// CA URL, e.g. https://ca.example.com:8443; several CAs sharing one database:
    /// comma-separated, tried in turn when one cannot be reached.
    #[arg(long, env = "RAMPART_CA", value_name = "URL")]
    pub ca: String,
    /// The invite code your admin gave you.
    #[arg(long, value_name = "CODE")]
    pub invite: String,
    /// SHA-256 fingerprint of the CA's TLS certificate (printed by `rampart-ca init`).
    #[arg(long, env = "RAMPART_CA_FINGERPRINT", value_name = "SHA256:…")]
    pub ca_fingerprint: Option<String>,
    /// Read the TOTP code from standard input instead of prompting.
    #[arg(long)]
    pub code_stdin: bool,
    /// Enrol a security key in a browser (WebAuthn) instead of TOTP.
    #[arg(long, conflicts_with_all = ["fido2", "code_stdin"])]
    pub webauthn: bool,
    /// Enrol a USB security key from this terminal (CTAP2) instead of TOTP.
    #[arg(long, conflicts_with = "code_stdin")]
    pub fido2: bool,
    /// A name for the security key, e.g. yubikey-blue.
    #[arg(long, value_name = "NAME", default_value = "security-key")]
    pub key_name: String,
    /// Redeem the invite by logging in at this identity provider (OpenID
    /// Connect, in a browser): links your account there to the invited user,
    /// then logs you in and writes the certificate, like `rampart login`.
    #[arg(long, value_name = "PROVIDER", conflicts_with_all = ["webauthn", "fido2", "code_stdin"])]
    pub oidc: Option<String>,
    /// With --oidc: use the device authorisation grant (a code to type on
    /// another device's browser), for terminals without one.
    #[arg(long, requires = "oidc")]
    pub device: bool,
    /// With --webauthn or --oidc: print the URL instead of opening a browser.
    #[arg(long)]
    pub no_browser: bool,
}

/// `rampart login`.
#[derive(Debug, Args)]
pub struct LoginArgs {
    /// CA URL (default: the one saved by `enroll`).
    #[arg(long, env = "RAMPART_CA", value_name = "URL")]
    pub ca: Option<String>,
    /// CA TLS certificate fingerprint (default: the saved one).
    #[arg(long, env = "RAMPART_CA_FINGERPRINT", value_name = "SHA256:…")]
    pub ca_fingerprint: Option<String>,
    /// Rampart user name (default: the saved one).
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,
    /// Read the code from standard input instead of prompting.
    #[arg(long)]
    pub code_stdin: bool,
    /// Use a recovery code instead of a TOTP code.
    #[arg(long)]
    pub recovery: bool,
    /// Requested certificate lifetime (policy clamps it), e.g. 1h.
    #[arg(long, value_parser = duration::parse, value_name = "DURATION")]
    pub ttl: Option<Duration>,
    /// Certify this ssh-agent key (by `SHA256:` fingerprint) instead of the file key.
    #[arg(long, value_name = "SHA256:…")]
    pub agent_key: Option<String>,
    /// Where the key lives: `file` (the file key, created if missing) or `piv`
    /// (YubiKey PIV slot 9a: generated there once, sent with its attestation so
    /// that roles needing a hardware-bound key can be granted).
    #[arg(long, value_enum, default_value = "file", conflicts_with = "agent_key")]
    pub key: KeyChoice,
    /// The factor: a TOTP code (`--recovery` for a recovery code), a login at
    /// the identity provider named by `--provider` (`oidc`, in a browser), a
    /// security key approved in a browser (`webauthn`), or a USB security key
    /// used from this terminal (`fido2`).
    #[arg(long, value_enum, default_value = "totp")]
    pub mfa: MfaMethod,
    /// Identity provider for `--mfa oidc`, as named in the CA's config.
    #[arg(long, value_name = "NAME")]
    pub provider: Option<String>,
    /// With `--mfa oidc` or `webauthn`: print the URL instead of opening a browser.
    #[arg(long)]
    pub no_browser: bool,
    /// With `--mfa oidc`: use the device authorisation grant (a code to type on
    /// another device's browser), for terminals without one.
    #[arg(long)]
    pub device: bool,
    /// Also offer the certificate to hosts matching this ssh_config `Host`
    /// pattern (e.g. `db-*` or `*.prod.example.com`), besides the CA's bastions.
    /// Repeatable; the list is remembered and replaces the saved one.
    #[arg(long = "ssh-host", value_name = "PATTERN")]
    pub ssh_hosts: Vec<String>,
}

/// `rampart login --key`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum KeyChoice {
    /// The file key in the state directory (or `--agent-key`).
    File,
    /// The key in YubiKey PIV slot 9a, with its attestation.
    Piv,
}

/// `rampart login --mfa`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum MfaMethod {
    /// A TOTP (or, with `--recovery`, recovery) code.
    Totp,
    /// An OpenID Connect login at an identity provider.
    Oidc,
    /// A security key, approved on a page the CA serves (opened in a browser).
    Webauthn,
    /// A USB security key, used directly from this terminal (CTAP2).
    Fido2,
}
