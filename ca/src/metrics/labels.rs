//! Label vocabularies and label sets: every value a label can take is an enum,
//! a `&'static str` code, or a config-derived name folded by [`Bounded`].

use std::collections::BTreeSet;
use std::sync::Mutex;

use prometheus_client::encoding::EncodeLabelSet;

use super::*;

// ----- label vocabularies ----------------------------------------------------

/// A second factor, as a label value. Every factor of the issue is defined so its
/// series exist (at zero) before the factor is implemented.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Factor {
    /// RFC 6238 one-time codes.
    Totp,
    /// WebAuthn in a browser.
    Webauthn,
    /// FIDO2/CTAP2 from the CLI.
    Fido2,
    /// A YubiKey PIV key with attestation.
    Piv,
    /// OpenID Connect step-up at an IdP.
    Oidc,
    /// A single-use recovery code.
    Recovery,
}

impl Factor {
    /// Every factor, in label order.
    pub const ALL: [Factor; 6] = [
        Factor::Totp,
        Factor::Webauthn,
        Factor::Fido2,
        Factor::Piv,
        Factor::Oidc,
        Factor::Recovery,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Factor::Totp => "totp",
            Factor::Webauthn => "webauthn",
            Factor::Fido2 => "fido2",
            Factor::Piv => "piv",
            Factor::Oidc => "oidc",
            Factor::Recovery => "recovery",
        }
    }

    /// Phishing-resistant factors (bound to an origin or to hardware), for M8.
    pub fn phishing_resistant(self) -> bool {
        matches!(self, Factor::Webauthn | Factor::Fido2 | Factor::Piv)
    }
}

/// The label of the factor a session or login used.
impl From<rampart_policy::MfaMethod> for Factor {
    fn from(method: rampart_policy::MfaMethod) -> Factor {
        match method {
            rampart_policy::MfaMethod::Totp => Factor::Totp,
            rampart_policy::MfaMethod::Recovery => Factor::Recovery,
            rampart_policy::MfaMethod::Webauthn => Factor::Webauthn,
            rampart_policy::MfaMethod::Oidc => Factor::Oidc,
        }
    }
}

/// Where a challenge happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Flow {
    /// `POST /v1/login`: a factor proved to open a session.
    Login,
    /// Confirming a newly enrolled factor.
    Enrolment,
    /// Per-session MFA asked by the bastion for one SSH session.
    Session,
}

impl Flow {
    /// Every flow.
    pub const ALL: [Flow; 3] = [Flow::Login, Flow::Enrolment, Flow::Session];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Flow::Login => "login",
            Flow::Enrolment => "enrolment",
            Flow::Session => "session",
        }
    }
}

/// A refused event that looks like someone trying to get around MFA (M7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Bypass {
    /// A correct code (or assertion) used a second time.
    Replay,
    /// A WebAuthn/FIDO2 signature counter that went backwards (cloned key).
    SignCountRegression,
    /// A user locked from one source network after too many failures there.
    Lockout,
    /// A user locked everywhere after many failures from many networks.
    UserLockout,
    /// An attempt while the user was locked.
    LockedOutAttempt,
    /// A source address over its failure budget (429).
    RateLimited,
}

impl Bypass {
    /// Every kind.
    pub const ALL: [Bypass; 6] = [
        Bypass::Replay,
        Bypass::SignCountRegression,
        Bypass::Lockout,
        Bypass::UserLockout,
        Bypass::LockedOutAttempt,
        Bypass::RateLimited,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Bypass::Replay => "replay",
            Bypass::SignCountRegression => "sign_count_regression",
            Bypass::Lockout => "lockout",
            Bypass::UserLockout => "user_lockout",
            Bypass::LockedOutAttempt => "locked_out_attempt",
            Bypass::RateLimited => "rate_limited",
        }
    }
}

/// What an approval waited for (M9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Approval {
    /// A browser ceremony (WebAuthn page, IdP redirect) finishing a CLI login.
    Browser,
    /// A per-session approval asked by the bastion.
    Session,
}

impl Approval {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Approval::Browser => "browser",
            Approval::Session => "session",
        }
    }
}

/// Which kind of certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CertKind {
    /// A user certificate from `POST /v1/cert`.
    User,
    /// A host certificate.
    Host,
    /// A ~1-minute per-session certificate for the bastion's onward hop.
    Session,
}

impl CertKind {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            CertKind::User => "user",
            CertKind::Host => "host",
            CertKind::Session => "session",
        }
    }
}

/// Folds config-derived label values into at most [`MAX_LABEL_VALUES`] distinct
/// ones; later newcomers become `other`. Values are also cut to 64 characters.
#[derive(Debug, Default)]
pub struct Bounded(Mutex<BTreeSet<String>>);

impl Bounded {
    /// The label value to use for `value`.
    pub fn label(&self, value: &str) -> String {
        let value: String = value.chars().take(64).collect();
        let Ok(mut seen) = self.0.lock() else {
            return "other".to_owned();
        };
        if seen.contains(&value) {
            return value;
        }
        if seen.len() >= MAX_LABEL_VALUES {
            return "other".to_owned();
        }
        seen.insert(value.clone());
        value
    }
}

// ----- label sets ------------------------------------------------------------

/// `{factor, flow}`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FactorFlow {
    /// [`Factor::as_str`].
    pub factor: &'static str,
    /// [`Flow::as_str`].
    pub flow: &'static str,
}

/// `{factor, flow, outcome}`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FactorFlowOutcome {
    /// [`Factor::as_str`].
    pub factor: &'static str,
    /// [`Flow::as_str`].
    pub flow: &'static str,
    /// `success` or `failure`.
    pub outcome: &'static str,
}

/// `{factor, reason}`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FactorReason {
    /// [`Factor::as_str`].
    pub factor: &'static str,
    /// A stable error code.
    pub reason: &'static str,
}

/// `{factor, kind}`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FactorKind {
    /// [`Factor::as_str`].
    pub factor: &'static str,
    /// [`Bypass::as_str`].
    pub kind: &'static str,
}

/// `{factor, primary}` for fallbacks.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Fallback {
    /// The factor actually used.
    pub factor: &'static str,
    /// The stronger factor the user would normally use.
    pub primary: &'static str,
}

/// `{factor}`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FactorOnly {
    /// [`Factor::as_str`].
    pub factor: &'static str,
}

/// `{provider}`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Provider {
    /// The provider's configured name.
    pub provider: String,
}

/// `{provider, outcome}`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProviderOutcome {
    /// The provider's configured name.
    pub provider: String,
    /// `success`, or the error code of the failure.
    pub outcome: &'static str,
}

/// `{role}`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Role {
    /// A policy role, or `all`.
    pub role: String,
}

/// `{kind}`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Kind {
    /// A kind from a closed enum.
    pub kind: &'static str,
}

/// `{reason}`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Reason {
    /// A reason from a closed enum.
    pub reason: &'static str,
}

/// `{kind, reason}`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindReason {
    /// [`CertKind::as_str`].
    pub kind: &'static str,
    /// The denial code.
    pub reason: String,
}

/// `{forwarder}`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Forwarder {
    /// The `[[audit.forwarders]] name`.
    pub forwarder: String,
}

/// `{endpoint, code}` for API requests.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Endpoint {
    /// The matched route (`/v1/login`), never the raw path.
    pub endpoint: String,
    /// `2xx`, `4xx`, `5xx`, …
    pub code: &'static str,
}
