//! Wire types of the OpenID Connect login: the CLI starts a login at the CA, the
//! user authenticates at the provider in a browser, the provider redirects to the
//! CLI's loopback listener with a code, and the CLI hands `{state, code}` to the
//! CA, which redeems it (the CLI never holds the client secret).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{LoginResponse, WireSecret};

/// `POST` [`OidcStartRequest`] → [`OidcStartResponse`]: start an OIDC login.
pub const START: &str = "/v1/oidc/start";
/// `POST` [`OidcFinishRequest`] → [`OidcFinishResponse`]: finish an OIDC login
/// with the provider's code.
pub const FINISH: &str = "/v1/oidc/finish";

/// `POST /v1/oidc/start`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OidcStartRequest {
    /// Provider name from the CA's config.
    pub provider: String,
    /// The CLI's loopback listener, `http://127.0.0.1:PORT/callback`.
    pub redirect_uri: String,
    /// The Rampart user, if known: lets the CA ask up front for what the user's
    /// roles need (`acr_values`, `max_age`).
    #[serde(default)]
    pub user: Option<String>,
}

/// Answer to [`OidcStartRequest`].
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OidcStartResponse {
    /// Opaque, single-use; comes back from the provider with the code.
    pub state: WireSecret,
    /// Open this in a browser.
    pub authorize_url: String,
    /// The login must finish before this.
    pub expires_at: DateTime<Utc>,
}

/// `POST /v1/oidc/finish`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OidcFinishRequest {
    /// The `state` the provider sent back.
    pub state: WireSecret,
    /// The authorisation code.
    pub code: WireSecret,
    /// An invite (`rampart enroll --invite CODE --oidc PROVIDER`): if the
    /// provider account is linked to no Rampart user yet, redeeming the invite
    /// links it to the invite's user. Ignored, and not spent, when the account
    /// is already linked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invite: Option<WireSecret>,
}

/// Answer to [`OidcFinishRequest`].
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "result", rename_all = "snake_case", deny_unknown_fields)]
pub enum OidcFinishResponse {
    /// Logged in.
    LoggedIn {
        /// The session, as `POST /v1/login` returns it.
        login: LoginResponse,
    },
    /// The provider vouched for the user, but not strongly or freshly enough for
    /// the user's roles: authenticate again at `authorize_url` (which asks for
    /// `prompt=login`, `max_age=0` and the needed `acr_values`).
    StepUpRequired {
        /// `amr_missing`, `acr_mismatch` or `auth_time_stale`.
        code: String,
        /// Why, in one line.
        reason: String,
        /// The new login's state.
        state: WireSecret,
        /// Where to authenticate again.
        authorize_url: String,
    },
}

/// `POST` [`OidcPendingRequest`] → [`OidcPendingResponse`]: whether a started
/// login can still finish. The CLI asks while it waits for the browser, so a
/// provider that went away ends the wait.
pub const PENDING: &str = "/v1/oidc/pending";

/// `POST /v1/oidc/pending`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OidcPendingRequest {
    /// From [`OidcStartResponse`] (or a step-up).
    pub state: WireSecret,
}

/// Answer to [`OidcPendingRequest`] while the login can still finish; an error
/// (`oidc_provider_unavailable`, `oidc_state_unknown`, …) when it cannot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OidcPendingResponse {
    /// The login state expires then.
    pub expires_at: DateTime<Utc>,
}

/// `POST` [`OidcDeviceStartRequest`] → [`OidcDeviceStartResponse`]: start a
/// device authorisation (RFC 8628) at a provider.
pub const DEVICE_START: &str = "/v1/oidc/device/start";
/// `POST` [`OidcDevicePollRequest`] → [`OidcDevicePollResponse`]: poll a device
/// authorisation.
pub const DEVICE_POLL: &str = "/v1/oidc/device/poll";

/// `POST /v1/oidc/device/start`: for terminals without a browser.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OidcDeviceStartRequest {
    /// Provider name from the CA's config.
    pub provider: String,
}

/// Answer to [`OidcDeviceStartRequest`]: show the user the code and the URI.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OidcDeviceStartResponse {
    /// Opaque; poll with it.
    pub handle: WireSecret,
    /// The code to type at the provider.
    pub user_code: String,
    /// Where to type it.
    pub verification_uri: String,
    /// The same with the code filled in, if the provider offers it.
    #[serde(default)]
    pub verification_uri_complete: Option<String>,
    /// The code expires then.
    pub expires_at: DateTime<Utc>,
    /// Poll no more often than this.
    pub interval_seconds: u64,
}

/// `POST /v1/oidc/device/poll`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OidcDevicePollRequest {
    /// From [`OidcDeviceStartResponse`].
    pub handle: WireSecret,
    /// An invite, as in [`OidcFinishRequest::invite`]; looked at only by the
    /// poll that finds the login approved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invite: Option<WireSecret>,
}

/// Answer to [`OidcDevicePollRequest`]. The CA answers at once; poll again
/// after the interval [`OidcDeviceStartResponse`] gave.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "result", rename_all = "snake_case", deny_unknown_fields)]
pub enum OidcDevicePollResponse {
    /// The user has not approved the login yet.
    Pending,
    /// Logged in.
    LoggedIn {
        /// The session.
        login: LoginResponse,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_invite_is_optional_on_the_wire_and_redacted_in_debug() {
        // A client that knows nothing of invites still finishes a login.
        let plain: OidcFinishRequest =
            serde_json::from_str(r#"{"state":"s","code":"c"}"#).expect("no invite");
        assert!(plain.invite.is_none());
        assert_eq!(
            serde_json::to_string(&plain).expect("encode"),
            r#"{"state":"s","code":"c"}"#
        );
        let with: OidcFinishRequest =
            serde_json::from_str(r#"{"state":"s","code":"c","invite":"inv-secret"}"#)
                .expect("invite");
        assert_eq!(
            with.invite.as_ref().map(WireSecret::expose),
            Some("inv-secret")
        );
        let shown = format!("{with:?}");
        assert!(!shown.contains("inv-secret"), "{shown}");

        let poll: OidcDevicePollRequest =
            serde_json::from_str(r#"{"handle":"h","invite":"inv-secret"}"#).expect("poll");
        assert_eq!(
            poll.invite.as_ref().map(WireSecret::expose),
            Some("inv-secret")
        );
        assert!(!format!("{poll:?}").contains("inv-secret"));
        let plain: OidcDevicePollRequest =
            serde_json::from_str(r#"{"handle":"h"}"#).expect("poll without invite");
        assert!(plain.invite.is_none());
    }
}
