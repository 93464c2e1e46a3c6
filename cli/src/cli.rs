//! The command line, as clap types. No behaviour lives here.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::duration;

/// Get short-lived OpenSSH certificates from a Rampart CA, and administer it.
#[derive(Debug, Parser)]
#[command(name = "rampart", version, propagate_version = true)]
#[command(
    after_help = "Exit codes: 0 ok, 1 failure (or `status` without a valid \
    certificate), 2 usage, 3 not logged in, 4 CA unreachable, 5 CA refused, \
    6 audit verification failed, 7 policy denied, 8 policy invalid, \
    9 unreadable input file, 10 `dev` could not run rampart-ca.\n\n\
    DURATION: <number><unit> groups, added up, units w d h m s \
    (90s, 15m, 1h30m, 7d, 2w), or a bare number of seconds."
)]
pub struct Cli {
    /// State directory (config, key, certificate, session).
    #[arg(long, global = true, env = "RAMPART_HOME", value_name = "DIR")]
    pub home: Option<PathBuf>,

    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Redeem an invite: register TOTP (or a security key) and receive recovery codes.
    Enroll(EnrollArgs),
    /// Prove MFA and get a certificate for your SSH key.
    Login(LoginArgs),
    /// Show who you are and how long your certificate lasts (exit 1 without a valid one).
    Status {
        /// One JSON object instead of the text (the exit status is the same).
        #[arg(long)]
        json: bool,
    },
    /// End the session, delete the certificate and remove the key from ssh-agent.
    Logout,
    /// List the targets you may reach through the bastions, with your logins there.
    Ls {
        /// One JSON object instead of the table (fields in cli/README.md).
        #[arg(long)]
        json: bool,
    },
    /// Run ssh to LOGIN@TARGET through the bastion that serves it.
    Ssh {
        /// ssh's own options, LOGIN@TARGET, then the remote command: passed to
        /// ssh unchanged, after `-F <Rampart's ssh_config> -J <bastion>`.
        #[arg(
            trailing_var_arg = true,
            allow_hyphen_values = true,
            required = true,
            value_name = "SSH_ARGS"
        )]
        args: Vec<String>,
    },
    /// Add, list and remove your security keys (WebAuthn / FIDO2).
    #[command(subcommand)]
    Keys(crate::keys::KeysCommand),
    /// Administer users, invites, revocations and host certificates.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Work with the audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// List bastion sessions and replay their recordings (admin).
    #[command(subcommand)]
    Sessions(crate::admin::sessions::SessionsCommand),
    /// Check and try out a policy file.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Print a shell completion script.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: rampart_completions::Shell,
    },
    /// Run a local CA for trying Rampart on one machine.
    Dev(DevArgs),
    /// Helpers for production hosts: KRL sync, sshd principals, install.
    #[command(subcommand)]
    Host(HostCommand),
}

/// `rampart host …`.
#[derive(Debug, Subcommand)]
#[command(
    after_help = "Exit codes besides the common ones: 20 the fetched KRL was refused \
    (bad signature, wrong key, not a KRL, too old), 21 it is older than the installed one."
)]
pub enum HostCommand {
    /// Fetch the CA's signed KRL, verify it, and install it atomically for `RevokedKeys`.
    KrlSync(KrlSyncArgs),
    /// For sshd's AuthorizedPrincipalsCommand: print the certificate principals the
    /// host policy accepts for an account.
    Principals(PrincipalsArgs),
    /// Print (or write with --write) the sshd drop-in, CA key, host policy and timer.
    Install(InstallArgs),
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
}

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

/// `rampart admin …`.
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Manage users.
    #[command(subcommand)]
    User(UserCommand),
    /// Create a single-use enrolment invite for an existing user.
    Invite {
        /// The user.
        user: String,
        /// Invite lifetime.
        #[arg(long, value_parser = duration::parse, default_value = "24h", value_name = "DURATION")]
        ttl: Duration,
        /// Print the `rampart enroll` line that redeems the invite with a login
        /// at this identity provider, linking the user's account there.
        #[arg(long, value_name = "PROVIDER")]
        oidc: Option<String>,
    },
    /// Revoke a certificate serial, all of a user's certificates, or a key.
    Revoke(RevokeArgs),
    /// Download the current KRL (OpenSSH binary format) for sshd's `RevokedKeys`.
    Krl {
        /// Output file (written atomically).
        #[arg(short, long, value_name = "FILE")]
        output: PathBuf,
    },
    /// Sign a host key with the host CA.
    HostCert(HostCertArgs),
    /// Create a single-use join token for a bastion (`rampart-bastion join`).
    BastionToken {
        /// Bind the token to this bastion name (a host name).
        #[arg(long, value_name = "NAME")]
        name: Option<String>,
        /// Token lifetime (at most 24h).
        #[arg(long, value_parser = duration::parse, default_value = "1h", value_name = "DURATION")]
        ttl: Duration,
    },
}

/// `rampart admin user …`.
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user.
    Add {
        /// User name.
        name: String,
        /// Group (repeatable).
        #[arg(long = "group", value_name = "GROUP")]
        groups: Vec<String>,
        /// Grant admin rights.
        #[arg(long)]
        admin: bool,
    },
    /// List users.
    List {
        /// A JSON array (the API's user objects) instead of the table.
        #[arg(long)]
        json: bool,
    },
    /// Disable a user (ends their sessions).
    Disable {
        /// User name.
        name: String,
    },
    /// Enable a disabled user.
    Enable {
        /// User name.
        name: String,
    },
    /// Replace a user's groups.
    Groups {
        /// User name.
        name: String,
        /// The new groups (none clears them).
        groups: Vec<String>,
    },
    /// Link a user to their account at an OIDC provider (its subject, `sub`),
    /// so that account can log in as the user; `--unlink` removes the link.
    #[command(group(clap::ArgGroup::new("link").required(true).args(["subject", "unlink"])))]
    Link {
        /// User name.
        name: String,
        /// The provider's name in the CA config.
        #[arg(long, value_name = "PROVIDER")]
        provider: String,
        /// The provider account's subject (the `sub` claim; the CA shows it
        /// when it refuses an unlinked login).
        #[arg(long, value_name = "SUB")]
        subject: Option<String>,
        /// Remove the user's link at this provider.
        #[arg(long)]
        unlink: bool,
    },
    /// List a user's security keys, or remove one.
    Keys {
        /// User name.
        name: String,
        /// Remove the key with this ID (from the list) instead of listing.
        #[arg(long, value_name = "ID")]
        remove: Option<String>,
    },
}

/// `rampart admin revoke`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["serial", "user", "key", "bastion"])))]
pub struct RevokeArgs {
    /// Certificate serial number.
    #[arg(long, value_name = "N")]
    pub serial: Option<u64>,
    /// Every certificate of this user (the user is disabled too).
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,
    /// A public key by fingerprint, and every certificate for it.
    #[arg(long, value_name = "SHA256:…")]
    pub key: Option<String>,
    /// A joined bastion: its CA credential stops working.
    #[arg(long, value_name = "NAME")]
    pub bastion: Option<String>,
    /// Reason, for the audit log.
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
}

/// `rampart admin host-cert`.
#[derive(Debug, Args)]
pub struct HostCertArgs {
    /// Host name (key ID and first principal).
    #[arg(long, value_name = "NAME")]
    pub name: String,
    /// The host's public key file, e.g. /etc/ssh/ssh_host_ed25519_key.pub.
    #[arg(long, value_name = "FILE")]
    pub pubkey: PathBuf,
    /// Further principal (repeatable).
    #[arg(long = "principal", value_name = "P")]
    pub principals: Vec<String>,
    /// Certificate lifetime.
    #[arg(long, value_parser = duration::parse, value_name = "DURATION")]
    pub ttl: Option<Duration>,
    /// Output file (default: the key path without `.pub`, plus `-cert.pub`).
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// `rampart audit …`.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Verify an audit database (hash chain and signed checkpoints), or prove a
    /// JSON Lines export complete and unaltered.
    #[command(group(clap::ArgGroup::new("input").required(true).args(["db", "export"])))]
    Verify {
        /// The audit database: an SQLite file, or a postgres:// URL for a log
        /// several CAs share (password from PGPASSWORD when the URL has none).
        #[arg(long, value_name = "FILE|URL")]
        db: Option<PathBuf>,
        /// A JSON Lines export (`rampart audit export --format jsonl`) to check offline.
        #[arg(long, value_name = "FILE")]
        export: Option<PathBuf>,
        /// The audit public key (OpenSSH format) to check checkpoint signatures
        /// with; required with --export.
        #[arg(long, value_name = "FILE", required_unless_present = "db")]
        audit_pubkey: Option<PathBuf>,
        /// Also check every sealed session recording in DIR (the CA's
        /// `recordings/` directory) against the digest the log sealed; needs --db.
        #[arg(long, value_name = "DIR", requires = "db")]
        recordings: Option<PathBuf>,
        /// A witness file (the CA's `[audit] witness_file`, or a copy of it from
        /// another host): fail when the database is behind any line of it, holds
        /// another hash at a witnessed sequence, or has a retention anchor the
        /// witness never saw. Needs --db.
        #[arg(long, value_name = "FILE", requires = "db")]
        witness: Option<PathBuf>,
        /// A head recorded elsewhere (the newest event's `seq` and `hash` in the
        /// SIEM, or a head this command printed before), as SEQ:HASH: fail when the
        /// database is behind it or has another hash there. Needs --db.
        #[arg(long, value_name = "SEQ:HASH", requires = "db")]
        expect_head: Option<String>,
    },
    /// Export events as JSON Lines (provable), CEF, OCSF or RFC 5424 syslog.
    Export(AuditExportArgs),
}

/// Formats of `rampart audit export`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormatArg {
    /// JSON Lines in Rampart's schema, with hashes and signed checkpoints.
    Jsonl,
    /// ArcSight Common Event Format.
    Cef,
    /// OCSF 1.3.0 JSON, one event per line.
    Ocsf,
    /// RFC 5424 syslog with structured data.
    Syslog,
}

/// `rampart audit export`.
#[derive(Debug, Args)]
pub struct AuditExportArgs {
    /// The audit database, opened read-only: an SQLite file, or a postgres://
    /// URL (password from PGPASSWORD when the URL has none).
    #[arg(long, value_name = "FILE|URL")]
    pub db: PathBuf,
    /// Output format.
    #[arg(long, value_enum)]
    pub format: ExportFormatArg,
    /// Only events at or after this time (RFC 3339, e.g. 2025-03-01T00:00:00Z).
    #[arg(long, value_name = "RFC3339")]
    pub since: Option<String>,
    /// Only events before this time (RFC 3339).
    #[arg(long, value_name = "RFC3339")]
    pub until: Option<String>,
    /// Only this kind, by name or code (repeatable; not with --format jsonl).
    #[arg(long = "kind", value_name = "KIND")]
    pub kinds: Vec<String>,
    /// Only events about this user (not with --format jsonl).
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,
    /// Output file (default: standard output).
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// `rampart policy …`.
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Parse and lint a policy file.
    Check {
        /// The policy file (TOML).
        file: PathBuf,
        /// The CA's config (`rampart-ca.toml`): also lint what depends on it,
        /// e.g. roles needing phishing-resistant keys while `[webauthn]` trusts
        /// no key model.
        #[arg(long, value_name = "FILE")]
        ca_config: Option<PathBuf>,
    },
    /// Evaluate one certificate request against a policy file.
    Test(PolicyTestArgs),
}

/// Factors `policy test` can pretend were used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FactorArg {
    /// TOTP code.
    Totp,
    /// Recovery code.
    Recovery,
    /// WebAuthn without user verification.
    Webauthn,
    /// WebAuthn with user verification (PIN or biometric) from a key the CA
    /// vouches for (attested or allow-listed): phishing-resistant.
    WebauthnUv,
    /// WebAuthn without user verification from an unattested key.
    WebauthnUnattested,
    /// WebAuthn with user verification from a key the CA does not vouch for:
    /// unattested-key.
    WebauthnUvUnattested,
    /// `webauthn`, approved on the CA's page through a link rather than by the
    /// CLI from a key on this machine (roles with `webauthn_link = false`
    /// refuse the `-link` factors).
    WebauthnLink,
    /// `webauthn-uv` approved through a link.
    WebauthnUvLink,
    /// `webauthn-unattested` approved through a link.
    WebauthnUnattestedLink,
    /// `webauthn-uv-unattested` approved through a link.
    WebauthnUvUnattestedLink,
    /// OpenID Connect step-up.
    Oidc,
}

/// `rampart policy test`.
#[derive(Debug, Args)]
pub struct PolicyTestArgs {
    /// The policy file (TOML).
    pub file: PathBuf,
    /// User name.
    #[arg(long, value_name = "USER")]
    pub user: String,
    /// The user's groups, comma-separated.
    #[arg(long, value_delimiter = ',', value_name = "G1,G2")]
    pub groups: Vec<String>,
    /// Login (principal) the user wants.
    #[arg(long, value_name = "LOGIN")]
    pub login: Option<String>,
    /// The factor used.
    #[arg(long, value_enum, default_value = "totp")]
    pub factor: FactorArg,
    /// How long ago the factor was verified.
    #[arg(long, value_parser = duration::parse, default_value = "0s", value_name = "DURATION")]
    pub mfa_age: Duration,
    /// Requested certificate lifetime.
    #[arg(long, value_parser = duration::parse, value_name = "DURATION")]
    pub ttl: Option<Duration>,
    /// Print the decision as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `rampart dev`.
#[derive(Debug, Args)]
pub struct DevArgs {
    /// Directory for the demo CA's keys, database and secrets.
    #[arg(long, default_value = "./.rampart-dev", value_name = "DIR")]
    pub dir: PathBuf,
    /// Address the CA listens on.
    #[arg(long, default_value = "127.0.0.1:8443", value_name = "ADDR")]
    pub listen: SocketAddr,
    /// The `rampart-ca` binary (default: beside `rampart`, else on PATH).
    #[arg(long, value_name = "FILE")]
    pub ca_bin: Option<PathBuf>,
    /// Run only the CA, no bastion.
    #[arg(long)]
    pub no_bastion: bool,
    /// Address the bastion listens on.
    #[arg(long, default_value = "127.0.0.1:2222", value_name = "ADDR")]
    pub bastion_listen: String,
    /// The `rampart-bastion` binary (default: beside `rampart`, else on PATH).
    #[arg(long, value_name = "FILE")]
    pub bastion_bin: Option<PathBuf>,
    /// The demo target, `NAME=HOST[:PORT]` (default: the local sshd on
    /// 127.0.0.1:22 when one listens). Used when the bastion is first joined.
    #[arg(long, value_name = "NAME=HOST[:PORT]")]
    pub target: Option<String>,
    /// Pin the target's host key from this public key file (default for the
    /// local sshd: /etc/ssh/ssh_host_ed25519_key.pub; for --target: expect a
    /// host certificate from the Rampart host CA).
    #[arg(long, value_name = "FILE")]
    pub target_host_key: Option<PathBuf>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn command_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn revoke_needs_exactly_one_target() {
        assert!(Cli::try_parse_from(["rampart", "admin", "revoke"]).is_err());
        assert!(Cli::try_parse_from([
            "rampart", "admin", "revoke", "--serial", "1", "--user", "a"
        ])
        .is_err());
        assert!(Cli::try_parse_from(["rampart", "admin", "revoke", "--serial", "7"]).is_ok());
    }

    #[test]
    fn security_key_flags_parse_and_conflict() {
        let base = ["rampart", "enroll", "--ca", "https://x", "--invite", "c"];
        let parse = |extra: &[&str]| {
            let mut v: Vec<&str> = base.to_vec();
            v.extend_from_slice(extra);
            Cli::try_parse_from(v)
        };
        let Command::Enroll(e) = parse(&["--fido2", "--key-name", "blue"]).unwrap().command else {
            panic!("wrong command")
        };
        assert!(e.fido2 && !e.webauthn);
        assert_eq!(e.key_name, "blue");
        assert!(parse(&["--webauthn", "--fido2"]).is_err());
        assert!(parse(&["--fido2", "--code-stdin"]).is_err());

        let Command::Enroll(e) = parse(&["--oidc", "corp", "--no-browser"]).unwrap().command else {
            panic!("wrong command")
        };
        assert_eq!(e.oidc.as_deref(), Some("corp"));
        assert!(e.no_browser && !e.device);
        for other in ["--webauthn", "--fido2", "--code-stdin"] {
            assert!(
                parse(&["--oidc", "corp", other]).is_err(),
                "--oidc with {other}"
            );
        }
        assert!(parse(&["--oidc", "corp", "--device"]).is_ok());
        assert!(parse(&["--device"]).is_err(), "--device needs --oidc");

        let cli = Cli::try_parse_from(["rampart", "login", "--mfa", "fido2"]).unwrap();
        let Command::Login(l) = cli.command else {
            panic!("wrong command")
        };
        assert_eq!(l.mfa, MfaMethod::Fido2);
        let cli =
            Cli::try_parse_from(["rampart", "login", "--mfa", "webauthn", "--no-browser"]).unwrap();
        let Command::Login(l) = cli.command else {
            panic!("wrong command")
        };
        assert_eq!(l.mfa, MfaMethod::Webauthn);
        assert!(l.no_browser);

        let cli = Cli::try_parse_from([
            "rampart", "admin", "user", "keys", "alice", "--remove", "k1",
        ])
        .unwrap();
        let Command::Admin(AdminCommand::User(UserCommand::Keys { name, remove })) = cli.command
        else {
            panic!("wrong command")
        };
        assert_eq!((name.as_str(), remove.as_deref()), ("alice", Some("k1")));
        assert!(
            Cli::try_parse_from(["rampart", "keys", "add", "k", "--fido2", "--no-browser"])
                .is_err()
        );
        assert!(Cli::try_parse_from(["rampart", "keys", "remove", "k1"]).is_ok());
    }

    #[test]
    fn ssh_takes_every_argument_as_given() {
        let cli = Cli::try_parse_from([
            "rampart",
            "ssh",
            "-t",
            "-p",
            "22",
            "root@db-1",
            "ls",
            "--all",
            "-l",
        ])
        .unwrap();
        let Command::Ssh { args } = cli.command else {
            panic!("wrong command")
        };
        assert_eq!(args, ["-t", "-p", "22", "root@db-1", "ls", "--all", "-l"]);
        assert!(Cli::try_parse_from(["rampart", "ssh"]).is_err());
    }

    #[test]
    fn groups_split_on_commas() {
        let cli = Cli::try_parse_from([
            "rampart", "policy", "test", "p.toml", "--user", "a", "--groups", "x,y",
        ])
        .unwrap();
        let Command::Policy(PolicyCommand::Test(t)) = cli.command else {
            panic!("wrong command")
        };
        assert_eq!(t.groups, ["x", "y"]);
        assert_eq!(t.factor, FactorArg::Totp);
        assert_eq!(t.mfa_age, Duration::ZERO);
    }
}
