//! `[oidc]` in the CA's config: the provider tables as written
//! ([`RawOidc`], [`RawProvider`]) and their validation into
//! [`ProviderSettings`] (unique names, usable issuer URLs, a readable private
//! client secret, a bounded clock skew).
//!
//! **Owns:** what a provider's settings may say and their defaults. Nothing
//! here talks to a provider.

use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;
use zeroize::Zeroizing;

use crate::error::CaError;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_validation() {
        let base = std::env::temp_dir();
        let raw = |issuer: &str, name: &str| RawOidc {
            providers: vec![RawProvider {
                name: name.into(),
                issuer: issuer.into(),
                client_id: "c".into(),
                client_secret_file: None,
                scopes: default_scopes(),
                username_claim: default_username_claim(),
                groups_claim: default_groups_claim(),
                jit_users: false,
                sync_groups: true,
                clock_skew: default_skew(),
            }],
        };
        assert!(validate(&raw("https://idp.example.test", "corp"), &base).is_ok());
        assert!(validate(&raw("http://127.0.0.1:9000", "corp"), &base).is_ok());
        assert!(validate(&raw("http://idp.example.test", "corp"), &base).is_err());
        assert!(validate(&raw("https://idp.example.test", "bad name"), &base).is_err());
        let mut two = raw("https://a.test", "x");
        two.providers.push(two.providers[0].clone());
        assert!(validate(&two, &base).is_err());
    }
}
