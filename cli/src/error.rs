//! User-facing errors of the `rampart` binary and their fixed exit codes.
//!
//! Every failure a person can cause ends as exactly one line on stderr,
//! `rampart: error: <message>`, and one of the exit codes below. The codes are part
//! of the interface (scripts branch on them) and never change meaning:
//!
//! | code | meaning |
//! |-----:|---------|
//! | 0 | success (`status`: a valid certificate exists; `policy test`: allowed; `dev`: stopped on request) |
//! | 1 | unexpected local failure (a file could not be written, a corrupt state file); also `status` when there is no valid certificate |
//! | 2 | bad command line or argument value (unknown flag, malformed duration, fingerprint or URL, missing `--ca-fingerprint`, empty code) |
//! | 3 | not set up or not logged in: no saved CA / user, no session or an expired one, or the CA no longer accepts the session |
//! | 4 | cannot talk to the CA: network error, TLS failure, certificate pin mismatch, or an answer that is not the API |
//! | 5 | the CA refused the request (wrong code, unknown user, not an admin, ...); the CA's message and error code are shown; also `ssh` to a target or login `rampart ls` does not list |
//! | 6 | `audit verify`: the chain or a checkpoint did not verify, a sealed recording (`--recordings`) is missing or differs from its digest, or the log could not be read as an audit log; `sessions play`: the downloaded recording does not match its sealed digest |
//! | 7 | `policy test`: the request is denied |
//! | 8 | `policy check` / `policy test`: the policy does not parse, or (`check`) has an error-severity lint |
//! | 9 | an input file named on the command line cannot be read (audit database, public key, policy file) |
//! | 10 | `dev`: `rampart-ca` is missing, failed to initialise, or stopped on its own |
//! | 20 | `host krl-sync`: the fetched KRL was refused (bad or missing signature, a key not in `--ca-key`, not a KRL, older than `--max-age`); the installed file is untouched |
//! | 21 | `host krl-sync`: the fetched KRL is older than the installed one (a rollback); the installed file is untouched |
//! | 22 | `host krl-sync`: the CA's user CA key set was refused (its signature is not by a key in `--ca-key`, or it is malformed); the installed keys and KRL are untouched |
//!
//! The same table is in `cli/README.md`; keep the two in step.

use std::path::Path;

use rampart_api::ClientError;

/// Exit code: success.
pub const EXIT_OK: u8 = 0;
/// Exit code: unexpected local failure, or `status` without a valid certificate.
pub const EXIT_FAILURE: u8 = 1;
/// Exit code: bad command line or argument value.
pub const EXIT_USAGE: u8 = 2;
/// Exit code: not enrolled, not configured, or not logged in.
pub const EXIT_NOT_LOGGED_IN: u8 = 3;
/// Exit code: the CA cannot be reached or spoke something other than the API.
pub const EXIT_UNREACHABLE: u8 = 4;
/// Exit code: the CA refused the request.
pub const EXIT_REFUSED: u8 = 5;
/// Exit code: `audit verify` found a problem.
pub const EXIT_AUDIT_FAILED: u8 = 6;
/// Exit code: `policy test` denied the request.
pub const EXIT_POLICY_DENIED: u8 = 7;
/// Exit code: the policy file is invalid.
pub const EXIT_POLICY_INVALID: u8 = 8;
/// Exit code: an input file cannot be read.
pub const EXIT_NO_INPUT: u8 = 9;
/// Exit code: `rampart dev` could not run `rampart-ca`.
pub const EXIT_DEV: u8 = 10;

/// Why a command failed, in words for the person who ran it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CliError {
    /// The command line or an argument value is wrong (exit 2).
    #[error("{0}")]
    Usage(String),
    /// No CA or user is configured, or no session exists (exit 3).
    #[error("{0}")]
    NotLoggedIn(String),
    /// The CA could not be reached or answered nonsense (exit 4).
    #[error("{0}")]
    Unreachable(String),
    /// The CA refused; the text is the CA's own message and code (exit 5).
    #[error("{0}")]
    Refused(String),
    /// The audit log could not be verified at all (exit 6).
    #[error("{0}")]
    Audit(String),
    /// The policy file is invalid (exit 8).
    #[error("{0}")]
    PolicyInvalid(String),
    /// A file named on the command line cannot be read (exit 9).
    #[error("cannot read {path}: {detail}")]
    NoInput {
        /// The file.
        path: String,
        /// Why, as the OS put it.
        detail: String,
    },
    /// `rampart dev` could not run the CA (exit 10).
    #[error("{0}")]
    Dev(String),
    /// Anything else that went wrong locally (exit 1), with its causes on one line.
    #[error("{0:#}")]
    Other(anyhow::Error),
}

impl CliError {
    /// The documented exit code of this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_) => EXIT_USAGE,
            CliError::NotLoggedIn(_) => EXIT_NOT_LOGGED_IN,
            CliError::Unreachable(_) => EXIT_UNREACHABLE,
            CliError::Refused(_) => EXIT_REFUSED,
            CliError::Audit(_) => EXIT_AUDIT_FAILED,
            CliError::PolicyInvalid(_) => EXIT_POLICY_INVALID,
            CliError::NoInput { .. } => EXIT_NO_INPUT,
            CliError::Dev(_) => EXIT_DEV,
            CliError::Other(_) => EXIT_FAILURE,
        }
    }

    /// The message as exactly one line (newlines from lower layers folded).
    pub fn one_line(&self) -> String {
        let text = self.to_string();
        text.split_whitespace().collect::<Vec<_>>().join(" ")
    }

    /// The standard "you need a session" error.
    pub fn log_in_first() -> Self {
        CliError::NotLoggedIn("log in first (`rampart login`)".to_owned())
    }

    /// A file given on the command line could not be read.
    pub fn no_input(path: &Path, err: &std::io::Error) -> Self {
        CliError::NoInput {
            path: path.display().to_string(),
            detail: io_detail(err),
        }
    }

    /// Map an API client error for a request that carried a session token: a 401
    /// means the session is gone, so the fix is to log in again.
    pub fn from_session_call(err: ClientError) -> Self {
        match err {
            ClientError::Api {
                status: 401,
                message,
                ..
            } => CliError::NotLoggedIn(format!("{message}; log in again (`rampart login`)")),
            other => other.into(),
        }
    }
}

impl From<ClientError> for CliError {
    fn from(err: ClientError) -> Self {
        match err {
            ClientError::BadFingerprint(_) | ClientError::BadUrl(_) => {
                CliError::Usage(err.to_string())
            }
            ClientError::Api { code, message, .. } => {
                CliError::Refused(format!("{message} ({code})"))
            }
            // Tls, Transport, Decode and whatever later versions add: the CA is not
            // answering as the API we know.
            other => CliError::Unreachable(other.to_string()),
        }
    }
}

impl From<anyhow::Error> for CliError {
    fn from(err: anyhow::Error) -> Self {
        CliError::Other(err)
    }
}

/// `No such file or directory` rather than `No such file or directory (os error 2)`.
pub fn io_detail(err: &std::io::Error) -> String {
    let s = err.to_string();
    match s.find(" (os error") {
        Some(i) => s.get(..i).unwrap_or(&s).to_owned(),
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_errors_map_to_documented_codes() {
        let api = ClientError::Api {
            status: 403,
            code: "not_admin".into(),
            message: "admin rights required".into(),
        };
        let e = CliError::from(api);
        assert_eq!(e.exit_code(), EXIT_REFUSED);
        assert_eq!(e.to_string(), "admin rights required (not_admin)");

        let e = CliError::from_session_call(ClientError::Api {
            status: 401,
            code: "session_expired".into(),
            message: "session expired".into(),
        });
        assert_eq!(e.exit_code(), EXIT_NOT_LOGGED_IN);
        assert_eq!(
            e.to_string(),
            "session expired; log in again (`rampart login`)"
        );

        let e = CliError::from(ClientError::Transport {
            url: "https://x".into(),
            detail: "refused".into(),
        });
        assert_eq!(e.exit_code(), EXIT_UNREACHABLE);
        let e = CliError::from(ClientError::BadUrl("http://x".into()));
        assert_eq!(e.exit_code(), EXIT_USAGE);
    }

    #[test]
    fn messages_are_one_line() {
        let e = CliError::Refused("line one\nline two".into());
        assert_eq!(e.one_line(), "line one line two");
        let e = CliError::Other(anyhow::anyhow!("inner").context("outer"));
        assert_eq!(e.one_line(), "outer: inner");
        assert_eq!(e.exit_code(), EXIT_FAILURE);
    }

    #[test]
    fn io_detail_drops_os_error_number() {
        let err = std::io::Error::from_raw_os_error(2);
        assert_eq!(io_detail(&err), "No such file or directory");
    }
}
