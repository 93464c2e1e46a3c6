//! OpenID Connect step-up: the CA as a relying party of one or more identity
//! providers. This module owns provider settings, discovery and JWKS caching,
//! what a login in progress must remember (state, nonce, PKCE verifier; a
//! device grant's code and polling slot), the authorisation URL, the code
//! redemption and the ID-token checks. It does not keep logins in progress,
//! open sessions, write audit events or decide which roles need what: the
//! authority does that (`authority::oidc_login`, `authority::oidc_state`),
//! from what [`IdpLogin`] reports; logins in progress live in the store, so
//! that any CA on a shared database can finish one.
//!
//! Crate choice: `openidconnect` 4 does discovery, JWKS, the authorisation-code
//! and PKCE exchange and the ID-token validation steps of OpenID Connect Core
//! §3.1.3.7 (signature, `iss`, `aud`, `exp`, `iat`, `nonce`). We add what it
//! leaves to the client: an algorithm allow-list (RS256, ES256, EdDSA: never
//! `none`, never HMAC, whose key would be the client secret), `azp`, bounded
//! clock skew through its time hooks, `auth_time` being present, one rate-limited
//! JWKS refetch on an unknown `kid` (key rotation), and the claim mapping.
//! No JOSE is written here: the only thing we read by hand is the token header's
//! `alg`, to name a `none` token in the audit log before the crate refuses it.
//!
//! Network I/O is blocking (`reqwest::blocking`), because the authority runs on
//! blocking threads; redirects are not followed (a provider's endpoints come from
//! its own discovery document) and every call has a timeout.
//!
//! # Where each part lives
//!
//! - `settings`: `[oidc]` in the config and its validation.
//! - `discovery`: each provider's discovery document, JWKS and reachability.
//! - `code_flow`: the authorisation-code flow with PKCE and its pending logins.
//! - `device`: the device authorisation grant (RFC 8628).
//! - `id_token`: the ID-token checks and the claim mapping (pure).
//! - `failure`: why a login is refused, as a code and a message.
//!
//! This file holds the [`RelyingParty`] they share and the limits more than
//! one of them applies.

use std::time::Duration;

use crate::error::CaError;

mod code_flow;
mod device;
mod discovery;
mod failure;
mod id_token;
mod settings;

pub use code_flow::{check_redirect_uri, AuthParams, Pending, Started};
pub use device::{DeviceEnd, DevicePoll, DeviceStarted, PendingDevice};
pub use discovery::{
    DeviceMetadata, DISCOVERY_TTL, JWKS_REFETCH_INTERVAL, PROBE_FRESH, PROBE_TIMEOUT,
};
pub use failure::OidcFailure;
pub use id_token::{validate_id_token, Expectations, IdpClaims, ALLOWED_ALGS, MAX_ID_TOKEN_BYTES};
pub use settings::{validate, ProviderSettings, RawOidc, RawProvider};

use discovery::ProviderState;

/// How long a started login may wait for its code.
pub const LOGIN_STATE_TTL: Duration = Duration::from_secs(10 * 60);
/// Most logins waiting for their code (and, apart, device grants) at once;
/// more are refused, not queued.
pub const MAX_PENDING: u32 = 10_000;
/// Longest authorisation code / state accepted from a client.
pub const MAX_CODE_BYTES: usize = 2048;
/// Timeout of every call to a provider.
pub const PROVIDER_TIMEOUT: Duration = Duration::from_secs(10);

/// A login the provider vouched for.
#[derive(Debug, Clone)]
pub struct IdpLogin {
    /// Provider name.
    pub provider: String,
    /// What the token said.
    pub claims: IdpClaims,
    /// The redirect URI of this login (a step-up reuses it).
    pub redirect_uri: String,
}

/// The CA's OIDC relying party.
pub struct RelyingParty {
    providers: Vec<ProviderState>,
    http: reqwest::blocking::Client,
}

impl std::fmt::Debug for RelyingParty {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelyingParty")
            .field(
                "providers",
                &self
                    .providers
                    .iter()
                    .map(|p| &p.settings.name)
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl RelyingParty {
    /// A relying party for these providers. Nothing is fetched yet: discovery
    /// happens on first use, so a provider that is down does not stop the CA.
    pub fn new(providers: Vec<ProviderSettings>) -> Result<Self, CaError> {
        let http = reqwest::blocking::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(PROVIDER_TIMEOUT)
            .connect_timeout(PROVIDER_TIMEOUT)
            .tls_built_in_root_certs(true)
            .build()
            .map_err(|e| CaError::Internal(format!("OIDC HTTP client: {e}")))?;
        Ok(RelyingParty {
            providers: providers.into_iter().map(ProviderState::new).collect(),
            http,
        })
    }

    /// Configured provider names.
    pub fn provider_names(&self) -> Vec<String> {
        self.providers
            .iter()
            .map(|p| p.settings.name.clone())
            .collect()
    }

    fn provider(&self, name: &str) -> Result<&ProviderState, OidcFailure> {
        self.providers
            .iter()
            .find(|p| p.settings.name == name)
            .ok_or(OidcFailure::UnknownProvider)
    }

    /// Settings of one provider.
    pub fn settings(&self, name: &str) -> Option<&ProviderSettings> {
        self.provider(name).ok().map(|p| &p.settings)
    }
}

#[cfg(test)]
mod tests;
