//! The CA side of the bastion (docs/architecture.md, flow 4): join tokens, bastion identity,
//! host certificates for targets, and per-session user certificates.
//!
//! **Owns:** every rule about what a bastion may obtain from the CA. The bastion
//! daemon (`rampart-bastion`) holds no CA key; it calls these operations over the
//! HTTPS API and proves who it is with a credential it received at join.
//! **Must never:** sign anything for a caller that is not a joined bastion, or
//! issue a per-session certificate without the user's proof of presence, the
//! user's own certificate and a policy decision for (user, login, target).
//!
//! # The flow
//!
//! 1. `rampart admin bastion-token [--name NAME] [--ttl 1h]` (admin, fresh MFA) →
//!    `POST /v1/admin/bastion-tokens`: a single-use join token, default 1 h, at
//!    most 24 h, optionally bound to a name. Stored as a SHA-256 hash, like
//!    invites. Audited `bastion_token_created` (RA-BAS-001).
//! 2. `POST /v1/bastion/join {token, name, host_public_key}`: the token is
//!    consumed atomically (a second use, an expired or unknown token is refused
//!    and audited `bastion_join_refused`, RA-BAS-003; failures count against the
//!    source address like bad invites). The bastion is registered (name, host
//!    key fingerprint) and gets back, once: a credential
//!    ([`api::BASTION_CREDENTIAL_PREFIX`] + 256 random bits, stored hashed), both
//!    CA public keys, and a host certificate for its own host key (principal =
//!    its name, lifetime `[hosts] max_ttl`). A name already joined is refused
//!    unless the token was made for that name: then the join replaces the host
//!    key and the credential (rotation), and the old credential stops working.
//!    Audited `bastion_joined` (RA-BAS-002).
//! 3. With `Authorization: Bearer rpb_…` (the credential; a user session token is
//!    refused on these endpoints, and a credential is refused on user and admin
//!    endpoints, because each is looked up only in its own table):
//!    - `POST /v1/bastion/host-cert {target, host_public_key}`: a host
//!      certificate for the target's name (the only principal), for the host
//!      key the bastion joined with and no other (`host_key_not_registered`),
//!      for a name the policy registers for this bastion (`[bastions.NAME]
//!      targets`, else `target_not_registered`; per-session certificates check
//!      the same), valid
//!      [`TARGET_HOST_CERT_TTL`] clamped by `[hosts] max_ttl`, so the bastion can
//!      terminate the inner SSH session for `db-1` under a certificate the
//!      client's `@cert-authority` line trusts. Names that are not IP addresses or
//!      RFC 1123 host names are refused. Audited `host_cert_issued` with
//!      `actor = bastion:NAME`.
//!    - `POST /v1/bastion/session-cert`: see [`Authority::bastion_session_cert`].
//!    - `GET /v1/bastion/revocations?since_version=N`: the KRL version, every
//!      revoked serial and key fingerprint, and the disabled users, as JSON — so
//!      the bastion can end live sessions without parsing the binary KRL. When
//!      `since_version` is current, `changed` is false and the lists are empty,
//!      which makes a tight polling loop cheap. (`GET /v1/krl` stays the source
//!      for sshd.)
//!
//! 4. `rampart admin revoke --bastion NAME` (admin) → `POST
//!    /v1/admin/bastions/revoke`: the credential stops working at once (audited
//!    `revoked`, `target` = `bastion:NAME`) and its host key is revoked, so
//!    clients list it `@revoked` and it cannot join again; the name is free for
//!    a join from a fresh directory (a new key).
//!
//! # Per-session certificates
//!
//! The outer certificate is public, so it cannot show on its own that its
//! user is the one asking. Before any other decision the request's
//! `user_proof` must be what the user's SSH client signed to log in to the
//! bastion on this connection (RFC 4252 §7 publickey userauth data naming
//! exactly the outer certificate, signed by its key with the algorithm it
//! names; rsa-sha2-256/512, ECDSA and Ed25519); a missing one is refused
//! `user_proof_required`, any other `user_proof_invalid` (both audited
//! `access_denied`). Once the outer certificate is known to be this CA's and
//! valid, the proof is bound to this bastion by the SHA-256 of the session
//! identifier it signs: another bastion presenting it later is refused
//! `user_proof_foreign`, and its own bastion may use it again (per-session MFA
//! retries) for [`crate::authority::user_proof::USER_PROOF_WINDOW`] after the first use
//! (`user_proof_expired` after that). The binding is kept in the store until
//! the outer certificate expires, so a restart of the CA forgets none. See
//! [`super::user_proof`].
//!
//! The outer certificate itself must be a user certificate signed by this CA's user
//! CA, valid now by the CA's clock, with a serial this CA issued to the user its
//! key ID names (`user=<name>`), for the same key, and neither its serial nor
//! its key revoked; the user must exist and be enabled. Policy is then asked
//! twice with the factor and MFA time the outer certificate carries
//! (`mfa-method@rampart`, `mfa-time@rampart`): `evaluate_access` decides
//! whether `login@target` is allowed, and `evaluate` (lifetime 60 s) gives the
//! extensions and the lifetime ceiling. The certificate is for the bastion's
//! ephemeral key: principal = the login, key ID
//! `user=<name> session=<id> serial=<n> via=<bastion>`, valid
//! [`SESSION_CERT_TTL`] (plus the usual 5-minute backdate), the user's MFA
//! evidence copied into the extensions, `source-address` = the bastion's
//! address as the CA sees it (the TCP peer of this request; a bastion behind
//! NAT will need its egress addresses registered at join — a later seam). It is
//! recorded like any user certificate, so `revoke --user` covers it. Every
//! decision, allow or deny, is audited (`access_granted` RA-BAS-004 /
//! `access_denied` RA-BAS-005) with the bastion's session ID, target and login.
//!
//! # Per-session MFA and the session switches
//!
//! A role may say `session_mfa = true` (policy README): when any role that
//! permits the access does, and the request carries no `totp_code`, the answer
//! is 401 with code [`api::ErrorCode::SessionMfaRequired`] — after every other check, so
//! a user who would be refused anyway is never asked for a code. That answer is
//! not audited: it is a prompt, not a decision; the bastion asks the user
//! (keyboard-interactive) and retries, and the retry is audited like any other.
//! A `totp_code` is verified through the same TOTP verifier as `login` (RFC 6238
//! §5.2 replay rule: a time step is accepted once; failures count toward the
//! user's lockout), audited as `mfa_succeeded`/`mfa_failed`, and on success the
//! per-session certificate carries the fresh evidence (method `totp`, time now,
//! that event's ID) instead of the outer certificate's. `session_mfa` in the
//! response and the audit event says whether fresh per-session MFA (a code or
//! an approval) was verified.
//!
//! When the user has a usable security key (and the CA a WebAuthn relying
//! party), the answer is [`api::ErrorCode::SessionApprovalRequired`] instead: the
//! bastion starts an approval (`POST /v1/bastion/approvals/start`), shows its
//! URL and short code to the user, waits on `approvals/wait`, and retries with
//! `webauthn_approval = {request_id, poll_token}`. The approval must have been
//! given for this bastion, user and session ID; it is consumed (single use)
//! and the certificate carries its evidence: `mfa-method@rampart=webauthn`,
//! the key's use as `mfa-time`, the approval's `mfa_succeeded` event, and
//! `mfa-uv@rampart`/`mfa-aaguid@rampart`. A denied, expired, pending or foreign
//! approval refuses the certificate, audited `access_denied` with the
//! approval's code (`webauthn_denied`, `webauthn_expired`, …).
//!
//! `record_input`, `port_forwarding` and `agent_forwarding` in the response come
//! from the policy grant (true if any permitting role sets them) and are audited
//! as details of `access_granted`. The request's `target_labels` are matched
//! against the roles' `target_labels`.

use rampart_api::ErrorCode;
use std::time::Duration;

use crate::store::BastionRecord;

/// Default lifetime of a bastion join token.
pub const BASTION_TOKEN_DEFAULT_TTL: Duration = Duration::from_secs(3600);
/// Longest lifetime of a bastion join token.
pub const BASTION_TOKEN_MAX_TTL: Duration = Duration::from_secs(24 * 3600);
/// Lifetime of a host certificate for a target (policy `[hosts] max_ttl` clamps).
pub const TARGET_HOST_CERT_TTL: Duration = Duration::from_secs(3600);
/// Lifetime of a per-session certificate: long enough to log in onward.
pub const SESSION_CERT_TTL: Duration = Duration::from_secs(60);
/// Longest certificate line accepted from a bastion.
const MAX_CERT_LINE: usize = 16 * 1024;
/// Most target labels accepted (they are only audited).
const MAX_LABELS: usize = 32;

/// A joined bastion, authenticated by its credential.
#[derive(Debug, Clone)]
pub struct Bastion {
    /// The stored record.
    pub record: BastionRecord,
}

impl Bastion {
    fn actor(&self) -> String {
        format!("bastion:{}", self.record.name)
    }
}

/// Why a per-session certificate is refused: the API error and the audit reason.
struct Refusal {
    code: ErrorCode,
    message: String,
    user: Option<String>,
    bad_request: bool,
}

impl Refusal {
    fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Refusal {
            code,
            message: message.into(),
            user: None,
            bad_request: false,
        }
    }

    /// A refusal answered 400 Bad Request rather than 403 Forbidden.
    fn bad_request(code: ErrorCode, message: impl Into<String>) -> Self {
        Refusal {
            bad_request: true,
            ..Refusal::new(code, message)
        }
    }

    fn user(mut self, user: &str) -> Self {
        self.user = Some(user.to_owned());
        self
    }
}

/// The session ID and bastion name end up in the key ID: one clean token each.
fn clean_token(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// `user=<name>` from a Rampart key ID (`user=alice serial=7 mfa=totp`).
fn key_id_user(key_id: &str) -> Option<&str> {
    key_id
        .split(' ')
        .find_map(|part| part.strip_prefix("user="))
        .filter(|u| !u.is_empty())
}

mod host_certs;
mod join;
mod session_cert;
mod session_checks;

/// The refusal code of a policy denial at the bastion: `access_denied`, except
/// that a security key used through a link for roles that refuse that says so
/// (`webauthn_link_refused`), so the user learns what would work.
fn access_denial_code(d: &rampart_policy::Denial) -> ErrorCode {
    match d.code {
        rampart_policy::DenyCode::WebauthnLinkRefused => ErrorCode::WebauthnLinkRefused,
        _ => ErrorCode::AccessDenied,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_id_user_takes_the_user_field() {
        assert_eq!(key_id_user("user=alice serial=7 mfa=totp"), Some("alice"));
        assert_eq!(key_id_user("serial=7 user=bob"), Some("bob"));
        assert_eq!(key_id_user("user= serial=7"), None);
        assert_eq!(key_id_user("alice"), None);
    }

    #[test]
    fn session_ids_are_single_clean_tokens() {
        assert!(clean_token("01JABC-def_1.2"));
        for bad in ["", "a b", "a=b", "x\n", &"a".repeat(129)] {
            assert!(!clean_token(bad), "{bad:?}");
        }
    }
}
