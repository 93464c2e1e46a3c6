//! Wire types of the Rampart CA's HTTPS JSON API, shared by `rampart-ca`, the
//! `rampart` CLI and `rampart-bastion`, its OpenAPI document, and the clients
//! (blocking and async) that pin the CA's self-signed TLS certificate by its
//! SHA-256 fingerprint.
//!
//! This crate owns the shape of every request and response. It must not pull in
//! server dependencies (axum, rusqlite, signing keys): the CLI links it.
//!
//! Every request body is `deny_unknown_fields`, so a client that sends a field the
//! server does not know gets a clear 400 instead of a silently ignored option.
//!
//! Where things are (the wire types of each area are re-exported here, so every
//! type is `rampart_api::Name` whichever file holds it):
//! - this file: endpoint paths ([`paths`], read by the `api_reference` test that
//!   writes `docs/api.md`), headers, size limits, [`ErrorBody`], [`Health`];
//! - `login`: enrolment and login; `certs`: user certificates, hosts, targets,
//!   `whoami`; `admin`: admin requests; `bastion`: what a bastion asks;
//!   `sessions`: the admin session list;
//! - [`error_code`]: the stable error codes; [`oidc`], [`webauthn`]: those
//!   factors' endpoints and types; [`user_proof`]: the bastion's proof of a
//!   user's presence; [`source`]: client source addresses; [`client`]: the
//!   pinned-TLS clients; [`openapi`]: the OpenAPI 3.1 document built from these
//!   types; [`report`]: one-line error reports; `secret`: [`WireSecret`], the
//!   type of every code, token and handle a body carries.

// Tests may read the wall clock; the code they test reads it through its seam.
#![cfg_attr(test, allow(clippy::disallowed_methods))]

mod admin;
mod bastion;
mod certs;
pub mod client;
pub mod error_code;
mod hosts;
mod login;
pub mod oidc;
pub mod openapi;
pub mod report;
mod secret;
mod sessions;
pub mod source;
pub mod user_proof;
pub mod webauthn;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use admin::*;
pub use bastion::*;
pub use certs::*;
pub use client::{Client, ClientError, Fingerprint};
pub use error_code::ErrorCode;
pub use hosts::*;
pub use login::*;
/// The kind of factor a session was opened with ([`FactorProof::method`]).
pub use rampart_policy::MfaMethod;
pub use secret::WireSecret;
pub use sessions::*;

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

/// SSHSIG namespace of the signature over the user CA key set
/// ([`paths::USER_CA_PUB_SIG`]), made with the signing user CA key. A host
/// accepts a new set only when a key it already trusts signed it, so a
/// rotation needs no new trust step, and a signature made for another purpose
/// never passes for this one.
pub const CA_KEYS_SIG_NAMESPACE: &str = "rampart-ca-keys@rampart";

/// Response header of [`paths::KRL`] and [`paths::KRL_SIG`]: the `krl_version`
/// of the KRL served (decimal).
pub const KRL_VERSION_HEADER: &str = "x-rampart-krl-version";

/// Endpoint paths, so that server routes and client calls cannot drift apart.
pub mod paths {
    /// `GET` liveness and version.
    pub const HEALTH: &str = "/v1/health";
    /// `GET` this API's OpenAPI 3.1 document, as this CA's version has it
    /// ([`crate::openapi::DOCUMENT`]).
    pub const OPENAPI: &str = "/v1/openapi.json";
    /// `GET` the user CA public keys, one per line (OpenSSH format, a
    /// `TrustedUserCAKeys` file): the signing key first, then, while a
    /// rotation runs, the next key and the replaced one.
    pub const USER_CA_PUB: &str = "/v1/ca/user.pub";
    /// `GET` the SSHSIG over the exact bytes [`USER_CA_PUB`] serves, made with
    /// the signing user CA key in namespace [`super::CA_KEYS_SIG_NAMESPACE`].
    pub const USER_CA_PUB_SIG: &str = "/v1/ca/user.pub.sig";
    /// `GET` the host CA public keys, one per line, the signing key first.
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
    /// `POST` [`super::HostRenewRequest`] → [`super::CertResponse`]: a host
    /// renews its own certificate with the one it holds (no session).
    pub const HOST_RENEW: &str = "/v1/hosts/renew";
    /// `POST` (admin) [`super::HostTokenRequest`] → [`super::HostTokenResponse`];
    /// `GET` (admin) → [`super::HostTokenList`].
    pub const ADMIN_HOST_TOKENS: &str = "/v1/admin/host-tokens";
    /// `POST` (admin) [`super::HostTokenRevokeRequest`] → [`super::HostTokenInfo`]:
    /// an unused host join token stops working.
    pub const ADMIN_HOST_TOKENS_REVOKE: &str = "/v1/admin/host-tokens/revoke";
    /// `POST` [`super::HostJoinRequest`] → [`super::CertResponse`]: a host
    /// redeems a join token for its first certificate (no session).
    pub const HOST_JOIN: &str = "/v1/hosts/join";
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
    /// `PUT` (bastion credential), body = the finished `.cast.zst` recording, header [`super::RECORDING_SHA256_HEADER`] →
    /// [`super::RecordingSealed`]: the CA stores it and seals its digest. A session
    /// that did not end cleanly (finished after a crash) is marked with the header
    /// [`super::RECORDING_ABNORMAL_END_HEADER`]`: 1` or `?abnormal_end=true`. The
    /// same bytes again answer as the first upload did; other bytes for a sealed
    /// session get 409 `recording_exists`; a session this bastion never reported
    /// `session_started` for gets 409 `session_unknown`.
    pub const BASTION_RECORDING: &str = "/v1/bastion/recordings/{session_id}";
    /// `GET` (admin) `?user=&target=&session=&limit=` → [`super::SessionList`]
    /// (limit default 50, at most 1000).
    pub const ADMIN_SESSIONS: &str = "/v1/admin/sessions";
    /// `GET` (admin) → the sealed `.cast.zst` bytes (refused if they no longer
    /// match the seal).
    pub const ADMIN_SESSION_RECORDING: &str = "/v1/admin/sessions/{session_id}/recording";

    /// `template` (a path constant with `{session_id}`) for one session.
    pub fn for_session(template: &str, session_id: &str) -> String {
        template.replace("{session_id}", session_id)
    }
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Health {
    /// `"ok"` while the CA can serve reads; `"degraded"` while audit writes fail.
    pub status: String,
    /// Version of the running `rampart-ca`.
    pub version: String,
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
        assert_eq!(p.method().as_str(), "totp");
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
