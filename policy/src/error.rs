//! The one error type of this crate.

/// Why a policy could not be loaded, or a factor name could not be parsed.
///
/// Every message names the offending key (and, where the TOML parser knows it, the
/// line), because the reader is an administrator looking at their policy file.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The file is not valid TOML, has an unknown key, or a value of the wrong shape
    /// (bad duration, bad CIDR, bad name). The inner error carries line and column.
    #[error("policy: {0}")]
    Syntax(#[from] toml::de::Error),

    /// The `version` key names a policy format this build does not understand.
    #[error("policy: unsupported version {found} (this build understands version {supported})")]
    UnsupportedVersion {
        /// The version found in the file.
        found: i64,
        /// The version this build understands.
        supported: i64,
    },

    /// A group, user or deny rule names a role that no `[roles.<name>]` table defines.
    #[error("policy: {key}{}: unknown role {role:?}", line_suffix(*line))]
    UnknownRole {
        /// Dotted path of the key that names the role, e.g. `groups.sre`.
        key: String,
        /// 1-based line in the source, when known.
        line: Option<usize>,
        /// The undefined role name.
        role: String,
    },

    /// A value parsed but is not acceptable (e.g. a badly formed role or user name).
    #[error("policy: {key}{}: {message}", line_suffix(*line))]
    Invalid {
        /// Dotted path of the offending key, e.g. `users."bad name"`.
        key: String,
        /// 1-based line in the source, when known.
        line: Option<usize>,
        /// What is wrong and what is expected instead.
        message: String,
    },

    /// A factor or factor-strength name (CLI flag, config value) is not one we know.
    #[error("unknown factor {value:?} (expected one of: {expected})")]
    UnknownFactor {
        /// The rejected input.
        value: String,
        /// The accepted spellings, comma separated.
        expected: &'static str,
    },
}

fn line_suffix(line: Option<usize>) -> String {
    match line {
        Some(l) => format!(" (line {l})"),
        None => String::new(),
    }
}
