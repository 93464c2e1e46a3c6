//! Evaluation: a request plus a policy plus `now` gives a [`Decision`].
//!
//! Semantics, in order (each step fails closed):
//!
//! 1. The request itself must be well formed (user name, requested lifetime).
//! 2. MFA time may not lie in the future by more than [`MAX_CLOCK_SKEW`].
//! 3. Candidate roles = union of the roles of the user's groups and the user's own
//!    `[users]` entry. None → [`DenyCode::NoRole`].
//! 4. Every matching `[[deny]]` rule removes its roles (deny beats allow) and marks its
//!    principals as never grantable. All removed → [`DenyCode::DeniedByRule`].
//! 5. Each remaining role *contributes* only if the factor passes: recovery codes need
//!    `allow_recovery`; strength must be ≥ the role's `min_factor` and ≥
//!    `defaults.min_factor`; a WebAuthn assertion given on the CA's approval page
//!    needs `webauthn_link` (default true); MFA age must be ≤ `mfa_max_age` when
//!    set. No role contributes → the most specific failure (recovery refused, then
//!    link approval refused, then factor too weak, then MFA too old), with every
//!    role's reason in the message.
//! 6. The grant is the union over contributing roles: principals (`{user}` expanded,
//!    deny-rule principals removed), extensions, and `source-address`.
//!    `source-address` is the one place a union could *widen* access, so it fails
//!    closed: if ANY contributing role restricts the source, the certificate carries
//!    the union of the restricting roles' CIDRs, and unrestricted roles do not lift
//!    the restriction.
//! 7. The lifetime is the requested (or default) TTL clamped to `defaults.max_ttl`
//!    and to the smallest `max_ttl` among contributing roles. `mfa_max_age` gates
//!    issuance only; the CA records the MFA time in the certificate so that the
//!    bastion and PAM re-check freshness when the certificate is used.

use std::time::Duration;

/// How far in the future an MFA time may lie before we call it forged or broken.
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(5 * 60);

mod access;
mod cert;
mod decision;
mod grant;
mod host_grant;
mod reach;
mod request;
mod select;
#[cfg(test)]
mod tests;

pub use access::*;
pub use cert::*;
pub use decision::*;
pub use grant::*;
pub use host_grant::*;
pub use reach::*;
pub use request::*;
use select::*;
