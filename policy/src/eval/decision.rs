//! What is answered: a denial with its stable code, or a decision.

use std::fmt;

use super::*;

/// Why a request was denied. Stable: these strings appear in audit events and JSON.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DenyCode {
    /// The request is malformed (bad user name, zero lifetime, bad login or target).
    InvalidRequest,
    /// No group or user entry grants the user any role.
    NoRole,
    /// Every role the user would have is removed by a `[[deny]]` rule.
    DeniedByRule,
    /// The user logged in with a recovery code and no role accepts one.
    RecoveryRefused,
    /// The factor used is weaker than every role requires.
    FactorTooWeak,
    /// The security key was used on the CA's approval page (through a link),
    /// and every role that would accept the key wants it used directly from the
    /// user's own machine (`webauthn_link = false`).
    WebauthnLinkRefused,
    /// The MFA is older than every role's `mfa_max_age`.
    MfaTooOld,
    /// The MFA time lies further in the future than the allowed clock skew.
    MfaInFuture,
    /// The contributing roles yield no principal. An empty principal list in an
    /// OpenSSH certificate means "valid for any principal" (PROTOCOL.certkeys:
    /// "As a special case, a zero-length "valid principals" field means the
    /// certificate is valid for any principal of the specified type"), so this is
    /// a denial, never an empty grant.
    NoPrincipals,
    /// The requested login is not among the granted principals (or role logins).
    LoginNotGranted,
    /// No contributing role's `targets` allow the requested bastion target.
    TargetNotAllowed,
    /// A host certificate name or principal is not a host name or IP address.
    InvalidHostName,
    /// The bastion asking is not registered (`[bastions.<name>]`) for the target.
    TargetNotRegistered,
}

impl DenyCode {
    /// Stable snake_case spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            DenyCode::InvalidRequest => "invalid_request",
            DenyCode::NoRole => "no_role",
            DenyCode::DeniedByRule => "denied_by_rule",
            DenyCode::RecoveryRefused => "recovery_refused",
            DenyCode::FactorTooWeak => "factor_too_weak",
            DenyCode::WebauthnLinkRefused => "webauthn_link_refused",
            DenyCode::MfaTooOld => "mfa_too_old",
            DenyCode::MfaInFuture => "mfa_in_future",
            DenyCode::NoPrincipals => "no_principals",
            DenyCode::LoginNotGranted => "login_not_granted",
            DenyCode::TargetNotAllowed => "target_not_allowed",
            DenyCode::InvalidHostName => "invalid_host_name",
            DenyCode::TargetNotRegistered => "target_not_registered",
        }
    }
}

impl fmt::Display for DenyCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refusal: a stable code and a human-readable reason.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Denial {
    /// Machine-readable cause.
    pub code: DenyCode,
    /// What happened and, where possible, what would work instead.
    pub reason: String,
}

impl Denial {
    pub(crate) fn new(code: DenyCode, reason: impl Into<String>) -> Denial {
        Denial {
            code,
            reason: reason.into(),
        }
    }
}

impl fmt::Display for Denial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "denied ({}): {}", self.code, self.reason)
    }
}

impl std::error::Error for Denial {}

/// The outcome of [`evaluate`]. Serialises as `{"decision":"allow", …grant}` or
/// `{"decision":"deny","code":…,"reason":…}`.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Decision {
    /// Issue a certificate exactly as described.
    Allow(Grant),
    /// Issue nothing.
    Deny(Denial),
}

impl Decision {
    /// Whether this is an `Allow`.
    pub fn is_allow(&self) -> bool {
        matches!(self, Decision::Allow(_))
    }

    /// The grant, if allowed.
    pub fn grant(&self) -> Option<&Grant> {
        match self {
            Decision::Allow(g) => Some(g),
            Decision::Deny(_) => None,
        }
    }

    /// The denial, if denied.
    pub fn denial(&self) -> Option<&Denial> {
        match self {
            Decision::Allow(_) => None,
            Decision::Deny(d) => Some(d),
        }
    }

    /// `Ok(grant)` or `Err(denial)`, for `?`.
    pub fn into_result(self) -> Result<Grant, Denial> {
        match self {
            Decision::Allow(g) => Ok(g),
            Decision::Deny(d) => Err(d),
        }
    }
}
