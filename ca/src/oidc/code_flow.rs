//! The authorisation-code flow with PKCE (OpenID Connect Core §3.1, RFC 7636)
//! for a CLI with a browser: [`RelyingParty::start`] makes the state, nonce
//! and PKCE verifier, keeps them here (single use, [`LOGIN_STATE_TTL`]) and
//! builds the authorisation URL; [`RelyingParty::finish`] consumes the state,
//! redeems the code at the token endpoint and has the ID token checked.
//!
//! **Owns:** the pending logins, the loopback redirect URI rule (RFC 8252
//! §7.3) and what the authorisation request asks of the provider
//! ([`AuthParams`]).

use std::time::Duration;

use chrono::{DateTime, Utc};
use openidconnect::core::{CoreAuthPrompt, CoreAuthenticationFlow};
use openidconnect::{
    AuthenticationContextClass, AuthorizationCode, CsrfToken, Nonce, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, Scope, TokenResponse,
};
use zeroize::Zeroizing;

use super::discovery::{ProviderState, PROBE_FRESH};
use super::{
    digest, IdpLogin, OidcFailure, RelyingParty, LOGIN_STATE_TTL, MAX_CODE_BYTES, MAX_PENDING,
};
use crate::error::CaError;

/// What the authorisation request asks of the provider beyond a plain login.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthParams {
    /// `acr_values`.
    pub acr_values: Vec<String>,
    /// `max_age` in seconds (`Some(0)` forces a fresh authentication).
    pub max_age: Option<Duration>,
    /// `prompt=login`.
    pub prompt_login: bool,
}

/// A login just started: send the user to `authorize_url`.
#[derive(Debug, Clone)]
pub struct Started {
    /// Opaque state, single use.
    pub state: String,
    /// The provider's authorisation URL with every parameter.
    pub authorize_url: String,
    /// When the state expires.
    pub expires_at: DateTime<Utc>,
}

/// A started login, waiting for its code.
pub(super) struct Pending {
    provider: String,
    nonce: Zeroizing<String>,
    pkce_verifier: Zeroizing<String>,
    redirect_uri: String,
    expires_at: DateTime<Utc>,
}

/// The redirect URI must be a loopback `http://` address (RFC 8252 §7.3): the
/// code goes to the CLI on the user's own machine and nowhere else.
pub fn check_redirect_uri(uri: &str) -> Result<(), CaError> {
    let bad = || {
        CaError::bad_request(
            "oidc_redirect_invalid",
            "redirect_uri must be http://127.0.0.1:PORT/… or http://[::1]:PORT/…",
        )
    };
    if uri.len() > 512 {
        return Err(bad());
    }
    let url = reqwest::Url::parse(uri).map_err(|_| bad())?;
    let ip_loopback = matches!(url.host(), Some(openidconnect::url::Host::Ipv4(a)) if a.is_loopback())
        || matches!(url.host(), Some(openidconnect::url::Host::Ipv6(a)) if a.is_loopback());
    if url.scheme() != "http"
        || !ip_loopback
        || url.port().is_none()
        || !url.username().is_empty()
        || url.password().is_some()
        || url.fragment().is_some()
    {
        return Err(bad());
    }
    Ok(())
}

impl RelyingParty {
    /// Whether a started login (`state`, not consumed) can still finish: it is
    /// known, not expired, and its provider answers. Its expiry if so.
    pub fn pending_check(
        &self,
        state: &str,
        now: DateTime<Utc>,
    ) -> Result<Result<DateTime<Utc>, OidcFailure>, CaError> {
        if state.is_empty() || state.len() > MAX_CODE_BYTES {
            return Err(CaError::bad_request("invalid_request", "bad state"));
        }
        let found = self
            .pending
            .lock()
            .map_err(|_| CaError::Internal("OIDC state lock poisoned".into()))?
            .get(&digest(state))
            .map(|p| (p.provider.clone(), p.expires_at));
        let Some((provider, expires_at)) = found else {
            return Ok(Err(OidcFailure::StateUnknown));
        };
        if expires_at <= now {
            return Ok(Err(OidcFailure::StateExpired));
        }
        let p = match self.provider(&provider) {
            Ok(p) => p,
            Err(f) => return Ok(Err(f)),
        };
        Ok(self
            .metadata(p, now)
            .and_then(|m| self.probe(p, &m, now, PROBE_FRESH))
            .map(|()| expires_at))
    }

    /// Start a login: make state, nonce and PKCE verifier (kept here, single
    /// use, [`LOGIN_STATE_TTL`]) and return `a [`Started`]`.
    pub fn start(
        &self,
        provider: &str,
        redirect_uri: &str,
        params: &AuthParams,
        now: DateTime<Utc>,
    ) -> Result<Result<Started, OidcFailure>, CaError> {
        check_redirect_uri(redirect_uri)?;
        let p = match self.provider(provider) {
            Ok(p) => p,
            Err(f) => return Ok(Err(f)),
        };
        let m = match self.metadata(p, now) {
            Ok(m) => m,
            Err(f) => return Ok(Err(f)),
        };
        // A user is about to be sent to the provider: ask it now (a start
        // costs the caller's start budget, so this is no amplifier).
        if let Err(f) = self.probe(p, &m, now, Duration::ZERO) {
            return Ok(Err(f));
        }
        let redirect = RedirectUrl::new(redirect_uri.to_owned())
            .map_err(|_| CaError::bad_request("oidc_redirect_invalid", "bad redirect_uri"))?;
        let client = Self::client(p, m);
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut req = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .set_redirect_uri(std::borrow::Cow::Owned(redirect))
            .set_pkce_challenge(challenge);
        for s in &p.settings.scopes {
            req = req.add_scope(Scope::new(s.clone()));
        }
        for a in &params.acr_values {
            req = req.add_auth_context_value(AuthenticationContextClass::new(a.clone()));
        }
        // Always ask for max_age so that providers include auth_time (OIDC Core
        // §3.1.2.1); the policy decides what age is acceptable.
        req = req.set_max_age(params.max_age.unwrap_or(Duration::from_secs(86_400)));
        if params.prompt_login {
            req = req.add_prompt(CoreAuthPrompt::Login);
        }
        let (url, state, nonce) = req.url();
        let expires_at = now + chrono::Duration::from_std(LOGIN_STATE_TTL).unwrap_or_default();
        self.keep_pending(
            state.secret(),
            Pending {
                provider: p.settings.name.clone(),
                nonce: Zeroizing::new(nonce.secret().clone()),
                pkce_verifier: Zeroizing::new(verifier.secret().clone()),
                redirect_uri: redirect_uri.to_owned(),
                expires_at,
            },
            now,
        )?;
        Ok(Ok(Started {
            state: state.secret().clone(),
            authorize_url: url.to_string(),
            expires_at,
        }))
    }

    /// Keep a started login under its state until [`RelyingParty::finish`];
    /// at [`MAX_PENDING`], expired ones are dropped first, and if none has
    /// expired the login is refused rather than queued.
    fn keep_pending(&self, state: &str, login: Pending, now: DateTime<Utc>) -> Result<(), CaError> {
        let mut pending = self
            .pending
            .lock()
            .map_err(|_| CaError::Internal("OIDC state lock poisoned".into()))?;
        if pending.len() >= MAX_PENDING {
            pending.retain(|_, v| v.expires_at > now);
            if pending.len() >= MAX_PENDING {
                return Err(CaError::RateLimited {
                    code: "oidc_busy",
                    message: "too many OIDC logins in progress; try again shortly".into(),
                    retry_after_secs: 30,
                });
            }
        }
        pending.insert(digest(state), login);
        Ok(())
    }

    /// Which provider a pending state belongs to, without consuming it.
    pub fn pending_provider(&self, state: &str) -> Option<String> {
        self.pending
            .lock()
            .ok()?
            .get(&digest(state))
            .map(|p| p.provider.clone())
    }

    /// Finish a login: consume the state, redeem the code (with the client
    /// secret and PKCE verifier), validate the ID token.
    pub fn finish(
        &self,
        state: &str,
        code: &str,
        now: DateTime<Utc>,
    ) -> Result<Result<IdpLogin, OidcFailure>, CaError> {
        if state.is_empty()
            || state.len() > MAX_CODE_BYTES
            || code.is_empty()
            || code.len() > MAX_CODE_BYTES
        {
            return Err(CaError::bad_request(
                "invalid_request",
                "state and code must be 1-2048 characters",
            ));
        }
        // Single use: removed before anything else, whatever happens next.
        let pending = self
            .pending
            .lock()
            .map_err(|_| CaError::Internal("OIDC state lock poisoned".into()))?
            .remove(&digest(state));
        let Some(pending) = pending else {
            return Ok(Err(OidcFailure::StateUnknown));
        };
        if pending.expires_at <= now {
            return Ok(Err(OidcFailure::StateExpired));
        }
        let p = match self.provider(&pending.provider) {
            Ok(p) => p,
            Err(f) => return Ok(Err(f)),
        };
        Ok(self.redeem(p, &pending, code, now))
    }

    fn redeem(
        &self,
        p: &ProviderState,
        pending: &Pending,
        code: &str,
        now: DateTime<Utc>,
    ) -> Result<IdpLogin, OidcFailure> {
        let m = self.metadata(p, now)?;
        let jwks = m.jwks().clone();
        let client = Self::client(p, m);
        let redirect = RedirectUrl::new(pending.redirect_uri.clone())
            .map_err(|e| OidcFailure::Malformed(e.to_string()))?;
        let resp = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|e| OidcFailure::ProviderUnavailable(format!("no token endpoint: {e}")))?
            .set_pkce_verifier(PkceCodeVerifier::new(pending.pkce_verifier.to_string()))
            .set_redirect_uri(std::borrow::Cow::Owned(redirect))
            .request(&self.http)
            .map_err(|e| match e {
                openidconnect::RequestTokenError::ServerResponse(r) => {
                    OidcFailure::CodeRejected(r.error().as_ref().to_owned())
                }
                openidconnect::RequestTokenError::Parse(e, _) => {
                    OidcFailure::Malformed(format!("token response: {e}"))
                }
                other => OidcFailure::ProviderUnavailable(format!("token endpoint: {other}")),
            })?;
        let raw = resp.id_token().ok_or(OidcFailure::NoIdToken)?.to_string();
        let expect = p.expectations(Some(pending.nonce.as_str()));
        let claims = self.validate_with_refetch(p, &raw, &expect, &jwks, now)?;
        Ok(IdpLogin {
            provider: p.settings.name.clone(),
            claims,
            redirect_uri: pending.redirect_uri.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap()
    }

    #[test]
    fn redirect_uris_must_be_loopback_http_with_a_port() {
        for ok in ["http://127.0.0.1:4000/callback", "http://[::1]:4000/cb"] {
            assert!(check_redirect_uri(ok).is_ok(), "{ok}");
        }
        for bad in [
            "https://127.0.0.1:4000/cb",
            "http://localhost:4000/cb",
            "http://evil.test:4000/cb",
            "http://127.0.0.1/cb",
            "http://u:p@127.0.0.1:4000/cb",
            "http://127.0.0.1:4000/cb#frag",
            "not a url",
        ] {
            assert!(check_redirect_uri(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn login_state_is_single_use_and_unknown_state_is_refused() {
        let rp = RelyingParty::new(vec![]).unwrap();
        let got = rp.finish("nope", "code", now()).unwrap();
        assert_eq!(got.unwrap_err(), OidcFailure::StateUnknown);
        let err = rp.finish("", "code", now()).unwrap_err();
        assert_eq!(err.code(), "invalid_request");
    }
}
