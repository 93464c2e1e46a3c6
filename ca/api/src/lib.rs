//! Wire types of the Rampart CA's HTTPS JSON API, shared by `rampart-ca`, the
//! `rampart` CLI and (later) `rampart-bastion`, plus a small blocking client that
//! pins the CA's self-signed TLS certificate by its SHA-256 fingerprint.
//!
//! This crate owns the shape of every request and response. It must not pull in
//! server dependencies (axum, rusqlite, signing keys): the CLI links it.
//!
//! Every request body is `deny_unknown_fields`, so a client that sends a field the
//! server does not know gets a clear 400 instead of a silently ignored option.

// Tests may read the wall clock; the code they test reads it through its seam.
#![cfg_attr(test, allow(clippy::disallowed_methods))]

pub mod client;
pub mod error_code;
pub mod oidc;
pub mod report;
pub mod source;
pub mod user_proof;
pub mod webauthn;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use client::{Client, ClientError, Fingerprint};
pub use error_code::ErrorCode;

/// Path prefix of every versioned endpoint.
pub const API_PREFIX: &str = "/v1";

/// Largest request body the CA accepts, in bytes. Public keys and codes are small;
/// anything larger is refused with 413 before it is parsed.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// SSHSIG namespace of the KRL signature ([`paths::KRL_SIG`]). A signature made
/// for another purpose (an audit checkpoint, a git commit) never verifies as a KRL
/// signature, because the namespace is part of the signed data (PROTOCOL.sshsig).
/// Check one by hand with
/// `ssh-keygen -Y verify -f allowed_signers -I rampart-ca -n rampart-krl@rampart -s krl.sig < krl`.
pub const KRL_SIG_NAMESPACE: &str = "rampart-krl@rampart";

/// Response header of [`paths::KRL`] and [`paths::KRL_SIG`]: the `krl_version`
/// of the KRL served (decimal).
pub const KRL_VERSION_HEADER: &str = "x-rampart-krl-version";

/// Endpoint paths, so that server routes and client calls cannot drift apart.
pub mod paths {
    /// `GET` liveness and version.
    pub const HEALTH: &str = "/v1/health";
    /// `GET` the user CA public key (OpenSSH one-line format).
    pub const USER_CA_PUB: &str = "/v1/ca/user.pub";
    /// `GET` the host CA public key (OpenSSH one-line format).
    pub const HOST_CA_PUB: &str = "/v1/ca/host.pub";
    /// `GET` the current KRL in OpenSSH binary format. The response carries the
    /// KRL's `krl_version` in the [`super::KRL_VERSION_HEADER`] header.
    pub const KRL: &str = "/v1/krl";
    /// `GET` the SSHSIG signature (armored, `-----BEGIN SSH SIGNATURE-----`) over
    /// the exact bytes [`KRL`] serves, made with the user CA key in namespace
    /// [`super::KRL_SIG_NAMESPACE`]. Both come from one cached pair, so a KRL and
    /// the signature fetched next to it match unless a revocation landed in
    /// between (then the version header tells the client to fetch again).
    pub const KRL_SIG: &str = "/v1/krl.sig";
    /// `POST` [`super::EnrollStartRequest`] → [`super::EnrollStartResponse`].
    pub const ENROLL_START: &str = "/v1/enroll/start";
    /// `POST` [`super::EnrollFinishRequest`] → [`super::EnrollFinishResponse`].
    pub const ENROLL_FINISH: &str = "/v1/enroll/finish";
    /// `POST` [`super::LoginRequest`] → [`super::LoginResponse`].
    pub const LOGIN: &str = "/v1/login";
    /// `POST` (bearer) [`super::CertRequest`] → [`super::CertResponse`].
    pub const CERTS: &str = "/v1/certs";
    /// `GET` (bearer) → [`super::WhoAmI`].
    pub const WHOAMI: &str = "/v1/whoami";
    /// `GET` (bearer) → [`super::SshHosts`].
    pub const SSH_HOSTS: &str = "/v1/ssh-hosts";
    /// `GET` (bearer) → [`super::Targets`]: the caller's own view, never
    /// another user's (the request names no user, and a query is refused).
    pub const TARGETS: &str = "/v1/targets";
    /// `POST` (bearer) ends the session.
    pub const LOGOUT: &str = "/v1/logout";
    /// `GET` list / `POST` create users (admin).
    pub const ADMIN_USERS: &str = "/v1/admin/users";
    /// `POST` (admin) [`super::SetUserStateRequest`].
    pub const ADMIN_USER_STATE: &str = "/v1/admin/users/state";
    /// `POST` (admin) [`super::SetGroupsRequest`].
    pub const ADMIN_USER_GROUPS: &str = "/v1/admin/users/groups";
    /// `POST` (admin) [`super::IdpLinkRequest`] → [`super::IdpLinkResponse`].
    pub const ADMIN_USER_IDP_LINK: &str = "/v1/admin/users/idp-link";
    /// `POST` (admin) [`super::InviteRequest`] → [`super::InviteResponse`].
    pub const ADMIN_INVITES: &str = "/v1/admin/invites";
    /// `POST` (admin) [`super::RevokeRequest`] → [`super::RevokeResponse`].
    pub const ADMIN_REVOKE: &str = "/v1/admin/revoke";
    /// `POST` (admin) [`super::HostCertRequest`] → [`super::CertResponse`].
    pub const ADMIN_HOST_CERTS: &str = "/v1/admin/host-certs";
    /// `POST` (admin) [`super::BastionTokenRequest`] → [`super::BastionTokenResponse`].
    pub const ADMIN_BASTION_TOKENS: &str = "/v1/admin/bastion-tokens";
    /// `POST` (admin) [`super::BastionRevokeRequest`] → [`super::BastionRevokeResponse`].
    pub const ADMIN_BASTION_REVOKE: &str = "/v1/admin/bastions/revoke";
    /// `POST` (join token in the body) [`super::BastionJoinRequest`] →
    /// [`super::BastionJoinResponse`].
    pub const BASTION_JOIN: &str = "/v1/bastion/join";
    /// `POST` (bastion credential) [`super::BastionHostCertRequest`] →
    /// [`super::CertResponse`].
    pub const BASTION_HOST_CERT: &str = "/v1/bastion/host-cert";
    /// `POST` (bastion credential) [`super::SessionCertRequest`] →
    /// [`super::SessionCertResponse`].
    pub const BASTION_SESSION_CERT: &str = "/v1/bastion/session-cert";
    /// `GET` (bastion credential) `?since_version=N` → [`super::BastionRevocations`].
    pub const BASTION_REVOCATIONS: &str = "/v1/bastion/revocations";
    /// `POST` (bastion credential) [`super::BastionEventBatch`] →
    /// [`super::BastionEventAck`]: session events into the audit chain.
    pub const BASTION_EVENTS: &str = "/v1/bastion/events";
    /// `PUT` (bastion credential) `/v1/bastion/recordings/{session_id}`, body = the
    /// finished `.cast.zst` recording, header [`super::RECORDING_SHA256_HEADER`] →
    /// [`super::RecordingSealed`]: the CA stores it and seals its digest. A session
    /// that did not end cleanly (finished after a crash) is marked with the header
    /// [`super::RECORDING_ABNORMAL_END_HEADER`]`: 1` or `?abnormal_end=true`. The
    /// same bytes again answer as the first upload did; other bytes for a sealed
    /// session get 409 `recording_exists`; a session this bastion never reported
    /// `session_started` for gets 409 `session_unknown`.
    pub const BASTION_RECORDINGS: &str = "/v1/bastion/recordings";
    /// `GET` (admin) `?user=&target=&session=&limit=` → [`super::SessionList`]
    /// (limit default 50, at most 1000).
    pub const ADMIN_SESSIONS: &str = "/v1/admin/sessions";
    /// `GET` (admin) `/v1/admin/sessions/{session_id}/recording` → the sealed
    /// `.cast.zst` bytes (refused if they no longer match the seal).
    pub const ADMIN_SESSION_RECORDING_SUFFIX: &str = "/recording";
}

/// Header carrying the lowercase hex SHA-256 of an uploaded recording's bytes.
pub const RECORDING_SHA256_HEADER: &str = "x-rampart-recording-sha256";

/// Header (`1`/`true`) marking an uploaded recording as ending abnormally.
pub const RECORDING_ABNORMAL_END_HEADER: &str = "x-rampart-abnormal-end";

/// Largest recording upload the CA accepts by default (compressed bytes).
pub const MAX_RECORDING_BYTES: usize = 256 * 1024 * 1024;

/// Most events in one [`BastionEventBatch`].
pub const MAX_EVENTS_PER_BATCH: usize = 256;

/// Error body of every non-2xx response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorBody {
    /// Stable, machine-readable code such as `invalid_public_key` or
    /// `factor_replayed`: an [`ErrorCode`] string. A `String`, so that a client
    /// reads an error whose code is newer than itself; compare with `==`.
    pub code: String,
    /// One short sentence for a person.
    pub message: String,
}

/// `GET /v1/health`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Health {
    /// `"ok"` while the CA can serve reads; `"degraded"` while audit writes fail.
    pub status: String,
    /// Version of the running `rampart-ca`.
    pub version: String,
}

/// Redeem an invite and start TOTP enrolment.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrollStartRequest {
    /// The invite code an admin handed out.
    pub invite: String,
}

impl std::fmt::Debug for EnrollStartRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnrollStartRequest")
            .field("invite", &"<redacted>")
            .finish()
    }
}

/// The TOTP secret to load into an authenticator app, and a token to finish with.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrollStartResponse {
    /// The user this invite was for.
    pub user: String,
    /// Short-lived token that binds [`EnrollFinishRequest`] to this enrolment.
    pub enrollment_token: String,
    /// `otpauth://totp/...` URI (RFC 6238, SHA-1, 6 digits, 30 s).
    pub totp_uri: String,
    /// The same secret in base32, for typing into an app by hand.
    pub totp_secret: String,
    /// When the enrolment token stops working.
    pub expires_at: DateTime<Utc>,
}

impl std::fmt::Debug for EnrollStartResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnrollStartResponse")
            .field("user", &self.user)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// Prove the authenticator app holds the secret; finishes enrolment.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrollFinishRequest {
    /// From [`EnrollStartResponse::enrollment_token`].
    pub enrollment_token: String,
    /// A current 6-digit TOTP code.
    pub totp_code: String,
}

impl std::fmt::Debug for EnrollFinishRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EnrollFinishRequest { .. }")
    }
}

/// Recovery codes, shown exactly once.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrollFinishResponse {
    /// The enrolled user.
    pub user: String,
    /// Ten single-use recovery codes. The CA keeps only their argon2 hashes.
    pub recovery_codes: Vec<String>,
}

impl std::fmt::Debug for EnrollFinishResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnrollFinishResponse")
            .field("user", &self.user)
            .field("recovery_codes", &"<redacted>")
            .finish()
    }
}

/// A second factor presented at login. WebAuthn and OIDC arrive as further
/// variants with their own issues.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum FactorProof {
    /// A 6-digit RFC 6238 code.
    Totp {
        /// The code.
        code: String,
    },
    /// One of the recovery codes printed at enrolment.
    Recovery {
        /// The code.
        code: String,
    },
}

impl FactorProof {
    /// The factor's name as used in policy and audit (`totp`, `recovery`).
    pub fn method(&self) -> &'static str {
        match self {
            FactorProof::Totp { .. } => "totp",
            FactorProof::Recovery { .. } => "recovery",
        }
    }
}

impl std::fmt::Debug for FactorProof {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FactorProof::{}(<redacted>)", self.method())
    }
}

/// `POST /v1/login`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// Rampart user name.
    pub user: String,
    /// The factor being proved.
    pub factor: FactorProof,
}

/// A bearer session, proof that `user` passed `factor` at `mfa_time`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginResponse {
    /// The user.
    pub user: String,
    /// Opaque bearer token; send as `Authorization: Bearer …`.
    pub session_token: String,
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

impl std::fmt::Debug for LoginResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginResponse")
            .field("user", &self.user)
            .field("session_token", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .field("mfa_method", &self.mfa_method)
            .field("mfa_time", &self.mfa_time)
            .field("mfa_event", &self.mfa_event)
            .field("admin", &self.admin)
            .finish()
    }
}

/// `POST /v1/certs`: sign this public key for the session's user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertRequest {
    /// OpenSSH one-line public key (`ssh-ed25519 AAAA… comment`).
    pub public_key: String,
    /// Requested lifetime; policy clamps it. `None` takes the role's default.
    #[serde(default)]
    pub ttl_seconds: Option<u64>,
}

/// A YubiKey PIV attestation of the key in a certificate request: what the
/// YubiKey gives out for a key generated in a slot, both PEM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PivAttestation {
    /// The slot's attestation certificate (`ATTEST` instruction, e.g.
    /// `ykman piv keys attest 9a -`), one PEM `CERTIFICATE`.
    pub slot_cert_pem: String,
    /// The device's attestation certificate from slot `f9` (`ykman piv
    /// certificates export f9 -`), optionally followed by further intermediates
    /// towards Yubico's root.
    pub intermediate_pem: String,
}

/// The full body of `POST /v1/certs`: a [`CertRequest`] plus, optionally, a PIV
/// attestation proving that the key lives in a YubiKey. With a valid
/// attestation the certificate is marked `mfa-key@rampart=piv-attested` and
/// roles with `min_factor = "hardware-bound"` can contribute; an invalid one
/// refuses the request (`piv_attestation_*` codes), never silently downgrades it.
/// A plain `CertRequest` body is a valid `AttestedCertRequest` without the field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttestedCertRequest {
    /// OpenSSH one-line public key.
    pub public_key: String,
    /// Requested lifetime; policy clamps it.
    #[serde(default)]
    pub ttl_seconds: Option<u64>,
    /// The YubiKey PIV attestation of `public_key`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub piv_attestation: Option<PivAttestation>,
}

impl AttestedCertRequest {
    /// The request without its attestation.
    pub fn cert_request(&self) -> CertRequest {
        CertRequest {
            public_key: self.public_key.clone(),
            ttl_seconds: self.ttl_seconds,
        }
    }
}

impl From<CertRequest> for AttestedCertRequest {
    fn from(r: CertRequest) -> Self {
        AttestedCertRequest {
            public_key: r.public_key,
            ttl_seconds: r.ttl_seconds,
            piv_attestation: None,
        }
    }
}

/// A signed certificate and what it says, so the client need not parse it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertResponse {
    /// OpenSSH one-line certificate (`ssh-ed25519-cert-v01@openssh.com AAAA…`).
    pub certificate: String,
    /// Serial number.
    pub serial: u64,
    /// Key ID (`user=<name> serial=<n> mfa=<method>` for user certificates).
    pub key_id: String,
    /// Principals.
    pub principals: Vec<String>,
    /// Start of validity (back-dated for clock skew).
    pub valid_after: DateTime<Utc>,
    /// End of validity.
    pub valid_before: DateTime<Utc>,
}

/// `GET /v1/ssh-hosts`: the hosts the CA knows users reach with Rampart
/// certificates, so that the CLI's ssh_config offers the certificate to them and
/// to no other host.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SshHosts {
    /// Host names and patterns, sorted: the joined bastions' names (each is
    /// its host certificate's principal) and the target name globs the policy
    /// registers for bastions (`[bastions.<name>] targets`), for `Host` lines.
    pub hosts: Vec<String>,
    /// Public keys (OpenSSH one-line) of certified hosts whose key is revoked:
    /// the CLI marks them `@revoked` in its known_hosts, so ssh refuses them
    /// whatever certificate they show.
    #[serde(default)]
    pub revoked_host_keys: Vec<String>,
}

/// `GET /v1/targets`: what the session's user may reach through the
/// bastions, from the policy (`rampart ls`, `rampart ssh`, the Host blocks of
/// `rampart login`). A view for the client, not a grant: the bastion asks the
/// CA again for every session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Targets {
    /// The user the view is for (the session's).
    pub user: String,
    /// Targets, by bastion, each bastion's in the order the policy registers them.
    pub targets: Vec<TargetAccess>,
    /// Where ssh reaches each bastion named in `targets`, sorted by name.
    pub bastions: Vec<BastionAddress>,
    /// Why the list is empty when policy selects no role for the session
    /// (no role, deny rules, factor too weak, MFA too old).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub denied: Option<String>,
}

/// One row of [`Targets`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetAccess {
    /// Target name as the bastion knows it, or a glob when `pattern`.
    pub target: String,
    /// `target` is a pattern a bastion registers (`db-*`), not one host.
    pub pattern: bool,
    /// The joined bastion that serves it.
    pub bastion: String,
    /// Accounts the user may log in as there, sorted.
    pub logins: Vec<String>,
    /// The roles that grant them, sorted.
    pub roles: Vec<String>,
    /// What each session asks for first: `none`, `code` (a TOTP code at the
    /// bastion) or `approval` (a security-key approval on the CA's page).
    pub session_check: String,
    /// Labels the target must carry in the bastion's config for these roles
    /// to reach it (empty: any).
    #[serde(default)]
    pub labels: std::collections::BTreeMap<String, String>,
}

/// Where users' ssh reaches a bastion (policy `[bastions.NAME] address`,
/// else its name on port 22). Its host certificate is for `name`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BastionAddress {
    /// The bastion's name (its host certificate's principal).
    pub name: String,
    /// Host name or address to connect to.
    pub host: String,
    /// SSH port.
    pub port: u16,
}

/// `GET /v1/whoami`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WhoAmI {
    /// User name.
    pub user: String,
    /// Groups.
    pub groups: Vec<String>,
    /// Admin flag.
    pub admin: bool,
    /// Factor of this session.
    pub mfa_method: String,
    /// When the factor was verified.
    pub mfa_time: DateTime<Utc>,
    /// When the session ends.
    pub expires_at: DateTime<Utc>,
}

/// A user as admins see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateUserRequest {
    /// New user's name.
    pub name: String,
    /// Initial groups.
    #[serde(default)]
    pub groups: Vec<String>,
    /// Grant admin rights.
    #[serde(default)]
    pub admin: bool,
}

/// `POST /v1/admin/users/state`: disable or enable a user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetUserStateRequest {
    /// The user.
    pub name: String,
    /// `true` disables (and ends the user's sessions), `false` enables.
    pub disabled: bool,
}

/// `POST /v1/admin/users/groups`: replace a user's groups.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetGroupsRequest {
    /// The user.
    pub name: String,
    /// New groups.
    pub groups: Vec<String>,
}

/// `POST /v1/admin/users/idp-link`: tie a user to an account at an OIDC
/// provider (its `sub`), or remove the tie. Only a linked account (or one the
/// CA created just in time) can log in as a user through that provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdpLinkRequest {
    /// The Rampart user.
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InviteRequest {
    /// Existing user the invite enrols.
    pub user: String,
    /// Lifetime; default 24 h, at most 7 days.
    #[serde(default)]
    pub ttl_seconds: Option<u64>,
}

/// A fresh invite. The code is shown once; the CA stores only its hash.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InviteResponse {
    /// The user.
    pub user: String,
    /// The single-use code.
    pub code: String,
    /// Expiry.
    pub expires_at: DateTime<Utc>,
}

impl std::fmt::Debug for InviteResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InviteResponse")
            .field("user", &self.user)
            .field("code", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// `POST /v1/admin/revoke`: exactly one of the fields must be set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BastionTokenResponse {
    /// The token for `rampart-bastion join --token`.
    pub token: String,
    /// The name it is bound to, if any.
    pub name: Option<String>,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
}

impl std::fmt::Debug for BastionTokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BastionTokenResponse")
            .field("token", &"<redacted>")
            .field("name", &self.name)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// `POST /v1/admin/bastions/revoke`: forget a bastion and its credential.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BastionRevokeRequest {
    /// The bastion's name.
    pub name: String,
    /// Free-text reason for the audit log.
    #[serde(default)]
    pub reason: Option<String>,
}

/// What a bastion revocation did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BastionRevokeResponse {
    /// The bastion whose credential no longer works.
    pub name: String,
}

/// `POST /v1/bastion/join`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BastionJoinRequest {
    /// The join token from `rampart admin bastion-token`.
    pub token: String,
    /// The bastion's name (a host name): its host certificate's principal.
    pub name: String,
    /// The bastion's SSH host public key (OpenSSH one-line format).
    pub host_public_key: String,
}

impl std::fmt::Debug for BastionJoinRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BastionJoinRequest")
            .field("token", &"<redacted>")
            .field("name", &self.name)
            .field("host_public_key", &self.host_public_key)
            .finish()
    }
}

/// The bastion's identity with the CA, shown once.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BastionJoinResponse {
    /// The bastion's name.
    pub name: String,
    /// The bearer credential for the bastion endpoints
    /// (starts with [`BASTION_CREDENTIAL_PREFIX`]). The CA keeps only its hash.
    pub credential: String,
    /// User CA public key (OpenSSH one-line): outer certificates must be signed by it.
    pub user_ca: String,
    /// Host CA public key (OpenSSH one-line): targets' host certificates are.
    pub host_ca: String,
    /// A host certificate for the bastion's own host key (principal = name).
    pub host_certificate: CertResponse,
}

impl std::fmt::Debug for BastionJoinResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BastionJoinResponse")
            .field("name", &self.name)
            .field("credential", &"<redacted>")
            .field("host_certificate", &self.host_certificate.serial)
            .finish_non_exhaustive()
    }
}

/// `POST /v1/bastion/host-cert`: a short-lived host certificate for a target name,
/// which the bastion presents when it terminates the inner SSH session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BastionHostCertRequest {
    /// The target's name as users dial it (`db-1`); the only principal.
    pub target: String,
    /// The host public key the bastion presents for it.
    pub host_public_key: String,
}

/// `POST /v1/bastion/session-cert`: a per-session user certificate for the
/// bastion's ephemeral key, so it can log in onward as `login@target`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionCertRequest {
    /// The user's outer certificate, OpenSSH one-line format, as the user
    /// presented it to the bastion.
    pub user_certificate: String,
    /// The account on the target.
    pub login: String,
    /// The target's name.
    pub target: String,
    /// The target's labels from the bastion config (audited; policy on labels
    /// comes later).
    #[serde(default)]
    pub target_labels: std::collections::BTreeMap<String, String>,
    /// The bastion's session ID (audited, and in the key ID).
    pub session_id: String,
    /// The bastion's ephemeral public key for this session.
    pub public_key: String,
    /// The user's address as the bastion saw it (TCP peer), audited.
    #[serde(default)]
    pub source: Option<String>,
    /// A per-session TOTP code, when the bastion asked the user for one.
    #[serde(default)]
    pub totp_code: Option<String>,
    /// A per-session security-key approval the bastion started
    /// ([`webauthn::BASTION_APPROVAL_START`]) and the user gave in a browser:
    /// the CA consumes it (once) and issues the certificate with its evidence
    /// (`mfa-method@rampart=webauthn`, fresh `mfa-time`, UV and AAGUID).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webauthn_approval: Option<webauthn::WaitRequest>,
    /// What the user's SSH client signed to log in to the bastion on this
    /// connection, and the signature: the proof that the certificate's holder
    /// is taking part, which the certificate alone cannot give (it is
    /// public). Required; optional on the wire only so that a request
    /// without it is refused and audited (`user_proof_required`) rather than
    /// rejected as unreadable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_proof: Option<user_proof::UserProof>,
}

impl std::fmt::Debug for SessionCertRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionCertRequest")
            .field("login", &self.login)
            .field("target", &self.target)
            .field("session_id", &self.session_id)
            .field("source", &self.source)
            .field("totp_code", &self.totp_code.as_ref().map(|_| "<redacted>"))
            .field("webauthn_approval", &self.webauthn_approval)
            .field("user_proof", &self.user_proof.is_some())
            .finish_non_exhaustive()
    }
}

/// A per-session certificate and the decision behind it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionCertResponse {
    /// The certificate (principal = the login, ≈1 minute).
    pub certificate: CertResponse,
    /// The user it was issued for.
    pub user: String,
    /// Roles that permitted the access.
    pub roles: Vec<String>,
    /// Whether a per-session TOTP code was verified for it.
    pub session_mfa: bool,
    /// Policy wants keystrokes (pty input) recorded as well as output.
    #[serde(default)]
    pub record_input: bool,
    /// Policy meters bulk data (`record = "metered"`): of each direction of an
    /// exec or subsystem channel without a pty, only the first this many MiB
    /// are stored, the rest counted and hashed. `None`: recorded in full. A
    /// pty, and a shell without one, are always recorded in full.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record_metered_mib: Option<u64>,
    /// Policy allows `direct-tcpip`/`tcpip-forward` port forwarding in this session.
    #[serde(default)]
    pub port_forwarding: bool,
    /// Policy allows agent forwarding to the target in this session.
    #[serde(default)]
    pub agent_forwarding: bool,
}

/// `GET /v1/bastion/revocations`: what the bastion needs to refuse revoked
/// certificates and end live sessions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BastionRevocations {
    /// Current KRL version (the same number as [`KRL_VERSION_HEADER`]).
    pub version: u64,
    /// False when `since_version` is the current version: the lists are then empty.
    pub changed: bool,
    /// Every revoked user-certificate serial.
    pub serials: Vec<u64>,
    /// Every revoked key fingerprint (`SHA256:…`).
    pub key_fingerprints: Vec<String>,
    /// Users that are disabled (their live sessions must end).
    pub disabled_users: Vec<String>,
}

/// What happened at a bastion, as the bastion reports it to the CA. Each maps
/// to one audit event kind (`RA-BAS-006` … `RA-BAS-012` and `RA-BAS-016`, see
/// audit/SCHEMA.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BastionEventKind {
    /// The inner session reached the target (`bastion_session_started`).
    SessionStarted,
    /// A session ended; `success = false` when abnormal (revoked, idle
    /// timeout, target lost, bastion crash found at restart).
    SessionEnded,
    /// An outer connection or a target request was refused before a session
    /// existed: bad certificate, password or plain key, unknown target, limits.
    ConnectionRefused,
    /// An exec request: command, exit status, byte counts.
    Exec,
    /// One SFTP file operation (open for read/write, remove, rename, mkdir…).
    FileOp,
    /// A port-forward or agent channel that policy allowed.
    Forward,
    /// A channel or request that policy refused (forward, agent, subsystem…).
    RequestRefused,
    /// The bastion re-read its config on SIGHUP (`bastion_config_reloaded`);
    /// `success = false` when the file was refused and the running config stays.
    ConfigReloaded,
}

/// One bastion event. Strings are bounded by the CA (names 256 bytes, reason and
/// detail strings 4 KiB, 32 detail keys); the CA stamps its own time and keeps
/// the bastion's `at` as a detail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BastionEvent {
    /// The event's ID in the audit chain (a ULID the bastion chose when the
    /// event happened). A bastion resends events it has no answer for with the
    /// same ID, and the CA writes an ID once: resending is harmless. Without
    /// one the CA assigns an ID (and a resend would be a second event).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// What happened.
    pub kind: BastionEventKind,
    /// Whether the action happened (`false`: refused or failed).
    pub success: bool,
    /// When the bastion saw it.
    pub at: DateTime<Utc>,
    /// The bastion's session ID (a ULID), once there is one.
    #[serde(default)]
    pub session_id: Option<String>,
    /// The Rampart user (from the outer certificate's key ID), when known.
    #[serde(default)]
    pub user: Option<String>,
    /// The account on the target.
    #[serde(default)]
    pub login: Option<String>,
    /// The target's name.
    #[serde(default)]
    pub target: Option<String>,
    /// The user's address (TCP peer of the outer connection).
    #[serde(default)]
    pub source: Option<String>,
    /// The outer certificate's serial.
    #[serde(default)]
    pub serial: Option<u64>,
    /// One sentence, for refusals and abnormal ends.
    #[serde(default)]
    pub reason: Option<String>,
    /// Kind-specific fields (`command`, `exit_status`, `op`, `path`, `bytes_up`…).
    #[serde(default)]
    pub details: std::collections::BTreeMap<String, serde_json::Value>,
}

/// `POST /v1/bastion/events`: written in order in one transaction. The CA
/// judges each event on its own: an event it refuses (a field too long, a
/// session ID that is not a ULID…) is replaced in the chain by an
/// `audit_event_rejected` event carrying its kind, session and digest, and is
/// named in [`BastionEventAck::rejected`]; the others are written as sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BastionEventBatch {
    /// At most [`MAX_EVENTS_PER_BATCH`].
    pub events: Vec<BastionEvent>,
}

/// The audit event IDs, in the order of the batch (one per event sent; for a
/// rejected event, the ID of the `audit_event_rejected` event that stands in
/// for it). A 2xx means every one is durably in the chain; anything else means
/// none is and the bastion must refuse the action it was about to take (fail
/// closed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BastionEventAck {
    /// ULIDs of the written events.
    pub ids: Vec<String>,
    /// The events the CA refused, by their index in the batch, with why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rejected: Vec<RejectedEvent>,
}

/// One event of a batch that the CA refused and replaced by an
/// `audit_event_rejected` event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RejectedEvent {
    /// Its index in [`BastionEventBatch::events`].
    pub index: usize,
    /// Why (one sentence, e.g. "user must be 1-256 bytes without control characters").
    pub reason: String,
}

/// Reply to a recording upload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordingSealed {
    /// The session.
    pub session_id: String,
    /// Lowercase hex SHA-256 of the stored bytes.
    pub sha256: String,
    /// Size of the stored bytes.
    pub bytes: u64,
    /// The `recording_sealed` audit event's ID.
    pub event_id: String,
}

/// One bastion session as the audit log knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionSummary {
    /// The session ID (ULID).
    pub session_id: String,
    /// The bastion that carried it.
    pub bastion: String,
    /// The Rampart user.
    pub user: String,
    /// The account on the target.
    pub login: String,
    /// The target's name.
    pub target: String,
    /// When the inner session started.
    pub started_at: DateTime<Utc>,
    /// When it ended, if it has.
    pub ended_at: Option<DateTime<Utc>>,
    /// Why it ended (`closed`, `revoked`, `idle_timeout`, `bastion_restarted`…).
    pub end_reason: Option<String>,
    /// Whether it ended normally.
    pub ended_normally: Option<bool>,
    /// SHA-256 of the sealed recording, if one was sealed.
    pub recording_sha256: Option<String>,
}

/// `GET /v1/admin/sessions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionList {
    /// Newest first.
    pub sessions: Vec<SessionSummary>,
}

/// Render a bearer header value without ever putting the token in `Debug` output.
pub fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_fields_are_refused() {
        let err = serde_json::from_str::<CertRequest>(
            r#"{"public_key":"ssh-ed25519 AAAA","ttl_seconds":60,"principals":["root"]}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("unknown field"), "{err}");
    }

    #[test]
    fn a_plain_cert_request_body_is_an_attested_one_without_attestation() {
        let plain = CertRequest {
            public_key: "ssh-ed25519 AAAA".into(),
            ttl_seconds: Some(60),
        };
        let body = serde_json::to_string(&plain).unwrap();
        let full: AttestedCertRequest = serde_json::from_str(&body).unwrap();
        assert_eq!(full, AttestedCertRequest::from(plain.clone()));
        assert_eq!(full.cert_request(), plain);
        // Serialised without attestation, it is still a plain CertRequest body.
        let back: CertRequest =
            serde_json::from_str(&serde_json::to_string(&full).unwrap()).unwrap();
        assert_eq!(back, plain);
        let with: AttestedCertRequest = serde_json::from_str(
            r#"{"public_key":"k","piv_attestation":{"slot_cert_pem":"a","intermediate_pem":"b"}}"#,
        )
        .unwrap();
        assert_eq!(with.piv_attestation.unwrap().intermediate_pem, "b");
        assert!(serde_json::from_str::<AttestedCertRequest>(
            r#"{"public_key":"k","piv_attestation":{"slot_cert_pem":"a"}}"#
        )
        .is_err());
    }

    #[test]
    fn factor_proof_is_tagged_and_redacted() {
        let p: FactorProof = serde_json::from_str(r#"{"type":"totp","code":"123456"}"#).unwrap();
        assert_eq!(p.method(), "totp");
        assert!(!format!("{p:?}").contains("123456"));
        let login = LoginResponse {
            user: "a".into(),
            session_token: "sekrit".into(),
            expires_at: Utc::now(),
            mfa_method: "totp".into(),
            mfa_time: Utc::now(),
            mfa_event: "01J".into(),
            admin: false,
        };
        assert!(!format!("{login:?}").contains("sekrit"));
    }
}
