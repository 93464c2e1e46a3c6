//! The command line, as clap types. No behaviour lives here.
//!
//! `mod.rs` holds the top level ([`Cli`] and its [`Command`]s); each command
//! that takes more than a few flags has its arguments in a file of its own:
//!
//! - `login.rs`: `rampart enroll` and `rampart login`, and their choices of
//!   key and factor.
//! - `admin.rs`: `rampart admin …`: users, invites, revocation, host
//!   certificates, bastion tokens.
//! - `audit.rs`: `rampart audit verify` and `rampart audit export`.
//! - `policy.rs`: `rampart policy check` and `rampart policy test`.
//! - `host.rs`: `rampart host …`: KRL sync, sshd principals, install.
//! - `dev.rs`: `rampart dev`.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

mod admin;
mod audit;
mod dev;
mod host;
mod login;
mod policy;

pub use admin::{AdminCommand, HostCertArgs, RevokeArgs, UserCommand};
pub use audit::{AuditCommand, AuditExportArgs, ExportFormatArg};
pub use dev::DevArgs;
pub use host::{HostCommand, InstallArgs, KrlSyncArgs, PrincipalsArgs, RenewCertArgs};
pub use login::{EnrollArgs, KeyChoice, LoginArgs, MfaMethod};
pub use policy::{FactorArg, PolicyCommand, PolicyTestArgs};

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

#[cfg(test)]
mod tests {
    use std::time::Duration;

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
