//! The Rampart certificate authority.
//!
//! Owns the CA keys, identities and enrolment, second-factor checks (TOTP and
//! recovery codes through [`factor::FactorVerifier`]; security keys through the
//! WebAuthn ceremonies of [`webauthn`]; OIDC step-up through [`oidc`]),
//! policy-gated issuance of short-lived OpenSSH user certificates and of host
//! certificates, revocation and the KRL, and the HTTPS JSON API. Every decision and
//! action is written to the audit chain before its result leaves the CA.
//!
//! It must never hold SSH sessions (that is the bastion's job) and never sign
//! without a policy decision: the signer only accepts a `rampart_policy::Grant`.

// Tests may read the wall clock; the code they test reads it through its seam.
#![cfg_attr(test, allow(clippy::disallowed_methods))]

pub mod authority;
pub mod backup;
pub mod clock;
pub mod config;
pub mod connections;
pub mod error;
pub mod factor;
pub mod forwarders;
#[doc(hidden)]
pub mod fuzzing;
pub mod http;
pub mod init;
pub mod keys;
pub mod metrics;
pub mod oidc;
pub mod piv;
pub mod recover;
pub mod rotation;
pub mod secrets;
pub mod server;
pub mod store;
pub mod webauthn;
pub mod witness_restart;

pub use authority::Authority;
pub use config::Config;
pub use error::CaError;
