//! Wire types of the hardware-key factor (WebAuthn in a browser, CTAP2 from the CLI).
//!
//! Every WebAuthn ceremony is a *request* that somebody starts over the API (the CLI
//! for a login or an enrolment, a bastion for a per-session approval) and that a
//! browser completes on a page the CA serves:
//!
//! 1. `POST …/start` answers a [`CeremonyStarted`]: a public `request_id`, a secret
//!    `poll_token` that only the starter holds, the page `url` and a `short_code`.
//! 2. The user opens `url`; the page shows the same `short_code` the terminal shows
//!    (so nobody approves a request somebody else started), runs
//!    `navigator.credentials.create()`/`get()`, and posts the answer to the CA.
//! 3. The starter long-polls [`WAIT`] with `{request_id, poll_token}` until the
//!    answer is [`CeremonyOutcome::LoggedIn`] (or `Registered`/`Approved`), or the CA
//!    refuses (denied, expired, failed check: an API error with a stable code).
//!
//! The CLI's CTAP2 path (`rampart login --mfa fido2`) skips the page: the start
//! answer carries the `public_key` options, the CLI runs the ceremony against a USB
//! key itself and posts the authenticator's answer to [`FINISH`].
//!
//! Credential options and answers are the W3C WebAuthn JSON shapes
//! (`PublicKeyCredentialCreationOptions` etc., base64url for binary fields) and
//! travel as opaque JSON here, so this crate does not depend on a WebAuthn library.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{LoginResponse, WireSecret};

/// `POST` [`RegisterStartRequest`] → [`CeremonyStarted`]: start a key enrolment,
/// from an invite (no session) or for the logged-in user.
pub const REGISTER_START: &str = "/v1/webauthn/register/start";
/// `POST` [`LoginStartRequest`] → [`CeremonyStarted`]: start a login approved
/// with a security key.
pub const LOGIN_START: &str = "/v1/webauthn/login/start";
/// `POST` [`WaitRequest`] → [`CeremonyOutcome`]: long-poll a ceremony's outcome;
/// held open for at most [`WAIT_HOLD_SECS`].
pub const WAIT: &str = "/v1/webauthn/wait";
/// `POST` [`FinishRequest`] → [`CeremonyOutcome`]: finish a ceremony with an
/// authenticator's answer (the CTAP2 path).
pub const FINISH: &str = "/v1/webauthn/finish";
/// `GET` (bearer) `?user=NAME` → a list of [`WebauthnKey`]: a user's keys (admin).
/// Without `user`: the caller's own keys.
pub const KEYS: &str = "/v1/webauthn/keys";
/// `POST` (bearer) [`KeyRemoveRequest`] → [`WebauthnKey`]: remove a key (admin,
/// or the key's owner).
pub const KEY_REMOVE: &str = "/v1/webauthn/keys/remove";
/// `POST` (bastion credential) [`BastionApprovalStartRequest`] →
/// [`CeremonyStarted`]: start a per-session approval for a user.
pub const BASTION_APPROVAL_START: &str = "/v1/bastion/approvals/start";
/// `POST` (bastion credential) [`WaitRequest`] → [`CeremonyOutcome`]: long-poll
/// a per-session approval.
pub const BASTION_APPROVAL_WAIT: &str = "/v1/bastion/approvals/wait";

/// Browser pages live under this prefix (not `/v1`: they are HTML for people).
pub const PAGE_PREFIX: &str = "/webauthn";

/// The longest a [`WAIT`] call is held open before it answers `Pending`.
pub const WAIT_HOLD_SECS: u64 = 20;

/// The certificate extension saying whether the WebAuthn authenticator verified the
/// user (PIN or biometric): value `yes` or `no`.
pub const EXT_MFA_UV: &str = "mfa-uv@rampart";
/// The certificate extension carrying the authenticator's AAGUID (lower-case UUID).
pub const EXT_MFA_AAGUID: &str = "mfa-aaguid@rampart";
/// The certificate extension saying whether the CA trusts the key's model (`yes`:
/// its attestation verified against the CA's roots at enrolment, or its AAGUID is
/// on the CA's allow-list; `no`: an unattested key). Only `yes` together with
/// `mfa-uv@rampart=yes` is a phishing-resistant factor.
pub const EXT_MFA_ATTESTED: &str = "mfa-key-attested@rampart";
/// The certificate extension saying how the WebAuthn assertion reached the CA:
/// `yes` when it was given on the CA's approval page (through a link the client
/// or bastion printed), `no` when the client sent it from a key on its own
/// machine (CTAP2). A WebAuthn certificate without it counts as `yes`. Policy
/// roles with `webauthn_link = false` refuse `yes`.
pub const EXT_MFA_LINK: &str = "mfa-webauthn-link@rampart";

/// `POST /v1/webauthn/register/start`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterStartRequest {
    /// An invite code: enrol a new user's first factor. Without it the caller must
    /// send a session token and adds a key to their own account.
    #[serde(default)]
    pub invite: Option<WireSecret>,
    /// A name for the key, e.g. `yubikey-blue` (letters, digits, `-_. `; ≤ 64).
    pub name: String,
    /// `true` for the CTAP2 path: the answer carries the `public_key` options.
    #[serde(default)]
    pub direct: bool,
    /// With a session: the ID of one of the caller's keys that the new key
    /// replaces (it is removed when the new key is registered). A session opened
    /// with a recovery code may enrol a key only this way, as a stand-in for the
    /// key it lost.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaces: Option<String>,
}

/// `POST /v1/webauthn/login/start`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginStartRequest {
    /// The Rampart user name.
    pub user: String,
    /// `true` for the CTAP2 path: the answer carries the `public_key` options.
    #[serde(default)]
    pub direct: bool,
}

/// `POST /v1/bastion/approvals/start` (from a joined bastion).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BastionApprovalStartRequest {
    /// The Rampart user the outer certificate names.
    pub user: String,
    /// The bastion's session ID.
    pub session_id: String,
    /// The target the user asked for.
    pub target: String,
    /// The login on the target.
    pub login: String,
}

/// Answer to every `…/start`.
#[derive(Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CeremonyStarted {
    /// Public ID of the request (appears in the page URL).
    pub request_id: String,
    /// Secret that only the starter holds; [`WAIT`] and [`FINISH`] need it.
    pub poll_token: WireSecret,
    /// The page to open in a browser.
    pub url: String,
    /// Shown on the page and in the terminal: they must match.
    pub short_code: String,
    /// The request must be completed before this.
    pub expires_at: DateTime<Utc>,
    /// For `direct` requests: the W3C options (`{"publicKey": {…}}`) to hand to the
    /// authenticator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<serde_json::Value>,
}

impl std::fmt::Debug for CeremonyStarted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CeremonyStarted")
            .field("request_id", &self.request_id)
            .field("poll_token", &self.poll_token)
            .field("url", &self.url)
            .field("short_code", &self.short_code)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// `POST /v1/webauthn/wait` and `/v1/bastion/approvals/wait`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WaitRequest {
    /// From [`CeremonyStarted`].
    pub request_id: String,
    /// From [`CeremonyStarted`].
    pub poll_token: WireSecret,
}

/// `POST /v1/webauthn/finish`: the authenticator's answer, from the CLI.
#[derive(Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FinishRequest {
    /// From [`CeremonyStarted`].
    pub request_id: String,
    /// From [`CeremonyStarted`].
    pub poll_token: WireSecret,
    /// The W3C `PublicKeyCredential` JSON (`RegisterPublicKeyCredential` or
    /// `PublicKeyCredential` with base64url binary fields).
    pub credential: serde_json::Value,
}

impl std::fmt::Debug for FinishRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FinishRequest")
            .field("request_id", &self.request_id)
            .field("poll_token", &self.poll_token)
            .finish_non_exhaustive()
    }
}

/// What a finished (or still open) ceremony amounts to. Refusals (denied,
/// expired, a failed check) are API errors with stable codes instead.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "result", rename_all = "snake_case", deny_unknown_fields)]
pub enum CeremonyOutcome {
    /// Nobody has answered yet; poll again.
    Pending {
        /// The request ends then.
        expires_at: DateTime<Utc>,
    },
    /// A login was approved: the session, as `POST /v1/login` returns it.
    LoggedIn {
        /// The session.
        login: LoginResponse,
    },
    /// A key was enrolled.
    Registered {
        /// The user it belongs to.
        user: String,
        /// The new key.
        key: WebauthnKey,
        /// For an invite enrolment (the user's first factor): recovery codes, shown
        /// once.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        recovery_codes: Vec<WireSecret>,
    },
    /// A bastion's per-session request was approved.
    Approved {
        /// The `RA-AUTH` event that records the approval (goes into the
        /// per-session certificate as `mfa-event@rampart`).
        mfa_event: String,
        /// When the key was used.
        mfa_time: DateTime<Utc>,
        /// Whether the authenticator verified the user.
        user_verified: bool,
        /// The key's AAGUID.
        aaguid: String,
        /// Whether the CA trusts the key's model ([`EXT_MFA_ATTESTED`]).
        #[serde(default)]
        attested: bool,
    },
}

/// Query of `GET /v1/webauthn/keys`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct KeysQuery {
    /// Another user's keys (admin only); absent: the caller's own keys.
    pub user: Option<String>,
}

/// A registered security key, as the CA lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebauthnKey {
    /// Short public ID (used to remove it).
    pub id: String,
    /// The user's name for it.
    pub name: String,
    /// The WebAuthn credential ID, base64url.
    pub credential_id: String,
    /// Authenticator model (lower-case UUID; all zeros when not disclosed).
    pub aaguid: String,
    /// Attestation statement format (`packed`, `fido-u2f`, `none`, …).
    pub attestation_format: String,
    /// Whether the enrolment itself was user-verified.
    pub user_verified: bool,
    /// Whether the CA trusts the key's model now: its attestation verified
    /// against the CA's roots at enrolment, or its AAGUID is on the CA's
    /// allow-list. An unattested key is an `unattested-key` factor at best, never
    /// `phishing-resistant`.
    #[serde(default)]
    pub attested: bool,
    /// The credential may be synced to other devices (BE flag).
    pub backup_eligible: bool,
    /// The credential is currently backed up (BS flag).
    pub backup_state: bool,
    /// The last signature counter seen.
    pub sign_count: u32,
    /// When it was enrolled.
    pub created_at: DateTime<Utc>,
    /// When it last approved something.
    #[serde(default)]
    pub last_used_at: Option<DateTime<Utc>>,
    /// Set when the CA disabled the key (e.g. `sign_count_regressed`).
    #[serde(default)]
    pub disabled_reason: Option<String>,
}

/// `POST /v1/webauthn/keys/remove`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyRemoveRequest {
    /// Whose key (admins may name any user; others only themselves).
    pub user: String,
    /// [`WebauthnKey::id`].
    pub id: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted_in_debug() {
        let started = CeremonyStarted {
            request_id: "r1".into(),
            poll_token: "very-secret".into(),
            url: "https://localhost/webauthn/a/r1".into(),
            short_code: "ABCD-2345".into(),
            expires_at: Utc::now(),
            public_key: None,
        };
        assert!(!format!("{started:?}").contains("very-secret"));
        let wait = WaitRequest {
            request_id: "r1".into(),
            poll_token: "very-secret".into(),
        };
        assert!(!format!("{wait:?}").contains("very-secret"));
        let reg = RegisterStartRequest {
            invite: Some("inv-secret".into()),
            name: "k".into(),
            direct: false,
            replaces: None,
        };
        assert!(!format!("{reg:?}").contains("inv-secret"));
    }

    /// Before `WireSecret`, this outcome derived `Debug` over plain strings
    /// and printed the new recovery codes into any log that showed it.
    #[test]
    fn a_registration_outcome_hides_its_recovery_codes() {
        let outcome = CeremonyOutcome::Registered {
            user: "alice".into(),
            key: WebauthnKey {
                id: "k1".into(),
                name: "blue".into(),
                credential_id: "cred".into(),
                aaguid: "00000000-0000-0000-0000-000000000000".into(),
                attestation_format: "none".into(),
                user_verified: true,
                attested: false,
                backup_eligible: false,
                backup_state: false,
                sign_count: 0,
                created_at: Utc::now(),
                last_used_at: None,
                disabled_reason: None,
            },
            recovery_codes: vec!["abcd-efgh-jkmn-pqrs-tvwx".into()],
        };
        let shown = format!("{outcome:?} {outcome:#?}");
        assert!(shown.contains("alice"), "{shown}");
        assert!(!shown.contains("abcd-efgh"), "{shown}");
        // The wire still carries the codes: they are shown to their owner once.
        let wire = serde_json::to_string(&outcome).unwrap();
        assert!(wire.contains("abcd-efgh-jkmn-pqrs-tvwx"), "{wire}");
    }

    #[test]
    fn outcome_is_tagged() {
        let v = serde_json::to_value(CeremonyOutcome::Pending {
            expires_at: Utc::now(),
        })
        .unwrap();
        assert_eq!(v["result"], "pending");
        assert!(serde_json::from_str::<CeremonyOutcome>(r#"{"result":"bogus"}"#).is_err());
    }
}
