//! ID-token checks (OpenID Connect Core §3.1.3.7), pure: a token, what it
//! must match ([`Expectations`]) and the provider's keys in, the user's mapped
//! claims ([`IdpClaims`]) or an [`OidcFailure`] out. The unit tests (`tests`)
//! drive it with tokens they sign.
//!
//! **Owns:** the algorithm allow-list, the size and shape limits, `azp`,
//! bounded clock skew, `auth_time`, and the user-name and groups mapping.
//! Fetching the keys (and refetching them on an unknown `kid`) is
//! `discovery`'s.

use std::time::Duration;

use base64::Engine;
use chrono::{DateTime, Utc};
use openidconnect::core::{CoreIdToken, CoreJsonWebKeySet, CoreJwsSigningAlgorithm};
use openidconnect::{
    ClaimsVerificationError, ClientId, IdTokenVerifier, IssuerUrl, Nonce,
    SignatureVerificationError,
};

use super::OidcFailure;

/// Longest ID token we parse (a JWT with a few dozen groups is well under this).
pub const MAX_ID_TOKEN_BYTES: usize = 16 * 1024;
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
    refuse_unsafe_alg(&header)?;
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
    let groups = mapped_groups(payload.get(expect.groups_claim))?;
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

/// `none` and HMAC (keyed by the client secret the CA shares with the
/// provider) are refused from the unverified header, before any key lookup,
/// and named so the audit log says which it was.
fn refuse_unsafe_alg(header: &serde_json::Value) -> Result<(), OidcFailure> {
    match header.get("alg").and_then(|a| a.as_str()) {
        Some(a) if a.eq_ignore_ascii_case("none") => Err(OidcFailure::AlgNone),
        Some(a) if a.starts_with("HS") || a.starts_with("hs") => {
            Err(OidcFailure::AlgNotAllowed(a.to_owned()))
        }
        Some(_) => Ok(()),
        None => Err(OidcFailure::Malformed("no alg".into())),
    }
}

/// The groups claim (absent or null: none), at most [`MAX_GROUPS`]; names
/// that are not valid Rampart group names are dropped, the rest sorted and
/// deduplicated.
fn mapped_groups(claim: Option<&serde_json::Value>) -> Result<Vec<String>, OidcFailure> {
    match claim {
        None | Some(serde_json::Value::Null) => Ok(Vec::new()),
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
            Ok(out)
        }
        Some(_) => Err(OidcFailure::Malformed("groups claim is not a list".into())),
    }
}

fn valid_group(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}
