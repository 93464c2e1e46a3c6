//! OpenID Connect step-up: the CA as a relying party of one or more identity
//! providers. This module owns provider settings, discovery and JWKS caching,
//! the server-side login state (state, nonce, PKCE verifier), the authorisation
//! URL, the code redemption and the ID-token checks. It does not open sessions,
//! write audit events or decide which roles need what: the authority does that
//! (`authority::oidc_login`), from what [`IdpLogin`] reports.
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

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, RwLock};
use std::time::Duration;

use base64::Engine;
use chrono::{DateTime, Utc};
use openidconnect::core::{
    CoreAuthDisplay, CoreAuthPrompt, CoreAuthenticationFlow, CoreClaimName, CoreClaimType,
    CoreClient, CoreClientAuthMethod, CoreGrantType, CoreIdToken, CoreJsonWebKey,
    CoreJsonWebKeySet, CoreJweContentEncryptionAlgorithm, CoreJweKeyManagementAlgorithm,
    CoreJwsSigningAlgorithm, CoreResponseMode, CoreResponseType, CoreSubjectIdentifierType,
};
use openidconnect::{
    AuthenticationContextClass, AuthorizationCode, ClaimsVerificationError, ClientId, ClientSecret,
    CsrfToken, IdTokenVerifier, IssuerUrl, Nonce, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl,
    Scope, SignatureVerificationError, TokenResponse,
};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::error::CaError;

/// How long a started login may wait for its code.
pub const LOGIN_STATE_TTL: Duration = Duration::from_secs(10 * 60);
/// Most logins waiting for their code at once; more are refused, not queued.
const MAX_PENDING: usize = 10_000;
/// Longest ID token we parse (a JWT with a few dozen groups is well under this).
pub const MAX_ID_TOKEN_BYTES: usize = 16 * 1024;
/// Longest authorisation code / state accepted from a client.
pub const MAX_CODE_BYTES: usize = 2048;
/// An unknown `kid` refetches the JWKS at most this often per provider, so a
/// stream of forged tokens cannot make the CA hammer the provider.
pub const JWKS_REFETCH_INTERVAL: Duration = Duration::from_secs(30);
/// Provider metadata is fetched again after this long.
pub const DISCOVERY_TTL: Duration = Duration::from_secs(3600);
/// Timeout of every call to a provider.
pub const PROVIDER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a reachability probe may take: a user waits on it.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(3);
/// While a CLI waits for the browser, a provider that answered this recently
/// is not probed again.
pub const PROBE_FRESH: Duration = Duration::from_secs(5);
/// Most groups taken from a token; more is refused as malformed.
const MAX_GROUPS: usize = 256;

/// The signature algorithms an ID token may use. `none` and HS* are never
/// accepted: an HMAC token is keyed by the client secret, which the CA shares
/// with the provider, so it proves nothing about who signed it.
pub const ALLOWED_ALGS: [CoreJwsSigningAlgorithm; 3] = [
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
    CoreJwsSigningAlgorithm::EcdsaP256Sha256,
    CoreJwsSigningAlgorithm::EdDsa,
];

// ---------------------------------------------------------------------------
// Settings
// ---------------------------------------------------------------------------

/// One `[[oidc.providers]]` table as written in the config file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProvider {
    /// Short name used by `rampart login --provider NAME`, in audit events and in
    /// the certificate's `mfa-idp@rampart` extension.
    pub name: String,
    /// Issuer URL; discovery is `<issuer>/.well-known/openid-configuration`.
    /// Must be `https://`, except on a loopback host.
    pub issuer: String,
    /// Client ID registered at the provider.
    pub client_id: String,
    /// File (mode 0600) holding the client secret. Absent: a public client that
    /// relies on PKCE alone.
    pub client_secret_file: Option<PathBuf>,
    /// Scopes besides `openid`. Default `["profile", "email", "groups"]`.
    #[serde(default = "default_scopes")]
    pub scopes: Vec<String>,
    /// Claim holding the Rampart user name. Default `preferred_username`.
    #[serde(default = "default_username_claim")]
    pub username_claim: String,
    /// Claim holding the user's groups (a list of strings). Default `groups`.
    #[serde(default = "default_groups_claim")]
    pub groups_claim: String,
    /// Create unknown users on first login (just-in-time). Default false.
    #[serde(default)]
    pub jit_users: bool,
    /// Replace a user's Rampart groups with the provider's `groups_claim` at
    /// each login (when the token carries any). Default true. Never touches the
    /// admin flag, which is not a group.
    #[serde(default = "default_sync_groups")]
    pub sync_groups: bool,
    /// Clock skew allowed on `exp`/`iat`, e.g. `"60s"`. Default 60 s.
    #[serde(default = "default_skew")]
    pub clock_skew: String,
}

fn default_scopes() -> Vec<String> {
    vec!["profile".into(), "email".into(), "groups".into()]
}
fn default_username_claim() -> String {
    "preferred_username".into()
}
fn default_groups_claim() -> String {
    "groups".into()
}
fn default_sync_groups() -> bool {
    true
}
fn default_skew() -> String {
    "60s".into()
}

/// `[oidc]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOidc {
    /// The providers; none means OIDC login is off.
    #[serde(default)]
    pub providers: Vec<RawProvider>,
}

/// A validated provider. The secret is read at load time and kept in a
/// `SecretString` (zeroized, redacted in `Debug`).
#[derive(Debug, Clone)]
pub struct ProviderSettings {
    /// Short name.
    pub name: String,
    /// Issuer URL.
    pub issuer: String,
    /// Client ID.
    pub client_id: String,
    /// Client secret (confidential client) or none (public client + PKCE).
    pub client_secret: Option<SecretString>,
    /// Scopes besides `openid`.
    pub scopes: Vec<String>,
    /// User-name claim.
    pub username_claim: String,
    /// Groups claim.
    pub groups_claim: String,
    /// Just-in-time users.
    pub jit_users: bool,
    /// Replace Rampart groups with the provider's at each login.
    pub sync_groups: bool,
    /// Allowed clock skew.
    pub clock_skew: Duration,
}

fn loopback_host(url: &reqwest::Url) -> bool {
    match url.host() {
        Some(openidconnect::url::Host::Domain(d)) => d == "localhost",
        Some(openidconnect::url::Host::Ipv4(a)) => a.is_loopback(),
        Some(openidconnect::url::Host::Ipv6(a)) => a.is_loopback(),
        None => false,
    }
}

/// Validate `[oidc]`: unique names, usable URLs, secrets readable and private.
pub fn validate(raw: &RawOidc, base: &Path) -> Result<Vec<ProviderSettings>, CaError> {
    let mut out: Vec<ProviderSettings> = Vec::new();
    for p in &raw.providers {
        let key = format!("[[oidc.providers]] {:?}", p.name);
        let bad = |m: String| CaError::Config(format!("{key}: {m}"));
        if p.name.is_empty()
            || p.name.len() > 64
            || !p
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return Err(bad(
                "name must be 1-64 letters, digits, '-', '_' or '.'".into()
            ));
        }
        if out.iter().any(|o| o.name == p.name) {
            return Err(bad("two providers have this name".into()));
        }
        let url = reqwest::Url::parse(&p.issuer)
            .map_err(|e| bad(format!("issuer {:?} is not a URL ({e})", p.issuer)))?;
        if url.scheme() != "https" && !(url.scheme() == "http" && loopback_host(&url)) {
            return Err(bad(
                "issuer must be https:// (plain http is accepted only on a loopback host)".into(),
            ));
        }
        if p.client_id.is_empty() {
            return Err(bad("client_id is empty".into()));
        }
        let client_secret = match &p.client_secret_file {
            None => None,
            Some(f) => {
                let path = base.join(f);
                crate::config::check_private_file(&path)?;
                let text = Zeroizing::new(
                    std::fs::read_to_string(&path).map_err(|e| CaError::io(&path, e))?,
                );
                let secret = text.trim();
                if secret.is_empty() {
                    return Err(bad(format!("{} is empty", path.display())));
                }
                Some(SecretString::from(secret.to_owned()))
            }
        };
        let clock_skew = crate::config::parse_duration(&p.clock_skew)
            .map_err(|e| bad(format!("clock_skew = {:?}: {e}", p.clock_skew)))?;
        if clock_skew > Duration::from_secs(600) {
            return Err(bad("clock_skew over 10 minutes is not accepted".into()));
        }
        for claim in [&p.username_claim, &p.groups_claim] {
            if claim.is_empty() || claim.len() > 128 {
                return Err(bad("claim names must be 1-128 characters".into()));
            }
        }
        out.push(ProviderSettings {
            name: p.name.clone(),
            issuer: p.issuer.clone(),
            client_id: p.client_id.clone(),
            client_secret,
            scopes: p.scopes.clone(),
            username_claim: p.username_claim.clone(),
            groups_claim: p.groups_claim.clone(),
            jit_users: p.jit_users,
            sync_groups: p.sync_groups,
            clock_skew,
        });
    }
    Ok(out)
}

// ---------------------------------------------------------------------------
// Failures
// ---------------------------------------------------------------------------

/// Why an OIDC login was refused. Each has a stable code used as the API error
/// code and the audit reason.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OidcFailure {
    /// No such provider in the config.
    UnknownProvider,
    /// The `state` is unknown or was already used.
    StateUnknown,
    /// The login took longer than [`LOGIN_STATE_TTL`].
    StateExpired,
    /// Discovery, JWKS or the token endpoint could not be reached.
    ProviderUnavailable(String),
    /// The provider refused the code (wrong, used, expired, or PKCE mismatch).
    CodeRejected(String),
    /// The token response held no ID token.
    NoIdToken,
    /// The token's `alg` is `none`.
    AlgNone,
    /// The token's `alg` is not one of [`ALLOWED_ALGS`].
    AlgNotAllowed(String),
    /// No key in the provider's JWKS, even after one refetch, has the token's `kid`.
    UnknownKid,
    /// The signature does not verify.
    BadSignature,
    /// `iss` is not the provider's.
    WrongIssuer,
    /// `aud` does not hold our client ID (or holds an untrusted extra one), or
    /// `azp` names another client.
    WrongAudience,
    /// `exp` has passed (beyond the skew) or `iat` is in the future.
    TokenExpired,
    /// `nonce` is not the one this login sent.
    NonceMismatch,
    /// No `auth_time`: we cannot tell how fresh the authentication is.
    AuthTimeMissing,
    /// The user-name claim is missing or not a valid Rampart user name.
    UsernameInvalid,
    /// The token is malformed in some other way.
    Malformed(String),
}

impl OidcFailure {
    /// Stable code.
    pub fn code(&self) -> &'static str {
        match self {
            OidcFailure::UnknownProvider => "oidc_unknown_provider",
            OidcFailure::StateUnknown => "oidc_state_unknown",
            OidcFailure::StateExpired => "oidc_state_expired",
            OidcFailure::ProviderUnavailable(_) => "oidc_provider_unavailable",
            OidcFailure::CodeRejected(_) => "code_rejected",
            OidcFailure::NoIdToken => "no_id_token",
            OidcFailure::AlgNone => "alg_none",
            OidcFailure::AlgNotAllowed(_) => "alg_not_allowed",
            OidcFailure::UnknownKid => "unknown_kid",
            OidcFailure::BadSignature => "bad_signature",
            OidcFailure::WrongIssuer => "wrong_issuer",
            OidcFailure::WrongAudience => "wrong_audience",
            OidcFailure::TokenExpired => "token_expired",
            OidcFailure::NonceMismatch => "nonce_mismatch",
            OidcFailure::AuthTimeMissing => "auth_time_missing",
            OidcFailure::UsernameInvalid => "username_invalid",
            OidcFailure::Malformed(_) => "token_malformed",
        }
    }

    /// One line for the user.
    pub fn message(&self) -> String {
        match self {
            OidcFailure::UnknownProvider => "no such OIDC provider is configured".into(),
            OidcFailure::StateUnknown => {
                "this login is unknown or was already used; start again".into()
            }
            OidcFailure::StateExpired => "this login took too long; start again".into(),
            OidcFailure::ProviderUnavailable(d) => {
                format!("the identity provider cannot be reached ({d})")
            }
            OidcFailure::CodeRejected(d) => {
                format!("the identity provider refused the authorisation code ({d})")
            }
            OidcFailure::NoIdToken => "the identity provider returned no ID token".into(),
            OidcFailure::AlgNone => "the ID token is unsigned (alg none)".into(),
            OidcFailure::AlgNotAllowed(a) => {
                format!("the ID token's algorithm {a} is not accepted (RS256, ES256, EdDSA)")
            }
            OidcFailure::UnknownKid => {
                "the ID token is signed by a key the provider does not publish".into()
            }
            OidcFailure::BadSignature => "the ID token's signature does not verify".into(),
            OidcFailure::WrongIssuer => "the ID token is from another issuer".into(),
            OidcFailure::WrongAudience => "the ID token is for another client".into(),
            OidcFailure::TokenExpired => "the ID token has expired".into(),
            OidcFailure::NonceMismatch => "the ID token's nonce is not this login's".into(),
            OidcFailure::AuthTimeMissing => "the ID token has no auth_time".into(),
            OidcFailure::UsernameInvalid => {
                "the ID token's user-name claim is missing or not a valid user name".into()
            }
            OidcFailure::Malformed(d) => format!("the ID token is malformed ({d})"),
        }
    }
}

// ---------------------------------------------------------------------------
// ID token validation (pure; the unit tests drive it with tokens they sign)
// ---------------------------------------------------------------------------

/// What a token must match.
#[derive(Debug, Clone)]
pub struct Expectations<'a> {
    /// Issuer.
    pub issuer: &'a str,
    /// Our client ID.
    pub client_id: &'a str,
    /// Nonce sent in the authorisation request; `None` for the device grant,
    /// whose ID token comes straight from the token endpoint for a device code
    /// only the CA knows (RFC 8628 has no nonce).
    pub nonce: Option<&'a str>,
    /// Allowed clock skew.
    pub skew: Duration,
    /// User-name claim.
    pub username_claim: &'a str,
    /// Groups claim.
    pub groups_claim: &'a str,
}

/// What a valid ID token says about the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdpClaims {
    /// `sub`.
    pub subject: String,
    /// Mapped Rampart user name.
    pub username: String,
    /// Mapped groups (valid group names only; others are dropped).
    pub groups: Vec<String>,
    /// `acr`.
    pub acr: Option<String>,
    /// `amr`.
    pub amr: Vec<String>,
    /// `auth_time`: when the user actually authenticated at the provider.
    pub auth_time: DateTime<Utc>,
}

fn b64(seg: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(seg.trim_end_matches('='))
        .ok()
}

/// Header and payload as JSON, without verifying anything.
fn segments(raw: &str) -> Result<(serde_json::Value, serde_json::Value), OidcFailure> {
    let mut it = raw.split('.');
    let (Some(h), Some(p)) = (it.next(), it.next()) else {
        return Err(OidcFailure::Malformed("not a JWS".into()));
    };
    let parse = |s: &str| -> Result<serde_json::Value, OidcFailure> {
        let bytes = b64(s).ok_or_else(|| OidcFailure::Malformed("bad base64url".into()))?;
        serde_json::from_slice(&bytes).map_err(|_| OidcFailure::Malformed("bad JSON".into()))
    };
    Ok((parse(h)?, parse(p)?))
}

fn map_verification_error(e: &ClaimsVerificationError) -> OidcFailure {
    match e {
        ClaimsVerificationError::Expired(_) => OidcFailure::TokenExpired,
        ClaimsVerificationError::InvalidAudience(_) => OidcFailure::WrongAudience,
        ClaimsVerificationError::InvalidIssuer(_) => OidcFailure::WrongIssuer,
        ClaimsVerificationError::InvalidNonce(_) => OidcFailure::NonceMismatch,
        ClaimsVerificationError::SignatureVerification(s) => match s {
            SignatureVerificationError::NoMatchingKey => OidcFailure::UnknownKid,
            SignatureVerificationError::DisallowedAlg(a)
            | SignatureVerificationError::UnsupportedAlg(a) => {
                OidcFailure::AlgNotAllowed(a.clone())
            }
            SignatureVerificationError::NoSignature => OidcFailure::AlgNone,
            _ => OidcFailure::BadSignature,
        },
        other => OidcFailure::Malformed(other.to_string()),
    }
}

/// Check an ID token against the provider's keys and this login's expectations.
pub fn validate_id_token(
    raw: &str,
    expect: &Expectations<'_>,
    jwks: &CoreJsonWebKeySet,
    now: DateTime<Utc>,
) -> Result<IdpClaims, OidcFailure> {
    if raw.len() > MAX_ID_TOKEN_BYTES {
        return Err(OidcFailure::Malformed("token too large".into()));
    }
    let (header, payload) = segments(raw)?;
    match header.get("alg").and_then(|a| a.as_str()) {
        Some(a) if a.eq_ignore_ascii_case("none") => return Err(OidcFailure::AlgNone),
        Some(a) if a.starts_with("HS") || a.starts_with("hs") => {
            return Err(OidcFailure::AlgNotAllowed(a.to_owned()))
        }
        Some(_) => {}
        None => return Err(OidcFailure::Malformed("no alg".into())),
    }
    let token: CoreIdToken = raw
        .parse()
        .map_err(|e: serde_json::Error| OidcFailure::Malformed(e.to_string()))?;
    let skew = chrono::Duration::from_std(expect.skew).unwrap_or(chrono::Duration::zero());
    let issuer = IssuerUrl::new(expect.issuer.to_owned())
        .map_err(|e| OidcFailure::Malformed(format!("issuer: {e}")))?;
    // The verifier compares `exp` with "now": handing it now - skew accepts a
    // token up to `skew` past its expiry and no further.
    let verifier: IdTokenVerifier<'_, _> = IdTokenVerifier::new_public_client(
        ClientId::new(expect.client_id.to_owned()),
        issuer,
        jwks.clone(),
    )
    .set_allowed_algs(ALLOWED_ALGS)
    .set_time_fn(move || now - skew)
    .set_issue_time_verifier_fn(move |iat| {
        if iat > now + skew {
            Err(format!("issued in the future ({iat})"))
        } else {
            Ok(())
        }
    })
    // Extra audiences are not trusted (OIDC Core §3.1.3.7 step 3).
    .set_other_audience_verifier_fn(|_| false);
    let claims = match expect.nonce {
        Some(n) => token.claims(&verifier, &Nonce::new(n.to_owned())),
        None => token.claims(&verifier, |_: Option<&Nonce>| Ok(())),
    }
    .map_err(|e| map_verification_error(&e))?;
    // Step 5: if present, azp must be us.
    if let Some(azp) = claims.authorized_party() {
        if azp.as_str() != expect.client_id {
            return Err(OidcFailure::WrongAudience);
        }
    }
    let auth_time = claims.auth_time().ok_or(OidcFailure::AuthTimeMissing)?;
    if auth_time > now + skew {
        return Err(OidcFailure::Malformed("auth_time is in the future".into()));
    }
    // The signature is now verified, so the payload JSON is the provider's word;
    // the mapped claims are read from it because their names are configurable.
    let username = payload
        .get(expect.username_claim)
        .and_then(|v| v.as_str())
        .filter(|u| crate::authority::valid_user_name(u))
        .ok_or(OidcFailure::UsernameInvalid)?
        .to_owned();
    let groups = match payload.get(expect.groups_claim) {
        None | Some(serde_json::Value::Null) => Vec::new(),
        Some(serde_json::Value::Array(list)) => {
            if list.len() > MAX_GROUPS {
                return Err(OidcFailure::Malformed("too many groups".into()));
            }
            let mut out: Vec<String> = list
                .iter()
                .filter_map(|g| g.as_str())
                .filter(|g| valid_group(g))
                .map(str::to_owned)
                .collect();
            out.sort();
            out.dedup();
            out
        }
        Some(_) => return Err(OidcFailure::Malformed("groups claim is not a list".into())),
    };
    let amr = claims
        .auth_method_refs()
        .map(|l| l.iter().map(|a| a.as_str().to_owned()).collect())
        .unwrap_or_default();
    Ok(IdpClaims {
        subject: claims.subject().as_str().to_owned(),
        username,
        groups,
        acr: claims.auth_context_ref().map(|a| a.as_str().to_owned()),
        amr,
        auth_time,
    })
}

fn valid_group(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

// ---------------------------------------------------------------------------
// The relying party
// ---------------------------------------------------------------------------

/// Discovery's `device_authorization_endpoint` (RFC 8628 §4), which the core
/// metadata type does not carry.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct DeviceMetadata {
    #[serde(default)]
    device_authorization_endpoint: Option<openidconnect::DeviceAuthorizationUrl>,
}
impl openidconnect::AdditionalProviderMetadata for DeviceMetadata {}

/// Provider metadata with the device endpoint.
type Metadata = openidconnect::ProviderMetadata<
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
struct Pending {
    provider: String,
    nonce: Zeroizing<String>,
    pkce_verifier: Zeroizing<String>,
    redirect_uri: String,
    expires_at: DateTime<Utc>,
}

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

struct ProviderState {
    settings: ProviderSettings,
    metadata: RwLock<Option<(Metadata, DateTime<Utc>)>>,
    last_jwks_refetch: Mutex<Option<DateTime<Utc>>>,
    /// When the provider last answered anything (discovery or a probe).
    last_answered: Mutex<Option<DateTime<Utc>>>,
}

impl ProviderState {
    /// What this provider's ID tokens must say; `nonce` is the login's, or
    /// `None` for the device grant (its token comes straight from the token
    /// endpoint).
    fn expectations<'a>(&'a self, nonce: Option<&'a str>) -> Expectations<'a> {
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

/// The CA's OIDC relying party.
pub struct RelyingParty {
    providers: Vec<ProviderState>,
    pending: Mutex<HashMap<[u8; 32], Pending>>,
    devices: Mutex<HashMap<[u8; 32], PendingDevice>>,
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

fn digest(s: &str) -> [u8; 32] {
    Sha256::digest(s.as_bytes()).into()
}

fn unavailable<E: std::fmt::Display>(what: &str) -> impl Fn(E) -> OidcFailure + '_ {
    move |e| OidcFailure::ProviderUnavailable(format!("{what}: {e}"))
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
            providers: providers
                .into_iter()
                .map(|settings| ProviderState {
                    settings,
                    metadata: RwLock::new(None),
                    last_jwks_refetch: Mutex::new(None),
                    last_answered: Mutex::new(None),
                })
                .collect(),
            pending: Mutex::new(HashMap::new()),
            devices: Mutex::new(HashMap::new()),
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

    fn metadata(&self, p: &ProviderState, now: DateTime<Utc>) -> Result<Metadata, OidcFailure> {
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
            m.as_ref().map(|_| ()).map_err(OidcFailure::code),
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
    fn probe(
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
                crate::metrics::provider_request(&p.settings.name, Err(failure.code()));
                Err(failure)
            }
        }
    }

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

    fn client(
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
        pending.insert(
            digest(state.secret()),
            Pending {
                provider: p.settings.name.clone(),
                nonce: Zeroizing::new(nonce.secret().clone()),
                pkce_verifier: Zeroizing::new(verifier.secret().clone()),
                redirect_uri: redirect_uri.to_owned(),
                expires_at,
            },
        );
        Ok(Ok(Started {
            state: state.secret().clone(),
            authorize_url: url.to_string(),
            expires_at,
        }))
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

    fn validate_with_refetch(
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

mod device;
pub use device::DeviceStarted;
use device::PendingDevice;

#[cfg(test)]
mod tests;
