//! Enrolment (invite, TOTP secret, recovery codes) and login with a second factor.

use super::*;

/// Redeem an invite and start TOTP enrolment.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnrollStartRequest {
    /// The invite code an admin handed out.
    pub invite: WireSecret,
}

/// The TOTP secret to load into an authenticator app, and a token to finish with.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnrollStartResponse {
    /// The user this invite was for.
    pub user: String,
    /// Short-lived token that binds [`EnrollFinishRequest`] to this enrolment.
    pub enrollment_token: WireSecret,
    /// `otpauth://totp/...` URI (RFC 6238, SHA-1, 6 digits, 30 s).
    pub totp_uri: WireSecret,
    /// The same secret in base32, for typing into an app by hand.
    pub totp_secret: WireSecret,
    /// When the enrolment token stops working.
    pub expires_at: DateTime<Utc>,
}

/// Prove the authenticator app holds the secret; finishes enrolment.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnrollFinishRequest {
    /// From [`EnrollStartResponse::enrollment_token`].
    pub enrollment_token: WireSecret,
    /// A current 6-digit TOTP code.
    pub totp_code: WireSecret,
}

/// Recovery codes, shown exactly once.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnrollFinishResponse {
    /// The enrolled user.
    pub user: String,
    /// Ten single-use recovery codes. The CA keeps only their argon2 hashes.
    pub recovery_codes: Vec<WireSecret>,
}

/// A second factor presented at `POST /v1/login`. Security keys and OIDC
/// logins have their own endpoints (`/v1/webauthn/…`, `/v1/oidc/…`).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum FactorProof {
    /// A 6-digit RFC 6238 code.
    Totp {
        /// The code.
        code: WireSecret,
    },
    /// One of the recovery codes printed at enrolment.
    Recovery {
        /// The code.
        code: WireSecret,
    },
}

impl FactorProof {
    /// The factor's kind, as named in policy and audit (`totp`, `recovery`).
    pub fn method(&self) -> rampart_policy::MfaMethod {
        match self {
            FactorProof::Totp { .. } => rampart_policy::MfaMethod::Totp,
            FactorProof::Recovery { .. } => rampart_policy::MfaMethod::Recovery,
        }
    }
}

/// `POST /v1/login`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// Rampart user name.
    #[schema(pattern = r"^[a-z_][a-z0-9_.-]{0,31}$")]
    pub user: String,
    /// The factor being proved.
    pub factor: FactorProof,
}

/// A bearer session, proof that `user` passed `factor` at `mfa_time`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginResponse {
    /// The user.
    pub user: String,
    /// Opaque bearer token; send as `Authorization: Bearer …`.
    pub session_token: WireSecret,
    /// When the session ends.
    pub expires_at: DateTime<Utc>,
    /// The factor that was verified (`totp`, `recovery`).
    pub mfa_method: String,
    /// When it was verified.
    pub mfa_time: DateTime<Utc>,
    /// Audit event ID (ULID) of the successful MFA check.
    pub mfa_event: String,
    /// Whether this user may use the admin endpoints.
    pub admin: bool,
}
