//! The authorisation-code flow with PKCE (OpenID Connect Core §3.1, RFC 7636)
//! for a CLI with a browser: [`RelyingParty::start`] makes the state, nonce
//! and PKCE verifier and builds the authorisation URL; [`RelyingParty::finish`]
//! redeems the code of a login it started and has the ID token checked.
//!
//! **Owns:** what a started login must remember ([`Pending`]), the loopback
//! redirect URI rule (RFC 8252 §7.3) and what the authorisation request asks
//! of the provider ([`AuthParams`]). **Does not** keep the started logins: the
//! authority keeps them in the store, sealed, under the digest of their
//! state, so that any CA on the database can finish one (`authority::oidc_state`).

use rampart_api::ErrorCode;
use std::time::Duration;

use chrono::{DateTime, Utc};
use openidconnect::core::{CoreAuthPrompt, CoreAuthenticationFlow};
use openidconnect::{
    AuthenticationContextClass, AuthorizationCode, CsrfToken, Nonce, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, Scope, TokenResponse,
};
use serde::{Deserialize, Serialize};
use zeroize::Zeroize;

use super::discovery::{ProviderState, PROBE_FRESH};
use super::{IdpLogin, OidcFailure, RelyingParty, LOGIN_STATE_TTL};
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

/// A started login, waiting for its code: what [`RelyingParty::finish`]
/// needs, kept by the authority under the digest of the state. The nonce and
/// the PKCE verifier are secrets: wiped on drop, sealed in the store.
#[derive(Serialize, Deserialize)]
pub struct Pending {
    /// The provider it was started at.
    pub provider: String,
    nonce: String,
    pkce_verifier: String,
    redirect_uri: String,
    /// When the state stops being accepted.
    pub expires_at: DateTime<Utc>,
}

impl Drop for Pending {
    fn drop(&mut self) {
        self.nonce.zeroize();
        self.pkce_verifier.zeroize();
    }
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending")
            .field("provider", &self.provider)
            .field("redirect_uri", &self.redirect_uri)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// The redirect URI must be a loopback `http://` address (RFC 8252 §7.3): the
/// code goes to the CLI on the user's own machine and nowhere else.
pub fn check_redirect_uri(uri: &str) -> Result<(), CaError> {
    let bad = || {
        CaError::bad_request(
            ErrorCode::OidcRedirectInvalid,
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
    /// Whether a started login can still finish: not expired, and its
    /// provider answers. Its expiry if so.
    pub fn pending_check(
        &self,
        pending: &Pending,
        now: DateTime<Utc>,
    ) -> Result<DateTime<Utc>, OidcFailure> {
        if pending.expires_at <= now {
            return Err(OidcFailure::StateExpired);
        }
        let p = self.provider(&pending.provider)?;
        self.metadata(p, now)
            .and_then(|m| self.probe(p, &m, now, PROBE_FRESH))
            .map(|()| pending.expires_at)
    }

    /// Start a login: make state, nonce and PKCE verifier and return the
    /// [`Started`] login for the client and the [`Pending`] one to keep (single
    /// use, [`LOGIN_STATE_TTL`]).
    pub fn start(
        &self,
        provider: &str,
        redirect_uri: &str,
        params: &AuthParams,
        now: DateTime<Utc>,
    ) -> Result<Result<(Started, Pending), OidcFailure>, CaError> {
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
        let redirect = RedirectUrl::new(redirect_uri.to_owned()).map_err(|_| {
            CaError::bad_request(ErrorCode::OidcRedirectInvalid, "bad redirect_uri")
        })?;
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
        let pending = Pending {
            provider: p.settings.name.clone(),
            nonce: nonce.secret().clone(),
            pkce_verifier: verifier.secret().clone(),
            redirect_uri: redirect_uri.to_owned(),
            expires_at,
        };
        Ok(Ok((
            Started {
                state: state.secret().clone(),
                authorize_url: url.to_string(),
                expires_at,
            },
            pending,
        )))
    }

    /// Finish a login the authority has taken from the store (single use:
    /// it is gone there whatever happens here): redeem the code (with the
    /// client secret and PKCE verifier), validate the ID token.
    pub fn finish(
        &self,
        pending: &Pending,
        code: &str,
        now: DateTime<Utc>,
    ) -> Result<IdpLogin, OidcFailure> {
        if pending.expires_at <= now {
            return Err(OidcFailure::StateExpired);
        }
        let p = self.provider(&pending.provider)?;
        self.redeem(p, pending, code, now)
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
            .set_pkce_verifier(PkceCodeVerifier::new(pending.pkce_verifier.clone()))
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
    fn a_pending_login_says_nothing_secret_and_expires() {
        let rp = RelyingParty::new(vec![]).unwrap();
        let ending = |expires_at| Pending {
            provider: "gone".into(),
            nonce: "the-nonce".into(),
            pkce_verifier: "the-verifier".into(),
            redirect_uri: "http://127.0.0.1:4000/cb".into(),
            expires_at,
        };
        let pending = ending(now());
        let shown = format!("{pending:?}");
        assert!(
            !shown.contains("the-nonce") && !shown.contains("the-verifier"),
            "{shown}"
        );
        assert_eq!(
            rp.finish(&pending, "code", now()).unwrap_err(),
            OidcFailure::StateExpired
        );
        assert_eq!(
            rp.pending_check(&pending, now()).unwrap_err(),
            OidcFailure::StateExpired
        );
        let live = ending(now() + chrono::Duration::minutes(1));
        assert_eq!(
            rp.finish(&live, "code", now()).unwrap_err(),
            OidcFailure::UnknownProvider
        );
    }
}
