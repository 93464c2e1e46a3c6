//! `[webauthn]`: the settings as written in the config file, and as checked
//! (origin, relying party ID, user verification, trusted models and roots,
//! lifetimes).

use std::net::SocketAddr;
use std::time::Duration;

use reqwest::Url;
use serde::Deserialize;
use webauthn_rs_core::proto::AttestationCaList;

use super::canonical_aaguid;
use crate::error::CaError;

/// `[webauthn]` as written in the config file. Every key is optional: with none,
/// keys work on `https://localhost:<listen port>`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWebauthn {
    /// Relying party ID: the domain keys are bound to. Default `localhost`. Must
    /// be a domain (browsers refuse IP addresses) equal to, or a parent of, the
    /// origin's host. Changing it later orphans every enrolled key.
    #[serde(default)]
    pub rp_id: Option<String>,
    /// The origin the pages are served at, as the browser sees it. Default
    /// `https://localhost:<port of listen>`.
    #[serde(default)]
    pub origin: Option<String>,
    /// Name shown by the browser and the key. Default `Rampart`.
    #[serde(default)]
    pub rp_name: Option<String>,
    /// `preferred` (default) or `required`: with `required`, an enrolment or
    /// assertion without user verification (PIN, biometric) is refused.
    #[serde(default)]
    pub user_verification: UserVerification,
    /// Authenticator models (AAGUIDs) allowed to enrol; empty (default) = any.
    /// A key whose AAGUID is listed here counts as attested: with user
    /// verification it is a `phishing-resistant` factor.
    #[serde(default)]
    pub allowed_aaguids: Vec<String>,
    /// PEM files of attestation roots (e.g. Yubico's FIDO root). When set, a key
    /// enrols only if its attestation chains to one of them; self-attested and
    /// unattested keys are refused, and the keys that enrol count as attested.
    /// Default none (attestation chains unchecked).
    ///
    /// With neither this nor `allowed_aaguids`, every key is an *unattested* key:
    /// with user verification it is an `unattested-key` factor, one tier below
    /// `phishing-resistant`, because a software authenticator can claim UV.
    #[serde(default)]
    pub attestation_roots: Vec<std::path::PathBuf>,
    /// How long a login or enrolment request can be answered. Default `2m`.
    #[serde(default)]
    pub challenge_ttl: Option<String>,
    /// How long a bastion's per-session approval request can be answered.
    /// Default `5m`.
    #[serde(default)]
    pub approval_ttl: Option<String>,
}

/// `[webauthn] user_verification`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UserVerification {
    /// Ask for UV; accept presence only (the certificate says `mfa-uv@rampart=no`).
    #[default]
    Preferred,
    /// Refuse anything without UV.
    Required,
}

/// Validated `[webauthn]`.
#[derive(Debug, Clone)]
pub struct Settings {
    /// RP ID.
    pub rp_id: String,
    /// The pages' origin.
    pub origin: Url,
    /// RP name.
    pub rp_name: String,
    /// UV policy.
    pub user_verification: UserVerification,
    /// Allowed AAGUIDs, canonical lower-case; empty = any.
    pub allowed_aaguids: Vec<String>,
    /// Trusted attestation roots; `None` = attestation chains are not checked.
    pub attestation_roots: Option<AttestationCaList>,
    /// Lifetime of login and enrolment requests.
    pub challenge_ttl: Duration,
    /// Lifetime of bastion approval requests.
    pub approval_ttl: Duration,
    /// The origin is the default and `listen` has port 0: the real port is known
    /// only once the CA is bound ([`Settings::with_port`]).
    pub origin_follows_listen: bool,
}

impl Settings {
    /// The defaults for a CA listening on `listen`.
    pub fn defaults(listen: SocketAddr) -> Result<Settings, CaError> {
        validate(&RawWebauthn::default(), listen)
    }

    /// These settings with the origin on `port` (for a CA bound to port 0).
    pub fn with_port(&self, port: u16) -> Settings {
        let mut s = self.clone();
        if s.origin.set_port(Some(port)).is_ok() {
            s.origin_follows_listen = false;
        }
        s
    }

    /// Is UV required?
    pub fn uv_required(&self) -> bool {
        self.user_verification == UserVerification::Required
    }

    /// Does this CA vouch for any key model: attestation roots, or an AAGUID
    /// allow-list? Without either, no key is attested.
    pub fn verifies_key_models(&self) -> bool {
        self.attestation_roots.is_some() || !self.allowed_aaguids.is_empty()
    }

    /// The strongest factor a key enrolled now could prove: `phishing-resistant`
    /// where the CA vouches for key models (a key it cannot vouch for is refused
    /// at enrolment), else `unattested-key`. User verification is per assertion,
    /// so a key enrolled without it may assert it later: the enrolment gate
    /// assumes it will.
    pub fn enrolment_tier(&self) -> rampart_policy::FactorStrength {
        if self.verifies_key_models() {
            rampart_policy::FactorStrength::PhishingResistant
        } else {
            rampart_policy::FactorStrength::UnattestedKey
        }
    }

    /// Does the CA trust the model of a stored key: its attestation verified
    /// against the roots when it enrolled and roots are still configured, or
    /// its AAGUID is allow-listed now? An operator who removes every root has
    /// withdrawn that trust: the keys they vouched for count as unattested from
    /// their next login on (the store does not say which root verified a key,
    /// so replacing the roots with others does not demote them).
    pub fn key_attested(&self, attestation_verified: bool, aaguid: &str) -> bool {
        (attestation_verified && self.attestation_roots.is_some())
            || self.allowed_aaguids.iter().any(|a| a == aaguid)
    }
}

/// Validate `[webauthn]`; `listen` gives the default origin's port; relative
/// `attestation_roots` are relative to the current directory.
pub fn validate(raw: &RawWebauthn, listen: SocketAddr) -> Result<Settings, CaError> {
    validate_in(raw, listen, std::path::Path::new("."))
}

/// Read the attestation roots: every certificate in every PEM file.
fn attestation_roots(
    files: &[std::path::PathBuf],
    base: &std::path::Path,
) -> Result<Option<AttestationCaList>, CaError> {
    if files.is_empty() {
        return Ok(None);
    }
    const END: &str = "-----END CERTIFICATE-----";
    let mut list = AttestationCaList::default();
    for f in files {
        let path = base.join(f);
        let text = std::fs::read_to_string(&path).map_err(|e| CaError::io(&path, e))?;
        let mut found = 0usize;
        for block in text.split_inclusive(END).filter(|b| b.contains(END)) {
            let one = AttestationCaList::try_from(block.trim().as_bytes()).map_err(|e| {
                CaError::Config(format!(
                    "[webauthn] attestation_roots: {}: not a PEM certificate ({e:?})",
                    path.display()
                ))
            })?;
            list.union(&one);
            found += 1;
        }
        if found == 0 {
            return Err(CaError::Config(format!(
                "[webauthn] attestation_roots: {} holds no PEM certificate",
                path.display()
            )));
        }
    }
    Ok(Some(list))
}

/// [`validate`] with relative paths resolved against `base` (the config file's
/// directory).
pub fn validate_in(
    raw: &RawWebauthn,
    listen: SocketAddr,
    base: &std::path::Path,
) -> Result<Settings, CaError> {
    let bad = |m: String| CaError::Config(format!("[webauthn] {m}"));
    let rp_id = raw
        .rp_id
        .clone()
        .unwrap_or_else(|| "localhost".to_owned())
        .to_ascii_lowercase();
    if rp_id.is_empty()
        || rp_id.len() > 253
        || !rp_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.'))
    {
        return Err(bad(format!("rp_id = {rp_id:?} is not a domain name")));
    }
    if rp_id.parse::<std::net::IpAddr>().is_ok()
        || rp_id.chars().all(|c| c.is_ascii_digit() || c == '.')
    {
        return Err(bad(format!(
            "rp_id = {rp_id:?} is an IP address; browsers only accept a domain (use localhost on one machine)"
        )));
    }
    let origin_text = raw
        .origin
        .clone()
        .unwrap_or_else(|| format!("https://localhost:{}", listen.port()));
    let origin = Url::parse(&origin_text)
        .map_err(|e| bad(format!("origin = {origin_text:?} is not a URL ({e})")))?;
    let Some(host) = origin.domain().map(str::to_ascii_lowercase) else {
        return Err(bad(format!(
            "origin = {origin_text:?} must name a host by domain, not an IP address"
        )));
    };
    if origin.scheme() != "https" && !(origin.scheme() == "http" && host == "localhost") {
        return Err(bad(format!(
            "origin = {origin_text:?} must be https:// (http is a secure context only on localhost)"
        )));
    }
    if origin.path() != "/" || origin.query().is_some() || origin.fragment().is_some() {
        return Err(bad(format!(
            "origin = {origin_text:?} must be scheme://host[:port] with no path"
        )));
    }
    if !(host == rp_id || host.ends_with(&format!(".{rp_id}"))) {
        return Err(bad(format!(
            "rp_id = {rp_id:?} must be the origin's host {host:?} or a parent domain of it"
        )));
    }
    let rp_name = raw.rp_name.clone().unwrap_or_else(|| "Rampart".to_owned());
    if rp_name.is_empty() || rp_name.len() > 64 || rp_name.chars().any(char::is_control) {
        return Err(bad("rp_name must be 1-64 printable characters".into()));
    }
    let mut allowed_aaguids = Vec::with_capacity(raw.allowed_aaguids.len());
    for a in &raw.allowed_aaguids {
        let Some(c) = canonical_aaguid(a) else {
            return Err(bad(format!(
                "allowed_aaguids: {a:?} is not a UUID like cb69481e-8ff7-4039-93ec-0a2729a154a8"
            )));
        };
        allowed_aaguids.push(c);
    }
    let dur = |key: &str, v: &Option<String>, default: &str| {
        let v = v.as_deref().unwrap_or(default);
        crate::config::parse_duration(v).map_err(|e| bad(format!("{key} = {v:?}: {e}")))
    };
    Ok(Settings {
        rp_id,
        origin,
        rp_name,
        user_verification: raw.user_verification,
        allowed_aaguids,
        attestation_roots: attestation_roots(&raw.attestation_roots, base)?,
        challenge_ttl: dur("challenge_ttl", &raw.challenge_ttl, "2m")?,
        approval_ttl: dur("approval_ttl", &raw.approval_ttl, "5m")?,
        origin_follows_listen: raw.origin.is_none() && listen.port() == 0,
    })
}
