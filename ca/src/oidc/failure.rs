//! Why an OIDC login is refused: [`OidcFailure`], with the stable code the
//! API error and the audit reason carry, and the one line the user reads.
//!
//! **Owns:** the codes and the messages. Which step fails with which is
//! decided where the step is (`id_token`, `discovery`, `code_flow`, `device`).

use rampart_api::ErrorCode;

/// Why an OIDC login was refused. Each has a stable code used as the API error
/// code and the audit reason.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OidcFailure {
    /// No such provider in the config.
    UnknownProvider,
    /// The `state` is unknown or was already used.
    StateUnknown,
    /// The login took longer than [`LOGIN_STATE_TTL`](super::LOGIN_STATE_TTL).
    StateExpired,
    /// Discovery, JWKS or the token endpoint could not be reached.
    ProviderUnavailable(String),
    /// The provider refused the code (wrong, used, expired, or PKCE mismatch).
    CodeRejected(String),
    /// The token response held no ID token.
    NoIdToken,
    /// The token's `alg` is `none`.
    AlgNone,
    /// The token's `alg` is not one of [`ALLOWED_ALGS`](super::ALLOWED_ALGS).
    AlgNotAllowed(String),
    /// No key in the provider's JWKS, even after one refetch, has the token's `kid`.
    UnknownKid,
    /// The signature does not verify.
    BadSignature,
    /// `iss` is not the provider's.
    WrongIssuer,
    /// `aud` does not hold our client ID (or holds an untrusted extra one), or
    /// `azp` names another client.
    WrongAudience,
    /// `exp` has passed (beyond the skew) or `iat` is in the future.
    TokenExpired,
    /// `nonce` is not the one this login sent.
    NonceMismatch,
    /// No `auth_time`: we cannot tell how fresh the authentication is.
    AuthTimeMissing,
    /// The user-name claim is missing or not a valid Rampart user name.
    UsernameInvalid,
    /// The token is malformed in some other way.
    Malformed(String),
}

impl OidcFailure {
    /// Stable code.
    pub fn code(&self) -> rampart_api::ErrorCode {
        match self {
            OidcFailure::UnknownProvider => ErrorCode::OidcUnknownProvider,
            OidcFailure::StateUnknown => ErrorCode::OidcStateUnknown,
            OidcFailure::StateExpired => ErrorCode::OidcStateExpired,
            OidcFailure::ProviderUnavailable(_) => ErrorCode::OidcProviderUnavailable,
            OidcFailure::CodeRejected(_) => ErrorCode::CodeRejected,
            OidcFailure::NoIdToken => ErrorCode::NoIdToken,
            OidcFailure::AlgNone => ErrorCode::AlgNone,
            OidcFailure::AlgNotAllowed(_) => ErrorCode::AlgNotAllowed,
            OidcFailure::UnknownKid => ErrorCode::UnknownKid,
            OidcFailure::BadSignature => ErrorCode::BadSignature,
            OidcFailure::WrongIssuer => ErrorCode::WrongIssuer,
            OidcFailure::WrongAudience => ErrorCode::WrongAudience,
            OidcFailure::TokenExpired => ErrorCode::TokenExpired,
            OidcFailure::NonceMismatch => ErrorCode::NonceMismatch,
            OidcFailure::AuthTimeMissing => ErrorCode::AuthTimeMissing,
            OidcFailure::UsernameInvalid => ErrorCode::UsernameInvalid,
            OidcFailure::Malformed(_) => ErrorCode::TokenMalformed,
        }
    }

    /// One line for the user.
    pub fn message(&self) -> String {
        match self {
            OidcFailure::UnknownProvider => "no such OIDC provider is configured".into(),
            OidcFailure::StateUnknown => {
                "this login is unknown or was already used; start again".into()
            }
            OidcFailure::StateExpired => "this login took too long; start again".into(),
            OidcFailure::ProviderUnavailable(d) => {
                format!("the identity provider cannot be reached ({d})")
            }
            OidcFailure::CodeRejected(d) => {
                format!("the identity provider refused the authorisation code ({d})")
            }
            OidcFailure::NoIdToken => "the identity provider returned no ID token".into(),
            OidcFailure::AlgNone => "the ID token is unsigned (alg none)".into(),
            OidcFailure::AlgNotAllowed(a) => {
                format!("the ID token's algorithm {a} is not accepted (RS256, ES256, EdDSA)")
            }
            OidcFailure::UnknownKid => {
                "the ID token is signed by a key the provider does not publish".into()
            }
            OidcFailure::BadSignature => "the ID token's signature does not verify".into(),
            OidcFailure::WrongIssuer => "the ID token is from another issuer".into(),
            OidcFailure::WrongAudience => "the ID token is for another client".into(),
            OidcFailure::TokenExpired => "the ID token has expired".into(),
            OidcFailure::NonceMismatch => "the ID token's nonce is not this login's".into(),
            OidcFailure::AuthTimeMissing => "the ID token has no auth_time".into(),
            OidcFailure::UsernameInvalid => {
                "the ID token's user-name claim is missing or not a valid user name".into()
            }
            OidcFailure::Malformed(d) => format!("the ID token is malformed ({d})"),
        }
    }
}

/// A provider call that failed in transport, as [`OidcFailure::ProviderUnavailable`].
pub(super) fn unavailable<E: std::fmt::Display>(what: &str) -> impl Fn(E) -> OidcFailure + '_ {
    move |e| OidcFailure::ProviderUnavailable(format!("{what}: {e}"))
}
