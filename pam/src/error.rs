//! Why the module refused. Every variant's `Display` is the one clear reason that
//! ends up in syslog after `pam_rampart(SERVICE): refused USER: `.

use std::path::PathBuf;

/// A problem with the module's arguments on the PAM service line.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// An argument without `=`.
    #[error("argument {0:?} is not of the form key=value")]
    Malformed(String),
    /// An argument the module does not know.
    #[error("unknown argument {0:?}")]
    Unknown(String),
    /// An argument given twice.
    #[error("argument {0:?} given twice")]
    Repeated(String),
    /// A required argument is absent.
    #[error("missing required argument {0}=")]
    Missing(&'static str),
    /// A value that does not parse.
    #[error("{key}={value:?}: expected {expected}")]
    BadValue {
        /// Argument name.
        key: String,
        /// The value given.
        value: String,
        /// What would have been accepted.
        expected: &'static str,
    },
}

/// A KRL that could not be read (PROTOCOL.krl).
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KrlError {
    /// The file is bigger than the reader accepts.
    #[error("KRL is {size} bytes, more than the {max}-byte limit")]
    TooLarge {
        /// Size of the input.
        size: u64,
        /// The cap.
        max: usize,
    },
    /// Wrong magic number: not a binary KRL.
    #[error("not an OpenSSH binary KRL (bad magic)")]
    BadMagic,
    /// A format version this reader does not know.
    #[error("unsupported KRL format version {0}")]
    BadVersion(u32),
    /// The data ended inside a field.
    #[error("KRL truncated inside {0}")]
    Truncated(&'static str),
    /// A section type that is not in PROTOCOL.krl.
    #[error("unknown KRL section type {0}")]
    UnknownSection(u8),
    /// A field with an impossible value.
    #[error("malformed KRL: {0}")]
    Malformed(&'static str),
}

/// A failure talking to the SSH agent (draft-miller-ssh-agent).
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AgentError {
    /// Connecting to the socket failed.
    #[error("cannot connect to the agent at {path}: {reason}")]
    Connect {
        /// Socket path.
        path: PathBuf,
        /// The OS error.
        reason: String,
    },
    /// The agent did not answer within the deadline.
    #[error("the agent did not answer within {0} ms")]
    Timeout(u64),
    /// Reading or writing the socket failed.
    #[error("agent I/O error: {0}")]
    Io(String),
    /// The agent sent a message bigger than allowed.
    #[error("agent message of {0} bytes exceeds the limit")]
    TooLarge(u32),
    /// The agent's answer did not parse or was of the wrong type.
    #[error("malformed agent answer: {0}")]
    Protocol(&'static str),
    /// The agent answered SSH_AGENT_FAILURE.
    #[error("the agent refused")]
    Failure,
}

/// Why a PAM request was refused: the one line that goes to syslog.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The module's arguments are wrong (fail closed).
    #[error("configuration error: {0}")]
    Config(#[from] ConfigError),
    /// A file the module needs could not be read.
    #[error("cannot read {what} {path}: {reason}")]
    File {
        /// `CA keys file`, `KRL`, …
        what: &'static str,
        /// Its path.
        path: PathBuf,
        /// The OS or parse error.
        reason: String,
    },
    /// The CA keys file holds no usable key.
    #[error("CA keys file {0} holds no public key")]
    NoCaKeys(PathBuf),
    /// The KRL is malformed.
    #[error("KRL {path} is unusable: {error}")]
    Krl {
        /// Its path.
        path: PathBuf,
        /// What is wrong.
        error: KrlError,
    },
    /// The KRL is older than `krl_max_age`.
    #[error("KRL {path} is stale: generated {age} ago, krl_max_age is {max}")]
    StaleKrl {
        /// Its path.
        path: PathBuf,
        /// Its age, formatted.
        age: String,
        /// The limit, formatted.
        max: String,
    },
    /// The KRL claims to have been generated in the future.
    #[error("KRL {path} is dated {ahead} in the future")]
    FutureKrl {
        /// Its path.
        path: PathBuf,
        /// How far ahead, formatted.
        ahead: String,
    },
    /// The PAM user could not be determined.
    #[error("no PAM user")]
    NoUser,
    /// The PAM user has no local account.
    #[error("PAM user {0:?} has no local account")]
    UnknownUser(String),
    /// No agent socket in the PAM or process environment.
    #[error("no SSH agent: SSH_AUTH_SOCK is not set (sudo needs Defaults env_keep += \"SSH_AUTH_SOCK\")")]
    NoAgent,
    /// The agent socket is served by root while the PAM user is not root.
    #[error("agent socket {path} is served by root (uid 0), not by the user (uid {user_uid}): a root agent is not the user's")]
    RootAgent {
        /// Socket path.
        path: PathBuf,
        /// uid of the PAM user.
        user_uid: u32,
    },
    /// The agent socket belongs to another user.
    #[error("agent socket {path} is served by uid {peer_uid}, not by the user (uid {user_uid})")]
    ForeignAgent {
        /// Socket path.
        path: PathBuf,
        /// uid of the process serving it.
        peer_uid: u32,
        /// uid of the PAM user.
        user_uid: u32,
    },
    /// Talking to the agent failed.
    #[error("{0}")]
    Agent(#[from] AgentError),
    /// The agent holds no certificate from a trusted CA.
    #[error("no certificate from the Rampart user CA in the agent ({identities} identities, {foreign} certificates from other CAs)")]
    NoCertificate {
        /// Number of identities the agent listed.
        identities: usize,
        /// Number of certificates signed by an untrusted CA.
        foreign: usize,
    },
    /// A candidate certificate failed a check.
    #[error("certificate serial {serial} (key ID {key_id:?}): {reason}")]
    Certificate {
        /// Its serial.
        serial: u64,
        /// Its key ID.
        key_id: String,
        /// What is wrong with it (boxed: the largest variant).
        reason: Box<CertProblem>,
    },
}

/// What is wrong with one certificate.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertProblem {
    /// A host certificate, not a user certificate.
    #[error("is a host certificate, not a user certificate")]
    NotUserCert,
    /// `valid after` is in the future.
    #[error("is not valid before {0}")]
    NotYetValid(String),
    /// `valid before` is past.
    #[error("expired at {0}")]
    Expired(String),
    /// The CA signature does not verify.
    #[error("CA signature does not verify")]
    BadSignature,
    /// The PAM user is not among the principals.
    #[error("principals {principals:?} do not include {user:?}")]
    Principal {
        /// The certificate's principals.
        principals: Vec<String>,
        /// The PAM user.
        user: String,
    },
    /// A critical option this module does not implement (PROTOCOL.certkeys: "if
    /// an implementation does not recognise an option, then the validating party
    /// should refuse to accept the certificate").
    #[error("unknown critical option {0:?}")]
    UnknownCriticalOption(String),
    /// `force-command` restricts the certificate to one command; sudo is not it.
    #[error("has critical option force-command, which cannot be honoured for {0}")]
    ForceCommand(String),
    /// `source-address` does not match.
    #[error("source-address {allowed:?} does not allow {from}")]
    SourceAddress {
        /// The option's value.
        allowed: String,
        /// Where the request came from.
        from: String,
    },
    /// `verify-required` on a security key whose signature lacks the UV flag.
    #[error("verify-required, but the security key signature lacks user verification")]
    VerifyRequired,
    /// Revoked in the KRL.
    #[error("is revoked: {what} (KRL {krl})")]
    Revoked {
        /// Which entry matched.
        what: String,
        /// The KRL path.
        krl: PathBuf,
    },
    /// No `mfa-time@rampart` / `mfa-method@rampart` extension, or unreadable.
    #[error("{0}")]
    Mfa(String),
    /// MFA older than `max_mfa_age`.
    #[error("MFA is stale: {method} at {at}, {age} ago, max_mfa_age is {max}")]
    StaleMfa {
        /// Method name.
        method: String,
        /// RFC 3339 time.
        at: String,
        /// Age, formatted.
        age: String,
        /// Limit, formatted.
        max: String,
    },
    /// The factor is weaker than `min_factor`.
    #[error("MFA factor {method} is {strength}, weaker than min_factor {min}")]
    WeakFactor {
        /// Method name.
        method: String,
        /// Its strength.
        strength: String,
        /// The minimum.
        min: String,
    },
    /// The agent would not sign the nonce with the certificate's key.
    #[error("the agent could not prove possession of the key: {0}")]
    Possession(String),
}
