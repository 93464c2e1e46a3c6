//! What the CA knows of each provider and how it keeps that fresh: the
//! discovery document (cached [`DISCOVERY_TTL`], with the JWKS it names), a
//! rate-limited JWKS refetch when a token names an unknown `kid` (key
//! rotation), a cheap reachability probe before a user is sent to the
//! provider, and the `openidconnect` client built from that metadata.
//!
//! **Owns:** [`ProviderState`] and every call to a provider's discovery, JWKS
//! and authorisation endpoints. The token endpoint is called by the flows
//! (`code_flow`, `device`).

use std::sync::{Mutex, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use openidconnect::core::{
    CoreAuthDisplay, CoreClaimName, CoreClaimType, CoreClient, CoreClientAuthMethod, CoreGrantType,
    CoreJsonWebKey, CoreJsonWebKeySet, CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm, CoreResponseMode, CoreResponseType, CoreSubjectIdentifierType,
};
use openidconnect::{ClientId, ClientSecret, IssuerUrl};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};

use super::failure::unavailable;
use super::{
    validate_id_token, Expectations, IdpClaims, OidcFailure, ProviderSettings, RelyingParty,
};

/// An unknown `kid` refetches the JWKS at most this often per provider, so a
/// stream of forged tokens cannot make the CA hammer the provider.
pub const JWKS_REFETCH_INTERVAL: Duration = Duration::from_secs(30);
/// Provider metadata is fetched again after this long.
pub const DISCOVERY_TTL: Duration = Duration::from_secs(3600);
/// How long a reachability probe may take: a user waits on it.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(3);
/// While a CLI waits for the browser, a provider that answered this recently
/// is not probed again.
pub const PROBE_FRESH: Duration = Duration::from_secs(5);

/// Discovery's `device_authorization_endpoint` (RFC 8628 §4), which the core
/// metadata type does not carry.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct DeviceMetadata {
    #[serde(default)]
    pub(super) device_authorization_endpoint: Option<openidconnect::DeviceAuthorizationUrl>,
}
impl openidconnect::AdditionalProviderMetadata for DeviceMetadata {}

/// Provider metadata with the device endpoint.
pub(super) type Metadata = openidconnect::ProviderMetadata<
    DeviceMetadata,
    CoreAuthDisplay,
    CoreClientAuthMethod,
    CoreClaimName,
    CoreClaimType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    CoreJsonWebKey,
    CoreResponseMode,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;

/// One configured provider: its settings and what the CA caches of it.
pub(super) struct ProviderState {
    pub(super) settings: ProviderSettings,
    metadata: RwLock<Option<(Metadata, DateTime<Utc>)>>,
    last_jwks_refetch: Mutex<Option<DateTime<Utc>>>,
    /// When the provider last answered anything (discovery or a probe).
    last_answered: Mutex<Option<DateTime<Utc>>>,
}

impl ProviderState {
    /// A provider not yet discovered: nothing is fetched until first use.
    pub(super) fn new(settings: ProviderSettings) -> Self {
        ProviderState {
            settings,
            metadata: RwLock::new(None),
            last_jwks_refetch: Mutex::new(None),
            last_answered: Mutex::new(None),
        }
    }

    /// What this provider's ID tokens must say; `nonce` is the login's, or
    /// `None` for the device grant (its token comes straight from the token
    /// endpoint).
    pub(super) fn expectations<'a>(&'a self, nonce: Option<&'a str>) -> Expectations<'a> {
        Expectations {
            issuer: &self.settings.issuer,
            client_id: &self.settings.client_id,
            nonce,
            skew: self.settings.clock_skew,
            username_claim: &self.settings.username_claim,
            groups_claim: &self.settings.groups_claim,
        }
    }
}

impl RelyingParty {
    /// The provider's discovery document (and JWKS), from the cache while it is
    /// younger than [`DISCOVERY_TTL`].
    pub(super) fn metadata(
        &self,
        p: &ProviderState,
        now: DateTime<Utc>,
    ) -> Result<Metadata, OidcFailure> {
        if let Ok(guard) = p.metadata.read() {
            if let Some((m, at)) = guard.as_ref() {
                if now - *at < chrono::Duration::from_std(DISCOVERY_TTL).unwrap_or_default() {
                    return Ok(m.clone());
                }
            }
        }
        let issuer = IssuerUrl::new(p.settings.issuer.clone())
            .map_err(|e| OidcFailure::ProviderUnavailable(format!("issuer URL: {e}")))?;
        // discover() also fetches the JWKS and checks the document's issuer.
        let m = Metadata::discover(&issuer, &self.http).map_err(unavailable("discovery"));
        crate::metrics::provider_request(
            &p.settings.name,
            m.as_ref().map(|_| ()).map_err(|f| f.code().as_str()),
        );
        let m = m?;
        if let Ok(mut guard) = p.metadata.write() {
            *guard = Some((m.clone(), now));
        }
        Self::answered(p, now);
        Ok(m)
    }

    fn answered(p: &ProviderState, now: DateTime<Utc>) {
        if let Ok(mut at) = p.last_answered.lock() {
            *at = Some(now);
        }
    }

    /// Whether the provider answers now, cheaply: discovery data is cached for
    /// an hour, and a login built from it for a provider that has since gone
    /// away would leave the user waiting on a browser that can never finish.
    /// One HEAD of the authorisation endpoint (the page the browser needs), with
    /// a short timeout; any HTTP answer counts. A failure drops the cached
    /// discovery, so the next login rediscovers.
    /// An answer no older than `fresh` stands in for the probe (discovery made
    /// in this same call is one).
    pub(super) fn probe(
        &self,
        p: &ProviderState,
        m: &Metadata,
        now: DateTime<Utc>,
        fresh: Duration,
    ) -> Result<(), OidcFailure> {
        let fresh = chrono::Duration::from_std(fresh).unwrap_or_default();
        if let Ok(at) = p.last_answered.lock() {
            if at.is_some_and(|t| now >= t && now - t <= fresh) {
                return Ok(());
            }
        }
        let url = m.authorization_endpoint().url().clone();
        match self.http.head(url).timeout(PROBE_TIMEOUT).send() {
            Ok(_) => {
                Self::answered(p, now);
                Ok(())
            }
            Err(e) => {
                if let Ok(mut guard) = p.metadata.write() {
                    *guard = None;
                }
                let failure =
                    OidcFailure::ProviderUnavailable(format!("authorization endpoint: {e}"));
                crate::metrics::provider_request(&p.settings.name, Err(failure.code().as_str()));
                Err(failure)
            }
        }
    }

    /// Whether any configured provider answers its discovery document now
    /// (fetched afresh, not from the cache): decides whether a fallback factor
    /// may stand in for OIDC.
    pub fn any_reachable(&self, now: DateTime<Utc>) -> bool {
        self.providers.iter().any(|p| {
            if let Ok(mut guard) = p.metadata.write() {
                *guard = None;
            }
            self.metadata(p, now).is_ok()
        })
    }

    /// Fetch the JWKS again, at most once per [`JWKS_REFETCH_INTERVAL`].
    fn refetch_jwks(
        &self,
        p: &ProviderState,
        now: DateTime<Utc>,
    ) -> Result<Option<CoreJsonWebKeySet>, OidcFailure> {
        {
            let Ok(mut last) = p.last_jwks_refetch.lock() else {
                return Ok(None);
            };
            if let Some(at) = *last {
                if now - at < chrono::Duration::from_std(JWKS_REFETCH_INTERVAL).unwrap_or_default()
                {
                    return Ok(None);
                }
            }
            *last = Some(now);
        }
        let m = self.metadata(p, now)?;
        let jwks =
            CoreJsonWebKeySet::fetch(m.jwks_uri(), &self.http).map_err(unavailable("JWKS"))?;
        if let Ok(mut guard) = p.metadata.write() {
            if let Some((meta, _)) = guard.as_mut() {
                *meta = meta.clone().set_jwks(jwks.clone());
            }
        }
        Ok(Some(jwks))
    }

    /// The `openidconnect` client for this provider, with its secret if any.
    pub(super) fn client(
        p: &ProviderState,
        m: Metadata,
    ) -> CoreClient<
        openidconnect::EndpointSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointMaybeSet,
        openidconnect::EndpointMaybeSet,
    > {
        CoreClient::from_provider_metadata(
            m,
            ClientId::new(p.settings.client_id.clone()),
            p.settings
                .client_secret
                .as_ref()
                .map(|s| ClientSecret::new(s.expose_secret().to_owned())),
        )
    }

    /// [`validate_id_token`], with one JWKS refetch when the token's `kid` is
    /// unknown.
    pub(super) fn validate_with_refetch(
        &self,
        p: &ProviderState,
        raw: &str,
        expect: &Expectations<'_>,
        jwks: &CoreJsonWebKeySet,
        now: DateTime<Utc>,
    ) -> Result<IdpClaims, OidcFailure> {
        match validate_id_token(raw, expect, jwks, now) {
            Err(OidcFailure::UnknownKid) => {
                // Key rotation: the provider may have a key we have not seen.
                // One refetch (rate-limited), then the answer stands.
                match self.refetch_jwks(p, now)? {
                    Some(fresh) => validate_id_token(raw, expect, &fresh, now),
                    None => Err(OidcFailure::UnknownKid),
                }
            }
            other => other,
        }
    }
}
