//! Admin requests: users, groups, OIDC links, invites, revocation, host certificates, bastion join tokens and bastion revocation.

use super::*;

/// A user as admins see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct User {
    /// Unique name (`[a-z_][a-z0-9_.-]{0,31}`).
    pub name: String,
    /// Groups, mapped to roles by policy.
    pub groups: Vec<String>,
    /// May use admin endpoints (after MFA).
    pub admin: bool,
    /// Disabled users cannot log in or obtain certificates.
    pub disabled: bool,
    /// Has a TOTP factor enrolled.
    pub totp_enrolled: bool,
    /// Unused recovery codes left.
    pub recovery_codes_left: u32,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

/// `POST /v1/admin/users`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUserRequest {
    /// New user's name (`[a-z_][a-z0-9_.-]{0,31}`).
    #[schema(pattern = r"^[a-z_][a-z0-9_.-]{0,31}$")]
    pub name: String,
    /// Initial groups.
    #[serde(default)]
    pub groups: Vec<String>,
    /// Grant admin rights.
    #[serde(default)]
    pub admin: bool,
}

/// `POST /v1/admin/users/state`: disable or enable a user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetUserStateRequest {
    /// The user.
    #[schema(pattern = r"^[a-z_][a-z0-9_.-]{0,31}$")]
    pub name: String,
    /// `true` disables (and ends the user's sessions), `false` enables.
    pub disabled: bool,
}

/// `POST /v1/admin/users/groups`: replace a user's groups.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetGroupsRequest {
    /// The user.
    #[schema(pattern = r"^[a-z_][a-z0-9_.-]{0,31}$")]
    pub name: String,
    /// New groups.
    pub groups: Vec<String>,
}

/// `POST /v1/admin/users/idp-link`: tie a user to an account at an OIDC
/// provider (its `sub`), or remove the tie. Only a linked account (or one the
/// CA created just in time) can log in as a user through that provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IdpLinkRequest {
    /// The Rampart user.
    #[schema(pattern = r"^[a-z_][a-z0-9_.-]{0,31}$")]
    pub name: String,
    /// The provider's name in the CA config (`[[oidc.providers]] name`).
    pub provider: String,
    /// The provider account's subject (`sub`); ignored when unlinking.
    #[serde(default)]
    pub subject: String,
    /// Remove the user's link at this provider instead.
    #[serde(default)]
    pub unlink: bool,
}

/// Answer to [`IdpLinkRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IdpLinkResponse {
    /// The Rampart user.
    pub name: String,
    /// The provider.
    pub provider: String,
    /// The subject now linked, or the one removed.
    pub subject: Option<String>,
    /// Whether the user is linked at this provider now.
    pub linked: bool,
}

/// `POST /v1/admin/invites`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InviteRequest {
    /// Existing user the invite enrols.
    #[schema(pattern = r"^[a-z_][a-z0-9_.-]{0,31}$")]
    pub user: String,
    /// Lifetime; default 24 h, at most 7 days.
    #[serde(default)]
    pub ttl_seconds: Option<u64>,
}

/// A fresh invite. The code is shown once; the CA stores only its hash.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InviteResponse {
    /// The user.
    pub user: String,
    /// The single-use code.
    pub code: WireSecret,
    /// Expiry.
    pub expires_at: DateTime<Utc>,
}

/// `POST /v1/admin/revoke`: exactly one of the fields must be set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeRequest {
    /// Revoke one certificate by serial.
    #[serde(default)]
    pub serial: Option<u64>,
    /// Revoke every certificate issued to this user (and disable the user).
    #[serde(default)]
    pub user: Option<String>,
    /// Revoke a public key by its `SHA256:…` fingerprint: every certificate for it,
    /// and the key itself.
    #[serde(default)]
    pub key_fingerprint: Option<String>,
    /// Free-text reason for the audit log.
    #[serde(default)]
    pub reason: Option<String>,
}

/// What a revocation did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeResponse {
    /// Serials newly revoked.
    pub revoked_serials: Vec<u64>,
    /// Key fingerprints newly revoked.
    pub revoked_keys: Vec<String>,
    /// Version of the KRL that now includes them.
    pub krl_version: u64,
}

/// `POST /v1/admin/host-certs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HostCertRequest {
    /// Host name; becomes the key ID and the first principal.
    pub name: String,
    /// Host public key (OpenSSH one-line format).
    pub public_key: String,
    /// Further principals (other names or addresses the host answers to).
    #[serde(default)]
    pub extra_principals: Vec<String>,
    /// Lifetime; default 30 days, at most 365.
    #[serde(default)]
    pub ttl_seconds: Option<u64>,
}

/// Prefix of every bastion credential. A user session token never starts with it
/// (those are plain base64url), so the CA can tell the two apart before looking
/// either up, and a bastion credential sent to a user endpoint (or a session
/// token sent to a bastion endpoint) is refused by shape, not by luck.
pub const BASTION_CREDENTIAL_PREFIX: &str = "rpb_";

/// `POST /v1/admin/bastion-tokens`: a single-use join token for a bastion.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BastionTokenRequest {
    /// The bastion's name (a host name); when set, only a join under this name
    /// is accepted.
    #[serde(default)]
    pub name: Option<String>,
    /// Lifetime of the token; default 1 hour, at most 24 hours.
    #[serde(default)]
    pub ttl_seconds: Option<u64>,
}

/// A new join token, shown once.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BastionTokenResponse {
    /// The token for `rampart-bastion join --token`.
    pub token: WireSecret,
    /// The name it is bound to, if any.
    pub name: Option<String>,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
}

/// `POST /v1/admin/bastions/revoke`: forget a bastion and its credential.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BastionRevokeRequest {
    /// The bastion's name.
    pub name: String,
    /// Free-text reason for the audit log.
    #[serde(default)]
    pub reason: Option<String>,
}

/// What a bastion revocation did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BastionRevokeResponse {
    /// The bastion whose credential no longer works.
    pub name: String,
}
