//! The WebAuthn relying party: the hardware-key factor (a security key used in a
//! browser, or over CTAP2 from the CLI).
//!
//! **Owns:** the `[webauthn]` settings, the WebAuthn ceremonies' cryptographic
//! checks (through webauthn-rs), what a request must remember between its
//! steps ([`Entry`]: its challenge state, short-code and poll-token digests and
//! outcome), the long-poll wake-ups of this CA's waiters, the AAGUID read from
//! the authenticator data, and the pages a browser shows ([`pages`], served by
//! [`routes`]).
//! **Does not:** keep the requests, open sessions, write audit events or count
//! failures: the authority does that (`authority::webauthn`), so a key login
//! gets the same audit, lockout and session rules as a TOTP login.
//!
//! # Where requests live
//!
//! A request is kept in the store (kind `webauthn_request`), so that its page,
//! its answer, its `WAIT` and a bastion's use of an approval may each reach
//! any CA sharing the database. It is found by the SHA-256 of its request ID.
//! The entry, webauthn-rs's ceremony state (`RegistrationState`,
//! `AuthenticationState`: the challenge and allowed credentials) included, is
//! stored as serialized JSON sealed with the CA's sealing key and bound to its
//! row; its outcome may hold a session token for the starter, which is why it
//! is sealed rather than kept in the clear. Every change is a compare-and-set
//! on the entry's version, so a challenge is taken by exactly one answer
//! whichever CAs the answers reach. The poll token and the short code are kept
//! only as digests.
//!
//! # The protocol
//!
//! `rampart_api::webauthn` (its module doc) is the wire protocol. Every ceremony is
//! a request with a public `request_id` (in the page URL; 256 random bits, so the
//! URL cannot be guessed), a secret `poll_token` only its starter holds (stored as
//! a SHA-256 digest, compared in constant time) and a `short_code` shown both on
//! the page and to the starter. A request's challenge is single-use: the first
//! answer (from the page, or `FINISH`) takes it, and any later answer is refused as
//! a replay, whatever the first one's verdict was. Answers arrive as JSON bodies
//! under the API's 64 KiB limit and are parsed into webauthn-rs's types; nothing
//! of an answer is trusted before webauthn-rs has checked it.
//!
//! # Crate choice
//!
//! webauthn-rs 0.6.2's checks are used through its core crate
//! (`webauthn-rs-core`, the same code the `webauthn-rs` wrappers call), because
//! the wrappers fix two things Rampart must choose: the user-verification policy
//! (`[webauthn] user_verification`), and `direct` attestation without a CA list —
//! needed so the AAGUID reaches the certificate (`mfa-aaguid@rampart`) and the
//! `allowed_aaguids` policy even when no vendor roots are configured. Everything
//! the wrappers add on top (counter checks, origin and RP ID checks, challenge
//! match, signature) happens in the core calls used here.

pub mod pages;
pub mod routes;

use std::net::SocketAddr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rampart_api::webauthn as wapi;
use rampart_api::ErrorCode;
use reqwest::Url;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::sync::watch;
use webauthn_rs_core::error::WebauthnError;
use webauthn_rs_core::proto::{
    AttestationCaList, AttestationConveyancePreference, AuthenticationState, Credential,
    CredentialID, RegistrationState, RequestChallengeResponse, UserVerificationPolicy,
};
use webauthn_rs_core::proto::{CreationChallengeResponse, PublicKeyCredential};
use webauthn_rs_core::WebauthnCore;

use crate::error::CaError;

/// Most requests kept at once; more are refused (429), not queued.
pub const MAX_PENDING: u32 = 10_000;
/// Most unanswered requests naming one user started from one source network:
/// a flood of starts for one user cannot fill the table for everyone, and a
/// stranger's flood fills only the stranger's share, never the user's own.
pub const MAX_OPEN_PER_USER_AND_NETWORK: u32 = 8;
/// How often a held `WAIT` looks at its request in the store, for answers
/// that reached another CA.
pub const WAIT_RECHECK: Duration = Duration::from_millis(500);
/// A finished or expired request is kept this long after its expiry, so that its
/// starter still learns how it ended rather than "unknown".
pub const KEEP_AFTER_EXPIRY: Duration = Duration::from_secs(5 * 60);
/// Longest key name.
pub const MAX_KEY_NAME: usize = 64;

// ---------------------------------------------------------------------------
// Settings
// ---------------------------------------------------------------------------

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

/// A UUID in any common spelling (with or without dashes, any case) as the
/// canonical lower-case 8-4-4-4-12 form.
pub fn canonical_aaguid(s: &str) -> Option<String> {
    let hexits: String = s.chars().filter(|c| *c != '-').collect();
    let bytes = hex::decode(hexits.trim()).ok()?;
    let arr: [u8; 16] = bytes.try_into().ok()?;
    Some(format_aaguid(&arr))
}

/// 16 bytes as a lower-case UUID.
pub fn format_aaguid(b: &[u8; 16]) -> String {
    let h = hex::encode(b);
    // hex of 16 bytes is 32 ASCII characters, so these ranges exist.
    format!(
        "{}-{}-{}-{}-{}",
        h.get(0..8).unwrap_or_default(),
        h.get(8..12).unwrap_or_default(),
        h.get(12..16).unwrap_or_default(),
        h.get(16..20).unwrap_or_default(),
        h.get(20..32).unwrap_or_default()
    )
}

/// The AAGUID of a registration: bytes 37..53 of the authenticator data inside
/// the attestation object (WebAuthn §6.5.1: rpIdHash 32, flags 1, signCount 4,
/// then the attested credential data starting with the AAGUID). Read here because
/// webauthn-rs only reports it for some attestation formats.
pub fn aaguid_of_attestation(attestation_object: &[u8]) -> Option<String> {
    use serde_cbor_2::Value;
    let v: Value = serde_cbor_2::from_slice(attestation_object).ok()?;
    let Value::Map(map) = v else { return None };
    let auth_data = map.iter().find_map(|(k, v)| match (k, v) {
        (Value::Text(k), Value::Bytes(b)) if k == "authData" => Some(b),
        _ => None,
    })?;
    let aaguid: [u8; 16] = auth_data.get(37..53)?.try_into().ok()?;
    Some(format_aaguid(&aaguid))
}

/// The signature counter and UV flag in an assertion's authenticator data
/// (WebAuthn §6.1: flags at byte 32, bit 2 = UV; signCount big-endian at 33..37).
pub fn assertion_counter(authenticator_data: &[u8]) -> Option<(u32, bool)> {
    let flags = *authenticator_data.get(32)?;
    let count: [u8; 4] = authenticator_data.get(33..37)?.try_into().ok()?;
    Some((u32::from_be_bytes(count), flags & 0x04 != 0))
}

/// A WebAuthn library verdict as a stable reason code and a sentence for the user.
pub fn failure_of(e: &WebauthnError) -> (ErrorCode, &'static str) {
    use WebauthnError as E;
    match e {
        E::InvalidRPOrigin | E::CredentialCrossOrigin => (
            ErrorCode::WebauthnWrongOrigin,
            "the browser answered for another web site (origin); open the link exactly as printed",
        ),
        E::InvalidRPIDHash => (
            ErrorCode::WebauthnWrongRpId,
            "the key answered for another relying party (RP ID)",
        ),
        E::MismatchedChallenge | E::ChallengeNotFound => (
            ErrorCode::WebauthnChallengeMismatch,
            "the answer is for another challenge (replayed or stale)",
        ),
        E::InvalidClientDataType => (
            ErrorCode::WebauthnWrongCeremony,
            "the answer is for another kind of WebAuthn ceremony",
        ),
        E::UserNotVerified => (
            ErrorCode::WebauthnUvMissing,
            "this CA requires user verification (PIN or biometric) on the key",
        ),
        E::UserNotPresent => (
            ErrorCode::WebauthnUpMissing,
            "the key did not report user presence (touch)",
        ),
        E::CredentialNotFound => (
            ErrorCode::WebauthnForeignCredential,
            "that key is not one of this user's keys",
        ),
        E::CredentialPossibleCompromise => (
            ErrorCode::WebauthnSignCount,
            "the key's signature counter went backwards; it may be cloned and is now disabled",
        ),
        E::AuthenticationFailure | E::SignatureInvalid => (
            ErrorCode::WebauthnSignatureInvalid,
            "the key's signature does not verify",
        ),
        E::CredentialExcludedFromRequest | E::CredentialAlteredAlgFromRequest => (
            ErrorCode::WebauthnKeyRefused,
            "this key is already enrolled or answered with an algorithm that was not offered",
        ),
        E::AttestationNotVerifiable
        | E::AttestationChainNotTrusted(_)
        | E::AttestationUntrustedAaguid
        | E::AttestationTrustFailure
        | E::AttestationFormatMissingAaguid
        | E::AttestationCertificateAAGUIDMismatch => (
            ErrorCode::WebauthnAttestationUntrusted,
            "the key's attestation is not trusted by this CA",
        ),
        E::ParseCBORFailure(_)
        | E::ParseJSONFailure(_)
        | E::ParseNOMFailure
        | E::ParseInsufficientBytesAvailable
        | E::COSEKeyInvalidCBORValue
        | E::COSEKeyInvalidType
        | E::MissingAttestationCredentialData => (
            ErrorCode::WebauthnMalformed,
            "the key's answer is not well-formed",
        ),
        _ => (ErrorCode::WebauthnInvalid, "the key's answer was refused"),
    }
}

/// `name` is a usable key name: 1–64 of letters, digits, `-_. `.
pub fn valid_key_name(name: &str) -> bool {
    !name.trim().is_empty()
        && name.len() <= MAX_KEY_NAME
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ' '))
}

// ---------------------------------------------------------------------------
// Open requests
// ---------------------------------------------------------------------------

/// What a request is for.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum Purpose {
    /// Enrol a key for `user`.
    Register {
        /// The user.
        user: String,
        /// The key's name.
        name: String,
        /// From an invite (first factor: recovery codes) or a session.
        via_invite: bool,
        /// The session that asked (not for an invite).
        session_id: Option<String>,
        /// The ID of the user's key this one replaces: removed together with
        /// the new key's registration.
        replaces: Option<String>,
        /// webauthn-rs state (the challenge).
        state: Box<RegistrationState>,
    },
    /// Log `user` in.
    Login {
        /// The user.
        user: String,
        /// webauthn-rs state (the challenge and allowed credentials).
        state: Box<AuthenticationState>,
    },
    /// Approve one bastion session of `user`.
    Approval {
        /// The user.
        user: String,
        /// The bastion that asked.
        bastion: String,
        /// The bastion's session ID.
        session_id: String,
        /// The target.
        target: String,
        /// The login on the target.
        login: String,
        /// webauthn-rs state.
        state: Box<AuthenticationState>,
    },
}

impl Purpose {
    /// The user the request names.
    pub(crate) fn user(&self) -> &str {
        match self {
            Purpose::Register { user, .. }
            | Purpose::Login { user, .. }
            | Purpose::Approval { user, .. } => user,
        }
    }

    /// Metrics flow.
    pub(crate) fn flow(&self) -> crate::metrics::Flow {
        match self {
            Purpose::Register { .. } => crate::metrics::Flow::Enrolment,
            Purpose::Login { .. } => crate::metrics::Flow::Login,
            Purpose::Approval { .. } => crate::metrics::Flow::Session,
        }
    }

    /// A short word for audit details.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Purpose::Register { .. } => "register",
            Purpose::Login { .. } => "login",
            Purpose::Approval { .. } => "approval",
        }
    }
}

/// A refusal remembered for the starter.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Refusal {
    /// Stable code.
    pub code: ErrorCode,
    /// For the user.
    pub message: String,
    /// 403 (a decision: denied, disabled) rather than 401 (a failed proof).
    pub forbidden: bool,
}

impl Refusal {
    /// As an API error.
    pub(crate) fn error(&self) -> CaError {
        if self.forbidden {
            CaError::forbidden(self.code, self.message.clone())
        } else {
            CaError::unauthenticated(self.code, self.message.clone())
        }
    }
}

/// Where a request is.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum Status {
    /// Waiting for an answer.
    Open,
    /// An answer took the challenge and is being checked.
    Checking,
    /// Finished well; the outcome waits for its starter.
    Done(Box<wapi::CeremonyOutcome>),
    /// An approval whose outcome the bastion has seen, until the session
    /// certificate consumes it.
    Collected(Box<wapi::CeremonyOutcome>),
    /// Refused (denied, expired, failed a check).
    Refused(Refusal),
    /// Ended and collected by its starter (or consumed): kept until it would
    /// have been forgotten anyway, so a late answer is refused as a replay and
    /// its page says it was answered — never the secrets of its outcome.
    Closed,
}

/// A [`Refusal`] as read back from the store.
#[derive(Deserialize)]
struct StoredRefusal {
    code: String,
    message: String,
    forbidden: bool,
}

impl<'de> Deserialize<'de> for Refusal {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let r = StoredRefusal::deserialize(d)?;
        Ok(Refusal {
            // Codes are this binary's own (a stored request is sealed, so the
            // database cannot make one up); one written by another version
            // that this one does not know reads as `webauthn_invalid`.
            code: ErrorCode::parse(&r.code).unwrap_or(ErrorCode::WebauthnInvalid),
            message: r.message,
            forbidden: r.forbidden,
        })
    }
}

/// One request, as kept in the store between the requests that make it up
/// (see [`RelyingParty`]).
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct Entry {
    /// What it is for.
    pub purpose: Purpose,
    /// SHA-256 of the poll token.
    pub poll_digest: [u8; 32],
    /// SHA-256 of the short code (normalised), which is shown to the starter
    /// only; the user types it on the page before the page gets the options
    /// (number matching: a link sent by someone else comes without the code
    /// on the victim's own terminal).
    pub code_digest: [u8; 32],
    /// Wrong codes typed on the page so far.
    pub code_misses: u8,
    /// The page was given the right code: only then may it answer.
    pub code_matched: bool,
    /// When it was started (shown on the page; M9 latency).
    pub started_at: DateTime<Utc>,
    /// When it stops accepting an answer.
    pub expires_at: DateTime<Utc>,
    /// Started for the CTAP2 path (`direct`): metrics say `fido2`.
    pub direct: bool,
    /// The W3C options (`{"publicKey": …}`) handed to the page or the CLI.
    pub options: serde_json::Value,
    /// The source network of whoever started it.
    pub network: String,
    /// Where it is.
    pub status: Status,
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entry")
            .field("kind", &self.purpose.kind())
            .field("user", &self.purpose.user())
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// A short code as compared: case, spaces and dashes aside (the user copies
/// it by hand).
fn code_digest(code: &str) -> [u8; 32] {
    let norm: Vec<u8> = code
        .bytes()
        .filter(|b| !matches!(b, b'-' | b' ' | b'\t'))
        .map(|b| b.to_ascii_uppercase())
        .collect();
    Sha256::digest(&norm).into()
}

impl Entry {
    /// The metrics factor: `fido2` for the CTAP2 path, else `webauthn`.
    pub(crate) fn factor(&self) -> crate::metrics::Factor {
        if self.direct {
            crate::metrics::Factor::Fido2
        } else {
            crate::metrics::Factor::Webauthn
        }
    }

    /// Does `typed` match the short code? Constant time.
    pub(crate) fn code_matches(&self, typed: &str) -> bool {
        bool::from(code_digest(typed).ct_eq(&self.code_digest))
    }

    /// Does `token` match the poll token? Constant time.
    pub(crate) fn token_matches(&self, token: &str) -> bool {
        let d: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        bool::from(d.ct_eq(&self.poll_digest))
    }

    /// Move to `status`.
    pub(crate) fn set(&mut self, status: Status) {
        self.status = status;
    }

    /// Until when it counts against its starter's share of open requests:
    /// while open, until its end; once answered or refused, no longer.
    pub(crate) fn counts_until(&self) -> DateTime<Utc> {
        match self.status {
            Status::Open => self.expires_at,
            _ => self.started_at,
        }
    }
}

/// A new request's public parts, and the entry to keep.
#[derive(Debug)]
pub(crate) struct NewRequest {
    /// Request ID.
    pub request_id: String,
    /// Poll token (to hand out once).
    pub poll_token: String,
    /// Short code (to show the starter once).
    pub short_code: String,
    /// The entry.
    pub entry: Entry,
}

/// The relying party: WebAuthn checks, and the wake-up of this CA's waiters.
pub struct RelyingParty {
    core: WebauthnCore,
    settings: Settings,
    /// Bumped whenever this CA changes a request: every `WAIT` held here
    /// looks at its request again (changes made by other CAs are seen by the
    /// waits' periodic look, [`WAIT_RECHECK`]).
    changed: watch::Sender<u64>,
}

impl std::fmt::Debug for RelyingParty {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelyingParty")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

const SHORT_CODE_ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";

/// `ABCD-2345`: 8 characters from an alphabet without look-alikes (40 bits).
fn new_short_code() -> String {
    use rand::Rng;
    let mut rng = rand::rngs::OsRng;
    let mut s = String::with_capacity(9);
    for i in 0..8 {
        if i == 4 {
            s.push('-');
        }
        let idx = rng.gen_range(0..SHORT_CODE_ALPHABET.len());
        s.push(char::from(
            SHORT_CODE_ALPHABET.get(idx).copied().unwrap_or(b'A'),
        ));
    }
    s
}

fn internal(e: WebauthnError) -> CaError {
    CaError::Internal(format!("webauthn: {e}"))
}

impl RelyingParty {
    /// [`Settings::key_attested`] under this relying party's settings.
    pub fn key_attested(&self, attestation_verified: bool, aaguid: &str) -> bool {
        self.settings.key_attested(attestation_verified, aaguid)
    }

    /// A relying party with these settings.
    pub fn new(settings: Settings) -> Result<Self, CaError> {
        let core = WebauthnCore::new_unsafe_experts_only(
            &settings.rp_name,
            &settings.rp_id,
            vec![settings.origin.clone()],
            // What the browser is told to allow the user; the CA's own TTL is
            // enforced separately.
            settings.challenge_ttl.max(settings.approval_ttl),
            Some(false),
            Some(false),
        );
        let (changed, _) = watch::channel(0);
        Ok(RelyingParty {
            core,
            settings,
            changed,
        })
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The page of a request.
    pub fn page_url(&self, request_id: &str) -> String {
        let origin = self.settings.origin.as_str().trim_end_matches('/');
        format!("{origin}{}/r/{request_id}", wapi::PAGE_PREFIX)
    }

    fn uv_policy(&self) -> UserVerificationPolicy {
        if self.settings.uv_required() {
            UserVerificationPolicy::Required
        } else {
            UserVerificationPolicy::Preferred
        }
    }

    /// Registration options for `user` (`user_handle` is stable per user), not
    /// offering the credentials in `exclude` again.
    pub(crate) fn register_options(
        &self,
        user_handle: &[u8],
        user: &str,
        exclude: Vec<CredentialID>,
    ) -> Result<(CreationChallengeResponse, RegistrationState), CaError> {
        let builder = self
            .core
            .new_challenge_register_builder(user_handle, user, user)
            .map_err(internal)?
            // Direct: the AAGUID (and, with vendor roots, the model) is evidence
            // the certificate and the enrolment policy need.
            .attestation(AttestationConveyancePreference::Direct)
            .user_verification_policy(self.uv_policy())
            .exclude_credentials(if exclude.is_empty() {
                None
            } else {
                Some(exclude)
            })
            .require_resident_key(false);
        self.core
            .generate_challenge_register(builder)
            .map_err(internal)
    }

    /// Authentication options over `creds`.
    pub(crate) fn login_options(
        &self,
        creds: Vec<Credential>,
    ) -> Result<(RequestChallengeResponse, AuthenticationState), CaError> {
        let builder = self
            .core
            .new_challenge_authenticate_builder(creds, Some(self.uv_policy()))
            .map_err(internal)?;
        self.core
            .generate_challenge_authenticate(builder)
            .map_err(internal)
    }

    /// Check a registration answer.
    pub(crate) fn finish_register(
        &self,
        reg: &webauthn_rs_core::proto::RegisterPublicKeyCredential,
        state: &RegistrationState,
    ) -> Result<Credential, WebauthnError> {
        self.core
            .register_credential(reg, state, self.settings.attestation_roots.as_ref())
    }

    /// Check an assertion against the one credential it names.
    pub(crate) fn finish_login(
        &self,
        rsp: &PublicKeyCredential,
        state: &AuthenticationState,
        cred: &Credential,
    ) -> Result<webauthn_rs_core::proto::AuthenticationResult, WebauthnError> {
        self.core.authenticate_single_credential(rsp, state, cred)
    }

    /// A new request for `purpose`, started from `network`, open until
    /// `expires_at`.
    pub(crate) fn new_request(
        purpose: Purpose,
        network: String,
        started_at: DateTime<Utc>,
        expires_at: DateTime<Utc>,
        direct: bool,
        options: serde_json::Value,
    ) -> NewRequest {
        let poll_token = crate::secrets::new_token();
        let short_code = new_short_code();
        NewRequest {
            request_id: crate::secrets::new_token(),
            entry: Entry {
                purpose,
                poll_digest: Sha256::digest(poll_token.as_bytes()).into(),
                code_digest: code_digest(&short_code),
                code_misses: 0,
                code_matched: false,
                started_at,
                expires_at,
                direct,
                options,
                network,
                status: Status::Open,
            },
            poll_token,
            short_code,
        }
    }

    /// Wake every `WAIT` held on this CA: a request changed.
    pub(crate) fn notify(&self) {
        self.changed.send_modify(|v| *v = v.wrapping_add(1));
    }

    /// A receiver woken by [`RelyingParty::notify`].
    pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listen() -> SocketAddr {
        "127.0.0.1:8443".parse().unwrap()
    }

    #[test]
    fn defaults_work_on_localhost() {
        let s = Settings::defaults(listen()).unwrap();
        assert_eq!(s.rp_id, "localhost");
        assert_eq!(s.origin.as_str(), "https://localhost:8443/");
        assert_eq!(s.challenge_ttl, Duration::from_secs(120));
        assert_eq!(s.approval_ttl, Duration::from_secs(300));
        assert!(!s.uv_required());
        assert!(!s.origin_follows_listen);
        let any = Settings::defaults("127.0.0.1:0".parse().unwrap()).unwrap();
        assert!(any.origin_follows_listen);
        assert_eq!(
            any.with_port(4242).origin.as_str(),
            "https://localhost:4242/"
        );
        let rp = RelyingParty::new(s).unwrap();
        assert_eq!(rp.page_url("abc"), "https://localhost:8443/webauthn/r/abc");
    }

    #[test]
    fn bad_settings_are_refused() {
        for (rp_id, origin) in [
            (Some("127.0.0.1"), Some("https://127.0.0.1:8443")),
            (Some("example.com"), Some("https://evil.com")),
            (Some("example.com"), Some("http://example.com")),
            (None, Some("https://localhost:8443/path")),
            (Some("ample.com"), Some("https://example.com")),
        ] {
            let raw = RawWebauthn {
                rp_id: rp_id.map(str::to_owned),
                origin: origin.map(str::to_owned),
                ..Default::default()
            };
            assert!(validate(&raw, listen()).is_err(), "{rp_id:?} {origin:?}");
        }
        let ok = RawWebauthn {
            rp_id: Some("example.com".into()),
            origin: Some("https://ca.example.com".into()),
            user_verification: UserVerification::Required,
            allowed_aaguids: vec!["CB69481E8FF7403993EC0A2729A154A8".into()],
            ..Default::default()
        };
        let s = validate(&ok, listen()).unwrap();
        assert!(s.uv_required());
        assert_eq!(s.allowed_aaguids, ["cb69481e-8ff7-4039-93ec-0a2729a154a8"]);
        let bad = RawWebauthn {
            allowed_aaguids: vec!["not-a-uuid".into()],
            ..Default::default()
        };
        assert!(validate(&bad, listen()).is_err());
    }

    #[test]
    fn a_key_vouched_for_by_roots_is_unattested_once_the_roots_are_removed() {
        let aaguid = "cb69481e-8ff7-4039-93ec-0a2729a154a8";
        let mut with_roots = Settings::defaults(listen()).unwrap();
        with_roots.attestation_roots = Some(AttestationCaList::default());
        assert!(with_roots.key_attested(true, aaguid));
        assert!(!with_roots.key_attested(false, aaguid));
        // The operator removed every root: their verdicts no longer count.
        let without = Settings::defaults(listen()).unwrap();
        assert!(!without.key_attested(true, aaguid));
        // An allow-listed model counts whatever the roots.
        let mut listed = Settings::defaults(listen()).unwrap();
        listed.allowed_aaguids = vec![aaguid.to_owned()];
        assert!(listed.key_attested(true, aaguid));
        assert!(listed.key_attested(false, aaguid));
        assert!(!listed.key_attested(true, "00000000-0000-0000-0000-000000000000"));
    }

    #[test]
    fn config_keys_are_strict() {
        let err = toml::from_str::<RawWebauthn>("rp_idd = \"x\"").unwrap_err();
        assert!(err.to_string().contains("unknown field"), "{err}");
        let raw: RawWebauthn = toml::from_str("user_verification = \"required\"").unwrap();
        assert_eq!(raw.user_verification, UserVerification::Required);
        assert!(toml::from_str::<RawWebauthn>("user_verification = \"maybe\"").is_err());
    }

    #[test]
    fn short_codes_have_the_shape_the_terminal_shows() {
        for _ in 0..50 {
            let c = new_short_code();
            assert_eq!(c.len(), 9);
            assert_eq!(c.chars().nth(4), Some('-'));
            assert!(c
                .bytes()
                .all(|b| b == b'-' || SHORT_CODE_ALPHABET.contains(&b)));
        }
    }

    #[test]
    fn authenticator_data_fields_are_read() {
        let mut ad = vec![0u8; 37];
        ad[32] = 0x05; // UP | UV
        ad[33..37].copy_from_slice(&7u32.to_be_bytes());
        assert_eq!(assertion_counter(&ad), Some((7, true)));
        assert_eq!(assertion_counter(&ad[..36]), None);
        assert_eq!(
            canonical_aaguid("00000000-0000-0000-0000-000000000000").as_deref(),
            Some("00000000-0000-0000-0000-000000000000")
        );
        assert_eq!(aaguid_of_attestation(b"\x01\x02"), None);
    }

    #[test]
    fn key_names_are_bounded() {
        assert!(valid_key_name("yubikey-blue 2"));
        assert!(!valid_key_name(""));
        assert!(!valid_key_name("   "));
        assert!(!valid_key_name("a<b"));
        assert!(!valid_key_name(&"a".repeat(65)));
    }
}
