//! Hosts getting their own host certificates: the first one with a join
//! token an admin made (`POST /v1/hosts/join`), later ones by renewing
//! (`POST /v1/hosts/renew`).
//!
//! A join token names the host and any extra principals; the policy's
//! `[hosts]` section must allow them when the token is made and again when it
//! is redeemed. It works once, for whichever host key redeems it first, and
//! ends after its lifetime ([`HOST_TOKEN_DEFAULT_TTL_SECONDS`], at most
//! [`HOST_TOKEN_MAX_TTL_SECONDS`]).
//!
//! The host proves two things with no credential of its own: it holds a host
//! certificate from this CA that is valid now (the CA's word about the host,
//! given once by an admin with `rampart admin host-cert`), and it holds that
//! certificate's private key, by signing [`HostRenewRequest::signed_message`]
//! with it (an SSHSIG in [`HOST_RENEW_NAMESPACE`]). The signed time bounds a
//! replay to [`HOST_RENEW_MAX_SKEW_SECONDS`], and a replay could only get the
//! same host another certificate for the same names.

use super::*;

/// SSHSIG namespace of a renewal proof: a host key signature made for
/// anything else never passes for one.
pub const HOST_RENEW_NAMESPACE: &str = "rampart-host-renew@rampart";

/// How far the signed time may be from the CA's clock, either way.
pub const HOST_RENEW_MAX_SKEW_SECONDS: i64 = 300;

/// `POST /v1/hosts/renew` → [`CertResponse`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HostRenewRequest {
    /// The host's current certificate (OpenSSH one-line form).
    pub certificate: String,
    /// When the host signed, Unix seconds.
    pub signed_at: i64,
    /// Armored SSHSIG over [`HostRenewRequest::signed_message`] by the
    /// certificate's key.
    pub signature: String,
}

impl HostRenewRequest {
    /// What the host signs: the certificate line and the time, one per line.
    pub fn signed_message(certificate: &str, signed_at: i64) -> Vec<u8> {
        format!("{}\n{signed_at}\n", certificate.trim()).into_bytes()
    }
}

/// A host join token's lifetime unless the admin says otherwise (1 hour).
pub const HOST_TOKEN_DEFAULT_TTL_SECONDS: u64 = 3600;

/// The longest a host join token may live (7 days: long enough for an image
/// baked today and booted this week).
pub const HOST_TOKEN_MAX_TTL_SECONDS: u64 = 7 * 24 * 3600;

/// `POST /v1/admin/host-tokens` (admin) → [`HostTokenResponse`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HostTokenRequest {
    /// The host's name: the certificate's key ID and first principal.
    pub name: String,
    /// Further principals (other names, addresses) the policy must allow.
    #[serde(default)]
    pub extra_principals: Vec<String>,
    /// Lifetime of the token (default [`HOST_TOKEN_DEFAULT_TTL_SECONDS`]).
    #[serde(default)]
    pub ttl_seconds: Option<u64>,
}

/// A new host join token. The token is shown once; the CA keeps only its hash.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HostTokenResponse {
    /// The secret the host presents.
    pub token: WireSecret,
    /// The host it is for.
    pub name: String,
    /// Further principals the certificate will carry.
    pub extra_principals: Vec<String>,
    /// When it stops working if unused.
    pub expires_at: DateTime<Utc>,
}

/// `POST /v1/hosts/join` (no session: the token is the credential) →
/// [`CertResponse`], the host's certificate.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HostJoinRequest {
    /// The join token from [`HostTokenResponse`].
    pub token: WireSecret,
    /// The host's public key (OpenSSH one-line form) to certify.
    pub public_key: String,
}

/// `GET /v1/admin/host-tokens` (admin): the host join tokens not yet
/// forgotten (unused, and used or expired within the last day).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HostTokenList {
    /// Oldest first.
    pub tokens: Vec<HostTokenInfo>,
}

/// One host join token, without its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HostTokenInfo {
    /// What `rampart admin revoke --host-token` takes: the first 16 hex digits
    /// of the token's SHA-256 (not the token).
    pub id: String,
    /// The host it is for.
    pub name: String,
    /// Further principals.
    pub extra_principals: Vec<String>,
    /// The admin who made it.
    pub created_by: String,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When it stops working if unused.
    pub expires_at: DateTime<Utc>,
    /// When a host redeemed it, if one did.
    pub used_at: Option<DateTime<Utc>>,
}

/// `POST /v1/admin/host-tokens/revoke` (admin) → [`HostTokenInfo`] of the
/// token withdrawn: an unused token stops working at once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HostTokenRevokeRequest {
    /// [`HostTokenInfo::id`].
    pub id: String,
    /// Free-text reason for the audit log.
    #[serde(default)]
    pub reason: Option<String>,
}
