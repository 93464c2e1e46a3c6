//! Rampart's policy language: parse and lint the TOML policy, and evaluate a
//! certificate request (or, for the bastion, an access request) into a decision.
//!
//! This crate owns *what* may be issued: principals, lifetime, extensions,
//! `source-address`, the factor strength and MFA freshness a role needs, and which
//! targets a role may reach through the bastion. It must never do I/O, run async
//! code, read the clock (`now` is always a parameter), or know about HTTP or SSH
//! wire formats. The only way to obtain a [`Grant`] is [`evaluate`], so a signer
//! that takes a `Grant` cannot sign without a decision ("authorisation as a type").
//!
//! It also owns the host policy ([`host`]): which certificate principals may log
//! in as which local account on a host.

// Tests may read the wall clock; the code they test reads it through its seam.
#![cfg_attr(test, allow(clippy::disallowed_methods))]

mod bastions;
mod duration;
mod error;
mod eval;
mod factor;
mod glob;
pub mod host;
mod lint;
mod names;
mod oidc;
mod policy;
pub mod reference;

pub use bastions::bastion_may_serve;
pub use duration::{
    format_duration, parse_duration, parse_duration_with, DurationError, DurationRules,
};

/// Whether a target name matches a policy target glob (`*`, `?`, ASCII
/// case-insensitive), as the bastion and the CA match them.
pub fn target_matches(pattern: &str, name: &str) -> bool {
    glob::glob_match(pattern, name)
}
pub use error::PolicyError;
pub use eval::{
    approve_host, evaluate, evaluate_access, evaluate_access_with_key, evaluate_session_with_key,
    evaluate_with_key, reachable, AccessGrant, AccessRequest, CertRequest, Decision, Denial,
    DenyCode, Grant, HostGrant, ReachRequest, Reachable, BASTION_ONLY_PRINCIPAL,
    EXT_BASTION_SESSION, MAX_CLOCK_SKEW,
};
pub use factor::{Factor, FactorStrength, KeyAssurance, MfaMethod, EXT_MFA_KEY, EXT_MFA_KEY_PIV};
pub use lint::{Lint, LintSeverity};
pub use oidc::{OidcRequirements, StepUpReason};
pub use policy::{
    Policy, DEFAULT_EXTENSIONS, DEFAULT_HOST_MAX_TTL, DEFAULT_MAX_TTL, DEFAULT_MIN_FACTOR,
    DEFAULT_RECORD_METERED_MIB, DEFAULT_TTL, MAX_RECORD_METERED_MIB, POLICY_VERSION,
};
