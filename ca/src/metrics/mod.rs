//! Prometheus metrics of the CA: the MFA SLIs (M1–M10 of the observability issue),
//! issuance, audit and SIEM-forwarding series, and the `/metrics` listener that
//! serves them in the Prometheus text format on its own address, apart from the
//! API (`[metrics] listen`, off unless configured).
//!
//! This module owns the series names, their labels and their meaning
//! (`docs/metrics.md` is the reference). Instrumenting is one call per event:
//!
//! ```ignore
//! use rampart_ca::metrics::{self, Factor, Flow};
//! metrics::mfa_challenge(Factor::Oidc, Flow::Login);
//! metrics::mfa_result(Factor::Oidc, Flow::Login, Err("idp_error"), started.elapsed());
//! metrics::provider_request("corp-idp", Err("timeout"));
//! ```
//!
//! Label values are bounded by construction: factors, flows, outcomes and bypass
//! kinds are enums; reasons are `&'static str` error codes; names that come from
//! config (providers, forwarders, roles, endpoints) pass through [`Bounded`], which
//! folds anything past [`MAX_LABEL_VALUES`] distinct values into `other`. No user
//! name, address or token ever becomes a label.
//!
//! The registry is process-wide so that any module (the authority, factors,
//! forwarders, the bastion endpoints) can count without threading a handle through.
//! Tests that need exact numbers run a separate CA process.

/// Most distinct values a config-derived label (provider, forwarder, role,
/// endpoint, denial reason) may take before new ones are counted as `other`.
pub const MAX_LABEL_VALUES: usize = 64;

/// Most open challenges tracked for M10 at once; past it new challenges are not
/// tracked (and so can never be counted as abandoned), which bounds memory.
pub const MAX_TRACKED_CHALLENGES: usize = 100_000;

/// Failure reasons every factor can have, created at zero for every factor.
/// Other stable codes (e.g. `audit_unavailable`) appear when they first happen.
pub const COMMON_REASONS: [&str; 5] = [
    "factor_invalid",
    "factor_replayed",
    "factor_malformed",
    "user_locked",
    "source_rate_limited",
];

mod coverage;
mod labels;
mod listener;
mod record;
mod registry;
#[cfg(test)]
mod tests;

pub use coverage::*;
pub use labels::*;
pub use listener::*;
pub use record::*;
pub use registry::*;
