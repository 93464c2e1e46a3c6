//! `rampart admin …`: users, invites, revocation, host certificates and
//! bastion join tokens.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};

use crate::duration;

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
    /// Create a single-use join token for a host's first certificate
    /// (`rampart host install --join-token=…` on the host).
    HostToken {
        /// Host name (the certificate's key ID and first principal).
        #[arg(long, value_name = "NAME")]
        name: String,
        /// Further principal (repeatable).
        #[arg(long = "principal", value_name = "P")]
        principals: Vec<String>,
        /// Token lifetime (at most 7d).
        #[arg(long, value_parser = duration::parse, default_value = "1h", value_name = "DURATION")]
        ttl: Duration,
    },
    /// List the host join tokens: unused ones, and those used or expired in
    /// the last day (withdraw one with `revoke --host-token ID`).
    HostTokens {
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
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
#[command(group(clap::ArgGroup::new("what").required(true).args(["serial", "user", "key", "bastion", "host_token"])))]
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
    /// An unused host join token, by the ID `rampart admin host-tokens` shows:
    /// it stops working.
    #[arg(long, value_name = "ID")]
    pub host_token: Option<String>,
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
