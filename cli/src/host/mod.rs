//! `rampart host …`: the helpers a production host runs next to sshd.
//!
//! - `krl-sync` ([`krl`]): fetch the CA's signed KRL, verify it with the
//!   user CA key the host already trusts, refuse rollbacks, install it atomically;
//! - `principals` ([`principals`]): sshd's `AuthorizedPrincipalsCommand`,
//!   mapping certificate principals to local accounts by a host policy file;
//! - `install` ([`install`]): the sshd drop-in, CA key, policy example
//!   and krl-sync timer, printed or written idempotently.
//!
//! These commands run as root under systemd or as sshd's
//! `AuthorizedPrincipalsCommandUser`, without a home directory, so they never
//! touch `$RAMPART_HOME`.
//!
//! Exit codes of their own (the rest are the table in [`crate::error`]):
//!
//! | code | meaning |
//! |-----:|---------|
//! | 20 | `krl-sync`: the fetched KRL was refused — bad or missing signature, signed by a key not in `--ca-key`, not a KRL, or older than `--max-age`. The installed file is untouched. |
//! | 21 | `krl-sync`: the fetched KRL's version is older than the installed one (a rollback). The installed file is untouched. |
//! | 22 | `krl-sync`: the CA's user CA key set was refused (not signed by a key in `--ca-key`, or malformed). The installed keys and KRL are untouched. |

mod install;
mod krl;
mod principals;
mod renew;

use std::process::ExitCode;

use crate::cli::HostCommand;
use crate::error::CliError;

/// Exit code: the KRL (or its signature) was refused.
pub const EXIT_KRL_REFUSED: u8 = 20;
/// Exit code: the KRL is older than the installed one.
pub const EXIT_KRL_ROLLBACK: u8 = 21;
/// Exit code: the CA's user CA key set was refused.
pub const EXIT_CA_KEYS_REFUSED: u8 = 22;

/// Why a host command failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HostError {
    /// One of the CLI's common failures (usage, unreadable file, CA unreachable…).
    #[error(transparent)]
    Cli(#[from] CliError),
    /// The fetched KRL or its signature is not acceptable (exit 20).
    #[error("{0}")]
    KrlRefused(String),
    /// The fetched KRL is older than the installed one (exit 21).
    #[error("refusing KRL version {fetched}: the installed {path} has version {installed}")]
    KrlRollback {
        /// Version the CA served.
        fetched: u64,
        /// Version installed now.
        installed: u64,
        /// The installed file.
        path: String,
    },
    /// The CA's user CA key set is not acceptable (exit 22).
    #[error("{0}")]
    CaKeysRefused(String),
}

impl HostError {
    /// The documented exit code.
    pub fn exit_code(&self) -> u8 {
        match self {
            HostError::Cli(e) => e.exit_code(),
            HostError::KrlRefused(_) => EXIT_KRL_REFUSED,
            HostError::KrlRollback { .. } => EXIT_KRL_ROLLBACK,
            HostError::CaKeysRefused(_) => EXIT_CA_KEYS_REFUSED,
        }
    }
}

/// Run one `rampart host` command. Common errors go back to `main` as
/// [`CliError`]; the host-specific ones are printed here with their own code.
pub fn run(cmd: HostCommand) -> Result<ExitCode, CliError> {
    let result = match cmd {
        HostCommand::KrlSync(a) => krl::run(&a),
        HostCommand::Principals(a) => principals::run(&a),
        HostCommand::Install(a) => install::run(&a),
        HostCommand::RenewCert(a) => renew::run(&a),
    };
    match result {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(HostError::Cli(e)) => Err(e),
        Err(e) => {
            let line = e
                .to_string()
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ");
            eprintln!("rampart: error: {line}");
            Ok(ExitCode::from(e.exit_code()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_are_the_documented_ones() {
        assert_eq!(HostError::KrlRefused("x".into()).exit_code(), 20);
        let e = HostError::KrlRollback {
            fetched: 3,
            installed: 5,
            path: "/etc/ssh/rampart.krl".into(),
        };
        assert_eq!(e.exit_code(), 21);
        assert_eq!(
            e.to_string(),
            "refusing KRL version 3: the installed /etc/ssh/rampart.krl has version 5"
        );
        assert_eq!(
            HostError::from(CliError::Usage("u".into())).exit_code(),
            crate::error::EXIT_USAGE
        );
    }
}
