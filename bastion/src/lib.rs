//! `rampart-bastion`: the SSH bastion of Rampart (docs/architecture.md, flow 4).
//!
//! **Owns:** the SSH daemon that stock OpenSSH clients reach with
//! `ssh -J rampart@bastion:2222 root@db-1` (or `ssh -p 2222 root+db-1@bastion`):
//! certificate checks on the outer connection, target routing, termination of
//! the inner SSH session under a host certificate for the target, per-session
//! MFA, re-origination to the target with a per-session certificate, channel
//! bridging, recording and session audit events sent to the CA.
//!
//! **Must never:** hold a CA private key (every certificate comes from the CA
//! over HTTPS, authenticated by the credential from `join`), let a session
//! start that the CA could not audit (fail closed), or trust what a client says
//! about its own address.

// Tests may read the wall clock; the code they test reads it through `clock`.
#![cfg_attr(test, allow(clippy::disallowed_methods))]

pub mod audit;
pub mod auth;
pub mod bridge;
pub mod ca_client;
pub mod clock;
pub mod config;
pub mod daemon;
pub mod join;
pub mod limits;
pub mod metrics;
pub mod recording;
pub mod server;
pub mod sftp;

pub use config::Config;

/// Errors of the bastion library.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BastionError {
    /// The configuration file is missing, unreadable or invalid.
    #[error("config: {0}")]
    Config(String),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The CA refused or could not be reached.
    #[error("CA: {0}")]
    Ca(#[from] rampart_api::ClientError),
    /// Key or certificate handling failed.
    #[error("key: {0}")]
    Key(String),
    /// The SSH layer failed.
    #[error("ssh: {0}")]
    Ssh(String),
    /// A listening socket could not be opened.
    #[error("listen on {addr}")]
    Listen {
        /// The address from the config.
        addr: std::net::SocketAddr,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A signal handler could not be installed.
    #[error("install the {signal} handler")]
    Signal {
        /// The signal's name.
        signal: &'static str,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

impl BastionError {
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        BastionError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Install the process-wide rustls crypto provider once. Several rustls users end up
/// in this binary (reqwest, russh's dependencies), and a `ClientConfig::builder()`
/// panics when more than one provider is compiled in and none was chosen.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The environment variable the bastion takes its log filter from, the one its
/// systemd unit's `/etc/default/rampart-bastion` sets (as `rampart-ca` reads
/// `RAMPART_LOG`). `RUST_LOG` is still read when it is unset.
pub const LOG_ENV: &str = "RAMPART_LOG";
/// The filter when neither variable is set.
pub const DEFAULT_LOG_FILTER: &str = "info,russh=warn";

/// The tracing filter directives from `RAMPART_LOG`, else `RUST_LOG`, else
/// [`DEFAULT_LOG_FILTER`]; an empty value counts as unset.
pub fn log_directives(rampart_log: Option<&str>, rust_log: Option<&str>) -> String {
    [rampart_log, rust_log]
        .into_iter()
        .flatten()
        .map(str::trim)
        .find(|v| !v.is_empty())
        .unwrap_or(DEFAULT_LOG_FILTER)
        .to_owned()
}

/// The process's log filter (see [`log_directives`]). A filter that does not
/// parse falls back to the default rather than silencing the log.
pub fn log_filter() -> tracing_subscriber::EnvFilter {
    let rampart = std::env::var(LOG_ENV).ok();
    let rust = std::env::var("RUST_LOG").ok();
    let directives = log_directives(rampart.as_deref(), rust.as_deref());
    tracing_subscriber::EnvFilter::try_new(&directives)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_LOG_FILTER))
}

#[cfg(test)]
mod log_tests {
    use super::*;

    #[test]
    fn rampart_log_wins_over_rust_log() {
        assert_eq!(log_directives(Some("debug"), Some("warn")), "debug");
        assert_eq!(log_directives(Some("debug"), None), "debug");
    }

    #[test]
    fn rust_log_is_the_fallback_and_info_the_default() {
        assert_eq!(log_directives(None, Some("warn")), "warn");
        assert_eq!(log_directives(Some(" "), Some("warn")), "warn");
        assert_eq!(log_directives(None, None), DEFAULT_LOG_FILTER);
    }

    /// The bastion's errors keep their cause as `source` and out of their
    /// message, so the one-line form says each cause once.
    #[test]
    fn errors_say_each_cause_once_on_one_line() {
        use rampart_api::report::one_line;

        let io = || std::io::Error::new(std::io::ErrorKind::NotFound, "gone");
        // A message that leaves its source out: the source follows.
        let reload = crate::server::ReloadRefused::Invalid {
            path: "/etc/b.toml".into(),
            source: BastionError::Config("bad key".into()),
        };
        assert_eq!(one_line(&reload), "/etc/b.toml: config: bad key");
        // A message that prints its source as well: said once.
        let printed = BastionError::io(std::path::Path::new("/x"), io());
        assert_eq!(one_line(&printed), "/x: gone");
        let dial = crate::bridge::DialError::Unreachable {
            target: "db-1".into(),
            source: io(),
        };
        assert_eq!(one_line(&dial), "cannot reach target db-1: gone");
    }
}
