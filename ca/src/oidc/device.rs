//! The device authorisation grant (RFC 8628) for terminals without a browser:
//! the CA starts the grant at the provider and keeps the device code; the CLI
//! polls the CA with an opaque handle. What a grant must remember between
//! polls is a [`PendingDevice`], which the authority keeps in the store (sealed:
//! the device code is a bearer secret at the provider), so that any CA on the
//! database answers a poll.
//!
//! A poll costs the CA one token request at most and never waits for the user:
//! the CLI sleeps between polls, not a CA worker thread. The provider's polling
//! interval (and its `slow_down` answers) is kept per device code, and a poll
//! that comes sooner is answered "pending" without asking the provider, so a
//! client polling in a tight loop neither holds the CA's threads nor makes the
//! CA hammer the provider.

use rampart_api::ErrorCode;
use std::time::Duration;

use chrono::{DateTime, Utc};
use openidconnect::core::CoreDeviceAuthorizationResponse;
use openidconnect::{CsrfToken, Scope};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use zeroize::Zeroize;

use super::discovery::ProviderState;
use super::{IdpLogin, OidcFailure, RelyingParty, LOGIN_STATE_TTL};
use crate::error::CaError;

/// RFC 8628 §3.5: after `slow_down`, poll this much less often.
const SLOW_DOWN_STEP: Duration = Duration::from_secs(5);
/// The longest interval a provider may ask for; past it the code would expire
/// between polls.
const MAX_INTERVAL: Duration = Duration::from_secs(60);
/// The device grant's `grant_type` (RFC 8628 §3.4).
const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// A device authorisation the CA is waiting on. The device code is a secret:
/// wiped on drop, sealed in the store.
#[derive(Serialize, Deserialize)]
pub struct PendingDevice {
    /// The provider it was started at.
    pub provider: String,
    device_code: String,
    /// When the grant ends.
    pub expires_at: DateTime<Utc>,
    /// Time between token requests, as the provider last asked.
    interval: Duration,
    /// No token request before this; a poll that comes sooner is "pending".
    next_request_at: DateTime<Utc>,
}

impl Drop for PendingDevice {
    fn drop(&mut self) {
        self.device_code.zeroize();
    }
}

impl std::fmt::Debug for PendingDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingDevice")
            .field("provider", &self.provider)
            .field("expires_at", &self.expires_at)
            .field("next_request_at", &self.next_request_at)
            .finish_non_exhaustive()
    }
}

impl PendingDevice {
    /// Claim the next token request at `now`: `false` if the provider's
    /// interval has not passed yet (the poll is answered "pending" without
    /// asking). The caller stores the claim before it asks, so that polls
    /// racing on one handle, on any CA, make one request between them.
    pub fn claim_request(&mut self, now: DateTime<Utc>) -> bool {
        if now < self.next_request_at {
            return false;
        }
        self.next_request_at = now + chrono::Duration::from_std(self.interval).unwrap_or_default();
        true
    }

    /// The provider said `slow_down`: poll less often from `now` on.
    pub fn slow_down(&mut self, now: DateTime<Utc>) {
        self.interval = (self.interval + SLOW_DOWN_STEP).min(MAX_INTERVAL);
        self.next_request_at = now + chrono::Duration::from_std(self.interval).unwrap_or_default();
    }
}

/// What one poll's token request found.
#[derive(Debug)]
pub enum DevicePoll {
    /// The user has not answered yet.
    Pending,
    /// The same, and the provider asks to be polled less often.
    SlowDown,
    /// The grant is over (tokens, or a refusal): forget it, then read the
    /// outcome with [`RelyingParty::device_login`].
    Ended(DeviceEnd),
}

/// How a device grant ended at the provider.
#[derive(Debug)]
pub struct DeviceEnd(Result<Option<String>, OidcFailure>);

/// A device login just started: show the user `user_code` and the URI.
#[derive(Debug, Clone)]
pub struct DeviceStarted {
    /// Opaque handle the CLI polls with.
    pub handle: String,
    /// Code the user types at the provider.
    pub user_code: String,
    /// Where to type it.
    pub verification_uri: String,
    /// The URI with the code filled in, if the provider offers one.
    pub verification_uri_complete: Option<String>,
    /// When the device code expires.
    pub expires_at: DateTime<Utc>,
    /// Seconds between polls.
    pub interval: u64,
}

/// What the provider's token endpoint said to one device-code request.
#[derive(Debug, PartialEq, Eq)]
enum TokenAnswer {
    /// `authorization_pending`: the user has not answered yet.
    Pending,
    /// `slow_down`: pending, and poll less often.
    SlowDown,
    /// Tokens; the raw ID token if there was one.
    Tokens(Option<String>),
    /// Any other error code (`access_denied`, `expired_token`, …).
    Refused(String),
}

/// The token endpoint's JSON, success or error (RFC 6749 §5.1, §5.2).
#[derive(Deserialize)]
struct TokenBody {
    #[serde(default)]
    id_token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

/// Read one token-endpoint answer. Errors come with 400 (or 401) and an
/// `error` code; anything else unreadable is the provider misbehaving.
fn token_answer(status: u16, body: &[u8]) -> Result<TokenAnswer, OidcFailure> {
    let parsed: TokenBody = serde_json::from_slice(body)
        .map_err(|e| OidcFailure::Malformed(format!("token response (HTTP {status}): {e}")))?;
    match (parsed.error.as_deref(), status) {
        (Some("authorization_pending"), _) => Ok(TokenAnswer::Pending),
        (Some("slow_down"), _) => Ok(TokenAnswer::SlowDown),
        (Some(code), _) => Ok(TokenAnswer::Refused(code.chars().take(64).collect())),
        (None, 200..=299) if parsed.access_token.is_some() || parsed.id_token.is_some() => {
            Ok(TokenAnswer::Tokens(parsed.id_token))
        }
        (None, _) => Err(OidcFailure::ProviderUnavailable(format!(
            "token endpoint answered HTTP {status} without an error code"
        ))),
    }
}

/// Form-encode one `application/x-www-form-urlencoded` value, as RFC 6749
/// §2.3.1 asks for the client ID and secret inside HTTP Basic too.
fn form_encode(s: &str) -> String {
    openidconnect::url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

impl RelyingParty {
    /// Start a device authorisation (RFC 8628 §3.1) at `provider`.
    pub fn device_start(
        &self,
        provider: &str,
        now: DateTime<Utc>,
    ) -> Result<Result<(DeviceStarted, PendingDevice), OidcFailure>, CaError> {
        let p = match self.provider(provider) {
            Ok(p) => p,
            Err(f) => return Ok(Err(f)),
        };
        let m = match self.metadata(p, now) {
            Ok(m) => m,
            Err(f) => return Ok(Err(f)),
        };
        let Some(url) = m
            .additional_metadata()
            .device_authorization_endpoint
            .clone()
        else {
            return Err(CaError::bad_request(
                ErrorCode::OidcDeviceUnsupported,
                "this provider does not offer the device authorisation grant",
            ));
        };
        let client = Self::client(p, m).set_device_authorization_url(url);
        // max_age makes the provider report auth_time (OIDC Core §3.1.2.1),
        // which freshness is measured from.
        let mut req = client
            .exchange_device_code()
            .add_extra_param("max_age", "86400");
        for s in &p.settings.scopes {
            req = req.add_scope(Scope::new(s.clone()));
        }
        let details: CoreDeviceAuthorizationResponse = match req.request(&self.http) {
            Ok(d) => d,
            Err(e) => {
                return Ok(Err(OidcFailure::ProviderUnavailable(format!(
                    "device authorisation: {e}"
                ))))
            }
        };
        let lifetime = details.expires_in().min(LOGIN_STATE_TTL);
        let expires_at = now + chrono::Duration::from_std(lifetime).unwrap_or_default();
        let interval = details
            .interval()
            .clamp(Duration::from_secs(1), MAX_INTERVAL);
        let handle = CsrfToken::new_random().secret().clone();
        let started = DeviceStarted {
            handle: handle.clone(),
            user_code: details.user_code().secret().clone(),
            verification_uri: details.verification_uri().to_string(),
            verification_uri_complete: details
                .verification_uri_complete()
                .map(|u| u.secret().clone()),
            expires_at,
            interval: interval.as_secs(),
        };
        let pending = PendingDevice {
            provider: p.settings.name.clone(),
            device_code: details.device_code().secret().clone(),
            expires_at,
            interval,
            // The user needs a moment to type the code anyway.
            next_request_at: now + chrono::Duration::from_std(interval).unwrap_or_default(),
        };
        Ok(Ok((started, pending)))
    }

    /// One token request for a device grant whose request slot the caller
    /// claimed ([`PendingDevice::claim_request`]). A failure before the
    /// provider answered (its discovery is down) leaves the grant to poll
    /// again.
    pub fn device_poll(
        &self,
        d: &PendingDevice,
        now: DateTime<Utc>,
    ) -> Result<DevicePoll, OidcFailure> {
        if d.expires_at <= now {
            return Ok(DevicePoll::Ended(DeviceEnd(Err(OidcFailure::StateExpired))));
        }
        let p = self.provider(&d.provider)?;
        let m = self.metadata(p, now)?;
        let Some(token_url) = m.token_endpoint().map(|u| u.url().clone()) else {
            return Err(OidcFailure::ProviderUnavailable(
                "the provider publishes no token endpoint".into(),
            ));
        };
        let answer = self.device_token_request(p, token_url, &d.device_code)?;
        crate::metrics::provider_request(&p.settings.name, Ok(()));
        Ok(match answer {
            TokenAnswer::Pending => DevicePoll::Pending,
            TokenAnswer::SlowDown => DevicePoll::SlowDown,
            TokenAnswer::Refused(code) => {
                DevicePoll::Ended(DeviceEnd(Err(if code == "expired_token" {
                    OidcFailure::StateExpired
                } else {
                    OidcFailure::CodeRejected(code)
                })))
            }
            TokenAnswer::Tokens(raw) => DevicePoll::Ended(DeviceEnd(Ok(raw))),
        })
    }

    /// The login a device grant ended with: its ID token checked.
    pub fn device_login(
        &self,
        d: &PendingDevice,
        end: DeviceEnd,
        now: DateTime<Utc>,
    ) -> Result<IdpLogin, OidcFailure> {
        let raw = end.0?.ok_or(OidcFailure::NoIdToken)?;
        let p = self.provider(&d.provider)?;
        let m = self.metadata(p, now)?;
        let jwks = m.jwks().clone();
        let expect = p.expectations(None);
        self.validate_with_refetch(p, &raw, &expect, &jwks, now)
            .map(|claims| IdpLogin {
                provider: p.settings.name.clone(),
                claims,
                redirect_uri: String::new(),
            })
    }

    /// One device-access-token request (RFC 8628 §3.4), authenticated as the
    /// CA's client: HTTP Basic with a secret, else `client_id` in the form.
    fn device_token_request(
        &self,
        p: &ProviderState,
        token_url: reqwest::Url,
        device_code: &str,
    ) -> Result<TokenAnswer, OidcFailure> {
        let mut form = vec![("grant_type", DEVICE_GRANT), ("device_code", device_code)];
        let mut req = self
            .http
            .post(token_url)
            .header(reqwest::header::ACCEPT, "application/json");
        match &p.settings.client_secret {
            Some(secret) => {
                req = req.basic_auth(
                    form_encode(&p.settings.client_id),
                    Some(form_encode(secret.expose_secret())),
                );
            }
            None => form.push(("client_id", p.settings.client_id.as_str())),
        }
        let resp = req.form(&form).send().map_err(|e| {
            crate::metrics::provider_request(&p.settings.name, Err("oidc_provider_unavailable"));
            OidcFailure::ProviderUnavailable(format!("token endpoint: {e}"))
        })?;
        let status = resp.status().as_u16();
        let body = resp
            .bytes()
            .map_err(|e| OidcFailure::ProviderUnavailable(format!("token endpoint: {e}")))?;
        token_answer(status, &body)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn token_answers_are_read_by_their_error_code() {
        let pending = br#"{"error":"authorization_pending"}"#;
        assert_eq!(token_answer(400, pending).unwrap(), TokenAnswer::Pending);
        let slow = br#"{"error":"slow_down","error_description":"x"}"#;
        assert_eq!(token_answer(400, slow).unwrap(), TokenAnswer::SlowDown);
        let denied = br#"{"error":"access_denied"}"#;
        assert_eq!(
            token_answer(400, denied).unwrap(),
            TokenAnswer::Refused("access_denied".into())
        );
        let ok = br#"{"access_token":"a","token_type":"Bearer","id_token":"h.p.s"}"#;
        assert_eq!(
            token_answer(200, ok).unwrap(),
            TokenAnswer::Tokens(Some("h.p.s".into()))
        );
    }

    #[test]
    fn a_token_endpoint_that_says_nothing_useful_is_an_error() {
        assert!(token_answer(200, b"{}").is_err());
        assert!(token_answer(500, b"<html>").is_err());
        assert!(token_answer(502, b"{}").is_err());
        // An attacker-sized error code is cut, not carried whole into the log.
        let long = format!(r#"{{"error":"{}"}}"#, "x".repeat(10_000));
        match token_answer(400, long.as_bytes()).unwrap() {
            TokenAnswer::Refused(code) => assert_eq!(code.len(), 64),
            other => panic!("{other:?}"),
        }
    }
}
