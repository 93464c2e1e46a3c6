//! `rampart-bastion`: the SSH bastion of Rampart (DESIGN.md flow 4).
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

pub mod audit;
pub mod auth;
pub mod bridge;
pub mod ca_client;
pub mod config;
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
