//! `pam_rampart.so`: step-up for `sudo`/`su` on production hosts.
//!
//! The module grants a PAM request only when the SSH agent at `SSH_AUTH_SOCK`
//! holds a Rampart user certificate that is signed by a trusted user CA, valid
//! now, of user type, names the PAM user as a principal, carries only critical
//! options the module honours, is not revoked in the local KRL (which must itself
//! be fresh), and records an MFA ceremony recent and strong enough — and only
//! after the agent has signed a fresh random nonce with the certificate's key.
//!
//! It must never: make a network call (it links no tokio and no network crate;
//! the agent socket is local), panic across the C boundary (every entry point
//! catches unwinds), or use `unsafe` outside [`ffi`]. Each decision writes
//! exactly one line to syslog (LOG_AUTHPRIV); see `pam/README.md`.

// Tests may read the wall clock; the code they test reads it through its seam.
#![cfg_attr(test, allow(clippy::disallowed_methods))]

pub mod agent;
pub mod args;
pub mod auth;
pub mod check;
pub mod error;
pub mod ffi;
pub mod krl;

pub use args::Args;
pub use auth::{decide, Host, Request, Success};
pub use error::{AgentError, CertProblem, ConfigError, KrlError, Refusal};
pub use krl::Krl;
