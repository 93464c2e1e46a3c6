//! CTAP2 from the terminal: hand the CA's WebAuthn options to a security key and
//! return the key's answer as W3C JSON, for `--mfa fido2`, `enroll --fido2` and
//! `keys add --fido2`.
//!
//! The client side of WebAuthn (the part a browser normally does) comes from
//! webauthn-authenticator-rs: it builds `clientDataJSON` for the origin, checks
//! that the CA's RP ID belongs to that origin, and talks CTAP2 to the key. The
//! origin is the one the CA serves its WebAuthn pages from — the origin of the
//! ceremony's page `url` — so the CA checks the same origin whether a browser or
//! this CLI did the ceremony.
//!
//! Which key:
//! - **USB HID** (cargo feature `fido2-usb`, on by default; Linux needs libudev at
//!   run time and the udev rules systemd ≥ 252 ships for FIDO keys): the first key
//!   that is plugged in, or the one touched when several are. A PIN is asked for on
//!   the terminal when the key wants one.
//! - **Software token — tests only.** `RAMPART_FIDO2_SOFT_TOKEN=/path/file` selects
//!   webauthn-authenticator-rs's `SoftToken`, kept in that file (created by the
//!   first enrolment, mode 0600). It stores private keys unprotected, claims user
//!   verification without verifying anyone, and its format may change between
//!   library versions: it exists so that the end-to-end tests can drive the real
//!   CTAP2 code path without hardware. Only debug builds honour it; a release
//!   build refuses the variable.
//!   With it, and only with it, `RAMPART_FIDO2_TEST_ORIGIN=https://host:port`
//!   replaces the origin, so that tests can prove the CA refuses a wrong one.

use std::path::{Path, PathBuf};

use webauthn_authenticator_rs::prelude::{
    CreationChallengeResponse, RequestChallengeResponse, Url, WebauthnCError,
};
#[cfg(debug_assertions)]
use webauthn_authenticator_rs::softtoken::SoftTokenFile;
use webauthn_authenticator_rs::{AuthenticatorBackend, WebauthnAuthenticator as _};

use crate::error::CliError;

/// Test-only: the software token file to use instead of a USB key.
pub const SOFT_TOKEN_ENV: &str = "RAMPART_FIDO2_SOFT_TOKEN";
/// Test-only (honoured only with [`SOFT_TOKEN_ENV`]): the origin to claim.
pub const TEST_ORIGIN_ENV: &str = "RAMPART_FIDO2_TEST_ORIGIN";

/// One ceremony, with its options already parsed.
enum Op {
    Register(Box<CreationChallengeResponse>),
    Authenticate(Box<RequestChallengeResponse>),
}

impl Op {
    #[cfg(debug_assertions)]
    fn is_register(&self) -> bool {
        matches!(self, Op::Register(_))
    }
}

/// Create a credential on the key for the CA's `{"publicKey": …}` creation
/// options; `page_url` is the ceremony's page, whose origin the CA expects.
pub fn register(page_url: &str, options: serde_json::Value) -> Result<serde_json::Value, CliError> {
    let options: CreationChallengeResponse = serde_json::from_value(options)
        .map_err(|e| CliError::Unreachable(format!("the CA sent unusable key options: {e}")))?;
    run(page_url, Op::Register(Box::new(options)))
}

/// Sign the CA's `{"publicKey": …}` request options with the key.
pub fn authenticate(
    page_url: &str,
    options: serde_json::Value,
) -> Result<serde_json::Value, CliError> {
    let options: RequestChallengeResponse = serde_json::from_value(options)
        .map_err(|e| CliError::Unreachable(format!("the CA sent unusable key options: {e}")))?;
    run(page_url, Op::Authenticate(Box::new(options)))
}

fn run(page_url: &str, op: Op) -> Result<serde_json::Value, CliError> {
    let soft = std::env::var_os(SOFT_TOKEN_ENV)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from);
    let test_origin = std::env::var(TEST_ORIGIN_ENV)
        .ok()
        .filter(|v| !v.is_empty());
    let origin = match (&soft, test_origin) {
        (Some(_), Some(o)) => parse_origin(&o)?,
        (None, Some(_)) => {
            return Err(CliError::Usage(format!(
                "{TEST_ORIGIN_ENV} is a test-only setting and needs {SOFT_TOKEN_ENV}"
            )))
        }
        (_, None) => origin_of(page_url)?,
    };
    match soft {
        Some(path) => soft_token(&path, origin, op),
        None => usb(origin, op),
    }
}

/// The test-only software token. Only debug builds (what `cargo build` makes for
/// the end-to-end tests) honour it: a release build refuses, so a shipped
/// `rampart` cannot be pointed at a file that claims to be a user-verifying key.
#[cfg(debug_assertions)]
fn soft_token(path: &Path, origin: Url, op: Op) -> Result<serde_json::Value, CliError> {
    let mut token = open_soft_token(path, op.is_register())?;
    perform(&mut token, origin, op)
    // Dropping `token` writes it back (new credential, new counter).
}

#[cfg(not(debug_assertions))]
fn soft_token(_path: &Path, _origin: Url, _op: Op) -> Result<serde_json::Value, CliError> {
    Err(CliError::Usage(format!(
        "{SOFT_TOKEN_ENV} is a test-only setting that release builds do not honour"
    )))
}

/// The web origin (`scheme://host[:port]`) of the page URL the CA gave.
pub fn origin_of(page_url: &str) -> Result<Url, CliError> {
    let url = Url::parse(page_url).map_err(|e| {
        CliError::Unreachable(format!(
            "the CA gave an unusable page URL {page_url:?}: {e}"
        ))
    })?;
    parse_origin(&url.origin().ascii_serialization())
}

fn parse_origin(s: &str) -> Result<Url, CliError> {
    Url::parse(s).map_err(|e| CliError::Usage(format!("invalid origin {s:?}: {e}")))
}

fn perform(
    backend: &mut dyn AuthenticatorBackend,
    origin: Url,
    op: Op,
) -> Result<serde_json::Value, CliError> {
    let shown = origin.origin().ascii_serialization();
    let value = match op {
        Op::Register(options) => {
            let rp = options.public_key.rp.id.clone();
            let cred = backend
                .do_registration(origin, *options)
                .map_err(|e| key_error(&e, &shown, &rp))?;
            serde_json::to_value(&cred)
        }
        Op::Authenticate(options) => {
            let rp = options.public_key.rp_id.clone();
            let cred = backend
                .do_authentication(origin, *options)
                .map_err(|e| key_error(&e, &shown, &rp))?;
            serde_json::to_value(&cred)
        }
    };
    value.map_err(|e| anyhow::anyhow!("cannot encode the key's answer: {e}").into())
}

/// One line saying what went wrong at the key, and what to do about it.
fn key_error(e: &WebauthnCError, origin: &str, rp_id: &str) -> CliError {
    use webauthn_authenticator_rs::error::CtapError;
    let msg = match e {
        WebauthnCError::Security => format!(
            "the CA's relying party ID {rp_id:?} does not belong to the origin {origin} \
             (WebAuthn needs a host name, not an IP address, and https)"
        ),
        WebauthnCError::NotSupported => {
            "the security key cannot do what the CA asks (user verification or a \
             resident credential)"
                .to_owned()
        }
        WebauthnCError::UserVerificationRequired => {
            "the CA requires user verification and this key has none set up (set a PIN)".to_owned()
        }
        WebauthnCError::Ctap(CtapError::Ctap2NoCredentials)
        | WebauthnCError::Ctap(CtapError::Ctap2InvalidCredential) => {
            "this security key holds none of your enrolled credentials".to_owned()
        }
        WebauthnCError::Ctap(CtapError::Ctap2UserActionTimeout) | WebauthnCError::Cancelled => {
            "the security key was not touched in time".to_owned()
        }
        WebauthnCError::Ctap(CtapError::Ctap2PinInvalid) => "wrong PIN".to_owned(),
        WebauthnCError::Ctap(CtapError::Ctap2PinBlocked)
        | WebauthnCError::Ctap(CtapError::Ctap2PinAuthBlocked) => {
            "the security key's PIN is blocked".to_owned()
        }
        // The software token says `Internal` when none of the allowed credential
        // IDs is in its file.
        WebauthnCError::Internal => {
            "the security key failed (for the test token: it holds none of your enrolled \
             credentials)"
                .to_owned()
        }
        other => format!("the security key failed: {other}"),
    };
    CliError::Other(anyhow::anyhow!(msg))
}

/// Open (or, for an enrolment, create) the test-only software token file.
#[cfg(debug_assertions)]
fn open_soft_token(path: &Path, create: bool) -> Result<SoftTokenFile, CliError> {
    use webauthn_authenticator_rs::softtoken::SoftToken;

    use std::fs::{File, OpenOptions};
    use std::io::ErrorKind;
    use std::os::unix::fs::OpenOptionsExt as _;

    match OpenOptions::new().read(true).write(true).open(path) {
        Ok(f) => SoftTokenFile::open(f).map_err(|e| {
            anyhow::anyhow!("{} is not a software token file: {e}", path.display()).into()
        }),
        Err(e) if e.kind() == ErrorKind::NotFound && create => {
            // It claims user verification: the CA may demand UV, and the tests
            // decide themselves when an answer should lack it.
            let (token, _attestation_ca) = SoftToken::new(true)
                .map_err(|e| anyhow::anyhow!("cannot create a software token: {e}"))?;
            let file: File = OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", path.display()))?;
            Ok(SoftTokenFile::new(token, file))
        }
        Err(e) => Err(CliError::no_input(path, &e)),
    }
}

#[cfg(feature = "fido2-usb")]
fn usb(origin: Url, op: Op) -> Result<serde_json::Value, CliError> {
    use std::time::Duration;

    use webauthn_authenticator_rs::ctap2::select_one_device;
    use webauthn_authenticator_rs::transport::Transport as _;
    use webauthn_authenticator_rs::usb::USBTransport;

    /// How long to wait for a key to be plugged in or touched for selection.
    const SELECT: Duration = Duration::from_secs(60);

    // The library's CTAP code is async over tokio (HID reads, udev watching on a
    // blocking thread) and also blocks on futures internally: a multi-threaded
    // runtime keeps its timers and I/O driven while one worker waits.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| anyhow::anyhow!("cannot start the USB runtime: {e}"))?;
    let ui = TerminalUi;
    rt.block_on(async {
        let transport = USBTransport::new()
            .await
            .map_err(|e| anyhow::anyhow!("cannot list USB security keys: {e}"))?;
        let stream = transport
            .watch()
            .await
            .map_err(|e| anyhow::anyhow!("cannot watch for USB security keys: {e}"))?;
        eprintln!("Insert your security key, or touch it if several are plugged in...");
        let mut key = match tokio::time::timeout(SELECT, select_one_device(stream, &ui)).await {
            Ok(Some(key)) => key,
            Ok(None) => {
                return Err(CliError::Other(anyhow::anyhow!(
                    "no usable FIDO2 security key found (a CTAP2 key is needed; check \
                     that this user may open /dev/hidraw*)"
                )))
            }
            Err(_) => {
                return Err(CliError::Other(anyhow::anyhow!(
                    "no security key was plugged in or touched within {} s",
                    SELECT.as_secs()
                )))
            }
        };
        eprintln!("Touch your security key to confirm.");
        perform(&mut key, origin, op)
    })
}

#[cfg(not(feature = "fido2-usb"))]
fn usb(_origin: Url, _op: Op) -> Result<serde_json::Value, CliError> {
    Err(CliError::Usage(
        "this rampart was built without USB security-key support (cargo feature fido2-usb); \
         use --mfa webauthn (a browser) instead"
            .to_owned(),
    ))
}

/// Prompts for the USB path: a PIN on the terminal, "touch your key" on stderr.
#[cfg(feature = "fido2-usb")]
#[derive(Debug)]
struct TerminalUi;

#[cfg(feature = "fido2-usb")]
impl webauthn_authenticator_rs::ui::UiCallback for TerminalUi {
    fn request_pin(&self) -> Option<String> {
        rpassword::prompt_password("PIN of your security key: ").ok()
    }

    fn request_touch(&self) {
        eprintln!("Touch your security key.");
    }

    fn processing(&self) {}

    fn fingerprint_enrollment_feedback(
        &self,
        _remaining_samples: u32,
        _feedback: Option<webauthn_authenticator_rs::types::EnrollSampleStatus>,
    ) {
    }

    fn cable_qr_code(
        &self,
        _request_type: webauthn_authenticator_rs::types::CableRequestType,
        _url: String,
    ) {
    }

    fn dismiss_qr_code(&self) {}

    fn cable_status_update(&self, _state: webauthn_authenticator_rs::types::CableState) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_is_the_pages_origin() {
        let o = origin_of("https://localhost:8443/webauthn/login/01ABC?x=1").unwrap();
        assert_eq!(o.as_str(), "https://localhost:8443/");
        assert!(origin_of("not a url").is_err());
    }

    /// The real CTAP2 client code against the software token: enrol, then sign,
    /// and the counter the token persists goes up.
    #[cfg(debug_assertions)]
    #[test]
    fn soft_token_registers_and_signs_through_the_client_checks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        let creation = serde_json::json!({"publicKey": {
            "rp": {"id": "localhost", "name": "Rampart"},
            "user": {"id": "dXNlcg", "name": "alice", "displayName": "alice"},
            "challenge": "AAECAwQFBgcICQoLDA0ODw",
            "pubKeyCredParams": [{"type": "public-key", "alg": -7}],
            "timeout": 60000,
            "attestation": "none",
            "authenticatorSelection": {"requireResidentKey": false, "userVerification": "required"}
        }});
        let origin = parse_origin("https://localhost:8443").unwrap();
        let opts: CreationChallengeResponse = serde_json::from_value(creation).unwrap();
        let mut tok = open_soft_token(&path, true).unwrap();
        let reg = perform(&mut tok, origin.clone(), Op::Register(Box::new(opts))).unwrap();
        drop(tok);
        assert!(reg["rawId"].is_string(), "{reg}");
        let client_data = reg["response"]["clientDataJSON"].as_str().unwrap();
        assert!(!client_data.is_empty());

        let request = serde_json::json!({"publicKey": {
            "challenge": "EBESExQVFhcYGRobHB0eHw",
            "rpId": "localhost",
            "allowCredentials": [{"type": "public-key", "id": reg["rawId"]}],
            "userVerification": "required"
        }});
        let opts: RequestChallengeResponse = serde_json::from_value(request.clone()).unwrap();
        let mut tok = open_soft_token(&path, false).unwrap();
        let a1 = perform(&mut tok, origin.clone(), Op::Authenticate(Box::new(opts))).unwrap();
        drop(tok);
        // The token's file was written back: a second open signs with a higher counter.
        let opts: RequestChallengeResponse = serde_json::from_value(request).unwrap();
        let mut tok = open_soft_token(&path, false).unwrap();
        let a2 = perform(&mut tok, origin, Op::Authenticate(Box::new(opts))).unwrap();
        drop(tok);
        assert_ne!(
            a1["response"]["authenticatorData"],
            a2["response"]["authenticatorData"]
        );

        // A relying party ID that is not the origin's is refused before the key
        // is asked.
        let bad = serde_json::json!({"publicKey": {
            "challenge": "EBESExQVFhcYGRobHB0eHw",
            "rpId": "example.com",
            "allowCredentials": [{"type": "public-key", "id": reg["rawId"]}],
            "userVerification": "preferred"
        }});
        let opts: RequestChallengeResponse = serde_json::from_value(bad).unwrap();
        let mut tok = open_soft_token(&path, false).unwrap();
        let e = perform(
            &mut tok,
            parse_origin("https://localhost:8443").unwrap(),
            Op::Authenticate(Box::new(opts)),
        )
        .unwrap_err();
        assert!(e.to_string().contains("relying party ID"), "{e}");
    }

    #[cfg(debug_assertions)]
    #[test]
    fn a_missing_token_file_is_created_only_for_enrolment() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("absent");
        let e = open_soft_token(&path, false).err().unwrap();
        assert_eq!(e.exit_code(), crate::error::EXIT_NO_INPUT);
        let tok = open_soft_token(&path, true).unwrap();
        drop(tok);
        let mode = std::fs::metadata(&path).unwrap().permissions();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
            0o600
        );
    }
}
