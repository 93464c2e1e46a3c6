//! Entry points for the fuzz targets (`fuzz/`) into code that is private to the
//! CA: the WebAuthn answers as the authority reads them.
//!
//! **Owns:** a fixed relying party and fixed ceremony states, so that a fuzz
//! input is the only thing that varies between runs and a crash replays. Not an
//! API: nothing here is used by the CA itself, and it may change with the fuzz
//! targets.
//!
//! The states carry a fixed challenge ([`CHALLENGE`]) instead of a random one, so
//! that a committed seed answer (made once with a software token for that
//! challenge) gets past the challenge check and the fuzzer explores the checks
//! behind it. The WebAuthn checks compare the authenticator data against the
//! wall clock nowhere; the CA's own TTLs are not exercised here.

use std::sync::OnceLock;

use base64::Engine as _;
use webauthn_rs_core::proto::{
    AuthenticationState, Credential, PublicKeyCredential, RegisterPublicKeyCredential,
    RegistrationState,
};

use crate::webauthn::{
    aaguid_of_attestation, assertion_counter, validate, RawWebauthn, RelyingParty,
};

/// The challenge of the fixed ceremony states (32 bytes, like the CA's own).
pub const CHALLENGE: [u8; 32] = *b"rampart-fuzz-fixed-challenge-32b";

/// The address the fixed relying party is configured for: its origin is
/// `https://localhost:8443` and its RP ID `localhost`.
pub const LISTEN: &str = "127.0.0.1:8443";

/// The user handle of the fixed registration.
pub const USER_HANDLE: &[u8] = b"fuzz-user-handle";

struct Fixed {
    rp: RelyingParty,
    register: Option<RegistrationState>,
    register_options: Option<serde_json::Value>,
}

fn fixed() -> Option<&'static Fixed> {
    static FIXED: OnceLock<Option<Fixed>> = OnceLock::new();
    FIXED
        .get_or_init(|| {
            let listen = LISTEN.parse().ok()?;
            let settings = validate(&RawWebauthn::default(), listen).ok()?;
            let rp = RelyingParty::new(settings).ok()?;
            let (options, state) = rp.register_options(USER_HANDLE, "fuzz", Vec::new()).ok()?;
            let register = with_fixed_challenge(&state);
            let register_options = serde_json::to_value(options).ok().map(|mut v| {
                if let Some(c) = v.pointer_mut("/publicKey/challenge") {
                    *c = challenge_json();
                }
                v
            });
            Some(Fixed {
                rp,
                register,
                register_options,
            })
        })
        .as_ref()
}

fn challenge_json() -> serde_json::Value {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(CHALLENGE)
        .into()
}

/// A ceremony state with its random challenge replaced by [`CHALLENGE`]: the
/// state types keep their fields private, but they round-trip through JSON.
fn with_fixed_challenge<S: serde::Serialize + serde::de::DeserializeOwned>(state: &S) -> Option<S> {
    let mut v = serde_json::to_value(state).ok()?;
    *v.get_mut("challenge")? = challenge_json();
    serde_json::from_value(v).ok()
}

/// The registration options (`{"publicKey": …}`) that go with the fixed
/// registration state: what a seed answer for [`webauthn_register`] answers.
pub fn webauthn_register_options() -> Option<serde_json::Value> {
    fixed()?.register_options.clone()
}

/// The fixed relying party's verdict on a registration answer (the
/// `credential` of a `FINISH` body), as the authority reaches it: JSON value,
/// then `RegisterPublicKeyCredential`, the AAGUID read, then webauthn-rs's checks.
pub fn webauthn_register(data: &[u8]) -> Option<Credential> {
    let f = fixed()?;
    let value: serde_json::Value = serde_json::from_slice(data).ok()?;
    let reg: RegisterPublicKeyCredential = serde_json::from_value(value).ok()?;
    let _aaguid = aaguid_of_attestation(&reg.response.attestation_object);
    f.rp.finish_register(&reg, f.register.as_ref()?).ok()
}

/// The request options (`{"publicKey": …}`) and the authentication state of a
/// login with `cred`, both with the fixed challenge.
pub fn webauthn_login_state(cred: &Credential) -> Option<(serde_json::Value, AuthenticationState)> {
    let f = fixed()?;
    let (options, state) = f.rp.login_options(vec![cred.clone()]).ok()?;
    let mut options = serde_json::to_value(options).ok()?;
    *options.pointer_mut("/publicKey/challenge")? = challenge_json();
    Some((options, with_fixed_challenge(&state)?))
}

/// The fixed relying party's verdict on an assertion (the `credential` of a
/// `FINISH` body) for the key `cred`, as the authority reaches it: JSON value,
/// then `PublicKeyCredential`, the counter read, then webauthn-rs's checks.
pub fn webauthn_login(data: &[u8], cred: &Credential, state: &AuthenticationState) -> bool {
    let Some(f) = fixed() else { return false };
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else {
        return false;
    };
    let Ok(rsp) = serde_json::from_value::<PublicKeyCredential>(value) else {
        return false;
    };
    let _counter = assertion_counter(&rsp.response.authenticator_data);
    f.rp.finish_login(&rsp, state, cred).is_ok()
}
