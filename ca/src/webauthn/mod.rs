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
//!
//! # Files
//!
//! - `mod.rs`: the [`RelyingParty`] (the ceremonies' checks, new requests,
//!   the wake-ups) and the limits on requests.
//! - `settings.rs`: `[webauthn]` as written and as checked.
//! - `authenticator.rs`: AAGUIDs, signature counters, refusal codes, key names.
//! - `request.rs`: an open request between its steps ([`Entry`]).
//! - `pages.rs`, `routes.rs`: the pages a browser shows, and their routes.

pub mod pages;
pub mod routes;

use std::time::Duration;

use chrono::{DateTime, Utc};
use rampart_api::webauthn as wapi;
use sha2::{Digest, Sha256};
use tokio::sync::watch;
use webauthn_rs_core::error::WebauthnError;
use webauthn_rs_core::proto::{
    AttestationConveyancePreference, AuthenticationState, Credential, CredentialID,
    RegistrationState, RequestChallengeResponse, UserVerificationPolicy,
};
use webauthn_rs_core::proto::{CreationChallengeResponse, PublicKeyCredential};
use webauthn_rs_core::WebauthnCore;

use crate::error::CaError;

mod authenticator;
mod request;
mod settings;

pub use authenticator::{
    aaguid_of_attestation, assertion_counter, canonical_aaguid, failure_of, format_aaguid,
    valid_key_name,
};
use request::code_digest;
pub(crate) use request::{Entry, NewRequest, Purpose, Refusal, Status};
pub use settings::{validate, validate_in, RawWebauthn, Settings, UserVerification};

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
            request_id: crate::secrets::new_request_id(),
            entry: Entry {
                purpose,
                poll_digest: Sha256::digest(poll_token.expose().as_bytes()).into(),
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
    use std::net::SocketAddr;

    use webauthn_rs_core::proto::AttestationCaList;

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
