//! `rampart policy …`: linting a policy file and evaluating a request against it.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};

use crate::duration;

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
